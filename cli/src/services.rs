//! Where NATS and ClickHouse are, for every subcommand: flags, or `BMON_...` variables.

use std::path::PathBuf;

use anyhow::Context;
use async_nats::jetstream;
use consumers::config::{ClickHouseConfig, NatsConfig, Secret};
use consumers::definitions::Definitions;

/// Connection options shared by every subcommand.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Connection (every command)")]
pub struct Services {
    /// NATS server URL.
    #[arg(
        long,
        env = "BMON_NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        hide_env_values = true,
        global = true
    )]
    pub nats_url: String,
    /// NATS user (see nats/server.conf).
    #[arg(long, env = "BMON_NATS_USER", hide_env_values = true, global = true)]
    pub nats_user: Option<String>,
    /// NATS password.
    #[arg(
        long,
        env = "BMON_NATS_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub nats_password: Option<String>,
    /// NATS credentials file (JWT), instead of user and password.
    #[arg(long, env = "BMON_NATS_CREDS", hide_env_values = true, global = true)]
    pub nats_creds: Option<PathBuf>,
    /// NATS nkey seed file (`SU...`), instead of user and password.
    #[arg(
        long,
        env = "BMON_NATS_NKEY_SEED_FILE",
        hide_env_values = true,
        global = true
    )]
    pub nats_nkey_seed_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the NATS servers' certificates; requires TLS.
    #[arg(long, env = "BMON_NATS_CA_FILE", hide_env_values = true, global = true)]
    pub nats_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for NATS servers that verify clients.
    #[arg(
        long,
        env = "BMON_NATS_CERT_FILE",
        hide_env_values = true,
        global = true
    )]
    pub nats_cert_file: Option<PathBuf>,
    /// Key (PEM) of the client certificate.
    #[arg(
        long,
        env = "BMON_NATS_KEY_FILE",
        hide_env_values = true,
        global = true
    )]
    pub nats_key_file: Option<PathBuf>,
    /// ClickHouse HTTP URL.
    #[arg(
        long,
        env = "BMON_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:8123",
        hide_env_values = true,
        global = true
    )]
    pub clickhouse_url: String,
    /// ClickHouse database.
    #[arg(
        long,
        env = "BMON_CLICKHOUSE_DATABASE",
        default_value = "bmon",
        hide_env_values = true,
        global = true
    )]
    pub clickhouse_database: String,
    /// ClickHouse user.
    #[arg(
        long,
        env = "BMON_CLICKHOUSE_USER",
        default_value = "default",
        hide_env_values = true,
        global = true
    )]
    pub clickhouse_user: String,
    /// ClickHouse password.
    #[arg(
        long,
        env = "BMON_CLICKHOUSE_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub clickhouse_password: Option<String>,
}

impl Services {
    fn nats_tls(&self) -> Option<process::nats::TlsFiles> {
        let tls = process::nats::TlsFiles {
            ca_file: self.nats_ca_file.clone(),
            cert_file: self.nats_cert_file.clone(),
            key_file: self.nats_key_file.clone(),
        };
        (tls != process::nats::TlsFiles::default()).then_some(tls)
    }

    fn nats_config(&self) -> NatsConfig {
        NatsConfig {
            url: self.nats_url.clone(),
            creds: self.nats_creds.clone(),
            user: self.nats_user.clone(),
            password: Secret::new(self.nats_password.clone().unwrap_or_default()),
            nkey_seed_file: self.nats_nkey_seed_file.clone(),
            tls: self.nats_tls(),
            definitions: None,
        }
    }

    /// The ClickHouse settings as the consumers take them.
    pub fn clickhouse_config(&self) -> ClickHouseConfig {
        ClickHouseConfig {
            url: self.clickhouse_url.clone(),
            database: self.clickhouse_database.clone(),
            user: self.clickhouse_user.clone(),
            password: Secret::new(self.clickhouse_password.clone().unwrap_or_default()),
            compression: Default::default(),
        }
    }

    /// A NATS connection.
    pub async fn nats(&self) -> anyhow::Result<async_nats::Client> {
        consumers::connect_nats(&self.nats_config(), "bmon cli")
            .await
            .context("cannot connect to NATS (--nats-url, BMON_NATS_URL)")
    }

    /// A JetStream context.
    pub async fn jetstream(&self) -> anyhow::Result<jetstream::Context> {
        Ok(jetstream::new(self.nats().await?))
    }

    /// A ClickHouse client on bmon's database.
    pub fn clickhouse(&self) -> clickhouse::Client {
        consumers::clickhouse_client(&self.clickhouse_config())
    }

    /// A ClickHouse client without a database (to create it).
    pub fn clickhouse_server(&self) -> clickhouse::Client {
        consumers::clickhouse_server_client(&self.clickhouse_config())
    }
}

/// The built-in stream and consumer definitions, or those of `path`.
pub fn definitions(path: Option<&std::path::Path>) -> anyhow::Result<Definitions> {
    Definitions::load_or_builtin(path).context("cannot load the stream definitions")
}
