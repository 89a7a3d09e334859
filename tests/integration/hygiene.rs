//! What the API gives away, and what it holds on to, seen from outside (issue 11: P20, P21,
//! P34): authentication before anything else is read, answers no cache keeps, clients that
//! stall cut off, bodies of the wrong shape refused, revocation within the documented delay.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::{Server, TestBackend};

/// Without a valid key a caller learns nothing about ids or bodies: every route that needs a
/// key answers `401 unauthenticated` before it looks at the path or the body.
#[test]
fn p34_unauthenticated_callers_learn_nothing_about_ids_or_bodies() {
    let srv = Server::start();
    let key = srv.key("service");
    let officer = srv.key("privacy_officer");
    let cases: [(&str, &str, Value); 6] = [
        ("GET", "/v1/subjects/abc/export", Value::Null),
        ("POST", "/v1/subjects/abc/collect", json!({"nonsense": 1})),
        ("POST", "/v1/subjects/abc/read", json!([1, 2])),
        ("GET", "/v1/requests/not-an-id", Value::Null),
        ("POST", "/v1/holds/zzz/lift", json!({})),
        ("GET", "/v1/self/export", Value::Null),
    ];
    for (method, path, body) in &cases {
        for bad in ["", "stw_0000000000000000_00", "sts_nope"] {
            let r = match *method {
                "GET" => srv.get(path, bad),
                _ => srv.post(path, bad, body.clone()),
            };
            assert_eq!(r.status, 401, "{method} {path} with {bad:?}: {}", r.body);
            assert_eq!(r.body["error"]["code"], "unauthenticated");
        }
    }
    // With a key, the same requests get the input errors they deserve.
    assert_eq!(srv.get("/v1/subjects/abc/export", &officer).status, 400);
    let r = srv.post("/v1/subjects/abc/collect", &key, json!({"nonsense": 1}));
    assert!(matches!(r.status, 400 | 422), "{}", r.body);
}

