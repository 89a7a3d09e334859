use std::path::Path;
use std::sync::Arc;

use steward_crypto::MasterKey;
use steward_policy::Policy;

use crate::clock::{Clock, ManualClock};
use crate::evidence::{verify_document, verify_store};
use crate::*;

struct Kit {
    vault: Vault,
    clock: Arc<ManualClock>,
    service: Actor,
    officer: Actor,
    dir: tempfile::TempDir,
    backend: Backend,
    /// Subjects [`Kit::subject_with_account`] made: each gets sign-in values of its own.
    accounts: std::sync::atomic::AtomicUsize,
    /// Dropped after the vault: PostgreSQL schemas go once nothing uses them.
    _schemas: Schemas,
}

/// The PostgreSQL schemas a kit made, dropped with it.
struct Schemas(Option<(PgTarget, PgTarget)>);

impl Drop for Schemas {
    fn drop(&mut self) {
        if let Some((data, keyring)) = &self.0 {
            let _ = data.drop_schema();
            let _ = keyring.drop_schema();
        }
    }
}

fn master() -> MasterKey {
    MasterKey::from_hex(&"42".repeat(32)).unwrap()
}

fn open(dir: &Path, clock: Arc<ManualClock>) -> Vault {
    Vault::open_sqlite(dir, Policy::example().unwrap(), &master(), clock, None).unwrap()
}

fn open_backend(backend: &Backend, clock: Arc<ManualClock>) -> Vault {
    Vault::open_backend(backend, Policy::example().unwrap(), &master(), clock, None).unwrap()
}

/// A fresh store on the backend the tests run on: the embedded one, or PostgreSQL (schemas
/// of the kit's own, dropped with it) when `STEWARD_TEST_BACKEND=postgres`; `tools/test` runs
/// these tests both ways.
fn kit() -> Kit {
    kit_with(Policy::example().unwrap())
}

/// [`kit`] under another policy.
fn kit_with(policy: Policy) -> Kit {
    let dir = tempfile::tempdir().unwrap();
    let backend = match std::env::var("STEWARD_TEST_BACKEND").as_deref() {
        Ok("postgres") => {
            let url = steward_store::test_url();
            let data = PgTarget::unique(&url, "core").unwrap();
            let keyring = PgTarget::new(&url, &format!("{}_keys", data.schema)).unwrap();
            Backend::Postgres { data, keyring }
        }
        _ => Backend::Sqlite {
            dir: dir.path().to_path_buf(),
        },
    };
    kit_on(dir, backend, policy)
}

/// A kit on the embedded store whatever the run's backend: for tests that read its files.
fn sqlite_kit() -> Kit {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::Sqlite {
        dir: dir.path().to_path_buf(),
    };
    kit_on(dir, backend, Policy::example().unwrap())
}

fn kit_on(dir: tempfile::TempDir, backend: Backend, policy: Policy) -> Kit {
    let clock = Arc::new(ManualClock::new(1_767_225_600_000));
    let vault = Vault::open_backend(&backend, policy, &master(), clock.clone(), None)
        .unwrap()
        .with_journal(crate::evidence::Journal::new(journal_path(dir.path())));
    let service = Actor {
        id: "service:app".into(),
        role: vault.policy().role_id("service").unwrap(),
    };
    let officer = Actor {
        id: "staff:officer".into(),
        role: vault.policy().role_id("privacy_officer").unwrap(),
    };
    Kit {
        vault,
        clock,
        service,
        officer,
        dir,
        accounts: std::sync::atomic::AtomicUsize::new(0),
        _schemas: Schemas(match &backend {
            Backend::Postgres { data, keyring } => Some((data.clone(), keyring.clone())),
            Backend::Sqlite { .. } => None,
        }),
        backend,
    }
}

fn journal_path(dir: &Path) -> std::path::PathBuf {
    dir.join("journal").join("checkpoints.jsonl")
}

impl Kit {
    /// Another vault on the kit's store, as a restart opens it.
    fn reopen(&self) -> Result<Vault, Error> {
        Vault::open_backend(
            &self.backend,
            Policy::example().unwrap(),
            &master(),
            self.clock.clone(),
            None,
        )
    }

    /// Runs SQL on the store behind the vault's back, as someone with write access to the
    /// database would: `sqlite` on the embedded store, `postgres` (where `{schema}` names the
    /// data schema) on PostgreSQL.
    fn sql(&self, sqlite: &str, postgres: &str) {
        match &self.backend {
            Backend::Sqlite { dir } => {
                let conn = rusqlite::Connection::open(dir.join(files::DATA)).unwrap();
                conn.execute_batch(sqlite).unwrap();
            }
            Backend::Postgres { data, .. } => {
                let sql = postgres.replace("{schema}", &data.schema);
                let out = std::process::Command::new("psql")
                    .args([data.url.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", &sql])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }

    /// A subject with an account; the first of a kit has `li.lei@example.cn` and
    /// `+86 138 0000 0000`, each later one values of its own (a lookup value belongs to one
    /// subject, P25).
    fn subject_with_account(&self) -> SubjectId {
        let n = self
            .accounts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (email, phone) = if n == 0 {
            (
                "li.lei@example.cn".to_string(),
                "+86 138 0000 0000".to_string(),
            )
        } else {
            (format!("li.lei+{n}@example.cn"), format!("+86 138 {n:08}"))
        };
        let s = self.vault.register(&self.service).unwrap();
        self.vault
            .collect(
                &self.service,
                &Collect {
                    subject: s,
                    feature: "account",
                    values: &[("name", "Li Lei"), ("email", &email), ("phone", &phone)],
                    source: Source::Subject,
                },
            )
            .unwrap();
        s
    }

    fn read(&self, s: SubjectId, cats: &[&str], purpose: &str) -> Result<Vec<Value>, Error> {
        self.vault.read(
            &self.service,
            &Read {
                subject: s,
                categories: cats,
                purpose,
                justification: None,
            },
        )
    }

    fn consent(&self, s: SubjectId, target: &str, granted: bool, separate: bool) {
        let t = self.vault.consent_target(target).unwrap();
        self.vault
            .consent(&self.service, s, t, granted, separate, "web")
            .unwrap();
    }

    /// The audit entries from `seq` on, decoded.
    fn entries_from(&self, seq: u64) -> Vec<steward_audit::Entry> {
        let mut out = Vec::new();
        self.vault
            .store()
            .audit_scan(seq, &mut |e| {
                out.push(
                    steward_audit::Entry::decode(e.bytes, e.hash.try_into().unwrap()).unwrap(),
                );
                true
            })
            .unwrap();
        out
    }

    /// A request of `kind` for `s`, opened by the officer and verified by `method`.
    fn verified_request(&self, s: SubjectId, kind: &str, method: &str) -> RightsRequest {
        let req = self
            .vault
            .open_request(&self.officer, s, kind, None, None)
            .unwrap();
        self.vault
            .verify_request(&self.officer, &req.id, method)
            .unwrap()
    }

    fn verify(&self) -> Result<steward_audit::Report, steward_audit::Fault> {
        verify_store(
            self.vault.store(),
            self.vault.public_key(),
            Vec::new(),
            &mut |_| {},
        )
        .unwrap()
    }
}

mod cases;
mod external;
mod visitors;

#[test]
fn p03_undeclared_and_missing_required_categories_are_refused() {
    let k = kit();
    let s = k.vault.register(&k.service).unwrap();
    let err = k
        .vault
        .collect(
            &k.service,
            &Collect {
                subject: s,
                feature: "sms",
                values: &[("phone", "1"), ("email", "a@b.c")],
                source: Source::Subject,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "category_not_declared");
    assert!(!err.to_string().contains("a@b.c"));
    let err = k
        .vault
        .collect(
            &k.service,
            &Collect {
                subject: s,
                feature: "account",
                values: &[("name", "x")],
                source: Source::Subject,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "required_category_missing");
    assert!(k.vault.store().records(&s.0).unwrap().is_empty());
    // Both refusals are in the log.
    let report = k.verify().unwrap();
    assert!(report.entries >= 4);
}

#[test]
fn p05_sensitive_category_needs_separate_consent() {
    let k = kit();
    let s = k.subject_with_account();
    let face = Collect {
        subject: s,
        feature: "face_recognition",
        values: &[("face_image", "<jpeg bytes>")],
        source: Source::Subject,
    };
    assert_eq!(
        k.vault.collect(&k.service, &face).unwrap_err().code(),
        "consent_required"
    );
    k.consent(s, "feature:face_recognition", true, false);
    assert_eq!(
        k.vault.collect(&k.service, &face).unwrap_err().code(),
        "separate_consent_required"
    );
    k.consent(s, "feature:face_recognition", true, true);
    k.vault.collect(&k.service, &face).unwrap();
    k.consent(s, "purpose:face_verification", true, false);
    assert_eq!(
        k.read(s, &["face_image"], "face_verification")
            .unwrap()
            .len(),
        1
    );
    // P27: withdrawing the separate consent stops reads of what it covered at once.
    k.consent(s, "feature:face_recognition", false, false);
    assert_eq!(
        k.read(s, &["face_image"], "face_verification")
            .unwrap_err()
            .code(),
        "separate_consent_required"
    );
}

#[test]
fn p06_p09_reads_return_values_with_source_and_refuse_undeclared_purposes() {
    let k = kit();
    let s = k.subject_with_account();
    let v = k.read(s, &["email"], "provide_service").unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].value, "li.lei@example.cn");
    assert_eq!(v[0].source, "subject");
    let err = k.read(s, &["phone"], "surveys").unwrap_err();
    assert_eq!(err.code(), "purpose_not_allowed");
    assert!(err.to_string().contains("purposes.surveys.reads"));
    assert_eq!(
        k.read(s, &["email"], "no_such").unwrap_err().code(),
        "unknown_purpose"
    );
}

#[test]
fn p27_withdrawn_consent_stops_marketing_reads() {
    let k = kit();
    let s = k.subject_with_account();
    assert_eq!(
        k.read(s, &["email"], "relevant_offers").unwrap_err().code(),
        "consent_required"
    );
    k.consent(s, "purpose:relevant_offers", true, false);
    assert_eq!(k.read(s, &["email"], "relevant_offers").unwrap().len(), 1);
    k.consent(s, "purpose:relevant_offers", false, false);
    assert_eq!(
        k.read(s, &["email"], "relevant_offers").unwrap_err().code(),
        "consent_required"
    );
    let history = k.vault.store().consent_history(&s.0).unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[0].granted && !history[1].granted);
}

#[test]
fn p10_essential_purpose_cannot_take_consent() {
    let k = kit();
    let s = k.subject_with_account();
    let t = k.vault.consent_target("purpose:provide_service").unwrap();
    let err = k
        .vault
        .consent(&k.service, s, t, false, false, "web")
        .unwrap_err();
    assert_eq!(err.code(), "consent_not_applicable");
}

#[test]
fn p21_staff_reads_need_justification_and_are_audited() {
    let k = kit();
    let s = k.subject_with_account();
    let support = Actor {
        id: "staff:wang".into(),
        role: k.vault.policy().role_id("support").unwrap(),
    };
    let mut read = Read {
        subject: s,
        categories: &["phone"],
        purpose: "support",
        justification: None,
    };
    assert_eq!(
        k.vault.read(&support, &read).unwrap_err().code(),
        "justification_required"
    );
    read.justification = Some("ticket 4411: customer asked for a call back");
    assert_eq!(k.vault.read(&support, &read).unwrap().len(), 1);
    let actions: Vec<String> = k
        .entries_from(1)
        .iter()
        .map(|e| format!("{} {} {}", e.actor, e.action, e.outcome))
        .collect();
    assert!(actions.contains(&"staff:wang pi.read refused".to_string()));
    assert!(actions.contains(&"staff:wang pi.read granted".to_string()));
}

#[test]
fn p13_disclosure_outside_registered_scope_is_refused_and_recorded_inside() {
    let k = kit();
    let s = k.subject_with_account();
    let err = k
        .vault
        .disclose(
            &k.service,
            s,
            "sms_gateway",
            &["email"],
            "provide_service",
            None,
        )
        .unwrap_err();
    assert_eq!(err.code(), "disclosure_out_of_scope");
    let err = k
        .vault
        .disclose(
            &k.service,
            s,
            "sms_gateway",
            &["phone"],
            "relevant_offers",
            None,
        )
        .unwrap_err();
    assert_eq!(err.code(), "disclosure_out_of_scope");
    let v = k
        .vault
        .disclose(
            &k.service,
            s,
            "sms_gateway",
            &["phone"],
            "provide_service",
            None,
        )
        .unwrap();
    assert_eq!(v.len(), 1);
    let d = k.vault.store().disclosures(&s.0).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].recipient, "sms_gateway");
    assert!(d[0].audit_seq > 0);
}

#[test]
fn p16_transfer_abroad_needs_separate_consent() {
    let k = kit();
    let s = k.subject_with_account();
    let err = k
        .vault
        .disclose(
            &k.service,
            s,
            "intl_affiliate",
            &["email"],
            "provide_service",
            None,
        )
        .unwrap_err();
    assert_eq!(err.code(), "consent_required");
    k.consent(s, "recipient:intl_affiliate", true, true);
    k.vault
        .disclose(
            &k.service,
            s,
            "intl_affiliate",
            &["email"],
            "provide_service",
            None,
        )
        .unwrap();
}

#[test]
fn p16_store_in_disallowed_region_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Vault::open_sqlite(
        dir.path(),
        Policy::example().unwrap(),
        &master(),
        Arc::new(ManualClock::new(0)),
        Some("eu-west"),
    )
    .err()
    .unwrap();
    assert_eq!(err.code(), "region_not_allowed");
}

#[test]
fn p19_linked_identities_find_one_subject() {
    let k = kit();
    let s = k.subject_with_account();
    k.vault
        .collect(
            &k.service,
            &Collect {
                subject: s,
                feature: "account",
                values: &[
                    ("name", "Li Lei"),
                    ("email", "li.lei@example.cn"),
                    ("im_account", "wx:lilei88"),
                ],
                source: Source::ThirdParty("instant messenger sign-in".into()),
            },
        )
        .unwrap();
    assert_eq!(
        k.vault
            .find(&k.service, "email", " Li.Lei@Example.cn")
            .unwrap(),
        Some(s)
    );
    assert_eq!(
        k.vault
            .find(&k.service, "im_account", "wx:lilei88")
            .unwrap(),
        Some(s)
    );
    assert_eq!(
        k.vault
            .find(&k.service, "phone", "+86 138 0000 0000")
            .unwrap(),
        Some(s)
    );
    assert_eq!(
        k.vault
            .find(&k.service, "email", "nobody@example.cn")
            .unwrap(),
        None
    );
    assert_eq!(
        k.vault
            .find(&k.service, "name", "Li Lei")
            .unwrap_err()
            .code(),
        "category_not_lookup"
    );
}

#[test]
fn p20_ciphertext_swapped_between_rows_fails_to_open() {
    let k = sqlite_kit();
    let a = k.subject_with_account();
    let b = k.subject_with_account();
    let of = |s: SubjectId, cat: &str| -> Vec<steward_store::RecordRow> {
        let rows = k.vault.store().records(&s.0).unwrap();
        rows.into_iter().filter(|r| r.category == cat).collect()
    };
    let ra = of(a, "email");
    let rb = of(b, "name");
    // Put b's sealed name into a's email row, and a's email into a's name row.
    let db = k.dir.path().join(files::DATA);
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute(
        "UPDATE records SET sealed = ?1 WHERE id = ?2",
        rusqlite::params![rb[0].sealed, ra[0].id],
    )
    .unwrap();
    drop(conn);
    let err = k.read(a, &["email"], "provide_service").unwrap_err();
    assert_eq!(err.code(), "integrity_failure");
    assert!(!err.to_string().contains("Li Lei"));
}

#[test]
fn p23_export_has_values_consent_history_and_disclosures() {
    let k = kit();
    let s = k.subject_with_account();
    k.consent(s, "purpose:surveys", true, false);
    k.vault
        .disclose(
            &k.service,
            s,
            "sms_gateway",
            &["phone"],
            "provide_service",
            None,
        )
        .unwrap();
    let e = k
        .vault
        .export(&k.officer, s, Some("the subject asked"))
        .unwrap();
    assert_eq!(e.records.len(), 3);
    assert_eq!(e.records[1].taxonomy, "user.contact.email");
    assert_eq!(e.consent_history.len(), 1);
    assert_eq!(e.disclosures.len(), 1);
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["type"], "steward.subject-export.v1");
}

