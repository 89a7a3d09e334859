//! Reaching the provider's databases for a rights request: the walk from the subject's
//! identities through the references, in one consistent read per database.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use crate::check::{Catalogue, Node};
use crate::live::{Connection, Error, Kind, Schema};
use crate::model::Identity;

/// The subject's identities: the values each is looked up by.
pub type Identities = BTreeMap<Identity, Vec<String>>;

/// A row as read: each declared field's value as text (NULL as `None`), in the collection's
/// field order.
pub type Row = Vec<Option<String>>;

/// What a walk found in one collection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectionFound {
    /// The collection's index in its dataset.
    pub collection: usize,
    /// The subject's rows, in the order found.
    pub rows: Vec<Row>,
}

/// What a walk found in one system.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SystemFound {
    /// The dataset's index in the catalogue.
    pub dataset: usize,
    /// Each collection where rows were found, in file order.
    pub collections: Vec<CollectionFound>,
}

/// What a walk found, per system (every database dataset, in file order, even where nothing
/// was found).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// Per system.
    pub systems: Vec<SystemFound>,
}

/// A PostgreSQL connection and the statements prepared on it.
pub(crate) struct PgConn {
    pub(crate) client: tokio_postgres::Client,
    statements: HashMap<String, tokio_postgres::Statement>,
}

impl PgConn {
    pub(crate) async fn statement(
        &mut self,
        sql: &str,
    ) -> Result<tokio_postgres::Statement, Error> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql).await?;
        self.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }
}

/// The connections to one database, kept between requests.
enum Pool {
    Pg(Mutex<Vec<PgConn>>),
    My(mysql_async::Pool),
    /// A file: a connection is opened per walk.
    Sqlite,
}

impl Pool {
    /// Keeps a PostgreSQL connection, outside any transaction, for the next request.
    fn give(&self, conn: PgConn) {
        if let Pool::Pg(idle) = self
            && let Ok(mut v) = idle.lock()
        {
            v.push(conn);
        }
    }
}

/// One database's part of a walk: a connection in a read-only transaction that sees one
/// snapshot.
enum Session {
    /// A connection, and whether its transaction has begun (`BEGIN` goes with the first
    /// statement, in one round trip).
    Pg(PgConn, bool),
    My(mysql_async::Conn),
    Sqlite(rusqlite::Connection),
}

/// The provider's databases as Steward reaches them: the catalogue, a connection per database
/// dataset, their schemas as read at first use, and a runtime of their own (the callers are
/// blocking threads).
pub struct Fanout {
    /// The datasets.
    pub catalogue: Catalogue,
    connections: BTreeMap<String, Connection>,
    pools: Mutex<BTreeMap<usize, std::sync::Arc<Pool>>>,
    schemas: Mutex<BTreeMap<usize, std::sync::Arc<Schema>>>,
    /// Always set but while dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Fanout {
    /// The runtime is let go without waiting: dropping one inside another runtime's thread
    /// would panic.
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("datasets", &self.catalogue.datasets.len())
            .finish_non_exhaustive()
    }
}

