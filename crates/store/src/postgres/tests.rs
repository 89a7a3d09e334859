//! The PostgreSQL backend's own tests: the conformance suite, migrations, group commit under
//! concurrency.

use super::*;
use crate::{Op, Store, SubjectRow, SubjectState, Unit};

/// A schema no other test (or test run) uses.
pub fn scratch(tag: &str) -> PgTarget {
    PgTarget::unique(&test_url(), &format!("t_{tag}")).unwrap()
}

/// An active subject whose id is `n` repeated.
fn row(n: u8) -> SubjectRow {
    SubjectRow {
        id: [n; 16],
        state: SubjectState::Active,
        created_ms: 1,
        closed_ms: None,
        tag: vec![1; 16],
    }
}

/// Fresh PostgreSQL stores, each in schemas of its own, dropped with this.
struct Schemas(Mutex<Vec<PgTarget>>);

impl crate::conformance::Scratch for Schemas {
    fn make(&self) -> (Box<dyn crate::Store>, Box<dyn crate::Keyring>) {
        let data = scratch("conf");
        let keys = PgTarget::new(&data.url, &format!("{}_keys", data.schema)).unwrap();
        let store = PgStore::open(&data).unwrap();
        let keyring = PgKeyring::open(&keys).unwrap();
        self.0.lock().unwrap().extend([data, keys]);
        (Box::new(store), Box::new(keyring))
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        for t in self.0.lock().unwrap().iter() {
            let _ = t.drop_schema();
        }
    }
}

fn schemas() -> Schemas {
    Schemas(Mutex::new(Vec::new()))
}

mod conformance {
    crate::conformance_tests!(super::schemas());
}