#[test]
fn p28_erasure_shreds_key_and_a_copy_taken_before_stays_unreadable() {
    let k = sqlite_kit();
    let s = k.subject_with_account();
    let other = k.subject_with_account();
    // Take a consistent copy of the data file before the erasure.
    let copy = k.dir.path().join("before-erasure.db");
    k.vault.store().commit(vec![], vec![]).unwrap();
    let conn = rusqlite::Connection::open(k.dir.path().join(files::DATA)).unwrap();
    conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    drop(conn);

    let cert = k.vault.erase(&k.officer, s, "subject request").unwrap();
    let payload = verify_document(&cert, Some(k.vault.public_key())).unwrap();
    assert_eq!(payload["type"], "steward.erasure-certificate.v1");
    assert_eq!(payload["subject"], s.to_string());
    assert_eq!(
        k.read(s, &["email"], "provide_service").unwrap_err().code(),
        "subject_erased"
    );

    // Restore the old data file next to the current keyring: the subject looks active again,
    // but the key is gone, so nothing of theirs can be read. The other subject still reads.
    let clock = k.clock.clone();
    let dir = k.dir.path().to_path_buf();
    drop(k.vault);
    for f in ["steward.db-wal", "steward.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    std::fs::copy(&copy, dir.join(files::DATA)).unwrap();
    let vault = open(&dir, clock);
    let read = |s| {
        vault.read(
            &k.service,
            &Read {
                subject: s,
                categories: &["email"],
                purpose: "provide_service",
                justification: None,
            },
        )
    };
    assert_eq!(read(s).unwrap_err().code(), "data_key_destroyed");
    assert_eq!(read(other).unwrap()[0].value, "li.lei+1@example.cn");
}

#[test]
fn p28_erasure_cost_is_key_destruction_and_purge_is_resumable() {
    let k = kit();
    let s = k.subject_with_account();
    let usage: Vec<(&str, &str)> = vec![
        ("ip_address", "10.0.0.1"),
        ("access_time", "2026-01-01T00:00:00Z"),
    ];
    for _ in 0..25 {
        k.vault
            .collect(
                &k.service,
                &Collect {
                    subject: s,
                    feature: "usage_logging",
                    values: &usage,
                    source: Source::Observed,
                },
            )
            .unwrap();
    }
    k.vault.erase(&k.officer, s, "account closed").unwrap();
    assert_eq!(k.vault.store().records(&s.0).unwrap().len(), 53);
    // Stop after the first batch, as a crash would.
    assert_eq!(k.vault.store().purge_records(&s.0, 10).unwrap(), 10);
    let mut seen = 0;
    let p = k.vault.purge(10, &mut |n| seen = n).unwrap();
    assert_eq!(p.subjects_done, 1);
    assert_eq!(p.records_deleted, 43);
    assert_eq!(seen, 43);
    assert!(k.vault.store().records(&s.0).unwrap().is_empty());
    assert_eq!(
        k.vault.store().subject(&s.0).unwrap().unwrap().state,
        steward_store::SubjectState::Erased
    );
    assert_eq!(
        k.vault.purge(10, &mut |_| {}).unwrap(),
        PurgeProgress::default()
    );
    assert_eq!(
        k.vault
            .find(&k.service, "email", "li.lei@example.cn")
            .unwrap(),
        None
    );
}

/// P33: verification hands the log to its checking thread in chunks; a fault deep in a long
/// log, many chunks in, is named, and so is the one right after a chunk boundary.
/// P33: a long log is verified in two halves at once (`verify_store`); a fault in either
/// half, at the join between them or in a checkpoint of the second half is named by its seq
/// exactly as one pass would name it.
#[test]
fn p33_a_fault_anywhere_in_a_long_log_is_named() {
    let k = kit();
    let s = k.subject_with_account();
    let _ = k.read(s, &["email"], "provide_service");
    // Enough entries to be verified in two halves; a checkpoint in each.
    let act = |i: usize| steward_audit::Draft {
        at_ms: 1_800_000_000_000,
        actor: "service:app".into(),
        role: "service".into(),
        action: "pi.read".into(),
        outcome: steward_audit::Outcome::Granted,
        subject: String::new(),
        purpose: "provide_service".into(),
        categories: "email".into(),
        detail: format!("{{\"records\":{i}}}"),
        policy_version: "2026.1".into(),
    };
    let store = k.vault.store();
    store
        .commit(vec![], (0..10_000).map(act).collect())
        .unwrap();
    k.vault.checkpoint().unwrap();
    store
        .commit(vec![], (0..15_000).map(act).collect())
        .unwrap();
    k.vault.checkpoint().unwrap();
    store.commit(vec![], (0..100).map(act).collect()).unwrap();
    let report = k.verify().unwrap();
    let last = report.head_seq;
    assert!(last > 25_000 && report.checkpoints == 2 && report.unsealed == 100);
    let join = last / 2 + 1;
    for seq in [2, join - 1, join, join + 1, 20_000, last - 50, last] {
        let original = k.entries_from(seq).swap_remove(0);
        let mut changed = original.clone();
        changed.detail.push(' ');
        store_entries(&k, std::slice::from_ref(&changed));
        assert_eq!(
            k.verify().unwrap_err(),
            steward_audit::Fault::Altered { seq },
            "an entry altered at {seq}"
        );
        // Re-hashed: then the next entry's link breaks (the last, unsealed, has none).
        changed.hash = steward_audit::sha256(&changed.encode());
        store_entries(&k, std::slice::from_ref(&changed));
        if seq == last {
            assert!(k.verify().is_ok());
        } else {
            assert_eq!(
                k.verify().unwrap_err(),
                steward_audit::Fault::BrokenLink { seq: seq + 1 },
                "an entry rewritten at {seq}"
            );
        }
        store_entries(&k, std::slice::from_ref(&original));
    }
    assert_eq!(k.verify().unwrap().entries, report.entries);
    // Entries deleted: in the first half, at the join, in the second half.
    for seq in [20_000, join, 700] {
        k.sql(
            &format!("DELETE FROM audit WHERE seq = {seq}"),
            &format!("DELETE FROM {{schema}}.audit WHERE seq = {seq}"),
        );
        assert_eq!(
            k.verify().unwrap_err(),
            steward_audit::Fault::Sequence {
                expected: seq,
                found: seq + 1
            },
            "entry {seq} deleted"
        );
    }
}

#[test]
fn p33_store_log_verifies_and_tampering_is_named() {
    let k = sqlite_kit();
    let s = k.subject_with_account();
    let _ = k.read(s, &["email"], "provide_service");
    k.vault.checkpoint().unwrap();
    let report = k.verify().unwrap();
    assert_eq!(report.unsealed, 0);
    let conn = rusqlite::Connection::open(k.dir.path().join(files::DATA)).unwrap();
    let original: Vec<u8> = conn
        .query_row("SELECT entry FROM audit WHERE seq = 5", [], |r| r.get(0))
        .unwrap();
    let mut changed = original.clone();
    *changed.last_mut().unwrap() ^= 1;
    conn.execute("UPDATE audit SET entry = ?1 WHERE seq = 5", [&changed])
        .unwrap();
    assert_eq!(
        k.verify().unwrap_err(),
        steward_audit::Fault::Altered { seq: 5 }
    );
    conn.execute("UPDATE audit SET entry = ?1 WHERE seq = 5", [&original])
        .unwrap();
    k.verify().unwrap();
    conn.execute("UPDATE audit SET hash = 'x' WHERE seq = 3", [])
        .unwrap();
    assert_eq!(k.verify().unwrap_err().seq(), Some(3));
}

#[test]
fn p33_consent_receipt_verifies_offline() {
    let k = kit();
    let s = k.subject_with_account();
    let t = k.vault.consent_target("purpose:surveys").unwrap();
    let receipt = k
        .vault
        .consent(&k.service, s, t, true, false, "app")
        .unwrap();
    let payload = verify_document(&receipt, None).unwrap();
    assert_eq!(payload["target"], "purpose:surveys");
    let mut forged = receipt.clone();
    forged.payload = forged.payload.replace('A', "B");
    assert!(verify_document(&forged, None).is_err());
}

/// Consent changes committed together: each answered in order with its own receipt and audit
/// entry; a refused change fails alone and the others still commit (P10, P27, P33).
#[test]
fn p27_consents_committed_together_each_stand_alone() {
    let k = kit();
    let (a, b) = (k.subject_with_account(), k.subject_with_account());
    let surveys = k.vault.consent_target("purpose:surveys").unwrap();
    let offers = k.vault.consent_target("purpose:relevant_offers").unwrap();
    let change = |subject, target, granted, channel| crate::ConsentChange {
        actor: &k.service,
        subject,
        target,
        granted,
        separate: false,
        channel,
        gpc: false,
        action: None,
    };
    let head = k.vault.store().audit_head().unwrap().0;
    let answers = k.vault.consent_each(&[
        change(a, surveys, true, "web"),
        change(b, offers, true, ""),
        change(b, offers, true, "app"),
        change(a, surveys, false, "app"),
    ]);
    assert!(matches!(answers[1], Err(Error::Invalid(_))));
    let seqs: Vec<u64> = [0, 2, 3]
        .iter()
        .map(|&i| {
            let receipt = answers[i].as_ref().unwrap();
            verify_document(receipt, None).unwrap()["audit_seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [head + 1, head + 2, head + 3]);
    let in_force = |s| {
        k.vault
            .consents_in_force(&k.service, s)
            .unwrap()
            .into_iter()
            .map(|c| (c.target, c.granted))
            .collect::<Vec<_>>()
    };
    assert!(in_force(a).contains(&("purpose:surveys".to_string(), false)));
    assert!(in_force(b).contains(&("purpose:relevant_offers".to_string(), true)));
    k.verify().unwrap();
}

#[test]
fn vault_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Vault>();
}

#[test]
fn p21_roles_without_an_operation_are_refused_and_audited() {
    let k = kit();
    let s = k.subject_with_account();
    let role = |name| Actor {
        id: format!("staff:{name}"),
        role: k.vault.policy().role_id(name).unwrap(),
    };
    let (auditor, marketing) = (role("auditor"), role("marketing"));
    let read = Read {
        subject: s,
        categories: &["email"],
        purpose: "provide_service",
        justification: Some("audit sample"),
    };
    assert_eq!(
        k.vault.read(&auditor, &read).unwrap_err().code(),
        "operation_not_permitted"
    );
    assert_eq!(
        k.vault.erase(&marketing, s, "no").unwrap_err().code(),
        "operation_not_permitted"
    );
    assert_eq!(
        k.vault.export(&k.service, s, None).unwrap_err().code(),
        "operation_not_permitted"
    );
    assert_eq!(
        k.vault.register(&auditor).unwrap_err().code(),
        "operation_not_permitted"
    );
    k.vault.audit_access(&auditor, "checkpoints").unwrap();
    assert_eq!(
        k.vault
            .audit_access(&marketing, "checkpoints")
            .unwrap_err()
            .code(),
        "operation_not_permitted"
    );
    // Every refusal above is in the log, as a refusal.
    let refused = k
        .entries_from(1)
        .iter()
        .filter(|e| e.outcome == "refused" && e.detail.contains("operation_not_permitted"))
        .count();
    assert_eq!(refused, 5);
}

#[test]
fn p21_api_keys_authenticate_as_their_role_until_revoked() {
    let k = sqlite_kit();
    let (info, token) = k.vault.create_api_key("billing", "service").unwrap();
    let actor = k.vault.authenticate(&token).unwrap();
    assert_eq!(actor.id, "service:billing");
    assert_eq!(actor.role, k.vault.policy().role_id("service").unwrap());
    let mut wrong = token.clone();
    wrong.pop();
    wrong.push(if token.ends_with('0') { '1' } else { '0' });
    for bad in [wrong.as_str(), "stw_", "", "Bearer x", &token[..20]] {
        assert_eq!(
            k.vault.authenticate(bad).unwrap_err().code(),
            "unauthenticated"
        );
    }
    // Only a digest is stored: the secret is nowhere in the data file.
    let secret = token.rsplit('_').next().unwrap();
    let raw = hex::decode(secret).unwrap();
    let db = std::fs::read(k.dir.path().join(files::DATA)).unwrap();
    let wal = std::fs::read(k.dir.path().join("steward.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(raw.len()).any(|w| w == raw.as_slice()));
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    k.vault.revoke_api_key(&info.id).unwrap();
    assert_eq!(
        k.vault.authenticate(&token).unwrap_err().code(),
        "unauthenticated"
    );
    assert!(k.vault.api_keys().unwrap()[0].revoked);
    assert_eq!(
        k.vault.create_api_key("x", "wizard").unwrap_err().code(),
        "unknown_role"
    );
}

fn usage(k: &Kit, s: SubjectId) {
    k.vault
        .collect(
            &k.service,
            &Collect {
                subject: s,
                feature: "usage_logging",
                values: &[
                    ("ip_address", "10.1.2.3"),
                    ("access_time", "2026-01-01T00:00:00Z"),
                ],
                source: Source::Observed,
            },
        )
        .unwrap();
}

fn categories_held(k: &Kit, s: SubjectId) -> Vec<String> {
    let mut c: Vec<String> = k
        .vault
        .store()
        .records(&s.0)
        .unwrap()
        .into_iter()
        .map(|r| r.category)
        .collect();
    c.sort();
    c
}

#[test]
fn p17_retention_sweep_deletes_expired_values_and_is_idempotent() {
    let k = kit();
    let s = k.subject_with_account();
    usage(&k, s);
    // ip_address and access_time are kept 180 days after collection.
    k.clock.advance(179 * DAY_MS);
    let r = k.vault.retention_sweep(false, 100, &mut |_| {}).unwrap();
    assert_eq!(r.records_deleted, 0);
    usage(&k, s);
    k.clock.advance(2 * DAY_MS);
    let dry = k.vault.retention_sweep(true, 1, &mut |_| {}).unwrap();
    assert_eq!((dry.dry_run, dry.records_deleted), (true, 2));
    assert_eq!(k.vault.store().records(&s.0).unwrap().len(), 7);
    let mut steps = 0;
    let r = k
        .vault
        .retention_sweep(false, 1, &mut |_| steps += 1)
        .unwrap();
    assert_eq!(r.records_deleted, 2);
    assert!(steps >= 2, "progress is reported per batch");
    // The newer usage values and the account values stay.
    assert_eq!(
        categories_held(&k, s),
        ["access_time", "email", "ip_address", "name", "phone"]
    );
    assert_eq!(
        k.vault
            .retention_sweep(false, 1, &mut |_| {})
            .unwrap()
            .records_deleted,
        0
    );
}

#[test]
fn p18_legal_hold_pauses_retention_and_erasure_until_lifted() {
    let k = kit();
    let s = k.subject_with_account();
    usage(&k, s);
    let hold = k
        .vault
        .place_hold(
            &k.officer,
            s,
            &["ip_address"],
            "court_order",
            "(2026) Zhe 01 No. 123",
            k.clock.now_ms() + 400 * DAY_MS,
        )
        .unwrap();
    assert!(hold.active);
    k.clock.advance(200 * DAY_MS);
    let r = k.vault.retention_sweep(false, 10, &mut |_| {}).unwrap();
    assert_eq!((r.records_deleted, r.records_held), (1, 1));
    assert!(categories_held(&k, s).contains(&"ip_address".to_string()));
    let err = k.vault.erase(&k.officer, s, "subject request").unwrap_err();
    assert_eq!(err.code(), "legal_hold");
    assert_eq!(
        k.vault
            .place_hold(
                &k.service,
                s,
                &[],
                "dispute",
                "x",
                k.clock.now_ms() + DAY_MS
            )
            .unwrap_err()
            .code(),
        "operation_not_permitted"
    );
    assert_eq!(
        k.vault
            .place_hold(&k.officer, s, &[], "whim", "x", k.clock.now_ms() + DAY_MS)
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    k.vault.lift_hold(&k.officer, &hold.id).unwrap();
    assert!(!k.vault.holds(&k.officer, s).unwrap()[0].active);
    assert_eq!(
        k.vault
            .retention_sweep(false, 10, &mut |_| {})
            .unwrap()
            .records_deleted,
        1
    );
    k.vault.erase(&k.officer, s, "subject request").unwrap();
}

#[test]
fn p28_closed_account_is_erased_after_the_grace_period() {
    let k = kit();
    let s = k.subject_with_account();
    let erase_by = k.vault.close_account(&k.officer, s).unwrap();
    assert_eq!(erase_by, k.clock.now_ms() + 30 * DAY_MS);
    // Closed: ordinary purposes may no longer read; legal obligations still may.
    assert_eq!(
        k.read(s, &["email"], "provide_service").unwrap_err().code(),
        "subject_closed"
    );
    assert_eq!(k.read(s, &["email"], "security").unwrap().len(), 1);
    k.clock.advance(29 * DAY_MS);
    assert_eq!(
        k.vault
            .retention_sweep(false, 10, &mut |_| {})
            .unwrap()
            .subjects_erased,
        0
    );
    k.clock.advance(DAY_MS + 1);
    let r = k.vault.retention_sweep(false, 10, &mut |_| {}).unwrap();
    assert_eq!(r.subjects_erased, 1);
    assert!(k.vault.certificate(s).unwrap().is_some());
    assert_eq!(
        k.read(s, &["email"], "security").unwrap_err().code(),
        "subject_erased"
    );
    assert_eq!(
        k.vault
            .retention_sweep(false, 10, &mut |_| {})
            .unwrap()
            .subjects_erased,
        0
    );
}

#[test]
fn p23_p32_access_request_moves_through_its_states_against_its_deadline() {
    let k = kit();
    let s = k.subject_with_account();
    let req = k
        .vault
        .open_request(&k.officer, s, "access", None, None)
        .unwrap();
    assert_eq!(req.state, "received");
    assert_eq!(req.due_ms, k.clock.now_ms() + 30 * DAY_MS);
    // Not before identity is verified (P25).
    assert_eq!(
        k.vault
            .complete_request(&k.officer, &req.id, &justified(""))
            .unwrap_err()
            .code(),
        "request_state"
    );
    k.vault.verify_request(&k.officer, &req.id, "otp").unwrap();
    assert_eq!(
        k.vault.start_request(&k.officer, &req.id).unwrap().state,
        "in_progress"
    );
    k.clock.advance(25 * DAY_MS);
    let due = k.vault.requests_due(&k.officer, 7 * DAY_MS).unwrap();
    assert_eq!((due.len(), due[0].overdue), (1, false));
    k.clock.advance(6 * DAY_MS);
    assert!(k.vault.requests_due(&k.officer, 0).unwrap()[0].overdue);
    let done = k
        .vault
        .complete_request(&k.officer, &req.id, &justified("sent by email"))
        .unwrap();
    assert_eq!(done.request.state, "completed");
    assert_eq!(done.export.unwrap().records.len(), 3);
    // Its history: each state it entered, when and by whom.
    let steps = k.vault.request_steps(&k.officer, &req.id).unwrap();
    let opened = k.clock.now_ms() - 31 * DAY_MS;
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.state.as_str(), s.at_ms - opened, s.actor.as_str()))
            .collect::<Vec<_>>(),
        [
            ("received", 0, "staff:officer"),
            ("verified", 0, "staff:officer"),
            ("in_progress", 0, "staff:officer"),
            ("completed", 31 * DAY_MS, "staff:officer"),
        ]
    );
    assert_eq!(
        k.vault
            .request_steps(&k.service, &req.id)
            .unwrap_err()
            .code(),
        "operation_not_permitted"
    );
    assert!(
        k.vault
            .requests_due(&k.officer, 365 * DAY_MS)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        k.vault
            .open_request(&k.service, s, "access", None, None)
            .unwrap_err()
            .code(),
        "operation_not_permitted"
    );
}

/// A request stored before steps were recorded shows its received time and its last change,
/// by no one recorded.
#[test]
fn a_request_from_before_steps_were_kept_shows_its_own_times() {
    let k = kit();
    let s = k.subject_with_account();
    let row = steward_store::RequestRow {
        id: "req_old".into(),
        subject: s.0,
        kind: "access".into(),
        state: steward_store::RequestState::Verified,
        target: String::new(),
        received_ms: 1_000,
        due_ms: 1_000 + 30 * DAY_MS,
        updated_ms: 5_000,
        verification: "otp".into(),
        outcome: String::new(),
        sealed_text: Vec::new(),
    };
    k.vault
        .store()
        .commit(
            vec![steward_store::Op::PutRequest(row)],
            vec![
                k.vault
                    .act(&k.officer, "request.open", Some(s), serde_json::json!({})),
            ],
        )
        .unwrap();
    let steps = k.vault.request_steps(&k.officer, "req_old").unwrap();
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.state.as_str(), s.at_ms, s.actor.as_str()))
            .collect::<Vec<_>>(),
        [("received", 1_000, ""), ("verified", 5_000, "")]
    );
}

