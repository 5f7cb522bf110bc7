//! simnet nodes write debug.logs (Core 0.18, 25 and 30 formats) -> agents follow them ->
//! NATS -> ch-writer -> ClickHouse: every line is in `logs` once, and the log-derived first
//! sightings of each block equal the truth's receive times within 1 ms.

use std::collections::HashMap;
use std::time::Duration;

use bmon_e2e::{int, Pipeline};

const SCENARIO: &str = r#"
seed = 3
duration_ms = 14000

[blocks]
interval_ms = 1000
distribution = "fixed"

[txs]
rate_per_s = 5.0

[[nodes]]
name = "v30"
mines = true
hashrate = 0.7
version = 300000
subversion = "/Satoshi:30.0.0/"

[[nodes]]
name = "v25"
mines = true
hashrate = 0.3
version = 250000
subversion = "/Satoshi:25.0.0/"

[[nodes]]
name = "v018"
version = 180000
subversion = "/Satoshi:0.18.0/"

[[links]]
a = "v30"
b = "v25"
delay_ms = 40

[[links]]
a = "v25"
b = "v018"
delay_ms = 60

[[events]]
kind = "reorg"
at_ms = 8000
depth = 1
miner = "v25"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_and_log_events_land_in_clickhouse() {
    let p = Pipeline::start_with(SCENARIO, true).await;
    let truth = p.wait_for_fleet(Duration::from_secs(60)).await;
    let fleet = p.fleet.as_ref().expect("fleet");
    let logs: Vec<(String, std::path::PathBuf)> = fleet
        .nodes()
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                n.debug_log.clone().expect("simnet wrote a debug.log"),
            )
        })
        .collect();

    // Every line of every file, once.
    for (node, path) in &logs {
        let text = std::fs::read(path).expect("read debug.log");
        let lines = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64;
        assert!(lines > 50, "{node}: only {lines} lines written");
        p.wait_count(
            &format!("SELECT count() FROM logs FINAL WHERE node = '{node}'"),
            lines,
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(
            p.count(&format!(
                "SELECT count() FROM logs FINAL WHERE node = '{node}'"
            )),
            lines,
            "{node}: rows in logs"
        );
        assert_eq!(
            p.count(&format!(
                "SELECT uniqExact(file_id, offset) FROM logs WHERE node = '{node}'"
            )),
            lines,
            "{node}: distinct lines in logs"
        );
    }

    // First sightings from the log: the truth's receive time of each block from a peer.
    let mut received: HashMap<(String, String), u64> = HashMap::new();
    for r in &truth {
        if let simnet::TruthEvent::BlockReceived {
            hash,
            from: Some(_),
            ..
        } = &r.event
        {
            received
                .entry((r.node.clone(), hash.to_string()))
                .or_insert(r.t_us);
        }
    }
    assert!(
        received.len() >= 15,
        "too few relayed blocks: {}",
        received.len()
    );
    p.wait_count(
        "SELECT uniqExact(node, hash) FROM block_seen FINAL WHERE source = 'log' AND stage != 'tip'",
        received.len() as u64,
        Duration::from_secs(30),
    )
    .await;
    let rows = p.rows(
        "SELECT node, hash, min(observed_at_us) AS first_us, groupUniqArray(stage) AS stages \
         FROM block_seen FINAL WHERE source = 'log' AND stage != 'tip' GROUP BY node, hash",
    );
    let mut compared = 0;
    for r in &rows {
        let key = (
            r["node"].as_str().unwrap_or_default().to_string(),
            r["hash"].as_str().unwrap_or_default().to_string(),
        );
        let Some(t) = received.get(&key) else {
            continue;
        };
        let first = int(&r["first_us"]);
        assert!(
            (first - *t as i64).abs() <= 1_000,
            "{key:?}: first seen in the log at {first}, truth {t}"
        );
        if key.0 != "v018" {
            let stages = r["stages"].to_string();
            assert!(
                stages.contains("header"),
                "{key:?}: no header sighting: {stages}"
            );
        }
        compared += 1;
    }
    assert_eq!(
        compared,
        received.len(),
        "every relayed block has a log sighting"
    );

    // Typed tables fed from the log.
    let connects = truth
        .iter()
        .filter(|r| matches!(r.event, simnet::TruthEvent::BlockConnected { .. }))
        .count() as u64;
    p.wait_count(
        "SELECT count() FROM block_timing FINAL",
        connects,
        Duration::from_secs(30),
    )
    .await;
    let log_reorgs = p.count("SELECT count() FROM reorg FINAL WHERE source = 'log'");
    let truth_reorgs = truth
        .iter()
        .filter(|r| matches!(r.event, simnet::TruthEvent::Reorg { .. }))
        .count() as u64;
    assert_eq!(log_reorgs, truth_reorgs, "reorgs seen in the logs");

    p.stop().await;
}
