//! The health detector: one node at a time, is it doing its job?
//!
//! Inputs: `node_status`, `mempool_snapshot`, `tx_rejected`, and ticks. Every alert here is a
//! condition with an open incident per node ([`Incidents`]): `Firing` when it starts,
//! `Resolved` (same fingerprint and `starts_at`) when it clears.
//!
//! | alert | fires | resolves |
//! | --- | --- | --- |
//! | `tip_stale` | the tip is older than `tip_max_age_secs`, counted from the later of its header time and the node's start (`observed_at - uptime`); never in initial block download or at genesis (`blocks == 0`) | a status with a fresh tip, or in IBD |
//! | `node_silent` | no `node_status` for `silent_after_secs` (checked on every input and tick; `starts_at` = last status + the limit) | the next status |
//! | `mempool_empty` | the node's mempool holds 0 transactions while more than `mempool_fleet_fraction` of the other nodes' figures taken within `mempool_max_skew_secs` of the node's hold at least `mempool_fleet_min_count`, on `mempool_empty_min_snapshots` consecutive figures of the node spanning at least `mempool_empty_min_secs` | the node's next figure is not empty, or the fleet's are empty too |
//! | `tx_rejections` | `rejection_burst` rejections with one reason within `rejection_window_secs` | fewer than half of that within the window (`ends_at` is computed from the rejection times, not from when a tick came) |
//! | `ibd` | a status says initial block download | a status says it is over |
//! | `peers_drop` | peers (in + out) fall below `(1 - peers_drop_fraction)` of the highest count in the last `peers_window_secs` (when that was at least `peers_min_baseline`) | peers climb back above that line |
//!
//! Time is event time: the watermark is the latest `observed_at` or tick seen. A host whose
//! clock runs ahead by more than `silent_after_secs` minus the status interval makes the
//! others look silent; keep hosts on NTP (`node_status.clock_offset_secs` shows the drift).
//!
//! Why `tip_stale` waits: a regtest node at genesis, or any node in initial block download, has
//! an old tip by design (the `ibd` alert covers IBD); a node that just restarted with an old
//! tip gets `tip_max_age_secs` from its start to connect a block before its tip counts as stale.
//! Why `mempool_empty` waits: while transactions relay, one poll of a node can be empty while
//! the others' polls (taken seconds apart) are not; only an empty mempool that stays empty, on
//! figures taken close together, is an incident. A figure is a `mempool_snapshot` or the
//! mempool count of a `node_status`.
//!
//! State per node: its last status time, latest mempool size, peer counts over
//! `peers_window_secs`, and at most `rejection_burst` rejection times per reason. A node with
//! no status for `forget_node_after_secs` is forgotten (its open alerts resolve).

use std::collections::{BTreeMap, VecDeque};

use schema::event::{Event, MempoolSnapshot, NodeStatus, Severity, TxRejected};
use schema::{Envelope, EventId, NodeId, UnixMicros};
use serde::{Deserialize, Serialize};

use crate::guard::{Analysis, Guarded};
use crate::incident::{evidence, firing, fmt_secs, fmt_time, set_evidence, Incidents};
use crate::{secs, Input, Output};

