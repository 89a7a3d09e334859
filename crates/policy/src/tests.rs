use super::*;

fn example() -> Policy {
    Policy::example().unwrap_or_else(|e| panic!("example policy invalid:\n{e}"))
}

#[test]
fn p02_example_policy_is_valid_and_declares_statement_features() {
    let p = example();
    for f in [
        "account",
        "real_name",
        "usage_logging",
        "domain_registration",
        "website_filing",
        "marketplace",
        "face_recognition",
        "sms",
        "risk_control",
        "offline_delivery",
        "product_trial",
        "partner_programme",
    ] {
        assert!(p.feature_id(f).is_some(), "missing feature {f}");
    }
}

#[test]
fn p04_example_policy_covers_statement_categories() {
    let p = example();
    for c in [
        "name",
        "contact_person",
        "email",
        "im_account",
        "phone",
        "postal_address",
        "bank_account",
        "business_registration",
        "face_image",
        "face_template",
        "government_id",
        "photo",
        "device_id",
        "ip_address",
        "browser_type",
        "language",
        "access_time",
        "device_characteristics",
        "user_identifier",
        "pages_visited",
    ] {
        assert!(p.category_id(c).is_some(), "missing category {c}");
    }
    for s in [
        "bank_account",
        "face_image",
        "government_id",
        "precise_location",
    ] {
        let id = p.category_id(s).unwrap();
        assert!(p.category(id).sensitive, "{s} must be sensitive");
    }
    assert_eq!(p.regions, vec!["cn-mainland".to_string()]);
}

fn errors(src: &str) -> Diagnostics {
    match Policy::parse(src, "p.toml") {
        Ok(_) => panic!("expected errors"),
        Err(d) => d,
    }
}

#[test]
fn p29_unknown_key_and_dangling_reference_are_located() {
    let src = EXAMPLE_POLICY.replace(
        "[features.sms]\ndescription = \"SMS notifications\"",
        "[features.sms]\ncolour = \"blue\"\ndescription = \"SMS notifications\"",
    );
    let src = src.replace(
        "[purposes.surveys]\ntaxonomy = \"marketing.communications\"\ndescription = \"Inviting you to surveys\"\nbasis = \"consent\"\nreads = [\"name\", \"email\"]",
        "[purposes.surveys]\ntaxonomy = \"marketing.communications\"\ndescription = \"Inviting you to surveys\"\nbasis = \"consent\"\nreads = [\"name\", \"emial\"]",
    );
    let d = errors(&src);
    assert_eq!(d.items.len(), 2, "{d}");
    let unknown = &d.items[0];
    assert_eq!(unknown.code, "unknown_key");
    let line = src.lines().position(|l| l.starts_with("colour")).unwrap() + 1;
    assert_eq!((unknown.line, unknown.column), (line, 1));
    let dangling = &d.items[1];
    assert_eq!(dangling.code, "dangling_reference");
    assert!(dangling.message.contains("`emial`"), "{}", dangling.message);
    let line = src.lines().position(|l| l.contains("\"emial\"")).unwrap() + 1;
    assert_eq!(dangling.line, line);
    assert_eq!(dangling.column, 18);
    assert!(d.to_string().starts_with("p.toml:"));
}

const MINIMAL: &str = r#"
schema = 1
[policy]
name = "t"
version = "1"
effective = 2026-01-01
regions = ["cn-mainland"]
[categories.email]
taxonomy = "user.contact.email"
retention = { from = "account_closed", days = 1 }
[categories.face]
taxonomy = "user.biometric"
sensitive = true
retention = { from = "collected", days = 1 }
[features.account]
basis = "contract"
required = ["email"]
[purposes.service]
taxonomy = "essential.service"
basis = "contract"
reads = ["email"]
[roles.app]
purposes = ["service"]
"#;

#[test]
fn minimal_policy_parses() {
    let p = Policy::parse(MINIMAL, "m.toml").unwrap();
    assert_eq!(p.categories.len(), 2);
}

