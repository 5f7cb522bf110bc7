//! `node_status`: the periodic RPC summary of one node.

use bitcoin::BlockHash;
use serde::{Deserialize, Serialize};

use super::{time_part, NaturalKey};
use crate::{Height, UnixMicros};

/// One node's state, polled over RPC (every 10 s by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Numeric version (`getnetworkinfo.version`, e.g. 300000 for v30.0.0).
    pub version: u32,
    /// User agent (`/Satoshi:30.99.0/`).
    pub subversion: String,
    /// Chain name as the node reports it (`main`, `test`, `signet`, `regtest`).
    pub chain: String,
    /// Height of the active tip.
    pub blocks: Height,
    /// Height of the best known header.
    pub headers: Height,
    /// Hash of the active tip.
    pub best_block_hash: BlockHash,
    /// Header time of the active tip, seconds since the epoch.
    #[serde(default)]
    pub tip_time: Option<i64>,
    /// Whether the node is in initial block download.
    pub initial_block_download: bool,
    /// Verification progress estimate, 0..1 (a ratio, not money).
    #[serde(default)]
    pub verification_progress: f64,
    /// Inbound peer count.
    pub peers_in: u32,
    /// Outbound peer count.
    pub peers_out: u32,
    /// Transactions in the mempool.
    pub mempool_count: u64,
    /// Sum of mempool transaction virtual sizes (`getmempoolinfo.bytes`).
    pub mempool_bytes: u64,
    /// Mempool usage in bytes of memory.
    #[serde(default)]
    pub mempool_usage: u64,
    /// Minimum fee rate to enter the mempool, satoshis per 1000 vbytes.
    pub mempool_min_fee_sat_per_kvb: u64,
    /// Seconds since the node started (`uptime`).
    pub uptime_secs: u64,
    /// The node's own estimate of its clock offset to its peers, seconds (`timeoffset`).
    #[serde(default)]
    pub clock_offset_secs: Option<i64>,
    /// Warnings the node reports (`getnetworkinfo.warnings`).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The node's transaction relay policy, as far as RPC tells it.
    #[serde(default)]
    pub policy: RelayPolicy,
}

/// What a node accepts into its mempool (`getmempoolinfo`, `getnetworkinfo`): the reasons a
/// node may rightly hold fewer transactions than the fleet. `None`: not reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayPolicy {
    /// `-minrelaytxfee`, satoshis per 1000 vbytes.
    #[serde(default)]
    pub min_relay_fee_sat_per_kvb: Option<u64>,
    /// Whether the node relays transactions at all (`localrelay`; false under `-blocksonly`).
    #[serde(default)]
    pub relays_transactions: Option<bool>,
    /// `-maxmempool` in bytes of memory.
    #[serde(default)]
    pub max_mempool_bytes: Option<u64>,
}

impl NaturalKey for NodeStatus {
    fn key_parts(&self, observed_at: UnixMicros) -> Vec<Vec<u8>> {
        vec![time_part(observed_at)]
    }
}
