//! A scripted run on a real Bitcoin Core regtest fleet: four real nodes, one agent each, NATS,
//! `ch-writer`, the detectors, the Alertmanager router and a real Alertmanager, driven through
//! the incidents operators care about. [`run`] records what the script did ([`Script`]) so the
//! test can hold every table and every alert to it.
//!
//! The fleet:
//! - `n0` mines and holds the wallet;
//! - `n1` runs `-limitclustercount=2`, so a chain of three transactions is a cluster-limit
//!   rejection over P2P;
//! - `n2` runs `-minrelaytxfee=0.00005` (5 sat/vB), so low-fee transactions never reach it;
//! - `n3` is the withholding miner, and the node that relays a losing RBF replacement.
//!
//! The script, in order: 120 blocks; a transaction chain (P → C1 → C2); three 25 sat/vB and four
//! 2 sat/vB wallet payments; a fee bump (a replacement everyone takes); an RBF conflict relayed
//! by `n3` that `n0`–`n2` reject; a block that confirms it all; a partition of `n0` that mines
//! three blocks alone while `n1` mines four in the open, spaced [`OPEN_SPACING`] apart (a
//! depth-3 reorg on `n0`); `n3` withholding three blocks while `n0` mines two in the open,
//! then releasing them at once (a depth-2 reorg on `n0`–`n2`); three invalid blocks submitted to
//! `n0` (coinbase paying 1 sat too much, a missing input, a bad merkle root); one last block.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::Hash;
use bitcoin::script::Builder;
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{
    Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Txid, Witness,
};
use serde_json::Value;
use test_support::{core_binaries, CoreFleet, CoreNode, LogFormat, NodeOptions};

use crate::{AgentTarget, Options, Pipeline};

/// Time between blocks mined "in the open" (each relayed before the next is mined).
pub const OPEN_SPACING: Duration = Duration::from_millis(1500);

/// How long the low-fee payments stay unconfirmed for the mempool comparison to judge them:
/// its settle time (20 s, see [`REGTEST_DETECTORS`]) and a few rounds.
pub const COMPARE_SPACING: Duration = Duration::from_secs(25);

/// Detector thresholds for a regtest fleet: blocks arrive when the script mines them, so the
/// selfish-mining burst and the settle times are seconds, not mainnet minutes. Blocks settle
/// 15 s after their first sighting: withheld blocks reach the fleet about 4 s after they were
/// mined, and a loaded host must not turn that into a missed block. Transactions settle 20 s
/// after they went round: Core announces a transaction to each peer after a random delay
/// (exponential, 5 s on average to inbound peers), and one node was seen to get a batch 10 s
/// after the first; a divergence must then last 10 rounds (1 s each) before it alerts.
pub const REGTEST_DETECTORS: &str = r#"
[detectors.chain]
selfish_release_window_secs = 0.5
selfish_check_secs = 5
[detectors.inflation]
network = "regtest"
[detectors.health]
alert_on_ibd = false
peers_min_baseline = 1000
mempool_max_skew_secs = 2
mempool_empty_min_secs = 5
[detectors.propagation]
block_settle_secs = 15
tx_settle_secs = 5
tx_alerts = false
[detectors.compare]
round_secs = 1
settle_secs = 20
divergence_rounds = 10
node_silence_secs = 30
"#;

/// What the script did, for the assertions.
#[derive(Debug, Default)]
pub struct Script {
    /// Node names, index = node number.
    pub nodes: Vec<String>,
    /// Every block each node connected (by node name).
    pub connected: BTreeMap<String, BTreeSet<String>>,
    /// Blocks each node mined itself, index = node number.
    pub mined_by: [BTreeSet<String>; 4],
    /// Every block each node disconnected.
    pub disconnected: BTreeMap<String, BTreeSet<String>>,
    /// The partition reorg: fork point, the losing blocks (n0's), the winning ones (n1's).
    pub partition: Branches,
    /// The withheld-branch release: fork point, the losing blocks (n0's), the withheld ones.
    pub withheld: Branches,
    /// Invalid blocks: (hash, reason Core gave to `submitblock`).
    pub invalid: Vec<(String, String)>,
    /// The chain P → C1 → C2; C2 is the cluster-limit rejection on n1.
    pub chain: [String; 3],
    /// 25 sat/vB payments (every node holds them).
    pub high_fee: Vec<String>,
    /// 2 sat/vB payments (every node but n2 holds them).
    pub low_fee: Vec<String>,
    /// (replaced, replacement) of the fee bump.
    pub bumped: (String, String),
    /// The RBF conflict: A (accepted), B (relayed by n3, rejected by n0–n2).
    pub conflict: (String, String),
    /// The fleet's tip at the end, and its height.
    pub tip: (String, u64),
}

