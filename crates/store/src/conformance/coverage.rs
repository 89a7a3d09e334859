//! The rest of the store: holds, requests, the retention pager, closed accounts, one-time
//! codes, attempt counters, sessions, staff, checkpoints, deployment facts, prefetching, the
//! keyring's keys, subjects in bulk, certificates, deleting records and scanning the log.

use steward_audit::Checkpoint;

use crate::{
    ConsentRow, HeldConsent, HoldRow, IndexRow, Op, OtpRow, RecordKey, RequestRow, RequestState,
    StaffRow, SubjectRecords, SubjectState,
};

use super::{Factory, draft, e, ensure, insert_subject, record, subject};

fn hold(id: &str, s: crate::SubjectKey, categories: &str, placed: i64, until: i64) -> HoldRow {
    HoldRow {
        id: id.into(),
        subject: s,
        categories: categories.into(),
        reason: "court_order".into(),
        reference: "case 7".into(),
        placed_ms: placed,
        until_ms: until,
        lifted_ms: None,
        tag: vec![3; 16],
    }
}

pub(super) fn holds_are_placed_listed_and_lifted(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let (s, other) = (subject(1), subject(2));
    insert_subject(store.as_ref(), s).map_err(e)?;
    insert_subject(store.as_ref(), other).map_err(e)?;
    let (a, b, c) = (
        hold("hold_a", s, "email", 10, 100),
        hold("hold_b", s, "", 20, 100),
        hold("hold_c", other, "phone", 30, 200),
    );
    for h in [&b, &a, &c] {
        store
            .commit(vec![Op::PlaceHold(h.clone())], vec![draft("hold.place")])
            .map_err(e)?;
    }
    ensure(
        store.holds(&s).map_err(e)? == vec![a.clone(), b.clone()],
        "a subject's holds, oldest first",
    )?;
    ensure(
        store.hold("hold_c").map_err(e)? == Some(c.clone()),
        "hold by id",
    )?;
    ensure(store.hold("hold_x").map_err(e)?.is_none(), "unknown hold")?;
    ensure(
        store.active_holds(50).map_err(e)?.len() == 3,
        "holds in force",
    )?;
    store
        .commit(
            vec![Op::LiftHold {
                subject: s,
                id: "hold_a".into(),
                at_ms: 60,
                tag: vec![4; 16],
            }],
            vec![draft("hold.lift")],
        )
        .map_err(e)?;
    let lifted = store.hold("hold_a").map_err(e)?;
    ensure(
        lifted.as_ref().and_then(|h| h.lifted_ms) == Some(60),
        "lifted",
    )?;
    let mut in_force: Vec<String> = store
        .active_holds(70)
        .map_err(e)?
        .into_iter()
        .map(|h| h.id)
        .collect();
    in_force.sort();
    ensure(
        in_force == ["hold_b", "hold_c"],
        "a lifted hold is not in force",
    )?;
    ensure(
        store.active_holds(150).map_err(e)? == vec![c],
        "an ended hold is not in force",
    )
}

fn request(id: &str, s: crate::SubjectKey, state: RequestState, due: i64) -> RequestRow {
    RequestRow {
        id: id.into(),
        subject: s,
        kind: "access".into(),
        state,
        target: String::new(),
        received_ms: 1,
        due_ms: due,
        updated_ms: 1,
        verification: String::new(),
        outcome: String::new(),
        sealed_text: vec![9, 9],
    }
}

