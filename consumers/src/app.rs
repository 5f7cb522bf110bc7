//! What `bmon-consumer NAME` does: connect to NATS and ClickHouse, serve `/metrics`, rebuild
//! in-memory state where the consumer has some ([`crate::warmup`]), run the named consumer on
//! the [`crate::runtime`] until shutdown or a fatal error.
//!
//! The binary's `main` only parses arguments, installs tracing and signals, and calls [`run`];
//! tests call [`run_with_metrics`] in-process.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::alertmanager::AlertmanagerHandler;
use crate::config::{ClickHouseConfig, Compression, Config, NatsConfig, Warmup};
use crate::definitions::{ConsumerDef, Definitions};
use crate::detector::DetectorHandler;
use crate::metrics::{self, Metrics};
use crate::runtime::{self, Options, Publisher};
use crate::warmup::replay_acked;
use crate::writer::ChWriter;
use crate::Error;
use detectors::DetectorName;

/// The consumers this build implements, by the durable name `bmon-consumer NAME` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerName {
    /// `ch-writer`: every stream into ClickHouse.
    ChWriter,
    /// `det-<name>`: one detector.
    Detector(DetectorName),
    /// `alertmanager`: alerts to Alertmanager.
    Alertmanager,
}

impl ConsumerName {
    /// Every consumer.
    pub const ALL: [ConsumerName; 7] = [
        ConsumerName::ChWriter,
        ConsumerName::Detector(DetectorName::Chain),
        ConsumerName::Detector(DetectorName::Compare),
        ConsumerName::Detector(DetectorName::Health),
        ConsumerName::Detector(DetectorName::Inflation),
        ConsumerName::Detector(DetectorName::Propagation),
        ConsumerName::Alertmanager,
    ];

