//! Each shipped incident scenario (`scenarios/incidents/*.toml`) plays out and its truth file
//! holds the incident with what a detector test needs; the clean 6-hour run keeps every time
//! on the simulated clock. The incident scenarios run 5 times faster than shipped
//! (`time_scale = 5`) to keep the suite quick.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bitcoin::BlockHash;
use debuglog::{parse_line, Extractor};
use schema::Event;
use serde_json::{json, Value};
use simnet::truth::{Incident, TruthEvent, TruthRecord};
use simnet::{Fleet, FleetOptions, Scenario, TruthSink};
use test_support::fixture;

const SPEEDUP: f64 = 5.0;

struct Run {
    fleet: Fleet,
    truth: Vec<TruthRecord>,
    _dir: tempfile::TempDir,
    logs: PathBuf,
}

impl Run {
    fn incidents(&self) -> Vec<(&TruthRecord, &Incident)> {
        self.truth
            .iter()
            .filter_map(|r| match &r.event {
                TruthEvent::Incident(i) => Some((r, i)),
                _ => None,
            })
            .collect()
    }

    fn of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a TruthRecord> + 'a {
        self.truth.iter().filter(move |r| r.node == node)
    }

    /// Nodes whose truth has `block_connected` for `hash`.
    fn connected_by(&self, hash: BlockHash) -> BTreeSet<String> {
        self.truth
            .iter()
            .filter(|r| matches!(r.event, TruthEvent::BlockConnected { hash: h, .. } if h == hash))
            .map(|r| r.node.clone())
            .collect()
    }

    fn log(&self, node: &str) -> String {
        std::fs::read_to_string(self.logs.join(node).join("debug.log")).expect("debug.log")
    }
}

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// Starts the shipped scenario `name` (with `edit` applied) writing debug.logs to a temp dir.
async fn start(name: &str, edit: impl FnOnce(&mut Scenario)) -> (Fleet, tempfile::TempDir) {
    let mut scenario = Scenario::load(&scenario_path(name)).expect("scenario loads");
    edit(&mut scenario);
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::start_with(
        scenario,
        TruthSink::memory(),
        FleetOptions {
            debug_log_dir: Some(dir.path().to_owned()),
        },
    )
    .await
    .expect("fleet starts");
    (fleet, dir)
}

async fn play(name: &str) -> Run {
    let (fleet, dir) = start(name, |s| s.time_scale = SPEEDUP).await;
    common::finish(&fleet).await;
    let truth = fleet.truth();
    let logs = dir.path().to_owned();
    Run {
        fleet,
        truth,
        _dir: dir,
        logs,
    }
}

/// Every event bmon's debug.log parser finds in `text`.
fn parse_log(text: &str) -> Vec<debuglog::LogEvent> {
    let mut x = Extractor::new();
    let mut events = Vec::new();
    for raw in text.lines() {
        let line = parse_line(raw.as_bytes()).unwrap_or_else(|e| panic!("{raw:?}: {e:?}"));
        events.extend(x.feed(&line));
    }
    events.extend(x.finish());
    events
}

/// A message with hashes and numbers blanked, to compare wording with the fixtures.
fn template(message: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.len() == 64 && word.chars().all(|c| c.is_ascii_hexdigit()) {
            out.push_str("<hash>");
        } else {
            // Every run of digits becomes one `0` (numbers, dates and times vary).
            let mut in_digits = false;
            for c in word.chars() {
                if c.is_ascii_digit() {
                    if !in_digits {
                        out.push('0');
                    }
                    in_digits = true;
                } else {
                    out.push(c);
                    in_digits = false;
                }
            }
        }
        word.clear();
    };
    for c in message.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Templates of the v30 fixture lines (timestamp stripped).