pub(super) fn requests_are_read_in_the_unit_and_listed_when_due(
    make: Factory<'_>,
) -> Result<(), String> {
    let (store, _) = make();
    let (s, other) = (subject(1), subject(2));
    insert_subject(store.as_ref(), s).map_err(e)?;
    insert_subject(store.as_ref(), other).map_err(e)?;
    let rows = [
        request("req_1", s, RequestState::Received, 100),
        request("req_2", s, RequestState::Verified, 50),
        request("req_3", s, RequestState::Completed, 10),
        request("req_4", other, RequestState::InProgress, 200),
    ];
    for r in &rows {
        store
            .commit(vec![Op::PutRequest(r.clone())], vec![draft("request.open")])
            .map_err(e)?;
    }
    let [r1, r2, _, r4] = rows.clone();
    ensure(
        store.request("req_1").map_err(e)? == Some(r1.clone()),
        "by id",
    )?;
    ensure(store.request("req_9").map_err(e)?.is_none(), "unknown id")?;
    let due = |before| -> Result<Vec<String>, String> {
        Ok(store
            .requests_due(before)
            .map_err(e)?
            .into_iter()
            .map(|r| r.id)
            .collect())
    };
    ensure(
        due(120)? == ["req_2", "req_1"],
        "open and due, soonest first",
    )?;
    ensure(due(1000)? == ["req_2", "req_1", "req_4"], "every open one")?;
    // One subject's, open or closed, oldest first; none of another's.
    let of = |who| -> Result<Vec<String>, String> {
        Ok(store
            .requests_of(&who)
            .map_err(e)?
            .into_iter()
            .map(|r| r.id)
            .collect())
    };
    ensure(
        of(s)? == ["req_1", "req_2", "req_3"],
        "a subject's requests, oldest first",
    )?;
    ensure(of(other)? == ["req_4"], "another subject's")?;
    ensure(of(subject(3))?.is_empty(), "a subject with none")?;
    // Read inside a unit of work, then changed by it: the unit sees the stored row.
    let mut seen = None;
    store
        .read_commit(&mut |reader| {
            seen = reader.request("req_2")?;
            let mut moved = request("req_2", s, RequestState::Completed, 50);
            moved.outcome = "{}".into();
            Ok((vec![Op::PutRequest(moved)], vec![draft("request.complete")]))
        })
        .map_err(e)?;
    ensure(seen == Some(r2), "the unit reads the request")?;
    ensure(
        store.request("req_2").map_err(e)?.map(|r| r.state) == Some(RequestState::Completed),
        "the unit's change is stored",
    )?;
    ensure(
        due(1000)? == ["req_1", "req_4"],
        "a completed request is not due",
    )?;
    ensure(
        store.request("req_4").map_err(e)? == Some(r4),
        "other subject",
    )
}

/// Where a request stands in each system comes back by system, replaced as it moves; the
/// due list names each request with a system still to do once, when its next attempt is due.
pub(super) fn request_systems_are_kept(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let (a, b) = (subject(61), subject(62));
    let row = |s, request: &str, system: &str, state: &str, next_ms| crate::RequestSystemRow {
        subject: s,
        request: request.into(),
        system: system.into(),
        state: state.into(),
        attempts: 1,
        next_ms,
        reason: "PostgreSQL cannot be reached".into(),
        sealed_plan: vec![1, 2, 3],
        result: String::new(),
        updated_ms: 5,
    };
    store
        .commit(
            vec![
                Op::PutRequestSystem(row(a, "req_1", "support", "planned", 100)),
                Op::PutRequestSystem(row(a, "req_1", "shop", "waiting", 50)),
                Op::PutRequestSystem(row(b, "req_2", "shop", "planned", 500)),
                Op::PutRequestSystem(row(b, "req_3", "shop", "done", 0)),
            ],
            vec![draft("request.start")],
        )
        .map_err(e)?;
    let systems = store.request_systems(&a, "req_1").map_err(e)?;
    ensure(
        systems
            .iter()
            .map(|r| r.system.as_str())
            .collect::<Vec<_>>()
            == ["shop", "support"]
            && systems.first() == Some(&row(a, "req_1", "shop", "waiting", 50)),
        "by system, as written",
    )?;
    ensure(
        store.systems_due(100).map_err(e)? == vec![(a, "req_1".to_string())],
        "each request once, when due, not what is done",
    )?;
    let mut done = row(a, "req_1", "shop", "done", 50);
    done.result = "{\"deleted\":{\"customers\":1}}".into();
    store
        .commit(
            vec![
                Op::PutRequestSystem(done.clone()),
                Op::PutRequestSystem(row(a, "req_1", "support", "failed", 100)),
            ],
            vec![draft("dataset.erase")],
        )
        .map_err(e)?;
    ensure(
        store.request_systems(&a, "req_1").map_err(e)?.first() == Some(&done),
        "replaced as it moves",
    )?;
    ensure(
        store.systems_due(1_000).map_err(e)? == vec![(b, "req_2".to_string())],
        "done and failed systems are not due",
    )
}

