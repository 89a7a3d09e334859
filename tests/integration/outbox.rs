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
pub(crate) struct Receiver {
    child: Child,
    calls: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    pub(crate) fn start(port: u16, secret: &str, fail_first: usize) -> Receiver {
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

    pub(crate) fn calls(&self, n: usize) -> Vec<Value> {
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

impl Receiver {
    /// Registers an endpoint on a free loopback port for `events` (with `key`, a role that
    /// manages the outbox) and starts the independent receiver there, failing its first
    /// `fail_first` calls.
    pub(crate) fn registered(
        srv: &crate::http::Server,
        key: &str,
        events: &[&str],
        fail_first: usize,
    ) -> Receiver {
        let port = free_port();
        let r = srv.post(
            "/v1/webhooks",
            key,
            serde_json::json!({"url": format!("http://127.0.0.1:{port}/hooks"), "events": events}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        Receiver::start(port, r.body["secret"].as_str().unwrap(), fail_first)
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn p26_a_refusal_reaches_the_subject_by_email_and_endpoints_by_signed_webhook() {
    let srv = Server::start();
    // The independent verifier checks each call's timestamp against the real time.
    srv.to_real_time();
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

    let d = srv.dispatcher(sink.port);
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

    // A second subject who reads English is written in English.
    let b = srv.subject(&service);
    let r = srv.post(
        &format!("/v1/subjects/{b}/language"),
        &service,
        json!({"language": "fr"}),
    );
    assert_eq!(r.body["error"]["code"], "invalid_input", "{}", r.body);
    let r = srv.post(
        &format!("/v1/subjects/{b}/language"),
        &service,
        json!({"language": "en"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = srv.post(
        &format!("/v1/subjects/{b}/requests"),
        &officer,
        json!({"kind": "access"}),
    );
    let rb = r.body["id"].as_str().unwrap().to_string();
    srv.post(
        &format!("/v1/requests/{rb}/refuse"),
        &officer,
        json!({"reason": "security", "note": "we could not confirm the request"}),
    );
    while d.run_once().unwrap().claimed > 0 {}
    sink.wait_for_mails(5);
    let mail = sink.text();
    let english = mail
        .split("MESSAGE FOLLOWS")
        .find(|m| {
            m.contains("wang.fang+1@example.cn")
                && m.contains(&rb)
                && m.contains("cannot carry out")
        })
        .unwrap_or_else(|| panic!("no English refusal: {mail}"));
    assert!(
        english.contains("would put the security of our service")
            && english.contains("we could not confirm the request")
            && english.contains("complain to the authority"),
        "{english}"
    );
    assert!(!english.contains("我们"), "{english}");
    // The export holds the language recorded.
    let r = srv.post(
        &format!("/v1/subjects/{b}/export"),
        &officer,
        json!({"justification": "checking the language"}),
    );
    assert_eq!(r.body["language"], "en");
}

/// Keeps what would have been mailed: (to, subject line, text).
#[derive(Default)]
struct Kept(Mutex<Vec<(String, String, String)>>);

impl steward_core::Mailer for Kept {
    fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .push((to.into(), subject.into(), body.into()));
        Ok(())
    }
}

/// P32: one board shows every kind of clock Steward keeps; reminders before a request's
/// deadline go to the request contacts at each lead time, and an escalation to the privacy
/// officer's once it has passed — each once, when the clock is moved.
#[test]
fn p32_the_deadline_board_shows_every_clock_and_reminders_go_when_the_clock_moves() {
    let srv = Server::start();
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let day = steward_core::DAY_MS;
    let a = srv.subject(&service);
    let b = srv.subject(&service);
    let r = srv.post(
        &format!("/v1/subjects/{a}/collect"),
        &service,
        json!({"feature": "usage_logging", "values": [{"category": "ip_address", "value": "192.0.2.7"}, {"category": "access_time", "value": "2026-01-01T08:00:00+08:00"}], "source": {"kind": "observed"}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let open = |who: &str, kind: &str| {
        let r = srv.post(
            &format!("/v1/subjects/{who}/requests"),
            &officer,
            json!({"kind": kind}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    };
    let access = open(&a, "access");
    let inquiry = open(&a, "inquiry");
    let r = srv.post(
        &format!("/v1/subjects/{a}/holds"),
        &officer,
        json!({"categories": ["ip_address"], "reason": "dispute", "reference": "case 7", "until_ms": steward_core::clock::Clock::now_ms(&*srv.clock) + 10 * day}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // b cancels the account: erasure is due after the grace period.
    let cancel = open(&b, "account_cancellation");
    srv.post(
        &format!("/v1/requests/{cancel}/verify"),
        &officer,
        json!({"method": "documents"}),
    );
    let r = srv.post(
        &format!("/v1/requests/{cancel}/complete"),
        &officer,
        json!({"justification": "the subject's request"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let board = |days: u32| {
        let r = srv.get(&format!("/v1/deadlines?within_days={days}"), &officer);
        assert_eq!(r.status, 200, "{}", r.body);
        r.body.as_array().unwrap().clone()
    };
    let all = board(400);
    let mut kinds: Vec<&str> = all.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        ["erasure", "hold_end", "inquiry", "request", "retention"],
        "{all:?}"
    );
    assert!(
        all.windows(2)
            .all(|w| w[0]["due_ms"].as_i64() <= w[1]["due_ms"].as_i64())
    );
    let hold = all.iter().find(|d| d["kind"] == "hold_end").unwrap();
    assert_eq!(
        (hold["days_left"].as_i64(), hold["status"].as_str()),
        (Some(10), Some("later"))
    );
    assert!(
        board(20).iter().all(|d| d["kind"] == "hold_end"),
        "only what is due within 20 days"
    );
    assert!(
        !serde_json::to_string(&all).unwrap().contains(&a),
        "subjects by pseudonym"
    );

    // Reminders: none a month out; at 7 days and at 1 day before, one each to the request
    // contacts; once overdue, one escalation; never twice.
    let remind = || srv.vault.send_reminders().unwrap();
    assert_eq!(remind(), steward_core::deadlines::Reminders::default());
    srv.clock.advance(23 * day + 1);
    assert_eq!((remind().due_soon, remind().due_soon), (2, 0));
    srv.clock.advance(6 * day);
    assert_eq!(remind().due_soon, 2);
    srv.clock.advance(2 * day);
    let r = remind();
    assert_eq!((r.overdue, r.due_soon), (2, 0));
    assert_eq!(remind().overdue, 0);
    let overdue: Vec<Value> = board(0)
        .into_iter()
        .filter(|d| d["status"] == "overdue")
        .collect();
    // The two requests, and the closed account's erasure (no sweep has run).
    let mut kinds: Vec<&str> = overdue
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["erasure", "inquiry", "request"], "{overdue:?}");
    assert!(
        overdue.iter().all(|d| d["days_left"].as_i64() == Some(-1)),
        "{overdue:?}"
    );

    let kept = Arc::new(Kept::default());
    let d =
        steward_core::dispatch::Dispatcher::new(Arc::clone(&srv.vault), Some(kept.clone()), None);
    while d.run_once().unwrap().claimed > 0 {}
    let mails = kept.0.lock().unwrap().clone();
    let to = |who: &str| mails.iter().filter(|m| m.0 == who).count();
    assert_eq!((to("support@example.com"), to("dpo@example.com")), (4, 2));
    let escalation = mails.iter().find(|m| m.0 == "dpo@example.com").unwrap();
    assert!(escalation.1.contains("逾期"), "{escalation:?}");
    assert!(
        escalation.2.contains(&access) || escalation.2.contains(&inquiry),
        "{escalation:?}"
    );
    // The log holds each reminder, without an address.
    let log = srv.audit_text();
    assert_eq!(log.matches("deadline.remind").count(), 6);
    assert!(!log.contains("support@example.com"));
}

/// A `steward serve` of its own, on a fresh store of the test backend, mailing to `sink`: for
/// the tests that kill it.
pub(crate) struct Deployment {
    _dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
    pub(crate) port: u16,
    smtp_port: u16,
    agent: ureq::Agent,
    _backend: crate::http::TestBackend,
}

impl Deployment {
    pub(crate) fn new(sink: &SmtpSink, extra: &[(&'static str, &str)]) -> Deployment {
        use crate::kit::s;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let backend = crate::http::TestBackend::new();
        let mut env: Vec<(&'static str, String)> = vec![
            ("STEWARD_DATA_DIR", s(&data).to_string()),
            ("STEWARD_MASTER_KEY", "3c".repeat(32)),
        ];
        if let steward_core::Backend::Postgres { data, keyring } = &backend.backend {
            env.extend([
                ("STEWARD_DATABASE", data.url.clone()),
                ("STEWARD_DATABASE_SCHEMA", data.schema.clone()),
                ("STEWARD_KEYRING_SCHEMA", keyring.schema.clone()),
            ]);
        }
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        Deployment {
            _dir: dir,
            env,
            port: free_port(),
            smtp_port: sink.port,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
            _backend: backend,
        }
    }

    /// Runs a `steward` command on the store; its output, which must be a success.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_steward"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Makes the store, and API keys for the service and the privacy officer.
    pub(crate) fn keys(&self) -> (String, String) {
        self.cli(&["migrate"]);
        let service = self.cli(&["key", "create", "--name", "app", "--role", "service"]);
        let officer = self.cli(&[
            "key",
            "create",
            "--name",
            "dpo",
            "--role",
            "privacy_officer",
        ]);
        (service, officer)
    }

    /// Starts `steward serve`, dispatching every 20 ms, and waits until it listens.
    pub(crate) fn start(&self) -> Child {
        let child = Command::new(env!("CARGO_BIN_EXE_steward"))
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("STEWARD_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("STEWARD_SMTP_HOST", "127.0.0.1")
            .env("STEWARD_SMTP_PORT", self.smtp_port.to_string())
            .env("STEWARD_SMTP_FROM", "Privacy <privacy@example.com>")
            .env("STEWARD_OUTBOX_POLL_MS", "20")
            .env("STEWARD_OUTBOX_LEASE_MS", "1000")
            .env("STEWARD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        crate::kit::wait_for(
            "steward serve did not start",
            std::time::Duration::from_secs(30),
            || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
        );
        child
    }

    /// POSTs JSON with an API key: the status (0 when the server is gone) and the body.
    pub(crate) fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .agent
            .post(&format!("http://127.0.0.1:{}{path}", self.port))
            .header("Authorization", &format!("Bearer {key}"))
            .send_json(&body);
        match r {
            Ok(mut r) => (
                r.status().as_u16(),
                r.body_mut().read_json().unwrap_or(Value::Null),
            ),
            Err(_) => (0, Value::Null),
        }
    }
}

/// The Message-ID of each mail the sink took, with the mail.
pub(crate) fn mails_by_id(sink: &SmtpSink) -> Vec<(String, String)> {
    sink.text()
        .split("MESSAGE FOLLOWS")
        .skip(1)
        .map(|mail| {
            let id = mail
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .unwrap_or_default()
                .to_string();
            assert!(id.starts_with("<msg_"), "{mail}");
            (id, mail.to_string())
        })
        .collect()
}

/// Issue 12: `steward serve` killed with SIGKILL while its dispatcher is sending loses no
/// acknowledged message: after a restart every request acknowledged before the kill has its
/// mail delivered at least once, and a repeat carries the same `Message-ID`.
#[test]
fn p26_kill_9_during_dispatch_loses_no_acknowledged_message() {
    let sink = SmtpSink::start();
    let d = Deployment::new(&sink, &[]);
    let (service, officer) = d.keys();
    let mut server = d.start();
    let (status, made) = d.post(&service, "/v1/subjects", json!({}));
    assert_eq!(status, 201, "{made}");
    let id = made["subject"].as_str().unwrap().to_string();
    let (status, _) = d.post(
        &service,
        &format!("/v1/subjects/{id}/collect"),
        json!({"feature": "account", "values": [{"category": "name", "value": "Kill Nine"}, {"category": "email", "value": "kill.nine@example.cn"}, {"category": "phone", "value": "+86 135 0000 9999"}], "source": {"kind": "subject"}}),
    );
    assert_eq!(status, 201);
    // Requests acknowledged while the dispatcher sends; the kill comes mid-stream.
    let mut acknowledged = Vec::new();
    for _ in 0..=40 {
        let (status, r) = d.post(
            &officer,
            &format!("/v1/subjects/{id}/requests"),
            json!({"kind": "inquiry"}),
        );
        if status == 201 {
            acknowledged.push(r["id"].as_str().unwrap().to_string());
        }
    }
    let _ = server.kill(); // SIGKILL
    let _ = server.wait();
    assert!(acknowledged.len() >= 40, "{}", acknowledged.len());
    let mut server = d.start();
    let delivered = |req: &str| sink.text().contains(req);
    crate::kit::wait_for(
        "not every acknowledged request's mail arrived after the restart",
        std::time::Duration::from_secs(60),
        || acknowledged.iter().all(|r| delivered(r)),
    );
    let _ = server.kill();
    let _ = server.wait();
    // A mail sent twice (claimed before the kill, sent again after its lease) keeps its id.
    let mut by_id: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for (message_id, mail) in mails_by_id(&sink) {
        let request = acknowledged
            .iter()
            .find(|r| mail.contains(r.as_str()))
            .cloned()
            .unwrap_or_default();
        if let Some(seen) = by_id.insert(message_id.clone(), request.clone()) {
            assert_eq!(seen, request, "one Message-ID, one message");
        }
    }
}
