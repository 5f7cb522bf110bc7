//! The node driver: the I/O shell around the pure trackers. It reads decoded ZMQ messages,
//! asks RPC for what they lack (the block behind a `C`, its height and fees, the header behind
//! an unknown `D`), polls RPC on timers, and sends every event as an envelope into the
//! publisher's bounded channel.
//!
//! Block notifications are handled in order; a `C` waits (up to [`REORG_SETTLE`]) for its
//! block on `rawblock` before the block is fetched over RPC.
//!
//! A gap or restart in a topic's ZMQ sequence numbers triggers a resync: chain tip (catching up
//! missed blocks over RPC), chain tips and the mempool mirror are re-read.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::{Block, BlockHash, Network};
use schema::event::{ChainTips, MirrorFigures, Source, TxSeen};
use schema::{Envelope, Event, Height, NodeId, UnixMicros};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::chain::{bip34_height, block_facts, ChainTracker};
use crate::clock::Clock;
use crate::mempool::{MempoolTracker, MirrorCheck};
use crate::metrics::Metrics;
use crate::publish::Item;
use crate::sources::answers::RawMempoolWithSequence;
use crate::sources::rpc::RpcClient;
use crate::sources::zmq::{Received, SeqCheck, SequenceEvent, SequenceTracker, ZmqMessage};
use crate::status;

/// How long the block stream must pause before a run of disconnects and connects is reported
/// as one reorg.
pub const REORG_SETTLE: Duration = Duration::from_millis(250);

/// Most blocks caught up over RPC after a resync (more is an operator's job: the node is far
/// ahead of what the agent saw).
pub const MAX_CATCH_UP: u32 = 100;

/// Recent `rawblock`s kept for their `C`.
const BLOCK_CACHE: usize = 8;

/// How long the driver keeps turning already-queued ZMQ notifications into events once
/// shutdown has started.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(2);

/// What the driver knows of the node's coinstatsindex, which `utxo_stats` needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoinStats {
    /// Not asked yet (or asked again after the node restarted).
    Unknown,
    /// Synced: `utxo_stats` after every connected block.
    Ready,
    /// Still building: asked again at the next block.
    Syncing,
    /// The node has none: no `utxo_stats` until it restarts.
    Absent,
}

impl CoinStats {
    /// What a `getindexinfo` answer says.
    pub fn from_indexes(indexes: &crate::sources::answers::IndexInfos) -> CoinStats {
        match indexes.get("coinstatsindex") {
            Some(i) if i.synced => CoinStats::Ready,
            Some(_) => CoinStats::Syncing,
            None => CoinStats::Absent,
        }
    }
}

/// Most fee lookups (`getmempoolentry`) after one resync; a larger difference is published
/// without fees.
const MAX_RESYNC_FEE_LOOKUPS: usize = 1_000;

/// The publisher's inbox is gone (the agent is stopping).
#[derive(Debug)]
pub struct PublisherGone;

/// Poll intervals.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// `node_status` and the `chain_tips` check.
    pub status: Duration,
    /// `mempool_snapshot`.
    pub mempool: Duration,
    /// Look up each new transaction's fee for `tx_seen`.
    pub tx_fees: bool,
    /// `template_snapshot`, besides one at each new tip; `None`: no templates.
    pub template: Option<Duration>,
    /// `peer_snapshot`; `None`: none.
    pub peers: Option<Duration>,
}

/// Drives one node's sources.
pub struct NodeDriver {
    node: NodeId,
    rpc: Arc<RpcClient>,
    metrics: Metrics,
    clock: Clock,
    out: mpsc::Sender<Item>,
    chain: ChainTracker,
    mempool: MempoolTracker,
    seqs: SequenceTracker,
    blocks: HashMap<BlockHash, Block>,
    block_order: VecDeque<BlockHash>,
    /// `C`/`D` notifications waiting, in order, for the `rawblock` of a `C` at their head.
    pending: VecDeque<BlockNote>,
    last_tips: Option<ChainTips>,
    coinstats: CoinStats,
    /// Shutdown has started: RPC calls are not retried.
    stopping: bool,
    /// Look up each new transaction's fee (`getmempoolentry`).
    tx_fees: bool,
    /// The tip of the last template asked for, when templates are on.
    template_tip: Option<Option<BlockHash>>,
    /// Peer ids of the last `getpeerinfo`.
    last_peers: Option<Vec<u64>>,
}

