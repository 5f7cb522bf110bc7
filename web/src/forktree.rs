//! The fork tree of the last N heights, built from what the nodes reported: which blocks they
//! connected (with each block's parent), disconnected and rejected, their reorgs, their
//! `getchaintips` and their current tips. Pure: [`ForkTree::build`] takes rows and gives the
//! tree the tips page draws ([`crate::svg::tree`]) and lists.
//!
//! The active chain is the one under the best tip: the highest block some node holds as its
//! tip (ties: the one more nodes hold). Every other block is on a side branch, marked stale,
//! invalid or headers-only. A tip that only `getchaintips` reported (its branch's blocks never
//! reached a node's ZMQ or log) hangs off the active chain at its fork height, the blocks
//! between shown as a gap; an invalid block without a known parent hangs off the active block
//! one below it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::sql::fleet::NodeRow;
use crate::sql::tips::{ChainTipsRow, ConnectedRow, DisconnectedRow, InvalidRow, ReorgRow};

/// Where a block stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BlockState {
    /// On the chain under the best tip.
    Active,
    /// Valid but off the active chain (reorged out, or a losing branch).
    Stale,
    /// Some node found it invalid (or `getchaintips` says its branch is).
    Invalid,
    /// Only its header is known (`headers-only`, `valid-headers`).
    HeadersOnly,
}

impl BlockState {
    /// Lowercase name for pages.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockState::Active => "active",
            BlockState::Stale => "stale",
            BlockState::Invalid => "invalid",
            BlockState::HeadersOnly => "headers-only",
        }
    }
}

/// One node's verdict that a block is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidReport {
    /// The node.
    pub node: String,
    /// Core's reject reason.
    pub reason: String,
    /// Core's detail, if any.
    pub detail: Option<String>,
    /// The peer that sent the block.
    pub peer: Option<u64>,
}

/// One block of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeBlock {
    /// Block hash.
    pub hash: String,
    /// Height.
    pub height: u32,
    /// The parent's hash, when a node connected the block.
    pub prev: Option<String>,
    /// The parent's index in [`ForkTree::blocks`], when the parent is in the tree.
    pub parent: Option<usize>,
    /// The parent was inferred (fork height or height − 1), not reported.
    pub parent_inferred: bool,
    /// Blocks between the parent and this one that no node reported.
    pub gap: u32,
    /// Where it stands.
    pub state: BlockState,
    /// Nodes whose current tip it is.
    pub holders: BTreeSet<String>,
    /// Nodes whose tip it was until they reorged away from it.
    pub was_tip_of: BTreeSet<String>,
    /// Nodes that connected it.
    pub connected_by: BTreeSet<String>,
    /// Nodes that disconnected it.
    pub disconnected_by: BTreeSet<String>,
    /// Nodes that found it invalid, and why.
    pub invalid: Vec<InvalidReport>,
    /// `getchaintips` status per node, for blocks that are a node's non-active tip.
    pub tip_status: BTreeMap<String, String>,
    /// The miner tag of its coinbase.
    pub miner: Option<String>,
    /// Its row in the drawing (0: the active chain).
    pub lane: u32,
    fork_height: Option<u32>,
}

/// Reorgs of the same shape (same fork point, old and new tip), with the nodes that went
/// through them.
#[derive(Debug, Clone, PartialEq)]
pub struct ReorgMark {
    /// Height of the last shared block.
    pub fork_height: u32,
    /// The last shared block.
    pub fork_point: String,
    /// Blocks disconnected.
    pub depth: u32,
    /// Tip before.
    pub old_tip: String,
    /// Height of the tip before.
    pub old_height: u32,
    /// Tip after.
    pub new_tip: String,
    /// Height of the tip after.
    pub new_height: u32,
    /// Each node and when it reorged, µs.
    pub nodes: Vec<(String, i64)>,
}

/// What the tree is built from (rows of the tips page's queries).
#[derive(Debug, Clone, Copy)]
pub struct Observations<'a> {
    /// The lowest height shown.
    pub low: u32,
    /// Block connections at or above `low`.
    pub connected: &'a [ConnectedRow],
    /// Block disconnections at or above `low`.
    pub disconnected: &'a [DisconnectedRow],
    /// Reorgs touching the window.
    pub reorgs: &'a [ReorgRow],
    /// Each node's latest chain tips.
    pub tips: &'a [ChainTipsRow],
    /// Invalid blocks at or above `low`.
    pub invalid: &'a [InvalidRow],
    /// Each node's latest status (its current tip).
    pub statuses: &'a [NodeRow],
}

