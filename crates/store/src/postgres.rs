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

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use steward_audit::{Checkpoint, Entry, GENESIS, RawEntry};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use crate::{
    ApiKeyRow, ConsentRow, DisclosureRow, HoldRow, Keyring, Op, OtpRow, Reader, RecordKey,
    RecordRow, RequestRow, StaffRow, StoreError, SubjectKey, SubjectRecords, SubjectRow,
    SubjectState, Unit,
};

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
        return StoreError::Backend(format!("{code}: {}", db.message()));
    }
    if e.is_closed() {
        return StoreError::Unavailable("the connection to PostgreSQL was lost".into());
    }
    // Everything else without a database error is transport: refused, reset, timed out.
    StoreError::Unavailable(format!("PostgreSQL cannot be reached: {e}"))
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

/// The runtime thread that owns the sockets. Shut down without waiting, so a store may be
/// dropped anywhere, inside an async task included.
struct Io(Option<tokio::runtime::Runtime>);

impl Io {
    fn new(name: &str) -> Result<Io, StoreError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .map(|rt| Io(Some(rt)))
            .map_err(|e| {
                StoreError::Backend(format!("cannot start the PostgreSQL I/O thread: {e}"))
            })
    }

    fn handle(&self) -> Result<&tokio::runtime::Handle, StoreError> {
        self.0
            .as_ref()
            .map(|rt| rt.handle())
            .ok_or_else(|| StoreError::Unavailable("the store is shutting down".into()))
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// One connection and its prepared statements.
struct Conn {
    client: Client,
    statements: Mutex<HashMap<&'static str, Statement>>,
}

impl Conn {
    async fn prepare(&self, sql: &'static str) -> Result<Statement, StoreError> {
        let cached = self
            .statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
            .cloned();
        if let Some(st) = cached {
            return Ok(st);
        }
        let st = self.client.prepare(sql).await.map_err(pg)?;
        self.statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sql, st.clone());
        Ok(st)
    }

    async fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let st = self.prepare(sql).await?;
        self.client.query(&st, params).await.map_err(pg)
    }

    async fn opt(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let st = self.prepare(sql).await?;
        self.client.query_opt(&st, params).await.map_err(pg)
    }

    async fn execute(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let st = self.prepare(sql).await?;
        self.client.execute(&st, params).await.map_err(pg)
    }

    async fn simple(&self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).await.map_err(pg)
    }
}

/// Connections to one database, made on first use and made again after they break.
struct Pool {
    io: Io,
    config: tokio_postgres::Config,
    slots: Vec<Mutex<Option<Arc<Conn>>>>,
    next: AtomicUsize,
}

impl Pool {
    fn new(target: &PgTarget, size: usize, name: &str) -> Result<Pool, StoreError> {
        let mut config: tokio_postgres::Config = target.url.parse().map_err(|_| {
            StoreError::Incompatible("the PostgreSQL connection string cannot be parsed".into())
        })?;
        // Fail fast while the server is down; queries never wait on a lock for long.
        config
            .connect_timeout(Duration::from_secs(3))
            .keepalives(true)
            .options(format!(
                "-c search_path={} -c lock_timeout=30000 -c idle_in_transaction_session_timeout=60000",
                target.schema
            ))
            .application_name("steward");
        Ok(Pool {
            io: Io::new(name)?,
            config,
            slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// A fresh connection, its socket driven by the I/O thread.
    fn connect(&self) -> Result<Arc<Conn>, StoreError> {
        let config = self.config.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.io.handle()?.spawn(async move {
            let made = match config.connect(NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(async move {
                        // The connection ends with an error when the server goes away; the
                        // client then reports itself closed and is made again on next use.
                        let _ = connection.await;
                    });
                    Ok(client)
                }
                Err(e) => Err(pg(e)),
            };
            let _ = tx.send(made);
        });
        let client = rx
            .recv()
            .map_err(|_| StoreError::Unavailable("the PostgreSQL I/O thread stopped".into()))??;
        Ok(Arc::new(Conn {
            client,
            statements: Mutex::new(HashMap::new()),
        }))
    }

    fn slot(&self, slot: &Mutex<Option<Arc<Conn>>>) -> Result<Arc<Conn>, StoreError> {
        let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(conn) = guard.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(Arc::clone(conn));
        }
        *guard = None;
        let conn = self.connect()?;
        *guard = Some(Arc::clone(&conn));
        Ok(conn)
    }

    /// A connection for reads and single statements (connections pipeline concurrent use).
    fn get(&self) -> Result<Arc<Conn>, StoreError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        match self.slots.get(i) {
            Some(slot) => self.slot(slot),
            None => Err(StoreError::Backend("empty connection pool".into())),
        }
    }

    /// Runs one piece of async work on a pooled connection.
    fn run<T>(
        &self,
        work: impl AsyncFnOnce(&Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.get()?;
        block(work(&conn))
    }

    /// Creates the schema if needed and applies the migrations not yet applied, under an
    /// advisory lock so that processes starting together do not race.
    fn migrate(&self, schema: &str, migrations: &[&str]) -> Result<usize, StoreError> {
        let conn = self.get()?;
        block(async {
            conn.simple(&format!(
                "SELECT pg_advisory_lock(hashtext('steward.migrate.{schema}'));
                 CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                     version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());"
            ))
            .await?;
            let outcome = async {
                let applied: i32 = conn
                    .client
                    .query_one(
                        &format!("SELECT COALESCE(MAX(version), 0) FROM {schema}.schema_migrations"),
                        &[],
                    )
                    .await
                    .map_err(pg)?
                    .try_get(0)
                    .map_err(pg)?;
                let applied = usize::try_from(applied).unwrap_or(0);
                if applied > migrations.len() {
                    return Err(StoreError::Incompatible(format!(
                        "schema {schema} was migrated by a newer Steward ({applied} migrations; this build knows {})",
                        migrations.len()
                    )));
                }
                let mut ran = 0;
                for (i, sql) in migrations.iter().enumerate().skip(applied) {
                    let step = conn
                        .simple(&format!(
                            "BEGIN; SET LOCAL search_path = {schema}; {sql}
                             INSERT INTO {schema}.schema_migrations (version) VALUES ({}); COMMIT;",
                            i + 1
                        ))
                        .await;
                    if let Err(e) = step {
                        // Leave the connection usable whatever failed inside the batch.
                        let _ = conn.simple("ROLLBACK").await;
                        return Err(e);
                    }
                    ran += 1;
                }
                Ok(ran)
            }
            .await;
            conn.simple(&format!(
                "SELECT pg_advisory_unlock(hashtext('steward.migrate.{schema}'))"
            ))
            .await?;
            outcome
        })
    }
}

