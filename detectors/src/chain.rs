//! The chain detector: reorgs, stale tips, invalid blocks, consensus splits, suspected selfish
//! mining and runs of blocks in rapid succession.
//!
//! Inputs: `block_seen`, `block_connected` (first-seen times across the fleet, parent links),
//! `reorg`, `chain_tips`, `invalid_block`. Every alert here is one-shot ([`OneShots`]): it fires
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
//! - suspected selfish mining: the reorg it belongs to.
//! - a rapid run: its first block; a run that keeps growing stays one incident.
//!
//! State reaches back `remember_secs` (default two days) of event time: per-block first-seen
//! times and fired fingerprints older than that are dropped, so a replay from further back
//! rebuilds them.

use std::collections::{BTreeSet, HashMap, HashSet};

use bitcoin::BlockHash;
use schema::event::{
    Alert, BlockConnected, ChainTips, Event, InvalidBlock, Reorg, Severity, TipStatus,
};
use schema::{Envelope, EventId, Height, NodeId, UnixMicros};
use serde::{Deserialize, Serialize};

use crate::incident::{evidence, firing, fmt_secs, fmt_time, join, set_evidence, OneShots};
use crate::seen::SeenSet;
use crate::{secs, Detector, Input, Output};

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
    /// Selfish mining: the winning branch of a reorg has at least this many blocks...
    pub selfish_min_blocks: usize,
    /// ...all first seen within this many seconds of each other, after the losing block.
    pub selfish_release_window_secs: u64,
    /// How long after a reorg its blocks' first-seen times may still arrive for the
    /// selfish-mining check, seconds.
    pub selfish_check_secs: u64,
    /// A rapid run is this many consecutive blocks...
    pub rapid_run_blocks: usize,
    /// ...first seen within this many seconds (natural odds for 3 blocks in 30 s: about one
    /// in 800 blocks).
    pub rapid_run_window_secs: u64,
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
            selfish_release_window_secs: 30,
            selfish_check_secs: 600,
            rapid_run_blocks: 3,
            rapid_run_window_secs: 30,
        }
    }
}

/// What the fleet knows about one block.
#[derive(Debug, Clone)]
struct BlockInfo {
    first_seen: UnixMicros,
    first_node: NodeId,
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

/// Reorgs, stale tips, invalid blocks, consensus splits, selfish mining, rapid runs.
#[derive(Debug, Clone)]
pub struct ChainDetector {
    config: ChainConfig,
    seen: SeenSet,
    now: UnixMicros,
    blocks: HashMap<BlockHash, BlockInfo>,
    incidents: OneShots,
    in_rapid_run: HashSet<BlockHash>,
    selfish: Vec<SelfishCandidate>,
    next_prune: UnixMicros,
}

impl ChainDetector {
    /// A detector with no history.
    pub fn new(config: ChainConfig) -> Self {
        ChainDetector {
            seen: SeenSet::new(config.seen_capacity),
            incidents: OneShots::new(config.incident_hold_secs, config.remember_secs),
            config,
            now: UnixMicros(i64::MIN),
            blocks: HashMap::new(),
            in_rapid_run: HashSet::new(),
            selfish: Vec::new(),
            next_prune: UnixMicros(i64::MIN),
        }
    }

