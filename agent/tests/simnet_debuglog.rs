//! Agents following the debug.logs simnet writes (Core v30 format): the `block_seen` header
//! events they extract carry the times at which simnet's truth says the blocks arrived.

use std::collections::HashMap;
use std::time::Duration;

use bitcoin::BlockHash;
use schema::event::{BlockStage, Source};
use schema::{Envelope, Event};
use simnet::{Fleet, FleetOptions, Scenario, TruthEvent, TruthSink};
use test_support::{wait_until, NatsServer};
use tokio_util::sync::CancellationToken;

mod common;

const SCENARIO: &str = r#"
seed = 5
duration_ms = 7000

[blocks]
interval_ms = 900
distribution = "fixed"

[txs]
rate_per_s = 2.0

[[nodes]]
name = "node0"
mines = true

[[nodes]]
name = "node1"

[[nodes]]
name = "node2"

[[links]]
a = "node1"
b = "node0"
delay_ms = 40

[[links]]
a = "node2"
b = "node1"
delay_ms = 25

[[events]]
kind = "reorg"
at_ms = 4100
depth = 1
miner = "node0"
"#;

/// The earliest log-derived `block_seen` header time per (node, block), in µs.
fn header_times(envs: &[Envelope]) -> HashMap<(String, BlockHash), i64> {
    let mut out: HashMap<(String, BlockHash), i64> = HashMap::new();
    for e in envs {
        if let Event::BlockSeen(b) = &e.event {
            if b.stage == BlockStage::Header && b.source == Source::Log {
                let t = out
                    .entry((e.node.to_string(), b.hash))
                    .or_insert(e.observed_at.0);
                *t = (*t).min(e.observed_at.0);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_sightings_in_simnet_logs_carry_the_truth_receive_times() {
    let nats = NatsServer::start();
    common::create_streams(&nats.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::start_with(
        Scenario::from_toml(SCENARIO).unwrap(),
        TruthSink::memory(),
        FleetOptions {
            debug_log_dir: Some(dir.path().join("logs")),
        },
    )
    .await
    .unwrap();
    let shutdown = CancellationToken::new();
    let mut agents = Vec::new();
    for ep in fleet.nodes() {
        let cfg = common::simnet_agent_config(
            ep,
            &nats.url(),
            &dir.path().join("agents"),
            &common::follow_log(ep),
        );
        agents.push(tokio::spawn(agent::run(cfg, shutdown.clone())));
    }
    tokio::time::timeout(Duration::from_secs(60), fleet.finished())
        .await
        .expect("scenario ends");

    // Blocks that reached a node from a peer: the log's header line is their first sighting.
    let truth: HashMap<(String, BlockHash), i64> = fleet
        .truth()
        .iter()
        .filter_map(|r| match &r.event {
            TruthEvent::BlockReceived {
                hash,
                from: Some(_),
                ..
            } => Some(((r.node.clone(), *hash), r.t_us as i64)),
            _ => None,
        })
        .collect();
    assert!(truth.len() >= 10, "only {} blocks relayed", truth.len());
    let url = nats.url();
    wait_until(
        Duration::from_secs(30),
        "a header sighting for every relayed block",
        || {
            let url = url.clone();
            let truth = truth.clone();
            async move {
                let seen = header_times(&common::events(&url).await);
                truth.keys().all(|k| seen.contains_key(k))
            }
        },
    )
    .await;
    shutdown.cancel();
    for a in agents {
        let res = tokio::time::timeout(Duration::from_secs(20), a)
            .await
            .expect("agent stops")
            .unwrap();
        assert!(res.is_ok(), "{res:?}");
    }

    let seen = header_times(&common::events(&nats.url()).await);
    for ((node, hash), t) in &truth {
        let got = seen[&(node.clone(), *hash)];
        assert!(
            (got - t).abs() <= 1_000,
            "{node} {hash}: header seen at {got}, truth says received at {t}"
        );
    }
    fleet.shutdown().await.unwrap();
}
