//! Disclosures on a legal basis (P15) and transfers to a successor (P14).
//!
//! A legal disclosure rests on the law, a court order, an authority's request or enforcing
//! the agreement instead of a recipient's registered scope. It is recorded like any
//! disclosure — the requesting body and its reference sealed under the subject's key, since
//! they may name people — and the subject is told through the outbox at once, or, when a
//! restriction on telling is recorded, when it ends: the mail waits in the outbox, due at that
//! time, and on the deadline board. Until then the disclosure is left out of the subject's
//! export; after, the export's accounting of disclosures lists it.
//!
//! A transfer plan names a successor (a recipient of kind `successor`, bound to the policy by
//! its agreement), the categories and subjects concerned and a date at least
//! `change_notice_days` away; the subjects are told when it is made. The transfer runs only
//! from its date, once every notice is queued, refuses subjects erased, closed or under a
//! hold, and hands over an encrypted bundle, recording a disclosure per subject.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use steward_audit::Outcome;
use steward_policy::{Capability, RecipientKind};
use steward_store::{DisclosureRow, Op, SubjectKey, SubjectState};

use crate::cases::{Delivered, NoticeRun, damaged, pack};
use crate::clock::rfc3339;
use crate::error::{Error, Missing};
use crate::retention::DAY_MS;
use crate::vault::{Actor, SubjectId, Value, Vault};

/// The legal bases a disclosure may rest on instead of a recipient's scope.
pub const LEGAL_BASES: [&str; 4] = [
    "law",
    "court_order",
    "authority_request",
    "agreement_enforcement",
];

/// A disclosure required by law.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalDisclosure {
    /// `law`, `court_order`, `authority_request` or `agreement_enforcement`.
    pub basis: String,
    /// The body that requires it (a court, an authority).
    pub requested_by: String,
    /// Its reference (case number, letter).
    pub reference: String,
    /// The categories handed over.
    pub categories: Vec<String>,
    /// A restriction on telling the subject, if one was ordered.
    #[serde(default)]
    pub restriction: Option<Restriction>,
}

/// A restriction on telling the subject of a disclosure.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restriction {
    /// What orders it (the order or rule, in words).
    pub basis: String,
    /// When it ends (RFC 3339).
    pub until: String,
}

/// What a legal disclosure recorded and handed over.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct LegalDisclosed {
    /// Its id.
    pub disclosure: String,
    /// When the subject is told: now, or when the restriction ends.
    pub notice_at: String,
    /// The values handed over.
    pub values: Vec<Value>,
}

/// What the `legal_basis` column of a legal disclosure holds (JSON).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Basis {
    /// `law`, ..., or `transfer`.
    pub basis: String,
    /// The disclosure's id.
    #[serde(default)]
    pub id: String,
    /// The requesting body, sealed.
    #[serde(default)]
    pub requested_by: String,
    /// The reference, sealed.
    #[serde(default)]
    pub reference: String,
    /// When a restriction on telling ends, Unix ms.
    #[serde(default)]
    pub restricted_until_ms: Option<i64>,
    /// The transfer plan, for a transfer.
    #[serde(default)]
    pub plan: String,
}

impl Basis {
    /// The basis a stored `legal_basis` column holds: JSON, or (before this build) a word.
    pub(crate) fn read(stored: &str) -> Option<Basis> {
        if stored.is_empty() {
            return None;
        }
        Some(serde_json::from_str(stored).unwrap_or_else(|_| Basis {
            basis: stored.to_string(),
            ..Basis::default()
        }))
    }
}

fn short_text(field: &str, text: &str) -> Result<(), Error> {
    if text.trim().is_empty() || text.len() > 200 {
        return Err(Error::Invalid(format!("`{field}` is 1 to 200 characters")));
    }
    Ok(())
}

/// A new transfer plan.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    /// The successor: a recipient of kind `successor` in the policy.
    pub successor: String,
    /// The categories that move (within the successor's registered categories).
    pub categories: Vec<String>,
    /// The subjects concerned; every subject holding one of the categories when not given.
    #[serde(default)]
    pub subjects: Option<Vec<String>>,
    /// The day it happens (`YYYY-MM-DD`, UTC), at least `change_notice_days` away.
    pub date: String,
}

