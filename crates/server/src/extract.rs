//! What handlers take from a request — a JSON body, a query string, path ids, a bearer
//! token — each refusing bad input with a catalogue code and a message that names the field
//! at fault, never the value sent (it may be PI, or a password in the wrong box).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use steward_core::{Code, Error};

use crate::error::ApiError;

/// How long the body may take to arrive once the head did, and how large it may be; put on
/// each request by the edge.
#[derive(Copy, Clone, Debug)]
pub struct BodyLimits {
    /// The read timeout.
    pub within: std::time::Duration,
    /// The largest body taken, in bytes.
    pub max_bytes: usize,
}

/// A JSON object body. Refused: another content type (415), a body over the limit (413),
/// text that is not JSON (`invalid_json`), JSON that is not an object or lacks, adds or
/// mistypes a field (`invalid_body`, naming the field).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                Code::UnsupportedMediaType,
                "send the body as `Content-Type: application/json`",
            ));
        }
        // A client that sends a head and then stalls would hold the connection open for ever.
        let within = req
            .extensions()
            .get::<BodyLimits>()
            .map_or(crate::http::READ_TIMEOUT, |t| t.within);
        let bytes = tokio::time::timeout(within, axum::body::Bytes::from_request(req, state))
            .await
            .map_err(|_| {
                ApiError::new(Code::BodyTimeout, "the request body did not arrive in time")
            })?
            .map_err(|_| {
                ApiError::new(
                    Code::BodyTooLarge,
                    "the request body is too large or could not be read",
                )
            })?;
        parse_body(&bytes).map(Body)
    }
}

fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Whether a JSON text holds a list directly inside a list. No body this API takes does, so
/// such a list is an object sent as an array (`"values": [["email", "…"]]`), which serde would
/// take field by field, in order: refused like an array for the whole body.
fn list_in_list(bytes: &[u8]) -> bool {
    let mut open: Vec<u8> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' => {
                if open.last() == Some(&b'[') {
                    return true;
                }
                open.push(b);
            }
            b'{' => open.push(b),
            b']' | b'}' => {
                open.pop();
            }
            _ => {}
        }
    }
    false
}

/// Parses a JSON object into `T`, with errors that name the field.
pub(crate) fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if (first.is_some() && first != Some(&b'{')) || list_in_list(bytes) {
        // serde would take an array for a struct, field by field in order: refuse it.
        return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Err(ApiError::new(
                Code::InvalidBody,
                "the request body must be a JSON object; see /openapi.json",
            )),
            Err(_) => Err(ApiError::new(
                Code::InvalidJson,
                "the request body is not valid JSON",
            )),
        };
    }
    let not_json = || ApiError::new(Code::InvalidJson, "the request body is not valid JSON");
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner_message = e.inner().to_string();
        // An unknown field's name is the caller's, and ends the path: leave it out.
        let unknown = inner_message.starts_with("unknown field");
        let path = schema_path(e.path(), unknown);
        match e.into_inner().classify() {
            serde_json::error::Category::Data => {
                ApiError::new(Code::InvalidBody, field_problem(&path, &inner_message))
            }
            _ => not_json(),
        }
    })?;
    de.end().map_err(|_| not_json())?;
    Ok(value)
}

/// The path to a field as the schema names it (`values[0].category`): map keys and indices,
/// without enum variants (a value) and, for an unknown field, without its name (the caller's).
fn schema_path(path: &serde_path_to_error::Path, drop_last_key: bool) -> String {
    use serde_path_to_error::Segment;
    let mut segments: Vec<&Segment> = path.iter().collect();
    if drop_last_key && matches!(segments.last(), Some(Segment::Map { .. })) {
        segments.pop();
    }
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// Marks a message a body type's own validation gives (a `TryFrom` behind
/// `#[serde(try_from)]`): [`field_problem`] passes it on after the field's path.
pub(crate) fn own_message(text: &str) -> String {
    format!("{OWN}{text}")
}

const OWN: &str = "steward:";

/// What is wrong with a field, from serde's message, keeping only what the schema itself
/// names (a missing field's name) and never what was sent (an unknown field's name, a value).
fn field_problem(path: &str, serde_message: &str) -> String {
    let at = |p: &str| {
        if p.is_empty() || p == "." {
            String::new()
        } else {
            format!(" `{p}`")
        }
    };
    if let Some(rest) = serde_message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or("");
        let full = if path.is_empty() || path == "." {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        return format!("the request body lacks the field `{full}`; see /openapi.json");
    }
    if let Some(own) = serde_message.strip_prefix(OWN) {
        return format!("the field{} {own}; see /openapi.json", at(path));
    }
    if serde_message.starts_with("unknown field") {
        return if path.is_empty() || path == "." {
            "the request body has a field this endpoint does not take; see /openapi.json".into()
        } else {
            format!(
                "the object `{path}` has a field this endpoint does not take; see /openapi.json"
            )
        };
    }
    if serde_message.starts_with("unknown variant") {
        return format!(
            "the field{} is not one of the values it takes; see /openapi.json",
            at(path)
        );
    }
    if serde_message.starts_with("invalid value") || serde_message.starts_with("invalid length") {
        return format!("the field{} has a value out of range", at(path));
    }
    format!(
        "the field{} has the wrong type; see /openapi.json",
        at(path)
    )
}

/// A query string parsed into `T`; refused with `invalid_query`, naming the parameter.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = if path.is_empty() || path == "." {
                    "the query string has a parameter this operation does not take; see /openapi.json"
                        .to_string()
                } else {
                    format!("the query parameter `{path}` is not valid; see /openapi.json")
                };
                ApiError::new(Code::InvalidQuery, message)
            })
    }
}

