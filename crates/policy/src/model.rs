//! The validated, compiled policy: every reference resolved to a dense id.
//!
//! A `Policy` can only be made by [`crate::Policy::parse`], so holding one means the file
//! passed validation.

use std::collections::HashMap;

use crate::ids::{CategoryId, FeatureId, IdSet, PurposeId, RecipientId, RoleId};

/// The lawful basis of processing (PIPL art. 13).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Basis {
    /// Needed to perform the contract with the subject.
    Contract,
    /// The subject's consent.
    Consent,
    /// Required by law.
    LegalObligation,
}

impl Basis {
    /// The word used for this basis in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Contract => "contract",
            Basis::Consent => "consent",
            Basis::LegalObligation => "legal_obligation",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Basis> {
        match s {
            "contract" => Some(Basis::Contract),
            "consent" => Some(Basis::Consent),
            "legal_obligation" => Some(Basis::LegalObligation),
            _ => None,
        }
    }
}

/// `1 day`, `30 days`: a count of days as a message says it.
pub fn days(n: u32) -> String {
    if n == 1 {
        "1 day".to_string()
    } else {
        format!("{n} days")
    }
}

/// `1 hour`, `72 hours`.
pub fn hours(n: u32) -> String {
    if n == 1 {
        "1 hour".to_string()
    } else {
        format!("{n} hours")
    }
}

/// When the retention clock of a category starts.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RetentionFrom {
    /// Kept while the account lives, then `days` more after it closes.
    AccountClosed,
    /// Kept `days` after the value was collected.
    Collected,
}

impl RetentionFrom {
    /// The word used in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionFrom::AccountClosed => "account_closed",
            RetentionFrom::Collected => "collected",
        }
    }
}

/// How long values of a category are kept (P17).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Retention {
    /// When the clock starts.
    pub from: RetentionFrom,
    /// Days after that.
    pub days: u32,
}

impl Retention {
    /// Whether `self` may keep data longer than `other`.
    pub fn longer_than(&self, other: &Retention) -> bool {
        match (self.from, other.from) {
            (RetentionFrom::AccountClosed, RetentionFrom::Collected) => true,
            (RetentionFrom::Collected, RetentionFrom::AccountClosed) => false,
            _ => self.days > other.days,
        }
    }

    /// Plain-language description.
    pub fn describe(&self) -> String {
        match self.from {
            RetentionFrom::AccountClosed if self.days == 0 => {
                "while the account exists".to_string()
            }
            RetentionFrom::AccountClosed => {
                format!("while the account exists, then {}", days(self.days))
            }
            RetentionFrom::Collected => format!("{} after collection", days(self.days)),
        }
    }
}

/// A category of personal information (P4).
#[derive(Clone, Debug)]
pub struct Category {
    /// Dense id.
    pub id: CategoryId,
    /// The name used in the policy file and in the API.
    pub name: String,
    /// Fides taxonomy key, such as `user.contact.email`.
    pub taxonomy: String,
    /// Plain-language description.
    pub description: String,
    /// The description in other languages, as [`Purpose::description_in`].
    pub description_in: Vec<(String, String)>,
    /// Sensitive under PIPL art. 28 (P5).
    pub sensitive: bool,
    /// Values are looked up by a keyed blind index (email, phone, linked accounts).
    pub lookup: bool,
    /// Retention rule (P17).
    pub retention: Retention,
}

/// A feature that collects personal information (P2).
#[derive(Clone, Debug)]
pub struct Feature {
    /// Dense id.
    pub id: FeatureId,
    /// Name in the policy file.
    pub name: String,
    /// Plain-language description.
    pub description: String,
    /// Lawful basis of the collection.
    pub basis: Basis,
    /// Categories every collection must include.
    pub required: IdSet,
    /// Categories a collection may include.
    pub optional: IdSet,
    /// Sensitive categories that need the subject's separate consent to this feature (P5).
    pub separate_consent: IdSet,
}

