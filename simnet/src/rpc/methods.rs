//! The RPC methods: each answer has the keys and JSON types of Core v30's (see the fixtures in
//! `bitcoin-core-v30/rpc/`), computed from the node's state.

use std::collections::HashMap;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::hex::DisplayHex;
use bitcoin::{Amount, BlockHash, Txid};
use serde_json::{json, Value};

use super::txjson::{btc, tx_json};
use crate::chain::{chainwork_hex, BlockEntry, BlockRef};
use crate::mempool::MempoolEntry;
use crate::miner::{select_template_txs, witness_commitment_script, REGTEST_BITS};
use crate::node::NodeState;
use crate::zmq::{Topic, ZmqEndpoints};

/// Weight the transactions of a template may use: the block limit less Core v30's default
/// `-blockreservedweight` (8000 WU kept for the header and the coinbase).
const TEMPLATE_TX_WEIGHT: u64 = 4_000_000 - 8_000;
const TARGET_HEX: &str = "7fffff0000000000000000000000000000000000000000000000000000000000";
const DIFFICULTY: f64 = 4.656542373906925e-10;
const PRERELEASE_WARNING: &str =
    "This is a pre-release test build - use at your own risk - do not use for mining or merchant applications";

/// A JSON-RPC error as Core returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// Core's `RPCErrorCode`.
    pub code: i64,
    /// Message.
    pub message: String,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }
    fn invalid_param(message: impl Into<String>) -> RpcError {
        RpcError::new(-8, message)
    }
    fn type_error(message: impl Into<String>) -> RpcError {
        RpcError::new(-3, message)
    }
}

/// Positional or named parameters.
pub struct Params<'a> {
    raw: Option<&'a Value>,
}

impl<'a> Params<'a> {
    /// Wraps a request's `params` member.
    pub fn new(raw: Option<&'a Value>) -> Params<'a> {
        Params { raw }
    }

    fn get(&self, idx: usize, name: &str) -> Option<&'a Value> {
        let v = match self.raw {
            Some(Value::Array(a)) => a.get(idx),
            Some(Value::Object(o)) => o.get(name),
            _ => None,
        };
        v.filter(|v| !v.is_null())
    }

    fn hash<H: std::str::FromStr>(&self, idx: usize, name: &str) -> Result<H, RpcError> {
        let v = self
            .get(idx, name)
            .ok_or_else(|| RpcError::new(-1, format!("missing parameter {name}")))?;
        let s = v.as_str().ok_or_else(|| {
            RpcError::type_error(format!(
                "JSON value of type {} is not of expected type string",
                type_name(v)
            ))
        })?;
        if s.len() != 64 {
            return Err(RpcError::invalid_param(format!(
                "{name} must be of length 64 (not {}, for '{s}')",
                s.len()
            )));
        }
        s.parse::<H>().map_err(|_| {
            RpcError::invalid_param(format!("{name} must be hexadecimal string (not '{s}')"))
        })
    }

