//! `bmon tips`: the fork tree of the last blocks as text. The active chain (the one the most
//! nodes have as their tip), every stale branch beside the block it forked from, with the
//! nodes that held it and how deep the reorg off it was, invalid blocks with their reason, and
//! where each node's tip is.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::services::Services;
use crate::table::{header, render};

/// Options of `bmon tips`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many heights below the highest block to show.
    #[arg(long, default_value_t = 30)]
    blocks: u32,
    /// One JSON object instead of the tree.
    #[arg(long)]
    json: bool,
}

const BLOCKS_SQL: &str = "\
SELECT hash, any(height) AS height, any(prev) AS prev, groupUniqArray(node) AS nodes \
FROM (SELECT hash, height, prev, node FROM block_connected \
WHERE height + ? >= (SELECT max(height) FROM block_connected)) \
GROUP BY hash";

const DISCONNECTED_SQL: &str = "\
SELECT hash, groupUniqArray(node) AS nodes FROM block_disconnected \
WHERE height + ? >= (SELECT max(height) FROM block_connected) GROUP BY hash";

const INVALID_SQL: &str = "\
SELECT hash, any(height) AS height, any(reason) AS reason, groupUniqArray(node) AS nodes \
FROM invalid_block GROUP BY hash \
HAVING height IS NULL OR height + ? >= (SELECT max(height) FROM block_connected)";

const NODE_TIPS_SQL: &str = "\
SELECT node, argMax(best_block_hash, observed_at_us) AS tip, argMax(blocks, observed_at_us) AS height \
FROM node_status FINAL GROUP BY node ORDER BY node";

const REORGS_SQL: &str = "\
SELECT fork_point, old_tip, max(depth) AS depth, groupUniqArray(node) AS nodes \
FROM reorg GROUP BY fork_point, old_tip";

/// A block some node connected.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
struct BlockRow {
    hash: String,
    height: u32,
    prev: String,
    nodes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
struct DisconnectedRow {
    hash: String,
    nodes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
struct InvalidRow {
    hash: String,
    height: Option<u32>,
    reason: String,
    nodes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
struct NodeTipRow {
    node: String,
    tip: String,
    height: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
struct ReorgRow {
    fork_point: String,
    old_tip: String,
    depth: u32,
    nodes: Vec<String>,
}

/// The tree.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tree {
    /// The active chain, highest first.
    pub active: Vec<TreeBlock>,
    /// Stale branches, by fork height (highest first).
    pub branches: Vec<Branch>,
    /// Blocks a node found invalid.
    pub invalid: Vec<InvalidBlock>,
    /// Where each node's tip is.
    pub nodes: Vec<NodeTip>,
}

/// A block of the tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreeBlock {
    pub hash: String,
    pub height: u32,
    /// Nodes that connected it.
    pub held_by: Vec<String>,
    /// Nodes whose current tip it is.
    pub tip_of: Vec<String>,
}

/// A branch off the active chain, tip first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Branch {
    pub fork_point: String,
    pub fork_height: u32,
    pub blocks: Vec<TreeBlock>,
    /// Nodes that disconnected its blocks (a reorg took them off it).
    pub reorged_on: Vec<String>,
    /// The deepest reorg off its tip that an agent reported.
    pub reorg_depth: Option<u32>,
}

/// An invalid block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidBlock {
    pub hash: String,
    pub height: Option<u32>,
    pub reason: String,
    pub nodes: Vec<String>,
}

/// A node's tip and how it relates to the active chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeTip {
    pub node: String,
    pub tip: String,
    pub height: u32,
    /// `active`, `behind N`, `stale branch`, `unknown block`.
    pub on: String,
}

/// Runs `bmon tips`.
pub async fn run(services: &Services, args: Args) -> anyhow::Result<()> {
    let ch = services.clickhouse();
    let hint = "cannot read the chain tables (--clickhouse-url, BMON_CLICKHOUSE_URL; has `bmon \
                setup` run?)";
    let blocks: Vec<BlockRow> = ch
        .query(BLOCKS_SQL)
        .bind(args.blocks)
        .fetch_all()
        .await
        .context(hint)?;
    let disconnected: Vec<DisconnectedRow> = ch
        .query(DISCONNECTED_SQL)
        .bind(args.blocks)
        .fetch_all()
        .await
        .context(hint)?;
    let invalid: Vec<InvalidRow> = ch
        .query(INVALID_SQL)
        .bind(args.blocks)
        .fetch_all()
        .await
        .context(hint)?;
    let tips: Vec<NodeTipRow> = ch.query(NODE_TIPS_SQL).fetch_all().await.context(hint)?;
    let reorgs: Vec<ReorgRow> = ch.query(REORGS_SQL).fetch_all().await.context(hint)?;
    let tree = build(blocks, disconnected, invalid, tips, reorgs);
    if args.json {
        println!("{}", serde_json::to_string(&tree)?);
    } else {
        print!("{}", render_tree(&tree));
    }
    Ok(())
}

