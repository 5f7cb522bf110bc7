//! End to end on a real Bitcoin Core regtest fleet, once per debug.log format: four real nodes →
//! agents → NATS → ch-writer and the detectors → ClickHouse and Alertmanager, driven through
//! mining, wallet payments, a fee bump, an RBF conflict and a cluster-limit rejection over P2P, a
//! node with a higher min relay fee, a depth-3 partition reorg, a withheld branch released at
//! once, and three invalid blocks (the script: `bmon_e2e::core_run`). Every table and every
//! alert is held to what the script did.
//!
//! The formats: `-logtimemicros`, `-logthreadnames` and `-logsourcelocations` in all eight
//! combinations (v30 built with GCC writes the whole function signature for the last).

use std::collections::{BTreeMap, BTreeSet};

use bmon_e2e::core_run::{self, CoreRun};
use bmon_e2e::{ints, str_of, strings, Pipeline};
use serde_json::Value;
use test_support::LogFormat;

/// Alerts the script causes besides its incidents, at info level, and why:
/// - `rapid_blocks`: the script mines 120 blocks in a second, and releases withheld blocks at once;
/// - `stale_tip`: each reorg leaves the losing branch as a `valid-fork` tip on the nodes that had
///   it.
const EXPECTED_INFO: &[&str] = &["rapid_blocks", "stale_tip"];

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

/// (node -> set of `column`) for the rows of `sql` (which selects `node` and `column`).
fn by_node(p: &Pipeline, sql: &str, column: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in p.rows(sql) {
        out.entry(str_of(&r, "node"))
            .or_default()
            .insert(str_of(&r, column));
    }
    out
}

async fn run(format: LogFormat) {
    let Some(run) = core_run::run(format, "").await else {
        return;
    };
    let name = format.name();
    println!("log format {name}: script\n{}", run.script.summary());
    check_blocks(&run);
    check_reorgs(&run);
    check_invalid_blocks(&run);
    check_utxo_set(&run);
    check_transactions(&run);
    check_mempool_divergence(&run);
    check_templates_and_peers(&run);
    check_node_state(&run);
    check_alerts(&run);
    check_logs(&run, format);
    if format == LogFormat::default() {
        check_web(&run).await;
    }
    println!("log format {name}: every table and alert matches the script");
}

/// bmon-web in a real browser on the real fleet's data (once, on the plain log format): the
/// fork tree shows both reorgs, the block page the invalid block and each node's view, the log
/// search a line; each page saved as a screenshot `core-*.png`.
async fn check_web(run: &CoreRun) {
    use std::time::Duration;
    let Some(browser) = test_support::Browser::start().await else {
        return;
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let base = run.pipeline.start_web(shutdown.clone()).await;
    let look = |path: String, shot: &'static str, needles: Vec<String>| {
        let browser = &browser;
        let base = &base;
        async move {
            browser.open(&format!("{base}{path}")).await;
            for n in &needles {
                browser
                    .wait_for_text(n, Duration::from_secs(10))
                    .await
                    .unwrap_or_else(|text| panic!("{path} lacks {n:?}:\n{text}"));
            }
            browser.screenshot(&format!("core-{shot}")).await;
            browser.text().await
        }
    };
    let s = &run.script;
    look("/".into(), "fleet", vec!["n0".into(), "n3".into()]).await;
    let tips = look(
        "/tips?n=15".into(),
        "tips",
        vec!["2 reorg(s)".into(), "bad-cb-amount".into()],
    )
    .await;
    assert!(tips.contains("off it"), "{tips}");
    let (invalid, reason) = &s.invalid[0];
    let block = look(
        format!("/block/{invalid}"),
        "block-invalid",
        vec![reason.clone(), "Per node".into()],
    )
    .await;
    assert!(block.contains("n1") && block.contains("n2"), "{block}");
    look(
        format!("/block/{}", s.withheld.winning[0]),
        "block-withheld",
        vec!["n0".into(), "n1".into(), "n2".into(), "n3".into()],
    )
    .await;
    look(
        format!("/tx/{}", s.conflict.1),
        "tx-rejected",
        vec!["insufficient fee".into()],
    )
    .await;
    look("/logs?q=UpdateTip".into(), "logs", vec!["UpdateTip".into()]).await;
    look("/alerts".into(), "alerts", vec!["selfish_mining".into()]).await;
    look("/mempools".into(), "mempools", vec!["Mempools".into()]).await;
    look(
        "/validation".into(),
        "validation",
        vec!["Validation".into()],
    )
    .await;
    browser.close().await;
    shutdown.cancel();
}

