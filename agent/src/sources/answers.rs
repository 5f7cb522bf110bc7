//! Typed answers of the bitcoind RPC methods the agent calls.
//!
//! Only the fields the agent uses are declared; unknown fields are ignored so newer Core
//! versions keep parsing. Amounts that Core prints in BTC go through bitcoin's `as_btc` serde
//! helper, which parses the number's shortest decimal text exactly (no float arithmetic);
//! amounts Core prints in satoshis (`getblockstats`) go through `as_sat`.

use bitcoin::amount::serde::{as_btc, as_sat};
use bitcoin::{Amount, BlockHash, Txid, Wtxid};
use schema::event::TipStatus;
use serde::Deserialize;

/// `warnings`: a string before Core v28 (with `-deprecatedrpc=warnings` too), a list after.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Warnings {
    /// One text (empty when none).
    Text(String),
    /// A list of texts.
    List(Vec<String>),
}

impl Default for Warnings {
    fn default() -> Self {
        Warnings::List(Vec::new())
    }
}

impl Warnings {
    /// The warnings as a list, empty texts dropped.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Warnings::Text(s) if s.is_empty() => Vec::new(),
            Warnings::Text(s) => vec![s.clone()],
            Warnings::List(v) => v.clone(),
        }
    }
}

/// `getblockchaininfo`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BlockchainInfo {
    /// `main`, `test`, `testnet4`, `signet`, `regtest`.
    pub chain: String,
    /// Height of the active tip.
    pub blocks: u32,
    /// Height of the best header.
    pub headers: u32,
    /// Hash of the active tip.
    pub bestblockhash: BlockHash,
    /// Header time of the tip (Core 23+).
    #[serde(default)]
    pub time: Option<i64>,
    /// Median time past of the tip.
    pub mediantime: i64,
    /// Verification progress estimate, 0..1.
    pub verificationprogress: f64,
    /// Initial block download.
    pub initialblockdownload: bool,
    /// Whether the node prunes.
    pub pruned: bool,
    /// Warnings.
    #[serde(default)]
    pub warnings: Warnings,
}

/// `getnetworkinfo`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NetworkInfo {
    /// Numeric version (`309900` for 30.99.0).
    pub version: u32,
    /// User agent.
    pub subversion: String,
    /// P2P protocol version.
    pub protocolversion: u32,
    /// Clock offset to peers, seconds.
    #[serde(default)]
    pub timeoffset: Option<i64>,
    /// Total connections.
    pub connections: u32,
    /// Inbound connections (Core 21+).
    #[serde(default)]
    pub connections_in: Option<u32>,
    /// Outbound connections (Core 21+).
    #[serde(default)]
    pub connections_out: Option<u32>,
    /// Minimum relay fee, BTC/kvB.
    #[serde(with = "as_btc")]
    pub relayfee: Amount,
    /// Whether the node relays transactions (false under `-blocksonly`).
    #[serde(default)]
    pub localrelay: Option<bool>,
    /// Warnings.
    #[serde(default)]
    pub warnings: Warnings,
}

/// One entry of `getchaintips`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChainTipAnswer {
    /// Tip height.
    pub height: u32,
    /// Tip hash.
    pub hash: BlockHash,
    /// Branch length from the active chain.
    pub branchlen: u32,
    /// Branch status.
    pub status: TipStatus,
}

/// `getmempoolinfo`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MempoolInfo {
    /// Whether the mempool finished loading.
    #[serde(default)]
    pub loaded: Option<bool>,
    /// Transaction count.
    pub size: u64,
    /// Sum of virtual sizes.
    pub bytes: u64,
    /// Memory usage.
    pub usage: u64,
    /// Sum of fees (Core 23+).
    #[serde(default, with = "as_btc::opt")]
    pub total_fee: Option<Amount>,
    /// Maximum memory usage.
    pub maxmempool: u64,
    /// Minimum fee rate to enter, BTC/kvB.
    #[serde(with = "as_btc")]
    pub mempoolminfee: Amount,
    /// Minimum relay fee rate, BTC/kvB.
    #[serde(with = "as_btc")]
    pub minrelaytxfee: Amount,
}

