//! The truth file: what each emulated node did and when, one JSON object per line, so tests and
//! the demo can compare what bmon observed with what really happened.
//!
//! Each record's `t_us` (wall clock, microseconds since the epoch) is taken when the node hands
//! the matching ZMQ message to its publisher, so it is within a few ms of what a subscriber sees.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::{BlockHash, Txid, Wtxid};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Wall-clock microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// One line of the truth file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthRecord {
    /// Wall clock, microseconds since the epoch.
    pub t_us: u64,
    /// The node this happened on.
    pub node: String,
    /// What happened.
    #[serde(flatten)]
    pub event: TruthEvent,
}

/// Why a transaction left a node's mempool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    /// Confirmed in a connected block (Core publishes no `R` for these).
    Block,
}

/// What happened on a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TruthEvent {
    /// The node mined a block itself (recorded just before it is received locally).
    BlockMined {
        /// Block hash.
        hash: BlockHash,
        /// Block height.
        height: u32,
        /// Transactions including the coinbase.
        tx_count: usize,
        /// Sum of the fees of the block's transactions, sat.
        fees_sat: u64,
        /// Coinbase output total, sat.
        coinbase_sat: u64,
        /// Whether it is part of a withheld branch released for a reorg.
        private: bool,
    },
    /// The node received a block it did not know (from a peer, or its own miner).
    BlockReceived {
        /// Block hash.
        hash: BlockHash,
        /// Block height.
        height: u32,
        /// The peer that sent it; `None` when the node mined it.
        from: Option<String>,
    },
    /// The block was connected to the active chain (ZMQ `sequence` `C`).
    BlockConnected {
        /// Block hash.
        hash: BlockHash,
        /// Block height.
        height: u32,
    },
    /// The block was disconnected from the active chain (ZMQ `sequence` `D`).
    BlockDisconnected {
        /// Block hash.
        hash: BlockHash,
        /// Block height.
        height: u32,
    },
    /// The tip changed (ZMQ `hashblock`/`rawblock`).
    TipUpdated {
        /// New tip hash.
        hash: BlockHash,
        /// New tip height.
        height: u32,
    },
    /// The node's active chain switched branches.
    Reorg {
        /// Tip before.
        old_tip: BlockHash,
        /// Height of the old tip.
        old_height: u32,
        /// Tip after.
        new_tip: BlockHash,
        /// Height of the new tip.
        new_height: u32,
        /// Last block common to both branches.
        fork_point: BlockHash,
        /// Its height.
        fork_height: u32,
        /// Blocks disconnected.
        depth: u32,
        /// Disconnected hashes, old tip first.
        disconnected: Vec<BlockHash>,
        /// Connected hashes, lowest first.
        connected: Vec<BlockHash>,
    },
    /// A transaction entered the mempool (ZMQ `sequence` `A`).
    TxAccepted {
        /// Transaction id.
        txid: Txid,
        /// Witness transaction id.
        wtxid: Wtxid,
        /// Mempool sequence of the `A` message.
        mempool_sequence: u64,
        /// Fee, sat.
        fee_sat: u64,
        /// Virtual size, vB.
        vsize: u64,
        /// The peer that sent it; `None` when it was created here or came back from a
        /// disconnected block.
        from: Option<String>,
    },
    /// A transaction left the mempool.
    TxRemoved {
        /// Transaction id.
        txid: Txid,
        /// Why.
        reason: RemovalReason,
        /// Mempool sequence consumed by the removal.
        mempool_sequence: u64,
    },
}

/// Where truth records go: always kept in memory, and written to a file when one was given.
#[derive(Clone)]
pub struct TruthSink {
    inner: Arc<Mutex<SinkInner>>,
}

struct SinkInner {
    records: Vec<TruthRecord>,
    file: Option<BufWriter<File>>,
    write_error: Option<String>,
}

impl TruthSink {
    /// Keeps records in memory only.
    pub fn memory() -> TruthSink {
        TruthSink {
            inner: Arc::new(Mutex::new(SinkInner {
                records: Vec::new(),
                file: None,
                write_error: None,
            })),
        }
    }

    /// Keeps records in memory and writes each one as a JSON line to `path` (truncated first).
    pub fn file(path: &Path) -> Result<TruthSink, Error> {
        let file = File::create(path).map_err(|source| Error::TruthFile {
            path: path.display().to_string(),
            source,
        })?;
        let sink = TruthSink::memory();
        if let Ok(mut inner) = sink.inner.lock() {
            inner.file = Some(BufWriter::new(file));
        }
        Ok(sink)
    }

    /// Appends one record.
    pub fn record(&self, record: TruthRecord) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if let Some(file) = inner.file.as_mut() {
            let line = serde_json::to_string(&record).unwrap_or_default();
            if let Err(e) = writeln!(file, "{line}").and_then(|_| file.flush()) {
                if inner.write_error.is_none() {
                    tracing::error!(error = %e, "cannot write the truth file");
                    inner.write_error = Some(e.to_string());
                }
            }
        }
        inner.records.push(record);
    }

    /// A copy of every record so far.
    pub fn records(&self) -> Vec<TruthRecord> {
        self.inner
            .lock()
            .map(|i| i.records.clone())
            .unwrap_or_default()
    }

    /// Flushes the file, if any.
    pub fn flush(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            if let Some(file) = inner.file.as_mut() {
                let _ = file.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    #[test]
    fn record_is_one_flat_json_object_with_kind() {
        let rec = TruthRecord {
            t_us: 5,
            node: "n0".into(),
            event: TruthEvent::BlockConnected {
                hash: BlockHash::all_zeros(),
                height: 7,
            },
        };
        let line = serde_json::to_string(&rec).unwrap();
        assert!(line.contains("\"kind\":\"block_connected\""), "{line}");
        assert!(line.contains("\"t_us\":5"), "{line}");
        let back: TruthRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, rec);
    }
}
