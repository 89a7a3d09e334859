//! `steward policy ...`: check, explain, diff (P2, P29).

use crate::kit::*;

#[test]
fn p02_example_policy_checks_clean() {
    let r = steward(&["policy", "check", s(&example_policy())]).ok();
    assert!(r.stdout.contains(": ok"), "{}", r.stdout);
}

#[test]
fn p02_unknown_key_and_dangling_reference_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let text = example_text()
        .replace(
            "[features.sms]\ndescription = \"SMS notifications\"",
            "[features.sms]\ndescriptoin = \"SMS notifications\"",
        )
        .replace(
            "categories = [\"phone\"]\nagreement = \"DPA-2025-011\"",
            "categories = [\"phnoe\"]\nagreement = \"DPA-2025-011\"",
        );
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, &text).unwrap();
    let r = steward(&["policy", "check", s(&path)]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let unknown = format!(
        "{}:{}:1: error[unknown_key]",
        path.display(),
        line_of("descriptoin")
    );
    assert!(r.stderr.contains(&unknown), "{}", r.stderr);
    let dangling = format!(
        "{}:{}:15: error[dangling_reference]",
        path.display(),
        line_of("\"phnoe\"")
    );
    assert!(r.stderr.contains(&dangling), "{}", r.stderr);
    assert!(r.stderr.contains("2 errors found"), "{}", r.stderr);
}

#[test]
fn p29_diff_reports_added_purpose_as_material() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.toml");
    let text = example_text().replace("version = \"2026.1\"", "version = \"2026.2\"")
        + "\n[purposes.credit_scoring]\ntaxonomy = \"third_party_sharing.credit\"\ndescription = \"Credit scoring\"\nbasis = \"consent\"\nreads = [\"name\", \"order_record\"]\n";
    std::fs::write(&new, text).unwrap();
    let r = steward(&["policy", "diff", s(&example_policy()), s(&new)]).ok();
    assert!(
        r.stdout.contains("MATERIAL purposes.credit_scoring"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("2 changes, 1 material"), "{}", r.stdout);
    let gated = steward(&[
        "policy",
        "diff",
        s(&example_policy()),
        s(&new),
        "--fail-on-material",
    ]);
    assert_eq!(gated.code, 3);
    let json = steward(&["policy", "diff", s(&example_policy()), s(&new), "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["material"], true);
    // P11: a purpose related to none of the old ones asks existing subjects again.
    let added = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "purposes.credit_scoring")
        .unwrap();
    assert_eq!(
        (&added["what"], &added["reconsent"]),
        (&serde_json::json!("added"), &serde_json::json!(true))
    );
    assert!(r.stdout.contains("[fresh consent"), "{}", r.stdout);
    let same = steward(&[
        "policy",
        "diff",
        s(&example_policy()),
        s(&example_policy()),
        "--fail-on-material",
    ])
    .ok();
    assert!(same.stdout.contains("0 changes"));
}

#[test]
fn p29_gate_stops_on_rewording_until_the_new_file_acknowledges_it() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.toml");
    let reworded = example_text().replace(
        "description = \"Answering your questions and complaints\"",
        "description = \"Answering questions, and offers from partners\"",
    );
    std::fs::write(&new, &reworded).unwrap();
    let gate = |new: &std::path::Path| {
        steward(&[
            "policy",
            "diff",
            s(&example_policy()),
            s(new),
            "--fail-on-material",
            "--json",
        ])
    };
    let r = gate(&new);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["material"], false);
    assert_eq!(v["needs_review"], true);
    assert_eq!(v["changes"][0]["path"], "purposes.support.description");
    assert_eq!(v["changes"][0]["class"], "needs_review");
    assert_eq!(v["changes"][0]["acknowledged"], false);
    std::fs::write(
        &new,
        format!(
            "{reworded}\n[review]\nfrom = \"2026.1\"\nacknowledged = [\"purposes.support.description\"]\n"
        ),
    )
    .unwrap();
    let r = gate(&new).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["changes"][0]["acknowledged"], true);
    assert_eq!(v["unacknowledged"], 0);
}

#[test]
fn p02_explain_summarises_in_plain_language() {
    let r = steward(&["policy", "explain", s(&example_policy())]).ok();
    for needle in [
        "What we collect, and why",
        "Who we share it with",
        "Real-name verification",
        "transfer abroad",
    ] {
        assert!(r.stdout.contains(needle), "missing {needle}");
    }
}

