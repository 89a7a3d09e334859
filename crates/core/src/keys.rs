//! Service API keys (P21, P25): random secrets bound to a policy role, stored only as digests.
//!
//! A key reads `stw_<id>_<secret>`: 16 hex characters of public id, then 64 hex characters of
//! secret (32 random bytes). The store keeps the id, the role and SHA-256 of the secret — a
//! slow hash adds nothing for 256 random bits — so a copy of the database authenticates no one.

use serde_json::json;
use steward_audit::sha256;
use steward_store::{ApiKeyRow, Op};

use crate::error::Error;
use crate::vault::{Actor, Vault};

/// A key as listed: everything but the secret.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ApiKeyInfo {
    /// Public id.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// The role it acts under.
    pub role: String,
    /// When created, Unix ms.
    pub created_ms: i64,
    /// Whether revoked.
    pub revoked: bool,
}

impl From<ApiKeyRow> for ApiKeyInfo {
    fn from(k: ApiKeyRow) -> Self {
        ApiKeyInfo {
            id: k.id,
            name: k.name,
            role: k.role,
            created_ms: k.created_ms,
            revoked: k.revoked,
        }
    }
}

/// How long an API key lookup is trusted before the store is asked again.
/// A key revoked by another process (`steward key revoke`) stops working on a running server
/// within this long; on the process that revoked it, at once.
pub const KEY_CACHE_MS: i64 = 2_000;

impl Vault {
    /// Creates an API key for `role`; returns its listing and the key itself, shown once.
    pub fn create_api_key(&self, name: &str, role: &str) -> Result<(ApiKeyInfo, String), Error> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::Invalid(
                "a key name is 1 to 64 characters of letters, digits, `-` and `_`".into(),
            ));
        }
        if self.policy.role_id(role).is_none() {
            return Err(Error::Unknown {
                kind: crate::NameKind::Role,
            });
        }
        let mut id = [0u8; 8];
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        let random = |buf: &mut [u8]| {
            ring::rand::SecureRandom::fill(&self.rng, buf)
                .map_err(|_| Error::Crypto(steward_crypto::CryptoError::Random))
        };
        random(&mut id)?;
        random(secret.as_mut_slice())?;
        let row = ApiKeyRow {
            id: hex::encode(id),
            name: name.into(),
            role: role.into(),
            digest: sha256(secret.as_slice()),
            created_ms: self.clock.now_ms(),
            revoked: false,
        };
        let token = format!("stw_{}_{}", row.id, hex::encode(secret.as_slice()));
        self.store.commit(
            vec![Op::InsertApiKey(row.clone())],
            vec![self.system_draft(
                "apikey.create",
                json!({ "id": row.id, "name": name, "role": role }),
            )],
        )?;
        Ok((row.into(), token))
    }

    /// Every API key, without secrets.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyInfo>, Error> {
        Ok(self
            .store
            .api_keys()?
            .into_iter()
            .map(ApiKeyInfo::from)
            .collect())
    }

    /// A key by id, from a short-lived cache: authentication is on every request, and the
    /// store round trip would cost more than the rest of it. Revocation in this process clears
    /// the entry at once; elsewhere it takes effect within [`KEY_CACHE_MS`].
    fn cached_api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, Error> {
        let now = self.clock.now_ms();
        if let Some((row, at)) = self.key_cache().get(id)
            && now.saturating_sub(*at) < KEY_CACHE_MS
        {
            return Ok(Some(row.clone()));
        }
        let row = self.store.api_key(id)?;
        if let Some(r) = &row {
            let mut cache = self.key_cache();
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(id.to_string(), (r.clone(), now));
        }
        Ok(row)
    }

    fn key_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (ApiKeyRow, i64)>> {
        self.api_key_cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Revokes a key; it authenticates nothing from then on.
    pub fn revoke_api_key(&self, id: &str) -> Result<(), Error> {
        if self.store.api_key(id)?.is_none() {
            return Err(Error::NotFound(crate::Missing::ApiKey));
        }
        self.store.commit(
            vec![Op::RevokeApiKey { id: id.into() }],
            vec![self.system_draft("apikey.revoke", json!({ "id": id }))],
        )?;
        // After the commit: a request between a removal and the commit would cache the row
        // as it was.
        self.key_cache().remove(id);
        Ok(())
    }

    /// The actor an API key (`stw_...`) or a staff session (`stf_...`) stands for. Every failure is the same `unauthenticated` error, so
    /// a caller learns nothing about which part was wrong.
    pub fn authenticate(&self, token: &str) -> Result<Actor, Error> {
        if token.starts_with("stf_") {
            return self.staff_actor(token);
        }
        let parsed = token
            .strip_prefix("stw_")
            .and_then(|rest| rest.split_once('_'))
            .filter(|(id, secret)| id.len() == 16 && secret.len() == 64);
        let Some((id, secret)) = parsed else {
            return Err(Error::Unauthenticated);
        };
        let mut raw = zeroize::Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(secret, raw.as_mut_slice()).map_err(|_| Error::Unauthenticated)?;
        let key = self.cached_api_key(id)?.ok_or(Error::Unauthenticated)?;
        let role = self.policy.role_id(&key.role);
        match role {
            Some(role) if !key.revoked && key.digest == sha256(raw.as_slice()) => Ok(Actor {
                id: format!("service:{}", key.name),
                role,
            }),
            _ => Err(Error::Unauthenticated),
        }
    }
}
