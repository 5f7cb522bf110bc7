//! One mempool comparison round for a fleet of 10 nodes holding 300,000 transactions each
//! (every node misses a few hundred, one has a higher minimum fee), on one core.
//!
//! The state is built before timing; the figure is the round alone (`CompareDetector::round`),
//! best and median of several. Prints `name, figure, target, PASS/MISS`.

use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::{Amount, Txid};
use detectors::{CompareConfig, CompareDetector, Detector, Input};
use schema::event::*;
use schema::{Envelope, Height, NodeId, UnixMicros};

const NODES: u32 = 10;
const TXS: u32 = 300_000;
const TARGET: Duration = Duration::from_millis(200);
const RUNS: usize = 7;

fn txid(i: u32) -> Txid {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_le_bytes());
    b[31] = 7;
    Txid::from_byte_array(b)
}

fn status(min_fee: u64) -> NodeStatus {
    NodeStatus {
        version: 300000,
        subversion: "/Satoshi:30.0.0/".into(),
        chain: "main".into(),
        blocks: Height(900_000),
        headers: Height(900_000),
        best_block_hash: bitcoin::BlockHash::all_zeros(),
        tip_time: None,
        initial_block_download: false,
        verification_progress: 1.0,
        peers_in: 10,
        peers_out: 10,
        mempool_count: u64::from(TXS),
        mempool_bytes: 0,
        mempool_usage: 0,
        mempool_min_fee_sat_per_kvb: min_fee,
        uptime_secs: 1,
        clock_offset_secs: None,
        warnings: vec![],
        policy: RelayPolicy {
            min_relay_fee_sat_per_kvb: Some(min_fee),
            relays_transactions: Some(true),
            max_mempool_bytes: None,
        },
    }
}

fn main() {
    let nodes: Vec<NodeId> = (0..NODES)
        .map(|i| NodeId::new(format!("n{i}")).expect("node name"))
        .collect();
    let mut det = CompareDetector::new(CompareConfig {
        round_secs: 1_000_000,
        settle_secs: 60,
        ..CompareConfig::default()
    });
    let at = |s: i64| UnixMicros(1_700_000_000_000_000 + s * 1_000_000);
    for (i, n) in nodes.iter().enumerate() {
        let min_fee = if i == 9 { 5_000 } else { 1_000 };
        det.apply(Input::Event(&Envelope::new(
            n.clone(),
            at(0),
            status(min_fee),
        )));
    }
    let started = Instant::now();
    for t in 0..TXS {
        for (i, n) in nodes.iter().enumerate() {
            // Each node misses one transaction in a thousand (a different one each); the
            // last node has no transaction paying under 5 sat/vB (one in ten).
            let low_fee = t % 10 == 0;
            if (t + i as u32).is_multiple_of(1000) || (i == 9 && low_fee) {
                continue;
            }
            let fee = if low_fee { 400 } else { 4_000 };
            let seen = TxSeen {
                txid: txid(t),
                wtxid: None,
                mempool_sequence: Some(u64::from(t)),
                vsize: Some(200),
                fee: Some(Amount::from_sat(fee)),
                source: Source::Zmq,
                parents: Vec::new(),
                spends: Vec::new(),
            };
            det.apply(Input::Event(&Envelope::new(n.clone(), at(1), seen)));
        }
    }
    let fold = started.elapsed();
    let folded = f64::from(TXS) * f64::from(NODES);
    println!(
        "compare fold, {:.0} tx_seen/s ({} nodes x {} txs in {:.1} s)",
        folded / fold.as_secs_f64(),
        NODES,
        TXS,
        fold.as_secs_f64()
    );
    let mut times = Vec::new();
    let mut rows = Vec::new();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        rows = det.analysis_mut().round(at(120));
        times.push(t0.elapsed());
    }
    times.sort();
    assert_eq!(rows.len(), NODES as usize);
    assert!(rows.iter().all(|r| r.fleet_txs == u64::from(TXS)));
    let median = times[RUNS / 2];
    println!(
        "compare round, {} nodes x {} txs, best {:.1} ms, median {:.1} ms, target < {} ms, {}",
        NODES,
        TXS,
        times[0].as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        TARGET.as_millis(),
        if median < TARGET { "PASS" } else { "MISS" }
    );
}
