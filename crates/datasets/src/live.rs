//! The live schema of a provider's database, read from its catalogue, and what a dataset
//! declares checked against it: tables and columns that exist, declared types that match,
//! erasures the columns can take, a key to address rows by, and every foreign key between
//! declared tables declared as a reference (erasure orders deletes by references).

use std::collections::BTreeMap;

use steward_policy::Diagnostic;

use crate::check::{Catalogue, Problem};
use crate::model::{DataType, Erase, Pos};

/// How Steward reaches one dataset's database: from the settings, never the dataset file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// `postgres://…` (libpq's `sslmode` and `sslrootcert` read as for Steward's own store;
    /// TLS when the server offers it by default), `mysql://…` / `mariadb://…`, or
    /// `sqlite://PATH` (a database file: `sqlite:///srv/app.db`, or relative to the working
    /// directory); for an external system, `webhook:whe_…`, the webhook endpoint it is asked
    /// through.
    pub url: String,
    /// PostgreSQL: the schema the tables are in (`public` when absent). MySQL: the URL's
    /// database.
    pub schema: Option<String>,
}

/// Which kind of database a connection reaches.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
    /// A SQLite database file.
    Sqlite,
}

impl Connection {
    /// The kind of database, from the URL's scheme.
    pub fn kind(&self) -> Result<Kind, Error> {
        let scheme = self.url.split("://").next().unwrap_or_default();
        match scheme {
            "postgres" | "postgresql" => Ok(Kind::Postgres),
            "mysql" | "mariadb" => Ok(Kind::MySql),
            "sqlite" => Ok(Kind::Sqlite),
            _ => Err(Error::Settings(
                "a dataset connection's `url` starts with postgres://, mysql://, mariadb:// or sqlite://"
                    .into(),
            )),
        }
    }

    /// For an external system: the id of the webhook endpoint named by `webhook:whe_…`.
    pub fn endpoint(&self) -> Option<&str> {
        self.url
            .strip_prefix("webhook:")
            .filter(|id| id.starts_with("whe_") && id.len() > 4)
    }

    /// A SQLite database file's path.
    pub fn sqlite_path(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(self.url.strip_prefix("sqlite://").unwrap_or(&self.url))
    }

    /// A connection to the SQLite database file (it must exist), foreign keys enforced.
    pub fn sqlite_open(&self) -> Result<rusqlite::Connection, Error> {
        let path = self.sqlite_path();
        let c = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            Error::Database(format!(
                "SQLite cannot open the database ({})",
                sqlite_kind(&e)
            ))
        })?;
        c.busy_timeout(std::time::Duration::from_secs(5))?;
        c.pragma_update(None, "foreign_keys", true)?;
        // What erasure deletes or overwrites is zeroed in the file, not left in free pages.
        c.pragma_update(None, "secure_delete", true)?;
        Ok(c)
    }

    /// The PostgreSQL schema.
    pub fn pg_schema(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }
}

/// What went wrong reaching a database (never a value of a row).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings cannot be used.
    #[error("{0}")]
    Settings(String),
    /// The database could not be reached or refused a statement.
    #[error("{0}")]
    Database(String),
    /// One system's failure, named.
    #[error("system `{system}`: {reason}")]
    System {
        /// The dataset's key.
        system: String,
        /// What went wrong, without any value.
        reason: String,
    },
}

impl Error {
    /// This error as system `key`'s.
    pub fn in_system(self, key: &str) -> Error {
        match self {
            Error::System { .. } => self,
            other => Error::System {
                system: key.to_string(),
                reason: other.to_string(),
            },
        }
    }
}

/// A database's own message can quote a value it was sent (`invalid input syntax for type
/// bigint: "…"`), so only its code is kept.
impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Error {
        Error::Database(match e.as_db_error() {
            Some(db) => format!(
                "PostgreSQL refused a statement (SQLSTATE {})",
                db.code().code()
            ),
            None if e.is_closed() => "PostgreSQL closed the connection".into(),
            None => format!("PostgreSQL cannot be reached ({e})"),
        })
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Database(format!("SQLite refused a statement ({})", sqlite_kind(&e)))
    }
}

