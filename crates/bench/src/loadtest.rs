//! `steward loadtest`: the HTTP API under load on loopback, in one process — the real server,
//! on the runtime `steward serve` uses, over a fresh store, and keep-alive client connections
//! driven by one thread of their own. Every phase is also run against the liveness endpoint,
//! which does no store work, as the baseline of the same run. Prints JSON; keys in
//! `docs/bench.md`. Never a timed assertion in tests.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow};
use clap::Args;
use serde::Serialize;
use serde_json::{Value, json};
use steward_core::{Actor, Collect, Source, SubjectId};

use crate::bench::subject_111;

#[derive(Args)]
pub struct LoadArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Requests in each throughput phase, shared among its clients.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// The server's `busy_poll_us` (microseconds its event loop polls after a request before
    /// it sleeps; 0: off); `steward serve`'s default when absent.
    #[arg(long)]
    busy_poll_us: Option<u64>,
    /// Run on PostgreSQL (`postgres://…`), in schemas of the loadtest's own that are dropped
    /// afterwards. Default: the embedded SQLite store.
    #[arg(long)]
    database: Option<String>,
}

#[derive(Serialize)]
struct Phase {
    clients: usize,
    requests: usize,
    per_s: f64,
    median_ms: f64,
    p99_ms: f64,
    /// `per_s` over the liveness baseline's with as many clients, in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_to_baseline: Option<f64>,
    /// CPU time of the server's event-loop thread over the phase's wall time (1.0: it never
    /// waited); Linux only.
    #[serde(skip_serializing_if = "Option::is_none")]
    server_thread_busy: Option<f64>,
}

/// CPU seconds (user + system) the server's threads have used, from `/proc/self/task` (Linux):
/// the threads named `steward_server::THREAD_NAME`, the event loop on the embedded store (the
/// loadtest names it so) and the workers on PostgreSQL.
fn server_cpu_secs() -> Option<f64> {
    let ticks = 100.0; // USER_HZ, 100 on every Linux architecture Steward builds for
    let mut total = None;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue; // the thread has ended
        };
        if comm.trim() != steward_server::THREAD_NAME {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // Fields after the command name, which ends with the last ')': utime and stime are
        // the 12th and 13th of them.
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
        let user: f64 = fields.next()?.parse().ok()?;
        let system: f64 = fields.next()?.parse().ok()?;
        total = Some(total.unwrap_or(0.0) + (user + system) / ticks);
    }
    total
}

#[derive(Serialize)]
struct Report {
    profile: &'static str,
    backend: &'static str,
    /// The server's `busy_poll_us`; absent on PostgreSQL, where it is not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    busy_poll_us: Option<u64>,
    baseline_liveness: Vec<Phase>,
    consent_writes: Vec<Phase>,
    visitor_consent_writes: Vec<Phase>,
    consent_reads: Vec<Phase>,
    purpose_checked_reads: Vec<Phase>,
    access_request_median_ms: f64,
    erasure_request_median_ms: f64,
    /// The cookie banner's script and stylesheet together, gzipped, in bytes.
    banner_gzip_bytes: usize,
    /// The privacy centre's data page for a signed-in subject with 111 records.
    privacy_data_page: PagePhase,
    /// Each web page's size as sent, bytes (no compression: pages are not compressed).
    page_bytes: std::collections::BTreeMap<&'static str, usize>,
    targets: Targets,
    targets_met: bool,
}

/// One page fetched over and over by one client.
#[derive(Serialize)]
struct PagePhase {
    requests: usize,
    median_ms: f64,
    p99_ms: f64,
    /// The same subject's export as JSON (`GET /v1/self/export`, the same core call), same
    /// client, same run: the baseline.
    baseline_export_median_ms: f64,
    /// `baseline_export_median_ms` over `median_ms`.
    ratio_to_baseline: f64,
}

#[derive(Serialize)]
struct Targets {
    access_request_median_ms_at_most_10: bool,
    erasure_request_median_ms_at_most_10: bool,
    consent_writes_per_s_at_least_5600: bool,
    visitor_consent_writes_per_s_at_least_10000: bool,
    privacy_data_page_median_ms_at_most_5: bool,
    every_page_at_most_61440_bytes: bool,
    banner_gzip_bytes_at_most_15360: bool,
    consent_reads_per_s_at_least_20000: bool,
    purpose_checked_reads_per_s_at_least_20000: bool,
}

