//! Encrypted backups that keep erasure's promise (P20, P28).
//!
//! A backup is two files: the data (never a key) and the keyring, written to separate
//! directories so they can be kept apart; keyring backups are pruned after a short retention
//! (30 days by default). Restoring an old data backup cannot bring an erased subject back:
//! the live keyring no longer holds their key, and it remembers whom it destroyed, so the
//! restore re-applies those erasures, audited, before anything else runs.
//!
//! File format (`docs/backup.md`): the magic line `steward.backup.v1\n`, a u32 (big-endian)
//! length and a JSON header, then chunks of at most 1 MiB plaintext, each as a u32 length
//! and `nonce (12) || AES-256-GCM ciphertext || tag (16)` under the backup key derived from
//! the master key, with AAD = SHA-256(magic || header) || chunk index (u64 BE) || last (u8).
//! The last chunk is marked, so a truncated file is detected.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;
use steward_crypto::{DataKey, Keys, MasterKey, NonceSource};
use steward_store::{Backend, Half, SubjectState};

use crate::clock::rfc3339;
use crate::error::Error;
use crate::retention::DAY_MS;
use crate::vault::{SubjectId, Vault};

/// Days a keyring backup is kept unless configured otherwise.
pub const KEYRING_RETENTION_DAYS: u32 = 30;

/// The first line of every backup file.
pub const MAGIC: &[u8] = b"steward.backup.v1\n";
/// Plaintext bytes per sealed chunk.
const CHUNK: usize = 1 << 20;
/// Largest header accepted.
const MAX_HEADER: usize = 64 << 10;

/// What a backup file says of itself (in clear, authenticated by every chunk).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Header {
    /// `steward.backup.v1`.
    pub format: String,
    /// `data` or `keyring`.
    pub half: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// When it was taken.
    pub created_ms: i64,
    /// The same, as RFC 3339.
    pub created_at: String,
    /// The audit log's last entry when it was taken (data backups).
    pub audit_seq: u64,
    /// Where the erasure journal stood when it was taken: a restore requires the journal to
    /// still hold this line, which proves it knows every erasure since (P28). Absent in
    /// backups made before Steward kept one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure_journal: Option<crate::erasures::JournalHead>,
}

fn half_name(half: Half) -> &'static str {
    match half {
        Half::Data => "data",
        Half::Keyring => "keyring",
    }
}

fn backend_name(b: &Backend) -> &'static str {
    if b.remote() { "postgres" } else { "sqlite" }
}

fn io(what: &str, e: std::io::Error) -> Error {
    Error::io(what, &e)
}

fn aad(header_digest: &[u8; 32], index: u64, last: bool) -> Vec<u8> {
    let mut a = Vec::with_capacity(41);
    a.extend_from_slice(header_digest);
    a.extend_from_slice(&index.to_be_bytes());
    a.push(u8::from(last));
    a
}

/// Seals what is written into chunks.
struct Sealer<'a, W: Write> {
    out: W,
    key: &'a DataKey,
    nonces: NonceSource,
    digest: [u8; 32],
    buf: Vec<u8>,
    index: u64,
}

