//! External systems (issue 16, `docs/datasets.md`, "External systems"): a dataset Steward
//! cannot query is asked by a signed webhook (`dataset.request`, through the outbox, to the
//! endpoint its connection names) to export or erase for the subject's identities, answers on
//! `POST /v1/datasets/{system}/answers` signed with the same endpoint's secret, and is
//! reminded every day until it answers or the request's deadline passes (it has then failed,
//! "no answer"). The outbox row holds no identity: they are added when the call is sent, and
//! that disclosure is audited (`message.sent`). What an access answer holds is sealed under the
//! subject's key until the request is completed.

use serde::Deserialize;
use serde_json::{Value as Json, json};
use steward_datasets::run::Identities;
use steward_datasets::{Dataset, Identity};
use steward_store::{Op, OutboxRow, RequestRow, RequestSystemRow};

use crate::clock::rfc3339;
use crate::datasets::{
    ExportCollection, ExportSystem, ExportSystemCategory, SystemState, carries_closure, settled,
    steward_actor,
};
use crate::error::{Error, Missing};
use crate::vault::{Actor, SubjectId, Vault};

/// How long Steward waits for an answer before it asks again.
pub const REMIND_EVERY_MS: i64 = 24 * 3_600_000;

/// How far an answer's `webhook-timestamp` may be from Steward's clock, seconds (Standard
/// Webhooks' tolerance).
pub const ANSWER_TOLERANCE_S: i64 = 300;

/// The event an external system is asked with.
pub const REQUEST_EVENT: &str = "dataset.request";

