//! Block page SQL: the blocks at a height, and for one block every node's sightings
//! (`block_seen`), connections and disconnections, validation timings (`block_timing`), the
//! version that validated it (`block_validation`), rejections (`invalid_block`) and the
//! propagation detector's summary.
//!
//! `block_seen`, `invalid_block` and `propagation` are keyed by hash; `block_connected` and
//! `block_disconnected` by height then hash, so the height found first narrows them;
//! `block_timing` and `block_validation` are keyed by time, so the sightings' time range
//! (± one hour) narrows them to a partition or two.

use serde::Deserialize;

use super::Sql;

/// How far around the block's first sighting its timing rows are looked for, µs.
pub const TIMING_WINDOW_US: i64 = 3600 * 1_000_000;

/// Every block some node connected at `height`, the most-connected first.
pub fn at_height(height: u32) -> Sql {
    let mut q = Sql::new(
        "SELECT hash, uniqExact(node) AS nodes, any(miner_tag) AS miner, \
         min(observed_at_us) AS first_us FROM block_connected FINAL WHERE height = ",
    );
    q.uint(height.into())
        .push(" GROUP BY hash ORDER BY nodes DESC, first_us, hash LIMIT 100");
    q
}

/// A block at a height.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct AtHeight {
    /// Its hash.
    pub hash: String,
    /// Nodes that connected it.
    pub nodes: u64,
    /// Its miner tag.
    pub miner_tag: Option<String>,
    /// First connection, µs.
    pub first_us: i64,
}

/// Every sighting of `hash` (each node, each stage).
pub fn seen(hash: &str) -> Sql {
    let mut q = Sql::new(
        "SELECT node, stage, observed_at_us, peer, height, source FROM block_seen FINAL \
         WHERE hash = ",
    );
    q.str(hash)
        .push(" ORDER BY observed_at_us, node, stage LIMIT 10000");
    q
}

/// One sighting.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct SeenRow {
    /// The node.
    pub node: String,
    /// `header`, `cmpctblock`, `block` or `tip`.
    pub stage: String,
    /// When, µs.
    pub observed_at_us: i64,
    /// The peer it came from.
    pub peer: Option<u64>,
    /// Its height, when the source said.
    pub height: Option<u32>,
    /// `log`, `zmq`, `rpc`.
    pub source: String,
}

/// Every connection of `hash` (narrowed by `height` when known).
pub fn connected(hash: &str, height: Option<u32>) -> Sql {
    let mut q = Sql::new(
        "SELECT node, observed_at_us, height, prev, header_time, size, weight, tx_count, \
         coinbase_value_sat, subsidy_sat, fees_sat, miner_tag, source \
         FROM block_connected FINAL WHERE ",
    );
    if let Some(h) = height {
        q.push("height = ").uint(h.into()).push(" AND ");
    }
    q.push("hash = ")
        .str(hash)
        .push(" ORDER BY observed_at_us, node LIMIT 10000");
    q
}

/// One node's connection of the block.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct ConnectedRow {
    /// The node.
    pub node: String,
    /// When, µs.
    pub observed_at_us: i64,
    /// Height.
    pub height: u32,
    /// Parent hash.
    pub prev: String,
    /// Header time, seconds.
    pub header_time: u32,
    /// Serialized size, bytes.
    pub size: u64,
    /// Weight units.
    pub weight: u64,
    /// Transactions.
    pub tx_count: u64,
    /// What the coinbase pays.
    pub coinbase_value_sat: u64,
    /// The subsidy at this height.
    pub subsidy_sat: u64,
    /// Fees, when known.
    pub fees_sat: Option<u64>,
    /// Miner tag from the coinbase.
    pub miner_tag: Option<String>,
    /// `zmq` or `rpc`.
    pub source: String,
}

/// The blocks built on `hash` (at `height + 1`).
pub fn children(hash: &str, height: u32) -> Sql {
    let mut q = Sql::new(
        "SELECT hash, uniqExact(node) AS nodes, any(miner_tag) AS miner, \
         min(observed_at_us) AS first_us FROM block_connected FINAL WHERE height = ",
    );
    q.uint(u64::from(height) + 1)
        .push(" AND prev = ")
        .str(hash)
        .push(" GROUP BY hash ORDER BY nodes DESC, hash LIMIT 20");
    q
}

/// Every disconnection of `hash` at `height`.
pub fn disconnected(hash: &str, height: u32) -> Sql {
    let mut q = Sql::new(
        "SELECT node, max(observed_at_us) AS at_us FROM block_disconnected FINAL WHERE height = ",
    );
    q.uint(height.into())
        .push(" AND hash = ")
        .str(hash)
        .push(" GROUP BY node ORDER BY node");
    q
}

