//! The truth file: what each emulated node did and when, one JSON object per line, so tests and
//! the demo can compare what bmon observed with what really happened.
//!
//! Each record's `t_us` (microseconds since the epoch on the fleet's [`SimClock`], which is the
//! wall clock unless the scenario sets `time_scale`) is taken when the node hands the matching
//! ZMQ message to its publisher, so it is within a few ms of what a subscriber sees. In an
//! accelerated run each record also carries `wall_us`, the wall clock at that moment (what an
//! agent stamps on the ZMQ message it receives).
//!
//! Injected incidents (selfish mining, reorgs, invalid or inflated blocks, stuck nodes, mempool
//! wipes, rejection bursts, slow nodes) are recorded as `kind = "incident"` records
//! ([`Incident`]) so a test knows which alert to expect, for which node and object, and when.
//!
//! Mempool policy (`-minrelaytxfee`, `-maxmempool`, `-blocksonly`, see [`crate::policy`]) shows
//! as `tx_filtered` (a peer did not send the node a transaction its policy refuses),
//! `tx_removed` with reason `evicted` and `mempool_trimmed` (a full mempool made room), and,
//! when a scenario has played out, one `mempool_at_end` record per node ([`MempoolAtEnd`],
//! read with [`mempools_at_end`]): which transactions it holds and why it lacks each one
//! another node holds ([`NotHeldReason`]).
//!
//! [`SimClock`]: crate::clock::SimClock

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use std::collections::BTreeMap;

use bitcoin::{BlockHash, Txid, Wtxid};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Wall-clock microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    crate::clock::wall_us()
}

/// One line of the truth file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthRecord {
    /// Simulated clock (the wall clock unless the scenario sets `time_scale`), microseconds
    /// since the epoch.
    pub t_us: u64,
    /// Wall clock at the same moment; only in accelerated runs (`time_scale` > 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_us: Option<u64>,
    /// The node this happened on (for an incident: the node that caused it or is affected).
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
    /// Evicted from a full mempool (`-maxmempool`; Core's `sizelimit`, ZMQ `sequence` `R`).
    Evicted,
}

/// Why a node does not hold a transaction that another node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotHeldReason {
    /// It pays less than the node's minimum relay fee or its mempool minimum fee: peers did not
    /// announce it (Core's `feefilter`), or the node refused it.
    MinFee,
    /// The node runs `-blocksonly`: peers send it no transactions.
    BlocksOnly,
    /// A full mempool evicted it, or refused it as the lowest fee rate (`mempool full`).
    Evicted,
    /// It arrived, but a transaction it spends is not in the node's mempool (an orphan).
    MissingParent,
    /// A block this node connected confirmed it (the holders are behind).
    Confirmed,
    /// A mempool wipe dropped it and no peer sent it again.
    Wiped,
    /// It has not reached the node: still on its way, or no peer that holds it reaches it.
    NotRelayedYet,
}

/// A transaction a node lacks while another node holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingTx {
    /// Transaction id.
    pub txid: Txid,
    /// Why the node does not hold it.
    pub reason: NotHeldReason,
    /// Its fee, sat (as the holders know it).
    pub fee_sat: u64,
    /// Its virtual size, vB.
    pub vsize: u64,
}

/// One node's mempool at the end of a run, against the fleet's: what it holds and why it lacks
/// each transaction another node holds, with the policy that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MempoolAtEnd {
    /// Transactions in its mempool, sorted.
    pub held: Vec<Txid>,
    /// Transactions other nodes hold and it does not, sorted by txid.
    pub missing: Vec<MissingTx>,
    /// Its `mempoolminfee` at the end (the higher of the minimum relay fee and the rolling
    /// minimum fee), sat/kvB.
    pub min_fee_sat_per_kvb: u64,
    /// Its `-minrelaytxfee`, sat/kvB.
    pub min_relay_fee_sat_per_kvb: u64,
    /// Its `-maxmempool`, vbytes.
    pub max_mempool_vbytes: u64,
    /// Whether it runs `-blocksonly`.
    pub blocks_only: bool,
}

impl MempoolAtEnd {
    /// Whether the node holds `txid`.
    pub fn holds(&self, txid: &Txid) -> bool {
        self.held.binary_search(txid).is_ok()
    }