fn fixture_templates() -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for n in 0..3 {
        let text =
            std::fs::read_to_string(fixture(&format!("bitcoin-core-v30/logs/node{n}.debug.log")))
                .unwrap();
        for l in text.lines() {
            if let Some((_, msg)) = l.split_once(' ') {
                set.insert(template(msg));
            }
        }
    }
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selfish_miner_releases_its_withheld_blocks_after_the_losing_block_and_the_rest_reorg() {
    let run = play("incidents/selfish-mining.toml").await;
    let incidents = run.incidents();
    let Some((
        rec,
        Incident::SelfishMining {
            miner,
            fork_height,
            withheld,
            mined_at_us,
            released_at_us,
            losing_block,
            losing_height,
            losing_miner,
            losing_first_seen_us,
            ..
        },
    )) = incidents
        .iter()
        .find(|(_, i)| matches!(i, Incident::SelfishMining { .. }))
        .copied()
    else {
        panic!("no selfish_mining incident in {incidents:?}");
    };
    assert_eq!((rec.node.as_str(), miner.as_str()), ("node1", "node1"));
    assert_eq!(losing_miner, "node0");
    assert_eq!(withheld.len(), 2);
    assert_eq!(*losing_height, fork_height + 1);
    assert_eq!(rec.t_us, *released_at_us);
    assert!(mined_at_us <= losing_first_seen_us);
    // The losing block was public first, the release came ~3 s (simulated) later.
    let gap_ms = (released_at_us - losing_first_seen_us) / 1000;
    assert!(
        (2900..4000).contains(&gap_ms),
        "release {gap_ms} ms after the losing block"
    );
    let first_seen = |hash: BlockHash| {
        run.truth
            .iter()
            .filter(|r| matches!(r.event, TruthEvent::BlockReceived { hash: h, .. } if h == hash))
            .map(|r| r.t_us)
            .min()
    };
    assert_eq!(first_seen(*losing_block), Some(*losing_first_seen_us));
    for h in withheld {
        assert!(first_seen(*h).unwrap() >= *released_at_us);
    }
    for node in ["node0", "node1", "node2"] {
        assert!(
            run.connected_by(*losing_block).contains(node),
            "{node} had the losing block"
        );
        let reorg = run.of(node).find_map(|r| match &r.event {
            TruthEvent::Reorg {
                disconnected,
                connected,
                depth,
                ..
            } if disconnected.contains(losing_block) => Some((*depth, connected.clone())),
            _ => None,
        });
        assert_eq!(
            reorg,
            Some((1, withheld.clone())),
            "{node} reorged to the withheld blocks"
        );
    }
    // Withheld blocks are recorded as mined privately.
    let private: Vec<BlockHash> = run
        .of("node1")
        .filter_map(|r| match r.event {
            TruthEvent::BlockMined {
                hash,
                private: true,
                ..
            } => Some(hash),
            _ => None,
        })
        .collect();
    assert_eq!(&private, withheld);
    run.fleet.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_reorg_replaces_six_blocks_on_every_other_node() {
    let run = play("incidents/deep-reorg.toml").await;
    let (rec, incident) = run
        .incidents()
        .into_iter()
        .find(|(_, i)| matches!(i, Incident::Reorg { .. }))
        .expect("reorg incident");
    let Incident::Reorg {
        depth,
        replaced,
        released,
        fork_point,
        ..
    } = incident
    else {
        unreachable!()
    };
    assert_eq!(rec.node, "node1");
    assert_eq!((*depth, replaced.len(), released.len()), (6, 6, 7));
    for node in ["node0", "node2"] {
        let r = run.of(node).find_map(|r| match &r.event {
            TruthEvent::Reorg {
                depth,
                fork_point: f,
                disconnected,
                connected,
                ..
            } if f == fork_point => Some((*depth, disconnected.clone(), connected.clone())),
            _ => None,
        });
        assert_eq!(
            r,
            Some((6, replaced.clone(), released.clone())),
            "{node} reorged 6 deep"
        );
    }
    // bmon's parser sees the same 6-deep reorg in node2's debug.log.
    let events = parse_log(&run.log("node2"));
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::Reorg(r) if r.depth == 6 && r.fork_point == *fork_point)));
    run.fleet.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inflated_block_is_connected_only_by_the_accepting_nodes() {
    let run = play("incidents/inflated-coinbase.toml").await;
    let (_, incident) = run
        .incidents()
        .into_iter()
        .find(|(_, i)| matches!(i, Incident::InflatedCoinbase { .. }))
        .expect("inflated_coinbase incident");
    let Incident::InflatedCoinbase {
        hash,
        height,
        coinbase_sat,
        limit_sat,
        excess_sat,
        accepted_by,
        rejected_by,
        ..
    } = incident.clone()
    else {
        unreachable!()
    };
    assert_eq!(excess_sat, 50_000_000);
    assert_eq!(coinbase_sat, limit_sat + excess_sat);
    assert_eq!(accepted_by, vec!["node0", "node1"]);
    assert_eq!(rejected_by, vec!["node2"]);
    assert_eq!(
        run.connected_by(hash),
        BTreeSet::from(["node0".to_owned(), "node1".to_owned()])
    );
    let rejected = run.of("node2").find_map(|r| match &r.event {
        TruthEvent::BlockRejected {
            hash: h, reason, ..
        } if *h == hash => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(rejected.as_deref(), Some("bad-cb-amount"));

    // The accepting nodes' UTXO totals at the inflated block exceed the schedule; node2 does not
    // even have statistics for it, and its own tip stays within the schedule.
    let schedule = |h: u64| {
        schema::subsidy::total_supply_through(schema::Height(h as u32), bitcoin::Network::Regtest)
            .to_btc()
    };
    let total = |v: &Value| {
        v["total_amount"].as_f64().unwrap() + v["total_unspendable_amount"].as_f64().unwrap()
    };
    let nodes = run.fleet.nodes();
    for node in &nodes[..2] {
        let v = common::rpc(node, "gettxoutsetinfo", json!(["muhash", hash.to_string()])).await;
        assert_eq!(v["height"], json!(height));
        let over = total(&v) - schedule(u64::from(height));
        assert!(
            (over - 0.5).abs() < 1e-6,
            "{}: {} over the schedule",
            node.name,
            over
        );
    }
    let (_, body) = common::rpc_raw(
        &nodes[2],
        json!({"method": "gettxoutsetinfo", "params": ["muhash", hash.to_string()], "id": 1}),
        "simnet",
    )
    .await;
    assert!(body.contains("\"error\":{"), "{body}");
    let v = common::rpc(&nodes[2], "gettxoutsetinfo", json!(["muhash"])).await;
    assert!(total(&v) <= schedule(v["height"].as_u64().unwrap()) + 1e-8);
    let v0 = common::rpc(&nodes[0], "gettxoutsetinfo", json!(["muhash"])).await;
    assert_ne!(v0["muhash"], v["muhash"], "node0 and node2 disagree");

    // node2 logged Core 30's invalid-block lines, and bmon's parser reads them.
    let events = parse_log(&run.log("node2"));
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::InvalidBlock(b) if b.hash == hash && b.reason == "bad-cb-amount")));
    run.fleet.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_block_travels_as_a_compact_block_and_nobody_connects_it() {
    let run = play("incidents/invalid-block.toml").await;
    let (rec, incident) = run
        .incidents()
        .into_iter()
        .find(|(_, i)| matches!(i, Incident::InvalidBlock { .. }))
        .expect("invalid_block incident");
    let Incident::InvalidBlock {
        hash,
        height,
        reason,
        detail,
        ..
    } = incident.clone()
    else {
        unreachable!()
    };
    assert_eq!(rec.node, "node0");
    assert_eq!(reason, "bad-cb-amount");
    assert!(
        detail.starts_with("coinbase pays too much (actual="),
        "{detail}"
    );
    assert!(run.connected_by(hash).is_empty(), "nobody connects it");
    let templates = fixture_templates();
    for node in run.fleet.nodes() {
        let rejected = run.of(&node.name).any(|r| {
            matches!(&r.event, TruthEvent::BlockRejected { hash: h, reason, .. }
                if *h == hash && reason == "bad-cb-amount")
        });
        assert!(rejected, "{} rejected it", node.name);
        let tips = common::rpc(node, "getchaintips", json!([])).await;
        let tip = tips
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["hash"] == json!(hash.to_string()))
            .unwrap_or_else(|| panic!("{}: {tips}", node.name));
        assert_eq!(tip["status"], "invalid");
        assert_eq!(tip["height"], json!(height));
        // The invalid-block lines carry the v30 fixture's wording (15:53:31).
        let log = run.log(&node.name);
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&hash.to_string()) || l.contains("coinbase pays too much"))
            .filter(|l| !l.contains("Saw new") && !l.contains("PartiallyDownloadedBlock"))
            .collect();
        for want in [
            "Block validation error: bad-cb-amount, coinbase pays too much (actual=",
            "InvalidChainFound: invalid block=",
            "[error] ConnectTip: ConnectBlock ",
            "[validation] BlockChecked: block hash=",
        ] {
            assert!(
                lines.iter().any(|l| l.contains(want)),
                "{}: no {want:?} in {lines:#?}",
                node.name
            );
        }
        for l in &lines {
            let msg = l.split_once(' ').map(|(_, m)| m).unwrap_or(l);
            assert!(
                templates.contains(&template(msg)),
                "{}: {msg:?} is not worded like the fixtures",
                node.name
            );
        }
        let events = parse_log(&log);
        let found = events.iter().find_map(|e| match &e.event {
            Event::InvalidBlock(b) if b.hash == hash => Some(b.clone()),
            _ => None,
        });
        let found = found.unwrap_or_else(|| panic!("{}: parser found no invalid block", node.name));
        assert_eq!(found.reason, "bad-cb-amount");
        assert_eq!(found.height, Some(schema::Height(height)));
        assert_eq!(found.detail.as_deref(), Some(detail.as_str()));
    }
    // Every node received it as a compact block from a peer (or mined it).
    let from: Vec<Option<String>> = run
        .truth
        .iter()
        .filter_map(|r| match &r.event {
            TruthEvent::BlockReceived { hash: h, from, .. } if *h == hash => Some(from.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(from.len(), 3, "{from:?}");
    assert!(run.log("node1").contains(&format!(
        "Saw new cmpctblock header hash={hash} height={height}"
    )));
    run.fleet.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_node_keeps_answering_with_rising_headers_and_a_stale_tip_then_catches_up() {
    let (fleet, dir) = start("incidents/stuck.toml", |s| s.time_scale = SPEEDUP).await;
    // While stuck: RPC answers, headers rise above blocks.
    let node2 = fleet.nodes()[2].clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut seen = None;
    while tokio::time::Instant::now() < deadline {
        let info = common::rpc(&node2, "getblockchaininfo", json!([])).await;
        let (blocks, headers) = (info["blocks"].as_u64(), info["headers"].as_u64());
        if let (Some(b), Some(h)) = (blocks, headers) {
            if h >= b + 2 {
                seen = Some((b, h));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (blocks, headers) = seen.expect("headers rose 2 above blocks while stuck");
    common::finish(&fleet).await;
    let truth = fleet.truth();
    let time_of = |want: fn(&Incident) -> bool| {
        truth
            .iter()
            .find_map(|r| match &r.event {
                TruthEvent::Incident(i) if want(i) && r.node == "node2" => {
                    Some((r.t_us, i.clone()))
                }
                _ => None,
            })
            .expect("incident")
    };
    let (stuck_at, stuck) = time_of(|i| matches!(i, Incident::Stuck { .. }));
    let (unstuck_at, unstuck) = time_of(|i| matches!(i, Incident::Unstuck { .. }));
    let Incident::Stuck { height, .. } = stuck else {
        unreachable!()
    };
    let Incident::Unstuck {
        height: still,
        headers: known,
        ..
    } = unstuck
    else {
        unreachable!()
    };
    assert_eq!(height, still, "no block connected while stuck");
    assert!(u64::from(height) <= blocks && u64::from(known) >= headers);
    let node2: Vec<&TruthRecord> = truth.iter().filter(|r| r.node == "node2").collect();
    let connected_while_stuck = node2.iter().filter(|r| {
        r.t_us > stuck_at
            && r.t_us < unstuck_at
            && matches!(r.event, TruthEvent::BlockConnected { .. })
    });
    assert_eq!(connected_while_stuck.count(), 0);
    let received_while_stuck = node2.iter().filter(|r| {
        r.t_us > stuck_at
            && r.t_us < unstuck_at
            && matches!(r.event, TruthEvent::BlockReceived { .. })
    });
    assert!(received_while_stuck.count() >= 4);
    // After unstuck it caught up with everyone.
    let tips: BTreeSet<BlockHash> = (0..3)
        .map(|i| fleet.with_node(i, |n| n.chain.tip()).unwrap())
        .collect();
    assert_eq!(tips.len(), 1, "node2 caught up");
    drop(dir);
    fleet.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mempool_wipe_empties_one_mempool_restarts_its_sequences_and_logs_a_restart() {
    let (fleet, dir) = start("incidents/mempool-wipe.toml", |s| s.time_scale = SPEEDUP).await;
    // node2's hashblock sequence numbers, as a subscriber sees them.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let endpoint = fleet.nodes()[2].zmq.hashblock.clone();
    let sub = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let ctx = zmq::Context::new();
            let s = ctx.socket(zmq::SUB).unwrap();
            s.set_subscribe(b"").unwrap();
            s.set_rcvtimeo(50).unwrap();
            s.connect(&endpoint).unwrap();
            let mut seqs = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(frames) = s.recv_multipart(0) {
                    if let Some(Ok(b)) = frames.get(2).map(|f| <[u8; 4]>::try_from(f.as_slice())) {
                        seqs.push(u32::from_le_bytes(b));
                    }
                }
            }
            seqs
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut wiped = false;
    while !wiped && tokio::time::Instant::now() < deadline {
        wiped = fleet
            .truth()
            .iter()
            .any(|r| matches!(r.event, TruthEvent::Incident(Incident::MempoolWipe { .. })));
        if !wiped {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert!(wiped, "wipe happened");
    let size = |v: Value| v["size"].as_u64().unwrap();
    let n = fleet.nodes();
    let (s0, s1, s2) = (
        size(common::rpc(&n[0], "getmempoolinfo", json!([])).await),
        size(common::rpc(&n[1], "getmempoolinfo", json!([])).await),
        size(common::rpc(&n[2], "getmempoolinfo", json!([])).await),
    );
    assert!(s0 >= 10 && s1 >= 10, "others full: {s0} {s1}");
    assert_eq!(s2, 0, "node2 empty after the wipe");
    let raw = common::rpc(&n[2], "getrawmempool", json!([false, true])).await;
    assert_eq!(
        raw["mempool_sequence"],
        json!(1),
        "mempool sequence restarted"
    );
    let uptime = common::rpc(&n[2], "uptime", json!([])).await;
    assert!(uptime.as_u64().unwrap() < 5, "uptime restarted: {uptime}");
    common::finish(&fleet).await;
    let truth = fleet.truth();
    let (dropped, before) = truth
        .iter()
        .find_map(|r| match r.event {
            TruthEvent::Incident(Incident::MempoolWipe {
                dropped,
                mempool_sequence_before,
            }) => Some((dropped, mempool_sequence_before)),
            _ => None,
        })
        .unwrap();
    assert!(dropped >= 10 && before > dropped as u64);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seqs = sub.join().unwrap();
    let restarts = seqs.windows(2).filter(|w| w[1] < w[0]).count();
    assert_eq!(
        restarts, 1,
        "hashblock sequence restarts once at 0: {seqs:?}"
    );
    assert!(seqs.windows(2).any(|w| w[1] == 0 && w[0] > 0), "{seqs:?}");
    // Still empty at the end while the others hold their transactions.
    let end = |i: usize| fleet.with_node(i, |n| n.mempool.len()).unwrap();
    assert_eq!(end(2), 0);
    assert!(end(0) >= 10 && end(1) >= 10);
    // debug.log: shutdown then a second startup banner.
    let log = std::fs::read_to_string(dir.path().join("node2/debug.log")).unwrap();
    assert_eq!(log.matches("Bitcoin Core version").count(), 2);
    assert!(log.contains("Shutdown done"));
    fleet.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_burst_writes_mempoolrej_lines_that_parse_into_tx_rejected_events() {
    let run = play("incidents/reject-burst.toml").await;
    let (rec, incident) = run
        .incidents()
        .into_iter()
        .find(|(_, i)| matches!(i, Incident::RejectBurst { .. }))
        .expect("reject_burst incident");
    let Incident::RejectBurst {
        count,
        reason,
        from,
        peer,
        ..
    } = incident.clone()
    else {
        unreachable!()
    };
    assert_eq!(
        (rec.node.as_str(), count, from.as_str()),
        ("node1", 120, "node0")
    );
    assert_eq!(reason, "min relay fee not met");
    let want: HashMap<String, (u64, String)> = run
        .of("node1")
        .filter_map(|r| match &r.event {
            TruthEvent::TxRejected {
                txid, peer, reason, ..
            } => Some((txid.to_string(), (*peer, reason.clone()))),
            _ => None,
        })
        .collect();
    assert_eq!(want.len(), 120);
    let log = run.log("node1");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("[mempoolrej]")).collect();
    assert_eq!(lines.len(), 120);
    assert!(lines[0].contains(&format!(
        " from peer={peer} was not accepted: min relay fee not met, 0 < "
    )));
    let got: HashMap<String, (u64, String)> = parse_log(&log)
        .into_iter()
        .filter_map(|e| match e.event {
            Event::TxRejected(t) => Some((t.txid.to_string(), (t.peer?, t.reason))),
            _ => None,
        })
        .collect();
    assert_eq!(got, want);
    assert!(want
        .values()
        .all(|(p, r)| *p == peer && r == "min relay fee not met"));
    run.fleet.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_node_receives_every_block_seconds_after_the_rest() {
    let run = play("incidents/slow-node.toml").await;
    assert!(run.incidents().iter().any(|(r, i)| r.node == "node2"
        && matches!(
            i,
            Incident::SlowNode {
                extra_delay_ms: 3000
            }
        )));
    let mut first: HashMap<BlockHash, (u64, u64)> = HashMap::new();
    for r in &run.truth {
        if let TruthEvent::BlockReceived { hash, .. } = r.event {
            let e = first.entry(hash).or_insert((u64::MAX, u64::MAX));
            if r.node == "node2" {
                e.1 = e.1.min(r.t_us);
            } else {
                e.0 = e.0.min(r.t_us);
            }
        }
    }
    let lags: Vec<u64> = first
        .values()
        .filter(|(o, s)| *o != u64::MAX && *s != u64::MAX)
        .map(|(o, s)| s.saturating_sub(*o) / 1000)
        .collect();
    assert!(lags.len() >= 4, "{lags:?}");
    assert!(
        lags.iter().all(|ms| *ms >= 3000),
        "node2 gets blocks >= 3 s late: {lags:?}"
    );
    run.fleet.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accelerated_clean_run_keeps_headers_logs_and_uptime_on_the_simulated_clock() {
    // The first simulated hour of clean-6h (3 s of wall time at time_scale 1200).
    let (fleet, dir) = start("clean-6h.toml", |s| s.duration_ms = 3_600_000).await;
    let clock = fleet.clock();
    assert_eq!(clock.time_scale, 1200.0);
    assert!(
        fleet.nodes()[0].clock.is_some(),
        "endpoints carry the clock"
    );
    common::finish(&fleet).await;
    let truth = fleet.truth();
    let connected: Vec<(u64, BlockHash)> = truth
        .iter()
        .filter(|r| r.node == "node2")
        .filter_map(|r| match r.event {
            TruthEvent::BlockConnected { hash, .. } => Some((r.t_us, hash)),
            _ => None,
        })
        .collect();
    assert!((5..=6).contains(&connected.len()), "{connected:?}");
    let times: Vec<i64> = connected
        .iter()
        .map(|(_, h)| {
            fleet
                .with_node(2, |n| n.chain.get(h).unwrap().block.block.header.time)
                .unwrap() as i64
        })
        .collect();
    for w in times.windows(2) {
        assert!(
            (w[1] - w[0] - 600).abs() <= 60,
            "header times 600 s apart: {times:?}"
        );
    }
    // Truth is on the simulated clock and carries the wall clock beside it.
    for r in &truth {
        let wall = r.wall_us.expect("wall_us in an accelerated run");
        assert!(r.t_us >= wall);
        assert!(r.t_us.abs_diff(clock.sim_at(wall)) < 1000);
    }
    // Header time of each block = its (simulated) connect time, within the wall-clock jitter of
    // a loaded machine magnified 1200 times (50 ms of wall time = 60 simulated seconds, a tenth
    // of the block interval).
    for ((t, _), time) in connected.iter().zip(&times) {
        let off = (*t as i64 / 1_000_000 - time).abs();
        assert!(
            off <= 60,
            "connect {off} simulated s away from its header time"
        );
    }
    let info = common::rpc(&fleet.nodes()[2], "getblockchaininfo", json!([])).await;
    assert_eq!(info["time"].as_i64(), times.last().copied());
    assert!(info["mediantime"].as_i64().unwrap() <= info["time"].as_i64().unwrap());
    let uptime = common::rpc(&fleet.nodes()[2], "uptime", json!([]))
        .await
        .as_u64()
        .unwrap();
    assert!(uptime >= 3600, "uptime in simulated seconds: {uptime}");
    // debug.log: each UpdateTip line carries its truth time (simulated clock).
    let log = std::fs::read_to_string(dir.path().join("node2/debug.log")).unwrap();
    let tips: Vec<(u64, BlockHash)> = parse_log(&log)
        .into_iter()
        .filter_map(|e| match e.event {
            Event::BlockSeen(s) if s.stage == schema::event::BlockStage::Tip => {
                Some((e.observed_at.0 as u64, s.hash))
            }
            _ => None,
        })
        .collect();
    assert_eq!(tips, connected);
    fleet.shutdown().await.unwrap();
}
