//! The agent's mirror of its node's mempool, and the transaction events derived from it.
//!
//! [`MempoolTracker`] is a pure state machine fed by ZMQ `rawtx` (transaction details, cached
//! briefly), `sequence` `A`/`R` (entries and removals), connected blocks (bitcoind sends no `R`
//! for transactions that leave by block inclusion, so the tracker infers them) and RPC resyncs
//! (`getrawmempool` with `mempool_sequence`). It returns `tx_seen` / `tx_removed` events and
//! keeps an order-independent digest of the txid set for `mempool_snapshot`.

use std::collections::{HashMap, HashSet, VecDeque};

use bitcoin::{OutPoint, Transaction, Txid, Wtxid};
use schema::event::{RemovalReason, Source, TxRemoved, TxSeen, TxSetDigest};
use schema::Event;

/// Details of a transaction seen on `rawtx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxDetails {
    /// Witness txid.
    pub wtxid: Wtxid,
    /// Virtual size.
    pub vsize: u64,
    /// The transactions in the mirror whose outputs it spends.
    pub parents: Vec<Txid>,
    /// The coins it spends.
    pub spends: Vec<OutPoint>,
}

/// Default number of `rawtx` details kept while waiting for their `A` (block transactions are
/// sent on `rawtx` too, so the cache holds a few blocks' worth).
pub const RAWTX_CACHE: usize = 50_000;

/// The agent's mirror of the node's mempool.
#[derive(Debug)]
pub struct MempoolTracker {
    details: HashMap<Txid, TxDetails>,
    order: VecDeque<Txid>,
    cap: usize,
    mirror: HashSet<Txid>,
    digest: TxSetDigest,
    sequence: Option<u64>,
    /// The sequence of the last resync's list: notifications at or below it are stale.
    snapshot_sequence: Option<u64>,
}

/// The mirror against the node's own list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorCheck {
    /// Same transactions.
    Equal,
    /// Different transactions at the same sequence: the mirror missed something.
    Differs,
    /// The list was taken at another sequence than the mirror's: not comparable.
    InFlight,
}

impl Default for MempoolTracker {
    fn default() -> Self {
        MempoolTracker::new(RAWTX_CACHE)
    }
}

impl MempoolTracker {
    /// A tracker that caches the details of up to `cap` raw transactions.
    pub fn new(cap: usize) -> Self {
        MempoolTracker {
            details: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
            mirror: HashSet::new(),
            digest: TxSetDigest::default(),
            sequence: None,
            snapshot_sequence: None,
        }
    }

