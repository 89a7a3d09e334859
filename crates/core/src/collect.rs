//! Collection (P3, P5, P6, P20): a feature's values checked against the policy, encrypted
//! under the subject's key and stored with their audit entry in one transaction.
use serde_json::json;
use steward_audit::Outcome;
use steward_policy::{Basis, Capability, FeatureId, IdSet};
use steward_store::{IndexRow, Op, Reader, RecordRow, SubjectKey, SubjectState};

use crate::error::{Error, quoted};
use crate::vault::{Actor, Collect, MAX_VALUE_BYTES, RecordMeta, Source, Vault, normalise_lookup};

impl Vault {
    /// Collects one feature's values for one subject (P3, P5, P6, P20).
    pub fn collect(&self, actor: &Actor, req: &Collect<'_>) -> Result<Vec<i64>, Error> {
        self.collect_many(actor, std::slice::from_ref(req))?
            .pop()
            .ok_or(Error::Internal("a collection returned no answer"))
    }

    fn check_collect(
        &self,
        req: &Collect<'_>,
        reader: &dyn Reader,
        claimed: &mut Vec<([u8; 16], SubjectKey)>,
    ) -> Result<(FeatureId, IdSet), Error> {
        let fid = self.policy.feature_id(req.feature).ok_or(Error::Unknown {
            kind: crate::NameKind::Feature,
        })?;
        let feature = self.policy.feature(fid);
        if let Source::ThirdParty(party) = &req.source {
            check_party(party)?;
        }
        if req.values.is_empty() {
            return Err(Error::Invalid(
                "a collection needs at least one value".into(),
            ));
        }
        let mut set = IdSet::EMPTY;
        let mut undeclared = Vec::new();
        for (cat, value) in req.values {
            match self.policy.category_id(cat) {
                Some(id) if feature.collects().contains(id.index()) => set.insert(id.index()),
                Some(_) => undeclared.push(*cat),
                None => {
                    return Err(Error::Unknown {
                        kind: crate::NameKind::Category,
                    });
                }
            }
            // The category is the policy's now: naming it repeats nothing the caller made up.
            if value.len() > MAX_VALUE_BYTES {
                return Err(Error::Invalid(format!(
                    "a value of `{cat}` is longer than {MAX_VALUE_BYTES} bytes"
                )));
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
        self.check_identities(req, reader, claimed)?;
        let found = reader.subject_records(&req.subject.0, None, &[])?;
        if let Some(f) = &found {
            self.check_state(&req.subject.0, f.state, &f.state_tag)?;
        }
        match found {
            None => return Err(self.not_found(&req.subject.0)),
            Some(found) if found.state == SubjectState::Closed => {
                return Err(Error::ClosedToCollection);
            }
            Some(found) if found.state != SubjectState::Active => return Err(Error::SubjectErased),
            Some(_) => {}
        }
        let sensitive = set.intersection(&feature.separate_consent);
        if feature.basis == Basis::Consent || !sensitive.is_empty() {
            let target = format!("feature:{}", feature.name);
            let consent = self.checked_consent(reader.consent(&req.subject.0, &target)?)?;
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

    /// P25: a lookup value (an email, a phone number, a linked account — what a subject is
    /// found and signs in by) belongs to one subject. A collection that would give it to a
    /// second subject, whose account is open or closed but not erased, is refused; so is one
    /// giving it to two subjects in one batch (`claimed`).
    pub(crate) fn check_identities(
        &self,
        req: &Collect<'_>,
        reader: &dyn Reader,
        claimed: &mut Vec<([u8; 16], SubjectKey)>,
    ) -> Result<(), Error> {
        for (cat, value) in req.values {
            let Some(id) = self.policy.category_id(cat) else {
                continue;
            };
            if !self.policy.category(id).lookup {
                continue;
            }
            let digest = self.keys.blind_index(cat, &normalise_lookup(value));
            let taken = || Error::IdentityInUse {
                category: (*cat).to_string(),
            };
            if claimed
                .iter()
                .any(|(d, s)| *d == digest && *s != req.subject.0)
            {
                return Err(taken());
            }
            for holder in reader.index_holders(&digest)? {
                if holder == req.subject.0 {
                    continue;
                }
                let live = reader
                    .subject_records(&holder, None, &[])?
                    .is_some_and(|h| {
                        matches!(h.state, SubjectState::Active | SubjectState::Closed)
                    });
                if live {
                    return Err(taken());
                }
            }
            claimed.push((digest, req.subject.0));
        }
        Ok(())
    }

    /// Collects several features' values in one transaction; all or nothing. The first
    /// refused collection is audited and returned, and nothing is stored.
    pub fn collect_many(
        &self,
        actor: &Actor,
        reqs: &[Collect<'_>],
    ) -> Result<Vec<Vec<i64>>, Error> {
        if let Err(e) = self.may(actor, Capability::PiCollect) {
            let subject = reqs.first().map(|r| r.subject);
            return Err(self.refuse(actor, "pi.collect", subject, "", String::new(), e));
        }
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
            let mut claimed = Vec::new();
            // Every subject's state, fetched together.
            let wanted: Vec<(&SubjectKey, Option<&str>, &[&str])> =
                reqs.iter().map(|r| (&r.subject.0, None, &[][..])).collect();
            reader.prefetch(&wanted)?;
            for req in reqs {
                let (fid, set) = match self.check_collect(req, reader, &mut claimed) {
                    Ok(ok) => ok,
                    Err(Error::Store(e)) => return Err(e),
                    Err(e) => {
                        // Only names the policy has: anything else may be anything (P34).
                        let names: Vec<&str> = req
                            .values
                            .iter()
                            .map(|(c, _)| *c)
                            .filter(|c| self.policy.category_id(c).is_some())
                            .collect();
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
    pub(crate) fn seal_collection(
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
            let meta = RecordMeta {
                category: cat,
                id,
                feature: req.feature,
                source: &source,
                collected_ms: now,
            };
            let sealed = key.seal(
                &self.nonces,
                &self.record_aad(&req.subject.0, meta),
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
}

/// Longest third-party name a record's source may carry, in characters.
pub const MAX_PARTY_CHARS: usize = 200;

/// P6: a third-party source names the party — not empty, not only spaces, no control
/// characters, at most [`MAX_PARTY_CHARS`].
fn check_party(party: &str) -> Result<(), Error> {
    if party.trim().is_empty() {
        return Err(Error::Invalid(
            "`source.party` must name the third party the values came from".into(),
        ));
    }
    if party.chars().count() > MAX_PARTY_CHARS || party.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "`source.party` must be at most {MAX_PARTY_CHARS} characters, none of them control characters"
        )));
    }
    Ok(())
}