/// A transfer plan as kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TransferDoc {
    id: String,
    successor: String,
    categories: Vec<String>,
    listed: bool,
    date_ms: i64,
    planned_ms: i64,
    planned_by: String,
    state: String,
    subjects: u64,
    chunks: i64,
    notice: Option<NoticeRun>,
    run: Option<Ran>,
}

/// What a transfer run did, as kept.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ran {
    /// When, Unix ms.
    pub at_ms: i64,
    /// Subjects handed over.
    pub transferred: u64,
    /// Subjects refused, by why: `erased`, `closed`, `held`.
    pub refused: BTreeMap<String, u64>,
    /// SHA-256 of the encrypted bundle, hex.
    pub bundle_digest: String,
}

/// A transfer plan as staff see it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct Transfer {
    /// Id (`trf_…`).
    pub id: String,
    /// The successor.
    pub successor: String,
    /// Its legal name.
    pub successor_legal_name: String,
    /// Its agreement.
    pub agreement: String,
    /// Categories that move.
    pub categories: Vec<String>,
    /// When it happens.
    pub date: String,
    /// When planned.
    pub planned_at: String,
    /// Who planned it.
    pub planned_by: String,
    /// `planned` or `done`.
    pub state: String,
    /// Subjects concerned.
    pub subjects: u64,
    /// How telling them stands.
    pub notification: Delivered,
    /// What the run did, once it ran.
    pub run: Option<Ran>,
}

/// The outcome of a transfer run: the encrypted bundle for the successor and its key, shown
/// this once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct TransferBundle {
    /// The plan, after the run.
    pub transfer: Transfer,
    /// The AES-256-GCM key the bundle is sealed under, base64: hand it to the successor apart
    /// from the bundle.
    pub key: String,
    /// The bundle: `STEWARD-TRANSFER-1\n`, a 12-byte nonce, then the ciphertext and tag of
    /// its JSON (additional data: the plan's id), base64.
    pub bundle: String,
}

/// The first line of a transfer bundle.
pub const BUNDLE_MAGIC: &[u8] = b"STEWARD-TRANSFER-1\n";

impl Vault {
    /// Discloses a subject's values on a legal basis (P15), records it and tells the subject
    /// through the outbox — at once, or when a restriction on telling ends. For a role with
    /// `disclosures.legal`. Audited as `disclosure.record` (the body and reference by keyed
    /// digest).
    pub fn disclose_legal(
        &self,
        actor: &Actor,
        subject: SubjectId,
        d: &LegalDisclosure,
    ) -> Result<LegalDisclosed, Error> {
        self.permit(actor, Capability::DisclosuresLegal, Some(subject))?;
        if !LEGAL_BASES.contains(&d.basis.as_str()) {
            return Err(Error::Invalid(format!(
                "`basis` must be one of: {}",
                LEGAL_BASES.join(", ")
            )));
        }
        short_text("requested_by", &d.requested_by)?;
        short_text("reference", &d.reference)?;
        if d.categories.is_empty() {
            return Err(Error::Invalid("`categories` must name at least one".into()));
        }
        self.category_ids(d.categories.iter().map(String::as_str))?;
        let now = self.clock.now_ms();
        let restricted_until_ms = match &d.restriction {
            None => None,
            Some(r) => {
                short_text("restriction.basis", &r.basis)?;
                let until = crate::clock::parse_rfc3339(&r.until).ok_or_else(|| {
                    Error::Invalid("`restriction.until` must be an RFC 3339 time".into())
                })?;
                if until <= now {
                    return Err(Error::Invalid(
                        "`restriction.until` must be in the future".into(),
                    ));
                }
                Some(until)
            }
        };
        let cats: Vec<&str> = d.categories.iter().map(String::as_str).collect();
        let held = self
            .store
            .subject_records(&subject.0, None, &cats)?
            .ok_or(Error::SubjectNotFound)?;
        if matches!(held.state, SubjectState::Erasing | SubjectState::Erased) {
            return Err(Error::SubjectErased);
        }
        let values = self.open_rows(subject, held.records)?;
        let id = self.new_id("dsc")?;
        let basis = Basis {
            basis: d.basis.clone(),
            id: id.clone(),
            requested_by: self.seal_text(subject, "disclosure-body", &id, &d.requested_by)?,
            reference: self.seal_text(subject, "disclosure-reference", &id, &d.reference)?,
            restricted_until_ms,
            plan: String::new(),
        };
        let notice_ms = restricted_until_ms.unwrap_or(now);
        let mut mail =
            self.subject_mail("disclosure.legal", subject, json!({ "disclosure": id }))?;
        mail.next_ms = notice_ms;
        let mut detail = serde_json::Map::new();
        detail.insert("disclosure".into(), json!(id));
        detail.insert("legal_basis".into(), json!(d.basis));
        detail.insert(
            "requested_by".into(),
            json!(self.text_digest("disclosure-body", &d.requested_by)),
        );
        detail.insert(
            "reference".into(),
            json!(self.text_digest("disclosure-reference", &d.reference)),
        );
        detail.insert("records".into(), json!(values.len()));
        if let Some(r) = &d.restriction {
            detail.insert("restricted_until".into(), json!(rfc3339(notice_ms)));
            detail.insert(
                "restriction".into(),
                json!(self.text_digest("disclosure-restriction", &r.basis)),
            );
        }
        let cats = d.categories.join(",");
        self.store.commit(
            vec![
                Op::InsertDisclosure(DisclosureRow {
                    subject: subject.0,
                    recipient: format!("legal:{}", d.basis),
                    categories: cats.clone(),
                    purpose: String::new(),
                    legal_basis: serde_json::to_string(&basis)
                        .map_err(|_| Error::Internal("a legal basis does not serialise"))?,
                    at_ms: now,
                    audit_seq: 0,
                }),
                Op::Enqueue(vec![mail]),
            ],
            vec![self.draft(
                actor,
                "disclosure.record",
                Outcome::Granted,
                Some(subject),
                "",
                cats,
                Json::Object(detail),
            )],
        )?;
        Ok(LegalDisclosed {
            disclosure: id,
            notice_at: rfc3339(notice_ms),
            values,
        })
    }

