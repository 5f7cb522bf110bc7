//! A small, realistic incident: three nodes of different versions follow a chain from height
//! 100 to 104; n2 mines on a branch of its own (102', 103') and reorgs back to the fleet's
//! chain at 104 (depth 2); n1 rejects an invalid block at 103; a low-fee transaction is
//! rejected by n2 and replaced (RBF) on n0 and n1 by one that 104 confirms. Every event is
//! written through the ClickHouse writer; the derived rows (validation by version, mempool and
//! template comparison, propagation) as the detectors write them.

use std::str::FromStr;

use bitcoin::{Amount, BlockHash, Txid, Wtxid};
use consumers::detector::compare::{DivergenceRow, TemplateRow, ValidationRow};
use consumers::detector::propagation::PropagationRow;
use schema::event::*;
use schema::{Envelope, EventId, Height, NodeId, UnixMicros};

use super::Site;

/// A second, in µs.
pub const S: i64 = 1_000_000;
/// A millisecond, in µs.
pub const MS: i64 = 1_000;

fn hash(tag: u64) -> BlockHash {
    BlockHash::from_str(&format!("{tag:064x}")).expect("64 hex digits")
}

/// The fleet's chain at `h`.
pub fn a(h: u32) -> BlockHash {
    hash(0xa000_0000 + u64::from(h))
}

/// n2's own branch at `h`.
pub fn b(h: u32) -> BlockHash {
    hash(0xb000_0000 + u64::from(h))
}

/// The invalid block at `h`.
pub fn x(h: u32) -> BlockHash {
    hash(0xe000_0000 + u64::from(h))
}

/// Transaction `n`.
pub fn txid(n: u64) -> Txid {
    Txid::from_str(&format!("{:064x}", 0x7000_0000 + n)).expect("64 hex digits")
}

fn wtxid(n: u64) -> Wtxid {
    Wtxid::from_str(&format!("{:064x}", 0x8000_0000 + n)).expect("64 hex digits")
}

/// Node `name`.
pub fn node(name: &str) -> NodeId {
    NodeId::new(name).expect("valid node name")
}

/// The nodes, their versions and how late each hears of a block, µs.
pub const NODES: [(&str, &str, u32, i64); 3] = [
    ("n0", "/Satoshi:30.0.0/", 300000, 0),
    ("n1", "/Satoshi:29.0.0/", 290000, 120 * MS),
    ("n2", "/Satoshi:28.1.0/", 280100, 200 * MS),
];

/// The scenario's times, anchored at `t0`.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    /// Height 100 arrives.
    pub t0: i64,
}

impl Times {
    /// The first sighting of the fleet's block at `h` (one every 10 minutes).
    pub fn block(&self, h: u32) -> i64 {
        self.t0 + i64::from(h - 100) * 600 * S
    }
    /// n2's reorg back to the fleet's chain.
    pub fn reorg(&self) -> i64 {
        self.block(104) + 300 * MS
    }
    /// The invalid block arrives at n1.
    pub fn invalid(&self) -> i64 {
        self.block(103) + 50 * S
    }
    /// Transaction 1 arrives.
    pub fn tx1(&self) -> i64 {
        self.block(103) + 200 * S
    }
    /// Transaction 2 replaces it.
    pub fn tx2(&self) -> i64 {
        self.block(103) + 300 * S
    }
    /// The log line with quotes in it.
    pub fn quote_line(&self) -> i64 {
        self.block(104) + 20 * MS
    }
}

/// The times of a scenario that ended a few minutes ago.
pub fn recent() -> Times {
    let now = web::time::now_us();
    Times {
        t0: now - 2400 * S - 300 * S,
    }
}

fn env(n: &str, at: i64, ev: impl Into<Event>) -> Envelope {
    Envelope::new(node(n), UnixMicros(at), ev)
}

