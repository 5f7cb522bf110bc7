//! The mempool comparison against simnet's truth: a fleet where nodes differ by policy
//! (`picky`: 20 sat/vB minimum relay fee; `small`: room for about 25 transactions;
//! `blocksonly`), through agents, NATS and `det-compare` into ClickHouse. Once the fleet is
//! quiet, the last round's `mempool_divergence` rows must say what the truth says: each node
//! holds what it holds, misses exactly the fleet transactions the truth says it lacks, and
//! for the reason the truth gives.
//!
//! How the truth's reasons read in the comparison (what an agent can see of each):
//! - `MinFee` → `min_fee` (the node's `-minrelaytxfee`, from `node_status`);
//! - `BlocksOnly` → `blocks_only`;
//! - `Evicted` → `min_fee` (the full mempool's minimum fee, from `node_status`) or `removed`
//!   (the agent saw it leave; ZMQ's `R` does not say why);
//! - `MissingParent` → `missing_parent`, or `min_fee` when the transaction itself also pays
//!   below the node's minimum (both hold; the truth names the parent first).
//!
//! *Fleet transactions* are those a strict majority of the nodes whose policy admits them hold
//! (module docs of `detectors::compare`): from the truth, a node that holds a transaction
//! admits it; one that lacks it does not when it is blocks-only or the fee rate is below its
//! minimum (the higher of `-minrelaytxfee` and the full mempool's).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bitcoin::Txid;
use bmon_e2e::{str_of, strings, Options, Pipeline};
use simnet::{mempools_at_end, MempoolAtEnd, NotHeldReason};