/// A keep-alive HTTP/1.1 connection (hyper), driven by whichever runtime polls it.
pub(crate) struct Client {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>,
    host: String,
}

impl Client {
    pub(crate) async fn connect(addr: std::net::SocketAddr) -> Result<Client> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Client {
            sender,
            host: addr.to_string(),
        })
    }

    /// Sends one request; the status and the body's bytes.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> Result<(u16, hyper::body::Bytes)> {
        self.send_with(method, path, key, body, None).await
    }

    /// [`Client::send`] with a `Cookie` header.
    async fn send_with(
        &mut self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&Value>,
        cookie: Option<&str>,
    ) -> Result<(u16, hyper::body::Bytes)> {
        use http_body_util::{BodyExt, Full};
        use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};

        let body = match body {
            Some(b) => serde_json::to_vec(b)?,
            None => Vec::new(),
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.as_str())
            .header(CONTENT_TYPE, "application/json");
        if !key.is_empty() {
            req = req.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        if let Some(c) = cookie {
            req = req.header(hyper::header::COOKIE, c);
        }
        let req = req.body(Full::new(hyper::body::Bytes::from(body)))?;
        self.sender.ready().await?;
        let res = self.sender.send_request(req).await?;
        let status = res.status().as_u16();
        Ok((status, res.into_body().collect().await?.to_bytes()))
    }

    /// [`Client::send`], with the body read as JSON (`null` if it is not).
    pub(crate) async fn send_json(
        &mut self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let (status, bytes) = self.send(method, path, key, body).await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

/// What one request of a phase is: method, path, API key, JSON body.
type Make<'a> = dyn Fn(usize, usize) -> (&'static str, String, String, Option<Value>) + Sync + 'a;

