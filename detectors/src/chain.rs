//! The chain detector: reorgs, stale tips, invalid blocks, consensus splits, suspected selfish
//! mining, partitions that end in a reorg, and runs of blocks in rapid succession.
//!
//! Inputs: `block_seen`, `block_connected` (each node's first sighting of each block, parent
//! links), `reorg` (the reporting node had the winning branch by then), `chain_tips`,
//! `invalid_block`. Every alert here is one-shot ([`OneShots`]): it fires
//! once per incident, with `ends_at = starts_at + incident_hold_secs`, collects the nodes that
//! report the same incident later, and a `Resolved` alert with the final node list follows when
//! the hold has passed.
//!
//! What makes one incident:
//! - a reorg: its fork point and the first block of the winning branch (`connected[0]`, or the
//!   new tip when the source did not list the branch). The same reorg reported by several nodes,
//!   or by ZMQ and debug.log on one node, is one incident.
//! - a stale tip, an invalid block, a consensus split: the block hash. An invalid block comes
//!   from `invalid_block` (debug.log, with the reason) or from an `invalid` tip in a node's
//!   `chain_tips` listing (no reason); whichever comes first opens the incident, the other
//!   joins it. Listings repeat old history: only tips within `stale_tip_max_age_blocks` of the
//!   active tip count, for invalid and stale tips alike.
//! - suspected selfish mining, or a partition that ended in the reorg: the reorg it belongs to.
//!   A reorg whose winning branch has `selfish_min_blocks` blocks is judged once every node
//!   that knew the fork has the whole branch, or `selfish_check_secs` after its first report,
//!   by who saw the winning blocks when ([`withholding`]): most of the fleet getting the branch
//!   in one late burst after holding the losing block is `selfish_mining` (naming the nodes
//!   that had the blocks early: the withholder's side); a minority getting it that way is
//!   `partition_reorg` (naming the nodes that were cut off).
//! - a rapid run: its first block; a run that keeps growing stays one incident.
//!
//! State reaches back `remember_secs` (default two days) of event time: per-block, per-node
//! first-seen times and fired fingerprints older than that are dropped, so a replay from
//! further back rebuilds them; the last 10,000 judged reorgs are remembered.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bitcoin::BlockHash;
use schema::event::{
    Alert, BlockConnected, ChainTips, Event, InvalidBlock, Reorg, Severity, Source, TipStatus,
};
use schema::{Envelope, EventId, Height, NodeId, UnixMicros};
use serde::{Deserialize, Serialize};

use crate::guard::{Analysis, Guarded};
use crate::incident::{evidence, firing, fmt_secs, fmt_time, join, set_evidence, OneShots};
use crate::seen::SeenSet;
use crate::{secs, secs_f64, Input, Output};

mod withholding;

use withholding::{Release, Sighting, Verdict};

/// Reorgs whose selfish-mining check is remembered as done, so a later report of the same
/// reorg does not judge it again.
const JUDGED_REORGS: usize = 10_000;

/// Thresholds of the chain detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// Event ids remembered to drop duplicates.
    pub seen_capacity: usize,
    /// How long a one-shot alert stays firing (its `ends_at - starts_at`), seconds.
    pub incident_hold_secs: u64,
    /// How long block first-seen times and fired incidents are kept, seconds of event time.
    pub remember_secs: u64,
    /// Reorgs at least this deep are critical; shallower ones are warnings.
    pub reorg_critical_depth: u32,
    /// A `valid-fork`/`valid-headers` tip more than this many blocks below the active tip is
    /// old history (a node's first `chain_tips` lists every fork it knows) and not alerted.
    pub stale_tip_max_age_blocks: u32,
    /// Selfish mining or partition: the winning branch of a reorg has at least this many
    /// blocks...
    pub selfish_min_blocks: usize,
    /// ...and "at once" is within this many seconds (fractions allowed: a regtest fleet mines
    /// in milliseconds): a node got the whole branch in one burst, an early node had it before
    /// the burst, the branch was held back. See [`withholding`].
    pub selfish_release_window_secs: f64,
    /// How long after a reorg the check waits for every node that knew the fork to report the
    /// whole winning branch; then it judges with the sightings it has, seconds (fractions
    /// allowed).
    pub selfish_check_secs: f64,
    /// When no fleet node had the winning blocks before the burst (a withholder outside the
    /// fleet, or agents without a debug.log, which see no headers), the release must come at
    /// most this long after the losing block, seconds: a selfish miner releases as soon as the
    /// honest block appears, while a natural race's next block comes minutes later (only one
    /// natural race in ten is decided within 60 s on mainnet).
    pub selfish_max_release_delay_secs: f64,
    /// A rapid run is this many consecutive blocks...
    pub rapid_run_blocks: usize,
    /// ...first seen within this many seconds (natural odds for 3 blocks in 30 s: about one
    /// in 800 blocks; fractions allowed).
    pub rapid_run_window_secs: f64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            seen_capacity: 100_000,
            incident_hold_secs: 3600,
            remember_secs: 2 * 86_400,
            reorg_critical_depth: 2,
            stale_tip_max_age_blocks: 6,
            selfish_min_blocks: 2,
            selfish_release_window_secs: 30.0,
            selfish_check_secs: 600.0,
            selfish_max_release_delay_secs: 60.0,
            rapid_run_blocks: 3,
            rapid_run_window_secs: 30.0,
        }
    }
}

/// What the fleet knows about one block.
#[derive(Debug, Clone)]
struct BlockInfo {
    first_seen: UnixMicros,
    first_node: NodeId,
    /// Each node's first sighting.
    seen_by: BTreeMap<NodeId, Sighting>,
    height: Option<Height>,
    prev: Option<BlockHash>,
    connected_by: BTreeSet<NodeId>,
    invalid_by: BTreeSet<NodeId>,
    invalid_reason: Option<String>,
}

/// A reorg whose selfish-mining check waits for first-seen times.
#[derive(Debug, Clone)]
struct SelfishCandidate {
    fingerprint: String,
    reorg: Reorg,
    node: NodeId,
    reported_at: UnixMicros,
    deadline: UnixMicros,
}

/// Reorgs, stale tips, invalid blocks, consensus splits, selfish mining, rapid runs: the
/// chain analysis with its duplicate filter and event clock.
pub type ChainDetector = Guarded<ChainAnalysis>;

/// The chain analysis (see the module docs).
#[derive(Debug, Clone)]
pub struct ChainAnalysis {
    config: ChainConfig,
    blocks: HashMap<BlockHash, BlockInfo>,
    incidents: OneShots,
    in_rapid_run: HashSet<BlockHash>,
    selfish: Vec<SelfishCandidate>,
    /// Reorgs (fork point, first winning block) whose selfish-mining check is done.
    judged: SeenSet<(BlockHash, BlockHash)>,
    next_prune: UnixMicros,
}

impl ChainAnalysis {
    /// Records that `node` saw `hash` at `at`; returns whether the block was new to the fleet.
    /// `source` says how precise `at` is (see [`coarse`]); `None` for RPC answers.
    fn observe(
        &mut self,
        hash: BlockHash,
        height: Option<Height>,
        prev: Option<BlockHash>,
        node: &NodeId,
        at: UnixMicros,
        source: Option<Source>,
    ) -> bool {
        let sighting = Sighting::at(at, source.is_some_and(|s| coarse(s, at)));
        match self.blocks.get_mut(&hash) {
            Some(b) => {
                if at < b.first_seen {
                    b.first_seen = at;
                    b.first_node = node.clone();
                }
                b.seen_by
                    .entry(node.clone())
                    .and_modify(|s| s.merge(sighting))
                    .or_insert(sighting);
                b.height = b.height.or(height);
                b.prev = b.prev.or(prev);
                false
            }
            None => {
                self.blocks.insert(
                    hash,
                    BlockInfo {
                        first_seen: at,
                        first_node: node.clone(),
                        seen_by: BTreeMap::from([(node.clone(), sighting)]),
                        height,
                        prev,
                        connected_by: BTreeSet::new(),
                        invalid_by: BTreeSet::new(),
                        invalid_reason: None,
                    },
                );
                true
            }
        }
    }