fn connected(hash: BlockHash, h: u32, prev: BlockHash, miner: &str) -> BlockConnected {
    BlockConnected {
        hash,
        height: Height(h),
        prev,
        header_time: 1_768_478_000 + h,
        size: 1_500_000 + u64::from(h),
        weight: 3_990_000,
        tx_count: 3000 + u64::from(h),
        coinbase_value: Amount::from_sat(312_500_000 + 9_000_000),
        subsidy: Amount::from_sat(312_500_000),
        fees: Some(Amount::from_sat(9_000_000)),
        miner_tag: Some(miner.into()),
        occurrence: 0,
        source: Source::Zmq,
    }
}

fn seen(hash: BlockHash, h: u32, stage: BlockStage, peer: Option<u64>) -> BlockSeen {
    BlockSeen {
        hash,
        height: Some(Height(h)),
        stage,
        peer,
        source: Source::Log,
    }
}

/// Every event of the scenario.
pub fn events(t: Times) -> Vec<Envelope> {
    let mut out = Vec::new();
    // The fleet's chain. n2 connects 102..104 only when it reorgs back.
    for h in 100..=104 {
        for (n, _, _, delay) in NODES {
            let at = if n == "n2" && h >= 102 {
                t.reorg()
            } else {
                t.block(h) + delay + 15 * MS
            };
            out.push(env(n, at, connected(a(h), h, a(h - 1), "/Foundry USA/")));
            out.push(env(
                n,
                t.block(h) + delay,
                seen(a(h), h, BlockStage::Header, Some(7)),
            ));
        }
    }
    // n2's branch, then its reorg.
    out.push(env(
        "n2",
        t.block(102) + 40 * S,
        connected(b(102), 102, a(101), "/n2-solo/"),
    ));
    out.push(env(
        "n2",
        t.block(103) + 40 * S,
        connected(b(103), 103, b(102), "/n2-solo/"),
    ));
    for (h, hash) in [(103, b(103)), (102, b(102))] {
        out.push(env(
            "n2",
            t.reorg() - 1000,
            BlockDisconnected {
                hash,
                height: Height(h),
                occurrence: 0,
                source: Source::Zmq,
            },
        ));
    }
    out.push(env(
        "n2",
        t.reorg(),
        Reorg {
            old_tip: b(103),
            old_height: Height(103),
            new_tip: a(104),
            new_height: Height(104),
            fork_point: a(101),
            fork_height: Height(101),
            depth: 2,
            disconnected: vec![b(103), b(102)],
            connected: vec![a(102), a(103), a(104)],
            source: Source::Zmq,
        },
    ));
    // Block 104 in detail: each node's stages and validation.
    let t104 = t.block(104);
    for (n, stage, after, peer) in [
        ("n0", BlockStage::Cmpctblock, 2 * MS, Some(7)),
        ("n0", BlockStage::Tip, 15 * MS, None),
        ("n1", BlockStage::Block, 180 * MS, Some(2)),
        ("n1", BlockStage::Tip, 250 * MS, None),
        ("n2", BlockStage::Block, 280 * MS, Some(5)),
        ("n2", BlockStage::Tip, 300 * MS, None),
    ] {
        out.push(env(n, t104 + after, seen(a(104), 104, stage, peer)));
    }
    for (n, stages, total, to_tip, compact) in [
        (
            "n0",
            vec![("Connect block", 12.5), ("Verify 6 txins", 0.25)],
            13.0,
            15.0,
            Some(CompactReconstruction {
                prefilled: 1,
                from_mempool: 2500,
                from_extra_pool: 3,
                requested: 7,
            }),
        ),
        ("n1", vec![("Connect block", 40.0)], 41.0, 130.0, None),
        ("n2", vec![("Connect block", 90.0)], 95.5, 100.0, None),
    ] {
        out.push(env(
            n,
            t104 + 250 * MS,
            BlockTiming {
                hash: Some(a(104)),
                height: Some(Height(104)),
                stages: stages
                    .into_iter()
                    .map(|(name, ms)| TimingStage {
                        name: name.into(),
                        ms,
                    })
                    .collect(),
                connect_total_ms: Some(total),
                header_to_tip_ms: Some(to_tip),
                compact,
            },
        ));
    }
    // The invalid block.
    out.push(env(
        "n1",
        t.invalid(),
        InvalidBlock {
            hash: x(103),
            height: Some(Height(103)),
            reason: "bad-cb-amount".into(),
            detail: Some("coinbase pays too much (actual=321500001 vs limit=321500000)".into()),
            peer: Some(3),
            source: Source::Log,
        },
    ));
    // Chain tips now.
    for (n, side) in [
        ("n0", (x(103), 103, 1, TipStatus::Invalid)),
        ("n1", (x(103), 103, 1, TipStatus::Invalid)),
        ("n2", (b(103), 103, 2, TipStatus::ValidFork)),
    ] {
        out.push(env(
            n,
            t104 + S,
            ChainTips {
                tips: vec![
                    ChainTip {
                        height: Height(104),
                        hash: a(104),
                        branch_len: 0,
                        status: TipStatus::Active,
                    },
                    ChainTip {
                        height: Height(side.1),
                        hash: side.0,
                        branch_len: side.2,
                        status: side.3,
                    },
                ],
            },
        ));
    }
    // Statuses, the latest after 104.
    for (i, (n, sub, version, _)) in NODES.iter().enumerate() {
        for (at, h) in [(t.block(103) + 5 * S, 103), (t104 + 5 * S, 104)] {
            out.push(env(
                n,
                at,
                NodeStatus {
                    version: *version,
                    subversion: (*sub).into(),
                    chain: "main".into(),
                    blocks: Height(h),
                    headers: Height(h),
                    best_block_hash: a(h),
                    tip_time: Some(1_768_478_000 + i64::from(h)),
                    initial_block_download: false,
                    verification_progress: 1.0,
                    peers_in: 10 + i as u32,
                    peers_out: 8,
                    mempool_count: 5000 + i as u64,
                    mempool_bytes: 2_000_000,
                    mempool_usage: 9_000_000,
                    mempool_min_fee_sat_per_kvb: 1000,
                    uptime_secs: 86_400,
                    clock_offset_secs: Some(0),
                    warnings: vec![],
                    policy: Default::default(),
                },
            ));
        }
    }
    // Transaction 1: n0 and n1 take it, n2 refuses it; transaction 2 replaces it and 104
    // confirms that.
    for (n, after) in [("n0", 0), ("n1", 40 * MS)] {
        out.push(env(
            n,
            t.tx1() + after,
            TxSeen {
                txid: txid(1),
                wtxid: Some(wtxid(1)),
                mempool_sequence: Some(10),
                vsize: Some(141),
                fee: Some(Amount::from_sat(282)),
                source: Source::Zmq,
                parents: Vec::new(),
                spends: Vec::new(),
            },
        ));
        out.push(env(
            n,
            t.tx2() + after,
            TxReplaced {
                replaced_txid: txid(1),
                replaced_wtxid: Some(wtxid(1)),
                new_txid: txid(2),
                new_wtxid: Some(wtxid(2)),
                replaced_fee: Some(Amount::from_sat(282)),
                new_fee: Some(Amount::from_sat(1410)),
                replaced_vsize: Some(141),
                new_vsize: Some(141),
            },
        ));
        out.push(env(
            n,
            t.tx2() + after,
            TxRemoved {
                txid: txid(1),
                mempool_sequence: Some(11),
                reason: RemovalReason::Replaced,
                source: Source::Zmq,
            },
        ));
    }
    out.push(env(
        "n2",
        t.tx1() + 90 * MS,
        TxRejected {
            txid: txid(1),
            wtxid: Some(wtxid(1)),
            peer: Some(4),
            reason: "mempool min fee not met".into(),
            reason_text: "mempool min fee not met, 282 < 500".into(),
        },
    ));
    for (n, _, _, delay) in NODES {
        out.push(env(
            n,
            t.tx2() + delay,
            TxSeen {
                txid: txid(2),
                wtxid: Some(wtxid(2)),
                mempool_sequence: Some(12),
                vsize: Some(141),
                fee: Some(Amount::from_sat(1410)),
                source: Source::Zmq,
                parents: Vec::new(),
                spends: Vec::new(),
            },
        ));
        let connect = if n == "n2" {
            t.reorg()
        } else {
            t104 + delay + 15 * MS
        };
        out.push(env(
            n,
            connect + MS,
            TxRemoved {
                txid: txid(2),
                mempool_sequence: Some(13),
                reason: RemovalReason::Block,
                source: Source::Zmq,
            },
        ));
    }
    // Log lines.
    let line = |offset: u64, at: i64, category: &str, level: &str, message: String| LogLine {
        time: UnixMicros(at),
        offset,
        thread: Some("msghand".into()),
        category: Some(category.into()),
        level: Some(level.into()),
        location: None,
        function: None,
        message,
    };
    out.push(env(
        "n0",
        t104 + S,
        LogBatch {
            file_id: "2049:1".into(),
            start_offset: 0,
            lines: vec![
                line(
                    0,
                    t104 + MS,
                    "net",
                    "debug",
                    "received: cmpctblock (9123 bytes) peer=7".into(),
                ),
                line(
                    100,
                    t104 + 15 * MS,
                    "validation",
                    "info",
                    format!(
                        "UpdateTip: new best={} height=104 version=0x20000000",
                        a(104)
                    ),
                ),
                line(
                    200,
                    t.quote_line(),
                    "net",
                    "info",
                    "Saw \"quoted\" peer text: it's <odd> \\ and asks ? twice".into(),
                ),
            ],
        },
    ));
    out.push(env(
        "n1",
        t.invalid() + S,
        LogBatch {
            file_id: "2049:2".into(),
            start_offset: 0,
            lines: vec![line(
                0,
                t.invalid(),
                "validation",
                "error",
                format!("ConnectBlock(): bad-cb-amount; block {} rejected", x(103)),
            )],
        },
    ));
    // Alerts: the reorg (firing), the invalid block (firing), n2's rejections (fired, then
    // resolved).
    let alert = |kind: &str,
                 state: AlertState,
                 about: &str,
                 subject: Option<String>,
                 summary: &str,
                 evidence: Vec<(&str, String)>,
                 fingerprint: &str,
                 starts: i64,
                 ends: Option<i64>| Alert {
        alert_kind: kind.into(),
        severity: Severity::Warning,
        state,
        node: Some(node(about)),
        subject,
        summary: summary.into(),
        evidence: evidence
            .into_iter()
            .map(|(name, value)| Evidence {
                name: name.into(),
                value,
            })
            .collect(),
        fingerprint: fingerprint.into(),
        starts_at: UnixMicros(starts),
        ends_at: ends.map(UnixMicros),
        caused_by: EventId([7; 32]),
    };
    out.push(env(
        "det-chain",
        t.reorg(),
        alert(
            "reorg",
            AlertState::Firing,
            "n2",
            Some(a(104).to_string()),
            "n2 reorged 2 blocks back to the fleet's chain at height 101",
            vec![
                ("fork_point", a(101).to_string()),
                ("depth", "2".into()),
                ("old_tip", b(103).to_string()),
                ("nodes", "n2".into()),
            ],
            "reorg-n2-101",
            t.reorg(),
            None,
        ),
    ));
    out.push(env(
        "det-chain",
        t.invalid(),
        alert(
            "invalid_block",
            AlertState::Firing,
            "n1",
            Some(x(103).to_string()),
            "n1 rejected block 103: bad-cb-amount",
            vec![
                ("hash", x(103).to_string()),
                ("reason", "bad-cb-amount".into()),
                ("peer", "3".into()),
            ],
            "invalid-e0000067",
            t.invalid(),
            None,
        ),
    ));
    for (state, at, ends) in [
        (AlertState::Firing, t.tx1() + 100 * MS, None),
        (AlertState::Resolved, t.tx2(), Some(t.tx2())),
    ] {
        out.push(env(
            "det-health",
            at,
            alert(
                "tx_rejections",
                state,
                "n2",
                None,
                "n2 rejects transactions: mempool min fee not met",
                vec![
                    ("reason", "mempool min fee not met".into()),
                    ("example_txid", txid(1).to_string()),
                    (
                        "example_reason_text",
                        "mempool min fee not met, 282 < 500".into(),
                    ),
                ],
                "rejections-n2",
                t.tx1() + 100 * MS,
                ends,
            ),
        ));
    }
    // Mempools and peers.
    for (i, (n, _, _, _)) in NODES.iter().enumerate() {
        let set = if *n == "n2" {
            vec![txid(2)]
        } else {
            vec![txid(2), txid(3)]
        };
        out.push(env(
            n,
            t104 - 10 * S,
            MempoolSnapshot {
                count: set.len() as u64,
                vsize: 141 * set.len() as u64,
                total_fee: Some(Amount::from_sat(1410 * set.len() as u64)),
                min_fee_sat_per_kvb: if *n == "n2" { 5000 } else { 1000 },
                txid_digest: TxSetDigest::of(set.iter()),
                mempool_sequence: Some(100 + i as u64),
                mirror: Some(MirrorFigures {
                    count: set.len() as u64,
                    txid_digest: TxSetDigest::of(set.iter()),
                    mempool_sequence: Some(100 + i as u64),
                }),
            },
        ));
    }
    out.push(env(
        "n0",
        t104 + 2 * S,
        PeerSnapshot {
            peers: vec![
                Peer {
                    id: 7,
                    addr: "203.0.113.7:8333".into(),
                    network: Some("ipv4".into()),
                    connection_type: Some("outbound-full-relay".into()),
                    inbound: false,
                    version: 70016,
                    subversion: "/Satoshi:27.0.0/".into(),
                    ping_ms: Some(31.5),
                    bytes_sent: 120_000,
                    bytes_recv: 9_400_000,
                    conn_time: (t.t0 / S) - 3600,
                    synced_blocks: Some(104),
                },
                Peer {
                    id: 9,
                    addr: "[2001:db8::9]:8333".into(),
                    network: Some("ipv6".into()),
                    connection_type: Some("inbound".into()),
                    inbound: true,
                    version: 70016,
                    subversion: "/Satoshi:26.1.0/".into(),
                    ping_ms: Some(88.0),
                    bytes_sent: 50_000,
                    bytes_recv: 70_000,
                    conn_time: (t.t0 / S) - 60,
                    synced_blocks: Some(104),
                },
            ],
            joined: vec![9],
            left: vec![4],
        },
    ));
    out
}

