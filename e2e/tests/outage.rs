//! NATS goes away for 20 s in the middle of a simnet run: agents spool to disk and drain when it
//! returns, ch-writer reconnects, and afterwards every event of the truth is in ClickHouse once.

use std::time::Duration;

use bmon_e2e::{Expected, Pipeline};

const SCENARIO: &str = r#"
seed = 5
duration_ms = 28000

[blocks]
interval_ms = 1500
distribution = "fixed"

[txs]
rate_per_s = 5.0

[[nodes]]
name = "node0"
mines = true
hashrate = 1.0

[[nodes]]
name = "node1"

[[nodes]]
name = "node2"

[[links]]
a = "node1"
b = "node0"
delay_ms = 30

[[links]]
a = "node2"
b = "node1"
delay_ms = 30
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_during_a_nats_outage_arrive_once_afterwards() {
    let mut p = Pipeline::start(SCENARIO).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = p.count("SELECT count() FROM tx_seen FINAL");
    p.nats.stop();
    tokio::time::sleep(Duration::from_secs(20)).await;
    p.nats.restart();

    let truth = p.wait_for_fleet(Duration::from_secs(60)).await;
    let exp = Expected::from_truth(&truth);
    assert!(
        exp.tx_seen.len() as u64 > before + 100,
        "most transactions must happen during the outage ({before} before, {} in all)",
        exp.tx_seen.len()
    );
    p.assert_truth_stored_once(
        &exp,
        &[
            "block_connected",
            "tx_seen",
            "node_status",
            "mempool_snapshot",
        ],
    )
    .await;
    let stored: std::collections::HashSet<(String, String)> = p
        .rows("SELECT node, txid FROM tx_seen FINAL")
        .iter()
        .map(|r| {
            (
                r["node"].as_str().unwrap_or_default().to_string(),
                r["txid"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let missing: Vec<_> = exp
        .tx_seen
        .keys()
        .filter(|(node, txid, _)| !stored.contains(&(node.clone(), txid.clone())))
        .collect();
    assert!(missing.is_empty(), "missing after the outage: {missing:?}");
    p.stop().await;
}
