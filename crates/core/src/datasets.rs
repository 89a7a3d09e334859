//! The provider's other databases (issue 16, `docs/datasets.md`): an access request's
//! completion walks every declared database from the subject's identities and puts what it
//! found into the export, per system and per category, each system's read audited without its
//! values.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use steward_datasets::run::{Fanout, Identities};
use steward_datasets::{DataType, Identity};

use crate::rights::Export;
use crate::{Actor, Error, SubjectId, Vault};

/// One system's part of an export.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct ExportSystem {
    /// The dataset's key.
    pub system: String,
    /// Its name.
    pub name: String,
    /// The subject's rows, per table: each with the fields that hold PI.
    pub collections: Vec<ExportCollection>,
    /// Per category held there: how many values, and the purposes the policy uses it for.
    pub categories: Vec<ExportSystemCategory>,
}

/// The subject's rows of one table.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct ExportCollection {
    /// The table.
    pub collection: String,
    /// Each row: field name to value (text, or a number or boolean where declared so).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// One category held in a system.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct ExportSystemCategory {
    /// The category.
    pub category: String,
    /// Values of it found (NULLs not counted).
    pub values: usize,
    /// The purposes the policy reads it for.
    pub purposes: Vec<String>,
}

/// A value as the export shows it: a number or a boolean where the field is declared so.
fn shown(value: &str, ty: Option<DataType>) -> serde_json::Value {
    match ty {
        Some(DataType::Integer) => value
            .parse::<i64>()
            .map_or_else(|_| json!(value), |n| json!(n)),
        Some(DataType::Float) => value
            .parse::<f64>()
            .map_or_else(|_| json!(value), |n| json!(n)),
        Some(DataType::Boolean) => match value {
            "true" | "t" | "1" => json!(true),
            "false" | "f" | "0" => json!(false),
            _ => json!(value),
        },
        _ => json!(value),
    }
}

impl Vault {
    /// Attaches the provider's databases: access requests reach them from now on. Once per
    /// vault.
    pub fn attach_datasets(&self, fanout: Arc<Fanout>) -> Result<(), Error> {
        self.datasets
            .set(fanout)
            .map_err(|_| Error::Conflict("datasets are attached already".into()))
    }

    /// The provider's databases, if attached.
    pub fn datasets(&self) -> Option<&Arc<Fanout>> {
        self.datasets.get()
    }

    /// Walks every declared database for `subject` (P23) and puts what it found into
    /// `export`: the audit entries of the reads, one per system, naming the tables, row
    /// counts and categories — never a value. Nothing is recorded if a database cannot be
    /// reached: the caller's unit of work fails with `dataset_unavailable`.
    pub(crate) fn reach_access(
        &self,
        actor: &Actor,
        subject: SubjectId,
        request: &str,
        export: &mut Export,
    ) -> Result<Vec<steward_audit::Draft>, Error> {
        let Some(fanout) = self.datasets.get() else {
            return Ok(Vec::new());
        };
        let ids = self.held_identities(fanout, subject)?;
        let found = fanout.access(ids).map_err(unavailable)?;
        let mut drafts = Vec::new();
        for system in found.systems {
            let Some(d) = fanout.catalogue.datasets.get(system.dataset) else {
                continue;
            };
            let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
            let mut rows_read = serde_json::Map::new();
            let mut collections = Vec::new();
            for found in &system.collections {
                let Some(c) = d.collections.get(found.collection) else {
                    continue;
                };
                rows_read.insert(c.name.clone(), json!(found.rows.len()));
                if !c.fields.iter().any(|f| f.is_pi()) {
                    continue;
                }
                let mut rows = Vec::with_capacity(found.rows.len());
                for row in &found.rows {
                    let mut shown_row = serde_json::Map::new();
                    for (f, value) in c.fields.iter().zip(row) {
                        if !f.is_pi() {
                            continue;
                        }
                        if value.is_some() {
                            for (category, _) in &f.categories {
                                *counts.entry(category.clone()).or_default() += 1;
                            }
                        }
                        shown_row.insert(
                            f.name.clone(),
                            value.as_deref().map_or(serde_json::Value::Null, |v| {
                                shown(v, f.data_type.map(|(t, _)| t))
                            }),
                        );
                    }
                    rows.push(shown_row);
                }
                collections.push(ExportCollection {
                    collection: c.name.clone(),
                    rows,
                });
            }
            let categories: Vec<ExportSystemCategory> = counts
                .into_iter()
                .map(|(category, values)| ExportSystemCategory {
                    purposes: self.purposes_reading(&category),
                    category,
                    values,
                })
                .collect();
            let mut draft = self.act(
                actor,
                "dataset.read",
                Some(subject),
                json!({
                    "request": request,
                    "system": d.key,
                    "rows": rows_read,
                    "categories": categories.iter().map(|c| c.category.as_str()).collect::<Vec<_>>(),
                }),
            );
            draft.categories = categories
                .iter()
                .map(|c| c.category.as_str())
                .collect::<Vec<_>>()
                .join(",");
            drafts.push(draft);
            export.systems.push(ExportSystem {
                system: d.key.clone(),
                name: d.name.clone(),
                collections,
                categories,
            });
        }
        Ok(drafts)
    }
}

