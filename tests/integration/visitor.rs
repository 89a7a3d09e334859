//! Issue 14 in part (P7, P8): visitors' cookie choices before sign-in, through the API the
//! banner calls — cross-origin from the provider's own site only, Global Privacy Control
//! honoured once, each choice with a signed receipt that verifies.

use serde_json::{Value, json};

use crate::http::{PROVIDER_SITE, Server};

const DEVICE: &str = "Qm9vay1zaGVsZi1ncmVlbi1sYW1w";

#[test]
fn p07_a_visitors_choices_are_recorded_with_receipts_from_the_providers_site_only() {
    let srv = Server::start();
    let site = &[("Origin", PROVIDER_SITE)];
    // A preflight from the provider's site is answered; any other site is refused.
    let (r, headers) = srv.raw_request(&format!(
        "OPTIONS /v1/visitor/consents HTTP/1.1\r\nOrigin: {PROVIDER_SITE}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n"
    ));
    assert_eq!(r.status, 204, "{headers}");
    assert!(
        headers.contains(&format!("access-control-allow-origin: {PROVIDER_SITE}")),
        "{headers}"
    );
    assert!(
        headers.contains("access-control-allow-methods: post"),
        "{headers}"
    );
    let (r, _) = srv.raw_request(
        "OPTIONS /v1/visitor/consents HTTP/1.1\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: POST\r\n\r\n",
    );
    assert_eq!(r.status, 403);
    let r = srv.post_with(
        "/v1/visitor/state",
        "",
        &[("Origin", "https://evil.example")],
        json!({"device": DEVICE}),
    );
    assert_eq!(r.body["error"]["code"], "origin_not_allowed", "{}", r.body);

    // A new visitor: undecided on every non-essential cookie purpose.
    let r = srv.post_with("/v1/visitor/state", "", site, json!({"device": DEVICE}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["decided"].as_bool(), r.body["gpc"].as_bool()),
        (Some(false), Some(false))
    );
    let purposes = r.body["purposes"].as_array().unwrap();
    let essential = purposes
        .iter()
        .find(|p| p["purpose"] == "provide_service")
        .unwrap();
    assert_eq!(essential["essential"], true);
    assert_eq!(essential["cookies"][0]["name"], "sid");
    let analytics = purposes
        .iter()
        .find(|p| p["purpose"] == "service_improvement")
        .unwrap();
    assert_eq!(
        (analytics["essential"].as_bool(), &analytics["granted"]),
        (Some(false), &Value::Null)
    );
    // In the policy's language (zh-CN) unless another is asked for.
    assert_eq!(analytics["description"], "改进我们的服务");
    let r = srv.post_with(
        "/v1/visitor/state",
        "",
        site,
        json!({"device": DEVICE, "lang": "en"}),
    );
    assert_eq!(
        r.body["purposes"][1]["description"], "Improving our services",
        "{}",
        r.body
    );
    let r = srv.post_with(
        "/v1/visitor/state",
        "",
        site,
        json!({"device": DEVICE, "lang": "fr"}),
    );
    assert_eq!(r.body["error"]["code"], "invalid_input", "{}", r.body);

    // Accept analytics, refuse personalisation: a receipt each, verifying with the public key.
    let r = srv.post_with(
        "/v1/visitor/consents",
        "",
        site,
        json!({"device": DEVICE, "action": "toggle", "choices": [
            {"purpose": "service_improvement", "granted": true},
            {"purpose": "personalisation", "granted": false}]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let receipts = r.body["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 2);
    let receipt: steward_core::SignedDocument =
        serde_json::from_value(receipts[0].clone()).unwrap();
    let payload =
        steward_core::evidence::verify_document(&receipt, Some(srv.vault.public_key())).unwrap();
    assert_eq!(
        (payload["target"].as_str(), payload["granted"].as_bool()),
        (Some("purpose:service_improvement"), Some(true))
    );
    assert_eq!(payload["channel"], "banner");
    assert!(
        !payload.to_string().contains(DEVICE),
        "the device id is never kept or shown"
    );
    let r = srv.post_with("/v1/visitor/state", "", site, json!({"device": DEVICE}));
    let decided: Vec<(&str, Option<bool>)> = r.body["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["essential"] == false)
        .map(|p| (p["purpose"].as_str().unwrap(), p["granted"].as_bool()))
        .collect();
    assert!(
        decided.contains(&("service_improvement", Some(true)))
            && decided.contains(&("personalisation", Some(false))),
        "{decided:?}"
    );
    // Essential purposes are not a choice; nor is something no cookie serves.
    for purpose in ["provide_service", "surveys"] {
        let r = srv.post_with("/v1/visitor/consents", "", site, json!({"device": DEVICE, "action": "button", "choices": [{"purpose": purpose, "granted": false}]}));
        assert_eq!(r.status / 100, 4, "{}", r.body);
    }
    assert_eq!(
        srv.post_with("/v1/visitor/state", "", site, json!({"device": "short"}))
            .body["error"]["code"],
        "invalid_input"
    );
    assert!(!srv.audit_text().contains(DEVICE));
}

#[test]
fn p07_global_privacy_control_refuses_once_and_the_visitors_own_choice_stands() {
    let srv = Server::start();
    let gpc = &[("Origin", PROVIDER_SITE), ("Sec-GPC", "1")];
    let device = "R1BDLXZpc2l0b3ItZGV2aWNlLTAx";
    let refusals = |srv: &Server| srv.audit_text().matches("\"gpc\":true").count();
    let r = srv.post_with("/v1/visitor/state", "", gpc, json!({"device": device}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["gpc"], true);
    assert_eq!(
        r.body["decided"], true,
        "every non-essential purpose refused: {}",
        r.body
    );
    let first = refusals(&srv);
    assert!(first >= 2, "a refusal per non-essential cookie purpose");
    // Recorded once, not per request.
    srv.post_with("/v1/visitor/state", "", gpc, json!({"device": device}));
    assert_eq!(refusals(&srv), first);
    // The visitor then turns analytics on themselves: recorded as their act, and it stands.
    let r = srv.post_with("/v1/visitor/consents", "", gpc, json!({"device": device, "action": "toggle", "choices": [{"purpose": "service_improvement", "granted": true}]}));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = srv.post_with("/v1/visitor/state", "", gpc, json!({"device": device}));
    let analytics = r.body["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["purpose"] == "service_improvement")
        .unwrap()
        .clone();
    assert_eq!(analytics["granted"], true, "{}", r.body);
    assert!(srv.audit_text().contains("\"action\":\"toggle\""));
}

/// Issue 14 done-when (P8, P19): a visitor's choices made before sign-in, and what was
/// collected under the visitor, appear in the subject's export once the provider links the
/// device at sign-in, and are erased with the subject.
#[test]
fn p08_a_visitors_choices_join_the_subjects_export_at_sign_in_and_go_with_its_erasure() {
    let srv = Server::start();
    let site = &[("Origin", PROVIDER_SITE)];
    let device = "TGlua2VkLWRldmljZS1iZWZvcmU";
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");

    // Before sign-in: a choice on the banner, and a page view collected under the visitor.
    let r = srv.post_with("/v1/visitor/consents", "", site, json!({"device": device, "action": "button", "choices": [{"purpose": "service_improvement", "granted": true}, {"purpose": "personalisation", "granted": false}]}));
    assert_eq!(r.status, 201, "{}", r.body);
    let state = srv.post_with("/v1/visitor/state", "", site, json!({"device": device}));
    let visitor = state.body["visitor"].as_str().unwrap().to_string();
    let r = srv.post(
        &format!("/v1/subjects/{visitor}/collect"),
        &service,
        json!({"feature": "usage_logging", "values": [{"category": "ip_address", "value": "192.0.2.44"}, {"category": "access_time", "value": "2026-01-01T08:00:00+08:00"}, {"category": "pages_visited", "value": "/pricing"}], "source": {"kind": "observed"}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);

    // Sign-in: the provider links the device to the subject (a role without
    // `subjects.register` may not); linking again is no change; another subject may not have it.
    let person = srv.subject(&service);
    let other = srv.subject(&service);
    let link = |who: &str, key: &str| {
        srv.post(
            &format!("/v1/subjects/{who}/devices"),
            key,
            json!({"device": device}),
        )
    };
    let engineer = srv.key("engineer");
    assert_eq!(link(&person, &engineer).status, 403);
    let r = link(&person, &service);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["visitor"], visitor.as_str());
    let again = link(&person, &service);
    assert_eq!(again.body, r.body);
    let r = link(&other, &service);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "identity_in_use");
    assert!(!srv.audit_text().contains(device));

    // The export holds the device: its choices, their history, what was collected under it.
    let export = srv.post(
        &format!("/v1/subjects/{person}/export"),
        &officer,
        json!({"justification": "access request 14"}),
    );
    assert_eq!(export.status, 200, "{}", export.body);
    let devices = export.body["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{}", export.body);
    assert_eq!(devices[0]["visitor"], visitor.as_str());
    let history: Vec<(&str, bool)> = devices[0]["consent_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["target"].as_str().unwrap(),
                c["granted"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        history.contains(&("purpose:service_improvement", true))
            && history.contains(&("purpose:personalisation", false)),
        "{history:?}"
    );
    let pages: Vec<&str> = devices[0]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert!(pages.contains(&"/pricing"), "{pages:?}");
    // Choices made after sign-in are kept with the device too.
    let r = srv.post_with("/v1/visitor/consents", "", site, json!({"device": device, "action": "toggle", "choices": [{"purpose": "personalisation", "granted": true}]}));
    assert_eq!(r.status, 201, "{}", r.body);
    let export = srv.post(
        &format!("/v1/subjects/{person}/export"),
        &officer,
        json!({"justification": "access request 14"}),
    );
    assert_eq!(
        export.body["devices"][0]["consent_history"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Erased with the subject: the device's key goes too, and the banner starts over.
    let r = srv.post(
        &format!("/v1/subjects/{person}/erasure"),
        &officer,
        json!({"reason": "the subject asked"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = srv.post(
        &format!("/v1/subjects/{visitor}/export"),
        &officer,
        json!({"justification": "access request 14"}),
    );
    assert_eq!(r.body["error"]["code"], "subject_erased", "{}", r.body);
    let r = srv.post_with("/v1/visitor/state", "", site, json!({"device": device}));
    assert_eq!(r.body["error"]["code"], "subject_erased", "{}", r.body);
    // The visitor's erasure is its own: audited, its key destroyed, certified.
    let id: steward_core::SubjectId = visitor.parse().unwrap();
    let certificate = srv.vault.certificate(id).unwrap().expect("certified");
    let payload =
        steward_core::evidence::verify_document(&certificate, Some(srv.vault.public_key()))
            .unwrap();
    assert_eq!(
        payload["reason"], "the subject it is linked to is erased",
        "{payload}"
    );
}

/// P33: the receipts a visitor downloads are the receipts first issued, byte for byte, oldest
/// first; only the provider's sites may ask for them.
#[test]
fn p33_a_visitors_receipts_download_again_byte_for_byte() {
    let srv = Server::start();
    let site = &[("Origin", PROVIDER_SITE)];
    let device = "UmVjZWlwdHMtYWdhaW4tZGV2aWNl";
    let none = srv.post_with("/v1/visitor/receipts", "", site, json!({"device": device}));
    assert_eq!(none.status, 200, "{}", none.body);
    assert_eq!(none.body["receipts"], json!([]));
    let mut issued = Vec::new();
    for (action, granted) in [("button", true), ("toggle", false)] {
        let r = srv.post_with("/v1/visitor/consents", "", site, json!({"device": device, "action": action, "choices": [{"purpose": "service_improvement", "granted": granted}, {"purpose": "personalisation", "granted": granted}]}));
        assert_eq!(r.status, 201, "{}", r.body);
        issued.extend(r.body["receipts"].as_array().unwrap().iter().cloned());
    }
    let again = srv.post_with("/v1/visitor/receipts", "", site, json!({"device": device}));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["receipts"], Value::Array(issued));
    let r = srv.post_with(
        "/v1/visitor/receipts",
        "",
        &[("Origin", "https://evil.example")],
        json!({"device": device}),
    );
    assert_eq!(r.body["error"]["code"], "origin_not_allowed");
}

/// P19 from the privacy centre's side: the signed-in subject links the device they browse on;
/// their own export then holds it.
#[test]
fn p19_a_signed_in_subject_links_the_device_they_browse_on() {
    let mail = std::sync::Arc::new(crate::selfservice::KeptMail::default());
    let srv = Server::start_with_mail(Some(mail.clone()));
    let service = srv.key("service");
    let site = &[("Origin", PROVIDER_SITE)];
    let device = "U2lnbmVkLWluLXN1YmplY3QtZGV2";
    let r = srv.post_with("/v1/visitor/consents", "", site, json!({"device": device, "action": "toggle", "choices": [{"purpose": "personalisation", "granted": true}]}));
    assert_eq!(r.status, 201, "{}", r.body);
    srv.subject(&service);
    let session = crate::selfservice::signed_in(&srv, &mail, 0);
    assert_eq!(
        srv.post("/v1/self/devices", "", json!({"device": device}))
            .status,
        401
    );
    let r = srv.post("/v1/self/devices", &session, json!({"device": device}));
    assert_eq!(r.status, 200, "{}", r.body);
    let export = srv.get("/v1/self/export", &session);
    assert_eq!(export.status, 200, "{}", export.body);
    assert_eq!(
        export.body["devices"][0]["consents"][0]["target"], "purpose:personalisation",
        "{}",
        export.body
    );
    assert!(srv.audit_text().contains("subject.link"));
}
