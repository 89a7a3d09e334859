//! External systems (issue 16): asked by signed webhook through the outbox, reminded daily,
//! given up at the request's deadline, answering on a signed callback — on the kit's moving
//! clock, on both backends.

use base64::Engine as _;

use super::*;
use crate::external::Signed;

const DAY: i64 = 86_400_000;

fn closing() -> Closing<'static> {
    Closing {
        justification: Some("the subject asked"),
        ..Closing::default()
    }
}

/// The kit with the example CRM attached (`examples/datasets/crm.yml`), asked through a
/// registered endpoint: the kit and the endpoint's secret (its bytes).
fn with_crm() -> (Kit, Vec<u8>) {
    let k = kit();
    let made = k
        .vault
        .create_endpoint(
            None,
            "https://crm.example.com/steward",
            &["dataset.request"],
        )
        .unwrap();
    let secret = base64::engine::general_purpose::STANDARD
        .decode(made.secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let file = include_str!("../../../../examples/datasets/crm.yml");
    let (catalogue, problems) =
        steward_datasets::load(&[("crm.yml".into(), file.into())], k.vault.policy());
    assert!(problems.is_empty(), "{problems:?}");
    let connection = steward_datasets::live::Connection {
        url: format!("webhook:{}", made.endpoint.id),
        schema: None,
    };
    let fanout =
        steward_datasets::run::Fanout::new(catalogue, [("crm".to_string(), connection)].into())
            .unwrap();
    k.vault.attach_datasets(Arc::new(fanout)).unwrap();
    (k, secret)
}

/// The `dataset.request` messages in the outbox, oldest first.
fn asked(k: &Kit) -> Vec<steward_store::OutboxRow> {
    let mut rows: Vec<_> = k
        .vault
        .store()
        .outbox(None, 1_000)
        .unwrap()
        .into_iter()
        .filter(|m| m.event == "dataset.request")
        .collect();
    rows.sort_by_key(|m| m.created_ms);
    rows
}

/// `body` signed as the system would sign it, at the kit's clock.
fn answer(k: &Kit, secret: &[u8], body: &serde_json::Value) -> Result<SystemState, Error> {
    answer_at(k, secret, body, k.clock.now_ms() / 1000)
}

fn answer_at(
    k: &Kit,
    secret: &[u8],
    body: &serde_json::Value,
    at_s: i64,
) -> Result<SystemState, Error> {
    let text = body.to_string();
    let at = at_s.to_string();
    let signature = format!(
        "v1,{}",
        crate::dispatch::sign(secret, "msg_answer", &at, &text)
    );
    k.vault.answer_external(
        "crm",
        &Signed {
            id: "msg_answer",
            timestamp: &at,
            signature: &signature,
        },
        text.as_bytes(),
    )
}

fn actions_from(k: &Kit, seq: u64) -> Vec<String> {
    k.entries_from(seq).into_iter().map(|e| e.action).collect()
}

/// P28, P32: an erasure asks the CRM through the outbox (the stored call holds no identity;
/// the one sent carries the subject's address), reminds it each day, shows it on the deadline
/// board, and gives it up at the request's deadline — the request then completes, the
/// certificate naming the CRM's failure.
#[test]
fn p28_p32_an_external_system_is_asked_reminded_and_given_up_at_the_deadline() {
    let (k, _) = with_crm();
    let s = k.subject_with_account();
    let req = k.verified_request(s, "deletion", "documents");
    let seq = k.vault.store().audit_head().unwrap().0 + 1;
    let done = k
        .vault
        .complete_request(&k.officer, &req.id, &closing())
        .unwrap();
    assert_eq!(done.request.state, "in_progress");
    assert_eq!(done.request.systems.len(), 1);
    assert_eq!(done.request.systems[0].state, "asked");
    assert!(done.certificate.is_none());
    let calls = asked(&k);
    assert_eq!(calls.len(), 1);
    assert!(!calls[0].payload.contains("li.lei"), "{}", calls[0].payload);
    let (sent, about) = k.vault.render_dataset_request(&calls[0]).unwrap().unwrap();
    assert_eq!(about, s);
    let sent: serde_json::Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(
        sent.pointer("/data/identities/email"),
        Some(&serde_json::json!(["li.lei@example.cn"]))
    );
    assert_eq!(sent.pointer("/data/action").unwrap(), "erasure");
    assert_eq!(
        sent.pointer("/data/answer").unwrap(),
        "/v1/datasets/crm/answers"
    );
    assert!(actions_from(&k, seq).contains(&"dataset.ask".to_string()));
    // The board escalates the answer that has not come.
    let board = k.vault.deadlines(Some(&k.officer), 40 * DAY).unwrap();
    let line = board
        .iter()
        .find(|d| d.kind == "system_answer")
        .expect("the CRM's answer is on the board");
    assert!(
        line.what.starts_with("crm answers deletion request"),
        "{}",
        line.what
    );
    let request_line = board.iter().find(|d| d.kind == "request").unwrap();
    assert!(
        request_line.what.contains("waiting on crm (asked 1 time"),
        "{}",
        request_line.what
    );
    // Not due yet: nothing happens.
    assert_eq!(k.vault.advance_datasets().unwrap(), 0);
    assert_eq!(asked(&k).len(), 1);
    // A day on: reminded, once.
    k.clock.advance(DAY);
    assert_eq!(k.vault.advance_datasets().unwrap(), 0);
    assert_eq!(k.vault.advance_datasets().unwrap(), 0);
    let calls = asked(&k);
    assert_eq!(calls.len(), 2);
    assert!(
        calls[1].payload.contains("\"reminder\":1"),
        "{}",
        calls[1].payload
    );
    let state = k.vault.request(&k.officer, &req.id).unwrap();
    assert_eq!(state.systems[0].attempts, 2);
    assert!(actions_from(&k, seq).contains(&"dataset.remind".to_string()));
    // Past the deadline: given up, and the request completes without it.
    let due = k.vault.request(&k.officer, &req.id).unwrap().due_ms;
    k.clock.advance(due - k.clock.now_ms());
    assert_eq!(k.vault.advance_datasets().unwrap(), 1);
    let after = k.vault.request(&k.officer, &req.id).unwrap();
    assert_eq!(after.state, "completed");
    assert_eq!(after.systems[0].state, "failed");
    assert_eq!(
        after.systems[0].reason,
        "no answer by the request's deadline"
    );
    assert_eq!(
        after
            .outcome
            .as_ref()
            .unwrap()
            .pointer("/systems/crm/failed"),
        Some(&serde_json::json!("no answer by the request's deadline"))
    );
    let cert = k.vault.certificate(s).unwrap().unwrap();
    let doc = verify_document(&cert, Some(k.vault.public_key())).unwrap();
    assert_eq!(
        doc.pointer("/systems/crm/failed"),
        Some(&serde_json::json!("no answer by the request's deadline"))
    );
    assert!(actions_from(&k, seq).contains(&"dataset.failed".to_string()));
    // The subject is gone: a call still queued for them is not sent.
    assert!(k.vault.render_dataset_request(&calls[1]).unwrap().is_none());
    k.verify().unwrap();
}

/// P23: an access request asks the CRM when verified; its completion waits for the answer,
/// which must be signed with the endpoint's secret within five minutes of the clock, name only
/// categories the dataset declares, and may be given again but not changed; the export then
/// holds the CRM's rows with their categories' purposes, and the log holds counts only.
#[test]
fn p23_an_external_systems_signed_answer_lands_in_the_export() {
    let (k, secret) = with_crm();
    let s = k.subject_with_account();
    let req = k.verified_request(s, "access", "documents");
    assert_eq!(asked(&k).len(), 1, "asked when verified");
    let waiting = k
        .vault
        .complete_request(&k.officer, &req.id, &closing())
        .unwrap();
    assert_eq!(waiting.request.state, "in_progress");
    assert!(waiting.export.is_none());
    assert_eq!(asked(&k).len(), 1, "not asked twice");
    let body = serde_json::json!({
        "request": req.id,
        "status": "done",
        "collections": [{"collection": "contacts", "rows": [{"email": "li.lei@example.cn", "segment": "tea lovers", "score": 7}]}],
        "categories": {"email": 1, "name": 0},
    });
    // Not signed by the secret, signed long ago, or not an answer: refused, nothing kept.
    let wrong = answer(&k, b"another secret", &body).unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let stale = answer_at(&k, &secret, &body, k.clock.now_ms() / 1000 - 301).unwrap_err();
    assert_eq!(stale.code(), Code::Unauthenticated);
    for timestamp in ["-9223372036854775808", "9223372036854775807", "", "1e9"] {
        let odd = k
            .vault
            .answer_external(
                "crm",
                &Signed {
                    id: "msg_odd",
                    timestamp,
                    signature: "v1,AAAA",
                },
                b"{}",
            )
            .unwrap_err();
        assert_eq!(odd.code(), Code::Unauthenticated);
    }
    let mut undeclared = body.clone();
    undeclared["categories"] = serde_json::json!({"health": 1});
    let e = answer(&k, &secret, &undeclared).unwrap_err();
    assert_eq!(e.code(), Code::InvalidInput);
    assert!(!e.to_string().contains("health"), "{e}");
    let e = answer(
        &k,
        &secret,
        &serde_json::json!({"request": req.id, "status": "done", "deleted": {"contacts": 1}}),
    )
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidInput);
    let e = answer(
        &k,
        &secret,
        &serde_json::json!({"request": "req_nope", "status": "done"}),
    )
    .unwrap_err();
    assert_eq!(e.code(), Code::RequestNotFound);
    let e = answer(
        &k,
        &secret,
        &serde_json::json!({"request": req.id, "status": "failed", "reason": "li.lei@example.cn"}),
    )
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidInput);
    assert_eq!(
        k.vault.request(&k.officer, &req.id).unwrap().systems[0].state,
        "asked"
    );
    // Signed as Standard Webhooks says: recorded; again: the same; changed: refused.
    let seq = k.vault.store().audit_head().unwrap().0 + 1;
    let state = answer(&k, &secret, &body).unwrap();
    assert_eq!(state.state, "done");
    assert_eq!(answer(&k, &secret, &body).unwrap(), state);
    let mut changed = body.clone();
    changed["collections"] = serde_json::json!([]);
    changed["categories"] = serde_json::json!({});
    assert_eq!(
        answer(&k, &secret, &changed).unwrap_err().code(),
        Code::Conflict
    );
    let entries = k.entries_from(seq);
    let logged: Vec<&steward_audit::Entry> = entries
        .iter()
        .filter(|e| e.action == "dataset.answer")
        .collect();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].actor, "system:crm");
    assert!(!logged[0].detail.contains("li.lei") && !logged[0].detail.contains("tea lovers"));
    // The stored answer is sealed.
    let rows = k.vault.store().request_systems(&s.0, &req.id).unwrap();
    assert!(!String::from_utf8_lossy(&rows[0].sealed_plan).contains("tea lovers"));
    // The staff complete it: the export holds the CRM's rows.
    let done = k
        .vault
        .complete_request(&k.officer, &req.id, &closing())
        .unwrap();
    assert_eq!(done.request.state, "completed");
    let export = done.export.unwrap();
    let crm = export.systems.iter().find(|x| x.system == "crm").unwrap();
    assert_eq!(crm.collections[0].rows[0]["segment"], "tea lovers");
    let email = crm
        .categories
        .iter()
        .find(|c| c.category == "email")
        .unwrap();
    assert_eq!(email.values, 1);
    assert!(!email.purposes.is_empty());
    assert_eq!(
        done.request.outcome.unwrap().pointer("/systems/crm/rows"),
        Some(&serde_json::json!(1))
    );
    k.verify().unwrap();
}

