//! Issue 14 (P7, P8, P33): the cookie banner in a real browser. A provider's page on its own
//! loopback address embeds `/banner.js` from Steward; Debian's Chromium, driven by Playwright
//! (`tools/browser/banner.mjs`), checks what a visitor sees and does — blocked scripts held
//! until consent, refuse all, Global Privacy Control, withdrawal deleting cookies, the re-prompt
//! after a material policy change, the receipts download, keyboard use and axe-core in both
//! languages — and this test checks what Steward recorded. Screenshots of both layers are
//! left in `target/browser-screenshots/`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use serde_json::{Value, json};
use steward_core::SubjectId;

use crate::http::Server;
use crate::kit::{s, steward};

const DAY: i64 = 86_400_000;

/// The provider's page: the banner, two scripts held for their purposes (each sets its own
/// cookie), a button and the link that reopens the settings.
fn page(steward: &str, lang: &str) -> String {
    format!(
        r##"<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Example Shop</title>
<script src="{steward}/banner.js" data-lang="{lang}" defer></script>
<script type="text/plain" data-steward-purpose="service_improvement">
  window.analyticsRan = (window.analyticsRan || 0) + 1;
  document.cookie = "analytics_id=a1; Path=/; Max-Age=31536000";
</script>
<script type="text/plain" data-steward-purpose="personalisation">
  window.prefsRan = 1;
  document.cookie = "prefs=p1; Path=/; Max-Age=15552000";
</script>
<style>body {{ font: 16px/1.5 sans-serif; margin: 0; }} main {{ padding: 1rem; min-height: 120vh; display: flex; flex-direction: column; justify-content: flex-end; }}</style>
</head>
<body>
<header><h1>Example Shop</h1></header>
<main>
<p>Goods for every season.</p>
<p><button id="buy" type="button">Buy now</button></p>
</main>
<footer><p><a href="#" data-steward-settings>Cookie settings</a></p></footer>
</body>
</html>
"##
    )
}

