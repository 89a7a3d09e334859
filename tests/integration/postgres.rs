//! PostgreSQL failures, on a PostgreSQL server of the test's own (initdb in a temporary
//! directory, on a free loopback port), so stopping it disturbs no other test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::http::{Server, TestBackend};
use steward_core::Vault;

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A private PostgreSQL cluster; stopped and deleted when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

/// Runs a PostgreSQL tool as the `postgres` user when we are root (initdb refuses root).
fn pg_tool(tool: &str, args: &[&str]) -> std::process::Output {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let path = format!("{BIN}/{tool}");
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(&path)
    };
    cmd.args(args).output().expect("PostgreSQL 15's tools run")
}

impl Cluster {
    fn start() -> Cluster {
        Cluster::start_with(|_| {})
    }

    /// A cluster whose data directory `configure` may change between initdb and start (it
    /// runs as root; the files are handed to `postgres` after).
    fn start_with(configure: impl FnOnce(&Path)) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let data: PathBuf = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        // The server runs as `postgres`, so it must own its directories.
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres", crate::kit::s(dir.path())])
            .status();
        let out = pg_tool(
            "initdb",
            &[
                "-D",
                crate::kit::s(&data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb: {out:?}");
        configure(&data);
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres", crate::kit::s(&data)])
            .status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster { dir, port };
        cluster.pg_ctl_start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.path().display()
        );
        let out = pg_tool(
            "pg_ctl",
            &[
                "-D",
                crate::kit::s(&self.data()),
                "-o",
                &options,
                "-l",
                crate::kit::s(&self.dir.path().join("log")),
                "-w",
                "start",
            ],
        );
        assert!(out.status.success(), "pg_ctl start: {out:?}");
    }

    /// Stops the server the hard way: no checkpoint, recovery from the WAL on next start
    /// (what a crash or a kill -9 of the database leaves).
    fn crash(&self) {
        let out = pg_tool(
            "pg_ctl",
            &[
                "-D",
                crate::kit::s(&self.data()),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        assert!(out.status.success(), "pg_ctl stop: {out:?}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = pg_tool(
            "pg_ctl",
            &["-D", crate::kit::s(&self.data()), "-m", "immediate", "stop"],
        );
    }
}

fn exists(p: &Path) -> bool {
    p.exists()
}

enum Event {
    /// A purpose-checked read answered.
    Read,
    Acknowledged {
        subject: String,
        audit_seq: u64,
    },
    Refused {
        status: u16,
        code: String,
        /// A read, not a write.
        read: bool,
    },
}

/// P34/P35: PostgreSQL crashes under load and comes back. While it is down requests fail fast
/// with 503 `storage_unavailable`; the service recovers without a restart; every write it
/// acknowledged is there afterwards, and the audit chain verifies.
#[test]
fn p35_postgres_crash_under_load_fails_fast_recovers_and_keeps_acknowledged_writes() {
    if !exists(Path::new(BIN)) {
        panic!("PostgreSQL 15's server binaries are not in {BIN}");
    }
    let cluster = Cluster::start();
    let srv = Server::start_on(TestBackend::postgres_at(&cluster.url()), None);
    let key = srv.key("service");
    let subjects: Vec<String> = (0..4).map(|_| srv.subject(&key)).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let (events, received) = mpsc::channel::<Event>();
    std::thread::scope(|scope| {
        for subject in &subjects {
            let (stop, events, srv, key) = (Arc::clone(&stop), events.clone(), &srv, &key);
            scope.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    // Reads and writes alike: both must fail the same way while it is down.
                    let event = if i.is_multiple_of(3) {
                        let r = srv.post(
                            &format!("/v1/subjects/{subject}/read"),
                            key,
                            serde_json::json!({"categories": ["email"], "purpose": "provide_service"}),
                        );
                        match r.status {
                            200 => Event::Read,
                            status => Event::Refused {
                                status,
                                code: r.body["error"]["code"].as_str().unwrap_or("").to_string(),
                                read: true,
                            },
                        }
                    } else {
                        match srv.consent_write(subject, key, i.is_multiple_of(2)) {
                            Ok(audit_seq) => Event::Acknowledged {
                                subject: subject.clone(),
                                audit_seq,
                            },
                            Err((status, code)) => Event::Refused {
                                status,
                                code,
                                read: false,
                            },
                        }
                    };
                    if events.send(event).is_err() {
                        return;
                    }
                }
            });
        }
        drop(events);

        let mut acknowledged: Vec<(String, u64)> = Vec::new();
        let mut refused: Vec<(u16, String, bool)> = Vec::new();
        let mut reads = 0;
        let mut take = |e: Event, acknowledged: &mut Vec<(String, u64)>| match e {
            Event::Read => {
                reads += 1;
                None
            }
            Event::Acknowledged { subject, audit_seq } => {
                acknowledged.push((subject, audit_seq));
                Some(true)
            }
            Event::Refused { status, code, read } => {
                refused.push((status, code, read));
                Some(false)
            }
        };
        // Load first; then crash the database while requests are in flight.
        while acknowledged.len() < 100 {
            let e = received.recv().unwrap();
            take(e, &mut acknowledged);
        }
        cluster.crash();
        let crashed_at = acknowledged.len();
        // While it is down: refusals with the stable code. Each answers after at most the
        // 3 s connect timeout; a request that hung instead would stall this loop until the
        // generous bound on each wait.
        let next = || {
            received
                .recv_timeout(Duration::from_secs(60))
                .expect("no answer within a minute: requests hang instead of failing")
        };
        let mut refusals_while_down = 0;
        while refusals_while_down < 20 {
            let e = next();
            if take(e, &mut acknowledged) == Some(false) {
                refusals_while_down += 1;
            }
        }
        cluster.pg_ctl_start();
        // Back: the same server answers again, without a restart.
        let back_by = Instant::now() + Duration::from_secs(60);
        let mut after = 0;
        while after < 50 {
            assert!(Instant::now() < back_by, "the service did not recover");
            let e = next();
            if take(e, &mut acknowledged) == Some(true) {
                after += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        for e in received.iter() {
            take(e, &mut acknowledged);
        }

        assert!(acknowledged.len() >= crashed_at + 50);
        assert!(refused.len() >= 20);
        assert!(reads > 0, "no read was answered");
        // Reads fail as writes do (P35): the store's outage, not a generic storage failure.
        assert!(
            refused.iter().any(|(_, _, read)| *read),
            "no read met the outage"
        );
        for (status, code, read) in &refused {
            assert_eq!(
                (*status, code.as_str()),
                (503, "storage_unavailable"),
                "a {} refused",
                if *read { "read" } else { "write" }
            );
        }
        // Every acknowledged consent is in the store, at the audit entry its receipt names,
        // and the chain verifies.
        srv.assert_consents_kept(&acknowledged);
    });
}

/// P20: the keyring can live under credentials of its own. Two PostgreSQL roles: one owns the
/// data schema, the other the keyring schema; the vault works with each connection string,
/// and the data role cannot read a single key.
#[test]
fn p20_keyring_under_its_own_credentials_is_out_of_the_data_roles_reach() {
    let admin_url = steward_store::test_url();
    let admin = |sql: &str| {
        let out = Command::new("psql")
            .args([admin_url.as_str(), "-v", "ON_ERROR_STOP=1", "-qc", sql])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "{sql}: {out:?}");
    };
    let base = steward_core::PgTarget::unique(&admin_url, "roles")
        .unwrap()
        .schema;
    let (data_role, keys_role) = (format!("{base}_data"), format!("{base}_keys"));
    let database = admin_url.rsplit('/').next().unwrap().to_string();
    for role in [&data_role, &keys_role] {
        admin(&format!("CREATE ROLE {role} LOGIN"));
        admin(&format!("GRANT CREATE ON DATABASE {database} TO {role}"));
    }
    let as_role = |role: &str| admin_url.replacen("postgres@", &format!("{role}@"), 1);
    let data = steward_core::PgTarget::new(&as_role(&data_role), &format!("{base}_d")).unwrap();
    let keyring = steward_core::PgTarget::new(&as_role(&keys_role), &format!("{base}_k")).unwrap();
    let backend = steward_core::Backend::Postgres {
        data: data.clone(),
        keyring: keyring.clone(),
    };
    let outcome = std::panic::catch_unwind(|| {
        let vault = Vault::open_backend(
            &backend,
            steward_policy::Policy::example().unwrap(),
            &steward_crypto::MasterKey::from_hex(&"3c".repeat(32)).unwrap(),
            Arc::new(steward_core::clock::SystemClock),
            None,
        )
        .unwrap();
        let app = steward_core::Actor {
            id: "test".into(),
            role: vault.policy().role_id("service").unwrap(),
        };
        let s = vault.register(&app).unwrap();
        vault
            .collect(
                &app,
                &steward_core::Collect {
                    subject: s,
                    feature: "account",
                    values: &[("name", "Role Test"), ("email", "role.test@example.cn")],
                    source: steward_core::Source::Subject,
                },
            )
            .unwrap();
        // The data role reaches no key.
        let out = Command::new("psql")
            .args([
                as_role(&data_role).as_str(),
                "-qc",
                &format!("SELECT count(*) FROM {}.data_keys", keyring.schema),
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "the data role read the keyring");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("permission denied"),
            "{out:?}"
        );
    });
    let _ = data.drop_schema();
    let _ = keyring.drop_schema();
    for role in [&data_role, &keys_role] {
        admin(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Makes a CA (`<name>-ca.pem`) and, signed by it, a server certificate for `localhost` only
/// (`<name>-server.pem`, `<name>-server.key`), with the `openssl` command.
fn certificates(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let p = |f: &str| dir.join(format!("{name}-{f}"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let (ca_key, ca, key, csr, cert, ext) = (
        p("ca.key"),
        p("ca.pem"),
        p("server.key"),
        p("server.csr"),
        p("server.pem"),
        p("ext.cnf"),
    );
    let s = crate::kit::s;
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={name} test CA"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        s(&ca_key),
        "-out",
        s(&ca),
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        s(&key),
        "-out",
        s(&csr),
    ]);
    std::fs::write(&ext, "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&ca),
        "-CAkey",
        s(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        s(&ext),
        "-out",
        s(&cert),
    ]);
    (ca, cert, key)
}

/// P20: PostgreSQL over TLS. On a cluster of the test's own that serves TLS with a certificate
/// the test made (for `localhost` only) and refuses plaintext TCP: `sslmode=verify-full` with
/// the right CA connects (and `pg_stat_ssl` shows the session encrypted), with another CA or
/// another host name it is refused; `verify-ca` checks the chain, not the name; `require`
/// encrypts without checking; `disable` is refused by the server. (The old code connected
/// with `NoTls` and could not reach this server at all.)
#[test]
fn p20_postgres_over_tls_verifies_as_sslmode_says() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(certs.path(), "right");
    let (other_ca, _, _) = certificates(certs.path(), "other");
    let cluster = Cluster::start_with(|data| {
        std::fs::copy(&cert, data.join("server.crt")).unwrap();
        std::fs::copy(&key, data.join("server.key")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
    });
    let port = cluster.port;
    let s = crate::kit::s;
    let by_name = |query: &str| {
        format!("postgres://postgres@localhost:{port}/postgres?hostaddr=127.0.0.1&{query}")
    };
    let by_address = |query: &str| format!("postgres://postgres@127.0.0.1:{port}/postgres?{query}");
    let try_open = |url: &str| {
        let target = steward_core::PgTarget::unique(url, "tls").unwrap();
        steward_store::PgStore::open(&target).map(|store| (store, target))
    };
    let encrypted_sessions = || {
        let out = Command::new("psql")
            .args(["-h", s(cluster.dir.path()), "-p", &port.to_string(), "-U", "postgres", "-d", "postgres", "-Atc",
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'steward' AND s.ssl"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .unwrap()
    };

    let verify_full = by_name(&format!("sslmode=verify-full&sslrootcert={}", s(&ca)));
    let (store, target) = try_open(&verify_full).unwrap_or_else(|e| panic!("verify-full: {e}"));
    use steward_store::Store as _;
    assert_eq!(store.audit_head().unwrap().0, 0);
    assert!(encrypted_sessions() >= 1);
    drop(store);
    let _ = target.drop_schema();

    for (what, url) in [
        (
            "another CA",
            by_name(&format!("sslmode=verify-full&sslrootcert={}", s(&other_ca))),
        ),
        (
            "another host name",
            by_address(&format!("sslmode=verify-full&sslrootcert={}", s(&ca))),
        ),
        ("plaintext", by_address("sslmode=disable")),
    ] {
        let e = try_open(&url)
            .err()
            .unwrap_or_else(|| panic!("{what}: connected"));
        if what == "plaintext" {
            assert!(e.to_string().contains("no encryption"), "{what}: {e}");
        } else {
            assert!(e.to_string().contains("certificate"), "{what}: {e}");
        }
    }
    for (what, url) in [
        (
            "verify-ca by address",
            by_address(&format!("sslmode=verify-ca&sslrootcert={}", s(&ca))),
        ),
        ("require", by_address("sslmode=require")),
        ("the default (prefer)", by_address("")),
    ] {
        let (store, target) = try_open(&url).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(store.audit_head().unwrap().0, 0, "{what}");
        drop(store);
        let _ = target.drop_schema();
    }
    // A mode the driver does not know is named, not ignored.
    let e = try_open(&by_address("sslmode=verify-everything"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("sslmode must be"), "{e}");
}
