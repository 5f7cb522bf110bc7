//! The messages Core writes for each [`LogNote`], in each version's wording and order, with
//! the thread and category each line carries. Pure: the caller stamps and writes the lines.
//!
//! References: `bitcoin-core-v30/logs/*.debug.log` (v30), `bmon-testdata/new-header.log` and
//! `mempool-accepts-log.txt` (24/25), `bmon-testdata/logs_gotblock_018.txt` and
//! `logs_badblock_cb_overspent_018.txt` (0.18).

use std::fmt::Write as _;

use bitcoin::BlockHash;

use super::format::{g8, iso_seconds, version_string, LogFormat};
use super::{Arrival, ArrivalKind, Banner, Connected, LogNote, Rejection, TipInfo, Trimmed};

/// One line before stamping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Out {
    pub thread: &'static str,
    pub category: Option<&'static str>,
    pub message: String,
}

/// The lines of one note. The line at `key` gets the note's own time (the truth record's);
/// the lines before it a few microseconds earlier, the lines after it the same time.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    pub lines: Vec<Out>,
    pub key: usize,
}

impl Lines {
    fn push(&mut self, thread: &'static str, category: Option<&'static str>, message: String) {
        self.lines.push(Out {
            thread,
            category,
            message,
        });
    }

    /// The next line pushed is the key line.
    fn key_here(&mut self) {
        self.key = self.lines.len();
    }
}

/// Thread that handles P2P messages.
const MSGHAND: &str = "msghand";
/// Thread of the RPC call that mined a block locally (`generatetoaddress`/`submitblock`).
const RPC: &str = "httpworker.0";
/// Thread running validation-interface callbacks.
const SCHEDULER: &str = "scheduler";
const INIT: &str = "init";
const SHUTOFF: &str = "shutoff";

/// Bench stage indices into [`BenchTotals`].
#[derive(Clone, Copy)]
enum Stage {
    Load,
    Sanity,
    Fork,
    Connect,
    Verify,
    Undo,
    Index,
    Callbacks,
    Total,
    Flush,
    Chainstate,
    Postprocess,
    Block,
}
const STAGES: usize = 13;

/// Core's running `-debug=bench` totals (the `[12.34s (0.56ms/blk)]` part of each line).
#[derive(Debug, Default, Clone)]
pub(crate) struct BenchTotals {
    ms: [f64; STAGES],
    blocks: u64,
}

impl BenchTotals {
    fn add(&mut self, stage: Stage, ms: f64) {
        self.ms[stage as usize] += ms;
    }

    /// ` [1.23s (0.45ms/blk)]`
    fn tail(&self, stage: Stage) -> String {
        let total = self.ms[stage as usize];
        format!(
            " [{:.2}s ({:.2}ms/blk)]",
            total / 1000.0,
            total / self.blocks.max(1) as f64
        )
    }

    /// ` [1.23s]` (0.18's `Load block from disk`).
    fn tail_total_only(&self, stage: Stage) -> String {
        format!(" [{:.2}s]", self.ms[stage as usize] / 1000.0)
    }
}

/// A deterministic factor in [0.75, 1.35) from a block hash, a node name and a salt, so bench
/// numbers vary between blocks and nodes but a seed reproduces them.
fn jitter(hash: &BlockHash, node_salt: u64, salt: u8) -> f64 {
    let bytes: &[u8] = hash.as_ref();
    let b = bytes[(salt as usize * 7) % 32] as u64;
    let x = (b ^ node_salt.rotate_left(salt as u32 * 5)) & 0xff;
    0.75 + (x as f64) / 255.0 * 0.6
}

/// The thread whose lines a block arrival starts.
pub(crate) fn arrival_thread(a: &Arrival) -> &'static str {
    match a.kind {
        ArrivalKind::Mined { .. } => RPC,
        _ => MSGHAND,
    }
}