    fn on_connected(&mut self, b: &BlockConnected, env: &Envelope, out: &mut Vec<Output>) {
        let had_prev = self.blocks.get(&b.hash).is_some_and(|i| i.prev.is_some());
        self.observe(
            b.hash,
            Some(b.height),
            Some(b.prev),
            &env.node,
            env.observed_at,
            Some(b.source),
        );
        if let Some(info) = self.blocks.get_mut(&b.hash) {
            info.connected_by.insert(env.node.clone());
        }
        self.check_split(b.hash, env, out);
        if !had_prev {
            self.check_rapid_run(b.hash, env, out);
        }
    }

    fn on_invalid(&mut self, i: &InvalidBlock, env: &Envelope, out: &mut Vec<Output>) {
        let r = Rejection {
            hash: i.hash,
            height: i.height,
            reason: Some(&i.reason),
            detail: i.detail.as_deref(),
            peer: i.peer,
            label: i.source.as_str(),
            source: Some(i.source),
            branch_len: None,
        };
        self.on_rejection(&r, env, out);
    }

    /// A node rejected a block: one `invalid_block` incident per hash whichever source reports
    /// it first; later reports (other nodes, other sources) join it.
    fn on_rejection(&mut self, r: &Rejection<'_>, env: &Envelope, out: &mut Vec<Output>) {
        self.observe(r.hash, r.height, None, &env.node, env.observed_at, r.source);
        if let Some(info) = self.blocks.get_mut(&r.hash) {
            info.invalid_by.insert(env.node.clone());
            if let Some(reason) = r.reason {
                info.invalid_reason
                    .get_or_insert_with(|| reason.to_string());
            }
        }
        let fp = format!("invalid_block:{}", r.hash);
        if self.incidents.is_open(&fp) {
            self.incidents.add_node(&fp, &env.node);
            self.incidents.update(&fp, |a| merge_rejection(a, r));
        } else {
            let reason = r.reason.unwrap_or(UNKNOWN_REASON);
            let mut a = firing(
                "invalid_block",
                Severity::Warning,
                fp,
                env.observed_at,
                env.id,
            );
            a.node = Some(env.node.clone());
            a.subject = Some(r.hash.to_string());
            a.summary = format!(
                "block {} at height {} rejected as invalid: {reason}",
                r.hash,
                opt_height(r.height),
            );
            a.evidence = vec![
                evidence("hash", r.hash),
                evidence("height", opt_height(r.height)),
                evidence("reason", reason),
                evidence("detail", r.detail.unwrap_or("")),
                evidence("peer", r.peer.map(|p| p.to_string()).unwrap_or_default()),
                evidence("first_reported_at", fmt_time(env.observed_at)),
                evidence("source", r.label),
                evidence("sources", r.label),
            ];
            if let Some(len) = r.branch_len {
                a.evidence.push(evidence("branch_len", len));
            }
            if let Some(a) = self.incidents.fire(a, Some(&env.node)) {
                out.push(Output::Alert(a));
            }
        }
        self.check_split(r.hash, env, out);
    }

    /// Some nodes connected a block that others rejected: the fleet disagrees on consensus.
    fn check_split(&mut self, hash: BlockHash, env: &Envelope, out: &mut Vec<Output>) {
        let Some(info) = self.blocks.get(&hash) else {
            return;
        };
        if info.connected_by.is_empty() || info.invalid_by.is_empty() {
            return;
        }
        let fp = format!("consensus_split:{hash}");
        let connected = join(&info.connected_by);
        let rejected = join(&info.invalid_by);
        if self.incidents.is_open(&fp) {
            self.incidents.update(&fp, |a| {
                set_evidence(a, "connected_by", &connected);
                set_evidence(a, "rejected_by", &rejected);
            });
            self.incidents.add_node(&fp, &env.node);
            return;
        }
        let mut a = firing(
            "consensus_split",
            Severity::Critical,
            fp,
            env.observed_at,
            env.id,
        );
        a.subject = Some(hash.to_string());
        a.summary = format!(
            "block {hash} at height {} connected by {connected} but rejected by {rejected}",
            opt_height(info.height)
        );
        a.evidence = vec![
            evidence("hash", hash),
            evidence("height", opt_height(info.height)),
            evidence("connected_by", connected),
            evidence("rejected_by", rejected),
            evidence("reason", info.invalid_reason.as_deref().unwrap_or("")),
        ];
        if let Some(a) = self.incidents.fire(a, Some(&env.node)) {
            out.push(Output::Alert(a));
        }
    }