/// Every block each node connected and disconnected, once, from ZMQ and from the log.
fn check_blocks(run: &CoreRun) {
    let p = &run.pipeline;
    let s = &run.script;
    let connected = by_node(
        p,
        "SELECT node, hash FROM block_connected WHERE source = 'zmq'",
        "hash",
    );
    assert_eq!(connected, s.connected, "block_connected per node");
    for table in [
        "block_connected",
        "block_disconnected",
        "reorg",
        "invalid_block",
        "tx_seen",
        "tx_rejected",
        "tx_replaced",
        "block_seen",
        "block_timing",
    ] {
        let rows = p.count(&format!("SELECT count() FROM {table}"));
        let ids = p.count(&format!("SELECT uniqExact(event_id) FROM {table}"));
        assert_eq!(rows, ids, "{table}: one row per event, no duplicates");
    }
    let dups = p.count(
        "SELECT count() FROM (SELECT node, hash, count() AS c FROM block_connected \
         WHERE source = 'zmq' GROUP BY node, hash HAVING c > 1)",
    );
    assert_eq!(dups, 0, "a block connected once is one row");
    for source in ["zmq", "log"] {
        let disconnected = by_node(
            p,
            &format!("SELECT node, hash FROM block_disconnected WHERE source = '{source}'"),
            "hash",
        );
        assert_eq!(
            disconnected, s.disconnected,
            "block_disconnected per node from {source}"
        );
    }
    // The log saw each connected block become the tip; every block that arrived over P2P was
    // also seen at an earlier stage (header, compact block or block).
    let tips = by_node(
        p,
        "SELECT node, hash FROM block_seen WHERE source = 'log' AND stage = 'tip'",
        "hash",
    );
    for (node, hashes) in &s.connected {
        let missing: Vec<_> = hashes
            .difference(tips.get(node).unwrap_or(&BTreeSet::new()))
            .cloned()
            .collect();
        assert!(missing.is_empty(), "{node}: no tip sighting of {missing:?}");
    }
    let mined: BTreeMap<&str, BTreeSet<String>> = [
        ("n0", s.mined_by[0].clone()),
        ("n1", s.mined_by[1].clone()),
        ("n3", s.mined_by[3].clone()),
    ]
    .into_iter()
    .collect();
    let early = by_node(
        p,
        "SELECT node, hash FROM block_seen WHERE source = 'log' AND stage != 'tip'",
        "hash",
    );
    for (node, hashes) in &s.connected {
        let own = mined.get(node.as_str()).cloned().unwrap_or_default();
        let relayed: BTreeSet<_> = hashes.difference(&own).cloned().collect();
        let missing: Vec<_> = relayed
            .difference(early.get(node).unwrap_or(&BTreeSet::new()))
            .cloned()
            .collect();
        assert!(
            missing.is_empty(),
            "{node}: relayed blocks without a header/cmpctblock/block sighting: {missing:?}"
        );
    }
    // Validation timing for every block each node connected.
    let timed = by_node(
        p,
        "SELECT node, hash FROM block_timing WHERE connect_total_ms IS NOT NULL",
        "hash",
    );
    for (node, hashes) in &s.connected {
        let missing: Vec<_> = hashes
            .difference(timed.get(node).unwrap_or(&BTreeSet::new()))
            .cloned()
            .collect();
        assert!(
            missing.is_empty(),
            "{node}: no block_timing for {missing:?}"
        );
    }
}

/// UTXO-set figures (coinstatsindex) after every block each node connected, and every node
/// that connected a block reports the same figures for it.
fn check_utxo_set(run: &CoreRun) {
    let p = &run.pipeline;
    let stats = by_node(p, "SELECT node, hash FROM utxo_stats", "hash");
    assert_eq!(stats, run.script.connected, "utxo_stats per node");
    let disagreements = p.rows(
        "SELECT hash, uniqExact(total_amount_sat) AS totals, uniqExact(txouts) AS txouts, \
         uniqExact(ifNull(muhash, '')) AS muhashes FROM utxo_stats GROUP BY hash \
         HAVING totals > 1 OR txouts > 1 OR muhashes > 1",
    );
    assert!(
        disagreements.is_empty(),
        "nodes disagree on the UTXO set: {disagreements:?}"
    );
}

/// The two reorgs, from ZMQ and from the log, exact.
fn check_reorgs(run: &CoreRun) {
    let p = &run.pipeline;
    let s = &run.script;
    for source in ["zmq", "log"] {
        let rows = p.rows(&format!(
            "SELECT node, depth, fork_point, fork_height, old_tip, new_tip, disconnected, \
             connected FROM reorg WHERE source = '{source}' ORDER BY node, observed_at_us"
        ));
        let got: Vec<(String, u64, String, u64, String, String)> = rows
            .iter()
            .map(|r| {
                (
                    str_of(r, "node"),
                    bmon_e2e::int(&r["depth"]) as u64,
                    str_of(r, "fork_point"),
                    bmon_e2e::int(&r["fork_height"]) as u64,
                    str_of(r, "old_tip"),
                    str_of(r, "new_tip"),
                )
            })
            .collect();
        let part = &s.partition;
        let held = &s.withheld;
        let partition = |node: &str| {
            (
                node.to_string(),
                part.losing.len() as u64,
                part.fork_point.clone(),
                part.fork_height,
                part.losing[part.losing.len() - 1].clone(),
                part.winning[part.winning.len() - 1].clone(),
            )
        };
        let release = |node: &str| {
            (
                node.to_string(),
                held.losing.len() as u64,
                held.fork_point.clone(),
                held.fork_height,
                held.losing[held.losing.len() - 1].clone(),
                held.winning[held.winning.len() - 1].clone(),
            )
        };
        let want = vec![partition("n0"), release("n0"), release("n1"), release("n2")];
        assert_eq!(got, want, "reorgs from {source}");
    }
}

