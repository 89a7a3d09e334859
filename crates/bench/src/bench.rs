//! `steward bench`: Steward's costs measured against raw baselines in the same run, printed
//! as ratios so that figures from different machines compare. Keys are documented in
//! `docs/bench.md`. Never used as a timed assertion in tests.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow};
use clap::Args;
use rusqlite::params;
use serde::Serialize;
use steward_core::clock::SystemClock;
use steward_core::evidence::verify_store;
use steward_core::{Actor, Collect, Read, Source, SubjectId, Vault};
use steward_crypto::MasterKey;
use steward_policy::{ConsentState, IdSet, Policy, Request};
use steward_store::SqliteStore;

use crate::raw::RawPg;

#[derive(Args)]
pub struct BenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Scale the workload (1 = the documented sizes; smaller for a quick look).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Run on PostgreSQL (`postgres://…`), in schemas of the bench's own that are dropped
    /// afterwards; baselines are then raw tokio-postgres. Default: the embedded SQLite store.
    #[arg(long)]
    database: Option<String>,
    /// Run one phase alone and print its figures: `incident`, or `datasets` (issue 16: the
    /// provider's database reached by requests; needs `--provider`).
    #[arg(long, value_name = "PHASE")]
    only: Option<String>,
    /// The PostgreSQL the `datasets` phase makes its provider database in (a schema of its
    /// own, dropped afterwards) [default: $STEWARD_BENCH_PROVIDER, else
    /// postgres://postgres@127.0.0.1:5432/test].
    #[arg(long, value_name = "URL")]
    provider: Option<String>,
}

/// The raw baselines, on the bench's backend: connections of their own, straight to the engine.
#[expect(clippy::large_enum_variant, reason = "one value per bench run")]
enum Raw {
    /// A second SQLite file with the same schema, and a second connection to Steward's file.
    Sqlite {
        raw: rusqlite::Connection,
        same: rusqlite::Connection,
    },
    /// A second schema with the same tables, and a second connection to Steward's schema.
    Postgres {
        raw: RawPg,
        same: RawPg,
        /// The raw schema's name, for statements on Steward's connection.
        raw_schema: String,
    },
}

/// Schemas a bench made on PostgreSQL; dropped when it ends, however it ends.
pub(crate) struct Scratch(Vec<steward_core::PgTarget>);

impl Scratch {
    /// A fresh backend for a benchmark: the embedded store in `dir`, or with `database` a data
    /// and a keyring schema of its own (named after `tag`), dropped with the `Scratch`.
    pub(crate) fn backend(
        database: Option<&str>,
        dir: &std::path::Path,
        tag: &str,
    ) -> Result<(steward_core::Backend, Scratch)> {
        let mut scratch = Scratch(Vec::new());
        let backend = match database {
            None => steward_core::Backend::Sqlite {
                dir: dir.to_path_buf(),
            },
            Some(url) => {
                let data = steward_core::PgTarget::unique(url, tag)?;
                let keyring = steward_core::PgTarget::new(url, &format!("{}_keys", data.schema))?;
                scratch.0.extend([data.clone(), keyring.clone()]);
                steward_core::Backend::Postgres { data, keyring }
            }
        };
        Ok((backend, scratch))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for t in &self.0 {
            let _ = t.drop_schema();
        }
    }
}

#[derive(Serialize)]
struct Figures {
    profile: &'static str,
    backend: &'static str,
    rounds: usize,
    decision_ns: f64,
    collect_records: usize,
    collect_records_per_s: f64,
    collect_raw_rows_per_s: f64,
    collect_ratio: f64,
    /// PostgreSQL only: raw tokio-postgres sending Steward's own statements.
    #[serde(skip_serializing_if = "Option::is_none")]
    collect_same_statements_ratio: Option<f64>,
    read_count: usize,
    read_per_s: f64,
    read_raw_lookups_per_s: f64,
    read_ratio: f64,
    /// PostgreSQL only: raw tokio-postgres sending Steward's own statements.
    #[serde(skip_serializing_if = "Option::is_none")]
    read_same_statements_ratio: Option<f64>,
    /// What one read's integrity checks cost (state tag, consent tag, record binding).
    integrity_check_ns: f64,
    /// `integrity_check_ns` as a share of one purpose-checked read (1 / `read_per_s`).
    integrity_share: f64,
    erase_1_record_ms: f64,
    erase_10000_records_ms: f64,
    erase_ratio: f64,
    purge_10000_records_ms: f64,
    export_111_records_ms: f64,
    audit_entries: u64,
    verify_entries_per_s: f64,
    verify_raw_hash_entries_per_s: f64,
    verify_ratio: f64,
    #[serde(flatten)]
    outbox: crate::outbox::OutboxFigures,
    #[serde(flatten)]
    campaign: crate::campaign::CampaignFigures,
    #[serde(flatten)]
    incident: crate::incident::IncidentFigures,
    /// Looks at the policy version in force per purpose-checked read.
    version_checks_per_read: f64,
    /// What one look costs, ns.
    version_check_ns: f64,
    /// Their share of one purpose-checked read.
    version_check_share: f64,
    targets: Targets,
    targets_met: bool,
}

#[derive(Serialize)]
struct Targets {
    /// PostgreSQL only (issue 4): against raw tokio-postgres sending the same statements.
    #[serde(skip_serializing_if = "Option::is_none")]
    collect_same_statements_ratio_at_least_0_5: Option<bool>,
    /// PostgreSQL only (issue 4): likewise for reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    read_same_statements_ratio_at_least_0_5: Option<bool>,
    decision_ns_at_most_100: bool,
    collect_ratio_at_least_0_5: bool,
    read_ratio_at_least_0_25: bool,
    integrity_share_at_most_0_1: bool,
    erase_ratio_at_most_3: bool,
    export_111_records_ms_at_most_5: bool,
    verify_ratio_at_least_0_5: bool,
    /// Issue 12: the dispatcher's rate to a local SMTP sink.
    outbox_email_per_s_at_least_500: bool,
    /// Issue 12: and to a local webhook receiver.
    outbox_webhook_per_s_at_least_2000: bool,
    /// Issue 12: a campaign to 100,000 subjects queued within 10 s (the embedded store).
    notice_enqueue_s_at_most_10: bool,
    /// Issue 12: against raw inserts of the same rows.
    notice_enqueue_ratio_at_least_0_5: bool,
    /// Issue 12: the version check's share of a purpose-checked read.
    version_check_share_at_most_0_05: bool,
    /// Issue 13: an incident's affected set over 1,000,000 subjects, against the raw indexed
    /// query for the same ids (both backends).
    affected_set_ratio_at_least_0_5: bool,
}

