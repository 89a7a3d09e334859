//! The one error type of the domain. Each variant maps to one [`Code`] of the catalogue in an
//! exhaustive `match` (no fallback arm), and the code carries the HTTP status. Messages name
//! policy terms (categories, purposes, features) and never PI values or ids a caller sent.

use steward_crypto::CryptoError;
use steward_policy::Refusal;
use steward_store::StoreError;

pub use crate::code::Code;

/// What kind of policy name an [`Error::Unknown`] is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// A category.
    Category,
    /// A purpose.
    Purpose,
    /// A feature.
    Feature,
    /// A role.
    Role,
    /// A recipient.
    Recipient,
}

impl NameKind {
    fn as_str(self) -> &'static str {
        match self {
            NameKind::Category => "category",
            NameKind::Purpose => "purpose",
            NameKind::Feature => "feature",
            NameKind::Role => "role",
            NameKind::Recipient => "recipient",
        }
    }
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an [`Error::NotFound`] did not find. Its id is never repeated: it may be anything.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// A rights request.
    Request,
    /// A legal hold.
    Hold,
    /// An API key.
    ApiKey,
    /// An audit entry of a subject.
    AuditEntry,
    /// A webhook endpoint.
    Endpoint,
    /// A message in the outbox.
    Message,
    /// A published policy version.
    Version,
    /// An incident.
    Incident,
    /// A transfer plan.
    Transfer,
    /// An external system (a dataset asked by webhook).
    System,
}

