//! Files appended a line at a time outside the store — the checkpoint journal (P33) and the
//! erasure journal (P28) — where whoever can write the database cannot reach them, and the
//! strict reading of evidence files' lines.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use steward_audit::Fault;

use crate::error::Error;

/// A file of JSON lines, appended one whole line per write and made durable, shared between
/// processes under a lock on `<file>.lock`.
#[derive(Clone, Debug)]
pub(crate) struct AppendFile {
    path: PathBuf,
    /// What it is, for messages (`the checkpoint journal`).
    what: &'static str,
}

impl AppendFile {
    pub(crate) fn new(path: impl Into<PathBuf>, what: &'static str) -> AppendFile {
        AppendFile {
            path: path.into(),
            what,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, doing: &str, e: &std::io::Error) -> Error {
        Error::io(
            format!("cannot {doing} {} `{}`", self.what, self.path.display()),
            e,
        )
    }

    fn make_dir(&self) -> Result<(), Error> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.fail("make the directory of", &e))?;
        }
        Ok(())
    }

    /// Takes the file's lock (`<file>.lock`), released when the returned file is dropped.
    pub(crate) fn lock(&self) -> Result<std::fs::File, Error> {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        self.make_dir()?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(PathBuf::from(name))
            .map_err(|e| self.fail("lock", &e))?;
        f.lock().map_err(|e| self.fail("lock", &e))?;
        Ok(f)
    }

    /// The whole file, or `None` when it was never written.
    pub(crate) fn read(&self) -> Result<Option<Vec<u8>>, Error> {
        match std::fs::read(&self.path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.fail("read", &e)),
        }
    }

    /// Appends `line` and a newline in one write, and makes it durable.
    pub(crate) fn append(&self, line: &str) -> Result<(), Error> {
        self.make_dir()?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.fail("append to", &e))?;
        // One write of the whole line, so a crash leaves it whole or absent.
        f.write_all(format!("{line}\n").as_bytes())
            .map_err(|e| self.fail("append to", &e))?;
        f.sync_all().map_err(|e| self.fail("append to", &e))
    }

    /// Renames the file to `<file>.<suffix>`, kept; returns where it went.
    pub(crate) fn move_aside(&self, suffix: &str) -> Result<PathBuf, Error> {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{suffix}"));
        let to = PathBuf::from(name);
        std::fs::rename(&self.path, &to).map_err(|e| self.fail("move aside", &e))?;
        Ok(to)
    }
}

/// Splits an evidence file into its lines, each with its number from 1. A final newline ends
/// the last line; it does not start another.
pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let empty = body.is_empty();
    (1u64..)
        .zip(body.split(|b| *b == b'\n'))
        .filter(move |_| !empty)
}

/// Reads one line of an evidence file as a `T`, or names what is wrong with it (never quoting
/// it).
pub(crate) fn parse_line<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    file: &str,
    line: u64,
) -> Result<T, Fault> {
    let unreadable = |why: &'static str| Fault::Unreadable {
        file: file.to_string(),
        line,
        why,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| unreadable("not valid UTF-8"))?;
    serde_json::from_str(text).map_err(|e| {
        let msg = e.to_string();
        unreadable(match e.classify() {
            serde_json::error::Category::Data if msg.starts_with("missing field") => {
                "a key is missing"
            }
            serde_json::error::Category::Data if msg.starts_with("duplicate field") => {
                "a key is given twice"
            }
            serde_json::error::Category::Data if msg.starts_with("unknown field") => {
                "a key that is not in the format"
            }
            serde_json::error::Category::Data if msg.contains("lowercase hex") => {
                "a hash or signature is not lowercase hex of its length"
            }
            serde_json::error::Category::Data => "a value has the wrong type",
            _ => "not a JSON object",
        })
    })
}
