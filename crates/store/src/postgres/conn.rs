//! Connections: the I/O thread that owns the sockets, a connection with its prepared
//! statements, the pool, and pipelining several statements in one round trip.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use crate::StoreError;

use super::*;

/// The runtime thread that owns the sockets. Shut down without waiting, so a store may be
/// dropped anywhere, inside an async task included.
pub(super) struct Io(Option<tokio::runtime::Runtime>);

impl Io {
    pub(super) fn new(name: &str) -> Result<Io, StoreError> {
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

    pub(super) fn handle(&self) -> Result<&tokio::runtime::Handle, StoreError> {
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
pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) statements: Mutex<HashMap<&'static str, Statement>>,
}

impl Conn {
    pub(super) async fn prepare(&self, sql: &'static str) -> Result<Statement, StoreError> {
        let cached = self
            .statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
            .cloned();
        if let Some(st) = cached {
            return Ok(st);
        }
        #[cfg(test)]
        prepared::record(sql);
        let st = self.client.prepare(sql).await.map_err(pg)?;
        self.statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sql, st.clone());
        Ok(st)
    }

    pub(super) async fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let st = self.prepare(sql).await?;
        self.client.query(&st, params).await.map_err(pg)
    }

    pub(super) async fn opt(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let st = self.prepare(sql).await?;
        self.client.query_opt(&st, params).await.map_err(pg)
    }

    pub(super) async fn execute(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let st = self.prepare(sql).await?;
        self.client.execute(&st, params).await.map_err(pg)
    }

    pub(super) async fn simple(&self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).await.map_err(pg)
    }
}

/// Connections to one database, made on first use and made again after they break.
pub(super) struct Pool {
    pub(super) io: Io,
    pub(super) config: tokio_postgres::Config,
    /// TLS as `sslmode` asks; `None` for `disable`.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    pub(super) slots: Vec<Mutex<Option<Arc<Conn>>>>,
    pub(super) next: AtomicUsize,
}

