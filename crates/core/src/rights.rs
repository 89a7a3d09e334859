//! The subject's rights over what the vault holds: export (P23) and erasure (P28).

use serde::Serialize;
use serde_json::json;
use steward_policy::Capability;
use steward_store::{Op, SubjectState};

use crate::clock::rfc3339;
use crate::error::Error;
use crate::vault::{Actor, SignedDocument, SubjectId, Value, Vault};

/// Everything held about a subject, decrypted (P23).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct Export {
    /// Format tag: `steward.subject-export.v1`.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: &'static str,
    /// The subject.
    pub subject: String,
    /// When made.
    pub generated_at: String,
    /// Policy version in force.
    pub policy_version: String,
    /// Every value, with category, taxonomy key, feature, source and time.
    pub records: Vec<ExportRecord>,
    /// Consents in force.
    pub consents: Vec<ExportConsent>,
    /// Every consent event, oldest first.
    pub consent_history: Vec<ExportConsent>,
    /// Every disclosure, oldest first.
    pub disclosures: Vec<ExportDisclosure>,
    /// Every rights request and inquiry the subject made, oldest first, with its text
    /// (P23, P31).
    pub requests: Vec<ExportRequest>,
    /// The language they are written to in, if they or the provider recorded one.
    pub language: Option<String>,
    /// Which policy versions they were notified of, shown and accepted, and how (P30).
    pub policy_events: Vec<ExportPolicyEvent>,
    /// The visitors' devices linked to them at sign-in, each with its cookie choices and what
    /// was collected under it (P8, P19).
    pub devices: Vec<crate::visitors::ExportDevice>,
    /// What the provider's other databases and external systems hold about them, per system
    /// (`docs/datasets.md`): filled in when an access request completes; absent where no
    /// dataset is declared.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub systems: Vec<crate::datasets::ExportSystem>,
}

/// One thing that happened between the subject and a policy version, in an export.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct ExportPolicyEvent {
    /// The version.
    pub version: String,
    /// `notified`, `shown` or `accepted`.
    pub event: String,
    /// `email`, `page`, `explicit`, `staff` or `continued_use`.
    pub how: String,
    /// When (RFC 3339).
    pub at: String,
}

/// One rights request or inquiry in an export.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct ExportRequest {
    /// The request as staff and the subject see it: state, deadline, outcome.
    #[serde(flatten)]
    pub request: crate::RightsRequest,
    /// What the subject wrote with it, if anything.
    pub text: String,
}

/// One value in an export.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct ExportRecord {
    /// Record id.
    pub record: i64,
    /// Category name.
    pub category: String,
    /// Fides taxonomy key.
    pub taxonomy: String,
    /// The value.
    pub value: String,
    /// Collecting feature.
    pub feature: String,
    /// Source (P6).
    pub source: String,
    /// When collected.
    pub collected_at: String,
}

/// One consent in an export.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct ExportConsent {
    /// Target.
    pub target: String,
    /// Granted or withdrawn.
    pub granted: bool,
    /// Separate consent.
    pub separate: bool,
    /// Channel.
    pub channel: String,
    /// Policy version seen.
    pub policy_version: String,
    /// When.
    pub at: String,
}

impl From<steward_store::ConsentRow> for ExportConsent {
    fn from(c: steward_store::ConsentRow) -> Self {
        ExportConsent {
            target: c.target,
            granted: c.granted,
            separate: c.separate,
            channel: c.channel,
            policy_version: c.policy_version,
            at: rfc3339(c.at_ms),
        }
    }
}

/// One disclosure in an export.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct ExportDisclosure {
    /// Recipient.
    pub recipient: String,
    /// Categories.
    pub categories: Vec<String>,
    /// Purpose.
    pub purpose: String,
    /// The legal basis, for a disclosure that rests on one instead of a purpose (P15):
    /// `law`, `court_order`, `authority_request`, `agreement_enforcement`, or `transfer` (to a
    /// successor, P14); empty otherwise.
    pub legal_basis: String,
    /// The requesting body's reference (case number, letter), for a legal disclosure.
    pub reference: Option<String>,
    /// When.
    pub at: String,
}

/// How far a purge got.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PurgeProgress {
    /// Subjects whose ciphertext is now gone.
    pub subjects_done: usize,
    /// Records deleted in this call.
    pub records_deleted: usize,
    /// Subjects still queued.
    pub subjects_left: usize,
}