#[test]
fn p05_contradictions_are_reported_together() {
    let src = MINIMAL
        .replace("required = [\"email\"]", "required = [\"email\", \"face\"]")
        .replace("reads = [\"email\"]", "reads = [\"email\", \"face\"]");
    let d = errors(&src);
    let codes: Vec<_> = d.items.iter().map(|i| i.code).collect();
    assert_eq!(codes, vec!["contradiction", "contradiction"], "{d}");
    assert!(d.items[0].message.contains("separate_consent"));
    assert!(d.items[1].message.contains("essential"));
}

#[test]
fn wrong_types_duplicates_and_schema_are_reported() {
    let src = MINIMAL
        .replace("schema = 1", "schema = 2")
        .replace(
            "required = [\"email\"]",
            "required = [\"email\", \"email\"]",
        )
        .replace("basis = \"contract\"\nreads", "basis = \"maybe\"\nreads")
        .replace("effective = 2026-01-01", "effective = \"soon\"");
    let d = errors(&src);
    let codes: Vec<_> = d.items.iter().map(|i| i.code).collect();
    assert_eq!(
        codes,
        vec![
            "unsupported_schema",
            "invalid_value",
            "duplicate",
            "invalid_value"
        ],
        "{d}"
    );
}

#[test]
fn syntax_errors_are_located() {
    let d = errors("schema = 1\n[policy\nname = 1\n");
    assert_eq!(d.items[0].code, "syntax");
    assert_eq!(d.items[0].line, 2);
}

#[test]
fn p10_decision_checks_role_purpose_categories_and_consent() {
    let p = example();
    let cat = |n| p.category_id(n).unwrap().index();
    let service = p.role_id("service").unwrap();
    let support = p.role_id("support").unwrap();
    let offers = p.purpose_id("relevant_offers").unwrap();
    let provide = p.purpose_id("provide_service").unwrap();
    let email: IdSet = [cat("email")].into_iter().collect();
    let mut consent = ConsentState::default();

    let req = Request {
        role: service,
        purpose: provide,
        categories: email,
        justified: false,
    };
    assert_eq!(p.decide(&req, &consent), Ok(()));

    let req = Request {
        purpose: offers,
        ..req
    };
    assert_eq!(
        p.decide(&req, &consent),
        Err(Refusal::ConsentRequired { purpose: offers })
    );
    consent.purposes.insert(offers.index());
    assert_eq!(p.decide(&req, &consent), Ok(()));

    let face: IdSet = [cat("face_image")].into_iter().collect();
    let req = Request {
        categories: face,
        ..req
    };
    let r = p.decide(&req, &consent).unwrap_err();
    assert_eq!(r.code(), "purpose_not_allowed");
    assert_eq!(r.rule(&p), "purposes.relevant_offers.reads");

    let req = Request {
        role: support,
        purpose: provide,
        categories: email,
        justified: false,
    };
    assert_eq!(
        p.decide(&req, &consent).unwrap_err().code(),
        "justification_required"
    );
    let req = Request {
        purpose: offers,
        justified: true,
        ..req
    };
    assert_eq!(
        p.decide(&req, &consent).unwrap_err().code(),
        "role_not_permitted"
    );
}

#[test]
fn p29_diff_classifies_new_purpose_as_material() {
    let old = example();
    let src = format!(
        "{EXAMPLE_POLICY}\n[purposes.ad_profiling]\ntaxonomy = \"marketing.advertising.profiling\"\nbasis = \"consent\"\nreads = [\"pages_visited\"]\n"
    );
    let new = Policy::parse(&src, "new.toml").unwrap();
    let changes = diff(&old, &new);
    assert_eq!(changes.len(), 1);
    assert!(changes[0].material());
    assert_eq!(changes[0].path, "purposes.ad_profiling");
    assert!(diff(&old, &old).is_empty());
}

#[test]
fn p29_diff_retention_longer_is_material_shorter_is_not() {
    let old = example();
    let longer = EXAMPLE_POLICY.replace(
        "description = \"IP address\"\nretention = { from = \"collected\", days = 180 }",
        "description = \"IP address\"\nretention = { from = \"collected\", days = 365 }",
    );
    let new = Policy::parse(&longer, "n.toml").unwrap();
    let changes = diff(&old, &new);
    assert_eq!(changes.len(), 1);
    assert!(changes[0].material());
    let back = diff(&new, &old);
    assert_eq!(back.len(), 1);
    assert!(!back[0].material());
}

