//! simnet (3 nodes, 20 blocks, ~200 txs, a depth-2 reorg) -> 3 agents -> NATS -> ch-writer ->
//! ClickHouse: every block and tx of the truth is in ClickHouse for every node that got it, at
//! the time the node published it (within 50 ms), the reorg with its depth and hashes, and no
//! duplicates.

use std::time::Duration;

use bmon_e2e::{int, Expected, Pipeline};

/// 20 blocks one a second, ~10 txs a second, node1 releases a withheld 3-block branch at 12 s
/// (a depth-2 reorg for the others).
pub const SCENARIO: &str = r#"
seed = 11
duration_ms = 21000

[blocks]
interval_ms = 1000
distribution = "fixed"

[txs]
rate_per_s = 10.0

[[nodes]]
name = "node0"
mines = true
hashrate = 0.6

[[nodes]]
name = "node1"
mines = true
hashrate = 0.4
version = 290000
subversion = "/Satoshi:29.0.0/"

[[nodes]]
name = "node2"
extra_delay_ms = 40

[[links]]
a = "node1"
b = "node0"
delay_ms = 30

[[links]]
a = "node2"
b = "node0"
delay_ms = 50

[[links]]
a = "node2"
b = "node1"
delay_ms = 80

[[events]]
kind = "reorg"
at_ms = 12000
depth = 2
miner = "node1"
"#;

const TOLERANCE_US: i64 = 50_000;

fn hex_list(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_truth_event_lands_once_at_the_right_time() {
    let p = Pipeline::start(SCENARIO).await;
    let truth = p.wait_for_fleet(Duration::from_secs(90)).await;
    let exp = Expected::from_truth(&truth);
    assert!(
        exp.connected.len() >= 3 * 18,
        "scenario made too few blocks: {}",
        exp.connected.len()
    );
    assert!(
        exp.tx_seen.len() >= 3 * 150,
        "scenario made too few txs: {}",
        exp.tx_seen.len()
    );
    assert!(!exp.reorgs.is_empty(), "scenario made no reorg");

    p.wait_count(
        "SELECT count() FROM block_connected FINAL",
        exp.connected_rows(),
        Duration::from_secs(60),
    )
    .await;
    p.wait_count(
        "SELECT count() FROM tx_seen FINAL",
        exp.tx_seen.len() as u64,
        Duration::from_secs(60),
    )
    .await;

    // Blocks: each (node, hash) connect of the truth, at its time.
    let rows = p.rows("SELECT node, hash, observed_at_us FROM block_connected FINAL");
    assert_eq!(
        rows.len() as u64,
        exp.connected_rows(),
        "block_connected rows"
    );
    for r in &rows {
        let key = (
            r["node"].as_str().unwrap_or_default().to_string(),
            r["hash"].as_str().unwrap_or_default().to_string(),
        );
        let at = int(&r["observed_at_us"]);
        let times = exp
            .connected
            .get(&key)
            .unwrap_or_else(|| panic!("block_connected row not in the truth: {key:?}"));
        let best = times
            .iter()
            .map(|t| (at - *t as i64).abs())
            .min()
            .unwrap_or(i64::MAX);
        assert!(
            best <= TOLERANCE_US,
            "{key:?} observed {best} us away from the truth"
        );
    }

    // Disconnects.
    p.wait_count(
        "SELECT count() FROM block_disconnected FINAL WHERE source = 'zmq'",
        exp.disconnected_rows(),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        p.count("SELECT count() FROM block_disconnected FINAL WHERE source = 'zmq'"),
        exp.disconnected_rows()
    );

    // Transactions: each (node, txid, mempool sequence) at its time.
    let rows = p.rows("SELECT node, txid, mempool_sequence, observed_at_us FROM tx_seen FINAL");
    assert_eq!(rows.len(), exp.tx_seen.len(), "tx_seen rows");
    for r in &rows {
        let key = (
            r["node"].as_str().unwrap_or_default().to_string(),
            r["txid"].as_str().unwrap_or_default().to_string(),
            int(&r["mempool_sequence"]) as u64,
        );
        let t = exp
            .tx_seen
            .get(&key)
            .unwrap_or_else(|| panic!("tx_seen row not in the truth: {key:?}"));
        let at = int(&r["observed_at_us"]);
        assert!(
            (at - *t as i64).abs() <= TOLERANCE_US,
            "{key:?} observed {at}, truth {t}"
        );
    }

    // Reorgs: every node's reorg, with depth, fork point and hashes out and in.
    p.wait_count(
        "SELECT count() FROM reorg FINAL WHERE source = 'zmq'",
        exp.reorgs.len() as u64,
        Duration::from_secs(30),
    )
    .await;
    let rows = p.rows(
        "SELECT node, depth, fork_point, old_tip, new_tip, disconnected, connected FROM reorg FINAL WHERE source = 'zmq'",
    );
    assert_eq!(rows.len(), exp.reorgs.len(), "reorg rows");
    for (node, ev, _) in &exp.reorgs {
        let simnet::TruthEvent::Reorg {
            depth,
            fork_point,
            old_tip,
            new_tip,
            disconnected,
            connected,
            ..
        } = ev
        else {
            continue;
        };
        let row = rows
            .iter()
            .find(|r| r["node"] == node.as_str() && r["old_tip"] == old_tip.to_string().as_str())
            .unwrap_or_else(|| panic!("no reorg row for {node} from {old_tip}: {rows:?}"));
        assert_eq!(int(&row["depth"]), i64::from(*depth), "{node} depth");
        assert_eq!(
            row["fork_point"],
            fork_point.to_string().as_str(),
            "{node} fork point"
        );
        assert_eq!(
            row["new_tip"],
            new_tip.to_string().as_str(),
            "{node} new tip"
        );
        let out: Vec<String> = disconnected.iter().map(|h| h.to_string()).collect();
        let inn: Vec<String> = connected.iter().map(|h| h.to_string()).collect();
        assert_eq!(hex_list(&row["disconnected"]), out, "{node} hashes out");
        assert_eq!(hex_list(&row["connected"]), inn, "{node} hashes in");
    }

    // No duplicates anywhere: one row per event id, raw (not only FINAL) once merged.
    for table in [
        "block_connected",
        "block_disconnected",
        "tx_seen",
        "reorg",
        "node_status",
    ] {
        let rows = p.count(&format!("SELECT count() FROM {table} FINAL"));
        let ids = p.count(&format!("SELECT uniqExact(event_id) FROM {table}"));
        assert_eq!(rows, ids, "{table}: {rows} rows for {ids} event ids");
    }
    // node_status arrives for every node.
    assert_eq!(p.count("SELECT uniqExact(node) FROM node_status FINAL"), 3);

    p.stop().await;
}