impl Vault {
    /// One decrypted value as an export lists it.
    pub(crate) fn export_record(&self, v: Value) -> ExportRecord {
        ExportRecord {
            taxonomy: self
                .policy
                .category_id(&v.category)
                .map(|c| self.policy.category(c).taxonomy.clone())
                .unwrap_or_default(),
            record: v.record,
            category: v.category,
            value: v.value,
            feature: v.feature,
            source: v.source,
            collected_at: rfc3339(v.collected_ms),
        }
    }

    /// Everything held about a subject, decrypted, as machine-readable JSON (P23). Under a
    /// role that must state why it reveals PI, only with a justification (P21), which the
    /// `subject.export` entry keeps as a keyed digest and sealed under the subject's key.
    pub fn export(
        &self,
        actor: &Actor,
        subject: SubjectId,
        justification: Option<&str>,
    ) -> Result<Export, Error> {
        if let Err(e) = self.may(actor, Capability::SubjectExport) {
            return Err(self.refuse(actor, "subject.export", Some(subject), "", String::new(), e));
        }
        self.check_justification(actor, "subject.export", subject, justification)?;
        self.export_unchecked(actor, subject, justification)
    }

    /// [`Vault::export`] once permission is settled (an access request carries its own).
    /// Closed accounts can still be exported until they are erased.
    pub(crate) fn export_unchecked(
        &self,
        actor: &Actor,
        subject: SubjectId,
        justification: Option<&str>,
    ) -> Result<Export, Error> {
        let (export, draft) = self.prepare_export(actor, subject, justification)?;
        self.store.commit(vec![], vec![draft])?;
        Ok(export)
    }

    /// The export and its audit entry, not yet committed: the caller commits the entry (with
    /// whatever else its unit of work holds) before the export is handed out.
    pub(crate) fn prepare_export(
        &self,
        actor: &Actor,
        subject: SubjectId,
        justification: Option<&str>,
    ) -> Result<(Export, steward_audit::Draft), Error> {
        let file = self.store.subject_file(&subject.0)?;
        if let Some(s) = &file.subject {
            self.check_state(&s.id, s.state, &s.tag)?;
        }
        for c in &file.consents {
            self.check_consent(c)?;
        }
        let state = file.subject.as_ref().map(|s| s.state);
        let exportable = match state {
            None => Err(self.not_found(&subject.0)),
            Some(SubjectState::Active | SubjectState::Closed) => Ok(()),
            Some(_) => Err(Error::SubjectErased),
        };
        if let Err(e) = exportable {
            return Err(self.refuse(actor, "subject.export", Some(subject), "", String::new(), e));
        }
        let values: Vec<Value> = self.open_rows(subject, file.records)?;
        let now = self.clock.now_ms();
        let export = Export {
            kind: "steward.subject-export.v1",
            subject: subject.to_string(),
            generated_at: rfc3339(now),
            policy_version: self.policy.version.clone(),
            records: values.into_iter().map(|v| self.export_record(v)).collect(),
            consents: file.consents.into_iter().map(ExportConsent::from).collect(),
            consent_history: file.history.into_iter().map(ExportConsent::from).collect(),
            disclosures: self.accounting(subject, file.disclosures)?,
            requests: self
                .store
                .requests_of(&subject.0)?
                .iter()
                .map(|r| {
                    Ok(ExportRequest {
                        request: self.request_view(r)?,
                        text: self.sealed_request_text(r)?,
                    })
                })
                .collect::<Result<_, Error>>()?,
            language: self.store.subject_language(&subject.0)?,
            devices: self.linked_devices(subject)?,
            systems: Vec::new(),
            policy_events: self
                .store
                .policy_events(&subject.0)?
                .into_iter()
                .map(|e| ExportPolicyEvent {
                    version: e.version,
                    event: e.event,
                    how: e.how,
                    at: crate::clock::rfc3339(e.at_ms),
                })
                .collect(),
        };
        let mut detail = serde_json::Map::new();
        detail.insert("records".into(), json!(export.records.len()));
        self.note_justification(&mut detail, subject, "subject.export", justification)?;
        let draft = self.act(
            actor,
            "subject.export",
            Some(subject),
            serde_json::Value::Object(detail),
        );
        Ok((export, draft))
    }