    fn bool_or_int(&self, idx: usize, name: &str, default: i64) -> Result<i64, RpcError> {
        match self.get(idx, name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(i64::from(*b)),
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| RpcError::type_error("expected an integer")),
            Some(v) => Err(RpcError::type_error(format!(
                "JSON value of type {} is not of expected type bool",
                type_name(v)
            ))),
        }
    }

    fn bool(&self, idx: usize, name: &str, default: bool) -> Result<bool, RpcError> {
        match self.get(idx, name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(RpcError::type_error(format!(
                "JSON value of type {} is not of expected type bool",
                type_name(v)
            ))),
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What an RPC answer needs beyond the node state.
pub struct CallCtx<'a> {
    /// The node's ZMQ endpoints.
    pub zmq: &'a ZmqEndpoints,
    /// Seconds since the node started.
    pub uptime_s: u64,
}

/// Methods this server answers.
pub const METHODS: &[&str] = &[
    "getblockchaininfo",
    "getnetworkinfo",
    "getchaintips",
    "getmempoolinfo",
    "getrawmempool",
    "getblockstats",
    "getblockhash",
    "getblock",
    "getblockheader",
    "getbestblockhash",
    "getblockcount",
    "uptime",
    "getpeerinfo",
    "getblocktemplate",
    "gettxoutsetinfo",
    "getrawtransaction",
    "getmempoolentry",
    "getzmqnotifications",
    "getconnectioncount",
    "getindexinfo",
];

/// Answers one call.
pub fn call(
    node: &NodeState,
    ctx: &CallCtx<'_>,
    method: &str,
    p: &Params<'_>,
) -> Result<Value, RpcError> {
    match method {
        "getblockchaininfo" => Ok(blockchaininfo(node)),
        "getnetworkinfo" => Ok(networkinfo(node)),
        "getchaintips" => Ok(chaintips(node)),
        "getmempoolinfo" => Ok(mempoolinfo(node)),
        "getrawmempool" => rawmempool(node, p),
        "getblockstats" => blockstats(node, p),
        "getblockhash" => {
            let h = p.get(0, "height").and_then(Value::as_i64).ok_or_else(|| RpcError::type_error("height must be a number"))?;
            u32::try_from(h)
                .ok()
                .and_then(|h| node.chain.at_height(h))
                .map(|b| json!(b.to_string()))
                .ok_or_else(|| RpcError::invalid_param("Block height out of range"))
        }
        "getblock" => getblock(node, p),
        "getblockheader" => {
            let hash: BlockHash = p.hash(0, "blockhash")?;
            let e = node.chain.get(&hash).ok_or_else(|| RpcError::new(-5, "Block not found"))?;
            if p.bool(1, "verbose", true)? {
                Ok(Value::Object(header_json(node, e)))
            } else {
                Ok(json!(serialize_hex(&e.block.block.header)))
            }
        }
        "getbestblockhash" => Ok(json!(node.chain.tip().to_string())),
        // -txindex -coinstatsindex, both synced to the tip (like the fixtures' nodes).
        "getindexinfo" => {
            let h = node.chain.height();
            Ok(json!({
                "txindex": {"synced": true, "best_block_height": h},
                "coinstatsindex": {"synced": true, "best_block_height": h},
            }))
        }
        "getblockcount" => Ok(json!(node.chain.height())),
        "getconnectioncount" => Ok(json!(connected_peers(node).len())),
        "uptime" => Ok(json!(ctx.uptime_s)),
        "getpeerinfo" => Ok(peerinfo(node)),
        "getblocktemplate" => blocktemplate(node, p),
        "gettxoutsetinfo" => txoutsetinfo(node, p),
        "getrawtransaction" => rawtransaction(node, p),
        "getmempoolentry" => {
            let txid: Txid = p.hash(0, "txid")?;
            let e = node.mempool.get(&txid).ok_or_else(|| RpcError::new(-5, "Transaction not in mempool"))?;
            Ok(mempool_entry_json(node, e))
        }
        "getzmqnotifications" => Ok(Value::Array(
            Topic::ALL
                .iter()
                .map(|t| json!({"type": format!("pub{}", t.name()), "address": ctx.zmq.get(*t), "hwm": 1000}))
                .collect(),
        )),
        _ => Err(RpcError::new(-32601, "Method not found")),
    }
}

fn warnings(node: &NodeState) -> Value {
    if node.version % 100 == 99 {
        json!([PRERELEASE_WARNING])
    } else {
        json!([])
    }
}

fn blockchaininfo(node: &NodeState) -> Value {
    let tip = node.chain.tip_entry();
    json!({
        "chain": "regtest",
        "blocks": node.chain.height(),
        "headers": node.chain.best_header_height(),
        "bestblockhash": tip.block.hash.to_string(),
        "bits": format!("{REGTEST_BITS:08x}"),
        "target": TARGET_HEX,
        "difficulty": DIFFICULTY,
        "time": tip.block.block.header.time,
        "mediantime": tip.median_time,
        "verificationprogress": 1,
        "initialblockdownload": false,
        "chainwork": chainwork_hex(tip.block.height),
        "size_on_disk": node.chain.size_on_disk(),
        "pruned": false,
        "warnings": warnings(node),
    })
}

fn connected_peers(node: &NodeState) -> Vec<&crate::node::Peer> {
    if node.partitioned {
        Vec::new()
    } else {
        node.peers.iter().collect()
    }
}

fn networkinfo(node: &NodeState) -> Value {
    let peers = connected_peers(node);
    let inbound = peers.iter().filter(|p| !p.outbound).count();
    let net = |name: &str, ok: bool| json!({"name": name, "limited": !ok, "reachable": ok, "proxy": "", "proxy_randomize_credentials": false});
    json!({
        "version": node.version,
        "subversion": node.subversion,
        "protocolversion": 70016,
        "localservices": "0000000000000c09",
        "localservicesnames": ["NETWORK", "WITNESS", "NETWORK_LIMITED", "P2P_V2"],
        "localrelay": !node.policy.blocks_only,
        "timeoffset": 0,
        "networkactive": !node.partitioned,
        "connections": peers.len(),
        "connections_in": inbound,
        "connections_out": peers.len() - inbound,
        "networks": [net("ipv4", true), net("ipv6", true), net("onion", false), net("i2p", false), net("cjdns", false)],
        "relayfee": btc(node.policy.min_relay_fee.per_kvb()),
        "incrementalfee": btc(node.policy.incremental_relay_fee.per_kvb()),
        "localaddresses": [],
        "warnings": warnings(node),
    })
}

fn chaintips(node: &NodeState) -> Value {
    Value::Array(
        node.chain
            .tips()
            .into_iter()
            .map(|t| json!({"height": t.height, "hash": t.hash.to_string(), "branchlen": t.branchlen, "status": t.status}))
            .collect(),
    )
}

fn mempoolinfo(node: &NodeState) -> Value {
    let m = &node.mempool;
    json!({
        "loaded": true,
        "size": m.len(),
        "bytes": m.total_vsize(),
        "usage": m.entries().map(|e| e.weight * 2 + 400).sum::<u64>(),
        "total_fee": btc(m.total_fee()),
        "maxmempool": node.policy.max_mempool_vbytes,
        "mempoolminfee": btc(node.min_fee().per_kvb()),
        "minrelaytxfee": btc(node.policy.min_relay_fee.per_kvb()),
        "incrementalrelayfee": btc(node.policy.incremental_relay_fee.per_kvb()),
        "unbroadcastcount": 0,
        "fullrbf": true,
        "permitbaremultisig": true,
        "maxdatacarriersize": 100_000,
        "limitclustercount": 64,
        "limitclustersize": 101_000,
    })
}

fn mempool_entry_json(node: &NodeState, e: &MempoolEntry) -> Value {
    let m = &node.mempool;
    let anc = m.closure(&e.txid, true);
    let desc = m.closure(&e.txid, false);
    let sum = |ids: &[Txid]| -> (u64, Amount) {
        ids.iter()
            .filter_map(|t| m.get(t))
            .fold((0, Amount::ZERO), |(s, f), x| (s + x.vsize, f + x.fee))
    };
    let (anc_size, anc_fee) = sum(&anc);
    let (desc_size, desc_fee) = sum(&desc);
    let ids = |v: Vec<Txid>| -> Vec<String> { v.into_iter().map(|t| t.to_string()).collect() };
    json!({
        "vsize": e.vsize,
        "weight": e.weight,
        "time": e.time,
        "height": e.height,
        "descendantcount": desc.len(),
        "descendantsize": desc_size,
        "ancestorcount": anc.len(),
        "ancestorsize": anc_size,
        "wtxid": e.wtxid.to_string(),
        "chunkweight": e.weight,
        "fees": {
            "base": btc(e.fee),
            "modified": btc(e.fee),
            "ancestor": btc(anc_fee),
            "descendant": btc(desc_fee),
            "chunk": btc(e.fee),
        },
        "depends": ids(m.parents(&e.txid)),
        "spentby": ids(m.children(&e.txid)),
        "bip125-replaceable": true,
        "unbroadcast": false,
    })
}

fn rawmempool(node: &NodeState, p: &Params<'_>) -> Result<Value, RpcError> {
    let verbose = p.bool(0, "verbose", false)?;
    let with_seq = p.bool(1, "mempool_sequence", false)?;
    if verbose && with_seq {
        return Err(RpcError::invalid_param(
            "Verbose results cannot contain mempool sequence values.",
        ));
    }
    let m = &node.mempool;
    if verbose {
        let mut o = serde_json::Map::new();
        for e in m.entries() {
            o.insert(e.txid.to_string(), mempool_entry_json(node, e));
        }
        return Ok(Value::Object(o));
    }
    let ids: Vec<String> = m.entries().map(|e| e.txid.to_string()).collect();
    if with_seq {
        Ok(json!({"txids": ids, "mempool_sequence": m.sequence()}))
    } else {
        Ok(json!(ids))
    }
}

fn lookup_block<'n>(node: &'n NodeState, v: Option<&Value>) -> Result<&'n BlockEntry, RpcError> {
    match v {
        Some(Value::Number(n)) => {
            let h = n.as_i64().unwrap_or(-1);
            if h < 0 || h > i64::from(node.chain.height()) {
                return Err(RpcError::invalid_param(format!(
                    "Target block height {h} after current tip {}",
                    node.chain.height()
                )));
            }
            node.chain
                .at_height(h as u32)
                .and_then(|hash| node.chain.get(&hash))
                .ok_or_else(|| RpcError::new(-5, "Block not found"))
        }
        Some(Value::String(s)) => {
            let hash: BlockHash = s.parse().map_err(|_| {
                RpcError::invalid_param(format!(
                    "hash_or_height must be hexadecimal string (not '{s}')"
                ))
            })?;
            node.chain
                .get(&hash)
                .ok_or_else(|| RpcError::new(-5, "Block not found"))
        }
        _ => Err(RpcError::type_error(
            "hash_or_height must be a height or a block hash",
        )),
    }
}