/// Everything an operation on the vault can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name the policy does not declare. It is never repeated back, in a message or the
    /// audit log: a name the policy does not have may be anything — a value sent in the wrong
    /// field, an email address.
    #[error("unknown {kind}: the policy declares no {kind} of the name given")]
    Unknown {
        /// What kind of name.
        kind: NameKind,
    },
    /// P3: the feature does not declare these categories.
    #[error("feature `{feature}` does not collect {categories}")]
    CategoryNotDeclared {
        /// The feature.
        feature: String,
        /// The categories, quoted.
        categories: String,
    },
    /// P3: a required category is missing.
    #[error("feature `{feature}` requires {categories}")]
    RequiredMissing {
        /// The feature.
        feature: String,
        /// The missing categories, quoted.
        categories: String,
    },
    /// A consent that the act needs is not in force.
    #[error("{what} needs the subject's consent to `{target}`, which is not in force")]
    ConsentRequired {
        /// What was attempted.
        what: String,
        /// The consent target (`feature:face_recognition`, ...).
        target: String,
    },
    /// P25: a lookup value already belongs to another subject.
    #[error(
        "this `{category}` value already belongs to another subject: a value subjects are found and sign in by belongs to one subject"
    )]
    IdentityInUse {
        /// The lookup category.
        category: String,
    },
    /// P16: a consent is in force but not the separate one the act needs (a transfer abroad,
    /// PIPL art. 39).
    #[error(
        "{what} needs the subject's separate consent to `{target}`; the consent given is not separate"
    )]
    NotSeparate {
        /// What was attempted.
        what: String,
        /// The consent target.
        target: String,
    },
    /// P5: sensitive categories need the subject's separate consent to the feature.
    #[error(
        "sensitive categories {categories} need the subject's separate consent to feature `{feature}`"
    )]
    SeparateConsentRequired {
        /// The feature.
        feature: String,
        /// The sensitive categories, quoted.
        categories: String,
    },
    /// A purpose decision refused the read (P9, P10, P21).
    #[error("{message} (rule `{rule}`)")]
    Refused {
        /// Which refusal.
        refusal: Refusal,
        /// The policy rule that refused.
        rule: String,
        /// Plain explanation.
        message: String,
    },
    /// P21: the caller's role may not perform this operation at all.
    #[error("role `{role}` may not perform `{operation}`")]
    NotPermitted {
        /// The caller's role.
        role: String,
        /// The operation (`pi.read`, `subject.erase`, ...).
        operation: &'static str,
    },
    /// P13: the disclosure is outside the recipient's registered scope.
    #[error("recipient `{recipient}` may not receive this: {reason}")]
    DisclosureOutOfScope {
        /// The recipient.
        recipient: String,
        /// Why.
        reason: String,
    },
    /// Consent cannot be given to something that does not rest on consent.
    #[error("`{target}` does not rest on consent: {reason}")]
    ConsentNotApplicable {
        /// The target.
        target: String,
        /// Why.
        reason: String,
    },
    /// P18: a legal hold pauses deletion of this data.
    #[error("a legal hold pauses deletion of {categories}")]
    LegalHold {
        /// What is held.
        categories: String,
    },
    /// P7: a browser call from a site that is not one of the provider's.
    #[error("this page's origin is not one of the provider's sites (`allowed_origins`)")]
    OriginNotAllowed,
    /// P7: a grant under Global Privacy Control without the person's explicit act.
    #[error(
        "the request carries Global Privacy Control (`Sec-GPC: 1`), the person's refusal of every non-essential use: a grant is recorded only with the explicit action that gave it (`action`)"
    )]
    GpcSignal,
    /// The subject's account is closed: nothing more is collected for it (P28).
    #[error("the subject's account is closed; nothing more is collected for it")]
    ClosedToCollection,
    /// The subject's account is closed; only legal obligations may still read it (P28).
    #[error(
        "the subject's account is closed; only purposes resting on a legal obligation may read it"
    )]
    SubjectClosed,
    /// A rights request cannot move that way.
    #[error("the request is `{}`; it cannot be {}{}", .state.as_str(), .event.as_str(), request_hint(*.state, *.event))]
    RequestState {
        /// Where it is.
        state: steward_store::RequestState,
        /// What was asked.
        event: steward_store::RequestEvent,
    },
    /// Too many attempts from this client or for this subject; try again later (P25).
    #[error("too many attempts; try again later")]
    TooManyAttempts,
    /// The one-time code is wrong, expired or used up.
    #[error("the code is wrong, expired or used up; ask for a new one")]
    CodeInvalid,
    /// Email cannot be sent right now.
    #[error("email cannot be sent right now; try again later")]
    MailUnavailable,
    /// A provider database a dataset declares cannot be reached or refused a statement.
    #[error("system `{system}`: {reason}")]
    DatasetUnavailable {
        /// The dataset's key.
        system: String,
        /// What went wrong, without any value.
        reason: String,
    },
    /// No valid credentials were presented.
    #[error("authentication required: present a valid API key as `Authorization: Bearer <key>`")]
    Unauthenticated,
    /// An external system's answer is not signed by its endpoint's secret, or not now.
    #[error(
        "the answer is not signed with the system's webhook secret as Standard Webhooks says (`webhook-id`, `webhook-timestamp` within 5 minutes of now, `webhook-signature`)"
    )]
    SignatureInvalid,
    /// A staff sign-in failed: wrong username or password, or a disabled account.
    #[error("the username or password is wrong, or the account is disabled")]
    SignInFailed,
    /// No request, hold or key has the id given.
    #[error("no {} has this id", missing_name(*.0))]
    NotFound(Missing),
    /// The act conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// No such subject.
    #[error("subject not found")]
    SubjectNotFound,
    /// The subject has been erased.
    #[error("subject has been erased")]
    SubjectErased,
    /// The subject's data key no longer exists: the data is unreadable by design (P28).
    #[error("the subject's data key has been destroyed; the data cannot be read")]
    KeyDestroyed,
    /// A category that has no blind index was used for a lookup.
    #[error("category `{0}` is not a lookup category")]
    NotLookup(String),
    /// P16: the store's region is not one the policy allows.
    #[error("storage region `{region}` is not allowed by the policy (allowed: {allowed})")]
    RegionNotAllowed {
        /// The store's region.
        region: String,
        /// The policy's regions.
        allowed: String,
    },
    /// P11: the purpose is new or wider in a later version than the subject's data, and the
    /// subject has not consented since it took effect.
    #[error(
        "purpose `{purpose}` changed in policy version `{version}`, after this subject's data was collected: it needs the subject's fresh consent, given after that version took effect"
    )]
    ReconsentRequired {
        /// The purpose.
        purpose: String,
        /// The version that changed it.
        version: String,
    },
    /// P29, P30: a material change would take effect inside the notice period.
    #[error(
        "version `{version}` makes changes users must be told of {days} days ahead: it can take effect on {earliest} at the earliest"
    )]
    NoticePeriod {
        /// The version published.
        version: String,
        /// The notice period, days.
        days: u32,
        /// The earliest effective date allowed (UTC).
        earliest: String,
    },
    /// P14: a transfer must be announced `change_notice_days` ahead.
    #[error(
        "subjects must be told of a transfer {days} days ahead: it can be planned for {earliest} at the earliest"
    )]
    TransferTooSoon {
        /// The notice period, days.
        days: u32,
        /// The earliest date allowed (UTC).
        earliest: String,
    },
    /// P14: a transfer does not run before its date.
    #[error("the transfer is planned for {date}; it cannot run before then")]
    TransferNotDue {
        /// Its date (UTC).
        date: String,
    },
    /// P29: a policy text that does not validate or does not follow the version before it.
    #[error("{0}")]
    PolicyInvalid(String),
    /// P29, P30: the policy's effective date is still to come.
    #[error(
        "policy `{version}` takes effect on {effective}, not before: until then give the version in force (--policy or `policy` in the config)"
    )]
    PolicyNotEffective {
        /// The policy's version label.
        version: String,
        /// Its effective date.
        effective: String,
    },
    /// No store where the settings point: only commands that exist to make one may.
    #[error("{0}")]
    NoStore(String),
    /// P20: the master key is not the one the store was made with.
    #[error(
        "the master key is not the one this store was made with; nothing was written (give the store's own key: $STEWARD_MASTER_KEY or master_key_file)"
    )]
    WrongMasterKey,
    /// Malformed input.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written: what, and the kind of failure.
    #[error("{what}: {kind}")]
    Io {
        /// Which file or directory, and what was being done.
        what: String,
        /// The kind of failure (never the OS message, which may quote a path's contents).
        kind: std::io::ErrorKind,
    },
    /// A backup file is damaged, foreign or of the wrong half.
    #[error("{0}")]
    BackupInvalid(String),
    /// Evidence (a document, a log, a key) does not verify or cannot be read.
    #[error("{0}")]
    EvidenceInvalid(String),
    /// P33: the audit log or its checkpoints were tampered with; nothing was signed.
    #[error("the audit log failed verification, so it was not signed: {0}")]
    Tampered(steward_audit::Fault),
    /// Something that should not happen did.
    #[error("internal failure: {0}")]
    Internal(&'static str),
    /// A ciphertext failed to open: altered, or moved to another row (P20).
    #[error("a stored value failed its integrity check")]
    Integrity,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key handling failed.
    #[error(transparent)]
    Crypto(CryptoError),
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Open => Error::Integrity,
            other => Error::Crypto(other),
        }
    }
}

