//! `bmon-simnet`: runs a scenario, writes the endpoints and the truth file.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use simnet::{Fleet, FleetOptions, Scenario, TruthSink};

/// Run a fleet of emulated Bitcoin Core nodes (JSON-RPC + ZMQ) from a scenario file.
#[derive(Debug, Parser)]
#[command(name = "bmon-simnet", version)]
struct Args {
    /// Scenario file (TOML).
    #[arg(long)]
    scenario: PathBuf,
    /// Where to write the truth file (JSON lines).
    #[arg(long)]
    truth: PathBuf,
    /// Where to write the nodes' endpoints (JSON) once every socket listens.
    #[arg(long)]
    endpoints: Option<PathBuf>,
    /// Keep serving RPC and ZMQ after the scenario ends, until SIGINT/SIGTERM.
    #[arg(long)]
    linger: bool,
    /// Write each node's debug.log to DIR/NODE/debug.log (overrides the scenario's debug_log_dir)
    #[arg(long, value_name = "DIR")]
    debug_log_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::logging::init(process::logging::Format::Text, "info");
    let args = Args::parse();
    let scenario = Scenario::load(&args.scenario).context("loading the scenario")?;
    let sink = TruthSink::file(&args.truth).context("creating the truth file")?;
    let options = FleetOptions {
        debug_log_dir: args.debug_log_dir,
    };
    let fleet = Fleet::start_with(scenario, sink, options)
        .await
        .context("starting the fleet")?;
    let endpoints = serde_json::to_string_pretty(fleet.nodes())?;
    match &args.endpoints {
        Some(path) => {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &endpoints)
                .with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        }
        None => println!("{endpoints}"),
    }
    tokio::select! {
        _ = async { fleet.finished().await; if args.linger { std::future::pending::<()>().await } } => {
            tracing::info!("scenario done");
        }
        s = process::shutdown::signal() => tracing::info!(signal = s.name(), "stopping"),
    }
    fleet.shutdown().await.context("stopping the fleet")?;
    Ok(())
}
