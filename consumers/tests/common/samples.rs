//! One or more sample envelopes of every event kind, with values that exercise every column
//! (present and absent optionals, arrays, amounts). Shared by the consumers' and the CLI's
//! tests and the pipeline benchmark.

#![allow(dead_code)]

use std::str::FromStr;

use bitcoin::{Amount, BlockHash, Txid, Wtxid};
use schema::event::*;
use schema::{Envelope, EventId, Height, Kind, NodeId, UnixMicros};

/// A block hash made from a number.
pub fn block_hash(n: u64) -> BlockHash {
    BlockHash::from_str(&format!("{n:064x}")).expect("64 hex digits")
}

/// A txid made from a number.
pub fn txid(n: u64) -> Txid {
    Txid::from_str(&format!("{:064x}", n ^ 0xabcd_0000)).expect("64 hex digits")
}

/// A wtxid made from a number.
pub fn wtxid(n: u64) -> Wtxid {
    Wtxid::from_str(&format!("{:064x}", n ^ 0xdcba_0000)).expect("64 hex digits")
}

/// A node name.
pub fn node(i: u32) -> NodeId {
    NodeId::new(format!("node{i}")).expect("valid node name")
}

/// 2026-01-15 12:00:00 UTC plus `us`.
pub fn at(us: i64) -> UnixMicros {
    UnixMicros(1_768_478_400_000_000 + us)
}