    /// The body and reference of a legal disclosure, opened; `None` for either once the
    /// subject is erased.
    pub(crate) fn legal_parties(
        &self,
        subject: SubjectId,
        b: &Basis,
    ) -> Result<(Option<String>, Option<String>), Error> {
        if b.requested_by.is_empty() {
            return Ok((None, None));
        }
        Ok((
            self.open_text(subject, "disclosure-body", &b.id, &b.requested_by)?,
            self.open_text(subject, "disclosure-reference", &b.id, &b.reference)?,
        ))
    }

    /// The mail telling a subject of a legal disclosure, in `lang`.
    pub(crate) fn legal_disclosure_mail(
        &self,
        subject: Option<SubjectId>,
        lang: &str,
        data: &Json,
    ) -> Result<(String, String), Error> {
        let subject = subject.ok_or(Error::Internal("a disclosure notice names no subject"))?;
        let id = data
            .get("disclosure")
            .and_then(Json::as_str)
            .ok_or(Error::Internal("a disclosure notice names no disclosure"))?;
        let row = self
            .store
            .disclosures(&subject.0)?
            .into_iter()
            .find(|d| Basis::read(&d.legal_basis).is_some_and(|b| b.id == id))
            .ok_or(Error::Internal("a disclosure notice's disclosure is gone"))?;
        let basis = Basis::read(&row.legal_basis).unwrap_or_default();
        let (body, reference) = self.legal_parties(subject, &basis)?;
        let c = &self.catalogue;
        let kind = c.text(lang, &format!("legal-basis-{}", basis.basis), None, &[])?;
        let cats = self.category_words(&row.categories, lang)?;
        let at = rfc3339(row.at_ms);
        let (body, reference) = (body.unwrap_or_default(), reference.unwrap_or_default());
        let args = [
            ("basis", kind.as_str()),
            ("body", body.as_str()),
            ("reference", reference.as_str()),
            ("categories", cats.as_str()),
            ("at", at.as_str()),
            ("provider", self.policy.name.as_str()),
        ];
        Ok((
            c.text(lang, "disclosure-legal", None, &args)?,
            c.text(lang, "disclosure-legal", Some("body"), &args)?,
        ))
    }

    /// Category names (comma-separated) as their descriptions, listed in `lang`.
    fn category_words(&self, names: &str, lang: &str) -> Result<String, Error> {
        let sep = self.catalogue.text(lang, "list-separator", None, &[])?;
        Ok(names
            .split(',')
            .filter(|n| !n.is_empty())
            .map(|n| {
                self.policy
                    .category_id(n)
                    .map(|id| self.policy.category(id).description.clone())
                    .unwrap_or_else(|| n.to_string())
            })
            .collect::<Vec<_>>()
            .join(&sep))
    }

