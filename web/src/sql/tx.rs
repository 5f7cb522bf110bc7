//! Transaction page SQL: each node's arrival (`tx_seen`), rejections (`tx_rejected`),
//! replacements either way (`tx_replaced`), removals (`tx_removed`) and, for removals by a
//! block, the block the node connected at that moment.
//!
//! `tx_seen`, `tx_rejected`, `tx_removed` and `tx_replaced` (by the replaced txid) are keyed by
//! txid; the search by replacing txid scans `tx_replaced`, a small table.

use serde::Deserialize;

use super::Sql;

/// A removal "by a block" is matched with the block its node connected within this much, µs.
pub const CONFIRM_WINDOW_US: i64 = 10 * 1_000_000;

/// Every arrival of `txid`.
pub fn seen(txid: &str) -> Sql {
    let mut q = Sql::new(
        "SELECT node, observed_at_us, wtxid, mempool_sequence, vsize, fee_sat, source \
         FROM tx_seen FINAL WHERE txid = ",
    );
    q.str(txid)
        .push(" ORDER BY observed_at_us, node LIMIT 10000");
    q
}

/// One node's arrival of the transaction.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct SeenRow {
    /// The node.
    pub node: String,
    /// When, µs.
    pub observed_at_us: i64,
    /// Its wtxid, when known.
    pub wtxid: Option<String>,
    /// The node's mempool sequence.
    pub mempool_sequence: Option<u64>,
    /// Virtual size.
    pub vsize: Option<u64>,
    /// Fee, sat.
    pub fee_sat: Option<u64>,
    /// `zmq`, `rpc` (resync).
    pub source: String,
}

/// Every rejection of `txid`.
pub fn rejected(txid: &str) -> Sql {
    let mut q = Sql::new(
        "SELECT node, observed_at_us, wtxid, peer, reason, reason_text FROM tx_rejected FINAL \
         WHERE txid = ",
    );
    q.str(txid)
        .push(" ORDER BY observed_at_us, node LIMIT 10000");
    q
}

/// One node's rejection.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct RejectedRow {
    /// The node.
    pub node: String,
    /// When, µs.
    pub observed_at_us: i64,
    /// Its wtxid.
    pub wtxid: Option<String>,
    /// The peer that relayed it.
    pub peer: Option<u64>,
    /// Core's reason code.
    pub reason: String,
    /// Core's full text.
    pub reason_text: String,
}

/// Replacements where `txid` was replaced.
pub fn replaced(txid: &str) -> Sql {
    let mut q = Sql::new(format!("{REPLACED_COLUMNS} WHERE replaced_txid = "));
    q.str(txid)
        .push(" ORDER BY observed_at_us, node LIMIT 1000");
    q
}

/// Replacements where `txid` replaced another.
pub fn replacing(txid: &str) -> Sql {
    let mut q = Sql::new(format!("{REPLACED_COLUMNS} PREWHERE new_txid = "));
    q.str(txid)
        .push(" ORDER BY observed_at_us, node LIMIT 1000");
    q
}

const REPLACED_COLUMNS: &str = "SELECT node, observed_at_us, replaced_txid, new_txid, \
replaced_fee_sat, new_fee_sat, replaced_vsize, new_vsize FROM tx_replaced FINAL";

/// One node's replacement.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct ReplacedRow {
    /// The node.
    pub node: String,
    /// When, µs.
    pub observed_at_us: i64,
    /// The transaction that left.
    pub replaced_txid: String,
    /// The one that came in.
    pub new_txid: String,
    /// Fee of the replaced one.
    pub replaced_fee_sat: Option<u64>,
    /// Fee of the new one.
    pub new_fee_sat: Option<u64>,
    /// Size of the replaced one.
    pub replaced_vsize: Option<u64>,
    /// Size of the new one.
    pub new_vsize: Option<u64>,
}

/// Every removal of `txid`.
pub fn removed(txid: &str) -> Sql {
    let mut q = Sql::new(
        "SELECT node, observed_at_us, mempool_sequence, reason, source FROM tx_removed FINAL \
         WHERE txid = ",
    );
    q.str(txid)
        .push(" ORDER BY observed_at_us, node LIMIT 10000");
    q
}

/// One node's removal.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct RemovedRow {
    /// The node.
    pub node: String,
    /// When, µs.
    pub observed_at_us: i64,
    /// The node's mempool sequence.
    pub mempool_sequence: Option<u64>,
    /// `block`, `replaced`, `conflict`, `evicted`, `reorg`, `unknown`.
    pub reason: String,
    /// `zmq`, `rpc`.
    pub source: String,
}

/// The blocks `nodes` connected between `from_us` and `to_us`.
pub fn blocks_connected(nodes: &[&str], from_us: i64, to_us: i64) -> Sql {
    let mut q = Sql::new(
        "SELECT node, hash, height, observed_at_us FROM block_connected FINAL \
         PREWHERE observed_at >= toDateTime(",
    );
    q.int(from_us.div_euclid(1_000_000))
        .push(") AND observed_at <= toDateTime(")
        .int(to_us.div_euclid(1_000_000) + 1)
        .push(") WHERE observed_at_us >= ")
        .int(from_us)
        .push(" AND observed_at_us <= ")
        .int(to_us)
        .push(" AND node IN ")
        .str_list(nodes)
        .push(" ORDER BY observed_at_us LIMIT 10000");
    q
}

/// A block a node connected.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct BlockAt {
    /// The node.
    pub node: String,
    /// Block hash.
    pub hash: String,
    /// Height.
    pub height: u32,
    /// When, µs.
    pub observed_at_us: i64,
}