/// Every statement the backend prepares follows the rule a distributed PostgreSQL needs
/// (`citus`, `docs/scaling.md`): the conformance suite calls every method of the store and
/// keyring, so every statement is prepared, and each is checked here.
#[test]
fn every_statement_follows_the_citus_rule() {
    crate::conformance::run_all(&schemas()).unwrap();
    let seen = super::conn::prepared::all();
    assert!(
        seen.len() > 60,
        "only {} statements were prepared",
        seen.len()
    );
    let mut broken = Vec::new();
    for sql in &seen {
        let shape = super::citus::check(sql);
        // Shown with `--nocapture`: how each statement runs on a distributed PostgreSQL.
        println!(
            "{shape:?}\t{}",
            sql.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        match shape {
            Ok(super::citus::Shape::FanOutRead(table)) => {
                if !super::citus::FAN_OUT.contains(&table.as_str()) {
                    broken.push(format!("an unlisted fan-out read of `{table}`: {sql}"));
                }
            }
            Ok(_) => {}
            Err(why) => broken.push(format!("{why}: {sql}")),
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn migrations_apply_once_and_refuse_a_newer_schema() {
    let t = scratch("mig");
    assert_eq!(
        PgStore::migrate(&t).unwrap(),
        crate::migrations::POSTGRES.len()
    );
    assert_eq!(PgStore::migrate(&t).unwrap(), 0);
    let pool = Pool::new(&t, 1, "t").unwrap();
    pool.run(async |c| {
        c.simple(&format!(
            "INSERT INTO {}.schema_migrations (version) VALUES (99)",
            t.schema
        ))
        .await
    })
    .unwrap();
    assert!(matches!(
        PgStore::open(&t),
        Err(StoreError::Incompatible(_))
    ));
    t.drop_schema().unwrap();
}

/// 64 writers at once: one unbroken chain, every acknowledged unit there, and units
/// sharing transactions rather than each paying its own commit.
#[test]
fn p21_sixty_four_writers_share_commits_and_keep_one_chain() {
    let t = scratch("w64");
    let store = PgStore::open(&t).unwrap();
    let barrier = std::sync::Barrier::new(64);
    let acknowledged = AtomicU64::new(0);
    std::thread::scope(|s| {
        for w in 0..64u8 {
            let (store, barrier, acknowledged) = (&store, &barrier, &acknowledged);
            s.spawn(move || {
                barrier.wait();
                for i in 0..20u8 {
                    let mut subject = [w; 16];
                    subject[15] = i;
                    let unit = store.commit(
                        vec![Op::InsertSubject(SubjectRow {
                            id: subject,
                            state: SubjectState::Active,
                            created_ms: 1,
                            closed_ms: None,
                            tag: vec![1; 16],
                        })],
                        vec![steward_audit::Draft {
                            at_ms: 1,
                            actor: format!("writer-{w}"),
                            role: "service".into(),
                            action: "subject.register".into(),
                            outcome: steward_audit::Outcome::Granted,
                            subject: String::new(),
                            purpose: String::new(),
                            categories: String::new(),
                            detail: String::new(),
                            policy_version: "1".into(),
                        }],
                    );
                    if unit.is_ok() {
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(acknowledged.load(Ordering::Relaxed), 64 * 20);
    // Every acknowledged subject is there, each once.
    for w in 0..64u8 {
        for i in 0..20u8 {
            let mut subject = [w; 16];
            subject[15] = i;
            assert!(store.subject(&subject).unwrap().is_some());
        }
    }
    let mut verifier = steward_audit::ChainVerifier::new(vec![], &|_, _| true).unwrap();
    let mut fault = None;
    store
        .audit_scan(1, &mut |raw| {
            fault = verifier.push(&raw).err();
            fault.is_none()
        })
        .unwrap();
    assert_eq!(fault, None);
    assert_eq!(verifier.finish().unwrap().entries, 64 * 20);
    let (units, commits) = store.group_commit_stats();
    eprintln!("{units} units of work committed in {commits} transactions");
    // How many transactions carried them depends on scheduling, so it is shown, not
    // asserted: `p27_units_handed_over_together_share_one_transaction` checks batching.
    assert_eq!(units, 64 * 20);
    assert!(commits >= 1 && commits <= units);
    t.drop_schema().unwrap();
}

/// A unit that fails inside a shared transaction takes nothing of the others with it.
#[test]
fn a_failing_unit_leaves_the_others_in_its_transaction_standing() {
    let t = scratch("fail");
    let store = PgStore::open(&t).unwrap();
    store
        .commit(vec![Op::InsertSubject(row(1))], vec![])
        .unwrap();
    let barrier = std::sync::Barrier::new(16);
    let outcomes: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16u8)
            .map(|n| {
                let (store, barrier) = (&store, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    // Even writers insert subject 1 again: a duplicate key.
                    let id = if n % 2 == 0 { 1 } else { 100 + n };
                    store
                        .commit(vec![Op::InsertSubject(row(id))], vec![])
                        .is_ok()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (n, ok) in outcomes.iter().enumerate() {
        assert_eq!(*ok, n % 2 == 1, "writer {n}");
    }
    for n in (1..16u8).step_by(2) {
        assert!(store.subject(&[100 + n; 16]).unwrap().is_some());
    }
    t.drop_schema().unwrap();
}

/// Units handed over together share one transaction, failing ones alone (the units
/// after a failure are sent again), and writers calling `commit` meanwhile join it too:
/// every unit is counted once, so nobody waits for an outcome that never comes.
#[test]
fn p27_units_handed_over_together_share_one_transaction() {
    let t = scratch("each");
    let store = PgStore::open(&t).unwrap();
    let (units_before, commits_before) = store.group_commit_stats();
    let units: Vec<Unit> = (1..=20u8)
        .map(|n| {
            (
                vec![Op::InsertSubject(row(n))],
                vec![crate::conformance::draft("x")],
            )
        })
        .collect();
    let answers = store.commit_each(units);
    assert!(answers.iter().all(Result::is_ok));
    let (units_after, commits_after) = store.group_commit_stats();
    assert_eq!(
        (units_after - units_before, commits_after - commits_before),
        (20, 1)
    );

    // Every third unit fails (its subject exists); a writer on `commit` runs beside.
    let units: Vec<Unit> = (1..=30u8)
        .map(|n| {
            let id = if n % 3 == 0 { n / 3 } else { 100 + n };
            (
                vec![Op::InsertSubject(row(id))],
                vec![crate::conformance::draft("y")],
            )
        })
        .collect();
    let (answers, alone) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            (0..20u8)
                .map(|n| store.commit(vec![Op::InsertSubject(row(200 + n))], vec![]))
                .filter(Result::is_ok)
                .count()
        });
        (store.commit_each(units), writer.join().unwrap())
    });
    assert_eq!(alone, 20);
    for (n, a) in (1..=30u8).zip(&answers) {
        assert_eq!(a.is_ok(), n % 3 != 0, "unit {n}");
    }
    let seqs: Vec<u64> = answers.iter().flatten().flatten().map(|e| e.seq).collect();
    assert_eq!(seqs.len(), 20);
    let mut checked = 0;
    store
        .audit_scan(1, &mut |_| {
            checked += 1;
            true
        })
        .unwrap();
    assert_eq!(checked, 40, "every standing unit's entry, and no other");
    t.drop_schema().unwrap();
}

#[test]
fn schema_names_are_checked() {
    for bad in ["", "Public", "1abc", "a;drop", "a-b", &"x".repeat(64)] {
        assert!(PgTarget::new("postgres://x@y/z", bad).is_err(), "{bad}");
    }
    assert!(PgTarget::new("postgres://x@y/z", "steward_keys").is_ok());
}

/// Two stores on one schema (two processes) extend one chain: the head row is locked by
/// each transaction, so neither writes on a stale head.
#[test]
fn p21_two_stores_on_one_schema_extend_one_chain() {
    let t = scratch("two");
    let a = PgStore::open(&t).unwrap();
    let b = PgStore::open(&t).unwrap();
    let draft = || steward_audit::Draft {
        at_ms: 1,
        actor: "t".into(),
        role: "service".into(),
        action: "test".into(),
        outcome: steward_audit::Outcome::Granted,
        subject: String::new(),
        purpose: String::new(),
        categories: String::new(),
        detail: String::new(),
        policy_version: "1".into(),
    };
    std::thread::scope(|s| {
        for store in [&a, &b] {
            s.spawn(move || {
                for _ in 0..50 {
                    store.commit(vec![], vec![draft()]).unwrap();
                }
            });
        }
    });
    let mut verifier = steward_audit::ChainVerifier::new(vec![], &|_, _| true).unwrap();
    let mut fault = None;
    a.audit_scan(1, &mut |raw| {
        fault = verifier.push(&raw).err();
        fault.is_none()
    })
    .unwrap();
    assert_eq!(fault, None);
    let report = verifier.finish();
    assert_eq!(a.audit_head().unwrap().0, 100);
    assert!(report.is_ok(), "{report:?}");
    let ids_a = a.next_record_ids(10).unwrap();
    let ids_b = b.next_record_ids(10).unwrap();
    assert!(ids_a + 10 <= ids_b || ids_b + 10 <= ids_a);
    t.drop_schema().unwrap();
}

/// A backup holds every table: the list it writes is the schema's tables, exactly, and the
/// embedded store's file holds the same tables (so neither backend drifts from the other).
#[test]
fn backups_name_every_table_of_the_schema() {
    let data = scratch("tables");
    let _store = PgStore::open(&data).unwrap();
    let out = std::process::Command::new("psql")
        .args([data.url.as_str(), "-At", "-c"])
        .arg(format!(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '{}' AND table_name <> 'schema_migrations' ORDER BY 1",
            data.schema
        ))
        .output()
        .unwrap();
    let _ = data.drop_schema();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut tables: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    tables.sort();
    let mut listed: Vec<String> = DATA_TABLES.iter().map(|t| t.to_string()).collect();
    listed.sort();
    assert_eq!(
        tables, listed,
        "DATA_TABLES names every table of the data schema"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("steward.db");
    drop(crate::SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut st = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY 1",
        )
        .unwrap();
    let mut embedded: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    embedded.sort();
    // `counters` hands out record ids on PostgreSQL; the embedded store keeps its ceiling in
    // `meta`.
    listed.retain(|t| t != "counters");
    assert_eq!(embedded, listed, "both backends hold the same tables");
}
