//! `bmon tx <txid>`: one transaction across the fleet: when each node first had it in its
//! mempool (lag behind the first), its fee, when and why it left (a block, a replacement, an
//! eviction), which nodes rejected it and why (with the peer that relayed it), and the
//! replacements it took part in.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::services::Services;
use crate::table::{clock, header, lag, or_dash, render};

/// Options of `bmon tx`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The txid (64 hex digits).
    txid: String,
    /// One JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

fn parse_txid(s: &str) -> anyhow::Result<String> {
    let s = s.trim();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        bail!("{s:?} is not a txid (64 hex digits)")
    }
}

const SEEN_SQL: &str = "\
SELECT node, min(observed_at_us) AS at, argMin(source, observed_at_us) AS source, \
max(fee_sat) AS fee_sat, max(vsize) AS vsize \
FROM tx_seen WHERE txid = ? GROUP BY node";

const REMOVED_SQL: &str = "\
SELECT node, max(observed_at_us) AS at, argMax(reason, observed_at_us) AS reason \
FROM tx_removed WHERE txid = ? GROUP BY node";

const REJECTED_SQL: &str = "\
SELECT node, min(observed_at_us) AS at, argMin(reason, observed_at_us) AS reason, \
argMin(peer, observed_at_us) AS peer \
FROM tx_rejected WHERE txid = ? GROUP BY node";

const REPLACED_SQL: &str = "\
SELECT node, min(observed_at_us) AS at, replaced_txid, new_txid, \
any(replaced_fee_sat) AS replaced_fee_sat, any(new_fee_sat) AS new_fee_sat \
FROM tx_replaced WHERE replaced_txid = ? OR new_txid = ? \
GROUP BY node, replaced_txid, new_txid ORDER BY at";

#[derive(Debug, Deserialize, clickhouse::Row)]
struct SeenRow {
    node: String,
    at: i64,
    source: String,
    fee_sat: Option<u64>,
    vsize: Option<u64>,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct RemovedRow {
    node: String,
    at: i64,
    reason: String,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct RejectedRow {
    node: String,
    at: i64,
    reason: String,
    peer: Option<u64>,
}

/// A replacement the transaction took part in, on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct Replacement {
    pub node: String,
    pub at: i64,
    pub replaced_txid: String,
    pub new_txid: String,
    pub replaced_fee_sat: Option<u64>,
    pub new_fee_sat: Option<u64>,
}

/// Everything bmon knows of one transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TxReport {
    pub txid: String,
    pub first_seen_us: Option<i64>,
    pub first_node: Option<String>,
    pub fee_sat: Option<u64>,
    pub vsize: Option<u64>,
    pub nodes: Vec<NodeTx>,
    pub replacements: Vec<Replacement>,
}

/// One node's view of the transaction (times in µs since the epoch).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeTx {
    pub node: String,
    pub seen_us: Option<i64>,
    pub source: Option<String>,
    pub left_us: Option<i64>,
    /// Why it left the mempool: `block`, `replaced`, `conflict`, `expiry`, `size_limit`, ...
    pub left_reason: Option<String>,
    pub rejected_us: Option<i64>,
    pub rejected_reason: Option<String>,
    pub rejected_peer: Option<u64>,
}

/// Runs `bmon tx`.
pub async fn run(services: &Services, args: Args) -> anyhow::Result<()> {
    let txid = parse_txid(&args.txid)?;
    let ch = services.clickhouse();
    let hint = "cannot read the transaction tables (--clickhouse-url, BMON_CLICKHOUSE_URL; has \
                `bmon setup` run?)";
    let seen: Vec<SeenRow> = ch
        .query(SEEN_SQL)
        .bind(&txid)
        .fetch_all()
        .await
        .context(hint)?;
    let removed: Vec<RemovedRow> = ch
        .query(REMOVED_SQL)
        .bind(&txid)
        .fetch_all()
        .await
        .context(hint)?;
    let rejected: Vec<RejectedRow> = ch
        .query(REJECTED_SQL)
        .bind(&txid)
        .fetch_all()
        .await
        .context(hint)?;
    let replaced: Vec<Replacement> = ch
        .query(REPLACED_SQL)
        .bind(&txid)
        .bind(&txid)
        .fetch_all()
        .await
        .context(hint)?;
    let report = assemble(txid, seen, removed, rejected, replaced);
    if report.nodes.is_empty() && report.replacements.is_empty() {
        bail!(
            "bmon has no record of transaction {} (no node had it in its mempool or rejected \
             it while its agent ran)",
            report.txid
        );
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render_report(&report));
    }
    Ok(())
}

