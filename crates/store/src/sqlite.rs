//! The embedded SQLite backend: one data file and one keyring file, both in WAL mode.
//!
//! One connection per file behind a mutex: SQLite has one writer at a time anyway, and the
//! audit head and record-id counter live beside the connection so that a unit of work reads
//! and extends them without another query.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use steward_audit::{Checkpoint, Entry, GENESIS, RawEntry};

use crate::{
    ApiKeyRow, ConsentRow, DisclosureRow, HoldRow, Keyring, Op, OtpRow, Reader, RecordKey,
    RecordRow, RequestRow, StaffRow, StoreError, SubjectKey, SubjectRecords, SubjectRow,
    SubjectState, Unit,
};

fn backend(e: rusqlite::Error) -> StoreError {
    // rusqlite messages name tables, columns and constraints, never bound values.
    StoreError::Backend(e.to_string())
}

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE subjects (
    id BLOB PRIMARY KEY,
    state TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE records (
    subject BLOB NOT NULL,
    category TEXT NOT NULL,
    id INTEGER NOT NULL,
    feature TEXT NOT NULL,
    source TEXT NOT NULL,
    collected_ms INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (subject, category, id)
) WITHOUT ROWID;
CREATE TABLE lookup (
    digest BLOB NOT NULL,
    subject BLOB NOT NULL,
    record INTEGER NOT NULL,
    PRIMARY KEY (digest, subject, record)
) WITHOUT ROWID;
CREATE INDEX lookup_by_subject ON lookup (subject);
CREATE TABLE consent_events (
    id INTEGER PRIMARY KEY,
    subject BLOB NOT NULL,
    target TEXT NOT NULL,
    granted INTEGER NOT NULL,
    separate INTEGER NOT NULL,
    channel TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL
);
CREATE INDEX consent_events_by_subject ON consent_events (subject, id);
CREATE TABLE consent_current (
    subject BLOB NOT NULL,
    target TEXT NOT NULL,
    granted INTEGER NOT NULL,
    separate INTEGER NOT NULL,
    channel TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL,
    PRIMARY KEY (subject, target)
) WITHOUT ROWID;
CREATE TABLE disclosures (
    id INTEGER PRIMARY KEY,
    subject BLOB NOT NULL,
    recipient TEXT NOT NULL,
    categories TEXT NOT NULL,
    purpose TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL
);
CREATE INDEX disclosures_by_subject ON disclosures (subject, id);
CREATE TABLE purge_queue (subject BLOB PRIMARY KEY, queued_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE certificates (subject BLOB PRIMARY KEY, document TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    entry BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE checkpoints (
    seq INTEGER PRIMARY KEY,
    head BLOB NOT NULL,
    at_ms INTEGER NOT NULL,
    signature BLOB NOT NULL
);
"#,
    r#"
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    digest BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"#,
    r#"
ALTER TABLE subjects ADD COLUMN closed_ms INTEGER;
CREATE INDEX subjects_by_closing ON subjects (state, closed_ms);
CREATE INDEX records_by_age ON records (category, collected_ms);
CREATE TABLE legal_holds (
    id TEXT PRIMARY KEY,
    subject BLOB NOT NULL,
    categories TEXT NOT NULL,
    reason TEXT NOT NULL,
    reference TEXT NOT NULL,
    placed_ms INTEGER NOT NULL,
    until_ms INTEGER NOT NULL,
    lifted_ms INTEGER
) WITHOUT ROWID;
CREATE INDEX legal_holds_by_subject ON legal_holds (subject);
CREATE TABLE rights_requests (
    id TEXT PRIMARY KEY,
    subject BLOB NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    target TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    due_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    verification TEXT NOT NULL,
    outcome TEXT NOT NULL,
    sealed_text BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX rights_requests_by_due ON rights_requests (due_ms);
"#,
    r#"
CREATE TABLE otp_codes (
    subject BLOB PRIMARY KEY,
    digest BLOB NOT NULL,
    expires_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE attempts (
    key TEXT PRIMARY KEY,
    window_ms INTEGER NOT NULL,
    count INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE sessions (
    digest BLOB PRIMARY KEY,
    subject BLOB NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE staff (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE staff_sessions (
    digest BLOB PRIMARY KEY,
    username TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
"#,
];

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;
         PRAGMA secure_delete = ON;
         PRAGMA cache_size = -65536;
         PRAGMA mmap_size = 268435456;",
    )
    .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), StoreError> {
    let applied: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    if applied > migrations.len() {
        return Err(StoreError::Incompatible(format!(
            "the store has schema version {applied}, newer than this build knows ({}); upgrade Steward",
            migrations.len()
        )));
    }
    for (i, sql) in migrations.iter().enumerate().skip(applied) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", i + 1)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
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
    /// A checkpointer pass has ended since the writer last caught up: see [`checkpointer`].
    behind: Arc<AtomicBool>,
    /// Asks the checkpointer thread to fold the write-ahead log into the database file; it
    /// stops when this is dropped.
    checkpoints: std::sync::mpsc::SyncSender<()>,
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

/// The last entry's seq and hash, from the store itself.
fn chain_head(conn: &Connection) -> Result<(u64, [u8; 32]), StoreError> {
    let head = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .and_then(|mut st| {
            st.query_row([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, Vec<u8>>(1)?)))
                .optional()
        })
        .map_err(backend)?;
    match head {
        Some((seq, hash)) => Ok((seq, hash32(hash)?)),
        None => Ok((0, GENESIS)),
    }
}

fn hash32(v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt("audit hash is not 32 bytes".into()))
}

fn key16(v: Vec<u8>) -> rusqlite::Result<SubjectKey> {
    v.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            16,
            rusqlite::types::Type::Blob,
            "subject id is not 16 bytes".into(),
        )
    })
}

fn consent_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConsentRow> {
    Ok(ConsentRow {
        subject: key16(r.get(0)?)?,
        target: r.get(1)?,
        granted: r.get(2)?,
        separate: r.get(3)?,
        channel: r.get(4)?,
        policy_version: r.get(5)?,
        at_ms: r.get(6)?,
        audit_seq: r.get(7)?,
    })
}

const HOLD_COLUMNS: &str = "SELECT id, subject, categories, reason, reference, placed_ms, until_ms, lifted_ms FROM legal_holds";

fn hold_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HoldRow> {
    Ok(HoldRow {
        id: r.get(0)?,
        subject: key16(r.get(1)?)?,
        categories: r.get(2)?,
        reason: r.get(3)?,
        reference: r.get(4)?,
        placed_ms: r.get(5)?,
        until_ms: r.get(6)?,
        lifted_ms: r.get(7)?,
    })
}

const REQUEST_COLUMNS: &str = "SELECT id, subject, kind, state, target, received_ms, due_ms, updated_ms, verification, outcome, sealed_text FROM rights_requests";

fn request_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: r.get(0)?,
        subject: key16(r.get(1)?)?,
        kind: r.get(2)?,
        state: r.get(3)?,
        target: r.get(4)?,
        received_ms: r.get(5)?,
        due_ms: r.get(6)?,
        updated_ms: r.get(7)?,
        verification: r.get(8)?,
        outcome: r.get(9)?,
        sealed_text: r.get(10)?,
    })
}

