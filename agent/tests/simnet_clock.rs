//! An agent with `[clock]` set from simnet's endpoints on an accelerated fleet
//! (`time_scale = 20`): the times it stamps on ZMQ events follow the simulated clock, so they
//! agree with simnet's truth, with the blocks' header times and with the node's debug.log.

use std::collections::HashMap;
use std::time::Duration;

use bitcoin::BlockHash;
use schema::event::{BlockStage, Source};
use schema::{Envelope, Event};
use simnet::{Fleet, FleetOptions, Scenario, TruthEvent, TruthSink};
use test_support::{wait_until, NatsServer};
use tokio_util::sync::CancellationToken;

mod common;

const TIME_SCALE: i64 = 20;
/// Agreement required between the agent's and simnet's clock: 50 ms of wall time.
const TOLERANCE_US: i64 = TIME_SCALE * 50_000;

/// 200 simulated seconds (10 s of wall time): a block every 20 simulated seconds (one a wall
/// second), relayed from node0 to node1 over a 2 s (100 ms wall) link.
const SCENARIO: &str = r#"
seed = 21
duration_ms = 200000
time_scale = 20.0

[blocks]
interval_ms = 20000
distribution = "fixed"

[txs]
rate_per_s = 0.2

[[nodes]]
name = "node0"
mines = true

[[nodes]]
name = "node1"

[[links]]
a = "node1"
b = "node0"
delay_ms = 2000
"#;

/// `block_connected` from ZMQ: (observed_at, header time in µs) per block.
fn connected(envs: &[Envelope]) -> HashMap<BlockHash, (i64, i64)> {
    envs.iter()
        .filter_map(|e| match &e.event {
            Event::BlockConnected(b) if b.source == Source::Zmq => Some((
                b.hash,
                (e.observed_at.0, i64::from(b.header_time) * 1_000_000),
            )),
            _ => None,
        })
        .collect()
}

/// The earliest log-derived `block_seen` header time per block.
fn log_headers(envs: &[Envelope]) -> HashMap<BlockHash, i64> {
    let mut out: HashMap<BlockHash, i64> = HashMap::new();
    for e in envs {
        if let Event::BlockSeen(b) = &e.event {
            if b.stage == BlockStage::Header && b.source == Source::Log {
                let t = out.entry(b.hash).or_insert(e.observed_at.0);
                *t = (*t).min(e.observed_at.0);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaled_clock_stamps_zmq_events_on_the_fleets_simulated_clock() {
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
    let ep = fleet
        .nodes()
        .iter()
        .find(|e| e.name == "node1")
        .expect("node1")
        .clone();
    let clock = ep.clock.expect("an accelerated fleet publishes its clock");
    let cfg = common::simnet_agent_config(
        &ep,
        &nats.url(),
        &dir.path().join("agents"),
        &format!(
            "{}[clock]\norigin_us = {}\nscale = {}\n",
            common::follow_log(&ep),
            clock.start_us,
            clock.time_scale
        ),
    );
    assert!(cfg.clock.is_scaled());
    assert_eq!(cfg.clock.scale(), TIME_SCALE as f64);
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(agent::run(cfg, shutdown.clone()));
    tokio::time::timeout(Duration::from_secs(60), fleet.finished())
        .await
        .expect("scenario ends");

    // node1's connected blocks: simulated and wall time of each, from the truth.
    let truth: HashMap<BlockHash, (i64, i64)> = fleet
        .truth()
        .iter()
        .filter(|r| r.node == "node1")
        .filter_map(|r| match &r.event {
            TruthEvent::BlockConnected { hash, .. } => Some((
                *hash,
                (
                    r.t_us as i64,
                    r.wall_us.expect("accelerated runs record wall time") as i64,
                ),
            )),
            _ => None,
        })
        .collect();
    assert!(truth.len() >= 8, "only {} blocks connected", truth.len());
    let url = nats.url();
    let wanted = truth.len() - 2; // the agent may subscribe after the first block or two
    wait_until(
        Duration::from_secs(30),
        "block_connected for nearly every block the truth has",
        || {
            let url = url.clone();
            let truth = truth.clone();
            async move {
                let got = connected(&common::events(&url).await);
                truth.keys().filter(|h| got.contains_key(*h)).count() >= wanted
            }
        },
    )
    .await;
    shutdown.cancel();
    let res = tokio::time::timeout(Duration::from_secs(20), agent)
        .await
        .expect("agent stops")
        .unwrap();
    assert!(res.is_ok(), "{res:?}");

    let envs = common::events(&nats.url()).await;
    let got = connected(&envs);
    let headers = log_headers(&envs);
    let mut compared = 0;
    let mut far_from_wall = 0;
    for (hash, (t_us, wall_us)) in &truth {
        let Some((observed_at, header_us)) = got.get(hash) else {
            continue;
        };
        compared += 1;
        assert!(
            (observed_at - t_us).abs() <= TOLERANCE_US,
            "{hash}: block_connected observed at {observed_at}, truth connected it at {t_us} \
             (simulated; {} µs apart)",
            observed_at - t_us
        );
        // The header was stamped on the same simulated clock, a relay delay earlier.
        assert!(
            *observed_at + TOLERANCE_US >= *header_us
                && observed_at - header_us < 10 * TOLERANCE_US,
            "{hash}: observed at {observed_at}, header time {header_us}"
        );
        // The log's header line (debug.log times are simulated) agrees with the ZMQ time.
        if let Some(seen) = headers.get(hash) {
            assert!(
                (observed_at - seen).abs() <= 5 * TOLERANCE_US,
                "{hash}: log saw the header at {seen}, ZMQ connected it at {observed_at}"
            );
        }
        if t_us - wall_us > 10 * TOLERANCE_US {
            far_from_wall += 1;
        }
    }
    assert!(compared >= wanted, "only {compared} blocks compared");
    // Without the [clock] section these blocks would be stamped seconds to minutes early.
    assert!(
        far_from_wall >= compared / 2,
        "only {far_from_wall} of {compared} blocks show the clocks apart"
    );
    assert!(
        headers.keys().filter(|h| got.contains_key(*h)).count() >= wanted,
        "the log's header sightings are missing"
    );
    fleet.shutdown().await.unwrap();
}