/// The three invalid blocks, with the reason Core gave `submitblock`, on n0; the two that n0
/// relayed as compact blocks before finding them invalid, on the peers that received them, each
/// with validation timing.
fn check_invalid_blocks(run: &CoreRun) {
    let p = &run.pipeline;
    let s = &run.script;
    let rows = p.rows("SELECT node, hash, reason, peer, source FROM invalid_block");
    // The first invalid block has the most work of any block so far: n0 announces it as a
    // compact block to its high-bandwidth peers before it finds it invalid.
    let (first, _) = &s.invalid[0];
    let relayed = rows
        .iter()
        .filter(|r| str_of(r, "node") != "n0" && &str_of(r, "hash") == first)
        .count();
    assert!(
        relayed >= 1,
        "no peer of n0 rejected the relayed invalid block {first}"
    );
    let reasons: BTreeMap<String, String> = s.invalid.iter().cloned().collect();
    let on_n0: BTreeMap<String, String> = rows
        .iter()
        .filter(|r| str_of(r, "node") == "n0" && str_of(r, "source") == "log")
        .map(|r| (str_of(r, "hash"), str_of(r, "reason")))
        .collect();
    assert_eq!(on_n0, reasons, "n0's invalid blocks and reasons");
    for r in &rows {
        let hash = str_of(r, "hash");
        assert_eq!(
            reasons.get(&hash),
            Some(&str_of(r, "reason")),
            "an invalid_block row for a block the script did not submit, or another reason: {r}"
        );
        if str_of(r, "node") != "n0" && str_of(r, "source") == "log" {
            assert!(
                r["peer"].is_number() || r["peer"].is_string(),
                "a relayed invalid block names the peer: {r}"
            );
            let timed = p.count(&format!(
                "SELECT count() FROM block_timing WHERE node = '{}' AND hash = '{hash}' \
                 AND compact_prefilled IS NOT NULL",
                str_of(r, "node")
            ));
            assert!(
                timed >= 1,
                "compact block reconstructed then found invalid has block_timing: {r}"
            );
        }
    }
}

