//! Issue 15 (in part): the privacy centre and the staff console in a real browser. A subject
//! signs in with the code the SMTP sink received, sees what is held about them, keeps a copy,
//! withdraws a consent and asks for a deletion; staff refuse it in the console with a reason,
//! which the subject then sees; a role without `requests.manage` is shown nothing; a form
//! posted from another site is refused; axe-core finds nothing on any page.
//! Screenshots are left in `target/browser-screenshots/`.

use std::sync::Arc;

use crate::http::Server;
use crate::kit::{browser, s, screenshots};
use crate::selfservice::SmtpSink;

#[test]
fn p23_p25_a_subject_signs_in_to_the_privacy_centre_and_sees_what_is_held() {
    let sink = SmtpSink::start();
    let mailer = steward_server::mail::SmtpMailer::new(
        "127.0.0.1",
        sink.port,
        "Privacy <privacy@example.com>",
    )
    .unwrap();
    let srv = Server::start_with_mail(Some(Arc::new(mailer)));
    let service = srv.key("service");
    let subject = srv.subject(&service);
    let password = "correct horse battery staple";
    srv.vault
        .create_staff("li.officer", "privacy_officer", password)
        .unwrap();
    srv.vault
        .create_staff("zhao.engineer", "engineer", password)
        .unwrap();
    let email = Server::email_of(0);
    // A version announced, 40 days ahead, for the statement page to offer.
    let officer = srv.key("privacy_officer");
    let now = steward_core::clock::Clock::now_ms(&*srv.clock);
    let effective = steward_core::clock::rfc3339(now + 40 * 86_400_000)[..10].to_string();
    let published = srv.post(
        "/v1/policy/versions",
        &officer,
        serde_json::json!({"text": crate::policy::next_version("2026.2"), "effective": effective}),
    );
    assert_eq!(published.status, 201, "{}", published.body);
    // Staff open an access request for the subject, to be verified in the console.
    let opened = srv.post(
        &format!("/v1/subjects/{subject}/requests"),
        &officer,
        serde_json::json!({"kind": "access"}),
    );
    assert_eq!(opened.status, 201, "{}", opened.body);
    // An incident for the console to run: a step recorded and the report filed in the browser.
    let hour = 3_600_000;
    let incident = srv.post(
        "/v1/incidents",
        &officer,
        serde_json::json!({
            "title": "Support export left public",
            "detected_at": steward_core::clock::rfc3339(now),
            "grade": "relatively_major",
            "cause": "a support export was left in a public bucket",
            "harm": "phishing emails that name you",
            "advice": {"en": "Do not open links in mails asking you to sign in.", "zh-CN": "请勿打开要求您登录的邮件中的链接。"},
            "exposure": {"categories": ["email"], "from": steward_core::clock::rfc3339(now - hour), "to": steward_core::clock::rfc3339(now)},
        }),
    );
    assert_eq!(incident.status, 201, "{}", incident.body);
    let scratch = tempfile::tempdir().unwrap();
    let code_file = scratch.path().join("code.txt");
    // The code, as the subject would read it in their mail, for the browser to paste.
    let waiter = {
        let code_file = code_file.clone();
        std::thread::spawn(move || {
            let code = sink.code_after(0);
            std::fs::write(&code_file, code).unwrap();
            sink
        })
    };
    let report = browser(
        "centre.mjs",
        &[],
        &[
            ("BASE", srv.base.clone()),
            ("EMAIL", email),
            ("CODE_FILE", s(&code_file).to_string()),
            ("OUT", s(&screenshots()).to_string()),
            ("PROFILE", s(&scratch.path().join("profile")).to_string()),
            ("STAFF_USER", "li.officer".to_string()),
            ("OTHER_USER", "zhao.engineer".to_string()),
            ("STAFF_PASS", password.to_string()),
            ("SUBJECT", subject.clone()),
            ("REQUEST", opened.body["id"].as_str().unwrap().to_string()),
        ],
    );
    assert_eq!(report["ok"], true);
    drop(waiter.join().unwrap());
    // What the pages did is what the API sees: the consent withdrawn (a read for the purpose
    // is refused), the access request refused and the phone number deleted by staff in the
    // console, the subject kept.
    let read = srv.post(
        &format!("/v1/subjects/{subject}/read"),
        &service,
        serde_json::json!({"categories": ["email"], "purpose": "relevant_offers"}),
    );
    assert_eq!(
        read.body["error"]["code"], "consent_required",
        "{}",
        read.body
    );
    let mine = srv.vault.self_requests(subject.parse().unwrap()).unwrap();
    let mut states: Vec<(&str, &str)> = mine
        .iter()
        .map(|r| (r.kind.as_str(), r.state.as_str()))
        .collect();
    states.sort();
    assert_eq!(states, [("access", "refused"), ("deletion", "completed")]);
    let held: Vec<String> = srv
        .vault
        .store()
        .records(&subject.parse::<steward_core::SubjectId>().unwrap().0)
        .unwrap()
        .into_iter()
        .map(|r| r.category)
        .collect();
    assert!(
        !held.contains(&"phone".to_string()) && held.contains(&"email".to_string()),
        "{held:?}"
    );
    // Every step went through the core, audited: the code, the sign-in, two views of the
    // data (each an export), the sign-out; and the cross-site post did nothing.
    // The incident run from the console: contained, its initial report recorded as filed.
    let run = srv.get(
        &format!("/v1/incidents/{}", incident.body["id"].as_str().unwrap()),
        &officer,
    );
    assert_eq!(run.body["state"], "contained", "{}", run.body);
    assert_eq!(run.body["reports"][0]["part"], "initial", "{}", run.body);
    assert!(
        run.body["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["by"] == "staff:li.officer" && s["text"] == "存储桶已设为私有"),
        "{}",
        run.body
    );
    let accepted = srv.vault.acceptance("2026.2").unwrap();
    assert_eq!(accepted.accepted_explicit, 1);
    let log = srv.audit_text();
    for action in [
        "otp.send",
        "otp.verify",
        "subject.export",
        "notice.shown",
        "policy.accept",
        "hold.place",
        "hold.lift",
        "session.end",
    ] {
        assert!(log.contains(action), "no `{action}` in the log");
    }
    for shot in [
        "console-queue-zh-CN",
        "console-request-zh-CN",
        "console-deadlines-zh-CN",
        "console-audit-zh-CN",
        "console-holds-zh-CN",
        "centre-sign-in-zh-CN",
        "centre-code-zh-CN",
        "centre-data-zh-CN",
        "centre-data-en",
        "centre-sign-in-en",
        "centre-statement-zh-CN",
    ] {
        assert!(
            screenshots().join(format!("{shot}.png")).exists(),
            "{shot}.png"
        );
    }
}

/// A browser's visit by hand: cookies kept, redirects not followed, forms posted from the
/// site's own origin with the token the page gave.
pub(crate) struct Visit {
    base: String,
    agent: ureq::Agent,
    cookies: Vec<(String, String)>,
}

impl Visit {
    pub(crate) fn new(base: String) -> Visit {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Visit {
            base,
            agent,
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &ureq::http::Response<ureq::Body>) {
        for v in response.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.contains("Max-Age=0") {
                self.cookies.push((k.to_string(), val.to_string()));
            }
        }
    }

    /// GET `path`: status, `Location`, body.
    pub(crate) fn get(&mut self, path: &str) -> (u16, String, String) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .call()
            .unwrap();
        self.keep(&r);
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (
            r.status().as_u16(),
            location,
            r.body_mut().read_to_string().unwrap(),
        )
    }

    /// POST the form at `path` with `fields` and the token `page` carries.
    pub(crate) fn post(
        &mut self,
        path: &str,
        page: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String, String) {
        let token = page
            .split("name=\"form\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the page carries a form token")
            .to_string();
        let encode = |text: &str| -> String {
            text.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let mut body = format!("form={}", encode(&token));
        for (k, v) in fields {
            body.push_str(&format!("&{}={}", encode(k), encode(v)));
        }
        let mut r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .header("Origin", &self.base)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(body)
            .unwrap();
        self.keep(&r);
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (
            r.status().as_u16(),
            location,
            r.body_mut().read_to_string().unwrap(),
        )
    }
}

/// Issue 15 done-when: `steward demo --data-dir D`, then `steward serve` on that store, shows
/// the demo's subjects' requests in the console (signed in as the demo prints) and lets a demo
/// subject sign in to the privacy centre with the code mailed to a file.
#[test]
fn p25_the_demo_store_serves_both_sites_as_the_demo_says() {
    let (_tmp, dir) = crate::kit::demo_store();
    let port = crate::serve::free_port();
    let mail = dir.join("mail");
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["serve", "--data-dir", s(&dir)])
        .env_remove("STEWARD_MASTER_KEY")
        .env("STEWARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("STEWARD_MAIL_DIR", &mail)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::serve::wait_listening(port);
    let base = format!("http://127.0.0.1:{port}");

    // The console: the demo's officer, the password the demo wrote; two requests queued.
    let password = std::fs::read_to_string(dir.join("staff-password.txt")).unwrap();
    let mut staff = Visit::new(base.clone());
    let (_, _, page) = staff.get("/console");
    let (status, location, _) = staff.post(
        "/console/session",
        &page,
        &[("username", "demo.officer"), ("password", password.trim())],
    );
    assert_eq!((status, location.as_str()), (303, "/console/queue"));
    let (status, _, queue) = staff.get("/console/queue");
    assert_eq!(status, 200, "{queue}");
    assert_eq!(
        queue.matches("href=\"/console/requests/req_").count(),
        2,
        "{queue}"
    );
    // The demo's incident, with its affected count and the report it owes.
    let (status, _, incidents) = staff.get("/console/incidents");
    assert_eq!(status, 200, "{incidents}");
    assert!(incidents.contains("public bucket"), "{incidents}");
    // ... run from here: handled, then its final report recorded; a part that is no part is
    // refused and said so, nothing recorded.
    let incident = |page: &str| {
        page.split("action=\"/console/incidents/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap()
            .to_string()
    };
    let id = incident(&incidents);
    let (status, _, handled) = staff.post(
        &format!("/console/incidents/{id}/step"),
        &incidents,
        &[("kind", "handled"), ("text", "keys rotated")],
    );
    assert_eq!(status, 200, "{handled}");
    assert!(
        handled.contains("状态：已处置完毕")
            && handled.contains("staff:demo.officer: keys rotated"),
        "{handled}"
    );
    let (status, _, refused) = staff.post(
        &format!("/console/incidents/{id}/report"),
        &handled,
        &[("regime", "cn"), ("part", "last")],
    );
    assert_eq!(status, 400, "{refused}");
    assert!(refused.contains("role=\"alert\""), "{refused}");
    let (status, _, filed) = staff.post(
        &format!("/console/incidents/{id}/report"),
        &refused,
        &[("regime", "cn"), ("part", "final")],
    );
    assert_eq!(status, 200, "{filed}");
    assert!(filed.contains("最终"), "{filed}");
    // The versions, and a text that does not validate refused with every problem shown.
    let (status, _, versions) = staff.get("/console/versions");
    assert_eq!(status, 200, "{versions}");
    assert!(versions.contains("2026.1"), "{versions}");
    let (status, _, refused) = staff.post(
        "/console/versions",
        &versions,
        &[
            ("text", "schema = 1\n[policy]\nname = 3\n"),
            ("effective", ""),
        ],
    );
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused.contains("policy_invalid") || refused.contains("does not validate"),
        "{refused}"
    );
    let (status, _, outbox) = staff.get("/console/outbox");
    assert_eq!(status, 200, "{outbox}");

    // The privacy centre: subject A's address from their export, the code from the mail file.
    let export = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("export-")
        })
        .unwrap();
    let export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(export).unwrap()).unwrap();
    let email = export["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["category"] == "email")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    let mut subject = Visit::new(base);
    let (_, _, page) = subject.get("/privacy");
    let (status, _, page) = subject.post("/privacy/code", &page, &[("email", &email)]);
    assert_eq!(status, 200, "{page}");
    let mut code = String::new();
    crate::kit::wait_for(
        "no code was mailed to a file",
        std::time::Duration::from_secs(20),
        || {
            let Ok(files) = std::fs::read_dir(&mail) else {
                return false;
            };
            for f in files {
                // The demo's other mail (incident notices) goes out here too.
                let text = std::fs::read_to_string(f.unwrap().path()).unwrap_or_default();
                if let Some(c) = text
                    .split("sign-in code is ")
                    .nth(1)
                    .and_then(|rest| rest.get(..6))
                    .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
                {
                    code = c.to_string();
                    return true;
                }
            }
            false
        },
    );
    let (status, location, _) = subject.post(
        "/privacy/session",
        &page,
        &[("email", &email), ("code", &code)],
    );
    assert_eq!((status, location.as_str()), (303, "/privacy/data"));
    let (status, _, data) = subject.get("/privacy/data");
    assert_eq!(status, 200);
    assert!(
        data.contains(&email),
        "the data page lacks the subject's address"
    );
    // Subject A's disclosures (the demo's step 5), looked up by id in a form, audited.
    let (_, _, page) = staff.get("/console/disclosures");
    let a = export["subject"].as_str().unwrap().to_string();
    let (status, _, shown) = staff.post("/console/disclosures", &page, &[("subject", &a)]);
    assert_eq!(status, 200, "{shown}");
    assert!(shown.contains("提供给"), "{shown}");
    assert!(!shown.contains(&email), "a disclosure page shows a value");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// P24 through the pages: a subject asks for a correction in the privacy centre; staff
/// complete it in the console with the new value; the API then reads only the new value. A
/// support role may not see incidents; the subject's session ends after 30 minutes.
#[test]
fn p24_a_correction_asked_in_the_centre_is_made_in_the_console() {
    let mail = Arc::new(crate::selfservice::KeptMail::default());
    let srv = Server::start_with_mail(Some(mail.clone()));
    let service = srv.key("service");
    let subject = srv.subject(&service);
    let password = "correct horse battery staple";
    srv.vault
        .create_staff("li.officer", "privacy_officer", password)
        .unwrap();

    let mut person = Visit::new(srv.base.clone());
    let (_, _, page) = person.get("/privacy");
    let email = Server::email_of(0);
    let (_, _, page) = person.post("/privacy/code", &page, &[("email", &email)]);
    let code = crate::selfservice::code_in(&mail);
    let (status, _, _) = person.post(
        "/privacy/session",
        &page,
        &[("email", &email), ("code", &code)],
    );
    assert_eq!(status, 303);
    let (_, _, page) = person.get("/privacy/requests");
    let (status, _, listed) = person.post(
        "/privacy/requests",
        &page,
        &[("kind", "correction"), ("text", "my phone number changed")],
    );
    assert_eq!(status, 201, "{listed}");
    let id = srv
        .vault
        .self_requests(subject.parse().unwrap())
        .unwrap()
        .remove(0)
        .id;

    // A support role works requests but may not see incidents or publish a policy.
    srv.vault
        .create_staff("wang.support", "support", password)
        .unwrap();
    let mut support = Visit::new(srv.base.clone());
    let (_, _, page) = support.get("/console");
    support.post(
        "/console/session",
        &page,
        &[("username", "wang.support"), ("password", password)],
    );
    let (status, _, page) = support.get("/console/incidents");
    assert_eq!(status, 403, "{page}");
    assert!(!page.contains("<section class=\"card\""), "{page}");
    let (status, _, page) = support.get("/console/versions");
    assert_eq!(
        status, 403,
        "a support role may not publish a policy: {page}"
    );
    assert!(!page.contains("name=\"text\""), "{page}");
    let (status, _, _) = support.get("/console/queue");
    assert_eq!(status, 200);

    let mut staff = Visit::new(srv.base.clone());
    let (_, _, page) = staff.get("/console");
    staff.post(
        "/console/session",
        &page,
        &[("username", "li.officer"), ("password", password)],
    );
    let (status, _, page) = staff.get(&format!("/console/requests/{id}"));
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("name=\"category\""),
        "no correction fields: {page}"
    );
    let (status, _, done) = staff.post(
        &format!("/console/requests/{id}/complete"),
        &page,
        &[
            ("category", "phone"),
            ("value", "+86 139 0000 0000"),
            ("justification", "the subject's correction request"),
        ],
    );
    assert_eq!(status, 200, "{done}");
    let read = srv.post(
        &format!("/v1/subjects/{subject}/read"),
        &service,
        serde_json::json!({"categories": ["phone"], "purpose": "provide_service"}),
    );
    assert_eq!(read.status, 200, "{}", read.body);
    let values: Vec<&str> = read.body["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["+86 139 0000 0000"]);

    // The request's history: each step, when, and by whom — on its page and from the API.
    let officer = srv.key("privacy_officer");
    let steps = srv.get(&format!("/v1/requests/{id}/steps"), &officer);
    assert_eq!(steps.status, 200, "{}", steps.body);
    let taken: Vec<(&str, &str)> = steps
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["state"].as_str().unwrap(), s["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        taken,
        [
            ("received", "subject"),
            ("verified", "subject"),
            ("completed", "staff:li.officer")
        ]
    );
    let (_, _, page) = staff.get(&format!("/console/requests/{id}"));
    let history = page.split("id=\"history\"").nth(1).unwrap_or_default();
    assert!(
        history.contains("个人信息主体本人") && history.contains("staff:li.officer"),
        "{page}"
    );
    assert_eq!(history.matches("<tr><td>").count(), 3, "{page}");
    let forbidden = srv.get(&format!("/v1/requests/{id}/steps"), &service);
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);

    // A deletion of some categories only: the phone number, ticked.
    let (_, _, page) = person.get("/privacy/requests");
    assert!(page.contains("id=\"some-phone\""), "{page}");
    let (status, _, listed) = person.post(
        "/privacy/requests",
        &page,
        &[("kind", "deletion"), ("category", "phone")],
    );
    assert_eq!(status, 201, "{listed}");
    assert!(listed.contains("仅限：电话号码"), "{listed}");
    let mine = srv.vault.self_requests(subject.parse().unwrap()).unwrap();
    assert!(
        mine.iter()
            .any(|r| r.kind == "deletion" && r.target == "categories:phone"),
        "{:?}",
        mine.iter()
            .map(|r| (&r.kind, &r.target))
            .collect::<Vec<_>>()
    );

    // Cookie choices made on a browser before sign-in show beside the subject's consents.
    let device = "Q29uc2VudHMtcGFnZS1kZXZpY2U";
    let chose = srv.post_with(
        "/v1/visitor/consents",
        "",
        &[("Origin", crate::http::PROVIDER_SITE)],
        serde_json::json!({"device": device, "action": "button", "choices": [{"purpose": "service_improvement", "granted": true}]}),
    );
    assert_eq!(chose.status, 201, "{}", chose.body);
    let linked = srv.post(
        &format!("/v1/subjects/{subject}/devices"),
        &service,
        serde_json::json!({"device": device}),
    );
    assert_eq!(linked.status, 200, "{}", linked.body);
    let (status, _, consents) = person.get("/privacy/consents");
    assert_eq!(status, 200);
    assert!(
        consents.contains("您浏览器上的 Cookie 选择")
            && consents.contains("改进我们的服务：您已于"),
        "{consents}"
    );
    // ... and can be changed there: recorded on that browser, as the subject's act.
    let visitor = linked.body["visitor"].as_str().unwrap().to_string();
    let (status, _, after) = person.post(
        "/privacy/consents",
        &consents,
        &[
            ("device", &visitor),
            ("target", "service_improvement"),
            ("granted", "false"),
        ],
    );
    assert_eq!(status, 200, "{after}");
    assert!(after.contains("改进我们的服务：您已于"), "{after}");
    let state = srv.vault.visitor_state(device, false, None, None).unwrap();
    let analytics = state
        .purposes
        .iter()
        .find(|p| p.purpose == "service_improvement")
        .unwrap();
    assert_eq!(analytics.granted, Some(false));
    // A browser not linked to the subject is not theirs to change.
    let (status, _, _) = person.post(
        "/privacy/consents",
        &after,
        &[
            ("device", "00000000-0000-4000-8000-000000000000"),
            ("target", "service_improvement"),
            ("granted", "true"),
        ],
    );
    assert_eq!(status, 404);

    // Sessions end: the subject's after 30 minutes, as on the API.
    let (status, _, _) = person.get("/privacy/data");
    assert_eq!(status, 200);
    srv.clock.advance(steward_core::SESSION_TTL_MS + 1);
    let (status, location, _) = person.get("/privacy/data");
    assert_eq!((status, location.as_str()), (303, "/privacy"));
}

