//! Validation page SQL: `Connect total` by Core version (the `validation_by_version` view)
//! and by version and stage (`validation_stage_by_version`), both over each version's last
//! 1000 rows of `block_validation`, where `det-compare` credits each block to the version its
//! node ran.

use serde::Deserialize;

use super::Sql;

/// Median and p90 per version, slowest first.
pub fn by_version() -> Sql {
    Sql::new(
        "SELECT version, blocks, nodes, median_connect_ms, p90_connect_ms, last_block \
         FROM validation_by_version ORDER BY median_connect_ms DESC, version LIMIT 200",
    )
}

/// One version's figures.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct VersionRow {
    /// `/Satoshi:30.0.0/`.
    pub version: String,
    /// Blocks validated (the view's last 1000 at most).
    pub blocks: u64,
    /// Nodes that validated them.
    pub nodes: u64,
    /// Median `Connect total`, ms.
    pub median_connect_ms: f64,
    /// 90th percentile, ms.
    pub p90_connect_ms: f64,
    /// The latest block, seconds.
    pub last_block: u32,
}

/// Median and p90 per version and stage.
pub fn by_stage() -> Sql {
    Sql::new(
        "SELECT version, stage_name, blocks, median_ms, p90_ms FROM validation_stage_by_version \
         ORDER BY stage_name, version LIMIT 2000",
    )
}

/// One version's figures for one stage.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct StageRow {
    /// The version.
    pub version: String,
    /// The stage (`Connect block`, `Verify 6 txins`, ...).
    pub stage_name: String,
    /// Blocks.
    pub blocks: u64,
    /// Median, ms.
    pub median_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
}