impl Feature {
    /// Every category this feature may collect.
    pub fn collects(&self) -> IdSet {
        self.required.union(&self.optional)
    }
}

/// A purpose of processing (P9).
#[derive(Clone, Debug)]
pub struct Purpose {
    /// Dense id.
    pub id: PurposeId,
    /// Name in the policy file.
    pub name: String,
    /// Fides data-use key, such as `essential.service`.
    pub taxonomy: String,
    /// Plain-language description.
    pub description: String,
    /// The description in other languages (one of [`LANGUAGES`] each), for what subjects see
    /// in their language (the banner); `description` where a language has none.
    pub description_in: Vec<(String, String)>,
    /// Contract and legal obligation are essential; consent-based purposes need consent (P10).
    pub basis: Basis,
    /// Categories this purpose may read.
    pub reads: IdSet,
    /// Declared purposes this one is reasonably related to (P11).
    pub related: Vec<PurposeId>,
}

/// `description_in`'s text for `lang`, or `description`.
fn described<'a>(
    description: &'a str,
    description_in: &'a [(String, String)],
    lang: &str,
) -> &'a str {
    description_in
        .iter()
        .find(|(l, _)| l == lang)
        .map_or(description, |(_, text)| text.as_str())
}

impl Purpose {
    /// The description in `lang`, or the description as written.
    pub fn described(&self, lang: &str) -> &str {
        described(&self.description, &self.description_in, lang)
    }

    /// Whether a read for this purpose needs the subject's consent.
    pub fn needs_consent(&self) -> bool {
        self.basis == Basis::Consent
    }
}

/// A role that staff or services act under (P21).
#[derive(Clone, Debug)]
pub struct Role {
    /// Dense id.
    pub id: RoleId,
    /// Name in the policy file.
    pub name: String,
    /// Plain-language description.
    pub description: String,
    /// Purposes the role may exercise.
    pub purposes: IdSet,
    /// Reads under this role need a stated justification (staff roles).
    pub justification: bool,
    /// The operations the role may perform at all (P21).
    pub may: Capabilities,
}

/// An operation a role may be allowed to perform. Which data it reaches is still decided by
/// purposes, consent and the policy; this decides whether the role may ask at all.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Register subjects and find them by a lookup value.
    SubjectsRegister,
    /// Collect PI through a feature.
    PiCollect,
    /// Read PI for a purpose.
    PiRead,
    /// Record a subject's consent or its withdrawal.
    ConsentRecord,
    /// Disclose PI to a registered recipient.
    DisclosureRecord,
    /// Export everything held about a subject.
    SubjectExport,
    /// Erase a subject.
    SubjectErase,
    /// Read the audit log and sign checkpoints.
    Audit,
    /// Place and lift legal holds (P18).
    HoldsManage,
    /// Work rights requests through their states (P23-P28, P31).
    RequestsManage,
    /// Run retention sweeps (P17).
    RetentionRun,
    /// Register webhook endpoints, see the outbox and retry what was not delivered.
    OutboxManage,
    /// Publish a new version of the policy, and accept one on a subject's behalf (P29, P30).
    PolicyPublish,
    /// Open and run incidents: affected sets, reports to the authority, notices (P22).
    IncidentsManage,
    /// Disclose PI on a legal basis rather than a recipient's registered scope (P15).
    DisclosuresLegal,
    /// Plan and run a transfer of PI to a successor in a merger or sale (P14).
    TransfersManage,
}

impl Capability {
    /// Every capability, in a fixed order.
    pub const ALL: [Capability; 16] = [
        Capability::SubjectsRegister,
        Capability::PiCollect,
        Capability::PiRead,
        Capability::ConsentRecord,
        Capability::DisclosureRecord,
        Capability::SubjectExport,
        Capability::SubjectErase,
        Capability::Audit,
        Capability::HoldsManage,
        Capability::RequestsManage,
        Capability::RetentionRun,
        Capability::OutboxManage,
        Capability::PolicyPublish,
        Capability::IncidentsManage,
        Capability::DisclosuresLegal,
        Capability::TransfersManage,
    ];

