//! The event extractor: a pure state machine from parsed debug.log lines to bmon events.
//!
//! [`Extractor::feed`] takes one [`Line`] and returns the events it completes, each with its
//! `observed_at` taken from the log (never the wall clock), so feeding the same lines gives
//! the same events. What it recognises, in every Core version of the fixtures (0.10 to 30):
//!
//! | kind | lines |
//! | --- | --- |
//! | `block_seen` `header` | `Saw new header hash=.. height=..[ peer=..]`, `Saw new cmpctblock header hash=..[ height=..] peer=..` |
//! | `block_seen` `cmpctblock` | `Initialized PartiallyDownloadedBlock for block ..` (peer from the `received: cmpctblock .. peer=N` just before), or `Successfully reconstructed block ..` if that line came alone |
//! | `block_seen` `block` | `received block .. peer=N` |
//! | `block_seen` `tip` | `UpdateTip: new best=.. height=..` (connects only, not the steps down of a reorg) |
//! | `block_timing` | the `-debug=bench` lines from `- Load block from disk` (or `- Using cached block`) to `- Connect block`, named by the `UpdateTip` between them; first sighting → tip; compact reconstruction counts. A block found invalid gets one too, right after its `invalid_block`, when it was reconstructed from a compact block or its connect logged bench lines: the stages up to the failure, the counts, no tip |
//! | `tx_rejected` | `<txid> [(wtxid=..)] from peer=N was not accepted: <reason>[, detail][ (code N)]` |
//! | `tx_replaced` | `replacing mempool tx ..` (v28+), `replacing tx .. [(wtxid=..)] with .. [(wtxid=..)]` (0.12–27) |
//! | `invalid_block` | `Block validation error:`, `BlockChecked: .. state=<not Valid>`, `ERROR: ConnectBlock(): ..`, `InvalidChainFound: invalid block=..`, `ConnectTip: ConnectBlock .. failed, ..` joined into one event per block |
//! | `block_download_timeout` | `Timeout downloading block .. from peer=N` |
//! | `block_disconnected`, `reorg` | `UpdateTip` going one height down (each step disconnects the previous tip), then up past the old tip; `BlockDisconnected: block hash=..` only when the `UpdateTip` steps were not seen. `Enqueuing ..` echo lines are ignored |
//! | `warning` | `[warning]` level lines, `Warning:`/`WARNING:` messages, `CheckForkWarningConditions..`, `UpdateTip: N of last 100 blocks have unexpected version`, `UpdateTip .. warning='..'` (when its text changes) |
//!
//! Joins and their limits:
//! - A reorg is complete when the new chain's tip passes the old tip's height; a reorg to a
//!   chain of more work but not more height is completed by the next block or by
//!   [`Extractor::finish`]. Its `observed_at` is the completing `UpdateTip`'s time.
//! - `header_to_tip_ms` runs from the first sighting of the block (header, compact block or
//!   full block, whichever the log shows first) to its `UpdateTip`.
//! - An invalid block is emitted once its hash, height and reason are known, or after
//!   [`INVALID_JOIN_LINES`] unrelated lines, with `observed_at` of its `InvalidChainFound`
//!   line (the moment the node marked it invalid).
//! - The bench lines of a connect that fails (no `UpdateTip` names them) belong to the block
//!   whose invalid-block lines come next; an invalid block found before any connect (header
//!   or `CheckBlock` failures) has no stages, only its compact counts if it had any.
//! - A bitcoind startup banner (`Bitcoin Core version ..`) resets the chain state, so a
//!   restart or a `-reindex` in the same file is not taken for a reorg.
//!
//! Memory is bounded: per-block maps keep the last [`MAX_TRACKED_BLOCKS`] blocks.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use bitcoin::{Amount, BlockHash, Txid, Wtxid};
use schema::event::{
    BlockDisconnected, BlockDownloadTimeout, BlockSeen, BlockStage, BlockTiming,
    CompactReconstruction, InvalidBlock, Reorg, Source, TimingStage, TxRejected, TxReplaced,
    Warning,
};
use schema::{Event, Height, UnixMicros};

use crate::line::Line;
use crate::scan::{
    after, decimal, field_uint, hash, reason_detail, strip, text, trim_code, trim_end, uint,
};

/// How many blocks the per-block maps (first sighting, compact counts, disconnect counts)
/// remember.
pub const MAX_TRACKED_BLOCKS: usize = 4096;

/// How many unrelated lines an incomplete invalid-block join waits before it is emitted.
pub const INVALID_JOIN_LINES: u32 = 16;

