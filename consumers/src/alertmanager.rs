//! The alert router (`bmon-consumer alertmanager`): delivers every alert of `BMON_ALERTS` to
//! Alertmanager (`POST {url}/api/v2/alerts`, a JSON array).
//!
//! Each alert becomes one Alertmanager alert ([`to_alertmanager`]):
//!
//! - labels `alertname` (the alert kind), `severity`, `fingerprint`, `detector` (`chain`,
//!   `health`, ...), and `node` and `subject` when the alert has them. The labels identify the
//!   incident: its firing and resolved posts update the same Alertmanager alert.
//! - annotations `summary`, `evidence` (one `name=value` line per item) and one annotation per
//!   evidence item, named after it (characters other than letters, digits and `_` become `_`;
//!   `summary` and `evidence` are prefixed `evidence_`).
//! - `startsAt` = the alert's start (event time). A resolved alert carries its `endsAt`. A firing
//!   one carries `endsAt` = now + `resend_horizon_secs` (capped at the alert's own `ends_at`
//!   for one-shot incidents), and is posted again every `resend_interval_secs` while it is
//!   active, so Alertmanager resolves it by itself if bmon stops.
//!
//! Active alerts (firing, not yet resolved or past their `ends_at`) are kept in memory
//! ([`ActiveAlerts`], by fingerprint); on start they are rebuilt from the acknowledged alerts
//! of the stream ([`crate::warmup`]) and posted again at once.
//!
//! Failures: a connection error, a timeout, a 5xx, 408 or 429 is transient (the batch is nak'd
//! and retried after `consumer.nak_delay_ms`; posting twice is harmless). A 4xx means
//! Alertmanager refused some alert of the batch: the alerts are posted one by one, and those
//! refused on their own are poison (dead-lettered to `bmon.dead.alertmanager`, counted in
//! `bmon_alertmanager_rejected_alerts_total`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use schema::event::{Alert, AlertState};
use schema::{Envelope, Event, UnixMicros};
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::config::AlertmanagerConfig;
use crate::metrics::Metrics;
use crate::runtime::{HandleError, Handler};

/// One alert as Alertmanager's API v2 takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmAlert {
    /// Identifying labels.
    pub labels: BTreeMap<String, String>,
    /// Descriptive annotations.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    /// RFC 3339.
    #[serde(rename = "endsAt")]
    pub ends_at: String,
}

/// The detector name of an alert envelope's node (`det-chain` -> `chain`); another node's
/// name as it is.
pub fn detector_of(env: &Envelope) -> String {
    let node = env.node.as_str();
    detectors::DetectorName::from_consumer(node)
        .map(|d| d.as_str().to_string())
        .unwrap_or_else(|| node.to_string())
}

/// An annotation name for an evidence item: `[A-Za-z0-9_]`, not starting with a digit, never
/// `summary` or `evidence`.
pub fn annotation_name(evidence: &str) -> String {
    let mut out: String = evidence
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if out == "summary" || out == "evidence" {
        out.insert_str(0, "evidence_");
    }
    out
}

/// `alert` from `detector` as Alertmanager takes it, posted at wall time `now` with
/// `horizon` as the expiry of a firing alert.
pub fn to_alertmanager(
    alert: &Alert,
    detector: &str,
    now: UnixMicros,
    horizon: Duration,
) -> AmAlert {
    let mut labels = BTreeMap::new();
    labels.insert("alertname".to_string(), alert.alert_kind.clone());
    labels.insert("severity".to_string(), alert.severity.as_str().to_string());
    labels.insert("fingerprint".to_string(), alert.fingerprint.clone());
    labels.insert("detector".to_string(), detector.to_string());
    if let Some(node) = &alert.node {
        labels.insert("node".to_string(), node.to_string());
    }
    if let Some(subject) = &alert.subject {
        labels.insert("subject".to_string(), subject.clone());
    }
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), alert.summary.clone());
    let lines: Vec<String> = alert
        .evidence
        .iter()
        .map(|e| format!("{}={}", e.name, e.value))
        .collect();
    annotations.insert("evidence".to_string(), lines.join("\n"));
    for e in &alert.evidence {
        annotations.insert(annotation_name(&e.name), e.value.clone());
    }
    let ends_at = match alert.state {
        // As the detector said; an end before the start is refused by Alertmanager (poison).
        AlertState::Resolved => alert.ends_at.unwrap_or(now),
        AlertState::Firing => {
            let horizon = i64::try_from(horizon.as_micros()).unwrap_or(i64::MAX);
            let expiry = now.max(alert.starts_at).plus_micros(horizon);
            match alert.ends_at {
                Some(end) => end.min(expiry),
                None => expiry,
            }
        }
    };
    AmAlert {
        labels,
        annotations,
        starts_at: rfc3339(alert.starts_at),
        ends_at: rfc3339(ends_at),
    }
}

