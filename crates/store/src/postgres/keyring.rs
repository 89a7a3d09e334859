//! The PostgreSQL keyring: its own schema and connection string (P20, P28).

use crate::{Keyring, StoreError, SubjectKey};

use super::*;

/// The PostgreSQL keyring: its own schema, reached through its own connection string, so it
/// can live under other credentials (or on another server) than the data. A destroyed key's
/// row is deleted and the table vacuumed at once; see `docs/scaling.md` for what PostgreSQL
/// may still hold of it on disk.
pub struct PgKeyring {
    pub(super) pool: Pool,
}

impl PgKeyring {
    /// Connects, creates the schema if needed and applies pending migrations.
    pub fn open(target: &PgTarget) -> Result<PgKeyring, StoreError> {
        let pool = Pool::new(target, 2, "steward-pg-keys")?;
        pool.migrate(&target.schema, crate::migrations::POSTGRES_KEYRING)?;
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

    fn was_destroyed(&self, subject: &SubjectKey) -> Result<bool, StoreError> {
        self.pool.run(async |c| {
            Ok(c.opt(
                "SELECT 1 FROM destroyed WHERE subject = $1",
                &[&&subject[..]],
            )
            .await?
            .is_some())
        })
    }

    fn structure_problems(&self) -> Result<Vec<String>, StoreError> {
        self.pool.structure_problems()
    }
}