/// One event found in the log, with the log time it was observed at.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// The timestamp of the line that completed the event (see the module docs for joins).
    pub observed_at: UnixMicros,
    /// The event.
    pub event: Event,
}

/// The extractor's state. Create one per debug.log stream (per node) and feed it every line
/// in order.
#[derive(Debug, Default)]
pub struct Extractor {
    tip: Option<(BlockHash, Height)>,
    reorg: Option<ReorgState>,
    bench: Bench,
    first_seen: Bounded<BlockHash, Sighting>,
    compact: Bounded<BlockHash, CompactReconstruction>,
    disconnects: Bounded<BlockHash, u32>,
    disconnect_echo: VecDeque<BlockHash>,
    cmpct_peer: Option<u64>,
    cmpct_seen: Option<BlockHash>,
    invalid: Option<PendingInvalid>,
    invalid_pre: Option<PreReason>,
    invalid_done: VecDeque<BlockHash>,
    tip_warning: Option<Vec<u8>>,
    last_t: UnixMicros,
}

#[derive(Debug, Clone, Copy)]
struct Sighting {
    at: UnixMicros,
    peer: Option<u64>,
}

#[derive(Debug)]
struct ReorgState {
    old_tip: BlockHash,
    old_height: Height,
    fork: (BlockHash, Height),
    disconnected: Vec<BlockHash>,
    connected: Vec<BlockHash>,
}

#[derive(Debug, Default)]
struct Bench {
    active: bool,
    stages: Vec<TimingStage>,
    connect_total_ms: Option<f64>,
    block: Option<(BlockHash, Height)>,
    header_to_tip_ms: Option<f64>,
    compact: Option<CompactReconstruction>,
    last_at: UnixMicros,
}

#[derive(Debug)]
struct PendingInvalid {
    hash: BlockHash,
    height: Option<Height>,
    reason: Option<String>,
    detail: Option<String>,
    at: UnixMicros,
    marked_at: Option<UnixMicros>,
    /// `-debug=bench` stages of the failed connect (from `- Load block from disk` to the
    /// stage before the failure).
    stages: Vec<TimingStage>,
    idle: u32,
}

/// Reason text logged before the invalid block's hash (`Block validation error: ..`,
/// `ERROR: ConnectBlock(): ..`).
#[derive(Debug)]
struct PreReason {
    reason: Option<String>,
    detail: Option<String>,
    idle: u32,
}

