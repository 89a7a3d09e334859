//! The HTTP API: thin handlers over the vault. Each authenticates its caller, runs one vault
//! operation on the blocking pool, and turns the result into JSON. No rule of the domain
//! lives here.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use steward_core::evidence::Checkpoint;
use steward_core::{Actor, Collect, Error, SignedDocument, Source, SubjectId, Value, Vault};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, Caller, PathId, Query, SessionSubject};
use crate::openapi::ErrorResponses;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The vault.
    pub vault: Arc<Vault>,
    /// Where sign-in codes are mailed; self-service sign-in is off without one.
    pub mailer: Option<Arc<dyn steward_core::Mailer>>,
    /// Group commit for purpose-checked reads.
    pub reads: crate::batch::Batcher<crate::batch::ReadJob>,
    /// Group commit for consent changes.
    pub consents: crate::batch::Batcher<crate::batch::ConsentJob>,
    /// Group commit for visitors' cookie choices.
    pub visitors: crate::batch::Batcher<crate::batch::VisitorJob>,
    /// The provider's sites whose pages may call the visitor consent API (P7).
    pub allowed_origins: Arc<Vec<String>>,
    /// The server speaks TLS: the web pages' cookies are `Secure`.
    pub secure_cookies: bool,
}

impl AppState {
    /// The state for a vault, mailing codes through `mailer` if given.
    pub fn new(vault: Arc<Vault>, mailer: Option<Arc<dyn steward_core::Mailer>>) -> AppState {
        AppState {
            reads: crate::batch::Batcher::new(Arc::clone(&vault)),
            consents: crate::batch::Batcher::new(Arc::clone(&vault)),
            visitors: crate::batch::Batcher::new(Arc::clone(&vault)),
            vault,
            mailer,
            allowed_origins: Arc::new(Vec::new()),
            secure_cookies: false,
        }
    }

    /// The provider's sites whose pages may call the visitor consent API.
    pub fn with_origins(mut self, origins: Vec<String>) -> AppState {
        self.allowed_origins = Arc::new(origins);
        self
    }
}

pub(crate) fn subject(id: &str) -> Result<SubjectId, ApiError> {
    id.parse::<SubjectId>().map_err(ApiError::from)
}

/// Authenticates the caller and runs `op`. The vault's calls are synchronous and short (one
/// transaction on a local store), so they run on the request's own worker: a hand-off to the
/// blocking pool would cost more than most of them take.
pub(crate) async fn call<T, F>(state: &AppState, caller: Caller, op: F) -> Result<T, ApiError>
where
    F: FnOnce(&Vault, &Actor) -> Result<T, Error>,
{
    let vault = &state.vault;
    blocking(vault, || op(vault, &caller.0)).map_err(ApiError::from)
}

/// Runs vault work from an async handler. On the embedded store it runs in place: its calls
/// are short and CPU-bound. When storage is remote (PostgreSQL), or the provider's databases
/// are attached, a call may wait on round trips, so the worker hands its other tasks to
/// another thread while it waits.
pub(crate) fn blocking<T>(vault: &Vault, work: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if (vault.remote() || vault.datasets().is_some()) && multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// A newly registered subject.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SubjectCreated {
    /// The subject's id (a UUID).
    pub subject: String,
}

/// One value to collect.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryValue {
    /// A category the feature declares.
    pub category: String,
    /// The value.
    pub value: String,
}

/// Where collected values came from (P6).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind", try_from = "RawSource")]
pub enum SourceBody {
    /// Given by the subject.
    Subject,
    /// Observed from the subject's use of the service.
    Observed,
    /// Received from a named third party.
    ThirdParty {
        /// Who: 1 to 200 characters, not only spaces, no control characters.
        #[schema(min_length = 1, max_length = 200)]
        party: String,
    },
}

/// A source as sent: read as a plain object first, so that an unknown key or a misplaced
/// `party` is refused with its path (`source`), which serde's tagged enums lose.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: SourceKind,
    #[serde(default)]
    party: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum SourceKind {
    Subject,
    Observed,
    ThirdParty,
}

impl TryFrom<RawSource> for SourceBody {
    type Error = String;

    fn try_from(raw: RawSource) -> Result<Self, Self::Error> {
        // Worded so that the body's error names the field (`extract::field_problem`).
        match (raw.kind, raw.party) {
            (SourceKind::ThirdParty, Some(party)) => Ok(SourceBody::ThirdParty { party }),
            (SourceKind::ThirdParty, None) => Err("missing field `party`".into()),
            (_, Some(_)) => Err(crate::extract::own_message(
                "takes `party` only when `kind` is `third_party`",
            )),
            (SourceKind::Subject, None) => Ok(SourceBody::Subject),
            (SourceKind::Observed, None) => Ok(SourceBody::Observed),
        }
    }
}

/// A collection: one feature's values for one subject.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectBody {
    /// The collecting feature.
    pub feature: String,
    /// The values.
    pub values: Vec<CategoryValue>,
    /// Their source.
    pub source: SourceBody,
}

/// Ids of the stored records.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Collected {
    /// One id per value, in order.
    pub records: Vec<i64>,
}

/// A purpose-checked read.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    /// Categories to read.
    pub categories: Vec<String>,
    /// The purpose, from the policy.
    pub purpose: String,
    /// Why; required for staff roles (P21). Must not contain PI.
    #[serde(default)]
    pub justification: Option<String>,
}

// A copy of `steward_core::Value`: utoipa reads any type named `Value` as untyped JSON, so
// the schema needs a type of another name.
/// One decrypted value.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ValueBody {
    /// Record id.
    pub record: i64,
    /// Category.
    pub category: String,
    /// The value.
    pub value: String,
    /// Collecting feature.
    pub feature: String,
    /// Source (P6).
    pub source: String,
    /// When collected, Unix ms.
    pub collected_ms: i64,
}

impl From<Value> for ValueBody {
    fn from(v: Value) -> Self {
        ValueBody {
            record: v.record,
            category: v.category,
            value: v.value,
            feature: v.feature,
            source: v.source,
            collected_ms: v.collected_ms,
        }
    }
}

/// Values read or disclosed.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Values {
    /// The values.
    pub values: Vec<ValueBody>,
}

/// A consent grant or withdrawal.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    /// `purpose:<name>`, `feature:<name>` or `recipient:<name>`.
    pub target: String,
    /// Granted (true) or withdrawn (false).
    pub granted: bool,
    /// Separate, explicit consent (P5, PIPL art. 29).
    #[serde(default)]
    pub separate: bool,
    /// How it was given, as a name: `web`, `app`, `email`, ... (1 to 32 lowercase letters,
    /// digits, `_` or `-`; it is written to the audit log and the receipt as it is).
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    pub channel: String,
    /// The person's explicit act: `button`, `toggle`, `form`, `written` or `verbal`. A grant
    /// sent with `Sec-GPC: 1` is refused without one (`gpc_signal`, P7).
    #[serde(default)]
    pub action: Option<String>,
}

/// A signed document: consent receipt or erasure certificate (docs/audit-format.md §6).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DocumentBody {
    /// Base64 of the signed JSON bytes.
    pub payload: String,
    /// Base64 of the Ed25519 signature.
    pub signature: String,
    /// Hex of the Ed25519 public key.
    pub public_key: String,
}

impl From<SignedDocument> for DocumentBody {
    fn from(d: SignedDocument) -> Self {
        DocumentBody {
            payload: d.payload,
            signature: d.signature,
            public_key: d.public_key,
        }
    }
}

