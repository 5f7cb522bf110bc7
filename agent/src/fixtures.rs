//! Test-only access to the captures of real Bitcoin Core in the shared fixtures
//! (through `test_support::fixture`).

use std::collections::HashMap;
use std::path::PathBuf;

use bitcoin::{Block, BlockHash};
use serde::Deserialize;

/// Path of a file under the fixtures folder.
pub fn fixture(rel: &str) -> PathBuf {
    test_support::fixture(rel)
}

/// Text of a fixture file.
pub fn read(rel: &str) -> String {
    let p = fixture(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One recorded ZMQ message.
#[derive(Debug, Clone)]
pub struct CapturedMessage {
    pub recv_time_us: i64,
    pub topic: String,
    pub body: Vec<u8>,
    pub seq: u32,
}

#[derive(Deserialize)]
struct Line {
    recv_time_us: i64,
    topic: String,
    body_hex: String,
    seq: u32,
}

/// Every message captured from node `n` (0, 1, 2), in receipt order.
pub fn capture(n: usize) -> Vec<CapturedMessage> {
    read(&format!("bitcoin-core-v30/zmq/node{n}.jsonl"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let line: Line = serde_json::from_str(l).unwrap();
            CapturedMessage {
                recv_time_us: line.recv_time_us,
                topic: line.topic,
                body: bitcoin::hex::FromHex::from_hex(&line.body_hex).unwrap(),
                seq: line.seq,
            }
        })
        .collect()
}

/// Every block sent on `rawblock` by any of the three nodes, by hash.
pub fn block_store() -> HashMap<BlockHash, Block> {
    let mut out = HashMap::new();
    for n in 0..3 {
        for m in capture(n).into_iter().filter(|m| m.topic == "rawblock") {
            let b: Block = bitcoin::consensus::deserialize(&m.body).unwrap();
            out.insert(b.block_hash(), b);
        }
    }
    out
}
