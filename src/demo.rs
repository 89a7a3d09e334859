//! `steward demo`: a realistic scenario on a fresh embedded store with the example policy,
//! told step by step for a person to read. Values shown are masked; the demo's logs carry no PI.

use crate::out::say;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use clap::Args;
use steward_core::clock::SystemClock;
use steward_core::evidence;
use steward_core::{Actor, Collect, Error, Read, Source, SubjectId, Value, Vault, files};

use crate::cli::{CheckFailed, load_policy, master_key};

#[derive(Args)]
pub struct DemoArgs {
    /// Keep the store in this directory (must not hold a store yet); default: a temporary one.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Policy file (default: the shipped example policy).
    #[arg(long)]
    policy: Option<PathBuf>,
}

/// Step 8: a short incident — its affected set computed from what is held, its report in
/// both languages, its notices queued (P22).
/// Step 6: a visitor's cookie choices on the banner, before sign-in, become subject A's when the
/// provider links the device (P7, P8, P19); then the snippet a provider pastes into its pages.
fn banner(v: &Vault, app: &Actor, subject: SubjectId) -> Result<()> {
    use steward_core::visitors::VisitorChoice;
    say!("\n6. A visitor's cookie choices on the banner join subject A at sign-in (P7, P8, P19)");
    // The banner makes 16 random bytes; the demo's device id is fixed so its story repeats.
    let device = "ZGVtby12aXNpdG9yLWRldmljZQ";
    let choices = [
        VisitorChoice {
            purpose: "service_improvement".into(),
            granted: true,
        },
        VisitorChoice {
            purpose: "personalisation".into(),
            granted: false,
        },
    ];
    let receipts = v.visitor_choose(device, &choices, "button", false)?;
    say!(
        "   a visitor accepts analytics and refuses personalisation: {} signed receipts",
        receipts.len()
    );
    let link = v.link_device(app, subject, device)?;
    say!(
        "   subject A signs in on that browser; the device ({}) is now theirs: in their export, erased with them",
        link.visitor
    );
    let base = "http://127.0.0.1:8080";
    say!(
        "   Paste into the provider's pages (Steward serving at {base}; list the pages' origin in STEWARD_ALLOWED_ORIGINS):"
    );
    for line in snippet(base).lines() {
        say!("     {line}");
    }
    Ok(())
}

/// What a provider pastes into its pages to put Steward's banner on them (docs/banner.md).
fn snippet(base: &str) -> String {
    format!(
        r##"<script src="{base}/banner.js" defer></script>
<script type="text/plain" data-steward-purpose="service_improvement" src="/analytics.js"></script>
<a href="#" data-steward-settings>Cookie 设置 / Cookie settings</a>"##
    )
}

fn incident(v: &Vault, officer: &Actor, dir: &std::path::Path) -> Result<()> {
    use steward_core::clock::{Clock, rfc3339};
    say!("\n9. An incident: the affected set, the authority's report, notices (P22)");
    let now = SystemClock.now_ms();
    let new: steward_core::incidents::NewIncident = serde_json::from_value(serde_json::json!({
        "title": "Support ticket export found in a public bucket",
        "detected_at": rfc3339(now),
        "grade": "relatively_major",
        "cause": "a support export was written to a bucket readable by anyone",
        "harm": "phishing emails that quote your name and address",
        "advice": {
            "en": "Do not open links in emails that ask you to sign in; we never ask for your password.",
            "zh-CN": "请勿打开要求您登录的邮件中的链接；我们绝不会索要您的密码。"
        },
        "exposure": {"categories": ["email"], "from": rfc3339(now - 3_600_000), "to": rfc3339(now)},
    }))?;
    let inc = v.open_incident(Some(officer), &new)?;
    say!(
        "   {} opened: {} subjects held an email address in the window (computed from the record index, nothing decrypted)",
        inc.id,
        inc.affected.subjects
    );
    for c in &inc.clocks {
        say!(
            "   {} report to {} due {} ({})",
            c.part,
            c.authority,
            c.due_at
                .as_deref()
                .unwrap_or("once the incident is handled"),
            c.basis
        );
    }
    v.incident_step(
        Some(officer),
        &inc.id,
        "containment",
        "bucket made private; access logs kept",
    )?;
    for lang in ["zh-CN", "en"] {
        let report = v.incident_report(Some(officer), &inc.id, Some(lang))?;
        let path = dir.join(format!("incident-report-{}.{lang}.txt", inc.id));
        std::fs::write(&path, v.report_text(&report)?)?;
        say!("   report ({lang}) -> {}", path.display());
    }
    v.file_report(Some(officer), &inc.id, "cn", "initial")?;
    v.notify_incident(Some(officer), &inc.id)?;
    while let Some((_, _, false)) = v.incident_notice_step(&inc.id, v.notice_batch())? {}
    let now = v.incident(Some(officer), &inc.id)?;
    say!(
        "   initial report recorded as filed; {} notice mails queued in the outbox ({} skipped: erased), announced at GET /v1/notices",
        now.notification.pending,
        now.notification.skipped
    );
    Ok(())
}

