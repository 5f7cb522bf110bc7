//! bmon-agent: runs beside one bitcoind and turns what the node says into typed, timestamped
//! [`schema::Envelope`]s published to NATS JetStream. It never analyses across nodes.
//!
//! Layout, by concern:
//! - [`config`]: the configuration (figment: defaults, TOML file, `BMON_` environment) and its
//!   validation.
//! - [`sources`]: bitcoind's ZMQ notifications ([`sources::zmq`]: pure frame decoding plus the
//!   subscriber thread), JSON-RPC ([`sources::rpc`], typed answers in [`sources::answers`]) and
//!   the optional debug.log ([`sources::debuglog`]: raw lines to `BMON_LOGS`, typed events
//!   from the log, independent of RPC and ZMQ).
//! - [`chain`] and [`mempool`]: pure state machines that turn node notifications into
//!   `block_connected`, `block_disconnected`, `reorg`, `tx_seen` and `tx_removed` events.
//! - [`status`]: pure conversions of RPC polls into `node_status`, `chain_tips` and
//!   `mempool_snapshot`.
//! - [`node`]: the I/O shell that feeds the state machines from ZMQ and RPC and sends envelopes
//!   into the publisher's bounded channel (of [`publish::Item`]s).
//! - [`publish`] and [`spool`]: JetStream publishing with batched PubAcks, and the disk spool
//!   that keeps events while NATS is away.
//! - [`state`]: where the agent keeps its spool and debug.log position (per node by default)
//!   and the locks that keep them to one agent.
//! - [`metrics`]: Prometheus metrics and the `/metrics` server.
//! - [`clock`]: the one clock every `observed_at` the agent stamps comes from (the wall clock,
//!   or a simulated clock for simulated fleets).
//!
//! [`run`] wires them together until the shutdown token fires.

pub mod chain;
pub mod clock;
pub mod config;
pub mod error;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod publish;
pub mod sources;
pub mod spool;
pub mod state;
pub mod status;

#[cfg(test)]
pub(crate) mod fixtures;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use clock::Clock;
pub use config::Config;
pub use error::Error;
pub use metrics::Metrics;

/// Capacity of the channel from the node driver to the publisher.
pub const EVENT_CHANNEL: usize = 4_096;
/// Capacity of the channel from the ZMQ thread to the node driver.
pub const ZMQ_CHANNEL: usize = 10_000;

/// Runs the agent until `shutdown` fires: sources stop, in-flight events are published or
/// spooled, and the function returns.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let metrics = Metrics::new(&config.node);
    run_with_metrics(config, metrics, shutdown).await
}

/// [`run`] with a caller-supplied metrics handle (tests read counters from it).
pub async fn run_with_metrics(
    config: Config,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    tracing::info!(config = ?config, "starting bmon-agent");
    // Before anything else: a second agent on the same state stops here, touching nothing.
    let state_lock = state::StateLock::acquire(&config)?;
    if let Some(dl) = &config.debug_log {
        state::adopt_legacy_position(dl, &config.node);
    }
    state::report_leftovers(&config);
    if config.clock.is_scaled() {
        tracing::warn!(clock = %config.clock,
            "events are stamped on a simulated clock ([clock]): for simulated fleets only");
    }
    let (metrics_addr, metrics_task) =
        metrics::serve(config.metrics_listen, metrics.clone(), shutdown.clone()).await?;
    tracing::info!(%metrics_addr, "serving /metrics");

    let spool = spool::Spool::open(&config.spool.dir, config.spool.max_bytes)?;
    let client = publish::connect(&config.nats, &config.node).await?;
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_CHANNEL);
    let publisher = publish::Publisher::new(client, spool, metrics.clone(), config.node.clone())
        .with_clock(config.clock);
    let publisher = tokio::spawn(publisher.run(ev_rx));

    // The debug.log does not need the node's RPC: it is read from the start, while the node
    // may still be unreachable.
    let log_task = config.debug_log.clone().map(|dl| {
        let span = tracing::info_span!("debug_log", node = %config.node);
        tokio::spawn(tracing::Instrument::instrument(
            sources::debuglog::run(
                dl,
                config.node.clone(),
                metrics.clone(),
                config.clock,
                ev_tx.clone(),
                shutdown.clone(),
            ),
            span,
        ))
    });
    let sources = run_sources(&config, &metrics, ev_tx, shutdown.clone());
    let mut result = supervise(sources, log_task, shutdown.clone()).await;
    match publisher.await {
        Ok(0) => tracing::info!("publisher done; spool empty"),
        Ok(left) => tracing::info!(spooled = left, "publisher done; events kept in the spool"),
        Err(e) => {
            tracing::error!(error = %e, "publisher task failed");
            if result.is_ok() {
                result = Err(Error::TaskFailed {
                    task: "publisher",
                    reason: e.to_string(),
                });
            }
        }
    }
    let _ = metrics_task.await;
    if let Err(e) = &result {
        tracing::error!(error = %e, "bmon-agent stops with an error");
    }
    // Every task that wrote the state has ended: another agent may take it over now.
    drop(state_lock);
    result
}