fn api_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    let digest: Vec<u8> = r.get(3)?;
    Ok(ApiKeyRow {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        digest: digest.try_into().map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Blob,
                "api key digest is not 32 bytes".into(),
            )
        })?,
        created_ms: r.get(4)?,
        revoked: r.get(5)?,
    })
}

fn record_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        id: r.get(0)?,
        subject: key16(r.get(1)?)?,
        category: r.get(2)?,
        feature: r.get(3)?,
        source: r.get(4)?,
        collected_ms: r.get(5)?,
        sealed: r.get(6)?,
    })
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the data file at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut conn = open_connection(path)?;
        migrate(&mut conn, MIGRATIONS)?;
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
            checkpoints: checkpointer(path, Arc::clone(&behind))?,
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

    /// Runs `f` with the raw connection (for backups and benchmarks' baselines).
    pub fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        f(&self.lock().conn)
    }
}

fn apply(tx: &rusqlite::Transaction<'_>, op: Op, audit_seq: u64) -> rusqlite::Result<()> {
    match op {
        Op::InsertSubject(s) => {
            tx.prepare_cached("INSERT INTO subjects (id, state, created_ms) VALUES (?1, ?2, ?3)")?
                .execute(params![&s.id[..], s.state.as_str(), s.created_ms])?;
        }
        Op::SetSubjectState { subject, state } => {
            tx.prepare_cached("UPDATE subjects SET state = ?2 WHERE id = ?1")?
                .execute(params![&subject[..], state.as_str()])?;
        }
        Op::InsertRecords(rows) => {
            let mut st = tx.prepare_cached(
                "INSERT INTO records (id, subject, category, feature, source, collected_ms, sealed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for r in rows {
                st.execute(params![
                    r.id,
                    &r.subject[..],
                    r.category,
                    r.feature,
                    r.source,
                    r.collected_ms,
                    r.sealed
                ])?;
            }
        }
        Op::InsertIndex(rows) => {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO lookup (digest, subject, record) VALUES (?1, ?2, ?3)",
            )?;
            for r in rows {
                st.execute(params![&r.digest[..], &r.subject[..], r.record])?;
            }
        }
        Op::RecordConsent(c) => {
            let seq = if c.audit_seq == 0 {
                audit_seq
            } else {
                c.audit_seq
            };
            tx.prepare_cached(
                "INSERT INTO consent_events
                 (subject, target, granted, separate, channel, policy_version, at_ms, audit_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                &c.subject[..],
                c.target,
                c.granted,
                c.separate,
                c.channel,
                c.policy_version,
                c.at_ms,
                seq
            ])?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO consent_current
                 (subject, target, granted, separate, channel, policy_version, at_ms, audit_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                &c.subject[..],
                c.target,
                c.granted,
                c.separate,
                c.channel,
                c.policy_version,
                c.at_ms,
                seq
            ])?;
        }
        Op::InsertDisclosure(d) => {
            let seq = if d.audit_seq == 0 {
                audit_seq
            } else {
                d.audit_seq
            };
            tx.prepare_cached(
                "INSERT INTO disclosures
                 (subject, recipient, categories, purpose, legal_basis, at_ms, audit_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                &d.subject[..],
                d.recipient,
                d.categories,
                d.purpose,
                d.legal_basis,
                d.at_ms,
                seq
            ])?;
        }
        Op::EnqueuePurge { subject, at_ms } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO purge_queue (subject, queued_ms) VALUES (?1, ?2)",
            )?
            .execute(params![&subject[..], at_ms])?;
        }
        Op::DequeuePurge { subject } => {
            tx.prepare_cached("DELETE FROM purge_queue WHERE subject = ?1")?
                .execute(params![&subject[..]])?;
        }
        Op::StoreCertificate { subject, document } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO certificates (subject, document) VALUES (?1, ?2)",
            )?
            .execute(params![&subject[..], document])?;
        }
        Op::CloseSubject { subject, at_ms } => {
            tx.prepare_cached(
                "UPDATE subjects SET state = 'closed', closed_ms = ?2 WHERE id = ?1",
            )?
            .execute(params![&subject[..], at_ms])?;
        }
        Op::DeleteRecords(keys) => {
            let mut index =
                tx.prepare_cached("DELETE FROM lookup WHERE subject = ?1 AND record = ?2")?;
            let mut records = tx.prepare_cached(
                "DELETE FROM records WHERE subject = ?1 AND category = ?2 AND id = ?3",
            )?;
            for k in keys {
                index.execute(params![&k.subject[..], k.id])?;
                records.execute(params![&k.subject[..], k.category, k.id])?;
            }
        }
        Op::PlaceHold(h) => {
            tx.prepare_cached(
                "INSERT INTO legal_holds (id, subject, categories, reason, reference, placed_ms, until_ms, lifted_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                h.id,
                &h.subject[..],
                h.categories,
                h.reason,
                h.reference,
                h.placed_ms,
                h.until_ms,
                h.lifted_ms
            ])?;
        }
        Op::LiftHold { id, at_ms } => {
            tx.prepare_cached("UPDATE legal_holds SET lifted_ms = ?2 WHERE id = ?1")?
                .execute(params![id, at_ms])?;
        }
        Op::PutRequest(r) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO rights_requests (id, subject, kind, state, target, received_ms,
                 due_ms, updated_ms, verification, outcome, sealed_text)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                r.id,
                &r.subject[..],
                r.kind,
                r.state,
                r.target,
                r.received_ms,
                r.due_ms,
                r.updated_ms,
                r.verification,
                r.outcome,
                r.sealed_text
            ])?;
        }
        Op::PutOtp(o) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO otp_codes (subject, digest, expires_ms, attempts) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![&o.subject[..], &o.digest[..], o.expires_ms, o.attempts])?;
        }
        Op::DeleteOtp { subject } => {
            tx.prepare_cached("DELETE FROM otp_codes WHERE subject = ?1")?
                .execute(params![&subject[..]])?;
        }
        Op::PutAttempts {
            key,
            window_ms,
            count,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO attempts (key, window_ms, count) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![key, window_ms, count])?;
        }
        Op::PutSession {
            digest,
            subject,
            expires_ms,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sessions (digest, subject, expires_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![&digest[..], &subject[..], expires_ms])?;
        }
        Op::PutStaff(st) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO staff (username, role, password_hash, created_ms, disabled)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                st.username,
                st.role,
                st.password_hash,
                st.created_ms,
                st.disabled
            ])?;
        }
        Op::PutStaffSession {
            digest,
            username,
            expires_ms,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO staff_sessions (digest, username, expires_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![&digest[..], username, expires_ms])?;
        }
        Op::InsertApiKey(k) => {
            tx.prepare_cached(
                "INSERT INTO api_keys (id, name, role, digest, created_ms, revoked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                k.id,
                k.name,
                k.role,
                &k.digest[..],
                k.created_ms,
                k.revoked
            ])?;
        }
        Op::RevokeApiKey { id } => {
            tx.prepare_cached("UPDATE api_keys SET revoked = 1 WHERE id = ?1")?
                .execute(params![id])?;
        }
        Op::SetMeta { key, value } => {
            tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
                .execute(params![key, value])?;
        }
    }
    Ok(())
}