/// One id from the path, as text; refused with `invalid_path` when it cannot be decoded.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| PathId(id))
            .map_err(|_| ApiError::new(Code::InvalidPath, "a path segment cannot be decoded"))
    }
}

/// The caller, authenticated by API key or staff session (`Authorization: Bearer`) before any
/// other part of the request is read (the [`authenticate`] layer on every route that needs a
/// key): a caller without a valid key learns nothing about ids, paths or bodies, only
/// `401 unauthenticated`.
#[derive(Clone)]
pub struct Caller(pub(crate) steward_core::Actor);

/// The subject a self-service session (`sts_…`) stands for, authenticated first, as [`Caller`]
/// (the [`authenticate_session`] layer).
#[derive(Clone, Copy)]
pub struct SessionSubject(pub(crate) steward_core::SubjectId);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .remove::<Caller>()
            .ok_or_else(|| ApiError::from(Error::Unauthenticated))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SessionSubject {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .remove::<SessionSubject>()
            .ok_or_else(|| ApiError::from(Error::Unauthenticated))
    }
}

/// The `Authorization: Bearer` token, if the request has one.
fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

/// Authenticates an API key or staff session before the route's handler reads anything.
pub(crate) async fn authenticate(
    state: axum::extract::State<crate::AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    admit(state, req, next, |v, token| {
        v.authenticate(token).map(Caller)
    })
    .await
}

/// Authenticates a subject's session before the route's handler reads anything.
pub(crate) async fn authenticate_session(
    state: axum::extract::State<crate::AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    admit(state, req, next, |v, token| {
        v.session_subject(token).map(SessionSubject)
    })
    .await
}

/// Runs the request with who it is from, or answers the refusal — after reading what the
/// client sends of its body (up to the limits), so that the connection stays usable: closing
/// it with the body unread would cut off a client still sending, and one that keeps
/// connections alive would find this one gone on its next request.
async fn admit<W: Clone + Send + Sync + 'static>(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    mut req: Request,
    next: axum::middleware::Next,
    who: impl FnOnce(&steward_core::Vault, &str) -> Result<W, Error>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let vault = &state.vault;
    let who = bearer(req.headers()).map_or(Err(Error::Unauthenticated), |token| {
        crate::api::blocking(vault, || who(vault, &token))
    });
    match who {
        Ok(w) => {
            req.extensions_mut().insert(w);
            next.run(req).await
        }
        Err(e) => {
            let limits = req.extensions().get::<BodyLimits>().copied();
            if let Some(limits) = limits {
                let _ = tokio::time::timeout(
                    limits.within,
                    axum::body::to_bytes(req.into_body(), limits.max_bytes),
                )
                .await;
            }
            ApiError::from(e).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        category: String,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        feature: String,
        values: Vec<Inner>,
    }

    fn problem(body: &str) -> (Code, String) {
        let e = parse_body::<Outer>(body.as_bytes()).unwrap_err();
        let code = e.code();
        let msg = format!("{e:?}");
        (code, msg)
    }

    #[test]
    fn p34_body_errors_name_the_field_never_the_value() {
        let (code, msg) = problem(r#"{"feature": "x", "values": [{"category": 42}]}"#);
        assert_eq!(code, Code::InvalidBody);
        assert!(msg.contains("`values[0].category`"), "{msg}");
        assert!(!msg.contains("42"), "{msg}");

        let (code, msg) = problem(r#"{"feature": "x"}"#);
        assert_eq!(code, Code::InvalidBody);
        assert!(msg.contains("`values`"), "{msg}");

        let (code, msg) = problem(r#"{"feature": "x", "values": [], "leakmark@example.cn": 1}"#);
        assert_eq!(code, Code::InvalidBody);
        assert!(!msg.contains("leakmark"), "{msg}");

        let (code, msg) = problem(r#"{"feature": "leakmark@example.cn", "values": {}}"#);
        assert_eq!(code, Code::InvalidBody);
        assert!(!msg.contains("leakmark"), "{msg}");
    }

    #[test]
    fn p34_a_json_array_is_not_an_object() {
        let (code, _) = problem(r#"["x", []]"#);
        assert_eq!(code, Code::InvalidBody);
        let (code, _) = problem(r#"["x", "#);
        assert_eq!(code, Code::InvalidJson);
        let (code, _) = problem(r#"{"feature": "x", "values": []} trailing"#);
        assert_eq!(code, Code::InvalidJson);
    }
}
