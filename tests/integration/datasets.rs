//! Issue 16: dataset files — `steward datasets check` on the shipped examples, and on a broken
//! copy against a live PostgreSQL schema of the test's own, every error at file:line:column.

use std::process::Command;

use crate::kit::{s, steward, steward_env};

fn examples() -> [String; 2] {
    ["shop.yml", "support.yml"]
        .map(|f| format!("{}/examples/datasets/{f}", env!("CARGO_MANIFEST_DIR")))
}

/// `psql` on the test database, as the tests' PostgreSQL user.
fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            &steward_store::test_url(),
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn p23_the_shipped_datasets_check_clean() {
    let [shop, support] = examples();
    let crm = format!("{}/examples/datasets/crm.yml", env!("CARGO_MANIFEST_DIR"));
    let run = steward(&["datasets", "check", &shop, &support, &crm]).ok();
    assert!(
        run.stdout
            .contains("ok — 3 datasets, 5 collections, 4 references")
            && run.stdout.contains("crm: external"),
        "{}",
        run.stdout
    );
}

/// A copy with a misspelt category, a reference whose rows would block a delete and a cycle,
/// against a live schema missing a column: every error at once, each where it is (exit 3).
#[test]
fn p28_a_broken_dataset_names_every_error_with_its_place() {
    let [shop, _] = examples();
    let text = std::fs::read_to_string(shop).unwrap();
    let broken = text
        .replace("[user.contact.email]", "[user.contact.emial]")
        .replacen("            steward:\n              erase: null             # cleared before the customer's row is deleted\n", "", 1)
        .replace(
            "              data_type: time\n      - name: orders",
            "              data_type: time\n              references:\n                - field: orders.id\n      - name: orders",
        );
    assert_ne!(broken, text);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.yml");
    std::fs::write(&file, &broken).unwrap();
    let schema = format!("it_datasets_{}", std::process::id());
    psql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema}; {} ALTER TABLE customers DROP COLUMN phone;",
        std::fs::read_to_string(format!(
            "{}/examples/datasets/schema-postgres.sql",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    ));
    let url = steward_store::test_url();
    let run = steward_env(
        &["datasets", "check", s(&file)],
        &[
            ("STEWARD_DATASET_SHOP_URL", url.as_str()),
            ("STEWARD_DATASET_SHOP_SCHEMA", schema.as_str()),
        ],
    );
    psql(&format!("DROP SCHEMA {schema} CASCADE"));
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let name = s(&file);
    for expected in [
        format!("{name}:19:31: error[unknown_category]"),
        format!("{name}:31:13: error[missing_column]: table `customers` has no column `phone`"),
        format!("{name}:41:19: error[reference_cycle]"),
        format!(
            "{name}:52:19: error[deletion_forbidden]: `orders.customer_id` refers to `customers`"
        ),
        format!("{name}:52:19: error[reference_cycle]"),
    ] {
        assert!(
            run.stderr.contains(&expected),
            "missing {expected}\n{}",
            run.stderr
        );
    }
    // In the file's order.
    let lines: Vec<usize> = run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|l| l.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{}", run.stderr);
    assert!(run.stderr.contains("5 errors found"), "{}", run.stderr);
}

/// The provider's two example databases, made for one test: the shop in a PostgreSQL schema
/// of its own, the support desk in a MariaDB database of its own; both dropped with it.
pub struct ProviderDbs {
    pub schema: String,
    pub database: String,
}

fn mariadb(database: Option<&str>, sql: &str) {
    let mut cmd = Command::new("mariadb");
    cmd.args(["-h", "127.0.0.1", "-P", "3306", "-u", "root"]);
    if let Some(db) = database {
        cmd.arg(db);
    }
    let out = cmd
        .args(["-e", sql])
        .output()
        .expect("the mariadb client runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn example_sql(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/examples/datasets/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

impl ProviderDbs {
    /// The example schemas, with Ann (`email`, customer 1) and Bo (customer 2): Ann has two
    /// orders, a sign-in, a ticket by her address, a ticket opened by her customer id from
    /// another address, and a message on it.
    pub fn start(tag: &str, email: &str) -> ProviderDbs {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("it_{tag}_{}_{n}", std::process::id());
        psql(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}; SET search_path = {name}; {}
             INSERT INTO customers (id, email, full_name, phone) VALUES
                 (1, '{email}', 'Wang Fang', '+86 135 0000 1111'), (2, 'bo@example.com', 'Bo', NULL);
             INSERT INTO orders VALUES (10, 1, 'Street 1', 'tea', 500), (11, 2, 'Road 2', 'cups', 900),
                                       (12, 1, 'Street 1', 'pot', 1500);
             INSERT INTO login_events VALUES (100, 1, '10.0.0.1', now()), (101, 2, '10.0.0.2', now());",
            example_sql("schema-postgres.sql")
        ));
        mariadb(
            None,
            &format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"),
        );
        mariadb(
            Some(&name),
            &format!(
                "{}; INSERT INTO tickets VALUES (7, 'fang@other.example', 1, 'late tea'),
                    (8, 'bo@example.com', 2, 'broken cup'), (9, '{email}', NULL, 'invoice');
                 INSERT INTO ticket_messages VALUES (70, 7, '+86 135 0000 1111', '2026-01-02 03:04:05'),
                    (80, 8, NULL, '2026-01-02 03:04:05')",
                example_sql("schema-mariadb.sql")
            ),
        );
        ProviderDbs {
            schema: name.clone(),
            database: name,
        }
    }

    /// The connections, as the settings would give them.
    pub fn connections(
        &self,
    ) -> std::collections::BTreeMap<String, steward_datasets::live::Connection> {
        let mut c = std::collections::BTreeMap::new();
        c.insert(
            "shop".to_string(),
            steward_datasets::live::Connection {
                url: steward_store::test_url(),
                schema: Some(self.schema.clone()),
            },
        );
        c.insert(
            "support".to_string(),
            steward_datasets::live::Connection {
                url: format!("mysql://root@127.0.0.1:3306/{}", self.database),
                schema: None,
            },
        );
        c
    }

    /// The example datasets with these connections.
    pub fn fanout(
        &self,
        connections: std::collections::BTreeMap<String, steward_datasets::live::Connection>,
    ) -> std::sync::Arc<steward_datasets::run::Fanout> {
        let files: Vec<(String, String)> = examples()
            .iter()
            .map(|p| (p.clone(), std::fs::read_to_string(p).unwrap()))
            .collect();
        let (catalogue, problems) =
            steward_datasets::load(&files, &steward_policy::Policy::example().unwrap());
        assert!(problems.is_empty(), "{problems:?}");
        std::sync::Arc::new(steward_datasets::run::Fanout::new(catalogue, connections).unwrap())
    }
}