/// Schema migrations for the data schema, applied in order.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters (name, value) VALUES ('record_id', 1);
CREATE TABLE audit (seq BIGINT PRIMARY KEY, entry BYTEA NOT NULL, hash BYTEA NOT NULL);
CREATE TABLE checkpoints (seq BIGINT PRIMARY KEY, head BYTEA NOT NULL, at_ms BIGINT NOT NULL, signature BYTEA NOT NULL);
CREATE TABLE subjects (
    id BYTEA PRIMARY KEY,
    state TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    closed_ms BIGINT
);
CREATE INDEX subjects_by_closing ON subjects (state, closed_ms);
CREATE TABLE records (
    subject BYTEA NOT NULL,
    category TEXT NOT NULL,
    id BIGINT NOT NULL,
    feature TEXT NOT NULL,
    source TEXT NOT NULL,
    collected_ms BIGINT NOT NULL,
    sealed BYTEA NOT NULL,
    PRIMARY KEY (subject, category, id)
);
CREATE INDEX records_by_age ON records (category, collected_ms, subject, id);
CREATE TABLE lookup (
    subject BYTEA NOT NULL,
    digest BYTEA NOT NULL,
    record BIGINT NOT NULL,
    PRIMARY KEY (subject, digest, record)
);
CREATE INDEX lookup_by_digest ON lookup (digest);
CREATE TABLE consent_events (
    subject BYTEA NOT NULL,
    id BIGINT GENERATED ALWAYS AS IDENTITY,
    target TEXT NOT NULL,
    granted BOOLEAN NOT NULL,
    separate BOOLEAN NOT NULL,
    channel TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL,
    PRIMARY KEY (subject, id)
);
CREATE TABLE consent_current (
    subject BYTEA NOT NULL,
    target TEXT NOT NULL,
    granted BOOLEAN NOT NULL,
    separate BOOLEAN NOT NULL,
    channel TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL,
    PRIMARY KEY (subject, target)
);
CREATE TABLE disclosures (
    subject BYTEA NOT NULL,
    id BIGINT GENERATED ALWAYS AS IDENTITY,
    recipient TEXT NOT NULL,
    categories TEXT NOT NULL,
    purpose TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL,
    PRIMARY KEY (subject, id)
);
CREATE TABLE purge_queue (subject BYTEA PRIMARY KEY, queued_ms BIGINT NOT NULL);
CREATE TABLE certificates (subject BYTEA PRIMARY KEY, document TEXT NOT NULL);
CREATE TABLE legal_holds (
    subject BYTEA NOT NULL,
    id TEXT NOT NULL,
    categories TEXT NOT NULL,
    reason TEXT NOT NULL,
    reference TEXT NOT NULL,
    placed_ms BIGINT NOT NULL,
    until_ms BIGINT NOT NULL,
    lifted_ms BIGINT,
    PRIMARY KEY (subject, id)
);
CREATE INDEX legal_holds_by_id ON legal_holds (id);
CREATE INDEX legal_holds_in_force ON legal_holds (until_ms) WHERE lifted_ms IS NULL;
CREATE TABLE rights_requests (
    subject BYTEA NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    target TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    due_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    verification TEXT NOT NULL,
    outcome TEXT NOT NULL,
    sealed_text BYTEA NOT NULL,
    PRIMARY KEY (subject, id)
);
CREATE INDEX rights_requests_by_id ON rights_requests (id);
CREATE INDEX rights_requests_by_due ON rights_requests (due_ms);
CREATE TABLE otp_codes (
    subject BYTEA PRIMARY KEY,
    digest BYTEA NOT NULL,
    expires_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL
);
CREATE TABLE sessions (
    subject BYTEA NOT NULL,
    digest BYTEA NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (subject, digest)
);
CREATE INDEX sessions_by_digest ON sessions (digest);
CREATE TABLE attempts (key TEXT PRIMARY KEY, window_ms BIGINT NOT NULL, count BIGINT NOT NULL);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    digest BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE staff (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE staff_sessions (
    digest BYTEA PRIMARY KEY,
    username TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
"#];

/// Every table of the data schema, in the order a backup writes and a restore reads them.
pub const DATA_TABLES: &[&str] = &[
    "meta",
    "counters",
    "audit",
    "checkpoints",
    "subjects",
    "records",
    "lookup",
    "consent_events",
    "consent_current",
    "disclosures",
    "purge_queue",
    "certificates",
    "legal_holds",
    "rights_requests",
    "otp_codes",
    "sessions",
    "attempts",
    "api_keys",
    "staff",
    "staff_sessions",
];

/// How many record ids one reservation covers.
const RECORD_ID_BLOCK: i64 = 65_536;

/// Most units of work one shared transaction carries before it commits.
const MAX_MEMBERS: usize = 128;

/// The transaction units of work are joining.
struct Open {
    conn: Arc<Conn>,
    head: (u64, [u8; 32]),
    epoch: u64,
    members: usize,
}

/// The writer's side: the connection, the open transaction, and how finished ones ended.
struct Writer {
    conn: Option<Arc<Conn>>,
    open: Option<Open>,
    next_epoch: u64,
    /// Outcomes of committed transactions that members still wait on: epoch -> (outcome,
    /// members yet to read it).
    outcomes: HashMap<u64, (Result<(), StoreError>, usize)>,
}

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
}

impl PgStore {
    /// Connects, creates the schema if needed and applies pending migrations.
    pub fn open(target: &PgTarget) -> Result<PgStore, StoreError> {
        let pool = Pool::new(target, 4, "steward-pg")?;
        pool.migrate(&target.schema, MIGRATIONS)?;
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
        })
    }

    /// Applies pending migrations without opening a store; returns how many ran.
    pub fn migrate(target: &PgTarget) -> Result<usize, StoreError> {
        Pool::new(target, 1, "steward-pg-migrate")?.migrate(&target.schema, MIGRATIONS)
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

    /// Runs `f` with a pooled connection's client (backups and the benchmark's baseline).
    pub fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        self.pool.run(async |c| f(&c.client).await.map_err(pg))
    }

    /// The writer's connection, made again if it broke.
    fn writer_conn(w: &mut Writer, pool: &Pool) -> Result<Arc<Conn>, StoreError> {
        if let Some(c) = w.conn.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(Arc::clone(c));
        }
        w.conn = None;
        let c = pool.connect()?;
        w.conn = Some(Arc::clone(&c));
        Ok(c)
    }

    /// Ends the open transaction with `outcome` for all its members, waking those who wait.
    fn settle_epoch(&self, w: &mut Writer, outcome: Result<(), StoreError>, waiting: usize) {
        if let Some(open) = w.open.take()
            && waiting > 0
        {
            w.outcomes.insert(open.epoch, (outcome, waiting));
        }
        self.committed.notify_all();
    }

    /// Commits (or, if `rollback`, abandons) the open transaction. `own` of its members are
    /// the caller's units; the others' callers wait for the outcome.
    fn finish(&self, w: &mut Writer, rollback: bool, own: usize) -> Result<(), StoreError> {
        let Some(open) = w.open.as_ref() else {
            return Ok(());
        };
        let conn = Arc::clone(&open.conn);
        let members = open.members;
        let waiting = members.saturating_sub(own);
        let outcome = if rollback {
            block(conn.simple("ROLLBACK"))
        } else {
            block(conn.simple("COMMIT"))
        };
        if outcome.is_err() {
            w.conn = None;
        } else if !rollback {
            self.commits.fetch_add(1, Ordering::Relaxed);
            self.units
                .fetch_add(u64::try_from(members).unwrap_or(0), Ordering::Relaxed);
        }
        self.settle_epoch(w, outcome.clone(), waiting);
        outcome
    }

    /// Waits for the transaction `epoch` that `units` of the caller's joined to end, and how
    /// it ended.
    fn await_epoch(
        &self,
        mut w: MutexGuard<'_, Writer>,
        epoch: u64,
        units: usize,
    ) -> Result<(), StoreError> {
        loop {
            if let Some((outcome, left)) = w.outcomes.get_mut(&epoch) {
                *left = left.saturating_sub(units);
                let result = outcome.clone();
                if *left == 0 {
                    w.outcomes.remove(&epoch);
                }
                return result;
            }
            w = self.committed.wait(w).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// One unit inside the open transaction, in a savepoint so that its failure leaves the
    /// other units' work standing.
    fn member(
        &self,
        open: &mut Open,
        work: &mut dyn FnMut(&dyn Reader) -> Result<Unit, StoreError>,
    ) -> Result<Vec<Entry>, StoreError> {
        let conn = Arc::clone(&open.conn);
        let savepoint = Cell::new(false);
        let reader = TxReader {
            conn: &conn,
            savepoint: &savepoint,
            fetched: std::cell::RefCell::new(HashMap::new()),
        };
        let applied = work(&reader).and_then(|unit| {
            let planned = Planned::new(open.head, unit)?;
            let mut steps = Vec::with_capacity(planned.stmts.len() + 2);
            if !savepoint.replace(true) {
                steps.push(Step::Simple("SAVEPOINT unit"));
            }
            steps.extend(planned.stmts.iter().map(Step::Exec));
            steps.push(Step::Simple("RELEASE SAVEPOINT unit"));
            block(conn.pipeline(&steps))?;
            Ok((planned.entries, planned.head))
        });
        match applied {
            Ok((entries, head)) => {
                open.head = head;
                Ok(entries)
            }
            Err(e) => {
                if savepoint.get() {
                    // Undo this unit only. If even that fails the transaction cannot commit
                    // (PostgreSQL would turn the COMMIT into a quiet rollback): it is lost.
                    block(conn.simple("ROLLBACK TO SAVEPOINT unit; RELEASE SAVEPOINT unit"))
                        .map_err(|_| {
                            StoreError::Unavailable(
                                "a shared transaction could not be recovered".into(),
                            )
                        })?;
                }
                Err(e)
            }
        }
    }

    /// Independent units inside the open transaction, all sent in one round trip, each in a
    /// savepoint of its own. PostgreSQL refuses every statement after a failing one, so when a
    /// unit fails, the units before it stand, it is rolled back to its savepoint, and the
    /// units after it are planned again from the chain head and sent again.
    fn members(&self, open: &mut Open, units: &[Unit]) -> Vec<Result<Vec<Entry>, StoreError>> {
        let mut results: Vec<Option<Result<Vec<Entry>, StoreError>>> =
            units.iter().map(|_| None).collect();
        let mut set = |i: usize, r: Result<Vec<Entry>, StoreError>| {
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(r);
            }
        };
        let mut from = 0;
        while from < units.len() {
            let mut head = open.head;
            let mut planned = Vec::with_capacity(units.len() - from);
            for (i, unit) in units.iter().enumerate().skip(from) {
                match Planned::new(head, unit.clone()) {
                    Ok(p) => {
                        head = p.head;
                        planned.push((i, p));
                    }
                    Err(e) => set(i, Err(e)),
                }
            }
            // Which planned unit each step belongs to.
            let mut steps = Vec::new();
            let mut owner = Vec::new();
            for (k, (_, p)) in planned.iter().enumerate() {
                steps.push(Step::Simple("SAVEPOINT unit"));
                steps.extend(p.stmts.iter().map(Step::Exec));
                steps.push(Step::Simple("RELEASE SAVEPOINT unit"));
                owner.resize(steps.len(), k);
            }
            let failed = match block(open.conn.pipeline_at(&steps)) {
                Ok(()) => None,
                Err((step, e)) => Some((owner.get(step).copied().unwrap_or(0), e)),
            };
            let stand = failed.as_ref().map_or(planned.len(), |(k, _)| *k);
            let mut planned = planned.into_iter();
            for (i, p) in planned.by_ref().take(stand) {
                open.head = p.head;
                set(i, Ok(p.entries));
            }
            let Some((_, e)) = failed else {
                break;
            };
            let Some((failed_at, _)) = planned.next() else {
                break;
            };
            set(failed_at, Err(e.clone()));
            // Undo the failed unit. If even that fails (or the connection is gone) the
            // transaction cannot commit (PostgreSQL would turn the COMMIT into a quiet
            // rollback): the units after it are lost with it.
            let lost = match e {
                StoreError::Unavailable(_) => Some(e),
                _ => block(
                    open.conn
                        .simple("ROLLBACK TO SAVEPOINT unit; RELEASE SAVEPOINT unit"),
                )
                .err()
                .map(|_| {
                    StoreError::Unavailable("a shared transaction could not be recovered".into())
                }),
            };
            if let Some(lost) = lost {
                for (i, _) in planned {
                    set(i, Err(lost.clone()));
                }
                break;
            }
            from = failed_at + 1;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::Backend("a unit was not run".into()))))
            .collect()
    }

    /// Once the caller's units have joined the open transaction (`own` of them stand), or it
    /// `lost` the connection: commits for everyone, or leaves the commit to whoever joins
    /// next and waits for it, or abandons a transaction nothing joined. The outcome is that
    /// of the caller's standing units.
    fn conclude(
        &self,
        mut w: MutexGuard<'_, Writer>,
        epoch: u64,
        own: usize,
        lost: bool,
    ) -> Result<(), StoreError> {
        let members = w.open.as_ref().map_or(0, |o| o.members);
        if lost {
            // The connection broke: the transaction and everything in it are gone.
            w.conn = None;
            let err = StoreError::Unavailable("the connection to PostgreSQL was lost".into());
            self.settle_epoch(&mut w, Err(err.clone()), members.saturating_sub(own));
            return Err(err);
        }
        let others_coming = self.arriving.load(Ordering::Acquire) > 0;
        if members == 0 && !others_coming {
            // Nothing joined: leave nothing open.
            let _ = self.finish(&mut w, true, 0);
            return Ok(());
        }
        if others_coming && members < MAX_MEMBERS {
            // Someone is about to join; the last to join commits for everyone.
            return if own > 0 {
                self.await_epoch(w, epoch, own)
            } else {
                Ok(())
            };
        }
        self.finish(&mut w, false, own)
    }

    fn begin(&self, w: &mut Writer) -> Result<(), StoreError> {
        if w.open.is_some() {
            return Ok(());
        }
        let conn = Self::writer_conn(w, &self.pool)?;
        let key = self.chain_lock.as_str();
        let head = block(async {
            // Writers of this chain, in any process, take turns by an advisory lock held to the
            // end of the transaction; the head is read after it is granted, so it is the
            // latest committed one. (A head row updated on every commit would pile up dead
            // versions that every writer then walks.)
            let (begin, locked, head) = futures_util::future::join3(
                conn.simple("BEGIN"),
                conn.query("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key]),
                conn.opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[]),
            )
            .await;
            begin?;
            locked?;
            match head? {
                Some(row) => Ok::<_, StoreError>((seq_in(col(&row, 0)?)?, hash32(col(&row, 1)?)?)),
                None => Ok((0, GENESIS)),
            }
        });
        let head = match head {
            Ok(h) => h,
            Err(e) => {
                let _ = block(conn.simple("ROLLBACK"));
                if matches!(e, StoreError::Unavailable(_)) {
                    w.conn = None;
                }
                return Err(e);
            }
        };
        let epoch = w.next_epoch;
        w.next_epoch += 1;
        w.open = Some(Open {
            conn,
            head,
            epoch,
            members: 0,
        });
        Ok(())
    }
}

