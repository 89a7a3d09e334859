//! Rights requests (P23-P28, P31, P32): access, correction, deletion, deletion because
//! processing broke the law or the agreement, consent withdrawal, account cancellation and
//! inquiries or complaints, each moving received -> identity verified -> in progress ->
//! completed or refused, against a deadline from the policy, every step audited.

use serde::Serialize;
use serde_json::json;
use steward_policy::Capability;
use steward_store::{Op, RecordKey, RequestEvent, RequestRow, RequestState, StoreError};

use crate::clock::rfc3339;
use crate::error::Error;
use crate::holds::Held;
use crate::retention::DAY_MS;
use crate::rights::Export;
use crate::rights::Why;
use crate::vault::{Actor, SignedDocument, SubjectId, Vault, aad};

/// The kinds of request.
pub const REQUEST_KINDS: [&str; 7] = [
    "access",
    "correction",
    "deletion",
    "deletion_unlawful",
    "consent_withdrawal",
    "account_cancellation",
    "inquiry",
];

/// The only reasons a request may be refused for (P26).
pub const REFUSAL_REASONS: [&str; 5] = [
    "legal_obligation",
    "legal_hold",
    "security",
    "rights_of_others",
    "technically_infeasible",
];

/// A request as staff and the subject see it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RightsRequest {
    /// Id.
    pub id: String,
    /// Whose.
    pub subject: String,
    /// One of [`REQUEST_KINDS`].
    pub kind: String,
    /// `received`, `verified`, `in_progress`, `completed` or `refused`.
    pub state: String,
    /// For consent withdrawals, the target; for a deletion of some categories only,
    /// `categories:<name>,...` (in the policy's order).
    pub target: String,
    /// When received.
    pub received_at: String,
    /// When it must be answered by.
    pub due_at: String,
    /// Due, Unix ms.
    pub due_ms: i64,
    /// Open and past its deadline (P32).
    pub overdue: bool,
    /// How identity was verified (P25).
    pub verification: String,
    /// What was done, or why it was refused; null while the request is open.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub outcome: Option<serde_json::Value>,
    /// Where it stands in each of the provider's databases (its erasure) and external
    /// systems (asked by webhook, for access or erasure) (`docs/datasets.md`); given by
    /// `GET /v1/requests/{request}` and when a completion waits on them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub systems: Vec<crate::datasets::SystemState>,
}

/// One step a request took (its history).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RequestStep {
    /// The state it entered: `received`, `verified`, `in_progress`, `completed` or `refused`.
    pub state: String,
    /// When.
    pub at: String,
    /// When, Unix ms.
    pub at_ms: i64,
    /// Who moved it: `staff:<name>`, `service:<name>`, `subject` or `system`; empty for a
    /// step taken before steps were recorded, known only from the request's own times.
    pub actor: String,
}

/// What completing a request produced.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct Completion {
    /// The request: completed, or in progress while its erasure waits on the provider's
    /// databases, or its erasure or access on an external system's answer (`systems` says
    /// where each stands).
    pub request: RightsRequest,
    /// For access requests, the export (P23).
    pub export: Option<Export>,
    /// For deletions that erased the subject, the certificate (P28, P33); none while the
    /// erasure waits.
    pub certificate: Option<SignedDocument>,
}

/// The longest note staff may write on a request, in bytes.
pub const MAX_NOTE: usize = 2_000;

/// How staff close a request ([`Vault::complete_request`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Closing<'a> {
    /// A note to the subject (how the answer was sent, say); sealed under their key.
    pub note: &'a str,
    /// Why, where the caller's role must state it (P21).
    pub justification: Option<&'a str>,
    /// For a correction request: (category, new value) pairs.
    pub corrections: &'a [(&'a str, &'a str)],
}

/// What an act contributes to the unit of work that moves its request: changes and their
/// audit entries, committed with the request's new state or not at all.
#[derive(Default)]
struct Act {
    ops: Vec<Op>,
    audit: Vec<steward_audit::Draft>,
    /// The act erases the subject: no one is left to write to.
    erases: bool,
}

/// The fields an event sets besides the state.
#[derive(Default)]
struct Fields {
    verification: Option<String>,
    outcome: Option<String>,
}

/// The error a unit of work aborts with when the request refuses to move; the domain error is
/// kept beside it and returned instead.
fn aborted() -> StoreError {
    StoreError::Backend("the unit of work was abandoned".into())
}

/// The step `row` just took: into its state, at its last change, by `actor`.
fn step(row: &RequestRow, actor: &Actor) -> steward_store::RequestStepRow {
    steward_store::RequestStepRow {
        subject: row.subject,
        request: row.id.clone(),
        state: row.state,
        at_ms: row.updated_ms,
        actor: actor.id.clone(),
    }
}