/// P24: a subject deletes some categories only: their values go, the subject and the rest
/// stay; a held category among them is kept and said so; a name that is no category is
/// refused when the request is made.
#[test]
fn p24_a_deletion_of_some_categories_keeps_the_rest_and_what_is_held() {
    let k = kit();
    let s = k.subject_with_account();
    usage(&k, s);
    let open = |target: &str| {
        k.vault
            .open_request(&k.officer, s, "deletion", Some(target), None)
    };
    assert_eq!(
        open("categories:phone,nickname").unwrap_err().code(),
        "unknown_category"
    );
    assert_eq!(open("phone").unwrap_err().code(), "invalid_input");
    assert_eq!(open("categories:").unwrap_err().code(), "invalid_input");
    let req = open("categories:phone, phone").unwrap();
    assert_eq!(req.target, "categories:phone");
    k.vault
        .verify_request(&k.officer, &req.id, "documents")
        .unwrap();
    let done = k
        .vault
        .complete_request(&k.officer, &req.id, &justified(""))
        .unwrap();
    assert!(done.certificate.is_none(), "the subject is not erased");
    let outcome = done.request.outcome.unwrap_or_default();
    assert_eq!(outcome["deleted_records"], 1);
    assert_eq!(outcome["categories"], serde_json::json!(["phone"]));
    assert_eq!(
        categories_held(&k, s),
        ["access_time", "email", "ip_address", "name"]
    );
    // Under a hold on the IP address, a deletion of it and the name takes the name only.
    k.vault
        .place_hold(
            &k.officer,
            s,
            &["ip_address"],
            "dispute",
            "case 12",
            k.clock.now_ms() + 30 * DAY_MS,
        )
        .unwrap();
    let req = open("categories:ip_address,name").unwrap();
    assert_eq!(
        req.target, "categories:name,ip_address",
        "the policy's order"
    );
    k.vault
        .verify_request(&k.officer, &req.id, "documents")
        .unwrap();
    let done = k
        .vault
        .complete_request(&k.officer, &req.id, &justified(""))
        .unwrap();
    let outcome = done.request.outcome.unwrap_or_default();
    assert_eq!(outcome["refused_in_part"], "legal_hold");
    assert_eq!(outcome["held"], serde_json::json!(["ip_address"]));
    assert_eq!(
        categories_held(&k, s),
        ["access_time", "email", "ip_address"]
    );
}

