//! Evidence an outsider can check without trusting Steward (P33): signed checkpoints of the
//! audit chain, verification of the log (from the store or from exported files), and
//! verification of signed documents (consent receipts, erasure certificates).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use base64::Engine as _;
use steward_audit::{ChainVerifier, Entry, RawEntry};
pub use steward_audit::{Checkpoint, Fault, Report};
use steward_store::Store;

use crate::error::Error;
use crate::journal::{AppendFile, lines, parse_line};
use crate::vault::{SignedDocument, Vault};

/// Files `steward audit export` writes.
pub mod export_files {
    /// One audit entry per line, JSON.
    pub const ENTRIES: &str = "audit.jsonl";
    /// One checkpoint per line, JSON.
    pub const CHECKPOINTS: &str = "checkpoints.jsonl";
    /// The Ed25519 public key, PEM (SubjectPublicKeyInfo).
    pub const PUBLIC_KEY_PEM: &str = "public-key.pem";
    /// The Ed25519 public key, 64 hex characters.
    pub const PUBLIC_KEY_HEX: &str = "public-key.hex";
}

impl Vault {
    /// Signs the head of the audit chain, unless it is already signed — but only after
    /// verifying the chain from the last checkpoint this deployment has kept outside the store
    /// (its journal) to the head, and that every kept checkpoint is still in the store (P33).
    /// A forged history is never sealed: any fault is logged and returned as
    /// [`Error::Tampered`]. The cost is proportional to the entries since that checkpoint.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, Error> {
        // One checkpoint at a time in this process, so the journal gets each one once.
        let _one = self
            .sealing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tampered = |fault: Fault| {
            tracing::error!(%fault, "the audit log failed verification; nothing was signed");
            Error::Tampered(fault)
        };
        // ... and in every process sharing the journal (a CLI `audit checkpoint` beside a
        // running server): an exclusive lock on a file beside it, held until signed and kept.
        let _shared = match &self.journal {
            Some(journal) => Some(journal.lock()?),
            None => None,
        };
        let check = signature_check(self.keys.public_key());
        let kept = match &self.journal {
            Some(journal) => journal.read(&check)?.map_err(tampered)?,
            None => Vec::new(),
        };
        let stored = self.store.checkpoints()?;
        if let Some(gone) = missing_from(&kept, &stored) {
            return Err(tampered(Fault::Vanished { seq: gone.seq }));
        }
        // Without a journal, the newest checkpoint in the store whose signature holds is the
        // starting point (weaker: deleted checkpoints then go unseen; the CLI and the server
        // always keep a journal).
        let from = match kept.last() {
            Some(k) => Some(k.clone()),
            None if self.journal.is_none() => stored
                .iter()
                .rev()
                .find(|c| check(&Checkpoint::message(c.seq, &c.head, c.at_ms), &c.signature))
                .cloned(),
            None => None,
        };
        let newest = stored.last().cloned();
        let after = from.as_ref().map_or(0, |f| f.seq);
        let newer: Vec<Checkpoint> = stored.into_iter().filter(|c| c.seq > after).collect();
        let mut verifier = match from {
            Some(f) => ChainVerifier::resume(f, newer, &check),
            None => ChainVerifier::new(newer, &check),
        }
        .map_err(tampered)?;
        let mut fault = None;
        self.store
            .audit_scan(after.max(1), &mut |e| match verifier.push(&e) {
                Ok(()) => true,
                Err(f) => {
                    fault = Some(f);
                    false
                }
            })?;
        if let Some(f) = fault {
            return Err(tampered(f));
        }
        let (seq, head) = verifier.head();
        verifier.finish().map_err(tampered)?;
        if seq == 0 {
            return Ok(None);
        }
        let cp = match newest {
            Some(last) if last.seq == seq => last,
            _ => {
                let at_ms = self.clock.now_ms();
                let cp = Checkpoint {
                    seq,
                    head,
                    at_ms,
                    signature: self.keys.sign(&Checkpoint::message(seq, &head, at_ms)),
                };
                self.store.add_checkpoint(&cp)?;
                cp
            }
        };
        // After the store has it: a checkpoint in the journal but not in the store would be
        // reported as deleted.
        if let Some(journal) = &self.journal
            && kept.last().is_none_or(|k| k.seq < cp.seq)
        {
            journal.append(&cp)?;
        }
        Ok(Some(cp))
    }
}

