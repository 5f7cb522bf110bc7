//! Telling a withheld branch's release from a partition's heal, by who saw the winning blocks
//! when.
//!
//! The chain detector calls [`classify`] for a reorg whose winning branch has several blocks,
//! with each node's first sighting of the losing block (the first block of the branch the
//! reorg left) and of every winning block. Sightings later than `until` (the check's deadline)
//! do not count, so the verdict does not depend on when a tick arrived.
//!
//! A sighting is a time span ([`Sighting`]): exact for ZMQ, RPC and `-logtimemicros` log lines,
//! a whole second for log lines without it. Each step takes the reading that keeps a burst a
//! burst and calls a node early or the branch held back only when that is certain, so a
//! release that straddles a second boundary in a coarse log is still one burst.
//!
//! The rule, with `window` the scale of "at once" for this network:
//!
//! 1. `S`: the nodes that saw every winning block. For each, `first`/`last` are its earliest
//!    and latest first sighting of a winning block.
//! 2. `C` (held the losing block, then got the branch in a burst): nodes of `S` that saw the
//!    losing block before their `first`, with `last - first <= window`. No such node: nothing
//!    to say (a race decided in the open, everyone saw the blocks as they came).
//! 3. `R = min first over C`: the release, as the first of them got it.
//! 4. `B` (the burst): nodes of `S` with `last - first <= window` and `first >= R - window`
//!    (`C` and nodes that got the burst without ever holding the losing block).
//!    `E` (early): nodes of `S` with `first < R - window`: they had winning blocks before the
//!    release (the withholder's side, or the side of a partition that mined in the open).
//! 5. Late: the branch was held back from `B`. With early nodes, the earliest `last` among
//!    them (the branch complete somewhere in the fleet) is more than `window` before `R`.
//!    Without, the fleet's first sighting of any winning block came after its first sighting
//!    of the losing block, and the release came at most `max_delay` after it (a withholder
//!    outside the fleet releases as soon as the honest block appears; a fleet that lost a
//!    natural race and never saw the competitor's header hears of it with the next block,
//!    minutes later). Not late: nothing (the blocks
//!    reached `B` as they were found, e.g. a race whose losing side never heard of the
//!    competitor until the next block).
//! 6. Late and `B` is more than half of `S`: a **withheld branch** (selfish mining): most of the
//!    fleet got it in one burst after holding the losing block, at most a minority had it
//!    earlier. Late and `B` is at most half: a **partition**: the nodes of `B` were cut off
//!    while the others (at least as many) saw the branch being mined.
//!
//! Known limit: a race decided within one `window` (regtest blocks mined milliseconds apart) on
//! a fleet that saw the losing block first looks like an immediate release by a withholder
//! outside the fleet. A partition in which the side that mined the winning branch is the
//! smaller one looks like a withholder on that side; on a fleet the two are the same thing.

use std::collections::BTreeMap;

use schema::{NodeId, UnixMicros};

/// When a node first saw a block: at some time from `lo` to `hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sighting {
    /// The earliest the sighting can have been.
    pub lo: UnixMicros,
    /// The latest the sighting can have been.
    pub hi: UnixMicros,
}

impl Sighting {
    /// A sighting at `at`; `coarse` when `at` is a log line's whole second (the line was
    /// written some time within that second).
    pub fn at(at: UnixMicros, coarse: bool) -> Self {
        let hi = if coarse { at.plus_micros(999_999) } else { at };
        Sighting { lo: at, hi }
    }

    /// Adds another sighting of the same block by the same node: the first of them is no
    /// earlier than the earliest `lo` and no later than the earliest `hi`.
    pub fn merge(&mut self, other: Sighting) {
        self.lo = self.lo.min(other.lo);
        self.hi = self.hi.min(other.hi);
    }
}

/// What the sightings say about a reorg's winning branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Most of the fleet got the branch in one burst, late: suspected selfish mining.
    Withheld,
    /// A minority got the branch late in one burst: those nodes were cut off.
    Partition,
}