    /// Erases a subject by destroying their data key (crypto-shredding, P28), and returns a
    /// signed erasure certificate (P33).
    ///
    /// The erasure is the unit of work that marks the subject erased, queues the purge and
    /// writes the audit entry; the key is destroyed right after it commits, and again on every
    /// start while the subject is queued, so a crash in between cannot leave the key behind.
    /// Its cost does not depend on how much the subject has: ciphertext goes later, in
    /// [`Vault::purge`].
    pub fn erase(
        &self,
        actor: &Actor,
        subject: SubjectId,
        reason: &str,
    ) -> Result<SignedDocument, Error> {
        if reason.trim().is_empty() || reason.len() > 200 {
            return Err(Error::Invalid(
                "an erasure reason is 1 to 200 characters".into(),
            ));
        }
        let erasable = self.may(actor, Capability::SubjectErase).and_then(|_| {
            match self.subject_row(&subject.0)?.map(|s| s.state) {
                None => Err(self.not_found(&subject.0)),
                Some(SubjectState::Active | SubjectState::Closed) => self.check_not_held(subject),
                Some(_) => Err(Error::SubjectErased),
            }
        });
        if let Err(e) = erasable {
            return Err(self.refuse(actor, "subject.erase", Some(subject), "", String::new(), e));
        }
        // The provider's databases first, at once: all of them, or the call fails and is
        // made again (what was done is not done twice).
        let systems = self.reach_erasure_now(actor, subject)?;
        self.erase_linked(subject)?;
        self.shred_with(Some(actor), subject, Why::Typed(reason), systems.as_ref())
    }

    /// The erasure itself, once it is allowed: mark, queue, audit, destroy the key, certify.
    /// `actor` is who asked; `None` is the system (erasure after an account's grace period).
    pub(crate) fn shred(
        &self,
        actor: Option<&Actor>,
        subject: SubjectId,
        reason: Why<'_>,
    ) -> Result<SignedDocument, Error> {
        self.shred_with(actor, subject, reason, None)
    }

    /// [`Vault::shred`], its certificate naming what was done in the provider's databases.
    pub(crate) fn shred_with(
        &self,
        actor: Option<&Actor>,
        subject: SubjectId,
        reason: Why<'_>,
        systems: Option<&serde_json::Value>,
    ) -> Result<SignedDocument, Error> {
        let (ops, draft) = self.erasure_unit(actor, subject, reason);
        let entries = self.store.commit(ops, vec![draft])?;
        let entry = entries.first().ok_or(Error::Internal("no audit entry"))?;
        self.finish_erasure(subject, reason, entry, systems)
    }

    /// An erasure's unit of work: mark the subject erasing, queue the purge, and the
    /// `subject.erase` entry (P21). The key goes in [`Vault::finish_erasure`], once this has
    /// committed.
    pub(crate) fn erasure_unit(
        &self,
        actor: Option<&Actor>,
        subject: SubjectId,
        reason: Why<'_>,
    ) -> (Vec<Op>, steward_audit::Draft) {
        let mut detail = serde_json::Map::new();
        detail.insert("method".into(), json!("crypto-shredding"));
        reason.record(self, &mut detail);
        let detail = serde_json::Value::Object(detail);
        let draft = match actor {
            Some(actor) => self.act(actor, "subject.erase", Some(subject), detail),
            None => {
                let mut d = self.system_draft("subject.erase", detail);
                d.subject = self.pseudonym(subject);
                d
            }
        };
        let mut ops = vec![
            Op::SetSubjectState {
                subject: subject.0,
                state: SubjectState::Erasing,
                tag: self.subject_tag(&subject.0, SubjectState::Erasing),
            },
            Op::EnqueuePurge {
                subject: subject.0,
                at_ms: self.clock.now_ms(),
            },
            Op::SetLanguage {
                subject: subject.0,
                language: None,
                at_ms: self.clock.now_ms(),
            },
            Op::ForgetPolicyEvents { subject: subject.0 },
            Op::ForgetLinks { subject: subject.0 },
        ];
        // The endpoints are told by pseudonym; a failure to make the message (storage) leaves
        // the erasure itself alone: it is what matters.
        match self.event_messages(
            "subject.erased",
            json!({ "subject": self.pseudonym(subject) }),
        ) {
            Ok(messages) => Vault::enqueue(&mut ops, messages),
            Err(e) => tracing::warn!(
                code = e.code().as_str(),
                "the subject.erased webhook could not be queued"
            ),
        }
        (ops, draft)
    }

