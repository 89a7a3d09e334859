//! [`crate::Store`] on PostgreSQL: every query the domain makes.

use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use steward_audit::{Checkpoint, Entry, GENESIS, RawEntry};
use tokio_postgres::types::ToSql;

use crate::{
    ApiKeyRow, ConsentRow, DisclosureRow, HoldRow, OtpRow, Reader, RecordKey, RecordRow,
    RequestRow, RequestState, StaffRow, StoreError, SubjectKey, SubjectRow, Unit,
};

use super::*;

impl crate::Store for PgStore {
    fn read_commit(
        &self,
        work: &mut dyn FnMut(&dyn Reader) -> Result<Unit, StoreError>,
    ) -> Result<Vec<Entry>, StoreError> {
        self.arriving.fetch_add(1, Ordering::AcqRel);
        let mut w = self.lock();
        self.arriving.fetch_sub(1, Ordering::AcqRel);
        self.begin(&mut w)?;
        let Some(open) = w.open.as_mut() else {
            return Err(StoreError::Backend("no transaction is open".into()));
        };
        let epoch = open.epoch;
        let result = self.member(open, work);
        let own = usize::from(result.is_ok());
        open.members += own;
        let lost = matches!(result, Err(StoreError::Unavailable(_)));
        let outcome = self.conclude(w, epoch, own, lost);
        let result = match (result, outcome) {
            (Ok(entries), Ok(())) => Ok(entries),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        };
        self.space.observe(&result);
        result
    }

    fn commit_each(&self, units: Vec<Unit>) -> Vec<Result<Vec<Entry>, StoreError>> {
        if units.is_empty() {
            return Vec::new();
        }
        self.arriving.fetch_add(1, Ordering::AcqRel);
        let mut w = self.lock();
        self.arriving.fetch_sub(1, Ordering::AcqRel);
        if let Err(e) = self.begin(&mut w) {
            return units.iter().map(|_| Err(e.clone())).collect();
        }
        let Some(open) = w.open.as_mut() else {
            let e = StoreError::Backend("no transaction is open".into());
            return units.iter().map(|_| Err(e.clone())).collect();
        };
        let epoch = open.epoch;
        let results = self.members(open, &units);
        let own = results.iter().filter(|r| r.is_ok()).count();
        open.members += own;
        let lost = results
            .iter()
            .any(|r| matches!(r, Err(StoreError::Unavailable(_))));
        let results: Vec<_> = match self.conclude(w, epoch, own, lost) {
            Ok(()) => results,
            Err(e) => results.into_iter().map(|r| r.and(Err(e.clone()))).collect(),
        };
        self.space.observe_each(&results);
        results
    }

    fn out_of_space(&self) -> bool {
        self.space.full()
    }

    fn next_record_ids(&self, n: usize) -> Result<i64, StoreError> {
        let n = i64::try_from(n).map_err(|_| StoreError::Backend("record ids exhausted".into()))?;
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        let (next, ceiling) = *ids;
        if next.checked_add(n).is_some_and(|end| end <= ceiling) && next > 0 {
            *ids = (next + n, ceiling);
            return Ok(next);
        }
        let reserve = n
            .checked_add(RECORD_ID_BLOCK)
            .ok_or_else(|| StoreError::Backend("record ids exhausted".into()))?;
        let row = self.row(
            "UPDATE counters SET value = value + $1 WHERE name = 'record_id' RETURNING value",
            &[&reserve],
            |r| col::<i64>(r, 0),
        )?;
        let ceiling = row.ok_or_else(|| corrupt("the record id counter is missing"))?;
        let start = ceiling - reserve;
        *ids = (start + n, ceiling);
        Ok(start)
    }

    fn subject(&self, id: &SubjectKey) -> Result<Option<SubjectRow>, StoreError> {
        self.pool.run(async |c| subject_row(c, id).await)
    }

    fn subjects(&self, ids: &[SubjectKey]) -> Result<Vec<Option<SubjectRow>>, StoreError> {
        // Pipelined on one connection: one round trip.
        self.pool.run(async |c| {
            futures_util::future::join_all(ids.iter().map(|id| subject_row(c, id)))
                .await
                .into_iter()
                .collect()
        })
    }

    fn find_by_index(&self, digest: &[u8; 16]) -> Result<Vec<SubjectKey>, StoreError> {
        self.rows(
            "SELECT DISTINCT subject FROM lookup WHERE digest = $1 ORDER BY subject",
            &[&&digest[..]],
            |r| key16(col(r, 0)?),
        )
    }