/// Signed checkpoints appended, one JSON line each (the format of `checkpoints.jsonl`), to a
/// file outside the store, where whoever can write the database cannot rewrite them (P33).
/// Every checkpoint this deployment signs is appended after the store has it; before signing,
/// the chain is verified from the journal's newest checkpoint on.
#[derive(Clone, Debug)]
pub struct Journal {
    file: AppendFile,
}

impl Journal {
    /// The journal at `path`; the file and its directory are made on the first append.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Journal {
        Journal {
            file: AppendFile::new(path, "the checkpoint journal"),
        }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub(crate) fn lock(&self) -> Result<std::fs::File, Error> {
        self.file.lock()
    }

    /// The checkpoints in the journal, each signature checked. A journal not yet written is
    /// empty.
    pub fn read(
        &self,
        check: &dyn Fn(&[u8], &[u8; 64]) -> bool,
    ) -> Result<Result<Vec<Checkpoint>, Fault>, Error> {
        let Some(bytes) = self.file.read()? else {
            return Ok(Ok(Vec::new()));
        };
        let name = self.path().display().to_string();
        Ok(parse_checkpoints(&bytes, &name).and_then(|cps| {
            for c in &cps {
                if !check(&Checkpoint::message(c.seq, &c.head, c.at_ms), &c.signature) {
                    return Err(Fault::BadSignature { seq: c.seq });
                }
            }
            Ok(cps)
        }))
    }

    /// Moves the journal aside to `<journal>.before-restore-<now_ms>` (a restore rolls the log
    /// back behind its checkpoints, which then no longer match); the next checkpoint starts a
    /// new journal after verifying the restored chain from its first entry. Returns the file
    /// it was moved to and its newest checkpoint, if there was a journal.
    pub fn archive(
        &self,
        now_ms: i64,
    ) -> Result<Option<(std::path::PathBuf, Option<Checkpoint>)>, Error> {
        let Some(bytes) = self.file.read()? else {
            return Ok(None);
        };
        let newest = parse_checkpoints(&bytes, &self.path().display().to_string())
            .ok()
            .and_then(|mut c| c.pop());
        let to = self.file.move_aside(&format!("before-restore-{now_ms}"))?;
        Ok(Some((to, newest)))
    }

    /// Appends one checkpoint and makes it durable.
    pub fn append(&self, cp: &Checkpoint) -> Result<(), Error> {
        let line = serde_json::to_string(cp)
            .map_err(|_| Error::Internal("a checkpoint could not be written as JSON"))?;
        self.file.append(&line)
    }
}

/// Reads a checkpoints file (`checkpoints.jsonl`, a journal, an auditor's copy): one
/// checkpoint per line, `seq` at least 1 and strictly increasing.
pub fn parse_checkpoints(bytes: &[u8], file: &str) -> Result<Vec<Checkpoint>, Fault> {
    let mut out: Vec<Checkpoint> = Vec::new();
    for (n, line) in lines(bytes) {
        let cp: Checkpoint = parse_line(line, file, n)?;
        if cp.seq == 0 {
            return Err(Fault::Unreadable {
                file: file.to_string(),
                line: n,
                why: "a checkpoint's seq is at least 1",
            });
        }
        if out.last().is_some_and(|last| last.seq >= cp.seq) {
            return Err(Fault::DuplicateCheckpoint { seq: cp.seq });
        }
        out.push(cp);
    }
    Ok(out)
}

/// The first of `kept` that `stored` does not hold (same entry, same head).
fn missing_from<'a>(kept: &'a [Checkpoint], stored: &[Checkpoint]) -> Option<&'a Checkpoint> {
    let in_store: std::collections::HashSet<(u64, [u8; 32])> =
        stored.iter().map(|c| (c.seq, c.head)).collect();
    kept.iter().find(|k| !in_store.contains(&(k.seq, k.head)))
}

fn signature_check(public_key: [u8; 32]) -> impl Fn(&[u8], &[u8; 64]) -> bool {
    move |msg: &[u8], sig: &[u8; 64]| steward_crypto::verify_signature(&public_key, msg, sig)
}