/// `getrawmempool` with `verbose=false, mempool_sequence=true`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RawMempoolWithSequence {
    /// The txids.
    pub txids: Vec<Txid>,
    /// The mempool sequence at the time of the answer.
    pub mempool_sequence: u64,
}

/// Fees of a mempool entry (`getrawmempool true`, `getmempoolentry`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MempoolEntryFees {
    /// Base fee.
    #[serde(with = "as_btc")]
    pub base: Amount,
    /// Modified fee (prioritisetransaction).
    #[serde(with = "as_btc")]
    pub modified: Amount,
}

/// One entry of `getpeerinfo` (the parts bmon reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PeerInfoAnswer {
    /// Connection id.
    pub id: u64,
    /// `host:port`.
    pub addr: String,
    /// Network (Core 21+).
    #[serde(default)]
    pub network: Option<String>,
    /// Connection type (Core 21+).
    #[serde(default)]
    pub connection_type: Option<String>,
    /// Inbound.
    pub inbound: bool,
    /// P2P version.
    #[serde(default)]
    pub version: u32,
    /// User agent.
    #[serde(default)]
    pub subver: String,
    /// Last ping, seconds.
    #[serde(default)]
    pub pingtime: Option<f64>,
    /// Bytes sent.
    #[serde(default)]
    pub bytessent: u64,
    /// Bytes received.
    #[serde(default)]
    pub bytesrecv: u64,
    /// Connected since.
    #[serde(default)]
    pub conntime: i64,
    /// Last block in common.
    #[serde(default)]
    pub synced_blocks: Option<i64>,
}

/// `getblocktemplate {"rules": ["segwit"]}` (the parts bmon reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BlockTemplateAnswer {
    /// Height of the block the template is for.
    pub height: u32,
    /// Its parent.
    pub previousblockhash: BlockHash,
    /// The transactions, coinbase excluded.
    pub transactions: Vec<TemplateTxAnswer>,
}

/// One transaction of a block template.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TemplateTxAnswer {
    /// The txid.
    pub txid: Txid,
    /// Fee, satoshis.
    pub fee: u64,
    /// Weight.
    pub weight: u64,
}

/// One entry of `getrawmempool true`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MempoolEntry {
    /// Virtual size.
    pub vsize: u64,
    /// Weight.
    pub weight: u64,
    /// Entry time, seconds since the epoch.
    pub time: i64,
    /// Witness txid.
    pub wtxid: Wtxid,
    /// Fees.
    pub fees: MempoolEntryFees,
}

/// `getblockstats` (all stats or a subset; every field optional for the subset case).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BlockStats {
    /// Block hash.
    #[serde(default)]
    pub blockhash: Option<BlockHash>,
    /// Height.
    #[serde(default)]
    pub height: Option<u32>,
    /// Total fees, satoshis.
    #[serde(default, with = "as_sat::opt")]
    pub totalfee: Option<Amount>,
    /// Subsidy, satoshis.
    #[serde(default, with = "as_sat::opt")]
    pub subsidy: Option<Amount>,
    /// Transactions.
    #[serde(default)]
    pub txs: Option<u64>,
    /// Total size of non-coinbase transactions.
    #[serde(default)]
    pub total_size: Option<u64>,
    /// Total weight of non-coinbase transactions.
    #[serde(default)]
    pub total_weight: Option<u64>,
    /// Header time.
    #[serde(default)]
    pub time: Option<i64>,
}