/// A block notification not yet turned into events.
#[derive(Debug, Clone, Copy)]
enum BlockNote {
    Connected(BlockHash, UnixMicros),
    Disconnected(BlockHash, UnixMicros),
}

impl NodeDriver {
    /// A driver for `node` on `network`, stamping what it observes itself (RPC polls, reorgs,
    /// catch-up) with `clock` and sending into `out`.
    pub fn new(
        node: NodeId,
        network: Network,
        rpc: Arc<RpcClient>,
        metrics: Metrics,
        clock: Clock,
        out: mpsc::Sender<Item>,
    ) -> Self {
        NodeDriver {
            node,
            rpc,
            metrics,
            clock,
            out,
            chain: ChainTracker::new(network),
            mempool: MempoolTracker::default(),
            seqs: SequenceTracker::default(),
            blocks: HashMap::new(),
            block_order: VecDeque::new(),
            pending: VecDeque::new(),
            last_tips: None,
            coinstats: CoinStats::Unknown,
            stopping: false,
            tx_fees: false,
            template_tip: None,
            last_peers: None,
        }
    }

    /// Runs until `shutdown` fires, the ZMQ channel closes, or the publisher is gone. On
    /// shutdown, notifications already queued in `zmq` are still turned into events for up to
    /// [`SHUTDOWN_DRAIN`] (without RPC retries), then pending blocks are flushed.
    pub async fn run(
        mut self,
        mut zmq: mpsc::Receiver<Received>,
        intervals: Intervals,
        shutdown: CancellationToken,
    ) -> Result<(), PublisherGone> {
        self.tx_fees = intervals.tx_fees;
        self.resync("startup").await?;
        let mut status_tick = tokio::time::interval(intervals.status);
        let mut mempool_tick = tokio::time::interval(intervals.mempool);
        status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        mempool_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let templates = intervals.template.is_some();
        if templates {
            self.template_tip = Some(None);
        }
        let mut template_tick =
            tokio::time::interval(intervals.template.unwrap_or(Duration::from_secs(3_600)));
        template_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let peers = intervals.peers.is_some();
        let mut peers_tick =
            tokio::time::interval(intervals.peers.unwrap_or(Duration::from_secs(3_600)));
        peers_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut settle_at: Option<Instant> = None;
        loop {
            let settle = async {
                match settle_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                msg = zmq.recv() => {
                    let Some(msg) = msg else { break };
                    let block_msg = self.handle(msg).await?;
                    if block_msg && (self.chain.has_pending() || !self.pending.is_empty()) {
                        settle_at = Some(Instant::now() + REORG_SETTLE);
                    }
                    // Any message may move the tip: a `sequence` connect waits for its
                    // `rawblock` when that comes second.
                    self.template_on_new_tip().await?;
                }
                _ = settle => {
                    settle_at = None;
                    self.drain_pending(true).await?;
                    if let Some(ev) = self.chain.flush() {
                        self.emit(ev, self.clock.now()).await?;
                    }
                    self.template_on_new_tip().await?;
                }
                _ = status_tick.tick() => self.poll_status().await?,
                _ = mempool_tick.tick() => self.poll_mempool().await?,
                _ = template_tick.tick(), if templates => self.poll_template().await?,
                _ = peers_tick.tick(), if peers => self.poll_peers().await?,
            }
        }
        self.stopping = true;
        self.drain_queued(&mut zmq).await?;
        self.drain_pending(true).await?;
        if let Some(ev) = self.chain.flush() {
            self.emit(ev, self.clock.now()).await?;
        }
        Ok(())
    }

    /// At shutdown: handles the notifications already in the channel, for up to
    /// [`SHUTDOWN_DRAIN`]; what is left then is counted in the log.
    async fn drain_queued(
        &mut self,
        zmq: &mut mpsc::Receiver<Received>,
    ) -> Result<(), PublisherGone> {
        let deadline = Instant::now() + SHUTDOWN_DRAIN;
        let mut handled = 0u64;
        let drained = tokio::time::timeout_at(deadline, async {
            while let Ok(msg) = zmq.try_recv() {
                self.handle(msg).await?;
                handled += 1;
            }
            Ok::<(), PublisherGone>(())
        })
        .await;
        match drained {
            Ok(res) => {
                if handled > 0 {
                    tracing::info!(handled, "handled queued ZMQ notifications at shutdown");
                }
                res
            }
            Err(_) => {
                let mut left = 0u64;
                while zmq.try_recv().is_ok() {
                    left += 1;
                }
                tracing::warn!(handled, left, deadline = ?SHUTDOWN_DRAIN,
                    "shutdown drain of queued ZMQ notifications timed out; the rest is dropped");
                Ok(())
            }
        }
    }

