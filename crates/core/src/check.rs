//! `steward check`: everything that can be verified about a store at rest (P33, P34) — the
//! backend's own structural check of the data and the keyring, the audit log against its
//! signed checkpoints and its journal, and the state that decides reads against the log.

use serde::Serialize;

use crate::error::Error;
use crate::evidence::{self, Fault, Report};
use crate::vault::Vault;

/// What a full check found.
#[derive(Debug, Serialize)]
pub struct Check {
    /// Problems the backend found in the data's structure (SQLite `integrity_check`,
    /// PostgreSQL `amcheck`).
    pub data: Vec<String>,
    /// Problems the backend found in the keyring's structure.
    pub keyring: Vec<String>,
    /// The audit log: its report, or the first fault.
    #[serde(serialize_with = "fault_or_report")]
    pub audit: Result<Report, Fault>,
    /// Rows of state (consent, holds, subjects) that disagree with the log or fail their
    /// authenticity check.
    pub state: Vec<String>,
}

fn fault_or_report<S: serde::Serializer>(
    v: &Result<Report, Fault>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Ok(r) => r.serialize(s),
        Err(f) => s.serialize_str(&f.to_string()),
    }
}

impl Check {
    /// Whether nothing is wrong.
    pub fn sound(&self) -> bool {
        self.data.is_empty()
            && self.keyring.is_empty()
            && self.audit.is_ok()
            && self.state.is_empty()
    }
}

impl Vault {
    /// Runs every check there is; `progress` hears how many audit entries are verified.
    pub fn check(&self, progress: &mut dyn FnMut(u64)) -> Result<Check, Error> {
        let data = self.store.structure_problems()?;
        let keyring = self.keyring.structure_problems()?;
        let public_key = self.keys.public_key();
        let kept = match &self.journal {
            Some(journal) => {
                journal.read(&|m, sig| steward_crypto::verify_signature(&public_key, m, sig))?
            }
            None => Ok(Vec::new()),
        };
        let audit = match kept {
            Ok(kept) => evidence::verify_store(self.store.as_ref(), public_key, kept, progress)?,
            Err(fault) => Err(fault),
        };
        let state = self.state_problems()?;
        Ok(Check {
            data,
            keyring,
            audit,
            state,
        })
    }

    /// Rows of state that decide reads and disagree with what the log recorded: none yet
    /// beyond the structural checks.
    pub(crate) fn state_problems(&self) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }
}
