//! Fleet page SQL: every node's latest `node_status`, and the number of open (firing) alerts
//! per node.

use serde::Deserialize;

use super::Sql;

/// The latest status row of every node. The inner `max` reads no `FINAL`: a duplicate copy of
/// a row cannot change a maximum, and skipping the merge keeps the scan to two columns.
pub const LATEST_STATUS: &str = "\
SELECT node, subversion, version, blocks AS height, headers, best_block_hash, tip_time, \
initial_block_download, verification_progress, peers_in, peers_out, mempool_count, \
mempool_bytes, observed_at_us AS last_heard_us \
FROM node_status FINAL \
PREWHERE (node, observed_at_us) IN (SELECT node, max(observed_at_us) FROM node_status GROUP BY node) \
ORDER BY node LIMIT 1 BY node";

/// Open alerts per node the alert is about (`''`: fleet-wide). An alert is open while the
/// latest row of its fingerprint says `firing`.
pub const OPEN_ALERTS: &str = "\
SELECT about AS node, count() AS open FROM (\
SELECT argMax(ifNull(alert_node, ''), observed_at_us) AS about, \
argMax(state, observed_at_us) AS last_state \
FROM alerts FINAL GROUP BY alert_kind, fingerprint) \
WHERE last_state = 'firing' GROUP BY about ORDER BY about";

/// The status query.
pub fn latest_status() -> Sql {
    Sql::new(LATEST_STATUS)
}

/// The open-alerts query.
pub fn open_alerts() -> Sql {
    Sql::new(OPEN_ALERTS)
}

/// One node's latest status.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct NodeRow {
    /// Node name.
    pub node: String,
    /// `/Satoshi:30.0.0/`.
    pub subversion: String,
    /// Numeric version (300000).
    pub version: u32,
    /// Blocks of its active chain.
    pub height: u32,
    /// Headers it knows.
    pub headers: u32,
    /// Its tip.
    pub best_block_hash: String,
    /// The tip's header time, seconds.
    pub tip_time: Option<i64>,
    /// 1 while in initial block download.
    pub initial_block_download: u8,
    /// 0..1.
    pub verification_progress: f64,
    /// Inbound peers.
    pub peers_in: u32,
    /// Outbound peers.
    pub peers_out: u32,
    /// Transactions in its mempool.
    pub mempool_count: u64,
    /// Their size.
    pub mempool_bytes: u64,
    /// When this status was taken, µs.
    pub last_heard_us: i64,
}

/// Open alerts about one node.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct OpenAlerts {
    /// The node (`''`: not about one node).
    pub node: String,
    /// Firing alerts.
    pub open: u64,
}
