//! The storage conformance suite: behaviour every backend must show, every method of
//! [`Store`], [`Reader`] and [`Keyring`] exercised. Each backend's tests call
//! [`conformance_tests!`](crate::conformance_tests) with a factory of fresh, empty stores,
//! which makes one `#[test]` per check; a check missing from that list fails a test too.

mod coverage;
mod outbox;
mod units;

use steward_audit::{Draft, Outcome};

use crate::{Keyring, Op, RecordRow, Store, StoreError, SubjectKey, SubjectRow, SubjectState};

/// Makes a fresh, empty backend for one check.
pub type Factory<'a> = &'a dyn Fn() -> (Box<dyn Store>, Box<dyn Keyring>);

/// One named check of the suite.
type Check = (&'static str, fn(Factory<'_>) -> Result<(), String>);

pub(crate) fn draft(action: &str) -> Draft {
    Draft {
        at_ms: 1,
        actor: "test".into(),
        role: "service".into(),
        action: action.into(),
        outcome: Outcome::Granted,
        subject: String::new(),
        purpose: String::new(),
        categories: String::new(),
        detail: String::new(),
        policy_version: "1".into(),
    }
}

pub(crate) fn subject(n: u8) -> SubjectKey {
    [n; 16]
}

pub(crate) fn record(store: &dyn Store, s: SubjectKey, category: &str) -> RecordRow {
    RecordRow {
        id: store.next_record_ids(1).unwrap_or(0),
        subject: s,
        category: category.into(),
        feature: "account".into(),
        source: "subject".into(),
        collected_ms: 5,
        sealed: vec![1, 2, 3],
    }
}

pub(crate) fn insert_subject(store: &dyn Store, s: SubjectKey) -> Result<(), StoreError> {
    store.commit(
        vec![Op::InsertSubject(SubjectRow {
            id: s,
            state: SubjectState::Active,
            created_ms: 1,
            closed_ms: None,
            tag: vec![1; 16],
        })],
        vec![draft("subject.register")],
    )?;
    Ok(())
}

/// Makes fresh, empty backends for the checks, and removes them when dropped.
pub trait Scratch {
    /// A fresh, empty store and keyring.
    fn make(&self) -> (Box<dyn Store>, Box<dyn Keyring>);
}

/// Every check of the suite, by name.
pub const CHECKS: &[Check] = &[
    ("unit_of_work_is_atomic", units::unit_of_work_is_atomic),
    (
        "units_committed_together_fail_alone",
        units::units_committed_together_fail_alone,
    ),
    (
        "audit_chain_continues_across_units",
        units::audit_chain_continues_across_units,
    ),
    (
        "subject_records_joins_state_consent_records",
        units::subject_records_joins_state_consent_records,
    ),
    (
        "consent_in_force_is_latest_event",
        units::consent_in_force_is_latest_event,
    ),
    ("purge_deletes_in_batches", units::purge_deletes_in_batches),
    ("record_ids_are_unique", units::record_ids_are_unique),
    (
        "keyring_destroy_is_idempotent",
        units::keyring_destroy_is_idempotent,
    ),
    (
        "api_keys_are_stored_and_revoked",
        units::api_keys_are_stored_and_revoked,
    ),
    (
        "holds_are_placed_listed_and_lifted",
        coverage::holds_are_placed_listed_and_lifted,
    ),
    (
        "requests_are_read_in_the_unit_and_listed_when_due",
        coverage::requests_are_read_in_the_unit_and_listed_when_due,
    ),
    (
        "retention_pages_walk_records_by_age",
        coverage::retention_pages_walk_records_by_age,
    ),
    (
        "closed_accounts_are_listed_until_erased",
        coverage::closed_accounts_are_listed_until_erased,
    ),
    (
        "codes_attempts_and_sessions_are_kept",
        coverage::codes_attempts_and_sessions_are_kept,
    ),
    (
        "staff_accounts_and_sessions_are_kept",
        coverage::staff_accounts_and_sessions_are_kept,
    ),
    (
        "checkpoints_and_meta_are_kept",
        coverage::checkpoints_and_meta_are_kept,
    ),
    (
        "prefetch_answers_as_the_calls_would",
        coverage::prefetch_answers_as_the_calls_would,
    ),
    (
        "keyring_keeps_each_subjects_key",
        coverage::keyring_keeps_each_subjects_key,
    ),
    (
        "subjects_are_fetched_together_in_order",
        coverage::subjects_are_fetched_together_in_order,
    ),
    ("certificates_are_kept", coverage::certificates_are_kept),
    (
        "records_are_deleted_by_key",
        coverage::records_are_deleted_by_key,
    ),
    (
        "audit_scan_streams_from_a_seq_and_stops",
        coverage::audit_scan_streams_from_a_seq_and_stops,
    ),
    (
        "state_rows_and_tags_are_kept",
        coverage::state_rows_and_tags_are_kept,
    ),
    (
        "outbox_claims_each_message_once_per_lease",
        outbox::outbox_claims_each_message_once_per_lease,
    ),
    (
        "webhook_endpoints_are_kept",
        outbox::webhook_endpoints_are_kept,
    ),
    (
        "subject_languages_are_kept",
        outbox::subject_languages_are_kept,
    ),
    ("device_links_are_kept", outbox::device_links_are_kept),
    ("request_steps_are_kept", coverage::request_steps_are_kept),
    (
        "request_systems_are_kept",
        coverage::request_systems_are_kept,
    ),
    (
        "policy_versions_and_events_are_kept",
        outbox::policy_versions_and_events_are_kept,
    ),
    (
        "cases_their_sets_and_matching_records_are_kept",
        outbox::cases_their_sets_and_matching_records_are_kept,
    ),
];

