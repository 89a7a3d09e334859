//! Erasure in the provider's databases (P24, P28): a plan made from what a walk found —
//! which rows each table deletes, which fields it sets to what — then carried out per
//! database in one transaction, children before parents. A plan names every value it writes
//! (a hash is computed when the plan is made), so carrying it out again after a crash, or
//! after the database came back, does the same and no more.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::Catalogue;
use crate::live::{Error, Kind};
use crate::model::Erase;
use crate::run::{Fanout, Found, quote, quote_my};

/// One statement's worth of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Step {
    /// Delete these rows.
    Delete {
        /// The table.
        collection: String,
        /// Its key's columns.
        key: Vec<String>,
        /// Each row's key values.
        rows: Vec<Vec<String>>,
    },
    /// Set these fields of these rows to these values (`None`: NULL).
    Update {
        /// The table.
        collection: String,
        /// Its key's columns.
        key: Vec<String>,
        /// The fields set, in this order.
        fields: Vec<String>,
        /// Each row's key values, and the values its fields are set to.
        rows: Vec<(Vec<String>, Vec<Option<String>>)>,
    },
}

/// What erasure does in one database.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemPlan {
    /// The dataset's key.
    pub system: String,
    /// In order: children before parents.
    pub steps: Vec<Step>,
}

/// What carrying out a plan did: rows deleted and rows changed, per table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// Rows deleted, per table.
    pub deleted: BTreeMap<String, u64>,
    /// Rows whose fields were set, per table.
    pub masked: BTreeMap<String, u64>,
}

/// The plan for every database dataset (in file order; an empty plan where nothing was
/// found): rows of a collection that deletes rows are deleted, unless one of its fields holds
/// a `held` category, in which case its other PI fields are cleared; elsewhere each PI field
/// is set as its `erase` says, fields of held categories left as they are. A field holding
/// no PI (a reference cleared with `erase: null`) is set only where a collection it refers to
/// has its rows deleted by the plan. `hash` turns a value into what `erase: hash` writes.
pub fn plan(
    catalogue: &Catalogue,
    found: &Found,
    held: &[String],
    hash: &dyn Fn(&str) -> String,
) -> Result<Vec<SystemPlan>, Error> {
    let mut plans = Vec::new();
    for system in &found.systems {
        let Some(d) = catalogue.datasets.get(system.dataset) else {
            continue;
        };
        let mut plan = SystemPlan {
            system: d.key.clone(),
            steps: Vec::new(),
        };
        let is_held = |f: &crate::Field| f.categories.iter().any(|(c, _)| held.contains(c));
        // The collections whose rows this plan deletes.
        let deleted: Vec<usize> = system
            .collections
            .iter()
            .filter(|f| !f.rows.is_empty())
            .filter_map(|f| {
                let c = d.collections.get(f.collection)?;
                (c.delete_rows.is_some() && !c.fields.iter().any(is_held)).then_some(f.collection)
            })
            .collect();
        for ci in catalogue.erase_order(system.dataset) {
            let (Some(c), Some(rows)) = (
                d.collections.get(ci),
                system
                    .collections
                    .iter()
                    .find(|f| f.collection == ci)
                    .map(|f| &f.rows),
            ) else {
                continue;
            };
            let key = c.key_fields();
            if key.is_empty() {
                return Err(Error::Settings(format!(
                    "collection `{}.{}` declares no primary key to address rows by",
                    d.key, c.name
                )));
            }
            let key_names = c.names(&key);
            let key_of = |row: &Vec<Option<String>>| key_of(&key, row);
            let holds_some = c.fields.iter().any(is_held);
            if c.delete_rows.is_some() && !holds_some {
                let keys: Vec<Vec<String>> = rows.iter().filter_map(key_of).collect();
                if !keys.is_empty() {
                    plan.steps.push(Step::Delete {
                        collection: c.name.clone(),
                        key: key_names,
                        rows: keys,
                    });
                }
                continue;
            }
            // A reference is cleared only where what it refers to goes.
            let clears = |fi: usize| {
                catalogue.edges.iter().any(|e| {
                    e.from == (system.dataset, ci)
                        && e.field == fi
                        && e.to.0 == system.dataset
                        && deleted.contains(&e.to.1)
                })
            };
            // What erasure does to a field; in a row kept for a hold, its other PI is cleared.
            let rule = |f: &crate::Field| {
                if c.delete_rows.is_some() && f.is_pi() {
                    Erase::Null
                } else {
                    f.erase.clone()
                }
            };
            // Masked: each field erasure touches, but those of held categories.
            let touched: Vec<usize> = c
                .fields
                .iter()
                .enumerate()
                .filter(|(fi, f)| f.is_pi() || clears(*fi))
                .filter(|(_, f)| rule(f) != Erase::Keep && !f.primary_key && !is_held(f))
                .map(|(i, _)| i)
                .collect();
            if touched.is_empty() {
                continue;
            }
            let mut changes = Vec::new();
            for row in rows {
                let Some(k) = key_of(row) else { continue };
                let values: Vec<Option<String>> = touched
                    .iter()
                    .map(|&i| {
                        let f = c.fields.get(i)?;
                        let current = row.get(i).cloned().flatten();
                        match rule(f) {
                            Erase::Fixed(v) => Some(v),
                            Erase::Hash => current.map(|v| hash(&v)),
                            Erase::Null | Erase::DeleteRow | Erase::Keep => None,
                        }
                    })
                    .collect();
                changes.push((k, values));
            }
            if !changes.is_empty() {
                plan.steps.push(Step::Update {
                    collection: c.name.clone(),
                    key: key_names,
                    fields: c.names(&touched),
                    rows: changes,
                });
            }
        }
        plans.push(plan);
    }
    Ok(plans)
}