/// Prefetched lookups of one shape: consent asked, categories asked, and whose.
type Group<'a> = (Option<&'a str>, &'a [&'a str], Vec<&'a [u8]>);

/// A statement in flight, answering nothing but success.
type Sent<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), StoreError>> + 'a>>;

/// What a prefetched `subject_records` call is known by.
type Wanted = (SubjectKey, Option<String>, Vec<String>);

fn wanted_key(subject: &SubjectKey, consent_target: Option<&str>, categories: &[&str]) -> Wanted {
    (
        *subject,
        consent_target.map(str::to_string),
        categories.iter().map(|c| (*c).to_string()).collect(),
    )
}

/// Reads inside a unit of work, on the writer's connection and transaction.
struct TxReader<'a> {
    conn: &'a Conn,
    savepoint: &'a Cell<bool>,
    /// Answers fetched ahead by [`Reader::prefetch`], taken by the calls they were fetched for.
    fetched: std::cell::RefCell<HashMap<Wanted, Vec<Option<SubjectRecords>>>>,
}

impl TxReader<'_> {
    /// The unit's savepoint rides along with its first read, in the same round trip.
    async fn ensure_savepoint(&self) -> Result<(), StoreError> {
        if self.savepoint.replace(true) {
            Ok(())
        } else {
            self.conn.simple("SAVEPOINT unit").await
        }
    }
}

impl Reader for TxReader<'_> {
    /// Sends every query at once on the unit's connection: one round trip for the lot.
    fn prefetch(&self, wanted: &[(&SubjectKey, Option<&str>, &[&str])]) -> Result<(), StoreError> {
        if wanted.len() < 2 {
            return Ok(());
        }
        // Lookups of a subject's state alone (a collection's check) go as one statement;
        // the others are pipelined, one statement each.
        let (states, full): (Vec<_>, Vec<_>) = wanted
            .iter()
            .partition(|(_, t, c)| t.is_none() && c.is_empty());
        let ids: Vec<&[u8]> = states.iter().map(|(s, _, _)| &s[..]).collect();
        // The others, grouped by shape: one statement per (consent, categories) asked.
        let mut groups: Vec<Group<'_>> = Vec::new();
        for (s, t, c) in &full {
            match groups.iter_mut().find(|(gt, gc, _)| gt == t && gc == c) {
                Some((_, _, ids)) => ids.push(&s[..]),
                None => groups.push((*t, c, vec![&s[..]])),
            }
        }
        let (state_rows, group_answers) = block(async {
            let queries = futures_util::future::join_all(
                groups
                    .iter()
                    .map(|(t, c, ids)| subject_records_many(self.conn, ids, *t, c)),
            );
            let by_id = async {
                if ids.is_empty() {
                    Ok(Vec::new())
                } else {
                    self.conn
                        .query("SELECT id, state FROM subjects WHERE id = ANY($1)", &[&ids])
                        .await
                }
            };
            let (sp, rows, answers) =
                futures_util::future::join3(self.ensure_savepoint(), by_id, queries).await;
            sp.map(|()| (rows, answers))
        })?;
        let mut known: HashMap<SubjectKey, SubjectState> = HashMap::new();
        for r in &state_rows? {
            let state =
                SubjectState::parse(col(r, 1)?).ok_or_else(|| corrupt("unknown subject state"))?;
            known.insert(key16(col(r, 0)?)?, state);
        }
        let mut full_answers = Vec::new();
        for answer in group_answers {
            full_answers.push(answer?);
        }
        // Back into the order asked: each group's answers in its members' order.
        let mut per_group: Vec<std::collections::VecDeque<Option<SubjectRecords>>> =
            full_answers.into_iter().map(Into::into).collect();
        let mut full_answers = full.iter().map(|(_, t, c)| {
            groups
                .iter()
                .position(|(gt, gc, _)| gt == t && gc == c)
                .and_then(|g| per_group.get_mut(g))
                .and_then(|q| q.pop_front())
                .ok_or_else(|| StoreError::Backend("prefetch lost an answer".into()))
        });
        let answers: Vec<Result<Option<SubjectRecords>, StoreError>> = wanted
            .iter()
            .map(|(s, t, c)| {
                if t.is_none() && c.is_empty() {
                    Ok(known.get(*s).map(|state| SubjectRecords {
                        state: *state,
                        consent_granted: false,
                        records: Vec::new(),
                    }))
                } else {
                    full_answers.next().unwrap_or_else(|| {
                        Err(StoreError::Backend("prefetch lost an answer".into()))
                    })
                }
            })
            .collect();
        let mut fetched = self.fetched.borrow_mut();
        for ((s, t, c), answer) in wanted.iter().zip(answers) {
            let key = wanted_key(s, *t, c);
            fetched.entry(key).or_default().push(answer?);
        }
        Ok(())
    }

    fn subject_records(
        &self,
        subject: &SubjectKey,
        consent_target: Option<&str>,
        categories: &[&str],
    ) -> Result<Option<SubjectRecords>, StoreError> {
        if !self.fetched.borrow().is_empty() {
            let key = wanted_key(subject, consent_target, categories);
            if let Some(found) = self
                .fetched
                .borrow_mut()
                .get_mut(&key)
                .and_then(|v| v.pop())
            {
                return Ok(found);
            }
        }
        block(async {
            let (sp, rows) = futures_util::future::join(
                self.ensure_savepoint(),
                subject_records(self.conn, subject, consent_target, categories),
            )
            .await;
            sp?;
            rows
        })
    }

    fn consent(
        &self,
        subject: &SubjectKey,
        target: &str,
    ) -> Result<Option<ConsentRow>, StoreError> {
        block(async {
            let (sp, row) = futures_util::future::join(
                self.ensure_savepoint(),
                consent(self.conn, subject, target),
            )
            .await;
            sp?;
            row
        })
    }
}

