//! Per-node mempool policy: a node with a higher minimum relay fee, a node with a small mempool
//! and a blocks-only node beside a default one. Each ends with the transactions Core would
//! hold, the truth says why each missing one is missing, and RPC, ZMQ and debug.log agree.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::{Amount, Txid};
use serde_json::{json, Value};
use simnet::policy::SatPerKvb;
use simnet::truth::RemovalReason;
use simnet::{
    mempools_at_end, Fleet, FleetOptions, MempoolAtEnd, NotHeldReason, Scenario, TruthEvent,
    TruthRecord, TruthSink,
};

/// Four nodes around `node0` (default policy, the only miner): `picky` takes nothing below
/// 20 sat/vB, `small` has room for about 25 transactions, `blocksonly` takes none. Blocks
/// are empty (`max_txs = 0`), so every transaction made stays in some mempool, and the run
/// is shorter than the 10 s before a raised minimum fee starts to decay.
const POLICY: &str = include_str!("../scenarios/policy.toml");

const PICKY_FEE: SatPerKvb = SatPerKvb::from_sat_per_kvb(20_000);

struct Run {
    fleet: Fleet,
    truth: Vec<TruthRecord>,
    ends: BTreeMap<String, MempoolAtEnd>,
    /// Fee and vsize of every transaction any node accepted.
    txs: BTreeMap<Txid, (Amount, u64)>,
    /// `small`'s `sequence` messages: (txid, label, mempool sequence).
    small_sequence: Vec<(String, char, Option<u64>)>,
    _logs: tempfile::TempDir,
    small_log: String,
}

impl Run {
    fn node(&self, name: &str) -> &simnet::NodeEndpoints {
        self.fleet
            .nodes()
            .iter()
            .find(|n| n.name == name)
            .expect("node exists")
    }

    fn end(&self, name: &str) -> &MempoolAtEnd {
        self.ends.get(name).expect("a mempool_at_end record")
    }

    fn truth_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a TruthEvent> + 'a {
        self.truth
            .iter()
            .filter(move |r| r.node == name)
            .map(|r| &r.event)
    }

    fn pays(&self, txid: &Txid, rate: SatPerKvb) -> bool {
        let (fee, vsize) = self.txs[txid];
        rate.is_met_by(fee, vsize)
    }

    async fn rpc(&self, name: &str, method: &str, params: Value) -> Value {
        common::rpc(self.node(name), method, params).await
    }

    /// `node0`'s `getpeerinfo` entry for `peer`.
    async fn node0_peer(&self, peer: &str) -> Value {
        let id = self
            .fleet
            .with_node(0, |s| s.peer_id(peer))
            .flatten()
            .expect("a peer of node0");
        let peers = self.rpc("node0", "getpeerinfo", json!([])).await;
        peers
            .as_array()
            .and_then(|a| a.iter().find(|p| p["id"] == json!(id)).cloned())
            .expect("peer listed")
    }
}

async fn run() -> Run {
    let logs = tempfile::tempdir().expect("tempdir");
    let scenario = Scenario::from_toml(POLICY).expect("scenario parses");
    let fleet = Fleet::start_with(
        scenario,
        TruthSink::memory(),
        FleetOptions {
            debug_log_dir: Some(logs.path().to_owned()),
        },
    )
    .await
    .expect("fleet starts");
    let small = fleet.nodes()[2].zmq.sequence.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let sub = common::subscribe(&[small], stop.clone());
    common::finish(&fleet).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let small_sequence = sub
        .join()
        .expect("subscriber")
        .iter()
        .filter_map(|c| c.frames.get(1).and_then(|b| common::decode_sequence(b)))
        .collect();
    let truth = fleet.truth();
    let ends = mempools_at_end(&truth);
    let txs = truth
        .iter()
        .filter_map(|r| match &r.event {
            TruthEvent::TxAccepted {
                txid,
                fee_sat,
                vsize,
                ..
            } => Some((*txid, (Amount::from_sat(*fee_sat), *vsize))),
            _ => None,
        })
        .collect();
    let small_log = std::fs::read_to_string(logs.path().join("small/debug.log")).expect("log");
    Run {
        fleet,
        truth,
        ends,
        txs,
        small_sequence,
        _logs: logs,
        small_log,
    }
}

