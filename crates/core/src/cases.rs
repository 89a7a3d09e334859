//! What incidents (P22) and transfer plans (P14) share: a case is a JSON document kept as
//! revisions (a second writer of the same revision is refused and tries again on the newer
//! one), the set of subjects it concerns computed from the record index alone (nothing is
//! decrypted) and kept in packed chunks, and a notice run that walks that set batch by batch,
//! queuing a mail to each subject still there and one webhook "push" per batch, its position
//! committed with each batch — so a crash resumes where the last batch committed, and no
//! batch is queued twice.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use steward_audit::Draft;
use steward_store::{CASE_CHUNK, CaseRow, Op, OutboxState, StoreError, SubjectKey, SubjectState};

use crate::error::{Error, Missing};
use crate::vault::{SubjectId, Vault};

/// How many times a change is tried again on a newer revision before giving up.
const REVISION_TRIES: usize = 8;

/// Where a notice run over a case's set stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeRun {
    /// When it started, Unix ms.
    pub started_ms: i64,
    /// Which computation of the set it walks.
    pub version: i64,
    /// Subjects in that set.
    pub total: u64,
    /// Subjects handled so far (the next one's position).
    pub position: u64,
    /// Mails queued.
    pub queued: u64,
    /// Subjects skipped: erased, or not found.
    pub skipped: u64,
    /// Every subject has been handled.
    pub done: bool,
    /// 1 for the first run; a later one skips subjects an earlier one queued.
    pub run: u32,
}

/// How a case's mails stand, counted from the outbox.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Delivered {
    /// Mails delivered.
    pub notified: u64,
    /// Mails given up on (no address, or every attempt failed; `outbox retry` sends again).
    pub failed: u64,
    /// Mails queued and not yet delivered, plus subjects not yet reached.
    pub pending: u64,
    /// Subjects skipped (erased since).
    pub skipped: u64,
    /// Every subject has been handled.
    pub done: bool,
}

/// One computation of the subjects a case concerns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Computed {
    /// Sorted, each once.
    pub keys: Vec<SubjectKey>,
    /// Subjects per category.
    pub by_category: BTreeMap<String, u64>,
    /// Subjects listed that hold none of the categories in the window.
    pub listed_not_holding: u64,
}

/// Stored case data that is not what Steward wrote: `storage_corrupt`, never a panic.
pub(crate) fn damaged(what: &str) -> Error {
    Error::Store(StoreError::Corrupt(what.into()))
}

/// The id prefix of a case's subject mails.
pub(crate) fn mail_prefix(case: &str) -> String {
    format!("inm_{case}_")
}

impl Vault {
    /// The latest revision of case `id` of `kind`, its document parsed.
    pub(crate) fn load_case<T: serde::de::DeserializeOwned>(
        &self,
        id: &str,
        kind: &str,
        missing: Missing,
    ) -> Result<(CaseRow, T), Error> {
        let row = self
            .store
            .case(id)?
            .filter(|r| r.kind == kind)
            .ok_or(Error::NotFound(missing))?;
        let doc = serde_json::from_str(&row.doc)
            .map_err(|_| damaged("a case's document is not what its kind holds"))?;
        Ok((row, doc))
    }