/// P28: an erasure the CRM answers completes at once, its counts in the certificate; an
/// answer about a request it was not asked about, or for a system that is not external, is
/// refused.
#[test]
fn p28_an_external_systems_answer_completes_the_erasure() {
    let (k, secret) = with_crm();
    let s = k.subject_with_account();
    let other = k.subject_with_account();
    let not_asked = k.verified_request(other, "deletion", "documents");
    let e = answer(
        &k,
        &secret,
        &serde_json::json!({"request": not_asked.id, "status": "done"}),
    )
    .unwrap_err();
    assert_eq!(e.code(), Code::Conflict);
    let req = k.verified_request(s, "deletion", "documents");
    let waiting = k
        .vault
        .complete_request(&k.officer, &req.id, &closing())
        .unwrap();
    assert_eq!(waiting.request.state, "in_progress");
    let e = k
        .vault
        .answer_external("shop", &Signed::default(), b"{}")
        .unwrap_err();
    assert_eq!(e.code(), Code::SystemNotFound);
    let state = answer(
        &k,
        &secret,
        &serde_json::json!({"request": req.id, "status": "done", "deleted": {"contacts": 1}, "masked": {"invoices": 2}}),
    )
    .unwrap();
    assert_eq!(state.state, "done");
    let after = k.vault.request(&k.officer, &req.id).unwrap();
    assert_eq!(after.state, "completed");
    let cert = k.vault.certificate(s).unwrap().unwrap();
    let doc = verify_document(&cert, Some(k.vault.public_key())).unwrap();
    assert_eq!(
        doc.pointer("/systems/crm/deleted/contacts"),
        Some(&serde_json::json!(1))
    );
    assert_eq!(
        doc.pointer("/systems/crm/masked/invoices"),
        Some(&serde_json::json!(2))
    );
    k.verify().unwrap();
}

