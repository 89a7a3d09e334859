//! `steward demo`: the scenario runs, keeps no PI in its logs, and leaves a store to inspect.

use crate::kit::*;

/// Every PI value the demo seeds.
const SEEDED: &[&str] = &[
    "Li Lei",
    "li.lei@example.cn",
    "+86 138 0013 8000",
    "wx:lilei1988",
    "88 Wensan Road",
    "Han Meimei",
    "meimei.han@example.cn",
    "+86 139 0013 9000",
    "1 Zhongguancun Street",
    "Zhao Qiang",
    "q.zhao@example.cn",
    "110101199003071234",
    "<face image bytes>",
    "203.0.113.",
    "/console/instances?page=",
];

#[test]
fn p34_demo_with_debug_logging_leaks_no_pi_into_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let r = steward_env(
        &["demo", "--data-dir", s(&dir)],
        &[("STEWARD_LOG", "trace")],
    )
    .ok();
    assert!(
        r.stderr.contains("DEBUG"),
        "debug logging was not on: {}",
        r.stderr
    );
    assert!(
        r.stderr.lines().count() > 100,
        "too little was logged to mean anything"
    );
    for v in SEEDED {
        assert!(
            !r.stderr.contains(v),
            "log output contains the PI value `{v}`"
        );
        assert!(
            !r.stdout.contains(v),
            "demo output contains the PI value `{v}` unmasked"
        );
    }
}

#[test]
fn p20_demo_store_keeps_no_plaintext_and_a_private_master_key() {
    let (_tmp, dir) = demo_store();
    let data = std::fs::read(dir.join("steward.db")).unwrap();
    let wal = std::fs::read(dir.join("steward.db-wal")).unwrap_or_default();
    for v in SEEDED {
        let needle = v.as_bytes();
        for bytes in [&data, &wal] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "`{v}` is stored in plaintext"
            );
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn p35_demo_refuses_a_used_store_and_runs_without_a_data_dir() {
    let (_tmp, dir) = demo_store();
    let r = steward(&["demo", "--data-dir", s(&dir)]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("already holds a store"));
    let r = steward(&["demo"]).ok();
    assert!(r.stdout.contains("verification OK"));
}

#[test]
fn p33_erasure_certificate_verifies_with_the_published_key() {
    let (_tmp, dir) = demo_store();
    let cert = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("erasure-certificate-")
        })
        .expect("the demo writes a certificate");
    let pem = dir.join("public-key.pem");
    let r = steward(&["document", "verify", s(&cert), "--public-key", s(&pem)]).ok();
    assert!(r.stdout.contains("steward.erasure-certificate.v1"));
    // A certificate altered by one character no longer verifies.
    let text = std::fs::read_to_string(&cert).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let payload = v["payload"].as_str().unwrap();
    let flipped = if payload.starts_with('e') {
        payload.replacen('e', "f", 1)
    } else {
        format!("e{}", &payload[1..])
    };
    let forged = text.replace(payload, &flipped);
    let forged_path = dir.join("forged.json");
    std::fs::write(&forged_path, forged).unwrap();
    let r = steward(&[
        "document",
        "verify",
        s(&forged_path),
        "--public-key",
        s(&pem),
    ]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
}

/// Issue 14: the demo prints the snippet a provider pastes into its pages, and the README shows
/// the same lines.
#[test]
fn p07_the_demo_prints_the_banner_snippet_the_readme_shows() {
    let r = steward(&["demo"]).ok();
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let block = readme
        .split("```html\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README shows the banner snippet");
    assert_eq!(block.lines().count(), 3, "{block}");
    for line in block.lines() {
        assert!(
            r.stdout.contains(line),
            "the demo does not print the README's line {line}:\n{}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("/banner.js"), "{}", r.stdout);
}

/// Issue 16: the demo's access and deletion reach the provider's own database (a SQLite file
/// beside the store): the copy holds its rows, the deletion leaves none of the subject's —
/// not even in the file's free pages — and the other customer's rows as they were.
#[test]
fn p28_the_demo_reaches_the_providers_database() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let r = steward(&["demo", "--data-dir", s(&dir)]).ok();
    for line in [
        "11. Requests reach the provider's own database",
        "from `shop`, customers: 1 rows, orders: 2 rows, login_events: 1 rows",
        "rows deleted (customers: 1, login_events: 1) and masked (orders: 2",
        "nothing of subject D's is left in the shop database",
    ] {
        assert!(r.stdout.contains(line), "missing `{line}`:\n{}", r.stdout);
    }
    let shop = std::fs::read(dir.join("shop.db")).unwrap();
    for gone in [
        "sun.li@example.cn",
        "Sun Li",
        "5 Binjiang Road",
        "192.0.2.7",
    ] {
        assert!(
            !shop.windows(gone.len()).any(|w| w == gone.as_bytes()),
            "`{gone}` is still in the shop's file"
        );
    }
    assert!(
        shop.windows(8).any(|w| w == b"Zhou Jie"),
        "the other customer is kept"
    );
}
