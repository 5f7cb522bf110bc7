//! Real Bitcoin Core v30.99 logs in every prefix shape: the same two-node regtest scenario run
//! once per combination of `-logtimemicros`, `-logthreadnames`, `-logsourcelocations` (GCC
//! build: whole function signatures), `-loglevelalways` and `-logips`. Each run's excerpt must
//! give exactly the events its `truth.json` (recorded over RPC during the run) predicts, and
//! every line's prefixes must land in the right fields. Data and how it was captured:
//! `tests/data/v30-prefixes/README.md`.

use std::path::PathBuf;

use bitcoin::{Amount, BlockHash, Txid, Wtxid};
use debuglog::{parse_line, split_lines, Extractor, LineReader, LogEvent, ThreadNames};
use schema::event::{
    BlockDisconnected, BlockSeen, BlockStage, BlockTiming, CompactReconstruction, InvalidBlock,
    Reorg, Source, TimingStage, TxRejected, TxReplaced,
};
use schema::{Event, Height};
use serde_json::Value;

/// One capture run: its directory and the log options it ran with.
struct Shape {
    dir: &'static str,
    micros: bool,
    threads: bool,
    locations: bool,
    level_always: bool,
}

const SHAPES: &[Shape] = &[
    shape("plain", false, false, false, false),
    shape("plain-micros", true, false, false, false),
    shape("threads", false, true, false, false),
    shape("threads-micros", true, true, false, false),
    shape("locations", false, false, true, false),
    shape("locations-micros", true, false, true, false),
    shape("threads-locations", false, true, true, false),
    shape("threads-locations-micros", true, true, true, false),
    // -loglevelalways -logips
    shape("levelalways-ips", false, false, false, true),
    // every option at once, -logips included
    shape("all-options", true, true, true, true),
];

const fn shape(
    dir: &'static str,
    micros: bool,
    threads: bool,
    locations: bool,
    level_always: bool,
) -> Shape {
    Shape {
        dir,
        micros,
        threads,
        locations,
        level_always,
    }
}

fn data(shape: &Shape, file: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/v30-prefixes")
        .join(shape.dir)
        .join(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn truth(shape: &Shape) -> Value {
    serde_json::from_slice(&data(shape, "truth.json")).expect("truth.json")
}

/// Events of a log excerpt and how many of its lines did not parse.
fn extract(bytes: &[u8]) -> (Vec<LogEvent>, usize) {
    let mut x = Extractor::new();
    let mut out = Vec::new();
    let mut bad = 0;
    for (_, l) in split_lines(bytes, 0) {
        match parse_line(l) {
            Ok(line) => x.feed_into(&line, &mut out),
            Err(_) => bad += 1,
        }
    }
    out.extend(x.finish());
    (out, bad)
}

/// The events with the measured durations (bench stage times, header-to-tip) checked for sanity
/// and zeroed, so the rest can be compared exactly.
fn without_durations(evs: Vec<LogEvent>, dir: &str) -> Vec<Event> {
    evs.into_iter()
        .map(|e| match e.event {
            Event::BlockTiming(mut t) => {
                for s in &mut t.stages {
                    assert!(s.ms >= 0.0 && s.ms < 1000.0, "{dir}: {s:?}");
                    s.ms = 0.0;
                }
                if let Some(ms) = t.header_to_tip_ms.as_mut() {
                    assert!(*ms >= 0.0 && *ms < 10_000.0, "{dir}: {ms}");
                    *ms = 0.0;
                }
                Event::BlockTiming(t)
            }
            other => other,
        })
        .collect()
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("truth {path}"))
}

fn n(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("truth {path}"))
}

fn hash<T: std::str::FromStr>(v: &Value, path: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s(v, path).parse().expect("hash")
}

fn height(v: &Value, path: &str) -> Height {
    Height(u32::try_from(n(v, path)).expect("height"))
}

fn seen(hash: BlockHash, height: Option<Height>, stage: BlockStage, peer: Option<u64>) -> Event {
    Event::BlockSeen(BlockSeen {
        hash,
        height,
        stage,
        peer,
        source: Source::Log,
    })
}

fn stages(names: &[&str]) -> Vec<TimingStage> {
    names
        .iter()
        .map(|name| TimingStage {
            name: (*name).to_string(),
            ms: 0.0,
        })
        .collect()
}

