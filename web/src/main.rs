//! `bmon-web [--config FILE]`: serves the web view until SIGTERM or SIGINT.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Serves bmon's web view (fleet, fork tree, blocks, transactions, alerts, logs, mempools,
/// validation, peers) over ClickHouse, read-only.
#[derive(Debug, Parser)]
#[command(name = "bmon-web", version)]
struct Args {
    /// Configuration file (see web/config.example.toml). Without it: defaults and
    /// BMON_<SECTION>__<KEY> variables.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = web::Config::load(args.config.as_deref()).with_context(|| match &args.config {
        Some(p) => format!("cannot load {}", p.display()),
        None => "cannot load the configuration".into(),
    })?;
    process::logging::init(process::logging::Format::json(config.log.json), "info");
    tracing::info!(config = ?config, "starting");

    let shutdown = CancellationToken::new();
    let deadline = config.web.shutdown_timeout();
    let token = shutdown.clone();
    let mut task = tokio::spawn(async move { web::run(config, token).await });
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
        .context("server task panicked")?
        .context("bmon-web failed")?;
    tracing::info!("stopped");
    Ok(())
}