/// The tree.
#[derive(Debug, Clone, PartialEq)]
pub struct ForkTree {
    /// Lowest height shown.
    pub low: u32,
    /// Highest height of any block in the tree (`low` when empty).
    pub high: u32,
    /// Every block, sorted by height then hash.
    pub blocks: Vec<TreeBlock>,
    /// Reorgs, newest first.
    pub reorgs: Vec<ReorgMark>,
    /// Rows the drawing needs (the active chain's included).
    pub lanes: u32,
}

impl ForkTree {
    /// Builds the tree.
    pub fn build<'a>(obs: &Observations<'a>) -> ForkTree {
        let mut b = Builder::default();
        for c in obs.connected {
            let blk = b.entry(&c.hash, c.height);
            blk.prev = Some(c.prev.clone());
            blk.connected_by.insert(c.node.clone());
            if blk.miner.is_none() {
                blk.miner = c.miner_tag.clone();
            }
        }
        for d in obs.disconnected {
            b.entry(&d.hash, d.height)
                .disconnected_by
                .insert(d.node.clone());
        }
        for r in obs.reorgs {
            if let Some(&i) = b.index.get(&r.old_tip) {
                b.blocks[i].was_tip_of.insert(r.node.clone());
            }
            for hash in &r.disconnected {
                if let Some(&i) = b.index.get(hash) {
                    b.blocks[i].disconnected_by.insert(r.node.clone());
                }
            }
        }
        for i in obs.invalid {
            b.entry(&i.hash, i.height).invalid.push(InvalidReport {
                node: i.node.clone(),
                reason: i.reason.clone(),
                detail: i.detail.clone(),
                peer: i.peer,
            });
        }
        // Each node's current tip: its newest report, chain tips or status.
        let mut current: BTreeMap<&str, (i64, &str, u32)> = BTreeMap::new();
        let mut newer = |node: &'a str, at: i64, hash: &'a str, height: u32| {
            let e = current.entry(node).or_insert((at, hash, height));
            if at > e.0 {
                *e = (at, hash, height);
            }
        };
        for s in obs.statuses {
            newer(&s.node, s.last_heard_us, &s.best_block_hash, s.height);
        }
        for t in obs.tips {
            for i in 0..t.tip_hash.len() {
                let (Some(hash), Some(&height), Some(&len), Some(status)) = (
                    t.tip_hash.get(i),
                    t.tip_height.get(i),
                    t.tip_branch_len.get(i),
                    t.tip_status.get(i),
                ) else {
                    continue;
                };
                if status == "active" {
                    newer(&t.node, t.observed_at_us, hash, height);
                    continue;
                }
                if height < obs.low {
                    continue;
                }
                let blk = b.entry(hash, height);
                blk.tip_status.insert(t.node.clone(), status.clone());
                if len > 0 {
                    blk.fork_height = Some(height.saturating_sub(len));
                }
            }
        }
        for (node, (_, hash, height)) in current {
            if height >= obs.low && !hash.is_empty() {
                b.entry(hash, height).holders.insert(node.to_string());
            }
        }
        let mut tree = b.finish(obs.low);
        tree.reorgs = reorg_marks(obs.reorgs);
        tree
    }

    /// The block at `i`'s parent, if in the tree.
    pub fn parent(&self, i: usize) -> Option<&TreeBlock> {
        self.blocks[i].parent.map(|p| &self.blocks[p])
    }

    /// The active chain's block at `height`.
    pub fn active_at(&self, height: u32) -> Option<&TreeBlock> {
        self.blocks
            .iter()
            .find(|b| b.height == height && b.state == BlockState::Active)
    }

    /// Blocks off the active chain.
    pub fn side_blocks(&self) -> impl Iterator<Item = &TreeBlock> {
        self.blocks.iter().filter(|b| b.state != BlockState::Active)
    }
}

#[derive(Default)]
struct Builder {
    blocks: Vec<TreeBlock>,
    index: HashMap<String, usize>,
}

impl Builder {
    fn entry(&mut self, hash: &str, height: u32) -> &mut TreeBlock {
        let i = match self.index.get(hash) {
            Some(&i) => i,
            None => {
                self.blocks.push(TreeBlock {
                    hash: hash.to_string(),
                    height,
                    prev: None,
                    parent: None,
                    parent_inferred: false,
                    gap: 0,
                    state: BlockState::Stale,
                    holders: BTreeSet::new(),
                    was_tip_of: BTreeSet::new(),
                    connected_by: BTreeSet::new(),
                    disconnected_by: BTreeSet::new(),
                    invalid: Vec::new(),
                    tip_status: BTreeMap::new(),
                    miner: None,
                    lane: 0,
                    fork_height: None,
                });
                self.index.insert(hash.to_string(), self.blocks.len() - 1);
                self.blocks.len() - 1
            }
        };
        &mut self.blocks[i]
    }

