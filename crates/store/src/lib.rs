//! Persistence for Steward: the storage traits every backend implements, and the embedded
//! SQLite backend that is the default (P35).
//!
//! A [`Store`] applies one unit of work — data changes plus their audit entries — in a single
//! transaction (P21: no audit, no act). The audit chain is extended inside that transaction, so
//! an act and its entry commit together or not at all. A [`Keyring`] holds the wrapped
//! per-subject data keys apart from the data, so that destroying one erases the subject
//! everywhere the data was copied (P28). Every table the domain owns is keyed by subject.

mod backup;
pub mod conformance;
pub mod migrations;
mod outbox;
mod postgres;
mod request;
mod sqlite;
mod versions;

pub use backup::Half;
pub use outbox::{Delivery, EndpointRow, OutboxRow, OutboxState};
pub use postgres::citus;
/// TLS to PostgreSQL as libpq's `sslmode` asks (also used for the provider's own databases).
pub use postgres::tls as pg_tls;
pub use postgres::{
    DATA_TABLES, PgKeyring, PgStore, PgTarget, RECORDS_MANY, STATES_MANY, SUBJECT_RECORDS,
    SUBJECT_STATE, test_url,
};
pub use request::{RequestEvent, RequestState};
pub use sqlite::{
    OpenCheck, SETTINGS as SQLITE_SETTINGS, SqliteKeyring, SqliteStore,
    file_problems as sqlite_file_problems, set_open_check,
};
pub use steward_audit::{Checkpoint, Draft, Entry, RawEntry};
pub use versions::{PolicyEventRow, PolicyVersionRow};

/// Which backend a deployment runs on, and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: a data file and a keyring file in a directory.
    Sqlite {
        /// The directory holding `steward.db` and `keyring.db`.
        dir: std::path::PathBuf,
    },
    /// PostgreSQL: the data in one schema, the keyring in another, each through its own
    /// connection string so that the keyring can have its own credentials (P20).
    Postgres {
        /// Where the data lives.
        data: PgTarget,
        /// Where the wrapped data keys live.
        keyring: PgTarget,
    },
}

/// A backend's store and keyring, opened.
pub type Opened = (Box<dyn Store>, Box<dyn Keyring>);

/// File names inside a SQLite data directory.
pub mod files {
    /// The data store.
    pub const DATA: &str = "steward.db";
    /// The keyring, apart from the data (P20, P28).
    pub const KEYRING: &str = "keyring.db";
}

impl Backend {
    /// The backend a setting names: a `postgres://` (or `postgresql://`) connection string
    /// selects PostgreSQL; without one the embedded store in `dir` is used.
    pub fn choose(
        dir: &std::path::Path,
        database: Option<&str>,
        schema: &str,
        keyring_database: Option<&str>,
        keyring_schema: &str,
    ) -> Result<Backend, StoreError> {
        match database {
            None => {
                if keyring_database.is_some() {
                    return Err(StoreError::Incompatible(
                        "a keyring database is only used with a PostgreSQL database".into(),
                    ));
                }
                Ok(Backend::Sqlite {
                    dir: dir.to_path_buf(),
                })
            }
            Some(url) => {
                let postgres =
                    |u: &str| u.starts_with("postgres://") || u.starts_with("postgresql://");
                if !postgres(url) || keyring_database.is_some_and(|k| !postgres(k)) {
                    return Err(StoreError::Incompatible(
                        "a database must be a postgres:// connection string".into(),
                    ));
                }
                if schema == keyring_schema && keyring_database.is_none_or(|k| k == url) {
                    return Err(StoreError::Incompatible(
                        "the keyring needs its own schema, apart from the data".into(),
                    ));
                }
                Ok(Backend::Postgres {
                    data: PgTarget::new(url, schema)?,
                    keyring: PgTarget::new(keyring_database.unwrap_or(url), keyring_schema)?,
                })
            }
        }
    }

    /// Opens (creating and migrating as needed) the store and keyring.
    pub fn open(&self) -> Result<Opened, StoreError> {
        match self {
            Backend::Sqlite { dir } => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Backend(format!("cannot create `{}`: {}", dir.display(), e.kind()))
                })?;
                Ok((
                    Box::new(SqliteStore::open(&dir.join(files::DATA))?),
                    Box::new(SqliteKeyring::open(&dir.join(files::KEYRING))?),
                ))
            }
            Backend::Postgres { data, keyring } => Ok((
                Box::new(PgStore::open(data)?),
                Box::new(PgKeyring::open(keyring)?),
            )),
        }
    }

    /// Opens the data store alone (verifying, backing up), without touching the keyring.
    pub fn open_data(&self) -> Result<Box<dyn Store>, StoreError> {
        match self {
            Backend::Sqlite { dir } => Ok(Box::new(SqliteStore::open(&dir.join(files::DATA))?)),
            Backend::Postgres { data, .. } => Ok(Box::new(PgStore::open(data)?)),
        }
    }

    /// Whether calls wait on a network round trip (so servers should not make them on
    /// their async workers).
    pub fn remote(&self) -> bool {
        matches!(self, Backend::Postgres { .. })
    }

    /// A description for logs: the backend and where, never credentials.
    pub fn describe(&self) -> String {
        match self {
            Backend::Sqlite { dir } => format!("sqlite:{}", dir.display()),
            Backend::Postgres { data, keyring } => format!(
                "postgres (data schema `{}`, keyring schema `{}`)",
                data.schema, keyring.schema
            ),
        }
    }
}

