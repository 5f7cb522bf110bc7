//! Core's JSON shapes for transactions and scripts (`decoderawtransaction`, `getrawtransaction`
//! verbose), including descriptor checksums.

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hex::DisplayHex;
use bitcoin::{Address, Amount, Network, Script, Transaction, TxOut};
use serde_json::{json, Value};

/// An amount as Core prints it: BTC as a JSON number.
pub fn btc(a: Amount) -> Value {
    json!(a.to_btc())
}

const INPUT_CHARSET: &str =
    "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ";
const CHECKSUM_CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn poly_mod(c: u64, val: u64) -> u64 {
    let c0 = c >> 35;
    let mut c = ((c & 0x7_ffff_ffff) << 5) ^ val;
    if c0 & 1 != 0 {
        c ^= 0xf5_dee5_1989;
    }
    if c0 & 2 != 0 {
        c ^= 0xa9_fdca_3312;
    }
    if c0 & 4 != 0 {
        c ^= 0x1b_ab10_e32d;
    }
    if c0 & 8 != 0 {
        c ^= 0x37_06b1_677a;
    }
    if c0 & 16 != 0 {
        c ^= 0x64_4d62_6ffd;
    }
    c
}

/// Core's descriptor checksum (`DescriptorChecksum` in script/descriptor.cpp).
pub fn descriptor_checksum(desc: &str) -> String {
    let mut c = 1u64;
    let mut cls = 0u64;
    let mut clscount = 0;
    for ch in desc.chars() {
        let Some(pos) = INPUT_CHARSET.find(ch) else {
            return String::new();
        };
        let pos = pos as u64;
        c = poly_mod(c, pos & 31);
        cls = cls * 3 + (pos >> 5);
        clscount += 1;
        if clscount == 3 {
            c = poly_mod(c, cls);
            cls = 0;
            clscount = 0;
        }
    }
    if clscount > 0 {
        c = poly_mod(c, cls);
    }
    for _ in 0..8 {
        c = poly_mod(c, 0);
    }
    c ^= 1;
    (0..8)
        .map(|j| CHECKSUM_CHARSET[((c >> (5 * (7 - j))) & 31) as usize] as char)
        .collect()
}

fn with_checksum(desc: String) -> String {
    let cs = descriptor_checksum(&desc);
    format!("{desc}#{cs}")
}

/// `scriptPubKey` object: asm, desc, hex, address (when there is one), type.
pub fn script_pubkey_json(script: &Script) -> Value {
    let hex = script.as_bytes().to_lower_hex_string();
    let (asm, kind) = if script.is_p2wsh() || script.is_p2wpkh() || script.is_p2tr() {
        let version = if script.is_p2tr() { "1" } else { "0" };
        let prog = script.as_bytes()[2..].to_lower_hex_string();
        let kind = if script.is_p2wsh() {
            "witness_v0_scripthash"
        } else if script.is_p2wpkh() {
            "witness_v0_keyhash"
        } else {
            "witness_v1_taproot"
        };
        (format!("{version} {prog}"), kind)
    } else if script.is_op_return() {
        let data = script
            .as_bytes()
            .get(2..)
            .unwrap_or_default()
            .to_lower_hex_string();
        (format!("OP_RETURN {data}"), "nulldata")
    } else {
        (hex.clone(), "nonstandard")
    };
    match Address::from_script(script, Network::Regtest) {
        Ok(addr) if kind != "nulldata" => json!({
            "asm": asm,
            "desc": with_checksum(format!("addr({addr})")),
            "hex": hex,
            "address": addr.to_string(),
            "type": kind,
        }),
        _ => json!({
            "asm": asm,
            "desc": with_checksum(format!("raw({hex})")),
            "hex": hex,
            "type": kind,
        }),
    }
}

/// The decoded transaction (`decoderawtransaction` shape, plus `hex`). With `prevouts`, each
/// input also gets its `prevout` and the whole a `fee` (verbosity 2).
pub fn tx_json(tx: &Transaction, prevouts: Option<(&[TxOut], Amount, &[u32])>) -> Value {
    let vin: Vec<Value> = tx
        .input
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let mut o = serde_json::Map::new();
            if tx.is_coinbase() {
                o.insert(
                    "coinbase".into(),
                    json!(input.script_sig.as_bytes().to_lower_hex_string()),
                );
            } else {
                o.insert("txid".into(), json!(input.previous_output.txid.to_string()));
                o.insert("vout".into(), json!(input.previous_output.vout));
                o.insert(
                    "scriptSig".into(),
                    json!({"asm": "", "hex": input.script_sig.as_bytes().to_lower_hex_string()}),
                );
            }
            if !input.witness.is_empty() {
                let w: Vec<String> = input
                    .witness
                    .iter()
                    .map(|x| x.to_lower_hex_string())
                    .collect();
                o.insert("txinwitness".into(), json!(w));
            }
            if let Some((spent, _, heights)) = prevouts {
                if let Some(p) = spent.get(i) {
                    o.insert(
                        "prevout".into(),
                        json!({
                            "generated": false,
                            "height": heights.get(i).copied().unwrap_or(0),
                            "value": btc(p.value),
                            "scriptPubKey": script_pubkey_json(&p.script_pubkey),
                        }),
                    );
                }
            }
            o.insert("sequence".into(), json!(input.sequence.0));
            Value::Object(o)
        })
        .collect();
    let vout: Vec<Value> = tx
        .output
        .iter()
        .enumerate()
        .map(|(n, o)| json!({"value": btc(o.value), "n": n, "scriptPubKey": script_pubkey_json(&o.script_pubkey)}))
        .collect();
    let mut m = serde_json::Map::new();
    m.insert("txid".into(), json!(tx.compute_txid().to_string()));
    m.insert("hash".into(), json!(tx.compute_wtxid().to_string()));
    m.insert("version".into(), json!(tx.version.0));
    m.insert("size".into(), json!(tx.total_size()));
    m.insert("vsize".into(), json!(tx.vsize()));
    m.insert("weight".into(), json!(tx.weight().to_wu()));
    m.insert("locktime".into(), json!(tx.lock_time.to_consensus_u32()));
    m.insert("vin".into(), json!(vin));
    m.insert("vout".into(), json!(vout));
    if let Some((_, fee, _)) = prevouts {
        if !tx.is_coinbase() {
            m.insert("fee".into(), btc(fee));
        }
    }
    m.insert("hex".into(), json!(serialize_hex(tx)));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_checksum_matches_core() {
        assert_eq!(
            descriptor_checksum("addr(bcrt1qk07myy8tztyjzc3ammqjf2z6kpn7k7lue6t3e3)"),
            "wl6y07f0"
        );
        assert_eq!(
            descriptor_checksum(
                "rawtr(93620267d74eb0f9955fd88fa4bed2c9228c3b7cc39eceff65965461490792ee)"
            ),
            "x38tfqlv"
        );
    }
}