    /// Processes queued block notifications in order. A `C` whose block has not arrived on
    /// `rawblock` waits (bitcoind sends `rawblock` after the `C`s, and only for the new tip)
    /// unless `force`, when the block is fetched over RPC.
    async fn drain_pending(&mut self, force: bool) -> Result<(), PublisherGone> {
        while let Some(note) = self.pending.front().copied() {
            match note {
                BlockNote::Connected(hash, at) => {
                    if !force && !self.blocks.contains_key(&hash) {
                        return Ok(());
                    }
                    self.pending.pop_front();
                    self.block_connected(hash, Source::Zmq, at).await?;
                }
                BlockNote::Disconnected(hash, at) => {
                    self.pending.pop_front();
                    self.block_disconnected(hash, at).await?;
                }
            }
        }
        Ok(())
    }

    async fn block_disconnected(
        &mut self,
        hash: BlockHash,
        at: UnixMicros,
    ) -> Result<(), PublisherGone> {
        let header = if self.chain.height_of(&hash).is_some() && self.chain.prev_of(&hash).is_some()
        {
            None
        } else {
            match self.rpc.get_block_header(&hash).await {
                Ok(h) => h.previousblockhash.map(|p| (Height(h.height), p)),
                Err(e) => {
                    tracing::warn!(block = %hash, error = %e, "no header for a disconnected block");
                    None
                }
            }
        };
        let events = self.chain.disconnected(hash, header, Source::Zmq);
        self.emit_all(events, at).await
    }

