//! The propagation detector: when each node first saw each block and transaction.
//!
//! Inputs: `block_seen` (every stage), `block_connected` and `tx_seen`; `invalid_block` and the
//! `invalid` tips of `chain_tips` say which node rejected a block; every event marks its node
//! as active. For each object (block hash or txid) it keeps each node's earliest
//! sighting (the earliest stage for blocks). An object settles `block_settle_secs` /
//! `tx_settle_secs` after its first sighting, by event time (ticks included); then the detector
//! emits a [`PropagationSummary`] (first seen, fleet median, spread = last - first, each node's
//! lag behind the median, nodes that missed it) and judges it:
//!
//! | alert | fires | resolves |
//! | --- | --- | --- |
//! | `propagation_lag` (per node and object kind) | the node's lag exceeds both its own baseline and the fleet's: `max(floor, median + max(floor, mad_factor * 1.4826 * MAD))` over the rolling windows, for objects at least 3 nodes saw | the node's next settled object is within bounds |
//! | `propagation_spread` (per object kind) | spread exceeds `max(floor, median + max(floor, mad_factor * 1.4826 * MAD))` of recent spreads | the next settled object's spread is within bounds |
//! | `block_missed` (per node) | an active node (any event within `active_node_secs`) never saw a block that at least `missed_quorum` of the active fleet saw, by the time it settled | the node sees the next block in time |
//!
//! Who did not miss a block: a node that rejected it (`invalid_block` for that hash from that
//! node, or the hash listed `invalid` in its `chain_tips`), and a node that saw a different
//! block at the same height by settle time: it followed the other side of a fork (the block is
//! on a stale branch for it, or it has not fetched the competing block of an equal-work race).
//! A node that saw nothing at that height did miss it, also when the block later wins: a node
//! cut off from the fleet misses the blocks the rest mined meanwhile.
//!
//! Baselines need `min_samples` samples; until then only the floors apply. Samples enter the
//! windows after being judged, so an outlier never hides itself. Alerts start at the object's
//! settle time (first sighting + settle), which depends only on events, so replays give the
//! same ids.
//!
//! State: pending objects (at most `max_pending_txs` transactions; past that the oldest settle
//! early), the last `seen_capacity` settled objects (a late sighting of a settled object is
//! ignored), `block_window`/`tx_window` lags per node and ten times that for the fleet, and
//! which node saw which block at each of the last [`SIBLING_HEIGHTS`] heights.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use bitcoin::{BlockHash, Txid};
use schema::event::{BlockStage, ChainTips, Event, Severity, TipStatus};
use schema::{EventId, Height, NodeId, UnixMicros};
use serde::{Deserialize, Serialize};

use crate::guard::{Analysis, Guarded};
use crate::incident::{evidence, firing, fmt_secs, fmt_time, Incidents};
use crate::seen::SeenSet;
use crate::{consumer_name, secs, Input, Output};

/// Thresholds of the propagation detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PropagationConfig {
    /// Event ids (and settled objects) remembered to drop duplicates and late sightings.
    pub seen_capacity: usize,
    /// A block settles this long after its first sighting, seconds.
    pub block_settle_secs: u64,
    /// A node's block lag never alerts below this, milliseconds.
    pub block_lag_floor_ms: u64,
    /// A block's spread never alerts below this, milliseconds.
    pub block_spread_floor_ms: u64,
    /// Block lags kept per node for its baseline (the fleet keeps ten times as many).
    pub block_window: usize,
    /// A transaction settles this long after its first sighting, seconds.
    pub tx_settle_secs: u64,
    /// A node's transaction lag never alerts below this, milliseconds.
    pub tx_lag_floor_ms: u64,
    /// A transaction's spread never alerts below this, milliseconds.
    pub tx_spread_floor_ms: u64,
    /// Transaction lags kept per node for its baseline (the fleet keeps ten times as many).
    pub tx_window: usize,
    /// Whether transactions raise lag and spread alerts.
    pub tx_alerts: bool,
    /// Whether settled transactions emit summaries (blocks always do).
    pub tx_summaries: bool,
    /// How many MADs above the median is anomalous.
    pub mad_factor: f64,
    /// Samples a window needs before its baseline counts.
    pub min_samples: usize,
    /// A node missed a block when at least this fraction of the active fleet saw it.
    pub missed_quorum: f64,
    /// A node is active if it sent any event within this many seconds.
    pub active_node_secs: u64,
    /// Pending transactions kept at most; past that the oldest settle early.
    pub max_pending_txs: usize,
}

impl Default for PropagationConfig {
    fn default() -> Self {
        PropagationConfig {
            seen_capacity: 200_000,
            block_settle_secs: 120,
            block_lag_floor_ms: 10_000,
            block_spread_floor_ms: 30_000,
            block_window: 144,
            tx_settle_secs: 60,
            tx_lag_floor_ms: 30_000,
            tx_spread_floor_ms: 60_000,
            tx_window: 1000,
            tx_alerts: true,
            tx_summaries: true,
            mad_factor: 5.0,
            min_samples: 20,
            missed_quorum: 0.5,
            active_node_secs: 1800,
            max_pending_txs: 100_000,
        }
    }
}

/// The block or transaction a summary is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropagatedObject {
    /// A block.
    Block(BlockHash),
    /// A transaction.
    Tx(Txid),
}