fn subject_records(
    conn: &Connection,
    subject: &SubjectKey,
    consent_target: Option<&str>,
    categories: &[&str],
) -> Result<Option<SubjectRecords>, StoreError> {
    macro_rules! head {
        () => {
            "SELECT s.state, c.granted, r.id, r.category, r.feature, r.source, r.collected_ms, r.sealed
             FROM subjects s
             LEFT JOIN consent_current c ON c.subject = s.id AND c.target = ?2"
        };
    }
    // The two common shapes are fixed strings: no SQL is built on the read path for them.
    const NONE: &str = "SELECT s.state, c.granted, NULL, NULL, NULL, NULL, NULL, NULL
         FROM subjects s
         LEFT JOIN consent_current c ON c.subject = s.id AND c.target = ?2
         WHERE s.id = ?1";
    const ONE: &str = concat!(
        head!(),
        " LEFT JOIN records r ON r.subject = s.id AND r.category = ?3 WHERE s.id = ?1 ORDER BY r.id"
    );
    let many;
    let sql = match categories.len() {
        0 => NONE,
        1 => ONE,
        n => {
            many = format!(
                concat!(
                    head!(),
                    " LEFT JOIN records r ON r.subject = s.id AND r.category IN ({}) WHERE s.id = ?1 ORDER BY r.id"
                ),
                (0..n)
                    .map(|i| format!("?{}", i + 3))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            many.as_str()
        }
    };
    let mut st = conn.prepare_cached(sql).map_err(backend)?;
    let key = &subject[..];
    let target = consent_target.unwrap_or("");
    let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(categories.len() + 2);
    values.push(&key);
    values.push(&target);
    for c in categories {
        values.push(c);
    }
    let mut rows = st.query(values.as_slice()).map_err(backend)?;
    let mut out: Option<SubjectRecords> = None;
    while let Some(r) = rows.next().map_err(backend)? {
        let found = match &mut out {
            Some(found) => found,
            None => {
                let text: String = r.get(0).map_err(backend)?;
                let granted: Option<bool> = r.get(1).map_err(backend)?;
                out.insert(SubjectRecords {
                    state: SubjectState::parse(&text)
                        .ok_or_else(|| StoreError::Corrupt("unknown subject state".into()))?,
                    consent_granted: granted.unwrap_or(false),
                    records: Vec::new(),
                })
            }
        };
        let id: Option<i64> = r.get(2).map_err(backend)?;
        if let Some(id) = id {
            found.records.push(RecordRow {
                id,
                subject: *subject,
                category: r.get(3).map_err(backend)?,
                feature: r.get(4).map_err(backend)?,
                source: r.get(5).map_err(backend)?,
                collected_ms: r.get(6).map_err(backend)?,
                sealed: r.get(7).map_err(backend)?,
            });
        }
    }
    Ok(out)
}

fn consent(
    conn: &Connection,
    subject: &SubjectKey,
    target: &str,
) -> Result<Option<ConsentRow>, StoreError> {
    conn.prepare_cached(
        "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq
             FROM consent_current WHERE subject = ?1 AND target = ?2",
    )
    .and_then(|mut st| {
        st.query_row(params![&subject[..], target], consent_row)
            .optional()
    })
    .map_err(backend)
}

/// Reads inside a unit of work's transaction.
struct TxReader<'a>(&'a Connection);

