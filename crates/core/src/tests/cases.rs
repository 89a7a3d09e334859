//! Incidents (P22), legal disclosures (P15) and transfers (P14), on the kit's moving clock.

use std::collections::BTreeMap;

use super::*;
use crate::clock::rfc3339;
use crate::deadlines::Contacts;
use crate::incidents::{ExposureInput, IncidentFacts, LookupValue, NewIncident};
use crate::legal::{LegalDisclosure, NewTransfer, Restriction};

const HOUR: i64 = 3_600_000;

fn with_contacts(mut k: Kit) -> Kit {
    k.vault = k.vault.with_contacts(Contacts {
        requests: vec!["ops@example-cloud.cn".into()],
        escalation: vec!["dpo@example-cloud.cn".into()],
        reminder_days: vec![7, 1],
    });
    k
}

fn exposure(categories: &[&str], from_ms: i64, to_ms: i64) -> ExposureInput {
    ExposureInput {
        categories: categories.iter().map(|c| c.to_string()).collect(),
        from: rfc3339(from_ms),
        to: rfc3339(to_ms),
        ..ExposureInput::default()
    }
}

fn incident(title: &str, grade: &str, detected_ms: i64, exposure: ExposureInput) -> NewIncident {
    NewIncident {
        title: title.into(),
        detected_at: rfc3339(detected_ms),
        known_at: None,
        grade: grade.into(),
        cause: "a misconfigured object storage bucket".into(),
        harm: "phishing calls and messages".into(),
        advice: BTreeMap::from([
            (
                "en".to_string(),
                "Be wary of calls asking for codes.".to_string(),
            ),
            ("zh-CN".to_string(), "警惕索要验证码的来电。".to_string()),
        ]),
        exposure,
    }
}

/// An incident of `grade` exposing `categories` as held now, opened by the officer.
fn open_now(k: &Kit, grade: &str, categories: &[&str]) -> crate::incidents::Incident {
    let t0 = k.clock.now_ms();
    k.vault
        .open_incident(
            Some(&k.officer),
            &incident("Leak", grade, t0, exposure(categories, t0, t0)),
        )
        .unwrap()
}

/// The incident's affected set computed again on `exposure`, by the officer.
fn recompute(k: &Kit, id: &str, exposure: ExposureInput) -> crate::incidents::Incident {
    k.vault
        .incident_facts(
            Some(&k.officer),
            id,
            &IncidentFacts {
                exposure: Some(exposure),
                ..IncidentFacts::default()
            },
        )
        .unwrap()
}

/// Each subject mail queued for case `id`, by subject.
fn mails_of(k: &Kit, id: &str) -> Vec<String> {
    let mut out: Vec<String> = k
        .vault
        .store()
        .outbox(None, 10_000)
        .unwrap()
        .into_iter()
        .filter(|m| m.id.starts_with(&format!("inm_{id}_")))
        .map(|m| m.destination)
        .collect();
    out.sort();
    out
}