#[test]
fn p24_p26_deletion_under_hold_is_refused_in_part_and_refusals_carry_a_listed_reason() {
    let k = kit();
    let s = k.subject_with_account();
    usage(&k, s);
    k.vault
        .place_hold(
            &k.officer,
            s,
            &["ip_address", "access_time"],
            "authority_request",
            "PSB letter 77",
            k.clock.now_ms() + 90 * DAY_MS,
        )
        .unwrap();
    let req = k.verified_request(s, "deletion_unlawful", "documents");
    let done = k
        .vault
        .complete_request(&k.officer, &req.id, &justified(""))
        .unwrap();
    assert!(done.certificate.is_none());
    assert_eq!(
        done.request.outcome.clone().unwrap_or_default()["refused_in_part"],
        "legal_hold"
    );
    assert_eq!(
        done.request.outcome.clone().unwrap_or_default()["deleted_records"],
        3
    );
    assert_eq!(categories_held(&k, s), ["access_time", "ip_address"]);

    let other = k.subject_with_account();
    let req = k
        .vault
        .open_request(&k.officer, other, "deletion", None, None)
        .unwrap();
    assert_eq!(
        k.vault
            .refuse_request(&k.officer, &req.id, "because", "")
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    let refused = k
        .vault
        .refuse_request(&k.officer, &req.id, "rights_of_others", "shared account")
        .unwrap();
    assert_eq!(
        (
            refused.state.as_str(),
            refused.outcome.as_ref().and_then(|o| o["refused"].as_str())
        ),
        ("refused", Some("rights_of_others"))
    );
    assert_eq!(
        k.vault
            .verify_request(&k.officer, &req.id, "otp")
            .unwrap_err()
            .code(),
        "request_state"
    );

    let req = k
        .vault
        .open_request(&k.officer, other, "deletion", None, None)
        .unwrap();
    k.vault
        .verify_request(&k.officer, &req.id, "session")
        .unwrap();
    let done = k
        .vault
        .complete_request(&k.officer, &req.id, &justified(""))
        .unwrap();
    let cert = done.certificate.unwrap();
    assert_eq!(
        verify_document(&cert, None).unwrap()["subject"],
        other.to_string()
    );
}

#[test]
fn p27_p31_withdrawal_cancellation_and_inquiry_requests() {
    let k = kit();
    let s = k.subject_with_account();
    k.consent(s, "purpose:surveys", true, false);
    let w = k
        .vault
        .open_request(
            &k.officer,
            s,
            "consent_withdrawal",
            Some("purpose:surveys"),
            None,
        )
        .unwrap();
    k.vault
        .verify_request(&k.officer, &w.id, "session")
        .unwrap();
    k.vault
        .complete_request(&k.officer, &w.id, &justified(""))
        .unwrap();
    assert_eq!(
        k.read(s, &["email"], "surveys").unwrap_err().code(),
        "consent_required"
    );

    let q = k
        .vault
        .open_request(
            &k.officer,
            s,
            "inquiry",
            None,
            Some("Why did I get an SMS at 3am on my number 138...?"),
        )
        .unwrap();
    assert_eq!(q.due_ms, k.clock.now_ms() + 30 * DAY_MS);
    assert!(
        k.vault
            .request_text(&k.officer, &q.id)
            .unwrap()
            .starts_with("Why did I get")
    );

    let c = k
        .vault
        .open_request(&k.officer, s, "account_cancellation", None, None)
        .unwrap();
    k.vault.verify_request(&k.officer, &c.id, "otp").unwrap();
    let done = k
        .vault
        .complete_request(&k.officer, &c.id, &justified(""))
        .unwrap();
    assert_eq!(
        done.request.outcome.clone().unwrap_or_default()["closed"],
        true
    );
    k.clock.advance(31 * DAY_MS);
    assert_eq!(
        k.vault
            .retention_sweep(false, 10, &mut |_| {})
            .unwrap()
            .subjects_erased,
        1
    );
    // The inquiry's text went with the subject's key.
    assert_eq!(
        k.vault.request_text(&k.officer, &q.id).unwrap_err().code(),
        "data_key_destroyed"
    );
}

/// Keeps what would have been emailed.
#[derive(Default)]
struct Outbox(std::sync::Mutex<Vec<(String, String)>>);

impl Mailer for Outbox {
    fn send(&self, to: &str, _subject: &str, body: &str) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .push((to.to_string(), body.to_string()));
        Ok(())
    }
}

