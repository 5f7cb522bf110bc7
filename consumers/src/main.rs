//! `bmon-consumer NAME --config FILE`: runs one bmon consumer (`ch-writer`, `det-<name>`,
//! `alertmanager`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Runs one bmon consumer: a durable JetStream consumer feeding ClickHouse, a detector or
/// Alertmanager.
#[derive(Debug, Parser)]
#[command(name = "bmon-consumer", version)]
struct Args {
    /// The consumer to run, as named in nats/streams.toml: `ch-writer`, `det-chain`,
    /// `det-compare`, `det-health`, `det-inflation`, `det-propagation` or `alertmanager`.
    name: String,
    /// Configuration file (see consumers/config.example.toml).
    #[arg(long, short)]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = consumers::Config::load(&args.config)
        .with_context(|| format!("cannot load {}", args.config.display()))?;
    process::logging::init(process::logging::Format::json(config.log.json), "info");
    tracing::info!(consumer = %args.name, config = ?config, "starting");

    let shutdown = CancellationToken::new();
    let deadline = config.consumer.shutdown_timeout();
    let name = args.name.clone();
    let token = shutdown.clone();
    let mut task = tokio::spawn(async move { consumers::run(&name, config, token).await });
    let finished = tokio::select! {
        r = &mut task => Some(r),
        s = process::shutdown::signal() => {
            tracing::info!(signal = s.name(), "shutting down");
            None
        }
    };
    let result = match finished {
        Some(r) => r,
        None => {
            shutdown.cancel();
            match tokio::time::timeout(deadline, &mut task).await {
                Ok(r) => r,
                Err(_) => bail!("did not stop within {} s", deadline.as_secs()),
            }
        }
    };
    result
        .context("consumer task panicked")?
        .with_context(|| format!("consumer {} failed", args.name))?;
    Ok(())
}