/// One client: a keep-alive HTTP/1.1 connection sending `per_client` requests in turn.
async fn client(
    addr: std::net::SocketAddr,
    c: usize,
    per_client: usize,
    make: &Make<'_>,
) -> Result<Vec<f64>> {
    let mut conn = Client::connect(addr).await?;
    let mut lat = Vec::with_capacity(per_client);
    for i in 0..per_client {
        let (method, path, key, body) = make(c, i);
        let t = Instant::now();
        let (status, bytes) = conn.send(method, &path, &key, body.as_ref()).await?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        if status >= 400 {
            return Err(anyhow!(
                "{method} {path} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
    }
    Ok(lat)
}

/// `clients` keep-alive connections each send `per_client` requests made by `make(client, i)`.
/// All clients are driven by one thread (like wrk or oha), so the load generator takes as
/// little as it can of the two cores the server runs on.
fn phase(
    addr: std::net::SocketAddr,
    clients: usize,
    per_client: usize,
    make: &Make<'_>,
) -> Result<Phase> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cpu_before = server_cpu_secs();
    let started = Instant::now();
    let mut latencies: Vec<f64> = runtime
        .block_on(futures_util::future::try_join_all(
            (0..clients).map(|c| client(addr, c, per_client, make)),
        ))?
        .into_iter()
        .flatten()
        .collect();
    let secs = started.elapsed().as_secs_f64();
    let busy = match (cpu_before, server_cpu_secs()) {
        (Some(a), Some(b)) => Some((b - a) / secs),
        _ => None,
    };
    latencies.sort_by(f64::total_cmp);
    Ok(Phase {
        clients,
        requests: latencies.len(),
        per_s: latencies.len() as f64 / secs,
        median_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        ratio_to_baseline: None,
        server_thread_busy: busy,
    })
}

pub fn run(args: &LoadArgs) -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Dropped last: the vault below is gone before its schemas are.
    let (backend, _scratch) =
        crate::bench::Scratch::backend(args.database.as_deref(), dir.path(), "loadtest")?;
    // Every client is one loopback address: the new-visitor limit per address is off.
    let vault = Arc::new(crate::bench::fresh_vault(&backend)?.with_visitor_limit(0));
    let role = |n: &str| {
        vault
            .policy()
            .role_id(n)
            .ok_or_else(|| anyhow!("example policy lacks role `{n}`"))
    };
    let app = Actor {
        id: "service:loadtest".into(),
        role: role("service")?,
    };
    let (_, service_key) = vault.create_api_key("loadtest", "service")?;
    let (_, officer_key) = vault.create_api_key("loadtest-officer", "privacy_officer")?;
    let subjects: Vec<String> = (0..256)
        .map(|_| -> Result<String> {
            let s = vault.register(&app)?;
            let email = crate::bench::unique_value("load.", s, "@example.cn");
            vault.collect(
                &app,
                &Collect {
                    subject: s,
                    feature: "account",
                    values: &[("name", "Load Subject"), ("email", &email)],
                    source: Source::Subject,
                },
            )?;
            let t = vault.consent_target("purpose:relevant_offers")?;
            vault.consent(&app, s, t, true, false, "web")?;
            Ok(s.to_string())
        })
        .collect::<Result<_>>()?;
    let heavy: Vec<SubjectId> = (0..40)
        .map(|_| subject_111(&vault, &app))
        .collect::<Result<_>>()?;

    // The server runs as `steward serve` runs it, on a thread of its own.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let state = steward_server::AppState::new(Arc::clone(&vault), None);
    let mut config = steward_server::Config::default();
    if let Some(us) = args.busy_poll_us {
        config.busy_poll_us = us;
    }
    let options = steward_server::Options {
        retention_sweep: None,
        ..steward_server::Options::from_config(&config)
    };
    let server = steward_server::start(state, listener, options, None, std::future::pending())?;
    let addr = server.addr();

    let say = |m: &str| {
        if !args.json {
            eprintln!("{m}");
        }
    };
    // The server answers before anything is measured (and its thread is there to be timed).
    phase(addr, 1, 10, &|_, _| {
        ("GET", "/health/live".to_string(), service_key.clone(), None)
    })?;
    let subject_of = |c: usize, i: usize| {
        subjects
            .get((c * 31 + i) % subjects.len())
            .cloned()
            .unwrap_or_default()
    };
    // Visitors' devices: the first write from each makes its visitor (key, subject, audit).
    let device_of =
        |c: usize, i: usize| format!("loadtest-device-{:06}-banner", (c * 31 + i) % 2048);
    let mut writes = Vec::new();
    let mut visitor_writes = Vec::new();
    let mut reads = Vec::new();
    let mut purpose = Vec::new();
    let mut baseline = Vec::new();
    for clients in [4usize, 64] {
        let per = args.requests.div_ceil(clients).max(1);
        say(&format!("baseline (liveness), {clients} clients..."));
        baseline.push(phase(addr, clients, per, &|_, _| {
            ("GET", "/health/live".to_string(), service_key.clone(), None)
        })?);
        say(&format!("consent writes, {clients} clients..."));
        writes.push(phase(addr, clients, per, &|c, i| {
            (
                "POST",
                format!("/v1/subjects/{}/consents", subject_of(c, i)),
                service_key.clone(),
                Some(json!({"target": "purpose:surveys", "granted": i % 2 == 0, "channel": "app"})),
            )
        })?);
        say(&format!("visitor consent writes, {clients} clients..."));
        visitor_writes.push(phase(addr, clients, per, &|c, i| {
            let granted = (c + i) % 2 == 0;
            (
                "POST",
                "/v1/visitor/consents".to_string(),
                String::new(),
                Some(json!({"device": device_of(c, i), "action": "button", "receipts": false, "choices": [
                    {"purpose": "service_improvement", "granted": granted},
                    {"purpose": "personalisation", "granted": granted}]})),
            )
        })?);
        say(&format!("consent reads, {clients} clients..."));
        reads.push(phase(addr, clients, per, &|c, i| {
            (
                "GET",
                format!("/v1/subjects/{}/consents", subject_of(c, i)),
                service_key.clone(),
                None,
            )
        })?);
        say(&format!("purpose-checked reads, {clients} clients..."));
        purpose.push(phase(addr, clients, per, &|c, i| {
            let purpose = if i % 2 == 0 {
                "provide_service"
            } else {
                "relevant_offers"
            };
            (
                "POST",
                format!("/v1/subjects/{}/read", subject_of(c, i)),
                service_key.clone(),
                Some(json!({"categories": ["email"], "purpose": purpose})),
            )
        })?);
    }

    say("access and erasure requests for subjects with 111 records...");
    let requests = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut access, mut erasure) = requests.block_on(async {
        let mut client = Client::connect(addr).await?;
        let (mut access, mut erasure) = (Vec::new(), Vec::new());
        for (i, s) in heavy.iter().enumerate() {
            let kind = if i % 2 == 0 { "access" } else { "deletion" };
            let t = Instant::now();
            let (status, r) = client
                .send_json(
                    "POST",
                    &format!("/v1/subjects/{s}/requests"),
                    &officer_key,
                    Some(&json!({"kind": kind})),
                )
                .await?;
            let id = r
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("request not opened ({status}): {r}"))?
                .to_string();
            client
                .send(
                    "POST",
                    &format!("/v1/requests/{id}/verify"),
                    &officer_key,
                    Some(&json!({"method": "otp"})),
                )
                .await?;
            let (status, done) = client
                .send_json(
                    "POST",
                    &format!("/v1/requests/{id}/complete"),
                    &officer_key,
                    Some(&json!({"justification": "the subject's request"})),
                )
                .await?;
            if status != 200 {
                return Err(anyhow!("{kind} request not completed ({status}): {done}"));
            }
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if i % 2 == 0 {
                access.push(ms);
            } else {
                erasure.push(ms);
            }
        }
        Ok::<_, anyhow::Error>((access, erasure))
    })?;
    access.sort_by(f64::total_cmp);
    erasure.sort_by(f64::total_cmp);

    say("the privacy centre's pages, for a subject with 111 records...");
    let (privacy_data_page, page_bytes) = requests.block_on(pages(&vault, &app, addr))?;
    server.stop()?;
    for phases in [&mut writes, &mut visitor_writes, &mut reads, &mut purpose] {
        for (p, b) in phases.iter_mut().zip(&baseline) {
            p.ratio_to_baseline = Some(p.per_s / b.per_s);
        }
    }

    // A target holds only if it holds at both client counts.
    let worst = |v: &[Phase]| v.iter().map(|p| p.per_s).fold(f64::INFINITY, f64::min);
    let access_ms = percentile(&access, 0.5);
    let erasure_ms = percentile(&erasure, 0.5);
    let targets = Targets {
        access_request_median_ms_at_most_10: access_ms <= 10.0,
        erasure_request_median_ms_at_most_10: erasure_ms <= 10.0,
        consent_writes_per_s_at_least_5600: worst(&writes) >= 5600.0,
        privacy_data_page_median_ms_at_most_5: privacy_data_page.median_ms <= 5.0,
        every_page_at_most_61440_bytes: page_bytes.values().all(|b| *b <= 60 * 1024),
        visitor_consent_writes_per_s_at_least_10000: visitor_writes
            .iter()
            .filter(|p| p.clients == 64)
            .all(|p| p.per_s >= 10_000.0),
        banner_gzip_bytes_at_most_15360: steward_server::banner::gzipped_size() <= 15 * 1024,
        consent_reads_per_s_at_least_20000: worst(&reads) >= 20_000.0,
        purpose_checked_reads_per_s_at_least_20000: worst(&purpose) >= 20_000.0,
    };
    let met = targets.access_request_median_ms_at_most_10
        && targets.erasure_request_median_ms_at_most_10
        && targets.consent_writes_per_s_at_least_5600
        && targets.visitor_consent_writes_per_s_at_least_10000
        && targets.privacy_data_page_median_ms_at_most_5
        && targets.every_page_at_most_61440_bytes
        && targets.banner_gzip_bytes_at_most_15360
        && targets.consent_reads_per_s_at_least_20000
        && targets.purpose_checked_reads_per_s_at_least_20000;
    let (profile, backend) = crate::labels(args.database.as_deref());
    let report = Report {
        profile,
        backend,
        busy_poll_us: (!vault.remote()).then_some(config.busy_poll_us),
        baseline_liveness: baseline,
        consent_writes: writes,
        visitor_consent_writes: visitor_writes,
        consent_reads: reads,
        purpose_checked_reads: purpose,
        access_request_median_ms: access_ms,
        erasure_request_median_ms: erasure_ms,
        banner_gzip_bytes: steward_server::banner::gzipped_size(),
        privacy_data_page,
        page_bytes,
        targets,
        targets_met: met,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (name, phases) in [
            ("baseline (liveness)", &report.baseline_liveness),
            ("consent writes", &report.consent_writes),
            ("visitor consent writes", &report.visitor_consent_writes),
            ("consent reads", &report.consent_reads),
            ("purpose-checked reads", &report.purpose_checked_reads),
        ] {
            for p in phases.iter() {
                let busy = p
                    .server_thread_busy
                    .map(|b| format!("  server {:>3.0}% busy", b * 100.0))
                    .unwrap_or_default();
                let ratio = p
                    .ratio_to_baseline
                    .map(|r| format!("  {r:.2} of baseline"))
                    .unwrap_or_default();
                println!(
                    "{name:<22} {:>2} clients {:>9.0}/s  median {:>6.2} ms  p99 {:>6.2} ms{busy}{ratio}",
                    p.clients, p.per_s, p.median_ms, p.p99_ms
                );
            }
        }
        println!(
            "access request (111 records)   median {:.2} ms (target <= 10)",
            report.access_request_median_ms
        );
        println!(
            "erasure request (111 records)  median {:.2} ms (target <= 10)",
            report.erasure_request_median_ms
        );
        println!(
            "cookie banner, gzipped         {} bytes (target <= 15360)",
            report.banner_gzip_bytes
        );
        let p = &report.privacy_data_page;
        println!(
            "privacy centre data page       median {:.2} ms, p99 {:.2} ms (target <= 5); JSON export {:.2} ms ({:.2} of it)",
            p.median_ms, p.p99_ms, p.baseline_export_median_ms, p.ratio_to_baseline
        );
        for (page, bytes) in &report.page_bytes {
            println!("page {page:<25} {bytes} bytes (target <= 61440)");
        }
        if let Some(us) = report.busy_poll_us {
            println!("server busy-polls for          {us} µs after a request");
        }
        println!("backend                        {}", report.backend);
        println!("all targets met                {}", report.targets_met);
    }
    Ok(())
}