fn header_json(node: &NodeState, e: &BlockEntry) -> serde_json::Map<String, Value> {
    let b = &e.block;
    let h = &b.block.header;
    let active = node.chain.is_active(&b.hash);
    let confirmations: i64 = if active {
        i64::from(node.chain.height() - b.height) + 1
    } else {
        -1
    };
    let mut m = serde_json::Map::new();
    m.insert("hash".into(), json!(b.hash.to_string()));
    m.insert("confirmations".into(), json!(confirmations));
    m.insert("height".into(), json!(b.height));
    m.insert("version".into(), json!(h.version.to_consensus()));
    m.insert(
        "versionHex".into(),
        json!(format!("{:08x}", h.version.to_consensus())),
    );
    m.insert("merkleroot".into(), json!(h.merkle_root.to_string()));
    m.insert("time".into(), json!(h.time));
    m.insert("mediantime".into(), json!(e.median_time));
    m.insert("nonce".into(), json!(h.nonce));
    m.insert(
        "bits".into(),
        json!(format!("{:08x}", h.bits.to_consensus())),
    );
    m.insert("target".into(), json!(TARGET_HEX));
    m.insert("difficulty".into(), json!(DIFFICULTY));
    m.insert("chainwork".into(), json!(chainwork_hex(b.height)));
    m.insert("nTx".into(), json!(b.block.txdata.len()));
    if b.height > 0 {
        m.insert("previousblockhash".into(), json!(b.prev().to_string()));
    }
    if active {
        if let Some(next) = node.chain.at_height(b.height + 1) {
            m.insert("nextblockhash".into(), json!(next.to_string()));
        }
    }
    m
}

