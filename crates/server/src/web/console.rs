//! The staff console (`/console`): privacy staff sign in with their account and work the
//! request queue against its deadlines — verify, complete, refuse with a reason. What a staff
//! member sees and may do is what their role's `may` allows: every page calls the same core
//! operation as the API, under their role (a role without `requests.manage` is told so).

use askama::Template;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use steward_core::{Actor, Closing, Error, RightsRequest};

use super::privacy::{
    Frame, anonymous_post, frame, genuine, refused, said, seed, status_of, switched,
};
use super::{Texts, cookie, day, field, form, language, page, redirect, set_cookie};
use crate::api::AppState;
use crate::tls::ClientAddr;

/// The cookie holding a staff member's session token.
const STAFF_COOKIE: &str = "steward_staff";
/// Where it is sent: the console only.
const CONSOLE_PATH: &str = "/console";
/// How far ahead the queue looks: every open request.
const QUEUE_MS: i64 = 3_650 * 86_400_000;
/// A deadline this close is marked due soon (as on the deadline board).
const SOON_MS: i64 = 7 * 86_400_000;

#[derive(Template)]
#[template(path = "console_signin.html")]
struct SignIn {
    frame: Frame,
    username: String,
    error: Option<String>,
}

/// One bar of the chart of open requests by days left.
struct Bar {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    class: &'static str,
    label: String,
    label_x: u32,
    count: usize,
    count_y: u32,
}

/// The chart, drawn on the server as SVG.
struct Chart {
    title: String,
    width: u32,
    height: u32,
    label_y: u32,
    bars: Vec<Bar>,
}

/// One row of the queue.
struct Row {
    id: String,
    kind: String,
    state: String,
    due: String,
    flag: String,
    class: &'static str,
}

#[derive(Template)]
#[template(path = "console_queue.html")]
struct Queue {
    frame: Frame,
    chart: Chart,
    rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "console_request.html")]
struct Request {
    frame: Frame,
    heading: String,
    id: String,
    kind: String,
    kind_key: String,
    categories: Vec<(String, String)>,
    state: String,
    state_text: String,
    subject: String,
    received: String,
    due: String,
    verification: String,
    outcome: Option<String>,
    /// Each step: the state's words, its time (RFC 3339 and as shown), and who.
    steps: Vec<(String, String, String, String)>,
    /// Where it stands in each of the provider's databases and external systems, in words.
    systems: Vec<String>,
    /// The external systems whose answer it still waits for: staff may record one that came
    /// another way.
    awaiting: Vec<String>,
    open: bool,
    reasons: Vec<(&'static str, String)>,
    notice: Option<String>,
    error: Option<String>,
}

/// A signed-in staff member: their words, session token and who they act as.
struct Staff {
    t: Texts,
    token: String,
    actor: Actor,
}

impl Staff {
    fn frame(&self, state: &AppState, title: &str, here: &'static str) -> Frame {
        let mut f = frame(
            state,
            self.t,
            title,
            true,
            state.vault.form_token(&self.token),
        );
        f.here = here;
        f.area = "console";
        f
    }
}

async fn staff(
    state: &AppState,
    headers: &HeaderMap,
    query: &Option<String>,
    here: &'static str,
) -> Result<Staff, Response> {
    if let Some(r) = switched(query, here, state.secure_cookies) {
        return Err(r);
    }
    let t = language(headers, &state.vault.policy().language);
    let Some(token) = cookie(headers, STAFF_COOKIE).filter(|t| t.starts_with("stf_")) else {
        return Err(redirect("/console", &[]));
    };
    let vault = &state.vault;
    match crate::api::blocking(vault, || vault.authenticate(&token)) {
        Ok(actor) => Ok(Staff { t, token, actor }),
        Err(_) => Err(redirect("/console", &[])),
    }
}

/// `GET /console`: sign-in, or the queue for a staff member signed in.
pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = switched(&query, "/console", state.secure_cookies) {
        return r;
    }
    if staff(&state, &headers, &None, "/console").await.is_ok() {
        return redirect("/console/queue", &[]);
    }
    let t = language(&headers, &state.vault.policy().language);
    let (seed, new) = seed(&state, &headers, CONSOLE_PATH);
    let mut f = frame(
        &state,
        t,
        "console-signin-title",
        false,
        state.vault.form_token(&seed),
    );
    f.area = "console";
    let r = page(
        StatusCode::OK,
        SignIn {
            frame: f,
            username: String::new(),
            error: None,
        }
        .render(),
    );
    super::with_cookie(r, new)
}