/// A subject with 111 records who can sign in: an account (name and email), 9 orders and 50
/// page views of 2 values each.
fn subject_for_pages(vault: &steward_core::Vault, app: &Actor) -> Result<(SubjectId, String)> {
    let s = vault.register(app)?;
    let email = crate::bench::unique_value("pages.", s, "@example.cn");
    vault.collect(
        app,
        &Collect {
            subject: s,
            feature: "account",
            values: &[("name", "Page Subject"), ("email", &email)],
            source: Source::Subject,
        },
    )?;
    crate::bench::orders_and_usage(vault, app, s, 9)?;
    Ok((s, email))
}

/// The privacy centre's data page fetched 200 times by one client, against the same export
/// as JSON; and each page's size (the centre's sign-in, data, consents and requests pages, the
/// console's sign-in).
async fn pages(
    vault: &steward_core::Vault,
    app: &Actor,
    addr: std::net::SocketAddr,
) -> Result<(PagePhase, std::collections::BTreeMap<&'static str, usize>)> {
    let (_, email) = subject_for_pages(vault, app)?;
    let mail = vault
        .prepare_code(&email, "loadtest")?
        .ok_or_else(|| anyhow!("no code for the page subject"))?;
    let code: String = mail
        .body
        .split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .ok_or_else(|| anyhow!("no code in the mail"))?
        .to_string();
    let session = vault.sign_in(&email, &code, "loadtest")?.token;
    let cookie = format!("steward_session={session}; steward_lang=zh-CN");
    let mut client = Client::connect(addr).await?;
    let mut fetch = async |path: &str, key: &str, cookie: Option<&str>| -> Result<(f64, usize)> {
        let t = Instant::now();
        let (status, bytes) = client.send_with("GET", path, key, None, cookie).await?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if status != 200 {
            return Err(anyhow!("GET {path} answered {status}"));
        }
        Ok((ms, bytes.len()))
    };
    let (mut page, mut export) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        page.push(fetch("/privacy/data", "", Some(&cookie)).await?.0);
        export.push(fetch("/v1/self/export", &session, None).await?.0);
    }
    page.sort_by(f64::total_cmp);
    export.sort_by(f64::total_cmp);
    let mut sizes = std::collections::BTreeMap::new();
    for (name, path) in [
        ("/privacy/data", "/privacy/data"),
        ("/privacy/consents", "/privacy/consents"),
        ("/privacy/requests", "/privacy/requests"),
    ] {
        sizes.insert(name, fetch(path, "", Some(&cookie)).await?.1);
    }
    sizes.insert("/privacy", fetch("/privacy", "", None).await?.1);
    sizes.insert("/console", fetch("/console", "", None).await?.1);
    let (median, baseline) = (percentile(&page, 0.5), percentile(&export, 0.5));
    Ok((
        PagePhase {
            requests: page.len(),
            median_ms: median,
            p99_ms: percentile(&page, 0.99),
            baseline_export_median_ms: baseline,
            ratio_to_baseline: baseline / median,
        },
        sizes,
    ))
}
