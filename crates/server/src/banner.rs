//! The cookie banner's script and stylesheet (`docs/banner.md`), embedded in the binary and
//! served as they are, gzipped once for browsers that take it. Public and cacheable: they hold
//! nothing of anyone's.

use std::io::Write as _;
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The banner's script, as served at `/banner.js`.
pub const SCRIPT: &str = include_str!("../assets/banner.js");
/// Its stylesheet, as served at `/banner.css`.
pub const STYLE: &str = include_str!("../assets/banner.css");

/// How long a browser or proxy may keep them before asking again: a new release's banner
/// reaches every page within five minutes.
const MAX_AGE: &str = "public, max-age=300";

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail; an empty answer would only be served uncompressed.
    if encoder.write_all(text.as_bytes()).is_err() {
        return Vec::new();
    }
    encoder.finish().unwrap_or_default()
}

fn gzipped() -> &'static (Vec<u8>, Vec<u8>) {
    static ZIPPED: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    ZIPPED.get_or_init(|| (gzip(SCRIPT), gzip(STYLE)))
}

/// The gzipped size of the script and the stylesheet together, in bytes: what a first visit
/// downloads (the budget is 15 KB).
pub fn gzipped_size() -> usize {
    let (script, style) = gzipped();
    script.len() + style.len()
}

fn serve(
    headers: &HeaderMap,
    plain: &'static str,
    zipped: &'static [u8],
    kind: &'static str,
) -> Response {
    let takes_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|e| e.split(';').next().is_some_and(|n| n.trim() == "gzip"))
        });
    let mut response = if takes_gzip && !zipped.is_empty() {
        let mut r = zipped.into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        plain.into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(MAX_AGE));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    // Any site of the provider's may load them, even one that isolates itself (COEP).
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    response
}

/// `GET /banner.js`.
pub async fn script(headers: HeaderMap) -> Response {
    serve(
        &headers,
        SCRIPT,
        &gzipped().0,
        "text/javascript; charset=utf-8",
    )
}

/// `GET /banner.css`.
pub async fn style(headers: HeaderMap) -> Response {
    serve(&headers, STYLE, &gzipped().1, "text/css; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p07_the_banner_is_within_its_budget_and_its_gzip_opens_to_itself() {
        assert!(
            gzipped_size() <= 15 * 1024,
            "the banner is {} bytes gzipped",
            gzipped_size()
        );
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&gzipped().0[..]),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, SCRIPT);
    }
}
