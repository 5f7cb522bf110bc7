//! `bmon-agent --config FILE`: parses arguments, installs tracing and signal handling, and
//! calls [`agent::run`].

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Runs beside one bitcoind and publishes what it says to NATS JetStream as bmon events.
#[derive(Debug, Parser)]
#[command(name = "bmon-agent", version)]
struct Args {
    /// TOML configuration file; `BMON_` environment variables override it (nested keys split
    /// on `__`, e.g. BMON_RPC__URL).
    #[arg(long, short, env = "BMON_AGENT_CONFIG")]
    config: PathBuf,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// Check the configuration, print it (password redacted) and exit.
    #[arg(long)]
    check: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    process::logging::init(process::logging::Format::json(args.log_json), "info");
    let config = agent::Config::load(&args.config)
        .with_context(|| format!("configuration {}", args.config.display()))?;
    if args.check {
        println!("{config:#?}");
        return Ok(());
    }
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        let signal = process::shutdown::signal().await;
        tracing::info!(signal = signal.name(), "shutdown requested");
        signals.cancel();
    });
    agent::run(config, shutdown).await.context("bmon-agent")?;
    Ok(())
}
