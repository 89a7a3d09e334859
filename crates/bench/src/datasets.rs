//! Issue 16's figures (`steward bench --only datasets`): an access request and a deletion of
//! one customer with 1 + 10 + 100 rows in a provider database of 10,000 customers, 100,000
//! orders and 1,000,000 sign-ins (PostgreSQL, the example `shop` dataset), end to end over
//! HTTP against a real server; and Steward's part in that database — the walk, the plan, the
//! statements — against the same work sent directly with tokio-postgres in the same run.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use serde_json::json;
use steward_core::{Actor, Collect, Source};

use crate::bench::median;
use crate::loadtest::Client;

/// What the datasets phase measured (keys in `docs/bench.md`).
#[derive(Serialize)]
pub struct Figures {
    /// Customers, orders and sign-ins in the provider database.
    pub customers: usize,
    /// Orders.
    pub orders: usize,
    /// Sign-ins.
    pub login_events: usize,
    /// Requests timed of each kind.
    pub requests: usize,
    /// Completing an access request over HTTP (the walk, the copy, the audit), median ms.
    pub access_http_median_ms: f64,
    /// Its 95th percentile, ms.
    pub access_http_p95_ms: f64,
    /// Completing a deletion over HTTP (walk, plan, the database's transaction, Steward's own
    /// erasure and certificate), median ms.
    pub erasure_http_median_ms: f64,
    /// Its 95th percentile, ms.
    pub erasure_http_p95_ms: f64,
    /// Steward's walk for one customer (three lookups in one read-only snapshot), median ms.
    pub access_walk_median_ms: f64,
    /// The same three SELECTs sent directly in one such transaction, median ms.
    pub access_raw_median_ms: f64,
    /// raw / Steward for the walk (1.0 = as fast as sending the SELECTs by hand).
    pub access_vs_raw: f64,
    /// Steward's erasure in the database for one customer (walk, plan, one transaction),
    /// median ms.
    pub erasure_steward_median_ms: f64,
    /// The same work sent directly: the SELECTs that find the rows, then the UPDATE and two
    /// DELETEs in one transaction, median ms.
    pub erasure_raw_median_ms: f64,
    /// raw / Steward for the erasure.
    pub erasure_vs_raw: f64,
    /// Targets (issue 16).
    pub targets: Targets,
}

/// Issue 16's targets, each met or not.
#[derive(Serialize)]
pub struct Targets {
    /// Access over HTTP, median ≤ 20 ms.
    pub access_http_median_ms_at_most_20: bool,
    /// Erasure over HTTP, median ≤ 30 ms.
    pub erasure_http_median_ms_at_most_30: bool,
    /// Steward's walk at least half as fast as the SELECTs sent directly.
    pub access_vs_raw_at_least_0_5: bool,
    /// Steward's erasure at least half as fast as the statements sent directly.
    pub erasure_vs_raw_at_least_0_5: bool,
}

fn p95(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64) * 0.95).ceil() as usize;
    v.get(i.saturating_sub(1).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The provider database: the example shop's tables in a schema of the bench's own, filled
/// with `customers` customers, ten orders and a hundred sign-ins each.
async fn seed(client: &tokio_postgres::Client, schema: &str, customers: usize) -> Result<()> {
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema};
             {}
             INSERT INTO customers (id, email, full_name, phone)
               SELECT i, 'c' || i || '@bench.example', 'Customer ' || i, '+86 130 ' || lpad(i::text, 8, '0')
               FROM generate_series(1, {customers}) i;
             INSERT INTO orders SELECT i, (i - 1) / 10 + 1, i || ' Bench Road', 'item ' || i, i % 1000
               FROM generate_series(1, {orders}) i;
             INSERT INTO login_events SELECT i, (i - 1) / 100 + 1, '10.' || (i % 250) || '.0.1', now()
               FROM generate_series(1, {events}) i;
             ANALYZE;",
            include_str!("../../../examples/datasets/schema-postgres.sql"),
            orders = customers * 10,
            events = customers * 100,
        ))
        .await
        .context("seeding the provider database")
}

/// The SELECTs a walk sends for customer `i`, sent directly in one read-only snapshot.
async fn raw_access(client: &tokio_postgres::Client, schema: &str, i: usize) -> Result<usize> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let email = format!("c{i}@bench.example");
    let ids: Vec<i64> = client
        .query(
            &format!("SELECT id, email, full_name, phone, created_at FROM {schema}.customers WHERE email = $1"),
            &[&email],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let orders = client
        .query(
            &format!("SELECT * FROM {schema}.orders WHERE customer_id = ANY($1)"),
            &[&ids],
        )
        .await?;
    let events = client
        .query(
            &format!("SELECT * FROM {schema}.login_events WHERE customer_id = ANY($1)"),
            &[&ids],
        )
        .await?;
    client.batch_execute("COMMIT").await?;
    Ok(ids.len() + orders.len() + events.len())
}

