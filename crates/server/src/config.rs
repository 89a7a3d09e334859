//! Layered configuration: built-in defaults, then a TOML file, then `STEWARD_*` environment
//! variables. Unknown keys in the file and unknown `STEWARD_*` variables are refused, so a typo
//! fails loudly instead of being ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The server's settings.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Version of this configuration format; this build reads 1.
    #[serde(default = "one")]
    pub version: u32,
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Data directory of the embedded store.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// PostgreSQL connection string (`postgres://user@host:5432/db`); the embedded SQLite
    /// store in `data_dir` when absent.
    #[serde(default)]
    pub database: Option<String>,
    /// Schema of the data in `database`.
    #[serde(default = "default_schema")]
    pub database_schema: String,
    /// Connection string for the keyring, with its own credentials; `database` when absent.
    #[serde(default)]
    pub keyring_database: Option<String>,
    /// Schema of the keyring.
    #[serde(default = "default_keyring_schema")]
    pub keyring_schema: String,
    /// Policy file; the shipped example when absent.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Master key file; `DATA_DIR/master.key` (or `$STEWARD_MASTER_KEY`) when absent.
    #[serde(default)]
    pub master_key_file: Option<PathBuf>,
    /// The checkpoint journal (P33): every signed checkpoint is appended here, outside the
    /// store, and the chain is verified from its newest checkpoint before the next is signed.
    /// `DATA_DIR/journal/checkpoints.jsonl` when absent; put it where the database's writers
    /// cannot write (another volume, an append-only file).
    #[serde(default)]
    pub checkpoint_journal: Option<PathBuf>,
    /// The erasure journal (P28): every erasure is recorded here, outside the store and every
    /// backup, and every restore re-applies it. `DATA_DIR/journal/erasures.jsonl` when
    /// absent; keep it off the database's host and out of backups.
    #[serde(default)]
    pub erasure_journal: Option<PathBuf>,
    /// Days a keyring backup is kept (`backup create` deletes older ones): what erasure
    /// certificates promise of them.
    #[serde(default = "default_keyring_retention")]
    pub keyring_backup_retention_days: u32,
    /// How much of the embedded store's files is checked at every open (P34): `full` (SQLite
    /// `integrity_check`, the default), `quick` (`quick_check`) or `off`.
    #[serde(default = "default_open_check")]
    pub sqlite_open_check: String,
    /// The deployment's storage region; must be one the policy allows (P16).
    #[serde(default)]
    pub region: Option<String>,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_body_limit")]
    pub max_body_bytes: usize,
    /// TLS certificate chain and private key (PEM); plain HTTP without them.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// SMTP relay for one-time sign-in codes; self-service sign-in is off without it.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// For trying Steward out without a relay: mail written as files to this directory
    /// instead (used only when `smtp` is not set). Mail holds addresses and codes in clear.
    #[serde(default)]
    pub mail_dir: Option<PathBuf>,
    /// Seconds between background retention sweeps (P17); 0 turns them off.
    #[serde(default = "default_sweep")]
    pub retention_sweep_secs: u64,
    /// Microseconds the embedded store's event loop keeps polling its sockets after a
    /// request before it sleeps; 0 turns busy polling off. Not used with PostgreSQL.
    #[serde(default = "default_busy_poll")]
    pub busy_poll_us: u64,
    /// Webhook endpoints may be on loopback or private addresses (a receiver beside the
    /// server, tests). Off: an API key cannot make Steward call into the provider's network.
    #[serde(default)]
    pub webhooks_allow_local: bool,
    /// Attempts at delivering a message before it is dead (`steward outbox retry` puts it
    /// back).
    #[serde(default = "default_outbox_attempts")]
    pub outbox_max_attempts: u32,
    /// Milliseconds between the dispatcher's looks at the outbox when it is idle; 0 turns the
    /// dispatcher off (another server, or `steward outbox dispatch`, delivers).
    #[serde(default = "default_outbox_poll")]
    pub outbox_poll_ms: u64,
    /// Milliseconds a dispatcher holds the messages it claimed: another takes them only
    /// after, so a dispatcher that died mid-batch delays its messages by at most this.
    #[serde(default = "default_outbox_lease")]
    pub outbox_lease_ms: u64,
    /// Subjects a notice campaign takes per unit of work (P30): each batch's mails and the
    /// campaign's cursor commit together, so a crash resumes after the last batch.
    #[serde(default = "default_notice_batch")]
    pub notice_batch: usize,
    /// Who is reminded of deadlines, and when (P32).
    #[serde(default)]
    pub contacts: ContactsConfig,
    /// The provider's sites (`https://www.example.cn`, scheme, host and port only) whose pages
    /// may call the visitor consent API from the browser (P7); every other origin is refused.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// New visitors one caller's address may make in an hour through the public visitor API
    /// (0: no limit). Behind a proxy that hides callers' addresses every visitor comes from
    /// one address: raise it, or set 0 and limit at the proxy.
    #[serde(default = "default_visitor_limit")]
    pub visitor_limit_per_hour: u32,
    /// The provider's other databases (`docs/datasets.md`): dataset files, and how to reach
    /// each dataset's database.
    #[serde(default)]
    pub datasets: DatasetsConfig,
}

