//! The HTTP API, over real HTTP against the real server (P21, P23, P28, P34).

use serde_json::{Value, json};
use steward_core::clock::Clock;
use steward_policy::Capability;

use crate::http::Server;

#[test]
fn p21_requests_without_a_valid_key_are_refused() {
    let srv = Server::start();
    let key = srv.key("service");
    for bad in ["", "stw_nope", &key[..key.len() - 1]] {
        let r = srv.post("/v1/subjects", bad, Value::Null);
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.body["error"]["code"], "unauthenticated");
    }
    let (info, revoked) = srv.vault.create_api_key("old", "service").unwrap();
    srv.vault.revoke_api_key(&info.id).unwrap();
    assert_eq!(srv.post("/v1/subjects", &revoked, Value::Null).status, 401);
    assert_eq!(srv.post("/v1/subjects", &key, Value::Null).status, 201);
}

/// Every role of the policy against every endpoint: an operation outside the role's `may`
/// list is refused with `operation_not_permitted`, and one inside it never is.
#[test]
fn p21_authorization_matrix_follows_the_policy() {
    let srv = Server::start();
    let service = srv.key("service");
    let policy = srv.vault.policy().clone();
    let mut checked = 0;
    for role in &policy.roles {
        let key = srv.key(&role.name);
        let subject = srv.subject(&service);
        let s = |tail: &str| format!("/v1/subjects/{subject}{tail}");
        let why = json!("matrix test");
        let attempts: Vec<(Capability, Box<dyn Fn() -> crate::http::Reply + '_>)> = vec![
            (
                Capability::SubjectsRegister,
                Box::new(|| srv.post("/v1/subjects", &key, Value::Null)),
            ),
            (
                Capability::SubjectsRegister,
                Box::new(|| {
                    srv.post(
                        "/v1/subjects/lookup",
                        &key,
                        json!({"category": "email", "value": "wang.fang@example.cn"}),
                    )
                }),
            ),
            (
                Capability::PiCollect,
                Box::new(|| {
                    srv.post(&s("/collect"), &key, json!({"feature": "sms", "values": [{"category": "phone", "value": "+86 1"}], "source": {"kind": "subject"}}))
                }),
            ),
            (
                Capability::PiRead,
                Box::new(|| {
                    srv.post(&s("/read"), &key, json!({"categories": ["email"], "purpose": "provide_service", "justification": why}))
                }),
            ),
            (
                Capability::ConsentRecord,
                Box::new(|| {
                    srv.post(
                        &s("/consents"),
                        &key,
                        json!({"target": "purpose:surveys", "granted": true, "channel": "web"}),
                    )
                }),
            ),
            (
                Capability::DisclosureRecord,
                Box::new(|| {
                    srv.post(&s("/disclosures"), &key, json!({"recipient": "sms_gateway", "categories": ["phone"], "purpose": "provide_service", "justification": why}))
                }),
            ),
            (
                Capability::SubjectExport,
                Box::new(|| srv.get(&s("/export"), &key)),
            ),
            (
                Capability::Audit,
                Box::new(|| srv.get("/v1/audit/checkpoints", &key)),
            ),
            (
                Capability::Audit,
                Box::new(|| srv.post("/v1/audit/checkpoints", &key, Value::Null)),
            ),
            (
                Capability::HoldsManage,
                Box::new(|| srv.get(&s("/holds"), &key)),
            ),
            (
                Capability::RequestsManage,
                Box::new(|| srv.post(&s("/requests"), &key, json!({"kind": "access"}))),
            ),
            (
                Capability::RequestsManage,
                Box::new(|| srv.get("/v1/requests?due_within_days=30", &key)),
            ),
            (
                Capability::RetentionRun,
                Box::new(|| srv.post("/v1/retention/sweep", &key, json!({"dry_run": true}))),
            ),
            (
                Capability::IncidentsManage,
                Box::new(|| srv.get("/v1/incidents", &key)),
            ),
            (
                Capability::DisclosuresLegal,
                Box::new(|| {
                    srv.post(&s("/disclosures/legal"), &key, json!({"basis": "law", "requested_by": "Tax bureau", "reference": "T-1", "categories": ["email"]}))
                }),
            ),
            (
                Capability::TransfersManage,
                Box::new(|| srv.get("/v1/transfers", &key)),
            ),
            (
                Capability::SubjectErase,
                Box::new(|| srv.post(&s("/erasure"), &key, json!({"reason": "matrix test"}))),
            ),
        ];
        for (capability, attempt) in attempts {
            let r = attempt();
            let refused = r.body["error"]["code"] == "operation_not_permitted";
            if role.may.contains(capability) {
                assert!(
                    !refused,
                    "role {} was refused {}: {}",
                    role.name,
                    capability.as_str(),
                    r.body
                );
                assert!(r.status < 500, "{}", r.body);
            } else {
                assert!(
                    refused,
                    "role {} was not refused {}: {} {}",
                    role.name,
                    capability.as_str(),
                    r.status,
                    r.body
                );
                assert_eq!(r.status, 403);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, policy.roles.len() * 17);
}

#[test]
fn p23_p28_a_subject_lives_collected_read_exported_and_erased_over_http() {
    let srv = Server::start();
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let id = srv.subject(&service);
    let read = |key: &str, purpose: &str| {
        srv.post(
            &format!("/v1/subjects/{id}/read"),
            key,
            json!({"categories": ["email"], "purpose": purpose}),
        )
    };
    let r = read(&service, "provide_service");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["values"][0]["value"], "wang.fang@example.cn");
    // Time is the injected clock's, not the wall clock's.
    assert_eq!(r.body["values"][0]["collected_ms"], srv.clock.now_ms());

    let r = read(&service, "relevant_offers");
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("consent_required"))
    );
    assert_eq!(r.body["error"]["rule"], "purposes.relevant_offers.basis");
    let r = srv.post(
        &format!("/v1/subjects/{id}/consents"),
        &service,
        json!({"target": "purpose:relevant_offers", "granted": true, "channel": "app"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let receipt: steward_core::SignedDocument = serde_json::from_value(r.body).unwrap();
    let payload =
        steward_core::evidence::verify_document(&receipt, Some(srv.vault.public_key())).unwrap();
    assert_eq!(payload["target"], "purpose:relevant_offers");
    assert_eq!(read(&service, "relevant_offers").status, 200);

    let r = srv.post(
        "/v1/subjects/lookup",
        &service,
        json!({"category": "email", "value": "Wang.Fang@example.cn"}),
    );
    assert_eq!(r.body["subject"], id.as_str());

    let r = srv.post(
        &format!("/v1/subjects/{id}/export"),
        &officer,
        json!({"justification": "the subject asked"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["type"], "steward.subject-export.v1");
    assert_eq!(r.body["records"].as_array().unwrap().len(), 3);

    let r = srv.post(
        &format!("/v1/subjects/{id}/erasure"),
        &officer,
        json!({"reason": "subject request"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let cert: steward_core::SignedDocument = serde_json::from_value(r.body).unwrap();
    let payload =
        steward_core::evidence::verify_document(&cert, Some(srv.vault.public_key())).unwrap();
    assert_eq!(payload["subject"], id.as_str());
    let r = read(&service, "provide_service");
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (410, Some("subject_erased"))
    );
    let r = srv.post(
        &format!("/v1/subjects/{id}/erasure"),
        &officer,
        json!({"reason": "again"}),
    );
    assert_eq!(r.status, 410);
}

#[test]
fn p34_bad_input_gets_a_4xx_with_a_stable_code_and_never_echoes_values() {
    let srv = Server::start();
    let key = srv.key("service");
    let id = srv.subject(&key);
    let secret = "li.lei.private@example.cn";
    let cases: Vec<(crate::http::Reply, u16, &str)> = vec![
        (srv.post_raw(&format!("/v1/subjects/{id}/read"), &key, "application/json", "{not json"), 400, "invalid_json"),
        (
            srv.post(&format!("/v1/subjects/{id}/read"), &key, json!({"categories": secret, "purpose": 7})),
            422,
            "invalid_body",
        ),
        (
            srv.post(
                &format!("/v1/subjects/{id}/read"),
                &key,
                json!({"categories": ["email"], "purpose": "provide_service", "justifcation": secret}),
            ),
            422,
            "invalid_body",
        ),
        (
            srv.post(
                &format!("/v1/subjects/{id}/consents"),
                &key,
                json!({"target": "purpose:surveys", "granted": true, "channel": secret}),
            ),
            400,
            "invalid_input",
        ),
        (
            srv.post_raw(&format!("/v1/subjects/{id}/read"), &key, "text/plain", secret),
            415,
            "unsupported_media_type",
        ),
        (
            srv.post("/v1/subjects/not-a-uuid/read", &key, json!({"categories": ["email"], "purpose": "provide_service"})),
            400,
            "invalid_input",
        ),
        (
            srv.post(&format!("/v1/subjects/{id}/read"), &key, json!({"categories": [secret], "purpose": "provide_service"})),
            400,
            "unknown_category",
        ),
        (
            srv.post(
                &format!("/v1/subjects/{id}/collect"),
                &key,
                json!({"feature": "sms", "values": [{"category": "government_id", "value": secret}], "source": {"kind": "subject"}}),
            ),
            422,
            "category_not_declared",
        ),
        (
            srv.post(
                "/v1/subjects/00000000-0000-4000-8000-000000000000/read",
                &key,
                json!({"categories": ["email"], "purpose": "provide_service"}),
            ),
            404,
            "subject_not_found",
        ),
        (
            srv.post_oversized(&format!("/v1/subjects/{id}/read"), &key, 2 << 20),
            413,
            "body_too_large",
        ),
        (srv.get("/v1/no/such/thing", &key), 404, "not_found"),
    ];
    for (i, (r, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(r.status, status, "case {i}: {}", r.body);
        assert_eq!(r.body["error"]["code"], code, "case {i}: {}", r.body);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains(secret),
            "case {i} echoes the value: {message}"
        );
    }
    // Nor does the audit log, which records every refusal above.
    let mut entries = 0;
    srv.vault
        .store()
        .audit_scan(1, &mut |e| {
            entries += 1;
            assert!(
                !e.bytes
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes()),
                "audit entry {} holds the value",
                e.seq
            );
            true
        })
        .unwrap();
    assert!(entries > 5);
    // The server is still up and answering.
    assert_eq!(srv.get("/health/ready", &key).status, 200);
}

/// Whatever refuses a request — the router, the edge, an extractor, a handler — answers in the
/// one JSON shape with a catalogue code; ids that do not exist get their own not-found codes.
#[test]
fn p34_every_refusal_has_the_one_error_shape_and_a_catalogue_code() {
    let srv = Server::start();
    let key = srv.key("privacy_officer");
    let long = "a".repeat(9000);
    let many: String = (0..120).map(|i| format!("X-Extra-{i}: {i}\r\n")).collect();
    let cases: Vec<(&str, (crate::http::Reply, String), u16, &str)> = vec![
        (
            "wrong method",
            srv.raw("PUT /v1/subjects HTTP/1.1\r\n"),
            405,
            "method_not_allowed",
        ),
        (
            "bad query",
            srv.raw(&format!(
                "GET /v1/requests?due_within_days=soon HTTP/1.1\r\nAuthorization: Bearer {key}\r\n"
            )),
            400,
            "invalid_query",
        ),
        (
            "undecodable path",
            srv.raw(&format!(
                "GET /v1/requests/%FF%FE HTTP/1.1\r\nAuthorization: Bearer {key}\r\n"
            )),
            400,
            "invalid_path",
        ),
        (
            "long path",
            srv.raw(&format!("GET /v1/requests/{long} HTTP/1.1\r\n")),
            414,
            "uri_too_long",
        ),
        (
            "many headers",
            srv.raw(&format!("GET /health/live HTTP/1.1\r\n{many}")),
            431,
            "headers_too_large",
        ),
        (
            "no such request",
            srv.raw(&format!(
                "GET /v1/requests/req_leakmark HTTP/1.1\r\nAuthorization: Bearer {key}\r\n"
            )),
            404,
            "request_not_found",
        ),
        (
            "no such hold",
            srv.raw(&format!(
                "POST /v1/holds/hold_leakmark/lift HTTP/1.1\r\nAuthorization: Bearer {key}\r\n"
            )),
            404,
            "hold_not_found",
        ),
    ];
    for (what, ((r, headers), status, code)) in cases.into_iter().map(|(w, r, s, c)| (w, (r, s, c)))
    {
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert_eq!(r.body["error"]["code"], code, "{what}: {}", r.body);
        assert!(
            headers.contains("content-type: application/json"),
            "{what}: {headers}"
        );
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty() && !message.contains("leakmark"),
            "{what}: {message}"
        );
        if status == 405 {
            assert!(headers.contains("allow: post"), "{what}: {headers}");
        }
    }
    // A body's faults name the field, never the value; an array is not an object.
    let service = srv.key("service");
    let id = srv.subject(&service);
    let r = srv.post(
        &format!("/v1/subjects/{id}/collect"),
        &service,
        json!({"feature": "account", "values": [{"category": 7, "value": "leakmark"}], "source": {"kind": "subject"}}),
    );
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (422, Some("invalid_body"))
    );
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`values[0].category`"), "{message}");
    let r = srv.post(
        &format!("/v1/subjects/{id}/read"),
        &service,
        json!([["email"], "provide_service", "leakmark"]),
    );
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (422, Some("invalid_body")),
        "{}",
        r.body
    );
}

#[test]
fn openapi_served_matches_the_committed_document() {
    let srv = Server::start();
    let served = srv.get("/openapi.json", "");
    assert_eq!(served.status, 200);
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        served.body, committed,
        "docs/openapi.json is stale: run `cargo run -- openapi > docs/openapi.json`"
    );
    assert_eq!(served.body["openapi"], "3.1.0");
    // And it is a valid OpenAPI 3.1 document, by an independent validator.
    let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let checked = std::process::Command::new("python3")
        .args(["-c", "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1])))"])
        .arg(&doc)
        .output()
        .expect("python3 runs");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for path in [
        "/v1/subjects/{id}/read",
        "/v1/subjects/{id}/erasure",
        "/v1/audit/checkpoints",
    ] {
        assert!(served.body["paths"][path].is_object(), "{path} missing");
    }
}

/// P23-P28, P32: a request taken from received to completed, and another to refused, over the
/// API alone; deadlines move with the server's clock, not the wall clock.
#[test]
fn p26_p32_rights_requests_over_the_api() {
    let srv = Server::start();
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let id = srv.subject(&service);

    let r = srv.post(
        &format!("/v1/subjects/{id}/requests"),
        &officer,
        json!({"kind": "access"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let access = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["state"], "received");
    assert_eq!(
        r.body["due_ms"],
        srv.clock.now_ms() + 30 * steward_core::DAY_MS
    );

    let r = srv.post(
        &format!("/v1/requests/{access}/complete"),
        &officer,
        json!({}),
    );
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("request_state"))
    );
    let r = srv.post(
        &format!("/v1/requests/{access}/verify"),
        &officer,
        json!({"method": "otp"}),
    );
    assert_eq!(r.body["state"], "verified", "{}", r.body);
    assert_eq!(
        srv.post(
            &format!("/v1/requests/{access}/start"),
            &officer,
            Value::Null
        )
        .body["state"],
        "in_progress"
    );

    // 29 days on, it is due within 7 days; 31 days on, overdue.
    srv.clock.advance(29 * steward_core::DAY_MS);
    let due = srv.get("/v1/requests?due_within_days=7", &officer);
    assert_eq!(due.body.as_array().unwrap().len(), 1, "{}", due.body);
    assert_eq!(due.body[0]["overdue"], false);
    srv.clock.advance(2 * steward_core::DAY_MS);
    let due = srv.get("/v1/requests?due_within_days=0", &officer);
    assert_eq!(due.body[0]["overdue"], true);

    let r = srv.post(
        &format!("/v1/requests/{access}/complete"),
        &officer,
        json!({"note": "sent to the verified email", "justification": "the subject's request"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["request"]["state"], "completed");
    assert_eq!(r.body["export"]["records"].as_array().unwrap().len(), 3);

    let r = srv.post(
        &format!("/v1/subjects/{id}/requests"),
        &officer,
        json!({"kind": "deletion"}),
    );
    let deletion = r.body["id"].as_str().unwrap().to_string();
    let r = srv.post(
        &format!("/v1/requests/{deletion}/refuse"),
        &officer,
        json!({"reason": "because"}),
    );
    assert_eq!(r.status, 400);
    let r = srv.post(
        &format!("/v1/requests/{deletion}/refuse"),
        &officer,
        json!({"reason": "legal_obligation", "note": "tax records must be kept"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (
            r.body["state"].as_str(),
            r.body["outcome"]["refused"].as_str()
        ),
        (Some("refused"), Some("legal_obligation"))
    );
    assert!(
        srv.get("/v1/requests?due_within_days=365", &officer)
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn p18_p17_holds_and_retention_over_the_api() {
    let srv = Server::start();
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let id = srv.subject(&service);
    let until = srv.clock.now_ms() + 10 * steward_core::DAY_MS;
    let r = srv.post(
        &format!("/v1/subjects/{id}/holds"),
        &officer,
        json!({"reason": "dispute", "reference": "ticket 5512", "until_ms": until}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let hold = r.body["id"].as_str().unwrap().to_string();
    let r = srv.post(
        &format!("/v1/subjects/{id}/erasure"),
        &officer,
        json!({"reason": "asked"}),
    );
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("legal_hold"))
    );
    let r = srv.post(&format!("/v1/holds/{hold}/lift"), &officer, Value::Null);
    assert_eq!(r.body["active"], false, "{}", r.body);
    let r = srv.post("/v1/retention/sweep", &officer, json!({"dry_run": true}));
    assert_eq!(
        (r.status, r.body["dry_run"].as_bool()),
        (200, Some(true)),
        "{}",
        r.body
    );
    assert_eq!(
        srv.post(
            &format!("/v1/subjects/{id}/erasure"),
            &officer,
            json!({"reason": "asked"})
        )
        .status,
        201
    );
}

/// Reads from many clients at once share transactions (group commit); every one is answered,
/// every one is audited, and the log stays one verifiable chain (P21, P33).
#[test]
fn p21_concurrent_reads_are_each_audited_in_one_chain() {
    let srv = Server::start();
    let service = srv.key("service");
    let ids: Vec<String> = (0..8).map(|_| srv.subject(&service)).collect();
    let before_seq = srv.vault.store().audit_head().unwrap().0;
    std::thread::scope(|scope| {
        for t in 0..16 {
            let (srv, ids, service) = (&srv, &ids, &service);
            scope.spawn(move || {
                for i in 0..25 {
                    let id = &ids[(t + i) % ids.len()];
                    let r = srv.post(
                        &format!("/v1/subjects/{id}/read"),
                        service,
                        json!({"categories": ["email"], "purpose": "provide_service"}),
                    );
                    assert_eq!(r.status, 200, "{}", r.body);
                    let n = ids.iter().position(|i| i == id).unwrap();
                    assert_eq!(r.body["values"][0]["value"], Server::email_of(n).as_str());
                }
            });
        }
    });
    let (after_seq, _) = srv.vault.store().audit_head().unwrap();
    assert_eq!(after_seq - before_seq, 16 * 25, "one audit entry per read");
    let report = srv.verified();
    assert_eq!(report.head_seq, after_seq);
}

/// 64 clients write at once (consents, each with its receipt and audit entry): every write
/// acknowledged is stored at the audit entry its receipt names, and the log is one chain. On
/// PostgreSQL this runs through the group commit (CI runs this binary on both backends).
#[test]
fn p21_sixty_four_concurrent_writers_keep_one_chain_and_lose_nothing() {
    let srv = Server::start();
    let service = srv.key("service");
    let ids: Vec<String> = (0..64).map(|_| srv.subject(&service)).collect();
    let before_seq = srv.vault.store().audit_head().unwrap().0;
    let acknowledged: Vec<(String, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let (srv, service) = (&srv, &service);
                scope.spawn(move || {
                    (0..10)
                        .map(|i| {
                            let seq = srv.consent_write(id, service, i % 2 == 0).unwrap();
                            (id.clone(), seq)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(acknowledged.len(), 640);
    srv.assert_consents_kept(&acknowledged);
    let report = srv.verified();
    assert_eq!(
        report.head_seq - before_seq,
        640,
        "one audit entry per write"
    );
}

#[test]
fn p21_staff_sign_in_over_http_and_read_with_a_justification() {
    let srv = Server::start();
    let service = srv.key("service");
    let id = srv.subject(&service);
    srv.vault
        .create_staff("li.na", "support", "a long staff password")
        .unwrap();
    let r = srv.post(
        "/v1/staff/session",
        "",
        json!({"username": "li.na", "password": "not the password"}),
    );
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (401, Some("sign_in_failed"))
    );
    let r = srv.post(
        "/v1/staff/session",
        "",
        json!({"username": "li.na", "password": "a long staff password"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let staff = r.body["token"].as_str().unwrap().to_string();
    let read = |body: Value| srv.post(&format!("/v1/subjects/{id}/read"), &staff, body);
    let r = read(json!({"categories": ["phone"], "purpose": "support"}));
    assert_eq!(r.body["error"]["code"], "justification_required");
    let r =
        read(json!({"categories": ["phone"], "purpose": "support", "justification": "ticket 881"}));
    assert_eq!(r.status, 200, "{}", r.body);
    // Support may not erase.
    let r = srv.post(
        &format!("/v1/subjects/{id}/erasure"),
        &staff,
        json!({"reason": "x"}),
    );
    assert_eq!(r.body["error"]["code"], "operation_not_permitted");
}

/// A correction replaces what it corrects: after it, reads, the export and lookups know only
/// the new value, the old record is gone from the store, and the act is audited as
/// `pi.correct` (P24). A corrected value that is another subject's sign-in address is refused.
#[test]
fn p24_a_correction_replaces_the_value_it_corrects() {
    let srv = Server::start();
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let id = srv.subject(&service);
    let other = srv.subject(&service);
    let r = srv.post(
        &format!("/v1/subjects/{id}/requests"),
        &officer,
        json!({"kind": "correction", "text": "my email address is wrong"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let rid = r.body["id"].as_str().unwrap().to_string();
    let r = srv.post(
        &format!("/v1/requests/{rid}/verify"),
        &officer,
        json!({"method": "otp"}),
    );
    assert_eq!(r.body["state"], "verified", "{}", r.body);
    let complete = |value: &str| {
        srv.post(
            &format!("/v1/requests/{rid}/complete"),
            &officer,
            json!({"note": "corrected", "justification": "the subject's request", "corrections": [{"category": "email", "value": value}]}),
        )
    };
    // Another subject's address: refused, nothing changed.
    let r = complete(&Server::email_of(1));
    assert_eq!(r.body["error"]["code"], "identity_in_use", "{}", r.body);
    let _ = other;
    let r = complete("wang.fang@new.example.cn");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["request"]["state"], "completed");
    assert_eq!(r.body["request"]["outcome"]["corrected"]["email"], 1);

    let r = srv.post(
        &format!("/v1/subjects/{id}/read"),
        &service,
        json!({"categories": ["email"], "purpose": "provide_service"}),
    );
    let values = r.body["values"].as_array().unwrap();
    assert_eq!(values.len(), 1, "{}", r.body);
    assert_eq!(values[0]["value"], "wang.fang@new.example.cn");
    let export = srv.post(
        &format!("/v1/subjects/{id}/export"),
        &officer,
        json!({"justification": "checking the correction"}),
    );
    let emails: Vec<&Value> = export.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["category"] == "email")
        .map(|r| &r["value"])
        .collect();
    assert_eq!(emails, [&json!("wang.fang@new.example.cn")]);
    let found = |email: &str| {
        srv.post(
            "/v1/subjects/lookup",
            &service,
            json!({"category": "email", "value": email}),
        )
        .body["subject"]
            .clone()
    };
    assert_eq!(found("wang.fang@new.example.cn"), json!(id));
    assert_ne!(found("wang.fang@example.cn"), json!(id));
    // The old record is deleted from the store, not hidden.
    let key: steward_core::SubjectId = id.parse().unwrap();
    let stored = srv.vault.store().records(&key.0).unwrap();
    assert_eq!(stored.iter().filter(|r| r.category == "email").count(), 1);
    let log = srv.audit_text();
    assert!(
        log.contains("pi.correct"),
        "no pi.correct entry: {}",
        &log[log.len().saturating_sub(600)..]
    );
    assert!(
        !log.contains("wang.fang@new.example.cn"),
        "a value in the log"
    );
    // Only a correction request takes corrected values.
    let r = srv.post(
        &format!("/v1/subjects/{id}/requests"),
        &officer,
        json!({"kind": "access"}),
    );
    let access = r.body["id"].as_str().unwrap().to_string();
    srv.post(
        &format!("/v1/requests/{access}/verify"),
        &officer,
        json!({"method": "otp"}),
    );
    let r = srv.post(
        &format!("/v1/requests/{access}/complete"),
        &officer,
        json!({"justification": "the subject's request", "corrections": [{"category": "email", "value": "x@example.cn"}]}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
}

/// P31, P32: requests and inquiries past their deadline are listed apart from those merely due,
/// the longest overdue first, and leave the list once answered.
#[test]
fn p31_overdue_inquiries_are_listed_apart_from_those_merely_due() {
    let srv = Server::start();
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let id = srv.subject(&service);
    let open = |kind: &str| {
        let r = srv.post(
            &format!("/v1/subjects/{id}/requests"),
            &officer,
            json!({"kind": kind, "text": "为什么保留我的 IP 地址？"}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    };
    let ids = |r: crate::http::Reply| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    let inquiry = open("inquiry");
    srv.clock.advance(steward_core::DAY_MS);
    let access = open("access");
    assert!(ids(srv.get("/v1/requests/overdue", &officer)).is_empty());
    srv.clock.advance(10 * steward_core::DAY_MS);
    let later = open("inquiry");
    // Day 31 after the first: the first two are overdue, the third merely due.
    srv.clock.advance(20 * steward_core::DAY_MS + 1);
    assert_eq!(
        ids(srv.get("/v1/requests/overdue", &officer)),
        [inquiry.clone(), access.clone()]
    );
    assert_eq!(
        ids(srv.get("/v1/requests/overdue?kind=inquiry", &officer)),
        std::slice::from_ref(&inquiry)
    );
    let due = srv.get("/v1/requests?due_within_days=30", &officer);
    let later_one = due
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == later.as_str())
        .unwrap();
    assert_eq!(later_one["overdue"], false);
    // Answered: off the list.
    srv.post(
        &format!("/v1/requests/{inquiry}/verify"),
        &officer,
        json!({"method": "documents"}),
    );
    let r = srv.post(
        &format!("/v1/requests/{inquiry}/complete"),
        &officer,
        json!({"note": "answered by phone", "justification": "answering the inquiry"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        ids(srv.get("/v1/requests/overdue", &officer)),
        std::slice::from_ref(&access)
    );
    let r = srv.get("/v1/requests/overdue?kind=nonsense", &officer);
    assert_eq!(r.body["error"]["code"], "invalid_input", "{}", r.body);
    // Only roles that work requests see them.
    let r = srv.get("/v1/requests/overdue", &srv.key("marketing"));
    assert_eq!(r.body["error"]["code"], "operation_not_permitted");
}

/// Global Privacy Control (P7): the site says it honours it, and a consent grant sent with
/// `Sec-GPC: 1` is refused — audited, nothing put in force — unless it carries the person's
/// explicit act, which the log then records; a withdrawal always goes through.
#[test]
fn p07_a_grant_under_global_privacy_control_needs_the_persons_explicit_act() {
    let srv = Server::start();
    let r = srv.get("/.well-known/gpc.json", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"gpc": true, "lastUpdate": "2026-01-01"}));
    let service = srv.key("service");
    let id = srv.subject(&service);
    let path = format!("/v1/subjects/{id}/consents");
    let gpc = &[("Sec-GPC", "1")];
    let grant = json!({"target": "purpose:relevant_offers", "granted": true, "channel": "web"});
    let r = srv.post_with(&path, &service, gpc, grant.clone());
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("gpc_signal")),
        "{}",
        r.body
    );
    let held = srv.get(&path, &service);
    assert!(
        !held
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["target"] == "purpose:relevant_offers" && c["granted"] == true),
        "{}",
        held.body
    );
    let r = srv.post_with(&path, &service, gpc, json!({"target": "purpose:relevant_offers", "granted": true, "channel": "web", "action": "wink"}));
    assert_eq!(r.body["error"]["code"], "invalid_input", "{}", r.body);
    // Without the signal, as before; with it and the person's act, recorded as such.
    assert_eq!(srv.post(&path, &service, grant.clone()).status, 201);
    let r = srv.post_with(&path, &service, gpc, json!({"target": "purpose:relevant_offers", "granted": true, "channel": "web", "action": "toggle"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = srv.post_with(
        &path,
        &service,
        gpc,
        json!({"target": "purpose:relevant_offers", "granted": false, "channel": "web"}),
    );
    assert_eq!(r.status, 201, "a withdrawal needs no act: {}", r.body);
    let log = srv.audit_text();
    assert!(log.contains("gpc_signal"), "the refusal is audited");
    assert!(
        log.contains("\"gpc\":true") && log.contains("\"action\":\"toggle\""),
        "{log}"
    );
}