/// Microseconds since the epoch as RFC 3339 UTC with microseconds
/// (`2026-01-15T12:00:00.000001Z`).
pub fn rfc3339(t: UnixMicros) -> String {
    t.to_rfc3339()
}

/// The wall clock as [`UnixMicros`] (the shell may read it; detectors never do).
pub fn wall_now() -> UnixMicros {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    UnixMicros(micros)
}

/// Firing alerts not yet resolved, by fingerprint, with the detector that raised them.
#[derive(Debug, Clone, Default)]
pub struct ActiveAlerts {
    by_fingerprint: BTreeMap<String, (Alert, String)>,
}

impl ActiveAlerts {
    /// Folds one alert in: a firing one becomes (or replaces an older) active alert; a
    /// resolved one ends the active alert it resolves (same fingerprint, not newer).
    pub fn apply(&mut self, alert: &Alert, detector: &str) {
        let current = self.by_fingerprint.get(&alert.fingerprint);
        match alert.state {
            AlertState::Firing => {
                if current.is_none_or(|(a, _)| a.starts_at <= alert.starts_at) {
                    self.by_fingerprint.insert(
                        alert.fingerprint.clone(),
                        (alert.clone(), detector.to_string()),
                    );
                }
            }
            AlertState::Resolved => {
                if current.is_some_and(|(a, _)| a.starts_at <= alert.starts_at) {
                    self.by_fingerprint.remove(&alert.fingerprint);
                }
            }
        }
    }

    /// Drops firing alerts whose own `ends_at` (one-shot incidents) has passed at `now`.
    pub fn expire(&mut self, now: UnixMicros) {
        self.by_fingerprint
            .retain(|_, (a, _)| a.ends_at.is_none_or(|end| end > now));
    }

    /// Number of active alerts.
    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    /// True when nothing is active.
    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    /// The active alerts as Alertmanager takes them.
    pub fn to_alertmanager(&self, now: UnixMicros, horizon: Duration) -> Vec<AmAlert> {
        self.by_fingerprint
            .values()
            .map(|(a, d)| to_alertmanager(a, d, now, horizon))
            .collect()
    }
}

/// Why a POST failed.
#[derive(Debug)]
enum PostError {
    /// Retry later.
    Transient(String),
    /// Alertmanager refused the content (4xx).
    Rejected(String),
}

/// The `alertmanager` handler.
pub struct AlertmanagerHandler {
    client: reqwest::Client,
    endpoint: String,
    horizon: Duration,
    resend_every: Duration,
    last_resend: Option<Instant>,
    active: ActiveAlerts,
    metrics: Arc<Metrics>,
}