/// A row's primary key, from the fields at `key`: `None` where a part of it is NULL.
fn key_of(key: &[usize], row: &[Option<String>]) -> Option<Vec<String>> {
    key.iter().map(|&i| row.get(i).cloned().flatten()).collect()
}

/// What a correction sets (P24): in every row found, each field the dataset marks
/// `correctable` that holds one of the corrected categories, to its new value. A field
/// holding several of them is left as it is: which value it should take is not for Steward to
/// guess.
pub fn correction_plan(
    catalogue: &Catalogue,
    found: &Found,
    corrections: &[(String, String)],
) -> Vec<SystemPlan> {
    let mut plans = Vec::new();
    for system in &found.systems {
        let Some(d) = catalogue.datasets.get(system.dataset) else {
            continue;
        };
        let mut plan = SystemPlan {
            system: d.key.clone(),
            steps: Vec::new(),
        };
        for f in &system.collections {
            let Some(c) = d.collections.get(f.collection) else {
                continue;
            };
            let key = c.key_fields();
            // (field index, new value) for each correctable field one correction names.
            let sets: Vec<(usize, &String)> = c
                .fields
                .iter()
                .enumerate()
                .filter(|(_, field)| field.correctable)
                .filter_map(|(i, field)| {
                    let named: Vec<&String> = corrections
                        .iter()
                        .filter(|(category, _)| field.categories.iter().any(|(c, _)| c == category))
                        .map(|(_, value)| value)
                        .collect();
                    match named.as_slice() {
                        [value] => Some((i, *value)),
                        _ => None,
                    }
                })
                .collect();
            if key.is_empty() || sets.is_empty() {
                continue;
            }
            let values: Vec<Option<String>> =
                sets.iter().map(|(_, v)| Some((*v).clone())).collect();
            let rows: Vec<(Vec<String>, Vec<Option<String>>)> = f
                .rows
                .iter()
                .filter_map(|row| Some((key_of(&key, row)?, values.clone())))
                .collect();
            if rows.is_empty() {
                continue;
            }
            let fields: Vec<usize> = sets.iter().map(|(i, _)| *i).collect();
            plan.steps.push(Step::Update {
                collection: c.name.clone(),
                key: c.names(&key),
                fields: c.names(&fields),
                rows,
            });
        }
        plans.push(plan);
    }
    plans
}