/// At least one envelope of every kind in `Kind::ALL`, all distinct.
pub fn every_kind() -> Vec<Envelope> {
    let n = node(0);
    let m = node(1);
    let mut out = vec![
        Envelope::new(
            n.clone(),
            at(1),
            NodeStatus {
                version: 300000,
                subversion: "/Satoshi:30.0.0/".into(),
                chain: "regtest".into(),
                blocks: Height(111),
                headers: Height(112),
                best_block_hash: block_hash(111),
                tip_time: Some(1_768_478_000),
                initial_block_download: false,
                verification_progress: 0.75,
                peers_in: 3,
                peers_out: 8,
                mempool_count: 42,
                mempool_bytes: 12_345,
                mempool_usage: 99_000,
                mempool_min_fee_sat_per_kvb: 1000,
                uptime_secs: 3600,
                clock_offset_secs: Some(-2),
                warnings: vec!["unknown new rules activated".into(), "second".into()],
                policy: Default::default(),
            },
        ),
        Envelope::new(
            m.clone(),
            at(2),
            NodeStatus {
                version: 270100,
                subversion: "/Satoshi:27.1.0/".into(),
                chain: "regtest".into(),
                blocks: Height(110),
                headers: Height(110),
                best_block_hash: block_hash(110),
                tip_time: None,
                initial_block_download: true,
                verification_progress: 1.0,
                peers_in: 0,
                peers_out: 2,
                mempool_count: 0,
                mempool_bytes: 0,
                mempool_usage: 0,
                mempool_min_fee_sat_per_kvb: 1000,
                uptime_secs: 5,
                clock_offset_secs: None,
                warnings: vec![],
                policy: Default::default(),
            },
        ),
        Envelope::new(
            n.clone(),
            at(3),
            BlockSeen {
                hash: block_hash(112),
                height: Some(Height(112)),
                stage: BlockStage::Cmpctblock,
                peer: Some(7),
                source: Source::Log,
            },
        ),
        Envelope::new(
            m.clone(),
            at(4),
            BlockSeen {
                hash: block_hash(112),
                height: None,
                stage: BlockStage::Header,
                peer: None,
                source: Source::Log,
            },
        ),
        Envelope::new(
            n.clone(),
            at(5),
            BlockConnected {
                hash: block_hash(112),
                height: Height(112),
                prev: block_hash(111),
                header_time: 1_768_478_390,
                size: 1474,
                weight: 3934,
                tx_count: 7,
                coinbase_value: Amount::from_sat(5_000_020_585),
                subsidy: Amount::from_sat(5_000_000_000),
                fees: Some(Amount::from_sat(20_585)),
                miner_tag: Some("/bmon-pool/".into()),
                occurrence: 0,
                source: Source::Zmq,
            },
        ),
        Envelope::new(
            m.clone(),
            at(6),
            BlockConnected {
                hash: block_hash(112),
                height: Height(112),
                prev: block_hash(111),
                header_time: 1_768_478_390,
                size: 1474,
                weight: 3934,
                tx_count: 7,
                coinbase_value: Amount::from_sat(5_000_020_585),
                subsidy: Amount::from_sat(5_000_000_000),
                fees: None,
                miner_tag: None,
                occurrence: 1,
                source: Source::Rpc,
            },
        ),
        Envelope::new(
            n.clone(),
            at(7),
            BlockDisconnected {
                hash: block_hash(500),
                height: Height(112),
                occurrence: 0,
                source: Source::Zmq,
            },
        ),
        Envelope::new(
            n.clone(),
            at(8),
            Reorg {
                old_tip: block_hash(501),
                old_height: Height(113),
                new_tip: block_hash(114),
                new_height: Height(114),
                fork_point: block_hash(111),
                fork_height: Height(111),
                depth: 2,
                disconnected: vec![block_hash(501), block_hash(500)],
                connected: vec![block_hash(112), block_hash(113), block_hash(114)],
                source: Source::Zmq,
            },
        ),
        Envelope::new(
            n.clone(),
            at(9),
            ChainTips {
                tips: vec![
                    ChainTip {
                        height: Height(114),
                        hash: block_hash(114),
                        branch_len: 0,
                        status: TipStatus::Active,
                    },
                    ChainTip {
                        height: Height(113),
                        hash: block_hash(501),
                        branch_len: 2,
                        status: TipStatus::ValidFork,
                    },
                ],
            },
        ),
        Envelope::new(
            n.clone(),
            at(10),
            BlockTiming {
                hash: Some(block_hash(112)),
                height: Some(Height(112)),
                stages: vec![
                    TimingStage {
                        name: "Connect block".into(),
                        ms: 12.5,
                    },
                    TimingStage {
                        name: "Verify 6 txins".into(),
                        ms: 0.25,
                    },
                ],
                connect_total_ms: Some(13.0),
                header_to_tip_ms: Some(250.5),
                compact: Some(CompactReconstruction {
                    prefilled: 1,
                    from_mempool: 5,
                    from_extra_pool: 0,
                    requested: 1,
                }),
            },
        ),
        Envelope::new(
            m.clone(),
            at(11),
            BlockTiming {
                hash: None,
                height: None,
                stages: vec![],
                connect_total_ms: None,
                header_to_tip_ms: None,
                compact: None,
            },
        ),
        Envelope::new(
            n.clone(),
            at(12),
            InvalidBlock {
                hash: block_hash(666),
                height: Some(Height(115)),
                reason: "bad-cb-amount".into(),
                detail: Some(
                    "coinbase pays too much (actual=5000000001 vs limit=5000000000)".into(),
                ),
                peer: Some(3),
                source: Source::Log,
            },
        ),
        Envelope::new(
            n.clone(),
            at(13),
            BlockDownloadTimeout {
                hash: Some(block_hash(116)),
                peer: Some(9),
            },
        ),
        Envelope::new(
            n.clone(),
            at(14),
            TxSeen {
                txid: txid(1),
                wtxid: Some(wtxid(1)),
                mempool_sequence: Some(1001),
                vsize: Some(141),
                fee: Some(Amount::from_sat(2820)),
                source: Source::Zmq,
                parents: Vec::new(),
                spends: vec![bitcoin::OutPoint {
                    txid: txid(900),
                    vout: 1,
                }],
            },
        ),
        Envelope::new(
            m.clone(),
            at(15),
            TxSeen {
                txid: txid(1),
                wtxid: None,
                mempool_sequence: None,
                vsize: None,
                fee: None,
                source: Source::Zmq,
                parents: Vec::new(),
                spends: Vec::new(),
            },
        ),
        Envelope::new(
            n.clone(),
            at(16),
            TxRemoved {
                txid: txid(1),
                mempool_sequence: Some(1002),
                reason: RemovalReason::Block,
                source: Source::Zmq,
            },
        ),
        Envelope::new(
            n.clone(),
            at(17),
            TxRejected {
                txid: txid(2),
                wtxid: Some(wtxid(2)),
                peer: Some(4),
                reason: "min relay fee not met".into(),
                reason_text: "min relay fee not met, 100 < 141".into(),
            },
        ),
        Envelope::new(
            n.clone(),
            at(18),
            TxReplaced {
                replaced_txid: txid(3),
                replaced_wtxid: Some(wtxid(3)),
                new_txid: txid(4),
                new_wtxid: None,
                replaced_fee: Some(Amount::from_sat(1000)),
                new_fee: Some(Amount::from_sat(5000)),
                replaced_vsize: Some(110),
                new_vsize: None,
            },
        ),
        Envelope::new(
            n.clone(),
            at(19),
            MempoolSnapshot {
                count: 2,
                vsize: 300,
                total_fee: Some(Amount::from_sat(7000)),
                min_fee_sat_per_kvb: 1000,
                txid_digest: TxSetDigest::of([&txid(1), &txid(4)]),
                mempool_sequence: Some(1003),
                mirror: Some(MirrorFigures {
                    count: 2,
                    txid_digest: TxSetDigest::of([&txid(1), &txid(4)]),
                    mempool_sequence: Some(1003),
                }),
            },
        ),
        Envelope::new(
            n.clone(),
            at(20),
            TemplateSnapshot {
                height: Height(115),
                prev: block_hash(114),
                tx_count: 2,
                fees: Amount::from_sat(7000),
                weight: 1200,
                txid_digest: TxSetDigest::of([&txid(1), &txid(4)]),
                txs: vec![
                    TemplateTx {
                        txid: txid(1),
                        fee: Amount::from_sat(4000),
                        weight: 600,
                    },
                    TemplateTx {
                        txid: txid(4),
                        fee: Amount::from_sat(3000),
                        weight: 600,
                    },
                ],
            },
        ),
        Envelope::new(
            n.clone(),
            at(20),
            PeerSnapshot {
                peers: vec![Peer {
                    id: 7,
                    addr: "127.0.0.1:18444".into(),
                    network: Some("not_publicly_routable".into()),
                    connection_type: Some("manual".into()),
                    inbound: false,
                    version: 70016,
                    subversion: "/Satoshi:30.99.0/".into(),
                    ping_ms: Some(0.094),
                    bytes_sent: 2357,
                    bytes_recv: 37417,
                    conn_time: 1_795_621_960,
                    synced_blocks: Some(110),
                }],
                joined: vec![7],
                left: vec![3],
            },
        ),
        Envelope::new(
            n.clone(),
            at(21),
            UtxoStats {
                height: Height(112),
                hash: block_hash(112),
                total_amount: Amount::from_sat(560_000_020_585),
                total_unspendable_amount: Amount::from_sat(5_000_000_000),
                txouts: 120,
                muhash: Some("ab".repeat(32)),
                block_info: Some(UtxoBlockInfo {
                    prevout_spent: Amount::from_sat(100),
                    coinbase: Amount::from_sat(5_000_020_585),
                    new_outputs_ex_coinbase: Amount::from_sat(90),
                    unspendable: Amount::ZERO,
                }),
            },
        ),
        Envelope::new(
            m.clone(),
            at(22),
            UtxoStats {
                height: Height(112),
                hash: block_hash(112),
                total_amount: Amount::from_sat(560_000_020_585),
                total_unspendable_amount: Amount::ZERO,
                txouts: 120,
                muhash: None,
                block_info: None,
            },
        ),
        Envelope::new(
            n.clone(),
            at(23),
            Warning {
                message: "Warning: unknown new rules activated (versionbit 28)".into(),
            },
        ),
        Envelope::new(
            n.clone(),
            at(24),
            LogBatch {
                file_id: "2049:131077".into(),
                start_offset: 0,
                lines: vec![
                    LogLine {
                        time: at(-5_000_000),
                        offset: 0,
                        thread: Some("msghand".into()),
                        category: Some("net".into()),
                        level: Some("debug".into()),
                        location: Some("net_processing.cpp:3421".into()),
                        function: Some("ProcessMessage".into()),
                        message: "received: cmpctblock (1234 bytes) peer=7".into(),
                    },
                    LogLine {
                        time: at(-4_000_000),
                        offset: 120,
                        thread: None,
                        category: None,
                        level: None,
                        location: None,
                        function: None,
                        message: "UpdateTip: new best=... height=112".into(),
                    },
                ],
            },
        ),
        Envelope::new(
            NodeId::new("det-chain").expect("valid name"),
            at(25),
            Alert {
                alert_kind: "reorg".into(),
                severity: Severity::Warning,
                state: AlertState::Firing,
                node: Some(n.clone()),
                subject: Some(block_hash(114).to_string()),
                summary: "node0 reorged 2 blocks at height 111".into(),
                evidence: vec![
                    Evidence {
                        name: "fork_point".into(),
                        value: block_hash(111).to_string(),
                    },
                    Evidence {
                        name: "depth".into(),
                        value: "2".into(),
                    },
                ],
                fingerprint: "reorg-node0-111".into(),
                starts_at: at(8),
                ends_at: None,
                caused_by: EventId([7; 32]),
            },
        ),
        Envelope::new(
            n.clone(),
            at(26),
            Gap {
                lost_events: 12,
                from: at(-100),
                to: at(-50),
                reason: "spool full".into(),
            },
        ),
    ];
    // Distinct ids, every kind covered.
    out.sort_by_key(|e| e.observed_at);
    for kind in Kind::ALL {
        assert!(
            out.iter().any(|e| e.kind() == *kind),
            "samples miss kind {kind}"
        );
    }
    out
}