/// Thresholds of the health detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Event ids remembered to drop duplicates.
    pub seen_capacity: usize,
    /// A tip whose header time is older than this (at the status' `observed_at`), seconds.
    pub tip_max_age_secs: u64,
    /// A node with no `node_status` for this long is silent, seconds.
    pub silent_after_secs: u64,
    /// A node silent this long is forgotten, seconds.
    pub forget_node_after_secs: u64,
    /// Another node's mempool counts as non-empty from this many transactions.
    pub mempool_fleet_min_count: u64,
    /// An empty mempool alerts when more than this fraction of the other nodes' are non-empty.
    pub mempool_fleet_fraction: f64,
    /// ...and at least this many other nodes have figures within `mempool_max_skew_secs`.
    pub mempool_min_other_nodes: usize,
    /// Other nodes' mempool figures count against a node's only when taken within this many
    /// seconds of the node's own figure (snapshots close together), seconds.
    pub mempool_max_skew_secs: u64,
    /// An empty mempool alerts only after this many consecutive empty figures of the node...
    pub mempool_empty_min_snapshots: u32,
    /// ...spanning at least this many seconds (first to last).
    pub mempool_empty_min_secs: u64,
    /// Window for counting rejections, seconds.
    pub rejection_window_secs: u64,
    /// Rejections with one reason within the window that make a burst.
    pub rejection_burst: usize,
    /// Whether a node in initial block download alerts.
    pub alert_on_ibd: bool,
    /// A drop of this fraction of peers below the recent highest count alerts.
    pub peers_drop_fraction: f64,
    /// Drops are only judged when the recent highest count was at least this.
    pub peers_min_baseline: u32,
    /// How far back the recent highest peer count looks, seconds.
    pub peers_window_secs: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            seen_capacity: 100_000,
            tip_max_age_secs: 90 * 60,
            silent_after_secs: 120,
            forget_node_after_secs: 7 * 86_400,
            mempool_fleet_min_count: 10,
            mempool_fleet_fraction: 0.5,
            mempool_min_other_nodes: 2,
            mempool_max_skew_secs: 15,
            mempool_empty_min_snapshots: 2,
            mempool_empty_min_secs: 60,
            rejection_window_secs: 300,
            rejection_burst: 100,
            alert_on_ibd: true,
            peers_drop_fraction: 0.5,
            peers_min_baseline: 8,
            peers_window_secs: 600,
        }
    }
}

/// Consecutive figures of one node that showed it empty while the fleet's were not.
#[derive(Debug, Clone, Copy)]
struct EmptyStreak {
    since: UnixMicros,
    last: UnixMicros,
    figures: u32,
}

#[derive(Debug, Clone, Default)]
struct NodeState {
    last_status: Option<UnixMicros>,
    mempool: Option<(UnixMicros, u64)>,
    empty_streak: Option<EmptyStreak>,
    peers: VecDeque<(UnixMicros, u32)>,
    peers_line: Option<u32>,
}

/// Per-node health: stale tip, silence, empty mempool, rejection bursts, IBD, peer drops; the
/// health analysis with its duplicate filter and event clock.
pub type HealthDetector = Guarded<HealthAnalysis>;

/// The health analysis (see the module docs).
#[derive(Debug, Clone)]
pub struct HealthAnalysis {
    config: HealthConfig,
    nodes: BTreeMap<NodeId, NodeState>,
    rejections: BTreeMap<(NodeId, String), VecDeque<UnixMicros>>,
    incidents: Incidents,
    last_sweep: UnixMicros,
}

impl HealthAnalysis {
    fn fire(&mut self, alert: schema::event::Alert, out: &mut Vec<Output>) {
        if let Some(a) = self.incidents.fire(alert) {
            out.push(Output::Alert(a));
        }
    }

    fn resolve(&mut self, fp: &str, at: UnixMicros, cause: EventId, out: &mut Vec<Output>) {
        if let Some(a) = self.incidents.resolve(fp, at, cause) {
            out.push(Output::Alert(a));
        }
    }

    fn on_status(&mut self, s: &NodeStatus, env: &Envelope, out: &mut Vec<Output>) {
        let node = &env.node;
        let at = env.observed_at;
        self.resolve(&format!("node_silent:{node}"), at, env.id, out);
        let state = self.nodes.entry(node.clone()).or_default();
        state.last_status = Some(state.last_status.map_or(at, |l| l.max(at)));
        self.check_tip(s, env, out);

        // Initial block download.
        let fp = format!("ibd:{node}");
        if s.initial_block_download && self.config.alert_on_ibd {
            if !self.incidents.is_open(&fp) {
                let mut a = firing("ibd", Severity::Warning, fp, at, env.id);
                a.node = Some(node.clone());
                a.summary = format!("{node} is in initial block download at height {}", s.blocks);
                a.evidence = vec![
                    evidence("blocks", s.blocks),
                    evidence("headers", s.headers),
                    evidence(
                        "verification_progress",
                        format!("{:.6}", s.verification_progress),
                    ),
                ];
                self.fire(a, out);
            }
        } else {
            self.resolve(&fp, at, env.id, out);
        }

        self.check_peers(s, env, out);
        self.on_mempool_figure(node, at, s.mempool_count, env.id, out);
    }

