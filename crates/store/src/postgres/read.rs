//! The read path: a subject's state, one consent and records in one statement, the
//! [`Reader`] a unit of work reads through inside the shared transaction, and prefetching.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;

use tokio_postgres::Row;

use crate::{
    ConsentRow, HeldConsent, Reader, RecordRow, RequestRow, StoreError, SubjectKey, SubjectRecords,
    SubjectState,
};

use super::*;

/// Prefetched lookups of one shape: consent asked, categories asked, and whose.
pub(super) type Group<'a> = (Option<&'a str>, &'a [&'a str], Vec<&'a [u8]>);

/// A statement in flight, answering nothing but success.
pub(super) type Sent<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), StoreError>> + 'a>>;

/// What a prefetched `subject_records` call is known by.
pub(super) type Wanted = (SubjectKey, Option<String>, Vec<String>);

pub(super) fn wanted_key(
    subject: &SubjectKey,
    consent_target: Option<&str>,
    categories: &[&str],
) -> Wanted {
    (
        *subject,
        consent_target.map(str::to_string),
        categories.iter().map(|c| (*c).to_string()).collect(),
    )
}

/// Reads inside a unit of work, on the writer's connection and transaction.
pub(super) struct TxReader<'a> {
    pub(super) conn: &'a Conn,
    pub(super) savepoint: &'a Cell<bool>,
    /// Answers fetched ahead by [`Reader::prefetch`], taken by the calls they were fetched for.
    pub(super) fetched: std::cell::RefCell<HashMap<Wanted, Vec<Option<SubjectRecords>>>>,
}

impl TxReader<'_> {
    /// The unit's savepoint rides along with its first read, in the same round trip.
    pub(super) async fn ensure_savepoint(&self) -> Result<(), StoreError> {
        if self.savepoint.replace(true) {
            Ok(())
        } else {
            self.conn.simple("SAVEPOINT unit").await
        }
    }
}

impl Reader for TxReader<'_> {
    fn index_holders(&self, digest: &[u8; 16]) -> Result<Vec<SubjectKey>, StoreError> {
        block(async {
            let (sp, rows) = futures_util::future::join(
                self.ensure_savepoint(),
                super::rows::index_holders(self.conn, digest),
            )
            .await;
            sp?;
            rows
        })
    }

    fn request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        block(async {
            let (sp, row) =
                futures_util::future::join(self.ensure_savepoint(), request_by_id(self.conn, id))
                    .await;
            sp?;
            row
        })
    }

    /// Sends every query at once on the unit's connection: one round trip for the lot, one
    /// statement per shape of lookup, each a co-located read (see `citus`).
    fn prefetch(&self, wanted: &[(&SubjectKey, Option<&str>, &[&str])]) -> Result<(), StoreError> {
        if wanted.len() < 2 {
            return Ok(());
        }
        // Lookups of a subject's state alone (a collection's check) go as one statement;
        // the others are pipelined, one statement each.
        let (states, full): (Vec<_>, Vec<_>) = wanted
            .iter()
            .partition(|(_, t, c)| t.is_none() && c.is_empty());
        let ids: Vec<&[u8]> = states.iter().map(|(s, _, _)| &s[..]).collect();
        // The others, grouped by shape: one statement per (consent, categories) asked.
        let mut groups: Vec<Group<'_>> = Vec::new();
        for (s, t, c) in &full {
            match groups.iter_mut().find(|(gt, gc, _)| gt == t && gc == c) {
                Some((_, _, ids)) => ids.push(&s[..]),
                None => groups.push((*t, c, vec![&s[..]])),
            }
        }
        let (state_rows, group_answers) = block(async {
            let queries = futures_util::future::join_all(
                groups
                    .iter()
                    .map(|(t, c, ids)| subject_records_many(self.conn, ids, *t, c)),
            );
            let by_id = async {
                if ids.is_empty() {
                    Ok(Vec::new())
                } else {
                    self.conn.query(STATES_MANY, &[&ids]).await
                }
            };
            let (sp, rows, answers) =
                futures_util::future::join3(self.ensure_savepoint(), by_id, queries).await;
            sp.map(|()| (rows, answers))
        })?;
        let mut known: HashMap<SubjectKey, (SubjectState, Vec<u8>, i64)> = HashMap::new();
        for r in &state_rows? {
            let state =
                SubjectState::parse(col(r, 1)?).ok_or_else(|| corrupt("unknown subject state"))?;
            known.insert(key16(col(r, 0)?)?, (state, col(r, 2)?, col(r, 3)?));
        }
        let mut full_answers = Vec::new();
        for answer in group_answers {
            full_answers.push(answer?);
        }
        // Back into the order asked: each group's answers in its members' order.
        let mut per_group: Vec<std::collections::VecDeque<Option<SubjectRecords>>> =
            full_answers.into_iter().map(Into::into).collect();
        let mut full_answers = full.iter().map(|(_, t, c)| {
            groups
                .iter()
                .position(|(gt, gc, _)| gt == t && gc == c)
                .and_then(|g| per_group.get_mut(g))
                .and_then(|q| q.pop_front())
                .ok_or_else(|| StoreError::Backend("prefetch lost an answer".into()))
        });
        let answers: Vec<Result<Option<SubjectRecords>, StoreError>> = wanted
            .iter()
            .map(|(s, t, c)| {
                if t.is_none() && c.is_empty() {
                    Ok(known.get(*s).map(|(state, tag, created)| SubjectRecords {
                        state: *state,
                        state_tag: tag.clone(),
                        created_ms: *created,
                        consent: None,
                        records: Vec::new(),
                    }))
                } else {
                    full_answers.next().unwrap_or_else(|| {
                        Err(StoreError::Backend("prefetch lost an answer".into()))
                    })
                }
            })
            .collect();
        let mut fetched = self.fetched.borrow_mut();
        for ((s, t, c), answer) in wanted.iter().zip(answers) {
            let key = wanted_key(s, *t, c);
            fetched.entry(key).or_default().push(answer?);
        }
        Ok(())
    }

    fn subject_records(
        &self,
        subject: &SubjectKey,
        consent_target: Option<&str>,
        categories: &[&str],
    ) -> Result<Option<SubjectRecords>, StoreError> {
        if !self.fetched.borrow().is_empty() {
            let key = wanted_key(subject, consent_target, categories);
            if let Some(found) = self
                .fetched
                .borrow_mut()
                .get_mut(&key)
                .and_then(|v| v.pop())
            {
                return Ok(found);
            }
        }
        block(async {
            let (sp, rows) = futures_util::future::join(
                self.ensure_savepoint(),
                subject_records(self.conn, subject, consent_target, categories),
            )
            .await;
            sp?;
            rows
        })
    }

    fn consent(
        &self,
        subject: &SubjectKey,
        target: &str,
    ) -> Result<Option<ConsentRow>, StoreError> {
        block(async {
            let (sp, row) = futures_util::future::join(
                self.ensure_savepoint(),
                consent(self.conn, subject, target),
            )
            .await;
            sp?;
            row
        })
    }
}

