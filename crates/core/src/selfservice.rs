//! Self-service for data subjects (P23-P27, P25): sign-in with a one-time code sent to their
//! verified email, then export, consent and requests on their own data only.
//!
//! Codes are six digits, valid ten minutes, stored only as a keyed digest, and spent after
//! five wrong guesses. Sending is limited per address asked for (known or not) and per client
//! address, and so are wrong guesses per client address: brute force stops long before it can succeed. Every issue,
//! guess and sign-in is audited. Whether an email belongs to a subject is never revealed.

use serde::Serialize;
use serde_json::json;
use steward_audit::{Outcome, sha256};
use steward_policy::RoleId;
use steward_store::{Op, OtpRow};

use crate::error::Error;
use crate::requests::RightsRequest;
use crate::rights::Export;
use crate::vault::{Actor, ConsentTarget, SignedDocument, SubjectId, Vault, normalise_lookup};

/// Sends email. Implementations: SMTP in the server; tests use a local SMTP sink.
pub trait Mailer: Send + Sync {
    /// Sends one plain-text message.
    fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String>;

    /// Sends one plain-text message from the outbox, carrying its stable `id` (as the mail's
    /// `Message-ID`), so that a repeat after a crash can be told for one.
    fn send_message(&self, id: &str, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let _ = id;
        self.send(to, subject, body)
    }
}

/// A sign-in code's mail: to the address the subject's record holds.
pub struct CodeMail {
    /// The stored address.
    pub to: String,
    /// The subject line, in Chinese and English.
    pub subject: String,
    /// The text, in Chinese and English.
    pub body: String,
}

/// How long a code works.
pub const CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// Wrong guesses after which a code is void.
pub const CODE_ATTEMPTS: u32 = 5;
/// Codes asked for one address per hour (normalised, as typed), whether or not a subject
/// has it.
pub const SENDS_PER_ADDRESS_HOUR: u32 = 5;
/// Codes requested from one client address per hour.
pub const SENDS_PER_CLIENT_HOUR: u32 = 20;
/// Wrong guesses from one client address per hour.
pub const FAILURES_PER_CLIENT_HOUR: u32 = 20;
/// How long a signed-in session lasts.
pub const SESSION_TTL_MS: i64 = 30 * 60 * 1000;
const HOUR_MS: i64 = 3_600_000;

/// A signed-in session.
#[derive(Clone, Debug, Serialize)]
pub struct SessionToken {
    /// Present as `Authorization: Bearer <token>` on `/v1/self/...`.
    pub token: String,
    /// When it ends, Unix ms.
    pub expires_ms: i64,
}

pub(crate) fn subject_actor() -> Actor {
    Actor {
        id: "subject".into(),
        role: RoleId::SUBJECT,
    }
}

impl Vault {
    pub(crate) fn random_u32(&self) -> Result<u32, Error> {
        let mut b = [0u8; 4];
        ring::rand::SecureRandom::fill(&self.rng, &mut b)
            .map_err(|_| Error::Crypto(steward_crypto::CryptoError::Random))?;
        Ok(u32::from_be_bytes(b))
    }

    /// Counts one attempt against `key`; false when the hourly `limit` is already reached.
    pub(crate) fn count_attempt(&self, key: &str, limit: u32) -> Result<bool, Error> {
        let key = &self.attempt_key(key);
        let now = self.clock.now_ms();
        let (window, count) = match self.store.attempts(key)? {
            Some((w, c)) if now - w < HOUR_MS => (w, c),
            _ => (now, 0),
        };
        if count >= limit {
            return Ok(false);
        }
        self.store.commit(
            vec![Op::PutAttempts {
                key: key.into(),
                window_ms: window,
                count: count + 1,
            }],
            vec![],
        )?;
        Ok(true)
    }

    pub(crate) fn over_limit(&self, key: &str, limit: u32) -> Result<bool, Error> {
        let key = &self.attempt_key(key);
        let now = self.clock.now_ms();
        Ok(matches!(self.store.attempts(key)?, Some((w, c)) if now - w < HOUR_MS && c >= limit))
    }