impl<W: Write> Sealer<'_, W> {
    fn seal(&mut self, last: bool) -> std::io::Result<()> {
        let sealed = self
            .key
            .seal(
                &self.nonces,
                &aad(&self.digest, self.index, last),
                &self.buf,
            )
            .map_err(|_| std::io::Error::other("sealing failed"))?;
        let len = u32::try_from(sealed.len()).map_err(std::io::Error::other)?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&sealed)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<W> {
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Sealer<'_, W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf
            .extend_from_slice(data.get(..n).unwrap_or_default());
        if self.buf.len() == CHUNK {
            self.seal(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Opens chunks as they are read; refuses a file cut short or altered.
struct Opener<'a, R: Read> {
    input: R,
    key: &'a DataKey,
    digest: [u8; 32],
    plain: Vec<u8>,
    at: usize,
    index: u64,
    done: bool,
}

impl<'a, R: Read> Opener<'a, R> {
    /// Opens the chunks that follow a header whose digest is `digest`.
    fn new(input: R, key: &'a DataKey, digest: [u8; 32]) -> Self {
        Opener {
            input,
            key,
            digest,
            plain: Vec::new(),
            at: 0,
            index: 0,
            done: false,
        }
    }

    /// Reads on to the chunk marked last: a file cut short, or with anything after that
    /// chunk, fails here. Returns how many plaintext bytes were left to read.
    fn read_to_last(&mut self) -> Result<u64, Error> {
        let rest = std::io::copy(self, &mut std::io::sink())
            .map_err(|_| Error::BackupInvalid("the backup is damaged".into()))?;
        let mut after = [0u8; 1];
        let trailing = self
            .input
            .read(&mut after)
            .map_err(|_| Error::BackupInvalid("the backup is damaged".into()))?;
        if !self.done || trailing > 0 {
            return Err(Error::BackupInvalid("the backup is damaged".into()));
        }
        Ok(rest)
    }
}

impl<R: Read> Read for Opener<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.plain.len() {
            if self.done {
                return Ok(0);
            }
            let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "backup damaged");
            let mut len = [0u8; 4];
            self.input.read_exact(&mut len).map_err(|_| bad())?;
            let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| bad())?;
            if len > CHUNK + 64 {
                return Err(bad());
            }
            let mut sealed = vec![0; len];
            self.input.read_exact(&mut sealed).map_err(|_| bad())?;
            // Try as an ordinary chunk, then as the last: the mark is inside the AAD.
            let (plain, last) = match self
                .key
                .open(&aad(&self.digest, self.index, false), &sealed)
            {
                Ok(p) => (p, false),
                Err(_) => (
                    self.key
                        .open(&aad(&self.digest, self.index, true), &sealed)
                        .map_err(|_| bad())?,
                    true,
                ),
            };
            self.plain = plain;
            self.at = 0;
            self.index += 1;
            self.done = last;
        }
        let n = out.len().min(self.plain.len() - self.at);
        if let (Some(dst), Some(src)) = (out.get_mut(..n), self.plain.get(self.at..self.at + n)) {
            dst.copy_from_slice(src);
        }
        self.at += n;
        Ok(n)
    }
}

/// Writes one encrypted backup file of `half` at `path` (atomically, mode 0600).
fn write_file(
    backend: &Backend,
    keys: &Keys,
    half: Half,
    header: &Header,
    path: &Path,
) -> Result<u64, Error> {
    let header_json = serde_json::to_vec(header).map_err(|_| Error::Internal("backup header"))?;
    let mut prefix = MAGIC.to_vec();
    prefix.extend_from_slice(&header_json);
    let digest = steward_audit::sha256(&prefix);
    let partial = path.with_extension("partial");
    let file = {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        o.open(&partial)
            .map_err(|e| io("cannot create the backup file", e))?
    };
    let mut out = std::io::BufWriter::new(file);
    let written = (|| -> Result<(), Error> {
        out.write_all(MAGIC).map_err(|e| io("backup write", e))?;
        let len = u32::try_from(header_json.len()).map_err(|_| Error::Internal("backup header"))?;
        out.write_all(&len.to_be_bytes())
            .map_err(|e| io("backup write", e))?;
        out.write_all(&header_json)
            .map_err(|e| io("backup write", e))?;
        let mut sealer = Sealer {
            out: &mut out,
            key: keys.backup_key(),
            nonces: NonceSource::default(),
            digest,
            buf: Vec::with_capacity(CHUNK),
            index: 0,
        };
        backend.dump(half, &mut sealer)?;
        sealer.finish().map_err(|e| io("backup write", e))?;
        Ok(())
    })();
    let file = out
        .into_inner()
        .map_err(|e| io("backup write", e.into_error()));
    let synced = file.and_then(|f| f.sync_all().map_err(|e| io("backup sync", e)));
    if let Err(e) = written.and(synced) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, path).map_err(|e| io("backup rename", e))?;
    Ok(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
}

/// Reads a backup file's header and checks its magic.
pub fn read_header(path: &Path) -> Result<Header, Error> {
    let mut f = std::fs::File::open(path).map_err(|e| io("cannot open the backup", e))?;
    let (header, _) = header_of(&mut f)?;
    Ok(header)
}

