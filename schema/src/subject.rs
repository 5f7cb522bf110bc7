//! Stream names, subject names and NATS header names.
//!
//! - `bmon.ev.<kind>.<node>` in stream [`EVENTS_STREAM`]: every node event.
//! - `bmon.log.<node>` in stream [`LOGS_STREAM`]: raw debug.log batches (size-limited).
//! - `bmon.alert.<alert_kind>` in stream [`ALERTS_STREAM`]: detector alerts.
//! - `bmon.dead.<consumer>`: messages a consumer could not decode, kept for inspection.
//! - `_INBOX_<user>.>`: replies to one NATS user ([`inbox_prefix`]).
//!
//! A node's credentials may publish only on subjects that end in its own name.

use crate::event::{Event, Kind};
use crate::NodeId;

/// Stream of node events.
pub const EVENTS_STREAM: &str = "BMON_EVENTS";
/// Stream of raw log batches.
pub const LOGS_STREAM: &str = "BMON_LOGS";
/// Stream of alerts.
pub const ALERTS_STREAM: &str = "BMON_ALERTS";
/// Stream of dead letters (undecodable messages).
pub const DEAD_STREAM: &str = "BMON_DEAD";

/// Subjects captured by [`EVENTS_STREAM`].
pub const EVENTS_SUBJECTS: &str = "bmon.ev.>";
/// Subjects captured by [`LOGS_STREAM`].
pub const LOGS_SUBJECTS: &str = "bmon.log.>";
/// Subjects captured by [`ALERTS_STREAM`].
pub const ALERTS_SUBJECTS: &str = "bmon.alert.>";
/// Subjects captured by [`DEAD_STREAM`].
pub const DEAD_SUBJECTS: &str = "bmon.dead.>";

/// Header carrying the event id (JetStream de-duplicates on it).
pub const HEADER_MSG_ID: &str = "Nats-Msg-Id";
/// Header carrying the event kind.
pub const HEADER_KIND: &str = "Bmon-Kind";
/// Header carrying the node name.
pub const HEADER_NODE: &str = "Bmon-Node";
/// Content type header name.
pub const HEADER_CONTENT_TYPE: &str = "Content-Type";
/// Content type of every bmon message.
pub const CONTENT_TYPE: &str = "application/msgpack";

/// `bmon.ev.<kind>.<node>`.
pub fn event(kind: Kind, node: &NodeId) -> String {
    format!("bmon.ev.{}.{}", kind.as_str(), node)
}

/// `bmon.ev.<kind>.*`: every node's events of one kind.
pub fn event_kind_filter(kind: Kind) -> String {
    format!("bmon.ev.{}.*", kind.as_str())
}

/// `bmon.log.<node>`.
pub fn log(node: &NodeId) -> String {
    format!("bmon.log.{node}")
}

/// `bmon.alert.<alert_kind>`.
pub fn alert(alert_kind: &str) -> String {
    format!("bmon.alert.{alert_kind}")
}

/// `_INBOX_<user>`: the inbox prefix of a NATS user. Each user's replies (PubAcks, pull
/// deliveries, API answers) travel under its own prefix, and the server lets a user subscribe
/// to its own prefix only, so one node's credentials cannot read another's replies or the
/// consumers' deliveries.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// `bmon.dead.<consumer>`.
pub fn dead_letter(consumer: &str) -> String {
    format!("bmon.dead.{consumer}")
}

/// The subject an event is published on.
pub fn for_event(kind: Kind, node: &NodeId, event: &Event) -> String {
    match event {
        Event::Alert(a) => alert(&a.alert_kind),
        Event::LogBatch(_) => log(node),
        _ => self::event(kind, node),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_design() {
        let n = NodeId::new("node7").unwrap();
        assert_eq!(event(Kind::Reorg, &n), "bmon.ev.reorg.node7");
        assert_eq!(event_kind_filter(Kind::TxSeen), "bmon.ev.tx_seen.*");
        assert_eq!(log(&n), "bmon.log.node7");
        assert_eq!(alert("stale_tip"), "bmon.alert.stale_tip");
    }
}
