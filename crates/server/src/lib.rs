//! Steward as a service (`steward serve`): the HTTP API over the vault, its configuration,
//! error shape and OpenAPI document. Handlers stay thin; the rules live in `steward-core`.

pub mod api;
pub mod banner;
pub mod batch;
pub mod busy_poll;
pub mod cases;
pub mod config;
pub mod error;
pub mod extract;
pub mod http;
pub mod mail;
pub mod openapi;
pub mod tls;
mod unread;
pub mod visitor;
pub mod web;
pub mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use steward_core::{Code, Vault};
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
    ApiError::new(Code::NotFound, "no such endpoint; see /openapi.json")
}

/// Answers a method the path does not take; axum adds the `Allow` header.
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        Code::MethodNotAllowed,
        "this endpoint does not take this method; the `Allow` header lists those it takes",
    )
}

/// The edge's refusal of a request head over Steward's limits ([`http::LIMITS`]).
fn head_over_limits(req: &Request) -> Option<ApiError> {
    let limits = http::LIMITS;
    let uri = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri > limits.uri_bytes {
        return Some(ApiError::new(
            Code::UriTooLong,
            format!(
                "the path and query are longer than {} bytes",
                limits.uri_bytes
            ),
        ));
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > limits.headers || bytes > limits.header_bytes {
        return Some(ApiError::new(
            Code::HeadersTooLarge,
            format!(
                "a request carries at most {} headers of {} bytes in all",
                limits.headers, limits.header_bytes
            ),
        ));
    }
    None
}

/// What the server takes from its configuration.
#[derive(Clone, Debug)]
pub struct Options {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long the embedded store's event loop keeps polling after a request before it
    /// sleeps ([`busy_poll`]); zero turns it off. Not used on PostgreSQL.
    pub busy_poll: std::time::Duration,
    /// How often the background retention sweep runs (P17); never when `None`.
    pub retention_sweep: Option<std::time::Duration>,
    /// How long a client may take to send a request's head, and then its body
    /// ([`http::READ_TIMEOUT`] unless a test shortens it).
    pub read_timeout: std::time::Duration,
    /// How long the outbox dispatcher waits between looks when it found nothing to send;
    /// no dispatcher runs when `None`.
    pub outbox_poll: Option<std::time::Duration>,
    /// Attempts at a message before it is dead.
    pub outbox_max_attempts: u32,
    /// How long a dispatcher holds what it claimed, ms.
    pub outbox_lease_ms: i64,
}

impl Options {
    /// The options in `config`.
    pub fn from_config(config: &Config) -> Options {
        Options {
            max_body_bytes: config.max_body_bytes,
            busy_poll: std::time::Duration::from_micros(config.busy_poll_us),
            retention_sweep: (config.retention_sweep_secs > 0)
                .then(|| std::time::Duration::from_secs(config.retention_sweep_secs)),
            read_timeout: http::READ_TIMEOUT,
            outbox_poll: (config.outbox_poll_ms > 0)
                .then(|| std::time::Duration::from_millis(config.outbox_poll_ms)),
            outbox_max_attempts: config.outbox_max_attempts,
            outbox_lease_ms: i64::try_from(config.outbox_lease_ms).unwrap_or(i64::MAX),
        }
    }
}

/// A server started by [`start`], running on a thread of its own.
pub struct Running {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Where it listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Stops taking requests, lets those in flight finish, and waits for the thread.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.finish(true)
    }

    /// Waits until the server stops by itself (its `shutdown` future completed).
    pub fn wait(mut self) -> std::io::Result<()> {
        self.finish(false)
    }

    fn finish(&mut self, stop: bool) -> std::io::Result<()> {
        // Dropping the sender would stop the server too: keep it while waiting.
        if stop && let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => Err(std::io::Error::other("the server thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.finish(true);
    }
}

/// Starts Steward's server: the one way it is started, by `steward serve`, the load test and
/// the test kit alike. It runs on a thread named [`THREAD_NAME`], on the runtime chosen by
/// where the store is ([`runtime`]), with the background retention sweep if `options` asks
/// for it, and serves `listener` until [`Running::stop`] is called or `shutdown` completes
/// (then it lets the requests in flight finish).
pub fn start(
    state: AppState,
    listener: std::net::TcpListener,
    options: Options,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<Running> {
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = runtime(state.vault.remote())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                if let Some(every) = options.retention_sweep {
                    tokio::spawn(sweep_periodically(Arc::clone(&state.vault), every));
                }
                if let Some(every) = options.outbox_poll {
                    let mut dispatcher = steward_core::dispatch::Dispatcher::new(
                        Arc::clone(&state.vault),
                        state.mailer.clone(),
                        Some(Arc::new(webhook::HttpWebhooks::default())),
                    );
                    dispatcher.schedule.max_attempts = options.outbox_max_attempts;
                    dispatcher.lease_ms = options.outbox_lease_ms;
                    tokio::spawn(dispatch_periodically(Arc::new(dispatcher), every));
                } else {
                    // No dispatcher here: still read the versions other servers publish (P29).
                    tokio::spawn(refresh_versions_periodically(Arc::clone(&state.vault)));
                }
                let until = async move {
                    tokio::select! {
                        _ = stopped => {}
                        () = shutdown => {}
                    }
                };
                serve(state, listener, &options, tls, until).await
            })
        })?;
    Ok(Running {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Default for Options {
    fn default() -> Self {
        Options::from_config(&Config::default())
    }
}

/// What every request passes through first: the busy poller is told it started; a head over
/// Steward's limits ([`http::LIMITS`]) is refused in JSON (414, 431); a body whose
/// announced length is over the limit is refused before any of it is read (the body-limit
/// layer alone only notices once it has read that far); every answer gets
/// `X-Content-Type-Options: nosniff`, and every one but the public documents
/// `Cache-Control: no-store`; and the request is logged by its route template, never its raw
/// path or body: those may hold ids and values.
struct Edge {
    max_body_bytes: usize,
    /// Handed to the body extractor with each request.
    body: extract::BodyLimits,
    poll: Option<Arc<busy_poll::BusyPoll>>,
}

async fn edge(edge: Arc<Edge>, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(edge.body);
    if let Some(poll) = &edge.poll {
        poll.started();
    }
    // What the log line needs, taken only when it will be written (the route is a copy).
    let logged = tracing::enabled!(tracing::Level::INFO).then(|| {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
        (req.method().clone(), route, Instant::now())
    });
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let max = edge.max_body_bytes;
    // What may be cached: only what is public and holds no PI or token.
    let cacheable = matches!(
        req.uri().path(),
        "/openapi.json"
            | "/v1/evidence/checkpoints"
            | "/banner.js"
            | "/banner.css"
            | "/assets/site.css"
    );
    // Whether the body was read to its end; `None` when there is none to read.
    let mut read = None;
    let mut response = if let Some(refusal) = head_over_limits(&req) {
        refusal.into_response()
    } else if announced.is_some_and(|n| n > max as u64) {
        ApiError::new(
            Code::BodyTooLarge,
            format!("the request body is larger than {max} bytes"),
        )
        .into_response()
    } else {
        if unread::has_body(req.headers()) {
            let (parts, body) = req.into_parts();
            let (body, ended) = unread::Tracked::wrap(body);
            read = Some(ended);
            req = Request::from_parts(parts, body);
        }
        next.run(req).await
    };
    let unread_body = match &read {
        Some(ended) => !ended.load(std::sync::atomic::Ordering::Acquire),
        // Refused before it ran: a body announced was not read.
        None => announced.is_some_and(|n| n > 0),
    };
    let headers = response.headers_mut();
    if unread_body {
        unread::close(headers);
    }
    headers.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    if !cacheable {
        // Reads, disclosures, exports and sessions carry PI or tokens: no cache keeps them.
        headers.insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
    }
    if let Some((method, route, started)) = logged {
        tracing::info!(
            %method,
            route,
            status = response.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "request"
        );
    }
    response
}

/// The API's routes. Requests are reported to `poll`, if given.
pub fn router(
    state: AppState,
    max_body_bytes: usize,
    read_timeout: std::time::Duration,
    poll: Option<Arc<busy_poll::BusyPoll>>,
) -> Router {
    let first = Arc::new(Edge {
        max_body_bytes,
        body: extract::BodyLimits {
            within: read_timeout,
            max_bytes: max_body_bytes,
        },
        poll,
    });
    // Routes that take an API key or staff session, and those that take a subject's session:
    // each authenticated before anything else in the request is read.
    let keyed = Router::new()
        .route("/v1/subjects", post(api::register))
        .route("/v1/subjects/lookup", post(api::lookup))
        .route("/v1/subjects/{id}/collect", post(api::collect))
        .route("/v1/subjects/{id}/read", post(api::read))
        .route(
            "/v1/subjects/{id}/consents",
            get(api::consents_in_force).post(api::consent),
        )
        .route("/v1/subjects/{id}/disclosures", post(api::disclose))
        .route(
            "/v1/subjects/{id}/export",
            get(api::export).post(api::export_justified),
        )
        .route("/v1/subjects/{id}/erasure", post(api::erase))
        .route("/v1/subjects/{id}/language", post(api::set_language))
        .route("/v1/subjects/{id}/devices", post(visitor::link_device))
        .route(
            "/v1/audit/checkpoints",
            get(api::checkpoints).post(api::sign_checkpoint),
        )
        .route(
            "/v1/subjects/{id}/holds",
            get(api::list_holds).post(api::place_hold),
        )
        .route("/v1/holds/{hold}/lift", post(api::lift_hold))
        .route("/v1/subjects/{id}/requests", post(api::open_request))
        .route("/v1/requests", get(api::due_requests))
        .route("/v1/requests/overdue", get(api::overdue_requests))
        .route("/v1/requests/{request}", get(api::get_request))
        .route("/v1/requests/{request}/steps", get(api::request_steps))
        .route("/v1/requests/{request}/verify", post(api::verify_request))
        .route("/v1/requests/{request}/start", post(api::start_request))
        .route(
            "/v1/requests/{request}/complete",
            post(api::complete_request),
        )
        .route("/v1/requests/{request}/refuse", post(api::refuse_request))
        .route(
            "/v1/requests/{request}/answers",
            post(api::record_system_answer),
        )
        .route("/v1/requests/{request}/text", post(api::request_text))
        .route(
            "/v1/audit/entries/{seq}/justification",
            post(api::entry_justification),
        )
        .route(
            "/v1/webhooks",
            get(api::list_endpoints).post(api::create_endpoint),
        )
        .route("/v1/webhooks/{id}/disable", post(api::disable_endpoint))
        .route("/v1/outbox", get(api::outbox))
        .route("/v1/deadlines", get(api::deadlines))
        .route("/v1/outbox/{id}/retry", post(api::retry_message))
        .route("/v1/retention/sweep", post(api::sweep))
        .route("/v1/policy/versions", post(api::publish_policy))
        .route(
            "/v1/policy/versions/{id}/acceptance",
            get(api::policy_acceptance),
        )
        .route(
            "/v1/subjects/{id}/policy/accept",
            post(api::accept_for_subject),
        )
        .route(
            "/v1/incidents",
            get(cases::list_incidents).post(cases::open_incident),
        )
        .route("/v1/incidents/{id}", get(cases::get_incident))
        .route("/v1/incidents/{id}/facts", post(cases::incident_facts))
        .route("/v1/incidents/{id}/steps", post(cases::incident_step))
        .route("/v1/incidents/{id}/report", get(cases::incident_report))
        .route("/v1/incidents/{id}/reports", post(cases::file_report))
        .route("/v1/incidents/{id}/notify", post(cases::notify_incident))
        .route(
            "/v1/subjects/{id}/disclosures/legal",
            post(cases::disclose_legal),
        )
        .route(
            "/v1/transfers",
            get(cases::list_transfers).post(cases::plan_transfer),
        )
        .route("/v1/transfers/{id}", get(cases::get_transfer))
        .route("/v1/transfers/{id}/run", post(cases::run_transfer))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            extract::authenticate,
        ));
    let session = Router::new()
        .route("/v1/self/export", get(api::self_export))
        .route("/v1/self/consents", post(api::self_consent))
        .route("/v1/self/language", post(api::self_language))
        .route("/v1/self/devices", post(visitor::self_link_device))
        .route("/v1/self/policy/accept", post(api::self_accept))
        .route("/v1/self/notices", get(api::self_notices))
        .route(
            "/v1/self/requests",
            get(api::self_requests).post(api::self_request),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            extract::authenticate_session,
        ));
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
        .route("/v1/evidence/checkpoints", get(api::published_checkpoints))
        .route("/.well-known/gpc.json", get(api::gpc_support))
        .route("/banner.js", get(banner::script))
        .route("/assets/site.css", get(web::style))
        .route("/privacy", get(web::privacy::home))
        .route("/privacy/code", post(web::privacy::code))
        .route("/privacy/session", post(web::privacy::session))
        .route("/privacy/data", get(web::privacy::data))
        .route("/privacy/export.json", get(web::privacy::export))
        .route(
            "/privacy/consents",
            get(web::privacy::consents).post(web::privacy::consent),
        )
        .route(
            "/privacy/requests",
            get(web::privacy::requests).post(web::privacy::request),
        )
        .route(
            "/privacy/statement",
            get(web::privacy::statement).post(web::privacy::accept),
        )
        .route("/privacy/sign-out", post(web::privacy::sign_out))
        .route("/console", get(web::console::home))
        .route("/console/session", post(web::console::session))
        .route("/console/queue", get(web::console::queue))
        .route("/console/requests/{id}", get(web::console::request))
        .route("/console/requests/{id}/{act}", post(web::console::act))
        .route("/console/deadlines", get(web::console::deadlines))
        .route("/console/incidents", get(web::console::incidents))
        .route(
            "/console/incidents/{id}/{act}",
            post(web::console::incident_act),
        )
        .route(
            "/console/disclosures",
            get(web::console::disclosures).post(web::console::show_disclosures),
        )
        .route(
            "/console/outbox",
            get(web::console::outbox).post(web::console::retry),
        )
        .route(
            "/console/versions",
            get(web::console::versions).post(web::console::publish),
        )
        .route(
            "/console/holds",
            get(web::console::holds).post(web::console::hold),
        )
        .route(
            "/console/audit",
            get(web::console::audit).post(web::console::verify),
        )
        .route("/console/sign-out", post(web::console::sign_out))
        .route("/banner.css", get(banner::style))
        .merge(
            Router::new()
                .route(
                    "/v1/visitor/state",
                    post(visitor::visitor_state).options(visitor::preflight),
                )
                .route(
                    "/v1/visitor/consents",
                    post(visitor::visitor_choose).options(visitor::preflight),
                )
                .route(
                    "/v1/visitor/receipts",
                    post(visitor::visitor_receipts).options(visitor::preflight),
                )
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    visitor::cross_origin,
                )),
        )
        .route("/v1/policy/versions", get(api::policy_versions))
        .route("/v1/policy/versions/{id}", get(api::policy_version))
        .route("/v1/notices", get(api::notices))
        .route("/v1/staff/session", post(api::staff_sign_in))
        .route("/v1/datasets/{system}/answers", post(api::dataset_answer))
        .route("/v1/self/code", post(api::send_code))
        .route("/v1/self/session", post(api::sign_in))
        .merge(keyed)
        .merge(session)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(move |req, next| {
            edge(Arc::clone(&first), req, next)
        }))
        .with_state(state)
}

