//! `node_status` and `peer_snapshot`: the periodic RPC summaries of one node.

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

/// The node's peers (`getpeerinfo`, every 60 s by default), with who joined and left since
/// the previous poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerSnapshot {
    /// Every peer connected at the poll.
    pub peers: Vec<Peer>,
    /// Peer ids connected now and not at the previous poll (empty at the agent's first).
    #[serde(default)]
    pub joined: Vec<u64>,
    /// Peer ids connected at the previous poll and not now.
    #[serde(default)]
    pub left: Vec<u64>,
}

/// One peer as `getpeerinfo` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peer {
    /// The node's id for the connection (the `peer=N` of its log lines).
    pub id: u64,
    /// `host:port`.
    pub addr: String,
    /// `ipv4`, `ipv6`, `onion`, `not_publicly_routable`, ...
    #[serde(default)]
    pub network: Option<String>,
    /// `outbound-full-relay`, `block-relay-only`, `inbound`, `manual`, `feeler`, ...
    #[serde(default)]
    pub connection_type: Option<String>,
    /// Whether the peer connected to the node.
    pub inbound: bool,
    /// P2P protocol version.
    pub version: u32,
    /// User agent.
    pub subversion: String,
    /// Last ping, milliseconds.
    #[serde(default)]
    pub ping_ms: Option<f64>,
    /// Bytes sent to it.
    pub bytes_sent: u64,
    /// Bytes received from it.
    pub bytes_recv: u64,
    /// Connected since, seconds since the epoch.
    pub conn_time: i64,
    /// Its last block the node knows it has, when known.
    #[serde(default)]
    pub synced_blocks: Option<i64>,
}

impl NaturalKey for PeerSnapshot {
    fn key_parts(&self, observed_at: UnixMicros) -> Vec<Vec<u8>> {
        vec![time_part(observed_at)]
    }
}
