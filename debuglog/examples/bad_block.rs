//! Builds a block that pays its coinbase `OVERPAY` sats more than a `getblocktemplate` answer
//! allows (`bad-cb-amount`), with the template's transactions and witness commitment, mined
//! for regtest. Used to capture the test data in `tests/data/v30-prefixes` (its capture.sh):
//! a node given it by `submitblock` announces it as a high-bandwidth compact block (after the
//! header and PoW checks) before it finds it invalid, so its peers reconstruct it first.
//!
//!     bitcoin-cli getblocktemplate '{"rules":["segwit"]}' | bad_block SCRIPT_PUBKEY_HEX 1

use std::io::Read;
use std::process::ExitCode;

use bitcoin::block::{Header, Version};
use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence,
    Transaction, TxIn, TxMerkleNode, TxOut, Witness,
};
use serde_json::Value;

fn main() -> ExitCode {
    match run() {
        Ok(hex) => {
            println!("{hex}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bad_block: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<String, String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, script, overpay] = args.as_slice() else {
        return Err("usage: bad_block SCRIPT_PUBKEY_HEX OVERPAY_SATS < template.json".into());
    };
    let script = ScriptBuf::from_hex(script).map_err(|e| format!("script: {e}"))?;
    let overpay: u64 = overpay.parse().map_err(|e| format!("overpay: {e}"))?;
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("stdin: {e}"))?;
    let t: Value = serde_json::from_str(&text).map_err(|e| format!("template: {e}"))?;
    let field = |k: &str| t.get(k).ok_or(format!("template has no {k}"));
    let int = |k: &str| field(k)?.as_i64().ok_or(format!("{k} is not an integer"));
    let string = |k: &str| field(k)?.as_str().ok_or(format!("{k} is not a string"));

    let mut txdata = vec![];
    for tx in field("transactions")?.as_array().ok_or("transactions")? {
        let hex = tx.get("data").and_then(Value::as_str).ok_or("tx data")?;
        txdata.push(deserialize_hex::<Transaction>(hex).map_err(|e| format!("tx: {e}"))?);
    }
    let value = u64::try_from(int("coinbasevalue")?).map_err(|e| e.to_string())? + overpay;
    let mut output = vec![TxOut {
        value: Amount::from_sat(value),
        script_pubkey: script,
    }];
    let mut witness = Witness::new();
    if let Ok(c) = string("default_witness_commitment") {
        let script_pubkey = ScriptBuf::from_hex(c).map_err(|e| format!("commitment: {e}"))?;
        output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey,
        });
        witness.push([0u8; 32]);
    }
    let coinbase = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            // BIP34 height, then a tag so the block differs from one the node would mine.
            script_sig: bitcoin::script::Builder::new()
                .push_int(int("height")?)
                .push_slice(b"bmon")
                .into_script(),
            sequence: Sequence::MAX,
            witness,
        }],
        output,
    };
    txdata.insert(0, coinbase);
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(
                i32::try_from(int("version")?).map_err(|e| e.to_string())?,
            ),
            prev_blockhash: string("previousblockhash")?
                .parse::<BlockHash>()
                .map_err(|e| e.to_string())?,
            merkle_root: TxMerkleNode::all_zeros(),
            time: u32::try_from(int("curtime")?).map_err(|e| e.to_string())?,
            bits: CompactTarget::from_unprefixed_hex(string("bits")?).map_err(|e| e.to_string())?,
            nonce: 0,
        },
        txdata,
    };
    block.header.merkle_root = block.compute_merkle_root().ok_or("no transactions")?;
    let target = block.header.target();
    while block.header.validate_pow(target).is_err() {
        block.header.nonce = block.header.nonce.checked_add(1).ok_or("no nonce fits")?;
    }
    Ok(serialize_hex(&block))
}
