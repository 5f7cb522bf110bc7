//! The fleet comparison: where nodes *differ*.
//!
//! - **Mempools.** Every node's mempool is folded from `tx_seen` / `tx_removed` (the agents'
//!   exact mirrors, resyncs included). Each round (`round_secs` of event time) the detector
//!   takes the transactions older than `settle_secs` (younger ones may simply not have been
//!   relayed yet) and calls *fleet transactions* those held by a strict majority of the
//!   compared nodes whose policy admits them (a blocks-only node, or one whose minimum fee is
//!   above the transaction's known fee rate, does not count against it; a node holding it
//!   admitted it and counts, whatever its minimum since). Compared nodes:
//!   those with a `node_status` in the last `node_silence_secs`, not in initial block
//!   download. For each node it reports the fleet transactions it misses and the
//!   transactions only it (or a minority) holds, and gives each missing one a reason:
//!   - `confirmed` — the node has it in a block it connected and the rest has not (a
//!     private branch, a partition): the chain detectors judge that, not this one;
//!   - `rejected` — the node rejected it (`tx_rejected`, with Core's reason);
//!   - `blocks_only` — the node relays no transactions (`-blocksonly`);
//!   - `min_fee` — its fee rate is below the node's own minimum (`-minrelaytxfee`, or the
//!     mempool minimum of a full mempool, at its highest of the last `min_fee_memory_secs`:
//!     what arrived while it was high stays out after it decays); Core's peers do not even
//!     announce it (feefilter);
//!   - `removed` — the node had it and dropped it (eviction, expiry, conflict);
//!   - `missing_parent` — an unconfirmed parent is missing on the node for one of these
//!     reasons: the child is an orphan there, which Core neither accepts nor logs;
//!   - `before_start` — it went round before the node (re)started (`uptime`): Core does not
//!     ask its peers for their mempools;
//!   - `fee_unknown` — the node's minimum is above the fleet's lowest and the fee is not
//!     known, so policy cannot be ruled out;
//!   - `unexplained` — none of the above: a relay or mempool problem.
//!
//!   One [`MempoolDivergence`] per node and round goes to ClickHouse (`mempool_divergence`); a
//!   `mempool_divergence` alert fires when a node misses at least `divergence_min_txs`
//!   unexplained fleet transactions for `divergence_rounds` rounds in a row, and resolves at
//!   the first round below.
//! - **Validation time by version.** Each `block_timing` is credited to the version the node
//!   ran *when it connected the block* (its latest `node_status` before), giving one
//!   [`BlockValidation`] row (ClickHouse `block_validation`). A `slow_validation` alert fires
//!   when one version's median connect time over the last `validation_window` blocks is at
//!   least `validation_slow_factor` times the median of the other versions (and at least
//!   `validation_floor_ms`), for `validation_min_blocks` of its blocks. Blocks timed before a
//!   node's first status are credited to `unknown` and never compared.
//!
//! - **Block templates.** Each node's latest `template_snapshot` (at most
//!   `template_max_age_secs` old) on the fleet's most common parent, once at least
//!   `template_min_nodes` are there: the Jaccard similarity of its transactions with the
//!   fleet's set (what a majority of templates include), its fees and weight beside the
//!   median, and the fleet's transactions it leaves out, highest fee first, with why
//!   (`young` when it went round less than `settle_secs` before the template was built,
//!   `not_selected` when the node holds it, else the mempool reason). One
//!   [`TemplateComparison`] per node and round (ClickHouse `template_comparison`); a
//!   `template_fees_low` alert when a template pays `template_fee_shortfall` less than the
//!   median (itself at least `template_min_fees_sat`) for `template_rounds` rounds in a row,
//!   counting as paid the fees of what its own policy keeps out (that is its policy's price)
//!   and of what was too young to have reached it.
//!
//! Fleets of up to [`MAX_NODES`] nodes are compared; later nodes are ignored
//! ([`CompareAnalysis::ignored_nodes`] names them).

use std::collections::{BTreeMap, HashMap, VecDeque};

use bitcoin::Txid;
use schema::event::{RemovalReason, Severity};
use schema::{Envelope, Event, EventId, Height, Kind, NodeId, UnixMicros};
use serde::{Deserialize, Serialize};

use crate::guard::{Analysis, Guarded};
use crate::incident::{evidence, firing, join, Incidents};
use crate::{consumer_name, Input, Output};

/// How far up a chain of unconfirmed parents a missing transaction's reason is looked for.
const MAX_PARENT_DEPTH: usize = 32;

/// The version a block timed before its node's first `node_status` is credited to.
pub const UNKNOWN_VERSION: &str = "unknown";

/// Most nodes compared (the holder set of a transaction is a 128-bit set).
pub const MAX_NODES: usize = 128;