    fn finish(mut self, low: u32) -> ForkTree {
        self.blocks
            .sort_by(|a, b| (a.height, &a.hash).cmp(&(b.height, &b.hash)));
        let index: HashMap<String, usize> = self
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| (b.hash.clone(), i))
            .collect();
        let mut blocks = self.blocks;

        // The best tip, and the active chain under it.
        let best = blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.holders.is_empty() && b.invalid.is_empty())
            .max_by(|(_, a), (_, b)| {
                (a.height, a.holders.len(), &b.hash).cmp(&(b.height, b.holders.len(), &a.hash))
            })
            .or_else(|| {
                blocks
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| !b.connected_by.is_empty())
                    .max_by_key(|(_, b)| b.height)
            })
            .map(|(i, _)| i);
        let mut active = vec![false; blocks.len()];
        let mut cursor = best;
        while let Some(i) = cursor {
            if active[i] {
                break;
            }
            active[i] = true;
            cursor = blocks[i].prev.as_ref().and_then(|p| index.get(p)).copied();
        }
        let active_at: HashMap<u32, usize> = (0..blocks.len())
            .filter(|&i| active[i])
            .map(|i| (blocks[i].height, i))
            .collect();

        for (i, b) in blocks.iter_mut().enumerate() {
            b.parent = b.prev.as_ref().and_then(|p| index.get(p)).copied();
            if b.parent.is_none() && b.height > low {
                let below = b.fork_height.unwrap_or(b.height - 1);
                if below >= low {
                    if let Some(&p) = active_at.get(&below) {
                        b.parent = Some(p);
                        b.parent_inferred = true;
                        b.gap = b.height.saturating_sub(below + 1);
                    }
                }
            }
            let invalid_tip = b.tip_status.values().any(|s| s == "invalid");
            let headers_only = !b.tip_status.is_empty()
                && b.tip_status
                    .values()
                    .all(|s| s == "headers-only" || s == "valid-headers");
            b.state = if active[i] {
                BlockState::Active
            } else if !b.invalid.is_empty() || invalid_tip {
                BlockState::Invalid
            } else if b.connected_by.is_empty() && headers_only {
                BlockState::HeadersOnly
            } else {
                BlockState::Stale
            };
        }
        let lanes = assign_lanes(&mut blocks);
        let high = blocks.iter().map(|b| b.height).max().unwrap_or(low);
        ForkTree {
            low,
            high,
            blocks,
            reorgs: Vec::new(),
            lanes,
        }
    }
}

/// Lane 0 is the active chain; a side branch continues its parent's lane, or takes the first
/// lane free from the column before it starts (so branches never overlap).
fn assign_lanes(blocks: &mut [TreeBlock]) -> u32 {
    let mut lane_end: Vec<Option<u32>> = vec![None];
    let mut continued = vec![false; blocks.len()];
    for i in 0..blocks.len() {
        if blocks[i].state == BlockState::Active {
            blocks[i].lane = 0;
            continue;
        }
        let height = blocks[i].height;
        let start = height.saturating_sub(blocks[i].gap);
        let extend = blocks[i].parent.filter(|&p| {
            let parent = &blocks[p];
            parent.state != BlockState::Active
                && !continued[p]
                && lane_end[parent.lane as usize] == Some(parent.height)
        });
        let lane = match extend {
            Some(p) => {
                continued[p] = true;
                blocks[p].lane
            }
            None => {
                let free =
                    (1..lane_end.len()).find(|&l| lane_end[l].is_none_or(|end| end + 1 < start));
                match free {
                    Some(l) => l as u32,
                    None => {
                        lane_end.push(None);
                        (lane_end.len() - 1) as u32
                    }
                }
            }
        };
        lane_end[lane as usize] = Some(height);
        blocks[i].lane = lane;
    }
    lane_end.len() as u32
}

