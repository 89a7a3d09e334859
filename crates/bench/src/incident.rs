//! An incident's affected set (issue 13, P22) over a store of 1,000,000 subjects, against the
//! raw indexed query for the same subject ids in the same run. The store is filled straight
//! through SQL (the set-up is not what is measured, and nothing is decrypted by either side):
//! every subject holds an email address and a name, collected an hour ago. Steward's side
//! opens an incident exposing `email` over the last two hours — the store's query for each
//! category's holders, the set sorted, packed and kept with the incident in one audited unit;
//! the raw side runs `SELECT DISTINCT subject FROM records WHERE category = … AND collected_ms
//! BETWEEN …` on a connection of its own and collects the ids. They take turns, three rounds;
//! the figure is the median ratio raw / Steward.

use std::time::Instant;

use anyhow::{Result, anyhow};
use serde::Serialize;
use steward_core::Backend;
use steward_core::clock::{Clock, SystemClock, rfc3339};

use crate::raw::RawPg;

/// What the incident phase measured.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct IncidentFigures {
    pub affected_subjects: usize,
    pub affected_set_ms: f64,
    pub affected_raw_query_ms: f64,
    pub affected_set_ratio: f64,
}

const ROUNDS: usize = 3;
const HOUR: i64 = 3_600_000;

/// The raw side: the indexed query, on a connection of its own.
enum RawQuery {
    Sqlite(rusqlite::Connection),
    Postgres(RawPg),
}

impl RawQuery {
    fn subjects(&self, from_ms: i64, to_ms: i64) -> Result<Vec<[u8; 16]>> {
        match self {
            RawQuery::Sqlite(c) => {
                let mut st = c.prepare_cached(
                    "SELECT DISTINCT subject FROM records
                     WHERE category = 'email' AND collected_ms BETWEEN ?1 AND ?2",
                )?;
                let mut rows = st.query(rusqlite::params![from_ms, to_ms])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let k = r.get_ref(0)?.as_blob()?;
                    out.push(k.try_into()?);
                }
                Ok(out)
            }
            RawQuery::Postgres(pg) => {
                let rows = pg.run(async |c| {
                    c.query(
                        "SELECT DISTINCT subject FROM records
                         WHERE category = 'email' AND collected_ms BETWEEN $1 AND $2",
                        &[&from_ms, &to_ms],
                    )
                    .await
                })?;
                rows.iter()
                    .map(|r| {
                        let k: &[u8] = r.try_get(0)?;
                        Ok(k.try_into()?)
                    })
                    .collect()
            }
        }
    }
}

/// Fills `backend` with `subjects` subjects holding an email address and a name collected at
/// `at_ms`, straight through SQL; returns the raw side's connection.
fn fill(backend: &Backend, subjects: usize, at_ms: i64) -> Result<RawQuery> {
    let n = i64::try_from(subjects)?;
    match backend {
        Backend::Sqlite { dir } => {
            let c = rusqlite::Connection::open(dir.join(steward_core::files::DATA))?;
            c.execute_batch(steward_store::SQLITE_SETTINGS)?;
            c.execute_batch("BEGIN")?;
            // Random 16-byte ids, as subjects' are.
            c.execute(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
                 INSERT INTO subjects (id, state, created_ms)
                 SELECT randomblob(16), 'active', ?2 FROM n",
                rusqlite::params![n, at_ms],
            )?;
            c.execute(
                "INSERT INTO records (subject, category, id, feature, source, collected_ms, sealed)
                 SELECT s.id, c.name, 1000000000 + 2 * s.rowid + c.k, 'account', 'subject', ?1,
                        randomblob(60)
                 FROM (SELECT id, row_number() OVER () AS rowid FROM subjects) AS s,
                      (SELECT 'email' AS name, 0 AS k UNION ALL SELECT 'name', 1) AS c",
                rusqlite::params![at_ms],
            )?;
            c.execute_batch("COMMIT")?;
            Ok(RawQuery::Sqlite(c))
        }
        Backend::Postgres { data, .. } => {
            let pg = RawPg::connect(&data.url, &data.schema)?;
            pg.run(async |c| {
                c.execute(
                    "INSERT INTO subjects (id, state, created_ms)
                     SELECT decode(md5(i::text), 'hex'), 'active', $2
                     FROM generate_series(0::bigint, $1::bigint - 1) AS i",
                    &[&n, &at_ms],
                )
                .await?;
                c.execute(
                    "INSERT INTO records (subject, category, id, feature, source, collected_ms, sealed)
                     SELECT decode(md5(i::text), 'hex'), c.name,
                            1000000000 + 2 * i + c.k, 'account', 'subject', $2,
                            decode(md5(i::text) || md5(c.name || i::text) || md5(i::text || 'x') || md5('y'), 'hex')
                     FROM generate_series(0::bigint, $1::bigint - 1) AS i,
                          (VALUES ('email', 0), ('name', 1)) AS c(name, k)",
                    &[&n, &at_ms],
                )
                .await?;
                c.batch_execute("ANALYZE records").await
            })?;
            Ok(RawQuery::Postgres(pg))
        }
    }
}

/// Measures the affected set of an incident over `subjects` subjects on a fresh `backend`.
pub(crate) fn measure(backend: &Backend, subjects: usize) -> Result<IncidentFigures> {
    let vault = crate::bench::fresh_vault(backend)?;
    let now = SystemClock.now_ms();
    let raw = fill(backend, subjects, now - HOUR)?;
    let (from_ms, to_ms) = (now - 2 * HOUR, now);
    let incident: steward_core::incidents::NewIncident =
        serde_json::from_value(serde_json::json!({
            "title": "Benchmark: an export of email addresses",
            "detected_at": rfc3339(now),
            "grade": "major",
            "exposure": {"categories": ["email"], "from": rfc3339(from_ms), "to": rfc3339(to_ms)},
        }))?;
    // Warm both paths once (the page cache, prepared statements).
    raw.subjects(from_ms, to_ms)?;
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let ids = raw.subjects(from_ms, to_ms)?;
        let raw_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let opened = vault.open_incident(None, &incident)?;
        let steward_s = t.elapsed().as_secs_f64();
        if opened.affected.subjects != ids.len() as u64 || ids.len() != subjects {
            return Err(anyhow!(
                "the affected set has {} subjects, the raw query {} of {subjects}",
                opened.affected.subjects,
                ids.len()
            ));
        }
        ours.push(steward_s * 1e3);
        theirs.push(raw_s * 1e3);
        ratios.push(raw_s / steward_s.max(1e-9));
    }
    Ok(IncidentFigures {
        affected_subjects: subjects,
        affected_set_ms: crate::bench::median(ours),
        affected_raw_query_ms: crate::bench::median(theirs),
        affected_set_ratio: crate::bench::median(ratios),
    })
}
