//! The scenario file: which nodes exist, how they are linked, how fast blocks and transactions
//! come, and which faults are injected when. Parsing and validation only; the simulation that
//! plays a scenario lives in the private `network` module.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::debug_log::LogFormat;
use crate::policy::{
    default_min_relay_fee_sat_per_kvb, MempoolPolicy, SatPerKvb, DEFAULT_MAX_MEMPOOL_VBYTES,
};
use crate::Error;

/// A complete simulation: nodes, links, block and transaction rates, run length and events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Seed of every random choice (miner, inter-block time, transactions, fees).
    #[serde(default)]
    pub seed: u64,
    /// Length of the run in milliseconds; after it no new block or transaction is made.
    pub duration_ms: u64,
    /// Blocks every node already has when the run starts (no notifications for them). At least
    /// 101 so that coinbase outputs are mature and can fund transactions.
    #[serde(default = "default_initial_blocks")]
    pub initial_blocks: u32,
    /// RPC user name of every node.
    #[serde(default = "default_rpc_user")]
    pub rpc_user: String,
    /// RPC password of every node.
    #[serde(default = "default_rpc_password")]
    pub rpc_password: String,
    /// How often blocks are found.
    pub blocks: BlockSchedule,
    /// How often transactions are made.
    #[serde(default)]
    pub txs: TxSchedule,
    /// The emulated nodes.
    pub nodes: Vec<NodeSpec>,
    /// Peer connections between nodes.
    #[serde(default)]
    pub links: Vec<LinkSpec>,
    /// Injected events (reorgs, partitions, faults), each at a time since the start.
    #[serde(default)]
    pub events: Vec<ScenarioEvent>,
    /// Directory under which each node writes `<name>/debug.log` (none when absent, unless
    /// the fleet is started with one). A relative path is taken from the working directory.
    #[serde(default)]
    pub debug_log_dir: Option<PathBuf>,
    /// Simulated seconds per wall second (≥ 1). Every `*_ms` of the scenario is simulated time;
    /// header times, `mediantime`, `uptime`, debug.log and truth times follow the simulated
    /// clock (see [`crate::clock`]).
    #[serde(default = "default_time_scale")]
    pub time_scale: f64,
}

fn default_time_scale() -> f64 {
    1.0
}

fn default_initial_blocks() -> u32 {
    110
}
fn default_rpc_user() -> String {
    "simnet".to_owned()
}
fn default_rpc_password() -> String {
    "simnet".to_owned()
}

/// When blocks are found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSchedule {
    /// Mean (exponential) or exact (fixed) time between blocks, in milliseconds.
    pub interval_ms: u64,
    /// How the time between blocks is drawn.
    #[serde(default)]
    pub distribution: Distribution,
    /// Upper bound on the transactions a miner puts in one block.
    #[serde(default = "default_max_block_txs")]
    pub max_txs: usize,
}

fn default_max_block_txs() -> usize {
    2000
}

/// How the time between two occurrences is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Exponentially distributed with the given mean (a Poisson process, like real mining).
    #[default]
    Exponential,
    /// Always exactly the given interval.
    Fixed,
}

/// When transactions are made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxSchedule {
    /// Mean number of new transactions per second over the whole fleet (0 for none).
    #[serde(default)]
    pub rate_per_s: f64,
    /// Lowest fee rate, sat/vB.
    #[serde(default = "default_min_feerate")]
    pub min_feerate: u64,
    /// Highest fee rate, sat/vB.
    #[serde(default = "default_max_feerate")]
    pub max_feerate: u64,
    /// No new transactions from this time on (ms since the start; never when absent).
    #[serde(default)]
    pub until_ms: Option<u64>,
}

impl Default for TxSchedule {
    fn default() -> Self {
        TxSchedule {
            rate_per_s: 0.0,
            min_feerate: default_min_feerate(),
            max_feerate: default_max_feerate(),
            until_ms: None,
        }
    }
}

fn default_min_feerate() -> u64 {
    1
}
fn default_max_feerate() -> u64 {
    50
}

