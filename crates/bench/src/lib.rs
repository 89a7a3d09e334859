//! `steward bench` and `steward loadtest`: Steward's costs measured against raw baselines in
//! the same run, printed as ratios (keys in `docs/bench.md`). The raw baselines talk to the
//! engines directly — a rusqlite connection of their own, a tokio-postgres client of their
//! own — so the store's API needs no escape hatch for them. Never used as a timed assertion
//! in tests.

pub mod bench;
mod campaign;
mod datasets;
mod incident;
pub mod loadtest;
mod outbox;
mod raw;

pub use bench::{BenchArgs, run as run_bench};
pub use loadtest::{LoadArgs, run as run_loadtest};

/// The build profile and backend a report names.
pub(crate) fn labels(database: Option<&str>) -> (&'static str, &'static str) {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let backend = if database.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    (profile, backend)
}
