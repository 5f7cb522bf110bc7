//! The `bmon-consumer` configuration: serde defaults, then the TOML file, then
//! `BMON_<SECTION>__<KEY>` environment variables (e.g. `BMON_CLICKHOUSE__PASSWORD`).
//!
//! [`Config::from_figment`] is pure so tests build configs from strings; [`Config::load`] adds
//! the file and the environment. Every problem [`Config::validate`] finds is reported at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use process::config::ConfigError;
pub use process::Secret;

/// Everything `bmon-consumer` reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the events come from.
    #[serde(default)]
    pub nats: NatsConfig,
    /// Where the writer stores rows.
    #[serde(default)]
    pub clickhouse: ClickHouseConfig,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Batching and retry behaviour of the runtime.
    #[serde(default)]
    pub consumer: ConsumerConfig,
    /// Log output.
    #[serde(default)]
    pub log: LogConfig,
    /// Where `bmon-consumer alertmanager` delivers alerts.
    #[serde(default)]
    pub alertmanager: AlertmanagerConfig,
    /// The detectors' thresholds (`det-<name>`): one table per detector
    /// (`[detectors.chain]`, `[detectors.inflation]`, ...), keys as in detectors/README.md.
    #[serde(default)]
    pub detectors: detectors::Config,
}

/// The Alertmanager that `bmon-consumer alertmanager` posts to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URL (`POST {url}/api/v2/alerts`), plain HTTP.
    #[serde(default = "default_am_url")]
    pub url: String,
    /// A firing alert is posted again this often while it is active, seconds.
    #[serde(default = "default_resend_interval_secs")]
    pub resend_interval_secs: u64,
    /// A firing alert is posted with `endsAt` this far ahead, seconds: if bmon stops
    /// re-posting (it died), Alertmanager resolves the alert by itself after this.
    #[serde(default = "default_resend_horizon_secs")]
    pub resend_horizon_secs: u64,
    /// Timeout of one HTTP request, milliseconds.
    #[serde(default = "default_am_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_am_url() -> String {
    "http://127.0.0.1:9093".into()
}
fn default_resend_interval_secs() -> u64 {
    60
}
fn default_resend_horizon_secs() -> u64 {
    300
}
fn default_am_timeout_ms() -> u64 {
    10_000
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            url: default_am_url(),
            resend_interval_secs: default_resend_interval_secs(),
            resend_horizon_secs: default_resend_horizon_secs(),
            timeout_ms: default_am_timeout_ms(),
        }
    }
}

/// NATS connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL, or a comma-separated list (the servers of a cluster).
    #[serde(default = "default_nats_url")]
    pub url: String,
    /// A `.creds` file (JWT + nkey), when the server uses decentralized auth.
    #[serde(default)]
    pub creds: Option<PathBuf>,
    /// User name, when the server uses `accounts { users }` (see nats/server.conf).
    #[serde(default)]
    pub user: Option<String>,
    /// Password for `user`.
    #[serde(default)]
    pub password: Secret,
    /// A file with an nkey seed (`SU...`), instead of a password or credentials file.
    #[serde(default)]
    pub nkey_seed_file: Option<PathBuf>,
    /// TLS: the CA that signed the servers' certificates, and a client certificate and key
    /// when the servers verify clients.
    #[serde(default)]
    pub tls: Option<process::nats::TlsFiles>,
    /// A streams/consumers definitions file replacing the built-in copy of
    /// `nats/streams.toml`.
    #[serde(default)]
    pub definitions: Option<PathBuf>,
}

fn default_nats_url() -> String {
    "nats://127.0.0.1:4222".into()
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: default_nats_url(),
            creds: None,
            user: None,
            password: Secret::default(),
            nkey_seed_file: None,
            tls: None,
            definitions: None,
        }
    }
}

/// ClickHouse connection (HTTP interface).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP URL of the server.
    #[serde(default = "default_ch_url")]
    pub url: String,
    /// The database holding bmon's tables (created by `bmon setup`).
    #[serde(default = "default_ch_database")]
    pub database: String,
    /// User name.
    #[serde(default = "default_ch_user")]
    pub user: String,
    /// Password.
    #[serde(default)]
    pub password: Secret,
    /// Compression of inserts and answers: `none` (default; saves CPU on both ends, right
    /// when ClickHouse is near) or `lz4` (saves bandwidth over a slow link).
    #[serde(default)]
    pub compression: Compression,
}