/// The detectors' rows for the scenario.
pub struct Derived {
    /// `block_validation`.
    pub validation: Vec<ValidationRow>,
    /// `mempool_divergence`.
    pub divergence: Vec<DivergenceRow>,
    /// `template_comparison`.
    pub templates: Vec<TemplateRow>,
    /// `propagation`.
    pub propagation: Vec<PropagationRow>,
}

/// What `det-compare` and `det-propagation` write for the scenario.
pub fn derived(t: Times) -> Derived {
    let t104 = t.block(104);
    let secs = |us: i64| (us / S) as u32;
    let validation = [("n0", 13.0, 12.5), ("n1", 41.0, 40.0), ("n2", 95.5, 90.0)]
        .iter()
        .zip(NODES)
        .map(|((n, total, connect), (_, sub, _, _))| ValidationRow {
            event_id: format!("validation-{n}-104"),
            node: "det-compare".into(),
            observed_at_us: t104 + 250 * MS,
            observed_at: secs(t104),
            block_node: (*n).into(),
            version: sub.into(),
            hash: a(104).to_string(),
            height: Some(104),
            connect_ms: *total,
            stage: vec!["Connect block".into()],
            stage_ms: vec![*connect],
        })
        .collect();
    let divergence = ["n0", "n2"]
        .iter()
        .map(|n| {
            let n2 = *n == "n2";
            DivergenceRow {
                event_id: format!("divergence-{n}"),
                node: "det-compare".into(),
                observed_at_us: t104 - 5 * S,
                observed_at: secs(t104),
                mempool_node: (*n).into(),
                fleet_nodes: 3,
                fleet_txs: 2,
                held: if n2 { 1 } else { 2 },
                young: 0,
                missing: u64::from(n2),
                unexplained: 0,
                only_here: 0,
                reason: if n2 { vec!["min_fee".into()] } else { vec![] },
                reason_count: if n2 { vec![1] } else { vec![] },
                missing_txid: if n2 {
                    vec![txid(3).to_string()]
                } else {
                    vec![]
                },
                missing_reason: if n2 { vec!["min_fee".into()] } else { vec![] },
                missing_detail: if n2 {
                    vec!["below 5000 sat/kvB".into()]
                } else {
                    vec![]
                },
                only_here_txid: vec![],
            }
        })
        .collect();
    let templates = ["n0", "n1"]
        .iter()
        .map(|n| TemplateRow {
            event_id: format!("template-{n}"),
            node: "det-compare".into(),
            observed_at_us: t104 - 5 * S,
            observed_at: secs(t104),
            template_node: (*n).into(),
            prev: a(103).to_string(),
            height: 104,
            fleet_templates: 2,
            jaccard: if *n == "n1" { 0.5 } else { 1.0 },
            fees_sat: if *n == "n1" { 1410 } else { 2820 },
            fleet_median_fees_sat: 2820,
            weight: 1128,
            fleet_median_weight: 1128,
            left_out: u64::from(*n == "n1"),
            explained_fees_sat: 0,
            left_out_txid: if *n == "n1" {
                vec![txid(3).to_string()]
            } else {
                vec![]
            },
            left_out_fee_sat: if *n == "n1" { vec![1410] } else { vec![] },
            left_out_reason: if *n == "n1" {
                vec!["not_selected".into()]
            } else {
                vec![]
            },
        })
        .collect();
    let propagation = vec![PropagationRow {
        event_id: "propagation-104".into(),
        node: "det-propagation".into(),
        observed_at_us: t104 + 30 * S,
        observed_at: secs(t104 + 30 * S),
        object_kind: "block".into(),
        object_hash: a(104).to_string(),
        height: Some(104),
        first_seen_us: t104,
        first_seen: secs(t104),
        first_node: "n0".into(),
        median_seen_us: t104 + 120 * MS,
        spread_us: 200 * MS,
        nodes: 3,
        node_name: vec!["n0".into(), "n1".into(), "n2".into()],
        node_first_seen_us: vec![t104, t104 + 120 * MS, t104 + 200 * MS],
        node_lag_us: vec![-120 * MS, 0, 80 * MS],
        node_stage: vec!["header".into(), "header".into(), "header".into()],
        missing: vec![],
    }];
    Derived {
        validation,
        divergence,
        templates,
        propagation,
    }
}

/// Writes the whole scenario into `site`'s database.
pub async fn write(site: &Site, t: Times) {
    site.write(&events(t)).await;
    let d = derived(t);
    site.insert("block_validation", &d.validation).await;
    site.insert("mempool_divergence", &d.divergence).await;
    site.insert("template_comparison", &d.templates).await;
    site.insert("propagation", &d.propagation).await;
}