/// A disclosure to a registered recipient.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisclosureBody {
    /// The recipient, from the policy.
    pub recipient: String,
    /// Categories to disclose.
    pub categories: Vec<String>,
    /// The purpose.
    pub purpose: String,
    /// Why; required for staff roles.
    #[serde(default)]
    pub justification: Option<String>,
}

/// An erasure request.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseBody {
    /// Why the subject is erased.
    pub reason: String,
}

/// A lookup by a blind-indexed value.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupBody {
    /// A `lookup` category: email, phone, linked account.
    pub category: String,
    /// The value.
    pub value: String,
}

/// The subject found, if any.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LookupResult {
    /// The subject's id, or null.
    pub subject: Option<String>,
}

/// A signed checkpoint of the audit chain, as `checkpoints.jsonl` holds it
/// (`docs/audit-format.md` §2).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CheckpointBody {
    /// The entry whose hash is signed.
    #[schema(minimum = 1)]
    pub seq: u64,
    /// Its hash, lowercase hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub head: String,
    /// When signed, Unix ms.
    pub at_ms: i64,
    /// Ed25519 signature, lowercase hex.
    #[schema(pattern = "^[0-9a-f]{128}$")]
    pub signature: String,
}

/// What the provider publishes for auditors: the key that signs and the checkpoints it
/// signed (P33).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PublishedCheckpoints {
    /// The Ed25519 public key, 64 lowercase hex characters.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub public_key: String,
    /// The same key as a PEM `PUBLIC KEY`.
    pub public_key_pem: String,
    /// Signed checkpoints with `seq` above `after`, ascending, at most 1,000.
    pub checkpoints: Vec<CheckpointBody>,
    /// Whether more follow: ask again with `after` set to the last `seq` here.
    pub more: bool,
}

/// Where a page of checkpoints starts.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AfterQuery {
    /// Only checkpoints with a greater `seq` (default 0: from the first).
    #[param(minimum = 0)]
    pub after: Option<u64>,
}

/// Checkpoints a page of [`published_checkpoints`] holds at most.
const CHECKPOINT_PAGE: usize = 1000;

impl From<Checkpoint> for CheckpointBody {
    fn from(c: Checkpoint) -> Self {
        CheckpointBody {
            seq: c.seq,
            head: hex::encode(c.head),
            at_ms: c.at_ms,
            signature: hex::encode(c.signature),
        }
    }
}

/// Subject id in the path.
#[derive(Deserialize, IntoParams)]
pub struct SubjectPath {
    /// The subject's id (a UUID).
    #[param(format = Uuid)]
    pub id: String,
}

/// A status answer.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct StatusBody {
    /// `alive`, `ready`, or what was done.
    pub status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, body = StatusBody, description = "alive")))]
pub async fn live() -> impl IntoResponse {
    axum::Json(StatusBody {
        status: "alive".into(),
    })
}

/// Readiness: the store answers, and writes are not failing for want of space (P34). While
/// they are, each probe tries one small write, so readiness returns by itself once space is
/// freed.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses(
    (status = 200, body = StatusBody, description = "ready"),
    (status = 503, body = ErrorBody, description = "the store is not reachable"),
    (status = 507, body = ErrorBody, description = "the store is out of space: writes fail until space is freed")))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let vault = Arc::clone(&state.vault);
    let checked = tokio::task::spawn_blocking(move || vault.ready())
        .await
        .unwrap_or(Err(steward_core::Error::Internal(
            "the readiness check did not finish",
        )));
    match checked {
        Ok(()) => axum::Json(StatusBody {
            status: "ready".into(),
        })
        .into_response(),
        Err(e) if e.code() == steward_core::Code::StorageFull => ApiError::new(
            steward_core::Code::StorageFull,
            "the store is out of space: writes fail until space is freed",
        )
        .into_response(),
        Err(_) => ApiError::new(
            steward_core::Code::StorageUnavailable,
            "the store is not reachable",
        )
        .into_response(),
    }
}

/// Registers a subject with a fresh data key (P1, P20).
#[utoipa::path(post, path = "/v1/subjects", tag = "subjects", security(("api_key" = [])),
    responses((status = 201, body = SubjectCreated, description = "Created"), (status = 401, body = ErrorBody, description = "Not authenticated"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    // Read (and ignore) any body, so the connection stays usable for the next request.
    _body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<SubjectCreated>), ApiError> {
    let id = call(&state, caller, |v, a| v.register(a)).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SubjectCreated {
            subject: id.to_string(),
        }),
    ))
}

/// Finds a subject by a blind-indexed value (P19). The value travels in the body, never in a
/// URL, so it stays out of access logs.
#[utoipa::path(post, path = "/v1/subjects/lookup", tag = "subjects", security(("api_key" = [])),
    request_body = LookupBody,
    responses((status = 200, body = LookupResult, description = "OK"), (status = 400, body = ErrorBody, description = "Bad input"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn lookup(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<LookupBody>,
) -> Result<axum::Json<LookupResult>, ApiError> {
    let found = call(&state, caller, move |v, a| {
        v.find(a, &body.category, &body.value)
    })
    .await?;
    Ok(axum::Json(LookupResult {
        subject: found.map(|s| s.to_string()),
    }))
}

/// Collects one feature's values (P3, P5, P6).
#[utoipa::path(post, path = "/v1/subjects/{id}/collect", tag = "personal information", security(("api_key" = [])),
    params(SubjectPath), request_body = CollectBody,
    responses((status = 201, body = Collected, description = "Created"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 404, body = ErrorBody, description = "Not found"), (status = 422, body = ErrorBody, description = "Not processable")))]
pub async fn collect(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<CollectBody>,
) -> Result<(StatusCode, axum::Json<Collected>), ApiError> {
    let s = subject(&id)?;
    let records = call(&state, caller, move |v, a| {
        let pairs: Vec<(&str, &str)> = body
            .values
            .iter()
            .map(|p| (p.category.as_str(), p.value.as_str()))
            .collect();
        let source = match body.source {
            SourceBody::Subject => Source::Subject,
            SourceBody::Observed => Source::Observed,
            SourceBody::ThirdParty { party } => Source::ThirdParty(party),
        };
        v.collect(
            a,
            &Collect {
                subject: s,
                feature: &body.feature,
                values: &pairs,
                source,
            },
        )
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(Collected { records })))
}

/// Reads values for a declared purpose (P9, P10, P21).
#[utoipa::path(post, path = "/v1/subjects/{id}/read", tag = "personal information", security(("api_key" = [])),
    params(SubjectPath), request_body = ReadBody,
    responses((status = 200, body = Values, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 404, body = ErrorBody, description = "Not found"), (status = 410, body = ErrorBody, description = "Gone: the subject was erased")))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<ReadBody>,
) -> Result<axum::Json<Values>, ApiError> {
    let s = subject(&id)?;
    let actor = caller.0;
    let values = state
        .reads
        .submit(crate::batch::ReadJob {
            actor,
            subject: s,
            categories: body.categories,
            purpose: body.purpose,
            justification: body.justification,
        })
        .await??;
    Ok(axum::Json(Values {
        values: values.into_iter().map(ValueBody::from).collect(),
    }))
}

/// Grants or withdraws consent (P10, P27); answers with a signed receipt (P33).
#[utoipa::path(post, path = "/v1/subjects/{id}/consents", tag = "consent", security(("api_key" = [])),
    params(SubjectPath), request_body = ConsentBody,
    responses((status = 201, body = DocumentBody, description = "Created"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 422, body = ErrorBody, description = "Not processable")))]
