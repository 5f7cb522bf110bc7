//! bmon's detectors: pure state machines over events.
//!
//! Each detector owns one analysis and turns `state + input -> outputs`, with no I/O, no clock
//! and no async. The JetStream shell (in `consumers`) fetches envelopes from the detector's
//! durable consumer (`det-<name>`), calls [`Detector::apply`], publishes the outputs (alerts to
//! `bmon.alert.<kind>`), waits for their PubAcks and only then acks the input. During quiet
//! periods it feeds [`Input::Tick`] so timeouts still fire.
//!
//! Replaying the stream gives the same outputs with the same ids: time comes only from events
//! (`observed_at`, or header time where that is the meaning) and ticks; an alert's id is derived
//! from its fingerprint, state and start time, which never depend on when a tick arrived.
//!
//! - [`chain`]: reorgs, stale tips, invalid blocks, consensus splits, suspected selfish mining,
//!   rapid block runs.
//! - [`inflation`]: coinbase above subsidy plus fees, UTXO set above the schedule, nodes that
//!   disagree on the UTXO set.
//! - [`health`]: stale tips, silent nodes, empty mempools, rejection bursts, IBD, peer drops.
//! - [`propagation`]: first-seen per node, spread and lag of blocks and transactions.
//! - [`compare`]: where nodes differ: mempools against the fleet's (with the reason for each
//!   missing transaction), validation time by the version that connected each block.
//!
//! Each detector is an [`Analysis`] inside [`Guarded`], which gives it the duplicate filter and
//! the event clock, so the analysis holds only what it makes of each input.
//!
//! Shared pieces: [`guard`] (that wrapper), [`incident`] (alert construction, open incidents,
//! one-shot incidents) and [`seen`] (the bounded duplicate filter).

pub mod chain;
pub mod compare;
pub mod guard;
pub mod health;
pub mod incident;
pub mod inflation;
pub mod propagation;
pub mod seen;

#[cfg(test)]
pub(crate) mod testkit;

use schema::event::Alert;
use schema::{Envelope, EventId, NodeId, UnixMicros};
use serde::{Deserialize, Serialize};

pub use chain::{ChainAnalysis, ChainConfig, ChainDetector};
pub use compare::{
    BlockValidation, CompareAnalysis, CompareConfig, CompareDetector, MempoolDivergence,
    TemplateComparison,
};
pub use guard::{Analysis, Guarded};
pub use health::{HealthAnalysis, HealthConfig, HealthDetector};
pub use inflation::{InflationAnalysis, InflationConfig, InflationDetector};
pub use propagation::{
    PropagationAnalysis, PropagationConfig, PropagationDetector, PropagationSummary,
};

/// The detectors, by name: parsed once where a name comes in (a consumer's name on the command
/// line, an alert envelope's node), and written out only here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DetectorName {
    /// [`chain`].
    Chain,
    /// [`compare`].
    Compare,
    /// [`health`].
    Health,
    /// [`inflation`].
    Inflation,
    /// [`propagation`].
    Propagation,
}

impl DetectorName {
    /// Every detector.
    pub const ALL: [DetectorName; 5] = [
        DetectorName::Chain,
        DetectorName::Compare,
        DetectorName::Health,
        DetectorName::Inflation,
        DetectorName::Propagation,
    ];

    /// `chain`, `compare`, ...: its config section `[detectors.<name>]`.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectorName::Chain => "chain",
            DetectorName::Compare => "compare",
            DetectorName::Health => "health",
            DetectorName::Inflation => "inflation",
            DetectorName::Propagation => "propagation",
        }
    }

    /// Its durable consumer and the node its outputs carry: `det-<name>`.
    pub fn consumer(self) -> &'static str {
        match self {
            DetectorName::Chain => "det-chain",
            DetectorName::Compare => "det-compare",
            DetectorName::Health => "det-health",
            DetectorName::Inflation => "det-inflation",
            DetectorName::Propagation => "det-propagation",
        }
    }

    /// The detector of a consumer name (`det-chain` → chain).
    pub fn from_consumer(name: &str) -> Option<DetectorName> {
        DetectorName::ALL.into_iter().find(|d| d.consumer() == name)
    }
}