/// One emulated node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique name (also the bmon node name).
    pub name: String,
    /// Core's version number as `getnetworkinfo` reports it, e.g. 309900.
    #[serde(default = "default_version")]
    pub version: u32,
    /// Core's user agent, e.g. `/Satoshi:30.99.0/`.
    #[serde(default = "default_subversion")]
    pub subversion: String,
    /// Whether this node mines.
    #[serde(default)]
    pub mines: bool,
    /// Relative share of the hashrate among miners.
    #[serde(default = "default_hashrate")]
    pub hashrate: f64,
    /// Extra delay in milliseconds added to everything this node receives.
    #[serde(default)]
    pub extra_delay_ms: u64,
    /// Fixed RPC port (an ephemeral one when absent).
    #[serde(default)]
    pub rpc_port: Option<u16>,
    /// Line format of the node's debug.log (`"v0.18"`, `"v25"`, `"v30"`); from `version`
    /// when absent.
    #[serde(default)]
    pub log_format: Option<LogFormat>,
    /// Core's `-minrelaytxfee` in sat/kvB: transactions paying less never enter this node's
    /// mempool, and peers do not announce them to it. Core's default for `version` when
    /// absent (100 from v30 on, 1000 before).
    #[serde(default)]
    pub min_relay_fee_sat_per_kvb: Option<u64>,
    /// Core's `-maxmempool`, in virtual bytes: past it the lowest fee rates are evicted and
    /// the mempool minimum fee rises.
    #[serde(default = "default_max_mempool_vbytes")]
    pub max_mempool_vbytes: u64,
    /// Core's `-blocksonly`: the node takes no transactions from peers.
    #[serde(default)]
    pub blocks_only: bool,
}

impl NodeSpec {
    /// The debug.log format this node writes.
    pub fn log_format(&self) -> LogFormat {
        self.log_format
            .unwrap_or_else(|| LogFormat::for_version(self.version))
    }

    /// The node's mempool policy: Core's defaults for its version with this node's settings.
    pub fn policy(&self) -> MempoolPolicy {
        let defaults = MempoolPolicy::defaults_for(self.version);
        MempoolPolicy {
            min_relay_fee: SatPerKvb::from_sat_per_kvb(
                self.min_relay_fee_sat_per_kvb
                    .unwrap_or_else(|| default_min_relay_fee_sat_per_kvb(self.version)),
            ),
            max_mempool_vbytes: self.max_mempool_vbytes,
            blocks_only: self.blocks_only,
            ..defaults
        }
    }
}

fn default_max_mempool_vbytes() -> u64 {
    DEFAULT_MAX_MEMPOOL_VBYTES
}

/// Core refuses fee rates of 1 BTC/kvB and more on its command line.
const MAX_FEE_RATE_SAT_PER_KVB: u64 = 100_000_000;

fn default_version() -> u32 {
    309900
}
fn default_subversion() -> String {
    "/Satoshi:30.99.0/".to_owned()
}
fn default_hashrate() -> f64 {
    1.0
}

/// A bidirectional peer connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// One end (node name).
    pub a: String,
    /// The other end (node name).
    pub b: String,
    /// One-way delay in milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
}

/// What an injected RPC fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RpcFaultMode {
    /// Every call is answered with a JSON-RPC error.
    Error,
    /// No call is answered before the window ends.
    Timeout,
}

fn default_release_after_ms() -> u64 {
    3000
}
fn default_invalid_excess_sat() -> u64 {
    100_000_000
}
fn default_reject_interval_ms() -> u64 {
    20
}