/// Shows enough of a value to see that decryption worked, and no more.
fn mask(v: &str) -> String {
    let chars: Vec<char> = v.chars().collect();
    match chars.len() {
        0..=3 => "***".into(),
        n => {
            let keep = (n / 4).min(3);
            let head: String = chars.iter().take(keep).collect();
            let tail: String = chars.iter().skip(n - keep).collect();
            format!("{head}***{tail}")
        }
    }
}

fn show(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| format!("{}={}", v.category, mask(&v.value)))
        .collect::<Vec<_>>()
        .join(", ")
}

struct Story {
    vault: Vault,
}

impl Story {
    fn actor(&self, id: &str, role: &str) -> Result<Actor> {
        let role = self.vault.policy().role_id(role).ok_or_else(|| {
            anyhow!("the policy has no role `{role}`; the demo needs the example roles")
        })?;
        Ok(Actor {
            id: id.into(),
            role,
        })
    }

    fn read(
        &self,
        who: &Actor,
        (label, subject): (&str, SubjectId),
        cats: &[&str],
        purpose: &str,
        why: Option<&str>,
    ) {
        let r = self.vault.read(
            who,
            &Read {
                subject,
                categories: cats,
                purpose,
                justification: why,
            },
        );
        let role = self.vault.policy().role_name(who.role);
        match r {
            Ok(v) => say!(
                "   allowed  {role:<9} reads {label}'s {} for {purpose}: {}",
                cats.join("+"),
                show(&v)
            ),
            Err(e) => say!(
                "   REFUSED  {role:<9} reads {label}'s {} for {purpose}: [{}] {e}",
                cats.join("+"),
                e.code()
            ),
        }
    }
}

