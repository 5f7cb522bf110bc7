//! The detector consumers (`bmon-consumer det-<name>`): the JetStream shell around a pure
//! [`detectors::Detector`].
//!
//! [`DetectorHandler`] feeds every decoded envelope of a batch to `apply` in stream order,
//! turns each alert into an envelope ([`alert_envelope`]) and publishes it on
//! `bmon.alert.<alert_kind>` with its deterministic id as `Nats-Msg-Id`, waiting for the
//! PubAcks; `det-propagation` also writes its summaries to ClickHouse (`propagation`,
//! [`propagation`]). Only then does the runtime ack the batch.
//!
//! **Outputs are never lost to a retry.** A detector remembers the events it applied, so a
//! redelivered event produces nothing. Outputs whose publish or insert failed therefore stay
//! in the handler and go out first on the next call (the batch is nak'd meanwhile); if the
//! process dies instead, the unacked inputs come back to a fresh detector and produce the same
//! outputs with the same ids.
//!
//! **Time.** Detectors never read a clock: time is event time. When no event arrived for
//! `consumer.tick_after_ms`, the handler injects `Input::Tick(t)` with
//! `t = latest event time + wall time elapsed since that event arrived` ([`EventClock`]), so
//! timeouts (a silent node, a one-shot incident's hold) fire during quiet periods. Ticks only
//! advance event time while nothing arrives; alert ids never depend on when a tick came.
//!
//! **Ids on replay.** An alert envelope's id comes from the detector, the fingerprint, the
//! state and `starts_at`; its `observed_at` is the alert's own event time (`starts_at` when
//! firing, `ends_at` when resolved) rather than the time of whichever input — an event in a
//! replay, a tick live — noticed it, so a replay reproduces the envelope and both JetStream
//! (within the duplicate window) and the `alerts` table (`ReplacingMergeTree` keyed on
//! `observed_at_us, event_id`) keep one copy.
//!
//! **Restart.** [`crate::warmup`] replays the acknowledged events of the last
//! `consumer.warmup_secs` into [`DetectorHandler::warm`] (outputs dropped: they were
//! published by the previous process) before the durable consumer resumes.

pub mod compare;
pub mod propagation;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clickhouse::Client;
use detectors::{alert_envelope, Detector, Input, Output};
use schema::event::{Alert, AlertState};
use schema::{Envelope, UnixMicros};
use tracing::{debug, info};

use crate::metrics::Metrics;
use crate::runtime::{HandleError, Handler, Publisher};
use compare::{DivergenceRow, TemplateRow, ValidationRow};
use propagation::PropagationRow;

/// Event time for ticks: the latest event time plus the wall time since that event arrived,
/// once nothing arrived for `tick_after`.
#[derive(Debug, Clone)]
pub struct EventClock {
    tick_after: Duration,
    /// Latest event time seen, and when (wall clock) the event carrying it arrived.
    latest: Option<(UnixMicros, Instant)>,
    /// When the last event of any time arrived.
    last_arrival: Option<Instant>,
}

impl EventClock {
    /// A clock that ticks after `tick_after` without events.
    pub fn new(tick_after: Duration) -> EventClock {
        EventClock {
            tick_after,
            latest: None,
            last_arrival: None,
        }
    }

    /// Notes an event with time `at` that arrived at `arrived`.
    pub fn observe(&mut self, at: UnixMicros, arrived: Instant) {
        if self.latest.is_none_or(|(t, _)| at >= t) {
            self.latest = Some((at, arrived));
        }
        if self.last_arrival.is_none_or(|l| arrived > l) {
            self.last_arrival = Some(arrived);
        }
    }

    /// The tick time at wall instant `now`, if the stream has been quiet for `tick_after`
    /// (None before the first event: there is no event time to advance).
    pub fn tick(&self, now: Instant) -> Option<UnixMicros> {
        let (at, arrived) = self.latest?;
        let quiet = now.saturating_duration_since(self.last_arrival?);
        if quiet < self.tick_after {
            return None;
        }
        let elapsed = now.saturating_duration_since(arrived);
        let micros = i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX);
        Some(at.plus_micros(micros))
    }
}

/// The envelope of an alert: from `det-<detector>`, observed at the alert's own event time.
pub fn alert_to_envelope(detector: detectors::DetectorName, alert: Alert) -> Envelope {
    alert_envelope(detector, alert)
}