impl Drop for ProviderDbs {
    fn drop(&mut self) {
        psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        mariadb(None, &format!("DROP DATABASE IF EXISTS {}", self.database));
    }
}

/// P23: completing an access request walks both databases from the subject's address and
/// puts exactly their rows into the copy — by category, with the purposes each is used for —
/// and audits each system's read without a value.
#[test]
fn p23_an_access_request_reaches_the_providers_databases() {
    let (srv, officer, subject, email, _dbs) = attached("access");

    let id = open_verified(
        &srv,
        &officer,
        &subject,
        serde_json::json!({"kind": "access"}),
    );
    let done = srv.post(
        &format!("/v1/requests/{id}/complete"),
        &officer,
        serde_json::json!({"justification": "the subject's access request"}),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        done.body["request"]["outcome"]["systems"]["shop"]["rows"], 4,
        "{}",
        done.body
    );
    assert_eq!(
        done.body["request"]["outcome"]["systems"]["support"]["rows"],
        3
    );
    let systems = done.body["export"]["systems"].as_array().unwrap();
    assert_eq!(systems.len(), 2, "{}", done.body);
    let shop = &systems[0];
    assert_eq!(shop["system"], "shop");
    let tables: Vec<(&str, usize)> = shop["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["collection"].as_str().unwrap(),
                c["rows"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        tables,
        [("customers", 1), ("orders", 2), ("login_events", 1)]
    );
    // Only the fields holding PI, typed as declared; never another customer's.
    assert_eq!(
        shop["collections"][0]["rows"][0],
        serde_json::json!({"email": email, "full_name": "Wang Fang", "phone": "+86 135 0000 1111"})
    );
    let text = done.body.to_string();
    assert!(
        !text.contains("bo@example.com") && !text.contains("Road 2"),
        "{text}"
    );
    let email_row = shop["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "email")
        .unwrap();
    assert_eq!(email_row["values"], 1);
    assert!(
        email_row["purposes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "provide_service"),
        "{email_row}"
    );
    let support = &systems[1];
    let tickets = &support["collections"][0];
    assert_eq!(tickets["collection"], "tickets");
    let addresses: Vec<&str> = tickets["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["requester_email"].as_str().unwrap())
        .collect();
    assert_eq!(addresses.len(), 2, "{tickets}");
    assert!(addresses.contains(&"fang@other.example") && addresses.contains(&email.as_str()));
    assert_eq!(
        support["collections"][1]["rows"][0]["author_phone"],
        "+86 135 0000 1111"
    );
    // Each system's read is audited in the completion's unit: tables and counts, no value.
    let log = srv.audit_text();
    assert_eq!(log.matches("dataset.read").count(), 2, "{log}");
    assert!(
        log.contains("\"system\":\"support\"") && log.contains("\"tickets\":2"),
        "{log}"
    );
    for value in ["Street 1", "fang@other.example", "10.0.0.1"] {
        assert!(!log.contains(value), "{value} in the audit log");
    }
}

/// A database that cannot be reached fails the completion with `dataset_unavailable`,
/// naming no value; the request stays as it was and completes once the database is back.
#[test]
fn p23_an_unreachable_database_leaves_the_access_request_open() {
    let (srv, officer, subject, email, dbs) = provider("down");
    let mut connections = dbs.connections();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    connections.get_mut("support").unwrap().url =
        format!("mysql://root@127.0.0.1:{port}/{}", dbs.database);
    srv.vault.attach_datasets(dbs.fanout(connections)).unwrap();
    let id = open_verified(
        &srv,
        &officer,
        &subject,
        serde_json::json!({"kind": "access"}),
    );
    let done = srv.post(
        &format!("/v1/requests/{id}/complete"),
        &officer,
        serde_json::json!({"justification": "the subject's access request"}),
    );
    assert_eq!(done.status, 503, "{}", done.body);
    assert_eq!(
        done.body["error"]["code"], "dataset_unavailable",
        "{}",
        done.body
    );
    assert!(
        done.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("system `support`: MySQL cannot be reached"),
        "{}",
        done.body
    );
    assert!(!done.body.to_string().contains(&email), "{}", done.body);
    let r = srv.get(&format!("/v1/requests/{id}"), &officer);
    assert_eq!(r.body["state"], "verified", "{}", r.body);
    assert!(!srv.audit_text().contains("dataset.read"));
}

/// What is left in the two databases, as text: every customer, order, sign-in, ticket and
/// message, one line each.
fn left_in(dbs: &ProviderDbs) -> String {
    let pg = Command::new("psql")
        .args([
            &steward_store::test_url(),
            "-qAt",
            "-c",
            &format!(
                "SET search_path = {}; SELECT 'customer ' || id || ' ' || email || ' ' || coalesce(full_name, '-') || ' ' || coalesce(phone, '-') FROM customers
                 UNION ALL SELECT 'order ' || id || ' ' || coalesce(customer_id::text, '-') || ' ' || coalesce(shipping_address, '-') || ' ' || items FROM orders
                 UNION ALL SELECT 'login ' || id || ' ' || customer_id || ' ' || coalesce(ip, '-') FROM login_events ORDER BY 1",
                dbs.schema
            ),
        ])
        .output()
        .unwrap();
    let my = Command::new("mariadb")
        .args([
            "-h", "127.0.0.1", "-P", "3306", "-u", "root", "-N", "-B", &dbs.database, "-e",
            "SELECT CONCAT('ticket ', id, ' ', requester_email, ' ', COALESCE(customer_ref, '-')) FROM tickets
             UNION ALL SELECT CONCAT('message ', id, ' ', ticket_id, ' ', COALESCE(author_phone, '-')) FROM ticket_messages ORDER BY 1",
        ])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&pg.stdout),
        String::from_utf8_lossy(&my.stdout)
    );
    let mut lines: Vec<&str> = all.lines().collect();
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// A request of `subject`'s (`body`), verified and completed by the officer: its id, and
/// the completion's answer.
fn carried_out(
    srv: &crate::http::Server,
    officer: &str,
    subject: &str,
    body: serde_json::Value,
) -> (String, crate::http::Reply) {
    let id = open_verified(srv, officer, subject, body);
    let done = complete(srv, officer, &id);
    (id, done)
}

/// A deletion of `subject`'s, verified and completed by the officer: its id, and the
/// completion's answer, in progress while a system is still to do.
fn deletion_waiting(
    srv: &crate::http::Server,
    officer: &str,
    subject: &str,
) -> (String, crate::http::Reply) {
    let (id, waiting) = carried_out(
        srv,
        officer,
        subject,
        serde_json::json!({"kind": "deletion"}),
    );
    assert_eq!(
        waiting.body["request"]["state"], "in_progress",
        "{}",
        waiting.body
    );
    (id, waiting)
}

/// A privacy officer signed in to the console of `srv`.
fn officer_in_console(srv: &crate::http::Server) -> crate::centre::Visit {
    let password = "correct horse battery staple";
    srv.vault
        .create_staff("li.officer", "privacy_officer", password)
        .unwrap();
    let mut staff = crate::centre::Visit::new(srv.base.clone());
    let (_, _, page) = staff.get("/console");
    staff.post(
        "/console/session",
        &page,
        &[("username", "li.officer"), ("password", password)],
    );
    staff
}

/// [`provider`], the example datasets attached with the test's connections.
fn attached(tag: &str) -> (crate::http::Server, String, String, String, ProviderDbs) {
    let (srv, officer, subject, email, dbs) = provider(tag);
    srv.vault
        .attach_datasets(dbs.fanout(dbs.connections()))
        .unwrap();
    (srv, officer, subject, email, dbs)
}

/// A server with the kit's first subject (their address is the shop's customer 1), a privacy
/// officer's key, and the provider's two databases made for the test: the server, the key,
/// the subject, their address and the databases.
fn provider(tag: &str) -> (crate::http::Server, String, String, String, ProviderDbs) {
    let srv = crate::http::Server::start();
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let subject = srv.subject(&service);
    let email = crate::http::Server::email_of(0);
    let dbs = ProviderDbs::start(tag, &email);
    (srv, officer, subject, email, dbs)
}

/// Completes request `id` as the privacy officer, stating why.
fn complete(srv: &crate::http::Server, officer: &str, id: &str) -> crate::http::Reply {
    srv.post(
        &format!("/v1/requests/{id}/complete"),
        officer,
        serde_json::json!({"justification": "the subject asked"}),
    )
}

fn open_verified(
    srv: &crate::http::Server,
    officer: &str,
    subject: &str,
    body: serde_json::Value,
) -> String {
    let opened = srv.post(&format!("/v1/subjects/{subject}/requests"), officer, body);
    assert_eq!(opened.status, 201, "{}", opened.body);
    let id = opened.body["id"].as_str().unwrap().to_string();
    let verified = srv.post(
        &format!("/v1/requests/{id}/verify"),
        officer,
        serde_json::json!({"method": "documents"}),
    );
    assert_eq!(verified.status, 200, "{}", verified.body);
    id
}

/// P28: a deletion erases the subject in both databases — children before parents, orders
/// kept for tax with the customer cleared and the address overwritten — before Steward's own
/// erasure; no identifying value of theirs is left, no one else's row is touched, and every
/// step is audited without a value.
#[test]
fn p28_a_deletion_erases_the_subject_in_the_providers_databases() {
    let (srv, officer, subject, email, dbs) = attached("erase");
    let (_, done) = carried_out(
        &srv,
        &officer,
        &subject,
        serde_json::json!({"kind": "deletion"}),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["request"]["state"], "completed", "{}", done.body);
    let systems = &done.body["request"]["outcome"]["systems"];
    assert_eq!(
        systems["shop"],
        serde_json::json!({"deleted": {"customers": 1, "login_events": 1}, "masked": {"orders": 2}}),
        "{}",
        done.body
    );
    assert_eq!(
        systems["support"],
        serde_json::json!({"deleted": {"ticket_messages": 1, "tickets": 2}, "masked": {}})
    );
    // The certificate names each system and what was done there: counts, not values.
    use base64::Engine as _;
    let payload: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(done.body["certificate"]["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["systems"], *systems, "{payload}");
    let left = left_in(&dbs);
    assert_eq!(
        left,
        "customer 2 bo@example.com Bo -\nlogin 101 2 10.0.0.2\nmessage 80 8 -\n\
         order 10 - (erased) tea\norder 11 2 Road 2 cups\norder 12 - (erased) pot\n\
         ticket 8 bo@example.com 2\n",
        "what is left: Bo's rows as seeded, the subject's orders without them"
    );
    for value in [
        email.as_str(),
        "Wang Fang",
        "+86 135 0000 1111",
        "10.0.0.1",
        "Street 1",
        "fang@other.example",
    ] {
        assert!(!left.contains(value), "{value} is left");
    }
    let log = srv.audit_text();
    assert_eq!(log.matches("dataset.plan").count(), 1, "{log}");
    assert_eq!(log.matches("dataset.erase").count(), 2, "{log}");
    assert!(
        log.contains("subject.erase"),
        "Steward's own erasure follows"
    );
    for value in [email.as_str(), "Street 1", "10.0.0.1"] {
        assert!(!log.contains(value), "{value} in the audit log");
    }
}

/// A TCP relay to MariaDB that can be cut: while down it closes every connection at once,
/// as a database that went away would.
struct Relay {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn start(to: u16) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = up.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !flag.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                for (mut from, mut into) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = into.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, up }
    }
}

/// P28: a database that cannot be reached leaves the deletion in progress with the reason
/// shown; nothing is erased anywhere meanwhile (the plan needs every database); when it is
/// back and the retry is due, the worker erases both and completes the request.
#[test]
fn p28_an_unreachable_database_leaves_the_erasure_open_until_it_returns() {
    let (srv, officer, subject, email, dbs) = provider("retry");
    let relay = Relay::start(3306);
    let mut connections = dbs.connections();
    connections.get_mut("support").unwrap().url =
        format!("mysql://root@127.0.0.1:{}/{}", relay.port, dbs.database);
    srv.vault.attach_datasets(dbs.fanout(connections)).unwrap();
    let before = left_in(&dbs);
    let id = open_verified(
        &srv,
        &officer,
        &subject,
        serde_json::json!({"kind": "deletion"}),
    );
    let waiting = complete(&srv, &officer, &id);
    assert_eq!(waiting.status, 200, "{}", waiting.body);
    assert_eq!(
        waiting.body["request"]["state"], "in_progress",
        "{}",
        waiting.body
    );
    let r = srv.get(&format!("/v1/requests/{id}"), &officer);
    let systems = r.body["systems"].as_array().unwrap();
    assert_eq!(systems.len(), 2, "{}", r.body);
    for s in systems {
        assert_eq!(s["state"], "waiting", "{}", r.body);
        assert!(
            s["reason"]
                .as_str()
                .unwrap()
                .starts_with("system `support`: MySQL"),
            "{}",
            r.body
        );
    }
    assert_eq!(
        left_in(&dbs),
        before,
        "nothing erased while a database is away"
    );
    // The deadline board says what the request waits on.
    let board = srv.get("/v1/deadlines?within_days=60", &officer);
    let line = board
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{}", board.body));
    assert!(
        line["what"]
            .as_str()
            .unwrap()
            .contains("waiting on shop (system `support`: MySQL"),
        "{line}"
    );
    // The console's page of the request says the same, in the reader's language.
    let mut staff = officer_in_console(&srv);
    let (status, _, page) = staff.get(&format!("/console/requests/{id}"));
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("服务方的其他数据库")
            && page.contains("shop：等待中：尚未制定计划；上次尝试：system `support`: MySQL"),
        "{page}"
    );
    // Not yet due: nothing happens.
    assert_eq!(srv.vault.advance_datasets().unwrap(), 0);
    // Back, and due: erased in both, and the request completed by Steward.
    relay.up.store(true, std::sync::atomic::Ordering::SeqCst);
    srv.clock.advance(61_000);
    assert_eq!(srv.vault.advance_datasets().unwrap(), 1);
    let r = srv.get(&format!("/v1/requests/{id}"), &officer);
    assert_eq!(r.body["state"], "completed", "{}", r.body);
    assert_eq!(
        r.body["outcome"]["systems"]["support"]["deleted"]["tickets"], 2,
        "{}",
        r.body
    );
    assert!(
        r.body["systems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "done")
    );
    let left = left_in(&dbs);
    assert!(
        !left.contains(&email) && left.contains("bo@example.com"),
        "{left}"
    );
    // The retry, the erasures and the completion, each audited; the last two by Steward.
    let mut acts = Vec::new();
    srv.vault
        .store()
        .audit_scan(1, &mut |raw| {
            let e = steward_audit::Entry::decode(raw.bytes, [0; 32]).unwrap();
            if e.action.starts_with("dataset.") || e.action.starts_with("request.") {
                acts.push(format!("{} {} {}", e.action, e.actor, e.role));
            }
            true
        })
        .unwrap();
    let officer_id = acts[0].split(' ').nth(1).unwrap().to_string();
    assert_eq!(
        acts,
        [
            format!("request.open {officer_id} privacy_officer"),
            format!("request.verify {officer_id} privacy_officer"),
            format!("dataset.retry {officer_id} privacy_officer"),
            format!("request.start {officer_id} privacy_officer"),
            "dataset.plan system system".to_string(),
            "dataset.erase system system".to_string(),
            "dataset.erase system system".to_string(),
            "request.complete system system".to_string(),
        ]
    );
    assert_eq!(
        srv.vault.advance_datasets().unwrap(),
        0,
        "nothing more to do"
    );
}

/// P18: a category under a legal hold is kept in the provider's databases too: the orders'
/// addresses stay; the customer row, which holds no held category, goes.
#[test]
fn p18_a_held_category_is_kept_in_the_providers_databases() {
    let (srv, officer, subject, email, dbs) = attached("hold");
    let until = steward_core::clock::Clock::now_ms(&*srv.clock) + 10 * steward_core::DAY_MS;
    let hold = srv.post(
        &format!("/v1/subjects/{subject}/holds"),
        &officer,
        serde_json::json!({"reason": "dispute", "reference": "case 7", "until_ms": until, "categories": ["postal_address"]}),
    );
    assert_eq!(hold.status, 201, "{}", hold.body);
    let (_, done) = carried_out(
        &srv,
        &officer,
        &subject,
        serde_json::json!({"kind": "deletion"}),
    );
    assert_eq!(done.body["request"]["state"], "completed", "{}", done.body);
    let left = left_in(&dbs);
    assert!(
        left.contains("order 10 - Street 1 tea"),
        "the held address stays: {left}"
    );
    assert!(!left.contains(&email), "{left}");
}

/// P24: a correction reaches the fields a dataset marks correctable — found by the value
/// being corrected — and nothing else; audited without the value.
#[test]
fn p24_a_correction_reaches_the_correctable_fields_of_the_providers_databases() {
    let (srv, officer, subject, email, dbs) = attached("correct");
    let id = open_verified(
        &srv,
        &officer,
        &subject,
        serde_json::json!({"kind": "correction"}),
    );
    let done = srv.post(
        &format!("/v1/requests/{id}/complete"),
        &officer,
        serde_json::json!({"justification": "the subject asked", "corrections": [{"category": "email", "value": "fang.wang@example.cn"}]}),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        done.body["request"]["outcome"]["systems"],
        serde_json::json!({"shop": {"corrected": {"customers": 1}}}),
        "{}",
        done.body
    );
    let left = left_in(&dbs);
    assert!(
        left.contains("customer 1 fang.wang@example.cn Wang Fang"),
        "{left}"
    );
    // Not correctable there: the support desk keeps the address the ticket was sent from.
    assert!(left.contains(&format!("ticket 9 {email}")), "{left}");
    assert!(!srv.audit_text().contains("fang.wang@example.cn"));
    // Steward holds the corrected address too.
    let service = srv.key("service");
    let read = srv.post(
        &format!("/v1/subjects/{subject}/read"),
        &service,
        serde_json::json!({"categories": ["email"], "purpose": "provide_service"}),
    );
    assert_eq!(
        read.body["values"][0]["value"], "fang.wang@example.cn",
        "{}",
        read.body
    );
}

/// P28: `steward serve` killed with SIGKILL while a database is inside the erasure's
/// transaction loses nothing and repeats nothing wrongly: the database rolls the half-done
/// transaction back, and after a restart the server's worker carries the stored plan out and
/// completes the request; the subject is gone from both databases, the other customer's rows
/// are as they were, and the audit log verifies.
#[test]
fn p28_kill_9_during_an_erasure_in_the_providers_database_completes_after_a_restart() {
    let sink = crate::selfservice::SmtpSink::start();
    let email = "kill.nine@example.cn";
    let dbs = ProviderDbs::start("kill", email);
    // The shop's customer delete waits three seconds: the kill lands inside its transaction.
    psql(&format!(
        "SET search_path = {s};
         CREATE FUNCTION {s}.slow() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(3); RETURN OLD; END $$ LANGUAGE plpgsql;
         CREATE TRIGGER slow BEFORE DELETE ON {s}.customers FOR EACH ROW EXECUTE FUNCTION {s}.slow();",
        s = dbs.schema
    ));
    let [shop, support] = examples();
    let files = format!("{shop},{support}");
    let support_url = format!("mysql://root@127.0.0.1:3306/{}", dbs.database);
    let shop_url = steward_store::test_url();
    let d = crate::outbox::Deployment::new(
        &sink,
        &[
            ("STEWARD_DATASET_FILES", files.as_str()),
            ("STEWARD_DATASET_SHOP_URL", shop_url.as_str()),
            ("STEWARD_DATASET_SHOP_SCHEMA", dbs.schema.as_str()),
            ("STEWARD_DATASET_SUPPORT_URL", support_url.as_str()),
        ],
    );
    let (service, officer) = d.keys();
    let mut server = d.start();
    let (status, made) = d.post(&service, "/v1/subjects", serde_json::json!({}));
    assert_eq!(status, 201, "{made}");
    let subject = made["subject"].as_str().unwrap().to_string();
    let (status, _) = d.post(
        &service,
        &format!("/v1/subjects/{subject}/collect"),
        serde_json::json!({"feature": "account", "values": [{"category": "name", "value": "Kill Nine"}, {"category": "email", "value": email}], "source": {"kind": "subject"}}),
    );
    assert_eq!(status, 201);
    let (_, opened) = d.post(
        &officer,
        &format!("/v1/subjects/{subject}/requests"),
        serde_json::json!({"kind": "deletion"}),
    );
    let id = opened["id"].as_str().unwrap().to_string();
    let (status, _) = d.post(
        &officer,
        &format!("/v1/requests/{id}/verify"),
        serde_json::json!({"method": "documents"}),
    );
    assert_eq!(status, 200);
    let before = left_in(&dbs);
    let completing = {
        let (port, officer, id) = (d.port, officer.clone(), id.clone());
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let _ = agent
                .post(&format!(
                    "http://127.0.0.1:{port}/v1/requests/{id}/complete"
                ))
                .header("Authorization", &format!("Bearer {officer}"))
                .send_json(serde_json::json!({"justification": "the subject asked"}));
        })
    };
    // Inside the shop's transaction (its customer delete sleeping): kill.
    crate::kit::wait_for(
        "the erasure did not reach the shop's customer delete",
        std::time::Duration::from_secs(20),
        || {
            let out = Command::new("psql")
                .args([
                    &steward_store::test_url(),
                    "-qAt",
                    "-c",
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'DELETE FROM%customers%' AND state = 'active'",
                ])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim() == "1"
        },
    );
    let _ = server.kill(); // SIGKILL
    let _ = server.wait();
    let _ = completing.join();
    // The database rolls the half-done transaction back once the client is gone.
    crate::kit::wait_for(
        "the shop's transaction was not rolled back",
        std::time::Duration::from_secs(20),
        || left_in(&dbs) == before,
    );
    psql(&format!("DROP TRIGGER slow ON {}.customers", dbs.schema));
    // Restarted: the worker takes the stored plan up and completes the request.
    let mut server = d.start();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let state = || -> serde_json::Value {
        agent
            .get(&format!("http://127.0.0.1:{}/v1/requests/{id}", d.port))
            .header("Authorization", &format!("Bearer {officer}"))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    };
    crate::kit::wait_for(
        "the request was not completed after the restart",
        std::time::Duration::from_secs(30),
        || state()["state"] == "completed",
    );
    let done = state();
    assert_eq!(
        done["outcome"]["systems"]["shop"]["deleted"],
        serde_json::json!({"customers": 1, "login_events": 1}),
        "{done}"
    );
    let _ = server.kill();
    let _ = server.wait();
    let left = left_in(&dbs);
    assert!(
        !left.contains(email) && !left.contains("Street 1"),
        "{left}"
    );
    assert!(
        left.contains("customer 2 bo@example.com Bo -")
            && left.contains("ticket 8 bo@example.com 2"),
        "{left}"
    );
    // Nothing is left for the command line's pass to do.
    assert_eq!(d.cli(&["datasets", "advance"]), "0 requests completed");
    let verified = d.cli(&["audit", "verify"]);
    assert!(
        verified.contains("OK") || verified.contains("verified"),
        "{verified}"
    );
}

/// P28: a cancelled account's erasure at the end of its grace period reaches the provider's
/// databases first, and its certificate says what was done there.
#[test]
fn p28_a_cancelled_account_is_erased_in_the_providers_databases_after_its_grace_period() {
    let (srv, officer, subject, email, dbs) = attached("grace");
    let (_, done) = carried_out(
        &srv,
        &officer,
        &subject,
        serde_json::json!({"kind": "account_cancellation"}),
    );
    assert_eq!(done.body["request"]["state"], "completed", "{}", done.body);
    // Closed, not yet erased: the databases keep the rows through the grace period.
    assert!(left_in(&dbs).contains(&email));
    srv.clock.advance(31 * steward_core::DAY_MS);
    let swept = srv.post("/v1/retention/sweep", &officer, serde_json::json!({}));
    assert_eq!(swept.status, 200, "{}", swept.body);
    assert_eq!(swept.body["subjects_erased"], 1, "{}", swept.body);
    let left = left_in(&dbs);
    assert!(
        !left.contains(&email) && left.contains("bo@example.com"),
        "{left}"
    );
    let log = srv.audit_text();
    assert!(
        log.contains("dataset.plan") && log.contains("dataset.erase"),
        "{log}"
    );
}

/// P28: an erasure asked of the API directly reaches the databases first and at once; with a
/// database away it fails with `dataset_unavailable` and erases nothing of Steward's, and made
/// again once it is back it completes.
#[test]
fn p28_an_erasure_through_the_api_reaches_the_providers_databases() {
    let (srv, officer, subject, email, dbs) = provider("api");
    let relay = Relay::start(3306);
    let mut connections = dbs.connections();
    connections.get_mut("support").unwrap().url =
        format!("mysql://root@127.0.0.1:{}/{}", relay.port, dbs.database);
    srv.vault.attach_datasets(dbs.fanout(connections)).unwrap();
    let erase = || {
        srv.post(
            &format!("/v1/subjects/{subject}/erasure"),
            &officer,
            serde_json::json!({"reason": "asked by phone"}),
        )
    };
    let away = erase();
    assert_eq!(away.status, 503, "{}", away.body);
    assert_eq!(away.body["error"]["code"], "dataset_unavailable");
    let service = srv.key("service");
    let read = srv.post(
        &format!("/v1/subjects/{subject}/read"),
        &service,
        serde_json::json!({"categories": ["email"], "purpose": "provide_service"}),
    );
    assert_eq!(read.status, 200, "Steward's copy is kept: {}", read.body);
    relay.up.store(true, std::sync::atomic::Ordering::SeqCst);
    let done = erase();
    assert_eq!(done.status, 201, "{}", done.body);
    use base64::Engine as _;
    let payload: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(done.body["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        payload["systems"]["support"]["deleted"]["tickets"], 2,
        "{payload}"
    );
    let left = left_in(&dbs);
    assert!(
        !left.contains(&email) && left.contains("bo@example.com"),
        "{left}"
    );
}

/// `body` signed as Standard Webhooks says by the independent implementation
/// (`tools/sign-webhook.py`, PyPI `standardwebhooks`) with `secret`, and POSTed as an external
/// system answers: `POST /v1/datasets/{system}/answers`, no API key.
fn answer_as(
    srv: &crate::http::Server,
    system: &str,
    secret: &str,
    body: &serde_json::Value,
) -> crate::http::Reply {
    use std::io::Write as _;
    let text = body.to_string();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/sign-webhook.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args([secret, "msg_answer_1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs tools/sign-webhook.py (pip install standardwebhooks)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let mut lines = printed.lines();
    let (timestamp, signature) = (lines.next().unwrap(), lines.next().unwrap());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(&format!("{}/v1/datasets/{system}/answers", srv.base))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_answer_1")
        .header("webhook-timestamp", timestamp)
        .header("webhook-signature", signature)
        .send(text.as_bytes())
        .unwrap();
    let status = r.status().as_u16();
    let body = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    crate::http::Reply { status, body }
}

/// P23, P28: one dataset spanning PostgreSQL and MariaDB plus an external CRM. The CRM is
/// asked by a webhook through the outbox that the independent implementation verifies, with
/// the subject's address in it (the stored message holds none); it answers on the signed
/// callback — signed by the independent implementation — and the access request's export
/// holds its rows beside both databases', the deletion completes with its counts in the
/// certificate. A call not signed by the endpoint's secret is refused; nothing of the
/// subject's is left in either database or in the log.
#[test]
fn p23_p28_an_external_system_is_asked_by_signed_webhook_and_answers_on_a_signed_callback() {
    let (srv, officer, subject, email, dbs) = provider("external");
    // The independent verifier checks each call's timestamp against the real time.
    srv.to_real_time();
    let port = crate::outbox::free_port();
    let made = srv.post(
        "/v1/webhooks",
        &officer,
        serde_json::json!({"url": format!("http://127.0.0.1:{port}/hooks"), "events": ["dataset.request"]}),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let secret = made.body["secret"].as_str().unwrap().to_string();
    let endpoint = made.body["endpoint"]["id"].as_str().unwrap().to_string();
    let receiver = crate::outbox::Receiver::start(port, &secret, 0);
    let mut connections = dbs.connections();
    connections.insert(
        "crm".into(),
        steward_datasets::live::Connection {
            url: format!("webhook:{endpoint}"),
            schema: None,
        },
    );
    let mut files: Vec<(String, String)> = examples()
        .iter()
        .map(|p| (p.clone(), std::fs::read_to_string(p).unwrap()))
        .collect();
    let crm = format!("{}/examples/datasets/crm.yml", env!("CARGO_MANIFEST_DIR"));
    files.push((crm.clone(), std::fs::read_to_string(&crm).unwrap()));
    let (catalogue, problems) =
        steward_datasets::load(&files, &steward_policy::Policy::example().unwrap());
    assert!(problems.is_empty(), "{problems:?}");
    srv.vault
        .attach_datasets(std::sync::Arc::new(
            steward_datasets::run::Fanout::new(catalogue, connections).unwrap(),
        ))
        .unwrap();
    let dispatcher = srv.dispatcher(crate::outbox::free_port());

    // Access: the CRM is asked when the request is verified.
    let access = open_verified(
        &srv,
        &officer,
        &subject,
        serde_json::json!({"kind": "access"}),
    );
    assert_eq!(dispatcher.run_once().unwrap().delivered, 1);
    let calls = receiver.calls(1);
    assert_eq!(calls[0]["verified"], true, "{}", calls[0]);
    assert_eq!(calls[0]["type"], "dataset.request");
    let sent: serde_json::Value = serde_json::from_str(calls[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent["data"]["identities"]["email"],
        serde_json::json!([email])
    );
    assert_eq!(sent["data"]["action"], "access");
    assert_eq!(sent["data"]["request"], access.as_str());
    let stored = srv.get("/v1/outbox", &officer);
    assert!(!stored.body.to_string().contains(&email), "{}", stored.body);
    // Its completion waits for the answer.
    let waiting = complete(&srv, &officer, &access);
    assert_eq!(waiting.status, 200, "{}", waiting.body);
    assert_eq!(waiting.body["request"]["state"], "in_progress");
    assert_eq!(waiting.body["request"]["systems"][0]["system"], "crm");
    assert_eq!(waiting.body["request"]["systems"][0]["state"], "asked");
    let rows = serde_json::json!({
        "request": access,
        "status": "done",
        "collections": [{"collection": "contacts", "rows": [{"email": email, "segment": "tea lovers"}]}],
        "categories": {"email": 1},
    });
    // Signed with another secret: refused.
    let forged = answer_as(&srv, "crm", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &rows);
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert_eq!(forged.body["error"]["code"], "unauthenticated");
    assert!(
        forged.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("webhook secret"),
        "{}",
        forged.body
    );
    let unknown = answer_as(&srv, "billing", &secret, &rows);
    assert_eq!(unknown.body["error"]["code"], "system_not_found");
    let answered = answer_as(&srv, "crm", &secret, &rows);
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert_eq!(answered.body["state"], "done");
    let done = complete(&srv, &officer, &access);
    assert_eq!(done.body["request"]["state"], "completed", "{}", done.body);
    let systems = done.body["export"]["systems"].as_array().unwrap();
    let names: Vec<&str> = systems
        .iter()
        .map(|s| s["system"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shop", "support", "crm"]);
    assert_eq!(
        systems[2]["collections"][0]["rows"][0]["segment"],
        "tea lovers"
    );

    // Deletion: both databases at once, then the CRM's answer completes it.
    let (deletion, waiting) = deletion_waiting(&srv, &officer, &subject);
    let states: Vec<(String, String)> = waiting.body["request"]["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["system"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        states.contains(&("crm".into(), "asked".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&("shop".into(), "done".into())),
        "{states:?}"
    );
    // The deadline board escalates the answer still to come, and the console says so.
    let board = srv.get("/v1/deadlines", &officer);
    assert!(
        board
            .body
            .to_string()
            .contains("crm answers deletion request"),
        "{}",
        board.body
    );
    let mut staff = officer_in_console(&srv);
    let (_, _, page) = staff.get(&format!("/console/requests/{deletion}"));
    assert!(
        page.contains("crm：已通过 Webhook 询问，等待答复；已询问 1 次"),
        "{page}"
    );
    assert_eq!(dispatcher.run_once().unwrap().delivered, 1);
    let calls = receiver.calls(2);
    assert_eq!(calls[1]["verified"], true, "{}", calls[1]);
    let sent: serde_json::Value = serde_json::from_str(calls[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["data"]["action"], "erasure");
    assert_eq!(
        sent["data"]["identities"]["email"],
        serde_json::json!([email])
    );
    let answered = answer_as(
        &srv,
        "crm",
        &secret,
        &serde_json::json!({"request": deletion, "status": "done", "deleted": {"contacts": 1}}),
    );
    assert_eq!(answered.status, 200, "{}", answered.body);
    let after = srv.get(&format!("/v1/requests/{deletion}"), &officer);
    assert_eq!(after.body["state"], "completed", "{}", after.body);
    assert_eq!(
        after.body["outcome"]["systems"]["crm"],
        serde_json::json!({"deleted": {"contacts": 1}, "masked": {}})
    );
    let left = left_in(&dbs);
    for value in [email.as_str(), "Wang Fang", "+86 135 0000 1111", "10.0.0.1"] {
        assert!(!left.contains(value), "{value} is left");
    }
    let log = srv.audit_text();
    assert_eq!(log.matches("dataset.ask").count(), 2, "{log}");
    assert_eq!(log.matches("dataset.answer").count(), 2, "{log}");
    assert!(
        log.contains("\"channel\":\"webhook\""),
        "the disclosure to the CRM is logged"
    );
    for value in [email.as_str(), "tea lovers"] {
        assert!(!log.contains(value), "{value} in the audit log");
    }
}

/// The operator's way to an external system, as `docs/datasets.md` gives it: with the CRM's
/// file in the settings but no endpoint yet, Steward does not start (nor any command that opens
/// the datasets), but `steward webhook add` registers the endpoint; named in the settings, the
/// store opens and `steward datasets check` names it.
#[test]
fn p28_an_external_systems_endpoint_is_registered_then_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let crm = format!("{}/examples/datasets/crm.yml", env!("CARGO_MANIFEST_DIR"));
    steward(&["migrate", "--data-dir", data]).ok();
    let files = [("STEWARD_DATASET_FILES", crm.as_str())];
    let refused = steward_env(&["deadlines", "--data-dir", data], &files);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("`crm` names no webhook endpoint"),
        "{}",
        refused.stderr
    );
    let added = steward_env(
        &[
            "webhook",
            "add",
            "--data-dir",
            data,
            "--event",
            "dataset.request",
            "https://crm.example.com/steward",
        ],
        &files,
    )
    .ok();
    let text = format!("{}{}", added.stdout, added.stderr);
    let id = text
        .split('`')
        .find(|w| w.starts_with("whe_"))
        .expect("the endpoint's id is printed")
        .to_string();
    let url = format!("webhook:{id}");
    let named = [
        ("STEWARD_DATASET_FILES", crm.as_str()),
        ("STEWARD_DATASET_CRM_URL", url.as_str()),
    ];
    steward_env(&["deadlines", "--data-dir", data], &named).ok();
    let checked = steward_env(&["datasets", "check"], &named).ok();
    assert!(
        checked.stdout.contains(&format!(
            "crm: external, asked by webhook through endpoint {id}"
        )),
        "{}",
        checked.stdout
    );
}

/// P28 over HTTP: an external system's answer that came by email is recorded by the privacy
/// officer on `POST /v1/requests/{request}/answers`, completing the deletion (a service key is
/// refused), and in the console, where a request waiting on the system offers the form.
#[test]
fn p28_staff_record_an_external_systems_answer_over_http() {
    let srv = crate::http::Server::start();
    let service = srv.key("service");
    let officer = srv.key("privacy_officer");
    let subject = srv.subject(&service);
    let made = srv.post(
        "/v1/webhooks",
        &officer,
        serde_json::json!({"url": "https://crm.example.com/steward", "events": ["dataset.request"]}),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let crm = format!("{}/examples/datasets/crm.yml", env!("CARGO_MANIFEST_DIR"));
    let (catalogue, problems) = steward_datasets::load(
        &[(crm.clone(), std::fs::read_to_string(&crm).unwrap())],
        &steward_policy::Policy::example().unwrap(),
    );
    assert!(problems.is_empty(), "{problems:?}");
    let connection = steward_datasets::live::Connection {
        url: format!("webhook:{}", made.body["endpoint"]["id"].as_str().unwrap()),
        schema: None,
    };
    srv.vault
        .attach_datasets(std::sync::Arc::new(
            steward_datasets::run::Fanout::new(catalogue, [("crm".to_string(), connection)].into())
                .unwrap(),
        ))
        .unwrap();
    let (id, _) = deletion_waiting(&srv, &officer, &subject);
    let body = serde_json::json!({"system": "crm", "status": "done", "deleted": {"contacts": 1}});
    let refused = srv.post(
        &format!("/v1/requests/{id}/answers"),
        &service,
        body.clone(),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    let recorded = srv.post(&format!("/v1/requests/{id}/answers"), &officer, body);
    assert_eq!(recorded.status, 200, "{}", recorded.body);
    assert_eq!(recorded.body["state"], "done");
    let after = srv.get(&format!("/v1/requests/{id}"), &officer);
    assert_eq!(after.body["state"], "completed", "{}", after.body);
    assert_eq!(
        after.body["outcome"]["systems"]["crm"]["deleted"]["contacts"],
        1
    );
    // The console: another subject's deletion waits on the CRM; the officer records that it
    // failed, with its code, and the deletion completes without it.
    let other = srv.subject(&service);
    let id = open_verified(
        &srv,
        &officer,
        &other,
        serde_json::json!({"kind": "deletion"}),
    );
    complete(&srv, &officer, &id);
    let mut staff = officer_in_console(&srv);
    let (status, _, page) = staff.get(&format!("/console/requests/{id}"));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("登记外部系统的答复"), "{page}");
    let (status, _, page) = staff.post(
        &format!("/console/requests/{id}/answer"),
        &page,
        &[
            ("system", "crm"),
            ("status", "failed"),
            ("failure", "legal_hold"),
        ],
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        !page.contains("登记外部系统的答复"),
        "the form is gone: {page}"
    );
    let after = srv.get(&format!("/v1/requests/{id}"), &officer);
    assert_eq!(after.body["state"], "completed", "{}", after.body);
    assert_eq!(
        after.body["outcome"]["systems"]["crm"]["failed"],
        "answered: legal_hold"
    );
}
