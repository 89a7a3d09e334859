//! Differences between two policy versions, each classified (P29).
//!
//! Material: anything that lets the provider collect, use, share or keep more than before, store
//! it somewhere new, or hand it to someone else — new categories, purposes, recipients, features
//! or cookies, wider scopes or relations, longer retention, new regions, weaker consent, slower
//! deadlines, a recipient that is another company, kind or place. Needs review: the wording that
//! says what a category, feature, purpose or cookie is, and the taxonomy keys that classify them —
//! a program cannot judge whether the meaning changed. Not material: narrowing, removals, labels,
//! roles (internal to the provider), agreement references.
//!
//! Completeness holds by construction: every model struct is destructured without `..`, so a
//! field added to the model does not compile until it has a rule here.

use crate::ids::IdSet;
use crate::model::{
    Basis, Category, Cookie, Deadlines, Feature, Incidents, Policy, Purpose, Recipient, Retention,
    Review, Role,
};

/// How a change must be handled before it takes effect.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Users must be told before it takes effect (P30).
    Material,
    /// Wording or classification whose meaning a program cannot judge: a person must decide.
    NeedsReview,
    /// Neither.
    NotMaterial,
}

impl Class {
    /// The word used in JSON output and in the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Material => "material",
            Class::NeedsReview => "needs_review",
            Class::NotMaterial => "not_material",
        }
    }
}

/// What happened to the thing a change names, for explaining it in plain language.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// A new item.
    Added,
    /// An item taken away.
    Removed,
    /// A set that grew (more categories read, more regions, ...).
    Widened,
    /// A set that shrank.
    Narrowed,
    /// Anything else: a value or a wording.
    Changed,
}

impl Verb {
    /// The word used in JSON output and in message ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Added => "added",
            Verb::Removed => "removed",
            Verb::Widened => "widened",
            Verb::Narrowed => "narrowed",
            Verb::Changed => "changed",
        }
    }
}

/// One difference between two versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What changed, as a path into the policy file (`purposes.marketing.reads`).
    pub path: String,
    /// What happened, in plain words.
    pub summary: String,
    /// How it must be handled.
    pub class: Class,
    /// The new version's `[review]` table names this path for the old version.
    pub acknowledged: bool,
    /// What happened to the item at `path`.
    pub verb: Verb,
    /// Subjects whose data predates the new version must consent afresh before the purpose
    /// it names is used for them (P11): a new purpose related to no purpose of the old
    /// version, a purpose that reads more, or a purpose moved onto consent.
    pub reconsent: bool,
}

impl Change {
    /// Whether users must be told before it takes effect (P30).
    pub fn material(&self) -> bool {
        self.class == Class::Material
    }

    /// Material or needing review, and not acknowledged by the new version: what a release
    /// gate (`policy diff --fail-on-material`) stops on.
    pub fn blocks(&self) -> bool {
        self.class != Class::NotMaterial && !self.acknowledged
    }
}

struct Diff<'a> {
    out: Vec<Change>,
    old: &'a Policy,
    new: &'a Policy,
    acknowledged: &'a [String],
}