pub async fn consent(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    headers: axum::http::HeaderMap,
    Body(body): Body<ConsentBody>,
) -> Result<(StatusCode, axum::Json<DocumentBody>), ApiError> {
    let s = subject(&id)?;
    let vault = &state.vault;
    let actor = caller.0;
    let target = blocking(vault, || vault.consent_target(&body.target))?;
    let receipt = state
        .consents
        .submit(crate::batch::ConsentJob {
            actor,
            subject: s,
            target,
            granted: body.granted,
            separate: body.separate,
            channel: body.channel,
            gpc: gpc(&headers),
            action: body.action,
        })
        .await??;
    Ok((StatusCode::CREATED, axum::Json(receipt.into())))
}

/// The consents in force for a subject: what services check before acting. Consent state
/// holds no PI value; reading it is not audited.
#[utoipa::path(get, path = "/v1/subjects/{id}/consents", tag = "consent", security(("api_key" = [])),
    params(SubjectPath),
    responses((status = 200, body = Vec<steward_core::ExportConsent>, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn consents_in_force(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let s = subject(&id)?;
    Ok(json_of(
        call(&state, caller, move |v, a| v.consents_in_force(a, s)).await?,
    ))
}

/// Discloses values to a registered recipient within its scope, and records it (P12, P13).
#[utoipa::path(post, path = "/v1/subjects/{id}/disclosures", tag = "personal information", security(("api_key" = [])),
    params(SubjectPath), request_body = DisclosureBody,
    responses((status = 201, body = Values, description = "Created"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn disclose(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<DisclosureBody>,
) -> Result<(StatusCode, axum::Json<Values>), ApiError> {
    let s = subject(&id)?;
    let values = call(&state, caller, move |v, a| {
        let cats: Vec<&str> = body.categories.iter().map(String::as_str).collect();
        v.disclose(
            a,
            s,
            &body.recipient,
            &cats,
            &body.purpose,
            body.justification.as_deref(),
        )
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Values {
            values: values.into_iter().map(ValueBody::from).collect(),
        }),
    ))
}

/// Everything held about a subject, decrypted (P23). The shape is `steward.subject-export.v1`.
#[utoipa::path(get, path = "/v1/subjects/{id}/export", tag = "rights", security(("api_key" = [])),
    params(SubjectPath),
    responses((status = 200, body = steward_core::Export, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let s = subject(&id)?;
    let export = call(&state, caller, move |v, a| v.export(a, s, None)).await?;
    Ok(axum::Json(export).into_response())
}

/// The same export, with the justification a role that must state why gives (P21): kept by
/// the `subject.export` entry as a keyed digest and sealed under the subject's key.
#[utoipa::path(post, path = "/v1/subjects/{id}/export", tag = "rights", security(("api_key" = [])),
    params(SubjectPath), request_body = JustificationBody,
    responses((status = 200, body = steward_core::Export, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn export_justified(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<JustificationBody>,
) -> Result<Response, ApiError> {
    let s = subject(&id)?;
    let export = call(&state, caller, move |v, a| {
        v.export(a, s, body.justification.as_deref())
    })
    .await?;
    Ok(axum::Json(export).into_response())
}

/// Erases a subject by destroying their data key (P28); answers with the signed certificate.
#[utoipa::path(post, path = "/v1/subjects/{id}/erasure", tag = "rights", security(("api_key" = [])),
    params(SubjectPath), request_body = EraseBody,
    responses((status = 201, body = DocumentBody, description = "Created"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 409, body = ErrorBody, description = "Conflict"), (status = 410, body = ErrorBody, description = "Gone: the subject was erased")))]
pub async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<EraseBody>,
) -> Result<(StatusCode, axum::Json<DocumentBody>), ApiError> {
    let s = subject(&id)?;
    let cert = call(&state, caller, move |v, a| v.erase(a, s, &body.reason)).await?;
    Ok((StatusCode::CREATED, axum::Json(cert.into())))
}

/// The signed checkpoints of the audit chain (P33).
#[utoipa::path(get, path = "/v1/audit/checkpoints", tag = "audit", security(("api_key" = [])),
    responses((status = 200, body = Vec<CheckpointBody>, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn checkpoints(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<CheckpointBody>>, ApiError> {
    let list = call(&state, caller, |v, a| {
        v.audit_access(a, "checkpoints")?;
        Ok(v.store().checkpoints()?)
    })
    .await?;
    Ok(axum::Json(
        list.into_iter().map(CheckpointBody::from).collect(),
    ))
}

/// The public key and the signed checkpoints, without authentication, for auditors to fetch
/// and keep: a log later cut back or rewritten behind a kept checkpoint fails
/// `steward audit verify --checkpoints` (P33). Each line of `checkpoints` is what a line of
/// `checkpoints.jsonl` holds.
#[utoipa::path(get, path = "/v1/evidence/checkpoints", tag = "audit", params(AfterQuery),
    responses((status = 200, body = PublishedCheckpoints, description = "OK")))]
pub async fn published_checkpoints(
    State(state): State<AppState>,
    Query(q): Query<AfterQuery>,
) -> Result<axum::Json<PublishedCheckpoints>, ApiError> {
    let vault = &state.vault;
    let after = q.after.unwrap_or(0);
    let list =
        blocking(vault, || vault.store().checkpoints()).map_err(steward_core::Error::from)?;
    let mut page: Vec<CheckpointBody> = list
        .into_iter()
        .filter(|c| c.seq > after)
        .take(CHECKPOINT_PAGE + 1)
        .map(CheckpointBody::from)
        .collect();
    let more = page.len() > CHECKPOINT_PAGE;
    page.truncate(CHECKPOINT_PAGE);
    let key = vault.public_key();
    Ok(axum::Json(PublishedCheckpoints {
        public_key: hex::encode(key),
        public_key_pem: steward_crypto::public_key_pem(&key),
        checkpoints: page,
        more,
    }))
}

/// Signs the current head of the audit chain.
#[utoipa::path(post, path = "/v1/audit/checkpoints", tag = "audit", security(("api_key" = [])),
    responses((status = 201, body = CheckpointBody, description = "Created"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 409, body = ErrorBody, description = "Conflict with the current state")))]
pub async fn sign_checkpoint(
    State(state): State<AppState>,
    caller: Caller,
    _body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<CheckpointBody>), ApiError> {
    let cp = call(&state, caller, |v, a| {
        v.audit_access(a, "checkpoint")?;
        v.checkpoint()
    })
    .await?;
    match cp {
        Some(cp) => Ok((StatusCode::CREATED, axum::Json(cp.into()))),
        None => Err(ApiError::new(
            steward_core::Code::AuditLogEmpty,
            "the audit log is empty",
        )),
    }
}

/// A legal hold to place (P18).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// Held categories; empty holds everything the subject has.
    #[serde(default)]
    pub categories: Vec<String>,
    /// `statute`, `court_order`, `authority_request` or `dispute`.
    pub reason: String,
    /// Case number or letter reference, 1 to 200 characters; stored sealed under the
    /// subject's key and never written to the audit log.
    pub reference: String,
    /// When the hold ends by itself, Unix ms.
    pub until_ms: i64,
}

/// A rights request to open.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    /// `access`, `correction`, `deletion`, `deletion_unlawful`, `consent_withdrawal`,
    /// `account_cancellation` or `inquiry`.
    pub kind: String,
    /// For `consent_withdrawal`: `purpose:<name>`, `feature:<name>` or `recipient:<name>`.
    /// For `deletion` or `deletion_unlawful` of some categories only: `categories:<name>,...`
    /// (completing it deletes their values and keeps the subject; absent, everything is
    /// erased).
    #[serde(default)]
    pub target: Option<String>,
    /// The subject's own words (inquiries, complaints); stored encrypted.
    #[serde(default)]
    pub text: Option<String>,
}

/// How identity was verified (P25).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// `otp`, `session` or `documents`.
    pub method: String,
}

