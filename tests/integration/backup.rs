//! Backups keep erasure's promise (P20, P28): back up, erase a subject, restore the data
//! backup — the subject stays unreadable and the audit log shows the erasure. On both
//! backends, through the `steward` binary as an operator runs it.

use std::path::Path;
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
        let app = actor(&vault, "service");
        let mut made = Vec::new();
        for email in ["erased.later@example.cn", "kept@example.cn"] {
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
            made.push(subject);
        }
        (made[0], made[1])
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
