//! The web pages Steward serves (`docs/web.md`): the privacy centre (`/privacy`) for the
//! provider's users. Server-rendered HTML from templates compiled into the binary (askama), in
//! Chinese or English (`Accept-Language`, or the switch, kept in a cookie), with no script
//! inline and nothing fetched from elsewhere. Every page goes through the same core operations,
//! audit and limits as the API.
//!
//! Web security, on every page: a strict Content-Security-Policy (`default-src 'none'`, the
//! stylesheet from `'self'`, forms only to `'self'`, `frame-ancestors 'none'`), `Cache-Control:
//! no-store`, `Referrer-Policy: same-origin`; sessions in `HttpOnly; SameSite=Strict` cookies
//! (`Secure` over TLS); every form that changes state carries a token tied to the session (or,
//! before sign-in, to a cookie of its own) and is refused when its `Origin` is another site's;
//! no PI in a URL.

pub mod console;
pub mod privacy;

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use steward_core::i18n::Catalogue;

/// The pages' words, one Fluent catalogue per language.
const SOURCES: [(&str, &str); 2] = [
    ("zh-CN", include_str!("../../messages/zh-CN.ftl")),
    ("en", include_str!("../../messages/en.ftl")),
];

/// The cookie that keeps the language a visitor switched to.
const LANG_COOKIE: &str = "steward_lang";
/// The cookie that carries the pre-sign-in form token.
const FORM_COOKIE: &str = "steward_form";

/// The pages' stylesheet, embedded.
const STYLE: &str = include_str!("../../assets/site.css");

fn catalogue() -> Option<&'static Catalogue> {
    static CATALOGUE: OnceLock<Option<Catalogue>> = OnceLock::new();
    CATALOGUE
        .get_or_init(|| Catalogue::from_sources(&SOURCES).ok())
        .as_ref()
}

/// The words of one page, in its language.
#[derive(Clone, Copy)]
pub struct Texts {
    /// `zh-CN` or `en`.
    pub lang: &'static str,
}

impl Texts {
    /// Message `id`; its id itself if the catalogue lacks it (a test keeps both catalogues
    /// whole, so a page never shows one).
    pub fn get(&self, id: &str) -> String {
        self.with(id, &[])
    }

    /// Message `id` with its arguments.
    pub fn with(&self, id: &str, args: &[(&str, &str)]) -> String {
        catalogue()
            .and_then(|c| c.text(self.lang, id, None, args).ok())
            .unwrap_or_else(|| id.to_string())
    }

    /// The other language, for the switch.
    pub fn other(&self) -> &'static str {
        if self.lang == "en" { "zh-CN" } else { "en" }
    }
}