fn getblock(node: &NodeState, p: &Params<'_>) -> Result<Value, RpcError> {
    let hash: BlockHash = p.hash(0, "blockhash")?;
    let verbosity = p.bool_or_int(1, "verbosity", 1)?;
    let e = node
        .chain
        .get(&hash)
        .ok_or_else(|| RpcError::new(-5, "Block not found"))?;
    let b = &e.block;
    if verbosity <= 0 {
        return Ok(json!(serialize_hex(&b.block)));
    }
    let mut m = header_json(node, e);
    let total = b.block.total_size();
    let weight = b.block.weight().to_wu() as usize;
    m.insert("strippedsize".into(), json!((weight - total) / 3));
    m.insert("size".into(), json!(total));
    m.insert("weight".into(), json!(weight));
    let txs: Vec<Value> = if verbosity == 1 {
        b.block
            .txdata
            .iter()
            .map(|t| json!(t.compute_txid().to_string()))
            .collect()
    } else {
        b.block
            .txdata
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let heights = vec![0u32; t.input.len()];
                let spent = b.spent.get(i).cloned().unwrap_or_default();
                let fee = b.fees.get(i).copied().unwrap_or(Amount::ZERO);
                let prev = if verbosity >= 3 {
                    Some((spent.as_slice(), fee, heights.as_slice()))
                } else {
                    None
                };
                let mut j = tx_json(t, prev);
                if verbosity == 2 && !t.is_coinbase() {
                    if let Value::Object(o) = &mut j {
                        o.insert("fee".into(), btc(fee));
                    }
                }
                j
            })
            .collect()
    };
    m.insert("tx".into(), Value::Array(txs));
    Ok(Value::Object(m))
}

