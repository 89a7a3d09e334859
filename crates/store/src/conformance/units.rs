//! The first checks: units of work, the chain, the read path, consent, purging, ids, the
//! keyring's destruction and API keys.

use crate::{
    ConsentRow, DisclosureRow, IndexRow, Op, RecordRow, StoreError, SubjectRow, SubjectState,
};

use super::{Factory, draft, e, ensure, insert_subject, record, subject};

pub(super) fn unit_of_work_is_atomic(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let s = subject(1);
    insert_subject(store.as_ref(), s).map_err(e)?;
    let head = store.audit_head().map_err(e)?;
    // The second insert of the same subject violates its key: nothing of the unit may stay.
    let r = store.commit(
        vec![
            Op::InsertRecords(vec![record(store.as_ref(), s, "email")]),
            Op::InsertSubject(SubjectRow {
                id: s,
                state: SubjectState::Active,
                created_ms: 2,
                closed_ms: None,
                tag: vec![1; 16],
            }),
        ],
        vec![draft("pi.collect")],
    );
    ensure(r.is_err(), "a failing unit committed")?;
    ensure(
        store.records(&s).map_err(e)?.is_empty(),
        "records of a failed unit remain",
    )?;
    ensure(
        store.audit_head().map_err(e)? == head,
        "audit of a failed unit remains",
    )?;
    // A unit whose work fails applies nothing either.
    let r = store.read_commit(&mut |_| Err(StoreError::Backend("work failed".into())));
    ensure(r.is_err(), "failed work reported success")?;
    ensure(
        store.audit_head().map_err(e)? == head,
        "failed work moved the head",
    )
}

/// `commit_each`: each unit all or nothing on its own, answered in order, and the chain runs
/// on unbroken over the units that committed.
pub(super) fn units_committed_together_fail_alone(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let s = subject(9);
    insert_subject(store.as_ref(), s).map_err(e)?;
    let (head, _) = store.audit_head().map_err(e)?;
    let duplicate = Op::InsertSubject(SubjectRow {
        id: s,
        state: SubjectState::Active,
        created_ms: 2,
        closed_ms: None,
        tag: vec![1; 16],
    });
    let answers = store.commit_each(vec![
        (vec![], vec![draft("first"), draft("second")]),
        (
            vec![
                Op::InsertRecords(vec![record(store.as_ref(), s, "email")]),
                duplicate,
            ],
            vec![draft("failing")],
        ),
        (
            vec![Op::InsertRecords(vec![record(store.as_ref(), s, "phone")])],
            vec![draft("third")],
        ),
    ]);
    let [Ok(first), Err(_), Ok(third)] = answers.as_slice() else {
        return Err(format!(
            "answers are not ok, failed, ok: {:?}",
            answers.iter().map(Result::is_ok).collect::<Vec<_>>()
        ));
    };
    let seqs: Vec<u64> = first.iter().chain(third).map(|x| x.seq).collect();
    ensure(
        seqs == [head + 1, head + 2, head + 3],
        "the committed units' entries are not consecutive",
    )?;
    ensure(
        third.first().map(|x| x.prev_hash) == first.last().map(|x| x.hash),
        "the units' entries are not chained",
    )?;
    let records = store.records(&s).map_err(e)?;
    ensure(
        records.len() == 1 && records.iter().all(|r| r.category == "phone"),
        "the failed unit's records remain, or the next unit's are missing",
    )?;
    let mut actions = Vec::new();
    store
        .audit_scan(head + 1, &mut |raw| {
            actions.push(raw.seq);
            true
        })
        .map_err(e)?;
    ensure(
        actions == [head + 1, head + 2, head + 3],
        "the failed unit's entry was stored",
    )
}

pub(super) fn audit_chain_continues_across_units(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let a = store
        .commit(vec![], vec![draft("a"), draft("b")])
        .map_err(e)?;
    let b = store.commit(vec![], vec![draft("c")]).map_err(e)?;
    let (a1, a2, b1) = match (a.as_slice(), b.as_slice()) {
        ([a1, a2], [b1]) => (a1, a2, b1),
        _ => return Err("wrong number of entries".into()),
    };
    ensure(
        a1.seq == 1 && a2.seq == 2 && b1.seq == 3,
        "seqs are not 1, 2, 3",
    )?;
    ensure(
        a2.prev_hash == a1.hash && b1.prev_hash == a2.hash,
        "entries are not chained",
    )?;
    ensure(
        store.audit_head().map_err(e)? == (3, b1.hash),
        "head is not the last entry",
    )?;
    let mut seen = Vec::new();
    store
        .audit_scan(2, &mut |raw| {
            seen.push(raw.seq);
            true
        })
        .map_err(e)?;
    ensure(seen == [2, 3], "scan from 2 did not return 2, 3")
}

