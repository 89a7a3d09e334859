//! The erasure journal (P28): a record of every erasure kept outside the store and outside
//! every backup, so that no restore — of a data backup, a keyring backup or both, taken
//! before an erasure — can bring an erased subject back. Every restore re-applies it, and a
//! restore refuses a backup the journal cannot be shown to cover.
//!
//! One JSON line per event (`docs/backup.md`): `{"seq":N,"kind":"start"|"erase",
//! "subject":"<uuid or empty>","at_ms":N,"audit_seq":N,"prev":"<64 hex>","signature":"<128
//! hex>"}`. Each line is signed with the deployment's key and names the hash of the line
//! before, so a line cannot be changed, inserted or removed before the last without the
//! journal failing to read.

use serde::{Deserialize, Serialize};
use steward_store::SubjectKey;

use crate::error::Error;
use crate::journal::{AppendFile, lines, parse_line};
use crate::vault::{SubjectId, Vault};

/// Domain-separation prefix of what each line signs.
const DOMAIN: &[u8] = b"steward.erasure-journal.v1\n";

/// One line of the journal.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Position, from 1.
    pub seq: u64,
    /// `start` (the journal's first line) or `erase`.
    pub kind: String,
    /// The erased subject's id; empty for `start`.
    pub subject: String,
    /// When, Unix ms.
    pub at_ms: i64,
    /// The audit log's head when the line was written (`start`), or the `subject.erase` entry.
    pub audit_seq: u64,
    /// The hash of the line before (64 zeros for the first), lowercase hex.
    pub prev: String,
    /// Ed25519 signature over [`Line::message`], lowercase hex.
    pub signature: String,
}

impl Line {
    /// `DOMAIN || u64be(seq) || lp(kind) || lp(subject) || i64be(at_ms) || u64be(audit_seq) ||
    /// prev (32 bytes)`, with `lp(s) = u32be(len) || s`: what is signed, and what the next
    /// line's `prev` is the SHA-256 of.
    fn message(&self, prev: &[u8; 32]) -> Vec<u8> {
        let mut m = DOMAIN.to_vec();
        m.extend_from_slice(&self.seq.to_be_bytes());
        for text in [&self.kind, &self.subject] {
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
            m.extend_from_slice(&len.to_be_bytes());
            m.extend_from_slice(text.as_bytes());
        }
        m.extend_from_slice(&self.at_ms.to_be_bytes());
        m.extend_from_slice(&self.audit_seq.to_be_bytes());
        m.extend_from_slice(prev);
        m
    }
}

/// Where the journal stood: its last line and that line's hash. A backup records it, and a
/// restore requires the journal to still hold it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JournalHead {
    /// The last line's `seq`.
    pub seq: u64,
    /// SHA-256 of the last line's message, lowercase hex.
    pub hash: String,
}

/// The journal as read: every line checked.
#[derive(Debug)]
pub struct Erasures {
    /// The lines, in order.
    pub lines: Vec<Line>,
    /// Each line's hash, by position.
    hashes: Vec<[u8; 32]>,
}

impl Erasures {
    /// The subjects erased.
    pub fn subjects(&self) -> Result<Vec<SubjectKey>, Error> {
        self.lines
            .iter()
            .filter(|l| l.kind == "erase")
            .map(|l| {
                l.subject.parse::<SubjectId>().map(|s| s.0).map_err(|_| {
                    Error::EvidenceInvalid("an erasure journal line names no subject".into())
                })
            })
            .collect()
    }

    /// Whether the journal still holds `head`.
    pub fn holds(&self, head: &JournalHead) -> bool {
        usize::try_from(head.seq)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| self.hashes.get(i))
            .is_some_and(|h| hex::encode(h) == head.hash)
    }

    fn head(&self) -> (u64, [u8; 32]) {
        match (self.lines.last(), self.hashes.last()) {
            (Some(l), Some(h)) => (l.seq, *h),
            _ => (0, [0; 32]),
        }
    }
}

/// The erasure journal at a path.
#[derive(Clone, Debug)]
pub struct ErasureJournal {
    file: AppendFile,
}

impl ErasureJournal {
    /// The journal at `path`; made by its first line.
    pub fn new(path: impl Into<std::path::PathBuf>) -> ErasureJournal {
        ErasureJournal {
            file: AppendFile::new(path, "the erasure journal"),
        }
    }

    /// Where it is.
    pub fn path(&self) -> &std::path::Path {
        self.file.path()
    }

