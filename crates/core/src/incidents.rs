//! Incidents (P22): the breach procedure as code. An incident records when it was detected and
//! became known, what was exposed (categories, features, a window, optionally the subjects or
//! lookup values concerned), its grade and cause; Steward computes the affected subjects from
//! the record index — which subjects held those categories in the window — without decrypting
//! anything, and keeps each computation. Containment and remediation are logged on its
//! timeline. The policy's `[incidents.reports]` give it its clocks (an initial report within
//! hours of detection or awareness, a final one within days of its handling), which join the
//! deadline board with reminders and escalation; the report (PIPL art. 57's items, counts by
//! category and region) is produced as JSON or as text in Chinese or English and filed in
//! parts. One action notifies every affected subject through the outbox — a mail in their
//! language, a webhook push for the provider's apps, a public announcement — resumably.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use steward_policy::{Capability, Grade};
use steward_store::{Op, SubjectKey};

use crate::cases::{Delivered, NoticeRun, damaged, pack};
use crate::clock::rfc3339;
use crate::error::{Error, Missing};
use crate::vault::{Actor, SubjectId, Vault};

/// Hours in milliseconds.
const HOUR_MS: i64 = 3_600_000;
/// The longest free text an incident keeps in one field.
pub const MAX_TEXT: usize = 4_000;
/// Kinds of step on an incident's timeline that staff add.
pub const STEP_KINDS: [&str; 5] = ["containment", "remediation", "note", "contained", "handled"];
/// Parts a report is filed in.
pub const REPORT_PARTS: [&str; 3] = ["initial", "update", "final"];

/// What was exposed, as staff state it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposureInput {
    /// Categories exposed (at least one).
    pub categories: Vec<String>,
    /// Features whose records were exposed; all when empty.
    #[serde(default)]
    pub features: Vec<String>,
    /// Start of the window (RFC 3339).
    pub from: String,
    /// End of the window (RFC 3339).
    pub to: String,
    /// `stored` (the default: every record held at some time in the window), `collected`
    /// (records collected in the window) or `read` (records read or disclosed in the window,
    /// from the audit log).
    #[serde(default)]
    pub basis: Option<String>,
    /// When known, the subjects concerned (ids): the set is narrowed to them.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// When known, lookup values found in the exposed data (an email list): the set is
    /// narrowed to their holders. Used to find them, never kept.
    #[serde(default)]
    pub lookups: Vec<LookupValue>,
    /// Where the exposed copy was held (a region); the recipient's region, or else the
    /// policy's first storage region, when not given.
    #[serde(default)]
    pub location: Option<String>,
    /// A breach at a recipient (a processor): the exposed copies are those disclosed to it —
    /// by the window's end on the `stored` basis, within the window otherwise.
    #[serde(default)]
    pub recipient: Option<String>,
}

/// A lookup value found in exposed data.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupValue {
    /// A lookup category (`email`, `phone`).
    pub category: String,
    /// The value.
    pub value: String,
}

/// A new incident.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// A short title (no PI).
    pub title: String,
    /// When it was detected (RFC 3339).
    pub detected_at: String,
    /// When the provider became aware of it (RFC 3339); when it was detected if not given.
    #[serde(default)]
    pub known_at: Option<String>,
    /// `general`, `relatively_major`, `major` or `especially_major`.
    pub grade: String,
    /// Its cause, as known.
    #[serde(default)]
    pub cause: String,
    /// The harm it may do.
    #[serde(default)]
    pub harm: String,
    /// What people can do to reduce the harm, by language (`zh-CN`, `en`).
    #[serde(default)]
    pub advice: BTreeMap<String, String>,
    /// What was exposed.
    pub exposure: ExposureInput,
}

/// Changed facts: each field given replaces the one held; an exposure given (or `recompute`)
/// computes the affected set again.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentFacts {
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Grade.
    #[serde(default)]
    pub grade: Option<String>,
    /// Cause.
    #[serde(default)]
    pub cause: Option<String>,
    /// Possible harm.
    #[serde(default)]
    pub harm: Option<String>,
    /// Advice, by language.
    #[serde(default)]
    pub advice: Option<BTreeMap<String, String>>,
    /// What was exposed.
    #[serde(default)]
    pub exposure: Option<ExposureInput>,
    /// Compute the affected set again on the exposure held (the data changed since).
    #[serde(default)]
    pub recompute: bool,
}

/// The exposure as kept: subjects by id, lookup values never.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Exposure {
    categories: Vec<String>,
    features: Vec<String>,
    from_ms: i64,
    to_ms: i64,
    basis: String,
    /// Subject ids the set is narrowed to (from `subjects` and resolved lookups).
    subjects: Vec<String>,
    /// Whether the set is narrowed (a list was given, even if none of it resolved).
    narrowed: bool,
    location: String,
    /// The recipient whose copies were exposed, if the breach was at one.
    #[serde(default)]
    recipient: Option<String>,
}

/// One computation of the affected set, as kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Affected {
    version: i64,
    at_ms: i64,
    subjects: u64,
    chunks: i64,
    by_category: BTreeMap<String, u64>,
    by_region: BTreeMap<String, u64>,
    listed_not_holding: u64,
}

/// One step on the timeline, as kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Step {
    at_ms: i64,
    by: String,
    kind: String,
    text: String,
}

/// One report filed, as kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Filed {
    regime: String,
    part: String,
    at_ms: i64,
    by: String,
    digest: String,
    report: String,
}

/// An incident as kept (the case document).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Doc {
    id: String,
    title: String,
    state: String,
    grade: String,
    detected_ms: i64,
    known_ms: i64,
    handled_ms: Option<i64>,
    cause: String,
    harm: String,
    advice: BTreeMap<String, String>,
    exposure: Exposure,
    affected: Affected,
    timeline: Vec<Step>,
    reports: Vec<Filed>,
    notice: Option<NoticeRun>,
}

