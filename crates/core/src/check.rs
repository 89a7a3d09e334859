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

    /// Rows of state that decide reads and either fail their tag or disagree with what the
    /// audit log recorded (P10, P27, P33): the state is recomputed from the log — subjects from
    /// `subject.register`, `subject.close`, `subject.erase` and `subject.purge`, the consent
    /// in force from the last granted `consent.grant` / `consent.withdraw` per subject and
    /// target, holds from `hold.place` and `hold.lift`, published policy versions from
    /// `policy.publish` — and every row is compared with it.
    /// This also finds an older row put back with its own valid tag. Rows are named by the
    /// subject's pseudonym (as the log names them) and the target or hold id.
    pub fn state_problems(&self) -> Result<Vec<String>, Error> {
        use std::collections::{BTreeMap, BTreeSet};
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        enum Life {
            Active,
            Closed,
            Erased,
        }
        let mut lives: BTreeMap<String, Life> = BTreeMap::new();
        let mut consents: BTreeMap<(String, String), bool> = BTreeMap::new();
        let mut holds: BTreeMap<String, bool> = BTreeMap::new();
        // version -> (digest, effective date), from `policy.publish`.
        let mut published: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut unreadable = 0u64;
        self.store.audit_scan(1, &mut |raw| {
            let Some(entry) = raw
                .hash
                .try_into()
                .ok()
                .and_then(|h| steward_audit::Entry::decode(raw.bytes, h).ok())
            else {
                unreadable += 1;
                return true;
            };
            if entry.outcome != "granted" {
                return true;
            }
            let detail: serde_json::Value =
                serde_json::from_str(&entry.detail).unwrap_or(serde_json::Value::Null);
            let text = |key: &str| detail.get(key).and_then(|v| v.as_str()).map(String::from);
            match entry.action.as_str() {
                "subject.register" => {
                    lives.insert(entry.subject, Life::Active);
                }
                "subject.close" => {
                    lives.insert(entry.subject, Life::Closed);
                }
                "subject.erase" | "subject.purge" => {
                    lives.insert(entry.subject, Life::Erased);
                }
                "consent.grant" | "consent.withdraw" => {
                    if let Some(target) = text("target") {
                        consents.insert((entry.subject, target), entry.action == "consent.grant");
                    }
                }
                "hold.place" => {
                    if let Some(id) = text("hold") {
                        holds.insert(id, false);
                    }
                }
                "hold.lift" => {
                    if let Some(id) = text("hold") {
                        holds.insert(id, true);
                    }
                }
                "policy.publish" => {
                    if let (Some(v), Some(d), Some(e)) =
                        (text("version"), text("digest"), text("effective"))
                    {
                        published.insert(v, (d, e));
                    }
                }
                _ => {}
            }
            true
        })?;
        let rows = self.store.state_rows()?;
        let mut problems = Vec::new();
        if unreadable > 0 {
            problems.push(format!(
                "{unreadable} audit entries could not be read, so the state was compared with what could"
            ));
        }
        for s in &rows.subjects {
            let p = self.pseudonym(crate::SubjectId(s.id));
            if self.check_state(&s.id, s.state, &s.tag).is_err() {
                problems.push(format!(
                    "subject {p}: its tag does not match its state (changed outside Steward)"
                ));
            }
            let stored = match s.state {
                steward_store::SubjectState::Active => Life::Active,
                steward_store::SubjectState::Closed => Life::Closed,
                steward_store::SubjectState::Erasing | steward_store::SubjectState::Erased => {
                    Life::Erased
                }
            };
            match lives.get(&p) {
                None => problems.push(format!(
                    "subject {p}: in the store, but the log never registered it"
                )),
                Some(logged) if *logged != stored => problems.push(format!(
                    "subject {p}: `{}` in the store, but the log says {logged:?}",
                    s.state.as_str()
                )),
                Some(_) => {}
            }
        }
        let mut seen = BTreeSet::new();
        for c in &rows.consents {
            let p = self.pseudonym(crate::SubjectId(c.subject));
            if self.check_consent(c).is_err() {
                problems.push(format!(
                    "consent of {p} for `{}`: its tag does not match (changed outside Steward)",
                    c.target
                ));
            }
            let key = (p, c.target.clone());
            match consents.get(&key) {
                None => problems.push(format!(
                    "consent of {} for `{}`: in the store, but not in the log",
                    key.0, key.1
                )),
                Some(granted) if *granted != c.granted => problems.push(format!(
                    "consent of {} for `{}`: {} in the store, but the log's last word is {}",
                    key.0,
                    key.1,
                    if c.granted { "granted" } else { "withdrawn" },
                    if *granted { "granted" } else { "withdrawn" }
                )),
                Some(_) => {}
            }
            seen.insert(key);
        }
        for ((p, target), _) in consents.iter().filter(|(k, _)| !seen.contains(*k)) {
            problems.push(format!(
                "consent of {p} for `{target}`: in the log, but missing from the store"
            ));
        }
        let mut seen = BTreeSet::new();
        for h in &rows.holds {
            if self.check_hold(h).is_err() {
                problems.push(format!(
                    "hold {}: its tag does not match (changed outside Steward)",
                    h.id
                ));
            }
            match holds.get(&h.id) {
                None => problems.push(format!("hold {}: in the store, but not in the log", h.id)),
                Some(lifted) if *lifted != h.lifted_ms.is_some() => problems.push(format!(
                    "hold {}: {} in the store, but {} in the log",
                    h.id,
                    if h.lifted_ms.is_some() {
                        "lifted"
                    } else {
                        "not lifted"
                    },
                    if *lifted { "lifted" } else { "not lifted" }
                )),
                Some(_) => {}
            }
            seen.insert(h.id.clone());
        }
        for id in holds.keys().filter(|id| !seen.contains(*id)) {
            problems.push(format!("hold {id}: in the log, but missing from the store"));
        }
        // P29: each stored policy version is the one the log says was published — its text
        // (by digest) and the midnight it takes effect.
        let mut seen = BTreeSet::new();
        for v in self.store.policy_versions()? {
            let effective = crate::versions::ms_date(v.effective_ms);
            match published.get(&v.version) {
                None => problems.push(format!(
                    "policy version {}: in the store, but the log never published it",
                    v.version
                )),
                Some((digest, date))
                    if *digest != v.digest
                        || *date != effective
                        || v.effective_ms.rem_euclid(crate::DAY_MS) != 0 =>
                {
                    problems.push(format!(
                        "policy version {}: stored with another text or effective time than the log published ({date})",
                        v.version
                    ))
                }
                Some(_) => {}
            }
            seen.insert(v.version);
        }
        for v in published.keys().filter(|v| !seen.contains(*v)) {
            problems.push(format!(
                "policy version {v}: in the log, but missing from the store"
            ));
        }
        Ok(problems)
    }
}