/// P28: an account closed without a request is erased in the provider's systems at the end of
/// its grace period under a request made for it (completed as of the closure): the CRM is asked
/// then, and reminded rather than given up — its deadline counts from the grace period's end —
/// and once it answers the next sweep erases Steward's copy, the certificate naming the CRM.
/// An erasure asked of the API directly is refused while an external system is declared: it
/// would destroy the identities the system must be asked with.
#[test]
fn p28_an_account_closed_without_a_request_reaches_the_external_system_at_grace_end() {
    let (k, secret) = with_crm();
    let s = k.subject_with_account();
    let e = k.vault.erase(&k.officer, s, "account deleted").unwrap_err();
    assert_eq!(e.code(), Code::Conflict);
    assert!(e.to_string().contains("`crm`"), "{e}");
    assert!(asked(&k).is_empty());
    let closed_at = k.clock.now_ms();
    k.vault.close_account(&k.officer, s).unwrap();
    k.clock.advance(31 * DAY);
    let swept = k.vault.retention_sweep(false, 100, &mut |_| {}).unwrap();
    assert_eq!((swept.subjects_erased, swept.subjects_waiting), (0, 1));
    let requests = k.vault.self_requests(s).unwrap();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(
        (req.kind.as_str(), req.state.as_str()),
        ("account_cancellation", "completed")
    );
    assert_eq!(req.received_at, crate::clock::rfc3339(closed_at));
    assert_eq!(asked(&k).len(), 1);
    // A day on: reminded, not given up (the request's own deadline passed long ago).
    k.clock.advance(DAY);
    k.vault.advance_datasets().unwrap();
    let state = k.vault.request(&k.officer, &req.id).unwrap();
    assert_eq!(state.systems[0].state, "asked", "{:?}", state.systems);
    assert_eq!(asked(&k).len(), 2);
    // A sweep before the answer erases nothing; the answer, then the sweep, does.
    let swept = k.vault.retention_sweep(false, 100, &mut |_| {}).unwrap();
    assert_eq!(swept.subjects_waiting, 1);
    answer(
        &k,
        &secret,
        &serde_json::json!({"request": req.id, "status": "not_found"}),
    )
    .unwrap();
    let swept = k.vault.retention_sweep(false, 100, &mut |_| {}).unwrap();
    assert_eq!(swept.subjects_erased, 1);
    let cert = k.vault.certificate(s).unwrap().unwrap();
    let doc = verify_document(&cert, Some(k.vault.public_key())).unwrap();
    assert_eq!(
        doc.pointer("/systems/crm"),
        Some(&serde_json::json!({"deleted": {}, "masked": {}}))
    );
    k.verify().unwrap();
}

