//! Rows of the kinds only debug.log tells: `block_seen`, `block_timing`, `invalid_block`,
//! `block_download_timeout`, `tx_rejected`, `tx_replaced` and `warning`.

use schema::event::{
    BlockDownloadTimeout, BlockSeen, BlockTiming, InvalidBlock, TxRejected, TxReplaced, Warning,
};

use super::{event_row, Head};

event_row! {
    /// One `block_seen` row.
    BlockSeenRow {
        /// Block hash.
        hash: String,
        /// Height, when logged.
        height: Option<u32>,
        /// header, cmpctblock, block, tip.
        stage: String,
        /// Node-local peer id.
        peer: Option<u64>,
        /// zmq, rpc or log.
        source: String,
    }
}

impl BlockSeenRow {
    pub(crate) fn new(h: &Head, p: &BlockSeen) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        BlockSeenRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            hash: p.hash.to_string(),
            height: p.height.map(|x| x.0),
            stage: p.stage.as_str().to_string(),
            peer: p.peer,
            source: p.source.as_str().to_string(),
        }
    }
}

event_row! {
    /// One `block_timing` row: `stage_name[i]` took `stage_ms[i]`.
    BlockTimingRow {
        /// Block hash, when logged.
        hash: Option<String>,
        /// Height, when logged.
        height: Option<u32>,
        /// Stage names, log order.
        stage_name: Vec<String>,
        /// Stage durations, ms.
        stage_ms: Vec<f64>,
        /// Total connect time, ms.
        connect_total_ms: Option<f64>,
        /// Header to tip, ms.
        header_to_tip_ms: Option<f64>,
        /// Compact block: prefilled transactions.
        compact_prefilled: Option<u32>,
        /// Compact block: found in the mempool.
        compact_from_mempool: Option<u32>,
        /// Compact block: found in the extra pool.
        compact_from_extra_pool: Option<u32>,
        /// Compact block: requested.
        compact_requested: Option<u32>,
    }
}

impl BlockTimingRow {
    pub(crate) fn new(h: &Head, p: &BlockTiming) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        let c = p.compact.as_ref();
        BlockTimingRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            hash: p.hash.map(|x| x.to_string()),
            height: p.height.map(|x| x.0),
            stage_name: p.stages.iter().map(|s| s.name.clone()).collect(),
            stage_ms: p.stages.iter().map(|s| s.ms).collect(),
            connect_total_ms: p.connect_total_ms,
            header_to_tip_ms: p.header_to_tip_ms,
            compact_prefilled: c.map(|c| c.prefilled),
            compact_from_mempool: c.map(|c| c.from_mempool),
            compact_from_extra_pool: c.map(|c| c.from_extra_pool),
            compact_requested: c.map(|c| c.requested),
        }
    }
}

event_row! {
    /// One `invalid_block` row.
    InvalidBlockRow {
        /// Block hash.
        hash: String,
        /// Height, when known.
        height: Option<u32>,
        /// Reject reason.
        reason: String,
        /// Further detail.
        detail: Option<String>,
        /// Peer.
        peer: Option<u64>,
        /// zmq, rpc or log.
        source: String,
    }
}

impl InvalidBlockRow {
    pub(crate) fn new(h: &Head, p: &InvalidBlock) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        InvalidBlockRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            hash: p.hash.to_string(),
            height: p.height.map(|x| x.0),
            reason: p.reason.clone(),
            detail: p.detail.clone(),
            peer: p.peer,
            source: p.source.as_str().to_string(),
        }
    }
}

event_row! {
    /// One `block_download_timeout` row.
    BlockDownloadTimeoutRow {
        /// Block hash, when logged.
        hash: Option<String>,
        /// Peer.
        peer: Option<u64>,
    }
}

impl BlockDownloadTimeoutRow {
    pub(crate) fn new(h: &Head, p: &BlockDownloadTimeout) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        BlockDownloadTimeoutRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            hash: p.hash.map(|x| x.to_string()),
            peer: p.peer,
        }
    }
}

event_row! {
    /// One `tx_rejected` row.
    TxRejectedRow {
        /// Txid.
        txid: String,
        /// Wtxid, when logged.
        wtxid: Option<String>,
        /// Peer.
        peer: Option<u64>,
        /// Reason code.
        reason: String,
        /// Full reason text.
        reason_text: String,
    }
}

impl TxRejectedRow {
    pub(crate) fn new(h: &Head, p: &TxRejected) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        TxRejectedRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            txid: p.txid.to_string(),
            wtxid: p.wtxid.map(|x| x.to_string()),
            peer: p.peer,
            reason: p.reason.clone(),
            reason_text: p.reason_text.clone(),
        }
    }
}

event_row! {
    /// One `tx_replaced` row.
    TxReplacedRow {
        /// The transaction that left.
        replaced_txid: String,
        /// Its wtxid.
        replaced_wtxid: Option<String>,
        /// The transaction that entered.
        new_txid: String,
        /// Its wtxid.
        new_wtxid: Option<String>,
        /// Fee of the replaced one, sat.
        replaced_fee_sat: Option<u64>,
        /// Fee of the new one, sat.
        new_fee_sat: Option<u64>,
        /// Vsize of the replaced one.
        replaced_vsize: Option<u64>,
        /// Vsize of the new one.
        new_vsize: Option<u64>,
    }
}

impl TxReplacedRow {
    pub(crate) fn new(h: &Head, p: &TxReplaced) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        TxReplacedRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            replaced_txid: p.replaced_txid.to_string(),
            replaced_wtxid: p.replaced_wtxid.map(|x| x.to_string()),
            new_txid: p.new_txid.to_string(),
            new_wtxid: p.new_wtxid.map(|x| x.to_string()),
            replaced_fee_sat: p.replaced_fee.map(|a| a.to_sat()),
            new_fee_sat: p.new_fee.map(|a| a.to_sat()),
            replaced_vsize: p.replaced_vsize,
            new_vsize: p.new_vsize,
        }
    }
}

event_row! {
    /// One `warning` row.
    WarningRow {
        /// The warning text.
        message: String,
    }
}

impl WarningRow {
    pub(crate) fn new(h: &Head, p: &Warning) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        WarningRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            message: p.message.clone(),
        }
    }
}