pub fn run(args: &DemoArgs) -> Result<()> {
    let temp;
    let dir = match &args.data_dir {
        Some(d) => {
            if d.join(files::DATA).exists() {
                return Err(anyhow!(
                    "`{}` already holds a store; the demo needs a fresh one",
                    d.display()
                ));
            }
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let policy = load_policy(args.policy.as_deref())?;
    let master = master_key(&dir, None, true)?;
    let vault = Vault::open_sqlite(&dir, policy, &master, Arc::new(SystemClock), None)?
        .with_journal(steward_core::evidence::Journal::new(
            dir.join("journal").join("checkpoints.jsonl"),
        ))
        .with_erasure_journal(steward_core::erasures::ErasureJournal::new(
            dir.join("journal").join("erasures.jsonl"),
        ));
    let p = vault.policy();
    say!(
        "Steward demo — {} {} (effective {})",
        p.name,
        p.version,
        p.effective
    );
    say!(
        "store: {} (embedded SQLite, region {}; keyring kept in its own file)\n",
        dir.display(),
        p.regions.first().map_or("?", String::as_str)
    );
    let story = Story { vault };
    let v = &story.vault;
    let app = story.actor("service:console", "service")?;
    let marketing = story.actor("service:campaigns", "marketing")?;
    let support = story.actor("staff:wang.fang", "support")?;
    let officer = story.actor("staff:privacy-office", "privacy_officer")?;

    say!("1. Subjects register through the statement's features (P2, P3, P6, P19)");
    let li = v.register(&app)?;
    v.collect(
        &app,
        &Collect {
            subject: li,
            feature: "account",
            values: &[
                ("name", "Li Lei"),
                ("email", "li.lei@example.cn"),
                ("phone", "+86 138 0013 8000"),
                ("im_account", "wx:lilei1988"),
            ],
            source: Source::Subject,
        },
    )?;
    v.collect(
        &app,
        &Collect {
            subject: li,
            feature: "marketplace",
            values: &[
                ("order_record", "order 20260112-0042: ECS 2 vCPU, 12 months"),
                ("postal_address", "88 Wensan Road, Hangzhou"),
            ],
            source: Source::Subject,
        },
    )?;
    say!(
        "   subject A registered by account (name, email, phone, linked IM account) and bought in the marketplace"
    );
    let han = v.register(&app)?;
    v.collect(
        &app,
        &Collect {
            subject: han,
            feature: "domain_registration",
            values: &[
                ("name", "Han Meimei"),
                ("email", "meimei.han@example.cn"),
                ("phone", "+86 139 0013 9000"),
                ("postal_address", "1 Zhongguancun Street, Beijing"),
            ],
            source: Source::Subject,
        },
    )?;
    say!("   subject B registered a domain (name, email, phone, address)");
    let zhao = v.register(&app)?;
    v.collect(
        &app,
        &Collect {
            subject: zhao,
            feature: "product_trial",
            values: &[("name", "Zhao Qiang"), ("email", "q.zhao@example.cn")],
            source: Source::ThirdParty(
                "Example Events Ltd. (trial sign-up at a trade fair)".into(),
            ),
        },
    )?;
    say!("   subject C signed up for a product trial, received from a named third party");
    match v.collect(
        &app,
        &Collect {
            subject: zhao,
            feature: "sms",
            values: &[
                ("phone", "+86 137 0013 7000"),
                ("government_id", "110101199003071234"),
            ],
            source: Source::Subject,
        },
    ) {
        Err(e) => say!(
            "   REFUSED  collecting government_id through `sms`: [{}] {e}",
            e.code()
        ),
        Ok(_) => {
            return Err(CheckFailed(
                "the demo expected an undeclared category to be refused".into(),
            )
            .into());
        }
    }
    match v.collect(
        &app,
        &Collect {
            subject: li,
            feature: "face_recognition",
            values: &[("face_image", "<face image bytes>")],
            source: Source::Subject,
        },
    ) {
        Err(e) => say!(
            "   REFUSED  collecting a face image without consent: [{}] {e}",
            e.code()
        ),
        Ok(_) => {
            return Err(
                CheckFailed("the demo expected a sensitive category to be refused".into()).into(),
            );
        }
    }
    let face = v.consent_target("feature:face_recognition")?;
    v.consent(&app, li, face, true, true, "app")?;
    v.collect(
        &app,
        &Collect {
            subject: li,
            feature: "face_recognition",
            values: &[
                ("face_image", "<face image bytes>"),
                ("face_template", "<template 512 floats>"),
            ],
            source: Source::Subject,
        },
    )?;
    say!(
        "   subject A gave separate consent for face recognition (P5); the face image was then collected"
    );
    let found = v.find(&app, "im_account", "WX:LiLei1988")?;
    say!(
        "   lookup by linked IM account (blind index, no plaintext column): {}",
        if found == Some(li) {
            "found subject A"
        } else {
            "not found"
        }
    );

    say!("\n2. Usage records are logged as observed data (P6)");
    let mut n = 0;
    for (i, s) in [li, han, zhao].iter().enumerate() {
        for k in 0..40 {
            let ip = format!("203.0.113.{}", (i * 40 + k) % 250);
            let page = format!("/console/instances?page={k}");
            v.collect(
                &app,
                &Collect {
                    subject: *s,
                    feature: "usage_logging",
                    values: &[
                        ("ip_address", &ip),
                        ("access_time", "2026-11-29T08:00:00Z"),
                        ("browser_type", "Chromium 156"),
                        ("language", "zh-CN"),
                        ("pages_visited", &page),
                    ],
                    source: Source::Observed,
                },
            )?;
            n += 5;
        }
    }
    say!("   {n} usage values logged for 3 subjects, each encrypted under its subject's own key");

    say!("\n3. Consent is granted and withdrawn (P10, P27)");
    let offers = v.consent_target("purpose:relevant_offers")?;
    let surveys = v.consent_target("purpose:surveys")?;
    let receipt = v.consent(&app, li, offers, true, false, "web")?;
    v.consent(&app, li, surveys, true, false, "app")?;
    v.consent(&app, han, surveys, true, false, "email")?;
    say!(
        "   subject A granted relevant_offers (web) and surveys (app); subject B granted surveys (email)"
    );
    let payload = evidence::verify_document(&receipt, Some(v.public_key()))?;
    say!(
        "   signed consent receipt for A: audit entry {}, verifies with the public key",
        payload.get("audit_seq").cloned().unwrap_or_default()
    );

    say!("\n4. Reads name a purpose; the policy, the role and consent decide (P9, P10, P21)");
    story.read(&app, ("A", li), &["email"], "provide_service", None);
    story.read(
        &marketing,
        ("A", li),
        &["email", "order_record"],
        "relevant_offers",
        None,
    );
    story.read(&marketing, ("A", li), &["phone"], "surveys", None);
    story.read(&marketing, ("B", han), &["email"], "relevant_offers", None);
    v.consent(&app, li, offers, false, false, "web")?;
    say!("   -- subject A withdraws consent to relevant_offers --");
    story.read(&marketing, ("A", li), &["email"], "relevant_offers", None);
    story.read(&support, ("B", han), &["phone"], "support", None);
    story.read(
        &support,
        ("B", han),
        &["phone"],
        "support",
        Some("ticket 7781: callback requested"),
    );
    story.read(
        &support,
        ("B", han),
        &["phone"],
        "relevant_offers",
        Some("curious"),
    );
    story.read(&app, ("A", li), &["face_image"], "face_verification", None);
    v.consent(
        &app,
        li,
        v.consent_target("purpose:face_verification")?,
        true,
        false,
        "app",
    )?;
    say!("   -- subject A consents to face_verification --");
    story.read(&app, ("A", li), &["face_image"], "face_verification", None);
    v.consent(&app, li, face, false, false, "app")?;
    say!("   -- subject A withdraws the separate consent to face recognition --");
    story.read(&app, ("A", li), &["face_image"], "face_verification", None);

    say!("\n5. Disclosures go only to registered recipients, within their scope (P12, P13, P16)");
    match v.disclose(
        &app,
        li,
        "courier",
        &["name", "phone", "postal_address"],
        "provide_service",
        None,
    ) {
        Ok(vals) => say!(
            "   allowed  courier receives {} for provide_service",
            show(&vals)
        ),
        Err(e) => say!("   REFUSED  courier: [{}] {e}", e.code()),
    }
    for (rec, cats, purpose) in [
        ("analytics", &["email"][..], "service_improvement"),
        ("intl_affiliate", &["email"][..], "provide_service"),
    ] {
        match v.disclose(&app, li, rec, cats, purpose, None) {
            Ok(_) => say!("   allowed  {rec}"),
            Err(e) => say!(
                "   REFUSED  {rec} asks for {} for {purpose}: [{}] {e}",
                cats.join("+"),
                e.code()
            ),
        }
    }

    banner(v, &app, li)?;

    say!("\n7. Subject A exports everything held about them (P23)");
    let export = v.export(
        &officer,
        li,
        Some("the subject asked for a copy of their data"),
    )?;
    let export_path = dir.join(format!("export-{li}.json"));
    std::fs::write(&export_path, serde_json::to_vec_pretty(&export)?)?;
    say!(
        "   {} values, {} consent events, {} disclosure(s), {} linked device(s) -> {}",
        export.records.len(),
        export.consent_history.len(),
        export.disclosures.len(),
        export.devices.len(),
        export_path.display()
    );

    say!("\n8. Subject B is erased by destroying their data key (P28)");
    let before = v.store().records(&han.0)?.len();
    let cert = v.erase(&officer, han, "subject request: delete my account data")?;
    let cert_path = dir.join(format!("erasure-certificate-{han}.json"));
    std::fs::write(&cert_path, serde_json::to_vec_pretty(&cert)?)?;
    let payload = evidence::verify_document(&cert, Some(v.public_key()))?;
    say!(
        "   key destroyed; {before} ciphertexts are now unreadable everywhere; certificate (audit entry {}) -> {}",
        payload.get("audit_seq").cloned().unwrap_or_default(),
        cert_path.display()
    );
    match v.read(
        &app,
        &Read {
            subject: han,
            categories: &["email"],
            purpose: "provide_service",
            justification: None,
        },
    ) {
        Err(Error::SubjectErased) => {
            say!("   a read of subject B is now refused: subject has been erased")
        }
        other => {
            return Err(anyhow!(
                "erased subject still readable: {:?}",
                other.map(|v| v.len())
            ));
        }
    }
    let purged = v.purge(1000, &mut |_| {})?;
    say!(
        "   background purge removed {} ciphertext rows",
        purged.records_deleted
    );

    incident(v, &officer, &dir)?;
    let staff = sites(v, li, zhao, args.data_dir.as_deref())?;
    provider_database(v, &app, &officer, &dir)?;

    say!("\n12. The audit log proves all of it (P21, P33)");
    let cp = v
        .checkpoint()?
        .ok_or_else(|| anyhow!("the audit log is empty"))?;
    let report = evidence::verify_store(v.store(), v.public_key(), Vec::new(), &mut |_| {})?
        .map_err(|f| CheckFailed(format!("audit log verification FAILED: {f}")))?;
    let pem = dir.join("public-key.pem");
    std::fs::write(&pem, steward_crypto::public_key_pem(&v.public_key()))?;
    say!(
        "   {} entries hash-chained; head signed at entry {}; verification OK",
        report.entries,
        cp.seq
    );
    say!("   public key: {}", pem.display());
    if let Some(d) = &args.data_dir {
        say!("\nThe store stays in {}. Try:", d.display());
        say!("   steward audit verify --data-dir {}", d.display());
        say!(
            "   steward document verify {} --public-key {}",
            cert_path.display(),
            pem.display()
        );
        if let Some(password) = staff {
            say!(
                "\nBoth web sites, on that store (mail goes to files in {}):",
                d.join("mail").display()
            );
            say!(
                "   STEWARD_MAIL_DIR={} steward serve --data-dir {}",
                d.join("mail").display(),
                d.display()
            );
            say!(
                "   privacy centre  http://127.0.0.1:8080/privacy  sign in with subject A's email address (in {}); the code arrives as a file in {}",
                export_path.display(),
                d.join("mail").display()
            );
            say!(
                "   staff console   http://127.0.0.1:8080/console  user `{}`, password in {}",
                DEMO_STAFF,
                password.display()
            );
        }
    }
    Ok(())
}

/// Step 11: the provider's own shop database (a SQLite file beside the store, with the
/// example dataset `examples/datasets/shop.yml`): an access request finds a subject's rows
/// there, a deletion erases them — orders kept for tax, masked — and no one else's (P23, P28).
fn provider_database(v: &Vault, app: &Actor, officer: &Actor, dir: &std::path::Path) -> Result<()> {
    say!("\n11. Requests reach the provider's own database (P23, P28; docs/datasets.md)");
    let sun = v.register(app)?;
    v.collect(
        app,
        &Collect {
            subject: sun,
            feature: "account",
            values: &[("name", "Sun Li"), ("email", "sun.li@example.cn")],
            source: Source::Subject,
        },
    )?;
    let file = dir.join("shop.db");
    let db = rusqlite::Connection::open(&file)?;
    db.execute_batch(include_str!("../examples/datasets/schema-sqlite.sql"))?;
    db.execute_batch(
        "INSERT INTO customers (id, email, full_name, phone) VALUES
             (1, 'sun.li@example.cn', 'Sun Li', '+86 137 0013 7000'), (2, 'zhou.jie@example.cn', 'Zhou Jie', NULL);
         INSERT INTO orders VALUES (10, 1, '5 Binjiang Road, Hangzhou', 'CDN 1 TB', 9900),
                                   (11, 2, '9 Nanjing Road, Shanghai', 'OSS 500 GB', 4500),
                                   (12, 1, '5 Binjiang Road, Hangzhou', 'SSL certificate', 19900);
         INSERT INTO login_events VALUES (100, 1, '192.0.2.7', '2026-03-01 09:00:00'),
                                         (101, 2, '198.51.100.4', '2026-03-01 10:00:00');",
    )?;
    drop(db);
    let shop = include_str!("../examples/datasets/shop.yml");
    let (catalogue, problems) =
        steward_datasets::load(&[("shop.yml".to_string(), shop.to_string())], v.policy());
    if let Some(p) = problems.first() {
        return Err(anyhow!("the example dataset does not check: {p}"));
    }
    let connection = steward_datasets::live::Connection {
        url: format!("sqlite://{}", file.display()),
        schema: None,
    };
    let fanout =
        steward_datasets::run::Fanout::new(catalogue, [("shop".to_string(), connection)].into())
            .map_err(|e| anyhow!("the shop database: {e}"))?;
    v.attach_datasets(Arc::new(fanout))?;
    say!(
        "   the shop's customers, orders and sign-ins are declared in a dataset (examples/datasets/shop.yml); database {}",
        file.display()
    );
    let asked = v.open_request(officer, sun, "access", None, None)?;
    v.verify_request(officer, &asked.id, "documents")?;
    let done = v.complete_request(
        officer,
        &asked.id,
        &steward_core::Closing {
            justification: Some("subject D's access request"),
            ..Default::default()
        },
    )?;
    let export = done
        .export
        .ok_or_else(|| anyhow!("an access request gave no copy"))?;
    for s in &export.systems {
        let tables: Vec<String> = s
            .collections
            .iter()
            .map(|c| format!("{}: {} rows", c.collection, c.rows.len()))
            .collect();
        let categories: Vec<&str> = s.categories.iter().map(|c| c.category.as_str()).collect();
        say!(
            "   subject D asks for a copy: it holds Steward's {} values and, from `{}`, {} ({})",
            export.records.len(),
            s.system,
            tables.join(", "),
            categories.join(", ")
        );
    }
    let asked = v.open_request(officer, sun, "deletion", None, None)?;
    v.verify_request(officer, &asked.id, "documents")?;
    let done = v.complete_request(
        officer,
        &asked.id,
        &steward_core::Closing {
            justification: Some("subject D's deletion request"),
            ..Default::default()
        },
    )?;
    let systems = done
        .request
        .outcome
        .as_ref()
        .and_then(|o| o.get("systems"))
        .cloned()
        .unwrap_or_default();
    let counts = |path: &str| {
        systems
            .pointer(path)
            .and_then(|v| v.as_object())
            .map(|m| {
                m.iter()
                    .map(|(table, n)| format!("{table}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    say!(
        "   subject D asks to be deleted: in `shop` rows deleted ({}) and masked ({}: orders kept for tax, customer and address cleared), then Steward's own copy erased",
        counts("/shop/deleted"),
        counts("/shop/masked")
    );
    let db = rusqlite::Connection::open(&file)?;
    let left: i64 = db.query_row(
        "SELECT (SELECT count(*) FROM customers WHERE email = 'sun.li@example.cn')
              + (SELECT count(*) FROM orders WHERE customer_id = 1 OR shipping_address LIKE '5 Binjiang%')
              + (SELECT count(*) FROM login_events WHERE customer_id = 1)",
        [],
        |r| r.get(0),
    )?;
    let others: i64 = db.query_row(
        "SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM login_events)",
        [],
        |r| r.get(0),
    )?;
    if left != 0 || others != 2 {
        return Err(anyhow!("the shop database was not erased as planned"));
    }
    say!(
        "   nothing of subject D's is left in the shop database; the other customer's rows are untouched"
    );
    // As for subject B: the erased subject's ciphertext goes with the purge that follows.
    v.purge(1000, &mut |_| {})?;
    Ok(())
}

/// The demo's staff account for the console.
const DEMO_STAFF: &str = "demo.officer";

/// Step 10: requests for the console's queue (subject A's question, subject C's access
/// request), and with a store kept, a staff account whose password is written beside it (the
/// file readable by its owner only). Returns that file.
fn sites(
    v: &Vault,
    a: SubjectId,
    c: SubjectId,
    data_dir: Option<&std::path::Path>,
) -> Result<Option<PathBuf>> {
    say!("\n10. Requests wait in the staff console's queue (P31, P32)");
    v.self_request(a, "inquiry", None, Some("为什么保留我的 IP 地址？"))?;
    v.self_request(c, "access", None, None)?;
    say!("   subject A asks a question and subject C asks for a copy, each due in 30 days");
    let Some(dir) = data_dir else {
        return Ok(None);
    };
    let password = v.random_hex()?;
    v.create_staff(DEMO_STAFF, "privacy_officer", &password)?;
    let path = dir.join("staff-password.txt");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&path)?, password.as_bytes())?;
    say!("   staff account `{DEMO_STAFF}` (privacy officer) made for the console");
    Ok(Some(path))
}