#[test]
fn p34_bad_usage_is_a_clear_error_not_a_panic() {
    let r = steward(&["policy", "check", "/nonexistent/policy.toml"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("cannot read `/nonexistent/policy.toml`"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"));
    let r = steward(&["frobnicate"]);
    assert_eq!(r.code, 2);
}

/// Every command reads the settings `serve` reads, in the same layers: defaults, the file,
/// `STEWARD_*`, then flags.
#[test]
fn settings_are_layered_the_same_way_for_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let key = "5a".repeat(32);
    let from_env = tmp.path().join("from-env");
    let env = [
        ("STEWARD_DATA_DIR", s(&from_env)),
        ("STEWARD_MASTER_KEY", key.as_str()),
    ];
    steward_in(tmp.path(), &["migrate"], &env).ok();
    steward_in(
        tmp.path(),
        &["key", "create", "--name", "a", "--role", "service"],
        &env,
    )
    .ok();
    assert!(from_env.join("steward.db").exists());
    assert!(!tmp.path().join("steward-data").exists());
    let listed = steward_in(tmp.path(), &["key", "list"], &env).ok();
    assert!(listed.stdout.contains("role service"), "{}", listed.stdout);

    // The file is read by every command too; a flag beats the environment.
    let from_file = tmp.path().join("from-file");
    let file = tmp.path().join("steward.toml");
    std::fs::write(&file, format!("data_dir = \"{}\"\n", s(&from_file))).unwrap();
    let only_key = [("STEWARD_MASTER_KEY", key.as_str())];
    steward_in(tmp.path(), &["migrate", "--config", s(&file)], &only_key).ok();
    steward_in(
        tmp.path(),
        &[
            "key",
            "create",
            "--config",
            s(&file),
            "--name",
            "b",
            "--role",
            "service",
        ],
        &only_key,
    )
    .ok();
    assert!(from_file.join("steward.db").exists());
    let from_flag = tmp.path().join("from-flag");
    steward_in(tmp.path(), &["migrate", "--data-dir", s(&from_flag)], &env).ok();
    // The environment's store holds key `a`; the flag's holds none.
    let listed = steward_in(
        tmp.path(),
        &["key", "list", "--data-dir", s(&from_flag)],
        &env,
    )
    .ok();
    assert!(
        !listed.stdout.contains("role service"),
        "the flag lost: {}",
        listed.stdout
    );

    // An unknown setting fails every command, not only `serve`.
    let typo = [
        ("STEWARD_DATADIR", "x"),
        ("STEWARD_MASTER_KEY", key.as_str()),
    ];
    let r = steward_in(tmp.path(), &["key", "list"], &typo);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("STEWARD_DATADIR"), "{}", r.stderr);

    let help = steward(&["serve", "--help"]).ok();
    for flag in [
        "--config",
        "--data-dir",
        "--policy",
        "--listen",
        "--database",
    ] {
        assert!(help.stdout.contains(flag), "serve --help lacks {flag}");
    }
}

/// P20: a PostgreSQL store's master key is given; none is made up in the working directory.
#[test]
fn p20_postgres_without_a_master_key_is_refused_not_invented() {
    let tmp = tempfile::tempdir().unwrap();
    let url = steward_store::test_url();
    let schema = steward_core::PgTarget::unique(&url, "nokey").unwrap();
    let keyring_schema = format!("{}_keys", schema.schema);
    let place = [
        "--database",
        url.as_str(),
        "--schema",
        schema.schema.as_str(),
        "--keyring-schema",
        keyring_schema.as_str(),
    ];
    let mut migrate = vec!["migrate"];
    migrate.extend(place);
    steward_in(tmp.path(), &migrate, &[]).ok();
    let mut list = vec!["key", "list"];
    list.extend(place);
    let r = steward_in(tmp.path(), &list, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("master key"), "{}", r.stderr);
    assert!(
        !tmp.path().join("steward-data").exists(),
        "a master key was created"
    );
    let _ = schema.drop_schema();
    let _ = steward_core::PgTarget::new(&url, &keyring_schema).map(|k| k.drop_schema());
}

/// A typo never creates a store: every command but those that exist to make one refuses a
/// place that holds none, names it, and leaves nothing behind.
#[test]
fn p34_a_mistyped_data_dir_is_an_error_not_a_new_store() {
    let tmp = tempfile::tempdir().unwrap();
    let typo = tmp.path().join("stewrad-data");
    let key = "5a".repeat(32);
    let env = [("STEWARD_MASTER_KEY", key.as_str())];
    for args in [
        vec!["key", "list"],
        vec!["key", "create", "--name", "a", "--role", "service"],
        vec!["retention", "sweep"],
        vec!["purge"],
        vec!["audit", "checkpoint"],
        vec!["backup", "create"],
    ] {
        let mut args = args;
        args.extend(["--data-dir", s(&typo)]);
        let r = steward_in(tmp.path(), &args, &env);
        assert_eq!(r.code, 1, "{args:?} did not refuse: {}", r.stdout);
        assert!(
            r.stderr.contains("store_not_found"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("stewrad-data"), "{args:?}: {}", r.stderr);
        assert!(!typo.exists(), "{args:?} created `{}`", typo.display());
    }
    // The commands that make a store still do.
    steward_in(tmp.path(), &["migrate", "--data-dir", s(&typo)], &env).ok();
    steward_in(tmp.path(), &["key", "list", "--data-dir", s(&typo)], &env).ok();
}

/// Counts read as people write them, and a dry run says what would happen, not what did.
#[test]
fn p34_cli_messages_say_one_day_and_would_for_a_dry_run() {
    let r = steward(&["policy", "explain", s(&example_policy())]).ok();
    assert!(!r.stdout.contains(" 1 days"), "{}", r.stdout);
    assert!(r.stdout.contains("kept 1 day,"), "{}", r.stdout);
    let dir = tempfile::tempdir().unwrap();
    steward(&["migrate", "--data-dir", s(dir.path())]).ok();
    let r = steward(&[
        "retention",
        "sweep",
        "--dry-run",
        "--data-dir",
        s(dir.path()),
    ])
    .ok();
    assert!(r.stdout.contains("would be deleted"), "{}", r.stdout);
    assert!(!r.stdout.contains("retention deleted"), "{}", r.stdout);
}

/// Issue 12: webhook endpoints and the outbox from the command line: an endpoint on a local
/// address only where the deployment allows it, its secret printed once, listed without it,
/// disabled; the outbox listed, retried by id, delivered from here.
#[test]
fn p26_webhooks_and_the_outbox_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key = "5a".repeat(32);
    let env = [("STEWARD_MASTER_KEY", key.as_str())];
    steward_in(tmp.path(), &["migrate", "--data-dir", s(&data)], &env).ok();
    let add = [
        "webhook",
        "add",
        "http://127.0.0.1:9/hooks",
        "--event",
        "subject.erased",
        "--data-dir",
        s(&data),
    ];
    let r = steward_in(tmp.path(), &add, &env);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("webhooks_allow_local"), "{}", r.stderr);
    let local = [
        ("STEWARD_MASTER_KEY", key.as_str()),
        ("STEWARD_WEBHOOKS_ALLOW_LOCAL", "true"),
    ];
    let r = steward_in(tmp.path(), &add, &local).ok();
    let secret = r.stdout.trim();
    assert!(secret.starts_with("whsec_"), "{}", r.stdout);
    let r = steward_in(
        tmp.path(),
        &["webhook", "list", "--data-dir", s(&data)],
        &env,
    )
    .ok();
    assert!(r.stdout.contains("http://127.0.0.1:9/hooks") && r.stdout.contains("subject.erased"));
    assert!(!r.stdout.contains(secret), "the secret is shown once");
    let id = r.stdout.split_whitespace().next().unwrap().to_string();
    steward_in(
        tmp.path(),
        &["webhook", "disable", &id, "--data-dir", s(&data)],
        &env,
    )
    .ok();
    let r = steward_in(
        tmp.path(),
        &["webhook", "list", "--data-dir", s(&data)],
        &env,
    )
    .ok();
    assert!(r.stdout.contains("disabled"), "{}", r.stdout);
    let r = steward_in(
        tmp.path(),
        &["outbox", "list", "--json", "--data-dir", s(&data)],
        &env,
    )
    .ok();
    assert_eq!(r.stdout.trim(), "[]");
    let r = steward_in(
        tmp.path(),
        &["outbox", "retry", "msg_nope", "--data-dir", s(&data)],
        &env,
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("message_not_found"), "{}", r.stderr);
    let r = steward_in(
        tmp.path(),
        &["outbox", "dispatch", "--data-dir", s(&data)],
        &env,
    )
    .ok();
    assert!(r.stdout.contains("0 delivered"), "{}", r.stdout);
    let r = steward_in(tmp.path(), &["deadlines", "--data-dir", s(&data)], &env).ok();
    assert!(
        r.stdout.starts_with("0 clock(s) due within 30 days"),
        "{}",
        r.stdout
    );
    let r = steward_in(
        tmp.path(),
        &["deadlines", "--json", "--data-dir", s(&data)],
        &env,
    )
    .ok();
    assert_eq!(r.stdout.trim(), "[]");
}