    /// Reads and checks every line against `public_key`; `None` when it was never written.
    pub fn read(&self, public_key: &[u8; 32]) -> Result<Option<Erasures>, Error> {
        let Some(bytes) = self.file.read()? else {
            return Ok(None);
        };
        let name = self.path().display().to_string();
        let bad = |n: u64, why: &str| {
            Error::EvidenceInvalid(format!("the erasure journal `{name}` line {n}: {why}"))
        };
        let mut out = Erasures {
            lines: Vec::new(),
            hashes: Vec::new(),
        };
        for (n, raw) in lines(&bytes) {
            let line: Line = parse_line(raw, &name, n).map_err(|f| bad(n, &f.to_string()))?;
            let (last_seq, prev) = out.head();
            if line.seq != last_seq + 1 || line.prev != hex::encode(prev) {
                return Err(bad(
                    n,
                    "out of order, or a line before it is missing or changed",
                ));
            }
            if (n == 1) != (line.kind == "start")
                || !matches!(line.kind.as_str(), "start" | "erase")
            {
                return Err(bad(
                    n,
                    "the first line starts the journal, every other records an erasure",
                ));
            }
            let message = line.message(&prev);
            let mut sig = [0u8; 64];
            if hex::decode_to_slice(&line.signature, &mut sig).is_err()
                || !steward_crypto::verify_signature(public_key, &message, &sig)
            {
                return Err(bad(
                    n,
                    "the signature does not verify with this deployment's key",
                ));
            }
            out.hashes.push(steward_audit::sha256(&message));
            out.lines.push(line);
        }
        Ok(Some(out))
    }

    /// Under the lock: starts the journal if it was never written, then appends `erasure`
    /// (subject, `subject.erase` entry) if given. Returns where the journal then stands.
    fn append(
        &self,
        vault: &Vault,
        erasure: Option<(SubjectId, u64)>,
    ) -> Result<JournalHead, Error> {
        let _lock = self.file.lock()?;
        let read = self.read(&vault.public_key())?;
        let (mut seq, mut prev) = read.as_ref().map_or((0, [0; 32]), Erasures::head);
        let mut events: Vec<(&str, String, u64)> = Vec::new();
        if read.as_ref().is_none_or(|e| e.lines.is_empty()) {
            events.push(("start", String::new(), vault.store.audit_head()?.0));
        }
        if let Some((subject, audit_seq)) = erasure {
            events.push(("erase", subject.to_string(), audit_seq));
        }
        for (kind, subject, audit_seq) in events {
            let mut line = Line {
                seq: seq + 1,
                kind: kind.into(),
                subject,
                at_ms: vault.clock.now_ms(),
                audit_seq,
                prev: hex::encode(prev),
                signature: String::new(),
            };
            let message = line.message(&prev);
            line.signature = hex::encode(vault.keys.sign(&message));
            let text = serde_json::to_string(&line)
                .map_err(|_| Error::Internal("an erasure journal line could not be written"))?;
            self.file.append(&text)?;
            seq = line.seq;
            prev = steward_audit::sha256(&message);
        }
        Ok(JournalHead {
            seq,
            hash: hex::encode(prev),
        })
    }

    /// Where the journal stands, starting it first if it was never written.
    pub fn head(&self, vault: &Vault) -> Result<JournalHead, Error> {
        self.append(vault, None)
    }

    /// Records that `subject` is being erased (the `subject.erase` entry `audit_seq`).
    pub(crate) fn record(
        &self,
        vault: &Vault,
        subject: SubjectId,
        audit_seq: u64,
    ) -> Result<(), Error> {
        self.append(vault, Some((subject, audit_seq))).map(|_| ())
    }
}

/// Whether `journal` proves it knows every erasure since a backup that recorded `head`: it
/// verifies with `public_key` and still holds that line. The erased subjects when it does,
/// or why not.
pub fn known_since(
    journal: &ErasureJournal,
    public_key: &[u8; 32],
    head: Option<&JournalHead>,
) -> Result<Result<Vec<SubjectKey>, String>, Error> {
    let Some(erasures) = journal.read(public_key)? else {
        return Ok(Err(format!(
            "the erasure journal `{}` does not exist",
            journal.path().display()
        )));
    };
    let Some(head) = head else {
        return Ok(Err(
            "the backup records no erasure journal (it was made before Steward kept one)".into(),
        ));
    };
    if !erasures.holds(head) {
        return Ok(Err(format!(
            "the erasure journal `{}` does not hold line {} as it stood when the backup was taken (another deployment's journal, or one cut back)",
            journal.path().display(),
            head.seq
        )));
    }
    Ok(Ok(erasures.subjects()?))
}