/// The `det-<name>` handler.
pub struct DetectorHandler {
    detector: Box<dyn Detector + Send>,
    name: detectors::DetectorName,
    publisher: Publisher,
    clickhouse: Option<Client>,
    clock: EventClock,
    pending_alerts: Vec<Envelope>,
    pending_rows: Vec<PropagationRow>,
    pending_divergence: Vec<DivergenceRow>,
    pending_validation: Vec<ValidationRow>,
    pending_templates: Vec<TemplateRow>,
    metrics: Arc<Metrics>,
}

impl DetectorHandler {
    /// Wraps `detector`; its alerts go through `publisher`, its propagation summaries to
    /// `clickhouse` when given (dropped otherwise).
    pub fn new(
        detector: Box<dyn Detector + Send>,
        publisher: Publisher,
        clickhouse: Option<Client>,
        tick_after: Duration,
        metrics: Arc<Metrics>,
    ) -> DetectorHandler {
        DetectorHandler {
            name: detector.name(),
            detector,
            publisher,
            clickhouse,
            clock: EventClock::new(tick_after),
            pending_alerts: Vec::new(),
            pending_rows: Vec::new(),
            pending_divergence: Vec::new(),
            pending_validation: Vec::new(),
            pending_templates: Vec::new(),
            metrics,
        }
    }

    /// The detector's name.
    pub fn name(&self) -> &'static str {
        self.name.as_str()
    }

    /// Folds an already-acknowledged event into the state without publishing what it
    /// causes (the warm-up on start). `stored` is when JetStream stored it, so ticks continue
    /// from the right event time.
    pub fn warm(&mut self, env: &Envelope, stored: Option<SystemTime>) {
        let now = Instant::now();
        let arrived = stored
            .and_then(|s| SystemTime::now().duration_since(s).ok())
            .and_then(|ago| now.checked_sub(ago))
            .unwrap_or(now);
        self.clock.observe(env.observed_at, arrived);
        let _ = self.detector.apply(Input::Event(env));
        self.metrics.warmup_events(self.name.as_str(), 1);
    }

    /// Applies one input and queues what it caused.
    fn apply(&mut self, input: Input<'_>) {
        for out in self.detector.apply(input) {
            match out {
                Output::Alert(alert) => {
                    self.pending_alerts
                        .push(alert_to_envelope(self.name, alert));
                }
                Output::Propagation(summary) => {
                    if self.clickhouse.is_some() {
                        self.pending_rows.push(PropagationRow::new(&summary));
                    }
                }
                Output::Divergence(d) => {
                    if self.clickhouse.is_some() {
                        self.pending_divergence.push(DivergenceRow::new(&d));
                    }
                }
                Output::Validation(v) => {
                    if self.clickhouse.is_some() {
                        self.pending_validation.push(ValidationRow::new(&v));
                    }
                }
                Output::Template(t) => {
                    if self.clickhouse.is_some() {
                        self.pending_templates.push(TemplateRow::new(&t));
                    }
                }
            }
        }
    }

    /// Publishes the queued alerts and stores the queued summaries; what fails stays queued.
    async fn flush(&mut self) -> Result<(), HandleError> {
        if !self.pending_alerts.is_empty() {
            let published = self.publisher.publish_all(&self.pending_alerts).await?;
            for env in &self.pending_alerts {
                if let schema::Event::Alert(a) = &env.event {
                    let state = match a.state {
                        AlertState::Firing => "firing",
                        AlertState::Resolved => "resolved",
                    };
                    info!(detector = self.name.as_str(), alert_kind = %a.alert_kind, state, fingerprint = %a.fingerprint, event_id = %env.id, "alert published");
                    self.metrics
                        .alert_published(self.name.as_str(), &a.alert_kind, state);
                }
            }
            if published.duplicates > 0 {
                debug!(
                    duplicates = published.duplicates,
                    "alerts already stored (redelivery or replay)"
                );
                self.metrics
                    .duplicate_alerts(self.name.as_str(), published.duplicates as u64);
            }
            self.pending_alerts.clear();
        }
        if let Some(client) = &self.clickhouse {
            let m = &self.metrics;
            store(
                client,
                m,
                propagation::TABLE,
                "0002",
                &mut self.pending_rows,
            )
            .await?;
            let migration = compare::MIGRATION;
            let table = compare::DIVERGENCE_TABLE;
            store(client, m, table, migration, &mut self.pending_divergence).await?;
            let table = compare::VALIDATION_TABLE;
            store(client, m, table, migration, &mut self.pending_validation).await?;
            let table = compare::TEMPLATE_TABLE;
            store(client, m, table, migration, &mut self.pending_templates).await?;
        }
        Ok(())
    }
}