    fn permit_transfers(&self, actor: Option<&Actor>) -> Result<(), Error> {
        match actor {
            Some(a) => self.permit(a, Capability::TransfersManage, None),
            None => Ok(()),
        }
    }

    /// Plans a transfer to a successor (P14): the subjects concerned are computed and kept,
    /// and told through the outbox, batch by batch, starting now. Audited as `transfer.plan`.
    pub fn plan_transfer(&self, actor: Option<&Actor>, t: &NewTransfer) -> Result<Transfer, Error> {
        self.permit_transfers(actor)?;
        let rid = self
            .policy
            .recipient_id(&t.successor)
            .ok_or(Error::Unknown {
                kind: crate::NameKind::Recipient,
            })?;
        let r = self.policy.recipient(rid);
        if r.kind != RecipientKind::Successor {
            return Err(Error::DisclosureOutOfScope {
                recipient: r.name.clone(),
                reason:
                    "only a recipient of kind `successor` takes over subjects' data in a transfer"
                        .into(),
            });
        }
        if t.categories.is_empty() {
            return Err(Error::Invalid("`categories` must name at least one".into()));
        }
        self.within_scope(
            r,
            &self.category_ids(t.categories.iter().map(String::as_str))?,
        )?;
        let date = crate::versions::parse_day(&t.date)?;
        let date_ms = (date.midnight().assume_utc().unix_timestamp()) * 1000;
        let now = self.clock.now_ms();
        let days = self.policy.deadlines.change_notice_days;
        let earliest = now.saturating_add(i64::from(days) * DAY_MS);
        if date_ms < earliest {
            let first_day = earliest.div_euclid(DAY_MS) * DAY_MS
                + if earliest % DAY_MS == 0 { 0 } else { DAY_MS };
            return Err(Error::TransferTooSoon {
                days,
                earliest: crate::versions::ms_date(first_day),
            });
        }
        let listed: Option<Vec<SubjectKey>> = t
            .subjects
            .as_ref()
            .map(|l| {
                l.iter()
                    .map(|s| s.parse::<SubjectId>().map(|s| s.0))
                    .collect()
            })
            .transpose()?;
        let computed =
            self.compute_set(&t.categories, &[], (i64::MIN, now), listed.as_deref(), None)?;
        let id = self.new_id("trf")?;
        let chunks = pack(&computed.keys);
        let doc = TransferDoc {
            id: id.clone(),
            successor: r.name.clone(),
            categories: t.categories.clone(),
            listed: listed.is_some(),
            date_ms,
            planned_ms: now,
            planned_by: Vault::actor_id(actor),
            state: "planned".into(),
            subjects: computed.keys.len() as u64,
            chunks: chunks.len() as i64,
            notice: Some(NoticeRun {
                started_ms: now,
                version: 1,
                total: computed.keys.len() as u64,
                run: 1,
                ..NoticeRun::default()
            }),
            run: None,
        };
        let mut ops = vec![
            self.case_op(&id, "transfer", 1, &doc)?,
            Op::PutCaseSet {
                id: id.clone(),
                version: 1,
                chunks,
            },
        ];
        Vault::enqueue(
            &mut ops,
            self.event_messages(
                "transfer.planned",
                json!({ "transfer": id, "successor": doc.successor, "date": t.date, "subjects": doc.subjects }),
            )?,
        );
        let detail = json!({ "transfer": id, "successor": doc.successor, "date": crate::versions::ms_date(date_ms), "subjects": doc.subjects });
        let mut draft = self.managed(actor, "transfer.plan", detail);
        draft.categories = t.categories.join(",");
        self.commit_case(ops, vec![draft])?;
        self.transfer_view(&doc)
    }

    fn transfer_view(&self, doc: &TransferDoc) -> Result<Transfer, Error> {
        let r = self
            .policy
            .recipient_id(&doc.successor)
            .map(|id| self.policy.recipient(id));
        Ok(Transfer {
            id: doc.id.clone(),
            successor: doc.successor.clone(),
            successor_legal_name: r.map(|r| r.legal_name.clone()).unwrap_or_default(),
            agreement: r.map(|r| r.agreement.clone()).unwrap_or_default(),
            categories: doc.categories.clone(),
            date: crate::versions::ms_date(doc.date_ms),
            planned_at: rfc3339(doc.planned_ms),
            planned_by: doc.planned_by.clone(),
            state: doc.state.clone(),
            subjects: doc.subjects,
            notification: self.delivered(&doc.id, doc.notice.as_ref())?,
            run: doc.run.clone(),
        })
    }

