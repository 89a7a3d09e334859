//! The privacy statement in plain language, in the reader's language (P29, P30): what is
//! collected and why, how it is used, who receives it, how long it is kept, the cookies and
//! the deadlines. The frame is the message catalogue's (Chinese and English); descriptions
//! are the provider's own words from the policy file, in the reader's language where the
//! policy gives a purpose's or a cookie's in it (`description_in`).

use steward_policy::{Basis, Policy, RetentionFrom};

use crate::error::Error;
use crate::vault::Vault;

impl Vault {
    /// `policy` explained in `lang` (`zh-CN` or `en`).
    pub(crate) fn statement(&self, p: &Policy, lang: &str) -> Result<String, Error> {
        let t = |id: &str, args: &[(&str, &str)]| self.catalogue.text(lang, id, None, args);
        let days = |n: u32| -> Result<String, Error> {
            let n = n.to_string();
            t(if n == "1" { "days-one" } else { "days" }, &[("n", &n)])
        };
        let list = |items: &[&str]| -> Result<String, Error> {
            match items {
                [] => t("list-none", &[]),
                [one] => Ok((*one).to_string()),
                [init @ .., last] => {
                    let sep = t("list-separator", &[])?;
                    t("list-and", &[("init", &init.join(&sep)), ("last", last)])
                }
            }
        };
        let basis = |b: Basis| t(&format!("basis-{}", b.as_str()), &[]);
        let mut out: Vec<String> = Vec::new();
        out.push(t(
            "statement-title",
            &[
                ("name", &p.name),
                ("version", &p.version),
                ("effective", &p.effective.to_string()),
            ],
        )?);
        let regions = p.regions.iter().map(String::as_str).collect::<Vec<_>>();
        out.push(t("statement-regions", &[("regions", &list(&regions)?)])?);
        out.push(String::new());
        out.push(t("statement-collect", &[])?);
        for f in &p.features {
            out.push(t(
                "statement-feature",
                &[
                    ("description", &f.description),
                    ("name", &f.name),
                    ("basis", &basis(f.basis)?),
                ],
            )?);
            for (id, set) in [
                ("statement-feature-required", &f.required),
                ("statement-feature-optional", &f.optional),
                ("statement-feature-separate", &f.separate_consent),
            ] {
                let names = p.category_names(set);
                if !names.is_empty() {
                    out.push(format!("    {}", t(id, &[("list", &list(&names)?)])?));
                }
            }
        }
        out.push(String::new());
        out.push(t("statement-use", &[])?);
        for purpose in &p.purposes {
            out.push(t(
                "statement-purpose",
                &[
                    ("description", purpose.described(lang)),
                    ("name", &purpose.name),
                    ("basis", &basis(purpose.basis)?),
                    ("list", &list(&p.category_names(&purpose.reads))?),
                ],
            )?);
        }
        out.push(String::new());
        out.push(t("statement-share", &[])?);
        if p.recipients.is_empty() {
            out.push(t("statement-share-none", &[])?);
        }
        for r in &p.recipients {
            let purposes: Vec<&str> = r
                .purposes
                .iter()
                .filter_map(|i| p.purposes.get(i).map(|x| x.name.as_str()))
                .collect();
            let mut line = t(
                "statement-recipient",
                &[
                    ("legal_name", &r.legal_name),
                    (
                        "kind",
                        &t(&format!("recipient-kind-{}", r.kind.as_str()), &[])?,
                    ),
                    ("region", &r.region),
                    ("agreement", &r.agreement),
                    ("categories", &list(&p.category_names(&r.categories))?),
                    ("purposes", &list(&purposes)?),
                ],
            )?;
            if r.cross_border {
                line.push_str(&t("statement-abroad", &[])?);
            }
            out.push(line);
        }
        out.push(String::new());
        out.push(t("statement-keep", &[])?);
        for c in &p.categories {
            let retention = match c.retention.from {
                RetentionFrom::AccountClosed if c.retention.days == 0 => {
                    t("retention-account", &[])?
                }
                RetentionFrom::AccountClosed => t(
                    "retention-account-then",
                    &[("days", &days(c.retention.days)?)],
                )?,
                RetentionFrom::Collected => {
                    t("retention-collected", &[("days", &days(c.retention.days)?)])?
                }
            };
            let sensitive = if c.sensitive {
                t("statement-sensitive", &[])?
            } else {
                String::new()
            };
            out.push(t(
                "statement-category",
                &[
                    ("description", c.described(lang)),
                    ("sensitive", &sensitive),
                    ("retention", &retention),
                ],
            )?);
        }
        if !p.cookies.is_empty() {
            out.push(String::new());
            out.push(t("statement-cookies", &[])?);
            for c in &p.cookies {
                let purpose = p.purpose(c.purpose);
                let when = if purpose.needs_consent() {
                    t("statement-cookie-consent", &[])?
                } else {
                    t("statement-cookie-essential", &[])?
                };
                out.push(t(
                    "statement-cookie",
                    &[
                        ("name", &c.name),
                        ("description", c.described(lang)),
                        ("purpose", &purpose.name),
                        ("days", &days(c.lifetime_days)?),
                        ("when", &when),
                    ],
                )?);
            }
        }
        let d = &p.deadlines;
        out.push(String::new());
        out.push(t("statement-deadlines", &[])?);
        for (id, n) in [
            ("statement-deadline-request", d.request_days),
            ("statement-deadline-inquiry", d.inquiry_days),
            ("statement-deadline-erasure", d.erasure_days),
            ("statement-deadline-notice", d.change_notice_days),
        ] {
            out.push(t(id, &[("days", &days(n)?)])?);
        }
        // The soonest report an incident owes an authority (P22).
        let inc = &self.policy.incidents;
        let hours = inc
            .reports
            .iter()
            .map(|r| {
                if inc.cii {
                    r.cii_hours.unwrap_or(r.hours)
                } else {
                    r.hours
                }
            })
            .min()
            .unwrap_or(d.incident_report_hours);
        out.push(t(
            "statement-deadline-incident",
            &[("hours", &hours.to_string())],
        )?);
        let mut text = out.join("\n");
        text.push('\n');
        Ok(text)
    }
}