impl std::fmt::Display for DetectorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DetectorName {
    type Err = Error;

    /// `chain` or `det-chain`.
    fn from_str(s: &str) -> Result<DetectorName, Error> {
        DetectorName::ALL
            .into_iter()
            .find(|d| d.as_str() == s || d.consumer() == s)
            .ok_or_else(|| Error::UnknownDetector {
                name: s.to_string(),
            })
    }
}

/// What a detector is fed: an event from the stream, or a tick from the shell.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// An event from the stream.
    Event(&'a Envelope),
    /// The shell's clock during a quiet period: lets timeouts fire when no event arrives.
    Tick(UnixMicros),
}

impl Input<'_> {
    /// The input's time: the event's `observed_at`, or the tick's instant.
    pub fn time(&self) -> UnixMicros {
        match self {
            Input::Event(env) => env.observed_at,
            Input::Tick(at) => *at,
        }
    }

    /// The id that outputs caused by this input carry in `caused_by`. A tick has no event id,
    /// so one is derived from its instant.
    pub fn cause(&self) -> EventId {
        match self {
            Input::Event(env) => env.id,
            Input::Tick(at) => tick_id(*at),
        }
    }
}

/// The id a tick at `at` stands for in `caused_by`.
pub fn tick_id(at: UnixMicros) -> EventId {
    let node = NodeId::new("det-tick").expect("a constant node name is valid");
    EventId::derive(&node, "tick", &[&at.0.to_le_bytes()])
}

/// Something a detector produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Output {
    /// An alert for `bmon.alert.<kind>` (turn it into an envelope with [`alert_envelope`]).
    Alert(Alert),
    /// A settled block or transaction's propagation summary (derived record, not an alert).
    Propagation(PropagationSummary),
    /// One node's mempool against the fleet's in one comparison round (derived record).
    Divergence(MempoolDivergence),
    /// One block's validation time, credited to the node's version then (derived record).
    Validation(BlockValidation),
    /// One node's block template against the fleet's in one round (derived record).
    Template(TemplateComparison),
}

impl Output {
    /// The alert, if this output is one.
    pub fn as_alert(&self) -> Option<&Alert> {
        match self {
            Output::Alert(a) => Some(a),
            Output::Propagation(_)
            | Output::Divergence(_)
            | Output::Validation(_)
            | Output::Template(_) => None,
        }
    }
}

/// A pure state machine over events: `state + input -> outputs`.
pub trait Detector {
    /// Which detector it is; its consumer is `det-<name>`.
    fn name(&self) -> DetectorName;

    /// The event kinds `apply` reads: its durable consumer's `filter_subjects` must cover
    /// exactly these, or events it depends on never reach it.
    fn inputs(&self) -> &'static [schema::Kind];

    /// Folds one input into the state and returns what it caused. A duplicate event (same
    /// `EventId`) returns nothing.
    fn apply(&mut self, input: Input<'_>) -> Vec<Output>;
}

/// The node name a detector's outputs carry: `det-<name>`.
pub fn consumer_name(detector: DetectorName) -> NodeId {
    NodeId::new(detector.consumer()).expect("a detector's consumer name is a valid node name")
}

/// Wraps an alert into an envelope from `det-<detector>`, observed at the alert's own event time
/// (`starts_at` while firing, `ends_at` once resolved). Both the id and the time depend only on
/// the alert, not on which input or tick produced it, so a replay publishes identical envelopes
/// (and ClickHouse, whose `alerts` sort key includes the time, one row).
pub fn alert_envelope(detector: DetectorName, alert: Alert) -> Envelope {
    let at = match alert.state {
        schema::event::AlertState::Firing => alert.starts_at,
        schema::event::AlertState::Resolved => alert.ends_at.unwrap_or(alert.starts_at),
    };
    Envelope::new(consumer_name(detector), at, alert)
}

/// Every detector's configuration, as one table per detector (`[chain]`, `[inflation]`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The chain detector.
    pub chain: ChainConfig,
    /// The inflation detector.
    pub inflation: InflationConfig,
    /// The health detector.
    pub health: HealthConfig,
    /// The propagation detector.
    pub propagation: PropagationConfig,
    /// The fleet comparison.
    pub compare: CompareConfig,
}