/// Runs the retention sweep every `every` until the process stops (P17). Each sweep is
/// resumable, so stopping in the middle of one loses nothing.
pub async fn sweep_periodically(vault: Arc<Vault>, every: std::time::Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let v = Arc::clone(&vault);
        let outcome =
            tokio::task::spawn_blocking(move || v.retention_sweep(false, 1000, &mut |_| {})).await;
        match outcome {
            Ok(Ok(r)) => tracing::info!(
                deleted = r.records_deleted,
                held = r.records_held,
                erased = r.subjects_erased,
                "background retention sweep"
            ),
            Ok(Err(e)) => {
                tracing::warn!(code = e.code().as_str(), error = %e, "retention sweep failed; will retry")
            }
            Err(_) => tracing::warn!("retention sweep task failed; will retry"),
        }
    }
}

/// Delivers the outbox until the process stops: a pass, and another at once while passes
/// find full batches; otherwise a pause of `every` (issue 12). Once a minute it also queues
/// the deadline reminders now due. A pass that fails (the store
/// is down) is tried again after the pause; messages stay in the outbox meanwhile.
pub async fn dispatch_periodically(
    dispatcher: Arc<steward_core::dispatch::Dispatcher>,
    every: std::time::Duration,
) {
    let mut reminded: Option<std::time::Instant> = None;
    loop {
        // Deadline reminders are looked for once a minute (P32); they go out through the outbox.
        if reminded.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(60)) {
            reminded = Some(std::time::Instant::now());
            let v = Arc::clone(dispatcher.vault());
            match tokio::task::spawn_blocking(move || v.send_reminders()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(code = e.code().as_str(), error = %e, "reminders failed; will retry")
                }
                Err(_) => tracing::warn!("reminder task failed; will retry"),
            }
        }
        // Erasures waiting on the provider's databases, tried again when due (issue 16).
        if dispatcher.vault().datasets().is_some() {
            let v = Arc::clone(dispatcher.vault());
            match tokio::task::spawn_blocking(move || v.advance_datasets()).await {
                Ok(Ok(n)) if n > 0 => tracing::info!(
                    completed = n,
                    "erasures in the provider's databases completed"
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(code = e.code().as_str(), error = %e, "datasets pass failed; will retry")
                }
                Err(_) => tracing::warn!("datasets task failed; will retry"),
            }
        }
        // Versions published by another server, the one in force, notice campaigns (P29, P30).
        let v = Arc::clone(dispatcher.vault());
        match tokio::task::spawn_blocking(move || v.policy_tick(std::time::Duration::from_secs(2)))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(code = e.code().as_str(), error = %e, "policy pass failed; will retry")
            }
            Err(_) => tracing::warn!("policy task failed; will retry"),
        }
        let d = Arc::clone(&dispatcher);
        let outcome = tokio::task::spawn_blocking(move || d.run_once()).await;
        let full = match outcome {
            Ok(Ok(r)) => r.claimed >= dispatcher.batch,
            Ok(Err(e)) => {
                tracing::warn!(code = e.code().as_str(), error = %e, "outbox pass failed; will retry");
                false
            }
            Err(_) => {
                tracing::warn!("outbox task failed; will retry");
                false
            }
        };
        if !full {
            tokio::time::sleep(every).await;
        }
    }
}