    fn records(&self, subject: &SubjectKey) -> Result<Vec<RecordRow>, StoreError> {
        self.pool.run(async |c| records_of(c, subject).await)
    }

    fn consents_in_force(&self, subject: &SubjectKey) -> Result<Vec<ConsentRow>, StoreError> {
        self.pool.run(async |c| consents_in_force(c, subject).await)
    }

    fn consent_history(&self, subject: &SubjectKey) -> Result<Vec<ConsentRow>, StoreError> {
        self.pool.run(async |c| consent_history(c, subject).await)
    }

    fn disclosures(&self, subject: &SubjectKey) -> Result<Vec<DisclosureRow>, StoreError> {
        self.pool.run(async |c| disclosures_of(c, subject).await)
    }

    fn remote(&self) -> bool {
        true
    }

    /// The five queries go out together on one connection: one round trip.
    fn subject_file(&self, id: &SubjectKey) -> Result<crate::SubjectFile, StoreError> {
        self.pool.run(async |c| {
            let (subject, records, consents, history, disclosures) = futures_util::future::join5(
                subject_row(c, id),
                records_of(c, id),
                consents_in_force(c, id),
                consent_history(c, id),
                disclosures_of(c, id),
            )
            .await;
            Ok(crate::SubjectFile {
                subject: subject?,
                records: records?,
                consents: consents?,
                history: history?,
                disclosures: disclosures?,
            })
        })
    }

