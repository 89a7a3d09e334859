//! Plain dumps of a backend's data or keyring, and their restore. Encryption, naming and
//! retention are the caller's (the core's `backup` module); this layer only moves tables.
//!
//! A dump is a sequence of parts, each a name and its bytes in chunks:
//! `u16 name length, name, then (u32 length, bytes)* ending with a zero length`, and the dump
//! ends with a zero name length. SQLite dumps one part, `sqlite` (a consistent copy of the
//! database file, made by `VACUUM INTO`); PostgreSQL one part per table, `table:<name>` (its
//! rows in COPY's binary format, all read in one snapshot).

use std::io::{Read, Write};
use std::path::Path;

use futures_util::{SinkExt, StreamExt};

use crate::postgres::{DATA_TABLES, KEYRING_TABLES, pg as pg_error};
use crate::{Backend, PgKeyring, PgStore, SqliteKeyring, SqliteStore, StoreError, files};

/// Which half of a deployment a dump holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Half {
    /// Everything but the keys.
    Data,
    /// The wrapped data keys and the record of destroyed ones.
    Keyring,
}

const CHUNK: usize = 1 << 20;

fn io(e: std::io::Error) -> StoreError {
    StoreError::Stream(e.kind())
}

fn part_name(w: &mut dyn Write, name: &str) -> Result<(), StoreError> {
    let len = u16::try_from(name.len()).map_err(|_| StoreError::Backend("part name".into()))?;
    w.write_all(&len.to_be_bytes()).map_err(io)?;
    w.write_all(name.as_bytes()).map_err(io)
}

fn chunk(w: &mut dyn Write, bytes: &[u8]) -> Result<(), StoreError> {
    for piece in bytes.chunks(CHUNK) {
        let len = u32::try_from(piece.len()).map_err(|_| StoreError::Backend("chunk".into()))?;
        w.write_all(&len.to_be_bytes()).map_err(io)?;
        w.write_all(piece).map_err(io)?;
    }
    Ok(())
}

fn end_part(w: &mut dyn Write) -> Result<(), StoreError> {
    w.write_all(&0u32.to_be_bytes()).map_err(io)
}

fn read_exact(r: &mut dyn Read, n: usize) -> Result<Vec<u8>, StoreError> {
    let mut buf = vec![0; n];
    r.read_exact(&mut buf).map_err(io)?;
    Ok(buf)
}

/// The next part's name, or `None` at the end of the dump.
fn next_part(r: &mut dyn Read) -> Result<Option<String>, StoreError> {
    let len = u16::from_be_bytes(
        read_exact(r, 2)?
            .try_into()
            .map_err(|_| StoreError::Corrupt("dump".into()))?,
    );
    if len == 0 {
        return Ok(None);
    }
    String::from_utf8(read_exact(r, usize::from(len))?)
        .map(Some)
        .map_err(|_| StoreError::Corrupt("a dump part's name is not text".into()))
}

/// The next chunk of the current part, or `None` at its end.
fn next_chunk(r: &mut dyn Read) -> Result<Option<Vec<u8>>, StoreError> {
    let len = u32::from_be_bytes(
        read_exact(r, 4)?
            .try_into()
            .map_err(|_| StoreError::Corrupt("dump".into()))?,
    );
    if len == 0 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| StoreError::Corrupt("dump".into()))?;
    if len > CHUNK {
        return Err(StoreError::Corrupt(
            "a dump chunk is larger than allowed".into(),
        ));
    }
    read_exact(r, len).map(Some)
}

