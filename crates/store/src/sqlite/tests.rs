//! The SQLite backend's own tests: the conformance suite (one test per check), the
//! write-ahead log under steady writes, two processes on one file, and what a destroyed key
//! leaves in the keyring's files.

use super::{SqliteKeyring, SqliteStore};

/// Fresh SQLite stores in a temporary directory of their own.
struct Files {
    dir: tempfile::TempDir,
    made: std::cell::Cell<usize>,
}

impl crate::conformance::Scratch for Files {
    fn make(&self) -> (Box<dyn crate::Store>, Box<dyn crate::Keyring>) {
        self.made.set(self.made.get() + 1);
        let n = self.made.get();
        let store = SqliteStore::open(&self.dir.path().join(format!("data-{n}.db"))).unwrap();
        let keyring = SqliteKeyring::open(&self.dir.path().join(format!("keys-{n}.db"))).unwrap();
        (Box::new(store), Box::new(keyring))
    }
}

fn files() -> Files {
    Files {
        dir: tempfile::tempdir().unwrap(),
        made: std::cell::Cell::new(0),
    }
}

mod conformance {
    crate::conformance_tests!(super::files());
}

/// Under steady writes the write-ahead log must start again from its top once the
/// checkpointer has copied it; a passive checkpoint alone never catches a busy writer, and
/// the log grew without end (750 MB after 40,000 consent writes).
#[test]
fn p35_the_write_ahead_log_starts_again_under_steady_writes() {
    use crate::Store;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.db");
    let store = SqliteStore::open(&path).unwrap();
    // Frames in the log, as its header says (a passive checkpoint also reports them).
    let frames = || -> i64 {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .unwrap()
    };
    for round in 0..3 {
        // Write on while the checkpointer (asked every CHECKPOINT_EVERY commits) copies the
        // log, so that commits land during its pass, as they do under load.
        let mut n = 0;
        while !store.checkpointed() {
            store
                .commit(vec![], vec![crate::conformance::draft("usage")])
                .unwrap();
            n += 1;
            assert!(n < 1_000_000, "the checkpointer never ran");
        }
        // The next transaction copies what is left, then rewrites the log from its start;
        // if the checkpointer's next pass holds the checkpoint lock, the one after it does.
        let mut tries = 0;
        while store.checkpointed() {
            store
                .commit(vec![], vec![crate::conformance::draft("usage")])
                .unwrap();
            tries += 1;
            assert!(tries < 100_000, "round {round}: the writer never caught up");
        }
        let frames = frames();
        assert!(
            frames < 16,
            "round {round}: the log holds {frames} frames after {n} commits"
        );
    }
}

/// A CLI command writing beside a running server: two handles on one file must extend one
/// chain and never hand out the same record id.
#[test]
fn p21_two_processes_extend_one_chain_and_share_record_ids() {
    use crate::Store;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.db");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    let mut ids = std::collections::HashSet::new();
    for i in 0..10 {
        let (store, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        store
            .commit(
                vec![],
                vec![
                    crate::conformance::draft("x"),
                    crate::conformance::draft("y"),
                ],
            )
            .unwrap();
        for _ in 0..3 {
            let first = store.next_record_ids(70_000).unwrap();
            assert!(ids.insert(first), "record id {first} handed out twice");
            let _ = other.audit_head().unwrap();
        }
    }
    let mut ranges: Vec<i64> = ids.into_iter().collect();
    ranges.sort();
    assert!(
        ranges.windows(2).all(|w| w[1] - w[0] >= 70_000),
        "ranges overlap"
    );
    let mut prev = steward_audit::GENESIS;
    let mut n = 0;
    a.audit_scan(1, &mut |e| {
        n += 1;
        assert_eq!(e.seq, n);
        assert_eq!(e.bytes.get(33..65).unwrap(), &prev[..]);
        prev = e.hash.try_into().unwrap();
        true
    })
    .unwrap();
    assert_eq!(n, 20);
}

#[test]
fn p28_destroyed_key_leaves_no_copy_in_keyring_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let keyring = SqliteKeyring::open(&path).unwrap();
    let marker = b"WRAPPED-KEY-MARKER-0123456789abcdef";
    use crate::Keyring;
    let holds = |f: &str| {
        // Both files must be there to be read: a missing file proves nothing.
        let bytes =
            std::fs::read(dir.path().join(f)).unwrap_or_else(|e| panic!("cannot read {f}: {e}"));
        bytes.windows(marker.len()).any(|w| w == marker)
    };
    keyring.put(&[7; 16], marker).unwrap();
    // The key was on disk before: in the log, or the database once checkpointed.
    assert!(
        holds("keys.db") || holds("keys.db-wal"),
        "the wrapped key never reached the keyring's files"
    );
    keyring.destroy(&[7; 16]).unwrap();
    for f in ["keys.db", "keys.db-wal"] {
        assert!(!holds(f), "{f} still holds the destroyed key");
    }
}