impl Script {
    /// What the script made `txid` for ("C1", "low_fee[2]", "A", ...), or its first 12 digits
    /// when the script did not make it: failure messages name transactions by their part.
    pub fn role(&self, txid: &str) -> String {
        let named = [
            ("P", &self.chain[0]),
            ("C1", &self.chain[1]),
            ("C2", &self.chain[2]),
            ("original", &self.bumped.0),
            ("replacement", &self.bumped.1),
            ("A", &self.conflict.0),
            ("B", &self.conflict.1),
        ];
        if let Some((name, _)) = named.iter().find(|(_, t)| t.as_str() == txid) {
            return name.to_string();
        }
        for (list, name) in [(&self.high_fee, "high_fee"), (&self.low_fee, "low_fee")] {
            if let Some(i) = list.iter().position(|t| t == txid) {
                return format!("{name}[{i}]");
            }
        }
        format!("unknown {}", txid.get(..12).unwrap_or(txid))
    }

    /// What the script made block `hash` for ("partition.winning[2]", "invalid[0]"), or
    /// "main" for the other blocks of the fleet's chain.
    pub fn block_role(&self, hash: &str) -> String {
        for (name, b) in [("partition", &self.partition), ("withheld", &self.withheld)] {
            for (side, list) in [("losing", &b.losing), ("winning", &b.winning)] {
                if let Some(i) = list.iter().position(|h| h == hash) {
                    return format!("{name}.{side}[{i}]");
                }
            }
        }
        if let Some(i) = self.invalid.iter().position(|(h, _)| h == hash) {
            return format!("invalid[{i}]");
        }
        "main".to_string()
    }