    /// Tip age, by event time, from the later of the tip's header time and the node's start.
    fn check_tip(&mut self, s: &NodeStatus, env: &Envelope, out: &mut Vec<Output>) {
        let node = &env.node;
        let at = env.observed_at;
        let fp = format!("tip_stale:{node}");
        // At genesis (a fresh regtest node) or in IBD an old tip is expected, not stale.
        let judged = !s.initial_block_download && s.blocks.0 > 0;
        let Some(tip_time) = s.tip_time.map(UnixMicros::from_secs) else {
            return;
        };
        let started = at.plus_micros(-secs(s.uptime_secs));
        let stale_for = at.micros_since(tip_time.max(started));
        let limit = secs(self.config.tip_max_age_secs);
        if !judged || stale_for <= limit {
            self.resolve(&fp, at, env.id, out);
            return;
        }
        if self.incidents.is_open(&fp) {
            return;
        }
        let age = at.micros_since(tip_time);
        let mut a = firing("tip_stale", Severity::Warning, fp, at, env.id);
        a.node = Some(node.clone());
        a.subject = Some(s.best_block_hash.to_string());
        a.summary = format!(
            "{node}'s tip at height {} is {} old",
            s.blocks,
            fmt_secs(age)
        );
        a.evidence = vec![
            evidence("tip_hash", s.best_block_hash),
            evidence("tip_height", s.blocks),
            evidence("headers", s.headers),
            evidence("tip_time", fmt_time(tip_time)),
            evidence("observed_at", fmt_time(at)),
            evidence("tip_age", fmt_secs(age)),
            evidence("node_started_at", fmt_time(started)),
            evidence("stale_for", fmt_secs(stale_for)),
            evidence("limit", fmt_secs(limit)),
        ];
        self.fire(a, out);
    }

    fn check_peers(&mut self, s: &NodeStatus, env: &Envelope, out: &mut Vec<Output>) {
        let node = &env.node;
        let at = env.observed_at;
        let total = s.peers_in.saturating_add(s.peers_out);
        let window = secs(self.config.peers_window_secs);
        let fp = format!("peers_drop:{node}");
        let Some(state) = self.nodes.get_mut(node) else {
            return;
        };
        while state
            .peers
            .front()
            .is_some_and(|(t, _)| at.micros_since(*t) > window)
        {
            state.peers.pop_front();
        }
        let baseline = state.peers.iter().map(|(_, p)| *p).max();
        state.peers.push_back((at, total));
        if let Some(line) = state.peers_line {
            if total >= line {
                state.peers_line = None;
                let cause = env.id;
                self.resolve(&fp, at, cause, out);
            }
            return;
        }
        let Some(baseline) = baseline.filter(|b| *b >= self.config.peers_min_baseline) else {
            return;
        };
        let keep = (1.0 - self.config.peers_drop_fraction).clamp(0.0, 1.0);
        let line = (f64::from(baseline) * keep).ceil() as u32;
        if total >= line {
            return;
        }
        state.peers_line = Some(line);
        let mut a = firing("peers_drop", Severity::Warning, fp, at, env.id);
        a.node = Some(node.clone());
        a.summary = format!("{node}'s peers dropped from {baseline} to {total}");
        a.evidence = vec![
            evidence("peers", total),
            evidence("peers_in", s.peers_in),
            evidence("peers_out", s.peers_out),
            evidence("recent_max", baseline),
            evidence("recovery_line", line),
            evidence("window", fmt_secs(window)),
        ];
        self.fire(a, out);
    }

    fn on_snapshot(&mut self, m: &MempoolSnapshot, env: &Envelope, out: &mut Vec<Output>) {
        self.on_mempool_figure(&env.node, env.observed_at, m.count, env.id, out);
    }