/// The example policy with `from` replaced by `to` exactly once.
fn edited(from: &str, to: &str) -> Policy {
    assert_eq!(EXAMPLE_POLICY.matches(from).count(), 1, "{from}");
    Policy::parse(&EXAMPLE_POLICY.replacen(from, to, 1), "new.toml").unwrap()
}

fn only_change(new: &Policy) -> Change {
    let changes = diff(&example(), new);
    assert_eq!(changes.len(), 1, "{changes:#?}");
    changes.into_iter().next().unwrap()
}

#[test]
fn p29_diff_reports_rewording_relations_recipient_identity_and_lookup() {
    // The four edits an outside test found reported as no change at all.
    let reworded = only_change(&edited(
        "description = \"Answering your questions and complaints\"",
        "description = \"Selling your contact details to advertisers\"",
    ));
    assert_eq!(reworded.path, "purposes.support.description");
    assert_eq!(reworded.class, Class::NeedsReview);
    assert!(reworded.blocks());

    let related = only_change(&edited(
        "reads = [\"name\", \"email\", \"phone\", \"im_account\", \"contact_person\", \"order_record\"]\nrelated = [\"provide_service\"]",
        "reads = [\"name\", \"email\", \"phone\", \"im_account\", \"contact_person\", \"order_record\"]\nrelated = [\"provide_service\", \"relevant_offers\"]",
    ));
    assert_eq!(related.path, "purposes.support.related");
    assert_eq!(related.class, Class::Material);
    assert!(related.summary.contains("relevant_offers"));

    let company = only_change(&edited(
        "legal_name = \"Example SMS Services Co., Ltd.\"",
        "legal_name = \"Another Data Broker Ltd.\"",
    ));
    assert_eq!(company.path, "recipients.sms_gateway.legal_name");
    assert_eq!(company.class, Class::Material);

    let lookup = only_change(&edited(
        "description = \"Phone number\"\nlookup = true",
        "description = \"Phone number\"\nlookup = false",
    ));
    assert_eq!(lookup.path, "categories.phone.lookup");
    assert_eq!(lookup.class, Class::NotMaterial);
    // And back: a value becoming searchable is a new use.
    let back = diff(
        &edited(
            "description = \"Phone number\"\nlookup = true",
            "description = \"Phone number\"\nlookup = false",
        ),
        &example(),
    );
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].class, Class::Material);
}

#[test]
fn p29_review_acknowledges_only_changes_from_its_own_version() {
    let old = example();
    let reword = |review: &str| {
        let src = EXAMPLE_POLICY.replacen(
            "description = \"Answering your questions and complaints\"",
            "description = \"Answering your questions\"",
            1,
        );
        Policy::parse(&format!("{src}\n{review}"), "new.toml").unwrap()
    };
    let path = "purposes.support.description";
    let acked = reword(&format!(
        "[review]\nfrom = \"{}\"\nacknowledged = [\"{path}\"]\n",
        old.version
    ));
    let c = &diff(&old, &acked)[0];
    assert!(c.acknowledged && !c.blocks());
    // Written against another version, or naming another path: still blocks.
    for review in [
        format!("[review]\nfrom = \"1999.1\"\nacknowledged = [\"{path}\"]\n"),
        format!(
            "[review]\nfrom = \"{}\"\nacknowledged = [\"purposes.security.description\"]\n",
            old.version
        ),
    ] {
        let c = &diff(&old, &reword(&review))[0];
        assert!(!c.acknowledged && c.blocks(), "{review}");
    }
    // Not-material changes never block.
    let c = &diff(&reword(""), &old)[0];
    assert_eq!(c.class, Class::NeedsReview);
    let narrower = diff(
        &old,
        &edited(
            "description = \"Phone number\"\nlookup = true",
            "description = \"Phone number\"\nlookup = false",
        ),
    );
    assert!(!narrower[0].blocks());
    // The table is checked like the rest of the file.
    let bad = Policy::parse(
        &format!("{EXAMPLE_POLICY}\n[review]\nfrom = \"x\"\nacknowledge = []\n"),
        "new.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        bad.contains("unknown_key") && bad.contains("missing_key"),
        "{bad}"
    );
}