/// `POST /console/session`: signs a staff member in (the API's limits on failures apply) and
/// keeps the session in an `HttpOnly; SameSite=Strict` cookie sent to `/console` only.
pub async fn session(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (t, fields, seed) = match anonymous_post(&state, &headers, &body, CONSOLE_PATH) {
        Ok(posted) => posted,
        Err(r) => return *r,
    };
    let username = field(&fields, "username").trim().to_string();
    let password = field(&fields, "password").to_string();
    let vault = &state.vault;
    let signed =
        crate::api::staff_session(&state, username.clone(), password, addr.0.ip().to_string())
            .await;
    match signed {
        Ok(s) => redirect(
            "/console/queue",
            &[set_cookie(
                STAFF_COOKIE,
                &s.token,
                CONSOLE_PATH,
                steward_core::STAFF_SESSION_MS / 1000,
                state.secure_cookies,
            )],
        ),
        Err(e) => {
            let error = match e {
                Error::SignInFailed => t.get("console-signin-failed"),
                ref other => said(t, other),
            };
            let mut f = frame(
                &state,
                t,
                "console-signin-title",
                false,
                vault.form_token(&seed),
            );
            f.area = "console";
            page(
                status_of(&e),
                SignIn {
                    frame: f,
                    username,
                    error: Some(error),
                }
                .render(),
            )
        }
    }
}

/// The chart of open requests by days left: overdue, this week, next week, this month, later.
fn chart(t: Texts, open: &[RightsRequest], now_ms: i64) -> Chart {
    let buckets: [(&str, &'static str, i64, i64); 5] = [
        ("console-chart-overdue", "overdue", i64::MIN, 0),
        ("console-chart-week", "soon", 0, 8),
        ("console-chart-fortnight", "later", 8, 15),
        ("console-chart-month", "later", 15, 31),
        ("console-chart-later", "later", 31, i64::MAX),
    ];
    let days_left = |r: &RightsRequest| (r.due_ms - now_ms).div_euclid(86_400_000);
    let counts: Vec<usize> = buckets
        .iter()
        .map(|(_, _, from, to)| {
            open.iter()
                .filter(|r| (*from..*to).contains(&days_left(r)))
                .count()
        })
        .collect();
    let most = counts.iter().copied().max().unwrap_or(0).max(1);
    let (width, plot, top) = (500u32, 140u32, 20u32);
    let slot = width / 5;
    let bars = buckets
        .iter()
        .zip(&counts)
        .enumerate()
        .map(|(i, ((label, class, _, _), count))| {
            let h = u32::try_from(*count * plot as usize / most).unwrap_or(plot);
            let x = u32::try_from(i).unwrap_or(0) * slot + 10;
            Bar {
                x,
                y: top + plot - h,
                w: slot - 20,
                h,
                class,
                label: t.get(label),
                label_x: x + (slot - 20) / 2,
                count: *count,
                count_y: (top + plot - h).saturating_sub(4).max(12),
            }
        })
        .collect();
    Chart {
        title: t.get("console-chart"),
        width,
        height: top + plot + 24,
        label_y: top + plot + 18,
        bars,
    }
}

/// `GET /console/queue`: open requests, the nearest deadline first, overdue and due soon
/// marked, with the chart of how many are left by days (P31, P32).
pub async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let who = match staff(&state, &headers, &query, "/console/queue").await {
        Ok(who) => who,
        Err(r) => return r,
    };
    let vault = &state.vault;
    let open = match crate::api::blocking(vault, || vault.requests_due(&who.actor, QUEUE_MS)) {
        Ok(open) => open,
        Err(e) => return forbidden(&state, &who, &e),
    };
    let now = vault.now_ms();
    let t = who.t;
    let mut open = open;
    open.sort_by_key(|r| r.due_ms);
    let rows = open
        .iter()
        .map(|r| {
            let (class, flag) = if r.overdue {
                ("overdue", t.get("request-overdue"))
            } else if r.due_ms - now <= SOON_MS {
                ("soon", t.get("console-due-soon"))
            } else {
                ("", String::new())
            };
            Row {
                id: r.id.clone(),
                kind: t.get(&format!("kind-{}", r.kind)),
                state: t.get(&format!("state-{}", r.state)),
                due: day(&r.due_at).to_string(),
                flag,
                class,
            }
        })
        .collect();
    page(
        StatusCode::OK,
        Queue {
            frame: who.frame(&state, "console-queue", "queue"),
            chart: chart(t, &open, now),
            rows,
        }
        .render(),
    )
}

/// What a role may not see or do: said, and nothing shown.
/// A form posted on a staff member's page: theirs (same origin, their session's token), with
/// its fields; or the page to answer with instead.
async fn staff_post(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    here: &'static str,
) -> Result<(Staff, Vec<(String, String)>), Response> {
    let who = staff(state, headers, &None, here).await?;
    let fields = form(body);
    if !genuine(state, headers, &fields, &who.token) {
        return Err(refused(state, who.t));
    }
    Ok((who, fields))
}

/// What a staff member is told when the core refuses: their role may not, or what went wrong.
fn staff_error(t: Texts, e: &Error) -> String {
    match e.code().as_str() {
        "operation_not_permitted" | "role_not_permitted" => t.get("console-not-permitted"),
        _ => e.to_string(),
    }
}

