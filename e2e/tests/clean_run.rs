//! Six simulated hours of a healthy fleet (simnet's `clean-6h.toml`, 1200× faster than real
//! time, the agents stamping events on the same simulated clock) through every detector and the
//! Alertmanager router: nothing fires.

use std::time::Duration;

use bmon_e2e::{Options, Pipeline};

/// Mainnet-sized thresholds, except two things the acceleration magnifies: the agents' polling
/// runs in wall seconds (a status every 2 wall seconds is one every 2400 simulated seconds), and
/// a few milliseconds of wall-clock jitter in when an agent handles a ZMQ message become tens of
/// simulated seconds, so the propagation floors are 250 ms of wall time (300 simulated seconds, half a block interval).
const CLEAN_RUN: &str = r#"
[detectors.inflation]
network = "regtest"
[detectors.health]
silent_after_secs = 9600
[detectors.propagation]
block_lag_floor_ms = 300000
block_spread_floor_ms = 300000
tx_lag_floor_ms = 300000
tx_spread_floor_ms = 300000
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_clean_simulated_hours_fire_no_alert() {
    let path = test_support::workspace_root().join("simnet/scenarios/clean-6h.toml");
    let scenario = std::fs::read_to_string(&path).expect("read clean-6h.toml");
    let mut p = Pipeline::start_opts(
        &scenario,
        Options {
            debug_logs: false,
            detectors: true,
            consumer_toml: CLEAN_RUN.to_string(),
            mempool_secs: Some(2),
            agent_clock: true,
            ..Options::default()
        },
    )
    .await;
    let truth = p.wait_for_fleet(Duration::from_secs(120)).await;
    // The simulated chain stops with the scenario; so must the observation, or the agents'
    // accelerated clocks would rightly see every tip go stale within seconds.
    p.stop_agents().await;
    let connects = truth
        .iter()
        .filter(|r| matches!(r.event, simnet::TruthEvent::BlockConnected { .. }))
        .count() as u64;
    assert!(
        connects >= 3 * 35,
        "six simulated hours of blocks: {connects} connects"
    );
    let first = truth.first().map(|r| r.t_us).unwrap_or_default();
    let last = truth.last().map(|r| r.t_us).unwrap_or_default();
    assert!(
        last - first >= 6 * 3_600_000_000 - 600_000_000,
        "simulated span {} s",
        (last - first) / 1_000_000
    );
    // Everything the agents published is through ch-writer, so the detectors had it too.
    p.wait_count(
        "SELECT count() FROM block_connected FINAL",
        connects,
        Duration::from_secs(60),
    )
    .await;
    // Give the detectors and the router time for ticks and resends.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let held = p.alertmanager_alerts();
    let stored = p.rows("SELECT alert_kind, alert_node, summary FROM alerts FINAL");
    p.stop().await;
    assert!(
        held.is_empty(),
        "Alertmanager holds alerts after a clean run: {held:#?}"
    );
    assert!(
        stored.is_empty(),
        "alerts were raised during a clean run: {stored:#?}"
    );
}
