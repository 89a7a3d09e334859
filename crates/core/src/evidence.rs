//! Evidence an outsider can check without trusting Steward (P33): signed checkpoints of the
//! audit chain, verification of the log (from the store or from exported files), and
//! verification of signed documents (consent receipts, erasure certificates).

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use base64::Engine as _;
use steward_audit::{ChainVerifier, Entry, RawEntry};
pub use steward_audit::{Checkpoint, Fault, Report};
use steward_store::Store;

use crate::error::Error;
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
    /// Signs the current head of the audit chain, unless it is already signed.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, Error> {
        let (seq, head) = self.store.audit_head()?;
        if seq == 0 {
            return Ok(None);
        }
        if let Some(last) = self.store.checkpoints()?.pop()
            && last.seq == seq
        {
            return Ok(Some(last));
        }
        let at_ms = self.clock.now_ms();
        let signature = self.keys.sign(&Checkpoint::message(seq, &head, at_ms));
        let cp = Checkpoint {
            seq,
            head,
            at_ms,
            signature,
        };
        self.store.add_checkpoint(&cp)?;
        Ok(Some(cp))
    }
}

fn signature_check(public_key: [u8; 32]) -> impl Fn(&[u8], &[u8; 64]) -> bool {
    move |msg: &[u8], sig: &[u8; 64]| steward_crypto::verify_signature(&public_key, msg, sig)
}

/// Verifies the audit log held in a store against `public_key`. The outer error is a failure
/// to read; the inner one is the first fault found in the log.
///
/// Each entry is checked as the scan hands it over, in the store's own buffer: nothing is
/// copied. (A two-thread pipeline, scanning on one and hashing on the other, was tried: every
/// entry's bytes then cross between cores, and on the 2-core machines measured its passes
/// took 20 to 75 ms against a steady 30 ms for this one.)
pub fn verify_store(
    store: &dyn Store,
    public_key: [u8; 32],
    progress: &mut dyn FnMut(u64),
) -> Result<Result<Report, Fault>, Error> {
    let check = signature_check(public_key);
    let mut verifier = match ChainVerifier::new(store.checkpoints()?, &check) {
        Ok(v) => v,
        Err(f) => return Ok(Err(f)),
    };
    let mut fault = None;
    let mut n = 0u64;
    store.audit_scan(1, &mut |e| {
        if let Err(f) = verifier.push(&e) {
            fault = Some(f);
            return false;
        }
        n += 1;
        if n.is_multiple_of(65_536) {
            progress(n);
        }
        true
    })?;
    progress(n);
    Ok(match fault {
        Some(f) => Err(f),
        None => verifier.finish(),
    })
}

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
            None => serde_json::json!({ "seq": e.seq, "malformed": true }).to_string(),
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

/// Verifies an exported log (see [`export_log`]) with `public_key`, or with the key in the
/// export when none is given.
pub fn verify_export(
    dir: &Path,
    public_key: Option<[u8; 32]>,
) -> Result<Result<Report, Fault>, Error> {
    let read = |name: &str| {
        std::fs::File::open(dir.join(name))
            .map(std::io::BufReader::new)
            .map_err(|e| Error::io(format!("cannot read `{}`", dir.join(name).display()), &e))
    };
    let key = match public_key {
        Some(k) => k,
        None => {
            let text = std::fs::read_to_string(dir.join(export_files::PUBLIC_KEY_HEX))
                .map_err(|e| Error::io("cannot read the public key", &e))?;
            parse_public_key(&text)?
        }
    };
    let mut checkpoints = Vec::new();
    for (i, line) in read(export_files::CHECKPOINTS)?.lines().enumerate() {
        let line = line.map_err(|e| Error::io("checkpoints", &e))?;
        checkpoints.push(serde_json::from_str::<Checkpoint>(&line).map_err(|_| {
            Error::EvidenceInvalid(format!("checkpoints line {} is not a checkpoint", i + 1))
        })?);
    }
    let check = signature_check(key);
    let mut verifier = match ChainVerifier::new(checkpoints, &check) {
        Ok(v) => v,
        Err(f) => return Ok(Err(f)),
    };
    for (expected, line) in (1u64..).zip(read(export_files::ENTRIES)?.lines()) {
        let line = line.map_err(|e| Error::io("entries", &e))?;
        let entry: Entry = match serde_json::from_str(&line) {
            Ok(e) => e,
            // An unparsable line is an altered entry at that position.
            Err(_) => return Ok(Err(Fault::Altered { seq: expected })),
        };
        let bytes = entry.encode();
        let raw = RawEntry {
            seq: entry.seq,
            bytes: &bytes,
            hash: &entry.hash,
        };
        if let Err(f) = verifier.push(&raw) {
            return Ok(Err(f));
        }
    }
    Ok(verifier.finish())
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