/// simnet's policy fleet (`simnet/scenarios/policy.toml`): empty blocks, so every transaction
/// stays in some mempool; 4 s of transactions, then quiet.
fn policy_fleet() -> String {
    let path = test_support::workspace_root().join("simnet/scenarios/policy.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const COMPARE: &str = r#"
[detectors.compare]
round_secs = 1
settle_secs = 3
max_listed = 100000
"#;

/// The comparison reasons a truth reason may read as.
fn readings(reason: NotHeldReason) -> &'static [&'static str] {
    match reason {
        NotHeldReason::MinFee => &["min_fee"],
        NotHeldReason::BlocksOnly => &["blocks_only"],
        NotHeldReason::Evicted => &["min_fee", "removed"],
        NotHeldReason::MissingParent => &["missing_parent"],
        NotHeldReason::Confirmed => &["confirmed"],
        NotHeldReason::Wiped => &["removed"],
        // Nothing is on its way once the fleet is quiet.
        NotHeldReason::NotRelayedYet => &[],
    }
}

/// Whether the policy of the node `m` keeps `txid` out by itself: blocks-only, or a fee rate
/// below its minimum (`-minrelaytxfee` or a full mempool's). A node that holds it admitted it.
fn barred(m: &MempoolAtEnd, txid: &Txid) -> bool {
    let Some(missing) = m.missing.iter().find(|x| x.txid == *txid) else {
        return false;
    };
    let min = m.min_relay_fee_sat_per_kvb.max(m.min_fee_sat_per_kvb);
    let rate = missing.fee_sat.saturating_mul(1000) / missing.vsize.max(1);
    m.blocks_only || rate < min
}

/// The fleet transactions by the comparison's rule, from the truth.
fn fleet_txs(ends: &BTreeMap<String, MempoolAtEnd>) -> BTreeSet<Txid> {
    let all: BTreeSet<Txid> = ends.values().flat_map(|m| m.held.iter().copied()).collect();
    all.into_iter()
        .filter(|t| {
            let eligible = ends.values().filter(|m| !barred(m, t)).count();
            let holders = ends.values().filter(|m| m.holds(t)).count();
            holders * 2 > eligible
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_round_says_what_the_truth_says_of_every_node() {
    let p = Pipeline::start_opts(
        &policy_fleet(),
        Options {
            detectors: true,
            consumer_toml: COMPARE.to_string(),
            mempool_secs: Some(1),
            ..Options::default()
        },
    )
    .await;
    let truth = p.wait_for_fleet(Duration::from_secs(60)).await;
    let ends = mempools_at_end(&truth);
    assert_eq!(ends.len(), 4, "a mempool_at_end record per node");
    let ended_us = truth
        .iter()
        .map(|r| r.t_us as i64)
        .max()
        .expect("truth records");

    // A round well after the last transaction settled whose four rows are all stored (a
    // round's rows may reach ClickHouse in two batches).
    let round_after = ended_us + 5_000_000;
    let complete = format!(
        "SELECT observed_at_us FROM mempool_divergence FINAL \
         WHERE observed_at_us >= {round_after} GROUP BY observed_at_us \
         HAVING uniqExact(mempool_node) = 4"
    );
    p.wait_count(
        &format!("SELECT count() FROM ({complete})"),
        1,
        Duration::from_secs(60),
    )
    .await;
    let rows = p.rows(&format!(
        "SELECT mempool_node, fleet_txs, held, young, missing, only_here, missing_txid, \
         missing_reason, only_here_txid FROM mempool_divergence FINAL \
         WHERE observed_at_us = (SELECT max(observed_at_us) FROM ({complete})) \
         ORDER BY mempool_node"
    ));
    assert_eq!(rows.len(), 4, "one row per node in the round: {rows:?}");

    let fleet = fleet_txs(&ends);
    let held_somewhere: usize = ends.values().map(|m| m.held.len()).sum();
    assert!(
        held_somewhere > 50,
        "the scenario made transactions: {held_somewhere}"
    );
    for missing in ends.values().flat_map(|m| &m.missing) {
        assert_ne!(
            missing.reason,
            NotHeldReason::NotRelayedYet,
            "the fleet is quiet: nothing is still on its way"
        );
    }
    for row in &rows {
        let node = str_of(row, "mempool_node");
        let end = &ends[&node];
        let int = |k: &str| bmon_e2e::int(&row[k]) as usize;
        assert_eq!(int("young"), 0, "{node}: nothing is young any more");
        assert_eq!(int("held"), end.held.len(), "{node}: what it holds");
        let held: BTreeSet<Txid> = end.held.iter().copied().collect();
        let only_here: BTreeSet<Txid> = held.difference(&fleet).copied().collect();
        let got_only: BTreeSet<Txid> = strings(row, "only_here_txid")
            .iter()
            .filter_map(|t| t.parse().ok())
            .collect();
        assert_eq!(got_only, only_here, "{node}: what only a minority holds");
        assert_eq!(int("only_here"), only_here.len(), "{node}");

        // Missing: exactly the fleet transactions the truth says it lacks, each for the
        // truth's reason.
        let want: BTreeMap<Txid, NotHeldReason> = end
            .missing
            .iter()
            .filter(|m| fleet.contains(&m.txid))
            .map(|m| (m.txid, m.reason))
            .collect();
        let got: BTreeMap<Txid, String> = strings(row, "missing_txid")
            .iter()
            .zip(strings(row, "missing_reason"))
            .filter_map(|(t, r)| Some((t.parse().ok()?, r)))
            .collect();
        assert_eq!(
            int("missing"),
            got.len(),
            "{node}: every missing one listed"
        );
        let wrong: Vec<String> = want
            .iter()
            .filter(|(t, reason)| {
                !got.get(*t).is_some_and(|r| {
                    readings(**reason).contains(&r.as_str())
                            // An orphan paying below the node's own minimum: either says why.
                            || (**reason == NotHeldReason::MissingParent
                                && r == "min_fee"
                                && barred(end, t))
                })
            })
            .map(|(t, reason)| {
                let seen: Vec<String> = ends
                    .iter()
                    .map(|(n, m)| format!("{n}={:?}", m.why_missing(t)))
                    .collect();
                format!(
                    "{t}: truth {reason:?}, compare {:?} [{}]",
                    got.get(t),
                    seen.join(" ")
                )
            })
            .collect();
        let extra: Vec<String> = got
            .iter()
            .filter(|(t, _)| !want.contains_key(*t))
            .map(|(t, r)| format!("{t}: {r}, truth {:?}", end.why_missing(t)))
            .collect();
        assert!(
            wrong.is_empty() && extra.is_empty(),
            "{node}: missing transactions differ from the truth:\n  wrong or absent: \
             {wrong:#?}\n  not in the truth: {extra:#?}"
        );
        assert_eq!(int("fleet_txs"), fleet.len(), "{node}: fleet transactions");
        println!(
            "{node}: holds {}, misses {} fleet transactions ({:?}), {} only here",
            end.held.len(),
            got.len(),
            got.values()
                .fold(BTreeMap::<&str, usize>::new(), |mut m, r| {
                    *m.entry(r.as_str()).or_default() += 1;
                    m
                }),
            only_here.len()
        );
    }
    // The policies did their part: each node misses something, each for its policy.
    let reasons_of = |node: &str| -> BTreeSet<String> {
        rows.iter()
            .filter(|r| str_of(r, "mempool_node") == node)
            .flat_map(|r| strings(r, "missing_reason"))
            .collect()
    };
    // picky: below its 20 sat/vB, or the child of such a payment (an orphan there).
    let picky = reasons_of("picky");
    assert!(picky.contains("min_fee"), "{picky:?}");
    assert!(
        picky
            .iter()
            .all(|r| r == "min_fee" || r == "missing_parent"),
        "{picky:?}"
    );
    assert_eq!(
        reasons_of("blocksonly"),
        BTreeSet::from(["blocks_only".to_string()])
    );
    assert!(
        !reasons_of("small").is_empty(),
        "small's mempool overflowed"
    );
    assert!(
        reasons_of("node0").is_empty(),
        "node0 holds the whole fleet's"
    );
    let alerts = p.count("SELECT count() FROM alerts WHERE alert_kind = 'mempool_divergence'");
    assert_eq!(alerts, 0, "policy is no divergence to alert on");
}
