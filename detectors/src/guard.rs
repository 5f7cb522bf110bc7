//! What every detector needs before its analysis: the duplicate filter and the event clock.
//!
//! JetStream delivers at least once, and time in a detector is event time, never the wall
//! clock. [`Guarded`] holds both for one [`Analysis`]: an event whose id was already applied
//! never reaches the analysis, and the analysis is told `now`, the latest input time so far
//! (an event observed earlier than one already applied does not turn the clock back). The
//! analysis then holds only what it makes of each input.

use schema::{Kind, UnixMicros};

use crate::seen::SeenSet;
use crate::{Detector, DetectorName, Input, Output};

/// One detector's analysis, run inside [`Guarded`].
pub trait Analysis {
    /// The analysis's configuration (its `[detectors.<name>]` table).
    type Config;

    /// An analysis with no history.
    fn new(config: Self::Config) -> Self;

    /// Which detector it is; its consumer is `det-<name>`.
    fn name(&self) -> DetectorName;

    /// The event kinds it reads: its durable consumer's `filter_subjects` must cover exactly
    /// these, or events it depends on never reach it.
    fn inputs(&self) -> &'static [Kind];

    /// How many event ids the duplicate filter remembers.
    fn seen_capacity(&self) -> usize;

    /// Folds one input into the state and returns what it caused. An event here is never one
    /// already applied; `now` is the event clock, this input's time included.
    fn analyse(&mut self, input: Input<'_>, now: UnixMicros) -> Vec<Output>;
}

/// An [`Analysis`] with its duplicate filter and event clock: the [`Detector`] the shell runs.
#[derive(Debug, Clone)]
pub struct Guarded<A> {
    analysis: A,
    seen: SeenSet,
    now: UnixMicros,
}

impl<A: Analysis> Guarded<A> {
    /// A detector with no history.
    pub fn new(config: A::Config) -> Self {
        let analysis = A::new(config);
        Guarded {
            seen: SeenSet::new(analysis.seen_capacity()),
            analysis,
            now: UnixMicros(i64::MIN),
        }
    }

    /// The analysis inside, for inspecting its state.
    pub fn analysis(&self) -> &A {
        &self.analysis
    }

    /// The analysis inside, to drive one of its steps directly (benchmarks, tests).
    pub fn analysis_mut(&mut self) -> &mut A {
        &mut self.analysis
    }

    /// The event clock: the latest input time so far (`i64::MIN` before any input).
    pub fn now(&self) -> UnixMicros {
        self.now
    }
}

impl<A: Analysis> Detector for Guarded<A> {
    fn name(&self) -> DetectorName {
        self.analysis.name()
    }

    fn inputs(&self) -> &'static [Kind] {
        self.analysis.inputs()
    }

    fn apply(&mut self, input: Input<'_>) -> Vec<Output> {
        if let Input::Event(env) = input {
            if !self.seen.insert(env.id) {
                return Vec::new();
            }
        }
        self.now = self.now.max(input.time());
        self.analysis.analyse(input, self.now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{connected, t};

    /// Records what reached it.
    struct Recorder {
        capacity: usize,
        steps: Vec<(Option<schema::EventId>, UnixMicros)>,
    }

    impl Analysis for Recorder {
        type Config = usize;

        fn new(capacity: usize) -> Self {
            Recorder {
                capacity,
                steps: Vec::new(),
            }
        }

        fn name(&self) -> DetectorName {
            DetectorName::Chain
        }

        fn inputs(&self) -> &'static [Kind] {
            &[Kind::BlockConnected]
        }

        fn seen_capacity(&self) -> usize {
            self.capacity
        }

        fn analyse(&mut self, input: Input<'_>, now: UnixMicros) -> Vec<Output> {
            let id = match input {
                Input::Event(env) => Some(env.id),
                Input::Tick(_) => None,
            };
            self.steps.push((id, now));
            Vec::new()
        }
    }

    #[test]
    fn a_duplicate_event_never_reaches_the_analysis() {
        let mut d = Guarded::<Recorder>::new(100);
        let a = connected("n0", t(1.0), 1);
        let b = connected("n0", t(2.0), 2);
        for e in [&a, &b, &a, &b, &a] {
            d.apply(Input::Event(e));
        }
        let ids: Vec<_> = d.analysis().steps.iter().map(|s| s.0).collect();
        assert_eq!(ids, vec![Some(a.id), Some(b.id)]);
    }

    #[test]
    fn the_clock_is_the_latest_input_time_and_never_goes_back() {
        let mut d = Guarded::<Recorder>::new(100);
        assert_eq!(d.now(), UnixMicros(i64::MIN));
        d.apply(Input::Event(&connected("n0", t(10.0), 1)));
        // Observed earlier than what was already applied: the clock stays.
        d.apply(Input::Event(&connected("n1", t(4.0), 1)));
        d.apply(Input::Tick(t(12.0)));
        d.apply(Input::Tick(t(11.0)));
        let clock: Vec<_> = d.analysis().steps.iter().map(|s| s.1).collect();
        assert_eq!(clock, vec![t(10.0), t(10.0), t(12.0), t(12.0)]);
        assert_eq!(d.now(), t(12.0));
        assert_eq!(d.analysis().steps[3].0, None, "ticks reach the analysis");
    }

    #[test]
    fn the_filter_remembers_as_many_ids_as_the_analysis_asks() {
        let mut d = Guarded::<Recorder>::new(2);
        let evs: Vec<_> = (1..=3).map(|i| connected("n0", t(i as f64), i)).collect();
        for e in &evs {
            d.apply(Input::Event(e));
        }
        // The first id was forgotten past capacity 2; the newest is still a duplicate.
        d.apply(Input::Event(&evs[0]));
        d.apply(Input::Event(&evs[2]));
        assert_eq!(d.analysis().steps.len(), 4);
        assert_eq!(d.analysis().steps[3].0, Some(evs[0].id));
    }

    #[test]
    fn the_detector_reports_the_analysis_name_and_inputs() {
        let d = Guarded::<Recorder>::new(1);
        assert_eq!(d.name(), DetectorName::Chain);
        assert_eq!(d.inputs(), &[Kind::BlockConnected]);
    }
}