/// A note closing a request.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// What was done, for the subject; at most 2,000 bytes, stored sealed under the subject's
    /// key and never written to the audit log.
    #[serde(default)]
    pub note: String,
    /// Why; required for roles that must state one (completing acts on PI). The audit log
    /// keeps a keyed digest of it, and the text sealed under the subject's key.
    #[serde(default)]
    pub justification: Option<String>,
    /// For a `correction` request: the corrected values. Each replaces every value the
    /// subject has of its category; the old ones are deleted (P24).
    #[serde(default)]
    pub corrections: Vec<CategoryValue>,
}

/// A refusal (P26).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefuseBody {
    /// `legal_obligation`, `legal_hold`, `security`, `rights_of_others` or
    /// `technically_infeasible`.
    pub reason: String,
    /// Explanation for the subject; at most 2,000 bytes, stored sealed under the subject's
    /// key and never written to the audit log.
    #[serde(default)]
    pub note: String,
}

/// A retention sweep.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepBody {
    /// Count only.
    #[serde(default)]
    pub dry_run: bool,
}

/// Which requests to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DueQuery {
    /// Requests due within this many days (0: overdue only). Default 7.
    #[param(minimum = 0, maximum = 3650)]
    pub due_within_days: Option<u32>,
}

pub(crate) fn json_of<T: Serialize>(v: T) -> Response {
    axum::Json(v).into_response()
}

/// Places a legal hold on a subject's data (P18).
#[utoipa::path(post, path = "/v1/subjects/{id}/holds", tag = "holds", security(("api_key" = [])),
    params(SubjectPath), request_body = HoldBody,
    responses((status = 201, body = steward_core::Hold, description = "Created"), (status = 400, body = ErrorBody, description = "Bad input"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn place_hold(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<HoldBody>,
) -> Result<(StatusCode, Response), ApiError> {
    let s = subject(&id)?;
    let hold = call(&state, caller, move |v, a| {
        let cats: Vec<&str> = body.categories.iter().map(String::as_str).collect();
        v.place_hold(a, s, &cats, &body.reason, &body.reference, body.until_ms)
    })
    .await?;
    Ok((StatusCode::CREATED, json_of(hold)))
}

/// Every hold on a subject.
#[utoipa::path(get, path = "/v1/subjects/{id}/holds", tag = "holds", security(("api_key" = [])),
    params(SubjectPath), responses((status = 200, body = Vec<steward_core::Hold>, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn list_holds(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let s = subject(&id)?;
    Ok(json_of(
        call(&state, caller, move |v, a| v.holds(a, s)).await?,
    ))
}

/// Hold id in the path.
#[derive(Deserialize, IntoParams)]
pub struct HoldPath {
    /// The hold's id.
    pub hold: String,
}

/// Lifts a hold early.
#[utoipa::path(post, path = "/v1/holds/{hold}/lift", tag = "holds", security(("api_key" = [])),
    params(HoldPath), responses((status = 200, body = steward_core::Hold, description = "OK"), (status = 409, body = ErrorBody, description = "Conflict")))]
pub async fn lift_hold(
    State(state): State<AppState>,
    caller: Caller,
    PathId(hold): PathId,
    _body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| v.lift_hold(a, &hold)).await?,
    ))
}

/// Takes in a rights request; its deadline comes from the policy (P32).
#[utoipa::path(post, path = "/v1/subjects/{id}/requests", tag = "rights", security(("api_key" = [])),
    params(SubjectPath), request_body = RequestBody,
    responses((status = 201, body = steward_core::RightsRequest, description = "Created"), (status = 400, body = ErrorBody, description = "Bad input"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn open_request(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<RequestBody>,
) -> Result<(StatusCode, Response), ApiError> {
    let s = subject(&id)?;
    let r = call(&state, caller, move |v, a| {
        v.open_request(
            a,
            s,
            &body.kind,
            body.target.as_deref(),
            body.text.as_deref(),
        )
    })
    .await?;
    Ok((StatusCode::CREATED, json_of(r)))
}

/// Open requests due soon, and overdue ones (P32).
#[utoipa::path(get, path = "/v1/requests", tag = "rights", security(("api_key" = [])),
    params(DueQuery), responses((status = 200, body = Vec<steward_core::RightsRequest>, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn due_requests(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<DueQuery>,
) -> Result<Response, ApiError> {
    let days = i64::from(q.due_within_days.unwrap_or(7));
    if days > 3650 {
        return Err(ApiError::new(
            steward_core::Code::InvalidQuery,
            "the query parameter `due_within_days` is at most 3650",
        ));
    }
    Ok(json_of(
        call(&state, caller, move |v, a| {
            v.requests_due(a, days * steward_core::DAY_MS)
        })
        .await?,
    ))
}

/// Which overdue requests.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OverdueQuery {
    /// Only this kind (`inquiry`, say).
    pub kind: Option<String>,
}

/// Open requests and inquiries already past their deadline, the longest overdue first, apart
/// from those merely due (P31, P32).
#[utoipa::path(get, path = "/v1/requests/overdue", tag = "rights", security(("api_key" = [])),
    params(OverdueQuery), responses((status = 200, body = Vec<steward_core::RightsRequest>, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn overdue_requests(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<OverdueQuery>,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| {
            v.requests_overdue(a, q.kind.as_deref())
        })
        .await?,
    ))
}

/// Request id in the path.
#[derive(Deserialize, IntoParams)]
pub struct RequestPath {
    /// The request's id.
    pub request: String,
}

/// One request.
#[utoipa::path(get, path = "/v1/requests/{request}", tag = "rights", security(("api_key" = [])),
    params(RequestPath), responses((status = 200, body = steward_core::RightsRequest, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn get_request(
    State(state): State<AppState>,
    caller: Caller,
    PathId(rid): PathId,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| v.request(a, &rid)).await?,
    ))
}

/// The steps a request took, oldest first: each state it entered, when and by whom.
#[utoipa::path(get, path = "/v1/requests/{request}/steps", tag = "rights", security(("api_key" = [])),
    params(RequestPath), responses((status = 200, body = Vec<steward_core::RequestStep>, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn request_steps(
    State(state): State<AppState>,
    caller: Caller,
    PathId(rid): PathId,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| v.request_steps(a, &rid)).await?,
    ))
}

/// Records that the requester's identity was verified (P25).
#[utoipa::path(post, path = "/v1/requests/{request}/verify", tag = "rights", security(("api_key" = [])),
    params(RequestPath), request_body = VerifyBody,
    responses((status = 200, body = steward_core::RightsRequest, description = "OK"), (status = 409, body = ErrorBody, description = "Conflict with the current state")))]
pub async fn verify_request(
    State(state): State<AppState>,
    caller: Caller,
    PathId(rid): PathId,
    Body(body): Body<VerifyBody>,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| {
            v.verify_request(a, &rid, &body.method)
        })
        .await?,
    ))
}

/// Marks a verified request as being worked on.
#[utoipa::path(post, path = "/v1/requests/{request}/start", tag = "rights", security(("api_key" = [])),
    params(RequestPath), responses((status = 200, body = steward_core::RightsRequest, description = "OK"), (status = 409, body = ErrorBody, description = "Conflict with the current state")))]
pub async fn start_request(
    State(state): State<AppState>,
    caller: Caller,
    PathId(rid): PathId,
    _body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| v.start_request(a, &rid)).await?,
    ))
}

