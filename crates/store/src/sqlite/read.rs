//! The read path (one statement for a subject's state, consent and records) and the
//! [`Reader`] a unit of work reads through inside its transaction.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    ConsentRow, HeldConsent, Reader, RecordRow, RequestRow, StoreError, SubjectKey, SubjectRecords,
    SubjectState,
};

use super::rows::consent_row;
use super::rows::{REQUEST_COLUMNS, request_row};
use super::{SqliteStore, backend};

pub(super) fn subject_records(
    conn: &Connection,
    subject: &SubjectKey,
    consent_target: Option<&str>,
    categories: &[&str],
) -> Result<Option<SubjectRecords>, StoreError> {
    macro_rules! head {
        () => {
            "SELECT s.state, s.tag, c.granted, c.separate, c.at_ms, c.tag, r.id, r.category, r.feature, r.source, r.collected_ms, r.sealed, s.created_ms
             FROM subjects s
             LEFT JOIN consent_current c ON c.subject = s.id AND c.target = ?2"
        };
    }
    // The two common shapes are fixed strings: no SQL is built on the read path for them.
    const NONE: &str = "SELECT s.state, s.tag, c.granted, c.separate, c.at_ms, c.tag, NULL, NULL, NULL, NULL, NULL, NULL, s.created_ms
         FROM subjects s
         LEFT JOIN consent_current c ON c.subject = s.id AND c.target = ?2
         WHERE s.id = ?1";
    const ONE: &str = concat!(
        head!(),
        " LEFT JOIN records r ON r.subject = s.id AND r.category = ?3 WHERE s.id = ?1 ORDER BY r.id"
    );
    let many;
    let sql = match categories.len() {
        0 => NONE,
        1 => ONE,
        n => {
            many = format!(
                concat!(
                    head!(),
                    " LEFT JOIN records r ON r.subject = s.id AND r.category IN ({}) WHERE s.id = ?1 ORDER BY r.id"
                ),
                (0..n)
                    .map(|i| format!("?{}", i + 3))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            many.as_str()
        }
    };
    let mut st = conn.prepare_cached(sql).map_err(backend)?;
    let key = &subject[..];
    let target = consent_target.unwrap_or("");
    let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(categories.len() + 2);
    values.push(&key);
    values.push(&target);
    for c in categories {
        values.push(c);
    }
    let mut rows = st.query(values.as_slice()).map_err(backend)?;
    let mut out: Option<SubjectRecords> = None;
    while let Some(r) = rows.next().map_err(backend)? {
        let found = match &mut out {
            Some(found) => found,
            None => {
                let text: String = r.get(0).map_err(backend)?;
                let granted: Option<bool> = r.get(2).map_err(backend)?;
                let consent = match granted {
                    Some(granted) => Some(HeldConsent {
                        granted,
                        separate: r.get(3).map_err(backend)?,
                        at_ms: r.get(4).map_err(backend)?,
                        tag: r.get(5).map_err(backend)?,
                    }),
                    None => None,
                };
                out.insert(SubjectRecords {
                    state: SubjectState::parse(&text)
                        .ok_or_else(|| StoreError::Corrupt("unknown subject state".into()))?,
                    state_tag: r.get(1).map_err(backend)?,
                    created_ms: r.get(12).map_err(backend)?,
                    consent,
                    records: Vec::new(),
                })
            }
        };
        let id: Option<i64> = r.get(6).map_err(backend)?;
        if let Some(id) = id {
            found.records.push(RecordRow {
                id,
                subject: *subject,
                category: r.get(7).map_err(backend)?,
                feature: r.get(8).map_err(backend)?,
                source: r.get(9).map_err(backend)?,
                collected_ms: r.get(10).map_err(backend)?,
                sealed: r.get(11).map_err(backend)?,
            });
        }
    }
    Ok(out)
}

pub(super) fn consent(
    conn: &Connection,
    subject: &SubjectKey,
    target: &str,
) -> Result<Option<ConsentRow>, StoreError> {
    conn.prepare_cached(
        "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq, tag
             FROM consent_current WHERE subject = ?1 AND target = ?2",
    )
    .and_then(|mut st| {
        st.query_row(params![&subject[..], target], consent_row)
            .optional()
    })
    .map_err(backend)
    .and_then(|row| match row {
        Some(row) => Ok(Some(row)),
        // Every consent event also sets the consent in force: events without it is damage.
        None => {
            let events = conn
                .prepare_cached(
                    "SELECT 1 FROM consent_events WHERE subject = ?1 AND target = ?2 LIMIT 1",
                )
                .and_then(|mut st| st.exists(params![&subject[..], target]))
                .map_err(backend)?;
            if events {
                Err(crate::consent_lost())
            } else {
                Ok(None)
            }
        }
    })
}

/// Reads inside a unit of work's transaction.
pub(super) struct TxReader<'a>(pub(super) &'a Connection);

/// The subjects holding a lookup digest, on `conn`.
fn index_holders(conn: &Connection, digest: &[u8; 16]) -> Result<Vec<SubjectKey>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT DISTINCT subject FROM lookup WHERE digest = ?1 ORDER BY subject")
        .map_err(backend)?;
    let rows = st
        .query_map(params![&digest[..]], |r| super::key16(r.get(0)?))
        .map_err(backend)?;
    rows.map(|r| r.map_err(backend)).collect()
}

/// One request by id, on `conn`.
fn request(conn: &Connection, id: &str) -> Result<Option<RequestRow>, StoreError> {
    conn.prepare_cached(&format!("{REQUEST_COLUMNS} WHERE id = ?1"))
        .and_then(|mut st| st.query_row(params![id], request_row).optional())
        .map_err(backend)
}

impl Reader for TxReader<'_> {
    fn index_holders(&self, digest: &[u8; 16]) -> Result<Vec<SubjectKey>, StoreError> {
        index_holders(self.0, digest)
    }

    fn request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        request(self.0, id)
    }

    fn subject_records(
        &self,
        subject: &SubjectKey,
        consent_target: Option<&str>,
        categories: &[&str],
    ) -> Result<Option<SubjectRecords>, StoreError> {
        subject_records(self.0, subject, consent_target, categories)
    }

    fn consent(
        &self,
        subject: &SubjectKey,
        target: &str,
    ) -> Result<Option<ConsentRow>, StoreError> {
        consent(self.0, subject, target)
    }
}

impl Reader for SqliteStore {
    fn index_holders(&self, digest: &[u8; 16]) -> Result<Vec<SubjectKey>, StoreError> {
        index_holders(&self.lock().conn, digest)
    }

    fn request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        request(&self.lock().conn, id)
    }

    fn subject_records(
        &self,
        subject: &SubjectKey,
        consent_target: Option<&str>,
        categories: &[&str],
    ) -> Result<Option<SubjectRecords>, StoreError> {
        subject_records(&self.lock().conn, subject, consent_target, categories)
    }

    fn consent(
        &self,
        subject: &SubjectKey,
        target: &str,
    ) -> Result<Option<ConsentRow>, StoreError> {
        consent(&self.lock().conn, subject, target)
    }
}
