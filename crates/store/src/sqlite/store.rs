//! [`crate::Store`] on SQLite: units of work, group commit in one transaction with a
//! savepoint per unit, and every query the domain makes.

use rusqlite::types::ValueRef;
use rusqlite::{TransactionBehavior, params};
use steward_audit::{Checkpoint, Entry, RawEntry};

use crate::{
    ApiKeyRow, ConsentRow, DisclosureRow, HoldRow, OtpRow, Reader, RecordKey, RecordRow,
    RequestRow, RequestState, StaffRow, StateRows, StoreError, SubjectKey, SubjectRow,
    SubjectState, Unit,
};

use super::apply::append;
use super::read::TxReader;
use super::rows::*;
use super::{RECORD_ID_BLOCK, SqliteStore, backend};

impl crate::Store for SqliteStore {
    fn read_commit(
        &self,
        work: &mut dyn FnMut(&dyn Reader) -> Result<Unit, StoreError>,
    ) -> Result<Vec<Entry>, StoreError> {
        self.write(|tx, head| {
            let unit = work(&TxReader(tx))?;
            append(tx, head, unit)
        })
    }

    /// One transaction for every unit, each in a savepoint: a unit that fails rolls back
    /// alone; if the commit fails, every unit fails.
    fn commit_each(&self, units: Vec<Unit>) -> Vec<Result<Vec<Entry>, StoreError>> {
        let n = units.len();
        let results = self
            .write(|tx, mut at| {
                let mut results = Vec::with_capacity(n);
                for unit in units {
                    tx.execute_batch("SAVEPOINT unit").map_err(backend)?;
                    match append(tx, at, unit) {
                        Ok((end, entries)) => {
                            at = end;
                            results.push(Ok(entries));
                        }
                        Err(e) => {
                            tx.execute_batch("ROLLBACK TO unit").map_err(backend)?;
                            results.push(Err(e));
                        }
                    }
                    tx.execute_batch("RELEASE unit").map_err(backend)?;
                }
                Ok((at, results))
            })
            .unwrap_or_else(|e| vec![Err(e); n]);
        self.space.observe_each(&results);
        results
    }

    fn out_of_space(&self) -> bool {
        self.space.full()
    }

    fn next_record_ids(&self, n: usize) -> Result<i64, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let n = i64::try_from(n).map_err(|_| StoreError::Backend("record ids exhausted".into()))?;
        let fits = inner
            .next_record
            .checked_add(n)
            .is_some_and(|end| end <= inner.record_ceiling);
        if !fits {
            // Reserve a new block past whatever any process has reserved, in one transaction.
            let tx = inner
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let stored: i64 = tx
                .query_row(
                    "SELECT COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'record_id_ceiling'), 1)",
                    [],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            let start = stored.max(inner.next_record);
            let ceiling = start
                .checked_add(n)
                .and_then(|end| end.checked_add(RECORD_ID_BLOCK))
                .ok_or_else(|| StoreError::Backend("record ids exhausted".into()))?;
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('record_id_ceiling', ?1)",
                params![ceiling.to_string()],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            inner.next_record = start;
            inner.record_ceiling = ceiling;
        }
        let first = inner.next_record;
        inner.next_record = first + n;
        Ok(first)
    }