const BATCH: usize = 100;
const ROUNDS: usize = 5;
const USAGE_VALUES: usize = 5;

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

struct Bench {
    vault: Vault,
    app: Actor,
    officer: Actor,
}

/// A vault on `backend` under the example policy, a fresh master key and the system clock.
pub(crate) fn fresh_vault(backend: &steward_core::Backend) -> Result<Vault> {
    let master = MasterKey::generate(&steward_crypto::system_random())?;
    Ok(Vault::open_backend(
        backend,
        Policy::example()?,
        &master,
        Arc::new(SystemClock),
        None,
    )?)
}

impl Bench {
    fn open(backend: &steward_core::Backend) -> Result<Bench> {
        let vault = fresh_vault(backend)?;
        let app = actor(&vault, "service:bench", "service")?;
        let officer = actor(&vault, "staff:bench-officer", "privacy_officer")?;
        Ok(Bench {
            vault,
            app,
            officer,
        })
    }

    fn subject(&self, profile: bool) -> Result<SubjectId> {
        if profile {
            return subject_with_email(&self.vault, &self.app, "bench.");
        }
        Ok(self.vault.register(&self.app)?)
    }

    fn usage(&self, s: SubjectId, n: usize) -> Result<()> {
        let reqs: Vec<Collect<'_>> = (0..n)
            .map(|_| Collect {
                subject: s,
                feature: "usage_logging",
                values: &[
                    ("ip_address", "198.51.100.7"),
                    ("access_time", "2026-11-29T08:00:00Z"),
                ],
                source: Source::Observed,
            })
            .collect();
        for chunk in reqs.chunks(1000) {
            self.vault.collect_many(&self.app, chunk)?;
        }
        Ok(())
    }
}

/// A new subject with a name and an email address of its own (`prefix`…`@example.cn`: a
/// lookup value belongs to one subject).
pub(crate) fn subject_with_email(vault: &Vault, app: &Actor, prefix: &str) -> Result<SubjectId> {
    let s = vault.register(app)?;
    let email = unique_value(prefix, s, "@example.cn");
    vault.collect(
        app,
        &Collect {
            subject: s,
            feature: "account",
            values: &[("name", "Bench Subject"), ("email", &email)],
            source: Source::Subject,
        },
    )?;
    Ok(s)
}

/// `id` acting under the example policy's role `role`.
pub(crate) fn actor(vault: &Vault, id: &str, role: &str) -> Result<Actor> {
    Ok(Actor {
        id: id.into(),
        role: vault
            .policy()
            .role_id(role)
            .ok_or_else(|| anyhow!("example policy lacks role `{role}`"))?,
    })
}

/// A lookup value of one subject's own, about as long as a real one: `prefix`, the first 12
/// hex digits of the subject's id, `suffix` (a lookup value belongs to one subject, P25).
pub fn unique_value(prefix: &str, s: SubjectId, suffix: &str) -> String {
    let id = s.to_string().replace('-', "");
    format!("{prefix}{}{suffix}", id.get(..12).unwrap_or(&id))
}

/// The reference subject: 1 profile value (a phone number), 10 orders and 100 usage
/// values — 111 records. Shared by `bench` and `loadtest`.
pub fn subject_111(vault: &Vault, app: &Actor) -> Result<SubjectId> {
    let s = vault.register(app)?;
    let phone = unique_value("+86 ", s, "");
    vault.collect(
        app,
        &Collect {
            subject: s,
            feature: "sms",
            values: &[("phone", &phone)],
            source: Source::Subject,
        },
    )?;
    orders_and_usage(vault, app, s, 10)?;
    Ok(s)
}

/// `orders` marketplace orders and 50 page views (100 usage values) for subject `s`: what a
/// subject of the request and page benchmarks holds beside their first collection.
pub fn orders_and_usage(vault: &Vault, app: &Actor, s: SubjectId, orders: usize) -> Result<()> {
    let orders: Vec<Collect<'_>> = (0..orders)
        .map(|_| Collect {
            subject: s,
            feature: "marketplace",
            values: &[(
                "order_record",
                "order 20261129-0001: ECS 4 vCPU, 12 months, 2,400 CNY",
            )],
            source: Source::Subject,
        })
        .collect();
    vault.collect_many(app, &orders)?;
    let usage: Vec<Collect<'_>> = (0..50)
        .map(|_| Collect {
            subject: s,
            feature: "usage_logging",
            values: &[
                ("ip_address", "203.0.113.77"),
                ("access_time", "2026-11-29T08:00:00Z"),
            ],
            source: Source::Observed,
        })
        .collect();
    vault.collect_many(app, &usage)?;
    Ok(())
}