/// Everything a compiled policy enforces, as text to compare (the name maps are left out:
/// they are lookups over the lists, and `HashMap`'s debug order is not stable).
fn enforced(p: &Policy) -> String {
    format!(
        "{:?}",
        (
            p.schema,
            &p.name,
            &p.version,
            p.effective,
            &p.regions,
            (&p.deadlines, &p.incidents),
            &p.categories,
            &p.features,
            &p.purposes,
            &p.roles,
            &p.recipients,
            &p.cookies,
        )
    )
}

/// Every leaf of a TOML tree, as a path of keys and array indexes.
fn leaves(v: &toml::Value, path: &mut Vec<toml::Value>, out: &mut Vec<Vec<toml::Value>>) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                path.push(toml::Value::String(k.clone()));
                leaves(x, path, out);
                path.pop();
            }
        }
        // A list is one field: its mutations add and remove elements.
        _ => out.push(path.clone()),
    }
}

fn at<'a>(doc: &'a mut toml::Value, path: &[toml::Value]) -> &'a mut toml::Value {
    path.iter().fold(doc, |v, k| match (v, k) {
        (toml::Value::Table(t), toml::Value::String(k)) => t.get_mut(k).unwrap(),
        _ => unreachable!("paths come from leaves()"),
    })
}

/// Values that could replace `v`: a changed string or two other words of each kind (declared
/// names, capabilities, regions, ...), a flipped boolean, a nearby number or date, a list with
/// one element fewer or two other words of each kind more.
fn mutations(v: &toml::Value, kinds: &[Vec<String>]) -> Vec<toml::Value> {
    use toml::Value as V;
    let others = |skip: &dyn Fn(&String) -> bool| -> Vec<String> {
        kinds
            .iter()
            .flat_map(|k| k.iter().filter(|w| !skip(w)).take(2).cloned())
            .collect()
    };
    match v {
        V::String(s) => std::iter::once(format!("{s} changed"))
            .chain(others(&|w| w == s))
            .map(V::String)
            .collect(),
        V::Boolean(b) => vec![V::Boolean(!b)],
        V::Integer(n) => vec![V::Integer(n + 1), V::Integer(n - 1)],
        V::Datetime(d) => {
            let mut later = *d;
            if let Some(date) = later.date.as_mut() {
                date.day = if date.day < 28 { date.day + 1 } else { 1 };
            }
            vec![V::Datetime(later)]
        }
        V::Array(items) => {
            let mut out = Vec::new();
            for i in 0..items.len() {
                let mut fewer = items.clone();
                fewer.remove(i);
                out.push(V::Array(fewer));
            }
            for w in others(&|w| items.contains(&V::String(w.clone()))) {
                let mut more = items.clone();
                more.push(V::String(w));
                out.push(V::Array(more));
            }
            out
        }
        V::Float(_) | V::Table(_) => Vec::new(),
    }
}