impl Outbox {
    fn last_code(&self) -> String {
        let sent = self.0.lock().unwrap();
        let body = &sent.last().unwrap().1;
        body.split_whitespace()
            .find(|w| {
                w.trim_end_matches('.').len() == 6
                    && w.trim_end_matches('.').chars().all(|c| c.is_ascii_digit())
            })
            .unwrap()
            .trim_end_matches('.')
            .to_string()
    }
}

#[test]
fn p25_one_time_code_signs_a_subject_in_once() {
    let k = kit();
    let s = k.subject_with_account();
    let out = Outbox::default();
    k.vault
        .send_code(&out, "li.lei@example.cn", "203.0.113.5")
        .unwrap();
    let code = out.last_code();
    let session = k
        .vault
        .sign_in("LI.LEI@example.cn", &code, "203.0.113.5")
        .unwrap();
    assert_eq!(k.vault.session_subject(&session.token).unwrap(), s);
    // A code works once.
    assert_eq!(
        k.vault
            .sign_in("li.lei@example.cn", &code, "203.0.113.5")
            .unwrap_err()
            .code(),
        "code_invalid"
    );
    // Sessions end.
    k.clock.advance(31 * 60 * 1000);
    assert_eq!(
        k.vault.session_subject(&session.token).unwrap_err().code(),
        "unauthenticated"
    );
    // Unknown email: the same answer, nothing sent.
    k.vault
        .send_code(&out, "nobody@example.cn", "203.0.113.5")
        .unwrap();
    assert_eq!(out.0.lock().unwrap().len(), 1);
    // Self-service acts on the subject's own data.
    assert_eq!(k.vault.self_export(s).unwrap().records.len(), 3);
    let req = k.vault.self_request(s, "access", None, None).unwrap();
    assert_eq!(
        (req.state.as_str(), req.verification.as_str()),
        ("verified", "session")
    );
}

#[test]
fn p25_code_brute_force_is_stopped() {
    let k = kit();
    k.subject_with_account();
    let out = Outbox::default();
    k.vault
        .send_code(&out, "li.lei@example.cn", "198.51.100.1")
        .unwrap();
    let code = out.last_code();
    let wrong = |n: u32| format!("{:06}", (code.parse::<u32>().unwrap() + n) % 1_000_000);
    for n in 1..=CODE_ATTEMPTS {
        assert_eq!(
            k.vault
                .sign_in("li.lei@example.cn", &wrong(n), "198.51.100.1")
                .unwrap_err()
                .code(),
            "code_invalid"
        );
    }
    // After five wrong guesses the right code no longer works either.
    assert_eq!(
        k.vault
            .sign_in("li.lei@example.cn", &code, "198.51.100.1")
            .unwrap_err()
            .code(),
        "code_invalid"
    );
    // One client address gets a bounded number of wrong guesses per hour, across codes.
    let mut refused_at = None;
    for i in 0..100 {
        if i % CODE_ATTEMPTS == 0 {
            let _ = k.vault.send_code(&out, "li.lei@example.cn", "198.51.100.9");
        }
        match k
            .vault
            .sign_in("li.lei@example.cn", "000000", "198.51.100.1")
        {
            Err(e) if e.code() == "too_many_attempts" => {
                refused_at = Some(i);
                break;
            }
            _ => {}
        }
    }
    assert!(
        refused_at.is_some_and(|i| i <= FAILURES_PER_CLIENT_HOUR),
        "{refused_at:?}"
    );
    // Sending is limited per subject too.
    let mut sends = 0;
    for _ in 0..20 {
        if k.vault
            .send_code(&out, "li.lei@example.cn", "192.0.2.77")
            .is_err()
        {
            break;
        }
        sends += 1;
    }
    assert!(sends <= SENDS_PER_ADDRESS_HOUR as usize);
    // An hour later the client may try again.
    k.clock.advance(3_600_001);
    k.vault
        .send_code(&out, "li.lei@example.cn", "198.51.100.1")
        .unwrap();
    let fresh = out.last_code();
    k.vault
        .sign_in("li.lei@example.cn", &fresh, "198.51.100.1")
        .unwrap();
}

#[test]
fn p21_staff_sign_in_with_argon2id_password_and_act_under_their_role() {
    let k = kit();
    let s = k.subject_with_account();
    k.vault
        .create_staff("wang.fang", "support", "correct horse battery")
        .unwrap();
    assert_eq!(
        k.vault
            .create_staff("Bad Name", "support", "correct horse battery")
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    assert_eq!(
        k.vault
            .create_staff("li", "support", "short")
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    // Only an Argon2id hash is stored.
    let row = k.vault.store().staff("wang.fang").unwrap().unwrap();
    assert!(
        row.password_hash.starts_with("$argon2id$"),
        "{}",
        row.password_hash
    );
    assert!(!row.password_hash.contains("correct horse"));

    let session = k
        .vault
        .staff_sign_in("wang.fang", "correct horse battery", "10.0.0.1")
        .unwrap();
    let staff = k.vault.authenticate(&session.token).unwrap();
    assert_eq!(staff.id, "staff:wang.fang");
    let read = |justification| {
        k.vault.read(
            &staff,
            &Read {
                subject: s,
                categories: &["phone"],
                purpose: "support",
                justification,
            },
        )
    };
    assert_eq!(read(None).unwrap_err().code(), "justification_required");
    assert_eq!(read(Some("ticket 42")).unwrap().len(), 1);
    k.clock.advance(8 * 3_600_000 + 1);
    assert_eq!(
        k.vault.authenticate(&session.token).unwrap_err().code(),
        "unauthenticated"
    );

    // Wrong passwords and unknown names look the same; guessing stops.
    assert_eq!(
        k.vault
            .staff_sign_in("nobody", "whatever it is", "10.0.0.2")
            .unwrap_err()
            .code(),
        "sign_in_failed"
    );
    let mut stopped = false;
    for _ in 0..=STAFF_FAILURES_PER_HOUR {
        match k
            .vault
            .staff_sign_in("wang.fang", "wrong password!", "10.0.0.3")
        {
            Err(e) if e.code() == "too_many_attempts" => {
                stopped = true;
                break;
            }
            Err(e) => assert_eq!(e.code(), "sign_in_failed"),
            Ok(_) => panic!("a wrong password signed in"),
        }
    }
    assert!(stopped);
    // Even the right password waits out the hour.
    assert_eq!(
        k.vault
            .staff_sign_in("wang.fang", "correct horse battery", "10.0.0.4")
            .unwrap_err()
            .code(),
        "too_many_attempts"
    );
    k.clock.advance(3_600_001);
    k.vault
        .staff_sign_in("wang.fang", "correct horse battery", "10.0.0.4")
        .unwrap();
}

/// Makes the store refuse to save any request as `completed`, as a crash or a failing disk
/// would at that point: a trigger in the data store itself (SQLite, or PostgreSQL by psql).
fn fail_request_completion(k: &Kit, on: bool) {
    if on {
        k.sql(
            "CREATE TRIGGER test_fail_completion BEFORE INSERT ON rights_requests
             WHEN NEW.state = 'completed' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            "CREATE FUNCTION {schema}.test_fail() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN IF NEW.state = 'completed' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER test_fail_completion BEFORE INSERT OR UPDATE ON {schema}.rights_requests
             FOR EACH ROW EXECUTE FUNCTION {schema}.test_fail();",
        );
    } else {
        k.sql(
            "DROP TRIGGER test_fail_completion;",
            "DROP TRIGGER test_fail_completion ON {schema}.rights_requests;",
        );
    }
}

#[test]
fn p26_a_request_and_its_act_commit_together_or_not_at_all() {
    let k = kit();
    let s = k.subject_with_account();
    let req = k.verified_request(s, "deletion", "documents");
    let entries_before = k.verify().unwrap().entries;

    // Saving the completed request fails: the erasure must not have happened either.
    fail_request_completion(&k, true);
    assert!(
        k.vault
            .complete_request(&k.officer, &req.id, &justified(""))
            .is_err()
    );
    assert_eq!(
        k.vault.store().subject(&s.0).unwrap().unwrap().state,
        steward_store::SubjectState::Active
    );
    assert_eq!(k.read(s, &["email"], "provide_service").unwrap().len(), 1);
    assert_eq!(
        k.vault.request(&k.officer, &req.id).unwrap().state,
        "verified"
    );
    // Nothing of the act reached the log (only the read just made).
    let actions: Vec<String> = k
        .entries_from(entries_before + 1)
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["pi.read"]);

    // Once saving works, the same request completes, act and all.
    fail_request_completion(&k, false);
    let done = k
        .vault
        .complete_request(&k.officer, &req.id, &justified(""))
        .unwrap();
    assert_eq!(done.request.state, "completed");
    assert!(done.certificate.is_some());
    assert_eq!(
        k.read(s, &["email"], "provide_service").unwrap_err().code(),
        "subject_erased"
    );
    k.verify().unwrap();
}

#[test]
fn p26_two_servers_on_one_store_cannot_both_complete_one_request() {
    let k = kit();
    // A second vault on the same store: another server process.
    let other = open_backend(&k.backend, k.clock.clone());
    for _ in 0..8 {
        let s = k.subject_with_account();
        let req = k.verified_request(s, "access", "otp");
        let start = std::sync::Barrier::new(2);
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| {
                start.wait();
                k.vault
                    .complete_request(&k.officer, &req.id, &justified(""))
            });
            let b = scope.spawn(|| {
                start.wait();
                other.complete_request(&k.officer, &req.id, &justified(""))
            });
            (a.join().unwrap(), b.join().unwrap())
        });
        let done: Vec<_> = [&a, &b].into_iter().filter(|r| r.is_ok()).collect();
        assert_eq!(done.len(), 1, "both servers completed the request");
        let refused = [a, b].into_iter().find_map(|r| r.err()).unwrap();
        assert_eq!(refused.code(), "request_state");
    }
    // One completion per request in the log.
    let completions = k
        .entries_from(1)
        .iter()
        .filter(|e| e.action == "request.complete")
        .count();
    assert_eq!(completions, 8);
    k.verify().unwrap();
}

