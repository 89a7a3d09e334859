//! The baselines' own connections to the engines: a plain rusqlite connection, and a
//! tokio-postgres client on a runtime of its own, with the search path set to one schema.

use anyhow::{Context, Result};

/// A tokio-postgres client of the benchmark's own, driven on a one-thread runtime.
pub(crate) struct RawPg {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl RawPg {
    /// Connects to `url` with `schema` first on the search path.
    pub(crate) fn connect(url: &str, schema: &str) -> Result<RawPg> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut config: tokio_postgres::Config =
            url.parse().context("the PostgreSQL connection string")?;
        config.options(format!("-c search_path={schema}"));
        let client = runtime.block_on(async {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok::<_, tokio_postgres::Error>(client)
        })?;
        Ok(RawPg { runtime, client })
    }

    /// Runs `work` with the client until it finishes.
    pub(crate) fn run<T>(
        &self,
        work: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T> {
        Ok(self.runtime.block_on(work(&self.client))?)
    }
}
