//! Queuing a notice campaign (issue 12, P30), against raw inserts of the same outbox rows in
//! the same run. Steward's side: publish a material version, then take the campaign's batches
//! until it is done — each batch a page of subjects holding an email address (in key order
//! after the cursor), their states, one `policy.notice` message per active one, the cursor and
//! an audit entry, committed together. The raw side inserts as many outbox rows of the same
//! size into a second store with the same schema, a transaction per batch, nothing else.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow};
use serde::Serialize;
use steward_core::clock::SystemClock;
use steward_core::{Collect, Source};

/// What the campaign phase measured.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct CampaignFigures {
    pub notice_subjects: usize,
    pub notice_enqueue_s: f64,
    pub notice_raw_insert_s: f64,
    pub notice_enqueue_ratio: f64,
}

/// The example policy with one purpose more, granted to the service role: a material change.
fn next_version() -> String {
    let anchor = "reads = [\"name\", \"email\", \"phone\", \"government_id\", \"ip_address\", \"access_time\", \"user_identifier\"]\n";
    steward_policy::EXAMPLE_POLICY
        .replacen(
            anchor,
            &format!(
                "{anchor}\n[purposes.bench_added]\ntaxonomy = \"improve.system\"\ndescription = \"A purpose added for the benchmark\"\nbasis = \"contract\"\nreads = [\"name\"]\n"
            ),
            1,
        )
        .replacen("version = \"2026.1\"", "version = \"2026.bench\"", 1)
}

/// Queues a campaign to `subjects` subjects on a fresh store of `backend`, and inserts as many
/// rows raw through `raw_insert` (rows of `batch` at a time).
pub(crate) fn measure(
    backend: &steward_core::Backend,
    subjects: usize,
    raw_insert: &mut dyn FnMut(&[steward_store::OutboxRow]) -> Result<()>,
) -> Result<CampaignFigures> {
    let vault = Arc::new(crate::bench::fresh_vault(backend)?);
    let app = crate::bench::actor(&vault, "service:bench", "service")?;
    let ids: Vec<_> = (0..subjects)
        .map(|_| vault.register(&app))
        .collect::<Result<_, _>>()?;
    let emails: Vec<String> = ids
        .iter()
        .map(|s| crate::bench::unique_value("notice.", *s, "@example.cn"))
        .collect();
    let values: Vec<[(&str, &str); 2]> = emails
        .iter()
        .map(|e| [("name", "Bench Subject"), ("email", e.as_str())])
        .collect();
    let collects: Vec<Collect<'_>> = ids
        .iter()
        .zip(&values)
        .map(|(s, v)| Collect {
            subject: *s,
            feature: "account",
            values: v,
            source: Source::Subject,
        })
        .collect();
    for chunk in collects.chunks(1000) {
        vault.collect_many(&app, chunk)?;
    }
    // In force 90 days from now: after the notice period.
    let later = steward_core::clock::Clock::now_ms(&SystemClock) + 90 * steward_core::DAY_MS;
    let day = steward_core::clock::rfc3339(later);
    let effective = steward_core::versions::parse_day(day.get(..10).unwrap_or(&day))?;
    let version = vault.publish_policy(None, &next_version(), Some(effective))?;
    if !version.material {
        return Err(anyhow!("the benchmark's version is not material"));
    }
    let batch = steward_core::versions::CAMPAIGN_BATCH;
    let t = Instant::now();
    let queued = loop {
        match vault.campaign_step(&version.version, batch)? {
            Some(c) if c.done => break c.enqueued,
            Some(_) => {}
            None => return Err(anyhow!("the version has no campaign")),
        }
    };
    let enqueue_s = t.elapsed().as_secs_f64();
    if queued != subjects as u64 {
        return Err(anyhow!("{queued} notices queued for {subjects} subjects"));
    }
    // The same rows, as the outbox holds them, inserted raw.
    let rows = vault
        .store()
        .outbox(Some(steward_store::OutboxState::Pending), usize::MAX)?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| r.event == "policy.notice")
        .map(|r| steward_store::OutboxRow {
            id: format!("raw{}", r.id),
            ..r
        })
        .collect();
    let t = Instant::now();
    for chunk in rows.chunks(batch) {
        raw_insert(chunk)?;
    }
    let raw_s = t.elapsed().as_secs_f64();
    Ok(CampaignFigures {
        notice_subjects: subjects,
        notice_enqueue_s: enqueue_s,
        notice_raw_insert_s: raw_s,
        notice_enqueue_ratio: raw_s / enqueue_s.max(1e-9),
    })
}
