//! The OpenAPI document's error responses, filled in from what each operation can meet so that
//! no status the server answers goes undocumented: the edge's (414, 431), bad input where an
//! operation takes any (400; a body adds 413, 415 and 422), authentication (401, 403), the
//! ids in its path (404, and 410 for a subject), storage (500, 503, 507), and whatever its
//! handler declares besides (409, 429, ...). Every error response is the one `ErrorBody`
//! shape, and its description lists the catalogue codes that come with that status.

use steward_core::Code;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

/// The modifier [`crate::ApiDoc`] applies.
pub struct ErrorResponses;

impl utoipa::Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in operations(item) {
                let statuses = statuses(path, op);
                for status in statuses {
                    op.responses
                        .responses
                        .insert(status.to_string(), RefOr::T(error_response(status)));
                }
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.put.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The error statuses `op` at `path` can answer with.
fn statuses(path: &str, op: &Operation) -> Vec<u16> {
    // Declared by the handler (beyond the generic ones): kept.
    let mut out: Vec<u16> = op
        .responses
        .responses
        .keys()
        .filter_map(|s| s.parse::<u16>().ok())
        .filter(|s| *s >= 400)
        .collect();
    // Any request can be over the edge's limits.
    out.extend([414, 431]);
    if path == "/health/live" {
        out.sort_unstable();
        out.dedup();
        return out;
    }
    // Everything else touches the store.
    out.extend([500, 503, 507]);
    let takes_input = op.request_body.is_some()
        || op.parameters.as_ref().is_some_and(|p| !p.is_empty())
        || path.contains('{');
    if takes_input {
        out.push(400);
    }
    if op.request_body.is_some() {
        out.extend([413, 415, 422]);
    }
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        out.extend([401, 403]);
    }
    if path.contains("{id}") {
        out.extend([404, 410]);
    }
    if path.contains("{request}") || path.contains("{hold}") {
        out.push(404);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The response for an error status: `ErrorBody`, described by its codes.
fn error_response(status: u16) -> utoipa::openapi::Response {
    let codes: Vec<String> = Code::ALL
        .iter()
        .filter(|c| c.status() == status)
        .map(|c| format!("`{}`", c.as_str()))
        .collect();
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let description = if codes.is_empty() {
        reason.to_string()
    } else {
        format!("{reason}: {} (see docs/errors.md)", codes.join(", "))
    };
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use steward_core::Code;

    fn openapi() -> serde_json::Value {
        serde_json::from_str(&crate::openapi_json()).unwrap_or_default()
    }

    /// The catalogue, the OpenAPI document's `ErrorDetail.code` enum and `docs/errors.md`
    /// list the same codes, with the same statuses.
    #[test]
    fn the_catalogue_the_openapi_document_and_the_docs_agree() {
        let catalogue: BTreeSet<(String, u16)> = Code::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), c.status()))
            .collect();

        let doc = openapi();
        let listed: BTreeSet<String> = doc["components"]["schemas"]["Code"]["enum"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let names: BTreeSet<String> = catalogue.iter().map(|(c, _)| c.clone()).collect();
        assert_eq!(
            listed, names,
            "the OpenAPI Code enum and the catalogue differ"
        );
        assert_eq!(
            doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["$ref"],
            "#/components/schemas/Code"
        );

        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors.md");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let documented: BTreeSet<(String, u16)> = text
            .lines()
            .filter_map(|line| {
                // | `code` | status | meaning |
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let status = cells.get(2)?.parse::<u16>().ok()?;
                Some((code.to_string(), status))
            })
            .collect();
        assert_eq!(
            documented, catalogue,
            "docs/errors.md and the catalogue (crates/core/src/code.rs) differ"
        );
    }

    /// Every operation documents 401 and 403 if it needs credentials, and every error response
    /// is the one `ErrorBody` shape.
    #[test]
    fn every_error_response_is_documented_in_the_one_shape() {
        let doc = openapi();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        assert!(!paths.is_empty());
        for (path, item) in paths {
            for (method, op) in item.as_object().cloned().unwrap_or_default() {
                let responses = op["responses"].as_object().cloned().unwrap_or_default();
                for (status, r) in &responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            r["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
                if op.get("security").is_some() {
                    for s in ["401", "403", "503"] {
                        assert!(responses.contains_key(s), "{method} {path} lacks {s}");
                    }
                }
                if op.get("requestBody").is_some() {
                    for s in ["400", "413", "415", "422"] {
                        assert!(responses.contains_key(s), "{method} {path} lacks {s}");
                    }
                }
            }
        }
    }
}
