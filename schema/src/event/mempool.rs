//! Whole-mempool kinds: `mempool_snapshot` and `template_snapshot`.

use std::fmt;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::hex::DisplayHex;
use bitcoin::{Amount, BlockHash, Txid};
use serde::{Deserialize, Serialize};

use super::{time_part, NaturalKey};
use crate::{Height, UnixMicros};

/// Order-independent digest of a set of txids: the XOR of each txid's SHA-256.
///
/// Two nodes with the same mempool have the same digest whatever order they list it in; the
/// digest can be updated one txid at a time (add and remove are the same XOR).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TxSetDigest(#[serde(with = "crate::ids::bytes32")] pub [u8; 32]);

impl TxSetDigest {
    /// Digest of the given txids.
    pub fn of<'a>(txids: impl IntoIterator<Item = &'a Txid>) -> Self {
        let mut d = TxSetDigest::default();
        for t in txids {
            d.toggle(t);
        }
        d
    }

    /// Adds a txid to the set, or removes it if present.
    pub fn toggle(&mut self, txid: &Txid) {
        let h = sha256::Hash::hash(txid.as_byte_array()).to_byte_array();
        for (a, b) in self.0.iter_mut().zip(h) {
            *a ^= b;
        }
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        self.0.to_lower_hex_string()
    }
}

impl fmt::Debug for TxSetDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxSetDigest({})", self.to_hex())
    }
}

/// Summary of one node's mempool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MempoolSnapshot {
    /// Number of transactions.
    pub count: u64,
    /// Sum of virtual sizes.
    pub vsize: u64,
    /// Sum of fees, when known.
    #[serde(default)]
    pub total_fee: Option<Amount>,
    /// Minimum fee rate to enter, satoshis per 1000 vbytes.
    pub min_fee_sat_per_kvb: u64,
    /// Digest of the txid set.
    pub txid_digest: TxSetDigest,
    /// The node's mempool sequence when the snapshot was taken.
    #[serde(default)]
    pub mempool_sequence: Option<u64>,
    /// The agent's own mirror of the mempool (ZMQ `sequence` plus resyncs) at that moment.
    #[serde(default)]
    pub mirror: Option<MirrorFigures>,
}

/// The agent's mirror beside the node's own figures: equal when no notification was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorFigures {
    /// Transactions in the mirror.
    pub count: u64,
    /// Digest of the mirror's txid set.
    pub txid_digest: TxSetDigest,
    /// The node mempool sequence the mirror reflects (comparable with `mempool_sequence`).
    #[serde(default)]
    pub mempool_sequence: Option<u64>,
}

impl NaturalKey for MempoolSnapshot {
    fn key_parts(&self, observed_at: UnixMicros) -> Vec<Vec<u8>> {
        vec![time_part(observed_at)]
    }
}

/// Summary of one node's block template (`getblocktemplate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateSnapshot {
    /// Height the template would have.
    pub height: Height,
    /// Its parent.
    pub prev: BlockHash,
    /// Transactions in the template, coinbase excluded.
    pub tx_count: u64,
    /// Sum of fees.
    pub fees: Amount,
    /// Sum of transaction weights.
    pub weight: u64,
    /// Digest of the txid set.
    pub txid_digest: TxSetDigest,
    /// The transactions, in template order: what the fleet comparison needs to tell which
    /// transactions a node leaves out.
    #[serde(default)]
    pub txs: Vec<TemplateTx>,
}

/// One transaction of a block template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateTx {
    /// The transaction id.
    pub txid: Txid,
    /// Its fee.
    pub fee: Amount,
    /// Its weight.
    pub weight: u64,
}

impl NaturalKey for TemplateSnapshot {
    fn key_parts(&self, observed_at: UnixMicros) -> Vec<Vec<u8>> {
        vec![time_part(observed_at)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn digest_is_order_independent_and_removable() {
        let a = Txid::from_str("20b5033ea59d99d9b8afae4bf6eac07b82b676a846ebc1358d2a4470c9d1e6f4")
            .unwrap();
        let b = Txid::from_str("a0d6b1e63eaaeceb1723ae358a6a5ff92ac76893d6453ba137468aebe8ede33a")
            .unwrap();
        assert_eq!(TxSetDigest::of([&a, &b]), TxSetDigest::of([&b, &a]));
        let mut d = TxSetDigest::of([&a, &b]);
        d.toggle(&b);
        assert_eq!(d, TxSetDigest::of([&a]));
        assert_ne!(TxSetDigest::of([&a]), TxSetDigest::default());
    }
}
