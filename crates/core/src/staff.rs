//! Staff accounts (P21): a sign-in name, a policy role, and a password kept only as an
//! Argon2id hash. A staff member signs in for an eight-hour session and then acts under the
//! account's role; wrong passwords are limited per account and per client address, and every
//! sign-in, good or bad, is audited.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde_json::json;
use steward_audit::{Outcome, sha256};
use steward_store::{Op, StaffRow};

use crate::error::Error;
use crate::selfservice::SessionToken;
use crate::vault::{Actor, Vault};

/// How long a staff session lasts.
pub const STAFF_SESSION_MS: i64 = 8 * 3_600_000;
/// Wrong passwords for one account per hour before it is refused for the rest of the hour.
pub const STAFF_FAILURES_PER_HOUR: u32 = 10;
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
}

impl Vault {
    /// Creates (or resets the password of) a staff account under a policy role.
    pub fn create_staff(&self, username: &str, role: &str, password: &str) -> Result<(), Error> {
        if !valid_username(username) {
            return Err(Error::Invalid(
                "a staff username is 1 to 64 characters of a-z, 0-9, `.`, `-` and `_`".into(),
            ));
        }
        if self.policy.role_id(role).is_none() {
            return Err(Error::Unknown {
                kind: crate::NameKind::Role,
            });
        }
        if password.chars().count() < MIN_PASSWORD {
            return Err(Error::Invalid(format!(
                "a staff password is at least {MIN_PASSWORD} characters"
            )));
        }
        let hash = Argon2::default()
            .hash_password(password.as_bytes())
            .map_err(|_| Error::Internal("the password could not be hashed"))?
            .to_string();
        self.store.commit(
            vec![Op::PutStaff(StaffRow {
                username: username.into(),
                role: role.into(),
                password_hash: hash,
                created_ms: self.clock.now_ms(),
                disabled: false,
            })],
            vec![self.system_draft(
                "staff.create",
                json!({ "username": username, "role": role }),
            )],
        )?;
        Ok(())
    }

    /// Signs a staff member in. Every failure looks the same to the caller.
    pub fn staff_sign_in(
        &self,
        username: &str,
        password: &str,
        client: &str,
    ) -> Result<SessionToken, Error> {
        let account_key = format!("staff-fail:{username}");
        let client_key = format!("staff-fail:client:{client}");
        let account = self.store.staff(username)?;
        // Only a name that is an account's goes in the log: what else is typed there may be a
        // password in the wrong box.
        let shown = if account.is_some() { username } else { "?" };
        let refuse = |code: &str| -> Result<(), Error> {
            let mut d =
                self.system_draft("staff.sign_in", json!({ "username": shown, "code": code }));
            d.outcome = Outcome::Refused;
            self.store.commit(vec![], vec![d])?;
            Ok(())
        };
        if self.over_limit(&account_key, STAFF_FAILURES_PER_HOUR)?
            || self.over_limit(&client_key, crate::selfservice::FAILURES_PER_CLIENT_HOUR)?
        {
            refuse("too_many_attempts")?;
            return Err(Error::TooManyAttempts);
        }
        // Verify against something even for unknown names, so timing does not tell.
        let stored = match (&account, DUMMY_HASH.as_ref()) {
            (Some(a), _) => a.password_hash.clone(),
            (None, Some(dummy)) => dummy.clone(),
            // Without the stand-in hash an unknown name would answer faster than a known one.
            (None, None) => return Err(Error::Internal("the sign-in timing guard is unavailable")),
        };
        let ok = PasswordHash::new(&stored).ok().is_some_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        let account = match account {
            Some(a) if ok && !a.disabled && self.policy.role_id(&a.role).is_some() => a,
            _ => {
                self.count_attempt(&account_key, STAFF_FAILURES_PER_HOUR)?;
                self.count_attempt(&client_key, crate::selfservice::FAILURES_PER_CLIENT_HOUR)?;
                refuse("credentials_invalid")?;
                return Err(Error::SignInFailed);
            }
        };
        let mut raw = [0u8; 32];
        ring::rand::SecureRandom::fill(&self.rng, &mut raw)
            .map_err(|_| Error::Crypto(steward_crypto::CryptoError::Random))?;
        let token = format!("stf_{}", hex::encode(raw));
        let expires_ms = self.clock.now_ms() + STAFF_SESSION_MS;
        self.store.commit(
            vec![Op::PutStaffSession {
                digest: sha256(token.as_bytes()),
                username: account.username.clone(),
                expires_ms,
            }],
            vec![self.system_draft(
                "staff.sign_in",
                json!({ "username": account.username, "role": account.role }),
            )],
        )?;
        Ok(SessionToken { token, expires_ms })
    }

    /// Ends a staff member's session (signing out of the console): its token no longer
    /// authenticates. Audited `staff.sign_out`. A token that is no session is no error.
    pub fn staff_sign_out(&self, token: &str) -> Result<(), Error> {
        let digest = sha256(token.as_bytes());
        let Some((username, _)) = self.store.staff_session(&digest)? else {
            return Ok(());
        };
        self.store.commit(
            vec![Op::PutStaffSession {
                digest,
                username: username.clone(),
                expires_ms: self.clock.now_ms(),
            }],
            vec![self.system_draft("staff.sign_out", json!({ "username": username }))],
        )?;
        Ok(())
    }

    /// The staff member a session token stands for, acting under their account's role.
    pub(crate) fn staff_actor(&self, token: &str) -> Result<Actor, Error> {
        let (username, expires) = self
            .store
            .staff_session(&sha256(token.as_bytes()))?
            .ok_or(Error::Unauthenticated)?;
        if expires <= self.clock.now_ms() {
            return Err(Error::Unauthenticated);
        }
        let account = self.store.staff(&username)?.ok_or(Error::Unauthenticated)?;
        let role = self
            .policy
            .role_id(&account.role)
            .filter(|_| !account.disabled)
            .ok_or(Error::Unauthenticated)?;
        Ok(Actor {
            id: format!("staff:{username}"),
            role,
        })
    }
}

/// An Argon2id hash, with the same parameters as real ones, that no password matches in
/// practice; unknown usernames are verified against it so they cost the same time. `None`
/// only if hashing itself fails, and then sign-ins of unknown names fail loudly.
static DUMMY_HASH: std::sync::LazyLock<Option<String>> = std::sync::LazyLock::new(|| {
    Argon2::default()
        .hash_password(b"no password matches this: steward timing guard")
        .map(|h| h.to_string())
        .ok()
});

#[cfg(test)]
mod tests {
    use argon2::PasswordHash;

    /// The stand-in hash exists and costs what a real one does: same algorithm, parameters.
    #[test]
    fn p25_the_timing_guard_hashes_like_a_real_password() {
        let dummy = super::DUMMY_HASH.clone().unwrap();
        let real = argon2::PasswordHasher::hash_password(
            &argon2::Argon2::default(),
            b"a real staff password",
        )
        .unwrap()
        .to_string();
        let (d, r) = (
            PasswordHash::new(&dummy).unwrap(),
            PasswordHash::new(&real).unwrap(),
        );
        assert_eq!(d.algorithm, r.algorithm);
        assert_eq!(d.params, r.params);
        assert_eq!(d.version, r.version);
    }
}