fn forbidden(state: &AppState, who: &Staff, e: &Error) -> Response {
    let message = match e.code().as_str() {
        "operation_not_permitted" | "role_not_permitted" => who.t.get("console-not-permitted"),
        _ => said(who.t, e),
    };
    super::message(who.frame(state, "error-title", ""), status_of(e), message)
}

fn request_page(
    state: &AppState,
    who: &Staff,
    id: &str,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let vault = &state.vault;
    let (r, steps) = match crate::api::blocking(vault, || {
        Ok((
            vault.request(&who.actor, id)?,
            vault.request_steps(&who.actor, id)?,
        ))
    }) {
        Ok(r) => r,
        Err(e) => return forbidden(state, who, &e),
    };
    let t = who.t;
    let steps = steps
        .into_iter()
        .map(|s| {
            let by = match s.actor.as_str() {
                "" => t.get("actor-unknown"),
                "subject" => t.get("actor-subject"),
                "system" => t.get("actor-system"),
                other => other.to_string(),
            };
            // `YYYY-MM-DD HH:MM` from the RFC 3339 time.
            let shown = s.at.get(..16).unwrap_or(&s.at).replacen('T', " ", 1);
            (t.get(&format!("state-{}", s.state)), s.at, shown, by)
        })
        .collect();
    let outcome = r.outcome.as_ref().map(|o| {
        match o
            .get("refused")
            .or_else(|| o.get("refused_in_part"))
            .and_then(|v| v.as_str())
        {
            Some(reason) => t.with(
                "request-reason",
                &[("reason", &t.get(&format!("reason-{reason}")))],
            ),
            None => o.to_string(),
        }
    });
    let systems = r
        .systems
        .iter()
        .map(|s| {
            let mut line = t.with(
                "console-system-line",
                &[
                    ("system", &s.system),
                    ("state", &t.get(&format!("system-state-{}", s.state))),
                ],
            );
            let next = s
                .next_at
                .as_deref()
                .map(|n| n.get(..16).unwrap_or(n).replacen('T', " ", 1))
                .unwrap_or_else(|| "-".into());
            if s.state == "asked" {
                line.push_str(&t.with(
                    "console-system-asked",
                    &[("attempts", &s.attempts.to_string()), ("next", &next)],
                ));
            } else if !s.reason.is_empty() {
                line.push_str(&t.with(
                    "console-system-reason",
                    &[
                        ("reason", &s.reason),
                        ("attempts", &s.attempts.to_string()),
                        ("next", &next),
                    ],
                ));
            }
            line
        })
        .collect();
    let open = matches!(r.state.as_str(), "received" | "verified" | "in_progress");
    let awaiting = r
        .systems
        .iter()
        .filter(|s| matches!(s.state.as_str(), "asked" | "waiting"))
        // External systems: the ones asked through an endpoint.
        .filter(|s| {
            state
                .vault
                .datasets()
                .is_some_and(|f| f.endpoint(&s.system).is_some())
        })
        .map(|s| s.system.clone())
        .collect();
    page(
        status,
        Request {
            frame: who.frame(state, "console-queue", "queue"),
            heading: t.with("console-request", &[("id", &r.id)]),
            kind: t.get(&format!("kind-{}", r.kind)),
            categories: state
                .vault
                .policy()
                .categories
                .iter()
                .map(|c| (c.name.clone(), c.described(t.lang).to_string()))
                .collect(),
            kind_key: r.kind.clone(),
            state_text: t.get(&format!("state-{}", r.state)),
            subject: r.subject.clone(),
            received: day(&r.received_at).to_string(),
            due: day(&r.due_at).to_string(),
            verification: r.verification.clone(),
            outcome,
            steps,
            systems,
            awaiting,
            open,
            reasons: steward_core::REFUSAL_REASONS
                .iter()
                .map(|k| (*k, t.get(&format!("reason-{k}"))))
                .collect(),
            notice,
            error,
            id: r.id,
            state: r.state,
        }
        .render(),
    )
}

/// `GET /console/requests/{id}`: a request, and what may be done with it next.
pub async fn request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match staff(&state, &headers, &None, "/console/queue").await {
        Ok(who) => request_page(&state, &who, &id, StatusCode::OK, None, None),
        Err(r) => r,
    }
}