    /// Why the node lacks `txid`; `None` if it holds it or no node does.
    pub fn why_missing(&self, txid: &Txid) -> Option<NotHeldReason> {
        self.missing
            .iter()
            .find(|m| m.txid == *txid)
            .map(|m| m.reason)
    }

    /// The transactions it lacks for `reason`.
    pub fn missing_for(&self, reason: NotHeldReason) -> impl Iterator<Item = &MissingTx> + '_ {
        self.missing.iter().filter(move |m| m.reason == reason)
    }
}

/// Each node's last `mempool_at_end` record, by node name.
pub fn mempools_at_end(records: &[TruthRecord]) -> BTreeMap<String, MempoolAtEnd> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            TruthEvent::MempoolAtEnd(m) => Some((r.node.clone(), m.clone())),
            _ => None,
        })
        .collect()
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
    /// The node found a block invalid and will never connect it (or any descendant): no ZMQ
    /// message, `getchaintips` shows it `invalid`, debug.log gets Core's invalid-block lines.
    BlockRejected {
        /// Block hash.
        hash: BlockHash,
        /// Block height.
        height: u32,
        /// Core's reject reason (`bad-cb-amount`, `bad-prevblk` for a descendant).
        reason: String,
        /// Core's debug message, e.g. `coinbase pays too much (actual=.. vs limit=..)`.
        detail: Option<String>,
        /// The peer that sent it; `None` when mined here.
        from: Option<String>,
    },
    /// A peer sent a transaction the node rejected (debug.log `[mempoolrej]`, no ZMQ).
    TxRejected {
        /// Transaction id.
        txid: Txid,
        /// Witness transaction id.
        wtxid: Wtxid,
        /// The peer node that sent it.
        from: String,
        /// Its peer id on this node (as in `getpeerinfo` and the log line).
        peer: u64,
        /// Core's reject reason (`insufficient fee`, `min relay fee not met`, `dust`, ...).
        reason: String,
        /// The whole text after `was not accepted: `.
        reason_text: String,
    },
    /// A peer held a transaction but did not send it to this node, because the node's policy
    /// refuses it: below its minimum fee (Core's `feefilter`) or `-blocksonly`. No ZMQ, no log
    /// line (Core never sees it). Recorded once per transaction and reason.
    TxFiltered {
        /// Transaction id.
        txid: Txid,
        /// The peer that holds it.
        from: String,
        /// `min_fee` or `blocks_only`.
        reason: NotHeldReason,
        /// Its fee, sat, when the peer still held it.
        fee_sat: Option<u64>,
        /// Its virtual size, vB.
        vsize: u64,
        /// The node's minimum fee at that moment (`mempoolminfee`), sat/kvB.
        min_fee_sat_per_kvb: u64,
    },
    /// A full mempool evicted `removed` transactions (each a `tx_removed` `evicted` record just
    /// before) and its rolling minimum fee rose (debug.log: `Removed N txn, rolling minimum fee
    /// bumped to ..`).
    MempoolTrimmed {
        /// Transactions evicted.
        removed: usize,
        /// The rolling minimum fee now, sat/kvB.
        min_fee_sat_per_kvb: u64,
    },
    /// The node's mempool when the scenario had played out (one per node, at the end).
    MempoolAtEnd(MempoolAtEnd),
    /// An incident injected by the scenario.
    Incident(Incident),
}