    fn on_reorg(&mut self, r: &Reorg, env: &Envelope, out: &mut Vec<Output>) {
        // The node had the winning branch by the time it reported the reorg.
        for h in &r.connected {
            self.observe(*h, None, None, &env.node, env.observed_at, Some(r.source));
        }
        let winner = winning_block(r);
        let fp = format!("reorg:{}:{}", r.fork_point, winner);
        if self.incidents.is_open(&fp) {
            self.incidents.add_node(&fp, &env.node);
            let source = r.source.as_str();
            self.incidents.update(&fp, |a| {
                let sources = a
                    .evidence
                    .iter()
                    .find(|e| e.name == "sources")
                    .map(|e| e.value.clone())
                    .unwrap_or_default();
                if !sources.split(',').any(|s| s == source) {
                    set_evidence(a, "sources", format!("{sources},{source}"));
                }
                let deeper = a
                    .evidence
                    .iter()
                    .find(|e| e.name == "depth")
                    .and_then(|e| e.value.parse::<u32>().ok())
                    .is_some_and(|d| r.depth > d);
                if deeper {
                    set_evidence(a, "depth", r.depth);
                }
            });
        } else {
            let severity = if r.depth >= self.config.reorg_critical_depth {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let mut a = firing("reorg", severity, fp.clone(), env.observed_at, env.id);
            a.node = Some(env.node.clone());
            a.subject = Some(r.old_tip.to_string());
            a.summary = format!(
                "reorg of depth {} after height {}: tip {} replaced by {}",
                r.depth, r.fork_height, r.old_tip, r.new_tip
            );
            a.evidence = vec![
                evidence("depth", r.depth),
                evidence("fork_point", r.fork_point),
                evidence("fork_height", r.fork_height),
                evidence("old_tip", r.old_tip),
                evidence("old_height", r.old_height),
                evidence("new_tip", r.new_tip),
                evidence("new_height", r.new_height),
                evidence("disconnected", join(&r.disconnected)),
                evidence("connected", join(&r.connected)),
                evidence("first_reported_at", fmt_time(env.observed_at)),
                evidence("sources", r.source.as_str()),
            ];
            if let Some(a) = self.incidents.fire(a, Some(&env.node)) {
                out.push(Output::Alert(a));
            }
        }
        let selfish_fp = format!("selfish_mining:{}:{}", r.fork_point, winner);
        let pending = self.selfish.iter().any(|c| c.fingerprint == selfish_fp);
        if r.connected.len() >= self.config.selfish_min_blocks
            && !r.disconnected.is_empty()
            && !pending
            && !self.judged.contains(&(r.fork_point, winner))
            && !self.incidents.known(&selfish_fp)
        {
            self.selfish.push(SelfishCandidate {
                fingerprint: selfish_fp,
                reorg: r.clone(),
                node: env.node.clone(),
                reported_at: env.observed_at,
                deadline: env
                    .observed_at
                    .plus_micros(secs_f64(self.config.selfish_check_secs)),
            });
        }
    }

    /// Judges pending reorgs once every node that knew the fork has the whole winning branch,
    /// or at their deadline: a withheld branch released at once, or a partition healing.
    fn check_selfish(&mut self, now: UnixMicros, cause: EventId, out: &mut Vec<Output>) {
        if self.selfish.is_empty() {
            return;
        }
        let window = secs_f64(self.config.selfish_release_window_secs);
        let mut done = Vec::new();
        for (idx, c) in self.selfish.iter().enumerate() {
            if now < c.deadline && !self.branch_everywhere(c) {
                continue;
            }
            done.push(idx);
            let Some(alert) = self.release_alert(c, window, cause) else {
                continue;
            };
            if let Some(a) = self.incidents.fire(alert, Some(&c.node)) {
                out.push(Output::Alert(a));
            }
        }
        for idx in done.into_iter().rev() {
            let c = self.selfish.remove(idx);
            let winner = winning_block(&c.reorg);
            self.judged.insert((c.reorg.fork_point, winner));
        }
    }

    /// Whether every node that saw the fork point, the losing block or a winning block has seen
    /// every winning block (nothing more to wait for).
    fn branch_everywhere(&self, c: &SelfishCandidate) -> bool {
        let mut winning = Vec::with_capacity(c.reorg.connected.len());
        for h in &c.reorg.connected {
            match self.blocks.get(h) {
                Some(info) => winning.push(&info.seen_by),
                None => return false,
            }
        }
        let fork_and_losing = [
            Some(c.reorg.fork_point),
            c.reorg.disconnected.last().copied(),
        ];
        let mut fleet: BTreeSet<&NodeId> = BTreeSet::new();
        for h in fork_and_losing.into_iter().flatten() {
            if let Some(info) = self.blocks.get(&h) {
                fleet.extend(info.seen_by.keys());
            }
        }
        for w in &winning {
            fleet.extend(w.keys());
        }
        fleet
            .iter()
            .all(|n| winning.iter().all(|w| w.contains_key(*n)))
    }

    /// The `selfish_mining` or `partition_reorg` alert a reorg's sightings call for (reported
    /// for the node whose reorg report started the check).
    fn release_alert(&self, c: &SelfishCandidate, window: i64, cause: EventId) -> Option<Alert> {
        // The losing branch's first block (disconnected lists the old tip first).
        let losing = *c.reorg.disconnected.last()?;
        let losing_info = self.blocks.get(&losing)?;
        let mut winning = Vec::with_capacity(c.reorg.connected.len());
        for h in &c.reorg.connected {
            winning.push((*h, self.blocks.get(h)?));
        }
        let seen: Vec<&BTreeMap<NodeId, Sighting>> =
            winning.iter().map(|(_, i)| &i.seen_by).collect();
        let max_delay = secs_f64(self.config.selfish_max_release_delay_secs);
        let release =
            withholding::classify(&losing_info.seen_by, &seen, window, max_delay, c.deadline)?;
        let r = &c.reorg;
        let mut evidence_list = vec![
            evidence("fork_point", r.fork_point),
            evidence("fork_height", r.fork_height),
            evidence("losing_block", losing),
            evidence("losing_first_seen", fmt_time(release.losing_first)),
            evidence("winning_blocks", join(winning.iter().map(|(h, _)| h))),
            evidence(
                "winning_first_seen",
                join(winning.iter().map(|(_, i)| fmt_time(i.first_seen))),
            ),
            evidence(
                "winning_first_seen_by",
                join(winning.iter().map(|(_, i)| &i.first_node)),
            ),
            evidence("released_at", fmt_time(release.released_at)),
            evidence("release_interval", fmt_secs(release.interval)),
            evidence("burst_nodes", join(&release.burst)),
            evidence("held_losing_block", join(&release.held_losing)),
            evidence("early_nodes", join(release.early.iter().map(|(n, _)| n))),
            evidence(
                "early_first_seen",
                join(release.early.iter().map(|(_, at)| fmt_time(*at))),
            ),
            evidence(
                "branch_complete_at",
                release.complete_at.map(fmt_time).unwrap_or_default(),
            ),
            evidence("nodes_with_branch", release.nodes),
            evidence("reorg_depth", r.depth),
        ];
        let held_back = release
            .complete_at
            .map(|at| release.released_at.micros_since(at));
        let mut alert = match release.verdict {
            Verdict::Withheld => {
                let delay = release.released_at.micros_since(release.losing_first);
                evidence_list.push(evidence("delay_after_losing_block", fmt_secs(delay)));
                evidence_list.push(evidence(
                    "withheld_for",
                    held_back.map(fmt_secs).unwrap_or_default(),
                ));
                let mut a = firing(
                    "selfish_mining",
                    Severity::Warning,
                    c.fingerprint.clone(),
                    c.reported_at,
                    cause,
                );
                a.summary = selfish_summary(winning.len(), r, &release, delay, held_back);
                a
            }
            Verdict::Partition => {
                evidence_list.push(evidence("cut_off_nodes", join(&release.burst)));
                evidence_list.push(evidence(
                    "cut_off_for",
                    held_back.map(fmt_secs).unwrap_or_default(),
                ));
                let fp = format!("partition_reorg:{}:{}", r.fork_point, winning_block(r));
                let mut a = firing(
                    "partition_reorg",
                    Severity::Warning,
                    fp,
                    c.reported_at,
                    cause,
                );
                a.summary = format!(
                    "{} cut off: got the {} blocks after height {} {} after {} had them, and reorged (a partition healing, not selfish mining)",
                    join(&release.burst),
                    winning.len(),
                    r.fork_height,
                    held_back.map(fmt_secs).unwrap_or_default(),
                    join(release.early.iter().map(|(n, _)| n)),
                );
                a
            }
        };
        alert.node = Some(c.node.clone());
        alert.subject = Some(r.new_tip.to_string());
        alert.evidence = evidence_list;
        Some(alert)
    }

    /// A newly linked block may complete a run of blocks first seen in rapid succession.
    fn check_rapid_run(&mut self, tip: BlockHash, env: &Envelope, out: &mut Vec<Output>) {
        let n = self.config.rapid_run_blocks.max(2);
        let mut run: Vec<(BlockHash, UnixMicros, Option<Height>, NodeId)> = Vec::with_capacity(n);
        let mut cur = Some(tip);
        while run.len() < n {
            let Some(hash) = cur else { return };
            let Some(info) = self.blocks.get(&hash) else {
                return;
            };
            run.push((hash, info.first_seen, info.height, info.first_node.clone()));
            cur = info.prev;
        }
        run.reverse();
        let first = run.iter().map(|r| r.1).min().unwrap_or(env.observed_at);
        let last = run.iter().map(|r| r.1).max().unwrap_or(env.observed_at);
        let span = last.micros_since(first);
        if span > secs_f64(self.config.rapid_run_window_secs) {
            return;
        }
        let extends = run[..n - 1]
            .iter()
            .any(|r| self.in_rapid_run.contains(&r.0));
        for r in &run {
            self.in_rapid_run.insert(r.0);
        }
        if extends {
            return;
        }
        let fp = format!("rapid_blocks:{}", run[0].0);
        let mut a = firing("rapid_blocks", Severity::Info, fp, env.observed_at, env.id);
        a.subject = Some(run[0].0.to_string());
        a.summary = format!(
            "{} blocks from height {} first seen within {}",
            n,
            opt_height(run[0].2),
            fmt_secs(span)
        );
        a.evidence = vec![
            evidence("hashes", join(run.iter().map(|r| r.0))),
            evidence("heights", join(run.iter().map(|r| opt_height(r.2)))),
            evidence("first_seen", join(run.iter().map(|r| fmt_time(r.1)))),
            evidence("first_seen_by", join(run.iter().map(|r| &r.3))),
            evidence("interval", fmt_secs(span)),
        ];
        if let Some(a) = self.incidents.fire(a, Some(&env.node)) {
            out.push(Output::Alert(a));
        }
    }

    fn on_tips(&mut self, t: &ChainTips, env: &Envelope, out: &mut Vec<Output>) {
        let active = t
            .tips
            .iter()
            .find(|x| x.status == TipStatus::Active)
            .or_else(|| t.tips.iter().max_by_key(|x| x.height));
        let Some(active) = active.cloned() else {
            return;
        };
        for tip in &t.tips {
            // A listing repeats every fork the node knows: only recent tips are news.
            if tip
                .height
                .0
                .saturating_add(self.config.stale_tip_max_age_blocks)
                < active.height.0
            {
                continue;
            }
            if tip.status == TipStatus::Invalid {
                let r = Rejection {
                    hash: tip.hash,
                    height: Some(tip.height),
                    reason: None,
                    detail: None,
                    peer: None,
                    label: "chain_tips",
                    source: None,
                    branch_len: Some(tip.branch_len),
                };
                self.on_rejection(&r, env, out);
                continue;
            }
            if !matches!(tip.status, TipStatus::ValidFork | TipStatus::ValidHeaders) {
                continue;
            }
            // A branch that starts at the active tip holds blocks the node is still connecting
            // (their data is in, ActivateBestChain has not run yet), not a branch left behind.
            // One that forks below the active tip and is higher is news: a heavier chain the
            // node has not switched to.
            if tip.height > active.height
                && tip.height.0.saturating_sub(tip.branch_len) == active.height.0
            {
                continue;
            }
            let fp = format!("stale_tip:{}", tip.hash);
            let mut a = firing("stale_tip", Severity::Info, fp, env.observed_at, env.id);
            a.node = Some(env.node.clone());
            a.subject = Some(tip.hash.to_string());
            a.summary = format!(
                "stale branch of {} block(s) ending at height {} ({})",
                tip.branch_len,
                tip.height,
                tip.status.as_str()
            );
            a.evidence = vec![
                evidence("hash", tip.hash),
                evidence("height", tip.height),
                evidence("branch_len", tip.branch_len),
                evidence("fork_height", tip.height.0.saturating_sub(tip.branch_len)),
                evidence("status", tip.status.as_str()),
                evidence("active_tip", active.hash),
                evidence("active_height", active.height),
                evidence("first_reported_at", fmt_time(env.observed_at)),
            ];
            if let Some(a) = self.incidents.fire(a, Some(&env.node)) {
                out.push(Output::Alert(a));
            }
        }
    }

    fn prune(&mut self, now: UnixMicros) {
        if now < self.next_prune {
            return;
        }
        let horizon = now.plus_micros(-secs(self.config.remember_secs));
        self.blocks.retain(|_, b| b.first_seen >= horizon);
        let blocks = &self.blocks;
        self.in_rapid_run.retain(|h| blocks.contains_key(h));
        self.next_prune = now.plus_micros(600_000_000);
    }
}

/// The first block of a reorg's winning branch (the new tip when the source did not list the
/// branch): with the fork point, what names the reorg.
fn winning_block(r: &Reorg) -> BlockHash {
    r.connected.first().copied().unwrap_or(r.new_tip)
}

/// Whether a time from `source` is only good to the second: debug.log lines without
/// `-logtimemicros` carry whole seconds (a time from a microsecond log is on a whole second one
/// time in a million, and then read as that second: harmless).
fn coarse(source: Source, at: UnixMicros) -> bool {
    source == Source::Log && at.0.rem_euclid(1_000_000) == 0
}

fn opt_height(h: Option<Height>) -> String {
    h.map(|h| h.to_string()).unwrap_or_else(|| "unknown".into())
}

fn selfish_summary(
    blocks: usize,
    r: &Reorg,
    release: &Release,
    delay: i64,
    held_back: Option<i64>,
) -> String {
    let mut text = format!(
        "suspected selfish mining: {blocks} blocks after height {} reached {} of {} nodes in one burst of {}, {} after the block they replaced",
        r.fork_height,
        release.burst.len(),
        release.nodes,
        fmt_secs(release.interval),
        fmt_secs(delay),
    );
    if let Some(held) = held_back {
        text.push_str(&format!(
            "; {} had them {} earlier",
            join(release.early.iter().map(|(n, _)| n)),
            fmt_secs(held)
        ));
    }
    text
}

/// The reason of a rejection whose source gives none (`getchaintips`).
const UNKNOWN_REASON: &str = "unknown";

/// One node's rejection of a block, from `invalid_block` or an `invalid` tip of `chain_tips`.
struct Rejection<'a> {
    hash: BlockHash,
    height: Option<Height>,
    reason: Option<&'a str>,
    detail: Option<&'a str>,
    peer: Option<u64>,
    /// `log`, `rpc`, `zmq` or `chain_tips`.
    label: &'static str,
    /// The event's source (`None` for a `chain_tips` listing, an RPC answer).
    source: Option<Source>,
    /// The invalid branch's length, for a `chain_tips` listing.
    branch_len: Option<u32>,
}