/// P29, P30: `steward policy publish` refuses a material change inside the notice period and
/// names the earliest date, publishes it later; `policy versions` lists it as scheduled with
/// its classified changes; `policy notify` queues one notice mail per subject with an address;
/// `policy acceptance` counts per version.
#[test]
fn p29_policy_versions_from_the_command_line() {
    let (tmp, data) = crate::kit::demo_store();
    let file = tmp.path().join("next.toml");
    std::fs::write(&file, crate::policy::next_version("2026.9")).unwrap();
    let now = crate::kit::real_now_ms();
    let day = |ms: i64| steward_core::clock::rfc3339(ms)[..10].to_string();
    let soon = day(now + 5 * 86_400_000);
    let publish = |effective: &str| {
        steward(&[
            "policy",
            "publish",
            s(&file),
            "--effective",
            effective,
            "--data-dir",
            s(&data),
        ])
    };
    let r = publish(&soon);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains("notice_period") || r.stderr.contains("at the earliest"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&day(now + 31 * 86_400_000)),
        "{}",
        r.stderr
    );
    let later = day(now + 60 * 86_400_000);
    let r = publish(&later).ok();
    assert!(
        r.stdout.contains("published 2026.9") && r.stdout.contains("ad_models"),
        "{}",
        r.stdout
    );
    let r = steward(&["policy", "versions", "--data-dir", s(&data)]).ok();
    assert!(
        r.stdout.contains("2026.1") && r.stdout.contains("in_force"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("2026.9")
            && r.stdout.contains("scheduled")
            && r.stdout.contains("[fresh consent]"),
        "{}",
        r.stdout
    );
    let r = steward(&["policy", "notify", "2026.9", "--data-dir", s(&data)]).ok();
    let queued: u64 = r.stdout.split_whitespace().next().unwrap().parse().unwrap();
    assert!(queued > 0, "{}", r.stdout);
    // Resumable and idempotent: a second run queues nothing more.
    let again = steward(&["policy", "notify", "2026.9", "--data-dir", s(&data)]).ok();
    assert!(
        again.stdout.starts_with(&format!("{queued} ")),
        "{}",
        again.stdout
    );
    let r = steward(&[
        "outbox",
        "list",
        "--state",
        "pending",
        "--data-dir",
        s(&data),
        "--json",
    ])
    .ok();
    let pending: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let notices = pending
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["event"] == "policy.notice")
        .count();
    assert_eq!(notices as u64, queued);
    let r = steward(&[
        "policy",
        "acceptance",
        "2026.9",
        "--data-dir",
        s(&data),
        "--json",
    ])
    .ok();
    let a: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(a["notified"], 0, "nothing is delivered yet: {a}");
    let r = steward(&["policy", "acceptance", "1999.1", "--data-dir", s(&data)]);
    assert_ne!(r.code, 0);
}

