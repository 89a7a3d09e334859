//! Self-service sign-in over real SMTP (P25): a local SMTP sink on loopback receives the code.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::http::Server;

/// `python3 -m aiosmtpd` on a free loopback port, printing what it receives.
pub(crate) struct SmtpSink {
    child: Child,
    pub(crate) port: u16,
    received: Arc<Mutex<String>>,
}

impl SmtpSink {
    pub(crate) fn start() -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd runs (pip install aiosmtpd)");
        let received = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&received);
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        crate::kit::wait_for(
            "the SMTP sink did not start",
            std::time::Duration::from_secs(20),
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        SmtpSink {
            child,
            port,
            received,
        }
    }

    /// The newest code in the mail received so far, waiting for it to arrive.
    pub(crate) fn code_after(&self, codes_before: usize) -> String {
        let codes = || -> Vec<String> {
            self.received
                .lock()
                .unwrap()
                .lines()
                .filter_map(|l| l.strip_prefix("Your sign-in code is "))
                .map(|c| c.trim_end_matches('.').to_string())
                .collect()
        };
        crate::kit::wait_for(
            "no code arrived",
            std::time::Duration::from_secs(20),
            || codes().len() > codes_before,
        );
        codes().last().unwrap().clone()
    }

    /// Everything received so far, quoted-printable decoded (so that UTF-8 text reads as
    /// written).
    pub(crate) fn text(&self) -> String {
        let raw = self.received.lock().unwrap().clone();
        let mut bytes = Vec::new();
        let mut it = raw.as_bytes().iter().copied().peekable();
        while let Some(b) = it.next() {
            if b != b'=' {
                bytes.push(b);
                continue;
            }
            let hi = it.next();
            if hi == Some(b'\n') {
                continue; // a soft line break
            }
            let lo = it.next();
            match (hi, lo) {
                (Some(h), Some(l)) => {
                    match u8::from_str_radix(&format!("{}{}", h as char, l as char), 16) {
                        Ok(v) => bytes.push(v),
                        Err(_) => bytes.extend([b'=', h, l]),
                    }
                }
                _ => bytes.push(b'='),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until `n` mails have arrived whole: the sink prints each line by line, and a mail
    /// is only all there once its end marker has been read.
    pub(crate) fn wait_for_mails(&self, n: usize) {
        crate::kit::wait_for(
            "the mail did not arrive",
            std::time::Duration::from_secs(20),
            || {
                self.received
                    .lock()
                    .unwrap()
                    .matches("------------ END MESSAGE ------------")
                    .count()
                    >= n
            },
        );
    }

    fn codes(&self) -> usize {
        self.received
            .lock()
            .unwrap()
            .matches("Your sign-in code is ")
            .count()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn p25_sign_in_code_arrives_by_smtp_and_brute_force_is_stopped() {
    let sink = SmtpSink::start();
    let mailer = steward_server::mail::SmtpMailer::new(
        "127.0.0.1",
        sink.port,
        "Privacy <privacy@example.com>",
    )
    .unwrap();
    let srv = Server::start_with_mail(Some(Arc::new(mailer)));
    let service = srv.key("service");
    let id = srv.subject(&service);
    let email = json!({"email": "wang.fang@example.cn"});

    let r = srv.post("/v1/self/code", "", email.clone());
    assert_eq!(r.status, 202, "{}", r.body);
    let code = sink.code_after(0);
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    for _ in 0..steward_core::CODE_ATTEMPTS {
        let r = srv.post(
            "/v1/self/session",
            "",
            json!({"email": "wang.fang@example.cn", "code": wrong}),
        );
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (401, Some("code_invalid"))
        );
    }
    // Five wrong guesses spent the code: the right one no longer works.
    let r = srv.post(
        "/v1/self/session",
        "",
        json!({"email": "wang.fang@example.cn", "code": code}),
    );
    assert_eq!(r.status, 401);

    // A fresh code signs in; the session reaches the subject's own data and nothing else.
    let before = sink.codes();
    assert_eq!(srv.post("/v1/self/code", "", email.clone()).status, 202);
    let code = sink.code_after(before);
    let r = srv.post(
        "/v1/self/session",
        "",
        json!({"email": "wang.fang@example.cn", "code": code}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let session = r.body["token"].as_str().unwrap().to_string();
    let export = srv.get("/v1/self/export", &session);
    assert_eq!(export.status, 200);
    assert_eq!(export.body["subject"], id.as_str());
    let other = srv.subject(&service);
    let r = srv.post(
        &format!("/v1/subjects/{other}/read"),
        &session,
        json!({"categories": ["email"], "purpose": "provide_service"}),
    );
    assert_eq!(r.status, 401, "a session is not an API key: {}", r.body);
    let r = srv.post("/v1/self/requests", &session, json!({"kind": "access"}));
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (201, Some("verified"))
    );

    // Guessing from one address stops within the hourly limit, whatever the code.
    let mut stopped = None;
    for i in 0..=steward_core::FAILURES_PER_CLIENT_HOUR {
        let r = srv.post(
            "/v1/self/session",
            "",
            json!({"email": "wang.fang@example.cn", "code": "000000"}),
        );
        if r.status == 429 {
            stopped = Some(i);
            break;
        }
    }
    assert!(stopped.is_some(), "brute force was never stopped");
    // Unknown addresses get the same answer as known ones.
    assert_eq!(
        srv.post("/v1/self/code", "", json!({"email": "nobody@example.cn"}))
            .status,
        202
    );
}

/// A mailer that holds every message until the test lets it go: an answer that waited for
/// its mail would never come.
struct HeldMailer {
    sent: Mutex<Vec<String>>,
    gate: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl steward_core::Mailer for HeldMailer {
    fn send(&self, to: &str, _subject: &str, body: &str) -> Result<(), String> {
        let _ = self.gate.lock().unwrap().recv();
        assert!(body.contains("Your sign-in code is") && body.contains("登录验证码"));
        self.sent.lock().unwrap().push(to.to_string());
        Ok(())
    }
}

/// Registered and unknown addresses get the same answers — status, body, limits, Retry-After
/// — and none waits for its mail; the code goes to the address the record holds, not to a
/// look-alike typed (P25).
#[test]
fn p25_known_and_unknown_addresses_are_indistinguishable() {
    let (release, gate) = std::sync::mpsc::channel();
    let mailer = Arc::new(HeldMailer {
        sent: Mutex::new(Vec::new()),
        gate: Mutex::new(gate),
    });
    let srv = Server::start_with_mail(Some(mailer.clone()));
    let key = srv.key("service");
    let s = srv.post("/v1/subjects", &key, serde_json::Value::Null).body["subject"]
        .as_str()
        .unwrap()
        .to_string();
    let r = srv.post(
        &format!("/v1/subjects/{s}/collect"),
        &key,
        json!({"feature": "account", "values": [{"category": "name", "value": "Kai"}, {"category": "email", "value": "Kai.Li@Example.cn"}], "source": {"kind": "subject"}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let answers = |email: &str| -> Vec<(u16, String)> {
        (0..8)
            .map(|_| {
                let (reply, headers) = srv.raw(&format!(
                    "POST /v1/self/code HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"email\":\"{email}\"}}",
                    email.len() + 12
                ));
                let retry = headers.contains("retry-after:");
                assert_eq!(retry, reply.status == 429, "{headers}");
                (reply.status, reply.body.to_string())
            })
            .collect()
    };
    // The look-alike: U+212A KELVIN SIGN for the K, other case.
    let known = answers("\u{212A}ai.li@example.CN");
    let unknown = answers("nobody.here@example.cn");
    assert_eq!(known, unknown);
    let statuses: Vec<u16> = known.iter().map(|k| k.0).collect();
    assert_eq!(statuses, [202, 202, 202, 202, 202, 429, 429, 429]);
    // Every answer came while the mail was still held; now let it go.
    for _ in 0..5 {
        release.send(()).unwrap();
    }
    crate::kit::wait_for(
        "the codes were not mailed",
        std::time::Duration::from_secs(20),
        || mailer.sent.lock().unwrap().len() == 5,
    );
    assert!(
        mailer
            .sent
            .lock()
            .unwrap()
            .iter()
            .all(|to| to == "Kai.Li@Example.cn"),
        "{:?}",
        mailer.sent.lock().unwrap()
    );
}

/// A mailer that keeps what it is given.
#[derive(Default)]
pub(crate) struct KeptMail(Mutex<Vec<String>>);

impl steward_core::Mailer for KeptMail {
    fn send(&self, _to: &str, _subject: &str, body: &str) -> Result<(), String> {
        self.0.lock().unwrap().push(body.to_string());
        Ok(())
    }
}

/// The code in the newest mail `mail` was given.
pub(crate) fn code_in(mail: &KeptMail) -> String {
    crate::kit::wait_for(
        "no code was mailed",
        std::time::Duration::from_secs(20),
        || !mail.0.lock().unwrap().is_empty(),
    );
    let body = mail.0.lock().unwrap().last().unwrap().clone();
    body.split("Your sign-in code is ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect()
}

/// Signs in subject `n` (made by [`Server::subject`]) with the code mailed to `mail`: their
/// session token.
pub(crate) fn signed_in(srv: &Server, mail: &KeptMail, n: usize) -> String {
    let before = mail.0.lock().unwrap().len();
    assert_eq!(
        srv.post("/v1/self/code", "", json!({"email": Server::email_of(n)}))
            .status,
        202
    );
    crate::kit::wait_for(
        "no code was mailed",
        std::time::Duration::from_secs(20),
        || mail.0.lock().unwrap().len() > before,
    );
    let body = mail.0.lock().unwrap()[before].clone();
    let code: String = body
        .split("Your sign-in code is ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let r = srv.post(
        "/v1/self/session",
        "",
        json!({"email": Server::email_of(n), "code": code}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["token"].as_str().unwrap().to_string()
}

/// A subject sees their own requests and inquiries — state, deadline, refusal reason — and
/// their export holds them with their text; so does the export staff make (P23, P26, P31).
#[test]
fn p31_a_subject_sees_their_requests_and_their_export_holds_them() {
    let mail = Arc::new(KeptMail::default());
    let srv = Server::start_with_mail(Some(mail.clone()));
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let id = srv.subject(&service);
    let session = signed_in(&srv, &mail, 0);
    let r = srv.post(
        "/v1/self/requests",
        &session,
        json!({"kind": "inquiry", "text": "为什么保留我的 IP 地址？"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // Staff take in another request, a minute later, and refuse it.
    srv.clock.advance(60_000);
    let r = srv.post(
        &format!("/v1/subjects/{id}/requests"),
        &officer,
        json!({"kind": "deletion"}),
    );
    let refused = r.body["id"].as_str().unwrap().to_string();
    let r = srv.post(
        &format!("/v1/requests/{refused}/refuse"),
        &officer,
        json!({"reason": "legal_obligation", "note": "tax records are kept 10 years"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let mine = srv.get("/v1/self/requests", &session);
    assert_eq!(mine.status, 200, "{}", mine.body);
    let list = mine.body.as_array().unwrap();
    assert_eq!(list.len(), 2, "{}", mine.body);
    assert_eq!(list[0]["kind"], "inquiry");
    assert_eq!(list[0]["state"], "verified");
    assert!(list[0]["due_at"].as_str().is_some());
    assert_eq!(list[1]["state"], "refused");
    assert_eq!(
        list[1]["outcome"]["refused"], "legal_obligation",
        "{}",
        list[1]
    );
    // Another subject's session sees none of them.
    assert_eq!(srv.get("/v1/self/requests", "sts_nope").status, 401);

    // Staff read the inquiry's text to answer it: with a justification, audited without it.
    let inquiry = list[0]["id"].as_str().unwrap();
    let r = srv.post(&format!("/v1/requests/{inquiry}/text"), &officer, json!({}));
    assert_eq!(
        r.body["error"]["code"], "justification_required",
        "{}",
        r.body
    );
    let r = srv.post(
        &format!("/v1/requests/{inquiry}/text"),
        &officer,
        json!({"justification": "answering inquiry 42 for Han Meimei"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["text"], "为什么保留我的 IP 地址？");
    let log = srv.audit_text();
    assert!(log.contains("request.read_text"));
    assert!(
        !log.contains("Han Meimei") && !log.contains("IP 地址"),
        "free text in the log"
    );

    for export in [
        srv.get("/v1/self/export", &session),
        srv.post(
            &format!("/v1/subjects/{id}/export"),
            &officer,
            json!({"justification": "answering inquiry 42"}),
        ),
    ] {
        assert_eq!(export.status, 200, "{}", export.body);
        let requests = export.body["requests"].as_array().unwrap();
        assert_eq!(requests.len(), 2, "{}", export.body);
        assert_eq!(requests[0]["text"], "为什么保留我的 IP 地址？");
        assert_eq!(requests[1]["state"], "refused");
    }
}
