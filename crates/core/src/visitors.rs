//! Consent for visitors before they sign in (P7, P8): a browser is known by a random device id
//! the banner keeps in a first-party cookie on the provider's site. Steward never stores that
//! id: the visitor is a subject whose key is a keyed digest of it, made on the visitor's first
//! choice, so each choice is an ordinary consent event — audited, tagged, with a signed
//! receipt naming the visitor by pseudonym — per purpose the policy's cookies serve. Global
//! Privacy Control is a refusal of every non-essential cookie purpose the visitor has not
//! decided, recorded once; a grant under it stands only on the visitor's explicit act.

use serde::{Deserialize, Serialize};
use serde_json::json;
use steward_policy::{Capability, PurposeId, RoleId};
use steward_store::{Op, StoreError, SubjectRow, SubjectState};

use crate::clock::rfc3339;
use crate::error::Error;
use crate::rights::{ExportConsent, ExportRecord};
use crate::vault::{Actor, ConsentChange, ConsentTarget, SignedDocument, SubjectId, Vault};

/// New visitors one caller's address may make in an hour through the public API, by default:
/// a page view makes at most one, so this is a busy office's worth behind one address, and
/// it keeps a flood of made-up device ids from growing the store without end.
pub const VISITOR_LIMIT_PER_HOUR: u32 = 1_000;

/// The channel visitors' choices are recorded under.
pub const VISITOR_CHANNEL: &str = "banner";

/// A request's visitor and the consents it asks for: target, granted.
type Asked = (SubjectId, Vec<(ConsentTarget, bool)>);

/// One request's choices, as the banner sends them.
#[derive(Clone, Copy, Debug)]
pub struct VisitorChoices<'a> {
    /// The device id.
    pub device: &'a str,
    /// The choices.
    pub choices: &'a [VisitorChoice],
    /// `button` or `toggle`.
    pub action: &'a str,
    /// The request carried Global Privacy Control.
    pub gpc: bool,
    /// Sign and return a receipt per choice now (the banner does not: it downloads them when
    /// the visitor asks, the same bytes).
    pub receipts: bool,
    /// The public caller's address, whose new visitors count against its hourly limit;
    /// `None` for a trusted caller.
    pub client: Option<&'a str>,
}

/// One choice a visitor made.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitorChoice {
    /// A purpose the policy's cookies serve, resting on consent.
    pub purpose: String,
    /// Given (true) or refused (false).
    pub granted: bool,
}

/// A cookie as the banner shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VisitorCookie {
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// How long it lives, days.
    pub lifetime_days: u32,
}

/// A cookie purpose and where the visitor stands on it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VisitorPurpose {
    /// The purpose's name.
    pub purpose: String,
    /// What it is for.
    pub description: String,
    /// It does not rest on consent: always on, not a choice.
    pub essential: bool,
    /// The cookies that serve it.
    pub cookies: Vec<VisitorCookie>,
    /// The visitor's choice in force: none when undecided (and always none when essential).
    pub granted: Option<bool>,
    /// When it was made.
    pub at: Option<String>,
}

/// Where a visitor stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VisitorState {
    /// The policy version in force.
    pub policy_version: String,
    /// Every non-essential purpose has a choice in force.
    pub decided: bool,
    /// Ask again: a material version took effect after a choice in force was made.
    pub reprompt: bool,
    /// The request carried Global Privacy Control and it was honoured.
    pub gpc: bool,
    /// This call recorded the signal's refusals (the first with it for undecided purposes):
    /// the banner tells the visitor so, once.
    pub gpc_applied: bool,
    /// The visitor's subject id (a keyed digest of the device id, never the id itself): the
    /// provider collects what its cookies learn under it. Its subject exists once the
    /// visitor has chosen, or Global Privacy Control has chosen for them.
    pub visitor: String,
    /// The purposes the policy's cookies serve.
    pub purposes: Vec<VisitorPurpose>,
}

/// A visitor's device linked to a subject (P19).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DeviceLink {
    /// The visitor's subject id (a keyed digest of the device id, never the id itself).
    pub visitor: String,
    /// When the device was linked.
    pub linked_at: String,
}

/// A linked device in a subject's export (P8, P23): the cookie choices made on it and what
/// was collected under it, before and after the link.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct ExportDevice {
    /// The visitor's subject id.
    pub visitor: String,
    /// When it was linked to the subject.
    pub linked_at: String,
    /// The cookie choices in force on it.
    pub consents: Vec<ExportConsent>,
    /// Every cookie choice made on it, oldest first.
    pub consent_history: Vec<ExportConsent>,
    /// What was collected under it.
    pub records: Vec<ExportRecord>,
}

