//! Legal holds (P18): deletion of a subject's data — all of it, or some categories — pauses
//! for a stated reason until a stated date. Erasure, retention and deletion requests respect
//! them; placing and lifting are audited.

use serde::Serialize;
use serde_json::json;
use steward_audit::Outcome;
use steward_policy::Capability;
use steward_store::{HoldRow, Op};

use crate::clock::rfc3339;
use crate::error::{Error, quoted};
use crate::vault::{Actor, SubjectId, Vault};

/// Why data is held: a fixed list.
pub const HOLD_REASONS: [&str; 4] = ["statute", "court_order", "authority_request", "dispute"];

/// A hold as shown to staff.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Hold {
    /// Id.
    pub id: String,
    /// Whose data.
    pub subject: String,
    /// Held categories; empty means everything the subject has.
    pub categories: Vec<String>,
    /// One of [`HOLD_REASONS`].
    pub reason: String,
    /// Case number or letter reference, as staff typed it; stored sealed under the subject's
    /// key, so it is gone (null) once the subject is erased.
    pub reference: Option<String>,
    /// When placed.
    pub placed_at: String,
    /// When it ends by itself.
    pub until: String,
    /// When lifted early, if it was.
    pub lifted_at: Option<String>,
    /// In force now.
    pub active: bool,
}

/// What active holds cover for one subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    /// Nothing is held.
    Nothing,
    /// Some categories are held.
    Categories(Vec<String>),
    /// Everything is held.
    Everything,
}

impl Vault {
    fn hold_view(&self, h: HoldRow, now: i64) -> Result<Hold, Error> {
        let reference =
            self.open_text(SubjectId(h.subject), "hold-reference", &h.id, &h.reference)?;
        Ok(Hold {
            active: h.active_at(now),
            id: h.id,
            subject: SubjectId(h.subject).to_string(),
            categories: h
                .categories
                .split(',')
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect(),
            reason: h.reason,
            reference,
            placed_at: rfc3339(h.placed_ms),
            until: rfc3339(h.until_ms),
            lifted_at: h.lifted_ms.map(rfc3339),
        })
    }

    /// Whether `actor` may place, list and lift holds (`holds.manage`): for a page to say so
    /// before it shows the forms.
    pub fn permit_holds(&self, actor: &Actor) -> Result<(), Error> {
        self.permit(actor, Capability::HoldsManage, None)
    }

    /// Places a hold on a subject's data, or on some categories of it, until `until_ms`.
    pub fn place_hold(
        &self,
        actor: &Actor,
        subject: SubjectId,
        categories: &[&str],
        reason: &str,
        reference: &str,
        until_ms: i64,
    ) -> Result<Hold, Error> {
        self.permit(actor, Capability::HoldsManage, Some(subject))?;
        let now = self.clock.now_ms();
        let checked = (|| {
            if !HOLD_REASONS.contains(&reason) {
                return Err(Error::Invalid(format!(
                    "a hold's reason is one of: {}",
                    HOLD_REASONS.join(", ")
                )));
            }
            if reference.trim().is_empty() || reference.len() > 200 {
                return Err(Error::Invalid(
                    "a hold's reference (case number, letter) is 1 to 200 characters".into(),
                ));
            }
            if until_ms <= now {
                return Err(Error::Invalid("a hold must end in the future".into()));
            }
            self.category_ids(categories.iter().copied())?;
            if self.subject_row(&subject.0)?.is_none() {
                return Err(Error::SubjectNotFound);
            }
            Ok(())
        })();
        if let Err(e) = checked {
            return Err(self.refuse(
                actor,
                "hold.place",
                Some(subject),
                "",
                categories.join(","),
                e,
            ));
        }
        let id = self.new_id("hold")?;
        // P34: the reference may name people; it is kept only sealed under the subject's key.
        let reference = self
            .seal_text(subject, "hold-reference", &id, reference)
            .map_err(|e| {
                self.refuse(
                    actor,
                    "hold.place",
                    Some(subject),
                    "",
                    categories.join(","),
                    e,
                )
            })?;
        let row = HoldRow {
            id,
            subject: subject.0,
            categories: categories.join(","),
            reason: reason.into(),
            reference,
            placed_ms: now,
            until_ms,
            lifted_ms: None,
            tag: Vec::new(),
        };
        let row = HoldRow {
            tag: self.hold_tag(&row),
            ..row
        };
        self.store.commit(
            vec![Op::PlaceHold(row.clone())],
            vec![self.draft(
                actor,
                "hold.place",
                Outcome::Granted,
                Some(subject),
                "",
                row.categories.clone(),
                json!({ "hold": row.id, "reason": reason, "until_ms": until_ms }),
            )],
        )?;
        self.hold_view(row, now)
    }

