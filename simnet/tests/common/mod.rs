//! Shared helpers for simnet's integration tests.
#![allow(dead_code)]

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
