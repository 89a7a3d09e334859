//! Purpose-checked reads (P9, P10, P21, P27) and disclosures to registered recipients (P12,
//! P13, P16). Values leave only after the audit entry that records their reading commits.
use std::collections::HashMap;

use serde_json::json;
use steward_audit::Outcome;
use steward_policy::{Capability, Refusal, Request};
use steward_policy::{IdSet, PurposeId};
use steward_store::{DisclosureRow, Op, Reader, RecordRow, SubjectKey, SubjectState};

/// What the policy decided about a read, before the store is asked.
struct Decided {
    purpose: PurposeId,
    categories: IdSet,
    /// The consent target fetched: the purpose's, when it needs consent or fresh consent.
    target: Option<String>,
    /// The purpose rests on consent (P10).
    needs_consent: bool,
    /// The purpose needs consent given since a later version took effect (P11).
    gate: Option<crate::versions::Gate>,
}

use crate::error::{Error, quoted};
use crate::vault::{Actor, MAX_JUSTIFICATION, Read, RecordMeta, SubjectId, Value, Vault};

impl Vault {
    /// A purpose-checked, audited read (P9, P10, P21, P27).
    pub fn read(&self, actor: &Actor, req: &Read<'_>) -> Result<Vec<Value>, Error> {
        self.read_many(actor, std::slice::from_ref(req))
            .pop()
            .unwrap_or(Err(Error::Internal("no read")))
    }

