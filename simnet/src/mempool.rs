//! A node's mempool: the transactions it accepted, in arrival order, with Core's mempool
//! sequence counter (incremented on every addition and removal, including removals for a block)
//! and the size limit Core enforces: past `-maxmempool` the lowest fee-rate packages are evicted
//! and the rolling minimum fee rises ([`crate::policy`]). What the node does with the results
//! (ZMQ, truth, debug.log) is [`crate::node`]'s.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bitcoin::{Amount, OutPoint, Transaction, TxOut, Txid, Wtxid};

use crate::policy::{MempoolPolicy, RollingMinFee, SatPerKvb};

/// One transaction in the mempool.
#[derive(Debug, Clone)]
pub struct MempoolEntry {
    /// The transaction.
    pub tx: Arc<Transaction>,
    /// Its txid.
    pub txid: Txid,
    /// Its wtxid.
    pub wtxid: Wtxid,
    /// Fee paid.
    pub fee: Amount,
    /// Virtual size, vB.
    pub vsize: u64,
    /// Weight, WU.
    pub weight: u64,
    /// Unix time (s) it entered.
    pub time: u64,
    /// Chain height when it entered.
    pub height: u32,
    order: u64,
}

/// The mempool of one node.
#[derive(Debug)]
pub struct Mempool {
    entries: HashMap<Txid, MempoolEntry>,
    order: BTreeMap<u64, Txid>,
    next_order: u64,
    spent: HashMap<OutPoint, Txid>,
    sequence: u64,
    rolling: RollingMinFee,
}

/// Which transactions a mempool over its limit evicts, as Core's `TrimToSize` picks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrimPlan {
    /// Evicted transactions, in removal order: each package's lowest-scoring transaction
    /// first, then its descendants.
    pub evict: Vec<Txid>,
    /// The highest fee rate among the evicted packages (what the rolling minimum fee rises to,
    /// plus the incremental relay fee).
    pub max_package_rate: SatPerKvb,
}

/// The outcome of [`Mempool::admit`].
#[derive(Debug, Clone)]
pub enum Admission {
    /// The transaction is in; making room evicted `evicted` (each with the mempool sequence
    /// its removal consumed, before the addition's `sequence`).
    Added {
        /// Mempool sequence of the `A` notification.
        sequence: u64,
        /// Evicted entries with the sequence of their `R`, in removal order.
        evicted: Vec<(MempoolEntry, u64)>,
        /// The rolling minimum fee after the eviction, when there was one.
        min_fee: Option<SatPerKvb>,
    },
    /// The mempool is full and the transaction would be the one evicted (Core's `mempool
    /// full`): nothing changed.
    Full,
}

impl Default for Mempool {
    fn default() -> Self {
        Mempool::new()
    }
}

impl Mempool {
    /// An empty mempool; Core's sequence starts at 1.
    pub fn new() -> Mempool {
        Mempool {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_order: 0,
            spent: HashMap::new(),
            sequence: 1,
            rolling: RollingMinFee::default(),
        }
    }

    /// The current mempool sequence (what `getrawmempool` reports as `mempool_sequence`).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Consumes one sequence number, as Core does for every addition and removal.
    fn next_sequence(&mut self) -> u64 {
        let s = self.sequence;
        self.sequence += 1;
        s
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `txid` is in the mempool.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }

    /// The entry of `txid`.
    pub fn get(&self, txid: &Txid) -> Option<&MempoolEntry> {
        self.entries.get(txid)
    }