    /// A mempool figure of `node` (a snapshot or a status' count): judges that node's mempool
    /// against the other nodes' figures taken close to it.
    fn on_mempool_figure(
        &mut self,
        node: &NodeId,
        at: UnixMicros,
        count: u64,
        cause: EventId,
        out: &mut Vec<Output>,
    ) {
        let state = self.nodes.entry(node.clone()).or_default();
        if state.mempool.is_some_and(|(t, _)| t > at) {
            return; // an older figure than the one already judged
        }
        state.mempool = Some((at, count));

        let skew = secs(self.config.mempool_max_skew_secs);
        let others: Vec<(&NodeId, u64)> = self
            .nodes
            .iter()
            .filter(|(n, _)| *n != node)
            .filter_map(|(n, s)| {
                s.mempool
                    .filter(|(t, _)| at.micros_since(*t).abs() <= skew)
                    .map(|(_, c)| (n, c))
            })
            .collect();
        let full = others
            .iter()
            .filter(|(_, c)| *c >= self.config.mempool_fleet_min_count)
            .count();
        let empty_alone = count == 0
            && others.len() >= self.config.mempool_min_other_nodes
            && full as f64 > self.config.mempool_fleet_fraction * others.len() as f64;
        let other_counts = others
            .iter()
            .map(|(n, c)| format!("{n}={c}"))
            .collect::<Vec<_>>()
            .join(",");
        let other_nodes = others.len();
        let fp = format!("mempool_empty:{node}");

        let Some(state) = self.nodes.get_mut(node) else {
            return;
        };
        if !empty_alone {
            state.empty_streak = None;
            self.resolve(&fp, at, cause, out);
            return;
        }
        let streak = state.empty_streak.get_or_insert(EmptyStreak {
            since: at,
            last: at,
            figures: 0,
        });
        if streak.figures == 0 || at > streak.last {
            streak.figures = streak.figures.saturating_add(1);
            streak.last = at;
        }
        let streak = *streak;
        let lasted = at.micros_since(streak.since);
        if streak.figures < self.config.mempool_empty_min_snapshots.max(1)
            || lasted < secs(self.config.mempool_empty_min_secs)
            || self.incidents.is_open(&fp)
        {
            return;
        }
        let mut a = firing("mempool_empty", Severity::Warning, fp, at, cause);
        a.node = Some(node.clone());
        a.summary = format!(
            "{node}'s mempool has been empty for {} while {full} of {other_nodes} other nodes' are not",
            fmt_secs(lasted)
        );
        a.evidence = vec![
            evidence("mempool_count", count),
            evidence("empty_since", fmt_time(streak.since)),
            evidence("empty_figures", streak.figures),
            evidence("other_nodes", other_nodes),
            evidence("other_nodes_non_empty", full),
            evidence("other_counts", other_counts),
            evidence("max_skew", fmt_secs(skew)),
        ];
        self.fire(a, out);
    }

    fn on_rejected(&mut self, r: &TxRejected, env: &Envelope, out: &mut Vec<Output>) {
        let key = (env.node.clone(), r.reason.clone());
        let burst = self.config.rejection_burst.max(1);
        let window = secs(self.config.rejection_window_secs);
        let times = self.rejections.entry(key).or_default();
        let at = env.observed_at;
        let pos = times.partition_point(|t| *t <= at);
        times.insert(pos, at);
        while times.len() > burst {
            times.pop_front();
        }
        let in_window = times
            .iter()
            .filter(|t| at.micros_since(**t) < window)
            .count();
        let fp = format!("tx_rejections:{}:{}", env.node, r.reason);
        if in_window >= burst && !self.incidents.is_open(&fp) {
            let first = times.front().copied().unwrap_or(at);
            let mut a = firing("tx_rejections", Severity::Warning, fp, at, env.id);
            a.node = Some(env.node.clone());
            a.subject = Some(r.txid.to_string());
            a.summary = format!(
                "{} rejected {in_window} transactions for {:?} within {}",
                env.node,
                r.reason,
                fmt_secs(window)
            );
            a.evidence = vec![
                evidence("reason", &r.reason),
                evidence("count", in_window),
                evidence("window", fmt_secs(window)),
                evidence("first_in_window", fmt_time(first)),
                evidence("last", fmt_time(at)),
                evidence("example_txid", r.txid),
                evidence("example_reason_text", &r.reason_text),
            ];
            self.fire(a, out);
        }
    }