fn median(v: &mut [u64]) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let n = v.len();
    if n & 1 == 0 {
        (v[n / 2 - 1] + v[n / 2]) / 2
    } else {
        v[n / 2]
    }
}

/// `getblockstats` for a block, computed like Core's (coinbase excluded from sizes and fees).
pub fn block_stats(e: &BlockEntry) -> Value {
    let b: &BlockRef = &e.block;
    let mut fees = Vec::new();
    let mut feerates: Vec<(u64, u64)> = Vec::new();
    let mut sizes = Vec::new();
    let (mut ins, mut outs, mut total_size, mut total_weight, mut total_out) =
        (0u64, 0u64, 0u64, 0u64, Amount::ZERO);
    let (mut sw_size, mut sw_weight, mut swtxs) = (0u64, 0u64, 0u64);
    let (mut utxo_inc, mut utxo_size_inc, mut utxo_inc_actual, mut utxo_size_inc_actual) =
        (0i64, 0i64, 0i64, 0i64);
    const OVERHEAD: i64 = 41;
    for (i, tx) in b.block.txdata.iter().enumerate() {
        outs += tx.output.len() as u64;
        for o in &tx.output {
            let sz = bitcoin::consensus::serialize(o).len() as i64 + OVERHEAD;
            utxo_inc += 1;
            utxo_size_inc += sz;
            if !o.script_pubkey.is_op_return() {
                utxo_inc_actual += 1;
                utxo_size_inc_actual += sz;
            }
        }
        if tx.is_coinbase() {
            continue;
        }
        ins += tx.input.len() as u64;
        for o in b.spent.get(i).map(Vec::as_slice).unwrap_or_default() {
            let sz = bitcoin::consensus::serialize(o).len() as i64 + OVERHEAD;
            utxo_inc -= 1;
            utxo_size_inc -= sz;
            utxo_inc_actual -= 1;
            utxo_size_inc_actual -= sz;
        }
        total_out += tx.output.iter().map(|o| o.value).sum::<Amount>();
        let size = tx.total_size() as u64;
        let weight = tx.weight().to_wu();
        sizes.push(size);
        total_size += size;
        total_weight += weight;
        if tx.input.iter().any(|inp| !inp.witness.is_empty()) {
            swtxs += 1;
            sw_size += size;
            sw_weight += weight;
        }
        let fee = b.fees.get(i).copied().unwrap_or(Amount::ZERO).to_sat();
        fees.push(fee);
        let vsize = tx.vsize() as u64;
        feerates.push((fee / vsize.max(1), weight));
    }
    let n = fees.len() as u64;
    let totalfee: u64 = fees.iter().sum();
    feerates.sort_unstable();
    let percentiles: Vec<u64> = if feerates.is_empty() {
        vec![0; 5]
    } else {
        [0.10, 0.25, 0.50, 0.75, 0.90]
            .iter()
            .map(|q| {
                let goal = (total_weight as f64 * q) as u64;
                let mut acc = 0;
                for (rate, w) in &feerates {
                    acc += w;
                    if acc >= goal {
                        return *rate;
                    }
                }
                feerates.last().map(|r| r.0).unwrap_or(0)
            })
            .collect()
    };
    let rates: Vec<u64> = feerates.iter().map(|r| r.0).collect();
    json!({
        "avgfee": totalfee.checked_div(n).unwrap_or(0),
        "avgfeerate": (totalfee * 4).checked_div(total_weight).unwrap_or(0),
        "avgtxsize": total_size.checked_div(n).unwrap_or(0),
        "blockhash": b.hash.to_string(),
        "feerate_percentiles": percentiles,
        "height": b.height,
        "ins": ins,
        "maxfee": fees.iter().max().copied().unwrap_or(0),
        "maxfeerate": rates.iter().max().copied().unwrap_or(0),
        "maxtxsize": sizes.iter().max().copied().unwrap_or(0),
        "medianfee": median(&mut fees.clone()),
        "mediantime": e.median_time,
        "mediantxsize": median(&mut sizes.clone()),
        "minfee": fees.iter().min().copied().unwrap_or(0),
        "minfeerate": rates.iter().min().copied().unwrap_or(0),
        "mintxsize": sizes.iter().min().copied().unwrap_or(0),
        "outs": outs,
        "subsidy": schema::subsidy::subsidy(schema::Height(b.height), bitcoin::Network::Regtest).to_sat(),
        "swtotal_size": sw_size,
        "swtotal_weight": sw_weight,
        "swtxs": swtxs,
        "time": b.block.header.time,
        "total_out": total_out.to_sat(),
        "total_size": total_size,
        "total_weight": total_weight,
        "totalfee": totalfee,
        "txs": b.block.txdata.len(),
        "utxo_increase": utxo_inc,
        "utxo_size_inc": utxo_size_inc,
        "utxo_increase_actual": utxo_inc_actual,
        "utxo_size_inc_actual": utxo_size_inc_actual,
    })
}