/// The read path's statement for a subject's state and one consent, without records: one
/// subject, so a router query on a distributed PostgreSQL. Public so that the benchmark's raw
/// baseline sends exactly this text.
pub const SUBJECT_STATE: &str = "SELECT s.state, s.tag, c.granted, c.separate, c.at_ms, c.tag, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::bigint, NULL::bytea, s.created_ms
     FROM subjects s
     LEFT JOIN consent_current c ON c.subject = s.id AND c.target = $2
     WHERE s.id = $1";

/// The read path's statement for a subject's state, one consent and the records of one
/// category (the common read): one subject, joined on the subject key.
pub const SUBJECT_RECORDS: &str =
    "SELECT s.state, s.tag, c.granted, c.separate, c.at_ms, c.tag, r.id, r.category, r.feature, r.source, r.collected_ms, r.sealed, s.created_ms
     FROM subjects s
     LEFT JOIN consent_current c ON c.subject = s.id AND c.target = $2
     LEFT JOIN records r ON r.subject = s.id AND r.category = $3 WHERE s.id = $1 ORDER BY r.id";

pub(super) async fn subject_records(
    conn: &Conn,
    subject: &SubjectKey,
    consent_target: Option<&str>,
    categories: &[&str],
) -> Result<Option<SubjectRecords>, StoreError> {
    let key = &subject[..];
    let target = consent_target.unwrap_or("");
    macro_rules! head {
        () => {
            "SELECT s.state, s.tag, c.granted, c.separate, c.at_ms, c.tag, r.id, r.category, r.feature, r.source, r.collected_ms, r.sealed, s.created_ms
             FROM subjects s
             LEFT JOIN consent_current c ON c.subject = s.id AND c.target = $2"
        };
    }
    // Three shapes, so that the common ones plan as plain index lookups.
    let rows = match categories {
        [] => conn.query(SUBJECT_STATE, &[&key, &target]).await?,
        [one] => conn.query(SUBJECT_RECORDS, &[&key, &target, one]).await?,
        many => {
            conn.query(
                concat!(
                    head!(),
                    " LEFT JOIN records r ON r.subject = s.id AND r.category = ANY($3) WHERE s.id = $1 ORDER BY r.id"
                ),
                &[&key, &target, &many],
            )
            .await?
        }
    };
    let mut out: Option<SubjectRecords> = None;
    for r in &rows {
        let found = match &mut out {
            Some(found) => found,
            None => out.insert(head_of(r, 0, 12)?),
        };
        if let Some(record) = record_of(r, 6, subject)? {
            found.records.push(record);
        }
    }
    Ok(out)
}

