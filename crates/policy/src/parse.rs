//! Text -> spanned TOML tree -> validated, compiled [`Policy`].
//!
//! The reader walks the spanned tree itself instead of deriving `Deserialize`, so that it can
//! report every problem at once (unknown keys, wrong types, dangling references, duplicates,
//! contradictions), each at its own line and column.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{Diagnostics, Sink};
use crate::ids::{CategoryId, FeatureId, IdSet, MAX_IDS, PurposeId, RecipientId, RoleId};
use crate::model::{
    Basis, Capabilities, Capability, Category, Cookie, Deadlines, Feature, Grade, Incidents, Names,
    Policy, Purpose, Recipient, RecipientKind, ReportRule, Retention, RetentionFrom, Review, Role,
};

/// The schema version this build reads.
pub const SCHEMA_VERSION: u32 = 1;

type Span = Range<usize>;

#[derive(Clone, Debug)]
struct Name {
    text: String,
    span: Span,
}

/// One TOML table being read: remembers which keys were consumed.
struct Table<'t, 'i> {
    entries: &'t DeTable<'i>,
    span: Span,
    path: String,
}

impl<'t, 'i> Table<'t, 'i> {
    fn get(&self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.entries.get(key)
    }

    fn here(&self, key: &str) -> String {
        if self.path.is_empty() {
            format!("`{key}`")
        } else {
            format!("`{}.{key}`", self.path)
        }
    }

    fn missing(&self, sink: &mut Sink<'_>, key: &str) {
        sink.error(
            self.span.clone(),
            "missing_key",
            format!("missing required key {}", self.here(key)),
        );
    }

    fn string(&self, sink: &mut Sink<'_>, key: &str, required: bool) -> Option<Name> {
        match self.get(key) {
            None => {
                if required {
                    self.missing(sink, key);
                }
                None
            }
            Some(v) => match v.get_ref() {
                DeValue::String(s) => Some(Name {
                    text: s.to_string(),
                    span: v.span(),
                }),
                other => {
                    type_error(sink, v.span(), &self.here(key), "a string", other);
                    None
                }
            },
        }
    }

    fn text(&self, sink: &mut Sink<'_>, key: &str) -> String {
        self.string(sink, key, false)
            .map(|n| n.text)
            .unwrap_or_default()
    }

