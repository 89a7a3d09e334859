//! The PostgreSQL backend: the data in one schema, the keyring in another reached through its
//! own connection (its own credentials), so that a backup of the data never holds a key (P20).
//!
//! The traits are synchronous; tokio-postgres is not. Each store runs one small runtime thread
//! that owns the connections' sockets, and callers drive their queries from their own thread
//! with a plain executor, so a query can borrow its parameters and several queries can be
//! pipelined on one connection without a round trip each.
//!
//! Units of work share transactions (group commit): the audit chain is one sequence, so writers
//! take turns on one connection, each inside a savepoint of the transaction that is open, and
//! whoever finds nobody else waiting commits for everyone in it. Under load a commit carries
//! many units; alone, a unit commits at once. Units handed over together (`commit_each`) join
//! in one round trip. Every transaction first takes an advisory lock on the chain and then
//! reads its head, so several processes on one database still extend one chain.

pub mod citus;
mod commit;
mod conn;
mod keyring;
#[macro_use]
mod plan;
mod read;
mod rows;
mod schema;
mod store;
#[cfg(test)]
mod tests;
pub mod tls;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use tokio_postgres::{Client, Row};

use crate::{StoreError, SubjectKey};

use commit::*;
use conn::*;
pub use keyring::PgKeyring;
use plan::*;
use read::*;
pub use read::{RECORDS_MANY, STATES_MANY, SUBJECT_RECORDS, SUBJECT_STATE};
use rows::*;
pub use schema::{DATA_TABLES, KEYRING_TABLES};

/// Where a PostgreSQL store lives: a connection string and a schema in that database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgTarget {
    /// `postgres://user@host:port/database` (any form tokio-postgres accepts).
    pub url: String,
    /// Schema holding the tables; created if missing.
    pub schema: String,
}

impl PgTarget {
    /// A target, checking the schema name (it is spliced into SQL, so only plain names pass).
    pub fn new(url: &str, schema: &str) -> Result<PgTarget, StoreError> {
        let plain = !schema.is_empty()
            && schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain {
            return Err(StoreError::Incompatible(
                "a PostgreSQL schema name must be 1-63 of a-z, 0-9 and _, not starting with a digit"
                    .into(),
            ));
        }
        Ok(PgTarget {
            url: url.to_string(),
            schema: schema.to_string(),
        })
    }
}

impl PgTarget {
    /// A schema named `prefix` plus a suffix no other store uses (this process's id, a counter
    /// and the clock's nanoseconds): for tests, and for restoring beside a live schema.
    pub fn unique(url: &str, prefix: &str) -> Result<PgTarget, StoreError> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::UNIX_EPOCH
            .elapsed()
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        PgTarget::new(url, &format!("{prefix}_{}_{n}_{nanos}", std::process::id()))
    }

    /// Whether the schema exists.
    pub fn schema_exists(&self) -> Result<bool, StoreError> {
        let schema = self.schema.as_str();
        Pool::new(self, 1, "steward-pg-check")?.run(async |c| {
            Ok(c.client
                .query_opt(
                    "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1",
                    &[&schema],
                )
                .await
                .map_err(pg)?
                .is_some())
        })
    }

    /// Runs `f` on a connection of its own to this target (backups).
    pub(crate) fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        Pool::new(self, 1, "steward-pg-backup")?.run(async |c| f(&c.client).await)
    }

    /// Drops the schema and everything in it. For tests and for replacing a store's contents
    /// on restore; never called on a running store's schema.
    pub fn drop_schema(&self) -> Result<(), StoreError> {
        let schema = &self.schema;
        Pool::new(self, 1, "steward-pg-drop")?.run(async |c| {
            c.simple(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await
        })
    }
}

