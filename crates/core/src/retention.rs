//! Retention (P17) and erasure after account closure (P28), as one sweep.
//!
//! Three steps, each in batches that commit on their own with their audit entry, so a sweep
//! can stop anywhere and the next one picks up where it stopped (everything it deletes is gone,
//! and what is left is found again):
//! 1. values of categories kept N days after collection, collected more than N days ago;
//! 2. for closed accounts, values of categories kept N days after closing, once N days passed;
//! 3. closed accounts past `deadlines.erasure_days`: erased by crypto-shredding.
//!
//! Legal holds (P18) are skipped and counted.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use steward_policy::RetentionFrom;
use steward_store::{HoldRow, Op, RecordKey, SubjectKey};

use crate::error::Error;
use crate::holds::Held;
use crate::vault::{SubjectId, Vault};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// What a sweep did (or, in a dry run, would do).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Values past their retention, deleted.
    pub records_deleted: usize,
    /// Values past their retention but under a legal hold.
    pub records_held: usize,
    /// Closed accounts erased after the grace period.
    pub subjects_erased: usize,
    /// Closed accounts past the grace period but under a legal hold.
    pub subjects_held: usize,
    /// Closed accounts past the grace period whose erasure waits on one of the provider's
    /// databases (`docs/datasets.md`): erased by a later sweep once each is done.
    pub subjects_waiting: usize,
}

fn held_by(
    holds: &HashMap<SubjectKey, Vec<HoldRow>>,
    subject: &SubjectKey,
    category: &str,
) -> bool {
    holds
        .get(subject)
        .is_some_and(|hs| hs.iter().any(|h| h.covers(category)))
}

impl Vault {
    /// Runs the retention sweep. `progress` is called after each batch with the report so far.
    pub fn retention_sweep(
        &self,
        dry_run: bool,
        batch: usize,
        progress: &mut dyn FnMut(&SweepReport),
    ) -> Result<SweepReport, Error> {
        let batch = batch.max(1);
        let now = self.clock.now_ms();
        let mut report = SweepReport {
            dry_run,
            ..SweepReport::default()
        };
        let mut holds: HashMap<SubjectKey, Vec<HoldRow>> = HashMap::new();
        for h in self.checked_holds(self.store.active_holds(now)?)? {
            holds.entry(h.subject).or_default().push(h);
        }

        // 1. Kept N days after collection.
        for category in &self.policy.categories {
            if category.retention.from != RetentionFrom::Collected {
                continue;
            }
            let cutoff = now.saturating_sub(i64::from(category.retention.days) * DAY_MS);
            let mut after = None;
            loop {
                let page =
                    self.store
                        .records_collected_before(&category.name, cutoff, after, batch)?;
                let Some((at, last)) = page.last() else {
                    break;
                };
                after = Some((*at, last.subject, last.id));
                let (held, expired): (Vec<RecordKey>, Vec<RecordKey>) = page
                    .into_iter()
                    .map(|(_, k)| k)
                    .partition(|k| held_by(&holds, &k.subject, &k.category));
                report.records_held += held.len();
                self.delete_expired(dry_run, &category.name, "collected", expired, &mut report)?;
                progress(&report);
            }
        }

        // 2 and 3. Closed accounts.
        let grace = i64::from(self.policy.deadlines.erasure_days) * DAY_MS;
        for (key, closed_ms) in self.store.closed_before(now)? {
            let subject = SubjectId(key);
            // The state acted on is the one Steward wrote (its tag).
            if let Some(row) = self.store.subject(&key)? {
                self.check_state(&row.id, row.state, &row.tag)?;
            }
            if closed_ms.saturating_add(grace) <= now {
                if self.held(subject)? != Held::Nothing {
                    report.subjects_held += 1;
                } else {
                    if !dry_run {
                        // The provider's systems first, under the cancellation request.
                        let Some(systems) = self.closure_reaches(subject, closed_ms)? else {
                            report.subjects_waiting += 1;
                            progress(&report);
                            continue;
                        };
                        self.erase_linked(subject)?;
                        self.shred_with(
                            None,
                            subject,
                            crate::rights::Why::Steward("account closed; grace period over"),
                            systems.as_ref(),
                        )?;
                    }
                    report.subjects_erased += 1;
                }
                progress(&report);
                continue;
            }
            let rows = self.store.records(&key)?;
            for category in &self.policy.categories {
                let ends = closed_ms.saturating_add(i64::from(category.retention.days) * DAY_MS);
                if category.retention.from != RetentionFrom::AccountClosed || ends > now {
                    continue;
                }
                let (held, expired): (Vec<RecordKey>, Vec<RecordKey>) = rows
                    .iter()
                    .filter(|r| r.category == category.name)
                    .map(|r| RecordKey {
                        subject: key,
                        category: r.category.clone(),
                        id: r.id,
                    })
                    .partition(|k| held_by(&holds, &k.subject, &k.category));
                report.records_held += held.len();
                self.delete_expired(
                    dry_run,
                    &category.name,
                    "account_closed",
                    expired,
                    &mut report,
                )?;
            }
            progress(&report);
        }
        tracing::info!(
            dry_run,
            deleted = report.records_deleted,
            held = report.records_held,
            erased = report.subjects_erased,
            "retention sweep finished"
        );
        Ok(report)
    }

