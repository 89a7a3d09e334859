//! The visitor consent API (P7, P8): what the banner on the provider's pages calls from the
//! browser, before the visitor signs in. Public — a visitor is known only by the device id the
//! banner keeps — and cross-origin from the provider's own sites alone: a request whose
//! `Origin` is not in `allowed_origins` is refused (`origin_not_allowed`), and a preflight
//! from one that is gets the CORS answer browsers need.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use steward_core::visitors::{DeviceLink, VisitorChoice, VisitorState};
use utoipa::ToSchema;

use crate::api::{AppState, DocumentBody, SubjectPath, call, gpc, subject};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, Caller, PathId, SessionSubject};

/// Which visitor.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceBody {
    /// The device id the banner keeps (22 to 64 characters of `A-Z a-z 0-9 _ -`).
    pub device: String,
    /// The browser's Global Privacy Control setting as the page reads it
    /// (`navigator.globalPrivacyControl`): a page cannot send `Sec-GPC` itself. Either one
    /// is the signal.
    #[serde(default)]
    pub gpc: bool,
    /// The language the purposes' and cookies' descriptions come in (`zh-CN` or `en`; the
    /// policy's language when absent), where the policy gives them in it.
    #[serde(default)]
    pub lang: Option<String>,
}

/// Whose receipts.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptsQuery {
    /// The device id the banner keeps.
    pub device: String,
}

/// A visitor's choices.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChoicesBody {
    /// The device id the banner keeps.
    pub device: String,
    /// One choice per purpose chosen.
    pub choices: Vec<VisitorChoice>,
    /// How the visitor made them: `button` (accept all, refuse all) or `toggle` (a switch in
    /// the settings).
    pub action: String,
    /// Return a signed receipt per choice (the default). The banner sends `false`: it
    /// downloads them from `/v1/visitor/receipts` when the visitor asks, the same bytes.
    #[serde(default = "yes")]
    pub receipts: bool,
}

fn yes() -> bool {
    true
}

/// What was recorded.
#[derive(Serialize, ToSchema)]
pub struct RecordedBody {
    /// How many choices were recorded.
    pub recorded: usize,
    /// A signed consent receipt per choice, in the order sent; empty when `receipts` was
    /// `false`.
    pub receipts: Vec<DocumentBody>,
}

/// The receipts of a visitor's choices.
#[derive(Serialize, ToSchema)]
pub struct ReceiptsBody {
    /// Every choice's signed consent receipt, oldest first.
    pub receipts: Vec<DocumentBody>,
}

/// Refuses a cross-origin request from a site not in `allowed_origins`, answers a preflight
/// from one that is, and marks the answers to it as readable by that site.
pub async fn cross_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let Some(origin) = origin else {
        // Not a browser's cross-origin call: nothing to allow.
        return next.run(request).await;
    };
    let allowed = origin
        .to_str()
        .is_ok_and(|o| state.allowed_origins.iter().any(|a| a == o));
    if !allowed {
        return ApiError::from(steward_core::Error::OriginNotAllowed).into_response();
    }
    let mut response = if request.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, sec-gpc"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

/// A preflight's answer comes from [`cross_origin`]; without an `Origin` there is nothing to
/// allow.
pub async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Where a visitor stands: each purpose the policy's cookies serve, the choice in force,
/// whether to ask again. With `Sec-GPC: 1` every undecided non-essential purpose is refused
/// first, once (P7).
#[utoipa::path(post, path = "/v1/visitor/state", tag = "consent", request_body = DeviceBody,
    responses((status = 200, body = VisitorState, description = "OK"), (status = 403, body = ErrorBody, description = "The page's origin is not one of the provider's sites"), (status = 429, body = ErrorBody, description = "This address made its hour's new visitors")))]
pub async fn visitor_state(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<crate::tls::ClientAddr>,
    headers: HeaderMap,
    Body(body): Body<DeviceBody>,
) -> Result<axum::Json<VisitorState>, ApiError> {
    let signal = gpc(&headers) || body.gpc;
    let vault = &state.vault;
    let client = addr.0.ip().to_string();
    let answer = crate::api::blocking(vault, || {
        vault.visitor_state(&body.device, signal, Some(&client), body.lang.as_deref())
    })?;
    Ok(axum::Json(answer))
}