/// A subject's id: 16 random bytes.
pub type SubjectKey = [u8; 16];

/// Storage failures. Messages name tables and operations, never values.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed.
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// The backend cannot be reached (down, restarting, connection lost). Nothing of the
    /// failed call was applied; the same call may succeed once the backend is back.
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
    /// Stored data is not in the shape this build expects.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The backend is out of space (SQLite `SQLITE_FULL`, PostgreSQL `53100`). Nothing of the
    /// failed call was applied; the same call may succeed once space is freed.
    #[error("storage is full: {0}")]
    Full(String),
    /// A row with the same key exists already (a unique constraint).
    #[error("already stored: {0}")]
    Conflict(String),
    /// A backup stream could not be read or written; the kind of failure
    /// (`InvalidData`: the stream is damaged or was sealed under another key).
    #[error("backup stream failed: {0}")]
    Stream(std::io::ErrorKind),
    /// The store was made by a newer build or for another deployment.
    #[error("{0}")]
    Incompatible(String),
}

/// Whether writes are failing for want of space: raised by a write that failed with
/// [`StoreError::Full`], lowered by one that succeeded. Readiness reads it (P34: a full disk is
/// named, and the store answers not ready until a write succeeds again).
#[derive(Debug, Default)]
pub struct SpaceWatch(std::sync::atomic::AtomicBool);

impl SpaceWatch {
    /// Takes note of a write's outcome.
    pub fn observe<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => self.0.store(false, std::sync::atomic::Ordering::Relaxed),
            Err(StoreError::Full(_)) => self.0.store(true, std::sync::atomic::Ordering::Relaxed),
            Err(_) => {}
        }
    }

    /// Takes note of a batch's outcomes: raised if any unit failed for space.
    pub fn observe_each<T>(&self, results: &[Result<T, StoreError>]) {
        match results
            .iter()
            .find(|r| matches!(r, Err(StoreError::Full(_))))
        {
            Some(full) => self.observe(full),
            None => {
                if let Some(ok) = results.iter().find(|r| r.is_ok()) {
                    self.observe(ok);
                }
            }
        }
    }

    /// Whether the last write that succeeded or failed for space failed.
    pub fn full(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Every row of the state that decides reads ([`Store::state_rows`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateRows {
    /// Every subject.
    pub subjects: Vec<SubjectRow>,
    /// Every consent in force.
    pub consents: Vec<ConsentRow>,
    /// Every hold.
    pub holds: Vec<HoldRow>,
}

/// A consent whose events are stored but whose state in force is not: the store lost a row.
pub(crate) fn consent_lost() -> StoreError {
    StoreError::Corrupt("a consent has recorded events but no state in force".into())
}

/// Where a subject is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SubjectState {
    /// Normal.
    Active,
    /// The account was cancelled: erasure is scheduled after the policy's grace period (P28).
    Closed,
    /// The data key is being (or has been) destroyed; ciphertext awaits purging.
    Erasing,
    /// Key destroyed and ciphertext purged.
    Erased,
}

impl SubjectState {
    /// Stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectState::Active => "active",
            SubjectState::Closed => "closed",
            SubjectState::Erasing => "erasing",
            SubjectState::Erased => "erased",
        }
    }

    fn parse(s: &str) -> Option<SubjectState> {
        match s {
            "active" => Some(SubjectState::Active),
            "closed" => Some(SubjectState::Closed),
            "erasing" => Some(SubjectState::Erasing),
            "erased" => Some(SubjectState::Erased),
            _ => None,
        }
    }
}

/// One step a rights request took: the state it entered, when, and by whose act (the console's
/// request history). A request enters each state at most once ([`RequestState::on`] has no
/// cycles), so `(subject, request, state)` names a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestStepRow {
    /// Whose request.
    pub subject: SubjectKey,
    /// The request's id.
    pub request: String,
    /// The state it entered.
    pub state: RequestState,
    /// When.
    pub at_ms: i64,
    /// Who moved it: `staff:<name>`, `service:<name>`, `subject` or `system`.
    pub actor: String,
}

/// Where a request's erasure stands in one of the provider's other databases (issue 16,
/// `docs/datasets.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSystemRow {
    /// Whose request.
    pub subject: SubjectKey,
    /// The request's id.
    pub request: String,
    /// The dataset's key.
    pub system: String,
    /// `waiting` (no plan yet: a database could not be read), `planned` (a plan to carry
    /// out), `done` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When to try again.
    pub next_ms: i64,
    /// Why the last attempt failed (no value), or empty.
    pub reason: String,
    /// The plan, sealed under the subject's data key; empty before there is one.
    pub sealed_plan: Vec<u8>,
    /// What was done, as compact JSON (counts per table), once done.
    pub result: String,
    /// When last changed.
    pub updated_ms: i64,
}

