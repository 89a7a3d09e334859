//! Steward's cryptography (P20, P33): envelope encryption under per-subject data keys, keyed
//! blind indexes, subject pseudonyms for the audit log, and Ed25519 signatures.
//!
//! One 32-byte master key is the root of everything. HKDF-SHA256 derives from it, each under
//! its own label: the key-encryption key that wraps data keys, the blind-index key, the
//! pseudonym key and the Ed25519 signing seed. Knows nothing of the database or the policy.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use ring::{hkdf, hmac};
use zeroize::Zeroizing;

/// Length of a blind index digest in bytes.
pub const INDEX_LEN: usize = 16;

/// What can go wrong. Messages never contain key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The master key source is unusable.
    #[error("master key: {0}")]
    MasterKey(String),
    /// Decryption failed: wrong key, or the ciphertext was altered or moved (P20).
    #[error("ciphertext failed to open: wrong key, or altered or moved")]
    Open,
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
}

/// The root secret. Never printed, zeroed when dropped.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// From 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<MasterKey, CryptoError> {
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), key.as_mut_slice()).map_err(|_| {
            CryptoError::MasterKey("must be 64 hexadecimal characters (32 bytes)".into())
        })?;
        Ok(MasterKey(key))
    }

    /// A fresh random key.
    pub fn generate(rng: &dyn SecureRandom) -> Result<MasterKey, CryptoError> {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill(key.as_mut_slice())
            .map_err(|_| CryptoError::Random)?;
        Ok(MasterKey(key))
    }

    /// Reads the key file, or creates it with mode 0600 when it does not exist yet.
    pub fn load_or_create(path: &Path, rng: &dyn SecureRandom) -> Result<MasterKey, CryptoError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                return MasterKey::from_hex(&text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(CryptoError::MasterKey(format!(
                    "cannot read `{}`: {}",
                    path.display(),
                    e.kind()
                )));
            }
        }
        let key = MasterKey::generate(rng)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let io = |e: std::io::Error| {
            CryptoError::MasterKey(format!("cannot create `{}`: {}", path.display(), e.kind()))
        };
        let mut file = options.open(path).map_err(io)?;
        let text = Zeroizing::new(hex::encode(key.0.as_slice()));
        file.write_all(text.as_bytes()).map_err(io)?;
        file.write_all(b"\n").map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(key)
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), CryptoError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| {
            CryptoError::MasterKey(format!("cannot stat `{}`: {}", path.display(), e.kind()))
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(CryptoError::MasterKey(format!(
            "`{}` is readable by others (mode {:o}); run `chmod 600` on it",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), CryptoError> {
    Ok(())
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    let info = [label];
    prk.expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| CryptoError::MasterKey("key derivation failed".into()))
}

/// Random AES-GCM nonces, drawn from the system's secure random source in bulk: one system
/// call per 341 nonces instead of one per value. Every nonce is still 96 fresh random bits.
pub struct NonceSource {
    rng: SystemRandom,
    pool: std::sync::Mutex<NoncePool>,
}

const POOL_NONCES: usize = 341;

struct NoncePool {
    bytes: [u8; NONCE_LEN * POOL_NONCES],
    used: usize,
}

impl Default for NonceSource {
    fn default() -> Self {
        NonceSource {
            rng: SystemRandom::new(),
            pool: std::sync::Mutex::new(NoncePool {
                bytes: [0; NONCE_LEN * POOL_NONCES],
                used: POOL_NONCES,
            }),
        }
    }
}

impl fmt::Debug for NonceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceSource")
    }
}

impl NonceSource {
    /// The next nonce; each is handed out once.
    pub fn next(&self) -> Result<[u8; NONCE_LEN], CryptoError> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.used == POOL_NONCES {
            self.rng
                .fill(&mut pool.bytes)
                .map_err(|_| CryptoError::Random)?;
            pool.used = 0;
        }
        let start = pool.used * NONCE_LEN;
        let mut nonce = [0u8; NONCE_LEN];
        let chunk = pool
            .bytes
            .get_mut(start..start + NONCE_LEN)
            .ok_or(CryptoError::Random)?;
        nonce.copy_from_slice(chunk);
        // A nonce leaves the pool once: wipe it so it can never be handed out again.
        chunk.fill(0);
        pool.used += 1;
        Ok(nonce)
    }
}