/// The verdict and the figures behind it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Release {
    /// Withheld branch or partition.
    pub verdict: Verdict,
    /// The earliest sighting of a winning block by a node of the burst.
    pub released_at: UnixMicros,
    /// The longest first-to-last time of a burst node (the shortest reading of each).
    pub interval: i64,
    /// The fleet's first sighting of the losing block.
    pub losing_first: UnixMicros,
    /// Nodes that got the branch in the burst (`B`), in name order.
    pub burst: Vec<NodeId>,
    /// Nodes of the burst that held the losing block first (`C`).
    pub held_losing: Vec<NodeId>,
    /// Nodes that had winning blocks before the release (`E`), with their first sighting.
    pub early: Vec<(NodeId, UnixMicros)>,
    /// When an early node first had the whole branch, if any early node did.
    pub complete_at: Option<UnixMicros>,
    /// How many nodes saw the whole branch (`S`).
    pub nodes: usize,
}

/// One node's sightings of the whole winning branch.
struct Span<'a> {
    node: &'a NodeId,
    /// The earliest first sighting: from `first_lo` to `first_hi`.
    first_lo: UnixMicros,
    first_hi: UnixMicros,
    /// The latest first sighting: from `last_lo` to `last_hi`.
    last_lo: UnixMicros,
    last_hi: UnixMicros,
}

impl Span<'_> {
    /// The shortest time the node can have taken to see every winning block.
    fn min_span(&self) -> i64 {
        self.last_lo.micros_since(self.first_hi).max(0)
    }
}