impl PropagatedObject {
    fn kind(&self) -> &'static str {
        match self {
            PropagatedObject::Block(_) => "block",
            PropagatedObject::Tx(_) => "tx",
        }
    }

    fn hash_text(&self) -> String {
        match self {
            PropagatedObject::Block(h) => h.to_string(),
            PropagatedObject::Tx(t) => t.to_string(),
        }
    }
}

/// One node's first sighting of a settled object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSighting {
    /// The node.
    pub node: NodeId,
    /// When it first saw the object (its earliest stage).
    pub first_seen: UnixMicros,
    /// `first_seen` minus the fleet median, microseconds (negative: ahead of the fleet).
    pub lag_micros: i64,
    /// The stage of that first sighting (`header`, `cmpctblock`, `block`, `tip`,
    /// `connected`, or `mempool` for transactions).
    pub stage: String,
}

/// How one block or transaction spread through the fleet (a derived record, one per object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropagationSummary {
    /// What spread.
    pub object: PropagatedObject,
    /// The block's height, when a sighting said it.
    pub height: Option<Height>,
    /// Earliest sighting in the fleet.
    pub first_seen: UnixMicros,
    /// The node that saw it first.
    pub first_node: NodeId,
    /// Median of the nodes' first sightings.
    pub median_seen: UnixMicros,
    /// Last first-sighting minus first, microseconds.
    pub spread_micros: i64,
    /// Every node that saw it, in node-name order.
    pub nodes: Vec<NodeSighting>,
    /// Active nodes that never saw this block while most of the fleet did (always empty for
    /// transactions, which nodes may legitimately never accept).
    pub missing: Vec<NodeId>,
    /// When it settled: first sighting plus the settle time.
    pub settled_at: UnixMicros,
}

impl PropagationSummary {
    /// A deterministic id for the record (from `det-propagation` and the object).
    pub fn id(&self) -> EventId {
        let (tag, bytes): (&[u8], Vec<u8>) = match self.object {
            PropagatedObject::Block(h) => (b"block", h.to_string().into_bytes()),
            PropagatedObject::Tx(t) => (b"tx", t.to_string().into_bytes()),
        };
        EventId::derive(
            &consumer_name(crate::DetectorName::Propagation),
            "propagation_summary",
            &[tag, &bytes],
        )
    }
}

/// Stage codes, earliest first; ties between equal times keep the earlier stage.
const STAGES: [&str; 6] = [
    "header",
    "cmpctblock",
    "block",
    "tip",
    "connected",
    "mempool",
];

fn stage_code(s: BlockStage) -> u8 {
    match s {
        BlockStage::Header => 0,
        BlockStage::Cmpctblock => 1,
        BlockStage::Block => 2,
        BlockStage::Tip => 3,
    }
}

/// Objects seen by fewer nodes than this have no meaningful median to lag behind.
const MIN_NODES_FOR_LAG: usize = 3;

/// Heights below the highest seen for which the detector remembers which node saw which block
/// (to tell a node on the other side of a fork from one that missed a block). Blocks settle
/// minutes after their first sighting, far fewer heights than this.
pub const SIBLING_HEIGHTS: u32 = 100;

#[derive(Debug, Clone)]
struct Pending {
    height: Option<Height>,
    deadline: UnixMicros,
    sightings: Vec<(u16, UnixMicros, u8)>,
    /// Nodes that rejected this block as invalid.
    rejected_by: Vec<u16>,
}

/// A rolling window of samples with a cached median and MAD.
#[derive(Debug, Clone)]
struct Window {
    cap: usize,
    buf: VecDeque<i64>,
    cached: Option<(i64, i64)>,
    pushes_since: usize,
}

impl Window {
    fn new(cap: usize) -> Self {
        Window {
            cap: cap.max(1),
            buf: VecDeque::new(),
            cached: None,
            pushes_since: 0,
        }
    }

    fn push(&mut self, v: i64) {
        self.buf.push_back(v);
        if self.buf.len() > self.cap {
            self.buf.pop_front();
        }
        self.pushes_since += 1;
        // Recomputing every tenth of the window keeps `apply` O(1) amortised.
        if self.pushes_since >= (self.cap / 10).max(1) {
            self.cached = None;
        }
    }

    /// Median and MAD, once the window holds `min` samples.
    fn stats(&mut self, min: usize) -> Option<(i64, i64)> {
        if self.buf.len() < min.max(1) {
            return None;
        }
        if self.cached.is_none() {
            let mut v: Vec<i64> = self.buf.iter().copied().collect();
            let med = median(&mut v);
            let mut dev: Vec<i64> = v.iter().map(|x| (x - med).abs()).collect();
            let mad = median(&mut dev);
            self.cached = Some((med, mad));
            self.pushes_since = 0;
        }
        self.cached
    }

    /// `max(floor, median + max(floor, k * 1.4826 * MAD))`, or the floor without a baseline.
    ///
    /// The excess over the median is at least the floor too: with steady samples the MAD is
    /// near zero, and a microsecond above the median is no anomaly.
    fn threshold(&mut self, min: usize, floor: i64, k: f64) -> (i64, Option<(i64, i64)>) {
        match self.stats(min) {
            Some((med, mad)) => {
                let spread = ((k * 1.4826 * mad as f64) as i64).max(floor);
                (floor.max(med.saturating_add(spread)), Some((med, mad)))
            }
            None => (floor, None),
        }
    }
}