/// A subject's data key, ready to seal and open values.
pub struct DataKey(LessSafeKey);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    fn from_bytes(bytes: &[u8]) -> Result<DataKey, CryptoError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| CryptoError::Open)?;
        Ok(DataKey(LessSafeKey::new(key)))
    }

    /// Encrypts `plaintext` bound to `aad`: nonce (12 bytes) || ciphertext || tag (16 bytes).
    pub fn seal(
        &self,
        nonces: &NonceSource,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce = nonces.next()?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(NONCE_LEN);
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| CryptoError::Open)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens what [`DataKey::seal`] made under the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (nonce, body) = sealed
            .split_at_checked(NONCE_LEN)
            .ok_or(CryptoError::Open)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut buf = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| CryptoError::Open)?;
        let n = plain.len();
        buf.truncate(n);
        Ok(buf)
    }
}

/// The keys derived from the master key.
pub struct Keys {
    check: [u8; 16],
    kek: LessSafeKey,
    backup: DataKey,
    secrets: DataKey,
    blind: hmac::Key,
    pseudonym: hmac::Key,
    state: hmac::Key,
    erasure: hmac::Key,
    signing: Ed25519KeyPair,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

const WRAP_AAD: &[u8] = b"steward.data-key.v1";

impl Keys {
    /// Derives every working key from the master key.
    pub fn derive(master: &MasterKey) -> Result<Keys, CryptoError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"steward.v1").extract(master.0.as_slice());
        let mut kek = Zeroizing::new([0u8; 32]);
        derive(&prk, b"key-encryption-key", kek.as_mut_slice())?;
        let mut blind = Zeroizing::new([0u8; 32]);
        derive(&prk, b"blind-index", blind.as_mut_slice())?;
        let mut pseudonym = Zeroizing::new([0u8; 32]);
        derive(&prk, b"pseudonym", pseudonym.as_mut_slice())?;
        let mut seed = Zeroizing::new([0u8; 32]);
        derive(&prk, b"ed25519-signing-seed", seed.as_mut_slice())?;
        let mut backup = Zeroizing::new([0u8; 32]);
        derive(&prk, b"backup-encryption-key", backup.as_mut_slice())?;
        let mut secrets = Zeroizing::new([0u8; 32]);
        derive(&prk, b"stored-secrets", secrets.as_mut_slice())?;
        let mut check = [0u8; 16];
        derive(&prk, b"key-check-value", &mut check)?;
        let mut state = Zeroizing::new([0u8; 32]);
        derive(&prk, b"state-tag", state.as_mut_slice())?;
        let mut erasure = Zeroizing::new([0u8; 32]);
        derive(&prk, b"dataset-erasure-hash", erasure.as_mut_slice())?;
        let signing = Ed25519KeyPair::from_seed_unchecked(seed.as_slice())
            .map_err(|_| CryptoError::MasterKey("signing key derivation failed".into()))?;
        Ok(Keys {
            check,
            kek: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, kek.as_slice())
                    .map_err(|_| CryptoError::MasterKey("bad key length".into()))?,
            ),
            backup: DataKey::from_bytes(backup.as_slice())?,
            secrets: DataKey::from_bytes(secrets.as_slice())?,
            blind: hmac::Key::new(hmac::HMAC_SHA256, blind.as_slice()),
            pseudonym: hmac::Key::new(hmac::HMAC_SHA256, pseudonym.as_slice()),
            state: hmac::Key::new(hmac::HMAC_SHA256, state.as_slice()),
            erasure: hmac::Key::new(hmac::HMAC_SHA256, erasure.as_slice()),
            signing,
        })
    }

    /// What erasure writes over a value in the provider's databases where a dataset says
    /// `erase: hash` (`docs/datasets.md`): hex HMAC-SHA256 of the value under a key of its own
    /// derived from the master key. Equal values give equal hashes within a deployment;
    /// nothing can be read back without the key.
    pub fn erasure_hash(&self, value: &str) -> String {
        hex::encode(hmac::sign(&self.erasure, value.as_bytes()).as_ref())
    }

    /// The master key's check value: 16 bytes derived from it under a label of their own, so a
    /// store can tell the key it was made with from another without holding anything that
    /// helps recover a key.
    pub fn check_value(&self) -> [u8; 16] {
        self.check
    }

    /// The key backups are sealed with (AES-256-GCM, derived from the master key).
    pub fn backup_key(&self) -> &DataKey {
        &self.backup
    }

    /// The key secrets Steward must use again are sealed with (a webhook endpoint's signing
    /// secret): AES-256-GCM, derived from the master key under a label of its own.
    pub fn secrets_key(&self) -> &DataKey {
        &self.secrets
    }

    /// Makes a fresh data key for `subject`, returning it and its wrapped form for the keyring.
    pub fn new_data_key(
        &self,
        rng: &dyn SecureRandom,
        subject: &[u8],
    ) -> Result<(DataKey, Vec<u8>), CryptoError> {
        let mut raw = Zeroizing::new([0u8; 32]);
        rng.fill(raw.as_mut_slice())
            .map_err(|_| CryptoError::Random)?;
        let wrapped = self.wrap(rng, subject, raw.as_slice())?;
        Ok((DataKey::from_bytes(raw.as_slice())?, wrapped))
    }

    fn wrap(
        &self,
        rng: &dyn SecureRandom,
        subject: &[u8],
        raw: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut aad = WRAP_AAD.to_vec();
        aad.extend_from_slice(subject);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let mut body = Zeroizing::new(raw.to_vec());
        self.kek
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut *body,
            )
            .map_err(|_| CryptoError::Open)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Unwraps a data key read from the keyring; fails if it was made for another subject.
    pub fn unwrap_data_key(&self, subject: &[u8], wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        let mut aad = WRAP_AAD.to_vec();
        aad.extend_from_slice(subject);
        let (nonce, body) = wrapped
            .split_at_checked(NONCE_LEN)
            .ok_or(CryptoError::Open)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let raw = self
            .kek
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| CryptoError::Open)?;
        DataKey::from_bytes(raw)
    }

    /// The authenticity tag of a row of state that decides reads (P10, P27, P33): HMAC-SHA256
    /// under the state key (HKDF label `state-tag`) of `kind` and each part, every one length-
    /// prefixed (u32 big-endian), first 16 bytes. Whoever can write the database but does not
    /// hold the master key cannot make a tag for a row they changed.
    pub fn state_tag(&self, kind: &str, parts: &[&[u8]]) -> [u8; 16] {
        // The message is laid out on the stack and signed in one call: most rows' messages
        // are well under 256 bytes, and updating the HMAC part by part cost as much again.
        let mut buf = [0u8; 256];
        let mut at = 0usize;
        let mut long: Option<Vec<u8>> = None;
        for part in std::iter::once(kind.as_bytes()).chain(parts.iter().copied()) {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes();
            match buf.get_mut(at..at + 4 + part.len()) {
                Some(slot) if long.is_none() => {
                    let (head, tail) = slot.split_at_mut(4);
                    head.copy_from_slice(&len);
                    tail.copy_from_slice(part);
                    at += 4 + part.len();
                }
                _ => {
                    let v = long.get_or_insert_with(|| buf.get(..at).unwrap_or_default().to_vec());
                    v.extend_from_slice(&len);
                    v.extend_from_slice(part);
                }
            }
        }
        let message = match &long {
            Some(v) => v.as_slice(),
            None => buf.get(..at).unwrap_or_default(),
        };
        let tag = hmac::sign(&self.state, message);
        let mut out = [0u8; 16];
        for (o, t) in out.iter_mut().zip(tag.as_ref()) {
            *o = *t;
        }
        out
    }

    /// Checks a tag made by [`Keys::state_tag`], in constant time.
    pub fn state_tag_holds(&self, kind: &str, parts: &[&[u8]], tag: &[u8]) -> bool {
        let want = self.state_tag(kind, parts);
        tag.len() == want.len()
            && want
                .iter()
                .zip(tag)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }

    /// Keyed blind index of a lookup value: HMAC-SHA256(blind key, kind || 0x00 || value),
    /// first 16 bytes. The caller normalises the value first.
    pub fn blind_index(&self, kind: &str, value: &str) -> [u8; INDEX_LEN] {
        let mut ctx = hmac::Context::with_key(&self.blind);
        ctx.update(kind.as_bytes());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; INDEX_LEN];
        for (o, t) in out.iter_mut().zip(tag.as_ref()) {
            *o = *t;
        }
        out
    }

    /// The pseudonym that names a subject in the audit log: HMAC-SHA256(pseudonym key,
    /// subject id), first 16 bytes, as 32 lowercase hex characters.
    pub fn pseudonym(&self, subject: &[u8]) -> String {
        let tag = hmac::sign(&self.pseudonym, subject);
        hex::encode(tag.as_ref().get(..16).unwrap_or_default())
    }

    /// Signs `message` with the Ed25519 key (64-byte signature).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let sig = self.signing.sign(message);
        let mut out = [0u8; 64];
        for (o, s) in out.iter_mut().zip(sig.as_ref()) {
            *o = *s;
        }
        out
    }

    /// The Ed25519 public key (32 bytes).
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (o, s) in out.iter_mut().zip(self.signing.public_key().as_ref()) {
            *o = *s;
        }
        out
    }
}

