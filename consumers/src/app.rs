//! What `bmon-consumer NAME` does: connect to NATS and ClickHouse, serve `/metrics`, run the
//! named consumer on the [`crate::runtime`] until shutdown or a fatal error.
//!
//! The binary's `main` only parses arguments, installs tracing and signals, and calls [`run`];
//! tests call [`run_with_metrics`] in-process.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{ClickHouseConfig, Compression, Config, NatsConfig};
use crate::definitions::Definitions;
use crate::metrics::{self, Metrics};
use crate::runtime::{self, Options};
use crate::writer::ChWriter;
use crate::Error;

/// Consumers this build implements.
pub const IMPLEMENTED: &[&str] = &["ch-writer"];

/// Opens a NATS connection as configured (credentials file, or user and password).
pub async fn connect_nats(
    cfg: &NatsConfig,
    client_name: &str,
) -> Result<async_nats::Client, Error> {
    let err = |reason: String| Error::NatsConnect {
        url: cfg.url.clone(),
        reason,
    };
    let mut options = match &cfg.creds {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| err(format!("cannot read credentials {}: {e}", path.display())))?,
        None => async_nats::ConnectOptions::new(),
    };
    if let Some(user) = &cfg.user {
        options = options.user_and_password(user.clone(), cfg.password.expose().to_string());
    }
    options
        .name(client_name)
        .connection_timeout(Duration::from_secs(5))
        .connect(cfg.url.as_str())
        .await
        .map_err(|e| err(e.to_string()))
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
    if !IMPLEMENTED.contains(&name) {
        return Err(Error::UnknownConsumer {
            name: name.to_string(),
            known: IMPLEMENTED.join(", "),
        });
    }
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
    let result = match name {
        "ch-writer" => {
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
        other => Err(Error::UnknownConsumer {
            name: other.to_string(),
            known: IMPLEMENTED.join(", "),
        }),
    };
    if let Err(e) = nats.drain().await {
        warn!(error = %e, "NATS drain failed");
    }
    result
}