/// One end of a link between a subject and a visitor's device (P19).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRow {
    /// The other end.
    pub other: SubjectKey,
    /// `device`: the other end is a visitor linked to this subject; `owner`: the other end is
    /// the subject this visitor is linked to.
    pub kind: String,
    /// When linked.
    pub linked_ms: i64,
}

/// A data subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectRow {
    /// Id.
    pub id: SubjectKey,
    /// Life state.
    pub state: SubjectState,
    /// When registered.
    pub created_ms: i64,
    /// When the account closed, if it did.
    pub closed_ms: Option<i64>,
    /// Authenticity tag of (id, state), from the core; empty on a row written before tags.
    pub tag: Vec<u8>,
}

/// One encrypted PI value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRow {
    /// Record id, from [`Store::next_record_ids`].
    pub id: i64,
    /// Owner.
    pub subject: SubjectKey,
    /// Category name.
    pub category: String,
    /// Feature that collected it.
    pub feature: String,
    /// Source (P6): `subject`, `observed` or `third_party:<name>`.
    pub source: String,
    /// When collected.
    pub collected_ms: i64,
    /// nonce || ciphertext || tag, bound to (subject, category, id).
    pub sealed: Vec<u8>,
}

/// A keyed blind index entry for a lookup value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexRow {
    /// HMAC digest of the normalised value.
    pub digest: [u8; 16],
    /// Owner.
    pub subject: SubjectKey,
    /// The record it points at.
    pub record: i64,
}

/// One consent event; the latest per (subject, target) is the state in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRow {
    /// Owner.
    pub subject: SubjectKey,
    /// `purpose:<name>`, `feature:<name>` or `recipient:<name>`.
    pub target: String,
    /// Granted or withdrawn.
    pub granted: bool,
    /// Separate, explicit consent (P5, PIPL art. 29).
    pub separate: bool,
    /// How it was given (`web`, `app`, `api`, ...).
    pub channel: String,
    /// Policy version the subject saw.
    pub policy_version: String,
    /// When.
    pub at_ms: i64,
    /// The audit entry that recorded it.
    pub audit_seq: u64,
    /// Authenticity tag of (subject, target, granted, separate, at_ms), from the core; empty
    /// on a row written before tags.
    pub tag: Vec<u8>,
}

/// The consent in force that a read decides on, with what its tag covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldConsent {
    /// Granted or withdrawn.
    pub granted: bool,
    /// Separate, explicit consent.
    pub separate: bool,
    /// When.
    pub at_ms: i64,
    /// See [`ConsentRow::tag`].
    pub tag: Vec<u8>,
}

/// One disclosure to a recipient (P13, P15).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisclosureRow {
    /// Owner.
    pub subject: SubjectKey,
    /// Recipient name, or the authority for a legal disclosure.
    pub recipient: String,
    /// Category names, comma-separated.
    pub categories: String,
    /// Purpose name, or empty for a legal disclosure.
    pub purpose: String,
    /// Legal basis text for a disclosure required by law, or empty.
    pub legal_basis: String,
    /// When.
    pub at_ms: i64,
    /// The audit entry that recorded it.
    pub audit_seq: u64,
}

/// What [`Store::subject_file`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectFile {
    /// The subject, if there is one.
    pub subject: Option<SubjectRow>,
    /// Their records, by id.
    pub records: Vec<RecordRow>,
    /// Consents in force, by target.
    pub consents: Vec<ConsentRow>,
    /// Every consent event, oldest first.
    pub history: Vec<ConsentRow>,
    /// Every disclosure, oldest first.
    pub disclosures: Vec<DisclosureRow>,
}

/// What [`Store::subject_records`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectRecords {
    /// The subject's state.
    pub state: SubjectState,
    /// Its tag ([`SubjectRow::tag`]).
    pub state_tag: Vec<u8>,
    /// When the subject was registered: whether their data predates a policy version (P11).
    pub created_ms: i64,
    /// The consent in force for the target asked about (none when none was asked or none is
    /// held).
    pub consent: Option<HeldConsent>,
    /// The records, by id.
    pub records: Vec<RecordRow>,
}

/// A service API key: only a digest of its secret is stored (P21, P25).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// Public id, the part of the key before its secret.
    pub id: String,
    /// What the key is for (`billing`, `console`).
    pub name: String,
    /// The policy role it acts under.
    pub role: String,
    /// SHA-256 of the secret.
    pub digest: [u8; 32],
    /// When created.
    pub created_ms: i64,
    /// Revoked keys authenticate nothing.
    pub revoked: bool,
}

