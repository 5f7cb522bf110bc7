//! Block-level kinds: `block_connected`, `block_disconnected`, `reorg`, `chain_tips` and
//! `utxo_stats`.

use bitcoin::{Amount, BlockHash};
use serde::{Deserialize, Serialize};

use super::{time_part, NaturalKey, Source};
use crate::{Height, UnixMicros};

/// A block connected to the node's active chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockConnected {
    /// The block hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: Height,
    /// Its parent.
    pub prev: BlockHash,
    /// Header timestamp, seconds since the epoch.
    pub header_time: u32,
    /// Serialized size in bytes.
    pub size: u64,
    /// Weight in weight units.
    pub weight: u64,
    /// Number of transactions, coinbase included.
    pub tx_count: u64,
    /// Sum of the coinbase transaction's outputs.
    pub coinbase_value: Amount,
    /// The subsidy the schedule allows at this height on this chain.
    pub subsidy: Amount,
    /// Total fees of the block's transactions (`getblockstats.totalfee`), when known.
    #[serde(default)]
    pub fees: Option<Amount>,
    /// Printable text found in the coinbase script (pool tags), when any.
    #[serde(default)]
    pub miner_tag: Option<String>,
    /// How many times this agent saw this block connected before (0 normally; a block
    /// re-connected after a reorg back is a new occurrence).
    #[serde(default)]
    pub occurrence: u32,
    /// How the agent learned of it.
    pub source: Source,
}

impl NaturalKey for BlockConnected {
    fn key_parts(&self, _: UnixMicros) -> Vec<Vec<u8>> {
        vec![
            self.hash.to_string().into_bytes(),
            self.occurrence.to_le_bytes().to_vec(),
        ]
    }
}

/// A block disconnected from the node's active chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockDisconnected {
    /// The block hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: Height,
    /// How many times this agent saw this block disconnected before.
    #[serde(default)]
    pub occurrence: u32,
    /// How the agent learned of it.
    pub source: Source,
}

impl NaturalKey for BlockDisconnected {
    /// The source is part of the key: the log and ZMQ report the same disconnect separately.
    fn key_parts(&self, _: UnixMicros) -> Vec<Vec<u8>> {
        vec![
            self.hash.to_string().into_bytes(),
            self.occurrence.to_le_bytes().to_vec(),
            self.source.as_str().as_bytes().to_vec(),
        ]
    }
}

/// The node left one branch for another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reorg {
    /// Tip before the reorg.
    pub old_tip: BlockHash,
    /// Height of the old tip.
    pub old_height: Height,
    /// Tip after the reorg.
    pub new_tip: BlockHash,
    /// Height of the new tip.
    pub new_height: Height,
    /// Last block common to both branches.
    pub fork_point: BlockHash,
    /// Height of the fork point.
    pub fork_height: Height,
    /// Number of blocks disconnected.
    pub depth: u32,
    /// Disconnected blocks, old tip first.
    pub disconnected: Vec<BlockHash>,
    /// Connected blocks, lowest first.
    pub connected: Vec<BlockHash>,
    /// How the agent learned of it.
    pub source: Source,
}

impl NaturalKey for Reorg {
    fn key_parts(&self, _: UnixMicros) -> Vec<Vec<u8>> {
        vec![
            self.old_tip.to_string().into_bytes(),
            self.new_tip.to_string().into_bytes(),
            self.source.as_str().as_bytes().to_vec(),
        ]
    }
}

/// Status of a chain tip, as `getchaintips` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TipStatus {
    /// The active chain's tip.
    Active,
    /// A fully validated branch that is not active.
    ValidFork,
    /// All blocks available, not fully validated.
    ValidHeaders,
    /// Only headers known.
    HeadersOnly,
    /// The branch contains an invalid block.
    Invalid,
}

impl TipStatus {
    /// The status as `getchaintips` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TipStatus::Active => "active",
            TipStatus::ValidFork => "valid-fork",
            TipStatus::ValidHeaders => "valid-headers",
            TipStatus::HeadersOnly => "headers-only",
            TipStatus::Invalid => "invalid",
        }
    }
}

/// One entry of `getchaintips`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTip {
    /// Height of the tip.
    pub height: Height,
    /// Hash of the tip.
    pub hash: BlockHash,
    /// Length of the branch from the active chain (0 for the active tip).
    pub branch_len: u32,
    /// Status of the branch.
    pub status: TipStatus,
}

/// The node's chain tips (published when they change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTips {
    /// Every tip the node knows.
    pub tips: Vec<ChainTip>,
}

impl NaturalKey for ChainTips {
    fn key_parts(&self, observed_at: UnixMicros) -> Vec<Vec<u8>> {
        let mut parts = vec![time_part(observed_at)];
        parts.extend(self.tips.iter().map(|t| t.hash.to_string().into_bytes()));
        parts
    }
}

/// `gettxoutsetinfo`'s `block_info`: what one block did to the UTXO set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UtxoBlockInfo {
    /// Value of the outputs this block spent.
    pub prevout_spent: Amount,
    /// Value of the coinbase outputs.
    pub coinbase: Amount,
    /// Value of the new non-coinbase outputs.
    pub new_outputs_ex_coinbase: Amount,
    /// Value made unspendable in this block.
    pub unspendable: Amount,
}

/// UTXO set statistics at one block (`gettxoutsetinfo` with coinstatsindex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UtxoStats {
    /// Height of the block.
    pub height: Height,
    /// Hash of the block.
    pub hash: BlockHash,
    /// Total value of the UTXO set.
    pub total_amount: Amount,
    /// Total value made unspendable up to this block.
    #[serde(default)]
    pub total_unspendable_amount: Amount,
    /// Number of unspent outputs.
    pub txouts: u64,
    /// MuHash of the UTXO set, hex, when the node computed it.
    #[serde(default)]
    pub muhash: Option<String>,
    /// Per-block figures, when coinstatsindex provides them.
    #[serde(default)]
    pub block_info: Option<UtxoBlockInfo>,
}

impl NaturalKey for UtxoStats {
    fn key_parts(&self, _: UnixMicros) -> Vec<Vec<u8>> {
        vec![self.hash.to_string().into_bytes()]
    }
}
