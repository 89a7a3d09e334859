//! The tamper-evident audit log (P21, P33): entry format, hash chain, signed checkpoints and
//! offline verification. The exact byte layout is documented in `docs/audit-format.md`; keep
//! the two in step.
//!
//! Pure: storage reaches this crate only as entries handed to [`ChainVerifier::push`], and
//! signatures are checked by a function the caller passes in.

use std::collections::BTreeMap;
use std::fmt;

use ring::digest::SHA256;
use serde::{Deserialize, Serialize};

/// Domain-separation prefix of every entry hash input.
pub const ENTRY_DOMAIN: &[u8] = b"steward.audit.v1\n";
/// Domain-separation prefix of every checkpoint signature input.
pub const CHECKPOINT_DOMAIN: &[u8] = b"steward.checkpoint.v1\n";
/// The `prev_hash` of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// Whether the act was carried out or refused; both are recorded (P10).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The act was carried out.
    Granted,
    /// The act was refused.
    Refused,
}

impl Outcome {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Granted => "granted",
            Outcome::Refused => "refused",
        }
    }
}

/// What the caller records; the store chains it into an [`Entry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// Unix time in milliseconds, from the caller's clock.
    pub at_ms: i64,
    /// Who acted (`service:billing`, `staff:alice`, `subject`, `system`).
    pub actor: String,
    /// The role acted under.
    pub role: String,
    /// What was done (`pi.read`, `consent.withdraw`, `subject.erase`, ...).
    pub action: String,
    /// Granted or refused.
    pub outcome: Outcome,
    /// The subject's pseudonym, or empty. Never a PI value.
    pub subject: String,
    /// The purpose named, or empty.
    pub purpose: String,
    /// Category names, comma-separated, or empty.
    pub categories: String,
    /// Further facts as a compact JSON object (reason codes, rules, recipients), or empty.
    pub detail: String,
    /// The policy version in force.
    pub policy_version: String,
}

/// One chained entry of the log. As JSON (an export), every key is required, no other key is
/// allowed and hashes are lowercase hex: anything else is not an entry Steward wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// Unix time in milliseconds.
    pub at_ms: i64,
    /// See [`Draft::actor`].
    pub actor: String,
    /// See [`Draft::role`].
    pub role: String,
    /// See [`Draft::action`].
    pub action: String,
    /// `granted` or `refused`.
    pub outcome: String,
    /// See [`Draft::subject`].
    pub subject: String,
    /// See [`Draft::purpose`].
    pub purpose: String,
    /// See [`Draft::categories`].
    pub categories: String,
    /// See [`Draft::detail`].
    pub detail: String,
    /// See [`Draft::policy_version`].
    pub policy_version: String,
    /// Hash of the previous entry (zeros for the first), hex.
    #[serde(with = "hex_bytes")]
    pub prev_hash: [u8; 32],
    /// This entry's hash, hex.
    #[serde(with = "hex_bytes")]
    pub hash: [u8; 32],
}

/// An entry as stored: its seq, its canonical bytes and its hash. The bytes are the whole
/// entry; nothing else of it is stored, so no stored field can change unnoticed.
#[derive(Copy, Clone, Debug)]
pub struct RawEntry<'a> {
    /// The seq the store keeps the entry under.
    pub seq: u64,
    /// The canonical bytes ([`Entry::encode`]).
    pub bytes: &'a [u8],
    /// The stored hash: SHA-256 of `bytes`.
    pub hash: &'a [u8],
}

/// Length of the fixed header of the canonical bytes: domain, seq, at_ms, prev_hash.
pub const HEADER_LEN: usize = ENTRY_DOMAIN.len() + 8 + 8 + 32;

/// Why stored bytes are not a well-formed entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit entry bytes are malformed")]
pub struct Malformed;

impl Entry {
    /// [`Entry::chain`], also returning the canonical bytes it hashed (what a store keeps).
    pub fn chain_encoded(prev_seq: u64, prev_hash: [u8; 32], draft: Draft) -> (Entry, Vec<u8>) {
        let mut e = Entry::chain_unhashed(prev_seq, prev_hash, draft);
        let bytes = e.encode();
        e.hash = sha256(&bytes);
        (e, bytes)
    }