/// An incident as staff see it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct Incident {
    /// Id (`inc_…`).
    pub id: String,
    /// Title.
    pub title: String,
    /// `open`, `contained` or `handled`.
    pub state: String,
    /// Grade.
    pub grade: String,
    /// When detected.
    pub detected_at: String,
    /// When the provider became aware of it.
    pub known_at: String,
    /// When handled, once it was.
    pub handled_at: Option<String>,
    /// Cause.
    pub cause: String,
    /// Possible harm.
    pub harm: String,
    /// Advice, by language.
    pub advice: BTreeMap<String, String>,
    /// What was exposed.
    pub exposure: ExposureView,
    /// The affected set as last computed.
    pub affected: AffectedView,
    /// The reports owed and where each stands.
    pub clocks: Vec<ReportClock>,
    /// Reports filed.
    pub reports: Vec<FiledView>,
    /// What was done, oldest first.
    pub timeline: Vec<StepView>,
    /// How notifying the affected stands.
    pub notification: Delivered,
}

/// The exposure as shown.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct ExposureView {
    /// Categories.
    pub categories: Vec<String>,
    /// Features (all when empty).
    pub features: Vec<String>,
    /// Window start.
    pub from: String,
    /// Window end.
    pub to: String,
    /// `stored` or `collected`.
    pub basis: String,
    /// Subjects the set is narrowed to, counted (never listed).
    pub listed_subjects: usize,
    /// Where the exposed copy was held.
    pub location: String,
    /// The recipient whose copies were exposed, for a breach at one.
    pub recipient: Option<String>,
}

/// The affected set as shown: counts, never the subjects.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Serialize)]
pub struct AffectedView {
    /// Which computation (from 1).
    pub version: i64,
    /// When computed.
    pub computed_at: String,
    /// Subjects affected.
    pub subjects: u64,
    /// Subjects per category.
    pub by_category: BTreeMap<String, u64>,
    /// Subjects per region.
    pub by_region: BTreeMap<String, u64>,
    /// Subjects listed that held none of the categories in the window.
    pub listed_not_holding: u64,
}

/// One report owed to an authority.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReportClock {
    /// The policy's name for it (`cn`, `gdpr`).
    pub regime: String,
    /// Whom it goes to.
    pub authority: String,
    /// The rule asking for it.
    pub basis: String,
    /// `initial` or `final`.
    pub part: String,
    /// When due; none for a final report before the incident is handled.
    pub due_at: Option<String>,
    /// When due, Unix ms.
    #[serde(skip)]
    pub due_ms: Option<i64>,
    /// Hours (initial) or days (final) the rule gives.
    #[serde(skip)]
    pub window_ms: i64,
    /// When filed, once it was.
    pub filed_at: Option<String>,
    /// `filed`, `overdue`, `due` or `waiting` (a final report before handling).
    pub status: String,
}

/// A filed report as shown.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct FiledView {
    /// Regime.
    pub regime: String,
    /// `initial`, `update` or `final`.
    pub part: String,
    /// When.
    pub at: String,
    /// Who filed it.
    pub by: String,
    /// SHA-256 of the report as filed (its JSON, in English), hex.
    pub digest: String,
}

/// A timeline step as shown.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct StepView {
    /// When.
    pub at: String,
    /// Who.
    pub by: String,
    /// `opened`, `recomputed`, `facts`, `containment`, `remediation`, `note`, `contained`,
    /// `handled`, `reported`, `notify`.
    pub kind: String,
    /// What.
    pub text: String,
}

/// The report: PIPL art. 57's items and the counts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Incident id.
    pub incident: String,
    /// Language of the text fields (`zh-CN` or `en`).
    pub language: String,
    /// The provider.
    pub provider: String,
    /// Whom to contact.
    pub contact: String,
    /// Title.
    pub title: String,
    /// Grade.
    pub grade: String,
    /// `open`, `contained` or `handled`.
    pub state: String,
    /// When detected.
    pub detected_at: String,
    /// When the provider became aware of it.
    pub known_at: String,
    /// When handled.
    pub handled_at: Option<String>,
    /// Categories of PI involved, each with its description, sensitivity and subjects.
    pub categories: Vec<ReportCategory>,
    /// The cause.
    pub cause: String,
    /// The harm it may do.
    pub harm: String,
    /// Remedial measures taken (containment and remediation steps), oldest first.
    pub measures: Vec<StepView>,
    /// What individuals can do to reduce the harm.
    pub advice: String,
    /// Subjects affected, and per region.
    pub affected: AffectedView,
    /// The exposure.
    pub exposure: ExposureView,
    /// How notifying the affected stands.
    pub notification: Delivered,
    /// The reports owed.
    pub clocks: Vec<ReportClock>,
}

/// One category in a report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct ReportCategory {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Sensitive PI.
    pub sensitive: bool,
    /// Subjects affected holding it.
    pub subjects: u64,
}

fn parse_time(field: &str, text: &str) -> Result<i64, Error> {
    crate::clock::parse_rfc3339(text)
        .ok_or_else(|| Error::Invalid(format!("`{field}` must be an RFC 3339 time")))
}

fn grade_of(text: &str) -> Result<Grade, Error> {
    Grade::parse(text).ok_or_else(|| {
        Error::Invalid(format!(
            "`grade` must be one of: {}",
            Grade::ALL.map(Grade::as_str).join(", ")
        ))
    })
}

fn text_field(field: &str, text: &str) -> Result<String, Error> {
    if text.len() > MAX_TEXT {
        return Err(Error::Invalid(format!(
            "`{field}` is longer than {MAX_TEXT} bytes"
        )));
    }
    Ok(text.to_string())
}