/// What kind of SQLite failure, without its message (which can quote a value).
fn sqlite_kind(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => format!("{:?}", f.code),
        _ => "driver".into(),
    }
}

impl From<mysql_async::Error> for Error {
    fn from(e: mysql_async::Error) -> Error {
        Error::Database(match e {
            mysql_async::Error::Server(s) => format!(
                "MySQL refused a statement (error {}, SQLSTATE {})",
                s.code, s.state
            ),
            mysql_async::Error::Io(io) => format!("MySQL cannot be reached ({io})"),
            other => format!("MySQL failed ({})", error_kind(&other)),
        })
    }
}

fn error_kind(e: &mysql_async::Error) -> &'static str {
    match e {
        mysql_async::Error::Driver(_) => "driver",
        mysql_async::Error::Url(_) => "connection URL",
        _ => "other",
    }
}

/// A column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The catalogue's type name (`bigint`, `character varying`, `varchar`).
    pub ty: String,
    /// PostgreSQL: the type's own name (`int8`, `varchar`), what a parameter is cast to;
    /// empty for MySQL.
    pub udt: String,
    /// The class of values it holds, where Steward knows it.
    pub class: Option<DataType>,
    /// NULL allowed.
    pub nullable: bool,
    /// Longest text, for character types with a limit.
    pub max_len: Option<u64>,
}

/// A foreign key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignKey {
    /// Its columns.
    pub columns: Vec<String>,
    /// The table referred to.
    pub table: String,
    /// Its columns.
    pub referred: Vec<String>,
    /// `cascade`, `set null`, `set default`, `restrict` or `no action`.
    pub on_delete: String,
}

/// A table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Columns by name.
    pub columns: BTreeMap<String, Column>,
    /// The primary key's columns; empty when there is none.
    pub primary: Vec<String>,
    /// Each unique key's columns (not the primary key).
    pub uniques: Vec<Vec<String>>,
    /// Its foreign keys.
    pub foreign: Vec<ForeignKey>,
}

/// The tables of one schema (PostgreSQL) or database (MySQL).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schema {
    /// Tables by name.
    pub tables: BTreeMap<String, Table>,
}

fn pg_class(ty: &str) -> Option<DataType> {
    Some(match ty {
        "smallint" | "integer" | "bigint" => DataType::Integer,
        "numeric" | "real" | "double precision" => DataType::Float,
        "text" | "character varying" | "character" | "citext" | "name" => DataType::String,
        "boolean" => DataType::Boolean,
        "date"
        | "timestamp with time zone"
        | "timestamp without time zone"
        | "time with time zone"
        | "time without time zone" => DataType::Time,
        "bytea" => DataType::Bytes,
        "uuid" => DataType::Uuid,
        "json" | "jsonb" => DataType::Json,
        _ => return None,
    })
}

fn mysql_class(ty: &str) -> Option<DataType> {
    Some(match ty {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => DataType::Integer,
        "decimal" | "numeric" | "float" | "double" => DataType::Float,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            DataType::String
        }
        "date" | "datetime" | "timestamp" | "time" | "year" => DataType::Time,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => DataType::Bytes,
        "uuid" => DataType::Uuid,
        "json" => DataType::Json,
        _ => return None,
    })
}

/// SQLite's type affinity rules, read from a column's declared type, with Steward's classes for
/// the names that say more (`BOOLEAN`, `TIMESTAMP`, `UUID`, `JSON`).
fn sqlite_class(ty: &str) -> Option<DataType> {
    let t = ty.to_ascii_uppercase();
    Some(if t.contains("BOOL") {
        DataType::Boolean
    } else if t.contains("INT") {
        DataType::Integer
    } else if t.contains("UUID") {
        DataType::Uuid
    } else if t.contains("JSON") {
        DataType::Json
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        DataType::String
    } else if t.contains("BLOB") {
        DataType::Bytes
    } else if t.contains("DATE") || t.contains("TIME") {
        DataType::Time
    } else if t.contains("REAL")
        || t.contains("FLOA")
        || t.contains("DOUB")
        || t.contains("NUM")
        || t.contains("DEC")
    {
        DataType::Float
    } else {
        return None;
    })
}