impl Reader for TxReader<'_> {
    fn subject_records(
        &self,
        subject: &SubjectKey,
        consent_target: Option<&str>,
        categories: &[&str],
    ) -> Result<Option<SubjectRecords>, StoreError> {
        subject_records(self.0, subject, consent_target, categories)
    }

    fn consent(
        &self,
        subject: &SubjectKey,
        target: &str,
    ) -> Result<Option<ConsentRow>, StoreError> {
        consent(self.0, subject, target)
    }
}

impl Reader for SqliteStore {
    fn subject_records(
        &self,
        subject: &SubjectKey,
        consent_target: Option<&str>,
        categories: &[&str],
    ) -> Result<Option<SubjectRecords>, StoreError> {
        subject_records(&self.lock().conn, subject, consent_target, categories)
    }

    fn consent(
        &self,
        subject: &SubjectKey,
        target: &str,
    ) -> Result<Option<ConsentRow>, StoreError> {
        consent(&self.lock().conn, subject, target)
    }
}

/// The last entry's seq and hash.
type Head = (u64, [u8; 32]);

/// The chain's head as it stands inside a write transaction. Another process (a CLI command
/// beside a running server) may have extended the chain since this connection last wrote:
/// `data_version` moves only for other connections' commits, so the head is re-read, inside
/// the write lock, exactly when it must be.
fn head_in(
    tx: &rusqlite::Transaction<'_>,
    head: &mut Head,
    data_version: &mut i64,
) -> Result<Head, StoreError> {
    let version: i64 = tx
        .query_row("PRAGMA data_version", [], |r| r.get(0))
        .map_err(backend)?;
    if version != *data_version {
        *head = chain_head(tx)?;
        *data_version = version;
    }
    Ok(*head)
}