/// Carries a verified request out and completes it: an export for access, an erasure and
/// its certificate for deletion, and so on. A deletion that must first reach the provider's
/// databases or external systems (docs/datasets.md) and cannot yet is answered in progress,
/// with each system's state; Steward completes it when they are done. An access request
/// waiting on an external system's answer is answered in progress too: complete it again
/// once every system has answered or been given up.
#[utoipa::path(post, path = "/v1/requests/{request}/complete", tag = "rights", security(("api_key" = [])),
    params(RequestPath), request_body = NoteBody,
    responses((status = 200, body = steward_core::Completion, description = "OK"), (status = 409, body = ErrorBody, description = "Conflict with the current state")))]
pub async fn complete_request(
    State(state): State<AppState>,
    caller: Caller,
    PathId(rid): PathId,
    Body(body): Body<NoteBody>,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| {
            let corrections: Vec<(&str, &str)> = body
                .corrections
                .iter()
                .map(|c| (c.category.as_str(), c.value.as_str()))
                .collect();
            let closing = steward_core::Closing {
                note: &body.note,
                justification: body.justification.as_deref(),
                corrections: &corrections,
            };
            v.complete_request(a, &rid, &closing)
        })
        .await?,
    ))
}

/// Why a member of staff reveals PI (a request's text, an export).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JustificationBody {
    /// Why; required for roles that must state one. The audit log keeps a keyed digest of
    /// it, and the text sealed under the subject's key.
    #[serde(default)]
    pub justification: Option<String>,
}

/// A request's text.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RequestText {
    /// What the subject wrote; empty when nothing.
    pub text: String,
}

/// What the subject wrote with a request or inquiry, for staff to answer it (P31); audited,
/// and under a role that must state why, only with a justification.
#[utoipa::path(post, path = "/v1/requests/{request}/text", tag = "rights", security(("api_key" = [])),
    params(RequestPath), request_body = JustificationBody,
    responses((status = 200, body = RequestText, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn request_text(
    State(state): State<AppState>,
    caller: Caller,
    PathId(rid): PathId,
    Body(body): Body<JustificationBody>,
) -> Result<axum::Json<RequestText>, ApiError> {
    let text = call(&state, caller, move |v, a| {
        v.read_request_text(a, &rid, body.justification.as_deref())
    })
    .await?;
    Ok(axum::Json(RequestText { text }))
}

/// Whose audit entry.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntrySubjectBody {
    /// The subject the entry names (by its pseudonym).
    #[schema(format = Uuid)]
    pub subject: String,
}

/// A justification, opened.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JustificationText {
    /// As stated; null when the entry keeps none, or once the subject is erased.
    pub justification: Option<String>,
}

/// The audit entry's seq.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EntryPath {
    /// The entry's seq.
    #[param(minimum = 1)]
    pub seq: u64,
}

/// The justification an audit entry keeps sealed (`justification_sealed`), opened for the
/// privacy officer or an auditor asking why PI was revealed (P21); audited as `audit.read`.
#[utoipa::path(post, path = "/v1/audit/entries/{seq}/justification", tag = "audit", security(("api_key" = [])),
    params(EntryPath), request_body = EntrySubjectBody,
    responses((status = 200, body = JustificationText, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn entry_justification(
    State(state): State<AppState>,
    caller: Caller,
    PathId(seq): PathId,
    Body(body): Body<EntrySubjectBody>,
) -> Result<axum::Json<JustificationText>, ApiError> {
    let seq: u64 = seq.parse().ok().filter(|s| *s >= 1).ok_or_else(|| {
        ApiError::from(Error::Invalid(
            "an entry's seq is a whole number from 1".into(),
        ))
    })?;
    let s = subject(&body.subject)?;
    let justification = call(&state, caller, move |v, a| v.justification_of(a, seq, s)).await?;
    Ok(axum::Json(JustificationText { justification }))
}

/// A webhook endpoint to register.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    /// Where events are POSTed: `https://…` (or `http://` to a local address where
    /// `webhooks_allow_local` is set).
    pub url: String,
    /// The events it takes (see `steward_core::EVENTS`); all of them when empty.
    #[serde(default)]
    pub events: Vec<String>,
}

/// Registers a webhook endpoint; the answer holds its signing secret, shown this once
/// (Standard Webhooks, `whsec_…`).
#[utoipa::path(post, path = "/v1/webhooks", tag = "outbox", security(("api_key" = [])),
    request_body = EndpointBody,
    responses((status = 201, body = steward_core::NewEndpoint, description = "Created"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<EndpointBody>,
) -> Result<(StatusCode, Response), ApiError> {
    let made = call(&state, caller, move |v, a| {
        let events: Vec<&str> = body.events.iter().map(String::as_str).collect();
        v.create_endpoint(Some(a), &body.url, &events)
    })
    .await?;
    Ok((StatusCode::CREATED, json_of(made)))
}

/// The webhook endpoints.
#[utoipa::path(get, path = "/v1/webhooks", tag = "outbox", security(("api_key" = [])),
    responses((status = 200, body = Vec<steward_core::Endpoint>, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, |v, a| v.endpoints(Some(a))).await?,
    ))
}

/// Stops sending to a webhook endpoint.
#[utoipa::path(post, path = "/v1/webhooks/{id}/disable", tag = "outbox", security(("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 200, body = steward_core::Endpoint, description = "OK"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn disable_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    _body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| v.disable_endpoint(Some(a), &id)).await?,
    ))
}

/// Which messages.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// `pending`, `delivered` or `dead`; all when absent.
    pub state: Option<String>,
    /// At most this many, newest first (default 100, at most 1,000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Messages in the outbox, newest first: what was sent, what waits, what failed for good.
#[utoipa::path(get, path = "/v1/outbox", tag = "outbox", security(("api_key" = [])),
    params(OutboxQuery),
    responses((status = 200, body = Vec<steward_core::Message>, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn outbox(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<OutboxQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            steward_core::Code::InvalidQuery,
            "the query parameter `limit` is 1 to 1000",
        ));
    }
    Ok(json_of(
        call(&state, caller, move |v, a| {
            v.outbox(Some(a), q.state.as_deref(), limit as usize)
        })
        .await?,
    ))
}

/// Puts a message back to be tried now, its attempts counted afresh.
#[utoipa::path(post, path = "/v1/outbox/{id}/retry", tag = "outbox", security(("api_key" = [])),
    params(("id" = String, Path, description = "The message's id")),
    responses((status = 200, body = steward_core::Message, description = "OK"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn retry_message(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    _body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| v.retry_message(Some(a), &id)).await?,
    ))
}

/// How far ahead the deadline board looks.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    /// Clocks due within this many days, and every one already overdue (default 30).
    #[param(minimum = 0, maximum = 3650)]
    pub within_days: Option<u32>,
}

/// One deadline board (P32): every clock Steward keeps — requests and inquiries, legal holds'
/// ends, erasures after account closure, retention, policy notice periods, incidents' reports
/// to authorities, notices of legal disclosures waiting for a restriction to end — soonest
/// first, each overdue, due soon (within 7 days) or later.
#[utoipa::path(get, path = "/v1/deadlines", tag = "rights", security(("api_key" = [])),
    params(BoardQuery),
    responses((status = 200, body = Vec<steward_core::deadlines::Deadline>, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn deadlines(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<BoardQuery>,
) -> Result<Response, ApiError> {
    let days = i64::from(q.within_days.unwrap_or(30));
    if days > 3650 {
        return Err(ApiError::new(
            steward_core::Code::InvalidQuery,
            "the query parameter `within_days` is at most 3650",
        ));
    }
    Ok(json_of(
        call(&state, caller, move |v, a| {
            v.deadlines(Some(a), days * steward_core::DAY_MS)
        })
        .await?,
    ))
}

/// Refuses a request with a reason from the fixed list (P26).
#[utoipa::path(post, path = "/v1/requests/{request}/refuse", tag = "rights", security(("api_key" = [])),
    params(RequestPath), request_body = RefuseBody,
    responses((status = 200, body = steward_core::RightsRequest, description = "OK"), (status = 400, body = ErrorBody, description = "Bad input"), (status = 409, body = ErrorBody, description = "Conflict with the current state")))]