#[test]
fn p01_every_record_belongs_to_exactly_one_subject() {
    let k = kit();
    let (a, b) = (k.subject_with_account(), k.subject_with_account());
    let mut ids = std::collections::HashSet::new();
    for s in [a, b] {
        let rows = k.vault.store().records(&s.0).unwrap();
        assert_eq!(rows.len(), 3);
        for r in &rows {
            assert_eq!(r.subject, s.0, "a record stored under another subject");
            assert!(
                ids.insert(r.id),
                "record id {} belongs to two subjects",
                r.id
            );
        }
        // What a subject's read and export return is theirs alone.
        let read = k.read(s, &["email", "phone"], "provide_service").unwrap();
        assert!(read.iter().all(|v| rows.iter().any(|r| r.id == v.record)));
        let export = k
            .vault
            .export(&k.officer, s, Some("the subject asked"))
            .unwrap();
        assert_eq!(export.subject, s.to_string());
        assert!(
            export
                .records
                .iter()
                .all(|r| rows.iter().any(|x| x.id == r.record))
        );
    }
}

#[test]
fn p12_recipients_are_registered_with_scope_and_agreement() {
    let k = kit();
    let policy = k.vault.policy();
    assert!(!policy.recipients.is_empty());
    for r in &policy.recipients {
        assert!(!r.legal_name.is_empty(), "{} has no legal name", r.name);
        assert!(!r.agreement.is_empty(), "{} has no agreement", r.name);
        assert!(
            !r.purposes.is_empty(),
            "{} may receive for no purpose",
            r.name
        );
        assert!(
            !r.categories.is_empty(),
            "{} may receive no category",
            r.name
        );
    }
    // Nothing goes to a recipient the policy does not register.
    let s = k.subject_with_account();
    let err = k
        .vault
        .disclose(
            &k.officer,
            s,
            "unregistered_partner",
            &["email"],
            "support",
            Some("ticket 7"),
        )
        .unwrap_err();
    assert_eq!(err.code(), "unknown_recipient");
}

#[test]
fn p20_a_store_refuses_another_master_key_before_writing_anything() {
    let k = kit();
    let s = k.subject_with_account();
    k.vault.checkpoint().unwrap();
    let head = k.vault.store().audit_head().unwrap();
    let other = MasterKey::from_hex(&"17".repeat(32)).unwrap();
    let err = Vault::open_backend(
        &k.backend,
        Policy::example().unwrap(),
        &other,
        k.clock.clone(),
        None,
    )
    .err()
    .unwrap();
    assert_eq!(err.code(), "master_key_mismatch");
    // Nothing was written by the refused open, and the right key still works.
    assert_eq!(k.vault.store().audit_head().unwrap(), head);
    let again = open_backend(&k.backend, k.clock.clone());
    assert_eq!(
        again
            .read(
                &k.service,
                &Read {
                    subject: s,
                    categories: &["email"],
                    purpose: "provide_service",
                    justification: None,
                },
            )
            .unwrap()
            .len(),
        1
    );
}

/// Rewrites entry `seq` (its outcome flipped) and re-chains every entry after it, so the chain
/// is consistent again: what someone with write access to the database, but not the master
/// key, can do.
fn forge_from(k: &Kit, seq: u64) {
    let mut entries = k.entries_from(1);
    let from = seq as usize - 1;
    for i in from..entries.len() {
        if i + 1 == seq as usize {
            entries[i].outcome = if entries[i].outcome == "granted" {
                "refused".into()
            } else {
                "granted".into()
            };
        }
        if i > 0 {
            entries[i].prev_hash = entries[i - 1].hash;
        }
        entries[i].hash = steward_audit::sha256(&entries[i].encode());
    }
    store_entries(k, &entries[from..]);
}

/// Closing a request as the privacy officer, whose role states why it acts on PI.
fn justified(note: &str) -> crate::Closing<'_> {
    crate::Closing {
        note,
        justification: Some("the subject's request"),
        corrections: &[],
    }
}

/// Writes `entries` over the stored rows of their seqs, behind the vault's back.
fn store_entries(k: &Kit, entries: &[steward_audit::Entry]) {
    let mut sqlite = String::new();
    let mut postgres = String::new();
    for e in entries {
        let (b, h, n) = (hex::encode(e.encode()), hex::encode(e.hash), e.seq);
        sqlite.push_str(&format!(
            "UPDATE audit SET entry = X'{b}', hash = X'{h}' WHERE seq = {n};"
        ));
        postgres.push_str(&format!(
            "UPDATE {{schema}}.audit SET entry = decode('{b}', 'hex'), hash = decode('{h}', 'hex') WHERE seq = {n};"
        ));
    }
    k.sql(&sqlite, &postgres);
}

/// P33: before signing, the chain from the journal's newest checkpoint to the head is
/// verified; a rewritten, cut back or gapped log, or deleted checkpoints, are refused loudly
/// and nothing is signed. (The old code signed whatever head it found.)
#[test]
fn p33_a_forged_history_is_never_sealed() {
    let k = kit();
    let s = k.subject_with_account();
    let _ = k.read(s, &["email"], "provide_service");
    let sealed = k.vault.checkpoint().unwrap().unwrap();
    let journal = std::fs::read_to_string(journal_path(k.dir.path())).unwrap();
    assert_eq!(
        journal.lines().count(),
        1,
        "the checkpoint reached the journal"
    );
    for _ in 0..5 {
        let _ = k.read(s, &["email"], "marketing_email");
    }
    let refused = |k: &Kit| match k.vault.checkpoint() {
        Err(Error::Tampered(f)) => f,
        other => panic!("signed a forged log: {other:?}"),
    };
    let unchanged = |k: &Kit| {
        assert_eq!(
            std::fs::read_to_string(journal_path(k.dir.path())).unwrap(),
            journal
        );
        assert_eq!(k.vault.store().checkpoints().unwrap().last(), Some(&sealed));
    };
    let checkpoints = k.vault.store().checkpoints().unwrap();
    let restore_checkpoints = |k: &Kit| {
        for c in &checkpoints {
            k.vault.store().add_checkpoint(c).unwrap();
        }
    };

    // A gap in the tail not yet sealed.
    let gap = sealed.seq + 2;
    let original = k.entries_from(gap).remove(0);
    k.sql(
        &format!("DELETE FROM audit WHERE seq = {gap};"),
        &format!("DELETE FROM {{schema}}.audit WHERE seq = {gap};"),
    );
    assert_eq!(refused(&k).seq(), Some(gap));
    unchanged(&k);
    let (b, h) = (hex::encode(original.encode()), hex::encode(original.hash));
    k.sql(
        &format!("INSERT INTO audit (seq, entry, hash) VALUES ({gap}, X'{b}', X'{h}');"),
        &format!("INSERT INTO {{schema}}.audit (seq, entry, hash) VALUES ({gap}, decode('{b}', 'hex'), decode('{h}', 'hex'));"),
    );
    let before = k.entries_from(1);

    // An entry the checkpoint covers, rewritten and the chain re-linked after it.
    forge_from(&k, 3);
    assert_eq!(
        refused(&k),
        steward_audit::Fault::CheckpointMismatch { seq: sealed.seq }
    );
    unchanged(&k);
    // ... and with the checkpoints deleted too: the journal still holds them.
    k.sql(
        "DELETE FROM checkpoints;",
        "DELETE FROM {schema}.checkpoints;",
    );
    assert_eq!(
        refused(&k),
        steward_audit::Fault::Vanished { seq: sealed.seq }
    );
    // The same store, verified against its journal, fails too.
    let kept = crate::evidence::Journal::new(journal_path(k.dir.path()))
        .read(&|m, sig| steward_crypto::verify_signature(&k.vault.public_key(), m, sig))
        .unwrap()
        .unwrap();
    assert!(
        verify_store(k.vault.store(), k.vault.public_key(), kept, &mut |_| {})
            .unwrap()
            .is_err()
    );
    restore_checkpoints(&k);

    // The log cut back behind the checkpoint.
    store_entries(&k, &before);
    let cut = sealed.seq - 1;
    k.sql(
        &format!("DELETE FROM audit WHERE seq > {cut}; DELETE FROM checkpoints;"),
        &format!(
            "DELETE FROM {{schema}}.audit WHERE seq > {cut}; DELETE FROM {{schema}}.checkpoints;"
        ),
    );
    assert_eq!(
        refused(&k),
        steward_audit::Fault::Vanished { seq: sealed.seq }
    );
    restore_checkpoints(&k);
    assert!(matches!(
        refused(&k),
        steward_audit::Fault::Truncated { .. }
    ));
}

/// P33: signing verifies only what is new since the journal's newest checkpoint, and an
/// intact log is sealed and journaled each time.
#[test]
fn p33_checkpoints_are_journaled_and_each_verifies_only_what_is_new() {
    let k = kit();
    let s = k.subject_with_account();
    let first = k.vault.checkpoint().unwrap().unwrap();
    // Damage before the journal's checkpoint goes unread by the next signing: it starts there.
    assert_eq!(k.vault.checkpoint().unwrap().unwrap(), first);
    let _ = k.read(s, &["email"], "provide_service");
    let second = k.vault.checkpoint().unwrap().unwrap();
    assert!(second.seq > first.seq);
    let kept = crate::evidence::Journal::new(journal_path(k.dir.path()))
        .read(&|m, sig| steward_crypto::verify_signature(&k.vault.public_key(), m, sig))
        .unwrap()
        .unwrap();
    assert_eq!(kept, vec![first.clone(), second.clone()]);
    k.sql(
        "UPDATE audit SET hash = randomblob(32) WHERE seq = 1;",
        "UPDATE {schema}.audit SET hash = '\\x00'::bytea WHERE seq = 1;",
    );
    let _ = k.read(s, &["email"], "provide_service");
    let third = k.vault.checkpoint().unwrap().unwrap();
    assert!(third.seq > second.seq);
    // The full verification still finds it.
    assert_eq!(k.verify().unwrap_err().seq(), Some(1));
}

/// P34: `steward check` runs the backend's own full check (SQLite `integrity_check`,
/// PostgreSQL `amcheck`) of data and keyring, and the whole log against its journal; a sound
/// store is sound, and a log fault is reported in the check.
#[test]
fn p34_the_full_check_covers_structure_keyring_and_log() {
    let k = kit();
    let s = k.subject_with_account();
    let _ = k.read(s, &["email"], "provide_service");
    k.vault.checkpoint().unwrap();
    let c = k.vault.check(&mut |_| {}).unwrap();
    assert!(c.sound(), "{c:?}");
    assert!(c.audit.as_ref().unwrap().entries > 3);
    k.sql(
        "UPDATE audit SET hash = randomblob(32) WHERE seq = 2;",
        "UPDATE {schema}.audit SET hash = '\\x00'::bytea WHERE seq = 2;",
    );
    let c = k.vault.check(&mut |_| {}).unwrap();
    assert!(!c.sound());
    assert_eq!(c.audit.unwrap_err().seq(), Some(2));
}