    /// What an attempt counter is stored under: a keyed digest of what it counts (a typed
    /// username, an address, a client), never the text — a password typed into the username
    /// box must not land in the `attempts` table (P34).
    fn attempt_key(&self, what: &str) -> String {
        hex::encode(self.keys.state_tag("attempts", &[what.as_bytes()]))
    }

    /// The blind index of an email address, under the policy's email lookup category.
    fn email_index(&self, email: &str) -> Result<[u8; 16], Error> {
        let category = self
            .policy
            .categories
            .iter()
            .find(|c| c.lookup && c.taxonomy == "user.contact.email")
            .ok_or_else(|| {
                Error::Invalid(
                    "the policy has no lookup category for email (`user.contact.email`)".into(),
                )
            })?;
        Ok(self
            .keys
            .blind_index(&category.name, &normalise_lookup(email)))
    }

    fn code_digest(&self, subject: SubjectId, code: &str) -> [u8; 16] {
        self.keys
            .blind_index(&format!("otp:{}", hex::encode(subject.0)), code)
    }

    fn audit_subject(
        &self,
        action: &str,
        outcome: Outcome,
        subject: Option<SubjectId>,
        detail: serde_json::Value,
    ) -> Result<(), Error> {
        let draft = self.draft(
            &subject_actor(),
            action,
            outcome,
            subject,
            "",
            String::new(),
            detail,
        );
        self.store.commit(vec![], vec![draft])?;
        Ok(())
    }

    /// Sends a sign-in code to `email` if it belongs to a subject, at once: [`Vault::prepare_code`]
    /// and the mail in one call (the CLI's and the tests' way; the server mails in the
    /// background, so that answers take the same time for every address).
    pub fn send_code(&self, mailer: &dyn Mailer, email: &str, client: &str) -> Result<(), Error> {
        match self.prepare_code(email, client)? {
            Some(mail) => mailer
                .send(&mail.to, &mail.subject, &mail.body)
                .map_err(|_| Error::MailUnavailable),
            None => Ok(()),
        }
    }

    /// Makes a sign-in code for `email` if it belongs to a subject, and returns the mail to
    /// send. What the caller sees is the same whether it does or not (P25): the same limits
    /// count against the address as typed (normalised, keyed) and the client, whether or not
    /// a subject has it; the mail goes to the address the subject's record holds, never to the
    /// one typed (a look-alike that normalises the same is not where the code goes).
    pub fn prepare_code(&self, email: &str, client: &str) -> Result<Option<CodeMail>, Error> {
        let plausible = email.len() <= 254
            && email.split_once('@').is_some_and(|(user, host)| {
                !user.is_empty() && host.contains('.') && !host.starts_with('.')
            });
        if !plausible {
            return Err(Error::Invalid("that is not an email address".into()));
        }
        let digest = self.email_index(email)?;
        for (key, limit, which) in [
            (
                format!("otp-send:client:{client}"),
                SENDS_PER_CLIENT_HOUR,
                "client",
            ),
            (
                format!("otp-send:address:{}", hex::encode(digest)),
                SENDS_PER_ADDRESS_HOUR,
                "address",
            ),
        ] {
            if !self.count_attempt(&key, limit)? {
                self.audit_subject(
                    "otp.send",
                    Outcome::Refused,
                    None,
                    json!({ "code": "too_many_attempts", "limit": which }),
                )?;
                return Err(Error::TooManyAttempts);
            }
        }
        let subject = self.indexed_subject(&digest, |state| {
            state == steward_store::SubjectState::Active
        })?;
        let address = match subject {
            Some(s) => self.stored_address(s, &digest)?.map(|a| (s, a)),
            None => None,
        };
        let Some((subject, address)) = address else {
            self.audit_subject(
                "otp.send",
                Outcome::Refused,
                None,
                json!({ "code": "no_such_subject" }),
            )?;
            return Ok(None);
        };
        let code = format!("{:06}", self.random_u32()? % 1_000_000);
        let now = self.clock.now_ms();
        self.store.commit(
            vec![Op::PutOtp(OtpRow {
                subject: subject.0,
                digest: self.code_digest(subject, &code),
                expires_ms: now + CODE_TTL_MS,
                attempts: 0,
            })],
            vec![self.act(
                &subject_actor(),
                "otp.send",
                Some(subject),
                json!({ "expires_ms": now + CODE_TTL_MS }),
            )],
        )?;
        Ok(Some(CodeMail {
            to: address,
            subject: "Your sign-in code / 您的登录验证码".into(),
            body: format!(
                "您的登录验证码是 {code}，10 分钟内有效。如果不是您本人操作，请忽略本邮件。\n\nYour sign-in code is {code}.\nIt works for 10 minutes. If you did not ask for it, ignore this message.\n"
            ),
        }))
    }