fn decision_ns(policy: &Policy) -> Result<f64> {
    let role = policy
        .role_id("service")
        .ok_or_else(|| anyhow!("no role"))?;
    let cat = |n: &str| policy.category_id(n).map(|c| c.index()).unwrap_or(0);
    let mut reqs = Vec::new();
    for (purpose, cats) in [
        ("provide_service", vec!["email", "phone"]),
        ("relevant_offers", vec!["email"]),
        ("relevant_offers", vec!["government_id"]),
        ("surveys", vec!["name", "email"]),
        ("security", vec!["ip_address", "device_id"]),
        ("personalisation", vec!["language"]),
        ("legal_compliance", vec!["name"]),
        ("face_verification", vec!["face_image"]),
    ] {
        let purpose = policy
            .purpose_id(purpose)
            .ok_or_else(|| anyhow!("no purpose"))?;
        let categories: IdSet = cats.iter().map(|c| cat(c)).collect();
        reqs.push(Request {
            role,
            purpose,
            categories,
            justified: false,
        });
    }
    let mut consent = ConsentState::default();
    if let Some(p) = policy.purpose_id("surveys") {
        consent.purposes.insert(p.index());
    }
    let n = 20_000_000usize;
    let t = Instant::now();
    let mut allowed = 0usize;
    for req in reqs.iter().cycle().take(n) {
        if black_box(policy)
            .decide(black_box(req), black_box(&consent))
            .is_ok()
        {
            allowed += 1;
        }
    }
    let ns = secs(t) * 1e9 / n as f64;
    black_box(allowed);
    Ok(ns)
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let scale = args.scale.clamp(0.01, 10.0);
    let n = |base: usize| ((base as f64 * scale) as usize).max(BATCH);
    let dir = tempfile::tempdir()?;
    match args.only.as_deref() {
        None => {}
        Some("incident") => {
            let (backend, _scratch) = Scratch::backend(
                args.database.as_deref(),
                &dir.path().join("incident"),
                "bench_incident",
            )?;
            let figures = crate::incident::measure(&backend, n(1_000_000))?;
            println!("{}", serde_json::to_string_pretty(&figures)?);
            return Ok(());
        }
        Some("datasets") => {
            let provider = args
                .provider
                .clone()
                .or_else(|| std::env::var("STEWARD_BENCH_PROVIDER").ok())
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
            let json = args.json;
            let say = |m: &str| {
                if !json {
                    eprintln!("{m}");
                }
            };
            let f = crate::datasets::measure(&provider, scale, &say)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&f)?);
            } else {
                println!(
                    "provider database (PostgreSQL): {} customers, {} orders, {} sign-ins; one customer = 1 + 10 + 100 rows; {} requests of each kind",
                    f.customers, f.orders, f.login_events, f.requests
                );
                println!(
                    "access request over HTTP   median {:>6.2} ms  p95 {:>6.2} ms   (target <= 20 ms: {})",
                    f.access_http_median_ms,
                    f.access_http_p95_ms,
                    f.targets.access_http_median_ms_at_most_20
                );
                println!(
                    "deletion over HTTP         median {:>6.2} ms  p95 {:>6.2} ms   (target <= 30 ms: {})",
                    f.erasure_http_median_ms,
                    f.erasure_http_p95_ms,
                    f.targets.erasure_http_median_ms_at_most_30
                );
                println!(
                    "walk {:.2} ms vs the SELECTs sent directly {:.2} ms: {:.2} (target >= 0.5: {})",
                    f.access_walk_median_ms,
                    f.access_raw_median_ms,
                    f.access_vs_raw,
                    f.targets.access_vs_raw_at_least_0_5
                );
                println!(
                    "erasure {:.2} ms vs the statements sent directly {:.2} ms: {:.2} (target >= 0.5: {})",
                    f.erasure_steward_median_ms,
                    f.erasure_raw_median_ms,
                    f.erasure_vs_raw,
                    f.targets.erasure_vs_raw_at_least_0_5
                );
            }
            return Ok(());
        }
        Some(_) => return Err(anyhow!("`--only` takes `incident` or `datasets`")),
    }
    let (backend, mut scratch) = Scratch::backend(
        args.database.as_deref(),
        &dir.path().join("steward"),
        "bench",
    )?;
    let b = Bench::open(&backend)?;
    let raw = match &backend {
        steward_core::Backend::Sqlite { dir: data_dir } => {
            // The raw file gets Steward's schema (the store's migrations), then a plain
            // connection of its own; Steward's file gets a second plain connection.
            let raw_path = dir.path().join("raw.db");
            drop(SqliteStore::open(&raw_path)?);
            // Steward's settings; checkpoints left to nobody, as Steward leaves them to a
            // thread of its own: the baseline's inserts never pay for one.
            let open = |path: &std::path::Path| -> Result<rusqlite::Connection> {
                let c = rusqlite::Connection::open(path)?;
                c.execute_batch(steward_store::SQLITE_SETTINGS)?;
                c.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
                Ok(c)
            };
            Raw::Sqlite {
                raw: open(&raw_path)?,
                same: open(&data_dir.join(steward_core::files::DATA))?,
            }
        }
        steward_core::Backend::Postgres { data, .. } => {
            let raw = steward_core::PgTarget::new(&data.url, &format!("{}_raw", data.schema))?;
            scratch.0.push(raw.clone());
            steward_store::PgStore::migrate(&raw)?;
            Raw::Postgres {
                raw: RawPg::connect(&raw.url, &raw.schema)?,
                same: RawPg::connect(&data.url, &data.schema)?,
                raw_schema: raw.schema.clone(),
            }
        }
    };
    let say = |m: &str| {
        if !args.json {
            eprintln!("{m}");
        }
    };

    say("policy decisions...");
    let decision_ns = decision_ns(b.vault.policy())?;

    // --- collect: usage records, BATCH collections (of USAGE_VALUES values) per transaction.
    say("collect vs raw inserts...");
    let subjects: Vec<SubjectId> = (0..n(1000))
        .map(|_| b.subject(true))
        .collect::<Result<_>>()?;
    let first_subject = *subjects.first().ok_or_else(|| anyhow!("no subjects"))?;
    let collections = n(20_000);
    let page = "/console/instances?region=cn-hangzhou&page=3";
    let values: [(&str, &str); USAGE_VALUES] = [
        ("ip_address", "203.0.113.42"),
        ("access_time", "2026-11-29T08:00:00Z"),
        ("browser_type", "Chromium 156"),
        ("language", "zh-CN"),
        ("pages_visited", page),
    ];
    let reqs: Vec<Collect<'_>> = (0..collections)
        .map(|i| Collect {
            subject: subjects
                .get(i % subjects.len())
                .copied()
                .unwrap_or(first_subject),
            feature: "usage_logging",
            values: &values,
            source: Source::Observed,
        })
        .collect();
    // Steward and the raw baseline take turns, ROUNDS times over fresh slices of the workload;
    // each figure is the median of its rounds, so a burst of background I/O moves one round,
    // not the result.
    let per_round = collections / ROUNDS;
    let (mut collect_rates, mut raw_collect_rates, mut collect_ratios) = (vec![], vec![], vec![]);
    let mut collect_same = Vec::new();
    for round in reqs.chunks(per_round.max(1)).take(ROUNDS) {
        let first_id = b.vault.store().next_record_ids(0)?;
        let t = Instant::now();
        for chunk in round.chunks(BATCH) {
            b.vault.collect_many(&b.app, chunk)?;
        }
        let steward_s = secs(t);
        // The raw baseline: the same schema, pragmas and batch size, the same rows in
        // plaintext, no encryption, no checks, no audit.
        let t = Instant::now();
        raw_collect(&raw, round, first_id)?;
        let raw_s = secs(t);
        if let Some(same_s) = same_statements_collect(&raw, round, first_id, last_entry_len(&b)?)? {
            collect_same.push(same_s / steward_s);
        }
        let n = (round.len() * USAGE_VALUES) as f64;
        collect_rates.push(n / steward_s);
        raw_collect_rates.push(n / raw_s);
        collect_ratios.push(raw_s / steward_s);
    }
    let records = per_round * ROUNDS * USAGE_VALUES;

    // --- read: email for an essential purpose and for a consented one, alternately.
    say("purpose-checked reads vs raw lookups...");
    let offers = b.vault.consent_target("purpose:relevant_offers")?;
    for s in &subjects {
        b.vault.consent(&b.app, *s, offers, true, false, "web")?;
    }
    let reads = n(20_000);
    let cats: [&str; 1] = ["email"];
    let read_reqs: Vec<Read<'_>> = (0..reads)
        .map(|i| Read {
            subject: subjects
                .get((i * 7919) % subjects.len())
                .copied()
                .unwrap_or(first_subject),
            categories: &cats,
            purpose: if i % 2 == 0 {
                "provide_service"
            } else {
                "relevant_offers"
            },
            justification: None,
        })
        .collect();
    // What the read path's integrity checks cost on their own (state and consent tags, the
    // record binding), against the whole read measured below.
    let integrity_ns = median(
        (0..ROUNDS)
            .map(|_| b.vault.integrity_check_ns(first_subject, 20_000))
            .collect::<Result<_, _>>()?,
    );
    // The raw baseline: primary-key lookups of the very rows Steward read, in the same store,
    // through a second connection with the same settings (see `raw_lookups`).
    let (mut read_rates, mut raw_read_rates, mut read_ratios) = (vec![], vec![], vec![]);
    let mut read_same = Vec::new();
    let (lookups_before, mut reads_done) =
        (steward_core::versions::lookups_on_this_thread(), 0usize);
    for round in read_reqs.chunks((reads / ROUNDS).max(1)).take(ROUNDS) {
        let t = Instant::now();
        let mut read_ids = Vec::with_capacity(round.len());
        for chunk in round.chunks(BATCH) {
            for (req, r) in chunk.iter().zip(b.vault.read_many(&b.app, chunk)) {
                read_ids.extend(r?.iter().map(|v| (req.subject.0, v.record)));
            }
        }
        let steward_s = secs(t);
        reads_done += round.len();
        if read_ids.len() != round.len() {
            return Err(anyhow!(
                "bench reads returned {} values, expected {}",
                read_ids.len(),
                round.len()
            ));
        }
        let t = Instant::now();
        raw_lookups(&raw, &read_ids)?;
        let raw_s = secs(t);
        if let Some(same_s) = same_statements_read(&raw, round, last_entry_len(&b)?)? {
            read_same.push(same_s / steward_s);
        }
        let n = round.len() as f64;
        read_rates.push(n / steward_s);
        raw_read_rates.push(n / raw_s);
        read_ratios.push(raw_s / steward_s);
    }
    drop(raw);
    let version_checks_per_read = (steward_core::versions::lookups_on_this_thread()
        - lookups_before) as f64
        / reads_done.max(1) as f64;
    let version_check_ns = median(
        (0..ROUNDS)
            .map(|_| b.vault.version_check_ns(200_000))
            .collect(),
    );

    // --- erasure: its cost must not grow with the subject's data.
    say("erasure of 1 and of 10,000 records...");
    let mut small = Vec::new();
    let mut large = Vec::new();
    let mut purge = Vec::new();
    for _ in 0..5 {
        let s1 = b.subject(false)?;
        b.usage(s1, 1)?;
        let s2 = b.subject(false)?;
        b.usage(s2, 5_000)?; // 2 values each: 10,000 records
        let t = Instant::now();
        b.vault.erase(&b.officer, s1, "bench")?;
        small.push(secs(t) * 1e3);
        let t = Instant::now();
        b.vault.erase(&b.officer, s2, "bench")?;
        large.push(secs(t) * 1e3);
        let t = Instant::now();
        b.vault.purge(1000, &mut |_| {})?;
        purge.push(secs(t) * 1e3);
    }

    // --- export of 1 profile + 10 orders + 100 usage records.
    say("export of 111 records...");
    let mut exports = Vec::new();
    for _ in 0..20 {
        let s = subject_111(&b.vault, &b.app)?;
        let t = Instant::now();
        let e = b.vault.export(&b.officer, s, Some("the subject asked"))?;
        exports.push(secs(t) * 1e3);
        if e.records.len() != 111 {
            return Err(anyhow!(
                "export returned {} records, expected 111",
                e.records.len()
            ));
        }
    }

    // --- audit verification vs hashing the same bytes.
    say("audit verification vs raw hashing...");
    b.vault.checkpoint()?;
    let store = b.vault.store();
    // Verify the log at rest, as an auditor would: committed pages moved into the main file.
    store.settle()?;
    let mut bytes: Vec<Vec<u8>> = Vec::new();
    store.audit_scan(1, &mut |e| {
        bytes.push(e.bytes.to_vec());
        true
    })?;
    let (mut verify_rates, mut hash_rates, mut verify_ratios) = (vec![], vec![], vec![]);
    // One pass unmeasured, as the raw hashing reads bytes already in memory: the first read of
    // the file after the checkpoint faults its pages in (on the VMs measured, the first one or
    // two passes ran 2–4 times slower than the rest).
    verify_store(store, b.vault.public_key(), Vec::new(), &mut |_| {})?
        .map_err(|f| anyhow!("bench log failed verification: {f}"))?;
    let mut entries = 0;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let report = verify_store(store, b.vault.public_key(), Vec::new(), &mut |_| {})?
            .map_err(|f| anyhow!("bench log failed verification: {f}"))?;
        let verify_s = secs(t);
        entries = report.entries;
        let t = Instant::now();
        for b in &bytes {
            black_box(ring::digest::digest(&ring::digest::SHA256, black_box(b)));
        }
        let hash_s = secs(t);
        verify_rates.push(entries as f64 / verify_s);
        hash_rates.push(bytes.len() as f64 / hash_s);
        verify_ratios.push(hash_s / verify_s);
    }

    // --- the outbox: emails and webhook calls delivered to local receivers.
    say("outbox delivery to a local SMTP sink and HTTP receiver...");
    let (outbox_backend, _outbox_scratch) = Scratch::backend(
        args.database.as_deref(),
        &dir.path().join("outbox"),
        "bench_outbox",
    )?;
    let outbox = crate::outbox::measure(&outbox_backend, n(1_000), n(4_000))?;

    // --- a notice campaign queued, against raw inserts of the same outbox rows.
    say("a notice campaign queued vs raw inserts of the same rows...");
    let (notice_backend, mut notice_scratch) = Scratch::backend(
        args.database.as_deref(),
        &dir.path().join("notice"),
        "bench_notice",
    )?;
    let campaign = match &notice_backend {
        steward_core::Backend::Sqlite { .. } => {
            let raw_path = dir.path().join("notice-raw.db");
            drop(SqliteStore::open(&raw_path)?);
            let mut c = rusqlite::Connection::open(&raw_path)?;
            c.execute_batch(steward_store::SQLITE_SETTINGS)?;
            crate::campaign::measure(&notice_backend, n(100_000), &mut |rows| {
                let tx = c.transaction()?;
                {
                    let mut st = tx.prepare_cached(
                        "INSERT INTO outbox (id, channel, destination, event, payload, state, attempts,
                         next_ms, lease_ms, created_ms, updated_ms, last_error)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    )?;
                    for m in rows {
                        st.execute(rusqlite::params![
                            m.id,
                            m.channel,
                            m.destination,
                            m.event,
                            m.payload,
                            m.state.as_str(),
                            m.attempts,
                            m.next_ms,
                            m.lease_ms,
                            m.created_ms,
                            m.updated_ms,
                            m.last_error
                        ])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })?
        }
        steward_core::Backend::Postgres { data, .. } => {
            let raw = steward_core::PgTarget::new(&data.url, &format!("{}_raw", data.schema))?;
            notice_scratch.0.push(raw.clone());
            steward_store::PgStore::migrate(&raw)?;
            let pg = RawPg::connect(&raw.url, &raw.schema)?;
            // A tenth of the subjects: setting up 100,000 one by one over the network would
            // take the bench minutes. The figure is a ratio here, not a target.
            crate::campaign::measure(&notice_backend, n(10_000), &mut |rows| {
                let col = |f: fn(&steward_store::OutboxRow) -> String| -> Vec<String> {
                    rows.iter().map(f).collect()
                };
                let (id, channel, destination, event, payload, state, error) = (
                    col(|m| m.id.clone()),
                    col(|m| m.channel.clone()),
                    col(|m| m.destination.clone()),
                    col(|m| m.event.clone()),
                    col(|m| m.payload.clone()),
                    col(|m| m.state.as_str().to_string()),
                    col(|m| m.last_error.clone()),
                );
                let attempts: Vec<i32> = rows
                    .iter()
                    .map(|m| i32::try_from(m.attempts).unwrap_or(0))
                    .collect();
                let times = |f: fn(&steward_store::OutboxRow) -> i64| -> Vec<i64> {
                    rows.iter().map(f).collect()
                };
                let (next, lease, created, updated) = (
                    times(|m| m.next_ms),
                    times(|m| m.lease_ms),
                    times(|m| m.created_ms),
                    times(|m| m.updated_ms),
                );
                pg.run(async |c| {
                    c.execute(
                        "INSERT INTO outbox (id, channel, destination, event, payload, state, attempts,
                         next_ms, lease_ms, created_ms, updated_ms, last_error)
                         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::int[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[],
                         $12::text[])",
                        &[&id, &channel, &destination, &event, &payload, &state, &attempts, &next, &lease, &created, &updated, &error],
                    )
                    .await
                    .map(|_| ())
                })
            })?
        }
    };
    drop(notice_scratch);

    // --- an incident's affected set over a million subjects, against the raw query.
    say("an incident's affected set over 1,000,000 subjects vs the raw indexed query...");
    let (incident_backend, _incident_scratch) = Scratch::backend(
        args.database.as_deref(),
        &dir.path().join("incident"),
        "bench_incident",
    )?;
    let incident = crate::incident::measure(&incident_backend, n(1_000_000))?;

    let erase_1 = median(small);
    let erase_10k = median(large);
    let export_ms = median(exports);
    let (collect_ratio, read_ratio, verify_ratio) = (
        median(collect_ratios),
        median(read_ratios),
        median(verify_ratios),
    );
    let read_per_s = median(read_rates);
    let integrity_share = integrity_ns * read_per_s / 1e9;
    let (profile, backend) = crate::labels(args.database.as_deref());
    let f = Figures {
        profile,
        backend,
        rounds: ROUNDS,
        decision_ns,
        collect_records: records,
        collect_records_per_s: median(collect_rates),
        collect_raw_rows_per_s: median(raw_collect_rates),
        collect_ratio,
        collect_same_statements_ratio: (!collect_same.is_empty())
            .then(|| median(collect_same.clone())),
        read_count: reads,
        read_per_s,
        read_raw_lookups_per_s: median(raw_read_rates),
        read_ratio,
        read_same_statements_ratio: (!read_same.is_empty()).then(|| median(read_same.clone())),
        integrity_check_ns: integrity_ns,
        integrity_share,
        erase_1_record_ms: erase_1,
        erase_10000_records_ms: erase_10k,
        erase_ratio: erase_10k / erase_1,
        purge_10000_records_ms: median(purge),
        export_111_records_ms: export_ms,
        audit_entries: entries,
        verify_entries_per_s: median(verify_rates),
        verify_raw_hash_entries_per_s: median(hash_rates),
        verify_ratio,
        outbox,
        campaign,
        incident,
        version_checks_per_read,
        version_check_ns,
        version_check_share: version_checks_per_read * version_check_ns * read_per_s / 1e9,
        targets: Targets {
            collect_same_statements_ratio_at_least_0_5: collect_same
                .first()
                .map(|_| median(collect_same.clone()) >= 0.5),
            read_same_statements_ratio_at_least_0_5: read_same
                .first()
                .map(|_| median(read_same.clone()) >= 0.5),
            decision_ns_at_most_100: decision_ns <= 100.0,
            collect_ratio_at_least_0_5: collect_ratio >= 0.5,
            read_ratio_at_least_0_25: read_ratio >= 0.25,
            integrity_share_at_most_0_1: integrity_share <= 0.1,
            erase_ratio_at_most_3: erase_10k / erase_1 <= 3.0,
            export_111_records_ms_at_most_5: export_ms <= 5.0,
            verify_ratio_at_least_0_5: verify_ratio >= 0.5,
            outbox_email_per_s_at_least_500: outbox.outbox_email_per_s >= 500.0,
            outbox_webhook_per_s_at_least_2000: outbox.outbox_webhook_per_s >= 2_000.0,
            notice_enqueue_s_at_most_10: campaign.notice_enqueue_s
                * (100_000.0 / campaign.notice_subjects.max(1) as f64)
                <= 10.0,
            notice_enqueue_ratio_at_least_0_5: campaign.notice_enqueue_ratio >= 0.5,
            affected_set_ratio_at_least_0_5: incident.affected_set_ratio >= 0.5,
            version_check_share_at_most_0_05: version_checks_per_read
                * version_check_ns
                * read_per_s
                / 1e9
                <= 0.05,
        },
        targets_met: false,
    };
    let t = &f.targets;
    // The embedded store's targets (issue 2), or PostgreSQL's (issue 4: collect and read
    // against the same statements sent raw, and erasure still constant). The other figures
    // are reported on PostgreSQL, not targets there.
    let met = t.decision_ns_at_most_100
        && t.erase_ratio_at_most_3
        && t.integrity_share_at_most_0_1
        && t.outbox_email_per_s_at_least_500
        && t.outbox_webhook_per_s_at_least_2000
        && t.version_check_share_at_most_0_05
        && t.affected_set_ratio_at_least_0_5
        && match (
            t.collect_same_statements_ratio_at_least_0_5,
            t.read_same_statements_ratio_at_least_0_5,
        ) {
            (Some(collect), Some(read)) => collect && read,
            _ => {
                t.collect_ratio_at_least_0_5
                    && t.notice_enqueue_s_at_most_10
                    && t.notice_enqueue_ratio_at_least_0_5
                    && t.read_ratio_at_least_0_25
                    && t.export_111_records_ms_at_most_5
                    && t.verify_ratio_at_least_0_5
            }
        };
    let f = Figures {
        targets_met: met,
        ..f
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&f)?);
    } else {
        let pg = f.backend == "postgres";
        println!("profile                     {} on {}", f.profile, f.backend);
        println!(
            "policy decision             {:>10.1} ns       (target <= 100)",
            f.decision_ns
        );
        println!(
            "collect                     {:>10.0} rec/s    raw {:>10.0} rows/s   ratio {:.2} ({})",
            f.collect_records_per_s,
            f.collect_raw_rows_per_s,
            f.collect_ratio,
            if pg {
                "not a target on PostgreSQL"
            } else {
                ">= 0.5"
            }
        );
        println!(
            "integrity checks per read   {:>10.0} ns       share of a read {:.3} (target <= 0.1)",
            f.integrity_check_ns, f.integrity_share
        );
        println!(
            "purpose-checked read        {:>10.0} reads/s  raw {:>10.0} lookups/s ratio {:.2} ({})",
            f.read_per_s,
            f.read_raw_lookups_per_s,
            f.read_ratio,
            if pg {
                "not a target on PostgreSQL"
            } else {
                ">= 0.25"
            }
        );
        if let (Some(c), Some(r)) = (
            f.collect_same_statements_ratio,
            f.read_same_statements_ratio,
        ) {
            println!(
                "vs the same statements sent raw (tokio-postgres): collect ratio {c:.2} (>= 0.5), read ratio {r:.2} (>= 0.5)"
            );
        }
        println!(
            "erase 1 / 10,000 records    {:>10.2} ms / {:.2} ms   ratio {:.2} (<= 3); purge of 10,000: {:.1} ms",
            f.erase_1_record_ms, f.erase_10000_records_ms, f.erase_ratio, f.purge_10000_records_ms
        );
        println!(
            "export of 111 records       {:>10.2} ms       ({})",
            f.export_111_records_ms,
            if pg {
                "not a target on PostgreSQL"
            } else {
                "target <= 5"
            }
        );
        println!(
            "audit verify                {:>10.0} entries/s  raw hash {:>10.0}/s ratio {:.2} ({})",
            f.verify_entries_per_s,
            f.verify_raw_hash_entries_per_s,
            f.verify_ratio,
            if pg {
                "not a target on PostgreSQL"
            } else {
                ">= 0.5"
            }
        );
        let o = &f.outbox;
        println!(
            "outbox: {} emails           {:>10.0} /s       raw send {:>10.0}/s ratio {:.2} (target >= 500/s)",
            o.outbox_emails, o.outbox_email_per_s, o.outbox_email_raw_per_s, o.outbox_email_ratio
        );
        println!(
            "outbox: {} webhook calls    {:>10.0} /s       raw post {:>10.0}/s ratio {:.2} (target >= 2,000/s)",
            o.outbox_webhooks,
            o.outbox_webhook_per_s,
            o.outbox_webhook_raw_per_s,
            o.outbox_webhook_ratio
        );
        let c = &f.campaign;
        println!(
            "notice campaign: {} subjects {:>7.2} s        raw insert {:.2} s ratio {:.2} ({})",
            c.notice_subjects,
            c.notice_enqueue_s,
            c.notice_raw_insert_s,
            c.notice_enqueue_ratio,
            if pg {
                "not a target on PostgreSQL"
            } else {
                "target <= 10 s for 100,000, ratio >= 0.5"
            }
        );
        let i = &f.incident;
        println!(
            "incident affected set: {} subjects {:>7.0} ms   raw query {:.0} ms ratio {:.2} (target >= 0.5)",
            i.affected_subjects, i.affected_set_ms, i.affected_raw_query_ms, i.affected_set_ratio
        );
        println!(
            "version check               {:>10.1} ns × {:.1} per read   share of a read {:.3} (target <= 0.05)",
            f.version_check_ns, f.version_checks_per_read, f.version_check_share
        );
        println!("all targets met             {}", f.targets_met);
    }
    Ok(())
}

