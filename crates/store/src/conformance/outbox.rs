//! Conformance of the outbox and webhook endpoints.

use super::{draft, ensure};
use crate::{Delivery, EndpointRow, Op, OutboxRow, OutboxState, Store};

fn message(id: &str, next_ms: i64) -> OutboxRow {
    OutboxRow {
        id: id.into(),
        channel: "webhook".into(),
        destination: "whe_1".into(),
        event: "request.received".into(),
        payload: "{\"request\":\"req_1\"}".into(),
        state: OutboxState::Pending,
        attempts: 0,
        next_ms,
        lease_ms: 0,
        created_ms: next_ms,
        updated_ms: next_ms,
        last_error: String::new(),
    }
}

fn e(err: crate::StoreError) -> String {
    err.to_string()
}

/// Messages are written with a unit (or not at all), claimed once per lease, oldest due
/// first, settled as delivered or failed (then again, or dead), retried and listed.
pub(super) fn outbox_claims_each_message_once_per_lease(
    make: super::Factory<'_>,
) -> Result<(), String> {
    let (store, _) = make();
    let store: &dyn Store = store.as_ref();
    // A unit that fails writes no message.
    let failed = store.commit(
        vec![
            Op::Enqueue(vec![message("msg_x", 1)]),
            Op::Enqueue(vec![message("msg_x", 1)]),
        ],
        vec![draft("act")],
    );
    ensure(failed.is_err(), "a unit writing one id twice fails")?;
    ensure(
        store.outbox(None, 10).map_err(e)?.is_empty(),
        "nothing from a failed unit",
    )?;
    store
        .commit(
            vec![Op::Enqueue(vec![
                message("msg_b", 20),
                message("msg_a", 10),
                message("msg_c", 500),
            ])],
            vec![draft("act")],
        )
        .map_err(e)?;
    let claimed = store.claim_outbox(100, 1_000, 10).map_err(e)?;
    let ids: Vec<&str> = claimed.iter().map(|m| m.id.as_str()).collect();
    ensure(ids == ["msg_a", "msg_b"], "the due ones, oldest first")?;
    ensure(
        claimed.iter().all(|m| m.lease_ms == 1_000),
        "claimed until the lease's end",
    )?;
    // Another dispatcher, before the lease ends: nothing; after it: the same message again.
    ensure(
        store.claim_outbox(200, 1_100, 10).map_err(e)?.is_empty(),
        "a claimed message is not claimed again during its lease",
    )?;
    store
        .settle_outbox("msg_a", &Delivery::Delivered { at_ms: 150 })
        .map_err(e)?;
    let again = store.claim_outbox(1_000, 2_000, 10).map_err(e)?;
    ensure(
        again.iter().map(|m| m.id.as_str()).collect::<Vec<_>>() == ["msg_b", "msg_c"],
        "a lease run out is claimed again; a delivered one never",
    )?;
    store
        .settle_outbox(
            "msg_b",
            &Delivery::Failed {
                at_ms: 1_001,
                next_ms: 5_000,
                dead: false,
                error: "HTTP 500".into(),
            },
        )
        .map_err(e)?;
    store
        .settle_outbox(
            "msg_c",
            &Delivery::Failed {
                at_ms: 1_001,
                next_ms: 5_000,
                dead: true,
                error: "HTTP 410".into(),
            },
        )
        .map_err(e)?;
    ensure(
        store.claim_outbox(4_999, 6_000, 10).map_err(e)?.is_empty(),
        "a failed message waits for its next attempt",
    )?;
    let b = store.message("msg_b").map_err(e)?.ok_or("msg_b is gone")?;
    ensure(
        (
            b.state,
            b.attempts,
            b.next_ms,
            b.lease_ms,
            b.last_error.as_str(),
        ) == (OutboxState::Pending, 1, 5_000, 0, "HTTP 500"),
        "a failure is counted, its reason kept and its claim released",
    )?;
    let dead = store.outbox(Some(OutboxState::Dead), 10).map_err(e)?;
    ensure(
        dead.len() == 1 && dead.first().is_some_and(|m| m.id == "msg_c"),
        "the dead are listed by state",
    )?;
    let delivered = store.message("msg_a").map_err(e)?.ok_or("msg_a is gone")?;
    ensure(
        (delivered.state, delivered.attempts, delivered.updated_ms)
            == (OutboxState::Delivered, 1, 150),
        "a delivery is recorded",
    )?;
    store
        .commit(
            vec![Op::RetryMessage {
                id: "msg_c".into(),
                at_ms: 6_000,
            }],
            vec![draft("outbox.retry")],
        )
        .map_err(e)?;
    let claimed = store.claim_outbox(6_000, 7_000, 10).map_err(e)?;
    ensure(
        claimed
            .iter()
            .map(|m| (m.id.as_str(), m.attempts))
            .collect::<Vec<_>>()
            == [("msg_b", 1), ("msg_c", 0)],
        "a retried message is due again, its attempts counted afresh",
    )?;
    ensure(
        store.claim_outbox(6_000, 7_000, 1).map_err(e)?.is_empty()
            && store.claim_outbox(7_000, 8_000, 1).map_err(e)?.len() == 1,
        "at most `limit` at a time",
    )?;
    ensure(
        store.outbox(None, 2).map_err(e)?.len() == 2,
        "a listing's limit",
    )?;
    Ok(())
}