/// Whether a column of class `actual` holds what a field declared `declared` holds. Text
/// holds UUIDs and JSON; MySQL's booleans are `tinyint`.
fn holds(declared: DataType, actual: DataType, kind: Kind) -> bool {
    declared == actual
        || (actual == DataType::String && matches!(declared, DataType::Uuid | DataType::Json))
        || (kind == Kind::MySql && declared == DataType::Boolean && actual == DataType::Integer)
        || (kind == Kind::Sqlite && actual == DataType::String && declared == DataType::Time)
}

/// Whether `column` can take the fixed value `v`: text within its length, or an integer.
fn takes(column: &Column, v: &str) -> bool {
    let fits = |m: u64| u64::try_from(v.chars().count()).is_ok_and(|n| n <= m);
    match column.class {
        Some(DataType::String) => column.max_len.is_none_or(fits),
        Some(DataType::Integer) => v.parse::<i64>().is_ok(),
        _ => false,
    }
}

/// Reads the schema a connection reaches.
pub async fn introspect(conn: &Connection) -> Result<Schema, Error> {
    match conn.kind()? {
        Kind::Postgres => {
            let client = pg_connect(conn).await?;
            pg_schema(&client, conn.pg_schema()).await
        }
        Kind::Sqlite => sqlite_schema(&conn.sqlite_open()?),
        Kind::MySql => {
            let pool = mysql_pool(conn)?;
            let mut c = pool.get_conn().await?;
            let schema = mysql_schema(&mut c).await;
            drop(c);
            pool.disconnect().await?;
            schema
        }
    }
}

/// A PostgreSQL client for `conn` (TLS as its `sslmode` asks; `prefer` by default), its
/// connection driven on the current runtime.
pub async fn pg_connect(conn: &Connection) -> Result<tokio_postgres::Client, Error> {
    let tls =
        steward_store::pg_tls::split(&conn.url).map_err(|e| Error::Settings(e.to_string()))?;
    let mut config: tokio_postgres::Config = tls
        .url
        .parse()
        .map_err(|_| Error::Settings("the dataset's PostgreSQL URL cannot be parsed".into()))?;
    config
        .ssl_mode(steward_store::pg_tls::driver_mode(tls.mode))
        .connect_timeout(std::time::Duration::from_secs(5))
        .application_name("steward-datasets");
    let client =
        match steward_store::pg_tls::connector(&tls).map_err(|e| Error::Settings(e.to_string()))? {
            Some(connector) => {
                let (client, connection) = config.connect(connector).await?;
                tokio::spawn(connection);
                client
            }
            None => {
                let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
            }
        };
    Ok(client)
}

/// A MySQL pool for `conn` (`mariadb://` read as `mysql://`).
pub fn mysql_pool(conn: &Connection) -> Result<mysql_async::Pool, Error> {
    let url = match conn.url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => conn.url.clone(),
    };
    let opts = mysql_async::Opts::from_url(&url)
        .map_err(|_| Error::Settings("the dataset's MySQL URL cannot be parsed".into()))?;
    if opts.db_name().is_none() {
        return Err(Error::Settings(
            "a MySQL dataset URL names its database (`mysql://user@host:3306/shop`)".into(),
        ));
    }
    Ok(mysql_async::Pool::new(opts))
}

