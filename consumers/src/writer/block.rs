//! Rows of the block-level tables: `block_connected`, `block_disconnected`, `reorg`,
//! `chain_tips` and `utxo_stats`. Hashes are hex (display order), amounts satoshis.

use schema::event::{BlockConnected, BlockDisconnected, ChainTips, Reorg, UtxoStats};

use super::{event_row, Head};

event_row! {
    /// One `block_connected` row.
    BlockConnectedRow {
        /// Block hash.
        hash: String,
        /// Height.
        height: u32,
        /// Parent hash.
        prev: String,
        /// Header time, seconds.
        header_time: u32,
        /// Size, bytes.
        size: u64,
        /// Weight units.
        weight: u64,
        /// Transactions.
        tx_count: u64,
        /// Coinbase outputs, sat.
        coinbase_value_sat: u64,
        /// Allowed subsidy, sat.
        subsidy_sat: u64,
        /// Fees, sat, when known.
        fees_sat: Option<u64>,
        /// Pool tag.
        miner_tag: Option<String>,
        /// Re-connection count.
        occurrence: u32,
        /// zmq, rpc or log.
        source: String,
    }
}

impl BlockConnectedRow {
    pub(crate) fn new(h: &Head, p: &BlockConnected) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        BlockConnectedRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            hash: p.hash.to_string(),
            height: p.height.0,
            prev: p.prev.to_string(),
            header_time: p.header_time,
            size: p.size,
            weight: p.weight,
            tx_count: p.tx_count,
            coinbase_value_sat: p.coinbase_value.to_sat(),
            subsidy_sat: p.subsidy.to_sat(),
            fees_sat: p.fees.map(|a| a.to_sat()),
            miner_tag: p.miner_tag.clone(),
            occurrence: p.occurrence,
            source: p.source.as_str().to_string(),
        }
    }
}

event_row! {
    /// One `block_disconnected` row.
    BlockDisconnectedRow {
        /// Block hash.
        hash: String,
        /// Height.
        height: u32,
        /// Disconnection count.
        occurrence: u32,
        /// zmq, rpc or log.
        source: String,
    }
}

impl BlockDisconnectedRow {
    pub(crate) fn new(h: &Head, p: &BlockDisconnected) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        BlockDisconnectedRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            hash: p.hash.to_string(),
            height: p.height.0,
            occurrence: p.occurrence,
            source: p.source.as_str().to_string(),
        }
    }
}

event_row! {
    /// One `reorg` row.
    ReorgRow {
        /// Tip before.
        old_tip: String,
        /// Its height.
        old_height: u32,
        /// Tip after.
        new_tip: String,
        /// Its height.
        new_height: u32,
        /// Last common block.
        fork_point: String,
        /// Its height.
        fork_height: u32,
        /// Blocks disconnected.
        depth: u32,
        /// Disconnected hashes, old tip first.
        disconnected: Vec<String>,
        /// Connected hashes, lowest first.
        connected: Vec<String>,
        /// zmq, rpc or log.
        source: String,
    }
}

impl ReorgRow {
    pub(crate) fn new(h: &Head, p: &Reorg) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        ReorgRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            old_tip: p.old_tip.to_string(),
            old_height: p.old_height.0,
            new_tip: p.new_tip.to_string(),
            new_height: p.new_height.0,
            fork_point: p.fork_point.to_string(),
            fork_height: p.fork_height.0,
            depth: p.depth,
            disconnected: p.disconnected.iter().map(|b| b.to_string()).collect(),
            connected: p.connected.iter().map(|b| b.to_string()).collect(),
            source: p.source.as_str().to_string(),
        }
    }
}

event_row! {
    /// One `chain_tips` row: the tips as parallel arrays.
    ChainTipsRow {
        /// Tip heights.
        tip_height: Vec<u32>,
        /// Tip hashes.
        tip_hash: Vec<String>,
        /// Branch lengths.
        tip_branch_len: Vec<u32>,
        /// Statuses as getchaintips spells them.
        tip_status: Vec<String>,
    }
}

impl ChainTipsRow {
    pub(crate) fn new(h: &Head, p: &ChainTips) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        ChainTipsRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            tip_height: p.tips.iter().map(|t| t.height.0).collect(),
            tip_hash: p.tips.iter().map(|t| t.hash.to_string()).collect(),
            tip_branch_len: p.tips.iter().map(|t| t.branch_len).collect(),
            tip_status: p
                .tips
                .iter()
                .map(|t| t.status.as_str().to_string())
                .collect(),
        }
    }
}

event_row! {
    /// One `utxo_stats` row.
    UtxoStatsRow {
        /// Block height.
        height: u32,
        /// Block hash.
        hash: String,
        /// UTXO set value, sat.
        total_amount_sat: u64,
        /// Unspendable so far, sat.
        total_unspendable_amount_sat: u64,
        /// Unspent outputs.
        txouts: u64,
        /// MuHash, hex.
        muhash: Option<String>,
        /// block_info.prevout_spent, sat.
        block_prevout_spent_sat: Option<u64>,
        /// block_info.coinbase, sat.
        block_coinbase_sat: Option<u64>,
        /// block_info.new_outputs_ex_coinbase, sat.
        block_new_outputs_ex_coinbase_sat: Option<u64>,
        /// block_info.unspendable, sat.
        block_unspendable_sat: Option<u64>,
    }
}

impl UtxoStatsRow {
    pub(crate) fn new(h: &Head, p: &UtxoStats) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        let bi = p.block_info.as_ref();
        UtxoStatsRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            height: p.height.0,
            hash: p.hash.to_string(),
            total_amount_sat: p.total_amount.to_sat(),
            total_unspendable_amount_sat: p.total_unspendable_amount.to_sat(),
            txouts: p.txouts,
            muhash: p.muhash.clone(),
            block_prevout_spent_sat: bi.map(|b| b.prevout_spent.to_sat()),
            block_coinbase_sat: bi.map(|b| b.coinbase.to_sat()),
            block_new_outputs_ex_coinbase_sat: bi.map(|b| b.new_outputs_ex_coinbase.to_sat()),
            block_unspendable_sat: bi.map(|b| b.unspendable.to_sat()),
        }
    }
}