/// `POST /console/requests/{id}/{verify|complete|refuse|answer}`: moves the request on, or
/// records an external system's answer, as the API would under the staff member's role.
pub async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, what)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let (who, fields) = match staff_post(&state, &headers, &body, "/console/queue").await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let vault = &state.vault;
    let note = field(&fields, "note");
    let done = crate::api::blocking(vault, || match what.as_str() {
        "verify" => vault
            .verify_request(&who.actor, &id, field(&fields, "method"))
            .map(|_| ()),
        "complete" => {
            let justification = field(&fields, "justification").trim();
            // A correction's new value, where the form gave one.
            let (category, value) = (field(&fields, "category"), field(&fields, "value"));
            let corrections: Vec<(&str, &str)> = if category.is_empty() || value.is_empty() {
                Vec::new()
            } else {
                vec![(category, value)]
            };
            vault
                .complete_request(
                    &who.actor,
                    &id,
                    &Closing {
                        note,
                        justification: (!justification.is_empty()).then_some(justification),
                        corrections: &corrections,
                    },
                )
                .map(|_| ())
        }
        "refuse" => vault
            .refuse_request(&who.actor, &id, field(&fields, "reason"), note)
            .map(|_| ()),
        // An external system's answer that came another way (docs/datasets.md).
        "answer" => {
            let mut answer = serde_json::json!({
                "system": field(&fields, "system"),
                "status": field(&fields, "status"),
            });
            let reason = field(&fields, "failure").trim();
            if !reason.is_empty()
                && let Some(map) = answer.as_object_mut()
            {
                map.insert("reason".into(), serde_json::json!(reason));
            }
            vault
                .record_system_answer(&who.actor, &id, &answer)
                .map(|_| ())
        }
        _ => Err(Error::NotFound(steward_core::Missing::Request)),
    });
    match done {
        Ok(()) => request_page(
            &state,
            &who,
            &id,
            StatusCode::OK,
            Some(who.t.get("console-done")),
            None,
        ),
        Err(e) => {
            let message = staff_error(who.t, &e);
            request_page(&state, &who, &id, status_of(&e), None, Some(message))
        }
    }
}

/// `POST /console/sign-out`: ends the staff session and forgets its cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let t = language(&headers, &state.vault.policy().language);
    let fields = form(&body);
    let token = cookie(&headers, STAFF_COOKIE).unwrap_or_default();
    if !genuine(&state, &headers, &fields, &token) {
        return refused(&state, t);
    }
    let vault = &state.vault;
    if crate::api::blocking(vault, || vault.staff_sign_out(&token)).is_err() {
        tracing::warn!("a staff session could not be ended");
    }
    redirect(
        "/console",
        &[set_cookie(
            STAFF_COOKIE,
            "",
            CONSOLE_PATH,
            0,
            state.secure_cookies,
        )],
    )
}

/// One clock on the board.
struct Clock {
    what: String,
    id: String,
    link: bool,
    due: String,
    days: i64,
    status: String,
    class: &'static str,
}

#[derive(Template)]
#[template(path = "console_deadlines.html")]
struct Deadlines {
    frame: Frame,
    rows: Vec<Clock>,
}

/// How far ahead the board looks.
const BOARD_MS: i64 = 30 * 86_400_000;

/// `GET /console/deadlines`: every clock the staff member's role may see running in the next
/// 30 days, the nearest first (P32): requests, holds ending, erasures, retention, policy
/// versions, incident reports, disclosure notices.
pub async fn deadlines(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let who = match staff(&state, &headers, &query, "/console/deadlines").await {
        Ok(who) => who,
        Err(r) => return r,
    };
    let vault = &state.vault;
    let board = match crate::api::blocking(vault, || vault.deadlines(Some(&who.actor), BOARD_MS)) {
        Ok(board) => board,
        Err(e) => return forbidden(&state, &who, &e),
    };
    let t = who.t;
    let rows = board
        .into_iter()
        .map(|d| Clock {
            what: t.get(&format!("deadline-{}", d.kind)),
            link: matches!(d.kind.as_str(), "request" | "inquiry"),
            due: day(&d.due_at).to_string(),
            days: d.days_left,
            status: t.get(&format!("deadline-status-{}", d.status)),
            class: match d.status.as_str() {
                "overdue" => "overdue",
                "due_soon" => "soon",
                _ => "",
            },
            id: d.id,
        })
        .collect();
    page(
        StatusCode::OK,
        Deadlines {
            frame: who.frame(&state, "console-deadlines", "deadlines"),
            rows,
        }
        .render(),
    )
}

#[derive(Template)]
#[template(path = "console_audit.html")]
struct Audit {
    frame: Frame,
    entries: String,
    checkpoint: String,
    notice: Option<String>,
    error: Option<String>,
}

fn audit_page(
    state: &AppState,
    who: &Staff,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let vault = &state.vault;
    let read = crate::api::blocking(vault, || {
        vault.audit_access(&who.actor, "status")?;
        let (head, _) = vault.store().audit_head()?;
        Ok::<_, Error>((head, vault.store().checkpoints()?))
    });
    let (head, checkpoints) = match read {
        Ok(found) => found,
        Err(e) => return forbidden(state, who, &e),
    };
    let t = who.t;
    let checkpoint = match checkpoints.last() {
        Some(c) => t.with(
            "console-audit-checkpoint",
            &[
                ("seq", &c.seq.to_string()),
                ("at", &steward_core::clock::rfc3339(c.at_ms)),
            ],
        ),
        None => t.get("console-audit-none"),
    };
    page(
        status,
        Audit {
            frame: who.frame(state, "console-audit", "audit"),
            entries: t.with("console-audit-entries", &[("n", &head.to_string())]),
            checkpoint,
            notice,
            error,
        }
        .render(),
    )
}