pub async fn refuse_request(
    State(state): State<AppState>,
    caller: Caller,
    PathId(rid): PathId,
    Body(body): Body<RefuseBody>,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| {
            v.refuse_request(a, &rid, &body.reason, &body.note)
        })
        .await?,
    ))
}

/// Runs the retention sweep now (P17, P28).
#[utoipa::path(post, path = "/v1/retention/sweep", tag = "retention", security(("api_key" = [])),
    request_body = SweepBody, responses((status = 200, body = steward_core::SweepReport, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn sweep(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<SweepBody>,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| v.run_retention(a, body.dry_run)).await?,
    ))
}

/// A staff sign-in.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffSignInBody {
    /// The account's name.
    pub username: String,
    /// Its password.
    pub password: String,
}

/// An external system's answer (docs/datasets.md, "External systems"): on the signed callback
/// with `request`, recorded by staff with `system`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SystemAnswerBody {
    /// The request's id, from the `dataset.request` call (the signed callback only).
    pub request: Option<String>,
    /// The external system's dataset key (staff only: the callback names it in its path).
    pub system: Option<String>,
    /// `done`, `not_found` (nothing of the subject's is held there) or `failed`.
    pub status: String,
    /// Access: the rows found, `[{"collection": "contacts", "rows": [{"email": "…"}]}]`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub collections: Option<Vec<serde_json::Value>>,
    /// Access: values held per category (categories the dataset declares).
    pub categories: Option<std::collections::BTreeMap<String, u64>>,
    /// Erasure: rows deleted per table.
    pub deleted: Option<std::collections::BTreeMap<String, u64>>,
    /// Erasure: rows changed per table.
    pub masked: Option<std::collections::BTreeMap<String, u64>>,
    /// Failed: a code (letters, digits, `_`, `.`, `-`), never free text.
    pub reason: Option<String>,
}

/// Records an external system's answer that came another way — by email, on a vendor's portal
/// (`requests.manage`): as the system's own signed answer would be, the audit entry naming the
/// caller. A deletion waiting on nothing more is completed.
#[utoipa::path(post, path = "/v1/requests/{request}/answers", tag = "rights", security(("api_key" = [])),
    params(RequestPath), request_body = SystemAnswerBody,
    responses((status = 200, body = steward_core::SystemState, description = "Where the system now stands on the request"), (status = 400, body = ErrorBody, description = "Not an answer"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 404, body = ErrorBody, description = "No such request or external system"), (status = 409, body = ErrorBody, description = "Not asked, or answered differently before")))]
pub async fn record_system_answer(
    State(state): State<AppState>,
    caller: Caller,
    PathId(rid): PathId,
    Body(body): Body<serde_json::Value>,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| {
            v.record_system_answer(a, &rid, &body)
        })
        .await?,
    ))
}

/// An external system's path (`/v1/datasets/{system}/answers`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SystemPath {
    /// The external system's dataset key (`fides_key`).
    pub system: String,
}

/// An external system answers Steward's `dataset.request` (docs/datasets.md, "External
/// systems"): no API key — the call is signed per Standard Webhooks (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`) with the secret of the endpoint the system is
/// asked through. The same answer again changes nothing; a different one is `409`.
#[utoipa::path(post, path = "/v1/datasets/{system}/answers", tag = "rights",
    params(SystemPath), request_body = SystemAnswerBody,
    responses((status = 200, body = steward_core::SystemState, description = "Where the system now stands on the request"), (status = 401, body = ErrorBody, description = "Not signed by the system's endpoint secret, or the timestamp is more than 5 minutes off"), (status = 400, body = ErrorBody, description = "Not an answer"), (status = 404, body = ErrorBody, description = "No such external system or request"), (status = 409, body = ErrorBody, description = "Not asked, or answered differently before")))]
pub async fn dataset_answer(
    State(state): State<AppState>,
    PathId(system): PathId,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let vault = Arc::clone(&state.vault);
    let answered = tokio::task::spawn_blocking(move || {
        vault.answer_external(
            &system,
            &steward_core::Signed {
                id: &id,
                timestamp: &timestamp,
                signature: &signature,
            },
            &body,
        )
    })
    .await
    .unwrap_or(Err(Error::Internal("the answer was not recorded")))?;
    Ok(json_of(answered))
}

/// Signs a staff member in (P21): the session token then works as `Authorization: Bearer`
/// on `/v1/...` under the account's role. Wrong passwords are limited per account and client.
#[utoipa::path(post, path = "/v1/staff/session", tag = "staff", request_body = StaffSignInBody,
    responses((status = 201, body = SessionBody, description = "Created"), (status = 401, body = ErrorBody, description = "Not authenticated"), (status = 429, body = ErrorBody, description = "Too many attempts")))]
pub async fn staff_sign_in(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<crate::tls::ClientAddr>,
    Body(body): Body<StaffSignInBody>,
) -> Result<(StatusCode, axum::Json<SessionBody>), ApiError> {
    let s = staff_session(&state, body.username, body.password, client(addr)).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SessionBody {
            token: s.token,
            expires_ms: s.expires_ms,
        }),
    ))
}

/// Signs a staff member in, for the API and the console alike. Argon2id takes tens of
/// milliseconds on purpose: it runs off the event loop and the request workers.
pub(crate) async fn staff_session(
    state: &AppState,
    username: String,
    password: String,
    client: String,
) -> Result<steward_core::SessionToken, Error> {
    let vault = Arc::clone(&state.vault);
    tokio::task::spawn_blocking(move || vault.staff_sign_in(&username, &password, &client))
        .await
        .unwrap_or(Err(Error::Internal("the sign-in did not finish")))
}

/// A request for a sign-in code.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// The subject's email address.
    pub email: String,
}

/// A sign-in with a code.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInBody {
    /// The subject's email address.
    pub email: String,
    /// The six-digit code from the email.
    pub code: String,
}

/// A signed-in session for the privacy centre.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SessionBody {
    /// Present as `Authorization: Bearer <token>` on `/v1/self/...`.
    pub token: String,
    /// When it ends, Unix ms.
    pub expires_ms: i64,
}

/// A subject's own consent choice.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfConsentBody {
    /// `purpose:<name>`, `feature:<name>` or `recipient:<name>`.
    pub target: String,
    /// Granted or withdrawn.
    pub granted: bool,
    /// Separate, explicit consent (P5).
    #[serde(default)]
    pub separate: bool,
    /// The subject's explicit act (`button`, `toggle`, ...); a grant sent with `Sec-GPC: 1`
    /// is refused without one (`gpc_signal`, P7).
    #[serde(default)]
    pub action: Option<String>,
}

/// Whether a request carries Global Privacy Control (`Sec-GPC: 1`, P7).
pub(crate) fn gpc(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get("sec-gpc")
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"1")
}

/// The client address rate limits count against.
fn client(addr: crate::tls::ClientAddr) -> String {
    addr.0.ip().to_string()
}

/// Runs `op` for the subject a session token stands for: self-service reaches only their data.
async fn call_self<T, F>(state: &AppState, session: SessionSubject, op: F) -> Result<T, ApiError>
where
    F: FnOnce(&Vault, SubjectId) -> Result<T, Error>,
{
    blocking(&state.vault, || op(&state.vault, session.0)).map_err(ApiError::from)
}

