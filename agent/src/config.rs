//! The agent's configuration: serde defaults, then the TOML file, then `BMON_` environment
//! variables (nested keys split on `__`, e.g. `BMON_RPC__URL`).
//!
//! [`Config::load`] reads file and environment; [`Config::from_figment`] is pure (tests build
//! figments from strings). Extraction rejects unknown keys and wrong types, naming the file and
//! the key; [`FileConfig::validate`] then reports every remaining problem at once, before
//! anything connects.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bitcoin::Network;
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use schema::NodeId;
use serde::Deserialize;

use crate::clock::Clock;
use crate::sources::rpc::RpcAuth;
use crate::sources::zmq::{Topic, ZmqEndpoints};

pub use process::Secret;

/// `[rpc]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcSection {
    /// `http://host:port/`.
    pub url: Option<String>,
    /// Path of the node's `.cookie` file.
    pub cookie_file: Option<PathBuf>,
    /// RPC user.
    pub user: Option<String>,
    /// RPC password.
    pub password: Option<Secret>,
    /// Per-call timeout, seconds.
    pub timeout_secs: u64,
}

impl Default for RpcSection {
    fn default() -> Self {
        RpcSection {
            url: None,
            cookie_file: None,
            user: None,
            password: None,
            timeout_secs: 30,
        }
    }
}

/// `[zmq]` as written: one endpoint per topic.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZmqSection {
    /// `-zmqpubsequence` endpoint.
    pub sequence: Option<String>,
    /// `-zmqpubrawblock` endpoint.
    pub rawblock: Option<String>,
    /// `-zmqpubrawtx` endpoint.
    pub rawtx: Option<String>,
}

/// `[nats]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSection {
    /// Server URL(s), comma-separated (the servers of a cluster).
    pub url: String,
    /// A `.creds` file for this node's NATS user.
    pub credentials_file: Option<PathBuf>,
    /// A file with this node's nkey seed (`SU...`), instead of a credentials file.
    pub nkey_seed_file: Option<PathBuf>,
    /// TLS: the CA that signed the servers' certificates, and this agent's client
    /// certificate and key when the servers verify clients.
    pub tls: Option<process::nats::TlsFiles>,
}

impl Default for NatsSection {
    fn default() -> Self {
        NatsSection {
            url: "nats://127.0.0.1:4222".into(),
            credentials_file: None,
            nkey_seed_file: None,
            tls: None,
        }
    }
}

/// `[spool]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolSection {
    /// Directory of the spool segments (default: `spool` in the node's state directory).
    pub dir: Option<PathBuf>,
    /// Upper bound of the spool on disk.
    pub max_bytes: u64,
}

impl Default for SpoolSection {
    fn default() -> Self {
        SpoolSection {
            dir: None,
            max_bytes: 1 << 30,
        }
    }
}

/// `[poll]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollSection {
    /// `node_status` (and `chain_tips` check) interval, seconds.
    pub status_secs: u64,
    /// `mempool_snapshot` interval, seconds.
    pub mempool_secs: u64,
    /// Look up each new mempool transaction's fee (`getmempoolentry`) for `tx_seen`: the
    /// fleet comparison needs fee rates to tell a node's policy from a relay problem.
    pub tx_fees: bool,
    /// `template_snapshot` (`getblocktemplate`) interval, seconds, besides one at each new
    /// tip; 0 turns templates off.
    pub template_secs: u64,
    /// `peer_snapshot` (`getpeerinfo`) interval, seconds; 0 turns it off.
    pub peers_secs: u64,
}

impl Default for PollSection {
    fn default() -> Self {
        PollSection {
            status_secs: 10,
            mempool_secs: 30,
            tx_fees: true,
            template_secs: 30,
            peers_secs: 60,
        }
    }
}

/// `[metrics]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Listen address of `/metrics`.
    pub listen: String,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: "127.0.0.1:9332".into(),
        }
    }
}

/// `[debug_log]` as written (the whole section is optional: without it the agent reads no log).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DebugLogSection {
    /// The node's debug.log.
    pub path: Option<PathBuf>,
    /// Where the follower's position is kept (default: `debuglog.pos` in the node's state
    /// directory, or in `spool.dir` when that is set).
    pub state_file: Option<PathBuf>,
    /// On a fresh install (no state file), read the whole file instead of only new lines.
    pub backfill: bool,
    /// Most lines in one `log_batch` message.
    pub batch_lines: usize,
    /// Most (estimated encoded) bytes in one `log_batch` message.
    pub batch_bytes: usize,
    /// How often the file is checked when it has nothing new, milliseconds.
    pub poll_ms: u64,
}

impl Default for DebugLogSection {
    fn default() -> Self {
        DebugLogSection {
            path: None,
            state_file: None,
            backfill: false,
            batch_lines: 1_000,
            batch_bytes: 256 * 1024,
            poll_ms: 200,
        }
    }
}

/// `[clock]` as written: a simulation and testing aid for simulated fleets such as
/// bmon-simnet's `time_scale`; production agents never set it. When present, every
/// `observed_at` the agent stamps itself is `origin_us + (wall_us - origin_us) * scale`
/// (see [`crate::clock`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockSection {
    /// Wall time (µs since the epoch) at which the agent's and the simulated clock agree.
    pub origin_us: Option<i64>,
    /// Simulated seconds per wall second (positive).
    pub scale: f64,
}

