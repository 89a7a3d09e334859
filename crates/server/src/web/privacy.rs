//! The privacy centre (`/privacy`, `docs/web.md`): a subject signs in with a code emailed to
//! them and sees what is held about them by category (with what each is used for, who it may
//! go to and how long it is kept), keeps a copy, gives and withdraws consent, makes and follows
//! requests, reads the statement and accepts a new version. Every step is the self-service
//! API's core operation, with its audit and limits: the code (`otp.send`, limited per address
//! and client), the sign-in (`otp.verify`), each view of the data (`subject.export`), consent
//! (`consent.grant` / `consent.withdraw`), requests (`request.open`), acceptance
//! (`policy.accept`), the sign-out (`session.end`).

use askama::Template;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use steward_core::{Error, Export, SubjectId};

use super::{Texts, cookie, day, field, form, language, page, redirect, same_origin, set_cookie};
use crate::api::AppState;
use crate::tls::ClientAddr;

/// The cookie holding a signed-in subject's session token.
const SESSION_COOKIE: &str = "steward_session";
/// Where the session cookie is sent: the privacy centre only.
const SESSION_PATH: &str = "/privacy";

/// What every page's frame shows.
pub struct Frame {
    /// The page's words.
    pub t: Texts,
    /// The page's title.
    pub title: String,
    /// The statement's name (the provider's site).
    pub site: String,
    /// A subject is signed in (the sign-out button shows).
    pub signed_in: bool,
    /// Which page of the site this is (`data`, `consents`, `requests`, `queue`), marked in
    /// the navigation.
    pub here: &'static str,
    /// Which site: `privacy` (the privacy centre) or `console` (the staff console).
    pub area: &'static str,
    /// The token the page's forms carry.
    pub form: String,
}

#[derive(Template)]
#[template(path = "privacy_signin.html")]
struct SignIn {
    frame: Frame,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "privacy_code.html")]
struct Code {
    frame: Frame,
    intro: String,
    email: String,
    error: Option<String>,
}

impl Code {
    fn new(frame: Frame, email: String, error: Option<String>) -> Code {
        Code {
            intro: frame.t.with("code-intro", &[("email", &email)]),
            frame,
            email,
            error,
        }
    }
}

/// One value held, as the data page lists it.
struct Held {
    value: String,
    meta: String,
}

/// One category held.
struct Category {
    title: String,
    values: Vec<Held>,
    purposes: Vec<String>,
    recipients: Vec<String>,
    retention: String,
}

#[derive(Template)]
#[template(path = "privacy_data.html")]
struct Data {
    frame: Frame,
    categories: Vec<Category>,
}

/// Who is asking: the words of their language, their session if any.
struct Visit {
    t: Texts,
    session: Option<(String, SubjectId)>,
}

async fn visit(state: &AppState, headers: &HeaderMap) -> Visit {
    let t = language(headers, &state.vault.policy().language);
    let session = match cookie(headers, SESSION_COOKIE) {
        Some(token) => {
            let vault = &state.vault;
            crate::api::blocking(vault, || vault.session_subject(&token))
                .ok()
                .map(|s| (token, s))
        }
        None => None,
    };
    Visit { t, session }
}

pub(super) fn frame(
    state: &AppState,
    t: Texts,
    title: &str,
    signed_in: bool,
    form: String,
) -> Frame {
    Frame {
        t,
        title: t.get(title),
        site: state.vault.policy().name.clone(),
        signed_in,
        here: "",
        area: "privacy",
        form,
    }
}

/// A signed-in subject's page: its words, session token and subject; or where to send a
/// browser that is not signed in (or asked to switch language).
struct Signed {
    t: Texts,
    token: String,
    subject: SubjectId,
}

async fn signed(
    state: &AppState,
    headers: &HeaderMap,
    query: &Option<String>,
    here: &'static str,
) -> Result<Signed, Response> {
    if let Some(r) = switched(query, here, state.secure_cookies) {
        return Err(r);
    }
    let v = visit(state, headers).await;
    match v.session {
        Some((token, subject)) => Ok(Signed {
            t: v.t,
            token,
            subject,
        }),
        None => Err(redirect("/privacy", &[])),
    }
}