/// Adds a later report of the same invalid block to its open alert: the source joins
/// `sources`, and a reason, detail, peer or height the first report lacked is filled in.
fn merge_rejection(a: &mut Alert, r: &Rejection<'_>) {
    let value = |a: &Alert, name: &str| {
        a.evidence
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.value.clone())
            .unwrap_or_default()
    };
    let sources = value(a, "sources");
    if !sources.split(',').any(|s| s == r.label) {
        set_evidence(a, "sources", format!("{sources},{}", r.label));
    }
    if let Some(reason) = r.reason {
        if value(a, "reason") == UNKNOWN_REASON {
            set_evidence(a, "reason", reason);
        }
    }
    if let Some(detail) = r.detail.filter(|_| value(a, "detail").is_empty()) {
        set_evidence(a, "detail", detail);
    }
    if let Some(peer) = r.peer.filter(|_| value(a, "peer").is_empty()) {
        set_evidence(a, "peer", peer);
    }
    if let Some(h) = r.height.filter(|_| value(a, "height") == "unknown") {
        set_evidence(a, "height", h);
    }
}

impl Analysis for ChainAnalysis {
    type Config = ChainConfig;

    fn new(config: ChainConfig) -> Self {
        ChainAnalysis {
            incidents: OneShots::new(config.incident_hold_secs, config.remember_secs),
            config,
            blocks: HashMap::new(),
            in_rapid_run: HashSet::new(),
            selfish: Vec::new(),
            judged: SeenSet::new(JUDGED_REORGS),
            next_prune: UnixMicros(i64::MIN),
        }
    }

    fn seen_capacity(&self) -> usize {
        self.config.seen_capacity
    }

    fn name(&self) -> crate::DetectorName {
        crate::DetectorName::Chain
    }