impl Default for ClockSection {
    fn default() -> Self {
        ClockSection {
            origin_us: None,
            scale: 1.0,
        }
    }
}

/// The configuration as written, before validation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Node name (subject token).
    pub node: Option<String>,
    /// `main`/`bitcoin`, `test`/`testnet`, `testnet4`, `signet`, `regtest`.
    pub network: Option<String>,
    /// Directory under which the agent keeps its state, in `<state_dir>/<node>/` (default
    /// [`DEFAULT_STATE_DIR`]).
    pub state_dir: Option<PathBuf>,
    /// RPC.
    pub rpc: RpcSection,
    /// ZMQ.
    pub zmq: ZmqSection,
    /// NATS.
    pub nats: NatsSection,
    /// Disk spool.
    pub spool: SpoolSection,
    /// Poll intervals.
    pub poll: PollSection,
    /// Metrics endpoint.
    pub metrics: MetricsSection,
    /// debug.log (optional).
    pub debug_log: Option<DebugLogSection>,
    /// Simulated clock (optional; simulated fleets only).
    pub clock: Option<ClockSection>,
}

/// Top-level keys the environment may set (other `BMON_` variables belong to other tools).
const ENV_KEYS: &[&str] = &[
    "node",
    "network",
    "state_dir",
    "rpc",
    "zmq",
    "nats",
    "spool",
    "poll",
    "metrics",
    "debug_log",
    "clock",
];

/// One mistake in the configuration, named after what the operator got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    /// `node` is not set.
    #[error("`node` is missing: name this node (it ends every subject it publishes on)")]
    MissingNode,
    /// `node` cannot be a subject token.
    #[error(
        "`node` = {name:?} is not usable: use 1-64 characters from a-z, A-Z, 0-9, '-' and '_'"
    )]
    InvalidNodeName {
        /// The name given.
        name: String,
    },
    /// `network` is not set.
    #[error("`network` is missing: one of main, test, testnet4, signet, regtest")]
    MissingNetwork,
    /// `network` is unknown.
    #[error("`network` = {name:?} is unknown: one of main, test, testnet4, signet, regtest")]
    UnknownNetwork {
        /// The name given.
        name: String,
    },
    /// `rpc.url` is not set.
    #[error("`rpc.url` is missing (e.g. http://127.0.0.1:8332/)")]
    MissingRpcUrl,
    /// `rpc.url` is not an http URL.
    #[error("`rpc.url` = {url:?} is not an http:// URL")]
    InvalidRpcUrl {
        /// The URL given.
        url: String,
    },
    /// Neither cookie nor user/password.
    #[error("no RPC credentials: set `rpc.cookie_file`, or `rpc.user` and `rpc.password`")]
    NoRpcAuth,
    /// Both cookie and user/password.
    #[error("`rpc.cookie_file` and `rpc.user`/`rpc.password` are both set: keep one")]
    ConflictingRpcAuth,
    /// Only one of user and password.
    #[error("`rpc.user` and `rpc.password` go together: set both")]
    IncompleteRpcUserPassword,
    /// A zero timeout.
    #[error("`rpc.timeout_secs` must be at least 1")]
    ZeroRpcTimeout,
    /// A topic has no endpoint.
    #[error(
        "`zmq.{topic}` is missing: the node's -zmqpub{topic} endpoint (e.g. tcp://127.0.0.1:28332)"
    )]
    MissingZmqEndpoint {
        /// The topic.
        topic: &'static str,
    },
    /// A topic's endpoint is not a ZMQ endpoint.
    #[error("`zmq.{topic}` = {endpoint:?} is not a tcp://, ipc:// or inproc:// endpoint")]
    InvalidZmqEndpoint {
        /// The topic.
        topic: &'static str,
        /// The endpoint given.
        endpoint: String,
    },
    /// `nats.url` does not look like a NATS URL.
    #[error("`nats.url` = {url:?} is not a nats://, tls://, ws:// or host:port address")]
    InvalidNatsUrl {
        /// The URL given.
        url: String,
    },
    /// The spool cannot hold anything.
    #[error("`spool.max_bytes` = {max_bytes} is too small: at least {min}")]
    SpoolTooSmall {
        /// The bound given.
        max_bytes: u64,
        /// The minimum.
        min: u64,
    },
    /// A zero poll interval.
    #[error("`poll.{name}` must be at least 1 second")]
    ZeroInterval {
        /// Which interval.
        name: &'static str,
    },
    /// `metrics.listen` is not `ip:port`.
    #[error("`metrics.listen` = {addr:?} is not an ip:port address")]
    InvalidMetricsAddress {
        /// The address given.
        addr: String,
    },
    /// `[debug_log]` without `path`.
    #[error(
        "`debug_log.path` is missing: the node's debug.log (or remove the [debug_log] section)"
    )]
    MissingDebugLogPath,
    /// `debug_log.batch_lines` is zero.
    #[error("`debug_log.batch_lines` must be at least 1")]
    ZeroBatchLines,
    /// `debug_log.batch_bytes` is out of range (a message must stay well under NATS' 1 MiB).
    #[error("`debug_log.batch_bytes` = {value} is out of range: {min} to {max}")]
    BatchBytesOutOfRange {
        /// The value given.
        value: usize,
        /// Smallest accepted.
        min: usize,
        /// Largest accepted.
        max: usize,
    },
    /// `debug_log.poll_ms` is zero.
    #[error("`debug_log.poll_ms` must be at least 1")]
    ZeroLogPoll,
    /// `[clock]` without `origin_us`.
    #[error(
        "`clock.origin_us` is missing: the wall time (µs since the epoch) at which the simulated \
         clock starts (or remove the [clock] section: production agents never set it)"
    )]
    MissingClockOrigin,
    /// `clock.scale` is not a positive finite number.
    #[error("`clock.scale` = {value} must be a positive finite number")]
    InvalidClockScale {
        /// The value given, as written out.
        value: String,
    },
}