/// Applies one unit's changes and appends its entries after `head`; the new head and the
/// entries.
fn append(
    tx: &rusqlite::Transaction<'_>,
    head: Head,
    (ops, audit): Unit,
) -> Result<(Head, Vec<Entry>), StoreError> {
    let first_seq = if audit.is_empty() { 0 } else { head.0 + 1 };
    for op in ops {
        apply(tx, op, first_seq).map_err(backend)?;
    }
    let mut entries = Vec::with_capacity(audit.len());
    let (mut seq, mut hash) = head;
    let mut st = tx
        .prepare_cached("INSERT INTO audit (seq, entry, hash) VALUES (?1, ?2, ?3)")
        .map_err(backend)?;
    for d in audit {
        let (e, bytes) = Entry::chain_encoded(seq, hash, d);
        st.execute(params![e.seq, bytes, &e.hash[..]])
            .map_err(backend)?;
        seq = e.seq;
        hash = e.hash;
        entries.push(e);
    }
    Ok(((seq, hash), entries))
}

impl SqliteStore {
    /// Runs `work` in one write transaction, given the chain's head; `work` returns the new
    /// head with its result. Commits, then asks for a checkpoint every [`CHECKPOINT_EVERY`]
    /// commits.
    fn write<T>(
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

impl crate::Store for SqliteStore {
    fn read_commit(
        &self,
        work: &mut dyn FnMut(&dyn Reader) -> Result<Unit, StoreError>,
    ) -> Result<Vec<Entry>, StoreError> {
        self.write(|tx, head| {
            let unit = work(&TxReader(tx))?;
            append(tx, head, unit)
        })
    }

    /// One transaction for every unit, each in a savepoint: a unit that fails rolls back
    /// alone; if the commit fails, every unit fails.
    fn commit_each(&self, units: Vec<Unit>) -> Vec<Result<Vec<Entry>, StoreError>> {
        let n = units.len();
        self.write(|tx, mut at| {
            let mut results = Vec::with_capacity(n);
            for unit in units {
                tx.execute_batch("SAVEPOINT unit").map_err(backend)?;
                match append(tx, at, unit) {
                    Ok((end, entries)) => {
                        at = end;
                        results.push(Ok(entries));
                    }
                    Err(e) => {
                        tx.execute_batch("ROLLBACK TO unit").map_err(backend)?;
                        results.push(Err(e));
                    }
                }
                tx.execute_batch("RELEASE unit").map_err(backend)?;
            }
            Ok((at, results))
        })
        .unwrap_or_else(|e| vec![Err(e); n])
    }

    fn next_record_ids(&self, n: usize) -> Result<i64, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let n = i64::try_from(n).map_err(|_| StoreError::Backend("record ids exhausted".into()))?;
        let fits = inner
            .next_record
            .checked_add(n)
            .is_some_and(|end| end <= inner.record_ceiling);
        if !fits {
            // Reserve a new block past whatever any process has reserved, in one transaction.
            let tx = inner
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let stored: i64 = tx
                .query_row(
                    "SELECT COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'record_id_ceiling'), 1)",
                    [],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            let start = stored.max(inner.next_record);
            let ceiling = start
                .checked_add(n)
                .and_then(|end| end.checked_add(RECORD_ID_BLOCK))
                .ok_or_else(|| StoreError::Backend("record ids exhausted".into()))?;
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('record_id_ceiling', ?1)",
                params![ceiling.to_string()],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            inner.next_record = start;
            inner.record_ceiling = ceiling;
        }
        let first = inner.next_record;
        inner.next_record = first + n;
        Ok(first)
    }

    fn subject(&self, id: &SubjectKey) -> Result<Option<SubjectRow>, StoreError> {
        let row = self.row(
            "SELECT state, created_ms, closed_ms FROM subjects WHERE id = ?1",
            params![&id[..]],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            },
        )?;
        row.map(|(state, created_ms, closed_ms)| {
            Ok(SubjectRow {
                id: *id,
                state: SubjectState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt("unknown subject state".into()))?,
                created_ms,
                closed_ms,
            })
        })
        .transpose()
    }

