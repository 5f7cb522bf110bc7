//! How a node admits transactions into its mempool, the way Core's `AcceptToMemoryPool` does
//! under the node's policy ([`crate::policy`]): peers' offers filtered by its fee filter and
//! `-blocksonly`, input and fee checks, orphans, evictions from a full mempool, and the
//! notices of each (ZMQ, truth, debug.log). Block handling is the parent module's.

use std::sync::Arc;

use bitcoin::{Amount, Transaction, Txid};

use super::{NodeState, Outbox, TxReject, COINBASE_MATURITY, MAX_ORPHANS};
use crate::debug_log::{LogNote, Trimmed};
use crate::mempool::{Admission, Mempool, MempoolEntry};
use crate::policy::SatPerKvb;
use crate::truth::{NotHeldReason, RemovalReason, TruthEvent};
use crate::zmq::ZmqMessage;

/// How a transaction reaches the mempool, which decides the checks it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// New from a peer or the wallet: fee checks and the size limit apply; kept as an orphan
    /// when an input is missing.
    New,
    /// A retried orphan: like `New`, but never kept again.
    Orphan,
    /// Back from a disconnected block: no fee checks and no size limit until the whole reorg
    /// is done (Core's `bypass_limits`).
    Reorg,
}

impl NodeState {
    /// What a transaction must pay to enter now (`getmempoolinfo`'s `mempoolminfee`).
    pub fn min_fee(&self) -> SatPerKvb {
        self.mempool.min_fee(self.clock.now_secs(), &self.policy)
    }

    /// The minimum fee this node announces to its peers (Core's `feefilter`): its
    /// `mempoolminfee`, or nothing at all under `-blocksonly` (it asks for no transactions).
    pub fn fee_filter(&self) -> SatPerKvb {
        if self.policy.blocks_only {
            SatPerKvb::ZERO
        } else {
            self.min_fee()
        }
    }

    /// Why this node does not hold `txid` (which another node holds): confirmed in its active
    /// chain, kept out by its policy (filtered, refused, evicted) or dropped by a wipe, waiting
    /// in its orphan pool for a parent, or else not relayed to it yet.
    pub fn why_not_held(&self, txid: &Txid) -> NotHeldReason {
        if self.chain.tx_block(txid).is_some() {
            return NotHeldReason::Confirmed;
        }
        if let Some(reason) = self.not_held.get(txid) {
            return *reason;
        }
        if self
            .orphan_txs
            .iter()
            .any(|(t, _)| t.compute_txid() == *txid)
        {
            return NotHeldReason::MissingParent;
        }
        NotHeldReason::NotRelayedYet
    }

    /// Empties the mempool and the orphan pool like a restart without mempool.dat: no `R`
    /// notifications, the mempool sequence starts again at 1, `uptime` restarts. Returns the
    /// number of transactions dropped and the mempool sequence before.
    pub fn wipe_mempool(&mut self) -> (usize, u64) {
        let dropped = self.mempool.len();
        let before = self.mempool.sequence();
        for e in self.mempool.entries() {
            self.not_held.insert(e.txid, NotHeldReason::Wiped);
        }
        self.mempool = Mempool::new();
        self.orphan_txs.clear();
        self.started_at = self.clock.now_secs();
        (dropped, before)
    }

    /// A transaction from peer `from` that this node rejects with `reason` (`reason_text` is
    /// the whole text Core logs after `was not accepted: `): a `tx_rejected` truth record and
    /// the `[mempoolrej]` log line, nothing on ZMQ. `None` if `from` is not a peer.
    pub fn reject_tx(
        &self,
        tx: &Transaction,
        from: &str,
        reason: &str,
        reason_text: &str,
        out: &mut Outbox,
    ) -> Option<u64> {
        let peer = self.peer_id(from)?;
        out.truth(TruthEvent::TxRejected {
            txid: tx.compute_txid(),
            wtxid: tx.compute_wtxid(),
            from: from.to_owned(),
            peer,
            reason: reason.to_owned(),
            reason_text: reason_text.to_owned(),
        });
        out.log(LogNote::TxRejected {
            txid: tx.compute_txid(),
            wtxid: tx.compute_wtxid(),
            peer,
            size: tx.total_size(),
            reason: reason.to_owned(),
            reason_text: reason_text.to_owned(),
        });
        Some(peer)
    }

