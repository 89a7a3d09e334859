//! `steward incidents` and `steward transfers`: the incident procedure (P22) and transfers to
//! a successor (P14) from the command line, over the same vault operations as the API.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use clap::Subcommand;
use steward_core::Vault;

use crate::cli::{Opening, Settings, open_configured, read};
use crate::out::{say, say_raw};

#[derive(Subcommand)]
pub(crate) enum IncidentCommand {
    /// Open an incident from a JSON file (the body of `POST /v1/incidents`): its affected set
    /// is computed from the record index, without decrypting anything.
    Open {
        #[command(flatten)]
        store: Settings,
        /// The incident (JSON).
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every incident with its affected count and its reports' clocks.
    List {
        #[command(flatten)]
        store: Settings,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One incident, as JSON.
    Show {
        #[command(flatten)]
        store: Settings,
        /// Its id.
        id: String,
    },
    /// The report (PIPL art. 57's items, counts by category and region), as text or JSON.
    Report {
        #[command(flatten)]
        store: Settings,
        /// Its id.
        id: String,
        /// `zh-CN` or `en` [default: the policy's language].
        #[arg(long)]
        lang: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Log a step on the timeline: containment, remediation, note, contained or handled.
    Step {
        #[command(flatten)]
        store: Settings,
        /// Its id.
        id: String,
        /// The kind of step.
        kind: String,
        /// What was done.
        text: String,
    },
    /// Record a report filed with an authority: the regime (`cn`) and the part (initial,
    /// update, final).
    File {
        #[command(flatten)]
        store: Settings,
        /// Its id.
        id: String,
        /// The policy's name for the report.
        regime: String,
        /// `initial`, `update` or `final`.
        part: String,
    },
    /// Notify every affected subject (mail, push webhook, public notice), queuing the mails
    /// now with a progress bar; resumes where an interrupted run stopped.
    Notify {
        #[command(flatten)]
        store: Settings,
        /// Its id.
        id: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum TransferCommand {
    /// Plan a transfer from a JSON file (the body of `POST /v1/transfers`); the subjects are
    /// told through the outbox.
    Plan {
        #[command(flatten)]
        store: Settings,
        /// The plan (JSON).
        file: PathBuf,
    },
    /// Every transfer plan.
    List {
        #[command(flatten)]
        store: Settings,
    },
    /// Queue a plan's notices now, with a progress bar (the server does it too).
    Notify {
        #[command(flatten)]
        store: Settings,
        /// Its id.
        id: String,
    },
    /// Run a transfer on or after its date: writes the encrypted bundle and prints its key.
    Run {
        #[command(flatten)]
        store: Settings,
        /// Its id.
        id: String,
        /// Where to write the bundle.
        #[arg(long)]
        out: PathBuf,
    },
}

fn json_file<T: serde::de::DeserializeOwned>(file: &std::path::Path) -> Result<T> {
    serde_json::from_str(&read(file)?).map_err(|e| anyhow!("`{}`: {e}", file.display()))
}

fn pretty<T: serde::Serialize>(v: &T) -> Result<()> {
    say!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn summary(i: &steward_core::incidents::Incident) {
    say!(
        "{}  {:<16} {:<10} {} affected  {}",
        i.id,
        i.grade,
        i.state,
        i.affected.subjects,
        i.title
    );
    for c in &i.clocks {
        say!(
            "    {} report to {}: due {} ({})",
            c.part,
            c.authority,
            c.due_at.as_deref().unwrap_or("once handled"),
            c.status
        );
    }
}

/// Runs a notice run to its end with a bar: `step` returns (position, total, done).
fn with_bar(
    step: impl Fn() -> Result<Option<(u64, u64, bool)>, steward_core::Error>,
) -> Result<u64> {
    let bar = indicatif::ProgressBar::new(0);
    loop {
        match step()? {
            None => {
                bar.finish_and_clear();
                return Err(anyhow!("nothing to notify: start it first"));
            }
            Some((position, total, done)) => {
                bar.set_length(total);
                bar.set_position(position);
                if done {
                    bar.finish_and_clear();
                    return Ok(total);
                }
            }
        }
    }
}

pub(crate) fn incidents(cmd: IncidentCommand) -> Result<()> {
    let open = |s: &Settings| -> Result<Vault> { open_configured(&s.load()?, Opening::Existing) };
    match cmd {
        IncidentCommand::Open { store, file, json } => {
            let new = json_file(&file)?;
            let vault = open(&store)?;
            // One query per category over every subject: a spinner while it runs.
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message("computing the affected set from the record index");
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            let i = vault.open_incident(None, &new);
            bar.finish_and_clear();
            let i = i?;
            if json {
                return pretty(&i);
            }
            summary(&i);
        }
        IncidentCommand::List { store, json } => {
            let all = open(&store)?.incidents(None)?;
            if json {
                return pretty(&all);
            }
            all.iter().for_each(summary);
        }
        IncidentCommand::Show { store, id } => pretty(&open(&store)?.incident(None, &id)?)?,
        IncidentCommand::Report {
            store,
            id,
            lang,
            json,
        } => {
            let vault = open(&store)?;
            let r = vault.incident_report(None, &id, lang.as_deref())?;
            if json {
                return pretty(&r);
            }
            say_raw!("{}", vault.report_text(&r)?);
        }
        IncidentCommand::Step {
            store,
            id,
            kind,
            text,
        } => summary(&open(&store)?.incident_step(None, &id, &kind, &text)?),
        IncidentCommand::File {
            store,
            id,
            regime,
            part,
        } => summary(&open(&store)?.file_report(None, &id, &regime, &part)?),
        IncidentCommand::Notify { store, id } => {
            let vault = open(&store)?;
            // Started here, or going on with a run started before.
            match vault.notify_incident(None, &id) {
                Ok(_) | Err(steward_core::Error::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            let n = with_bar(|| vault.incident_notice_step(&id, vault.notice_batch()))?;
            say!("{n} affected subjects handled for {id}; the outbox delivers their mails");
        }
    }
    Ok(())
}

pub(crate) fn transfers(cmd: TransferCommand) -> Result<()> {
    let open = |s: &Settings| -> Result<Vault> { open_configured(&s.load()?, Opening::Existing) };
    match cmd {
        TransferCommand::Plan { store, file } => {
            let t = open(&store)?.plan_transfer(None, &json_file(&file)?)?;
            pretty(&t)?;
        }
        TransferCommand::List { store } => pretty(&open(&store)?.transfers(None)?)?,
        TransferCommand::Notify { store, id } => {
            let vault = open(&store)?;
            let n = with_bar(|| vault.transfer_notice_step(&id, vault.notice_batch()))?;
            say!("{n} subjects handled for {id}; the outbox delivers their mails");
        }
        TransferCommand::Run { store, id, out } => {
            let done = open(&store)?.run_transfer(None, &id)?;
            use base64::Engine as _;
            let bundle = base64::engine::general_purpose::STANDARD
                .decode(&done.bundle)
                .context("the bundle")?;
            std::fs::write(&out, bundle).with_context(|| format!("writing {}", out.display()))?;
            pretty(&done.transfer)?;
            say!(
                "bundle written to {}; its key (AES-256-GCM, base64), shown this once: {}",
                out.display(),
                done.key
            );
        }
    }
    Ok(())
}
