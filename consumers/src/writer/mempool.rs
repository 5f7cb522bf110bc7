//! Rows of `mempool_snapshot` and `template_snapshot`: whole-mempool and block template
//! summaries.

use schema::event::{MempoolSnapshot, TemplateSnapshot};

use super::{event_row, Head};

event_row! {
    /// One `mempool_snapshot` row.
    MempoolSnapshotRow {
        /// Transactions.
        count: u64,
        /// Sum of vsizes.
        vsize: u64,
        /// Sum of fees, sat.
        total_fee_sat: Option<u64>,
        /// Min fee, sat/kvB.
        min_fee_sat_per_kvb: u64,
        /// Txid set digest, hex.
        txid_digest: String,
        /// Node mempool sequence.
        mempool_sequence: Option<u64>,
        /// Transactions in the agent's mirror.
        mirror_count: Option<u64>,
        /// The mirror's txid set digest, hex.
        mirror_digest: Option<String>,
        /// The node mempool sequence the mirror reflects.
        mirror_sequence: Option<u64>,
    }
}

impl MempoolSnapshotRow {
    pub(crate) fn new(h: &Head, p: &MempoolSnapshot) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        MempoolSnapshotRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            count: p.count,
            vsize: p.vsize,
            total_fee_sat: p.total_fee.map(|a| a.to_sat()),
            min_fee_sat_per_kvb: p.min_fee_sat_per_kvb,
            txid_digest: p.txid_digest.to_hex(),
            mempool_sequence: p.mempool_sequence,
            mirror_count: p.mirror.map(|m| m.count),
            mirror_digest: p.mirror.map(|m| m.txid_digest.to_hex()),
            mirror_sequence: p.mirror.and_then(|m| m.mempool_sequence),
        }
    }
}

event_row! {
    /// One `template_snapshot` row.
    TemplateSnapshotRow {
        /// Template height.
        height: u32,
        /// Parent hash.
        prev: String,
        /// Transactions (no coinbase).
        tx_count: u64,
        /// Fees, sat.
        fees_sat: u64,
        /// Weight.
        weight: u64,
        /// Txid set digest, hex.
        txid_digest: String,
        /// The transactions in template order; `tx_fee_sat[i]`, `tx_weight[i]` are `txid[i]`'s.
        txid: Vec<String>,
        /// See `txid`.
        tx_fee_sat: Vec<u64>,
        /// See `txid`.
        tx_weight: Vec<u64>,
    }
}

impl TemplateSnapshotRow {
    pub(crate) fn new(h: &Head, p: &TemplateSnapshot) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        TemplateSnapshotRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            height: p.height.0,
            prev: p.prev.to_string(),
            tx_count: p.tx_count,
            fees_sat: p.fees.to_sat(),
            weight: p.weight,
            txid_digest: p.txid_digest.to_hex(),
            txid: p.txs.iter().map(|t| t.txid.to_string()).collect(),
            tx_fee_sat: p.txs.iter().map(|t| t.fee.to_sat()).collect(),
            tx_weight: p.txs.iter().map(|t| t.weight).collect(),
        }
    }
}
