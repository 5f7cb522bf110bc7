//! Rows of `tx_seen` and `tx_removed`: transactions entering and leaving a node's mempool.

use schema::event::{TxRemoved, TxSeen};

use super::{event_row, Head};

event_row! {
    /// One `tx_seen` row.
    TxSeenRow {
        /// Txid.
        txid: String,
        /// Wtxid, when seen.
        wtxid: Option<String>,
        /// Node mempool sequence.
        mempool_sequence: Option<u64>,
        /// Virtual size.
        vsize: Option<u64>,
        /// Fee, sat.
        fee_sat: Option<u64>,
        /// zmq, rpc or log.
        source: String,
    }
}

impl TxSeenRow {
    pub(crate) fn new(h: &Head, p: &TxSeen) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        TxSeenRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            txid: p.txid.to_string(),
            wtxid: p.wtxid.map(|w| w.to_string()),
            mempool_sequence: p.mempool_sequence,
            vsize: p.vsize,
            fee_sat: p.fee.map(|a| a.to_sat()),
            source: p.source.as_str().to_string(),
        }
    }
}

event_row! {
    /// One `tx_removed` row.
    TxRemovedRow {
        /// Txid.
        txid: String,
        /// Node mempool sequence.
        mempool_sequence: Option<u64>,
        /// block, replaced, conflict, evicted, reorg, unknown.
        reason: String,
        /// zmq, rpc or log.
        source: String,
    }
}

impl TxRemovedRow {
    pub(crate) fn new(h: &Head, p: &TxRemoved) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        TxRemovedRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            txid: p.txid.to_string(),
            mempool_sequence: p.mempool_sequence,
            reason: p.reason.as_str().to_string(),
            source: p.source.as_str().to_string(),
        }
    }
}