    /// The mempool transaction spending `outpoint`, if any.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spent.get(outpoint).copied()
    }

    /// An output created by a mempool transaction.
    pub fn output(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.entries
            .get(&outpoint.txid)
            .and_then(|e| e.tx.output.get(outpoint.vout as usize))
    }

    /// Adds a transaction and returns the mempool sequence of its `A` notification.
    pub fn add(&mut self, tx: Arc<Transaction>, fee: Amount, time: u64, height: u32) -> u64 {
        self.insert(tx, fee, time, height);
        self.next_sequence()
    }

    /// Adds a transaction under `policy`'s size limit, like Core's mempool accept followed by
    /// `LimitMempoolSize`: if the mempool then exceeds `max_mempool_vbytes`, the lowest
    /// fee-rate packages are evicted (their removals consume sequence numbers before the
    /// addition's, as Core's `R` notifications precede the `A`) and the rolling minimum fee
    /// rises. If the transaction itself would be evicted, nothing changes ([`Admission::Full`]).
    /// Fee checks are the caller's.
    pub fn admit(
        &mut self,
        tx: Arc<Transaction>,
        fee: Amount,
        time: u64,
        height: u32,
        policy: &MempoolPolicy,
    ) -> Admission {
        let txid = self.insert(tx, fee, time, height);
        let plan = self.trim_plan(policy.max_mempool_vbytes);
        if plan.evict.contains(&txid) {
            self.discard(&txid);
            return Admission::Full;
        }
        let (evicted, min_fee) = self.apply_trim(&plan, policy);
        Admission::Added {
            sequence: self.next_sequence(),
            evicted,
            min_fee,
        }
    }

    /// Evicts down to `policy`'s size limit (Core's `LimitMempoolSize`, e.g. after a reorg put
    /// transactions back): the evicted entries with their removal sequences, and the new
    /// rolling minimum fee if anything was evicted.
    pub fn trim(
        &mut self,
        policy: &MempoolPolicy,
    ) -> (Vec<(MempoolEntry, u64)>, Option<SatPerKvb>) {
        let plan = self.trim_plan(policy.max_mempool_vbytes);
        self.apply_trim(&plan, policy)
    }

    fn apply_trim(
        &mut self,
        plan: &TrimPlan,
        policy: &MempoolPolicy,
    ) -> (Vec<(MempoolEntry, u64)>, Option<SatPerKvb>) {
        if plan.evict.is_empty() {
            return (Vec::new(), None);
        }
        let evicted: Vec<_> = plan.evict.iter().filter_map(|t| self.remove(t)).collect();
        let raised = plan
            .max_package_rate
            .saturating_add(policy.incremental_relay_fee);
        self.rolling.bump(raised);
        (evicted, Some(raised))
    }

    /// What Core's `TrimToSize` would evict to bring the mempool to `max_vbytes`: repeatedly
    /// the transaction with the lowest descendant score (the lower of its own fee rate and
    /// that of it with its descendants) together with its descendants; ties evict the newer.
    /// Pure: nothing is removed.
    pub fn trim_plan(&self, max_vbytes: u64) -> TrimPlan {
        let mut plan = TrimPlan::default();
        let mut size = self.total_vsize();
        let mut gone: HashSet<Txid> = HashSet::new();
        while size > max_vbytes {
            let mut worst: Option<(Vec<Txid>, Amount, u64, u64)> = None;
            for e in self.entries().filter(|e| !gone.contains(&e.txid)) {
                let package: Vec<Txid> = self
                    .closure(&e.txid, false)
                    .into_iter()
                    .filter(|t| !gone.contains(t))
                    .collect();
                let (fee, vsize) = package
                    .iter()
                    .filter_map(|t| self.get(t))
                    .fold((Amount::ZERO, 0u64), |(f, v), x| (f + x.fee, v + x.vsize));
                // Descendant score: max(own rate, package rate), compared as fractions.
                let (score_fee, score_vsize) = if lower_rate((e.fee, e.vsize), (fee, vsize)) {
                    (fee, vsize)
                } else {
                    (e.fee, e.vsize)
                };
                let worse = match &worst {
                    None => true,
                    // `entries()` runs oldest first, so `<=` makes ties evict the newer.
                    Some((_, wf, wv, _)) => !lower_rate((*wf, *wv), (score_fee, score_vsize)),
                };
                if worse {
                    worst = Some((package, score_fee, score_vsize, vsize));
                }
            }
            let Some((package, _, _, _)) = worst else {
                break;
            };
            let (fee, vsize) = package
                .iter()
                .filter_map(|t| self.get(t))
                .fold((Amount::ZERO, 0u64), |(f, v), x| (f + x.fee, v + x.vsize));
            plan.max_package_rate = plan.max_package_rate.max(SatPerKvb::of(fee, vsize));
            size = size.saturating_sub(vsize);
            for t in package {
                gone.insert(t);
                plan.evict.push(t);
            }
        }
        plan
    }

    /// The rolling minimum fee at `now` (Unix seconds) under `policy` (Core's `GetMinFee`;
    /// zero unless something was evicted).
    pub fn rolling_min_fee(&self, now: u64, policy: &MempoolPolicy) -> SatPerKvb {
        self.rolling.at(
            now,
            self.total_vsize(),
            policy.max_mempool_vbytes,
            policy.incremental_relay_fee,
        )
    }

    /// What a transaction must pay to enter at `now`: the higher of the minimum relay fee and
    /// the rolling minimum fee (`getmempoolinfo`'s `mempoolminfee`).
    pub fn min_fee(&self, now: u64, policy: &MempoolPolicy) -> SatPerKvb {
        self.rolling_min_fee(now, policy).max(policy.min_relay_fee)
    }

    /// Stores the rolling fee's decay up to `now`, as Core does each time it checks a fee.
    pub fn settle_min_fee(&mut self, now: u64, policy: &MempoolPolicy) {
        let usage = self.total_vsize();
        self.rolling.settle(
            now,
            usage,
            policy.max_mempool_vbytes,
            policy.incremental_relay_fee,
        );
    }

    /// A block was connected at `now`: the rolling minimum fee may decay from now on.
    pub fn block_connected(&mut self, now: u64) {
        self.rolling.block_connected(now);
    }

    /// Removes an entry without consuming a sequence number (an addition undone).
    fn discard(&mut self, txid: &Txid) {
        if let Some(entry) = self.entries.remove(txid) {
            self.order.remove(&entry.order);
            for input in &entry.tx.input {
                if self.spent.get(&input.previous_output) == Some(txid) {
                    self.spent.remove(&input.previous_output);
                }
            }
        }
    }

    /// Adds an entry without consuming a sequence number; returns its txid.
    fn insert(&mut self, tx: Arc<Transaction>, fee: Amount, time: u64, height: u32) -> Txid {
        let txid = tx.compute_txid();
        let order = self.next_order;
        self.next_order += 1;
        for input in &tx.input {
            self.spent.insert(input.previous_output, txid);
        }
        let entry = MempoolEntry {
            txid,
            wtxid: tx.compute_wtxid(),
            fee,
            vsize: tx.vsize() as u64,
            weight: tx.weight().to_wu(),
            time,
            height,
            order,
            tx,
        };
        self.entries.insert(txid, entry);
        self.order.insert(order, txid);
        txid
    }

    /// Removes a transaction; returns it with the sequence number its removal consumed.
    pub fn remove(&mut self, txid: &Txid) -> Option<(MempoolEntry, u64)> {
        let entry = self.entries.remove(txid)?;
        self.order.remove(&entry.order);
        for input in &entry.tx.input {
            if self.spent.get(&input.previous_output) == Some(txid) {
                self.spent.remove(&input.previous_output);
            }
        }
        let seq = self.next_sequence();
        Some((entry, seq))
    }

    /// Entries in arrival order.
    pub fn entries(&self) -> impl Iterator<Item = &MempoolEntry> {
        self.order.values().filter_map(|t| self.entries.get(t))
    }

    /// In-mempool parents of `txid`.
    pub fn parents(&self, txid: &Txid) -> Vec<Txid> {
        let Some(e) = self.entries.get(txid) else {
            return Vec::new();
        };
        let mut out: Vec<Txid> = Vec::new();
        for input in &e.tx.input {
            let p = input.previous_output.txid;
            if self.entries.contains_key(&p) && !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// In-mempool children of `txid`.
    pub fn children(&self, txid: &Txid) -> Vec<Txid> {
        let Some(e) = self.entries.get(txid) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for vout in 0..e.tx.output.len() as u32 {
            if let Some(c) = self.spent.get(&OutPoint { txid: *txid, vout }) {
                if !out.contains(c) {
                    out.push(*c);
                }
            }
        }
        out
    }

    /// `txid` with all its in-mempool ancestors (`up`) or descendants (`!up`).
    pub fn closure(&self, txid: &Txid, up: bool) -> Vec<Txid> {
        let mut seen = HashSet::new();
        let mut stack = vec![*txid];
        let mut out = Vec::new();
        while let Some(t) = stack.pop() {
            if !seen.insert(t) {
                continue;
            }
            out.push(t);
            let next = if up {
                self.parents(&t)
            } else {
                self.children(&t)
            };
            stack.extend(next);
        }
        out
    }

    /// Sum of fees.
    pub fn total_fee(&self) -> Amount {
        self.entries.values().map(|e| e.fee).sum()
    }

    /// Sum of virtual sizes.
    pub fn total_vsize(&self) -> u64 {
        self.entries.values().map(|e| e.vsize).sum()
    }
}

/// Whether fee rate `a` (fee, vsize) is strictly lower than `b`, compared exactly.
fn lower_rate(a: (Amount, u64), b: (Amount, u64)) -> bool {
    u128::from(a.0.to_sat()) * u128::from(b.1) < u128::from(b.0.to_sat()) * u128::from(a.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::miner::spend;
    use crate::policy::MempoolPolicy;
    use bitcoin::hashes::{sha256d, Hash};

    /// A spend of a made-up coin `n` paying `feerate` sat/vB, with its fee.
    fn tx(n: u32, feerate: u64) -> (Arc<Transaction>, Amount) {
        let prev = Txid::from_raw_hash(sha256d::Hash::hash(&n.to_le_bytes()));
        let op = OutPoint {
            txid: prev,
            vout: 0,
        };
        let (tx, fee) = spend(op, Amount::from_sat(1_000_000), feerate, false).unwrap();
        (Arc::new(tx), fee)
    }

    /// A spend of output 0 of `parent` paying `feerate` sat/vB.
    fn child(parent: &Transaction, feerate: u64) -> (Arc<Transaction>, Amount) {
        let op = OutPoint {
            txid: parent.compute_txid(),
            vout: 0,
        };
        let (tx, fee) = spend(op, parent.output[0].value, feerate, false).unwrap();
        (Arc::new(tx), fee)
    }

    fn policy(max_vbytes: u64) -> MempoolPolicy {
        MempoolPolicy {
            max_mempool_vbytes: max_vbytes,
            ..MempoolPolicy::defaults_for(309900)
        }
    }

    #[test]
    fn a_full_mempool_evicts_the_lowest_fee_rate_and_raises_its_min_fee() {
        let (a, fa) = tx(1, 5);
        let (b, fb) = tx(2, 2);
        let (c, fc) = tx(3, 9);
        let vsize = a.vsize() as u64;
        // Room for two.
        let p = policy(2 * vsize);
        let mut m = Mempool::new();
        assert!(matches!(
            m.admit(a.clone(), fa, 0, 0, &p),
            Admission::Added { sequence: 1, .. }
        ));
        assert!(matches!(
            m.admit(b.clone(), fb, 0, 0, &p),
            Admission::Added { sequence: 2, .. }
        ));
        assert_eq!(m.min_fee(0, &p), p.min_relay_fee);
        let Admission::Added {
            sequence,
            evicted,
            min_fee,
        } = m.admit(c.clone(), fc, 0, 0, &p)
        else {
            panic!("c pays more than b and gets in");
        };
        // The eviction's `R` takes its sequence number before the addition's `A`.
        let evicted: Vec<(Txid, u64)> = evicted.iter().map(|(e, s)| (e.txid, *s)).collect();
        assert_eq!(evicted, vec![(b.compute_txid(), 3)]);
        assert_eq!(sequence, 4);
        // 2 sat/vB evicted: the minimum fee is that plus the incremental relay fee.
        let raised = SatPerKvb::from_sat_per_kvb(2000 + 100);
        assert_eq!(min_fee, Some(raised));
        assert_eq!(m.min_fee(0, &p), raised);
        assert!(m.contains(&a.compute_txid()) && m.contains(&c.compute_txid()));
    }

    #[test]
    fn a_transaction_that_would_be_evicted_itself_is_refused_and_changes_nothing() {
        let (a, fa) = tx(1, 5);
        let (b, fb) = tx(2, 1);
        let p = policy(a.vsize() as u64);
        let mut m = Mempool::new();
        m.admit(a.clone(), fa, 0, 0, &p);
        assert!(matches!(m.admit(b.clone(), fb, 0, 0, &p), Admission::Full));
        assert_eq!(m.len(), 1);
        assert_eq!(m.sequence(), 2, "no sequence number consumed");
        assert_eq!(m.min_fee(0, &p), p.min_relay_fee);
    }

    #[test]
    fn eviction_takes_descendants_and_a_paying_child_shields_its_parent() {
        // parent 1 sat/vB with a 30 sat/vB child: descendant score ~15.5 sat/vB; lone 8 sat/vB.
        let (parent, fp) = tx(1, 1);
        let (kid, fk) = child(&parent, 30);
        let (lone, fl) = tx(2, 8);
        let mut m = Mempool::new();
        for (t, f) in [(&parent, fp), (&kid, fk), (&lone, fl)] {
            m.add(t.clone(), f, 0, 0);
        }
        let total = m.total_vsize();
        let plan = m.trim_plan(total - 1);
        assert_eq!(plan.evict, vec![lone.compute_txid()]);
        assert_eq!(plan.max_package_rate, SatPerKvb::from_sat_per_kvb(8000));
        // Without the child's help the parent goes first, and its child with it.
        let mut m = Mempool::new();
        let (kid2, fk2) = child(&parent, 2);
        for (t, f) in [(&parent, fp), (&kid2, fk2), (&lone, fl)] {
            m.add(t.clone(), f, 0, 0);
        }
        let plan = m.trim_plan(m.total_vsize() - 1);
        assert_eq!(plan.evict, vec![parent.compute_txid(), kid2.compute_txid()]);
    }

    #[test]
    fn within_the_limit_nothing_is_evicted() {
        let (a, fa) = tx(1, 1);
        let mut m = Mempool::new();
        m.add(a.clone(), fa, 0, 0);
        assert_eq!(m.trim_plan(a.vsize() as u64), TrimPlan::default());
        let (evicted, min_fee) = m.trim(&policy(a.vsize() as u64));
        assert!(evicted.is_empty() && min_fee.is_none());
    }
}
