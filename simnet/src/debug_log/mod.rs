//! Each emulated node's debug.log, in the line format of the Core version it imitates.
//!
//! [`crate::node`] says what happened as [`LogNote`]s, each placed right after the truth record
//! it belongs to; the simulation (`network`) stamps a note with that record's `t_us` and hands it to the
//! node's [`NodeLog`], which turns it into Core's lines (module `messages`) in the chosen
//! [`LogFormat`] ([`format`](mod@format)). So the `UpdateTip` of a connected block carries exactly the
//! microsecond of the truth's `block_connected` record, and the `Saw new header` /
//! `Saw new cmpctblock header` / `received block` line the one of `block_received`.
//!
//! The writer appends to the file through a buffer that is flushed after every batch of lines
//! (one simulation step), so a follower sees a line within microseconds of its timestamp and a
//! line is never left half written.

pub mod format;
mod messages;

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bitcoin::{BlockHash, Txid, Wtxid};

pub use format::LogFormat;
use messages::{BenchTotals, Out};

use crate::policy::SatPerKvb;
use crate::Error;

/// What Core would tell its debug.log about one thing a node did.
#[derive(Debug, Clone, PartialEq)]
pub enum LogNote {
    /// A block arrived from a peer or was mined here.
    BlockArrived(Arrival),
    /// The tip block was disconnected; `tip` is the new tip.
    BlockDisconnected {
        /// The disconnected block.
        hash: BlockHash,
        /// Its height.
        height: u32,
        /// The tip after the disconnect.
        tip: TipInfo,
    },
    /// A block was connected to the active chain.
    BlockConnected(Connected),
    /// An activation ended on a new tip (Core's `UpdatedBlockTip`).
    TipChanged {
        /// New tip.
        hash: BlockHash,
        /// Its height.
        height: u32,
        /// Where the new branch forks off the old one.
        fork: BlockHash,
        /// Mempool transactions after the activation.
        mempool_txs: usize,
        /// Their inputs.
        mempool_inputs: usize,
    },
    /// A block failed validation (Core's invalid-block lines).
    BlockRejected(Rejection),
    /// A transaction from a peer was rejected (`-debug=mempoolrej`).
    TxRejected {
        /// Transaction id.
        txid: Txid,
        /// Witness transaction id.
        wtxid: Wtxid,
        /// Peer id it came from.
        peer: u64,
        /// Serialized size, bytes.
        size: usize,
        /// Core's reject reason (`insufficient fee`, `dust`, ...).
        reason: String,
        /// The whole text after `was not accepted: ` (Core 30's wording; 0.18 appends its
        /// reject code).
        reason_text: String,
    },
    /// A transaction entered the mempool.
    TxAccepted {
        /// Transaction id.
        txid: Txid,
        /// Witness transaction id.
        wtxid: Wtxid,
        /// Peer id it came from; `None` for the local wallet or a tx back from a disconnected block.
        peer: Option<u64>,
        /// Serialized size, bytes.
        size: usize,
        /// Mempool transactions after it entered.
        pool_txs: usize,
        /// Their total virtual size, vB.
        pool_vsize: u64,
        /// What making room for it evicted from a full mempool, if anything.
        trimmed: Option<Trimmed>,
    },
    /// A full mempool evicted transactions outside of a transaction's acceptance (after a
    /// reorg put transactions back).
    MempoolTrimmed(Trimmed),
}

/// Transactions a full mempool evicted (Core's `TrimToSize`) and the rolling minimum fee it
/// raised.
#[derive(Debug, Clone, PartialEq)]
pub struct Trimmed {
    /// The evicted transactions (txid, wtxid), in removal order.
    pub evicted: Vec<(Txid, Wtxid)>,
    /// The rolling minimum fee after the eviction.
    pub min_fee: SatPerKvb,
}

/// A block the node found invalid.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Block hash.
    pub hash: BlockHash,
    /// Block height.
    pub height: u32,
    /// Header time.
    pub time: u32,
    /// Transactions including the coinbase.
    pub txs: usize,
    /// Reject reason (`bad-cb-amount`).
    pub reason: String,
    /// Core's debug message (`coinbase pays too much (actual=.. vs limit=..)`).
    pub detail: String,
    /// The node's tip, which stays.
    pub best: TipInfo,
    /// Peers it relays the compact block to before validating (blocks from peers only).
    pub relay_to: Vec<u64>,
    /// Size of that compact block, bytes.
    pub cmpct_size: usize,
    /// Mempool transactions.
    pub mempool_txs: usize,
    /// Their inputs.
    pub mempool_inputs: usize,
}

