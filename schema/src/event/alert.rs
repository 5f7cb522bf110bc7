//! `alert`: what a detector tells operators.

use serde::{Deserialize, Serialize};

use super::{time_part, NaturalKey};
use crate::{EventId, NodeId, UnixMicros};

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Look at it soon.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// Lowercase name (Alertmanager label).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Whether the incident is ongoing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds.
    Firing,
    /// The condition cleared.
    Resolved,
}

/// One named piece of evidence (`fork_point`, `first_seen_node0`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// What it is.
    pub name: String,
    /// Its value, as text.
    pub value: String,
}

/// One incident, firing or resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Alert kind (`reorg`, `stale_tip`, `selfish_mining`, ...): the subject token.
    pub alert_kind: String,
    /// Urgency.
    pub severity: Severity,
    /// Firing or resolved.
    pub state: AlertState,
    /// The node concerned, when one is.
    #[serde(default)]
    pub node: Option<NodeId>,
    /// The object concerned (block hash, txid), when one is.
    #[serde(default)]
    pub subject: Option<String>,
    /// One line for humans.
    pub summary: String,
    /// What the detector saw.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// Stable identity of the incident: the same incident keeps it from firing to resolved.
    pub fingerprint: String,
    /// When the incident started (event time).
    pub starts_at: UnixMicros,
    /// When it ended (event time), once resolved.
    #[serde(default)]
    pub ends_at: Option<UnixMicros>,
    /// The event that triggered this output.
    pub caused_by: EventId,
}

impl NaturalKey for Alert {
    fn key_parts(&self, _: UnixMicros) -> Vec<Vec<u8>> {
        let state: &[u8] = match self.state {
            AlertState::Firing => b"firing",
            AlertState::Resolved => b"resolved",
        };
        vec![
            self.fingerprint.as_bytes().to_vec(),
            state.to_vec(),
            time_part(self.starts_at),
        ]
    }
}