impl Vault {
    /// A request as callers see it. A stored outcome that is not JSON is damage, not "none".
    pub(crate) fn request_view(&self, r: &RequestRow) -> Result<RightsRequest, Error> {
        let now = self.clock.now_ms();
        let outcome = if r.outcome.is_empty() {
            None
        } else {
            let mut o: serde_json::Value = serde_json::from_str(&r.outcome).map_err(|_| {
                Error::Store(StoreError::Corrupt(
                    "a request's outcome is not JSON".into(),
                ))
            })?;
            // The note, sealed under the subject's key, opened; gone once they are erased.
            if let Some(map) = o.as_object_mut()
                && let Some(stored) = map.remove("note")
            {
                let stored = stored.as_str().ok_or(Error::Integrity)?;
                if let Some(note) =
                    self.open_text(SubjectId(r.subject), "request-note", &r.id, stored)?
                {
                    map.insert("note".into(), json!(note));
                }
            }
            Some(o)
        };
        Ok(RightsRequest {
            id: r.id.clone(),
            subject: SubjectId(r.subject).to_string(),
            kind: r.kind.clone(),
            state: r.state.as_str().to_string(),
            target: r.target.clone(),
            received_at: rfc3339(r.received_ms),
            due_at: rfc3339(r.due_ms),
            due_ms: r.due_ms,
            overdue: r.state.is_open() && r.due_ms < now,
            verification: r.verification.clone(),
            outcome,
            systems: Vec::new(),
        })
    }

    /// Adds a request's note, sealed under its subject's key, to its outcome (nothing for
    /// an empty note).
    fn seal_note(
        &self,
        outcome: &mut serde_json::Map<String, serde_json::Value>,
        row: &RequestRow,
        note: &str,
    ) -> Result<(), Error> {
        if note.len() > MAX_NOTE {
            return Err(Error::Invalid(format!(
                "a note is at most {MAX_NOTE} bytes"
            )));
        }
        if !note.is_empty() {
            let sealed = self.seal_text(SubjectId(row.subject), "request-note", &row.id, note)?;
            outcome.insert("note".into(), json!(sealed));
        }
        Ok(())
    }

    /// Records a new request (state `received`).
    fn save_new_request(&self, actor: &Actor, row: RequestRow) -> Result<RightsRequest, Error> {
        let view = self.request_view(&row)?;
        let detail = json!({ "request": row.id, "kind": row.kind, "state": row.state.as_str() });
        let mut ops = vec![
            Op::PutRequest(row.clone()),
            Op::RequestStep(step(&row, actor)),
        ];
        Vault::enqueue(
            &mut ops,
            self.request_messages(&self.cached_endpoints()?, "request.received", &row, true)?,
        );
        self.store.commit(
            ops,
            vec![self.act(actor, "request.open", Some(SubjectId(row.subject)), detail)],
        )?;
        Ok(view)
    }