/// Endpoints are registered, listed in order and disabled.
pub(super) fn webhook_endpoints_are_kept(make: super::Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let store: &dyn Store = store.as_ref();
    let endpoint = |id: &str, at: i64| EndpointRow {
        id: id.into(),
        url: "http://127.0.0.1:9/hook".into(),
        events: "request.received,subject.erased".into(),
        secret: vec![7; 44],
        created_ms: at,
        disabled: false,
    };
    store
        .commit(
            vec![
                Op::PutEndpoint(endpoint("whe_b", 2)),
                Op::PutEndpoint(endpoint("whe_a", 1)),
            ],
            vec![draft("webhook.create")],
        )
        .map_err(e)?;
    store
        .commit(
            vec![Op::DisableEndpoint { id: "whe_b".into() }],
            vec![draft("webhook.disable")],
        )
        .map_err(e)?;
    let all = store.endpoints().map_err(e)?;
    ensure(
        all == [
            endpoint("whe_a", 1),
            EndpointRow {
                disabled: true,
                ..endpoint("whe_b", 2)
            },
        ],
        "endpoints as written, oldest first, the disabled one marked",
    )
}

/// A subject's language is recorded, replaced and forgotten.
pub(super) fn subject_languages_are_kept(make: super::Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let store: &dyn Store = store.as_ref();
    let (a, b) = (super::subject(31), super::subject(32));
    let set = |s, l: Option<&str>| {
        store.commit(
            vec![Op::SetLanguage {
                subject: s,
                language: l.map(String::from),
                at_ms: 1,
            }],
            vec![draft("subject.language")],
        )
    };
    ensure(
        store.subject_language(&a).map_err(e)?.is_none(),
        "none at first",
    )?;
    set(a, Some("en")).map_err(e)?;
    set(b, Some("zh-CN")).map_err(e)?;
    set(a, Some("zh-CN")).map_err(e)?;
    ensure(
        store.subject_language(&a).map_err(e)?.as_deref() == Some("zh-CN"),
        "the newest replaces",
    )?;
    set(b, None).map_err(e)?;
    ensure(
        store.subject_language(&b).map_err(e)?.is_none()
            && store.subject_language(&a).map_err(e)?.is_some(),
        "forgotten for one subject only",
    )
}

/// A device link is read from both ends, made once however often it is asked for, and
/// forgotten end by end.
pub(super) fn device_links_are_kept(make: super::Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let store: &dyn Store = store.as_ref();
    let (person, visitor, other) = (super::subject(41), super::subject(42), super::subject(43));
    let link = |v, at_ms| {
        store.commit(
            vec![Op::LinkDevice {
                subject: person,
                visitor: v,
                at_ms,
            }],
            vec![draft("subject.link")],
        )
    };
    ensure(store.links(&person).map_err(e)?.is_empty(), "none at first")?;
    link(visitor, 5).map_err(e)?;
    link(visitor, 9).map_err(e)?;
    link(other, 7).map_err(e)?;
    let row = |o, kind: &str, linked_ms| crate::LinkRow {
        other: o,
        kind: kind.into(),
        linked_ms,
    };
    ensure(
        store.links(&person).map_err(e)?
            == vec![row(visitor, "device", 5), row(other, "device", 7)],
        "the person's end lists each device once, as first linked, oldest first",
    )?;
    ensure(
        store.links(&visitor).map_err(e)? == vec![row(person, "owner", 5)],
        "the visitor's end names the person",
    )?;
    store
        .commit(
            vec![Op::ForgetLinks { subject: person }],
            vec![draft("subject.erase")],
        )
        .map_err(e)?;
    ensure(
        store.links(&person).map_err(e)?.is_empty() && store.links(&visitor).map_err(e)?.len() == 1,
        "forgotten at one end only",
    )
}