impl Error {
    /// The stable code for APIs, exit statuses and the audit log. Exhaustive: a new variant
    /// cannot compile without a code, and the code decides the HTTP status.
    pub fn code(&self) -> Code {
        match self {
            Error::Unknown { kind, .. } => match kind {
                NameKind::Category => Code::UnknownCategory,
                NameKind::Purpose => Code::UnknownPurpose,
                NameKind::Feature => Code::UnknownFeature,
                NameKind::Role => Code::UnknownRole,
                NameKind::Recipient => Code::UnknownRecipient,
            },
            Error::CategoryNotDeclared { .. } => Code::CategoryNotDeclared,
            Error::IdentityInUse { .. } => Code::IdentityInUse,
            Error::RequiredMissing { .. } => Code::RequiredCategoryMissing,
            Error::ConsentRequired { .. } => Code::ConsentRequired,
            Error::SeparateConsentRequired { .. } | Error::NotSeparate { .. } => {
                Code::SeparateConsentRequired
            }
            Error::Refused { refusal, .. } => refusal_code(refusal),
            Error::NotPermitted { .. } => Code::OperationNotPermitted,
            Error::DisclosureOutOfScope { .. } => Code::DisclosureOutOfScope,
            Error::ConsentNotApplicable { .. } => Code::ConsentNotApplicable,
            Error::LegalHold { .. } => Code::LegalHold,
            Error::GpcSignal => Code::GpcSignal,
            Error::OriginNotAllowed => Code::OriginNotAllowed,
            Error::SubjectClosed | Error::ClosedToCollection => Code::SubjectClosed,
            Error::RequestState { .. } => Code::RequestState,
            Error::TooManyAttempts => Code::TooManyAttempts,
            Error::CodeInvalid => Code::CodeInvalid,
            Error::MailUnavailable => Code::MailUnavailable,
            Error::DatasetUnavailable { .. } => Code::DatasetUnavailable,
            Error::Unauthenticated | Error::SignatureInvalid => Code::Unauthenticated,
            Error::SignInFailed => Code::SignInFailed,
            Error::NotFound(Missing::Request) => Code::RequestNotFound,
            Error::NotFound(Missing::Hold) => Code::HoldNotFound,
            Error::NotFound(Missing::ApiKey) => Code::KeyNotFound,
            Error::NotFound(Missing::AuditEntry) => Code::EntryNotFound,
            Error::NotFound(Missing::Endpoint) => Code::EndpointNotFound,
            Error::NotFound(Missing::Message) => Code::MessageNotFound,
            Error::NotFound(Missing::Version) => Code::VersionNotFound,
            Error::NotFound(Missing::Incident) => Code::IncidentNotFound,
            Error::NotFound(Missing::Transfer) => Code::TransferNotFound,
            Error::NotFound(Missing::System) => Code::SystemNotFound,
            Error::TransferTooSoon { .. } => Code::TransferTooSoon,
            Error::TransferNotDue { .. } => Code::TransferNotDue,
            Error::Conflict(_) => Code::Conflict,
            Error::SubjectNotFound => Code::SubjectNotFound,
            Error::SubjectErased => Code::SubjectErased,
            Error::KeyDestroyed => Code::DataKeyDestroyed,
            Error::NotLookup(_) => Code::CategoryNotLookup,
            Error::RegionNotAllowed { .. } => Code::RegionNotAllowed,
            Error::WrongMasterKey => Code::MasterKeyMismatch,
            Error::NoStore(_) => Code::StoreNotFound,
            Error::PolicyNotEffective { .. } => Code::PolicyNotEffective,
            Error::ReconsentRequired { .. } => Code::ReconsentRequired,
            Error::NoticePeriod { .. } => Code::NoticePeriod,
            Error::PolicyInvalid(_) => Code::PolicyInvalid,
            Error::Invalid(_) => Code::InvalidInput,
            Error::Io { .. } => Code::IoFailed,
            Error::BackupInvalid(_) => Code::BackupInvalid,
            Error::EvidenceInvalid(_) => Code::EvidenceInvalid,
            Error::Tampered(_) => Code::AuditLogTampered,
            Error::Internal(_) => Code::Internal,
            Error::Integrity => Code::IntegrityFailure,
            Error::Store(e) => match e {
                StoreError::Unavailable(_) => Code::StorageUnavailable,
                StoreError::Full(_) => Code::StorageFull,
                StoreError::Corrupt(_) => Code::StorageCorrupt,
                StoreError::Conflict(_) => Code::Conflict,
                StoreError::Backend(_) | StoreError::Incompatible(_) | StoreError::Stream(_) => {
                    Code::StorageFailed
                }
            },
            Error::Crypto(_) => Code::KeyFailure,
        }
    }

