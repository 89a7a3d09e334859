//! Opening a SQLite file with the settings every Steward file uses, and applying its
//! migrations (`migrations/sqlite*/`), each in its own transaction, a statement at a time.

use std::path::Path;

use rusqlite::Connection;

use crate::StoreError;

use super::backend;
use crate::migrations::Migration;

/// The settings every connection to a Steward file runs with: write-ahead logging, commits
/// durable at checkpoint (`NORMAL`), deleted pages zeroed, a 64 MiB page cache and 256 MiB of
/// the file mapped. Public so that a benchmark's raw baseline runs with the same.
pub const SETTINGS: &str = "PRAGMA journal_mode = WAL;
     PRAGMA synchronous = NORMAL;
     PRAGMA busy_timeout = 5000;
     PRAGMA secure_delete = ON;
     PRAGMA cache_size = -65536;
     PRAGMA mmap_size = 268435456;";

pub(super) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.execute_batch(SETTINGS).map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// SQLite's check of the file's structure: `PRAGMA quick_check` (the b-trees and their pages,
/// not index content against tables), or with `deep` the full `PRAGMA integrity_check`. The
/// problems found, in SQLite's words (they name pages and tables, never values); none when
/// the file is sound.
pub(super) fn structure_problems(conn: &Connection, deep: bool) -> Result<Vec<String>, StoreError> {
    let pragma = if deep {
        "PRAGMA integrity_check(100)"
    } else {
        "PRAGMA quick_check(100)"
    };
    let mut st = conn.prepare(pragma).map_err(backend)?;
    let rows: Vec<String> = st
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(backend)?;
    Ok(rows.into_iter().filter(|r| r != "ok").collect())
}

/// How much of a file's structure is checked when it opens.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OpenCheck {
    /// `PRAGMA integrity_check`: every b-tree, and every index against its table — what finds
    /// a row whose key bytes changed (the default).
    Full,
    /// `PRAGMA quick_check`: the b-trees' structure, not index content against tables.
    Quick,
    /// Nothing (for a file too large to read at every open; `steward check` still does).
    Off,
}

static OPEN_CHECK: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Sets how much every later open of an embedded store checks (setting `sqlite_open_check`).
pub fn set_open_check(check: OpenCheck) {
    let v = match check {
        OpenCheck::Full => 0,
        OpenCheck::Quick => 1,
        OpenCheck::Off => 2,
    };
    OPEN_CHECK.store(v, std::sync::atomic::Ordering::Relaxed);
}

/// Refuses a file whose structure is damaged (P34): damage is an error, never an answer.
pub(super) fn refuse_damaged(conn: &Connection, what: &str) -> Result<(), StoreError> {
    let deep = match OPEN_CHECK.load(std::sync::atomic::Ordering::Relaxed) {
        0 => true,
        1 => false,
        _ => return Ok(()),
    };
    let problems = structure_problems(conn, deep)?;
    match problems.first() {
        None => Ok(()),
        Some(first) => Err(StoreError::Corrupt(format!(
            "{what} failed SQLite's {} ({} problems, the first: {first}); restore it from a backup, and run `steward check` for the full report",
            if deep {
                "integrity_check"
            } else {
                "quick_check"
            },
            problems.len()
        ))),
    }
}

pub(super) fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<(), StoreError> {
    let applied: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    if applied > migrations.len() {
        return Err(StoreError::Incompatible(format!(
            "the store has schema version {applied}, newer than this build knows ({}); upgrade Steward",
            migrations.len()
        )));
    }
    for m in migrations.iter().skip(applied) {
        let tx = conn.transaction().map_err(backend)?;
        for statement in m.statements() {
            tx.execute(&statement, [])
                .map_err(|e| StoreError::Backend(format!("migration {}: {e}", m.name)))?;
        }
        tx.pragma_update(None, "user_version", m.version)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}