    /// Chains `draft` after the entry `(prev_seq, prev_hash)`; `(0, GENESIS)` starts the log.
    pub fn chain(prev_seq: u64, prev_hash: [u8; 32], draft: Draft) -> Entry {
        Entry::chain_encoded(prev_seq, prev_hash, draft).0
    }

    fn chain_unhashed(prev_seq: u64, prev_hash: [u8; 32], draft: Draft) -> Entry {
        Entry {
            seq: prev_seq + 1,
            at_ms: draft.at_ms,
            actor: draft.actor,
            role: draft.role,
            action: draft.action,
            outcome: draft.outcome.as_str().to_string(),
            subject: draft.subject,
            purpose: draft.purpose,
            categories: draft.categories,
            detail: draft.detail,
            policy_version: draft.policy_version,
            prev_hash,
            hash: [0; 32],
        }
    }

    /// The nine text fields in encoding order.
    pub fn fields(&self) -> [&str; 9] {
        [
            &self.actor,
            &self.role,
            &self.action,
            &self.outcome,
            &self.subject,
            &self.purpose,
            &self.categories,
            &self.detail,
            &self.policy_version,
        ]
    }

    /// The canonical bytes: `ENTRY_DOMAIN || u64be(seq) || i64be(at_ms) || prev_hash ||
    /// lp(actor) || lp(role) || lp(action) || lp(outcome) || lp(subject) || lp(purpose) ||
    /// lp(categories) || lp(detail) || lp(policy_version)`, where `lp(s) = u32be(len) || s`.
    pub fn encode(&self) -> Vec<u8> {
        let fields = self.fields();
        let mut v =
            Vec::with_capacity(HEADER_LEN + fields.iter().map(|f| 4 + f.len()).sum::<usize>());
        v.extend_from_slice(ENTRY_DOMAIN);
        v.extend_from_slice(&self.seq.to_be_bytes());
        v.extend_from_slice(&self.at_ms.to_be_bytes());
        v.extend_from_slice(&self.prev_hash);
        for f in fields {
            let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(f.as_bytes());
        }
        v
    }

    /// Reads canonical bytes back into an entry, with the hash stored beside them.
    pub fn decode(bytes: &[u8], hash: [u8; 32]) -> Result<Entry, Malformed> {
        let (header, mut rest) = bytes.split_at_checked(HEADER_LEN).ok_or(Malformed)?;
        let (domain, header) = header.split_at(ENTRY_DOMAIN.len());
        if domain != ENTRY_DOMAIN {
            return Err(Malformed);
        }
        let (seq, header) = header.split_at(8);
        let (at_ms, prev) = header.split_at(8);
        let mut fields: [String; 9] = Default::default();
        for f in &mut fields {
            let (len, tail) = rest.split_at_checked(4).ok_or(Malformed)?;
            let len = u32::from_be_bytes(len.try_into().map_err(|_| Malformed)?) as usize;
            let (text, tail) = tail.split_at_checked(len).ok_or(Malformed)?;
            *f = String::from_utf8(text.to_vec()).map_err(|_| Malformed)?;
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(Malformed);
        }
        let [
            actor,
            role,
            action,
            outcome,
            subject,
            purpose,
            categories,
            detail,
            policy_version,
        ] = fields;
        Ok(Entry {
            seq: u64::from_be_bytes(seq.try_into().map_err(|_| Malformed)?),
            at_ms: i64::from_be_bytes(at_ms.try_into().map_err(|_| Malformed)?),
            actor,
            role,
            action,
            outcome,
            subject,
            purpose,
            categories,
            detail,
            policy_version,
            prev_hash: prev.try_into().map_err(|_| Malformed)?,
            hash,
        })
    }
}

/// SHA-256.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&SHA256, bytes);
    let mut out = [0u8; 32];
    if let Some(src) = d.as_ref().get(..32) {
        out.copy_from_slice(src);
    }
    out
}

/// A signed statement of the chain head (P33).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The seq of the entry whose hash is signed.
    pub seq: u64,
    /// That entry's hash, hex.
    #[serde(with = "hex_bytes")]
    pub head: [u8; 32],
    /// When it was signed, Unix milliseconds.
    pub at_ms: i64,
    /// Ed25519 signature over [`Checkpoint::message`], hex.
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// `CHECKPOINT_DOMAIN || u64be(seq) || head || i64be(at_ms)`: what is signed.
    pub fn message(seq: u64, head: &[u8; 32], at_ms: i64) -> Vec<u8> {
        let mut m = CHECKPOINT_DOMAIN.to_vec();
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(head);
        m.extend_from_slice(&at_ms.to_be_bytes());
        m
    }
}