/// Dataset files and a connection per dataset (`[datasets]`). Credentials live here (or in
/// `STEWARD_DATASET_<KEY>_URL`), never in a dataset file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatasetsConfig {
    /// Dataset files (YAML), read together.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// How to reach each dataset's database, by its `fides_key`.
    #[serde(default)]
    pub connections: std::collections::BTreeMap<String, DatasetConnection>,
}

/// How to reach one dataset's database.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatasetConnection {
    /// `postgres://user:password@host:5432/db?sslmode=prefer` or
    /// `mysql://user:password@host:3306/db` (`mariadb://` too).
    pub url: String,
    /// PostgreSQL: the schema its tables are in (`public` when absent).
    #[serde(default)]
    pub schema: Option<String>,
}

/// Staff contacts for deadline reminders and escalations (email addresses).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ContactsConfig {
    /// Reminded before a request's deadline.
    #[serde(default)]
    pub requests: Vec<String>,
    /// Told when a deadline has passed: the privacy officer.
    #[serde(default)]
    pub escalation: Vec<String>,
    /// Days before a deadline at which reminders go.
    #[serde(default = "default_reminder_days")]
    pub reminder_days: Vec<u32>,
}

impl Default for ContactsConfig {
    fn default() -> ContactsConfig {
        ContactsConfig {
            requests: Vec::new(),
            escalation: Vec::new(),
            reminder_days: default_reminder_days(),
        }
    }
}

impl ContactsConfig {
    /// As the vault takes them.
    pub fn contacts(&self) -> steward_core::deadlines::Contacts {
        steward_core::deadlines::Contacts {
            requests: self.requests.clone(),
            escalation: self.escalation.clone(),
            reminder_days: self.reminder_days.clone(),
        }
    }
}

fn default_reminder_days() -> Vec<u32> {
    vec![7, 1]
}

fn default_outbox_attempts() -> u32 {
    12
}

fn default_outbox_poll() -> u64 {
    500
}

fn default_outbox_lease() -> u64 {
    120_000
}

fn default_visitor_limit() -> u32 {
    steward_core::visitors::VISITOR_LIMIT_PER_HOUR
}

fn default_notice_batch() -> usize {
    steward_core::versions::CAMPAIGN_BATCH
}

/// Where the TLS certificate and key are.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// Where email goes.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host.
    pub host: String,
    /// Relay port.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// Sender address, such as `Privacy <privacy@example.com>`.
    pub from: String,
}

fn default_smtp_port() -> u16 {
    25
}

fn default_open_check() -> String {
    "full".into()
}

fn default_keyring_retention() -> u32 {
    steward_core::backup::KEYRING_RETENTION_DAYS
}

fn default_sweep() -> u64 {
    3600
}

fn default_busy_poll() -> u64 {
    100
}