impl Vault {
    /// The purposes the policy reads category `category` for.
    pub(crate) fn purposes_reading(&self, category: &str) -> Vec<String> {
        let Some(id) = self.policy.category_id(category) else {
            return Vec::new();
        };
        self.policy
            .purposes
            .iter()
            .filter(|p| p.reads.contains(id.index()))
            .map(|p| p.name.clone())
            .collect()
    }
}

/// Where a request's erasure stands in one of the provider's databases, as callers see it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SystemState {
    /// The dataset's key.
    pub system: String,
    /// `waiting` (a database could not be read to plan, or an external system's endpoint is
    /// not registered), `planned` (to be carried out), `asked` (an external system, asked by
    /// webhook: its answer is awaited), `done` or `failed` (given up at the request's
    /// deadline, or an external system answered that it failed).
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed (never a value); empty once done.
    pub reason: String,
    /// When it is tried again (an external system: reminded), while not settled.
    pub next_at: Option<String>,
    /// What was done: rows deleted and changed per table (an access answer: rows per table
    /// and values per category).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<serde_json::Value>,
}

/// How long before a system is tried again after `attempts` failures: a minute, doubling, at
/// most six hours.
pub fn backoff_ms(attempts: u32) -> i64 {
    let minutes = 1i64 << attempts.saturating_sub(1).min(9);
    (minutes * 60_000).min(6 * 3_600_000)
}

/// Whether a system's state is final: done, or given up.
pub(crate) fn settled(state: &str) -> bool {
    matches!(state, "done" | "failed")
}

/// Steward itself, acting on its own (the datasets worker, the sweep): `system`.
pub(crate) fn steward_actor() -> Actor {
    Actor {
        id: "system".into(),
        role: steward_policy::RoleId::SYSTEM,
    }
}

/// Whether request `row` carries a closed account's erasure: its `account_cancellation`
/// request, completed at closure, whose systems are reached at the grace period's end.
pub(crate) fn carries_closure(row: &steward_store::RequestRow) -> bool {
    row.kind == "account_cancellation" && row.state == steward_store::RequestState::Completed
}

impl Vault {
    /// Where request `row` stands in each of the provider's databases.
    pub(crate) fn system_states(
        &self,
        row: &steward_store::RequestRow,
    ) -> Result<Vec<SystemState>, Error> {
        Ok(self
            .store
            .request_systems(&row.subject, &row.id)?
            .into_iter()
            .map(|s| SystemState {
                next_at: (!settled(&s.state)).then(|| crate::clock::rfc3339(s.next_ms)),
                result: serde_json::from_str(&s.result).ok(),
                system: s.system,
                state: s.state,
                attempts: s.attempts,
                reason: s.reason,
            })
            .collect())
    }

    /// What a request's system row keeps sealed under the subject's key — a database's plan
    /// (`dataset-plan`), an external system's access answer (`dataset-answer`) — opened and
    /// read.
    pub(crate) fn open_system_row<T: serde::de::DeserializeOwned>(
        &self,
        s: &steward_store::RequestSystemRow,
        what: &str,
    ) -> Result<T, Error> {
        let stored = String::from_utf8(s.sealed_plan.clone()).map_err(|_| Error::Integrity)?;
        let text = self
            .open_text(
                SubjectId(s.subject),
                what,
                &format!("{}:{}", s.request, s.system),
                &stored,
            )?
            .ok_or(Error::KeyDestroyed)?;
        serde_json::from_str(&text).map_err(|_| Error::Integrity)
    }