/// The first thing found wrong, naming the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Entries are missing, inserted or reordered: `found` came where `expected` should.
    Sequence {
        /// The seq that should come next.
        expected: u64,
        /// The seq that came.
        found: u64,
    },
    /// The entry's `prev_hash` is not the previous entry's hash.
    BrokenLink {
        /// The entry.
        seq: u64,
    },
    /// The entry's contents do not hash to its stored hash: a field was changed.
    Altered {
        /// The entry.
        seq: u64,
    },
    /// A checkpoint's signature does not verify with the public key.
    BadSignature {
        /// The checkpoint's seq.
        seq: u64,
    },
    /// A signed checkpoint does not match the entry it covers: the log was rewritten.
    CheckpointMismatch {
        /// The checkpoint's seq.
        seq: u64,
    },
    /// A checkpoint covers entries that are no longer in the log: the tail was cut.
    Truncated {
        /// The checkpoint's seq.
        checkpoint: u64,
        /// The last seq in the log.
        last: u64,
    },
    /// A checkpoint kept outside the store (a journal, an auditor's copy) is not among the
    /// store's own: signed checkpoints were deleted.
    Vanished {
        /// The checkpoint's seq.
        seq: u64,
    },
    /// Two checkpoints for one entry, or checkpoints out of order in a file.
    DuplicateCheckpoint {
        /// The seq named twice (or out of order).
        seq: u64,
    },
    /// A line of an evidence file is not what the file holds (see `docs/audit-format.md`).
    Unreadable {
        /// The file.
        file: String,
        /// The line, from 1.
        line: u64,
        /// What is wrong, in Steward's words (never the line's own text).
        why: &'static str,
    },
    /// The export's two copies of the public key differ.
    KeyMismatch,
}

impl Fault {
    /// The first entry affected, when the fault is in the chain (not in a file's lines or keys).
    pub fn seq(&self) -> Option<u64> {
        match *self {
            Fault::Sequence { expected, .. } => Some(expected),
            Fault::BrokenLink { seq }
            | Fault::Altered { seq }
            | Fault::BadSignature { seq }
            | Fault::CheckpointMismatch { seq }
            | Fault::Vanished { seq }
            | Fault::DuplicateCheckpoint { seq } => Some(seq),
            Fault::Truncated { last, .. } => Some(last + 1),
            Fault::Unreadable { .. } | Fault::KeyMismatch => None,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Sequence { expected, found } => write!(
                f,
                "entry {expected}: expected seq {expected}, found {found} (entries missing, inserted or reordered)"
            ),
            Fault::BrokenLink { seq } => {
                write!(
                    f,
                    "entry {seq}: prev_hash does not match the previous entry"
                )
            }
            Fault::Altered { seq } => {
                write!(f, "entry {seq}: contents do not match its hash (altered)")
            }
            Fault::BadSignature { seq } => {
                write!(f, "checkpoint at entry {seq}: signature does not verify")
            }
            Fault::CheckpointMismatch { seq } => write!(
                f,
                "entry {seq}: hash differs from the signed checkpoint (log rewritten)"
            ),
            Fault::Truncated { checkpoint, last } => write!(
                f,
                "entry {}: missing, but a checkpoint covers entries up to {checkpoint} (log truncated)",
                last + 1
            ),
            Fault::Vanished { seq } => write!(
                f,
                "checkpoint at entry {seq}: kept outside the store but missing from it (signed checkpoints deleted)"
            ),
            Fault::DuplicateCheckpoint { seq } => {
                write!(f, "checkpoint at entry {seq}: given twice or out of order")
            }
            Fault::Unreadable { file, line, why } => write!(f, "`{file}` line {line}: {why}"),
            Fault::KeyMismatch => {
                f.write_str("public-key.pem and public-key.hex hold different keys")
            }
        }
    }
}

/// What a successful verification found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints whose signature and head matched.
    pub checkpoints: u64,
    /// The last seq.
    pub head_seq: u64,
    /// The last hash, hex.
    pub head_hash: String,
    /// Entries after the last checkpoint: chained, but not yet signed.
    pub unsealed: u64,
}