/// Applies the module's rule; `None` when the sightings show neither a withheld branch nor a
/// partition (or there are none to judge).
pub(super) fn classify(
    losing: &BTreeMap<NodeId, Sighting>,
    winning: &[&BTreeMap<NodeId, Sighting>],
    window: i64,
    max_delay: i64,
    until: UnixMicros,
) -> Option<Release> {
    let (head, rest) = winning.split_first()?;
    let counts = |s: &&Sighting| s.lo <= until;
    // 1. Nodes that saw every winning block, with their first and last sighting.
    let mut spans: Vec<Span<'_>> = Vec::new();
    'nodes: for (node, s) in head.iter().filter(|(_, s)| counts(s)) {
        let mut span = Span {
            node,
            first_lo: s.lo,
            first_hi: s.hi,
            last_lo: s.lo,
            last_hi: s.hi,
        };
        for block in rest {
            match block.get(node).filter(counts) {
                Some(s) => {
                    span.first_lo = span.first_lo.min(s.lo);
                    span.first_hi = span.first_hi.min(s.hi);
                    span.last_lo = span.last_lo.max(s.lo);
                    span.last_hi = span.last_hi.max(s.hi);
                }
                None => continue 'nodes,
            }
        }
        spans.push(span);
    }
    let in_burst = |s: &Span<'_>| s.min_span() <= window;
    let losing_lo = |node: &NodeId| losing.get(node).filter(counts).map(|s| s.lo);

    // 2, 3. The nodes that held the losing block and then got the branch at once; the release
    // (its earliest reading).
    let held_losing: Vec<&NodeId> = spans
        .iter()
        .filter(|s| in_burst(s) && losing_lo(s.node).is_some_and(|l| l < s.first_hi))
        .map(|s| s.node)
        .collect();
    let release = spans
        .iter()
        .filter(|s| held_losing.contains(&s.node))
        .map(|s| s.first_lo)
        .min()?;
    let losing_first = losing.values().filter(counts).map(|s| s.lo).min()?;

    // 4. The early side (surely before the release) and the burst.
    let burst_from = release.plus_micros(-window);
    let early: Vec<&Span<'_>> = spans.iter().filter(|s| s.first_hi < burst_from).collect();
    let burst: Vec<&Span<'_>> = spans
        .iter()
        .filter(|s| in_burst(s) && s.first_hi >= burst_from)
        .collect();

    // 5. Was the branch held back from the burst? (Its latest reading on the early side.)
    let complete_at = early.iter().map(|s| s.last_hi).min();
    let late = match complete_at {
        Some(complete) => release.micros_since(complete) > window,
        None => {
            spans
                .iter()
                .map(|s| s.first_lo)
                .min()
                .is_some_and(|first| first > losing_first)
                && release.micros_since(losing_first) <= max_delay
        }
    };
    if !late {
        return None;
    }

    // 6. Most of the fleet in the burst: withheld; otherwise the burst nodes were cut off.
    let verdict = if 2 * burst.len() > spans.len() {
        Verdict::Withheld
    } else if complete_at.is_some() {
        Verdict::Partition
    } else {
        return None;
    };
    Some(Release {
        verdict,
        released_at: burst.iter().map(|s| s.first_lo).min().unwrap_or(release),
        interval: burst.iter().map(|s| s.min_span()).max().unwrap_or(0),
        losing_first,
        burst: burst.iter().map(|s| s.node.clone()).collect(),
        held_losing: held_losing.into_iter().cloned().collect(),
        early: early.iter().map(|s| (s.node.clone(), s.first_lo)).collect(),
        complete_at,
        nodes: spans.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn ms(v: i64) -> UnixMicros {
        UnixMicros(v * 1000)
    }

    fn seen(list: &[(&str, i64)]) -> BTreeMap<NodeId, Sighting> {
        list.iter()
            .map(|(node, at)| (n(node), Sighting::at(ms(*at), false)))
            .collect()
    }

    const WINDOW: i64 = 100_000; // 100 ms
    const MAX_DELAY: i64 = 5_000_000; // 5 s
    const UNTIL: UnixMicros = UnixMicros(i64::MAX);

    #[test]
    fn most_of_the_fleet_in_one_late_burst_is_a_withheld_branch_naming_the_early_node() {
        // n3 mined 211 and 212 at 0 and 10 ms; the others held 11 from 300 ms and got both at
        // 800-830 ms.
        let losing = seen(&[("a", 300), ("b", 305), ("c", 310)]);
        let w1 = seen(&[("n3", 0), ("a", 800), ("b", 805), ("c", 810)]);
        let w2 = seen(&[("n3", 10), ("a", 820), ("b", 825), ("c", 830)]);
        let r = classify(&losing, &[&w1, &w2], WINDOW, MAX_DELAY, UNTIL).unwrap();
        assert_eq!(r.verdict, Verdict::Withheld);
        assert_eq!(r.burst, [n("a"), n("b"), n("c")]);
        assert_eq!(r.early, [(n("n3"), ms(0))]);
        assert_eq!(r.complete_at, Some(ms(10)));
        assert_eq!(r.released_at, ms(800));
        assert_eq!(r.interval, 20_000);
    }

    #[test]
    fn half_the_fleet_late_is_a_partition() {
        let losing = seen(&[("a", 200), ("b", 201), ("c", 1500), ("d", 1501)]);
        let w1 = seen(&[("c", 0), ("d", 1), ("a", 1500), ("b", 1502)]);
        let w2 = seen(&[("c", 600), ("d", 601), ("a", 1510), ("b", 1512)]);
        let r = classify(&losing, &[&w1, &w2], WINDOW, MAX_DELAY, UNTIL).unwrap();
        assert_eq!(r.verdict, Verdict::Partition);
        assert_eq!(r.burst, [n("a"), n("b")]);
        assert_eq!(r.held_losing, [n("a"), n("b")]);
    }

    #[test]
    fn a_release_straddling_a_second_boundary_in_a_coarse_log_is_still_one_burst() {
        // Whole-second log times: b's two headers at 1.98 s and 2.01 s read 1 s and 2 s; its
        // ZMQ connects (exact) came at 2.05 s and 2.06 s.
        let mut losing = seen(&[("a", 500), ("b", 505), ("c", 510)]);
        losing.insert(n("b"), Sighting::at(ms(0), true));
        let mut w1 = seen(&[("w", -3000), ("a", 1990), ("c", 1995)]);
        let mut w2 = seen(&[("w", -2990), ("a", 2000), ("c", 2005)]);
        let mut b1 = Sighting::at(ms(1000), true);
        b1.merge(Sighting::at(ms(2050), false));
        let mut b2 = Sighting::at(ms(2000), true);
        b2.merge(Sighting::at(ms(2060), false));
        w1.insert(n("b"), b1);
        w2.insert(n("b"), b2);
        let r = classify(&losing, &[&w1, &w2], WINDOW, MAX_DELAY, UNTIL).unwrap();
        assert_eq!(r.verdict, Verdict::Withheld);
        assert_eq!(r.burst, [n("a"), n("b"), n("c")]);
        assert_eq!(r.early, [(n("w"), ms(-3000))]);
    }

    #[test]
    fn sightings_after_the_deadline_do_not_count() {
        let losing = seen(&[("a", 300), ("b", 305), ("c", 310)]);
        let w1 = seen(&[("n3", 0), ("a", 800), ("b", 805), ("c", 810)]);
        let w2 = seen(&[("n3", 10), ("a", 820), ("b", 825), ("c", 830)]);
        // By 815 ms only n3 has the whole branch: nothing to judge.
        assert_eq!(
            classify(&losing, &[&w1, &w2], WINDOW, MAX_DELAY, ms(815)),
            None
        );
    }
}
