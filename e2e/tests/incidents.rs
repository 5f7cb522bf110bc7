//! One end-to-end run per incident: simnet plays the incident -> agents -> NATS -> the
//! detector consumers -> `bmon.alert.*` -> the Alertmanager router -> a real Alertmanager, which
//! must hold the alert with the right kind, node and object, within one block interval (2 s in
//! these scenarios) of the incident.

use std::collections::HashMap;
use std::time::Duration;

use bmon_e2e::{Options, Pipeline};
use simnet::truth::Incident;
use simnet::{TruthEvent, TruthRecord};

/// Thresholds for 20-second scenarios with a block every 2 s (the defaults are sized for
/// mainnet's 10 minutes).
const SHORT_RUN: &str = r#"
[detectors.chain]
rapid_run_blocks = 1000
selfish_release_window_secs = 5
selfish_check_secs = 1
[detectors.inflation]
network = "regtest"
[detectors.health]
tip_max_age_secs = 6
silent_after_secs = 30
peers_min_baseline = 1000
alert_on_ibd = false
mempool_empty_min_snapshots = 1
mempool_empty_min_secs = 0
[detectors.propagation]
block_settle_secs = 4
tx_settle_secs = 4
block_lag_floor_ms = 1500
block_spread_floor_ms = 1500
tx_alerts = false
min_samples = 3
"#;

/// Block interval of the incident scenarios.
const BLOCK_INTERVAL_US: u64 = 2_000_000;

fn scenario(file: &str) -> String {
    let path = test_support::workspace_root()
        .join("simnet/scenarios/incidents")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// An alert as Alertmanager holds it, and when it first appeared there (wall µs).
#[derive(Debug, Clone)]
struct Held {
    name: String,
    node: Option<String>,
    subject: Option<String>,
    first_held_us: u64,
    alert: serde_json::Value,
}

/// Runs a scenario with the detectors and collects what Alertmanager held, until `want`
/// alertnames are all held or `extra` passes after the scenario ends.
async fn run(
    file: &str,
    want: &[&str],
    mempool_secs: u64,
    debug_logs: bool,
) -> (Vec<TruthRecord>, Vec<Held>) {
    let p = Pipeline::start_opts(
        &scenario(file),
        Options {
            debug_logs,
            detectors: true,
            consumer_toml: SHORT_RUN.to_string(),
            mempool_secs: Some(mempool_secs),
            agent_clock: false,
            ..Options::default()
        },
    )
    .await;
    let mut held: HashMap<String, Held> = HashMap::new();
    let collect = |p: &Pipeline, held: &mut HashMap<String, Held>| {
        let now = now_us();
        for a in p.alertmanager_alerts() {
            let labels = &a["labels"];
            // One incident can fire, resolve and fire again: its start tells them apart.
            let fp = format!("{}@{}", labels["fingerprint"], a["startsAt"]);
            held.entry(fp).or_insert_with(|| Held {
                name: labels["alertname"].as_str().unwrap_or_default().to_string(),
                node: labels["node"].as_str().map(String::from),
                subject: labels["subject"].as_str().map(String::from),
                first_held_us: now,
                alert: a.clone(),
            });
        }
    };
    {
        let fleet = p.fleet.as_ref().expect("fleet");
        let finished = fleet.finished();
        tokio::pin!(finished);
        loop {
            tokio::select! {
                _ = &mut finished => break,
                _ = tokio::time::sleep(Duration::from_millis(100)) => collect(&p, &mut held),
            }
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline
        && !want.iter().all(|w| held.values().any(|h| h.name == *w))
    {
        collect(&p, &mut held);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let truth = p.fleet.as_ref().map(|f| f.truth()).unwrap_or_default();
    p.stop().await;
    let mut held: Vec<Held> = held.into_values().collect();
    held.sort_by_key(|h| h.first_held_us);
    for h in &held {
        eprintln!(
            "held: {} node={:?} subject={:?} at {}",
            h.name, h.node, h.subject, h.first_held_us
        );
    }
    (truth, held)
}

fn incidents(truth: &[TruthRecord]) -> Vec<(u64, Incident)> {
    truth
        .iter()
        .filter_map(|r| match &r.event {
            TruthEvent::Incident(i) => Some((r.t_us, i.clone())),
            _ => None,
        })
        .collect()
}

fn find<'a>(held: &'a [Held], name: &str) -> &'a Held {
    held.iter()
        .find(|h| h.name == name)
        .unwrap_or_else(|| panic!("Alertmanager never held a {name} alert; held: {held:#?}"))
}

/// The first `name` alert about `node` that appeared after `after_us`.
fn find_for<'a>(held: &'a [Held], name: &str, node: &str, after_us: u64) -> &'a Held {
    held.iter()
        .find(|h| h.name == name && h.node.as_deref() == Some(node) && h.first_held_us >= after_us)
        .unwrap_or_else(|| {
            panic!("Alertmanager never held a {name} alert for {node} after the incident; held: {held:#?}")
        })
}