    /// The word used in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::SubjectsRegister => "subjects.register",
            Capability::PiCollect => "pi.collect",
            Capability::PiRead => "pi.read",
            Capability::ConsentRecord => "consent.record",
            Capability::DisclosureRecord => "disclosure.record",
            Capability::SubjectExport => "subject.export",
            Capability::SubjectErase => "subject.erase",
            Capability::Audit => "audit",
            Capability::HoldsManage => "holds.manage",
            Capability::RequestsManage => "requests.manage",
            Capability::RetentionRun => "retention.run",
            Capability::OutboxManage => "outbox.manage",
            Capability::PolicyPublish => "policy.publish",
            Capability::IncidentsManage => "incidents.manage",
            Capability::DisclosuresLegal => "disclosures.legal",
            Capability::TransfersManage => "transfers.manage",
        }
    }

    /// Reads the word used in the policy file.
    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of capabilities.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u32);

impl Capabilities {
    /// Adds one.
    pub fn insert(&mut self, c: Capability) {
        self.0 |= c.bit();
    }

    /// Whether `c` is in the set.
    #[inline]
    pub fn contains(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    /// The members, in [`Capability::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

/// Kinds of recipient (P12).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RecipientKind {
    /// A company in the provider's group.
    Affiliate,
    /// A service provider processing on the provider's behalf.
    Processor,
    /// A contractor.
    Contractor,
    /// An agent.
    Agent,
    /// A successor taking over the business in a merger, division or sale (P14).
    Successor,
}

impl RecipientKind {
    /// The word used in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientKind::Affiliate => "affiliate",
            RecipientKind::Processor => "processor",
            RecipientKind::Contractor => "contractor",
            RecipientKind::Agent => "agent",
            RecipientKind::Successor => "successor",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<RecipientKind> {
        match s {
            "affiliate" => Some(RecipientKind::Affiliate),
            "processor" => Some(RecipientKind::Processor),
            "contractor" => Some(RecipientKind::Contractor),
            "agent" => Some(RecipientKind::Agent),
            "successor" => Some(RecipientKind::Successor),
            _ => None,
        }
    }
}

/// A registered recipient of disclosures (P12).
#[derive(Clone, Debug)]
pub struct Recipient {
    /// Dense id.
    pub id: RecipientId,
    /// Name in the policy file.
    pub name: String,
    /// Legal name of the recipient.
    pub legal_name: String,
    /// What kind of recipient.
    pub kind: RecipientKind,
    /// Purposes it may receive data for.
    pub purposes: IdSet,
    /// Categories it may receive.
    pub categories: IdSet,
    /// The confidentiality agreement binding it.
    pub agreement: String,
    /// Where it stores what it receives.
    pub region: String,
    /// Its region is outside the policy's storage regions: a transfer abroad (P16).
    pub cross_border: bool,
}

/// A cookie (P7).
#[derive(Clone, Debug)]
pub struct Cookie {
    /// Cookie name.
    pub name: String,
    /// Plain-language description.
    pub description: String,
    /// The description in other languages, as [`Purpose::description_in`].
    pub description_in: Vec<(String, String)>,
    /// The purpose it serves; non-essential purposes need consent.
    pub purpose: PurposeId,
    /// Lifetime in days.
    pub lifetime_days: u32,
}

impl Category {
    /// The description in `lang`, or the description as written.
    pub fn described(&self, lang: &str) -> &str {
        described(&self.description, &self.description_in, lang)
    }
}

impl Cookie {
    /// The description in `lang`, or the description as written.
    pub fn described(&self, lang: &str) -> &str {
        described(&self.description, &self.description_in, lang)
    }
}

/// Deadlines the statement promises (P32).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// Days to answer a rights request.
    pub request_days: u32,
    /// Days to answer an inquiry or complaint (P31).
    pub inquiry_days: u32,
    /// Hours to report an incident to the authority (P22).
    pub incident_report_hours: u32,
    /// Days between announcing a material change and its taking effect (P30).
    pub change_notice_days: u32,
    /// Days after an account closes within which its PI is erased (P28).
    pub erasure_days: u32,
}