/// `getblockheader` (verbose).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BlockHeaderAnswer {
    /// Hash.
    pub hash: BlockHash,
    /// Confirmations, -1 when not on the active chain.
    pub confirmations: i64,
    /// Height.
    pub height: u32,
    /// Header version.
    pub version: i32,
    /// Merkle root (hex).
    pub merkleroot: String,
    /// Header time.
    pub time: u32,
    /// Median time past.
    pub mediantime: i64,
    /// Nonce.
    pub nonce: u32,
    /// Compact target (hex).
    pub bits: String,
    /// Difficulty (a ratio, not money).
    pub difficulty: f64,
    /// Chain work (hex).
    pub chainwork: String,
    /// Transactions.
    #[serde(rename = "nTx")]
    pub n_tx: u64,
    /// Parent; absent for genesis.
    #[serde(default)]
    pub previousblockhash: Option<BlockHash>,
    /// Child on the active chain, when any.
    #[serde(default)]
    pub nextblockhash: Option<BlockHash>,
}

/// `getblock` with verbosity 1 (verbosity 0 is the raw hex; see the client).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BlockVerbose {
    /// Hash.
    pub hash: BlockHash,
    /// Confirmations, -1 when not on the active chain.
    pub confirmations: i64,
    /// Height.
    pub height: u32,
    /// Serialized size.
    pub size: u64,
    /// Size without witness data.
    pub strippedsize: u64,
    /// Weight.
    pub weight: u64,
    /// Header time.
    pub time: u32,
    /// Transactions.
    #[serde(rename = "nTx")]
    pub n_tx: u64,
    /// Txids.
    pub tx: Vec<Txid>,
    /// Parent.
    #[serde(default)]
    pub previousblockhash: Option<BlockHash>,
}

/// One index in `getindexinfo`'s answer (a map from index name, e.g. `coinstatsindex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct IndexInfo {
    /// Whether the index has caught up with the chain.
    pub synced: bool,
    /// Height the index has reached.
    pub best_block_height: u32,
}

/// `getindexinfo`: the node's optional indexes by name.
pub type IndexInfos = std::collections::HashMap<String, IndexInfo>;

/// `gettxoutsetinfo`'s `block_info` (with coinstatsindex).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TxOutSetBlockInfo {
    /// Value spent.
    #[serde(with = "as_btc")]
    pub prevout_spent: Amount,
    /// Coinbase outputs.
    #[serde(with = "as_btc")]
    pub coinbase: Amount,
    /// New non-coinbase outputs.
    #[serde(with = "as_btc")]
    pub new_outputs_ex_coinbase: Amount,
    /// Made unspendable.
    #[serde(with = "as_btc")]
    pub unspendable: Amount,
}

/// `gettxoutsetinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TxOutSetInfo {
    /// Height.
    pub height: u32,
    /// Block hash.
    pub bestblock: BlockHash,
    /// Unspent outputs.
    pub txouts: u64,
    /// Database-independent size estimate.
    pub bogosize: u64,
    /// `hash_serialized_3`, when that hash type was asked.
    #[serde(default)]
    pub hash_serialized_3: Option<String>,
    /// MuHash, when that hash type was asked.
    #[serde(default)]
    pub muhash: Option<String>,
    /// Total value.
    #[serde(with = "as_btc")]
    pub total_amount: Amount,
    /// Total unspendable value (coinstatsindex).
    #[serde(default, with = "as_btc::opt")]
    pub total_unspendable_amount: Option<Amount>,
    /// Transactions with unspent outputs (without coinstatsindex).
    #[serde(default)]
    pub transactions: Option<u64>,
    /// Per-block figures (coinstatsindex).
    #[serde(default)]
    pub block_info: Option<TxOutSetBlockInfo>,
}