/// The states of many subjects (a batch of collections' checks), by the distribution column.
pub const STATES_MANY: &str = "SELECT id, state, tag, created_ms FROM subjects WHERE id = ANY($1)";

/// [`SUBJECT_RECORDS`] for many subjects of one shape in one statement: the tables joined on the
/// subject key only and filtered by it (`= ANY`), so a distributed PostgreSQL runs the join on
/// each shard holding one of them. Public so that the benchmark's raw baseline sends exactly
/// this text.
pub const RECORDS_MANY: &str = "SELECT s.id, s.state, s.tag, c.granted, c.separate, c.at_ms, c.tag, r.id, r.category, r.feature, r.source, r.collected_ms, r.sealed, s.created_ms
     FROM subjects s
     LEFT JOIN consent_current c ON c.subject = s.id AND c.target = $2
     LEFT JOIN records r ON r.subject = s.id AND r.category = ANY($3)
     WHERE s.id = ANY($1)
     ORDER BY s.id, r.id";

/// [`subject_records`] for many subjects of one shape, in one statement; answers in the order
/// of `ids` (a subject asked twice is answered twice).
pub(super) async fn subject_records_many(
    conn: &Conn,
    ids: &[&[u8]],
    consent_target: Option<&str>,
    categories: &[&str],
) -> Result<Vec<Option<SubjectRecords>>, StoreError> {
    let target = consent_target.unwrap_or("");
    let rows = conn
        .query(RECORDS_MANY, &[&ids, &target, &categories])
        .await?;
    let mut found: HashMap<SubjectKey, SubjectRecords> = HashMap::new();
    for r in &rows {
        let subject = key16(col(r, 0)?)?;
        let entry = match found.entry(subject) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(head_of(r, 1, 13)?),
        };
        if let Some(record) = record_of(r, 7, &subject)? {
            entry.records.push(record);
        }
    }
    Ok(ids
        .iter()
        .map(|id| {
            let key: Result<SubjectKey, _> = (*id).try_into();
            key.ok().and_then(|k| found.get(&k).cloned())
        })
        .collect())
}

/// A subject's state, its tag and the consent in force, from the read statements' columns
/// `at..at + 6`: `s.state, s.tag, c.granted, c.separate, c.at_ms, c.tag`, and `s.created_ms`
/// from column `created`.
fn head_of(r: &Row, at: usize, created: usize) -> Result<SubjectRecords, StoreError> {
    let state: &str = col(r, at)?;
    let granted: Option<bool> = col(r, at + 2)?;
    let consent = match granted {
        Some(granted) => Some(HeldConsent {
            granted,
            separate: col(r, at + 3)?,
            at_ms: col(r, at + 4)?,
            tag: col(r, at + 5)?,
        }),
        None => None,
    };
    Ok(SubjectRecords {
        state: SubjectState::parse(state).ok_or_else(|| corrupt("unknown subject state"))?,
        state_tag: col(r, at + 1)?,
        created_ms: col(r, created)?,
        consent,
        records: Vec::new(),
    })
}

/// The record in the read statements' columns `at..at + 6`, if the row holds one.
fn record_of(r: &Row, at: usize, subject: &SubjectKey) -> Result<Option<RecordRow>, StoreError> {
    let id: Option<i64> = col(r, at)?;
    id.map(|id| {
        Ok(RecordRow {
            id,
            subject: *subject,
            category: col(r, at + 1)?,
            feature: col(r, at + 2)?,
            source: col(r, at + 3)?,
            collected_ms: col(r, at + 4)?,
            sealed: col(r, at + 5)?,
        })
    })
    .transpose()
}

pub(super) fn consent_row(r: &Row) -> Result<ConsentRow, StoreError> {
    Ok(ConsentRow {
        subject: key16(col(r, 0)?)?,
        target: col(r, 1)?,
        granted: col(r, 2)?,
        separate: col(r, 3)?,
        channel: col(r, 4)?,
        policy_version: col(r, 5)?,
        at_ms: col(r, 6)?,
        audit_seq: seq_in(col(r, 7)?)?,
        tag: col(r, 8)?,
    })
}

pub(super) async fn consent(
    conn: &Conn,
    subject: &SubjectKey,
    target: &str,
) -> Result<Option<ConsentRow>, StoreError> {
    let row = conn
        .opt(
            "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq, tag
             FROM consent_current WHERE subject = $1 AND target = $2",
            &[&&subject[..], &target],
        )
        .await?;
    match row {
        Some(r) => consent_row(&r).map(Some),
        // Every consent event also sets the consent in force: events without it is damage.
        None => match conn
            .opt(
                "SELECT 1 FROM consent_events WHERE subject = $1 AND target = $2 LIMIT 1",
                &[&&subject[..], &target],
            )
            .await?
        {
            Some(_) => Err(crate::consent_lost()),
            None => Ok(None),
        },
    }
}