impl Vault {
    /// The visitor a device id stands for: a subject key that is a keyed digest of it. A
    /// device id is 22 to 64 characters of `A-Z a-z 0-9 _ -` (the banner makes 16 random bytes,
    /// base64url).
    pub(crate) fn visitor(&self, device: &str) -> Result<SubjectId, Error> {
        let ok = (22..=64).contains(&device.len())
            && device
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(Error::Invalid(
                "`device` is 22 to 64 characters of letters, digits, `_` or `-`".into(),
            ));
        }
        let digest = self.keys.state_tag("visitor-device", &[device.as_bytes()]);
        // RFC 4122 version 4 layout, as every subject id.
        Ok(SubjectId(
            uuid::Builder::from_random_bytes(digest)
                .into_uuid()
                .into_bytes(),
        ))
    }

    /// Makes the visitor's subject if it is not there yet (audited `subject.register`, with
    /// `detail.visitor`); a second process making it at once is no failure. A new visitor
    /// asked for from `client` (a public caller's address) counts against the client's hourly
    /// limit, and over it is `too_many_attempts`; `None` is a caller with a key or a session.
    fn ensure_visitor(&self, visitor: SubjectId, client: Option<&str>) -> Result<(), Error> {
        match self.ensure_visitors(&[(visitor, client)])?.first() {
            Some(false) => Err(Error::TooManyAttempts),
            _ => Ok(()),
        }
    }

    /// [`Vault::ensure_visitor`] for several: their subjects read in one call, the missing ones
    /// made in one unit (each key kept first: a crash between leaves an orphan key only).
    /// Whether each may go on: false for a new one its client may not make now.
    fn ensure_visitors(&self, visitors: &[(SubjectId, Option<&str>)]) -> Result<Vec<bool>, Error> {
        let keys: Vec<_> = visitors.iter().map(|(v, _)| v.0).collect();
        let found = self.store.subjects(&keys)?;
        let mut allowed = vec![true; visitors.len()];
        let mut made: Vec<SubjectId> = Vec::new();
        for (i, ((visitor, client), row)) in visitors.iter().zip(found).enumerate() {
            if row.is_some() || made.contains(visitor) {
                continue;
            }
            if let Some(client) = client
                && self.visitor_limit > 0
                && !self.count_attempt(&format!("visitor-new:{client}"), self.visitor_limit)?
            {
                if let Some(a) = allowed.get_mut(i) {
                    *a = false;
                }
                continue;
            }
            let (_, wrapped) = self.keys.new_data_key(&self.rng, &visitor.0)?;
            if self.keyring.get(&visitor.0)?.is_none() {
                self.keyring.put(&visitor.0, &wrapped)?;
            }
            made.push(*visitor);
        }
        if made.is_empty() {
            return Ok(allowed);
        }
        let now = self.clock.now_ms();
        let mut ops = Vec::with_capacity(made.len());
        let mut drafts = Vec::with_capacity(made.len());
        for visitor in &made {
            let mut draft =
                self.system_draft("subject.register", serde_json::json!({ "visitor": true }));
            draft.subject = self.pseudonym(*visitor);
            drafts.push(draft);
            ops.push(Op::InsertSubject(SubjectRow {
                id: visitor.0,
                state: SubjectState::Active,
                created_ms: now,
                closed_ms: None,
                tag: self.subject_tag(&visitor.0, SubjectState::Active),
            }));
        }
        match self.store.commit(ops, drafts) {
            Ok(_) => Ok(allowed),
            // Another process made one of them at once: make the rest one by one (counted
            // already).
            Err(StoreError::Conflict(_)) if made.len() > 1 => {
                for v in made {
                    self.ensure_visitor(v, None)?;
                }
                Ok(allowed)
            }
            Err(StoreError::Conflict(_)) => Ok(allowed),
            Err(e) => Err(e.into()),
        }
    }

    /// The purposes the policy's cookies serve, in the policy's order.
    fn cookie_purposes(&self) -> Vec<PurposeId> {
        let mut out: Vec<PurposeId> = Vec::new();
        for c in &self.policy.cookies {
            if !out.contains(&c.purpose) {
                out.push(c.purpose);
            }
        }
        out
    }

    /// Where a visitor stands (public, for the banner), its texts in `lang` (the policy's
    /// language when none is asked for). With `gpc` (the request carried
    /// `Sec-GPC: 1`), every non-essential cookie purpose the visitor has not decided is refused
    /// first — recorded once, as a withdrawal marked `gpc`; a choice the visitor made stands.
    pub fn visitor_state(
        &self,
        device: &str,
        gpc: bool,
        client: Option<&str>,
        lang: Option<&str>,
    ) -> Result<VisitorState, Error> {
        let visitor = self.visitor(device)?;
        let lang = match lang {
            None => self.policy.language.as_str(),
            Some(l) if steward_policy::LANGUAGES.contains(&l) => l,
            Some(_) => {
                return Err(Error::Invalid(format!(
                    "`lang` is one of: {}",
                    steward_policy::LANGUAGES.join(", ")
                )));
            }
        };
        // An erased visitor's device id is spent: the banner starts again with a new one.
        if let Some(row) = self.subject_row(&visitor.0)? {
            self.check_state(&row.id, row.state, &row.tag)?;
            if !matches!(row.state, SubjectState::Active | SubjectState::Closed) {
                return Err(Error::SubjectErased);
            }
        }
        let mut gpc_applied = false;
        if gpc {
            let undecided: Vec<PurposeId> = {
                let held = self.store.consents_in_force(&visitor.0)?;
                self.cookie_purposes()
                    .into_iter()
                    .filter(|p| self.policy.purpose(*p).needs_consent())
                    .filter(|p| {
                        let target = format!("purpose:{}", self.policy.purpose(*p).name);
                        !held.iter().any(|c| c.target == target)
                    })
                    .collect()
            };
            if !undecided.is_empty() {
                self.ensure_visitor(visitor, client)?;
                let actor = crate::selfservice::subject_actor();
                let changes: Vec<ConsentChange<'_>> = undecided
                    .iter()
                    .map(|p| ConsentChange {
                        actor: &actor,
                        subject: visitor,
                        target: ConsentTarget::Purpose(*p),
                        granted: false,
                        separate: false,
                        channel: VISITOR_CHANNEL,
                        gpc: true,
                        action: None,
                    })
                    .collect();
                for r in self.consent_each(&changes) {
                    r?;
                }
                gpc_applied = true;
            }
        }
        let held = self.store.consents_in_force(&visitor.0)?;
        for c in &held {
            self.check_consent(c)?;
        }
        let now = self.clock.now_ms();
        let last_material = self
            .policy
            .all()
            .iter()
            .filter(|v| v.material && v.row.effective_ms <= now)
            .map(|v| v.row.effective_ms)
            .max();
        let mut decided = true;
        let mut reprompt = false;
        let purposes = self
            .cookie_purposes()
            .into_iter()
            .map(|p| {
                let purpose = self.policy.purpose(p);
                let essential = !purpose.needs_consent();
                let target = format!("purpose:{}", purpose.name);
                let choice = held.iter().find(|c| c.target == target);
                if !essential {
                    match choice {
                        None => decided = false,
                        Some(c) if last_material.is_some_and(|m| c.at_ms < m) => reprompt = true,
                        Some(_) => {}
                    }
                }
                VisitorPurpose {
                    purpose: purpose.name.clone(),
                    description: purpose.described(lang).to_string(),
                    essential,
                    cookies: self
                        .policy
                        .cookies
                        .iter()
                        .filter(|c| c.purpose == p)
                        .map(|c| VisitorCookie {
                            name: c.name.clone(),
                            description: c.described(lang).to_string(),
                            lifetime_days: c.lifetime_days,
                        })
                        .collect(),
                    granted: if essential {
                        None
                    } else {
                        choice.map(|c| c.granted)
                    },
                    at: if essential {
                        None
                    } else {
                        choice.map(|c| rfc3339(c.at_ms))
                    },
                }
            })
            .collect();
        Ok(VisitorState {
            policy_version: self.policy.version.clone(),
            decided,
            reprompt,
            gpc,
            gpc_applied,
            visitor: visitor.to_string(),
            purposes,
        })
    }

    /// Records a visitor's choices (public, for the banner): each a consent event with its
    /// signed receipt, made by the visitor's explicit `action` (`button` or `toggle`). Only
    /// non-essential purposes the policy's cookies serve can be chosen. Under GPC a grant
    /// stands on that act, and the log says so.
    pub fn visitor_choose(
        &self,
        device: &str,
        choices: &[VisitorChoice],
        action: &str,
        gpc: bool,
    ) -> Result<Vec<SignedDocument>, Error> {
        self.visitor_choose_each(&[VisitorChoices {
            device,
            choices,
            action,
            gpc,
            receipts: true,
            client: None,
        }])
        .pop()
        .unwrap_or(Err(Error::Internal("no choice was recorded")))
    }

    /// Records several visitors' choices as [`Vault::visitor_choose`] would each (with their
    /// receipts when a request asks for them), together: the
    /// visitors' subjects read in one call, the new ones made in one unit, every consent
    /// committed in one transaction where the store can (each all or nothing on its own). One
    /// answer per request, in order.
    pub fn visitor_choose_each(
        &self,
        requests: &[VisitorChoices<'_>],
    ) -> Vec<Result<Vec<SignedDocument>, Error>> {
        let mut answers: Vec<Option<Result<Vec<SignedDocument>, Error>>> =
            requests.iter().map(|_| None).collect();
        let checked: Vec<Result<Asked, Error>> =
            requests.iter().map(|r| self.check_choices(r)).collect();
        let wanted: Vec<(SubjectId, Option<&str>)> = requests
            .iter()
            .zip(&checked)
            .filter_map(|(r, c)| c.as_ref().ok().map(|(v, _)| (*v, r.client)))
            .collect();
        let allowed = match self.ensure_visitors(&wanted) {
            Ok(allowed) => allowed,
            Err(e) => {
                // Every request of the batch needed it: each gets the failure.
                let again = |e: &Error| match e {
                    Error::Store(s) => Error::Store(s.clone()),
                    _ => Error::Internal("a visitor's subject could not be made"),
                };
                return requests.iter().map(|_| Err(again(&e))).collect();
            }
        };
        let mut allowed = allowed.into_iter();
        let checked: Vec<Result<Asked, Error>> = checked
            .into_iter()
            .map(|c| match c {
                Ok(_) if allowed.next() == Some(false) => Err(Error::TooManyAttempts),
                other => other,
            })
            .collect();
        let actor = crate::selfservice::subject_actor();
        let mut changes = Vec::new();
        let mut owners = Vec::new();
        for (i, (request, c)) in requests.iter().zip(checked).enumerate() {
            match c {
                Ok((visitor, targets)) => {
                    for (target, granted) in targets {
                        owners.push(i);
                        changes.push(ConsentChange {
                            actor: &actor,
                            subject: visitor,
                            target,
                            granted,
                            separate: false,
                            channel: VISITOR_CHANNEL,
                            gpc: request.gpc,
                            action: Some(request.action),
                        });
                    }
                }
                Err(e) => {
                    if let Some(a) = answers.get_mut(i) {
                        *a = Some(Err(e));
                    }
                }
            }
        }
        let signed = |c: usize| {
            owners
                .get(c)
                .and_then(|i| requests.get(*i))
                .is_some_and(|r| r.receipts)
        };
        let recorded = self.record_consents(&changes, &signed);
        for (i, answer) in owners.into_iter().zip(recorded) {
            let Some(slot) = answers.get_mut(i) else {
                continue;
            };
            match (slot.as_mut(), answer) {
                (Some(Err(_)), _) => {}
                (Some(Ok(receipts)), Ok(r)) => receipts.extend(r),
                (_, Err(e)) => *slot = Some(Err(e)),
                (None, Ok(r)) => *slot = Some(Ok(r.into_iter().collect())),
            }
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or(Err(Error::Internal("no choice was recorded"))))
            .collect()
    }

    /// One request's visitor and the consents it asks for, checked against the policy.
    fn check_choices(&self, r: &VisitorChoices<'_>) -> Result<Asked, Error> {
        let visitor = self.visitor(r.device)?;
        if !["button", "toggle"].contains(&r.action) {
            return Err(Error::Invalid(
                "a visitor's `action` is `button` or `toggle`".into(),
            ));
        }
        if r.choices.is_empty() || r.choices.len() > 64 {
            return Err(Error::Invalid("`choices` holds 1 to 64 choices".into()));
        }
        let cookie_purposes = self.cookie_purposes();
        let mut targets = Vec::with_capacity(r.choices.len());
        for c in r.choices {
            let p = self.policy.purpose_id(&c.purpose).ok_or(Error::Unknown {
                kind: crate::NameKind::Purpose,
            })?;
            if !cookie_purposes.contains(&p) {
                return Err(Error::Invalid(
                    "a visitor chooses only among the purposes the policy's cookies serve".into(),
                ));
            }
            if !self.policy.purpose(p).needs_consent() {
                return Err(Error::ConsentNotApplicable {
                    target: format!("purpose:{}", c.purpose),
                    reason: "its cookies are essential".into(),
                });
            }
            targets.push((ConsentTarget::Purpose(p), c.granted));
        }
        Ok((visitor, targets))
    }

    /// The signed receipts of every choice a visitor made, oldest first, issued again from
    /// their consent events and audit entries: byte for byte the receipts first issued (P33).
    /// A device that never chose has none.
    pub fn visitor_receipts(&self, device: &str) -> Result<Vec<SignedDocument>, Error> {
        let visitor = self.visitor(device)?;
        let Some(row) = self.subject_row(&visitor.0)? else {
            return Ok(Vec::new());
        };
        self.check_state(&row.id, row.state, &row.tag)?;
        if !matches!(row.state, SubjectState::Active | SubjectState::Closed) {
            return Err(Error::SubjectErased);
        }
        let mut out = Vec::new();
        for c in self.store.consent_history(&visitor.0)? {
            self.check_consent(&c)?;
            let entry = self
                .audit_entry(c.audit_seq)?
                .ok_or(Error::Store(StoreError::Corrupt(
                    "consent audit entry".into(),
                )))?;
            out.push(self.consent_receipt(visitor, &c, &entry));
        }
        Ok(out)
    }

    /// Links a visitor's device to a subject when they sign in (P19): the device becomes an
    /// identity of the subject, and its cookie choices and what was collected under it join the
    /// subject's export and go with the subject's erasure (P8). A device belongs to one subject:
    /// linked to another, open or closed, it is `identity_in_use`. Linking again is no change.
    /// Audited `subject.link` on the subject, naming the visitor by pseudonym.
    pub fn link_device(
        &self,
        actor: &Actor,
        subject: SubjectId,
        device: &str,
    ) -> Result<DeviceLink, Error> {
        if actor.role != RoleId::SUBJECT
            && let Err(e) = self.may(actor, Capability::SubjectsRegister)
        {
            return Err(self.refuse(actor, "subject.link", Some(subject), "", String::new(), e));
        }
        let visitor = self.visitor(device)?;
        let linkable = self.active_subject(subject).and_then(|_| {
            for link in self.store.links(&visitor.0)? {
                if link.kind != "owner" {
                    continue;
                }
                if link.other == subject.0 {
                    return Ok(Some(link.linked_ms));
                }
                return match self.subject_row(&link.other)?.map(|r| r.state) {
                    Some(SubjectState::Active | SubjectState::Closed) => {
                        Err(Error::IdentityInUse {
                            category: "device".into(),
                        })
                    }
                    _ => Err(Error::SubjectErased),
                };
            }
            match self.subject_row(&visitor.0)? {
                Some(row) => {
                    self.check_state(&row.id, row.state, &row.tag)?;
                    if !matches!(row.state, SubjectState::Active | SubjectState::Closed) {
                        return Err(Error::SubjectErased);
                    }
                }
                None => self.ensure_visitor(visitor, None)?,
            }
            Ok(None)
        });
        let at_ms = match linkable {
            Ok(Some(at_ms)) => at_ms,
            Ok(None) => {
                let at_ms = self.clock.now_ms();
                let draft = self.act(
                    actor,
                    "subject.link",
                    Some(subject),
                    json!({ "visitor": self.pseudonym(visitor) }),
                );
                self.store.commit(
                    vec![Op::LinkDevice {
                        subject: subject.0,
                        visitor: visitor.0,
                        at_ms,
                    }],
                    vec![draft],
                )?;
                at_ms
            }
            Err(e) => {
                return Err(self.refuse(
                    actor,
                    "subject.link",
                    Some(subject),
                    "",
                    String::new(),
                    e,
                ));
            }
        };
        Ok(DeviceLink {
            visitor: visitor.to_string(),
            linked_at: rfc3339(at_ms),
        })
    }

    /// [`Vault::link_device`] by the signed-in subject themselves (the privacy centre).
    pub fn link_own_device(&self, subject: SubjectId, device: &str) -> Result<DeviceLink, Error> {
        self.link_device(&crate::selfservice::subject_actor(), subject, device)
    }

    /// The signed-in subject changes a cookie choice on a browser linked to them (P8): recorded
    /// on that browser's visitor, as its banner would record it, as the subject's explicit act
    /// (`toggle`, channel `privacy-centre`), with its receipt. A browser not linked to the
    /// subject is not found.
    pub fn linked_device_choose(
        &self,
        subject: SubjectId,
        visitor: &str,
        purpose: &str,
        granted: bool,
    ) -> Result<SignedDocument, Error> {
        let visitor: SubjectId = visitor
            .parse()
            .map_err(|_| Error::Invalid("a browser is named by its visitor id".into()))?;
        let linked = self
            .store
            .links(&subject.0)?
            .iter()
            .any(|l| l.kind == "device" && l.other == visitor.0);
        if !linked {
            return Err(self.not_found(&visitor.0));
        }
        let p = self.policy.purpose_id(purpose).ok_or(Error::Unknown {
            kind: crate::NameKind::Purpose,
        })?;
        if !self.cookie_purposes().contains(&p) || !self.policy.purpose(p).needs_consent() {
            return Err(Error::Invalid(
                "a browser's choice is one of the non-essential purposes its cookies serve".into(),
            ));
        }
        let actor = crate::selfservice::subject_actor();
        self.consent_each(&[ConsentChange {
            actor: &actor,
            subject: visitor,
            target: ConsentTarget::Purpose(p),
            granted,
            separate: false,
            channel: "privacy-centre",
            gpc: false,
            action: Some("toggle"),
        }])
        .pop()
        .unwrap_or(Err(Error::Internal("no choice was recorded")))
    }

    /// The non-essential purposes the policy's cookies serve, by name: what a browser's cookie
    /// choices are about.
    pub fn cookie_choices(&self) -> Vec<String> {
        self.cookie_purposes()
            .into_iter()
            .filter(|p| self.policy.purpose(*p).needs_consent())
            .map(|p| self.policy.purpose(p).name.clone())
            .collect()
    }

    /// The devices linked to a subject, for its export: each one's cookie choices and records,
    /// decrypted under the visitor's own key. An erased visitor has nothing left to show.
    pub(crate) fn linked_devices(&self, subject: SubjectId) -> Result<Vec<ExportDevice>, Error> {
        let mut out = Vec::new();
        for link in self.store.links(&subject.0)? {
            if link.kind != "device" {
                continue;
            }
            let visitor = SubjectId(link.other);
            let file = self.store.subject_file(&visitor.0)?;
            let Some(row) = &file.subject else { continue };
            self.check_state(&row.id, row.state, &row.tag)?;
            if !matches!(row.state, SubjectState::Active | SubjectState::Closed) {
                continue;
            }
            for c in file.consents.iter().chain(&file.history) {
                self.check_consent(c)?;
            }
            let records = self
                .open_rows(visitor, file.records)?
                .into_iter()
                .map(|v| self.export_record(v))
                .collect();
            out.push(ExportDevice {
                visitor: visitor.to_string(),
                linked_at: rfc3339(link.linked_ms),
                consents: file.consents.into_iter().map(ExportConsent::from).collect(),
                consent_history: file.history.into_iter().map(ExportConsent::from).collect(),
                records,
            });
        }
        Ok(out)
    }

    /// Erases the devices linked to a subject that is being erased (P8, P28): each its own
    /// erasure, audited and certified, before the subject's. A device under a legal hold of its
    /// own is kept, and logged. How many were erased.
    pub(crate) fn erase_linked(&self, subject: SubjectId) -> Result<usize, Error> {
        let mut erased = 0;
        for link in self.store.links(&subject.0)? {
            if link.kind != "device" {
                continue;
            }
            let visitor = SubjectId(link.other);
            let live = self
                .subject_row(&visitor.0)?
                .is_some_and(|r| matches!(r.state, SubjectState::Active | SubjectState::Closed));
            if !live {
                continue;
            }
            if self.held(visitor)? != crate::holds::Held::Nothing {
                tracing::warn!(visitor = %self.pseudonym(visitor), "a linked device under a legal hold of its own is kept");
                continue;
            }
            self.shred(
                None,
                visitor,
                crate::rights::Why::Steward("the subject it is linked to is erased"),
            )?;
            erased += 1;
        }
        Ok(erased)
    }
}
