//! The end-to-end harness: a simnet fleet, one `bmon-agent` per emulated node, NATS JetStream,
//! `ch-writer` and ClickHouse, all real and all in this process or started by it, plus helpers to
//! read the results back and compare them with simnet's truth.
//!
//! [`core_run`] drives the same pipeline from a fleet of real Bitcoin Core regtest nodes.
//!
//! This crate is test-only (`publish = false`); its tests live in `tests/`.

pub mod core_run;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::Figment;
use simnet::{Fleet, Scenario, TruthRecord, TruthSink};
use test_support::{ClickHouse, NatsServer};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Detector thresholds for short simnet runs with a block every 2 s (the defaults are sized for
/// mainnet's 10 minutes), for tests that run every detector but judge the pipeline, not one
/// detector's timing.
pub const SHORT_RUN_DETECTORS: &str = r#"
[detectors.chain]
rapid_run_blocks = 1000
selfish_release_window_secs = 5
selfish_check_secs = 1
[detectors.inflation]
network = "regtest"
[detectors.health]
tip_max_age_secs = 60
silent_after_secs = 60
peers_min_baseline = 1000
alert_on_ibd = false
[detectors.propagation]
block_settle_secs = 4
tx_settle_secs = 4
tx_alerts = false
"#;

/// What a run starts besides simnet, the agents and `ch-writer`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Every emulated node writes a debug.log and its agent follows it.
    pub debug_logs: bool,
    /// Start the five detector consumers and the Alertmanager router, with a real Alertmanager.
    pub detectors: bool,
    /// Extra TOML for every consumer's config (`[detectors.*]` thresholds).
    pub consumer_toml: String,
    /// Agent mempool poll interval, seconds (default 5).
    pub mempool_secs: Option<u64>,
    /// Agent `getpeerinfo` poll interval, seconds (default: the agent's, 60).
    pub peers_secs: Option<u64>,
    /// Stamp agent events on simnet's clock (accelerated scenarios).
    pub agent_clock: bool,
    /// Run NATS as a cluster of this many servers, every stream with as many replicas
    /// (0 or 1: one server).
    pub nats_cluster: usize,
}

/// What an agent needs to know of the node it watches: a simnet node or a real bitcoind.
#[derive(Debug, Clone)]
pub struct AgentTarget {
    /// Node name.
    pub name: String,
    /// `http://127.0.0.1:PORT`.
    pub rpc_url: String,
    /// RPC user.
    pub rpc_user: String,
    /// RPC password.
    pub rpc_password: String,
    /// `-zmqpubsequence` address.
    pub zmq_sequence: String,
    /// `-zmqpubrawblock` address.
    pub zmq_rawblock: String,
    /// `-zmqpubrawtx` address.
    pub zmq_rawtx: String,
    /// The node's debug.log, when the agent should follow it.
    pub debug_log: Option<std::path::PathBuf>,
    /// A simulated clock (origin µs, scale), used when [`Options::agent_clock`] is set.
    pub clock: Option<(u64, f64)>,
}

impl From<&simnet::NodeEndpoints> for AgentTarget {
    fn from(n: &simnet::NodeEndpoints) -> AgentTarget {
        AgentTarget {
            name: n.name.clone(),
            rpc_url: n.rpc_url.clone(),
            rpc_user: n.rpc_user.clone(),
            rpc_password: n.rpc_password.clone(),
            zmq_sequence: n.zmq.sequence.clone(),
            zmq_rawblock: n.zmq.rawblock.clone(),
            zmq_rawtx: n.zmq.rawtx.clone(),
            debug_log: n.debug_log.clone(),
            clock: n.clock.as_ref().map(|c| (c.start_us, c.time_scale)),
        }
    }
}

impl From<&test_support::CoreNode> for AgentTarget {
    fn from(n: &test_support::CoreNode) -> AgentTarget {
        AgentTarget {
            name: n.name.clone(),
            rpc_url: n.rpc_url(),
            rpc_user: test_support::bitcoind::RPC_USER.to_string(),
            rpc_password: test_support::bitcoind::RPC_PASSWORD.to_string(),
            zmq_sequence: n.zmq_sequence.clone(),
            zmq_rawblock: n.zmq_rawblock.clone(),
            zmq_rawtx: n.zmq_rawtx.clone(),
            debug_log: Some(n.debug_log()),
            clock: None,
        }
    }
}