/// Why the configuration cannot be used. The binary prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be read or has wrong keys or types (the message names
    /// the file and the key).
    #[error("cannot read the configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// The values were read but do not make a usable configuration.
    #[error("{} configuration problem(s): {}", .0.len(), join(.0))]
    Invalid(Vec<ConfigProblem>),
}

fn join(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// RPC settings, checked.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// URL.
    pub url: String,
    /// Credentials.
    pub auth: RpcAuth,
    /// Per-call timeout.
    pub timeout: Duration,
}

/// NATS settings, checked.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated.
    pub url: String,
    /// Credentials file.
    pub credentials_file: Option<PathBuf>,
    /// nkey seed file.
    pub nkey_seed_file: Option<PathBuf>,
    /// TLS files.
    pub tls: Option<process::nats::TlsFiles>,
}

/// Spool settings, checked.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// Directory.
    pub dir: PathBuf,
    /// Upper bound in bytes.
    pub max_bytes: u64,
    /// Where an older agent kept its spool by default (one directory for every agent of the
    /// host), when `spool.dir` is not set: never read; reported at start-up if it holds events.
    pub legacy_dir: Option<PathBuf>,
}

/// debug.log settings, checked.
#[derive(Debug, Clone)]
pub struct DebugLogConfig {
    /// The node's debug.log.
    pub path: PathBuf,
    /// The follower's state file.
    pub state_file: PathBuf,
    /// Where an older agent kept its position by default (`debuglog.pos` beside the spool
    /// directory, shared by agents whose spools are siblings), when `state_file` is not set:
    /// taken over only if it is a position in this node's debug.log (see
    /// [`crate::state::adopt_legacy_position`]), else reported at start-up.
    pub legacy_state_file: Option<PathBuf>,
    /// Read the whole file on a fresh install.
    pub backfill: bool,
    /// Most lines in one `log_batch`.
    pub batch_lines: usize,
    /// Most estimated encoded bytes in one `log_batch`.
    pub batch_bytes: usize,
    /// Wait between checks of an idle file.
    pub poll_interval: Duration,
}

/// The validated configuration the agent runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Node name.
    pub node: NodeId,
    /// Chain (for the subsidy schedule).
    pub network: Network,
    /// RPC.
    pub rpc: RpcConfig,
    /// ZMQ endpoints.
    pub zmq: ZmqEndpoints,
    /// NATS.
    pub nats: NatsConfig,
    /// Spool.
    pub spool: SpoolConfig,
    /// `node_status` / `chain_tips` interval.
    pub status_interval: Duration,
    /// `mempool_snapshot` interval.
    pub mempool_interval: Duration,
    /// Whether `tx_seen` carries the fee (`getmempoolentry`).
    pub tx_fees: bool,
    /// `template_snapshot` interval (and one at each new tip); `None`: no templates.
    pub template_interval: Option<Duration>,
    /// `peer_snapshot` interval; `None`: no peer snapshots.
    pub peers_interval: Option<Duration>,
    /// `/metrics` listen address.
    pub metrics_listen: SocketAddr,
    /// debug.log, when configured.
    pub debug_log: Option<DebugLogConfig>,
    /// The clock events are stamped with: the wall clock unless `[clock]` is set.
    pub clock: Clock,
}

/// Smallest accepted spool bound.
pub const MIN_SPOOL_BYTES: u64 = 64 * 1024;

/// Smallest accepted `debug_log.batch_bytes`.
pub const MIN_LOG_BATCH_BYTES: usize = 4 * 1024;
/// Largest accepted `debug_log.batch_bytes` (NATS' default `max_payload` is 1 MiB).
pub const MAX_LOG_BATCH_BYTES: usize = 512 * 1024;

/// Default `state_dir`: each agent keeps its state in `/var/lib/bmon-agent/<node>/`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/bmon-agent";

/// The spool directory's default before state was kept per node.
const LEGACY_SPOOL_DIR: &str = "/var/lib/bmon-agent/spool";

/// Name of the debug.log position file.
const POSITION_FILE: &str = "debuglog.pos";

/// The node's own directory: `<state_dir>/<node>`.
fn node_state_dir(state_dir: &Path, node: &NodeId) -> PathBuf {
    state_dir.join(node.as_str())
}

/// The position file's default before state was kept per node: `debuglog.pos` beside the
/// spool directory.
fn legacy_state_file(spool_dir: &Path) -> PathBuf {
    match spool_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(POSITION_FILE),
        _ => PathBuf::from(POSITION_FILE),
    }
}