    fn find_by_index(&self, digest: &[u8; 16]) -> Result<Vec<SubjectKey>, StoreError> {
        self.rows(
            "SELECT DISTINCT subject FROM lookup WHERE digest = ?1",
            params![&digest[..]],
            |r| key16(r.get(0)?),
        )
    }

    fn records(&self, subject: &SubjectKey) -> Result<Vec<RecordRow>, StoreError> {
        self.rows(
            "SELECT id, subject, category, feature, source, collected_ms, sealed
             FROM records WHERE subject = ?1 ORDER BY id",
            params![&subject[..]],
            record_row,
        )
    }

    fn consents_in_force(&self, subject: &SubjectKey) -> Result<Vec<ConsentRow>, StoreError> {
        self.rows(
            "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq
             FROM consent_current WHERE subject = ?1 ORDER BY target",
            params![&subject[..]],
            consent_row,
        )
    }

    fn consent_history(&self, subject: &SubjectKey) -> Result<Vec<ConsentRow>, StoreError> {
        self.rows(
            "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq
             FROM consent_events WHERE subject = ?1 ORDER BY id",
            params![&subject[..]],
            consent_row,
        )
    }

    fn disclosures(&self, subject: &SubjectKey) -> Result<Vec<DisclosureRow>, StoreError> {
        self.rows(
            "SELECT subject, recipient, categories, purpose, legal_basis, at_ms, audit_seq
             FROM disclosures WHERE subject = ?1 ORDER BY id",
            params![&subject[..]],
            |r| {
                Ok(DisclosureRow {
                    subject: key16(r.get(0)?)?,
                    recipient: r.get(1)?,
                    categories: r.get(2)?,
                    purpose: r.get(3)?,
                    legal_basis: r.get(4)?,
                    at_ms: r.get(5)?,
                    audit_seq: r.get(6)?,
                })
            },
        )
    }