/// A block arriving at a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// Block hash.
    pub hash: BlockHash,
    /// Block height.
    pub height: u32,
    /// Peer id it came from (`None` when mined here).
    pub peer: Option<u64>,
    /// Transactions including the coinbase.
    pub tx_count: usize,
    /// How it arrived.
    pub kind: ArrivalKind,
}

/// How a block arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrivalKind {
    /// Mined here (through RPC, like `generatetoaddress`).
    Mined {
        /// Block weight, WU.
        weight: u64,
        /// Fees collected, sat.
        fees_sat: u64,
        /// Peers it is announced to as a compact block.
        announce_to: Vec<u64>,
        /// Size of that compact block, bytes.
        cmpct_size: usize,
    },
    /// A high-bandwidth compact block (BIP152) reconstructed from the mempool.
    Compact {
        /// Size of the `cmpctblock` message, bytes.
        cmpct_size: usize,
        /// Transactions sent along (the coinbase).
        prefilled: usize,
        /// Transactions found in the mempool (or the extra pool).
        from_mempool: usize,
        /// Of those, found in the orphan/extra pool.
        from_extra_pool: usize,
        /// Transactions requested with `getblocktxn`: txid and size.
        requested: Vec<(Txid, usize)>,
    },
    /// Announced by `headers` and fetched whole with `getdata`.
    Full {
        /// Block size, bytes.
        size: usize,
    },
}

/// A connected block with what Core's bench and `UpdateTip` lines report.
#[derive(Debug, Clone, PartialEq)]
pub struct Connected {
    /// The block as the new tip.
    pub tip: TipInfo,
    /// Transactions including the coinbase.
    pub txs: usize,
    /// Inputs of the non-coinbase transactions.
    pub inputs: usize,
    /// Mempool transactions it confirmed.
    pub removed_from_mempool: usize,
    /// Whether the block had just arrived (Core's `Using cached block`).
    pub cached: bool,
}

/// What `UpdateTip` says about a tip.
#[derive(Debug, Clone, PartialEq)]
pub struct TipInfo {
    /// Tip hash.
    pub hash: BlockHash,
    /// Tip height.
    pub height: u32,
    /// Header version.
    pub version: i32,
    /// Transactions in the chain up to and including the tip (genesis counts 1).
    pub chain_tx: u64,
    /// Header time.
    pub time: u32,
    /// Core's verification progress estimate, 0..=1.
    pub progress: f64,
    /// Unspent outputs after the tip.
    pub txo: u64,
}

/// What the startup lines say.
#[derive(Debug, Clone)]
pub struct Banner {
    /// Core version number (e.g. 309900).
    pub version: u32,
    /// Data directory shown.
    pub datadir: String,
    /// RPC port.
    pub rpc_port: u16,
    /// The chain loaded at startup.
    pub tip: TipInfo,
    /// Peers connected at startup: (peer id, outbound).
    pub peers: Vec<(u64, bool)>,
}

/// One node's debug.log writer and the state its lines depend on (running bench totals,
/// connected blocks waiting for their callbacks, the thread doing the work).
pub struct NodeLog {
    format: LogFormat,
    path: PathBuf,
    file: BufWriter<File>,
    last_us: u64,
    thread: &'static str,
    pending_connected: Vec<(BlockHash, u32)>,
    bench: BenchTotals,
    salt: u64,
    write_failed: bool,
}