/// A form posted on a signed-in subject's page: theirs (same origin, their session's
/// token), with its fields; or the page to answer with instead.
async fn signed_post(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    here: &'static str,
) -> Result<(Signed, Vec<(String, String)>), Response> {
    let who = signed(state, headers, &None, here).await?;
    let fields = form(body);
    if !who.genuine(state, headers, &fields) {
        return Err(refused(state, who.t));
    }
    Ok((who, fields))
}

impl Signed {
    fn frame(&self, state: &AppState, title: &str, here: &'static str) -> Frame {
        let mut f = frame(
            state,
            self.t,
            title,
            true,
            state.vault.form_token(&self.token),
        );
        f.here = here;
        f
    }

    /// A post on this subject's page is theirs: same origin, their session's token.
    fn genuine(&self, state: &AppState, headers: &HeaderMap, fields: &[(String, String)]) -> bool {
        genuine(state, headers, fields, &self.token)
    }
}

/// The language switch: `?lang=en` keeps the choice in a cookie and shows the page again
/// without it.
pub(super) fn switched(query: &Option<String>, to: &'static str, secure: bool) -> Option<Response> {
    let lang = form(query.as_deref()?.as_bytes())
        .into_iter()
        .find(|(k, _)| k == "lang")
        .map(|(_, v)| v)?;
    let lang = steward_policy::LANGUAGES.iter().find(|l| **l == lang)?;
    Some(redirect(
        to,
        &[set_cookie(
            super::LANG_COOKIE,
            lang,
            "/",
            365 * 86_400,
            secure,
        )],
    ))
}

/// The status an error answers with, as on the API.
pub(super) fn status_of(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The words for an error a subject may meet here.
pub(super) fn said(t: Texts, e: &Error) -> String {
    let id = match e.code().as_str() {
        "invalid_input" => "error-invalid_input",
        "code_invalid" | "sign_in_failed" => "error-code_invalid",
        "too_many_attempts" => "error-too_many_attempts",
        "mail_unavailable" => "error-mail_unavailable",
        "unauthenticated" => "error-signed_out",
        _ => "error-other",
    };
    t.get(id)
}

/// The form seed before sign-in: the cookie's value, or a new one to set.
pub(super) fn seed(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
) -> (String, Option<HeaderValue>) {
    match cookie(headers, super::FORM_COOKIE) {
        Some(v) if v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) => (v, None),
        _ => {
            let v = state.vault.random_hex().unwrap_or_default();
            let c = set_cookie(super::FORM_COOKIE, &v, path, 86_400, state.secure_cookies);
            (v, Some(c))
        }
    }
}

/// A form posted before sign-in (on `path`'s site): its words, its fields and the seed its
/// token was made from; or the refusal when it is not this site's own.
pub(super) fn anonymous_post(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    path: &str,
) -> Result<Posted, Box<Response>> {
    let t = language(headers, &state.vault.policy().language);
    let fields = form(body);
    let (seed, _) = seed(state, headers, path);
    if !genuine(state, headers, &fields, &seed) {
        return Err(Box::new(refused(state, t)));
    }
    Ok((t, fields, seed))
}

/// A form posted before sign-in: its words, its fields, the seed of its token.
pub(super) type Posted = (Texts, Vec<(String, String)>, String);

/// A form post is this site's own: same origin, and its token matches its seed.
pub(super) fn genuine(
    state: &AppState,
    headers: &HeaderMap,
    fields: &[(String, String)],
    seed: &str,
) -> bool {
    same_origin(headers)
        && !seed.is_empty()
        && super::same_bytes(
            field(fields, "form").as_bytes(),
            state.vault.form_token(seed).as_bytes(),
        )
}

pub(super) fn refused(state: &AppState, t: Texts) -> Response {
    // It says to reload the page the form came from.
    let f = frame(state, t, "error-title", false, String::new());
    super::message(f, StatusCode::FORBIDDEN, t.get("error-csrf"))
}