    /// A few lines an operator can read when a test fails: counts per node and the incidents,
    /// not every hash (the full script drowns the failure message in CI output).
    pub fn summary(&self) -> String {
        let per_node = |m: &BTreeMap<String, BTreeSet<String>>| -> String {
            m.iter()
                .map(|(n, s)| format!("{n}={}", s.len()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let short = |h: &str| h.get(..12).unwrap_or(h).to_string();
        let branches = |b: &Branches| {
            format!(
                "fork {} at {}, {} losing, {} winning",
                short(&b.fork_point),
                b.fork_height,
                b.losing.len(),
                b.winning.len()
            )
        };
        format!(
            "connected: {}\ndisconnected: {}\npartition: {}\nwithheld: {}\n\
             invalid: {:?}\nhigh_fee: {}, low_fee: {}, bumped: {} -> {}, conflict: {} vs {}",
            per_node(&self.connected),
            per_node(&self.disconnected),
            branches(&self.partition),
            branches(&self.withheld),
            self.invalid
                .iter()
                .map(|(h, r)| format!("{} {r}", short(h)))
                .collect::<Vec<_>>(),
            self.high_fee.len(),
            self.low_fee.len(),
            short(&self.bumped.0),
            short(&self.bumped.1),
            short(&self.conflict.0),
            short(&self.conflict.1),
        )
    }
}

/// One reorg's sides.
#[derive(Debug, Default, Clone)]
pub struct Branches {
    /// The last common block.
    pub fork_point: String,
    /// Its height.
    pub fork_height: u64,
    /// Blocks of the branch that lost, in order.
    pub losing: Vec<String>,
    /// Blocks of the branch that won, in order.
    pub winning: Vec<String>,
}

/// A finished run: the pipeline (stopped nodes, agents and consumers; ClickHouse still up)
/// and the script.
pub struct CoreRun {
    /// The services and the test database.
    pub pipeline: Pipeline,
    /// What the script did.
    pub script: Script,
    /// Each node's debug.log lines at the end, by node name.
    pub log_lines: BTreeMap<String, u64>,
    /// Of those, the lines without a timestamp of their own (the blank lines Core opens its
    /// log with, the continuation lines of multi-line messages).
    pub untimed_lines: BTreeMap<String, u64>,
    /// The fleet, stopped (its datadirs stay until this is dropped).
    pub fleet: CoreFleet,
}

/// Runs the script on four real nodes whose logs use `format`. `None` when real Core is absent
/// outside CI (the reason is printed; in CI this fails).
pub async fn run(format: LogFormat, extra_consumer_toml: &str) -> Option<CoreRun> {
    let bins = core_binaries()?;
    let mut pipeline = Pipeline::start_services(Options {
        detectors: true,
        consumer_toml: format!("{REGTEST_DETECTORS}\n{extra_consumer_toml}"),
        mempool_secs: Some(2),
        peers_secs: Some(2),
        ..Options::default()
    })
    .await;
    let mut options: Vec<NodeOptions> = (0..4)
        .map(|i| NodeOptions::new(&format!("n{i}"), format))
        .collect();
    options[1].extra_args.push("-limitclustercount=2".into());
    options[2].extra_args.push("-minrelaytxfee=0.00005".into());
    let fleet = tokio::task::spawn_blocking(move || CoreFleet::start(&bins, options))
        .await
        .expect("start the Core fleet");
    for n in &fleet.nodes {
        pipeline.start_agent(&AgentTarget::from(n));
    }
    // Every agent is attached (its first node_status is in) before the first block.
    pipeline
        .wait_count(
            "SELECT uniqExact(node) FROM node_status",
            4,
            Duration::from_secs(60),
        )
        .await;
    let (fleet, script) = tokio::task::spawn_blocking(move || {
        let script = drive(&fleet);
        (fleet, script)
    })
    .await
    .expect("the script panicked");
    Some(finish(pipeline, fleet, script).await)
}

/// Waits for the pipeline to take in everything the nodes said, then stops the nodes, the
/// agents and the consumers.
async fn finish(mut pipeline: Pipeline, mut fleet: CoreFleet, script: Script) -> CoreRun {
    let last = script
        .connected
        .get("n0")
        .map(|s| s.len() as u64)
        .unwrap_or(0);
    pipeline
        .wait_count(
            "SELECT count() FROM block_connected FINAL WHERE node = 'n0' AND source = 'zmq'",
            last,
            Duration::from_secs(60),
        )
        .await;
    // The propagation detector settles blocks `block_settle_secs` after they were seen; give it
    // that and a margin so a false alert has the time to appear.
    tokio::time::sleep(Duration::from_secs(18)).await;
    fleet = tokio::task::spawn_blocking(move || {
        fleet.stop();
        fleet
    })
    .await
    .expect("stop the fleet");
    let mut log_lines = BTreeMap::new();
    let mut untimed_lines = BTreeMap::new();
    for n in &fleet.nodes {
        let bytes = std::fs::read(n.debug_log())
            .unwrap_or_else(|e| panic!("read {}: {e}", n.debug_log().display()));
        let text = String::from_utf8_lossy(&bytes);
        log_lines.insert(n.name.clone(), text.lines().count() as u64);
        let untimed = text.lines().filter(|l| !starts_with_timestamp(l)).count();
        untimed_lines.insert(n.name.clone(), untimed as u64);
    }
    for (node, lines) in &log_lines {
        pipeline
            .wait_count(
                &format!("SELECT count() FROM logs FINAL WHERE node = '{node}'"),
                *lines,
                Duration::from_secs(60),
            )
            .await;
    }
    pipeline.stop_agents().await;
    pipeline.stop_consumers().await;
    CoreRun {
        pipeline,
        script,
        log_lines,
        untimed_lines,
        fleet,
    }
}

/// `2026-12-05T03:22:38`: the start of every line Core writes with a time.
fn starts_with_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
}

/// The script itself (blocking: every step is a bitcoin-cli call or a wait on the nodes).
fn drive(fleet: &CoreFleet) -> Script {
    let n: Vec<&CoreNode> = fleet.nodes.iter().collect();
    let all = [0, 1, 2, 3];
    let wait = Duration::from_secs(30);
    let mut s = Script {
        nodes: n.iter().map(|x| x.name.clone()).collect(),
        ..Script::default()
    };
    let connect_all = |s: &mut Script, which: &[usize], hashes: &[String]| {
        for &i in which {
            s.connected
                .entry(n[i].name.clone())
                .or_default()
                .extend(hashes.iter().cloned());
        }
    };

    n[0].rpc("createwallet", &["bmon"]);
    // Each miner pays its own address: two nodes mining on the same parent with the same
    // mempool in the same second would otherwise build the very same block.
    let new_address = || {
        n[0].rpc("getnewaddress", &[])
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let addr = new_address();
    let addr1 = new_address();
    let addr3 = new_address();
    let blocks = n[0].mine_to(120, &addr);
    fleet.wait_for_tip(&all, &blocks[119], wait);
    s.mined_by[0].extend(blocks.iter().cloned());
    connect_all(&mut s, &all, &blocks);

    // Transactions. Raw ones spend a mature coinbase the wallet has not spent (listunspent
    // leaves out coins its mempool transactions spend).
    let p = spend(
        n[0],
        &mature_coins(n[0]).pop().expect("a mature coin"),
        10_000,
    );
    let c1 = spend(n[0], &(p.0.clone(), 0, p.1), 10_000);
    let c2 = spend(n[0], &(c1.0.clone(), 0, c1.1), 10_000);
    s.chain = [p.0.clone(), c1.0.clone(), c2.0.clone()];
    fleet.wait_for_mempool_tx(&[0, 1, 2, 3], &c1.0, wait);
    fleet.wait_for_mempool_tx(&[0, 2, 3], &c2.0, wait);

    for _ in 0..3 {
        let to = new_address();
        let txid = n[0]
            .call_named(
                "sendtoaddress",
                &[("address", &to), ("amount", "1"), ("fee_rate", "25")],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        s.high_fee
            .push(txid.as_str().unwrap_or_default().to_string());
    }
    for _ in 0..4 {
        let to = new_address();
        let txid = n[0]
            .call_named(
                "sendtoaddress",
                &[("address", &to), ("amount", "1"), ("fee_rate", "2")],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        s.low_fee
            .push(txid.as_str().unwrap_or_default().to_string());
    }
    for t in &s.high_fee {
        fleet.wait_for_mempool_tx(&all, t, wait);
    }
    for t in &s.low_fee {
        fleet.wait_for_mempool_tx(&[0, 1, 3], t, wait);
    }
    // Let the comparison see the low-fee payments settled in every mempool but n2's (its
    // settle time is 20 s, one round a second).
    std::thread::sleep(COMPARE_SPACING);
    let bumped = n[0].call_named(
        "bumpfee",
        &[("txid", &s.high_fee[0]), ("options", r#"{"fee_rate":50}"#)],
    );
    let new = bumped
        .unwrap_or_else(|e| panic!("{e}"))
        .get("txid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    fleet.wait_for_mempool_tx(&all, &new, wait);
    s.bumped = (s.high_fee[0].clone(), new);

    // An RBF conflict over P2P: A in n0–n2, then B (lower fee, same coin) relayed by n3.
    let coin = mature_coins(n[0]).pop().expect("a mature coin");
    let a = signed_spend(n[0], &coin, 20_000);
    let b = signed_spend(n[0], &coin, 10_000);
    for i in 0..3 {
        n[3].disconnect(n[i]);
    }
    let a_txid = n[0].rpc("sendrawtransaction", &[&a.1]);
    let a_txid = a_txid.as_str().unwrap_or_default().to_string();
    fleet.wait_for_mempool_tx(&[0, 1, 2], &a_txid, wait);
    let b_txid = n[3].rpc("sendrawtransaction", &[&b.1]);
    let b_txid = b_txid.as_str().unwrap_or_default().to_string();
    for i in 0..3 {
        n[3].connect(n[i]);
    }
    // Already in n3's mempool: sending it again makes n3 announce it to its new peers.
    n[3].rpc("sendrawtransaction", &[&b.1]);
    s.conflict = (a_txid, b_txid.clone());
    for peer in &n[..3] {
        wait_for_log(peer, &format!("{b_txid} (wtxid="), "was not accepted", wait);
    }

    // A block confirms it all (B leaves n3's mempool as a conflict).
    let confirm = n[0].mine_to(1, &addr);
    fleet.wait_for_tip(&all, &confirm[0], wait);
    s.mined_by[0].extend(confirm.iter().cloned());
    connect_all(&mut s, &all, &confirm);

    // Partition: n0 alone mines 3 blocks; n1 mines 4 in the open; n0 rejoins and reorgs.
    let fork = n[0].tip();
    let fork_height = n[0].height();
    for i in 1..4 {
        n[0].disconnect(n[i]);
    }
    let losing = n[0].mine_to(3, &addr);
    s.mined_by[0].extend(losing.iter().cloned());
    let mut winning = Vec::new();
    for _ in 0..4 {
        let h = n[1].mine_to(1, &addr1);
        s.mined_by[1].extend(h.iter().cloned());
        fleet.wait_for_tip(&[1, 2, 3], &h[0], wait);
        winning.extend(h);
        std::thread::sleep(OPEN_SPACING);
    }
    for i in 1..4 {
        n[0].connect(n[i]);
    }
    fleet.wait_for_tip(&all, &winning[3], wait);
    connect_all(&mut s, &[0], &losing);
    connect_all(&mut s, &all, &winning);
    s.disconnected
        .entry("n0".into())
        .or_default()
        .extend(losing.iter().cloned());
    s.partition = Branches {
        fork_point: fork,
        fork_height,
        losing,
        winning,
    };

    // Withholding: n3 mines 3 blocks alone and keeps them; n0 mines 2 in the open; n3 releases.
    let fork = n[0].tip();
    let fork_height = n[0].height();
    for i in 0..3 {
        n[3].disconnect(n[i]);
    }
    let withheld = n[3].mine_to(3, &addr3);
    s.mined_by[3].extend(withheld.iter().cloned());
    let mut open = Vec::new();
    for _ in 0..2 {
        std::thread::sleep(OPEN_SPACING);
        let h = n[0].mine_to(1, &addr);
        s.mined_by[0].extend(h.iter().cloned());
        fleet.wait_for_tip(&[0, 1, 2], &h[0], wait);
        open.extend(h);
    }
    // The last open block stays the tip a while, as it would on a real network, before the
    // release overtakes it.
    std::thread::sleep(OPEN_SPACING);
    for i in 0..3 {
        n[3].connect(n[i]);
    }
    fleet.wait_for_tip(&all, &withheld[2], wait);
    connect_all(&mut s, &[0, 1, 2], &open);
    connect_all(&mut s, &all, &withheld);
    for peer in &n[..3] {
        s.disconnected
            .entry(peer.name.clone())
            .or_default()
            .extend(open.iter().cloned());
    }
    s.withheld = Branches {
        fork_point: fork,
        fork_height,
        losing: open,
        winning: withheld,
    };

    // Invalid blocks, each on top of the tip.
    std::thread::sleep(OPEN_SPACING);
    for bad in [
        Bad::CoinbasePaysOneSatTooMuch,
        Bad::MissingInput,
        Bad::WrongMerkleRoot,
    ] {
        let (hash, hex) = invalid_block(n[0], bad);
        let answer = n[0].rpc("submitblock", &[&hex]);
        let reason = answer.as_str().unwrap_or_default().to_string();
        s.invalid.push((hash, reason));
    }
    std::thread::sleep(OPEN_SPACING);
    let last = n[1].mine_to(1, &addr1);
    s.mined_by[1].extend(last.iter().cloned());
    fleet.wait_for_tip(&all, &last[0], wait);
    connect_all(&mut s, &all, &last);
    s.tip = (last[0].clone(), n[1].height());
    s
}

/// Waits until `node`'s debug.log has a line holding both `a` and `b`.
fn wait_for_log(node: &CoreNode, a: &str, b: &str, timeout: Duration) {
    test_support::wait_until_blocking(
        timeout,
        &format!("{}: a log line with {a} {b}", node.name),
        || {
            std::fs::read_to_string(node.debug_log())
                .map(|t| t.lines().any(|l| l.contains(a) && l.contains(b)))
                .unwrap_or(false)
        },
    );
}

/// (txid, vout, value in sat) of every mature coinbase output of the wallet, oldest last.
fn mature_coins(node: &CoreNode) -> Vec<(String, u32, u64)> {
    let list = node.rpc("listunspent", &["100"]);
    let mut coins: Vec<(String, u32, u64, u64)> = list
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|u| {
            Some((
                u.get("txid")?.as_str()?.to_string(),
                u.get("vout")?.as_u64()? as u32,
                Amount::from_btc(u.get("amount")?.as_f64()?).ok()?.to_sat(),
                u.get("confirmations")?.as_u64()?,
            ))
        })
        .collect();
    coins.sort_by_key(|c| c.3);
    coins.into_iter().map(|(t, v, a, _)| (t, v, a)).collect()
}

/// A transaction spending `coin` to a new wallet address, paying `fee` sat, signed, not sent:
/// (txid, hex, output value).
fn signed_spend(node: &CoreNode, coin: &(String, u32, u64), fee: u64) -> (String, String, u64) {
    let to = node
        .rpc("getnewaddress", &[])
        .as_str()
        .unwrap_or_default()
        .to_string();
    let value = coin.2 - fee;
    let btc = Amount::from_sat(value).to_btc();
    let raw = node.rpc(
        "createrawtransaction",
        &[
            &format!(r#"[{{"txid":"{}","vout":{}}}]"#, coin.0, coin.1),
            &format!(r#"[{{"{to}":{btc:.8}}}]"#),
        ],
    );
    let signed = node.rpc(
        "signrawtransactionwithwallet",
        &[raw.as_str().unwrap_or_default()],
    );
    let hex = signed
        .get("hex")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let decoded = node.rpc("decoderawtransaction", &[&hex]);
    let txid = decoded
        .get("txid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    (txid, hex, value)
}

/// Sends a spend of `coin` paying `fee` sat; (txid, output value).
fn spend(node: &CoreNode, coin: &(String, u32, u64), fee: u64) -> (String, u64) {
    let (txid, hex, value) = signed_spend(node, coin, fee);
    node.rpc("sendrawtransaction", &[&hex]);
    (txid, value)
}

/// The three invalid blocks of the script.
#[derive(Debug, Clone, Copy)]
enum Bad {
    CoinbasePaysOneSatTooMuch,
    MissingInput,
    WrongMerkleRoot,
}

/// A block on `node`'s tip that breaks one rule: (hash, hex for `submitblock`). Only a
/// coinbase (and, for a missing input, one transaction spending an outpoint that does not
/// exist), with proof of work for regtest's target.
fn invalid_block(node: &CoreNode, bad: Bad) -> (String, String) {
    let t = node.rpc("getblocktemplate", &[r#"{"rules":["segwit"]}"#]);
    let height = t.get("height").and_then(Value::as_i64).unwrap_or(0);
    let value = t.get("coinbasevalue").and_then(Value::as_u64).unwrap_or(0);
    let prev: BlockHash = t
        .get("previousblockhash")
        .and_then(Value::as_str)
        .and_then(|h| h.parse().ok())
        .expect("template previousblockhash");
    let bits = t
        .get("bits")
        .and_then(Value::as_str)
        .and_then(|b| u32::from_str_radix(b, 16).ok())
        .expect("template bits");
    let time = t.get("curtime").and_then(Value::as_u64).unwrap_or(0) as u32;
    let version = t
        .get("version")
        .and_then(Value::as_i64)
        .unwrap_or(0x2000_0000) as i32;
    let extra = match bad {
        Bad::CoinbasePaysOneSatTooMuch => 1,
        _ => 0,
    };
    let coinbase = Transaction {
        version: TxVersion::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: Builder::new()
                .push_int(height)
                .push_slice(b"bmon")
                .into_script(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(value + extra),
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        }],
    };
    let mut txdata = vec![coinbase];
    if let Bad::MissingInput = bad {
        txdata.push(Transaction {
            version: TxVersion::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_byte_array([0x42; 32]),
                    vout: 0,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(1_000),
                script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
            }],
        });
    }
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(version),
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time,
            bits: CompactTarget::from_consensus(bits),
            nonce: 0,
        },
        txdata,
    };
    block.header.merkle_root = block.compute_merkle_root().expect("merkle root");
    if let Bad::WrongMerkleRoot = bad {
        block.header.merkle_root = TxMerkleNode::from_byte_array([0x24; 32]);
    }
    let target = block.header.target();
    while block.header.validate_pow(target).is_err() {
        block.header.nonce += 1;
    }
    (block.block_hash().to_string(), serialize_hex(&block))
}
