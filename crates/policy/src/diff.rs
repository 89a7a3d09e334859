//! Differences between two policy versions, each classified material or not (P29).
//!
//! Material: anything that lets the provider collect, use, share or keep more than before, or
//! store it somewhere new — new categories, purposes, recipients, features or cookies, wider
//! scopes, longer retention, new regions, weaker consent, slower deadlines. Narrowing changes and
//! wording are not material.

use std::collections::HashMap;

use crate::ids::IdSet;
use crate::model::{Basis, Policy};

/// One difference between two versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What changed, as a path into the policy file (`purposes.marketing`).
    pub path: String,
    /// What happened, in plain words.
    pub summary: String,
    /// Whether users must be told before it takes effect (P30).
    pub material: bool,
}

/// Every difference from `old` to `new`, in a stable order.
pub fn diff(old: &Policy, new: &Policy) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |path: String, summary: String, material: bool| {
        out.push(Change {
            path,
            summary,
            material,
        })
    };

    if old.name != new.name {
        push(
            "policy.name".into(),
            format!("title changed from `{}` to `{}`", old.name, new.name),
            false,
        );
    }
    if old.version != new.version {
        push(
            "policy.version".into(),
            format!("version `{}` -> `{}`", old.version, new.version),
            false,
        );
    }
    if old.effective != new.effective {
        push(
            "policy.effective".into(),
            format!("effective date {} -> {}", old.effective, new.effective),
            false,
        );
    }
    for r in &new.regions {
        if !old.regions.contains(r) {
            push(
                "policy.regions".into(),
                format!("new storage region `{r}`"),
                true,
            );
        }
    }
    for r in &old.regions {
        if !new.regions.contains(r) {
            push(
                "policy.regions".into(),
                format!("storage region `{r}` removed"),
                false,
            );
        }
    }

    let d = (&old.deadlines, &new.deadlines);
    let deadline_pairs = [
        ("request_days", d.0.request_days, d.1.request_days),
        ("inquiry_days", d.0.inquiry_days, d.1.inquiry_days),
        (
            "incident_report_hours",
            d.0.incident_report_hours,
            d.1.incident_report_hours,
        ),
        ("erasure_days", d.0.erasure_days, d.1.erasure_days),
    ];
    for (key, a, b) in deadline_pairs {
        if a != b {
            push(
                format!("deadlines.{key}"),
                format!("{key} {a} -> {b}"),
                b > a,
            );
        }
    }
    if d.0.change_notice_days != d.1.change_notice_days {
        let (a, b) = (d.0.change_notice_days, d.1.change_notice_days);
        // A shorter notice period gives users less warning.
        push(
            "deadlines.change_notice_days".into(),
            format!("change_notice_days {a} -> {b}"),
            b < a,
        );
    }

    let names = |p: &Policy, set: &IdSet| -> Vec<String> {
        p.category_names(set)
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let purpose_names = |p: &Policy, set: &IdSet| -> Vec<String> {
        set.iter()
            .filter_map(|i| p.purposes.get(i).map(|x| x.name.clone()))
            .collect()
    };
    let added = |a: &[String], b: &[String]| -> Vec<String> {
        b.iter().filter(|x| !a.contains(x)).cloned().collect()
    };
    let quoted = |v: &[String]| -> String {
        v.iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };

    // Categories.
    let old_c: HashMap<&str, _> = old
        .categories
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    for c in &new.categories {
        let path = format!("categories.{}", c.name);
        match old_c.get(c.name.as_str()) {
            None => push(path, format!("new category `{}`", c.name), true),
            Some(o) => {
                if o.retention != c.retention {
                    let longer = c.retention.longer_than(&o.retention);
                    push(
                        format!("{path}.retention"),
                        format!(
                            "retention {} -> {}",
                            o.retention.describe(),
                            c.retention.describe()
                        ),
                        longer,
                    );
                }
                if o.sensitive != c.sensitive {
                    push(
                        format!("{path}.sensitive"),
                        if c.sensitive {
                            "now marked sensitive".to_string()
                        } else {
                            "no longer marked sensitive".to_string()
                        },
                        !c.sensitive,
                    );
                }
                if o.taxonomy != c.taxonomy {
                    push(
                        format!("{path}.taxonomy"),
                        format!("taxonomy `{}` -> `{}`", o.taxonomy, c.taxonomy),
                        false,
                    );
                }
                if o.description != c.description {
                    push(
                        format!("{path}.description"),
                        "description reworded".into(),
                        false,
                    );
                }
            }
        }
    }
    for c in &old.categories {
        if new.category_id(&c.name).is_none() {
            push(
                format!("categories.{}", c.name),
                format!("category `{}` removed", c.name),
                false,
            );
        }
    }

    // Features.
    for f in &new.features {
        let path = format!("features.{}", f.name);
        match old.feature_id(&f.name).map(|id| old.feature(id)) {
            None => push(
                path,
                format!(
                    "new feature `{}` collecting {}",
                    f.name,
                    quoted(&names(new, &f.collects()))
                ),
                true,
            ),
            Some(o) => {
                let more = added(&names(old, &o.collects()), &names(new, &f.collects()));
                if !more.is_empty() {
                    push(
                        path.clone(),
                        format!("now also collects {}", quoted(&more)),
                        true,
                    );
                }
                let newly_required = added(&names(old, &o.required), &names(new, &f.required));
                let newly_required: Vec<String> = newly_required
                    .into_iter()
                    .filter(|n| !more.contains(n))
                    .collect();
                if !newly_required.is_empty() {
                    push(
                        format!("{path}.required"),
                        format!("now requires {}", quoted(&newly_required)),
                        true,
                    );
                }
                let dropped = added(&names(new, &f.collects()), &names(old, &o.collects()));
                if !dropped.is_empty() {
                    push(
                        path.clone(),
                        format!("no longer collects {}", quoted(&dropped)),
                        false,
                    );
                }
                if o.basis != f.basis {
                    push(
                        format!("{path}.basis"),
                        format!("basis {} -> {}", o.basis.as_str(), f.basis.as_str()),
                        o.basis == Basis::Consent,
                    );
                }
                let less_consent = added(
                    &names(new, &f.separate_consent),
                    &names(old, &o.separate_consent),
                );
                if !less_consent.is_empty() {
                    push(
                        format!("{path}.separate_consent"),
                        format!(
                            "no longer asks separate consent for {}",
                            quoted(&less_consent)
                        ),
                        true,
                    );
                }
            }
        }
    }
    for f in &old.features {
        if new.feature_id(&f.name).is_none() {
            push(
                format!("features.{}", f.name),
                format!("feature `{}` removed", f.name),
                false,
            );
        }
    }

    // Purposes.
    for p in &new.purposes {
        let path = format!("purposes.{}", p.name);
        match old.purpose_id(&p.name).map(|id| old.purpose(id)) {
            None => push(
                path,
                format!(
                    "new purpose `{}` ({}) reading {}",
                    p.name,
                    p.basis.as_str(),
                    quoted(&names(new, &p.reads))
                ),
                true,
            ),
            Some(o) => {
                let more = added(&names(old, &o.reads), &names(new, &p.reads));
                if !more.is_empty() {
                    push(
                        format!("{path}.reads"),
                        format!("may now also read {}", quoted(&more)),
                        true,
                    );
                }
                let fewer = added(&names(new, &p.reads), &names(old, &o.reads));
                if !fewer.is_empty() {
                    push(
                        format!("{path}.reads"),
                        format!("no longer reads {}", quoted(&fewer)),
                        false,
                    );
                }
                if o.basis != p.basis {
                    push(
                        format!("{path}.basis"),
                        format!("basis {} -> {}", o.basis.as_str(), p.basis.as_str()),
                        o.basis == Basis::Consent,
                    );
                }
            }
        }
    }
    for p in &old.purposes {
        if new.purpose_id(&p.name).is_none() {
            push(
                format!("purposes.{}", p.name),
                format!("purpose `{}` removed", p.name),
                false,
            );
        }
    }

    // Recipients.
    for r in &new.recipients {
        let path = format!("recipients.{}", r.name);
        match old.recipient_id(&r.name).map(|id| old.recipient(id)) {
            None => push(
                path,
                format!(
                    "new recipient `{}` ({}, {}) receiving {}",
                    r.name,
                    r.kind.as_str(),
                    r.region,
                    quoted(&names(new, &r.categories))
                ),
                true,
            ),
            Some(o) => {
                let more = added(&names(old, &o.categories), &names(new, &r.categories));
                if !more.is_empty() {
                    push(
                        format!("{path}.categories"),
                        format!("may now also receive {}", quoted(&more)),
                        true,
                    );
                }
                let more_p = added(
                    &purpose_names(old, &o.purposes),
                    &purpose_names(new, &r.purposes),
                );
                if !more_p.is_empty() {
                    push(
                        format!("{path}.purposes"),
                        format!("may now also receive data for {}", quoted(&more_p)),
                        true,
                    );
                }
                if o.region != r.region {
                    push(
                        format!("{path}.region"),
                        format!("region `{}` -> `{}`", o.region, r.region),
                        r.cross_border || !new.regions.contains(&r.region),
                    );
                }
                if o.kind != r.kind {
                    push(
                        format!("{path}.kind"),
                        format!("kind {} -> {}", o.kind.as_str(), r.kind.as_str()),
                        true,
                    );
                }
                if o.agreement != r.agreement {
                    push(
                        format!("{path}.agreement"),
                        format!("agreement `{}` -> `{}`", o.agreement, r.agreement),
                        false,
                    );
                }
            }
        }
    }
    for r in &old.recipients {
        if new.recipient_id(&r.name).is_none() {
            push(
                format!("recipients.{}", r.name),
                format!("recipient `{}` removed", r.name),
                false,
            );
        }
    }

    // Roles are internal to the provider: never material, always listed.
    for r in &new.roles {
        let path = format!("roles.{}", r.name);
        match old.role_id(&r.name).and_then(|id| old.role(id)) {
            None => push(path, format!("new role `{}`", r.name), false),
            Some(o) => {
                let a = purpose_names(old, &o.purposes);
                let b = purpose_names(new, &r.purposes);
                if a != b || o.justification != r.justification || o.may != r.may {
                    push(
                        path,
                        "purposes, operations or justification changed".into(),
                        false,
                    );
                }
            }
        }
    }
    for r in &old.roles {
        if new.role_id(&r.name).is_none() {
            push(
                format!("roles.{}", r.name),
                format!("role `{}` removed", r.name),
                false,
            );
        }
    }

    // Cookies.
    for c in &new.cookies {
        let path = format!("cookies.{}", c.name);
        match old.cookies.iter().find(|o| o.name == c.name) {
            None => push(path, format!("new cookie `{}`", c.name), true),
            Some(o) => {
                if o.lifetime_days != c.lifetime_days {
                    push(
                        format!("{path}.lifetime_days"),
                        format!("lifetime {} -> {} days", o.lifetime_days, c.lifetime_days),
                        c.lifetime_days > o.lifetime_days,
                    );
                }
                let (op, np) = (old.purpose(o.purpose), new.purpose(c.purpose));
                if op.name != np.name {
                    push(
                        format!("{path}.purpose"),
                        format!("purpose `{}` -> `{}`", op.name, np.name),
                        true,
                    );
                }
            }
        }
    }
    for c in &old.cookies {
        if !new.cookies.iter().any(|n| n.name == c.name) {
            push(
                format!("cookies.{}", c.name),
                format!("cookie `{}` removed", c.name),
                false,
            );
        }
    }
    out
}