fn blockstats(node: &NodeState, p: &Params<'_>) -> Result<Value, RpcError> {
    let e = lookup_block(node, p.get(0, "hash_or_height"))?;
    let mut v = block_stats(e);
    if let Value::Object(o) = &mut v {
        if let Some(Value::Array(wanted)) = p.get(1, "stats") {
            let keep: Vec<&str> = wanted.iter().filter_map(Value::as_str).collect();
            o.retain(|k, _| keep.contains(&k.as_str()));
        }
    }
    Ok(v)
}

fn peerinfo(node: &NodeState) -> Value {
    let now = node.clock.now_secs();
    let height = node.chain.height();
    Value::Array(
        connected_peers(node)
            .into_iter()
            .map(|p| {
                let ping = (p.delay_ms as f64 * 2.0 / 1000.0).max(0.00005);
                json!({
                    "id": p.id,
                    "addr": format!("127.0.0.1:{}", 28000 + p.id),
                    "addrbind": "127.0.0.1:54854",
                    "network": "not_publicly_routable",
                    "services": "0000000000000c09",
                    "servicesnames": ["NETWORK", "WITNESS", "NETWORK_LIMITED", "P2P_V2"],
                    "relaytxes": p.relays_txs,
                    "last_inv_sequence": node.mempool.sequence(),
                    "inv_to_send": 0,
                    "lastsend": now,
                    "lastrecv": now,
                    "last_transaction": now,
                    "last_block": node.chain.tip_entry().block.block.header.time,
                    "bytessent": 1000,
                    "bytesrecv": 1000,
                    "conntime": node.started_at,
                    "timeoffset": 0,
                    "pingtime": ping,
                    "minping": ping,
                    "version": 70016,
                    "subver": p.subver,
                    "inbound": !p.outbound,
                    "bip152_hb_to": true,
                    "bip152_hb_from": false,
                    "startingheight": 0,
                    "presynced_headers": -1,
                    "synced_headers": height,
                    "synced_blocks": height,
                    "inflight": [],
                    "addr_relay_enabled": true,
                    "addr_processed": 0,
                    "addr_rate_limited": 0,
                    "permissions": [],
                    "minfeefilter": btc(p.fee_filter.per_kvb()),
                    "bytessent_per_msg": {
                        "feefilter": 58, "getaddr": 33, "getdata": 440, "getheaders": 308, "headers": 22,
                        "ping": 29, "pong": 29, "sendaddrv2": 33, "sendcmpct": 60, "sendheaders": 33,
                        "verack": 33, "version": 136, "wtxidrelay": 33
                    },
                    "bytesrecv_per_msg": {
                        "block": 1345, "cmpctblock": 29389, "feefilter": 58, "getheaders": 250, "headers": 530,
                        "inv": 296, "ping": 29, "pong": 29, "sendaddrv2": 33, "sendcmpct": 30, "tx": 1600,
                        "verack": 33, "version": 136, "wtxidrelay": 33
                    },
                    "connection_type": if p.outbound { "manual" } else { "inbound" },
                    "transport_protocol_type": "v2",
                    "session_id": sha256::Hash::hash(format!("{}-{}", node.name, p.name).as_bytes()).to_byte_array().to_lower_hex_string(),
                })
            })
            .collect(),
    )
}