/// The database the tests use: `$STEWARD_TEST_POSTGRES`, or the local server's `test`.
pub fn test_url() -> String {
    std::env::var("STEWARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Maps a driver error. Database messages name tables and constraints; their DETAIL lines can
/// quote key values, so only the code and the message are kept.
pub(crate) fn pg(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        // 08: connection exceptions; 57P01-57P03: shutting down, crash recovery, starting up.
        if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03") {
            return StoreError::Unavailable(format!("{code}: {}", db.message()));
        }
        // 53100: disk full; 53200: out of memory; 53300: too many connections.
        if code == "53100" {
            return StoreError::Full(format!("{code}: {}", db.message()));
        }
        if code == "23505" {
            return StoreError::Conflict(format!("{code}: {}", db.message()));
        }
        return StoreError::Backend(format!("{code}: {}", db.message()));
    }
    if e.is_closed() {
        return StoreError::Unavailable("the connection to PostgreSQL was lost".into());
    }
    // Everything else without a database error is transport: refused, reset, timed out, a
    // TLS handshake that failed (its cause — an unknown issuer, another name — follows).
    let mut text = format!("PostgreSQL cannot be reached: {e}");
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    StoreError::Unavailable(text)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.into())
}

fn key16(v: &[u8]) -> Result<SubjectKey, StoreError> {
    v.try_into()
        .map_err(|_| corrupt("subject id is not 16 bytes"))
}

fn hash32(v: &[u8]) -> Result<[u8; 32], StoreError> {
    v.try_into()
        .map_err(|_| corrupt("a digest is not 32 bytes"))
}

fn seq_in(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt("negative sequence number"))
}

fn seq_out(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend("sequence number out of range".into()))
}

/// Reads a column, naming the table's shape (never a value) if it is not what this build expects.
fn col<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, i: usize) -> Result<T, StoreError> {
    r.try_get(i)
        .map_err(|_| corrupt("a stored column has an unexpected type"))
}

/// Runs `fut` on the calling thread. tokio-postgres's client futures only talk to the
/// connection task over channels, so any executor can drive them.
fn block<F: Future>(fut: F) -> F::Output {
    futures_executor::block_on(fut)
}

/// How many record ids one reservation covers.
const RECORD_ID_BLOCK: i64 = 65_536;

/// Most units of work one shared transaction carries before it commits.
const MAX_MEMBERS: usize = 128;

/// The PostgreSQL data store.
pub struct PgStore {
    pool: Pool,
    writer: Mutex<Writer>,
    committed: Condvar,
    /// Units of work waiting to join the open transaction.
    arriving: AtomicUsize,
    ids: Mutex<(i64, i64)>,
    /// The advisory lock's name for this schema's chain.
    chain_lock: String,
    /// Units of work committed, and the transactions that carried them.
    units: AtomicU64,
    commits: AtomicU64,
    /// Whether writes are failing for want of space.
    space: crate::SpaceWatch,
}

impl PgStore {
    /// Connects, creates the schema if needed and applies pending migrations.
    pub fn open(target: &PgTarget) -> Result<PgStore, StoreError> {
        let pool = Pool::new(target, 4, "steward-pg")?;
        pool.migrate(&target.schema, crate::migrations::POSTGRES)?;
        Ok(PgStore {
            pool,
            writer: Mutex::new(Writer {
                conn: None,
                open: None,
                next_epoch: 1,
                outcomes: HashMap::new(),
            }),
            committed: Condvar::new(),
            arriving: AtomicUsize::new(0),
            ids: Mutex::new((0, 0)),
            chain_lock: format!("steward.audit.{}", target.schema),
            units: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            space: crate::SpaceWatch::default(),
        })
    }

    /// Applies pending migrations without opening a store; returns how many ran.
    pub fn migrate(target: &PgTarget) -> Result<usize, StoreError> {
        Pool::new(target, 1, "steward-pg-migrate")?
            .migrate(&target.schema, crate::migrations::POSTGRES)
    }

    /// Units of work committed so far, and how many transactions carried them: the group
    /// commit's batching, for tests and operators.
    pub fn group_commit_stats(&self) -> (u64, u64) {
        (
            self.units.load(Ordering::Relaxed),
            self.commits.load(Ordering::Relaxed),
        )
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }
}