    /// Changes case `id`: `change` edits its document and says what else the unit writes; the
    /// next revision commits with it, or — when another writer got there first — the change is
    /// made again on the newer one.
    pub(crate) fn change_case<T, F>(
        &self,
        id: &str,
        kind: &str,
        missing: Missing,
        mut change: F,
    ) -> Result<T, Error>
    where
        T: serde::de::DeserializeOwned + Serialize,
        F: FnMut(&mut T) -> Result<(Vec<Op>, Vec<Draft>), Error>,
    {
        for _ in 0..REVISION_TRIES {
            let (row, mut doc) = self.load_case::<T>(id, kind, missing)?;
            let (more, drafts) = change(&mut doc)?;
            let mut ops = vec![self.case_op(id, kind, row.revision + 1, &doc)?];
            ops.extend(more);
            match self.commit_case(ops, drafts) {
                Ok(()) => return Ok(doc),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict(
            "the case changed while this change was written; try again".into(),
        ))
    }

    /// Commits a unit that writes a case: this process's copy of the cases is dropped once
    /// it commits.
    pub(crate) fn commit_case(&self, ops: Vec<Op>, drafts: Vec<Draft>) -> Result<(), StoreError> {
        self.store.commit(ops, drafts)?;
        self.case_cache.forget();
        Ok(())
    }

    /// Every case of `kind` at its latest revision, from this process's copy while it is
    /// fresh (another process's change is seen within seconds): what the public notices and
    /// the dispatcher's passes read.
    pub(crate) fn cached_cases(&self, kind: &str) -> Result<Vec<CaseRow>, Error> {
        let all = self.case_cache.get(|| {
            let mut all = self.store.cases("incident")?;
            all.extend(self.store.cases("transfer")?);
            Ok(all)
        })?;
        Ok(all.iter().filter(|r| r.kind == kind).cloned().collect())
    }

    /// The op writing revision `revision` of a case.
    pub(crate) fn case_op<T: Serialize>(
        &self,
        id: &str,
        kind: &str,
        revision: i64,
        doc: &T,
    ) -> Result<Op, Error> {
        Ok(Op::PutCase(CaseRow {
            id: id.into(),
            revision,
            kind: kind.into(),
            at_ms: self.clock.now_ms(),
            doc: serde_json::to_string(doc)
                .map_err(|_| Error::Internal("a case does not serialise"))?,
        }))
    }

    /// The subjects holding a record of one of `categories` through one of `features` (any
    /// when empty) collected between `from_ms` and `to_ms`, narrowed to `listed` when it is
    /// given: from the record index alone. With `read`, only those whose category was read
    /// or disclosed as it says (pseudonym -> categories, [`Vault::read_in_window`]).
    pub(crate) fn compute_set(
        &self,
        categories: &[String],
        features: &[String],
        (from_ms, to_ms): (i64, i64),
        listed: Option<&[SubjectKey]>,
        read: Option<&HashMap<String, HashSet<String>>>,
    ) -> Result<Computed, Error> {
        let feats: Vec<&str> = features.iter().map(String::as_str).collect();
        let started = std::time::Instant::now();
        let wanted: Option<std::collections::HashSet<&SubjectKey>> =
            listed.map(|l| l.iter().collect());
        let mut by_category = BTreeMap::new();
        let mut keys = Vec::new();
        for c in categories {
            let mut held = self.store.matching_records(c, &feats, from_ms, to_ms)?;
            if let Some(w) = &wanted {
                held.retain(|k| w.contains(k));
            }
            if let Some(read) = read {
                held.retain(|k| {
                    read.get(&self.pseudonym(SubjectId(*k)))
                        .is_some_and(|cats| cats.contains(c))
                });
            }
            tracing::info!(category = %c, subjects = held.len(), "category holders read");
            by_category.insert(c.clone(), held.len() as u64);
            if keys.is_empty() {
                keys = held;
            } else {
                keys.extend(held);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let listed_not_holding = listed.map_or(0, |l| {
            let mut l = l.to_vec();
            l.sort_unstable();
            l.dedup();
            l.iter().filter(|k| keys.binary_search(k).is_err()).count() as u64
        });
        tracing::info!(
            subjects = keys.len(),
            ms = started.elapsed().as_millis() as u64,
            "subject set computed from the record index"
        );
        Ok(Computed {
            keys,
            by_category,
            listed_not_holding,
        })
    }

    /// Which of `categories` were read or disclosed for each subject (by pseudonym) between
    /// `from_ms` and `to_ms`: the granted `pi.read` and `disclosure.record` entries of the
    /// audit log in the window — only disclosures to `recipient` when one is named. The log is in commit order, so its first entry in the window
    /// is found by bisection, allowing a minute for clocks that disagree, and the scan stops a
    /// minute past the window's end.
    pub(crate) fn read_in_window(
        &self,
        categories: &[String],
        (from_ms, to_ms): (i64, i64),
        recipient: Option<&str>,
    ) -> Result<HashMap<String, HashSet<String>>, Error> {
        const SLACK_MS: i64 = 60_000;
        let at = |seq: u64| -> Result<Option<i64>, Error> {
            Ok(self.audit_entry(seq)?.map(|e| e.at_ms))
        };
        let (head, _) = self.store.audit_head()?;
        let (mut lo, mut hi) = (1u64, head.saturating_add(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if at(mid)?.is_some_and(|t| t < from_ms.saturating_sub(SLACK_MS)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out: HashMap<String, HashSet<String>> = HashMap::new();
        let end = to_ms.saturating_add(SLACK_MS);
        self.store.audit_scan(lo, &mut |raw| {
            let Some(e) = raw
                .hash
                .try_into()
                .ok()
                .and_then(|h| steward_audit::Entry::decode(raw.bytes, h).ok())
            else {
                return true;
            };
            if e.at_ms > end {
                return false;
            }
            let to_whom = || {
                serde_json::from_str::<serde_json::Value>(&e.detail)
                    .ok()
                    .and_then(|d| {
                        d.get("recipient")
                            .and_then(|r| r.as_str())
                            .map(str::to_owned)
                    })
            };
            let kind = match recipient {
                None => matches!(e.action.as_str(), "pi.read" | "disclosure.record"),
                Some(r) => e.action == "disclosure.record" && to_whom().as_deref() == Some(r),
            };
            let read = kind
                && e.outcome == "granted"
                && !e.subject.is_empty()
                && (from_ms..=to_ms).contains(&e.at_ms);
            if read {
                for c in e
                    .categories
                    .split(',')
                    .filter(|c| categories.iter().any(|x| x == c))
                {
                    out.entry(e.subject.clone())
                        .or_default()
                        .insert(c.to_string());
                }
            }
            true
        })?;
        Ok(out)
    }

    /// One batch of a case's notice run: the next `batch` subjects of its set, each still
    /// active (or closed, their data still held) given a mail about `mail_event`, one
    /// `push_event` webhook naming them all, the run's position committed in the same unit as
    /// the messages. `None` when the case has no run; the run as it stands otherwise.
    pub(crate) fn notice_step(
        &self,
        id: &str,
        kind: &str,
        (mail_event, push_event): (&str, &str),
        batch: usize,
    ) -> Result<Option<NoticeRun>, Error> {
        let row = match self.store.case(id)? {
            Some(r) if r.kind == kind => r,
            _ => return Ok(None),
        };
        let mut doc: Json = serde_json::from_str(&row.doc)
            .map_err(|_| damaged("a case's document is not what its kind holds"))?;
        let Some(mut run) = doc
            .get("notice")
            .filter(|n| !n.is_null())
            .map(|n| serde_json::from_value::<NoticeRun>(n.clone()))
            .transpose()
            .map_err(|_| damaged("a case's notice run is not what it should hold"))?
        else {
            return Ok(None);
        };
        if run.done {
            return Ok(Some(run));
        }
        let chunk_size = CASE_CHUNK as u64;
        let chunk = (run.position / chunk_size) as i64;
        let offset = (run.position % chunk_size) as usize;
        let bytes = if run.position < run.total {
            self.store
                .case_chunk(id, run.version, chunk)?
                .ok_or_else(|| damaged("a case's subject set lost a chunk"))?
        } else {
            Vec::new()
        };
        let keys: Vec<SubjectKey> = bytes
            .chunks_exact(16)
            .skip(offset)
            .take(batch.max(1))
            .filter_map(|k| k.try_into().ok())
            .collect();
        let states = self.store.subjects(&keys)?;
        let prefix = mail_prefix(id);
        let mut rows = Vec::with_capacity(keys.len());
        let mut reached = Vec::with_capacity(keys.len());
        for (key, state) in keys.iter().zip(&states) {
            let held = state
                .as_ref()
                .is_some_and(|s| matches!(s.state, SubjectState::Active | SubjectState::Closed));
            let mail_id = format!("{prefix}{}", hex::encode(key));
            if !held {
                run.skipped += 1;
                continue;
            }
            if run.run > 1 && self.store.message(&mail_id)?.is_some() {
                continue;
            }
            let mut mail = self.subject_mail(mail_event, SubjectId(*key), json!({ "case": id }))?;
            mail.id = mail_id;
            rows.push(mail);
            reached.push(SubjectId(*key).to_string());
        }
        run.queued += rows.len() as u64;
        run.position += keys.len() as u64;
        if run.position >= run.total {
            run.done = true;
        }
        let mut ops = Vec::new();
        let queued = rows.len();
        Vault::enqueue(&mut ops, rows);
        if !reached.is_empty() {
            Vault::enqueue(
                &mut ops,
                self.event_messages(push_event, json!({ "case": id, "subjects": reached }))?,
            );
        }
        if let Some(map) = doc.as_object_mut() {
            map.insert(
                "notice".into(),
                serde_json::to_value(&run).map_err(|_| Error::Internal("notice run"))?,
            );
        }
        ops.insert(0, self.case_op(id, kind, row.revision + 1, &doc)?);
        let mut drafts = vec![self.system_draft(
            &format!("{kind}.notice"),
            json!({ kind: id, "queued": queued, "position": run.position, "total": run.total }),
        )];
        if run.done {
            drafts.push(self.system_draft(
                &format!("{kind}.notified"),
                json!({ kind: id, "queued": run.queued, "skipped": run.skipped }),
            ));
        }
        match self.commit_case(ops, drafts) {
            Ok(()) => {}
            // Another process moved the run first: it goes on from there next time.
            Err(StoreError::Conflict(_)) => return Ok(Some(run)),
            Err(e) => return Err(e.into()),
        }
        if run.done {
            tracing::info!(
                case = id,
                queued = run.queued,
                skipped = run.skipped,
                "notice run queued every mail"
            );
        }
        Ok(Some(run))
    }

    /// How a case's notice run stands, its mails counted from the outbox.
    pub(crate) fn delivered(&self, id: &str, run: Option<&NoticeRun>) -> Result<Delivered, Error> {
        let Some(run) = run else {
            return Ok(Delivered::default());
        };
        let mut d = Delivered {
            skipped: run.skipped,
            done: run.done,
            ..Delivered::default()
        };
        for (state, n) in self.store.message_counts(&mail_prefix(id))? {
            match state {
                OutboxState::Delivered => d.notified += n,
                OutboxState::Dead => d.failed += n,
                OutboxState::Pending => d.pending += n,
            }
        }
        d.pending += run.total.saturating_sub(run.position);
        Ok(d)
    }

    /// Advances every open notice run of incidents and transfers for up to `budget`.
    pub(crate) fn cases_tick(&self, budget: std::time::Duration) -> Result<(), Error> {
        let started = std::time::Instant::now();
        for (kind, events) in [
            ("incident", ("incident.notice", "incident.push")),
            ("transfer", ("transfer.notice", "transfer.push")),
        ] {
            for row in self.cached_cases(kind)? {
                let open = serde_json::from_str::<Json>(&row.doc)
                    .ok()
                    .and_then(|d| d.pointer("/notice/done").and_then(Json::as_bool))
                    == Some(false);
                if !open {
                    continue;
                }
                while started.elapsed() < budget {
                    match self.notice_step(&row.id, kind, events, self.notice_batch)? {
                        Some(r) if !r.done => continue,
                        _ => break,
                    }
                }
            }
        }
        Ok(())
    }
}

/// Packs sorted subject keys into chunks of [`CASE_CHUNK`].
pub(crate) fn pack(keys: &[SubjectKey]) -> Vec<Vec<u8>> {
    keys.chunks(CASE_CHUNK)
        .map(|c| c.iter().flat_map(|k| k.iter().copied()).collect())
        .collect()
}
