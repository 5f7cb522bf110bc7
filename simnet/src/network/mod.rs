//! The simulated network: one task plays the scenario on a virtual timeline (ms since start,
//! slept in real time), finds blocks, makes transactions and relays both along the links with
//! their delays (this module, the relay engine), and injects the scenario's events
//! ([`incidents`]: reorgs, selfish mining, rejection bursts, invalid blocks, mempool wipes). Every random choice comes from one seeded
//! RNG, so a seed gives the same sequence of decisions.
//!
//! Transaction relay follows each node's policy the way Core peers do: a node relays only what
//! its mempool holds, a peer is offered a transaction only if it pays the peer's announced
//! minimum fee (`feefilter`, here the peer's current `mempoolminfee`) and the peer does not run
//! `-blocksonly`, and the wallet submits new transactions only through nodes that take
//! transactions. When the scenario has played out, every node's `mempool_at_end` is recorded.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{Amount, OutPoint, Transaction, Txid};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::chain::BlockRef;
use crate::clock::{wall_us, SimClock};
use crate::debug_log::{Banner, NodeLog};
use crate::holdings;
use crate::miner::{build_block, build_block_overpaying, select_txs, spend};
use crate::node::{Announcement, NodeState, Notice, Outbox};
use crate::policy::SatPerKvb;
use crate::scenario::{Distribution, Scenario, ScenarioEvent};
use crate::truth::{Incident, TruthEvent, TruthRecord, TruthSink};
use crate::zmq::ZmqPublisher;

mod incidents;

/// A node as the simulation drives it.
pub(crate) struct SimNode {
    pub name: String,
    pub state: Arc<Mutex<NodeState>>,
    pub zmq: Arc<ZmqPublisher>,
    pub extra_delay_ms: u64,
    pub mines: bool,
    pub hashrate: f64,
    /// (peer index, one-way delay ms)
    pub links: Vec<(usize, u64)>,
    /// The node's debug.log, when the fleet writes one.
    pub log: Option<Arc<Mutex<NodeLog>>>,
    /// Its startup lines (written again on a restart).
    pub banner: Option<Banner>,
    /// Whether it takes transactions from peers (not `-blocksonly`).
    pub relays_txs: bool,
    /// The minimum fee its peers last heard from it (Core's `feefilter`).
    pub fee_filter: SatPerKvb,
}

/// A selfish miner's withheld blocks waiting for their release.
#[derive(Debug)]
pub(crate) struct Withheld {
    miner: usize,
    blocks: Vec<BlockRef>,
    fork_point: bitcoin::BlockHash,
    fork_height: u32,
    mined_at_us: u64,
    losing: Option<(BlockRef, String, u64)>,
}

#[derive(Debug)]
enum SimEvent {
    FindBlock,
    NewTx,
    DeliverBlock {
        to: usize,
        from: usize,
        block: BlockRef,
        how: Announcement,
    },
    DeliverTx {
        to: usize,
        from: usize,
        tx: Arc<Transaction>,
        /// Its fee as the sender knows it.
        fee: Option<Amount>,
    },
    Scripted(ScenarioEvent),
    Release(Box<Withheld>),
    RejectTx {
        node: usize,
        from: usize,
        reason: String,
        index: u32,
    },
    End,
}

struct Scheduled {
    at: u64,
    seq: u64,
    ev: SimEvent,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// The simulation of one scenario.
pub(crate) struct Sim {
    nodes: Vec<SimNode>,
    scenario: Scenario,
    rng: ChaCha8Rng,
    queue: BinaryHeap<Scheduled>,
    next_seq: u64,
    now_ms: u64,
    wallet: Vec<(OutPoint, Amount)>,
    truth: TruthSink,
    ended: bool,
    clock: SimClock,
    /// Regular block finding is paused until this time (a selfish miner's window).
    hold_blocks_until: Option<u64>,
}

impl Sim {
    pub(crate) fn new(
        scenario: Scenario,
        nodes: Vec<SimNode>,
        wallet: Vec<(OutPoint, Amount)>,
        truth: TruthSink,
        clock: SimClock,
    ) -> Sim {
        let rng = ChaCha8Rng::seed_from_u64(scenario.seed);
        Sim {
            nodes,
            scenario,
            rng,
            queue: BinaryHeap::new(),
            next_seq: 0,
            now_ms: 0,
            wallet,
            truth,
            ended: false,
            clock,
            hold_blocks_until: None,
        }
    }