/// An identifier quoted for PostgreSQL and SQLite.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An identifier quoted for MySQL.
pub(crate) fn quote_my(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `SELECT columns FROM table WHERE key IN (?, …)` with `n` placeholders (MySQL, SQLite):
/// every name given already quoted.
fn select_in(columns: &[String], table: &str, key: &str, n: usize) -> String {
    format!(
        "SELECT {} FROM {table} WHERE {key} IN ({})",
        columns.join(", "),
        vec!["?"; n].join(", ")
    )
}

/// Identities are looked up this many at a time.
const CHUNK: usize = 1000;

impl Fanout {
    /// The catalogue with a connection for every database dataset (external systems need
    /// none). Nothing is reached until a request needs it.
    pub fn new(
        catalogue: Catalogue,
        connections: BTreeMap<String, Connection>,
    ) -> Result<Fanout, Error> {
        for d in &catalogue.datasets {
            let c = connections.get(&d.key).ok_or_else(|| {
                Error::Settings(if d.external.is_some() {
                    format!(
                        "external system `{}` names no webhook endpoint in the settings ([datasets.connections.{}] url = \"webhook:whe_…\")",
                        d.key, d.key
                    )
                } else {
                    format!(
                        "dataset `{}` has no connection in the settings ([datasets.connections.{}])",
                        d.key, d.key
                    )
                })
            })?;
            match (d.external.is_some(), c.endpoint()) {
                (true, None) => {
                    return Err(Error::Settings(format!(
                        "external system `{}`: its connection's url is `webhook:` and the id of a registered webhook endpoint (`webhook:whe_…`)",
                        d.key
                    )));
                }
                (false, Some(_)) => {
                    return Err(Error::Settings(format!(
                        "dataset `{}` has collections: its connection is a database, not a webhook endpoint",
                        d.key
                    )));
                }
                (true, Some(_)) => {}
                (false, None) => {
                    c.kind()?;
                }
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("steward-datasets")
            .enable_all()
            .build()
            .map_err(|e| Error::Settings(format!("a runtime for the datasets: {e}")))?;
        Ok(Fanout {
            catalogue,
            connections,
            pools: Mutex::new(BTreeMap::new()),
            schemas: Mutex::new(BTreeMap::new()),
            runtime: Some(runtime),
        })
    }

    /// The webhook endpoint external system `system` is asked through (`None` for a database
    /// or an unknown key).
    pub fn endpoint(&self, system: &str) -> Option<&str> {
        self.catalogue
            .dataset(system)
            .filter(|d| d.external.is_some())
            .and_then(|_| self.connections.get(system))
            .and_then(Connection::endpoint)
    }

    /// Runs `f` on the datasets' runtime and waits for it: from any thread, also one that
    /// drives another runtime (the caller's thread only waits).
    pub fn block_on<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, Error> {
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| Error::Settings("the datasets' runtime has stopped".into()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .map_err(|_| Error::Settings("the datasets' runtime has stopped".into()))
    }

    /// The walk from `identities` ([`Fanout::walk`]), from a blocking caller.
    pub fn access(self: &std::sync::Arc<Self>, identities: Identities) -> Result<Found, Error> {
        let me = std::sync::Arc::clone(self);
        self.block_on(async move { me.walk(&identities).await })?
    }

    pub(crate) fn connection_of(&self, d: usize) -> Result<&Connection, Error> {
        let key = self
            .catalogue
            .datasets
            .get(d)
            .map(|d| d.key.as_str())
            .unwrap_or_default();
        self.connections
            .get(key)
            .ok_or_else(|| Error::Settings(format!("dataset `{key}` has no connection")))
    }

    fn pool(&self, d: usize) -> Result<std::sync::Arc<Pool>, Error> {
        let mut pools = self
            .pools
            .lock()
            .map_err(|_| Error::Settings("the datasets' pools are poisoned".into()))?;
        if let Some(p) = pools.get(&d) {
            return Ok(p.clone());
        }
        let c = self.connection_of(d)?;
        let pool = std::sync::Arc::new(match c.kind()? {
            Kind::Postgres => Pool::Pg(Mutex::new(Vec::new())),
            Kind::MySql => Pool::My(crate::live::mysql_pool(c)?),
            Kind::Sqlite => Pool::Sqlite,
        });
        pools.insert(d, pool.clone());
        Ok(pool)
    }

    /// The schema of dataset `d`'s database, read once.
    pub async fn schema(&self, d: usize) -> Result<std::sync::Arc<Schema>, Error> {
        if let Some(s) = self.schemas.lock().ok().and_then(|m| m.get(&d).cloned()) {
            return Ok(s);
        }
        let schema = std::sync::Arc::new(crate::live::introspect(self.connection_of(d)?).await?);
        if let Ok(mut m) = self.schemas.lock() {
            m.insert(d, schema.clone());
        }
        Ok(schema)
    }

    /// A PostgreSQL connection to dataset `d`'s database: an idle one, or a new one.
    pub(crate) async fn pg_take(&self, d: usize) -> Result<PgConn, Error> {
        let pool = self.pool(d)?;
        let reused = match &*pool {
            Pool::Pg(idle) => idle.lock().ok().and_then(|mut v| v.pop()),
            _ => None,
        };
        Ok(match reused {
            Some(c) if !c.client.is_closed() => c,
            _ => PgConn {
                client: crate::live::pg_connect(self.connection_of(d)?).await?,
                statements: HashMap::new(),
            },
        })
    }

    /// Gives a connection back, outside any transaction, for the next request.
    pub(crate) fn pg_give(&self, d: usize, conn: PgConn) {
        if let Ok(pool) = self.pool(d) {
            pool.give(conn);
        }
    }

    async fn session(&self, d: usize) -> Result<Session, Error> {
        let pool = self.pool(d)?;
        match &*pool {
            Pool::Pg(_) => Ok(Session::Pg(self.pg_take(d).await?, false)),
            Pool::Sqlite => {
                let conn = self.connection_of(d)?.sqlite_open()?;
                // A read transaction sees one snapshot of the file.
                conn.execute_batch("BEGIN")?;
                Ok(Session::Sqlite(conn))
            }
            Pool::My(pool) => {
                use mysql_async::prelude::Queryable;
                let mut conn = pool.get_conn().await?;
                conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                    .await?;
                Ok(Session::My(conn))
            }
        }
    }

    /// Ends a session's transaction and gives its connection back.
    async fn finish(&self, d: usize, session: Session) -> Result<(), Error> {
        match session {
            Session::Pg(conn, false) => {
                self.pg_give(d, conn);
                Ok(())
            }
            Session::Pg(conn, true) => {
                // The read is over: its end need not hold up the answer. The connection goes
                // back to the pool once the transaction has ended, or is let go.
                let pool = self.pool(d)?;
                tokio::spawn(async move {
                    if conn.client.batch_execute("COMMIT").await.is_ok() {
                        pool.give(conn);
                    }
                });
                Ok(())
            }
            Session::My(mut conn) => {
                use mysql_async::prelude::Queryable;
                conn.query_drop("COMMIT").await?;
                Ok(())
            }
            Session::Sqlite(conn) => {
                conn.execute_batch("COMMIT")?;
                Ok(())
            }
        }
    }

    /// The rows of collection `(d, c)` whose field `key` is one of `values`: every declared
    /// field, as text.
    async fn select(
        &self,
        session: &mut Session,
        node: Node,
        key: usize,
        values: &[String],
    ) -> Result<Vec<Row>, Error> {
        let (d, c) = node;
        let schema = self.schema(d).await?;
        let collection = self
            .catalogue
            .datasets
            .get(d)
            .and_then(|ds| ds.collections.get(c))
            .ok_or_else(|| Error::Settings("a collection went missing".into()))?;
        let key_field = collection
            .fields
            .get(key)
            .ok_or_else(|| Error::Settings("a field went missing".into()))?;
        let table = schema.tables.get(&collection.name).ok_or_else(|| {
            Error::Database(format!(
                "table `{}` is not in the database (run `steward datasets check`)",
                collection.name
            ))
        })?;
        let mut out = Vec::new();
        match session {
            Session::Pg(conn, begun) => {
                let pg_schema = self.connection_of(d)?.pg_schema().to_string();
                let columns: Vec<String> = collection
                    .fields
                    .iter()
                    .map(|f| format!("{}::text", quote(&f.name)))
                    .collect();
                // The parameter is cast to the column's type, so the column's index is used.
                let condition = match table.columns.get(&key_field.name) {
                    Some(col) if col.class.is_some() && !col.udt.is_empty() => format!(
                        "{} = ANY($1::text[]::{}[])",
                        quote(&key_field.name),
                        quote(&col.udt)
                    ),
                    _ => format!("{}::text = ANY($1::text[])", quote(&key_field.name)),
                };
                let sql = format!(
                    "SELECT {} FROM {}.{} WHERE {condition}",
                    columns.join(", "),
                    quote(&pg_schema),
                    quote(&collection.name)
                );
                let st = conn.statement(&sql).await?;
                for chunk in values.chunks(CHUNK) {
                    let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
                    let rows = if *begun {
                        conn.client.query(&st, &[&chunk]).await?
                    } else {
                        // The snapshot's BEGIN and the first statement, pipelined.
                        let (began, rows) = futures_util::future::join(
                            conn.client
                                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
                            conn.client.query(&st, &[&chunk]),
                        )
                        .await;
                        began?;
                        *begun = true;
                        rows?
                    };
                    for row in rows {
                        let mut r = Row::with_capacity(collection.fields.len());
                        for i in 0..collection.fields.len() {
                            r.push(row.try_get::<_, Option<String>>(i)?);
                        }
                        out.push(r);
                    }
                }
            }
            Session::Sqlite(conn) => {
                // The column's affinity applies to the text values compared with it.
                let columns: Vec<String> = collection
                    .fields
                    .iter()
                    .map(|f| format!("CAST({} AS TEXT)", quote(&f.name)))
                    .collect();
                for chunk in values.chunks(CHUNK) {
                    let sql = select_in(
                        &columns,
                        &quote(&collection.name),
                        &quote(&key_field.name),
                        chunk.len(),
                    );
                    let mut st = conn.prepare_cached(&sql)?;
                    let mut rows = st.query(rusqlite::params_from_iter(chunk.iter()))?;
                    while let Some(row) = rows.next()? {
                        let mut r = Row::with_capacity(collection.fields.len());
                        for i in 0..collection.fields.len() {
                            r.push(row.get::<_, Option<String>>(i)?);
                        }
                        out.push(r);
                    }
                }
            }
            Session::My(conn) => {
                use mysql_async::prelude::Queryable;
                let columns: Vec<String> = collection
                    .fields
                    .iter()
                    .map(|f| quote_my(&f.name))
                    .collect();
                for chunk in values.chunks(CHUNK) {
                    let sql = select_in(
                        &columns,
                        &quote_my(&collection.name),
                        &quote_my(&key_field.name),
                        chunk.len(),
                    );
                    let rows: Vec<mysql_async::Row> = conn.exec(sql, chunk.to_vec()).await?;
                    for row in rows {
                        let r: Row = row.unwrap().into_iter().map(text_of).collect();
                        out.push(r);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The walk (P23): from each collection with an identity field, through every reference
    /// a walk may follow, until no new value leads anywhere; one read-only snapshot per
    /// database, all ended before it returns.
    pub async fn walk(&self, identities: &Identities) -> Result<Found, Error> {
        let mut sessions: BTreeMap<usize, Session> = BTreeMap::new();
        let result = self.walk_in(identities, &mut sessions).await;
        let mut ended = Ok(());
        for (d, s) in std::mem::take(&mut sessions) {
            if let Err(e) = self.finish(d, s).await {
                ended = Err(e);
            }
        }
        let found = result?;
        ended?;
        Ok(found)
    }

    async fn walk_in(
        &self,
        identities: &Identities,
        sessions: &mut BTreeMap<usize, Session>,
    ) -> Result<Found, Error> {
        let datasets = &self.catalogue.datasets;
        // Rows found per collection (de-duplicated), values already looked up per field.
        let mut rows: BTreeMap<Node, (Vec<Row>, BTreeSet<Row>)> = BTreeMap::new();
        let mut asked: BTreeMap<(Node, usize), BTreeSet<String>> = BTreeMap::new();
        let mut work: std::collections::VecDeque<(Node, usize, Vec<String>)> =
            std::collections::VecDeque::new();
        for (di, d) in datasets.iter().enumerate() {
            if d.external.is_some() {
                continue;
            }
            for (ci, c) in d.collections.iter().enumerate() {
                for (fi, f) in c.fields.iter().enumerate() {
                    if let Some((identity, _)) = &f.identity
                        && let Some(values) = identities.get(identity)
                        && !values.is_empty()
                    {
                        work.push_back(((di, ci), fi, values.clone()));
                    }
                }
            }
        }
        while let Some((node, field, values)) = work.pop_front() {
            let seen = asked.entry((node, field)).or_default();
            let fresh: Vec<String> = values
                .into_iter()
                .filter(|v| seen.insert(v.clone()))
                .collect();
            if fresh.is_empty() {
                continue;
            }
            let key = datasets.get(node.0).map_or("", |d| d.key.as_str());
            let session = match sessions.entry(node.0) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(self.session(node.0).await.map_err(|e| e.in_system(key))?)
                }
            };
            let found = self
                .select(session, node, field, &fresh)
                .await
                .map_err(|e| e.in_system(key))?;
            let (kept, known) = rows.entry(node).or_default();
            let mut new_rows = Vec::new();
            for r in found {
                if known.insert(r.clone()) {
                    kept.push(r.clone());
                    new_rows.push(r);
                }
            }
            if new_rows.is_empty() {
                continue;
            }
            // Every reference a walk may follow out of this collection, with the values the
            // new rows give it.
            for e in &self.catalogue.edges {
                let (from_field, to, to_field) = if e.to == node
                    && matches!(e.direction, crate::Direction::From | crate::Direction::Both)
                {
                    (e.to_field, e.from, e.field)
                } else if e.from == node
                    && matches!(e.direction, crate::Direction::To | crate::Direction::Both)
                {
                    (e.field, e.to, e.to_field)
                } else {
                    continue;
                };
                let values: Vec<String> = new_rows
                    .iter()
                    .filter_map(|r| r.get(from_field).cloned().flatten())
                    .collect();
                if !values.is_empty() {
                    work.push_back((to, to_field, values));
                }
            }
        }
        let mut found = Found::default();
        for (di, d) in datasets.iter().enumerate() {
            if d.external.is_some() {
                continue;
            }
            let mut system = SystemFound {
                dataset: di,
                collections: Vec::new(),
            };
            for ci in 0..d.collections.len() {
                if let Some((kept, _)) = rows.remove(&(di, ci))
                    && !kept.is_empty()
                {
                    system.collections.push(CollectionFound {
                        collection: ci,
                        rows: kept,
                    });
                }
            }
            found.systems.push(system);
        }
        Ok(found)
    }
}

/// A MySQL value as text (NULL as `None`).
fn text_of(v: mysql_async::Value) -> Option<String> {
    use mysql_async::Value as V;
    match v {
        V::NULL => None,
        V::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        V::Int(i) => Some(i.to_string()),
        V::UInt(u) => Some(u.to_string()),
        V::Float(f) => Some(f.to_string()),
        V::Double(f) => Some(f.to_string()),
        V::Date(y, mo, d, h, mi, s, us) => Some(if us == 0 {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
        } else {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
        }),
        V::Time(neg, days, h, mi, s, us) => {
            let hours = u64::from(days) * 24 + u64::from(h);
            Some(format!(
                "{}{hours:02}:{mi:02}:{s:02}{}",
                if neg { "-" } else { "" },
                if us == 0 {
                    String::new()
                } else {
                    format!(".{us:06}")
                }
            ))
        }
    }
}
