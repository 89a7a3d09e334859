//! The test kit's server: the real `steward-server` on a free loopback port, over a fresh
//! store, with a clock the test moves. Requests go over real HTTP.

use std::sync::Arc;

use serde_json::Value;
use steward_core::Vault;
use steward_core::clock::{Clock, ManualClock};
use steward_crypto::MasterKey;
use steward_policy::Policy;

/// The backend the tests run on: the embedded store, or PostgreSQL when
/// `STEWARD_TEST_BACKEND=postgres` (CI runs this binary both ways). On PostgreSQL each server
/// gets schemas of its own, dropped when it stops.
pub struct TestBackend {
    pub backend: steward_core::Backend,
    _dir: tempfile::TempDir,
}

impl TestBackend {
    pub fn new() -> TestBackend {
        let dir = tempfile::tempdir().unwrap();
        let backend = match std::env::var("STEWARD_TEST_BACKEND").as_deref() {
            Ok("postgres") => {
                let url = steward_store::test_url();
                let data = steward_core::PgTarget::unique(&url, "it").unwrap();
                let keyring =
                    steward_core::PgTarget::new(&url, &format!("{}_keys", data.schema)).unwrap();
                steward_core::Backend::Postgres { data, keyring }
            }
            Ok("sqlite") | Err(_) => steward_core::Backend::Sqlite {
                dir: dir.path().to_path_buf(),
            },
            Ok(other) => panic!("STEWARD_TEST_BACKEND={other}: use sqlite or postgres"),
        };
        TestBackend { backend, _dir: dir }
    }

    /// The embedded store, in a temporary directory.
    pub fn sqlite() -> TestBackend {
        let dir = tempfile::tempdir().unwrap();
        TestBackend {
            backend: steward_core::Backend::Sqlite {
                dir: dir.path().join("data"),
            },
            _dir: dir,
        }
    }

    /// The embedded store in `dir`, kept while `owner` is.
    pub fn sqlite_at(owner: tempfile::TempDir, dir: std::path::PathBuf) -> TestBackend {
        TestBackend {
            backend: steward_core::Backend::Sqlite { dir },
            _dir: owner,
        }
    }

    /// PostgreSQL at `url`, in schemas of its own.
    pub fn postgres_at(url: &str) -> TestBackend {
        let data = steward_core::PgTarget::unique(url, "it").unwrap();
        let keyring = steward_core::PgTarget::new(url, &format!("{}_keys", data.schema)).unwrap();
        TestBackend {
            backend: steward_core::Backend::Postgres { data, keyring },
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn open(&self, clock: Arc<ManualClock>) -> Vault {
        self.open_under(clock, Policy::example().unwrap())
    }

    /// [`TestBackend::open`] under another policy.
    pub fn open_under(&self, clock: Arc<ManualClock>, policy: Policy) -> Vault {
        let master = MasterKey::from_hex(&"5a".repeat(32)).unwrap();
        Vault::open_backend(&self.backend, policy, &master, clock, None)
            .unwrap()
            // Test receivers listen on loopback.
            .with_local_webhooks(true)
            .with_contacts(steward_core::deadlines::Contacts {
                requests: vec!["support@example.com".into()],
                escalation: vec!["dpo@example.com".into()],
                reminder_days: vec![7, 1],
            })
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        if let steward_core::Backend::Postgres { data, keyring } = &self.backend {
            let _ = data.drop_schema();
            let _ = keyring.drop_schema();
        }
    }
}

pub struct Server {
    pub base: String,
    pub vault: Arc<Vault>,
    pub clock: Arc<ManualClock>,
    agent: ureq::Agent,
    /// Subjects made by [`Server::subject`]: each gets a sign-in address of its own.
    subjects: std::sync::atomic::AtomicUsize,
    running: Option<steward_server::Running>,
    /// Dropped last: the schemas go once the server has stopped.
    backend: Option<TestBackend>,
}

/// The provider's site every test server lets call the visitor consent API.
pub const PROVIDER_SITE: &str = "https://shop.example.cn";

pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with_mail(None)
    }

    /// A server that mails sign-in codes through `mailer`.
    pub fn start_with_mail(mailer: Option<Arc<dyn steward_core::Mailer>>) -> Server {
        Server::start_on(TestBackend::new(), mailer)
    }

    /// A server on `backend`.
    pub fn start_on(backend: TestBackend, mailer: Option<Arc<dyn steward_core::Mailer>>) -> Server {
        Server::start_tuned(
            backend,
            mailer,
            steward_server::Options::default().read_timeout,
        )
    }

    /// A server on `backend` that gives clients `read_timeout` to send a request's head and
    /// then its body.
    pub fn start_tuned(
        backend: TestBackend,
        mailer: Option<Arc<dyn steward_core::Mailer>>,
        read_timeout: std::time::Duration,
    ) -> Server {
        let policy = Policy::example().unwrap();
        Server::start_under(backend, mailer, read_timeout, policy, &[])
    }

