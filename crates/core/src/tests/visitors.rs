//! Visitors (P7, P8): how many new ones a public caller may make.

use super::*;
use crate::visitors::{VisitorChoice, VisitorChoices};

/// A flood of made-up device ids from one address stops at the hourly limit; known visitors,
/// other addresses and trusted callers go on; the next hour the address may again.
#[test]
fn p07_one_address_makes_only_so_many_new_visitors_an_hour() {
    let mut k = kit();
    k.vault.visitor_limit = 2;
    let v = &k.vault;
    let flood = "192.0.2.1";
    let device = |n: u32| format!("flood-device-{n:06}-abcdefgh");
    for n in 0..2 {
        v.visitor_state(&device(n), true, Some(flood), None)
            .unwrap();
    }
    assert!(matches!(
        v.visitor_state(&device(2), true, Some(flood), None),
        Err(Error::TooManyAttempts)
    ));
    // A visitor already made is no new one; another address has its own count.
    v.visitor_state(&device(0), true, Some(flood), None)
        .unwrap();
    v.visitor_state(&device(3), true, Some("192.0.2.9"), None)
        .unwrap();
    // In one batch, only the request that would make a new visitor is refused.
    let choices = [VisitorChoice {
        purpose: "service_improvement".into(),
        granted: true,
    }];
    let (known, new) = (device(1), device(4));
    let ask = |d| VisitorChoices {
        device: d,
        choices: &choices,
        action: "button",
        gpc: false,
        receipts: false,
        client: Some(flood),
    };
    let answers = v.visitor_choose_each(&[ask(known.as_str()), ask(new.as_str())]);
    assert!(answers[0].is_ok(), "{:?}", answers[0]);
    assert!(matches!(answers[1], Err(Error::TooManyAttempts)));
    // A trusted caller (a key, a session) is not counted.
    v.visitor_state(&device(5), true, None, None).unwrap();
    // An hour on, the address may again.
    k.clock.advance(3_600_001);
    v.visitor_state(&device(6), true, Some(flood), None)
        .unwrap();
    // Nothing of the refused devices was made.
    let made = |n: u32| {
        v.store()
            .subject(&v.visitor(&device(n)).unwrap().0)
            .unwrap()
            .is_some()
    };
    assert!(made(0) && made(1) && made(3) && made(5) && made(6));
    assert!(!made(2) && !made(4));
}
