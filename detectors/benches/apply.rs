//! `apply` throughput per detector on a synthetic fleet stream.
//!
//! The stream: 10 nodes, 20 blocks ten minutes apart; per block every node sees the header,
//! the compact block and connects it, reports `utxo_stats`, 1,000 transactions enter every
//! node's mempool, statuses every 10 s, mempool snapshots every 30 s and a few rejections.
//! Envelopes are built before timing. Prints one line per detector:
//! `name, events/s, target, PASS/MISS`.

use std::hint::black_box;
use std::time::Instant;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, Network, Txid};
use detectors::{build, Config, DetectorName, Input};
use schema::event::*;
use schema::{Envelope, Height, NodeId, UnixMicros};

/// Events per second each detector must sustain.
///
/// Peak mainnet bursts reach about 100 mempool acceptances per second per node, and each
/// acceptance yields at most two events (`tx_seen`, later `tx_removed`): ~200 events/s a node.
/// A fleet of 10 nodes gives ~2,000 events/s; a replay or backfill must run 100 times faster
/// than real time to catch up in reasonable time: 200,000 events/s.
const TARGET_EVENTS_PER_SEC: f64 = 200_000.0;

const NODES: usize = 10;
const BLOCKS: u32 = 20;
const TXS_PER_BLOCK: u32 = 1_000;

fn hash(i: u32) -> BlockHash {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_le_bytes());
    BlockHash::from_byte_array(b)
}

fn txid(i: u32) -> Txid {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_le_bytes());
    b[31] = 1;
    Txid::from_byte_array(b)
}

fn at(secs: f64) -> UnixMicros {
    UnixMicros(1_800_000_000_000_000 + (secs * 1e6) as i64)
}

fn stream() -> Vec<Envelope> {
    let nodes: Vec<NodeId> = (0..NODES)
        .map(|i| NodeId::new(format!("node{i}")).expect("valid name"))
        .collect();
    let mut evs = Vec::new();
    let mut next_tx = 0u32;
    for b in 1..=BLOCKS {
        let base = f64::from(b) * 600.0;
        let height = Height(850_000 + b);
        let subsidy = schema::subsidy::subsidy(height, Network::Bitcoin);
        let fees = Amount::from_sat(5_000_000);
        for (k, node) in nodes.iter().enumerate() {
            let d = base + k as f64 * 0.15;
            for (stage, off) in [(BlockStage::Header, 0.0), (BlockStage::Cmpctblock, 0.05)] {
                evs.push(Envelope::new(
                    node.clone(),
                    at(d + off),
                    BlockSeen {
                        hash: hash(b),
                        height: Some(height),
                        stage,
                        peer: Some(3),
                        source: Source::Log,
                    },
                ));
            }
            evs.push(Envelope::new(
                node.clone(),
                at(d + 0.2),
                BlockConnected {
                    hash: hash(b),
                    height,
                    prev: hash(b - 1),
                    header_time: at(base).as_secs() as u32,
                    size: 1_500_000,
                    weight: 3_990_000,
                    tx_count: u64::from(TXS_PER_BLOCK),
                    coinbase_value: subsidy + fees,
                    subsidy,
                    fees: Some(fees),
                    miner_tag: None,
                    occurrence: 0,
                    source: Source::Zmq,
                },
            ));
            evs.push(Envelope::new(
                node.clone(),
                at(d + 0.5),
                UtxoStats {
                    height,
                    hash: hash(b),
                    total_amount: Amount::from_sat(19_700_000 * 100_000_000),
                    total_unspendable_amount: Amount::from_sat(230 * 100_000_000),
                    txouts: 170_000_000,
                    muhash: Some("ab".repeat(32)),
                    block_info: None,
                },
            ));
        }
        // Transactions spread over the interval, each reaching every node within a second.
        for i in 0..TXS_PER_BLOCK {
            let t0 = base + 1.0 + f64::from(i) * 0.59;
            for (k, node) in nodes.iter().enumerate() {
                evs.push(Envelope::new(
                    node.clone(),
                    at(t0 + k as f64 * 0.08),
                    TxSeen {
                        txid: txid(next_tx),
                        wtxid: None,
                        mempool_sequence: Some(u64::from(next_tx)),
                        vsize: Some(180),
                        fee: None,
                        source: Source::Zmq,
                        parents: Vec::new(),
                        spends: Vec::new(),
                    },
                ));
            }
            next_tx += 1;
        }
        for s in (0..600).step_by(10) {
            for (k, node) in nodes.iter().enumerate() {
                let t = base + f64::from(s) + k as f64 * 0.01;
                evs.push(Envelope::new(
                    node.clone(),
                    at(t),
                    NodeStatus {
                        version: 300000,
                        subversion: "/Satoshi:30.0.0/".into(),
                        chain: "main".into(),
                        blocks: height,
                        headers: height,
                        best_block_hash: hash(b),
                        tip_time: Some(at(base).as_secs()),
                        initial_block_download: false,
                        verification_progress: 1.0,
                        peers_in: 40,
                        peers_out: 10,
                        mempool_count: 20_000,
                        mempool_bytes: 10_000_000,
                        mempool_usage: 40_000_000,
                        mempool_min_fee_sat_per_kvb: 1000,
                        uptime_secs: 10_000,
                        clock_offset_secs: Some(0),
                        warnings: vec![],
                        policy: Default::default(),
                    },
                ));
                if s % 30 == 0 {
                    evs.push(Envelope::new(
                        node.clone(),
                        at(t + 0.001),
                        MempoolSnapshot {
                            count: 20_000,
                            vsize: 10_000_000,
                            total_fee: None,
                            min_fee_sat_per_kvb: 1000,
                            txid_digest: TxSetDigest::default(),
                            mempool_sequence: None,
                            mirror: None,
                        },
                    ));
                }
                if s % 60 == 0 {
                    evs.push(Envelope::new(
                        node.clone(),
                        at(t + 0.002),
                        TxRejected {
                            txid: txid(1_000_000 + s as u32),
                            wtxid: None,
                            peer: Some(7),
                            reason: "insufficient fee".into(),
                            reason_text: "insufficient fee, rejecting replacement".into(),
                        },
                    ));
                }
            }
        }
    }
    // The agents' streams interleave by time on JetStream.
    evs.sort_by_key(|e| e.observed_at);
    evs
}

fn main() {
    let evs = stream();
    let config = Config::default();
    for name in DetectorName::ALL {
        let mut best = 0.0f64;
        let mut outputs = 0usize;
        // Best of three runs, each from a fresh detector.
        for _ in 0..3 {
            let mut det = build(name, &config);
            let start = Instant::now();
            let mut n = 0usize;
            for e in &evs {
                n += black_box(det.apply(Input::Event(e))).len();
            }
            let rate = evs.len() as f64 / start.elapsed().as_secs_f64();
            best = best.max(rate);
            outputs = n;
        }
        let verdict = if best >= TARGET_EVENTS_PER_SEC {
            "PASS"
        } else {
            "MISS"
        };
        println!(
            "apply_{name}, {best:.0} events/s, target {TARGET_EVENTS_PER_SEC:.0}, {verdict} ({} events, {outputs} outputs)",
            evs.len()
        );
    }
}