/// Verifies an Ed25519 signature with a published public key.
pub fn verify_signature(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

/// The public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as `openssl` reads it.
pub fn public_key_pem(public_key: &[u8; 32]) -> String {
    // DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), then the 32-byte key.
    const PREFIX: [u8; 12] = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(public_key);
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    )
}

/// The system's secure random source.
pub fn system_random() -> SystemRandom {
    SystemRandom::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::derive(&MasterKey::from_hex(&"11".repeat(32)).unwrap()).unwrap()
    }

    #[test]
    fn p20_sealed_value_opens_only_with_same_binding() {
        let rng = system_random();
        let k = keys();
        let (dk, wrapped) = k.new_data_key(&rng, b"subject-a").unwrap();
        let sealed = dk
            .seal(&NonceSource::default(), b"a|email|1", b"alice@example.com")
            .unwrap();
        assert_eq!(
            dk.open(b"a|email|1", &sealed).unwrap(),
            b"alice@example.com"
        );
        assert!(dk.open(b"a|email|2", &sealed).is_err());
        let again = k.unwrap_data_key(b"subject-a", &wrapped).unwrap();
        assert_eq!(
            again.open(b"a|email|1", &sealed).unwrap(),
            b"alice@example.com"
        );
        assert!(k.unwrap_data_key(b"subject-b", &wrapped).is_err());
    }

    #[test]
    fn p33_signatures_verify_with_public_key_only() {
        let k = keys();
        let sig = k.sign(b"hello");
        assert!(verify_signature(&k.public_key(), b"hello", &sig));
        assert!(!verify_signature(&k.public_key(), b"hellO", &sig));
        let pem = public_key_pem(&k.public_key());
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
    }

    #[test]
    fn p20_master_key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let rng = system_random();
        let a = MasterKey::load_or_create(&path, &rng).unwrap();
        let b = MasterKey::load_or_create(&path, &rng).unwrap();
        assert_eq!(
            Keys::derive(&a).unwrap().pseudonym(b"x"),
            Keys::derive(&b).unwrap().pseudonym(b"x")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(format!("{a:?}"), "MasterKey(<redacted>)");
    }

    #[test]
    fn nonces_are_never_repeated_across_pool_refills() {
        let n = NonceSource::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..(3 * POOL_NONCES + 7) {
            assert!(seen.insert(n.next().unwrap()));
        }
    }

    #[test]
    fn blind_index_is_keyed_and_deterministic() {
        let k = keys();
        assert_eq!(
            k.blind_index("email", "a@b.c"),
            k.blind_index("email", "a@b.c")
        );
        assert_ne!(
            k.blind_index("email", "a@b.c"),
            k.blind_index("phone", "a@b.c")
        );
        let other = Keys::derive(&MasterKey::from_hex(&"22".repeat(32)).unwrap()).unwrap();
        assert_ne!(
            k.blind_index("email", "a@b.c"),
            other.blind_index("email", "a@b.c")
        );
    }
}
