//! Steward as a service (`steward serve`): the HTTP API over the vault, its configuration,
//! error shape and OpenAPI document. Handlers stay thin; the rules live in `steward-core`.

pub mod api;
pub mod config;
pub mod error;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use steward_core::Vault;
use utoipa::OpenApi;

pub use api::{ApiDoc, AppState};
pub use config::{Config, ConfigError};
pub use error::ApiError;

/// The OpenAPI document, as served at `/openapi.json` and committed as `docs/openapi.json`.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_string())
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /openapi.json",
    )
}

/// Logs each request by its route template, never its raw path or body: those may hold ids
/// and values.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        %method,
        route,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1e3,
        "request"
    );
    response
}

/// Refuses a body whose announced length is over the limit before reading any of it. (The
/// body-limit layer alone only notices once it has read that far.)
async fn reject_oversized(max: usize, req: Request, next: Next) -> Response {
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(n) if n > max as u64 => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {max} bytes"),
        )
        .into_response(),
        _ => next.run(req).await,
    }
}

/// The API's routes over a vault.
pub fn router(vault: Arc<Vault>, max_body_bytes: usize) -> Router {
    let state = AppState { vault };
    Router::new()
        .route("/health/live", get(api::live))
        .route("/health/ready", get(api::ready))
        .route(
            "/openapi.json",
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    openapi_json(),
                )
                    .into_response()
            }),
        )
        .route("/v1/subjects", post(api::register))
        .route("/v1/subjects/lookup", post(api::lookup))
        .route("/v1/subjects/{id}/collect", post(api::collect))
        .route("/v1/subjects/{id}/read", post(api::read))
        .route("/v1/subjects/{id}/consents", post(api::consent))
        .route("/v1/subjects/{id}/disclosures", post(api::disclose))
        .route("/v1/subjects/{id}/export", get(api::export))
        .route("/v1/subjects/{id}/erasure", post(api::erase))
        .route(
            "/v1/audit/checkpoints",
            get(api::checkpoints).post(api::sign_checkpoint),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(move |req, next| {
            reject_oversized(max_body_bytes, req, next)
        }))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in
/// flight (graceful shutdown).
pub async fn serve(
    vault: Arc<Vault>,
    listener: tokio::net::TcpListener,
    max_body_bytes: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(vault, max_body_bytes);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