/// A map that forgets its oldest keys past [`MAX_TRACKED_BLOCKS`].
#[derive(Debug)]
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: Hash + Eq + Copy, V> Bounded<K, V> {
    fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }

    fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k, v).is_none() {
            self.order.push_back(k);
            if self.order.len() > MAX_TRACKED_BLOCKS {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    fn insert_if_absent(&mut self, k: K, v: V) {
        if !self.map.contains_key(&k) {
            self.insert(k, v);
        }
    }

    fn remove(&mut self, k: &K) -> Option<V> {
        // The key stays in `order` until it ages out; harmless.
        self.map.remove(k)
    }
}

impl Extractor {
    /// A fresh extractor (no tip known yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line; returns the events it completes (usually none, without allocating).
    pub fn feed(&mut self, line: &Line<'_>) -> Vec<LogEvent> {
        let mut out = Vec::new();
        self.feed_into(line, &mut out);
        out
    }

    /// Feeds one line, appending the events it completes to `out`.
    pub fn feed_into(&mut self, line: &Line<'_>, out: &mut Vec<LogEvent>) {
        let t = line.time;
        self.last_t = t;
        let m = line.message;
        let mut ev = Out { t, out };
        let invalid_line = self.dispatch(t, m, &mut ev);
        if line.level == Some(&b"warning"[..]) {
            ev.push(Warning {
                message: text(trim_end(m)),
            });
        }
        if !invalid_line {
            self.age_invalid(&mut ev);
        }
    }

    /// Emits what is still pending at the end of the input (an invalid-block join, a reorg
    /// that never passed the old tip's height, bench timings without `- Connect block`).
    pub fn finish(&mut self) -> Vec<LogEvent> {
        let mut out = Vec::new();
        let mut ev = Out {
            t: self.last_t,
            out: &mut out,
        };
        self.flush_invalid(&mut ev);
        if let Some(r) = self.reorg.take() {
            emit_reorg(r, &mut ev);
        }
        if self.bench.active && self.bench.block.is_some() {
            ev.t = self.bench.last_at;
            self.bench_emit(&mut ev);
        }
        out
    }

    /// Routes a message by its first bytes; returns whether it belonged to an invalid-block
    /// join.
    #[inline]
    fn dispatch(&mut self, t: UnixMicros, m: &[u8], ev: &mut Out<'_>) -> bool {
        let Some(&first) = m.first() else {
            return false;
        };
        match first {
            b' ' | b'-' => self.on_bench(t, m, ev),
            b'U' => {
                if let Some(rest) = strip(m, b"UpdateTip: ") {
                    self.on_update_tip(t, rest, ev);
                }
            }
            b'S' => {
                if let Some(rest) = strip(m, b"Saw new ") {
                    self.on_header(t, rest, ev);
                } else if let Some(rest) = strip(m, b"Successfully reconstructed block ") {
                    self.on_reconstructed(t, rest, ev);
                }
            }
            b'I' => {
                if let Some(rest) = strip(m, b"Initialized PartiallyDownloadedBlock for block ") {
                    if let Some(h) = hash::<BlockHash>(rest) {
                        let peer = self.cmpct_peer.take();
                        self.seen(t, h, None, BlockStage::Cmpctblock, peer, ev);
                        self.cmpct_seen = Some(h);
                    }
                } else if let Some(rest) = strip(m, b"InvalidChainFound: ") {
                    return self.on_invalid_chain(t, rest, ev);
                }
            }
            b'r' => {
                if let Some(rest) = strip(m, b"received: cmpctblock ") {
                    self.cmpct_peer = field_uint(rest, b"peer=");
                } else if let Some(rest) = strip(m, b"received block ") {
                    if let Some(h) = hash::<BlockHash>(rest) {
                        let peer = field_uint(&rest[64..], b"peer=");
                        self.seen(t, h, None, BlockStage::Block, peer, ev);
                    }
                } else if let Some(rest) = strip(m, b"replacing ") {
                    on_replacing(rest, ev);
                }
            }
            b'B' => return self.on_b(t, m, ev),
            b'C' => {
                if let Some(rest) = strip(m, b"ConnectTip: ConnectBlock ") {
                    return self.on_connect_failed(t, rest, ev);
                } else if m.starts_with(b"CheckForkWarningConditions") {
                    ev.push(Warning {
                        message: text(trim_end(m)),
                    });
                }
            }
            b'E' => {
                if let Some(rest) = strip(m, b"ERROR: ") {
                    return self.on_error(t, rest, ev);
                }
            }
            b'T' => {
                if let Some(rest) = strip(m, b"Timeout downloading block ") {
                    ev.push(BlockDownloadTimeout {
                        hash: hash(rest),
                        peer: field_uint(rest, b"peer="),
                    });
                }
            }
            b'W' if m.starts_with(b"Warning:") || m.starts_with(b"WARNING:") => {
                ev.push(Warning {
                    message: text(trim_end(m)),
                });
            }
            b'0'..=b'9' | b'a'..=b'f' if m.len() > 64 && m[64] == b' ' => on_rejected(m, ev),
            _ => {}
        }
        false
    }

    fn seen(
        &mut self,
        t: UnixMicros,
        h: BlockHash,
        height: Option<Height>,
        stage: BlockStage,
        peer: Option<u64>,
        ev: &mut Out<'_>,
    ) {
        self.first_seen
            .insert_if_absent(h, Sighting { at: t, peer });
        ev.push(BlockSeen {
            hash: h,
            height,
            stage,
            peer,
            source: Source::Log,
        });
    }

    /// `Saw new header hash=..` / `Saw new cmpctblock header hash=..`.
    fn on_header(&mut self, t: UnixMicros, rest: &[u8], ev: &mut Out<'_>) {
        let (rest, cmpct) = match strip(rest, b"cmpctblock header hash=") {
            Some(r) => (r, true),
            None => match strip(rest, b"header hash=") {
                Some(r) => (r, false),
                None => return,
            },
        };
        let Some(h) = hash::<BlockHash>(rest) else {
            return;
        };
        let fields = &rest[64..];
        let height = field_uint(fields, b"height=").and_then(height_of);
        let peer = field_uint(fields, b"peer=");
        if cmpct {
            self.cmpct_peer = peer;
        }
        self.seen(t, h, height, BlockStage::Header, peer, ev);
    }

    /// `Successfully reconstructed block H with N txn prefilled, N txn from mempool (incl at
    /// least N from extra pool) and N txn[ (N bytes)] requested`.
    fn on_reconstructed(&mut self, t: UnixMicros, rest: &[u8], ev: &mut Out<'_>) {
        let Some(h) = hash::<BlockHash>(rest) else {
            return;
        };
        let num = |pat: &[u8]| {
            after(&rest[64..], pat)
                .and_then(uint)
                .and_then(|(v, _)| u32::try_from(v).ok())
        };
        let (Some(prefilled), Some(from_mempool), Some(requested)) =
            (num(b"with "), num(b"prefilled, "), num(b" and "))
        else {
            return;
        };
        let counts = CompactReconstruction {
            prefilled,
            from_mempool,
            from_extra_pool: num(b"at least ").unwrap_or(0),
            requested,
        };
        self.compact.insert(h, counts);
        if self.cmpct_seen != Some(h) {
            let peer = self.cmpct_peer.take();
            self.seen(t, h, None, BlockStage::Cmpctblock, peer, ev);
            self.cmpct_seen = Some(h);
        }
    }

    /// `UpdateTip: new best=H height=N ...` or `UpdateTip: <warning text>`.
    fn on_update_tip(&mut self, t: UnixMicros, rest: &[u8], ev: &mut Out<'_>) {
        let Some(fields) = strip(rest, b"new best=") else {
            // 0.12: `UpdateTip: 42 of last 100 blocks have unexpected version`.
            let w = trim_end(rest);
            if !w.is_empty() && self.tip_warning.as_deref() != Some(w) {
                self.tip_warning = Some(w.to_vec());
                ev.push(Warning { message: text(w) });
            }
            return;
        };
        let Some(h) = hash::<BlockHash>(fields) else {
            return;
        };
        let Some(height) = field_uint(&fields[64..], b"height=").and_then(height_of) else {
            return;
        };
        if let Some(w) = after(fields, b" warning='") {
            let w = &w[..memchr::memchr(b'\'', w).unwrap_or(w.len())];
            if !w.is_empty() && self.tip_warning.as_deref() != Some(w) {
                self.tip_warning = Some(w.to_vec());
                ev.push(Warning { message: text(w) });
            }
        }
        self.apply_tip(t, h, height, ev);
    }

    fn apply_tip(&mut self, t: UnixMicros, h: BlockHash, height: Height, ev: &mut Out<'_>) {
        match self.tip {
            // The same tip logged again: no chain change, but bench lines may be waiting for
            // their block.
            Some((old, _)) if old == h => {
                self.tip_timing(t, h, height, ev);
                return;
            }
            Some((old, old_height)) if height.next() == old_height => {
                // One step down: `old` was disconnected.
                if self.reorg.as_ref().is_some_and(|r| !r.connected.is_empty()) {
                    if let Some(r) = self.reorg.take() {
                        emit_reorg(r, ev);
                    }
                }
                let r = self.reorg.get_or_insert_with(|| ReorgState {
                    old_tip: old,
                    old_height,
                    fork: (h, height),
                    disconnected: Vec::new(),
                    connected: Vec::new(),
                });
                r.disconnected.push(old);
                r.fork = (h, height);
                let occurrence = self.disconnects.get(&old).copied().unwrap_or(0);
                self.disconnects.insert(old, occurrence + 1);
                self.disconnect_echo.push_back(old);
                if self.disconnect_echo.len() > MAX_TRACKED_BLOCKS {
                    self.disconnect_echo.pop_front();
                }
                ev.push(BlockDisconnected {
                    hash: old,
                    height: old_height,
                    occurrence,
                    source: Source::Log,
                });
                self.tip = Some((h, height));
                return;
            }
            Some((_, old_height)) if old_height.next() != height => {
                // Not contiguous (lines missing, or a restart we did not see): no reorg can be
                // derived across the jump.
                if let Some(r) = self.reorg.take() {
                    emit_reorg(r, ev);
                }
            }
            _ => {}
        }
        self.tip = Some((h, height));
        if let Some(r) = self.reorg.as_mut() {
            r.connected.push(h);
            if height > r.old_height {
                if let Some(r) = self.reorg.take() {
                    emit_reorg(r, ev);
                }
            }
        }
        self.seen_tip(t, h, height, ev);
    }

    fn seen_tip(&mut self, t: UnixMicros, h: BlockHash, height: Height, ev: &mut Out<'_>) {
        ev.push(BlockSeen {
            hash: h,
            height: Some(height),
            stage: BlockStage::Tip,
            peer: None,
            source: Source::Log,
        });
        self.tip_timing(t, h, height, ev);
    }

    /// Names the bench lines in progress after `h`, or emits its timing right away when no
    /// bench lines are being collected.
    fn tip_timing(&mut self, t: UnixMicros, h: BlockHash, height: Height, ev: &mut Out<'_>) {
        let header_to_tip_ms = self
            .first_seen
            .get(&h)
            .map(|s| t.micros_since(s.at) as f64 / 1000.0);
        let compact = self.compact.remove(&h);
        if self.bench.active {
            self.bench.last_at = t;
            self.bench.block = Some((h, height));
            self.bench.header_to_tip_ms = header_to_tip_ms;
            self.bench.compact = compact;
        } else if header_to_tip_ms.is_some() || compact.is_some() {
            ev.push(BlockTiming {
                hash: Some(h),
                height: Some(height),
                stages: Vec::new(),
                connect_total_ms: None,
                header_to_tip_ms,
                compact,
            });
        }
    }

    /// A `-debug=bench` line: `  - Name: 1.23ms [...]`.
    fn on_bench(&mut self, t: UnixMicros, m: &[u8], ev: &mut Out<'_>) {
        let s = &m[m.iter().take_while(|&&b| b == b' ').count()..];
        let Some(s) = strip(s, b"- ") else {
            return;
        };
        if s.starts_with(b"Using cached block") {
            self.bench_start(ev);
            return;
        }
        let Some(colon) = memchr::memchr(b':', s) else {
            return;
        };
        let name = &s[..colon];
        let Some((ms, unit)) = decimal(s[colon + 1..].trim_ascii_start()) else {
            return;
        };
        if !unit.starts_with(b"ms") {
            return;
        }
        match name {
            b"Load block from disk" if !self.bench.stages.is_empty() || !self.bench.active => {
                self.bench_start(ev);
            }
            b"Load block from disk" => {}
            b"Disconnect block" => return,
            _ if !self.bench.active => return,
            _ => {}
        }
        if name == b"Connect total" {
            self.bench.connect_total_ms = Some(ms);
        }
        self.bench.last_at = t;
        self.bench.stages.push(TimingStage {
            name: text(name),
            ms,
        });
        if name == b"Connect block" {
            self.bench_emit(ev);
        }
    }

    fn bench_start(&mut self, ev: &mut Out<'_>) {
        if self.bench.active && self.bench.block.is_some() {
            // The previous block's `- Connect block` line never came; keep what we have.
            let t = ev.t;
            ev.t = self.bench.last_at;
            self.bench_emit(ev);
            ev.t = t;
        }
        self.bench = Bench {
            active: true,
            last_at: self.bench.last_at,
            ..Bench::default()
        };
    }

    fn bench_emit(&mut self, ev: &mut Out<'_>) {
        let b = std::mem::take(&mut self.bench);
        self.bench.last_at = b.last_at;
        ev.push(BlockTiming {
            hash: b.block.map(|(h, _)| h),
            height: b.block.map(|(_, n)| n),
            stages: b.stages,
            connect_total_ms: b.connect_total_ms,
            header_to_tip_ms: b.header_to_tip_ms,
            compact: b.compact,
        });
    }

    /// Messages starting with `B`: `BlockChecked`, `Block validation error`,
    /// `BlockDisconnected`, and the startup banner `Bitcoin Core version` / `Bitcoin version`.
    fn on_b(&mut self, t: UnixMicros, m: &[u8], ev: &mut Out<'_>) -> bool {
        if let Some(rest) = strip(m, b"BlockChecked: block hash=") {
            let Some(h) = hash::<BlockHash>(rest) else {
                return false;
            };
            let Some(state) = after(&rest[64..], b"state=") else {
                return false;
            };
            if state.starts_with(b"Valid") {
                return false;
            }
            let (reason, detail) = reason_detail(state);
            if let Some(p) = self.invalid_for(t, h, ev) {
                p.reason = Some(reason);
                p.detail = detail.or(p.detail.take());
            }
            self.check_invalid(ev);
            return true;
        }
        if let Some(rest) = strip(m, b"Block validation error: ") {
            let (reason, detail) = reason_detail(rest);
            self.invalid_pre = Some(PreReason {
                reason: Some(reason),
                detail,
                idle: 0,
            });
            return true;
        }
        if let Some(rest) = strip(m, b"BlockDisconnected: block hash=") {
            let Some(h) = hash::<BlockHash>(rest) else {
                return false;
            };
            if let Some(i) = self.disconnect_echo.iter().position(|x| *x == h) {
                self.disconnect_echo.remove(i);
                return false;
            }
            let Some(height) = field_uint(&rest[64..], b"height=").and_then(height_of) else {
                return false;
            };
            let occurrence = self.disconnects.get(&h).copied().unwrap_or(0);
            self.disconnects.insert(h, occurrence + 1);
            ev.push(BlockDisconnected {
                hash: h,
                height,
                occurrence,
                source: Source::Log,
            });
            return false;
        }
        if m.starts_with(b"Bitcoin Core version")
            || m.starts_with(b"Bitcoin Core Daemon version")
            || m.starts_with(b"Bitcoin version")
        {
            // A (re)started bitcoind: the chain state we tracked is gone.
            if let Some(r) = self.reorg.take() {
                emit_reorg(r, ev);
            }
            self.tip = None;
            self.bench = Bench::default();
            self.cmpct_peer = None;
        }
        false
    }

    /// `InvalidChainFound: invalid block=H  height=N ...` (and its `current best=` twin).
    fn on_invalid_chain(&mut self, t: UnixMicros, rest: &[u8], ev: &mut Out<'_>) -> bool {
        let Some(rest) = strip(rest, b"invalid block=") else {
            // `InvalidChainFound:  current best=..` belongs to the same join.
            return self.invalid.is_some();
        };
        let Some(h) = hash::<BlockHash>(rest) else {
            return false;
        };
        let height = field_uint(&rest[64..], b"height=").and_then(height_of);
        if let Some(p) = self.invalid_for(t, h, ev) {
            p.height = p.height.or(height);
            p.marked_at.get_or_insert(t);
        }
        self.check_invalid(ev);
        true
    }

    /// `ConnectTip: ConnectBlock H failed, reason[, detail][ (code N)]`.
    fn on_connect_failed(&mut self, t: UnixMicros, rest: &[u8], ev: &mut Out<'_>) -> bool {
        let Some(h) = hash::<BlockHash>(rest) else {
            return false;
        };
        let reason = strip(&rest[64..], b" failed, ").map(reason_detail);
        if let Some(p) = self.invalid_for(t, h, ev) {
            if let Some((reason, detail)) = reason {
                p.reason = Some(reason);
                p.detail = p.detail.take().or(detail);
            }
        }
        self.check_invalid(ev);
        true
    }

    /// `ERROR: ...` lines of Core before v28.
    fn on_error(&mut self, t: UnixMicros, rest: &[u8], ev: &mut Out<'_>) -> bool {
        if let Some(r) = strip(rest, b"ConnectTip: ConnectBlock ")
            .or_else(|| strip(rest, b"ConnectTip(): ConnectBlock "))
        {
            return self.on_connect_failed(t, r, ev);
        }
        if let Some(detail) =
            strip(rest, b"ConnectBlock(): ").or_else(|| strip(rest, b"ConnectBlock: "))
        {
            let detail = trim_code(trim_end(detail));
            self.invalid_pre = Some(PreReason {
                reason: None,
                detail: Some(text(detail)),
                idle: 0,
            });
            return true;
        }
        // Other ERROR lines (AcceptBlockHeader: .. is marked invalid, ...) do not end a join.
        self.invalid.is_some()
    }

    /// The pending invalid-block join for `h`, starting one (and flushing another) if needed;
    /// `None` if `h` was already emitted.
    fn invalid_for(
        &mut self,
        t: UnixMicros,
        h: BlockHash,
        ev: &mut Out<'_>,
    ) -> Option<&mut PendingInvalid> {
        if self.invalid_done.contains(&h) {
            return None;
        }
        if self.invalid.as_ref().is_some_and(|p| p.hash != h) {
            self.flush_invalid(ev);
        }
        if self.invalid.is_none() {
            let pre = self.invalid_pre.take();
            let (reason, detail) = pre.map(|p| (p.reason, p.detail)).unwrap_or_default();
            // Bench stages that no `UpdateTip` named are those of the connect that just
            // failed: this block's.
            let stages = if self.bench.active && self.bench.block.is_none() {
                let last_at = self.bench.last_at;
                std::mem::replace(
                    &mut self.bench,
                    Bench {
                        last_at,
                        ..Bench::default()
                    },
                )
                .stages
            } else {
                Vec::new()
            };
            self.invalid = Some(PendingInvalid {
                hash: h,
                height: None,
                reason,
                detail,
                at: t,
                marked_at: None,
                stages,
                idle: 0,
            });
        }
        let p = self.invalid.as_mut()?;
        p.idle = 0;
        Some(p)
    }

    fn check_invalid(&mut self, ev: &mut Out<'_>) {
        if self
            .invalid
            .as_ref()
            .is_some_and(|p| p.height.is_some() && p.reason.is_some())
        {
            self.flush_invalid(ev);
        }
    }

    fn flush_invalid(&mut self, ev: &mut Out<'_>) {
        let Some(p) = self.invalid.take() else {
            return;
        };
        self.invalid_done.push_back(p.hash);
        if self.invalid_done.len() > 64 {
            self.invalid_done.pop_front();
        }
        let peer = self.first_seen.get(&p.hash).and_then(|s| s.peer);
        let t = ev.t;
        ev.t = p.marked_at.unwrap_or(p.at);
        ev.push(InvalidBlock {
            hash: p.hash,
            height: p.height,
            reason: p.reason.unwrap_or_else(|| "unknown".to_string()),
            detail: p.detail,
            peer,
            source: Source::Log,
        });
        let compact = self.compact.remove(&p.hash);
        if compact.is_some() || !p.stages.is_empty() {
            ev.push(BlockTiming {
                hash: Some(p.hash),
                height: p.height,
                connect_total_ms: p
                    .stages
                    .iter()
                    .find(|s| s.name == "Connect total")
                    .map(|s| s.ms),
                stages: p.stages,
                header_to_tip_ms: None,
                compact,
            });
        }
        ev.t = t;
    }

    #[inline]
    fn age_invalid(&mut self, ev: &mut Out<'_>) {
        if let Some(p) = self.invalid_pre.as_mut() {
            p.idle += 1;
            if p.idle > INVALID_JOIN_LINES {
                self.invalid_pre = None;
            }
        }
        if let Some(p) = self.invalid.as_mut() {
            p.idle += 1;
            if p.idle > INVALID_JOIN_LINES {
                self.flush_invalid(ev);
            }
        }
    }
}

/// Where events go, stamped with the current line's time.
struct Out<'a> {
    t: UnixMicros,
    out: &'a mut Vec<LogEvent>,
}