    /// A peer (`from`) that holds `tx`, paying `fee` (`None` when the peer no longer knows),
    /// would announce it to this node. Core peers do not announce a transaction to a node
    /// below whose `feefilter` it pays, nor any transaction to a `-blocksonly` node: such a
    /// transaction never arrives, and only the truth records it (`tx_filtered`, once per
    /// transaction and reason). Otherwise it is received as [`NodeState::receive_tx`].
    pub fn offer_tx(
        &mut self,
        tx: Arc<Transaction>,
        fee: Option<Amount>,
        from: String,
        out: &mut Outbox,
    ) -> Result<(), TxReject> {
        let txid = tx.compute_txid();
        if self.mempool.contains(&txid) || self.chain.tx_block(&txid).is_some() {
            return Err(TxReject::Known);
        }
        let vsize = tx.vsize() as u64;
        let filter = self.fee_filter();
        let refused = if self.policy.blocks_only {
            Some((NotHeldReason::BlocksOnly, TxReject::BlocksOnly))
        } else if fee.is_some_and(|f| !filter.is_met_by(f, vsize)) {
            Some((NotHeldReason::MinFee, TxReject::BelowMinFee))
        } else {
            None
        };
        let Some((reason, reject)) = refused else {
            return self.receive_tx(tx, Some(from), out);
        };
        if self.not_held.insert(txid, reason) != Some(reason) {
            out.truth(TruthEvent::TxFiltered {
                txid,
                from,
                reason,
                fee_sat: fee.map(Amount::to_sat),
                vsize,
                min_fee_sat_per_kvb: filter.to_sat_per_kvb(),
            });
        }
        Err(reject)
    }

    /// Handles a transaction from a peer (`from`) or the local wallet (`None`).
    pub fn receive_tx(
        &mut self,
        tx: Arc<Transaction>,
        from: Option<String>,
        out: &mut Outbox,
    ) -> Result<(), TxReject> {
        let r = self.accept_tx_inner(tx, from, out, Admit::New);
        if r.is_ok() {
            self.retry_orphans(out);
        }
        r
    }

    /// Total value of the inputs of `tx` as this node sees them, checking maturity and conflicts.
    fn input_value(&self, tx: &Transaction) -> Result<Amount, TxReject> {
        let next_height = self.chain.height() + 1;
        let mut total = Amount::ZERO;
        for input in &tx.input {
            let op = input.previous_output;
            if self.mempool.spender(&op).is_some() {
                return Err(TxReject::Conflict);
            }
            if let Some(coin) = self.chain.utxo(&op) {
                if coin.coinbase && next_height.saturating_sub(coin.height) < COINBASE_MATURITY {
                    return Err(TxReject::Immature);
                }
                total += coin.txout.value;
            } else if let Some(o) = self.mempool.output(&op) {
                total += o.value;
            } else {
                return Err(TxReject::MissingInputs);
            }
        }
        Ok(total)
    }

    /// Whether the wallet may spend `op` through this node.
    pub fn can_spend(&self, op: &bitcoin::OutPoint) -> bool {
        if self.mempool.spender(op).is_some() {
            return false;
        }
        match self.chain.utxo(op) {
            Some(c) => {
                !c.coinbase
                    || (self.chain.height() + 1).saturating_sub(c.height) >= COINBASE_MATURITY
            }
            None => self.mempool.output(op).is_some(),
        }
    }