    /// Moves request `id` by `event`, in one unit of work with `act`: the request is read and
    /// its state checked inside the unit's transaction, then the act's changes, the new state
    /// and the `request.<event>` entry (with `detail`) commit together, or nothing does. So a
    /// crash cannot leave a completed act on an open request, and two servers on one store
    /// cannot both move one request: the second finds it moved. The act's entries come first,
    /// so the unit's first entry is the act's own. Returns the request and the entries.
    fn transition(
        &self,
        actor: &Actor,
        id: &str,
        event: RequestEvent,
        act: Act,
        fields: Fields,
        detail: serde_json::Value,
    ) -> Result<(RightsRequest, Vec<steward_audit::Entry>), Error> {
        let action = match event {
            RequestEvent::Verify => "request.verify",
            RequestEvent::Start => "request.start",
            RequestEvent::Complete => "request.complete",
            RequestEvent::Refuse => "request.refuse",
        };
        let now = self.clock.now_ms();
        // Read before the unit: it must not call the store while it holds the transaction.
        let endpoints = self.cached_endpoints()?;
        let mut refused: Option<Error> = None;
        let mut moved: Option<RequestRow> = None;
        let committed = self.store.read_commit(&mut |reader| {
            let Some(mut row) = reader.request(id)? else {
                refused = Some(Error::NotFound(crate::Missing::Request));
                return Err(aborted());
            };
            let Some(next) = row.state.on(event) else {
                refused = Some(Error::RequestState {
                    state: row.state,
                    event,
                });
                return Err(aborted());
            };
            row.state = next;
            row.updated_ms = now;
            if let Some(v) = &fields.verification {
                row.verification = v.clone();
            }
            if let Some(o) = &fields.outcome {
                row.outcome = o.clone();
            }
            let mut detail = detail.clone();
            if let Some(map) = detail.as_object_mut() {
                map.insert("request".into(), json!(row.id));
                map.insert("kind".into(), json!(row.kind));
                map.insert("state".into(), json!(next.as_str()));
            }
            let mut ops = act.ops.clone();
            ops.push(Op::PutRequest(row.clone()));
            ops.push(Op::RequestStep(step(&row, actor)));
            let event = match event {
                RequestEvent::Verify => Some("request.verified"),
                RequestEvent::Start => None,
                RequestEvent::Complete => Some("request.completed"),
                RequestEvent::Refuse => Some("request.refused"),
            };
            if let Some(event) = event {
                let messages = self
                    .request_messages(&endpoints, event, &row, !act.erases)
                    .map_err(|e| match e {
                        Error::Store(s) => s,
                        _ => StoreError::Backend("an outbox message could not be made".into()),
                    })?;
                Vault::enqueue(&mut ops, messages);
            }
            let mut audit = act.audit.clone();
            audit.push(self.act(actor, action, Some(SubjectId(row.subject)), detail));
            moved = Some(row);
            Ok((ops, audit))
        });
        if let Some(e) = refused {
            return Err(e);
        }
        let entries = committed?;
        let row = moved.ok_or(Error::Internal("a request moved without its row"))?;
        Ok((self.request_view(&row)?, entries))
    }

    pub(crate) fn open_request_row(&self, actor: &Actor, id: &str) -> Result<RequestRow, Error> {
        self.permit(actor, Capability::RequestsManage, None)?;
        self.store
            .request(id)?
            .ok_or(Error::NotFound(crate::Missing::Request))
    }

    /// Takes in a request. Its deadline comes from the policy: `deadlines.inquiry_days` for
    /// inquiries, `deadlines.request_days` for the rest. An inquiry's text is sealed under the
    /// subject's key, so erasure takes it too.
    pub fn open_request(
        &self,
        actor: &Actor,
        subject: SubjectId,
        kind: &str,
        target: Option<&str>,
        text: Option<&str>,
    ) -> Result<RightsRequest, Error> {
        if actor.role != steward_policy::RoleId::SUBJECT {
            self.permit(actor, Capability::RequestsManage, Some(subject))?;
        }
        if !REQUEST_KINDS.contains(&kind) {
            return Err(Error::Invalid(format!(
                "a request's kind is one of: {}",
                REQUEST_KINDS.join(", ")
            )));
        }
        let target = match (kind, target) {
            ("consent_withdrawal", Some(t)) => {
                self.consent_target(t)?;
                t.to_string()
            }
            ("consent_withdrawal", None) => {
                return Err(Error::Invalid(
                    "a consent withdrawal names its target (`purpose:<name>`, ...)".into(),
                ));
            }
            ("deletion" | "deletion_unlawful", Some(t)) => self.deletion_target(t)?,
            _ => String::new(),
        };
        if text.is_some_and(|t| t.len() > 20_000) {
            return Err(Error::Invalid(
                "a request's text is at most 20,000 bytes".into(),
            ));
        }
        if let Err(e) = self
            .subject_row(&subject.0)?
            .ok_or(Error::SubjectNotFound)
            .and_then(|s| {
                if matches!(
                    s.state,
                    steward_store::SubjectState::Active | steward_store::SubjectState::Closed
                ) {
                    Ok(())
                } else {
                    Err(Error::SubjectErased)
                }
            })
        {
            return Err(self.refuse(actor, "request.open", Some(subject), "", String::new(), e));
        }
        let now = self.clock.now_ms();
        let days = if kind == "inquiry" {
            self.policy.deadlines.inquiry_days
        } else {
            self.policy.deadlines.request_days
        };
        let id = self.new_id("req")?;
        let sealed_text = match text {
            Some(t) if !t.is_empty() => {
                let key = self.data_key(subject)?;
                key.seal(
                    &self.nonces,
                    &aad(&subject.0, "request", crate::notes::id_tag(&id)),
                    t.as_bytes(),
                )?
            }
            _ => Vec::new(),
        };
        let row = RequestRow {
            id,
            subject: subject.0,
            kind: kind.into(),
            state: RequestState::Received,
            target,
            received_ms: now,
            due_ms: now.saturating_add(i64::from(days) * DAY_MS),
            updated_ms: now,
            verification: String::new(),
            outcome: String::new(),
            sealed_text,
        };
        self.save_new_request(actor, row)
    }

