//! Rows of `alerts`: detector output. `node` is the detector (the envelope's node),
//! `alert_node` the node the alert is about.

use schema::event::{Alert, AlertState};

use super::{event_row, secs, Head};

event_row! {
    /// One `alerts` row.
    AlertRow {
        /// Alert kind (subject token).
        alert_kind: String,
        /// info, warning, critical.
        severity: String,
        /// firing, resolved.
        state: String,
        /// The node concerned.
        alert_node: Option<String>,
        /// The block or transaction concerned.
        subject: Option<String>,
        /// One line for humans.
        summary: String,
        /// Evidence names.
        evidence_name: Vec<String>,
        /// Evidence values.
        evidence_value: Vec<String>,
        /// Incident identity.
        fingerprint: String,
        /// Incident start, µs.
        starts_at_us: i64,
        /// Incident start, seconds.
        starts_at: u32,
        /// Incident end, µs.
        ends_at_us: Option<i64>,
        /// The triggering event id.
        caused_by: String,
    }
}

impl AlertRow {
    pub(crate) fn new(h: &Head, p: &Alert) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        AlertRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            alert_kind: p.alert_kind.clone(),
            severity: p.severity.as_str().to_string(),
            state: match p.state {
                AlertState::Firing => "firing",
                AlertState::Resolved => "resolved",
            }
            .to_string(),
            alert_node: p.node.as_ref().map(|n| n.to_string()),
            subject: p.subject.clone(),
            summary: p.summary.clone(),
            evidence_name: p.evidence.iter().map(|e| e.name.clone()).collect(),
            evidence_value: p.evidence.iter().map(|e| e.value.clone()).collect(),
            fingerprint: p.fingerprint.clone(),
            starts_at_us: p.starts_at.0,
            starts_at: secs(p.starts_at.0),
            ends_at_us: p.ends_at.map(|t| t.0),
            caused_by: p.caused_by.to_hex(),
        }
    }
}