/// Failures of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No detector has this name. The caller reports the configuration mistake and exits.
    #[error("unknown detector {name:?} (known: chain, compare, health, inflation, propagation)")]
    UnknownDetector {
        /// The name asked for.
        name: String,
    },
}

/// Builds the detector called `name` with its part of `config`.
pub fn build(name: DetectorName, config: &Config) -> Box<dyn Detector + Send> {
    match name {
        DetectorName::Chain => Box::new(ChainDetector::new(config.chain.clone())),
        DetectorName::Compare => Box::new(CompareDetector::new(config.compare.clone())),
        DetectorName::Health => Box::new(HealthDetector::new(config.health.clone())),
        DetectorName::Inflation => Box::new(InflationDetector::new(config.inflation.clone())),
        DetectorName::Propagation => Box::new(PropagationDetector::new(config.propagation.clone())),
    }
}

/// Microseconds in `secs` seconds.
pub(crate) fn secs(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 1_000_000)
        .saturating_mul(1_000_000)
}

/// Microseconds in `secs` seconds given as a fraction (a config key that scales from mainnet
/// minutes down to regtest milliseconds); negative or NaN is zero, huge saturates.
pub(crate) fn secs_f64(secs: f64) -> i64 {
    // `as` saturates and maps NaN to 0; `max` drops NaN and negatives.
    (secs.max(0.0) * 1e6).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_detector_builds_and_reports_its_name() {
        let config = Config::default();
        for name in DetectorName::ALL {
            assert_eq!(build(name, &config).name(), name);
            assert_eq!(name.as_str().parse::<DetectorName>().unwrap(), name);
            assert_eq!(name.consumer().parse::<DetectorName>().unwrap(), name);
            assert_eq!(DetectorName::from_consumer(name.consumer()), Some(name));
            assert_eq!(consumer_name(name).as_str(), name.consumer());
        }
        assert!(matches!(
            "nope".parse::<DetectorName>(),
            Err(Error::UnknownDetector { .. })
        ));
        assert_eq!(DetectorName::from_consumer("chain"), None);
    }

    #[test]
    fn config_takes_partial_tables_and_rejects_unknown_keys() {
        let c: Config = toml::from_str("[health]\ntip_max_age_secs = 60\n").unwrap();
        assert_eq!(c.health.tip_max_age_secs, 60);
        assert_eq!(c.chain, ChainConfig::default());
        assert!(toml::from_str::<Config>("[health]\ntip_max_age = 60\n").is_err());
        assert!(toml::from_str::<Config>("[nope]\n").is_err());
        // Chain windows take whole seconds (mainnet) or fractions (regtest).
        let c: Config = toml::from_str(
            "[chain]\nselfish_release_window_secs = 5\nrapid_run_window_secs = 0.05\n",
        )
        .unwrap();
        assert_eq!(c.chain.selfish_release_window_secs, 5.0);
        assert_eq!(secs_f64(c.chain.rapid_run_window_secs), 50_000);
        assert_eq!(secs_f64(-1.0), 0);
        assert_eq!(secs_f64(f64::NAN), 0);
    }

    #[test]
    fn alert_envelopes_come_from_the_detector_and_keep_ids_on_replay() {
        let alert = incident::firing(
            "reorg",
            schema::event::Severity::Warning,
            "reorg:x".into(),
            UnixMicros(5),
            tick_id(UnixMicros(5)),
        );
        let a = alert_envelope(DetectorName::Chain, alert.clone());
        let b = alert_envelope(DetectorName::Chain, alert);
        assert_eq!(a.node.as_str(), "det-chain");
        assert_eq!(a, b);
        assert_eq!(a.observed_at, UnixMicros(5));
        assert_eq!(a.subject(), "bmon.alert.reorg");
    }
}