    /// Records that the requester's identity was verified (P25): `otp` (a one-time code to a
    /// verified channel), `session` (a signed-in session) or `documents` (checked by staff).
    /// An access request's external systems are asked then (`docs/datasets.md`).
    pub fn verify_request(
        &self,
        actor: &Actor,
        id: &str,
        method: &str,
    ) -> Result<RightsRequest, Error> {
        self.open_request_row(actor, id)?;
        self.mark_verified(actor, id, method)
    }

    /// [`Vault::verify_request`] once permission is settled.
    pub(crate) fn mark_verified(
        &self,
        actor: &Actor,
        id: &str,
        method: &str,
    ) -> Result<RightsRequest, Error> {
        if !["otp", "session", "documents"].contains(&method) {
            return Err(Error::Invalid(
                "identity is verified by `otp`, `session` or `documents`".into(),
            ));
        }
        let fields = Fields {
            verification: Some(method.into()),
            outcome: None,
        };
        let (request, _) = self.transition(
            actor,
            id,
            RequestEvent::Verify,
            Act::default(),
            fields,
            json!({ "method": method }),
        )?;
        // An access request's external systems are asked at once: their answers are what
        // its completion waits for. Asking again at completion covers a failure here.
        if request.kind == "access"
            && self.has_external_systems()
            && let Some(row) = self.store.request(id)?
            && let Err(e) = self.ask_externals(actor, &row)
        {
            tracing::warn!(request = %id, code = e.code().as_str(), error = %e, "the external systems could not be asked yet; completing the request asks them");
        }
        Ok(request)
    }

    /// Marks a verified request as being worked on.
    pub fn start_request(&self, actor: &Actor, id: &str) -> Result<RightsRequest, Error> {
        self.open_request_row(actor, id)?;
        self.transition(
            actor,
            id,
            RequestEvent::Start,
            Act::default(),
            Fields::default(),
            json!({}),
        )
        .map(|(r, _)| r)
    }

    /// Refuses a request, in whole, for a reason from the fixed list (P26); the subject is
    /// told the reason. The note, if any, is sealed under the subject's key ([`crate::notes`]):
    /// the subject and staff read it with the request; the log never holds it.
    pub fn refuse_request(
        &self,
        actor: &Actor,
        id: &str,
        reason: &str,
        note: &str,
    ) -> Result<RightsRequest, Error> {
        let row = self.open_request_row(actor, id)?;
        if !REFUSAL_REASONS.contains(&reason) {
            return Err(Error::Invalid(format!(
                "a refusal's reason is one of: {}",
                REFUSAL_REASONS.join(", ")
            )));
        }
        let mut outcome = serde_json::Map::new();
        outcome.insert("refused".into(), json!(reason));
        self.seal_note(&mut outcome, &row, note)?;
        let fields = Fields {
            verification: None,
            outcome: Some(serde_json::Value::Object(outcome).to_string()),
        };
        self.transition(
            actor,
            id,
            RequestEvent::Refuse,
            Act::default(),
            fields,
            json!({ "reason": reason }),
        )
        .map(|(r, _)| r)
    }

    /// Carries a verified request out and completes it: access exports; deletion erases (or,
    /// under a legal hold, deletes what is not held and refuses the rest in part); consent
    /// withdrawal withdraws; cancellation closes the account and schedules erasure;
    /// correction replaces the values `closing.corrections` names (each replaces every value
    /// the subject has of its category — reads and exports return only the new one, the old
    /// records and their lookup entries are deleted in the same unit of work, and the act is
    /// audited as `pi.correct`, P24); inquiries are answered by staff and closed with a note.
    /// The act and the request's completion are one unit of work ([`Vault::transition`]).
    /// Completing acts on PI, so under a role that must state why, it needs a justification
    /// (P21), kept by the `request.complete` entry as a keyed digest and sealed.
    pub fn complete_request(
        &self,
        actor: &Actor,
        id: &str,
        closing: &Closing<'_>,
    ) -> Result<Completion, Error> {
        let row = self.open_request_row(actor, id)?;
        self.complete_row(actor, row, closing)
    }