/// Answers that carry PI or a token are kept by no cache, and no answer is content-sniffed.
#[test]
fn p20_answers_with_pi_or_tokens_are_never_stored_by_a_cache() {
    let srv = Server::start();
    let key = srv.key("service");
    let officer = srv.key("privacy_officer");
    let s = srv.subject(&key);
    let body = r#"{"categories":["email"],"purpose":"provide_service"}"#;
    let heads = [
        format!(
            "POST /v1/subjects/{s}/read HTTP/1.1\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        format!("GET /v1/subjects/{s}/export HTTP/1.1\r\nAuthorization: Bearer {officer}\r\n"),
        "POST /v1/subjects HTTP/1.1\r\nAuthorization: Bearer wrong\r\n".to_string(),
        "GET /v1/nothing/here HTTP/1.1\r\n".to_string(),
    ];
    for head in &heads {
        let request = if head.contains("\r\n\r\n") {
            head.clone()
        } else {
            format!("{head}\r\n")
        };
        let (reply, headers) = srv.raw_request(&request);
        assert!(reply.status != 0, "{head}");
        assert!(
            headers.contains("cache-control: no-store"),
            "{head}\n{headers}"
        );
        assert!(
            headers.contains("x-content-type-options: nosniff"),
            "{head}\n{headers}"
        );
    }
    // What is public may be cached; it is still never sniffed.
    for path in ["/openapi.json", "/v1/evidence/checkpoints"] {
        let (_, headers) = srv.raw(&format!("GET {path} HTTP/1.1\r\n"));
        assert!(!headers.contains("no-store"), "{path}\n{headers}");
        assert!(
            headers.contains("x-content-type-options: nosniff"),
            "{path}"
        );
    }
}

/// A client that connects and sends nothing, stops half-way through its head, or sends a
/// head and then stalls in its body is cut off after the read timeout; the last gets
/// `408 body_timeout` first.
#[test]
fn p34_clients_that_stall_are_cut_off() {
    let srv = Server::start_tuned(TestBackend::new(), None, Duration::from_millis(300));
    let addr = srv.base.trim_start_matches("http://").to_string();
    let open = |bytes: &[u8]| {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.write_all(bytes).unwrap();
        // A bound on the wait, far above the timeout: the test fails rather than hangs.
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c
    };
    let idle = open(b"");
    let head = open(b"GET /health/live HTTP/1.1\r\nHost: x\r\n");
    let body = open(
        b"POST /v1/self/code HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"em",
    );
    let started = std::time::Instant::now();
    for (what, mut c) in [("idle", idle), ("head", head), ("body", body)] {
        let mut got = Vec::new();
        let read = c.read_to_end(&mut got);
        assert!(
            read.is_ok(),
            "{what}: the server never closed the connection: {read:?}"
        );
        let text = String::from_utf8_lossy(&got);
        if what == "body" {
            assert!(text.starts_with("HTTP/1.1 408"), "{text}");
            assert!(text.contains("body_timeout"), "{text}");
        } else {
            assert!(
                text.is_empty() || text.starts_with("HTTP/1.1 408"),
                "{what}: {text}"
            );
        }
    }
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// An object sent as an array — the whole body or one inside it — is refused, not taken
/// field by field.
#[test]
fn p34_an_array_where_an_object_belongs_is_refused() {
    let srv = Server::start();
    let key = srv.key("service");
    let s = srv.subject(&key);
    let path = format!("/v1/subjects/{s}/collect");
    for body in [
        json!(["account", [{"category": "name", "value": "x"}], {"kind": "subject"}]),
        json!({"feature": "account", "values": [["name", "Li Lei"]], "source": {"kind": "subject"}}),
    ] {
        let r = srv.post(&path, &key, body);
        assert_eq!(r.status, 422, "{}", r.body);
        assert_eq!(r.body["error"]["code"], "invalid_body");
        assert!(!r.body.to_string().contains("Li Lei"));
    }
    // Arrays inside strings are only text.
    let r = srv.post(
        &path,
        &key,
        json!({"feature": "account", "values": [{"category": "name", "value": "[[x]]"}, {"category": "email", "value": "a@example.cn"}], "source": {"kind": "subject"}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

/// A key revoked by another process stops working on a running server within
/// `KEY_CACHE_MS` (docs: 2 s); on the server that revoked it, at once (P21).
#[test]
fn p21_a_key_revoked_elsewhere_stops_within_the_documented_delay() {
    let srv = Server::start();
    let (info, key) = srv.vault.create_api_key("batch", "service").unwrap();
    assert_eq!(srv.post("/v1/subjects", &key, Value::Null).status, 201);
    srv.other_process().revoke_api_key(&info.id).unwrap();
    // Within the delay the server may still take it; past it, never.
    srv.clock.advance(steward_core::KEY_CACHE_MS);
    let r = srv.post("/v1/subjects", &key, Value::Null);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(
        steward_core::KEY_CACHE_MS,
        2_000,
        "docs/errors.md and the README say 2 s"
    );
    // Revoked where it is served: refused at once.
    let (info, key) = srv.vault.create_api_key("batch2", "service").unwrap();
    assert_eq!(srv.post("/v1/subjects", &key, Value::Null).status, 201);
    srv.vault.revoke_api_key(&info.id).unwrap();
    assert_eq!(srv.post("/v1/subjects", &key, Value::Null).status, 401);
}

/// A third-party source names its party, and a source takes no keys it does not know (P6).
#[test]
fn p06_a_source_names_its_party_and_takes_no_unknown_keys() {
    let srv = Server::start();
    let key = srv.key("service");
    let s = srv.subject(&key);
    let path = format!("/v1/subjects/{s}/collect");
    let collect = |source: Value| {
        srv.post(
            &path,
            &key,
            json!({"feature": "usage_logging", "values": [{"category": "ip_address", "value": "192.0.2.7"}, {"category": "access_time", "value": "2026-01-01T08:00:00+08:00"}], "source": source}),
        )
    };
    for (source, status, code) in [
        (
            json!({"kind": "third_party", "party": ""}),
            400,
            "invalid_input",
        ),
        (
            json!({"kind": "third_party", "party": "   "}),
            400,
            "invalid_input",
        ),
        (
            json!({"kind": "third_party", "party": "a\u{7}b"}),
            400,
            "invalid_input",
        ),
        (
            json!({"kind": "third_party", "party": "x".repeat(201)}),
            400,
            "invalid_input",
        ),
        (
            json!({"kind": "third_party", "party": "CDN", "contact": "a@b.cn"}),
            422,
            "invalid_body",
        ),
        (
            json!({"kind": "observed", "party": "CDN"}),
            422,
            "invalid_body",
        ),
        (json!({"kind": "subject", "note": 1}), 422, "invalid_body"),
    ] {
        let r = collect(source.clone());
        assert_eq!(r.status, status, "{source}: {}", r.body);
        assert_eq!(r.body["error"]["code"], code, "{source}");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("source"), "{source}: {message}");
        assert!(
            !message.contains("a@b.cn") && !message.contains("CDN"),
            "{message}"
        );
    }
    assert_eq!(
        collect(json!({"kind": "third_party", "party": "Example CDN Co."})).status,
        201
    );
}

/// Messages say what happened: a collection for a closed account, a transfer abroad under
/// plain consent, a name the policy does not have (never repeated back).
#[test]
fn p34_messages_say_what_happened_and_repeat_nothing_sent() {
    let srv = Server::start();
    let key = srv.key("service");
    let officer = srv.key("privacy_officer");
    let s = srv.subject(&key);
    // Plain consent to a transfer abroad: not "not in force" — not separate.
    let r = srv.post(
        &format!("/v1/subjects/{s}/consents"),
        &key,
        json!({"target": "recipient:intl_affiliate", "granted": true, "channel": "app"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = srv.post(
        &format!("/v1/subjects/{s}/disclosures"),
        &key,
        json!({"recipient": "intl_affiliate", "categories": ["name"], "purpose": "provide_service"}),
    );
    assert_eq!(
        r.body["error"]["code"], "separate_consent_required",
        "{}",
        r.body
    );
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("not separate"), "{message}");
    // Names the policy does not have are not repeated.
    for body in [
        json!({"categories": ["email"], "purpose": "leakmark_purpose"}),
        json!({"categories": ["leakmark_category"], "purpose": "provide_service"}),
        json!({"categories": ["email"], "purpose": "leakmark@example.cn"}),
    ] {
        let r = srv.post(&format!("/v1/subjects/{s}/read"), &key, body);
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(!r.body.to_string().contains("leakmark"), "{}", r.body);
    }
    // A collection for a closed account says so, not something about reads.
    let id: steward_core::SubjectId = s.parse().unwrap();
    let actor = srv.vault.authenticate(&officer).unwrap();
    srv.vault.close_account(&actor, id).unwrap();
    let r = srv.post(
        &format!("/v1/subjects/{s}/collect"),
        &key,
        json!({"feature": "usage_logging", "values": [{"category": "ip_address", "value": "192.0.2.7"}, {"category": "access_time", "value": "2026-01-01T08:00:00+08:00"}], "source": {"kind": "observed"}}),
    );
    assert_eq!(r.body["error"]["code"], "subject_closed", "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("nothing more is collected"), "{message}");
    assert!(!message.contains("read"), "{message}");
    // Nothing the caller sent reached the log either.
    let log = srv.audit_text();
    assert!(
        !log.contains("leakmark"),
        "the audit log repeats a name sent"
    );
}

/// One answer read off a kept-alive connection: its status and lowercased header block.
fn answer_on(conn: &mut std::net::TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            conn.read(&mut byte).unwrap(),
            1,
            "the connection closed mid-answer"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head)
}

/// P34: an answer given without reading the request's body (a bad path, a refused head) says
/// `Connection: close`, so a client keeping connections alive never sends its next request
/// into the unread bytes and finds the connection gone; an answer that read the body keeps
/// the connection open for the next request.
#[test]
fn p34_a_body_left_unread_closes_the_connection_openly() {
    let srv = Server::start();
    let key = srv.key("service");
    let addr = srv.base.trim_start_matches("http://").to_string();
    let typed = |path: &str, content_type: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let request = |path: &str, body: &str| typed(path, "application/json", body);
    // Refused by its content type, before the body is read.
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.write_all(typed("/v1/subjects/lookup", "text/plain", "li.lei@example.cn").as_bytes())
        .unwrap();
    let (status, head) = answer_on(&mut conn);
    assert_eq!(status, 415);
    assert!(head.contains("connection: close"), "{head}");
    // A body read to its end, even a wrong one: the connection stays for the next request.
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.write_all(request("/v1/subjects/lookup", "{not json").as_bytes())
        .unwrap();
    let (status, head) = answer_on(&mut conn);
    assert_eq!(status, 400, "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    conn.write_all(request("/v1/subjects", "").as_bytes())
        .unwrap();
    let (status, _) = answer_on(&mut conn);
    assert_eq!(status, 201);
}