/// Runs the sources (ZMQ and RPC) while watching the debug.log task: whichever ends first with
/// an error (or a panic) cancels `shutdown`, the other is awaited, and the first error is
/// returned, so the agent exits non-zero and its supervisor restarts it. A debug.log task that
/// ends cleanly before shutdown leaves the sources running.
async fn supervise(
    sources: impl std::future::Future<Output = Result<(), Error>>,
    log_task: Option<tokio::task::JoinHandle<Result<(), node::PublisherGone>>>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let Some(mut log_task) = log_task else {
        let result = sources.await;
        shutdown.cancel();
        return result;
    };
    tokio::pin!(sources);
    let (sources_result, log_result) = tokio::select! {
        res = &mut sources => {
            // Whatever ended the sources, stop the rest.
            shutdown.cancel();
            (res, log_outcome(log_task.await))
        }
        joined = &mut log_task => {
            let log_result = log_outcome(joined);
            if let Err(e) = &log_result {
                tracing::error!(error = %e, "debug.log source failed; stopping the agent");
            }
            if log_result.is_err() {
                shutdown.cancel();
            }
            let res = sources.await;
            shutdown.cancel();
            (res, log_result)
        }
    };
    match (sources_result, log_result) {
        (Err(e), _) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

fn log_outcome(
    joined: Result<Result<(), node::PublisherGone>, tokio::task::JoinError>,
) -> Result<(), Error> {
    match joined {
        Ok(Ok(())) => Ok(()),
        Ok(Err(node::PublisherGone)) => Err(Error::PublisherGone),
        Err(e) => Err(Error::TaskFailed {
            task: "debug.log source",
            reason: e.to_string(),
        }),
    }
}

async fn run_sources(
    config: &Config,
    metrics: &Metrics,
    ev_tx: mpsc::Sender<publish::Item>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let rpc = Arc::new(sources::rpc::RpcClient::new(
        &config.rpc.url,
        config.rpc.auth.clone(),
        config.rpc.timeout,
        metrics.clone(),
    )?);
    let info = match rpc.wait_ready(&shutdown).await {
        None => return Ok(()),
        Some(r) => r?,
    };
    if config::parse_network(&info.chain) != Some(config.network) {
        return Err(Error::WrongChain {
            url: config.rpc.url.clone(),
            node_chain: info.chain,
            configured: config.network.to_string(),
        });
    }
    let (zmq_tx, zmq_rx) = mpsc::channel(ZMQ_CHANNEL);
    let zmq_thread = sources::zmq::spawn_subscriber(
        &config.zmq,
        zmq_tx,
        metrics.clone(),
        config.clock,
        shutdown.clone(),
    )?;
    let driver = node::NodeDriver::new(
        config.node.clone(),
        config.network,
        rpc,
        metrics.clone(),
        config.clock,
        ev_tx,
    );
    let intervals = node::Intervals {
        status: config.status_interval,
        mempool: config.mempool_interval,
        tx_fees: config.tx_fees,
        template: config.template_interval,
        peers: config.peers_interval,
    };
    let span = tracing::info_span!("node", node = %config.node);
    let res =
        tracing::Instrument::instrument(driver.run(zmq_rx, intervals, shutdown.clone()), span)
            .await;
    if res.is_err() {
        tracing::error!("publisher stopped before the sources");
    }
    shutdown.cancel();
    let joined = tokio::task::spawn_blocking(move || zmq_thread.join()).await;
    let zmq_result = match joined {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Error::TaskFailed {
            task: "zmq thread",
            reason: "panicked".into(),
        }),
        Err(e) => Err(Error::TaskFailed {
            task: "zmq thread",
            reason: e.to_string(),
        }),
    };
    // Give nothing else a chance to hold the channel: the driver (and its sender) is gone.
    tokio::time::sleep(Duration::from_millis(0)).await;
    match res {
        Err(node::PublisherGone) => Err(Error::PublisherGone),
        Ok(()) => zmq_result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_log_task_stops_the_sources_and_is_returned() {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        // The sources run until shutdown, as the node driver does.
        let sources = async move {
            token.cancelled().await;
            Ok(())
        };
        let log = tokio::spawn(async { Err(node::PublisherGone) });
        let res = tokio::time::timeout(
            Duration::from_secs(5),
            supervise(sources, Some(log), shutdown.clone()),
        )
        .await
        .expect("supervise returns once the log task failed");
        assert!(matches!(res, Err(Error::PublisherGone)), "{res:?}");
        assert!(shutdown.is_cancelled());
    }

    #[tokio::test]
    async fn a_panicked_log_task_is_a_task_failure() {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let sources = async move {
            token.cancelled().await;
            Ok(())
        };
        let log = tokio::spawn(async {
            if true {
                panic!("reader broke");
            }
            Ok(())
        });
        let res = tokio::time::timeout(
            Duration::from_secs(5),
            supervise(sources, Some(log), shutdown.clone()),
        )
        .await
        .expect("supervise returns once the log task panicked");
        assert!(
            matches!(
                res,
                Err(Error::TaskFailed {
                    task: "debug.log source",
                    ..
                })
            ),
            "{res:?}"
        );
    }

    #[tokio::test]
    async fn a_source_error_wins_and_stops_the_log_task() {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let log = tokio::spawn(async move {
            token.cancelled().await;
            Ok(())
        });
        let sources = async { Err(Error::PublisherGone) };
        let res = supervise(sources, Some(log), shutdown.clone()).await;
        assert!(matches!(res, Err(Error::PublisherGone)), "{res:?}");
        assert!(shutdown.is_cancelled());
    }

    #[tokio::test]
    async fn a_clean_shutdown_returns_ok() {
        let shutdown = CancellationToken::new();
        let (t1, t2) = (shutdown.clone(), shutdown.clone());
        let log = tokio::spawn(async move {
            t1.cancelled().await;
            Ok(())
        });
        let sources = async move {
            t2.cancelled().await;
            Ok(())
        };
        shutdown.cancel();
        assert!(supervise(sources, Some(log), shutdown).await.is_ok());
    }
}