/// The comparison's thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompareConfig {
    /// Event ids remembered to drop duplicates.
    pub seen_capacity: usize,
    /// One mempool comparison round per this many seconds of event time.
    pub round_secs: u64,
    /// Transactions younger than this (first seen in the fleet) are not compared yet: they
    /// may still be on their way, seconds.
    pub settle_secs: u64,
    /// A node without `node_status` for this long is left out of the comparison, seconds.
    pub node_silence_secs: u64,
    /// Transactions listed per row (missing and only-here each); counts are always complete.
    pub max_listed: usize,
    /// How long a node's highest minimum fee explains its absences, seconds (Core expires
    /// mempool transactions after two weeks).
    pub min_fee_memory_secs: u64,
    /// Unexplained missing fleet transactions that count as divergence.
    pub divergence_min_txs: u64,
    /// Rounds in a row of divergence before the alert fires.
    pub divergence_rounds: u32,
    /// Blocks per version kept for the validation medians.
    pub validation_window: usize,
    /// A version's median connect time this many times the others' median is slow.
    pub validation_slow_factor: f64,
    /// Blocks of the version (within the window) needed before it is judged.
    pub validation_min_blocks: usize,
    /// A version whose median connect time is below this is never slow, whatever the ratio
    /// (sub-millisecond differences are noise), ms.
    pub validation_floor_ms: f64,
    /// Templates older than this are left out of the comparison, seconds.
    pub template_max_age_secs: u64,
    /// Templates (on the same parent) needed for a comparison.
    pub template_min_nodes: usize,
    /// A template paying this fraction less than the fleet's median is low.
    pub template_fee_shortfall: f64,
    /// ...when the fleet's median pays at least this, satoshis (empty mempools are no signal).
    pub template_min_fees_sat: u64,
    /// Rounds in a row of low fees before `template_fees_low` fires.
    pub template_rounds: u32,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            seen_capacity: 200_000,
            round_secs: 60,
            settle_secs: 60,
            node_silence_secs: 120,
            max_listed: 100,
            min_fee_memory_secs: 14 * 86_400,
            divergence_min_txs: 5,
            divergence_rounds: 2,
            validation_window: 50,
            validation_slow_factor: 2.0,
            validation_min_blocks: 3,
            validation_floor_ms: 20.0,
            template_max_age_secs: 120,
            template_min_nodes: 3,
            template_fee_shortfall: 0.1,
            template_min_fees_sat: 10_000,
            template_rounds: 3,
        }
    }
}

/// Why a node misses a fleet transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingReason {
    /// The node confirmed it in a block of its own chain that the rest has not connected
    /// (a private branch, a partition, a block still on its way).
    Confirmed,
    /// The node rejected it.
    Rejected,
    /// The node relays no transactions.
    BlocksOnly,
    /// Below the node's minimum fee rate.
    MinFee,
    /// A parent of it is missing on the node for one of these reasons (an orphan there).
    MissingParent,
    /// It went round before the node (re)started: Core does not ask its peers for their
    /// mempools, so what was announced while it was down never reaches it.
    BeforeStart,
    /// The node had it and dropped it.
    Removed,
    /// The node holds another transaction spending one of its coins (a double spend it saw
    /// first, or one its replacement rules keep).
    Conflict,
    /// The node's minimum is above the fleet's lowest and the fee is not known.
    FeeUnknown,
    /// No policy explains it.
    Unexplained,
}

impl MissingReason {
    /// The name used in ClickHouse and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            MissingReason::Confirmed => "confirmed",
            MissingReason::Rejected => "rejected",
            MissingReason::BlocksOnly => "blocks_only",
            MissingReason::MinFee => "min_fee",
            MissingReason::MissingParent => "missing_parent",
            MissingReason::BeforeStart => "before_start",
            MissingReason::Removed => "removed",
            MissingReason::Conflict => "conflict",
            MissingReason::FeeUnknown => "fee_unknown",
            MissingReason::Unexplained => "unexplained",
        }
    }

    /// Whether the node's own policy (or its own choice) explains the absence.
    pub fn is_policy(self) -> bool {
        !matches!(self, MissingReason::Unexplained)
    }
}

/// One node's mempool against the fleet's in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MempoolDivergence {
    /// The round's time (event time).
    pub at: UnixMicros,
    /// The node.
    pub node: NodeId,
    /// Nodes compared this round.
    pub fleet_nodes: u32,
    /// Settled transactions held by a majority of them.
    pub fleet_txs: u64,
    /// Settled transactions this node holds.
    pub held: u64,
    /// Transactions younger than the settle time this node holds (not compared).
    pub young: u64,
    /// Fleet transactions this node misses, by reason.
    pub missing_by_reason: BTreeMap<MissingReason, u64>,
    /// Up to `max_listed` of them, with their reason (and Core's reject reason, if any).
    pub missing: Vec<(Txid, MissingReason, String)>,
    /// Settled transactions this node holds that the majority does not.
    pub only_here_count: u64,
    /// Up to `max_listed` of them.
    pub only_here: Vec<Txid>,
}

impl MempoolDivergence {
    /// All missing fleet transactions.
    pub fn missing_count(&self) -> u64 {
        self.missing_by_reason.values().sum()
    }

    /// Missing fleet transactions no policy explains.
    pub fn unexplained(&self) -> u64 {
        self.missing_by_reason
            .get(&MissingReason::Unexplained)
            .copied()
            .unwrap_or(0)
    }

    /// The row's deterministic id (detector, node, round).
    pub fn id(&self) -> EventId {
        EventId::derive(
            &consumer_name(crate::DetectorName::Compare),
            "mempool_divergence",
            &[self.node.as_str().as_bytes(), &self.at.0.to_le_bytes()],
        )
    }
}

/// One block's validation, credited to the version the node ran when it connected it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockValidation {
    /// When the node connected it (the `block_timing` event's time).
    pub at: UnixMicros,
    /// The node.
    pub node: NodeId,
    /// The node's version then (`/Satoshi:30.0.0/`), or `unknown` before any `node_status`.
    pub version: String,
    /// Block hash (hex), when logged.
    pub hash: Option<String>,
    /// Height, when logged.
    pub height: Option<Height>,
    /// `Connect total`, ms.
    pub connect_ms: f64,
    /// Every stage as logged: (name, ms).
    pub stages: Vec<(String, f64)>,
    /// The `block_timing` event it came from.
    pub source_event: EventId,
}