fn header_of(f: &mut dyn Read) -> Result<(Header, [u8; 32]), Error> {
    let bad = || Error::BackupInvalid("not a Steward backup, or damaged".into());
    let mut magic = vec![0; MAGIC.len()];
    f.read_exact(&mut magic).map_err(|_| bad())?;
    if magic != MAGIC {
        return Err(bad());
    }
    let mut len = [0u8; 4];
    f.read_exact(&mut len).map_err(|_| bad())?;
    let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| bad())?;
    if len > MAX_HEADER {
        return Err(bad());
    }
    let mut json = vec![0; len];
    f.read_exact(&mut json).map_err(|_| bad())?;
    let header: Header = serde_json::from_slice(&json).map_err(|_| bad())?;
    let mut prefix = magic;
    prefix.extend_from_slice(&json);
    Ok((header, steward_audit::sha256(&prefix)))
}

/// Where a backup went and what it pruned.
#[derive(Debug, Serialize)]
pub struct BackupReport {
    /// The data backup.
    pub data: PathBuf,
    /// Its size in bytes.
    pub data_bytes: u64,
    /// The keyring backup.
    pub keyring: PathBuf,
    /// Its size in bytes.
    pub keyring_bytes: u64,
    /// Keyring backups older than the retention, deleted.
    pub keyring_backups_pruned: usize,
    /// The audit entry the data backup ends at.
    pub audit_seq: u64,
}

/// What a restore did.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    /// The data backup's header.
    pub backup: Header,
    /// Subjects whose erasure, made after the backup was taken, was applied again.
    pub erasures_reapplied: usize,
    /// Records of erased subjects purged afterwards.
    pub records_purged: usize,
}

impl Vault {
    /// Backs up the data into `data_dir` and the keyring into `keyring_dir` (two files,
    /// encrypted under the backup key), then deletes keyring backups older than
    /// `keyring_retention_days` from `keyring_dir`. Audited.
    pub fn backup(
        &self,
        backend: &Backend,
        data_dir: &Path,
        keyring_dir: &Path,
        keyring_retention_days: u32,
    ) -> Result<BackupReport, Error> {
        for dir in [data_dir, keyring_dir] {
            std::fs::create_dir_all(dir)
                .map_err(|e| io("cannot create the backup directory", e))?;
        }
        let now = self.clock.now_ms();
        // Before the log's head is read: an erasure after this line is in the journal's later
        // lines, which a restore of this backup re-applies.
        let erasure_journal = match &self.erasure_journal {
            Some(j) => Some(j.head(self)?),
            None => None,
        };
        let audit_seq = self.store.audit_head()?.0;
        let header = |half: Half| Header {
            format: "steward.backup.v1".into(),
            half: half_name(half).into(),
            backend: backend_name(backend).into(),
            created_ms: now,
            created_at: rfc3339(now),
            audit_seq,
            erasure_journal: erasure_journal.clone(),
        };
        let data = data_dir.join(format!("data-{now}.stwbak"));
        let keyring = keyring_dir.join(format!("keyring-{now}.stwbak"));
        self.store.settle()?;
        let data_bytes = write_file(backend, &self.keys, Half::Data, &header(Half::Data), &data)?;
        let keyring_bytes = write_file(
            backend,
            &self.keys,
            Half::Keyring,
            &header(Half::Keyring),
            &keyring,
        )?;
        let pruned = prune_keyring_backups(keyring_dir, now, keyring_retention_days)?;
        self.store.commit(
            vec![],
            vec![self.system_draft(
                "backup.create",
                json!({
                    "data": data.file_name().map(|n| n.to_string_lossy().into_owned()),
                    "keyring": keyring.file_name().map(|n| n.to_string_lossy().into_owned()),
                    "audit_seq": audit_seq,
                    "keyring_backups_pruned": pruned,
                }),
            )],
        )?;
        tracing::info!(
            audit_seq,
            data_bytes,
            keyring_bytes,
            pruned,
            "backup written"
        );
        Ok(BackupReport {
            data,
            data_bytes,
            keyring,
            keyring_bytes,
            keyring_backups_pruned: pruned,
            audit_seq,
        })
    }