async fn pg_schema(client: &tokio_postgres::Client, schema: &str) -> Result<Schema, Error> {
    let mut out = Schema::default();
    for row in client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'YES',
                    character_maximum_length::bigint, udt_name::text
             FROM information_schema.columns WHERE table_schema = $1",
            &[&schema],
        )
        .await?
    {
        let ty: String = row.try_get(2)?;
        let max: Option<i64> = row.try_get(4)?;
        out.tables
            .entry(row.try_get(0)?)
            .or_default()
            .columns
            .insert(
                row.try_get(1)?,
                Column {
                    class: pg_class(&ty),
                    ty,
                    udt: row.try_get(5)?,
                    nullable: row.try_get(3)?,
                    max_len: max.and_then(|m| u64::try_from(m).ok()),
                },
            );
    }
    // Unique indexes on plain columns, the primary key among them.
    for row in client
        .query(
            "SELECT t.relname::text, i.indisprimary,
                    ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.o)
             FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_namespace s ON s.oid = t.relnamespace
             WHERE s.nspname = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL",
            &[&schema],
        )
        .await?
    {
        let table: String = row.try_get(0)?;
        let columns: Vec<String> = row.try_get(2)?;
        let t = out.tables.entry(table).or_default();
        if row.try_get(1)? {
            t.primary = columns;
        } else {
            t.uniques.push(columns);
        }
    }
    for row in client
        .query(
            "SELECT cl.relname::text, rf.relname::text, c.confdeltype::text,
                    ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),
                    ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o)
             FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid
             JOIN pg_namespace s ON s.oid = cl.relnamespace JOIN pg_class rf ON rf.oid = c.confrelid
             WHERE c.contype = 'f' AND s.nspname = $1",
            &[&schema],
        )
        .await?
    {
        let rule: String = row.try_get(2)?;
        let on_delete = match rule.as_str() {
            "c" => "cascade",
            "n" => "set null",
            "d" => "set default",
            "r" => "restrict",
            _ => "no action",
        };
        let table: String = row.try_get(0)?;
        out.tables.entry(table).or_default().foreign.push(ForeignKey {
            columns: row.try_get(3)?,
            table: row.try_get(1)?,
            referred: row.try_get(4)?,
            on_delete: on_delete.into(),
        });
    }
    Ok(out)
}