/// Median of a non-empty slice (lower middle for even lengths, so it is one of the samples'
/// midpoint only when needed); reorders the slice.
fn median(v: &mut [i64]) -> i64 {
    if v.is_empty() {
        return 0;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable(mid);
    let upper = *m;
    if v.len() % 2 == 1 {
        return upper;
    }
    let lower = v[..mid].iter().copied().max().unwrap_or(upper);
    lower + (upper - lower) / 2
}

#[derive(Debug, Clone)]
struct KindStats {
    lag_floor: i64,
    spread_floor: i64,
    window: usize,
    per_node: Vec<Window>,
    fleet: Window,
    spreads: Window,
}

impl KindStats {
    fn new(lag_floor_ms: u64, spread_floor_ms: u64, window: usize) -> Self {
        KindStats {
            lag_floor: i64::try_from(lag_floor_ms.saturating_mul(1000)).unwrap_or(i64::MAX),
            spread_floor: i64::try_from(spread_floor_ms.saturating_mul(1000)).unwrap_or(i64::MAX),
            window,
            per_node: Vec::new(),
            fleet: Window::new(window.saturating_mul(10)),
            spreads: Window::new(window),
        }
    }

    fn node(&mut self, idx: u16) -> &mut Window {
        let i = usize::from(idx);
        while self.per_node.len() <= i {
            self.per_node.push(Window::new(self.window));
        }
        &mut self.per_node[i]
    }
}

/// First-seen, spread and lag of blocks and transactions across the fleet: the propagation
/// analysis with its duplicate filter and event clock.
pub type PropagationDetector = Guarded<PropagationAnalysis>;

/// The propagation analysis (see the module docs).
#[derive(Debug, Clone)]
pub struct PropagationAnalysis {
    config: PropagationConfig,
    settled: SeenSet<PropagatedObject>,
    nodes: Vec<NodeId>,
    node_idx: HashMap<NodeId, u16>,
    last_event: Vec<UnixMicros>,
    pending: HashMap<PropagatedObject, Pending>,
    queue: BTreeSet<(UnixMicros, PropagatedObject)>,
    pending_txs: usize,
    blocks: KindStats,
    txs: KindStats,
    incidents: Incidents,
    /// Per height, which node saw which block there.
    at_height: BTreeMap<Height, Vec<(u16, BlockHash)>>,
}

impl PropagationAnalysis {
    fn node_index(&mut self, node: &NodeId, at: UnixMicros) -> Option<u16> {
        let idx = match self.node_idx.get(node) {
            Some(i) => *i,
            None => {
                // Node names are interned; a fleet beyond u16::MAX nodes is not supported.
                let i = u16::try_from(self.nodes.len()).ok()?;
                self.nodes.push(node.clone());
                self.node_idx.insert(node.clone(), i);
                self.last_event.push(at);
                i
            }
        };
        let last = &mut self.last_event[usize::from(idx)];
        *last = (*last).max(at);
        Some(idx)
    }

    /// The pending entry of `object`, created with its settle deadline from `at` if new; `None`
    /// once it settled.
    fn pending_entry(&mut self, object: PropagatedObject, at: UnixMicros) -> Option<&mut Pending> {
        if self.settled.contains(&object) {
            return None;
        }
        let settle = match object {
            PropagatedObject::Block(_) => self.config.block_settle_secs,
            PropagatedObject::Tx(_) => self.config.tx_settle_secs,
        };
        Some(self.pending.entry(object).or_insert_with(|| {
            let deadline = at.plus_micros(secs(settle));
            self.queue.insert((deadline, object));
            if matches!(object, PropagatedObject::Tx(_)) {
                self.pending_txs += 1;
            }
            Pending {
                height: None,
                deadline,
                sightings: Vec::with_capacity(8),
                rejected_by: Vec::new(),
            }
        }))
    }

    fn sighting(
        &mut self,
        object: PropagatedObject,
        height: Option<Height>,
        node: u16,
        at: UnixMicros,
        stage: u8,
    ) {
        let Some(p) = self.pending_entry(object, at) else {
            return;
        };
        let learned_height = p.height.is_none() && height.is_some();
        p.height = p.height.or(height);
        let first_of_node = match p.sightings.iter_mut().find(|s| s.0 == node) {
            Some(s) => {
                if (at, stage) < (s.1, s.2) {
                    s.1 = at;
                    s.2 = stage;
                }
                false
            }
            None => {
                p.sightings.push((node, at, stage));
                true
            }
        };
        if let (PropagatedObject::Block(hash), Some(h)) = (object, p.height) {
            // Record every sighting once the height is known (earlier ones when it is learned).
            let nodes: Vec<u16> = if learned_height {
                p.sightings.iter().map(|s| s.0).collect()
            } else if first_of_node {
                vec![node]
            } else {
                Vec::new()
            };
            self.saw_at_height(h, hash, &nodes);
        }
    }

    fn saw_at_height(&mut self, height: Height, hash: BlockHash, nodes: &[u16]) {
        if nodes.is_empty() {
            return;
        }
        let top = self.at_height.last_key_value().map_or(height, |(h, _)| *h);
        if height.0.saturating_add(SIBLING_HEIGHTS) < top.0 {
            return;
        }
        let entry = self.at_height.entry(height).or_default();
        for n in nodes {
            if !entry.contains(&(*n, hash)) {
                entry.push((*n, hash));
            }
        }
        let floor = Height(height.max(top).0.saturating_sub(SIBLING_HEIGHTS));
        while self
            .at_height
            .first_key_value()
            .is_some_and(|(h, _)| *h < floor)
        {
            self.at_height.pop_first();
        }
    }

    /// `node` rejected block `hash` as invalid.
    fn rejection(&mut self, hash: BlockHash, node: u16, at: UnixMicros) {
        if let Some(p) = self.pending_entry(PropagatedObject::Block(hash), at) {
            if !p.rejected_by.contains(&node) {
                p.rejected_by.push(node);
            }
        }
    }

    /// Invalid tips a node lists reject those blocks, if they are still settling (a listing
    /// repeats old history, so it never starts a new object).
    fn invalid_tips(&mut self, t: &ChainTips, node: u16) {
        for tip in t.tips.iter().filter(|x| x.status == TipStatus::Invalid) {
            if let Some(p) = self.pending.get_mut(&PropagatedObject::Block(tip.hash)) {
                if !p.rejected_by.contains(&node) {
                    p.rejected_by.push(node);
                }
            }
        }
    }

    /// Settles every object due by `now`, and the oldest transactions past the pending bound.
    fn settle_due(&mut self, now: UnixMicros, cause: EventId, out: &mut Vec<Output>) {
        loop {
            let Some(&(deadline, object)) = self.queue.first() else {
                return;
            };
            let over = self.pending_txs > self.config.max_pending_txs;
            if deadline > now && !over {
                return;
            }
            self.queue.pop_first();
            if let Some(p) = self.pending.remove(&object) {
                if matches!(object, PropagatedObject::Tx(_)) {
                    self.pending_txs = self.pending_txs.saturating_sub(1);
                }
                self.settled.insert(object);
                self.settle(object, p, cause, out);
            }
        }
    }

    fn settle(
        &mut self,
        object: PropagatedObject,
        p: Pending,
        cause: EventId,
        out: &mut Vec<Output>,
    ) {
        let mut sightings = p.sightings;
        if sightings.is_empty() {
            return;
        }
        let mut times: Vec<i64> = sightings.iter().map(|s| s.1 .0).collect();
        let median_seen = UnixMicros(median(&mut times));
        let first = sightings.iter().map(|s| s.1).min().unwrap_or(median_seen);
        let last = sightings.iter().map(|s| s.1).max().unwrap_or(median_seen);
        let spread = last.micros_since(first);
        let first_idx = sightings
            .iter()
            .filter(|s| s.1 == first)
            .map(|s| s.0)
            .min_by(|a, b| self.nodes[usize::from(*a)].cmp(&self.nodes[usize::from(*b)]))
            .unwrap_or(sightings[0].0);
        sightings.sort_by(|a, b| self.nodes[usize::from(a.0)].cmp(&self.nodes[usize::from(b.0)]));

        let is_block = matches!(object, PropagatedObject::Block(_));
        let settled_at = p.deadline;
        let missing: Vec<u16> = if is_block {
            let active_after = settled_at.plus_micros(-secs(self.config.active_node_secs));
            let active: Vec<u16> = (0..self.nodes.len())
                .filter_map(|i| u16::try_from(i).ok())
                .filter(|i| self.last_event[usize::from(*i)] >= active_after)
                .collect();
            let seen_active = active
                .iter()
                .filter(|i| sightings.iter().any(|s| s.0 == **i))
                .count();
            let quorum = active.len() >= 2
                && seen_active as f64 >= self.config.missed_quorum * active.len() as f64;
            if quorum {
                // Nodes on the other side of a fork saw another block at this height.
                let other_side: Vec<u16> = match (object, p.height) {
                    (PropagatedObject::Block(hash), Some(h)) => self
                        .at_height
                        .get(&h)
                        .map(|v| {
                            v.iter()
                                .filter(|(_, b)| *b != hash)
                                .map(|(n, _)| *n)
                                .collect()
                        })
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                let mut m: Vec<u16> = active
                    .into_iter()
                    .filter(|i| !sightings.iter().any(|s| s.0 == *i))
                    .filter(|i| !p.rejected_by.contains(i) && !other_side.contains(i))
                    .collect();
                m.sort_by(|a, b| self.nodes[usize::from(*a)].cmp(&self.nodes[usize::from(*b)]));
                m
            } else {
                Vec::new()
            }
        } else {
            Vec::new()
        };

        let summary = PropagationSummary {
            object,
            height: p.height,
            first_seen: first,
            first_node: self.nodes[usize::from(first_idx)].clone(),
            median_seen,
            spread_micros: spread,
            nodes: sightings
                .iter()
                .map(|s| NodeSighting {
                    node: self.nodes[usize::from(s.0)].clone(),
                    first_seen: s.1,
                    lag_micros: s.1.micros_since(median_seen),
                    stage: STAGES[usize::from(s.2).min(STAGES.len() - 1)].to_string(),
                })
                .collect(),
            missing: missing
                .iter()
                .map(|i| self.nodes[usize::from(*i)].clone())
                .collect(),
            settled_at,
        };

        let alerts = is_block || self.config.tx_alerts;
        if alerts {
            self.judge_lags(&summary, &sightings, cause, out);
            self.judge_spread(&summary, cause, out);
            if is_block {
                self.judge_missed(&summary, cause, out);
            }
        }
        if is_block || self.config.tx_summaries {
            out.push(Output::Propagation(summary));
        }
    }

    fn judge_lags(
        &mut self,
        s: &PropagationSummary,
        sightings: &[(u16, UnixMicros, u8)],
        cause: EventId,
        out: &mut Vec<Output>,
    ) {
        let kind = s.object.kind();
        let k = self.config.mad_factor;
        let min = self.config.min_samples;
        let judged = sightings.len() >= MIN_NODES_FOR_LAG;
        let stats = match s.object {
            PropagatedObject::Block(_) => &mut self.blocks,
            PropagatedObject::Tx(_) => &mut self.txs,
        };
        let floor = stats.lag_floor;
        let mut verdicts = Vec::new();
        for (node, at, _) in sightings {
            let lag = at.micros_since(s.median_seen);
            if judged {
                let (node_thr, node_base) = stats.node(*node).threshold(min, floor, k);
                let (fleet_thr, fleet_base) = stats.fleet.threshold(min, floor, k);
                verdicts.push((
                    *node,
                    *at,
                    lag,
                    lag > node_thr && lag > fleet_thr,
                    node_thr,
                    fleet_thr,
                    node_base,
                    fleet_base,
                ));
            }
        }
        if judged {
            for (node, _, _) in sightings {
                let lag = verdicts
                    .iter()
                    .find(|v| v.0 == *node)
                    .map(|v| v.2)
                    .unwrap_or(0);
                stats.node(*node).push(lag);
                stats.fleet.push(lag);
            }
        }
        for (node, at, lag, anomalous, node_thr, fleet_thr, node_base, fleet_base) in verdicts {
            let name = self.nodes[usize::from(node)].clone();
            let fp = format!("propagation_lag:{kind}:{name}");
            if anomalous && !self.incidents.is_open(&fp) {
                let mut a = firing(
                    "propagation_lag",
                    Severity::Warning,
                    fp,
                    s.settled_at,
                    cause,
                );
                a.node = Some(name.clone());
                a.subject = Some(s.object.hash_text());
                a.summary = format!(
                    "{name} saw {kind} {} {} after the fleet median",
                    s.object.hash_text(),
                    fmt_secs(lag)
                );
                a.evidence = vec![
                    evidence("object", s.object.hash_text()),
                    evidence("kind", kind),
                    evidence(
                        "height",
                        s.height.map(|h| h.to_string()).unwrap_or_default(),
                    ),
                    evidence("lag", fmt_secs(lag)),
                    evidence("node_first_seen", fmt_time(at)),
                    evidence("fleet_median_seen", fmt_time(s.median_seen)),
                    evidence("fleet_first_seen", fmt_time(s.first_seen)),
                    evidence("first_node", &s.first_node),
                    evidence("node_threshold", fmt_secs(node_thr)),
                    evidence("fleet_threshold", fmt_secs(fleet_thr)),
                    evidence("node_baseline", baseline_text(node_base)),
                    evidence("fleet_baseline", baseline_text(fleet_base)),
                ];
                if let Some(a) = self.incidents.fire(a) {
                    out.push(Output::Alert(a));
                }
            } else if !anomalous {
                if let Some(a) = self.incidents.resolve(&fp, s.settled_at, cause) {
                    out.push(Output::Alert(a));
                }
            }
        }
    }

    fn judge_spread(&mut self, s: &PropagationSummary, cause: EventId, out: &mut Vec<Output>) {
        if s.nodes.len() < 2 {
            return;
        }
        let kind = s.object.kind();
        let stats = match s.object {
            PropagatedObject::Block(_) => &mut self.blocks,
            PropagatedObject::Tx(_) => &mut self.txs,
        };
        let (thr, base) = stats.spreads.threshold(
            self.config.min_samples,
            stats.spread_floor,
            self.config.mad_factor,
        );
        stats.spreads.push(s.spread_micros);
        let fp = format!("propagation_spread:{kind}");
        if s.spread_micros > thr {
            if self.incidents.is_open(&fp) {
                return;
            }
            let last = s.nodes.iter().max_by_key(|n| n.first_seen);
            let mut a = firing(
                "propagation_spread",
                Severity::Warning,
                fp,
                s.settled_at,
                cause,
            );
            a.subject = Some(s.object.hash_text());
            a.summary = format!(
                "{kind} {} took {} to reach {} nodes",
                s.object.hash_text(),
                fmt_secs(s.spread_micros),
                s.nodes.len()
            );
            a.evidence = vec![
                evidence("object", s.object.hash_text()),
                evidence("kind", kind),
                evidence(
                    "height",
                    s.height.map(|h| h.to_string()).unwrap_or_default(),
                ),
                evidence("spread", fmt_secs(s.spread_micros)),
                evidence("threshold", fmt_secs(thr)),
                evidence("baseline", baseline_text(base)),
                evidence("first_seen", fmt_time(s.first_seen)),
                evidence("first_node", &s.first_node),
                evidence(
                    "last_node",
                    last.map(|n| n.node.to_string()).unwrap_or_default(),
                ),
                evidence(
                    "last_seen",
                    last.map(|n| fmt_time(n.first_seen)).unwrap_or_default(),
                ),
                evidence("nodes_seen", s.nodes.len()),
            ];
            if let Some(a) = self.incidents.fire(a) {
                out.push(Output::Alert(a));
            }
        } else if let Some(a) = self.incidents.resolve(&fp, s.settled_at, cause) {
            out.push(Output::Alert(a));
        }
    }

    fn judge_missed(&mut self, s: &PropagationSummary, cause: EventId, out: &mut Vec<Output>) {
        for node in &s.missing {
            let fp = format!("block_missed:{node}");
            if self.incidents.is_open(&fp) {
                continue;
            }
            let mut a = firing("block_missed", Severity::Warning, fp, s.settled_at, cause);
            a.node = Some(node.clone());
            a.subject = Some(s.object.hash_text());
            a.summary = format!(
                "{node} never saw block {} that {} other nodes saw",
                s.object.hash_text(),
                s.nodes.len()
            );
            a.evidence = vec![
                evidence("hash", s.object.hash_text()),
                evidence(
                    "height",
                    s.height.map(|h| h.to_string()).unwrap_or_default(),
                ),
                evidence("first_seen", fmt_time(s.first_seen)),
                evidence("first_node", &s.first_node),
                evidence(
                    "seen_by",
                    crate::incident::join(s.nodes.iter().map(|n| &n.node)),
                ),
                evidence("waited", fmt_secs(s.settled_at.micros_since(s.first_seen))),
            ];
            if let Some(a) = self.incidents.fire(a) {
                out.push(Output::Alert(a));
            }
        }
        for n in &s.nodes {
            let fp = format!("block_missed:{}", n.node);
            if let Some(a) = self.incidents.resolve(&fp, s.settled_at, cause) {
                out.push(Output::Alert(a));
            }
        }
    }
}

fn baseline_text(b: Option<(i64, i64)>) -> String {
    match b {
        Some((med, mad)) => format!("median={} mad={}", fmt_secs(med), fmt_secs(mad)),
        None => "none yet".into(),
    }
}

impl Analysis for PropagationAnalysis {
    type Config = PropagationConfig;

    fn new(config: PropagationConfig) -> Self {
        PropagationAnalysis {
            settled: SeenSet::new(config.seen_capacity),
            nodes: Vec::new(),
            node_idx: HashMap::new(),
            last_event: Vec::new(),
            pending: HashMap::new(),
            queue: BTreeSet::new(),
            pending_txs: 0,
            blocks: KindStats::new(
                config.block_lag_floor_ms,
                config.block_spread_floor_ms,
                config.block_window,
            ),
            txs: KindStats::new(
                config.tx_lag_floor_ms,
                config.tx_spread_floor_ms,
                config.tx_window,
            ),
            incidents: Incidents::new(),
            at_height: BTreeMap::new(),
            config,
        }
    }

    fn seen_capacity(&self) -> usize {
        self.config.seen_capacity
    }

    fn name(&self) -> crate::DetectorName {
        crate::DetectorName::Propagation
    }

    fn inputs(&self) -> &'static [schema::Kind] {
        use schema::Kind;
        &[
            Kind::BlockSeen,
            Kind::BlockConnected,
            Kind::TxSeen,
            Kind::InvalidBlock,
            Kind::ChainTips,
            Kind::NodeStatus,
        ]
    }

    fn analyse(&mut self, input: Input<'_>, now: UnixMicros) -> Vec<Output> {
        let mut out = Vec::new();
        if let Input::Event(env) = input {
            if let Some(node) = self.node_index(&env.node, env.observed_at) {
                let at = env.observed_at;
                match &env.event {
                    Event::BlockSeen(b) => self.sighting(
                        PropagatedObject::Block(b.hash),
                        b.height,
                        node,
                        at,
                        stage_code(b.stage),
                    ),
                    Event::BlockConnected(b) => {
                        self.sighting(PropagatedObject::Block(b.hash), Some(b.height), node, at, 4)
                    }
                    // A resync (RPC) learns of transactions late by construction: not a
                    // sighting.
                    Event::TxSeen(t) if t.source != schema::event::Source::Rpc => {
                        self.sighting(PropagatedObject::Tx(t.txid), None, node, at, 5)
                    }
                    Event::InvalidBlock(i) => self.rejection(i.hash, node, at),
                    Event::ChainTips(t) => self.invalid_tips(t, node),
                    _ => {}
                }
            }
        }
        self.settle_due(now, input.cause(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, *};
    use schema::event::{AlertState::*, BlockSeen};
    use schema::Envelope;

    const NODES: [&str; 5] = ["n0", "n1", "n2", "n3", "n4"];

    fn cfg() -> PropagationConfig {
        PropagationConfig {
            min_samples: 5,
            ..PropagationConfig::default()
        }
    }

    fn given(events: &[Envelope]) -> Given<PropagationDetector> {
        testkit::given(PropagationDetector::new(cfg()), events)
    }

    /// Block `i` seen by each node `delays[k]` seconds after `i * 600` (None: never).
    fn block_round(i: u32, delays: &[Option<f64>]) -> Vec<Envelope> {
        let base = f64::from(i) * 600.0;
        let mut evs = Vec::new();
        for (node, d) in NODES.iter().zip(delays) {
            if let Some(d) = d {
                evs.push(seen(node, t(base + d), i, BlockStage::Header));
                evs.push(connected(node, t(base + d + 0.3), i));
            }
        }
        evs
    }

    /// Normal blocks `1..=n`, nodes 0.1..0.5 s apart, with a tick after each to settle it.
    fn normal_blocks(n: u32) -> Vec<Envelope> {
        let mut evs = Vec::new();
        for i in 1..=n {
            let jitter = f64::from(i % 3) * 0.05;
            evs.extend(block_round(
                i,
                &[
                    Some(0.1),
                    Some(0.2 + jitter),
                    Some(0.3),
                    Some(0.4),
                    Some(0.5 - jitter),
                ],
            ));
            // Other nodes' statuses keep the clock moving.
            evs.push(env(
                "n0",
                t(f64::from(i) * 600.0 + 300.0),
                status(i, t(0.0)),
            ));
        }
        evs
    }

    #[test]
    fn a_clean_run_of_many_normal_blocks_fires_nothing_and_summarises_each() {
        let evs = normal_blocks(200);
        let outs = run(&mut PropagationDetector::new(cfg()), &evs);
        let alerts: Vec<_> = outs.iter().filter_map(Output::as_alert).collect();
        assert!(alerts.is_empty(), "{alerts:#?}");
        let summaries = outs
            .iter()
            .filter(|o| matches!(o, Output::Propagation(_)))
            .count();
        assert_eq!(summaries, 200);
    }

    #[test]
    fn a_summary_has_first_seen_per_node_spread_and_lag_behind_the_median() {
        let then = given(&block_round(
            1,
            &[Some(0.0), Some(1.0), Some(2.0), Some(3.0), Some(10.0)],
        ))
        .when_tick(t(600.0 + 121.0));
        let Some(Output::Propagation(s)) = then.outputs.last() else {
            panic!("no summary: {:#?}", then.outputs);
        };
        assert_eq!(s.object, PropagatedObject::Block(bh(1)));
        assert_eq!(s.height, Some(Height(1)));
        assert_eq!(s.first_seen, t(600.0));
        assert_eq!(s.first_node.as_str(), "n0");
        assert_eq!(s.median_seen, t(602.0));
        assert_eq!(s.spread_micros, 10_000_000);
        assert_eq!(s.nodes[4].lag_micros, 8_000_000);
        assert_eq!(s.nodes[4].stage, "header");
        assert_eq!(s.settled_at, t(720.0));
    }

    #[test]
    fn a_node_lagging_beyond_its_baseline_and_the_fleet_s_fires_and_then_resolves() {
        let mut evs = normal_blocks(30);
        evs.extend(block_round(
            31,
            &[Some(0.1), Some(0.2), Some(0.3), Some(0.4), Some(40.0)],
        ));
        let then = given(&evs)
            .when_tick(t(31.0 * 600.0 + 200.0))
            .then_alerts(&[("propagation_lag", Firing), ("propagation_spread", Firing)]);
        let a = then.alert("propagation_lag");
        assert_eq!(a.node.as_ref().unwrap().as_str(), "n4");
        assert_eq!(ev_value(a, "lag"), "39.700s");
        assert_eq!(a.starts_at, t(31.0 * 600.0 + 120.1));
        then.and()
            .when_all(&block_round(
                32,
                &[Some(0.1), Some(0.2), Some(0.3), Some(0.4), Some(0.5)],
            ))
            .and()
            .when_tick(t(32.0 * 600.0 + 200.0))
            .then_alerts(&[
                ("propagation_lag", Resolved),
                ("propagation_spread", Resolved),
            ]);
    }

    #[test]
    fn a_node_that_is_always_a_bit_slow_is_judged_against_its_own_baseline() {
        // n4 is always 12 s behind (above the 10 s floor): that is its normal, no alert after
        // the baseline forms. The fleet baseline alone would flag it.
        let mut evs = Vec::new();
        for i in 1..=40 {
            evs.extend(block_round(
                i,
                &[Some(0.1), Some(0.2), Some(0.3), Some(0.4), Some(12.0)],
            ));
        }
        evs.push(env("n0", t(41.0 * 600.0), status(1, t(0.0))));
        let outs = run(
            &mut PropagationDetector::new(PropagationConfig {
                block_spread_floor_ms: 60_000,
                ..cfg()
            }),
            &evs,
        );
        let alerts: Vec<_> = outs
            .iter()
            .filter_map(Output::as_alert)
            .map(|a| (a.alert_kind.as_str(), a.state))
            .collect();
        // Before n4 has a baseline, the floor alone judges it; afterwards its baseline covers it.
        assert_eq!(
            alerts,
            [("propagation_lag", Firing), ("propagation_lag", Resolved)]
        );
    }

    #[test]
    fn a_node_that_never_sees_a_block_the_rest_saw_is_block_missed_until_it_sees_one() {
        let mut evs = normal_blocks(3);
        evs.extend(block_round(
            4,
            &[Some(0.1), Some(0.2), Some(0.3), Some(0.4), None],
        ));
        let then = given(&evs)
            .when_tick(t(4.0 * 600.0 + 121.0))
            .then_alerts(&[("block_missed", Firing)]);
        let a = then.alert("block_missed");
        assert_eq!(a.node.as_ref().unwrap().as_str(), "n4");
        assert_eq!(ev_value(a, "seen_by"), "n0,n1,n2,n3");
        then.and()
            .when_all(&block_round(
                5,
                &[Some(0.1), Some(0.2), Some(0.3), Some(0.4), Some(0.5)],
            ))
            .and()
            .when_tick(t(5.0 * 600.0 + 121.0))
            .then_alerts(&[("block_missed", Resolved)]);
    }

    /// `node` saw and connected block number `i` at `height` (a fork sibling when `i` differs
    /// from the height).
    fn fork_block(node: &str, at: UnixMicros, i: u32, height: u32) -> Vec<Envelope> {
        vec![
            env(
                node,
                at,
                BlockSeen {
                    hash: bh(i),
                    height: Some(Height(height)),
                    stage: BlockStage::Header,
                    peer: Some(1),
                    source: schema::event::Source::Log,
                },
            ),
            env(
                node,
                at.plus_micros(300_000),
                block(bh(i), height, bh(height - 1)),
            ),
        ]
    }

    #[test]
    fn a_node_that_rejected_the_block_as_invalid_did_not_miss_it() {
        let mut evs = normal_blocks(3);
        evs.extend(block_round(
            4,
            &[Some(0.1), Some(0.2), Some(0.3), None, None],
        ));
        // n3 says so in its log, n4 lists the block as an invalid tip.
        evs.push(invalid("n3", t(2400.5), 4, 4, "bad-cb-amount"));
        evs.push(tips(
            "n4",
            t(2401.0),
            &[(3, 3, 0, TipStatus::Active), (4, 4, 1, TipStatus::Invalid)],
        ));
        given(&evs)
            .when_tick(t(4.0 * 600.0 + 121.0))
            .then_no_alert();
    }

    #[test]
    fn a_node_on_the_other_side_of_a_fork_did_not_miss_the_other_side_s_block() {
        // Height 4: n0, n1, n2 saw block 4; n3 saw its competitor 204 instead; n4 saw nothing.
        let mut evs = normal_blocks(3);
        for (k, node) in ["n0", "n1", "n2"].iter().enumerate() {
            evs.extend(fork_block(node, t(2400.0 + 0.1 * k as f64), 4, 4));
        }
        evs.extend(fork_block("n3", t(2400.2), 204, 4));
        let then = given(&evs)
            .when_tick(t(4.0 * 600.0 + 121.0))
            .then_alerts(&[("block_missed", Firing)]);
        let a = then.alert("block_missed");
        assert_eq!(a.node.as_ref().unwrap().as_str(), "n4");
        let summary = then
            .outputs
            .iter()
            .find_map(|o| match o {
                Output::Propagation(s) if s.object == PropagatedObject::Block(bh(4)) => Some(s),
                _ => None,
            })
            .expect("summary of block 4");
        assert_eq!(summary.missing, [n("n4")]);
    }

    #[test]
    fn a_node_cut_off_while_the_fleet_mined_missed_the_next_height() {
        // n4 followed its own block 204 at height 4 (not missed), then saw nothing at height 5.
        let mut evs = normal_blocks(3);
        for (k, node) in ["n0", "n1", "n2", "n3"].iter().enumerate() {
            evs.extend(fork_block(node, t(2400.0 + 0.1 * k as f64), 4, 4));
            evs.extend(fork_block(node, t(3000.0 + 0.1 * k as f64), 5, 5));
        }
        evs.extend(fork_block("n4", t(2400.5), 204, 4));
        let then = given(&evs)
            .when_tick(t(5.0 * 600.0 + 121.0))
            .then_alerts(&[("block_missed", Firing)]);
        let a = then.alert("block_missed");
        assert_eq!(a.node.as_ref().unwrap().as_str(), "n4");
        assert_eq!(a.subject.as_deref(), Some(bh(5).to_string().as_str()));
    }

    #[test]
    fn a_late_sighting_of_a_settled_block_is_ignored() {
        let mut evs = normal_blocks(3);
        evs.extend(block_round(
            4,
            &[Some(0.1), Some(0.2), Some(0.3), Some(0.4), None],
        ));
        evs.push(env("n0", t(4.0 * 600.0 + 200.0), status(4, t(0.0))));
        given(&evs)
            .when(&seen("n4", t(4.0 * 600.0 + 300.0), 4, BlockStage::Header))
            .then_no_alert();
    }

    #[test]
    fn transactions_are_summarised_with_their_spread() {
        let then = given(&[
            tx_seen("n0", t(0.0), 1),
            tx_seen("n1", t(2.0), 1),
            tx_seen("n2", t(3.0), 1),
        ])
        .when_tick(t(61.0));
        let Some(Output::Propagation(s)) = then.outputs.last() else {
            panic!("no summary");
        };
        assert_eq!(s.object, PropagatedObject::Tx(txid(1)));
        assert_eq!(s.spread_micros, 3_000_000);
        assert_eq!(s.nodes[0].stage, "mempool");
        assert!(s.missing.is_empty());
    }

    #[test]
    fn duplicates_do_not_double_alert_and_replay_gives_the_same_ids() {
        let mut evs = normal_blocks(10);
        evs.extend(block_round(
            11,
            &[Some(0.1), Some(0.2), Some(0.3), Some(0.4), None],
        ));
        evs.extend(block_round(
            12,
            &[Some(0.1), Some(0.2), Some(0.3), Some(0.4), Some(40.0)],
        ));
        for i in 0..50 {
            evs.push(tx_seen(
                NODES[i as usize % 5],
                t(13.0 * 600.0 + f64::from(i)),
                i / 5,
            ));
        }
        evs.push(env("n0", t(14.0 * 600.0), status(1, t(0.0))));
        let outs = assert_replay_and_duplicates_agree(|| PropagationDetector::new(cfg()), &evs);
        let kinds: Vec<&str> = outs
            .iter()
            .filter_map(Output::as_alert)
            .map(|a| a.alert_kind.as_str())
            .collect();
        assert!(kinds.contains(&"block_missed"), "{kinds:?}");
        assert!(kinds.contains(&"propagation_lag"), "{kinds:?}");
    }

    #[test]
    fn median_of_even_counts_is_the_midpoint() {
        assert_eq!(median(&mut [4, 1, 3, 2]), 2);
        assert_eq!(median(&mut [1, 5]), 3);
        assert_eq!(median(&mut [7]), 7);
    }
}
