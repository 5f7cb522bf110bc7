//! Every RPC answer has the keys and JSON types of Core v30's answer in the fixtures.

mod common;

use serde_json::{json, Value};
use test_support::fixture;

/// Keys that Core adds only in some states (e.g. `nextblockhash` below the tip).
const OPTIONAL: &[&str] = &[
    "nextblockhash",
    "previousblockhash",
    "address",
    "txinwitness",
    "in_active_chain",
];

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn compare(ours: &Value, want: &Value, path: &str, problems: &mut Vec<String>) {
    match (ours, want) {
        (Value::Object(o), Value::Object(w)) => {
            for k in w.keys() {
                if !o.contains_key(k) && !OPTIONAL.contains(&k.as_str()) {
                    problems.push(format!("{path}.{k}: missing"));
                }
            }
            for (k, v) in o {
                match w.get(k) {
                    Some(wv) => compare(v, wv, &format!("{path}.{k}"), problems),
                    None if OPTIONAL.contains(&k.as_str()) => {}
                    None => problems.push(format!("{path}.{k}: not in Core's answer")),
                }
            }
        }
        (Value::Array(o), Value::Array(w)) => {
            if let Some(first) = w.first() {
                for (i, v) in o.iter().enumerate() {
                    compare(v, first, &format!("{path}[{i}]"), problems);
                }
            }
        }
        (Value::Number(_), Value::Number(w)) if w.is_f64() => {}
        _ => {
            if kind(ours) != kind(want) {
                problems.push(format!(
                    "{path}: {} where Core has {}",
                    kind(ours),
                    kind(want)
                ));
            }
        }
    }
}

