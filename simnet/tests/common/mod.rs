//! Shared helpers for simnet's integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use simnet::{Fleet, NodeEndpoints, Scenario, TruthSink};

/// A short 3-node scenario: blocks every 400 ms (at most 4 txs each, so the mempool stays
/// non-empty), 25 txs/s, a depth-2 reorg by node0, and a malformed ZMQ burst on node1.
pub const SHORT: &str = r#"
seed = 11
duration_ms = 3000
[blocks]
interval_ms = 400
distribution = "fixed"
max_txs = 4
[txs]
rate_per_s = 25.0
[[nodes]]
name = "node0"
mines = true
[[nodes]]
name = "node1"
[[nodes]]
name = "node2"
extra_delay_ms = 10
[[links]]
a = "node1"
b = "node0"
delay_ms = 20
[[links]]
a = "node2"
b = "node1"
delay_ms = 30
[[events]]
kind = "reorg"
at_ms = 1900
depth = 2
[[events]]
kind = "malformed_zmq"
node = "node1"
at_ms = 2500
"#;

pub async fn start(toml: &str) -> Fleet {
    let scenario = Scenario::from_toml(toml).expect("scenario parses");
    Fleet::start(scenario, TruthSink::memory())
        .await
        .expect("fleet starts")
}

pub async fn finish(fleet: &Fleet) {
    tokio::time::timeout(Duration::from_secs(30), fleet.finished())
        .await
        .expect("scenario ends in time");
}

/// A JSON-RPC 1.0 call; returns (HTTP status, body).
pub async fn rpc_raw(node: &NodeEndpoints, body: Value, password: &str) -> (u16, String) {
    let client = reqwest::Client::new();
    let r = client
        .post(&node.rpc_url)
        .basic_auth(&node.rpc_user, Some(password))
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("rpc answers");
    let status = r.status().as_u16();
    (status, r.text().await.expect("rpc body"))
}

/// The `result` of a call, panicking on an error.
pub async fn rpc(node: &NodeEndpoints, method: &str, params: Value) -> Value {
    let (status, body) = rpc_raw(
        node,
        json!({"method": method, "params": params, "id": "t"}),
        &node.rpc_password,
    )
    .await;
    let v: Value = serde_json::from_str(&body).expect("json body");
    assert_eq!(status, 200, "{method} {params}: {body}");
    v["result"].clone()
}

/// Decodes a `sequence` body the way a subscriber does: (hash hex in display order, label, mempool seq).
pub fn decode_sequence(body: &[u8]) -> Option<(String, char, Option<u64>)> {
    if body.len() < 33 {
        return None;
    }
    let hash: String = body[..32].iter().map(|b| format!("{b:02x}")).collect();
    let label = body[32] as char;
    let seq = match label {
        'A' | 'R' if body.len() == 41 => Some(u64::from_le_bytes(body[33..41].try_into().ok()?)),
        'C' | 'D' if body.len() == 33 => None,
        _ => return None,
    };
    Some((hash, label, seq))
}

/// One captured ZMQ message.
pub struct Captured {
    /// The multipart message's frames.
    pub frames: Vec<Vec<u8>>,
}

/// Subscribes to every topic at `endpoints` on a thread that collects messages until `stop`.
pub fn subscribe(
    endpoints: &[String],
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Captured>> {
    let ctx = zmq::Context::new();
    let sockets: Vec<zmq::Socket> = endpoints
        .iter()
        .map(|e| {
            let s = ctx.socket(zmq::SUB).unwrap();
            s.set_subscribe(b"").unwrap();
            s.set_rcvtimeo(50).unwrap();
            s.connect(e).unwrap();
            s
        })
        .collect();
    std::thread::spawn(move || {
        let _ctx = ctx;
        let mut out = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            for s in &sockets {
                while let Ok(frames) = s.recv_multipart(zmq::DONTWAIT) {
                    out.push(Captured { frames });
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        out
    })
}