/// Lines for `note`. `thread` is the thread of the block processing in progress (the last
/// arrival's); `pending` collects connected blocks whose `BlockConnected` callbacks Core runs
/// after the whole activation; `bench` holds the running totals.
pub(crate) fn lines(
    format: LogFormat,
    note: &LogNote,
    thread: &'static str,
    pending: &mut Vec<(BlockHash, u32)>,
    bench: &mut BenchTotals,
    node_salt: u64,
) -> Lines {
    let mut l = Lines::default();
    match note {
        LogNote::BlockArrived(a) => arrival(format, a, &mut l),
        LogNote::BlockDisconnected { hash, height, tip } => {
            let ms = 0.04 * format.bench_factor() * jitter(hash, node_salt, 1);
            l.push(
                thread,
                Some("bench"),
                format!("- Disconnect block: {ms:.2}ms"),
            );
            l.key_here();
            l.push(thread, None, update_tip(format, tip));
            if format != LogFormat::V018 {
                let m = format!("BlockDisconnected: block hash={hash} block height={height}");
                l.push(thread, Some("validation"), format!("Enqueuing {m}"));
                l.push(callback_thread(format, thread), Some("validation"), m);
            }
        }
        LogNote::BlockConnected(c) => {
            connected(format, c, thread, bench, node_salt, &mut l);
            pending.push((c.tip.hash, c.tip.height));
        }
        LogNote::TipChanged {
            hash,
            height,
            fork,
            mempool_txs,
            mempool_inputs,
        } => {
            l.push(
                thread,
                Some("mempool"),
                format!(
                    "Checking mempool with {mempool_txs} transactions and {mempool_inputs} inputs"
                ),
            );
            let done = std::mem::take(pending);
            if format != LogFormat::V018 {
                for (h, n) in &done {
                    l.push(
                        thread,
                        Some("validation"),
                        format!("Enqueuing BlockConnected: block hash={h} block height={n}"),
                    );
                }
                let updated = format!(
                    "UpdatedBlockTip: new block hash={hash} fork block hash={fork} (in IBD=false)"
                );
                l.push(thread, Some("validation"), format!("Enqueuing {updated}"));
                if format == LogFormat::V30 {
                    l.push(
                        thread,
                        Some("validation"),
                        format!("ActiveTipChange: new block hash={hash} block height={height}"),
                    );
                }
                let cb = callback_thread(format, thread);
                for (h, n) in &done {
                    l.push(
                        cb,
                        Some("validation"),
                        format!("BlockConnected: block hash={h} block height={n}"),
                    );
                }
                l.push(cb, Some("validation"), updated);
            }
        }
        LogNote::BlockRejected(r) => rejected_block(format, r, thread, bench, node_salt, &mut l),
        LogNote::TxRejected {
            txid,
            wtxid,
            peer,
            size,
            reason,
            reason_text,
        } => {
            l.push(
                MSGHAND,
                Some("net"),
                format!("received: tx ({size} bytes) peer={peer}"),
            );
            l.key_here();
            let msg = match format {
                LogFormat::V30 | LogFormat::V25 => format!(
                    "{txid} (wtxid={wtxid}) from peer={peer} was not accepted: {reason_text}"
                ),
                LogFormat::V018 => format!(
                    "{txid} from peer={peer} was not accepted: {reason_text} (code {})",
                    reject_code(reason)
                ),
            };
            l.push(MSGHAND, Some("mempoolrej"), msg);
        }
        LogNote::MempoolTrimmed(t) => {
            trim_enqueued(format, t, thread, &mut l);
            l.key_here();
            l.push(thread, Some("mempool"), trim_summary(format, t));
            trim_callbacks(format, t, thread, &mut l);
        }
        LogNote::TxAccepted {
            txid,
            wtxid,
            peer,
            size,
            pool_txs,
            pool_vsize,
            trimmed,
        } => {
            // Core's DynamicMemoryUsage per entry is several times the tx size.
            let kb = (pool_vsize * 4 + *pool_txs as u64 * 560) / 1000;
            let enqueue = format!("TransactionAddedToMempool: txid={txid} wtxid={wtxid}");
            let tx_thread = if peer.is_some() {
                MSGHAND
            } else {
                "httpworker.1"
            };
            if let Some(p) = peer {
                l.push(
                    MSGHAND,
                    Some("net"),
                    format!("received: tx ({size} bytes) peer={p}"),
                );
            }
            // Making room evicts before the addition is announced (Core's `Finalize` trims
            // the mempool, then `TransactionAddedToMempool` is enqueued).
            if let Some(t) = trimmed {
                trim_enqueued(format, t, tx_thread, &mut l);
                l.push(tx_thread, Some("mempool"), trim_summary(format, t));
            }
            if format != LogFormat::V018 {
                if peer.is_none() {
                    l.key_here();
                }
                l.push(
                    tx_thread,
                    Some("validation"),
                    format!("Enqueuing {enqueue}"),
                );
            }
            if let Some(p) = peer {
                l.key_here();
                let msg = match format {
                    LogFormat::V30 => format!(
                        "AcceptToMemoryPool: peer={p}: accepted {txid} (wtxid={wtxid}) (poolsz {pool_txs} txn, {kb} kB)"
                    ),
                    LogFormat::V25 | LogFormat::V018 => format!(
                        "AcceptToMemoryPool: peer={p}: accepted {txid} (poolsz {pool_txs} txn, {kb} kB)"
                    ),
                };
                l.push(MSGHAND, Some("mempool"), msg);
            }
            if let Some(t) = trimmed {
                trim_callbacks(format, t, tx_thread, &mut l);
            }
            if format != LogFormat::V018 {
                l.push(
                    callback_thread(format, tx_thread),
                    Some("validation"),
                    enqueue,
                );
            }
        }
    }
    l
}