/// A request's steps come back oldest first, for that subject's request only; a step already
/// recorded keeps its first time and actor.
pub(super) fn request_steps_are_kept(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let (a, b) = (subject(51), subject(52));
    let step = |s, request: &str, state, at_ms, actor: &str| crate::RequestStepRow {
        subject: s,
        request: request.into(),
        state,
        at_ms,
        actor: actor.into(),
    };
    let received = step(a, "req_1", RequestState::Received, 10, "subject");
    let verified = step(a, "req_1", RequestState::Verified, 20, "staff:alice");
    let refused = step(a, "req_1", RequestState::Refused, 30, "staff:bob");
    ensure(
        store.request_steps(&a, "req_1").map_err(e)?.is_empty(),
        "none at first",
    )?;
    store
        .commit(
            vec![
                Op::RequestStep(refused.clone()),
                Op::RequestStep(received.clone()),
                Op::RequestStep(step(b, "req_1", RequestState::Received, 5, "subject")),
                Op::RequestStep(step(a, "req_2", RequestState::Received, 5, "subject")),
            ],
            vec![draft("request.open")],
        )
        .map_err(e)?;
    store
        .commit(
            vec![
                Op::RequestStep(verified.clone()),
                Op::RequestStep(step(a, "req_1", RequestState::Received, 99, "system")),
            ],
            vec![draft("request.verify")],
        )
        .map_err(e)?;
    ensure(
        store.request_steps(&a, "req_1").map_err(e)? == vec![received, verified, refused],
        "oldest first, each state once as first recorded, this subject's request only",
    )?;
    ensure(
        store.request_steps(&b, "req_2").map_err(e)?.is_empty(),
        "another subject's request of the same id is its own",
    )
}

pub(super) fn retention_pages_walk_records_by_age(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let subjects = [subject(1), subject(2), subject(3)];
    let mut expected = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        insert_subject(store.as_ref(), *s).map_err(e)?;
        let mut rows = Vec::new();
        for (j, at) in [30i64, 10, 200].into_iter().enumerate() {
            let mut r = record(store.as_ref(), *s, "ip_address");
            r.collected_ms = at + i64::try_from(i + j).unwrap_or(0);
            if r.collected_ms < 100 {
                expected.push((
                    r.collected_ms,
                    RecordKey {
                        subject: *s,
                        category: r.category.clone(),
                        id: r.id,
                    },
                ));
            }
            rows.push(r);
        }
        rows.push(record(store.as_ref(), *s, "email"));
        store
            .commit(vec![Op::InsertRecords(rows)], vec![draft("pi.collect")])
            .map_err(e)?;
    }
    expected.sort_by(|(a, ka), (b, kb)| (a, ka.subject, ka.id).cmp(&(b, kb.subject, kb.id)));
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .records_collected_before("ip_address", 100, after, 2)
            .map_err(e)?;
        ensure(page.len() <= 2, "a page is at most `limit` long")?;
        let Some((at, last)) = page.last().cloned() else {
            break;
        };
        after = Some((at, last.subject, last.id));
        walked.extend(page);
    }
    ensure(
        walked == expected,
        "pages walk every old record once, in order",
    )
}

pub(super) fn closed_accounts_are_listed_until_erased(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let (a, b, c) = (subject(1), subject(2), subject(3));
    for s in [a, b, c] {
        insert_subject(store.as_ref(), s).map_err(e)?;
    }
    for (s, at) in [(a, 10), (b, 20)] {
        store
            .commit(
                vec![Op::CloseSubject {
                    subject: s,
                    at_ms: at,
                    tag: vec![5; 16],
                }],
                vec![draft("subject.close")],
            )
            .map_err(e)?;
    }
    let closed = store.subject(&a).map_err(e)?;
    ensure(
        closed.map(|r| (r.state, r.closed_ms)) == Some((SubjectState::Closed, Some(10))),
        "closing sets state and time",
    )?;
    ensure(
        store.closed_before(15).map_err(e)? == vec![(a, 10)],
        "before",
    )?;
    ensure(
        store.closed_before(30).map_err(e)? == vec![(a, 10), (b, 20)],
        "by closing time",
    )?;
    store
        .commit(
            vec![Op::SetSubjectState {
                subject: a,
                state: SubjectState::Erasing,
                tag: vec![6; 16],
            }],
            vec![draft("subject.erase")],
        )
        .map_err(e)?;
    ensure(
        store.closed_before(30).map_err(e)? == vec![(b, 20)],
        "an erased account is not listed",
    )
}

