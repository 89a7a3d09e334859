//! The vault: subjects, collection, consent, purpose-checked reads and disclosures.
//!
//! Every operation is one unit of work that carries its audit entry (P21: no audit, no act);
//! refusals are written to the log the same way grants are (P10).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ring::rand::SystemRandom;
use serde::Serialize;
use serde_json::json;
use steward_audit::{Draft, Outcome};
use steward_crypto::{DataKey, Keys, MasterKey, NonceSource};
use steward_policy::{Capability, FeatureId, Policy, PurposeId, RecipientId, RoleId};
use steward_store::{Backend, Keyring, Op, Store, SubjectKey, SubjectRow, SubjectState};

use crate::clock::Clock;
use crate::error::Error;

/// A data subject's id: 16 random bytes, shown as a UUID.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectId(pub SubjectKey);

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_bytes(self.0).hyphenated().fmt(f)
    }
}

impl fmt::Debug for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectId({self})")
    }
}

impl std::str::FromStr for SubjectId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        uuid::Uuid::parse_str(s)
            .map(|u| SubjectId(u.into_bytes()))
            .map_err(|_| Error::Invalid("a subject id must be a UUID".into()))
    }
}

/// Who is acting, under which role (P21).
#[derive(Clone, Debug)]
pub struct Actor {
    /// `service:<name>`, `staff:<name>`, `subject` or `system`.
    pub id: String,
    /// The role, from the policy.
    pub role: RoleId,
}

/// Where a value came from (P6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Given by the subject.
    Subject,
    /// Observed from the subject's use of the service.
    Observed,
    /// Received from a named third party.
    ThirdParty(String),
}

impl Source {
    /// Stored form.
    pub fn to_stored(&self) -> String {
        match self {
            Source::Subject => "subject".into(),
            Source::Observed => "observed".into(),
            Source::ThirdParty(name) => format!("third_party:{name}"),
        }
    }
}

/// What a consent is given to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConsentTarget {
    /// A consent-based purpose (P10).
    Purpose(PurposeId),
    /// A feature: its collection when it rests on consent, and separate consent for its
    /// sensitive categories (P5).
    Feature(FeatureId),
    /// A recipient abroad: the separate consent a cross-border transfer needs (P16).
    Recipient(RecipientId),
}

/// One decrypted value.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Value {
    /// Record id.
    pub record: i64,
    /// Category name.
    pub category: String,
    /// The value.
    pub value: String,
    /// Feature that collected it.
    pub feature: String,
    /// Source (P6).
    pub source: String,
    /// When collected, Unix ms.
    pub collected_ms: i64,
}

/// One collection: a feature's values for one subject.
#[derive(Clone, Debug)]
pub struct Collect<'a> {
    /// Whose.
    pub subject: SubjectId,
    /// Which feature collects.
    pub feature: &'a str,
    /// (category, value) pairs.
    pub values: &'a [(&'a str, &'a str)],
    /// Where the values came from.
    pub source: Source,
}

/// One purpose-checked read.
#[derive(Clone, Debug)]
pub struct Read<'a> {
    /// Whose.
    pub subject: SubjectId,
    /// Which categories.
    pub categories: &'a [&'a str],
    /// For which purpose.
    pub purpose: &'a str,
    /// Why, for staff reads (P21). Must not contain PI values.
    pub justification: Option<&'a str>,
}

/// One consent to record (P10, P27): [`Vault::consent_each`] takes several together.
#[derive(Clone, Copy, Debug)]
pub struct ConsentChange<'a> {
    /// Who records it.
    pub actor: &'a Actor,
    /// Whose consent.
    pub subject: SubjectId,
    /// To what.
    pub target: ConsentTarget,
    /// Granted, or withdrawn.
    pub granted: bool,
    /// Given separately (P10), for a grant.
    pub separate: bool,
    /// Where it was given: `web`, `app`, ... (1 to 32 characters).
    pub channel: &'a str,
    /// The request carried Global Privacy Control (`Sec-GPC: 1`): the person's refusal of
    /// every non-essential use (P7). A grant then needs `action`.
    pub gpc: bool,
    /// The explicit action by which the person gave or withdrew it (one of
    /// [`CONSENT_ACTIONS`](crate::CONSENT_ACTIONS)), when the caller knows it.
    pub action: Option<&'a str>,
}