    /// [`Vault::complete_request`] once permission is settled.
    pub(crate) fn complete_row(
        &self,
        actor: &Actor,
        row: RequestRow,
        closing: &Closing<'_>,
    ) -> Result<Completion, Error> {
        let Closing {
            note,
            justification,
            corrections,
        } = *closing;
        let id = row.id.as_str();
        let subject = SubjectId(row.subject);
        if !corrections.is_empty() && row.kind != "correction" {
            return Err(Error::Invalid(
                "corrected values are taken only by a `correction` request".into(),
            ));
        }
        // Refused early, before any act is prepared; checked again inside the unit.
        if row.state.on(RequestEvent::Complete).is_none() {
            return Err(Error::RequestState {
                state: row.state,
                event: RequestEvent::Complete,
            });
        }
        self.check_justification(actor, "request.complete", subject, justification)?;
        // The provider's other databases first (issue 16): the request completes once each is
        // done or given up; until then it is in progress, and the datasets worker carries on.
        let mut systems = None;
        if matches!(row.kind.as_str(), "deletion" | "deletion_unlawful")
            && self.datasets().is_some()
        {
            // Held categories, and for a deletion of some categories every other one, are
            // kept there too.
            if let Some(held) = self.kept_in_systems(&row)? {
                match self.reach_erasure(actor, &row, &held)? {
                    Some(done) => systems = Some(done),
                    None => return self.waits_on_systems(actor, &row),
                }
            }
        }
        // An access request waits for every external system's answer (or its deadline).
        let mut answered = Vec::new();
        if row.kind == "access" && self.has_external_systems() {
            answered = self.ask_externals(actor, &row)?;
            answered.retain(|s| self.external_system(&s.system).is_ok());
            if !answered.iter().all(|s| crate::datasets::settled(&s.state)) {
                return self.waits_on_systems(actor, &row);
            }
        }
        let mut act = Act::default();
        let mut export = None;
        let mut erased = None;
        let mut withdrawn = None;
        let outcome = match row.kind.as_str() {
            "access" => {
                let (mut e, draft) = self.prepare_export(actor, subject, justification)?;
                let n = e.records.len();
                act.audit.push(draft);
                // The provider's other databases (issue 16): their reads audited in this unit.
                let reads = self.reach_access(actor, subject, &row.id, &mut e)?;
                act.audit.extend(reads);
                let mut systems: serde_json::Map<String, serde_json::Value> = e
                    .systems
                    .iter()
                    .map(|s| {
                        let rows: usize = s.collections.iter().map(|c| c.rows.len()).sum();
                        (s.system.clone(), json!({ "rows": rows }))
                    })
                    .collect();
                let (parts, lines) = self.external_exports(&answered)?;
                e.systems.extend(parts);
                systems.extend(lines);
                export = Some(e);
                if systems.is_empty() {
                    json!({ "exported_records": n })
                } else {
                    json!({ "exported_records": n, "systems": systems })
                }
            }
            "deletion" | "deletion_unlawful" if !row.target.is_empty() => {
                // Some categories only: their values go, the subject stays (P24), but for what
                // a legal hold keeps.
                let chosen = deletion_categories(&row.target);
                let held = match self.held(subject)? {
                    Held::Nothing => Vec::new(),
                    Held::Categories(h) => h,
                    Held::Everything => chosen.clone(),
                };
                let kept: Vec<&String> = chosen.iter().filter(|c| held.contains(c)).collect();
                let n = self.delete_unit(actor, subject, &row.id, &mut act, &|c| {
                    chosen.iter().any(|x| x == c) && !held.iter().any(|h| h == c)
                })?;
                if kept.is_empty() {
                    json!({ "erased": false, "deleted_records": n, "categories": chosen })
                } else {
                    json!({ "erased": false, "deleted_records": n, "categories": chosen, "refused_in_part": "legal_hold", "held": kept })
                }
            }
            "deletion" | "deletion_unlawful" => match self.held(subject)? {
                Held::Nothing => {
                    self.erase_linked(subject)?;
                    let reason = format!("rights request {}", row.id);
                    let (ops, draft) =
                        self.erasure_unit(Some(actor), subject, Why::Steward(&reason));
                    act.ops = ops;
                    act.audit.push(draft);
                    act.erases = true;
                    erased = Some(reason);
                    json!({ "erased": true })
                }
                Held::Everything => {
                    json!({ "erased": false, "refused_in_part": "legal_hold", "held": "everything" })
                }
                Held::Categories(held) => {
                    let n = self.delete_unit(actor, subject, &row.id, &mut act, &|c| {
                        !held.iter().any(|h| h == c)
                    })?;
                    json!({ "erased": false, "deleted_records": n, "refused_in_part": "legal_hold", "held": held })
                }
            },
            "consent_withdrawal" => {
                let target = self.consent_target(&row.target)?;
                let change = crate::ConsentChange {
                    actor,
                    subject,
                    target,
                    granted: false,
                    separate: false,
                    channel: "request",
                    gpc: false,
                    action: None,
                };
                let state = self.active_subject(subject);
                let (consent, draft) = self.consent_unit(&change, state)?;
                act.ops.push(Op::RecordConsent(consent.clone()));
                Vault::enqueue(&mut act.ops, self.consent_messages(&consent)?);
                act.audit.push(draft);
                withdrawn = Some(consent);
                json!({ "withdrawn": row.target })
            }
            "account_cancellation" => {
                let (op, draft, erase_by) = self.close_unit(actor, subject)?;
                act.ops.push(op);
                act.audit.push(draft);
                json!({ "closed": true, "erase_by": rfc3339(erase_by) })
            }
            "correction" if !corrections.is_empty() => {
                // Checked and prepared first; then the provider's databases, found by the
                // values being corrected (not yet replaced: the unit commits below).
                let replaced =
                    self.correction_unit(actor, subject, &row.id, corrections, &mut act)?;
                let (drafts, systems) =
                    self.reach_correction(actor, subject, &row.id, corrections)?;
                act.audit.extend(drafts);
                if systems.as_object().is_some_and(|m| m.is_empty()) {
                    json!({ "corrected": replaced })
                } else {
                    json!({ "corrected": replaced, "systems": systems })
                }
            }
            _ => json!({ "answered": true }),
        };
        let mut outcome = outcome;
        if let Some(map) = outcome.as_object_mut() {
            self.seal_note(map, &row, note)?;
            if let Some(systems) = systems {
                map.insert("systems".into(), systems);
            }
        }
        let fields = Fields {
            verification: None,
            outcome: Some(outcome.to_string()),
        };
        let mut detail = serde_json::Map::new();
        self.note_justification(&mut detail, subject, "request.complete", justification)?;
        let (mut request, entries) = self.transition(
            actor,
            id,
            RequestEvent::Complete,
            act,
            fields,
            serde_json::Value::Object(detail),
        )?;
        // What follows the commit: the act's own entry is the unit's first.
        let first = entries.first().ok_or(Error::Internal("no audit entry"))?;
        let certificate = match erased {
            Some(reason) => Some(self.finish_erasure(
                subject,
                Why::Steward(&reason),
                first,
                request.outcome.as_ref().and_then(|o| o.get("systems")),
            )?),
            None => None,
        };
        if let Some(consent) = withdrawn {
            let receipt = self.consent_receipt(subject, &consent, first);
            if let Some(map) = request.outcome.as_mut().and_then(|o| o.as_object_mut()) {
                map.insert("receipt".into(), json!(receipt));
            }
        }
        Ok(Completion {
            request,
            export,
            certificate,
        })
    }