    /// `getblock` with a few retries while the node answers with a transient error (warm-up,
    /// timeout): a block notification is worth waiting a second or two for.
    async fn fetch_block(&self, hash: &BlockHash) -> Result<Block, crate::sources::rpc::RpcError> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            match self.rpc.get_block(hash).await {
                Err(e) if e.is_transient() && attempt < 4 && !self.stopping => {
                    tracing::info!(block = %hash, error = %e, retry_in = ?delay, "getblock failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn emit(&self, event: Event, observed_at: UnixMicros) -> Result<(), PublisherGone> {
        let env = Envelope::new(self.node.clone(), observed_at, event);
        self.out
            .send(Item::Event(env))
            .await
            .map_err(|_| PublisherGone)
    }

    async fn emit_all(
        &self,
        events: Vec<Event>,
        observed_at: UnixMicros,
    ) -> Result<(), PublisherGone> {
        for e in events {
            self.emit(e, observed_at).await?;
        }
        Ok(())
    }

    /// Handles one received message; returns whether it was a block connect/disconnect.
    async fn handle(&mut self, rec: Received) -> Result<bool, PublisherGone> {
        let msg = match rec.message {
            Ok(m) => m,
            Err(e) => {
                self.metrics.zmq_malformed(e.reason());
                tracing::warn!(endpoint = %rec.endpoint, error = %e, "malformed ZMQ message skipped");
                return Ok(false);
            }
        };
        let check = self.seqs.check(msg.topic(), msg.seq());
        if check.needs_resync() {
            let reason = match check {
                SeqCheck::Restart { .. } => "restart",
                _ => "gap",
            };
            tracing::warn!(topic = %msg.topic(), ?check, "ZMQ sequence broken; resyncing over RPC");
            self.resync(reason).await?;
        }
        let at = rec.observed_at;
        match msg {
            ZmqMessage::RawBlock { block, .. } => {
                let hash = block.block_hash();
                if self.blocks.insert(hash, *block).is_none() {
                    self.block_order.push_back(hash);
                }
                while self.block_order.len() > BLOCK_CACHE {
                    if let Some(old) = self.block_order.pop_front() {
                        self.blocks.remove(&old);
                    }
                }
                self.drain_pending(false).await?;
                Ok(false)
            }
            ZmqMessage::RawTx { tx, .. } => {
                self.mempool.raw_tx(&tx);
                Ok(false)
            }
            ZmqMessage::Sequence { event, .. } => match event {
                SequenceEvent::BlockConnected(hash) => {
                    self.pending.push_back(BlockNote::Connected(hash, at));
                    self.drain_pending(false).await?;
                    Ok(true)
                }
                SequenceEvent::BlockDisconnected(hash) => {
                    self.pending.push_back(BlockNote::Disconnected(hash, at));
                    self.drain_pending(false).await?;
                    Ok(true)
                }
                SequenceEvent::TxAdded {
                    txid,
                    mempool_sequence,
                } => {
                    if let Some(mut ev) = self.mempool.added(txid, mempool_sequence) {
                        if let Event::TxSeen(seen) = &mut ev {
                            self.add_fee(seen).await;
                        }
                        self.emit(ev, at).await?;
                    }
                    Ok(false)
                }
                SequenceEvent::TxRemoved {
                    txid,
                    mempool_sequence,
                } => {
                    if let Some(ev) = self.mempool.removed(txid, mempool_sequence) {
                        self.emit(ev, at).await?;
                    }
                    Ok(false)
                }
            },
        }
    }

    /// A block was connected: fetch what the notification lacks and emit `block_connected`
    /// (plus `tx_removed` for mirrored transactions it confirmed).
    async fn block_connected(
        &mut self,
        hash: BlockHash,
        source: Source,
        at: UnixMicros,
    ) -> Result<(), PublisherGone> {
        if self.chain.tip().is_some_and(|(t, _)| t == hash) {
            return Ok(()); // already known (a resync caught it up)
        }
        let block = match self.blocks.remove(&hash) {
            Some(b) => b,
            None => match self.fetch_block(&hash).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(block = %hash, error = %e, "cannot fetch a connected block; skipped");
                    return Ok(());
                }
            },
        };
        let height = match self.chain.height_after(&block.header.prev_blockhash) {
            Some(h) => h,
            None => match self.rpc.get_block_header(&hash).await {
                Ok(h) => Height(h.height),
                Err(e) => match bip34_height(&block) {
                    Some(h) => h,
                    None => {
                        tracing::warn!(block = %hash, error = %e, "unknown height of a connected block; skipped");
                        return Ok(());
                    }
                },
            },
        };
        let fees = match self.rpc.get_block_stats(&hash).await {
            Ok(s) => s.totalfee,
            Err(e) => {
                tracing::debug!(block = %hash, error = %e, "no getblockstats for block");
                None
            }
        };
        let facts = block_facts(&block, height, fees);
        let mut events = self.chain.connected(&facts, source);
        events.extend(self.mempool.block_connected(&facts.txids));
        self.emit_all(events, at).await?;
        self.utxo_stats(hash).await
    }

    /// Publishes `utxo_stats` for a connected block when the node has a synced
    /// coinstatsindex (`gettxoutsetinfo muhash <hash>`); without the index, says so once.
    async fn utxo_stats(&mut self, hash: BlockHash) -> Result<(), PublisherGone> {
        if matches!(self.coinstats, CoinStats::Unknown | CoinStats::Syncing) {
            self.coinstats = self.check_coinstats(&hash).await;
        }
        if self.coinstats != CoinStats::Ready {
            return Ok(());
        }
        match self.rpc.get_utxo_stats(&hash).await {
            Ok(info) if info.bestblock == hash => {
                self.emit(Event::UtxoStats(info.to_event()), self.clock.now())
                    .await
            }
            Ok(info) => {
                tracing::warn!(block = %hash, answered = %info.bestblock,
                    "gettxoutsetinfo answered for another block; no utxo_stats");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(block = %hash, error = %e, "gettxoutsetinfo failed; no utxo_stats for this block");
                if !e.is_transient() {
                    self.coinstats = CoinStats::Unknown;
                }
                Ok(())
            }
        }
    }

