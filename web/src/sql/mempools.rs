//! Mempools page SQL: each node's latest mempool snapshot, its latest comparison with the
//! fleet's mempool (`mempool_divergence`) and its latest block template compared with the
//! fleet's (`template_comparison`).
//!
//! Each reads one row per node: the latest by the node-first sort key (the inner `max` needs
//! no `FINAL`: copies cannot change a maximum).

use serde::Deserialize;

use super::Sql;

/// Each node's latest `mempool_snapshot`.
pub fn snapshots() -> Sql {
    Sql::new(
        "SELECT node, observed_at_us, count, vsize, total_fee_sat, min_fee_sat_per_kvb, \
         txid_digest, mirror_count, mirror_digest FROM mempool_snapshot FINAL \
         PREWHERE (node, observed_at_us) IN \
         (SELECT node, max(observed_at_us) FROM mempool_snapshot GROUP BY node) \
         ORDER BY node LIMIT 1 BY node",
    )
}

/// A node's mempool figures.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct SnapshotRow {
    /// The node.
    pub node: String,
    /// When, µs.
    pub observed_at_us: i64,
    /// Transactions.
    pub count: u64,
    /// Their virtual size.
    pub vsize: u64,
    /// Their fees.
    pub total_fee_sat: Option<u64>,
    /// The node's minimum fee rate now.
    pub min_fee_sat_per_kvb: u64,
    /// Order-independent digest of the txid set.
    pub txid_digest: String,
    /// The agent's mirror: count.
    pub mirror_count: Option<u64>,
    /// The agent's mirror: digest.
    pub mirror_digest: Option<String>,
}

/// Each node's latest comparison with the fleet's mempool.
pub fn divergence() -> Sql {
    Sql::new(
        "SELECT mempool_node, observed_at_us, fleet_nodes, fleet_txs, held, young, missing, \
         unexplained, only_here, reason, reason_count, missing_txid, missing_reason, \
         missing_detail, only_here_txid FROM mempool_divergence FINAL \
         PREWHERE (mempool_node, observed_at_us) IN \
         (SELECT mempool_node, max(observed_at_us) FROM mempool_divergence GROUP BY mempool_node) \
         ORDER BY mempool_node LIMIT 1 BY mempool_node",
    )
}

/// One node against the fleet.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct DivergenceRow {
    /// The node compared.
    pub mempool_node: String,
    /// When, µs.
    pub observed_at_us: i64,
    /// Nodes compared.
    pub fleet_nodes: u32,
    /// Settled transactions a majority holds.
    pub fleet_txs: u64,
    /// Of those, held here.
    pub held: u64,
    /// Held here, too young to compare.
    pub young: u64,
    /// Fleet transactions missing here.
    pub missing: u64,
    /// Of those, not explained by policy.
    pub unexplained: u64,
    /// Held only here (or by a minority).
    pub only_here: u64,
    /// Missing counts by reason.
    pub reason: Vec<String>,
    /// See `reason`.
    pub reason_count: Vec<u64>,
    /// Listed missing transactions.
    pub missing_txid: Vec<String>,
    /// Their reasons.
    pub missing_reason: Vec<String>,
    /// Core's reject text, when rejected.
    pub missing_detail: Vec<String>,
    /// Listed only-here transactions.
    pub only_here_txid: Vec<String>,
}

/// Each node's latest template comparison.
pub fn templates() -> Sql {
    Sql::new(
        "SELECT template_node, observed_at_us, prev, height, fleet_templates, jaccard, fees_sat, \
         fleet_median_fees_sat, weight, fleet_median_weight, left_out, explained_fees_sat, \
         left_out_txid, left_out_fee_sat, left_out_reason FROM template_comparison FINAL \
         PREWHERE (template_node, observed_at_us) IN \
         (SELECT template_node, max(observed_at_us) FROM template_comparison GROUP BY template_node) \
         ORDER BY template_node LIMIT 1 BY template_node",
    )
}

/// One node's template against the fleet's.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct TemplateRow {
    /// The node compared.
    pub template_node: String,
    /// When, µs.
    pub observed_at_us: i64,
    /// The parent the templates build on.
    pub prev: String,
    /// Their height.
    pub height: u32,
    /// Templates compared.
    pub fleet_templates: u32,
    /// Similarity with the fleet's set.
    pub jaccard: f64,
    /// This template's fees.
    pub fees_sat: u64,
    /// The median template's fees.
    pub fleet_median_fees_sat: u64,
    /// This template's weight.
    pub weight: u64,
    /// The median template's weight.
    pub fleet_median_weight: u64,
    /// Fleet transactions left out.
    pub left_out: u64,
    /// Fees of those the node's policy keeps out.
    pub explained_fees_sat: u64,
    /// The highest-fee left-out transactions.
    pub left_out_txid: Vec<String>,
    /// Their fees.
    pub left_out_fee_sat: Vec<u64>,
    /// Why each is left out.
    pub left_out_reason: Vec<String>,
}