    /// Silence, forgetting and the end of rejection bursts, by the watermark.
    fn sweep(&mut self, now: UnixMicros, cause: EventId, out: &mut Vec<Output>) {
        let silent = secs(self.config.silent_after_secs);
        let forget = secs(self.config.forget_node_after_secs);
        let mut forgotten = Vec::new();
        for (node, state) in &self.nodes {
            let Some(last) = state.last_status else {
                continue;
            };
            let fp = format!("node_silent:{node}");
            if now.micros_since(last) > forget {
                forgotten.push(node.clone());
            } else if now.micros_since(last) > silent && !self.incidents.is_open(&fp) {
                let mut a = firing(
                    "node_silent",
                    Severity::Warning,
                    fp,
                    last.plus_micros(silent),
                    cause,
                );
                a.node = Some(node.clone());
                a.summary = format!("no status from {node} since {}", fmt_time(last));
                a.evidence = vec![
                    evidence("last_status", fmt_time(last)),
                    evidence("limit", fmt_secs(silent)),
                ];
                if let Some(a) = self.incidents.fire(a) {
                    out.push(Output::Alert(a));
                }
            }
        }
        for node in forgotten {
            let last = self
                .nodes
                .get(&node)
                .and_then(|s| s.last_status)
                .unwrap_or(now);
            let end = last.plus_micros(forget);
            for kind in [
                "node_silent",
                "tip_stale",
                "ibd",
                "peers_drop",
                "mempool_empty",
            ] {
                let fp = format!("{kind}:{node}");
                if let Some(a) = self
                    .incidents
                    .resolve_with(&fp, end, cause, |a| set_evidence(a, "forgotten", "true"))
                {
                    out.push(Output::Alert(a));
                }
            }
            self.nodes.remove(&node);
        }

        // Rejection bursts end once fewer than half the burst remain in the window.
        let window = secs(self.config.rejection_window_secs);
        let half = (self.config.rejection_burst / 2).max(1);
        let mut ended = Vec::new();
        for ((node, reason), times) in &self.rejections {
            if times.len() < half {
                ended.push((node.clone(), reason.clone(), times.back().copied()));
                continue;
            }
            // The count drops below `half` once the half-th newest time leaves the window.
            let end = times[times.len() - half].plus_micros(window);
            if end <= now {
                ended.push((node.clone(), reason.clone(), Some(end)));
            }
        }
        for (node, reason, end) in ended {
            let fp = format!("tx_rejections:{node}:{reason}");
            if let Some(end) = end.filter(|_| self.incidents.is_open(&fp)) {
                let end = end.max(self.incidents.get(&fp).map_or(end, |a| a.starts_at));
                if let Some(a) = self.incidents.resolve(&fp, end, cause) {
                    out.push(Output::Alert(a));
                }
            }
            // Drop quiet reasons entirely so their number stays bounded.
            let key = (node, reason);
            if self
                .rejections
                .get(&key)
                .and_then(|t| t.back())
                .is_some_and(|t| now.micros_since(*t) > window)
            {
                self.rejections.remove(&key);
            }
        }
    }
}

impl Analysis for HealthAnalysis {
    type Config = HealthConfig;

    fn new(config: HealthConfig) -> Self {
        HealthAnalysis {
            config,
            nodes: BTreeMap::new(),
            rejections: BTreeMap::new(),
            incidents: Incidents::new(),
            last_sweep: UnixMicros(i64::MIN),
        }
    }

    fn seen_capacity(&self) -> usize {
        self.config.seen_capacity
    }

    fn name(&self) -> crate::DetectorName {
        crate::DetectorName::Health
    }