    /// An I/O failure on `what`, keeping only the kind of failure.
    pub fn io(what: impl Into<String>, e: &std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            kind: e.kind(),
        }
    }
}

/// The code of a policy refusal; exhaustive over the policy's refusals.
pub fn refusal_code(r: &Refusal) -> Code {
    match r {
        Refusal::RoleLacksPurpose { .. } => Code::RoleNotPermitted,
        Refusal::CategoriesNotAllowed { .. } => Code::PurposeNotAllowed,
        Refusal::JustificationRequired { .. } => Code::JustificationRequired,
        Refusal::ConsentRequired { .. } => Code::ConsentRequired,
    }
}

/// Why a move is refused, where the state says more than "it cannot".
fn request_hint(
    state: steward_store::RequestState,
    event: steward_store::RequestEvent,
) -> &'static str {
    use steward_store::{RequestEvent as E, RequestState as S};
    match (state, event) {
        (S::Received, E::Complete | E::Start) => " before identity is verified (P25)",
        _ => "",
    }
}

fn missing_name(m: Missing) -> &'static str {
    match m {
        Missing::Request => "rights request",
        Missing::Hold => "legal hold",
        Missing::ApiKey => "API key",
        Missing::AuditEntry => "audit entry of this subject",
        Missing::Endpoint => "webhook endpoint",
        Missing::Message => "message",
        Missing::Version => "policy version",
        Missing::Incident => "incident",
        Missing::Transfer => "transfer plan",
        Missing::System => "external system",
    }
}

/// A caller-supplied name as a message may show it: only if it has the shape of a policy name.
/// Quotes names for messages: `a`, `b`.
pub(crate) fn quoted<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
