//! One emulated node's state and how it reacts to a block or a transaction: block index and
//! active chain (reorgs included), mempool under the node's relay policy ([`MempoolPolicy`]),
//! orphans, and the notifications Core would publish, in Core's order. Blocks are handled
//! here, transactions in `admission`.

use std::collections::HashMap;
use std::sync::Arc;

use bitcoin::{BlockHash, Transaction, Txid};

use crate::chain::{BlockRef, Chain};
use crate::clock::SimClock;
use crate::debug_log::{Arrival, ArrivalKind, Connected, LogNote, Rejection, TipInfo};
use crate::mempool::Mempool;
use crate::policy::{MempoolPolicy, SatPerKvb};
use crate::truth::{NotHeldReason, RemovalReason, TruthEvent};
use crate::zmq::ZmqMessage;

mod admission;

use admission::Admit;

/// Blocks a coinbase output must wait before it can be spent.
pub const COINBASE_MATURITY: u32 = 100;
const MAX_ORPHANS: usize = 1000;

/// Something the node did that the outside sees: a ZMQ message, a truth record or debug.log
/// lines, in order.
#[derive(Debug, Clone)]
pub enum Notice {
    /// Publish on ZMQ.
    Zmq(ZmqMessage),
    /// Record in the truth file.
    Truth(TruthEvent),
    /// Write to debug.log, stamped with the time of the truth record just before it.
    Log(LogNote),
}

/// How a peer announced a block to this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// A high-bandwidth compact block (one new block at the tip).
    Compact,
    /// `headers` followed by `getdata`/`block` (several blocks at once, or a resync).
    Headers,
}

/// What one step of a node produced.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Notifications in publish order.
    pub notices: Vec<Notice>,
    /// Blocks to announce to peers (newly connected ones, lowest first).
    pub relay_blocks: Vec<BlockRef>,
    /// Transactions to announce to peers.
    pub relay_txs: Vec<Arc<Transaction>>,
}

impl Outbox {
    fn zmq(&mut self, m: ZmqMessage) {
        self.notices.push(Notice::Zmq(m));
    }
    fn truth(&mut self, t: TruthEvent) {
        self.notices.push(Notice::Truth(t));
    }
    fn log(&mut self, n: LogNote) {
        self.notices.push(Notice::Log(n));
    }
}

/// Why a transaction was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxReject {
    /// Already in the mempool or the chain.
    Known,
    /// An input is unknown (kept as an orphan).
    MissingInputs,
    /// An input is already spent by a mempool transaction.
    Conflict,
    /// A coinbase input is not mature yet.
    Immature,
    /// Outputs exceed inputs.
    NegativeFee,
    /// It pays less than the node's minimum relay fee or mempool minimum fee.
    BelowMinFee,
    /// The node runs `-blocksonly` and takes no transactions from peers.
    BlocksOnly,
    /// The mempool is full and it pays the lowest fee rate (`mempool full`).
    MempoolFull,
}

/// A peer as `getpeerinfo` shows it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Peer id (per node, in connection order).
    pub id: u64,
    /// Peer node name.
    pub name: String,
    /// Whether we opened the connection.
    pub outbound: bool,
    /// One-way delay, ms.
    pub delay_ms: u64,
    /// Its subversion.
    pub subver: String,
    /// Its version number.
    pub version: u32,
    /// Whether it asked for transactions (`relaytxes`; false when it runs `-blocksonly`).
    pub relays_txs: bool,
    /// The minimum fee it last announced (`minfeefilter`; zero when it takes no transactions).
    pub fee_filter: SatPerKvb,
}