fn one() -> u32 {
    1
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("steward-data")
}

fn default_schema() -> String {
    "steward".into()
}

fn default_keyring_schema() -> String {
    "steward_keyring".into()
}

fn default_body_limit() -> usize {
    2 << 20
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: 1,
            listen: default_listen(),
            data_dir: default_data_dir(),
            database: None,
            database_schema: default_schema(),
            keyring_database: None,
            keyring_schema: default_keyring_schema(),
            policy: None,
            master_key_file: None,
            region: None,
            checkpoint_journal: None,
            erasure_journal: None,
            keyring_backup_retention_days: default_keyring_retention(),
            sqlite_open_check: default_open_check(),
            max_body_bytes: default_body_limit(),
            retention_sweep_secs: default_sweep(),
            webhooks_allow_local: false,
            outbox_max_attempts: default_outbox_attempts(),
            outbox_poll_ms: default_outbox_poll(),
            outbox_lease_ms: default_outbox_lease(),
            notice_batch: default_notice_batch(),
            visitor_limit_per_hour: default_visitor_limit(),
            datasets: DatasetsConfig::default(),
            contacts: ContactsConfig::default(),
            allowed_origins: Vec::new(),
            busy_poll_us: default_busy_poll(),
            smtp: None,
            mail_dir: None,
            tls: None,
        }
    }
}

/// A configuration that cannot be used. Messages name keys, never secret values.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file `{0}`: {1}")]
    Read(PathBuf, std::io::ErrorKind),
    /// The file is not a valid configuration.
    #[error("config file `{0}`: {1}")]
    Parse(PathBuf, String),
    /// An environment variable is unknown or its value unusable.
    #[error("environment variable `{0}`: {1}")]
    Env(String, String),
}

/// Whether `o` is a web origin as browsers send it: `http` or `https`, `://`, a host of
/// letters, digits, `.` and `-` (or a bracketed IPv6 address), and an optional `:port`.
fn is_origin(o: &str) -> bool {
    let Some(rest) = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && (host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            || (host.starts_with('[') && host.ends_with(']')));
    host_ok && port.is_none_or(|p| p.parse::<u16>().is_ok())
}

/// Variables that belong to Steward but are not configuration keys.
const OTHER_VARIABLES: &[&str] = &[
    "STEWARD_LOG",
    "STEWARD_MASTER_KEY",
    "STEWARD_CONFIG",
    "STEWARD_STAFF_PASSWORD",
    "STEWARD_TEST_POSTGRES",
    "STEWARD_TEST_BACKEND",
];

impl Config {
    /// Where mail goes: the SMTP relay, else the mail directory, else nowhere (self-service
    /// sign-in and the outbox's mails are then off).
    pub fn mailer(&self) -> Result<Option<std::sync::Arc<dyn steward_core::Mailer>>, String> {
        if let Some(smtp) = &self.smtp {
            let m = crate::mail::SmtpMailer::new(&smtp.host, smtp.port, &smtp.from)
                .map_err(|e| format!("smtp: {e}"))?;
            return Ok(Some(std::sync::Arc::new(m)));
        }
        match &self.mail_dir {
            Some(dir) => {
                let m = crate::mail::DirMailer::new(dir, "Steward <privacy@localhost>")
                    .map_err(|e| format!("mail_dir: {e}"))?;
                Ok(Some(std::sync::Arc::new(m)))
            }
            None => Ok(None),
        }
    }