    /// The ops and audit entry that replace a subject's values of each corrected category
    /// with the new value. Returns, per category, how many values were replaced.
    fn correction_unit(
        &self,
        actor: &Actor,
        subject: SubjectId,
        request: &str,
        corrections: &[(&str, &str)],
        act: &mut Act,
    ) -> Result<serde_json::Value, Error> {
        let held = self.store.records(&subject.0)?;
        let mut next_id = self.store.next_record_ids(corrections.len())?;
        let now = self.clock.now_ms();
        let (mut records, mut index, mut doomed) = (Vec::new(), Vec::new(), Vec::new());
        let mut replaced = serde_json::Map::new();
        for (category, value) in corrections {
            if self.policy.category_id(category).is_none() {
                return Err(Error::Unknown {
                    kind: crate::NameKind::Category,
                });
            }
            let old: Vec<&steward_store::RecordRow> =
                held.iter().filter(|r| r.category == *category).collect();
            // The newest value's feature collected it; the corrected value stands in its place.
            let Some(newest) = old.iter().max_by_key(|r| (r.collected_ms, r.id)) else {
                return Err(Error::Invalid(format!(
                    "the subject has no `{category}` value to correct"
                )));
            };
            let values = [(*category, *value)];
            let req = crate::vault::Collect {
                subject,
                feature: &newest.feature,
                values: &values,
                source: crate::vault::Source::Subject,
            };
            if value.len() > crate::vault::MAX_VALUE_BYTES {
                return Err(Error::Invalid(format!(
                    "a value of `{category}` is longer than {} bytes",
                    crate::vault::MAX_VALUE_BYTES
                )));
            }
            self.check_identities(&req, self.store.as_ref(), &mut Vec::new())?;
            self.seal_collection(&req, &mut next_id, now, &mut records, &mut index)?;
            doomed.extend(old.iter().map(|r| steward_store::RecordKey {
                subject: subject.0,
                category: r.category.clone(),
                id: r.id,
            }));
            replaced.insert((*category).to_string(), json!(old.len()));
        }
        let categories: Vec<&str> = corrections.iter().map(|(c, _)| *c).collect();
        let mut draft = self.act(
            actor,
            "pi.correct",
            Some(subject),
            json!({ "request": request, "replaced": replaced, "records": records.iter().map(|r| r.id).collect::<Vec<_>>() }),
        );
        draft.categories = categories.join(",");
        act.ops.push(Op::InsertRecords(records));
        if !index.is_empty() {
            act.ops.push(Op::InsertIndex(index));
        }
        act.ops.push(Op::DeleteRecords(doomed));
        act.audit.push(draft);
        Ok(serde_json::Value::Object(replaced))
    }