    /// A transaction arrived on `rawtx`: remember its details for its `A`.
    pub fn raw_tx(&mut self, tx: &Transaction) {
        let txid = tx.compute_txid();
        let mut parents: Vec<Txid> = tx
            .input
            .iter()
            .map(|i| i.previous_output.txid)
            .filter(|p| self.mirror.contains(p))
            .collect();
        parents.sort_unstable();
        parents.dedup();
        let d = TxDetails {
            wtxid: tx.compute_wtxid(),
            vsize: tx.vsize() as u64,
            parents,
            spends: tx
                .input
                .iter()
                .map(|i| i.previous_output)
                .filter(|o| !o.is_null())
                .collect(),
        };
        if self.details.insert(txid, d).is_none() {
            self.order.push_back(txid);
        }
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.details.remove(&old);
            }
        }
    }

    /// Whether a notification numbered `mempool_sequence` is already reflected in the mirror.
    /// Core numbers each mempool change with the counter's value and then increments it, and
    /// `getrawmempool` reports the counter: a list taken at S holds every change numbered
    /// below S.
    fn already_applied(&self, mempool_sequence: u64) -> bool {
        self.snapshot_sequence
            .is_some_and(|snapshot| mempool_sequence < snapshot)
    }

    /// `A`: a transaction entered the mempool. `None` when the last resync already held it.
    pub fn added(&mut self, txid: Txid, mempool_sequence: u64) -> Option<Event> {
        if self.already_applied(mempool_sequence) {
            return None;
        }
        if self.mirror.insert(txid) {
            self.digest.toggle(&txid);
        }
        self.sequence = Some(mempool_sequence + 1);
        let d = self.details.get(&txid);
        Some(Event::TxSeen(TxSeen {
            txid,
            wtxid: d.map(|d| d.wtxid),
            mempool_sequence: Some(mempool_sequence),
            vsize: d.map(|d| d.vsize),
            fee: None,
            source: Source::Zmq,
            parents: d.map(|d| d.parents.clone()).unwrap_or_default(),
            spends: d.map(|d| d.spends.clone()).unwrap_or_default(),
        }))
    }

    /// `R`: a transaction left the mempool for a reason other than block inclusion. `None`
    /// when the last resync already reflected it.
    pub fn removed(&mut self, txid: Txid, mempool_sequence: u64) -> Option<Event> {
        if self.already_applied(mempool_sequence) {
            return None;
        }
        if self.mirror.remove(&txid) {
            self.digest.toggle(&txid);
        }
        self.sequence = Some(mempool_sequence + 1);
        Some(Event::TxRemoved(TxRemoved {
            txid,
            mempool_sequence: Some(mempool_sequence),
            reason: RemovalReason::Unknown,
            source: Source::Zmq,
        }))
    }

    /// A block was connected: its transactions that were in the mirror left by inclusion.
    /// Core counts each such removal in its mempool sequence without a notification, and the
    /// conflicts it removes with one (sent before the block's), so the sequence the mirror
    /// reflects is unknown until the next notification.
    pub fn block_connected(&mut self, txids: &[Txid]) -> Vec<Event> {
        let mut out = Vec::new();
        for txid in txids {
            if self.mirror.remove(txid) {
                self.digest.toggle(txid);
                out.push(Event::TxRemoved(TxRemoved {
                    txid: *txid,
                    mempool_sequence: None,
                    reason: RemovalReason::Block,
                    source: Source::Zmq,
                }));
            }
        }
        if !out.is_empty() {
            self.sequence = None;
        }
        out
    }

    /// Replaces the mirror with the node's own list (`getrawmempool` with `mempool_sequence`)
    /// and returns what changed, as `tx_seen` / `tx_removed` from RPC, so consumers that fold
    /// the events hold the node's mempool too. Notifications numbered below
    /// `mempool_sequence` are ignored from now on (the list already reflects them).
    pub fn reset(&mut self, txids: &[Txid], mempool_sequence: Option<u64>) -> Vec<Event> {
        let fresh: HashSet<Txid> = txids.iter().copied().collect();
        let mut out = Vec::new();
        for txid in self.mirror.difference(&fresh) {
            out.push(Event::TxRemoved(TxRemoved {
                txid: *txid,
                mempool_sequence: None,
                reason: RemovalReason::Unknown,
                source: Source::Rpc,
            }));
        }
        for txid in fresh.difference(&self.mirror) {
            let d = self.details.get(txid);
            out.push(Event::TxSeen(TxSeen {
                txid: *txid,
                wtxid: d.map(|d| d.wtxid),
                mempool_sequence: None,
                vsize: d.map(|d| d.vsize),
                fee: None,
                source: Source::Rpc,
                parents: d.map(|d| d.parents.clone()).unwrap_or_default(),
                spends: d.map(|d| d.spends.clone()).unwrap_or_default(),
            }));
        }
        self.digest = TxSetDigest::of(fresh.iter());
        self.mirror = fresh;
        self.sequence = mempool_sequence;
        self.snapshot_sequence = mempool_sequence;
        out
    }

    /// Compares the mirror with the node's own list taken at `mempool_sequence`. Only a list
    /// taken at the mirror's own sequence can be compared (otherwise notifications are in
    /// flight one way or the other).
    pub fn check(&self, digest: &TxSetDigest, count: usize, mempool_sequence: u64) -> MirrorCheck {
        if self.sequence != Some(mempool_sequence) {
            return MirrorCheck::InFlight;
        }
        if self.digest == *digest && self.mirror.len() == count {
            MirrorCheck::Equal
        } else {
            MirrorCheck::Differs
        }
    }

    /// Number of transactions in the mirror.
    pub fn len(&self) -> usize {
        self.mirror.len()
    }

    /// Whether the mirror is empty.
    pub fn is_empty(&self) -> bool {
        self.mirror.is_empty()
    }

    /// Digest of the mirrored txid set.
    pub fn digest(&self) -> TxSetDigest {
        self.digest
    }

    /// The node's mempool sequence the mirror reflects (one past the last change applied, or
    /// the last resync's), when known.
    pub fn sequence(&self) -> Option<u64> {
        self.sequence
    }

    /// Whether the mirror holds `txid`.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.mirror.contains(txid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{block_store, capture};
    use crate::sources::zmq::{decode, SequenceEvent, ZmqMessage};
    use std::str::FromStr;

    fn t(s: &str) -> Txid {
        Txid::from_str(s).unwrap()
    }

    const T: [&str; 6] = [
        "20b5033ea59d99d9b8afae4bf6eac07b82b676a846ebc1358d2a4470c9d1e6f4",
        "a0d6b1e63eaaeceb1723ae358a6a5ff92ac76893d6453ba137468aebe8ede33a",
        "354de784191de3c50f5ed6f54ee2bc36d4351a8983823b73be95ca8c6b89a1e3",
        "32808d3f97540bc461819fe6a2aa34120c66c3096255c34c3be6bbda8a11fa4a",
        "e0199a855b2ab4cd5e60f7bdaa0eda61c73d5f33b62b135e268133eedb137e77",
        "fdb5aa0dcc4e1d46e1914e81199e9c5b921bb1bb2654b94eacd130d8f0ad7848",
    ];

    /// Replays node2's capture: rawtx, A/R, and block connects (from the rawblock store).
    fn replay_node2(stop_after_seq: Option<u32>) -> (MempoolTracker, Vec<Event>) {
        let blocks = block_store();
        let mut m = MempoolTracker::default();
        let mut out = Vec::new();
        for msg in capture(2) {
            let Ok(decoded) = decode(msg.topic.as_bytes(), &msg.body, &msg.seq.to_le_bytes())
            else {
                continue;
            };
            match decoded {
                ZmqMessage::RawTx { tx, .. } => m.raw_tx(&tx),
                ZmqMessage::Sequence { seq, event } => {
                    match event {
                        SequenceEvent::TxAdded {
                            txid,
                            mempool_sequence,
                        } => out.extend(m.added(txid, mempool_sequence)),
                        SequenceEvent::TxRemoved {
                            txid,
                            mempool_sequence,
                        } => out.extend(m.removed(txid, mempool_sequence)),
                        SequenceEvent::BlockConnected(hash) => {
                            if let Some(b) = blocks.get(&hash) {
                                let txids: Vec<Txid> =
                                    b.txdata.iter().map(|t| t.compute_txid()).collect();
                                out.extend(m.block_connected(&txids));
                            }
                        }
                        SequenceEvent::BlockDisconnected(_) => {}
                    }
                    if Some(seq) == stop_after_seq {
                        break;
                    }
                }
                ZmqMessage::RawBlock { .. } => {}
            }
        }
        (m, out)
    }

    #[test]
    fn round_one_mempool_matches_getrawmempool() {
        // Sequence message 116 is the sixth `A` of round 1 on node2.
        let (m, events) = replay_node2(Some(116));
        let expected: Vec<Txid> = T.iter().map(|s| t(s)).collect();
        assert_eq!(m.len(), 6);
        assert_eq!(m.digest(), TxSetDigest::of(expected.iter()));
        // Every tx_seen carries wtxid and vsize from rawtx.
        let seen: Vec<&TxSeen> = events
            .iter()
            .filter_map(|e| match e {
                Event::TxSeen(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(seen.len(), 6);
        assert!(seen.iter().all(|s| s.wtxid.is_some() && s.vsize.is_some()));
        // T1 is p2wpkh: its wtxid differs from its txid.
        let t1 = seen.iter().find(|s| s.txid == t(T[0])).unwrap();
        assert_ne!(t1.wtxid.map(|w| w.to_string()), Some(T[0].to_string()));
        assert_eq!(seen[0].mempool_sequence, Some(1));
    }

    #[test]
    fn replacement_on_node2_removes_b_and_block_113_removes_a() {
        let (m, events) = replay_node2(None);
        let b = t("9fbed1276dd9060ab1f5d90eacd8e34d7957f8c6583349b38185d558ac936d76");
        let a = t("670b8519aa2418fafabdb8ca955bc2d9c78e2272497d6f1c05d3de96a1d1a55b");
        let removed: Vec<(Txid, RemovalReason)> = events
            .iter()
            .filter_map(|e| match e {
                Event::TxRemoved(r) => Some((r.txid, r.reason)),
                _ => None,
            })
            .collect();
        assert!(removed.contains(&(b, RemovalReason::Unknown)));
        assert!(removed.contains(&(a, RemovalReason::Block)));
        // Round 1 left by block 111.
        for s in T {
            assert!(removed.contains(&(t(s), RemovalReason::Block)), "{s}");
        }
        // Everything was mined by the end of the run.
        assert!(m.is_empty(), "left: {}", m.len());
        assert_eq!(m.digest(), TxSetDigest::default());
    }

    #[test]
    fn reset_replaces_the_mirror_and_returns_the_difference() {
        let mut m = MempoolTracker::default();
        m.added(t(T[0]), 1);
        m.added(t(T[1]), 2);
        let diff = m.reset(&[t(T[1]), t(T[2])], Some(9));
        assert!(!m.contains(&t(T[0])));
        assert_eq!(m.digest(), TxSetDigest::of([&t(T[2]), &t(T[1])]));
        assert_eq!(m.sequence(), Some(9));
        // T0 left and T2 entered while the mirror was blind; T1 is unchanged.
        let mut changes: Vec<(String, Txid, &str)> = diff
            .iter()
            .map(|e| match e {
                Event::TxSeen(s) => ("seen".into(), s.txid, s.source.as_str()),
                Event::TxRemoved(r) => ("removed".into(), r.txid, r.source.as_str()),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        changes.sort();
        assert_eq!(
            changes,
            vec![
                ("removed".to_string(), t(T[0]), "rpc"),
                ("seen".to_string(), t(T[2]), "rpc"),
            ]
        );
    }

    #[test]
    fn notifications_the_resync_list_already_holds_are_dropped() {
        let mut m = MempoolTracker::default();
        // A list at sequence 9 holds the changes numbered 1 to 8.
        m.reset(&[t(T[1]), t(T[2])], Some(9));
        assert!(m.added(t(T[2]), 7).is_none());
        assert!(m.removed(t(T[3]), 8).is_none());
        assert_eq!(m.len(), 2);
        // From 9 on: applied.
        assert!(m.removed(t(T[1]), 9).is_some());
        assert!(m.added(t(T[3]), 10).is_some());
        assert_eq!(m.sequence(), Some(11));
        assert_eq!(m.digest(), TxSetDigest::of([&t(T[2]), &t(T[3])]));
        // An `A` for a txid already in the mirror keeps the digest right.
        assert!(m.added(t(T[3]), 11).is_some());
        assert_eq!(m.digest(), TxSetDigest::of([&t(T[2]), &t(T[3])]));
    }

    #[test]
    fn the_mirror_is_checked_only_against_a_list_at_its_own_sequence() {
        let mut m = MempoolTracker::default();
        m.reset(&[t(T[1])], Some(3));
        // Change 3 brings the node to 4.
        m.added(t(T[2]), 3);
        let node = TxSetDigest::of([&t(T[1]), &t(T[2])]);
        assert_eq!(m.check(&node, 2, 4), MirrorCheck::Equal);
        // The node moved on: a notification is in flight.
        assert_eq!(m.check(&node, 2, 5), MirrorCheck::InFlight);
        // Same sequence, other transactions: a notification was lost.
        let other = TxSetDigest::of([&t(T[1]), &t(T[3])]);
        assert_eq!(m.check(&other, 2, 4), MirrorCheck::Differs);
        assert_eq!(m.check(&node, 3, 4), MirrorCheck::Differs);
    }

    #[test]
    fn tx_seen_names_the_parents_in_the_mirror_and_every_coin_spent() {
        use bitcoin::{absolute, transaction, Amount, OutPoint, ScriptBuf, TxIn, TxOut};
        let spend = |inputs: &[OutPoint]| Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: inputs
                .iter()
                .map(|o| TxIn {
                    previous_output: *o,
                    ..TxIn::default()
                })
                .collect(),
            output: vec![TxOut {
                value: Amount::from_sat(1_000),
                script_pubkey: ScriptBuf::new(),
            }],
        };
        let confirmed = OutPoint::new(t(T[5]), 0);
        let parent = spend(&[confirmed]);
        let child = spend(&[OutPoint::new(parent.compute_txid(), 0), confirmed]);
        let mut m = MempoolTracker::default();
        m.raw_tx(&parent);
        let Some(Event::TxSeen(p)) = m.added(parent.compute_txid(), 1) else {
            panic!("tx_seen for the parent");
        };
        assert!(p.parents.is_empty(), "its input is confirmed");
        m.raw_tx(&child);
        let Some(Event::TxSeen(c)) = m.added(child.compute_txid(), 2) else {
            panic!("tx_seen for the child");
        };
        assert_eq!(c.parents, vec![parent.compute_txid()]);
        assert_eq!(p.spends, vec![confirmed]);
        assert_eq!(
            c.spends,
            vec![OutPoint::new(parent.compute_txid(), 0), confirmed]
        );
    }

    #[test]
    fn rawtx_cache_is_bounded() {
        let mut m = MempoolTracker::new(2);
        let txs: Vec<Transaction> = capture(0)
            .into_iter()
            .filter(|c| c.topic == "rawtx")
            .take(5)
            .map(|c| bitcoin::consensus::deserialize(&c.body).unwrap())
            .collect();
        for tx in &txs {
            m.raw_tx(tx);
        }
        assert_eq!(m.details.len(), 2);
    }
}