    /// After a data backup was restored: applies again every erasure the live keyring
    /// remembers but the restored data does not show, audited as such, purges their
    /// ciphertext, and records the restore itself in the audit log.
    pub fn reconcile_after_restore(
        &self,
        backup: Header,
        erased: &[steward_store::SubjectKey],
        unverified: bool,
    ) -> Result<RestoreReport, Error> {
        // The restored log ends behind the journal's checkpoints: keep the journal aside (an
        // auditor sees the gap it shows) and start a new one from the restored chain.
        let archived = match &self.journal {
            Some(j) => j.archive(self.clock.now_ms())?,
            None => None,
        };
        let mut reapplied = 0;
        // Every erasure the erasure journal holds (P28), then every one the live keyring
        // remembers. A key a restored keyring backup brought back is destroyed again.
        let mut subjects: Vec<steward_store::SubjectKey> = erased.to_vec();
        subjects.extend(self.keyring.destroyed()?);
        subjects.sort_unstable();
        subjects.dedup();
        let mut keys_destroyed = 0;
        for subject in subjects {
            let Some(row) = self.subject_row(&subject)? else {
                if self.keyring.destroy(&subject)? {
                    keys_destroyed += 1;
                }
                continue;
            };
            if matches!(row.state, SubjectState::Erasing | SubjectState::Erased) {
                if self.keyring.destroy(&subject)? {
                    keys_destroyed += 1;
                }
                continue;
            }
            // The same erasure as any other (audit entry, purge queue, certificate, and the
            // key destroyed if a restored keyring brought it back).
            self.shred(
                None,
                SubjectId(subject),
                crate::rights::Why::Steward(
                    "re-applied after a restore: the subject was erased after the backup was taken",
                ),
            )?;
            reapplied += 1;
        }
        let purged = self.purge(1000, &mut |_| {})?;
        self.store.commit(
            vec![],
            vec![self.system_draft(
                "backup.restore",
                json!({
                    "backup_created_ms": backup.created_ms,
                    "backup_audit_seq": backup.audit_seq,
                    "erasures_reapplied": reapplied,
                    "keys_destroyed_again": keys_destroyed,
                    "erasures_unverified": unverified,
                    "journal_archived": archived.as_ref().map(|(path, _)| {
                        path.file_name().map(|n| n.to_string_lossy().into_owned())
                    }),
                    "journal_seq": archived.as_ref().and_then(|(_, c)| c.as_ref().map(|c| c.seq)),
                }),
            )],
        )?;
        if unverified {
            tracing::warn!(
                "restored without proof that every erasure since the backup is known (--accept-unknown-erasures): an erased subject may be readable again"
            );
        }
        tracing::info!(
            reapplied,
            keys_destroyed,
            "restore reconciled with the erasure journal and the keyring"
        );
        Ok(RestoreReport {
            backup,
            erasures_reapplied: reapplied,
            records_purged: purged.records_deleted,
        })
    }
}

/// What `backup restore` is asked to do.
pub struct RestorePlan<'a> {
    /// The data backup.
    pub data: &'a Path,
    /// A keyring backup, when the keyring is restored too.
    pub keyring: Option<&'a Path>,
    /// Replace what the target holds.
    pub replace: bool,
    /// Restore data into a target without a keyring, all the same.
    pub without_keyring: bool,
    /// Restore although the erasure journal cannot show it covers the backup.
    pub accept_unknown_erasures: bool,
}

/// What [`restore_checked`] put in place: the data backup's header, and the erasures to apply
/// again (`unverified` when the journal could not show it knows every one since the backup).
pub struct Restored {
    /// The data backup's header.
    pub header: Header,
    /// Every subject the erasure journal names.
    pub erased: Vec<steward_store::SubjectKey>,
    /// Restored under `accept_unknown_erasures` without that proof.
    pub unverified: bool,
}