pub(super) fn codes_attempts_and_sessions_are_kept(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let s = subject(1);
    insert_subject(store.as_ref(), s).map_err(e)?;
    let code = |digest: u8, attempts: u32| OtpRow {
        subject: s,
        digest: [digest; 16],
        expires_ms: 600,
        attempts,
    };
    store
        .commit(vec![Op::PutOtp(code(1, 0))], vec![])
        .map_err(e)?;
    ensure(store.otp(&s).map_err(e)? == Some(code(1, 0)), "code kept")?;
    store
        .commit(vec![Op::PutOtp(code(2, 3))], vec![])
        .map_err(e)?;
    ensure(
        store.otp(&s).map_err(e)? == Some(code(2, 3)),
        "code replaced",
    )?;
    store
        .commit(vec![Op::DeleteOtp { subject: s }], vec![])
        .map_err(e)?;
    ensure(store.otp(&s).map_err(e)?.is_none(), "code voided")?;

    for (window, count) in [(100, 1), (100, 2), (500, 1)] {
        store
            .commit(
                vec![Op::PutAttempts {
                    key: "otp-send:x".into(),
                    window_ms: window,
                    count,
                }],
                vec![],
            )
            .map_err(e)?;
        ensure(
            store.attempts("otp-send:x").map_err(e)? == Some((window, count)),
            "attempts counted",
        )?;
    }
    ensure(
        store.attempts("otp-send:y").map_err(e)?.is_none(),
        "other key",
    )?;

    store
        .commit(
            vec![Op::PutSession {
                digest: [5; 32],
                subject: s,
                expires_ms: 900,
            }],
            vec![draft("self.sign_in")],
        )
        .map_err(e)?;
    ensure(
        store.session(&[5; 32]).map_err(e)? == Some((s, 900)),
        "session by digest",
    )?;
    ensure(
        store.session(&[6; 32]).map_err(e)?.is_none(),
        "unknown session",
    )
}

pub(super) fn staff_accounts_and_sessions_are_kept(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let account = |disabled| StaffRow {
        username: "li.na".into(),
        role: "support".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        created_ms: 3,
        disabled,
    };
    store
        .commit(
            vec![Op::PutStaff(account(false))],
            vec![draft("staff.create")],
        )
        .map_err(e)?;
    ensure(
        store.staff("li.na").map_err(e)? == Some(account(false)),
        "account",
    )?;
    store
        .commit(
            vec![Op::PutStaff(account(true))],
            vec![draft("staff.create")],
        )
        .map_err(e)?;
    ensure(
        store.staff("li.na").map_err(e)? == Some(account(true)),
        "updated",
    )?;
    ensure(store.staff("wang").map_err(e)?.is_none(), "unknown account")?;
    store
        .commit(
            vec![Op::PutStaffSession {
                digest: [7; 32],
                username: "li.na".into(),
                expires_ms: 800,
            }],
            vec![draft("staff.sign_in")],
        )
        .map_err(e)?;
    ensure(
        store.staff_session(&[7; 32]).map_err(e)? == Some(("li.na".into(), 800)),
        "staff session",
    )?;
    ensure(
        store.staff_session(&[8; 32]).map_err(e)?.is_none(),
        "unknown",
    )
}

