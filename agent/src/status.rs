//! Periodic RPC summaries as events: `node_status`, `chain_tips`, `mempool_snapshot`,
//! `template_snapshot` and `peer_snapshot`.
//! Pure conversions from typed RPC answers; the node driver does the polling.

use bitcoin::Amount;
use bitcoin::Txid;
use schema::event::{
    ChainTip, ChainTips, MempoolSnapshot, MirrorFigures, NodeStatus, Peer, PeerSnapshot,
    RelayPolicy, TemplateSnapshot, TemplateTx, TxSetDigest,
};
use schema::Height;

use crate::sources::answers::{
    BlockTemplateAnswer, BlockchainInfo, ChainTipAnswer, MempoolInfo, NetworkInfo, PeerInfoAnswer,
    RawMempoolWithSequence,
};

/// Builds `node_status` from one round of polls.
pub fn node_status(
    chain: &BlockchainInfo,
    net: &NetworkInfo,
    mempool: &MempoolInfo,
    uptime_secs: u64,
) -> NodeStatus {
    let (peers_in, peers_out) = match (net.connections_in, net.connections_out) {
        (Some(i), Some(o)) => (i, o),
        // Before Core 21 only the total is known.
        _ => (0, net.connections),
    };
    let mut warnings = chain.warnings.to_vec();
    for w in net.warnings.to_vec() {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    NodeStatus {
        version: net.version,
        subversion: net.subversion.clone(),
        chain: chain.chain.clone(),
        blocks: Height(chain.blocks),
        headers: Height(chain.headers),
        best_block_hash: chain.bestblockhash,
        tip_time: chain.time,
        initial_block_download: chain.initialblockdownload,
        verification_progress: chain.verificationprogress,
        peers_in,
        peers_out,
        mempool_count: mempool.size,
        mempool_bytes: mempool.bytes,
        mempool_usage: mempool.usage,
        // BTC per kvB in the answer; as an Amount its satoshi count is sat per kvB.
        mempool_min_fee_sat_per_kvb: mempool.mempoolminfee.to_sat(),
        uptime_secs,
        clock_offset_secs: net.timeoffset,
        warnings,
        policy: RelayPolicy {
            min_relay_fee_sat_per_kvb: Some(mempool.minrelaytxfee.to_sat()),
            relays_transactions: net.localrelay,
            max_mempool_bytes: Some(mempool.maxmempool),
        },
    }
}

/// Builds `chain_tips` from `getchaintips`.
pub fn chain_tips(tips: &[ChainTipAnswer]) -> ChainTips {
    ChainTips {
        tips: tips
            .iter()
            .map(|t| ChainTip {
                height: Height(t.height),
                hash: t.hash,
                branch_len: t.branchlen,
                status: t.status,
            })
            .collect(),
    }
}

/// Builds `mempool_snapshot` from `getmempoolinfo` and `getrawmempool false true`, with the
/// agent's mirror beside them when it has one.
pub fn mempool_snapshot(
    info: &MempoolInfo,
    raw: &RawMempoolWithSequence,
    mirror: Option<MirrorFigures>,
) -> MempoolSnapshot {
    MempoolSnapshot {
        count: raw.txids.len() as u64,
        vsize: info.bytes,
        total_fee: info.total_fee,
        min_fee_sat_per_kvb: info.mempoolminfee.to_sat(),
        txid_digest: TxSetDigest::of(raw.txids.iter()),
        mempool_sequence: Some(raw.mempool_sequence),
        mirror,
    }
}

/// Builds `peer_snapshot` from `getpeerinfo`, with who joined and left since `previous` (the
/// ids of the last poll; `None` at the first, when nobody is said to have joined).
pub fn peer_snapshot(peers: &[PeerInfoAnswer], previous: Option<&[u64]>) -> PeerSnapshot {
    let now: Vec<u64> = peers.iter().map(|p| p.id).collect();
    let (joined, left) = match previous {
        Some(before) => (
            now.iter()
                .copied()
                .filter(|id| !before.contains(id))
                .collect(),
            before
                .iter()
                .copied()
                .filter(|id| !now.contains(id))
                .collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    PeerSnapshot {
        peers: peers
            .iter()
            .map(|p| Peer {
                id: p.id,
                addr: p.addr.clone(),
                network: p.network.clone(),
                connection_type: p.connection_type.clone(),
                inbound: p.inbound,
                version: p.version,
                subversion: p.subver.clone(),
                ping_ms: p.pingtime.map(|s| s * 1000.0),
                bytes_sent: p.bytessent,
                bytes_recv: p.bytesrecv,
                conn_time: p.conntime,
                synced_blocks: p.synced_blocks,
            })
            .collect(),
        joined,
        left,
    }
}

/// Builds `template_snapshot` from `getblocktemplate`.
pub fn template_snapshot(t: &BlockTemplateAnswer) -> TemplateSnapshot {
    let txs: Vec<TemplateTx> = t
        .transactions
        .iter()
        .map(|x| TemplateTx {
            txid: x.txid,
            fee: Amount::from_sat(x.fee),
            weight: x.weight,
        })
        .collect();
    TemplateSnapshot {
        height: Height(t.height),
        prev: t.previousblockhash,
        tx_count: txs.len() as u64,
        fees: Amount::from_sat(txs.iter().map(|x| x.fee.to_sat()).sum()),
        weight: txs.iter().map(|x| x.weight).sum(),
        txid_digest: TxSetDigest::of(txs.iter().map(|x| &x.txid)),
        txs,
    }
}

/// Digest of a txid list (for callers holding a plain `getrawmempool` answer).
pub fn digest(txids: &[Txid]) -> TxSetDigest {
    TxSetDigest::of(txids.iter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::read;
    use bitcoin::Amount;
    use schema::event::TipStatus;

    fn parse<T: serde::de::DeserializeOwned>(name: &str) -> T {
        serde_json::from_str(&read(&format!("bitcoin-core-v30/rpc/{name}"))).unwrap()
    }

    #[test]
    fn node_status_summarises_node1_at_the_end_of_the_run() {
        let s = node_status(
            &parse("getblockchaininfo.json"),
            &parse("getnetworkinfo.json"),
            &parse("getmempoolinfo-final.json"),
            parse("uptime.json"),
        );
        assert_eq!(s.version, 309_900);
        assert_eq!(s.chain, "regtest");
        assert_eq!(s.blocks, Height(122));
        assert_eq!((s.peers_in, s.peers_out), (1, 1));
        assert_eq!(s.mempool_min_fee_sat_per_kvb, 100);
        assert_eq!(s.uptime_secs, 54);
        assert_eq!(s.clock_offset_secs, Some(0));
        assert_eq!(
            s.policy,
            RelayPolicy {
                min_relay_fee_sat_per_kvb: Some(100),
                relays_transactions: Some(true),
                max_mempool_bytes: Some(300_000_000),
            }
        );
        // The same warning from both answers is reported once.
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn chain_tips_keep_every_branch() {
        let t = chain_tips(&parse::<Vec<ChainTipAnswer>>(
            "getchaintips-node2-final.json",
        ));
        assert_eq!(t.tips.len(), 4);
        assert_eq!(t.tips[0].status, TipStatus::Active);
        assert_eq!(t.tips[2].branch_len, 3);
    }

    #[test]
    fn peer_snapshot_reads_real_peers_and_who_came_and_went() {
        let peers: Vec<PeerInfoAnswer> = parse("getpeerinfo-node1.json");
        let first = peer_snapshot(&peers, None);
        assert_eq!(first.peers.len(), 2);
        let p = &first.peers[0];
        assert_eq!((p.id, p.addr.as_str()), (0, "127.0.0.1:28000"));
        assert_eq!(p.connection_type.as_deref(), Some("manual"));
        assert_eq!(p.subversion, "/Satoshi:30.99.0/");
        assert!((p.ping_ms.unwrap_or(0.0) - 0.094).abs() < 1e-9);
        assert_eq!((p.bytes_sent, p.bytes_recv), (2357, 37417));
        assert!(first.joined.is_empty() && first.left.is_empty());
        let ids: Vec<u64> = peers.iter().map(|p| p.id).collect();
        let later = peer_snapshot(&peers[1..], Some(&ids));
        assert_eq!(later.left, vec![ids[0]]);
        assert!(later.joined.is_empty());
        let again = peer_snapshot(&peers, Some(&ids[1..]));
        assert_eq!(again.joined, vec![ids[0]]);
    }

    #[test]
    fn template_snapshot_sums_the_real_template() {
        let t = template_snapshot(&parse("getblocktemplate.json"));
        assert_eq!(t.height, Height(111));
        assert_eq!(t.tx_count, 6);
        assert_eq!(t.txs.len(), 6);
        let first = t.txs[0];
        assert_eq!(
            first.txid.to_string(),
            "fdb5aa0dcc4e1d46e1914e81199e9c5b921bb1bb2654b94eacd130d8f0ad7848"
        );
        assert_eq!((first.fee.to_sat(), first.weight), (4125, 657));
        // The coinbase pays the subsidy plus exactly the template's fees.
        assert_eq!(t.fees.to_sat(), 5_000_020_585 - 5_000_000_000);
        assert_eq!(
            t.txid_digest,
            TxSetDigest::of(t.txs.iter().map(|x| &x.txid))
        );
    }

    #[test]
    fn mempool_snapshot_digests_the_txid_set() {
        let raw: RawMempoolWithSequence = parse("getrawmempool-mempool_sequence.json");
        let snap = mempool_snapshot(&parse("getmempoolinfo.json"), &raw, None);
        assert_eq!(snap.count, 6);
        assert_eq!(snap.vsize, 988);
        assert_eq!(snap.total_fee, Some(Amount::from_sat(20_585)));
        assert_eq!(snap.mempool_sequence, Some(7));
        let plain: Vec<Txid> = parse("getrawmempool-false.json");
        assert_eq!(snap.txid_digest, digest(&plain));
    }
}