    pub(super) fn accept_tx_inner(
        &mut self,
        tx: Arc<Transaction>,
        from: Option<String>,
        out: &mut Outbox,
        admit: Admit,
    ) -> Result<(), TxReject> {
        let txid = tx.compute_txid();
        if self.mempool.contains(&txid) || self.chain.tx_block(&txid).is_some() {
            return Err(TxReject::Known);
        }
        let inputs = match self.input_value(&tx) {
            Ok(v) => v,
            Err(TxReject::MissingInputs) => {
                if admit == Admit::New
                    && self.orphan_txs.len() < MAX_ORPHANS
                    && !self
                        .orphan_txs
                        .iter()
                        .any(|(t, _)| t.compute_txid() == txid)
                {
                    self.orphan_txs.push((tx, from));
                }
                return Err(TxReject::MissingInputs);
            }
            Err(e) => return Err(e),
        };
        let outputs: Amount = tx.output.iter().map(|o| o.value).sum();
        let fee = inputs.checked_sub(outputs).ok_or(TxReject::NegativeFee)?;
        let now = self.clock.now_secs();
        let height = self.chain.height();
        let (seq, trimmed) = if admit == Admit::Reorg {
            (self.mempool.add(tx.clone(), fee, now, height), None)
        } else {
            self.check_fee(&tx, fee, from.as_deref(), out)?;
            match self
                .mempool
                .admit(tx.clone(), fee, now, height, &self.policy)
            {
                Admission::Full => {
                    self.refuse(
                        &tx,
                        from.as_deref(),
                        NotHeldReason::Evicted,
                        "mempool full",
                        "mempool full".to_owned(),
                        out,
                    );
                    return Err(TxReject::MempoolFull);
                }
                Admission::Added {
                    sequence,
                    evicted,
                    min_fee,
                } => (sequence, self.evicted(evicted, min_fee, out)),
            }
        };
        self.not_held.remove(&txid);
        out.zmq(ZmqMessage::hashtx(txid));
        out.zmq(ZmqMessage::rawtx(&tx));
        out.zmq(ZmqMessage::added(txid, seq));
        let peer = from.as_deref().and_then(|f| self.peer_id(f));
        out.truth(TruthEvent::TxAccepted {
            txid,
            wtxid: tx.compute_wtxid(),
            mempool_sequence: seq,
            fee_sat: fee.to_sat(),
            vsize: tx.vsize() as u64,
            from,
        });
        out.log(LogNote::TxAccepted {
            txid,
            wtxid: tx.compute_wtxid(),
            peer,
            size: tx.total_size(),
            pool_txs: self.mempool.len(),
            pool_vsize: self.mempool.total_vsize(),
            trimmed,
        });
        out.relay_txs.push(tx);
        Ok(())
    }

    /// Core's fee checks on a transaction entering the mempool: at least the minimum relay
    /// fee (`min relay fee not met`) and the rolling minimum fee of a mempool that has been
    /// full (`mempool min fee not met`).
    fn check_fee(
        &mut self,
        tx: &Transaction,
        fee: Amount,
        from: Option<&str>,
        out: &mut Outbox,
    ) -> Result<(), TxReject> {
        let vsize = tx.vsize() as u64;
        let now = self.clock.now_secs();
        self.mempool.settle_min_fee(now, &self.policy);
        let relay = self.policy.min_relay_fee;
        let pool = self.mempool.rolling_min_fee(now, &self.policy);
        let (reason, required) = if !relay.is_met_by(fee, vsize) {
            ("min relay fee not met", relay.fee_for(vsize))
        } else if !pool.is_met_by(fee, vsize) {
            ("mempool min fee not met", pool.fee_for(vsize))
        } else {
            return Ok(());
        };
        let text = format!("{reason}, {} < {}", fee.to_sat(), required.to_sat());
        self.refuse(tx, from, NotHeldReason::MinFee, reason, text, out);
        Err(TxReject::BelowMinFee)
    }

