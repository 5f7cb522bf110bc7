//! Rows of `mempool_divergence`, `block_validation` and `template_comparison` (migration
//! `0003_compare.sql`): the
//! comparison's derived records, written by `det-compare` itself.
//!
//! Like `propagation`, they are not published on NATS: a replay of `det-compare` rewrites the
//! same rows (same ids and values), which collapse with FINAL.

use detectors::{consumer_name, BlockValidation, MempoolDivergence, TemplateComparison};

use crate::writer::{event_row, secs};

/// The mempool comparison's table.
pub const DIVERGENCE_TABLE: &str = "mempool_divergence";
/// The validation-by-version table.
pub const VALIDATION_TABLE: &str = "block_validation";
/// The template comparison's table.
pub const TEMPLATE_TABLE: &str = "template_comparison";
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
            node: consumer_name(detectors::DetectorName::Compare).to_string(),
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
            node: consumer_name(detectors::DetectorName::Compare).to_string(),
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

event_row! {
    /// One `template_comparison` row: one node's block template against the fleet's.
    TemplateRow {
        /// The node compared.
        template_node: String,
        /// The parent the compared templates build on.
        prev: String,
        /// The height they are for.
        height: u32,
        /// Templates compared.
        fleet_templates: u32,
        /// Jaccard similarity with the fleet's set.
        jaccard: f64,
        /// This template's fees, sat.
        fees_sat: u64,
        /// The median template's fees, sat.
        fleet_median_fees_sat: u64,
        /// This template's weight.
        weight: u64,
        /// The median template's weight.
        fleet_median_weight: u64,
        /// Fleet transactions this template leaves out.
        left_out: u64,
        /// The fees of those the node's own policy keeps out, sat.
        explained_fees_sat: u64,
        /// The highest-fee of them; `left_out_fee_sat[i]`, `left_out_reason[i]` are
        /// `left_out_txid[i]`'s.
        left_out_txid: Vec<String>,
        /// See `left_out_txid`.
        left_out_fee_sat: Vec<u64>,
        /// See `left_out_txid`.
        left_out_reason: Vec<String>,
    }
}

impl TemplateRow {
    /// The row of one node's round.
    pub fn new(t: &TemplateComparison) -> TemplateRow {
        TemplateRow {
            event_id: t.id().to_hex(),
            node: consumer_name(detectors::DetectorName::Compare).to_string(),
            observed_at_us: t.at.0,
            observed_at: secs(t.at.0),
            template_node: t.node.to_string(),
            prev: t.prev.to_string(),
            height: t.height.0,
            fleet_templates: t.fleet_templates,
            jaccard: t.jaccard,
            fees_sat: t.fees_sat,
            fleet_median_fees_sat: t.fleet_median_fees_sat,
            weight: t.weight,
            fleet_median_weight: t.fleet_median_weight,
            left_out: t.left_out_count,
            explained_fees_sat: t.explained_fees_sat,
            left_out_txid: t.left_out.iter().map(|(x, _, _)| x.to_string()).collect(),
            left_out_fee_sat: t.left_out.iter().map(|(_, f, _)| *f).collect(),
            left_out_reason: t.left_out.iter().map(|(_, _, w)| w.clone()).collect(),
        }
    }
}