impl BlockValidation {
    /// The row's deterministic id: that of its source event, seen by this detector.
    pub fn id(&self) -> EventId {
        EventId::derive(
            &consumer_name(crate::DetectorName::Compare),
            "block_validation",
            &[&self.source_event.0],
        )
    }
}

/// A transaction as the fleet holds it.
#[derive(Debug, Clone)]
struct TxEntry {
    first_seen: UnixMicros,
    /// Satoshis per 1000 vbytes, when a node told the fee.
    fee_rate: Option<u64>,
    holders: u128,
    /// Nodes that had it and dropped it (not for a block).
    removed: u128,
    /// Nodes that confirmed it in a block they connected (the rest may not have that block).
    confirmed: u128,
    /// Nodes that rejected it, with Core's reason.
    rejected: Vec<(u8, String)>,
    /// Its unconfirmed parents, as a node that holds it reported them.
    parents: Vec<Txid>,
    /// The coins it spends, as [`coin_key`]s.
    spends: Vec<u64>,
    /// Last change, for forgetting entries nobody holds.
    touched: UnixMicros,
}

impl TxEntry {
    fn new(at: UnixMicros) -> TxEntry {
        TxEntry {
            first_seen: at,
            fee_rate: None,
            holders: 0,
            removed: 0,
            confirmed: 0,
            rejected: Vec::new(),
            parents: Vec::new(),
            spends: Vec::new(),
            touched: at,
        }
    }
}

/// What the detector knows of one node.
#[derive(Debug, Clone, Default)]
struct NodeState {
    name: Option<NodeId>,
    last_status: Option<UnixMicros>,
    version: Option<String>,
    /// The highest of `-minrelaytxfee` and the mempool minimum over the last
    /// `min_fee_memory_secs`, sat/kvB: a transaction that arrived while a full mempool's
    /// minimum was high stays out after the minimum decays (Core does not fetch it again).
    min_fee: Option<u64>,
    /// (time, minimum) samples, decreasing, for the peak above.
    min_fee_peaks: VecDeque<(UnixMicros, u64)>,
    blocks_only: bool,
    /// In initial block download: its mempool is not the fleet's business yet.
    in_ibd: bool,
    /// When the node last started (`observed_at - uptime`).
    started_at: Option<UnixMicros>,
    /// The latest event time of the node's own events: what it said is complete up to here.
    horizon: UnixMicros,
    divergent_rounds: u32,
    low_template_rounds: u32,
}

/// Per-version recent connect times.
#[derive(Debug, Clone, Default)]
struct VersionTimes {
    recent: VecDeque<f64>,
    slow_blocks: usize,
}

/// The comparison detector (`det-compare`): the comparison with its duplicate filter and event
/// clock.
pub type CompareDetector = Guarded<CompareAnalysis>;

/// The fleet comparison (see the module docs).
#[derive(Debug)]
pub struct CompareAnalysis {
    config: CompareConfig,
    index: HashMap<NodeId, u8>,
    nodes: Vec<NodeState>,
    ignored: Vec<NodeId>,
    txs: HashMap<Txid, TxEntry>,
    /// Coin key → the tracked transactions spending it (two or more: a conflict).
    spenders: HashMap<u64, Vec<Txid>>,
    next_round: Option<UnixMicros>,
    incidents: Incidents,
    versions: BTreeMap<String, VersionTimes>,
    templates: BTreeMap<u8, NodeTemplate>,
}

/// One node's template against the fleet's, in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateComparison {
    /// The round's time.
    pub at: UnixMicros,
    /// The node.
    pub node: NodeId,
    /// The parent every compared template builds on.
    pub prev: bitcoin::BlockHash,
    /// The height they are for.
    pub height: Height,
    /// Templates compared.
    pub fleet_templates: u32,
    /// |this ∩ fleet| / |this ∪ fleet|, where the fleet's set is what a majority of the
    /// templates include.
    pub jaccard: f64,
    /// This template's fees, satoshis.
    pub fees_sat: u64,
    /// The median template's fees.
    pub fleet_median_fees_sat: u64,
    /// This template's weight.
    pub weight: u64,
    /// The median template's weight.
    pub fleet_median_weight: u64,
    /// Transactions of the fleet's set this template leaves out.
    pub left_out_count: u64,
    /// The fees of those the node's own policy keeps out of its mempool (rejected,
    /// blocks-only, below its minimum fee, dropped by it, a conflict it holds) or that were
    /// too young to have reached it: a shortfall they explain is not a fault.
    pub explained_fees_sat: u64,
    /// The highest-fee of them (up to `max_listed`): txid, fee, why (`young` when it went
    /// round less than the settle time before the template, `not_selected` when the node
    /// holds it, else the mempool comparison's reason, or `not_in_mempool`).
    pub left_out: Vec<(Txid, u64, String)>,
}

impl TemplateComparison {
    /// The row's deterministic id (detector, node, round).
    pub fn id(&self) -> EventId {
        EventId::derive(
            &consumer_name(crate::DetectorName::Compare),
            "template_comparison",
            &[self.node.as_str().as_bytes(), &self.at.0.to_le_bytes()],
        )
    }
}

/// A node's latest template.
#[derive(Debug, Clone)]
struct NodeTemplate {
    at: UnixMicros,
    prev: bitcoin::BlockHash,
    height: Height,
    fees_sat: u64,
    weight: u64,
    /// txid → fee, satoshis.
    txs: HashMap<Txid, u64>,
}

/// What a node's `tx_seen` carried that the comparison keeps.
struct Sighting<'a> {
    fee_rate: Option<u64>,
    parents: &'a [Txid],
    spends: &'a [bitcoin::OutPoint],
}

