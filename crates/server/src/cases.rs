//! The HTTP API of incidents (P22), legal disclosures (P15) and transfers (P14): thin handlers
//! over the vault, as in [`crate::api`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use steward_core::incidents::{IncidentFacts, NewIncident};
use steward_core::legal::{LegalDisclosure, NewTransfer};
use utoipa::{IntoParams, ToSchema};

use crate::api::{AppState, SubjectPath, call, json_of, subject};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, Caller, PathId, Query};

/// A case's id in the path.
#[derive(Deserialize, IntoParams)]
pub struct CasePath {
    /// The incident's (`inc_…`) or transfer plan's (`trf_…`) id.
    pub id: String,
}

/// A step on an incident's timeline.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepBody {
    /// `containment`, `remediation`, `note`, `contained` or `handled`.
    pub kind: String,
    /// What was done (no PI).
    pub text: String,
}

/// A report filed with an authority.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileBody {
    /// The policy's name for the report (`cn`, `gdpr`).
    pub regime: String,
    /// `initial`, `update` or `final`.
    pub part: String,
}

/// How a report is asked for.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `zh-CN` or `en`; the policy's language if absent.
    pub lang: Option<String>,
    /// `json` (the default) or `text`.
    pub format: Option<String>,
}

/// Opens an incident (P22): its affected set is computed from what Steward holds, without
/// decrypting; its reports' clocks start from the policy.
#[utoipa::path(post, path = "/v1/incidents", tag = "incidents", security(("api_key" = [])),
    request_body = NewIncident,
    responses((status = 201, body = steward_core::incidents::Incident, description = "Opened"), (status = 400, body = ErrorBody, description = "Bad input"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn open_incident(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewIncident>,
) -> Result<(StatusCode, Response), ApiError> {
    let opened = call(&state, caller, move |v, a| v.open_incident(Some(a), &body)).await?;
    Ok((StatusCode::CREATED, json_of(opened)))
}

/// Every incident, newest detection first.
#[utoipa::path(get, path = "/v1/incidents", tag = "incidents", security(("api_key" = [])),
    responses((status = 200, body = Vec<steward_core::incidents::Incident>, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn list_incidents(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, |v, a| v.incidents(Some(a))).await?,
    ))
}

/// One incident: its facts, affected counts, clocks, reports, timeline and notification.
#[utoipa::path(get, path = "/v1/incidents/{id}", tag = "incidents", security(("api_key" = [])),
    params(CasePath),
    responses((status = 200, body = steward_core::incidents::Incident, description = "OK"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn get_incident(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| v.incident(Some(a), &id)).await?,
    ))
}

/// Changes an incident's facts; a new exposure (or `recompute`) computes the affected set
/// again, as a new audited version.
#[utoipa::path(post, path = "/v1/incidents/{id}/facts", tag = "incidents", security(("api_key" = [])),
    params(CasePath), request_body = IncidentFacts,
    responses((status = 200, body = steward_core::incidents::Incident, description = "OK"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn incident_facts(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<IncidentFacts>,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| {
            v.incident_facts(Some(a), &id, &body)
        })
        .await?,
    ))
}

/// Logs a step on an incident's timeline: containment, remediation, a note; `contained` and
/// `handled` move its state (handling starts the final report's clock).
#[utoipa::path(post, path = "/v1/incidents/{id}/steps", tag = "incidents", security(("api_key" = [])),
    params(CasePath), request_body = StepBody,
    responses((status = 200, body = steward_core::incidents::Incident, description = "OK"), (status = 409, body = ErrorBody, description = "The state does not allow it")))]
pub async fn incident_step(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<StepBody>,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| {
            v.incident_step(Some(a), &id, &body.kind, &body.text)
        })
        .await?,
    ))
}

/// The incident's report: PIPL art. 57's items and the counts by category and region, as
/// JSON or as text (`format=text`), in `lang`.
#[utoipa::path(get, path = "/v1/incidents/{id}/report", tag = "incidents", security(("api_key" = [])),
    params(CasePath, ReportQuery),
    responses((status = 200, description = "OK: JSON, or the text with `format=text`", content((steward_core::incidents::Report = "application/json"), (String = "text/plain"))), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn incident_report(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let text = match q.format.as_deref() {
        None | Some("json") => false,
        Some("text") => true,
        Some(_) => {
            return Err(ApiError::from(steward_core::Error::Invalid(
                "`format` must be `json` or `text`".into(),
            )));
        }
    };
    let report = call(&state, caller, move |v, a| {
        let r = v.incident_report(Some(a), &id, q.lang.as_deref())?;
        let text = if text { Some(v.report_text(&r)?) } else { None };
        Ok((r, text))
    })
    .await?;
    Ok(match report {
        (_, Some(text)) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        (r, None) => json_of(r),
    })
}

/// Records a report filed with an authority (initial, update or final): its clock stops.
#[utoipa::path(post, path = "/v1/incidents/{id}/reports", tag = "incidents", security(("api_key" = [])),
    params(CasePath), request_body = FileBody,
    responses((status = 201, body = steward_core::incidents::Incident, description = "Recorded"), (status = 409, body = ErrorBody, description = "A final report before the incident is handled")))]