/// Published versions come back in publication order; a version string is taken once; what
/// subjects were told and accepted keeps its first time, is counted per version and is
/// forgotten for an erased subject; a campaign's pages list subjects holding a category once,
/// in key order.
pub(super) fn policy_versions_and_events_are_kept(make: super::Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let store: &dyn Store = store.as_ref();
    let version = |v: &str, serial: i64| crate::PolicyVersionRow {
        version: v.into(),
        serial,
        digest: format!("{serial:064x}"),
        text: format!("[policy]\nversion = \"{v}\"\n"),
        effective_ms: serial * 1_000,
        published_ms: serial * 10,
        published_by: "staff:alice".into(),
        changes: "[]".into(),
    };
    for (v, n) in [("2026.2", 2), ("2026.1", 1)] {
        store
            .commit(
                vec![Op::PublishPolicy(version(v, n))],
                vec![draft("policy.publish")],
            )
            .map_err(e)?;
    }
    ensure(
        store.policy_versions().map_err(e)? == [version("2026.1", 1), version("2026.2", 2)],
        "versions as published, in serial order",
    )?;
    ensure(
        store.policy_version_heads().map_err(e)?
            == [(1, format!("{:064x}", 1)), (2, format!("{:064x}", 2))],
        "the heads of the versions, in serial order",
    )?;
    ensure(
        store
            .commit(
                vec![Op::PublishPolicy(version("2026.1", 3))],
                vec![draft("policy.publish")],
            )
            .is_err(),
        "a version string is published once",
    )?;
    let (a, b) = (super::subject(41), super::subject(42));
    let event = |s, v: &str, event: &str, how: &str, at_ms| crate::PolicyEventRow {
        subject: s,
        version: v.into(),
        event: event.into(),
        how: how.into(),
        at_ms,
    };
    store
        .commit(
            vec![Op::PolicyEvents(vec![
                event(a, "2026.2", "notified", "email", 5),
                event(b, "2026.2", "notified", "email", 6),
                event(a, "2026.2", "accepted", "explicit", 7),
            ])],
            vec![draft("notice.sent")],
        )
        .map_err(e)?;
    store
        .commit(
            vec![Op::PolicyEvents(vec![event(
                a,
                "2026.2",
                "accepted",
                "continued_use",
                9,
            )])],
            vec![draft("policy.accept")],
        )
        .map_err(e)?;
    ensure(
        store.policy_events(&a).map_err(e)?
            == [
                event(a, "2026.2", "notified", "email", 5),
                event(a, "2026.2", "accepted", "explicit", 7),
            ],
        "the first time is kept",
    )?;
    ensure(
        store.policy_event_counts("2026.2").map_err(e)?
            == [
                ("accepted".to_string(), "explicit".to_string(), 1),
                ("notified".to_string(), "email".to_string(), 2),
            ],
        "counted per event and how",
    )?;
    store
        .commit(
            vec![Op::ForgetPolicyEvents { subject: a }],
            vec![draft("subject.erase")],
        )
        .map_err(e)?;
    ensure(
        store.policy_events(&a).map_err(e)?.is_empty()
            && store.policy_events(&b).map_err(e)?.len() == 1,
        "forgotten for one subject only",
    )?;
    let holders = [super::subject(45), super::subject(43), super::subject(44)];
    let mut rows = Vec::new();
    for s in holders {
        super::insert_subject(store, s).map_err(e)?;
        rows.push(super::record(store, s, "email"));
        rows.push(super::record(store, s, "email"));
    }
    rows.push(super::record(store, super::subject(46), "name"));
    super::insert_subject(store, super::subject(46)).map_err(e)?;
    store
        .commit(vec![Op::InsertRecords(rows)], vec![draft("pi.collect")])
        .map_err(e)?;
    let first = store.subjects_with_category("email", None, 2).map_err(e)?;
    let rest = store
        .subjects_with_category("email", first.last(), 2)
        .map_err(e)?;
    ensure(
        first == [super::subject(43), super::subject(44)] && rest == [super::subject(45)],
        "pages of holders, each once, in key order",
    )
}

