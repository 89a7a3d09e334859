//! The SQLite keyring: wrapped data keys in a file of their own (P20, P28).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Keyring, StoreError, SubjectKey};

use super::rows::key16;
use super::{backend, migrate, open_connection, refuse_damaged};

/// The SQLite keyring: its own file, with `secure_delete` on and the write-ahead log truncated
/// after every destruction, so a destroyed key leaves no copy in the keyring's files.
pub struct SqliteKeyring {
    pub(super) conn: Mutex<Connection>,
}

impl SqliteKeyring {
    /// Opens (creating if needed) the keyring file at `path`.
    pub fn open(path: &Path) -> Result<SqliteKeyring, StoreError> {
        let mut conn = open_connection(path)?;
        refuse_damaged(&conn, "the keyring file")?;
        migrate(&mut conn, crate::migrations::SQLITE_KEYRING)?;
        Ok(SqliteKeyring {
            conn: Mutex::new(conn),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
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

    fn was_destroyed(&self, subject: &SubjectKey) -> Result<bool, StoreError> {
        self.lock()
            .prepare_cached("SELECT 1 FROM destroyed WHERE subject = ?1")
            .and_then(|mut st| st.exists(params![&subject[..]]))
            .map_err(backend)
    }

    fn structure_problems(&self) -> Result<Vec<String>, StoreError> {
        super::schema::structure_problems(&self.lock(), true)
    }
}