/// The alert reached Alertmanager within one block interval of the incident (plus the
/// detector's own configured wait, `extra_us`).
fn assert_prompt(h: &Held, incident_us: u64, extra_us: u64) {
    let delay = h.first_held_us.saturating_sub(incident_us);
    assert!(
        delay <= BLOCK_INTERVAL_US + extra_us,
        "{} held {} ms after the incident",
        h.name,
        delay / 1000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selfish_mining_is_alerted_with_the_withheld_blocks() {
    let (truth, held) = run(
        "selfish-mining.toml",
        &["selfish_mining", "reorg"],
        5,
        false,
    )
    .await;
    let (t, inc) = incidents(&truth)
        .into_iter()
        .find(|(_, i)| matches!(i, Incident::SelfishMining { .. }))
        .expect("selfish mining incident in the truth");
    let Incident::SelfishMining { withheld, .. } = inc else {
        unreachable!()
    };
    let h = find(&held, "selfish_mining");
    // selfish_check_secs = 1: the detector waits that long for late first sightings.
    assert_prompt(h, t, 1_000_000);
    let text = h.alert.to_string();
    for w in &withheld {
        assert!(
            text.contains(&w.to_string()),
            "evidence lacks withheld block {w}: {text}"
        );
    }
    assert_prompt(find(&held, "reorg"), t, 0);
}

fn incident<F: Fn(&Incident) -> bool>(truth: &[TruthRecord], f: F) -> (u64, Incident) {
    incidents(truth)
        .into_iter()
        .find(|(_, i)| f(i))
        .expect("the incident is in the truth")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_reorg_is_a_critical_reorg_alert() {
    let (truth, held) = run("deep-reorg.toml", &["reorg"], 5, false).await;
    let (t, inc) = incident(&truth, |i| matches!(i, Incident::Reorg { .. }));
    let Incident::Reorg {
        depth, fork_point, ..
    } = inc
    else {
        unreachable!()
    };
    assert!(depth >= 5, "a deep reorg: {depth}");
    let h = find(&held, "reorg");
    assert_prompt(h, t, 0);
    assert_eq!(h.alert["labels"]["severity"], "critical");
    let text = h.alert.to_string();
    assert!(
        text.contains(&fork_point.to_string()),
        "fork point in the evidence: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inflated_coinbase_accepted_by_some_nodes_is_alerted() {
    let (truth, held) = run(
        "inflated-coinbase.toml",
        &["coinbase_overpay", "consensus_split"],
        5,
        true,
    )
    .await;
    let (t, inc) = incident(&truth, |i| matches!(i, Incident::InflatedCoinbase { .. }));
    let Incident::InflatedCoinbase {
        hash,
        accepted_by,
        rejected_by,
        ..
    } = inc
    else {
        unreachable!()
    };
    let h = find(&held, "coinbase_overpay");
    assert_prompt(h, t, 0);
    assert_eq!(
        h.subject.as_deref(),
        Some(hash.to_string().as_str()),
        "{h:?}"
    );
    assert_eq!(h.alert["labels"]["severity"], "critical");
    let first = h.node.clone().unwrap_or_default();
    assert!(
        accepted_by.contains(&first),
        "{first} is one of the accepting nodes {accepted_by:?}"
    );
    let split = find(&held, "consensus_split");
    assert_prompt(split, t, 0);
    assert_eq!(split.subject.as_deref(), Some(hash.to_string().as_str()));
    let text = split.alert.to_string();
    for n in &rejected_by {
        assert!(
            text.contains(n.as_str()),
            "rejecting node {n} named: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_every_node_rejects_is_an_invalid_block_alert_not_inflation() {
    let (truth, held) = run("invalid-block.toml", &["invalid_block"], 5, true).await;
    let (t, inc) = incident(&truth, |i| matches!(i, Incident::InvalidBlock { .. }));
    let Incident::InvalidBlock { hash, reason, .. } = inc else {
        unreachable!()
    };
    let h = find(&held, "invalid_block");
    assert_prompt(h, t, 0);
    assert_eq!(
        h.subject.as_deref(),
        Some(hash.to_string().as_str()),
        "{h:?}"
    );
    assert!(
        h.alert.to_string().contains(&reason),
        "reason {reason} in the evidence"
    );
    assert!(
        !held
            .iter()
            .any(|h| h.name == "coinbase_overpay" || h.name == "utxo_supply_exceeded"),
        "no inflation alert for a block nobody accepted: {held:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_node_gets_a_stale_tip_alert() {
    let (truth, held) = run("stuck.toml", &["tip_stale"], 5, false).await;
    let (t, _) = incident(&truth, |i| matches!(i, Incident::Stuck { .. }));
    let h = find_for(&held, "tip_stale", "node2", t);
    // tip_max_age_secs = 6 after the stuck tip, seen on the next 2 s status poll.
    assert_prompt(h, t, 6_000_000 + 2_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_mempool_empties_is_alerted() {
    let (truth, held) = run("mempool-wipe.toml", &["mempool_empty"], 1, false).await;
    let (t, _) = incident(&truth, |i| matches!(i, Incident::MempoolWipe { .. }));
    let h = find(&held, "mempool_empty");
    assert_eq!(h.node.as_deref(), Some("node2"), "{h:?}");
    // The agent polls the mempool every second.
    assert_prompt(h, t, 1_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_rejected_transactions_is_alerted() {
    let (truth, held) = run("reject-burst.toml", &["tx_rejections"], 5, true).await;
    let (_, inc) = incident(&truth, |i| matches!(i, Incident::RejectBurst { .. }));
    let Incident::RejectBurst {
        reason,
        count,
        interval_ms,
        ..
    } = inc
    else {
        unreachable!()
    };
    let (t, _) = incident(&truth, |i| matches!(i, Incident::RejectBurst { .. }));
    let h = find(&held, "tx_rejections");
    assert_eq!(h.node.as_deref(), Some("node1"), "{h:?}");
    assert!(
        h.alert.to_string().contains(&reason),
        "reason {reason} in the alert"
    );
    // The burst threshold (100) is reached partway through the burst.
    assert_prompt(h, t, u64::from(count) * interval_ms * 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_node_is_alerted_for_lagging() {
    let (truth, held) = run("slow-node.toml", &["propagation_lag"], 5, false).await;
    let _ = incident(&truth, |i| matches!(i, Incident::SlowNode { .. }));
    let h = find(&held, "propagation_lag");
    assert_eq!(h.node.as_deref(), Some("node2"), "{h:?}");
}