impl std::fmt::Debug for NodeLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeLog")
            .field("format", &self.format)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl NodeLog {
    /// Opens (appending, creating it and its directory if needed) the debug.log at `path`.
    pub fn open(path: &Path, format: LogFormat, node: &str) -> Result<NodeLog, Error> {
        let err = |source| Error::DebugLog {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        // FNV-1a of the node name: per-node variation of the bench numbers.
        let salt = node.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Ok(NodeLog {
            format,
            path: path.to_owned(),
            file: BufWriter::with_capacity(64 * 1024, file),
            last_us: 0,
            thread: "msghand",
            pending_connected: Vec::new(),
            bench: BenchTotals::default(),
            salt,
            write_failed: false,
        })
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The line format.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// Writes the startup lines at `t_us` (not flushed: call [`NodeLog::flush`]).
    pub fn banner(&mut self, t_us: u64, banner: &Banner) {
        let lines = messages::banner(self.format, banner);
        self.write_at(t_us, &lines, 0);
    }

    /// Writes the lines of `note`; its key line (`UpdateTip`, `Saw new header`, ...) carries
    /// exactly `t_us` (not flushed: call [`NodeLog::flush`]).
    pub fn note(&mut self, t_us: u64, note: &LogNote) {
        if let LogNote::BlockArrived(a) = note {
            self.thread = messages::arrival_thread(a);
        }
        let l = messages::lines(
            self.format,
            note,
            self.thread,
            &mut self.pending_connected,
            &mut self.bench,
            self.salt,
        );
        self.write_at(t_us, &l.lines, l.key);
    }

    /// Writes a restart at `t_us`: the shutdown lines, then the startup lines of `banner`
    /// (not flushed: call [`NodeLog::flush`]).
    pub fn restart(&mut self, t_us: u64, banner: &Banner) {
        let lines = messages::shutdown(self.format);
        self.write_at(t_us, &lines, 0);
        let lines = messages::banner(self.format, banner);
        self.write_at(t_us + 1, &lines, 0);
        self.pending_connected.clear();
    }

    /// Writes the shutdown lines at `t_us` and flushes.
    pub fn shutdown(&mut self, t_us: u64) {
        let lines = messages::shutdown(self.format);
        self.write_at(t_us, &lines, 0);
        self.flush();
    }

    /// Hands every buffered line to the file.
    pub fn flush(&mut self) {
        let r = self.file.flush();
        self.check(r);
    }

    /// Stamps `lines`: those before `key` a microsecond apart up to `t_us`, the rest `t_us`,
    /// never earlier than the last line written.
    fn write_at(&mut self, t_us: u64, lines: &[Out], key: usize) {
        let mut batch = String::with_capacity(lines.len() * 120);
        for (i, line) in lines.iter().enumerate() {
            let before = key.saturating_sub(i) as u64;
            let t = t_us.saturating_sub(before).max(self.last_us);
            self.last_us = t;
            batch.push_str(&format::render(
                self.format,
                t,
                line.thread,
                line.category,
                &line.message,
            ));
            batch.push('\n');
        }
        let r = self.file.write_all(batch.as_bytes());
        self.check(r);
    }

    fn check(&mut self, r: std::io::Result<()>) {
        if let Err(e) = r {
            if !self.write_failed {
                tracing::error!(path = %self.path.display(), error = %e, "cannot write the debug.log");
                self.write_failed = true;
            }
        }
    }
}

impl Drop for NodeLog {
    fn drop(&mut self) {
        let _ = self.file.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    fn tip(height: u32) -> TipInfo {
        TipInfo {
            hash: BlockHash::from_byte_array([height as u8; 32]),
            height,
            version: 0x2000_0000,
            chain_tx: 118,
            time: 1_795_621_980,
            progress: 1.0,
            txo: 125,
        }
    }

    fn read(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn update_tip_line_matches_the_v30_fixture_wording() {
        let t = tip(111);
        let line = messages::update_tip(LogFormat::V30, &t);
        assert_eq!(
            line,
            format!(
                "UpdateTip: new best={} height=111 version=0x20000000 log2_work=7.807355 tx=118 date='2026-11-25T15:53:00Z' progress=1.000000 cache=0.3MiB(125txo)",
                t.hash
            )
        );
        assert!(messages::update_tip(LogFormat::V018, &t).contains("log2_work=7.8073549 "));
    }

    #[test]
    fn key_line_carries_the_note_time_and_earlier_lines_precede_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n/debug.log");
        let mut log = NodeLog::open(&path, LogFormat::V30, "n").unwrap();
        let t = 1_795_621_959_141_167;
        log.note(
            t,
            &LogNote::BlockConnected(Connected {
                tip: tip(111),
                txs: 7,
                inputs: 6,
                removed_from_mempool: 6,
                cached: true,
            }),
        );
        log.flush();
        let lines = read(&path);
        let tip_line = lines.iter().find(|l| l.contains("UpdateTip:")).unwrap();
        assert!(tip_line.starts_with("2026-11-25T15:52:39.141167Z UpdateTip: new best="));
        assert!(
            lines[0].ends_with("[bench]   - Using cached block"),
            "{}",
            lines[0]
        );
        assert!(lines.last().unwrap().contains("txs removed=6"));
        let stamps: Vec<&str> = lines.iter().map(|l| &l[..27]).collect();
        let mut sorted = stamps.clone();
        sorted.sort();
        assert_eq!(stamps, sorted, "timestamps never go back");
    }

    #[test]
    fn lines_are_appended_and_complete_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("debug.log");
        std::fs::write(&path, "2026-11-25T15:52:39.000000Z earlier run\n").unwrap();
        let mut log = NodeLog::open(&path, LogFormat::V25, "n").unwrap();
        log.note(
            1_795_621_959_141_167,
            &LogNote::TxAccepted {
                txid: Txid::all_zeros(),
                wtxid: Wtxid::all_zeros(),
                peer: Some(3),
                size: 222,
                pool_txs: 1,
                pool_vsize: 141,
                trimmed: None,
            },
        );
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("2026-11-25T15:52:39.000000Z earlier run\n"));
        assert!(text.ends_with('\n'));
        assert!(text.contains(
            "2026-11-25T15:52:39.141167Z [msghand] [mempool] AcceptToMemoryPool: peer=3: accepted 0000000000000000000000000000000000000000000000000000000000000000 (poolsz 1 txn, 1 kB)\n"
        ));
    }

    #[test]
    fn an_eviction_writes_cores_removal_and_trim_lines_around_the_accept() {
        let evicted = (
            Txid::from_byte_array([1; 32]),
            Wtxid::from_byte_array([2; 32]),
        );
        let note = LogNote::TxAccepted {
            txid: Txid::all_zeros(),
            wtxid: Wtxid::all_zeros(),
            peer: Some(0),
            size: 200,
            pool_txs: 3,
            pool_vsize: 400,
            trimmed: Some(Trimmed {
                evicted: vec![evicted],
                min_fee: SatPerKvb::from_sat_per_kvb(2100),
            }),
        };
        let dir = tempfile::tempdir().unwrap();
        let mut written = Vec::new();
        for format in [LogFormat::V30, LogFormat::V25, LogFormat::V018] {
            let path = dir.path().join(format.name()).join("debug.log");
            let mut log = NodeLog::open(&path, format, "n").unwrap();
            log.note(1_795_621_959_141_167, &note);
            log.flush();
            written.push(read(&path));
        }
        let removed = format!(
            "TransactionRemovedFromMempool: txid={} wtxid={} reason=sizelimit",
            evicted.0, evicted.1
        );
        let v30: Vec<&str> = written[0].iter().map(|l| &l[28..]).collect();
        assert_eq!(
            v30,
            vec![
                "[net] received: tx (200 bytes) peer=0".to_owned(),
                format!("[validation] Enqueuing {removed}"),
                "[mempool] Removed 1 txn, rolling minimum fee bumped to 0.00002100 BTC/kvB"
                    .to_owned(),
                format!(
                    "[validation] Enqueuing TransactionAddedToMempool: txid={} wtxid={}",
                    Txid::all_zeros(),
                    Wtxid::all_zeros()
                ),
                format!(
                    "[mempool] AcceptToMemoryPool: peer=0: accepted {} (wtxid={}) (poolsz 3 txn, 3 kB)",
                    Txid::all_zeros(),
                    Wtxid::all_zeros()
                ),
                format!("[validation] {removed}"),
                format!(
                    "[validation] TransactionAddedToMempool: txid={} wtxid={}",
                    Txid::all_zeros(),
                    Wtxid::all_zeros()
                ),
            ]
        );
        assert!(written[1]
            .iter()
            .any(|l| l.ends_with(&format!("[scheduler] [validation] {removed}"))));
        assert!(written[2].iter().any(|l| l.ends_with(
            "[msghand] Removed 1 txn, rolling minimum fee bumped to 0.00002100 BTC/kB"
        )));
        assert!(!written[2].iter().any(|l| l.contains("sizelimit")));
    }
}
