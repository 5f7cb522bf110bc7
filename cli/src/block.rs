//! `bmon block <hash|height>`: one block's story across the fleet. For each node, when it
//! first saw the header, the compact block and the full block, when the block became its tip
//! and when its agent reported it connected (each as a lag behind the fleet's first sighting),
//! how long `ConnectBlock` took, how the compact block was reconstructed and which peer
//! delivered it; and, once, the block's facts and any node's verdict that it is invalid.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::services::Services;
use crate::table::{clock, header, lag, or_dash, render};

/// Options of `bmon block`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A block hash (64 hex digits), or a height: every block seen at that height (a fork
    /// shows each branch's block).
    block: String,
    /// One JSON object per block instead of tables.
    #[arg(long)]
    json: bool,
}

/// What the argument names.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Hash(String),
    Height(u32),
}

fn parse_target(s: &str) -> anyhow::Result<Target> {
    let s = s.trim();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Target::Hash(s.to_ascii_lowercase()));
    }
    if let Ok(h) = s.parse::<u32>() {
        return Ok(Target::Height(h));
    }
    bail!("{s:?} is neither a block hash (64 hex digits) nor a height")
}

const HASHES_AT_HEIGHT_SQL: &str = "\
SELECT hash FROM (\
 SELECT hash, min(observed_at_us) AS first FROM block_connected WHERE height = ? GROUP BY hash \
 UNION ALL \
 SELECT hash, min(observed_at_us) AS first FROM invalid_block WHERE height = ? GROUP BY hash\
) GROUP BY hash ORDER BY min(first)";

const FACTS_SQL: &str = "\
SELECT any(height) AS height, any(prev) AS prev, any(header_time) AS header_time, \
any(size) AS size, any(weight) AS weight, any(tx_count) AS tx_count, \
any(fees_sat) AS fees_sat, any(miner_tag) AS miner_tag, count() AS rows \
FROM block_connected WHERE hash = ?";

const STAGES_SQL: &str = "\
SELECT node, stage, min(observed_at_us) AS at, argMin(peer, observed_at_us) AS peer, \
any(height) AS height \
FROM block_seen WHERE hash = ? GROUP BY node, stage";

const CONNECTED_SQL: &str = "\
SELECT node, min(observed_at_us) AS at FROM block_connected WHERE hash = ? GROUP BY node";

const DISCONNECTED_SQL: &str = "\
SELECT node, max(observed_at_us) AS at FROM block_disconnected WHERE hash = ? GROUP BY node";

const TIMING_SQL: &str = "\
SELECT node, argMax(connect_total_ms, observed_at_us) AS connect_ms, \
argMax(stage_name, observed_at_us) AS stage_name, argMax(stage_ms, observed_at_us) AS stage_ms, \
argMax(compact_prefilled, observed_at_us) AS prefilled, \
argMax(compact_from_mempool, observed_at_us) AS from_mempool, \
argMax(compact_from_extra_pool, observed_at_us) AS from_extra_pool, \
argMax(compact_requested, observed_at_us) AS requested \
FROM block_timing WHERE hash = ? GROUP BY node";

const INVALID_SQL: &str = "\
SELECT node, any(reason) AS reason, any(peer) AS peer, any(height) AS height \
FROM invalid_block WHERE hash = ? GROUP BY node ORDER BY node";