async fn subject_records(
    conn: &Conn,
    subject: &SubjectKey,
    consent_target: Option<&str>,
    categories: &[&str],
) -> Result<Option<SubjectRecords>, StoreError> {
    let key = &subject[..];
    let target = consent_target.unwrap_or("");
    macro_rules! head {
        () => {
            "SELECT s.state, c.granted, r.id, r.category, r.feature, r.source, r.collected_ms, r.sealed
             FROM subjects s
             LEFT JOIN consent_current c ON c.subject = s.id AND c.target = $2"
        };
    }
    // Three shapes, so that the common ones plan as plain index lookups.
    let rows = match categories {
        [] => {
            conn.query(
                "SELECT s.state, c.granted, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::bigint, NULL::bytea
                 FROM subjects s
                 LEFT JOIN consent_current c ON c.subject = s.id AND c.target = $2
                 WHERE s.id = $1",
                &[&key, &target],
            )
            .await?
        }
        [one] => {
            conn.query(
                concat!(
                    head!(),
                    " LEFT JOIN records r ON r.subject = s.id AND r.category = $3 WHERE s.id = $1 ORDER BY r.id"
                ),
                &[&key, &target, one],
            )
            .await?
        }
        many => {
            conn.query(
                concat!(
                    head!(),
                    " LEFT JOIN records r ON r.subject = s.id AND r.category = ANY($3) WHERE s.id = $1 ORDER BY r.id"
                ),
                &[&key, &target, &many],
            )
            .await?
        }
    };
    let mut out: Option<SubjectRecords> = None;
    for r in &rows {
        let found = match &mut out {
            Some(found) => found,
            None => {
                let state: &str = col(r, 0)?;
                let granted: Option<bool> = col(r, 1)?;
                out.insert(SubjectRecords {
                    state: SubjectState::parse(state)
                        .ok_or_else(|| corrupt("unknown subject state"))?,
                    consent_granted: granted.unwrap_or(false),
                    records: Vec::new(),
                })
            }
        };
        let id: Option<i64> = col(r, 2)?;
        if let Some(id) = id {
            found.records.push(RecordRow {
                id,
                subject: *subject,
                category: col(r, 3)?,
                feature: col(r, 4)?,
                source: col(r, 5)?,
                collected_ms: col(r, 6)?,
                sealed: col(r, 7)?,
            });
        }
    }
    Ok(out)
}

/// The statement behind [`Reader::prefetch`] on PostgreSQL: many subjects' state, one consent
/// and records of some categories, answered in the order asked (`q.n`). Public so that the
/// benchmark's raw baseline sends exactly this text.
pub const FETCH_MANY: &str = "SELECT q.n, s.state, c.granted, r.id, r.category, r.feature, r.source, r.collected_ms, r.sealed
     FROM UNNEST($1::bytea[]) WITH ORDINALITY AS q(id, n)
     JOIN subjects s ON s.id = q.id
     LEFT JOIN consent_current c ON c.subject = s.id AND c.target = $2
     LEFT JOIN records r ON r.subject = s.id AND r.category = ANY($3)
     ORDER BY q.n, r.id";

/// [`subject_records`] for many subjects of one shape, in one statement; answers in the
/// order of `ids` (a subject asked twice is answered twice).
async fn subject_records_many(
    conn: &Conn,
    ids: &[&[u8]],
    consent_target: Option<&str>,
    categories: &[&str],
) -> Result<Vec<Option<SubjectRecords>>, StoreError> {
    let rows = conn
        .query(FETCH_MANY, &[&ids, &consent_target, &categories])
        .await?;
    let mut out: Vec<Option<SubjectRecords>> = ids.iter().map(|_| None).collect();
    for r in &rows {
        let n: i64 = col(r, 0)?;
        let slot = usize::try_from(n - 1)
            .ok()
            .and_then(|i| out.get_mut(i))
            .ok_or_else(|| corrupt("an answer for a subject not asked about"))?;
        let found = match slot {
            Some(found) => found,
            None => {
                let state: &str = col(r, 1)?;
                let granted: Option<bool> = col(r, 2)?;
                slot.insert(SubjectRecords {
                    state: SubjectState::parse(state)
                        .ok_or_else(|| corrupt("unknown subject state"))?,
                    consent_granted: granted.unwrap_or(false),
                    records: Vec::new(),
                })
            }
        };
        let id: Option<i64> = col(r, 3)?;
        if let Some(id) = id {
            let subject = ids
                .get(usize::try_from(n - 1).unwrap_or(usize::MAX))
                .map(|s| key16(s))
                .transpose()?
                .ok_or_else(|| corrupt("an answer for a subject not asked about"))?;
            found.records.push(RecordRow {
                id,
                subject,
                category: col(r, 4)?,
                feature: col(r, 5)?,
                source: col(r, 6)?,
                collected_ms: col(r, 7)?,
                sealed: col(r, 8)?,
            });
        }
    }
    Ok(out)
}

fn consent_row(r: &Row) -> Result<ConsentRow, StoreError> {
    Ok(ConsentRow {
        subject: key16(col(r, 0)?)?,
        target: col(r, 1)?,
        granted: col(r, 2)?,
        separate: col(r, 3)?,
        channel: col(r, 4)?,
        policy_version: col(r, 5)?,
        at_ms: col(r, 6)?,
        audit_seq: seq_in(col(r, 7)?)?,
    })
}

async fn consent(
    conn: &Conn,
    subject: &SubjectKey,
    target: &str,
) -> Result<Option<ConsentRow>, StoreError> {
    conn.opt(
        "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq
         FROM consent_current WHERE subject = $1 AND target = $2",
        &[&&subject[..], &target],
    )
    .await?
    .map(|r| consent_row(&r))
    .transpose()
}

/// A statement parameter, owned so that a unit's statements can be planned before any is sent.
type Param = Box<dyn ToSql + Sync + Send>;

/// One planned statement.
struct Stmt {
    sql: &'static str,
    params: Vec<Param>,
}

fn stmt(sql: &'static str, params: Vec<Param>) -> Stmt {
    Stmt { sql, params }
}

fn bytes(k: &[u8]) -> Param {
    Box::new(k.to_vec())
}