/// `GET /console/audit`: how long the log is and its last signed checkpoint (`audit`).
pub async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match staff(&state, &headers, &query, "/console/audit").await {
        Ok(who) => audit_page(&state, &who, StatusCode::OK, None, None),
        Err(r) => r,
    }
}

/// `POST /console/audit`: verifies the whole log now — every entry's hash and link, every
/// signed checkpoint — as `steward audit verify` does, and says what it found.
pub async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (who, _) = match staff_post(&state, &headers, &body, "/console/audit").await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let vault = &state.vault;
    let checked = crate::api::blocking(vault, || {
        vault.audit_access(&who.actor, "verify")?;
        steward_core::evidence::verify_store(
            vault.store(),
            vault.public_key(),
            Vec::new(),
            &mut |_| {},
        )
    });
    let t = who.t;
    match checked {
        Ok(Ok(report)) => {
            let n = report.entries.to_string();
            let notice = t.with("console-audit-ok", &[("n", &n)]);
            audit_page(&state, &who, StatusCode::OK, Some(notice), None)
        }
        Ok(Err(fault)) => {
            let why = fault.to_string();
            let error = t.with("console-audit-failed", &[("why", &why)]);
            audit_page(&state, &who, StatusCode::OK, None, Some(error))
        }
        Err(e) => forbidden(&state, &who, &e),
    }
}

/// One hold as the holds page shows it.
struct HoldRow {
    id: String,
    reason: String,
    categories: String,
    until: String,
    reference: Option<String>,
    lifted: Option<String>,
}

