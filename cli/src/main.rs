//! `bmon`: the operator's command line. One module per subcommand; [`services`] holds the
//! connection options every subcommand shares (flags or `BMON_...` variables).

mod alerts;
mod block;
mod logs;
mod parse_log;
mod replay;
mod services;
mod setup;
mod since;
mod status;
mod table;
mod tail;
mod tips;
mod tx;
mod validation;

use clap::{Parser, Subcommand};

use crate::services::Services;

/// Operate bmon: set up NATS and ClickHouse, replay consumers, show the fleet, tail events.
#[derive(Debug, Parser)]
#[command(name = "bmon", version)]
struct Cli {
    #[command(flatten)]
    services: Services,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update the JetStream streams and consumers, apply the ClickHouse migrations.
    /// Idempotent: a second run changes nothing.
    Setup(setup::Args),
    /// Restart a durable consumer from the start of its streams and follow it until it has
    /// caught up (the consumer process must be running).
    Replay(replay::Args),
    /// One line per node from its latest node_status: version, height, tip age, mempool,
    /// peers, last heard.
    Status(status::Args),
    /// Print events as JSON lines as they are published.
    Tail(tail::Args),
    /// Parse a debug.log file offline and print the events found, one JSON object per line.
    ParseLog(parse_log::Args),
    /// Block validation time by Core version (median and p90 `Connect total`, and per stage)
    /// over each version's last 1000 block connections, each block credited to the version its
    /// node ran when it connected it.
    Validation(validation::Args),
    /// One block across the fleet: when each node saw its header, compact block and block,
    /// connected it, how long validation took, which peer delivered it; invalid verdicts.
    Block(block::Args),
    /// One transaction across the fleet: first seen per node, fee, why it left, rejections
    /// with their reason and peer, replacements.
    Tx(tx::Args),
    /// The detectors' alerts, one line per incident, newest first.
    Alerts(alerts::Args),
    /// Search the nodes' debug.log lines; `--follow` keeps printing new ones.
    Logs(logs::Args),
    /// The fork tree of the last blocks: active chain, stale branches, invalid blocks, and
    /// where each node's tip is.
    Tips(tips::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Setup(args) => setup::run(&cli.services, args).await,
        Command::Replay(args) => replay::run(&cli.services, args).await,
        Command::Status(args) => status::run(&cli.services, args).await,
        Command::Tail(args) => tail::run(&cli.services, args).await,
        Command::ParseLog(args) => parse_log::run(args),
        Command::Validation(args) => validation::run(&cli.services, args).await,
        Command::Block(args) => block::run(&cli.services, args).await,
        Command::Tx(args) => tx::run(&cli.services, args).await,
        Command::Alerts(args) => alerts::run(&cli.services, args).await,
        Command::Logs(args) => logs::run(&cli.services, args).await,
        Command::Tips(args) => tips::run(&cli.services, args).await,
    }
}