/// How grave an incident is, in the four grades of China's incident-reporting measures
/// (一般, 较大, 重大, 特别重大), least first.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grade {
    /// 一般: general.
    General,
    /// 较大: relatively major.
    RelativelyMajor,
    /// 重大: major.
    Major,
    /// 特别重大: especially major.
    EspeciallyMajor,
}

impl Grade {
    /// Every grade, least first.
    pub const ALL: [Grade; 4] = [
        Grade::General,
        Grade::RelativelyMajor,
        Grade::Major,
        Grade::EspeciallyMajor,
    ];

    /// The word used in files and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::General => "general",
            Grade::RelativelyMajor => "relatively_major",
            Grade::Major => "major",
            Grade::EspeciallyMajor => "especially_major",
        }
    }

    /// Reads the word.
    pub fn parse(s: &str) -> Option<Grade> {
        Grade::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// One report an incident owes an authority (P22): `[incidents.reports.<name>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRule {
    /// Its name in the file (`cn`, `gdpr`).
    pub name: String,
    /// Whom it goes to.
    pub authority: String,
    /// The rule that asks for it, in words.
    pub basis: String,
    /// The clock starts when the incident was detected (`true`: China's measures count from
    /// discovery) or when the provider became aware of it (`false`, the default: GDPR art. 33).
    pub from_detection: bool,
    /// Hours from the clock's start to the first report.
    pub hours: u32,
    /// Hours instead of `hours` when the provider operates critical information
    /// infrastructure (`incidents.cii`).
    pub cii_hours: Option<u32>,
    /// Days from when the incident was handled to the final report, if one is owed.
    pub final_days: Option<u32>,
    /// The least grade it applies to.
    pub min_grade: Grade,
}

/// The `[incidents]` table: how incidents are reported (P22).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incidents {
    /// The provider operates critical information infrastructure (the shorter clocks apply).
    pub cii: bool,
    /// Whom people and authorities contact about an incident (an address or number).
    pub contact: String,
    /// The reports owed, by name. Without an `[incidents]` table: one, `authority`, due
    /// `deadlines.incident_report_hours` after an incident of any grade becomes known.
    pub reports: Vec<ReportRule>,
}

/// The `[review]` table: changes from the version `from` that a person reviewed and accepted,
/// so that `policy diff --fail-on-material` lets them through (P29).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    /// The version label these acknowledgements were written against.
    pub from: String,
    /// Change paths, as `policy diff` prints them (`purposes.support.description`).
    pub acknowledged: Vec<String>,
}

/// The languages Steward writes to subjects in (P30): what `policy.language` and a subject's
/// recorded language may name.
pub const LANGUAGES: [&str; 2] = ["zh-CN", "en"];

