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
use steward_policy::{
    Basis, FeatureId, IdSet, Policy, PurposeId, RecipientId, Refusal, Request, RoleId,
};
use steward_store::{
    ConsentRow, DisclosureRow, IndexRow, Keyring, Op, Reader, RecordRow, SqliteKeyring,
    SqliteStore, Store, SubjectKey, SubjectRow, SubjectState,
};

use crate::clock::Clock;
use crate::error::{Error, quoted};

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

/// A signed JSON document: a consent receipt or an erasure certificate (P33). `payload` is the
/// base64 of the exact JSON bytes signed; `signature` is Ed25519 over those bytes.
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

const MAX_VALUE_BYTES: usize = 1 << 20;
const MAX_JUSTIFICATION: usize = 500;
const KEY_CACHE_LIMIT: usize = 100_000;

/// The vault of personal information.
pub struct Vault {
    pub(crate) policy: Arc<Policy>,
    pub(crate) store: Box<dyn Store>,
    pub(crate) keyring: Box<dyn Keyring>,
    pub(crate) keys: Keys,
    pub(crate) rng: SystemRandom,
    nonces: NonceSource,
    pub(crate) clock: Arc<dyn Clock>,
    key_cache: Mutex<HashMap<SubjectKey, Arc<DataKey>>>,
}