/// Mempool acceptance, rejections with their reasons and peers, the replacement.
fn check_transactions(run: &CoreRun) {
    let p = &run.pipeline;
    let s = &run.script;
    let (a, b) = &s.conflict;
    let (replaced, replacement) = &s.bumped;
    let mut everyone = set(&s.high_fee);
    everyone.extend([replacement.clone(), s.chain[0].clone(), s.chain[1].clone()]);
    let low = set(&s.low_fee);
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in ["n0", "n1", "n2", "n3"] {
        let mut txs = everyone.clone();
        if node != "n2" {
            txs.extend(low.iter().cloned());
        }
        if node != "n1" {
            txs.insert(s.chain[2].clone());
        }
        if node == "n3" {
            txs.insert(b.clone());
        } else {
            txs.insert(a.clone());
        }
        want.insert(node.to_string(), txs);
    }
    let got = by_node(p, "SELECT node, txid FROM tx_seen", "txid");
    assert_eq!(got, want, "transactions each node accepted");

    let rejected: BTreeSet<(String, String, String)> = p
        .rows("SELECT node, txid, reason FROM tx_rejected")
        .iter()
        .map(|r| (str_of(r, "node"), str_of(r, "txid"), str_of(r, "reason")))
        .collect();
    let mut want: BTreeSet<(String, String, String)> = ["n0", "n1", "n2"]
        .iter()
        .map(|n| (n.to_string(), b.clone(), "insufficient fee".to_string()))
        .collect();
    want.insert(("n1".into(), s.chain[2].clone(), "too-large-cluster".into()));
    // Races of real relay, the only other rejections the script can cause: a peer that
    // announced the bumped payment before it heard of the replacement makes a node that holds
    // the replacement reject the original; and one announcing the original, A or B after the
    // block that spends their coin makes a node that has the block reject it as spent.
    let late_original = |r: &(String, String, String)| {
        (r.1 == *replaced && r.2 == "insufficient fee")
            || ([replaced, a, b].contains(&&r.1) && r.2 == "bad-txns-inputs-missingorspent")
    };
    let missing: Vec<_> = want.difference(&rejected).collect();
    let extra: Vec<_> = rejected
        .difference(&want)
        .filter(|r| !late_original(r))
        .collect();
    let named = |rs: &[&(String, String, String)]| -> Vec<String> {
        rs.iter()
            .map(|(node, txid, reason)| format!("{node} {} {reason}", s.role(txid)))
            .collect()
    };
    // What the rejecting node's debug.log says of each unexplained transaction.
    let told: Vec<String> = extra
        .iter()
        .flat_map(|(node, txid, _)| {
            let log = run
                .fleet
                .nodes
                .iter()
                .find(|n| &n.name == node)
                .map(|n| std::fs::read_to_string(n.debug_log()).unwrap_or_default())
                .unwrap_or_default();
            log.lines()
                .filter(|l| l.contains(&txid[..16]))
                .take(12)
                .map(|l| format!("{node}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "P2P rejections: missing {:?}, not caused by the script {:?}\n{}",
        named(&missing),
        named(&extra),
        told.join("\n")
    );
    let no_peer = p.count("SELECT count() FROM tx_rejected WHERE peer IS NULL");
    assert_eq!(no_peer, 0, "every P2P rejection names its peer");

    let replaced_rows: BTreeSet<(String, String, String)> = p
        .rows("SELECT node, replaced_txid, new_txid FROM tx_replaced")
        .iter()
        .map(|r| {
            (
                str_of(r, "node"),
                str_of(r, "replaced_txid"),
                str_of(r, "new_txid"),
            )
        })
        .collect();
    let want: BTreeSet<_> = ["n0", "n1", "n2", "n3"]
        .iter()
        .map(|n| (n.to_string(), replaced.clone(), replacement.clone()))
        .collect();
    assert_eq!(
        replaced_rows, want,
        "the fee bump replaced the payment everywhere"
    );
}

/// The mempool comparison: n2 (`-minrelaytxfee` 5 sat/vB) misses the 2 sat/vB payments and
/// each is put down to its policy (`min_fee`), never unexplained; no other node's absence is
/// put down to a policy (and none alerts: `check_alerts`).
fn check_mempool_divergence(run: &CoreRun) {
    let p = &run.pipeline;
    let s = &run.script;
    let mut reasons: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for r in
        p.rows("SELECT mempool_node, missing_txid, missing_reason FROM mempool_divergence FINAL")
    {
        let node = str_of(&r, "mempool_node");
        let txids = r["missing_txid"].as_array().cloned().unwrap_or_default();
        let why = r["missing_reason"].as_array().cloned().unwrap_or_default();
        for (t, w) in txids.iter().zip(&why) {
            let (Some(t), Some(w)) = (t.as_str(), w.as_str()) else {
                continue;
            };
            reasons
                .entry((node.clone(), t.to_string()))
                .or_default()
                .insert(w.to_string());
        }
    }
    for t in &s.low_fee {
        // Core's peers do not announce it to n2 (feefilter): `min_fee`. Had one sent it
        // anyway, n2's rejection (`min relay fee not met`) would be the reason.
        let why = reasons
            .get(&("n2".to_string(), t.clone()))
            .cloned()
            .unwrap_or_default();
        assert!(
            why.contains("min_fee") && why.iter().all(|w| w == "min_fee" || w == "rejected"),
            "n2 misses low-fee {t} for its min relay fee: {why:?}"
        );
        // The others' fee policy admits it: an absence there (a round before Core's random
        // relay delay brought it; on n1, an orphan of a payment its cluster limit refused)
        // is never put down to a fee policy.
        for other in ["n0", "n1", "n3"] {
            let why = reasons
                .get(&(other.to_string(), t.clone()))
                .cloned()
                .unwrap_or_default();
            assert!(
                why.iter()
                    .all(|w| !matches!(w.as_str(), "min_fee" | "blocks_only" | "fee_unknown")),
                "{other} admits low-fee {t}, yet: {why:?}"
            );
        }
    }
}

/// What each node said of itself and of its chain, and the tables no incident should fill
/// (one check per table below).
fn check_node_state(run: &CoreRun) {
    let statuses = check_node_status(run);
    check_chain_tips(run);
    check_tx_removed(run);
    check_mempool_snapshots(run);
    check_block_validation(run, statuses);
    check_template_snapshots(run);
    check_propagation(run);
    check_quiet_tables(run);
}

/// Every block of the script (connected by some node, or submitted invalid) and genesis.
fn script_blocks(s: &core_run::Script) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = s.connected.values().flatten().cloned().collect();
    known.extend(s.invalid.iter().map(|(h, _)| h.clone()));
    known.insert(
        "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206".into(), // genesis
    );
    known
}

/// Each node's first `node_status` time and its version, by node.
type Statuses = (BTreeMap<String, i64>, BTreeMap<String, String>);

/// `node_status`: every node ends on the script's tip, out of IBD, with the same version, and
/// n2 with its 5 sat/vB min relay fee.
fn check_node_status(run: &CoreRun) -> Statuses {
    let p = &run.pipeline;
    let s = &run.script;
    let (tip, height) = &s.tip;
    let status = p.rows(
        "SELECT node, argMax(best_block_hash, observed_at_us) AS tip, \
         argMax(blocks, observed_at_us) AS blocks, \
         argMax(initial_block_download, observed_at_us) AS ibd, \
         argMax(subversion, observed_at_us) AS subversion, \
         argMax(min_relay_fee_sat_per_kvb, observed_at_us) AS min_relay, \
         argMax(relays_transactions, observed_at_us) AS relays, \
         min(observed_at_us) AS first_us \
         FROM node_status GROUP BY node ORDER BY node",
    );
    assert_eq!(status.len(), 4, "node_status of every node: {status:?}");
    let mut first_status = BTreeMap::new();
    let mut versions = BTreeMap::new();
    for r in &status {
        let node = str_of(r, "node");
        assert_eq!(&str_of(r, "tip"), tip, "{node}: last status tip");
        assert_eq!(
            bmon_e2e::int(&r["blocks"]) as u64,
            *height,
            "{node}: height"
        );
        assert_eq!(bmon_e2e::int(&r["ibd"]), 0, "{node}: out of IBD");
        assert_eq!(
            bmon_e2e::int(&r["relays"]),
            1,
            "{node}: relays transactions"
        );
        let min_relay = bmon_e2e::int(&r["min_relay"]);
        if node == "n2" {
            assert_eq!(
                min_relay, 5_000,
                "n2: -minrelaytxfee=0.00005 is 5000 sat/kvB"
            );
        } else {
            assert!(
                min_relay < 5_000,
                "{node}: default min relay fee, got {min_relay}"
            );
        }
        first_status.insert(node.clone(), bmon_e2e::int(&r["first_us"]));
        versions.insert(node, str_of(r, "subversion"));
    }
    let subversions: BTreeSet<&String> = versions.values().collect();
    assert_eq!(subversions.len(), 1, "one Core version: {versions:?}");
    assert!(
        versions["n0"].starts_with("/Satoshi:"),
        "subversion: {versions:?}"
    );
    (first_status, versions)
}

/// `chain_tips`: at the end every node's active tip is the script's; n0 holds both losing
/// branches as `valid-fork` tips and two of the three invalid blocks as `invalid` (a block with
/// a bad merkle root may be a corrupted copy of a valid one: Core does not mark it); every tip
/// any node listed is a block of the script.
fn check_chain_tips(run: &CoreRun) {
    let p = &run.pipeline;
    let s = &run.script;
    let (tip, _) = &s.tip;
    // chain_tips: the last answer of each node.
    let last_tips = p.rows(
        "SELECT node, argMax(tip_hash, observed_at_us) AS hashes, \
         argMax(tip_status, observed_at_us) AS statuses, \
         argMax(tip_branch_len, observed_at_us) AS lens FROM chain_tips GROUP BY node",
    );
    let tips_of = |node: &str| -> BTreeMap<String, (String, i64)> {
        let r = last_tips
            .iter()
            .find(|r| str_of(r, "node") == node)
            .unwrap_or_else(|| panic!("{node}: no chain_tips"));
        strings(r, "hashes")
            .into_iter()
            .zip(strings(r, "statuses"))
            .zip(ints(r, "lens"))
            .map(|((h, status), len)| (h, (status, len)))
            .collect()
    };
    for node in ["n0", "n1", "n2", "n3"] {
        let tips = tips_of(node);
        assert_eq!(
            tips.get(tip).map(|t| t.0.as_str()),
            Some("active"),
            "{node}: active tip at the end: {tips:?}"
        );
    }
    let n0 = tips_of("n0");
    let losing_partition = s.partition.losing.last().cloned().unwrap_or_default();
    let losing_open = s.withheld.losing.last().cloned().unwrap_or_default();
    assert_eq!(
        n0.get(&losing_partition),
        Some(&("valid-fork".to_string(), s.partition.losing.len() as i64)),
        "n0 keeps its partition branch as a fork: {n0:?}"
    );
    assert_eq!(
        n0.get(&losing_open),
        Some(&("valid-fork".to_string(), s.withheld.losing.len() as i64)),
        "n0 keeps the branch the release overtook as a fork: {n0:?}"
    );
    for (i, (hash, reason)) in s.invalid.iter().enumerate() {
        let status = n0.get(hash).map(|t| t.0.as_str());
        if i < 2 {
            assert_eq!(status, Some("invalid"), "n0: {reason} block {hash}: {n0:?}");
        } else {
            assert_eq!(status, None, "n0: a bad merkle root is not marked: {n0:?}");
        }
    }
    let known = script_blocks(s);
    let listed: BTreeSet<String> = p
        .rows("SELECT DISTINCT arrayJoin(tip_hash) AS hash FROM chain_tips")
        .iter()
        .map(|r| str_of(r, "hash"))
        .collect();
    let strangers: Vec<_> = listed.difference(&known).collect();
    assert!(
        strangers.is_empty(),
        "tips of no block of the script: {strangers:?}"
    );
}

/// `tx_removed`: every transaction a node held left it once, mined (`block`), but for the
/// bumped original and, on n3, B: ZMQ's `R` says no why (the log's `tx_replaced` does).
fn check_tx_removed(run: &CoreRun) {
    let p = &run.pipeline;
    let s = &run.script;
    // tx_removed: what each node held, mined, but the replaced original and, on n3, B.
    let (original, _) = &s.bumped;
    let (_, b) = &s.conflict;
    let held = by_node(p, "SELECT node, txid FROM tx_seen", "txid");
    let mut want: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (node, txids) in &held {
        for t in txids {
            let why = if t == original || t == b {
                "unknown"
            } else {
                "block"
            };
            want.insert((node.clone(), t.clone(), why.to_string()));
        }
    }
    let removed_rows = p.rows("SELECT node, txid, reason FROM tx_removed");
    let removed: BTreeSet<(String, String, String)> = removed_rows
        .iter()
        .map(|r| (str_of(r, "node"), str_of(r, "txid"), str_of(r, "reason")))
        .collect();
    assert_eq!(removed_rows.len(), removed.len(), "each removal once");
    let named = |set: Vec<&(String, String, String)>| -> Vec<String> {
        set.iter()
            .map(|(n, t, r)| format!("{n} {} {r}", s.role(t)))
            .collect()
    };
    assert!(
        removed == want,
        "tx_removed: missing {:?}, extra {:?}",
        named(want.difference(&removed).collect()),
        named(removed.difference(&want).collect())
    );
}

/// `mempool_snapshot`: the agent's mirror equals the node's list at each snapshot taken at the
/// mirror's own sequence, and every mempool ends empty.
fn check_mempool_snapshots(run: &CoreRun) {
    let p = &run.pipeline;
    // mempool_snapshot: the mirror is the node's list wherever both are at one sequence.
    let differ = p.rows(
        "SELECT node, observed_at_us, count, mirror_count FROM mempool_snapshot \
         WHERE mirror_sequence = mempool_sequence AND mirror_digest != txid_digest",
    );
    assert!(differ.is_empty(), "mirror and node disagree: {differ:?}");
    let compared =
        p.count("SELECT count() FROM mempool_snapshot WHERE mirror_sequence = mempool_sequence");
    assert!(
        compared > 0,
        "no snapshot compared the mirror with the node's list"
    );
    let left = p.rows(
        "SELECT node, argMax(count, observed_at_us) AS count, \
         argMax(mirror_count, observed_at_us) AS mirror FROM mempool_snapshot GROUP BY node",
    );
    for r in &left {
        assert_eq!(
            bmon_e2e::int(&r["count"]),
            0,
            "mempool left at the end: {r}"
        );
        assert_eq!(
            bmon_e2e::int(&r["mirror"]),
            0,
            "mirror left at the end: {r}"
        );
    }
}

/// `block_validation`: every block each node connected, credited to its version (a block
/// timed before the node's first `node_status` is `unknown`).
fn check_block_validation(run: &CoreRun, statuses: Statuses) {
    let p = &run.pipeline;
    let s = &run.script;
    let (first_status, versions) = statuses;
    // block_validation: every block each node connected, under the version it ran.
    let credited =
        p.rows("SELECT block_node, version, hash, observed_at_us FROM block_validation FINAL");
    let mut by_version: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &credited {
        let node = str_of(r, "block_node");
        let version = str_of(r, "version");
        if version == "unknown" {
            let first = first_status.get(&node).copied().unwrap_or(i64::MAX);
            assert!(
                bmon_e2e::int(&r["observed_at_us"]) < first,
                "{node}: a block timed after its first node_status credited to no version: {r}"
            );
            continue;
        }
        assert_eq!(
            Some(&version),
            versions.get(&node),
            "{node}: credited version: {r}"
        );
        by_version
            .entry(node)
            .or_default()
            .insert(str_of(r, "hash"));
    }
    for (node, hashes) in &s.connected {
        let missing: Vec<_> = hashes
            .difference(by_version.get(node).unwrap_or(&BTreeSet::new()))
            .cloned()
            .collect();
        assert!(
            missing.is_empty(),
            "{node}: no block_validation for {missing:?}"
        );
    }
}

/// `template_snapshot`: a template on every tip mined in the open, on each node that had it,
/// and on the last tip.
fn check_template_snapshots(run: &CoreRun) {
    let p = &run.pipeline;
    let s = &run.script;
    let (tip, height) = &s.tip;
    // template_snapshot: a template on each tip mined in the open, and on the last.
    let prevs = by_node(p, "SELECT node, prev FROM template_snapshot", "prev");
    let open_tips = [
        (&s.partition.winning, ["n1", "n2", "n3"]),
        (&s.withheld.losing, ["n0", "n1", "n2"]),
    ];
    for (blocks, nodes) in open_tips {
        for node in nodes {
            for (i, h) in blocks.iter().enumerate() {
                if prevs.get(node).is_some_and(|p| p.contains(h)) {
                    continue;
                }
                let around: Vec<String> = p
                    .rows(&format!(
                        "SELECT observed_at_us AS at, height, prev, 'template' AS what \
                         FROM template_snapshot WHERE node = '{node}' UNION ALL \
                         SELECT observed_at_us AS at, height, hash AS prev, \
                         concat('connected ', source) AS what FROM block_connected \
                         WHERE node = '{node}' ORDER BY at"
                    ))
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} {} {}",
                            str_of(r, "at"),
                            str_of(r, "what"),
                            r["height"],
                            s.block_role(&str_of(r, "prev"))
                        )
                    })
                    .filter(|l| !l.contains(" main"))
                    .collect();
                panic!(
                    "{node}: no template on tip {h} (#{i} of its branch):\n{}",
                    around.join("\n")
                );
            }
        }
    }
    for node in ["n0", "n1", "n2", "n3"] {
        let last = p.rows(&format!(
            "SELECT argMax(prev, observed_at_us) AS prev, argMax(height, observed_at_us) AS h \
             FROM template_snapshot WHERE node = '{node}'"
        ));
        assert_eq!(
            str_of(&last[0], "prev"),
            *tip,
            "{node}: last template's parent"
        );
        assert_eq!(bmon_e2e::int(&last[0]["h"]) as u64, height + 1, "{node}");
    }
}

