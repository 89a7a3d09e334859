//! `steward datasets`: the provider's other databases (issue 16, `docs/datasets.md`).

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Subcommand;
use steward_datasets::live::{self, Connection, Kind};

use crate::cli::{CheckFailed, Settings, load_policy, read};
use crate::out::say;

#[derive(Subcommand)]
pub(crate) enum DatasetsCommand {
    /// Check dataset files against the policy and each other, and each dataset that has a
    /// connection in the settings against its live schema; every error is shown with
    /// file:line:column (exit 3).
    Check {
        #[command(flatten)]
        settings: Settings,
        /// Dataset files [default: the settings' `datasets.files`].
        files: Vec<PathBuf>,
        /// Check against the policy and each other only: reach no database.
        #[arg(long)]
        offline: bool,
    },
    /// Move on every erasure waiting on the provider's databases whose next attempt is due,
    /// remind external systems that have not answered (or give them up at the deadline), and
    /// complete the deletions whose systems are all settled (what `serve` does on each
    /// dispatcher pass).
    Advance {
        #[command(flatten)]
        settings: Settings,
    },
}

pub(crate) fn datasets(cmd: DatasetsCommand) -> Result<()> {
    match cmd {
        DatasetsCommand::Check {
            settings,
            files,
            offline,
        } => check(&settings, files, offline),
        DatasetsCommand::Advance { settings } => {
            let vault = crate::cli::open_vault(&settings)?;
            if vault.datasets().is_none() {
                return Err(anyhow!(
                    "no dataset files in the settings (`[datasets] files`, $STEWARD_DATASET_FILES)"
                ));
            }
            let completed = vault.advance_datasets()?;
            say!("{completed} requests completed");
            Ok(())
        }
    }
}

/// A connection as the settings give it.
fn connection(c: &steward_server::config::DatasetConnection) -> Connection {
    Connection {
        url: c.url.clone(),
        schema: c.schema.clone(),
    }
}

/// The settings' dataset files read and checked against `policy`, with their connections:
/// `None` when the settings name no files. Problems in the files stop everything (exit 3);
/// no database is reached until a request needs it.
pub(crate) fn fanout(
    config: &steward_server::Config,
    policy: &steward_policy::Policy,
) -> Result<Option<std::sync::Arc<steward_datasets::run::Fanout>>> {
    if config.datasets.files.is_empty() {
        return Ok(None);
    }
    let mut texts = Vec::new();
    for f in &config.datasets.files {
        texts.push((f.display().to_string(), read(f)?));
    }
    let (catalogue, problems) = steward_datasets::load(&texts, policy);
    if !problems.is_empty() {
        let n = problems.len();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(CheckFailed(format!(
            "{}\n{n} error{} found in the dataset files (`steward datasets check`)",
            text.join("\n"),
            if n == 1 { "" } else { "s" }
        ))
        .into());
    }
    let connections = config
        .datasets
        .connections
        .iter()
        .map(|(k, c)| (k.clone(), connection(c)))
        .collect();
    let fanout = steward_datasets::run::Fanout::new(catalogue, connections)
        .map_err(|e| anyhow!("datasets: {e}"))?;
    Ok(Some(std::sync::Arc::new(fanout)))
}

fn check(settings: &Settings, files: Vec<PathBuf>, offline: bool) -> Result<()> {
    let config = settings.load()?;
    let files = if files.is_empty() {
        config.datasets.files.clone()
    } else {
        files
    };
    if files.is_empty() {
        return Err(anyhow!(
            "no dataset files: name them, or list them in the settings' `[datasets] files` ($STEWARD_DATASET_FILES)"
        ));
    }
    let policy = load_policy(config.policy.as_deref())?;
    let mut texts = Vec::new();
    for f in &files {
        texts.push((f.display().to_string(), read(f)?));
    }
    let (catalogue, mut problems) = steward_datasets::load(&texts, &policy);
    let mut lines = Vec::new();
    if !offline {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        for (i, d) in catalogue.datasets.iter().enumerate() {
            if d.external.is_some() {
                let endpoint = config
                    .datasets
                    .connections
                    .get(&d.key)
                    .and_then(|c| connection(c).endpoint().map(str::to_string));
                lines.push(match endpoint {
                    Some(e) => format!("  {}: external, asked by webhook through endpoint {e}", d.key),
                    None => format!(
                        "  {}: external, asked by webhook: no endpoint in the settings yet ([datasets.connections.{}] url = \"webhook:whe_…\" or $STEWARD_DATASET_{}_URL)",
                        d.key,
                        d.key,
                        d.key.to_ascii_uppercase()
                    ),
                });
                continue;
            }
            let Some(c) = config.datasets.connections.get(&d.key) else {
                lines.push(format!(
                    "  {}: no connection in the settings ([datasets.connections.{}] or $STEWARD_DATASET_{}_URL): not checked against a database",
                    d.key,
                    d.key,
                    d.key.to_ascii_uppercase()
                ));
                continue;
            };
            let connection = connection(c);
            let kind = connection.kind()?;
            let schema = runtime
                .block_on(live::introspect(&connection))
                .map_err(|e| anyhow!("dataset `{}`: {e}", d.key))?;
            let found = live::check(&catalogue, i, kind, &schema);
            lines.push(format!(
                "  {}: checked against its {} schema ({} tables there), {}",
                d.key,
                match kind {
                    Kind::Postgres => "PostgreSQL",
                    Kind::MySql => "MySQL/MariaDB",
                    Kind::Sqlite => "SQLite",
                },
                schema.tables.len(),
                if found.is_empty() {
                    "ok".to_string()
                } else {
                    format!("{} problems", found.len())
                }
            ));
            problems.extend(found);
        }
    }
    if !problems.is_empty() {
        problems.sort_by(|a, b| {
            (&a.file, a.diagnostic.line, a.diagnostic.column).cmp(&(
                &b.file,
                b.diagnostic.line,
                b.diagnostic.column,
            ))
        });
        let n = problems.len();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(CheckFailed(format!(
            "{}\n{n} error{} found",
            text.join("\n"),
            if n == 1 { "" } else { "s" }
        ))
        .into());
    }
    let collections: usize = catalogue.datasets.iter().map(|d| d.collections.len()).sum();
    say!(
        "{}: ok — {} datasets, {} collections, {} references",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        catalogue.datasets.len(),
        collections,
        catalogue.edges.len()
    );
    for line in lines {
        say!("{line}");
    }
    Ok(())
}