pub(super) fn checkpoints_and_meta_are_kept(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let entries = store
        .commit(vec![], vec![draft("a"), draft("b")])
        .map_err(e)?;
    let checkpoint = |i: usize| -> Result<Checkpoint, String> {
        let entry = entries.get(i).ok_or("no entry")?;
        Ok(Checkpoint {
            seq: entry.seq,
            head: entry.hash,
            at_ms: 40 + i64::try_from(i).unwrap_or(0),
            signature: [u8::try_from(i).unwrap_or(0); 64],
        })
    };
    let (one, two) = (checkpoint(0)?, checkpoint(1)?);
    store.add_checkpoint(&two).map_err(e)?;
    store.add_checkpoint(&one).map_err(e)?;
    ensure(
        store.checkpoints().map_err(e)? == vec![one, two],
        "checkpoints by seq",
    )?;
    for value in ["cn-north", "cn-east"] {
        store
            .commit(
                vec![Op::SetMeta {
                    key: "region".into(),
                    value: value.into(),
                }],
                vec![],
            )
            .map_err(e)?;
        ensure(
            store.meta("region").map_err(e)?.as_deref() == Some(value),
            "meta set",
        )?;
    }
    ensure(store.meta("other").map_err(e)?.is_none(), "unknown fact")?;
    store.settle().map_err(e)?;
    ensure(
        store.meta("region").map_err(e)?.as_deref() == Some("cn-east"),
        "settled data stays",
    )
}

pub(super) fn prefetch_answers_as_the_calls_would(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let (a, b, unknown) = (subject(1), subject(2), subject(9));
    for s in [a, b] {
        insert_subject(store.as_ref(), s).map_err(e)?;
        let rows = vec![
            record(store.as_ref(), s, "email"),
            record(store.as_ref(), s, "phone"),
            record(store.as_ref(), s, "email"),
        ];
        store
            .commit(vec![Op::InsertRecords(rows)], vec![draft("pi.collect")])
            .map_err(e)?;
    }
    super::units::grant(store.as_ref(), a, "purpose:surveys")?;
    let email: &[&str] = &["email"];
    let both: &[&str] = &["email", "phone"];
    let none: &[&str] = &[];
    let wanted: Vec<(&crate::SubjectKey, Option<&str>, &[&str])> = vec![
        (&a, Some("purpose:surveys"), email),
        (&b, Some("purpose:surveys"), email),
        (&a, None, both),
        (&b, None, none),
        (&unknown, None, email),
        (&a, Some("purpose:surveys"), email),
    ];
    let expected: Vec<Option<SubjectRecords>> = wanted
        .iter()
        .map(|(s, t, c)| store.subject_records(s, *t, c))
        .collect::<Result<_, _>>()
        .map_err(e)?;
    let mut got = Vec::new();
    store
        .read_commit(&mut |reader| {
            got.clear();
            reader.prefetch(&wanted)?;
            for (s, t, c) in &wanted {
                got.push(reader.subject_records(s, *t, c)?);
            }
            Ok((vec![], vec![draft("pi.read")]))
        })
        .map_err(e)?;
    ensure(got == expected, "prefetched answers equal the calls' own")?;
    ensure(
        expected.first().and_then(|r| r.as_ref()).is_some_and(|r| {
            r.consent.as_ref().is_some_and(|c| c.granted)
                && r.records.len() == 2
                && r.state == SubjectState::Active
        }),
        "state, consent and records joined",
    )?;
    ensure(expected.get(4) == Some(&None), "an unknown subject is none")
}

pub(super) fn keyring_keeps_each_subjects_key(make: Factory<'_>) -> Result<(), String> {
    let (_, keyring) = make();
    let (a, b) = (subject(1), subject(2));
    keyring.put(&a, b"key of a").map_err(e)?;
    keyring.put(&b, b"key of b").map_err(e)?;
    ensure(
        keyring.get(&a).map_err(e)?.as_deref() == Some(&b"key of a"[..]),
        "a's key",
    )?;
    ensure(
        keyring.get(&b).map_err(e)?.as_deref() == Some(&b"key of b"[..]),
        "b's key",
    )?;
    ensure(keyring.get(&subject(3)).map_err(e)?.is_none(), "no key")?;
    ensure(
        keyring.put(&a, b"another").is_err(),
        "a key is never replaced",
    )?;
    ensure(
        keyring.destroyed().map_err(e)?.is_empty(),
        "nothing destroyed",
    )
}