/// What a tail verifier saw of its first entry: its seq, and its link once its header held.
#[derive(Clone, Copy, Debug, Default)]
struct Tail {
    first: Option<u64>,
    link: Option<[u8; 32]>,
}

/// Verifies a log streamed in seq order against its checkpoints.
pub struct ChainVerifier {
    checkpoints: BTreeMap<u64, Checkpoint>,
    last_seq: u64,
    last_hash: [u8; 32],
    /// Resuming: the first entry's link is vouched for by the checkpoint it must match; or a
    /// tail: it is checked by [`ChainVerifier::join`].
    trust_first_link: bool,
    /// For a tail ([`ChainVerifier::tail_from`]): what [`ChainVerifier::join`] checks.
    tail: Option<Tail>,
    /// The seq of the next checkpoint to meet (`u64::MAX` for none): the map is looked up only
    /// there, not at every entry.
    next_checkpoint: u64,
    entries: u64,
    matched: u64,
}

impl ChainVerifier {
    /// Checks every checkpoint's signature now; entries are then pushed in order from seq 1.
    /// Checkpoints given twice must be the same checkpoint.
    pub fn new(
        checkpoints: Vec<Checkpoint>,
        verify_signature: &dyn Fn(&[u8], &[u8; 64]) -> bool,
    ) -> Result<Self, Fault> {
        let mut map: BTreeMap<u64, Checkpoint> = BTreeMap::new();
        for cp in checkpoints {
            if let Some(known) = map.get(&cp.seq) {
                if *known != cp {
                    return Err(Fault::DuplicateCheckpoint { seq: cp.seq });
                }
                continue;
            }
            let msg = Checkpoint::message(cp.seq, &cp.head, cp.at_ms);
            if !verify_signature(&msg, &cp.signature) {
                return Err(Fault::BadSignature { seq: cp.seq });
            }
            map.insert(cp.seq, cp);
        }
        let next_checkpoint = map.keys().next().copied().unwrap_or(u64::MAX);
        Ok(ChainVerifier {
            checkpoints: map,
            last_seq: 0,
            last_hash: GENESIS,
            trust_first_link: false,
            tail: None,
            next_checkpoint,
            entries: 0,
            matched: 0,
        })
    }

    /// Verifies only the entries from `from.seq` on, trusting the chain up to a checkpoint
    /// already verified: entries are then pushed from `from.seq`, and that entry must hash to
    /// `from.head`. The cost is proportional to the entries since `from`.
    pub fn resume(
        from: Checkpoint,
        mut checkpoints: Vec<Checkpoint>,
        verify_signature: &dyn Fn(&[u8], &[u8; 64]) -> bool,
    ) -> Result<Self, Fault> {
        let start = from.seq;
        checkpoints.push(from);
        let mut v = ChainVerifier::new(checkpoints, verify_signature)?;
        v.last_seq = start.saturating_sub(1);
        v.trust_first_link = start > 1;
        v.next_checkpoint = v
            .checkpoints
            .range(start..)
            .next()
            .map_or(u64::MAX, |(s, _)| *s);
        Ok(v)
    }

    /// A verifier for the entries from `start` on (`start` > 1), pushed on another thread
    /// while this one takes those before it: the same checkpoints; the first entry's seq and
    /// link are kept for [`ChainVerifier::join`] to check against the entries before it.
    pub fn tail_from(&self, start: u64) -> ChainVerifier {
        ChainVerifier {
            checkpoints: self.checkpoints.clone(),
            last_seq: start.saturating_sub(1),
            last_hash: GENESIS,
            trust_first_link: true,
            tail: Some(Tail::default()),
            next_checkpoint: self
                .checkpoints
                .range(start..)
                .next()
                .map_or(u64::MAX, |(s, _)| *s),
            entries: 0,
            matched: 0,
        }
    }

    /// Joins a tail made by [`ChainVerifier::tail_from`] to this verifier, which took the
    /// entries before it without a fault, checking what one pass would have checked at the
    /// tail's first entry: its seq follows this one's last, and it links to this one's last
    /// hash. A fault the tail found is the caller's to report after a join that succeeds:
    /// one pass would have met the join's faults first. An empty tail leaves this as it is.
    pub fn join(self, tail: ChainVerifier) -> Result<ChainVerifier, Fault> {
        let Some(Tail {
            first: Some(first),
            link,
        }) = tail.tail
        else {
            return Ok(self);
        };
        let expected = self.last_seq + 1;
        if first != expected {
            return Err(Fault::Sequence {
                expected,
                found: first,
            });
        }
        if link.is_some_and(|l| l != self.last_hash) {
            return Err(Fault::BrokenLink { seq: first });
        }
        Ok(ChainVerifier {
            tail: None,
            entries: self.entries + tail.entries,
            matched: self.matched + tail.matched,
            ..tail
        })
    }

