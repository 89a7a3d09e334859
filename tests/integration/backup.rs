//! Backups keep erasure's promise (P20, P28): back up, erase a subject, restore the data
//! backup — the subject stays unreadable and the audit log shows the erasure. On both
//! backends, through the `steward` binary as an operator runs it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use steward_core::clock::SystemClock;
use steward_core::{Actor, Backend, Collect, Error, Read, Source, SubjectId, Vault};
use steward_crypto::MasterKey;
use steward_policy::Policy;

use crate::http::TestBackend;
use crate::kit::{s, steward_env};

const MASTER: &str = "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e";

fn open(backend: &Backend) -> Vault {
    Vault::open_backend(
        backend,
        Policy::example().unwrap(),
        &MasterKey::from_hex(MASTER).unwrap(),
        Arc::new(SystemClock),
        None,
    )
    .unwrap()
}

fn actor(vault: &Vault, role: &str) -> Actor {
    Actor {
        id: format!("test:{role}"),
        role: vault.policy().role_id(role).unwrap(),
    }
}

/// The store arguments naming `backend` on the command line.
fn store_args(backend: &Backend, data_dir: &Path) -> Vec<String> {
    let mut args = vec!["--data-dir".to_string(), s(data_dir).to_string()];
    if let Backend::Postgres { data, keyring } = backend {
        args.extend([
            "--database".into(),
            data.url.clone(),
            "--schema".into(),
            data.schema.clone(),
            "--keyring-schema".into(),
            keyring.schema.clone(),
        ]);
    }
    args
}

fn cli(args: &[String]) -> crate::kit::Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    steward_env(&args, &[("STEWARD_MASTER_KEY", MASTER)])
}

fn read_email(vault: &Vault, subject: SubjectId) -> Result<Vec<steward_core::Value>, Error> {
    vault.read(
        &actor(vault, "service"),
        &Read {
            subject,
            categories: &["email"],
            purpose: "provide_service",
            justification: None,
        },
    )
}