/// Sends a sign-in code to the email, if it belongs to a subject (P25). The answer is the same
/// either way — status, body, limits and time: the mail is sent after the answer, to the
/// address the subject's record holds; asking too often for one address or from one client is
/// refused, whether or not the address is known.
#[utoipa::path(post, path = "/v1/self/code", tag = "self-service", request_body = CodeBody,
    responses((status = 202, body = StatusBody, description = "sent, if the address is known"), (status = 429, body = ErrorBody, description = "Too many attempts"), (status = 503, body = ErrorBody, description = "Unavailable")))]
pub async fn send_code(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<crate::tls::ClientAddr>,
    Body(body): Body<CodeBody>,
) -> Result<(StatusCode, Response), ApiError> {
    code_mail(&state, &body.email, &client(addr))?;
    Ok((
        StatusCode::ACCEPTED,
        json_of(StatusBody {
            status: "if the address belongs to an account, a code is on its way".into(),
        }),
    ))
}

/// Makes a sign-in code for `email` if it is a subject's (counted against the address's and
/// `client`'s limits) and mails it after the caller has answered, so that the answer takes the
/// same time for an address that belongs to an account and one that does not (P25). The API
/// and the privacy centre's page both ask through here.
pub(crate) fn code_mail(state: &AppState, email: &str, client: &str) -> Result<(), Error> {
    let Some(mailer) = state.mailer.clone() else {
        return Err(Error::MailUnavailable);
    };
    let mail = blocking(&state.vault, || state.vault.prepare_code(email, client))?;
    if let Some(mail) = mail {
        tokio::task::spawn_blocking(move || {
            if mailer.send(&mail.to, &mail.subject, &mail.body).is_err() {
                tracing::warn!("a sign-in code could not be mailed");
            }
        });
    }
    Ok(())
}

/// Exchanges a code for a session (P25). Wrong codes are limited per code and per client.
#[utoipa::path(post, path = "/v1/self/session", tag = "self-service", request_body = SignInBody,
    responses((status = 201, body = SessionBody, description = "Created"), (status = 401, body = ErrorBody, description = "Not authenticated"), (status = 429, body = ErrorBody, description = "Too many attempts")))]
pub async fn sign_in(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<crate::tls::ClientAddr>,
    Body(body): Body<SignInBody>,
) -> Result<(StatusCode, axum::Json<SessionBody>), ApiError> {
    let client = client(addr);
    let s = blocking(&state.vault, || {
        state.vault.sign_in(&body.email, &body.code, &client)
    })?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SessionBody {
            token: s.token,
            expires_ms: s.expires_ms,
        }),
    ))
}

/// The signed-in subject's own data (P23).
#[utoipa::path(get, path = "/v1/self/export", tag = "self-service", security(("session" = [])),
    responses((status = 200, body = steward_core::Export, description = "OK"), (status = 401, body = ErrorBody, description = "Not authenticated")))]
pub async fn self_export(
    State(state): State<AppState>,
    session: SessionSubject,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call_self(&state, session, |v, s| v.self_export(s)).await?,
    ))
}

/// The language a subject is written to in.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageBody {
    /// `zh-CN` or `en`.
    pub language: String,
}

/// Records the language a subject is written to in (emails, notices); the policy's
/// `policy.language` until one is recorded.
#[utoipa::path(post, path = "/v1/subjects/{id}/language", tag = "subjects", security(("api_key" = [])),
    params(SubjectPath), request_body = LanguageBody,
    responses((status = 200, body = LanguageBody, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn set_language(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<LanguageBody>,
) -> Result<axum::Json<LanguageBody>, ApiError> {
    let s = subject(&id)?;
    let language = body.language.clone();
    call(&state, caller, move |v, a| {
        v.set_language(Some(a), s, &body.language)
    })
    .await?;
    Ok(axum::Json(LanguageBody { language }))
}

/// The signed-in subject chooses the language they are written to in.
#[utoipa::path(post, path = "/v1/self/language", tag = "self-service", security(("session" = [])),
    request_body = LanguageBody, responses((status = 200, body = LanguageBody, description = "OK"), (status = 401, body = ErrorBody, description = "Not authenticated")))]
pub async fn self_language(
    State(state): State<AppState>,
    session: SessionSubject,
    Body(body): Body<LanguageBody>,
) -> Result<axum::Json<LanguageBody>, ApiError> {
    let language = body.language.clone();
    call_self(&state, session, move |v, s| {
        v.set_language(None, s, &body.language)
    })
    .await?;
    Ok(axum::Json(LanguageBody { language }))
}

/// The signed-in subject grants or withdraws consent (P27).
#[utoipa::path(post, path = "/v1/self/consents", tag = "self-service", security(("session" = [])),
    request_body = SelfConsentBody, responses((status = 201, body = DocumentBody, description = "Created"), (status = 401, body = ErrorBody, description = "Not authenticated")))]
pub async fn self_consent(
    State(state): State<AppState>,
    session: SessionSubject,
    headers: axum::http::HeaderMap,
    Body(body): Body<SelfConsentBody>,
) -> Result<(StatusCode, axum::Json<DocumentBody>), ApiError> {
    let signal = gpc(&headers);
    let receipt = call_self(&state, session, move |v, s| {
        let target = v.consent_target(&body.target)?;
        v.self_consent(
            s,
            target,
            (body.granted, body.separate),
            signal,
            body.action.as_deref(),
        )
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(receipt.into())))
}

/// The signed-in subject's own requests and inquiries, oldest first: state, deadline and any
/// refusal reason (P23, P26, P31).
#[utoipa::path(get, path = "/v1/self/requests", tag = "self-service", security(("session" = [])),
    responses((status = 200, body = Vec<steward_core::RightsRequest>, description = "OK"), (status = 401, body = ErrorBody, description = "Not authenticated")))]
pub async fn self_requests(
    State(state): State<AppState>,
    session: SessionSubject,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call_self(&state, session, |v, s| v.self_requests(s)).await?,
    ))
}

/// The signed-in subject opens a rights request; identity counts as verified (P25).
#[utoipa::path(post, path = "/v1/self/requests", tag = "self-service", security(("session" = [])),
    request_body = RequestBody, responses((status = 201, body = steward_core::RightsRequest, description = "Created"), (status = 401, body = ErrorBody, description = "Not authenticated")))]
pub async fn self_request(
    State(state): State<AppState>,
    session: SessionSubject,
    Body(body): Body<RequestBody>,
) -> Result<(StatusCode, Response), ApiError> {
    let r = call_self(&state, session, move |v, s| {
        v.self_request(s, &body.kind, body.target.as_deref(), body.text.as_deref())
    })
    .await?;
    Ok((StatusCode::CREATED, json_of(r)))
}

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A subject's session, `sts_<token>`, from POST /v1/self/session",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A service API key, `stw_<id>_<secret>`, from `steward key create`, or a staff session, `stf_<token>`, from POST /v1/staff/session",
                    ))
                    .build(),
            ),
        );
    }
}

/// A policy version to publish.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// The policy file's text (TOML), as `steward policy check` takes it.
    pub text: String,
    /// When it takes effect (`YYYY-MM-DD`, UTC midnight); the file's `effective` if absent.
    #[serde(default)]
    pub effective: Option<String>,
}

/// Which language to explain in.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
    /// `zh-CN` or `en`; the policy's language if absent or another.
    pub lang: Option<String>,
}

/// Which version a subject accepts, and why when staff accept for them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    /// The version; the one in force if absent.
    #[serde(default)]
    pub version: Option<String>,
    /// Staff accepting on the subject's behalf say why (kept sealed, P21).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A recorded acceptance.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AcceptedBody {
    /// The version accepted.
    pub version: String,
}