/// A coin (outpoint) as a 64-bit key: txids are uniformly random, so their first 8 bytes mixed
/// with the output index tell coins apart as well as the whole outpoint, at an eighth of the
/// memory.
fn coin_key(o: &bitcoin::OutPoint) -> u64 {
    use bitcoin::hashes::Hash;
    let b = o.txid.as_byte_array();
    let head = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    head ^ u64::from(o.vout).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl CompareAnalysis {
    /// Nodes beyond [`MAX_NODES`], not compared.
    pub fn ignored_nodes(&self) -> &[NodeId] {
        &self.ignored
    }

    /// Transactions currently tracked.
    pub fn tracked_txs(&self) -> usize {
        self.txs.len()
    }

    fn node(&mut self, node: &NodeId) -> Option<u8> {
        if let Some(i) = self.index.get(node) {
            return Some(*i);
        }
        if self.nodes.len() >= MAX_NODES {
            if !self.ignored.contains(node) {
                self.ignored.push(node.clone());
            }
            return None;
        }
        let i = self.nodes.len() as u8;
        self.index.insert(node.clone(), i);
        self.nodes.push(NodeState {
            name: Some(node.clone()),
            ..NodeState::default()
        });
        Some(i)
    }

    fn tx_seen(&mut self, node: u8, txid: Txid, at: UnixMicros, s: Sighting) {
        let e = self.txs.entry(txid).or_insert_with(|| TxEntry::new(at));
        if at < e.first_seen {
            e.first_seen = at;
        }
        e.holders |= 1u128 << node;
        e.removed &= !(1u128 << node);
        // Back in the mempool: a reorg disconnected the block that had it.
        e.confirmed &= !(1u128 << node);
        e.touched = e.touched.max(at);
        if e.fee_rate.is_none() {
            e.fee_rate = s.fee_rate;
        }
        if e.parents.is_empty() && !s.parents.is_empty() {
            e.parents = s.parents.to_vec();
        }
        if e.spends.is_empty() && !s.spends.is_empty() {
            e.spends = s.spends.iter().map(coin_key).collect();
            for k in &e.spends {
                let spenders = self.spenders.entry(*k).or_default();
                if !spenders.contains(&txid) {
                    spenders.push(txid);
                }
            }
        }
    }

    fn tx_removed(&mut self, node: u8, txid: Txid, reason: RemovalReason, at: UnixMicros) {
        let Some(e) = self.txs.get_mut(&txid) else {
            return;
        };
        let bit = 1u128 << node;
        if reason == RemovalReason::Block {
            e.confirmed |= bit;
        } else if e.holders & bit != 0 {
            e.removed |= bit;
        }
        e.holders &= !bit;
        e.touched = e.touched.max(at);
    }

    fn tx_rejected(&mut self, node: u8, txid: Txid, reason: &str, at: UnixMicros) {
        let e = self.txs.entry(txid).or_insert_with(|| TxEntry::new(at));
        e.touched = e.touched.max(at);
        if !e.rejected.iter().any(|(n, _)| *n == node) {
            e.rejected.push((node, reason.to_string()));
        }
    }

    /// The comparison of every active node's mempool at `at`.
    pub fn round(&mut self, at: UnixMicros) -> Vec<MempoolDivergence> {
        let silence = (self.config.node_silence_secs as i64).saturating_mul(1_000_000);
        let active: Vec<u8> = (0..self.nodes.len() as u8)
            .filter(|i| {
                let n = &self.nodes[*i as usize];
                !n.in_ibd && n.last_status.is_some_and(|t| at.0 - t.0 <= silence)
            })
            .collect();
        let active_mask: u128 = active.iter().fold(0, |m, i| m | (1u128 << i));
        let fleet_min_fee = active
            .iter()
            .filter_map(|i| self.nodes[*i as usize].min_fee)
            .min();
        let settle = (self.config.settle_secs as i64).saturating_mul(1_000_000);
        let settle_before = at.0 - settle;
        let n = active.len() as u32;
        let mut rows: Vec<MempoolDivergence> = active
            .iter()
            .map(|i| MempoolDivergence {
                at,
                node: self.nodes[*i as usize].name.clone().unwrap_or_else(unknown),
                fleet_nodes: n,
                fleet_txs: 0,
                held: 0,
                young: 0,
                missing_by_reason: BTreeMap::new(),
                missing: Vec::new(),
                only_here_count: 0,
                only_here: Vec::new(),
            })
            .collect();
        let slot: HashMap<u8, usize> = active.iter().enumerate().map(|(k, i)| (*i, k)).collect();
        let max_listed = self.config.max_listed;
        for (txid, e) in &self.txs {
            let holders = e.holders & active_mask;
            if e.first_seen.0 > settle_before {
                let mut h = holders;
                while h != 0 {
                    let i = h.trailing_zeros() as u8;
                    rows[slot[&i]].young += 1;
                    h &= h - 1;
                }
                continue;
            }
            if holders == 0 {
                continue;
            }
            // The majority is taken among the nodes whose policy admits the transaction: a
            // fleet with a strict node still has a mempool the others agree on. A node that
            // holds it admitted it, whatever its minimum fee has become since.
            let eligible = (active_mask & !self.barred(e, &active)) | holders;
            let count = (holders & eligible).count_ones();
            let fleet = count * 2 > eligible.count_ones();
            if fleet {
                for (k, i) in active.iter().enumerate() {
                    let row = &mut rows[k];
                    row.fleet_txs += 1;
                    if holders & (1u128 << i) != 0 {
                        row.held += 1;
                        continue;
                    }
                    // The node's own events may lag the fleet's (a busy agent, a slow link to
                    // NATS): it is judged only on what its events have covered, the settle
                    // time after the transaction went round.
                    if self.nodes[*i as usize].horizon.0 < e.first_seen.0 + settle {
                        row.young += 1;
                        continue;
                    }
                    let (reason, text) = self.reason(*i, e, fleet_min_fee);
                    *row.missing_by_reason.entry(reason).or_insert(0) += 1;
                    if row.missing.len() < max_listed {
                        row.missing.push((*txid, reason, text));
                    }
                }
            } else {
                let mut h = holders;
                while h != 0 {
                    let i = h.trailing_zeros() as u8;
                    let row = &mut rows[slot[&i]];
                    row.held += 1;
                    row.only_here_count += 1;
                    if row.only_here.len() < max_listed {
                        row.only_here.push(*txid);
                    }
                    h &= h - 1;
                }
            }
        }
        for row in &mut rows {
            row.missing.sort();
            row.only_here.sort();
        }
        // Forget what nobody holds any more (mined, or dropped everywhere) once it is older
        // than the settle time: nothing can be missing it.
        let forget: Vec<Txid> = self
            .txs
            .iter()
            .filter(|(_, e)| e.holders == 0 && e.touched.0 <= settle_before)
            .map(|(t, _)| *t)
            .collect();
        for txid in forget {
            let Some(e) = self.txs.remove(&txid) else {
                continue;
            };
            for k in e.spends {
                if let Some(spenders) = self.spenders.get_mut(&k) {
                    spenders.retain(|t| *t != txid);
                    if spenders.is_empty() {
                        self.spenders.remove(&k);
                    }
                }
            }
        }
        rows
    }

    /// Nodes among `active` whose own policy keeps `e` out (blocks-only, or a minimum fee
    /// above its known fee rate).
    fn barred(&self, e: &TxEntry, active: &[u8]) -> u128 {
        active
            .iter()
            .filter(|i| {
                let s = &self.nodes[**i as usize];
                s.blocks_only
                    || matches!((e.fee_rate, s.min_fee), (Some(rate), Some(min)) if rate < min)
            })
            .fold(0, |m, i| m | (1u128 << i))
    }

    fn reason(&self, node: u8, e: &TxEntry, fleet_min_fee: Option<u64>) -> (MissingReason, String) {
        self.reason_at_depth(node, e, fleet_min_fee, 0)
    }

    fn reason_at_depth(
        &self,
        node: u8,
        e: &TxEntry,
        fleet_min_fee: Option<u64>,
        depth: usize,
    ) -> (MissingReason, String) {
        if e.confirmed & (1u128 << node) != 0 {
            return (MissingReason::Confirmed, String::new());
        }
        if let Some((_, why)) = e.rejected.iter().find(|(n, _)| *n == node) {
            return (MissingReason::Rejected, why.clone());
        }
        let state = &self.nodes[node as usize];
        if state.blocks_only {
            return (MissingReason::BlocksOnly, String::new());
        }
        if e.removed & (1u128 << node) != 0 {
            return (MissingReason::Removed, String::new());
        }
        if let (Some(rate), Some(min)) = (e.fee_rate, state.min_fee) {
            if rate < min {
                return (MissingReason::MinFee, String::new());
            }
        }
        if state.started_at.is_some_and(|s| e.first_seen < s) {
            return (MissingReason::BeforeStart, String::new());
        }
        // Another transaction spending one of its coins is in the node's mempool (the node
        // does not hold this one, so any spender it holds is another).
        let bit = 1u128 << node;
        for k in &e.spends {
            let held = self.spenders.get(k).and_then(|spenders| {
                spenders
                    .iter()
                    .find(|x| self.txs.get(*x).is_some_and(|o| o.holders & bit != 0))
            });
            if let Some(other) = held {
                return (MissingReason::Conflict, other.to_string());
            }
        }
        // A child of a transaction the node keeps out is an orphan there: Core neither
        // accepts nor logs it. Its parent's reason explains it (ancestor chains are short:
        // Core's limits stop them at a few dozen).
        if depth < MAX_PARENT_DEPTH {
            for p in &e.parents {
                let Some(parent) = self.txs.get(p) else {
                    continue;
                };
                if parent.holders & bit != 0 {
                    continue;
                }
                let (why, _) = self.reason_at_depth(node, parent, fleet_min_fee, depth + 1);
                if why.is_policy() {
                    return (MissingReason::MissingParent, p.to_string());
                }
            }
        }
        match (e.fee_rate, state.min_fee) {
            (None, Some(min)) if fleet_min_fee.is_some_and(|f| min > f) => {
                (MissingReason::FeeUnknown, String::new())
            }
            _ => (MissingReason::Unexplained, String::new()),
        }
    }

    /// Judges a round's rows: fires or resolves `mempool_divergence`.
    fn judge(&mut self, rows: &[MempoolDivergence], cause: EventId, out: &mut Vec<Output>) {
        for row in rows {
            let Some(i) = self.index.get(&row.node).copied() else {
                continue;
            };
            let fingerprint = format!("mempool_divergence:{}", row.node);
            let diverges = row.unexplained() >= self.config.divergence_min_txs;
            let open = self.incidents.is_open(&fingerprint);
            let state = &mut self.nodes[i as usize];
            let rounds = &mut state.divergent_rounds;
            match streak(rounds, diverges, self.config.divergence_rounds, open) {
                Streak::Ended => {
                    if let Some(a) = self.incidents.resolve(&fingerprint, row.at, cause) {
                        out.push(Output::Alert(a));
                    }
                    continue;
                }
                Streak::Holding => continue,
                Streak::Due => {}
            }
            let mut alert = firing(
                "mempool_divergence",
                Severity::Warning,
                fingerprint,
                row.at,
                cause,
            );
            alert.node = Some(row.node.clone());
            alert.summary = format!(
                "{} misses {} of the fleet's {} settled mempool transactions that no policy of \
                 its own explains, for {} rounds",
                row.node,
                row.unexplained(),
                row.fleet_txs,
                state.divergent_rounds
            );
            let examples: Vec<String> = row
                .missing
                .iter()
                .filter(|(_, r, _)| *r == MissingReason::Unexplained)
                .take(10)
                .map(|(t, _, _)| t.to_string())
                .collect();
            alert.evidence = vec![
                evidence("unexplained", row.unexplained()),
                evidence("missing", row.missing_count()),
                evidence("fleet_txs", row.fleet_txs),
                evidence("fleet_nodes", row.fleet_nodes),
                evidence("held", row.held),
                evidence(
                    "missing_by_reason",
                    join(
                        row.missing_by_reason
                            .iter()
                            .map(|(r, c)| format!("{}={c}", r.as_str())),
                    ),
                ),
                evidence("examples", join(examples)),
            ];
            if let Some(a) = self.incidents.fire(alert) {
                out.push(Output::Alert(a));
            }
        }
    }

    fn block_timing(
        &mut self,
        env: &Envelope,
        node: u8,
        t: &schema::event::BlockTiming,
        out: &mut Vec<Output>,
    ) {
        let Some(connect_ms) = t.connect_total_ms else {
            return;
        };
        let state = &self.nodes[node as usize];
        let version = state
            .version
            .clone()
            .unwrap_or_else(|| UNKNOWN_VERSION.to_string());
        let row = BlockValidation {
            at: env.observed_at,
            node: env.node.clone(),
            version: version.clone(),
            hash: t.hash.map(|h| h.to_string()),
            height: t.height,
            connect_ms,
            stages: t.stages.iter().map(|s| (s.name.clone(), s.ms)).collect(),
            source_event: env.id,
        };
        out.push(Output::Validation(row));
        let window = self.config.validation_window.max(1);
        let times = self.versions.entry(version.clone()).or_default();
        times.recent.push_back(connect_ms);
        while times.recent.len() > window {
            times.recent.pop_front();
        }
        self.judge_version(&version, env.observed_at, env.id, out);
    }

    fn judge_version(
        &mut self,
        version: &str,
        at: UnixMicros,
        cause: EventId,
        out: &mut Vec<Output>,
    ) {
        // Blocks timed before the node's first status have no version to compare.
        if version == UNKNOWN_VERSION {
            return;
        }
        let others: Vec<f64> = self
            .versions
            .iter()
            .filter(|(v, _)| v.as_str() != version && v.as_str() != UNKNOWN_VERSION)
            .flat_map(|(_, t)| t.recent.iter().copied())
            .collect();
        let Some(times) = self.versions.get_mut(version) else {
            return;
        };
        let (Some(own), Some(fleet)) = (median(times.recent.iter().copied()), median(others))
        else {
            return;
        };
        let fingerprint = format!("slow_validation:{version}");
        let slow = fleet > 0.0
            && own >= self.config.validation_floor_ms
            && own >= self.config.validation_slow_factor * fleet;
        if !slow {
            times.slow_blocks = 0;
            if let Some(a) = self.incidents.resolve(&fingerprint, at, cause) {
                out.push(Output::Alert(a));
            }
            return;
        }
        times.slow_blocks += 1;
        if times.slow_blocks < self.config.validation_min_blocks
            || self.incidents.is_open(&fingerprint)
        {
            return;
        }
        let mut alert = firing("slow_validation", Severity::Warning, fingerprint, at, cause);
        alert.subject = Some(version.to_string());
        alert.summary = format!(
            "{version} validates blocks in {own:.1} ms (median), {:.1}x the rest of the \
             fleet's {fleet:.1} ms",
            own / fleet
        );
        alert.evidence = vec![
            evidence("version", version),
            evidence("median_connect_ms", format!("{own:.1}")),
            evidence("fleet_median_connect_ms", format!("{fleet:.1}")),
            evidence("blocks", times.recent.len()),
        ];
        if let Some(a) = self.incidents.fire(alert) {
            out.push(Output::Alert(a));
        }
    }

    fn rounds_due(&mut self, now: UnixMicros, cause: EventId, out: &mut Vec<Output>) {
        let step = (self.config.round_secs.max(1) as i64).saturating_mul(1_000_000);
        let next = *self
            .next_round
            .get_or_insert(UnixMicros((now.0 / step + 1) * step));
        if now < next {
            return;
        }
        // One round at the latest boundary passed: after a long quiet period, earlier
        // boundaries would only repeat the same picture.
        let at = UnixMicros(now.0 / step * step);
        self.next_round = Some(UnixMicros(at.0 + step));
        let rows = self.round(at);
        self.judge(&rows, cause, out);
        out.extend(rows.into_iter().map(Output::Divergence));
        let templates = self.template_round(at);
        self.judge_templates(&templates, cause, out);
        out.extend(templates.into_iter().map(Output::Template));
    }

    /// Every fresh template on the fleet's most common parent against the others.
    pub fn template_round(&mut self, at: UnixMicros) -> Vec<TemplateComparison> {
        let max_age = (self.config.template_max_age_secs as i64).saturating_mul(1_000_000);
        let fresh: Vec<(u8, &NodeTemplate)> = self
            .templates
            .iter()
            .filter(|(_, t)| at.0 - t.at.0 <= max_age)
            .map(|(i, t)| (*i, t))
            .collect();
        let mut parents: BTreeMap<bitcoin::BlockHash, usize> = BTreeMap::new();
        for (_, t) in &fresh {
            *parents.entry(t.prev).or_insert(0) += 1;
        }
        let Some((prev, _)) = parents
            .iter()
            .max_by_key(|(p, n)| (**n, std::cmp::Reverse(**p)))
        else {
            return Vec::new();
        };
        let prev = *prev;
        let same: Vec<(u8, &NodeTemplate)> =
            fresh.into_iter().filter(|(_, t)| t.prev == prev).collect();
        if same.len() < self.config.template_min_nodes.max(1) {
            return Vec::new();
        }
        let n = same.len();
        let mut included: HashMap<Txid, (usize, u64)> = HashMap::new();
        for (_, t) in &same {
            for (txid, fee) in &t.txs {
                let e = included.entry(*txid).or_insert((0, *fee));
                e.0 += 1;
            }
        }
        let fleet: HashMap<Txid, u64> = included
            .into_iter()
            .filter(|(_, (k, _))| k * 2 > n)
            .map(|(t, (_, fee))| (t, fee))
            .collect();
        let median_fees = median_u64(same.iter().map(|(_, t)| t.fees_sat));
        let median_weight = median_u64(same.iter().map(|(_, t)| t.weight));
        let fleet_min_fee = self.nodes.iter().filter_map(|s| s.min_fee).min();
        let settle = (self.config.settle_secs as i64).saturating_mul(1_000_000);
        let mut rows = Vec::new();
        for (i, t) in &same {
            let common = t.txs.keys().filter(|x| fleet.contains_key(*x)).count();
            let union = t.txs.len() + fleet.len() - common;
            let jaccard = if union == 0 {
                1.0
            } else {
                common as f64 / union as f64
            };
            let mut left: Vec<(Txid, u64)> = fleet
                .iter()
                .filter(|(x, _)| !t.txs.contains_key(*x))
                .map(|(x, fee)| (*x, *fee))
                .collect();
            left.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let left_out_count = left.len() as u64;
            let mut explained_fees_sat = 0u64;
            let mut left_out = Vec::new();
            for (x, fee) in left {
                let why = match self.txs.get(&x) {
                    // It went round less than the settle time before this template was
                    // built: relay had not yet had the time to bring it.
                    Some(e) if e.first_seen.0 > t.at.0 - settle => {
                        explained_fees_sat += fee;
                        "young".to_string()
                    }
                    Some(e) if e.holders & (1u128 << i) != 0 => "not_selected".to_string(),
                    Some(e) => {
                        let reason = self.reason(*i, e, fleet_min_fee).0;
                        if reason.is_policy() {
                            explained_fees_sat += fee;
                        }
                        reason.as_str().to_string()
                    }
                    None => "not_in_mempool".to_string(),
                };
                if left_out.len() < self.config.max_listed {
                    left_out.push((x, fee, why));
                }
            }
            rows.push(TemplateComparison {
                at,
                node: self.nodes[*i as usize].name.clone().unwrap_or_else(unknown),
                prev,
                height: t.height,
                fleet_templates: n as u32,
                jaccard,
                fees_sat: t.fees_sat,
                fleet_median_fees_sat: median_fees,
                weight: t.weight,
                fleet_median_weight: median_weight,
                left_out_count,
                explained_fees_sat,
                left_out,
            });
        }
        rows
    }

    /// Fires or resolves `template_fees_low` per node.
    fn judge_templates(
        &mut self,
        rows: &[TemplateComparison],
        cause: EventId,
        out: &mut Vec<Output>,
    ) {
        for row in rows {
            let Some(i) = self.index.get(&row.node).copied() else {
                continue;
            };
            let fingerprint = format!("template_fees_low:{}", row.node);
            let floor =
                row.fleet_median_fees_sat as f64 * (1.0 - self.config.template_fee_shortfall);
            // What the node's own policy keeps out is its price, not a fault.
            let unexplained_fees = row.fees_sat.saturating_add(row.explained_fees_sat);
            let low = row.fleet_median_fees_sat >= self.config.template_min_fees_sat
                && (unexplained_fees as f64) < floor;
            let open = self.incidents.is_open(&fingerprint);
            let state = &mut self.nodes[i as usize];
            let rounds = &mut state.low_template_rounds;
            match streak(rounds, low, self.config.template_rounds, open) {
                Streak::Ended => {
                    if let Some(a) = self.incidents.resolve(&fingerprint, row.at, cause) {
                        out.push(Output::Alert(a));
                    }
                    continue;
                }
                Streak::Holding => continue,
                Streak::Due => {}
            }
            let mut alert = firing(
                "template_fees_low",
                Severity::Warning,
                fingerprint,
                row.at,
                cause,
            );
            alert.node = Some(row.node.clone());
            alert.summary = format!(
                "{}'s block template pays {} sat in fees, {:.0}% below the fleet's median {} sat, \
                 for {} rounds",
                row.node,
                row.fees_sat,
                100.0 * (1.0 - row.fees_sat as f64 / row.fleet_median_fees_sat.max(1) as f64),
                row.fleet_median_fees_sat,
                state.low_template_rounds
            );
            alert.evidence = vec![
                evidence("fees_sat", row.fees_sat),
                evidence("fleet_median_fees_sat", row.fleet_median_fees_sat),
                evidence("jaccard", format!("{:.3}", row.jaccard)),
                evidence("left_out", row.left_out_count),
                evidence("explained_fees_sat", row.explained_fees_sat),
                evidence("height", row.height.0),
                evidence("prev", row.prev),
                evidence(
                    "top_left_out",
                    join(
                        row.left_out
                            .iter()
                            .take(5)
                            .map(|(t, fee, why)| format!("{t}:{fee}:{why}")),
                    ),
                ),
            ];
            if let Some(a) = self.incidents.fire(alert) {
                out.push(Output::Alert(a));
            }
        }
    }
}

fn unknown() -> NodeId {
    NodeId::new("unknown").expect("a constant node name is valid")
}

/// Where a condition that must hold several rounds in a row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Streak {
    /// It does not hold (any more): the count restarts, an open alert resolves.
    Ended,
    /// It holds, but not for long enough yet, or its alert is already open.
    Holding,
    /// It has held for the rounds needed and no alert is open: fire.
    Due,
}