    fn inputs(&self) -> &'static [schema::Kind] {
        use schema::Kind;
        &[Kind::NodeStatus, Kind::MempoolSnapshot, Kind::TxRejected]
    }

    fn analyse(&mut self, input: Input<'_>, now: UnixMicros) -> Vec<Output> {
        let mut out = Vec::new();
        if let Input::Event(env) = input {
            match &env.event {
                Event::NodeStatus(s) => self.on_status(s, env, &mut out),
                Event::MempoolSnapshot(m) => self.on_snapshot(m, env, &mut out),
                Event::TxRejected(r) => self.on_rejected(r, env, &mut out),
                _ => {}
            }
        }
        // Sweeping once per second of event time is plenty for limits of minutes.
        if now.micros_since(self.last_sweep) >= 1_000_000 {
            self.last_sweep = now;
            self.sweep(now, input.cause(), &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, *};
    use schema::event::AlertState::*;
    use schema::Height;

    fn given(events: &[Envelope]) -> Given<HealthDetector> {
        testkit::given(HealthDetector::new(HealthConfig::default()), events)
    }

    /// A healthy status from `node` at `s` seconds, tip one minute old.
    fn ok(node: &str, s: f64) -> Envelope {
        env(node, t(s), status(100, t(s - 60.0)))
    }

    fn with(node: &str, s: f64, f: impl FnOnce(&mut NodeStatus)) -> Envelope {
        let mut st = status(100, t(s - 60.0));
        f(&mut st);
        env(node, t(s), st)
    }

    fn fleet(from: f64, to: f64) -> Vec<Envelope> {
        let mut evs = Vec::new();
        let mut s = from;
        while s <= to {
            for node in ["n0", "n1", "n2"] {
                evs.push(ok(node, s));
            }
            s += 10.0;
        }
        evs
    }

    fn rejected(node: &str, s: f64, i: u32, reason: &str) -> Envelope {
        env(
            node,
            t(s),
            TxRejected {
                txid: txid(i),
                wtxid: None,
                peer: Some(3),
                reason: reason.into(),
                reason_text: format!("{reason}, details"),
            },
        )
    }

    #[test]
    fn a_healthy_fleet_for_a_day_fires_nothing() {
        let outs = run(
            &mut HealthDetector::new(HealthConfig::default()),
            &fleet(0.0, 86_400.0),
        );
        assert!(outs.is_empty(), "{outs:#?}");
    }

    #[test]
    fn a_tip_older_than_90_minutes_fires_and_a_fresh_one_resolves() {
        let then = given(&fleet(0.0, 100.0))
            .when(&with("n1", 110.0, |s| {
                s.tip_time = Some(t(110.0 - 5401.0).as_secs())
            }))
            .then_alerts(&[("tip_stale", Firing)]);
        assert_eq!(
            then.alert("tip_stale").node.as_ref().unwrap().as_str(),
            "n1"
        );
        then.and()
            .when(&with("n1", 120.0, |s| {
                s.tip_time = Some(t(120.0 - 5401.0).as_secs())
            }))
            .then_no_alert()
            .and()
            .when(&ok("n1", 130.0))
            .then_alerts(&[("tip_stale", Resolved)]);
    }

    /// Regtest's genesis block time (2011-02-02).
    const REGTEST_GENESIS_TIME: i64 = 1_296_688_602;

    #[test]
    fn a_fresh_regtest_node_at_genesis_is_not_tip_stale() {
        let cfg = HealthConfig {
            alert_on_ibd: false,
            ..HealthConfig::default()
        };
        let genesis = |s: f64, ibd: bool| {
            with("n0", s, |st| {
                st.blocks = Height(0);
                st.headers = Height(0);
                st.tip_time = Some(REGTEST_GENESIS_TIME);
                st.initial_block_download = ibd;
                st.uptime_secs = 3;
            })
        };
        // Core reports IBD at genesis; even a source that does not is judged by `blocks == 0`.
        testkit::given(HealthDetector::new(cfg), &[])
            .when_all(&[genesis(0.0, true), genesis(10.0, false)])
            .then_no_alert();
    }

    #[test]
    fn a_node_in_initial_block_download_is_not_tip_stale() {
        given(&fleet(0.0, 20.0))
            .when(&with("n0", 30.0, |s| {
                s.blocks = Height(500_000);
                s.tip_time = Some(t(30.0 - 3.0 * 86_400.0).as_secs());
                s.initial_block_download = true;
            }))
            .then_alerts(&[("ibd", Firing)]);
    }

    #[test]
    fn a_restarted_node_gets_the_limit_from_its_start_to_connect_a_block() {
        let old_tip = t(-3.0 * 3600.0).as_secs();
        let restarted = |s: f64| {
            with("n1", s, |st| {
                st.tip_time = Some(old_tip);
                st.uptime_secs = (s - 100.0) as u64;
            })
        };
        // Up since 100 s with a three-hour-old tip: not stale until 100 s + 90 min.
        let cfg = HealthConfig {
            silent_after_secs: 86_400,
            ..HealthConfig::default()
        };
        let then = testkit::given(HealthDetector::new(cfg), &fleet(0.0, 100.0))
            .when_all(&[restarted(110.0), restarted(5500.0)])
            .then_no_alert()
            .and()
            .when(&restarted(5510.0))
            .then_alerts(&[("tip_stale", Firing)]);
        let a = then.alert("tip_stale");
        assert_eq!(ev_value(a, "node_started_at"), fmt_time(t(100.0)));
        assert_eq!(ev_value(a, "stale_for"), "5410.000s");
    }

    #[test]
    fn a_node_without_status_is_silent_on_a_tick_and_resolves_when_it_reports() {
        let mut evs = fleet(0.0, 100.0);
        // n0 and n1 keep reporting, n2 stops at 100 s.
        for s in (11..=22).map(|k| f64::from(k) * 10.0) {
            evs.push(ok("n0", s));
            evs.push(ok("n1", s));
        }
        let then = given(&evs)
            .when_tick(t(221.0))
            .then_alerts(&[("node_silent", Firing)]);
        let a = then.alert("node_silent");
        assert_eq!(a.node.as_ref().unwrap().as_str(), "n2");
        assert_eq!(a.starts_at, t(220.0));
        then.and()
            .when(&ok("n2", 230.0))
            .then_alerts(&[("node_silent", Resolved)]);
    }

    /// The healthy fleet, with `n2`'s mempool empty in its statuses from `empty_from` seconds.
    fn fleet_with_n2_empty(from: f64, to: f64, empty_from: f64) -> Vec<Envelope> {
        fleet(from, to)
            .into_iter()
            .map(|e| {
                if e.node.as_str() == "n2" && e.observed_at >= t(empty_from) {
                    with("n2", (e.observed_at.0 - t(0.0).0) as f64 / 1e6, |s| {
                        s.mempool_count = 0
                    })
                } else {
                    e
                }
            })
            .collect()
    }

    #[test]
    fn one_empty_poll_while_transactions_still_relay_is_no_alert() {
        given(&fleet(0.0, 50.0))
            .when(&with("n2", 60.0, |s| s.mempool_count = 0))
            .then_no_alert()
            .and()
            .when(&with("n2", 70.0, |s| s.mempool_count = 3))
            .then_no_alert();
    }

    #[test]
    fn a_mempool_empty_on_two_figures_60_s_apart_while_the_fleet_is_full_fires_and_resolves() {
        // n2 is empty at 60 s, 70 s, ..., 110 s: consecutive, but not yet 60 s.
        let then = given(&fleet_with_n2_empty(0.0, 110.0, 60.0))
            .when(&with("n2", 120.0, |s| s.mempool_count = 0))
            .then_alerts(&[("mempool_empty", Firing)]);
        let a = then.alert("mempool_empty");
        assert_eq!(a.node.as_ref().unwrap().as_str(), "n2");
        assert_eq!(a.starts_at, t(120.0));
        assert_eq!(ev_value(a, "empty_since"), fmt_time(t(60.0)));
        assert_eq!(ev_value(a, "empty_figures"), "7");
        then.and()
            .when(&with("n2", 130.0, |s| s.mempool_count = 30))
            .then_alerts(&[("mempool_empty", Resolved)]);
    }

    #[test]
    fn two_empty_snapshots_a_minute_apart_are_enough() {
        let snap = |node: &str, s: f64, count: u64| {
            env(
                node,
                t(s),
                MempoolSnapshot {
                    count,
                    vsize: count * 200,
                    total_fee: None,
                    min_fee_sat_per_kvb: 1000,
                    txid_digest: Default::default(),
                    mempool_sequence: None,
                    mirror: None,
                },
            )
        };
        let cfg = HealthConfig {
            silent_after_secs: 3600,
            ..HealthConfig::default()
        };
        testkit::given(
            HealthDetector::new(cfg),
            &[
                snap("n0", 0.0, 40),
                snap("n1", 1.0, 40),
                snap("n2", 2.0, 0),
                snap("n0", 60.0, 40),
                snap("n1", 61.0, 40),
            ],
        )
        .when(&snap("n2", 62.0, 0))
        .then_alerts(&[("mempool_empty", Firing)]);
    }

    #[test]
    fn an_empty_mempool_is_not_compared_with_figures_taken_far_from_it() {
        // n0 and n1 last reported 20 s before n2's empty figures (more than the 15 s skew).
        let mut evs = fleet(0.0, 0.0);
        for s in [20.0, 50.0, 80.0] {
            evs.push(with("n2", s, |st| st.mempool_count = 0));
        }
        let outs = run(
            &mut HealthDetector::new(HealthConfig {
                silent_after_secs: 3600,
                ..HealthConfig::default()
            }),
            &evs,
        );
        assert!(outs.is_empty(), "{outs:#?}");
    }

    #[test]
    fn an_empty_mempool_is_fine_when_every_mempool_is_empty() {
        let empty = |n: &str, s: f64| with(n, s, |st| st.mempool_count = 0);
        given(&[empty("n0", 0.0), empty("n1", 0.0)])
            .when(&empty("n2", 1.0))
            .then_no_alert();
    }

    #[test]
    fn a_rejection_burst_per_reason_fires_and_ends_after_the_window() {
        let cfg = HealthConfig {
            rejection_burst: 5,
            ..HealthConfig::default()
        };
        let burst: Vec<Envelope> = (0..5)
            .map(|i| rejected("n0", f64::from(i), i, "insufficient fee"))
            .collect();
        let then = testkit::given(HealthDetector::new(cfg), &burst[..4])
            .when(&burst[4])
            .then_alerts(&[("tx_rejections", Firing)]);
        assert_eq!(ev_value(then.alert("tx_rejections"), "count"), "5");
        // Other reasons do not count towards this one.
        let then = then
            .and()
            .when(&rejected("n0", 5.0, 99, "dust"))
            .then_no_alert()
            .and()
            .when_tick(t(400.0))
            .then_alerts(&[("tx_rejections", Resolved)]);
        // Fewer than half (2) remain once the 2nd newest (at 3 s) leaves the 300 s window.
        assert_eq!(then.alert("tx_rejections").ends_at, Some(t(303.0)));
    }

    #[test]
    fn ibd_fires_and_resolves() {
        given(&fleet(0.0, 20.0))
            .when(&with("n0", 30.0, |s| s.initial_block_download = true))
            .then_alerts(&[("ibd", Firing)])
            .and()
            .when(&ok("n0", 40.0))
            .then_alerts(&[("ibd", Resolved)]);
    }

    #[test]
    fn a_sharp_peer_drop_fires_and_recovery_resolves() {
        given(&fleet(0.0, 50.0))
            .when(&with("n0", 60.0, |s| {
                s.peers_in = 5;
                s.peers_out = 2;
            }))
            .then_alerts(&[("peers_drop", Firing)])
            .and()
            .when(&with("n0", 70.0, |s| {
                s.peers_in = 8;
                s.peers_out = 2;
            }))
            .then_no_alert()
            .and()
            .when(&ok("n0", 80.0))
            .then_alerts(&[("peers_drop", Resolved)]);
    }

    #[test]
    fn duplicates_do_not_double_alert_and_replay_gives_the_same_ids() {
        let mut evs = fleet_with_n2_empty(0.0, 120.0, 60.0);
        evs.push(with("n1", 130.0, |s| s.initial_block_download = true));
        evs.push(ok("n0", 400.0));
        let outs = assert_replay_and_duplicates_agree(
            || HealthDetector::new(HealthConfig::default()),
            &evs,
        );
        let kinds: Vec<&str> = outs
            .iter()
            .filter_map(Output::as_alert)
            .map(|a| a.alert_kind.as_str())
            .collect();
        assert_eq!(
            kinds,
            ["mempool_empty", "ibd", "node_silent", "node_silent"]
        );
    }
}