/// Publishes a new version of the policy (P29): refused inside the notice period for a
/// material change (`notice_period`, naming the earliest date); a material version is
/// announced (`GET /v1/notices`), mailed to every subject with an address and signalled by
/// `policy.published` and `notice.sent` webhooks.
#[utoipa::path(post, path = "/v1/policy/versions", tag = "policy", security(("api_key" = [])),
    request_body = PublishBody,
    responses((status = 201, body = steward_core::versions::VersionView, description = "Published"), (status = 409, body = ErrorBody, description = "Inside the notice period, or the version exists"), (status = 422, body = ErrorBody, description = "The text does not validate")))]
pub async fn publish_policy(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<PublishBody>,
) -> Result<(StatusCode, Response), ApiError> {
    let effective = body
        .effective
        .as_deref()
        .map(steward_core::versions::parse_day)
        .transpose()
        .map_err(ApiError::from)?;
    let published = call(&state, caller, move |v, a| {
        v.publish_policy(Some(a), &body.text, effective)
    })
    .await?;
    Ok((StatusCode::CREATED, json_of(published)))
}

/// Every published version of the policy, oldest first: public.
#[utoipa::path(get, path = "/v1/policy/versions", tag = "policy",
    responses((status = 200, body = Vec<steward_core::versions::VersionView>, description = "OK")))]
pub async fn policy_versions(State(state): State<AppState>) -> Response {
    json_of(state.vault.versions())
}

/// One version: the statement in plain language, its text, and its classified diff to the
/// version before, explained in `lang`: public.
#[utoipa::path(get, path = "/v1/policy/versions/{version}", tag = "policy",
    params(("version" = String, Path, description = "The version label"), LangQuery),
    responses((status = 200, body = steward_core::versions::VersionDetail, description = "OK"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn policy_version(
    State(state): State<AppState>,
    PathId(version): PathId,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    Ok(json_of(
        state
            .vault
            .version_detail(&version, q.lang.as_deref())
            .map_err(ApiError::from)?,
    ))
}

/// How many subjects were notified of a version, shown it, and accepted it (and how).
#[utoipa::path(get, path = "/v1/policy/versions/{version}/acceptance", tag = "policy", security(("api_key" = [])),
    params(("version" = String, Path, description = "The version label")),
    responses((status = 200, body = steward_core::versions::Acceptance, description = "OK"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn policy_acceptance(
    State(state): State<AppState>,
    caller: Caller,
    PathId(version): PathId,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| {
            v.permit_policy(a)?;
            v.acceptance(&version)
        })
        .await?,
    ))
}

/// What `/.well-known/gpc.json` says (the Global Privacy Control specification).
#[derive(Serialize, ToSchema)]
pub struct GpcSupport {
    /// The site honours Global Privacy Control: `Sec-GPC: 1` is a refusal of every
    /// non-essential use, and a grant sent with it needs the person's explicit act (P7).
    pub gpc: bool,
    /// When this was last updated: the effective date of the policy version in force.
    #[serde(rename = "lastUpdate")]
    pub last_update: String,
}

/// The Global Privacy Control support resource: public.
#[utoipa::path(get, path = "/.well-known/gpc.json", tag = "consent",
    responses((status = 200, body = GpcSupport, description = "OK")))]
pub async fn gpc_support(State(state): State<AppState>) -> axum::Json<GpcSupport> {
    axum::Json(GpcSupport {
        gpc: true,
        last_update: state.vault.policy().effective.to_string(),
    })
}

/// The notices of material policy changes, and the announcements of incidents whose affected
/// are being told (`kind` `incident`), for the provider's home page and the privacy centre:
/// public, in `lang`.
#[utoipa::path(get, path = "/v1/notices", tag = "policy", params(LangQuery),
    responses((status = 200, body = Vec<steward_core::versions::Notice>, description = "OK")))]
pub async fn notices(
    State(state): State<AppState>,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    Ok(json_of(
        state
            .vault
            .notices(q.lang.as_deref())
            .map_err(ApiError::from)?,
    ))
}

/// Staff accept a version on a subject's behalf, with a reason (P30).
#[utoipa::path(post, path = "/v1/subjects/{id}/policy/accept", tag = "policy", security(("api_key" = [])),
    params(SubjectPath), request_body = AcceptBody,
    responses((status = 200, body = AcceptedBody, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn accept_for_subject(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<AcceptBody>,
) -> Result<axum::Json<AcceptedBody>, ApiError> {
    let s = subject(&id)?;
    let version = call(&state, caller, move |v, a| {
        v.accept_policy(Some(a), s, body.version.as_deref(), body.reason.as_deref())
    })
    .await?;
    Ok(axum::Json(AcceptedBody { version }))
}

/// The signed-in subject accepts a version (the one in force if none is named).
#[utoipa::path(post, path = "/v1/self/policy/accept", tag = "self-service", security(("session" = [])),
    request_body = AcceptBody, responses((status = 200, body = AcceptedBody, description = "OK"), (status = 401, body = ErrorBody, description = "Not authenticated")))]
pub async fn self_accept(
    State(state): State<AppState>,
    session: SessionSubject,
    Body(body): Body<AcceptBody>,
) -> Result<axum::Json<AcceptedBody>, ApiError> {
    let version = call_self(&state, session, move |v, s| {
        v.accept_policy(None, s, body.version.as_deref(), None)
    })
    .await?;
    Ok(axum::Json(AcceptedBody { version }))
}

/// The notices, in the signed-in subject's language; recorded as shown to them (P30).
#[utoipa::path(get, path = "/v1/self/notices", tag = "self-service", security(("session" = [])),
    responses((status = 200, body = Vec<steward_core::versions::Notice>, description = "OK"), (status = 401, body = ErrorBody, description = "Not authenticated")))]
pub async fn self_notices(
    State(state): State<AppState>,
    session: SessionSubject,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call_self(&state, session, |v, s| v.self_notices(s)).await?,
    ))
}

/// The OpenAPI 3.1 document of this API, generated from the handlers above.
#[derive(OpenApi)]
#[openapi(
    info(title = "Steward", description = "Keeps a privacy statement's promises: purpose-checked access to personal information, consent, disclosures, export, erasure and a verifiable audit log."),
    paths(live, ready, register, lookup, collect, read, consent, consents_in_force, disclose, export, erase, checkpoints, sign_checkpoint, published_checkpoints,
        place_hold, list_holds, lift_hold, open_request, due_requests, get_request, request_steps, verify_request, start_request,
        complete_request, refuse_request, request_text, overdue_requests, deadlines, create_endpoint, list_endpoints, disable_endpoint, outbox, retry_message, export_justified, entry_justification, sweep, staff_sign_in, dataset_answer, record_system_answer, send_code, sign_in, self_export, self_consent, self_requests, self_request, set_language, self_language,
        publish_policy, policy_versions, policy_version, policy_acceptance, notices, accept_for_subject, self_accept, self_notices, gpc_support, crate::visitor::visitor_state, crate::visitor::visitor_choose, crate::visitor::visitor_receipts, crate::visitor::link_device, crate::visitor::self_link_device,
        crate::cases::open_incident, crate::cases::list_incidents, crate::cases::get_incident, crate::cases::incident_facts, crate::cases::incident_step,
        crate::cases::incident_report, crate::cases::file_report, crate::cases::notify_incident, crate::cases::disclose_legal,
        crate::cases::plan_transfer, crate::cases::list_transfers, crate::cases::get_transfer, crate::cases::run_transfer),
    components(schemas(ErrorBody, crate::error::ErrorDetail, steward_core::Code)),
    modifiers(&SecurityAddon, &ErrorResponses),
)]
pub struct ApiDoc;
