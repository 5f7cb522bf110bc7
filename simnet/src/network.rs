//! The simulated network: one task plays the scenario on a virtual timeline (ms since start,
//! slept in real time), finds blocks, makes transactions, relays both along the links with
//! their delays, and injects the scenario's events. Every random choice comes from one seeded
//! RNG, so a seed gives the same sequence of decisions.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::{Amount, OutPoint, Transaction};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::chain::BlockRef;
use crate::debug_log::NodeLog;
use crate::miner::{build_block, select_txs, spend};
use crate::node::{Announcement, NodeState, Notice, Outbox};
use crate::scenario::{Distribution, Scenario, ScenarioEvent};
use crate::truth::{now_us, TruthEvent, TruthRecord, TruthSink};
use crate::zmq::ZmqPublisher;

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
    },
    Scripted(ScenarioEvent),
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
}

impl Sim {
    pub(crate) fn new(
        scenario: Scenario,
        nodes: Vec<SimNode>,
        wallet: Vec<(OutPoint, Amount)>,
        truth: TruthSink,
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
            let at = match &ev {
                ScenarioEvent::Reorg { at_ms, .. }
                | ScenarioEvent::Partition { at_ms, .. }
                | ScenarioEvent::Heal { at_ms, .. }
                | ScenarioEvent::MalformedZmq { at_ms, .. } => *at_ms,
                // Served by the RPC server from its own clock.
                ScenarioEvent::RpcFault { .. } => continue,
            };
            self.schedule(at, SimEvent::Scripted(ev));
        }
        self.schedule(self.scenario.duration_ms, SimEvent::End);
        while let Some(next) = self.queue.pop() {
            let due = start + Duration::from_millis(next.at);
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep_until(due) => {}
            }
            self.now_ms = next.at;
            self.handle(next.ev);
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
                if let Some(miner) = self.pick_miner() {
                    self.mine_on_tip(miner);
                }
                let dt = self.draw_interval(
                    self.scenario.blocks.interval_ms as f64,
                    self.scenario.blocks.distribution,
                );
                self.schedule(self.now_ms + dt, SimEvent::FindBlock);
            }
            SimEvent::NewTx => {
                if self.ended {
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
            SimEvent::DeliverTx { to, from, tx } => {
                if self.cut(to, from) {
                    return;
                }
                let from_name = self.nodes[from].name.clone();
                let mut out = Outbox::default();
                self.with_node(to, |n| {
                    let _ = n.receive_tx(tx, Some(from_name), &mut out);
                });
                self.emit(to, out);
            }
            SimEvent::Scripted(ev) => self.scripted(ev),
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

    /// Publishes a node's notices (stamping truth records now, and debug.log lines with the
    /// time of the truth record before them) and relays what it announced.
    fn emit(&mut self, i: usize, out: Outbox) {
        let name = self.nodes[i].name.clone();
        let mut log = self.nodes[i].log.as_ref().and_then(|l| l.lock().ok());
        let mut last_t = None;
        for notice in out.notices {
            match notice {
                Notice::Zmq(m) => self.nodes[i].zmq.publish(m),
                Notice::Truth(event) => {
                    let t_us = now_us();
                    last_t = Some(t_us);
                    self.truth.record(TruthRecord {
                        t_us,
                        node: name.clone(),
                        event,
                    });
                }
                Notice::Log(note) => {
                    if let Some(log) = log.as_mut() {
                        log.note(last_t.unwrap_or_else(now_us), &note);
                    }
                }
            }
        }
        if let Some(log) = log.as_mut() {
            log.flush();
        }
        drop(log);
        if self.partitioned(i) {
            return;
        }
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
            for t in &out.relay_txs {
                self.schedule(
                    at,
                    SimEvent::DeliverTx {
                        to: peer,
                        from: i,
                        tx: t.clone(),
                    },
                );
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

    fn block_time(state: &NodeState, prev: &bitcoin::BlockHash) -> u32 {
        let mtp = state.chain.median_time_after(prev);
        ((now_us() / 1_000_000) as u32).max(mtp + 1)
    }

    fn mine_on_tip(&mut self, miner: usize) {
        let name = self.nodes[miner].name.clone();
        let max_txs = self.scenario.blocks.max_txs;
        let mut out = Outbox::default();
        self.with_node(miner, |n| {
            let tip = n.chain.tip_entry().block.clone();
            let txs = select_txs(&n.chain, &n.mempool, max_txs);
            let time = Self::block_time(n, &tip.hash);
            let block = Arc::new(build_block(&name, tip.hash, tip.height, time, txs));
            record_mined(&mut out, &block, false);
            n.receive_block(block, None, &mut out);
        });
        self.emit(miner, out);
    }

    fn new_tx(&mut self) {
        if self.wallet.is_empty() {
            return;
        }
        let origin = self.rng.gen_range(0..self.nodes.len());
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

    fn scripted(&mut self, ev: ScenarioEvent) {
        match ev {
            ScenarioEvent::Reorg { depth, miner, .. } => {
                let idx = miner
                    .and_then(|m| self.scenario.node_index(&m))
                    .or_else(|| self.nodes.iter().position(|n| n.mines));
                if let Some(i) = idx {
                    self.private_branch(i, depth);
                }
            }
            ScenarioEvent::Partition { node, .. } => {
                if let Some(i) = self.scenario.node_index(&node) {
                    self.with_node(i, |n| n.partitioned = true);
                    tracing::info!(node = %node, "partitioned");
                }
            }
            ScenarioEvent::Heal { node, .. } => {
                if let Some(i) = self.scenario.node_index(&node) {
                    self.with_node(i, |n| n.partitioned = false);
                    tracing::info!(node = %node, "healed");
                    self.resync(i);
                }
            }
            ScenarioEvent::MalformedZmq { node, .. } => {
                if let Some(i) = self.scenario.node_index(&node) {
                    self.nodes[i].zmq.publish_malformed();
                }
            }
            ScenarioEvent::RpcFault { .. } => {}
        }
    }

    /// Builds `depth + 1` empty blocks on the block `depth` below the miner's tip and releases
    /// them at once.
    fn private_branch(&mut self, miner: usize, depth: u32) {
        let name = self.nodes[miner].name.clone();
        let mut out = Outbox::default();
        self.with_node(miner, |n| {
            let tip_height = n.chain.height();
            let Some(fork) = n.chain.at_height(tip_height.saturating_sub(depth)) else {
                return;
            };
            let Some(mut prev) = n.chain.get(&fork).map(|e| e.block.clone()) else {
                return;
            };
            for _ in 0..=depth {
                let time = Self::block_time(n, &prev.hash);
                let block = Arc::new(build_block(&name, prev.hash, prev.height, time, Vec::new()));
                record_mined(&mut out, &block, true);
                n.receive_block(block.clone(), None, &mut out);
                prev = block;
            }
        });
        tracing::info!(miner = %name, depth, "released private branch");
        self.emit(miner, out);
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
                    let txs: Vec<Arc<Transaction>> = src
                        .mempool
                        .entries()
                        .filter(|e| !dst.mempool.contains(&e.txid))
                        .map(|e| e.tx.clone())
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
                for tx in txs {
                    self.schedule(at, SimEvent::DeliverTx { to, from, tx });
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