fn sqlite_schema(c: &rusqlite::Connection) -> Result<Schema, Error> {
    let mut out = Schema::default();
    let tables: Vec<String> = c
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for name in tables {
        let mut t = Table::default();
        let mut pk: Vec<(i64, String)> = Vec::new();
        let mut st = c.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)")?;
        let mut rows = st.query([&name])?;
        while let Some(r) = rows.next()? {
            let column: String = r.get(0)?;
            let ty: String = r.get(1)?;
            let not_null: bool = r.get(2)?;
            let key: i64 = r.get(3)?;
            if key > 0 {
                pk.push((key, column.clone()));
            }
            t.columns.insert(
                column,
                Column {
                    class: sqlite_class(&ty),
                    ty: ty.to_ascii_lowercase(),
                    udt: String::new(),
                    // A primary key column never holds NULL for Steward's purposes.
                    nullable: !not_null && key == 0,
                    max_len: None,
                },
            );
        }
        pk.sort();
        t.primary = pk.into_iter().map(|(_, c)| c).collect();
        let indexes: Vec<(String, bool, String, bool)> = c
            .prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")?
            .query_map([&name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        for (index, unique, origin, partial) in indexes {
            if !unique || partial || origin == "pk" {
                continue;
            }
            let columns: Vec<Option<String>> = c
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?
                .query_map([&index], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            // An index on an expression names no column: it cannot address rows.
            if let Some(columns) = columns.into_iter().collect::<Option<Vec<String>>>() {
                t.uniques.push(columns);
            }
        }
        let mut fks: BTreeMap<i64, ForeignKey> = BTreeMap::new();
        let mut st = c.prepare(
            "SELECT id, \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
        )?;
        let mut rows = st.query([&name])?;
        while let Some(r) = rows.next()? {
            let fk = fks.entry(r.get(0)?).or_insert_with(|| ForeignKey {
                columns: Vec::new(),
                table: String::new(),
                referred: Vec::new(),
                on_delete: String::new(),
            });
            fk.table = r.get(1)?;
            fk.columns.push(r.get(2)?);
            let to: Option<String> = r.get(3)?;
            fk.referred.push(to.unwrap_or_default());
            let rule: String = r.get(4)?;
            fk.on_delete = rule.to_ascii_lowercase();
        }
        t.foreign = fks.into_values().collect();
        out.tables.insert(name, t);
    }
    // A foreign key that names no column refers to the parent's primary key.
    let primaries: BTreeMap<String, Vec<String>> = out
        .tables
        .iter()
        .map(|(n, t)| (n.clone(), t.primary.clone()))
        .collect();
    for t in out.tables.values_mut() {
        for fk in &mut t.foreign {
            if fk.referred.iter().any(String::is_empty) {
                fk.referred = primaries.get(&fk.table).cloned().unwrap_or_default();
            }
        }
    }
    Ok(out)
}

async fn mysql_schema(c: &mut mysql_async::Conn) -> Result<Schema, Error> {
    use mysql_async::prelude::Queryable;
    let mut out = Schema::default();
    let columns: Vec<(String, String, String, String, Option<u64>)> = c
        .query(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()",
        )
        .await?;
    for (table, column, ty, nullable, max_len) in columns {
        let ty = ty.to_ascii_lowercase();
        out.tables.entry(table).or_default().columns.insert(
            column,
            Column {
                class: mysql_class(&ty),
                ty,
                udt: String::new(),
                nullable: nullable == "YES",
                max_len,
            },
        );
    }
    let keys: Vec<(String, String, String)> = c
        .query(
            "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
             WHERE TABLE_SCHEMA = DATABASE() AND NON_UNIQUE = 0
             ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        )
        .await?;
    let mut indexes: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (table, index, column) in keys {
        indexes.entry((table, index)).or_default().push(column);
    }
    for ((table, index), columns) in indexes {
        let t = out.tables.entry(table).or_default();
        if index == "PRIMARY" {
            t.primary = columns;
        } else {
            t.uniques.push(columns);
        }
    }
    let foreign: Vec<(String, String, String, String, String, String)> = c
        .query(
            "SELECT k.CONSTRAINT_NAME, k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME,
                    k.REFERENCED_COLUMN_NAME, r.DELETE_RULE
             FROM information_schema.KEY_COLUMN_USAGE k
             JOIN information_schema.REFERENTIAL_CONSTRAINTS r
               ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
              AND r.TABLE_NAME = k.TABLE_NAME
             WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL
             ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        )
        .await?;
    let mut fks: BTreeMap<(String, String), ForeignKey> = BTreeMap::new();
    for (name, table, column, referred_table, referred, rule) in foreign {
        let fk = fks.entry((table, name)).or_insert_with(|| ForeignKey {
            columns: Vec::new(),
            table: referred_table,
            referred: Vec::new(),
            on_delete: rule.to_ascii_lowercase(),
        });
        fk.columns.push(column);
        fk.referred.push(referred);
    }
    for ((table, _), fk) in fks {
        out.tables.entry(table).or_default().foreign.push(fk);
    }
    Ok(out)
}

/// Checks dataset `d` of `catalogue` against its database's schema: every problem found.
pub fn check(catalogue: &Catalogue, d: usize, kind: Kind, schema: &Schema) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Some(dataset) = catalogue.datasets.get(d) else {
        return problems;
    };
    let mut error = |at: Pos, code: &'static str, message: String| {
        problems.push(Problem {
            file: dataset.file.clone(),
            diagnostic: Diagnostic {
                code,
                line: at.line,
                column: at.column,
                message,
            },
        });
    };
    for (ci, c) in dataset.collections.iter().enumerate() {
        let Some(table) = schema.tables.get(&c.name) else {
            error(
                c.pos,
                "missing_table",
                format!("the database has no table `{}`", c.name),
            );
            continue;
        };
        for f in &c.fields {
            let Some(column) = table.columns.get(&f.name) else {
                error(
                    f.pos,
                    "missing_column",
                    format!("table `{}` has no column `{}`", c.name, f.name),
                );
                continue;
            };
            if let Some((declared, at)) = f.data_type {
                match column.class {
                    Some(actual) if holds(declared, actual, kind) => {}
                    _ => error(
                        at,
                        "wrong_type",
                        format!(
                            "`{}.{}` is declared {}, but the column is `{}`",
                            c.name,
                            f.name,
                            declared.as_str(),
                            column.ty
                        ),
                    ),
                }
            }
            // What erasure does must be possible where rows are kept.
            if c.delete_rows.is_some() {
                continue;
            }
            let at = f.erase_pos.unwrap_or(f.pos);
            match &f.erase {
                Erase::Null if !column.nullable => error(
                    at,
                    "erasure_impossible",
                    format!(
                        "erasure sets `{}.{}` to NULL, but the column is NOT NULL: erase it with `hash` or `{{fixed: ...}}`, or delete the rows",
                        c.name, f.name
                    ),
                ),
                Erase::Hash
                    if column.class != Some(DataType::String)
                        || column.max_len.is_some_and(|m| m < 64) =>
                {
                    error(
                        at,
                        "erasure_impossible",
                        format!(
                            "erasure writes a 64-character keyed hash into `{}.{}`, but the column is `{}`{}",
                            c.name,
                            f.name,
                            column.ty,
                            column
                                .max_len
                                .map(|m| format!(" of at most {m} characters"))
                                .unwrap_or_default()
                        ),
                    )
                }
                Erase::Fixed(v) if !takes(column, v) => error(
                    at,
                    "erasure_impossible",
                    format!(
                        "erasure writes the fixed value into `{}.{}`, which a `{}` column cannot take",
                        c.name, f.name, column.ty
                    ),
                ),
                _ => {}
            }
        }
        // A key to address the subject's rows by (Fides #5575).
        if table.primary.is_empty() && table.uniques.is_empty() {
            error(
                c.pos,
                "no_row_key",
                format!(
                    "table `{}` has no primary key and no unique key on plain columns: Steward cannot address the subject's rows one by one",
                    c.name
                ),
            );
        }
        let declared: Vec<&str> = c
            .fields
            .iter()
            .filter(|f| f.primary_key)
            .map(|f| f.name.as_str())
            .collect();
        if !declared.is_empty() {
            let same = |key: &Vec<String>| {
                key.len() == declared.len() && key.iter().all(|k| declared.contains(&k.as_str()))
            };
            if !same(&table.primary) && !table.uniques.iter().any(same) {
                let at = c
                    .fields
                    .iter()
                    .find(|f| f.primary_key)
                    .map_or(c.pos, |f| f.pos);
                error(
                    at,
                    "wrong_key",
                    format!(
                        "`{}` declares ({}) as its primary key, but the table's primary key is ({}) and no unique key matches",
                        c.name,
                        declared.join(", "),
                        table.primary.join(", ")
                    ),
                );
            }
        }
        // Every foreign key between declared tables is declared: erasure orders its deletes
        // by references.
        for fk in &table.foreign {
            let Some(pi) = dataset.collections.iter().position(|p| p.name == fk.table) else {
                continue;
            };
            let declared = catalogue.edges.iter().any(|e| {
                e.from == (d, ci)
                    && e.to == (d, pi)
                    && c.fields
                        .get(e.field)
                        .is_some_and(|f| fk.columns.contains(&f.name))
            });
            if !declared {
                error(
                    c.pos,
                    "undeclared_reference",
                    format!(
                        "table `{}` has a foreign key ({}) to `{}` ({}) that the dataset does not declare: declare it as a reference so erasure deletes in an order the database allows",
                        c.name,
                        fk.columns.join(", "),
                        fk.table,
                        fk.referred.join(", ")
                    ),
                );
            }
        }
    }
    // A table the dataset does not declare, holding a foreign key into a collection whose rows
    // erasure deletes: the delete would fail, or cascade into rows no one accounted for.
    for (name, table) in &schema.tables {
        if dataset.collections.iter().any(|c| &c.name == name) {
            continue;
        }
        for fk in &table.foreign {
            if fk.on_delete == "set null" {
                continue;
            }
            if let Some(parent) = dataset
                .collections
                .iter()
                .find(|p| p.name == fk.table && p.delete_rows.is_some())
            {
                error(
                    parent.delete_rows.unwrap_or(parent.pos),
                    "undeclared_table",
                    format!(
                        "erasure deletes rows of `{}`, but table `{name}`, which the dataset does not declare, refers to it ({}, on delete {}): declare `{name}`",
                        parent.name,
                        fk.columns.join(", "),
                        fk.on_delete
                    ),
                );
            }
        }
    }
    problems.sort_by_key(|p| (p.diagnostic.line, p.diagnostic.column));
    problems
}