    fn subject(&self, id: &SubjectKey) -> Result<Option<SubjectRow>, StoreError> {
        let row = self.row(
            "SELECT state, created_ms, closed_ms, tag FROM subjects WHERE id = ?1",
            params![&id[..]],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            },
        )?;
        row.map(|(state, created_ms, closed_ms, tag)| {
            Ok(SubjectRow {
                id: *id,
                state: SubjectState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt("unknown subject state".into()))?,
                created_ms,
                closed_ms,
                tag,
            })
        })
        .transpose()
    }

    fn find_by_index(&self, digest: &[u8; 16]) -> Result<Vec<SubjectKey>, StoreError> {
        self.rows(
            "SELECT DISTINCT subject FROM lookup WHERE digest = ?1",
            params![&digest[..]],
            |r| key16(r.get(0)?),
        )
    }

    fn records(&self, subject: &SubjectKey) -> Result<Vec<RecordRow>, StoreError> {
        self.rows(
            "SELECT id, subject, category, feature, source, collected_ms, sealed
             FROM records WHERE subject = ?1 ORDER BY id",
            params![&subject[..]],
            record_row,
        )
    }

    fn consents_in_force(&self, subject: &SubjectKey) -> Result<Vec<ConsentRow>, StoreError> {
        self.rows(
            "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq, tag
             FROM consent_current WHERE subject = ?1 ORDER BY target",
            params![&subject[..]],
            consent_row,
        )
    }

    fn consent_history(&self, subject: &SubjectKey) -> Result<Vec<ConsentRow>, StoreError> {
        self.rows(
            "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq, tag
             FROM consent_events WHERE subject = ?1 ORDER BY id",
            params![&subject[..]],
            consent_row,
        )
    }

    fn disclosures(&self, subject: &SubjectKey) -> Result<Vec<DisclosureRow>, StoreError> {
        self.rows(
            "SELECT subject, recipient, categories, purpose, legal_basis, at_ms, audit_seq
             FROM disclosures WHERE subject = ?1 ORDER BY id",
            params![&subject[..]],
            |r| {
                Ok(DisclosureRow {
                    subject: key16(r.get(0)?)?,
                    recipient: r.get(1)?,
                    categories: r.get(2)?,
                    purpose: r.get(3)?,
                    legal_basis: r.get(4)?,
                    at_ms: r.get(5)?,
                    audit_seq: r.get(6)?,
                })
            },
        )
    }

    fn certificate(&self, subject: &SubjectKey) -> Result<Option<String>, StoreError> {
        self.row(
            "SELECT document FROM certificates WHERE subject = ?1",
            params![&subject[..]],
            |r| r.get(0),
        )
    }

    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let mut inner = self.lock();
        let head = chain_head(&inner.conn)?;
        inner.head = head;
        Ok(head)
    }

    fn audit_scan(
        &self,
        from_seq: u64,
        visit: &mut dyn FnMut(RawEntry<'_>) -> bool,
    ) -> Result<(), StoreError> {
        let inner = self.lock();
        let mut st = inner
            .conn
            .prepare_cached("SELECT seq, entry, hash FROM audit WHERE seq >= ?1 ORDER BY seq")
            .map_err(backend)?;
        let rows = st.query(params![from_seq]).map_err(backend)?;
        scan_rows(rows, visit)
    }

    /// On a read-only connection opened for the scan: it reads a snapshot of its own beside
    /// the writer (WAL), so neither the writer nor another scan waits on it.
    fn audit_scan_range(
        &self,
        from_seq: u64,
        to_seq: u64,
        visit: &mut dyn FnMut(RawEntry<'_>) -> bool,
    ) -> Result<(), StoreError> {
        // Seqs are positive i64s: a range past them holds nothing.
        let Ok(from) = i64::try_from(from_seq) else {
            return Ok(());
        };
        let conn = self.reader()?;
        let mut st = conn
            .prepare(
                "SELECT seq, entry, hash FROM audit WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
            )
            .map_err(backend)?;
        let to = i64::try_from(to_seq).unwrap_or(i64::MAX);
        let rows = st.query(params![from, to]).map_err(backend)?;
        scan_rows(rows, visit)
    }

    fn claim_outbox(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<crate::OutboxRow>, StoreError> {
        // One statement, so one writer at a time claims: no message is claimed twice.
        let rows = self.rows(
            &format!(
                "UPDATE outbox SET lease_ms = ?2 WHERE id IN (
                   SELECT id FROM outbox WHERE state = 'pending' AND next_ms <= ?1 AND lease_ms <= ?1
                   ORDER BY next_ms, id LIMIT ?3)
                 RETURNING {OUTBOX_COLUMNS}"
            ),
            params![now_ms, lease_until_ms, i64::try_from(limit).unwrap_or(i64::MAX)],
            outbox_row,
        )?;
        let mut rows = rows;
        rows.sort_by(|a, b| (a.next_ms, &a.id).cmp(&(b.next_ms, &b.id)));
        Ok(rows)
    }

    fn settle_outbox(&self, id: &str, outcome: &crate::Delivery) -> Result<(), StoreError> {
        let inner = self.lock();
        let done = match outcome {
            crate::Delivery::Delivered { at_ms } => inner
                .conn
                .prepare_cached(
                    "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, lease_ms = 0,
                     updated_ms = ?2, last_error = '' WHERE id = ?1",
                )
                .and_then(|mut st| st.execute(params![id, at_ms])),
            crate::Delivery::Failed {
                at_ms,
                next_ms,
                dead,
                error,
            } => inner
                .conn
                .prepare_cached(
                    "UPDATE outbox SET state = ?3, attempts = attempts + 1, next_ms = ?4,
                     lease_ms = 0, updated_ms = ?2, last_error = ?5 WHERE id = ?1",
                )
                .and_then(|mut st| {
                    let state = if *dead { "dead" } else { "pending" };
                    st.execute(params![id, at_ms, state, next_ms, error])
                }),
        };
        done.map(|_| ()).map_err(backend)
    }

    fn outbox(
        &self,
        state: Option<crate::OutboxState>,
        limit: usize,
    ) -> Result<Vec<crate::OutboxRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match state {
            Some(s) => self.rows(
                &format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = ?1
                     ORDER BY created_ms DESC, id DESC LIMIT ?2"
                ),
                params![s.as_str(), limit],
                outbox_row,
            ),
            None => self.rows(
                &format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY created_ms DESC, id DESC LIMIT ?1"
                ),
                params![limit],
                outbox_row,
            ),
        }
    }

    fn message(&self, id: &str) -> Result<Option<crate::OutboxRow>, StoreError> {
        self.row(
            &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?1"),
            params![id],
            outbox_row,
        )
    }

    fn subject_language(&self, subject: &SubjectKey) -> Result<Option<String>, StoreError> {
        self.row(
            "SELECT language FROM subject_languages WHERE subject = ?1",
            params![&subject[..]],
            |r| r.get(0),
        )
    }

    fn policy_versions(&self) -> Result<Vec<crate::PolicyVersionRow>, StoreError> {
        self.rows(
            "SELECT version, serial, digest, text, effective_ms, published_ms, published_by, changes
             FROM policy_versions ORDER BY serial",
            [],
            |r| {
                Ok(crate::PolicyVersionRow {
                    version: r.get(0)?,
                    serial: r.get(1)?,
                    digest: r.get(2)?,
                    text: r.get(3)?,
                    effective_ms: r.get(4)?,
                    published_ms: r.get(5)?,
                    published_by: r.get(6)?,
                    changes: r.get(7)?,
                })
            },
        )
    }

    fn policy_version_heads(&self) -> Result<Vec<(i64, String)>, StoreError> {
        self.rows(
            "SELECT serial, digest FROM policy_versions ORDER BY serial",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn request_systems(
        &self,
        subject: &SubjectKey,
        request: &str,
    ) -> Result<Vec<crate::RequestSystemRow>, StoreError> {
        let subject = *subject;
        self.rows(
            "SELECT request, system, state, attempts, next_ms, reason, sealed_plan, result,
                    updated_ms
             FROM request_systems WHERE subject = ?1 AND request = ?2 ORDER BY system",
            params![&subject[..], request],
            move |r| {
                Ok(crate::RequestSystemRow {
                    subject,
                    request: r.get(0)?,
                    system: r.get(1)?,
                    state: r.get(2)?,
                    attempts: r.get(3)?,
                    next_ms: r.get(4)?,
                    reason: r.get(5)?,
                    sealed_plan: r.get(6)?,
                    result: r.get(7)?,
                    updated_ms: r.get(8)?,
                })
            },
        )
    }

    fn systems_due(&self, before_ms: i64) -> Result<Vec<(SubjectKey, String)>, StoreError> {
        self.rows(
            "SELECT DISTINCT subject, request FROM request_systems
             WHERE state IN ('waiting', 'planned', 'asked') AND next_ms <= ?1 ORDER BY subject, request",
            params![before_ms],
            |r| Ok((key16(r.get(0)?)?, r.get(1)?)),
        )
    }

    fn request_steps(
        &self,
        subject: &SubjectKey,
        request: &str,
    ) -> Result<Vec<crate::RequestStepRow>, StoreError> {
        let subject = *subject;
        self.rows(
            "SELECT request, state, at_ms, actor FROM request_steps
             WHERE subject = ?1 AND request = ?2 ORDER BY at_ms",
            params![&subject[..], request],
            move |r| {
                let state: String = r.get(1)?;
                Ok(crate::RequestStepRow {
                    subject,
                    request: r.get(0)?,
                    state: crate::RequestState::parse(&state).ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Text,
                            "unknown request state".into(),
                        )
                    })?,
                    at_ms: r.get(2)?,
                    actor: r.get(3)?,
                })
            },
        )
    }

    fn links(&self, subject: &SubjectKey) -> Result<Vec<crate::LinkRow>, StoreError> {
        self.rows(
            "SELECT other, kind, linked_ms FROM subject_links WHERE subject = ?1
             ORDER BY linked_ms, other",
            params![&subject[..]],
            |r| {
                Ok(crate::LinkRow {
                    other: key16(r.get(0)?)?,
                    kind: r.get(1)?,
                    linked_ms: r.get(2)?,
                })
            },
        )
    }

    fn policy_events(
        &self,
        subject: &SubjectKey,
    ) -> Result<Vec<crate::PolicyEventRow>, StoreError> {
        let subject = *subject;
        self.rows(
            "SELECT version, event, how, at_ms FROM policy_events WHERE subject = ?1
             ORDER BY at_ms, version, event",
            params![&subject[..]],
            move |r| {
                Ok(crate::PolicyEventRow {
                    subject,
                    version: r.get(0)?,
                    event: r.get(1)?,
                    how: r.get(2)?,
                    at_ms: r.get(3)?,
                })
            },
        )
    }

    fn policy_event_counts(&self, version: &str) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.rows(
            "SELECT event, how, COUNT(*) FROM policy_events WHERE version = ?1
             GROUP BY event, how ORDER BY event, how",
            params![version],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?.max(0) as u64)),
        )
    }

    fn matching_records(
        &self,
        category: &str,
        features: &[&str],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SubjectKey>, StoreError> {
        // Without features the index on (category, collected_ms) answers alone; a feature
        // condition makes every match read its row.
        let inner = self.lock();
        let (sql, features) = if features.is_empty() {
            (
                // ?2 (the features) is bound, and not used.
                "SELECT DISTINCT subject FROM records
                 WHERE category = ?1 AND collected_ms BETWEEN ?3 AND ?4",
                String::new(),
            )
        } else {
            (
                "SELECT DISTINCT subject FROM records
                 WHERE category = ?1 AND collected_ms BETWEEN ?3 AND ?4
                   AND feature IN (SELECT value FROM json_each(?2))",
                serde_json::to_string(features).unwrap_or_else(|_| "[]".into()),
            )
        };
        let mut st = inner.conn.prepare_cached(sql).map_err(backend)?;
        let mut rows = st
            .query(params![category, features, from_ms, to_ms])
            .map_err(backend)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(backend)? {
            let key = r
                .get_ref(0)
                .map_err(backend)?
                .as_blob()
                .map_err(|_| StoreError::Corrupt("a subject key is not a blob".into()))?;
            out.push(
                key.try_into()
                    .map_err(|_| StoreError::Corrupt("a subject key is not 16 bytes".into()))?,
            );
        }
        Ok(out)
    }

    fn cases(&self, kind: &str) -> Result<Vec<crate::CaseRow>, StoreError> {
        self.rows(
            "SELECT c.id, c.revision, c.kind, c.at_ms, c.doc FROM cases c
             WHERE c.kind = ?1 AND c.revision = (SELECT MAX(revision) FROM cases WHERE id = c.id)
             ORDER BY c.id",
            params![kind],
            case_row,
        )
    }

    fn case(&self, id: &str) -> Result<Option<crate::CaseRow>, StoreError> {
        self.row(
            "SELECT id, revision, kind, at_ms, doc FROM cases WHERE id = ?1
             ORDER BY revision DESC LIMIT 1",
            params![id],
            case_row,
        )
    }

    fn case_chunk(
        &self,
        id: &str,
        version: i64,
        chunk: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.row(
            "SELECT subjects FROM case_sets WHERE id = ?1 AND version = ?2 AND chunk = ?3",
            params![id, version, chunk],
            |r| r.get(0),
        )
    }

    fn message_counts(&self, prefix: &str) -> Result<Vec<(crate::OutboxState, u64)>, StoreError> {
        let counts: Vec<(String, i64)> = self.rows(
            "SELECT state, COUNT(*) FROM outbox WHERE id >= ?1 AND id < ?1 || char(1114111)
             GROUP BY state ORDER BY state",
            params![prefix],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        counts
            .into_iter()
            .map(|(s, n)| {
                crate::OutboxState::parse(&s)
                    .map(|s| (s, n.max(0) as u64))
                    .ok_or_else(|| StoreError::Corrupt("a message's state is unknown".into()))
            })
            .collect()
    }

    fn pending_messages(&self, event: &str) -> Result<Vec<crate::OutboxRow>, StoreError> {
        self.rows(
            &format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE event = ?1 AND state = 'pending'
                 ORDER BY next_ms, id"
            ),
            params![event],
            outbox_row,
        )
    }

    fn subjects_with_category(
        &self,
        category: &str,
        after: Option<&SubjectKey>,
        limit: usize,
    ) -> Result<Vec<SubjectKey>, StoreError> {
        let after: &[u8] = after.map(|k| &k[..]).unwrap_or(&[]);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let keys: Vec<Vec<u8>> = self.rows(
            "SELECT DISTINCT subject FROM records WHERE subject > ?1 AND category = ?2
             ORDER BY subject LIMIT ?3",
            params![after, category, limit],
            |r| r.get(0),
        )?;
        keys.into_iter()
            .map(|k| {
                k.try_into()
                    .map_err(|_| StoreError::Corrupt("a subject key is not 16 bytes".into()))
            })
            .collect()
    }

    fn endpoints(&self) -> Result<Vec<crate::EndpointRow>, StoreError> {
        self.rows(
            "SELECT id, url, events, secret, created_ms, disabled FROM webhook_endpoints
             ORDER BY created_ms, id",
            [],
            endpoint_row,
        )
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = self.rows(
            "SELECT seq, head, at_ms, signature FROM checkpoints ORDER BY seq",
            [],
            |r| {
                Ok((
                    r.get::<_, u64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            },
        )?;
        rows.into_iter()
            .map(|(seq, head, at_ms, sig)| {
                Ok(Checkpoint {
                    seq,
                    head: hash32(head)?,
                    at_ms,
                    signature: sig.try_into().map_err(|_| {
                        StoreError::Corrupt("checkpoint signature is not 64 bytes".into())
                    })?,
                })
            })
            .collect()
    }

    fn add_checkpoint(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        let inner = self.lock();
        inner
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO checkpoints (seq, head, at_ms, signature) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| {
                st.execute(params![cp.seq, &cp.head[..], cp.at_ms, &cp.signature[..]])
            })
            .map_err(backend)?;
        Ok(())
    }

    fn purge_queue(&self) -> Result<Vec<SubjectKey>, StoreError> {
        self.rows(
            "SELECT subject FROM purge_queue ORDER BY queued_ms",
            [],
            |r| key16(r.get(0)?),
        )
    }

    fn purge_records(&self, subject: &SubjectKey, limit: usize) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let n = tx
            .prepare_cached(
                "DELETE FROM lookup WHERE subject = ?1 AND record IN
                 (SELECT id FROM records WHERE subject = ?1 LIMIT ?2)",
            )
            .and_then(|mut st| st.execute(params![&subject[..], limit]))
            .and_then(|_| {
                tx.prepare_cached(
                    "DELETE FROM records WHERE subject = ?1 AND (category, id) IN
                     (SELECT category, id FROM records WHERE subject = ?1 LIMIT ?2)",
                )
            })
            .and_then(|mut st| st.execute(params![&subject[..], limit]))
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(n)
    }

    fn holds(&self, subject: &SubjectKey) -> Result<Vec<HoldRow>, StoreError> {
        self.rows(
            &format!("{HOLD_COLUMNS} WHERE subject = ?1 ORDER BY placed_ms, id"),
            params![&subject[..]],
            hold_row,
        )
    }

    fn active_holds(&self, now_ms: i64) -> Result<Vec<HoldRow>, StoreError> {
        self.rows(
            &format!(
                "{HOLD_COLUMNS} WHERE lifted_ms IS NULL AND until_ms > ?1 ORDER BY placed_ms, id"
            ),
            params![now_ms],
            hold_row,
        )
    }

    fn hold(&self, id: &str) -> Result<Option<HoldRow>, StoreError> {
        self.row(
            &format!("{HOLD_COLUMNS} WHERE id = ?1"),
            params![id],
            hold_row,
        )
    }

    fn requests_due(&self, before_ms: i64) -> Result<Vec<RequestRow>, StoreError> {
        let [a, b, c] = RequestState::OPEN.map(RequestState::as_str);
        self.rows(
            &format!(
                "{REQUEST_COLUMNS} WHERE due_ms <= ?1 AND state IN (?2, ?3, ?4)
                 ORDER BY due_ms, id"
            ),
            params![before_ms, a, b, c],
            request_row,
        )
    }

    fn requests_of(&self, subject: &SubjectKey) -> Result<Vec<RequestRow>, StoreError> {
        self.rows(
            &format!("{REQUEST_COLUMNS} WHERE subject = ?1 ORDER BY received_ms, id"),
            params![&subject[..]],
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
        self.rows(
            "SELECT collected_ms, subject, id FROM records
             WHERE category = ?1 AND collected_ms < ?2
               AND (collected_ms, subject, id) > (?3, ?4, ?5)
             ORDER BY collected_ms, subject, id LIMIT ?6",
            params![
                category,
                before_ms,
                at,
                &subject[..],
                id,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| {
                Ok((
                    r.get(0)?,
                    RecordKey {
                        subject: key16(r.get(1)?)?,
                        category: category.to_string(),
                        id: r.get(2)?,
                    },
                ))
            },
        )
    }

    fn closed_before(&self, before_ms: i64) -> Result<Vec<(SubjectKey, i64)>, StoreError> {
        self.rows(
            "SELECT id, closed_ms FROM subjects WHERE state = 'closed' AND closed_ms < ?1 ORDER BY closed_ms",
            params![before_ms],
            |r| Ok((key16(r.get(0)?)?, r.get(1)?)),
        )
    }

    fn otp(&self, subject: &SubjectKey) -> Result<Option<OtpRow>, StoreError> {
        self.row(
            "SELECT subject, digest, expires_ms, attempts FROM otp_codes WHERE subject = ?1",
            params![&subject[..]],
            |r| {
                let digest: Vec<u8> = r.get(1)?;
                Ok(OtpRow {
                    subject: key16(r.get(0)?)?,
                    digest: digest.try_into().unwrap_or([0; 16]),
                    expires_ms: r.get(2)?,
                    attempts: r.get(3)?,
                })
            },
        )
    }

    fn attempts(&self, key: &str) -> Result<Option<(i64, u32)>, StoreError> {
        self.row(
            "SELECT window_ms, count FROM attempts WHERE key = ?1",
            params![key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn session(&self, digest: &[u8; 32]) -> Result<Option<(SubjectKey, i64)>, StoreError> {
        self.row(
            "SELECT subject, expires_ms FROM sessions WHERE digest = ?1",
            params![&digest[..]],
            |r| Ok((key16(r.get(0)?)?, r.get(1)?)),
        )
    }

    fn staff(&self, username: &str) -> Result<Option<StaffRow>, StoreError> {
        self.row(
            "SELECT username, role, password_hash, created_ms, disabled FROM staff WHERE username = ?1",
            params![username],
            |r| {
                Ok(StaffRow {
                    username: r.get(0)?,
                    role: r.get(1)?,
                    password_hash: r.get(2)?,
                    created_ms: r.get(3)?,
                    disabled: r.get(4)?,
                })
            },
        )
    }

    fn staff_session(&self, digest: &[u8; 32]) -> Result<Option<(String, i64)>, StoreError> {
        self.row(
            "SELECT username, expires_ms FROM staff_sessions WHERE digest = ?1",
            params![&digest[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Folds the whole write-ahead log into the data file. SQLite answers "busy" without
    /// waiting while the checkpointer thread is in a pass of its own, so this tries again
    /// until a pass of its own went through (for at most 5 seconds).
    fn settle(&self) -> Result<(), StoreError> {
        let inner = self.lock();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let busy: i64 = inner
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .map_err(backend)?;
            if busy == 0 {
                return Ok(());
            }
            if std::time::Instant::now() >= until {
                return Err(StoreError::Unavailable(
                    "the write-ahead log could not be folded into the data file: still busy after 5 s".into(),
                ));
            }
            std::thread::yield_now();
        }
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        self.rows(
            "SELECT id, name, role, digest, created_ms, revoked FROM api_keys ORDER BY created_ms, id",
            [],
            api_key_row,
        )
    }

    fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        self.row(
            "SELECT id, name, role, digest, created_ms, revoked FROM api_keys WHERE id = ?1",
            params![id],
            api_key_row,
        )
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
    }

    fn structure_problems(&self) -> Result<Vec<String>, StoreError> {
        super::schema::structure_problems(&self.lock().conn, true)
    }

    fn state_rows(&self) -> Result<StateRows, StoreError> {
        let guard = self.lock();
        let conn = &guard.conn;
        let subjects = conn
            .prepare("SELECT id, state, created_ms, closed_ms, tag FROM subjects ORDER BY id")
            .and_then(|mut st| {
                st.query_map([], |r| {
                    Ok((
                        key16(r.get(0)?)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            })
            .map_err(backend)?
            .into_iter()
            .map(|(id, state, created_ms, closed_ms, tag)| {
                Ok(SubjectRow {
                    id,
                    state: SubjectState::parse(&state)
                        .ok_or_else(|| StoreError::Corrupt("unknown subject state".into()))?,
                    created_ms,
                    closed_ms,
                    tag,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let consents = conn
            .prepare(
                "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq, tag
                 FROM consent_current ORDER BY subject, target",
            )
            .and_then(|mut st| {
                st.query_map([], consent_row)
                    .and_then(|rows| rows.collect())
            })
            .map_err(backend)?;
        let holds = conn
            .prepare(&format!("{HOLD_COLUMNS} ORDER BY subject, id"))
            .and_then(|mut st| st.query_map([], hold_row).and_then(|rows| rows.collect()))
            .map_err(backend)?;
        Ok(StateRows {
            subjects,
            consents,
            holds,
        })
    }
}

/// Hands each `(seq, entry, hash)` row to `visit` until it returns false.
fn scan_rows(
    mut rows: rusqlite::Rows<'_>,
    visit: &mut dyn FnMut(RawEntry<'_>) -> bool,
) -> Result<(), StoreError> {
    while let Some(r) = rows.next().map_err(backend)? {
        // A seq that is not a positive integer is passed as 0: the verifier names it.
        let seq = match r.get_ref(0) {
            Ok(ValueRef::Integer(n)) => u64::try_from(n).unwrap_or(0),
            _ => 0,
        };
        let blob = |i: usize| match r.get_ref(i) {
            Ok(ValueRef::Blob(b)) => b,
            _ => &[],
        };
        if !visit(RawEntry {
            seq,
            bytes: blob(1),
            hash: blob(2),
        }) {
            break;
        }
    }
    Ok(())
}
