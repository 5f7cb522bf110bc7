//! `bmon setup`: streams, consumers and migrations, reported one line each.

use std::path::PathBuf;

use anyhow::Context;

use crate::services::{definitions, Services};

/// Options of `bmon setup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stream and consumer definitions to apply instead of the built-in nats/streams.toml.
    #[arg(long)]
    definitions: Option<PathBuf>,
    /// Create ReplicatedReplacingMergeTree tables (ZooKeeper and the {shard} and {replica}
    /// macros configured on the server); run once against each replica.
    #[arg(long)]
    replicated: bool,
}

/// Runs `bmon setup`.
pub async fn run(services: &Services, args: Args) -> anyhow::Result<()> {
    let defs = definitions(args.definitions.as_deref())?;
    let js = services.jetstream().await?;
    let nats = consumers::setup::setup_nats(&js, &defs)
        .await
        .context("NATS setup failed")?;
    for (stream, change) in &nats.streams {
        println!("stream {stream}: {}", change.as_str());
    }
    for (consumer, stream, change) in &nats.consumers {
        println!("consumer {consumer} on {stream}: {}", change.as_str());
    }
    let db = &services.clickhouse_database;
    let engines = if args.replicated {
        consumers::migrations::Engines::Replicated
    } else {
        consumers::migrations::Engines::Local
    };
    let migrations = consumers::migrations::apply_with(&services.clickhouse_server(), db, engines)
        .await
        .context("ClickHouse migrations failed (--clickhouse-url, BMON_CLICKHOUSE_URL)")?;
    if migrations.created_database {
        println!("clickhouse database {db}: created");
    }
    for m in &migrations.applied {
        println!("migration {m}: applied");
    }
    for m in &migrations.already_applied {
        println!("migration {m}: already applied");
    }
    let report = consumers::setup::Report { migrations, ..nats };
    if report.unchanged() {
        println!("nothing to change");
    }
    Ok(())
}