/// The same rows Steward stored, inserted in plaintext with no checks, no encryption and no
/// audit, a transaction per batch of `BATCH` collections. On SQLite one prepared insert per
/// row (SQLite's fastest path); on PostgreSQL the very `UNNEST` statement Steward sends, with
/// the transaction's statements pipelined.
fn raw_collect(raw: &Raw, round: &[Collect<'_>], first_id: i64) -> Result<()> {
    match raw {
        Raw::Sqlite { raw: c, .. } => (|| -> rusqlite::Result<()> {
            let mut id = first_id;
            for chunk in round.chunks(BATCH) {
                // The same collection time Steward gives its rows, batch by batch.
                let now = steward_core::clock::Clock::now_ms(&SystemClock);
                let tx = c.unchecked_transaction()?;
                {
                    let mut st = tx.prepare_cached(
                        "INSERT INTO records (id, subject, category, feature, source, collected_ms, sealed)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?;
                    for r in chunk {
                        for (cat, v) in r.values {
                            st.execute(params![id, &r.subject.0[..], cat, r.feature, "observed", now, v.as_bytes()])?;
                            id += 1;
                        }
                    }
                }
                tx.commit()?;
            }
            Ok(())
        })()?,
        Raw::Postgres { raw, .. } => raw.run(async |c| {
            let st = c
                .prepare(
                    "INSERT INTO records (id, subject, category, feature, source, collected_ms, sealed)
                     SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bytea[])",
                )
                .await?;
            let mut id = first_id;
            for chunk in round.chunks(BATCH) {
                let now = steward_core::clock::Clock::now_ms(&SystemClock);
                let (mut ids, mut subjects, mut cats, mut features, mut sources, mut at, mut values) =
                    (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
                for r in chunk {
                    for (cat, v) in r.values {
                        ids.push(id);
                        subjects.push(&r.subject.0[..]);
                        cats.push(*cat);
                        features.push(r.feature);
                        sources.push("observed");
                        at.push(now);
                        values.push(v.as_bytes());
                        id += 1;
                    }
                }
                let (begin, insert, commit) = futures_util::future::join3(
                    c.batch_execute("BEGIN"),
                    c.execute(&st, &[&ids, &subjects, &cats, &features, &sources, &at, &values]),
                    c.batch_execute("COMMIT"),
                )
                .await;
                begin?;
                insert?;
                commit?;
            }
            Ok(())
        })?,
    }
    Ok(())
}

/// Primary-key lookups of `rows` (subject, record id) in Steward's own store. On SQLite one
/// statement at a time (no round trips to save); on PostgreSQL `BATCH` lookups in one
/// statement, as Steward fetches a batch of reads of one shape.
fn raw_lookups(raw: &Raw, rows: &[(steward_store::SubjectKey, i64)]) -> Result<()> {
    match raw {
        Raw::Sqlite { same: c, .. } => (|| -> rusqlite::Result<()> {
            let mut st = c.prepare_cached(
                "SELECT sealed FROM records WHERE subject = ?1 AND category = ?2 AND id = ?3",
            )?;
            for (subject, id) in rows {
                let v: Vec<u8> = st.query_row(params![&subject[..], "email", id], |r| r.get(0))?;
                black_box(v);
            }
            Ok(())
        })()?,
        Raw::Postgres { same, .. } => same.run(async |c| {
            let st = c
                .prepare(
                    "SELECT r.sealed FROM UNNEST($1::bytea[], $2::bigint[]) AS k(subject, id)
                     JOIN records r ON r.subject = k.subject AND r.category = 'email' AND r.id = k.id",
                )
                .await?;
            for chunk in rows.chunks(BATCH) {
                let subjects: Vec<&[u8]> = chunk.iter().map(|(s, _)| &s[..]).collect();
                let ids: Vec<i64> = chunk.iter().map(|(_, id)| *id).collect();
                for row in c.query(&st, &[&subjects, &ids]).await? {
                    black_box(row.get::<_, Vec<u8>>(0));
                }
            }
            Ok(())
        })?,
    }
    Ok(())
}

/// The size of the newest audit entry: the baselines below write entries as large.
fn last_entry_len(b: &Bench) -> Result<usize> {
    let store = b.vault.store();
    let (seq, _) = store.audit_head()?;
    let mut len = 0;
    store.audit_scan(seq, &mut |e| {
        len = e.bytes.len();
        false
    })?;
    Ok(len)
}

/// PostgreSQL: raw tokio-postgres sending, per batch of `BATCH`, the statements Steward sends —
/// `BEGIN`, the chain's lock and head, then what `batch` sends with the audit rows and
/// `COMMIT` — in two round trips, with none of Steward's own work. Seconds, or `None` on
/// SQLite.
fn same_statements<T>(
    raw: &Raw,
    round: &[T],
    mut batch: impl AsyncFnMut(
        &tokio_postgres::Client,
        &SameStatements,
        &[T],
        &mut i64,
    ) -> Result<(), tokio_postgres::Error>,
) -> Result<Option<f64>> {
    let Raw::Postgres {
        same, raw_schema, ..
    } = raw
    else {
        return Ok(None);
    };
    let t = Instant::now();
    same.run(async |c| {
        let statements = SameStatements::prepare(c, raw_schema).await?;
        let mut seq = 0i64;
        for chunk in round.chunks(BATCH) {
            seq = seq.max(statements.begin(c).await?);
            batch(c, &statements, chunk, &mut seq).await?;
        }
        Ok(())
    })?;
    Ok(Some(secs(t)))
}

/// A batch of collections: the subjects' states, the rows (values as long as Steward's
/// ciphertext) and one audit row per collection (`entry_len` bytes each).
fn same_statements_collect(
    raw: &Raw,
    round: &[Collect<'_>],
    first_id: i64,
    entry_len: usize,
) -> Result<Option<f64>> {
    // Ids of their own, far above any Steward or the other baseline hands out.
    let mut next_id = (1i64 << 40) + first_id;
    same_statements(raw, round, async |c, statements, chunk, seq| {
        let subjects: Vec<&[u8]> = chunk.iter().map(|r| &r.subject.0[..]).collect();
        let (mut ids, mut subs, mut cats, mut features, mut sources, mut at, mut values) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for r in chunk {
            for (cat, v) in r.values {
                ids.push(next_id);
                next_id += 1;
                subs.push(&r.subject.0[..]);
                cats.push(*cat);
                features.push(r.feature);
                sources.push("observed");
                at.push(1i64);
                // Nonce and tag add 28 bytes to Steward's values.
                let mut sealed = v.as_bytes().to_vec();
                sealed.extend_from_slice(&[0u8; 28]);
                values.push(sealed);
            }
        }
        let (s, r, a, done) = futures_util::future::join4(
            c.query(&statements.states, &[&subjects]),
            c.execute(
                &statements.records,
                &[&ids, &subs, &cats, &features, &sources, &at, &values],
            ),
            statements.audit(c, seq, chunk.len(), entry_len),
            c.batch_execute("COMMIT"),
        )
        .await;
        s?;
        r?;
        a?;
        done
    })
}

/// A batch of reads: one fetch per shape of read (subject state, consent, values — the same
/// SQL) and one audit row per read.
fn same_statements_read(raw: &Raw, round: &[Read<'_>], entry_len: usize) -> Result<Option<f64>> {
    same_statements(raw, round, async |c, statements, chunk, seq| {
        let essential: Vec<&[u8]> = chunk
            .iter()
            .filter(|r| r.purpose == "provide_service")
            .map(|r| &r.subject.0[..])
            .collect();
        let consented: Vec<&[u8]> = chunk
            .iter()
            .filter(|r| r.purpose != "provide_service")
            .map(|r| &r.subject.0[..])
            .collect();
        let (none, offers) = ("", "purpose:relevant_offers");
        let cats = vec!["email"];
        let (p1, p2): (
            [&(dyn tokio_postgres::types::ToSql + Sync); 3],
            [&(dyn tokio_postgres::types::ToSql + Sync); 3],
        ) = ([&essential, &none, &cats], [&consented, &offers, &cats]);
        let fetches = futures_util::future::try_join(
            c.query(&statements.fetch, &p1),
            c.query(&statements.fetch, &p2),
        );
        let (fetched, a, done) = futures_util::future::join3(
            fetches,
            statements.audit(c, seq, chunk.len(), entry_len),
            c.batch_execute("COMMIT"),
        )
        .await;
        black_box(fetched?);
        a?;
        done
    })
}

/// The statements of [`same_statements`] baselines, prepared once.
struct SameStatements {
    lock: tokio_postgres::Statement,
    head: tokio_postgres::Statement,
    states: tokio_postgres::Statement,
    records: tokio_postgres::Statement,
    fetch: tokio_postgres::Statement,
    audit: tokio_postgres::Statement,
}

impl SameStatements {
    async fn prepare(
        c: &tokio_postgres::Client,
        raw: &str,
    ) -> Result<SameStatements, tokio_postgres::Error> {
        Ok(SameStatements {
            lock: c.prepare("SELECT pg_advisory_xact_lock(hashtext($1))").await?,
            head: c
                .prepare(&format!("SELECT seq, hash FROM {raw}.audit ORDER BY seq DESC LIMIT 1"))
                .await?,
            states: c.prepare(steward_store::STATES_MANY).await?,
            records: c
                .prepare(&format!(
                    "INSERT INTO {raw}.records (id, subject, category, feature, source, collected_ms, sealed)
                     SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bytea[])"
                ))
                .await?,
            fetch: c.prepare(steward_store::RECORDS_MANY).await?,
            audit: c
                .prepare(&format!(
                    "INSERT INTO {raw}.audit (seq, entry, hash)
                     SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::bytea[])"
                ))
                .await?,
        })
    }

    /// BEGIN, the chain's lock and its head, pipelined; the head's seq.
    async fn begin(&self, c: &tokio_postgres::Client) -> Result<i64, tokio_postgres::Error> {
        let (begin, lock, head) = futures_util::future::join3(
            c.batch_execute("BEGIN"),
            c.query(&self.lock, &[&"bench.raw"]),
            c.query(&self.head, &[]),
        )
        .await;
        begin?;
        lock?;
        Ok(head?.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0))
    }

    /// Appends `n` audit rows of `len` bytes after `seq`.
    async fn audit(
        &self,
        c: &tokio_postgres::Client,
        seq: &mut i64,
        n: usize,
        len: usize,
    ) -> Result<u64, tokio_postgres::Error> {
        let seqs: Vec<i64> = (1..=n as i64).map(|i| *seq + i).collect();
        *seq += n as i64;
        let entries: Vec<Vec<u8>> = seqs.iter().map(|_| vec![0x5a; len]).collect();
        let hashes: Vec<Vec<u8>> = seqs.iter().map(|_| vec![0xa5; 32]).collect();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&seqs, &entries, &hashes];
        c.execute(&self.audit, &params).await
    }
}