/// Serves the provider's page on `listener` until the test ends: `/` in Chinese, `/?lang=en`
/// in English.
fn serve_pages(listener: TcpListener, steward: String) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(n) if n > 2 => {}
                    _ => break,
                }
            }
            let path = line.split(' ').nth(1).unwrap_or("/");
            let (status, body) = if path == "/" {
                ("200 OK", page(&steward, "zh-CN"))
            } else if path == "/?lang=en" {
                ("200 OK", page(&steward, "en"))
            } else {
                ("404 Not Found", String::new())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

struct Browser {
    page: String,
    out: PathBuf,
    profiles: tempfile::TempDir,
}

impl Browser {
    /// Runs one step of `tools/browser/banner.mjs` as visitor `who` (a browser profile of
    /// their own, kept between steps); what it reports.
    fn step(&self, step: &str, who: &str, query: &str, gpc: bool) -> Value {
        crate::kit::browser(
            "banner.mjs",
            &[step],
            &[
                ("PAGE", format!("{}{query}", self.page)),
                ("PROFILE", s(&self.profiles.path().join(who)).to_string()),
                ("OUT", s(&self.out).to_string()),
                ("GPC", if gpc { "1" } else { "0" }.to_string()),
            ],
        )
    }
}

/// Where visitor `device` stands, purpose by purpose: `Some(granted)` or `None`.
fn choices(srv: &Server, device: &str) -> Vec<(String, Option<bool>)> {
    let state = srv.vault.visitor_state(device, false, None, None).unwrap();
    state
        .purposes
        .into_iter()
        .filter(|p| !p.essential)
        .map(|p| (p.purpose, p.granted))
        .collect()
}

/// The visitor's consent entries in the audit log: (action, detail).
fn entries(srv: &Server, device: &str) -> Vec<(String, Value)> {
    let state = srv.vault.visitor_state(device, false, None, None).unwrap();
    let id: SubjectId = state.visitor.parse().unwrap();
    let pseudonym = srv.vault.pseudonym(id);
    let mut found = Vec::new();
    srv.vault
        .store()
        .audit_scan(1, &mut |raw| {
            let e = steward_audit::Entry::decode(raw.bytes, [0; 32]).unwrap();
            if e.subject == pseudonym && e.action.starts_with("consent.") {
                found.push((e.action, serde_json::from_str(&e.detail).unwrap()));
            }
            true
        })
        .unwrap();
    found
}

#[test]
fn p07_the_banner_in_chromium_holds_scripts_honours_refusal_gpc_and_withdrawal_and_is_accessible() {
    let listener = TcpListener::bind("127.0.0.2:0").unwrap();
    let site = format!("http://{}", listener.local_addr().unwrap());
    let srv = Server::start_for_site(&site);
    serve_pages(listener, srv.base.clone());
    let out = crate::kit::screenshots();
    let browser = Browser {
        page: format!("{site}/"),
        out: out.clone(),
        profiles: tempfile::tempdir().unwrap(),
    };
    let si = "service_improvement".to_string();
    let pe = "personalisation".to_string();

    // A first visit in Chinese: nothing held back runs; by keyboard, analytics on, saved.
    let r = browser.step("first", "a", "", false);
    assert_eq!(r["lang"], "zh-CN");
    let a = r["device"].as_str().unwrap().to_string();
    assert_eq!(
        choices(&srv, &a),
        [(si.clone(), Some(true)), (pe.clone(), Some(false))]
    );
    let log = entries(&srv, &a);
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log.iter()
            .all(|(_, d)| d["action"] == "toggle" && d["channel"] == "banner")
    );

    // Withdrawn: its cookie deleted; the receipts downloaded from the settings verify, with
    // the public key and against the audit log, and name the visitor only by pseudonym.
    let r = browser.step("withdraw", "a", "", false);
    assert_eq!(choices(&srv, &a)[0], (si.clone(), Some(false)));
    let downloaded: Value =
        serde_json::from_str(&std::fs::read_to_string(r["receipts"].as_str().unwrap()).unwrap())
            .unwrap();
    let receipts = downloaded["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 3, "{downloaded}");
    let text = downloaded.to_string();
    assert!(!text.contains(&a), "a receipt holds the raw device id");
    let export = tempfile::tempdir().unwrap();
    steward_core::evidence::export_log(srv.vault.store(), srv.vault.public_key(), export.path())
        .unwrap();
    let mut last = Value::Null;
    for (i, receipt) in receipts.iter().enumerate() {
        let doc: steward_core::SignedDocument = serde_json::from_value(receipt.clone()).unwrap();
        last = steward_core::evidence::verify_document(&doc, Some(srv.vault.public_key())).unwrap();
        let file = export.path().join(format!("receipt-{i}.json"));
        std::fs::write(&file, receipt.to_string()).unwrap();
        let pem = export.path().join("public-key.pem");
        let run = steward(&[
            "document",
            "verify",
            s(&file),
            "--public-key",
            s(&pem),
            "--export",
            s(export.path()),
        ])
        .ok();
        assert!(
            run.stdout
                .contains("its audit entry is in the verified log"),
            "{}",
            run.stdout
        );
    }
    assert_eq!(last["shaped_after"], "ISO/IEC TS 27560:2023");
    assert_eq!(last["state"], "withdrawn");
    assert_eq!(last["collection_method"]["channel"], "banner");
    assert_eq!(last["collection_method"]["action"], "toggle");
    assert_eq!(last["principal"]["id_type"], "pseudonym");
    assert_eq!(last["purposes"][0]["purpose"], "service_improvement");
    assert_eq!(last["purposes"][0]["lawful_basis"], "consent");
    assert!(
        !last["purposes"][0]["pi_categories"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        last["controller"]["statement"],
        "Example Cloud Privacy Statement"
    );

    // A second visitor, in English, refuses all: refusals recorded as button presses.
    let r = browser.step("refuse", "b", "?lang=en", false);
    assert_eq!(r["lang"], "en");
    let b = r["device"].as_str().unwrap().to_string();
    assert_eq!(
        choices(&srv, &b),
        [(si.clone(), Some(false)), (pe.clone(), Some(false))]
    );
    assert!(
        entries(&srv, &b)
            .iter()
            .all(|(_, d)| d["action"] == "button")
    );

    // A third under Global Privacy Control, on two page loads: refused once, as GPC.
    let r = browser.step("gpc", "c", "", true);
    let c = r["device"].as_str().unwrap().to_string();
    assert_eq!(
        choices(&srv, &c),
        [(si.clone(), Some(false)), (pe.clone(), Some(false))]
    );
    let log = entries(&srv, &c);
    assert_eq!(log.len(), 2, "recorded once, not per request: {log:?}");
    assert!(
        log.iter()
            .all(|(action, d)| action == "consent.withdraw" && d["gpc"] == true)
    );

    // A material policy change in force: the first visitor is asked again.
    let officer = srv.key("privacy_officer");
    let now = steward_core::clock::Clock::now_ms(&*srv.clock);
    let effective = steward_core::clock::rfc3339(now + 40 * DAY)[..10].to_string();
    let published = srv.post(
        "/v1/policy/versions",
        &officer,
        json!({"text": crate::policy::next_version("2026.2"), "effective": effective}),
    );
    assert_eq!(published.status, 201, "{}", published.body);
    srv.clock.advance(41 * DAY);
    srv.vault
        .policy_tick(std::time::Duration::from_secs(5))
        .unwrap();
    browser.step("reprompt", "a", "", false);

    for shot in [
        "banner-first-layer-zh-CN",
        "banner-settings-zh-CN",
        "banner-first-layer-en",
        "banner-settings-en",
        "banner-gpc",
    ] {
        assert!(out.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
}
