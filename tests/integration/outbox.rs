//! Issue 12 (P26): the outbox over the wire — the subject's emails through real SMTP to a
//! local sink, webhook calls over real HTTP to a local receiver that fails the first attempts
//! and checks every signature with an independent implementation (`standardwebhooks`, PyPI).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::http::Server;
use crate::selfservice::SmtpSink;

/// `tools/webhook-receiver.py` on a free loopback port.
struct Receiver {
    child: Child,
    calls: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start(port: u16, secret: &str, fail_first: usize) -> Receiver {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/webhook-receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args([&port.to_string(), secret, &fail_first.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs tools/webhook-receiver.py (pip install standardwebhooks)");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&calls);
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        crate::kit::wait_for(
            "the webhook receiver did not start",
            std::time::Duration::from_secs(20),
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        Receiver { child, calls }
    }

    fn calls(&self, n: usize) -> Vec<Value> {
        crate::kit::wait_for(
            "the webhook calls did not arrive",
            std::time::Duration::from_secs(20),
            || self.calls.lock().unwrap().len() >= n,
        );
        self.calls.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn p26_a_refusal_reaches_the_subject_by_email_and_endpoints_by_signed_webhook() {
    let srv = Server::start();
    // The independent verifier checks a call's timestamp against the real time.
    #[expect(
        clippy::disallowed_methods,
        reason = "the receiver checks against real time"
    )]
    let real_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    srv.clock
        .advance(real_ms - steward_core::clock::Clock::now_ms(&*srv.clock));
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let id = srv.subject(&service);

    let port = free_port();
    let r = srv.post(
        "/v1/webhooks",
        &officer,
        json!({"url": format!("http://127.0.0.1:{port}/hooks"), "events": ["request.received", "request.refused"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    // Only roles with outbox.manage register endpoints; unknown events are refused.
    let r = srv.post(
        "/v1/webhooks",
        &service,
        json!({"url": "https://hooks.example.com/x"}),
    );
    assert_eq!(r.body["error"]["code"], "operation_not_permitted");
    let r = srv.post(
        "/v1/webhooks",
        &officer,
        json!({"url": "https://hooks.example.com/x", "events": ["leakmark.event"]}),
    );
    assert_eq!(r.body["error"]["code"], "invalid_input");
    assert!(!r.body.to_string().contains("leakmark"));
    let receiver = Receiver::start(port, &secret, 2);
    let sink = SmtpSink::start();

    // A deletion request, verified, then refused with a reason from the fixed list.
    let r = srv.post(
        &format!("/v1/subjects/{id}/requests"),
        &officer,
        json!({"kind": "deletion"}),
    );
    let rid = r.body["id"].as_str().unwrap().to_string();
    srv.post(
        &format!("/v1/requests/{rid}/verify"),
        &officer,
        json!({"method": "documents"}),
    );
    let r = srv.post(
        &format!("/v1/requests/{rid}/refuse"),
        &officer,
        json!({"reason": "legal_obligation", "note": "tax records are kept for 5 years"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let pending = srv.get("/v1/outbox?state=pending", &officer);
    assert_eq!(
        pending.body.as_array().unwrap().len(),
        5,
        "{}",
        pending.body
    );

    let mailer = steward_server::mail::SmtpMailer::new(
        "127.0.0.1",
        sink.port,
        "Privacy <privacy@example.com>",
    )
    .unwrap();
    let d = steward_core::dispatch::Dispatcher::new(
        Arc::clone(&srv.vault),
        Some(Arc::new(mailer)),
        Some(Arc::new(steward_server::webhook::HttpWebhooks::default())),
    );
    let r = d.run_once().unwrap();
    assert_eq!((r.claimed, r.delivered, r.failed), (5, 3, 2), "{r:?}");
    srv.clock.advance(6_001);
    let r = d.run_once().unwrap();
    assert_eq!((r.claimed, r.delivered), (2, 2), "{r:?}");

    // Every call verified by the independent implementation; the two that failed came again
    // under the same ids; no PI in any of them.
    let calls = receiver.calls(4);
    assert!(calls.iter().all(|c| c["verified"] == true), "{calls:?}");
    let ids = |status: u64| {
        let mut ids: Vec<String> = calls
            .iter()
            .filter(|c| c["status"] == status)
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(500), ids(204));
    let mut types: Vec<&str> = calls
        .iter()
        .filter(|c| c["status"] == 204)
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(types, ["request.received", "request.refused"]);
    for c in &calls {
        let body = c["body"].as_str().unwrap();
        assert!(!body.contains("wang.fang") && !body.contains(&id), "{body}");
    }

    // The subject's three emails, in the policy's language: the refusal names its reason
    // from the fixed list, the note, and what the subject can do.
    sink.wait_for_mails(3);
    let mail = sink.text();
    assert!(mail.matches("wang.fang@example.cn").count() >= 3, "{mail}");
    assert!(mail.contains("法律要求我们保存或处理这些信息"), "{mail}");
    assert!(mail.contains("tax records are kept for 5 years"), "{mail}");
    assert!(mail.contains("投诉"), "{mail}");
    assert!(mail.contains(&rid));
    let delivered = srv.get("/v1/outbox?state=delivered", &officer);
    assert_eq!(delivered.body.as_array().unwrap().len(), 5);
    // Each sent mail is in the log, without the address.
    let log = srv.audit_text();
    assert_eq!(log.matches("message.sent").count(), 3);
    assert!(!log.contains("wang.fang"));
}
