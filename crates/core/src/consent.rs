//! Consent (P5, P10, P16, P27): grants and withdrawals, kept as history and as the state in
//! force, each answered with a signed receipt (P33).
use serde_json::json;
use steward_policy::{Basis, Capability};
use steward_store::{ConsentRow, Op};

use crate::error::Error;
use crate::vault::{Actor, ConsentChange, ConsentTarget, SignedDocument, SubjectId, Vault};

/// The explicit acts by which a person gives or withdraws consent, as a caller records them:
/// a button pressed, a switch turned, a form signed, a written or a spoken statement.
pub const CONSENT_ACTIONS: [&str; 5] = ["button", "toggle", "form", "written", "verbal"];

impl Vault {
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
        let unknown = |kind: crate::NameKind| Error::Unknown { kind };
        match kind {
            "purpose" => self
                .policy
                .purpose_id(name)
                .map(ConsentTarget::Purpose)
                .ok_or_else(|| unknown(crate::NameKind::Purpose)),
            "feature" => self
                .policy
                .feature_id(name)
                .map(ConsentTarget::Feature)
                .ok_or_else(|| unknown(crate::NameKind::Feature)),
            "recipient" => self
                .policy
                .recipient_id(name)
                .map(ConsentTarget::Recipient)
                .ok_or_else(|| unknown(crate::NameKind::Recipient)),
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
        self.consent_each(&[ConsentChange {
            actor,
            subject,
            target,
            granted,
            separate,
            channel,
            gpc: false,
            action: None,
        }])
        .pop()
        .unwrap_or(Err(Error::Internal("no consent was recorded")))
    }