/// Verifies the audit log held in a store against `public_key`. The outer error is a failure
/// to read; the inner one is the first fault found in the log, as one pass from the first
/// entry would name it.
///
/// A long log is checked in two halves at once, each thread scanning its half on a read
/// connection of its own and checking each entry in the store's own buffer, nothing copied;
/// the link between the halves is checked when both are done ([`ChainVerifier::join`]).
/// (Scanning on one thread and hashing on another was tried before: every entry's bytes
/// then crossed between cores and the store's one scan set the pace.)
pub fn verify_store(
    store: &dyn Store,
    public_key: [u8; 32],
    kept: Vec<Checkpoint>,
    progress: &mut dyn FnMut(u64),
) -> Result<Result<Report, Fault>, Error> {
    let check = signature_check(public_key);
    let stored = store.checkpoints()?;
    // A checkpoint kept outside the store (the journal, an auditor's copy) must still be in it.
    if let Some(gone) = missing_from(&kept, &stored) {
        // Unless its signature fails: then it is no checkpoint of ours.
        let genuine = check(
            &Checkpoint::message(gone.seq, &gone.head, gone.at_ms),
            &gone.signature,
        );
        return Ok(Err(if genuine {
            Fault::Vanished { seq: gone.seq }
        } else {
            Fault::BadSignature { seq: gone.seq }
        }));
    }
    let mut head = match ChainVerifier::new(stored, &check) {
        Ok(v) => v,
        Err(f) => return Ok(Err(f)),
    };
    // Read after the checkpoints, so that none of them lies past it.
    let (last, _) = store.audit_head()?;
    let done = AtomicU64::new(0);
    // Raised by a fault in the first half: the second then stops, its findings moot.
    let head_failed = AtomicBool::new(false);
    // Checks one range on the calling thread; reports progress every 65,536 entries.
    let run =
        |v: &mut ChainVerifier, from: u64, to: u64, first: bool, progress: &mut dyn FnMut(u64)| {
            let mut fault = None;
            let mut n = 0u64;
            store
                .audit_scan_range(from, to, &mut |e| {
                    if let Err(f) = v.push(&e) {
                        fault = Some(f);
                        if first {
                            head_failed.store(true, Ordering::Relaxed);
                        }
                        return false;
                    }
                    n += 1;
                    if n.is_multiple_of(PROGRESS_EVERY) {
                        let total =
                            done.fetch_add(PROGRESS_EVERY, Ordering::Relaxed) + PROGRESS_EVERY;
                        progress(total);
                    }
                    first || !head_failed.load(Ordering::Relaxed)
                })
                .map(|()| fault)
        };
    if last < SPLIT_FROM {
        let fault = run(&mut head, 1, last, true, progress)?;
        progress(head.head().0);
        return Ok(match fault {
            Some(f) => Err(f),
            None => head.finish(),
        });
    }
    let start = last / 2 + 1;
    let mut tail = head.tail_from(start);
    let (head_fault, tail_fault) = std::thread::scope(|s| {
        let tail_run = s.spawn(|| run(&mut tail, start, last, false, &mut |_| {}));
        let head_fault = run(&mut head, 1, start - 1, true, progress);
        // The scan only ends by returning, so a panic there is a bug to surface.
        let tail_fault = tail_run
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (head_fault, tail_fault)
    });
    // Faults in the order one pass would meet them: the first half's, the join's, the tail's.
    if let Some(f) = head_fault? {
        return Ok(Err(f));
    }
    let tail_fault = tail_fault?;
    let joined = match head.join(tail) {
        Ok(v) => v,
        Err(f) => return Ok(Err(f)),
    };
    progress(joined.head().0);
    Ok(match tail_fault {
        Some(f) => Err(f),
        None => joined.finish(),
    })
}

/// Entries between two progress reports of [`verify_store`].
const PROGRESS_EVERY: u64 = 65_536;

/// Logs of at least this many entries are verified in two halves at once.
const SPLIT_FROM: u64 = 16_384;