/// Inserts a detector's queued derived rows into `table` (created by `migration`) and clears
/// the queue; on failure the rows stay queued for the next call.
async fn store<R>(
    client: &Client,
    metrics: &Metrics,
    table: &str,
    migration: &str,
    rows: &mut Vec<R>,
) -> Result<(), HandleError>
where
    R: clickhouse::RowOwned + clickhouse::RowWrite,
{
    if rows.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    propagation::insert_rows(client, table, migration, rows).await?;
    metrics.inserted(table, rows.len() as u64, started.elapsed().as_secs_f64());
    rows.clear();
    Ok(())
}

impl Handler for DetectorHandler {
    async fn handle(&mut self, batch: &[Envelope]) -> Result<(), HandleError> {
        let now = Instant::now();
        for env in batch {
            self.clock.observe(env.observed_at, now);
            self.apply(Input::Event(env));
        }
        self.flush().await
    }

    async fn idle(&mut self) -> Result<(), HandleError> {
        if let Some(at) = self.clock.tick(Instant::now()) {
            self.metrics.tick(self.name.as_str());
            self.apply(Input::Tick(at));
        }
        self.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::event::Severity;

    #[test]
    fn no_tick_before_the_first_event_or_while_events_arrive() {
        let base = Instant::now();
        let mut clock = EventClock::new(Duration::from_secs(2));
        assert_eq!(clock.tick(base + Duration::from_secs(60)), None);
        clock.observe(UnixMicros(1_000_000), base);
        assert_eq!(clock.tick(base + Duration::from_millis(1999)), None);
    }

    #[test]
    fn a_tick_is_the_latest_event_time_plus_the_wall_time_since_it_arrived() {
        let base = Instant::now();
        let mut clock = EventClock::new(Duration::from_secs(2));
        clock.observe(UnixMicros(10_000_000), base);
        assert_eq!(
            clock.tick(base + Duration::from_secs(3)),
            Some(UnixMicros(13_000_000))
        );
        assert_eq!(
            clock.tick(base + Duration::from_secs(5)),
            Some(UnixMicros(15_000_000))
        );
    }

    #[test]
    fn a_late_older_event_delays_the_tick_but_never_moves_event_time_back() {
        let base = Instant::now();
        let mut clock = EventClock::new(Duration::from_secs(2));
        clock.observe(UnixMicros(10_000_000), base);
        clock.observe(UnixMicros(4_000_000), base + Duration::from_secs(1));
        assert_eq!(clock.tick(base + Duration::from_millis(2500)), None);
        assert_eq!(
            clock.tick(base + Duration::from_secs(3)),
            Some(UnixMicros(13_000_000))
        );
    }

    #[test]
    fn an_alert_envelope_is_observed_at_the_alerts_own_time() {
        let mut alert = detectors::incident::firing(
            "reorg",
            Severity::Warning,
            "reorg:x".into(),
            UnixMicros(5_000_000),
            detectors::tick_id(UnixMicros(9_000_000)),
        );
        let firing = alert_to_envelope(detectors::DetectorName::Chain, alert.clone());
        assert_eq!(firing.observed_at, UnixMicros(5_000_000));
        assert_eq!(firing.subject(), "bmon.alert.reorg");
        alert.state = AlertState::Resolved;
        alert.ends_at = Some(UnixMicros(7_000_000));
        let resolved = alert_to_envelope(detectors::DetectorName::Chain, alert.clone());
        assert_eq!(resolved.observed_at, UnixMicros(7_000_000));
        // The id does not depend on what caused the output.
        alert.caused_by = detectors::tick_id(UnixMicros(1));
        assert_eq!(
            alert_to_envelope(detectors::DetectorName::Chain, alert).id,
            resolved.id
        );
    }
}