pub(super) fn cases_their_sets_and_matching_records_are_kept(
    make: super::Factory<'_>,
) -> Result<(), String> {
    let (store, _) = make();
    let store = store.as_ref();
    let case = |id: &str, revision, kind: &str| crate::CaseRow {
        id: id.into(),
        revision,
        kind: kind.into(),
        at_ms: revision * 10,
        doc: format!("{{\"r\":{revision}}}"),
    };
    for c in [
        case("inc_b", 1, "incident"),
        case("inc_a", 1, "incident"),
        case("inc_a", 2, "incident"),
        case("trf_a", 1, "transfer"),
    ] {
        store
            .commit(vec![Op::PutCase(c)], vec![draft("incident.open")])
            .map_err(e)?;
    }
    ensure(
        store
            .commit(
                vec![Op::PutCase(case("inc_a", 2, "incident"))],
                vec![draft("incident.update")],
            )
            .is_err_and(|x| matches!(x, crate::StoreError::Conflict(_))),
        "a revision already written refuses a second writer",
    )?;
    ensure(
        store.cases("incident").map_err(e)?
            == [case("inc_a", 2, "incident"), case("inc_b", 1, "incident")],
        "the latest revision of each case of a kind, by id",
    )?;
    ensure(
        store.case("inc_a").map_err(e)? == Some(case("inc_a", 2, "incident"))
            && store.case("inc_c").map_err(e)?.is_none(),
        "one case, at its latest revision",
    )?;
    let (first, second) = ([1u8; 32].to_vec(), [2u8; 16].to_vec());
    let chunks = vec![first.clone(), second.clone()];
    store
        .commit(
            vec![Op::PutCaseSet {
                id: "inc_a".into(),
                version: 1,
                chunks: chunks.clone(),
            }],
            vec![draft("incident.affected")],
        )
        .map_err(e)?;
    ensure(
        store.case_chunk("inc_a", 1, 1).map_err(e)? == Some(second)
            && store.case_chunk("inc_a", 1, 0).map_err(e)? == Some(first)
            && store.case_chunk("inc_a", 1, 2).map_err(e)?.is_none()
            && store.case_chunk("inc_a", 2, 0).map_err(e)?.is_none(),
        "a set's chunks by version and number",
    )?;

    let (a, b, c) = (super::subject(51), super::subject(52), super::subject(53));
    let mut rows = Vec::new();
    for (s, category, feature, at) in [
        (a, "email", "account", 100),
        (a, "email", "account", 300),
        (a, "phone", "account", 100),
        (b, "email", "support", 200),
        (c, "email", "account", 900),
        (c, "name", "account", 100),
    ] {
        let mut r = super::record(store, s, category);
        r.feature = feature.into();
        r.collected_ms = at;
        rows.push(r);
    }
    for s in [a, b, c] {
        super::insert_subject(store, s).map_err(e)?;
    }
    store
        .commit(vec![Op::InsertRecords(rows)], vec![draft("pi.collect")])
        .map_err(e)?;
    let sorted = |mut v: Vec<crate::SubjectKey>| {
        v.sort();
        v
    };
    ensure(
        sorted(store.matching_records("email", &[], 0, 500).map_err(e)?) == [a, b]
            && store.matching_records("phone", &[], 0, 500).map_err(e)? == [a],
        "each subject once, inside the window",
    )?;
    ensure(
        store
            .matching_records("email", &["support"], 0, 1000)
            .map_err(e)?
            == [b],
        "narrowed to the features named",
    )?;
    ensure(
        sorted(store.matching_records("email", &[], 200, 300).map_err(e)?) == [a, b],
        "both ends of the window included",
    )?;

    let mut m1 = message("inm_inc_a_1", 5);
    let mut m2 = message("inm_inc_a_2", 9);
    m2.event = "disclosure.legal".into();
    m1.event = "disclosure.legal".into();
    let m3 = message("inm_inc_b_1", 1);
    store
        .commit(
            vec![Op::Enqueue(vec![m2.clone(), m1.clone(), m3])],
            vec![draft("incident.notify")],
        )
        .map_err(e)?;
    store
        .settle_outbox("inm_inc_a_2", &crate::Delivery::Delivered { at_ms: 10 })
        .map_err(e)?;
    ensure(
        store.message_counts("inm_inc_a_").map_err(e)?
            == [
                (crate::OutboxState::Delivered, 1),
                (crate::OutboxState::Pending, 1),
            ],
        "messages counted by state under an id prefix",
    )?;
    ensure(
        store
            .pending_messages("disclosure.legal")
            .map_err(e)?
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>()
            == ["inm_inc_a_1"],
        "the pending messages of one event",
    )
}