    fn schedule(&mut self, at: u64, ev: SimEvent) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Scheduled { at, seq, ev });
    }

    fn draw_interval(&mut self, mean_ms: f64, dist: Distribution) -> u64 {
        match dist {
            Distribution::Fixed => mean_ms.round().max(1.0) as u64,
            Distribution::Exponential => {
                let u: f64 = self.rng.gen_range(f64::EPSILON..1.0);
                (-u.ln() * mean_ms).round().max(1.0) as u64
            }
        }
    }

    /// Plays the scenario until its end (and in-flight messages are delivered) or cancellation.
    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        let start = Instant::now();
        let first = self.draw_interval(
            self.scenario.blocks.interval_ms as f64,
            self.scenario.blocks.distribution,
        );
        self.schedule(first, SimEvent::FindBlock);
        if self.scenario.txs.rate_per_s > 0.0 {
            let t = self.draw_interval(
                1000.0 / self.scenario.txs.rate_per_s,
                Distribution::Exponential,
            );
            self.schedule(t, SimEvent::NewTx);
        }
        for ev in self.scenario.events.clone() {
            if let ScenarioEvent::RpcFault { .. } = ev {
                // Served by the RPC server from its own clock.
                continue;
            }
            self.schedule(ev.at_ms(), SimEvent::Scripted(ev));
        }
        self.schedule(self.scenario.duration_ms, SimEvent::End);
        for i in 0..self.nodes.len() {
            let extra_delay_ms = self.nodes[i].extra_delay_ms;
            if extra_delay_ms > 0 {
                self.record(i, Incident::SlowNode { extra_delay_ms });
            }
        }
        let mut played_out = true;
        while let Some(next) = self.queue.pop() {
            let due = start + self.clock.wall_duration(next.at);
            tokio::select! {
                _ = cancel.cancelled() => {
                    played_out = false;
                    break;
                }
                _ = tokio::time::sleep_until(due) => {}
            }
            self.now_ms = next.at;
            self.handle(next.ev);
        }
        if played_out {
            self.record_mempools();
        }
        self.truth.flush();
        tracing::info!(virtual_ms = self.now_ms, "scenario finished");
    }

    fn handle(&mut self, ev: SimEvent) {
        match ev {
            SimEvent::FindBlock => {
                if self.ended {
                    return;
                }
                let held = self.hold_blocks_until.is_some_and(|t| self.now_ms < t);
                if let (false, Some(miner)) = (held, self.pick_miner()) {
                    self.mine_on_tip(miner);
                }
                let dt = self.draw_interval(
                    self.scenario.blocks.interval_ms as f64,
                    self.scenario.blocks.distribution,
                );
                self.schedule(self.now_ms + dt, SimEvent::FindBlock);
            }
            SimEvent::NewTx => {
                if self.ended || self.scenario.txs.until_ms.is_some_and(|t| self.now_ms >= t) {
                    return;
                }
                self.new_tx();
                let dt = self.draw_interval(
                    1000.0 / self.scenario.txs.rate_per_s,
                    Distribution::Exponential,
                );
                self.schedule(self.now_ms + dt, SimEvent::NewTx);
            }
            SimEvent::DeliverBlock {
                to,
                from,
                block,
                how,
            } => {
                if self.cut(to, from) {
                    return;
                }
                let from_name = self.nodes[from].name.clone();
                let mut out = Outbox::default();
                self.with_node(to, |n| {
                    n.receive_block_via(block, Some(from_name), how, &mut out)
                });
                self.emit(to, out);
            }
            SimEvent::DeliverTx { to, from, tx, fee } => {
                if self.cut(to, from) {
                    return;
                }
                let from_name = self.nodes[from].name.clone();
                let mut out = Outbox::default();
                self.with_node(to, |n| {
                    let _ = n.offer_tx(tx, fee, from_name, &mut out);
                });
                self.emit(to, out);
            }
            SimEvent::Scripted(ev) => self.scripted(ev),
            SimEvent::Release(w) => self.release(*w),
            SimEvent::RejectTx {
                node,
                from,
                reason,
                index,
            } => self.reject_tx(node, from, &reason, index),
            SimEvent::End => self.ended = true,
        }
    }

    fn cut(&self, a: usize, b: usize) -> bool {
        self.partitioned(a) || self.partitioned(b)
    }

    fn partitioned(&self, i: usize) -> bool {
        self.nodes[i]
            .state
            .lock()
            .map(|s| s.partitioned)
            .unwrap_or(true)
    }

    fn with_node<R>(&self, i: usize, f: impl FnOnce(&mut NodeState) -> R) -> Option<R> {
        match self.nodes[i].state.lock() {
            Ok(mut s) => Some(f(&mut s)),
            Err(_) => None,
        }
    }

    /// A truth record for node `i`, stamped now on the simulated clock (and the wall clock in
    /// an accelerated run). Returns its `t_us`.
    fn stamp(&self, i: usize, event: TruthEvent) -> u64 {
        self.stamp_at(i, event, wall_us())
    }

    /// [`Sim::stamp`] at wall time `wall`.
    fn stamp_at(&self, i: usize, event: TruthEvent, wall: u64) -> u64 {
        let t_us = self.clock.sim_at(wall);
        self.truth.record(TruthRecord {
            t_us,
            wall_us: self.clock.accelerated().then_some(wall),
            node: self.nodes[i].name.clone(),
            event,
        });
        t_us
    }

    /// Records an incident on node `i`; returns its `t_us`.
    fn record(&self, i: usize, incident: Incident) -> u64 {
        self.stamp(i, TruthEvent::Incident(incident))
    }

    /// Publishes a node's notices (stamping truth records now, and debug.log lines with the
    /// time of the truth record before them) and relays what it announced. Returns each truth
    /// record's time with its event.
    fn emit(&mut self, i: usize, out: Outbox) -> Vec<(u64, TruthEvent)> {
        let mut stamped = Vec::new();
        let nodelog = self.nodes[i].log.clone();
        let mut log = nodelog.as_ref().and_then(|l| l.lock().ok());
        let mut last_t = None;
        for notice in out.notices {
            match notice {
                Notice::Zmq(m) => self.nodes[i].zmq.publish(m),
                Notice::Truth(event) => {
                    let t_us = self.stamp(i, event.clone());
                    last_t = Some(t_us);
                    stamped.push((t_us, event));
                }
                Notice::Log(note) => {
                    if let Some(log) = log.as_mut() {
                        log.note(last_t.unwrap_or_else(|| self.clock.now_us()), &note);
                    }
                }
            }
        }
        if let Some(log) = log.as_mut() {
            log.flush();
        }
        drop(log);
        self.announce_fee_filter(i);
        if self.partitioned(i) {
            return stamped;
        }
        // Core announces only what its mempool holds: a transaction evicted in the same step
        // is not relayed. The fee goes along for the receivers' fee filters.
        let relay_txs: Vec<(Arc<Transaction>, Option<Amount>)> = self
            .with_node(i, |n| {
                out.relay_txs
                    .iter()
                    .filter_map(|t| {
                        let e = n.mempool.get(&t.compute_txid())?;
                        Some((t.clone(), Some(e.fee)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Core relays a single new tip as a high-bandwidth compact block and announces several
        // blocks at once (a reorg) with `headers`.
        let how = if out.relay_blocks.len() == 1 {
            Announcement::Compact
        } else {
            Announcement::Headers
        };
        let links = self.nodes[i].links.clone();
        for (peer, delay) in links {
            let at = self.now_ms + delay + self.nodes[peer].extra_delay_ms;
            for b in &out.relay_blocks {
                self.schedule(
                    at,
                    SimEvent::DeliverBlock {
                        to: peer,
                        from: i,
                        block: b.clone(),
                        how,
                    },
                );
            }
            for (t, fee) in &relay_txs {
                self.schedule(
                    at,
                    SimEvent::DeliverTx {
                        to: peer,
                        from: i,
                        tx: t.clone(),
                        fee: *fee,
                    },
                );
            }
        }
        stamped
    }

    /// Tells node `i`'s peers its current minimum fee when it changed (what `getpeerinfo`
    /// shows as their `minfeefilter`; Core sends `feefilter` every few minutes).
    fn announce_fee_filter(&mut self, i: usize) {
        if !self.nodes[i].relays_txs {
            return;
        }
        let Some(filter) = self.with_node(i, |n| n.fee_filter()) else {
            return;
        };
        if filter == self.nodes[i].fee_filter {
            return;
        }
        self.nodes[i].fee_filter = filter;
        let name = self.nodes[i].name.clone();
        for (peer, _) in self.nodes[i].links.clone() {
            self.with_node(peer, |n| {
                if let Some(p) = n.peers.iter_mut().find(|p| p.name == name) {
                    p.fee_filter = filter;
                }
            });
        }
    }

    /// Records every node's `mempool_at_end`: what it holds, and why it lacks what others hold.
    fn record_mempools(&self) {
        let nodes: Vec<(String, &Mutex<NodeState>)> = self
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.state.as_ref()))
            .collect();
        for (name, view) in holdings::mempools(&nodes) {
            if let Some(i) = self.scenario.node_index(&name) {
                self.stamp(i, TruthEvent::MempoolAtEnd(view));
            }
        }
    }

    fn pick_miner(&mut self) -> Option<usize> {
        let total: f64 = self
            .nodes
            .iter()
            .filter(|n| n.mines)
            .map(|n| n.hashrate)
            .sum();
        if total <= 0.0 {
            return None;
        }
        let mut x = self.rng.gen_range(0.0..total);
        let mut last = None;
        for (i, n) in self.nodes.iter().enumerate().filter(|(_, n)| n.mines) {
            last = Some(i);
            if x < n.hashrate {
                return Some(i);
            }
            x -= n.hashrate;
        }
        last
    }

    /// Header time of a block on `prev`: the simulated clock, above the median time past.
    fn block_time(state: &NodeState, prev: &bitcoin::BlockHash) -> u32 {
        let mtp = state.chain.median_time_after(prev);
        (state.clock.now_secs() as u32).max(mtp + 1)
    }

    /// Mines a block on the miner's tip; returns it with the time its miner received it.
    fn mine_on_tip(&mut self, miner: usize) -> Option<(BlockRef, u64)> {
        let name = self.nodes[miner].name.clone();
        let max_txs = self.scenario.blocks.max_txs;
        let mut out = Outbox::default();
        let block = self.with_node(miner, |n| {
            let tip = n.chain.tip_entry().block.clone();
            let txs = select_txs(&n.chain, &n.mempool, max_txs);
            let time = Self::block_time(n, &tip.hash);
            let block = Arc::new(build_block(&name, tip.hash, tip.height, time, txs));
            record_mined(&mut out, &block, false);
            n.receive_block(block.clone(), None, &mut out);
            block
        })?;
        let stamped = self.emit(miner, out);
        let seen = stamped.iter().find_map(|(t, e)| match e {
            TruthEvent::BlockReceived { hash, .. } if *hash == block.hash => Some(*t),
            _ => None,
        })?;
        Some((block, seen))
    }

    fn new_tx(&mut self) {
        if self.wallet.is_empty() {
            return;
        }
        // The wallet submits through nodes that take transactions (with none under
        // `-blocksonly`, the same draw as over every node).
        let takers: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].relays_txs)
            .collect();
        if takers.is_empty() {
            return;
        }
        let origin = takers[self.rng.gen_range(0..takers.len())];
        let feerate = self
            .rng
            .gen_range(self.scenario.txs.min_feerate..=self.scenario.txs.max_feerate);
        for _ in 0..8 {
            let k = self.rng.gen_range(0..self.wallet.len());
            let (op, value) = self.wallet[k];
            let spendable = self
                .with_node(origin, |n| n.can_spend(&op))
                .unwrap_or(false);
            if !spendable {
                continue;
            }
            let split = value.to_sat() > 2_000_000 && self.wallet.len() < 5000;
            let Some((tx, _fee)) = spend(op, value, feerate, split) else {
                self.wallet.swap_remove(k);
                continue;
            };
            let tx = Arc::new(tx);
            let mut out = Outbox::default();
            let accepted = self
                .with_node(origin, |n| n.receive_tx(tx.clone(), None, &mut out).is_ok())
                .unwrap_or(false);
            if accepted {
                self.wallet.swap_remove(k);
                let txid = tx.compute_txid();
                for (vout, o) in tx.output.iter().enumerate() {
                    self.wallet.push((
                        OutPoint {
                            txid,
                            vout: vout as u32,
                        },
                        o.value,
                    ));
                }
            }
            self.emit(origin, out);
            return;
        }
    }

    /// After a heal: the node and each of its peers send each other the blocks and mempool
    /// transactions the other lacks.
    fn resync(&mut self, i: usize) {
        let links = self.nodes[i].links.clone();
        for (peer, delay) in links {
            if self.partitioned(peer) {
                continue;
            }
            for (from, to) in [(i, peer), (peer, i)] {
                let (blocks, txs) = {
                    let (Ok(src), Ok(dst)) =
                        (self.nodes[from].state.lock(), self.nodes[to].state.lock())
                    else {
                        continue;
                    };
                    let mut h = src.chain.height();
                    while h > 0 {
                        match src.chain.at_height(h) {
                            Some(hash) if dst.chain.contains(&hash) => break,
                            _ => h -= 1,
                        }
                    }
                    let blocks: Vec<BlockRef> = ((h + 1)..=src.chain.height())
                        .filter_map(|k| src.chain.at_height(k))
                        .filter_map(|hash| src.chain.get(&hash).map(|e| e.block.clone()))
                        .collect();
                    let txs: Vec<(Arc<Transaction>, Amount)> = src
                        .mempool
                        .entries()
                        .filter(|e| !dst.mempool.contains(&e.txid))
                        .map(|e| (e.tx.clone(), e.fee))
                        .collect();
                    (blocks, txs)
                };
                let at = self.now_ms + delay + self.nodes[to].extra_delay_ms;
                for block in blocks {
                    self.schedule(
                        at,
                        SimEvent::DeliverBlock {
                            to,
                            from,
                            block,
                            how: Announcement::Headers,
                        },
                    );
                }
                for (tx, fee) in txs {
                    self.schedule(
                        at,
                        SimEvent::DeliverTx {
                            to,
                            from,
                            tx,
                            fee: Some(fee),
                        },
                    );
                }
            }
        }
    }
}

fn record_mined(out: &mut Outbox, block: &BlockRef, private: bool) {
    out.notices.push(Notice::Truth(TruthEvent::BlockMined {
        hash: block.hash,
        height: block.height,
        tx_count: block.block.txdata.len(),
        fees_sat: block.total_fees().to_sat(),
        coinbase_sat: block.block.txdata[0]
            .output
            .iter()
            .map(|o| o.value.to_sat())
            .sum(),
        private,
    }));
}