/// Compression between bmon and ClickHouse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain RowBinary.
    #[default]
    None,
    /// LZ4 frames.
    Lz4,
}

fn default_ch_url() -> String {
    "http://127.0.0.1:8123".into()
}
fn default_ch_database() -> String {
    "bmon".into()
}
fn default_ch_user() -> String {
    "default".into()
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: default_ch_url(),
            database: default_ch_database(),
            user: default_ch_user(),
            password: Secret::default(),
            compression: Compression::default(),
        }
    }
}

/// The `/metrics` endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Listen address (`127.0.0.1:0` picks a free port).
    #[serde(default = "default_metrics_listen")]
    pub listen: SocketAddr,
}

fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: default_metrics_listen(),
        }
    }
}

/// Batching, retry and shutdown behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Most messages handled as one batch (one ClickHouse insert per table).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How long to wait for a batch to fill once its first message arrived, ms.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// Redelivery delay after a transient failure (ClickHouse down), ms.
    #[serde(default = "default_nak_delay_ms")]
    pub nak_delay_ms: u64,
    /// How long a graceful shutdown may take before the process gives up, seconds.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// Detectors: after this long without an event, ticks advance event time, ms.
    #[serde(default = "default_tick_after_ms")]
    pub tick_after_ms: u64,
    /// Detectors and the Alertmanager consumer: how far back the acknowledged messages are
    /// replayed on start to rebuild in-memory state, seconds. Unset: each consumer's own
    /// default (see consumers/README.md); 0: no warm-up.
    #[serde(default)]
    pub warmup_secs: Option<u64>,
}

fn default_batch_size() -> usize {
    10_000
}
fn default_linger_ms() -> u64 {
    50
}
fn default_nak_delay_ms() -> u64 {
    2000
}
fn default_shutdown_timeout_secs() -> u64 {
    30
}
fn default_tick_after_ms() -> u64 {
    2000
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            batch_size: default_batch_size(),
            linger_ms: default_linger_ms(),
            nak_delay_ms: default_nak_delay_ms(),
            shutdown_timeout_secs: default_shutdown_timeout_secs(),
            tick_after_ms: default_tick_after_ms(),
            warmup_secs: None,
        }
    }
}

impl ConsumerConfig {
    /// The shutdown deadline.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// The quiet period after which detectors tick.
    pub fn tick_after(&self) -> Duration {
        Duration::from_millis(self.tick_after_ms)
    }

    /// The warm-up horizon for consumer `name`: `warmup_secs` when set (0: none), else the
    /// consumer's default (None: the whole stream).
    pub fn warmup(&self, name: &str) -> Warmup {
        match self.warmup_secs {
            Some(0) => Warmup::Off,
            Some(s) => Warmup::Since(Duration::from_secs(s)),
            None => default_warmup(name),
        }
    }
}

/// How far back a consumer replays acknowledged messages on start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmup {
    /// No replay: state starts empty.
    Off,
    /// The messages stored within this long.
    Since(Duration),
    /// The whole stream.
    All,
}

/// Each consumer's default warm-up: as far back as its state reaches (detectors/README.md).
pub fn default_warmup(name: &str) -> Warmup {
    const HOUR: u64 = 3600;
    match name {
        // Block first-seen times, fired fingerprints: remember_secs = 48 h.
        "det-chain" | "det-inflation" => Warmup::Since(Duration::from_secs(48 * HOUR)),
        // Last status per node, peer windows, open per-node conditions.
        "det-health" => Warmup::Since(Duration::from_secs(24 * HOUR)),
        // Baselines over the last 144 blocks fill after ~36 (min_samples 20); transactions
        // are the bulk of the stream, so the horizon stays short.
        "det-propagation" => Warmup::Since(Duration::from_secs(6 * HOUR)),
        // Mempool holders and version medians: transactions older than this are simply not
        // compared after a restart (never reported missing).
        "det-compare" => Warmup::Since(Duration::from_secs(6 * HOUR)),
        // Active alerts can be old: the alert stream is small, read all of it.
        "alertmanager" => Warmup::All,
        _ => Warmup::Off,
    }
}