impl Pool {
    pub(super) fn new(target: &PgTarget, size: usize, name: &str) -> Result<Pool, StoreError> {
        let tls = super::tls::split(&target.url)?;
        let mut config: tokio_postgres::Config = tls.url.parse().map_err(|_| {
            StoreError::Incompatible("the PostgreSQL connection string cannot be parsed".into())
        })?;
        config.ssl_mode(super::tls::driver_mode(tls.mode));
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
            tls: super::tls::connector(&tls)?,
            slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// A fresh connection, its socket driven by the I/O thread.
    pub(super) fn connect(&self) -> Result<Arc<Conn>, StoreError> {
        let config = self.config.clone();
        let tls = self.tls.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.io.handle()?.spawn(async move {
            let made = match tls {
                Some(tls) => config.connect(tls).await.map(|(client, connection)| {
                    tokio::spawn(connection);
                    client
                }),
                None => config.connect(NoTls).await.map(|(client, connection)| {
                    // The connection ends with an error when the server goes away; the
                    // client then reports itself closed and is made again on next use.
                    tokio::spawn(connection);
                    client
                }),
            }
            .map_err(pg);
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

    pub(super) fn slot(&self, slot: &Mutex<Option<Arc<Conn>>>) -> Result<Arc<Conn>, StoreError> {
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
    pub(super) fn get(&self) -> Result<Arc<Conn>, StoreError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        match self.slots.get(i) {
            Some(slot) => self.slot(slot),
            None => Err(StoreError::Backend("empty connection pool".into())),
        }
    }

    /// Runs one piece of async work on a pooled connection.
    pub(super) fn run<T>(
        &self,
        work: impl AsyncFnOnce(&Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.get()?;
        block(work(&conn))
    }
}

/// A statement parameter, owned so that a unit's statements can be planned before any is sent.
pub(super) type Param = Box<dyn ToSql + Sync + Send>;

/// One planned statement.
pub(super) struct Stmt {
    pub(super) sql: &'static str,
    pub(super) params: Vec<Param>,
}

pub(super) fn stmt(sql: &'static str, params: Vec<Param>) -> Stmt {
    Stmt { sql, params }
}

pub(super) fn bytes(k: &[u8]) -> Param {
    Box::new(k.to_vec())
}

/// What is sent, in order, in one pipelined round.
pub(super) enum Step<'a> {
    /// A statement without parameters, by the simple protocol (`SAVEPOINT`, `COMMIT`).
    Simple(&'static str),
    /// A planned statement.
    Exec(&'a Stmt),
}

impl Conn {
    /// Sends `steps` back to back and waits for all their answers: one round trip however
    /// many there are. Statements not yet prepared are prepared first, together. Returns the
    /// first failure; PostgreSQL refuses everything after a failure inside a transaction.
    pub(super) async fn pipeline(&self, steps: &[Step<'_>]) -> Result<(), StoreError> {
        self.pipeline_at(steps).await.map_err(|(_, e)| e)
    }

    /// [`Conn::pipeline`], saying which step failed first (0 if preparing failed).
    pub(super) async fn pipeline_at(&self, steps: &[Step<'_>]) -> Result<(), (usize, StoreError)> {
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
pub(super) async fn in_order(mut futures: Vec<Sent<'_>>) -> Result<(), (usize, StoreError)> {
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

/// Every statement prepared in this test process, for `tests::every_statement_follows_the_citus_rule`.
impl Pool {
    /// PostgreSQL's own check of this schema's tables and b-tree indexes, with the `amcheck`
    /// extension (`verify_heapam`, and `bt_index_check` with every heap tuple looked up): the
    /// problems found, in PostgreSQL's words (block and item numbers, never values). Without
    /// the extension, and without the right to create it, that is the one problem reported.
    pub(super) fn structure_problems(&self) -> Result<Vec<String>, StoreError> {
        self.run(async |c| {
            let client = &c.client;
            if client
                .batch_execute("CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA public")
                .await
                .is_err()
            {
                return Ok(vec![
                    "PostgreSQL's amcheck extension is not installed and could not be created (a superuser can: CREATE EXTENSION amcheck); tables and indexes were not checked".into(),
                ]);
            }
            let ext: String = client
                .query_one(
                    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'",
                    &[],
                )
                .await
                .map_err(pg)?
                .get(0);
            let relations = client
                .query(
                    "SELECT c.oid, c.relname, c.relkind::text, COALESCE(a.amname, '') FROM pg_class c
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     LEFT JOIN pg_am a ON a.oid = c.relam
                     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i')
                     ORDER BY c.relname",
                    &[],
                )
                .await
                .map_err(pg)?;
            let mut problems = Vec::new();
            for r in relations {
                let oid: u32 = r.get(0);
                let name: String = r.get(1);
                let kind: String = r.get(2);
                let am: String = r.get(3);
                if kind == "r" {
                    let sql = format!(
                        "SELECT blkno, offnum, msg FROM \"{ext}\".verify_heapam($1::oid::regclass)"
                    );
                    match client.query(&sql, &[&oid]).await {
                        Ok(rows) => problems.extend(rows.iter().map(|row| {
                            let blk: i64 = row.get(0);
                            let msg: Option<String> = row.get(2);
                            format!("table {name}, block {blk}: {}", msg.unwrap_or_default())
                        })),
                        Err(e) => problems.push(format!("table {name}: {}", pg(e))),
                    }
                } else if am == "btree" {
                    let sql =
                        format!("SELECT \"{ext}\".bt_index_check($1::oid::regclass, true)");
                    if let Err(e) = client.query(&sql, &[&oid]).await {
                        problems.push(format!("index {name}: {}", pg(e)));
                    }
                }
            }
            Ok(problems)
        })
    }
}

#[cfg(test)]
pub(super) mod prepared {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    static SEEN: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

    pub(in crate::postgres) fn record(sql: &'static str) {
        SEEN.lock().unwrap_or_else(|p| p.into_inner()).insert(sql);
    }

    pub(in crate::postgres) fn all() -> Vec<&'static str> {
        SEEN.lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect()
    }
}
