//! `steward audit verify`: every stored field of every entry is covered (P21, P33).

use rusqlite::Connection;

use crate::kit::*;

fn verify(dir: &std::path::Path) -> Run {
    steward(&["audit", "verify", "--data-dir", s(dir)])
}

fn entries(dir: &std::path::Path) -> i64 {
    let c = Connection::open(dir.join("steward.db")).unwrap();
    c.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn p33_demo_store_verifies() {
    let (_tmp, dir) = demo_store();
    let r = verify(&dir).ok();
    assert!(r.stdout.starts_with("audit log OK"), "{}", r.stdout);
}

#[test]
fn p33_changing_any_stored_field_of_any_entry_fails_verification() {
    let (_tmp, dir) = demo_store();
    let n = entries(&dir);
    assert!(n > 100);
    let db = dir.join("steward.db");
    // Each column of entries at the start, middle and end of the chain.
    for seq in [1, n / 2, n] {
        for (column, change) in [
            ("entry", "entry = CAST(entry || X'00' AS BLOB)"),
            ("entry", "entry = X'00'"),
            ("entry", "entry = 'text'"),
            ("hash", "hash = randomblob(32)"),
            ("hash", "hash = NULL"),
            ("seq", "seq = seq + 1000000"),
        ] {
            let c = Connection::open(&db).unwrap();
            let before: (Vec<u8>, Vec<u8>) = c
                .query_row("SELECT entry, hash FROM audit WHERE seq = ?1", [seq], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap();
            // NOT NULL constraints stop some changes; a refused change is no tampering.
            let changed = c.execute(&format!("UPDATE audit SET {change} WHERE seq = ?1"), [seq]);
            if changed.is_ok() {
                let r = verify(&dir);
                assert_eq!(
                    r.code, 3,
                    "changing {column} of entry {seq} went unnoticed:\n{}",
                    r.stdout
                );
                assert!(
                    r.stderr.contains(&format!("FAILED: entry {seq}:")),
                    "{}",
                    r.stderr
                );
                c.execute("DELETE FROM audit WHERE seq = ?1 + 1000000", [seq])
                    .unwrap();
                c.execute(
                    "INSERT OR REPLACE INTO audit (seq, entry, hash) VALUES (?1, ?2, ?3)",
                    rusqlite::params![seq, before.0, before.1],
                )
                .unwrap();
            }
            verify(&dir).ok();
        }
    }
}

#[test]
fn p33_removed_and_reordered_entries_are_named() {
    let (_tmp, dir) = demo_store();
    let c = Connection::open(dir.join("steward.db")).unwrap();
    let swap = "UPDATE audit SET seq = CASE seq WHEN 10 THEN -1 ELSE seq END WHERE seq = 10;
                UPDATE audit SET seq = 10 WHERE seq = 11;
                UPDATE audit SET seq = 11 WHERE seq = -1;";
    c.execute_batch(swap).unwrap();
    let r = verify(&dir);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("FAILED: entry 10:"), "{}", r.stderr);
    c.execute_batch(swap).unwrap();
    verify(&dir).ok();
    c.execute("DELETE FROM audit WHERE seq = 20", []).unwrap();
    let r = verify(&dir);
    assert!(r.stderr.contains("FAILED: entry 20:"), "{}", r.stderr);
}

#[test]
fn p33_truncated_tail_is_caught_by_the_signed_checkpoint() {
    let (_tmp, dir) = demo_store();
    let n = entries(&dir);
    let c = Connection::open(dir.join("steward.db")).unwrap();
    c.execute("DELETE FROM audit WHERE seq > ?1", [n - 3])
        .unwrap();
    let r = verify(&dir);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
}

#[test]
fn p33_exported_log_verifies_offline_and_with_openssl_style_key() {
    let (tmp, dir) = demo_store();
    let out = tmp.path().join("evidence");
    steward(&["audit", "export", "--data-dir", s(&dir), "--out", s(&out)]).ok();
    for f in [
        "audit.jsonl",
        "checkpoints.jsonl",
        "public-key.pem",
        "public-key.hex",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let pem = out.join("public-key.pem");
    let r = steward(&[
        "audit",
        "verify",
        "--export",
        s(&out),
        "--public-key",
        s(&pem),
    ])
    .ok();
    assert!(r.stdout.contains("audit log OK"));
    // Change one field of one exported entry.
    let text = std::fs::read_to_string(out.join("audit.jsonl")).unwrap();
    let tampered = text.replacen("\"outcome\":\"refused\"", "\"outcome\":\"granted\"", 1);
    assert_ne!(text, tampered);
    std::fs::write(out.join("audit.jsonl"), tampered).unwrap();
    let r = steward(&["audit", "verify", "--export", s(&out)]);
    assert_eq!(r.code, 3);
}

#[test]
fn p33_verification_with_a_wrong_key_fails() {
    let (tmp, dir) = demo_store();
    let other = tmp.path().join("other.hex");
    std::fs::write(&other, "11".repeat(32)).unwrap();
    let r = steward(&[
        "audit",
        "verify",
        "--data-dir",
        s(&dir),
        "--public-key",
        s(&other),
    ]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("signature"), "{}", r.stderr);
}

/// The independent verifier in `tools/` — written from `docs/audit-format.md` with Python's
/// standard library and `openssl` — accepts Steward's evidence and rejects a tampered copy.
#[test]
fn p33_independent_verifier_from_the_docs_agrees() {
    let (tmp, dir) = demo_store();
    let out = tmp.path().join("evidence");
    steward(&["audit", "export", "--data-dir", s(&dir), "--out", s(&out)]).ok();
    let cert = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().contains("erasure-certificate-"))
        .unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/verify-evidence.py");
    let run = |args: &[&str]| {
        let o = std::process::Command::new("python3")
            .arg(&script)
            .args(args)
            .output()
            .expect("python3 runs");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let pem = out.join("public-key.pem");
    let (code, text) = run(&[s(&out), s(&pem), s(&cert)]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("audit log OK") && text.contains("steward.erasure-certificate.v1"),
        "{text}"
    );
    let entries = std::fs::read_to_string(out.join("audit.jsonl")).unwrap();
    std::fs::write(
        out.join("audit.jsonl"),
        entries.replacen("\"action\":\"pi.read\"", "\"action\":\"pi.reed\"", 1),
    )
    .unwrap();
    let (code, text) = run(&[s(&out), s(&pem)]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("altered"), "{text}");
}

/// A reader that goes away early (`| head -1`) ends the output, not the command: no panic
/// (exit 101), and the command's own exit status stands.
#[test]
fn p34_a_closed_pipe_ends_the_output_not_the_command() {
    let (_tmp, dir) = crate::kit::demo_store();
    for args in [
        vec!["audit", "verify", "--data-dir", crate::kit::s(&dir)],
        vec![
            "policy",
            "explain",
            crate::kit::s(&crate::kit::example_policy()),
        ],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
            .args(&args)
            .env_remove("STEWARD_MASTER_KEY")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before anything is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
