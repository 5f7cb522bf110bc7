//! Kinds that only debug.log tells: when a block arrived before validation (`block_seen`), how
//! long validation took (`block_timing`), rejections and replacements, invalid blocks, download
//! timeouts, warnings, and the raw lines themselves (`log_batch`).

use bitcoin::{Amount, BlockHash, Txid, Wtxid};
use serde::{Deserialize, Serialize};

use super::{time_part, NaturalKey, Source};
use crate::{Height, UnixMicros};

/// How far a block had come when a node saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockStage {
    /// The header arrived (`Saw new header`, `Saw new cmpctblock header`).
    Header,
    /// A compact block arrived or was reconstructed.
    Cmpctblock,
    /// The full block arrived (`received block`).
    Block,
    /// The block became the tip (`UpdateTip`).
    Tip,
}

impl BlockStage {
    /// Lowercase name used in ClickHouse.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockStage::Header => "header",
            BlockStage::Cmpctblock => "cmpctblock",
            BlockStage::Block => "block",
            BlockStage::Tip => "tip",
        }
    }
}

/// A node saw a block at some stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockSeen {
    /// The block hash.
    pub hash: BlockHash,
    /// Its height, when the line says it.
    #[serde(default)]
    pub height: Option<Height>,
    /// The stage.
    pub stage: BlockStage,
    /// The node-local peer id it came from, when known.
    #[serde(default)]
    pub peer: Option<u64>,
    /// How the agent learned of it.
    pub source: Source,
}

impl NaturalKey for BlockSeen {
    fn key_parts(&self, _: UnixMicros) -> Vec<Vec<u8>> {
        vec![
            self.hash.to_string().into_bytes(),
            self.stage.as_str().as_bytes().to_vec(),
            self.peer.unwrap_or(u64::MAX).to_le_bytes().to_vec(),
            self.source.as_str().as_bytes().to_vec(),
        ]
    }
}

/// One named validation stage and its duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingStage {
    /// Stage name as the log line names it (`Connect block`, `Verify 6 txins`, ...).
    pub name: String,
    /// Duration in milliseconds.
    pub ms: f64,
}

/// Compact block reconstruction counts (`-debug=cmpctblock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactReconstruction {
    /// Transactions prefilled by the sender.
    pub prefilled: u32,
    /// Transactions found in the mempool.
    pub from_mempool: u32,
    /// Transactions found in the extra pool.
    pub from_extra_pool: u32,
    /// Transactions that had to be requested.
    pub requested: u32,
}

/// Validation timings of one block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockTiming {
    /// The block hash, when the log names it.
    #[serde(default)]
    pub hash: Option<BlockHash>,
    /// The block height, when the log names it.
    #[serde(default)]
    pub height: Option<Height>,
    /// Every `-debug=bench` stage found for this block, in log order, named as logged (from
    /// `Load block from disk` to `Connect block`, `Connect total` included).
    #[serde(default)]
    pub stages: Vec<TimingStage>,
    /// Total connect time in ms, when logged.
    #[serde(default)]
    pub connect_total_ms: Option<f64>,
    /// Time from the node's first sighting of the block (its header, compact block or full
    /// block, whichever the log shows first) to the block becoming tip, ms.
    #[serde(default)]
    pub header_to_tip_ms: Option<f64>,
    /// Compact block reconstruction counts, when the block came as a compact block.
    #[serde(default)]
    pub compact: Option<CompactReconstruction>,
}

impl NaturalKey for BlockTiming {
    fn key_parts(&self, observed_at: UnixMicros) -> Vec<Vec<u8>> {
        vec![
            self.hash
                .map(|h| h.to_string().into_bytes())
                .unwrap_or_default(),
            time_part(observed_at),
        ]
    }
}

/// A node found a block invalid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvalidBlock {
    /// The block hash.
    pub hash: BlockHash,
    /// Its height, when known.
    #[serde(default)]
    pub height: Option<Height>,
    /// The reject reason (`bad-cb-amount`).
    pub reason: String,
    /// Further detail the node gave (`coinbase pays too much (actual=... vs limit=...)`).
    #[serde(default)]
    pub detail: Option<String>,
    /// The peer it came from, when known.
    #[serde(default)]
    pub peer: Option<u64>,
    /// How the agent learned of it.
    pub source: Source,
}

impl NaturalKey for InvalidBlock {
    fn key_parts(&self, _: UnixMicros) -> Vec<Vec<u8>> {
        vec![
            self.hash.to_string().into_bytes(),
            self.source.as_str().as_bytes().to_vec(),
        ]
    }
}

