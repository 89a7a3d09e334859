//! `steward serve` as an operator runs it: the binary, configured by environment, over TLS,
//! stopped by SIGTERM.

use std::process::{Command, Stdio};

use crate::kit::s;

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn wait_listening(port: u16) {
    crate::kit::wait_for(
        "steward serve did not start",
        std::time::Duration::from_secs(30),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
}

#[test]
fn p35_serve_over_tls_answers_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .args(["-keyout", s(&key), "-out", s(&cert)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "openssl could not make a test certificate");
    let port = free_port();
    // On the PostgreSQL run the binary is pointed at schemas of its own, by environment.
    let backend = crate::http::TestBackend::new();
    let mut database = Vec::new();
    if let steward_core::Backend::Postgres { data, keyring } = &backend.backend {
        // A PostgreSQL store's master key is given, never created in the data directory.
        database = vec![
            ("STEWARD_DATABASE", data.url.clone()),
            ("STEWARD_DATABASE_SCHEMA", data.schema.clone()),
            ("STEWARD_KEYRING_SCHEMA", keyring.schema.clone()),
            ("STEWARD_MASTER_KEY", "3c".repeat(32)),
        ];
    }
    let mut server = Command::new(env!("CARGO_BIN_EXE_steward"))
        .arg("serve")
        .env_remove("STEWARD_MASTER_KEY")
        .envs(database)
        .env("STEWARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("STEWARD_DATA_DIR", dir.path().join("data"))
        .env("STEWARD_TLS_CERT", &cert)
        .env("STEWARD_TLS_KEY", &key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_listening(port);
    let curl = |scheme: &str| {
        Command::new("curl")
            .args(["-s", "--max-time", "10", "--cacert", s(&cert)])
            .arg(format!("{scheme}://127.0.0.1:{port}/health/ready"))
            .output()
            .unwrap()
    };
    let out = curl("https");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"status\":\"ready\"}",
        "{out:?}"
    );
    // Plain HTTP to a TLS port gets no answer.
    assert!(!String::from_utf8_lossy(&curl("http").stdout).contains("ready"));

    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.wait().unwrap();
    assert!(
        status.success(),
        "steward serve did not stop cleanly: {status:?}"
    );
    let mut log = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut log).unwrap();
    assert!(log.contains("serving on https://127.0.0.1"), "{log}");
    // A service logs by default, by route template: no subject id, no value.
    assert!(log.contains("route=\"/health/ready\""), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn p34_serve_refuses_an_unknown_setting() {
    let r = crate::kit::steward_env(&["serve"], &[("STEWARD_LISTN", "127.0.0.1:1")]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("STEWARD_LISTN"), "{}", r.stderr);
}

#[test]
fn p29_serve_refuses_a_policy_before_its_effective_date() {
    let dir = tempfile::tempdir().unwrap();
    let future = dir.path().join("next.toml");
    let text =
        crate::kit::example_text().replace("effective = 2026-01-01", "effective = 2999-06-01");
    std::fs::write(&future, text).unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let r = crate::kit::steward(&[
        "serve",
        "--policy",
        s(&future),
        "--data-dir",
        s(&data),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("[policy_not_effective]"), "{}", r.stderr);
    assert!(r.stderr.contains("2999-06-01"), "{}", r.stderr);
    // Refused before anything was made.
    assert!(!data.join("steward.db").exists());
    // The version in force starts.
    let r = crate::kit::steward(&["migrate", "--data-dir", s(&data)]).ok();
    assert!(r.code == 0);
    // On a store with a version in force, a file dated ahead under a new label is published
    // and waits for its date (docs/policy.md, *Versions*).
    let next = dir.path().join("next-label.toml");
    let text = crate::kit::example_text()
        .replace("effective = 2026-01-01", "effective = 2999-06-01")
        .replace("version = \"2026.1\"", "version = \"2999.1\"");
    std::fs::write(&next, text).unwrap();
    // (`migrate` makes the tables; the first open records the version in force.)
    crate::kit::steward(&["policy", "versions", "--data-dir", s(&data)]).ok();
    let r = crate::kit::steward(&[
        "policy",
        "versions",
        "--policy",
        s(&next),
        "--data-dir",
        s(&data),
    ])
    .ok();
    assert!(
        r.stdout.contains("2026.1") && r.stdout.contains("in_force"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("2999.1")
            && r.stdout.contains("scheduled")
            && r.stdout.contains("2999-06-01"),
        "{}",
        r.stdout
    );
}