    fn delete_expired(
        &self,
        dry_run: bool,
        category: &str,
        rule: &str,
        expired: Vec<RecordKey>,
        report: &mut SweepReport,
    ) -> Result<(), Error> {
        if expired.is_empty() {
            return Ok(());
        }
        let n = expired.len();
        if !dry_run {
            let mut draft =
                self.system_draft("retention.delete", json!({ "rule": rule, "records": n }));
            draft.categories = category.to_string();
            self.store
                .commit(vec![Op::DeleteRecords(expired)], vec![draft])?;
        }
        report.records_deleted += n;
        Ok(())
    }

    /// [`Vault::retention_sweep`] on a caller's behalf: their role must allow `retention.run`.
    pub fn run_retention(
        &self,
        actor: &crate::vault::Actor,
        dry_run: bool,
    ) -> Result<SweepReport, Error> {
        self.permit(actor, steward_policy::Capability::RetentionRun, None)?;
        self.retention_sweep(dry_run, 1000, &mut |_| {})
    }

    /// Closes a subject's account (P28): erasure follows after `deadlines.erasure_days`,
    /// holds permitting; meanwhile only legal obligations may read the data.
    pub fn close_account(
        &self,
        actor: &crate::vault::Actor,
        subject: SubjectId,
    ) -> Result<i64, Error> {
        self.permit(
            actor,
            steward_policy::Capability::SubjectErase,
            Some(subject),
        )?;
        self.close(actor, subject)
    }

    /// [`Vault::close_account`] once permission is settled.
    pub(crate) fn close(
        &self,
        actor: &crate::vault::Actor,
        subject: SubjectId,
    ) -> Result<i64, Error> {
        let (op, draft, erase_by) = self.close_unit(actor, subject)?;
        self.store.commit(vec![op], vec![draft])?;
        Ok(erase_by)
    }

    /// Closing an account as a unit of work not yet committed: the change, its entry, and
    /// when erasure follows (P28). A subject that is not active is refused, audited.
    pub(crate) fn close_unit(
        &self,
        actor: &crate::vault::Actor,
        subject: SubjectId,
    ) -> Result<(Op, steward_audit::Draft, i64), Error> {
        if let Err(e) = self.active_subject(subject) {
            return Err(self.refuse(actor, "subject.close", Some(subject), "", String::new(), e));
        }
        let now = self.clock.now_ms();
        let erase_by = now.saturating_add(i64::from(self.policy.deadlines.erasure_days) * DAY_MS);
        let op = Op::CloseSubject {
            subject: subject.0,
            at_ms: now,
            tag: self.subject_tag(&subject.0, steward_store::SubjectState::Closed),
        };
        let draft = self.draft(
            actor,
            "subject.close",
            steward_audit::Outcome::Granted,
            Some(subject),
            "",
            String::new(),
            json!({ "erase_by_ms": erase_by }),
        );
        Ok((op, draft, erase_by))
    }
}
