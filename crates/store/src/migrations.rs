//! Schema migrations as numbered SQL files, one directory per backend and database
//! (`migrations/sqlite/NNN_name.sql`, `migrations/postgres/NNN_name.sql`, and the keyrings'),
//! embedded at build time. Each migration is applied in its own transaction, one statement at
//! a time: a distributed PostgreSQL (Citus) refuses a multi-statement string that creates an
//! index on a distributed table ("cannot insert multiple commands into a prepared statement").

/// One migration: its number (from 1, no gaps), its name and its SQL.
#[derive(Copy, Clone, Debug)]
pub struct Migration {
    /// The number its file starts with; the stores record the highest applied.
    pub version: u32,
    /// The file's name without number and extension.
    pub name: &'static str,
    /// The file's text.
    pub sql: &'static str,
}

impl Migration {
    /// Its statements, in order: the text split at every `;` that ends a line, with `--`
    /// comment lines dropped. Migrations hold no procedural code, so a `;` at a line's end
    /// always ends a statement.
    pub fn statements(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut current = String::new();
        for line in self.sql.lines() {
            let trimmed = line.trim_end();
            if trimmed.trim_start().starts_with("--") {
                continue;
            }
            if !current.is_empty() {
                current.push('\n');
            }
            if let Some(body) = trimmed.strip_suffix(';') {
                current.push_str(body);
                if !current.trim().is_empty() {
                    out.push(current.trim().to_string());
                }
                current.clear();
            } else {
                current.push_str(trimmed);
            }
        }
        if !current.trim().is_empty() {
            out.push(current.trim().to_string());
        }
        out
    }
}

macro_rules! migrations {
    ($dir:literal: $($version:literal $name:literal),* $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/", $dir, "/", $name)),
        }),*]
    };
}

/// The SQLite data store's migrations.
pub const SQLITE: &[Migration] = migrations!("sqlite":
    1 "001_initial.sql",
    2 "002_api_keys.sql",
    3 "003_holds_and_requests.sql",
    4 "004_self_service.sql",
    5 "005_staff.sql",
    6 "006_state_tags.sql",
    7 "007_outbox.sql",
    8 "008_subject_languages.sql",
    9 "009_policy_versions.sql",
    10 "010_cases.sql",
    11 "011_subject_links.sql",
    12 "012_request_steps.sql",
    13 "013_request_systems.sql",
    14 "014_request_systems_asked.sql",
);

/// The SQLite keyring's migrations.
pub const SQLITE_KEYRING: &[Migration] = migrations!("sqlite-keyring":
    1 "001_data_keys.sql",
    2 "002_destroyed.sql",
);

/// The PostgreSQL data schema's migrations. Its history starts from one baseline holding what
/// SQLite reached in five steps; `postgres::tests::backups_name_every_table_of_the_schema` keeps the two
/// schemas in step from here on.
pub const POSTGRES: &[Migration] = migrations!("postgres":
    1 "001_initial.sql",
    2 "002_state_tags.sql",
    3 "003_outbox.sql",
    4 "004_subject_languages.sql",
    5 "005_policy_versions.sql",
    6 "006_cases.sql",
    7 "007_subject_links.sql",
    8 "008_request_steps.sql",
    9 "009_request_systems.sql",
    10 "010_request_systems_asked.sql",
);

/// The PostgreSQL keyring schema's migrations.
pub const POSTGRES_KEYRING: &[Migration] = migrations!("postgres-keyring":
    1 "001_data_keys.sql",
    2 "002_destroyed.sql",
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in a migrations directory is embedded, numbered from 1 without gaps, and
    /// named as embedded: a file added but not listed (or listed twice) fails here.
    #[test]
    fn every_migration_file_is_embedded_in_order() {
        for (dir, list) in [
            ("sqlite", SQLITE),
            ("sqlite-keyring", SQLITE_KEYRING),
            ("postgres", POSTGRES),
            ("postgres-keyring", POSTGRES_KEYRING),
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            let listed: Vec<String> = list.iter().map(|m| m.name.to_string()).collect();
            assert_eq!(
                files, listed,
                "{dir}: files on disk and embedded list differ"
            );
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version as usize, i + 1, "{dir}/{}", m.name);
                assert!(
                    m.name.starts_with(&format!("{:03}_", m.version)),
                    "{dir}/{} does not start with its number",
                    m.name
                );
                assert!(!m.statements().is_empty(), "{dir}/{} is empty", m.name);
            }
        }
    }

    #[test]
    fn statements_split_at_line_ends_and_skip_comments() {
        let m = Migration {
            version: 1,
            name: "001_x.sql",
            sql: "-- a comment; not a statement\nCREATE TABLE a (x TEXT);\nCREATE INDEX b\n  ON a (x);\n\n",
        };
        assert_eq!(
            m.statements(),
            vec!["CREATE TABLE a (x TEXT)", "CREATE INDEX b\n  ON a (x)"]
        );
    }
}
