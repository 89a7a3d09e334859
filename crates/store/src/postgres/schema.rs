//! The schemas' tables, for backups, and applying the migrations (`migrations/postgres*/`).

use crate::StoreError;

use super::*;
use crate::migrations::Migration;

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
    "outbox",
    "webhook_endpoints",
    "subject_languages",
    "policy_versions",
    "policy_events",
    "cases",
    "case_sets",
    "subject_links",
    "request_steps",
    "request_systems",
];

/// Every table of the keyring schema, as backups write them.
pub const KEYRING_TABLES: &[&str] = &["data_keys", "destroyed"];

impl Pool {
    /// Creates the schema if needed and applies the migrations not yet applied, under an
    /// advisory lock so that processes starting together do not race. Each migration runs in
    /// its own transaction, one statement at a time (Citus refuses several statements in one
    /// string when one creates an index on a distributed table).
    pub(super) fn migrate(
        &self,
        schema: &str,
        migrations: &[Migration],
    ) -> Result<usize, StoreError> {
        let conn = self.get()?;
        block(async {
            conn.simple(&format!(
                "SELECT pg_advisory_lock(hashtext('steward.migrate.{schema}'))"
            ))
            .await?;
            let outcome = async {
                conn.simple(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await?;
                conn.simple(&format!(
                    "CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                         version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                ))
                .await?;
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
                let applied = usize::try_from(applied)
                    .map_err(|_| corrupt("schema_migrations holds a negative version"))?;
                if applied > migrations.len() {
                    return Err(StoreError::Incompatible(format!(
                        "schema {schema} was migrated by a newer Steward ({applied} migrations; this build knows {})",
                        migrations.len()
                    )));
                }
                let mut ran = 0;
                for m in migrations.iter().skip(applied) {
                    let step = async {
                        conn.simple("BEGIN").await?;
                        conn.simple(&format!("SET LOCAL search_path = {schema}")).await?;
                        for statement in m.statements() {
                            conn.simple(&statement).await.map_err(|e| {
                                StoreError::Backend(format!("migration {}: {e}", m.name))
                            })?;
                        }
                        conn.simple(&format!(
                            "INSERT INTO {schema}.schema_migrations (version) VALUES ({})",
                            m.version
                        ))
                        .await?;
                        conn.simple("COMMIT").await
                    }
                    .await;
                    if let Err(e) = step {
                        // Leave the connection usable whatever failed inside the migration.
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
