//! The one simnet run whose tables every panel is checked against: three nodes of three Core
//! versions, transactions throughout, an invalid block, a burst of rejected transactions and a
//! withheld branch released at once (a selfish-mining reorg), through the agents (with
//! debug.logs), NATS, `ch-writer`, every detector and the Alertmanager router.
//!
//! [`Run::truth`] is simnet's ground truth; the helpers turn it into what the panels must show.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bmon_e2e::{Expected, Options, Pipeline};
use simnet::truth::{Incident, NotHeldReason};
use simnet::{TruthEvent, TruthRecord};

/// The run (16 s of blocks and transactions):
/// - node0 (Core 30.99) and node1 (29.0) mine, node2 (25.0) only relays, with a minimum relay
///   fee of 20 sat/vB, so the cheaper transactions never reach it (`min_fee` in the mempool
///   comparison, `missing` in propagation);
/// - blocks hold at most 4 transactions, so a backlog stays in the mempools to compare;
/// - at 3 s node0 mines a block every node rejects (`bad-cb-amount`);
/// - from 4 s node0 sends node1 110 transactions below its relay fee (a `tx_rejections` burst,
///   which resolves once the 3-second window has passed);
/// - at 7 s node1 withholds two blocks while node0 publishes the losing one and releases them
///   3 s later: every node reorgs one block deep (`selfish_mining`, `reorg`, a stale block).
pub const SCENARIO: &str = r#"
seed = 41
duration_ms = 16000

[blocks]
interval_ms = 1500
distribution = "fixed"
max_txs = 4

[txs]
rate_per_s = 6.0

[[nodes]]
name = "node0"
mines = true
hashrate = 0.6

[[nodes]]
name = "node1"
mines = true
hashrate = 0.4
version = 290000
subversion = "/Satoshi:29.0.0/"

[[nodes]]
name = "node2"
version = 250000
subversion = "/Satoshi:25.0.0/"
min_relay_fee_sat_per_kvb = 20000

[[links]]
a = "node1"
b = "node0"
delay_ms = 30

[[links]]
a = "node2"
b = "node0"
delay_ms = 50

[[links]]
a = "node2"
b = "node1"
delay_ms = 80

[[events]]
kind = "invalid_block"
miner = "node0"
at_ms = 3000

[[events]]
kind = "reject_burst"
node = "node1"
from = "node0"
at_ms = 4000
count = 110
reason = "min relay fee not met"
interval_ms = 20

[[events]]
kind = "selfish_mining"
miner = "node1"
honest = "node0"
at_ms = 7000
withhold = 2
release_after_ms = 3000
"#;

/// The nodes of [`SCENARIO`] with the user agent each reports.
pub const NODES: [(&str, &str); 3] = [
    ("node0", "/Satoshi:30.99.0/"),
    ("node1", "/Satoshi:29.0.0/"),
    ("node2", "/Satoshi:25.0.0/"),
];

/// Detector thresholds sized for a 16-second run with a block every 1.5 s.
const DETECTORS: &str = r#"
[detectors.chain]
rapid_run_blocks = 1000
selfish_release_window_secs = 5
selfish_check_secs = 1
[detectors.inflation]
network = "regtest"
[detectors.health]
tip_max_age_secs = 600
silent_after_secs = 60
peers_min_baseline = 1000
alert_on_ibd = false
rejection_window_secs = 3
[detectors.propagation]
block_settle_secs = 3
tx_settle_secs = 3
block_lag_floor_ms = 1500
block_spread_floor_ms = 1500
tx_alerts = false
min_samples = 3
[detectors.compare]
round_secs = 1
settle_secs = 2
node_silence_secs = 30
"#;

/// How long the pipeline gets to write what the run produced, after the scenario ended.
const SETTLE: Duration = Duration::from_secs(60);