/// Restores as `docs/backup.md` says, checking everything before anything is replaced (P20,
/// P28): both files in full, the target, and that `journal` knows every erasure since the
/// backup; then the backups are restored beside the live store (`Backend::staging`) and put
/// in its place in one step. Open a vault and call [`Vault::reconcile_after_restore`] with
/// the result next.
pub fn restore_checked(
    backend: &Backend,
    master: &MasterKey,
    plan: &RestorePlan<'_>,
    journal: &crate::erasures::ErasureJournal,
    now_ms: i64,
) -> Result<Restored, Error> {
    // 1. Both files, in full.
    let header = verify_file(backend, master, plan.data, Half::Data)?;
    if let Some(k) = plan.keyring {
        verify_file(backend, master, k, Half::Keyring)?;
    }
    // 2. The target.
    let refuse = |why: String| Err(Error::BackupInvalid(why));
    let has_keyring = backend.holds(Half::Keyring)?;
    if backend.holds(Half::Data)? && !plan.replace {
        return refuse(format!(
            "{} already holds data: restore into an empty target, or give --replace",
            backend.describe()
        ));
    }
    if plan.keyring.is_some() && has_keyring && !plan.replace {
        return refuse(format!(
            "{} already holds a keyring: give --replace to replace it with the backup's, or leave out --keyring to keep it",
            backend.describe()
        ));
    }
    if plan.keyring.is_none() && !has_keyring && !plan.without_keyring {
        return refuse(
            "the target has no keyring: give the keyring backup with --keyring (without one every subject is unreadable; --without-keyring restores the data so all the same)".into(),
        );
    }
    // 3. The erasures since the backup.
    let public_key = Keys::derive(master)?.public_key();
    let (erased, unverified) = match crate::erasures::known_since(
        journal,
        &public_key,
        header.erasure_journal.as_ref(),
    )? {
        Ok(subjects) => (subjects, false),
        Err(why) if plan.accept_unknown_erasures => {
            tracing::warn!(why = %why, "restoring without proof of every erasure since the backup");
            // Whatever of the journal can still be read is applied all the same.
            let known = journal
                .read(&public_key)
                .ok()
                .flatten()
                .and_then(|e| e.subjects().ok())
                .unwrap_or_default();
            (known, true)
        }
        Err(why) => {
            return refuse(format!(
                "cannot show that every erasure since the backup is known: {why}. Give the deployment's erasure journal (erasure_journal, $STEWARD_ERASURE_JOURNAL or --erasure-journal), or --accept-unknown-erasures for a disaster that took it too"
            ));
        }
    };
    // 4. Restore beside the live store, then put it in place.
    let staging = backend.staging(now_ms)?;
    let staged = (|| -> Result<(), Error> {
        if let Some(k) = plan.keyring {
            restore(&staging, master, k, Half::Keyring)?;
        }
        restore(&staging, master, plan.data, Half::Data).map(|_| ())
    })();
    if let Err(e) = staged {
        let _ = staging.discard();
        return Err(e);
    }
    let halves: &[Half] = if plan.keyring.is_some() {
        &[Half::Keyring, Half::Data]
    } else {
        &[Half::Data]
    };
    backend.install(&staging, halves)?;
    Ok(Restored {
        header,
        erased,
        unverified,
    })
}

/// Restores the backup `file` of `expect` (data or keyring) into `backend`, which must not
/// hold that half yet. Returns the header. Open a vault and call
/// [`Vault::reconcile_after_restore`] next for a data backup.
pub fn restore(
    backend: &Backend,
    master: &MasterKey,
    file: &Path,
    expect: Half,
) -> Result<Header, Error> {
    let keys = Keys::derive(master)?;
    let (header, mut opener) = open_file(backend, &keys, file, expect)?;
    backend.restore(expect, &mut opener).map_err(|e| match e {
        steward_store::StoreError::Stream(std::io::ErrorKind::InvalidData) => Error::BackupInvalid(
            "the backup is damaged or was made under another master key".into(),
        ),
        other => Error::Store(other),
    })?;
    // What the backend did not read is more than the dump holds: damage.
    if opener.read_to_last()? > 0 {
        return Err(Error::BackupInvalid("the backup is damaged".into()));
    }
    Ok(header)
}

