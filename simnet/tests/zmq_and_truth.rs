//! ZMQ frames match Core's captures; the truth file agrees with what was published; a reorg
//! reaches every node.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{decode_sequence, subscribe, Captured};

use bitcoin::consensus::deserialize;
use bitcoin::{Block, Transaction};
use serde_json::Value;
use simnet::truth::TruthEvent;
use test_support::fixture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zmq_messages_match_core_captures_and_truth() {
    let fleet = common::start(common::SHORT).await;
    let z = fleet.nodes()[1].zmq.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let sub = subscribe(
        &[z.hashblock, z.hashtx, z.rawblock, z.rawtx, z.sequence],
        stop.clone(),
    );
    common::finish(&fleet).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let captured = sub.join().unwrap();

    // Well-formed messages: three frames, per-topic sequence numbers counting up without gaps.
    let mut next_seq: HashMap<String, u32> = HashMap::new();
    let mut malformed = 0;
    let mut labels = HashSet::new();
    let mut ours_seq_bodies = Vec::new();
    for c in &captured {
        let topic = String::from_utf8(c.frames[0].clone()).unwrap();
        if c.frames.len() != 3 || c.frames[2].len() != 4 {
            malformed += 1;
            continue;
        }
        let body = &c.frames[1];
        let ok = match topic.as_str() {
            "hashblock" | "hashtx" => body.len() == 32,
            "rawblock" => deserialize::<Block>(body).is_ok(),
            "rawtx" => deserialize::<Transaction>(body).is_ok(),
            "sequence" => decode_sequence(body).is_some(),
            _ => false,
        };
        if !ok {
            malformed += 1;
            continue;
        }
        let seq = u32::from_le_bytes(c.frames[2].clone().try_into().unwrap());
        let want = next_seq.entry(topic.clone()).or_insert(seq);
        assert_eq!(seq, *want, "{topic} sequence has no gaps");
        *want += 1;
        if topic == "sequence" {
            let (_, l, _) = decode_sequence(body).unwrap();
            labels.insert(l);
            ours_seq_bodies.push(body.clone());
        }
    }
    assert_eq!(malformed, 15, "5 topics x 3 malformed messages");
    for t in ["hashblock", "hashtx", "rawblock", "rawtx", "sequence"] {
        assert!(next_seq.contains_key(t), "saw {t}");
    }
    assert!(
        labels.contains(&'C') && labels.contains(&'A') && labels.contains(&'D'),
        "{labels:?}"
    );

    // Same topics and body lengths per message type as the capture of a real node.
    let capture = std::fs::read_to_string(fixture("bitcoin-core-v30/zmq/node2.jsonl")).unwrap();
    let mut real_lengths: HashMap<String, HashSet<usize>> = HashMap::new();
    let mut real_seq = Vec::new();
    for line in capture.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let topic = v["topic"].as_str().unwrap().to_owned();
        let body = hex(v["body_hex"].as_str().unwrap());
        let key = if topic == "sequence" {
            format!("sequence-{}", body[32] as char)
        } else {
            topic.clone()
        };
        real_lengths.entry(key).or_default().insert(body.len());
        if topic == "sequence" {
            real_seq.push(body);
        }
    }
    assert_eq!(real_lengths["hashblock"], HashSet::from([32]));
    assert_eq!(real_lengths["sequence-C"], HashSet::from([33]));
    assert_eq!(real_lengths["sequence-A"], HashSet::from([41]));
    for body in &ours_seq_bodies {
        let (_, l, _) = decode_sequence(body).unwrap();
        assert!(real_lengths[&format!("sequence-{l}")].contains(&body.len()));
    }
    // A captured body decodes the same way as ours: hash in display order, label, LE sequence.
    let (hash, label, seq) =
        decode_sequence(&real_seq.iter().find(|b| b[32] == b'A').unwrap().clone()).unwrap();
    assert_eq!(
        (hash.as_str(), label, seq),
        (
            "fdb5aa0dcc4e1d46e1914e81199e9c5b921bb1bb2654b94eacd130d8f0ad7848",
            'A',
            Some(1)
        )
    );
    let truth = fleet.truth();
    let first_a = ours_seq_bodies.iter().find(|b| b[32] == b'A').unwrap();
    let (ours_hash, _, ours_seq) = decode_sequence(first_a).unwrap();
    assert!(
        truth.iter().any(|r| r.node == "node1"
            && matches!(&r.event, TruthEvent::TxAccepted { txid, mempool_sequence, .. }
                if txid.to_string() == ours_hash && Some(*mempool_sequence) == ours_seq)),
        "truth has the accepted tx with the same mempool sequence"
    );
    // A captured rawtx decodes as a transaction just like ours.
    let real_rawtx = capture
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["topic"] == "rawtx")
        .unwrap();
    assert!(deserialize::<Transaction>(&hex(real_rawtx["body_hex"].as_str().unwrap())).is_ok());

    // Truth: the reorg reached every node 2 deep (or the miner's own), and all nodes agree at the end.
    for node in ["node1", "node2"] {
        assert!(
            truth
                .iter()
                .any(|r| r.node == node && matches!(r.event, TruthEvent::Reorg { depth: 2, .. })),
            "{node} reorged 2 deep"
        );
    }
    let tips: HashSet<_> = (0..3)
        .map(|i| fleet.with_node(i, |n| n.chain.tip()).unwrap())
        .collect();
    assert_eq!(tips.len(), 1, "every node ends on the same tip");
    let connected_on_1 = truth
        .iter()
        .filter(|r| r.node == "node1" && matches!(r.event, TruthEvent::BlockConnected { .. }))
        .count();
    assert_eq!(connected_on_1, captured_count(&captured, 'C'));
    fleet.shutdown().await.unwrap();
}