/// One report from the rows of each query (pure).
fn assemble(
    txid: String,
    seen: Vec<SeenRow>,
    removed: Vec<RemovedRow>,
    rejected: Vec<RejectedRow>,
    replacements: Vec<Replacement>,
) -> TxReport {
    let mut nodes: BTreeMap<String, NodeTx> = BTreeMap::new();
    let mut fee_sat = None;
    let mut vsize = None;
    for s in seen {
        fee_sat = fee_sat.or(s.fee_sat);
        vsize = vsize.or(s.vsize);
        let n = node(&mut nodes, &s.node);
        n.seen_us = Some(s.at);
        n.source = Some(s.source);
    }
    for r in removed {
        let n = node(&mut nodes, &r.node);
        n.left_us = Some(r.at);
        n.left_reason = Some(r.reason);
    }
    for r in rejected {
        let n = node(&mut nodes, &r.node);
        n.rejected_us = Some(r.at);
        n.rejected_reason = Some(r.reason);
        n.rejected_peer = r.peer;
    }
    let first_of = |n: &NodeTx| [n.seen_us, n.rejected_us].into_iter().flatten().min();
    let mut nodes: Vec<NodeTx> = nodes.into_values().collect();
    nodes.sort_by_key(|n| (first_of(n).unwrap_or(i64::MAX), n.node.clone()));
    let first = nodes
        .iter()
        .filter_map(|n| n.seen_us.map(|t| (t, n.node.clone())))
        .min();
    TxReport {
        txid,
        first_seen_us: first.as_ref().map(|f| f.0),
        first_node: first.map(|f| f.1),
        fee_sat,
        vsize,
        nodes,
        replacements,
    }
}

fn node<'a>(nodes: &'a mut BTreeMap<String, NodeTx>, name: &str) -> &'a mut NodeTx {
    nodes.entry(name.to_string()).or_insert_with(|| NodeTx {
        node: name.to_string(),
        ..NodeTx::default()
    })
}

/// The text an operator reads (pure).
fn render_report(r: &TxReport) -> String {
    let mut out = format!("transaction {}\n", r.txid);
    if let (Some(t), Some(n)) = (r.first_seen_us, &r.first_node) {
        out.push_str(&format!(
            "  first seen {} by {n}; fee {} sat, {} vB\n",
            clock(t),
            or_dash(r.fee_sat),
            or_dash(r.vsize)
        ));
    }
    let since = |t: Option<i64>| match (t, r.first_seen_us) {
        (Some(t), Some(first)) => lag(t - first),
        (Some(t), None) => clock(t),
        _ => "-".into(),
    };
    let mut rows = vec![header(&[
        "NODE", "SEEN", "SOURCE", "LEFT", "WHY", "REJECTED", "REASON", "PEER",
    ])];
    for n in &r.nodes {
        rows.push(vec![
            n.node.clone(),
            since(n.seen_us),
            n.source.clone().unwrap_or_else(|| "-".into()),
            since(n.left_us),
            n.left_reason.clone().unwrap_or_else(|| "-".into()),
            since(n.rejected_us),
            n.rejected_reason.clone().unwrap_or_else(|| "-".into()),
            or_dash(n.rejected_peer),
        ]);
    }
    out.push_str(&render(&rows));
    for x in &r.replacements {
        let (role, other) = if x.replaced_txid == r.txid {
            ("replaced by", &x.new_txid)
        } else {
            ("replaced", &x.replaced_txid)
        };
        out.push_str(&format!(
            "  on {}: {role} {other} at {} (fee {} -> {} sat)\n",
            x.node,
            clock(x.at),
            or_dash(x.replaced_fee_sat),
            or_dash(x.new_fee_sat)
        ));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_txid_is_accepted() {
        assert_eq!(parse_txid(&"AB".repeat(32)).unwrap(), "ab".repeat(32));
        let err = parse_txid("121").unwrap_err().to_string();
        assert!(err.contains("not a txid"), "{err}");
    }

    #[test]
    fn acceptance_rejection_and_replacement_are_told_per_node() {
        let t = "aa".repeat(32);
        let r = assemble(
            t.clone(),
            vec![
                SeenRow {
                    node: "n1".into(),
                    at: 1_500_000,
                    source: "zmq".into(),
                    fee_sat: Some(2000),
                    vsize: Some(141),
                },
                SeenRow {
                    node: "n0".into(),
                    at: 1_000_000,
                    source: "zmq".into(),
                    fee_sat: None,
                    vsize: None,
                },
            ],
            vec![RemovedRow {
                node: "n0".into(),
                at: 5_000_000,
                reason: "replaced".into(),
            }],
            vec![RejectedRow {
                node: "n2".into(),
                at: 2_000_000,
                reason: "insufficient fee".into(),
                peer: Some(3),
            }],
            vec![Replacement {
                node: "n0".into(),
                at: 5_000_000,
                replaced_txid: t.clone(),
                new_txid: "bb".repeat(32),
                replaced_fee_sat: Some(2000),
                new_fee_sat: Some(4000),
            }],
        );
        assert_eq!(r.first_node.as_deref(), Some("n0"));
        assert_eq!(r.fee_sat, Some(2000));
        let order: Vec<&str> = r.nodes.iter().map(|n| n.node.as_str()).collect();
        assert_eq!(order, ["n0", "n1", "n2"]);
        let text = render_report(&r);
        let line = |n: &str| {
            text.lines()
                .find(|l| l.starts_with(n))
                .unwrap_or_else(|| panic!("{n}: {text}"))
                .to_string()
        };
        assert!(line("n0").contains("+4.00 s  replaced"), "{text}");
        assert!(line("n1").contains("+500 ms"), "{text}");
        assert!(line("n2").contains("insufficient fee  3"), "{text}");
        assert!(
            text.contains(&format!("on n0: replaced by {}", "bb".repeat(32))),
            "{text}"
        );
        assert!(text.contains("(fee 2000 -> 4000 sat)"), "{text}");
    }
}