pub(super) fn subject_records_joins_state_consent_records(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let s = subject(2);
    ensure(
        store
            .subject_records(&s, None, &["email"])
            .map_err(e)?
            .is_none(),
        "unknown subject found",
    )?;
    insert_subject(store.as_ref(), s).map_err(e)?;
    let rows = vec![
        record(store.as_ref(), s, "email"),
        record(store.as_ref(), s, "phone"),
        record(store.as_ref(), s, "email"),
    ];
    store
        .commit(
            vec![
                Op::InsertRecords(rows),
                Op::RecordConsent(ConsentRow {
                    subject: s,
                    target: "purpose:surveys".into(),
                    granted: true,
                    separate: false,
                    channel: "web".into(),
                    policy_version: "1".into(),
                    at_ms: 3,
                    audit_seq: 0,
                    tag: vec![2; 16],
                }),
            ],
            vec![draft("pi.collect")],
        )
        .map_err(e)?;
    let found = store
        .subject_records(&s, Some("purpose:surveys"), &["email"])
        .map_err(e)?
        .ok_or("subject not found")?;
    ensure(found.state == SubjectState::Active, "state")?;
    ensure(
        found
            .consent
            .as_ref()
            .is_some_and(|c| c.granted && c.tag == vec![2; 16]),
        "consent (and its tag) not seen",
    )?;
    ensure(found.state_tag == vec![1; 16], "subject tag not seen")?;
    ensure(found.records.len() == 2, "email records")?;
    ensure(
        found
            .records
            .windows(2)
            .all(|w| w.first().map(|r| r.id) < w.get(1).map(|r| r.id)),
        "records not by id",
    )?;
    let two = store
        .subject_records(&s, Some("purpose:other"), &["email", "phone"])
        .map_err(e)?
        .ok_or("missing")?;
    ensure(
        two.consent.is_none() && two.records.len() == 3,
        "two categories",
    )?;
    let none = store
        .subject_records(&s, None, &[])
        .map_err(e)?
        .ok_or("missing")?;
    ensure(
        none.records.is_empty(),
        "no categories asked, records returned",
    )?;
    store
        .commit(
            vec![Op::SetSubjectState {
                subject: s,
                state: SubjectState::Erasing,
                tag: vec![6; 16],
            }],
            vec![],
        )
        .map_err(e)?;
    let erased = store
        .subject_records(&s, None, &["email"])
        .map_err(e)?
        .ok_or("missing")?;
    ensure(
        erased.state == SubjectState::Erasing,
        "state change not seen",
    )
}

pub(super) fn consent_in_force_is_latest_event(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let s = subject(3);
    insert_subject(store.as_ref(), s).map_err(e)?;
    for (granted, at_ms) in [(true, 10), (false, 20)] {
        store
            .commit(
                vec![Op::RecordConsent(ConsentRow {
                    subject: s,
                    target: "purpose:offers".into(),
                    granted,
                    separate: false,
                    channel: "app".into(),
                    policy_version: "1".into(),
                    at_ms,
                    audit_seq: 0,
                    tag: vec![2; 16],
                })],
                vec![draft("consent")],
            )
            .map_err(e)?;
    }
    let now = store
        .consent(&s, "purpose:offers")
        .map_err(e)?
        .ok_or("no consent")?;
    ensure(
        !now.granted && now.at_ms == 20,
        "in force is not the latest",
    )?;
    ensure(
        now.audit_seq == 3,
        "consent does not point at its audit entry",
    )?;
    let history = store.consent_history(&s).map_err(e)?;
    ensure(
        history.len() == 2 && history.first().is_some_and(|c| c.granted),
        "history",
    )?;
    store
        .commit(
            vec![Op::InsertDisclosure(DisclosureRow {
                subject: s,
                recipient: "courier".into(),
                categories: "name,phone".into(),
                purpose: "provide_service".into(),
                legal_basis: String::new(),
                at_ms: 30,
                audit_seq: 0,
            })],
            vec![draft("disclosure")],
        )
        .map_err(e)?;
    let d = store.disclosures(&s).map_err(e)?;
    ensure(
        d.len() == 1 && d.first().is_some_and(|d| d.audit_seq == 4),
        "disclosure",
    )?;
    // The whole file at once says what the single queries say.
    store
        .commit(
            vec![Op::InsertRecords(vec![record(store.as_ref(), s, "email")])],
            vec![draft("collect")],
        )
        .map_err(e)?;
    let file = store.subject_file(&s).map_err(e)?;
    ensure(
        file.subject == store.subject(&s).map_err(e)?
            && file.records == store.records(&s).map_err(e)?
            && file.records.len() == 1
            && file.consents == store.consents_in_force(&s).map_err(e)?
            && file.history == history
            && file.disclosures == d,
        "subject_file differs from its parts",
    )?;
    ensure(
        store
            .subject_file(&subject(99))
            .map_err(e)?
            .subject
            .is_none(),
        "a missing subject has a file",
    )
}

