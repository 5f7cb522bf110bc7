//! The agent's mempool mirror on a real bitcoind, with ZMQ notifications lost mid-stream.
//!
//! A tap between bitcoind's `sequence` publisher and the agent loses `A` notifications, first
//! visibly (a gap in the sequence numbers: the agent resyncs at once), then silently (the
//! numbers are rewritten: only the mirror check against `getrawmempool` can notice). Either
//! way the mirror must end equal to the node's mempool, and the transactions the agent missed
//! must reach the bus as `tx_seen` from RPC.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bmon_e2e::{str_of, AgentTarget, Options, Pipeline};
use serde_json::Value;
use test_support::{core_binaries, CoreNode, LogFormat, Loss, NodeOptions, ZmqTap};

/// Sends 1 BTC to a new address of the node's wallet; returns the txid.
fn pay(node: &CoreNode) -> String {
    let to = node.rpc("getnewaddress", &[]);
    let txid = node.rpc("sendtoaddress", &[to.as_str().unwrap_or_default(), "1"]);
    txid.as_str().unwrap_or_default().to_string()
}

/// txids of `tx_seen` rows of node n0 with `source`.
fn seen(p: &Pipeline, source: &str) -> BTreeSet<String> {
    p.rows(&format!(
        "SELECT txid FROM tx_seen FINAL WHERE node = 'n0' AND source = '{source}'"
    ))
    .iter()
    .map(|r| str_of(r, "txid"))
    .collect()
}

async fn wait_for(p: &Pipeline, what: &str, timeout: Duration, ok: impl Fn(&Pipeline) -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok(p) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mirror_recovers_from_lost_notifications_and_equals_the_node() {
    let Some(bins) = core_binaries() else {
        return;
    };
    let mut p = Pipeline::start_services(Options {
        mempool_secs: Some(1),
        ..Options::default()
    })
    .await;
    let root = tempfile::tempdir().expect("temp dir");
    let node = tokio::task::spawn_blocking({
        let root = root.path().to_path_buf();
        move || CoreNode::start(&bins, &root, NodeOptions::new("n0", LogFormat::default()))
    })
    .await
    .expect("start bitcoind");
    node.rpc("createwallet", &["bmon"]);
    let addr = node.rpc("getnewaddress", &[]);
    node.mine_to(101, addr.as_str().unwrap_or_default());
    let tap = ZmqTap::start(&node.zmq_sequence, "sequence");
    let mut target = AgentTarget::from(&node);
    target.zmq_sequence = tap.endpoint.clone();
    target.debug_log = None;
    p.start_agent(&target);
    p.wait_count(
        "SELECT count() FROM node_status",
        1,
        Duration::from_secs(60),
    )
    .await;

    // In step: three payments reach the agent over ZMQ.
    let first: BTreeSet<String> = (0..3).map(|_| pay(&node)).collect();
    wait_for(
        &p,
        "the first payments over ZMQ",
        Duration::from_secs(30),
        |p| seen(p, "zmq").is_superset(&first),
    )
    .await;

    // A visible loss: two `A`s dropped, the next one shows the gap.
    tap.drop_next(2, Loss::Visible);
    let lost_visibly: BTreeSet<String> = (0..2).map(|_| pay(&node)).collect();
    let after_gap = pay(&node);
    wait_for(
        &p,
        "the resync after the gap",
        Duration::from_secs(30),
        |p| seen(p, "rpc").is_superset(&lost_visibly),
    )
    .await;
    assert_eq!(tap.dropped(), 2);
    let counters = p.agent_metrics("n0");
    assert!(
        counters.resync_count("gap") >= 1,
        "the gap is counted as a resync"
    );
    assert_eq!(
        counters.mirror_check_count("differs"),
        0,
        "a visible loss is mended by its resync before any mirror check"
    );

    // A silent loss: one `A` dropped and the later numbers rewritten. The next payment's `A`
    // brings the mirror to the node's sequence, where the check sees the difference.
    tap.drop_next(1, Loss::Silent);
    let lost_silently = pay(&node);
    let after_silence = pay(&node);
    wait_for(
        &p,
        "the mirror check's resync",
        Duration::from_secs(30),
        |p| seen(p, "rpc").contains(&lost_silently),
    )
    .await;
    assert_eq!(tap.dropped(), 3);
    let counters = p.agent_metrics("n0");
    assert!(
        counters.mirror_check_count("differs") >= 1,
        "the silent loss is counted as a mirror mismatch"
    );
    assert!(
        counters.resync_count("mirror_differs") >= 1,
        "the mismatch is counted as the reason of a resync"
    );
    assert!(
        counters.mirror_check_count("equal") >= 1,
        "checks in step count as equal"
    );

    // The mirror equals the node's mempool: every payment is in it, and the latest snapshot
    // shows mirror and node with the same set.
    let all: BTreeSet<String> = first
        .iter()
        .chain(&lost_visibly)
        .cloned()
        .chain([
            after_gap.clone(),
            lost_silently.clone(),
            after_silence.clone(),
        ])
        .collect();
    let node_mempool: BTreeSet<String> = node
        .rpc("getrawmempool", &[])
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(node_mempool, all);
    wait_for(
        &p,
        "a snapshot with the mirror equal",
        Duration::from_secs(30),
        |p| {
            p.rows(
            "SELECT count, txid_digest, mirror_count, mirror_digest FROM mempool_snapshot FINAL \
             WHERE node = 'n0' ORDER BY observed_at_us DESC LIMIT 1",
        )
        .first()
        .is_some_and(|r| {
            bmon_e2e::int(&r["count"]) == all.len() as i64
                && bmon_e2e::int(&r["mirror_count"]) == all.len() as i64
                && str_of(r, "mirror_digest") == str_of(r, "txid_digest")
        })
        },
    )
    .await;
    // What was lost came from RPC, and at most the payment whose notification showed the gap
    // (the resync's list already held it, so its own `A` was not applied again); the rest
    // over ZMQ; each exactly once.
    let mut lost = lost_visibly.clone();
    lost.insert(lost_silently.clone());
    let rpc = seen(&p, "rpc");
    let zmq = seen(&p, "zmq");
    assert!(
        rpc.is_superset(&lost),
        "the lost transactions were resynced: {rpc:?}"
    );
    let extra: BTreeSet<&String> = rpc.difference(&lost).collect();
    assert!(
        extra.is_empty() || extra == BTreeSet::from([&after_gap]),
        "only lost transactions (and the one that showed the gap) from RPC: {extra:?}"
    );
    assert!(
        rpc.is_disjoint(&zmq),
        "a transaction seen twice: {:?}",
        rpc.intersection(&zmq)
    );
    assert_eq!(
        rpc.union(&zmq).cloned().collect::<BTreeSet<_>>(),
        all,
        "every payment seen once"
    );
    // Some snapshot caught the silent loss: same sequence, other set.
    let caught = p.count(
        "SELECT count() FROM mempool_snapshot FINAL WHERE node = 'n0' \
         AND mirror_sequence = mempool_sequence AND mirror_digest != txid_digest",
    );
    assert!(caught >= 1, "no snapshot showed the silent loss");
    // tx_seen carries the fee the agent looked up (sendtoaddress pays a fee).
    let unpriced =
        p.count("SELECT count() FROM tx_seen FINAL WHERE node = 'n0' AND fee_sat IS NULL");
    assert_eq!(unpriced, 0, "every tx_seen has its fee");

    p.stop_agents().await;
    drop(tap);
    tokio::task::spawn_blocking(move || drop(node))
        .await
        .expect("stop bitcoind");
}