fn blocktemplate(node: &NodeState, p: &Params<'_>) -> Result<Value, RpcError> {
    let has_segwit = p
        .get(0, "template_request")
        .and_then(|r| r.get("rules"))
        .and_then(Value::as_array)
        .map(|rules| rules.iter().any(|r| r.as_str() == Some("segwit")))
        .unwrap_or(false);
    if !has_segwit {
        return Err(RpcError::invalid_param(
            "getblocktemplate must be called with the segwit rule set (call with {\"rules\": [\"segwit\"]})",
        ));
    }
    let tip = node.chain.tip_entry();
    let picked = select_template_txs(&node.chain, &node.mempool, TEMPLATE_TX_WEIGHT);
    let mut index: HashMap<Txid, usize> = HashMap::new();
    let mut txs = Vec::new();
    let mut fees = Amount::ZERO;
    for (i, s) in picked.iter().enumerate() {
        let txid = s.tx.compute_txid();
        index.insert(txid, i + 1);
        let depends: Vec<usize> =
            s.tx.input
                .iter()
                .filter_map(|inp| index.get(&inp.previous_output.txid).copied())
                .collect();
        fees += s.fee;
        txs.push(json!({
            "data": serialize_hex(s.tx.as_ref()),
            "txid": txid.to_string(),
            "hash": s.tx.compute_wtxid().to_string(),
            "depends": depends,
            "fee": s.fee.to_sat(),
            "sigops": 0,
            "weight": s.tx.weight().to_wu(),
        }));
    }
    let height = tip.block.height + 1;
    let value = schema::subsidy::subsidy(schema::Height(height), bitcoin::Network::Regtest) + fees;
    let tmp =
        crate::miner::build_block_unground(&node.name, tip.block.hash, tip.block.height, picked);
    let commitment = witness_commitment_script(&tmp)
        .as_bytes()
        .to_lower_hex_string();
    let now = node.clock.now_secs();
    Ok(json!({
        "capabilities": ["proposal"],
        "version": 0x2000_0000,
        "rules": ["csv", "!segwit", "taproot"],
        "vbavailable": {},
        "vbrequired": 0,
        "previousblockhash": tip.block.hash.to_string(),
        "transactions": txs,
        "coinbaseaux": {},
        "coinbasevalue": value.to_sat(),
        "longpollid": format!("{}{}", tip.block.hash, node.mempool.sequence()),
        "target": TARGET_HEX,
        "mintime": tip.median_time + 1,
        "mutable": ["time", "transactions", "prevblock"],
        "noncerange": "00000000ffffffff",
        "sigoplimit": 80000,
        "sizelimit": 4_000_000,
        "weightlimit": 4_000_000,
        "curtime": now.max(u64::from(tip.median_time) + 1),
        "bits": format!("{REGTEST_BITS:08x}"),
        "height": height,
        "default_witness_commitment": commitment,
    }))
}

