//! bmon's consumers: everything between NATS JetStream and ClickHouse, the detectors' shell
//! and the delivery of their alerts to Alertmanager.
//!
//! - [`definitions`]: the streams and durable consumers of `nats/streams.toml`, and the
//!   create-or-update calls that make the server match them.
//! - [`migrations`]: the numbered SQL files of `clickhouse/`, embedded at build time, and
//!   their idempotent application recorded in `schema_migrations`.
//! - [`runtime`]: the JetStream shell every consumer runs in: a durable pull consumer per
//!   stream, batch fetch, decode, dead letters, the [`runtime::Handler`] call, acks after the
//!   handler's effect is durable, graceful shutdown.
//! - [`writer`]: the ClickHouse writer (`ch-writer`), a handler mapping each envelope to a row
//!   of its kind's table.
//! - [`detector`]: the detector consumers (`det-chain`, `det-health`, `det-inflation`,
//!   `det-propagation`): the shell around `bmon-detectors` (alerts to `bmon.alert.<kind>`,
//!   ticks during quiet periods, propagation summaries to ClickHouse).
//! - [`alertmanager`]: the alert router (`alertmanager`) posting alerts to Alertmanager.
//! - [`warmup`]: rebuilding a consumer's in-memory state on start from what it acknowledged.
//! - [`metrics`]: Prometheus metrics of every consumer and the `/metrics` endpoint.
//! - [`setup`]: what `bmon setup` does (streams, consumers, migrations).
//! - [`config`]: the `bmon-consumer` configuration file.
//! - [`run`]: what `bmon-consumer NAME` does, for the binary and for tests.

pub mod alertmanager;
pub mod app;
pub mod config;
pub mod definitions;
pub mod detector;
pub mod error;
pub mod metrics;
pub mod migrations;
pub mod runtime;
pub mod setup;
pub mod warmup;
pub mod writer;

pub use app::{clickhouse_client, clickhouse_server_client, connect_nats, run, run_with_metrics};
pub use config::Config;
pub use error::Error;