impl Backend {
    /// Writes a consistent dump of `half` to `w`.
    pub fn dump(&self, half: Half, w: &mut dyn Write) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite { dir } => {
                let file = match half {
                    Half::Data => files::DATA,
                    Half::Keyring => files::KEYRING,
                };
                let scratch = tempfile_in(dir)?;
                let copy = scratch.join("copy.db");
                let conn = rusqlite::Connection::open(dir.join(file))
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                conn.execute("VACUUM INTO ?1", [copy.to_string_lossy().as_ref()])
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                let mut f = std::fs::File::open(&copy).map_err(io)?;
                part_name(w, "sqlite")?;
                let mut buf = vec![0; CHUNK];
                loop {
                    let n = f.read(&mut buf).map_err(io)?;
                    if n == 0 {
                        break;
                    }
                    chunk(w, buf.get(..n).unwrap_or_default())?;
                }
                end_part(w)?;
                std::fs::remove_dir_all(&scratch).map_err(io)?;
            }
            Backend::Postgres { data, keyring } => {
                let (target, tables) = match half {
                    Half::Data => (data, DATA_TABLES),
                    Half::Keyring => (keyring, KEYRING_TABLES),
                };
                if !target.schema_exists()? {
                    return Err(StoreError::Incompatible(format!(
                        "schema `{}` does not exist",
                        target.schema
                    )));
                }
                target.with_client(async |c| {
                    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        .await
                        .map_err(pg_error)?;
                    for table in tables {
                        part_name(w, &format!("table:{table}"))?;
                        let stream = c
                            .copy_out(&format!(
                                "COPY {}.{table} TO STDOUT (FORMAT binary)",
                                target.schema
                            ))
                            .await
                            .map_err(pg_error)?;
                        let mut stream = std::pin::pin!(stream);
                        while let Some(bytes) = stream.next().await {
                            chunk(w, &bytes.map_err(pg_error)?)?;
                        }
                        end_part(w)?;
                    }
                    c.batch_execute("COMMIT").await.map_err(pg_error)
                })?;
            }
        }
        part_name(w, "")
    }

    /// Restores `half` from a dump into this backend, which must not hold that half yet (a
    /// fresh data directory, or schemas that do not exist).
    pub fn restore(&self, half: Half, r: &mut dyn Read) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite { dir } => {
                let file = dir.join(match half {
                    Half::Data => files::DATA,
                    Half::Keyring => files::KEYRING,
                });
                if file.exists() {
                    return Err(StoreError::Incompatible(format!(
                        "`{}` exists; restore into a fresh data directory",
                        file.display()
                    )));
                }
                std::fs::create_dir_all(dir).map_err(io)?;
                if next_part(r)?.as_deref() != Some("sqlite") {
                    return Err(StoreError::Incompatible(
                        "this backup was not made from the embedded store".into(),
                    ));
                }
                let partial = file.with_extension("restoring");
                let mut f = std::fs::File::create(&partial).map_err(io)?;
                while let Some(bytes) = next_chunk(r)? {
                    f.write_all(&bytes).map_err(io)?;
                }
                f.sync_all().map_err(io)?;
                if next_part(r)?.is_some() {
                    return Err(StoreError::Corrupt(
                        "the dump has more than one part".into(),
                    ));
                }
                // Whole or not at all: the file appears under its name only once complete.
                std::fs::rename(&partial, &file).map_err(io)?;
                // Opening checks it and applies any migrations newer than the backup.
                match half {
                    Half::Data => drop(SqliteStore::open(&file)?),
                    Half::Keyring => drop(SqliteKeyring::open(&file)?),
                }
            }
            Backend::Postgres { data, keyring } => {
                let target = match half {
                    Half::Data => data,
                    Half::Keyring => keyring,
                };
                if target.schema_exists()? {
                    return Err(StoreError::Incompatible(format!(
                        "schema `{}` exists; restore into a schema that does not",
                        target.schema
                    )));
                }
                // The tables come from this build's migrations; the backup fills them.
                match half {
                    Half::Data => drop(PgStore::open(target)?),
                    Half::Keyring => drop(PgKeyring::open(target)?),
                }
                let schema = &target.schema;
                let tables = match half {
                    Half::Data => DATA_TABLES,
                    Half::Keyring => KEYRING_TABLES,
                };
                // What the migrations seeded (counters) gives way to the backup's rows.
                let emptied = tables
                    .iter()
                    .map(|t| format!("{schema}.{t}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                target.with_client(async |c| {
                    c.batch_execute(&format!("BEGIN; TRUNCATE {emptied}"))
                        .await
                        .map_err(pg_error)?;
                    while let Some(name) = next_part(r)? {
                        let Some(table) =
                            name.strip_prefix("table:").filter(|t| tables.contains(t))
                        else {
                            return Err(StoreError::Incompatible(
                                "this backup was not made from PostgreSQL".into(),
                            ));
                        };
                        let sink = c
                            .copy_in(&format!("COPY {schema}.{table} FROM STDIN (FORMAT binary)"))
                            .await
                            .map_err(pg_error)?;
                        let mut sink = std::pin::pin!(sink);
                        while let Some(bytes) = next_chunk(r)? {
                            sink.send(bytes::Bytes::from(bytes))
                                .await
                                .map_err(pg_error)?;
                        }
                        sink.as_mut().finish().await.map_err(pg_error)?;
                    }
                    if half == Half::Data {
                        // Identity columns continue after the restored rows.
                        for table in ["consent_events", "disclosures"] {
                            c.batch_execute(&format!(
                                "SELECT setval(pg_get_serial_sequence('{schema}.{table}', 'id'),
                                 COALESCE((SELECT MAX(id) FROM {schema}.{table}), 0) + 1, false)"
                            ))
                            .await
                            .map_err(pg_error)?;
                        }
                    }
                    c.batch_execute("COMMIT").await.map_err(pg_error)
                })?;
            }
        }
        Ok(())
    }
}