fn backup_then_erase_then_restore(t: &TestBackend) {
    let backend = &t.backend;
    let work = tempfile::tempdir().unwrap();
    let data_dir = match backend {
        Backend::Sqlite { dir } => dir.clone(),
        Backend::Postgres { .. } => work.path().join("data"),
    };
    let (gone, kept) = {
        let vault = open(backend);
        (
            register(&vault, "erased.later@example.cn"),
            register(&vault, "kept@example.cn"),
        )
    };

    let (out, keys_out) = (
        work.path().join("backups"),
        work.path().join("keyring-backups"),
    );
    let mut args = vec!["backup".to_string(), "create".into()];
    args.extend(store_args(backend, &data_dir));
    args.extend([
        "--out".into(),
        s(&out).into(),
        "--keyring-out".into(),
        s(&keys_out).into(),
    ]);
    let r = cli(&args).ok();
    assert!(r.stdout.contains("data backup"), "{}", r.stdout);
    let only = |dir: &Path, prefix: &str| {
        let files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    };
    let data_backup = only(&out, "data-");
    let keyring_backup = only(&keys_out, "keyring-");
    // Encrypted: no stored value appears in either file.
    for f in [&data_backup, &keyring_backup] {
        let bytes = std::fs::read(f).unwrap();
        assert!(bytes.starts_with(b"steward.backup.v1\n"));
        assert!(!bytes.windows(12).any(|w| w == b"kept@example"));
    }

    // Erase one subject after the backup was taken, and sign the log past the backup.
    {
        let vault = open(backend);
        vault
            .erase(&actor(&vault, "privacy_officer"), gone, "subject request")
            .unwrap();
        assert!(read_email(&vault, gone).is_err());
    }
    let mut checkpoint = vec!["audit".to_string(), "checkpoint".into()];
    checkpoint.extend(store_args(backend, &data_dir));
    cli(&checkpoint).ok();
    let journal = data_dir.join("journal").join("checkpoints.jsonl");
    assert!(journal.exists());

    // Restore the data backup over the live data, keeping the live keyring.
    let mut args = vec!["backup".to_string(), "restore".into()];
    args.extend(store_args(backend, &data_dir));
    args.extend(["--data".into(), s(&data_backup).into(), "--replace".into()]);
    let r = cli(&args).ok();
    assert!(
        r.stdout.contains("1 erasures made since re-applied"),
        "{}",
        r.stdout
    );

    // The journal's checkpoints lie beyond the restored log: it is kept aside, named in the
    // restore's entry, and the restored chain is sealed anew.
    assert!(!journal.exists());
    let archived: Vec<_> = std::fs::read_dir(journal.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("checkpoints.jsonl.before-restore-"))
        .collect();
    assert_eq!(archived.len(), 1, "{archived:?}");
    cli(&checkpoint).ok();

    let vault = open(backend);
    // The erased subject stays unreadable; the other is back as it was.
    match read_email(&vault, gone) {
        Err(Error::SubjectErased | Error::KeyDestroyed) => {}
        other => panic!("the erased subject came back with the backup: {other:?}"),
    }
    let values = read_email(&vault, kept).unwrap();
    assert_eq!(values[0].value, "kept@example.cn");
    // The audit log shows the erasure, re-applied, and the restore; it verifies.
    let pseudonym = vault.pseudonym(gone);
    let mut erase_entries = Vec::new();
    let mut restored = false;
    vault
        .store()
        .audit_scan(1, &mut |raw| {
            let e = steward_audit::Entry::decode(raw.bytes, [0; 32]).unwrap();
            if e.action == "subject.erase" && e.subject == pseudonym {
                erase_entries.push(e.detail.clone());
            }
            if e.action == "backup.restore" {
                restored = true;
                assert!(e.detail.contains(&archived[0]), "{}", e.detail);
            }
            true
        })
        .unwrap();
    assert!(
        erase_entries
            .iter()
            .any(|d| d.contains("re-applied after a restore")),
        "{erase_entries:?}"
    );
    assert!(restored);
    let report = steward_core::evidence::verify_store(
        vault.store(),
        vault.public_key(),
        Vec::new(),
        &mut |_| {},
    )
    .unwrap();
    assert!(report.is_ok(), "{report:?}");
    // A data backup cannot be restored as a keyring, nor over a store that holds data.
    let mut args = vec!["backup".to_string(), "restore".into()];
    args.extend(store_args(backend, &data_dir));
    args.extend(["--data".into(), s(&keyring_backup).into()]);
    assert_eq!(cli(&args).code, 1);
}

#[test]
fn p28_restored_sqlite_backup_keeps_erased_subjects_erased() {
    let t = TestBackend::sqlite();
    backup_then_erase_then_restore(&t);
}

#[test]
fn p28_restored_postgres_backup_keeps_erased_subjects_erased() {
    let t = TestBackend::postgres_at(&steward_store::test_url());
    backup_then_erase_then_restore(&t);
}

/// A vault as `serve` opens it: with the erasure journal of `data_dir`.
fn open_journaled(backend: &Backend, data_dir: &Path) -> Vault {
    open(backend).with_erasure_journal(steward_core::erasures::ErasureJournal::new(
        data_dir.join("journal").join("erasures.jsonl"),
    ))
}

fn register(vault: &Vault, email: &str) -> SubjectId {
    let app = actor(vault, "service");
    let subject = vault.register(&app).unwrap();
    vault
        .collect(
            &app,
            &Collect {
                subject,
                feature: "account",
                values: &[("name", "Backup Subject"), ("email", email)],
                source: Source::Subject,
            },
        )
        .unwrap();
    subject
}

/// Backs up `backend` (data and keyring) into `work`; the two files.
fn backup_files(backend: &Backend, data_dir: &Path, work: &Path) -> (PathBuf, PathBuf) {
    let (out, keys_out) = (work.join("backups"), work.join("keyring-backups"));
    let mut args = vec!["backup".to_string(), "create".into()];
    args.extend(store_args(backend, data_dir));
    args.extend([
        "--out".into(),
        s(&out).into(),
        "--keyring-out".into(),
        s(&keys_out).into(),
    ]);
    cli(&args).ok();
    let first = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "stwbak"))
            .unwrap()
    };
    (first(&out), first(&keys_out))
}

