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

    /// The values the subject's identities are looked up by: their id, and every value of
    /// each category a dataset finds rows by, from the export's records.
    fn identities(fanout: &Fanout, subject: SubjectId, export: &Export) -> Identities {
        let mut ids = Identities::new();
        for d in &fanout.catalogue.datasets {
            for c in &d.collections {
                for f in &c.fields {
                    let Some((identity, _)) = &f.identity else {
                        continue;
                    };
                    if ids.contains_key(identity) {
                        continue;
                    }
                    let values = match identity {
                        Identity::SubjectId => vec![subject.to_string()],
                        Identity::Category(category) => export
                            .records
                            .iter()
                            .filter(|r| &r.category == category)
                            .map(|r| r.value.clone())
                            .collect(),
                    };
                    ids.insert(identity.clone(), values);
                }
            }
        }
        ids
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
        let ids = Vault::identities(fanout, subject, export);
        let found = fanout.access(ids).map_err(|e| match e {
            steward_datasets::live::Error::System { system, reason } => {
                Error::DatasetUnavailable { system, reason }
            }
            other => Error::DatasetUnavailable {
                system: "datasets".into(),
                reason: other.to_string(),
            },
        })?;
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
                    purposes: self
                        .policy
                        .purposes
                        .iter()
                        .filter(|p| {
                            self.policy
                                .category_id(&category)
                                .is_some_and(|id| p.reads.contains(id.index()))
                        })
                        .map(|p| p.name.clone())
                        .collect(),
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
