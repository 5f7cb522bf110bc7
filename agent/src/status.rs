//! Periodic RPC summaries as events: `node_status`, `chain_tips` and `mempool_snapshot`.
//! Pure conversions from typed RPC answers; the node driver does the polling.

use bitcoin::Txid;
use schema::event::{
    ChainTip, ChainTips, MempoolSnapshot, MirrorFigures, NodeStatus, RelayPolicy, TxSetDigest,
};
use schema::Height;

use crate::sources::answers::{
    BlockchainInfo, ChainTipAnswer, MempoolInfo, NetworkInfo, RawMempoolWithSequence,
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
