//! Steward's domain: the vault of personal information and what may be done with it.
//!
//! Owns the rules that join the policy, the keys, the store and the audit log: collection
//! (P3, P5, P6), consent (P10, P27), purpose-checked reads (P9, P10, P21), disclosures (P12,
//! P13, P16), export (P23), erasure (P28) and the evidence that proves it (P33). Does not own
//! transport (HTTP, CLI) or storage engines.

pub mod backup;
mod cases;
mod check;
pub mod clock;
mod code;
mod collect;
mod consent;
mod datasets;
pub mod deadlines;
pub mod dispatch;
pub mod erasures;
mod error;
pub mod evidence;
mod external;
mod holds;
pub mod i18n;
pub mod incidents;
mod journal;
mod keys;
pub mod legal;
mod notes;
mod outbox;
mod read;
mod requests;
mod retention;
mod rights;
mod selfservice;
mod staff;
mod statement;
mod tags;
mod vault;
pub mod versions;
pub mod visitors;

pub use cases::Delivered;
pub use check::Check;
pub use consent::CONSENT_ACTIONS;
pub use datasets::SystemState;
pub use error::{Code, Error, Missing, NameKind, refusal_code};
pub use external::{ANSWER_TOLERANCE_S, REMIND_EVERY_MS, REQUEST_EVENT, Signed};
pub use holds::{HOLD_REASONS, Held, Hold};
pub use keys::{ApiKeyInfo, KEY_CACHE_MS};
pub use outbox::{EVENTS, Endpoint, Message, NewEndpoint};
pub use requests::{
    Closing, Completion, MAX_NOTE, REFUSAL_REASONS, REQUEST_KINDS, RequestStep, RightsRequest,
};
pub use retention::{DAY_MS, SweepReport};
pub use rights::{
    Export, ExportConsent, ExportDisclosure, ExportPolicyEvent, ExportRecord, ExportRequest,
    PurgeProgress,
};
pub use selfservice::{
    CODE_ATTEMPTS, CodeMail, FAILURES_PER_CLIENT_HOUR, Mailer, SENDS_PER_ADDRESS_HOUR,
    SENDS_PER_CLIENT_HOUR, SESSION_TTL_MS, SessionToken,
};
pub use staff::{MIN_PASSWORD, STAFF_FAILURES_PER_HOUR, STAFF_SESSION_MS};
pub use steward_store::{Backend, OpenCheck, PgTarget, StoreError, set_open_check};
pub use vault::{
    Actor, Collect, ConsentChange, ConsentTarget, Read, SignedDocument, Source, SubjectId, Value,
    Vault, files, normalise_lookup,
};

#[cfg(test)]
mod tests;
