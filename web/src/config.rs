//! The `bmon-web` configuration: serde defaults, then the TOML file (optional), then
//! `BMON_<SECTION>__<KEY>` environment variables (`BMON_WEB__LISTEN`,
//! `BMON_CLICKHOUSE__PASSWORD`), as for the other bmon binaries.
//!
//! [`Config::from_figment`] is pure so tests build configs from strings; [`Config::load`] adds
//! the file and the environment. Every problem [`Config::validate`] finds is reported at once.
//! The ClickHouse section is the consumers' own ([`ClickHouseConfig`]): one spelling for every
//! bmon process.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use consumers::config::{ClickHouseConfig, LogConfig, NatsConfig};
use figment::providers::{Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use process::config::ConfigError;

/// Everything `bmon-web` reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The HTTP service.
    #[serde(default)]
    pub web: WebConfig,
    /// Where the pages read from (a read-only user is enough).
    #[serde(default)]
    pub clickhouse: ClickHouseConfig,
    /// Where the live log tail (`/live`) reads the agents' debug.log batches, `bmon.log.<node>`
    /// (a user allowed to subscribe to them). Without it the page says how to turn it on.
    #[serde(default)]
    pub nats: Option<NatsConfig>,
    /// Log output.
    #[serde(default)]
    pub log: LogConfig,
}

/// The HTTP service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Address to listen on. Loopback by default: the pages have no authentication, so put
    /// a proxy with authentication in front before exposing them.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The fleet page reloads itself this often, seconds (0: never).
    #[serde(default = "default_refresh_secs")]
    pub refresh_secs: u32,
    /// A page whose ClickHouse queries take longer than this answers 504, milliseconds.
    #[serde(default = "default_query_timeout_ms")]
    pub query_timeout_ms: u64,
    /// `/events` shows this many seconds either side of its time unless the link says.
    #[serde(default = "default_events_window_secs")]
    pub events_window_secs: u32,
    /// On SIGTERM, requests in flight get this long to finish, seconds.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8480))
}
fn default_refresh_secs() -> u32 {
    5
}
fn default_query_timeout_ms() -> u64 {
    10_000
}
fn default_events_window_secs() -> u32 {
    30
}
fn default_shutdown_timeout_secs() -> u64 {
    10
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: default_listen(),
            refresh_secs: default_refresh_secs(),
            query_timeout_ms: default_query_timeout_ms(),
            events_window_secs: default_events_window_secs(),
            shutdown_timeout_secs: default_shutdown_timeout_secs(),
        }
    }
}

impl WebConfig {
    /// The per-page query deadline.
    pub fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.query_timeout_ms)
    }

    /// How long shutdown waits for requests in flight.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

const ENV_SECTIONS: &[&str] = &["web", "clickhouse", "log"];

impl Config {
    /// Defaults, then `path` when given, then `BMON_<SECTION>__<KEY>` variables.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let file = match path {
            Some(path) => process::config::file(path)?,
            None => Figment::new(),
        };
        Config::from_figment(file.merge(process::config::env(ENV_SECTIONS)))
    }

    /// A configuration from TOML text alone (tests, the example file).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_figment(Figment::new().merge(Toml::string(text)))
    }

    /// Defaults merged with `figment`, then validated.
    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = process::config::extract(figment)?;
        config.validate()?;
        Ok(config)
    }

    /// Reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let ch = &self.clickhouse;
        if !(ch.url.starts_with("http://") || ch.url.starts_with("https://")) {
            problems.push(format!(
                "clickhouse.url {:?} must be the HTTP interface (http://host:8123)",
                ch.url
            ));
        }
        let db = &ch.database;
        if db.is_empty()
            || db.len() > 64
            || !db.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || db.as_bytes()[0].is_ascii_digit()
        {
            problems.push(format!(
                "clickhouse.database {db:?} must be letters, digits and '_'"
            ));
        }
        let w = &self.web;
        if w.refresh_secs > 3600 {
            problems.push(format!(
                "web.refresh_secs {} is above 3600: use 0 to turn the refresh off",
                w.refresh_secs
            ));
        }
        if !(100..=300_000).contains(&w.query_timeout_ms) {
            problems.push(format!(
                "web.query_timeout_ms {} must be between 100 and 300000",
                w.query_timeout_ms
            ));
        }
        if !(1..=3600).contains(&w.events_window_secs) {
            problems.push(format!(
                "web.events_window_secs {} must be between 1 and 3600",
                w.events_window_secs
            ));
        }
        if w.shutdown_timeout_secs == 0 {
            problems.push("web.shutdown_timeout_secs must be at least 1".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { problems })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_loads_and_equals_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let text = std::fs::read_to_string(&path).expect("config.example.toml");
        assert_eq!(Config::from_toml(&text).expect("valid"), Config::default());
    }

    #[test]
    fn the_default_listens_on_loopback_only() {
        let c = Config::from_toml("").expect("defaults");
        assert!(c.web.listen.ip().is_loopback());
        assert_eq!(c.web.listen.port(), 8480);
        assert_eq!(c.clickhouse.database, "bmon");
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let err = Config::from_toml("[web]\nlisten_on = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(matches!(err, ConfigError::Parse(_)), "{err}");
        assert!(err.to_string().contains("listen_on"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::from_toml(
            "[web]\nrefresh_secs = 7200\nquery_timeout_ms = 1\n[clickhouse]\nurl = \"tcp://x:9000\"\ndatabase = \"a-b\"\n",
        )
        .unwrap_err();
        match err {
            ConfigError::Invalid { problems } => assert_eq!(problems.len(), 4, "{problems:?}"),
            other => panic!("expected Invalid, got {other}"),
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
    fn the_environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "web.toml",
                "[web]\nlisten = \"127.0.0.1:9000\"\n[clickhouse]\npassword = \"in-file\"\n",
            )?;
            jail.set_env("BMON_WEB__LISTEN", "127.0.0.1:9001");
            jail.set_env("BMON_CLICKHOUSE__PASSWORD", "from-env");
            jail.set_env("BMON_CLICKHOUSE_URL", "http://ignored:1");
            let c = Config::load(Some(Path::new("web.toml")))
                .map_err(|e| figment::Error::from(e.to_string()))?;
            assert_eq!(c.web.listen, SocketAddr::from(([127, 0, 0, 1], 9001)));
            assert_eq!(c.clickhouse.password.expose(), "from-env");
            assert_eq!(c.clickhouse.url, "http://127.0.0.1:8123");
            Ok(())
        });
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = Config::load(Some(Path::new("/nonexistent/web.toml"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/web.toml"), "{err}");
    }
}