/// Reads newly published policy versions every second, for a server that runs no dispatcher
/// (whose passes do it otherwise).
pub async fn refresh_versions_periodically(vault: Arc<Vault>) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let v = Arc::clone(&vault);
        match tokio::task::spawn_blocking(move || v.refresh_versions()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(code = e.code().as_str(), error = %e, "reading policy versions failed; will retry")
            }
            Err(_) => tracing::warn!("policy version task failed; will retry"),
        }
    }
}

/// Name of the server's worker threads on PostgreSQL; on the embedded store, the thread that
/// runs the event loop should carry it too.
pub const THREAD_NAME: &str = "steward-server";

/// The async runtime `steward serve` runs on, chosen by where the store is.
///
/// - **Embedded (SQLite):** one event-loop thread. Store calls are short and CPU-bound, and one
///   connection serialises them anyway, so a second worker would only add cross-thread wake-ups
///   and lock hand-offs (on the 2-core machines measured, a request woken on another core costs
///   more than most requests' own work). Reads and consent writes that arrive together share
///   one transaction (group commit, [`batch`]). Slow work (Argon2id, mail, retention sweeps)
///   goes to the blocking pool.
/// - **Remote (PostgreSQL):** a worker per core; a store call waits on round trips, and the
///   waiting worker hands its other tasks on ([`api::blocking`]).
pub fn runtime(remote: bool) -> std::io::Result<tokio::runtime::Runtime> {
    if remote {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name(THREAD_NAME)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in
/// flight (graceful shutdown). With `tls`, connections are TLS. On a current-thread runtime
/// (the embedded store's, see [`runtime`]) the event loop busy-polls for `options.busy_poll`
/// after each request.
async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    options: &Options,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let single_loop = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread;
    let poll = (single_loop && !options.busy_poll.is_zero()).then(|| {
        let poll = Arc::new(busy_poll::BusyPoll::new(options.busy_poll));
        let poller = Arc::clone(&poll);
        tokio::spawn(async move { poller.run().await });
        poll
    });
    let state = AppState {
        secure_cookies: tls.is_some(),
        ..state
    };
    let app = router(state, options.max_body_bytes, options.read_timeout, poll);
    let incoming = match tls {
        None => http::Incoming::Tcp(listener),
        Some(config) => http::Incoming::Tls(tls::TlsListener::new(listener, config)?),
    };
    http::serve(incoming, app, options.read_timeout, shutdown).await
}
