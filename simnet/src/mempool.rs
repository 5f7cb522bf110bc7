//! A node's mempool: the transactions it accepted, in arrival order, with Core's mempool
//! sequence counter (incremented on every addition and removal, including removals for a block).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bitcoin::{Amount, OutPoint, Transaction, TxOut, Txid, Wtxid};

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
    #[allow(clippy::too_many_arguments)]
    pub fn add(&mut self, tx: Arc<Transaction>, fee: Amount, time: u64, height: u32) -> u64 {
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
        self.next_sequence()
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