/// A block download from a peer timed out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockDownloadTimeout {
    /// The block, when the line names it.
    #[serde(default)]
    pub hash: Option<BlockHash>,
    /// The peer that timed out.
    #[serde(default)]
    pub peer: Option<u64>,
}

impl NaturalKey for BlockDownloadTimeout {
    fn key_parts(&self, observed_at: UnixMicros) -> Vec<Vec<u8>> {
        vec![
            time_part(observed_at),
            self.peer.unwrap_or(u64::MAX).to_le_bytes().to_vec(),
        ]
    }
}

/// The node rejected a transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxRejected {
    /// The transaction id.
    pub txid: Txid,
    /// The witness transaction id, when logged.
    #[serde(default)]
    pub wtxid: Option<Wtxid>,
    /// The peer that sent it.
    #[serde(default)]
    pub peer: Option<u64>,
    /// The reject reason code (`insufficient fee`, `min relay fee not met`, ...).
    pub reason: String,
    /// The full reason text as logged.
    #[serde(default)]
    pub reason_text: String,
}

impl NaturalKey for TxRejected {
    fn key_parts(&self, observed_at: UnixMicros) -> Vec<Vec<u8>> {
        vec![
            self.txid.to_string().into_bytes(),
            self.peer.unwrap_or(u64::MAX).to_le_bytes().to_vec(),
            time_part(observed_at),
        ]
    }
}

/// A transaction replaced another in the mempool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxReplaced {
    /// The transaction that left.
    pub replaced_txid: Txid,
    /// Its wtxid, when logged.
    #[serde(default)]
    pub replaced_wtxid: Option<Wtxid>,
    /// The transaction that entered.
    pub new_txid: Txid,
    /// Its wtxid, when logged.
    #[serde(default)]
    pub new_wtxid: Option<Wtxid>,
    /// Fee of the replaced transaction.
    #[serde(default)]
    pub replaced_fee: Option<Amount>,
    /// Fee of the new transaction.
    #[serde(default)]
    pub new_fee: Option<Amount>,
    /// Virtual size of the replaced transaction.
    #[serde(default)]
    pub replaced_vsize: Option<u64>,
    /// Virtual size of the new transaction.
    #[serde(default)]
    pub new_vsize: Option<u64>,
}

impl NaturalKey for TxReplaced {
    fn key_parts(&self, _: UnixMicros) -> Vec<Vec<u8>> {
        vec![
            self.replaced_txid.to_string().into_bytes(),
            self.new_txid.to_string().into_bytes(),
        ]
    }
}

/// A warning the node logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// The warning text.
    pub message: String,
}

impl NaturalKey for Warning {
    fn key_parts(&self, observed_at: UnixMicros) -> Vec<Vec<u8>> {
        vec![time_part(observed_at), self.message.as_bytes().to_vec()]
    }
}

/// One raw debug.log line, split into its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// The line's own timestamp.
    pub time: UnixMicros,
    /// Byte offset of the line in its file.
    pub offset: u64,
    /// `[thread]`, when logged.
    #[serde(default)]
    pub thread: Option<String>,
    /// `[category]`, when logged.
    #[serde(default)]
    pub category: Option<String>,
    /// `[level]`, when logged.
    #[serde(default)]
    pub level: Option<String>,
    /// `[file.cpp:line]`, when logged.
    #[serde(default)]
    pub location: Option<String>,
    /// `[function]`, when logged.
    #[serde(default)]
    pub function: Option<String>,
    /// The message after the prefixes.
    pub message: String,
}

/// Consecutive lines of one debug.log file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogBatch {
    /// Identity of the file (device and inode, or another stable id).
    pub file_id: String,
    /// Byte offset of the first line.
    pub start_offset: u64,
    /// The lines.
    pub lines: Vec<LogLine>,
}

impl NaturalKey for LogBatch {
    /// File, first offset and last offset: a re-read after a restart that starts at the same
    /// offset but carries more lines (the file grew meanwhile) is a different message, so the
    /// extra lines are not dropped as a duplicate. Overlapping lines collapse in ClickHouse,
    /// whose `logs` rows are keyed by file and offset.
    fn key_parts(&self, _: UnixMicros) -> Vec<Vec<u8>> {
        let last = self.lines.last().map_or(self.start_offset, |l| l.offset);
        vec![
            self.file_id.as_bytes().to_vec(),
            self.start_offset.to_le_bytes().to_vec(),
            last.to_le_bytes().to_vec(),
        ]
    }
}