/// Everything one end-to-end run needs, stopped on drop (services) or by [`Pipeline::stop`].
pub struct Pipeline {
    /// The NATS server (tests may stop and restart it); the first of a cluster.
    pub nats: NatsServer,
    /// The other servers of a cluster ([`Options::nats_cluster`]).
    pub nats_peers: Vec<NatsServer>,
    /// The ClickHouse server.
    pub clickhouse: ClickHouse,
    /// The test's own database.
    pub database: String,
    /// The emulated fleet.
    pub fleet: Option<Fleet>,
    agents: Vec<(CancellationToken, JoinHandle<()>)>,
    agent_metrics: BTreeMap<String, agent::Metrics>,
    writer: Option<(CancellationToken, JoinHandle<()>)>,
    spool_root: tempfile::TempDir,
    definitions: std::path::PathBuf,
    consumers: Vec<(CancellationToken, JoinHandle<()>)>,
    opts: Options,
    /// The Alertmanager alerts are delivered to, when detectors run.
    pub alertmanager: Option<test_support::Alertmanager>,
}

impl Pipeline {
    /// Starts NATS, takes a fresh ClickHouse database, runs `bmon setup`'s work, starts the
    /// fleet of `scenario`, one agent per node and `ch-writer`.
    pub async fn start(scenario_toml: &str) -> Pipeline {
        Pipeline::start_with(scenario_toml, false).await
    }

    /// Like [`Pipeline::start`]; with `debug_logs`, every emulated node writes a debug.log in
    /// its version's format and its agent follows it from the start.
    pub async fn start_with(scenario_toml: &str, debug_logs: bool) -> Pipeline {
        Pipeline::start_opts(
            scenario_toml,
            Options {
                debug_logs,
                ..Options::default()
            },
        )
        .await
    }

    /// Starts a run with the given [`Options`].
    pub async fn start_opts(scenario_toml: &str, opts: Options) -> Pipeline {
        let mut p = Pipeline::start_services(opts).await;
        let scenario = Scenario::from_toml(scenario_toml).expect("scenario");
        let options = simnet::fleet::FleetOptions {
            debug_log_dir: p.opts.debug_logs.then(|| p.spool_root.path().join("nodes")),
        };
        let fleet = Fleet::start_with(scenario, TruthSink::memory(), options)
            .await
            .expect("start simnet fleet");
        let nodes = fleet.nodes().to_vec();
        p.fleet = Some(fleet);
        for n in &nodes {
            p.start_agent(&AgentTarget::from(n));
        }
        p
    }

    /// Starts everything but the nodes and their agents: NATS, a fresh ClickHouse database,
    /// `bmon setup`'s work, `ch-writer` and, with `opts.detectors`, the detector consumers,
    /// the Alertmanager router and a real Alertmanager. Agents are added with
    /// [`Pipeline::start_agent`] (a real Core fleet's nodes, for instance).
    pub async fn start_services(opts: Options) -> Pipeline {
        let (nats, nats_peers) = if opts.nats_cluster > 1 {
            let mut all = NatsServer::cluster(opts.nats_cluster);
            let first = all.remove(0);
            (first, all)
        } else {
            (NatsServer::start(), Vec::new())
        };
        let nats_url = std::iter::once(&nats)
            .chain(&nats_peers)
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",");
        let clickhouse = ClickHouse::shared();
        let database = clickhouse.fresh_database();
        let spool_root = tempfile::tempdir().expect("temp dir for agent spools");