/// An access request refused after its external system was asked waits for nothing more: the
/// system is not reminded, its row is settled, and a late answer is refused.
#[test]
fn p23_a_refused_request_stops_chasing_its_external_system() {
    let (k, secret) = with_crm();
    let s = k.subject_with_account();
    let req = k.verified_request(s, "access", "documents");
    assert_eq!(asked(&k).len(), 1);
    k.vault
        .refuse_request(&k.officer, &req.id, "rights_of_others", "")
        .unwrap();
    // An answer after the refusal is refused at once.
    let early = answer(
        &k,
        &secret,
        &serde_json::json!({"request": req.id, "status": "not_found"}),
    )
    .unwrap_err();
    assert_eq!(early.code(), Code::Conflict);
    assert!(early.to_string().contains("it was refused"), "{early}");
    k.clock.advance(DAY);
    k.vault.advance_datasets().unwrap();
    assert_eq!(asked(&k).len(), 1, "not reminded");
    let state = k.vault.request(&k.officer, &req.id).unwrap();
    assert_eq!(state.systems[0].state, "failed");
    assert_eq!(state.systems[0].reason, "the request was refused first");
    let late = answer(
        &k,
        &secret,
        &serde_json::json!({"request": req.id, "status": "not_found"}),
    )
    .unwrap_err();
    assert_eq!(late.code(), Code::Conflict);
    assert!(late.to_string().contains("no longer waits"), "{late}");
    // Nothing is due any more.
    k.clock.advance(DAY);
    assert!(
        k.vault
            .store()
            .systems_due(k.clock.now_ms())
            .unwrap()
            .is_empty()
    );
}