/// An event injected at a given time since the start of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScenarioEvent {
    /// A miner builds a private branch of `depth + 1` blocks on the block `depth` below its tip and
    /// releases it at once, so nodes on the public chain reorg `depth` blocks deep.
    Reorg {
        /// Time since the start, ms.
        at_ms: u64,
        /// Blocks disconnected on nodes that were on the public tip.
        depth: u32,
        /// The miner (the first mining node when absent).
        #[serde(default)]
        miner: Option<String>,
    },
    /// Selfish mining: at `at_ms` the miner mines `withhold` (≥ 2) blocks privately on the
    /// honest miner's tip; right after, the honest miner publishes one block at the same
    /// height (the losing block, public first); `release_after_ms` later the selfish miner
    /// releases its blocks at once and the rest of the network reorgs one block deep. Regular
    /// block finding pauses from `at_ms` until the release.
    SelfishMining {
        /// The selfish miner.
        miner: String,
        /// Time since the start, ms.
        at_ms: u64,
        /// Blocks withheld (≥ 2).
        withhold: u32,
        /// The node that mines the losing block (the first other mining node when absent, else
        /// the first other node).
        #[serde(default)]
        honest: Option<String>,
        /// Time from `at_ms` to the release, ms.
        #[serde(default = "default_release_after_ms")]
        release_after_ms: u64,
    },
    /// The miner makes a block whose coinbase pays subsidy + fees + `excess_sat`: nodes in
    /// `accepted_by` connect it (a buggy version), every other node rejects it as
    /// `bad-cb-amount`.
    InflatedCoinbase {
        /// The miner.
        miner: String,
        /// Time since the start, ms.
        at_ms: u64,
        /// Sat paid beyond subsidy + fees (> 0).
        excess_sat: u64,
        /// Nodes that connect it.
        #[serde(default)]
        accepted_by: Vec<String>,
    },
    /// The miner makes a block every node rejects (`bad-cb-amount`, coinbase `excess_sat` too
    /// high), announced as a compact block before validation like Core's.
    InvalidBlock {
        /// The miner.
        miner: String,
        /// Time since the start, ms.
        at_ms: u64,
        /// Sat paid beyond subsidy + fees (default 1 BTC, as in the fixtures' block 121).
        #[serde(default = "default_invalid_excess_sat")]
        excess_sat: u64,
    },
    /// The node stops connecting blocks: its tip goes stale while RPC answers and its
    /// `headers` keep rising.
    Stuck {
        /// Node name.
        node: String,
        /// Time since the start, ms.
        at_ms: u64,
    },
    /// The stuck node connects blocks again and catches up.
    Unstuck {
        /// Node name.
        node: String,
        /// Time since the start, ms.
        at_ms: u64,
    },
    /// The node's mempool empties like a restart without mempool.dat.
    MempoolWipe {
        /// Node name.
        node: String,
        /// Time since the start, ms.
        at_ms: u64,
    },
    /// A peer sends the node `count` transactions it rejects with `reason`, one every
    /// `interval_ms`.
    RejectBurst {
        /// Node name.
        node: String,
        /// Time of the first rejection since the start, ms.
        at_ms: u64,
        /// How many transactions.
        count: u32,
        /// Core's reason: `insufficient fee`, `min relay fee not met`, `mempool min fee not
        /// met`, `dust`, `bad-txns-inputs-missingorspent`, `txn-mempool-conflict`, or any other
        /// word (logged as is).
        reason: String,
        /// The sending peer (the node's first peer when absent).
        #[serde(default)]
        from: Option<String>,
        /// Time between two rejections, ms.
        #[serde(default = "default_reject_interval_ms")]
        interval_ms: u64,
    },
    /// The node loses all its peers: nothing reaches it or leaves it.
    Partition {
        /// Node name.
        node: String,
        /// Time since the start, ms.
        at_ms: u64,
    },
    /// The node reconnects; it and its peers exchange the blocks and transactions they lack.
    Heal {
        /// Node name.
        node: String,
        /// Time since the start, ms.
        at_ms: u64,
    },
    /// The node's ZMQ sockets publish a few malformed multipart messages.
    MalformedZmq {
        /// Node name.
        node: String,
        /// Time since the start, ms.
        at_ms: u64,
    },
    /// The node's RPC server fails between `from_ms` and `to_ms`.
    RpcFault {
        /// Node name.
        node: String,
        /// Window start, ms since the start.
        from_ms: u64,
        /// Window end, ms since the start.
        to_ms: u64,
        /// Error answers or no answers.
        mode: RpcFaultMode,
    },
}

impl ScenarioEvent {
    /// When the event happens (for `rpc_fault`: when its window opens), ms since the start.
    pub fn at_ms(&self) -> u64 {
        match self {
            ScenarioEvent::Reorg { at_ms, .. }
            | ScenarioEvent::SelfishMining { at_ms, .. }
            | ScenarioEvent::InflatedCoinbase { at_ms, .. }
            | ScenarioEvent::InvalidBlock { at_ms, .. }
            | ScenarioEvent::Stuck { at_ms, .. }
            | ScenarioEvent::Unstuck { at_ms, .. }
            | ScenarioEvent::MempoolWipe { at_ms, .. }
            | ScenarioEvent::RejectBurst { at_ms, .. }
            | ScenarioEvent::Partition { at_ms, .. }
            | ScenarioEvent::Heal { at_ms, .. }
            | ScenarioEvent::MalformedZmq { at_ms, .. } => *at_ms,
            ScenarioEvent::RpcFault { from_ms, .. } => *from_ms,
        }
    }
}