/// `propagation`: one summary per block and per transaction of the script.
fn check_propagation(run: &CoreRun) {
    let p = &run.pipeline;
    let s = &run.script;
    // propagation: one summary per block and per transaction of the script.
    let summaries = p.rows("SELECT object_kind, object_hash FROM propagation");
    let objects: BTreeSet<(String, String)> = summaries
        .iter()
        .map(|r| (str_of(r, "object_kind"), str_of(r, "object_hash")))
        .collect();
    assert_eq!(
        summaries.len(),
        objects.len(),
        "one propagation summary per object"
    );
    let blocks: BTreeSet<String> = objects
        .iter()
        .filter(|o| o.0 == "block")
        .map(|o| o.1.clone())
        .collect();
    let mined: BTreeSet<String> = s.connected.values().flatten().cloned().collect();
    let unsummarised: Vec<_> = mined.difference(&blocks).collect();
    assert!(
        unsummarised.is_empty(),
        "blocks without a summary: {unsummarised:?}"
    );
    let known = script_blocks(s);
    let strangers: Vec<_> = blocks.difference(&known).collect();
    assert!(
        strangers.is_empty(),
        "summaries of no block of the script: {strangers:?}"
    );
    let txs: BTreeSet<String> = objects
        .iter()
        .filter(|o| o.0 == "tx")
        .map(|o| o.1.clone())
        .collect();
    let held = by_node(p, "SELECT node, txid FROM tx_seen", "txid");
    let script_txs: BTreeSet<String> = held.values().flatten().cloned().collect();
    assert_eq!(txs, script_txs, "one summary per transaction any node held");
}