/// File names inside a data directory.
pub mod files {
    /// The data file.
    pub const DATA: &str = "steward.db";
    /// The keyring file, kept apart from the data.
    pub const KEYRING: &str = "keyring.db";
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
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Invalid(format!("cannot create `{}`: {}", dir.display(), e.kind()))
        })?;
        let store = SqliteStore::open(&dir.join(files::DATA))?;
        let keyring = SqliteKeyring::open(&dir.join(files::KEYRING))?;
        Vault::open(
            Box::new(store),
            Box::new(keyring),
            policy,
            master,
            clock,
            region,
        )
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
            policy: Arc::new(policy),
            store,
            keyring,
            keys,
            rng: SystemRandom::new(),
            nonces: NonceSource::default(),
            clock,
            key_cache: Mutex::new(HashMap::new()),
        };
        vault.check_region(region)?;
        vault.activate_policy()?;
        vault.resume_erasures()?;
        tracing::info!(policy = %vault.policy.version, "vault opened");
        Ok(vault)
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

    /// Records, once per version, which policy is in force (P29).
    fn activate_policy(&self) -> Result<(), Error> {
        let version = self.policy.version.clone();
        if self.store.meta("policy_version")?.as_deref() != Some(version.as_str()) {
            self.store.commit(
                vec![Op::SetMeta {
                    key: "policy_version".into(),
                    value: version.clone(),
                }],
                vec![self.system_draft(
                    "policy.activate",
                    json!({ "version": version, "effective": self.policy.effective.to_string() }),
                )],
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
        let role = self
            .policy
            .roles
            .get(actor.role.index())
            .map(|r| r.name.clone())
            .unwrap_or_default();
        Draft {
            at_ms: self.clock.now_ms(),
            actor: actor.id.clone(),
            role,
            action: action.into(),
            outcome,
            subject: subject.map(|s| self.pseudonym(s)).unwrap_or_default(),
            purpose: purpose.into(),
            categories,
            detail: detail_text(detail),
            policy_version: self.policy.version.clone(),
        }
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
        tracing::debug!(action, code = err.code(), "refused");
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

    pub(crate) fn active_subject(&self, subject: SubjectId) -> Result<SubjectRow, Error> {
        match self.store.subject(&subject.0)? {
            None => Err(Error::SubjectNotFound),
            Some(s) if s.state == SubjectState::Active => Ok(s),
            Some(_) => Err(Error::SubjectErased),
        }
    }

    pub(crate) fn data_key(&self, subject: SubjectId) -> Result<Arc<DataKey>, Error> {
        if let Some(k) = self.cache().get(&subject.0) {
            return Ok(Arc::clone(k));
        }
        let wrapped = self.keyring.get(&subject.0)?.ok_or(Error::KeyDestroyed)?;
        let key = Arc::new(self.keys.unwrap_data_key(&subject.0, &wrapped)?);
        let mut cache = self.cache();
        if cache.len() >= KEY_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(subject.0, Arc::clone(&key));
        Ok(key)
    }

    pub(crate) fn forget_key(&self, subject: SubjectId) {
        self.cache().remove(&subject.0);
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<SubjectKey, Arc<DataKey>>> {
        self.key_cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new subject with a fresh data key (P1, P20).
    pub fn register(&self, actor: &Actor) -> Result<SubjectId, Error> {
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
            })],
            vec![self.draft(
                actor,
                "subject.register",
                Outcome::Granted,
                Some(subject),
                "",
                String::new(),
                serde_json::Value::Null,
            )],
        )?;
        self.cache().insert(id, Arc::new(key));
        Ok(subject)
    }

    /// Finds the subject a lookup value (email, phone, linked account) belongs to (P19).
    pub fn find(
        &self,
        actor: &Actor,
        category: &str,
        value: &str,
    ) -> Result<Option<SubjectId>, Error> {
        let cat = self
            .policy
            .category_id(category)
            .ok_or_else(|| Error::Unknown {
                kind: "category",
                name: category.into(),
            })?;
        if !self.policy.category(cat).lookup {
            return Err(Error::NotLookup(category.into()));
        }
        let digest = self.keys.blind_index(category, &normalise_lookup(value));
        let mut found = None;
        for s in self.store.find_by_index(&digest)? {
            if self
                .store
                .subject(&s)?
                .is_some_and(|row| row.state == SubjectState::Active)
            {
                found = Some(SubjectId(s));
                break;
            }
        }
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

    /// Collects one feature's values for one subject (P3, P5, P6, P20).
    pub fn collect(&self, actor: &Actor, req: &Collect<'_>) -> Result<Vec<i64>, Error> {
        self.collect_many(actor, std::slice::from_ref(req))
            .map(|mut ids| ids.pop().unwrap_or_default())
    }

    fn check_collect(
        &self,
        req: &Collect<'_>,
        reader: &dyn Reader,
    ) -> Result<(FeatureId, IdSet), Error> {
        let fid = self
            .policy
            .feature_id(req.feature)
            .ok_or_else(|| Error::Unknown {
                kind: "feature",
                name: req.feature.into(),
            })?;
        let feature = self.policy.feature(fid);
        if req.values.is_empty() {
            return Err(Error::Invalid(
                "a collection needs at least one value".into(),
            ));
        }
        let mut set = IdSet::EMPTY;
        let mut undeclared = Vec::new();
        for (cat, value) in req.values {
            if value.len() > MAX_VALUE_BYTES {
                return Err(Error::Invalid(format!(
                    "a value of `{cat}` is longer than {MAX_VALUE_BYTES} bytes"
                )));
            }
            match self.policy.category_id(cat) {
                Some(id) if feature.collects().contains(id.index()) => set.insert(id.index()),
                Some(_) => undeclared.push(*cat),
                None => {
                    return Err(Error::Unknown {
                        kind: "category",
                        name: (*cat).into(),
                    });
                }
            }
        }
        if !undeclared.is_empty() {
            return Err(Error::CategoryNotDeclared {
                feature: feature.name.clone(),
                categories: quoted(undeclared),
            });
        }
        let missing = feature.required.difference(&set);
        if !missing.is_empty() {
            return Err(Error::RequiredMissing {
                feature: feature.name.clone(),
                categories: quoted(self.policy.category_names(&missing)),
            });
        }
        match reader.subject_records(&req.subject.0, None, &[])? {
            None => return Err(Error::SubjectNotFound),
            Some(found) if found.state != SubjectState::Active => return Err(Error::SubjectErased),
            Some(_) => {}
        }
        let sensitive = set.intersection(&feature.separate_consent);
        if feature.basis == Basis::Consent || !sensitive.is_empty() {
            let target = format!("feature:{}", feature.name);
            let consent = reader.consent(&req.subject.0, &target)?;
            let granted = consent.as_ref().is_some_and(|c| c.granted);
            if feature.basis == Basis::Consent && !granted {
                return Err(Error::ConsentRequired {
                    what: format!("feature `{}`", feature.name),
                    target,
                });
            }
            if !sensitive.is_empty() && !consent.is_some_and(|c| c.granted && c.separate) {
                return Err(Error::SeparateConsentRequired {
                    feature: feature.name.clone(),
                    categories: quoted(self.policy.category_names(&sensitive)),
                });
            }
        }
        Ok((fid, set))
    }

    /// Collects several features' values in one transaction; all or nothing. The first
    /// refused collection is audited and returned, and nothing is stored.
    pub fn collect_many(
        &self,
        actor: &Actor,
        reqs: &[Collect<'_>],
    ) -> Result<Vec<Vec<i64>>, Error> {
        let total: usize = reqs.iter().map(|r| r.values.len()).sum();
        let first_id = self.store.next_record_ids(total)?;
        let mut out = Vec::with_capacity(reqs.len());
        let mut failure = None;
        self.store.read_commit(&mut |reader| {
            out.clear();
            failure = None;
            let now = self.clock.now_ms();
            let mut next_id = first_id;
            let mut records = Vec::with_capacity(total);
            let mut index = Vec::new();
            let mut audit = Vec::with_capacity(reqs.len());
            for req in reqs {
                let (fid, set) = match self.check_collect(req, reader) {
                    Ok(ok) => ok,
                    Err(Error::Store(e)) => return Err(e),
                    Err(e) => {
                        let names: Vec<&str> = req.values.iter().map(|(c, _)| *c).collect();
                        let draft = self.refusal_draft(actor, "pi.collect", Some(req.subject), "", names.join(","), &e);
                        failure = Some(e);
                        return Ok((Vec::new(), vec![draft]));
                    }
                };
                let sealed = self.seal_collection(req, &mut next_id, now, &mut records, &mut index);
                let ids = match sealed {
                    Ok(ids) => ids,
                    Err(e) => {
                        failure = Some(e);
                        return Ok((Vec::new(), Vec::new()));
                    }
                };
                audit.push(self.draft(
                    actor,
                    "pi.collect",
                    Outcome::Granted,
                    Some(req.subject),
                    "",
                    self.policy.category_names(&set).join(","),
                    json!({ "feature": self.policy.feature(fid).name, "source": req.source.to_stored(), "records": ids.len() }),
                ));
                out.push(ids);
            }
            let mut ops = vec![Op::InsertRecords(records)];
            if !index.is_empty() {
                ops.push(Op::InsertIndex(index));
            }
            Ok((ops, audit))
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        tracing::debug!(collections = out.len(), records = total, "collected");
        Ok(out)
    }

    /// Encrypts one collection's values under the subject's key, binding each to its row.
    fn seal_collection(
        &self,
        req: &Collect<'_>,
        next_id: &mut i64,
        now: i64,
        records: &mut Vec<RecordRow>,
        index: &mut Vec<IndexRow>,
    ) -> Result<Vec<i64>, Error> {
        let key = self.data_key(req.subject)?;
        let source = req.source.to_stored();
        let mut ids = Vec::with_capacity(req.values.len());
        for (cat, value) in req.values {
            let id = *next_id;
            *next_id += 1;
            let sealed = key.seal(
                &self.nonces,
                &aad(&req.subject.0, cat, id),
                value.as_bytes(),
            )?;
            if self
                .policy
                .category_id(cat)
                .is_some_and(|c| self.policy.category(c).lookup)
            {
                index.push(IndexRow {
                    digest: self.keys.blind_index(cat, &normalise_lookup(value)),
                    subject: req.subject.0,
                    record: id,
                });
            }
            records.push(RecordRow {
                id,
                subject: req.subject.0,
                category: (*cat).to_string(),
                feature: req.feature.to_string(),
                source: source.clone(),
                collected_ms: now,
                sealed,
            });
            ids.push(id);
        }
        Ok(ids)
    }

    fn consent_target_name(&self, target: ConsentTarget) -> String {
        match target {
            ConsentTarget::Purpose(p) => format!("purpose:{}", self.policy.purpose(p).name),
            ConsentTarget::Feature(f) => format!("feature:{}", self.policy.feature(f).name),
            ConsentTarget::Recipient(r) => format!("recipient:{}", self.policy.recipient(r).name),
        }
    }

    /// Resolves `purpose:x`, `feature:x` or `recipient:x`.
    pub fn consent_target(&self, text: &str) -> Result<ConsentTarget, Error> {
        let (kind, name) = text.split_once(':').ok_or_else(|| {
            Error::Invalid(
                "a consent target is `purpose:<name>`, `feature:<name>` or `recipient:<name>`"
                    .into(),
            )
        })?;
        let unknown = |kind: &'static str| Error::Unknown {
            kind,
            name: name.into(),
        };
        match kind {
            "purpose" => self
                .policy
                .purpose_id(name)
                .map(ConsentTarget::Purpose)
                .ok_or_else(|| unknown("purpose")),
            "feature" => self
                .policy
                .feature_id(name)
                .map(ConsentTarget::Feature)
                .ok_or_else(|| unknown("feature")),
            "recipient" => self
                .policy
                .recipient_id(name)
                .map(ConsentTarget::Recipient)
                .ok_or_else(|| unknown("recipient")),
            _ => Err(Error::Invalid(
                "a consent target is `purpose:<name>`, `feature:<name>` or `recipient:<name>`"
                    .into(),
            )),
        }
    }

    /// Grants or withdraws consent (P10, P27) and returns a signed receipt (P33). Withdrawal
    /// takes effect at once: the next read for that purpose is refused.
    pub fn consent(
        &self,
        actor: &Actor,
        subject: SubjectId,
        target: ConsentTarget,
        granted: bool,
        separate: bool,
        channel: &str,
    ) -> Result<SignedDocument, Error> {
        let name = self.consent_target_name(target);
        let action = if granted {
            "consent.grant"
        } else {
            "consent.withdraw"
        };
        let applicable = match target {
            ConsentTarget::Purpose(p) if !self.policy.purpose(p).needs_consent() => {
                Err(Error::ConsentNotApplicable {
                    target: name.clone(),
                    reason: format!("it rests on {}", self.policy.purpose(p).basis.as_str()),
                })
            }
            ConsentTarget::Feature(f) => {
                let feat = self.policy.feature(f);
                if feat.basis != Basis::Consent && feat.separate_consent.is_empty() {
                    Err(Error::ConsentNotApplicable {
                        target: name.clone(),
                        reason: format!(
                            "it rests on {} and collects nothing sensitive",
                            feat.basis.as_str()
                        ),
                    })
                } else {
                    Ok(())
                }
            }
            ConsentTarget::Recipient(r) if !self.policy.recipient(r).cross_border => {
                Err(Error::ConsentNotApplicable {
                    target: name.clone(),
                    reason: "the recipient is not abroad".into(),
                })
            }
            _ => Ok(()),
        };
        if channel.is_empty() || channel.len() > 32 {
            return Err(Error::Invalid(
                "a consent channel is 1 to 32 characters".into(),
            ));
        }
        if let Err(e) = applicable.and_then(|_| self.active_subject(subject).map(|_| ())) {
            return Err(self.refuse(actor, action, Some(subject), "", String::new(), e));
        }
        let now = self.clock.now_ms();
        let row = ConsentRow {
            subject: subject.0,
            target: name.clone(),
            granted,
            separate: separate && granted,
            channel: channel.into(),
            policy_version: self.policy.version.clone(),
            at_ms: now,
            audit_seq: 0,
        };
        let entries = self.store.commit(
            vec![Op::RecordConsent(row)],
            vec![self.draft(
                actor,
                action,
                Outcome::Granted,
                Some(subject),
                "",
                String::new(),
                json!({ "target": name, "separate": separate && granted, "channel": channel }),
            )],
        )?;
        let entry = entries
            .first()
            .ok_or_else(|| Error::Invalid("no audit entry".into()))?;
        tracing::debug!(subject = %self.pseudonym(subject), target = %name, granted, "consent recorded");
        let receipt = json!({
            "type": "steward.consent-receipt.v1",
            "subject": subject.to_string(),
            "subject_pseudonym": self.pseudonym(subject),
            "target": name,
            "granted": granted,
            "separate": separate && granted,
            "channel": channel,
            "policy_version": self.policy.version,
            "at": crate::clock::rfc3339(now),
            "at_ms": now,
            "audit_seq": entry.seq,
            "audit_hash": hex::encode(entry.hash),
        });
        Ok(self.sign_document(&receipt))
    }

    pub(crate) fn sign_document(&self, payload: &serde_json::Value) -> SignedDocument {
        use base64::Engine as _;
        let bytes = payload.to_string().into_bytes();
        let sig = self.keys.sign(&bytes);
        let b64 = base64::engine::general_purpose::STANDARD;
        SignedDocument {
            payload: b64.encode(&bytes),
            signature: b64.encode(sig),
            public_key: hex::encode(self.keys.public_key()),
        }
    }

    /// A purpose-checked, audited read (P9, P10, P21, P27).
    pub fn read(&self, actor: &Actor, req: &Read<'_>) -> Result<Vec<Value>, Error> {
        self.read_many(actor, std::slice::from_ref(req))
            .pop()
            .unwrap_or_else(|| Err(Error::Invalid("no read".into())))
    }

    /// Several reads whose audit entries commit in one transaction. Values are returned only
    /// after that commit (P21: no audit, no act).
    pub fn read_many(&self, actor: &Actor, reqs: &[Read<'_>]) -> Vec<Result<Vec<Value>, Error>> {
        let mut results = Vec::with_capacity(reqs.len());
        let done = self.store.read_commit(&mut |reader| {
            results.clear();
            let mut audit = Vec::with_capacity(reqs.len());
            for req in reqs {
                let (outcome, detail, result) = match self.read_one(actor, req, reader) {
                    // A storage failure aborts the whole unit: nothing is returned unaudited.
                    Err(Error::Store(e)) => return Err(e),
                    Ok(values) => {
                        let detail = match req.justification {
                            Some(j) => json!({ "records": values.len(), "justification": j }),
                            // The common case, written without building a JSON map.
                            None => serde_json::Value::String(format!(
                                "{{\"records\":{}}}",
                                values.len()
                            )),
                        };
                        (Outcome::Granted, detail, Ok(values))
                    }
                    Err(e) => {
                        let mut detail = json!({ "code": e.code(), "reason": e.to_string() });
                        if let (Error::Refused { rule, .. }, Some(map)) =
                            (&e, detail.as_object_mut())
                        {
                            map.insert("rule".into(), json!(rule));
                        }
                        (Outcome::Refused, detail, Err(e))
                    }
                };
                audit.push(self.draft(
                    actor,
                    "pi.read",
                    outcome,
                    Some(req.subject),
                    req.purpose,
                    req.categories.join(","),
                    detail,
                ));
                results.push(result);
            }
            Ok((Vec::new(), audit))
        });
        match done {
            Ok(_) => {
                for (req, r) in reqs.iter().zip(&results) {
                    match r {
                        Ok(v) => {
                            tracing::debug!(subject = %self.pseudonym(req.subject), purpose = req.purpose, records = v.len(), "read granted")
                        }
                        Err(e) => {
                            tracing::debug!(subject = %self.pseudonym(req.subject), purpose = req.purpose, code = e.code(), "read refused")
                        }
                    }
                }
                results
            }
            Err(e) => {
                let msg = e.to_string();
                reqs.iter()
                    .map(|_| {
                        Err(Error::Store(steward_store::StoreError::Backend(
                            msg.clone(),
                        )))
                    })
                    .collect()
            }
        }
    }

    fn read_one(
        &self,
        actor: &Actor,
        req: &Read<'_>,
        reader: &dyn Reader,
    ) -> Result<Vec<Value>, Error> {
        let purpose = self
            .policy
            .purpose_id(req.purpose)
            .ok_or_else(|| Error::Unknown {
                kind: "purpose",
                name: req.purpose.into(),
            })?;
        let categories = self
            .policy
            .category_set(req.categories.iter().copied())
            .map_err(|name| Error::Unknown {
                kind: "category",
                name: name.into(),
            })?;
        if categories.is_empty() {
            return Err(Error::Invalid("a read names at least one category".into()));
        }
        let justified = match req.justification {
            Some(j) if j.len() > MAX_JUSTIFICATION => {
                return Err(Error::Invalid(format!(
                    "a justification is at most {MAX_JUSTIFICATION} bytes"
                )));
            }
            Some(j) => !j.trim().is_empty(),
            None => false,
        };
        let request = Request {
            role: actor.role,
            purpose,
            categories,
            justified,
        };
        let grant = self.policy.check(&request).map_err(|r| self.refusal(r))?;
        let target = grant
            .needs_consent
            .then(|| format!("purpose:{}", self.policy.purpose(purpose).name));
        let found =
            match reader.subject_records(&req.subject.0, target.as_deref(), req.categories)? {
                None => return Err(Error::SubjectNotFound),
                Some(found) if found.state == SubjectState::Active => found,
                Some(_) => return Err(Error::SubjectErased),
            };
        if grant.needs_consent && !found.consent_granted {
            return Err(self.refusal(Refusal::ConsentRequired { purpose }));
        }
        let rows = found.records;
        if categories.intersection(&self.policy.sensitive).is_empty() {
            return self.open_rows(req.subject, rows);
        }
        // P5, P27: sensitive values stay readable only while the separate consent of the
        // feature that collected them holds.
        let mut held: HashMap<&str, bool> = HashMap::new();
        for row in &rows {
            let sensitive = self
                .policy
                .category_id(&row.category)
                .is_some_and(|c| self.policy.category(c).sensitive);
            if !sensitive {
                continue;
            }
            let ok = match held.get(row.feature.as_str()) {
                Some(ok) => *ok,
                None => {
                    let c = reader.consent(&req.subject.0, &format!("feature:{}", row.feature))?;
                    let ok = c.is_some_and(|c| c.granted && c.separate);
                    held.insert(&row.feature, ok);
                    ok
                }
            };
            if !ok {
                return Err(Error::SeparateConsentRequired {
                    feature: row.feature.clone(),
                    categories: quoted([row.category.as_str()]),
                });
            }
        }
        self.open_rows(req.subject, rows)
    }

    pub(crate) fn refusal(&self, r: Refusal) -> Error {
        Error::Refused {
            code: r.code(),
            rule: r.rule(&self.policy),
            message: r.explain(&self.policy),
        }
    }

    pub(crate) fn open_rows(
        &self,
        subject: SubjectId,
        rows: Vec<RecordRow>,
    ) -> Result<Vec<Value>, Error> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.data_key(subject)?;
        rows.into_iter()
            .map(|row| {
                let plain = key.open(&aad(&subject.0, &row.category, row.id), &row.sealed)?;
                let value = String::from_utf8(plain).map_err(|_| Error::Integrity)?;
                Ok(Value {
                    record: row.id,
                    category: row.category,
                    value,
                    feature: row.feature,
                    source: row.source,
                    collected_ms: row.collected_ms,
                })
            })
            .collect()
    }

    /// Discloses values to a registered recipient within its scope, and records it (P12,
    /// P13, P16). Returns the values to hand over.
    pub fn disclose(
        &self,
        actor: &Actor,
        subject: SubjectId,
        recipient: &str,
        categories: &[&str],
        purpose: &str,
        justification: Option<&str>,
    ) -> Result<Vec<Value>, Error> {
        let cats = categories.join(",");
        let checked = self.check_disclosure(actor, subject, recipient, categories, purpose);
        let values = match checked.and_then(|_| {
            self.read_one(
                actor,
                &Read {
                    subject,
                    categories,
                    purpose,
                    justification,
                },
                self.store.as_ref(),
            )
        }) {
            Ok(v) => v,
            Err(e) => {
                let detail =
                    json!({ "recipient": recipient, "code": e.code(), "reason": e.to_string() });
                let draft = self.draft(
                    actor,
                    "disclosure.record",
                    Outcome::Refused,
                    Some(subject),
                    purpose,
                    cats,
                    detail,
                );
                self.store.commit(vec![], vec![draft])?;
                return Err(e);
            }
        };
        let now = self.clock.now_ms();
        self.store.commit(
            vec![Op::InsertDisclosure(DisclosureRow {
                subject: subject.0,
                recipient: recipient.into(),
                categories: cats.clone(),
                purpose: purpose.into(),
                legal_basis: String::new(),
                at_ms: now,
                audit_seq: 0,
            })],
            vec![self.draft(
                actor,
                "disclosure.record",
                Outcome::Granted,
                Some(subject),
                purpose,
                cats,
                json!({ "recipient": recipient, "records": values.len() }),
            )],
        )?;
        Ok(values)
    }

    fn check_disclosure(
        &self,
        _actor: &Actor,
        subject: SubjectId,
        recipient: &str,
        categories: &[&str],
        purpose: &str,
    ) -> Result<(), Error> {
        let rid = self
            .policy
            .recipient_id(recipient)
            .ok_or_else(|| Error::Unknown {
                kind: "recipient",
                name: recipient.into(),
            })?;
        let r = self.policy.recipient(rid);
        let pid = self
            .policy
            .purpose_id(purpose)
            .ok_or_else(|| Error::Unknown {
                kind: "purpose",
                name: purpose.into(),
            })?;
        if !r.purposes.contains(pid.index()) {
            return Err(Error::DisclosureOutOfScope {
                recipient: recipient.into(),
                reason: format!("purpose `{purpose}` is not registered for it"),
            });
        }
        let set = self
            .policy
            .category_set(categories.iter().copied())
            .map_err(|name| Error::Unknown {
                kind: "category",
                name: name.into(),
            })?;
        let outside = set.difference(&r.categories);
        if !outside.is_empty() {
            return Err(Error::DisclosureOutOfScope {
                recipient: recipient.into(),
                reason: format!(
                    "it is not registered to receive {}",
                    quoted(self.policy.category_names(&outside))
                ),
            });
        }
        if r.cross_border {
            let target = format!("recipient:{}", r.name);
            if !self
                .store
                .consent(&subject.0, &target)?
                .is_some_and(|c| c.granted && c.separate)
            {
                return Err(Error::ConsentRequired {
                    what: format!("a transfer abroad to `{}` ({})", r.name, r.region),
                    target,
                });
            }
        }
        Ok(())
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
pub(crate) fn aad(subject: &SubjectKey, category: &str, record: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + category.len() + 9);
    v.extend_from_slice(subject);
    v.extend_from_slice(category.as_bytes());
    v.push(0);
    v.extend_from_slice(&record.to_be_bytes());
    v
}