#[test]
fn p22_incidents_from_the_command_line() {
    let (tmp, data) = crate::kit::demo_store();
    let now = crate::kit::real_now_ms();
    let t = steward_core::clock::rfc3339;
    let file = tmp.path().join("incident.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "title": "Laptop with a CRM extract stolen",
            "detected_at": t(now),
            "grade": "major",
            "cause": "theft",
            "harm": "fraud",
            "advice": {"en": "Watch for calls claiming to be us."},
            "exposure": {"categories": ["name"], "from": t(now - 86_400_000), "to": t(now)},
        })
        .to_string(),
    )
    .unwrap();
    let r = steward(&[
        "incidents",
        "open",
        s(&file),
        "--json",
        "--data-dir",
        s(&data),
    ])
    .ok();
    let opened: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let id = opened["id"].as_str().unwrap().to_string();
    // The demo's two subjects still held gave a name; the erased one is gone.
    assert_eq!(opened["affected"]["subjects"], 2, "{}", r.stdout);
    let r = steward(&[
        "incidents",
        "report",
        &id,
        "--lang",
        "zh-CN",
        "--data-dir",
        s(&data),
    ])
    .ok();
    assert!(
        r.stdout.contains("涉及的个人信息种类") && r.stdout.contains("受影响人数：2"),
        "{}",
        r.stdout
    );
    steward(&[
        "incidents",
        "step",
        &id,
        "containment",
        "devices wiped remotely",
        "--data-dir",
        s(&data),
    ])
    .ok();
    let r = steward(&[
        "incidents",
        "file",
        &id,
        "cn",
        "initial",
        "--data-dir",
        s(&data),
    ])
    .ok();
    assert!(r.stdout.contains("(filed)"), "{}", r.stdout);
    let r = steward(&["incidents", "notify", &id, "--data-dir", s(&data)]).ok();
    assert!(
        r.stdout.contains("2 affected subjects handled"),
        "{}",
        r.stdout
    );
    let r = steward(&["incidents", "list", "--data-dir", s(&data)]).ok();
    assert_eq!(
        r.stdout.lines().filter(|l| l.starts_with("inc_")).count(),
        2,
        "{}",
        r.stdout
    );
    let r = steward(&[
        "incidents",
        "step",
        &id,
        "escalated",
        "x",
        "--data-dir",
        s(&data),
    ]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("invalid_input"), "{}", r.stderr);
}