/// The full state of one emulated node.
#[derive(Debug)]
pub struct NodeState {
    /// Node name.
    pub name: String,
    /// Core version number.
    pub version: u32,
    /// Core user agent.
    pub subversion: String,
    /// Block tree, active chain, UTXO set.
    pub chain: Chain,
    /// Mempool.
    pub mempool: Mempool,
    /// Peers (from the scenario's links).
    pub peers: Vec<Peer>,
    /// Whether the node is cut off from its peers.
    pub partitioned: bool,
    /// Unix time (s, simulated clock) the node (re)started.
    pub started_at: u64,
    /// The fleet's clock (header times, mempool entry times, uptime).
    pub clock: SimClock,
    /// Whether the node has stopped connecting blocks (`stuck` event): it still stores what
    /// arrives, so `headers` keeps rising while `blocks` stays.
    pub stuck: bool,
    /// What it lets into its mempool (`-minrelaytxfee`, `-maxmempool`, `-blocksonly`).
    pub policy: MempoolPolicy,
    /// Why it let go of, or never took, each transaction its policy kept out (filtered,
    /// refused, evicted, wiped); forgotten once it holds the transaction.
    not_held: HashMap<Txid, NotHeldReason>,
    /// The peer the block being received came from.
    arriving_from: Option<String>,
    orphan_txs: Vec<(Arc<Transaction>, Option<String>)>,
    orphan_blocks: HashMap<BlockHash, Vec<(BlockRef, Option<String>)>>,
    /// Transactions in the chain up to each block (Core's `nChainTx`), filled on demand.
    chain_tx: HashMap<BlockHash, u64>,
    /// The block being received, for Core's `Using cached block`.
    arriving: Option<BlockHash>,
}

impl NodeState {
    /// A node with the given chain (already holding its initial blocks), on the wall clock.
    pub fn new(name: &str, version: u32, subversion: &str, chain: Chain) -> NodeState {
        let clock = SimClock::wall();
        NodeState {
            name: name.to_owned(),
            version,
            subversion: subversion.to_owned(),
            chain,
            mempool: Mempool::new(),
            peers: Vec::new(),
            partitioned: false,
            started_at: clock.now_secs(),
            clock,
            stuck: false,
            policy: MempoolPolicy::defaults_for(version),
            not_held: HashMap::new(),
            arriving_from: None,
            orphan_txs: Vec::new(),
            orphan_blocks: HashMap::new(),
            chain_tx: HashMap::new(),
            arriving: None,
        }
    }

    /// The node on the fleet's clock (started now on that clock).
    pub fn with_clock(mut self, clock: SimClock) -> NodeState {
        self.clock = clock;
        self.started_at = clock.now_secs();
        self
    }

    /// The node under `policy` instead of Core's defaults for its version.
    pub fn with_policy(mut self, policy: MempoolPolicy) -> NodeState {
        self.policy = policy;
        self
    }

    /// The peer id this node gave the node called `name`.
    pub fn peer_id(&self, name: &str) -> Option<u64> {
        self.peers.iter().find(|p| p.name == name).map(|p| p.id)
    }

    /// Transactions in the chain from genesis up to and including `hash` (Core's `nChainTx`).
    pub fn chain_tx(&mut self, hash: &BlockHash) -> u64 {
        let mut walk = Vec::new();
        let mut cur = *hash;
        let mut base = 0;
        loop {
            if let Some(n) = self.chain_tx.get(&cur) {
                base = *n;
                break;
            }
            let Some(e) = self.chain.get(&cur) else {
                break;
            };
            walk.push((cur, e.block.block.txdata.len() as u64));
            if e.block.height == 0 {
                break;
            }
            cur = e.block.prev();
        }
        for (h, n) in walk.into_iter().rev() {
            base += n;
            self.chain_tx.insert(h, base);
        }
        base
    }

    /// What `UpdateTip` reports for `hash` as the tip; `target` is the chain the node is
    /// heading for (progress is measured against it).
    pub fn tip_info(&mut self, hash: &BlockHash, target: &BlockHash) -> Option<TipInfo> {
        let chain_tx = self.chain_tx(hash);
        let target_tx = self.chain_tx(target).max(chain_tx).max(1);
        let e = self.chain.get(hash)?;
        Some(TipInfo {
            hash: *hash,
            height: e.block.height,
            version: e.block.block.header.version.to_consensus(),
            chain_tx,
            time: e.block.block.header.time,
            progress: chain_tx as f64 / target_tx as f64,
            txo: e.stats.as_ref().map(|s| s.txouts).unwrap_or(0),
        })
    }