impl AlertmanagerHandler {
    /// A handler posting to `config.url`.
    pub fn new(config: &AlertmanagerConfig, metrics: Arc<Metrics>) -> Result<Self, crate::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|e| crate::Error::Alertmanager {
                url: config.url.clone(),
                reason: e.to_string(),
            })?;
        Ok(AlertmanagerHandler {
            client,
            endpoint: format!("{}/api/v2/alerts", config.url.trim_end_matches('/')),
            horizon: Duration::from_secs(config.resend_horizon_secs),
            resend_every: Duration::from_secs(config.resend_interval_secs),
            last_resend: None,
            active: ActiveAlerts::default(),
            metrics,
        })
    }

    /// Folds an already-acknowledged alert into the active set (the warm-up on start).
    pub fn warm(&mut self, env: &Envelope) {
        if let Event::Alert(a) = &env.event {
            self.active.apply(a, &detector_of(env));
        }
    }

    /// The active alerts (for tests and status).
    pub fn active(&self) -> &ActiveAlerts {
        &self.active
    }

    async fn post(&self, alerts: &[AmAlert]) -> Result<(), PostError> {
        let started = Instant::now();
        let result = self.client.post(&self.endpoint).json(alerts).send().await;
        let outcome = match result {
            Err(e) => Err(PostError::Transient(format!("POST {}: {e}", self.endpoint))),
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    Ok(())
                } else {
                    let body = resp.text().await.unwrap_or_default();
                    let text = format!("POST {}: {status}: {}", self.endpoint, body.trim());
                    if status.is_client_error()
                        && status != reqwest::StatusCode::REQUEST_TIMEOUT
                        && status != reqwest::StatusCode::TOO_MANY_REQUESTS
                    {
                        Err(PostError::Rejected(text))
                    } else {
                        Err(PostError::Transient(text))
                    }
                }
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        match &outcome {
            Ok(()) => {
                self.metrics.am_post("ok", seconds);
                self.metrics.am_sent(alerts.len() as u64);
            }
            Err(PostError::Transient(_)) => self.metrics.am_post("transient", seconds),
            Err(PostError::Rejected(_)) => self.metrics.am_post("rejected", seconds),
        }
        outcome
    }

    /// Posts the active alerts again when `resend_interval_secs` has passed (or never posted
    /// since start). A failure is logged and retried at the next chance.
    async fn resend_if_due(&mut self) {
        if self
            .last_resend
            .is_some_and(|l| l.elapsed() < self.resend_every)
        {
            return;
        }
        let now = wall_now();
        self.active.expire(now);
        self.metrics.am_active(self.active.len());
        if !self.active.is_empty() {
            let alerts = self.active.to_alertmanager(now, self.horizon);
            match self.post(&alerts).await {
                Ok(()) => debug!(alerts = alerts.len(), "active alerts re-posted"),
                Err(PostError::Transient(e) | PostError::Rejected(e)) => {
                    warn!(error = %e, "cannot re-post the active alerts; retrying soon");
                    return;
                }
            }
        }
        self.last_resend = Some(Instant::now());
    }
}

impl Handler for AlertmanagerHandler {
    async fn handle(&mut self, batch: &[Envelope]) -> Result<(), HandleError> {
        let now = wall_now();
        let mut items: Vec<(usize, &Alert, String)> = Vec::with_capacity(batch.len());
        let mut poison = Vec::new();
        for (i, env) in batch.iter().enumerate() {
            match &env.event {
                Event::Alert(a) => items.push((i, a, detector_of(env))),
                other => {
                    warn!(event_id = %env.id, kind = %other.kind(), "not an alert on the alert stream");
                    poison.push(i);
                }
            }
        }
        let payload: Vec<AmAlert> = items
            .iter()
            .map(|(_, a, d)| to_alertmanager(a, d, now, self.horizon))
            .collect();
        let mut reason = String::from("not an alert");
        let mut delivered = vec![true; items.len()];
        if !payload.is_empty() {
            match self.post(&payload).await {
                Ok(()) => {}
                Err(PostError::Transient(e)) => return Err(HandleError::Transient { reason: e }),
                Err(PostError::Rejected(_)) => {
                    // Find the refused ones; the others are (again) delivered.
                    for (k, one) in payload.iter().enumerate() {
                        match self.post(std::slice::from_ref(one)).await {
                            Ok(()) => {}
                            Err(PostError::Transient(e)) => {
                                return Err(HandleError::Transient { reason: e })
                            }
                            Err(PostError::Rejected(e)) => {
                                warn!(fingerprint = %items[k].1.fingerprint, error = %e, "Alertmanager refused the alert");
                                self.metrics.am_rejected(1);
                                delivered[k] = false;
                                poison.push(items[k].0);
                                reason = e;
                            }
                        }
                    }
                }
            }
        }
        for ((_, alert, detector), ok) in items.iter().zip(&delivered) {
            if *ok {
                info!(alert_kind = %alert.alert_kind, fingerprint = %alert.fingerprint, state = ?alert.state, "alert delivered to Alertmanager");
                self.active.apply(alert, detector);
            }
        }
        self.metrics.am_active(self.active.len());
        self.resend_if_due().await;
        if poison.is_empty() {
            Ok(())
        } else {
            poison.sort_unstable();
            Err(HandleError::Poison {
                indices: poison,
                reason,
            })
        }
    }