    /// A server under `policy`.
    pub fn start_with_policy(policy: Policy) -> Server {
        let timeout = steward_server::Options::default().read_timeout;
        Server::start_under(TestBackend::new(), None, timeout, policy, &[])
    }

    /// A server whose visitor consent API the provider's site `site` may call too.
    pub fn start_for_site(site: &str) -> Server {
        let timeout = steward_server::Options::default().read_timeout;
        let policy = Policy::example().unwrap();
        Server::start_under(TestBackend::new(), None, timeout, policy, &[site])
    }

    fn start_under(
        backend: TestBackend,
        mailer: Option<Arc<dyn steward_core::Mailer>>,
        read_timeout: std::time::Duration,
        policy: Policy,
        sites: &[&str],
    ) -> Server {
        let clock = Arc::new(ManualClock::new(1_767_225_600_000));
        let vault = Arc::new(backend.open_under(clock.clone(), policy));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // The provider's own site, for the visitor consent API.
        let mut origins = vec![crate::http::PROVIDER_SITE.to_string()];
        origins.extend(sites.iter().map(|s| s.to_string()));
        let state = steward_server::AppState::new(Arc::clone(&vault), mailer).with_origins(origins);
        let options = steward_server::Options {
            max_body_bytes: 1 << 20,
            retention_sweep: None,
            read_timeout,
            // Tests deliver the outbox themselves, when they have moved the clock.
            outbox_poll: None,
            ..Default::default()
        };
        let running =
            steward_server::start(state, listener, options, None, std::future::pending()).unwrap();
        let base = format!("http://{}", running.addr());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Server {
            base,
            vault,
            clock,
            backend: Some(backend),
            agent,
            subjects: std::sync::atomic::AtomicUsize::new(0),
            running: Some(running),
        }
    }

    /// Moves the test clock to the real time (what the independent webhook verifier checks
    /// timestamps against), and returns it.
    pub fn to_real_time(&self) -> i64 {
        let real = crate::kit::real_now_ms();
        self.clock
            .advance(real - steward_core::clock::Clock::now_ms(&*self.clock));
        real
    }

    /// A dispatcher for this server's outbox: mail to the SMTP sink on `smtp_port`, webhooks
    /// over HTTP.
    pub fn dispatcher(&self, smtp_port: u16) -> steward_core::dispatch::Dispatcher {
        let mailer = steward_server::mail::SmtpMailer::new(
            "127.0.0.1",
            smtp_port,
            "Privacy <privacy@example.com>",
        )
        .unwrap();
        steward_core::dispatch::Dispatcher::new(
            Arc::clone(&self.vault),
            Some(Arc::new(mailer)),
            Some(Arc::new(steward_server::webhook::HttpWebhooks::default())),
        )
    }

    /// Another vault over the same store, as another process (`steward key revoke`) opens it.
    pub fn other_process(&self) -> Vault {
        self.backend
            .as_ref()
            .unwrap()
            .open(Arc::new(ManualClock::new(self.clock.now_ms())))
    }

    /// A fresh API key for `role`.
    pub fn key(&self, role: &str) -> String {
        self.vault.create_api_key(role, role).unwrap().1
    }

    fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut r = r.expect("the server answers");
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body }
    }

    /// POSTs `body` as JSON; `Value::Null` sends no body at all.
    pub fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        let req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {key}"));
        Self::reply(if body.is_null() {
            req.send_empty()
        } else {
            req.send_json(body)
        })
    }

    /// POSTs `body` as JSON with headers more (`Sec-GPC: 1`, `Origin`).
    pub fn post_with(&self, path: &str, key: &str, headers: &[(&str, &str)], body: Value) -> Reply {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {key}"));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        Self::reply(req.send_json(body))
    }

    pub fn post_raw(&self, path: &str, key: &str, content_type: &str, body: &str) -> Reply {
        Self::reply(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("Authorization", format!("Bearer {key}"))
                .content_type(content_type)
                .send(body),
        )
    }

    /// Announces a body larger than the server takes, and sends none of it: the server must
    /// answer from the headers alone.
    pub fn post_oversized(&self, path: &str, key: &str, length: usize) -> Reply {
        let (reply, _) = self.raw(&format!(
            "POST {path} HTTP/1.1\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
        ));
        reply
    }

    /// Sends `head` (a request line and headers, each ending in CRLF; `Host` and
    /// `Connection: close` are added) as bytes, so that requests no client library would
    /// form can be sent. The reply and its raw header block.
    pub fn raw(&self, head: &str) -> (Reply, String) {
        self.raw_request(&format!("{head}\r\n"))
    }

    /// Sends a whole request — request line, headers, blank line and any body — with `Host`
    /// and `Connection: close` added after the request line. The reply and its raw header
    /// block, lowercased.
    pub fn raw_request(&self, request: &str) -> (Reply, String) {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://");
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        // A server that never answers fails the test instead of hanging it.
        conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let (line, rest) = request.split_once("\r\n").unwrap_or((request, ""));
        write!(
            conn,
            "{line}\r\nHost: {addr}\r\nConnection: close\r\n{rest}"
        )
        .unwrap();
        let mut raw = Vec::new();
        let _ = conn.read_to_end(&mut raw);
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let status = raw
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (headers, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
        let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
        (Reply { status, body }, headers.to_ascii_lowercase())
    }

    pub fn get(&self, path: &str, key: &str) -> Reply {
        Self::reply(
            self.agent
                .get(format!("{}{path}", self.base))
                .header("Authorization", format!("Bearer {key}"))
                .call(),
        )
    }

    /// A text answer: its body as it came.
    pub fn get_text(&self, path: &str, key: &str) -> String {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {key}"))
            .call()
            .expect("the server answers");
        assert_eq!(r.status().as_u16(), 200);
        r.body_mut().read_to_string().unwrap()
    }

    /// Grants or withdraws `purpose:surveys` for `subject`: the audit entry its verified receipt
    /// names, or the refusal's status and code.
    pub fn consent_write(
        &self,
        subject: &str,
        key: &str,
        granted: bool,
    ) -> Result<u64, (u16, String)> {
        let r = self.post(
            &format!("/v1/subjects/{subject}/consents"),
            key,
            serde_json::json!({"target": "purpose:surveys", "granted": granted, "channel": "app"}),
        );
        if r.status != 201 {
            let code = r.body["error"]["code"].as_str().unwrap_or("").to_string();
            return Err((r.status, code));
        }
        let receipt: steward_core::SignedDocument = serde_json::from_value(r.body).unwrap();
        let payload =
            steward_core::evidence::verify_document(&receipt, Some(self.vault.public_key()))
                .unwrap();
        Ok(payload["audit_seq"].as_u64().unwrap())
    }

    /// Every acknowledged consent write — (subject, audit entry) — is stored at that entry,
    /// and the audit log verifies.
    pub fn assert_consents_kept(&self, acknowledged: &[(String, u64)]) {
        let mut stored: std::collections::HashMap<String, std::collections::HashSet<u64>> =
            std::collections::HashMap::new();
        for (subject, seq) in acknowledged {
            let seqs = stored.entry(subject.clone()).or_insert_with(|| {
                let id: steward_core::SubjectId = subject.parse().unwrap();
                self.vault
                    .store()
                    .consent_history(&id.0)
                    .unwrap()
                    .iter()
                    .map(|c| c.audit_seq)
                    .collect()
            });
            assert!(
                seqs.contains(seq),
                "acknowledged consent {subject}@{seq} lost"
            );
        }
        self.verified();
    }

    /// Every audit entry's stored bytes, as text: what tests search for values that must not
    /// be in the log.
    pub fn audit_text(&self) -> String {
        let mut log = String::new();
        self.vault
            .store()
            .audit_scan(1, &mut |e| {
                log.push_str(&String::from_utf8_lossy(e.bytes));
                true
            })
            .unwrap();
        log
    }

    /// The audit log verifies; its report.
    pub fn verified(&self) -> steward_core::evidence::Report {
        let report = steward_core::evidence::verify_store(
            self.vault.store(),
            self.vault.public_key(),
            Vec::new(),
            &mut |_| {},
        )
        .unwrap();
        report.unwrap_or_else(|fault| panic!("the audit log does not verify: {fault:?}"))
    }

    /// The email of the `n`th subject [`Server::subject`] made on this server (from 0): the
    /// first is `wang.fang@example.cn`. A sign-in address belongs to one subject (P25).
    pub fn email_of(n: usize) -> String {
        if n == 0 {
            "wang.fang@example.cn".into()
        } else {
            format!("wang.fang+{n}@example.cn")
        }
    }

    /// Registers a subject with an account (name, email, phone) and returns its id; see
    /// [`Server::email_of`].
    pub fn subject(&self, key: &str) -> String {
        let n = self
            .subjects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let r = self.post("/v1/subjects", key, Value::Null);
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["subject"].as_str().unwrap().to_string();
        let r = self.post(
            &format!("/v1/subjects/{id}/collect"),
            key,
            serde_json::json!({
                "feature": "account",
                "values": [
                    {"category": "name", "value": "Wang Fang"},
                    {"category": "email", "value": Server::email_of(n)},
                    {"category": "phone", "value": format!("+86 135 {:08}", 1111 + n)}
                ],
                "source": {"kind": "subject"}
            }),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        id
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop();
        }
        self.backend.take();
    }
}