/// Records a visitor's choices, each with its signed receipt (P7, P33).
#[utoipa::path(post, path = "/v1/visitor/consents", tag = "consent", request_body = ChoicesBody,
    responses((status = 201, body = RecordedBody, description = "Recorded"), (status = 403, body = ErrorBody, description = "The page's origin is not one of the provider's sites"), (status = 429, body = ErrorBody, description = "This address made its hour's new visitors")))]
pub async fn visitor_choose(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<crate::tls::ClientAddr>,
    headers: HeaderMap,
    Body(body): Body<ChoicesBody>,
) -> Result<(StatusCode, axum::Json<RecordedBody>), ApiError> {
    let recorded = body.choices.len();
    let receipts = state
        .visitors
        .submit(crate::batch::VisitorJob {
            device: body.device,
            choices: body.choices,
            action: body.action,
            gpc: gpc(&headers),
            receipts: body.receipts,
            client: addr.0.ip().to_string(),
        })
        .await??;
    Ok((
        StatusCode::CREATED,
        axum::Json(RecordedBody {
            recorded,
            receipts: receipts.into_iter().map(DocumentBody::from).collect(),
        }),
    ))
}

/// The signed receipts of every choice the visitor made, oldest first: what the banner's
/// settings offer to download (P33).
#[utoipa::path(post, path = "/v1/visitor/receipts", tag = "consent", request_body = ReceiptsQuery,
    responses((status = 200, body = ReceiptsBody, description = "OK"), (status = 403, body = ErrorBody, description = "The page's origin is not one of the provider's sites")))]
pub async fn visitor_receipts(
    State(state): State<AppState>,
    Body(body): Body<ReceiptsQuery>,
) -> Result<axum::Json<ReceiptsBody>, ApiError> {
    let vault = &state.vault;
    let receipts = crate::api::blocking(vault, || vault.visitor_receipts(&body.device))?;
    Ok(axum::Json(ReceiptsBody {
        receipts: receipts.into_iter().map(DocumentBody::from).collect(),
    }))
}

/// Which device to link.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// The device id the banner keeps in its first-party cookie on the provider's site.
    pub device: String,
}

/// Links a visitor's device to a subject when they sign in on the provider's site (P19): its
/// cookie choices and what was collected under it join the subject's export and go with the
/// subject's erasure (P8). `subjects.register`.
#[utoipa::path(post, path = "/v1/subjects/{id}/devices", tag = "subjects", security(("api_key" = [])),
    params(SubjectPath), request_body = LinkBody,
    responses((status = 200, body = DeviceLink, description = "Linked (or already linked)"), (status = 403, body = ErrorBody, description = "Refused: see the error code and rule"), (status = 404, body = ErrorBody, description = "Not found"), (status = 409, body = ErrorBody, description = "The device is another subject's")))]
pub async fn link_device(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Body(body): Body<LinkBody>,
) -> Result<axum::Json<DeviceLink>, ApiError> {
    let s = subject(&id)?;
    let link = call(&state, caller, move |v, a| {
        v.link_device(a, s, &body.device)
    })
    .await?;
    Ok(axum::Json(link))
}

/// The signed-in subject links the device they browse on (the privacy centre does, at sign-in).
#[utoipa::path(post, path = "/v1/self/devices", tag = "self-service", security(("session" = [])),
    request_body = LinkBody,
    responses((status = 200, body = DeviceLink, description = "Linked (or already linked)"), (status = 401, body = ErrorBody, description = "Not authenticated"), (status = 409, body = ErrorBody, description = "The device is another subject's")))]
pub async fn self_link_device(
    State(state): State<AppState>,
    session: SessionSubject,
    Body(body): Body<LinkBody>,
) -> Result<axum::Json<DeviceLink>, ApiError> {
    let vault = &state.vault;
    let link = crate::api::blocking(vault, || vault.link_own_device(session.0, &body.device))?;
    Ok(axum::Json(link))
}
