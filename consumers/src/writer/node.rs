//! Rows of `node_status` and `gap`: what a node says about itself, and what its agent lost.

use schema::event::{Gap, NodeStatus};

use super::{event_row, Head};

event_row! {
    /// One `node_status` row.
    NodeStatusRow {
        /// `getnetworkinfo.version`.
        version: u32,
        /// User agent.
        subversion: String,
        /// Chain name.
        chain: String,
        /// Active tip height.
        blocks: u32,
        /// Best header height.
        headers: u32,
        /// Active tip hash.
        best_block_hash: String,
        /// Tip header time, seconds.
        tip_time: Option<i64>,
        /// 1 while in IBD.
        initial_block_download: u8,
        /// 0..1.
        verification_progress: f64,
        /// Inbound peers.
        peers_in: u32,
        /// Outbound peers.
        peers_out: u32,
        /// Mempool transactions.
        mempool_count: u64,
        /// Mempool vbytes.
        mempool_bytes: u64,
        /// Mempool memory usage.
        mempool_usage: u64,
        /// Mempool min fee, sat/kvB.
        mempool_min_fee_sat_per_kvb: u64,
        /// Node uptime.
        uptime_secs: u64,
        /// Clock offset to peers.
        clock_offset_secs: Option<i64>,
        /// Node warnings.
        warnings: Vec<String>,
        /// `-minrelaytxfee`, sat/kvB.
        min_relay_fee_sat_per_kvb: Option<u64>,
        /// Whether the node relays transactions (false under `-blocksonly`).
        relays_transactions: Option<u8>,
        /// `-maxmempool`, bytes.
        max_mempool_bytes: Option<u64>,
    }
}

impl NodeStatusRow {
    pub(crate) fn new(h: &Head, p: &NodeStatus) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        NodeStatusRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            version: p.version,
            subversion: p.subversion.clone(),
            chain: p.chain.clone(),
            blocks: p.blocks.0,
            headers: p.headers.0,
            best_block_hash: p.best_block_hash.to_string(),
            tip_time: p.tip_time,
            initial_block_download: u8::from(p.initial_block_download),
            verification_progress: p.verification_progress,
            peers_in: p.peers_in,
            peers_out: p.peers_out,
            mempool_count: p.mempool_count,
            mempool_bytes: p.mempool_bytes,
            mempool_usage: p.mempool_usage,
            mempool_min_fee_sat_per_kvb: p.mempool_min_fee_sat_per_kvb,
            uptime_secs: p.uptime_secs,
            clock_offset_secs: p.clock_offset_secs,
            warnings: p.warnings.clone(),
            min_relay_fee_sat_per_kvb: p.policy.min_relay_fee_sat_per_kvb,
            relays_transactions: p.policy.relays_transactions.map(u8::from),
            max_mempool_bytes: p.policy.max_mempool_bytes,
        }
    }
}

event_row! {
    /// One `gap` row.
    GapRow {
        /// Events dropped.
        lost_events: u64,
        /// First dropped event's time, µs.
        from_us: i64,
        /// Last dropped event's time, µs.
        to_us: i64,
        /// Why.
        reason: String,
    }
}

impl GapRow {
    pub(crate) fn new(h: &Head, p: &Gap) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        GapRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            lost_events: p.lost_events,
            from_us: p.from.0,
            to_us: p.to.0,
            reason: p.reason.clone(),
        }
    }
}