/// The tree from the rows (pure).
fn build(
    blocks: Vec<BlockRow>,
    disconnected: Vec<DisconnectedRow>,
    invalid: Vec<InvalidRow>,
    tips: Vec<NodeTipRow>,
    reorgs: Vec<ReorgRow>,
) -> Tree {
    let by_hash: HashMap<&str, &BlockRow> = blocks.iter().map(|b| (b.hash.as_str(), b)).collect();
    let mut tip_of: HashMap<&str, Vec<String>> = HashMap::new();
    for t in &tips {
        tip_of
            .entry(t.tip.as_str())
            .or_default()
            .push(t.node.clone());
    }
    // The active tip: the known block most nodes have as their tip (the higher one on a tie),
    // else the highest block.
    let best = tip_of
        .iter()
        .filter_map(|(h, nodes)| by_hash.get(h).map(|b| (nodes.len(), b.height, *h)))
        .max()
        .map(|(_, _, h)| h)
        .or_else(|| {
            blocks
                .iter()
                .max_by_key(|b| (b.height, std::cmp::Reverse(b.hash.as_str())))
                .map(|b| b.hash.as_str())
        });
    let tree_block = |b: &BlockRow| {
        let mut held_by = b.nodes.clone();
        held_by.sort();
        let mut tip = tip_of.get(b.hash.as_str()).cloned().unwrap_or_default();
        tip.sort();
        TreeBlock {
            hash: b.hash.clone(),
            height: b.height,
            held_by,
            tip_of: tip,
        }
    };
    let mut active = Vec::new();
    let mut on_active: BTreeSet<&str> = BTreeSet::new();
    let mut cursor = best;
    while let Some(b) = cursor.and_then(|h| by_hash.get(h)) {
        on_active.insert(b.hash.as_str());
        active.push(tree_block(b));
        cursor = Some(b.prev.as_str());
    }
    // Stale branches: every block off the active chain that no other such block builds on
    // is a branch tip; its branch runs down to the active chain (or the window's edge).
    let off: Vec<&BlockRow> = blocks
        .iter()
        .filter(|b| !on_active.contains(b.hash.as_str()))
        .collect();
    let parents: BTreeSet<&str> = off.iter().map(|b| b.prev.as_str()).collect();
    let gone: HashMap<&str, &Vec<String>> = disconnected
        .iter()
        .map(|d| (d.hash.as_str(), &d.nodes))
        .collect();
    let mut branches = Vec::new();
    for tip in off.iter().filter(|b| !parents.contains(b.hash.as_str())) {
        let mut chain = Vec::new();
        let mut reorged_on: BTreeSet<String> = BTreeSet::new();
        let mut at = Some(*tip);
        let mut fork = (tip.prev.clone(), tip.height.saturating_sub(1));
        while let Some(b) = at {
            if on_active.contains(b.hash.as_str()) {
                break;
            }
            if let Some(nodes) = gone.get(b.hash.as_str()) {
                reorged_on.extend(nodes.iter().cloned());
            }
            chain.push(tree_block(b));
            fork = (b.prev.clone(), b.height.saturating_sub(1));
            at = by_hash.get(b.prev.as_str()).copied();
        }
        let reorg_depth = reorgs
            .iter()
            .filter(|r| r.old_tip == tip.hash)
            .map(|r| r.depth)
            .max();
        branches.push(Branch {
            fork_point: fork.0,
            fork_height: fork.1,
            blocks: chain,
            reorged_on: reorged_on.into_iter().collect(),
            reorg_depth,
        });
    }
    branches.sort_by(|a, b| {
        b.fork_height
            .cmp(&a.fork_height)
            .then_with(|| a.blocks[0].hash.cmp(&b.blocks[0].hash))
    });
    let mut invalid: Vec<InvalidBlock> = invalid
        .into_iter()
        .map(|i| {
            let mut nodes = i.nodes;
            nodes.sort();
            InvalidBlock {
                hash: i.hash,
                height: i.height,
                reason: i.reason,
                nodes,
            }
        })
        .collect();
    invalid.sort_by(|a, b| b.height.cmp(&a.height).then_with(|| a.hash.cmp(&b.hash)));
    let best_height = active.first().map(|b| b.height);
    let nodes = tips
        .iter()
        .map(|t| {
            let on = if on_active.contains(t.tip.as_str()) {
                match best_height {
                    Some(h) if h > t.height => format!("behind {}", h - t.height),
                    _ => "active".into(),
                }
            } else if by_hash.contains_key(t.tip.as_str()) {
                "stale branch".into()
            } else {
                "unknown block".into()
            };
            NodeTip {
                node: t.node.clone(),
                tip: t.tip.clone(),
                height: t.height,
                on,
            }
        })
        .collect();
    Tree {
        active,
        branches,
        invalid,
        nodes,
    }
}