/// `warning`: only Core's own start-up warning on the plain-text RPC password, once a node;
/// `gap`, `block_download_timeout`: none.
fn check_quiet_tables(run: &CoreRun) {
    let p = &run.pipeline;
    // warning: Core's own, once a node.
    let warnings = p.rows("SELECT node, message FROM warning");
    let warned: BTreeSet<String> = warnings.iter().map(|r| str_of(r, "node")).collect();
    assert_eq!(warnings.len(), 4, "one warning a node: {warnings:?}");
    assert_eq!(warned.len(), 4, "{warnings:?}");
    for r in &warnings {
        assert!(
            str_of(r, "message").contains("rpcuser/rpcpassword"),
            "a warning the script did not cause: {r}"
        );
    }
    assert_eq!(p.count("SELECT count() FROM gap"), 0, "no event lost");
    assert_eq!(
        p.count("SELECT count() FROM block_download_timeout"),
        0,
        "no block download stalled"
    );
}

/// Every node's templates were compared on a common parent, its peers polled, and the blocks
/// n0 mined reached the others through a peer the log names; n0's peers came and went as the
/// script moved them, and the withheld blocks reached it from the peer that came back.
fn check_templates_and_peers(run: &CoreRun) {
    let p = &run.pipeline;
    for node in ["n0", "n1", "n2", "n3"] {
        let templates = p.count(&format!(
            "SELECT count() FROM template_comparison FINAL WHERE template_node = '{node}' \
             AND fleet_templates >= 3"
        ));
        assert!(
            templates > 0,
            "{node}: no template compared with the fleet's"
        );
        let peers = p.count(&format!(
            "SELECT count() FROM peer_snapshot FINAL WHERE node = '{node}' AND peers >= 1"
        ));
        assert!(peers > 0, "{node}: no peer_snapshot with its peers");
    }
    for node in ["n1", "n2", "n3"] {
        let first = p.count(&format!(
            "SELECT sum(blocks_first) FROM block_first_peer WHERE node = '{node}'"
        ));
        assert!(
            first > 0,
            "{node}: no block credited to the peer that delivered it"
        );
    }
    // n0's peer set as the script changed it (polled every 2 s): its three peers left and
    // came back around the partition, and n3 left and came back around the withholding.
    let changes = p.rows(
        "SELECT observed_at_us, joined, left FROM peer_snapshot FINAL WHERE node = 'n0' \
         ORDER BY observed_at_us",
    );
    let ids = |r: &Value, k: &str| -> Vec<i64> {
        r[k].as_array()
            .map(|a| a.iter().map(bmon_e2e::int).collect())
            .unwrap_or_default()
    };
    let left: Vec<i64> = changes.iter().flat_map(|r| ids(r, "left")).collect();
    let joined: Vec<i64> = changes
        .iter()
        .skip(1)
        .flat_map(|r| ids(r, "joined"))
        .collect();
    assert!(
        left.len() >= 4 && joined.len() >= 4,
        "n0's peers left {left:?} and joined {joined:?} (partition: 3, withholding: 1)"
    );
    // The withheld blocks reached n0 first from one peer (they travel together), and that
    // peer is one whose connection the script made during the run (n3's return, or a link
    // healed after the partition relaying them): the log's peer ids are getpeerinfo's.
    let s = &run.script;
    let hashes = s
        .withheld
        .winning
        .iter()
        .map(|h| format!("'{h}'"))
        .collect::<Vec<_>>()
        .join(",");
    let firsts: BTreeSet<i64> = p
        .rows(&format!(
            "SELECT hash, argMin(assumeNotNull(peer), observed_at_us) AS first_peer \
             FROM block_seen FINAL WHERE node = 'n0' AND isNotNull(peer) AND hash IN ({hashes}) GROUP BY hash"
        ))
        .iter()
        .map(|r| bmon_e2e::int(&r["first_peer"]))
        .collect();
    assert_eq!(
        firsts.len(),
        1,
        "one peer brought the withheld blocks: {firsts:?}"
    );
    let peer = firsts.into_iter().next().unwrap_or_default();
    assert!(
        joined.contains(&peer),
        "peer {peer} that brought the withheld blocks is no connection getpeerinfo saw made \
         during the run: {joined:?}"
    );
}

