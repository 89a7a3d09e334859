//! Issue 13 (P14, P15, P22) over the wire: an incident opened through the API with its
//! affected set computed from what was collected, its report in both languages, the
//! affected notified through real SMTP in their language and by a signed push webhook an
//! independent implementation verifies, and announced; a legal disclosure whose notice waits
//! for its restriction to end.

use serde_json::{Value, json};

use crate::http::Server;
use crate::outbox::Receiver;
use crate::selfservice::SmtpSink;

const HOUR: i64 = 3_600_000;

#[test]
fn p22_an_incident_is_opened_reported_and_the_affected_told_over_http() {
    let srv = Server::start();
    let now = srv.to_real_time();
    let t = steward_core::clock::rfc3339;
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    // Three subjects with an email address (the kit's), one of them writing in English.
    let subjects: Vec<String> = (0..3).map(|_| srv.subject(&service)).collect();
    let r = srv.post(
        &format!("/v1/subjects/{}/language", subjects[2]),
        &service,
        json!({"language": "en"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let receiver = Receiver::registered(
        &srv,
        &officer,
        &["incident.opened", "incident.announced", "incident.push"],
        0,
    );
    let sink = SmtpSink::start();

    let body = json!({
        "title": "Support export left public",
        "detected_at": t(now),
        "grade": "relatively_major",
        "cause": "a support export was left in a public bucket",
        "harm": "phishing emails that name you",
        "advice": {"en": "Do not open links in mails asking you to sign in.", "zh-CN": "请勿打开要求您登录的邮件中的链接。"},
        "exposure": {"categories": ["email"], "from": t(now - HOUR), "to": t(now)},
    });
    let r = srv.post("/v1/incidents", &service, body.clone());
    assert_eq!(
        r.body["error"]["code"], "operation_not_permitted",
        "{}",
        r.body
    );
    let r = srv.post("/v1/incidents", &officer, body);
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["affected"]["subjects"], 3, "{}", r.body);
    assert_eq!(r.body["affected"]["by_category"]["email"], 3);
    let clock = &r.body["clocks"][0];
    assert_eq!(
        (clock["regime"].as_str(), clock["part"].as_str()),
        (Some("cn"), Some("initial"))
    );
    assert_eq!(clock["due_at"], t(now + 4 * HOUR));
    assert_eq!(
        srv.get(&format!("/v1/incidents/{id}"), &service).status,
        403
    );
    assert_eq!(
        srv.get("/v1/incidents/inc_nope", &officer).body["error"]["code"],
        "incident_not_found"
    );

    // The report, as text in both languages, with every art. 57 item and the counts.
    for (lang, items) in [
        (
            "zh-CN",
            [
                "涉及的个人信息种类",
                "发生原因",
                "可能造成的危害",
                "已采取的补救措施",
                "个人可以采取的减轻危害的措施",
                "联系方式",
                "受影响人数：3",
            ],
        ),
        (
            "en",
            [
                "Categories of personal information involved",
                "Cause:",
                "Possible harm:",
                "Remedial measures taken:",
                "What you can do to reduce the harm:",
                "Contact:",
                "People affected: 3",
            ],
        ),
    ] {
        let text = srv.get_text(
            &format!("/v1/incidents/{id}/report?lang={lang}&format=text"),
            &officer,
        );
        for item in items {
            assert!(text.contains(item), "{lang}: {item} missing from\n{text}");
        }
    }
    let r = srv.get(&format!("/v1/incidents/{id}/report?lang=en"), &officer);
    assert_eq!(
        r.body["affected"]["by_region"]["cn-mainland"], 3,
        "{}",
        r.body
    );
    let r = srv.post(
        &format!("/v1/incidents/{id}/reports"),
        &officer,
        json!({"regime": "cn", "part": "initial"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["clocks"][0]["status"], "filed");
    let r = srv.post(
        &format!("/v1/incidents/{id}/steps"),
        &officer,
        json!({"kind": "containment", "text": "bucket made private"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // Notify: a mail to each, in their language, and one push per batch; announced publicly.
    let r = srv.post(&format!("/v1/incidents/{id}/notify"), &officer, Value::Null);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["notification"]["pending"], 3);
    srv.vault
        .policy_tick(std::time::Duration::from_secs(5))
        .unwrap();
    let d = srv.dispatcher(sink.port);
    while d.run_once().unwrap().claimed > 0 {}
    sink.wait_for_mails(3);
    let mail = sink.text();
    let of = |address: &str| {
        mail.split("MESSAGE FOLLOWS")
            .find(|m| m.contains(address))
            .unwrap_or_else(|| panic!("no notice to {address}: {mail}"))
            .to_string()
    };
    let zh = of(&Server::email_of(0));
    assert!(
        zh.contains("请勿打开") && zh.contains("涉及的个人信息"),
        "{zh}"
    );
    let en = of(&Server::email_of(2));
    assert!(
        en.contains("Do not open links") && en.contains("bucket made private"),
        "{en}"
    );
    let r = srv.get(&format!("/v1/incidents/{id}"), &officer);
    assert_eq!(r.body["notification"]["notified"], 3, "{}", r.body);
    assert_eq!(r.body["notification"]["pending"], 0);
    let calls = receiver.calls(3);
    assert!(calls.iter().all(|c| c["verified"] == true), "{calls:?}");
    let push = calls
        .iter()
        .find(|c| c["type"] == "incident.push")
        .expect("a push");
    let push: Value = serde_json::from_str(push["body"].as_str().unwrap()).unwrap();
    let mut pushed: Vec<String> = push["data"]["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    pushed.sort();
    let mut expected = subjects.clone();
    expected.sort();
    assert_eq!(pushed, expected);
    let notices = srv.get("/v1/notices?lang=en", "");
    assert!(
        notices
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "incident" && n["id"] == id.as_str()),
        "{}",
        notices.body
    );
    // Nothing a subject sent, and no address, reaches the log.
    assert!(!srv.audit_text().contains("example.cn"));
}

#[test]
fn p15_a_legal_disclosure_over_http_is_told_only_after_its_restriction() {
    let srv = Server::start();
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let s = srv.subject(&service);
    let now = steward_core::clock::Clock::now_ms(&*srv.clock);
    let until = now + 30 * 24 * HOUR;
    let body = json!({
        "basis": "court_order",
        "requested_by": "Haidian District People's Court",
        "reference": "(2026) Jing 0108 Min Chu 123",
        "categories": ["email"],
        "restriction": {"basis": "non-disclosure order", "until": steward_core::clock::rfc3339(until)},
    });
    let r = srv.post(
        &format!("/v1/subjects/{s}/disclosures/legal"),
        &service,
        body.clone(),
    );
    assert_eq!(
        r.body["error"]["code"], "operation_not_permitted",
        "{}",
        r.body
    );
    let r = srv.post(
        &format!("/v1/subjects/{s}/disclosures/legal"),
        &officer,
        body,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["values"][0]["category"], "email");
    let export = |srv: &Server| {
        srv.post(
            &format!("/v1/subjects/{s}/export"),
            &officer,
            json!({"justification": "asked"}),
        )
        .body
    };
    assert_eq!(export(&srv)["disclosures"], json!([]));
    let board = srv.get("/v1/deadlines?within_days=60", &officer);
    assert!(
        board
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "disclosure_notice"),
        "{}",
        board.body
    );
    let sink = SmtpSink::start();
    let d = srv.dispatcher(sink.port);
    while d.run_once().unwrap().claimed > 0 {}
    srv.clock.advance(until - now);
    while d.run_once().unwrap().claimed > 0 {}
    sink.wait_for_mails(1);
    let mail = sink.text();
    assert!(
        mail.contains("Haidian District People's Court") && mail.contains("法院命令"),
        "{mail}"
    );
    let accounting = &export(&srv)["disclosures"][0];
    assert_eq!(accounting["legal_basis"], "court_order", "{accounting}");
    assert_eq!(accounting["reference"], "(2026) Jing 0108 Min Chu 123");
    assert!(!srv.audit_text().contains("Haidian"));
}

/// The example policy with a successor registered.
fn with_successor() -> steward_policy::Policy {
    let text = crate::kit::example_text()
        + "\n[recipients.newco]\nlegal_name = \"NewCo Cloud Ltd.\"\nkind = \"successor\"\npurposes = [\"provide_service\"]\ncategories = [\"name\", \"email\"]\nagreement = \"MA-2026-001\"\nregion = \"cn-mainland\"\n";
    steward_policy::Policy::parse(&text, "successor.toml").unwrap()
}

#[test]
fn p14_a_transfer_over_http_is_told_first_and_its_bundle_opens_as_documented() {
    let srv = Server::start_with_policy(with_successor());
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let subjects: Vec<String> = (0..2).map(|_| srv.subject(&service)).collect();
    let plan =
        |date: &str| json!({"successor": "newco", "categories": ["name", "email"], "date": date});
    let r = srv.post("/v1/transfers", &service, plan("2026-03-01"));
    assert_eq!(
        r.body["error"]["code"], "operation_not_permitted",
        "{}",
        r.body
    );
    // The kit's clock is 2026-01-01: 30 days' notice.
    let r = srv.post("/v1/transfers", &officer, plan("2026-01-15"));
    assert_eq!(r.body["error"]["code"], "transfer_too_soon", "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2026-01-31"),
        "{}",
        r.body
    );
    let r = srv.post("/v1/transfers", &officer, plan("2026-02-01"));
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["subjects"], 2);
    let r = srv.post(&format!("/v1/transfers/{id}/run"), &officer, Value::Null);
    assert_eq!(r.body["error"]["code"], "transfer_not_due", "{}", r.body);

    // Told first: every subject's mail is delivered before the date.
    let sink = SmtpSink::start();
    srv.vault
        .policy_tick(std::time::Duration::from_secs(5))
        .unwrap();
    let d = srv.dispatcher(sink.port);
    while d.run_once().unwrap().claimed > 0 {}
    sink.wait_for_mails(2);
    assert!(sink.text().contains("NewCo Cloud Ltd."), "{}", sink.text());
    assert_eq!(
        srv.get(&format!("/v1/transfers/{id}"), &officer).body["notification"]["notified"],
        2
    );

    srv.clock.advance(31 * 24 * HOUR);
    let r = srv.post(&format!("/v1/transfers/{id}/run"), &officer, Value::Null);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["transfer"]["run"]["transferred"], 2, "{}", r.body);
    use base64::Engine as _;
    let bundle = base64::engine::general_purpose::STANDARD
        .decode(r.body["bundle"].as_str().unwrap())
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bundle.bin");
    std::fs::write(&path, &bundle).unwrap();
    let opener =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/open-transfer-bundle.py");
    let open = |plan: &str| {
        std::process::Command::new("python3")
            .args([
                opener.to_str().unwrap(),
                path.to_str().unwrap(),
                r.body["key"].as_str().unwrap(),
                plan,
            ])
            .output()
            .unwrap()
    };
    let out = open(&id);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opened: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut moved: Vec<&str> = opened["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subject"].as_str().unwrap())
        .collect();
    moved.sort();
    let mut expected: Vec<&str> = subjects.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(moved, expected);
    assert_eq!(
        open("trf_another").status.code(),
        Some(3),
        "the plan's id is the additional data"
    );
    // Each subject's export accounts for the disclosure to the successor.
    let r = srv.post(
        &format!("/v1/subjects/{}/export", subjects[0]),
        &officer,
        json!({"justification": "asked"}),
    );
    let d = &r.body["disclosures"][0];
    assert_eq!(
        (d["recipient"].as_str(), d["legal_basis"].as_str()),
        (Some("newco"), Some("transfer")),
        "{}",
        r.body
    );
}