/// `TransactionRemovedFromMempool: txid=.. wtxid=.. reason=sizelimit` (the v30 and v25
/// fixtures' wording for other reasons).
fn removed_from_mempool(txid: &bitcoin::Txid, wtxid: &bitcoin::Wtxid) -> String {
    format!("TransactionRemovedFromMempool: txid={txid} wtxid={wtxid} reason=sizelimit")
}

/// The `Enqueuing TransactionRemovedFromMempool` line of each evicted transaction (Core 24 on).
fn trim_enqueued(format: LogFormat, t: &Trimmed, thread: &'static str, l: &mut Lines) {
    if format == LogFormat::V018 {
        return;
    }
    for (txid, wtxid) in &t.evicted {
        l.push(
            thread,
            Some("validation"),
            format!("Enqueuing {}", removed_from_mempool(txid, wtxid)),
        );
    }
}

/// The callbacks of the evicted transactions' removals (Core 24 on).
fn trim_callbacks(format: LogFormat, t: &Trimmed, thread: &'static str, l: &mut Lines) {
    if format == LogFormat::V018 {
        return;
    }
    for (txid, wtxid) in &t.evicted {
        l.push(
            callback_thread(format, thread),
            Some("validation"),
            removed_from_mempool(txid, wtxid),
        );
    }
}

/// Core's `TrimToSize` line: `Removed 2 txn, rolling minimum fee bumped to 0.00002100 BTC/kvB`
/// (0.18 prints fee rates in `BTC/kB`).
fn trim_summary(format: LogFormat, t: &Trimmed) -> String {
    let rate = t.min_fee.to_string();
    let rate = match format {
        LogFormat::V018 => rate.replace("BTC/kvB", "BTC/kB"),
        LogFormat::V25 | LogFormat::V30 => rate,
    };
    format!(
        "Removed {} txn, rolling minimum fee bumped to {rate}",
        t.evicted.len()
    )
}

/// Core 0.18's reject code for a reason (`(code N)` after the text).
fn reject_code(reason: &str) -> u8 {
    match reason {
        "insufficient fee" | "min relay fee not met" | "mempool min fee not met" => 66,
        "dust" => 64,
        "txn-mempool-conflict" | "txn-already-in-mempool" | "txn-already-known" => 18,
        _ => 16,
    }
}

/// `log2_work=..` of a regtest chain whose tip is at `height`, in the format's precision.
fn log2_work(format: LogFormat, height: u32) -> String {
    let w = ((u64::from(height) + 1) as f64 * 2.0).log2();
    match format {
        LogFormat::V018 => g8(w),
        _ => format!("{w:.6}"),
    }
}