    /// How a block arrived, as Core's log tells it; for a compact block, what the mempool
    /// could fill in (before the block is connected).
    fn arrival(&self, block: &BlockRef, from: Option<&str>, how: Announcement) -> Arrival {
        let b = &block.block;
        let peer = from.and_then(|f| self.peer_id(f));
        let coinbase_size = b.txdata.first().map(|t| t.total_size()).unwrap_or(0);
        // Header, nonce, short-id count, 6-byte short ids, prefilled count, index, coinbase.
        let cmpct_size = 80 + 8 + 1 + 6 * b.txdata.len().saturating_sub(1) + 1 + 1 + coinbase_size;
        let kind = match (from, how) {
            (None, _) => ArrivalKind::Mined {
                weight: b.weight().to_wu(),
                fees_sat: block.total_fees().to_sat(),
                // Core announces a block as a compact block (BIP152 high-bandwidth) only when it
                // becomes the tip; a withheld branch is announced once it overtakes.
                announce_to: if self.partitioned || block.height <= self.chain.height() {
                    Vec::new()
                } else {
                    self.peers.iter().map(|p| p.id).collect()
                },
                cmpct_size,
            },
            (Some(_), Announcement::Compact) => {
                let mut from_mempool = 0;
                let mut from_extra_pool = 0;
                let mut requested = Vec::new();
                for tx in b.txdata.iter().skip(1) {
                    let txid = tx.compute_txid();
                    if self.mempool.contains(&txid) {
                        from_mempool += 1;
                    } else if self
                        .orphan_txs
                        .iter()
                        .any(|(t, _)| t.compute_txid() == txid)
                    {
                        from_mempool += 1;
                        from_extra_pool += 1;
                    } else {
                        requested.push((txid, tx.total_size()));
                    }
                }
                ArrivalKind::Compact {
                    cmpct_size,
                    prefilled: 1,
                    from_mempool,
                    from_extra_pool,
                    requested,
                }
            }
            (Some(_), Announcement::Headers) => ArrivalKind::Full {
                size: b.total_size(),
            },
        };
        Arrival {
            hash: block.hash,
            height: block.height,
            peer,
            tx_count: b.txdata.len(),
            kind,
        }
    }

    /// Handles a block from a peer (`from`, as a compact block) or its own miner (`None`).
    pub fn receive_block(&mut self, block: BlockRef, from: Option<String>, out: &mut Outbox) {
        self.receive_block_via(block, from, Announcement::Compact, out);
    }

    /// Handles a block from a peer (`from`) announced as `how`, or from its own miner (`None`).
    pub fn receive_block_via(
        &mut self,
        block: BlockRef,
        from: Option<String>,
        how: Announcement,
        out: &mut Outbox,
    ) {
        let mut queue = vec![(block, from, how)];
        while let Some((block, from, how)) = queue.pop() {
            if self.chain.contains(&block.hash) {
                continue;
            }
            if !self.chain.contains(&block.prev()) {
                self.orphan_blocks
                    .entry(block.prev())
                    .or_default()
                    .push((block, from));
                continue;
            }
            if self.chain.is_invalid(&block.prev()) {
                // Core refuses the header of a block whose parent it found invalid.
                self.chain.insert(block.clone());
                out.truth(TruthEvent::BlockRejected {
                    hash: block.hash,
                    height: block.height,
                    reason: "bad-prevblk".to_owned(),
                    detail: None,
                    from,
                });
                continue;
            }
            let arrival = self.arrival(&block, from.as_deref(), how);
            out.truth(TruthEvent::BlockReceived {
                hash: block.hash,
                height: block.height,
                from: from.clone(),
            });
            out.log(LogNote::BlockArrived(arrival));
            self.chain.insert(block.clone());
            if !self.stuck {
                self.arriving = Some(block.hash);
                self.arriving_from = from;
                self.activate_best_chain(out);
                self.arriving = None;
                self.arriving_from = None;
            }
            if let Some(children) = self.orphan_blocks.remove(&block.hash) {
                // Parents that arrive late are fetched whole, as Core does for unconnecting
                // headers.
                queue.extend(
                    children
                        .into_iter()
                        .map(|(b, f)| (b, f, Announcement::Headers)),
                );
            }
        }
    }