    /// One request, with where it stands in the provider's databases.
    pub fn request(&self, actor: &Actor, id: &str) -> Result<RightsRequest, Error> {
        let row = self.open_request_row(actor, id)?;
        let mut view = self.request_view(&row)?;
        view.systems = self.system_states(&row)?;
        Ok(view)
    }

    /// A request whose erasure waits on the provider's databases, or whose access waits on
    /// an external system's answer: in progress (started if it was only verified), with where
    /// each system stands.
    fn waits_on_systems(&self, actor: &Actor, row: &RequestRow) -> Result<Completion, Error> {
        let mut request = if row.state == RequestState::Verified {
            self.transition(
                actor,
                &row.id,
                RequestEvent::Start,
                Act::default(),
                Fields::default(),
                json!({ "waiting_on": "datasets" }),
            )?
            .0
        } else {
            self.request_view(row)?
        };
        request.systems = self.system_states(row)?;
        Ok(Completion {
            request,
            export: None,
            certificate: None,
        })
    }

    /// The steps request `id` took, oldest first: each state it entered, when and by whom. A
    /// request opened or moved before steps were recorded shows its received time and its
    /// last change, with no actor.
    pub fn request_steps(&self, actor: &Actor, id: &str) -> Result<Vec<RequestStep>, Error> {
        let row = self.open_request_row(actor, id)?;
        let mut steps = self.store.request_steps(&row.subject, &row.id)?;
        // Steps taken in one millisecond, in the order the lifecycle takes them.
        steps.sort_by_key(|s| {
            let rank = RequestState::ALL.iter().position(|x| *x == s.state);
            (s.at_ms, rank)
        });
        let known =
            |steps: &[steward_store::RequestStepRow], state| steps.iter().any(|s| s.state == state);
        if !known(&steps, RequestState::Received) {
            steps.insert(
                0,
                steward_store::RequestStepRow {
                    subject: row.subject,
                    request: row.id.clone(),
                    state: RequestState::Received,
                    at_ms: row.received_ms,
                    actor: String::new(),
                },
            );
        }
        if !known(&steps, row.state) {
            steps.push(steward_store::RequestStepRow {
                subject: row.subject,
                request: row.id.clone(),
                state: row.state,
                at_ms: row.updated_ms,
                actor: String::new(),
            });
        }
        Ok(steps
            .into_iter()
            .map(|s| RequestStep {
                state: s.state.as_str().into(),
                at: rfc3339(s.at_ms),
                at_ms: s.at_ms,
                actor: s.actor,
            })
            .collect())
    }

    /// The text a subject sent with a request (an inquiry), for staff to answer.
    pub fn request_text(&self, actor: &Actor, id: &str) -> Result<String, Error> {
        let row = self.open_request_row(actor, id)?;
        self.sealed_request_text(&row)
    }

    /// A request's text for staff to answer it (P31): under a role that must state why, only
    /// with a justification. Audited as `request.read_text`: the request's id and the
    /// justification as a keyed digest and sealed under the subject's key, never the text or
    /// the justification as typed.
    pub fn read_request_text(
        &self,
        actor: &Actor,
        id: &str,
        justification: Option<&str>,
    ) -> Result<String, Error> {
        let row = self.open_request_row(actor, id)?;
        let subject = SubjectId(row.subject);
        self.check_justification(actor, "request.read_text", subject, justification)?;
        let text = self.sealed_request_text(&row)?;
        let mut detail = serde_json::Map::new();
        detail.insert("request".into(), json!(row.id));
        self.note_justification(&mut detail, subject, "request.read_text", justification)?;
        self.store.commit(
            vec![],
            vec![self.act(
                actor,
                "request.read_text",
                Some(subject),
                serde_json::Value::Object(detail),
            )],
        )?;
        Ok(text)
    }

