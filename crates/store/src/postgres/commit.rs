//! Group commit: units of work join the open transaction on the one writer connection, a
//! savepoint each, and whoever finds nobody else arriving commits for all.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use steward_audit::{Entry, GENESIS};

use crate::{Reader, StoreError, Unit};

use super::*;

/// The transaction units of work are joining.
pub(super) struct Open {
    pub(super) conn: Arc<Conn>,
    pub(super) head: (u64, [u8; 32]),
    pub(super) epoch: u64,
    pub(super) members: usize,
}

/// The writer's side: the connection, the open transaction, and how finished ones ended.
pub(super) struct Writer {
    pub(super) conn: Option<Arc<Conn>>,
    pub(super) open: Option<Open>,
    pub(super) next_epoch: u64,
    /// Outcomes of committed transactions that members still wait on: epoch -> (outcome,
    /// members yet to read it).
    pub(super) outcomes: HashMap<u64, (Result<(), StoreError>, usize)>,
}

impl PgStore {
    /// The writer's connection, made again if it broke.
    pub(super) fn writer_conn(w: &mut Writer, pool: &Pool) -> Result<Arc<Conn>, StoreError> {
        if let Some(c) = w.conn.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(Arc::clone(c));
        }
        w.conn = None;
        let c = pool.connect()?;
        w.conn = Some(Arc::clone(&c));
        Ok(c)
    }

    /// Ends the open transaction with `outcome` for all its members, waking those who wait.
    pub(super) fn settle_epoch(
        &self,
        w: &mut Writer,
        outcome: Result<(), StoreError>,
        waiting: usize,
    ) {
        if let Some(open) = w.open.take()
            && waiting > 0
        {
            w.outcomes.insert(open.epoch, (outcome, waiting));
        }
        self.committed.notify_all();
    }

    /// Commits (or, if `rollback`, abandons) the open transaction. `own` of its members are
    /// the caller's units; the others' callers wait for the outcome.
    pub(super) fn finish(
        &self,
        w: &mut Writer,
        rollback: bool,
        own: usize,
    ) -> Result<(), StoreError> {
        let Some(open) = w.open.as_ref() else {
            return Ok(());
        };
        let conn = Arc::clone(&open.conn);
        let members = open.members;
        let waiting = members.saturating_sub(own);
        let outcome = if rollback {
            block(conn.simple("ROLLBACK"))
        } else {
            block(conn.simple("COMMIT"))
        };
        if outcome.is_err() {
            w.conn = None;
        } else if !rollback {
            self.commits.fetch_add(1, Ordering::Relaxed);
            self.units
                .fetch_add(u64::try_from(members).unwrap_or(0), Ordering::Relaxed);
        }
        self.settle_epoch(w, outcome.clone(), waiting);
        outcome
    }

    /// Waits for the transaction `epoch` that `units` of the caller's joined to end, and how
    /// it ended.
    pub(super) fn await_epoch(
        &self,
        mut w: MutexGuard<'_, Writer>,
        epoch: u64,
        units: usize,
    ) -> Result<(), StoreError> {
        loop {
            if let Some((outcome, left)) = w.outcomes.get_mut(&epoch) {
                *left = left.saturating_sub(units);
                let result = outcome.clone();
                if *left == 0 {
                    w.outcomes.remove(&epoch);
                }
                return result;
            }
            w = self.committed.wait(w).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// One unit inside the open transaction, in a savepoint so that its failure leaves the
    /// other units' work standing.
    pub(super) fn member(
        &self,
        open: &mut Open,
        work: &mut dyn FnMut(&dyn Reader) -> Result<Unit, StoreError>,
    ) -> Result<Vec<Entry>, StoreError> {
        let conn = Arc::clone(&open.conn);
        let savepoint = Cell::new(false);
        let reader = TxReader {
            conn: &conn,
            savepoint: &savepoint,
            fetched: std::cell::RefCell::new(HashMap::new()),
        };
        let applied = work(&reader).and_then(|unit| {
            let planned = Planned::new(open.head, unit)?;
            let mut steps = Vec::with_capacity(planned.stmts.len() + 2);
            if !savepoint.replace(true) {
                steps.push(Step::Simple("SAVEPOINT unit"));
            }
            steps.extend(planned.stmts.iter().map(Step::Exec));
            steps.push(Step::Simple("RELEASE SAVEPOINT unit"));
            block(conn.pipeline(&steps))?;
            Ok((planned.entries, planned.head))
        });
        match applied {
            Ok((entries, head)) => {
                open.head = head;
                Ok(entries)
            }
            Err(e) => {
                if savepoint.get() {
                    // Undo this unit only. If even that fails the transaction cannot commit
                    // (PostgreSQL would turn the COMMIT into a quiet rollback): it is lost.
                    block(conn.simple("ROLLBACK TO SAVEPOINT unit; RELEASE SAVEPOINT unit"))
                        .map_err(|_| {
                            StoreError::Unavailable(
                                "a shared transaction could not be recovered".into(),
                            )
                        })?;
                }
                Err(e)
            }
        }
    }

    /// Independent units inside the open transaction, all sent in one round trip, each in a
    /// savepoint of its own. PostgreSQL refuses every statement after a failing one, so when a
    /// unit fails, the units before it stand, it is rolled back to its savepoint, and the
    /// units after it are planned again from the chain head and sent again.
    pub(super) fn members(
        &self,
        open: &mut Open,
        units: &[Unit],
    ) -> Vec<Result<Vec<Entry>, StoreError>> {
        let mut results: Vec<Option<Result<Vec<Entry>, StoreError>>> =
            units.iter().map(|_| None).collect();
        let mut set = |i: usize, r: Result<Vec<Entry>, StoreError>| {
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(r);
            }
        };
        let mut from = 0;
        while from < units.len() {
            let mut head = open.head;
            let mut planned = Vec::with_capacity(units.len() - from);
            for (i, unit) in units.iter().enumerate().skip(from) {
                match Planned::new(head, unit.clone()) {
                    Ok(p) => {
                        head = p.head;
                        planned.push((i, p));
                    }
                    Err(e) => set(i, Err(e)),
                }
            }
            // Which planned unit each step belongs to.
            let mut steps = Vec::new();
            let mut owner = Vec::new();
            for (k, (_, p)) in planned.iter().enumerate() {
                steps.push(Step::Simple("SAVEPOINT unit"));
                steps.extend(p.stmts.iter().map(Step::Exec));
                steps.push(Step::Simple("RELEASE SAVEPOINT unit"));
                owner.resize(steps.len(), k);
            }
            let failed = match block(open.conn.pipeline_at(&steps)) {
                Ok(()) => None,
                Err((step, e)) => Some((owner.get(step).copied().unwrap_or(0), e)),
            };
            let stand = failed.as_ref().map_or(planned.len(), |(k, _)| *k);
            let mut planned = planned.into_iter();
            for (i, p) in planned.by_ref().take(stand) {
                open.head = p.head;
                set(i, Ok(p.entries));
            }
            let Some((_, e)) = failed else {
                break;
            };
            let Some((failed_at, _)) = planned.next() else {
                break;
            };
            set(failed_at, Err(e.clone()));
            // Undo the failed unit. If even that fails (or the connection is gone) the
            // transaction cannot commit (PostgreSQL would turn the COMMIT into a quiet
            // rollback): the units after it are lost with it.
            let lost = match e {
                StoreError::Unavailable(_) => Some(e),
                _ => block(
                    open.conn
                        .simple("ROLLBACK TO SAVEPOINT unit; RELEASE SAVEPOINT unit"),
                )
                .err()
                .map(|_| {
                    StoreError::Unavailable("a shared transaction could not be recovered".into())
                }),
            };
            if let Some(lost) = lost {
                for (i, _) in planned {
                    set(i, Err(lost.clone()));
                }
                break;
            }
            from = failed_at + 1;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::Backend("a unit was not run".into()))))
            .collect()
    }

    /// Once the caller's units have joined the open transaction (`own` of them stand), or it
    /// `lost` the connection: commits for everyone, or leaves the commit to whoever joins
    /// next and waits for it, or abandons a transaction nothing joined. The outcome is that
    /// of the caller's standing units.
    pub(super) fn conclude(
        &self,
        mut w: MutexGuard<'_, Writer>,
        epoch: u64,
        own: usize,
        lost: bool,
    ) -> Result<(), StoreError> {
        let members = w.open.as_ref().map_or(0, |o| o.members);
        if lost {
            // The connection broke: the transaction and everything in it are gone.
            w.conn = None;
            let err = StoreError::Unavailable("the connection to PostgreSQL was lost".into());
            self.settle_epoch(&mut w, Err(err.clone()), members.saturating_sub(own));
            return Err(err);
        }
        let others_coming = self.arriving.load(Ordering::Acquire) > 0;
        if members == 0 && !others_coming {
            // Nothing joined: leave nothing open.
            let _ = self.finish(&mut w, true, 0);
            return Ok(());
        }
        if others_coming && members < MAX_MEMBERS {
            // Someone is about to join; the last to join commits for everyone.
            return if own > 0 {
                self.await_epoch(w, epoch, own)
            } else {
                Ok(())
            };
        }
        self.finish(&mut w, false, own)
    }

    pub(super) fn begin(&self, w: &mut Writer) -> Result<(), StoreError> {
        if w.open.is_some() {
            return Ok(());
        }
        let conn = Self::writer_conn(w, &self.pool)?;
        let key = self.chain_lock.as_str();
        let head = block(async {
            // Writers of this chain, in any process, take turns by an advisory lock held to the
            // end of the transaction; the head is read after it is granted, so it is the
            // latest committed one. (A head row updated on every commit would pile up dead
            // versions that every writer then walks.)
            let (begin, locked, head) = futures_util::future::join3(
                conn.simple("BEGIN"),
                conn.query("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key]),
                conn.opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[]),
            )
            .await;
            begin?;
            locked?;
            match head? {
                Some(row) => Ok::<_, StoreError>((seq_in(col(&row, 0)?)?, hash32(col(&row, 1)?)?)),
                None => Ok((0, GENESIS)),
            }
        });
        let head = match head {
            Ok(h) => h,
            Err(e) => {
                let _ = block(conn.simple("ROLLBACK"));
                if matches!(e, StoreError::Unavailable(_)) {
                    w.conn = None;
                }
                return Err(e);
            }
        };
        let epoch = w.next_epoch;
        w.next_epoch += 1;
        w.open = Some(Open {
            conn,
            head,
            epoch,
            members: 0,
        });
        Ok(())
    }
}