/// What is sent, in order, in one pipelined round.
enum Step<'a> {
    /// A statement without parameters, by the simple protocol (`SAVEPOINT`, `COMMIT`).
    Simple(&'static str),
    /// A planned statement.
    Exec(&'a Stmt),
}

impl Conn {
    /// Sends `steps` back to back and waits for all their answers: one round trip however
    /// many there are. Statements not yet prepared are prepared first, together. Returns the
    /// first failure; PostgreSQL refuses everything after a failure inside a transaction.
    async fn pipeline(&self, steps: &[Step<'_>]) -> Result<(), StoreError> {
        self.pipeline_at(steps).await.map_err(|(_, e)| e)
    }

    /// [`Conn::pipeline`], saying which step failed first (0 if preparing failed).
    async fn pipeline_at(&self, steps: &[Step<'_>]) -> Result<(), (usize, StoreError)> {
        let mut sqls: Vec<&'static str> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Exec(st) => Some(st.sql),
                Step::Simple(_) => None,
            })
            .collect();
        sqls.sort_unstable();
        sqls.dedup();
        let prepared = futures_util::future::join_all(sqls.iter().map(|s| self.prepare(s))).await;
        let mut statements = HashMap::with_capacity(sqls.len());
        for (sql, st) in sqls.into_iter().zip(prepared) {
            statements.insert(sql, st.map_err(|e| (0, e))?);
        }
        let mut futures: Vec<Sent<'_>> = Vec::with_capacity(steps.len());
        for step in steps {
            match step {
                Step::Simple(sql) => futures.push(Box::pin(self.simple(sql))),
                Step::Exec(st) => {
                    let statement = statements
                        .get(st.sql)
                        .cloned()
                        .ok_or_else(|| (0, StoreError::Backend("statement not prepared".into())))?;
                    futures.push(Box::pin(async move {
                        let params: Vec<&(dyn ToSql + Sync)> = st
                            .params
                            .iter()
                            .map(|p| &**p as &(dyn ToSql + Sync))
                            .collect();
                        self.client
                            .execute(&statement, &params)
                            .await
                            .map(|_| ())
                            .map_err(pg)
                    }));
                }
            }
        }
        in_order(futures).await
    }
}

/// Polls `futures` in their order until all are done (each sends its message on its first
/// poll, so the messages go out in this order), and returns the first failure and its place.
async fn in_order(mut futures: Vec<Sent<'_>>) -> Result<(), (usize, StoreError)> {
    let mut done: Vec<Option<Result<(), StoreError>>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, d) in futures.iter_mut().zip(done.iter_mut()) {
            if d.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => *d = Some(r),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    match done.into_iter().enumerate().find_map(|(i, r)| match r {
        Some(Err(e)) => Some((i, e)),
        _ => None,
    }) {
        Some(failed) => Err(failed),
        None => Ok(()),
    }
}

/// A unit of work planned against a chain head: its audit entries, its statements, and the
/// head after it.
struct Planned {
    entries: Vec<Entry>,
    stmts: Vec<Stmt>,
    head: (u64, [u8; 32]),
}

impl Planned {
    fn new(
        (mut seq, mut hash): (u64, [u8; 32]),
        (ops, audit): Unit,
    ) -> Result<Planned, StoreError> {
        let first = seq_out(if audit.is_empty() { 0 } else { seq + 1 })?;
        let mut entries = Vec::with_capacity(audit.len());
        let mut seqs = Vec::with_capacity(audit.len());
        let mut encoded = Vec::with_capacity(audit.len());
        let mut hashes = Vec::with_capacity(audit.len());
        for d in audit {
            let (e, b) = Entry::chain_encoded(seq, hash, d);
            seq = e.seq;
            hash = e.hash;
            seqs.push(seq_out(e.seq)?);
            encoded.push(b);
            hashes.push(e.hash.to_vec());
            entries.push(e);
        }
        let mut stmts = Vec::with_capacity(ops.len() + 1);
        for op in ops {
            plan(op, first, &mut stmts)?;
        }
        if !seqs.is_empty() {
            stmts.push(stmt(
                "INSERT INTO audit (seq, entry, hash)
                 SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::bytea[])",
                vec![Box::new(seqs), Box::new(encoded), Box::new(hashes)],
            ));
        }
        Ok(Planned {
            entries,
            stmts,
            head: (seq, hash),
        })
    }
}

/// Plans one change as statements. Batches go as one statement over arrays.
fn plan(op: Op, audit_seq: i64, out: &mut Vec<Stmt>) -> Result<(), StoreError> {
    let seq_or =
        |s: u64| -> Result<i64, StoreError> { if s == 0 { Ok(audit_seq) } else { seq_out(s) } };
    match op {
        Op::InsertSubject(s) => out.push(stmt(
            "INSERT INTO subjects (id, state, created_ms) VALUES ($1, $2, $3)",
            vec![bytes(&s.id), Box::new(s.state.as_str()), Box::new(s.created_ms)],
        )),
        Op::SetSubjectState { subject, state } => out.push(stmt(
            "UPDATE subjects SET state = $2 WHERE id = $1",
            vec![bytes(&subject), Box::new(state.as_str())],
        )),
        Op::InsertRecords(rows) => {
            let mut ids = Vec::with_capacity(rows.len());
            let mut subjects = Vec::with_capacity(rows.len());
            let mut categories = Vec::with_capacity(rows.len());
            let mut features = Vec::with_capacity(rows.len());
            let mut sources = Vec::with_capacity(rows.len());
            let mut at = Vec::with_capacity(rows.len());
            let mut sealed = Vec::with_capacity(rows.len());
            for r in rows {
                ids.push(r.id);
                subjects.push(r.subject.to_vec());
                categories.push(r.category);
                features.push(r.feature);
                sources.push(r.source);
                at.push(r.collected_ms);
                sealed.push(r.sealed);
            }
            out.push(stmt(
                "INSERT INTO records (id, subject, category, feature, source, collected_ms, sealed)
                 SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bytea[])",
                vec![
                    Box::new(ids),
                    Box::new(subjects),
                    Box::new(categories),
                    Box::new(features),
                    Box::new(sources),
                    Box::new(at),
                    Box::new(sealed),
                ],
            ));
        }
        Op::InsertIndex(rows) => {
            let digests: Vec<Vec<u8>> = rows.iter().map(|r| r.digest.to_vec()).collect();
            let subjects: Vec<Vec<u8>> = rows.iter().map(|r| r.subject.to_vec()).collect();
            let records: Vec<i64> = rows.iter().map(|r| r.record).collect();
            out.push(stmt(
                "INSERT INTO lookup (digest, subject, record)
                 SELECT * FROM UNNEST($1::bytea[], $2::bytea[], $3::bigint[])
                 ON CONFLICT DO NOTHING",
                vec![Box::new(digests), Box::new(subjects), Box::new(records)],
            ));
        }
        Op::RecordConsent(c) => {
            let seq = seq_or(c.audit_seq)?;
            let params = |c: &ConsentRow| -> Vec<Param> {
                vec![
                    bytes(&c.subject),
                    Box::new(c.target.clone()),
                    Box::new(c.granted),
                    Box::new(c.separate),
                    Box::new(c.channel.clone()),
                    Box::new(c.policy_version.clone()),
                    Box::new(c.at_ms),
                    Box::new(seq),
                ]
            };
            out.push(stmt(
                "INSERT INTO consent_events
                 (subject, target, granted, separate, channel, policy_version, at_ms, audit_seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                params(&c),
            ));
            out.push(stmt(
                "INSERT INTO consent_current
                 (subject, target, granted, separate, channel, policy_version, at_ms, audit_seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (subject, target) DO UPDATE SET granted = EXCLUDED.granted,
                 separate = EXCLUDED.separate, channel = EXCLUDED.channel,
                 policy_version = EXCLUDED.policy_version, at_ms = EXCLUDED.at_ms,
                 audit_seq = EXCLUDED.audit_seq",
                params(&c),
            ));
        }
        Op::InsertDisclosure(d) => out.push(stmt(
            "INSERT INTO disclosures
             (subject, recipient, categories, purpose, legal_basis, at_ms, audit_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                bytes(&d.subject),
                Box::new(d.recipient),
                Box::new(d.categories),
                Box::new(d.purpose),
                Box::new(d.legal_basis),
                Box::new(d.at_ms),
                Box::new(seq_or(d.audit_seq)?),
            ],
        )),
        Op::EnqueuePurge { subject, at_ms } => out.push(stmt(
            "INSERT INTO purge_queue (subject, queued_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            vec![bytes(&subject), Box::new(at_ms)],
        )),
        Op::DequeuePurge { subject } => out.push(stmt(
            "DELETE FROM purge_queue WHERE subject = $1",
            vec![bytes(&subject)],
        )),
        Op::StoreCertificate { subject, document } => out.push(stmt(
            "INSERT INTO certificates (subject, document) VALUES ($1, $2)
             ON CONFLICT (subject) DO UPDATE SET document = EXCLUDED.document",
            vec![bytes(&subject), Box::new(document)],
        )),
        Op::CloseSubject { subject, at_ms } => out.push(stmt(
            "UPDATE subjects SET state = 'closed', closed_ms = $2 WHERE id = $1",
            vec![bytes(&subject), Box::new(at_ms)],
        )),
        Op::DeleteRecords(keys) => {
            let subjects: Vec<Vec<u8>> = keys.iter().map(|k| k.subject.to_vec()).collect();
            let ids: Vec<i64> = keys.iter().map(|k| k.id).collect();
            let categories: Vec<String> = keys.into_iter().map(|k| k.category).collect();
            out.push(stmt(
                "DELETE FROM lookup l USING UNNEST($1::bytea[], $2::bigint[]) AS k(subject, id)
                 WHERE l.subject = k.subject AND l.record = k.id",
                vec![Box::new(subjects.clone()), Box::new(ids.clone())],
            ));
            out.push(stmt(
                "DELETE FROM records r
                 USING UNNEST($1::bytea[], $2::text[], $3::bigint[]) AS k(subject, category, id)
                 WHERE r.subject = k.subject AND r.category = k.category AND r.id = k.id",
                vec![Box::new(subjects), Box::new(categories), Box::new(ids)],
            ));
        }
        Op::PlaceHold(h) => out.push(stmt(
            "INSERT INTO legal_holds (id, subject, categories, reason, reference, placed_ms, until_ms, lifted_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                Box::new(h.id),
                bytes(&h.subject),
                Box::new(h.categories),
                Box::new(h.reason),
                Box::new(h.reference),
                Box::new(h.placed_ms),
                Box::new(h.until_ms),
                Box::new(h.lifted_ms),
            ],
        )),
        Op::LiftHold { id, at_ms } => out.push(stmt(
            "UPDATE legal_holds SET lifted_ms = $2 WHERE id = $1",
            vec![Box::new(id), Box::new(at_ms)],
        )),
        Op::PutRequest(r) => out.push(stmt(
            "INSERT INTO rights_requests (id, subject, kind, state, target, received_ms,
             due_ms, updated_ms, verification, outcome, sealed_text)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (subject, id) DO UPDATE SET kind = EXCLUDED.kind,
             state = EXCLUDED.state, target = EXCLUDED.target,
             received_ms = EXCLUDED.received_ms, due_ms = EXCLUDED.due_ms,
             updated_ms = EXCLUDED.updated_ms, verification = EXCLUDED.verification,
             outcome = EXCLUDED.outcome, sealed_text = EXCLUDED.sealed_text",
            vec![
                Box::new(r.id),
                bytes(&r.subject),
                Box::new(r.kind),
                Box::new(r.state),
                Box::new(r.target),
                Box::new(r.received_ms),
                Box::new(r.due_ms),
                Box::new(r.updated_ms),
                Box::new(r.verification),
                Box::new(r.outcome),
                Box::new(r.sealed_text),
            ],
        )),
        Op::PutOtp(o) => out.push(stmt(
            "INSERT INTO otp_codes (subject, digest, expires_ms, attempts) VALUES ($1, $2, $3, $4)
             ON CONFLICT (subject) DO UPDATE SET digest = EXCLUDED.digest,
             expires_ms = EXCLUDED.expires_ms, attempts = EXCLUDED.attempts",
            vec![
                bytes(&o.subject),
                bytes(&o.digest),
                Box::new(o.expires_ms),
                Box::new(i64::from(o.attempts)),
            ],
        )),
        Op::DeleteOtp { subject } => out.push(stmt(
            "DELETE FROM otp_codes WHERE subject = $1",
            vec![bytes(&subject)],
        )),
        Op::PutAttempts {
            key,
            window_ms,
            count,
        } => out.push(stmt(
            "INSERT INTO attempts (key, window_ms, count) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET window_ms = EXCLUDED.window_ms, count = EXCLUDED.count",
            vec![Box::new(key), Box::new(window_ms), Box::new(i64::from(count))],
        )),
        Op::PutSession {
            digest,
            subject,
            expires_ms,
        } => out.push(stmt(
            "INSERT INTO sessions (digest, subject, expires_ms) VALUES ($1, $2, $3)
             ON CONFLICT (subject, digest) DO UPDATE SET expires_ms = EXCLUDED.expires_ms",
            vec![bytes(&digest), bytes(&subject), Box::new(expires_ms)],
        )),
        Op::PutStaff(st) => out.push(stmt(
            "INSERT INTO staff (username, role, password_hash, created_ms, disabled)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (username) DO UPDATE SET role = EXCLUDED.role,
             password_hash = EXCLUDED.password_hash, created_ms = EXCLUDED.created_ms,
             disabled = EXCLUDED.disabled",
            vec![
                Box::new(st.username),
                Box::new(st.role),
                Box::new(st.password_hash),
                Box::new(st.created_ms),
                Box::new(st.disabled),
            ],
        )),
        Op::PutStaffSession {
            digest,
            username,
            expires_ms,
        } => out.push(stmt(
            "INSERT INTO staff_sessions (digest, username, expires_ms) VALUES ($1, $2, $3)
             ON CONFLICT (digest) DO UPDATE SET username = EXCLUDED.username,
             expires_ms = EXCLUDED.expires_ms",
            vec![bytes(&digest), Box::new(username), Box::new(expires_ms)],
        )),
        Op::InsertApiKey(k) => out.push(stmt(
            "INSERT INTO api_keys (id, name, role, digest, created_ms, revoked)
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                Box::new(k.id),
                Box::new(k.name),
                Box::new(k.role),
                bytes(&k.digest),
                Box::new(k.created_ms),
                Box::new(k.revoked),
            ],
        )),
        Op::RevokeApiKey { id } => out.push(stmt(
            "UPDATE api_keys SET revoked = true WHERE id = $1",
            vec![Box::new(id)],
        )),
        Op::SetMeta { key, value } => out.push(stmt(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            vec![Box::new(key), Box::new(value)],
        )),
    }
    Ok(())
}

