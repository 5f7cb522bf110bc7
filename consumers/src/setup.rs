//! `bmon setup`: make NATS and ClickHouse match the repository — every stream and durable
//! consumer of the definitions, every migration of `clickhouse/`. Idempotent: a second run
//! reports everything unchanged and sends no change.

use async_nats::jetstream;

use crate::definitions::{ensure_consumer, ensure_stream, Change, Definitions};
use crate::migrations;
use crate::Error;

/// What [`setup`] did, for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// `(stream, change)` per stream.
    pub streams: Vec<(String, Change)>,
    /// `(consumer, stream, change)` per durable consumer.
    pub consumers: Vec<(String, String, Change)>,
    /// The migrations.
    pub migrations: migrations::Report,
}

impl Report {
    /// True when nothing had to change.
    pub fn unchanged(&self) -> bool {
        self.streams.iter().all(|(_, c)| *c == Change::Unchanged)
            && self
                .consumers
                .iter()
                .all(|(_, _, c)| *c == Change::Unchanged)
            && self.migrations.applied.is_empty()
            && !self.migrations.created_database
    }
}

/// Creates or updates the streams and consumers of `defs`.
pub async fn setup_nats(js: &jetstream::Context, defs: &Definitions) -> Result<Report, Error> {
    let mut report = Report::default();
    for s in &defs.streams {
        let change = ensure_stream(js, s).await?;
        report.streams.push((s.name.clone(), change));
    }
    for c in &defs.consumers {
        for stream in &c.streams {
            let (_, change) = ensure_consumer(js, stream, c).await?;
            report
                .consumers
                .push((c.name.clone(), stream.clone(), change));
        }
    }
    Ok(report)
}

/// [`setup_nats`], then the ClickHouse migrations in `database` (`server` has no database).
pub async fn setup(
    js: &jetstream::Context,
    defs: &Definitions,
    server: &clickhouse::Client,
    database: &str,
) -> Result<Report, Error> {
    let mut report = setup_nats(js, defs).await?;
    report.migrations = migrations::apply(server, database).await?;
    Ok(report)
}