fn captured_count(captured: &[Captured], label: char) -> usize {
    captured
        .iter()
        .filter(|c| {
            c.frames.len() == 3
                && c.frames[0] == b"sequence"
                && c.frames[1].len() == 33
                && c.frames[1][32] == label as u8
        })
        .count()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn shipped_scenarios_parse_and_validate() {
    for name in [
        "e2e.toml",
        "demo.toml",
        "faults.toml",
        "clean-6h.toml",
        "incidents/selfish-mining.toml",
        "incidents/deep-reorg.toml",
        "incidents/inflated-coinbase.toml",
        "incidents/invalid-block.toml",
        "incidents/stuck.toml",
        "incidents/mempool-wipe.toml",
        "incidents/reject-burst.toml",
        "incidents/slow-node.toml",
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(name);
        simnet::Scenario::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn unknown_scenario_fields_are_rejected() {
    let bad = common::SHORT.replace("seed = 11", "seed = 11\nsurprise = 1");
    assert!(simnet::Scenario::from_toml(&bad).is_err());
    let bad_event = common::SHORT.replace("depth = 2", "depth = 2\nwhatever = 3");
    assert!(simnet::Scenario::from_toml(&bad_event).is_err());
    let unknown_node = common::SHORT.replace("node = \"node1\"", "node = \"ghost\"");
    let err = simnet::Scenario::from_toml(&unknown_node)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ghost"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_fault_windows_answer_errors_then_nothing() {
    let toml = r#"
duration_ms = 1500
[blocks]
interval_ms = 500
[[nodes]]
name = "n0"
mines = true
[[events]]
kind = "rpc_fault"
node = "n0"
from_ms = 0
to_ms = 600
mode = "error"
[[events]]
kind = "rpc_fault"
node = "n0"
from_ms = 700
to_ms = 1200
mode = "timeout"
"#;
    let fleet = common::start(toml).await;
    let n = fleet.nodes()[0].clone();
    let (status, body) = common::rpc_raw(
        &n,
        serde_json::json!({"method": "getblockcount", "id": 1}),
        &n.rpc_password,
    )
    .await;
    assert_eq!(status, 500);
    assert!(body.contains("-28"), "{body}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let client = reqwest::Client::new();
    let r = client
        .post(&n.rpc_url)
        .basic_auth(&n.rpc_user, Some(&n.rpc_password))
        .body(r#"{"method":"getblockcount","id":1}"#)
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(r.is_err(), "no answer inside the timeout window");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(common::rpc(&n, "getblockcount", serde_json::json!([]))
        .await
        .is_u64());
    fleet.shutdown().await.unwrap();
}