/// Writes the log, its checkpoints and the public key as files in `dir` (created if needed).
/// Returns the number of entries written.
pub fn export_log(store: &dyn Store, public_key: [u8; 32], dir: &Path) -> Result<u64, Error> {
    let io = |e: std::io::Error| Error::io(format!("cannot write to `{}`", dir.display()), &e);
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut out =
        BufWriter::new(std::fs::File::create(dir.join(export_files::ENTRIES)).map_err(io)?);
    let mut n = 0u64;
    let mut failed: Option<Error> = None;
    store.audit_scan(1, &mut |e| {
        // An entry that no longer decodes is exported as such; the export then fails to verify
        // at that entry, as the store does.
        let line = match e
            .hash
            .try_into()
            .ok()
            .and_then(|h| Entry::decode(e.bytes, h).ok())
        {
            Some(entry) => match serde_json::to_string(&entry) {
                Ok(line) => line,
                Err(_) => {
                    failed = Some(Error::Internal(
                        "an audit entry could not be written as JSON",
                    ));
                    return false;
                }
            },
            // Exactly as docs/audit-format.md writes it: `seq` first.
            None => format!("{{\"seq\":{},\"malformed\":true}}", e.seq),
        };
        if let Err(err) = writeln!(out, "{line}") {
            failed = Some(io(err));
            return false;
        }
        n += 1;
        true
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    out.flush().map_err(io)?;
    let mut cps =
        BufWriter::new(std::fs::File::create(dir.join(export_files::CHECKPOINTS)).map_err(io)?);
    for cp in store.checkpoints()? {
        let line = serde_json::to_string(&cp)
            .map_err(|_| Error::Internal("a checkpoint could not be written as JSON"))?;
        writeln!(cps, "{line}").map_err(io)?;
    }
    cps.flush().map_err(io)?;
    std::fs::write(
        dir.join(export_files::PUBLIC_KEY_PEM),
        steward_crypto::public_key_pem(&public_key),
    )
    .map_err(io)?;
    std::fs::write(
        dir.join(export_files::PUBLIC_KEY_HEX),
        format!("{}\n", hex::encode(public_key)),
    )
    .map_err(io)?;
    Ok(n)
}

/// Reads a public key given as 64 hex characters or as a PEM `PUBLIC KEY`.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], Error> {
    let text = text.trim();
    let mut out = [0u8; 32];
    if hex::decode_to_slice(text, &mut out).is_ok() {
        return Ok(out);
    }
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|_| {
            Error::EvidenceInvalid("a public key is 64 hex characters or a PEM PUBLIC KEY".into())
        })?;
    match der.len().checked_sub(32).and_then(|start| der.get(start..)) {
        Some(tail) if der.len() == 44 => {
            out.copy_from_slice(tail);
            Ok(out)
        }
        _ => Err(Error::EvidenceInvalid(
            "the PEM does not hold an Ed25519 public key".into(),
        )),
    }
}

/// Whose key a verification used, which decides what it proves.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// A key the verifier was given (the provider's published key): the evidence verified.
    GivenKey,
    /// Only the key that came with the evidence: it is consistent with itself, which a forger
    /// who re-signed everything also achieves. Nothing is verified.
    OwnKeyOnly,
}