    /// One transfer plan.
    pub fn transfer(&self, actor: Option<&Actor>, id: &str) -> Result<Transfer, Error> {
        self.permit_transfers(actor)?;
        let (_, doc) = self.load_case::<TransferDoc>(id, "transfer", Missing::Transfer)?;
        self.transfer_view(&doc)
    }

    /// Every transfer plan, by id.
    pub fn transfers(&self, actor: Option<&Actor>) -> Result<Vec<Transfer>, Error> {
        self.permit_transfers(actor)?;
        self.store
            .cases("transfer")?
            .iter()
            .map(|r| {
                serde_json::from_str::<TransferDoc>(&r.doc)
                    .map_err(|_| damaged("a case's document is not what its kind holds"))
                    .and_then(|d| self.transfer_view(&d))
            })
            .collect()
    }

    /// One batch of a transfer's notice run (the CLI's loop); `None` when it has none.
    pub fn transfer_notice_step(
        &self,
        id: &str,
        batch: usize,
    ) -> Result<Option<(u64, u64, bool)>, Error> {
        Ok(self
            .notice_step(id, "transfer", ("transfer.notice", "transfer.push"), batch)?
            .map(|r| (r.position, r.total, r.done)))
    }

    /// The mail telling a subject of a planned transfer, in `lang`.
    pub(crate) fn transfer_mail(&self, id: &str, lang: &str) -> Result<(String, String), Error> {
        let (_, doc) = self.load_case::<TransferDoc>(id, "transfer", Missing::Transfer)?;
        let r = self
            .policy
            .recipient_id(&doc.successor)
            .map(|id| self.policy.recipient(id));
        let cats = self.category_words(&doc.categories.join(","), lang)?;
        let date = crate::versions::ms_date(doc.date_ms);
        let args = [
            ("provider", self.policy.name.as_str()),
            ("successor", r.map_or("", |r| r.legal_name.as_str())),
            ("agreement", r.map_or("", |r| r.agreement.as_str())),
            ("categories", cats.as_str()),
            ("date", date.as_str()),
        ];
        Ok((
            self.catalogue.text(lang, "transfer-notice", None, &args)?,
            self.catalogue
                .text(lang, "transfer-notice", Some("body"), &args)?,
        ))
    }