/// The bad block's coinbase paid 1 sat more than the template allowed.
fn invalid_block(t: &Value, peer: Option<u64>) -> Event {
    Event::InvalidBlock(InvalidBlock {
        hash: hash(t, "/invalid/hash"),
        height: Some(height(t, "/invalid/height")),
        reason: "bad-cb-amount".into(),
        detail: Some(format!(
            "coinbase pays too much (actual={} vs limit={})",
            n(t, "/invalid/actual"),
            n(t, "/invalid/limit")
        )),
        peer,
        source: Source::Log,
    })
}

/// Bench stages up to the failing `Connect 3 transactions` (coinbase and the two mempool
/// transactions), no total, never a tip.
fn failed_connect_timing(t: &Value, compact: Option<CompactReconstruction>) -> Event {
    Event::BlockTiming(BlockTiming {
        hash: Some(hash(t, "/invalid/hash")),
        height: Some(height(t, "/invalid/height")),
        stages: stages(&[
            "Load block from disk",
            "Sanity checks",
            "Fork checks",
            "Connect 3 transactions",
        ]),
        connect_total_ms: None,
        header_to_tip_ms: None,
        compact,
    })
}

const FROM_MEMPOOL_2: CompactReconstruction = CompactReconstruction {
    prefilled: 1,
    from_mempool: 2,
    from_extra_pool: 0,
    requested: 0,
};

/// node0 mined, rejected the low-fee double spend from node1, reorged one block deep to
/// node1's two blocks, had the bad block submitted, then mined one block under a mock time.
fn node0_want(t: &Value) -> Vec<Event> {
    let stale: BlockHash = hash(t, "/reorg/node0_stale");
    let fork: BlockHash = hash(t, "/reorg/fork");
    let fork_height = height(t, "/reorg/fork_height");
    let b1: BlockHash = hash(t, "/reorg/node1_blocks/0");
    let b2: BlockHash = hash(t, "/reorg/node1_blocks/1");
    let y: Txid = hash(t, "/replacement/replaced/txid");
    let tip = |h, height| seen(h, Some(height), BlockStage::Tip, None);
    vec![
        Event::TxRejected(TxRejected {
            txid: y,
            wtxid: Some(hash::<Wtxid>(t, "/replacement/replaced/wtxid")),
            peer: Some(n(t, "/replacement/node0_rejected_peer")),
            reason: "insufficient fee".into(),
            reason_text: format!(
                "insufficient fee, rejecting replacement {y}, less fees than conflicting txs; 0.00001 < 0.0001"
            ),
        }),
        tip(stale, fork_height.next()),
        Event::BlockDisconnected(BlockDisconnected {
            hash: stale,
            height: fork_height.next(),
            occurrence: 0,
            source: Source::Log,
        }),
        tip(b1, fork_height.next()),
        Event::Reorg(Reorg {
            old_tip: stale,
            old_height: fork_height.next(),
            new_tip: b2,
            new_height: fork_height.next().next(),
            fork_point: fork,
            fork_height,
            depth: 1,
            disconnected: vec![stale],
            connected: vec![b1, b2],
            source: Source::Log,
        }),
        tip(b2, fork_height.next().next()),
        invalid_block(t, None),
        failed_connect_timing(t, None),
        tip(
            hash(t, "/mocktime_block"),
            height(t, "/invalid/height").next(),
        ),
    ]
}

/// node1 got node0's blocks as high-bandwidth compact blocks, replaced the low-fee double
/// spend, and reconstructed the bad block before finding it invalid.
fn node1_want(t: &Value) -> Vec<Event> {
    let cb: BlockHash = hash(t, "/compact_block/hash");
    let cb_height = height(t, "/compact_block/height");
    let cb_peer = Some(n(t, "/compact_block/node1_peer"));
    let inv: BlockHash = hash(t, "/invalid/hash");
    let inv_peer = Some(n(t, "/invalid/node1_peer"));
    let tx = |side: &str| {
        (
            hash::<Txid>(t, &format!("/replacement/{side}/txid")),
            hash::<Wtxid>(t, &format!("/replacement/{side}/wtxid")),
            Amount::from_sat(n(t, &format!("/replacement/{side}/fee"))),
            n(t, &format!("/replacement/{side}/vsize")),
        )
    };
    let (old, old_w, old_fee, old_vsize) = tx("replaced");
    let (new, new_w, new_fee, new_vsize) = tx("new");
    vec![
        seen(cb, Some(cb_height), BlockStage::Header, cb_peer),
        seen(cb, None, BlockStage::Cmpctblock, cb_peer),
        seen(cb, Some(cb_height), BlockStage::Tip, None),
        Event::BlockTiming(BlockTiming {
            hash: Some(cb),
            height: Some(cb_height),
            stages: Vec::new(),
            connect_total_ms: None,
            header_to_tip_ms: Some(0.0),
            compact: Some(FROM_MEMPOOL_2),
        }),
        Event::TxReplaced(TxReplaced {
            replaced_txid: old,
            replaced_wtxid: Some(old_w),
            new_txid: new,
            new_wtxid: Some(new_w),
            replaced_fee: Some(old_fee),
            new_fee: Some(new_fee),
            replaced_vsize: Some(old_vsize),
            new_vsize: Some(new_vsize),
        }),
        seen(
            inv,
            Some(height(t, "/invalid/height")),
            BlockStage::Header,
            inv_peer,
        ),
        seen(inv, None, BlockStage::Cmpctblock, inv_peer),
        invalid_block(t, inv_peer),
        failed_connect_timing(t, Some(FROM_MEMPOOL_2)),
    ]
}