fn quoted(v: &[String]) -> String {
    v.iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn missing_from(a: &[String], b: &[String]) -> Vec<String> {
    b.iter().filter(|x| !a.contains(x)).cloned().collect()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

impl Diff<'_> {
    fn push(&mut self, path: String, summary: String, class: Class) {
        self.push_verb(path, summary, class, Verb::Changed);
    }

    fn push_verb(&mut self, path: String, summary: String, class: Class, verb: Verb) {
        let acknowledged = self.acknowledged.contains(&path);
        self.out.push(Change {
            path,
            summary,
            class,
            acknowledged,
            verb,
            reconsent: false,
        });
    }

    /// Marks the changes that need fresh consent (P11): a new purpose related to none of the
    /// old version's purposes, a purpose reading more, a purpose moved onto consent.
    fn mark_reconsent(&mut self) {
        let (old, new) = (self.old, self.new);
        for c in &mut self.out {
            let mut parts = c.path.splitn(3, '.');
            let (Some("purposes"), Some(name)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Some(p) = new.purpose_id(name).map(|id| new.purpose(id)) else {
                continue;
            };
            c.reconsent = match (parts.next(), c.verb) {
                (None, Verb::Added) => !p
                    .related
                    .iter()
                    .any(|r| old.purpose_id(&new.purpose(*r).name).is_some()),
                (Some("reads"), Verb::Widened) => true,
                (Some("basis"), Verb::Changed) => p.basis == Basis::Consent,
                _ => false,
            };
        }
    }

    fn category_names(p: &Policy, set: &IdSet) -> Vec<String> {
        p.category_names(set)
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn purpose_names(p: &Policy, set: &IdSet) -> Vec<String> {
        set.iter()
            .filter_map(|i| p.purposes.get(i).map(|x| x.name.clone()))
            .collect()
    }

    /// A set of names that may grow (`wider`) or shrink (`narrower`).
    fn names(
        &mut self,
        path: String,
        old: &[String],
        new: &[String],
        wider: (&str, Class),
        narrower: (&str, Class),
    ) {
        let more = missing_from(old, new);
        if !more.is_empty() {
            self.push_verb(
                path.clone(),
                format!("{} {}", wider.0, quoted(&more)),
                wider.1,
                Verb::Widened,
            );
        }
        let fewer = missing_from(new, old);
        if !fewer.is_empty() {
            self.push_verb(
                path,
                format!("{} {}", narrower.0, quoted(&fewer)),
                narrower.1,
                Verb::Narrowed,
            );
        }
    }

    /// A set of categories; widening is `wider.1`, narrowing not material.
    fn categories(
        &mut self,
        path: String,
        old: &IdSet,
        new: &IdSet,
        wider: (&str, Class),
        narrower: &str,
    ) {
        let (a, b) = (
            Self::category_names(self.old, old),
            Self::category_names(self.new, new),
        );
        self.names(path, &a, &b, wider, (narrower, Class::NotMaterial));
    }

    /// A set of purposes; widening is `wider.1`, narrowing not material.
    fn purposes(
        &mut self,
        path: String,
        old: &IdSet,
        new: &IdSet,
        wider: (&str, Class),
        narrower: &str,
    ) {
        let (a, b) = (
            Self::purpose_names(self.old, old),
            Self::purpose_names(self.new, new),
        );
        self.names(path, &a, &b, wider, (narrower, Class::NotMaterial));
    }

    fn wording(&mut self, path: String, old: &str, new: &str, class: Class) {
        if old != new {
            self.push(path, "reworded".into(), class);
        }
    }

    /// What says what an item is — its taxonomy key and its description: a person decides
    /// whether a change there changes its meaning.
    fn meaning(&mut self, path: &str, taxonomy: (&str, &str), description: (&str, &str)) {
        let review = Class::NeedsReview;
        self.text(
            format!("{path}.taxonomy"),
            "taxonomy",
            taxonomy.0,
            taxonomy.1,
            review,
        );
        self.wording(
            format!("{path}.description"),
            description.0,
            description.1,
            review,
        );
    }

    /// A description in other languages: each language's text reviewed as the description is.
    fn translations(&mut self, path: &str, old: &[(String, String)], new: &[(String, String)]) {
        for lang in crate::model::LANGUAGES {
            let text = |all: &[(String, String)]| {
                all.iter()
                    .find(|(l, _)| l == lang)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default()
            };
            self.wording(
                format!("{path}.description_in.{lang}"),
                &text(old),
                &text(new),
                Class::NeedsReview,
            );
        }
    }

    fn text(&mut self, path: String, what: &str, old: &str, new: &str, class: Class) {
        if old != new {
            self.push(path, format!("{what} `{old}` -> `{new}`"), class);
        }
    }

    fn basis(&mut self, path: String, old: Basis, new: Basis) {
        if old != new {
            // Moving away from consent takes the subject's choice away.
            let class = if old == Basis::Consent {
                Class::Material
            } else {
                Class::NotMaterial
            };
            self.push(
                path,
                format!("basis {} -> {}", old.as_str(), new.as_str()),
                class,
            );
        }
    }

    fn policy(&mut self) {
        let Policy {
            schema,
            name,
            version,
            effective,
            regions,
            language,
            deadlines,
            incidents,
            categories,
            features,
            purposes,
            roles,
            recipients,
            cookies,
            // Derived from the categories, compared there.
            sensitive: _,
            // Describes this diff, not the statement.
            review: _,
            // Lookup tables over the lists above.
            names: _,
            // The text: its every difference is one of the fields above.
            source: _,
        } = self.new;
        let o = self.old;
        if o.schema != *schema {
            self.push(
                "schema".into(),
                format!("file format {} -> {schema}", o.schema),
                Class::NotMaterial,
            );
        }
        self.text(
            "policy.name".into(),
            "title",
            &o.name,
            name,
            Class::NotMaterial,
        );
        self.text(
            "policy.version".into(),
            "version",
            &o.version,
            version,
            Class::NotMaterial,
        );
        if o.effective != *effective {
            self.push(
                "policy.effective".into(),
                format!("effective date {} -> {effective}", o.effective),
                Class::NotMaterial,
            );
        }
        self.names(
            "policy.regions".into(),
            &o.regions,
            regions,
            ("new storage region", Class::Material),
            ("storage region removed:", Class::NotMaterial),
        );
        self.text(
            "policy.language".into(),
            "language subjects are written to by default",
            &o.language,
            language,
            Class::NotMaterial,
        );
        self.deadlines(&o.deadlines, deadlines);
        self.incidents(&o.incidents, incidents);

        let n = self.new;
        self.items(
            ("categories", "category"),
            (&o.categories, categories),
            |c| &c.name,
            |c| (format!("new category `{}`", c.name), Class::Material),
            Self::category,
        );
        self.items(
            ("features", "feature"),
            (&o.features, features),
            |f| &f.name,
            |f| {
                let collects = Self::category_names(n, &f.collects());
                let summary = format!("new feature `{}` collecting {}", f.name, quoted(&collects));
                (summary, Class::Material)
            },
            Self::feature,
        );
        self.items(
            ("purposes", "purpose"),
            (&o.purposes, purposes),
            |p| &p.name,
            |p| {
                let reads = Self::category_names(n, &p.reads);
                let summary = format!(
                    "new purpose `{}` ({}) reading {}",
                    p.name,
                    p.basis.as_str(),
                    quoted(&reads)
                );
                (summary, Class::Material)
            },
            Self::purpose,
        );
        self.items(
            ("roles", "role"),
            (&o.roles, roles),
            |r| &r.name,
            |r| (format!("new role `{}`", r.name), Class::NotMaterial),
            Self::role,
        );
        self.items(
            ("recipients", "recipient"),
            (&o.recipients, recipients),
            |r| &r.name,
            |r| {
                let receives = Self::category_names(n, &r.categories);
                let summary = format!(
                    "new recipient `{}` ({}, {}, {}) receiving {}",
                    r.name,
                    r.legal_name,
                    r.kind.as_str(),
                    r.region,
                    quoted(&receives)
                );
                (summary, Class::Material)
            },
            Self::recipient,
        );
        self.items(
            ("cookies", "cookie"),
            (&o.cookies, cookies),
            |c| &c.name,
            |c| (format!("new cookie `{}`", c.name), Class::Material),
            Self::cookie,
        );
    }

    /// One table of named items: each new one (`added` says how), each kept one compared field
    /// by field (`changed`), then each removed one.
    fn items<T>(
        &mut self,
        (table, kind): (&str, &str),
        (old, new): (&[T], &[T]),
        name: fn(&T) -> &String,
        added: impl Fn(&T) -> (String, Class),
        changed: fn(&mut Self, &T, &T),
    ) {
        for item in new {
            match old.iter().find(|o| name(o) == name(item)) {
                None => {
                    let (summary, class) = added(item);
                    self.push_verb(
                        format!("{table}.{}", name(item)),
                        summary,
                        class,
                        Verb::Added,
                    );
                }
                Some(before) => changed(self, before, item),
            }
        }
        for item in old {
            if !new.iter().any(|n| name(n) == name(item)) {
                let gone = name(item);
                self.push_verb(
                    format!("{table}.{gone}"),
                    format!("{kind} `{gone}` removed"),
                    Class::NotMaterial,
                    Verb::Removed,
                );
            }
        }
    }

    fn deadlines(&mut self, old: &Deadlines, new: &Deadlines) {
        let Deadlines {
            request_days,
            inquiry_days,
            incident_report_hours,
            change_notice_days,
            erasure_days,
        } = *new;
        // More time to answer, erase or report is slower for users: material.
        let slower = [
            ("request_days", old.request_days, request_days),
            ("inquiry_days", old.inquiry_days, inquiry_days),
            (
                "incident_report_hours",
                old.incident_report_hours,
                incident_report_hours,
            ),
            ("erasure_days", old.erasure_days, erasure_days),
        ];
        for (key, a, b) in slower {
            if a != b {
                let class = if b > a {
                    Class::Material
                } else {
                    Class::NotMaterial
                };
                self.push(
                    format!("deadlines.{key}"),
                    format!("{key} {a} -> {b}"),
                    class,
                );
            }
        }
        let (a, b) = (old.change_notice_days, change_notice_days);
        if a != b {
            // A shorter notice period gives users less warning.
            let class = if b < a {
                Class::Material
            } else {
                Class::NotMaterial
            };
            self.push(
                "deadlines.change_notice_days".into(),
                format!("change_notice_days {a} -> {b}"),
                class,
            );
        }
    }

    /// Reporting incidents later, or to fewer authorities, is worse for users: material.
    fn incidents(&mut self, old: &Incidents, new: &Incidents) {
        if old.cii != new.cii {
            self.push(
                "incidents.cii".into(),
                format!(
                    "critical information infrastructure {} -> {}",
                    old.cii, new.cii
                ),
                Class::NotMaterial,
            );
        }
        self.text(
            "incidents.contact".into(),
            "incident contact",
            &old.contact,
            &new.contact,
            Class::NotMaterial,
        );
        for o in &old.reports {
            let path = format!("incidents.reports.{}", o.name);
            let Some(n) = new.reports.iter().find(|n| n.name == o.name) else {
                self.push(
                    path,
                    format!("report to {} removed", o.authority),
                    Class::Material,
                );
                continue;
            };
            if n == o {
                continue;
            }
            let later = n.hours > o.hours
                || n.cii_hours.unwrap_or(n.hours) > o.cii_hours.unwrap_or(o.hours)
                || n.final_days.unwrap_or(u32::MAX) > o.final_days.unwrap_or(u32::MAX)
                || n.min_grade > o.min_grade;
            let class = if later {
                Class::Material
            } else {
                Class::NotMaterial
            };
            self.push(path, format!("report to {} changed", n.authority), class);
        }
        for n in new
            .reports
            .iter()
            .filter(|n| !old.reports.iter().any(|o| o.name == n.name))
        {
            self.push(
                format!("incidents.reports.{}", n.name),
                format!("new report to {}", n.authority),
                Class::NotMaterial,
            );
        }
    }

    fn category(&mut self, o: &Category, c: &Category) {
        let Category {
            id: _,
            name,
            taxonomy,
            description,
            description_in,
            sensitive,
            lookup,
            retention,
        } = c;
        let path = format!("categories.{name}");
        self.meaning(
            &path,
            (&o.taxonomy, taxonomy),
            (&o.description, description),
        );
        self.translations(&path, &o.description_in, description_in);
        if o.sensitive != *sensitive {
            let (summary, class) = if *sensitive {
                ("now marked sensitive", Class::NotMaterial)
            } else {
                ("no longer marked sensitive", Class::Material)
            };
            self.push(format!("{path}.sensitive"), summary.into(), class);
        }
        if o.lookup != *lookup {
            // A blind index lets the provider find a subject by the value: a new use.
            let (summary, class) = if *lookup {
                ("now kept searchable (blind index)", Class::Material)
            } else {
                ("no longer kept searchable", Class::NotMaterial)
            };
            self.push(format!("{path}.lookup"), summary.into(), class);
        }
        self.retention(format!("{path}.retention"), &o.retention, retention);
    }

    fn retention(&mut self, path: String, old: &Retention, new: &Retention) {
        let Retention { from, days } = *new;
        if old.from != from || old.days != days {
            let class = if new.longer_than(old) {
                Class::Material
            } else {
                Class::NotMaterial
            };
            self.push(
                path,
                format!("retention {} -> {}", old.describe(), new.describe()),
                class,
            );
        }
    }

    fn feature(&mut self, o: &Feature, f: &Feature) {
        let Feature {
            id: _,
            name,
            description,
            basis,
            required,
            optional,
            separate_consent,
        } = f;
        let path = format!("features.{name}");
        self.wording(
            format!("{path}.description"),
            &o.description,
            description,
            Class::NeedsReview,
        );
        self.basis(format!("{path}.basis"), o.basis, *basis);
        self.categories(
            format!("{path}.required"),
            &o.required,
            required,
            ("now requires", Class::Material),
            "no longer requires",
        );
        // A category newly optional is a new collection unless it was required before.
        let (old_optional, new_optional, old_required) = (
            Self::category_names(self.old, &o.optional),
            Self::category_names(self.new, optional),
            Self::category_names(self.old, &o.required),
        );
        let (was_required, new): (Vec<String>, Vec<String>) =
            missing_from(&old_optional, &new_optional)
                .into_iter()
                .partition(|n| old_required.contains(n));
        if !new.is_empty() {
            self.push(
                format!("{path}.optional"),
                format!("may now also collect {}", quoted(&new)),
                Class::Material,
            );
        }
        if !was_required.is_empty() {
            self.push(
                format!("{path}.optional"),
                format!("now optional: {}", quoted(&was_required)),
                Class::NotMaterial,
            );
        }
        let fewer = missing_from(&new_optional, &old_optional);
        if !fewer.is_empty() {
            self.push(
                format!("{path}.optional"),
                format!("no longer optional: {}", quoted(&fewer)),
                Class::NotMaterial,
            );
        }
        // Less separate consent is the material direction.
        let (a, b) = (
            Self::category_names(self.old, &o.separate_consent),
            Self::category_names(self.new, separate_consent),
        );
        self.names(
            format!("{path}.separate_consent"),
            &a,
            &b,
            ("now asks separate consent for", Class::NotMaterial),
            ("no longer asks separate consent for", Class::Material),
        );
    }

    fn purpose(&mut self, o: &Purpose, p: &Purpose) {
        let Purpose {
            id: _,
            name,
            taxonomy,
            description,
            description_in,
            basis,
            reads,
            related,
        } = p;
        let path = format!("purposes.{name}");
        self.meaning(
            &path,
            (&o.taxonomy, taxonomy),
            (&o.description, description),
        );
        self.translations(&path, &o.description_in, description_in);
        self.basis(format!("{path}.basis"), o.basis, *basis);
        self.categories(
            format!("{path}.reads"),
            &o.reads,
            reads,
            ("may now also read", Class::Material),
            "no longer reads",
        );
        // A related purpose may use what this one collected without new consent (P11).
        let old_related: Vec<String> = o
            .related
            .iter()
            .map(|id| self.old.purpose(*id).name.clone())
            .collect();
        let new_related: Vec<String> = related
            .iter()
            .map(|id| self.new.purpose(*id).name.clone())
            .collect();
        self.names(
            format!("{path}.related"),
            &old_related,
            &new_related,
            ("now also related to", Class::Material),
            ("no longer related to", Class::NotMaterial),
        );
    }

    fn role(&mut self, o: &Role, r: &Role) {
        let Role {
            id: _,
            name,
            description,
            purposes,
            justification,
            may,
        } = r;
        // Roles are internal to the provider: never material, always listed.
        let path = format!("roles.{name}");
        self.wording(
            format!("{path}.description"),
            &o.description,
            description,
            Class::NotMaterial,
        );
        self.purposes(
            format!("{path}.purposes"),
            &o.purposes,
            purposes,
            ("may now act for", Class::NotMaterial),
            "may no longer act for",
        );
        if o.justification != *justification {
            self.push(
                format!("{path}.justification"),
                format!(
                    "justification required: {} -> {}",
                    yes_no(o.justification),
                    yes_no(*justification)
                ),
                Class::NotMaterial,
            );
        }
        let words = |c: &crate::model::Capabilities| -> Vec<String> {
            c.iter().map(|x| x.as_str().to_string()).collect()
        };
        self.names(
            format!("{path}.may"),
            &words(&o.may),
            &words(may),
            ("may now", Class::NotMaterial),
            ("may no longer", Class::NotMaterial),
        );
    }

    fn recipient(&mut self, o: &Recipient, r: &Recipient) {
        let Recipient {
            id: _,
            name,
            legal_name,
            kind,
            purposes,
            categories,
            agreement,
            region,
            // Derived from the region and the policy's regions; reported with the region.
            cross_border: _,
        } = r;
        let path = format!("recipients.{name}");
        // Another legal name is another company receiving the data.
        self.text(
            format!("{path}.legal_name"),
            "legal name",
            &o.legal_name,
            legal_name,
            Class::Material,
        );
        if o.kind != *kind {
            self.push(
                format!("{path}.kind"),
                format!("kind {} -> {}", o.kind.as_str(), kind.as_str()),
                Class::Material,
            );
        }
        self.purposes(
            format!("{path}.purposes"),
            &o.purposes,
            purposes,
            ("may now also receive data for", Class::Material),
            "no longer receives data for",
        );
        self.categories(
            format!("{path}.categories"),
            &o.categories,
            categories,
            ("may now also receive", Class::Material),
            "no longer receives",
        );
        self.text(
            format!("{path}.agreement"),
            "agreement",
            &o.agreement,
            agreement,
            Class::NotMaterial,
        );
        if o.region != *region || o.cross_border != r.cross_border {
            let abroad = if r.cross_border {
                " (abroad)"
            } else {
                " (within the storage regions)"
            };
            self.push(
                format!("{path}.region"),
                format!("region `{}` -> `{region}`{abroad}", o.region),
                Class::Material,
            );
        }
    }

    fn cookie(&mut self, o: &Cookie, c: &Cookie) {
        let Cookie {
            name,
            description,
            description_in,
            purpose,
            lifetime_days,
        } = c;
        let path = format!("cookies.{name}");
        self.wording(
            format!("{path}.description"),
            &o.description,
            description,
            Class::NeedsReview,
        );
        self.translations(&path, &o.description_in, description_in);
        let (op, np) = (self.old.purpose(o.purpose), self.new.purpose(*purpose));
        if op.name != np.name {
            self.push(
                format!("{path}.purpose"),
                format!("purpose `{}` -> `{}`", op.name, np.name),
                Class::Material,
            );
        }
        if o.lifetime_days != *lifetime_days {
            let class = if *lifetime_days > o.lifetime_days {
                Class::Material
            } else {
                Class::NotMaterial
            };
            self.push(
                format!("{path}.lifetime_days"),
                format!(
                    "lifetime {} -> {}",
                    crate::model::days(o.lifetime_days),
                    crate::model::days(*lifetime_days)
                ),
                class,
            );
        }
    }
}

/// Every difference from `old` to `new`, in a stable order (the new file's order, then what it
/// removed). A change is acknowledged when `new`'s `[review]` table was written against `old`'s
/// version and names the change's path.
pub fn diff(old: &Policy, new: &Policy) -> Vec<Change> {
    let acknowledged: &[String] = match &new.review {
        Some(Review { from, acknowledged }) if *from == old.version => acknowledged,
        _ => &[],
    };
    let mut d = Diff {
        out: Vec::new(),
        old,
        new,
        acknowledged,
    };
    d.policy();
    d.mark_reconsent();
    d.out
}
