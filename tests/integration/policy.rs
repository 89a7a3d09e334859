//! Issue 12 (P11, P29, P30): policy versions over the wire — published through the API,
//! refused inside the notice period, announced, mailed through real SMTP in each subject's
//! language, signalled by signed webhooks an independent implementation verifies, and enforced
//! from the effective date when the clock moves there, not before; re-consent for a purpose
//! the new version adds unrelated to what the data was collected under.

use serde_json::json;

use crate::http::Server;
use crate::outbox::Receiver;
use crate::selfservice::SmtpSink;

const DAY: i64 = 86_400_000;

/// The example policy as version `version`, with two purposes appended and granted to the
/// service role: `ad_models`, related to nothing (it needs fresh consent), and
/// `service_stats`, related to `provide_service` (it does not).
pub(crate) fn next_version(version: &str) -> String {
    let text = crate::kit::example_text();
    let anchor = "reads = [\"name\", \"email\", \"phone\", \"government_id\", \"ip_address\", \"access_time\", \"user_identifier\"]\n";
    assert_eq!(text.matches(anchor).count(), 1);
    let added = format!(
        "{anchor}
[purposes.ad_models]
taxonomy = \"marketing.advertising.third_party\"
description = \"Training advertising models on your account data\"
basis = \"contract\"
reads = [\"name\", \"email\"]

[purposes.service_stats]
taxonomy = \"improve.system\"
description = \"Counting how the service is used\"
basis = \"contract\"
reads = [\"name\", \"email\"]
related = [\"provide_service\"]
"
    );
    text.replacen(anchor, &added, 1)
        .replacen(
            "\"partner_settlement\"]\n",
            "\"partner_settlement\", \"ad_models\", \"service_stats\"]\n",
            1,
        )
        .replacen(
            "version = \"2026.1\"",
            &format!("version = \"{version}\""),
            1,
        )
}

#[test]
fn p29_a_material_change_is_announced_mailed_signalled_and_enforced_from_its_date_only() {
    let srv = Server::start();
    // The independent verifier checks each call's timestamp against the real time.
    let now = srv.to_real_time();
    let day = |ms: i64| steward_core::clock::rfc3339(ms)[..10].to_string();
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let a = srv.subject(&service);
    let b = srv.subject(&service);
    let r = srv.post(
        &format!("/v1/subjects/{b}/language"),
        &service,
        json!({"language": "en"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let receiver = Receiver::registered(
        &srv,
        &officer,
        &["policy.published", "notice.sent", "policy.effective"],
        1,
    );
    let sink = SmtpSink::start();

    // Only a role with `policy.publish` publishes; inside the 30-day notice period a material
    // change is refused, naming the earliest date.
    let text = next_version("2026.2");
    let r = srv.post("/v1/policy/versions", &service, json!({"text": text}));
    assert_eq!(
        r.body["error"]["code"], "operation_not_permitted",
        "{}",
        r.body
    );
    let soon = day(now + 10 * DAY);
    let r = srv.post(
        "/v1/policy/versions",
        &officer,
        json!({"text": text, "effective": soon}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "notice_period");
    let earliest = day(now + 31 * DAY);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&earliest),
        "{} should name {earliest}",
        r.body
    );
    let effective = day(now + 40 * DAY);
    let r = srv.post(
        "/v1/policy/versions",
        &officer,
        json!({"text": text, "effective": effective}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "scheduled");
    assert_eq!(r.body["material"], true);
    assert_eq!(r.body["reconsent"], json!(["ad_models"]));
    let r = srv.post(
        "/v1/policy/versions",
        &officer,
        json!({"text": text, "effective": effective}),
    );
    assert_eq!(r.body["error"]["code"], "conflict", "{}", r.body);

    // Public: the versions, each statement with its classified diff, and the notice.
    let r = srv.get("/v1/policy/versions", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let listed: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["2026.1", "2026.2"]);
    assert_eq!(r.body[0]["status"], "in_force");
    let r = srv.get("/v1/policy/versions/2026.2?lang=en", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let changes = r.body["changes"].as_array().unwrap();
    let ad = changes
        .iter()
        .find(|c| c["path"] == "purposes.ad_models")
        .unwrap();
    assert_eq!(
        (ad["class"].as_str(), ad["reconsent"].as_bool()),
        (Some("material"), Some(true))
    );
    let stats = changes
        .iter()
        .find(|c| c["path"] == "purposes.service_stats")
        .unwrap();
    assert_eq!(stats["reconsent"], false);
    assert!(r.body["statement"].as_str().unwrap().contains("ad_models"));
    let r = srv.get("/v1/policy/versions/2026.2?lang=zh-CN", "");
    let statement = r.body["statement"].as_str().unwrap();
    assert!(
        statement.contains("我们收集哪些信息") && statement.contains("ad_models"),
        "{statement}"
    );
    // Another server on the same store sees the version once it reads the store.
    let other = srv.other_process();
    other.refresh_versions().unwrap();
    assert_eq!(other.versions().len(), 2);
    let zh = srv.get("/v1/notices?lang=zh-CN", "");
    assert_eq!(zh.body.as_array().unwrap().len(), 1, "{}", zh.body);
    let lines = zh.body[0]["changes"].to_string();
    assert!(
        lines.contains("新增处理目的「ad_models」") && lines.contains("重新征求"),
        "{lines}"
    );
    assert_eq!(
        srv.get("/v1/policy/versions/9999.9", "").body["error"]["code"],
        "version_not_found"
    );

    // The notice period is on the deadline board.
    let board = srv.get("/v1/deadlines?within_days=60", &officer);
    assert!(
        board
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "notice_period" && d["id"] == "2026.2"),
        "{}",
        board.body
    );
    // Not enforced before its date: the new purposes do not exist yet.
    let read = |subject: &str, purpose: &str| {
        srv.post(
            &format!("/v1/subjects/{subject}/read"),
            &service,
            json!({"categories": ["email"], "purpose": purpose}),
        )
    };
    assert_eq!(
        read(&a, "service_stats").body["error"]["code"],
        "unknown_purpose"
    );

    // The campaign: a mail to each subject with an address, in their language, before the
    // effective date; `notice.sent` once every mail is queued.
    srv.vault
        .policy_tick(std::time::Duration::from_secs(5))
        .unwrap();
    let campaign = srv.vault.campaign("2026.2").unwrap().unwrap();
    assert!(campaign.done && campaign.enqueued == 2, "{campaign:?}");
    let d = srv.dispatcher(sink.port);
    d.run_once().unwrap();
    srv.clock.advance(6_001);
    while d.run_once().unwrap().claimed > 0 {}
    sink.wait_for_mails(2);
    let mail = sink.text();
    let of = |address: &str| {
        mail.split("MESSAGE FOLLOWS")
            .find(|m| m.contains(address))
            .unwrap_or_else(|| panic!("no notice to {address}: {mail}"))
            .to_string()
    };
    let zh_mail = of(&Server::email_of(0));
    assert!(
        zh_mail.contains("我们将更新隐私政策") && zh_mail.contains(&effective),
        "{zh_mail}"
    );
    let en_mail = of(&Server::email_of(1));
    assert!(
        en_mail.contains("We are changing our privacy statement") && en_mail.contains("ad_models"),
        "{en_mail}"
    );
    assert!(!en_mail.contains("我们"), "{en_mail}");
    let r = srv.get("/v1/policy/versions/2026.2/acceptance", &officer);
    assert_eq!(r.body["notified"], 2, "{}", r.body);

    // Signed webhooks, checked by the independent implementation (the first call failed once
    // and came again under its id).
    let calls = receiver.calls(3);
    assert!(calls.iter().all(|c| c["verified"] == true), "{calls:?}");
    let mut types: Vec<&str> = calls
        .iter()
        .filter(|c| c["status"] == 204)
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(types, ["notice.sent", "policy.published"], "{calls:?}");

    // One day before: still the old version.
    srv.clock.advance(39 * DAY - 7_000);
    assert_eq!(
        read(&a, "ad_models").body["error"]["code"],
        "unknown_purpose"
    );
    // At its effective time the new version is in force without a restart.
    srv.clock.advance(DAY);
    srv.vault
        .policy_tick(std::time::Duration::from_secs(5))
        .unwrap();
    let r = srv.get("/v1/policy/versions", "");
    assert_eq!(r.body[1]["status"], "in_force", "{}", r.body);
    // A purpose unrelated to what the data was collected under waits for fresh consent ...
    let r = read(&a, "ad_models");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "reconsent_required");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2026.2")
    );
    // ... a related one does not.
    assert_eq!(read(&a, "service_stats").status, 200);
    // Once the subject consents afresh, it is allowed for them — and for them only.
    let r = srv.post(
        &format!("/v1/subjects/{a}/consents"),
        &service,
        json!({"target": "purpose:ad_models", "granted": true, "channel": "web"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // The receipt names the version the consent was given under.
    use base64::Engine as _;
    let receipt: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(r.body["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(receipt["policy_version"], "2026.2", "{receipt}");
    assert_eq!(read(&a, "ad_models").status, 200);
    assert_eq!(
        read(&b, "ad_models").body["error"]["code"],
        "reconsent_required"
    );
    // A subject who arrived after the version took effect is not asked again.
    let c = srv.subject(&service);
    assert_eq!(read(&c, "ad_models").status, 200);

    // Acceptance on the subject's behalf needs a reason; counted per version.
    let r = srv.post(
        &format!("/v1/subjects/{b}/policy/accept"),
        &officer,
        json!({}),
    );
    assert_eq!(r.body["error"]["code"], "invalid_input", "{}", r.body);
    let r = srv.post(
        &format!("/v1/subjects/{b}/policy/accept"),
        &officer,
        json!({"reason": "asked by phone, call 4411"}),
    );
    assert_eq!(r.body["version"], "2026.2", "{}", r.body);
    let r = srv.get("/v1/policy/versions/2026.2/acceptance", &officer);
    assert_eq!(r.body["accepted_staff"], 1, "{}", r.body);
    // The subject's export says what they were told and what they accepted (P23, P30).
    let r = srv.post(
        &format!("/v1/subjects/{b}/export"),
        &officer,
        json!({"justification": "checking what the subject accepted"}),
    );
    let events = r.body["policy_events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "notified" && e["how"] == "email")
            && events.iter().any(|e| e["event"] == "accepted"
                && e["how"] == "staff"
                && e["version"] == "2026.2"),
        "{}",
        r.body
    );
    assert!(!srv.audit_text().contains("call 4411"));
    // The effective webhook went out too (stamped with the moved clock, 40 days ahead of the
    // real time the verifier holds it to, so only its delivery is checked here).
    while d.run_once().unwrap().claimed > 0 {}
    let calls = receiver.calls(4);
    assert!(
        calls.iter().any(|c| c["status"] == 204
            && c["body"]
                .as_str()
                .unwrap()
                .contains("\"type\":\"policy.effective\"")),
        "{calls:?}"
    );
}

/// Issue 12: `steward serve` killed with SIGKILL in the middle of a notice campaign (batches
/// of 25): after a restart the campaign resumes where its last batch committed — every
/// subject with an address gets exactly one notice message (a mail sent twice carries the
/// same `Message-ID`), and none is lost.
#[test]
fn p30_kill_9_during_a_notice_campaign_loses_and_repeats_no_notice() {
    let sink = SmtpSink::start();
    let d = crate::outbox::Deployment::new(&sink, &[("STEWARD_NOTICE_BATCH", "25")]);
    let (service, officer) = d.keys();
    let mut server = d.start();
    let subjects = 300;
    for n in 0..subjects {
        let (status, made) = d.post(&service, "/v1/subjects", json!({}));
        assert_eq!(status, 201, "{made}");
        let id = made["subject"].as_str().unwrap().to_string();
        let (status, r) = d.post(
            &service,
            &format!("/v1/subjects/{id}/collect"),
            json!({"feature": "account", "values": [{"category": "name", "value": "Notice Reader"}, {"category": "email", "value": format!("reader.{n}@example.cn")}, {"category": "phone", "value": format!("+86 136 {n:08}")}], "source": {"kind": "subject"}}),
        );
        assert_eq!(status, 201, "{r}");
    }
    let now = crate::kit::real_now_ms();
    let effective = steward_core::clock::rfc3339(now + 60 * DAY)[..10].to_string();
    let (status, r) = d.post(
        &officer,
        "/v1/policy/versions",
        json!({"text": next_version("2026.5"), "effective": effective}),
    );
    assert_eq!(status, 201, "{r}");
    // The kill comes once the campaign is under way and mails are going out.
    crate::kit::wait_for(
        "the campaign's first mails did not arrive",
        std::time::Duration::from_secs(60),
        || sink.text().matches("MESSAGE FOLLOWS").count() >= 20,
    );
    let _ = server.kill(); // SIGKILL
    let _ = server.wait();
    let before = sink.text().matches("MESSAGE FOLLOWS").count();
    let mut server = d.start();
    let reached = |n: usize| sink.text().contains(&format!("reader.{n}@example.cn"));
    crate::kit::wait_for(
        "not every subject's notice arrived after the restart",
        std::time::Duration::from_secs(120),
        || (0..subjects).all(reached),
    );
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        before < subjects,
        "the kill came after the campaign ended ({before} mails)"
    );
    // One notice message per subject: repeats carry the id of the message they repeat.
    let mut ids_of: std::collections::HashMap<usize, std::collections::BTreeSet<String>> =
        std::collections::HashMap::new();
    for (id, mail) in crate::outbox::mails_by_id(&sink) {
        let n = (0..subjects)
            .find(|n| mail.contains(&format!("reader.{n}@example.cn")))
            .unwrap_or_else(|| panic!("a notice to nobody: {mail}"));
        ids_of.entry(n).or_default().insert(id);
    }
    assert_eq!(ids_of.len(), subjects);
    assert!(
        ids_of.values().all(|ids| ids.len() == 1),
        "a subject was queued twice: {ids_of:?}"
    );
}