    /// Asks the node whether it has a synced coinstatsindex.
    async fn check_coinstats(&self, hash: &BlockHash) -> CoinStats {
        match self.rpc.get_index_info().await {
            Ok(indexes) => {
                let state = CoinStats::from_indexes(&indexes);
                match state {
                    CoinStats::Ready => {
                        tracing::info!("coinstatsindex is synced: publishing utxo_stats")
                    }
                    CoinStats::Syncing if self.coinstats != CoinStats::Syncing => {
                        tracing::info!(
                            best_block_height =
                                indexes.get("coinstatsindex").map(|i| i.best_block_height),
                            "coinstatsindex is still syncing; utxo_stats start once it is synced"
                        )
                    }
                    CoinStats::Absent => tracing::info!(
                        "the node has no coinstatsindex (-coinstatsindex=1): no utxo_stats"
                    ),
                    _ => {}
                }
                state
            }
            // No getindexinfo (Core before 0.21, which has no coinstatsindex either, or a node
            // that answers gettxoutsetinfo per block without it): ask once.
            Err(e) if e.is_method_not_found() => match self.rpc.get_utxo_stats(hash).await {
                Ok(_) => {
                    tracing::info!("no getindexinfo, but gettxoutsetinfo answers per block: publishing utxo_stats");
                    CoinStats::Ready
                }
                Err(e) if e.is_transient() => CoinStats::Unknown,
                Err(e) => {
                    tracing::info!(error = %e, "the node cannot give UTXO statistics per block: no utxo_stats");
                    CoinStats::Absent
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "getindexinfo failed; asking again at the next block");
                CoinStats::Unknown
            }
        }
    }

    /// Re-reads the node's state over RPC after startup, a ZMQ gap or a node restart.
    async fn resync(&mut self, reason: &'static str) -> Result<(), PublisherGone> {
        self.metrics.resync(reason);
        self.seqs.reset();
        if reason == "restart" {
            // The node may have been restarted with (or without) -coinstatsindex.
            self.coinstats = CoinStats::Unknown;
        }
        tracing::info!(reason, "resync over RPC");
        match self.rpc.get_blockchain_info().await {
            Ok(info) => {
                let best = info.bestblockhash;
                let node_height = Height(info.blocks);
                match self.chain.tip() {
                    Some((tip, tip_height))
                        if tip != best
                            && node_height > tip_height
                            && node_height.blocks_since(tip_height) <= MAX_CATCH_UP =>
                    {
                        self.catch_up(tip, tip_height, node_height).await?;
                        if self.chain.tip().map(|t| t.0) != Some(best) {
                            self.chain.set_tip(best, node_height);
                        }
                    }
                    Some((tip, _)) if tip == best => {}
                    _ => self.chain.set_tip(best, node_height),
                }
            }
            Err(e) => tracing::warn!(error = %e, "resync: getblockchaininfo failed"),
        }
        self.poll_tips().await?;
        match self.rpc.get_raw_mempool_sequence().await {
            Ok(raw) => self.reset_mempool(&raw).await?,
            Err(e) => tracing::warn!(error = %e, "resync: getrawmempool failed"),
        }
        Ok(())
    }

    /// Replaces the mirror with the node's list and emits what changed while the agent was
    /// blind (`tx_seen` / `tx_removed` from RPC), so every consumer's view of this mempool
    /// matches the node again.
    async fn reset_mempool(&mut self, raw: &RawMempoolWithSequence) -> Result<(), PublisherGone> {
        let at = self.clock.now();
        let changes = self.mempool.reset(&raw.txids, Some(raw.mempool_sequence));
        if !changes.is_empty() {
            tracing::info!(
                changes = changes.len(),
                "mempool mirror resynced from getrawmempool"
            );
        }
        // A first start sees the whole mempool as new: looking up 300,000 fees would hold the
        // ZMQ notifications back for minutes, so large differences go without.
        let priced = changes.len() <= MAX_RESYNC_FEE_LOOKUPS;
        for mut ev in changes {
            if let Event::TxSeen(seen) = &mut ev {
                if priced {
                    self.add_fee(seen).await;
                }
            }
            self.emit(ev, at).await?;
        }
        Ok(())
    }

    /// Fills a new transaction's fee (and size, if `rawtx` was missed) from `getmempoolentry`.
    /// The transaction may have left the mempool already: then the fee stays unknown.
    async fn add_fee(&mut self, seen: &mut TxSeen) {
        if !self.tx_fees || self.stopping {
            return;
        }
        match self.rpc.get_mempool_entry(&seen.txid).await {
            Ok(entry) => {
                seen.fee = Some(entry.fees.base);
                seen.vsize.get_or_insert(entry.vsize);
                seen.wtxid.get_or_insert(entry.wtxid);
            }
            Err(e) => tracing::debug!(txid = %seen.txid, error = %e, "getmempoolentry failed"),
        }
    }