    fn certificate(&self, subject: &SubjectKey) -> Result<Option<String>, StoreError> {
        self.row(
            "SELECT document FROM certificates WHERE subject = $1",
            &[&&subject[..]],
            |r| col(r, 0),
        )
    }

    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let row = self.row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            &[],
            |r| Ok((seq_in(col(r, 0)?)?, hash32(col(r, 1)?)?)),
        )?;
        Ok(row.unwrap_or((0, GENESIS)))
    }

    fn audit_scan(
        &self,
        from_seq: u64,
        visit: &mut dyn FnMut(RawEntry<'_>) -> bool,
    ) -> Result<(), StoreError> {
        let from = seq_out(from_seq)?;
        self.pool.run(async |c| {
            let st = c
                .prepare("SELECT seq, entry, hash FROM audit WHERE seq >= $1 ORDER BY seq")
                .await?;
            let params: [&(dyn ToSql + Sync); 1] = [&from];
            let rows = c.client.query_raw(&st, params).await.map_err(pg)?;
            let mut rows = std::pin::pin!(rows);
            while let Some(row) = rows.next().await {
                let row = row.map_err(pg)?;
                let seq = seq_in(col(&row, 0)?)?;
                let bytes: &[u8] = row.try_get(1).unwrap_or(&[]);
                let hash: &[u8] = row.try_get(2).unwrap_or(&[]);
                if !visit(RawEntry { seq, bytes, hash }) {
                    break;
                }
            }
            Ok(())
        })
    }

    fn claim_outbox(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<crate::OutboxRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // SKIP LOCKED: dispatchers on several servers take different messages, never waiting
        // on one another; the lease keeps a message claimed once this statement commits.
        let mut rows = self.rows(
            concat!(
                "UPDATE outbox SET lease_ms = $2 WHERE id IN (
                   SELECT id FROM outbox WHERE state = 'pending' AND next_ms <= $1 AND lease_ms <= $1
                   ORDER BY next_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING ",
                super::rows::outbox_columns!()
            ),
            &[&now_ms, &lease_until_ms, &limit],
            super::rows::outbox_row,
        )?;
        rows.sort_by(|a, b| (a.next_ms, &a.id).cmp(&(b.next_ms, &b.id)));
        Ok(rows)
    }

    fn settle_outbox(&self, id: &str, outcome: &crate::Delivery) -> Result<(), StoreError> {
        self.pool.run(async |c| match outcome {
            crate::Delivery::Delivered { at_ms } => c
                .execute(
                    "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, lease_ms = 0,
                     updated_ms = $2, last_error = '' WHERE id = $1",
                    &[&id, at_ms],
                )
                .await
                .map(|_| ()),
            crate::Delivery::Failed {
                at_ms,
                next_ms,
                dead,
                error,
            } => {
                let state = if *dead { "dead" } else { "pending" };
                c.execute(
                    "UPDATE outbox SET state = $3, attempts = attempts + 1, next_ms = $4,
                     lease_ms = 0, updated_ms = $2, last_error = $5 WHERE id = $1",
                    &[&id, at_ms, &state, next_ms, error],
                )
                .await
                .map(|_| ())
            }
        })
    }

    fn settle_outbox_many(&self, outcomes: &[(String, crate::Delivery)]) -> Result<(), StoreError> {
        // The deliveries in one statement; failures (rarer) one by one.
        let (mut ids, mut times) = (Vec::new(), Vec::new());
        for (id, outcome) in outcomes {
            match outcome {
                crate::Delivery::Delivered { at_ms } => {
                    ids.push(id.as_str());
                    times.push(*at_ms);
                }
                failed => self.settle_outbox(id, failed)?,
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        self.pool.run(async |c| {
            c.execute(
                "UPDATE outbox AS o SET state = 'delivered', attempts = o.attempts + 1,
                 lease_ms = 0, updated_ms = u.at_ms, last_error = ''
                 FROM UNNEST($1::text[], $2::bigint[]) AS u(id, at_ms) WHERE o.id = u.id",
                &[&ids, &times],
            )
            .await
            .map(|_| ())
        })
    }

    fn outbox(
        &self,
        state: Option<crate::OutboxState>,
        limit: usize,
    ) -> Result<Vec<crate::OutboxRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match state {
            Some(s) => self.rows(
                concat!(
                    "SELECT ",
                    super::rows::outbox_columns!(),
                    " FROM outbox WHERE state = $1 ORDER BY created_ms DESC, id DESC LIMIT $2"
                ),
                &[&s.as_str(), &limit],
                super::rows::outbox_row,
            ),
            None => self.rows(
                concat!(
                    "SELECT ",
                    super::rows::outbox_columns!(),
                    " FROM outbox ORDER BY created_ms DESC, id DESC LIMIT $1"
                ),
                &[&limit],
                super::rows::outbox_row,
            ),
        }
    }

    fn message(&self, id: &str) -> Result<Option<crate::OutboxRow>, StoreError> {
        self.row(
            concat!(
                "SELECT ",
                super::rows::outbox_columns!(),
                " FROM outbox WHERE id = $1"
            ),
            &[&id],
            super::rows::outbox_row,
        )
    }

    fn subject_language(&self, subject: &SubjectKey) -> Result<Option<String>, StoreError> {
        self.row(
            "SELECT language FROM subject_languages WHERE subject = $1",
            &[&&subject[..]],
            |r| col(r, 0),
        )
    }

    fn policy_versions(&self) -> Result<Vec<crate::PolicyVersionRow>, StoreError> {
        self.rows(
            "SELECT version, serial, digest, text, effective_ms, published_ms, published_by, changes
             FROM policy_versions ORDER BY serial",
            &[],
            |r| {
                Ok(crate::PolicyVersionRow {
                    version: col(r, 0)?,
                    serial: col(r, 1)?,
                    digest: col(r, 2)?,
                    text: col(r, 3)?,
                    effective_ms: col(r, 4)?,
                    published_ms: col(r, 5)?,
                    published_by: col(r, 6)?,
                    changes: col(r, 7)?,
                })
            },
        )
    }

    fn policy_version_heads(&self) -> Result<Vec<(i64, String)>, StoreError> {
        self.rows(
            "SELECT serial, digest FROM policy_versions ORDER BY serial",
            &[],
            |r| Ok((col(r, 0)?, col(r, 1)?)),
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
             FROM request_systems WHERE subject = $1 AND request = $2 ORDER BY system",
            &[&&subject[..], &request],
            move |r| {
                Ok(crate::RequestSystemRow {
                    subject,
                    request: col(r, 0)?,
                    system: col(r, 1)?,
                    state: col(r, 2)?,
                    attempts: u32::try_from(col::<i64>(r, 3)?).unwrap_or(u32::MAX),
                    next_ms: col(r, 4)?,
                    reason: col(r, 5)?,
                    sealed_plan: col(r, 6)?,
                    result: col(r, 7)?,
                    updated_ms: col(r, 8)?,
                })
            },
        )
    }

    fn systems_due(&self, before_ms: i64) -> Result<Vec<(SubjectKey, String)>, StoreError> {
        self.rows(
            "SELECT DISTINCT subject, request FROM request_systems
             WHERE state IN ('waiting', 'planned', 'asked') AND next_ms <= $1 ORDER BY subject, request",
            &[&before_ms],
            |r| Ok((key16(col(r, 0)?)?, col(r, 1)?)),
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
             WHERE subject = $1 AND request = $2 ORDER BY at_ms",
            &[&&subject[..], &request],
            move |r| {
                Ok(crate::RequestStepRow {
                    subject,
                    request: col(r, 0)?,
                    state: crate::RequestState::parse(col(r, 1)?)
                        .ok_or_else(|| super::corrupt("unknown request state"))?,
                    at_ms: col(r, 2)?,
                    actor: col(r, 3)?,
                })
            },
        )
    }

    fn links(&self, subject: &SubjectKey) -> Result<Vec<crate::LinkRow>, StoreError> {
        self.rows(
            "SELECT other, kind, linked_ms FROM subject_links WHERE subject = $1
             ORDER BY linked_ms, other",
            &[&&subject[..]],
            |r| {
                Ok(crate::LinkRow {
                    other: key16(col(r, 0)?)?,
                    kind: col(r, 1)?,
                    linked_ms: col(r, 2)?,
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
            "SELECT version, event, how, at_ms FROM policy_events WHERE subject = $1
             ORDER BY at_ms, version, event",
            &[&&subject[..]],
            move |r| {
                Ok(crate::PolicyEventRow {
                    subject,
                    version: col(r, 0)?,
                    event: col(r, 1)?,
                    how: col(r, 2)?,
                    at_ms: col(r, 3)?,
                })
            },
        )
    }

    fn policy_event_counts(&self, version: &str) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.rows(
            "SELECT event, how, COUNT(*) FROM policy_events WHERE version = $1
             GROUP BY event, how ORDER BY event, how",
            &[&version],
            |r| Ok((col(r, 0)?, col(r, 1)?, col::<i64>(r, 2)?.max(0) as u64)),
        )
    }

    fn matching_records(
        &self,
        category: &str,
        features: &[&str],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SubjectKey>, StoreError> {
        // Without features the index on (category, collected_ms, subject, id) answers alone.
        if features.is_empty() {
            return self.rows(
                "SELECT DISTINCT subject FROM records
                 WHERE category = $1 AND collected_ms BETWEEN $2 AND $3",
                &[&category, &from_ms, &to_ms],
                |r| key16(col(r, 0)?),
            );
        }
        let features: Vec<&str> = features.to_vec();
        self.rows(
            "SELECT DISTINCT subject FROM records
             WHERE category = $1 AND collected_ms BETWEEN $3 AND $4 AND feature = ANY($2)",
            &[&category, &features, &from_ms, &to_ms],
            |r| key16(col(r, 0)?),
        )
    }

    fn cases(&self, kind: &str) -> Result<Vec<crate::CaseRow>, StoreError> {
        self.rows(
            "SELECT DISTINCT ON (id) id, revision, kind, at_ms, doc FROM cases
             WHERE kind = $1 ORDER BY id, revision DESC",
            &[&kind],
            case_row,
        )
    }

    fn case(&self, id: &str) -> Result<Option<crate::CaseRow>, StoreError> {
        self.row(
            "SELECT id, revision, kind, at_ms, doc FROM cases WHERE id = $1
             ORDER BY revision DESC LIMIT 1",
            &[&id],
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
            "SELECT subjects FROM case_sets WHERE id = $1 AND version = $2 AND chunk = $3",
            &[&id, &version, &chunk],
            |r| col(r, 0),
        )
    }

    fn message_counts(&self, prefix: &str) -> Result<Vec<(crate::OutboxState, u64)>, StoreError> {
        self.rows(
            "SELECT state, COUNT(*) FROM outbox WHERE starts_with(id, $1)
             GROUP BY state ORDER BY state",
            &[&prefix],
            |r| {
                let state: String = col(r, 0)?;
                let n: i64 = col(r, 1)?;
                crate::OutboxState::parse(&state)
                    .map(|s| (s, n.max(0) as u64))
                    .ok_or_else(|| corrupt("a message's state is unknown"))
            },
        )
    }

    fn pending_messages(&self, event: &str) -> Result<Vec<crate::OutboxRow>, StoreError> {
        self.rows(
            concat!(
                "SELECT ",
                super::rows::outbox_columns!(),
                " FROM outbox WHERE event = $1 AND state = 'pending' ORDER BY next_ms, id"
            ),
            &[&event],
            super::rows::outbox_row,
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
        self.rows(
            "SELECT DISTINCT subject FROM records WHERE subject > $1 AND category = $2
             ORDER BY subject LIMIT $3",
            &[&after, &category, &limit],
            |r| key16(col(r, 0)?),
        )
    }

    fn endpoints(&self) -> Result<Vec<crate::EndpointRow>, StoreError> {
        self.rows(
            "SELECT id, url, events, secret, created_ms, disabled FROM webhook_endpoints
             ORDER BY created_ms, id",
            &[],
            super::rows::endpoint_row,
        )
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.rows(
            "SELECT seq, head, at_ms, signature FROM checkpoints ORDER BY seq",
            &[],
            |r| {
                Ok(Checkpoint {
                    seq: seq_in(col(r, 0)?)?,
                    head: hash32(col(r, 1)?)?,
                    at_ms: col(r, 2)?,
                    signature: col::<&[u8]>(r, 3)?
                        .try_into()
                        .map_err(|_| corrupt("checkpoint signature is not 64 bytes"))?,
                })
            },
        )
    }

    fn add_checkpoint(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        let seq = seq_out(cp.seq)?;
        self.pool.run(async |c| {
            c.execute(
                "INSERT INTO checkpoints (seq, head, at_ms, signature) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (seq) DO UPDATE SET head = EXCLUDED.head, at_ms = EXCLUDED.at_ms,
                 signature = EXCLUDED.signature",
                &[&seq, &&cp.head[..], &cp.at_ms, &&cp.signature[..]],
            )
            .await
        })?;
        Ok(())
    }

    fn purge_queue(&self) -> Result<Vec<SubjectKey>, StoreError> {
        self.rows(
            "SELECT subject FROM purge_queue ORDER BY queued_ms, subject",
            &[],
            |r| key16(col(r, 0)?),
        )
    }

    fn purge_records(&self, subject: &SubjectKey, limit: usize) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // One statement, so one transaction: the records and their index entries go together.
        let row = self.row(
            "WITH gone AS (
                 DELETE FROM records WHERE subject = $1 AND (category, id) IN
                     (SELECT category, id FROM records WHERE subject = $1 LIMIT $2)
                 RETURNING id
             ), unindexed AS (
                 DELETE FROM lookup WHERE subject = $1 AND record IN (SELECT id FROM gone)
             )
             SELECT COUNT(*) FROM gone",
            &[&&subject[..], &limit],
            |r| col::<i64>(r, 0),
        )?;
        Ok(usize::try_from(row.unwrap_or(0)).unwrap_or(0))
    }

    fn holds(&self, subject: &SubjectKey) -> Result<Vec<HoldRow>, StoreError> {
        self.rows(
            concat!(
                hold_columns!(),
                " WHERE subject = $1 ORDER BY placed_ms, id"
            ),
            &[&&subject[..]],
            hold_row,
        )
    }

    fn active_holds(&self, now_ms: i64) -> Result<Vec<HoldRow>, StoreError> {
        self.rows(
            concat!(
                hold_columns!(),
                " WHERE lifted_ms IS NULL AND until_ms > $1 ORDER BY placed_ms, id"
            ),
            &[&now_ms],
            hold_row,
        )
    }

    fn hold(&self, id: &str) -> Result<Option<HoldRow>, StoreError> {
        self.row(concat!(hold_columns!(), " WHERE id = $1"), &[&id], hold_row)
    }

    fn requests_due(&self, before_ms: i64) -> Result<Vec<RequestRow>, StoreError> {
        self.rows(
            concat!(
                request_columns!(),
                " WHERE due_ms <= $1 AND state = ANY($2) ORDER BY due_ms, id"
            ),
            &[&before_ms, &RequestState::open_words()],
            request_row,
        )
    }

    fn requests_of(&self, subject: &SubjectKey) -> Result<Vec<RequestRow>, StoreError> {
        self.rows(
            concat!(
                request_columns!(),
                " WHERE subject = $1 ORDER BY received_ms, id"
            ),
            &[&&subject[..]],
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
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.rows(
            "SELECT collected_ms, subject, id FROM records
             WHERE category = $1 AND collected_ms < $2
               AND (collected_ms, subject, id) > ($3, $4, $5)
             ORDER BY collected_ms, subject, id LIMIT $6",
            &[&category, &before_ms, &at, &&subject[..], &id, &limit],
            |r| {
                Ok((
                    col(r, 0)?,
                    RecordKey {
                        subject: key16(col(r, 1)?)?,
                        category: category.to_string(),
                        id: col(r, 2)?,
                    },
                ))
            },
        )
    }

    fn closed_before(&self, before_ms: i64) -> Result<Vec<(SubjectKey, i64)>, StoreError> {
        self.rows(
            "SELECT id, closed_ms FROM subjects WHERE state = 'closed' AND closed_ms < $1 ORDER BY closed_ms, id",
            &[&before_ms],
            |r| Ok((key16(col(r, 0)?)?, col(r, 1)?)),
        )
    }

    fn otp(&self, subject: &SubjectKey) -> Result<Option<OtpRow>, StoreError> {
        self.row(
            "SELECT digest, expires_ms, attempts FROM otp_codes WHERE subject = $1",
            &[&&subject[..]],
            |r| {
                Ok(OtpRow {
                    subject: *subject,
                    digest: col::<&[u8]>(r, 0)?
                        .try_into()
                        .map_err(|_| corrupt("a code digest is not 16 bytes"))?,
                    expires_ms: col(r, 1)?,
                    attempts: u32::try_from(col::<i64>(r, 2)?).unwrap_or(u32::MAX),
                })
            },
        )
    }

    fn attempts(&self, key: &str) -> Result<Option<(i64, u32)>, StoreError> {
        self.row(
            "SELECT window_ms, count FROM attempts WHERE key = $1",
            &[&key],
            |r| {
                Ok((
                    col(r, 0)?,
                    u32::try_from(col::<i64>(r, 1)?).unwrap_or(u32::MAX),
                ))
            },
        )
    }

    fn session(&self, digest: &[u8; 32]) -> Result<Option<(SubjectKey, i64)>, StoreError> {
        self.row(
            "SELECT subject, expires_ms FROM sessions WHERE digest = $1",
            &[&&digest[..]],
            |r| Ok((key16(col(r, 0)?)?, col(r, 1)?)),
        )
    }

    fn staff(&self, username: &str) -> Result<Option<StaffRow>, StoreError> {
        self.row(
            "SELECT username, role, password_hash, created_ms, disabled FROM staff WHERE username = $1",
            &[&username],
            |r| {
                Ok(StaffRow {
                    username: col(r, 0)?,
                    role: col(r, 1)?,
                    password_hash: col(r, 2)?,
                    created_ms: col(r, 3)?,
                    disabled: col(r, 4)?,
                })
            },
        )
    }

    fn staff_session(&self, digest: &[u8; 32]) -> Result<Option<(String, i64)>, StoreError> {
        self.row(
            "SELECT username, expires_ms FROM staff_sessions WHERE digest = $1",
            &[&&digest[..]],
            |r| Ok((col(r, 0)?, col(r, 1)?)),
        )
    }

    fn settle(&self) -> Result<(), StoreError> {
        // PostgreSQL's own checkpoints make committed data durable; nothing to fold.
        Ok(())
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        self.rows(
            "SELECT id, name, role, digest, created_ms, revoked FROM api_keys ORDER BY created_ms, id",
            &[],
            api_key_row,
        )
    }

    fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        self.row(
            "SELECT id, name, role, digest, created_ms, revoked FROM api_keys WHERE id = $1",
            &[&id],
            api_key_row,
        )
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.row("SELECT value FROM meta WHERE key = $1", &[&key], |r| {
            col(r, 0)
        })
    }

    fn structure_problems(&self) -> Result<Vec<String>, StoreError> {
        self.pool.structure_problems()
    }

    fn state_rows(&self) -> Result<crate::StateRows, StoreError> {
        let subjects = self.rows(
            "SELECT id, state, created_ms, closed_ms, tag FROM subjects ORDER BY id",
            &[],
            |r| {
                Ok(SubjectRow {
                    id: key16(col(r, 0)?)?,
                    state: crate::SubjectState::parse(col(r, 1)?)
                        .ok_or_else(|| corrupt("unknown subject state"))?,
                    created_ms: col(r, 2)?,
                    closed_ms: col(r, 3)?,
                    tag: col(r, 4)?,
                })
            },
        )?;
        let consents = self.rows(
            "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq, tag
             FROM consent_current ORDER BY subject, target",
            &[],
            consent_row,
        )?;
        let holds = self.rows(
            concat!(hold_columns!(), " ORDER BY subject, id"),
            &[],
            hold_row,
        )?;
        Ok(crate::StateRows {
            subjects,
            consents,
            holds,
        })
    }
}