/// `GET /privacy`: the sign-in page, or the data for a subject signed in.
pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = switched(&query, "/privacy", state.secure_cookies) {
        return r;
    }
    let v = visit(&state, &headers).await;
    if v.session.is_some() {
        return redirect("/privacy/data", &[]);
    }
    let (seed, new) = seed(&state, &headers, SESSION_PATH);
    let f = frame(
        &state,
        v.t,
        "signin-title",
        false,
        state.vault.form_token(&seed),
    );
    let r = page(
        StatusCode::OK,
        SignIn {
            frame: f,
            email: String::new(),
            error: None,
        }
        .render(),
    );
    super::with_cookie(r, new)
}

/// `POST /privacy/code`: emails a code if the address is a subject's, and asks for it; the
/// page is the same whether or not it is (P25).
pub async fn code(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (t, fields, seed) = match anonymous_post(&state, &headers, &body, SESSION_PATH) {
        Ok(posted) => posted,
        Err(r) => return *r,
    };
    let email = field(&fields, "email").trim().to_string();
    let token = state.vault.form_token(&seed);
    match crate::api::code_mail(&state, &email, &addr.0.ip().to_string()) {
        Ok(()) => page(
            StatusCode::OK,
            Code::new(frame(&state, t, "code-title", false, token), email, None).render(),
        ),
        Err(e) => page(
            status_of(&e),
            SignIn {
                frame: frame(&state, t, "signin-title", false, token),
                email,
                error: Some(said(t, &e)),
            }
            .render(),
        ),
    }
}

/// `POST /privacy/session`: exchanges the code for a session, kept in an `HttpOnly;
/// SameSite=Strict` cookie sent to `/privacy` only.
pub async fn session(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (t, fields, seed) = match anonymous_post(&state, &headers, &body, SESSION_PATH) {
        Ok(posted) => posted,
        Err(r) => return *r,
    };
    let email = field(&fields, "email").trim().to_string();
    let code = field(&fields, "code").trim().to_string();
    let client = addr.0.ip().to_string();
    let vault = &state.vault;
    match crate::api::blocking(vault, || vault.sign_in(&email, &code, &client)) {
        Ok(s) => {
            let seconds = steward_core::SESSION_TTL_MS / 1000;
            redirect(
                "/privacy/data",
                &[set_cookie(
                    SESSION_COOKIE,
                    &s.token,
                    SESSION_PATH,
                    seconds,
                    state.secure_cookies,
                )],
            )
        }
        Err(e) => page(
            status_of(&e),
            Code::new(
                frame(&state, t, "code-title", false, vault.form_token(&seed)),
                email,
                Some(said(t, &e)),
            )
            .render(),
        ),
    }
}

/// `GET /privacy/data`: what is held, by category.
pub async fn data(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let who = match signed(&state, &headers, &query, "/privacy/data").await {
        Ok(who) => who,
        Err(r) => return r,
    };
    let vault = &state.vault;
    let export = match crate::api::blocking(vault, || vault.self_export(who.subject)) {
        Ok(e) => e,
        Err(_) => return redirect("/privacy", &[]),
    };
    page(
        StatusCode::OK,
        Data {
            frame: who.frame(&state, "data-title", "data"),
            categories: categories(&state, who.t, &export),
        }
        .render(),
    )
}

/// `GET /privacy/export.json`: everything held, as the API's export, to keep (P23).
pub async fn export(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let who = match signed(&state, &headers, &None, "/privacy/data").await {
        Ok(who) => who,
        Err(r) => return r,
    };
    let vault = &state.vault;
    let Ok(export) = crate::api::blocking(vault, || vault.self_export(who.subject)) else {
        return redirect("/privacy", &[]);
    };
    let body = serde_json::to_vec_pretty(&export).unwrap_or_default();
    let mut r = (
        StatusCode::OK,
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"my-data.json\"",
            ),
        ],
        body,
    )
        .into_response();
    super::protect(&mut r);
    r
}

/// A consent the subject may give or withdraw, as the consents page shows it.
struct Consent {
    target: String,
    title: String,
    state: String,
    granted: bool,
}

#[derive(Template)]
#[template(path = "privacy_consents.html")]
struct Consents {
    frame: Frame,
    consents: Vec<Consent>,
    devices: Vec<Device>,
    notice: Option<String>,
    error: Option<String>,
}