/// P28: the erasure certificate says which copies become unreadable when — the live store now,
/// data backups wherever no keyring backup holds the key, keyring backups once the configured
/// retention has passed — and the erasure is in the erasure journal before the key goes, so
/// the restores it promises re-apply it.
#[test]
fn p28_the_certificate_says_when_each_copy_becomes_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::Sqlite {
        dir: dir.path().to_path_buf(),
    };
    let clock = Arc::new(ManualClock::new(1_767_225_600_000));
    let journal = crate::erasures::ErasureJournal::new(dir.path().join("erasures.jsonl"));
    let k = Kit {
        vault: open_backend(&backend, clock.clone())
            .with_erasure_journal(journal.clone())
            .with_keyring_retention_days(7),
        ..kit_on(
            tempfile::tempdir().unwrap(),
            backend.clone(),
            Policy::example().unwrap(),
        )
    };
    let s = k.subject_with_account();
    let cert = k.vault.erase(&k.officer, s, "subject request").unwrap();
    let payload = verify_document(&cert, Some(k.vault.public_key())).unwrap();
    let copies = &payload["copies"];
    assert_eq!(copies["keyring_backup_retention_days"], 7);
    let erased = payload["erased_at_ms"].as_i64().unwrap();
    assert_eq!(
        copies["keyring_backups_gone_by"],
        crate::clock::rfc3339(erased + 8 * DAY_MS)
    );
    assert!(
        copies["keyring_backups"]
            .as_str()
            .unwrap()
            .contains("older than 7 days")
    );
    assert!(
        copies["restores"]
            .as_str()
            .unwrap()
            .contains("erasure journal")
    );
    assert!(
        !payload["method"]
            .as_str()
            .unwrap()
            .contains("every copy is unreadable")
    );
    let read = journal.read(&k.vault.public_key()).unwrap().unwrap();
    assert_eq!(read.subjects().unwrap(), vec![s.0]);
    assert_eq!(read.lines[0].kind, "start");
}

/// P20, P33: a record's feature, source and collection time are bound into its ciphertext's
/// associated data: changing any of them in the database makes the read fail its integrity
/// check (the old code answered with the changed metadata). Moving the binding's start, to
/// unbind records, makes the store refuse to open.
#[test]
fn p33_record_metadata_edited_in_the_database_fails_the_read() {
    let k = kit();
    let s = k.subject_with_account();
    let read = |k: &Kit| k.read(s, &["email"], "provide_service");
    let original = read(&k).unwrap();
    assert_eq!(original[0].feature, "account");
    for (sqlite, postgres) in [
        (
            "UPDATE records SET feature = 'orders' WHERE category = 'email';",
            "UPDATE {schema}.records SET feature = 'orders' WHERE category = 'email';",
        ),
        (
            "UPDATE records SET source = 'observed' WHERE category = 'email';",
            "UPDATE {schema}.records SET source = 'observed' WHERE category = 'email';",
        ),
        (
            "UPDATE records SET collected_ms = collected_ms - 86400000 WHERE category = 'email';",
            "UPDATE {schema}.records SET collected_ms = collected_ms - 86400000 WHERE category = 'email';",
        ),
    ] {
        k.sql(sqlite, postgres);
        assert_eq!(
            read(&k).unwrap_err().code(),
            "integrity_failure",
            "{sqlite}"
        );
        // Put it back.
        let (f, src, at) = (
            &original[0].feature,
            &original[0].source,
            original[0].collected_ms,
        );
        k.sql(
            &format!("UPDATE records SET feature = '{f}', source = '{src}', collected_ms = {at} WHERE category = 'email';"),
            &format!("UPDATE {{schema}}.records SET feature = '{f}', source = '{src}', collected_ms = {at} WHERE category = 'email';"),
        );
        assert_eq!(read(&k).unwrap(), original);
    }
    k.sql(
        "UPDATE meta SET value = '999999999:' || substr(value, instr(value, ':') + 1) WHERE key = 'record_binding';",
        "UPDATE {schema}.meta SET value = '999999999:' || split_part(value, ':', 2) WHERE key = 'record_binding';",
    );
    let reopened = k.reopen();
    assert_eq!(
        reopened.err().map(|e| e.code().to_string()).as_deref(),
        Some("storage_corrupt")
    );
}

/// P10, P27, P33: the state that decides reads is authenticated. A withdrawn consent turned
/// back into a grant by hand is refused as damage (`integrity_failure`), not obeyed (the old
/// code answered 200); so is an erasing subject made active again, and a hold lifted by hand.
/// An older consent row put back with its own valid tag passes the read path, and the full
/// check names it, and every other row that disagrees with the log.
#[test]
fn p10_state_changed_in_the_database_is_refused_and_named() {
    let k = kit();
    let s = k.subject_with_account();
    k.consent(s, "purpose:relevant_offers", true, false);
    k.consent(s, "purpose:relevant_offers", false, false);
    let offers = |k: &Kit| {
        k.read(s, &["email"], "provide_service")
            .and(k.read(s, &["email"], "relevant_offers"))
    };
    assert_eq!(offers(&k).unwrap_err().code(), "consent_required");
    k.sql(
        "UPDATE consent_current SET granted = 1;",
        "UPDATE {schema}.consent_current SET granted = true;",
    );
    assert_eq!(offers(&k).unwrap_err().code(), "integrity_failure");
    let c = k.vault.check(&mut |_| {}).unwrap();
    assert!(
        c.state
            .iter()
            .any(|p| p.contains("relevant_offers") && p.contains("tag")),
        "{:?}",
        c.state
    );
    // An older row, tag and all, put back in force: the read path cannot tell, the check can.
    k.sql(
        "UPDATE consent_current SET granted = e.granted, at_ms = e.at_ms, tag = e.tag
         FROM (SELECT granted, at_ms, tag FROM consent_events ORDER BY id LIMIT 1) AS e;",
        "UPDATE {schema}.consent_current c SET granted = e.granted, at_ms = e.at_ms, tag = e.tag
         FROM (SELECT granted, at_ms, tag FROM {schema}.consent_events ORDER BY id LIMIT 1) AS e;",
    );
    assert_eq!(offers(&k).unwrap().len(), 1);
    let c = k.vault.check(&mut |_| {}).unwrap();
    assert!(
        c.state
            .iter()
            .any(|p| p.contains("granted in the store, but the log's last word is withdrawn")),
        "{:?}",
        c.state
    );
    assert!(!c.sound());

    // A hold lifted by hand does not let an erasure through.
    let held = k.subject_with_account();
    k.vault
        .place_hold(
            &k.officer,
            held,
            &[],
            "court_order",
            "case 9",
            k.clock.now_ms() + 86_400_000,
        )
        .unwrap();
    k.sql(
        "UPDATE legal_holds SET lifted_ms = 1;",
        "UPDATE {schema}.legal_holds SET lifted_ms = 1;",
    );
    assert_eq!(
        k.vault
            .erase(&k.officer, held, "subject request")
            .unwrap_err()
            .code(),
        "integrity_failure"
    );
    // An erasing subject made active again reads nothing.
    let gone = k.subject_with_account();
    k.vault.erase(&k.officer, gone, "subject request").unwrap();
    k.sql(
        "UPDATE subjects SET state = 'active' WHERE state IN ('erasing', 'erased');",
        "UPDATE {schema}.subjects SET state = 'active' WHERE state IN ('erasing', 'erased');",
    );
    assert_eq!(
        k.read(gone, &["email"], "provide_service")
            .unwrap_err()
            .code(),
        "integrity_failure"
    );
    let c = k.vault.check(&mut |_| {}).unwrap();
    assert!(
        c.state
            .iter()
            .any(|p| p.starts_with("subject ") && p.contains("log says Erased")),
        "{:?}",
        c.state
    );
    assert!(
        c.state
            .iter()
            .any(|p| p.starts_with("hold ") && p.contains("lifted in the store")),
        "{:?}",
        c.state
    );
}

/// P33: a store written before tags has its rows tagged once when a vault opens, audited;
/// a store whose rows are tagged but whose marker was removed (to get a changed row tagged)
/// refuses to open.
#[test]
fn p33_rows_from_before_tags_are_tagged_once_and_only_then() {
    let k = kit();
    let s = k.subject_with_account();
    k.consent(s, "purpose:relevant_offers", true, false);
    // As an earlier build left it: no tags, no marker.
    k.sql(
        "UPDATE subjects SET tag = X''; UPDATE consent_current SET tag = X''; DELETE FROM meta WHERE key = 'state_tags';",
        "UPDATE {schema}.subjects SET tag = ''::bytea; UPDATE {schema}.consent_current SET tag = ''::bytea; DELETE FROM {schema}.meta WHERE key = 'state_tags';",
    );
    assert_eq!(
        k.read(s, &["email"], "relevant_offers").unwrap_err().code(),
        "integrity_failure"
    );
    let v = k.reopen().unwrap();
    let entries = k.entries_from(1);
    assert_eq!(
        entries.iter().filter(|e| e.action == "state.tag").count(),
        1
    );
    drop(v);
    assert_eq!(k.read(s, &["email"], "relevant_offers").unwrap().len(), 1);
    // Tagged rows and no marker: refused, nothing tagged.
    k.sql(
        "DELETE FROM meta WHERE key = 'state_tags';",
        "DELETE FROM {schema}.meta WHERE key = 'state_tags';",
    );
    assert_eq!(
        k.reopen().err().map(|e| e.code().to_string()).as_deref(),
        Some("storage_corrupt")
    );
}

/// P20, P33: a record sealed by an earlier build (its row alone as associated data) still
/// opens when its id is below the store's tagged binding start, and only then: the same
/// record above it fails its integrity check, so the shorter form cannot be used to unbind
/// a record this build sealed.
#[test]
fn p33_records_from_before_the_binding_open_and_only_those() {
    let k = sqlite_kit();
    let s = k.subject_with_account();
    let original = k.read(s, &["email"], "provide_service").unwrap();
    let id = original[0].record;
    let key = k.vault.data_key(s).unwrap();
    let legacy = key
        .seal(
            &k.vault.nonces,
            &crate::vault::aad(&s.0, "email", id),
            original[0].value.as_bytes(),
        )
        .unwrap();
    let conn = rusqlite::Connection::open(k.dir.path().join(files::DATA)).unwrap();
    conn.execute(
        "UPDATE records SET sealed = ?1 WHERE id = ?2",
        rusqlite::params![legacy, id],
    )
    .unwrap();
    assert_eq!(
        k.read(s, &["email"], "provide_service").unwrap_err().code(),
        "integrity_failure"
    );
    // As a store upgraded after this record was written would say.
    let from = id + 1;
    let tag = hex::encode(
        k.vault
            .keys
            .state_tag("record_binding", &[&from.to_be_bytes()]),
    );
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'record_binding'",
        [format!("{from}:{tag}")],
    )
    .unwrap();
    let vault = open_backend(&k.backend, k.clock.clone());
    let read = vault
        .read(
            &k.service,
            &Read {
                subject: s,
                categories: &["email"],
                purpose: "provide_service",
                justification: None,
            },
        )
        .unwrap();
    assert_eq!(read, original);
}