#[test]
fn p29_every_single_field_mutation_that_changes_the_policy_is_reported() {
    let old = example();
    let doc: toml::Value = toml::from_str(EXAMPLE_POLICY).unwrap();
    let mut kinds: Vec<Vec<String>> = ["categories", "features", "purposes", "roles", "recipients"]
        .iter()
        .map(|k| doc[k].as_table().unwrap().keys().rev().cloned().collect())
        .collect();
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect();
    kinds.push(
        Capability::ALL
            .iter()
            .rev()
            .map(|c| c.as_str().to_string())
            .collect(),
    );
    kinds.push(words(&["sg", "cn-mainland"]));
    kinds.push(words(&["contract", "consent", "legal_obligation"]));
    kinds.push(words(&["collected", "account_closed"]));
    kinds.push(words(&[
        "affiliate",
        "processor",
        "contractor",
        "agent",
        "successor",
    ]));
    kinds.push(words(&[
        "general",
        "relatively_major",
        "major",
        "detected",
        "known",
    ]));

    let mut paths = Vec::new();
    leaves(&doc, &mut Vec::new(), &mut paths);
    // Keys that may be left out (they have a default) are mutated by removal too.
    let (mut tried, mut reported) = (0, 0);
    let mut fields_changed = std::collections::BTreeSet::new();
    for path in &paths {
        let mut edits: Vec<Option<toml::Value>> = mutations(at(&mut doc.clone(), path), &kinds)
            .into_iter()
            .map(Some)
            .collect();
        edits.push(None);
        for edit in edits {
            let mut d = doc.clone();
            match edit {
                Some(v) => *at(&mut d, path) = v,
                None => {
                    let (last, parent) = path.split_last().unwrap();
                    if let (toml::Value::Table(t), toml::Value::String(k)) =
                        (at(&mut d, parent), last)
                    {
                        t.remove(k);
                    }
                }
            }
            let Ok(new) = Policy::parse(&toml::to_string(&d).unwrap(), "m.toml") else {
                continue;
            };
            tried += 1;
            if enforced(&new) == enforced(&old) {
                continue;
            }
            let changes = diff(&old, &new);
            assert!(
                !changes.is_empty(),
                "no change reported for an edit of {path:?}"
            );
            reported += 1;
            fields_changed.insert(format!("{path:?}"));
            // And the other way round.
            assert!(
                !diff(&new, &old).is_empty(),
                "no change reported undoing {path:?}"
            );
        }
    }
    // The campaign reached the file: 2,700 valid edits of 254 of its 274 fields (the rest, such
    // as `schema` or a sensitive category's `sensitive`, have no edit that still validates).
    assert!(
        tried > 1000 && reported > 1000,
        "{tried} tried, {reported} reported"
    );
    assert!(
        fields_changed.len() * 10 >= paths.len() * 9,
        "{} of {} fields",
        fields_changed.len(),
        paths.len()
    );
}

#[test]
fn explain_mentions_features_and_recipients() {
    let text = explain(&example());
    assert!(text.contains("Face recognition"));
    assert!(text.contains("Example Express Logistics"));
    assert!(text.contains("transfer abroad"));
}

mod props {
    use super::super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parser_never_panics_on_arbitrary_text(s in "\\PC{0,400}") {
            let _ = Policy::parse(&s, "fuzz.toml");
        }

        #[test]
        fn parser_never_panics_on_mutated_example(pos in 0usize..20_000, len in 0usize..40, insert in "[\\[\\]=\"a-z0-9_., \\n{}-]{0,12}") {
            let src = EXAMPLE_POLICY;
            let start = pos.min(src.len());
            let end = (start + len).min(src.len());
            if src.is_char_boundary(start) && src.is_char_boundary(end) {
                let mutated = format!("{}{}{}", &src[..start], insert, &src[end..]);
                if let Err(d) = Policy::parse(&mutated, "m.toml") {
                    prop_assert!(!d.items.is_empty());
                    for item in &d.items {
                        prop_assert!(item.line >= 1 && item.column >= 1);
                    }
                }
            }
        }
    }
}

/// A refusal names its rule for any role id, a data subject's own included (it holds no
/// policy role), instead of indexing past the roles.
#[test]
fn p21_refusals_name_their_rule_for_a_subject_and_a_foreign_role() {
    let p = Policy::example().unwrap();
    let purpose = p.purpose_id("provide_service").unwrap();
    for role in [RoleId::SUBJECT, RoleId(4000)] {
        let refusal = p
            .check(&Request {
                role,
                purpose,
                categories: IdSet::EMPTY,
                justified: false,
            })
            .unwrap_err();
        assert_eq!(refusal.code(), "role_not_permitted");
        assert!(refusal.rule(&p).starts_with("roles."));
        assert!(!refusal.explain(&p).is_empty());
    }
    assert_eq!(p.role_name(RoleId::SUBJECT), "subject");
}