    /// Defaults, then `file`, then the `STEWARD_*` variables among `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Read(path.to_path_buf(), e.kind()))?;
                toml::from_str::<Config>(&text)
                    .map_err(|e| ConfigError::Parse(path.to_path_buf(), e.message().to_string()))?
            }
        };
        if config.version != 1 {
            return Err(ConfigError::Parse(
                file.map(Path::to_path_buf).unwrap_or_default(),
                format!(
                    "version {} is not supported; this build reads 1",
                    config.version
                ),
            ));
        }
        for (key, value) in env {
            let Some(name) = key.strip_prefix("STEWARD_") else {
                continue;
            };
            let bad = |why: &str| ConfigError::Env(key.clone(), why.to_string());
            match name {
                "LISTEN" => {
                    config.listen = value
                        .parse()
                        .map_err(|_| bad("must be an address such as 127.0.0.1:8080"))?
                }
                "DATA_DIR" => config.data_dir = PathBuf::from(value),
                "DATABASE" => config.database = Some(value),
                "DATABASE_SCHEMA" => config.database_schema = value,
                "KEYRING_DATABASE" => config.keyring_database = Some(value),
                "KEYRING_SCHEMA" => config.keyring_schema = value,
                "POLICY" => config.policy = Some(PathBuf::from(value)),
                "MASTER_KEY_FILE" => config.master_key_file = Some(PathBuf::from(value)),
                "REGION" => config.region = Some(value),
                "CHECKPOINT_JOURNAL" => config.checkpoint_journal = Some(PathBuf::from(value)),
                "ERASURE_JOURNAL" => config.erasure_journal = Some(PathBuf::from(value)),
                "SQLITE_OPEN_CHECK" => config.sqlite_open_check = value,
                "KEYRING_BACKUP_RETENTION_DAYS" => {
                    config.keyring_backup_retention_days = value
                        .parse()
                        .map_err(|_| bad("must be a whole number of days"))?
                }
                "TLS_CERT" | "TLS_KEY" => {
                    let tls = config.tls.get_or_insert_with(|| TlsConfig {
                        cert: PathBuf::new(),
                        key: PathBuf::new(),
                    });
                    if name == "TLS_CERT" {
                        tls.cert = PathBuf::from(value);
                    } else {
                        tls.key = PathBuf::from(value);
                    }
                }
                "MAIL_DIR" => config.mail_dir = Some(PathBuf::from(value)),
                "SMTP_HOST" | "SMTP_PORT" | "SMTP_FROM" => {
                    let smtp = config.smtp.get_or_insert_with(|| SmtpConfig {
                        host: String::new(),
                        port: default_smtp_port(),
                        from: String::new(),
                    });
                    match name {
                        "SMTP_HOST" => smtp.host = value,
                        "SMTP_PORT" => {
                            smtp.port = value.parse().map_err(|_| bad("must be a port number"))?
                        }
                        _ => smtp.from = value,
                    }
                }
                "RETENTION_SWEEP_SECS" => {
                    config.retention_sweep_secs = value
                        .parse()
                        .map_err(|_| bad("must be a whole number of seconds"))?
                }
                "BUSY_POLL_US" => {
                    config.busy_poll_us = value
                        .parse()
                        .map_err(|_| bad("must be a whole number of microseconds"))?
                }
                "WEBHOOKS_ALLOW_LOCAL" => {
                    config.webhooks_allow_local = match value.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad("must be true or false")),
                    }
                }
                "OUTBOX_MAX_ATTEMPTS" => {
                    config.outbox_max_attempts = value
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| bad("must be a whole number from 1"))?
                }
                "NOTICE_BATCH" => {
                    config.notice_batch =
                        value
                            .parse()
                            .ok()
                            .filter(|n| (1..=100_000).contains(n))
                            .ok_or_else(|| bad("must be a whole number from 1 to 100000"))?
                }
                "OUTBOX_LEASE_MS" => {
                    config.outbox_lease_ms = value
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| bad("must be a whole number of milliseconds from 1"))?
                }
                "OUTBOX_POLL_MS" => {
                    config.outbox_poll_ms = value
                        .parse()
                        .map_err(|_| bad("must be a whole number of milliseconds"))?
                }
                "CONTACTS_REQUESTS" | "CONTACTS_ESCALATION" => {
                    let list: Vec<String> = value
                        .split(',')
                        .map(|a| a.trim().to_string())
                        .filter(|a| !a.is_empty())
                        .collect();
                    if name == "CONTACTS_REQUESTS" {
                        config.contacts.requests = list;
                    } else {
                        config.contacts.escalation = list;
                    }
                }
                "VISITOR_LIMIT_PER_HOUR" => {
                    config.visitor_limit_per_hour = value
                        .parse()
                        .map_err(|_| bad("must be a whole number (0: no limit)"))?
                }
                "ALLOWED_ORIGINS" => {
                    config.allowed_origins = value
                        .split(',')
                        .map(|o| o.trim().to_string())
                        .filter(|o| !o.is_empty())
                        .collect();
                }
                "DATASET_FILES" => {
                    config.datasets.files = value
                        .split(',')
                        .map(str::trim)
                        .filter(|f| !f.is_empty())
                        .map(PathBuf::from)
                        .collect();
                }
                _ if name.starts_with("DATASET_")
                    && (name.ends_with("_URL") || name.ends_with("_SCHEMA")) =>
                {
                    let (rest, is_url) = match name.strip_suffix("_URL") {
                        Some(rest) => (rest, true),
                        None => (name.strip_suffix("_SCHEMA").unwrap_or(name), false),
                    };
                    let dataset = rest
                        .strip_prefix("DATASET_")
                        .unwrap_or(rest)
                        .to_ascii_lowercase();
                    if dataset.is_empty() {
                        return Err(bad("names a dataset: STEWARD_DATASET_<KEY>_URL"));
                    }
                    let connection =
                        config
                            .datasets
                            .connections
                            .entry(dataset)
                            .or_insert_with(|| DatasetConnection {
                                url: String::new(),
                                schema: None,
                            });
                    if is_url {
                        connection.url = value;
                    } else {
                        connection.schema = Some(value);
                    }
                }
                "MAX_BODY_BYTES" => {
                    config.max_body_bytes = value
                        .parse()
                        .map_err(|_| bad("must be a whole number of bytes"))?
                }
                _ if OTHER_VARIABLES.contains(&key.as_str()) => {}
                _ => {
                    return Err(bad(
                        "is not a Steward setting (LISTEN, DATA_DIR, DATABASE, DATABASE_SCHEMA, KEYRING_DATABASE, KEYRING_SCHEMA, POLICY, MASTER_KEY_FILE, REGION, CHECKPOINT_JOURNAL, ERASURE_JOURNAL, KEYRING_BACKUP_RETENTION_DAYS, SQLITE_OPEN_CHECK, MAX_BODY_BYTES, RETENTION_SWEEP_SECS, BUSY_POLL_US, WEBHOOKS_ALLOW_LOCAL, OUTBOX_MAX_ATTEMPTS, OUTBOX_POLL_MS, OUTBOX_LEASE_MS, NOTICE_BATCH, CONTACTS_REQUESTS, CONTACTS_ESCALATION, ALLOWED_ORIGINS, VISITOR_LIMIT_PER_HOUR, DATASET_FILES, DATASET_<KEY>_URL, DATASET_<KEY>_SCHEMA, MAIL_DIR, SMTP_HOST, SMTP_PORT, SMTP_FROM, TLS_CERT, TLS_KEY)",
                    ));
                }
            }
        }
        if !config.allowed_origins.iter().all(|o| is_origin(o)) {
            return Err(ConfigError::Parse(
                file.map(Path::to_path_buf).unwrap_or_default(),
                "each of `allowed_origins` is a scheme, a host and an optional port (`https://www.example.cn`), without a path".into(),
            ));
        }
        Ok(config)
    }

    /// Where signed checkpoints are kept outside the store.
    pub fn journal(&self) -> steward_core::evidence::Journal {
        steward_core::evidence::Journal::new(
            self.checkpoint_journal
                .clone()
                .unwrap_or_else(|| self.data_dir.join("journal").join("checkpoints.jsonl")),
        )
    }

    /// Where erasures are recorded outside the store and every backup.
    pub fn erasure_journal(&self) -> steward_core::erasures::ErasureJournal {
        steward_core::erasures::ErasureJournal::new(
            self.erasure_journal
                .clone()
                .unwrap_or_else(|| self.data_dir.join("journal").join("erasures.jsonl")),
        )
    }

    /// The storage backend these settings name (and, for the embedded store, how much its
    /// files are checked when they open).
    pub fn backend(&self) -> Result<steward_core::Backend, steward_core::StoreError> {
        steward_core::set_open_check(match self.sqlite_open_check.as_str() {
            "full" => steward_core::OpenCheck::Full,
            "quick" => steward_core::OpenCheck::Quick,
            "off" => steward_core::OpenCheck::Off,
            _ => {
                return Err(steward_core::StoreError::Incompatible(
                    "sqlite_open_check is full, quick or off".into(),
                ));
            }
        });
        steward_core::Backend::choose(
            &self.data_dir,
            self.database.as_deref(),
            &self.database_schema,
            self.keyring_database.as_deref(),
            &self.keyring_schema,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("steward.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/steward\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[("STEWARD_LISTEN", "127.0.0.1:9100"), ("PATH", "/bin")]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.data_dir, PathBuf::from("/srv/steward"));
        assert_eq!(Config::load(None, env(&[])).unwrap(), Config::default());

        std::fs::write(&file, "listne = \"127.0.0.1:9000\"\n").unwrap();
        let e = Config::load(Some(&file), env(&[])).unwrap_err().to_string();
        assert!(e.contains("unknown field `listne`"), "{e}");
        let e = Config::load(None, env(&[("STEWARD_LISTN", "x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("STEWARD_LISTN"), "{e}");
        assert!(Config::load(None, env(&[("STEWARD_LISTEN", "nowhere")])).is_err());
        assert!(Config::load(None, env(&[("STEWARD_LOG", "debug")])).is_ok());
        let c = Config::load(None, env(&[("STEWARD_BUSY_POLL_US", "0")])).unwrap();
        assert_eq!(c.busy_poll_us, 0);
        let e = Config::load(None, env(&[("STEWARD_BUSY_POLL_US", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("microseconds"), "{e}");
    }

    #[test]
    fn dataset_connections_come_from_the_file_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("steward.toml");
        std::fs::write(
            &file,
            "[datasets]\nfiles = [\"a.yml\"]\n[datasets.connections.shop]\nurl = \"postgres://x@db/shop\"\nschema = \"sales\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("STEWARD_DATASET_SHOP_URL", "postgres://y@db/shop"),
                (
                    "STEWARD_DATASET_SUPPORT_DESK_URL",
                    "mysql://root@db/support",
                ),
                ("STEWARD_DATASET_FILES", "a.yml, b.yml"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.datasets.files,
            [PathBuf::from("a.yml"), PathBuf::from("b.yml")]
        );
        let shop = &c.datasets.connections["shop"];
        assert_eq!(
            (shop.url.as_str(), shop.schema.as_deref()),
            ("postgres://y@db/shop", Some("sales"))
        );
        assert_eq!(
            c.datasets.connections["support_desk"].url,
            "mysql://root@db/support"
        );
        std::fs::write(&file, "[datasets]\nfile = []\n").unwrap();
        assert!(
            Config::load(Some(&file), env(&[])).is_err(),
            "a misspelt key is refused"
        );
    }

    #[test]
    fn p07_allowed_origins_are_web_origins_without_a_path() {
        let c = Config::load(
            None,
            env(&[(
                "STEWARD_ALLOWED_ORIGINS",
                "https://www.example.cn, http://127.0.0.1:8081,https://[::1]:9",
            )]),
        )
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            [
                "https://www.example.cn",
                "http://127.0.0.1:8081",
                "https://[::1]:9"
            ]
        );
        for bad in [
            "www.example.cn",
            "https://www.example.cn/",
            "https://www.example.cn/shop",
            "ftp://example.cn",
            "https://example.cn:99999",
            "https://",
        ] {
            let e = Config::load(None, env(&[("STEWARD_ALLOWED_ORIGINS", bad)]));
            assert!(e.is_err(), "{bad} was taken");
        }
    }
}