    /// After an erasure's unit committed as `entry`: destroy the key (again on every start
    /// while the subject is queued, so a crash here cannot leave it), then sign and keep the
    /// certificate.
    pub(crate) fn finish_erasure(
        &self,
        subject: SubjectId,
        reason: Why<'_>,
        entry: &steward_audit::Entry,
        systems: Option<&serde_json::Value>,
    ) -> Result<SignedDocument, Error> {
        self.forget_key(subject);
        // Recorded where no backup can roll it back, before the key goes (P28): a restore of
        // backups taken before now re-applies it. Once the key is gone there is nothing more
        // to record (a resumed erasure).
        if let Some(journal) = &self.erasure_journal
            && self.keyring.get(&subject.0)?.is_some()
        {
            journal.record(self, subject, entry.seq)?;
        }
        self.keyring.destroy(&subject.0)?;
        tracing::info!(subject = %self.pseudonym(subject), "subject erased: data key destroyed");
        let erased_at = entry.at_ms;
        let days = self.keyring_retention_days;
        // A keyring backup taken just before the erasure is deleted by the first
        // `backup create` more than `days` after it.
        let gone_by =
            erased_at.saturating_add(i64::from(days).saturating_add(1) * crate::retention::DAY_MS);
        let mut certificate = json!({
            "type": "steward.erasure-certificate.v1",
            "subject": subject.to_string(),
            "subject_pseudonym": self.pseudonym(subject),
            "erased_at": rfc3339(erased_at),
            "erased_at_ms": erased_at,
            "method": "crypto-shredding: the subject's data key was destroyed in the live keyring; `copies` says when each other copy becomes unreadable",
            "copies": {
                "live_store": "unreadable from erased_at: the key is destroyed, and the ciphertext is deleted by the purge that follows",
                "data_backups": "hold ciphertext only: unreadable wherever no keyring backup holds the key",
                "keyring_backups": format!("keyring backups taken before erased_at hold the key until deleted: each `steward backup create` deletes keyring backups older than {days} days, so with one backup a day the last of them is gone by keyring_backups_gone_by"),
                "keyring_backup_retention_days": days,
                "keyring_backups_gone_by": rfc3339(gone_by),
                "restores": if self.erasure_journal.is_some() {
                    "every restore re-applies this erasure from the erasure journal, and refuses a backup the journal cannot be shown to cover"
                } else {
                    "a restore re-applies this erasure while the live keyring remembers it"
                },
            },
            "policy_version": self.policy.version,
            "audit_seq": entry.seq,
            "audit_hash": hex::encode(entry.hash),
        });
        if let Some(map) = certificate.as_object_mut() {
            reason.record(self, map);
            // The provider's other databases, where the erasure reached them first.
            if let Some(systems) = systems.filter(|s| s.as_object().is_some_and(|m| !m.is_empty()))
            {
                map.insert("systems".into(), systems.clone());
            }
        }
        let certificate = self.sign_document(&certificate);
        let document = serde_json::to_string(&certificate)
            .map_err(|_| Error::Internal("certificate encoding failed"))?;
        self.store.commit(
            vec![Op::StoreCertificate {
                subject: subject.0,
                document,
            }],
            vec![],
        )?;
        Ok(certificate)
    }

