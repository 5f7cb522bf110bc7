//! The one error type of the consumers crate.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ConfigError;

/// Everything that stops a consumer, `bmon setup` or a migration.
///
/// Per-message problems never show up here: the runtime sorts them into transient (nak),
/// poison (dead letter and term) and fatal (this type) on its own.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable. Fix the file or the `BMON_` variables and restart.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A definitions file could not be read. Check the path.
    #[error("cannot read {path}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The stream and consumer definitions are invalid. Fix `nats/streams.toml`.
    #[error("invalid NATS definitions in {origin}: {reason}")]
    Definitions {
        /// File or "built-in".
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// `bmon-consumer NAME` names a consumer that is not defined or not implemented.
    #[error("unknown consumer {name:?}; known: {known}")]
    UnknownConsumer {
        /// The requested name.
        name: String,
        /// The names that would work.
        known: String,
    },
    /// The NATS server could not be reached or refused the credentials.
    #[error("cannot connect to NATS at {url}: {reason}")]
    NatsConnect {
        /// The server URL.
        url: String,
        /// What the client reported.
        reason: String,
    },
    /// A JetStream management call failed (stream or consumer create, update, delete, info).
    /// Usually transient for consumers (they retry); `bmon setup` reports it and exits.
    #[error("JetStream {what} failed: {reason}")]
    JetStream {
        /// What was attempted, with the stream and consumer names.
        what: String,
        /// What the server or client reported.
        reason: String,
    },
    /// A ClickHouse statement failed.
    #[error("ClickHouse {what} failed")]
    ClickHouse {
        /// What was attempted.
        what: String,
        /// The client's error (carries the server's exception text).
        #[source]
        source: clickhouse::error::Error,
    },
    /// An applied migration's file changed afterwards; migrations are append-only.
    /// Restore the file and add a new migration instead.
    #[error("migration {name} was changed after it was applied (recorded checksum {recorded}, file has {actual}); add a new migration instead")]
    MigrationChanged {
        /// The migration.
        name: String,
        /// Checksum stored in `schema_migrations`.
        recorded: String,
        /// Checksum of the embedded file.
        actual: String,
    },
    /// A handler reported a failure it cannot get past (missing table, bad credentials).
    /// The process exits non-zero and its supervisor restarts it.
    #[error("consumer {consumer} on stream {stream} cannot go on: {reason}")]
    Fatal {
        /// The consumer name.
        consumer: String,
        /// The stream.
        stream: String,
        /// What the handler reported.
        reason: String,
    },
    /// The metrics endpoint could not listen. Pick another `metrics.listen` address.
    #[error("cannot listen for metrics on {addr}")]
    MetricsListen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The Alertmanager client could not be built. Check `alertmanager.url`.
    #[error("cannot set up the Alertmanager client for {url}: {reason}")]
    Alertmanager {
        /// The configured URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A consumer task panicked (a bug); the process exits non-zero.
    #[error("consumer task for stream {stream} panicked: {reason}")]
    TaskPanicked {
        /// The stream the task served.
        stream: String,
        /// The panic message.
        reason: String,
    },
}
