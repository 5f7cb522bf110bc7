//! Fork tree SQL: the blocks nodes connected and disconnected in the last N heights, the reorgs
//! that touched them, each node's latest `getchaintips`, and invalid blocks there.
//!
//! `block_connected`, `block_disconnected` and `invalid_block` are read by height, the first
//! column of their sort key (connected/disconnected) or a small table (invalid).

use serde::Deserialize;

use super::Sql;

/// The highest height any node connected (0 when none did).
pub fn top() -> Sql {
    Sql::new("SELECT max(height) AS top FROM block_connected")
}

/// The answer of [`top`].
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, clickhouse::Row)]
pub struct Top {
    /// The height.
    pub top: u32,
}

/// Every (block, node) connection at or above `low`.
pub fn connected(low: u32) -> Sql {
    let mut q = Sql::new(
        "SELECT hash, height, prev, node, min(observed_at_us) AS at_us, \
         any(miner_tag) AS miner \
         FROM block_connected FINAL WHERE height >= ",
    );
    q.uint(low.into())
        .push(" GROUP BY hash, height, prev, node ORDER BY height, hash, node LIMIT 50000");
    q
}

/// One node's connection of one block.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct ConnectedRow {
    /// Block hash.
    pub hash: String,
    /// Its height.
    pub height: u32,
    /// Its parent.
    pub prev: String,
    /// The node.
    pub node: String,
    /// When it first connected it, µs.
    pub at_us: i64,
    /// The coinbase's miner tag, when known.
    pub miner_tag: Option<String>,
}

/// Every (block, node) disconnection at or above `low`.
pub fn disconnected(low: u32) -> Sql {
    let mut q = Sql::new(
        "SELECT hash, height, node, max(observed_at_us) AS at_us \
         FROM block_disconnected FINAL WHERE height >= ",
    );
    q.uint(low.into())
        .push(" GROUP BY hash, height, node ORDER BY height, hash, node LIMIT 50000");
    q
}

/// One node's disconnection of one block.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct DisconnectedRow {
    /// Block hash.
    pub hash: String,
    /// Its height.
    pub height: u32,
    /// The node.
    pub node: String,
    /// When it last disconnected it, µs.
    pub at_us: i64,
}

/// Reorgs whose old or new tip is at or above `low`, newest first.
pub fn reorgs(low: u32) -> Sql {
    let mut q = Sql::new(
        "SELECT node, observed_at_us, old_tip, old_height, new_tip, new_height, fork_point, \
         fork_height, depth, disconnected, connected FROM reorg FINAL WHERE old_height >= ",
    );
    q.uint(low.into())
        .push(" OR new_height >= ")
        .uint(low.into())
        .push(" ORDER BY observed_at_us DESC LIMIT 500");
    q
}

/// One reorg one node went through.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct ReorgRow {
    /// The node.
    pub node: String,
    /// When, µs.
    pub observed_at_us: i64,
    /// Its tip before.
    pub old_tip: String,
    /// Height of `old_tip`.
    pub old_height: u32,
    /// Its tip after.
    pub new_tip: String,
    /// Height of `new_tip`.
    pub new_height: u32,
    /// The last block both branches share.
    pub fork_point: String,
    /// Its height.
    pub fork_height: u32,
    /// Blocks disconnected.
    pub depth: u32,
    /// The blocks disconnected.
    pub disconnected: Vec<String>,
    /// The blocks connected.
    pub connected: Vec<String>,
}

/// Each node's latest `getchaintips` answer.
pub fn chain_tips() -> Sql {
    Sql::new(
        "SELECT node, observed_at_us, tip_height, tip_hash, tip_branch_len, tip_status \
         FROM chain_tips FINAL \
         PREWHERE (node, observed_at_us) IN \
         (SELECT node, max(observed_at_us) FROM chain_tips GROUP BY node) \
         ORDER BY node LIMIT 1 BY node",
    )
}

/// One node's chain tips (parallel arrays).
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct ChainTipsRow {
    /// The node.
    pub node: String,
    /// When it answered, µs.
    pub observed_at_us: i64,
    /// Height of each tip.
    pub tip_height: Vec<u32>,
    /// Hash of each tip.
    pub tip_hash: Vec<String>,
    /// Blocks between each tip and the active chain (0 for the active tip).
    pub tip_branch_len: Vec<u32>,
    /// `active`, `valid-fork`, `valid-headers`, `headers-only`, `invalid`.
    pub tip_status: Vec<String>,
}

/// Invalid blocks at or above `low`.
pub fn invalid(low: u32) -> Sql {
    let mut q = Sql::new(
        "SELECT hash, assumeNotNull(height) AS block_height, node, reason, detail, peer, \
         min(observed_at_us) AS at_us FROM invalid_block FINAL \
         WHERE isNotNull(height) AND height >= ",
    );
    q.uint(low.into()).push(
        " GROUP BY hash, block_height, node, reason, detail, peer \
         ORDER BY block_height, hash, node LIMIT 1000",
    );
    q
}

/// One node's report of an invalid block.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct InvalidRow {
    /// Block hash.
    pub hash: String,
    /// Its height.
    pub height: u32,
    /// The node.
    pub node: String,
    /// Core's reject reason (`bad-cb-amount`).
    pub reason: String,
    /// Core's detail.
    pub detail: Option<String>,
    /// The peer that sent it.
    pub peer: Option<u64>,
    /// When, µs.
    pub at_us: i64,
}