    /// Why `block` breaks consensus on this node: (reason, debug message).
    fn check_block(&self, block: &BlockRef) -> Option<(String, String)> {
        let actual = block.coinbase_sat();
        let limit = block.coinbase_limit_sat();
        if actual > limit && !block.overpay_accepted_by.contains(&self.name) {
            return Some((
                "bad-cb-amount".to_owned(),
                format!("coinbase pays too much (actual={actual} vs limit={limit})"),
            ));
        }
        None
    }

    /// Validates the not yet validated blocks of the best branch; marks the first bad one (and
    /// its descendants) invalid, with Core's notices, and repeats until the best branch is
    /// clean.
    fn reject_invalid_branches(&mut self, out: &mut Outbox) {
        loop {
            let best = self.chain.best_header();
            let fork = self.chain.fork_point(&best);
            let bad = self
                .chain
                .branch(&fork, &best)
                .into_iter()
                .filter(|b| !self.chain.get(&b.hash).map(|e| e.validated).unwrap_or(true))
                .find_map(|b| self.check_block(&b).map(|r| (b, r)));
            let Some((block, (reason, detail))) = bad else {
                return;
            };
            self.chain.mark_invalid(&block.hash);
            let just_arrived = self.arriving == Some(block.hash);
            let from = if just_arrived {
                self.arriving_from.clone()
            } else {
                None
            };
            // Core relays a new tip candidate to its high-bandwidth peers as a compact block
            // once its proof of work checks out, before validating it: so an invalid block still
            // travels, and every node rejects it on its own.
            let relay_to: Vec<u64> = if just_arrived && !self.partitioned {
                self.peers
                    .iter()
                    .filter(|p| Some(&p.name) != from.as_ref())
                    .map(|p| p.id)
                    .collect()
            } else {
                Vec::new()
            };
            let tip = self.chain.tip();
            let coinbase_size = block
                .block
                .txdata
                .first()
                .map(|t| t.total_size())
                .unwrap_or(0);
            let cmpct_size =
                80 + 8 + 1 + 6 * block.block.txdata.len().saturating_sub(1) + 1 + 1 + coinbase_size;
            out.truth(TruthEvent::BlockRejected {
                hash: block.hash,
                height: block.height,
                reason: reason.clone(),
                detail: Some(detail.clone()),
                from: from.clone(),
            });
            if let Some(best) = self.tip_info(&tip, &tip) {
                out.log(LogNote::BlockRejected(Rejection {
                    hash: block.hash,
                    height: block.height,
                    time: block.block.header.time,
                    txs: block.block.txdata.len(),
                    reason,
                    detail,
                    best,
                    relay_to: if from.is_some() {
                        relay_to.clone()
                    } else {
                        Vec::new()
                    },
                    cmpct_size,
                    mempool_txs: self.mempool.len(),
                    mempool_inputs: self.mempool.entries().map(|e| e.tx.input.len()).sum(),
                }));
            }
            if !relay_to.is_empty() {
                out.relay_blocks.push(block);
            }
        }
    }

    /// Connects blocks again after [`NodeState::stuck`] and catches up with the best branch.
    pub fn unstick(&mut self, out: &mut Outbox) {
        self.stuck = false;
        self.activate_best_chain(out);
    }