    fn boolean(&self, sink: &mut Sink<'_>, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => *b,
                other => {
                    type_error(sink, v.span(), &self.here(key), "true or false", other);
                    default
                }
            },
        }
    }

    fn count(&self, sink: &mut Sink<'_>, key: &str, default: Option<u32>) -> Option<u32> {
        match self.get(key) {
            None => {
                if default.is_none() {
                    self.missing(sink, key);
                }
                default
            }
            Some(v) => match v.get_ref() {
                DeValue::Integer(i) => match u32::from_str_radix(i.as_str(), i.radix()) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        sink.error(
                            v.span(),
                            "invalid_value",
                            format!(
                                "{} must be a whole number from 0 to {}",
                                self.here(key),
                                u32::MAX
                            ),
                        );
                        default
                    }
                },
                other => {
                    type_error(sink, v.span(), &self.here(key), "a whole number", other);
                    default
                }
            },
        }
    }

    /// A table of texts by language (`{ "zh-CN" = "…" }`), each key one of the languages
    /// Steward writes in; absent, none.
    fn translations(&self, sink: &mut Sink<'_>, key: &str) -> Vec<(String, String)> {
        let Some(t) = self.table(sink, key, false) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in t.entries.iter() {
            let lang = k.get_ref().to_string();
            if !crate::model::LANGUAGES.contains(&lang.as_str()) {
                sink.error(
                    k.span(),
                    "invalid_value",
                    format!(
                        "`{lang}` in {} is not a language Steward writes in; expected one of: {}",
                        self.here(key),
                        crate::model::LANGUAGES.join(", ")
                    ),
                );
                continue;
            }
            match v.get_ref() {
                DeValue::String(s) => out.push((lang, s.to_string())),
                other => type_error(sink, v.span(), &t.here(&lang), "a string", other),
            }
        }
        out
    }

    /// An array of names; each element keeps its own span.
    fn names(&self, sink: &mut Sink<'_>, key: &str, required: bool) -> Vec<Name> {
        let Some(v) = self.get(key) else {
            if required {
                self.missing(sink, key);
            }
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            type_error(
                sink,
                v.span(),
                &self.here(key),
                "a list of names",
                v.get_ref(),
            );
            return Vec::new();
        };
        let mut out: Vec<Name> = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => {
                    if out.iter().any(|n| n.text == s.as_ref()) {
                        sink.error(
                            item.span(),
                            "duplicate",
                            format!("`{s}` is listed twice in {}", self.here(key)),
                        );
                    } else {
                        out.push(Name {
                            text: s.to_string(),
                            span: item.span(),
                        });
                    }
                }
                other => type_error(sink, item.span(), &self.here(key), "a name", other),
            }
        }
        out
    }

    fn table(&self, sink: &mut Sink<'_>, key: &str, required: bool) -> Option<Table<'t, 'i>> {
        let Some(v) = self.get(key) else {
            if required {
                self.missing(sink, key);
            }
            return None;
        };
        match v.get_ref() {
            DeValue::Table(t) => Some(Table {
                entries: t,
                span: v.span(),
                path: if self.path.is_empty() {
                    key.to_string()
                } else {
                    format!("{}.{key}", self.path)
                },
            }),
            other => {
                type_error(sink, v.span(), &self.here(key), "a table", other);
                None
            }
        }
    }

    /// The sub-tables of a table of named items, such as `[features.*]`.
    fn items(&self, sink: &mut Sink<'_>, key: &str) -> Vec<(Name, Table<'t, 'i>)> {
        let Some(outer) = self.table(sink, key, false) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in outer.entries.iter() {
            let name = Name {
                text: k.get_ref().to_string(),
                span: k.span(),
            };
            check_name(sink, &name);
            match v.get_ref() {
                DeValue::Table(t) => out.push((
                    name.clone(),
                    Table {
                        entries: t,
                        span: k.span(),
                        path: format!("{key}.{}", name.text),
                    },
                )),
                other => type_error(
                    sink,
                    v.span(),
                    &format!("`{key}.{}`", name.text),
                    "a table",
                    other,
                ),
            }
        }
        out
    }

    /// Reports every key not in `allowed`.
    fn finish(&self, sink: &mut Sink<'_>, allowed: &[&str]) {
        for (k, _) in self.entries.iter() {
            if !allowed.contains(&k.get_ref().as_ref()) {
                let place = if self.path.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in `{}`", self.path)
                };
                sink.error(
                    k.span(),
                    "unknown_key",
                    format!(
                        "unknown key `{}` {place}; expected one of: {}",
                        k.get_ref(),
                        allowed.join(", ")
                    ),
                );
            }
        }
    }
}

fn kind_of(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

fn type_error(sink: &mut Sink<'_>, span: Span, place: &str, expected: &str, got: &DeValue<'_>) {
    sink.error(
        span,
        "wrong_type",
        format!("{place} must be {expected}, found {}", kind_of(got)),
    );
}

fn check_name(sink: &mut Sink<'_>, name: &Name) {
    let ok = !name.text.is_empty()
        && name.text.len() <= 64
        && name
            .text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        sink.error(
            name.span.clone(),
            "invalid_name",
            format!(
                "name `{}` must be 1 to 64 characters of a-z, 0-9 and _",
                name.text.escape_default()
            ),
        );
    }
}

fn basis(sink: &mut Sink<'_>, table: &Table<'_, '_>, allowed: &[Basis]) -> Basis {
    let Some(name) = table.string(sink, "basis", true) else {
        return Basis::Contract;
    };
    match Basis::parse(&name.text).filter(|b| allowed.contains(b)) {
        Some(b) => b,
        None => {
            let words: Vec<&str> = allowed.iter().map(|b| b.as_str()).collect();
            sink.error(
                name.span,
                "invalid_value",
                format!(
                    "{} must be one of: {}",
                    table.here("basis"),
                    words.join(", ")
                ),
            );
            Basis::Contract
        }
    }
}

const ALL_BASES: [Basis; 3] = [Basis::Contract, Basis::Consent, Basis::LegalObligation];

struct RawCategory {
    name: Name,
    taxonomy: String,
    description: String,
    description_in: Vec<(String, String)>,
    sensitive: bool,
    lookup: bool,
    retention: Retention,
}

struct RawFeature {
    name: Name,
    description: String,
    basis: Basis,
    required: Vec<Name>,
    optional: Vec<Name>,
    separate_consent: Vec<Name>,
}

struct RawPurpose {
    name: Name,
    taxonomy: String,
    description: String,
    description_in: Vec<(String, String)>,
    basis: Basis,
    reads: Vec<Name>,
    related: Vec<Name>,
}