/// A legal hold: deletion of a subject's data (all, or some categories) is paused (P18).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldRow {
    /// Id.
    pub id: String,
    /// Whose data.
    pub subject: SubjectKey,
    /// Category names, comma-separated; empty for all of the subject's data.
    pub categories: String,
    /// Reason code: `statute`, `court_order`, `authority_request`, `dispute`.
    pub reason: String,
    /// Reference (case number, letter): no PI.
    pub reference: String,
    /// When placed.
    pub placed_ms: i64,
    /// When it ends by itself.
    pub until_ms: i64,
    /// When lifted early, if it was.
    pub lifted_ms: Option<i64>,
    /// Authenticity tag of every field above, from the core; empty on a row written before
    /// tags.
    pub tag: Vec<u8>,
}

impl HoldRow {
    /// Whether the hold is in force at `now_ms`.
    pub fn active_at(&self, now_ms: i64) -> bool {
        self.lifted_ms.is_none() && self.until_ms > now_ms
    }

    /// Whether it covers `category`.
    pub fn covers(&self, category: &str) -> bool {
        self.categories.is_empty() || self.categories.split(',').any(|c| c == category)
    }
}

/// A rights request (P23-P28, P31) and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRow {
    /// Id.
    pub id: String,
    /// Whose.
    pub subject: SubjectKey,
    /// Kind (`access`, `deletion`, ...).
    pub kind: String,
    /// Where it stands.
    pub state: RequestState,
    /// For consent withdrawals, the consent target; else empty.
    pub target: String,
    /// When received.
    pub received_ms: i64,
    /// When it must be answered by (P32).
    pub due_ms: i64,
    /// When last changed.
    pub updated_ms: i64,
    /// How identity was verified (P25), once it was.
    pub verification: String,
    /// Outcome facts as compact JSON (refusal reason, what was done), or empty.
    pub outcome: String,
    /// The subject's own words (an inquiry), sealed under their data key; may be empty.
    pub sealed_text: Vec<u8>,
}

/// Where one record is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordKey {
    /// Owner.
    pub subject: SubjectKey,
    /// Category.
    pub category: String,
    /// Record id.
    pub id: i64,
}

/// A one-time sign-in code awaiting its use (P25): only a keyed digest is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtpRow {
    /// For whom.
    pub subject: SubjectKey,
    /// Keyed digest of the code.
    pub digest: [u8; 16],
    /// When it stops working.
    pub expires_ms: i64,
    /// Wrong guesses so far.
    pub attempts: u32,
}

/// A staff account (P21): a policy role and an Argon2id password hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffRow {
    /// Sign-in name.
    pub username: String,
    /// The policy role the account acts under.
    pub role: String,
    /// Argon2id hash in PHC string form.
    pub password_hash: String,
    /// When created.
    pub created_ms: i64,
    /// Disabled accounts cannot sign in.
    pub disabled: bool,
}