    /// The checkpoints this verifier holds, in seq order.
    pub fn checkpoints(&self) -> impl Iterator<Item = &Checkpoint> {
        self.checkpoints.values()
    }

    /// Checks the next entry as stored.
    #[inline]
    pub fn push(&mut self, e: &RawEntry<'_>) -> Result<(), Fault> {
        if let Some(t @ Tail { first: None, .. }) = &mut self.tail {
            t.first = Some(e.seq);
        }
        let expected = self.last_seq + 1;
        if e.seq != expected {
            return Err(Fault::Sequence {
                expected,
                found: e.seq,
            });
        }
        let (Some(domain), Some(seq), Some(prev)) = (
            e.bytes.get(..ENTRY_DOMAIN.len()),
            e.bytes.get(ENTRY_DOMAIN.len()..ENTRY_DOMAIN.len() + 8),
            e.bytes.get(HEADER_LEN - 32..HEADER_LEN),
        ) else {
            return Err(Fault::Altered { seq: expected });
        };
        if domain != ENTRY_DOMAIN || seq != expected.to_be_bytes() {
            return Err(Fault::Altered { seq: expected });
        }
        if prev != self.last_hash && !self.trust_first_link {
            return Err(Fault::BrokenLink { seq: expected });
        }
        if let Some(t @ Tail { link: None, .. }) = &mut self.tail {
            t.link = prev.try_into().ok();
        }
        self.trust_first_link = false;
        let h = sha256(e.bytes);
        if e.hash != h {
            return Err(Fault::Altered { seq: expected });
        }
        if expected == self.next_checkpoint {
            if let Some(cp) = self.checkpoints.get(&expected) {
                if cp.head != h {
                    return Err(Fault::CheckpointMismatch { seq: expected });
                }
                self.matched += 1;
            }
            self.next_checkpoint = self
                .checkpoints
                .range(expected + 1..)
                .next()
                .map_or(u64::MAX, |(s, _)| *s);
        }
        self.last_seq = expected;
        self.last_hash = h;
        self.entries += 1;
        Ok(())
    }

    /// The last entry pushed: its seq and hash.
    pub fn head(&self) -> (u64, [u8; 32]) {
        (self.last_seq, self.last_hash)
    }

    /// Ends the stream: every checkpoint must have been met.
    pub fn finish(self) -> Result<Report, Fault> {
        if let Some((&cp, _)) = self.checkpoints.range(self.last_seq + 1..).next() {
            return Err(Fault::Truncated {
                checkpoint: cp,
                last: self.last_seq,
            });
        }
        let sealed = self.checkpoints.keys().next_back().copied().unwrap_or(0);
        Ok(Report {
            entries: self.entries,
            checkpoints: self.matched,
            head_seq: self.last_seq,
            head_hash: hex::encode(self.last_hash),
            unsealed: self.last_seq.saturating_sub(sealed),
        })
    }
}