/// Counts one more round of `holds` in `rounds` (or restarts it) and says what is due, given
/// the rounds `needed` and whether the alert is already `open`.
fn streak(rounds: &mut u32, holds: bool, needed: u32, open: bool) -> Streak {
    if !holds {
        *rounds = 0;
        return Streak::Ended;
    }
    *rounds += 1;
    if *rounds < needed || open {
        Streak::Holding
    } else {
        Streak::Due
    }
}

/// The median of `values` (mean of the middle two for an even count).
fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// The median of integer figures (lower middle for an even count).
fn median_u64(values: impl IntoIterator<Item = u64>) -> u64 {
    let mut v: Vec<u64> = values.into_iter().collect();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

/// Satoshis per 1000 vbytes.
fn fee_rate(fee_sat: u64, vsize: u64) -> Option<u64> {
    (vsize > 0).then(|| fee_sat.saturating_mul(1000) / vsize)
}

impl Analysis for CompareAnalysis {
    type Config = CompareConfig;

    fn new(config: CompareConfig) -> CompareAnalysis {
        CompareAnalysis {
            config,
            index: HashMap::new(),
            nodes: Vec::new(),
            ignored: Vec::new(),
            txs: HashMap::new(),
            spenders: HashMap::new(),
            next_round: None,
            incidents: Incidents::new(),
            versions: BTreeMap::new(),
            templates: BTreeMap::new(),
        }
    }

    fn seen_capacity(&self) -> usize {
        self.config.seen_capacity
    }

    fn name(&self) -> crate::DetectorName {
        crate::DetectorName::Compare
    }

    fn inputs(&self) -> &'static [Kind] {
        &[
            Kind::TxSeen,
            Kind::TxRemoved,
            Kind::TxRejected,
            Kind::NodeStatus,
            Kind::BlockTiming,
            Kind::TemplateSnapshot,
        ]
    }

    fn analyse(&mut self, input: Input<'_>, now: UnixMicros) -> Vec<Output> {
        let mut out = Vec::new();
        if let Input::Event(env) = input {
            // A round boundary passed before this event: compare first, without it.
            self.rounds_due(now, env.id, &mut out);
            let at = env.observed_at;
            if let Some(node) = self.node(&env.node) {
                let state = &mut self.nodes[node as usize];
                state.horizon = state.horizon.max(at);
                match &env.event {
                    Event::TxSeen(t) => {
                        let rate = t
                            .fee
                            .zip(t.vsize)
                            .and_then(|(f, v)| fee_rate(f.to_sat(), v));
                        let sighting = Sighting {
                            fee_rate: rate,
                            parents: &t.parents,
                            spends: &t.spends,
                        };
                        self.tx_seen(node, t.txid, at, sighting);
                    }
                    Event::TxRemoved(t) => self.tx_removed(node, t.txid, t.reason, at),
                    Event::TxRejected(t) => self.tx_rejected(node, t.txid, &t.reason, at),
                    Event::NodeStatus(s) => {
                        let state = &mut self.nodes[node as usize];
                        state.last_status = Some(at);
                        state.version = Some(s.subversion.clone());
                        let relay = s.policy.min_relay_fee_sat_per_kvb.unwrap_or(0);
                        let min_fee = relay.max(s.mempool_min_fee_sat_per_kvb);
                        let memory =
                            (self.config.min_fee_memory_secs as i64).saturating_mul(1_000_000);
                        let peaks = &mut state.min_fee_peaks;
                        while peaks.back().is_some_and(|(_, fee)| *fee <= min_fee) {
                            peaks.pop_back();
                        }
                        peaks.push_back((at, min_fee));
                        while peaks.front().is_some_and(|(t, _)| at.0 - t.0 > memory) {
                            peaks.pop_front();
                        }
                        state.min_fee = peaks.front().map(|(_, fee)| *fee);
                        state.blocks_only = s.policy.relays_transactions == Some(false);
                        state.in_ibd = s.initial_block_download;
                        let up = i64::try_from(s.uptime_secs)
                            .unwrap_or(i64::MAX)
                            .saturating_mul(1_000_000);
                        state.started_at = Some(UnixMicros(at.0.saturating_sub(up)));
                    }
                    Event::BlockTiming(t) => self.block_timing(env, node, t, &mut out),
                    Event::TemplateSnapshot(t) => {
                        self.templates.insert(
                            node,
                            NodeTemplate {
                                at,
                                prev: t.prev,
                                height: t.height,
                                fees_sat: t.fees.to_sat(),
                                weight: t.weight,
                                txs: t.txs.iter().map(|x| (x.txid, x.fee.to_sat())).collect(),
                            },
                        );
                    }
                    _ => {}
                }
            }
        } else {
            self.rounds_due(now, input.cause(), &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests;