/// A validated, compiled privacy policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Schema version of the file format.
    pub schema: u32,
    /// The statement's title.
    pub name: String,
    /// The statement's version label.
    pub version: String,
    /// When this version takes effect.
    pub effective: time::Date,
    /// Regions where PI may be stored (P16).
    pub regions: Vec<String>,
    /// The language subjects are written to when theirs is not known: one of [`LANGUAGES`].
    pub language: String,
    /// Deadlines.
    pub deadlines: Deadlines,
    /// How incidents are reported (P22).
    pub incidents: Incidents,
    /// Categories, indexed by `CategoryId`.
    pub categories: Vec<Category>,
    /// Features, indexed by `FeatureId`.
    pub features: Vec<Feature>,
    /// Purposes, indexed by `PurposeId`.
    pub purposes: Vec<Purpose>,
    /// Roles, indexed by `RoleId`.
    pub roles: Vec<Role>,
    /// Recipients, indexed by `RecipientId`.
    pub recipients: Vec<Recipient>,
    /// Cookies.
    pub cookies: Vec<Cookie>,
    /// Sensitive categories as a set.
    pub sensitive: IdSet,
    /// The changes from an earlier version that a person reviewed and accepted (P29).
    pub review: Option<Review>,
    /// The text it was parsed from, as published (P29).
    pub source: String,
    pub(crate) names: Names,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Names {
    pub categories: HashMap<String, CategoryId>,
    pub features: HashMap<String, FeatureId>,
    pub purposes: HashMap<String, PurposeId>,
    pub roles: HashMap<String, RoleId>,
    pub recipients: HashMap<String, RecipientId>,
}

impl Policy {
    /// Looks a category up by name (at the edge, never on the decision path).
    pub fn category_id(&self, name: &str) -> Option<CategoryId> {
        self.names.categories.get(name).copied()
    }
    /// Looks a feature up by name.
    pub fn feature_id(&self, name: &str) -> Option<FeatureId> {
        self.names.features.get(name).copied()
    }
    /// Looks a purpose up by name.
    pub fn purpose_id(&self, name: &str) -> Option<PurposeId> {
        self.names.purposes.get(name).copied()
    }
    /// Looks a role up by name.
    pub fn role_id(&self, name: &str) -> Option<RoleId> {
        self.names.roles.get(name).copied()
    }
    /// Looks a recipient up by name.
    pub fn recipient_id(&self, name: &str) -> Option<RecipientId> {
        self.names.recipients.get(name).copied()
    }

    /// The category with this id. Ids come from this policy, so the lookup cannot miss.
    pub fn category(&self, id: CategoryId) -> &Category {
        // Ids are only minted by the compiler for this policy's own vectors.
        #[expect(clippy::indexing_slicing, reason = "dense ids index their own policy")]
        &self.categories[id.index()]
    }
    /// The feature with this id.
    pub fn feature(&self, id: FeatureId) -> &Feature {
        #[expect(clippy::indexing_slicing, reason = "dense ids index their own policy")]
        &self.features[id.index()]
    }
    /// The purpose with this id.
    pub fn purpose(&self, id: PurposeId) -> &Purpose {
        #[expect(clippy::indexing_slicing, reason = "dense ids index their own policy")]
        &self.purposes[id.index()]
    }
    /// The role with this id: `None` for [`RoleId::SUBJECT`] (a data subject acting for
    /// themselves holds no policy role) or an id from another policy.
    pub fn role(&self, id: RoleId) -> Option<&Role> {
        self.roles.get(id.index())
    }

    /// The role's name as logs and messages show it: `subject` for a data subject acting for
    /// themselves, `?` for an id this policy does not have.
    pub fn role_name(&self, id: RoleId) -> &str {
        match self.role(id) {
            Some(r) => &r.name,
            None if id == RoleId::SUBJECT => "subject",
            None => "?",
        }
    }
    /// The recipient with this id.
    pub fn recipient(&self, id: RecipientId) -> &Recipient {
        #[expect(clippy::indexing_slicing, reason = "dense ids index their own policy")]
        &self.recipients[id.index()]
    }

    /// Names of the categories in `set`, in declaration order.
    pub fn category_names(&self, set: &IdSet) -> Vec<&str> {
        set.iter()
            .filter_map(|i| self.categories.get(i).map(|c| c.name.as_str()))
            .collect()
    }

    /// Resolves category names to a set, returning the first unknown name on failure.
    pub fn category_set<'a, I>(&self, names: I) -> Result<IdSet, &'a str>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut set = IdSet::EMPTY;
        for name in names {
            match self.category_id(name) {
                Some(id) => set.insert(id.index()),
                None => return Err(name),
            }
        }
        Ok(set)
    }
}