#[derive(Debug, Deserialize, clickhouse::Row)]
struct HashRow {
    hash: String,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct FactsRow {
    height: u32,
    prev: String,
    header_time: u32,
    size: u64,
    weight: u64,
    tx_count: u64,
    fees_sat: Option<u64>,
    miner_tag: Option<String>,
    rows: u64,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct StageRow {
    node: String,
    stage: String,
    at: i64,
    peer: Option<u64>,
    height: Option<u32>,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct AtRow {
    node: String,
    at: i64,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct TimingRow {
    node: String,
    connect_ms: Option<f64>,
    stage_name: Vec<String>,
    stage_ms: Vec<f64>,
    prefilled: Option<u32>,
    from_mempool: Option<u32>,
    from_extra_pool: Option<u32>,
    requested: Option<u32>,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct InvalidRow {
    node: String,
    reason: String,
    peer: Option<u64>,
    height: Option<u32>,
}

/// Everything bmon knows of one block.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BlockReport {
    pub hash: String,
    pub height: Option<u32>,
    pub prev: Option<String>,
    pub header_time: Option<u32>,
    pub size: Option<u64>,
    pub weight: Option<u64>,
    pub tx_count: Option<u64>,
    pub fees_sat: Option<u64>,
    pub miner_tag: Option<String>,
    /// The earliest sighting on any node, µs.
    pub first_seen_us: Option<i64>,
    pub first_node: Option<String>,
    pub nodes: Vec<NodeSighting>,
    pub invalid: Vec<InvalidVerdict>,
}

/// One node's view of the block (times in µs since the epoch).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeSighting {
    pub node: String,
    pub header_us: Option<i64>,
    pub cmpctblock_us: Option<i64>,
    pub block_us: Option<i64>,
    pub tip_us: Option<i64>,
    pub connected_us: Option<i64>,
    pub disconnected_us: Option<i64>,
    /// The peer that delivered the block (or its compact form, or else its header).
    pub peer: Option<u64>,
    pub connect_ms: Option<f64>,
    pub stages: Vec<(String, f64)>,
    pub compact_prefilled: Option<u32>,
    pub compact_from_mempool: Option<u32>,
    pub compact_from_extra_pool: Option<u32>,
    pub compact_requested: Option<u32>,
}

impl NodeSighting {
    fn first(&self) -> Option<i64> {
        [
            self.header_us,
            self.cmpctblock_us,
            self.block_us,
            self.tip_us,
            self.connected_us,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// A node that found the block invalid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidVerdict {
    pub node: String,
    pub reason: String,
    pub peer: Option<u64>,
}

/// Runs `bmon block`.
pub async fn run(services: &Services, args: Args) -> anyhow::Result<()> {
    let target = parse_target(&args.block)?;
    let ch = services.clickhouse();
    let hint = "cannot read the block tables (--clickhouse-url, BMON_CLICKHOUSE_URL; has `bmon \
                setup` run?)";
    let hashes: Vec<String> = match target {
        Target::Hash(h) => vec![h],
        Target::Height(h) => ch
            .query(HASHES_AT_HEIGHT_SQL)
            .bind(h)
            .bind(h)
            .fetch_all::<HashRow>()
            .await
            .context(hint)?
            .into_iter()
            .map(|r| r.hash)
            .collect(),
    };
    if hashes.is_empty() {
        bail!("no block at height {} in ClickHouse", args.block.trim());
    }
    let mut reports = Vec::new();
    for hash in hashes {
        let facts: Vec<FactsRow> = ch
            .query(FACTS_SQL)
            .bind(&hash)
            .fetch_all()
            .await
            .context(hint)?;
        let stages: Vec<StageRow> = ch
            .query(STAGES_SQL)
            .bind(&hash)
            .fetch_all()
            .await
            .context(hint)?;
        let connected: Vec<AtRow> = ch
            .query(CONNECTED_SQL)
            .bind(&hash)
            .fetch_all()
            .await
            .context(hint)?;
        let disconnected: Vec<AtRow> = ch
            .query(DISCONNECTED_SQL)
            .bind(&hash)
            .fetch_all()
            .await
            .context(hint)?;
        let timing: Vec<TimingRow> = ch
            .query(TIMING_SQL)
            .bind(&hash)
            .fetch_all()
            .await
            .context(hint)?;
        let invalid: Vec<InvalidRow> = ch
            .query(INVALID_SQL)
            .bind(&hash)
            .fetch_all()
            .await
            .context(hint)?;
        reports.push(assemble(
            hash,
            facts.into_iter().find(|f| f.rows > 0),
            stages,
            connected,
            disconnected,
            timing,
            invalid,
        ));
    }
    if reports
        .iter()
        .all(|r| r.nodes.is_empty() && r.invalid.is_empty())
    {
        bail!(
            "bmon has no record of block {} (is it on another network, or older than the \
             tables keep?)",
            args.block.trim()
        );
    }
    for r in &reports {
        if args.json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            print!("{}", render_report(r));
        }
    }
    Ok(())
}

/// One report from the rows of each query (pure).
fn assemble(
    hash: String,
    facts: Option<FactsRow>,
    stages: Vec<StageRow>,
    connected: Vec<AtRow>,
    disconnected: Vec<AtRow>,
    timing: Vec<TimingRow>,
    invalid: Vec<InvalidRow>,
) -> BlockReport {
    let mut nodes: BTreeMap<String, NodeSighting> = BTreeMap::new();
    let mut seen_height = None;
    // The peer of the fullest form that arrived: block, else compact block, else header.
    let mut peers: BTreeMap<String, [Option<u64>; 3]> = BTreeMap::new();
    for s in stages {
        seen_height = seen_height.or(s.height);
        let n = sighting(&mut nodes, &s.node);
        let p = peers.entry(s.node.clone()).or_default();
        match s.stage.as_str() {
            "block" => (n.block_us, p[0]) = (Some(s.at), s.peer),
            "cmpctblock" => (n.cmpctblock_us, p[1]) = (Some(s.at), s.peer),
            "header" => (n.header_us, p[2]) = (Some(s.at), s.peer),
            "tip" => n.tip_us = Some(s.at),
            _ => {}
        }
    }
    for (node, p) in peers {
        sighting(&mut nodes, &node).peer = p.into_iter().flatten().next();
    }
    for c in connected {
        sighting(&mut nodes, &c.node).connected_us = Some(c.at);
    }
    for d in disconnected {
        sighting(&mut nodes, &d.node).disconnected_us = Some(d.at);
    }
    for t in timing {
        let n = sighting(&mut nodes, &t.node);
        n.connect_ms = t.connect_ms;
        n.stages = t.stage_name.into_iter().zip(t.stage_ms).collect();
        n.compact_prefilled = t.prefilled;
        n.compact_from_mempool = t.from_mempool;
        n.compact_from_extra_pool = t.from_extra_pool;
        n.compact_requested = t.requested;
    }
    let invalid_height = invalid.iter().find_map(|i| i.height);
    let invalid: Vec<InvalidVerdict> = invalid
        .into_iter()
        .map(|i| InvalidVerdict {
            node: i.node,
            reason: i.reason,
            peer: i.peer,
        })
        .collect();
    // A node with nothing to tell (a timing line without a figure) makes no row.
    let mut nodes: Vec<NodeSighting> = nodes
        .into_values()
        .filter(|n| n.first().is_some() || n.connect_ms.is_some() || n.compact_prefilled.is_some())
        .collect();
    nodes.sort_by_key(|n| (n.first().unwrap_or(i64::MAX), n.node.clone()));
    let first = nodes
        .first()
        .and_then(|n| n.first().map(|t| (t, n.node.clone())));
    BlockReport {
        hash,
        height: facts
            .as_ref()
            .map(|f| f.height)
            .or(seen_height)
            .or(invalid_height),
        prev: facts.as_ref().map(|f| f.prev.clone()),
        header_time: facts.as_ref().map(|f| f.header_time),
        size: facts.as_ref().map(|f| f.size),
        weight: facts.as_ref().map(|f| f.weight),
        tx_count: facts.as_ref().map(|f| f.tx_count),
        fees_sat: facts.as_ref().and_then(|f| f.fees_sat),
        miner_tag: facts.and_then(|f| f.miner_tag),
        first_seen_us: first.as_ref().map(|f| f.0),
        first_node: first.map(|f| f.1),
        nodes,
        invalid,
    }
}

fn sighting<'a>(nodes: &'a mut BTreeMap<String, NodeSighting>, node: &str) -> &'a mut NodeSighting {
    nodes
        .entry(node.to_string())
        .or_insert_with(|| NodeSighting {
            node: node.to_string(),
            ..NodeSighting::default()
        })
}

/// The text an operator reads (pure).
fn render_report(r: &BlockReport) -> String {
    let mut out = format!("block {} at height {}\n", r.hash, or_dash(r.height));
    if let Some(prev) = &r.prev {
        out.push_str(&format!(
            "  prev {prev}; {} txs, {} bytes, weight {}, fees {} sat, miner {}\n",
            or_dash(r.tx_count),
            or_dash(r.size),
            or_dash(r.weight),
            or_dash(r.fees_sat),
            r.miner_tag.as_deref().unwrap_or("-"),
        ));
    }
    if let (Some(t), Some(n)) = (r.first_seen_us, &r.first_node) {
        out.push_str(&format!("  first seen {} by {n}\n", clock(t)));
    }
    for i in &r.invalid {
        out.push_str(&format!(
            "  INVALID on {}: {}{}\n",
            i.node,
            i.reason,
            i.peer
                .map(|p| format!(" (from peer {p})"))
                .unwrap_or_default()
        ));
    }
    let since = |t: Option<i64>| match (t, r.first_seen_us) {
        (Some(t), Some(first)) => lag(t - first),
        _ => "-".into(),
    };
    let mut rows = vec![header(&[
        "NODE",
        "HEADER",
        "CMPCTBLOCK",
        "BLOCK",
        "TIP",
        "CONNECTED",
        "CONNECT MS",
        "PEER",
        "COMPACT (prefilled/mempool/extra/requested)",
        "NOTE",
    ])];
    for n in &r.nodes {
        let compact = match (
            n.compact_prefilled,
            n.compact_from_mempool,
            n.compact_from_extra_pool,
            n.compact_requested,
        ) {
            (None, None, None, None) => "-".to_string(),
            (a, b, c, d) => format!(
                "{}/{}/{}/{}",
                or_dash(a),
                or_dash(b),
                or_dash(c),
                or_dash(d)
            ),
        };
        let note = match n.disconnected_us {
            Some(t) => format!("disconnected {}", since(Some(t))),
            None => String::new(),
        };
        rows.push(vec![
            n.node.clone(),
            since(n.header_us),
            since(n.cmpctblock_us),
            since(n.block_us),
            since(n.tip_us),
            since(n.connected_us),
            n.connect_ms
                .map(|m| format!("{m:.1}"))
                .unwrap_or_else(|| "-".into()),
            or_dash(n.peer),
            compact,
            note,
        ]);
    }
    if r.nodes.is_empty() {
        out.push_str("  (no node reported seeing it)\n");
    } else {
        out.push_str(&render(&rows));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_or_a_height_and_nothing_else() {
        let h = "00".repeat(32);
        assert_eq!(parse_target(&h).unwrap(), Target::Hash(h.clone()));
        assert_eq!(
            parse_target(&h.to_uppercase()).unwrap(),
            Target::Hash(h.clone())
        );
        assert_eq!(parse_target(" 121 ").unwrap(), Target::Height(121));
        let err = parse_target("12ab").unwrap_err().to_string();
        assert!(err.contains("neither a block hash"), "{err}");
    }

    fn stage(node: &str, stage: &str, at: i64, peer: Option<u64>) -> StageRow {
        StageRow {
            node: node.into(),
            stage: stage.into(),
            at,
            peer,
            height: Some(7),
        }
    }

    #[test]
    fn nodes_are_listed_by_first_sighting_with_lags_and_the_delivering_peer() {
        let r = assemble(
            "ab".repeat(32),
            None,
            vec![
                stage("n1", "header", 2_000_000, Some(4)),
                stage("n1", "cmpctblock", 2_100_000, Some(4)),
                stage("n1", "tip", 2_300_000, None),
                stage("n0", "tip", 1_000_000, None),
            ],
            vec![
                AtRow {
                    node: "n0".into(),
                    at: 1_000_500,
                },
                AtRow {
                    node: "n1".into(),
                    at: 2_350_000,
                },
            ],
            vec![AtRow {
                node: "n0".into(),
                at: 9_000_000,
            }],
            vec![TimingRow {
                node: "n1".into(),
                connect_ms: Some(12.5),
                stage_name: vec!["Connect total".into()],
                stage_ms: vec![12.5],
                prefilled: Some(1),
                from_mempool: Some(3),
                from_extra_pool: Some(0),
                requested: Some(0),
            }],
            vec![],
        );
        assert_eq!(r.height, Some(7));
        assert_eq!(r.first_node.as_deref(), Some("n0"));
        assert_eq!(r.nodes[0].node, "n0");
        assert_eq!(r.nodes[1].peer, Some(4));
        let text = render_report(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("at height 7"), "{text}");
        let n1 = lines.iter().find(|l| l.starts_with("n1")).expect("n1 line");
        assert!(n1.contains("+1.00 s") && n1.contains("+1.30 s"), "{text}");
        assert!(n1.contains("12.5") && n1.contains("1/3/0/0"), "{text}");
        let n0 = lines.iter().find(|l| l.starts_with("n0")).expect("n0 line");
        assert!(n0.contains("disconnected +8.00 s"), "{text}");
    }

    #[test]
    fn an_invalid_block_shows_each_verdict() {
        let r = assemble(
            "cd".repeat(32),
            None,
            vec![],
            vec![],
            vec![],
            vec![],
            vec![InvalidRow {
                node: "n2".into(),
                reason: "bad-cb-amount".into(),
                peer: Some(0),
                height: Some(129),
            }],
        );
        assert_eq!(r.height, Some(129));
        let text = render_report(&r);
        assert!(
            text.contains("INVALID on n2: bad-cb-amount (from peer 0)"),
            "{text}"
        );
        assert!(text.contains("no node reported seeing it"), "{text}");
    }
}