pub(super) fn subjects_are_fetched_together_in_order(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let (a, b, unknown) = (subject(1), subject(2), subject(3));
    insert_subject(store.as_ref(), a).map_err(e)?;
    insert_subject(store.as_ref(), b).map_err(e)?;
    store
        .commit(
            vec![Op::SetSubjectState {
                subject: b,
                state: SubjectState::Erasing,
                tag: vec![6; 16],
            }],
            vec![draft("subject.erase")],
        )
        .map_err(e)?;
    let found = store.subjects(&[b, unknown, a, b]).map_err(e)?;
    let states: Vec<Option<SubjectState>> =
        found.iter().map(|r| r.as_ref().map(|r| r.state)).collect();
    ensure(
        states
            == [
                Some(SubjectState::Erasing),
                None,
                Some(SubjectState::Active),
                Some(SubjectState::Erasing),
            ],
        "in the order asked",
    )?;
    ensure(
        found.get(2).cloned().flatten() == store.subject(&a).map_err(e)?,
        "the same rows one by one",
    )
}

pub(super) fn certificates_are_kept(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let s = subject(1);
    insert_subject(store.as_ref(), s).map_err(e)?;
    store
        .commit(
            vec![Op::StoreCertificate {
                subject: s,
                document: "{\"signed\":true}".into(),
            }],
            vec![],
        )
        .map_err(e)?;
    ensure(
        store.certificate(&s).map_err(e)?.as_deref() == Some("{\"signed\":true}"),
        "certificate",
    )?;
    ensure(store.certificate(&subject(2)).map_err(e)?.is_none(), "none")
}