    /// The subject's identities for the provider's databases, from what Steward holds.
    fn held_identities(&self, fanout: &Fanout, subject: SubjectId) -> Result<Identities, Error> {
        let mut wanted: Vec<Identity> = vec![Identity::SubjectId];
        for f in fanout
            .catalogue
            .datasets
            .iter()
            .flat_map(|d| d.collections.iter())
            .flat_map(|c| c.fields.iter())
        {
            if let Some((i @ Identity::Category(_), _)) = &f.identity
                && !wanted.contains(i)
            {
                wanted.push(i.clone());
            }
        }
        self.identity_values(subject, &wanted)
    }

    /// Moves request `row`'s erasure on in the provider's databases (P24, P28): plans it on
    /// first call (a walk; the plan of each database sealed under the subject's key), then
    /// carries out every plan that is due, each in one transaction of its database. Every
    /// step is audited (`dataset.plan`, `dataset.erase`, `dataset.retry`, `dataset.failed`),
    /// never with a value. Returns what was done per system once every system is done or
    /// given up (at the request's deadline), else `None`: the request waits, and
    /// [`Vault::advance_datasets`] tries again when due. Fields of `held` categories are
    /// kept.
    pub(crate) fn reach_erasure(
        &self,
        actor: &Actor,
        row: &steward_store::RequestRow,
        held: &[String],
    ) -> Result<Option<serde_json::Value>, Error> {
        let Some(fanout) = self.datasets.get() else {
            return Ok(Some(json!({})));
        };
        let subject = SubjectId(row.subject);
        let now = self.clock.now_ms();
        let databases: Vec<&str> = fanout
            .catalogue
            .datasets
            .iter()
            .filter(|d| d.external.is_none())
            .map(|d| d.key.as_str())
            .collect();
        let external: Vec<&str> = self
            .external_systems()
            .iter()
            .map(|d| d.key.as_str())
            .collect();
        // External systems are asked first: their answers take longest. (A row of a system
        // no longer declared is left alone.)
        let (mut systems, externals): (Vec<_>, Vec<_>) = self
            .ask_externals(actor, row)?
            .into_iter()
            .filter(|s| {
                databases.contains(&s.system.as_str()) || external.contains(&s.system.as_str())
            })
            .partition(|s| databases.contains(&s.system.as_str()));
        let blank = |system: &str| steward_store::RequestSystemRow {
            subject: row.subject,
            request: row.id.clone(),
            system: system.to_string(),
            state: "waiting".into(),
            attempts: 0,
            next_ms: now,
            reason: String::new(),
            sealed_plan: Vec::new(),
            result: String::new(),
            updated_ms: now,
        };
        // Plan, when there is none yet (first call, or the last walk failed) and it is due.
        let unplanned = (!databases.is_empty() && systems.is_empty())
            || systems
                .iter()
                .any(|s| s.state == "waiting" && s.next_ms <= now);
        if unplanned {
            let walked = self
                .held_identities(fanout, subject)
                .and_then(|ids| fanout.access(ids).map_err(unavailable))
                .and_then(|found| {
                    let hash = |v: &str| self.keys.erasure_hash(v);
                    steward_datasets::erase::plan(&fanout.catalogue, &found, held, &hash)
                        .map_err(unavailable)
                });
            match walked {
                Ok(plans) => {
                    let mut rows = Vec::new();
                    let mut counts = serde_json::Map::new();
                    for plan in plans {
                        let text = serde_json::to_string(&plan)
                            .map_err(|_| Error::Internal("a plan does not serialise"))?;
                        let sealed = self.seal_text(
                            subject,
                            "dataset-plan",
                            &format!("{}:{}", row.id, plan.system),
                            &text,
                        )?;
                        counts.insert(plan.system.clone(), plan_counts(&plan));
                        let mut r = blank(&plan.system);
                        r.state = "planned".into();
                        r.sealed_plan = sealed.into_bytes();
                        rows.push(r);
                    }
                    let draft = self.act(
                        actor,
                        "dataset.plan",
                        Some(subject),
                        json!({ "request": row.id, "systems": counts }),
                    );
                    self.store.commit(
                        rows.iter()
                            .cloned()
                            .map(steward_store::Op::PutRequestSystem)
                            .collect(),
                        vec![draft],
                    )?;
                    systems = rows;
                }
                Err(e) => {
                    let reason = e.to_string();
                    let attempts = systems.first().map_or(0, |s| s.attempts) + 1;
                    let give_up = now >= self.systems_deadline(row);
                    let rows: Vec<steward_store::RequestSystemRow> = databases
                        .iter()
                        .map(|d| {
                            let mut r = blank(d);
                            r.attempts = attempts;
                            r.reason = reason.clone();
                            r.next_ms = now.saturating_add(backoff_ms(attempts));
                            if give_up {
                                r.state = "failed".into();
                            }
                            r
                        })
                        .collect();
                    let action = if give_up {
                        "dataset.failed"
                    } else {
                        "dataset.retry"
                    };
                    let draft = self.act(
                        actor,
                        action,
                        Some(subject),
                        json!({ "request": row.id, "step": "plan", "attempts": attempts, "reason": reason }),
                    );
                    self.store.commit(
                        rows.iter()
                            .cloned()
                            .map(steward_store::Op::PutRequestSystem)
                            .collect(),
                        vec![draft],
                    )?;
                    systems = rows;
                }
            }
        }
        // Carry out what is planned and due, each system on its own.
        for s in systems.iter_mut() {
            if s.state != "planned" || s.next_ms > now {
                continue;
            }
            let plan: steward_datasets::erase::SystemPlan =
                self.open_system_row(s, "dataset-plan")?;
            let (action, detail) = match fanout.carry_out(plan) {
                Ok(done) => {
                    s.state = "done".into();
                    s.reason.clear();
                    s.result = serde_json::to_string(&done)
                        .map_err(|_| Error::Internal("a result does not serialise"))?;
                    (
                        "dataset.erase",
                        json!({ "request": row.id, "system": s.system, "deleted": done.deleted, "masked": done.masked }),
                    )
                }
                Err(e) => {
                    s.attempts += 1;
                    s.reason = e.to_string();
                    s.next_ms = now.saturating_add(backoff_ms(s.attempts));
                    let give_up = now >= self.systems_deadline(row);
                    if give_up {
                        s.state = "failed".into();
                    }
                    (
                        if give_up {
                            "dataset.failed"
                        } else {
                            "dataset.retry"
                        },
                        json!({ "request": row.id, "system": s.system, "step": "erase", "attempts": s.attempts, "reason": s.reason }),
                    )
                }
            };
            s.updated_ms = now;
            self.store.commit(
                vec![steward_store::Op::PutRequestSystem(s.clone())],
                vec![self.act(actor, action, Some(subject), detail)],
            )?;
        }
        if !systems.iter().chain(&externals).all(|s| settled(&s.state)) {
            return Ok(None);
        }
        let mut out = serde_json::Map::new();
        for s in systems.into_iter().chain(externals) {
            let value = if s.state == "done" {
                serde_json::from_str(&s.result).unwrap_or(json!({}))
            } else {
                json!({ "failed": s.reason })
            };
            out.insert(s.system, value);
        }
        Ok(Some(serde_json::Value::Object(out)))
    }