struct RawRole {
    name: Name,
    description: String,
    purposes: Vec<Name>,
    justification: bool,
    may: Capabilities,
}

struct RawRecipient {
    name: Name,
    legal_name: String,
    kind: RecipientKind,
    purposes: Vec<Name>,
    categories: Vec<Name>,
    agreement: String,
    region: Name,
}

struct RawCookie {
    name: Name,
    description: String,
    description_in: Vec<(String, String)>,
    purpose: Option<Name>,
    lifetime_days: u32,
}

/// Resolves names of one kind to dense ids, reporting dangling references.
struct Resolver<'a, T> {
    map: &'a HashMap<String, T>,
    kind: &'static str,
}

impl<T: Copy> Resolver<'_, T> {
    fn one(&self, sink: &mut Sink<'_>, name: &Name, place: &str) -> Option<T> {
        let found = self.map.get(&name.text).copied();
        if found.is_none() {
            sink.error(
                name.span.clone(),
                "dangling_reference",
                format!(
                    "{place} names {} `{}`, which is not declared",
                    self.kind, name.text
                ),
            );
        }
        found
    }
}

fn register<T>(
    sink: &mut Sink<'_>,
    names: &[&Name],
    kind: &'static str,
    make: impl Fn(u16) -> T,
) -> HashMap<String, T> {
    let mut map = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        match u16::try_from(i) {
            Ok(n) if i < MAX_IDS => {
                map.insert(name.text.clone(), make(n));
            }
            _ => {
                sink.error(
                    name.span.clone(),
                    "too_many",
                    format!("a policy may declare at most {MAX_IDS} {kind}s"),
                );
                break;
            }
        }
    }
    map
}

fn set_of(
    sink: &mut Sink<'_>,
    names: &[Name],
    resolver: &Resolver<'_, CategoryId>,
    place: &str,
) -> IdSet {
    names
        .iter()
        .filter_map(|n| resolver.one(sink, n, place))
        .map(CategoryId::index)
        .collect()
}

fn purpose_set(
    sink: &mut Sink<'_>,
    names: &[Name],
    resolver: &Resolver<'_, PurposeId>,
    place: &str,
) -> IdSet {
    names
        .iter()
        .filter_map(|n| resolver.one(sink, n, place))
        .map(PurposeId::index)
        .collect()
}

fn read_date(sink: &mut Sink<'_>, table: &Table<'_, '_>, key: &str) -> Option<time::Date> {
    let Some(v) = table.get(key) else {
        table.missing(sink, key);
        return None;
    };
    let date = match v.get_ref() {
        DeValue::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt.date,
        _ => None,
    };
    let parsed = date.and_then(|d| {
        let month = time::Month::try_from(d.month).ok()?;
        time::Date::from_calendar_date(i32::from(d.year), month, d.day).ok()
    });
    if parsed.is_none() {
        sink.error(
            v.span(),
            "invalid_value",
            format!(
                "{} must be a date such as 2025-01-31 (no quotes, no time)",
                table.here(key)
            ),
        );
    }
    parsed
}

