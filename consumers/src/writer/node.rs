//! Rows of `node_status`, `peer_snapshot` and `gap`: what a node says about itself and its
//! peers, and what its agent lost.

use schema::event::{Gap, NodeStatus, PeerSnapshot};

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

event_row! {
    /// One `peer_snapshot` row: every peer of the node at one poll, as parallel arrays
    /// (`peer_id[i]` is at `peer_addr[i]`, ...).
    PeerSnapshotRow {
        /// Peers connected.
        peers: u32,
        /// The node's connection ids (`peer=N` in its log).
        peer_id: Vec<u64>,
        /// `host:port`.
        peer_addr: Vec<String>,
        /// Network (`ipv4`, `onion`, ...; '' when not reported).
        peer_network: Vec<String>,
        /// Connection type ('' when not reported).
        peer_connection_type: Vec<String>,
        /// 1 when the peer connected to the node.
        peer_inbound: Vec<u8>,
        /// P2P protocol version.
        peer_version: Vec<u32>,
        /// User agent.
        peer_subversion: Vec<String>,
        /// Last ping, ms (-1 when unknown).
        peer_ping_ms: Vec<f64>,
        /// Bytes sent.
        peer_bytes_sent: Vec<u64>,
        /// Bytes received.
        peer_bytes_recv: Vec<u64>,
        /// Connected since, seconds since the epoch.
        peer_conn_time: Vec<i64>,
        /// Peer ids that joined since the previous poll.
        joined: Vec<u64>,
        /// Peer ids that left since the previous poll.
        left: Vec<u64>,
    }
}

impl PeerSnapshotRow {
    pub(crate) fn new(h: &Head, p: &PeerSnapshot) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        PeerSnapshotRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            peers: u32::try_from(p.peers.len()).unwrap_or(u32::MAX),
            peer_id: p.peers.iter().map(|x| x.id).collect(),
            peer_addr: p.peers.iter().map(|x| x.addr.clone()).collect(),
            peer_network: p
                .peers
                .iter()
                .map(|x| x.network.clone().unwrap_or_default())
                .collect(),
            peer_connection_type: p
                .peers
                .iter()
                .map(|x| x.connection_type.clone().unwrap_or_default())
                .collect(),
            peer_inbound: p.peers.iter().map(|x| u8::from(x.inbound)).collect(),
            peer_version: p.peers.iter().map(|x| x.version).collect(),
            peer_subversion: p.peers.iter().map(|x| x.subversion.clone()).collect(),
            peer_ping_ms: p.peers.iter().map(|x| x.ping_ms.unwrap_or(-1.0)).collect(),
            peer_bytes_sent: p.peers.iter().map(|x| x.bytes_sent).collect(),
            peer_bytes_recv: p.peers.iter().map(|x| x.bytes_recv).collect(),
            peer_conn_time: p.peers.iter().map(|x| x.conn_time).collect(),
            joined: p.joined.clone(),
            left: p.left.clone(),
        }
    }
}