/// Every debug.log line is in `logs` once, and its prefix was read: thread names and source
/// locations where the format has them, on every line with a timestamp (the blank lines Core
/// opens its log with and the continuation lines of multi-line messages have no prefix).
fn check_logs(run: &CoreRun, format: LogFormat) {
    let p = &run.pipeline;
    for (node, lines) in &run.log_lines {
        let untimed = run.untimed_lines.get(node).copied().unwrap_or(0);
        let rows = p.count(&format!(
            "SELECT count() FROM logs FINAL WHERE node = '{node}'"
        ));
        assert_eq!(rows, *lines, "{node}: every debug.log line once");
        let no_thread = p.count(&format!(
            "SELECT count() FROM logs FINAL WHERE node = '{node}' AND thread = ''"
        ));
        let no_location = p.count(&format!(
            "SELECT count() FROM logs FINAL WHERE node = '{node}' AND location = ''"
        ));
        // On a mismatch, show the lines themselves: counts alone do not say what was misread.
        let sample = |condition: &str| -> Vec<String> {
            p.rows(&format!(
                "SELECT offset, thread, location, function, message FROM logs FINAL \
                 WHERE node = '{node}' AND message != '' AND {condition} ORDER BY offset LIMIT 8"
            ))
            .iter()
            .map(Value::to_string)
            .collect()
        };
        if format.thread_names {
            assert_eq!(
                no_thread,
                untimed,
                "{node}: timed lines whose thread was not read, e.g. {:#?}",
                sample("thread = ''")
            );
        } else {
            assert_eq!(no_thread, *lines, "{node}: a thread where the log has none");
        }
        if format.source_locations {
            assert_eq!(
                no_location,
                untimed,
                "{node}: timed lines whose source location was not read, e.g. {:#?}",
                sample("location = ''")
            );
        } else {
            assert_eq!(
                no_location, *lines,
                "{node}: a location where the log has none"
            );
        }
        // Only the blank lines before the first timestamp take the agent's clock.
        let sub_second = p.count(&format!(
            "SELECT count() FROM logs FINAL WHERE node = '{node}' AND message != '' \
             AND time_us % 1000000 != 0"
        ));
        if format.micros {
            assert!(sub_second > 0, "{node}: microseconds were not read");
        } else {
            assert_eq!(
                sub_second, 0,
                "{node}: sub-second times without -logtimemicros"
            );
        }
    }
}

