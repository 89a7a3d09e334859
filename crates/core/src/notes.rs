//! Free text a person types about a subject (P21, P34): the justification of an act that
//! reveals PI, a note refusing or completing a request, a legal hold's reference. Any of it may
//! hold PI (a name, a case, a complaint), so it is stored only sealed under the subject's data
//! key — erasure shreds it with the rest of their data — and the audit log names it by a
//! keyed digest. Does not own the texts subjects send (an inquiry's text, sealed by
//! [`crate::requests`]) or what staff choose from fixed lists (reasons, purposes).

use base64::Engine as _;
use serde_json::{Map, Value as Json, json};
use steward_policy::Refusal;

use crate::error::Error;
use crate::vault::{Actor, MAX_JUSTIFICATION, SubjectId, Vault, aad};

/// How a sealed text is stored, in a text column or a JSON string: this prefix, then the
/// base64 of nonce, ciphertext and tag. A stored text without it was written in clear by an
/// earlier build and is read as it is.
const SEALED: &str = "sealed:";

impl Vault {
    /// The keyed digest the audit log keeps of a typed text, hex. Keyed (a state-tag key
    /// derived from the master key), because a plain hash of a short text is a guess away
    /// from it.
    pub(crate) fn text_digest(&self, kind: &str, text: &str) -> String {
        hex::encode(self.keys.state_tag(kind, &[text.as_bytes()]))
    }

    /// Seals `text` under the subject's key, bound to the subject, to `what` it is and to the
    /// `id` of what it belongs to (a request, a hold, an act).
    pub(crate) fn seal_text(
        &self,
        subject: SubjectId,
        what: &str,
        id: &str,
        text: &str,
    ) -> Result<String, Error> {
        let key = self.data_key(subject)?;
        let sealed = key.seal(
            &self.nonces,
            &aad(&subject.0, what, id_tag(id)),
            text.as_bytes(),
        )?;
        Ok(format!(
            "{SEALED}{}",
            base64::engine::general_purpose::STANDARD.encode(sealed)
        ))
    }

    /// Opens what [`Vault::seal_text`] sealed: `None` once the subject is erased (the key
    /// is destroyed, and the text with it). A text stored in clear by an earlier build comes
    /// back as it is; a sealed one that fails to open is damage.
    pub(crate) fn open_text(
        &self,
        subject: SubjectId,
        what: &str,
        id: &str,
        stored: &str,
    ) -> Result<Option<String>, Error> {
        let Some(encoded) = stored.strip_prefix(SEALED) else {
            return Ok(Some(stored.to_string()));
        };
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| Error::Integrity)?;
        let key = match self.data_key(subject) {
            Ok(k) => k,
            Err(Error::KeyDestroyed) => return Ok(None),
            Err(e) => return Err(e),
        };
        let plain = key.open(&aad(&subject.0, what, id_tag(id)), &sealed)?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| Error::Integrity)
    }

    /// Checks the justification an act that reveals PI states (P21): under a role that must
    /// state why, one is required (refused `justification_required` otherwise, and audited as
    /// refused under `action`); every justification is at most [`MAX_JUSTIFICATION`] bytes.
    pub(crate) fn check_justification(
        &self,
        actor: &Actor,
        action: &str,
        subject: SubjectId,
        justification: Option<&str>,
    ) -> Result<(), Error> {
        let stated = justification.is_some_and(|j| !j.trim().is_empty());
        let required = self
            .policy
            .role(actor.role)
            .is_some_and(|r| r.justification);
        let checked = if required && !stated {
            Err(self.refusal(Refusal::JustificationRequired { role: actor.role }))
        } else if justification.is_some_and(|j| j.len() > MAX_JUSTIFICATION) {
            Err(Error::Invalid(format!(
                "a justification is at most {MAX_JUSTIFICATION} bytes"
            )))
        } else {
            Ok(())
        };
        checked.map_err(|e| self.refuse(actor, action, Some(subject), "", String::new(), e))
    }

    /// What an act's audit entry keeps of its justification, added to `detail`:
    /// `justification_digest` (keyed, hex) and `justification_sealed` (the text sealed under
    /// the subject's key, bound to the act's `action`), never the text itself.
    pub(crate) fn note_justification(
        &self,
        detail: &mut Map<String, Json>,
        subject: SubjectId,
        action: &str,
        justification: Option<&str>,
    ) -> Result<(), Error> {
        let Some(j) = justification.filter(|j| !j.trim().is_empty()) else {
            return Ok(());
        };
        detail.insert(
            "justification_digest".into(),
            json!(self.text_digest("justification", j)),
        );
        detail.insert(
            "justification_sealed".into(),
            json!(self.seal_text(subject, "justification", action, j)?),
        );
        Ok(())
    }

    /// The justification audit entry `seq` keeps sealed, opened, for the privacy officer or
    /// an auditor asking why PI was revealed: `subject` is the one the entry names (by its
    /// pseudonym). `None` when the entry keeps none, or once the subject is erased. Audited as
    /// `audit.read`.
    pub fn justification_of(
        &self,
        actor: &Actor,
        seq: u64,
        subject: SubjectId,
    ) -> Result<Option<String>, Error> {
        self.audit_access(actor, "justification")?;
        if i64::try_from(seq).is_err() {
            return Err(Error::NotFound(crate::Missing::AuditEntry));
        }
        let entry = self
            .audit_entry(seq)?
            .filter(|e| e.subject == self.pseudonym(subject))
            .ok_or(Error::NotFound(crate::Missing::AuditEntry))?;
        let detail: Json = serde_json::from_str(&entry.detail).unwrap_or(Json::Null);
        match detail.get("justification_sealed").and_then(Json::as_str) {
            Some(sealed) => self.open_text(subject, "justification", &entry.action, sealed),
            None => Ok(None),
        }
    }
}

/// Binds a sealed text to what it belongs to: the first 8 bytes of the SHA-256 of its id
/// stand in for a record id in the associated data.
pub(crate) fn id_tag(id: &str) -> i64 {
    let d = steward_audit::sha256(id.as_bytes());
    let mut b = [0u8; 8];
    for (o, x) in b.iter_mut().zip(d) {
        *o = x;
    }
    i64::from_be_bytes(b)
}