macro_rules! hold_columns {
    () => {
        "SELECT id, subject, categories, reason, reference, placed_ms, until_ms, lifted_ms FROM legal_holds"
    };
}

macro_rules! request_columns {
    () => {
        "SELECT id, subject, kind, state, target, received_ms, due_ms, updated_ms, verification, outcome, sealed_text FROM rights_requests"
    };
}

fn hold_row(r: &Row) -> Result<HoldRow, StoreError> {
    Ok(HoldRow {
        id: col(r, 0)?,
        subject: key16(col(r, 1)?)?,
        categories: col(r, 2)?,
        reason: col(r, 3)?,
        reference: col(r, 4)?,
        placed_ms: col(r, 5)?,
        until_ms: col(r, 6)?,
        lifted_ms: col(r, 7)?,
    })
}

fn request_row(r: &Row) -> Result<RequestRow, StoreError> {
    Ok(RequestRow {
        id: col(r, 0)?,
        subject: key16(col(r, 1)?)?,
        kind: col(r, 2)?,
        state: col(r, 3)?,
        target: col(r, 4)?,
        received_ms: col(r, 5)?,
        due_ms: col(r, 6)?,
        updated_ms: col(r, 7)?,
        verification: col(r, 8)?,
        outcome: col(r, 9)?,
        sealed_text: col(r, 10)?,
    })
}

fn api_key_row(r: &Row) -> Result<ApiKeyRow, StoreError> {
    Ok(ApiKeyRow {
        id: col(r, 0)?,
        name: col(r, 1)?,
        role: col(r, 2)?,
        digest: hash32(col(r, 3)?)?,
        created_ms: col(r, 4)?,
        revoked: col(r, 5)?,
    })
}

async fn subject_row(c: &Conn, id: &SubjectKey) -> Result<Option<SubjectRow>, StoreError> {
    c.opt(
        "SELECT state, created_ms, closed_ms FROM subjects WHERE id = $1",
        &[&&id[..]],
    )
    .await?
    .map(|r| {
        Ok(SubjectRow {
            id: *id,
            state: SubjectState::parse(col(&r, 0)?)
                .ok_or_else(|| corrupt("unknown subject state"))?,
            created_ms: col(&r, 1)?,
            closed_ms: col(&r, 2)?,
        })
    })
    .transpose()
}

async fn records_of(c: &Conn, subject: &SubjectKey) -> Result<Vec<RecordRow>, StoreError> {
    c.query(
        "SELECT id, category, feature, source, collected_ms, sealed
         FROM records WHERE subject = $1 ORDER BY id",
        &[&&subject[..]],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(RecordRow {
            id: col(r, 0)?,
            subject: *subject,
            category: col(r, 1)?,
            feature: col(r, 2)?,
            source: col(r, 3)?,
            collected_ms: col(r, 4)?,
            sealed: col(r, 5)?,
        })
    })
    .collect()
}

async fn consents_in_force(c: &Conn, subject: &SubjectKey) -> Result<Vec<ConsentRow>, StoreError> {
    c.query(
        "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq
         FROM consent_current WHERE subject = $1 ORDER BY target",
        &[&&subject[..]],
    )
    .await?
    .iter()
    .map(consent_row)
    .collect()
}

async fn consent_history(c: &Conn, subject: &SubjectKey) -> Result<Vec<ConsentRow>, StoreError> {
    c.query(
        "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq
         FROM consent_events WHERE subject = $1 ORDER BY id",
        &[&&subject[..]],
    )
    .await?
    .iter()
    .map(consent_row)
    .collect()
}

async fn disclosures_of(c: &Conn, subject: &SubjectKey) -> Result<Vec<DisclosureRow>, StoreError> {
    c.query(
        "SELECT subject, recipient, categories, purpose, legal_basis, at_ms, audit_seq
         FROM disclosures WHERE subject = $1 ORDER BY id",
        &[&&subject[..]],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(DisclosureRow {
            subject: key16(col(r, 0)?)?,
            recipient: col(r, 1)?,
            categories: col(r, 2)?,
            purpose: col(r, 3)?,
            legal_basis: col(r, 4)?,
            at_ms: col(r, 5)?,
            audit_seq: seq_in(col(r, 6)?)?,
        })
    })
    .collect()
}

impl PgStore {
    fn rows<T>(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.pool
            .run(async |c| c.query(sql, params).await)?
            .iter()
            .map(map)
            .collect()
    }

    fn row<T>(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        map: impl FnOnce(&Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.pool
            .run(async |c| c.opt(sql, params).await)?
            .as_ref()
            .map(map)
            .transpose()
    }
}

impl Reader for PgStore {
    fn subject_records(
        &self,
        subject: &SubjectKey,
        consent_target: Option<&str>,
        categories: &[&str],
    ) -> Result<Option<SubjectRecords>, StoreError> {
        self.pool
            .run(async |c| subject_records(c, subject, consent_target, categories).await)
    }