pub async fn file_report(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<FileBody>,
) -> Result<(StatusCode, Response), ApiError> {
    let filed = call(&state, caller, move |v, a| {
        v.file_report(Some(a), &id, &body.regime, &body.part)
    })
    .await?;
    Ok((StatusCode::CREATED, json_of(filed)))
}

/// Notifies every affected subject through the outbox (a mail in their language, a push
/// webhook for the provider's apps) and announces the incident in `GET /v1/notices`; the
/// dispatcher sends batch by batch, and `notification` counts how it stands.
#[utoipa::path(post, path = "/v1/incidents/{id}/notify", tag = "incidents", security(("api_key" = [])),
    params(CasePath),
    responses((status = 202, body = steward_core::incidents::Incident, description = "Started"), (status = 409, body = ErrorBody, description = "Already notifying, or every affected subject was notified")))]
pub async fn notify_incident(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    _body: axum::body::Bytes,
) -> Result<(StatusCode, Response), ApiError> {
    let started = call(&state, caller, move |v, a| v.notify_incident(Some(a), &id)).await?;
    Ok((StatusCode::ACCEPTED, json_of(started)))
}

/// Discloses a subject's values on a legal basis (P15): recorded, and the subject told through
/// the outbox at once or when a restriction on telling ends.
#[utoipa::path(post, path = "/v1/subjects/{id}/disclosures/legal", tag = "disclosures", security(("api_key" = [])),
    params(SubjectPath), request_body = LegalDisclosure,
    responses((status = 201, body = steward_core::legal::LegalDisclosed, description = "Disclosed"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn disclose_legal(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<LegalDisclosure>,
) -> Result<(StatusCode, Response), ApiError> {
    let s = subject(&id)?;
    let done = call(&state, caller, move |v, a| v.disclose_legal(a, s, &body)).await?;
    Ok((StatusCode::CREATED, json_of(done)))
}

/// Plans a transfer to a successor (P14), at least `change_notice_days` ahead: the subjects
/// concerned are told through the outbox from now.
#[utoipa::path(post, path = "/v1/transfers", tag = "transfers", security(("api_key" = [])),
    request_body = NewTransfer,
    responses((status = 201, body = steward_core::legal::Transfer, description = "Planned"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 409, body = ErrorBody, description = "Too soon")))]
pub async fn plan_transfer(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewTransfer>,
) -> Result<(StatusCode, Response), ApiError> {
    let planned = call(&state, caller, move |v, a| v.plan_transfer(Some(a), &body)).await?;
    Ok((StatusCode::CREATED, json_of(planned)))
}

/// Every transfer plan.
#[utoipa::path(get, path = "/v1/transfers", tag = "transfers", security(("api_key" = [])),
    responses((status = 200, body = Vec<steward_core::legal::Transfer>, description = "OK"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule")))]
pub async fn list_transfers(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, |v, a| v.transfers(Some(a))).await?,
    ))
}

/// One transfer plan.
#[utoipa::path(get, path = "/v1/transfers/{id}", tag = "transfers", security(("api_key" = [])),
    params(CasePath),
    responses((status = 200, body = steward_core::legal::Transfer, description = "OK"), (status = 404, body = ErrorBody, description = "Not found")))]
pub async fn get_transfer(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| v.transfer(Some(a), &id)).await?,
    ))
}

/// Runs a transfer from its date, once every notice is queued: the encrypted bundle for the
/// successor and its key (shown this once); erased, closed and held subjects are refused.
#[utoipa::path(post, path = "/v1/transfers/{id}/run", tag = "transfers", security(("api_key" = [])),
    params(CasePath),
    responses((status = 200, body = steward_core::legal::TransferBundle, description = "Ran"), (status = 409, body = ErrorBody, description = "Before its date, notices still being queued, or run already")))]
pub async fn run_transfer(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    _body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    Ok(json_of(
        call(&state, caller, move |v, a| v.run_transfer(Some(a), &id)).await?,
    ))
}