    /// A transaction from peer `from` the node's policy keeps out: remembered with `why`, a
    /// `tx_rejected` record and the `[mempoolrej]` line. From the wallet (`None`) it leaves
    /// no trace: the caller just gets an RPC error, and the transaction exists nowhere.
    fn refuse(
        &mut self,
        tx: &Transaction,
        from: Option<&str>,
        why: NotHeldReason,
        reason: &str,
        reason_text: String,
        out: &mut Outbox,
    ) {
        if let Some(peer) = from {
            self.not_held.insert(tx.compute_txid(), why);
            self.reject_tx(tx, peer, reason, &reason_text, out);
        }
    }

    /// Publishes what an eviction removed: for each transaction `sequence` `R` and a
    /// `tx_removed` (`evicted`) record, then `mempool_trimmed`. Returns it for the log.
    fn evicted(
        &mut self,
        evicted: Vec<(MempoolEntry, u64)>,
        min_fee: Option<SatPerKvb>,
        out: &mut Outbox,
    ) -> Option<Trimmed> {
        let min_fee = min_fee?;
        let mut gone = Vec::new();
        for (e, seq) in evicted {
            out.zmq(ZmqMessage::removed(e.txid, seq));
            out.truth(TruthEvent::TxRemoved {
                txid: e.txid,
                reason: RemovalReason::Evicted,
                mempool_sequence: seq,
            });
            self.not_held.insert(e.txid, NotHeldReason::Evicted);
            gone.push((e.txid, e.wtxid));
        }
        out.truth(TruthEvent::MempoolTrimmed {
            removed: gone.len(),
            min_fee_sat_per_kvb: min_fee.to_sat_per_kvb(),
        });
        Some(Trimmed {
            evicted: gone,
            min_fee,
        })
    }

    /// Evicts down to the size limit (after a reorg put transactions back), with the same
    /// notices as an eviction on acceptance and Core's `TrimToSize` log line.
    pub(super) fn trim_mempool(&mut self, out: &mut Outbox) {
        let (evicted, min_fee) = self.mempool.trim(&self.policy);
        if let Some(t) = self.evicted(evicted, min_fee, out) {
            out.log(LogNote::MempoolTrimmed(t));
        }
    }

