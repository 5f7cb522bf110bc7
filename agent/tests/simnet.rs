//! One agent per emulated node (simnet) against a real nats-server: what lands in the stream
//! matches simnet's truth, and the scenario's faults are counted without crashing anything.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use bitcoin::{BlockHash, Txid};
use schema::{Envelope, Event};
use simnet::{Fleet, Scenario, TruthEvent, TruthSink};
use test_support::{wait_until, NatsServer};
use tokio_util::sync::CancellationToken;

mod common;

const SCENARIO: &str = r#"
seed = 11
duration_ms = 14000

[blocks]
interval_ms = 1500
distribution = "fixed"

[txs]
rate_per_s = 3.0

[[nodes]]
name = "node0"
mines = true

[[nodes]]
name = "node1"

[[links]]
a = "node1"
b = "node0"
delay_ms = 30

[[events]]
kind = "reorg"
at_ms = 7700
depth = 2
miner = "node0"

[[events]]
kind = "malformed_zmq"
node = "node1"
at_ms = 5200

[[events]]
kind = "rpc_fault"
node = "node1"
from_ms = 10900
to_ms = 13300
mode = "error"
"#;

fn counter(metrics: &agent::Metrics, prefix: &str) -> u64 {
    metrics
        .render()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_the_stream_match_simnet_truth_and_faults_are_counted() {
    let nats = NatsServer::start();
    common::create_streams(&nats.url()).await;
    let fleet = Fleet::start(Scenario::from_toml(SCENARIO).unwrap(), TruthSink::memory())
        .await
        .unwrap();
    let spools = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let mut agents = Vec::new();
    let mut metrics = HashMap::new();
    for ep in fleet.nodes() {
        let cfg = common::simnet_agent_config(
            ep,
            &nats.url(),
            spools.path(),
            "[poll]\nstatus_secs = 1\nmempool_secs = 2\n",
        );
        let m = agent::Metrics::new(&cfg.node);
        metrics.insert(ep.name.clone(), m.clone());
        agents.push(tokio::spawn(agent::run_with_metrics(
            cfg,
            m,
            shutdown.clone(),
        )));
    }
    tokio::time::timeout(Duration::from_secs(60), fleet.finished())
        .await
        .expect("scenario ends");

    let truth = fleet.truth();
    // The agents have caught up when each node's last connected block is in the stream.
    let mut last_tip: HashMap<String, BlockHash> = HashMap::new();
    for r in &truth {
        if let TruthEvent::BlockConnected { hash, .. } = &r.event {
            last_tip.insert(r.node.clone(), *hash);
        }
    }
    let url = nats.url();
    wait_until(
        Duration::from_secs(30),
        "every node's final tip published",
        || {
            let url = url.clone();
            let last_tip = last_tip.clone();
            async move {
                let envs = common::events(&url).await;
                last_tip.iter().all(|(node, tip)| {
                    envs.iter().any(|e| {
                        e.node.as_str() == node
                            && matches!(&e.event, Event::BlockConnected(b) if b.hash == *tip)
                    })
                })
            }
        },
    )
    .await;
    // Nothing crashed under the faults.
    assert!(
        agents.iter().all(|a| !a.is_finished()),
        "an agent stopped early"
    );
    shutdown.cancel();
    for a in agents {
        let res = tokio::time::timeout(Duration::from_secs(20), a)
            .await
            .expect("agent stops")
            .unwrap();
        assert!(res.is_ok(), "{res:?}");
    }
    let envs = common::events(&nats.url()).await;

    for node in ["node0", "node1"] {
        let mine: Vec<&Envelope> = envs.iter().filter(|e| e.node.as_str() == node).collect();
        let truth_of =
            |f: &dyn Fn(&TruthEvent) -> Option<(BlockHash, u32)>| -> BTreeSet<(BlockHash, u32)> {
                truth
                    .iter()
                    .filter(|r| r.node == node)
                    .filter_map(|r| f(&r.event))
                    .collect()
            };
        // Blocks connected and disconnected, with heights.
        let connected: BTreeSet<(BlockHash, u32)> = mine
            .iter()
            .filter_map(|e| match &e.event {
                Event::BlockConnected(b) => Some((b.hash, b.height.0)),
                _ => None,
            })
            .collect();
        let expected = truth_of(&|e| match e {
            TruthEvent::BlockConnected { hash, height } => Some((*hash, *height)),
            _ => None,
        });
        assert_eq!(connected, expected, "{node}: block_connected");
        let disconnected: BTreeSet<(BlockHash, u32)> = mine
            .iter()
            .filter_map(|e| match &e.event {
                Event::BlockDisconnected(b) => Some((b.hash, b.height.0)),
                _ => None,
            })
            .collect();
        let expected = truth_of(&|e| match e {
            TruthEvent::BlockDisconnected { hash, height } => Some((*hash, *height)),
            _ => None,
        });
        assert_eq!(disconnected, expected, "{node}: block_disconnected");
        assert!(
            !expected.is_empty(),
            "{node}: the scenario's reorg did not happen"
        );

        // The reorg, field by field.
        let reorgs: Vec<&schema::event::Reorg> = mine
            .iter()
            .filter_map(|e| match &e.event {
                Event::Reorg(r) => Some(r),
                _ => None,
            })
            .collect();
        let truth_reorgs: Vec<&TruthEvent> = truth
            .iter()
            .filter(|r| r.node == node && matches!(r.event, TruthEvent::Reorg { .. }))
            .map(|r| &r.event)
            .collect();
        assert_eq!(reorgs.len(), truth_reorgs.len(), "{node}: reorg count");
        for (got, want) in reorgs.iter().zip(truth_reorgs) {
            let TruthEvent::Reorg {
                old_tip,
                new_tip,
                fork_point,
                fork_height,
                depth,
                disconnected,
                connected,
                ..
            } = want
            else {
                unreachable!()
            };
            assert_eq!(got.old_tip, *old_tip, "{node}");
            assert_eq!(got.new_tip, *new_tip, "{node}");
            assert_eq!(got.fork_point, *fork_point, "{node}");
            assert_eq!(got.fork_height.0, *fork_height, "{node}");
            assert_eq!(got.depth, *depth, "{node}");
            assert_eq!(&got.disconnected, disconnected, "{node}");
            assert_eq!(&got.connected, connected, "{node}");
        }

        // Every transaction the node accepted, with its mempool sequence.
        let seen: BTreeSet<(Txid, u64)> = mine
            .iter()
            .filter_map(|e| match &e.event {
                Event::TxSeen(t) => Some((t.txid, t.mempool_sequence?)),
                _ => None,
            })
            .collect();
        let accepted: BTreeSet<(Txid, u64)> = truth
            .iter()
            .filter(|r| r.node == node)
            .filter_map(|r| match &r.event {
                TruthEvent::TxAccepted {
                    txid,
                    mempool_sequence,
                    ..
                } => Some((*txid, *mempool_sequence)),
                _ => None,
            })
            .collect();
        assert_eq!(seen, accepted, "{node}: tx_seen");
        assert!(
            mine.iter().any(|e| matches!(e.event, Event::NodeStatus(_))),
            "{node}: no node_status"
        );
        assert!(
            mine.iter()
                .any(|e| matches!(e.event, Event::MempoolSnapshot(_))),
            "{node}: no mempool_snapshot"
        );
    }

    // utxo_stats: one for every block node0 connected (its RPC never failed), each what the
    // node answers for that block; node1's (some lost to its RPC outage) agree with node0's
    // wherever both have the block.
    let utxo = |node: &str| -> HashMap<BlockHash, &schema::event::UtxoStats> {
        envs.iter()
            .filter(|e| e.node.as_str() == node)
            .filter_map(|e| match &e.event {
                Event::UtxoStats(u) => Some((u.hash, u)),
                _ => None,
            })
            .collect()
    };
    let (u0, u1) = (utxo("node0"), utxo("node1"));
    let connected0: BTreeSet<(BlockHash, u32)> = truth
        .iter()
        .filter(|r| r.node == "node0")
        .filter_map(|r| match &r.event {
            TruthEvent::BlockConnected { hash, height } => Some((*hash, *height)),
            _ => None,
        })
        .collect();
    for (hash, height) in &connected0 {
        let u = u0
            .get(hash)
            .unwrap_or_else(|| panic!("node0: no utxo_stats for {hash}"));
        assert_eq!(u.height.0, *height);
        assert!(u.muhash.is_some() && u.block_info.is_some(), "{u:?}");
    }
    assert!(!u1.is_empty(), "node1: no utxo_stats");
    for (hash, u) in &u1 {
        if let Some(other) = u0.get(hash) {
            assert_eq!(
                u, other,
                "node0 and node1 disagree on the UTXO set at {hash}"
            );
        }
    }
    let ep0 = &fleet.nodes()[0];
    let rpc = agent::sources::rpc::RpcClient::new(
        &ep0.rpc_url,
        agent::sources::rpc::RpcAuth::UserPass {
            user: ep0.rpc_user.clone(),
            password: agent::config::Secret::new(ep0.rpc_password.clone()),
        },
        Duration::from_secs(5),
        agent::Metrics::new(&schema::NodeId::new("test").unwrap()),
    )
    .unwrap();
    let tip = last_tip["node0"];
    assert_eq!(
        &rpc.get_utxo_stats(&tip).await.unwrap().to_event(),
        u0[&tip],
        "node0's utxo_stats at its tip"
    );

    // node1's faults: malformed frames counted by reason, RPC errors counted.
    let m1 = &metrics["node1"];
    assert!(
        counter(m1, "bmon_agent_zmq_malformed_frames_total") >= 3,
        "{}",
        m1.render()
    );
    assert!(m1.malformed_count("frame_count") >= 1);
    assert!(m1.malformed_count("sequence_length") >= 1);
    assert!(
        counter(m1, "bmon_agent_rpc_errors_total") >= 1,
        "{}",
        m1.render()
    );
    assert_eq!(
        counter(&metrics["node0"], "bmon_agent_zmq_malformed_frames_total"),
        0
    );
    fleet.shutdown().await.unwrap();
}
