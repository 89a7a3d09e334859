//! The embedded SQLite backend: one data file and one keyring file, both in WAL mode.
//!
//! One connection per file behind a mutex: SQLite has one writer at a time anyway, and the
//! audit head and record-id counter live beside the connection so that a unit of work reads
//! and extends them without another query.

mod apply;
mod keyring;
mod read;
mod rows;
mod schema;
mod store;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::StoreError;

use apply::*;
pub use keyring::SqliteKeyring;
use rows::*;
use schema::*;
pub use schema::{OpenCheck, SETTINGS, set_open_check};

fn backend(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    // rusqlite messages name tables, columns and constraints, never bound values.
    let text = e.to_string();
    match e.sqlite_error_code() {
        // SQLite's own text ("database or disk is full") would say it twice.
        Some(ErrorCode::DiskFull) => {
            StoreError::Full("SQLITE_FULL: no space left where the database is".into())
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt(text),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Unavailable(text),
        Some(ErrorCode::ConstraintViolation)
            if matches!(
                e,
                rusqlite::Error::SqliteFailure(f, _)
                    if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                        || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            ) =>
        {
            StoreError::Conflict(text)
        }
        _ => match e {
            // A column of another type than this build reads: the row is not in our shape.
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(text),
            _ => StoreError::Backend(text),
        },
    }
}

struct Inner {
    conn: Connection,
    /// Commits since the checkpointer was last asked to run.
    commits: u32,
    head: (u64, [u8; 32]),
    /// `PRAGMA data_version` when `head` was last known right.
    data_version: i64,
    next_record: i64,
    record_ceiling: i64,
}

/// How many record ids one reservation in `meta` covers.
const RECORD_ID_BLOCK: i64 = 65_536;

/// Commits between checkpoints of the write-ahead log.
const CHECKPOINT_EVERY: u32 = 256;

/// Frames (pages) in the write-ahead log past which it is started again from the top: 4,096
/// frames of 4 KiB, so the log stays near 16 MiB.
const RESTART_FRAMES: i64 = 4096;

/// The SQLite data store.
pub struct SqliteStore {
    inner: Mutex<Inner>,
    /// The data file, for the read-only connections of [`SqliteStore::reader`].
    path: std::path::PathBuf,
    /// A checkpointer pass has ended since the writer last caught up: see [`checkpointer`].
    behind: Arc<AtomicBool>,
    /// Asks the checkpointer thread to fold the write-ahead log into the database file; it
    /// stops when this is dropped.
    checkpoints: std::sync::mpsc::SyncSender<()>,
    /// Whether writes are failing for want of space.
    pub(crate) space: crate::SpaceWatch,
}

/// Folds the write-ahead log into the database file on its own connection and thread
/// (`PRAGMA wal_checkpoint(PASSIVE)`, which never blocks writers), so that no commit pays for
/// the bulk of a checkpoint and its fsync, as it would under SQLite's automatic checkpoints.
///
/// A passive checkpoint copies only the frames committed when it started; under steady writes
/// more arrive meanwhile, the log is never wholly copied, and SQLite can never start it again
/// from the top: it would grow without end (750 MB after 40,000 consent writes, measured).
/// So a checkpoint that finds the log [`RESTART_FRAMES`] long or more ends by raising
/// `behind`, and the writer, between two transactions, copies the few frames left
/// ([`SqliteStore::catch_up`]); its next transaction then rewrites the log from its start.
/// The writer's copy ends with two fsyncs, so it is not done after every checkpoint: that took
/// an eighth of a busy writer's time.
fn checkpointer(
    path: &Path,
    behind: Arc<AtomicBool>,
) -> Result<std::sync::mpsc::SyncSender<()>, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.execute_batch("PRAGMA busy_timeout = 5000;")
        .map_err(backend)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("steward-checkpoint".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                // (busy, frames in the log, frames copied)
                match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
                    // Frames committed while it ran are still to copy; once the log is long
                    // enough to be worth a restart, the writer copies them.
                    Ok(frames) if frames >= RESTART_FRAMES => {
                        behind.store(true, Ordering::Release);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "write-ahead log checkpoint failed; will retry");
                    }
                }
            }
        })
        .map_err(|e| StoreError::Backend(format!("cannot start the checkpointer: {e}")))?;
    Ok(tx)
}