    fn inputs(&self) -> &'static [schema::Kind] {
        use schema::Kind;
        &[
            Kind::BlockSeen,
            Kind::BlockConnected,
            Kind::Reorg,
            Kind::ChainTips,
            Kind::InvalidBlock,
        ]
    }

    fn analyse(&mut self, input: Input<'_>, now: UnixMicros) -> Vec<Output> {
        let mut out = Vec::new();
        if let Input::Event(env) = input {
            let mut block_news = false;
            match &env.event {
                Event::BlockSeen(b) => {
                    let source = Some(b.source);
                    self.observe(b.hash, b.height, None, &env.node, env.observed_at, source);
                    block_news = true;
                }
                Event::BlockConnected(b) => {
                    self.on_connected(b, env, &mut out);
                    block_news = true;
                }
                Event::Reorg(r) => {
                    self.on_reorg(r, env, &mut out);
                    block_news = true;
                }
                Event::ChainTips(t) => self.on_tips(t, env, &mut out),
                Event::InvalidBlock(i) => self.on_invalid(i, env, &mut out),
                _ => {}
            }
            if block_news {
                self.check_selfish(now, env.id, &mut out);
            }
        } else {
            self.check_selfish(now, input.cause(), &mut out);
        }
        out.extend(
            self.incidents
                .expire(now, input.cause())
                .into_iter()
                .map(Output::Alert),
        );
        self.prune(now);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::fmt_time;
    use crate::testkit::{self, *};
    use schema::event::{AlertState::*, BlockStage, Source};

    fn cfg() -> ChainConfig {
        ChainConfig::default()
    }

    fn given(events: &[Envelope]) -> Given<ChainDetector> {
        testkit::given(ChainDetector::new(cfg()), events)
    }

    /// Blocks `from..=to` connected on every node, ten minutes apart, each node a second apart.
    fn normal_chain(nodes: &[&str], from: u32, to: u32) -> Vec<Envelope> {
        let mut evs = Vec::new();
        for i in from..=to {
            for (k, node) in nodes.iter().enumerate() {
                let at = t(f64::from(i) * 600.0 + k as f64);
                evs.push(seen(node, at, i, BlockStage::Header));
                evs.push(connected(node, at.plus_micros(200_000), i));
            }
        }
        evs
    }

    #[test]
    fn a_clean_run_of_normal_blocks_fires_nothing() {
        let evs = normal_chain(&["n0", "n1", "n2"], 1, 300);
        let outs = run(&mut ChainDetector::new(cfg()), &evs);
        assert!(outs.is_empty(), "{outs:#?}");
    }

    #[test]
    fn a_reorg_fires_once_with_its_evidence() {
        given(&normal_chain(&["n0", "n1"], 1, 10))
            .when(&reorg(
                "n1",
                t(6100.0),
                10,
                10,
                &[111],
                &[11, 12],
                Source::Zmq,
            ))
            .then_alerts(&[("reorg", Firing)]);
        let then = given(&[]).when(&reorg(
            "n1",
            t(6100.0),
            10,
            10,
            &[111],
            &[11, 12],
            Source::Zmq,
        ));
        let a = then.alert("reorg");
        assert_eq!(a.severity, Severity::Warning);
        assert_eq!(ev_value(a, "depth"), "1");
        assert_eq!(ev_value(a, "fork_point"), bh(10).to_string());
        assert_eq!(ev_value(a, "old_tip"), bh(111).to_string());
        assert_eq!(ev_value(a, "new_tip"), bh(12).to_string());
        assert_eq!(ev_value(a, "nodes"), "n1");
        assert_eq!(a.ends_at, Some(a.starts_at.plus_micros(3_600_000_000)));
    }

    #[test]
    fn a_deep_reorg_is_critical() {
        let then = given(&[]).when(&reorg(
            "n1",
            t(0.0),
            10,
            10,
            &[113, 112, 111],
            &[11, 12, 13, 14],
            Source::Zmq,
        ));
        assert_eq!(then.alert("reorg").severity, Severity::Critical);
    }

    #[test]
    fn the_same_reorg_from_several_nodes_and_sources_is_one_incident() {
        let r = |node: &str, s: f64, src| reorg(node, t(s), 10, 10, &[111], &[11, 12], src);
        let then = given(&[r("n0", 0.0, Source::Zmq)])
            .when_all(&[
                r("n0", 0.5, Source::Log),
                r("n1", 1.0, Source::Zmq),
                r("n2", 2.0, Source::Rpc),
            ])
            .then_no_alert()
            .and()
            .when_tick(t(3600.0));
        let resolved = then.alert("reorg");
        assert_eq!(resolved.state, Resolved);
        assert_eq!(ev_value(resolved, "nodes"), "n0,n1,n2");
        assert_eq!(ev_value(resolved, "sources"), "zmq,log,rpc");
        assert_eq!(resolved.ends_at, Some(t(3600.0)));
    }

    #[test]
    fn duplicates_do_not_double_alert_and_replay_gives_the_same_ids() {
        let mut evs = normal_chain(&["n0", "n1"], 1, 5);
        evs.push(reorg("n1", t(3100.0), 5, 5, &[106], &[6, 7], Source::Zmq));
        evs.push(invalid("n0", t(3200.0), 900, 8, "bad-cb-amount"));
        let outs = assert_replay_and_duplicates_agree(|| ChainDetector::new(cfg()), &evs);
        assert_eq!(outs.len(), 2);
    }

    #[test]
    fn a_new_valid_fork_tip_is_a_stale_tip_once() {
        let ts = [
            (115, 115, 0, TipStatus::Active),
            (114, 214, 1, TipStatus::ValidFork),
        ];
        let then = given(&[])
            .when(&tips("n2", t(0.0), &ts))
            .then_alerts(&[("stale_tip", Firing)]);
        assert_eq!(ev_value(then.alert("stale_tip"), "branch_len"), "1");
        then.and().when(&tips("n0", t(5.0), &ts)).then_no_alert();
    }

    #[test]
    fn old_forks_headers_only_and_invalid_tips_are_not_stale_tip_alerts() {
        // The recent invalid tip is an invalid block (below), never a stale tip.
        given(&[])
            .when(&tips(
                "n0",
                t(0.0),
                &[
                    (120, 120, 0, TipStatus::Active),
                    (100, 300, 2, TipStatus::ValidFork),
                    (118, 218, 3, TipStatus::HeadersOnly),
                    (121, 421, 1, TipStatus::Invalid),
                ],
            ))
            .then_alerts(&[("invalid_block", Firing)]);
    }

    #[test]
    fn a_block_still_being_connected_above_the_active_tip_is_not_a_stale_tip() {
        // getchaintips between a mined block's acceptance and its connection: the new block is
        // a `valid-headers` tip one above the active tip.
        given(&[])
            .when(&tips(
                "n0",
                t(0.0),
                &[
                    (32, 32, 0, TipStatus::Active),
                    (33, 33, 1, TipStatus::ValidHeaders),
                ],
            ))
            .then_alerts(&[]);
    }

    #[test]
    fn a_higher_branch_forking_below_the_active_tip_is_a_stale_tip() {
        // Two blocks from height 31: higher than the active tip at 32, not built on it.
        given(&[])
            .when(&tips(
                "n0",
                t(0.0),
                &[
                    (32, 32, 0, TipStatus::Active),
                    (33, 133, 2, TipStatus::ValidHeaders),
                ],
            ))
            .then_alerts(&[("stale_tip", Firing)]);
    }

    #[test]
    fn an_invalid_tip_in_chain_tips_is_an_invalid_block_incident() {
        let then = given(&[])
            .when(&tips(
                "n1",
                t(0.0),
                &[
                    (120, 120, 0, TipStatus::Active),
                    (121, 421, 1, TipStatus::Invalid),
                ],
            ))
            .then_alerts(&[("invalid_block", Firing)]);
        let a = then.alert("invalid_block");
        assert_eq!(a.subject, Some(bh(421).to_string()));
        assert_eq!(ev_value(a, "height"), "121");
        assert_eq!(ev_value(a, "source"), "chain_tips");
        assert_eq!(ev_value(a, "reason"), "unknown");
        assert_eq!(ev_value(a, "branch_len"), "1");
        assert_eq!(ev_value(a, "nodes"), "n1");
    }

    #[test]
    fn the_same_invalid_block_from_chain_tips_and_the_log_is_one_incident_with_both_sources() {
        let listing = |node: &str, s: f64| {
            tips(
                node,
                t(s),
                &[
                    (120, 120, 0, TipStatus::Active),
                    (121, 121, 1, TipStatus::Invalid),
                ],
            )
        };
        // getchaintips first, the log's reason later: the reason fills in.
        let then = given(&[listing("n0", 0.0)])
            .when_all(&[
                invalid("n0", t(0.5), 121, 121, "bad-cb-amount"),
                listing("n1", 1.0),
                listing("n1", 30.0),
            ])
            .then_no_alert()
            .and()
            .when_tick(t(3601.0))
            .then_alerts(&[("invalid_block", Resolved)]);
        let a = then.alert("invalid_block");
        assert_eq!(ev_value(a, "source"), "chain_tips");
        assert_eq!(ev_value(a, "sources"), "chain_tips,log");
        assert_eq!(ev_value(a, "reason"), "bad-cb-amount");
        assert_eq!(ev_value(a, "nodes"), "n0,n1");
        // The log first: getchaintips joins it.
        let then = given(&[invalid("n0", t(0.0), 121, 121, "bad-cb-amount")])
            .when(&listing("n2", 1.0))
            .then_no_alert()
            .and()
            .when_tick(t(3601.0));
        let a = then.alert("invalid_block");
        assert_eq!(ev_value(a, "sources"), "log,chain_tips");
        assert_eq!(ev_value(a, "nodes"), "n0,n2");
    }

    #[test]
    fn an_old_invalid_tip_in_the_first_listing_is_history_but_a_recent_one_alerts_once() {
        // An agent's first listing: an invalid tip 20 blocks down (old), one 3 blocks down.
        let first = tips(
            "n0",
            t(0.0),
            &[
                (120, 120, 0, TipStatus::Active),
                (100, 400, 1, TipStatus::Invalid),
                (117, 417, 1, TipStatus::Invalid),
            ],
        );
        let then = given(&[])
            .when(&first)
            .then_alerts(&[("invalid_block", Firing)]);
        assert_eq!(
            then.alert("invalid_block").subject,
            Some(bh(417).to_string())
        );
        // Listed again on the next change: nothing new.
        then.and()
            .when(&tips(
                "n0",
                t(600.0),
                &[
                    (121, 121, 0, TipStatus::Active),
                    (100, 400, 1, TipStatus::Invalid),
                    (117, 417, 1, TipStatus::Invalid),
                ],
            ))
            .then_no_alert();
    }

    #[test]
    fn an_invalid_tip_of_a_block_another_node_connected_is_a_consensus_split() {
        given(&[connected("n0", t(0.0), 121)])
            .when(&tips(
                "n1",
                t(1.0),
                &[
                    (120, 120, 0, TipStatus::Active),
                    (121, 121, 1, TipStatus::Invalid),
                ],
            ))
            .then_alerts(&[("invalid_block", Firing), ("consensus_split", Firing)]);
    }

    #[test]
    fn an_invalid_block_is_one_incident_listing_the_nodes_that_rejected_it() {
        let then = given(&[])
            .when_all(&[
                invalid("n0", t(0.0), 121, 121, "bad-cb-amount"),
                invalid("n1", t(0.1), 121, 121, "bad-cb-amount"),
                invalid("n2", t(0.2), 121, 121, "bad-cb-amount"),
            ])
            .then_alerts(&[("invalid_block", Firing)]);
        assert_eq!(
            ev_value(then.alert("invalid_block"), "reason"),
            "bad-cb-amount"
        );
        let then = then
            .and()
            .when_tick(t(4000.0))
            .then_alerts(&[("invalid_block", Resolved)]);
        assert_eq!(ev_value(then.alert("invalid_block"), "nodes"), "n0,n1,n2");
    }

    #[test]
    fn a_block_connected_by_one_node_and_rejected_by_another_is_a_consensus_split() {
        let mut bad = block(bh(121), 121, bh(120));
        bad.coinbase_value += bitcoin::Amount::ONE_BTC;
        let then = given(&[invalid("n0", t(0.0), 121, 121, "bad-cb-amount")])
            .when(&env("n1", t(1.0), bad))
            .then_alerts(&[("consensus_split", Firing)]);
        let a = then.alert("consensus_split");
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(ev_value(a, "connected_by"), "n1");
        assert_eq!(ev_value(a, "rejected_by"), "n0");
    }

    /// Honest block 11 is public at 0 s; a branch 211, 212 from a withholder outside the fleet
    /// appears at 100.25 s, within half a second, on every node, and wins.
    fn withheld_release() -> Vec<Envelope> {
        let mut evs = normal_chain(&["n0", "n1", "n2"], 1, 10);
        let base = 6000.0 + 60.0;
        evs.push(env("n0", t(base), block(bh(11), 11, bh(10))));
        evs.push(env("n1", t(base + 1.0), block(bh(11), 11, bh(10))));
        // Released ten seconds after the losing block, as a withholder does when the honest
        // block appears. (Off whole seconds: a log time on a whole second may be a coarse one.)
        evs.push(seen("n2", t(base + 10.25), 211, BlockStage::Header));
        evs.push(seen("n2", t(base + 10.75), 212, BlockStage::Header));
        evs.push(seen("n1", t(base + 10.8), 211, BlockStage::Header));
        evs.push(seen("n1", t(base + 10.9), 212, BlockStage::Header));
        evs.push(env("n0", t(base + 11.0), block(bh(211), 11, bh(10))));
        evs.push(env("n0", t(base + 11.2), block(bh(212), 12, bh(211))));
        evs
    }

    #[test]
    fn a_withheld_branch_released_at_once_that_wins_a_reorg_is_suspected_selfish_mining() {
        let then = given(&withheld_release())
            .when(&reorg(
                "n0",
                t(6161.3),
                10,
                10,
                &[11],
                &[211, 212],
                Source::Zmq,
            ))
            .then_alerts(&[("reorg", Firing), ("selfish_mining", Firing)]);
        let a = then.alert("selfish_mining");
        assert_eq!(ev_value(a, "losing_block"), bh(11).to_string());
        assert_eq!(
            ev_value(a, "winning_blocks"),
            format!("{},{}", bh(211), bh(212))
        );
        assert_eq!(ev_value(a, "release_interval"), "0.500s");
        assert_eq!(ev_value(a, "delay_after_losing_block"), "10.250s");
        assert_eq!(ev_value(a, "winning_first_seen_by"), "n2,n2");
        assert_eq!(ev_value(a, "burst_nodes"), "n0,n1,n2");
        assert_eq!(ev_value(a, "early_nodes"), "");
    }

    #[test]
    fn selfish_mining_waits_for_first_seen_times_that_arrive_after_the_reorg() {
        let mut evs = withheld_release();
        // The winning blocks' sightings arrive only after n0's reorg.
        let late: Vec<Envelope> = evs.drain(evs.len() - 6..).collect();
        given(&evs)
            .when(&reorg(
                "n0",
                t(6161.3),
                10,
                10,
                &[11],
                &[211, 212],
                Source::Zmq,
            ))
            .then_alerts(&[("reorg", Firing)])
            .and()
            .when_all(&late)
            .then_alerts(&[("selfish_mining", Firing)]);
    }

    const FLEET: [&str; 4] = ["n0", "n1", "n2", "n3"];

    /// `node` connected block number `i` at `height` on block number `prev`, at `s` seconds.
    fn conn(node: &str, s: f64, i: u32, height: u32, prev: u32) -> Envelope {
        env(node, t(s), block(bh(i), height, bh(prev)))
    }

    /// `node` saw the header of block number `i` at `height`, at `s` seconds.
    fn hdr(node: &str, s: f64, i: u32, height: u32) -> Envelope {
        env(
            node,
            t(s),
            schema::event::BlockSeen {
                hash: bh(i),
                height: Some(Height(height)),
                stage: BlockStage::Header,
                peer: Some(1),
                source: Source::Log,
            },
        )
    }

    /// `node` left block 11 for 211, 212 (fork after block 10).
    fn reorg_to_211(node: &str, s: f64) -> Envelope {
        reorg(node, t(s), 10, 10, &[11], &[211, 212], Source::Zmq)
    }

    /// Thresholds a regtest fleet uses: blocks come milliseconds apart.
    fn regtest_cfg() -> ChainConfig {
        ChainConfig {
            selfish_release_window_secs: 0.1,
            selfish_check_secs: 1.0,
            rapid_run_window_secs: 0.05,
            ..cfg()
        }
    }

    /// Mainnet scale. n3 withholds 211 (mined at 6100 s) and 212 (6300 s); n0's block 11 is
    /// public at 6400 s; n3 releases both at 6420 s and n0, n1, n2 get them within 0.5 s.
    fn mainnet_withholder_in_the_fleet() -> Vec<Envelope> {
        let mut evs = normal_chain(&FLEET, 1, 10);
        evs.extend([
            conn("n3", 6100.0, 211, 11, 10),
            conn("n3", 6300.0, 212, 12, 211),
            conn("n0", 6400.0, 11, 11, 10),
            conn("n1", 6400.5, 11, 11, 10),
            conn("n2", 6401.0, 11, 11, 10),
            hdr("n3", 6400.7, 11, 11),
            hdr("n0", 6420.0, 211, 11),
            hdr("n0", 6420.1, 212, 12),
            hdr("n1", 6420.2, 211, 11),
            hdr("n1", 6420.3, 212, 12),
            hdr("n2", 6420.4, 211, 11),
            hdr("n2", 6420.5, 212, 12),
        ]);
        evs
    }

    #[test]
    fn a_withholder_inside_the_fleet_does_not_hide_its_release_and_is_named() {
        let then = given(&mainnet_withholder_in_the_fleet())
            .when(&reorg_to_211("n0", 6421.0))
            .then_alerts(&[("reorg", Firing), ("selfish_mining", Firing)]);
        let a = then.alert("selfish_mining");
        assert_eq!(ev_value(a, "early_nodes"), "n3");
        assert_eq!(ev_value(a, "early_first_seen"), fmt_time(t(6100.0)));
        assert_eq!(ev_value(a, "burst_nodes"), "n0,n1,n2");
        assert_eq!(ev_value(a, "winning_first_seen_by"), "n3,n3");
        assert_eq!(ev_value(a, "released_at"), fmt_time(t(6420.0)));
        assert_eq!(ev_value(a, "withheld_for"), "120.000s");
        assert_eq!(ev_value(a, "delay_after_losing_block"), "20.000s");
        assert_eq!(ev_value(a, "release_interval"), "0.100s");
        then.and()
            .when_all(&[reorg_to_211("n1", 6421.2), reorg_to_211("n2", 6421.4)])
            .then_no_alert();
    }

    #[test]
    fn a_partition_whose_sides_both_mined_in_the_open_is_a_partition_reorg_not_selfish_mining() {
        // Mainnet scale: n2, n3 mine 211 and (ten minutes later) 212; n0, n1 mine 11 in
        // between; the partition heals at 9000 s.
        let mut evs = normal_chain(&FLEET, 1, 10);
        evs.extend([
            conn("n2", 6100.0, 211, 11, 10),
            conn("n3", 6100.5, 211, 11, 10),
            conn("n0", 6200.0, 11, 11, 10),
            conn("n1", 6200.5, 11, 11, 10),
            conn("n2", 6700.0, 212, 12, 211),
            conn("n3", 6700.5, 212, 12, 211),
            hdr("n0", 9000.0, 211, 11),
            hdr("n0", 9000.1, 212, 12),
            hdr("n2", 9000.1, 11, 11),
            hdr("n1", 9000.2, 211, 11),
            hdr("n3", 9000.2, 11, 11),
            hdr("n1", 9000.3, 212, 12),
        ]);
        let then = given(&evs)
            .when(&reorg_to_211("n0", 9001.0))
            .then_alerts(&[("reorg", Firing), ("partition_reorg", Firing)]);
        let a = then.alert("partition_reorg");
        assert_eq!(a.severity, Severity::Warning);
        assert_eq!(ev_value(a, "cut_off_nodes"), "n0,n1");
        assert_eq!(ev_value(a, "early_nodes"), "n2,n3");
        assert_eq!(ev_value(a, "cut_off_for"), "2300.000s");
        then.and().when(&reorg_to_211("n1", 9001.2)).then_no_alert();
    }

    #[test]
    fn a_race_whose_losing_side_heard_of_the_winner_only_with_the_next_block_is_no_release() {
        // Mainnet scale: 11 reaches n0, n1, n2 first; n3's 211 stays with n3 until n3 finds
        // 212 ten minutes later, then both reach the rest together. Nothing was held back.
        let mut evs = normal_chain(&FLEET, 1, 10);
        evs.extend([
            conn("n0", 6100.0, 11, 11, 10),
            conn("n1", 6100.5, 11, 11, 10),
            conn("n2", 6101.0, 11, 11, 10),
            conn("n3", 6102.0, 211, 11, 10),
            conn("n3", 6700.0, 212, 12, 211),
            hdr("n0", 6700.5, 211, 11),
            hdr("n0", 6700.6, 212, 12),
            hdr("n1", 6700.7, 211, 11),
            hdr("n1", 6700.8, 212, 12),
            hdr("n2", 6700.9, 211, 11),
            hdr("n2", 6701.0, 212, 12),
        ]);
        given(&evs)
            .when(&reorg_to_211("n0", 6701.5))
            .then_alerts(&[("reorg", Firing)])
            .and()
            .when_tick(t(6701.5 + 601.0))
            .then_no_alert();
    }

    #[test]
    fn regtest_a_release_within_50_ms_after_the_losing_block_is_selfish_mining() {
        // n3 mines 211, 212 10 ms apart while cut off; n0's 11 reaches n0, n1, n2; n3
        // reconnects and they get both within 20-30 ms. n4 knew the fork but never gets the
        // branch, so the verdict waits for selfish_check_secs (1 s).
        let mut evs = normal_chain(&["n0", "n1", "n2", "n3", "n4"], 1, 10);
        evs.extend([
            conn("n3", 6100.000, 211, 11, 10),
            conn("n3", 6100.010, 212, 12, 211),
            conn("n0", 6100.300, 11, 11, 10),
            conn("n1", 6100.305, 11, 11, 10),
            conn("n2", 6100.310, 11, 11, 10),
            conn("n4", 6100.312, 11, 11, 10),
            hdr("n0", 6100.800, 211, 11),
            hdr("n1", 6100.805, 211, 11),
            hdr("n2", 6100.810, 211, 11),
            hdr("n0", 6100.820, 212, 12),
            hdr("n1", 6100.825, 212, 12),
            hdr("n2", 6100.830, 212, 12),
        ]);
        let then = testkit::given(ChainDetector::new(regtest_cfg()), &evs)
            .when(&reorg_to_211("n0", 6100.9))
            .then_alerts(&[("reorg", Firing)])
            .and()
            .when_tick(t(6101.8))
            .then_no_alert()
            .and()
            .when_tick(t(6102.0))
            .then_alerts(&[("selfish_mining", Firing)]);
        let a = then.alert("selfish_mining");
        assert_eq!(a.starts_at, t(6100.9));
        assert_eq!(ev_value(a, "early_nodes"), "n3");
        assert_eq!(ev_value(a, "burst_nodes"), "n0,n1,n2");
        assert_eq!(ev_value(a, "release_interval"), "0.020s");
    }

    #[test]
    fn regtest_a_partition_is_no_selfish_mining_whatever_the_order_and_pace_of_its_blocks() {
        // n2, n3 mine 211 at `w` and 212 `gap` later (600 ms, or 10 ms with
        // generatetoaddress); n0, n1 mine 11 at `l`; the partition heals at 1.5 s. When 11
        // came first and 212 fast, the fleet-wide first sightings alone look like a release.
        for (w, l, gap) in [(0.0, 0.2, 0.6), (0.0, 0.2, 0.01), (0.2, 0.0, 0.01)] {
            let mut evs = normal_chain(&FLEET, 1, 10);
            evs.extend([
                conn("n2", 6100.0 + w, 211, 11, 10),
                conn("n3", 6100.002 + w, 211, 11, 10),
                conn("n0", 6100.0 + l, 11, 11, 10),
                conn("n1", 6100.002 + l, 11, 11, 10),
                conn("n2", 6100.0 + w + gap, 212, 12, 211),
                conn("n3", 6100.002 + w + gap, 212, 12, 211),
                hdr("n0", 6101.500, 211, 11),
                hdr("n1", 6101.505, 211, 11),
                hdr("n2", 6101.505, 11, 11),
                hdr("n0", 6101.510, 212, 12),
                hdr("n3", 6101.510, 11, 11),
                hdr("n1", 6101.515, 212, 12),
            ]);
            let then = testkit::given(ChainDetector::new(regtest_cfg()), &evs)
                .when(&reorg_to_211("n0", 6101.52))
                .then_alerts(&[("reorg", Firing), ("partition_reorg", Firing)]);
            assert_eq!(
                ev_value(then.alert("partition_reorg"), "cut_off_nodes"),
                "n0,n1"
            );
        }
    }

    #[test]
    fn regtest_a_race_decided_in_the_open_is_no_release() {
        // 11 and 211 are found 2 ms apart, everyone hears of both; 212 comes 500 ms later.
        let mut evs = normal_chain(&FLEET, 1, 10);
        evs.extend([
            conn("n0", 6100.000, 11, 11, 10),
            conn("n1", 6100.002, 211, 11, 10),
            conn("n2", 6100.003, 11, 11, 10),
            conn("n3", 6100.003, 211, 11, 10),
            hdr("n0", 6100.004, 211, 11),
            hdr("n2", 6100.005, 211, 11),
            hdr("n1", 6100.004, 11, 11),
            conn("n1", 6100.500, 212, 12, 211),
            conn("n3", 6100.502, 212, 12, 211),
            hdr("n0", 6100.503, 212, 12),
            hdr("n2", 6100.504, 212, 12),
        ]);
        testkit::given(ChainDetector::new(regtest_cfg()), &evs)
            .when(&reorg_to_211("n0", 6100.51))
            .then_alerts(&[("reorg", Firing)])
            .and()
            .when_tick(t(6102.0))
            .then_no_alert();
    }

    #[test]
    fn regtest_a_fleet_script_with_whole_second_logs_gives_one_partition_and_one_release() {
        // A 4-node regtest fleet, blocks 1.5 s apart in the open, debug.log without
        // -logtimemicros: each node logs a header (or its own tip) on a whole second and ZMQ
        // reports each connect exactly.
        let log = |node: &str, s: f64, i: u32, h: u32| hdr(node, s.floor(), i, h);
        let mut evs = normal_chain(&FLEET, 1, 10);
        // n0, cut off, mines 11-13; n1 mines 311-314 in the open; n0 rejoins at 6106.25 s.
        for (k, i) in [11, 12, 13].into_iter().enumerate() {
            let at = 6100.1 + 0.01 * k as f64;
            evs.push(conn("n0", at, i, i, i - 1));
            evs.push(log("n0", at, i, i));
        }
        for (k, i) in [311, 312, 313, 314].into_iter().enumerate() {
            let at = 6100.2 + 1.5 * k as f64;
            let (h, prev) = (11 + k as u32, if k == 0 { 10 } else { i - 1 });
            evs.push(conn("n1", at, i, h, prev));
            for node in ["n2", "n3"] {
                evs.push(log(node, at + 0.003, i, h));
                evs.push(conn(node, at + 0.005, i, h, prev));
            }
            evs.push(log("n0", 6106.25, i, h));
        }
        for (k, i) in [311, 312, 313, 314].into_iter().enumerate() {
            let prev = if k == 0 { 10 } else { i - 1 };
            evs.push(conn(
                "n0",
                6106.30 + 0.01 * k as f64,
                i,
                11 + k as u32,
                prev,
            ));
        }
        for node in ["n1", "n2", "n3"] {
            for i in [11, 12, 13] {
                evs.push(log(node, 6106.26, i, i));
            }
        }
        evs.push(reorg(
            "n0",
            t(6106.34),
            10,
            10,
            &[13, 12, 11],
            &[311, 312, 313, 314],
            Source::Zmq,
        ));
        // n3, cut off, mines 411-413; n0 mines 511 and 512 in the open; n3 rejoins at 6111.2 s.
        for (k, i) in [411, 412, 413].into_iter().enumerate() {
            let at = 6108.01 + 0.01 * k as f64;
            let prev = if k == 0 { 314 } else { i - 1 };
            evs.push(conn("n3", at, i, 15 + k as u32, prev));
            evs.push(log("n3", at, i, 15 + k as u32));
        }
        for (k, i) in [511, 512].into_iter().enumerate() {
            let at = 6109.55 + 1.55 * k as f64;
            let prev = if k == 0 { 314 } else { i - 1 };
            evs.push(conn("n0", at, i, 15 + k as u32, prev));
            for node in ["n1", "n2"] {
                evs.push(log(node, at + 0.003, i, 15 + k as u32));
                evs.push(conn(node, at + 0.005, i, 15 + k as u32, prev));
            }
            evs.push(log("n3", 6111.21, i, 15 + k as u32));
        }
        for node in ["n0", "n1", "n2"] {
            for (k, i) in [411, 412, 413].into_iter().enumerate() {
                let prev = if k == 0 { 314 } else { i - 1 };
                evs.push(log(node, 6111.2, i, 15 + k as u32));
                evs.push(conn(
                    node,
                    6111.25 + 0.01 * k as f64,
                    i,
                    15 + k as u32,
                    prev,
                ));
            }
        }
        for node in ["n0", "n1", "n2"] {
            evs.push(reorg(
                node,
                t(6111.3),
                314,
                14,
                &[512, 511],
                &[411, 412, 413],
                Source::Zmq,
            ));
        }
        // Any window from the release's ~50 ms to a third of the open spacing will do.
        for window in [0.1, 0.5] {
            let cfg = ChainConfig {
                selfish_release_window_secs: window,
                ..regtest_cfg()
            };
            let outs = run(&mut ChainDetector::new(cfg), &evs);
            let alerts: Vec<&Alert> = outs
                .iter()
                .filter_map(Output::as_alert)
                .filter(|a| a.alert_kind == "selfish_mining" || a.alert_kind == "partition_reorg")
                .collect();
            assert_eq!(alerts.len(), 2, "{alerts:#?}");
            let (partition, selfish) = (alerts[0], alerts[1]);
            assert_eq!(partition.alert_kind, "partition_reorg");
            assert_eq!(partition.node.as_ref().map(|n| n.as_str()), Some("n0"));
            assert_eq!(ev_value(partition, "cut_off_nodes"), "n0");
            assert_eq!(ev_value(partition, "early_nodes"), "n1,n2,n3");
            assert_eq!(selfish.alert_kind, "selfish_mining");
            assert_eq!(ev_value(selfish, "early_nodes"), "n3");
            assert_eq!(ev_value(selfish, "burst_nodes"), "n0,n1,n2");
        }
        // The mainnet window (30 s) is far too wide for blocks 1.5 s apart: every node's view
        // is "one burst", and the verdicts are not given.
        let outs = run(&mut ChainDetector::new(cfg()), &evs);
        assert!(!outs
            .iter()
            .filter_map(Output::as_alert)
            .any(|a| { a.alert_kind == "selfish_mining" || a.alert_kind == "partition_reorg" }));
    }

    #[test]
    fn release_verdicts_replay_with_the_same_ids_and_ignore_duplicates() {
        let mut evs = mainnet_withholder_in_the_fleet();
        evs.push(reorg_to_211("n0", 6421.0));
        evs.push(reorg_to_211("n1", 6421.2));
        let outs = assert_replay_and_duplicates_agree(|| ChainDetector::new(cfg()), &evs);
        let kinds: Vec<&str> = outs
            .iter()
            .filter_map(Output::as_alert)
            .map(|a| a.alert_kind.as_str())
            .collect();
        assert_eq!(kinds, ["reorg", "selfish_mining"]);
    }

    #[test]
    fn a_natural_race_won_ten_minutes_later_is_not_selfish_mining() {
        let mut evs = normal_chain(&["n0", "n1"], 1, 10);
        evs.push(env("n0", t(6060.0), block(bh(11), 11, bh(10))));
        evs.push(env("n1", t(6062.0), block(bh(211), 11, bh(10))));
        evs.push(env("n1", t(6660.0), block(bh(212), 12, bh(211))));
        given(&evs)
            .when(&reorg(
                "n0",
                t(6661.0),
                10,
                10,
                &[11],
                &[211, 212],
                Source::Zmq,
            ))
            .then_alerts(&[("reorg", Firing)]);
    }

    #[test]
    fn a_race_the_whole_fleet_lost_and_heard_of_with_the_next_block_is_not_selfish_mining() {
        // ZMQ-only agents: no header sightings. The fleet had block 11; the competitor 211 and
        // its child 212 arrive together five minutes later, when the reorg happens.
        let mut evs = normal_chain(&["n0", "n1"], 1, 10);
        evs.push(env("n0", t(6060.0), block(bh(11), 11, bh(10))));
        evs.push(env("n1", t(6061.0), block(bh(11), 11, bh(10))));
        for node in ["n0", "n1"] {
            evs.push(env(node, t(6360.0), block(bh(211), 11, bh(10))));
            evs.push(env(node, t(6360.1), block(bh(212), 12, bh(211))));
        }
        given(&evs)
            .when(&reorg(
                "n0",
                t(6360.2),
                10,
                10,
                &[11],
                &[211, 212],
                Source::Zmq,
            ))
            .then_alerts(&[("reorg", Firing)]);
    }

    #[test]
    fn three_blocks_first_seen_within_the_window_are_a_rapid_run_once() {
        let mut evs = normal_chain(&["n0", "n1"], 1, 10);
        evs.push(connected("n0", t(6060.0), 11));
        evs.push(connected("n0", t(6070.0), 12));
        let then = given(&evs)
            .when(&connected("n0", t(6080.0), 13))
            .then_alerts(&[("rapid_blocks", Firing)]);
        let a = then.alert("rapid_blocks");
        assert_eq!(ev_value(a, "interval"), "20.000s");
        assert_eq!(ev_value(a, "heights"), "11,12,13");
        // The run growing is the same incident.
        then.and()
            .when_all(&[
                connected("n1", t(6081.0), 13),
                connected("n0", t(6085.0), 14),
            ])
            .then_no_alert();
    }
}