#[derive(Template)]
#[template(path = "console_holds.html")]
struct Holds {
    frame: Frame,
    subject: String,
    shown: bool,
    holds: Vec<HoldRow>,
    categories: Vec<(String, String)>,
    reasons: Vec<(&'static str, String)>,
    notice: Option<String>,
    error: Option<String>,
}

fn holds_page(
    state: &AppState,
    who: &Staff,
    status: StatusCode,
    subject: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let t = who.t;
    let vault = &state.vault;
    let (shown, holds, error) = match subject.parse::<steward_core::SubjectId>() {
        Err(_) => (false, Vec::new(), error),
        Ok(s) => match crate::api::blocking(vault, || vault.holds(&who.actor, s)) {
            Ok(found) => (true, found, error),
            Err(e) if e.code().as_str() == "operation_not_permitted" => {
                return forbidden(state, who, &e);
            }
            Err(e) => (false, Vec::new(), error.or(Some(said(t, &e)))),
        },
    };
    let policy = vault.policy();
    let described = |name: &str| super::category_title(policy, name, t.lang);
    let holds = holds
        .into_iter()
        .map(|h| HoldRow {
            reason: t.get(&format!("hold-reason-{}", h.reason)),
            categories: if h.categories.is_empty() {
                t.get("console-hold-everything")
            } else {
                h.categories
                    .iter()
                    .map(|c| described(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            until: t.with(
                "console-hold-held-until",
                &[(
                    "at",
                    &h.until.get(..16).unwrap_or(&h.until).replace('T', " "),
                )],
            ),
            reference: h.reference,
            lifted: h
                .lifted_at
                .map(|at| t.with("console-hold-lifted", &[("at", day(&at))])),
            id: h.id,
        })
        .collect();
    page(
        status,
        Holds {
            frame: who.frame(state, "console-holds", "holds"),
            subject: subject.to_string(),
            shown,
            holds,
            categories: policy
                .categories
                .iter()
                .map(|c| (c.name.clone(), c.described(t.lang).to_string()))
                .collect(),
            reasons: steward_core::HOLD_REASONS
                .iter()
                .map(|r| (*r, t.get(&format!("hold-reason-{r}"))))
                .collect(),
            notice,
            error,
        }
        .render(),
    )
}

/// `GET /console/holds`: the forms to place a hold and to see a subject's holds (P18;
/// `holds.manage`). A subject's id goes in a form's body, never the URL.
pub async fn holds(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let who = match staff(&state, &headers, &query, "/console/holds").await {
        Ok(who) => who,
        Err(r) => return r,
    };
    let vault = &state.vault;
    if let Err(e) = vault.permit_holds(&who.actor) {
        return forbidden(&state, &who, &e);
    }
    holds_page(&state, &who, StatusCode::OK, "", None, None)
}

/// `POST /console/holds`: `do` = `show` (a subject's holds), `place` (a hold on the subject,
/// its categories, reason, reference and end date) or `lift` (one hold, early).
pub async fn hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (who, fields) = match staff_post(&state, &headers, &body, "/console/holds").await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let t = who.t;
    let subject = field(&fields, "subject").trim().to_string();
    let vault = &state.vault;
    let done = match field(&fields, "do") {
        "show" => Ok(None),
        "place" => {
            let categories: Vec<&str> = fields
                .iter()
                .filter(|(k, _)| k == "category")
                .map(|(_, v)| v.as_str())
                .collect();
            let until = super::end_of_day_ms(field(&fields, "until"));
            crate::api::blocking(vault, || {
                let s = subject
                    .parse()
                    .map_err(|_| Error::Invalid("a subject id is a UUID".into()))?;
                let until = until.ok_or(Error::Invalid("an end date is YYYY-MM-DD".into()))?;
                vault.place_hold(
                    &who.actor,
                    s,
                    &categories,
                    field(&fields, "reason"),
                    field(&fields, "reference"),
                    until,
                )
            })
            .map(|_| Some(t.get("console-done")))
        }
        "lift" => crate::api::blocking(vault, || {
            vault.lift_hold(&who.actor, field(&fields, "hold"))
        })
        .map(|_| Some(t.get("console-done"))),
        _ => Err(Error::Invalid(String::new())),
    };
    match done {
        Ok(notice) => holds_page(&state, &who, StatusCode::OK, &subject, notice, None),
        Err(e) => {
            let message = staff_error(t, &e);
            holds_page(&state, &who, status_of(&e), &subject, None, Some(message))
        }
    }
}

/// One incident as the incidents page shows it.
struct IncidentRow {
    id: String,
    title: String,
    meta: String,
    affected: String,
    by_category: Vec<String>,
    clocks: Vec<(String, &'static str)>,
    notified: String,
    /// What was done, oldest first, as shown.
    timeline: Vec<String>,
}

#[derive(Template)]
#[template(path = "console_incidents.html")]
struct Incidents {
    frame: Frame,
    incidents: Vec<IncidentRow>,
    /// The steps staff may record, with their words.
    step_kinds: Vec<(&'static str, String)>,
    /// The policy's reports (name, authority).
    regimes: Vec<(String, String)>,
    /// Report parts, with their words.
    parts: Vec<(&'static str, String)>,
    notice: Option<String>,
    error: Option<String>,
}

/// `GET /console/incidents`: every incident, newest first, with its affected counts by
/// category, each report's clock and status, and how its notices stand (P22;
/// `incidents.manage`).
pub async fn incidents(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match staff(&state, &headers, &query, "/console/incidents").await {
        Ok(who) => incidents_page(&state, &who, StatusCode::OK, None, None),
        Err(r) => r,
    }
}

/// `POST /console/incidents/{id}/{step|report|notify}`: records a step of the incident's
/// handling, a report filed with an authority, or starts telling the people affected — as
/// the API would under the staff member's role (`incidents.manage`).
pub async fn incident_act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, what)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let (who, fields) = match staff_post(&state, &headers, &body, "/console/incidents").await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let vault = &state.vault;
    let actor = Some(&who.actor);
    let done = crate::api::blocking(vault, || match what.as_str() {
        "step" => vault.incident_step(
            actor,
            &id,
            field(&fields, "kind"),
            field(&fields, "text").trim(),
        ),
        "report" => vault.file_report(actor, &id, field(&fields, "regime"), field(&fields, "part")),
        "notify" => vault.notify_incident(actor, &id),
        _ => Err(Error::NotFound(steward_core::Missing::Incident)),
    });
    match done {
        Ok(_) => incidents_page(
            &state,
            &who,
            StatusCode::OK,
            Some(who.t.get("console-done")),
            None,
        ),
        Err(e) => {
            let message = staff_error(who.t, &e);
            incidents_page(&state, &who, status_of(&e), None, Some(message))
        }
    }
}

fn incidents_page(
    state: &AppState,
    who: &Staff,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let vault = &state.vault;
    let all = match crate::api::blocking(vault, || vault.incidents(Some(&who.actor))) {
        Ok(all) => all,
        Err(e) => return forbidden(state, who, &e),
    };
    let t = who.t;
    let policy = vault.policy();
    let described = |name: &str| super::category_title(policy, name, t.lang);
    let incidents = all
        .into_iter()
        .rev()
        .map(|i| IncidentRow {
            meta: t.with(
                "console-incident-meta",
                &[
                    ("grade", &i.grade),
                    ("state", &t.get(&format!("incident-state-{}", i.state))),
                    ("detected", day(&i.detected_at)),
                ],
            ),
            affected: t.with(
                "console-incident-affected",
                &[("n", &i.affected.subjects.to_string())],
            ),
            by_category: i
                .affected
                .by_category
                .iter()
                .map(|(c, n)| format!("{}: {n}", described(c)))
                .collect(),
            clocks: i
                .clocks
                .iter()
                .map(|c| {
                    let mut line = t.with(
                        "console-incident-report",
                        &[
                            ("part", &t.get(&format!("report-part-{}", c.part))),
                            ("authority", &c.authority),
                            ("status", &t.get(&format!("report-status-{}", c.status))),
                        ],
                    );
                    if let Some(due) = &c.due_at {
                        let due = due.get(..16).unwrap_or(due).replace('T', " ");
                        line.push_str(&format!(
                            " ({} UTC)",
                            t.with("console-incident-due", &[("due", &due)])
                        ));
                    }
                    let class = match c.status.as_str() {
                        "overdue" => "flag",
                        _ => "",
                    };
                    (line, class)
                })
                .collect(),
            notified: t.with(
                "console-incident-notified",
                &[
                    ("notified", &i.notification.notified.to_string()),
                    ("failed", &i.notification.failed.to_string()),
                    ("pending", &i.notification.pending.to_string()),
                    ("skipped", &i.notification.skipped.to_string()),
                ],
            ),
            timeline: i
                .timeline
                .iter()
                .map(|s| {
                    let at = s.at.get(..16).unwrap_or(&s.at).replacen('T', " ", 1);
                    let kind = t.get(&format!("step-kind-{}", s.kind));
                    format!("{at} UTC · {kind} · {}: {}", s.by, s.text)
                })
                .collect(),
            id: i.id,
            title: i.title,
        })
        .collect();
    page(
        status,
        Incidents {
            frame: who.frame(state, "console-incidents", "incidents"),
            incidents,
            step_kinds: steward_core::incidents::STEP_KINDS
                .iter()
                .map(|k| (*k, t.get(&format!("step-kind-{k}"))))
                .collect(),
            regimes: policy
                .incidents
                .reports
                .iter()
                .map(|r| (r.name.clone(), r.authority.clone()))
                .collect(),
            parts: steward_core::incidents::REPORT_PARTS
                .iter()
                .map(|p| (*p, t.get(&format!("report-part-{p}"))))
                .collect(),
            notice,
            error,
        }
        .render(),
    )
}

#[derive(Template)]
#[template(path = "console_outbox.html")]
struct Outbox {
    frame: Frame,
    dead: Vec<(String, String)>,
    pending: Vec<String>,
    notice: Option<String>,
    error: Option<String>,
}

/// How many messages of each state the outbox page lists.
const OUTBOX_ROWS: usize = 100;

fn outbox_page(
    state: &AppState,
    who: &Staff,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let vault = &state.vault;
    let listed = crate::api::blocking(vault, || {
        let dead = vault.outbox(Some(&who.actor), Some("dead"), OUTBOX_ROWS)?;
        let pending = vault.outbox(Some(&who.actor), Some("pending"), OUTBOX_ROWS)?;
        Ok::<_, Error>((dead, pending))
    });
    let (dead, pending) = match listed {
        Ok(found) => found,
        Err(e) => return forbidden(state, who, &e),
    };
    let t = who.t;
    let line = |m: &steward_core::Message| {
        t.with(
            "console-outbox-line",
            &[
                ("event", &m.event),
                ("channel", &m.channel),
                ("destination", &m.destination),
                ("attempts", &m.attempts.to_string()),
                ("error", &m.last_error),
            ],
        )
    };
    page(
        status,
        Outbox {
            frame: who.frame(state, "console-outbox", "outbox"),
            dead: dead.iter().map(|m| (m.id.clone(), line(m))).collect(),
            pending: pending.iter().map(line).collect(),
            notice,
            error,
        }
        .render(),
    )
}

/// `GET /console/outbox`: the messages given up on, each with a button to send it again, and
/// those waiting (P26; `outbox.manage`).
pub async fn outbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match staff(&state, &headers, &query, "/console/outbox").await {
        Ok(who) => outbox_page(&state, &who, StatusCode::OK, None, None),
        Err(r) => r,
    }
}

/// `POST /console/outbox`: sends a message given up on again (`message`).
pub async fn retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (who, fields) = match staff_post(&state, &headers, &body, "/console/outbox").await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let vault = &state.vault;
    match crate::api::blocking(vault, || {
        vault.retry_message(Some(&who.actor), field(&fields, "message"))
    }) {
        Ok(_) => outbox_page(
            &state,
            &who,
            StatusCode::OK,
            Some(who.t.get("console-done")),
            None,
        ),
        Err(e) => outbox_page(&state, &who, status_of(&e), None, Some(said(who.t, &e))),
    }
}

#[derive(Template)]
#[template(path = "console_versions.html")]
struct Versions {
    frame: Frame,
    versions: Vec<(String, Vec<String>)>,
    text: String,
    notice: Option<String>,
    error: Option<String>,
}

fn versions_page(
    state: &AppState,
    who: &Staff,
    status: StatusCode,
    text: String,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let vault = &state.vault;
    if let Err(e) = vault.permit_policy(&who.actor) {
        return forbidden(state, who, &e);
    }
    let t = who.t;
    let versions = vault
        .versions()
        .into_iter()
        .rev()
        .map(|v| {
            let mut head = t.with(
                "console-version-line",
                &[
                    ("version", &v.version),
                    ("status", &t.get(&format!("version-status-{}", v.status))),
                    ("effective", day(&v.effective_at)),
                ],
            );
            if v.material {
                head.push_str(&format!(" · {}", t.get("console-version-material")));
            }
            let changes = v
                .changes
                .iter()
                .map(|c| {
                    format!(
                        "[{}] {}: {}",
                        t.get(&format!("console-change-class-{}", c.class)),
                        c.path,
                        c.summary
                    )
                })
                .collect();
            (head, changes)
        })
        .collect();
    page(
        status,
        Versions {
            frame: who.frame(state, "console-versions", "versions"),
            versions,
            text,
            notice,
            error,
        }
        .render(),
    )
}

/// `GET /console/versions`: every version with its classified changes, and the form to publish
/// a new one (P29; `policy.publish`).
pub async fn versions(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match staff(&state, &headers, &query, "/console/versions").await {
        Ok(who) => versions_page(&state, &who, StatusCode::OK, String::new(), None, None),
        Err(r) => r,
    }
}

/// `POST /console/versions`: publishes a new version (`text`, and `effective`, a date): checked,
/// classified against the one before, refused inside the notice period when material, as
/// `POST /v1/policy/versions` does.
pub async fn publish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (who, fields) = match staff_post(&state, &headers, &body, "/console/versions").await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let text = field(&fields, "text").to_string();
    let effective = field(&fields, "effective").trim().to_string();
    let vault = &state.vault;
    let published = crate::api::blocking(vault, || {
        let effective = if effective.is_empty() {
            None
        } else {
            Some(steward_core::versions::parse_day(&effective)?)
        };
        vault.publish_policy(Some(&who.actor), &text, effective)
    });
    let t = who.t;
    match published {
        Ok(v) => {
            let notice = t.with(
                "console-published",
                &[("version", &v.version), ("effective", day(&v.effective_at))],
            );
            versions_page(
                &state,
                &who,
                StatusCode::CREATED,
                String::new(),
                Some(notice),
                None,
            )
        }
        // The message says what is wrong (every problem of a text that does not validate, the
        // soonest date allowed): the staff member's own input, shown back to them.
        Err(e) => versions_page(&state, &who, status_of(&e), text, None, Some(e.to_string())),
    }
}

#[derive(Template)]
#[template(path = "console_disclosures.html")]
struct Disclosures {
    frame: Frame,
    subject: String,
    shown: bool,
    rows: Vec<(String, Option<String>)>,
    error: Option<String>,
}

fn disclosures_page(
    state: &AppState,
    who: &Staff,
    subject: &str,
    error: Option<String>,
) -> Response {
    let vault = &state.vault;
    let t = who.t;
    let mut status = StatusCode::OK;
    let (shown, rows, error) = match subject.parse::<steward_core::SubjectId>() {
        Err(_) => (false, Vec::new(), error),
        Ok(s) => match crate::api::blocking(vault, || vault.disclosures_of(&who.actor, s)) {
            Ok(found) => (true, found, error),
            Err(e) if e.code().as_str() == "operation_not_permitted" => {
                return forbidden(state, who, &e);
            }
            Err(e) => {
                status = status_of(&e);
                (false, Vec::new(), Some(staff_error(t, &e)))
            }
        },
    };
    let policy = vault.policy();
    let rows = rows
        .into_iter()
        .rev()
        .map(|(d, until)| {
            let categories = d
                .categories
                .iter()
                .map(|c| super::category_title(policy, c, t.lang))
                .collect::<Vec<_>>()
                .join("、");
            let why = if d.legal_basis.is_empty() {
                policy
                    .purpose_id(&d.purpose)
                    .map_or(d.purpose.clone(), |p| {
                        policy.purpose(p).described(t.lang).to_string()
                    })
            } else {
                match &d.reference {
                    Some(r) => format!("{} ({r})", d.legal_basis),
                    None => d.legal_basis.clone(),
                }
            };
            let line = t.with(
                "console-disclosure-line",
                &[
                    ("at", day(&d.at)),
                    ("recipient", &d.recipient),
                    ("categories", &categories),
                    ("why", &why),
                ],
            );
            let until =
                until.map(|u| t.with("console-disclosure-restricted", &[("until", day(&u))]));
            (line, until)
        })
        .collect();
    page(
        status,
        Disclosures {
            frame: who.frame(state, "console-disclosures", "disclosures"),
            subject: subject.to_string(),
            shown,
            rows,
            error,
        }
        .render(),
    )
}

/// `GET /console/disclosures`: the form to see a subject's disclosures (P12, P15; `audit`).
pub async fn disclosures(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match staff(&state, &headers, &query, "/console/disclosures").await {
        Ok(who) => disclosures_page(&state, &who, "", None),
        Err(r) => r,
    }
}

/// `POST /console/disclosures`: a subject's disclosures, newest first (the subject's id in the
/// form's body, never the URL; the look audited).
pub async fn show_disclosures(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (who, fields) = match staff_post(&state, &headers, &body, "/console/disclosures").await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    disclosures_page(&state, &who, field(&fields, "subject").trim(), None)
}