/// P29, P30: the statement page says what earlier versions changed, in the reader's language,
/// once a new version is in force.
#[test]
fn p30_the_centre_says_what_earlier_versions_changed() {
    let mail = Arc::new(crate::selfservice::KeptMail::default());
    let srv = Server::start_with_mail(Some(mail.clone()));
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    srv.subject(&service);
    let now = steward_core::clock::Clock::now_ms(&*srv.clock);
    let day = 86_400_000;
    let effective = steward_core::clock::rfc3339(now + 40 * day)[..10].to_string();
    let published = srv.post(
        "/v1/policy/versions",
        &officer,
        serde_json::json!({"text": crate::policy::next_version("2026.2"), "effective": effective}),
    );
    assert_eq!(published.status, 201, "{}", published.body);
    srv.clock.advance(41 * day);
    srv.vault
        .policy_tick(std::time::Duration::from_secs(5))
        .unwrap();

    let mut person = Visit::new(srv.base.clone());
    let (_, _, page) = person.get("/privacy");
    let email = Server::email_of(0);
    let (_, _, page) = person.post("/privacy/code", &page, &[("email", &email)]);
    let code = crate::selfservice::code_in(&mail);
    person.post(
        "/privacy/session",
        &page,
        &[("email", &email), ("code", &code)],
    );
    let (status, _, statement) = person.get("/privacy/statement");
    assert_eq!(status, 200, "{statement}");
    assert!(statement.contains("以往版本的变更"), "{statement}");
    assert!(statement.contains("第 2026.2 版，自"), "{statement}");
    assert!(
        statement.contains("ad_models"),
        "the change is not said: {statement}"
    );
}