/// The same erasure sent directly: the rows found, then cleared and deleted in one
/// transaction.
async fn raw_erase(client: &tokio_postgres::Client, schema: &str, i: usize) -> Result<u64> {
    let found = raw_access(client, schema, i).await?;
    let id = i64::try_from(i)?;
    client.batch_execute("BEGIN").await?;
    let mut n = client
        .execute(
            &format!("UPDATE {schema}.orders SET customer_id = NULL, shipping_address = '(erased)' WHERE customer_id = $1"),
            &[&id],
        )
        .await?;
    n += client
        .execute(
            &format!("DELETE FROM {schema}.login_events WHERE customer_id = $1"),
            &[&id],
        )
        .await?;
    n += client
        .execute(
            &format!("DELETE FROM {schema}.customers WHERE id = $1"),
            &[&id],
        )
        .await?;
    client.batch_execute("COMMIT").await?;
    if found != 111 || n != 111 {
        return Err(anyhow!(
            "the raw erasure found {found} rows and changed {n}"
        ));
    }
    Ok(n)
}

/// Runs the phase on the PostgreSQL at `provider` (a schema of its own, dropped after).
pub fn measure(provider: &str, scale: f64, say: &dyn Fn(&str)) -> Result<Figures> {
    let customers = ((10_000.0 * scale) as usize).max(400);
    let requests = 30usize;
    let schema = format!("bench_datasets_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (client, connection) = rt
        .block_on(tokio_postgres::connect(provider, tokio_postgres::NoTls))
        .with_context(|| "connecting to the provider database (--provider)")?;
    rt.spawn(connection);
    say(&format!(
        "provider database: {customers} customers, {} orders, {} sign-ins...",
        customers * 10,
        customers * 100
    ));
    rt.block_on(seed(&client, &schema, customers))?;
    let result = run(&rt, &client, provider, &schema, customers, requests, say);
    let _ = rt.block_on(client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")));
    result
}

fn run(
    rt: &tokio::runtime::Runtime,
    client: &tokio_postgres::Client,
    provider: &str,
    schema: &str,
    customers: usize,
    requests: usize,
    say: &dyn Fn(&str),
) -> Result<Figures> {
    let dir = tempfile::tempdir()?;
    let (backend, _scratch) = crate::bench::Scratch::backend(None, dir.path(), "datasets")?;
    let vault = Arc::new(crate::bench::fresh_vault(&backend)?);
    let (catalogue, problems) = steward_datasets::load(
        &[(
            "shop.yml".to_string(),
            include_str!("../../../examples/datasets/shop.yml").to_string(),
        )],
        vault.policy(),
    );
    if let Some(p) = problems.first() {
        return Err(anyhow!("the example dataset does not check: {p}"));
    }
    let connection = steward_datasets::live::Connection {
        url: provider.to_string(),
        schema: Some(schema.to_string()),
    };
    let fanout = Arc::new(
        steward_datasets::run::Fanout::new(catalogue, [("shop".to_string(), connection)].into())
            .map_err(|e| anyhow!("{e}"))?,
    );
    vault.attach_datasets(Arc::clone(&fanout))?;
    let role = vault
        .policy()
        .role_id("service")
        .ok_or_else(|| anyhow!("the example policy lacks `service`"))?;
    let app = Actor {
        id: "service:bench".into(),
        role,
    };
    let (_, officer) = vault.create_api_key("bench-officer", "privacy_officer")?;
    // Subjects for customers 1..=2n (access, then erasure), spread over the table.
    let stride = (customers / (4 * requests)).max(1);
    let customer = |k: usize| 1 + k * stride;
    let mut subjects = Vec::new();
    for k in 0..2 * requests {
        let s = vault.register(&app)?;
        let email = format!("c{}@bench.example", customer(k));
        vault.collect(
            &app,
            &Collect {
                subject: s,
                feature: "account",
                values: &[("name", "Bench Subject"), ("email", &email)],
                source: Source::Subject,
            },
        )?;
        subjects.push(s.to_string());
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let state = steward_server::AppState::new(Arc::clone(&vault), None);
    let config = steward_server::Config::default();
    let options = steward_server::Options {
        retention_sweep: None,
        ..steward_server::Options::from_config(&config)
    };
    let server = steward_server::start(state, listener, options, None, std::future::pending())?;
    let addr = server.addr();
    let justification = json!({"justification": "bench"});

    // Over HTTP: open and verify (not timed), complete (timed).
    let http = |kind: &'static str,
                range: std::ops::Range<usize>|
     -> Result<(Vec<f64>, serde_json::Value)> {
        rt.block_on(async {
            let mut c = Client::connect(addr).await?;
            let mut times = Vec::new();
            let mut last = serde_json::Value::Null;
            for k in range {
                let subject = subjects.get(k).ok_or_else(|| anyhow!("no subject {k}"))?;
                let (status, opened) = c
                    .send_json(
                        "POST",
                        &format!("/v1/subjects/{subject}/requests"),
                        &officer,
                        Some(&json!({"kind": kind})),
                    )
                    .await?;
                let id = opened
                    .pointer("/id")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| anyhow!("opening: {status} {opened}"))?
                    .to_string();
                c.send_json(
                    "POST",
                    &format!("/v1/requests/{id}/verify"),
                    &officer,
                    Some(&json!({"method": "documents"})),
                )
                .await?;
                let t = Instant::now();
                let (status, done) = c
                    .send_json(
                        "POST",
                        &format!("/v1/requests/{id}/complete"),
                        &officer,
                        Some(&justification),
                    )
                    .await?;
                times.push(ms(t));
                if status != 200 || done.pointer("/request/state") != Some(&json!("completed")) {
                    return Err(anyhow!("completing a {kind} request: {status} {done}"));
                }
                last = done;
            }
            Ok((times, last))
        })
    };
    say("access requests over HTTP...");
    let (access, last) = http("access", 0..requests)?;
    let rows = last
        .pointer("/request/outcome/systems/shop/rows")
        .and_then(|v| v.as_u64());
    if rows != Some(111) {
        return Err(anyhow!("an access request found {rows:?} rows, not 111"));
    }
    say("deletions over HTTP...");
    let (erasure, last) = http("deletion", requests..2 * requests)?;
    let shop = last.pointer("/request/outcome/systems/shop");
    let count = |path: &str| shop.and_then(|s| s.pointer(path)).and_then(|v| v.as_u64());
    if count("/deleted/login_events") != Some(100) || count("/masked/orders") != Some(10) {
        return Err(anyhow!(
            "a deletion did not erase 1 + 10 + 100 rows: {shop:?}"
        ));
    }

    // Steward's part in the database, and the same work sent directly, alternately.
    say("the walk and the erasure against the same statements sent directly...");
    let ids = |i: usize| {
        let mut ids = steward_datasets::run::Identities::new();
        ids.insert(
            steward_datasets::Identity::Category("email".into()),
            vec![format!("c{i}@bench.example")],
        );
        ids
    };
    let (mut walk, mut walk_raw) = (Vec::new(), Vec::new());
    for k in 0..requests {
        let i = customer(k) + 1;
        let t = Instant::now();
        let found = fanout.access(ids(i)).map_err(|e| anyhow!("{e}"))?;
        walk.push(ms(t));
        let n: usize = found
            .systems
            .iter()
            .flat_map(|s| &s.collections)
            .map(|c| c.rows.len())
            .sum();
        let t = Instant::now();
        let raw = rt.block_on(raw_access(client, schema, i))?;
        walk_raw.push(ms(t));
        if n != 111 || raw != 111 {
            return Err(anyhow!("the walk found {n} rows, the SELECTs {raw}"));
        }
    }
    let (mut erase, mut erase_raw) = (Vec::new(), Vec::new());
    let hash = |v: &str| v.to_string();
    for k in 0..requests {
        let i = customer(2 * requests + k) + 2;
        let t = Instant::now();
        let found = fanout.access(ids(i)).map_err(|e| anyhow!("{e}"))?;
        let plans = steward_datasets::erase::plan(&fanout.catalogue, &found, &[], &hash)
            .map_err(|e| anyhow!("{e}"))?;
        for plan in plans {
            fanout.carry_out(plan).map_err(|e| anyhow!("{e}"))?;
        }
        erase.push(ms(t));
        let t = Instant::now();
        rt.block_on(raw_erase(client, schema, i + 1))?;
        erase_raw.push(ms(t));
    }
    drop(server);
    let (access_walk, access_raw) = (median(walk), median(walk_raw));
    let (erasure_steward, erasure_raw) = (median(erase), median(erase_raw));
    let (access_http, erasure_http) = (median(access.clone()), median(erasure.clone()));
    Ok(Figures {
        customers,
        orders: customers * 10,
        login_events: customers * 100,
        requests,
        access_http_median_ms: access_http,
        access_http_p95_ms: p95(access),
        erasure_http_median_ms: erasure_http,
        erasure_http_p95_ms: p95(erasure),
        access_walk_median_ms: access_walk,
        access_raw_median_ms: access_raw,
        access_vs_raw: access_raw / access_walk,
        erasure_steward_median_ms: erasure_steward,
        erasure_raw_median_ms: erasure_raw,
        erasure_vs_raw: erasure_raw / erasure_steward,
        targets: Targets {
            access_http_median_ms_at_most_20: access_http <= 20.0,
            erasure_http_median_ms_at_most_30: erasure_http <= 30.0,
            access_vs_raw_at_least_0_5: access_raw / access_walk >= 0.5,
            erasure_vs_raw_at_least_0_5: erasure_raw / erasure_steward >= 0.5,
        },
    })
}