impl Scenario {
    /// Parses and validates a scenario from TOML text.
    pub fn from_toml(text: &str) -> Result<Scenario, Error> {
        let scenario: Scenario =
            toml::from_str(text).map_err(|e| Error::ScenarioSyntax(e.to_string()))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ScenarioRead {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::from_toml(&text)
    }

    /// Index of the node called `name`.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Checks cross-field rules and reports every problem at once.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if self.nodes.is_empty() {
            problems.push("no nodes".to_owned());
        }
        let mut names = HashSet::new();
        for node in &self.nodes {
            if node.name.is_empty()
                || !node
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                problems.push(format!(
                    "node name {:?} must be non-empty ASCII letters, digits, '-' or '_'",
                    node.name
                ));
            }
            if !names.insert(node.name.as_str()) {
                problems.push(format!("duplicate node name {:?}", node.name));
            }
            if node
                .min_relay_fee_sat_per_kvb
                .is_some_and(|f| f >= MAX_FEE_RATE_SAT_PER_KVB)
            {
                problems.push(format!(
                    "node {:?}: min_relay_fee_sat_per_kvb must be below 100000000 (1 BTC/kvB)",
                    node.name
                ));
            }
            if node.max_mempool_vbytes == 0 {
                problems.push(format!(
                    "node {:?}: max_mempool_vbytes must be positive",
                    node.name
                ));
            }
            if node.mines && !(node.hashrate > 0.0 && node.hashrate.is_finite()) {
                problems.push(format!(
                    "node {:?} mines with a hashrate that is not positive",
                    node.name
                ));
            }
        }
        if !self.nodes.iter().any(|n| n.mines) {
            problems.push("no node mines".to_owned());
        }
        if self.initial_blocks < 101 {
            problems.push(format!(
                "initial_blocks is {}, at least 101 are needed for mature coinbases",
                self.initial_blocks
            ));
        }
        if !(self.time_scale >= 1.0 && self.time_scale.is_finite()) {
            problems.push("time_scale must be a number >= 1".to_owned());
        }
        if self.blocks.interval_ms == 0 {
            problems.push("blocks.interval_ms must be positive".to_owned());
        }
        if !(self.txs.rate_per_s >= 0.0 && self.txs.rate_per_s.is_finite()) {
            problems.push("txs.rate_per_s must be a non-negative number".to_owned());
        }
        if self.txs.min_feerate == 0 || self.txs.min_feerate > self.txs.max_feerate {
            problems.push("txs fee rates must satisfy 1 <= min_feerate <= max_feerate".to_owned());
        }
        let known = |name: &str| self.node_index(name).is_some();
        for link in &self.links {
            for end in [&link.a, &link.b] {
                if !known(end) {
                    problems.push(format!("link names unknown node {end:?}"));
                }
            }
            if link.a == link.b {
                problems.push(format!("link from {:?} to itself", link.a));
            }
        }
        for event in &self.events {
            match event {
                ScenarioEvent::Reorg { depth, miner, .. } => {
                    if *depth == 0 {
                        problems.push("reorg depth must be at least 1".to_owned());
                    }
                    if *depth >= self.initial_blocks {
                        problems.push(format!(
                            "reorg depth {depth} reaches below the initial chain"
                        ));
                    }
                    if let Some(m) = miner {
                        match self.node_index(m) {
                            None => problems.push(format!("reorg names unknown miner {m:?}")),
                            Some(i) if !self.nodes[i].mines => {
                                problems.push(format!("reorg miner {m:?} does not mine"))
                            }
                            Some(_) => {}
                        }
                    }
                }
                ScenarioEvent::SelfishMining {
                    miner,
                    withhold,
                    honest,
                    ..
                } => {
                    if !known(miner) {
                        problems.push(format!("selfish_mining names unknown miner {miner:?}"));
                    }
                    if *withhold < 2 {
                        problems.push("selfish_mining withhold must be at least 2".to_owned());
                    }
                    match honest {
                        Some(h) if !known(h) => {
                            problems.push(format!("selfish_mining names unknown honest node {h:?}"))
                        }
                        Some(h) if h == miner => problems.push(
                            "selfish_mining honest node must differ from the miner".to_owned(),
                        ),
                        None if self.nodes.len() < 2 => {
                            problems.push("selfish_mining needs a second node".to_owned())
                        }
                        _ => {}
                    }
                }
                ScenarioEvent::InflatedCoinbase {
                    miner,
                    excess_sat,
                    accepted_by,
                    ..
                } => {
                    if !known(miner) {
                        problems.push(format!("inflated_coinbase names unknown miner {miner:?}"));
                    }
                    if *excess_sat == 0 {
                        problems.push("inflated_coinbase excess_sat must be positive".to_owned());
                    }
                    for n in accepted_by {
                        if !known(n) {
                            problems.push(format!(
                                "inflated_coinbase accepted_by names unknown node {n:?}"
                            ));
                        }
                    }
                }
                ScenarioEvent::InvalidBlock {
                    miner, excess_sat, ..
                } => {
                    if !known(miner) {
                        problems.push(format!("invalid_block names unknown miner {miner:?}"));
                    }
                    if *excess_sat == 0 {
                        problems.push("invalid_block excess_sat must be positive".to_owned());
                    }
                }
                ScenarioEvent::RejectBurst {
                    node,
                    count,
                    reason,
                    from,
                    ..
                } => {
                    if !known(node) {
                        problems.push(format!("reject_burst names unknown node {node:?}"));
                    }
                    if *count == 0 {
                        problems.push("reject_burst count must be positive".to_owned());
                    }
                    if reason.trim().is_empty() {
                        problems.push("reject_burst reason must not be empty".to_owned());
                    }
                    let peers = |n: &str| {
                        self.links
                            .iter()
                            .filter(|l| l.a == n || l.b == n)
                            .map(|l| if l.a == n { l.b.clone() } else { l.a.clone() })
                            .collect::<Vec<_>>()
                    };
                    match from {
                        Some(f) if !peers(node).contains(f) => problems
                            .push(format!("reject_burst from {f:?} is not a peer of {node:?}")),
                        None if peers(node).is_empty() => {
                            problems.push(format!("reject_burst node {node:?} has no peer"))
                        }
                        _ => {}
                    }
                }
                ScenarioEvent::Stuck { node, .. }
                | ScenarioEvent::Unstuck { node, .. }
                | ScenarioEvent::MempoolWipe { node, .. }
                | ScenarioEvent::Partition { node, .. }
                | ScenarioEvent::Heal { node, .. }
                | ScenarioEvent::MalformedZmq { node, .. } => {
                    if !known(node) {
                        problems.push(format!("event names unknown node {node:?}"));
                    }
                }
                ScenarioEvent::RpcFault {
                    node,
                    from_ms,
                    to_ms,
                    ..
                } => {
                    if !known(node) {
                        problems.push(format!("rpc_fault names unknown node {node:?}"));
                    }
                    if from_ms >= to_ms {
                        problems.push(format!(
                            "rpc_fault on {node:?}: from_ms must be before to_ms"
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::ScenarioInvalid(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
duration_ms = 1000
[blocks]
interval_ms = 100
[[nodes]]
name = "a"
mines = true
"#;

    #[test]
    fn a_node_without_policy_settings_gets_cores_defaults_for_its_version() {
        let s = Scenario::from_toml(&format!(
            "{BASE}[[nodes]]\nname = \"old\"\nversion = 250000\n"
        ))
        .unwrap();
        let new = s.nodes[0].policy();
        assert_eq!(new, MempoolPolicy::defaults_for(309900));
        assert_eq!(new.min_relay_fee.to_sat_per_kvb(), 100);
        assert_eq!(s.nodes[1].policy().min_relay_fee.to_sat_per_kvb(), 1000);
        assert_eq!(new.max_mempool_vbytes, 300_000_000);
        assert!(!new.blocks_only);
    }

    #[test]
    fn policy_settings_are_read_per_node() {
        let s = Scenario::from_toml(&format!(
            "{BASE}[[nodes]]\nname = \"b\"\nmin_relay_fee_sat_per_kvb = 5000\nmax_mempool_vbytes = 4000\nblocks_only = true\n"
        ))
        .unwrap();
        let p = s.nodes[1].policy();
        assert_eq!(p.min_relay_fee.to_sat_per_kvb(), 5000);
        assert_eq!(p.incremental_relay_fee.to_sat_per_kvb(), 100);
        assert_eq!(p.max_mempool_vbytes, 4000);
        assert!(p.blocks_only);
    }

    #[test]
    fn impossible_policy_settings_are_reported_together() {
        let e = Scenario::from_toml(&format!(
            "{BASE}[[nodes]]\nname = \"b\"\nmin_relay_fee_sat_per_kvb = 100000000\nmax_mempool_vbytes = 0\n"
        ))
        .unwrap_err();
        let Error::ScenarioInvalid(problems) = e else {
            panic!("not a validation error: {e}");
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("min_relay_fee_sat_per_kvb"));
        assert!(problems[1].contains("max_mempool_vbytes"));
    }
}
