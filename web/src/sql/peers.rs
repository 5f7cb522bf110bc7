//! Peers page SQL: each node's latest `getpeerinfo` (`peer_snapshot`), and how many recent
//! blocks each peer delivered first (what the `block_first_peer` view counts, over the
//! last week only so the page stays fast on a long history).

use serde::Deserialize;

use super::Sql;

/// How far back the first-delivery counts look, seconds.
pub const FIRST_PEER_WINDOW_SECS: i64 = 7 * 86_400;

/// Each node's latest peer list.
pub fn snapshots() -> Sql {
    Sql::new(
        "SELECT node, observed_at_us, peers, peer_id, peer_addr, peer_network, \
         peer_connection_type, peer_inbound, peer_version, peer_subversion, peer_ping_ms, \
         peer_bytes_sent, peer_bytes_recv, peer_conn_time, joined, left \
         FROM peer_snapshot FINAL PREWHERE (node, observed_at_us) IN \
         (SELECT node, max(observed_at_us) FROM peer_snapshot GROUP BY node) \
         ORDER BY node LIMIT 1 BY node",
    )
}

/// One node's peers (parallel arrays).
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct PeerSnapshotRow {
    /// The node.
    pub node: String,
    /// When, µs.
    pub observed_at_us: i64,
    /// Peers.
    pub peers: u32,
    /// The node's connection ids.
    pub peer_id: Vec<u64>,
    /// Addresses.
    pub peer_addr: Vec<String>,
    /// `ipv4`, `onion`, ...
    pub peer_network: Vec<String>,
    /// `outbound-full-relay`, `block-relay-only`, `inbound`, `manual`, ...
    pub peer_connection_type: Vec<String>,
    /// 1 when inbound.
    pub peer_inbound: Vec<u8>,
    /// Protocol versions.
    pub peer_version: Vec<u32>,
    /// User agents.
    pub peer_subversion: Vec<String>,
    /// Ping, ms.
    pub peer_ping_ms: Vec<f64>,
    /// Bytes sent.
    pub peer_bytes_sent: Vec<u64>,
    /// Bytes received.
    pub peer_bytes_recv: Vec<u64>,
    /// Connection time, seconds.
    pub peer_conn_time: Vec<i64>,
    /// Ids that joined since the previous poll.
    pub joined: Vec<u64>,
    /// Ids that left.
    pub left: Vec<u64>,
}

/// Blocks each (node, peer) delivered first since `since_secs`.
pub fn first_deliveries(since_secs: i64) -> Sql {
    let mut q = Sql::new(
        "SELECT node, first_peer, count() AS blocks FROM (\
         SELECT node, hash, argMin(assumeNotNull(peer), observed_at_us) AS first_peer \
         FROM block_seen FINAL PREWHERE observed_at >= toDateTime(",
    );
    q.int(since_secs).push(
        ") WHERE isNotNull(peer) GROUP BY node, hash) \
         GROUP BY node, first_peer ORDER BY node, blocks DESC LIMIT 10000",
    );
    q
}

/// Blocks one peer delivered first to one node.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct FirstDeliveryRow {
    /// The node.
    pub node: String,
    /// The peer id.
    pub first_peer: u64,
    /// Blocks.
    pub blocks: u64,
}