    /// An erasure asked of the API directly (`POST /v1/subjects/{id}/erasure`), in the
    /// provider's databases first and at once: walked, planned and carried out in each
    /// database now, audited as a request's would be (`dataset.plan`, `dataset.erase`). A
    /// database that cannot be reached fails the call with `dataset_unavailable` before
    /// Steward's own erasure; made again, it finds and does only what is left. `None` when no
    /// database is declared; refused (`conflict`) when an external system is.
    pub(crate) fn reach_erasure_now(
        &self,
        actor: &Actor,
        subject: SubjectId,
    ) -> Result<Option<serde_json::Value>, Error> {
        let Some(fanout) = self.datasets.get() else {
            return Ok(None);
        };
        // An external system is asked with the subject's identities, which this erasure
        // destroys at once: it goes through a request, which waits for the answers.
        let externals = self.external_systems();
        if !externals.is_empty() {
            return Err(Error::Conflict(format!(
                "external systems are declared ({}): they are asked with the subject's identities before Steward's copy goes, so erase through a `deletion` request",
                crate::error::quoted(externals.iter().map(|d| d.key.as_str()))
            )));
        }
        let ids = self.held_identities(fanout, subject)?;
        let found = fanout.access(ids).map_err(unavailable)?;
        let hash = |v: &str| self.keys.erasure_hash(v);
        let plans = steward_datasets::erase::plan(&fanout.catalogue, &found, &[], &hash)
            .map_err(unavailable)?;
        let counts: serde_json::Map<String, serde_json::Value> = plans
            .iter()
            .map(|p| (p.system.clone(), plan_counts(p)))
            .collect();
        self.store.commit(
            vec![],
            vec![self.act(
                actor,
                "dataset.plan",
                Some(subject),
                json!({ "request": null, "systems": counts }),
            )],
        )?;
        let mut out = serde_json::Map::new();
        for plan in plans {
            let system = plan.system.clone();
            let done = fanout.carry_out(plan).map_err(unavailable)?;
            self.store.commit(
                vec![],
                vec![self.act(
                    actor,
                    "dataset.erase",
                    Some(subject),
                    json!({ "request": null, "system": system, "deleted": done.deleted, "masked": done.masked }),
                )],
            )?;
            out.insert(
                system,
                serde_json::to_value(&done)
                    .map_err(|_| Error::Internal("a result does not serialise"))?,
            );
        }
        Ok(Some(serde_json::Value::Object(out)))
    }