/// The purposes and features resting on consent, with the subject's choice on each.
fn consents_of(state: &AppState, t: Texts, export: &Export) -> Vec<Consent> {
    let policy = state.vault.policy();
    let purposes = policy
        .purposes
        .iter()
        .filter(|p| p.needs_consent())
        .map(|p| {
            (
                format!("purpose:{}", p.name),
                p.described(t.lang).to_string(),
            )
        });
    let features = policy
        .features
        .iter()
        .filter(|f| f.basis == steward_policy::Basis::Consent)
        .map(|f| (format!("feature:{}", f.name), f.description.clone()));
    purposes
        .chain(features)
        .map(|(target, title)| {
            let held = export.consents.iter().find(|c| c.target == target);
            let at = held.map(|c| day(&c.at).to_string());
            let granted = held.is_some_and(|c| c.granted);
            let state = match (held, at) {
                (Some(c), Some(at)) if c.granted => t.with("consent-given", &[("at", &at)]),
                (Some(_), Some(at)) => t.with("consent-withdrawn", &[("at", &at)]),
                _ => t.get("consent-never"),
            };
            Consent {
                target,
                title,
                state,
                granted,
            }
        })
        .collect()
}

/// A browser linked to the subject, as the consents page shows it.
struct Device {
    visitor: String,
    title: String,
    choices: Vec<DeviceChoice>,
}

/// One cookie purpose on a linked browser.
struct DeviceChoice {
    purpose: String,
    title: String,
    state: String,
    granted: bool,
}

/// Each browser linked to the subject (P8), with every non-essential cookie purpose and the
/// choice in force on it.
fn devices_of(state: &AppState, t: Texts, export: &Export) -> Vec<Device> {
    let vault = &state.vault;
    let policy = vault.policy();
    let purposes = vault.cookie_choices();
    export
        .devices
        .iter()
        .map(|d| Device {
            title: t.with(
                "consents-device",
                &[
                    ("id", d.visitor.get(..8).unwrap_or(&d.visitor)),
                    ("at", day(&d.linked_at)),
                ],
            ),
            visitor: d.visitor.clone(),
            choices: purposes
                .iter()
                .map(|name| {
                    let title = policy.purpose_id(name).map_or(name.clone(), |p| {
                        policy.purpose(p).described(t.lang).to_string()
                    });
                    let held = d
                        .consents
                        .iter()
                        .find(|c| c.target.strip_prefix("purpose:") == Some(name.as_str()));
                    let state = match held {
                        Some(c) if c.granted => t.with("consent-given", &[("at", day(&c.at))]),
                        Some(c) => t.with("consent-withdrawn", &[("at", day(&c.at))]),
                        None => t.get("consent-never"),
                    };
                    DeviceChoice {
                        purpose: name.clone(),
                        state: t.with(
                            "consents-device-choice",
                            &[("purpose", &title), ("state", &state)],
                        ),
                        title,
                        granted: held.is_some_and(|c| c.granted),
                    }
                })
                .collect(),
        })
        .collect()
}

fn consents_page(
    state: &AppState,
    who: &Signed,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let vault = &state.vault;
    let Ok(export) = crate::api::blocking(vault, || vault.self_export(who.subject)) else {
        return redirect("/privacy", &[]);
    };
    page(
        status,
        Consents {
            frame: who.frame(state, "consents-title", "consents"),
            consents: consents_of(state, who.t, &export),
            devices: devices_of(state, who.t, &export),
            notice,
            error,
        }
        .render(),
    )
}

/// `GET /privacy/consents`: each purpose and feature resting on consent, with the subject's
/// choice and a button to change it.
pub async fn consents(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match signed(&state, &headers, &query, "/privacy/consents").await {
        Ok(who) => consents_page(&state, &who, StatusCode::OK, None, None),
        Err(r) => r,
    }
}