/// The lines of a block that fails `ConnectBlock` (v30: `bitcoin-core-v30/logs/*` at
/// 15:53:31; 0.18: `logs_badblock_cb_overspent_018.txt`). The key line is the first
/// `InvalidChainFound: invalid block=..`.
fn rejected_block(
    format: LogFormat,
    r: &Rejection,
    thread: &'static str,
    bench: &mut BenchTotals,
    salt: u64,
    l: &mut Lines,
) {
    let h = &r.hash;
    for p in &r.relay_to {
        if format != LogFormat::V018 {
            l.push(
                MSGHAND,
                Some("net"),
                format!("PeerManager::NewPoWValidBlock sending header-and-ids {h} to peer={p}"),
            );
        }
        l.push(
            MSGHAND,
            Some("net"),
            format!("sending cmpctblock ({} bytes) peer={p}", r.cmpct_size),
        );
    }
    let f = format.bench_factor();
    let j = |k: u8| jitter(h, salt, k) * f;
    let ntx = r.txs.max(1) as f64;
    let load = 0.01 * j(2);
    let sanity = 0.0005 * ntx * j(3);
    let fork = 0.01 * j(4);
    let connect = 0.006 * ntx * j(5);
    bench.add(Stage::Load, load);
    bench.add(Stage::Sanity, sanity);
    bench.add(Stage::Fork, fork);
    bench.add(Stage::Connect, connect);
    let b = Some("bench");
    let load_tail = match format {
        LogFormat::V30 => String::new(),
        LogFormat::V25 => bench.tail(Stage::Load),
        LogFormat::V018 => bench.tail_total_only(Stage::Load),
    };
    if format != LogFormat::V018 {
        l.push(thread, b, "  - Using cached block".to_owned());
    }
    l.push(
        thread,
        b,
        format!("  - Load block from disk: {load:.2}ms{load_tail}"),
    );
    l.push(
        thread,
        b,
        format!(
            "    - Sanity checks: {sanity:.2}ms{}",
            bench.tail(Stage::Sanity)
        ),
    );
    l.push(
        thread,
        b,
        format!("    - Fork checks: {fork:.2}ms{}", bench.tail(Stage::Fork)),
    );
    l.push(
        thread,
        b,
        format!(
            "      - Connect {} transactions: {connect:.2}ms ({:.3}ms/tx, 0.000ms/txin){}",
            r.txs,
            connect / ntx,
            bench.tail(Stage::Connect)
        ),
    );
    let reason = &r.reason;
    let detail = &r.detail;
    // Core 30 keeps the debug message in the validation state; older versions log it as an
    // `ERROR: ConnectBlock(): ..` line and keep only the reason.
    let state = match format {
        LogFormat::V30 => format!("{reason}, {detail}"),
        LogFormat::V25 => reason.clone(),
        LogFormat::V018 => format!("{reason} (code 16)"),
    };
    match format {
        LogFormat::V30 => l.push(
            thread,
            None,
            format!("Block validation error: {reason}, {detail}"),
        ),
        _ => l.push(thread, None, format!("ERROR: ConnectBlock(): {detail}")),
    }
    if format != LogFormat::V018 {
        l.push(
            thread,
            Some("validation"),
            format!("BlockChecked: block hash={h} state={state}"),
        );
    }
    let invalid = format!(
        "InvalidChainFound: invalid block={h}  height={}  log2_work={}  date={}",
        r.height,
        log2_work(format, r.height),
        iso_seconds(u64::from(r.time))
    );
    let best = format!(
        "InvalidChainFound:  current best={}  height={}  log2_work={}  date={}",
        r.best.hash,
        r.best.height,
        log2_work(format, r.best.height),
        iso_seconds(u64::from(r.best.time))
    );
    l.key_here();
    l.push(thread, None, invalid.clone());
    l.push(thread, None, best.clone());
    match format {
        LogFormat::V30 => l.push(
            thread,
            Some("error"),
            format!("ConnectTip: ConnectBlock {h} failed, {state}"),
        ),
        _ => l.push(
            thread,
            None,
            format!("ERROR: ConnectTip: ConnectBlock {h} failed, {state}"),
        ),
    }
    l.push(thread, None, invalid);
    l.push(thread, None, best);
    if format != LogFormat::V018 {
        l.push(
            thread,
            Some("mempool"),
            format!(
                "Checking mempool with {} transactions and {} inputs",
                r.mempool_txs, r.mempool_inputs
            ),
        );
    }
    if format == LogFormat::V30 {
        l.push(
            thread,
            Some("validation"),
            format!(
                "ActiveTipChange: new block hash={} block height={}",
                r.best.hash, r.best.height
            ),
        );
    }
}