/// `count` distinct high-volume events (tx_seen from several nodes), for load tests.
pub fn many_tx_seen(count: u64, offset: u64) -> Vec<Envelope> {
    (offset..offset + count)
        .map(|i| {
            Envelope::new(
                node((i % 4) as u32),
                at(i as i64 * 10),
                TxSeen {
                    txid: txid(i),
                    wtxid: Some(wtxid(i)),
                    mempool_sequence: Some(i),
                    vsize: Some(140 + i % 100),
                    fee: Some(Amount::from_sat(1000 + i % 5000)),
                    source: Source::Zmq,
                    parents: Vec::new(),
                    spends: Vec::new(),
                },
            )
        })
        .collect()
}

/// A mixed stream: mostly tx_seen, with a node_status and a block every so often.
pub fn mixed(count: u64, offset: u64) -> Vec<Envelope> {
    (offset..offset + count)
        .map(|i| {
            let n = node((i % 3) as u32);
            match i % 50 {
                0 => Envelope::new(
                    n,
                    at(i as i64 * 10),
                    NodeStatus {
                        version: 300000,
                        subversion: "/Satoshi:30.0.0/".into(),
                        chain: "regtest".into(),
                        blocks: Height(i as u32),
                        headers: Height(i as u32),
                        best_block_hash: block_hash(i),
                        tip_time: Some(1_768_478_000),
                        initial_block_download: false,
                        verification_progress: 1.0,
                        peers_in: 1,
                        peers_out: 8,
                        mempool_count: i,
                        mempool_bytes: i * 100,
                        mempool_usage: i * 300,
                        mempool_min_fee_sat_per_kvb: 1000,
                        uptime_secs: i,
                        clock_offset_secs: Some(0),
                        warnings: vec![],
                        policy: Default::default(),
                    },
                ),
                25 => Envelope::new(
                    n,
                    at(i as i64 * 10),
                    BlockConnected {
                        hash: block_hash(i),
                        height: Height(i as u32),
                        prev: block_hash(i - 1),
                        header_time: 1_768_478_390,
                        size: 1000 + i,
                        weight: 4000,
                        tx_count: 3,
                        coinbase_value: Amount::from_sat(5_000_000_000 + i),
                        subsidy: Amount::from_sat(5_000_000_000),
                        fees: Some(Amount::from_sat(i)),
                        miner_tag: None,
                        occurrence: 0,
                        source: Source::Zmq,
                    },
                ),
                _ => Envelope::new(
                    n,
                    at(i as i64 * 10),
                    TxSeen {
                        txid: txid(i),
                        wtxid: Some(wtxid(i)),
                        mempool_sequence: Some(i),
                        vsize: Some(140),
                        fee: Some(Amount::from_sat(1000 + i % 5000)),
                        source: Source::Zmq,
                        parents: Vec::new(),
                        spends: Vec::new(),
                    },
                ),
            }
        })
        .collect()
}