/// The example policy with a purpose appended after the last one, granted to the service role.
pub(crate) fn with_new_purpose(name: &str, basis: &str, related: &str) -> String {
    let anchor = "reads = [\"name\", \"email\", \"phone\", \"government_id\", \"ip_address\", \"access_time\", \"user_identifier\"]\n";
    assert_eq!(EXAMPLE_POLICY.matches(anchor).count(), 1);
    let purpose = format!(
        "{anchor}\n[purposes.{name}]\ntaxonomy = \"marketing.advertising.third_party\"\ndescription = \"Training advertising models\"\nbasis = \"{basis}\"\nreads = [\"name\", \"email\"]\nrelated = [{related}]\n"
    );
    EXAMPLE_POLICY.replacen(anchor, &purpose, 1).replacen(
        "\"partner_settlement\"]\n",
        &format!("\"partner_settlement\", \"{name}\"]\n"),
        1,
    )
}

#[test]
fn p11_the_diff_says_which_changes_need_fresh_consent() {
    let flagged = |text: &str| -> Vec<(String, bool)> {
        diff(&example(), &Policy::parse(text, "new.toml").unwrap())
            .into_iter()
            .filter(|c| c.path.starts_with("purposes."))
            .map(|c| (c.path, c.reconsent))
            .collect()
    };
    // A new purpose related to nothing the subject's data was collected under: fresh consent.
    let unrelated = flagged(&with_new_purpose("ad_models", "contract", ""));
    assert_eq!(unrelated, [("purposes.ad_models".to_string(), true)]);
    // Related to an existing purpose: compatible, no fresh consent.
    let related = flagged(&with_new_purpose(
        "ad_models",
        "contract",
        "\"provide_service\"",
    ));
    assert_eq!(related, [("purposes.ad_models".to_string(), false)]);
    // A purpose reading more, and one moved onto consent.
    let wider = flagged(&EXAMPLE_POLICY.replacen(
        "reads = [\"name\", \"email\"]\n",
        "reads = [\"name\", \"email\", \"phone\"]\n",
        1,
    ));
    assert_eq!(wider, [("purposes.surveys.reads".to_string(), true)]);
    let onto_consent = edited(
        "description = \"Answering your questions and complaints\"\nbasis = \"contract\"",
        "description = \"Answering your questions and complaints\"\nbasis = \"consent\"",
    );
    let c = only_change(&onto_consent);
    assert_eq!(
        (c.path.as_str(), c.reconsent),
        ("purposes.support.basis", true)
    );
    // Narrowing never asks again.
    let narrower = flagged(&EXAMPLE_POLICY.replacen(
        "reads = [\"name\", \"email\"]\n",
        "reads = [\"name\"]\n",
        1,
    ));
    assert_eq!(narrower, [("purposes.surveys.reads".to_string(), false)]);
}

/// P7: a purpose's and a cookie's descriptions in other languages are read, located when wrong,
/// shown in the language asked for, and a change to one is for a person to review.
#[test]
fn p07_descriptions_in_other_languages_are_read_checked_and_diffed() {
    let p = example();
    let purpose = p.purpose(p.purpose_id("service_improvement").unwrap());
    assert_eq!(purpose.described("zh-CN"), "改进我们的服务");
    assert_eq!(purpose.described("en"), "Improving our services");
    let cookie = p.cookies.iter().find(|c| c.name == "prefs").unwrap();
    assert_eq!(cookie.described("zh-CN"), "个性化偏好设置");
    let bad = EXAMPLE_POLICY.replacen(
        "[cookies.prefs.description_in]\n\"zh-CN\"",
        "[cookies.prefs.description_in]\n\"fr\"",
        1,
    );
    let d = errors(&bad);
    assert_eq!(d.items.len(), 1, "{d}");
    assert_eq!(d.items[0].code, "invalid_value");
    let line = bad.lines().position(|l| l.starts_with("\"fr\"")).unwrap() + 1;
    assert_eq!((d.items[0].line, d.items[0].column), (line, 1));
    let new = edited("\"zh-CN\" = \"改进我们的服务\"", "\"zh-CN\" = \"改善服务\"");
    let change = only_change(&new);
    assert_eq!(
        change.path,
        "purposes.service_improvement.description_in.zh-CN"
    );
    assert!(!change.material());
}