    /// A closed account's erasure at the end of its grace period, in the provider's systems
    /// first (P28): moved on under its `account_cancellation` request as a deletion would be.
    /// An account closed without one (`POST /v1/subjects/{id}/close`) gets one now, completed
    /// as of its closure (opened by `system`, audited as `request.open`), to carry the
    /// erasure's state. `None` while a system is still to do (a later sweep tries again when
    /// due); `Some(systems)` to go on with Steward's own erasure — `Some(None)` when no
    /// dataset is declared.
    pub(crate) fn closure_reaches(
        &self,
        subject: SubjectId,
        closed_ms: i64,
    ) -> Result<Option<Option<serde_json::Value>>, Error> {
        if self.datasets.get().is_none() {
            return Ok(Some(None));
        }
        let actor = steward_actor();
        let found = self
            .store
            .requests_of(&subject.0)?
            .into_iter()
            .filter(|r| {
                r.kind == "account_cancellation"
                    && r.state == steward_store::RequestState::Completed
            })
            .max_by_key(|r| r.updated_ms);
        let row = match found {
            Some(row) => row,
            None => self.closure_request(&actor, subject, closed_ms)?,
        };
        Ok(self.reach_erasure(&actor, &row, &[])?.map(Some))
    }

    /// The `account_cancellation` request that carries the erasure of an account closed
    /// without one: completed as of `closed_ms`.
    fn closure_request(
        &self,
        actor: &Actor,
        subject: SubjectId,
        closed_ms: i64,
    ) -> Result<steward_store::RequestRow, Error> {
        let days = |d: u32| i64::from(d) * crate::DAY_MS;
        let erase_by = closed_ms.saturating_add(days(self.policy.deadlines.erasure_days));
        let row = steward_store::RequestRow {
            id: self.new_id("req")?,
            subject: subject.0,
            kind: "account_cancellation".into(),
            state: steward_store::RequestState::Completed,
            target: String::new(),
            received_ms: closed_ms,
            due_ms: closed_ms.saturating_add(days(self.policy.deadlines.request_days)),
            updated_ms: closed_ms,
            verification: String::new(),
            outcome: json!({ "closed": true, "erase_by": crate::clock::rfc3339(erase_by), "opened_by": "closure" })
                .to_string(),
            sealed_text: Vec::new(),
        };
        let step = |state| {
            steward_store::Op::RequestStep(steward_store::RequestStepRow {
                subject: subject.0,
                request: row.id.clone(),
                state,
                at_ms: closed_ms,
                actor: actor.id.clone(),
            })
        };
        self.store.commit(
            vec![
                steward_store::Op::PutRequest(row.clone()),
                step(steward_store::RequestState::Received),
                step(steward_store::RequestState::Completed),
            ],
            vec![self.act(
                actor,
                "request.open",
                Some(subject),
                json!({ "request": row.id, "kind": row.kind, "state": "completed", "reason": "an account closed without a request: its erasure in the provider's systems" }),
            )],
        )?;
        Ok(row)
    }

    /// When the provider's systems are given up on request `row`'s erasure: its deadline; for
    /// a closed account's erasure (its `account_cancellation` request, completed at closure),
    /// a request's time after the grace period ends.
    pub(crate) fn systems_deadline(&self, row: &steward_store::RequestRow) -> i64 {
        if carries_closure(row) {
            let days = |d: u32| i64::from(d) * crate::DAY_MS;
            let erasure = row.updated_ms.saturating_add(days(
                self.policy.deadlines.erasure_days + self.policy.deadlines.request_days,
            ));
            row.due_ms.max(erasure)
        } else {
            row.due_ms
        }
    }