/// Reads the whole of backup `file` of `expect` for `backend`, checking every chunk, without
/// writing anything: what a restore checks before it replaces anything.
pub fn verify_file(
    backend: &Backend,
    master: &MasterKey,
    file: &Path,
    expect: Half,
) -> Result<Header, Error> {
    let keys = Keys::derive(master)?;
    let (header, mut opener) = open_file(backend, &keys, file, expect)?;
    opener.read_to_last()?;
    Ok(header)
}

fn open_file<'k>(
    backend: &Backend,
    keys: &'k Keys,
    file: &Path,
    expect: Half,
) -> Result<(Header, Opener<'k, std::io::BufReader<std::fs::File>>), Error> {
    let f = std::fs::File::open(file).map_err(|e| io("cannot open the backup", e))?;
    let mut input = std::io::BufReader::new(f);
    let (header, digest) = header_of(&mut input)?;
    if header.format != "steward.backup.v1" {
        return Err(Error::BackupInvalid("not a steward.backup.v1 file".into()));
    }
    if header.backend != backend_name(backend) {
        return Err(Error::BackupInvalid(format!(
            "this backup is of a {} store; the target is {}",
            header.backend,
            backend_name(backend)
        )));
    }
    let half = match header.half.as_str() {
        "data" => Half::Data,
        "keyring" => Half::Keyring,
        _ => return Err(Error::BackupInvalid("unknown backup half".into())),
    };
    if half != expect {
        return Err(Error::BackupInvalid(format!(
            "this is a {} backup, not a {} backup",
            header.half,
            half_name(expect)
        )));
    }
    Ok((header, Opener::new(input, keys.backup_key(), digest)))
}

/// Deletes `keyring-<ms>.stwbak` files older than `days` from `dir`; returns how many.
fn prune_keyring_backups(dir: &Path, now_ms: i64, days: u32) -> Result<usize, Error> {
    let cutoff = now_ms - i64::from(days) * DAY_MS;
    let mut pruned = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| io("cannot list keyring backups", e))? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let taken = name
            .to_str()
            .and_then(|n| n.strip_prefix("keyring-"))
            .and_then(|n| n.strip_suffix(".stwbak"))
            .and_then(|ms| ms.parse::<i64>().ok());
        if taken.is_some_and(|t| t < cutoff) {
            std::fs::remove_file(entry.path())
                .map_err(|e| io("cannot prune a keyring backup", e))?;
            pruned += 1;
        }
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_chunks_round_trip_and_refuse_truncation() {
        let keys = Keys::derive(&MasterKey::from_hex(&"11".repeat(32)).unwrap()).unwrap();
        let digest = [7u8; 32];
        let mut out = Vec::new();
        let mut s = Sealer {
            out: &mut out,
            key: keys.backup_key(),
            nonces: NonceSource::default(),
            digest,
            buf: Vec::new(),
            index: 0,
        };
        let data: Vec<u8> = (0..(CHUNK * 2 + 5)).map(|i| (i % 251) as u8).collect();
        s.write_all(&data).unwrap();
        s.finish().unwrap();
        let read = |bytes: &[u8]| {
            let mut o = Opener::new(bytes, keys.backup_key(), digest);
            let mut back = Vec::new();
            o.read_to_end(&mut back).map(|_| back)
        };
        assert_eq!(read(&out).unwrap(), data);
        // Cut after the second chunk: the last-chunk mark is missing.
        let cut = 2 * (4 + 12 + CHUNK + 16);
        assert!(read(&out[..cut]).is_err());
        // Another master key opens nothing.
        let other = Keys::derive(&MasterKey::from_hex(&"22".repeat(32)).unwrap()).unwrap();
        let mut o = Opener {
            input: &out[..],
            key: other.backup_key(),
            digest,
            plain: Vec::new(),
            at: 0,
            index: 0,
            done: false,
        };
        assert!(o.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn keyring_backups_past_retention_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let now = 100 * DAY_MS;
        for (name, _) in [
            (format!("keyring-{}.stwbak", now - 31 * DAY_MS), ()),
            (format!("keyring-{}.stwbak", now - 29 * DAY_MS), ()),
            (format!("data-{}.stwbak", now - 300 * DAY_MS), ()),
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(prune_keyring_backups(dir.path(), now, 30).unwrap(), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