pub(super) fn purge_deletes_in_batches(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let (s, other) = (subject(4), subject(5));
    insert_subject(store.as_ref(), s).map_err(e)?;
    insert_subject(store.as_ref(), other).map_err(e)?;
    let mut rows: Vec<RecordRow> = (0..25)
        .map(|_| record(store.as_ref(), s, "ip_address"))
        .collect();
    let index: Vec<IndexRow> = rows
        .iter()
        .map(|r| IndexRow {
            digest: [9; 16],
            subject: s,
            record: r.id,
        })
        .collect();
    rows.push(record(store.as_ref(), other, "ip_address"));
    store
        .commit(
            vec![
                Op::InsertRecords(rows),
                Op::InsertIndex(index),
                Op::EnqueuePurge {
                    subject: s,
                    at_ms: 1,
                },
            ],
            vec![],
        )
        .map_err(e)?;
    ensure(
        store.find_by_index(&[9; 16]).map_err(e)? == vec![s],
        "index lookup",
    )?;
    ensure(store.purge_queue().map_err(e)? == vec![s], "purge queue")?;
    let mut counts = Vec::new();
    loop {
        let n = store.purge_records(&s, 10).map_err(e)?;
        counts.push(n);
        if n < 10 {
            break;
        }
    }
    ensure(counts == [10, 10, 5], "batches were not 10, 10, 5")?;
    ensure(store.records(&s).map_err(e)?.is_empty(), "records left")?;
    ensure(
        store.find_by_index(&[9; 16]).map_err(e)?.is_empty(),
        "index rows left",
    )?;
    ensure(
        store.records(&other).map_err(e)?.len() == 1,
        "another subject's record went",
    )?;
    store
        .commit(vec![Op::DequeuePurge { subject: s }], vec![])
        .map_err(e)?;
    ensure(store.purge_queue().map_err(e)?.is_empty(), "dequeue")
}

pub(super) fn record_ids_are_unique(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let a = store.next_record_ids(100_000).map_err(e)?;
    let b = store.next_record_ids(1).map_err(e)?;
    ensure(b >= a + 100_000, "ranges overlap")
}

pub(super) fn keyring_destroy_is_idempotent(make: Factory<'_>) -> Result<(), String> {
    let (_, keyring) = make();
    let s = subject(6);
    keyring.put(&s, b"wrapped").map_err(e)?;
    ensure(
        keyring.get(&s).map_err(e)?.as_deref() == Some(&b"wrapped"[..]),
        "get",
    )?;
    ensure(keyring.destroy(&s).map_err(e)?, "destroy found nothing")?;
    ensure(keyring.get(&s).map_err(e)?.is_none(), "key survived")?;
    ensure(
        !keyring.destroy(&s).map_err(e)?,
        "second destroy found a key",
    )?;
    // The keyring remembers whom it destroyed (restores re-apply erasures from this).
    ensure(
        keyring.destroyed().map_err(e)? == vec![s],
        "the destroyed subject is not remembered",
    )
}

pub(super) fn api_keys_are_stored_and_revoked(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let key = crate::ApiKeyRow {
        id: "k1".into(),
        name: "billing".into(),
        role: "service".into(),
        digest: [3; 32],
        created_ms: 9,
        revoked: false,
    };
    store
        .commit(
            vec![Op::InsertApiKey(key.clone())],
            vec![draft("apikey.create")],
        )
        .map_err(e)?;
    ensure(
        store.api_key("k1").map_err(e)? == Some(key.clone()),
        "key read back",
    )?;
    ensure(
        store.api_key("k2").map_err(e)?.is_none(),
        "unknown key found",
    )?;
    store
        .commit(vec![Op::RevokeApiKey { id: "k1".into() }], vec![])
        .map_err(e)?;
    let keys = store.api_keys().map_err(e)?;
    ensure(
        keys.len() == 1 && keys.first().is_some_and(|k| k.revoked),
        "revocation",
    )
}

/// Records a granted consent of `s` to `target`.
pub(super) fn grant(
    store: &dyn crate::Store,
    s: crate::SubjectKey,
    target: &str,
) -> Result<(), String> {
    store
        .commit(
            vec![Op::RecordConsent(ConsentRow {
                subject: s,
                target: target.into(),
                granted: true,
                separate: false,
                channel: "web".into(),
                policy_version: "1".into(),
                at_ms: 3,
                audit_seq: 0,
                tag: vec![2; 16],
            })],
            vec![draft("consent.grant")],
        )
        .map(|_| ())
        .map_err(e)
}