/// Verifies an exported log (see [`export_log`]) with `public_key`, or, when none is given,
/// with the key in the export (then only self-consistency is shown: [`Trust::OwnKeyOnly`]).
/// `kept` are checkpoints the verifier kept from earlier (the journal, the public route): the
/// export must hold every entry they cover, unchanged.
pub fn verify_export(
    dir: &Path,
    public_key: Option<[u8; 32]>,
    kept: Vec<Checkpoint>,
) -> Result<(Result<Report, Fault>, Trust), Error> {
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .map_err(|e| Error::io(format!("cannot read `{}`", dir.join(name).display()), &e))
    };
    // The export's two spellings of its key must agree.
    let own_hex = String::from_utf8(read(export_files::PUBLIC_KEY_HEX)?)
        .ok()
        .and_then(|t| parse_public_key(&t).ok());
    let own_pem = String::from_utf8(read(export_files::PUBLIC_KEY_PEM)?)
        .ok()
        .and_then(|t| parse_public_key(&t).ok());
    let own = match (own_hex, own_pem) {
        (Some(h), Some(p)) if h == p => h,
        (Some(_), Some(_)) => return Ok((Err(Fault::KeyMismatch), trust_of(public_key))),
        (None, _) => {
            return Ok((
                Err(unreadable_key(export_files::PUBLIC_KEY_HEX)),
                trust_of(public_key),
            ));
        }
        (_, None) => {
            return Ok((
                Err(unreadable_key(export_files::PUBLIC_KEY_PEM)),
                trust_of(public_key),
            ));
        }
    };
    let key = public_key.unwrap_or(own);
    let trust = trust_of(public_key);
    let mut checkpoints =
        match parse_checkpoints(&read(export_files::CHECKPOINTS)?, export_files::CHECKPOINTS) {
            Ok(c) => c,
            Err(f) => return Ok((Err(f), trust)),
        };
    checkpoints.extend(kept);
    let check = signature_check(key);
    let mut verifier = match ChainVerifier::new(checkpoints, &check) {
        Ok(v) => v,
        Err(f) => return Ok((Err(f), trust)),
    };
    let entries = read(export_files::ENTRIES)?;
    for (n, line) in lines(&entries) {
        let entry: Entry = match parse_line(line, export_files::ENTRIES, n) {
            Ok(e) => e,
            // The marker of an entry whose stored bytes no longer decoded: altered there.
            Err(_) if parse_line::<MalformedMarker>(line, export_files::ENTRIES, n).is_ok() => {
                return Ok((Err(Fault::Altered { seq: n }), trust));
            }
            Err(f) => return Ok((Err(f), trust)),
        };
        let bytes = entry.encode();
        let raw = RawEntry {
            seq: entry.seq,
            bytes: &bytes,
            hash: &entry.hash,
        };
        if let Err(f) = verifier.push(&raw) {
            return Ok((Err(f), trust));
        }
    }
    Ok((verifier.finish(), trust))
}

/// `{"seq":N,"malformed":true}`, as [`export_log`] writes an entry it could not decode.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "parsed only to recognise the marker; the line number names the entry"
)]
struct MalformedMarker {
    seq: u64,
    malformed: bool,
}

fn trust_of(given: Option<[u8; 32]>) -> Trust {
    if given.is_some() {
        Trust::GivenKey
    } else {
        Trust::OwnKeyOnly
    }
}

fn unreadable_key(file: &str) -> Fault {
    Fault::Unreadable {
        file: file.to_string(),
        line: 1,
        why: "not an Ed25519 public key",
    }
}

/// The entry a signed document names (`audit_seq`, `audit_hash`) must be in a verified
/// export, with that hash.
pub fn document_in_export(payload: &serde_json::Value, dir: &Path) -> Result<bool, Error> {
    let (Some(seq), Some(hash)) = (
        payload.get("audit_seq").and_then(serde_json::Value::as_u64),
        payload
            .get("audit_hash")
            .and_then(serde_json::Value::as_str),
    ) else {
        return Err(Error::EvidenceInvalid(
            "the document names no audit entry (audit_seq, audit_hash)".into(),
        ));
    };
    let entries = std::fs::read(dir.join(export_files::ENTRIES)).map_err(|e| {
        Error::io(
            format!(
                "cannot read `{}`",
                dir.join(export_files::ENTRIES).display()
            ),
            &e,
        )
    })?;
    Ok(lines(&entries)
        .nth(usize::try_from(seq.saturating_sub(1)).unwrap_or(usize::MAX))
        .and_then(|(n, line)| parse_line::<Entry>(line, export_files::ENTRIES, n).ok())
        .is_some_and(|e| e.seq == seq && hex::encode(e.hash) == hash))
}

/// Verifies a signed document and returns its payload. When `public_key` is given it must
/// match the key named in the document.
pub fn verify_document(
    doc: &SignedDocument,
    public_key: Option<[u8; 32]>,
) -> Result<serde_json::Value, Error> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = |what: &str| Error::EvidenceInvalid(format!("the document's {what} is malformed"));
    let named = parse_public_key(&doc.public_key).map_err(|_| bad("public_key"))?;
    let key = public_key.unwrap_or(named);
    if key != named {
        return Err(Error::EvidenceInvalid(
            "the document was signed by another key".into(),
        ));
    }
    let payload = b64.decode(&doc.payload).map_err(|_| bad("payload"))?;
    let sig = b64.decode(&doc.signature).map_err(|_| bad("signature"))?;
    if !steward_crypto::verify_signature(&key, &payload, &sig) {
        return Err(Error::EvidenceInvalid(
            "the signature does not verify".into(),
        ));
    }
    serde_json::from_slice(&payload).map_err(|_| bad("payload"))
}