/// Fixed-size byte arrays as lowercase hex strings in JSON.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; N];
        // Lowercase only: the format has one spelling of each hash, so a changed one shows.
        if !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(D::Error::custom(format!(
                "expected {} lowercase hex characters",
                2 * N
            )));
        }
        hex::decode_to_slice(&text, &mut out).map_err(|_| {
            D::Error::custom(format!("expected {} lowercase hex characters", 2 * N))
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(i: i64) -> Draft {
        Draft {
            at_ms: 1_700_000_000_000 + i,
            actor: "service:app".into(),
            role: "service".into(),
            action: "pi.read".into(),
            outcome: Outcome::Granted,
            subject: "ab".repeat(16),
            purpose: "provide_service".into(),
            categories: "email,phone".into(),
            detail: String::new(),
            policy_version: "2026.1".into(),
        }
    }

    fn log(n: i64) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for i in 0..n {
            let (seq, prev) = out.last().map_or((0, GENESIS), |e| (e.seq, e.hash));
            out.push(Entry::chain(seq, prev, draft(i)));
        }
        out
    }

    // A stand-in signature: the tests here exercise the chain, not Ed25519.
    fn sign(msg: &[u8]) -> [u8; 64] {
        let d = ring::digest::digest(&SHA256, msg);
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(d.as_ref());
        out
    }

    fn check(entries: &[Entry], cps: Vec<Checkpoint>) -> Result<Report, Fault> {
        let verify = |m: &[u8], s: &[u8; 64]| sign(m) == *s;
        let mut v = ChainVerifier::new(cps, &verify)?;
        for e in entries {
            let bytes = e.encode();
            v.push(&RawEntry {
                seq: e.seq,
                bytes: &bytes,
                hash: &e.hash,
            })?;
        }
        v.finish()
    }

    fn checkpoint(e: &Entry) -> Checkpoint {
        Checkpoint {
            seq: e.seq,
            head: e.hash,
            at_ms: 5,
            signature: sign(&Checkpoint::message(e.seq, &e.hash, 5)),
        }
    }

    #[test]
    fn p33_intact_log_verifies() {
        let l = log(10);
        let r = check(&l, vec![checkpoint(&l[4]), checkpoint(&l[9])]).unwrap();
        assert_eq!((r.entries, r.checkpoints, r.unsealed), (10, 2, 0));
    }

    #[test]
    fn p33_changed_field_is_found() {
        let mut l = log(10);
        l[3].purpose = "marketing".into();
        assert_eq!(check(&l, vec![]), Err(Fault::Altered { seq: 4 }));
    }

    #[test]
    fn p33_removed_inserted_reordered_entries_are_found() {
        let l = log(10);
        let mut removed = l.clone();
        removed.remove(5);
        assert_eq!(check(&removed, vec![]).unwrap_err().seq(), Some(6));
        let mut swapped = l.clone();
        swapped.swap(2, 3);
        assert_eq!(check(&swapped, vec![]).unwrap_err().seq(), Some(3));
        let mut inserted = l.clone();
        inserted.insert(4, l[4].clone());
        assert!(check(&inserted, vec![]).is_err());
    }

    #[test]
    fn p33_rewritten_chain_is_caught_by_checkpoint() {
        let l = log(10);
        let cp = checkpoint(&l[9]);
        // Rewrite entry 5 and re-chain everything after it.
        let mut forged: Vec<Entry> = l[..4].to_vec();
        for (i, e) in l[4..].iter().enumerate() {
            let mut d = draft(4 + i as i64);
            if i == 0 {
                d.outcome = Outcome::Refused;
            }
            let prev = forged.last().unwrap();
            forged.push(Entry::chain(prev.seq, prev.hash, d));
            let _ = e;
        }
        assert_eq!(
            check(&forged, vec![cp.clone()]),
            Err(Fault::CheckpointMismatch { seq: 10 })
        );
        assert_eq!(
            check(&l[..8], vec![cp]),
            Err(Fault::Truncated {
                checkpoint: 10,
                last: 8
            })
        );
    }

    fn resume(entries: &[Entry], from: &Entry, cps: Vec<Checkpoint>) -> Result<Report, Fault> {
        let verify = |m: &[u8], s: &[u8; 64]| sign(m) == *s;
        let mut v = ChainVerifier::resume(checkpoint(from), cps, &verify)?;
        for e in &entries[(from.seq - 1) as usize..] {
            let bytes = e.encode();
            v.push(&RawEntry {
                seq: e.seq,
                bytes: &bytes,
                hash: &e.hash,
            })?;
        }
        v.finish()
    }

    #[test]
    fn p33_resuming_from_a_checkpoint_checks_only_what_follows_and_that_it_still_holds() {
        let l = log(10);
        let r = resume(&l, &l[5], vec![checkpoint(&l[9])]).unwrap();
        assert_eq!((r.entries, r.checkpoints, r.head_seq), (5, 2, 10));
        // Entry 6 itself rewritten: it no longer matches the checkpoint resumed from.
        let mut forged = l.clone();
        forged[5].purpose = "marketing".into();
        forged[5].hash = sha256(&forged[5].encode());
        assert_eq!(
            resume(&forged, &l[5], vec![]),
            Err(Fault::CheckpointMismatch { seq: 6 })
        );
        // A gap after it.
        let mut gapped = l.clone();
        gapped.remove(7);
        assert_eq!(resume(&gapped, &l[5], vec![]).unwrap_err().seq(), Some(8));
        // The log ends before it.
        assert!(matches!(
            resume(&l[..5], &l[5], vec![]),
            Err(Fault::Truncated { checkpoint: 6, .. })
        ));
    }

    /// Verifies `entries` on two verifiers split before `at`, as `verify_store` does for a
    /// long log: faults in the head first, then the join's, then the tail's.
    fn check_split(entries: &[Entry], cps: Vec<Checkpoint>, at: u64) -> Result<Report, Fault> {
        let verify = |m: &[u8], s: &[u8; 64]| sign(m) == *s;
        let mut head = ChainVerifier::new(cps, &verify)?;
        let mut tail = head.tail_from(at);
        let push = |v: &mut ChainVerifier, e: &Entry| {
            let bytes = e.encode();
            v.push(&RawEntry {
                seq: e.seq,
                bytes: &bytes,
                hash: &e.hash,
            })
        };
        let (first, rest): (Vec<&Entry>, Vec<&Entry>) = entries.iter().partition(|e| e.seq < at);
        for e in first {
            push(&mut head, e)?;
        }
        let mut tail_fault = None;
        for e in rest {
            if let Err(f) = push(&mut tail, e) {
                tail_fault = Some(f);
                break;
            }
        }
        let joined = head.join(tail)?;
        if let Some(f) = tail_fault {
            return Err(f);
        }
        joined.finish()
    }

    #[test]
    fn p33_a_log_checked_in_two_parts_finds_what_one_pass_finds() {
        let l = log(12);
        let cps = || vec![checkpoint(&l[3]), checkpoint(&l[8])];
        let mut altered = l.clone();
        altered[6].detail = "changed".into();
        let mut relinked = l.clone();
        relinked[6].prev_hash = [7; 32];
        relinked[6].hash = sha256(&relinked[6].encode());
        let mut gapped = l.clone();
        gapped.remove(6);
        let mut stale_link = l.clone();
        stale_link[6].prev_hash = [7; 32];
        let mut jumped = l.clone();
        if let Some(last) = jumped.last_mut() {
            last.seq = 1000;
            last.hash = sha256(&last.encode());
        }
        let cut: Vec<Entry> = l[..7].to_vec();
        for damaged in [&l, &altered, &relinked, &stale_link, &gapped, &jumped, &cut] {
            let whole = check(damaged, cps());
            for at in 2..=14 {
                assert_eq!(
                    check_split(damaged, cps(), at),
                    whole.clone(),
                    "split before {at}"
                );
            }
        }
        assert_eq!(
            check_split(&l, cps(), 7).unwrap(),
            check(&l, cps()).unwrap()
        );
    }

    #[test]
    fn p33_two_checkpoints_for_one_entry_must_agree() {
        let l = log(3);
        let mut other = checkpoint(&l[1]);
        other.head = l[2].hash;
        other.signature = sign(&Checkpoint::message(other.seq, &other.head, other.at_ms));
        assert_eq!(
            check(&l, vec![checkpoint(&l[1]), other]),
            Err(Fault::DuplicateCheckpoint { seq: 2 })
        );
        assert!(check(&l, vec![checkpoint(&l[1]), checkpoint(&l[1])]).is_ok());
    }

    #[test]
    fn evidence_json_is_strict() {
        let l = log(1);
        let text = serde_json::to_string(&l[0]).unwrap();
        assert!(serde_json::from_str::<Entry>(&text.replacen('{', "{\"x\":1,", 1)).is_err());
        let upper = text.replace(&hex::encode(l[0].hash), &hex::encode_upper(l[0].hash));
        assert!(serde_json::from_str::<Entry>(&upper).is_err());
    }

    #[test]
    fn entry_json_round_trips() {
        let l = log(2);
        let text = serde_json::to_string(&l[1]).unwrap();
        let back: Entry = serde_json::from_str(&text).unwrap();
        assert_eq!(back, l[1]);
        assert_eq!(sha256(&back.encode()), back.hash);
        assert_eq!(Entry::decode(&back.encode(), back.hash).unwrap(), back);
        assert_eq!(
            Entry::decode(&back.encode()[..70], back.hash),
            Err(Malformed)
        );
    }
}