    /// Tries again every request whose erasure waits on one of the provider's databases and
    /// is due (the server runs it on every dispatcher pass; `steward datasets advance` from
    /// the command line): reminds external systems that have not answered (or gives them up
    /// at the request's deadline), plans what could not be planned, carries out what is
    /// planned, and completes each deletion whose systems are all settled, as Steward
    /// (`system`). A
    /// request that fails is logged and left for the next pass. Returns how many requests
    /// were completed.
    pub fn advance_datasets(&self) -> Result<usize, Error> {
        if self.datasets.get().is_none() {
            return Ok(0);
        }
        let actor = steward_actor();
        let mut completed = 0;
        for (_, request) in self.store.systems_due(self.clock.now_ms())? {
            let Some(row) = self.store.request(&request)? else {
                continue;
            };
            // External systems not answering are reminded, or given up at the deadline; an
            // access request waits for staff to complete it, a closed account for the sweep.
            if let Err(e) = self.chase_externals(&actor, &row) {
                tracing::warn!(request = %request, code = e.code().as_str(), error = %e, "an external system could not be reminded; will retry");
                continue;
            }
            if !row.state.is_open() || !row.kind.starts_with("deletion") {
                continue;
            }
            // One request's failure (another server completed it first, a store error) does
            // not hold up the others: it is logged and tried again on the next pass.
            match self.complete_row(&actor, row, &crate::Closing::default()) {
                Ok(done) if done.request.state == "completed" => completed += 1,
                Ok(_) => {}
                Err(Error::RequestState { .. }) => {}
                Err(e) => {
                    tracing::warn!(request = %request, code = e.code().as_str(), error = %e, "an erasure waiting on the provider's databases could not move on; will retry");
                }
            }
        }
        Ok(completed)
    }
}

impl Vault {
    /// A correction reaching the provider's databases (P24): every field a dataset marks
    /// `correctable` that holds a corrected category is set to the new value in the
    /// subject's rows, found by a walk with the values Steward holds now (before the
    /// correction replaces them). Each database's change is one transaction, audited as
    /// `dataset.correct` (rows changed per table, never a value); the same correction made
    /// again writes the same values. A database that cannot be reached fails the completion
    /// with `dataset_unavailable`, the request left as it was.
    pub(crate) fn reach_correction(
        &self,
        actor: &Actor,
        subject: SubjectId,
        request: &str,
        corrections: &[(&str, &str)],
    ) -> Result<(Vec<steward_audit::Draft>, serde_json::Value), Error> {
        let Some(fanout) = self.datasets.get() else {
            return Ok((Vec::new(), json!({})));
        };
        let ids = self.held_identities(fanout, subject)?;
        let found = fanout.access(ids).map_err(unavailable)?;
        let corrections: Vec<(String, String)> = corrections
            .iter()
            .map(|(c, v)| (c.to_string(), v.to_string()))
            .collect();
        let plans =
            steward_datasets::erase::correction_plan(&fanout.catalogue, &found, &corrections);
        let mut drafts = Vec::new();
        let mut out = serde_json::Map::new();
        for plan in plans {
            if plan.steps.is_empty() {
                continue;
            }
            let system = plan.system.clone();
            let done = fanout.carry_out(plan).map_err(unavailable)?;
            drafts.push(self.act(
                actor,
                "dataset.correct",
                Some(subject),
                json!({ "request": request, "system": system, "masked": done.masked }),
            ));
            out.insert(system, json!({ "corrected": done.masked }));
        }
        Ok((drafts, serde_json::Value::Object(out)))
    }
}

/// What a plan will do, in counts: rows to delete and to change per table.
fn plan_counts(plan: &steward_datasets::erase::SystemPlan) -> serde_json::Value {
    use steward_datasets::erase::Step;
    let mut delete = serde_json::Map::new();
    let mut mask = serde_json::Map::new();
    for step in &plan.steps {
        match step {
            Step::Delete {
                collection, rows, ..
            } => {
                delete.insert(collection.clone(), json!(rows.len()));
            }
            Step::Update {
                collection, rows, ..
            } => {
                mask.insert(collection.clone(), json!(rows.len()));
            }
        }
    }
    json!({ "delete": delete, "mask": mask })
}

/// A datasets failure as the domain's error: the system named, never a value.
pub(crate) fn unavailable(e: steward_datasets::live::Error) -> Error {
    match e {
        steward_datasets::live::Error::System { system, reason } => {
            Error::DatasetUnavailable { system, reason }
        }
        other => Error::DatasetUnavailable {
            system: "datasets".into(),
            reason: other.to_string(),
        },
    }
}
