//! P21, P34: every act that reveals PI states the justification its role demands, and no
//! free text a person types — justifications, notes on requests, a hold's reference, an
//! erasure's reason — reaches the audit log or a column in clear.

use serde_json::{Value, json};

use crate::http::Server;

/// Every stored row and entry a typed text could land in, as text: the audit log, the
/// subject's holds and requests.
fn stored_text(srv: &Server, subject: &str) -> String {
    let key = subject.parse::<steward_core::SubjectId>().unwrap().0;
    let store = srv.vault.store();
    let mut out = srv.audit_text();
    for h in store.holds(&key).unwrap() {
        out.push_str(&h.reference);
    }
    for r in store.requests_of(&key).unwrap() {
        out.push_str(&r.outcome);
        out.push_str(&String::from_utf8_lossy(&r.sealed_text));
    }
    out
}

/// The newest audit entry with `action`, parsed.
fn last_entry(srv: &Server, action: &str) -> steward_audit::Entry {
    let mut found = None;
    srv.vault
        .store()
        .audit_scan(1, &mut |e| {
            let entry = steward_audit::Entry::decode(e.bytes, e.hash.try_into().unwrap()).unwrap();
            if entry.action == action {
                found = Some(entry);
            }
            true
        })
        .unwrap();
    found.unwrap_or_else(|| panic!("no `{action}` entry"))
}