    /// Runs a transfer (P14): from its date, once every subject's notice is queued. Each
    /// subject still active and under no hold for the categories has their values sealed into
    /// the bundle and a disclosure to the successor recorded (audited `disclosure.record`);
    /// erased, closed and held subjects are refused and counted. Audited as `transfer.run`.
    pub fn run_transfer(&self, actor: Option<&Actor>, id: &str) -> Result<TransferBundle, Error> {
        self.permit_transfers(actor)?;
        let (row, mut doc) = self.load_case::<TransferDoc>(id, "transfer", Missing::Transfer)?;
        let now = self.clock.now_ms();
        if doc.state != "planned" {
            return Err(Error::Conflict("the transfer has run already".into()));
        }
        if now < doc.date_ms {
            return Err(Error::TransferNotDue {
                date: crate::versions::ms_date(doc.date_ms),
            });
        }
        if doc.notice.as_ref().is_some_and(|n| !n.done) {
            return Err(Error::Conflict(
                "subjects are still being told of the transfer; it runs once every notice is queued".into(),
            ));
        }
        let cats: Vec<&str> = doc.categories.iter().map(String::as_str).collect();
        let mut refused: BTreeMap<String, u64> = BTreeMap::new();
        let mut moved = Vec::new();
        let mut ops = Vec::new();
        let mut drafts = Vec::new();
        let basis = serde_json::to_string(&Basis {
            basis: "transfer".into(),
            plan: doc.id.clone(),
            ..Basis::default()
        })
        .map_err(|_| Error::Internal("a legal basis does not serialise"))?;
        for chunk in 0..doc.chunks {
            let bytes = self
                .store
                .case_chunk(&doc.id, 1, chunk)?
                .ok_or_else(|| damaged("a case's subject set lost a chunk"))?;
            let keys: Vec<SubjectKey> = bytes
                .chunks_exact(16)
                .filter_map(|k| k.try_into().ok())
                .collect();
            let states = self.store.subjects(&keys)?;
            for (key, state) in keys.iter().zip(states) {
                let subject = SubjectId(*key);
                let why = match state.map(|s| s.state) {
                    Some(SubjectState::Active) => None,
                    Some(SubjectState::Closed) => Some("closed"),
                    _ => Some("erased"),
                };
                let why = match why {
                    None if self
                        .store
                        .holds(key)?
                        .iter()
                        .any(|h| h.active_at(now) && cats.iter().any(|c| h.covers(c))) =>
                    {
                        Some("held")
                    }
                    w => w,
                };
                if let Some(w) = why {
                    *refused.entry(w.into()).or_default() += 1;
                    continue;
                }
                let records = self
                    .store
                    .subject_records(key, None, &cats)?
                    .map(|r| r.records)
                    .unwrap_or_default();
                let values = self.open_rows(subject, records)?;
                moved.push(json!({
                    "subject": subject.to_string(),
                    "values": values.iter().map(|v| json!({
                        "category": v.category,
                        "value": v.value,
                        "source": v.source,
                        "collected_at": rfc3339(v.collected_ms),
                    })).collect::<Vec<_>>(),
                }));
                ops.push(Op::InsertDisclosure(DisclosureRow {
                    subject: *key,
                    recipient: doc.successor.clone(),
                    categories: doc.categories.join(","),
                    purpose: String::new(),
                    legal_basis: basis.clone(),
                    at_ms: now,
                    audit_seq: 0,
                }));
                let detail = json!({ "recipient": doc.successor, "legal_basis": "transfer", "transfer": doc.id, "records": values.len() });
                // By the caller, or by `system` from the command line.
                let mut draft = self.managed(actor, "disclosure.record", detail);
                draft.subject = self.pseudonym(subject);
                draft.categories = doc.categories.join(",");
                drafts.push(draft);
            }
        }
        let plain = serde_json::to_vec(&json!({
            "format": "steward-transfer/1",
            "transfer": doc.id,
            "successor": doc.successor,
            "created_at": rfc3339(now),
            "subjects": moved,
        }))
        .map_err(|_| Error::Internal("a bundle does not serialise"))?;
        let (key, bundle) = seal_bundle(&self.rng, &doc.id, &plain)?;
        let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bundle));
        doc.state = "done".into();
        doc.run = Some(Ran {
            at_ms: now,
            transferred: moved.len() as u64,
            refused: refused.clone(),
            bundle_digest: digest.clone(),
        });
        ops.insert(
            0,
            self.case_op(&doc.id, "transfer", row.revision + 1, &doc)?,
        );
        let mut run = self.managed(actor, "transfer.run", json!({ "transfer": doc.id, "transferred": moved.len(), "refused": refused, "bundle": digest }));
        run.categories = doc.categories.join(",");
        drafts.push(run);
        self.commit_case(ops, drafts)?;
        tracing::info!(transfer = %doc.id, transferred = moved.len(), "transfer ran");
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(TransferBundle {
            transfer: self.transfer_view(&doc)?,
            key: b64.encode(key),
            bundle: b64.encode(bundle),
        })
    }
}

/// Seals a bundle under a fresh AES-256-GCM key: the key, and the magic line, nonce,
/// ciphertext and tag.
fn seal_bundle(
    rng: &ring::rand::SystemRandom,
    plan: &str,
    plain: &[u8],
) -> Result<([u8; 32], Vec<u8>), Error> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    use ring::rand::SecureRandom;
    let random = |buf: &mut [u8]| {
        rng.fill(buf)
            .map_err(|_| Error::Crypto(steward_crypto::CryptoError::Random))
    };
    let mut key = [0u8; 32];
    random(&mut key)?;
    let mut nonce = [0u8; 12];
    random(&mut nonce)?;
    let sealing = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &key).map_err(|_| Error::Internal("bundle key"))?,
    );
    let mut data = plain.to_vec();
    sealing
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(plan.as_bytes()),
            &mut data,
        )
        .map_err(|_| Error::Internal("a bundle could not be sealed"))?;
    let mut out = BUNDLE_MAGIC.to_vec();
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&data);
    Ok((key, out))
}