impl TxOutSetInfo {
    /// The `utxo_stats` event payload.
    pub fn to_event(&self) -> schema::event::UtxoStats {
        schema::event::UtxoStats {
            height: schema::Height(self.height),
            hash: self.bestblock,
            total_amount: self.total_amount,
            total_unspendable_amount: self.total_unspendable_amount.unwrap_or(Amount::ZERO),
            txouts: self.txouts,
            muhash: self.muhash.clone(),
            block_info: self
                .block_info
                .as_ref()
                .map(|b| schema::event::UtxoBlockInfo {
                    prevout_spent: b.prevout_spent,
                    coinbase: b.coinbase,
                    new_outputs_ex_coinbase: b.new_outputs_ex_coinbase,
                    unspendable: b.unspendable,
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::read;
    use serde::de::DeserializeOwned;
    use std::collections::HashMap;
    use std::str::FromStr;

    fn parse<T: DeserializeOwned>(name: &str) -> T {
        let text = read(&format!("bitcoin-core-v30/rpc/{name}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Every fixture file whose name starts with `prefix`.
    fn all(prefix: &str) -> Vec<String> {
        let dir = crate::fixtures::fixture("bitcoin-core-v30/rpc");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
            .collect();
        names.sort();
        assert!(!names.is_empty(), "no fixture {prefix}*");
        names
    }

    #[test]
    fn every_blockchaininfo_fixture_parses() {
        for n in all("getblockchaininfo") {
            let _: BlockchainInfo = parse(&n);
        }
        let b: BlockchainInfo = parse("getblockchaininfo.json");
        assert_eq!(b.blocks, 122);
        assert_eq!(b.warnings.to_vec().len(), 1);
        let g: BlockchainInfo = parse("getblockchaininfo-genesis.json");
        assert!(g.initialblockdownload);
    }

    #[test]
    fn every_networkinfo_fixture_parses_with_exact_fees() {
        for n in all("getnetworkinfo") {
            let i: NetworkInfo = parse(&n);
            assert_eq!(i.relayfee, Amount::from_sat(100));
        }
        let i: NetworkInfo = parse("getnetworkinfo.json");
        assert_eq!((i.connections_in, i.connections_out), (Some(1), Some(1)));
        assert_eq!(i.version, 309_900);
    }

    #[test]
    fn every_chaintips_fixture_parses() {
        for n in all("getchaintips") {
            let tips: Vec<ChainTipAnswer> = parse(&n);
            assert_eq!(
                tips.iter()
                    .filter(|t| t.status == TipStatus::Active)
                    .count(),
                1,
                "{n}"
            );
        }
        let tips: Vec<ChainTipAnswer> = parse("getchaintips-node2-final.json");
        assert_eq!(tips.len(), 4);
        assert_eq!(tips[1].status, TipStatus::Invalid);
        assert_eq!(tips[2].branchlen, 3);
    }

    #[test]
    fn every_mempoolinfo_fixture_parses_with_exact_amounts() {
        for n in all("getmempoolinfo") {
            let _: MempoolInfo = parse(&n);
        }
        let m: MempoolInfo = parse("getmempoolinfo.json");
        assert_eq!(m.size, 6);
        assert_eq!(m.total_fee, Some(Amount::from_sat(20_585)));
        assert_eq!(m.mempoolminfee, Amount::from_sat(100));
    }

    #[test]
    fn rawmempool_fixtures_parse_in_each_shape() {
        let plain: Vec<Txid> = parse("getrawmempool-false.json");
        assert_eq!(plain.len(), 6);
        let seq: RawMempoolWithSequence = parse("getrawmempool-mempool_sequence.json");
        assert_eq!(seq.mempool_sequence, 7);
        assert_eq!(seq.txids, plain);
        let verbose: HashMap<Txid, MempoolEntry> = parse("getrawmempool-true.json");
        assert_eq!(verbose.len(), 6);
        let w: HashMap<Txid, MempoolEntry> = parse("getrawmempool-node2-after-reorg2.json");
        let entry =
            &w[&Txid::from_str("75edd8e7e1c7183cf2e3153d5b5ee09f68678557ab5ff0ae79344c07b8fd7ae3")
                .unwrap()];
        assert_eq!(entry.fees.base, Amount::from_sat(1_830));
        assert_eq!(entry.vsize, 366);
    }

    #[test]
    fn every_blockstats_fixture_parses_in_satoshis() {
        for n in all("getblockstats") {
            let s: BlockStats = parse(&n);
            assert_eq!(s.totalfee, Some(Amount::from_sat(20_585)), "{n}");
            assert_eq!(s.subsidy, Some(Amount::from_sat(5_000_000_000)));
        }
    }

    #[test]
    fn every_blockheader_and_block_fixture_parses() {
        let h: BlockHeaderAnswer = parse("getblockheader-verbose.json");
        assert_eq!(h.height, 111);
        assert_eq!(h.n_tx, 7);
        let inv: BlockHeaderAnswer = parse("getblockheader-invalid-block.json");
        assert_eq!(inv.confirmations, -1);
        let hex: String = parse("getblockheader-hex.json");
        assert_eq!(hex.len(), 160);
        let raw: String = parse("getblock-verbosity0.json");
        let block: bitcoin::Block = crate::sources::rpc::decode_hex(&raw).unwrap();
        assert_eq!(block.block_hash(), h.hash);
        let b: BlockVerbose = parse("getblock-verbosity1.json");
        assert_eq!(b.tx.len(), 7);
        assert_eq!((b.size, b.weight), (1723, 4822));
    }

    #[test]
    fn uptime_and_every_txoutsetinfo_fixture_parse() {
        let up: u64 = parse("uptime.json");
        assert_eq!(up, 54);
        for n in all("gettxoutsetinfo") {
            let _: TxOutSetInfo = parse(&n);
        }
        let t: TxOutSetInfo = parse("gettxoutsetinfo-none-height111-blockinfo.json");
        let ev = t.to_event();
        assert_eq!(ev.total_amount, Amount::from_sat(555_000_000_000));
        let bi = ev.block_info.unwrap();
        assert_eq!(bi.coinbase, Amount::from_sat(5_000_020_585));
        assert_eq!(bi.new_outputs_ex_coinbase, Amount::from_sat(29_999_979_415));
        let m: TxOutSetInfo = parse("gettxoutsetinfo-muhash.json");
        assert!(m.muhash.is_some());
        assert_eq!(
            m.total_unspendable_amount,
            Some(Amount::from_sat(5_000_000_000))
        );
    }

    #[test]
    fn getindexinfo_names_a_synced_coinstatsindex() {
        let i: IndexInfos = parse("getindexinfo.json");
        let c = i["coinstatsindex"];
        assert!(c.synced);
        assert_eq!(c.best_block_height, 122);
        assert!(i.contains_key("txindex"));
    }

    #[test]
    fn utxo_stats_at_height_120_carry_every_field() {
        let t: TxOutSetInfo = parse("gettxoutsetinfo-muhash-height120.json");
        let ev = t.to_event();
        assert_eq!(ev.height, schema::Height(120));
        assert_eq!(
            ev.hash.to_string(),
            "781e7f82dd336115d42da31195c3295574b923712079ed4a197d4bb2b5bd3ee1"
        );
        assert_eq!(ev.total_amount, Amount::from_sat(600_000_000_000));
        assert_eq!(ev.total_unspendable_amount, Amount::from_sat(5_000_000_000));
        assert_eq!(ev.txouts, 130);
        assert_eq!(
            ev.muhash.as_deref(),
            Some("344e9004b21cc6362fcfc6dcb8721c74cf488b26b392c0925f194e8da0ae9350")
        );
        let bi = ev.block_info.unwrap();
        assert_eq!(bi.prevout_spent, Amount::from_sat(4_999_997_060));
        assert_eq!(bi.coinbase, Amount::from_sat(5_000_001_830));
        assert_eq!(bi.new_outputs_ex_coinbase, Amount::from_sat(4_999_995_230));
        assert_eq!(bi.unspendable, Amount::ZERO);
    }
}