    fn consent(
        &self,
        subject: &SubjectKey,
        target: &str,
    ) -> Result<Option<ConsentRow>, StoreError> {
        self.pool.run(async |c| consent(c, subject, target).await)
    }
}

impl crate::Store for PgStore {
    fn read_commit(
        &self,
        work: &mut dyn FnMut(&dyn Reader) -> Result<Unit, StoreError>,
    ) -> Result<Vec<Entry>, StoreError> {
        self.arriving.fetch_add(1, Ordering::AcqRel);
        let mut w = self.lock();
        self.arriving.fetch_sub(1, Ordering::AcqRel);
        self.begin(&mut w)?;
        let Some(open) = w.open.as_mut() else {
            return Err(StoreError::Backend("no transaction is open".into()));
        };
        let epoch = open.epoch;
        let result = self.member(open, work);
        let own = usize::from(result.is_ok());
        open.members += own;
        let lost = matches!(result, Err(StoreError::Unavailable(_)));
        let outcome = self.conclude(w, epoch, own, lost);
        match (result, outcome) {
            (Ok(entries), Ok(())) => Ok(entries),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    }

    fn commit_each(&self, units: Vec<Unit>) -> Vec<Result<Vec<Entry>, StoreError>> {
        if units.is_empty() {
            return Vec::new();
        }
        self.arriving.fetch_add(1, Ordering::AcqRel);
        let mut w = self.lock();
        self.arriving.fetch_sub(1, Ordering::AcqRel);
        if let Err(e) = self.begin(&mut w) {
            return units.iter().map(|_| Err(e.clone())).collect();
        }
        let Some(open) = w.open.as_mut() else {
            let e = StoreError::Backend("no transaction is open".into());
            return units.iter().map(|_| Err(e.clone())).collect();
        };
        let epoch = open.epoch;
        let results = self.members(open, &units);
        let own = results.iter().filter(|r| r.is_ok()).count();
        open.members += own;
        let lost = results
            .iter()
            .any(|r| matches!(r, Err(StoreError::Unavailable(_))));
        match self.conclude(w, epoch, own, lost) {
            Ok(()) => results,
            Err(e) => results.into_iter().map(|r| r.and(Err(e.clone()))).collect(),
        }
    }

    fn next_record_ids(&self, n: usize) -> Result<i64, StoreError> {
        let n = i64::try_from(n).map_err(|_| StoreError::Backend("record ids exhausted".into()))?;
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        let (next, ceiling) = *ids;
        if next.checked_add(n).is_some_and(|end| end <= ceiling) && next > 0 {
            *ids = (next + n, ceiling);
            return Ok(next);
        }
        let reserve = n
            .checked_add(RECORD_ID_BLOCK)
            .ok_or_else(|| StoreError::Backend("record ids exhausted".into()))?;
        let row = self.row(
            "UPDATE counters SET value = value + $1 WHERE name = 'record_id' RETURNING value",
            &[&reserve],
            |r| col::<i64>(r, 0),
        )?;
        let ceiling = row.ok_or_else(|| corrupt("the record id counter is missing"))?;
        let start = ceiling - reserve;
        *ids = (start + n, ceiling);
        Ok(start)
    }

    fn subject(&self, id: &SubjectKey) -> Result<Option<SubjectRow>, StoreError> {
        self.pool.run(async |c| subject_row(c, id).await)
    }

    fn subjects(&self, ids: &[SubjectKey]) -> Result<Vec<Option<SubjectRow>>, StoreError> {
        // Pipelined on one connection: one round trip.
        self.pool.run(async |c| {
            futures_util::future::join_all(ids.iter().map(|id| subject_row(c, id)))
                .await
                .into_iter()
                .collect()
        })
    }

    fn find_by_index(&self, digest: &[u8; 16]) -> Result<Vec<SubjectKey>, StoreError> {
        self.rows(
            "SELECT DISTINCT subject FROM lookup WHERE digest = $1 ORDER BY subject",
            &[&&digest[..]],
            |r| key16(col(r, 0)?),
        )
    }

    fn records(&self, subject: &SubjectKey) -> Result<Vec<RecordRow>, StoreError> {
        self.pool.run(async |c| records_of(c, subject).await)
    }

    fn consents_in_force(&self, subject: &SubjectKey) -> Result<Vec<ConsentRow>, StoreError> {
        self.pool.run(async |c| consents_in_force(c, subject).await)
    }

    fn consent_history(&self, subject: &SubjectKey) -> Result<Vec<ConsentRow>, StoreError> {
        self.pool.run(async |c| consent_history(c, subject).await)
    }

    fn disclosures(&self, subject: &SubjectKey) -> Result<Vec<DisclosureRow>, StoreError> {
        self.pool.run(async |c| disclosures_of(c, subject).await)
    }

    fn remote(&self) -> bool {
        true
    }

    /// The five queries go out together on one connection: one round trip.
    fn subject_file(&self, id: &SubjectKey) -> Result<crate::SubjectFile, StoreError> {
        self.pool.run(async |c| {
            let (subject, records, consents, history, disclosures) = futures_util::future::join5(
                subject_row(c, id),
                records_of(c, id),
                consents_in_force(c, id),
                consent_history(c, id),
                disclosures_of(c, id),
            )
            .await;
            Ok(crate::SubjectFile {
                subject: subject?,
                records: records?,
                consents: consents?,
                history: history?,
                disclosures: disclosures?,
            })
        })
    }

    fn certificate(&self, subject: &SubjectKey) -> Result<Option<String>, StoreError> {
        self.row(
            "SELECT document FROM certificates WHERE subject = $1",
            &[&&subject[..]],
            |r| col(r, 0),
        )
    }

    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let row = self.row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            &[],
            |r| Ok((seq_in(col(r, 0)?)?, hash32(col(r, 1)?)?)),
        )?;
        Ok(row.unwrap_or((0, GENESIS)))
    }