    /// The erasure certificate issued for a subject, if any.
    pub fn certificate(&self, subject: SubjectId) -> Result<Option<SignedDocument>, Error> {
        match self.store.certificate(&subject.0)? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text).map(Some).map_err(|_| {
                Error::Store(steward_store::StoreError::Corrupt("certificate".into()))
            }),
        }
    }

    /// Deletes erased subjects' ciphertext and index rows, `batch` records per transaction.
    /// Safe to interrupt: each batch commits alone, and the next call resumes where it stopped.
    /// `progress` is called after each batch with the records deleted so far.
    pub fn purge(
        &self,
        batch: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<PurgeProgress, Error> {
        let batch = batch.max(1);
        let queue = self.store.purge_queue()?;
        let mut out = PurgeProgress {
            subjects_left: queue.len(),
            ..PurgeProgress::default()
        };
        for key in queue {
            // The key must be gone before its ciphertext is, so an interrupted erasure is
            // completed here too.
            self.keyring.destroy(&key)?;
            loop {
                let n = self.store.purge_records(&key, batch)?;
                out.records_deleted += n;
                progress(out.records_deleted);
                if n < batch {
                    break;
                }
            }
            let subject = SubjectId(key);
            self.store.commit(
                vec![
                    Op::SetSubjectState {
                        subject: key,
                        state: SubjectState::Erased,
                        tag: self.subject_tag(&key, SubjectState::Erased),
                    },
                    Op::DequeuePurge { subject: key },
                ],
                vec![self.system_draft_for(subject, "subject.purge")],
            )?;
            out.subjects_done += 1;
            out.subjects_left -= 1;
            tracing::info!(subject = %self.pseudonym(subject), records = out.records_deleted, "purge finished");
        }
        Ok(out)
    }

    /// Every disclosure of a subject's PI, oldest first, for staff who may read the audit
    /// (`audit`; the look is audited as `audit.read`): as the export's accounting lists them,
    /// and also a legal disclosure whose telling is still restricted, with the restriction's
    /// end in `restricted_until`.
    pub fn disclosures_of(
        &self,
        actor: &Actor,
        subject: SubjectId,
    ) -> Result<Vec<(ExportDisclosure, Option<String>)>, Error> {
        self.audit_access(actor, "disclosures")?;
        self.store
            .disclosures(&subject.0)?
            .into_iter()
            .map(|d| {
                let (view, until) = self.disclosure_view(subject, d)?;
                Ok((view, until.map(rfc3339)))
            })
            .collect()
    }

    /// One disclosure as it is shown, with the end of a restriction on telling the subject
    /// while one is in force.
    fn disclosure_view(
        &self,
        subject: SubjectId,
        d: steward_store::DisclosureRow,
    ) -> Result<(ExportDisclosure, Option<i64>), Error> {
        let basis = crate::legal::Basis::read(&d.legal_basis);
        let restricted = basis
            .as_ref()
            .and_then(|b| b.restricted_until_ms)
            .filter(|until| *until > self.clock.now_ms());
        let (body, reference) = match &basis {
            Some(b) => self.legal_parties(subject, b)?,
            None => (None, None),
        };
        let view = ExportDisclosure {
            recipient: body.unwrap_or(d.recipient),
            categories: d
                .categories
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            purpose: d.purpose,
            legal_basis: basis.map(|b| b.basis).unwrap_or_default(),
            reference,
            at: rfc3339(d.at_ms),
        };
        Ok((view, restricted))
    }

    /// The accounting of disclosures (P15; as HIPAA §164.528 gives it): date, recipient,
    /// categories, purpose or legal basis — leaving out a legal disclosure while a restriction
    /// on telling the subject is in force.
    fn accounting(
        &self,
        subject: SubjectId,
        rows: Vec<steward_store::DisclosureRow>,
    ) -> Result<Vec<ExportDisclosure>, Error> {
        let mut out = Vec::with_capacity(rows.len());
        for d in rows {
            // One the subject may not be told of yet is left out while the restriction lasts.
            if let (view, None) = self.disclosure_view(subject, d)? {
                out.push(view);
            }
        }
        Ok(out)
    }

    fn system_draft_for(&self, subject: SubjectId, action: &str) -> steward_audit::Draft {
        let mut d = self.system_draft(action, serde_json::Value::Null);
        d.subject = self.pseudonym(subject);
        d
    }
}

/// Why a subject is erased, as its `subject.erase` entry and its certificate keep it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Why<'a> {
    /// Typed by a person (the erasure API's `reason`): it may name anyone, and the subject's
    /// key goes with the erasure, so only a keyed digest is kept (`reason_digest`, P34).
    Typed(&'a str),
    /// Said by Steward itself (a rights request's id, a grace period's end): kept as
    /// `reason`.
    Steward(&'a str),
}

impl Why<'_> {
    fn record(self, vault: &Vault, into: &mut serde_json::Map<String, serde_json::Value>) {
        match self {
            Why::Typed(text) => {
                into.insert(
                    "reason_digest".into(),
                    json!(vault.text_digest("erasure-reason", text)),
                );
            }
            Why::Steward(text) => {
                into.insert("reason".into(), json!(text));
            }
        }
    }
}
