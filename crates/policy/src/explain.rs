//! A plain-language summary of a policy: per feature, what is collected and why; who may
//! receive what; how long things are kept.

use std::fmt::Write;

use crate::model::{Basis, Policy, days, hours};

fn list(items: &[&str]) -> String {
    match items {
        [] => "nothing".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn basis_words(b: Basis) -> &'static str {
    match b {
        Basis::Contract => "needed to provide the service you signed up for",
        Basis::Consent => "only with your consent",
        Basis::LegalObligation => "required by law",
    }
}

/// Renders the summary as plain text.
pub fn explain(p: &Policy) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} (version {}, effective {})",
        p.name, p.version, p.effective
    );
    let _ = writeln!(
        s,
        "Personal information is stored only in: {}.",
        p.regions.join(", ")
    );
    let _ = writeln!(s, "\nWhat we collect, and why");
    for f in &p.features {
        let _ = writeln!(
            s,
            "- {} ({}): {}.",
            f.description,
            f.name,
            basis_words(f.basis)
        );
        let required = p.category_names(&f.required);
        let optional = p.category_names(&f.optional);
        if !required.is_empty() {
            let _ = writeln!(s, "    always collects: {}", list(&required));
        }
        if !optional.is_empty() {
            let _ = writeln!(s, "    may collect, if you provide it: {}", list(&optional));
        }
        let separate = p.category_names(&f.separate_consent);
        if !separate.is_empty() {
            let _ = writeln!(
                s,
                "    sensitive, collected only with your separate consent: {}",
                list(&separate)
            );
        }
    }
    let _ = writeln!(s, "\nHow we use it");
    for purpose in &p.purposes {
        let reads = p.category_names(&purpose.reads);
        let _ = writeln!(
            s,
            "- {} ({}): {}; uses {}.",
            purpose.description,
            purpose.name,
            basis_words(purpose.basis),
            list(&reads)
        );
    }
    let _ = writeln!(s, "\nWho we share it with");
    if p.recipients.is_empty() {
        let _ = writeln!(s, "- no one");
    }
    for r in &p.recipients {
        let cats = p.category_names(&r.categories);
        let purposes: Vec<&str> = r
            .purposes
            .iter()
            .filter_map(|i| p.purposes.get(i).map(|x| x.name.as_str()))
            .collect();
        let _ = writeln!(
            s,
            "- {} ({}, {}), bound by {}: may receive {} for {}{}.",
            r.legal_name,
            r.kind.as_str(),
            r.region,
            r.agreement,
            list(&cats),
            list(&purposes),
            if r.cross_border {
                "; this is a transfer abroad and needs your separate consent"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(s, "\nHow long we keep it");
    for c in &p.categories {
        let _ = writeln!(
            s,
            "- {}{}: {}.",
            c.description,
            if c.sensitive { " (sensitive)" } else { "" },
            c.retention.describe()
        );
    }
    if !p.cookies.is_empty() {
        let _ = writeln!(s, "\nCookies");
        for c in &p.cookies {
            let purpose = p.purpose(c.purpose);
            let _ = writeln!(
                s,
                "- {} ({}): {}, kept {}, {}.",
                c.name,
                c.description,
                purpose.name,
                days(c.lifetime_days),
                if purpose.needs_consent() {
                    "off until you agree"
                } else {
                    "essential"
                }
            );
        }
    }
    let d = &p.deadlines;
    let _ = writeln!(s, "\nOur deadlines");
    let _ = writeln!(
        s,
        "- we answer requests about your data within {}",
        days(d.request_days)
    );
    let _ = writeln!(
        s,
        "- we answer questions and complaints within {}",
        days(d.inquiry_days)
    );
    let _ = writeln!(
        s,
        "- after you close your account, we erase your data within {}",
        days(d.erasure_days)
    );
    let _ = writeln!(
        s,
        "- we announce material changes {} before they take effect",
        days(d.change_notice_days)
    );
    let _ = writeln!(
        s,
        "- we report security incidents to the authority within {}",
        hours(d.incident_report_hours)
    );
    s
}