    fn audit_scan(
        &self,
        from_seq: u64,
        visit: &mut dyn FnMut(RawEntry<'_>) -> bool,
    ) -> Result<(), StoreError> {
        let from = seq_out(from_seq)?;
        self.pool.run(async |c| {
            let st = c
                .prepare("SELECT seq, entry, hash FROM audit WHERE seq >= $1 ORDER BY seq")
                .await?;
            let params: [&(dyn ToSql + Sync); 1] = [&from];
            let rows = c.client.query_raw(&st, params).await.map_err(pg)?;
            let mut rows = std::pin::pin!(rows);
            while let Some(row) = rows.next().await {
                let row = row.map_err(pg)?;
                let seq = seq_in(col(&row, 0)?)?;
                let bytes: &[u8] = row.try_get(1).unwrap_or(&[]);
                let hash: &[u8] = row.try_get(2).unwrap_or(&[]);
                if !visit(RawEntry { seq, bytes, hash }) {
                    break;
                }
            }
            Ok(())
        })
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.rows(
            "SELECT seq, head, at_ms, signature FROM checkpoints ORDER BY seq",
            &[],
            |r| {
                Ok(Checkpoint {
                    seq: seq_in(col(r, 0)?)?,
                    head: hash32(col(r, 1)?)?,
                    at_ms: col(r, 2)?,
                    signature: col::<&[u8]>(r, 3)?
                        .try_into()
                        .map_err(|_| corrupt("checkpoint signature is not 64 bytes"))?,
                })
            },
        )
    }

    fn add_checkpoint(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        let seq = seq_out(cp.seq)?;
        self.pool.run(async |c| {
            c.execute(
                "INSERT INTO checkpoints (seq, head, at_ms, signature) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (seq) DO UPDATE SET head = EXCLUDED.head, at_ms = EXCLUDED.at_ms,
                 signature = EXCLUDED.signature",
                &[&seq, &&cp.head[..], &cp.at_ms, &&cp.signature[..]],
            )
            .await
        })?;
        Ok(())
    }

    fn purge_queue(&self) -> Result<Vec<SubjectKey>, StoreError> {
        self.rows(
            "SELECT subject FROM purge_queue ORDER BY queued_ms, subject",
            &[],
            |r| key16(col(r, 0)?),
        )
    }

    fn purge_records(&self, subject: &SubjectKey, limit: usize) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // One statement, so one transaction: the records and their index entries go together.
        let row = self.row(
            "WITH gone AS (
                 DELETE FROM records WHERE subject = $1 AND (category, id) IN
                     (SELECT category, id FROM records WHERE subject = $1 LIMIT $2)
                 RETURNING id
             ), unindexed AS (
                 DELETE FROM lookup WHERE subject = $1 AND record IN (SELECT id FROM gone)
             )
             SELECT COUNT(*) FROM gone",
            &[&&subject[..], &limit],
            |r| col::<i64>(r, 0),
        )?;
        Ok(usize::try_from(row.unwrap_or(0)).unwrap_or(0))
    }

    fn holds(&self, subject: &SubjectKey) -> Result<Vec<HoldRow>, StoreError> {
        self.rows(
            concat!(
                hold_columns!(),
                " WHERE subject = $1 ORDER BY placed_ms, id"
            ),
            &[&&subject[..]],
            hold_row,
        )
    }

    fn active_holds(&self, now_ms: i64) -> Result<Vec<HoldRow>, StoreError> {
        self.rows(
            concat!(
                hold_columns!(),
                " WHERE lifted_ms IS NULL AND until_ms > $1 ORDER BY placed_ms, id"
            ),
            &[&now_ms],
            hold_row,
        )
    }

    fn hold(&self, id: &str) -> Result<Option<HoldRow>, StoreError> {
        self.row(concat!(hold_columns!(), " WHERE id = $1"), &[&id], hold_row)
    }

    fn request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        self.row(
            concat!(request_columns!(), " WHERE id = $1"),
            &[&id],
            request_row,
        )
    }

    fn requests_due(&self, before_ms: i64) -> Result<Vec<RequestRow>, StoreError> {
        self.rows(
            concat!(
                request_columns!(),
                " WHERE due_ms <= $1 AND state NOT IN ('completed', 'refused') ORDER BY due_ms, id"
            ),
            &[&before_ms],
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
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.rows(
            "SELECT collected_ms, subject, id FROM records
             WHERE category = $1 AND collected_ms < $2
               AND (collected_ms, subject, id) > ($3, $4, $5)
             ORDER BY collected_ms, subject, id LIMIT $6",
            &[&category, &before_ms, &at, &&subject[..], &id, &limit],
            |r| {
                Ok((
                    col(r, 0)?,
                    RecordKey {
                        subject: key16(col(r, 1)?)?,
                        category: category.to_string(),
                        id: col(r, 2)?,
                    },
                ))
            },
        )
    }

    fn closed_before(&self, before_ms: i64) -> Result<Vec<(SubjectKey, i64)>, StoreError> {
        self.rows(
            "SELECT id, closed_ms FROM subjects WHERE state = 'closed' AND closed_ms < $1 ORDER BY closed_ms, id",
            &[&before_ms],
            |r| Ok((key16(col(r, 0)?)?, col(r, 1)?)),
        )
    }

    fn otp(&self, subject: &SubjectKey) -> Result<Option<OtpRow>, StoreError> {
        self.row(
            "SELECT digest, expires_ms, attempts FROM otp_codes WHERE subject = $1",
            &[&&subject[..]],
            |r| {
                Ok(OtpRow {
                    subject: *subject,
                    digest: col::<&[u8]>(r, 0)?
                        .try_into()
                        .map_err(|_| corrupt("a code digest is not 16 bytes"))?,
                    expires_ms: col(r, 1)?,
                    attempts: u32::try_from(col::<i64>(r, 2)?).unwrap_or(u32::MAX),
                })
            },
        )
    }

    fn attempts(&self, key: &str) -> Result<Option<(i64, u32)>, StoreError> {
        self.row(
            "SELECT window_ms, count FROM attempts WHERE key = $1",
            &[&key],
            |r| {
                Ok((
                    col(r, 0)?,
                    u32::try_from(col::<i64>(r, 1)?).unwrap_or(u32::MAX),
                ))
            },
        )
    }

    fn session(&self, digest: &[u8; 32]) -> Result<Option<(SubjectKey, i64)>, StoreError> {
        self.row(
            "SELECT subject, expires_ms FROM sessions WHERE digest = $1",
            &[&&digest[..]],
            |r| Ok((key16(col(r, 0)?)?, col(r, 1)?)),
        )
    }

    fn staff(&self, username: &str) -> Result<Option<StaffRow>, StoreError> {
        self.row(
            "SELECT username, role, password_hash, created_ms, disabled FROM staff WHERE username = $1",
            &[&username],
            |r| {
                Ok(StaffRow {
                    username: col(r, 0)?,
                    role: col(r, 1)?,
                    password_hash: col(r, 2)?,
                    created_ms: col(r, 3)?,
                    disabled: col(r, 4)?,
                })
            },
        )
    }

    fn staff_session(&self, digest: &[u8; 32]) -> Result<Option<(String, i64)>, StoreError> {
        self.row(
            "SELECT username, expires_ms FROM staff_sessions WHERE digest = $1",
            &[&&digest[..]],
            |r| Ok((col(r, 0)?, col(r, 1)?)),
        )
    }

    fn settle(&self) -> Result<(), StoreError> {
        // PostgreSQL's own checkpoints make committed data durable; nothing to fold.
        Ok(())
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        self.rows(
            "SELECT id, name, role, digest, created_ms, revoked FROM api_keys ORDER BY created_ms, id",
            &[],
            api_key_row,
        )
    }

    fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        self.row(
            "SELECT id, name, role, digest, created_ms, revoked FROM api_keys WHERE id = $1",
            &[&id],
            api_key_row,
        )
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.row("SELECT value FROM meta WHERE key = $1", &[&key], |r| {
            col(r, 0)
        })
    }
}

const KEYRING_MIGRATIONS: &[&str] = &[
    "CREATE TABLE data_keys (subject BYTEA PRIMARY KEY, wrapped BYTEA NOT NULL);",
    "CREATE TABLE destroyed (subject BYTEA PRIMARY KEY);",
];

/// Every table of the keyring schema, as backups write them.
pub const KEYRING_TABLES: &[&str] = &["data_keys", "destroyed"];

/// The PostgreSQL keyring: its own schema, reached through its own connection string, so it
/// can live under other credentials (or on another server) than the data. A destroyed key's
/// row is deleted and the table vacuumed at once; see `docs/scaling.md` for what PostgreSQL
/// may still hold of it on disk.
pub struct PgKeyring {
    pool: Pool,
}

impl PgKeyring {
    /// Connects, creates the schema if needed and applies pending migrations.
    pub fn open(target: &PgTarget) -> Result<PgKeyring, StoreError> {
        let pool = Pool::new(target, 2, "steward-pg-keys")?;
        pool.migrate(&target.schema, KEYRING_MIGRATIONS)?;
        Ok(PgKeyring { pool })
    }
}

impl Keyring for PgKeyring {
    fn get(&self, subject: &SubjectKey) -> Result<Option<Vec<u8>>, StoreError> {
        self.pool.run(async |c| {
            c.opt(
                "SELECT wrapped FROM data_keys WHERE subject = $1",
                &[&&subject[..]],
            )
            .await?
            .map(|r| col(&r, 0))
            .transpose()
        })
    }

    fn put(&self, subject: &SubjectKey, wrapped: &[u8]) -> Result<(), StoreError> {
        self.pool.run(async |c| {
            c.execute(
                "INSERT INTO data_keys (subject, wrapped) VALUES ($1, $2)",
                &[&&subject[..], &wrapped],
            )
            .await
        })?;
        Ok(())
    }

    fn destroy(&self, subject: &SubjectKey) -> Result<bool, StoreError> {
        self.pool.run(async |c| {
            // One statement: the key goes and the tombstone comes together.
            let n = c
                .opt(
                    "WITH gone AS (DELETE FROM data_keys WHERE subject = $1 RETURNING subject),
                          remembered AS (INSERT INTO destroyed (subject) VALUES ($1) ON CONFLICT DO NOTHING)
                     SELECT COUNT(*) FROM gone",
                    &[&&subject[..]],
                )
                .await?
                .map(|r| col::<i64>(&r, 0))
                .transpose()?
                .unwrap_or(0);
            // Reclaim the dead row now rather than whenever autovacuum comes by.
            c.simple("VACUUM data_keys").await?;
            Ok(n > 0)
        })
    }

    fn destroyed(&self) -> Result<Vec<SubjectKey>, StoreError> {
        self.pool.run(async |c| {
            c.query("SELECT subject FROM destroyed ORDER BY subject", &[])
                .await?
                .iter()
                .map(|r| key16(col(r, 0)?))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

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
        }
    }

    #[test]
    fn p35_postgres_passes_the_conformance_suite() {
        let made = Mutex::new(Vec::new());
        let make = || {
            let data = scratch("conf");
            let keys = PgTarget::new(&data.url, &format!("{}_keys", data.schema)).unwrap();
            let store = PgStore::open(&data).unwrap();
            let keyring = PgKeyring::open(&keys).unwrap();
            made.lock().unwrap().extend([data, keys]);
            (
                Box::new(store) as Box<dyn crate::Store>,
                Box::new(keyring) as Box<dyn crate::Keyring>,
            )
        };
        let outcome = crate::conformance::run_all(&make);
        for t in made.lock().unwrap().iter() {
            t.drop_schema().unwrap();
        }
        outcome.unwrap();
    }

    #[test]
    fn migrations_apply_once_and_refuse_a_newer_schema() {
        let t = scratch("mig");
        assert_eq!(PgStore::migrate(&t).unwrap(), MIGRATIONS.len());
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
        assert_eq!(units, 64 * 20);
        assert!(
            commits * 2 <= units,
            "{units} units took {commits} transactions: no group commit"
        );
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
}