/// A BTC figure from RPC (an amount, or a fee rate per kvB) in satoshis.
fn sats(v: &Value) -> u64 {
    let btc = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    (btc * 1e8).round() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_higher_min_relay_fee_ends_without_the_low_fee_transactions() {
    let r = run().await;
    let picky = r.end("picky");
    assert_eq!(picky.min_relay_fee_sat_per_kvb, 20_000);
    assert!(
        picky.held.len() >= 10,
        "picky holds the well-paying ones: {}",
        picky.held.len()
    );
    for txid in &picky.held {
        assert!(r.pays(txid, PICKY_FEE), "{txid} pays under 20 sat/vB");
    }
    let low: Vec<_> = r
        .end("node0")
        .held
        .iter()
        .filter(|t| !r.pays(t, PICKY_FEE))
        .collect();
    assert!(
        low.len() >= 10,
        "low-fee transactions were made: {}",
        low.len()
    );
    for txid in &low {
        assert_eq!(
            picky.why_missing(txid),
            Some(NotHeldReason::MinFee),
            "{txid}"
        );
    }
    // What picky lacks and pays enough is waiting for a parent it never got.
    for m in &picky.missing {
        if r.pays(&m.txid, PICKY_FEE) {
            assert_eq!(m.reason, NotHeldReason::MissingParent, "{}", m.txid);
        }
    }
    // Each low-fee transaction was filtered once, with picky's fee filter as evidence.
    let filtered: BTreeSet<Txid> = r
        .truth_of("picky")
        .filter_map(|e| match e {
            TruthEvent::TxFiltered {
                txid,
                reason: NotHeldReason::MinFee,
                min_fee_sat_per_kvb: 20_000,
                ..
            } => Some(*txid),
            _ => None,
        })
        .collect();
    assert!(low.iter().all(|t| filtered.contains(*t)));
    // node0, with Core's defaults, holds everything.
    assert!(
        r.end("node0").missing.is_empty(),
        "{:?}",
        r.end("node0").missing
    );

    // RPC: picky's own fees, and node0 sees picky's fee filter.
    let info = r.rpc("picky", "getmempoolinfo", json!([])).await;
    assert_eq!(sats(&info["minrelaytxfee"]), 20_000);
    assert_eq!(sats(&info["mempoolminfee"]), 20_000);
    assert_eq!(info["size"], json!(picky.held.len()));
    let net = r.rpc("picky", "getnetworkinfo", json!([])).await;
    assert_eq!(sats(&net["relayfee"]), 20_000);
    assert_eq!(net["localrelay"], json!(true));
    let peer = r.node0_peer("picky").await;
    assert_eq!(sats(&peer["minfeefilter"]), 20_000);
    assert_eq!(peer["relaytxes"], json!(true));

    // The end records agree with the nodes' mempools, over RPC and in the library.
    for (name, end) in &r.ends {
        let raw = r.rpc(name, "getrawmempool", json!([])).await;
        let mut rpc: Vec<Txid> = raw
            .as_array()
            .expect("array")
            .iter()
            .map(|t| t.as_str().expect("txid").parse().expect("hex"))
            .collect();
        rpc.sort();
        assert_eq!(rpc, end.held, "{name}");
    }
    let live: BTreeMap<String, MempoolAtEnd> = r.fleet.mempools().into_iter().collect();
    assert_eq!(live, r.ends);
    r.fleet.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_mempool_evicts_the_lowest_fee_rates_and_raises_its_min_fee() {
    let r = run().await;
    let small = r.end("small");
    let incremental = 100;
    // The truth, in order: evictions, each trim's new minimum fee, and what got in after.
    let mut evicted: Vec<(Txid, u64)> = Vec::new();
    let mut batch: Vec<Txid> = Vec::new();
    let mut min_fee = 0;
    // The transaction that made room only had to pay the minimum fee before the trim.
    let mut admitted_at = 0;
    let mut trims = Vec::new();
    for e in r.truth_of("small") {
        match e {
            TruthEvent::TxRemoved {
                txid,
                reason: RemovalReason::Evicted,
                mempool_sequence,
            } => {
                evicted.push((*txid, *mempool_sequence));
                batch.push(*txid);
            }
            TruthEvent::MempoolTrimmed {
                removed,
                min_fee_sat_per_kvb,
            } => {
                assert_eq!(*removed, batch.len());
                // Too soon for any decay: the minimum fee only rises.
                assert!(*min_fee_sat_per_kvb >= min_fee);
                admitted_at = min_fee;
                min_fee = *min_fee_sat_per_kvb;
                // What was evicted paid at most the new minimum fee less the increment.
                let (fee, vsize) = batch.drain(..).fold((Amount::ZERO, 0), |(f, v), t| {
                    (f + r.txs[&t].0, v + r.txs[&t].1)
                });
                assert!(SatPerKvb::of(fee, vsize).to_sat_per_kvb() <= min_fee - incremental);
                trims.push(min_fee);
            }
            TruthEvent::TxAccepted { txid, .. } => {
                let rate = SatPerKvb::from_sat_per_kvb(admitted_at);
                assert!(r.pays(txid, rate), "{txid} got in under {rate}");
                admitted_at = min_fee;
            }
            _ => {}
        }
    }
    assert!(evicted.len() >= 5, "evictions: {}", evicted.len());
    // Lower fee rates went: evicted transactions paid less on average than those kept.
    let mean = |ids: &mut dyn Iterator<Item = Txid>| {
        let (fee, vsize) = ids.fold((Amount::ZERO, 0), |(f, v), t| {
            (f + r.txs[&t].0, v + r.txs[&t].1)
        });
        SatPerKvb::of(fee, vsize)
    };
    let evicted_rate = mean(&mut evicted.iter().map(|(t, _)| *t));
    let held_rate = mean(&mut small.held.iter().copied());
    assert!(evicted_rate < held_rate, "{evicted_rate} vs {held_rate}");
    let held_vsize: u64 = small.held.iter().map(|t| r.txs[t].1).sum();
    assert!(held_vsize <= 3000, "{held_vsize} vB over the limit");
    assert_eq!(small.min_fee_sat_per_kvb, min_fee);
    assert!(min_fee > 100, "the minimum fee rose: {min_fee}");
    let reasons: BTreeSet<NotHeldReason> = small.missing.iter().map(|m| m.reason).collect();
    assert!(reasons.contains(&NotHeldReason::Evicted), "{reasons:?}");
    assert!(
        reasons.is_subset(&BTreeSet::from([
            NotHeldReason::Evicted,
            NotHeldReason::MinFee,
            NotHeldReason::MissingParent,
        ])),
        "{reasons:?}"
    );

    // RPC: the raised minimum fee, the limit.
    let info = r.rpc("small", "getmempoolinfo", json!([])).await;
    assert_eq!(sats(&info["mempoolminfee"]), min_fee);
    assert_eq!(sats(&info["minrelaytxfee"]), 100);
    assert_eq!(info["maxmempool"], json!(3000));
    assert_eq!(info["bytes"], json!(held_vsize));

    // ZMQ: an `R` with the truth's mempool sequence for every eviction.
    for (txid, seq) in &evicted {
        assert!(
            r.small_sequence
                .iter()
                .any(|(h, l, s)| *h == txid.to_string() && *l == 'R' && *s == Some(*seq)),
            "no R for {txid}"
        );
    }
    // debug.log: Core's trim line for each trim, the removal callbacks for each eviction.
    let lines: Vec<&str> = r
        .small_log
        .lines()
        .filter(|l| l.contains("rolling minimum fee bumped to"))
        .collect();
    assert_eq!(lines.len(), trims.len());
    for (line, fee) in lines.iter().zip(&trims) {
        let want = SatPerKvb::from_sat_per_kvb(*fee).to_string();
        assert!(line.ends_with(&want), "{line} ≠ {want}");
    }
    let callbacks = r
        .small_log
        .lines()
        .filter(|l| l.contains("] TransactionRemovedFromMempool:") && l.contains("sizelimit"))
        .count();
    assert_eq!(callbacks, evicted.len());
    r.fleet.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocks_only_node_holds_no_relayed_transactions() {
    let r = run().await;
    let b = r.end("blocksonly");
    assert!(b.blocks_only);
    assert!(b.held.is_empty(), "{:?}", b.held);
    assert_eq!(b.missing.len(), r.end("node0").held.len());
    assert!(b
        .missing
        .iter()
        .all(|m| m.reason == NotHeldReason::BlocksOnly));
    assert!(r.truth_of("blocksonly").any(|e| matches!(
        e,
        TruthEvent::TxFiltered {
            reason: NotHeldReason::BlocksOnly,
            ..
        }
    )));
    assert!(!r
        .truth_of("blocksonly")
        .any(|e| matches!(e, TruthEvent::TxAccepted { .. })));
    let net = r.rpc("blocksonly", "getnetworkinfo", json!([])).await;
    assert_eq!(net["localrelay"], json!(false));
    let info = r.rpc("blocksonly", "getmempoolinfo", json!([])).await;
    assert_eq!(info["size"], json!(0));
    let peer = r.node0_peer("blocksonly").await;
    assert_eq!(peer["relaytxes"], json!(false));
    assert_eq!(sats(&peer["minfeefilter"]), 0);
    r.fleet.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_entries_come_from_each_nodes_own_mempool() {
    let r = run().await;
    let gbt = |name: &'static str| r.rpc(name, "getblocktemplate", json!([{"rules": ["segwit"]}]));
    let template = |v: &Value| -> Vec<(Txid, u64, u64)> {
        v["transactions"]
            .as_array()
            .expect("transactions")
            .iter()
            .map(|t| {
                (
                    t["txid"].as_str().expect("txid").parse().expect("hex"),
                    t["fee"].as_u64().expect("fee"),
                    t["weight"].as_u64().expect("weight"),
                )
            })
            .collect()
    };
    let node0 = template(&gbt("node0").await);
    let picky = template(&gbt("picky").await);
    let small = template(&gbt("small").await);
    let blocksonly = template(&gbt("blocksonly").await);
    // Each template is its node's mempool, highest fee rate first where nothing depends.
    for (name, t) in [("node0", &node0), ("picky", &picky), ("small", &small)] {
        let ids: BTreeSet<Txid> = t.iter().map(|(id, _, _)| *id).collect();
        let held: BTreeSet<Txid> = r.end(name).held.iter().copied().collect();
        assert_eq!(ids, held, "{name}");
    }
    assert!(picky
        .iter()
        .all(|(_, fee, w)| PICKY_FEE.is_met_by(Amount::from_sat(*fee), w.div_ceil(4))));
    assert!(node0
        .iter()
        .any(|(_, fee, w)| !PICKY_FEE.is_met_by(Amount::from_sat(*fee), w.div_ceil(4))));
    assert!(blocksonly.is_empty());
    assert_ne!(node0, picky);
    assert_ne!(node0, small);
    let fees: u64 = node0.iter().map(|x| x.1).sum();
    let value = gbt("node0").await["coinbasevalue"].as_u64().expect("value");
    assert_eq!(value, 5_000_000_000 + fees);

    // getmempoolentry: Core v30's fees.base and vsize.
    let (txid, fee, _) = picky[0];
    let entry = r
        .rpc("picky", "getmempoolentry", json!([txid.to_string()]))
        .await;
    assert_eq!(sats(&entry["fees"]["base"]), fee);
    assert_eq!(entry["vsize"], json!(r.txs[&txid].1));
    r.fleet.shutdown().await.expect("clean shutdown");
}