type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// A plan's statements on a PostgreSQL connection inside its transaction. Rows are addressed
/// by their key, cast to its column's type so its index is used; with a one-column key, the
/// rows a step treats alike (deleted, or set to the same values) go in one statement.
async fn pg_steps(
    conn: &mut crate::run::PgConn,
    pg_schema: &str,
    schema: &crate::live::Schema,
    plan: &SystemPlan,
    done: &mut Done,
) -> Result<(), Error> {
    for step in &plan.steps {
        let (collection, key) = match step {
            Step::Delete {
                collection, key, ..
            }
            | Step::Update {
                collection, key, ..
            } => (collection, key),
        };
        let table = schema.tables.get(collection).ok_or_else(|| {
            Error::Database(format!("table `{collection}` is not in the database"))
        })?;
        let cast = |column: &str| {
            table
                .columns
                .get(column)
                .filter(|c| !c.udt.is_empty())
                .map_or_else(|| "text".to_string(), |c| quote(&c.udt))
        };
        let target = format!("{}.{}", quote(pg_schema), quote(collection));
        // The rows, by key: `= ANY` for a one-column key, each row on its own otherwise.
        let condition = |first: usize| -> String {
            match key.as_slice() {
                [k] => format!("{} = ANY(${first}::text[]::{}[])", quote(k), cast(k)),
                _ => key
                    .iter()
                    .enumerate()
                    .map(|(i, k)| format!("{} = ${}::text::{}", quote(k), first + i, cast(k)))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            }
        };
        let single = key.len() == 1;
        match step {
            Step::Delete { rows, .. } => {
                let st = conn
                    .statement(&format!("DELETE FROM {target} WHERE {}", condition(1)))
                    .await?;
                let mut n = 0;
                if single {
                    let keys: Vec<&str> = rows
                        .iter()
                        .filter_map(|r| r.first().map(String::as_str))
                        .collect();
                    n += conn.client.execute(&st, &[&keys]).await?;
                } else {
                    for r in rows {
                        let params: Vec<Param<'_>> = r.iter().map(|v| v as Param<'_>).collect();
                        n += conn.client.execute(&st, &params).await?;
                    }
                }
                *done.deleted.entry(collection.clone()).or_default() += n;
            }
            Step::Update { fields, rows, .. } => {
                let sets: Vec<String> = fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| format!("{} = ${}::text::{}", quote(f), i + 1, cast(f)))
                    .collect();
                let st = conn
                    .statement(&format!(
                        "UPDATE {target} SET {} WHERE {}",
                        sets.join(", "),
                        condition(fields.len() + 1)
                    ))
                    .await?;
                let mut n = 0;
                if single {
                    // Rows set to the same values, together.
                    let mut groups: BTreeMap<&Vec<Option<String>>, Vec<&str>> = BTreeMap::new();
                    for (k, values) in rows {
                        if let Some(k) = k.first() {
                            groups.entry(values).or_default().push(k);
                        }
                    }
                    for (values, keys) in groups {
                        let mut params: Vec<Param<'_>> =
                            values.iter().map(|v| v as Param<'_>).collect();
                        params.push(&keys);
                        n += conn.client.execute(&st, &params).await?;
                    }
                } else {
                    for (k, values) in rows {
                        let mut params: Vec<Param<'_>> =
                            values.iter().map(|v| v as Param<'_>).collect();
                        params.extend(k.iter().map(|v| v as Param<'_>));
                        n += conn.client.execute(&st, &params).await?;
                    }
                }
                *done.masked.entry(collection.clone()).or_default() += n;
            }
        }
    }
    Ok(())
}

impl Fanout {
    /// Carries out `plan` in its database, in one transaction: all of it or none.
    pub fn carry_out(self: &std::sync::Arc<Self>, plan: SystemPlan) -> Result<Done, Error> {
        let me = std::sync::Arc::clone(self);
        let system = plan.system.clone();
        self.block_on(async move { me.carry_out_async(&plan).await })?
            .map_err(|e| e.in_system(&system))
    }

    async fn carry_out_async(&self, plan: &SystemPlan) -> Result<Done, Error> {
        let d = self
            .catalogue
            .datasets
            .iter()
            .position(|d| d.key == plan.system)
            .ok_or_else(|| Error::Settings(format!("no dataset `{}`", plan.system)))?;
        let schema = self.schema(d).await?;
        let connection = self.connection_of(d)?;
        let mut done = Done::default();
        match connection.kind()? {
            Kind::Postgres => {
                let mut conn = self.pg_take(d).await?;
                conn.client.batch_execute("BEGIN").await?;
                match pg_steps(&mut conn, connection.pg_schema(), &schema, plan, &mut done).await {
                    Ok(()) => {
                        conn.client.batch_execute("COMMIT").await?;
                        self.pg_give(d, conn);
                    }
                    Err(e) => {
                        // The connection is let go: whatever state it is in goes with it.
                        let _ = conn.client.batch_execute("ROLLBACK").await;
                        return Err(e);
                    }
                }
            }
            Kind::Sqlite => {
                let mut conn = connection.sqlite_open()?;
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                for step in &plan.steps {
                    let (collection, key) = match step {
                        Step::Delete {
                            collection, key, ..
                        }
                        | Step::Update {
                            collection, key, ..
                        } => (collection, key),
                    };
                    let condition: Vec<String> =
                        key.iter().map(|k| format!("{} = ?", quote(k))).collect();
                    match step {
                        Step::Delete { rows, .. } => {
                            let sql = format!(
                                "DELETE FROM {} WHERE {}",
                                quote(collection),
                                condition.join(" AND ")
                            );
                            let mut st = tx.prepare(&sql)?;
                            let mut n = 0;
                            for r in rows {
                                n += st.execute(rusqlite::params_from_iter(r.iter()))?;
                            }
                            *done.deleted.entry(collection.clone()).or_default() += n as u64;
                        }
                        Step::Update { fields, rows, .. } => {
                            let sets: Vec<String> =
                                fields.iter().map(|f| format!("{} = ?", quote(f))).collect();
                            let sql = format!(
                                "UPDATE {} SET {} WHERE {}",
                                quote(collection),
                                sets.join(", "),
                                condition.join(" AND ")
                            );
                            let mut st = tx.prepare(&sql)?;
                            let mut n = 0;
                            for (k, values) in rows {
                                let params: Vec<Option<&str>> = values
                                    .iter()
                                    .map(|v| v.as_deref())
                                    .chain(k.iter().map(|v| Some(v.as_str())))
                                    .collect();
                                n += st.execute(rusqlite::params_from_iter(params))?;
                            }
                            *done.masked.entry(collection.clone()).or_default() += n as u64;
                        }
                    }
                }
                tx.commit()?;
            }
            Kind::MySql => {
                use mysql_async::prelude::Queryable;
                let pool = crate::live::mysql_pool(connection)?;
                let mut conn = pool.get_conn().await?;
                let mut tx = conn
                    .start_transaction(mysql_async::TxOpts::default())
                    .await?;
                for step in &plan.steps {
                    match step {
                        Step::Delete {
                            collection,
                            key,
                            rows,
                        } => {
                            let condition: Vec<String> =
                                key.iter().map(|k| format!("{} = ?", quote_my(k))).collect();
                            let sql = format!(
                                "DELETE FROM {} WHERE {}",
                                quote_my(collection),
                                condition.join(" AND ")
                            );
                            let mut n = 0;
                            for r in rows {
                                tx.exec_drop(&sql, r.clone()).await?;
                                n += tx.affected_rows();
                            }
                            *done.deleted.entry(collection.clone()).or_default() += n;
                        }
                        Step::Update {
                            collection,
                            key,
                            fields,
                            rows,
                        } => {
                            let sets: Vec<String> = fields
                                .iter()
                                .map(|f| format!("{} = ?", quote_my(f)))
                                .collect();
                            let condition: Vec<String> =
                                key.iter().map(|k| format!("{} = ?", quote_my(k))).collect();
                            let sql = format!(
                                "UPDATE {} SET {} WHERE {}",
                                quote_my(collection),
                                sets.join(", "),
                                condition.join(" AND ")
                            );
                            let mut n = 0;
                            for (k, values) in rows {
                                let mut params: Vec<mysql_async::Value> = values
                                    .iter()
                                    .map(|v| match v {
                                        Some(v) => mysql_async::Value::from(v.as_str()),
                                        None => mysql_async::Value::NULL,
                                    })
                                    .collect();
                                params
                                    .extend(k.iter().map(|v| mysql_async::Value::from(v.as_str())));
                                tx.exec_drop(&sql, params).await?;
                                n += tx.affected_rows();
                            }
                            *done.masked.entry(collection.clone()).or_default() += n;
                        }
                    }
                }
                tx.commit().await?;
                drop(conn);
                pool.disconnect().await?;
            }
        }
        Ok(done)
    }
}