/// A run in progress or done.
pub struct Run {
    /// The pipeline; after [`Run::stop`] its ClickHouse database holds the whole run.
    pub pipeline: Pipeline,
    /// simnet's ground truth (after [`Run::settle`]).
    pub truth: Vec<TruthRecord>,
    /// Wall-clock seconds when the run started, less a minute: the dashboards' time range.
    pub from_s: i64,
    /// When the scenario ended, µs.
    pub ended_us: i64,
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Starts the run: the services, the fleet and one agent per node.
pub async fn start() -> Run {
    let from_s = now_us() / 1_000_000 - 60;
    let pipeline = Pipeline::start_opts(
        SCENARIO,
        Options {
            debug_logs: true,
            detectors: true,
            consumer_toml: DETECTORS.to_string(),
            mempool_secs: Some(1),
            agent_clock: false,
            ..Options::default()
        },
    )
    .await;
    Run {
        pipeline,
        truth: Vec::new(),
        from_s,
        ended_us: 0,
    }
}

impl Run {
    /// Waits for the scenario to end, then until every table the dashboards read holds what
    /// the run produced: the writer has every block, transaction and reorg of the truth, the
    /// detectors raised (and resolved) their alerts, settled every block and compared the
    /// mempools and templates after the end.
    pub async fn settle(&mut self) {
        self.truth = self.pipeline.wait_for_fleet(Duration::from_secs(60)).await;
        self.ended_us = now_us();
        let p = &self.pipeline;
        let exp = Expected::from_truth(&self.truth);
        let tips = self.tips();
        let connected = self.connected_blocks();
        // ('node0', value of its tip), ...
        let at_tip = |value: &dyn Fn(&(u32, String)) -> String| {
            tips.iter()
                .map(|(node, tip)| format!("('{node}', {})", value(tip)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let waits: Vec<(String, u64)> = vec![
            // Every node's status and template after its last block.
            (
                format!(
                    "SELECT uniqExact(node) FROM node_status FINAL WHERE (node, blocks) IN ({})",
                    at_tip(&|t| t.0.to_string())
                ),
                tips.len() as u64,
            ),
            (
                format!(
                    "SELECT uniqExact(node) FROM template_snapshot FINAL WHERE (node, prev) IN ({})",
                    at_tip(&|t| format!("'{}'", t.1))
                ),
                tips.len() as u64,
            ),
            (
                "SELECT count() FROM block_connected FINAL".into(),
                exp.connected_rows(),
            ),
            (
                "SELECT count() FROM tx_seen FINAL".into(),
                exp.tx_seen.len() as u64,
            ),
            (
                "SELECT count() FROM reorg FINAL WHERE source = 'zmq'".into(),
                exp.reorgs.len() as u64,
            ),
            (
                "SELECT uniqExact(alert_kind) FROM alerts FINAL WHERE alert_kind IN \
                 ('reorg', 'selfish_mining', 'invalid_block', 'tx_rejections')"
                    .into(),
                4,
            ),
            (
                "SELECT count() FROM alerts FINAL WHERE alert_kind = 'tx_rejections' \
                 AND state = 'resolved'"
                    .into(),
                1,
            ),
            (
                format!(
                    "SELECT uniqExact(object_hash) FROM propagation FINAL \
                     WHERE object_kind = 'block' AND object_hash IN ({})",
                    connected
                        .keys()
                        .map(|h| format!("'{h}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                connected.len() as u64,
            ),
            (
                "SELECT count() FROM block_validation FINAL".into(),
                exp.connected_rows(),
            ),
            (
                format!(
                    "SELECT uniqExact(mempool_node) FROM mempool_divergence FINAL \
                     WHERE observed_at_us > {}",
                    self.ended_us
                ),
                3,
            ),
            (
                format!(
                    "SELECT uniqExact(template_node) FROM template_comparison FINAL \
                     WHERE observed_at_us > {}",
                    self.ended_us
                ),
                3,
            ),
            (
                format!(
                    "SELECT uniqExact(node) FROM chain_tips FINAL WHERE has(tip_hash, '{}')",
                    self.selfish().1
                ),
                3,
            ),
            (
                "SELECT count() FROM logs FINAL".into(),
                self.debug_log_lines(),
            ),
        ];
        for (sql, want) in waits {
            p.wait_count(&sql, want, SETTLE).await;
        }
    }

    /// Stops the agents (they flush), the detectors and the writer: the tables are final.
    pub async fn stop(&mut self) {
        self.pipeline.stop_agents().await;
        self.pipeline.stop_consumers().await;
        self.pipeline.stop_writer().await;
    }

    /// Every debug.log line the fleet wrote.
    fn debug_log_lines(&self) -> u64 {
        let fleet = self.pipeline.fleet.as_ref().expect("fleet");
        fleet
            .nodes()
            .iter()
            .filter_map(|n| n.debug_log.as_ref())
            .map(|path| {
                std::fs::read(path)
                    .unwrap_or_default()
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count() as u64
            })
            .sum()
    }

    /// The reorgs of the truth: (node, depth).
    pub fn reorgs(&self) -> BTreeSet<(String, u32)> {
        self.truth
            .iter()
            .filter_map(|r| match &r.event {
                TruthEvent::Reorg { depth, .. } => Some((r.node.clone(), *depth)),
                _ => None,
            })
            .collect()
    }

    /// The selfish-mining incident: (fork height, losing block, withheld blocks).
    pub fn selfish(&self) -> (u32, String, Vec<String>) {
        self.truth
            .iter()
            .find_map(|r| match &r.event {
                TruthEvent::Incident(Incident::SelfishMining {
                    fork_height,
                    losing_block,
                    withheld,
                    ..
                }) => Some((
                    *fork_height,
                    losing_block.to_string(),
                    withheld.iter().map(|h| h.to_string()).collect(),
                )),
                _ => None,
            })
            .expect("the selfish-mining incident is in the truth")
    }

    /// The invalid block: (hash, height, reason).
    pub fn invalid_block(&self) -> (String, u32, String) {
        self.truth
            .iter()
            .find_map(|r| match &r.event {
                TruthEvent::Incident(Incident::InvalidBlock {
                    hash,
                    height,
                    reason,
                    ..
                }) => Some((hash.to_string(), *height, reason.clone())),
                _ => None,
            })
            .expect("the invalid-block incident is in the truth")
    }

    /// Every block some node connected, by hash: its height.
    pub fn connected_blocks(&self) -> BTreeMap<String, u32> {
        self.truth
            .iter()
            .filter_map(|r| match &r.event {
                TruthEvent::BlockConnected { hash, height } => Some((hash.to_string(), *height)),
                _ => None,
            })
            .collect()
    }

    /// Blocks some node disconnected: hash -> the nodes that did.
    pub fn disconnected_blocks(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in &self.truth {
            if let TruthEvent::BlockDisconnected { hash, .. } = &r.event {
                out.entry(hash.to_string())
                    .or_default()
                    .insert(r.node.clone());
            }
        }
        out
    }

    /// Each node's tip when the scenario ended: (height, hash).
    pub fn tips(&self) -> BTreeMap<String, (u32, String)> {
        let mut out = BTreeMap::new();
        let mut truth: Vec<&TruthRecord> = self.truth.iter().collect();
        truth.sort_by_key(|r| r.t_us);
        for r in truth {
            if let TruthEvent::BlockConnected { hash, height } = &r.event {
                out.insert(r.node.clone(), (*height, hash.to_string()));
            }
        }
        out
    }

    /// Transactions a peer never sent `node` because they pay less than its minimum fee.
    pub fn filtered_for_fee(&self, node: &str) -> BTreeSet<String> {
        self.truth
            .iter()
            .filter(|r| r.node == node)
            .filter_map(|r| match &r.event {
                TruthEvent::TxFiltered {
                    txid,
                    reason: NotHeldReason::MinFee,
                    ..
                } => Some(txid.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Blocks each node connected (a block connected again after a reorg counts again).
    pub fn connects(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in &self.truth {
            if matches!(r.event, TruthEvent::BlockConnected { .. }) {
                *out.entry(r.node.clone()).or_default() += 1;
            }
        }
        out
    }

    /// Transactions rejected by each node.
    pub fn rejected(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in &self.truth {
            if matches!(r.event, TruthEvent::TxRejected { .. }) {
                *out.entry(r.node.clone()).or_default() += 1;
            }
        }
        out
    }
}