/// One change inside a unit of work.
#[derive(Clone, Debug)]
pub enum Op {
    /// Register a subject.
    InsertSubject(SubjectRow),
    /// Move a subject to another state.
    SetSubjectState {
        /// Whom.
        subject: SubjectKey,
        /// New state.
        state: SubjectState,
        /// The row's new tag.
        tag: Vec<u8>,
    },
    /// Store encrypted values.
    InsertRecords(Vec<RecordRow>),
    /// Store blind index entries.
    InsertIndex(Vec<IndexRow>),
    /// Record a consent event and make it the state in force. Its `audit_seq` is filled in
    /// with the seq of the unit's first audit entry.
    RecordConsent(ConsentRow),
    /// Record a disclosure. Its `audit_seq` is filled in likewise.
    InsertDisclosure(DisclosureRow),
    /// Queue a subject's ciphertext for purging.
    EnqueuePurge {
        /// Whom.
        subject: SubjectKey,
        /// When queued.
        at_ms: i64,
    },
    /// Take a subject off the purge queue.
    DequeuePurge {
        /// Whom.
        subject: SubjectKey,
    },
    /// Keep a signed erasure certificate.
    StoreCertificate {
        /// Whom.
        subject: SubjectKey,
        /// The certificate document.
        document: String,
    },
    /// Close a subject's account at a time (P28): erasure follows after the grace period.
    CloseSubject {
        /// Whom.
        subject: SubjectKey,
        /// When.
        at_ms: i64,
        /// The row's new tag (state `closed`).
        tag: Vec<u8>,
    },
    /// Delete individual records and their index entries (retention, partial deletion).
    DeleteRecords(Vec<RecordKey>),
    /// Place a legal hold.
    PlaceHold(HoldRow),
    /// Lift a hold early.
    LiftHold {
        /// Whose data it holds.
        subject: SubjectKey,
        /// Its id.
        id: String,
        /// When.
        at_ms: i64,
        /// The row's new tag (lifted at `at_ms`).
        tag: Vec<u8>,
    },
    /// Tag a consent in force written before tags (its event history keeps what it had).
    TagConsent {
        /// Whose.
        subject: SubjectKey,
        /// To what.
        target: String,
        /// The tag.
        tag: Vec<u8>,
    },
    /// Tag a hold written before tags.
    TagHold {
        /// Whose data it holds.
        subject: SubjectKey,
        /// Its id.
        id: String,
        /// The tag.
        tag: Vec<u8>,
    },
    /// Create or update a rights request.
    PutRequest(RequestRow),
    /// Record a step a request took; a step already there is kept as it is.
    RequestStep(RequestStepRow),
    /// Create or replace where a request's erasure stands in one system.
    PutRequestSystem(RequestSystemRow),
    /// Issue (or replace) a subject's one-time code.
    PutOtp(OtpRow),
    /// Void a subject's one-time code.
    DeleteOtp {
        /// Whose.
        subject: SubjectKey,
    },
    /// Set an attempt counter (rate limits, P25).
    PutAttempts {
        /// What is counted: `otp-send:<subject>`, `otp-fail:client:<addr>`, ...
        key: String,
        /// When the counting window started.
        window_ms: i64,
        /// Attempts in the window.
        count: u32,
    },
    /// Start a subject's signed-in session.
    PutSession {
        /// SHA-256 of the session token.
        digest: [u8; 32],
        /// Whose session.
        subject: SubjectKey,
        /// When it ends.
        expires_ms: i64,
    },
    /// Create or update a staff account.
    PutStaff(StaffRow),
    /// Start a staff member's session.
    PutStaffSession {
        /// SHA-256 of the session token.
        digest: [u8; 32],
        /// Whose session.
        username: String,
        /// When it ends.
        expires_ms: i64,
    },
    /// Store a new API key.
    InsertApiKey(ApiKeyRow),
    /// Revoke an API key.
    RevokeApiKey {
        /// Its id.
        id: String,
    },
    /// Record the language a subject is written to in; `None` forgets it (erasure).
    SetLanguage {
        /// Whose.
        subject: SubjectKey,
        /// `zh-CN` or `en`, or none.
        language: Option<String>,
        /// When.
        at_ms: i64,
    },
    /// Link a visitor's device to a subject (P19): a row under each end's key. A link already
    /// there is kept as it is.
    LinkDevice {
        /// The person.
        subject: SubjectKey,
        /// The visitor (the subject whose key is the device id's keyed digest).
        visitor: SubjectKey,
        /// When.
        at_ms: i64,
    },
    /// Forget every link row held under `subject`'s key (its erasure).
    ForgetLinks {
        /// Whose.
        subject: SubjectKey,
    },
    /// Write messages to the outbox, to be delivered once the unit commits.
    Enqueue(Vec<OutboxRow>),
    /// Store a published policy version; its version string must be new.
    PublishPolicy(PolicyVersionRow),
    /// Record what subjects were told or accepted; a row already there is kept as it is (the
    /// first time counts).
    PolicyEvents(Vec<PolicyEventRow>),
    /// Forget what a subject was told and accepted (erasure).
    ForgetPolicyEvents {
        /// Whose.
        subject: SubjectKey,
    },
    /// Put a dead (or pending) message back to be tried at `at_ms`, its attempts counted
    /// afresh.
    RetryMessage {
        /// Its id.
        id: String,
        /// When.
        at_ms: i64,
    },
    /// Register a webhook endpoint.
    PutEndpoint(EndpointRow),
    /// Stop sending to a webhook endpoint.
    DisableEndpoint {
        /// Its id.
        id: String,
    },
    /// Write a case's next revision; `(id, revision)` must be new (a second writer of the same
    /// revision gets [`StoreError::Conflict`]).
    PutCase(CaseRow),
    /// Store one computation of the subjects a case concerns, as packed chunks.
    PutCaseSet {
        /// The case.
        id: String,
        /// Which computation (from 1).
        version: i64,
        /// Sorted 16-byte subject keys, packed, a chunk each.
        chunks: Vec<Vec<u8>>,
    },
    /// Set a deployment fact.
    SetMeta {
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
}

/// One revision of a case: an incident (P22) or a transfer plan (P14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseRow {
    /// Id (`inc_…`, `trf_…`).
    pub id: String,
    /// From 1; each change writes the next.
    pub revision: i64,
    /// `incident` or `transfer`.
    pub kind: String,
    /// When this revision was written, Unix ms.
    pub at_ms: i64,
    /// The case as JSON, without PI values.
    pub doc: String,
}

/// Subject keys per chunk of a case's set ([`Op::PutCaseSet`]).
pub const CASE_CHUNK: usize = 65_536;

/// What a unit of work asks to apply: data changes and the audit entries that record them.
pub type Unit = (Vec<Op>, Vec<Draft>);