#[test]
fn every_prefix_shape_gives_the_events_the_rpc_truth_predicts() {
    for shape in SHAPES {
        let t = truth(shape);
        let (evs, bad) = extract(&data(shape, "node0.log"));
        // `CommitTransaction:` spans six lines; its five continuation lines have no timestamp.
        assert_eq!(bad, 5, "{} node0", shape.dir);
        assert_eq!(
            without_durations(evs, shape.dir),
            node0_want(&t),
            "{} node0",
            shape.dir
        );
        let (evs, bad) = extract(&data(shape, "node1.log"));
        assert_eq!(bad, 0, "{} node1", shape.dir);
        assert_eq!(
            without_durations(evs, shape.dir),
            node1_want(&t),
            "{} node1",
            shape.dir
        );
    }
}

#[test]
fn every_prefix_lands_in_its_field_on_every_real_line() {
    for shape in SHAPES {
        for file in ["node0.log", "node1.log"] {
            let bytes = data(shape, file);
            let mut lines = 0;
            let mut fractional = 0;
            // A reader learns from the file's first telling line whether it has thread
            // names; a wallet's `[w]` opening a message is then never taken for a thread.
            let mut reader = LineReader::new();
            for (_, l) in split_lines(&bytes, 0) {
                let known = reader.threads() != ThreadNames::Unknown;
                let Ok(line) = reader.parse(l) else {
                    continue;
                };
                lines += 1;
                let at = format!("{}/{file}: {}", shape.dir, String::from_utf8_lossy(l));
                // Before the first telling line, a wallet's `[w]` opening the message still
                // reads as a thread without -logthreadnames (the excerpts open with one).
                let wallet_as_thread = !known && !shape.threads && line.thread == Some(&b"w"[..]);
                assert_eq!(
                    line.thread.is_some() && !wallet_as_thread,
                    shape.threads,
                    "{at}"
                );
                assert_eq!(line.location.is_some(), shape.locations, "{at}");
                assert_eq!(line.function.is_some(), shape.locations, "{at}");
                if shape.level_always {
                    assert!(line.category.is_some() && line.level.is_some(), "{at}");
                }
                if let Some(loc) = line.location {
                    let colon = loc.iter().rposition(|&b| b == b':').expect("file:line");
                    let (file, no) = (&loc[..colon], &loc[colon + 1..]);
                    assert!(file.ends_with(b".cpp") || file.ends_with(b".h"), "{at}");
                    assert!(!no.is_empty() && no.iter().all(u8::is_ascii_digit), "{at}");
                }
                // GCC's whole signatures: `void UpdateTipLog(const ChainstateManager&, ..)`.
                if let Some(f) = line.function {
                    assert!(f.contains(&b'(') && f.contains(&b' '), "{at}");
                }
                // What is left starts with the message itself; the only bracket a message
                // opens with here is the wallet's name.
                let m = line.message;
                assert!(!m.starts_with(b"[") || m.starts_with(b"[w] "), "{at}");
                assert!(
                    !m.starts_with(b" ") || m.trim_ascii_start().starts_with(b"- "),
                    "{at}"
                );
                if line.time.0 % 1_000_000 != 0 {
                    fractional += 1;
                }
            }
            assert!(lines > 10, "{}/{file}", shape.dir);
            if shape.micros {
                assert!(fractional > lines / 2, "{}/{file}", shape.dir);
            } else {
                assert_eq!(fractional, 0, "{}/{file}", shape.dir);
            }
        }
    }
}