    /// The subject's own requests and inquiries, oldest first, with state, deadline and any
    /// refusal reason (P23, P26, P31).
    pub fn self_requests(&self, subject: SubjectId) -> Result<Vec<RightsRequest>, Error> {
        self.store
            .requests_of(&subject.0)?
            .iter()
            .map(|r| self.request_view(r))
            .collect()
    }

    /// A request's text, opened under its subject's key; empty when it has none.
    pub(crate) fn sealed_request_text(&self, row: &RequestRow) -> Result<String, Error> {
        if row.sealed_text.is_empty() {
            return Ok(String::new());
        }
        let subject = SubjectId(row.subject);
        let key = self.data_key(subject)?;
        let plain = key.open(
            &aad(&subject.0, "request", crate::notes::id_tag(&row.id)),
            &row.sealed_text,
        )?;
        String::from_utf8(plain).map_err(|_| Error::Integrity)
    }

    /// A deletion's unit of work, for the categories `doomed` picks: the subject's values of
    /// them deleted (their lookup entries with them) and one `pi.delete` entry with the count
    /// and the categories deleted. How many values go.
    fn delete_unit(
        &self,
        actor: &Actor,
        subject: SubjectId,
        request: &str,
        act: &mut Act,
        doomed: &dyn Fn(&str) -> bool,
    ) -> Result<usize, Error> {
        let keys: Vec<RecordKey> = self
            .store
            .records(&subject.0)?
            .into_iter()
            .filter(|r| doomed(&r.category))
            .map(|r| RecordKey {
                subject: subject.0,
                category: r.category,
                id: r.id,
            })
            .collect();
        let n = keys.len();
        // In the policy's order.
        let categories: Vec<&str> = self
            .policy
            .categories
            .iter()
            .filter(|c| keys.iter().any(|k| k.category == c.name))
            .map(|c| c.name.as_str())
            .collect();
        let mut draft = self.act(
            actor,
            "pi.delete",
            Some(subject),
            json!({ "records": n, "request": request }),
        );
        draft.categories = categories.join(",");
        act.ops.push(Op::DeleteRecords(keys));
        act.audit.push(draft);
        Ok(n)
    }

    /// A deletion of some categories only, as its request keeps it: `categories:<a>,<b>`, each
    /// a category of the policy, in the policy's order, each once.
    fn deletion_target(&self, target: &str) -> Result<String, Error> {
        let bad = || {
            Error::Invalid(
                "a deletion of some categories names them as `categories:<name>,<name>`".into(),
            )
        };
        let names = target.strip_prefix("categories:").ok_or_else(bad)?;
        let mut ids = Vec::new();
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let id = self.policy.category_id(name).ok_or(Error::Unknown {
                kind: crate::NameKind::Category,
            })?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Err(bad());
        }
        ids.sort_by_key(|id| id.index());
        let names: Vec<&str> = ids
            .iter()
            .map(|id| self.policy.category(*id).name.as_str())
            .collect();
        Ok(format!("categories:{}", names.join(",")))
    }

    /// Open requests and inquiries already past their deadline, the longest overdue first,
    /// apart from those merely due (P31, P32): what the privacy officer must answer for
    /// now. `kind` narrows them to one kind (`inquiry`, say).
    pub fn requests_overdue(
        &self,
        actor: &Actor,
        kind: Option<&str>,
    ) -> Result<Vec<RightsRequest>, Error> {
        self.permit(actor, Capability::RequestsManage, None)?;
        if let Some(k) = kind
            && !REQUEST_KINDS.contains(&k)
        {
            return Err(Error::Invalid(format!(
                "a request's kind is one of: {}",
                REQUEST_KINDS.join(", ")
            )));
        }
        let now = self.clock.now_ms();
        self.store
            .requests_due(now.saturating_sub(1))?
            .iter()
            .filter(|r| kind.is_none_or(|k| r.kind == k))
            .map(|r| self.request_view(r))
            .collect()
    }

    /// Open requests due within `within_ms` from now, overdue ones first (P32).
    pub fn requests_due(&self, actor: &Actor, within_ms: i64) -> Result<Vec<RightsRequest>, Error> {
        self.permit(actor, Capability::RequestsManage, None)?;
        let until = self.clock.now_ms().saturating_add(within_ms);
        self.store
            .requests_due(until)?
            .iter()
            .map(|r| self.request_view(r))
            .collect()
    }
}

/// The categories a deletion of some categories names (`categories:<a>,<b>`).
pub(crate) fn deletion_categories(target: &str) -> Vec<String> {
    target
        .strip_prefix("categories:")
        .unwrap_or("")
        .split(',')
        .filter(|n| !n.is_empty())
        .map(String::from)
        .collect()
}