    /// The newest address a subject's email record holds, if any: where the outbox's mail to
    /// them goes (P26, P30). `None` too once they are erased (the key is gone).
    pub(crate) fn subject_address(&self, subject: SubjectId) -> Result<Option<String>, Error> {
        let Some(category) = self.address_category() else {
            return Ok(None);
        };
        let Some(found) = self
            .store
            .subject_records(&subject.0, None, &[category.as_str()])?
        else {
            return Ok(None);
        };
        if !matches!(
            found.state,
            steward_store::SubjectState::Active | steward_store::SubjectState::Closed
        ) {
            return Ok(None);
        }
        let values = match self.open_rows(subject, found.records) {
            Ok(v) => v,
            Err(Error::KeyDestroyed) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(values
            .into_iter()
            .max_by_key(|v| (v.collected_ms, v.record))
            .map(|v| v.value))
    }

    /// The address a subject's email record holds that has this blind index: the newest.
    fn stored_address(
        &self,
        subject: SubjectId,
        digest: &[u8; 16],
    ) -> Result<Option<String>, Error> {
        let Some(category) = self.address_category() else {
            return Ok(None);
        };
        let Some(found) = self
            .store
            .subject_records(&subject.0, None, &[category.as_str()])?
        else {
            return Ok(None);
        };
        let values = self.open_rows(subject, found.records)?;
        Ok(values
            .into_iter()
            .filter(|v| {
                self.keys
                    .blind_index(&category, &normalise_lookup(&v.value))
                    == *digest
            })
            .max_by_key(|v| (v.collected_ms, v.record))
            .map(|v| v.value))
    }

    /// Exchanges a code for a session. Wrong codes count against the code (void after
    /// [`CODE_ATTEMPTS`]) and against the client address.
    pub fn sign_in(&self, email: &str, code: &str, client: &str) -> Result<SessionToken, Error> {
        let fail_key = format!("otp-fail:client:{client}");
        if self.over_limit(&fail_key, FAILURES_PER_CLIENT_HOUR)? {
            self.audit_subject(
                "otp.verify",
                Outcome::Refused,
                None,
                json!({ "code": "too_many_attempts", "limit": "client" }),
            )?;
            return Err(Error::TooManyAttempts);
        }
        let digest = self.email_index(email)?;
        let now = self.clock.now_ms();
        let mut found = None;
        for s in self.store.find_by_index(&digest)? {
            if let Some(otp) = self.store.otp(&s)? {
                found = Some((SubjectId(s), otp));
                break;
            }
        }
        let Some((subject, otp)) = found else {
            self.count_attempt(&fail_key, FAILURES_PER_CLIENT_HOUR)?;
            self.audit_subject(
                "otp.verify",
                Outcome::Refused,
                None,
                json!({ "code": "code_invalid" }),
            )?;
            return Err(Error::CodeInvalid);
        };
        let valid = otp.expires_ms > now && otp.attempts < CODE_ATTEMPTS;
        if valid && otp.digest == self.code_digest(subject, code.trim()) {
            let mut raw = [0u8; 32];
            ring::rand::SecureRandom::fill(&self.rng, &mut raw)
                .map_err(|_| Error::Crypto(steward_crypto::CryptoError::Random))?;
            let token = format!("sts_{}", hex::encode(raw));
            let expires_ms = now + SESSION_TTL_MS;
            let mut ops = vec![
                Op::DeleteOtp { subject: subject.0 },
                Op::PutSession {
                    digest: sha256(token.as_bytes()),
                    subject: subject.0,
                    expires_ms,
                },
            ];
            // P30: signing in after a version took effect is continued use of the service.
            ops.extend(self.continued_use(subject));
            self.store.commit(
                ops,
                vec![self.act(
                    &subject_actor(),
                    "otp.verify",
                    Some(subject),
                    json!({ "session_expires_ms": expires_ms }),
                )],
            )?;
            return Ok(SessionToken { token, expires_ms });
        }
        self.count_attempt(&fail_key, FAILURES_PER_CLIENT_HOUR)?;
        let attempts = otp.attempts + 1;
        let ops = if attempts >= CODE_ATTEMPTS || otp.expires_ms <= now {
            vec![Op::DeleteOtp { subject: subject.0 }]
        } else {
            vec![Op::PutOtp(OtpRow { attempts, ..otp })]
        };
        self.store.commit(
            ops,
            vec![self.draft(
                &subject_actor(),
                "otp.verify",
                Outcome::Refused,
                Some(subject),
                "",
                String::new(),
                json!({ "code": "code_invalid", "attempts": attempts }),
            )],
        )?;
        Err(Error::CodeInvalid)
    }

    /// The subject a session token stands for.
    pub fn session_subject(&self, token: &str) -> Result<SubjectId, Error> {
        if !token.starts_with("sts_") {
            return Err(Error::Unauthenticated);
        }
        match self.store.session(&sha256(token.as_bytes()))? {
            Some((s, expires)) if expires > self.clock.now_ms() => Ok(SubjectId(s)),
            _ => Err(Error::Unauthenticated),
        }
    }

    /// Ends a subject's session (signing out): its token no longer authenticates. Audited
    /// `session.end`. A token that authenticates nothing is no error: there is nothing to end.
    pub fn sign_out(&self, token: &str) -> Result<(), Error> {
        let Ok(subject) = self.session_subject(token) else {
            return Ok(());
        };
        let draft = self.draft(
            &subject_actor(),
            "session.end",
            Outcome::Granted,
            Some(subject),
            "",
            String::new(),
            serde_json::Value::Null,
        );
        self.store.commit(
            vec![Op::PutSession {
                digest: sha256(token.as_bytes()),
                subject: subject.0,
                expires_ms: self.clock.now_ms(),
            }],
            vec![draft],
        )?;
        Ok(())
    }

    /// The token a web page's forms carry, tied to `seed` (a session token, or before sign-in
    /// the value of a cookie of the form's own): a keyed digest no other site can make, so a
    /// form posted from elsewhere is refused.
    pub fn form_token(&self, seed: &str) -> String {
        hex::encode(self.keys.state_tag("form-token", &[seed.as_bytes()]))
    }

    /// A random value for a cookie (the pre-sign-in form seed): 16 bytes, hex.
    pub fn random_hex(&self) -> Result<String, Error> {
        let mut b = [0u8; 16];
        ring::rand::SecureRandom::fill(&self.rng, &mut b)
            .map_err(|_| Error::Crypto(steward_crypto::CryptoError::Random))?;
        Ok(hex::encode(b))
    }

    /// A subject's own export (P23).
    pub fn self_export(&self, subject: SubjectId) -> Result<Export, Error> {
        self.export_unchecked(&subject_actor(), subject, None)
    }

    /// A subject's own consent choice (P27).
    /// `gpc`: the request carried Global Privacy Control; `action`: the act by which the
    /// subject gave it (a grant under GPC needs one, P7).
    pub fn self_consent(
        &self,
        subject: SubjectId,
        target: ConsentTarget,
        (granted, separate): (bool, bool),
        gpc: bool,
        action: Option<&str>,
    ) -> Result<SignedDocument, Error> {
        let actor = subject_actor();
        self.consent_each(&[crate::ConsentChange {
            actor: &actor,
            subject,
            target,
            granted,
            separate,
            channel: "privacy-centre",
            gpc,
            action,
        }])
        .pop()
        .unwrap_or(Err(Error::Internal("no consent was recorded")))
    }

    /// A subject's own request; signed in with a code, their identity counts as verified (P25).
    pub fn self_request(
        &self,
        subject: SubjectId,
        kind: &str,
        target: Option<&str>,
        text: Option<&str>,
    ) -> Result<RightsRequest, Error> {
        let actor = subject_actor();
        let opened = self.open_request(&actor, subject, kind, target, text)?;
        self.mark_verified(&actor, &opened.id, "session")
    }
}