/// A node that disconnected the block.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct DisconnectedRow {
    /// The node.
    pub node: String,
    /// When, µs (the last time).
    pub at_us: i64,
}

/// Every node's verdict that `hash` is invalid.
pub fn invalid(hash: &str) -> Sql {
    let mut q = Sql::new(
        "SELECT node, observed_at_us, height, reason, detail, peer, source FROM invalid_block \
         FINAL WHERE hash = ",
    );
    q.str(hash).push(" ORDER BY observed_at_us LIMIT 1000");
    q
}

/// One node's rejection of the block.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct InvalidRow {
    /// The node.
    pub node: String,
    /// When, µs.
    pub observed_at_us: i64,
    /// Height, when known.
    pub height: Option<u32>,
    /// Core's reject reason.
    pub reason: String,
    /// Core's detail.
    pub detail: Option<String>,
    /// The peer that sent it.
    pub peer: Option<u64>,
    /// `log` or `rpc`.
    pub source: String,
}

/// Appends `observed_at`/`observed_at_us` bounds: partitions are pruned by the first,
/// rows by the second.
fn time_range(q: &mut Sql, from_us: i64, to_us: i64) {
    q.push(" AND observed_at >= toDateTime(")
        .int(from_us.div_euclid(1_000_000))
        .push(") AND observed_at <= toDateTime(")
        .int(to_us.div_euclid(1_000_000) + 1)
        .push(") AND observed_at_us >= ")
        .int(from_us)
        .push(" AND observed_at_us <= ")
        .int(to_us);
}

/// Every node's validation timing of `hash`, looked for between `from_us` and `to_us`.
pub fn timing(hash: &str, from_us: i64, to_us: i64) -> Sql {
    let mut q = Sql::new(
        "SELECT node, observed_at_us, stage_name, stage_ms, connect_total_ms, header_to_tip_ms, \
         compact_prefilled, compact_from_mempool, compact_from_extra_pool, compact_requested \
         FROM block_timing FINAL PREWHERE hash = ",
    );
    q.str(hash);
    time_range(&mut q, from_us, to_us);
    q.push(" ORDER BY node, observed_at_us LIMIT 1000");
    q
}

/// One node's validation of the block.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct TimingRow {
    /// The node.
    pub node: String,
    /// When logged, µs.
    pub observed_at_us: i64,
    /// Stage names (`Connect block`, `Verify 6 txins`, ...).
    pub stage_name: Vec<String>,
    /// Their times, ms.
    pub stage_ms: Vec<f64>,
    /// `Connect total`, ms.
    pub connect_total_ms: Option<f64>,
    /// Header received to tip updated, ms.
    pub header_to_tip_ms: Option<f64>,
    /// Compact block: prefilled transactions.
    pub compact_prefilled: Option<u32>,
    /// Compact block: transactions found in the mempool.
    pub compact_from_mempool: Option<u32>,
    /// Compact block: found in the extra pool.
    pub compact_from_extra_pool: Option<u32>,
    /// Compact block: transactions requested from the peer.
    pub compact_requested: Option<u32>,
}

/// The version each node ran when it validated `hash` (`det-compare`'s credit).
pub fn versions(hash: &str, from_us: i64, to_us: i64) -> Sql {
    let mut q = Sql::new(
        "SELECT block_node, any(version) AS node_version FROM block_validation FINAL PREWHERE hash = ",
    );
    q.str(hash);
    time_range(&mut q, from_us, to_us);
    q.push(" GROUP BY block_node ORDER BY block_node LIMIT 1000");
    q
}

/// A node's version for the block.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct VersionRow {
    /// The node.
    pub block_node: String,
    /// `/Satoshi:30.0.0/`.
    pub version: String,
}

/// The propagation detector's summary of `hash` (or of txid `hash` with `kind` `tx`).
pub fn propagation(kind: &str, hash: &str) -> Sql {
    let mut q = Sql::new(
        "SELECT first_seen_us, first_node, median_seen_us, spread_us, nodes, missing \
         FROM propagation FINAL WHERE object_kind = ",
    );
    q.str(kind)
        .push(" AND object_hash = ")
        .str(hash)
        .push(" ORDER BY observed_at_us DESC LIMIT 1");
    q
}

/// The propagation summary.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct PropagationRow {
    /// First sighting in the fleet, µs.
    pub first_seen_us: i64,
    /// Who saw it first.
    pub first_node: String,
    /// Median first sighting, µs.
    pub median_seen_us: i64,
    /// Last first-sighting minus first, µs.
    pub spread_us: i64,
    /// Nodes that saw it.
    pub nodes: u32,
    /// Active nodes that never saw it.
    pub missing: Vec<String>,
}