#[test]
fn p22_the_affected_set_is_exactly_the_subjects_whose_data_matched() {
    let k = kit();
    let t0 = k.clock.now_ms();
    // Three with a phone number, one without; one more gives a phone after the window.
    let (a, _b, c) = (
        k.subject_with_account(),
        k.subject_with_account(),
        k.subject_with_account(),
    );
    let no_phone = k.vault.register(&k.service).unwrap();
    k.vault
        .collect(
            &k.service,
            &Collect {
                subject: no_phone,
                feature: "account",
                values: &[("name", "Han Meimei"), ("email", "han@example.cn")],
                source: Source::Subject,
            },
        )
        .unwrap();
    k.clock.advance(10 * HOUR);
    let later = k.subject_with_account();
    k.clock.advance(HOUR);
    let now = k.clock.now_ms();
    let inc = k
        .vault
        .open_incident(
            Some(&k.officer),
            &incident(
                "Call-centre export leaked",
                "relatively_major",
                now,
                exposure(&["phone"], t0, t0 + 5 * HOUR),
            ),
        )
        .unwrap();
    assert_eq!(
        inc.affected.subjects, 3,
        "a, b and c held a phone number in the window"
    );
    assert_eq!(inc.affected.by_category.get("phone"), Some(&3));
    assert_eq!(inc.affected.by_region.get("cn-mainland"), Some(&3));

    // Narrowed by a lookup value found in the leaked file: its holder only, and the value is
    // kept nowhere.
    let narrowed = recompute(
        &k,
        &inc.id,
        ExposureInput {
            lookups: vec![LookupValue {
                category: "email".into(),
                value: "LI.LEI+1@example.cn".into(),
            }],
            subjects: vec![c.to_string(), later.to_string()],
            ..exposure(&["phone", "email"], t0, now)
        },
    );
    assert_eq!(narrowed.affected.version, 2);
    assert_eq!(
        narrowed.affected.subjects, 3,
        "b (by lookup), c and later (listed)"
    );
    assert_eq!(narrowed.affected.by_category.get("email"), Some(&3));
    assert_eq!(narrowed.affected.listed_not_holding, 0);
    let doc = k.vault.store().case(&inc.id).unwrap().unwrap().doc;
    assert!(
        !doc.contains("li.lei+1") && !doc.contains("LI.LEI"),
        "a lookup value is never kept"
    );
    // Each computation is audited, with counts only.
    let actions: Vec<String> = k.entries_from(1).into_iter().map(|e| e.action).collect();
    assert!(
        actions.contains(&"incident.open".to_string())
            && actions.contains(&"incident.recompute".to_string())
    );

    // The `collected` basis takes only what was collected in the window.
    let collected = recompute(
        &k,
        &inc.id,
        ExposureInput {
            basis: Some("collected".into()),
            ..exposure(&["phone"], t0 + 9 * HOUR, now)
        },
    );
    assert_eq!(
        collected.affected.subjects, 1,
        "only `later` gave a phone number then"
    );
    // The `read` basis: those whose phone number was read or disclosed in the window.
    let t1 = k.clock.now_ms();
    k.read(c, &["phone"], "provide_service").unwrap();
    k.read(later, &["email"], "provide_service").unwrap();
    k.clock.advance(HOUR);
    k.read(a, &["phone"], "provide_service").unwrap();
    let read = recompute(
        &k,
        &inc.id,
        ExposureInput {
            basis: Some("read".into()),
            ..exposure(&["phone"], t1, t1 + HOUR / 2)
        },
    );
    assert_eq!(
        (read.affected.subjects, read.exposure.basis.as_str()),
        (1, "read"),
        "c's phone was read in the window; a's after it, later's email is not phone"
    );
    let _ = (a, no_phone);
    assert!(matches!(
        k.vault.open_incident(
            Some(&k.service),
            &incident("x", "general", now, exposure(&["phone"], t0, now))
        ),
        Err(Error::NotPermitted { .. })
    ));
    assert!(matches!(
        k.vault.open_incident(
            Some(&k.officer),
            &incident("x", "severe", now, exposure(&["phone"], t0, now))
        ),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn p22_the_authoritys_clock_reminds_before_four_hours_and_escalates_after() {
    let k = with_contacts(kit());
    let t0 = k.clock.now_ms();
    k.subject_with_account();
    k.subject_with_account();
    let inc = open_now(&k, "relatively_major", &["phone", "name"]);
    let initial = inc
        .clocks
        .iter()
        .find(|c| c.regime == "cn" && c.part == "initial")
        .unwrap();
    assert_eq!(
        initial.due_at.as_deref(),
        Some(rfc3339(t0 + 4 * HOUR).as_str())
    );
    assert_eq!(
        inc.clocks
            .iter()
            .find(|c| c.part == "final")
            .unwrap()
            .status,
        "waiting"
    );
    let board = k.vault.deadlines(Some(&k.officer), crate::DAY_MS).unwrap();
    assert!(
        board
            .iter()
            .any(|d| d.kind == "incident_report" && d.id == format!("{}:cn:initial", inc.id))
    );

    // Nothing before half the window; a reminder at 2 h and at 3 h left... then escalation.
    k.clock.advance(HOUR);
    assert_eq!(
        k.vault.send_reminders().unwrap(),
        crate::deadlines::Reminders::default()
    );
    k.clock.advance(HOUR);
    assert_eq!(k.vault.send_reminders().unwrap().due_soon, 1);
    assert_eq!(
        k.vault.send_reminders().unwrap().due_soon,
        0,
        "each reminder is sent once"
    );
    k.clock.advance(HOUR);
    assert_eq!(k.vault.send_reminders().unwrap().due_soon, 1);
    k.clock.advance(HOUR + 1);
    let r = k.vault.send_reminders().unwrap();
    assert_eq!((r.due_soon, r.overdue), (0, 1));
    let mails: Vec<(String, String)> = k
        .vault
        .store()
        .outbox(None, 100)
        .unwrap()
        .into_iter()
        .filter(|m| m.channel == "email")
        .map(|m| (m.event, m.destination))
        .collect();
    assert!(mails.contains(&(
        "incident.opened".into(),
        "contact:dpo@example-cloud.cn".into()
    )));
    assert_eq!(
        mails
            .iter()
            .filter(|(e, d)| e == "incident.report_due_soon" && d == "contact:ops@example-cloud.cn")
            .count(),
        2
    );
    assert!(mails.contains(&(
        "incident.report_overdue".into(),
        "contact:dpo@example-cloud.cn".into()
    )));
    let row = k
        .vault
        .store()
        .outbox(None, 100)
        .unwrap()
        .into_iter()
        .find(|m| m.event == "incident.report_overdue" && m.channel == "email")
        .unwrap();
    let mail = k.vault.render_mail(&row).unwrap().unwrap();
    assert!(
        mail.subject.contains(&inc.id)
            && mail.body.contains("Provincial cyberspace administration"),
        "{}",
        mail.body
    );

    // Filed: the clock stops; a final report waits for the incident to be handled.
    let filed = k
        .vault
        .file_report(Some(&k.officer), &inc.id, "cn", "initial")
        .unwrap();
    assert_eq!(
        filed
            .clocks
            .iter()
            .find(|c| c.part == "initial")
            .unwrap()
            .status,
        "filed"
    );
    assert_eq!(filed.reports[0].digest.len(), 64);
    assert!(matches!(
        k.vault
            .file_report(Some(&k.officer), &inc.id, "cn", "final"),
        Err(Error::Conflict(_))
    ));
    k.vault
        .incident_step(
            Some(&k.officer),
            &inc.id,
            "containment",
            "bucket made private",
        )
        .unwrap();
    let handled = k
        .vault
        .incident_step(Some(&k.officer), &inc.id, "handled", "keys rotated")
        .unwrap();
    let fin = handled.clocks.iter().find(|c| c.part == "final").unwrap();
    assert_eq!(
        fin.due_at.as_deref(),
        Some(rfc3339(k.clock.now_ms() + 30 * crate::DAY_MS).as_str())
    );
    assert!(
        k.vault
            .deadlines(Some(&k.officer), 31 * crate::DAY_MS)
            .unwrap()
            .iter()
            .any(|d| d.id == format!("{}:cn:final", inc.id))
    );
    k.vault
        .file_report(Some(&k.officer), &inc.id, "cn", "final")
        .unwrap();
    let board = k
        .vault
        .deadlines(Some(&k.officer), 365 * crate::DAY_MS)
        .unwrap();
    assert!(
        !board.iter().any(|d| d.kind == "incident_report"),
        "every report filed"
    );

    // A general incident owes China's measures no report; a CII operator's clock is 1 hour.
    let general = k
        .vault
        .open_incident(
            Some(&k.officer),
            &incident("Minor", "general", t0, exposure(&["phone"], t0, t0)),
        )
        .unwrap();
    assert!(general.clocks.is_empty());
}

#[test]
fn p22_the_report_carries_every_pipl_art_57_item_in_both_languages() {
    let k = kit();
    for _ in 0..3 {
        k.subject_with_account();
    }
    let inc = open_now(&k, "major", &["phone", "email"]);
    k.vault
        .incident_step(
            Some(&k.officer),
            &inc.id,
            "containment",
            "bucket made private",
        )
        .unwrap();
    for (lang, items) in [
        (
            "en",
            [
                "Categories of personal information involved",
                "Cause: a misconfigured",
                "Possible harm: phishing",
                "Remedial measures taken",
                "bucket made private",
                "What you can do to reduce the harm: Be wary",
                "Contact: privacy@example-cloud.cn",
                "People affected: 3",
                "in cn-mainland: 3",
                "Phone number (phone): 3 people",
            ],
        ),
        (
            "zh-CN",
            [
                "涉及的个人信息种类",
                "发生原因：a misconfigured",
                "可能造成的危害：phishing",
                "已采取的补救措施",
                "bucket made private",
                "个人可以采取的减轻危害的措施：警惕",
                "联系方式：privacy@example-cloud.cn",
                "受影响人数：3",
                "cn-mainland：3 人",
                "重大",
            ],
        ),
    ] {
        let report = k
            .vault
            .incident_report(Some(&k.officer), &inc.id, Some(lang))
            .unwrap();
        assert_eq!(report.affected.subjects, 3);
        assert_eq!(
            report
                .categories
                .iter()
                .map(|c| c.subjects)
                .collect::<Vec<_>>(),
            [3, 3]
        );
        let text = k.vault.report_text(&report).unwrap();
        for item in items {
            assert!(text.contains(item), "{lang} report lacks {item:?}:\n{text}");
        }
    }
    assert!(matches!(
        k.vault
            .incident_report(Some(&k.officer), &inc.id, Some("fr")),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        k.vault.incident_report(Some(&k.officer), "inc_nope", None),
        Err(Error::NotFound(Missing::Incident))
    ));
}

#[test]
fn p22_notifying_the_affected_is_resumable_and_counted() {
    let k = kit();
    let subjects: Vec<SubjectId> = (0..5).map(|_| k.subject_with_account()).collect();
    k.vault.set_language(None, subjects[1], "en").unwrap();
    k.vault.erase(&k.officer, subjects[4], "asked").unwrap();
    let inc = open_now(&k, "major", &["phone"]);
    let run = k.vault.notify_incident(Some(&k.officer), &inc.id).unwrap();
    assert_eq!(run.notification.pending, inc.affected.subjects);
    assert!(matches!(
        k.vault.notify_incident(Some(&k.officer), &inc.id),
        Err(Error::Conflict(_))
    ));
    // One batch, then a "crash": the next step goes on from where the last one committed.
    assert_eq!(
        k.vault.incident_notice_step(&inc.id, 2).unwrap(),
        Some((2, inc.affected.subjects, false))
    );
    let reopened = k.reopen().unwrap();
    while let Some((_, _, false)) = reopened.incident_notice_step(&inc.id, 2).unwrap() {}
    let mailed = mails_of(&k, &inc.id);
    let expected: Vec<String> = {
        let mut v: Vec<String> = subjects[..4]
            .iter()
            .map(|s| format!("subject:{s}"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        mailed, expected,
        "every affected subject still held, each once; the erased one skipped"
    );
    let now = k
        .vault
        .incident(Some(&k.officer), &inc.id)
        .unwrap()
        .notification;
    assert_eq!(
        (now.pending, now.skipped, now.done),
        (4, inc.affected.subjects - 4, true)
    );
    // The mail is in the subject's language, with the incident's advice.
    let row = k
        .vault
        .store()
        .message(&format!("inm_{}_{}", inc.id, hex::encode(subjects[1].0)))
        .unwrap()
        .unwrap();
    let mail = k.vault.render_mail(&row).unwrap().unwrap();
    assert!(mail.body.contains("Be wary of calls"), "{}", mail.body);
    let row = k
        .vault
        .store()
        .message(&format!("inm_{}_{}", inc.id, hex::encode(subjects[0].0)))
        .unwrap()
        .unwrap();
    assert!(
        k.vault
            .render_mail(&row)
            .unwrap()
            .unwrap()
            .body
            .contains("警惕")
    );
    // Announced publicly.
    let notices = k.vault.notices(Some("en")).unwrap();
    assert!(notices.iter().any(|n| n.kind == "incident"
        && n.id == inc.id
        && n.changes.iter().any(|l| l.contains("Be wary"))));
}

#[test]
fn p15_a_restricted_legal_disclosure_is_told_when_the_restriction_ends() {
    let k = kit();
    let s = k.subject_with_account();
    let until = k.clock.now_ms() + 10 * crate::DAY_MS;
    let d = LegalDisclosure {
        basis: "court_order".into(),
        requested_by: "Haidian District People's Court".into(),
        reference: "(2026) Jing 0108 Min Chu 123".into(),
        categories: vec!["name".into(), "phone".into()],
        restriction: Some(Restriction {
            basis: "non-disclosure order".into(),
            until: rfc3339(until),
        }),
    };
    assert!(matches!(
        k.vault.disclose_legal(&k.service, s, &d),
        Err(Error::NotPermitted { .. })
    ));
    let done = k.vault.disclose_legal(&k.officer, s, &d).unwrap();
    assert_eq!(done.values.len(), 2);
    assert_eq!(done.notice_at, rfc3339(until));
    // Nothing of it is told: not the subject's export, not a mail due now.
    let export = k
        .vault
        .export(&k.officer, s, Some("subject asked"))
        .unwrap();
    assert!(export.disclosures.is_empty());
    let now = k.clock.now_ms();
    assert!(
        k.vault
            .store()
            .claim_outbox(now, now + 1000, 100)
            .unwrap()
            .iter()
            .all(|m| m.event != "disclosure.legal")
    );
    let board = k
        .vault
        .deadlines(Some(&k.officer), 30 * crate::DAY_MS)
        .unwrap();
    assert!(
        board
            .iter()
            .any(|b| b.kind == "disclosure_notice" && b.due_ms == until)
    );
    // The audit log keeps digests of the body and reference, never the text.
    let last = k
        .entries_from(1)
        .into_iter()
        .rfind(|e| e.action == "disclosure.record")
        .unwrap();
    assert!(!last.detail.contains("Haidian") && !last.detail.contains("Min Chu"));
    // When the restriction ends, the notice is due and the export accounts for it.
    k.clock.set(until);
    let due = k
        .vault
        .store()
        .claim_outbox(until, until + 1000, 100)
        .unwrap();
    let m = due
        .iter()
        .find(|m| m.event == "disclosure.legal")
        .expect("the notice is due");
    let mail = k.vault.render_mail(m).unwrap().unwrap();
    assert!(
        mail.body.contains("Haidian District People's Court") && mail.body.contains("法院命令"),
        "{}",
        mail.body
    );
    let export = k
        .vault
        .export(&k.officer, s, Some("subject asked"))
        .unwrap();
    assert_eq!(export.disclosures.len(), 1);
    let a = &export.disclosures[0];
    assert_eq!(
        (a.legal_basis.as_str(), a.recipient.as_str()),
        ("court_order", "Haidian District People's Court")
    );
    assert_eq!(a.reference.as_deref(), Some("(2026) Jing 0108 Min Chu 123"));
    assert_eq!(a.categories, ["name", "phone"]);
}

#[test]
fn p15_an_unrestricted_legal_disclosure_is_told_at_once() {
    let k = kit();
    let s = k.subject_with_account();
    k.vault
        .disclose_legal(
            &k.officer,
            s,
            &LegalDisclosure {
                basis: "authority_request".into(),
                requested_by: "Public Security Bureau".into(),
                reference: "PSB-2026-77".into(),
                categories: vec!["email".into()],
                restriction: None,
            },
        )
        .unwrap();
    let now = k.clock.now_ms();
    assert!(
        k.vault
            .store()
            .claim_outbox(now, now + 1000, 100)
            .unwrap()
            .iter()
            .any(|m| m.event == "disclosure.legal")
    );
    assert_eq!(
        k.vault
            .export(&k.officer, s, Some("asked"))
            .unwrap()
            .disclosures[0]
            .legal_basis,
        "authority_request"
    );
}

fn with_successor() -> Policy {
    let text = format!(
        "{}\n[recipients.newco]\nlegal_name = \"NewCo Cloud Ltd.\"\nkind = \"successor\"\npurposes = [\"provide_service\"]\ncategories = [\"name\", \"email\", \"phone\"]\nagreement = \"MA-2026-001\"\nregion = \"cn-mainland\"\n",
        steward_policy::EXAMPLE_POLICY
    );
    Policy::parse(&text, "successor.toml").unwrap()
}

#[test]
fn p14_a_transfer_is_told_first_refused_before_its_date_and_run_after() {
    let k = kit_with(with_successor());
    let (a, held, erased) = (
        k.subject_with_account(),
        k.subject_with_account(),
        k.subject_with_account(),
    );
    let plan = |date: &str| NewTransfer {
        successor: "newco".into(),
        categories: vec!["name".into(), "email".into()],
        subjects: None,
        date: date.into(),
    };
    // 2026-01-01 now; 30 days' notice.
    assert!(matches!(
        k.vault.plan_transfer(Some(&k.officer), &plan("2026-01-20")),
        Err(Error::TransferTooSoon { .. })
    ));
    assert!(matches!(
        k.vault.plan_transfer(
            Some(&k.officer),
            &NewTransfer {
                successor: "courier".into(),
                ..plan("2026-03-01")
            }
        ),
        Err(Error::DisclosureOutOfScope { .. })
    ));
    let t = k
        .vault
        .plan_transfer(Some(&k.officer), &plan("2026-02-01"))
        .unwrap();
    assert_eq!(t.subjects, 3);
    assert!(matches!(
        k.vault.run_transfer(Some(&k.officer), &t.id),
        Err(Error::TransferNotDue { .. })
    ));
    k.vault
        .policy_tick(std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        mails_of(&k, &t.id).len(),
        3,
        "every subject is told when the plan is made"
    );
    let row = k
        .vault
        .store()
        .message(&format!("inm_{}_{}", t.id, hex::encode(a.0)))
        .unwrap()
        .unwrap();
    assert!(
        k.vault
            .render_mail(&row)
            .unwrap()
            .unwrap()
            .body
            .contains("NewCo Cloud Ltd.")
    );
    k.vault
        .place_hold(
            &k.officer,
            held,
            &["email"],
            "dispute",
            "case 7",
            k.clock.now_ms() + 365 * crate::DAY_MS,
        )
        .unwrap();
    k.vault.erase(&k.officer, erased, "asked").unwrap();
    k.clock.set(1_769_904_000_000); // 2026-02-01
    let out = k.vault.run_transfer(Some(&k.officer), &t.id).unwrap();
    let ran = out.transfer.run.clone().unwrap();
    assert_eq!(ran.transferred, 1);
    assert_eq!(
        ran.refused,
        BTreeMap::from([("erased".to_string(), 1), ("held".to_string(), 1)])
    );
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let bundle = open_bundle(
        &t.id,
        &b64.decode(&out.key).unwrap(),
        &b64.decode(&out.bundle).unwrap(),
    )
    .unwrap();
    let moved = bundle["subjects"].as_array().unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0]["subject"], a.to_string());
    assert!(
        moved[0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["value"] == "li.lei@example.cn")
    );
    assert!(open_bundle(&t.id, &[7; 32], &b64.decode(&out.bundle).unwrap()).is_err());
    let export = k.vault.export(&k.officer, a, Some("asked")).unwrap();
    assert_eq!(
        (
            export.disclosures[0].recipient.as_str(),
            export.disclosures[0].legal_basis.as_str()
        ),
        ("newco", "transfer")
    );
    assert!(matches!(
        k.vault.run_transfer(Some(&k.officer), &t.id),
        Err(Error::Conflict(_))
    ));
}

#[test]
fn p22_a_case_damaged_behind_steward_is_storage_corrupt_not_a_crash() {
    let k = kit();
    k.subject_with_account();
    let inc = open_now(&k, "major", &["phone"]);
    k.sql(
        "UPDATE cases SET doc = '{\"id\": 1}'",
        "UPDATE {schema}.cases SET doc = '{\"id\": 1}'",
    );
    let e = k.vault.incident(Some(&k.officer), &inc.id).unwrap_err();
    assert_eq!(e.code(), Code::StorageCorrupt, "{e}");
    assert_eq!(
        k.vault.incidents(Some(&k.officer)).unwrap_err().code(),
        Code::StorageCorrupt
    );
    // The deadline board says so rather than leaving the incident's clocks out.
    assert_eq!(
        k.vault
            .deadlines(Some(&k.officer), crate::DAY_MS)
            .unwrap_err()
            .code(),
        Code::StorageCorrupt
    );
}

#[test]
fn p22_a_breach_at_a_processor_takes_what_was_disclosed_to_it() {
    let k = kit();
    let t0 = k.clock.now_ms();
    let (a, b, _c) = (
        k.subject_with_account(),
        k.subject_with_account(),
        k.subject_with_account(),
    );
    // a's phone number went to the SMS gateway, b's to the courier; c's nowhere.
    for (s, to) in [(a, "sms_gateway"), (b, "courier")] {
        k.vault
            .disclose(&k.service, s, to, &["phone"], "provide_service", None)
            .unwrap();
    }
    k.clock.advance(HOUR);
    let now = k.clock.now_ms();
    let at_gateway = |basis: &str, from: i64| ExposureInput {
        recipient: Some("sms_gateway".into()),
        basis: Some(basis.into()),
        ..exposure(&["phone"], from, now)
    };
    let inc = k
        .vault
        .open_incident(
            Some(&k.officer),
            &incident(
                "Gateway breach",
                "major",
                now,
                at_gateway("stored", now - 60_000),
            ),
        )
        .unwrap();
    assert_eq!(inc.affected.subjects, 1, "only a's number was held there");
    assert_eq!(inc.exposure.recipient.as_deref(), Some("sms_gateway"));
    assert_eq!(inc.affected.by_region.get("cn-mainland"), Some(&1));
    // Disclosed in the window only: a's went before it.
    let later = recompute(&k, &inc.id, at_gateway("collected", now - 60_000));
    assert_eq!(later.affected.subjects, 0);
    let all = recompute(&k, &inc.id, at_gateway("read", t0));
    assert_eq!(all.affected.subjects, 1);
    let unknown = ExposureInput {
        recipient: Some("nobody".into()),
        ..exposure(&["phone"], t0, now)
    };
    assert!(matches!(
        k.vault
            .open_incident(Some(&k.officer), &incident("x", "major", now, unknown)),
        Err(Error::Unknown { .. })
    ));
}

/// Opens a transfer bundle with its key as `docs/incidents.md` describes it: the JSON inside.
fn open_bundle(plan: &str, key: &[u8], bundle: &[u8]) -> Result<serde_json::Value, Error> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let rest = bundle
        .strip_prefix(crate::legal::BUNDLE_MAGIC)
        .filter(|r| r.len() >= 12 + 16)
        .ok_or_else(|| Error::EvidenceInvalid("not a transfer bundle".into()))?;
    let (nonce, sealed) = rest.split_at(12);
    let opening = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| Error::EvidenceInvalid("a bundle key is 32 bytes".into()))?,
    );
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Integrity)?;
    let mut data = sealed.to_vec();
    let plain = opening
        .open_in_place(nonce, Aad::from(plan.as_bytes()), &mut data)
        .map_err(|_| Error::EvidenceInvalid("the bundle does not open with this key".into()))?;
    serde_json::from_slice(plain)
        .map_err(|_| Error::EvidenceInvalid("the bundle is not JSON".into()))
}