impl Out<'_> {
    #[inline]
    fn push(&mut self, e: impl Into<Event>) {
        self.out.push(LogEvent {
            observed_at: self.t,
            event: e.into(),
        });
    }
}

fn height_of(v: u64) -> Option<Height> {
    u32::try_from(v).ok().map(Height)
}

fn emit_reorg(r: ReorgState, ev: &mut Out<'_>) {
    let (Some(&new_tip), false) = (r.connected.last(), r.disconnected.is_empty()) else {
        return;
    };
    let n = u32::try_from(r.connected.len()).unwrap_or(u32::MAX);
    ev.push(Reorg {
        old_tip: r.old_tip,
        old_height: r.old_height,
        new_tip,
        new_height: Height(r.fork.1 .0.saturating_add(n)),
        fork_point: r.fork.0,
        fork_height: r.fork.1,
        depth: u32::try_from(r.disconnected.len()).unwrap_or(u32::MAX),
        disconnected: r.disconnected,
        connected: r.connected,
        source: Source::Log,
    });
}

/// `<txid> [(wtxid=<wtxid>)] from peer=N was not accepted: <reason>`.
fn on_rejected(m: &[u8], ev: &mut Out<'_>) {
    let Some(txid) = hash::<Txid>(m) else {
        return;
    };
    let mut rest = &m[64..];
    let mut wtxid = None;
    if let Some(r) = strip(rest, b" (wtxid=") {
        wtxid = hash::<Wtxid>(r);
        rest = r.get(65..).unwrap_or_default();
    }
    let Some(r) = strip(rest, b" from peer=") else {
        return;
    };
    let Some((peer, r)) = uint(r) else {
        return;
    };
    let Some(full) = after(r, b"was not accepted: ") else {
        return;
    };
    let full = trim_end(full);
    let (reason, _) = reason_detail(full);
    ev.push(TxRejected {
        txid,
        wtxid,
        peer: Some(peer),
        reason,
        reason_text: text(full),
    });
}