/// Log output format (the level comes from `RUST_LOG`, default `info`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// One JSON object per line instead of text.
    #[serde(default)]
    pub json: bool,
}

/// The sections an environment variable may address (`BMON_<SECTION>__<KEY>`); other `BMON_`
/// variables belong to other programs and are ignored.
const ENV_SECTIONS: &[&str] = &[
    "nats",
    "clickhouse",
    "metrics",
    "consumer",
    "log",
    "alertmanager",
    "detectors",
];

impl Config {
    /// Defaults, then `path`, then `BMON_<SECTION>__<KEY>` variables; validated.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::from_figment(process::config::file(path)?.merge(process::config::env(ENV_SECTIONS)))
    }

    /// Parses a TOML text (no environment), validated. For tests and `--check`.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_figment(Figment::new().merge(Toml::string(text)))
    }

    /// Extracts and validates a config from any figment (defaults are added underneath).
    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = process::config::extract(figment)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work; reports all of them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if !(self.nats.url.starts_with("nats://")
            || self.nats.url.starts_with("tls://")
            || self.nats.url.starts_with("ws://")
            || self.nats.url.starts_with("wss://"))
        {
            problems.push(format!(
                "nats.url {:?} must start with nats://, tls://, ws:// or wss://",
                self.nats.url
            ));
        }
        if self.nats.creds.is_some() && self.nats.user.is_some() {
            problems.push("nats.creds and nats.user exclude each other: pick one".into());
        }
        if let Some(creds) = &self.nats.creds {
            if !creds.is_file() {
                problems.push(format!("nats.creds {} does not exist", creds.display()));
            }
        }
        if let Some(defs) = &self.nats.definitions {
            if !defs.is_file() {
                problems.push(format!(
                    "nats.definitions {} does not exist",
                    defs.display()
                ));
            }
        }
        if !(self.clickhouse.url.starts_with("http://")
            || self.clickhouse.url.starts_with("https://"))
        {
            problems.push(format!(
                "clickhouse.url {:?} must be the HTTP interface (http://host:8123)",
                self.clickhouse.url
            ));
        }
        if !is_identifier(&self.clickhouse.database) {
            problems.push(format!(
                "clickhouse.database {:?} must be letters, digits and '_'",
                self.clickhouse.database
            ));
        }
        if !(1..=100_000).contains(&self.consumer.batch_size) {
            problems.push(format!(
                "consumer.batch_size {} must be between 1 and 100000",
                self.consumer.batch_size
            ));
        }
        if self.consumer.linger_ms > 10_000 {
            problems.push(format!(
                "consumer.linger_ms {} is above 10000: batches would wait too long",
                self.consumer.linger_ms
            ));
        }
        if self.consumer.shutdown_timeout_secs == 0 {
            problems.push("consumer.shutdown_timeout_secs must be at least 1".into());
        }
        if self.consumer.tick_after_ms < 100 {
            problems.push(format!(
                "consumer.tick_after_ms {} is below 100: ticks would crowd out events",
                self.consumer.tick_after_ms
            ));
        }
        let am = &self.alertmanager;
        if !am.url.starts_with("http://") {
            problems.push(format!(
                "alertmanager.url {:?} must start with http:// (this build speaks plain HTTP; put a TLS proxy in front of a remote Alertmanager)",
                am.url
            ));
        }
        if am.resend_interval_secs == 0 {
            problems.push("alertmanager.resend_interval_secs must be at least 1".into());
        }
        if am.resend_horizon_secs <= am.resend_interval_secs {
            problems.push(format!(
                "alertmanager.resend_horizon_secs {} must exceed resend_interval_secs {}: active alerts would expire between posts",
                am.resend_horizon_secs, am.resend_interval_secs
            ));
        }
        if am.timeout_ms == 0 {
            problems.push("alertmanager.timeout_ms must be at least 1".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { problems })
        }
    }
}

