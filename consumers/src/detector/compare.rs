//! Rows of `mempool_divergence` and `block_validation` (migration `0003_compare.sql`): the
//! comparison's derived records, written by `det-compare` itself.
//!
//! Like `propagation`, they are not published on NATS: a replay of `det-compare` rewrites the
//! same rows (same ids and values), which collapse with FINAL.

use detectors::{consumer_name, BlockValidation, MempoolDivergence};

use crate::writer::{event_row, secs};

/// The mempool comparison's table.
pub const DIVERGENCE_TABLE: &str = "mempool_divergence";
/// The validation-by-version table.
pub const VALIDATION_TABLE: &str = "block_validation";
/// The migration that creates both.
pub const MIGRATION: &str = "0003";

event_row! {
    /// One `mempool_divergence` row: one node against the fleet in one round.
    DivergenceRow {
        /// The node compared.
        mempool_node: String,
        /// Nodes compared this round.
        fleet_nodes: u32,
        /// Settled transactions a majority holds.
        fleet_txs: u64,
        /// Settled transactions this node holds.
        held: u64,
        /// Transactions it holds that are younger than the settle time.
        young: u64,
        /// Fleet transactions it misses.
        missing: u64,
        /// Of those, the ones no policy explains.
        unexplained: u64,
        /// Settled transactions only it (or a minority) holds.
        only_here: u64,
        /// Missing counts by reason: `reason[i]` has `reason_count[i]`.
        reason: Vec<String>,
        /// See `reason`.
        reason_count: Vec<u64>,
        /// Listed missing transactions (up to `max_listed`).
        missing_txid: Vec<String>,
        /// Their reasons.
        missing_reason: Vec<String>,
        /// Core's reject reason, when rejected.
        missing_detail: Vec<String>,
        /// Listed only-here transactions.
        only_here_txid: Vec<String>,
    }
}

impl DivergenceRow {
    /// The row of one node's round.
    pub fn new(d: &MempoolDivergence) -> DivergenceRow {
        DivergenceRow {
            event_id: d.id().to_hex(),
            node: consumer_name("compare").to_string(),
            observed_at_us: d.at.0,
            observed_at: secs(d.at.0),
            mempool_node: d.node.to_string(),
            fleet_nodes: d.fleet_nodes,
            fleet_txs: d.fleet_txs,
            held: d.held,
            young: d.young,
            missing: d.missing_count(),
            unexplained: d.unexplained(),
            only_here: d.only_here_count,
            reason: d
                .missing_by_reason
                .keys()
                .map(|r| r.as_str().to_string())
                .collect(),
            reason_count: d.missing_by_reason.values().copied().collect(),
            missing_txid: d.missing.iter().map(|(t, _, _)| t.to_string()).collect(),
            missing_reason: d
                .missing
                .iter()
                .map(|(_, r, _)| r.as_str().to_string())
                .collect(),
            missing_detail: d.missing.iter().map(|(_, _, w)| w.clone()).collect(),
            only_here_txid: d.only_here.iter().map(|t| t.to_string()).collect(),
        }
    }
}

event_row! {
    /// One `block_validation` row.
    ValidationRow {
        /// The node that connected the block.
        block_node: String,
        /// Its version then (`/Satoshi:30.0.0/`).
        version: String,
        /// Block hash, hex ('' when not logged).
        hash: String,
        /// Height, when logged.
        height: Option<u32>,
        /// `Connect total`, ms.
        connect_ms: f64,
        /// Stage names as logged; `stage_ms[i]` is `stage[i]`'s time.
        stage: Vec<String>,
        /// See `stage`.
        stage_ms: Vec<f64>,
    }
}

impl ValidationRow {
    /// The row of one block's validation.
    pub fn new(v: &BlockValidation) -> ValidationRow {
        ValidationRow {
            event_id: v.id().to_hex(),
            node: consumer_name("compare").to_string(),
            observed_at_us: v.at.0,
            observed_at: secs(v.at.0),
            block_node: v.node.to_string(),
            version: v.version.clone(),
            hash: v.hash.clone().unwrap_or_default(),
            height: v.height.map(|h| h.0),
            connect_ms: v.connect_ms,
            stage: v.stages.iter().map(|(n, _)| n.clone()).collect(),
            stage_ms: v.stages.iter().map(|(_, ms)| *ms).collect(),
        }
    }
}