    fn certificate(&self, subject: &SubjectKey) -> Result<Option<String>, StoreError> {
        self.row(
            "SELECT document FROM certificates WHERE subject = ?1",
            params![&subject[..]],
            |r| r.get(0),
        )
    }

    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let mut inner = self.lock();
        let head = chain_head(&inner.conn)?;
        inner.head = head;
        Ok(head)
    }

    fn audit_scan(
        &self,
        from_seq: u64,
        visit: &mut dyn FnMut(RawEntry<'_>) -> bool,
    ) -> Result<(), StoreError> {
        let inner = self.lock();
        let mut st = inner
            .conn
            .prepare_cached("SELECT seq, entry, hash FROM audit WHERE seq >= ?1 ORDER BY seq")
            .map_err(backend)?;
        let mut rows = st.query(params![from_seq]).map_err(backend)?;
        while let Some(r) = rows.next().map_err(backend)? {
            let seq: u64 = r.get(0).map_err(backend)?;
            let blob = |i: usize| match r.get_ref(i) {
                Ok(ValueRef::Blob(b)) => b,
                _ => &[],
            };
            if !visit(RawEntry {
                seq,
                bytes: blob(1),
                hash: blob(2),
            }) {
                break;
            }
        }
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = self.rows(
            "SELECT seq, head, at_ms, signature FROM checkpoints ORDER BY seq",
            [],
            |r| {
                Ok((
                    r.get::<_, u64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            },
        )?;
        rows.into_iter()
            .map(|(seq, head, at_ms, sig)| {
                Ok(Checkpoint {
                    seq,
                    head: hash32(head)?,
                    at_ms,
                    signature: sig.try_into().map_err(|_| {
                        StoreError::Corrupt("checkpoint signature is not 64 bytes".into())
                    })?,
                })
            })
            .collect()
    }

    fn add_checkpoint(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        let inner = self.lock();
        inner
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO checkpoints (seq, head, at_ms, signature) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| {
                st.execute(params![cp.seq, &cp.head[..], cp.at_ms, &cp.signature[..]])
            })
            .map_err(backend)?;
        Ok(())
    }

    fn purge_queue(&self) -> Result<Vec<SubjectKey>, StoreError> {
        self.rows(
            "SELECT subject FROM purge_queue ORDER BY queued_ms",
            [],
            |r| key16(r.get(0)?),
        )
    }

    fn purge_records(&self, subject: &SubjectKey, limit: usize) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let n = tx
            .prepare_cached(
                "DELETE FROM lookup WHERE subject = ?1 AND record IN
                 (SELECT id FROM records WHERE subject = ?1 LIMIT ?2)",
            )
            .and_then(|mut st| st.execute(params![&subject[..], limit]))
            .and_then(|_| {
                tx.prepare_cached(
                    "DELETE FROM records WHERE subject = ?1 AND (category, id) IN
                     (SELECT category, id FROM records WHERE subject = ?1 LIMIT ?2)",
                )
            })
            .and_then(|mut st| st.execute(params![&subject[..], limit]))
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(n)
    }

    fn holds(&self, subject: &SubjectKey) -> Result<Vec<HoldRow>, StoreError> {
        self.rows(
            &format!("{HOLD_COLUMNS} WHERE subject = ?1 ORDER BY placed_ms, id"),
            params![&subject[..]],
            hold_row,
        )
    }

    fn active_holds(&self, now_ms: i64) -> Result<Vec<HoldRow>, StoreError> {
        self.rows(
            &format!(
                "{HOLD_COLUMNS} WHERE lifted_ms IS NULL AND until_ms > ?1 ORDER BY placed_ms, id"
            ),
            params![now_ms],
            hold_row,
        )
    }

    fn hold(&self, id: &str) -> Result<Option<HoldRow>, StoreError> {
        self.row(
            &format!("{HOLD_COLUMNS} WHERE id = ?1"),
            params![id],
            hold_row,
        )
    }

    fn request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        self.row(
            &format!("{REQUEST_COLUMNS} WHERE id = ?1"),
            params![id],
            request_row,
        )
    }

    fn requests_due(&self, before_ms: i64) -> Result<Vec<RequestRow>, StoreError> {
        self.rows(
            &format!(
                "{REQUEST_COLUMNS} WHERE due_ms <= ?1 AND state NOT IN ('completed', 'refused')
                 ORDER BY due_ms, id"
            ),
            params![before_ms],
            request_row,
        )
    }

    fn records_collected_before(
        &self,
        category: &str,
        before_ms: i64,
        after: Option<(i64, SubjectKey, i64)>,
        limit: usize,
    ) -> Result<Vec<(i64, RecordKey)>, StoreError> {
        let (at, subject, id) = after.unwrap_or((i64::MIN, [0; 16], i64::MIN));
        self.rows(
            "SELECT collected_ms, subject, id FROM records
             WHERE category = ?1 AND collected_ms < ?2
               AND (collected_ms, subject, id) > (?3, ?4, ?5)
             ORDER BY collected_ms, subject, id LIMIT ?6",
            params![
                category,
                before_ms,
                at,
                &subject[..],
                id,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| {
                Ok((
                    r.get(0)?,
                    RecordKey {
                        subject: key16(r.get(1)?)?,
                        category: category.to_string(),
                        id: r.get(2)?,
                    },
                ))
            },
        )
    }

    fn closed_before(&self, before_ms: i64) -> Result<Vec<(SubjectKey, i64)>, StoreError> {
        self.rows(
            "SELECT id, closed_ms FROM subjects WHERE state = 'closed' AND closed_ms < ?1 ORDER BY closed_ms",
            params![before_ms],
            |r| Ok((key16(r.get(0)?)?, r.get(1)?)),
        )
    }

    fn otp(&self, subject: &SubjectKey) -> Result<Option<OtpRow>, StoreError> {
        self.row(
            "SELECT subject, digest, expires_ms, attempts FROM otp_codes WHERE subject = ?1",
            params![&subject[..]],
            |r| {
                let digest: Vec<u8> = r.get(1)?;
                Ok(OtpRow {
                    subject: key16(r.get(0)?)?,
                    digest: digest.try_into().unwrap_or([0; 16]),
                    expires_ms: r.get(2)?,
                    attempts: r.get(3)?,
                })
            },
        )
    }

    fn attempts(&self, key: &str) -> Result<Option<(i64, u32)>, StoreError> {
        self.row(
            "SELECT window_ms, count FROM attempts WHERE key = ?1",
            params![key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn session(&self, digest: &[u8; 32]) -> Result<Option<(SubjectKey, i64)>, StoreError> {
        self.row(
            "SELECT subject, expires_ms FROM sessions WHERE digest = ?1",
            params![&digest[..]],
            |r| Ok((key16(r.get(0)?)?, r.get(1)?)),
        )
    }

    fn staff(&self, username: &str) -> Result<Option<StaffRow>, StoreError> {
        self.row(
            "SELECT username, role, password_hash, created_ms, disabled FROM staff WHERE username = ?1",
            params![username],
            |r| {
                Ok(StaffRow {
                    username: r.get(0)?,
                    role: r.get(1)?,
                    password_hash: r.get(2)?,
                    created_ms: r.get(3)?,
                    disabled: r.get(4)?,
                })
            },
        )
    }

    fn staff_session(&self, digest: &[u8; 32]) -> Result<Option<(String, i64)>, StoreError> {
        self.row(
            "SELECT username, expires_ms FROM staff_sessions WHERE digest = ?1",
            params![&digest[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn settle(&self) -> Result<(), StoreError> {
        self.lock()
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(backend)
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        self.rows(
            "SELECT id, name, role, digest, created_ms, revoked FROM api_keys ORDER BY created_ms, id",
            [],
            api_key_row,
        )
    }

    fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        self.row(
            "SELECT id, name, role, digest, created_ms, revoked FROM api_keys WHERE id = ?1",
            params![id],
            api_key_row,
        )
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
    }
}

const KEYRING_MIGRATIONS: &[&str] = &[
    "CREATE TABLE data_keys (subject BLOB PRIMARY KEY, wrapped BLOB NOT NULL) WITHOUT ROWID;",
    "CREATE TABLE destroyed (subject BLOB PRIMARY KEY) WITHOUT ROWID;",
];

/// The SQLite keyring: its own file, with `secure_delete` on and the write-ahead log truncated
/// after every destruction, so a destroyed key leaves no copy in the keyring's files.
pub struct SqliteKeyring {
    conn: Mutex<Connection>,
}

impl SqliteKeyring {
    /// Opens (creating if needed) the keyring file at `path`.
    pub fn open(path: &Path) -> Result<SqliteKeyring, StoreError> {
        let mut conn = open_connection(path)?;
        migrate(&mut conn, KEYRING_MIGRATIONS)?;
        Ok(SqliteKeyring {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Keyring for SqliteKeyring {
    fn get(&self, subject: &SubjectKey) -> Result<Option<Vec<u8>>, StoreError> {
        self.lock()
            .prepare_cached("SELECT wrapped FROM data_keys WHERE subject = ?1")
            .and_then(|mut st| st.query_row(params![&subject[..]], |r| r.get(0)).optional())
            .map_err(backend)
    }

    fn put(&self, subject: &SubjectKey, wrapped: &[u8]) -> Result<(), StoreError> {
        self.lock()
            .prepare_cached("INSERT INTO data_keys (subject, wrapped) VALUES (?1, ?2)")
            .and_then(|mut st| st.execute(params![&subject[..], wrapped]))
            .map_err(backend)?;
        Ok(())
    }

    fn destroy(&self, subject: &SubjectKey) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(backend)?;
        let n = tx
            .prepare_cached("DELETE FROM data_keys WHERE subject = ?1")
            .and_then(|mut st| st.execute(params![&subject[..]]))
            .and_then(|n| {
                tx.prepare_cached("INSERT OR IGNORE INTO destroyed (subject) VALUES (?1)")?
                    .execute(params![&subject[..]])?;
                Ok(n)
            })
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        // secure_delete zeroed the page in the database file once it is checkpointed; the
        // write-ahead log still holds older page images until it is checkpointed and truncated.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(backend)?;
        Ok(n > 0)
    }

    fn destroyed(&self) -> Result<Vec<SubjectKey>, StoreError> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached("SELECT subject FROM destroyed ORDER BY subject")
            .map_err(backend)?;
        st.query_map([], |r| key16(r.get(0)?))
            .and_then(|rows| rows.collect())
            .map_err(backend)
    }
}