/// `POST /privacy/consents`: gives or withdraws one consent (P27), as the subject's own act
/// (`action` `button`): withdrawal takes effect at once.
pub async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (who, fields) = match signed_post(&state, &headers, &body, "/privacy/consents").await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let granted = field(&fields, "granted") == "true";
    let target = field(&fields, "target").to_string();
    let device = field(&fields, "device").to_string();
    let vault = &state.vault;
    let gpc = crate::api::gpc(&headers);
    let done = crate::api::blocking(vault, || {
        if device.is_empty() {
            let target = vault.consent_target(&target)?;
            vault.self_consent(who.subject, target, (granted, false), gpc, Some("button"))
        } else {
            // A cookie choice on a browser linked to the subject.
            vault.linked_device_choose(who.subject, &device, &target, granted)
        }
    });
    match done {
        Ok(_) => consents_page(
            &state,
            &who,
            StatusCode::OK,
            Some(who.t.get("consent-saved")),
            None,
        ),
        Err(e) => consents_page(&state, &who, status_of(&e), None, Some(said(who.t, &e))),
    }
}

/// One request as the requests page shows it.
struct Asked {
    kind: String,
    only: Option<String>,
    state_key: String,
    state: String,
    due: String,
    overdue: bool,
    reason: Option<String>,
}

#[derive(Template)]
#[template(path = "privacy_requests.html")]
struct Requests {
    frame: Frame,
    requests: Vec<Asked>,
    kinds: Vec<(&'static str, String)>,
    held: Vec<(String, String)>,
    cancel_hint: String,
    notice: Option<String>,
    error: Option<String>,
}

/// What a subject may ask for here (a consent is withdrawn on the consents page).
const KINDS: [&str; 5] = [
    "access",
    "correction",
    "deletion",
    "account_cancellation",
    "inquiry",
];

/// The categories a subject holds values of, in the policy's order, described: what a deletion
/// of some categories offers. Read from the records' metadata, no value decrypted.
fn held_categories(state: &AppState, who: &Signed) -> Vec<(String, String)> {
    let vault = &state.vault;
    let Ok(records) = crate::api::blocking(vault, || {
        vault.store().records(&who.subject.0).map_err(Error::from)
    }) else {
        return Vec::new();
    };
    vault
        .policy()
        .categories
        .iter()
        .filter(|c| records.iter().any(|r| r.category == c.name))
        .map(|c| (c.name.clone(), c.described(who.t.lang).to_string()))
        .collect()
}

fn requests_page(
    state: &AppState,
    who: &Signed,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let vault = &state.vault;
    let Ok(mine) = crate::api::blocking(vault, || vault.self_requests(who.subject)) else {
        return redirect("/privacy", &[]);
    };
    let t = who.t;
    let requests = mine
        .iter()
        .rev()
        .map(|r| Asked {
            kind: t.get(&format!("kind-{}", r.kind)),
            only: r.target.strip_prefix("categories:").map(|names| {
                let titles: Vec<String> = names
                    .split(',')
                    .map(|n| super::category_title(state.vault.policy(), n, t.lang))
                    .collect();
                t.with("request-categories", &[("categories", &titles.join("、"))])
            }),
            state_key: r.state.clone(),
            state: t.get(&format!("state-{}", r.state)),
            due: t.with("request-due", &[("due", day(&r.due_at))]),
            overdue: r.overdue,
            reason: r
                .outcome
                .as_ref()
                .and_then(|o| o.get("refused").or_else(|| o.get("refused_in_part")))
                .and_then(|v| v.as_str())
                .map(|reason| {
                    t.with(
                        "request-reason",
                        &[("reason", &t.get(&format!("reason-{reason}")))],
                    )
                }),
        })
        .collect();
    page(
        status,
        Requests {
            frame: who.frame(state, "requests-title", "requests"),
            requests,
            kinds: KINDS
                .iter()
                .map(|k| (*k, t.get(&format!("kind-{k}"))))
                .collect(),
            held: held_categories(state, who),
            cancel_hint: t.with(
                "kind-account_cancellation-hint",
                &[(
                    "days",
                    &state.vault.policy().deadlines.erasure_days.to_string(),
                )],
            ),
            notice,
            error,
        }
        .render(),
    )
}

/// `GET /privacy/requests`: the subject's requests, newest first, with state, deadline and any
/// refusal's reason (P31, P32); and the form to make one.
pub async fn requests(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match signed(&state, &headers, &query, "/privacy/requests").await {
        Ok(who) => requests_page(&state, &who, StatusCode::OK, None, None),
        Err(r) => r,
    }
}

/// `POST /privacy/requests`: makes a request, its identity verified by the session (P25).
pub async fn request(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (who, fields) = match signed_post(&state, &headers, &body, "/privacy/requests").await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let kind = field(&fields, "kind").to_string();
    let text = field(&fields, "text").trim().to_string();
    if !KINDS.contains(&kind.as_str()) {
        let e = Error::Invalid(String::new());
        return requests_page(&state, &who, status_of(&e), None, Some(said(who.t, &e)));
    }
    let vault = &state.vault;
    // A deletion of the categories ticked only, when some are.
    let some: Vec<&str> = fields
        .iter()
        .filter(|(k, _)| k == "category")
        .map(|(_, v)| v.as_str())
        .collect();
    let target =
        (kind == "deletion" && !some.is_empty()).then(|| format!("categories:{}", some.join(",")));
    let made = crate::api::blocking(vault, || {
        vault.self_request(
            who.subject,
            &kind,
            target.as_deref(),
            (!text.is_empty()).then_some(&text),
        )
    });
    match made {
        Ok(r) => {
            let due = day(&r.due_at).to_string();
            let notice = who.t.with("requests-sent", &[("due", &due)]);
            requests_page(&state, &who, StatusCode::CREATED, Some(notice), None)
        }
        Err(e) => requests_page(&state, &who, status_of(&e), None, Some(said(who.t, &e))),
    }
}

/// `POST /privacy/sign-out`: ends the session and forgets the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let t = language(&headers, &state.vault.policy().language);
    let fields = form(&body);
    let token = cookie(&headers, SESSION_COOKIE).unwrap_or_default();
    if !genuine(&state, &headers, &fields, &token) {
        return refused(&state, t);
    }
    let vault = &state.vault;
    if crate::api::blocking(vault, || vault.sign_out(&token)).is_err() {
        tracing::warn!("a session could not be ended");
    }
    redirect(
        "/privacy",
        &[set_cookie(
            SESSION_COOKIE,
            "",
            SESSION_PATH,
            0,
            state.secure_cookies,
        )],
    )
}