    async fn idle(&mut self) -> Result<(), HandleError> {
        self.resend_if_due().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::event::{Evidence, Severity};
    use schema::{EventId, NodeId};

    fn alert(fp: &str, state: AlertState, starts: i64, ends: Option<i64>) -> Alert {
        Alert {
            alert_kind: "reorg".into(),
            severity: Severity::Warning,
            state,
            node: Some(NodeId::new("node1").unwrap()),
            subject: Some("00ab".into()),
            summary: "reorg of depth 1".into(),
            evidence: vec![
                Evidence {
                    name: "depth".into(),
                    value: "1".into(),
                },
                Evidence {
                    name: "first-seen node-2".into(),
                    value: "x".into(),
                },
                Evidence {
                    name: "summary".into(),
                    value: "y".into(),
                },
            ],
            fingerprint: fp.into(),
            starts_at: UnixMicros(starts),
            ends_at: ends.map(UnixMicros),
            caused_by: EventId([0; 32]),
        }
    }

    const S: i64 = 1_000_000;

    #[test]
    fn times_are_rfc3339_utc_with_microseconds() {
        assert_eq!(rfc3339(UnixMicros(0)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(UnixMicros(1_768_478_400_000_001)),
            "2026-01-15T12:00:00.000001Z"
        );
        assert_eq!(
            rfc3339(UnixMicros(951_782_400 * S + 59 * S)),
            "2000-02-29T00:00:59.000000Z"
        );
    }

    #[test]
    fn labels_identify_the_incident_and_annotations_carry_the_evidence() {
        let a = alert("reorg:f:w", AlertState::Firing, 100 * S, None);
        let am = to_alertmanager(&a, "chain", UnixMicros(200 * S), Duration::from_secs(300));
        let l = |k: &str| am.labels.get(k).map(String::as_str);
        assert_eq!(l("alertname"), Some("reorg"));
        assert_eq!(l("severity"), Some("warning"));
        assert_eq!(l("fingerprint"), Some("reorg:f:w"));
        assert_eq!(l("detector"), Some("chain"));
        assert_eq!(l("node"), Some("node1"));
        assert_eq!(l("subject"), Some("00ab"));
        assert_eq!(am.annotations["summary"], "reorg of depth 1");
        assert_eq!(
            am.annotations["evidence"],
            "depth=1\nfirst-seen node-2=x\nsummary=y"
        );
        assert_eq!(am.annotations["depth"], "1");
        assert_eq!(am.annotations["first_seen_node_2"], "x");
        assert_eq!(am.annotations["evidence_summary"], "y");
        assert_eq!(am.starts_at, rfc3339(UnixMicros(100 * S)));
        assert_eq!(am.ends_at, rfc3339(UnixMicros(500 * S)));
    }

    #[test]
    fn absent_node_and_subject_are_no_labels() {
        let mut a = alert("x", AlertState::Firing, S, None);
        a.node = None;
        a.subject = None;
        let am = to_alertmanager(&a, "health", UnixMicros(S), Duration::from_secs(1));
        assert!(!am.labels.contains_key("node"));
        assert!(!am.labels.contains_key("subject"));
    }

    #[test]
    fn a_firing_one_shot_expires_at_its_own_end_when_that_comes_first() {
        let a = alert("x", AlertState::Firing, 100 * S, Some(150 * S));
        let am = to_alertmanager(&a, "chain", UnixMicros(100 * S), Duration::from_secs(300));
        assert_eq!(am.ends_at, rfc3339(UnixMicros(150 * S)));
    }

    #[test]
    fn a_resolved_alert_ends_when_the_detector_said() {
        let a = alert("x", AlertState::Resolved, 100 * S, Some(120 * S));
        let am = to_alertmanager(&a, "chain", UnixMicros(999 * S), Duration::from_secs(300));
        assert_eq!(am.ends_at, rfc3339(UnixMicros(120 * S)));
    }

    #[test]
    fn the_active_set_follows_firing_and_resolved_alerts() {
        let mut set = ActiveAlerts::default();
        set.apply(&alert("a", AlertState::Firing, 10 * S, None), "chain");
        set.apply(
            &alert("b", AlertState::Firing, 10 * S, Some(20 * S)),
            "chain",
        );
        assert_eq!(set.len(), 2);
        // A resolution of an older incident leaves a newer one active.
        set.apply(
            &alert("a", AlertState::Resolved, 5 * S, Some(6 * S)),
            "chain",
        );
        assert_eq!(set.len(), 2);
        set.apply(
            &alert("a", AlertState::Resolved, 10 * S, Some(30 * S)),
            "chain",
        );
        assert_eq!(set.len(), 1);
        set.expire(UnixMicros(19 * S));
        assert_eq!(set.len(), 1);
        set.expire(UnixMicros(20 * S));
        assert!(set.is_empty());
    }

    #[test]
    fn annotation_names_are_valid_label_names() {
        assert_eq!(annotation_name("9lives"), "_9lives");
        assert_eq!(annotation_name(""), "_");
        assert_eq!(annotation_name("node_a.b"), "node_a_b");
        assert_eq!(annotation_name("evidence"), "evidence_evidence");
    }
}