/// SQLite's full `integrity_check` of the file at `path`, opened read-only without any of the
/// store's own checks: for reporting on a file too damaged to open as a store.
pub fn file_problems(path: &Path) -> Result<Vec<String>, StoreError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(backend)?;
    match structure_problems(&conn, true) {
        Ok(p) => Ok(p),
        // Too damaged even to be checked: that is the problem.
        Err(StoreError::Corrupt(why)) => Ok(vec![why]),
        Err(e) => Err(e),
    }
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the data file at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut conn = open_connection(path)?;
        refuse_damaged(&conn, "the data file")?;
        migrate(&mut conn, crate::migrations::SQLITE)?;
        // Checkpoints are the checkpointer's, off the commit path.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(backend)?;
        let head = chain_head(&conn)?;
        // Record ids are handed out from blocks reserved in `meta`, so opening never scans
        // the records; a restart skips what was left of the last block.
        let next_record: i64 = conn
            .query_row(
                "SELECT COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'record_id_ceiling'), 1)",
                [],
                |r| r.get(0),
            )
            .map_err(backend)?;
        let behind = Arc::new(AtomicBool::new(false));
        Ok(SqliteStore {
            path: path.to_path_buf(),
            checkpoints: checkpointer(path, Arc::clone(&behind))?,
            space: crate::SpaceWatch::default(),
            behind,
            inner: Mutex::new(Inner {
                data_version: conn
                    .query_row("PRAGMA data_version", [], |r| r.get(0))
                    .map_err(backend)?,
                conn,
                commits: 0,
                head,
                next_record,
                record_ceiling: next_record,
            }),
        })
    }

    /// Copies what the checkpointer left of the log, so that the next write transaction starts
    /// the log again from the top. Run by the writer between transactions, so nothing is
    /// appended meanwhile; it copies the frames of the last few commits only.
    ///
    /// Only one checkpoint runs at a time: if the checkpointer thread has started its next pass
    /// (it may have been asked for one while it ran), SQLite answers "busy" without copying
    /// anything, and the writer tries again before its next transaction.
    fn catch_up(&self, conn: &Connection) {
        if !self.behind.swap(false, Ordering::AcqRel) {
            return;
        }
        // (busy, frames in the log, frames copied)
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0)) {
            Ok(0) => {}
            Ok(_) => self.behind.store(true, Ordering::Release),
            // The checkpointer raises the flag again on its next pass.
            Err(e) => tracing::warn!(error = %e, "write-ahead log checkpoint failed; will retry"),
        }
    }

    /// Whether the checkpointer has finished a pass that the writer has not yet caught up on.
    #[cfg(test)]
    pub(crate) fn checkpointed(&self) -> bool {
        self.behind.load(Ordering::Acquire)
    }

    /// A read-only connection of its own to the data file, for a long read beside the writer.
    /// It reads through a memory map (up to 1 GiB of the file): a scan then costs no system
    /// call per page (verification ran about a quarter faster). The store never shrinks its
    /// file (no `VACUUM`), which is what a reader's map must not meet.
    fn reader(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(backend)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA mmap_size = 1073741824;")
            .map_err(backend)?;
        Ok(conn)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic mid-transaction rolled the transaction back when it unwound; the connection
        // is still consistent, so recover the guard rather than fail every later call.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every row a query returns, mapped.
    fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let inner = self.lock();
        let mut st = inner.conn.prepare_cached(sql).map_err(backend)?;
        st.query_map(params, map)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(backend)
    }

    /// The one row a query returns, if any, mapped.
    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        let inner = self.lock();
        let mut st = inner.conn.prepare_cached(sql).map_err(backend)?;
        st.query_row(params, map).optional().map_err(backend)
    }
}

/// The last entry's seq and hash.
type Head = (u64, [u8; 32]);

impl SqliteStore {
    /// Runs `work` in one write transaction, given the chain's head; `work` returns the new
    /// head with its result. Commits, then asks for a checkpoint every [`CHECKPOINT_EVERY`]
    /// commits.
    fn write<T>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>, Head) -> Result<(Head, T), StoreError>,
    ) -> Result<T, StoreError> {
        let result = self.write_once(work);
        self.space.observe(&result);
        result
    }

    fn write_once<T>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>, Head) -> Result<(Head, T), StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        self.catch_up(&inner.conn);
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let start = head_in(&tx, &mut inner.head, &mut inner.data_version)?;
        let (end, out) = work(&tx, start)?;
        tx.commit().map_err(backend)?;
        inner.head = end;
        inner.commits += 1;
        if inner.commits >= CHECKPOINT_EVERY {
            inner.commits = 0;
            // Full means a checkpoint is already asked for.
            let _ = self.checkpoints.try_send(());
        }
        Ok(out)
    }
}