#[test]
fn p21_every_act_that_reveals_pi_states_why_and_no_typed_text_reaches_the_log() {
    let srv = Server::start();
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let id = srv.subject(&service);
    let subject = |tail: &str| format!("/v1/subjects/{id}{tail}");
    let why = "leakmark-why: Zhao Lei's ticket 4471";

    // An export: refused without a justification under a role that must state one, over GET
    // and over POST alike; given with one.
    for r in [
        srv.get(&subject("/export"), &officer),
        srv.post(&subject("/export"), &officer, json!({})),
        srv.post(
            &subject("/export"),
            &officer,
            json!({"justification": "  "}),
        ),
    ] {
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (403, Some("justification_required")),
            "{}",
            r.body
        );
    }
    let r = srv.post(&subject("/export"), &officer, json!({"justification": why}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["records"].as_array().unwrap().len(), 3);
    // A service role states none, as before.
    assert_eq!(
        srv.get(&subject("/export"), &srv.key("service")).status,
        403
    );

    // A read and a disclosure with it.
    let r = srv.post(
        &subject("/read"),
        &officer,
        json!({"categories": ["email"], "purpose": "support", "justification": why}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let disclose = |body: Value| srv.post(&subject("/disclosures"), &officer, body);
    let r = disclose(
        json!({"recipient": "sms_gateway", "categories": ["phone"], "purpose": "provide_service"}),
    );
    assert_eq!(
        r.body["error"]["code"], "justification_required",
        "{}",
        r.body
    );
    let r = disclose(
        json!({"recipient": "sms_gateway", "categories": ["phone"], "purpose": "provide_service", "justification": why}),
    );
    assert_eq!(r.status, 201, "{}", r.body);

    // Completing a request acts on PI: it needs one too.
    let open = |kind: &str| {
        let r = srv.post(&subject("/requests"), &officer, json!({"kind": kind}));
        assert_eq!(r.status, 201, "{}", r.body);
        let rid = r.body["id"].as_str().unwrap().to_string();
        let r = srv.post(
            &format!("/v1/requests/{rid}/verify"),
            &officer,
            json!({"method": "documents"}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        rid
    };
    let access = open("access");
    let complete =
        |rid: &str, body: Value| srv.post(&format!("/v1/requests/{rid}/complete"), &officer, body);
    let r = complete(&access, json!({"note": "leakmark-note: sent to Zhao Lei"}));
    assert_eq!(
        r.body["error"]["code"], "justification_required",
        "{}",
        r.body
    );
    let r = complete(
        &access,
        json!({"note": "leakmark-note: sent to Zhao Lei", "justification": why}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["export"]["records"].as_array().unwrap().len(), 3);
    // The note comes back opened, to staff and in the request.
    assert_eq!(
        r.body["request"]["outcome"]["note"], "leakmark-note: sent to Zhao Lei",
        "{}",
        r.body
    );
    let r = srv.get(&format!("/v1/requests/{access}"), &officer);
    assert_eq!(r.body["outcome"]["note"], "leakmark-note: sent to Zhao Lei");

    // A refusal's note and a hold's reference.
    let refused = open("deletion");
    let r = srv.post(
        &format!("/v1/requests/{refused}/refuse"),
        &officer,
        json!({"reason": "legal_hold", "note": "leakmark-refusal: Zhao Lei's court case"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["outcome"]["refused"], "legal_hold");
    assert_eq!(
        r.body["outcome"]["note"],
        "leakmark-refusal: Zhao Lei's court case"
    );
    let r = srv.post(
        &subject("/holds"),
        &officer,
        json!({"categories": [], "reason": "court_order", "reference": "leakmark-ref: (2026) Jing 0105 No. 88, Zhao Lei", "until_ms": 4_070_908_800_000_i64}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["reference"],
        "leakmark-ref: (2026) Jing 0105 No. 88, Zhao Lei"
    );
    let holds = srv.get(&subject("/holds"), &officer);
    assert_eq!(
        holds.body[0]["reference"],
        "leakmark-ref: (2026) Jing 0105 No. 88, Zhao Lei"
    );
    // A note over the limit is refused, naming the limit.
    let r = srv.post(
        &format!("/v1/requests/{}/refuse", open("correction")),
        &officer,
        json!({"reason": "security", "note": "x".repeat(2_001)}),
    );
    assert_eq!(r.body["error"]["code"], "invalid_input", "{}", r.body);

    // None of it is in the log or a column in clear: only keyed digests and sealed texts.
    let stored = stored_text(&srv, &id);
    assert!(!stored.contains("leakmark"), "typed text stored in clear");
    assert!(!stored.contains("Zhao Lei"), "typed text stored in clear");
    for action in [
        "subject.export",
        "pi.read",
        "disclosure.record",
        "request.complete",
    ] {
        let entry = last_entry(&srv, action);
        let detail: Value = serde_json::from_str(&entry.detail).unwrap();
        assert_eq!(
            detail["justification_digest"].as_str().map(str::len),
            Some(32),
            "{action}: {detail}"
        );
        assert!(
            detail["justification_sealed"]
                .as_str()
                .is_some_and(|s| s.starts_with("sealed:")),
            "{action}: {detail}"
        );
        // The privacy officer opens it, for that entry and its subject only.
        let path = format!("/v1/audit/entries/{}/justification", entry.seq);
        let r = srv.post(&path, &officer, json!({"subject": id}));
        assert_eq!((r.status, &r.body["justification"]), (200, &json!(why)));
        let other = srv.subject(&service);
        let r = srv.post(&path, &officer, json!({"subject": other}));
        assert_eq!(r.body["error"]["code"], "entry_not_found", "{}", r.body);
        // Those who may not read the audit log may not open it.
        let r = srv.post(&path, &srv.key("support"), json!({"subject": id}));
        assert_eq!(r.body["error"]["code"], "operation_not_permitted");
    }

    // An erasure's typed reason: a keyed digest in the log and in the certificate.
    let gone = srv.subject(&service);
    let r = srv.post(
        &format!("/v1/requests/{}/refuse", {
            let r = srv.post(
                &format!("/v1/subjects/{gone}/requests"),
                &officer,
                json!({"kind": "inquiry"}),
            );
            r.body["id"].as_str().unwrap().to_string()
        }),
        &officer,
        json!({"reason": "rights_of_others", "note": "leakmark-gone: about Qian Wei"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = srv.post(
        &format!("/v1/subjects/{gone}/erasure"),
        &officer,
        json!({"reason": "leakmark-erase: Qian Wei's letter of 3 May"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let cert: steward_core::SignedDocument = serde_json::from_value(r.body).unwrap();
    let payload =
        steward_core::evidence::verify_document(&cert, Some(srv.vault.public_key())).unwrap();
    assert!(payload.get("reason").is_none(), "{payload}");
    assert_eq!(payload["reason_digest"].as_str().map(str::len), Some(32));
    assert!(!payload.to_string().contains("leakmark"));
    assert!(!srv.audit_text().contains("leakmark"));
    // Erasure shreds what was sealed under the subject's key: the refusal's note is gone.
    let key = gone.parse::<steward_core::SubjectId>().unwrap().0;
    let request = srv.vault.store().requests_of(&key).unwrap().remove(0);
    let r = srv.get(&format!("/v1/requests/{}", request.id), &officer);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["outcome"]["refused"], "rights_of_others");
    assert!(r.body["outcome"].get("note").is_none(), "{}", r.body);
}