/// The tree as text: the active chain top down, each branch under the block it forked from,
/// each invalid block at its height (pure).
fn render_tree(t: &Tree) -> String {
    if t.active.is_empty() {
        return "(no block in ClickHouse yet: are the agents and `bmon-consumer ch-writer` \
                running?)\n"
            .into();
    }
    let mut by_fork: BTreeMap<&str, Vec<&Branch>> = BTreeMap::new();
    for b in &t.branches {
        by_fork.entry(b.fork_point.as_str()).or_default().push(b);
    }
    let mut invalid_at: BTreeMap<u32, Vec<&InvalidBlock>> = BTreeMap::new();
    for i in &t.invalid {
        if let Some(h) = i.height {
            invalid_at.entry(h).or_default().push(i);
        }
    }
    let mut rows = vec![header(&["HEIGHT", "BLOCK", "TIP OF", "NOTE"])];
    let mut listed_invalid: BTreeSet<&str> = BTreeSet::new();
    let top = t.active[0].height;
    for i in invalid_at.range(top + 1..).rev().flat_map(|(_, v)| v) {
        rows.push(invalid_row(i, ""));
        listed_invalid.insert(i.hash.as_str());
    }
    for b in &t.active {
        rows.push(vec![
            b.height.to_string(),
            b.hash.clone(),
            b.tip_of.join(" "),
            if b.hash == t.active[0].hash {
                "active tip".into()
            } else {
                String::new()
            },
        ]);
        // Invalid blocks one above this one compete with the active child.
        for i in invalid_at.get(&(b.height + 1)).into_iter().flatten() {
            if b.hash != t.active[0].hash && listed_invalid.insert(i.hash.as_str()) {
                rows.push(invalid_row(i, "  "));
            }
        }
        for br in by_fork.get(b.hash.as_str()).into_iter().flatten() {
            for (k, s) in br.blocks.iter().enumerate() {
                let note = if k == 0 {
                    let mut n = format!(
                        "stale branch of {}, held by {}",
                        br.blocks.len(),
                        s.held_by.join(" ")
                    );
                    if !br.reorged_on.is_empty() {
                        n.push_str(&format!("; reorged out on {}", br.reorged_on.join(" ")));
                    }
                    if let Some(d) = br.reorg_depth {
                        n.push_str(&format!(" (depth {d})"));
                    }
                    n
                } else {
                    String::new()
                };
                rows.push(vec![
                    format!("  {}", s.height),
                    format!("  {}", s.hash),
                    s.tip_of.join(" "),
                    note,
                ]);
            }
        }
    }
    for i in &t.invalid {
        if !listed_invalid.contains(i.hash.as_str()) {
            rows.push(invalid_row(i, ""));
        }
    }
    let mut out = render(&rows);
    let lagging: Vec<String> = t
        .nodes
        .iter()
        .filter(|n| n.on != "active")
        .map(|n| format!("{} at {} ({}, {})", n.node, n.height, n.tip, n.on))
        .collect();
    if !lagging.is_empty() {
        out.push_str(&format!("not on the active tip: {}\n", lagging.join("; ")));
    }
    out
}