fn txoutsetinfo(node: &NodeState, p: &Params<'_>) -> Result<Value, RpcError> {
    let hash_type = p
        .get(0, "hash_type")
        .and_then(Value::as_str)
        .unwrap_or("hash_serialized_3");
    if !matches!(hash_type, "hash_serialized_3" | "muhash" | "none") {
        return Err(RpcError::invalid_param(format!(
            "'{hash_type}' is not a valid hash_type"
        )));
    }
    let target = p.get(1, "hash_or_height");
    if hash_type == "hash_serialized_3" && target.is_some() {
        return Err(RpcError::invalid_param(
            "hash_serialized_3 hash type cannot be queried for a specific block",
        ));
    }
    let e = match target {
        Some(v) => lookup_block(node, Some(v))?,
        None => node.chain.tip_entry(),
    };
    let stats = e
        .stats
        .clone()
        .ok_or_else(|| RpcError::new(-32603, "Unable to read UTXO set"))?;
    let mut m = serde_json::Map::new();
    m.insert("height".into(), json!(e.block.height));
    m.insert("bestblock".into(), json!(e.block.hash.to_string()));
    m.insert("txouts".into(), json!(stats.txouts));
    m.insert("bogosize".into(), json!(stats.bogosize));
    match hash_type {
        "hash_serialized_3" => {
            let h = sha256::Hash::hash(&stats.digest);
            m.insert(
                "hash_serialized_3".into(),
                json!(h.to_byte_array().to_lower_hex_string()),
            );
        }
        "muhash" => {
            m.insert("muhash".into(), json!(stats.digest.to_lower_hex_string()));
        }
        _ => {}
    }
    m.insert("total_amount".into(), btc(stats.total_amount));
    if hash_type == "hash_serialized_3" {
        let txs: std::collections::HashSet<Txid> =
            node.chain.utxos().map(|(op, _)| op.txid).collect();
        m.insert("transactions".into(), json!(txs.len()));
        m.insert("disk_size".into(), json!(0));
    } else {
        m.insert(
            "total_unspendable_amount".into(),
            btc(stats.total_unspendable),
        );
        let genesis = if stats.genesis {
            stats.unspendable
        } else {
            Amount::ZERO
        };
        let scripts = if stats.genesis {
            Amount::ZERO
        } else {
            stats.unspendable
        };
        m.insert(
            "block_info".into(),
            json!({
                "prevout_spent": btc(stats.prevout_spent),
                "coinbase": btc(stats.coinbase),
                "new_outputs_ex_coinbase": btc(stats.new_outputs_ex_coinbase),
                "unspendable": btc(stats.unspendable),
                "unspendables": {
                    "genesis_block": btc(genesis),
                    "bip30": btc(Amount::ZERO),
                    "scripts": btc(scripts),
                    "unclaimed_rewards": btc(Amount::ZERO),
                },
            }),
        );
    }
    Ok(Value::Object(m))
}

fn rawtransaction(node: &NodeState, p: &Params<'_>) -> Result<Value, RpcError> {
    let txid: Txid = p.hash(0, "txid")?;
    let verbosity = p.bool_or_int(1, "verbose", 0)?;
    let not_found = || {
        RpcError::new(-5, "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.")
    };
    if let Some(e) = node.mempool.get(&txid) {
        return Ok(if verbosity <= 0 {
            json!(serialize_hex(e.tx.as_ref()))
        } else {
            tx_json(&e.tx, None)
        });
    }
    let block_hash = match p.get(2, "blockhash") {
        Some(_) => Some(p.hash::<BlockHash>(2, "blockhash")?),
        None => node.chain.tx_block(&txid),
    };
    let entry = block_hash
        .and_then(|h| node.chain.get(&h))
        .ok_or_else(not_found)?;
    let b = &entry.block;
    let (i, tx) = b
        .block
        .txdata
        .iter()
        .enumerate()
        .find(|(_, t)| t.compute_txid() == txid)
        .ok_or_else(not_found)?;
    if verbosity <= 0 {
        return Ok(json!(serialize_hex(tx)));
    }
    let spent = b.spent.get(i).cloned().unwrap_or_default();
    let heights = vec![0u32; tx.input.len()];
    let fee = b.fees.get(i).copied().unwrap_or(Amount::ZERO);
    let prev = if verbosity >= 2 && !tx.is_coinbase() {
        Some((spent.as_slice(), fee, heights.as_slice()))
    } else {
        None
    };
    let mut j = tx_json(tx, prev);
    if let Value::Object(o) = &mut j {
        let active = node.chain.is_active(&b.hash);
        o.insert("blockhash".into(), json!(b.hash.to_string()));
        o.insert(
            "confirmations".into(),
            json!(if active {
                node.chain.height() - b.height + 1
            } else {
                0
            }),
        );
        o.insert("time".into(), json!(b.block.header.time));
        o.insert("blocktime".into(), json!(b.block.header.time));
        if p.get(2, "blockhash").is_some() {
            o.insert("in_active_chain".into(), json!(active));
        }
    }
    Ok(j)
}