/// Parses a chain name as Core (`main`, `test`) or rust-bitcoin (`bitcoin`, `testnet`) spell it.
pub fn parse_network(name: &str) -> Option<Network> {
    match name {
        "main" | "mainnet" | "bitcoin" => Some(Network::Bitcoin),
        "test" | "testnet" | "testnet3" => Some(Network::Testnet),
        "testnet4" => Some(Network::Testnet4),
        "signet" => Some(Network::Signet),
        "regtest" => Some(Network::Regtest),
        _ => None,
    }
}

impl Config {
    /// Reads `path` (TOML) and the `BMON_` environment over the defaults, then validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::from_figment(Config::figment(path))
    }

    /// The figment [`Config::load`] reads: defaults, the file, the environment.
    pub fn figment(path: &Path) -> Figment {
        Figment::new().merge(Toml::file_exact(path)).merge(
            Env::prefixed("BMON_").split("__").filter(|k| {
                let top = k.as_str().split('.').next().unwrap_or_default();
                ENV_KEYS.iter().any(|e| e.eq_ignore_ascii_case(top))
            }),
        )
    }

    /// Extracts and validates (pure).
    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let raw: FileConfig = figment.extract().map_err(Box::new)?;
        raw.validate()
    }
}

impl FileConfig {
    /// Checks everything and returns the typed configuration, or every problem found.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let node = match &self.node {
            None => {
                problems.push(ConfigProblem::MissingNode);
                None
            }
            Some(n) => match NodeId::new(n.clone()) {
                Ok(id) => Some(id),
                Err(_) => {
                    problems.push(ConfigProblem::InvalidNodeName { name: n.clone() });
                    None
                }
            },
        };
        let network = match &self.network {
            None => {
                problems.push(ConfigProblem::MissingNetwork);
                None
            }
            Some(n) => {
                let parsed = parse_network(n);
                if parsed.is_none() {
                    problems.push(ConfigProblem::UnknownNetwork { name: n.clone() });
                }
                parsed
            }
        };
        match &self.rpc.url {
            None => problems.push(ConfigProblem::MissingRpcUrl),
            Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                problems.push(ConfigProblem::InvalidRpcUrl { url: u.clone() })
            }
            Some(_) => {}
        }
        let auth = match (&self.rpc.cookie_file, &self.rpc.user, &self.rpc.password) {
            (Some(c), None, None) => Some(RpcAuth::Cookie(c.clone())),
            (None, Some(u), Some(p)) => Some(RpcAuth::UserPass {
                user: u.clone(),
                password: p.clone(),
            }),
            (None, None, None) => {
                problems.push(ConfigProblem::NoRpcAuth);
                None
            }
            (Some(_), _, _) => {
                problems.push(ConfigProblem::ConflictingRpcAuth);
                None
            }
            (None, _, _) => {
                problems.push(ConfigProblem::IncompleteRpcUserPassword);
                None
            }
        };
        if self.rpc.timeout_secs == 0 {
            problems.push(ConfigProblem::ZeroRpcTimeout);
        }
        let mut endpoints = Vec::new();
        for (topic, ep) in [
            (Topic::Sequence, &self.zmq.sequence),
            (Topic::RawBlock, &self.zmq.rawblock),
            (Topic::RawTx, &self.zmq.rawtx),
        ] {
            match ep {
                None => problems.push(ConfigProblem::MissingZmqEndpoint {
                    topic: topic.as_str(),
                }),
                Some(e)
                    if !["tcp://", "ipc://", "inproc://"]
                        .iter()
                        .any(|p| e.starts_with(p)) =>
                {
                    problems.push(ConfigProblem::InvalidZmqEndpoint {
                        topic: topic.as_str(),
                        endpoint: e.clone(),
                    })
                }
                Some(e) => endpoints.push((topic, e.clone())),
            }
        }
        let nats_ok = self.nats.url.split(',').all(|u| {
            let u = u.trim();
            ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|p| u.starts_with(p) && u.len() > p.len())
                || (!u.contains("://") && u.contains(':'))
        });
        if !nats_ok {
            problems.push(ConfigProblem::InvalidNatsUrl {
                url: self.nats.url.clone(),
            });
        }
        if self.spool.max_bytes < MIN_SPOOL_BYTES {
            problems.push(ConfigProblem::SpoolTooSmall {
                max_bytes: self.spool.max_bytes,
                min: MIN_SPOOL_BYTES,
            });
        }
        if self.poll.status_secs == 0 {
            problems.push(ConfigProblem::ZeroInterval {
                name: "status_secs",
            });
        }
        if self.poll.mempool_secs == 0 {
            problems.push(ConfigProblem::ZeroInterval {
                name: "mempool_secs",
            });
        }
        let metrics_listen = match self.metrics.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                problems.push(ConfigProblem::InvalidMetricsAddress {
                    addr: self.metrics.listen.clone(),
                });
                None
            }
        };
        // What the agent keeps defaults to its node's own directory, so agents of different
        // nodes on one host never share a file.
        let state_root = self
            .state_dir
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_STATE_DIR));
        let node_dir = node.as_ref().map(|n| node_state_dir(state_root, n));
        let spool_dir = match (&self.spool.dir, &node_dir) {
            (Some(dir), _) => Some(dir.clone()),
            (None, Some(node_dir)) => Some(node_dir.join("spool")),
            (None, None) => None,
        };
        let debug_log = self.debug_log.as_ref().and_then(|d| {
            let before = problems.len();
            if d.path.is_none() {
                problems.push(ConfigProblem::MissingDebugLogPath);
            }
            if d.batch_lines == 0 {
                problems.push(ConfigProblem::ZeroBatchLines);
            }
            if !(MIN_LOG_BATCH_BYTES..=MAX_LOG_BATCH_BYTES).contains(&d.batch_bytes) {
                problems.push(ConfigProblem::BatchBytesOutOfRange {
                    value: d.batch_bytes,
                    min: MIN_LOG_BATCH_BYTES,
                    max: MAX_LOG_BATCH_BYTES,
                });
            }
            if d.poll_ms == 0 {
                problems.push(ConfigProblem::ZeroLogPoll);
            }
            let path = d.path.clone()?;
            // Beside the spool in the node's directory, or inside a spool directory given to
            // this agent: never in a directory other agents' spools share.
            let (state_file, legacy_state_file) = match (&d.state_file, &self.spool.dir) {
                (Some(file), _) => (file.clone(), None),
                (None, Some(spool)) => (spool.join(POSITION_FILE), Some(legacy_state_file(spool))),
                (None, None) => (
                    node_dir.as_ref()?.join(POSITION_FILE),
                    Some(legacy_state_file(Path::new(LEGACY_SPOOL_DIR))),
                ),
            };
            (problems.len() == before).then(|| DebugLogConfig {
                path,
                state_file,
                legacy_state_file,
                backfill: d.backfill,
                batch_lines: d.batch_lines,
                batch_bytes: d.batch_bytes,
                poll_interval: Duration::from_millis(d.poll_ms),
            })
        });
        let clock = match &self.clock {
            None => Some(Clock::wall()),
            Some(c) => {
                if c.origin_us.is_none() {
                    problems.push(ConfigProblem::MissingClockOrigin);
                }
                let origin = schema::UnixMicros(c.origin_us.unwrap_or_default());
                match Clock::scaled(origin, c.scale) {
                    Ok(clock) => c.origin_us.map(|_| clock),
                    Err(_) => {
                        problems.push(ConfigProblem::InvalidClockScale {
                            value: c.scale.to_string(),
                        });
                        None
                    }
                }
            }
        };
        match (
            node,
            network,
            &self.rpc.url,
            auth,
            metrics_listen,
            clock,
            spool_dir,
        ) {
            (
                Some(node),
                Some(network),
                Some(url),
                Some(auth),
                Some(metrics_listen),
                Some(clock),
                Some(spool_dir),
            ) if problems.is_empty() => Ok(Config {
                node,
                network,
                rpc: RpcConfig {
                    url: url.clone(),
                    auth,
                    timeout: Duration::from_secs(self.rpc.timeout_secs),
                },
                zmq: ZmqEndpoints { endpoints },
                nats: NatsConfig {
                    url: self.nats.url.clone(),
                    credentials_file: self.nats.credentials_file.clone(),
                    nkey_seed_file: self.nats.nkey_seed_file.clone(),
                    tls: self.nats.tls.clone(),
                },
                spool: SpoolConfig {
                    legacy_dir: self
                        .spool
                        .dir
                        .is_none()
                        .then(|| PathBuf::from(LEGACY_SPOOL_DIR))
                        .filter(|l| *l != spool_dir),
                    dir: spool_dir,
                    max_bytes: self.spool.max_bytes,
                },
                status_interval: Duration::from_secs(self.poll.status_secs),
                mempool_interval: Duration::from_secs(self.poll.mempool_secs),
                tx_fees: self.poll.tx_fees,
                template_interval: (self.poll.template_secs > 0)
                    .then(|| Duration::from_secs(self.poll.template_secs)),
                peers_interval: (self.poll.peers_secs > 0)
                    .then(|| Duration::from_secs(self.poll.peers_secs)),
                metrics_listen,
                debug_log,
                clock,
            }),
            _ => Err(ConfigError::Invalid(problems)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    const GOOD: &str = r#"
        node = "node0"
        network = "regtest"
        [rpc]
        url = "http://127.0.0.1:18443/"
        user = "bmon"
        password = "hunter2"
        [zmq]
        sequence = "tcp://127.0.0.1:28332"
        rawblock = "tcp://127.0.0.1:28333"
        rawtx = "tcp://127.0.0.1:28333"
    "#;

    fn from(toml: &str) -> Result<Config, ConfigError> {
        Config::from_figment(Figment::from(Toml::string(toml)))
    }

    fn problems(toml: &str) -> Vec<ConfigProblem> {
        match from(toml) {
            Err(ConfigError::Invalid(p)) => p,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn with(extra_top: &str, section_edit: (&str, &str)) -> String {
        let base = GOOD.replace(section_edit.0, section_edit.1);
        format!("{extra_top}\n{base}")
    }

    #[test]
    fn the_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let cfg = Config::from_figment(Figment::from(Toml::file_exact(&path))).unwrap();
        assert_eq!(cfg.node.as_str(), "node0");
        assert_eq!(cfg.status_interval, Duration::from_secs(10));
        assert_eq!(cfg.mempool_interval, Duration::from_secs(30));
        assert_eq!(
            cfg.spool.dir,
            PathBuf::from("/var/lib/bmon-agent/node0/spool")
        );
        let d = cfg.debug_log.expect("the example follows a debug.log");
        assert_eq!(
            d.state_file,
            PathBuf::from("/var/lib/bmon-agent/node0/debuglog.pos")
        );
    }

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let cfg = from(GOOD).unwrap();
        assert_eq!(cfg.network, Network::Regtest);
        assert_eq!(cfg.nats.url, "nats://127.0.0.1:4222");
        assert_eq!(cfg.spool.max_bytes, 1 << 30);
        assert_eq!(cfg.rpc.timeout, Duration::from_secs(30));
        assert_eq!(cfg.zmq.endpoints.len(), 3);
        // A template on each new tip and every 30 s; peers every minute.
        assert_eq!(cfg.template_interval, Some(Duration::from_secs(30)));
        assert_eq!(cfg.peers_interval, Some(Duration::from_secs(60)));
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let cfg = from(GOOD).unwrap();
        let text = format!("{cfg:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("***"));
    }

    #[test]
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("agent.toml", GOOD)?;
            jail.set_env("BMON_NODE", "from-env");
            jail.set_env("BMON_POLL__STATUS_SECS", "3");
            jail.set_env("BMON_FIXTURES", "/elsewhere"); // another tool's variable
            let cfg = Config::load(Path::new("agent.toml")).map_err(|e| e.to_string())?;
            assert_eq!(cfg.node.as_str(), "from-env");
            assert_eq!(cfg.status_interval, Duration::from_secs(3));
            Ok(())
        });
    }

    #[test]
    fn a_bad_file_names_the_file_and_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "bad.toml",
                &GOOD.replace("[rpc]", "[rpc]\ntimeout_secs = \"soon\""),
            )?;
            let err = Config::load(Path::new("bad.toml")).unwrap_err().to_string();
            assert!(err.contains("bad.toml"), "{err}");
            assert!(err.contains("rpc.timeout_secs"), "{err}");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", &GOOD.replace("[rpc]", "[rpc]\nurll = \"x\""))?;
            let err = Config::load(Path::new("typo.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("urll") && err.contains("typo.toml"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_file_is_a_load_error() {
        assert!(matches!(
            Config::load(Path::new("/nonexistent/agent.toml")),
            Err(ConfigError::Load(_))
        ));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let p = problems("[poll]\nstatus_secs = 0\nmempool_secs = 0\n[spool]\nmax_bytes = 10");
        for expected in [
            ConfigProblem::MissingNode,
            ConfigProblem::MissingNetwork,
            ConfigProblem::MissingRpcUrl,
            ConfigProblem::NoRpcAuth,
            ConfigProblem::MissingZmqEndpoint { topic: "sequence" },
            ConfigProblem::MissingZmqEndpoint { topic: "rawblock" },
            ConfigProblem::MissingZmqEndpoint { topic: "rawtx" },
            ConfigProblem::SpoolTooSmall {
                max_bytes: 10,
                min: MIN_SPOOL_BYTES,
            },
            ConfigProblem::ZeroInterval {
                name: "status_secs",
            },
            ConfigProblem::ZeroInterval {
                name: "mempool_secs",
            },
        ] {
            assert!(p.contains(&expected), "{expected:?} not in {p:?}");
        }
    }

    #[test]
    fn each_bad_value_has_its_own_problem() {
        let cases: Vec<(String, ConfigProblem)> = vec![
            (
                GOOD.replace("\"node0\"", "\"node.0\""),
                ConfigProblem::InvalidNodeName {
                    name: "node.0".into(),
                },
            ),
            (
                GOOD.replace("\"regtest\"", "\"moon\""),
                ConfigProblem::UnknownNetwork {
                    name: "moon".into(),
                },
            ),
            (
                GOOD.replace("http://127.0.0.1:18443/", "127.0.0.1:18443"),
                ConfigProblem::InvalidRpcUrl {
                    url: "127.0.0.1:18443".into(),
                },
            ),
            (
                GOOD.replace("user = \"bmon\"", "cookie_file = \"/c\"\nuser = \"bmon\""),
                ConfigProblem::ConflictingRpcAuth,
            ),
            (
                GOOD.replace("password = \"hunter2\"", ""),
                ConfigProblem::IncompleteRpcUserPassword,
            ),
            (
                GOOD.replace("[rpc]", "[rpc]\ntimeout_secs = 0"),
                ConfigProblem::ZeroRpcTimeout,
            ),
            (
                GOOD.replace("tcp://127.0.0.1:28332", "127.0.0.1:28332"),
                ConfigProblem::InvalidZmqEndpoint {
                    topic: "sequence",
                    endpoint: "127.0.0.1:28332".into(),
                },
            ),
            (
                with("", ("[zmq]", "[nats]\nurl = \"http://x\"\n[zmq]")),
                ConfigProblem::InvalidNatsUrl {
                    url: "http://x".into(),
                },
            ),
            (
                with("", ("[zmq]", "[metrics]\nlisten = \"localhost\"\n[zmq]")),
                ConfigProblem::InvalidMetricsAddress {
                    addr: "localhost".into(),
                },
            ),
        ];
        for (toml, expected) in cases {
            assert_eq!(problems(&toml), vec![expected]);
        }
    }

    #[test]
    fn without_a_debug_log_section_no_log_is_read() {
        assert!(from(GOOD).unwrap().debug_log.is_none());
    }

    #[test]
    fn the_debug_log_section_fills_its_defaults() {
        let toml = format!("{GOOD}\n[debug_log]\npath = \"/var/lib/bitcoind/debug.log\"\n");
        let d = from(&toml).unwrap().debug_log.unwrap();
        assert_eq!(d.path, PathBuf::from("/var/lib/bitcoind/debug.log"));
        assert_eq!(
            d.state_file,
            PathBuf::from("/var/lib/bmon-agent/node0/debuglog.pos")
        );
        assert!(!d.backfill);
        assert_eq!(d.batch_lines, 1_000);
        assert_eq!(d.batch_bytes, 256 * 1024);
        assert_eq!(d.poll_interval, Duration::from_millis(200));
    }

    /// `node`'s configuration with `top` keys, `sections` and a `[debug_log]` section.
    fn node_with_log(node: &str, top: &str, sections: &str) -> Config {
        let toml = GOOD.replace("\"node0\"", &format!("\"{node}\""));
        from(&format!(
            "{top}\n{toml}\n{sections}\n[debug_log]\npath = \"/l/debug.log\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn each_node_keeps_its_state_in_its_own_directory() {
        let paths = |c: Config| (c.spool.dir, c.debug_log.unwrap().state_file);
        assert_eq!(
            paths(node_with_log("node0", "", "")),
            (
                PathBuf::from("/var/lib/bmon-agent/node0/spool"),
                PathBuf::from("/var/lib/bmon-agent/node0/debuglog.pos")
            )
        );
        assert_eq!(
            paths(node_with_log("node1", "state_dir = \"/srv/bmon\"", "")),
            (
                PathBuf::from("/srv/bmon/node1/spool"),
                PathBuf::from("/srv/bmon/node1/debuglog.pos")
            )
        );
        // Four agents of one host, configured alike but for the node name, share nothing.
        let mut all: Vec<PathBuf> = ["a", "b", "c", "d"]
            .iter()
            .flat_map(|n| {
                let (spool, pos) = paths(node_with_log(n, "", ""));
                [spool, pos]
            })
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 8);
    }

    #[test]
    fn explicit_state_paths_are_kept() {
        let toml = format!(
            "{GOOD}\n[spool]\ndir = \"/data/spool-node0\"\n[debug_log]\npath = \"/l\"\nstate_file = \"/data/node0.pos\"\n"
        );
        let cfg = from(&toml).unwrap();
        assert_eq!(cfg.spool.dir, PathBuf::from("/data/spool-node0"));
        assert_eq!(cfg.spool.legacy_dir, None);
        let d = cfg.debug_log.unwrap();
        assert_eq!(d.state_file, PathBuf::from("/data/node0.pos"));
        assert_eq!(d.legacy_state_file, None);
    }

    #[test]
    fn the_position_goes_inside_an_explicit_spool_directory_not_beside_it() {
        // Sibling spools under one parent used to share `<parent>/debuglog.pos`.
        let cfg = node_with_log("node2", "", "[spool]\ndir = \"/data/spool-node2\"");
        assert_eq!(cfg.spool.dir, PathBuf::from("/data/spool-node2"));
        let d = cfg.debug_log.unwrap();
        assert_eq!(
            d.state_file,
            PathBuf::from("/data/spool-node2/debuglog.pos")
        );
    }

    #[test]
    fn the_old_shared_defaults_are_known_for_the_start_up_check() {
        // Sibling spools under one parent used to share `<parent>/debuglog.pos`.
        let cfg = node_with_log("node2", "", "[spool]\ndir = \"/data/spool-node2\"");
        assert_eq!(
            cfg.debug_log.unwrap().legacy_state_file,
            Some(PathBuf::from("/data/debuglog.pos"))
        );
        // Without paths: the spool and position every agent of the host used to share.
        let cfg = node_with_log("node0", "", "");
        assert_eq!(
            cfg.spool.legacy_dir,
            Some(PathBuf::from("/var/lib/bmon-agent/spool"))
        );
        assert_eq!(
            cfg.debug_log.unwrap().legacy_state_file,
            Some(PathBuf::from("/var/lib/bmon-agent/debuglog.pos"))
        );
    }

    #[test]
    fn the_state_dir_can_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("agent.toml", GOOD)?;
            jail.set_env("BMON_STATE_DIR", "/run/bmon");
            let cfg = Config::load(Path::new("agent.toml")).map_err(|e| e.to_string())?;
            assert_eq!(cfg.spool.dir, PathBuf::from("/run/bmon/node0/spool"));
            Ok(())
        });
    }

    #[test]
    fn every_debug_log_key_is_read() {
        let toml = format!(
            "{GOOD}\n[debug_log]\npath = \"/l/debug.log\"\nstate_file = \"/s/pos\"\nbackfill = true\nbatch_lines = 10\nbatch_bytes = 8192\npoll_ms = 50\n"
        );
        let d = from(&toml).unwrap().debug_log.unwrap();
        assert_eq!(d.state_file, PathBuf::from("/s/pos"));
        assert!(d.backfill);
        assert_eq!((d.batch_lines, d.batch_bytes), (10, 8192));
        assert_eq!(d.poll_interval, Duration::from_millis(50));
    }

    #[test]
    fn a_bad_debug_log_section_reports_every_problem() {
        let toml =
            format!("{GOOD}\n[debug_log]\nbatch_lines = 0\nbatch_bytes = 2000000\npoll_ms = 0\n");
        assert_eq!(
            problems(&toml),
            vec![
                ConfigProblem::MissingDebugLogPath,
                ConfigProblem::ZeroBatchLines,
                ConfigProblem::BatchBytesOutOfRange {
                    value: 2_000_000,
                    min: MIN_LOG_BATCH_BYTES,
                    max: MAX_LOG_BATCH_BYTES,
                },
                ConfigProblem::ZeroLogPoll,
            ]
        );
    }

    #[test]
    fn the_debug_log_path_can_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("agent.toml", GOOD)?;
            jail.set_env("BMON_DEBUG_LOG__PATH", "/data/debug.log");
            let cfg = Config::load(Path::new("agent.toml")).map_err(|e| e.to_string())?;
            let d = cfg.debug_log.expect("debug_log from the environment");
            assert_eq!(d.path, PathBuf::from("/data/debug.log"));
            Ok(())
        });
    }

    #[test]
    fn without_a_clock_section_events_use_the_wall_clock() {
        let cfg = from(GOOD).unwrap();
        assert_eq!(cfg.clock, Clock::wall());
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let example = Config::from_figment(Figment::from(Toml::file_exact(&path))).unwrap();
        assert!(
            !example.clock.is_scaled(),
            "the example leaves [clock] commented out"
        );
    }

    #[test]
    fn the_clock_section_maps_the_wall_clock_onto_a_simulated_one() {
        let origin = 1_767_225_600_000_000i64;
        let toml = format!("{GOOD}\n[clock]\norigin_us = {origin}\nscale = 20\n");
        let clock = from(&toml).unwrap().clock;
        assert!(clock.is_scaled());
        assert_eq!(clock.origin(), Some(schema::UnixMicros(origin)));
        assert_eq!(
            clock.at(schema::UnixMicros(origin + 1_000_000)),
            schema::UnixMicros(origin + 20_000_000)
        );
        let toml = format!("{GOOD}\n[clock]\norigin_us = {origin}\nscale = 2.5\n");
        assert_eq!(from(&toml).unwrap().clock.scale(), 2.5);
    }

    #[test]
    fn the_clock_scale_defaults_to_one() {
        let toml = format!("{GOOD}\n[clock]\norigin_us = 5\n");
        let clock = from(&toml).unwrap().clock;
        assert!(clock.is_scaled());
        assert_eq!(clock.scale(), 1.0);
        assert_eq!(
            clock.at(schema::UnixMicros(1_000)),
            schema::UnixMicros(1_000)
        );
    }

    #[test]
    fn a_clock_section_needs_an_origin_and_a_positive_finite_scale() {
        assert_eq!(
            problems(&format!("{GOOD}\n[clock]\nscale = 20\n")),
            vec![ConfigProblem::MissingClockOrigin]
        );
        assert_eq!(
            problems(&format!("{GOOD}\n[clock]\nscale = 0\n")),
            vec![
                ConfigProblem::MissingClockOrigin,
                ConfigProblem::InvalidClockScale { value: "0".into() },
            ]
        );
        for (bad, shown) in [("-2", "-2"), ("nan", "NaN"), ("inf", "inf"), ("0.0", "0")] {
            let toml = format!("{GOOD}\n[clock]\norigin_us = 1\nscale = {bad}\n");
            assert_eq!(
                problems(&toml),
                vec![ConfigProblem::InvalidClockScale {
                    value: shown.into()
                }],
                "scale = {bad}"
            );
        }
        let err = from(&format!("{GOOD}\n[clock]\norigin_us = 1\nspeed = 2\n")).unwrap_err();
        assert!(err.to_string().contains("speed"), "{err}");
    }

    #[test]
    fn the_clock_can_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("agent.toml", GOOD)?;
            jail.set_env("BMON_CLOCK__ORIGIN_US", "1000000");
            jail.set_env("BMON_CLOCK__SCALE", "20");
            let cfg = Config::load(Path::new("agent.toml")).map_err(|e| e.to_string())?;
            assert_eq!(
                cfg.clock.at(schema::UnixMicros(2_000_000)),
                schema::UnixMicros(21_000_000)
            );
            Ok(())
        });
    }

    #[test]
    fn cookie_auth_is_accepted_alone() {
        let toml = GOOD
            .replace(
                "user = \"bmon\"",
                "cookie_file = \"/var/lib/bitcoind/.cookie\"",
            )
            .replace("password = \"hunter2\"", "");
        let cfg = from(&toml).unwrap();
        assert!(matches!(cfg.rpc.auth, RpcAuth::Cookie(_)));
    }
}