fn reorg_marks(rows: &[ReorgRow]) -> Vec<ReorgMark> {
    let mut marks: Vec<ReorgMark> = Vec::new();
    for r in rows {
        match marks.iter_mut().find(|m| {
            m.fork_point == r.fork_point && m.old_tip == r.old_tip && m.new_tip == r.new_tip
        }) {
            Some(m) => m.nodes.push((r.node.clone(), r.observed_at_us)),
            None => marks.push(ReorgMark {
                fork_height: r.fork_height,
                fork_point: r.fork_point.clone(),
                depth: r.depth,
                old_tip: r.old_tip.clone(),
                old_height: r.old_height,
                new_tip: r.new_tip.clone(),
                new_height: r.new_height,
                nodes: vec![(r.node.clone(), r.observed_at_us)],
            }),
        }
    }
    for m in &mut marks {
        m.nodes.sort();
    }
    marks
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 64-hex hash from a label: `h("a5")` ends in `a5`.
    pub fn h(label: &str) -> String {
        format!("{label:0>64}")
    }

    pub fn conn(hash: &str, height: u32, prev: &str, node: &str) -> ConnectedRow {
        ConnectedRow {
            hash: h(hash),
            height,
            prev: h(prev),
            node: node.into(),
            at_us: i64::from(height) * 1_000_000,
            miner_tag: None,
        }
    }

    pub fn status(node: &str, hash: &str, height: u32) -> NodeRow {
        NodeRow {
            node: node.into(),
            subversion: "/Satoshi:30.0.0/".into(),
            version: 300000,
            height,
            headers: height,
            best_block_hash: h(hash),
            tip_time: None,
            initial_block_download: 0,
            verification_progress: 1.0,
            peers_in: 0,
            peers_out: 1,
            mempool_count: 0,
            mempool_bytes: 0,
            last_heard_us: 1,
        }
    }

    /// Heights 100..=103 on the active chain a0..a3 held by n0 and n1; n2 reorged away
    /// from b2 (a stale block at 102 on a1) to a3; n1 rejected x2 (invalid at 102);
    /// n0's getchaintips shows a headers-only branch of 2 blocks ending in y3 at 103.
    pub fn scenario() -> Scenario {
        let mut connected = Vec::new();
        for node in ["n0", "n1", "n2"] {
            connected.push(conn("a0", 100, "99", node));
            connected.push(conn("a1", 101, "a0", node));
            connected.push(conn("a2", 102, "a1", node));
            connected.push(conn("a3", 103, "a2", node));
        }
        connected.push(conn("b2", 102, "a1", "n2"));
        let disconnected = vec![DisconnectedRow {
            hash: h("b2"),
            height: 102,
            node: "n2".into(),
            at_us: 5,
        }];
        let reorgs = vec![ReorgRow {
            node: "n2".into(),
            observed_at_us: 103_500_000,
            old_tip: h("b2"),
            old_height: 102,
            new_tip: h("a3"),
            new_height: 103,
            fork_point: h("a1"),
            fork_height: 101,
            depth: 1,
            disconnected: vec![h("b2")],
            connected: vec![h("a2"), h("a3")],
        }];
        let tips = vec![ChainTipsRow {
            node: "n0".into(),
            observed_at_us: 0,
            tip_height: vec![103, 103],
            tip_hash: vec![h("a3"), h("y3")],
            tip_branch_len: vec![0, 2],
            tip_status: vec!["active".into(), "headers-only".into()],
        }];
        let invalid = vec![InvalidRow {
            hash: h("x2"),
            height: 102,
            node: "n1".into(),
            reason: "bad-cb-amount".into(),
            detail: Some("coinbase pays too much".into()),
            peer: Some(3),
            at_us: 7,
        }];
        let statuses = vec![
            status("n0", "a3", 103),
            status("n1", "a3", 103),
            status("n2", "a3", 103),
        ];
        Scenario {
            connected,
            disconnected,
            reorgs,
            tips,
            invalid,
            statuses,
        }
    }

    /// The rows of [`scenario`].
    pub struct Scenario {
        pub connected: Vec<ConnectedRow>,
        pub disconnected: Vec<DisconnectedRow>,
        pub reorgs: Vec<ReorgRow>,
        pub tips: Vec<ChainTipsRow>,
        pub invalid: Vec<InvalidRow>,
        pub statuses: Vec<NodeRow>,
    }

    pub fn scenario_tree() -> ForkTree {
        let s = scenario();
        ForkTree::build(&Observations {
            low: 100,
            connected: &s.connected,
            disconnected: &s.disconnected,
            reorgs: &s.reorgs,
            tips: &s.tips,
            invalid: &s.invalid,
            statuses: &s.statuses,
        })
    }

    fn find<'a>(t: &'a ForkTree, label: &str) -> &'a TreeBlock {
        t.blocks
            .iter()
            .find(|b| b.hash == h(label))
            .unwrap_or_else(|| panic!("{label} not in the tree"))
    }

    #[test]
    fn the_active_chain_runs_under_the_tip_the_nodes_hold() {
        let t = scenario_tree();
        for a in ["a0", "a1", "a2", "a3"] {
            assert_eq!(find(&t, a).state, BlockState::Active, "{a}");
            assert_eq!(find(&t, a).lane, 0, "{a}");
        }
        assert_eq!(
            find(&t, "a3").holders,
            ["n0", "n1", "n2"].map(String::from).into()
        );
        assert_eq!(t.active_at(101).map(|b| b.hash.clone()), Some(h("a1")));
        assert_eq!((t.low, t.high), (100, 103));
    }

    #[test]
    fn a_reorged_out_block_is_a_stale_branch_off_its_parent() {
        let t = scenario_tree();
        let b2 = find(&t, "b2");
        assert_eq!(b2.state, BlockState::Stale);
        assert_eq!(b2.disconnected_by, ["n2".to_string()].into());
        assert_eq!(b2.connected_by, ["n2".to_string()].into());
        assert_eq!(b2.was_tip_of, ["n2".to_string()].into());
        let parent = b2.parent.map(|p| t.blocks[p].hash.clone());
        assert_eq!(parent, Some(h("a1")));
        assert!(!b2.parent_inferred);
        assert!(b2.lane > 0);
        assert_eq!(t.reorgs.len(), 1);
        assert_eq!(t.reorgs[0].depth, 1);
        assert_eq!(t.reorgs[0].fork_height, 101);
        assert_eq!(t.reorgs[0].nodes[0].0, "n2");
    }

    #[test]
    fn an_invalid_block_keeps_its_reason_and_hangs_off_the_block_below() {
        let t = scenario_tree();
        let x2 = find(&t, "x2");
        assert_eq!(x2.state, BlockState::Invalid);
        assert_eq!(x2.invalid[0].reason, "bad-cb-amount");
        assert_eq!(x2.parent.map(|p| t.blocks[p].hash.clone()), Some(h("a1")));
        assert!(x2.parent_inferred);
    }

    #[test]
    fn a_headers_only_tip_hangs_off_its_fork_point_with_a_gap() {
        let t = scenario_tree();
        let y3 = find(&t, "y3");
        assert_eq!(y3.state, BlockState::HeadersOnly);
        assert_eq!(y3.parent.map(|p| t.blocks[p].hash.clone()), Some(h("a1")));
        assert_eq!(y3.gap, 1);
        assert_eq!(
            y3.tip_status.get("n0").map(String::as_str),
            Some("headers-only")
        );
    }

    #[test]
    fn side_branches_never_share_a_lane_where_they_overlap() {
        let t = scenario_tree();
        let side: Vec<&TreeBlock> = t.side_blocks().collect();
        assert_eq!(side.len(), 3);
        for (i, a) in side.iter().enumerate() {
            for b in &side[i + 1..] {
                let (a0, a1) = (a.height - a.gap - 1, a.height);
                let (b0, b1) = (b.height - b.gap - 1, b.height);
                if a.lane == b.lane {
                    assert!(
                        a1 < b0 || b1 < a0,
                        "{a:?} and {b:?} overlap in lane {}",
                        a.lane
                    );
                }
            }
        }
        assert!(t.lanes >= 3, "{}", t.lanes);
    }

    #[test]
    fn a_longer_branch_keeps_one_lane() {
        let connected = vec![
            conn("a0", 10, "9", "n0"),
            conn("a1", 11, "a0", "n0"),
            conn("a2", 12, "a1", "n0"),
            conn("a3", 13, "a2", "n0"),
            conn("s1", 11, "a0", "n1"),
            conn("s2", 12, "s1", "n1"),
        ];
        let statuses = vec![status("n0", "a3", 13), status("n1", "s2", 12)];
        let t = ForkTree::build(&Observations {
            low: 10,
            connected: &connected,
            disconnected: &[],
            reorgs: &[],
            tips: &[],
            invalid: &[],
            statuses: &statuses,
        });
        assert_eq!(find(&t, "s1").lane, find(&t, "s2").lane);
        assert_eq!(find(&t, "s2").state, BlockState::Stale);
        assert_eq!(find(&t, "s2").holders, ["n1".to_string()].into());
        assert_eq!(t.lanes, 2);
    }

    #[test]
    fn an_empty_window_gives_an_empty_tree() {
        let t = ForkTree::build(&Observations {
            low: 5,
            connected: &[],
            disconnected: &[],
            reorgs: &[],
            tips: &[],
            invalid: &[],
            statuses: &[],
        });
        assert!(t.blocks.is_empty());
        assert_eq!(t.lanes, 1);
    }
}