/// The export's values grouped by category, in the policy's order, each with the purposes that
/// may read it, the recipients it may go to and its retention.
fn categories(state: &AppState, t: Texts, export: &Export) -> Vec<Category> {
    let policy = state.vault.policy();
    let mut out = Vec::new();
    for c in &policy.categories {
        let values: Vec<Held> = export
            .records
            .iter()
            .filter(|r| r.category == c.name)
            .map(|r| {
                let source = match r.source.split_once(':') {
                    Some(("third_party", party)) => {
                        t.with("data-source-third_party", &[("party", party)])
                    }
                    _ => t.get(&format!("data-source-{}", r.source)),
                };
                let at = day(&r.collected_at);
                Held {
                    value: r.value.clone(),
                    meta: t.with(
                        "data-meta",
                        &[
                            ("collected", &t.with("data-collected", &[("at", at)])),
                            ("source", &source),
                        ],
                    ),
                }
            })
            .collect();
        if values.is_empty() {
            continue;
        }
        let days = c.retention.days.to_string();
        out.push(Category {
            title: c.described(t.lang).to_string(),
            values,
            purposes: policy
                .purposes
                .iter()
                .filter(|p| p.reads.contains(c.id.index()))
                .map(|p| p.described(t.lang).to_string())
                .collect(),
            recipients: policy
                .recipients
                .iter()
                .filter(|r| r.categories.contains(c.id.index()))
                .map(|r| r.legal_name.clone())
                .collect(),
            retention: t.with(
                &format!("retention-{}", c.retention.from.as_str()),
                &[("days", &days)],
            ),
        });
    }
    out
}

/// One part of the statement: a heading, its lines, its items with their details.
struct Part {
    heading: String,
    paras: Vec<String>,
    items: Vec<(String, Vec<String>)>,
}

/// A version announced and not yet in force, as the statement page shows it.
struct Change {
    version: String,
    title: String,
    effective: String,
    lines: Vec<String>,
    accept: String,
}