    /// The durable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerName::ChWriter => "ch-writer",
            ConsumerName::Detector(d) => d.consumer(),
            ConsumerName::Alertmanager => "alertmanager",
        }
    }

    /// The consumer called `name`, or the error listing the known ones.
    pub fn parse(name: &str) -> Result<ConsumerName, Error> {
        ConsumerName::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .ok_or_else(|| Error::UnknownConsumer {
                name: name.to_string(),
                known: ConsumerName::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

impl std::fmt::Display for ConsumerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How often the Alertmanager consumer checks, when idle, whether its active alerts are due
/// for a re-post.
const ALERTMANAGER_IDLE: Duration = Duration::from_secs(1);

/// Opens a NATS connection as configured (credentials file, or user and password).
/// The NATS user the consumers run as when the config names none (`nats/server.conf`).
pub const DEFAULT_NATS_USER: &str = "bmon";

pub async fn connect_nats(
    cfg: &NatsConfig,
    client_name: &str,
) -> Result<async_nats::Client, Error> {
    // Replies (pull deliveries, API answers) come to this user's own inbox, which no node's
    // user may read (nats/server.conf).
    let c = process::nats::Connect {
        urls: cfg.url.clone(),
        name: client_name.to_string(),
        user: cfg.user.clone(),
        password: cfg.password.clone(),
        credentials_file: cfg.creds.clone(),
        nkey_seed_file: cfg.nkey_seed_file.clone(),
        tls: cfg.tls.clone(),
        inbox_user: cfg
            .user
            .clone()
            .unwrap_or_else(|| DEFAULT_NATS_USER.to_string()),
        keep_trying: false,
    };
    process::nats::connect(&c)
        .await
        .map_err(|e| Error::NatsConnect {
            url: cfg.url.clone(),
            reason: e.to_string(),
        })
}

/// A ClickHouse client for the configured server, without a database (for `CREATE DATABASE`).
///
/// Validation is off: ClickHouse 18.16 has no `RowBinaryWithNamesAndTypes`.
pub fn clickhouse_server_client(cfg: &ClickHouseConfig) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(cfg.url.as_str())
        .with_user(cfg.user.as_str())
        .with_password(cfg.password.expose())
        .with_validation(false)
        .with_compression(match cfg.compression {
            Compression::None => clickhouse::Compression::None,
            Compression::Lz4 => clickhouse::Compression::Lz4,
        })
}

/// A ClickHouse client for the configured database.
pub fn clickhouse_client(cfg: &ClickHouseConfig) -> clickhouse::Client {
    clickhouse_server_client(cfg).with_database(cfg.database.as_str())
}

/// Runs consumer `name` until `shutdown` (Ok) or a fatal error.
pub async fn run(name: &str, config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    run_with_metrics(name, config, Arc::new(Metrics::new()), shutdown).await
}

/// [`run`] with a caller-supplied metrics registry (tests read it).
pub async fn run_with_metrics(
    name: &str,
    config: Config,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let defs = Definitions::load_or_builtin(config.nats.definitions.as_deref())?;
    let def = defs.consumer(name)?.clone();
    let consumer = ConsumerName::parse(name)?;
    let addr = metrics::serve(config.metrics.listen, metrics.clone(), shutdown.clone()).await?;
    info!(%addr, "serving /metrics");

    let client_name = format!("bmon-consumer {name}");
    let nats = loop {
        match connect_nats(&config.nats, &client_name).await {
            Ok(c) => break c,
            Err(e) => {
                warn!(error = %e, "NATS not reachable; retrying in 2 s");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    };
    let js = jetstream::new(nats.clone());
    let options = Options {
        batch_size: config.consumer.batch_size,
        linger: Duration::from_millis(config.consumer.linger_ms),
        nak_delay: Duration::from_millis(config.consumer.nak_delay_ms),
        ..Options::default()
    };
    let result = match consumer {
        ConsumerName::ChWriter => {
            let ch = clickhouse_client(&config.clickhouse);
            runtime::run(
                js,
                &def,
                options,
                &metrics,
                |_ctx| ChWriter::new(ch.clone(), metrics.clone()),
                shutdown.clone(),
            )
            .await
        }
        ConsumerName::Alertmanager => {
            let mut handlers = Vec::new();
            for stream in &def.streams {
                let mut handler = AlertmanagerHandler::new(&config.alertmanager, metrics.clone())?;
                warm_up(
                    &js,
                    stream,
                    &def,
                    config.consumer.warmup(name),
                    &shutdown,
                    |env, _| handler.warm(env),
                )
                .await?;
                handlers.push((stream.clone(), handler));
            }
            let options = Options {
                idle: Some(ALERTMANAGER_IDLE),
                ..options
            };
            runtime::run_handlers(js, &def, options, &metrics, handlers, shutdown.clone()).await
        }
        ConsumerName::Detector(detector_name) => {
            // The detectors with derived rows write them to ClickHouse themselves.
            let ch = matches!(
                detector_name,
                DetectorName::Propagation | DetectorName::Compare
            )
            .then(|| clickhouse_client(&config.clickhouse));
            let mut handlers = Vec::new();
            for stream in &def.streams {
                let detector = detectors::build(detector_name, &config.detectors);
                let mut handler = DetectorHandler::new(
                    detector,
                    Publisher::new(js.clone()),
                    ch.clone(),
                    config.consumer.tick_after(),
                    metrics.clone(),
                );
                warm_up(
                    &js,
                    stream,
                    &def,
                    config.consumer.warmup(name),
                    &shutdown,
                    |env, stored| handler.warm(env, stored),
                )
                .await?;
                handlers.push((stream.clone(), handler));
            }
            let options = Options {
                idle: Some(config.consumer.tick_after()),
                ..options
            };
            runtime::run_handlers(js, &def, options, &metrics, handlers, shutdown.clone()).await
        }
    };
    if let Err(e) = nats.drain().await {
        warn!(error = %e, "NATS drain failed");
    }
    result
}

/// Replays what `def` acknowledged on `stream` within `warmup` into `apply`, retrying while
/// JetStream is unreachable (until shutdown).
async fn warm_up<F>(
    js: &jetstream::Context,
    stream: &str,
    def: &ConsumerDef,
    warmup: Warmup,
    shutdown: &CancellationToken,
    mut apply: F,
) -> Result<(), Error>
where
    F: FnMut(&schema::Envelope, Option<std::time::SystemTime>),
{
    let since = match warmup {
        Warmup::Off => return Ok(()),
        Warmup::Since(d) => Some(d),
        Warmup::All => None,
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        match replay_acked(js, stream, def, since, shutdown, &mut apply).await {
            Ok(_) => return Ok(()),
            Err(e) => {
                warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot rebuild state yet (has `bmon setup` run?)");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