        let client = process::nats::connect(&process::nats::Connect {
            urls: nats_url.clone(),
            name: "bmon e2e setup".into(),
            inbox_user: "bmon".into(),
            ..Default::default()
        })
        .await
        .expect("connect to NATS");
        let js = async_nats::jetstream::new(client);
        // The shipped limits are sized for a production disk; a test server has less.
        let definitions = spool_root.path().join("streams.toml");
        let shipped =
            std::fs::read_to_string(test_support::workspace_root().join("nats/streams.toml"))
                .expect("read nats/streams.toml");
        let replicas = opts.nats_cluster.max(1);
        let small: String = shipped
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("max_bytes") {
                    // Replicas each take the limit from a test server's disk.
                    format!("max_bytes = {}", 1_073_741_824 / replicas)
                } else if l.trim() == "[[streams]]" && replicas > 1 {
                    format!("{l}\nreplicas = {replicas}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&definitions, small).expect("write test stream definitions");
        let defs = consumers::definitions::Definitions::load(&definitions).expect("definitions");
        let server = consumers::clickhouse_server_client(&consumers::config::ClickHouseConfig {
            url: clickhouse.url(),
            database: database.clone(),
            ..Default::default()
        });
        // A cluster elects its JetStream meta leader a few seconds after it starts.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match consumers::setup::setup(&js, &defs, &server, &database).await {
                Ok(_) => break,
                Err(e) if opts.nats_cluster > 1 && std::time::Instant::now() < deadline => {
                    eprintln!("bmon setup on the cluster, retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("bmon setup: {e}"),
            }
        }

        let mut p = Pipeline {
            nats,
            nats_peers,
            clickhouse,
            database,
            fleet: None,
            agents: Vec::new(),
            agent_metrics: BTreeMap::new(),
            writer: None,
            spool_root,
            definitions,
            consumers: Vec::new(),
            opts: opts.clone(),
            alertmanager: None,
        };
        p.start_writer();
        if opts.detectors {
            let am = test_support::Alertmanager::start();
            let am_url = am.url();
            p.alertmanager = Some(am);
            for name in [
                "det-chain",
                "det-inflation",
                "det-health",
                "det-propagation",
                "det-compare",
                "alertmanager",
            ] {
                p.start_consumer(name, &am_url);
            }
        }
        p
    }

    /// Serves bmon-web in this process over this run's ClickHouse database and NATS, until
    /// `shutdown`; its base URL (`http://127.0.0.1:PORT`).
    pub async fn start_web(&self, shutdown: CancellationToken) -> String {
        let config = web::Config {
            clickhouse: consumers::config::ClickHouseConfig {
                url: self.clickhouse.url(),
                database: self.database.clone(),
                ..Default::default()
            },
            nats: Some(consumers::config::NatsConfig {
                url: self.nats_url(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for bmon-web");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move {
            web::serve(
                listener,
                &config,
                std::sync::Arc::new(web::metrics::Metrics::new()),
                shutdown,
            )
            .await
            .expect("bmon-web serves");
        });
        format!("http://{addr}")
    }

    /// Waits until ClickHouse holds the truth's connected blocks and transaction sightings,
    /// lets stragglers land, then asserts each is there exactly once and that every table of
    /// `tables` has one row per event id.
    pub async fn assert_truth_stored_once(&self, exp: &Expected, tables: &[&str]) {
        self.wait_count(
            "SELECT count() FROM block_connected FINAL",
            exp.connected_rows(),
            Duration::from_secs(60),
        )
        .await;
        self.wait_count(
            "SELECT count() FROM tx_seen FINAL",
            exp.tx_seen.len() as u64,
            Duration::from_secs(60),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            self.count("SELECT count() FROM block_connected FINAL"),
            exp.connected_rows(),
            "every connected block once"
        );
        assert_eq!(
            self.count("SELECT count() FROM tx_seen FINAL"),
            exp.tx_seen.len() as u64,
            "every transaction sighting once"
        );
        for table in tables {
            let rows = self.count(&format!("SELECT count() FROM {table} FINAL"));
            let ids = self.count(&format!("SELECT uniqExact(event_id) FROM {table}"));
            assert_eq!(rows, ids, "{table}: {rows} rows for {ids} event ids");
        }
    }

    /// Every NATS server's URL, comma-separated (one for a lone server).
    pub fn nats_url(&self) -> String {
        std::iter::once(&self.nats)
            .chain(&self.nats_peers)
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts one `bmon-agent` in this process for `n`, publishing to this run's NATS.
    pub fn start_agent(&mut self, n: &AgentTarget) {
        let toml = format!(
            r#"
node = "{name}"
network = "regtest"
[rpc]
url = "{rpc}"
user = "{user}"
password = "{password}"
timeout_secs = 5
[zmq]
sequence = "{seq}"
rawblock = "{rawblock}"
rawtx = "{rawtx}"
[nats]
url = "{nats}"
[spool]
dir = "{spool}"
[poll]
status_secs = 2
mempool_secs = {mempool_secs}
peers_secs = {peers_secs}
[metrics]
listen = "127.0.0.1:{metrics}"
{debug_log}{clock}"#,
            mempool_secs = self.opts.mempool_secs.unwrap_or(5),
            peers_secs = self.opts.peers_secs.unwrap_or(60),
            clock = match (&n.clock, self.opts.agent_clock) {
                (Some((origin_us, scale)), true) => {
                    format!("[clock]\norigin_us = {origin_us}\nscale = {scale}\n")
                }
                _ => String::new(),
            },
            debug_log = n
                .debug_log
                .as_ref()
                .map(|p| format!(
                    "[debug_log]\npath = \"{}\"\nbackfill = true\npoll_ms = 20\n",
                    p.display()
                ))
                .unwrap_or_default(),
            name = n.name,
            rpc = n.rpc_url,
            user = n.rpc_user,
            password = n.rpc_password,
            seq = n.zmq_sequence,
            rawblock = n.zmq_rawblock,
            rawtx = n.zmq_rawtx,
            nats = self.nats_url(),
            spool = self.spool_root.path().join(&n.name).display(),
            metrics = 0,
        );
        let config = agent::Config::from_figment(Figment::from(Toml::string(&toml)))
            .unwrap_or_else(|e| panic!("agent config for {}: {e}", n.name));
        let token = CancellationToken::new();
        let t = token.clone();
        let name = n.name.clone();
        let metrics = agent::Metrics::new(&config.node);
        self.agent_metrics.insert(name.clone(), metrics.clone());
        let handle = tokio::spawn(async move {
            if let Err(e) = agent::run_with_metrics(config, metrics, t).await {
                panic!("agent {name} failed: {e}");
            }
        });
        self.agents.push((token, handle));
    }

    /// The counters of the agent of `node` (started by [`Pipeline::start_agent`]).
    pub fn agent_metrics(&self, node: &str) -> &agent::Metrics {
        self.agent_metrics
            .get(node)
            .unwrap_or_else(|| panic!("no agent was started for {node}"))
    }

    /// Starts `ch-writer` in this process.
    pub fn start_writer(&mut self) {
        let toml = format!(
            r#"
[nats]
url = "{nats}"
definitions = "{defs}"
[clickhouse]
url = "{ch}"
database = "{db}"
[metrics]
listen = "127.0.0.1:{metrics}"
[consumer]
linger_ms = 20
"#,
            nats = self.nats_url(),
            defs = self.definitions.display(),
            ch = self.clickhouse.url(),
            db = self.database,
            metrics = 0,
        );
        let config = consumers::Config::from_toml(&toml).expect("consumer config");
        let token = CancellationToken::new();
        let t = token.clone();
        let handle = tokio::spawn(async move {
            if let Err(e) = consumers::run("ch-writer", config, t).await {
                panic!("ch-writer failed: {e}");
            }
        });
        self.writer = Some((token, handle));
    }

    /// Starts one more consumer (`det-*`, `alertmanager`) in this process.
    pub fn start_consumer(&mut self, name: &str, alertmanager_url: &str) {
        let toml = format!(
            r#"
[nats]
url = "{nats}"
definitions = "{defs}"
[clickhouse]
url = "{ch}"
database = "{db}"
[metrics]
listen = "127.0.0.1:{metrics}"
[consumer]
linger_ms = 20
tick_after_ms = 500
[alertmanager]
url = "{am}"
resend_interval_secs = 5
{extra}
"#,
            nats = self.nats_url(),
            defs = self.definitions.display(),
            ch = self.clickhouse.url(),
            db = self.database,
            metrics = 0,
            am = alertmanager_url,
            extra = self.opts.consumer_toml,
        );
        let config = consumers::Config::from_toml(&toml)
            .unwrap_or_else(|e| panic!("consumer config for {name}: {e}"));
        let token = CancellationToken::new();
        let t = token.clone();
        let name = name.to_string();
        let handle = tokio::spawn(async move {
            if let Err(e) = consumers::run(&name, config, t).await {
                panic!("{name} failed: {e}");
            }
        });
        self.consumers.push((token, handle));
    }

    /// Alerts Alertmanager holds now: (alertname, labels, startsAt) as JSON objects.
    pub fn alertmanager_alerts(&self) -> Vec<serde_json::Value> {
        let am = self
            .alertmanager
            .as_ref()
            .expect("run started with detectors");
        let body = am.alerts_json().unwrap_or_else(|| "[]".to_string());
        serde_json::from_str::<Vec<serde_json::Value>>(&body).unwrap_or_default()
    }

    /// Stops `ch-writer` cleanly and waits for it.
    pub async fn stop_writer(&mut self) {
        if let Some((token, handle)) = self.writer.take() {
            token.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(30), handle).await;
        }
    }

    /// Waits for the scenario to end, then returns the fleet's truth.
    pub async fn wait_for_fleet(&self, timeout: Duration) -> Vec<TruthRecord> {
        let fleet = self.fleet.as_ref().expect("fleet running");
        tokio::time::timeout(timeout, fleet.finished())
            .await
            .expect("simnet scenario did not finish in time");
        fleet.truth()
    }

    /// Stops the agents cleanly (they flush what they hold) and waits for them.
    pub async fn stop_agents(&mut self) {
        for (token, _) in &self.agents {
            token.cancel();
        }
        for (_, handle) in self.agents.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(30), handle).await;
        }
    }

    /// Stops the detector consumers and the router cleanly and waits for them.
    pub async fn stop_consumers(&mut self) {
        for (token, _) in &self.consumers {
            token.cancel();
        }
        for (_, handle) in self.consumers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(30), handle).await;
        }
    }

    /// Stops agents (they flush), then the writer, then the fleet.
    pub async fn stop(mut self) {
        self.stop_agents().await;
        self.stop_consumers().await;
        self.stop_writer().await;
        if let Some(fleet) = self.fleet.take() {
            let _ = fleet.shutdown().await;
        }
    }

    /// Runs a query in the test database; rows as JSON objects.
    pub fn rows(&self, sql: &str) -> Vec<serde_json::Value> {
        let body = self
            .clickhouse
            .query_in(&self.database, &format!("{sql} FORMAT JSONEachRow"))
            .unwrap_or_else(|e| panic!("query failed: {e}\n{sql}"));
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad row {l}: {e}")))
            .collect()
    }

    /// One number from a query.
    pub fn count(&self, sql: &str) -> u64 {
        let body = self
            .clickhouse
            .query_in(&self.database, sql)
            .unwrap_or_else(|e| panic!("query failed: {e}\n{sql}"));
        body.trim()
            .parse()
            .unwrap_or_else(|e| panic!("not a number {body:?}: {e}\n{sql}"))
    }

    /// Waits until `count(sql)` reaches `expected` (or panics after `timeout`).
    pub async fn wait_count(&self, sql: &str, expected: u64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let n = self.count(sql);
            if n >= expected {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("timed out: {sql} gave {n}, expected {expected}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A 64-bit integer from a JSON row (ClickHouse quotes 64-bit integers by default).
pub fn int(v: &serde_json::Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// A JSON row's text column `key` ("" when absent or not text).
pub fn str_of(row: &serde_json::Value, key: &str) -> String {
    row.get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A JSON row's `Array(String)` column `key` (empty when absent).
pub fn strings(row: &serde_json::Value, key: &str) -> Vec<String> {
    row.get(key)
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(serde_json::Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON row's integer array column `key` (empty when absent).
pub fn ints(row: &serde_json::Value, key: &str) -> Vec<i64> {
    row.get(key)
        .and_then(serde_json::Value::as_array)
        .map(|a| a.iter().map(int).collect())
        .unwrap_or_default()
}

/// Truth records grouped as the tables hold them.
#[derive(Debug, Default)]
pub struct Expected {
    /// (node, block hash) -> connect times.
    pub connected: HashMap<(String, String), Vec<u64>>,
    /// (node, block hash) -> disconnect times.
    pub disconnected: HashMap<(String, String), Vec<u64>>,
    /// (node, txid, mempool sequence) -> accept time.
    pub tx_seen: HashMap<(String, String, u64), u64>,
    /// Reorgs: (node, truth record).
    pub reorgs: Vec<(String, simnet::TruthEvent, u64)>,
}

impl Expected {
    /// Groups the truth.
    pub fn from_truth(truth: &[TruthRecord]) -> Expected {
        use simnet::TruthEvent as T;
        let mut e = Expected::default();
        for r in truth {
            match &r.event {
                T::BlockConnected { hash, .. } => e
                    .connected
                    .entry((r.node.clone(), hash.to_string()))
                    .or_default()
                    .push(r.t_us),
                T::BlockDisconnected { hash, .. } => e
                    .disconnected
                    .entry((r.node.clone(), hash.to_string()))
                    .or_default()
                    .push(r.t_us),
                T::TxAccepted {
                    txid,
                    mempool_sequence,
                    ..
                } => {
                    e.tx_seen.insert(
                        (r.node.clone(), txid.to_string(), *mempool_sequence),
                        r.t_us,
                    );
                }
                T::Reorg { .. } => e.reorgs.push((r.node.clone(), r.event.clone(), r.t_us)),
                _ => {}
            }
        }
        e
    }

    /// Rows `block_connected` must end with.
    pub fn connected_rows(&self) -> u64 {
        self.connected.values().map(|v| v.len() as u64).sum()
    }

    /// Rows `block_disconnected` must end with.
    pub fn disconnected_rows(&self) -> u64 {
        self.disconnected.values().map(|v| v.len() as u64).sum()
    }
}