    /// Records several consents as [`Vault::consent`] would each, committed together (one
    /// transaction where the store can; each all or nothing on its own). One answer per
    /// change, in order.
    pub fn consent_each(
        &self,
        changes: &[ConsentChange<'_>],
    ) -> Vec<Result<SignedDocument, Error>> {
        self.record_consents(changes, &|_| true)
            .into_iter()
            .map(|a| a.and_then(|r| r.ok_or(Error::Internal("a receipt was not signed"))))
            .collect()
    }

    /// [`Vault::consent_each`], signing change `i`'s receipt only when `sign(i)`: a caller that does not
    /// hand receipts out saves the signatures (a receipt is made again, byte for byte, from
    /// its consent event and audit entry whenever it is asked for).
    pub(crate) fn record_consents(
        &self,
        changes: &[ConsentChange<'_>],
        sign: &dyn Fn(usize) -> bool,
    ) -> Vec<Result<Option<SignedDocument>, Error>> {
        let mut answers: Vec<Option<Result<Option<SignedDocument>, Error>>> =
            changes.iter().map(|_| None).collect();
        let mut units = Vec::with_capacity(changes.len());
        let mut recorded = Vec::with_capacity(changes.len());
        // Every subject's state in one call (one round trip on PostgreSQL).
        let ids: Vec<_> = changes.iter().map(|c| c.subject.0).collect();
        let states = self.store.subjects(&ids);
        for (i, change) in changes.iter().enumerate() {
            let state = match &states {
                Ok(found) => self.active(&change.subject.0, found.get(i).cloned().flatten()),
                Err(e) => Err(Error::from(e.clone())),
            };
            match self.consent_unit(change, state) {
                Ok((row, draft)) => match self.consent_messages(&row) {
                    Ok(messages) => {
                        let mut ops = vec![Op::RecordConsent(row.clone())];
                        Vault::enqueue(&mut ops, messages);
                        units.push((ops, vec![draft]));
                        recorded.push((i, change.subject, row));
                    }
                    Err(e) => {
                        if let Some(a) = answers.get_mut(i) {
                            *a = Some(Err(e));
                        }
                    }
                },
                Err(e) => {
                    if let Some(a) = answers.get_mut(i) {
                        *a = Some(Err(e));
                    }
                }
            }
        }
        for ((i, subject, row), committed) in
            recorded.into_iter().zip(self.store.commit_each(units))
        {
            let answer = committed.map_err(Error::from).and_then(|entries| {
                let entry = entries
                    .first()
                    .ok_or(Error::Internal("no audit entry"))?;
                tracing::debug!(subject = %self.pseudonym(subject), target = %row.target, granted = row.granted, "consent recorded");
                Ok(sign(i).then(|| self.consent_receipt(subject, &row, entry)))
            });
            if let Some(a) = answers.get_mut(i) {
                *a = Some(answer);
            }
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or(Err(Error::Internal("no consent was recorded"))))
            .collect()
    }

    /// Checks one change against its subject's state (a refusal is audited on its own) and
    /// makes its row and entry.
    pub(crate) fn consent_unit(
        &self,
        change: &ConsentChange<'_>,
        subject_state: Result<steward_store::SubjectRow, Error>,
    ) -> Result<(ConsentRow, steward_audit::Draft), Error> {
        let &ConsentChange {
            actor,
            subject,
            target,
            granted,
            channel,
            ..
        } = change;
        let name = self.consent_target_name(target);
        let action = if granted {
            "consent.grant"
        } else {
            "consent.withdraw"
        };
        if actor.role != steward_policy::RoleId::SUBJECT
            && let Err(e) = self.may(actor, Capability::ConsentRecord)
        {
            return Err(self.refuse(actor, action, Some(subject), "", String::new(), e));
        }
        let applicable = match target {
            // A purpose that a later version made new or wider takes consent even when it
            // rests on the contract: the fresh consent P11 asks for.
            ConsentTarget::Purpose(p)
                if !self.policy.purpose(p).needs_consent() && self.policy.gate(p).is_none() =>
            {
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
        // A name, not free text: it is written to the log and the receipt as it is (P34).
        if channel.is_empty()
            || channel.len() > 32
            || !channel
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
        {
            return Err(Error::Invalid(
                "a consent channel is a name of 1 to 32 lowercase letters, digits, `_` or `-` (`web`, `app`)".into(),
            ));
        }
        if change
            .action
            .is_some_and(|a| !crate::CONSENT_ACTIONS.contains(&a))
        {
            return Err(Error::Invalid(format!(
                "a consent's `action` is one of: {}",
                crate::CONSENT_ACTIONS.join(", ")
            )));
        }
        // P7: under Global Privacy Control a grant stands only on the person's explicit act.
        let signal = if change.gpc && granted && change.action.is_none() {
            Err(Error::GpcSignal)
        } else {
            Ok(())
        };
        if let Err(e) = applicable
            .and_then(|_| subject_state.map(|_| ()))
            .and(signal)
        {
            return Err(self.refuse(actor, action, Some(subject), "", String::new(), e));
        }
        let separate = change.separate && granted;
        let mut detail = json!({ "target": name, "separate": separate, "channel": channel });
        if let Some(map) = detail.as_object_mut() {
            if change.gpc {
                map.insert("gpc".into(), json!(true));
            }
            if let Some(a) = change.action {
                map.insert("action".into(), json!(a));
            }
        }
        let draft = self.act(actor, action, Some(subject), detail);
        let at_ms = self.clock.now_ms();
        let row = ConsentRow {
            subject: subject.0,
            target: name.clone(),
            granted,
            separate,
            channel: channel.into(),
            policy_version: self.policy.version.clone(),
            at_ms,
            audit_seq: 0,
            tag: self.consent_tag(&subject.0, &name, granted, separate, at_ms),
        };
        Ok((row, draft))
    }

    /// The signed receipt of a recorded consent (P33), shaped after ISO/IEC TS 27560: its
    /// record id, the principal by pseudonym, the purposes with their lawful basis and PI
    /// categories, the controller, how it was collected, the policy version, the event time
    /// and the state given or withdrawn. `entry` is the consent's audit entry: the receipt
    /// names it, and how the consent was given comes from it. The same row and entry always
    /// make the same bytes, so a receipt issued again is the receipt issued first.
    pub(crate) fn consent_receipt(
        &self,
        subject: SubjectId,
        row: &ConsentRow,
        entry: &steward_audit::Entry,
    ) -> SignedDocument {
        let detail: serde_json::Value =
            serde_json::from_str(&entry.detail).unwrap_or(serde_json::Value::Null);
        let mut controller = json!({ "statement": self.policy.name });
        if !self.policy.incidents.contact.is_empty()
            && let Some(map) = controller.as_object_mut()
        {
            map.insert("contact".into(), json!(self.policy.incidents.contact));
        }
        let receipt = json!({
            "type": "steward.consent-receipt.v1",
            "shaped_after": "ISO/IEC TS 27560:2023",
            "record_id": uuid::Builder::from_random_bytes(record_id(&entry.hash)).into_uuid().to_string(),
            "subject": subject.to_string(),
            "subject_pseudonym": self.pseudonym(subject),
            "principal": { "id_type": "pseudonym", "pseudonym": self.pseudonym(subject) },
            "controller": controller,
            "target": row.target,
            "purposes": self.receipt_purposes(&row.target),
            "granted": row.granted,
            "state": if row.granted { "given" } else { "withdrawn" },
            "separate": row.separate,
            "channel": row.channel,
            "collection_method": {
                "channel": row.channel,
                "action": detail.get("action").cloned().unwrap_or(serde_json::Value::Null),
                "gpc": detail.get("gpc").and_then(serde_json::Value::as_bool).unwrap_or(false),
            },
            "policy_version": row.policy_version,
            "at": crate::clock::rfc3339(row.at_ms),
            "at_ms": row.at_ms,
            "audit_seq": entry.seq,
            "audit_hash": hex::encode(entry.hash),
        });
        self.sign_document(&receipt)
    }

    /// What a consent target covers, as a receipt lists it: each purpose (or the feature)
    /// with its lawful basis and the PI categories it reaches.
    fn receipt_purposes(&self, target: &str) -> serde_json::Value {
        let Ok(target) = self.consent_target(target) else {
            return json!([]);
        };
        let p = &self.policy;
        let names = |set: &steward_policy::IdSet| json!(p.category_names(set));
        match target {
            ConsentTarget::Purpose(id) => {
                let purpose = p.purpose(id);
                json!([{
                    "purpose": purpose.name,
                    "description": purpose.description,
                    "lawful_basis": purpose.basis.as_str(),
                    "pi_categories": names(&purpose.reads),
                }])
            }
            ConsentTarget::Feature(id) => {
                let feature = p.feature(id);
                json!([{
                    "feature": feature.name,
                    "description": feature.description,
                    "lawful_basis": feature.basis.as_str(),
                    "pi_categories": names(&feature.collects()),
                }])
            }
            ConsentTarget::Recipient(id) => {
                let recipient = p.recipient(id);
                let shared = names(&recipient.categories);
                serde_json::Value::Array(
                    recipient
                        .purposes
                        .iter()
                        .filter_map(|i| p.purposes.get(i))
                        .map(|purpose| {
                            json!({
                                "purpose": purpose.name,
                                "description": purpose.description,
                                "lawful_basis": purpose.basis.as_str(),
                                "pi_categories": shared,
                                "recipient": recipient.name,
                            })
                        })
                        .collect(),
                )
            }
        }
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

    /// The consents in force for a subject, for a role that may record consent.
    pub fn consents_in_force(
        &self,
        actor: &Actor,
        subject: SubjectId,
    ) -> Result<Vec<crate::rights::ExportConsent>, Error> {
        self.may(actor, Capability::ConsentRecord)?;
        self.store
            .consents_in_force(&subject.0)?
            .into_iter()
            .map(|c| {
                self.check_consent(&c)?;
                Ok(crate::rights::ExportConsent::from(c))
            })
            .collect()
    }
}

/// A receipt's record id: the first 16 bytes of its audit entry's hash, laid out as a UUID.
fn record_id(hash: &[u8; 32]) -> [u8; 16] {
    let mut id = [0u8; 16];
    id.copy_from_slice(&hash[..16]);
    id
}