/// After `replacing `: `mempool tx OLD (wtxid=W, fees=F, vsize=V). New tx NEW (wtxid=W,
/// fees=F, vsize=V)` (v28+) or `tx OLD [(wtxid=W)] with NEW [(wtxid=W)] for ..` (0.12–27).
fn on_replacing(rest: &[u8], ev: &mut Out<'_>) {
    let (old, new) = if let Some(r) = strip(rest, b"mempool tx ") {
        let Some(i) = memchr::memmem::find(r, b"New tx ") else {
            return;
        };
        (&r[..i], &r[i + 7..])
    } else if let Some(r) = strip(rest, b"tx ") {
        let Some(i) = memchr::memmem::find(r, b" with ") else {
            return;
        };
        (&r[..i], &r[i + 6..])
    } else {
        return;
    };
    let (Some(replaced_txid), Some(new_txid)) = (hash::<Txid>(old), hash::<Txid>(new)) else {
        return;
    };
    let wtxid = |s: &[u8]| strip(s.get(64..)?, b" (wtxid=").and_then(hash::<Wtxid>);
    let fee = |s: &[u8]| {
        let s = s.get(64..)?;
        let end = memchr::memchr(b')', s).unwrap_or(s.len());
        field_uint(&s[..end], b"fees=").map(Amount::from_sat)
    };
    let vsize = |s: &[u8]| {
        let s = s.get(64..)?;
        let end = memchr::memchr(b')', s).unwrap_or(s.len());
        field_uint(&s[..end], b"vsize=")
    };
    ev.push(TxReplaced {
        replaced_txid,
        replaced_wtxid: wtxid(old),
        new_txid,
        new_wtxid: wtxid(new),
        replaced_fee: fee(old),
        new_fee: fee(new),
        replaced_vsize: vsize(old),
        new_vsize: vsize(new),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::parse_line;

    fn run(lines: &[&str]) -> Vec<Event> {
        let mut x = Extractor::new();
        let mut out = Vec::new();
        for l in lines {
            if let Ok(line) = parse_line(l.as_bytes()) {
                x.feed_into(&line, &mut out);
            }
        }
        out.extend(x.finish());
        out.into_iter().map(|e| e.event).collect()
    }

    const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const H3: &str = "3333333333333333333333333333333333333333333333333333333333333333";

    #[test]
    fn warnings_of_every_shape_are_reported() {
        let evs = run(&[
            "2017-01-17 11:31:45 CheckForkWarningConditions: Warning: Large valid fork found",
            "2017-01-17 11:31:46 Warning: unknown new rules activated (versionbit 28)",
            "2024-01-17T11:31:47Z [net:warning] something odd",
            "2024-01-17T11:31:48Z [warning] Disk space is low",
        ]);
        let msgs: Vec<String> = evs
            .into_iter()
            .map(|e| match e {
                Event::Warning(w) => w.message,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            msgs,
            [
                "CheckForkWarningConditions: Warning: Large valid fork found",
                "Warning: unknown new rules activated (versionbit 28)",
                "something odd",
                "Disk space is low",
            ]
        );
    }

    #[test]
    fn older_replacement_wording_gives_txids_without_fees() {
        let evs = run(&[&format!(
            "2020-01-01T00:00:00Z [msghand] replacing tx {H1} (wtxid={H2}) with {H3} (wtxid={H1}) for 0.0001 additional fees, 0 delta bytes"
        )]);
        let [Event::TxReplaced(r)] = evs.as_slice() else {
            panic!("{evs:?}")
        };
        assert_eq!(r.replaced_txid.to_string(), H1);
        assert_eq!(r.replaced_wtxid.map(|w| w.to_string()).as_deref(), Some(H2));
        assert_eq!(r.new_txid.to_string(), H3);
        assert_eq!((r.replaced_fee, r.new_vsize), (None, None));
    }

    #[test]
    fn a_restart_with_reindex_is_not_a_reorg() {
        let evs = run(&[
            &format!("2020-01-01T00:00:00Z UpdateTip: new best={H1} height=5"),
            &format!("2020-01-01T00:00:01Z UpdateTip: new best={H2} height=6"),
            "2020-01-01T00:01:00Z Bitcoin Core version v25.0.0 (release build)",
            &format!("2020-01-01T00:01:01Z UpdateTip: new best={H3} height=5"),
        ]);
        assert!(evs
            .iter()
            .all(|e| matches!(e, Event::BlockSeen(s) if s.stage == BlockStage::Tip)));
        assert_eq!(evs.len(), 3);
    }

    #[test]
    fn block_disconnected_lines_count_when_the_tip_steps_were_not_seen() {
        let evs = run(&[&format!(
            "2026-11-25T15:53:18.682314Z [validation] BlockDisconnected: block hash={H1} block height=114"
        )]);
        assert_eq!(
            evs,
            [Event::BlockDisconnected(BlockDisconnected {
                hash: H1.parse().unwrap(),
                height: Height(114),
                occurrence: 0,
                source: Source::Log,
            })]
        );
    }

    #[test]
    fn lines_without_events_allocate_nothing_and_emit_nothing() {
        let mut x = Extractor::new();
        let line = parse_line(
            b"2023-10-11T13:00:00.000100Z [msghand] [net] received: inv (37 bytes) peer=3",
        )
        .unwrap();
        let out = x.feed(&line);
        assert!(out.is_empty());
        assert_eq!(out.capacity(), 0);
    }
}