pub(super) fn records_are_deleted_by_key(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let (a, b) = (subject(1), subject(2));
    let mut doomed = Vec::new();
    let mut kept = Vec::new();
    for s in [a, b] {
        insert_subject(store.as_ref(), s).map_err(e)?;
        let rows = vec![
            record(store.as_ref(), s, "email"),
            record(store.as_ref(), s, "phone"),
        ];
        let index: Vec<IndexRow> = rows
            .iter()
            .map(|r| IndexRow {
                digest: [u8::from(r.category == "phone") + 1; 16],
                subject: s,
                record: r.id,
            })
            .collect();
        if let [first, second] = rows.as_slice() {
            doomed.push(RecordKey {
                subject: s,
                category: first.category.clone(),
                id: first.id,
            });
            kept.push(second.clone());
        }
        store
            .commit(
                vec![Op::InsertRecords(rows), Op::InsertIndex(index)],
                vec![draft("pi.collect")],
            )
            .map_err(e)?;
    }
    store
        .commit(vec![Op::DeleteRecords(doomed)], vec![draft("pi.delete")])
        .map_err(e)?;
    let left: Vec<_> = [a, b]
        .iter()
        .map(|s| store.records(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(e)?
        .concat();
    ensure(
        left == kept,
        "exactly the named records went, across subjects",
    )?;
    // Email index rows (digest 1) went with their records; phone rows (digest 2) stay.
    ensure(
        store.find_by_index(&[1; 16]).map_err(e)?.is_empty(),
        "index",
    )?;
    ensure(
        store.find_by_index(&[2; 16]).map_err(e)? == vec![a, b],
        "the other records' index stays",
    )
}

pub(super) fn audit_scan_streams_from_a_seq_and_stops(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    ensure(
        store.audit_head().map_err(e)? == (0, steward_audit::GENESIS),
        "an empty log's head",
    )?;
    let entries = store
        .commit(vec![], (0..5).map(|i| draft(&format!("act.{i}"))).collect())
        .map_err(e)?;
    let mut seqs = Vec::new();
    store
        .audit_scan(2, &mut |entry| {
            seqs.push(entry.seq);
            entry.seq < 4
        })
        .map_err(e)?;
    ensure(seqs == [2, 3, 4], "from the seq asked, stopping when told")?;
    // Ranges, two at once from two threads (as the verifier scans a long log).
    let range = |from, to| {
        let mut seqs = Vec::new();
        store
            .audit_scan_range(from, to, &mut |entry| {
                seqs.push(entry.seq);
                true
            })
            .map(|()| seqs)
    };
    let (low, high) = std::thread::scope(|s| {
        let low = s.spawn(|| range(1, 3));
        let high = range(4, 9);
        (low.join(), high)
    });
    let low = low.map_err(|_| "a range scan panicked")?.map_err(e)?;
    ensure(
        low == [1, 2, 3] && high.map_err(e)? == [4, 5],
        "two ranges scanned at once, each from its first seq to its last",
    )?;
    let mut stopped = Vec::new();
    store
        .audit_scan_range(2, 5, &mut |entry| {
            stopped.push(entry.seq);
            entry.seq < 3
        })
        .map_err(e)?;
    ensure(stopped == [2, 3], "a range scan stops when told")?;
    let last = entries.last().ok_or("no entries")?;
    ensure(
        store.audit_head().map_err(e)? == (last.seq, last.hash),
        "the head is the last entry",
    )
}

/// Tags written with state come back with it, from every read; tagging ops and state changes
/// replace them; `state_rows` lists every subject, consent in force and hold.
pub(super) fn state_rows_and_tags_are_kept(make: Factory<'_>) -> Result<(), String> {
    let (store, _) = make();
    let store = store.as_ref();
    let (a, b) = (subject(21), subject(22));
    for s in [a, b] {
        insert_subject(store, s).map_err(e)?;
    }
    store
        .commit(
            vec![
                Op::RecordConsent(ConsentRow {
                    subject: a,
                    target: "purpose:surveys".into(),
                    granted: true,
                    separate: true,
                    channel: "web".into(),
                    policy_version: "1".into(),
                    at_ms: 7,
                    audit_seq: 0,
                    tag: vec![8; 16],
                }),
                Op::PlaceHold(hold("hold_t", b, "", 5, 100)),
            ],
            vec![draft("consent.grant")],
        )
        .map_err(e)?;
    let rows = store.state_rows().map_err(e)?;
    ensure(
        rows.subjects.iter().map(|s| s.id).collect::<Vec<_>>() == vec![a, b]
            && rows.subjects.iter().all(|s| s.tag == vec![1; 16]),
        "every subject, with its tag",
    )?;
    ensure(
        rows.consents.len() == 1
            && rows
                .consents
                .first()
                .is_some_and(|c| c.tag == vec![8; 16] && c.separate),
        "the consent in force, with its tag",
    )?;
    ensure(
        rows.holds.len() == 1 && rows.holds.first().is_some_and(|h| h.tag == vec![3; 16]),
        "the hold, with its tag",
    )?;
    let read = store
        .subject_records(&a, Some("purpose:surveys"), &[])
        .map_err(e)?
        .ok_or("missing")?;
    ensure(
        read.consent
            == Some(HeldConsent {
                granted: true,
                separate: true,
                at_ms: 7,
                tag: vec![8; 16],
            }),
        "the read path's consent, with what its tag covers",
    )?;
    store
        .commit(
            vec![
                Op::TagConsent {
                    subject: a,
                    target: "purpose:surveys".into(),
                    tag: vec![9; 16],
                },
                Op::TagHold {
                    subject: b,
                    id: "hold_t".into(),
                    tag: vec![10; 16],
                },
                Op::SetSubjectState {
                    subject: a,
                    state: SubjectState::Active,
                    tag: vec![11; 16],
                },
            ],
            vec![],
        )
        .map_err(e)?;
    ensure(
        store
            .consent(&a, "purpose:surveys")
            .map_err(e)?
            .map(|c| c.tag)
            == Some(vec![9; 16]),
        "a consent retagged",
    )?;
    ensure(
        store.hold("hold_t").map_err(e)?.map(|h| h.tag) == Some(vec![10; 16]),
        "a hold retagged",
    )?;
    ensure(
        store.subject(&a).map_err(e)?.map(|s| s.tag) == Some(vec![11; 16]),
        "a subject retagged",
    )?;
    let read = store
        .subject_records(&a, None, &[])
        .map_err(e)?
        .ok_or("missing")?;
    ensure(
        read.state_tag == vec![11; 16],
        "the read path's subject tag",
    )
}