#[derive(Template)]
#[template(path = "privacy_statement.html")]
struct Statement {
    frame: Frame,
    version: String,
    sections: Vec<Part>,
    changes: Vec<Change>,
    history: Vec<(String, Vec<String>)>,
    notice: Option<String>,
    error: Option<String>,
}

/// The plain-language statement's text as parts: a line at the margin opens a part (the first
/// is the title, said already), `- ` an item, an indented line a detail of the item above.
fn parts(text: &str) -> Vec<Part> {
    let mut out: Vec<Part> = Vec::new();
    for line in text.lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(item) = line.strip_prefix("- ") {
            if let Some(p) = out.last_mut() {
                p.items.push((item.to_string(), Vec::new()));
            }
        } else if line.starts_with(' ') {
            match out.last_mut() {
                Some(p) if !p.items.is_empty() => {
                    if let Some((_, details)) = p.items.last_mut() {
                        details.push(line.trim().to_string());
                    }
                }
                Some(p) => p.paras.push(line.trim().to_string()),
                None => {}
            }
        } else if out.is_empty()
            || !out
                .last()
                .is_some_and(|p| p.items.is_empty() && p.paras.is_empty())
        {
            out.push(Part {
                heading: line.to_string(),
                paras: Vec::new(),
                items: Vec::new(),
            });
        } else if let Some(p) = out.last_mut() {
            p.paras.push(line.to_string());
        }
    }
    out
}

fn statement_page(
    state: &AppState,
    who: &Signed,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let vault = &state.vault;
    let t = who.t;
    let current = vault.policy().version.clone();
    let shown = crate::api::blocking(vault, || {
        let detail = vault.version_detail(&current, Some(t.lang))?;
        let notices = vault.self_notices(who.subject)?;
        // Each version in force before, or now, after the first: what it changed, newest first.
        let mut history = Vec::new();
        for v in vault.versions().into_iter().skip(1).rev() {
            if v.status == "scheduled" {
                continue;
            }
            let explained = vault.version_changes(&v.version, Some(t.lang))?;
            let head = t.with(
                "statement-history-version",
                &[("version", &v.version), ("effective", day(&v.effective_at))],
            );
            let lines = if explained.is_empty() {
                vec![t.get("statement-history-none")]
            } else {
                explained
            };
            history.push((head, lines));
        }
        Ok::<_, Error>((detail, notices, history))
    });
    let Ok((detail, notices, history)) = shown else {
        return redirect("/privacy", &[]);
    };
    let changes = notices
        .into_iter()
        .filter(|n| n.kind == "policy")
        .map(|n| Change {
            accept: t.with("statement-accept", &[("version", &n.version)]),
            effective: t.with(
                "statement-effective",
                &[("effective", day(&n.effective_at))],
            ),
            title: n.title,
            lines: n.changes,
            version: n.version,
        })
        .collect();
    let effective = day(&detail.view.effective_at).to_string();
    page(
        status,
        Statement {
            frame: who.frame(state, "statement-title", "statement"),
            version: t.with(
                "statement-version",
                &[("version", &current), ("effective", &effective)],
            ),
            sections: parts(&detail.statement),
            changes,
            history,
            notice,
            error,
        }
        .render(),
    )
}

/// `GET /privacy/statement`: the statement in force in the subject's language, and each version
/// announced with what changes and a button to accept it (P29, P30). Showing it is recorded
/// (`notice.shown`).
pub async fn statement(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match signed(&state, &headers, &query, "/privacy/statement").await {
        Ok(who) => statement_page(&state, &who, StatusCode::OK, None, None),
        Err(r) => r,
    }
}

/// `POST /privacy/statement`: the subject accepts a version (P30).
pub async fn accept(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (who, fields) = match signed_post(&state, &headers, &body, "/privacy/statement").await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let version = field(&fields, "version").to_string();
    let vault = &state.vault;
    match crate::api::blocking(vault, || {
        vault.accept_policy(None, who.subject, Some(&version), None)
    }) {
        Ok(v) => {
            let notice = who.t.with("statement-accepted", &[("version", &v)]);
            statement_page(&state, &who, StatusCode::OK, Some(notice), None)
        }
        Err(e) => statement_page(&state, &who, status_of(&e), None, Some(said(who.t, &e))),
    }
}