/// One webhook call: url, headers, body, and whether it was answered 500.
type Call = (String, Vec<(String, String)>, String, bool);

/// Webhook calls as a receiver saw them; the first `fail` of them answered 500.
#[derive(Default)]
struct Receiver {
    fail: std::sync::atomic::AtomicUsize,
    calls: std::sync::Mutex<Vec<Call>>,
}

impl crate::dispatch::WebhookClient for Receiver {
    fn post(&self, url: &str, headers: &[(&str, String)], body: &str) -> Result<u16, String> {
        let failing = self
            .fail
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok();
        self.calls.lock().unwrap().push((
            url.to_string(),
            headers
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
            body.to_string(),
            failing,
        ));
        Ok(if failing { 500 } else { 204 })
    }
}

/// Issue 12 (P26): the messages an act causes are written in its own unit — webhook calls to
/// the endpoints that take the event and the subject's emails — and delivered at least once:
/// failures are tried again after a backoff under the same id, signed each time, until the last
/// attempt allowed; a dead message is retried by hand; an erased subject is written nothing.
#[test]
fn p26_messages_are_written_with_their_act_and_delivered_at_least_once() {
    let k = kit();
    let v = Arc::new(k.reopen().unwrap().with_local_webhooks(true));
    let officer = &k.officer;
    // Endpoints: on loopback only where allowed; events from the catalogue only.
    assert_eq!(
        k.vault
            .create_endpoint(Some(officer), "http://127.0.0.1:9/hook", &[])
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    assert!(
        v.create_endpoint(Some(officer), "http://127.0.0.1:9/x", &["no.such.event"])
            .is_err()
    );
    assert_eq!(
        v.create_endpoint(Some(&k.service), "https://hooks.example.com/x", &[])
            .unwrap_err()
            .code(),
        "operation_not_permitted"
    );
    let hook = v
        .create_endpoint(
            Some(officer),
            "http://127.0.0.1:9/hook",
            &["request.received", "request.refused"],
        )
        .unwrap();
    assert!(hook.secret.starts_with("whsec_"));
    let s = k.subject_with_account();
    let req = v.open_request(officer, s, "deletion", None, None).unwrap();
    v.verify_request(officer, &req.id, "documents").unwrap();
    v.refuse_request(officer, &req.id, "legal_obligation", "see our letter")
        .unwrap();
    let pending = v.outbox(Some(officer), Some("pending"), 100).unwrap();
    let kinds: Vec<(&str, &str)> = pending
        .iter()
        .map(|m| (m.channel.as_str(), m.event.as_str()))
        .collect();
    assert_eq!(pending.len(), 5, "{kinds:?}");
    assert!(kinds.contains(&("webhook", "request.received")));
    assert!(kinds.contains(&("webhook", "request.refused")));
    assert!(
        !kinds.contains(&("webhook", "request.verified")),
        "not taken"
    );
    assert_eq!(kinds.iter().filter(|(c, _)| *c == "email").count(), 3);

    let mailer = Arc::new(Outbox::default());
    let receiver = Arc::new(Receiver::default());
    receiver.fail.store(2, std::sync::atomic::Ordering::SeqCst);
    let d = crate::dispatch::Dispatcher::new(
        Arc::clone(&v),
        Some(mailer.clone() as Arc<dyn Mailer>),
        Some(receiver.clone() as Arc<dyn crate::dispatch::WebhookClient>),
    );
    let r = d.run_once().unwrap();
    assert_eq!((r.claimed, r.delivered, r.failed, r.dead), (5, 3, 2, 0));
    // Not due again yet; then, after the backoff (5 s, ±20%), delivered.
    assert_eq!(d.run_once().unwrap().claimed, 0);
    k.clock.advance(6_001);
    let r = d.run_once().unwrap();
    assert_eq!((r.claimed, r.delivered), (2, 2));
    let calls = receiver.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 4);
    let secret = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        hook.secret.trim_start_matches("whsec_"),
    )
    .unwrap();
    for (url, headers, body, _) in &calls {
        assert_eq!(url, "http://127.0.0.1:9/hook");
        let h = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let expected =
            crate::dispatch::sign(&secret, &h("webhook-id"), &h("webhook-timestamp"), body);
        assert_eq!(h("webhook-signature"), format!("v1,{expected}"));
        assert!(!body.contains("li.lei"), "no PI in a webhook: {body}");
        let payload: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(payload["data"]["request"], req.id.as_str());
    }
    // A repeat carries the id of the attempt that failed.
    let ids = |failed: bool| -> Vec<String> {
        let mut ids: Vec<String> = calls
            .iter()
            .filter(|c| c.3 == failed)
            .map(|c| {
                c.1.iter()
                    .find(|(k, _)| k == "webhook-id")
                    .unwrap()
                    .1
                    .clone()
            })
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(true), ids(false));
    // The subject's mail, in the policy's language (Chinese), to the stored address, with the
    // refusal's reason from the fixed list and the note.
    let sent = mailer.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|(to, _)| to == "li.lei@example.cn"));
    let refusal = &sent.iter().find(|(_, b)| b.contains("无法")).unwrap().1;
    assert!(
        refusal.contains("法律要求") && refusal.contains("see our letter"),
        "{refusal}"
    );
    assert!(refusal.contains(&req.id), "{refusal}");

    // An endpoint that always fails: dead after the last attempt allowed; retried by hand.
    receiver
        .fail
        .store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
    let mut d = d;
    d.schedule.max_attempts = 3;
    let other = v
        .open_request(officer, k.subject_with_account(), "access", None, None)
        .unwrap();
    for _ in 0..3 {
        d.run_once().unwrap();
        k.clock.advance(3_600_000);
    }
    let dead = v.outbox(Some(officer), Some("dead"), 10).unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        (dead[0].attempts, dead[0].last_error.as_str()),
        (3, "HTTP 500")
    );
    let back = v.retry_message(Some(officer), &dead[0].id).unwrap();
    assert_eq!((back.state.as_str(), back.attempts), ("pending", 0));
    receiver.fail.store(0, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(d.run_once().unwrap().delivered, 1);
    let _ = other;

    // An erased subject is written nothing: their mail goes dead, naming why.
    let gone = k.subject_with_account();
    let r = v
        .open_request(officer, gone, "inquiry", None, None)
        .unwrap();
    v.erase(officer, gone, "the subject asked").unwrap();
    d.run_once().unwrap();
    let dead = v.outbox(Some(officer), Some("dead"), 10).unwrap();
    assert!(
        dead.iter()
            .any(|m| m.channel == "email" && m.last_error.contains("erased")),
        "{dead:?}"
    );
    let _ = r;
}

/// P30: the statement in plain language reads in Chinese and in English — every line of the
/// frame from the catalogue, the same lines in both, no English left in the Chinese one but the
/// provider's own words and names.
#[test]
fn p30_the_statement_reads_in_chinese_and_english() {
    let k = sqlite_kit();
    let p = k.vault.policy();
    let en = k.vault.statement(p, "en").unwrap();
    let zh = k.vault.statement(p, "zh-CN").unwrap();
    assert_eq!(en.lines().count(), zh.lines().count());
    assert_eq!(
        en.lines().count(),
        steward_policy::explain(p).lines().count(),
        "the same lines as `steward policy explain`"
    );
    assert!(en.contains("What we collect, and why") && en.contains("only with your consent"));
    assert!(zh.contains("我们收集哪些信息") && zh.contains("仅在取得您的同意后"));
    // Purposes and cookies in the reader's language where the policy gives them.
    assert!(zh.contains("改进我们的服务") && zh.contains("个性化偏好设置"));
    assert!(en.contains("Improving our services") && !en.contains("改进我们的服务"));
    for phrase in [
        "What we collect",
        "with your consent",
        "after collection",
        " days",
    ] {
        assert!(!zh.contains(phrase), "`{phrase}` in the Chinese statement");
    }
}

/// P29, P33: a published version's effective time moved in the store (so that it would take
/// effect sooner) is named by the state check, as is a version the log never published.
#[test]
fn p29_a_stored_version_moved_behind_steward_is_named() {
    let k = sqlite_kit();
    assert!(k.vault.state_problems().unwrap().is_empty());
    let text = steward_policy::EXAMPLE_POLICY
        .replacen("version = \"2026.1\"", "version = \"2026.3\"", 1)
        .replacen(
            "description = \"Answering your questions and complaints\"",
            "description = \"Answering your questions\"",
            1,
        );
    let later = steward_core_day(k.clock.now_ms() + 45 * crate::DAY_MS);
    k.vault.publish_policy(None, &text, Some(later)).unwrap();
    assert!(k.vault.state_problems().unwrap().is_empty());
    let conn = rusqlite::Connection::open(k.dir.path().join(files::DATA)).unwrap();
    conn.execute(
        "UPDATE policy_versions SET effective_ms = effective_ms - 40 * 86400000 WHERE version = '2026.3'",
        [],
    )
    .unwrap();
    let problems = k.vault.state_problems().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("policy version 2026.3") && p.contains("effective")),
        "{problems:?}"
    );
}

fn steward_core_day(ms: i64) -> time::Date {
    let day = crate::clock::rfc3339(ms);
    crate::versions::parse_day(&day[..10]).unwrap()
}

/// P29, P34: versions deleted from the store behind Steward leave the ones already known in
/// force — no crash, no policy-less answer — and the state check names what is missing.
#[test]
fn p29_versions_deleted_behind_steward_leave_the_known_ones_in_force() {
    let k = sqlite_kit();
    let conn = rusqlite::Connection::open(k.dir.path().join(files::DATA)).unwrap();
    conn.execute("DELETE FROM policy_versions", []).unwrap();
    k.vault.refresh_versions().unwrap();
    k.vault
        .policy_tick(std::time::Duration::from_millis(10))
        .unwrap();
    assert_eq!(k.vault.policy().version, "2026.1");
    assert_eq!(k.vault.versions().len(), 1);
    let s = k.subject_with_account();
    k.read(s, &["email"], "provide_service").unwrap();
    let problems = k.vault.state_problems().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("policy version 2026.1") && p.contains("missing from the store")),
        "{problems:?}"
    );
}