/// A signed JSON document: a consent receipt or an erasure certificate (P33). `payload` is the
/// base64 of the exact JSON bytes signed; `signature` is Ed25519 over those bytes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SignedDocument {
    /// Base64 (standard, padded) of the signed JSON bytes.
    pub payload: String,
    /// Base64 of the 64-byte Ed25519 signature.
    pub signature: String,
    /// Hex of the 32-byte Ed25519 public key.
    pub public_key: String,
}

/// How values are normalised before blind indexing, so `A@B.c ` finds `a@b.c`.
pub fn normalise_lookup(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

pub(crate) const MAX_VALUE_BYTES: usize = 1 << 20;
/// The `meta` key holding the first record id whose metadata is bound, and its tag.
const RECORD_BINDING: &str = "record_binding";
/// The `meta` key holding the master key's check value.
const MASTER_KEY_CHECK: &str = "master_key_check";
pub(crate) const MAX_JUSTIFICATION: usize = 500;
const KEY_CACHE_LIMIT: usize = 100_000;

/// The vault of personal information.
pub struct Vault {
    /// Every published version; derefs to the one in force now (P29).
    pub(crate) policy: crate::versions::Versions,
    pub(crate) store: Box<dyn Store>,
    pub(crate) keyring: Box<dyn Keyring>,
    pub(crate) keys: Keys,
    pub(crate) rng: SystemRandom,
    pub(crate) nonces: NonceSource,
    pub(crate) clock: Arc<dyn Clock>,
    key_cache: Mutex<HashMap<SubjectKey, Arc<DataKey>>>,
    pub(crate) api_key_cache: Mutex<HashMap<String, (steward_store::ApiKeyRow, i64)>>,
    /// Where signed checkpoints are kept outside the store (P33), when set.
    pub(crate) journal: Option<crate::evidence::Journal>,
    /// Held while a checkpoint is verified and signed.
    pub(crate) sealing: Mutex<()>,
    /// Where every erasure is recorded outside the store and every backup (P28), when set.
    pub(crate) erasure_journal: Option<crate::erasures::ErasureJournal>,
    /// How many days a keyring backup is kept: what erasure certificates promise.
    pub(crate) keyring_retention_days: u32,
    /// Records with this id or above bind their metadata (feature, source, collection time)
    /// into their ciphertext's associated data; those below were sealed by an earlier build.
    pub(crate) bound_records_from: std::sync::atomic::AtomicI64,
    /// What subjects are written, in Chinese and English.
    pub(crate) catalogue: crate::i18n::Catalogue,
    /// Webhook endpoints as last read.
    pub(crate) endpoint_cache: crate::outbox::Fresh<Vec<steward_store::EndpointRow>>,
    /// Incidents and transfer plans as last read: what the public notices and every
    /// dispatcher pass look at.
    pub(crate) case_cache: crate::outbox::Fresh<Vec<steward_store::CaseRow>>,
    /// Webhook endpoints may be on loopback or private addresses (tests, a sidecar).
    pub(crate) webhooks_allow_local: bool,
    /// Who is reminded of deadlines, and when.
    pub(crate) contacts: crate::deadlines::Contacts,
    /// Subjects a notice campaign takes per unit of work.
    pub(crate) notice_batch: usize,
    /// New visitors one public caller's address may make in an hour (0: no limit).
    pub(crate) visitor_limit: u32,
    /// The provider's other databases, once attached (`docs/datasets.md`).
    pub(crate) datasets: std::sync::OnceLock<Arc<steward_datasets::run::Fanout>>,
}

/// File names inside a data directory.
pub mod files {
    pub use steward_store::files::{DATA, KEYRING};
    /// The master key, created mode 0600 on first use unless one is given.
    pub const MASTER_KEY: &str = "master.key";
}

impl Vault {
    /// Opens the embedded SQLite store in `dir` (created if needed).
    ///
    /// `region` is where this deployment stores data; a new store records it, an existing one
    /// keeps its own. Either way it must be a region the policy allows (P16).
    pub fn open_sqlite(
        dir: &Path,
        policy: Policy,
        master: &MasterKey,
        clock: Arc<dyn Clock>,
        region: Option<&str>,
    ) -> Result<Vault, Error> {
        Vault::open_backend(
            &Backend::Sqlite {
                dir: dir.to_path_buf(),
            },
            policy,
            master,
            clock,
            region,
        )
    }

    /// Opens the vault on `backend`, creating and migrating its storage as needed.
    pub fn open_backend(
        backend: &Backend,
        policy: Policy,
        master: &MasterKey,
        clock: Arc<dyn Clock>,
        region: Option<&str>,
    ) -> Result<Vault, Error> {
        let (store, keyring) = backend.open()?;
        Vault::open(store, keyring, policy, master, clock, region)
    }

    /// Opens a vault over any backend.
    pub fn open(
        store: Box<dyn Store>,
        keyring: Box<dyn Keyring>,
        policy: Policy,
        master: &MasterKey,
        clock: Arc<dyn Clock>,
        region: Option<&str>,
    ) -> Result<Vault, Error> {
        let keys = Keys::derive(master)?;
        let vault = Vault {
            policy: crate::versions::Versions::provisional(policy, Arc::clone(&clock)),
            store,
            keyring,
            keys,
            rng: SystemRandom::new(),
            nonces: NonceSource::default(),
            clock,
            key_cache: Mutex::new(HashMap::new()),
            api_key_cache: Mutex::new(HashMap::new()),
            journal: None,
            sealing: Mutex::new(()),
            erasure_journal: None,
            keyring_retention_days: crate::backup::KEYRING_RETENTION_DAYS,
            bound_records_from: std::sync::atomic::AtomicI64::new(0),
            catalogue: crate::i18n::Catalogue::new()?,
            endpoint_cache: crate::outbox::Fresh::default(),
            case_cache: crate::outbox::Fresh::default(),
            webhooks_allow_local: false,
            contacts: crate::deadlines::Contacts {
                reminder_days: vec![7, 1],
                ..Default::default()
            },
            notice_batch: crate::versions::CAMPAIGN_BATCH,
            visitor_limit: crate::visitors::VISITOR_LIMIT_PER_HOUR,
            datasets: std::sync::OnceLock::new(),
        };
        vault.check_master_key()?;
        vault.load_record_binding()?;
        vault.tag_untagged_state()?;
        vault.check_region(region)?;
        vault.load_versions()?;
        vault.note_activation()?;
        vault.resume_erasures()?;
        tracing::info!(policy = %vault.policy.version, "vault opened");
        Ok(vault)
    }

    /// Keeps every checkpoint this vault signs in `journal` too, and verifies the chain from
    /// the journal's newest checkpoint before signing (P33).
    pub fn with_journal(mut self, journal: crate::evidence::Journal) -> Vault {
        self.journal = Some(journal);
        self
    }

    /// Records every erasure in `journal` too, outside the store and every backup, so that a
    /// restore re-applies it (P28).
    pub fn with_erasure_journal(mut self, journal: crate::erasures::ErasureJournal) -> Vault {
        self.erasure_journal = Some(journal);
        self
    }

    /// The erasure journal, when one is kept.
    pub fn erasure_journal(&self) -> Option<&crate::erasures::ErasureJournal> {
        self.erasure_journal.as_ref()
    }

    /// Lets webhook endpoints be on loopback or private addresses (`webhooks_allow_local`):
    /// for tests, or a receiver beside the server. Off by default, so that an API key cannot
    /// make Steward call into the provider's own network.
    pub fn with_local_webhooks(mut self, allow: bool) -> Vault {
        self.webhooks_allow_local = allow;
        self
    }

    /// How many new visitors one caller's address may make in an hour through the public
    /// visitor API (0: no limit); [`crate::visitors::VISITOR_LIMIT_PER_HOUR`] by default.
    pub fn with_visitor_limit(mut self, per_hour: u32) -> Vault {
        self.visitor_limit = per_hour;
        self
    }

    /// Notice campaigns take `batch` subjects per unit of work (P30).
    pub fn with_notice_batch(mut self, batch: usize) -> Vault {
        self.notice_batch = batch.max(1);
        self
    }

    /// Subjects a notice campaign takes per unit of work.
    pub fn notice_batch(&self) -> usize {
        self.notice_batch
    }

    /// Reminds `contacts` of deadlines (P32).
    pub fn with_contacts(mut self, contacts: crate::deadlines::Contacts) -> Vault {
        self.contacts = contacts;
        self
    }

    /// Keyring backups are kept `days` (what erasure certificates say of them).
    pub fn with_keyring_retention_days(mut self, days: u32) -> Vault {
        self.keyring_retention_days = days;
        self
    }

    /// How many days keyring backups are kept.
    pub fn keyring_retention_days(&self) -> u32 {
        self.keyring_retention_days
    }

    /// The checkpoint journal, when one is kept.
    pub fn journal(&self) -> Option<&crate::evidence::Journal> {
        self.journal.as_ref()
    }

    /// Whether this vault can serve: the store answers, and writes are not failing for want
    /// of space. While they were, one small write is tried (a `meta` row), so readiness comes
    /// back by itself once space is freed; a write that fails for space answers
    /// `storage_full` (P34).
    pub fn ready(&self) -> Result<(), Error> {
        self.store.audit_head()?;
        if self.store.out_of_space() {
            self.store.commit(
                vec![Op::SetMeta {
                    key: "space_probe".into(),
                    value: self.clock.now_ms().to_string(),
                }],
                vec![],
            )?;
        }
        Ok(())
    }

    /// Whether storage calls wait on network round trips (PostgreSQL): a server should then
    /// make them where blocking is allowed, not on its async workers.
    pub fn remote(&self) -> bool {
        self.store.remote()
    }

    /// P20: the master key must be the one the store was made with, checked before anything
    /// is written. A store records the key's check value when it is made; one made before
    /// check values existed must still verify its newest signed checkpoint with the key, and
    /// then records it.
    fn check_master_key(&self) -> Result<(), Error> {
        let ours = hex::encode(self.keys.check_value());
        match self.store.meta(MASTER_KEY_CHECK)? {
            Some(stored) if stored == ours => Ok(()),
            Some(_) => Err(Error::WrongMasterKey),
            None => {
                if let Some(cp) = self.store.checkpoints()?.last() {
                    let message = steward_audit::Checkpoint::message(cp.seq, &cp.head, cp.at_ms);
                    if !steward_crypto::verify_signature(
                        &self.keys.public_key(),
                        &message,
                        &cp.signature,
                    ) {
                        return Err(Error::WrongMasterKey);
                    }
                }
                self.store.commit(
                    vec![Op::SetMeta {
                        key: MASTER_KEY_CHECK.into(),
                        value: ours,
                    }],
                    vec![],
                )?;
                Ok(())
            }
        }
    }

    /// P20, P33: from which record id the metadata is bound into the ciphertext. A store
    /// records it once (the next id it hands out), with a tag under the state key, so that
    /// moving it cannot unbind newer records; a store made by this build binds every record.
    fn load_record_binding(&self) -> Result<(), Error> {
        let from = match self.store.meta(RECORD_BINDING)? {
            Some(text) => {
                let (n, tag) = text.split_once(':').unwrap_or((&text, ""));
                let tag = hex::decode(tag).unwrap_or_default();
                match n.parse::<i64>() {
                    Ok(n)
                        if self
                            .keys
                            .state_tag_holds(RECORD_BINDING, &[&n.to_be_bytes()], &tag) =>
                    {
                        n
                    }
                    _ => {
                        return Err(Error::Store(steward_store::StoreError::Corrupt(
                            "the store's record binding failed its authenticity check".into(),
                        )));
                    }
                }
            }
            None => {
                let n = self.store.next_record_ids(1)?;
                let tag = hex::encode(self.keys.state_tag(RECORD_BINDING, &[&n.to_be_bytes()]));
                self.store.commit(
                    vec![Op::SetMeta {
                        key: RECORD_BINDING.into(),
                        value: format!("{n}:{tag}"),
                    }],
                    vec![],
                )?;
                n
            }
        };
        self.bound_records_from
            .store(from, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The associated data a record's value is sealed under: its row (subject, category,
    /// id) and its metadata — so a changed feature, source or collection time fails to open,
    /// as a moved value does. Every record this build seals uses it.
    pub(crate) fn record_aad(&self, subject: &SubjectKey, row: RecordMeta<'_>) -> Vec<u8> {
        let mut v = aad(subject, row.category, row.id);
        v.extend_from_slice(b"\x01steward.record.v2");
        for text in [row.feature, row.source] {
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(text.as_bytes());
        }
        v.extend_from_slice(&row.collected_ms.to_be_bytes());
        v
    }

    /// Opens a record's value: under [`Vault::record_aad`], or — only for a record below the
    /// store's binding start, sealed by an earlier build — under the row alone.
    pub(crate) fn open_record(
        &self,
        key: &steward_crypto::DataKey,
        subject: &SubjectKey,
        row: RecordMeta<'_>,
        sealed: &[u8],
    ) -> Result<Vec<u8>, Error> {
        match key.open(&self.record_aad(subject, row), sealed) {
            Ok(plain) => Ok(plain),
            Err(_)
                if row.id
                    < self
                        .bound_records_from
                        .load(std::sync::atomic::Ordering::Relaxed) =>
            {
                Ok(key.open(&aad(subject, row.category, row.id), sealed)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// P29, P30: refuses a policy before its effective date as a store's first version (a
    /// later version dated ahead is published and waits for its date).
    pub fn check_effective(policy: &Policy, now_ms: i64) -> Result<(), Error> {
        let today = time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000))
            .map(|t| t.date())
            .unwrap_or(time::Date::MIN);
        if policy.effective > today {
            return Err(Error::PolicyNotEffective {
                version: policy.version.clone(),
                effective: policy.effective.to_string(),
            });
        }
        Ok(())
    }

    fn check_region(&self, wanted: Option<&str>) -> Result<(), Error> {
        let stored = self.store.meta("region")?;
        let region = match (&stored, wanted) {
            (Some(r), _) => r.clone(),
            (None, Some(w)) => w.to_string(),
            (None, None) => self.policy.regions.first().cloned().unwrap_or_default(),
        };
        if !self.policy.regions.contains(&region) {
            return Err(Error::RegionNotAllowed {
                region,
                allowed: self.policy.regions.join(", "),
            });
        }
        if let (Some(stored), Some(wanted)) = (&stored, wanted)
            && stored != wanted
        {
            return Err(Error::Invalid(format!(
                "this store is in region `{stored}`, not `{wanted}`"
            )));
        }
        if stored.is_none() {
            self.store.commit(
                vec![Op::SetMeta {
                    key: "region".into(),
                    value: region.clone(),
                }],
                vec![self.system_draft("store.create", json!({ "region": region }))],
            )?;
        }
        Ok(())
    }

    /// Finishes key destruction that a crash interrupted (P28): every subject on the purge
    /// queue must have no key left.
    fn resume_erasures(&self) -> Result<(), Error> {
        for subject in self.store.purge_queue()? {
            self.keyring.destroy(&subject)?;
        }
        Ok(())
    }

    /// Now, by the vault's clock (Unix ms).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The published public key that verifies checkpoints, receipts and certificates.
    pub fn public_key(&self) -> [u8; 32] {
        self.keys.public_key()
    }

    /// The storage backend.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The pseudonym naming a subject in the audit log.
    pub fn pseudonym(&self, subject: SubjectId) -> String {
        self.keys.pseudonym(&subject.0)
    }

    pub(crate) fn system_draft(&self, action: &str, detail: serde_json::Value) -> Draft {
        Draft {
            at_ms: self.clock.now_ms(),
            actor: "system".into(),
            role: String::new(),
            action: action.into(),
            outcome: Outcome::Granted,
            subject: String::new(),
            purpose: String::new(),
            categories: String::new(),
            detail: detail_text(detail),
            policy_version: self.policy.version.clone(),
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per audit field; a struct would only rename them"
    )]
    pub(crate) fn draft(
        &self,
        actor: &Actor,
        action: &str,
        outcome: Outcome,
        subject: Option<SubjectId>,
        purpose: &str,
        categories: String,
        detail: serde_json::Value,
    ) -> Draft {
        let role = if actor.role == RoleId::SUBJECT {
            "subject".to_string()
        } else if actor.role == RoleId::SYSTEM {
            "system".to_string()
        } else {
            self.policy
                .roles
                .get(actor.role.index())
                .map(|r| r.name.clone())
                .unwrap_or_default()
        };
        Draft {
            at_ms: self.clock.now_ms(),
            actor: actor.id.clone(),
            role,
            action: action.into(),
            outcome,
            subject: subject.map(|s| self.pseudonym(s)).unwrap_or_default(),
            purpose: self.declared_purpose(purpose).into(),
            categories: self.declared_categories(categories),
            detail: detail_text(detail),
            policy_version: self.policy.version.clone(),
        }
    }

    /// The audit entry of a granted act on a subject (or on none) that names no purpose and no
    /// categories: registration, consent, export, erasure, requests.
    pub(crate) fn act(
        &self,
        actor: &Actor,
        action: &str,
        subject: Option<SubjectId>,
        detail: serde_json::Value,
    ) -> Draft {
        self.draft(
            actor,
            action,
            Outcome::Granted,
            subject,
            "",
            String::new(),
            detail,
        )
    }

    /// The audit entry of a managing act: the caller's, or the operator's (`system`, from the
    /// command line).
    pub(crate) fn managed(
        &self,
        actor: Option<&Actor>,
        action: &str,
        detail: serde_json::Value,
    ) -> Draft {
        match actor {
            Some(a) => self.act(a, action, None, detail),
            None => self.system_draft(action, detail),
        }
    }

    /// Who acts, as the log and the cases name them: the caller, or `system`.
    pub(crate) fn actor_id(actor: Option<&Actor>) -> String {
        actor.map_or_else(|| "system".to_string(), |a| a.id.clone())
    }

    /// A caller-supplied purpose as logs may record it: itself if the policy declares it,
    /// else `?` — an undeclared name may be a value sent in the wrong field (P34).
    pub(crate) fn declared_purpose<'a>(&self, name: &'a str) -> &'a str {
        if name.is_empty() || self.policy.purpose_id(name).is_some() {
            name
        } else {
            "?"
        }
    }

    /// Like [`Vault::declared_purpose`], for a recipient.
    pub(crate) fn declared_recipient<'a>(&self, name: &'a str) -> &'a str {
        if self.policy.recipient_id(name).is_some() {
            name
        } else {
            "?"
        }
    }

    /// Like [`Vault::declared_purpose`], for comma-separated categories.
    fn declared_categories(&self, names: String) -> String {
        if names
            .split(',')
            .all(|n| n.is_empty() || self.policy.category_id(n).is_some())
        {
            return names;
        }
        names
            .split(',')
            .map(|n| {
                if self.policy.category_id(n).is_some() {
                    n
                } else {
                    "?"
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The audit entry of a refusal (P10: refusals are auditable).
    pub(crate) fn refusal_draft(
        &self,
        actor: &Actor,
        action: &str,
        subject: Option<SubjectId>,
        purpose: &str,
        categories: String,
        err: &Error,
    ) -> Draft {
        tracing::debug!(action, code = err.code().as_str(), "refused");
        let detail = json!({ "code": err.code(), "reason": err.to_string() });
        self.draft(
            actor,
            action,
            Outcome::Refused,
            subject,
            purpose,
            categories,
            detail,
        )
    }

    /// Writes a refusal to the log, then returns the error.
    pub(crate) fn refuse(
        &self,
        actor: &Actor,
        action: &str,
        subject: Option<SubjectId>,
        purpose: &str,
        categories: String,
        err: Error,
    ) -> Error {
        let draft = self.refusal_draft(actor, action, subject, purpose, categories, &err);
        match self.store.commit(vec![], vec![draft]) {
            Ok(_) => err,
            // No audit, no act: the act is refused either way, but say the log failed.
            Err(store) => Error::Store(store),
        }
    }

    /// Whether the actor's role may perform `operation` at all (P21).
    pub(crate) fn may(&self, actor: &Actor, operation: Capability) -> Result<(), Error> {
        match self.policy.roles.get(actor.role.index()) {
            Some(role) if role.may.contains(operation) => Ok(()),
            role => Err(Error::NotPermitted {
                role: role.map(|r| r.name.clone()).unwrap_or_default(),
                operation: operation.as_str(),
            }),
        }
    }

    /// [`Vault::may`], with a refusal written to the log.
    pub(crate) fn permit(
        &self,
        actor: &Actor,
        operation: Capability,
        subject: Option<SubjectId>,
    ) -> Result<(), Error> {
        self.may(actor, operation)
            .map_err(|e| self.refuse(actor, operation.as_str(), subject, "", String::new(), e))
    }

    /// Checks that the actor may read the audit log and its checkpoints, and records that it
    /// did (P21).
    pub fn audit_access(&self, actor: &Actor, what: &str) -> Result<(), Error> {
        self.permit(actor, Capability::Audit, None)?;
        self.store.commit(
            vec![],
            vec![self.act(actor, "audit.read", None, json!({ "what": what }))],
        )?;
        Ok(())
    }

    pub(crate) fn active_subject(&self, subject: SubjectId) -> Result<SubjectRow, Error> {
        let row = self.subject_row(&subject.0)?;
        self.active(&subject.0, row)
    }

    /// The subject `id` may be acted on as active: its row, checked, says so. No row is
    /// [`Vault::not_found`]; a closed or erased subject is refused as such.
    pub(crate) fn active(
        &self,
        id: &SubjectKey,
        row: Option<SubjectRow>,
    ) -> Result<SubjectRow, Error> {
        match row {
            None => Err(self.not_found(id)),
            Some(s) => {
                self.check_state(&s.id, s.state, &s.tag)?;
                match s.state {
                    SubjectState::Active => Ok(s),
                    SubjectState::Closed => Err(Error::SubjectClosed),
                    SubjectState::Erasing | SubjectState::Erased => Err(Error::SubjectErased),
                }
            }
        }
    }

    /// No row for `id`: not found — unless the keyring holds a key for it, which it only does
    /// for a subject that was registered and never erased: then the store lost the row, and
    /// that is damage, never "not found" (P34).
    pub(crate) fn not_found(&self, id: &SubjectKey) -> Error {
        match self.keyring.get(id) {
            Ok(None) => Error::SubjectNotFound,
            Ok(Some(_)) => {
                tracing::error!("the store has no row for a subject whose key the keyring holds");
                Error::Store(steward_store::StoreError::Corrupt(
                    "the store has no row for a subject whose key the keyring holds".into(),
                ))
            }
            Err(e) => e.into(),
        }
    }

    pub(crate) fn data_key(&self, subject: SubjectId) -> Result<Arc<DataKey>, Error> {
        if let Some(k) = self.cache().get(&subject.0) {
            return Ok(Arc::clone(k));
        }
        let wrapped = match self.keyring.get(&subject.0)? {
            Some(w) => w,
            // An erasure destroys the key and remembers it did; a key gone without that
            // memory is damage (or a keyring restored from the wrong backup), never an erasure
            // to report (P34).
            None if self.keyring.was_destroyed(&subject.0)? => return Err(Error::KeyDestroyed),
            None => {
                return Err(Error::Store(steward_store::StoreError::Corrupt(
                    "the keyring holds no key for this subject and no record of destroying it"
                        .into(),
                )));
            }
        };
        let key = Arc::new(self.keys.unwrap_data_key(&subject.0, &wrapped)?);
        let mut cache = self.cache();
        if cache.len() >= KEY_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(subject.0, Arc::clone(&key));
        Ok(key)
    }

    /// The audit entry at `seq`, decoded; none when there is no such entry or it does not
    /// decode (the verifier is what reports that).
    pub(crate) fn audit_entry(&self, seq: u64) -> Result<Option<steward_audit::Entry>, Error> {
        let mut found = None;
        self.store.audit_scan_range(seq, seq, &mut |e| {
            found = e
                .hash
                .try_into()
                .ok()
                .and_then(|h| steward_audit::Entry::decode(e.bytes, h).ok());
            false
        })?;
        Ok(found)
    }

    pub(crate) fn forget_key(&self, subject: SubjectId) {
        self.cache().remove(&subject.0);
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<SubjectKey, Arc<DataKey>>> {
        self.key_cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new subject with a fresh data key (P1, P20).
    pub fn register(&self, actor: &Actor) -> Result<SubjectId, Error> {
        self.permit(actor, Capability::SubjectsRegister, None)?;
        let mut id = [0u8; 16];
        ring::rand::SecureRandom::fill(&self.rng, &mut id)
            .map_err(|_| Error::Crypto(steward_crypto::CryptoError::Random))?;
        // RFC 4122 version 4 layout, so the id reads as an ordinary UUID.
        let id = uuid::Builder::from_random_bytes(id)
            .into_uuid()
            .into_bytes();
        let subject = SubjectId(id);
        let (key, wrapped) = self.keys.new_data_key(&self.rng, &id)?;
        // The key first: a crash before the subject row leaves only an orphan wrapped key.
        self.keyring.put(&id, &wrapped)?;
        self.store.commit(
            vec![Op::InsertSubject(SubjectRow {
                id,
                state: SubjectState::Active,
                created_ms: self.clock.now_ms(),
                closed_ms: None,
                tag: self.subject_tag(&id, SubjectState::Active),
            })],
            vec![self.act(
                actor,
                "subject.register",
                Some(subject),
                serde_json::Value::Null,
            )],
        )?;
        self.cache().insert(id, Arc::new(key));
        Ok(subject)
    }

    /// The first subject owning a blind-index digest whose state `accept` takes.
    pub(crate) fn indexed_subject(
        &self,
        digest: &[u8; 16],
        accept: impl Fn(SubjectState) -> bool,
    ) -> Result<Option<SubjectId>, Error> {
        for s in self.store.find_by_index(digest)? {
            if self.subject_row(&s)?.is_some_and(|row| accept(row.state)) {
                return Ok(Some(SubjectId(s)));
            }
        }
        Ok(None)
    }

    /// Finds the subject a lookup value (email, phone, linked account) belongs to (P19).
    pub fn find(
        &self,
        actor: &Actor,
        category: &str,
        value: &str,
    ) -> Result<Option<SubjectId>, Error> {
        self.permit(actor, Capability::SubjectsRegister, None)?;
        let cat = self.policy.category_id(category).ok_or(Error::Unknown {
            kind: crate::NameKind::Category,
        })?;
        if !self.policy.category(cat).lookup {
            return Err(Error::NotLookup(category.into()));
        }
        let digest = self.keys.blind_index(category, &normalise_lookup(value));
        let found = self.indexed_subject(&digest, |state| {
            matches!(state, SubjectState::Active | SubjectState::Closed)
        })?;
        self.store.commit(
            vec![],
            vec![self.draft(
                actor,
                "subject.lookup",
                Outcome::Granted,
                found,
                "",
                category.into(),
                json!({ "found": found.is_some() }),
            )],
        )?;
        Ok(found)
    }
}

/// An audit entry's `detail`: empty for null, as given for a string the caller serialised
/// already, else compact JSON.
fn detail_text(detail: serde_json::Value) -> String {
    match detail {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    }
}

/// Associated data binding a ciphertext to its subject, category and record (P20).
/// What of a record's row its associated data binds.
#[derive(Copy, Clone)]
pub(crate) struct RecordMeta<'a> {
    pub(crate) category: &'a str,
    pub(crate) id: i64,
    pub(crate) feature: &'a str,
    pub(crate) source: &'a str,
    pub(crate) collected_ms: i64,
}

pub(crate) fn aad(subject: &SubjectKey, category: &str, record: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + category.len() + 9);
    v.extend_from_slice(subject);
    v.extend_from_slice(category.as_bytes());
    v.push(0);
    v.extend_from_slice(&record.to_be_bytes());
    v
}
