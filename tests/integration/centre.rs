//! Issue 15 (in part): the privacy centre and the staff console in a real browser. A subject
//! signs in with the code the SMTP sink received, sees what is held about them, keeps a copy,
//! withdraws a consent and asks for a deletion; staff refuse it in the console with a reason,
//! which the subject then sees; a role without `requests.manage` is shown nothing; a form
//! posted from another site is refused; axe-core finds nothing on any page.
//! Screenshots are left in `target/browser-screenshots/`.

use std::sync::Arc;

use crate::http::Server;
use crate::kit::{browser, s, screenshots};
use crate::selfservice::SmtpSink;

#[test]
fn p23_p25_a_subject_signs_in_to_the_privacy_centre_and_sees_what_is_held() {
    let sink = SmtpSink::start();
    let mailer = steward_server::mail::SmtpMailer::new(
        "127.0.0.1",
        sink.port,
        "Privacy <privacy@example.com>",
    )
    .unwrap();
    let srv = Server::start_with_mail(Some(Arc::new(mailer)));
    let service = srv.key("service");
    let subject = srv.subject(&service);
    let password = "correct horse battery staple";
    srv.vault
        .create_staff("li.officer", "privacy_officer", password)
        .unwrap();
    srv.vault
        .create_staff("zhao.engineer", "engineer", password)
        .unwrap();
    let email = Server::email_of(0);
    let scratch = tempfile::tempdir().unwrap();
    let code_file = scratch.path().join("code.txt");
    // The code, as the subject would read it in their mail, for the browser to paste.
    let waiter = {
        let code_file = code_file.clone();
        std::thread::spawn(move || {
            let code = sink.code_after(0);
            std::fs::write(&code_file, code).unwrap();
            sink
        })
    };
    let report = browser(
        "centre.mjs",
        &[],
        &[
            ("BASE", srv.base.clone()),
            ("EMAIL", email),
            ("CODE_FILE", s(&code_file).to_string()),
            ("OUT", s(&screenshots()).to_string()),
            ("PROFILE", s(&scratch.path().join("profile")).to_string()),
            ("STAFF_USER", "li.officer".to_string()),
            ("OTHER_USER", "zhao.engineer".to_string()),
            ("STAFF_PASS", password.to_string()),
        ],
    );
    assert_eq!(report["ok"], true);
    drop(waiter.join().unwrap());
    // What the pages did is what the API sees: the consent withdrawn (a read for the purpose
    // is refused), the deletion request refused by staff in the console.
    let read = srv.post(
        &format!("/v1/subjects/{subject}/read"),
        &service,
        serde_json::json!({"categories": ["email"], "purpose": "relevant_offers"}),
    );
    assert_eq!(
        read.body["error"]["code"], "consent_required",
        "{}",
        read.body
    );
    let mine = srv.vault.self_requests(subject.parse().unwrap()).unwrap();
    assert_eq!(
        mine.iter()
            .map(|r| (r.kind.as_str(), r.state.as_str()))
            .collect::<Vec<_>>(),
        [("deletion", "refused")]
    );
    // Every step went through the core, audited: the code, the sign-in, two views of the
    // data (each an export), the sign-out; and the cross-site post did nothing.
    let log = srv.audit_text();
    for action in ["otp.send", "otp.verify", "subject.export", "session.end"] {
        assert!(log.contains(action), "no `{action}` in the log");
    }
    for shot in [
        "console-queue-zh-CN",
        "console-request-zh-CN",
        "centre-sign-in-zh-CN",
        "centre-code-zh-CN",
        "centre-data-zh-CN",
        "centre-data-en",
        "centre-sign-in-en",
    ] {
        assert!(
            screenshots().join(format!("{shot}.png")).exists(),
            "{shot}.png"
        );
    }
}
