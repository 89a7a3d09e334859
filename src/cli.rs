//! Command-line parsing and the small commands; `demo` and `bench` have modules of their own.

use crate::out::{say, say_raw};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Parser, Subcommand};
use steward_core::clock::SystemClock;
use steward_core::evidence::{self, parse_public_key};

use crate::demo;
use steward_bench::{bench, loadtest};
use steward_core::{SignedDocument, Vault, files};
use steward_crypto::MasterKey;
use steward_policy::Policy;

/// Steward keeps a privacy statement's promises in software.
#[derive(Parser)]
#[command(name = "steward", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a realistic scenario on a fresh embedded store with the example policy.
    Demo(demo::DemoArgs),
    /// Check, explain and compare policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The provider's other databases: check dataset files (docs/datasets.md).
    #[command(subcommand)]
    Datasets(crate::datasets::DatasetsCommand),
    /// Verify, export and sign the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Verify a signed document: an erasure certificate or a consent receipt.
    #[command(subcommand)]
    Document(DocumentCommand),
    /// Check a store at rest, in full: the data's and the keyring's structure (SQLite
    /// integrity_check, PostgreSQL amcheck), the audit log against its checkpoints and
    /// journal, and the state that decides reads. Exit 3 names every problem.
    Check {
        #[command(flatten)]
        store: Settings,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete the ciphertext of erased subjects (resumable).
    Purge {
        #[command(flatten)]
        store: Settings,
        /// Records deleted per transaction.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
    /// Measure Steward against raw baselines in the same run (use a release build).
    Bench(bench::BenchArgs),
    /// Load the HTTP API on loopback with 4 and 64 clients (use a release build).
    Loadtest(loadtest::LoadArgs),
    /// Serve the HTTP API (defaults: 127.0.0.1:8080, the embedded store, the example policy).
    Serve {
        #[command(flatten)]
        store: Settings,
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// The deployment's storage region, recorded by a new store (P16).
        #[arg(long)]
        region: Option<String>,
    },
    /// Encrypted backups: the data and the keyring as two files, kept apart (P20, P28).
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Create or bring up to date the store's schema (also done on every start).
    Migrate {
        #[command(flatten)]
        store: Settings,
    },
    /// Create staff accounts (Argon2id passwords, a policy role each).
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Create, list and revoke service API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Every clock Steward keeps, soonest first: requests, inquiries, holds' ends, erasures
    /// after account closure, retention (P32).
    Deadlines {
        #[command(flatten)]
        store: Settings,
        /// Clocks due within this many days, and every one already overdue.
        #[arg(long, default_value_t = 30)]
        within_days: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// See the outbox, retry what was not delivered, and deliver it from here.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Register, list and disable webhook endpoints (signed per Standard Webhooks).
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Delete what the policy's retention rules no longer allow to be kept (P17, P28).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Run incidents: affected sets, reports to authorities, notices to the affected (P22).
    #[command(subcommand)]
    Incidents(crate::cases::IncidentCommand),
    /// Plan and run transfers of subjects' data to a successor (P14).
    #[command(subcommand)]
    Transfers(crate::cases::TransferCommand),
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Write an encrypted data backup and an encrypted keyring backup, and delete keyring
    /// backups past their retention.
    Create {
        #[command(flatten)]
        store: Settings,
        /// Directory for data backups (default: DATA_DIR/backups).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Directory for keyring backups, best on other storage than the data backups
        /// (default: DATA_DIR/keyring-backups).
        #[arg(long)]
        keyring_out: Option<PathBuf>,
        /// Days a keyring backup is kept; older ones are deleted on every run [default: the
        /// setting keyring_backup_retention_days, 30]. Never more than that setting, which
        /// erasure certificates promise.
        #[arg(long)]
        keyring_retention_days: Option<u32>,
    },
    /// Restore a data backup (and optionally a keyring backup) into an empty store, then
    /// re-apply every erasure made since the backup was taken.
    Restore {
        #[command(flatten)]
        store: Settings,
        /// The data backup.
        #[arg(long)]
        data: PathBuf,
        /// A keyring backup, when the keyring itself was lost (default: keep the live one).
        #[arg(long)]
        keyring: Option<PathBuf>,
        /// Replace what the target holds (the data file or schema, and the keyring when
        /// --keyring is given), once both backups are checked in full and restored beside it.
        #[arg(long)]
        replace: bool,
        /// Restore data into a target with no keyring and no --keyring: every subject is then
        /// unreadable (their keys are not there).
        #[arg(long)]
        without_keyring: bool,
        /// Restore although the erasure journal cannot show that it knows every erasure since
        /// the backup was taken (a disaster that took the journal too). An erased subject may
        /// then be readable again; the restore's audit entry says so.
        #[arg(long)]
        accept_unknown_erasures: bool,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Delete expired values and erase closed accounts past their grace period; holds are
    /// respected. Resumable: run it again after an interruption.
    Sweep {
        #[command(flatten)]
        store: Settings,
        /// Count what would go, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Values deleted per transaction.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Create an account, or reset its password. The password is read from
    /// $STEWARD_STAFF_PASSWORD, or else from the first line of standard input.
    Create {
        #[command(flatten)]
        store: Settings,
        /// Sign-in name (a-z, 0-9, `.`, `-`, `_`).
        #[arg(long)]
        username: String,
        /// The policy role it acts under.
        #[arg(long)]
        role: String,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key bound to a policy role; the key is printed once and never stored.
    Create {
        #[command(flatten)]
        store: Settings,
        /// What the key is for (`billing`, `console`).
        #[arg(long)]
        name: String,
        /// The policy role it acts under.
        #[arg(long)]
        role: String,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        store: Settings,
    },
    /// Revoke a key by id.
    Revoke {
        #[command(flatten)]
        store: Settings,
        /// The key's id (the part after `stw_`).
        id: String,
    },
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Messages, newest first: their channel, event, state, attempts and last error.
    List {
        #[command(flatten)]
        store: Settings,
        /// Only `pending`, `delivered` or `dead` ones.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put a message back to be tried now, its attempts counted afresh.
    Retry {
        #[command(flatten)]
        store: Settings,
        /// The message's id (`msg_…`).
        id: String,
    },
    /// Deliver what is due now (as a running server does on its own), until nothing is.
    Dispatch {
        #[command(flatten)]
        store: Settings,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Register an endpoint; its signing secret (`whsec_…`) is printed once.
    Add {
        #[command(flatten)]
        store: Settings,
        /// Where events are POSTed (`https://…`).
        url: String,
        /// An event it takes (repeat for more); every event when none is named.
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
    },
    /// List endpoints (never their secrets).
    List {
        #[command(flatten)]
        store: Settings,
    },
    /// Stop sending to an endpoint.
    Disable {
        #[command(flatten)]
        store: Settings,
        /// The endpoint's id (`whe_…`).
        id: String,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy file; every error is shown with file:line:column.
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Summarise a policy in plain language.
    Explain {
        /// The policy file.
        file: PathBuf,
    },
    /// List every change between two versions: material, needs review, or not material (P29).
    Diff {
        /// The version in force.
        old: PathBuf,
        /// The proposed version.
        new: PathBuf,
        /// Exit with status 3 when a material or needs-review change is not acknowledged by
        /// the new file's `[review]` table.
        #[arg(long)]
        fail_on_material: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Publish a new version into the store (P29): refused inside the notice period when it
    /// makes a material change; a material version opens a notice campaign (P30).
    Publish {
        #[command(flatten)]
        store: Settings,
        /// The policy file to publish.
        file: PathBuf,
        /// When it takes effect, `YYYY-MM-DD` (UTC); the file's `effective` if absent.
        #[arg(long, value_name = "DATE")]
        effective: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The published versions, which is in force, and what each changed.
    Versions {
        #[command(flatten)]
        store: Settings,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// How many subjects were notified of a version, shown it, and accepted it.
    Acceptance {
        #[command(flatten)]
        store: Settings,
        /// The version.
        version: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Queue a material version's notice mails now, with progress (the server does it in the
    /// background too); resumes where an interrupted run stopped.
    Notify {
        #[command(flatten)]
        store: Settings,
        /// The version.
        version: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chain and the signed checkpoints; name the first bad entry.
    Verify {
        #[command(flatten)]
        store: Settings,
        /// Verify files written by `steward audit export` instead of a store.
        #[arg(long, conflicts_with_all = ["data_dir", "database"])]
        export: Option<PathBuf>,
        /// The published public key (hex or PEM). Default: derived from the master key for a
        /// store. An export is only checked for self-consistency without it (exit 4).
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Checkpoints kept from earlier (a journal, or what `/v1/evidence/checkpoints`
        /// served), one JSON line each: the log must still hold every entry they cover,
        /// unchanged. A store is also checked against its own journal.
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
        /// Also recompute the state that decides reads (subjects, consents in force, holds)
        /// from the log and name every row of the store that disagrees or fails its tag.
        #[arg(long, conflicts_with = "export")]
        state: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the log, its checkpoints and the public key as files.
    Export {
        #[command(flatten)]
        store: Settings,
        /// Directory to write to.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign the current head of the chain.
    Checkpoint {
        #[command(flatten)]
        store: Settings,
    },
}

#[derive(Subcommand)]
enum DocumentCommand {
    /// Check the signature of an erasure certificate or consent receipt and print its payload.
    Verify {
        /// The document (JSON).
        file: PathBuf,
        /// The published public key (hex or PEM). Without it only the document's agreement
        /// with the key it names is checked (exit 4).
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// An export (`steward audit export`) that must verify and hold the document's audit
        /// entry with the same hash.
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
    },
}

/// The settings every command that opens a store reads, in layers: built-in defaults, then
/// the configuration file (`--config`, or `$STEWARD_CONFIG`), then `STEWARD_*` variables, then
/// these flags. `serve` reads the same, so a command and the server agree on where the store
/// is.
#[derive(Args, Clone, Default)]
pub struct Settings {
    /// Configuration file (TOML) [default: $STEWARD_CONFIG].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory of the embedded store, and of the master key file by default
    /// [default: steward-data; $STEWARD_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL connection string (postgres://user@host:5432/db); the embedded store in the
    /// data directory when absent [default: $STEWARD_DATABASE].
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Schema of the data [default: steward].
    #[arg(long)]
    pub schema: Option<String>,
    /// Connection string for the keyring, with its own credentials [default: --database].
    #[arg(long, value_name = "URL")]
    pub keyring_database: Option<String>,
    /// Schema of the keyring [default: steward_keyring].
    #[arg(long)]
    pub keyring_schema: Option<String>,
    /// Policy file [default: the shipped example policy].
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Master key file [default: DATA_DIR/master.key, created mode 0600 on first use, unless
    /// $STEWARD_MASTER_KEY holds 64 hex characters].
    #[arg(long, value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Checkpoint journal: signed checkpoints kept outside the store
    /// [default: DATA_DIR/journal/checkpoints.jsonl; $STEWARD_CHECKPOINT_JOURNAL].
    #[arg(long, value_name = "FILE")]
    pub checkpoint_journal: Option<PathBuf>,
    /// Erasure journal: every erasure, kept outside the store and every backup
    /// [default: DATA_DIR/journal/erasures.jsonl; $STEWARD_ERASURE_JOURNAL].
    #[arg(long, value_name = "FILE")]
    pub erasure_journal: Option<PathBuf>,
}

impl Settings {
    /// The layered settings: defaults, file, `STEWARD_*`, then the flags given.
    pub fn load(&self) -> Result<steward_server::Config> {
        let file = self
            .config
            .clone()
            .or_else(|| std::env::var_os("STEWARD_CONFIG").map(PathBuf::from));
        let mut config = steward_server::Config::load(file.as_deref(), std::env::vars())?;
        let flags = self.clone();
        if let Some(v) = flags.data_dir {
            config.data_dir = v;
        }
        if let Some(v) = flags.database {
            config.database = Some(v);
        }
        if let Some(v) = flags.schema {
            config.database_schema = v;
        }
        if let Some(v) = flags.keyring_database {
            config.keyring_database = Some(v);
        }
        if let Some(v) = flags.keyring_schema {
            config.keyring_schema = v;
        }
        if let Some(v) = flags.policy {
            config.policy = Some(v);
        }
        if let Some(v) = flags.master_key_file {
            config.master_key_file = Some(v);
        }
        if let Some(v) = flags.checkpoint_journal {
            config.checkpoint_journal = Some(v);
        }
        if let Some(v) = flags.erasure_journal {
            config.erasure_journal = Some(v);
        }
        Ok(config)
    }
}

/// A failed check, as opposed to a failed operation: exit status 3.
#[derive(Debug)]
pub struct CheckFailed(pub String);

impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckFailed {}

/// Evidence that agrees only with the key it came with: exit status 4, never "verified".
#[derive(Debug)]
pub struct SelfConsistentOnly(pub String);

impl std::fmt::Display for SelfConsistentOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NOT VERIFIED: {} is consistent with the key that came with it, which a forger who re-signed everything also achieves; give the provider's published key with --public-key",
            self.0
        )
    }
}

impl std::error::Error for SelfConsistentOnly {}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // A service logs its requests by default; a command speaks only when something is wrong.
    init_logging(if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    });
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(check) = e.downcast_ref::<CheckFailed>() {
                eprintln!("{check}");
                ExitCode::from(3)
            } else if let Some(only) = e.downcast_ref::<SelfConsistentOnly>() {
                eprintln!("{only}");
                ExitCode::from(4)
            } else if let Some(domain) = e
                .chain()
                .find_map(|c| c.downcast_ref::<steward_core::Error>())
                .filter(|d| matches!(d, steward_core::Error::Tampered(_)))
            {
                // P33: a log that fails verification is a failed check, not a failed operation.
                eprintln!("error [{}]: {domain}", domain.code());
                ExitCode::from(3)
            } else {
                // The catalogue code, when the failure is the domain's (docs/errors.md).
                match e
                    .chain()
                    .find_map(|c| c.downcast_ref::<steward_core::Error>())
                {
                    Some(domain) => eprintln!("error [{}]: {e:#}", domain.code()),
                    None => eprintln!("error: {e:#}"),
                }
                ExitCode::from(1)
            }
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STEWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Policy(cmd) => policy(cmd),
        Command::Datasets(cmd) => crate::datasets::datasets(cmd),
        Command::Incidents(cmd) => crate::cases::incidents(cmd),
        Command::Transfers(cmd) => crate::cases::transfers(cmd),
        Command::Audit(cmd) => audit(cmd),
        Command::Document(DocumentCommand::Verify {
            file,
            public_key,
            export,
        }) => {
            let text = read(&file)?;
            let doc: SignedDocument = serde_json::from_str(&text)
                .map_err(|e| anyhow!("`{}` is not a signed document: {e}", file.display()))?;
            let key = public_key.map(|p| read_key(&p)).transpose()?;
            let payload = evidence::verify_document(&doc, key)
                .map_err(|e| CheckFailed(format!("document verification failed: {e}")))?;
            if let Some(dir) = &export {
                let (result, _) = evidence::verify_export(dir, key, Vec::new())?;
                result.map_err(|f| {
                    CheckFailed(format!(
                        "document verification failed: the export does not verify: {f}"
                    ))
                })?;
                if !evidence::document_in_export(&payload, dir)? {
                    return Err(CheckFailed(
                        "document verification failed: its audit entry is not in the export with that hash".into(),
                    )
                    .into());
                }
            }
            say!("{}", serde_json::to_string_pretty(&payload)?);
            if key.is_none() {
                return Err(SelfConsistentOnly("the document".into()).into());
            }
            say!(
                "signature OK{}",
                if export.is_some() {
                    "; its audit entry is in the verified log"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Command::Check { store, json } => check(&store, json),
        Command::Purge { store, batch } => {
            let vault = open_vault(&store)?;
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message("purging erased subjects' ciphertext");
            let done = vault.purge(batch, &mut |n| bar.set_position(n as u64))?;
            bar.finish_and_clear();
            say!(
                "purged {} records of {} erased subjects",
                done.records_deleted,
                done.subjects_done
            );
            Ok(())
        }
        Command::Bench(args) => bench::run(&args),
        Command::Loadtest(args) => loadtest::run(&args),
        Command::Serve {
            store,
            listen,
            region,
        } => {
            let mut config = store.load()?;
            if let Some(l) = listen {
                config.listen = l;
            }
            if region.is_some() {
                config.region = region;
            }
            serve(config)
        }
        Command::Backup(cmd) => backup(cmd),
        Command::Migrate { store } => {
            let backend = store.load()?.backend()?;
            // Opening applies whatever migrations are pending, for both the data and keyring.
            let (s, _keyring) = backend.open()?;
            let head = s.audit_head()?;
            say!(
                "{}: schema up to date; audit log at entry {}",
                backend.describe(),
                head.0
            );
            Ok(())
        }
        Command::Key(cmd) => key(cmd),
        Command::Outbox(cmd) => outbox(cmd),
        Command::Deadlines {
            store,
            within_days,
            json,
        } => {
            let vault = open_vault(&store)?;
            let board = vault.deadlines(None, i64::from(within_days) * steward_core::DAY_MS)?;
            if json {
                say!("{}", serde_json::to_string_pretty(&board)?);
            } else {
                let now = steward_core::clock::Clock::now_ms(&SystemClock);
                say!("{}", deadline_chart(&board, within_days, now));
            }
            Ok(())
        }
        Command::Webhook(cmd) => webhook(cmd),
        Command::Staff(StaffCommand::Create {
            store,
            username,
            role,
        }) => {
            let password = match std::env::var("STEWARD_STAFF_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("cannot read the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let vault = open_vault(&store)?;
            vault.create_staff(&username, &role, &password)?;
            say!("staff account `{username}` acts as role `{role}`");
            Ok(())
        }
        Command::Retention(RetentionCommand::Sweep {
            store,
            dry_run,
            batch,
        }) => {
            let vault = open_vault(&store)?;
            let bar = indicatif::ProgressBar::new_spinner();
            // A dry run deletes nothing: it says what a sweep would do.
            let (deleted, erased) = if dry_run {
                ("would be deleted", "would be erased")
            } else {
                ("deleted", "erased")
            };
            let report = vault.retention_sweep(dry_run, batch, &mut |r| {
                bar.set_message(format!(
                    "{} values {deleted}, {} held, {} accounts {erased}",
                    r.records_deleted, r.records_held, r.subjects_erased
                ));
                bar.tick();
            })?;
            bar.finish_and_clear();
            say!(
                "{}{} values past retention {deleted}, {} kept under legal hold; {} closed accounts {erased}, {} held",
                if dry_run {
                    "dry run, nothing changed: "
                } else {
                    ""
                },
                report.records_deleted,
                report.records_held,
                report.subjects_erased,
                report.subjects_held
            );
            if report.subjects_waiting > 0 {
                say!(
                    "{} closed accounts wait on the provider's databases; a later sweep tries again",
                    report.subjects_waiting
                );
            }
            Ok(())
        }
        Command::Openapi => {
            say!("{}", steward_server::openapi_json());
            Ok(())
        }
    }
}

pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))
}

fn read_key(path: &Path) -> Result<[u8; 32]> {
    Ok(parse_public_key(&read(path)?)?)
}

/// Parses and validates a policy file, turning located errors into a failed check.
pub fn load_policy(path: Option<&Path>) -> Result<Policy> {
    let result = match path {
        None => Policy::example(),
        Some(p) => Policy::parse(&read(p)?, &p.display().to_string()),
    };
    result.map_err(|d| {
        let n = d.items.len();
        CheckFailed(format!(
            "{d}\n{n} error{} found",
            if n == 1 { "" } else { "s" }
        ))
        .into()
    })
}

/// The master key: $STEWARD_MASTER_KEY, or the file (created mode 0600 on first use when
/// `create` is set).
pub fn master_key(data_dir: &Path, file: Option<&Path>, create: bool) -> Result<MasterKey> {
    if file.is_none()
        && let Ok(hex) = std::env::var("STEWARD_MASTER_KEY")
    {
        return MasterKey::from_hex(&hex).context("$STEWARD_MASTER_KEY");
    }
    let path = file.map_or_else(|| data_dir.join(files::MASTER_KEY), Path::to_path_buf);
    if !create && !path.exists() {
        return Err(anyhow!(
            "no master key at `{}`; pass --master-key-file or set $STEWARD_MASTER_KEY (a PostgreSQL store's key is never created here; `audit verify` also takes the published --public-key)",
            path.display()
        ));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    Ok(MasterKey::load_or_create(
        &path,
        &steward_crypto::system_random(),
    )?)
}

/// The store without the provider's databases: for what needs none of them — registering
/// the webhook endpoint an external system's connection is to name, before it names one.
fn open_without_datasets(settings: &Settings) -> Result<Vault> {
    let mut config = settings.load()?;
    config.datasets = Default::default();
    open_configured(&config, Opening::Existing)
}

/// The vault the settings name, which must exist: only `serve`, `migrate`, `demo` and
/// `backup restore` make a store, so a mistyped `--data-dir` is an error, not a new store.
pub fn open_vault(settings: &Settings) -> Result<Vault> {
    open_configured(&settings.load()?, Opening::Existing)
}

/// Whether opening may make the store.
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) enum Opening {
    /// It must be there already.
    Existing,
    /// It is made if it is not there (`serve` on first start, `backup restore`).
    MayCreate,
}

/// Why there is no store where `backend` points, if there is none: the place, and how to make
/// one.
fn missing_store(backend: &steward_core::Backend) -> Result<Option<String>> {
    Ok(match backend {
        steward_core::Backend::Sqlite { dir } => (!dir.join(files::DATA).exists()).then(|| {
            format!(
                "no store in `{}`: make one with `steward migrate --data-dir {}` (or start `steward serve` there), or name the right --data-dir",
                dir.display(),
                dir.display()
            )
        }),
        steward_core::Backend::Postgres { data, .. } => (!data.schema_exists()?).then(|| {
            format!(
                "no store in schema `{}`: make one with `steward migrate --database …` (or start `steward serve` on it), or name the right --schema",
                data.schema
            )
        }),
    })
}

pub(crate) fn open_configured(config: &steward_server::Config, opening: Opening) -> Result<Vault> {
    let policy = load_policy(config.policy.as_deref())?;
    // The provider's other databases: declared files checked before anything opens.
    let fanout = crate::datasets::fanout(config, &policy)?;
    let backend = config.backend()?;
    match (opening, missing_store(&backend)?) {
        (Opening::Existing, Some(why)) => return Err(steward_core::Error::NoStore(why).into()),
        // A new store's first version must be in force: refused before anything is made. On a
        // store with versions, a file dated ahead is published as scheduled (P29).
        (Opening::MayCreate, Some(_)) => {
            Vault::check_effective(&policy, steward_core::clock::Clock::now_ms(&SystemClock))?
        }
        _ => {}
    }
    // P20: a PostgreSQL store's master key is given, never made up in the working directory.
    let master = master_key(
        &config.data_dir,
        config.master_key_file.as_deref(),
        !backend.remote(),
    )?;
    let vault = Vault::open_backend(
        &backend,
        policy,
        &master,
        Arc::new(SystemClock),
        config.region.as_deref(),
    )?
    .with_journal(config.journal())
    .with_erasure_journal(config.erasure_journal())
    .with_keyring_retention_days(config.keyring_backup_retention_days)
    .with_local_webhooks(config.webhooks_allow_local)
    .with_contacts(config.contacts.contacts())
    .with_notice_batch(config.notice_batch)
    .with_visitor_limit(config.visitor_limit_per_hour);
    if let Some(fanout) = fanout {
        vault.attach_datasets(fanout)?;
    }
    Ok(vault)
}

fn policy(cmd: PolicyCommand) -> Result<()> {
    match cmd {
        PolicyCommand::Check { file } => {
            let p = load_policy(Some(&file))?;
            say!(
                "{}: ok — {} version {} ({} categories, {} features, {} purposes, {} roles, {} recipients, {} cookies)",
                file.display(),
                p.name,
                p.version,
                p.categories.len(),
                p.features.len(),
                p.purposes.len(),
                p.roles.len(),
                p.recipients.len(),
                p.cookies.len()
            );
            Ok(())
        }
        PolicyCommand::Publish {
            store,
            file,
            effective,
            json,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let effective = effective
                .as_deref()
                .map(steward_core::versions::parse_day)
                .transpose()?;
            let vault = open_configured(&store.load()?, Opening::Existing)?;
            let v = vault.publish_policy(None, &text, effective)?;
            if json {
                say!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                say!(
                    "published {} (serial {}), in force from {}; {} changes{}{}",
                    v.version,
                    v.serial,
                    v.effective_at,
                    v.changes.len(),
                    if v.material {
                        "; material: subjects will be told before then"
                    } else {
                        ""
                    },
                    if v.reconsent.is_empty() {
                        String::new()
                    } else {
                        format!("; fresh consent needed for {}", v.reconsent.join(", "))
                    }
                );
            }
            Ok(())
        }
        PolicyCommand::Versions { store, json } => {
            let vault = open_configured(&store.load()?, Opening::Existing)?;
            let versions = vault.versions();
            if json {
                say!("{}", serde_json::to_string_pretty(&versions)?);
            } else {
                for v in &versions {
                    say!(
                        "{:<12} {:<10} from {}  {} changes{}",
                        v.version,
                        v.status,
                        &v.effective_at[..10.min(v.effective_at.len())],
                        v.changes.len(),
                        if v.material { ", material" } else { "" }
                    );
                    for c in v
                        .changes
                        .iter()
                        .filter(|c| c.class != "not_material" || c.reconsent)
                    {
                        say!(
                            "    {:<13} {}: {}{}",
                            c.class,
                            c.path,
                            c.summary,
                            if c.reconsent { " [fresh consent]" } else { "" }
                        );
                    }
                }
            }
            Ok(())
        }
        PolicyCommand::Acceptance {
            store,
            version,
            json,
        } => {
            let vault = open_configured(&store.load()?, Opening::Existing)?;
            let a = vault.acceptance(&version)?;
            if json {
                say!("{}", serde_json::to_string_pretty(&a)?);
            } else {
                say!(
                    "version {}: notified {}, shown {}, accepted {} (explicitly {}, by staff {}, by continued use {})",
                    a.version,
                    a.notified,
                    a.shown,
                    a.accepted_explicit + a.accepted_staff + a.accepted_continued_use,
                    a.accepted_explicit,
                    a.accepted_staff,
                    a.accepted_continued_use
                );
            }
            Ok(())
        }
        PolicyCommand::Notify { store, version } => {
            let vault = open_configured(&store.load()?, Opening::Existing)?;
            let bar = indicatif::ProgressBar::new_spinner();
            loop {
                match vault.campaign_step(&version, vault.notice_batch())? {
                    None => {
                        bar.finish_and_clear();
                        return Err(anyhow!(
                            "version `{version}` has no notice campaign (it is not material, or not published)"
                        ));
                    }
                    Some(c) => {
                        bar.set_message(format!("{} notice mails queued", c.enqueued));
                        bar.tick();
                        if c.done {
                            bar.finish_and_clear();
                            say!(
                                "{} notice mails queued for version {version}; the outbox delivers them",
                                c.enqueued
                            );
                            return Ok(());
                        }
                    }
                }
            }
        }
        PolicyCommand::Explain { file } => {
            say_raw!("{}", steward_policy::explain(&load_policy(Some(&file))?));
            Ok(())
        }
        PolicyCommand::Diff {
            old,
            new,
            fail_on_material,
            json,
        } => {
            let (a, b) = (load_policy(Some(&old))?, load_policy(Some(&new))?);
            let changes = steward_policy::diff(&a, &b);
            let material = changes.iter().filter(|c| c.material()).count();
            let review = changes
                .iter()
                .filter(|c| c.class == steward_policy::Class::NeedsReview)
                .count();
            let blocking = changes.iter().filter(|c| c.blocks()).count();
            if json {
                let list: Vec<_> = changes
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "path": c.path,
                            "summary": c.summary,
                            "class": c.class.as_str(),
                            "material": c.material(),
                            "acknowledged": c.acknowledged,
                            "what": c.verb.as_str(),
                            "reconsent": c.reconsent,
                        })
                    })
                    .collect();
                say!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "from": a.version,
                        "to": b.version,
                        "material": material > 0,
                        "needs_review": review > 0,
                        "unacknowledged": blocking,
                        "changes": list
                    }))?
                );
            } else {
                say!(
                    "{} -> {}: {} changes, {} material, {} needing review, {} of them not acknowledged",
                    a.version,
                    b.version,
                    changes.len(),
                    material,
                    review,
                    blocking
                );
                for c in &changes {
                    let class = match c.class {
                        steward_policy::Class::Material => "MATERIAL",
                        steward_policy::Class::NeedsReview => "REVIEW  ",
                        steward_policy::Class::NotMaterial => "minor   ",
                    };
                    let ack = if c.acknowledged {
                        " (acknowledged)"
                    } else {
                        ""
                    };
                    let fresh = if c.reconsent {
                        " [fresh consent: existing subjects are asked again]"
                    } else {
                        ""
                    };
                    say!("  {class} {}: {}{ack}{fresh}", c.path, c.summary);
                }
                if material > 0 {
                    say!(
                        "material changes must be announced {} before they take effect (P30)",
                        steward_policy::days(b.deadlines.change_notice_days)
                    );
                }
            }
            if fail_on_material && blocking > 0 {
                return Err(CheckFailed(format!(
                    "{blocking} material or needs-review change(s) not acknowledged in `[review]`"
                ))
                .into());
            }
            Ok(())
        }
    }
}

fn check(settings: &Settings, json: bool) -> Result<()> {
    let vault = match open_vault(settings) {
        Ok(v) => v,
        Err(e) => {
            // A store too damaged to open is a failed check: say what the file's own full
            // check finds.
            let corrupt = e
                .chain()
                .find_map(|c| c.downcast_ref::<steward_core::Error>())
                .is_some_and(|d| d.code() == steward_core::Code::StorageCorrupt);
            let config = settings.load()?;
            if corrupt && !config.backend()?.remote() {
                let mut problems = Vec::new();
                for name in [files::DATA, files::KEYRING] {
                    let path = config.data_dir.join(name);
                    for p in steward_store::sqlite_file_problems(&path)? {
                        problems.push(format!("{name}: {p}"));
                    }
                }
                return Err(CheckFailed(format!(
                    "check FAILED: the store cannot be opened: {e:#}\n{}",
                    problems.join("\n")
                ))
                .into());
            }
            return Err(e);
        }
    };
    let bar = indicatif::ProgressBar::new_spinner();
    let c = vault.check(&mut |n| bar.set_message(format!("{n} audit entries verified")))?;
    bar.finish_and_clear();
    if json {
        say!("{}", serde_json::to_string_pretty(&c)?);
    }
    if c.sound() {
        if !json {
            let r = c.audit.as_ref().ok();
            say!(
                "check OK: data and keyring structure sound; audit log of {} entries verified; state agrees with the log",
                r.map_or(0, |r| r.entries)
            );
        }
        return Ok(());
    }
    let mut lines = Vec::new();
    lines.extend(c.data.iter().map(|p| format!("data: {p}")));
    lines.extend(c.keyring.iter().map(|p| format!("keyring: {p}")));
    if let Err(f) = &c.audit {
        lines.push(format!("audit log: {f}"));
    }
    lines.extend(c.state.iter().map(|p| format!("state: {p}")));
    Err(CheckFailed(format!("check FAILED:\n{}", lines.join("\n"))).into())
}

fn audit(cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::Verify {
            store,
            export,
            public_key,
            checkpoints,
            state,
            json,
        } => {
            if state {
                let vault = open_vault(&store)?;
                let problems = vault.state_problems()?;
                if !problems.is_empty() {
                    return Err(CheckFailed(format!(
                        "state verification FAILED: {} rows disagree with the log:\n{}",
                        problems.len(),
                        problems.join("\n")
                    ))
                    .into());
                }
                say!("state OK: every subject, consent in force and hold agrees with the log");
            }
            let key = public_key.as_deref().map(read_key).transpose()?;
            let mut kept = match &checkpoints {
                Some(path) => {
                    let bytes = std::fs::read(path)
                        .with_context(|| format!("cannot read `{}`", path.display()))?;
                    evidence::parse_checkpoints(&bytes, &path.display().to_string())
                        .map_err(|f| CheckFailed(format!("audit log verification FAILED: {f}")))?
                }
                None => Vec::new(),
            };
            let mut trusted = true;
            let result = match export {
                Some(dir) => {
                    let (result, trust) = evidence::verify_export(&dir, key, kept)?;
                    trusted = trust == evidence::Trust::GivenKey;
                    result
                }
                None => {
                    let config = store.load()?;
                    let dir = config.data_dir.clone();
                    let backend = config.backend()?;
                    if !backend.remote() && !dir.join(files::DATA).exists() {
                        return Err(anyhow!("no store in `{}`", dir.display()));
                    }
                    let store = backend.open_data()?;
                    let key = match key {
                        Some(k) => k,
                        None => {
                            let master =
                                master_key(&dir, config.master_key_file.as_deref(), false)?;
                            let keys = steward_crypto::Keys::derive(&master)?;
                            // The wrong key would fail every signature: say what is wrong.
                            if store
                                .meta("master_key_check")?
                                .is_some_and(|c| c != hex::encode(keys.check_value()))
                            {
                                return Err(steward_core::Error::WrongMasterKey.into());
                            }
                            keys.public_key()
                        }
                    };
                    // The store's own journal holds checkpoints its database cannot rewrite.
                    let journal = config.journal();
                    let check =
                        |m: &[u8], sig: &[u8; 64]| steward_crypto::verify_signature(&key, m, sig);
                    match journal.read(&check)? {
                        Ok(cps) => kept.extend(cps),
                        Err(f) => {
                            return Err(
                                CheckFailed(format!("audit log verification FAILED: {f}")).into()
                            );
                        }
                    }
                    let store = store.as_ref();
                    let bar = indicatif::ProgressBar::new_spinner();
                    let r = evidence::verify_store(store, key, kept, &mut |n| {
                        bar.set_message(format!("{n} entries verified"))
                    })?;
                    bar.finish_and_clear();
                    r
                }
            };
            match result {
                Ok(report) if !trusted => {
                    if json {
                        say!("{}", serde_json::to_string_pretty(&report)?);
                    }
                    Err(SelfConsistentOnly(format!(
                        "the exported log ({} entries, {} checkpoints)",
                        report.entries, report.checkpoints
                    ))
                    .into())
                }
                Ok(report) => {
                    if json {
                        say!("{}", serde_json::to_string_pretty(&report)?);
                    } else {
                        say!(
                            "audit log OK: {} entries, {} signed checkpoints, head {} at entry {}",
                            report.entries,
                            report.checkpoints,
                            report.head_hash,
                            report.head_seq
                        );
                        if report.unsealed > 0 {
                            say!(
                                "note: the last {} entries are chained but not yet covered by a signed checkpoint",
                                report.unsealed
                            );
                        }
                    }
                    Ok(())
                }
                Err(fault) => {
                    Err(CheckFailed(format!("audit log verification FAILED: {fault}")).into())
                }
            }
        }
        AuditCommand::Export { store, out } => {
            let vault = open_vault(&store)?;
            // Sign the head first, so that every exported entry is covered by a checkpoint;
            // a log that fails verification is not signed, but still exported as it is, for
            // whoever investigates (and the command fails).
            let sealed = match vault.checkpoint() {
                Ok(_) => None,
                Err(steward_core::Error::Tampered(fault)) => Some(fault),
                Err(e) => return Err(e.into()),
            };
            let n = evidence::export_log(vault.store(), vault.public_key(), &out)?;
            say!(
                "wrote {n} entries, checkpoints and the public key to {}",
                out.display()
            );
            match sealed {
                None => Ok(()),
                Some(fault) => Err(CheckFailed(format!(
                    "the audit log FAILED verification, so the export is not sealed by a new checkpoint: {fault}"
                ))
                .into()),
            }
        }
        AuditCommand::Checkpoint { store } => {
            let vault = open_vault(&store)?;
            match vault.checkpoint()? {
                Some(cp) => say!(
                    "signed checkpoint at entry {}: {}",
                    cp.seq,
                    hex::encode(cp.head)
                ),
                None => say!("the log is empty"),
            }
            Ok(())
        }
    }
}

fn backup(cmd: BackupCommand) -> Result<()> {
    match cmd {
        BackupCommand::Create {
            store,
            out,
            keyring_out,
            keyring_retention_days,
        } => {
            let config = store.load()?;
            let backend = config.backend()?;
            let promised = config.keyring_backup_retention_days;
            let keyring_retention_days = keyring_retention_days.unwrap_or(promised);
            if keyring_retention_days > promised {
                return Err(steward_core::Error::Invalid(format!(
                    "--keyring-retention-days {keyring_retention_days} is more than keyring_backup_retention_days ({promised}), which erasure certificates promise; raise the setting first"
                ))
                .into());
            }
            let vault = open_configured(&config, Opening::Existing)?;
            let out = out.unwrap_or_else(|| config.data_dir.join("backups"));
            let keyring_out =
                keyring_out.unwrap_or_else(|| config.data_dir.join("keyring-backups"));
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message("writing encrypted backups");
            let r = vault.backup(&backend, &out, &keyring_out, keyring_retention_days)?;
            bar.finish_and_clear();
            say!(
                "data backup {} ({} bytes, audit log to entry {})",
                r.data.display(),
                r.data_bytes,
                r.audit_seq
            );
            say!(
                "keyring backup {} ({} bytes); {} keyring backups older than {} deleted",
                r.keyring.display(),
                r.keyring_bytes,
                r.keyring_backups_pruned,
                steward_policy::days(keyring_retention_days)
            );
            Ok(())
        }
        BackupCommand::Restore {
            store,
            data,
            keyring,
            replace,
            without_keyring,
            accept_unknown_erasures,
        } => restore(
            &store,
            &data,
            keyring.as_deref(),
            replace,
            without_keyring,
            accept_unknown_erasures,
        ),
    }
}

/// `backup restore`: everything is checked before anything is replaced (P20, P28) — both
/// files in full, the target, and that the erasure journal knows every erasure since the
/// backup — then the backups are restored beside the live store and put in its place in one
/// step, and every erasure the journal or the live keyring holds is applied again.
fn restore(
    store: &Settings,
    data: &Path,
    keyring: Option<&Path>,
    replace: bool,
    without_keyring: bool,
    accept_unknown_erasures: bool,
) -> Result<()> {
    let config = store.load()?;
    let backend = config.backend()?;
    let master = master_key(&config.data_dir, config.master_key_file.as_deref(), false)?;
    let restored = steward_core::backup::restore_checked(
        &backend,
        &master,
        &steward_core::backup::RestorePlan {
            data,
            keyring,
            replace,
            without_keyring,
            accept_unknown_erasures,
        },
        &config.erasure_journal(),
        steward_core::clock::Clock::now_ms(&SystemClock),
    )?;
    let unverified = restored.unverified;
    // 5. Erasures again, audited.
    let vault = open_configured(&config, Opening::MayCreate)?;
    let r = vault.reconcile_after_restore(restored.header, &restored.erased, unverified)?;
    say!(
        "restored the data backup of {} (audit log to entry {}); {} erasures made since re-applied, {} records purged",
        r.backup.created_at,
        r.backup.audit_seq,
        r.erasures_reapplied,
        r.records_purged
    );
    if unverified {
        eprintln!(
            "warning: restored WITHOUT proof that every erasure since the backup is known; the restore's audit entry says so"
        );
    }
    Ok(())
}

fn key(cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Create { store, name, role } => {
            let vault = open_vault(&store)?;
            let (info, token) = vault.create_api_key(&name, &role)?;
            eprintln!(
                "created key `{}` ({}) for role `{}`; it is shown once, store it now:",
                info.id, info.name, info.role
            );
            say!("{token}");
            Ok(())
        }
        KeyCommand::List { store } => {
            let vault = open_vault(&store)?;
            for k in vault.api_keys()? {
                say!(
                    "{}  {:<16} role {:<16} {}",
                    k.id,
                    k.name,
                    k.role,
                    if k.revoked { "revoked" } else { "active" }
                );
            }
            Ok(())
        }
        KeyCommand::Revoke { store, id } => {
            let vault = open_vault(&store)?;
            vault.revoke_api_key(&id)?;
            say!("revoked key `{id}`");
            Ok(())
        }
    }
}

/// The board as a picture: one line per clock, a bar as long as the days left (`!` for each
/// day overdue, up to 30), and what it is; a clock due within a day (an incident's report) in
/// hours and minutes.
fn deadline_chart(
    board: &[steward_core::deadlines::Deadline],
    within_days: u32,
    now_ms: i64,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let (overdue, soon) = board
        .iter()
        .fold((0, 0), |(o, s), d| match d.status.as_str() {
            "overdue" => (o + 1, s),
            "due_soon" => (o, s + 1),
            _ => (o, s),
        });
    let _ = writeln!(
        out,
        "{} clock(s) due within {within_days} days: {overdue} overdue, {soon} due within 7 days",
        board.len()
    );
    for d in board {
        let bar = if d.days_left < 0 {
            "!".repeat(usize::try_from(-d.days_left).unwrap_or(0).min(30))
        } else {
            "#".repeat(usize::try_from(d.days_left).unwrap_or(0).min(30))
        };
        let minutes = d.due_ms.saturating_sub(now_ms) / 60_000;
        let left = if d.days_left < 0 {
            format!("{} day(s) overdue", -d.days_left)
        } else if (0..24 * 60).contains(&minutes) {
            format!("{} h {:02} min left", minutes / 60, minutes % 60)
        } else {
            format!("{} day(s) left", d.days_left)
        };
        let _ = writeln!(
            out,
            "{:<10} {:<30} {:<18} {}  {} ({})",
            d.status,
            bar,
            left,
            d.due_at.get(..10).unwrap_or(&d.due_at),
            d.what,
            d.id
        );
    }
    out.trim_end().to_string()
}

fn outbox(cmd: OutboxCommand) -> Result<()> {
    match cmd {
        OutboxCommand::List {
            store,
            state,
            limit,
            json,
        } => {
            let vault = open_vault(&store)?;
            let messages = vault.outbox(None, state.as_deref(), limit)?;
            if json {
                say!("{}", serde_json::to_string_pretty(&messages)?);
            } else {
                for m in &messages {
                    say!(
                        "{}  {:<7} {:<18} {:<9} attempts {:<2} next {}  {}",
                        m.id,
                        m.channel,
                        m.event,
                        m.state,
                        m.attempts,
                        m.next_at,
                        m.last_error
                    );
                }
                eprintln!("{} message(s)", messages.len());
            }
            Ok(())
        }
        OutboxCommand::Retry { store, id } => {
            let vault = open_vault(&store)?;
            let m = vault.retry_message(None, &id)?;
            say!("message `{}` is due again ({})", m.id, m.next_at);
            Ok(())
        }
        OutboxCommand::Dispatch { store } => {
            let config = store.load()?;
            let vault = Arc::new(open_configured(&config, Opening::Existing)?);
            let mailer = config.mailer().map_err(|e| anyhow!(e))?;
            let mut d = steward_core::dispatch::Dispatcher::new(
                vault,
                mailer,
                Some(Arc::new(steward_server::webhook::HttpWebhooks::default())),
            );
            d.schedule.max_attempts = config.outbox_max_attempts;
            d.lease_ms = i64::try_from(config.outbox_lease_ms).unwrap_or(i64::MAX);
            let bar = indicatif::ProgressBar::new_spinner();
            let mut total = steward_core::dispatch::DispatchReport::default();
            loop {
                let r = d.run_once()?;
                total.claimed += r.claimed;
                total.delivered += r.delivered;
                total.failed += r.failed;
                total.dead += r.dead;
                bar.set_message(format!(
                    "{} delivered, {} to retry, {} dead",
                    total.delivered, total.failed, total.dead
                ));
                bar.tick();
                if r.claimed < d.batch {
                    break;
                }
            }
            bar.finish_and_clear();
            say!(
                "{} delivered, {} failed and to be tried again, {} dead",
                total.delivered,
                total.failed,
                total.dead
            );
            Ok(())
        }
    }
}

fn webhook(cmd: WebhookCommand) -> Result<()> {
    match cmd {
        WebhookCommand::Add { store, url, events } => {
            let vault = open_without_datasets(&store)?;
            let events: Vec<&str> = events.iter().map(String::as_str).collect();
            let made = vault.create_endpoint(None, &url, &events)?;
            eprintln!(
                "registered endpoint `{}`; its signing secret is shown once, store it now:",
                made.endpoint.id
            );
            say!("{}", made.secret);
            Ok(())
        }
        WebhookCommand::List { store } => {
            let vault = open_without_datasets(&store)?;
            for e in vault.endpoints(None)? {
                say!(
                    "{}  {}  {}  {}",
                    e.id,
                    if e.disabled { "disabled" } else { "active  " },
                    e.url,
                    if e.events.is_empty() {
                        "every event".to_string()
                    } else {
                        e.events.join(",")
                    }
                );
            }
            Ok(())
        }
        WebhookCommand::Disable { store, id } => {
            let vault = open_without_datasets(&store)?;
            vault.disable_endpoint(None, &id)?;
            say!("endpoint `{id}` disabled");
            Ok(())
        }
    }
}

fn serve(config: steward_server::Config) -> Result<()> {
    let backend = config.backend()?;
    let vault = Arc::new(open_configured(&config, Opening::MayCreate)?);
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let mailer = config.mailer().map_err(|e| anyhow!(e))?;
    let tls = match &config.tls {
        Some(t) => {
            Some(steward_server::tls::server_config(&t.cert, &t.key).map_err(|e| anyhow!(e))?)
        }
        None => None,
    };
    let policy = vault.policy().version.clone();
    let state =
        steward_server::AppState::new(vault, mailer).with_origins(config.allowed_origins.clone());
    let running = steward_server::start(
        state,
        listener,
        steward_server::Options::from_config(&config),
        tls,
        shutdown_signal(),
    )
    .context("cannot start the server")?;
    tracing::info!(
        listen = %running.addr(),
        store = %backend.describe(),
        policy = %policy,
        "serving"
    );
    eprintln!(
        "steward: serving on {}://{}",
        if config.tls.is_some() {
            "https"
        } else {
            "http"
        },
        running.addr()
    );
    running.wait().context("the server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM: stop taking requests, finish those in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
