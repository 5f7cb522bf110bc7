//! `gap`: the agent could not keep some events (its disk spool was full).

use serde::{Deserialize, Serialize};

use super::{time_part, NaturalKey};
use crate::UnixMicros;

/// Events the agent dropped between two instants; RPC reconciliation fills what it can.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// Number of events dropped.
    pub lost_events: u64,
    /// Time of the first dropped event.
    pub from: UnixMicros,
    /// Time of the last dropped event.
    pub to: UnixMicros,
    /// Why they were dropped.
    pub reason: String,
}

impl NaturalKey for Gap {
    fn key_parts(&self, observed_at: UnixMicros) -> Vec<Vec<u8>> {
        vec![time_part(observed_at), time_part(self.from)]
    }
}