/// The language of a page: the switch's cookie, else the first of `Accept-Language` that is
/// Chinese or English, else `default` (the policy's).
pub fn language(headers: &HeaderMap, default: &str) -> Texts {
    let pick = |tag: &str| -> Option<&'static str> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag.starts_with("zh") {
            Some("zh-CN")
        } else if tag.starts_with("en") {
            Some("en")
        } else {
            None
        }
    };
    if let Some(lang) = cookie(headers, LANG_COOKIE).and_then(|v| pick(&v)) {
        return Texts { lang };
    }
    let accepted = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut ranked: Vec<(f32, &str)> = accepted
        .split(',')
        .filter_map(|part| {
            let mut bits = part.split(';');
            let tag = bits.next()?.trim();
            let q = bits
                .find_map(|b| b.trim().strip_prefix("q=").map(str::to_string))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((q, tag))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let lang = ranked
        .iter()
        .find_map(|(_, tag)| pick(tag))
        .or_else(|| pick(default))
        .unwrap_or("zh-CN");
    Texts { lang }
}

/// A cookie's value from the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Strict` always, `Secure` over TLS; `max_age`
/// seconds (0 deletes it).
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> HeaderValue {
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// What every page's answer carries.
pub(crate) fn protect(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: under it a browser sends `Origin: null` with its own form posts.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A rendered page, or a plain error if the template failed (a defect the tests catch).
pub fn page(status: StatusCode, rendered: Result<String, askama::Error>) -> Response {
    let mut response = match rendered {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(_) => {
            tracing::error!("a page failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    };
    protect(&mut response);
    response
}

#[derive(askama::Template)]
#[template(path = "message.html")]
struct Message {
    frame: privacy::Frame,
    message: String,
}

/// A page that only says something went wrong (a refused form, a page the role may not see):
/// no form on it, nothing of anyone's.
pub fn message(frame: privacy::Frame, status: StatusCode, message: String) -> Response {
    page(
        status,
        askama::Template::render(&Message { frame, message }),
    )
}

/// `303 See Other` to `to`, with `cookies` set.
pub fn redirect(to: &'static str, cookies: &[HeaderValue]) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    for c in cookies {
        response.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    protect(&mut response);
    response
}

/// `response` with the cookie `set`, if any.
pub fn with_cookie(mut response: Response, set: Option<HeaderValue>) -> Response {
    if let Some(c) = set {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// `GET /assets/site.css`.
pub async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        STYLE,
    )
        .into_response()
}

/// Whether a form post comes from a page of this site: its `Origin` (sent by every browser on
/// a POST) names this host, or it has none (not a browser).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

/// Whether two byte strings are equal, in time that does not depend on where they differ.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A form's fields, from an `application/x-www-form-urlencoded` body.
pub fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The date of an RFC 3339 time (`2026-01-31`), as the pages show deadlines and times.
pub fn day(text: &str) -> &str {
    text.get(..10).unwrap_or(text)
}

/// The end of day `YYYY-MM-DD` in UTC (midnight starting the next day), Unix ms: what a date
/// typed into a form means as a deadline. `None` for anything that is not a real date.
pub fn end_of_day_ms(date: &str) -> Option<i64> {
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let last = usize::try_from(m - 1)
        .ok()
        .and_then(|i| month_days.get(i))?;
    if parts.next().is_some() || !(1970..=9999).contains(&y) || !(1..=*last).contains(&d) {
        return None;
    }
    // Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days + 1) * 86_400_000)
}

/// A category's description in `lang`, or its name if the policy has no such category.
pub fn category_title(policy: &steward_policy::Policy, name: &str, lang: &str) -> String {
    policy.category_id(name).map_or(name.to_string(), |c| {
        policy.category(c).described(lang).to_string()
    })
}

/// One field of a form.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p30_every_page_word_exists_in_chinese_and_english() {
        let [(_, zh), (_, en)] = SOURCES;
        assert_eq!(steward_core::i18n::twins(zh, en), Ok(()));
        assert!(catalogue().is_some(), "the catalogues parse");
    }

    #[test]
    fn the_language_follows_the_switch_then_the_browser_then_the_policy() {
        let mut h = HeaderMap::new();
        assert_eq!(language(&h, "zh-CN").lang, "zh-CN");
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("fr;q=0.9, en-GB;q=0.8, zh;q=0.5"),
        );
        assert_eq!(language(&h, "zh-CN").lang, "en");
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; steward_lang=zh-CN"),
        );
        assert_eq!(language(&h, "zh-CN").lang, "zh-CN");
    }

    #[test]
    fn a_date_typed_in_a_form_is_the_end_of_that_day() {
        assert_eq!(end_of_day_ms("1970-01-01"), Some(86_400_000));
        // 2026-01-01T00:00:00Z is 1_767_225_600_000.
        assert_eq!(end_of_day_ms("2025-12-31"), Some(1_767_225_600_000));
        assert_eq!(end_of_day_ms("2024-02-29"), Some(1_709_251_200_000));
        for bad in [
            "2025-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-32",
            "x",
            "2026-01-01-1",
        ] {
            assert_eq!(end_of_day_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_post_from_another_site_is_not_same_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }
}
