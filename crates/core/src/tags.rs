//! Authenticity tags of the state that decides reads (P10, P27, P33): a subject's life state,
//! the consent in force, legal holds. Each row carries an HMAC under a key derived from the
//! master key ([`steward_crypto::Keys::state_tag`]) over what it decides; the read path checks
//! it before acting on the row, so a row changed in the database — a withdrawn consent turned
//! back into a grant, an erased subject made active, a hold lifted — is refused as damage
//! (`500 integrity_failure`), not obeyed. Replaying an older row with its own valid tag is
//! not caught here; `steward check` compares every row with the audit log for that.
//!
//! What each tag covers (every part length-prefixed, `docs/audit-format.md` §7):
//! `subject`: id, state; `consent`: subject, target, granted (1 byte), separate (1 byte),
//! at_ms (i64 BE); `hold`: id, subject, categories, reason, reference, placed_ms, until_ms,
//! lifted_ms (i64 BE, or empty when not lifted).

use steward_store::{
    ConsentRow, HeldConsent, HoldRow, Op, StoreError, SubjectKey, SubjectRow, SubjectState,
};

use crate::error::Error;
use crate::vault::Vault;

/// The `meta` key saying rows were tagged by this build, with its own tag.
const STATE_TAGS: &str = "state_tags";

fn damaged(what: &'static str) -> Error {
    tracing::error!(
        what,
        "a row of state failed its authenticity check: changed outside Steward"
    );
    Error::Integrity
}

/// What a tag covers, one kind of row each: the one statement of the parts, which both
/// making and checking a tag use.
#[derive(Copy, Clone)]
enum Covered<'a> {
    Subject(&'a SubjectKey, SubjectState),
    Consent {
        subject: &'a SubjectKey,
        target: &'a str,
        granted: bool,
        separate: bool,
        at_ms: i64,
    },
    Hold(&'a HoldRow),
}

impl Covered<'_> {
    /// Calls `f` with the kind and the parts the tag is computed over.
    fn parts<R>(self, f: impl FnOnce(&str, &[&[u8]]) -> R) -> R {
        match self {
            Covered::Subject(id, state) => f("subject", &[id, state.as_str().as_bytes()]),
            Covered::Consent {
                subject,
                target,
                granted,
                separate,
                at_ms,
            } => f(
                "consent",
                &[
                    subject,
                    target.as_bytes(),
                    &[u8::from(granted)],
                    &[u8::from(separate)],
                    &at_ms.to_be_bytes(),
                ],
            ),
            Covered::Hold(h) => {
                let lifted = h.lifted_ms.map(i64::to_be_bytes);
                f(
                    "hold",
                    &[
                        h.id.as_bytes(),
                        &h.subject,
                        h.categories.as_bytes(),
                        h.reason.as_bytes(),
                        h.reference.as_bytes(),
                        &h.placed_ms.to_be_bytes(),
                        &h.until_ms.to_be_bytes(),
                        lifted.as_ref().map_or(&[][..], |b| &b[..]),
                    ],
                )
            }
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Covered::Subject(..) => "subject",
            Covered::Consent { .. } => "consent",
            Covered::Hold(_) => "hold",
        }
    }
}

impl Vault {
    fn tag(&self, row: Covered<'_>) -> Vec<u8> {
        row.parts(|kind, parts| self.keys.state_tag(kind, parts).to_vec())
    }

    fn check_tag(&self, row: Covered<'_>, tag: &[u8]) -> Result<(), Error> {
        if row.parts(|kind, parts| self.keys.state_tag_holds(kind, parts, tag)) {
            Ok(())
        } else {
            Err(damaged(row.kind()))
        }
    }

    pub(crate) fn subject_tag(&self, id: &SubjectKey, state: SubjectState) -> Vec<u8> {
        self.tag(Covered::Subject(id, state))
    }

    pub(crate) fn consent_tag(
        &self,
        subject: &SubjectKey,
        target: &str,
        granted: bool,
        separate: bool,
        at_ms: i64,
    ) -> Vec<u8> {
        self.tag(Covered::Consent {
            subject,
            target,
            granted,
            separate,
            at_ms,
        })
    }

    pub(crate) fn hold_tag(&self, h: &HoldRow) -> Vec<u8> {
        self.tag(Covered::Hold(h))
    }

    /// Checks a subject's state against its tag.
    pub(crate) fn check_state(
        &self,
        id: &SubjectKey,
        state: SubjectState,
        tag: &[u8],
    ) -> Result<(), Error> {
        self.check_tag(Covered::Subject(id, state), tag)
    }

    /// Checks the consent in force a read decides on.
    pub(crate) fn check_held(
        &self,
        subject: &SubjectKey,
        target: &str,
        c: &HeldConsent,
    ) -> Result<(), Error> {
        self.check_tag(
            Covered::Consent {
                subject,
                target,
                granted: c.granted,
                separate: c.separate,
                at_ms: c.at_ms,
            },
            &c.tag,
        )
    }

    /// Checks a consent row.
    pub(crate) fn check_consent(&self, c: &ConsentRow) -> Result<(), Error> {
        self.check_tag(
            Covered::Consent {
                subject: &c.subject,
                target: &c.target,
                granted: c.granted,
                separate: c.separate,
                at_ms: c.at_ms,
            },
            &c.tag,
        )
    }