/// Parses and validates a policy file. `file` is only used to locate errors.
pub fn parse(src: &str, file: &str) -> Result<Policy, Diagnostics> {
    let mut sink = Sink::new(src);
    let (doc, syntax_errors) = DeTable::parse_recoverable(src);
    for e in &syntax_errors {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim_end_matches('.').to_lowercase();
        sink.error(span, "syntax", message);
    }
    if !syntax_errors.is_empty() {
        return Err(sink.finish(file));
    }
    let root = Table {
        entries: doc.get_ref(),
        span: doc.span(),
        path: String::new(),
    };

    // --- header ---
    let schema = root.count(&mut sink, "schema", None).unwrap_or(0);
    if let Some(v) = root.get("schema")
        && schema != SCHEMA_VERSION
        && matches!(v.get_ref(), DeValue::Integer(_))
    {
        sink.error(
            v.span(),
            "unsupported_schema",
            format!("schema {schema} is not supported; this build reads schema {SCHEMA_VERSION}"),
        );
    }
    let mut name = String::new();
    let mut version = String::new();
    let mut effective = None;
    let mut regions: Vec<Name> = Vec::new();
    let mut language = crate::model::LANGUAGES[0].to_string();
    if let Some(header) = root.table(&mut sink, "policy", true) {
        name = header
            .string(&mut sink, "name", true)
            .map(|n| n.text)
            .unwrap_or_default();
        version = header
            .string(&mut sink, "version", true)
            .map(|n| n.text)
            .unwrap_or_default();
        effective = read_date(&mut sink, &header, "effective");
        regions = header.names(&mut sink, "regions", true);
        if regions.is_empty() && header.get("regions").is_some() {
            sink.error(
                header.span.clone(),
                "invalid_value",
                "`policy.regions` must name at least one storage region".to_string(),
            );
        }
        if let Some(l) = header.string(&mut sink, "language", false) {
            if crate::model::LANGUAGES.contains(&l.text.as_str()) {
                language = l.text;
            } else {
                sink.error(
                    l.span.clone(),
                    "invalid_value",
                    format!(
                        "`policy.language` is one of: {}",
                        crate::model::LANGUAGES.join(", ")
                    ),
                );
            }
        }
        header.finish(
            &mut sink,
            &["name", "version", "effective", "regions", "language"],
        );
    }

    let mut deadlines = Deadlines {
        request_days: 30,
        inquiry_days: 30,
        incident_report_hours: 72,
        change_notice_days: 30,
        erasure_days: 30,
    };
    if let Some(t) = root.table(&mut sink, "deadlines", false) {
        let d = &mut deadlines;
        d.request_days = t
            .count(&mut sink, "request_days", Some(d.request_days))
            .unwrap_or(d.request_days);
        d.inquiry_days = t
            .count(&mut sink, "inquiry_days", Some(d.inquiry_days))
            .unwrap_or(d.inquiry_days);
        d.incident_report_hours = t
            .count(
                &mut sink,
                "incident_report_hours",
                Some(d.incident_report_hours),
            )
            .unwrap_or(d.incident_report_hours);
        d.change_notice_days = t
            .count(&mut sink, "change_notice_days", Some(d.change_notice_days))
            .unwrap_or(d.change_notice_days);
        d.erasure_days = t
            .count(&mut sink, "erasure_days", Some(d.erasure_days))
            .unwrap_or(d.erasure_days);
        t.finish(
            &mut sink,
            &[
                "request_days",
                "inquiry_days",
                "incident_report_hours",
                "change_notice_days",
                "erasure_days",
            ],
        );
    }

    let mut incidents = Incidents {
        cii: false,
        contact: String::new(),
        reports: Vec::new(),
    };
    let incidents_table = root.table(&mut sink, "incidents", false);
    if let Some(t) = &incidents_table {
        incidents.cii = t.boolean(&mut sink, "cii", false);
        incidents.contact = t.text(&mut sink, "contact");
        for (rname, r) in t.items(&mut sink, "reports") {
            let hours = r.count(&mut sink, "hours", None).unwrap_or(0);
            if hours == 0 {
                sink.error(
                    r.span.clone(),
                    "invalid_value",
                    format!("{} must be at least 1", r.here("hours")),
                );
            }
            let min_grade = match r.string(&mut sink, "min_grade", false) {
                None => Grade::General,
                Some(g) => Grade::parse(&g.text).unwrap_or_else(|| {
                    sink.error(
                        g.span.clone(),
                        "invalid_value",
                        format!(
                            "{} must be one of: {}",
                            r.here("min_grade"),
                            Grade::ALL.map(Grade::as_str).join(", ")
                        ),
                    );
                    Grade::General
                }),
            };
            let from_detection = match r.string(&mut sink, "from", false) {
                None => false,
                Some(f) if f.text == "detected" => true,
                Some(f) if f.text == "known" => false,
                Some(f) => {
                    sink.error(
                        f.span.clone(),
                        "invalid_value",
                        format!("{} must be `detected` or `known`", r.here("from")),
                    );
                    false
                }
            };
            let authority = r.string(&mut sink, "authority", true).map(|n| n.text);
            let rule = ReportRule {
                name: rname.text.clone(),
                authority: authority.unwrap_or_default(),
                basis: r.text(&mut sink, "basis"),
                from_detection,
                hours,
                cii_hours: r
                    .get("cii_hours")
                    .and(r.count(&mut sink, "cii_hours", Some(0))),
                final_days: r
                    .get("final_days")
                    .and(r.count(&mut sink, "final_days", Some(0))),
                min_grade,
            };
            r.finish(
                &mut sink,
                &[
                    "authority",
                    "basis",
                    "from",
                    "hours",
                    "cii_hours",
                    "final_days",
                    "min_grade",
                ],
            );
            incidents.reports.push(rule);
        }
        t.finish(&mut sink, &["cii", "contact", "reports"]);
    }
    if incidents_table.is_none() {
        incidents.reports.push(ReportRule {
            name: "authority".into(),
            authority: "the supervisory authority".into(),
            basis: "deadlines.incident_report_hours".into(),
            from_detection: false,
            hours: deadlines.incident_report_hours,
            cii_hours: None,
            final_days: None,
            min_grade: Grade::General,
        });
    }

    // --- categories ---
    let mut raw_categories = Vec::new();
    for (cname, t) in root.items(&mut sink, "categories") {
        let taxonomy = t.string(&mut sink, "taxonomy", true);
        if let Some(tx) = &taxonomy {
            let ok = !tx.text.is_empty()
                && tx.text.split('.').all(|p| {
                    !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                });
            if !ok {
                sink.error(
                    tx.span.clone(),
                    "invalid_value",
                    format!(
                        "{} must be a Fides taxonomy key such as `user.contact.email`",
                        t.here("taxonomy")
                    ),
                );
            }
        }
        let retention = match t.table(&mut sink, "retention", true) {
            Some(r) => {
                let from = match r.string(&mut sink, "from", true) {
                    Some(n) if n.text == "account_closed" => RetentionFrom::AccountClosed,
                    Some(n) if n.text == "collected" => RetentionFrom::Collected,
                    Some(n) => {
                        sink.error(
                            n.span,
                            "invalid_value",
                            format!("{} must be `account_closed` or `collected`", r.here("from")),
                        );
                        RetentionFrom::AccountClosed
                    }
                    None => RetentionFrom::AccountClosed,
                };
                let days = r.count(&mut sink, "days", None).unwrap_or(0);
                r.finish(&mut sink, &["from", "days"]);
                Retention { from, days }
            }
            None => Retention {
                from: RetentionFrom::AccountClosed,
                days: 0,
            },
        };
        raw_categories.push(RawCategory {
            taxonomy: taxonomy.map(|n| n.text).unwrap_or_default(),
            description: t.text(&mut sink, "description"),
            description_in: t.translations(&mut sink, "description_in"),
            sensitive: t.boolean(&mut sink, "sensitive", false),
            lookup: t.boolean(&mut sink, "lookup", false),
            retention,
            name: cname,
        });
        t.finish(
            &mut sink,
            &[
                "taxonomy",
                "description",
                "description_in",
                "sensitive",
                "lookup",
                "retention",
            ],
        );
    }

    // --- features ---
    let mut raw_features = Vec::new();
    for (fname, t) in root.items(&mut sink, "features") {
        raw_features.push(RawFeature {
            description: t.text(&mut sink, "description"),
            basis: basis(&mut sink, &t, &ALL_BASES),
            required: t.names(&mut sink, "required", false),
            optional: t.names(&mut sink, "optional", false),
            separate_consent: t.names(&mut sink, "separate_consent", false),
            name: fname,
        });
        t.finish(
            &mut sink,
            &[
                "description",
                "basis",
                "required",
                "optional",
                "separate_consent",
            ],
        );
    }

    // --- purposes ---
    let mut raw_purposes = Vec::new();
    for (pname, t) in root.items(&mut sink, "purposes") {
        raw_purposes.push(RawPurpose {
            taxonomy: t
                .string(&mut sink, "taxonomy", true)
                .map(|n| n.text)
                .unwrap_or_default(),
            description: t.text(&mut sink, "description"),
            description_in: t.translations(&mut sink, "description_in"),
            basis: basis(&mut sink, &t, &ALL_BASES),
            reads: t.names(&mut sink, "reads", true),
            related: t.names(&mut sink, "related", false),
            name: pname,
        });
        t.finish(
            &mut sink,
            &[
                "taxonomy",
                "description",
                "description_in",
                "basis",
                "reads",
                "related",
            ],
        );
    }

    // --- roles ---
    let mut raw_roles = Vec::new();
    for (rname, t) in root.items(&mut sink, "roles") {
        raw_roles.push(RawRole {
            description: t.text(&mut sink, "description"),
            purposes: t.names(&mut sink, "purposes", true),
            justification: t.boolean(&mut sink, "justification", false),
            may: {
                let mut may = Capabilities::default();
                for n in t.names(&mut sink, "may", false) {
                    match Capability::parse(&n.text) {
                        Some(c) => may.insert(c),
                        None => {
                            let words: Vec<&str> =
                                Capability::ALL.iter().map(|c| c.as_str()).collect();
                            sink.error(
                                n.span,
                                "invalid_value",
                                format!(
                                    "`{}` is not an operation a role may be given; expected one of: {}",
                                    n.text,
                                    words.join(", ")
                                ),
                            );
                        }
                    }
                }
                may
            },
            name: rname,
        });
        t.finish(
            &mut sink,
            &["description", "purposes", "justification", "may"],
        );
    }

    // --- recipients ---
    let mut raw_recipients = Vec::new();
    for (rname, t) in root.items(&mut sink, "recipients") {
        let kind = match t.string(&mut sink, "kind", true) {
            Some(k) => RecipientKind::parse(&k.text).unwrap_or_else(|| {
                sink.error(
                    k.span,
                    "invalid_value",
                    format!(
                        "{} must be one of: affiliate, processor, contractor, agent, successor",
                        t.here("kind")
                    ),
                );
                RecipientKind::Processor
            }),
            None => RecipientKind::Processor,
        };
        let agreement = t.string(&mut sink, "agreement", true);
        if let Some(a) = &agreement
            && a.text.trim().is_empty()
        {
            sink.error(
                a.span.clone(),
                "invalid_value",
                format!(
                    "{} must name the confidentiality agreement that binds the recipient",
                    t.here("agreement")
                ),
            );
        }
        raw_recipients.push(RawRecipient {
            legal_name: t
                .string(&mut sink, "legal_name", true)
                .map(|n| n.text)
                .unwrap_or_default(),
            kind,
            purposes: t.names(&mut sink, "purposes", true),
            categories: t.names(&mut sink, "categories", true),
            agreement: agreement.map(|n| n.text).unwrap_or_default(),
            region: t.string(&mut sink, "region", true).unwrap_or(Name {
                text: String::new(),
                span: t.span.clone(),
            }),
            name: rname,
        });
        t.finish(
            &mut sink,
            &[
                "legal_name",
                "kind",
                "purposes",
                "categories",
                "agreement",
                "region",
            ],
        );
    }

    // --- cookies ---
    let mut raw_cookies = Vec::new();
    for (cname, t) in root.items(&mut sink, "cookies") {
        raw_cookies.push(RawCookie {
            description: t.text(&mut sink, "description"),
            description_in: t.translations(&mut sink, "description_in"),
            purpose: t.string(&mut sink, "purpose", true),
            lifetime_days: t.count(&mut sink, "lifetime_days", None).unwrap_or(0),
            name: cname,
        });
        t.finish(
            &mut sink,
            &["description", "description_in", "purpose", "lifetime_days"],
        );
    }

    let review = root.table(&mut sink, "review", false).map(|t| {
        let from = t
            .string(&mut sink, "from", true)
            .map(|n| n.text)
            .unwrap_or_default();
        let acknowledged = t
            .names(&mut sink, "acknowledged", true)
            .into_iter()
            .map(|n| n.text)
            .collect();
        t.finish(&mut sink, &["from", "acknowledged"]);
        Review { from, acknowledged }
    });

    root.finish(
        &mut sink,
        &[
            "schema",
            "policy",
            "review",
            "deadlines",
            "incidents",
            "categories",
            "features",
            "purposes",
            "roles",
            "recipients",
            "cookies",
        ],
    );

    // --- resolve references ---
    let cat_names: Vec<&Name> = raw_categories.iter().map(|c| &c.name).collect();
    let cat_map = register(&mut sink, &cat_names, "category", CategoryId);
    let feat_names: Vec<&Name> = raw_features.iter().map(|c| &c.name).collect();
    let feat_map = register(&mut sink, &feat_names, "feature", FeatureId);
    let purp_names: Vec<&Name> = raw_purposes.iter().map(|c| &c.name).collect();
    let purp_map = register(&mut sink, &purp_names, "purpose", PurposeId);
    let role_names: Vec<&Name> = raw_roles.iter().map(|c| &c.name).collect();
    let role_map = register(&mut sink, &role_names, "role", RoleId);
    let recip_names: Vec<&Name> = raw_recipients.iter().map(|c| &c.name).collect();
    let recip_map = register(&mut sink, &recip_names, "recipient", RecipientId);

    let cats = Resolver {
        map: &cat_map,
        kind: "category",
    };
    let purps = Resolver {
        map: &purp_map,
        kind: "purpose",
    };

    if raw_categories.is_empty() {
        sink.error(
            root.span.clone(),
            "missing_key",
            "the policy declares no `categories`".to_string(),
        );
    }
    if raw_purposes.is_empty() {
        sink.error(
            root.span.clone(),
            "missing_key",
            "the policy declares no `purposes`".to_string(),
        );
    }

    let mut taxonomy_seen: HashMap<&str, &Name> = HashMap::new();
    for c in &raw_categories {
        if c.retention.from == RetentionFrom::AccountClosed
            && c.retention.days > deadlines.erasure_days
        {
            sink.error(
                c.name.span.clone(),
                "contradiction",
                format!(
                    "category `{}` is kept {} days after the account closes, longer than `deadlines.erasure_days` ({}) allows (P28)",
                    c.name.text, c.retention.days, deadlines.erasure_days
                ),
            );
        }
    }
    let mut categories = Vec::with_capacity(raw_categories.len());
    let mut sensitive = IdSet::EMPTY;
    for (i, c) in raw_categories.iter().enumerate().take(MAX_IDS) {
        if let Some(first) = taxonomy_seen.insert(c.taxonomy.as_str(), &c.name) {
            sink.error(
                c.name.span.clone(),
                "duplicate",
                format!(
                    "categories `{}` and `{}` share the taxonomy key `{}`",
                    first.text, c.name.text, c.taxonomy
                ),
            );
        }
        let id = CategoryId(u16::try_from(i).unwrap_or(u16::MAX));
        if c.sensitive {
            sensitive.insert(id.index());
        }
        categories.push(Category {
            id,
            name: c.name.text.clone(),
            taxonomy: c.taxonomy.clone(),
            description: c.description.clone(),
            description_in: c.description_in.clone(),
            sensitive: c.sensitive,
            lookup: c.lookup,
            retention: c.retention,
        });
    }

    let mut features = Vec::with_capacity(raw_features.len());
    for (i, f) in raw_features.iter().enumerate().take(MAX_IDS) {
        let place = format!("feature `{}`", f.name.text);
        let required = set_of(&mut sink, &f.required, &cats, &place);
        let optional = set_of(&mut sink, &f.optional, &cats, &place);
        let separate = set_of(&mut sink, &f.separate_consent, &cats, &place);
        for n in &f.optional {
            if f.required.iter().any(|r| r.text == n.text) {
                sink.error(
                    n.span.clone(),
                    "duplicate",
                    format!("{place} lists `{}` as both required and optional", n.text),
                );
            }
        }
        if f.required.is_empty() && f.optional.is_empty() {
            sink.error(
                f.name.span.clone(),
                "invalid_value",
                format!("{place} collects no category; list `required` or `optional` ones"),
            );
        }
        let collects = required.union(&optional);
        for n in &f.separate_consent {
            if let Some(id) = cat_map.get(&n.text) {
                if !collects.contains(id.index()) {
                    sink.error(
                        n.span.clone(),
                        "contradiction",
                        format!(
                            "{place} asks separate consent for `{}`, which it does not collect",
                            n.text
                        ),
                    );
                } else if !sensitive.contains(id.index()) {
                    sink.error(
                        n.span.clone(),
                        "contradiction",
                        format!(
                            "{place} asks separate consent for `{}`, which is not marked sensitive",
                            n.text
                        ),
                    );
                }
            }
        }
        for missing in collects
            .intersection(&sensitive)
            .difference(&separate)
            .iter()
        {
            let cat = raw_categories
                .get(missing)
                .map_or("?", |c| c.name.text.as_str());
            let span = f
                .required
                .iter()
                .chain(&f.optional)
                .find(|n| n.text == cat)
                .map_or(f.name.span.clone(), |n| n.span.clone());
            sink.error(
                span,
                "contradiction",
                format!(
                    "{place} collects sensitive category `{cat}` without listing it in `separate_consent` (P5, PIPL art. 29)"
                ),
            );
        }
        features.push(Feature {
            id: FeatureId(u16::try_from(i).unwrap_or(u16::MAX)),
            name: f.name.text.clone(),
            description: f.description.clone(),
            basis: f.basis,
            required,
            optional,
            separate_consent: separate,
        });
    }

    let mut purposes = Vec::with_capacity(raw_purposes.len());
    for (i, p) in raw_purposes.iter().enumerate().take(MAX_IDS) {
        let place = format!("purpose `{}`", p.name.text);
        let reads = set_of(&mut sink, &p.reads, &cats, &place);
        if p.basis == Basis::Contract {
            for n in &p.reads {
                if cat_map
                    .get(&n.text)
                    .is_some_and(|id| sensitive.contains(id.index()))
                {
                    sink.error(
                        n.span.clone(),
                        "contradiction",
                        format!(
                            "essential {place} reads sensitive category `{}` without consent; give the purpose `basis = \"consent\"` (P5)",
                            n.text
                        ),
                    );
                }
            }
        }
        let mut related = Vec::new();
        for n in &p.related {
            if n.text == p.name.text {
                sink.error(
                    n.span.clone(),
                    "contradiction",
                    format!("{place} lists itself as related"),
                );
            } else if let Some(id) = purps.one(&mut sink, n, &place) {
                related.push(id);
            }
        }
        purposes.push(Purpose {
            id: PurposeId(u16::try_from(i).unwrap_or(u16::MAX)),
            name: p.name.text.clone(),
            taxonomy: p.taxonomy.clone(),
            description: p.description.clone(),
            description_in: p.description_in.clone(),
            basis: p.basis,
            reads,
            related,
        });
    }

    let mut roles = Vec::with_capacity(raw_roles.len());
    for (i, r) in raw_roles.iter().enumerate().take(MAX_IDS) {
        let place = format!("role `{}`", r.name.text);
        roles.push(Role {
            id: RoleId(u16::try_from(i).unwrap_or(u16::MAX)),
            name: r.name.text.clone(),
            description: r.description.clone(),
            purposes: purpose_set(&mut sink, &r.purposes, &purps, &place),
            justification: r.justification,
            may: r.may,
        });
    }

    let region_set: HashSet<&str> = regions.iter().map(|r| r.text.as_str()).collect();
    let mut recipients = Vec::with_capacity(raw_recipients.len());
    for (i, r) in raw_recipients.iter().enumerate().take(MAX_IDS) {
        let place = format!("recipient `{}`", r.name.text);
        let purpose_ids = purpose_set(&mut sink, &r.purposes, &purps, &place);
        let categories_ids = set_of(&mut sink, &r.categories, &cats, &place);
        let readable = purpose_ids
            .iter()
            .filter_map(|p| purposes.get(p))
            .fold(IdSet::EMPTY, |acc, p| acc.union(&p.reads));
        for n in &r.categories {
            if let Some(id) = cat_map.get(&n.text)
                && !purpose_ids.is_empty()
                && !readable.contains(id.index())
            {
                sink.error(
                    n.span.clone(),
                    "contradiction",
                    format!(
                        "{place} may receive `{}`, but none of its purposes reads it",
                        n.text
                    ),
                );
            }
        }
        if r.region.text.is_empty() {
            sink.error(
                r.region.span.clone(),
                "invalid_value",
                format!("{place} must name the region where it stores what it receives"),
            );
        }
        recipients.push(Recipient {
            id: RecipientId(u16::try_from(i).unwrap_or(u16::MAX)),
            name: r.name.text.clone(),
            legal_name: r.legal_name.clone(),
            kind: r.kind,
            purposes: purpose_ids,
            categories: categories_ids,
            agreement: r.agreement.clone(),
            cross_border: !region_set.contains(r.region.text.as_str()),
            region: r.region.text.clone(),
        });
    }

    let mut cookies = Vec::with_capacity(raw_cookies.len());
    for c in &raw_cookies {
        let place = format!("cookie `{}`", c.name.text);
        let Some(p) = c
            .purpose
            .as_ref()
            .and_then(|p| purps.one(&mut sink, p, &place))
        else {
            continue;
        };
        cookies.push(Cookie {
            name: c.name.text.clone(),
            description: c.description.clone(),
            description_in: c.description_in.clone(),
            purpose: p,
            lifetime_days: c.lifetime_days,
        });
    }

    if !sink.is_empty() {
        return Err(sink.finish(file));
    }
    let Some(effective) = effective else {
        return Err(sink.finish(file));
    };
    Ok(Policy {
        schema,
        name,
        version,
        effective,
        regions: regions.into_iter().map(|r| r.text).collect(),
        language,
        deadlines,
        incidents,
        categories,
        features,
        purposes,
        roles,
        recipients,
        cookies,
        sensitive,
        review,
        source: src.to_string(),
        names: Names {
            categories: cat_map,
            features: feat_map,
            purposes: purp_map,
            roles: role_map,
            recipients: recip_map,
        },
    })
}