fn load(name: &str) -> Value {
    let path = fixture(&format!("bitcoin-core-v30/rpc/{name}"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture exists"))
        .expect("fixture is json")
}

fn assert_shape(method: &str, ours: &Value, fixture_name: &str) {
    let want = load(fixture_name);
    let mut problems = Vec::new();
    compare(ours, &want, method, &mut problems);
    assert!(
        problems.is_empty(),
        "{method} vs {fixture_name}:\n{}\nours: {ours:#}",
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_matches_core_v30_keys_and_types() {
    let fleet = common::start(common::SHORT).await;
    common::finish(&fleet).await;
    let n = &fleet.nodes()[1];
    let rpc = |m: &'static str, p: Value| common::rpc(n, m, p);

    assert_shape(
        "getblockchaininfo",
        &rpc("getblockchaininfo", json!([])).await,
        "getblockchaininfo.json",
    );
    assert_shape(
        "getnetworkinfo",
        &rpc("getnetworkinfo", json!([])).await,
        "getnetworkinfo.json",
    );
    assert_shape(
        "getchaintips",
        &rpc("getchaintips", json!([])).await,
        "getchaintips-node2-after-reorg2.json",
    );
    assert_shape(
        "getmempoolinfo",
        &rpc("getmempoolinfo", json!([])).await,
        "getmempoolinfo.json",
    );
    let txids = rpc("getrawmempool", json!([])).await;
    assert!(
        txids.as_array().map(|a| !a.is_empty()).unwrap_or(false),
        "mempool not empty: {txids}"
    );
    assert_shape("getrawmempool", &txids, "getrawmempool-false.json");
    assert_shape(
        "getrawmempool seq",
        &rpc("getrawmempool", json!([false, true])).await,
        "getrawmempool-mempool_sequence.json",
    );
    let verbose = rpc("getrawmempool", json!([true])).await;
    let entry_fixture = load("getrawmempool-true.json");
    let first_entry = entry_fixture
        .as_object()
        .and_then(|o| o.values().next())
        .cloned()
        .unwrap();
    for (txid, e) in verbose.as_object().expect("object") {
        let mut problems = Vec::new();
        compare(e, &first_entry, txid, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }
    let txid = txids[0].as_str().unwrap().to_owned();
    assert_shape(
        "getmempoolentry",
        &rpc("getmempoolentry", json!([txid])).await,
        "getmempoolentry.json",
    );
    assert_shape(
        "getrawtransaction hex",
        &rpc("getrawtransaction", json!([txid])).await,
        "getrawtransaction-mempool-hex.json",
    );
    assert_shape(
        "getrawtransaction 1",
        &rpc("getrawtransaction", json!([txid, true])).await,
        "getrawtransaction-mempool-verbose1.json",
    );

    let height = rpc("getblockcount", json!([])).await;
    assert_shape("getblockcount", &height, "getblockcount.json");
    let best = rpc("getbestblockhash", json!([])).await;
    assert_shape("getbestblockhash", &best, "getbestblockhash.json");
    // A block with transactions below the tip.
    let h = height.as_u64().unwrap() - 1;
    let hash = rpc("getblockhash", json!([h])).await;
    assert_shape("getblockhash", &hash, "getblockhash-111.json");
    assert_shape(
        "getblock 0",
        &rpc("getblock", json!([hash, 0])).await,
        "getblock-verbosity0.json",
    );
    let block = rpc("getblock", json!([hash, 1])).await;
    assert_shape("getblock 1", &block, "getblock-verbosity1.json");
    assert_shape(
        "getblockheader",
        &rpc("getblockheader", json!([hash])).await,
        "getblockheader-verbose.json",
    );
    assert_shape(
        "getblockheader hex",
        &rpc("getblockheader", json!([hash, false])).await,
        "getblockheader-hex.json",
    );
    assert_shape(
        "getblockstats hash",
        &rpc("getblockstats", json!([hash])).await,
        "getblockstats.json",
    );
    assert_shape(
        "getblockstats height",
        &rpc("getblockstats", json!([h])).await,
        "getblockstats-height.json",
    );
    let confirmed = block["tx"][1]
        .as_str()
        .expect("block has a tx besides the coinbase")
        .to_owned();
    assert_shape(
        "getrawtransaction txindex",
        &rpc("getrawtransaction", json!([confirmed, 1])).await,
        "getrawtransaction-txindex-verbose1.json",
    );

    assert_shape("uptime", &rpc("uptime", json!([])).await, "uptime.json");
    assert_shape(
        "getpeerinfo",
        &rpc("getpeerinfo", json!([])).await,
        "getpeerinfo-node1.json",
    );
    assert_shape(
        "getblocktemplate",
        &rpc("getblocktemplate", json!([{"rules": ["segwit"]}])).await,
        "getblocktemplate.json",
    );
    assert_shape(
        "gettxoutsetinfo",
        &rpc("gettxoutsetinfo", json!([])).await,
        "gettxoutsetinfo.json",
    );
    assert_shape(
        "gettxoutsetinfo muhash",
        &rpc("gettxoutsetinfo", json!(["muhash"])).await,
        "gettxoutsetinfo-muhash.json",
    );
    assert_shape(
        "gettxoutsetinfo none h",
        &rpc("gettxoutsetinfo", json!(["none", h])).await,
        "gettxoutsetinfo-none-height111-blockinfo.json",
    );
    assert_shape(
        "gettxoutsetinfo muhash h",
        &rpc("gettxoutsetinfo", json!(["muhash", h])).await,
        "gettxoutsetinfo-muhash-height120.json",
    );
    assert_shape(
        "getzmqnotifications",
        &rpc("getzmqnotifications", json!([])).await,
        "getzmqnotifications.json",
    );
    assert_shape(
        "getindexinfo",
        &rpc("getindexinfo", json!([])).await,
        "getindexinfo.json",
    );
    fleet.shutdown().await.unwrap();
}

/// The body of a raw HTTP fixture and its status line.
fn raw_http(name: &str) -> (u16, String) {
    let text =
        std::fs::read_to_string(fixture(&format!("bitcoin-core-v30/rpc/raw-http/{name}"))).unwrap();
    let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_owned();
    (status, body)
}

fn keys_and_order(body: &str) -> Vec<String> {
    // Top-level keys in order, nested values ignored.
    let v: Value = serde_json::from_str(body).unwrap();
    let _ = v;
    let mut out = Vec::new();
    let mut depth = 0;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            '"' if depth == 1 => {
                let rest = &body[i + 1..];
                let end = rest.find('"').unwrap();
                if rest[end + 1..].starts_with(':') {
                    out.push(rest[..end].to_owned());
                }
                for _ in 0..=end {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_envelopes_and_status_codes_match_core() {
    let fleet = common::start(common::SHORT).await;
    let n = &fleet.nodes()[0];
    let pw = n.rpc_password.clone();
    let cases = [
        (
            json!({"method": "getblockcount", "params": [], "id": "fx"}),
            "getblockcount-jsonrpc1.http",
        ),
        (
            json!({"jsonrpc": "2.0", "method": "getblockcount", "params": [], "id": 1}),
            "getblockcount-jsonrpc2.http",
        ),
        (
            json!({"method": "nosuchmethod", "params": [], "id": "fx"}),
            "method-not-found-jsonrpc1.http",
        ),
        (
            json!({"jsonrpc": "2.0", "method": "nosuchmethod", "params": [], "id": 3}),
            "method-not-found-jsonrpc2.http",
        ),
        (
            json!({"method": "getblock", "params": ["00".repeat(32)], "id": "fx"}),
            "getblock-unknown-hash-jsonrpc1.http",
        ),
        (
            json!({"jsonrpc": "2.0", "method": "getblock", "params": ["00".repeat(32)], "id": 4}),
            "getblock-unknown-hash-jsonrpc2.http",
        ),
        (
            json!({"method": "getbestblockhash", "id": 2}),
            "getbestblockhash-no-jsonrpc-field.http",
        ),
    ];
    for (req, name) in cases {
        let (status, body) = common::rpc_raw(n, req.clone(), &pw).await;
        let (want_status, want_body) = raw_http(name);
        assert_eq!(status, want_status, "{name}: {body}");
        assert_eq!(
            keys_and_order(&body),
            keys_and_order(&want_body),
            "{name}: {body}"
        );
        let ours: Value = serde_json::from_str(&body).unwrap();
        let want: Value = serde_json::from_str(&want_body).unwrap();
        assert_eq!(ours.get("error"), want.get("error"), "{name}");
    }
    // Named parameters.
    let best = common::rpc(n, "getbestblockhash", json!([])).await;
    let (status, body) = common::rpc_raw(n, json!({"jsonrpc": "2.0", "method": "getblockheader", "params": {"blockhash": best}, "id": 5}), &pw).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"height\":"), "{body}");
    // Batch.
    let (status, body) = common::rpc_raw(
        n,
        json!([
            {"jsonrpc": "2.0", "method": "getblockcount", "id": 1},
            {"jsonrpc": "2.0", "method": "nosuchmethod", "id": 3}
        ]),
        &pw,
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    assert_eq!(v[1]["error"]["code"], -32601);
    // Wrong password.
    let client = reqwest::Client::new();
    let r = client
        .post(&n.rpc_url)
        .basic_auth(&n.rpc_user, Some("wrong"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"jsonrpc\"");
    // Parse error.
    let r = client
        .post(&n.rpc_url)
        .basic_auth(&n.rpc_user, Some(&pw))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let (_, want) = raw_http("parse-error.http");
    assert_eq!(r.text().await.unwrap().trim(), want);
    fleet.shutdown().await.unwrap();
}