/// An answer that came another way — by email — is recorded by staff (`requests.manage`) as
/// the system's own would be, naming them in the log, and completes the deletion; a role that
/// may not manage requests, a body naming a request, or a system that is not external, is
/// refused.
#[test]
fn p28_staff_record_an_external_systems_answer_that_came_by_email() {
    let (k, _) = with_crm();
    let s = k.subject_with_account();
    let req = k.verified_request(s, "deletion", "documents");
    k.vault
        .complete_request(&k.officer, &req.id, &closing())
        .unwrap();
    let body = serde_json::json!({"system": "crm", "status": "done", "deleted": {"contacts": 1}});
    let e = k
        .vault
        .record_system_answer(&k.service, &req.id, &body)
        .unwrap_err();
    assert_eq!(e.code(), Code::OperationNotPermitted);
    let mut named = body.clone();
    named["request"] = serde_json::json!(req.id);
    let e = k
        .vault
        .record_system_answer(&k.officer, &req.id, &named)
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidInput);
    let mut other = body.clone();
    other["system"] = serde_json::json!("shop");
    let e = k
        .vault
        .record_system_answer(&k.officer, &req.id, &other)
        .unwrap_err();
    assert_eq!(e.code(), Code::SystemNotFound);
    let seq = k.vault.store().audit_head().unwrap().0 + 1;
    let state = k
        .vault
        .record_system_answer(&k.officer, &req.id, &body)
        .unwrap();
    assert_eq!(state.state, "done");
    let answered = k
        .entries_from(seq)
        .into_iter()
        .find(|e| e.action == "dataset.answer")
        .unwrap();
    assert_eq!(answered.actor, "staff:officer");
    assert_eq!(
        k.vault.request(&k.officer, &req.id).unwrap().state,
        "completed"
    );
    k.verify().unwrap();
}