    /// Switches to the best known branch if it has more work than the tip.
    fn activate_best_chain(&mut self, out: &mut Outbox) {
        self.reject_invalid_branches(out);
        let best = self.chain.best_header();
        let old_tip = self.chain.tip();
        if best == old_tip {
            return;
        }
        let Some(best_entry) = self.chain.get(&best) else {
            return;
        };
        if best_entry.block.height <= self.chain.height() {
            return;
        }
        let old_height = self.chain.height();
        let fork = self.chain.fork_point(&best);
        // 1. Disconnect down to the fork point: each block's txs on hashtx/rawtx, then `D`.
        let mut disconnected = Vec::new();
        while self.chain.tip() != fork {
            let Some(b) = self.chain.disconnect_tip() else {
                break;
            };
            for tx in &b.block.txdata {
                out.zmq(ZmqMessage::hashtx(tx.compute_txid()));
                out.zmq(ZmqMessage::rawtx(tx));
            }
            out.zmq(ZmqMessage::disconnected(b.hash));
            out.truth(TruthEvent::BlockDisconnected {
                hash: b.hash,
                height: b.height,
            });
            let now_tip = self.chain.tip();
            if let Some(tip) = self.tip_info(&now_tip, &old_tip) {
                out.log(LogNote::BlockDisconnected {
                    hash: b.hash,
                    height: b.height,
                    tip,
                });
            }
            disconnected.push(b);
        }
        // 2. Connect the new branch; confirmed txs leave the mempool without an `R`.
        let mut connected = Vec::new();
        let mut connected_notes = Vec::new();
        for b in self.chain.branch(&fork, &best) {
            if let Err(e) = self.chain.connect(&b.hash) {
                tracing::error!(node = %self.name, block = %b.hash, error = ?e, "cannot connect block");
                break;
            }
            self.mempool.block_connected(self.clock.now_secs());
            let mut removed = 0;
            for tx in b.block.txdata.iter().skip(1) {
                if let Some((_, seq)) = self.mempool.remove(&tx.compute_txid()) {
                    removed += 1;
                    out.truth(TruthEvent::TxRemoved {
                        txid: tx.compute_txid(),
                        reason: RemovalReason::Block,
                        mempool_sequence: seq,
                    });
                }
            }
            let note = self.tip_info(&b.hash, &best).map(|tip| Connected {
                tip,
                txs: b.block.txdata.len(),
                inputs: b.block.txdata.iter().skip(1).map(|t| t.input.len()).sum(),
                removed_from_mempool: removed,
                cached: self.arriving == Some(b.hash),
            });
            connected_notes.push(note);
            connected.push(b);
        }
        // 3. Transactions of disconnected blocks go back to the mempool (Core publishes these
        //    `A`s before the `C`s of the new branch).
        for b in disconnected.iter().rev() {
            for tx in b.block.txdata.iter().skip(1) {
                let tx = Arc::new(tx.clone());
                let _ = self.accept_tx_inner(tx, None, out, Admit::Reorg);
            }
        }
        if !disconnected.is_empty() {
            // Core limits the mempool's size once the disconnected transactions are back.
            self.trim_mempool(out);
        }
        // 4. The new branch's connect notifications: each block's txs, then `C`.
        for (b, note) in connected.iter().zip(connected_notes) {
            for tx in &b.block.txdata {
                out.zmq(ZmqMessage::hashtx(tx.compute_txid()));
                out.zmq(ZmqMessage::rawtx(tx));
            }
            out.zmq(ZmqMessage::connected(b.hash));
            out.truth(TruthEvent::BlockConnected {
                hash: b.hash,
                height: b.height,
            });
            if let Some(note) = note {
                out.log(LogNote::BlockConnected(note));
            }
        }
        let new_tip = self.chain.tip();
        if !disconnected.is_empty() {
            let fork_height = self.chain.get(&fork).map(|e| e.block.height).unwrap_or(0);
            out.truth(TruthEvent::Reorg {
                old_tip,
                old_height,
                new_tip,
                new_height: self.chain.height(),
                fork_point: fork,
                fork_height,
                depth: disconnected.len() as u32,
                disconnected: disconnected.iter().map(|b| b.hash).collect(),
                connected: connected.iter().map(|b| b.hash).collect(),
            });
        }
        // 5. The new tip (Core's UpdatedBlockTip): hashblock and rawblock once per activation.
        if new_tip != old_tip {
            if let Some(e) = self.chain.get(&new_tip) {
                let tip = e.block.clone();
                out.zmq(ZmqMessage::hashblock(tip.hash));
                out.zmq(ZmqMessage::rawblock(&tip.block));
                out.truth(TruthEvent::TipUpdated {
                    hash: tip.hash,
                    height: tip.height,
                });
                out.log(LogNote::TipChanged {
                    hash: tip.hash,
                    height: tip.height,
                    fork,
                    mempool_txs: self.mempool.len(),
                    mempool_inputs: self.mempool.entries().map(|e| e.tx.input.len()).sum(),
                });
            }
        }
        out.relay_blocks.extend(connected);
        self.retry_orphans(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::miner::{build_block, genesis, select_txs, spend};
    use crate::truth::TruthEvent;
    use crate::zmq::Topic;
    use bitcoin::OutPoint;

    fn node_with_blocks(n: u32) -> (NodeState, Vec<BlockRef>) {
        let g = genesis();
        let mut chain = Chain::new(g.clone());
        let mut blocks = Vec::new();
        let mut prev = g.clone();
        for _ in 0..n {
            let b = Arc::new(build_block(
                "m",
                prev.hash,
                prev.height,
                prev.block.header.time + 1,
                Vec::new(),
            ));
            chain.insert(b.clone());
            chain.connect(&b.hash).unwrap();
            blocks.push(b.clone());
            prev = b;
        }
        (
            NodeState::new("n", 309900, "/Satoshi:30.99.0/", chain),
            blocks,
        )
    }

    fn mine(node: &NodeState, miner: &str) -> BlockRef {
        let tip = node.chain.tip_entry().block.clone();
        let txs = select_txs(&node.chain, &node.mempool, 100);
        Arc::new(build_block(
            miner,
            tip.hash,
            tip.height,
            tip.block.header.time + 1,
            txs,
        ))
    }

    #[test]
    fn accepted_tx_publishes_hashtx_rawtx_then_sequence_a_with_mempool_sequence() {
        let (mut node, blocks) = node_with_blocks(101);
        let op = OutPoint {
            txid: blocks[0].block.txdata[0].compute_txid(),
            vout: 0,
        };
        let (tx, _) = spend(op, blocks[0].block.txdata[0].output[0].value, 5, true).unwrap();
        let mut out = Outbox::default();
        node.receive_tx(Arc::new(tx), None, &mut out).unwrap();
        let topics: Vec<Topic> = out
            .notices
            .iter()
            .filter_map(|n| {
                if let Notice::Zmq(m) = n {
                    Some(m.topic)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(topics, vec![Topic::HashTx, Topic::RawTx, Topic::Sequence]);
        assert_eq!(node.mempool.sequence(), 2);
    }

    #[test]
    fn deeper_branch_reorgs_and_returns_txs_to_mempool() {
        let (mut node, blocks) = node_with_blocks(101);
        let fork_tip = node.chain.tip_entry().block.clone();
        let op = OutPoint {
            txid: blocks[0].block.txdata[0].compute_txid(),
            vout: 0,
        };
        let (tx, _) = spend(op, blocks[0].block.txdata[0].output[0].value, 5, false).unwrap();
        let txid = tx.compute_txid();
        let mut out = Outbox::default();
        node.receive_tx(Arc::new(tx), None, &mut out).unwrap();
        let a = mine(&node, "a");
        node.receive_block(a.clone(), None, &mut out);
        assert!(!node.mempool.contains(&txid));
        // A competing empty branch of two blocks from the old tip.
        let b1 = Arc::new(build_block(
            "b",
            fork_tip.hash,
            fork_tip.height,
            fork_tip.block.header.time + 2,
            Vec::new(),
        ));
        let b2 = Arc::new(build_block(
            "b",
            b1.hash,
            b1.height,
            b1.block.header.time + 1,
            Vec::new(),
        ));
        let mut out = Outbox::default();
        node.receive_block(b1.clone(), Some("p".into()), &mut out);
        assert_eq!(node.chain.tip(), a.hash, "equal work keeps the first seen");
        node.receive_block(b2.clone(), Some("p".into()), &mut out);
        assert_eq!(node.chain.tip(), b2.hash);
        assert!(
            node.mempool.contains(&txid),
            "disconnected tx is back in the mempool"
        );
        let reorg = out.notices.iter().find_map(|n| match n {
            Notice::Truth(TruthEvent::Reorg {
                depth,
                disconnected,
                connected,
                ..
            }) => Some((*depth, disconnected.clone(), connected.clone())),
            _ => None,
        });
        assert_eq!(reorg, Some((1, vec![a.hash], vec![b1.hash, b2.hash])));
        // Order on the sequence topic: D, A, C, C.
        let labels: Vec<u8> = out
            .notices
            .iter()
            .filter_map(|n| match n {
                Notice::Zmq(m) if m.topic == Topic::Sequence => Some(m.body[32]),
                _ => None,
            })
            .collect();
        assert_eq!(labels, b"DACC".to_vec());
        let tips = node.chain.tips();
        assert_eq!(tips.len(), 2);
        assert_eq!(tips[1].status, "valid-fork");
    }
}