/// A ClickHouse identifier we accept unquoted.
pub(crate) fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    /// `BMON_<SECTION>__<KEY>` overrides the file; other `BMON_` variables are ignored.
    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
    fn environment_overrides_the_file_by_section_and_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "consumer.toml",
                "[clickhouse]\nurl = \"http://127.0.0.1:8123\"\npassword = \"from-file\"\n",
            )?;
            jail.set_env("BMON_CLICKHOUSE__PASSWORD", "from-env");
            jail.set_env("BMON_NATS__URL", "nats://10.0.0.5:4222");
            jail.set_env("BMON_TEST_CLICKHOUSE_URL", "http://127.0.0.1:1");
            let config = Config::load(std::path::Path::new("consumer.toml"))
                .map_err(|e| figment::Error::from(e.to_string()))?;
            assert_eq!(config.clickhouse.password.expose(), "from-env");
            assert_eq!(config.nats.url, "nats://10.0.0.5:4222");
            assert_eq!(config.clickhouse.url, "http://127.0.0.1:8123");
            Ok(())
        });
    }

    use super::*;

    #[test]
    fn the_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let config = Config::from_toml(&text).unwrap();
        assert_eq!(config.clickhouse.database, "bmon");
        assert_eq!(config.consumer.batch_size, 10_000);
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let err = Config::from_toml("[clickhouse]\ndatabse = \"x\"\n").unwrap_err();
        assert!(matches!(err, ConfigError::Parse(_)), "{err}");
        assert!(err.to_string().contains("databse"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::from_toml(
            "[nats]\nurl = \"http://x\"\n[clickhouse]\ndatabase = \"a-b\"\n[consumer]\nbatch_size = 0\n",
        )
        .unwrap_err();
        match err {
            ConfigError::Invalid { problems } => assert_eq!(problems.len(), 3, "{problems:?}"),
            other => panic!("expected Invalid, got {other}"),
        }
    }

    #[test]
    fn the_example_config_sets_alertmanager_and_detector_keys() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let config = Config::from_toml(&text).unwrap();
        assert_eq!(config.alertmanager, AlertmanagerConfig::default());
        assert_eq!(config.detectors, detectors::Config::default());
        assert_eq!(config.consumer.tick_after_ms, 2000);
        assert_eq!(
            config.consumer.warmup("det-chain"),
            default_warmup("det-chain")
        );
    }

    #[test]
    fn detector_thresholds_come_from_the_detectors_section() {
        let config = Config::from_toml(
            "[detectors.chain]\nreorg_critical_depth = 4\n[detectors.inflation]\nnetwork = \"regtest\"\n",
        )
        .unwrap();
        assert_eq!(config.detectors.chain.reorg_critical_depth, 4);
        assert_ne!(
            config.detectors.inflation,
            detectors::InflationConfig::default()
        );
        let err = Config::from_toml("[detectors.chain]\nreorg_depth = 4\n").unwrap_err();
        assert!(err.to_string().contains("reorg_depth"), "{err}");
    }

    #[test]
    fn a_resend_horizon_shorter_than_the_interval_is_refused() {
        let err = Config::from_toml(
            "[alertmanager]\nurl = \"am:9093\"\nresend_interval_secs = 60\nresend_horizon_secs = 30\n",
        )
        .unwrap_err();
        match err {
            ConfigError::Invalid { problems } => assert_eq!(problems.len(), 2, "{problems:?}"),
            other => panic!("expected Invalid, got {other}"),
        }
    }

    #[test]
    fn warmup_secs_overrides_each_consumers_default() {
        let c = Config::default();
        assert_eq!(c.consumer.warmup("alertmanager"), Warmup::All);
        assert_eq!(c.consumer.warmup("ch-writer"), Warmup::Off);
        let c = Config::from_toml("[consumer]\nwarmup_secs = 0\n").unwrap();
        assert_eq!(c.consumer.warmup("det-chain"), Warmup::Off);
        let c = Config::from_toml("[consumer]\nwarmup_secs = 60\n").unwrap();
        assert_eq!(
            c.consumer.warmup("alertmanager"),
            Warmup::Since(Duration::from_secs(60))
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = Config::load(Path::new("/nonexistent/bmon.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/bmon.toml"));
    }

    #[test]
    fn passwords_do_not_show_in_debug_output() {
        let config = Config::from_toml("[clickhouse]\npassword = \"hunter2\"\n").unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert_eq!(config.clickhouse.password.expose(), "hunter2");
    }
}