fn invalid_row(i: &InvalidBlock, indent: &str) -> Vec<String> {
    vec![
        format!(
            "{indent}{}",
            i.height.map(|h| h.to_string()).unwrap_or("?".into())
        ),
        format!("{indent}{}", i.hash),
        String::new(),
        format!("INVALID: {} (rejected by {})", i.reason, i.nodes.join(" ")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn block(hash: char, height: u32, prev: char, nodes: &[&str]) -> BlockRow {
        BlockRow {
            hash: h(hash),
            height,
            prev: h(prev),
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// a(10) ← b(11) ← c(12) ← d(13) is active; e(11) ← f(12) was n0's branch, reorged off at
    /// depth 2; n3 is still on f; an invalid block at 14.
    fn sample() -> Tree {
        build(
            vec![
                block('a', 10, '0', &["n0", "n1", "n2", "n3"]),
                block('b', 11, 'a', &["n1", "n2", "n0"]),
                block('c', 12, 'b', &["n1", "n2", "n0"]),
                block('d', 13, 'c', &["n1", "n2", "n0"]),
                block('e', 11, 'a', &["n0", "n3"]),
                block('f', 12, 'e', &["n0", "n3"]),
            ],
            vec![
                DisconnectedRow {
                    hash: h('e'),
                    nodes: vec!["n0".into()],
                },
                DisconnectedRow {
                    hash: h('f'),
                    nodes: vec!["n0".into()],
                },
            ],
            vec![InvalidRow {
                hash: h('x'),
                height: Some(14),
                reason: "bad-cb-amount".into(),
                nodes: vec!["n1".into(), "n0".into()],
            }],
            vec![
                NodeTipRow {
                    node: "n0".into(),
                    tip: h('d'),
                    height: 13,
                },
                NodeTipRow {
                    node: "n1".into(),
                    tip: h('d'),
                    height: 13,
                },
                NodeTipRow {
                    node: "n2".into(),
                    tip: h('c'),
                    height: 12,
                },
                NodeTipRow {
                    node: "n3".into(),
                    tip: h('f'),
                    height: 12,
                },
            ],
            vec![ReorgRow {
                fork_point: h('a'),
                old_tip: h('f'),
                depth: 2,
                nodes: vec!["n0".into()],
            }],
        )
    }

    #[test]
    fn the_active_chain_is_the_tip_most_nodes_hold() {
        let t = sample();
        let heights: Vec<u32> = t.active.iter().map(|b| b.height).collect();
        assert_eq!(heights, [13, 12, 11, 10]);
        assert_eq!(t.active[0].tip_of, ["n0", "n1"]);
        assert_eq!(t.branches.len(), 1);
        let b = &t.branches[0];
        assert_eq!(b.fork_point, h('a'));
        assert_eq!(b.fork_height, 10);
        assert_eq!(b.blocks.len(), 2);
        assert_eq!(b.blocks[0].hash, h('f'));
        assert_eq!(b.reorged_on, ["n0"]);
        assert_eq!(b.reorg_depth, Some(2));
        let on: Vec<(&str, &str)> = t
            .nodes
            .iter()
            .map(|n| (n.node.as_str(), n.on.as_str()))
            .collect();
        assert_eq!(
            on,
            [
                ("n0", "active"),
                ("n1", "active"),
                ("n2", "behind 1"),
                ("n3", "stale branch")
            ]
        );
    }

    #[test]
    fn the_text_puts_each_branch_under_its_fork_point() {
        let text = render_tree(&sample());
        let lines: Vec<&str> = text.lines().collect();
        let at = |needle: &str| {
            lines
                .iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle} not in\n{text}"))
        };
        assert!(
            lines[1].contains("INVALID: bad-cb-amount (rejected by n0 n1)"),
            "{text}"
        );
        assert!(at(&h('d')) < at(&h('a')), "{text}");
        let branch = at(&h('f'));
        assert_eq!(
            branch,
            at(&h('a')) + 1,
            "the branch follows its fork point:\n{text}"
        );
        assert!(
            lines[branch].contains("stale branch of 2, held by n0 n3; reorged out on n0 (depth 2)"),
            "{text}"
        );
        assert!(lines[at(&h('d'))].contains("n0 n1") && lines[at(&h('d'))].contains("active tip"));
        assert!(
            text.contains("not on the active tip: n2 at 12")
                && text.contains("behind 1")
                && text.contains("stale branch)"),
            "{text}"
        );
    }
}