    /// Records that `node` saw `hash` at `at`; returns whether the block was new to the fleet.
    fn observe(
        &mut self,
        hash: BlockHash,
        height: Option<Height>,
        prev: Option<BlockHash>,
        node: &NodeId,
        at: UnixMicros,
    ) -> bool {
        match self.blocks.get_mut(&hash) {
            Some(b) => {
                if at < b.first_seen {
                    b.first_seen = at;
                    b.first_node = node.clone();
                }
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
            source: i.source.as_str(),
            branch_len: None,
        };
        self.on_rejection(&r, env, out);
    }

    /// A node rejected a block: one `invalid_block` incident per hash whichever source reports
    /// it first; later reports (other nodes, other sources) join it.
    fn on_rejection(&mut self, r: &Rejection<'_>, env: &Envelope, out: &mut Vec<Output>) {
        self.observe(r.hash, r.height, None, &env.node, env.observed_at);
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
                evidence("source", r.source),
                evidence("sources", r.source),
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
        let winner = r.connected.first().copied().unwrap_or(r.new_tip);
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
            && !self.incidents.known(&selfish_fp)
        {
            self.selfish.push(SelfishCandidate {
                fingerprint: selfish_fp,
                reorg: r.clone(),
                node: env.node.clone(),
                reported_at: env.observed_at,
                deadline: env
                    .observed_at
                    .plus_micros(secs(self.config.selfish_check_secs)),
            });
        }
    }

    /// Checks pending reorgs for a withheld branch released at once.
    fn check_selfish(&mut self, cause: EventId, out: &mut Vec<Output>) {
        if self.selfish.is_empty() {
            return;
        }
        let window = secs(self.config.selfish_release_window_secs);
        let mut fired = Vec::new();
        for (idx, c) in self.selfish.iter().enumerate() {
            let Some(alert) = self.selfish_alert(c, window, cause) else {
                continue;
            };
            fired.push(idx);
            if let Some(a) = self.incidents.fire(alert, Some(&c.node)) {
                out.push(Output::Alert(a));
            }
        }
        for idx in fired.into_iter().rev() {
            self.selfish.remove(idx);
        }
        let now = self.now;
        self.selfish.retain(|c| c.deadline > now);
    }

    fn selfish_alert(&self, c: &SelfishCandidate, window: i64, cause: EventId) -> Option<Alert> {
        // The losing branch's first block (disconnected lists the old tip first).
        let losing = *c.reorg.disconnected.last()?;
        let losing_seen = self.blocks.get(&losing)?.first_seen;
        let mut winning = Vec::with_capacity(c.reorg.connected.len());
        for h in &c.reorg.connected {
            let info = self.blocks.get(h)?;
            winning.push((*h, info));
        }
        let first = winning.iter().map(|(_, i)| i.first_seen).min()?;
        let last = winning.iter().map(|(_, i)| i.first_seen).max()?;
        let span = last.micros_since(first);
        if span > window || losing_seen >= first {
            return None;
        }
        let mut a = firing(
            "selfish_mining",
            Severity::Warning,
            c.fingerprint.clone(),
            c.reported_at,
            cause,
        );
        a.node = Some(c.node.clone());
        a.subject = Some(c.reorg.new_tip.to_string());
        a.summary = format!(
            "suspected selfish mining: {} blocks after height {} first seen within {}, {} after the block they replaced",
            winning.len(),
            c.reorg.fork_height,
            fmt_secs(span),
            fmt_secs(first.micros_since(losing_seen)),
        );
        a.evidence = vec![
            evidence("fork_point", c.reorg.fork_point),
            evidence("fork_height", c.reorg.fork_height),
            evidence("losing_block", losing),
            evidence("losing_first_seen", fmt_time(losing_seen)),
            evidence("winning_blocks", join(winning.iter().map(|(h, _)| h))),
            evidence(
                "winning_first_seen",
                join(winning.iter().map(|(_, i)| fmt_time(i.first_seen))),
            ),
            evidence(
                "winning_first_seen_by",
                join(winning.iter().map(|(_, i)| &i.first_node)),
            ),
            evidence("release_interval", fmt_secs(span)),
            evidence(
                "delay_after_losing_block",
                fmt_secs(first.micros_since(losing_seen)),
            ),
            evidence("reorg_depth", c.reorg.depth),
        ];
        Some(a)
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
        if span > secs(self.config.rapid_run_window_secs) {
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
                    source: "chain_tips",
                    branch_len: Some(tip.branch_len),
                };
                self.on_rejection(&r, env, out);
                continue;
            }
            if !matches!(tip.status, TipStatus::ValidFork | TipStatus::ValidHeaders) {
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

    fn prune(&mut self) {
        if self.now < self.next_prune {
            return;
        }
        let horizon = self.now.plus_micros(-secs(self.config.remember_secs));
        self.blocks.retain(|_, b| b.first_seen >= horizon);
        let blocks = &self.blocks;
        self.in_rapid_run.retain(|h| blocks.contains_key(h));
        self.next_prune = self.now.plus_micros(600_000_000);
    }
}

fn opt_height(h: Option<Height>) -> String {
    h.map(|h| h.to_string()).unwrap_or_else(|| "unknown".into())
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
    source: &'static str,
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
    if !sources.split(',').any(|s| s == r.source) {
        set_evidence(a, "sources", format!("{sources},{}", r.source));
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

impl Detector for ChainDetector {
    fn name(&self) -> &'static str {
        "chain"
    }

    fn apply(&mut self, input: Input<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        if let Input::Event(env) = input {
            if !self.seen.insert(env.id) {
                return out;
            }
        }
        self.now = self.now.max(input.time());
        if let Input::Event(env) = input {
            let mut block_news = false;
            match &env.event {
                Event::BlockSeen(b) => {
                    self.observe(b.hash, b.height, None, &env.node, env.observed_at);
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
                self.check_selfish(env.id, &mut out);
            }
        } else {
            self.check_selfish(input.cause(), &mut out);
        }
        out.extend(
            self.incidents
                .expire(self.now, input.cause())
                .into_iter()
                .map(Output::Alert),
        );
        self.prune();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// Honest block 11 is public at 0 s; a withheld branch 11', 12' appears at 100 s, 101 s and
    /// wins.
    fn withheld_release() -> Vec<Envelope> {
        let mut evs = normal_chain(&["n0", "n1", "n2"], 1, 10);
        let base = 6000.0 + 60.0;
        evs.push(env("n0", t(base), block(bh(11), 11, bh(10))));
        evs.push(env("n1", t(base + 1.0), block(bh(11), 11, bh(10))));
        evs.push(seen("n2", t(base + 100.0), 211, BlockStage::Header));
        evs.push(seen("n2", t(base + 100.5), 212, BlockStage::Header));
        evs.push(env("n0", t(base + 101.0), block(bh(211), 11, bh(10))));
        evs.push(env("n0", t(base + 101.2), block(bh(212), 12, bh(211))));
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
        assert_eq!(ev_value(a, "delay_after_losing_block"), "100.000s");
        assert_eq!(ev_value(a, "winning_first_seen_by"), "n2,n2");
    }

    #[test]
    fn selfish_mining_waits_for_first_seen_times_that_arrive_after_the_reorg() {
        let mut evs = withheld_release();
        // The winning blocks' first sightings arrive only after n0's reorg.
        let late: Vec<Envelope> = evs.drain(evs.len() - 4..).collect();
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