/// Runs the check `name` on backends from `scratch`.
pub fn run(name: &str, scratch: &dyn Scratch) -> Result<(), String> {
    let check = CHECKS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
        .ok_or_else(|| format!("no conformance check `{name}`"))?;
    check(&|| scratch.make()).map_err(|e| format!("{name}: {e}"))
}

/// One `#[test]` per conformance check, each on fresh backends from `$scratch` (an
/// expression making a [`Scratch`]), plus one that fails when a check has no test here.
#[macro_export]
macro_rules! conformance_tests {
    ($scratch:expr) => {
        $crate::conformance_tests!(@each $scratch;
            unit_of_work_is_atomic, units_committed_together_fail_alone,
            audit_chain_continues_across_units, subject_records_joins_state_consent_records,
            consent_in_force_is_latest_event, purge_deletes_in_batches, record_ids_are_unique,
            keyring_destroy_is_idempotent, api_keys_are_stored_and_revoked,
            holds_are_placed_listed_and_lifted, requests_are_read_in_the_unit_and_listed_when_due,
            retention_pages_walk_records_by_age, closed_accounts_are_listed_until_erased,
            codes_attempts_and_sessions_are_kept, staff_accounts_and_sessions_are_kept,
            checkpoints_and_meta_are_kept, prefetch_answers_as_the_calls_would,
            keyring_keeps_each_subjects_key, subjects_are_fetched_together_in_order,
            certificates_are_kept, records_are_deleted_by_key, state_rows_and_tags_are_kept,
            audit_scan_streams_from_a_seq_and_stops, outbox_claims_each_message_once_per_lease,
            webhook_endpoints_are_kept, subject_languages_are_kept, device_links_are_kept,
            request_steps_are_kept, request_systems_are_kept, policy_versions_and_events_are_kept, cases_their_sets_and_matching_records_are_kept);
    };
    (@each $scratch:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let scratch = $scratch;
                $crate::conformance::run(stringify!($check), &scratch).unwrap();
            }
        )*

        #[test]
        fn every_conformance_check_has_a_test() {
            let tested = [$(stringify!($check)),*];
            for (name, _) in $crate::conformance::CHECKS {
                assert!(tested.contains(name), "conformance check `{name}` has no test");
            }
            assert_eq!(tested.len(), $crate::conformance::CHECKS.len());
        }
    };
}

/// Runs every check, each on fresh backends; the name of the first that fails, with why.
pub fn run_all(scratch: &dyn Scratch) -> Result<(), String> {
    for (name, _) in CHECKS {
        run(name, scratch)?;
    }
    Ok(())
}

pub(crate) fn ensure(cond: bool, what: &str) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what.to_string()) }
}

pub(crate) fn e(err: StoreError) -> String {
    err.to_string()
}