    pub(super) fn retry_orphans(&mut self, out: &mut Outbox) {
        loop {
            let orphans = std::mem::take(&mut self.orphan_txs);
            let before = orphans.len();
            let mut kept = Vec::new();
            for (tx, from) in orphans {
                if let Err(TxReject::MissingInputs) =
                    self.accept_tx_inner(tx.clone(), from.clone(), out, Admit::Orphan)
                {
                    kept.push((tx, from));
                }
            }
            let progress = kept.len() < before;
            self.orphan_txs = kept;
            if !progress {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chain;
    use crate::miner::{build_block, genesis, spend};
    use crate::node::{Notice, Peer};
    use crate::policy::MempoolPolicy;
    use crate::zmq::Topic;
    use bitcoin::OutPoint;

    /// A node on 110 empty blocks under `policy`, with the coinbases it may spend.
    fn node(policy: MempoolPolicy) -> (NodeState, Vec<(OutPoint, Amount)>) {
        let g = genesis();
        let mut chain = Chain::new(g.clone());
        let mut prev = g;
        let mut coins = Vec::new();
        for _ in 0..110 {
            let b = Arc::new(build_block(
                "m",
                prev.hash,
                prev.height,
                prev.block.header.time + 1,
                Vec::new(),
            ));
            chain.insert(b.clone());
            chain.connect(&b.hash).unwrap();
            if b.height <= 10 {
                let cb = &b.block.txdata[0];
                coins.push((
                    OutPoint {
                        txid: cb.compute_txid(),
                        vout: 0,
                    },
                    cb.output[0].value,
                ));
            }
            prev = b;
        }
        let mut n = NodeState::new("n", 309900, "/Satoshi:30.99.0/", chain).with_policy(policy);
        n.peers.push(Peer {
            id: 0,
            name: "p".into(),
            outbound: true,
            delay_ms: 10,
            subver: "/Satoshi:30.99.0/".into(),
            version: 309900,
            relays_txs: true,
            fee_filter: SatPerKvb::from_sat_per_kvb(100),
        });
        (n, coins)
    }

    fn pay(coin: (OutPoint, Amount), feerate: u64) -> (Arc<Transaction>, Amount) {
        let (tx, fee) = spend(coin.0, coin.1, feerate, false).unwrap();
        (Arc::new(tx), fee)
    }

    fn truths(out: &Outbox) -> Vec<TruthEvent> {
        out.notices
            .iter()
            .filter_map(|n| match n {
                Notice::Truth(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    /// The `sequence` labels and mempool sequences published, in order.
    fn sequence(out: &Outbox) -> Vec<(char, u64)> {
        out.notices
            .iter()
            .filter_map(|n| match n {
                Notice::Zmq(m) if m.topic == Topic::Sequence && m.body.len() == 41 => {
                    let seq = u64::from_le_bytes(m.body[33..41].try_into().ok()?);
                    Some((m.body[32] as char, seq))
                }
                _ => None,
            })
            .collect()
    }

    fn policy() -> MempoolPolicy {
        MempoolPolicy::defaults_for(309900)
    }

    #[test]
    fn a_transaction_below_the_fee_filter_is_never_offered_and_the_truth_says_min_fee() {
        let (mut n, coins) = node(MempoolPolicy {
            min_relay_fee: SatPerKvb::from_sat_per_kvb(10_000),
            ..policy()
        });
        let (low, low_fee) = pay(coins[0], 5);
        let (high, high_fee) = pay(coins[1], 12);
        let mut out = Outbox::default();
        assert_eq!(
            n.offer_tx(low.clone(), Some(low_fee), "p".into(), &mut out),
            Err(TxReject::BelowMinFee)
        );
        // Offered again by another peer: recorded once.
        let _ = n.offer_tx(low.clone(), Some(low_fee), "p".into(), &mut out);
        n.offer_tx(high.clone(), Some(high_fee), "p".into(), &mut out)
            .unwrap();
        let low_txid = low.compute_txid();
        assert!(!n.mempool.contains(&low_txid));
        assert!(n.mempool.contains(&high.compute_txid()));
        assert_eq!(n.why_not_held(&low_txid), NotHeldReason::MinFee);
        let filtered: Vec<_> = truths(&out)
            .into_iter()
            .filter(|t| matches!(t, TruthEvent::TxFiltered { .. }))
            .collect();
        assert_eq!(
            filtered,
            vec![TruthEvent::TxFiltered {
                txid: low_txid,
                from: "p".into(),
                reason: NotHeldReason::MinFee,
                fee_sat: Some(low_fee.to_sat()),
                vsize: low.vsize() as u64,
                min_fee_sat_per_kvb: 10_000,
            }]
        );
        // Nothing of the filtered one on ZMQ: only the accepted one's `A`.
        assert_eq!(sequence(&out), vec![('A', 1)]);
    }

    #[test]
    fn the_wallet_cannot_submit_below_the_min_relay_fee_and_leaves_no_trace() {
        let (mut n, coins) = node(MempoolPolicy {
            min_relay_fee: SatPerKvb::from_sat_per_kvb(10_000),
            ..policy()
        });
        let (low, _) = pay(coins[0], 5);
        let txid = low.compute_txid();
        let mut out = Outbox::default();
        assert_eq!(
            n.receive_tx(low, None, &mut out),
            Err(TxReject::BelowMinFee)
        );
        assert!(out.notices.is_empty());
        assert!(n.mempool.is_empty());
        assert_eq!(n.why_not_held(&txid), NotHeldReason::NotRelayedYet);
    }

    #[test]
    fn a_low_fee_tx_from_a_peer_that_slips_past_the_filter_is_rejected_with_cores_text() {
        let (mut n, coins) = node(MempoolPolicy {
            min_relay_fee: SatPerKvb::from_sat_per_kvb(10_000),
            ..policy()
        });
        let (low, fee) = pay(coins[0], 5);
        let mut out = Outbox::default();
        // The fee unknown to the sender: the node checks it itself.
        assert_eq!(
            n.offer_tx(low.clone(), None, "p".into(), &mut out),
            Err(TxReject::BelowMinFee)
        );
        let want = format!(
            "min relay fee not met, {} < {}",
            fee.to_sat(),
            SatPerKvb::from_sat_per_kvb(10_000)
                .fee_for(low.vsize() as u64)
                .to_sat()
        );
        assert!(
            truths(&out).iter().any(|t| matches!(t,
                TruthEvent::TxRejected { reason, reason_text, peer: 0, .. }
                    if reason == "min relay fee not met" && *reason_text == want)),
            "{:?}",
            truths(&out)
        );
    }

    #[test]
    fn a_blocks_only_node_is_offered_nothing_but_its_wallet_still_submits() {
        let (mut n, coins) = node(MempoolPolicy {
            blocks_only: true,
            ..policy()
        });
        let (relayed, fee) = pay(coins[0], 20);
        let mut out = Outbox::default();
        assert_eq!(
            n.offer_tx(relayed.clone(), Some(fee), "p".into(), &mut out),
            Err(TxReject::BlocksOnly)
        );
        assert_eq!(
            n.why_not_held(&relayed.compute_txid()),
            NotHeldReason::BlocksOnly
        );
        assert_eq!(n.fee_filter(), SatPerKvb::ZERO);
        let (own, _) = pay(coins[1], 20);
        n.receive_tx(own, None, &mut out).unwrap();
        assert_eq!(n.mempool.len(), 1);
    }

    #[test]
    fn a_full_mempool_publishes_r_for_the_evicted_before_the_newcomers_a() {
        let (probe, _) = pay(
            (
                OutPoint {
                    txid: Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
                    vout: 0,
                },
                Amount::from_sat(1_000_000),
            ),
            1,
        );
        let vsize = probe.vsize() as u64;
        let (mut n, coins) = node(MempoolPolicy {
            max_mempool_vbytes: 2 * vsize,
            ..policy()
        });
        let mut out = Outbox::default();
        let (a, fa) = pay(coins[0], 5);
        let (b, fb) = pay(coins[1], 2);
        let (c, fc) = pay(coins[2], 9);
        let (d, fd) = pay(coins[3], 3);
        for (t, f) in [(&a, fa), (&b, fb)] {
            n.offer_tx(t.clone(), Some(f), "p".into(), &mut out)
                .unwrap();
        }
        let mut out = Outbox::default();
        n.offer_tx(c.clone(), Some(fc), "p".into(), &mut out)
            .unwrap();
        assert_eq!(sequence(&out), vec![('R', 3), ('A', 4)]);
        let t = truths(&out);
        assert!(
            matches!(&t[0], TruthEvent::TxRemoved { txid, reason: RemovalReason::Evicted, mempool_sequence: 3 } if *txid == b.compute_txid())
        );
        assert_eq!(
            t[1],
            TruthEvent::MempoolTrimmed {
                removed: 1,
                min_fee_sat_per_kvb: 2100
            }
        );
        assert!(
            matches!(&t[2], TruthEvent::TxAccepted { txid, mempool_sequence: 4, .. } if *txid == c.compute_txid())
        );
        let trimmed = out.notices.iter().find_map(|x| match x {
            Notice::Log(LogNote::TxAccepted { trimmed, .. }) => trimmed.clone(),
            _ => None,
        });
        assert_eq!(
            trimmed,
            Some(Trimmed {
                evicted: vec![(b.compute_txid(), b.compute_wtxid())],
                min_fee: SatPerKvb::from_sat_per_kvb(2100),
            })
        );
        assert_eq!(n.why_not_held(&b.compute_txid()), NotHeldReason::Evicted);
        assert_eq!(n.min_fee(), SatPerKvb::from_sat_per_kvb(2100));
        // 3 sat/vB now pays the raised minimum fee but would be the one evicted: refused as
        // `mempool full`, with Core's log line, and nothing on ZMQ.
        let mut out = Outbox::default();
        assert_eq!(
            n.offer_tx(d.clone(), Some(fd), "p".into(), &mut out),
            Err(TxReject::MempoolFull)
        );
        assert!(sequence(&out).is_empty());
        assert!(truths(&out).iter().any(
            |t| matches!(t, TruthEvent::TxRejected { reason, .. } if reason == "mempool full")
        ));
        assert_eq!(n.why_not_held(&d.compute_txid()), NotHeldReason::Evicted);
        // Below the raised minimum fee a peer no longer offers it at all.
        let (e, fe) = pay(coins[4], 2);
        let mut out = Outbox::default();
        assert_eq!(
            n.offer_tx(e, Some(fe), "p".into(), &mut out),
            Err(TxReject::BelowMinFee)
        );
        assert!(matches!(
            truths(&out)[..],
            [TruthEvent::TxFiltered {
                reason: NotHeldReason::MinFee,
                min_fee_sat_per_kvb: 2100,
                ..
            }]
        ));
    }

    #[test]
    fn a_child_whose_parent_was_filtered_waits_as_an_orphan() {
        let (mut n, coins) = node(MempoolPolicy {
            min_relay_fee: SatPerKvb::from_sat_per_kvb(10_000),
            ..policy()
        });
        let (parent, fp) = pay(coins[0], 2);
        let op = OutPoint {
            txid: parent.compute_txid(),
            vout: 0,
        };
        let (kid, fk) = spend(op, parent.output[0].value, 40, false).unwrap();
        let mut out = Outbox::default();
        let _ = n.offer_tx(parent.clone(), Some(fp), "p".into(), &mut out);
        assert_eq!(
            n.offer_tx(Arc::new(kid.clone()), Some(fk), "p".into(), &mut out),
            Err(TxReject::MissingInputs)
        );
        assert_eq!(
            n.why_not_held(&kid.compute_txid()),
            NotHeldReason::MissingParent
        );
        assert_eq!(
            n.why_not_held(&parent.compute_txid()),
            NotHeldReason::MinFee
        );
        assert_eq!(
            n.why_not_held(&Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros())),
            NotHeldReason::NotRelayedYet
        );
    }

    #[test]
    fn a_wiped_transaction_is_wiped_until_a_block_confirms_it() {
        let (mut n, coins) = node(policy());
        let (tx, _) = pay(coins[0], 5);
        let txid = tx.compute_txid();
        let mut out = Outbox::default();
        n.receive_tx(tx.clone(), None, &mut out).unwrap();
        n.wipe_mempool();
        assert_eq!(n.why_not_held(&txid), NotHeldReason::Wiped);
        let tip = n.chain.tip_entry().block.clone();
        let sel = crate::miner::Selected {
            tx: tx.clone(),
            fee: Amount::ZERO,
            spent: vec![bitcoin::TxOut {
                value: coins[0].1,
                script_pubkey: crate::miner::anyone_can_spend(),
            }],
        };
        let block = Arc::new(build_block(
            "m",
            tip.hash,
            tip.height,
            tip.block.header.time + 1,
            vec![sel],
        ));
        n.receive_block(block, Some("p".into()), &mut out);
        assert_eq!(n.why_not_held(&txid), NotHeldReason::Confirmed);
    }
}