/// An incident the scenario injected, with what a detector should report about it. The
/// record's `t_us` is when it became observable (release, rejection, ...), its `node` the node
/// that caused it or is affected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "incident", rename_all = "snake_case")]
pub enum Incident {
    /// A miner withheld `withheld.len()` blocks while the honest network published
    /// `losing_block` at the same height as the first of them, then released them at once.
    SelfishMining {
        /// The selfish miner (also the record's node).
        miner: String,
        /// Last block both branches share.
        fork_point: BlockHash,
        /// Its height.
        fork_height: u32,
        /// The withheld blocks, lowest first.
        withheld: Vec<BlockHash>,
        /// When they were mined (simulated clock, µs).
        mined_at_us: u64,
        /// When they were released at once (simulated clock, µs; = the record's `t_us`).
        released_at_us: u64,
        /// The honest block at `fork_height + 1` that loses.
        losing_block: BlockHash,
        /// Its height.
        losing_height: u32,
        /// The node that mined it.
        losing_miner: String,
        /// When it was first seen anywhere (its miner's `block_received`, simulated µs).
        losing_first_seen_us: u64,
    },
    /// A miner released a private branch of `depth + 1` blocks that replaces `depth` public
    /// blocks (`reorg` event).
    Reorg {
        /// The miner.
        miner: String,
        /// Blocks replaced on nodes that were on the public tip.
        depth: u32,
        /// Last block both branches share.
        fork_point: BlockHash,
        /// Its height.
        fork_height: u32,
        /// Public blocks replaced, old tip first.
        replaced: Vec<BlockHash>,
        /// The released blocks, lowest first.
        released: Vec<BlockHash>,
    },
    /// A block whose coinbase pays `excess_sat` more than subsidy + fees: `accepted_by`
    /// connect it (a buggy version), `rejected_by` reject it as `bad-cb-amount`.
    InflatedCoinbase {
        /// The miner.
        miner: String,
        /// Block hash.
        hash: BlockHash,
        /// Block height.
        height: u32,
        /// What the coinbase pays, sat.
        coinbase_sat: u64,
        /// Subsidy + fees, sat.
        limit_sat: u64,
        /// `coinbase_sat - limit_sat`.
        excess_sat: u64,
        /// Nodes that connect it.
        accepted_by: Vec<String>,
        /// Nodes that reject it.
        rejected_by: Vec<String>,
    },
    /// A block every node rejects (`bad-cb-amount`), relayed as a compact block before
    /// validation like Core's high-bandwidth relay.
    InvalidBlock {
        /// The miner.
        miner: String,
        /// Block hash.
        hash: BlockHash,
        /// Block height.
        height: u32,
        /// Reject reason.
        reason: String,
        /// Core's debug message.
        detail: String,
    },
    /// The node stopped connecting blocks (it still receives headers and blocks, answers RPC
    /// and accepts transactions).
    Stuck {
        /// Its tip when it stopped.
        tip: BlockHash,
        /// Tip height.
        height: u32,
    },
    /// The node connects blocks again and catches up.
    Unstuck {
        /// Its stale tip before catching up.
        tip: BlockHash,
        /// Tip height.
        height: u32,
        /// Best header height it knew.
        headers: u32,
    },
    /// The node's mempool was emptied like a restart without mempool.dat: no `R` messages,
    /// every ZMQ topic's sequence restarts at 0, the mempool sequence restarts at 1, `uptime`
    /// restarts, debug.log gets shutdown and startup lines.
    MempoolWipe {
        /// Transactions dropped.
        dropped: usize,
        /// Mempool sequence before the wipe.
        mempool_sequence_before: u64,
    },
    /// Peers send the node `count` transactions it rejects, one every `interval_ms`
    /// (simulated), each a `tx_rejected` record; `t_us` is the first rejection's time.
    RejectBurst {
        /// How many.
        count: u32,
        /// Reject reason.
        reason: String,
        /// Full reason text as logged.
        reason_text: String,
        /// Sending peer node.
        from: String,
        /// Its peer id on the node.
        peer: u64,
        /// Simulated ms between two rejections.
        interval_ms: u64,
    },
    /// The node receives everything `extra_delay_ms` late (recorded at the start of the run).
    SlowNode {
        /// Added delay, simulated ms.
        extra_delay_ms: u64,
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
            wall_us: None,
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

    #[test]
    fn incident_record_is_flat_with_kind_and_incident() {
        let rec = TruthRecord {
            t_us: 5,
            wall_us: Some(3),
            node: "n0".into(),
            event: TruthEvent::Incident(Incident::Stuck {
                tip: BlockHash::all_zeros(),
                height: 7,
            }),
        };
        let line = serde_json::to_string(&rec).unwrap();
        assert!(line.contains("\"kind\":\"incident\""), "{line}");
        assert!(line.contains("\"incident\":\"stuck\""), "{line}");
        assert!(line.contains("\"wall_us\":3"), "{line}");
        let back: TruthRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, rec);
    }
}