/// The Standard Webhooks headers of an answer.
#[derive(Clone, Debug, Default)]
pub struct Signed<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`: Unix seconds.
    pub timestamp: &'a str,
    /// `webhook-signature`: space-separated `v1,<base64>`.
    pub signature: &'a str,
}

/// An external system's answer (`POST /v1/datasets/{system}/answers`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    request: String,
    status: String,
    #[serde(default)]
    deleted: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    masked: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    collections: Vec<AnswerCollection>,
    #[serde(default)]
    categories: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct AnswerCollection {
    collection: String,
    rows: Vec<serde_json::Map<String, Json>>,
}

/// What is kept of an access answer until the request is completed (sealed).
#[derive(Debug, Deserialize, serde::Serialize)]
struct Answered {
    collections: Vec<AnswerCollection>,
    categories: std::collections::BTreeMap<String, u64>,
}

/// A name an answer may use for a table, a field or a failure: letters, digits, `_`, `.`,
/// `-`; 1–63 of them.
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Whether request `row` still waits for its systems: while it is open, and for a closed
/// account's erasure.
fn waits_on_systems(row: &RequestRow) -> bool {
    row.state.is_open() || carries_closure(row)
}

/// The largest access answer kept, bytes of JSON.
const MAX_ANSWER_BYTES: usize = 4 << 20;

impl Vault {
    /// The external systems declared.
    pub(crate) fn external_systems(&self) -> Vec<&Dataset> {
        self.datasets()
            .map(|f| {
                f.catalogue
                    .datasets
                    .iter()
                    .filter(|d| d.external.is_some())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// External system `system`: `system_not_found` when no external dataset has that key.
    pub(crate) fn external_system(&self, system: &str) -> Result<&Dataset, Error> {
        self.datasets()
            .and_then(|f| f.catalogue.dataset(system))
            .filter(|d| d.external.is_some())
            .ok_or(Error::NotFound(Missing::System))
    }

    /// Whether an external system is declared.
    pub(crate) fn has_external_systems(&self) -> bool {
        !self.external_systems().is_empty()
    }

    /// `dataset.request` to external system `system` about request `row` (`reminder`: 0 the
    /// first time): `None` when its endpoint is not registered or is disabled. The body holds
    /// ids and category names only; the identities are added when it is sent.
    fn external_message(
        &self,
        row: &RequestRow,
        system: &str,
        reminder: u32,
    ) -> Result<Option<OutboxRow>, Error> {
        let Some(endpoint) = self.datasets().and_then(|f| f.endpoint(system)) else {
            return Ok(None);
        };
        let endpoints = self.cached_endpoints()?;
        if !endpoints.iter().any(|e| e.id == endpoint && !e.disabled) {
            return Ok(None);
        }
        let access = row.kind == "access";
        let keep = if access {
            Vec::new()
        } else {
            self.kept_in_systems(row)?.unwrap_or_default()
        };
        let data = json!({
            "system": system,
            "request": row.id,
            "action": if access { "access" } else { "erasure" },
            "subject": self.pseudonym(SubjectId(row.subject)),
            "due_at": rfc3339(self.systems_deadline(row)),
            "keep": keep,
            "reminder": reminder,
            "answer": format!("/v1/datasets/{system}/answers"),
        });
        let body = json!({ "type": REQUEST_EVENT, "timestamp": rfc3339(self.clock.now_ms()), "data": data })
            .to_string();
        self.outbox_row("webhook", endpoint.to_string(), REQUEST_EVENT, body)
            .map(Some)
    }

    /// The categories an erasure under request `row` keeps in the provider's systems: those
    /// a legal hold keeps and, for a deletion of some categories, every other one. `None`
    /// when a hold keeps everything.
    pub(crate) fn kept_in_systems(&self, row: &RequestRow) -> Result<Option<Vec<String>>, Error> {
        let mut held = match self.held(SubjectId(row.subject))? {
            crate::holds::Held::Nothing => Vec::new(),
            crate::holds::Held::Categories(h) => h,
            crate::holds::Held::Everything => return Ok(None),
        };
        if row.kind.starts_with("deletion") && !row.target.is_empty() {
            let chosen = crate::requests::deletion_categories(&row.target);
            held.extend(
                self.policy
                    .categories
                    .iter()
                    .map(|c| c.name.clone())
                    .filter(|c| !chosen.contains(c)),
            );
        }
        Ok(Some(held))
    }

    /// Asks every external system not yet asked about request `row`, in one unit: an `asked`
    /// row and a `dataset.request` message each (`waiting`, tried again with backoff, where
    /// its endpoint is not registered or is disabled), audited as `dataset.ask`. Returns every
    /// system row of the request, databases' and external systems', as it now stands.
    pub(crate) fn ask_externals(
        &self,
        actor: &Actor,
        row: &RequestRow,
    ) -> Result<Vec<RequestSystemRow>, Error> {
        let mut rows = self.store.request_systems(&row.subject, &row.id)?;
        let externals = self.external_systems();
        let now = self.clock.now_ms();
        let mut ops = Vec::new();
        let mut audit = Vec::new();
        for d in externals {
            if rows.iter().any(|s| s.system == d.key) {
                continue;
            }
            let (r, op, draft) = self.ask_one(actor, row, &d.key, 0, now)?;
            ops.push(Op::PutRequestSystem(r.clone()));
            ops.extend(op);
            audit.push(draft);
            rows.push(r);
        }
        if !ops.is_empty() {
            self.store.commit(ops, audit)?;
        }
        Ok(rows)
    }

    /// The row, message and audit entry of asking `system` (again, for `attempts` > 0).
    fn ask_one(
        &self,
        actor: &Actor,
        row: &RequestRow,
        system: &str,
        attempts: u32,
        now: i64,
    ) -> Result<(RequestSystemRow, Option<Op>, steward_audit::Draft), Error> {
        let message = self.external_message(row, system, attempts)?;
        let asked = message.is_some();
        let mut r = RequestSystemRow {
            subject: row.subject,
            request: row.id.clone(),
            system: system.to_string(),
            state: if asked { "asked" } else { "waiting" }.into(),
            attempts: attempts + 1,
            next_ms: if asked {
                now.saturating_add(REMIND_EVERY_MS)
                    .min(self.systems_deadline(row).max(now))
            } else {
                now.saturating_add(crate::datasets::backoff_ms(attempts + 1))
            },
            reason: String::new(),
            sealed_plan: Vec::new(),
            result: String::new(),
            updated_ms: now,
        };
        let subject = Some(SubjectId(row.subject));
        let draft = if asked {
            self.act(
                actor,
                if attempts == 0 {
                    "dataset.ask"
                } else {
                    "dataset.remind"
                },
                subject,
                json!({ "request": row.id, "system": system, "asked": attempts + 1 }),
            )
        } else {
            r.reason = "its webhook endpoint is not registered or is disabled".into();
            self.act(
                actor,
                "dataset.retry",
                subject,
                json!({ "request": row.id, "system": system, "step": "ask", "attempts": attempts + 1, "reason": r.reason }),
            )
        };
        Ok((r, message.map(|m| Op::Enqueue(vec![m])), draft))
    }

    /// Chases the external systems of request `row` that are due: each still not answering
    /// is asked again (`dataset.remind`) — or, once the request's deadline has passed, given
    /// up (`failed`, "no answer by the request's deadline", `dataset.failed`); a request
    /// refused meanwhile waits for nothing more (`failed`, "the request was refused first").
    pub(crate) fn chase_externals(&self, actor: &Actor, row: &RequestRow) -> Result<(), Error> {
        let externals = self.external_systems();
        if externals.is_empty() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let mut ops = Vec::new();
        let mut audit = Vec::new();
        for s in self.store.request_systems(&row.subject, &row.id)? {
            if !externals.iter().any(|d| d.key == s.system)
                || !matches!(s.state.as_str(), "asked" | "waiting")
                || s.next_ms > now
            {
                continue;
            }
            // A request refused meanwhile (or otherwise closed) waits for nothing more.
            let closed = !waits_on_systems(row);
            if closed || now >= self.systems_deadline(row) {
                let mut r = s.clone();
                r.state = "failed".into();
                r.reason = if closed {
                    format!("the request was {} first", row.state.as_str())
                } else if s.state == "asked" {
                    "no answer by the request's deadline".into()
                } else {
                    format!("not asked by the request's deadline: {}", s.reason)
                };
                r.updated_ms = now;
                audit.push(self.act(
                    actor,
                    "dataset.failed",
                    Some(SubjectId(row.subject)),
                    json!({ "request": row.id, "system": s.system, "step": "answer", "attempts": s.attempts, "reason": r.reason }),
                ));
                ops.push(Op::PutRequestSystem(r));
                continue;
            }
            let (r, op, draft) = self.ask_one(actor, row, &s.system, s.attempts, now)?;
            ops.push(Op::PutRequestSystem(r));
            ops.extend(op);
            audit.push(draft);
        }
        if !ops.is_empty() {
            self.store.commit(ops, audit)?;
        }
        Ok(())
    }

    /// An external system's answer (`POST /v1/datasets/{system}/answers`), signed per
    /// Standard Webhooks with the secret of the endpoint it is asked through. Recorded once
    /// (`dataset.answer`, counts and categories, never a value); the same answer again is
    /// accepted and changes nothing, a different one is refused. A deletion whose systems have
    /// then all settled is completed at once.
    pub fn answer_external(
        &self,
        system: &str,
        signed: &Signed<'_>,
        body: &[u8],
    ) -> Result<SystemState, Error> {
        let dataset = self.external_system(system)?;
        let endpoint = self
            .datasets()
            .and_then(|f| f.endpoint(system))
            .ok_or(Error::NotFound(Missing::System))?;
        self.check_answer_signature(endpoint, signed, body)?;
        let answer: Answer = serde_json::from_slice(body).map_err(|e| {
            Error::Invalid(format!(
                "an answer is JSON: {{request, status, ...}} (docs/datasets.md), at line {} column {}",
                e.line(),
                e.column()
            ))
        })?;
        let row = self
            .store
            .request(&answer.request)?
            .ok_or(Error::NotFound(Missing::Request))?;
        let actor = Actor {
            id: format!("system:{}", dataset.key),
            role: steward_policy::RoleId::SYSTEM,
        };
        self.record_answer(&actor, dataset, row, &answer)
    }

    /// An external system's answer recorded by staff (`POST /v1/requests/{request}/answers`,
    /// `requests.manage`): one that came another way — by email, on a vendor's portal. The same
    /// body but `request` (from the path) and with `system`; recorded as the system's own
    /// would be, the `dataset.answer` entry naming the member of staff.
    pub fn record_system_answer(
        &self,
        actor: &Actor,
        request: &str,
        body: &serde_json::Value,
    ) -> Result<SystemState, Error> {
        let row = self.open_request_row(actor, request)?;
        let mut body = body.as_object().cloned().ok_or_else(|| {
            Error::Invalid("an answer is a JSON object: {system, status, ...}".into())
        })?;
        let system = body
            .remove("system")
            .and_then(|v| v.as_str().map(str::to_string))
            .ok_or_else(|| {
                Error::Invalid(
                    "an answer names its `system`: the external system's dataset key".into(),
                )
            })?;
        let dataset = self.external_system(&system)?;
        if body.contains_key("request") {
            return Err(Error::Invalid(
                "the request is the one in the path: an answer recorded by staff has no `request`"
                    .into(),
            ));
        }
        body.insert("request".into(), json!(row.id));
        let answer: Answer = serde_json::from_value(Json::Object(body)).map_err(|_| {
            Error::Invalid(
                "an answer is {system, status, ...}: see docs/datasets.md, External systems".into(),
            )
        })?;
        self.record_answer(actor, dataset, row, &answer)
    }

    /// Records `answer` from (or for) external system `dataset` on request `row` as `actor`:
    /// once; the same again changes nothing, a different one is refused. A deletion whose
    /// systems have then all settled is completed at once.
    fn record_answer(
        &self,
        actor: &Actor,
        dataset: &Dataset,
        row: RequestRow,
        answer: &Answer,
    ) -> Result<SystemState, Error> {
        let subject = SubjectId(row.subject);
        let current = self
            .store
            .request_systems(&row.subject, &row.id)?
            .into_iter()
            .find(|s| s.system == dataset.key)
            .ok_or_else(|| {
                Error::Conflict("this system was not asked about this request".into())
            })?;
        let (mut next, detail, sealed) = self.recorded_answer(dataset, &row, &current, answer)?;
        if !waits_on_systems(&row) && !settled(&current.state) {
            return Err(Error::Conflict(format!(
                "this request no longer waits for this system's answer: it was {}",
                row.state.as_str()
            )));
        }
        if current.state == "failed" && !current.reason.starts_with("answered:") {
            return Err(Error::Conflict(format!(
                "this request no longer waits for this system's answer: {}",
                current.reason
            )));
        }
        if settled(&current.state) {
            if current.state != next.state || current.result != next.result {
                return Err(Error::Conflict(
                    "this system has answered about this request already, differently".into(),
                ));
            }
        } else {
            if let Some(text) = sealed {
                next.sealed_plan = self
                    .seal_text(
                        subject,
                        "dataset-answer",
                        &format!("{}:{}", row.id, dataset.key),
                        &text,
                    )?
                    .into_bytes();
            }
            let draft = self.act(actor, "dataset.answer", Some(subject), detail);
            self.store
                .commit(vec![Op::PutRequestSystem(next.clone())], vec![draft])?;
        }
        // A deletion waiting on nothing more completes now. Should that fail, the error is
        // the caller's and the answer stands: the system's retry (the same answer) completes
        // it, as a later pass of the worker would if a database is still to do.
        if row.state.is_open() && row.kind.starts_with("deletion") {
            let all = self.store.request_systems(&row.subject, &row.id)?;
            if all.iter().all(|s| settled(&s.state)) {
                match self.complete_row(&steward_actor(), row.clone(), &crate::Closing::default()) {
                    Ok(_) | Err(Error::RequestState { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.system_states(&row)?
            .into_iter()
            .find(|s| s.system == dataset.key)
            .ok_or(Error::Internal("an answered system has no state"))
    }

    /// The row an answer leaves, its audit detail and, for an access answer, the text to
    /// seal (the rows found).
    fn recorded_answer(
        &self,
        dataset: &Dataset,
        row: &RequestRow,
        current: &RequestSystemRow,
        answer: &Answer,
    ) -> Result<(RequestSystemRow, Json, Option<String>), Error> {
        let access = row.kind == "access";
        let mut next = current.clone();
        next.updated_ms = self.clock.now_ms();
        next.reason.clear();
        let names_ok =
            |m: &std::collections::BTreeMap<String, u64>| m.keys().all(|k| plain_name(k));
        let mut sealed = None;
        let mut detail = serde_json::Map::new();
        detail.insert("request".into(), json!(row.id));
        detail.insert("system".into(), json!(dataset.key));
        detail.insert("status".into(), json!(answer.status));
        match answer.status.as_str() {
            "failed" => {
                let reason = answer.reason.as_deref().unwrap_or("");
                if !plain_name(reason) {
                    return Err(Error::Invalid(
                        "a failed answer gives a `reason`: a code of letters, digits and `_` (at most 63), never a value".into(),
                    ));
                }
                next.state = "failed".into();
                next.reason = format!("answered: {reason}");
                next.result = String::new();
                detail.insert("reason".into(), json!(reason));
            }
            "done" | "not_found" => {
                if answer.reason.is_some() {
                    return Err(Error::Invalid(
                        "only a failed answer gives a `reason`".into(),
                    ));
                }
                next.state = "done".into();
                if access {
                    if !answer.deleted.is_empty() || !answer.masked.is_empty() {
                        return Err(Error::Invalid(
                            "an access answer gives `collections` and `categories`, not `deleted` or `masked`".into(),
                        ));
                    }
                    let declared = &dataset
                        .external
                        .as_ref()
                        .map(|e| e.categories.clone())
                        .unwrap_or_default();
                    let mut categories = std::collections::BTreeMap::new();
                    for (c, n) in &answer.categories {
                        let name = self
                            .policy
                            .category_id(c)
                            .and_then(|id| self.policy.categories.get(id.index()))
                            .map(|c| c.name.clone())
                            .filter(|name| declared.iter().any(|(d, _)| d == name))
                            .ok_or_else(|| {
                                Error::Invalid(
                                    "an answer's `categories` are categories the system's dataset declares".into(),
                                )
                            })?;
                        categories.insert(name, *n);
                    }
                    let rows: usize = answer.collections.iter().map(|c| c.rows.len()).sum();
                    if answer.collections.iter().any(|c| {
                        !plain_name(&c.collection)
                            || c.rows.iter().any(|r| {
                                r.iter()
                                    .any(|(k, v)| !plain_name(k) || v.is_object() || v.is_array())
                            })
                    }) {
                        return Err(Error::Invalid(
                            "an answer's collections are {collection, rows}: rows of field names (letters, digits, `_`, `.`, `-`) to text, numbers, booleans or null".into(),
                        ));
                    }
                    if rows > 0 && categories.is_empty() {
                        return Err(Error::Invalid(
                            "an access answer with rows says how many values of each category they hold (`categories`)".into(),
                        ));
                    }
                    if answer.status == "not_found" && rows > 0 {
                        return Err(Error::Invalid("a `not_found` answer has no rows".into()));
                    }
                    let held = Answered {
                        collections: answer.collections.clone(),
                        categories: categories.clone(),
                    };
                    let text = serde_json::to_string(&held)
                        .map_err(|_| Error::Internal("an answer does not serialise"))?;
                    if text.len() > MAX_ANSWER_BYTES {
                        return Err(Error::Invalid("an access answer is at most 4 MiB".into()));
                    }
                    sealed = Some(text);
                    let per: serde_json::Map<String, Json> = answer
                        .collections
                        .iter()
                        .map(|c| (c.collection.clone(), json!(c.rows.len())))
                        .collect();
                    next.result = json!({ "rows": per, "categories": categories }).to_string();
                    detail.insert("rows".into(), json!(per));
                    detail.insert(
                        "categories".into(),
                        json!(categories.keys().collect::<Vec<_>>()),
                    );
                } else {
                    if !answer.collections.is_empty() || !answer.categories.is_empty() {
                        return Err(Error::Invalid(
                            "an erasure answer gives `deleted` and `masked` counts, not rows"
                                .into(),
                        ));
                    }
                    if !names_ok(&answer.deleted) || !names_ok(&answer.masked) {
                        return Err(Error::Invalid(
                            "`deleted` and `masked` count rows per table: table names of letters, digits, `_`, `.`, `-`".into(),
                        ));
                    }
                    next.result =
                        json!({ "deleted": answer.deleted, "masked": answer.masked }).to_string();
                    detail.insert("deleted".into(), json!(answer.deleted));
                    detail.insert("masked".into(), json!(answer.masked));
                }
            }
            _ => {
                return Err(Error::Invalid(
                    "an answer's `status` is `done`, `not_found` or `failed`".into(),
                ));
            }
        }
        Ok((next, Json::Object(detail), sealed))
    }

    /// Checks an answer's Standard Webhooks signature under endpoint `endpoint`'s secret, and
    /// that its timestamp is within [`ANSWER_TOLERANCE_S`] of the clock.
    fn check_answer_signature(
        &self,
        endpoint: &str,
        signed: &Signed<'_>,
        body: &[u8],
    ) -> Result<(), Error> {
        let endpoints = self.cached_endpoints()?;
        let e = endpoints
            .iter()
            .find(|e| e.id == endpoint && !e.disabled)
            .ok_or(Error::SignatureInvalid)?;
        let secret = self.endpoint_secret(e)?;
        let at: i64 = signed
            .timestamp
            .parse()
            .map_err(|_| Error::SignatureInvalid)?;
        if signed.id.is_empty()
            || signed.id.len() > 256
            || at.abs_diff(self.clock.now_ms() / 1000) > ANSWER_TOLERANCE_S.unsigned_abs()
        {
            return Err(Error::SignatureInvalid);
        }
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let mut message = Vec::with_capacity(body.len() + 64);
        message.extend_from_slice(signed.id.as_bytes());
        message.push(b'.');
        message.extend_from_slice(signed.timestamp.as_bytes());
        message.push(b'.');
        message.extend_from_slice(body);
        let ok = signed.signature.split(' ').any(|s| {
            s.strip_prefix("v1,")
                .and_then(|b| {
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b).ok()
                })
                .is_some_and(|tag| ring::hmac::verify(&key, &message, &tag).is_ok())
        });
        if ok {
            Ok(())
        } else {
            Err(Error::SignatureInvalid)
        }
    }

    /// A `dataset.request` call as it is sent: the stored body with the subject's identities
    /// the system is declared to take (`data.identities`, each a list of values), and the
    /// subject it discloses them about. `None` when the subject was erased or holds none.
    pub(crate) fn render_dataset_request(
        &self,
        m: &OutboxRow,
    ) -> Result<Option<(String, SubjectId)>, Error> {
        let mut payload: Json = serde_json::from_str(&m.payload)
            .map_err(|_| Error::Internal("an outbox payload is not JSON"))?;
        let text = |p: &str| {
            payload
                .pointer(p)
                .and_then(Json::as_str)
                .map(str::to_string)
                .ok_or(Error::Internal(
                    "a dataset request names no request or system",
                ))
        };
        let (request, system) = (text("/data/request")?, text("/data/system")?);
        let Some(row) = self.store.request(&request)? else {
            return Ok(None);
        };
        let subject = SubjectId(row.subject);
        let wanted: Vec<Identity> = self
            .external_system(&system)
            .ok()
            .and_then(|d| d.external.as_ref())
            .map(|e| e.identities.iter().map(|(i, _)| i.clone()).collect())
            .unwrap_or_default();
        let ids = match self.identity_values(subject, &wanted) {
            Ok(ids) => ids,
            Err(Error::KeyDestroyed | Error::SubjectErased | Error::SubjectNotFound) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if ids.values().all(Vec::is_empty) {
            return Ok(None);
        }
        let identities: serde_json::Map<String, Json> = ids
            .into_iter()
            .map(|(i, values)| (i.to_string(), json!(values)))
            .collect();
        if let Some(data) = payload.get_mut("data").and_then(Json::as_object_mut) {
            data.insert("identities".into(), Json::Object(identities));
        }
        Ok(Some((payload.to_string(), subject)))
    }

    /// The values of `wanted` identities Steward holds for `subject`: its id, and every value
    /// of each identity category.
    pub(crate) fn identity_values(
        &self,
        subject: SubjectId,
        wanted: &[Identity],
    ) -> Result<Identities, Error> {
        let categories: Vec<&str> = wanted
            .iter()
            .filter_map(|i| match i {
                Identity::Category(c) => Some(c.as_str()),
                Identity::SubjectId => None,
            })
            .collect();
        let rows = self
            .store
            .records(&subject.0)?
            .into_iter()
            .filter(|r| categories.contains(&r.category.as_str()))
            .collect();
        let values = self.open_rows(subject, rows)?;
        let mut ids = Identities::new();
        for i in wanted {
            let found = match i {
                Identity::SubjectId => vec![subject.to_string()],
                Identity::Category(c) => values
                    .iter()
                    .filter(|v| &v.category == c)
                    .map(|v| v.value.clone())
                    .collect(),
            };
            ids.insert(i.clone(), found);
        }
        Ok(ids)
    }

    /// The external systems' parts of a request's export, from the sealed answers in its
    /// system rows `rows` (a system that failed has none), and each one's line of the outcome.
    pub(crate) fn external_exports(
        &self,
        rows: &[RequestSystemRow],
    ) -> Result<(Vec<ExportSystem>, serde_json::Map<String, Json>), Error> {
        let mut parts = Vec::new();
        let mut lines = serde_json::Map::new();
        for d in self.external_systems() {
            let Some(s) = rows.iter().find(|s| s.system == d.key) else {
                continue;
            };
            if s.state != "done" {
                lines.insert(d.key.clone(), json!({ "failed": s.reason }));
                continue;
            }
            let held: Answered = self.open_system_row(s, "dataset-answer")?;
            let n: usize = held.collections.iter().map(|c| c.rows.len()).sum();
            lines.insert(d.key.clone(), json!({ "rows": n }));
            parts.push(ExportSystem {
                system: d.key.clone(),
                name: d.name.clone(),
                collections: held
                    .collections
                    .into_iter()
                    .map(|c| ExportCollection {
                        collection: c.collection,
                        rows: c.rows,
                    })
                    .collect(),
                categories: held
                    .categories
                    .into_iter()
                    .map(|(category, values)| ExportSystemCategory {
                        purposes: self.purposes_reading(&category),
                        category,
                        values: usize::try_from(values).unwrap_or(usize::MAX),
                    })
                    .collect(),
            });
        }
        Ok((parts, lines))
    }
}