impl Backend {
    /// Whether `half` is stored here already.
    pub fn holds(&self, half: Half) -> Result<bool, StoreError> {
        match self {
            Backend::Sqlite { dir } => Ok(dir
                .join(match half {
                    Half::Data => files::DATA,
                    Half::Keyring => files::KEYRING,
                })
                .exists()),
            Backend::Postgres { data, keyring } => match half {
                Half::Data => data.schema_exists(),
                Half::Keyring => keyring.schema_exists(),
            },
        }
    }

    /// Where a restore is written before it replaces anything: a directory beside the data
    /// directory's files, or schemas beside the live ones (`<schema>_r<stamp>`).
    pub fn staging(&self, stamp: i64) -> Result<Backend, StoreError> {
        Ok(match self {
            Backend::Sqlite { dir } => Backend::Sqlite {
                dir: dir.join(format!(".restoring-{stamp}")),
            },
            Backend::Postgres { data, keyring } => Backend::Postgres {
                data: crate::PgTarget::new(&data.url, &staged_name(&data.schema, stamp))?,
                keyring: crate::PgTarget::new(&keyring.url, &staged_name(&keyring.schema, stamp))?,
            },
        })
    }

    /// Removes a staging area made by [`Backend::staging`] (a restore that failed).
    pub fn discard(&self) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite { dir } => match std::fs::remove_dir_all(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
                _ => Ok(()),
            },
            Backend::Postgres { data, keyring } => {
                data.drop_schema()?;
                keyring.drop_schema()
            }
        }
    }

    /// Puts the halves restored into `staging` in place of this backend's, replacing what is
    /// there. SQLite: the live file's write-ahead log goes (it belongs to the file being
    /// replaced), then the restored file is renamed over it — one rename, so the name holds
    /// the old file or the new, never neither. PostgreSQL: one transaction renames the live
    /// schema aside and the restored one into its name, then the old one is dropped.
    pub fn install(&self, staging: &Backend, halves: &[Half]) -> Result<(), StoreError> {
        match (self, staging) {
            (Backend::Sqlite { dir }, Backend::Sqlite { dir: staged }) => {
                for half in halves {
                    let name = match half {
                        Half::Data => files::DATA,
                        Half::Keyring => files::KEYRING,
                    };
                    for suffix in ["-wal", "-shm"] {
                        let f = dir.join(format!("{name}{suffix}"));
                        match std::fs::remove_file(&f) {
                            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                                return Err(io(e));
                            }
                            _ => {}
                        }
                    }
                    std::fs::rename(staged.join(name), dir.join(name)).map_err(io)?;
                }
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io)?;
                staging.discard()
            }
            (
                Backend::Postgres { data, keyring },
                Backend::Postgres {
                    data: staged_data,
                    keyring: staged_keyring,
                },
            ) => {
                for half in halves {
                    let (live, staged) = match half {
                        Half::Data => (data, staged_data),
                        Half::Keyring => (keyring, staged_keyring),
                    };
                    let (live_name, staged_name) = (&live.schema, &staged.schema);
                    let aside = format!("{staged_name}_old");
                    live.with_client(async |c| {
                        c.batch_execute(&format!(
                            "BEGIN;
                             DO $$ BEGIN
                               IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = '{live_name}') THEN
                                 EXECUTE 'ALTER SCHEMA {live_name} RENAME TO {aside}';
                               END IF;
                             END $$;
                             ALTER SCHEMA {staged_name} RENAME TO {live_name};
                             COMMIT;
                             DROP SCHEMA IF EXISTS {aside} CASCADE"
                        ))
                        .await
                        .map_err(pg_error)
                    })?;
                }
                staging.discard()
            }
            _ => Err(StoreError::Backend(
                "a restore is staged on the backend it replaces".into(),
            )),
        }
    }
}

/// A staging schema's name: the live one, `_r` and the stamp, within PostgreSQL's 63 bytes.
fn staged_name(schema: &str, stamp: i64) -> String {
    let suffix = format!("_r{stamp}");
    let keep = 63usize.saturating_sub(suffix.len() + 4);
    format!(
        "{}{suffix}",
        schema.get(..keep.min(schema.len())).unwrap_or(schema)
    )
}

/// A scratch directory beside `dir` (same file system, so copies of large stores fit).
fn tempfile_in(dir: &Path) -> Result<std::path::PathBuf, StoreError> {
    for n in 0..1000u32 {
        let p = dir.join(format!(".backup-{}-{n}", std::process::id()));
        if std::fs::create_dir(&p).is_ok() {
            return Ok(p);
        }
    }
    Err(StoreError::Backend(
        "cannot make a scratch directory for the backup".into(),
    ))
}