fn advice_of(advice: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Error> {
    for (lang, text) in advice {
        if !steward_policy::LANGUAGES.contains(&lang.as_str()) {
            return Err(Error::Invalid(format!(
                "`advice` is given per language: {}",
                steward_policy::LANGUAGES.join(", ")
            )));
        }
        text_field("advice", text)?;
    }
    Ok(advice.clone())
}

impl Vault {
    fn permit_incidents(&self, actor: Option<&Actor>) -> Result<(), Error> {
        match actor {
            Some(a) => self.permit(a, Capability::IncidentsManage, None),
            None => Ok(()),
        }
    }

    /// The exposure as kept, from what staff stated: names checked against the policy,
    /// lookup values resolved to their holders (and forgotten).
    fn exposure_of(&self, input: &ExposureInput) -> Result<Exposure, Error> {
        if input.categories.is_empty() {
            return Err(Error::Invalid(
                "`exposure.categories` must name at least one category".into(),
            ));
        }
        self.category_ids(input.categories.iter().map(String::as_str))?;
        for f in &input.features {
            self.policy.feature_id(f).ok_or(Error::Unknown {
                kind: crate::NameKind::Feature,
            })?;
        }
        let from_ms = parse_time("exposure.from", &input.from)?;
        let to_ms = parse_time("exposure.to", &input.to)?;
        if to_ms < from_ms {
            return Err(Error::Invalid(
                "`exposure.to` must not be before `exposure.from`".into(),
            ));
        }
        let basis = input.basis.clone().unwrap_or_else(|| "stored".into());
        if !["stored", "collected", "read"].contains(&basis.as_str()) {
            return Err(Error::Invalid(
                "`exposure.basis` must be `stored`, `collected` or `read`".into(),
            ));
        }
        let mut subjects = Vec::new();
        for s in &input.subjects {
            subjects.push(s.parse::<SubjectId>()?.to_string());
        }
        for l in &input.lookups {
            let cat = self.policy.category_id(&l.category).ok_or(Error::Unknown {
                kind: crate::NameKind::Category,
            })?;
            if !self.policy.category(cat).lookup {
                return Err(Error::NotLookup(l.category.clone()));
            }
            let digest = self
                .keys
                .blind_index(&l.category, &crate::normalise_lookup(&l.value));
            for k in self.store.find_by_index(&digest)? {
                subjects.push(SubjectId(k).to_string());
            }
        }
        subjects.sort();
        subjects.dedup();
        let recipient = match &input.recipient {
            None => None,
            Some(name) => Some(
                self.policy
                    .recipient_id(name)
                    .map(|id| self.policy.recipient(id))
                    .ok_or(Error::Unknown {
                        kind: crate::NameKind::Recipient,
                    })?,
            ),
        };
        let location = match (&input.location, recipient) {
            (Some(l), _) if !l.is_empty() => text_field("exposure.location", l)?,
            (_, Some(r)) => r.region.clone(),
            _ => self.policy.regions.first().cloned().unwrap_or_default(),
        };
        Ok(Exposure {
            categories: input.categories.clone(),
            features: input.features.clone(),
            from_ms,
            to_ms,
            basis,
            subjects,
            narrowed: !input.subjects.is_empty() || !input.lookups.is_empty(),
            location,
            recipient: recipient.map(|r| r.name.clone()),
        })
    }

    /// Computes the affected set of `exposure` as computation `version`: the summary, and
    /// the ops that keep the set.
    fn affected_of(
        &self,
        id: &str,
        exposure: &Exposure,
        version: i64,
    ) -> Result<(Affected, Op), Error> {
        let window = match exposure.basis.as_str() {
            "collected" => (exposure.from_ms, exposure.to_ms),
            _ => (i64::MIN, exposure.to_ms),
        };
        let read = match (exposure.basis.as_str(), &exposure.recipient) {
            ("read", None) => Some(self.read_in_window(
                &exposure.categories,
                (exposure.from_ms, exposure.to_ms),
                None,
            )?),
            // Copies at a recipient: what was disclosed to it (by the window's end, or in it).
            (basis, Some(r)) => {
                let from = if basis == "stored" {
                    i64::MIN
                } else {
                    exposure.from_ms
                };
                Some(self.read_in_window(&exposure.categories, (from, exposure.to_ms), Some(r))?)
            }
            _ => None,
        };
        // Held at some time up to the window's end, whoever's copy.
        let window = if read.is_some() {
            (i64::MIN, exposure.to_ms)
        } else {
            window
        };
        let listed: Vec<SubjectKey> = exposure
            .subjects
            .iter()
            .filter_map(|s| s.parse::<SubjectId>().ok().map(|s| s.0))
            .collect();
        let computed = self.compute_set(
            &exposure.categories,
            &exposure.features,
            window,
            exposure.narrowed.then_some(listed.as_slice()),
            read.as_ref(),
        )?;
        let chunks = pack(&computed.keys);
        let subjects = computed.keys.len() as u64;
        let affected = Affected {
            version,
            at_ms: self.clock.now_ms(),
            subjects,
            chunks: chunks.len() as i64,
            by_category: computed.by_category,
            by_region: BTreeMap::from([(exposure.location.clone(), subjects)]),
            listed_not_holding: computed.listed_not_holding,
        };
        Ok((
            affected,
            Op::PutCaseSet {
                id: id.into(),
                version,
                chunks,
            },
        ))
    }

    /// Opens an incident (P22) and computes its affected set. Audited as `incident.open`,
    /// with an `incident.opened` webhook and a mail to the escalation contacts.
    pub fn open_incident(
        &self,
        actor: Option<&Actor>,
        new: &NewIncident,
    ) -> Result<Incident, Error> {
        self.permit_incidents(actor)?;
        if new.title.trim().is_empty() {
            return Err(Error::Invalid("`title` must not be empty".into()));
        }
        let grade = grade_of(&new.grade)?;
        let detected_ms = parse_time("detected_at", &new.detected_at)?;
        let known_ms = match &new.known_at {
            Some(k) => parse_time("known_at", k)?,
            None => detected_ms,
        };
        if known_ms < detected_ms {
            return Err(Error::Invalid(
                "`known_at` must not be before `detected_at`".into(),
            ));
        }
        let exposure = self.exposure_of(&new.exposure)?;
        let id = self.new_id("inc")?;
        let (affected, set_op) = self.affected_of(&id, &exposure, 1)?;
        let now = self.clock.now_ms();
        let by = Vault::actor_id(actor);
        let doc = Doc {
            id: id.clone(),
            title: text_field("title", &new.title)?,
            state: "open".into(),
            grade: grade.as_str().into(),
            detected_ms,
            known_ms,
            handled_ms: None,
            cause: text_field("cause", &new.cause)?,
            harm: text_field("harm", &new.harm)?,
            advice: advice_of(&new.advice)?,
            exposure,
            timeline: vec![Step {
                at_ms: now,
                by: by.clone(),
                kind: "opened".into(),
                text: format!("affected set computed: {} subjects", affected.subjects),
            }],
            affected,
            reports: Vec::new(),
            notice: None,
        };
        let data = json!({ "incident": id, "grade": doc.grade, "subjects": doc.affected.subjects });
        let mut ops = vec![self.case_op(&id, "incident", 1, &doc)?, set_op];
        let mut messages = self.event_messages("incident.opened", data.clone())?;
        for address in &self.contacts.escalation {
            messages.push(self.mail(
                "incident.opened",
                format!("contact:{address}"),
                json!({ "case": id }),
            )?);
        }
        Vault::enqueue(&mut ops, messages);
        let draft = self.incident_draft(
            actor,
            "incident.open",
            &doc,
            json!({
                "incident": id,
                "grade": doc.grade,
                "version": 1,
                "subjects": doc.affected.subjects,
                "by_category": doc.affected.by_category,
                "listed": doc.exposure.subjects.len(),
            }),
        );
        self.commit_case(ops, vec![draft])?;
        tracing::info!(incident = %id, subjects = doc.affected.subjects, "incident opened");
        self.incident_view(&doc)
    }

    fn incident_draft(
        &self,
        actor: Option<&Actor>,
        action: &str,
        doc: &Doc,
        detail: serde_json::Value,
    ) -> steward_audit::Draft {
        let mut d = self.managed(actor, action, detail);
        d.categories = doc.exposure.categories.join(",");
        d
    }

    /// Changes an incident's facts; a new exposure (or `recompute`) computes the affected set
    /// again as a new version, each audited (`incident.facts`, `incident.recompute`).
    pub fn incident_facts(
        &self,
        actor: Option<&Actor>,
        id: &str,
        facts: &IncidentFacts,
    ) -> Result<Incident, Error> {
        self.permit_incidents(actor)?;
        let exposure = facts
            .exposure
            .as_ref()
            .map(|e| self.exposure_of(e))
            .transpose()?;
        let grade = facts.grade.as_deref().map(grade_of).transpose()?;
        let advice = facts.advice.as_ref().map(advice_of).transpose()?;
        let by = Vault::actor_id(actor);
        let doc = self.change_case(id, "incident", Missing::Incident, |doc: &mut Doc| {
            let mut changed = Vec::new();
            if let Some(t) = &facts.title {
                doc.title = text_field("title", t)?;
                changed.push("title");
            }
            if let Some(g) = grade {
                doc.grade = g.as_str().into();
                changed.push("grade");
            }
            if let Some(c) = &facts.cause {
                doc.cause = text_field("cause", c)?;
                changed.push("cause");
            }
            if let Some(h) = &facts.harm {
                doc.harm = text_field("harm", h)?;
                changed.push("harm");
            }
            if let Some(a) = &advice {
                doc.advice = a.clone();
                changed.push("advice");
            }
            let now = self.clock.now_ms();
            let mut ops = Vec::new();
            let mut drafts = Vec::new();
            if !changed.is_empty() {
                doc.timeline.push(Step {
                    at_ms: now,
                    by: by.clone(),
                    kind: "facts".into(),
                    text: format!("changed: {}", changed.join(", ")),
                });
                drafts.push(self.incident_draft(
                    actor,
                    "incident.facts",
                    doc,
                    json!({ "incident": doc.id, "changed": changed }),
                ));
            }
            if let Some(e) = &exposure {
                doc.exposure = e.clone();
            }
            if exposure.is_some() || facts.recompute {
                let version = doc.affected.version + 1;
                let (affected, set_op) = self.affected_of(&doc.id, &doc.exposure, version)?;
                doc.timeline.push(Step {
                    at_ms: now,
                    by: by.clone(),
                    kind: "recomputed".into(),
                    text: format!(
                        "affected set computed again (version {version}): {} subjects, {} before",
                        affected.subjects, doc.affected.subjects
                    ),
                });
                drafts.push(self.incident_draft(
                    actor,
                    "incident.recompute",
                    doc,
                    json!({
                        "incident": doc.id,
                        "version": version,
                        "subjects": affected.subjects,
                        "before": doc.affected.subjects,
                        "by_category": affected.by_category,
                        "listed": doc.exposure.subjects.len(),
                    }),
                ));
                doc.affected = affected;
                ops.push(set_op);
            }
            if drafts.is_empty() {
                return Err(Error::Invalid("no fact was given to change".into()));
            }
            Ok((ops, drafts))
        })?;
        self.incident_view(&doc)
    }

    /// Adds a step to an incident's timeline: containment, remediation or a note; `contained`
    /// and `handled` also move its state (handling starts the final report's clock). Audited
    /// as `incident.step`.
    pub fn incident_step(
        &self,
        actor: Option<&Actor>,
        id: &str,
        kind: &str,
        text: &str,
    ) -> Result<Incident, Error> {
        self.permit_incidents(actor)?;
        if !STEP_KINDS.contains(&kind) {
            return Err(Error::Invalid(format!(
                "`kind` must be one of: {}",
                STEP_KINDS.join(", ")
            )));
        }
        let text = text_field("text", text)?;
        let by = Vault::actor_id(actor);
        let doc = self.change_case(id, "incident", Missing::Incident, |doc: &mut Doc| {
            let now = self.clock.now_ms();
            match kind {
                "contained" if doc.state == "open" => doc.state = "contained".into(),
                "handled" if doc.state != "handled" => {
                    doc.state = "handled".into();
                    doc.handled_ms = Some(now);
                }
                "contained" | "handled" => {
                    return Err(Error::Conflict(format!(
                        "the incident is `{}` already",
                        doc.state
                    )));
                }
                _ => {}
            }
            doc.timeline.push(Step {
                at_ms: now,
                by: by.clone(),
                kind: kind.into(),
                text: text.clone(),
            });
            let draft = self.incident_draft(
                actor,
                "incident.step",
                doc,
                json!({ "incident": doc.id, "kind": kind, "state": doc.state }),
            );
            Ok((Vec::new(), vec![draft]))
        })?;
        self.incident_view(&doc)
    }

    /// The reports `doc` owes under the policy, and where each stands.
    fn clocks(&self, doc: &Doc) -> Vec<ReportClock> {
        let grade = Grade::parse(&doc.grade).unwrap_or(Grade::General);
        let now = self.clock.now_ms();
        let inc = &self.policy.incidents;
        let mut out = Vec::new();
        for rule in inc.reports.iter().filter(|r| grade >= r.min_grade) {
            let start = if rule.from_detection {
                doc.detected_ms
            } else {
                doc.known_ms
            };
            let hours = if inc.cii {
                rule.cii_hours.unwrap_or(rule.hours)
            } else {
                rule.hours
            };
            let window = i64::from(hours) * HOUR_MS;
            let mut parts = vec![("initial", Some(start.saturating_add(window)), window)];
            if let Some(days) = rule.final_days {
                let window = i64::from(days) * crate::DAY_MS;
                parts.push((
                    "final",
                    doc.handled_ms.map(|h| h.saturating_add(window)),
                    window,
                ));
            }
            for (part, due_ms, window_ms) in parts {
                let filed = doc
                    .reports
                    .iter()
                    .find(|f| f.regime == rule.name && f.part == part)
                    .map(|f| f.at_ms);
                let status = match (filed, due_ms) {
                    (Some(_), _) => "filed",
                    (None, None) => "waiting",
                    (None, Some(d)) if d < now => "overdue",
                    (None, Some(_)) => "due",
                };
                out.push(ReportClock {
                    regime: rule.name.clone(),
                    authority: rule.authority.clone(),
                    basis: rule.basis.clone(),
                    part: part.into(),
                    due_at: due_ms.map(rfc3339),
                    due_ms,
                    window_ms,
                    filed_at: filed.map(rfc3339),
                    status: status.into(),
                });
            }
        }
        out
    }

    fn incident_view(&self, doc: &Doc) -> Result<Incident, Error> {
        Ok(Incident {
            id: doc.id.clone(),
            title: doc.title.clone(),
            state: doc.state.clone(),
            grade: doc.grade.clone(),
            detected_at: rfc3339(doc.detected_ms),
            known_at: rfc3339(doc.known_ms),
            handled_at: doc.handled_ms.map(rfc3339),
            cause: doc.cause.clone(),
            harm: doc.harm.clone(),
            advice: doc.advice.clone(),
            exposure: exposure_view(&doc.exposure),
            affected: affected_view(&doc.affected),
            clocks: self.clocks(doc),
            reports: doc
                .reports
                .iter()
                .map(|f| FiledView {
                    regime: f.regime.clone(),
                    part: f.part.clone(),
                    at: rfc3339(f.at_ms),
                    by: f.by.clone(),
                    digest: f.digest.clone(),
                })
                .collect(),
            timeline: doc.timeline.iter().map(step_view).collect(),
            notification: self.delivered(&doc.id, doc.notice.as_ref())?,
        })
    }

    /// One incident.
    pub fn incident(&self, actor: Option<&Actor>, id: &str) -> Result<Incident, Error> {
        self.permit_incidents(actor)?;
        let (_, doc) = self.load_case::<Doc>(id, "incident", Missing::Incident)?;
        self.incident_view(&doc)
    }

    /// Every incident, newest detection first.
    pub fn incidents(&self, actor: Option<&Actor>) -> Result<Vec<Incident>, Error> {
        self.permit_incidents(actor)?;
        let mut docs = self.incident_docs()?;
        docs.sort_by(|a, b| (b.detected_ms, &b.id).cmp(&(a.detected_ms, &a.id)));
        docs.iter().map(|d| self.incident_view(d)).collect()
    }

    fn incident_docs(&self) -> Result<Vec<Doc>, Error> {
        docs_of(self.store.cases("incident")?)
    }

    /// The incidents from this process's copy while it is fresh (the public notices).
    fn cached_incident_docs(&self) -> Result<Vec<Doc>, Error> {
        docs_of(self.cached_cases("incident")?)
    }

    /// The incident's report in `lang` (`zh-CN` or `en`; the policy's language when not
    /// given): PIPL art. 57's items — categories involved, cause, possible harm, remedial
    /// measures, what individuals can do, whom to contact — and the counts.
    pub fn incident_report(
        &self,
        actor: Option<&Actor>,
        id: &str,
        lang: Option<&str>,
    ) -> Result<Report, Error> {
        self.permit_incidents(actor)?;
        let (_, doc) = self.load_case::<Doc>(id, "incident", Missing::Incident)?;
        self.report_of(&doc, lang)
    }

    fn report_of(&self, doc: &Doc, lang: Option<&str>) -> Result<Report, Error> {
        let lang = match lang {
            Some(l) if steward_policy::LANGUAGES.contains(&l) => l.to_string(),
            Some(_) => {
                return Err(Error::Invalid(format!(
                    "`lang` must be one of: {}",
                    steward_policy::LANGUAGES.join(", ")
                )));
            }
            None => self.policy.language.clone(),
        };
        let categories = doc
            .exposure
            .categories
            .iter()
            .map(|c| {
                let cat = self
                    .policy
                    .category_id(c)
                    .map(|id| self.policy.category(id));
                ReportCategory {
                    name: c.clone(),
                    description: cat.map(|c| c.description.clone()).unwrap_or_default(),
                    sensitive: cat.is_some_and(|c| c.sensitive),
                    subjects: doc.affected.by_category.get(c).copied().unwrap_or(0),
                }
            })
            .collect();
        Ok(Report {
            incident: doc.id.clone(),
            language: lang.clone(),
            provider: self.policy.name.clone(),
            contact: self.policy.incidents.contact.clone(),
            title: doc.title.clone(),
            grade: doc.grade.clone(),
            state: doc.state.clone(),
            detected_at: rfc3339(doc.detected_ms),
            known_at: rfc3339(doc.known_ms),
            handled_at: doc.handled_ms.map(rfc3339),
            categories,
            cause: doc.cause.clone(),
            harm: doc.harm.clone(),
            measures: doc
                .timeline
                .iter()
                .filter(|s| {
                    matches!(
                        s.kind.as_str(),
                        "containment" | "remediation" | "contained" | "handled"
                    )
                })
                .map(step_view)
                .collect(),
            advice: self.advice_in(doc, &lang),
            affected: affected_view(&doc.affected),
            exposure: exposure_view(&doc.exposure),
            notification: self.delivered(&doc.id, doc.notice.as_ref())?,
            clocks: self.clocks(doc),
        })
    }

    /// The advice in `lang`, or in the other language when that is all there is.
    fn advice_in(&self, doc: &Doc, lang: &str) -> String {
        doc.advice
            .get(lang)
            .or_else(|| doc.advice.values().next())
            .cloned()
            .unwrap_or_default()
    }

    /// The report as readable text in its language.
    pub fn report_text(&self, r: &Report) -> Result<String, Error> {
        let c = &self.catalogue;
        let lang = r.language.as_str();
        let t = |id: &str, args: &[(&str, &str)]| c.text(lang, id, None, args);
        let none = t("list-none", &[])?;
        let or_none = |s: &str| {
            if s.trim().is_empty() {
                none.clone()
            } else {
                s.to_string()
            }
        };
        let mut out = Vec::new();
        out.push(t(
            "incident-report-title",
            &[("title", &r.title), ("incident", &r.incident)],
        )?);
        out.push(String::new());
        out.push(t(
            "incident-report-provider",
            &[("provider", &r.provider), ("contact", &or_none(&r.contact))],
        )?);
        let grade = t(&format!("incident-grade-{}", r.grade), &[])?;
        let state = t(&format!("incident-state-{}", r.state), &[])?;
        out.push(t(
            "incident-report-grade",
            &[("grade", &grade), ("state", &state)],
        )?);
        out.push(t(
            "incident-report-times",
            &[("detected", &r.detected_at), ("known", &r.known_at)],
        )?);
        out.push(t(
            "incident-report-window",
            &[
                ("from", &r.exposure.from),
                ("to", &r.exposure.to),
                ("location", &r.exposure.location),
            ],
        )?);
        out.push(String::new());
        out.push(t("incident-report-categories", &[])?);
        for cat in &r.categories {
            let n = cat.subjects.to_string();
            let sensitive = if cat.sensitive {
                t("statement-sensitive", &[])?
            } else {
                String::new()
            };
            out.push(t(
                "incident-report-category",
                &[
                    ("description", &cat.description),
                    ("name", &cat.name),
                    ("sensitive", &sensitive),
                    ("n", &n),
                ],
            )?);
        }
        let total = r.affected.subjects.to_string();
        out.push(t("incident-report-affected", &[("n", &total)])?);
        for (region, n) in &r.affected.by_region {
            let n = n.to_string();
            out.push(t(
                "incident-report-region",
                &[("region", region), ("n", &n)],
            )?);
        }
        out.push(String::new());
        out.push(t("incident-report-cause", &[("text", &or_none(&r.cause))])?);
        out.push(t("incident-report-harm", &[("text", &or_none(&r.harm))])?);
        out.push(t("incident-report-measures", &[])?);
        if r.measures.is_empty() {
            out.push(format!("- {none}"));
        }
        for m in &r.measures {
            out.push(format!("- {} {}", m.at, m.text));
        }
        out.push(t(
            "incident-report-advice",
            &[("text", &or_none(&r.advice))],
        )?);
        out.push(String::new());
        let (notified, failed, pending) = (
            r.notification.notified.to_string(),
            r.notification.failed.to_string(),
            r.notification.pending.to_string(),
        );
        out.push(t(
            "incident-report-notified",
            &[
                ("notified", &notified),
                ("failed", &failed),
                ("pending", &pending),
            ],
        )?);
        out.push(t("incident-report-clocks", &[])?);
        for k in &r.clocks {
            let part = t(&format!("incident-part-{}", k.part), &[])?;
            let status = t(&format!("incident-clock-{}", k.status), &[])?;
            let due = k.due_at.clone().unwrap_or_else(|| "—".to_string());
            out.push(t(
                "incident-report-clock",
                &[
                    ("part", &part),
                    ("authority", &k.authority),
                    ("due", &due),
                    ("status", &status),
                ],
            )?);
        }
        Ok(out.join("\n") + "\n")
    }

    /// Records a report filed with an authority (`regime` from the policy; `part` initial,
    /// update or final — final once the incident is handled): the report as filed, its digest,
    /// who and when. Audited as `incident.report`; the clock it answers stops.
    pub fn file_report(
        &self,
        actor: Option<&Actor>,
        id: &str,
        regime: &str,
        part: &str,
    ) -> Result<Incident, Error> {
        self.permit_incidents(actor)?;
        if !REPORT_PARTS.contains(&part) {
            return Err(Error::Invalid(format!(
                "`part` must be one of: {}",
                REPORT_PARTS.join(", ")
            )));
        }
        if !self
            .policy
            .incidents
            .reports
            .iter()
            .any(|r| r.name == regime)
        {
            return Err(Error::Invalid(
                "`regime` must name a report of the policy's `[incidents.reports]`".into(),
            ));
        }
        let by = Vault::actor_id(actor);
        let doc = self.change_case(id, "incident", Missing::Incident, |doc: &mut Doc| {
            if part == "final" && doc.state != "handled" {
                return Err(Error::Conflict(
                    "a final report is filed once the incident is handled".into(),
                ));
            }
            let report = serde_json::to_string(&self.report_of(doc, Some("en"))?)
                .map_err(|_| Error::Internal("a report does not serialise"))?;
            let digest = hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                report.as_bytes(),
            ));
            let now = self.clock.now_ms();
            doc.reports.push(Filed {
                regime: regime.into(),
                part: part.into(),
                at_ms: now,
                by: by.clone(),
                digest: digest.clone(),
                report,
            });
            doc.timeline.push(Step {
                at_ms: now,
                by: by.clone(),
                kind: "reported".into(),
                text: format!("{part} report filed ({regime})"),
            });
            let draft = self.incident_draft(
                actor,
                "incident.report",
                doc,
                json!({ "incident": doc.id, "regime": regime, "part": part, "digest": digest }),
            );
            Ok((Vec::new(), vec![draft]))
        })?;
        self.incident_view(&doc)
    }

    /// Starts notifying the affected (P22): every subject of the latest affected set gets a
    /// mail in their language and the provider's apps a push webhook per batch, through the
    /// outbox, batch by batch on the dispatcher's passes; the incident is announced in
    /// `GET /v1/notices`. A run started after the set was computed again reaches only the
    /// subjects earlier runs did not. Audited as `incident.notify`.
    pub fn notify_incident(&self, actor: Option<&Actor>, id: &str) -> Result<Incident, Error> {
        self.permit_incidents(actor)?;
        let by = Vault::actor_id(actor);
        let doc = self.change_case(id, "incident", Missing::Incident, |doc: &mut Doc| {
            let run = match &doc.notice {
                Some(r) if !r.done => {
                    return Err(Error::Conflict(
                        "the affected are being notified already".into(),
                    ));
                }
                Some(r) if r.version == doc.affected.version => {
                    return Err(Error::Conflict(
                        "every affected subject of this set was notified already".into(),
                    ));
                }
                Some(r) => r.run + 1,
                None => 1,
            };
            if doc.advice.values().all(|a| a.trim().is_empty()) {
                return Err(Error::Invalid(
                    "give the incident `advice` (what people can do) before notifying".into(),
                ));
            }
            let now = self.clock.now_ms();
            doc.notice = Some(NoticeRun {
                started_ms: now,
                version: doc.affected.version,
                total: doc.affected.subjects,
                run,
                ..NoticeRun::default()
            });
            doc.timeline.push(Step {
                at_ms: now,
                by: by.clone(),
                kind: "notify".into(),
                text: format!("notifying {} affected subjects", doc.affected.subjects),
            });
            let mut ops = Vec::new();
            Vault::enqueue(
                &mut ops,
                self.event_messages(
                    "incident.announced",
                    json!({ "incident": doc.id, "subjects": doc.affected.subjects }),
                )?,
            );
            let draft = self.incident_draft(actor, "incident.notify", doc, json!({ "incident": doc.id, "version": doc.affected.version, "subjects": doc.affected.subjects, "run": run }));
            Ok((ops, vec![draft]))
        })?;
        self.incident_view(&doc)
    }

    /// One batch of an incident's notice run; `None` when it has none (the CLI's loop).
    pub fn incident_notice_step(
        &self,
        id: &str,
        batch: usize,
    ) -> Result<Option<(u64, u64, bool)>, Error> {
        Ok(self
            .notice_step(id, "incident", ("incident.notice", "incident.push"), batch)?
            .map(|r| (r.position, r.total, r.done)))
    }

    /// The public announcements of incidents whose affected are being (or were) notified, in
    /// `lang`: title and lines (what happened, what is involved, what was done, what to do,
    /// whom to contact).
    pub(crate) fn incident_notices(
        &self,
        lang: &str,
    ) -> Result<Vec<crate::versions::Notice>, Error> {
        let mut out = Vec::new();
        let mut docs = self.cached_incident_docs()?;
        docs.sort_by_key(|d| std::cmp::Reverse(d.detected_ms));
        for doc in docs.iter().filter(|d| d.notice.is_some()) {
            let started = doc.notice.as_ref().map_or(0, |n| n.started_ms);
            let (title, lines) = self.incident_notice_text(doc, lang)?;
            out.push(crate::versions::Notice {
                kind: "incident".into(),
                id: doc.id.clone(),
                version: String::new(),
                effective_at: rfc3339(started),
                published_at: rfc3339(started),
                title,
                changes: lines,
                reconsent: Vec::new(),
            });
        }
        Ok(out)
    }

    /// An incident's notice in `lang`: its title and lines.
    fn incident_notice_text(&self, doc: &Doc, lang: &str) -> Result<(String, Vec<String>), Error> {
        let c = &self.catalogue;
        let t = |id: &str, args: &[(&str, &str)]| c.text(lang, id, None, args);
        let none = t("list-none", &[])?;
        let or_none = |s: &str| {
            if s.trim().is_empty() {
                none.clone()
            } else {
                s.to_string()
            }
        };
        let cats: Vec<String> = doc
            .exposure
            .categories
            .iter()
            .map(|n| {
                self.policy
                    .category_id(n)
                    .map(|id| self.policy.category(id).description.clone())
                    .unwrap_or_else(|| n.clone())
            })
            .collect();
        let measures: Vec<&str> = doc
            .timeline
            .iter()
            .filter(|s| matches!(s.kind.as_str(), "containment" | "remediation"))
            .map(|s| s.text.as_str())
            .collect();
        let sep = t("list-separator", &[])?;
        let title = t(
            "incident-notice",
            &[("provider", &self.policy.name), ("title", &doc.title)],
        )?;
        let lines = vec![
            t(
                "incident-notice-what",
                &[
                    ("title", &doc.title),
                    ("detected", &rfc3339(doc.detected_ms)),
                ],
            )?,
            t("incident-notice-categories", &[("list", &cats.join(&sep))])?,
            t("incident-report-cause", &[("text", &or_none(&doc.cause))])?,
            t("incident-report-harm", &[("text", &or_none(&doc.harm))])?,
            t(
                "incident-notice-measures",
                &[("list", &or_none(&measures.join(&sep)))],
            )?,
            t(
                "incident-report-advice",
                &[("text", &or_none(&self.advice_in(doc, lang)))],
            )?,
            t(
                "incident-notice-contact",
                &[("contact", &or_none(&self.policy.incidents.contact))],
            )?,
        ];
        Ok((title, lines))
    }

    /// The mail of case `id` (an incident's notice) in `lang`: subject line and text.
    pub(crate) fn incident_mail(&self, id: &str, lang: &str) -> Result<(String, String), Error> {
        let (_, doc) = self.load_case::<Doc>(id, "incident", Missing::Incident)?;
        let (title, lines) = self.incident_notice_text(&doc, lang)?;
        Ok((title, lines.join("\n\n")))
    }

    /// A staff mail about an incident's event (opened, a report due soon or overdue).
    pub(crate) fn incident_staff_mail(
        &self,
        event: &str,
        lang: &str,
        data: &serde_json::Value,
    ) -> Result<(String, String), Error> {
        let id = data
            .get("case")
            .and_then(serde_json::Value::as_str)
            .ok_or(Error::Internal("an incident mail names no incident"))?;
        let (_, doc) = self.load_case::<Doc>(id, "incident", Missing::Incident)?;
        let get = |k: &str| {
            data.get(k)
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let grade =
            self.catalogue
                .text(lang, &format!("incident-grade-{}", doc.grade), None, &[])?;
        let n = doc.affected.subjects.to_string();
        let (authority, due) = (get("authority"), get("due_at"));
        let args = [
            ("incident", id),
            ("title", doc.title.as_str()),
            ("grade", grade.as_str()),
            ("n", n.as_str()),
            ("authority", authority.as_str()),
            ("due", due.as_str()),
        ];
        let key = match event {
            "incident.opened" => "incident-opened",
            "incident.report_due_soon" => "incident-report-due-soon",
            "incident.report_overdue" => "incident-report-overdue",
            _ => return Err(Error::Internal("no email is written for this event")),
        };
        Ok((
            self.catalogue.text(lang, key, None, &args)?,
            self.catalogue.text(lang, key, Some("body"), &args)?,
        ))
    }

    /// The incident clocks on the deadline board: every report owed and not filed whose due
    /// time is known, due by `until`.
    pub(crate) fn incident_deadlines(
        &self,
        now: i64,
        until: i64,
    ) -> Result<Vec<crate::deadlines::Deadline>, Error> {
        let mut out = Vec::new();
        for doc in self.incident_docs()? {
            for k in self.clocks(&doc) {
                if let (None, Some(due)) = (&k.filed_at, k.due_ms)
                    && due <= until
                {
                    out.push(self.deadline(
                        "incident_report",
                        format!("{}:{}:{}", doc.id, k.regime, k.part),
                        None,
                        format!(
                            "{} report of incident {} to {}",
                            k.part, doc.id, k.authority
                        ),
                        due,
                        now,
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Queues the incident reminders now due: for each report owed and not filed, a reminder
    /// to the request contacts once half of its window has passed and again at three
    /// quarters, and an escalation to the escalation contacts once it is overdue — each with
    /// a webhook (`incident.report_due_soon`, `incident.report_overdue`), each sent once.
    pub(crate) fn incident_reminders(
        &self,
        done: &mut crate::deadlines::Reminders,
    ) -> Result<(), Error> {
        let now = self.clock.now_ms();
        for doc in self.incident_docs()? {
            for k in self.clocks(&doc) {
                let (None, Some(due)) = (&k.filed_at, k.due_ms) else {
                    continue;
                };
                let (event, lead, to) = if due <= now {
                    (
                        "incident.report_overdue",
                        "overdue".to_string(),
                        &self.contacts.escalation,
                    )
                } else {
                    let Some(lead) = [k.window_ms / 2, k.window_ms / 4]
                        .into_iter()
                        .filter(|l| due.saturating_sub(*l) <= now)
                        .min()
                    else {
                        continue;
                    };
                    (
                        "incident.report_due_soon",
                        format!("{}m", lead / 60_000),
                        &self.contacts.requests,
                    )
                };
                let key = format!("reminder:{}:{}:{}:{lead}", doc.id, k.regime, k.part);
                if self.store.meta(&key)?.is_some() {
                    continue;
                }
                let data = json!({
                    "case": doc.id,
                    "regime": k.regime,
                    "part": k.part,
                    "authority": k.authority,
                    "due_at": k.due_at,
                });
                let mut messages = self.event_messages(event, data.clone())?;
                for address in to {
                    messages.push(self.mail(event, format!("contact:{address}"), data.clone())?);
                }
                let mut ops = vec![Op::SetMeta {
                    key,
                    value: now.to_string(),
                }];
                Vault::enqueue(&mut ops, messages);
                let draft = self.system_draft(
                    "deadline.remind",
                    json!({ "incident": doc.id, "regime": k.regime, "part": k.part, "event": event, "lead": lead }),
                );
                self.store.commit(ops, vec![draft])?;
                if due <= now {
                    done.overdue += 1;
                } else {
                    done.due_soon += 1;
                }
            }
        }
        Ok(())
    }
}

/// Incident documents from their rows.
fn docs_of(rows: Vec<steward_store::CaseRow>) -> Result<Vec<Doc>, Error> {
    rows.iter()
        .map(|r| {
            serde_json::from_str(&r.doc)
                .map_err(|_| damaged("a case's document is not what its kind holds"))
        })
        .collect()
}

fn exposure_view(e: &Exposure) -> ExposureView {
    ExposureView {
        categories: e.categories.clone(),
        features: e.features.clone(),
        from: rfc3339(e.from_ms),
        to: rfc3339(e.to_ms),
        basis: e.basis.clone(),
        listed_subjects: e.subjects.len(),
        location: e.location.clone(),
        recipient: e.recipient.clone(),
    }
}

fn affected_view(a: &Affected) -> AffectedView {
    AffectedView {
        version: a.version,
        computed_at: rfc3339(a.at_ms),
        subjects: a.subjects,
        by_category: a.by_category.clone(),
        by_region: a.by_region.clone(),
        listed_not_holding: a.listed_not_holding,
    }
}

fn step_view(s: &Step) -> StepView {
    StepView {
        at: rfc3339(s.at_ms),
        by: s.by.clone(),
        kind: s.kind.clone(),
        text: s.text.clone(),
    }
}
