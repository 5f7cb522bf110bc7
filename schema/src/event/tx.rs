//! `tx_seen` and `tx_removed`: a transaction entering or leaving one node's mempool.

use bitcoin::{Amount, OutPoint, Txid, Wtxid};
use serde::{Deserialize, Serialize};

use super::{time_part, NaturalKey, Source};
use crate::UnixMicros;

/// A transaction entered the mempool (ZMQ sequence `A`, with `rawtx` for its details).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxSeen {
    /// The transaction id.
    pub txid: Txid,
    /// The witness transaction id, when the raw transaction was seen.
    #[serde(default)]
    pub wtxid: Option<Wtxid>,
    /// The node's mempool sequence number of this addition.
    #[serde(default)]
    pub mempool_sequence: Option<u64>,
    /// Virtual size in vbytes, when known.
    #[serde(default)]
    pub vsize: Option<u64>,
    /// Fee, when known (RPC).
    #[serde(default)]
    pub fee: Option<Amount>,
    /// How the agent learned of it.
    pub source: Source,
    /// Its unconfirmed parents: the transactions in the node's mempool whose outputs it
    /// spends (from `rawtx`). A node that keeps a parent out also lacks its children.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<Txid>,
    /// The coins it spends (from `rawtx`): a node that holds another transaction spending one
    /// of them keeps this one out as a conflict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spends: Vec<OutPoint>,
}

impl NaturalKey for TxSeen {
    fn key_parts(&self, observed_at: UnixMicros) -> Vec<Vec<u8>> {
        sequence_key(self.txid, self.mempool_sequence, observed_at)
    }
}

/// Why a transaction left the mempool, as far as the agent can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    /// Included in a connected block (ZMQ sequence `R` is not sent for these; the agent infers it).
    Block,
    /// Replaced by a conflicting transaction (RBF).
    Replaced,
    /// Conflicted with a block transaction.
    Conflict,
    /// Expired or evicted for size.
    Evicted,
    /// Removed for a reorg.
    Reorg,
    /// Not known (ZMQ `R` carries no reason).
    Unknown,
}

impl RemovalReason {
    /// Lowercase name used in ClickHouse.
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalReason::Block => "block",
            RemovalReason::Replaced => "replaced",
            RemovalReason::Conflict => "conflict",
            RemovalReason::Evicted => "evicted",
            RemovalReason::Reorg => "reorg",
            RemovalReason::Unknown => "unknown",
        }
    }
}

/// A transaction left the mempool (ZMQ sequence `R`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxRemoved {
    /// The transaction id.
    pub txid: Txid,
    /// The node's mempool sequence number of this removal.
    #[serde(default)]
    pub mempool_sequence: Option<u64>,
    /// Why it left, where known.
    pub reason: RemovalReason,
    /// How the agent learned of it.
    pub source: Source,
}

impl NaturalKey for TxRemoved {
    fn key_parts(&self, observed_at: UnixMicros) -> Vec<Vec<u8>> {
        sequence_key(self.txid, self.mempool_sequence, observed_at)
    }
}

/// Key of a mempool entry or removal: txid plus the node's mempool sequence, or the time when
/// the node gave no sequence.
fn sequence_key(txid: Txid, seq: Option<u64>, observed_at: UnixMicros) -> Vec<Vec<u8>> {
    let discriminator = match seq {
        Some(s) => [b"s".as_slice(), &s.to_le_bytes()].concat(),
        None => [b"t".as_slice(), &time_part(observed_at)].concat(),
    };
    vec![txid.to_string().into_bytes(), discriminator]
}
