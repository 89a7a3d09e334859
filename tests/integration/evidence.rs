//! Evidence an outsider can rely on (P33): nothing forged is sealed, verifiers trust only the
//! key they are given, and every kind of damage to an export is exit 3 naming where it is.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde_json::Value;

use crate::kit::*;

const FIELDS: [&str; 9] = [
    "actor",
    "role",
    "action",
    "outcome",
    "subject",
    "purpose",
    "categories",
    "detail",
    "policy_version",
];

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().try_into().unwrap()
}

/// The canonical bytes of an exported entry, built from `docs/audit-format.md` §1.
fn canonical(e: &Value) -> Vec<u8> {
    let mut out = b"steward.audit.v1\n".to_vec();
    out.extend_from_slice(&e["seq"].as_u64().unwrap().to_be_bytes());
    out.extend_from_slice(&e["at_ms"].as_i64().unwrap().to_be_bytes());
    out.extend_from_slice(&hex::decode(e["prev_hash"].as_str().unwrap()).unwrap());
    for f in FIELDS {
        let b = e[f].as_str().unwrap().as_bytes();
        out.extend_from_slice(&u32::try_from(b.len()).unwrap().to_be_bytes());
        out.extend_from_slice(b);
    }
    out
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_lines(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// Re-links and re-hashes the exported entries from index `from` on, as a forger would.
fn rechain(entries: &mut [Value], from: usize) {
    for i in from..entries.len() {
        if i > 0 {
            let prev = entries[i - 1]["hash"].clone();
            entries[i]["prev_hash"] = prev;
        }
        entries[i]["hash"] = Value::String(hex::encode(sha256(&canonical(&entries[i]))));
    }
}

fn export(dir: &Path, out: &Path) {
    steward(&["audit", "export", "--data-dir", s(dir), "--out", s(out)]).ok();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn verify_export(dir: &Path, key: Option<&Path>, kept: Option<&Path>) -> Run {
    let mut args = vec!["audit", "verify", "--export", s(dir)];
    if let Some(k) = key {
        args.extend(["--public-key", s(k)]);
    }
    if let Some(k) = kept {
        args.extend(["--checkpoints", s(k)]);
    }
    steward(&args)
}

/// Rewrites entry `seq` of a store's log (one byte of its action) and re-chains every entry
/// after it, directly in `steward.db`: what a database writer without the master key can do.
fn forge_store(dir: &Path, seq: i64) {
    let c = Connection::open(dir.join("steward.db")).unwrap();
    let rows: Vec<(i64, Vec<u8>)> = c
        .prepare("SELECT seq, entry FROM audit WHERE seq >= ?1 ORDER BY seq")
        .unwrap()
        .query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut prev: Option<[u8; 32]> = None;
    for (n, mut bytes) in rows {
        match prev {
            Some(p) => bytes[33..65].copy_from_slice(&p),
            None => *bytes.last_mut().unwrap() ^= 1,
        }
        let h = sha256(&bytes);
        c.execute(
            "UPDATE audit SET entry = ?1, hash = ?2 WHERE seq = ?3",
            rusqlite::params![bytes, h.to_vec(), n],
        )
        .unwrap();
        prev = Some(h);
    }
}

fn journal(dir: &Path) -> PathBuf {
    dir.join("journal").join("checkpoints.jsonl")
}

/// P33: a log rewritten and re-chained in the database is never sealed by `audit checkpoint`
/// or by the checkpoint an export signs; with the checkpoint rows deleted too, the journal
/// outside the store still catches it. (The old code signed the forged head, and
/// `audit verify --data-dir` passed once the checkpoints were gone.)
#[test]
fn p33_a_rewritten_log_is_never_sealed_and_the_journal_remembers_deleted_checkpoints() {
    let (tmp, dir) = demo_store();
    let kept = std::fs::read_to_string(journal(&dir)).unwrap();
    assert_eq!(
        kept.lines().count(),
        1,
        "the demo's checkpoint is journaled"
    );
    forge_store(&dir, 5);
    let r = steward(&["audit", "checkpoint", "--data-dir", s(&dir)]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("audit_log_tampered"), "{}", r.stderr);
    assert!(
        r.stderr.contains("hash differs from the signed checkpoint"),
        "{}",
        r.stderr
    );
    // An export is still written, for whoever investigates, but nothing is signed.
    let out = tmp.path().join("evidence");
    let r = steward(&["audit", "export", "--data-dir", s(&dir), "--out", s(&out)]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(out.join("audit.jsonl").exists());
    assert_eq!(std::fs::read_to_string(journal(&dir)).unwrap(), kept);

    let c = Connection::open(dir.join("steward.db")).unwrap();
    c.execute("DELETE FROM checkpoints", []).unwrap();
    for args in [
        vec!["audit", "verify", "--data-dir", s(&dir)],
        vec!["audit", "checkpoint", "--data-dir", s(&dir)],
    ] {
        let r = steward(&args);
        assert_eq!(r.code, 3, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("missing from it"),
            "{args:?}: {}",
            r.stderr
        );
    }
    assert_eq!(
        c.query_row("SELECT COUNT(*) FROM checkpoints", [], |r| r
            .get::<_, i64>(0))
            .unwrap(),
        0
    );
}

/// P33: checkpoints are served without authentication with the public key, and checkpoints an
/// auditor kept from earlier catch a later export whose log was cut back or rewritten behind
/// them, though it is consistent with the provider's key on its own.
#[test]
fn p33_kept_checkpoints_catch_a_log_cut_back_or_rewritten_behind_them() {
    let server = crate::http::Server::start();
    let auditor = server.key("auditor");
    let service = server.key("service");
    let subject = server.subject(&service);
    for _ in 0..3 {
        server.post(
            &format!("/v1/subjects/{subject}/read"),
            &service,
            serde_json::json!({"categories": ["email"], "purpose": "provide_service"}),
        );
    }
    assert_eq!(
        server
            .post("/v1/audit/checkpoints", &auditor, Value::Null)
            .status,
        201
    );
    // No Authorization header at all.
    let published = server.get("/v1/evidence/checkpoints", "");
    assert_eq!(published.status, 200, "{}", published.body);
    let key = hex::encode(server.vault.public_key());
    assert_eq!(published.body["public_key"], key.as_str());
    assert!(
        published.body["public_key_pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    let served = published.body["checkpoints"].as_array().unwrap().clone();
    let stored = server.vault.store().checkpoints().unwrap();
    assert_eq!(served.len(), stored.len());
    assert_eq!(served[0], serde_json::to_value(&stored[0]).unwrap());
    assert_eq!(published.body["more"], false);
    let after = server.get(
        &format!("/v1/evidence/checkpoints?after={}", stored[0].seq),
        "",
    );
    assert_eq!(
        after.body["checkpoints"].as_array().unwrap().len(),
        stored.len() - 1
    );

    let tmp = tempfile::tempdir().unwrap();
    let kept = tmp.path().join("kept.jsonl");
    write_lines(&kept, &served);
    let key_file = tmp.path().join("key.hex");
    std::fs::write(&key_file, &key).unwrap();
    let out = tmp.path().join("export");
    steward_core::evidence::export_log(server.vault.store(), server.vault.public_key(), &out)
        .unwrap();
    verify_export(&out, Some(&key_file), Some(&kept)).ok();
    let sealed = stored.last().unwrap().seq;

    // Cut back behind the kept checkpoint: the export's own checkpoints go with it.
    let cut = tmp.path().join("cut");
    copy_dir(&out, &cut);
    let entries = read_lines(&out.join("audit.jsonl"));
    write_lines(&cut.join("audit.jsonl"), &entries[..(sealed as usize - 2)]);
    std::fs::write(cut.join("checkpoints.jsonl"), "").unwrap();
    verify_export(&cut, Some(&key_file), None).ok();
    let r = verify_export(&cut, Some(&key_file), Some(&kept));
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
    // The independent verifier, written from the docs, agrees.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/verify-evidence.py");
    let pem = out.join("public-key.pem");
    let python = |dir: &Path, kept: Option<&Path>| {
        let mut c = std::process::Command::new("python3");
        c.arg(&script).arg(dir).arg(&pem);
        if let Some(k) = kept {
            c.arg("--checkpoints").arg(k);
        }
        let o = c.output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    assert_eq!(python(&cut, None).0, Some(0));
    let (code, text) = python(&cut, Some(&kept));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("truncated"), "{text}");

    // Rewritten behind it and re-chained.
    let rewritten = tmp.path().join("rewritten");
    copy_dir(&cut, &rewritten);
    let mut forged = entries.clone();
    let i = forged
        .iter()
        .position(|e| e["action"] == "pi.read")
        .unwrap();
    forged[i]["outcome"] = Value::String("refused".into());
    rechain(&mut forged, i);
    write_lines(&rewritten.join("audit.jsonl"), &forged);
    verify_export(&rewritten, Some(&key_file), None).ok();
    let r = verify_export(&rewritten, Some(&key_file), Some(&kept));
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(
        r.stderr.contains(&format!("entry {sealed}:")),
        "{}",
        r.stderr
    );
}

/// P33: an export or a document that agrees only with the key it came with is never called
/// verified (exit 4), the export's two copies of its key must agree, and a document checked
/// against an export must have its entry there with the same hash. (The old code said "OK" to
/// a fully re-signed forgery.)
#[test]
fn p33_verifiers_trust_only_the_key_they_are_given() {
    let (tmp, provider) = demo_store();
    let (_tmp2, forger) = demo_store();
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    export(&provider, &ours);
    export(&forger, &theirs);
    let key = ours.join("public-key.pem");
    verify_export(&ours, Some(&key), None).ok();
    // The forgery is consistent with its own key: not verified, and said so.
    let r = verify_export(&theirs, None, None);
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("NOT VERIFIED"), "{}", r.stderr);
    assert!(!r.stdout.contains("OK"), "{}", r.stdout);
    let r = verify_export(&theirs, Some(&key), None);
    assert_eq!(r.code, 3, "{}", r.stderr);
    // The provider's PEM beside the forger's hex.
    std::fs::copy(&key, theirs.join("public-key.pem")).unwrap();
    let r = verify_export(&theirs, None, None);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("different keys"), "{}", r.stderr);

    let certificate = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_str().unwrap().contains("erasure-certificate-"))
            .unwrap()
    };
    let (ours_cert, theirs_cert) = (certificate(&provider), certificate(&forger));
    let document = |cert: &Path, extra: &[&str]| {
        let mut args = vec!["document", "verify", s(cert)];
        args.extend_from_slice(extra);
        steward(&args)
    };
    let r = document(&theirs_cert, &[]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("NOT VERIFIED"), "{}", r.stderr);
    assert_eq!(document(&theirs_cert, &["--public-key", s(&key)]).code, 3);
    let r = document(&ours_cert, &["--public-key", s(&key), "--export", s(&ours)]).ok();
    assert!(
        r.stdout.contains("its audit entry is in the verified log"),
        "{}",
        r.stdout
    );
    // An export that verifies but does not reach the certificate's entry.
    let payload: Value = {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&ours_cert).unwrap()).unwrap();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(doc["payload"].as_str().unwrap())
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    let seq = payload["audit_seq"].as_u64().unwrap() as usize;
    let short = tmp.path().join("short");
    copy_dir(&ours, &short);
    write_lines(
        &short.join("audit.jsonl"),
        &read_lines(&ours.join("audit.jsonl"))[..seq - 1],
    );
    std::fs::write(short.join("checkpoints.jsonl"), "").unwrap();
    verify_export(&short, Some(&key), None).ok();
    let r = document(
        &ours_cert,
        &["--public-key", s(&key), "--export", s(&short)],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("not in the export"), "{}", r.stderr);
}

/// P33: every kind of damage to an exported file is exit 3 naming the first bad line or entry,
/// never exit 1 "invalid data"; an entry the store could not decode is exported as the exact
/// marker `docs/audit-format.md` shows.
#[test]
fn p33_every_kind_of_damage_to_an_export_is_exit_3_naming_where() {
    let (tmp, dir) = demo_store();
    let good = tmp.path().join("good");
    export(&dir, &good);
    let key = good.join("public-key.hex");
    let entries = std::fs::read(good.join("audit.jsonl")).unwrap();
    let checkpoints = std::fs::read_to_string(good.join("checkpoints.jsonl")).unwrap();
    // Line 4 of audit.jsonl, changed by `f`.
    let line4 = |f: &dyn Fn(&str) -> Vec<u8>| {
        let text = String::from_utf8(entries.clone()).unwrap();
        let mut out = Vec::new();
        for (i, l) in text.lines().enumerate() {
            if i == 3 {
                out.extend(f(l));
            } else {
                out.extend_from_slice(l.as_bytes());
            }
            out.push(b'\n');
        }
        out
    };
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "not UTF-8",
            "audit.jsonl",
            line4(&|l| {
                let mut b = l.as_bytes().to_vec();
                b[10] = 0xff;
                b
            }),
            "`audit.jsonl` line 4: not valid UTF-8",
        ),
        (
            "not JSON",
            "audit.jsonl",
            line4(&|_| b"{\"seq\":4,".to_vec()),
            "`audit.jsonl` line 4: not a JSON object",
        ),
        (
            "a key missing",
            "audit.jsonl",
            line4(&|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let mut m = v.as_object().unwrap().clone();
                m.remove("role");
                Value::Object(m).to_string().into_bytes()
            }),
            "`audit.jsonl` line 4: a key is missing",
        ),
        (
            "a key twice",
            "audit.jsonl",
            line4(&|l| l.replacen('{', "{\"seq\":4,", 1).into_bytes()),
            "`audit.jsonl` line 4: a key is given twice",
        ),
        (
            "an unknown key",
            "audit.jsonl",
            line4(&|l| l.replacen('{', "{\"note\":1,", 1).into_bytes()),
            "`audit.jsonl` line 4: a key that is not in the format",
        ),
        (
            "uppercase hex",
            "audit.jsonl",
            line4(&|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let hash = v["hash"].as_str().unwrap();
                l.replace(hash, &hash.to_uppercase()).into_bytes()
            }),
            "`audit.jsonl` line 4: a hash or signature is not lowercase hex",
        ),
        (
            "a wrong type",
            "audit.jsonl",
            line4(&|l| l.replacen("\"seq\":4", "\"seq\":\"4\"", 1).into_bytes()),
            "`audit.jsonl` line 4: a value has the wrong type",
        ),
        (
            "an empty line",
            "audit.jsonl",
            line4(&|_| Vec::new()),
            "`audit.jsonl` line 4: not a JSON object",
        ),
        (
            "a checkpoint twice",
            "checkpoints.jsonl",
            format!("{checkpoints}{checkpoints}").into_bytes(),
            "given twice or out of order",
        ),
        (
            "a checkpoint at 0",
            "checkpoints.jsonl",
            {
                let mut cp: Value =
                    serde_json::from_str(checkpoints.lines().next().unwrap()).unwrap();
                cp["seq"] = 0.into();
                format!("{cp}\n").into_bytes()
            },
            "`checkpoints.jsonl` line 1: a checkpoint's seq is at least 1",
        ),
        (
            "a torn checkpoint",
            "checkpoints.jsonl",
            checkpoints.as_bytes()[..checkpoints.len() / 2].to_vec(),
            "`checkpoints.jsonl` line 1: not a JSON object",
        ),
    ];
    for (what, file, bytes, expected) in cases {
        let bad = tmp.path().join(what.replace(' ', "-"));
        copy_dir(&good, &bad);
        std::fs::write(bad.join(file), bytes).unwrap();
        let r = verify_export(&bad, Some(&key), None);
        assert_eq!(r.code, 3, "{what}: exit {}\n{}", r.code, r.stderr);
        assert!(r.stderr.contains(expected), "{what}: {}", r.stderr);
    }

    // A stored entry that no longer decodes: the marker, byte for byte, then altered there.
    let c = Connection::open(dir.join("steward.db")).unwrap();
    let bytes: Vec<u8> = c
        .query_row("SELECT entry FROM audit WHERE seq = 7", [], |r| r.get(0))
        .unwrap();
    c.execute("UPDATE audit SET entry = ?1 WHERE seq = 7", [&bytes[..70]])
        .unwrap();
    let damaged = tmp.path().join("damaged");
    // Sealing starts from the journal's checkpoint, after this entry: the export is written
    // (and signs nothing new); its verification finds the damage.
    steward(&[
        "audit",
        "export",
        "--data-dir",
        s(&dir),
        "--out",
        s(&damaged),
    ])
    .ok();
    let text = std::fs::read_to_string(damaged.join("audit.jsonl")).unwrap();
    assert_eq!(text.lines().nth(6), Some("{\"seq\":7,\"malformed\":true}"));
    let r = verify_export(&damaged, Some(&key), None);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("entry 7: contents do not match"),
        "{}",
        r.stderr
    );
}