    /// Emits `block_connected` (source RPC) for blocks the node connected while the agent did
    /// not hear of them, if they extend the agent's tip.
    async fn catch_up(
        &mut self,
        tip: BlockHash,
        tip_height: Height,
        node_height: Height,
    ) -> Result<(), PublisherGone> {
        let mut expected_prev = tip;
        let mut h = tip_height.next();
        while h <= node_height {
            let Ok(hash) = self.rpc.get_block_hash(h.0).await else {
                return Ok(());
            };
            let Ok(header) = self.rpc.get_block_header(&hash).await else {
                return Ok(());
            };
            if header.previousblockhash != Some(expected_prev) {
                // The node reorganised while the agent was blind; chain_tips tells.
                return Ok(());
            }
            self.block_connected(hash, Source::Rpc, self.clock.now())
                .await?;
            expected_prev = hash;
            h = h.next();
        }
        Ok(())
    }

    async fn poll_tips(&mut self) -> Result<(), PublisherGone> {
        match self.rpc.get_chain_tips().await {
            Ok(tips) => {
                let tips = status::chain_tips(&tips);
                if self.last_tips.as_ref() != Some(&tips) {
                    self.last_tips = Some(tips.clone());
                    self.emit(Event::ChainTips(tips), self.clock.now()).await?;
                }
            }
            Err(e) => tracing::warn!(error = %e, "getchaintips failed"),
        }
        Ok(())
    }

    async fn poll_status(&mut self) -> Result<(), PublisherGone> {
        let at = self.clock.now();
        let (chain, net, mempool, uptime) = tokio::join!(
            self.rpc.get_blockchain_info(),
            self.rpc.get_network_info(),
            self.rpc.get_mempool_info(),
            self.rpc.uptime(),
        );
        match (chain, net, mempool, uptime) {
            (Ok(c), Ok(n), Ok(m), Ok(u)) => {
                let s = status::node_status(&c, &n, &m, u);
                self.emit(Event::NodeStatus(s), at).await?;
            }
            (c, n, m, u) => {
                let err = [
                    c.err().map(|e| e.to_string()),
                    n.err().map(|e| e.to_string()),
                    m.err().map(|e| e.to_string()),
                    u.err().map(|e| e.to_string()),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
                tracing::warn!(error = %err, "node_status poll failed");
            }
        }
        self.poll_tips().await
    }

    /// `peer_snapshot` from `getpeerinfo`.
    async fn poll_peers(&mut self) -> Result<(), PublisherGone> {
        let at = self.clock.now();
        match self.rpc.get_peer_info().await {
            Ok(peers) => {
                let snap = status::peer_snapshot(&peers, self.last_peers.as_deref());
                self.last_peers = Some(peers.iter().map(|p| p.id).collect());
                self.emit(Event::PeerSnapshot(snap), at).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "getpeerinfo failed");
                Ok(())
            }
        }
    }

    /// A template for a new tip, once per tip (templates on).
    async fn template_on_new_tip(&mut self) -> Result<(), PublisherGone> {
        let Some(asked) = self.template_tip else {
            return Ok(());
        };
        let tip = self.chain.tip().map(|t| t.0);
        if tip.is_some() && tip != asked {
            // Asked once per tip, answered or not: a node in initial block download refuses
            // every template and must not be asked at every block.
            self.template_tip = Some(tip);
            self.poll_template().await?;
        }
        Ok(())
    }

    /// `template_snapshot` from `getblocktemplate`. A node that cannot give one (in initial
    /// block download, or without peers on mainnet) is skipped quietly.
    async fn poll_template(&mut self) -> Result<(), PublisherGone> {
        let at = self.clock.now();
        match self.rpc.get_block_template().await {
            Ok(t) => {
                let snap = status::template_snapshot(&t);
                self.emit(Event::TemplateSnapshot(snap), at).await
            }
            Err(e) => {
                tracing::debug!(error = %e, "getblocktemplate failed");
                Ok(())
            }
        }
    }