fn callback_thread(format: LogFormat, thread: &'static str) -> &'static str {
    match format {
        LogFormat::V30 => thread,
        _ => SCHEDULER,
    }
}

fn arrival(format: LogFormat, a: &Arrival, l: &mut Lines) {
    let h = a.hash;
    let n = a.height;
    match &a.kind {
        ArrivalKind::Mined {
            weight,
            fees_sat,
            announce_to,
            cmpct_size,
        } => {
            l.key_here();
            l.push(
                RPC,
                None,
                format!(
                    "CreateNewBlock(): block weight: {weight} txs: {} fees: {fees_sat} sigops 400",
                    a.tx_count.saturating_sub(1)
                ),
            );
            if format != LogFormat::V018 {
                l.push(
                    RPC,
                    Some("validation"),
                    format!("NewPoWValidBlock: block hash={h}"),
                );
                for p in announce_to {
                    l.push(
                        RPC,
                        Some("net"),
                        format!(
                            "PeerManager::NewPoWValidBlock sending header-and-ids {h} to peer={p}"
                        ),
                    );
                    l.push(
                        RPC,
                        Some("net"),
                        format!("sending cmpctblock ({cmpct_size} bytes) peer={p}"),
                    );
                }
            }
        }
        ArrivalKind::Compact {
            cmpct_size,
            prefilled,
            from_mempool,
            from_extra_pool,
            requested,
        } => {
            let p = a.peer.unwrap_or(0);
            l.push(
                MSGHAND,
                Some("net"),
                format!("received: cmpctblock ({cmpct_size} bytes) peer={p}"),
            );
            match format {
                LogFormat::V30 => {
                    l.key_here();
                    l.push(
                        MSGHAND,
                        None,
                        format!("Saw new cmpctblock header hash={h} height={n} peer={p}"),
                    );
                    for step in ["Initializing", "Initialized"] {
                        l.push(
                            MSGHAND,
                            Some("cmpctblock"),
                            format!(
                                "{step} PartiallyDownloadedBlock for block {h} using a cmpctblock of {cmpct_size} bytes"
                            ),
                        );
                    }
                }
                LogFormat::V25 => {
                    l.key_here();
                    l.push(MSGHAND, None, format!("Saw new header hash={h} height={n}"));
                    l.push(
                        MSGHAND,
                        Some("net"),
                        format!("Saw new cmpctblock header hash={h} peer={p}"),
                    );
                    l.push(
                        MSGHAND,
                        Some("cmpctblock"),
                        format!(
                            "Initialized PartiallyDownloadedBlock for block {h} using a cmpctblock of size {cmpct_size}"
                        ),
                    );
                }
                LogFormat::V018 => {
                    l.key_here();
                    l.push(
                        MSGHAND,
                        Some("cmpctblock"),
                        format!(
                            "Initialized PartiallyDownloadedBlock for block {h} using a cmpctblock of size {cmpct_size}"
                        ),
                    );
                }
            }
            let requested_bytes: usize = requested.iter().map(|(_, s)| s).sum();
            if !requested.is_empty() {
                l.push(
                    MSGHAND,
                    Some("net"),
                    format!(
                        "sending getblocktxn ({} bytes) peer={p}",
                        33 + requested.len()
                    ),
                );
                l.push(
                    MSGHAND,
                    Some("net"),
                    format!(
                        "received: blocktxn ({} bytes) peer={p}",
                        33 + requested_bytes
                    ),
                );
            }
            let k = requested.len();
            let requested_text = if format == LogFormat::V30 {
                format!("{k} txn ({requested_bytes} bytes) requested")
            } else {
                format!("{k} txn requested")
            };
            l.push(
                MSGHAND,
                Some("cmpctblock"),
                format!(
                    "Successfully reconstructed block {h} with {prefilled} txn prefilled, {from_mempool} txn from mempool (incl at least {from_extra_pool} from extra pool) and {requested_text}"
                ),
            );
            if format == LogFormat::V30 {
                for (txid, _) in requested {
                    l.push(
                        MSGHAND,
                        Some("cmpctblock"),
                        format!("Reconstructed block {h} required tx {txid}"),
                    );
                }
            }
            if format != LogFormat::V018 {
                l.push(
                    MSGHAND,
                    Some("validation"),
                    format!("NewPoWValidBlock: block hash={h}"),
                );
            }
        }
        ArrivalKind::Full { size } => {
            let p = a.peer.unwrap_or(0);
            l.push(
                MSGHAND,
                Some("net"),
                format!("received: headers (82 bytes) peer={p}"),
            );
            match format {
                LogFormat::V30 => {
                    l.key_here();
                    l.push(
                        MSGHAND,
                        None,
                        format!("Saw new header hash={h} height={n} peer={p}"),
                    );
                }
                LogFormat::V25 => {
                    l.key_here();
                    l.push(MSGHAND, None, format!("Saw new header hash={h} height={n}"));
                }
                LogFormat::V018 => {}
            }
            l.push(
                MSGHAND,
                Some("net"),
                format!("Requesting block {h} from  peer={p}"),
            );
            l.push(
                MSGHAND,
                Some("net"),
                format!("sending getdata (37 bytes) peer={p}"),
            );
            l.push(
                MSGHAND,
                Some("net"),
                format!("received: block ({size} bytes) peer={p}"),
            );
            if format == LogFormat::V018 {
                l.key_here();
            }
            l.push(MSGHAND, Some("net"), format!("received block {h} peer={p}"));
        }
    }
}

fn connected(
    format: LogFormat,
    c: &Connected,
    thread: &'static str,
    bench: &mut BenchTotals,
    salt: u64,
    l: &mut Lines,
) {
    let h = &c.tip.hash;
    let f = format.bench_factor();
    let j = |k: u8| jitter(h, salt, k) * f;
    let ntx = c.txs.max(1) as f64;
    let nin = c.inputs as f64;
    let load = if c.cached { 0.01 } else { 0.02 } * j(2);
    let sanity = 0.0005 * ntx * j(3);
    let fork = 0.02 * j(4);
    let connect = (0.003 * ntx + 0.002 * nin) * j(5);
    let verify = connect + 0.003 * nin * j(6);
    let undo = (0.02 + 0.002 * nin) * j(7);
    let index = 0.01 * j(8);
    let callbacks = if format == LogFormat::V018 {
        0.03 * j(9)
    } else {
        0.0
    };
    let total = sanity + fork + verify + undo + index + callbacks + 0.01 * j(10);
    let flush = 0.015 * j(11);
    let chainstate = 0.01 * j(12);
    let postprocess = (0.03 + 0.004 * ntx) * j(13);
    let block = load + total + flush + chainstate + postprocess;

    bench.blocks += 1;
    for (stage, ms) in [
        (Stage::Load, load),
        (Stage::Sanity, sanity),
        (Stage::Fork, fork),
        (Stage::Connect, connect),
        (Stage::Verify, verify),
        (Stage::Undo, undo),
        (Stage::Index, index),
        (Stage::Callbacks, callbacks),
        (Stage::Total, total),
        (Stage::Flush, flush),
        (Stage::Chainstate, chainstate),
        (Stage::Postprocess, postprocess),
        (Stage::Block, block),
    ] {
        bench.add(stage, ms);
    }
    let b = Some("bench");
    if c.cached && format != LogFormat::V018 {
        l.push(thread, b, "  - Using cached block".to_owned());
    }
    let load_tail = match format {
        LogFormat::V30 => String::new(),
        LogFormat::V25 => bench.tail(Stage::Load),
        LogFormat::V018 => bench.tail_total_only(Stage::Load),
    };
    l.push(
        thread,
        b,
        format!("  - Load block from disk: {load:.2}ms{load_tail}"),
    );
    l.push(
        thread,
        b,
        format!(
            "    - Sanity checks: {sanity:.2}ms{}",
            bench.tail(Stage::Sanity)
        ),
    );
    l.push(
        thread,
        b,
        format!("    - Fork checks: {fork:.2}ms{}", bench.tail(Stage::Fork)),
    );
    let per_in = |ms: f64| if c.inputs == 0 { 0.0 } else { ms / nin };
    l.push(
        thread,
        b,
        format!(
            "      - Connect {} transactions: {connect:.2}ms ({:.3}ms/tx, {:.3}ms/txin){}",
            c.txs,
            connect / ntx,
            per_in(connect),
            bench.tail(Stage::Connect)
        ),
    );
    l.push(
        thread,
        b,
        format!(
            "    - Verify {} txins: {verify:.2}ms ({:.3}ms/txin){}",
            c.inputs,
            per_in(verify),
            bench.tail(Stage::Verify)
        ),
    );
    if format != LogFormat::V018 {
        l.push(
            thread,
            b,
            format!(
                "    - Write undo data: {undo:.2}ms{}",
                bench.tail(Stage::Undo)
            ),
        );
    }
    l.push(
        thread,
        b,
        format!(
            "    - Index writing: {index:.2}ms{}",
            bench.tail(Stage::Index)
        ),
    );
    if format == LogFormat::V018 {
        l.push(
            thread,
            b,
            format!(
                "    - Callbacks: {callbacks:.2}ms{}",
                bench.tail(Stage::Callbacks)
            ),
        );
    } else {
        l.push(
            thread,
            Some("validation"),
            format!("BlockChecked: block hash={h} state=Valid"),
        );
    }
    l.push(
        thread,
        b,
        format!(
            "  - Connect total: {total:.2}ms{}",
            bench.tail(Stage::Total)
        ),
    );
    l.push(
        thread,
        b,
        format!("  - Flush: {flush:.2}ms{}", bench.tail(Stage::Flush)),
    );
    l.push(
        thread,
        b,
        format!(
            "  - Writing chainstate: {chainstate:.2}ms{}",
            bench.tail(Stage::Chainstate)
        ),
    );
    let removed = format!(
        "MempoolTransactionsRemovedForBlock: block height={} txs removed={}",
        c.tip.height, c.removed_from_mempool
    );
    if format == LogFormat::V30 {
        l.push(thread, Some("validation"), format!("Enqueuing {removed}"));
    }
    l.key_here();
    l.push(thread, None, update_tip(format, &c.tip));
    l.push(
        thread,
        b,
        format!(
            "  - Connect postprocess: {postprocess:.2}ms{}",
            bench.tail(Stage::Postprocess)
        ),
    );
    l.push(
        thread,
        b,
        format!("- Connect block: {block:.2}ms{}", bench.tail(Stage::Block)),
    );
    if format == LogFormat::V30 {
        l.push(thread, Some("validation"), removed);
    }
}

/// `UpdateTip: new best=.. height=.. version=.. log2_work=.. tx=.. date='..' progress=.. cache=..`
pub(crate) fn update_tip(format: LogFormat, tip: &TipInfo) -> String {
    // Regtest: every block has work 2, so the chain's work is 2 * (height + 1).
    let log2_work = ((u64::from(tip.height) + 1) as f64 * 2.0).log2();
    let log2_work = match format {
        LogFormat::V018 => g8(log2_work),
        _ => format!("{log2_work:.6}"),
    };
    let cache_mib = 0.25 + tip.txo as f64 * 100.0 / 1_048_576.0;
    let mut s = String::with_capacity(220);
    let _ = write!(
        s,
        "UpdateTip: new best={} height={} version=0x{:08x} log2_work={log2_work} tx={} date='{}' progress={:.6} cache={cache_mib:.1}MiB({}txo)",
        tip.hash,
        tip.height,
        tip.version as u32,
        tip.chain_tx,
        iso_seconds(u64::from(tip.time)),
        tip.progress,
        tip.txo
    );
    s
}

/// The startup lines of a node that loads an existing chain.
pub(crate) fn banner(format: LogFormat, b: &Banner) -> Vec<Out> {
    let mut l = Lines::default();
    let t = INIT;
    l.push(
        t,
        None,
        format!(
            "Bitcoin Core version {} (release build)",
            version_string(b.version)
        ),
    );
    l.push(
        t,
        None,
        "Using the 'x86_shani(1way;2way)' SHA256 implementation".to_owned(),
    );
    l.push(
        t,
        None,
        "Default data directory /home/bitcoin/.bitcoin".to_owned(),
    );
    l.push(
        t,
        None,
        format!("Using data directory {}/regtest", b.datadir),
    );
    l.push(
        t,
        None,
        format!(
            "Config file: {}/bitcoin.conf (not found, skipping)",
            b.datadir
        ),
    );
    let mut args: Vec<String> = vec![format!("datadir=\"{}\"", b.datadir)];
    for c in [
        "net",
        "mempool",
        "mempoolrej",
        "validation",
        "bench",
        "cmpctblock",
    ] {
        args.push(format!("debug=\"{c}\""));
    }
    args.push(if format.thread_names() {
        "logthreadnames=\"\"".to_owned()
    } else {
        "logthreadnames=\"0\"".to_owned()
    });
    args.push("logtimemicros=\"\"".to_owned());
    args.push("regtest=\"\"".to_owned());
    args.push(format!("rpcport=\"{}\"", b.rpc_port));
    args.push("server=\"\"".to_owned());
    args.push("txindex=\"\"".to_owned());
    for a in args {
        l.push(t, None, format!("Command-line arg: {a}"));
    }
    l.push(
        t,
        None,
        format!("Binding RPC on address 127.0.0.1 port {}", b.rpc_port),
    );
    l.push(t, None, "init message: Loading block index…".to_owned());
    l.push(
        t,
        None,
        format!(
            "Loaded best chain: hashBestChain={} height={} date={} progress=1.000000",
            b.tip.hash,
            b.tip.height,
            iso_seconds(u64::from(b.tip.time))
        ),
    );
    l.push(t, None, "init message: Verifying blocks…".to_owned());
    l.push(t, None, "init message: Done loading".to_owned());
    for (peer, outbound) in &b.peers {
        let msg = match (format, outbound) {
            (LogFormat::V30, true) => format!(
                "New manual v2 peer connected: version: 70016, blocks={}, peer={peer}",
                b.tip.height
            ),
            (LogFormat::V30, false) => format!(
                "New inbound v2 peer connected: version: 70016, blocks={}, peer={peer}",
                b.tip.height
            ),
            (LogFormat::V25, true) => format!(
                "New outbound peer connected: version: 70016, blocks={}, peer={peer} (manual)",
                b.tip.height
            ),
            (LogFormat::V018, true) => format!(
                "New outbound peer connected: version: 70015, blocks={}, peer={peer}",
                b.tip.height
            ),
            (_, false) => continue,
        };
        l.push(MSGHAND, None, msg);
    }
    l.lines
}

/// The last lines of a clean shutdown.
pub(crate) fn shutdown(format: LogFormat) -> Vec<Out> {
    let (start, done) = match format {
        LogFormat::V30 => ("Shutdown in progress...", "Shutdown done"),
        _ => ("Shutdown: In progress...", "Shutdown: done"),
    };
    vec![
        Out {
            thread: SHUTOFF,
            category: None,
            message: start.to_owned(),
        },
        Out {
            thread: SHUTOFF,
            category: None,
            message: done.to_owned(),
        },
    ]
}
