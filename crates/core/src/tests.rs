use std::path::Path;
use std::sync::Arc;

use steward_crypto::MasterKey;
use steward_policy::Policy;

use crate::clock::ManualClock;
use crate::evidence::{verify_document, verify_store};
use crate::*;

struct Kit {
    vault: Vault,
    clock: Arc<ManualClock>,
    service: Actor,
    officer: Actor,
    dir: tempfile::TempDir,
}

fn master() -> MasterKey {
    MasterKey::from_hex(&"42".repeat(32)).unwrap()
}

fn open(dir: &Path, clock: Arc<ManualClock>) -> Vault {
    Vault::open_sqlite(dir, Policy::example().unwrap(), &master(), clock, None).unwrap()
}

fn kit() -> Kit {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_767_225_600_000));
    let vault = open(dir.path(), clock.clone());
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
    }
}

impl Kit {
    fn subject_with_account(&self) -> SubjectId {
        let s = self.vault.register(&self.service).unwrap();
        self.vault
            .collect(
                &self.service,
                &Collect {
                    subject: s,
                    feature: "account",
                    values: &[
                        ("name", "Li Lei"),
                        ("email", "li.lei@example.cn"),
                        ("phone", "+86 138 0000 0000"),
                    ],
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

    fn verify(&self) -> Result<steward_audit::Report, steward_audit::Fault> {
        verify_store(self.vault.store(), self.vault.public_key(), &mut |_| {}).unwrap()
    }
}

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
    let mut actions = Vec::new();
    k.vault
        .store()
        .audit_scan(1, &mut |e| {
            let e = steward_audit::Entry::decode(e.bytes, e.hash.try_into().unwrap()).unwrap();
            actions.push(format!("{} {} {}", e.actor, e.action, e.outcome));
            true
        })
        .unwrap();
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
    let k = kit();
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
    let e = k.vault.export(&k.officer, s).unwrap();
    assert_eq!(e.records.len(), 3);
    assert_eq!(e.records[1].taxonomy, "user.contact.email");
    assert_eq!(e.consent_history.len(), 1);
    assert_eq!(e.disclosures.len(), 1);
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["type"], "steward.subject-export.v1");
}

#[test]
fn p28_erasure_shreds_key_and_a_copy_taken_before_stays_unreadable() {
    let k = kit();
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
    assert_eq!(read(other).unwrap()[0].value, "li.lei@example.cn");
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

#[test]
fn p33_store_log_verifies_and_tampering_is_named() {
    let k = kit();
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
    assert_eq!(k.verify().unwrap_err().seq(), 3);
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
        k.vault.export(&k.service, s).unwrap_err().code(),
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
    let mut refused = 0;
    k.vault
        .store()
        .audit_scan(1, &mut |e| {
            let e = steward_audit::Entry::decode(e.bytes, e.hash.try_into().unwrap()).unwrap();
            if e.outcome == "refused" && e.detail.contains("operation_not_permitted") {
                refused += 1;
            }
            true
        })
        .unwrap();
    assert_eq!(refused, 5);
}

#[test]
fn p21_api_keys_authenticate_as_their_role_until_revoked() {
    let k = kit();
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