    /// A consent row, if any, checked.
    pub(crate) fn checked_consent(
        &self,
        row: Option<ConsentRow>,
    ) -> Result<Option<ConsentRow>, Error> {
        if let Some(c) = &row {
            self.check_consent(c)?;
        }
        Ok(row)
    }

    /// Checks a hold.
    pub(crate) fn check_hold(&self, h: &HoldRow) -> Result<(), Error> {
        self.check_tag(Covered::Hold(h), &h.tag)
    }

    /// Holds, each checked.
    pub(crate) fn checked_holds(&self, rows: Vec<HoldRow>) -> Result<Vec<HoldRow>, Error> {
        for h in &rows {
            self.check_hold(h)?;
        }
        Ok(rows)
    }

    /// A subject's row, its tag checked.
    pub(crate) fn subject_row(&self, id: &SubjectKey) -> Result<Option<SubjectRow>, Error> {
        let row = self.store.subject(id)?;
        if let Some(r) = &row {
            self.check_state(&r.id, r.state, &r.tag)?;
        }
        Ok(row)
    }

    /// What the integrity checks of one purpose-checked read of a consent-based purpose cost,
    /// timed over `n` rounds of exactly those checks on `subject`'s rows: its state's tag, the
    /// consent's tag (two HMAC-SHA256; nothing is remembered between reads) and the longer
    /// associated data its record is opened with. For `steward bench`
    /// (`integrity_check_ns`); nanoseconds per read.
    pub fn integrity_check_ns(&self, subject: crate::SubjectId, n: u32) -> Result<f64, Error> {
        let row = self
            .subject_row(&subject.0)?
            .ok_or(Error::SubjectNotFound)?;
        let target = "purpose:bench";
        let held = HeldConsent {
            granted: true,
            separate: false,
            at_ms: 1,
            tag: self.consent_tag(&row.id, target, true, false, 1),
        };
        let started = std::time::Instant::now();
        let mut aad_bytes = 0usize;
        for i in 0..n.max(1) {
            self.check_state(&row.id, std::hint::black_box(row.state), &row.tag)?;
            self.check_held(&row.id, target, std::hint::black_box(&held))?;
            // The binding's part of the associated data (the rest was there before).
            let meta = crate::vault::RecordMeta {
                category: "email",
                id: i64::MAX - i64::from(i),
                feature: "account",
                source: "subject",
                collected_ms: 1,
            };
            aad_bytes += self.record_aad(&row.id, std::hint::black_box(meta)).len();
        }
        let elapsed = started.elapsed();
        std::hint::black_box(aad_bytes);
        Ok(elapsed.as_nanos() as f64 / f64::from(n.max(1)))
    }

    /// Tags the rows of a store written before tags, once (P33): only a store none of whose
    /// rows carries a tag, so that blanking a tag never gets a changed row tagged. Audited.
    pub(crate) fn tag_untagged_state(&self) -> Result<(), Error> {
        let marker = self.keys.state_tag(STATE_TAGS, &[b"v1"]);
        let expected = format!("v1:{}", hex::encode(marker));
        match self.store.meta(STATE_TAGS)? {
            Some(m) if m == expected => return Ok(()),
            Some(_) => {
                return Err(Error::Store(StoreError::Corrupt(
                    "the store's state-tag marker failed its authenticity check".into(),
                )));
            }
            None => {}
        }
        let rows = self.store.state_rows()?;
        let tagged = rows.subjects.iter().any(|s| !s.tag.is_empty())
            || rows.consents.iter().any(|c| !c.tag.is_empty())
            || rows.holds.iter().any(|h| !h.tag.is_empty());
        // Another process opening this store at the same moment may have tagged it since.
        if tagged && self.store.meta(STATE_TAGS)?.as_deref() == Some(expected.as_str()) {
            return Ok(());
        }
        if tagged {
            return Err(Error::Store(StoreError::Corrupt(
                "the store's state-tag marker is missing but its rows are tagged: restore the store, or check it with `steward check`".into(),
            )));
        }
        let mut ops = Vec::new();
        for s in &rows.subjects {
            ops.push(Op::SetSubjectState {
                subject: s.id,
                state: s.state,
                tag: self.subject_tag(&s.id, s.state),
            });
        }
        for c in &rows.consents {
            ops.push(Op::TagConsent {
                subject: c.subject,
                target: c.target.clone(),
                tag: self.consent_tag(&c.subject, &c.target, c.granted, c.separate, c.at_ms),
            });
        }
        for h in &rows.holds {
            ops.push(Op::TagHold {
                subject: h.subject,
                id: h.id.clone(),
                tag: self.hold_tag(h),
            });
        }
        let count = ops.len();
        ops.push(Op::SetMeta {
            key: STATE_TAGS.into(),
            value: expected,
        });
        let entries = if count > 0 {
            vec![self.system_draft("state.tag", serde_json::json!({ "rows": count }))]
        } else {
            Vec::new()
        };
        self.store.commit(ops, entries)?;
        if count > 0 {
            tracing::info!(rows = count, "tagged the state rows written before tags");
        }
        Ok(())
    }
}