    /// Lifts a hold early.
    pub fn lift_hold(&self, actor: &Actor, id: &str) -> Result<Hold, Error> {
        self.permit(actor, Capability::HoldsManage, None)?;
        let now = self.clock.now_ms();
        let Some(mut row) = self
            .checked_holds(self.store.hold(id)?.into_iter().collect())?
            .pop()
        else {
            return Err(Error::NotFound(crate::Missing::Hold));
        };
        if !row.active_at(now) {
            return Err(Error::Conflict("the hold is no longer in force".into()));
        }
        let lifted = HoldRow {
            lifted_ms: Some(now),
            ..row.clone()
        };
        self.store.commit(
            vec![Op::LiftHold {
                subject: row.subject,
                id: id.into(),
                at_ms: now,
                tag: self.hold_tag(&lifted),
            }],
            vec![self.draft(
                actor,
                "hold.lift",
                Outcome::Granted,
                Some(SubjectId(row.subject)),
                "",
                row.categories.clone(),
                json!({ "hold": id }),
            )],
        )?;
        row.lifted_ms = Some(now);
        self.hold_view(row, now)
    }

    /// Every hold on a subject, in force or not.
    pub fn holds(&self, actor: &Actor, subject: SubjectId) -> Result<Vec<Hold>, Error> {
        self.permit(actor, Capability::HoldsManage, Some(subject))?;
        let now = self.clock.now_ms();
        self.store
            .holds(&subject.0)?
            .into_iter()
            .map(|h| self.hold_view(h, now))
            .collect()
    }

    /// What the holds in force cover for a subject.
    pub(crate) fn held(&self, subject: SubjectId) -> Result<Held, Error> {
        let now = self.clock.now_ms();
        let mut cats: Vec<String> = Vec::new();
        for h in self.checked_holds(self.store.holds(&subject.0)?)? {
            if !h.active_at(now) {
                continue;
            }
            if h.categories.is_empty() {
                return Ok(Held::Everything);
            }
            for c in h.categories.split(',') {
                if !cats.iter().any(|x| x == c) {
                    cats.push(c.to_string());
                }
            }
        }
        Ok(if cats.is_empty() {
            Held::Nothing
        } else {
            Held::Categories(cats)
        })
    }

    /// Refuses whole-subject erasure while anything is held.
    pub(crate) fn check_not_held(&self, subject: SubjectId) -> Result<(), Error> {
        match self.held(subject)? {
            Held::Nothing => Ok(()),
            Held::Everything => Err(Error::LegalHold {
                categories: "all of the subject's data".into(),
            }),
            Held::Categories(c) => Err(Error::LegalHold {
                categories: quoted(c.iter().map(String::as_str)),
            }),
        }
    }

    /// A fresh random id with a prefix: `hold_3f2a…`, `req_91c0…`.
    pub(crate) fn new_id(&self, prefix: &str) -> Result<String, Error> {
        let mut raw = [0u8; 12];
        ring::rand::SecureRandom::fill(&self.rng, &mut raw)
            .map_err(|_| Error::Crypto(steward_crypto::CryptoError::Random))?;
        Ok(format!("{prefix}_{}", hex::encode(raw)))
    }
}