    async fn poll_mempool(&mut self) -> Result<(), PublisherGone> {
        let at = self.clock.now();
        let (info, raw) = tokio::join!(
            self.rpc.get_mempool_info(),
            self.rpc.get_raw_mempool_sequence()
        );
        match (info, raw) {
            (Ok(info), Ok(raw)) => {
                let digest = status::digest(&raw.txids);
                let check = self
                    .mempool
                    .check(&digest, raw.txids.len(), raw.mempool_sequence);
                let mirror = MirrorFigures {
                    count: self.mempool.len() as u64,
                    txid_digest: self.mempool.digest(),
                    mempool_sequence: self.mempool.sequence(),
                };
                let snap = status::mempool_snapshot(&info, &raw, Some(mirror));
                self.emit(Event::MempoolSnapshot(snap), at).await?;
                match check {
                    MirrorCheck::Equal => self.metrics.mirror_check("equal"),
                    MirrorCheck::InFlight => self.metrics.mirror_check("in_flight"),
                    MirrorCheck::Differs => {
                        self.metrics.mirror_check("differs");
                        self.metrics.resync("mirror_differs");
                        tracing::warn!(
                            mirror = self.mempool.len(),
                            node = raw.txids.len(),
                            mempool_sequence = raw.mempool_sequence,
                            "mempool mirror differs from getrawmempool at the same sequence; \
                             resyncing it"
                        );
                        self.reset_mempool(&raw).await?;
                    }
                }
                Ok(())
            }
            (i, r) => {
                let err = [
                    i.err().map(|e| e.to_string()),
                    r.err().map(|e| e.to_string()),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
                tracing::warn!(error = %err, "mempool_snapshot poll failed");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::answers::{IndexInfo, IndexInfos};

    #[test]
    fn utxo_stats_need_a_synced_coinstatsindex() {
        let text = crate::fixtures::read("bitcoin-core-v30/rpc/getindexinfo.json");
        let mut indexes: IndexInfos = serde_json::from_str(&text).unwrap();
        assert_eq!(CoinStats::from_indexes(&indexes), CoinStats::Ready);
        indexes.insert(
            "coinstatsindex".into(),
            IndexInfo {
                synced: false,
                best_block_height: 40,
            },
        );
        assert_eq!(CoinStats::from_indexes(&indexes), CoinStats::Syncing);
        indexes.remove("coinstatsindex");
        assert_eq!(CoinStats::from_indexes(&indexes), CoinStats::Absent);
    }

    #[tokio::test]
    async fn notifications_queued_at_shutdown_still_become_events() {
        use crate::config::Secret;
        use crate::sources::rpc::RpcAuth;
        use crate::sources::zmq::{SequenceEvent, ZmqMessage};
        use bitcoin::hashes::Hash;

        let node = NodeId::new("node0").unwrap();
        let metrics = Metrics::new(&node);
        // No node behind the RPC URL: every call fails at once, nothing is needed from it.
        let rpc = Arc::new(
            RpcClient::new(
                &format!("http://127.0.0.1:{}/", test_support::free_port()),
                RpcAuth::UserPass {
                    user: "u".into(),
                    password: Secret::new("p"),
                },
                Duration::from_secs(1),
                metrics.clone(),
            )
            .unwrap(),
        );
        let (out_tx, mut out_rx) = mpsc::channel(1_000);
        let driver = NodeDriver::new(node, Network::Regtest, rpc, metrics, Clock::wall(), out_tx);
        let (zmq_tx, zmq_rx) = mpsc::channel(1_000);
        const QUEUED: u32 = 200;
        for i in 0..QUEUED {
            zmq_tx
                .send(Received {
                    observed_at: UnixMicros(1_000 + i64::from(i)),
                    endpoint: "tcp://127.0.0.1:1".into(),
                    message: Ok(ZmqMessage::Sequence {
                        seq: i,
                        event: SequenceEvent::TxAdded {
                            txid: bitcoin::Txid::from_byte_array([i as u8; 32]),
                            mempool_sequence: u64::from(i),
                        },
                    }),
                })
                .await
                .unwrap();
        }
        // Shutdown has already started when the driver looks at its channel.
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let intervals = Intervals {
            status: Duration::from_secs(3_600),
            mempool: Duration::from_secs(3_600),
            tx_fees: false,
            template: None,
            peers: None,
        };
        tokio::time::timeout(
            Duration::from_secs(10),
            driver.run(zmq_rx, intervals, shutdown),
        )
        .await
        .expect("the driver stops")
        .unwrap();
        let mut seen = Vec::new();
        while let Ok(item) = out_rx.try_recv() {
            let Item::Event(env) = item else { continue };
            if let Event::TxSeen(t) = &env.event {
                seen.push(t.mempool_sequence);
            }
        }
        let want: Vec<Option<u64>> = (0..u64::from(QUEUED)).map(Some).collect();
        assert_eq!(seen, want);
    }
}