    /// Several reads whose audit entries commit in one transaction. Values are returned only
    /// after that commit (P21: no audit, no act).
    pub fn read_many(&self, actor: &Actor, reqs: &[Read<'_>]) -> Vec<Result<Vec<Value>, Error>> {
        let pairs: Vec<(&Actor, Read<'_>)> = reqs.iter().map(|r| (actor, r.clone())).collect();
        self.read_batch(&pairs)
    }

    /// Reads by different callers, committed together: the group commit behind a busy server.
    /// Each read is decided and audited as its own caller.
    pub fn read_batch(&self, batch: &[(&Actor, Read<'_>)]) -> Vec<Result<Vec<Value>, Error>> {
        let mut results = Vec::with_capacity(batch.len());
        let done = self.store.read_commit(&mut |reader| {
            results.clear();
            let mut audit = Vec::with_capacity(batch.len());
            // Decide every read first, so that the store can fetch what they need together.
            let decided: Vec<Result<Decided, Error>> = batch
                .iter()
                .map(|(actor, req)| self.decide_read(actor, req))
                .collect();
            let wanted: Vec<(&SubjectKey, Option<&str>, &[&str])> = decided
                .iter()
                .zip(batch)
                .filter_map(|(d, (_, req))| {
                    d.as_ref()
                        .ok()
                        .map(|d| (&req.subject.0, d.target.as_deref(), req.categories))
                })
                .collect();
            reader.prefetch(&wanted)?;
            for ((actor, req), decided) in batch.iter().zip(decided) {
                let (actor, req) = (*actor, req);
                let read = decided
                    .and_then(|d| self.fetch_read(req, d, reader))
                    .and_then(|values| {
                        let detail = self.read_detail(req, values.len())?;
                        Ok((values, detail))
                    });
                let (outcome, detail, result) = match read {
                    // A storage failure aborts the whole unit: nothing is returned unaudited.
                    Err(Error::Store(e)) => return Err(e),
                    Ok((values, detail)) => (Outcome::Granted, detail, Ok(values)),
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
                for ((_, req), r) in batch.iter().zip(&results) {
                    match r {
                        Ok(v) => {
                            tracing::debug!(subject = %self.pseudonym(req.subject), purpose = self.declared_purpose(req.purpose), records = v.len(), "read granted")
                        }
                        Err(e) => {
                            tracing::debug!(subject = %self.pseudonym(req.subject), purpose = self.declared_purpose(req.purpose), code = e.code().as_str(), "read refused")
                        }
                    }
                }
                results
            }
            // The store's own error, for every read of the batch: an outage stays an outage
            // (503 `storage_unavailable`), as it is for writes.
            Err(e) => batch.iter().map(|_| Err(Error::Store(e.clone()))).collect(),
        }
    }

    /// A granted read's audit detail: how many records, and its justification as a keyed
    /// digest and sealed under the subject's key (P21, P34), never as typed.
    fn read_detail(&self, req: &Read<'_>, records: usize) -> Result<serde_json::Value, Error> {
        if req.justification.is_none_or(|j| j.trim().is_empty()) {
            // The common case, written without building a JSON map.
            return Ok(serde_json::Value::String(format!(
                "{{\"records\":{records}}}"
            )));
        }
        let mut map = serde_json::Map::new();
        map.insert("records".into(), json!(records));
        self.note_justification(&mut map, req.subject, "pi.read", req.justification)?;
        Ok(serde_json::Value::Object(map))
    }

    fn read_one(
        &self,
        actor: &Actor,
        req: &Read<'_>,
        reader: &dyn Reader,
    ) -> Result<Vec<Value>, Error> {
        let decided = self.decide_read(actor, req)?;
        self.fetch_read(req, decided, reader)
    }

    /// The policy's side of a read: who, why, what; no storage touched.
    fn decide_read(&self, actor: &Actor, req: &Read<'_>) -> Result<Decided, Error> {
        self.may(actor, Capability::PiRead)?;
        let purpose = self.policy.purpose_id(req.purpose).ok_or(Error::Unknown {
            kind: crate::NameKind::Purpose,
        })?;
        let categories = self.category_ids(req.categories.iter().copied())?;
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
        let gate = self.policy.gate(purpose);
        let target = (grant.needs_consent || gate.is_some())
            .then(|| format!("purpose:{}", self.policy.purpose(purpose).name));
        Ok(Decided {
            purpose,
            categories,
            target,
            needs_consent: grant.needs_consent,
            gate,
        })
    }

    /// The store's side of a decided read: the subject's state, the consent the purpose needs,
    /// the values, and separate consent for sensitive ones.
    fn fetch_read(
        &self,
        req: &Read<'_>,
        decided: Decided,
        reader: &dyn Reader,
    ) -> Result<Vec<Value>, Error> {
        let Decided {
            purpose,
            categories,
            target,
            needs_consent,
            gate,
        } = decided;
        let found = reader.subject_records(&req.subject.0, target.as_deref(), req.categories)?;
        // P10, P27, P33: the state and the consent decided on are the ones Steward wrote.
        if let Some(f) = &found {
            self.check_state(&req.subject.0, f.state, &f.state_tag)?;
        }
        let found = match found {
            None => return Err(self.not_found(&req.subject.0)),
            Some(found) if found.state == SubjectState::Active => found,
            // P28: a closed account is kept only for what the law requires until its erasure.
            Some(found)
                if found.state == SubjectState::Closed
                    && self.policy.purpose(purpose).basis
                        == steward_policy::Basis::LegalObligation =>
            {
                found
            }
            Some(found) if found.state == SubjectState::Closed => {
                return Err(Error::SubjectClosed);
            }
            Some(_) => return Err(Error::SubjectErased),
        };
        if let Some(target) = &target {
            let held = match &found.consent {
                Some(c) => {
                    self.check_held(&req.subject.0, target, c)?;
                    Some((c.granted, c.at_ms))
                }
                // None held: refused, unless the store lost it (its events are there).
                None => self
                    .checked_consent(reader.consent(&req.subject.0, target)?)?
                    .map(|c| (c.granted, c.at_ms)),
            };
            // P11: data collected before the version that made this purpose new or wider is
            // used for it only with consent given since that version took effect.
            if let Some(g) = &gate
                && found.created_ms < g.since_ms
                && !held.is_some_and(|(granted, at)| granted && at >= g.since_ms)
            {
                return Err(Error::ReconsentRequired {
                    purpose: self.policy.purpose(purpose).name.clone(),
                    version: g.version.to_string(),
                });
            }
            if needs_consent && !held.is_some_and(|(granted, _)| granted) {
                return Err(self.refusal(Refusal::ConsentRequired { purpose }));
            }
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
                    let c = self.checked_consent(
                        reader.consent(&req.subject.0, &format!("feature:{}", row.feature))?,
                    )?;
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
            refusal: r,
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
                let meta = RecordMeta {
                    category: &row.category,
                    id: row.id,
                    feature: &row.feature,
                    source: &row.source,
                    collected_ms: row.collected_ms,
                };
                let plain = self.open_record(&key, &subject.0, meta, &row.sealed)?;
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
        let checked = self
            .may(actor, Capability::DisclosureRecord)
            .and_then(|_| self.check_disclosure(subject, recipient, categories, purpose));
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
                let detail = json!({ "recipient": self.declared_recipient(recipient), "code": e.code(), "reason": e.to_string() });
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
        let mut detail = serde_json::Map::new();
        detail.insert("recipient".into(), json!(recipient));
        detail.insert("records".into(), json!(values.len()));
        self.note_justification(&mut detail, subject, "disclosure.record", justification)?;
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
                serde_json::Value::Object(detail),
            )],
        )?;
        Ok(values)
    }

    /// The categories named, as a set: `unknown_category` when the policy declares one not.
    pub(crate) fn category_ids<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<steward_policy::IdSet, Error> {
        self.policy.category_set(names).map_err(|_| Error::Unknown {
            kind: crate::NameKind::Category,
        })
    }

    /// Refuses categories outside what recipient `r` is registered to receive (P13).
    pub(crate) fn within_scope(
        &self,
        r: &steward_policy::Recipient,
        categories: &IdSet,
    ) -> Result<(), Error> {
        let outside = categories.difference(&r.categories);
        if outside.is_empty() {
            return Ok(());
        }
        Err(Error::DisclosureOutOfScope {
            recipient: r.name.clone(),
            reason: format!(
                "it is not registered to receive {}",
                quoted(self.policy.category_names(&outside))
            ),
        })
    }

    fn check_disclosure(
        &self,
        subject: SubjectId,
        recipient: &str,
        categories: &[&str],
        purpose: &str,
    ) -> Result<(), Error> {
        let rid = self.policy.recipient_id(recipient).ok_or(Error::Unknown {
            kind: crate::NameKind::Recipient,
        })?;
        let r = self.policy.recipient(rid);
        let pid = self.policy.purpose_id(purpose).ok_or(Error::Unknown {
            kind: crate::NameKind::Purpose,
        })?;
        if !r.purposes.contains(pid.index()) {
            return Err(Error::DisclosureOutOfScope {
                recipient: recipient.into(),
                reason: format!("purpose `{purpose}` is not registered for it"),
            });
        }
        self.within_scope(r, &self.category_ids(categories.iter().copied())?)?;
        // P11: a purpose new or wider than the subject's data needs fresh consent.
        if let Some(g) = self.policy.gate(pid)
            && self
                .subject_row(&subject.0)?
                .is_some_and(|row| row.created_ms < g.since_ms)
        {
            let fresh = self
                .checked_consent(
                    self.store
                        .consent(&subject.0, &format!("purpose:{purpose}"))?,
                )?
                .is_some_and(|c| c.granted && c.at_ms >= g.since_ms);
            if !fresh {
                return Err(Error::ReconsentRequired {
                    purpose: purpose.into(),
                    version: g.version.to_string(),
                });
            }
        }
        if r.cross_border {
            let target = format!("recipient:{}", r.name);
            let consent = self.checked_consent(self.store.consent(&subject.0, &target)?)?;
            let what = format!("a transfer abroad to `{}` ({})", r.name, r.region);
            match consent {
                Some(c) if c.granted && c.separate => {}
                Some(c) if c.granted => return Err(Error::NotSeparate { what, target }),
                _ => return Err(Error::ConsentRequired { what, target }),
            }
        }
        Ok(())
    }
}