/// The reads a unit of work may make inside its transaction.
pub trait Reader {
    /// The read path's one round trip: a subject's state, whether the consent in force for
    /// `consent_target` is granted, and their records of the named categories. `None` when
    /// there is no such subject.
    fn subject_records(
        &self,
        subject: &SubjectKey,
        consent_target: Option<&str>,
        categories: &[&str],
    ) -> Result<Option<SubjectRecords>, StoreError>;
    /// Whether the consent in force for `target` is granted, and whether it was separate.
    fn consent(&self, subject: &SubjectKey, target: &str)
    -> Result<Option<ConsentRow>, StoreError>;
    /// The subjects holding a blind index digest (a lookup value), inside the unit's
    /// transaction: what a collection checks so that a sign-in identity belongs to one
    /// subject. On a distributed store it asks every shard, as [`Store::find_by_index`] does.
    fn index_holders(&self, digest: &[u8; 16]) -> Result<Vec<SubjectKey>, StoreError>;
    /// One rights request by id, as it stands inside the unit's transaction (the writer's
    /// view: a state checked here is the state the unit's changes are written against).
    fn request(&self, id: &str) -> Result<Option<RequestRow>, StoreError>;
    /// Says which [`Reader::subject_records`] calls are coming, so that a backend paying a
    /// round trip per query can fetch them together. The calls must still be made; a backend
    /// may ignore this.
    fn prefetch(&self, _wanted: &[(&SubjectKey, Option<&str>, &[&str])]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The persistence every backend provides. One conformance suite runs against each.
pub trait Store: Reader + Send + Sync {
    /// Runs `work` inside one transaction: it reads through the [`Reader`] it is given and
    /// returns the changes and audit entries to apply, which commit in that same transaction.
    /// The reads see the state the entries are written against (P21: no audit, no act).
    fn read_commit(
        &self,
        work: &mut dyn FnMut(&dyn Reader) -> Result<Unit, StoreError>,
    ) -> Result<Vec<Entry>, StoreError>;
    /// Applies `ops` and appends `audit` to the chain in one transaction. Returns the chained
    /// entries. If anything fails, nothing is applied and nothing is appended.
    fn commit(&self, ops: Vec<Op>, audit: Vec<Draft>) -> Result<Vec<Entry>, StoreError> {
        let mut unit = Some((ops, audit));
        self.read_commit(&mut |_| {
            unit.take()
                .ok_or_else(|| StoreError::Backend("a unit of work ran twice".into()))
        })
    }
    /// Commits independent units of work, each all or nothing as [`Store::commit`] would, in
    /// order; one result per unit. A backend may put them in one transaction (SQLite and
    /// PostgreSQL do, a savepoint each: that is group commit for callers a server has
    /// gathered); by default each is committed on its own.
    fn commit_each(&self, units: Vec<Unit>) -> Vec<Result<Vec<Entry>, StoreError>> {
        units
            .into_iter()
            .map(|(ops, audit)| self.commit(ops, audit))
            .collect()
    }
    /// Reserves `n` consecutive record ids and returns the first.
    fn next_record_ids(&self, n: usize) -> Result<i64, StoreError>;
    /// A subject by id.
    fn subject(&self, id: &SubjectKey) -> Result<Option<SubjectRow>, StoreError>;
    /// Several subjects by id, in the order asked. Backends that pay a round trip per query
    /// fetch them in one.
    fn subjects(&self, ids: &[SubjectKey]) -> Result<Vec<Option<SubjectRow>>, StoreError> {
        ids.iter().map(|id| self.subject(id)).collect()
    }
    /// Subjects owning a blind index digest.
    fn find_by_index(&self, digest: &[u8; 16]) -> Result<Vec<SubjectKey>, StoreError>;
    /// All of a subject's records, by id.
    fn records(&self, subject: &SubjectKey) -> Result<Vec<RecordRow>, StoreError>;
    /// Every consent in force for a subject.
    fn consents_in_force(&self, subject: &SubjectKey) -> Result<Vec<ConsentRow>, StoreError>;
    /// Every consent event of a subject, oldest first.
    fn consent_history(&self, subject: &SubjectKey) -> Result<Vec<ConsentRow>, StoreError>;
    /// Every disclosure of a subject, oldest first.
    fn disclosures(&self, subject: &SubjectKey) -> Result<Vec<DisclosureRow>, StoreError>;
    /// Everything stored about one subject (an export's reads). Backends that pay a round
    /// trip per query fetch it in one.
    fn subject_file(&self, id: &SubjectKey) -> Result<SubjectFile, StoreError> {
        Ok(SubjectFile {
            subject: self.subject(id)?,
            records: self.records(id)?,
            consents: self.consents_in_force(id)?,
            history: self.consent_history(id)?,
            disclosures: self.disclosures(id)?,
        })
    }
    /// Whether calls wait on network round trips (so servers should not make them on their
    /// async workers).
    fn remote(&self) -> bool {
        false
    }
    /// Whether the last write to meet the question of space failed for want of it
    /// ([`SpaceWatch`]); a successful write lowers it.
    fn out_of_space(&self) -> bool {
        false
    }
    /// A stored erasure certificate.
    fn certificate(&self, subject: &SubjectKey) -> Result<Option<String>, StoreError>;
    /// The last audit entry's seq and hash; `(0, GENESIS)` for an empty log.
    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError>;
    /// Streams audit entries as stored, in seq order from `from_seq`; `visit` returns false
    /// to stop. A column that is not a blob is passed as empty bytes, so the verifier reports
    /// the entry as altered.
    fn audit_scan(
        &self,
        from_seq: u64,
        visit: &mut dyn FnMut(RawEntry<'_>) -> bool,
    ) -> Result<(), StoreError>;
    /// Streams the entries from `from_seq` to `to_seq` (both included) as [`Store::audit_scan`]
    /// does, on a connection of their own where the backend has several, so that two threads
    /// can scan two parts of a long log at once (the verifier does) and no writer waits on a
    /// scan.
    fn audit_scan_range(
        &self,
        from_seq: u64,
        to_seq: u64,
        visit: &mut dyn FnMut(RawEntry<'_>) -> bool,
    ) -> Result<(), StoreError> {
        self.audit_scan(from_seq, &mut |e| e.seq <= to_seq && visit(e))
    }
    /// Claims up to `limit` pending messages due at `now_ms` and not claimed by another
    /// dispatcher (or whose claim ran out), oldest due first, until `lease_until_ms`. Several
    /// dispatchers on one store never claim a message at once.
    fn claim_outbox(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError>;
    /// Records what an attempt at message `id` came to, and releases its claim.
    fn settle_outbox(&self, id: &str, outcome: &Delivery) -> Result<(), StoreError>;
    /// Records how several deliveries went (a dispatcher's pass), at once where the backend
    /// can.
    fn settle_outbox_many(&self, outcomes: &[(String, Delivery)]) -> Result<(), StoreError> {
        for (id, outcome) in outcomes {
            self.settle_outbox(id, outcome)?;
        }
        Ok(())
    }
    /// Messages in `state` (all when `None`), newest first, at most `limit`.
    fn outbox(
        &self,
        state: Option<OutboxState>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError>;
    /// One message.
    fn message(&self, id: &str) -> Result<Option<OutboxRow>, StoreError>;
    /// The language a subject is written to in, if one was recorded.
    fn subject_language(&self, subject: &SubjectKey) -> Result<Option<String>, StoreError>;
    /// Where request `request` of `subject` stands in each system, by system.
    fn request_systems(
        &self,
        subject: &SubjectKey,
        request: &str,
    ) -> Result<Vec<RequestSystemRow>, StoreError>;
    /// The requests with a system not yet done or failed whose next attempt is due by
    /// `before_ms`: (subject, request), each once.
    fn systems_due(&self, before_ms: i64) -> Result<Vec<(SubjectKey, String)>, StoreError>;
    /// The steps request `request` of `subject` took, oldest first.
    fn request_steps(
        &self,
        subject: &SubjectKey,
        request: &str,
    ) -> Result<Vec<RequestStepRow>, StoreError>;
    /// The links held under `subject`'s key, oldest first.
    fn links(&self, subject: &SubjectKey) -> Result<Vec<LinkRow>, StoreError>;
    /// Every published policy version, in publication order.
    fn policy_versions(&self) -> Result<Vec<PolicyVersionRow>, StoreError>;
    /// Each published version's serial and digest, in publication order: what a process
    /// compares with the versions it knows, without reading their texts.
    fn policy_version_heads(&self) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(self
            .policy_versions()?
            .into_iter()
            .map(|v| (v.serial, v.digest))
            .collect())
    }
    /// What one subject was told of each version and accepted.
    fn policy_events(&self, subject: &SubjectKey) -> Result<Vec<PolicyEventRow>, StoreError>;
    /// How many subjects each (event, how) counts for one version (every shard is asked).
    fn policy_event_counts(&self, version: &str) -> Result<Vec<(String, String, u64)>, StoreError>;
    /// Up to `limit` subjects holding a record of `category`, in key order after `after`
    /// (every shard is asked): a notice campaign's pages.
    fn subjects_with_category(
        &self,
        category: &str,
        after: Option<&SubjectKey>,
        limit: usize,
    ) -> Result<Vec<SubjectKey>, StoreError>;
    /// Each subject holding a record of `category` collected through one of `features` (any
    /// when empty) between `from_ms` and `to_ms` (both included), once, in no set order: read
    /// from the record index alone — nothing decrypted (every shard is asked). What an
    /// incident's affected set and a transfer's subjects are computed from.
    fn matching_records(
        &self,
        category: &str,
        features: &[&str],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SubjectKey>, StoreError>;
    /// The latest revision of each case of `kind`, by id.
    fn cases(&self, kind: &str) -> Result<Vec<CaseRow>, StoreError>;
    /// The latest revision of one case.
    fn case(&self, id: &str) -> Result<Option<CaseRow>, StoreError>;
    /// One chunk of a case's set, if stored.
    fn case_chunk(&self, id: &str, version: i64, chunk: i64)
    -> Result<Option<Vec<u8>>, StoreError>;
    /// How many outbox messages whose id starts with `prefix` stand in each state.
    fn message_counts(&self, prefix: &str) -> Result<Vec<(OutboxState, u64)>, StoreError>;
    /// The pending messages of `event`, soonest due first.
    fn pending_messages(&self, event: &str) -> Result<Vec<OutboxRow>, StoreError>;
    /// Every webhook endpoint, oldest first.
    fn endpoints(&self) -> Result<Vec<EndpointRow>, StoreError>;
    /// Every checkpoint, by seq.
    fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;
    /// Stores a checkpoint.
    fn add_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError>;
    /// Subjects queued for purging.
    fn purge_queue(&self) -> Result<Vec<SubjectKey>, StoreError>;
    /// Deletes up to `limit` of a subject's records (and their index entries) in one
    /// transaction; returns how many records went.
    fn purge_records(&self, subject: &SubjectKey, limit: usize) -> Result<usize, StoreError>;
    /// Holds on a subject (all of them, active or not), oldest first.
    fn holds(&self, subject: &SubjectKey) -> Result<Vec<HoldRow>, StoreError>;
    /// Every hold in force at `now_ms`, across subjects.
    fn active_holds(&self, now_ms: i64) -> Result<Vec<HoldRow>, StoreError>;
    /// One hold by id.
    fn hold(&self, id: &str) -> Result<Option<HoldRow>, StoreError>;
    /// Open requests (not completed or refused) due by `before_ms`, soonest first.
    fn requests_due(&self, before_ms: i64) -> Result<Vec<RequestRow>, StoreError>;
    /// Every rights request of one subject, open or closed, oldest first.
    fn requests_of(&self, subject: &SubjectKey) -> Result<Vec<RequestRow>, StoreError>;
    /// Records of `category` collected before `before_ms`, after `after` in
    /// (collected_ms, subject, id) order, at most `limit`: the retention sweep's pages.
    fn records_collected_before(
        &self,
        category: &str,
        before_ms: i64,
        after: Option<(i64, SubjectKey, i64)>,
        limit: usize,
    ) -> Result<Vec<(i64, RecordKey)>, StoreError>;
    /// Subjects whose account closed before `before_ms` and who are not yet erased, with when
    /// it closed.
    fn closed_before(&self, before_ms: i64) -> Result<Vec<(SubjectKey, i64)>, StoreError>;
    /// A subject's pending one-time code.
    fn otp(&self, subject: &SubjectKey) -> Result<Option<OtpRow>, StoreError>;
    /// An attempt counter: window start and count.
    fn attempts(&self, key: &str) -> Result<Option<(i64, u32)>, StoreError>;
    /// A session by token digest: subject and expiry.
    fn session(&self, digest: &[u8; 32]) -> Result<Option<(SubjectKey, i64)>, StoreError>;
    /// A staff account.
    fn staff(&self, username: &str) -> Result<Option<StaffRow>, StoreError>;
    /// A staff session by token digest: username and expiry.
    fn staff_session(&self, digest: &[u8; 32]) -> Result<Option<(String, i64)>, StoreError>;
    /// Moves what is committed out of any write-ahead log into the main data files (for
    /// backups, and to read a log at rest). Committed data is durable either way.
    fn settle(&self) -> Result<(), StoreError>;
    /// Every API key, oldest first.
    fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError>;
    /// One API key by id.
    fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError>;
    /// A deployment fact.
    fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Every row of the state that decides reads — subjects, consents in force, holds — for
    /// checking against the log and for tagging rows written before tags. Reads them all.
    fn state_rows(&self) -> Result<StateRows, StoreError>;
    /// The backend's own full check of the stored structure (SQLite `integrity_check`,
    /// PostgreSQL `amcheck`): the problems found, none when sound (P34).
    fn structure_problems(&self) -> Result<Vec<String>, StoreError>;
}

/// Wrapped per-subject data keys, stored apart from the data (P20, P28).
pub trait Keyring: Send + Sync {
    /// The wrapped key of a subject, if it still exists.
    fn get(&self, subject: &SubjectKey) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores a subject's wrapped key.
    fn put(&self, subject: &SubjectKey, wrapped: &[u8]) -> Result<(), StoreError>;
    /// Destroys a subject's key so that it cannot be recovered from the keyring's files.
    /// Returns whether a key was there. Idempotent.
    fn destroy(&self, subject: &SubjectKey) -> Result<bool, StoreError>;
    /// Every subject whose key was destroyed here: the keyring's memory of erasures, which a
    /// restored data backup is reconciled against (P28). Holds ids only, no key material.
    fn destroyed(&self) -> Result<Vec<SubjectKey>, StoreError>;
    /// Whether this keyring destroyed `subject`'s key (so a missing key is an erasure, not
    /// damage).
    fn was_destroyed(&self, subject: &SubjectKey) -> Result<bool, StoreError>;
    /// The backend's own full check of the keyring's structure; none when sound.
    fn structure_problems(&self) -> Result<Vec<String>, StoreError>;
}