/// Every scripted incident is alerted, nothing else is, bar the info alerts listed in
/// [`EXPECTED_INFO`]; Alertmanager holds every alert above info.
fn check_alerts(run: &CoreRun) {
    let p = &run.pipeline;
    let s = &run.script;
    let rows = p.rows(
        "SELECT alert_kind, severity, fingerprint, alert_node, subject, summary, \
         evidence_name, evidence_value FROM alerts WHERE state = 'firing' ORDER BY starts_at_us",
    );
    for r in &rows {
        println!(
            "alert {} {} {} {}",
            str_of(r, "alert_kind"),
            str_of(r, "severity"),
            str_of(r, "fingerprint"),
            str_of(r, "summary")
        );
    }
    let evidence = |r: &Value, key: &str| -> Option<String> {
        let names = r["evidence_name"].as_array()?;
        let values = r["evidence_value"].as_array()?;
        names
            .iter()
            .position(|n| n.as_str() == Some(key))
            .and_then(|i| values.get(i))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let incidents: BTreeMap<String, Vec<&Value>> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
        m.entry(str_of(r, "alert_kind")).or_default().push(r);
        m
    });
    let kinds_of = |kind: &str| incidents.get(kind).cloned().unwrap_or_default();

    // Two reorgs, each once, whatever the number of nodes and sources that reported it.
    let reorgs = kinds_of("reorg");
    let fps: BTreeSet<String> = reorgs.iter().map(|r| str_of(r, "fingerprint")).collect();
    let want: BTreeSet<String> = [
        format!(
            "reorg:{}:{}",
            s.partition.fork_point, s.partition.winning[0]
        ),
        format!("reorg:{}:{}", s.withheld.fork_point, s.withheld.winning[0]),
    ]
    .into_iter()
    .collect();
    assert_eq!(fps, want, "one reorg alert per reorg");

    // The withheld release is suspected selfish mining, naming n3 as the node that had the
    // blocks early; the partition is not.
    let selfish = kinds_of("selfish_mining");
    assert_eq!(selfish.len(), 1, "one selfish-mining alert: {selfish:?}");
    assert_eq!(
        str_of(selfish[0], "fingerprint"),
        format!(
            "selfish_mining:{}:{}",
            s.withheld.fork_point, s.withheld.winning[0]
        )
    );
    let early = evidence(selfish[0], "early_nodes").unwrap_or_default();
    assert_eq!(
        early, "n3",
        "the withholding node is named: {:?}",
        selfish[0]
    );

    // The partition: n0 was cut off.
    let cut = kinds_of("partition_reorg");
    assert_eq!(cut.len(), 1, "one partition alert: {cut:?}");
    assert_eq!(str_of(cut[0], "alert_node"), "n0");

    // Each invalid block once, whichever node and source (log, chain_tips) reported it first.
    let mut invalid: Vec<String> = kinds_of("invalid_block")
        .iter()
        .map(|r| str_of(r, "subject"))
        .collect();
    invalid.sort();
    let mut want: Vec<String> = s.invalid.iter().map(|(h, _)| h.clone()).collect();
    want.sort();
    assert_eq!(invalid, want, "one invalid_block alert per invalid block");

    // Nothing else but the expected info alerts.
    let scripted = [
        "reorg",
        "selfish_mining",
        "partition_reorg",
        "invalid_block",
    ];
    let unexpected: Vec<String> = rows
        .iter()
        .filter(|r| {
            let kind = str_of(r, "alert_kind");
            let expected_info =
                EXPECTED_INFO.contains(&kind.as_str()) && str_of(r, "severity") == "info";
            !scripted.contains(&kind.as_str()) && !expected_info
        })
        .map(|r| {
            // The evidence, transactions named by their part in the script.
            let names = r["evidence_name"].as_array().cloned().unwrap_or_default();
            let told: Vec<String> = names
                .iter()
                .filter_map(Value::as_str)
                .map(|name| {
                    let value = evidence(r, name).unwrap_or_default();
                    let value = value
                        .split(',')
                        .map(|v| {
                            if v.len() == 64 {
                                s.role(v)
                            } else {
                                v.to_string()
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(",");
                    format!("{name}={value}")
                })
                .collect();
            format!(
                "{} {} [{}]",
                str_of(r, "alert_kind"),
                str_of(r, "summary"),
                told.join(" ")
            )
        })
        .collect();
    // A divergence alert the script did not cause: what the pipeline knows of the node's
    // missing transactions, in time order.
    let mut history = Vec::new();
    for r in kinds_of("mempool_divergence") {
        let node = str_of(r, "alert_node");
        for txid in evidence(r, "examples").unwrap_or_default().split(',') {
            if txid.len() != 64 {
                continue;
            }
            let rows = p.rows(&format!(
                "SELECT * FROM (SELECT node, observed_at_us, 'seen' AS what, source FROM tx_seen \
                 WHERE txid = '{txid}' UNION ALL \
                 SELECT node, observed_at_us, concat('removed ', reason) AS what, source \
                 FROM tx_removed WHERE txid = '{txid}') ORDER BY observed_at_us"
            ));
            history.push(format!("{} on {node}:", s.role(txid)));
            for e in rows {
                history.push(format!(
                    "  {} {} {} {}",
                    str_of(&e, "observed_at_us"),
                    str_of(&e, "node"),
                    str_of(&e, "what"),
                    str_of(&e, "source")
                ));
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "alerts the script did not cause: {unexpected:#?}\n{}",
        history.join("\n")
    );

    // Alertmanager received every alert above info.
    let held: BTreeSet<String> = p
        .alertmanager_alerts()
        .iter()
        .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
        .collect();
    for kind in scripted {
        assert!(
            held.contains(kind),
            "Alertmanager holds no {kind}: {held:?}"
        );
    }
}

macro_rules! formats {
    ($($name:ident: $micros:expr, $threads:expr, $source:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            run(LogFormat { micros: $micros, thread_names: $threads, source_locations: $source })
                .await;
        }
    )*};
}

formats! {
    plain: false, false, false;
    plain_micros: true, false, false;
    threads: false, true, false;
    threads_micros: true, true, false;
    source_locations: false, false, true;
    source_locations_micros: true, false, true;
    threads_source_locations: false, true, true;
    threads_source_locations_micros: true, true, true;
}