fn restore_args(backend: &Backend, data_dir: &Path, data: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["backup".to_string(), "restore".into()];
    args.extend(store_args(backend, data_dir));
    args.extend(["--data".into(), s(data).into()]);
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// P28: a data backup and a keyring backup, both taken before an erasure, restored together
/// into a fresh store, do not bring the erased subject back: the erasure journal (outside the
/// store and every backup) is re-applied. Without a journal that provably covers the backup
/// the restore refuses, writing nothing; the explicit override restores and its audit entry
/// says so. (The old code brought the subject back readable, with no trace of the erasure.)
fn backups_from_before_an_erasure_never_bring_the_subject_back(
    live: &TestBackend,
    fresh: [TestBackend; 3],
) {
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("live");
    let live_backend = match &live.backend {
        Backend::Sqlite { .. } => Backend::Sqlite {
            dir: data_dir.clone(),
        },
        other => other.clone(),
    };
    let (gone, kept) = {
        let vault = open_journaled(&live_backend, &data_dir);
        (
            register(&vault, "gone@example.cn"),
            register(&vault, "kept@example.cn"),
        )
    };
    let (data, keyring) = backup_files(&live_backend, &data_dir, work.path());
    {
        let vault = open_journaled(&live_backend, &data_dir);
        vault
            .erase(&actor(&vault, "privacy_officer"), gone, "subject request")
            .unwrap();
    }
    let journal = data_dir.join("journal").join("erasures.jsonl");
    let lines = std::fs::read_to_string(&journal).unwrap();
    assert!(lines.contains(&gone.to_string()), "{lines}");

    let [with_journal, without, overridden] = fresh;
    let target = |t: &TestBackend, name: &str| -> (Backend, PathBuf) {
        let dir = work.path().join(name);
        match &t.backend {
            Backend::Sqlite { .. } => (Backend::Sqlite { dir: dir.clone() }, dir),
            other => (other.clone(), dir),
        }
    };

    // With the deployment's journal: restored, the erasure applied again.
    let (b, dir) = target(&with_journal, "fresh");
    let r = cli(&restore_args(
        &b,
        &dir,
        &data,
        &["--keyring", s(&keyring), "--erasure-journal", s(&journal)],
    ))
    .ok();
    assert!(
        r.stdout.contains("1 erasures made since re-applied"),
        "{}",
        r.stdout
    );
    let vault = open(&b);
    match read_email(&vault, gone) {
        Err(Error::SubjectErased | Error::KeyDestroyed) => {}
        other => panic!("the erased subject came back: {other:?}"),
    }
    assert_eq!(
        read_email(&vault, kept).unwrap()[0].value,
        "kept@example.cn"
    );
    drop(vault);

    // Without it: refused before anything is written.
    let (b, dir) = target(&without, "no-journal");
    let r = cli(&restore_args(&b, &dir, &data, &["--keyring", s(&keyring)]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("backup_invalid") && r.stderr.contains("cannot show"),
        "{}",
        r.stderr
    );
    assert!(!b.holds(steward_store::Half::Data).unwrap());
    assert!(!b.holds(steward_store::Half::Keyring).unwrap());

    // The override for a disaster that took the journal too: restored, and audited as such.
    let (b, dir) = target(&overridden, "overridden");
    let r = cli(&restore_args(
        &b,
        &dir,
        &data,
        &["--keyring", s(&keyring), "--accept-unknown-erasures"],
    ))
    .ok();
    assert!(r.stderr.contains("WITHOUT proof"), "{}", r.stderr);
    let vault = open(&b);
    let mut unverified = false;
    vault
        .store()
        .audit_scan(1, &mut |raw| {
            let e = steward_audit::Entry::decode(raw.bytes, [0; 32]).unwrap();
            unverified |=
                e.action == "backup.restore" && e.detail.contains("\"erasures_unverified\":true");
            true
        })
        .unwrap();
    assert!(unverified);
}

#[test]
fn p28_sqlite_backups_from_before_an_erasure_never_bring_the_subject_back() {
    backups_from_before_an_erasure_never_bring_the_subject_back(
        &TestBackend::sqlite(),
        [
            TestBackend::sqlite(),
            TestBackend::sqlite(),
            TestBackend::sqlite(),
        ],
    );
}

#[test]
fn p28_postgres_backups_from_before_an_erasure_never_bring_the_subject_back() {
    let url = steward_store::test_url();
    backups_from_before_an_erasure_never_bring_the_subject_back(
        &TestBackend::postgres_at(&url),
        [
            TestBackend::postgres_at(&url),
            TestBackend::postgres_at(&url),
            TestBackend::postgres_at(&url),
        ],
    );
}

/// P20: `restore --replace` checks everything before it replaces anything: a damaged data
/// backup, a damaged keyring backup or a backup made under another key leaves the live store
/// as it was, whole and readable. A target with no keyring is refused unless asked for.
/// (The old code deleted the live `steward.db` first, then refused.)
fn replace_checks_first(t: &TestBackend) {
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("live");
    let backend = match &t.backend {
        Backend::Sqlite { .. } => Backend::Sqlite {
            dir: data_dir.clone(),
        },
        other => other.clone(),
    };
    let subject = register(&open_journaled(&backend, &data_dir), "stays@example.cn");
    let (data, keyring) = backup_files(&backend, &data_dir, work.path());
    let damaged = |f: &Path, name: &str| {
        let mut bytes = std::fs::read(f).unwrap();
        bytes.truncate(bytes.len() - 10);
        let to = work.path().join(name);
        std::fs::write(&to, bytes).unwrap();
        to
    };
    let (bad_data, bad_keyring) = (damaged(&data, "bad-data"), damaged(&keyring, "bad-keyring"));
    for (what, args) in [
        (
            "a damaged data backup",
            restore_args(&backend, &data_dir, &bad_data, &["--replace"]),
        ),
        (
            "a damaged keyring backup",
            restore_args(
                &backend,
                &data_dir,
                &data,
                &["--keyring", s(&bad_keyring), "--replace"],
            ),
        ),
        (
            "a keyring backup as data",
            restore_args(&backend, &data_dir, &keyring, &["--replace"]),
        ),
        (
            "no --replace",
            restore_args(&backend, &data_dir, &data, &["--keyring", s(&keyring)]),
        ),
    ] {
        let r = cli(&args);
        assert_eq!(r.code, 1, "{what}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("backup_invalid"), "{what}: {}", r.stderr);
        let vault = open(&backend);
        assert_eq!(
            read_email(&vault, subject).unwrap()[0].value,
            "stays@example.cn",
            "{what}"
        );
    }
    let r = cli(&restore_args(
        &backend,
        &data_dir,
        &data,
        &["--keyring", s(&keyring), "--replace"],
    ))
    .ok();
    assert!(r.stdout.contains("restored"), "{}", r.stdout);
    assert_eq!(
        read_email(&open(&backend), subject).unwrap()[0].value,
        "stays@example.cn"
    );

    // A fresh target and no keyring backup: refused, unless asked for.
    let fresh = work.path().join("fresh");
    let fresh_backend = match &t.backend {
        Backend::Sqlite { .. } => Backend::Sqlite { dir: fresh.clone() },
        Backend::Postgres { .. } => TestBackend::postgres_at(&steward_store::test_url())
            .backend
            .clone(),
    };
    let journal = data_dir.join("journal").join("erasures.jsonl");
    let r = cli(&restore_args(
        &fresh_backend,
        &fresh,
        &data,
        &["--erasure-journal", s(&journal)],
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no keyring"), "{}", r.stderr);
    assert!(!fresh_backend.holds(steward_store::Half::Data).unwrap());
    if let Backend::Postgres { data, keyring } = &fresh_backend {
        let _ = data.drop_schema();
        let _ = keyring.drop_schema();
    }
}

#[test]
fn p20_sqlite_restore_replace_checks_everything_before_it_replaces() {
    replace_checks_first(&TestBackend::sqlite());
}

#[test]
fn p20_postgres_restore_replace_checks_everything_before_it_replaces() {
    replace_checks_first(&TestBackend::postgres_at(&steward_store::test_url()));
}
