//! The debug.log files simnet writes: each format's lines have the shape and wording of the
//! real Core lines of that version (the fixtures), their timestamps are the truth file's,
//! a reorg shows as `UpdateTip` stepping down then up, a follower sees lines as they happen,
//! and bmon's own debug.log parser finds in them what the truth file says happened.
//!
//! Three fleets run once, concurrently, for all tests: the same scenario with the formats
//! rotated over the nodes, so each format is a miner, a relay and a leaf once.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bitcoin::BlockHash;
use debuglog::{parse_line, Extractor};
use schema::event::BlockStage;
use schema::Event;
use simnet::truth::TruthEvent;
use simnet::{Fleet, FleetOptions, LogFormat, Scenario, TruthRecord, TruthSink};
use test_support::fixture;

const FORMATS: [LogFormat; 3] = [LogFormat::V30, LogFormat::V25, LogFormat::V018];

/// node0 mines; node2 is cut off for a while and resyncs (blocks arrive whole); a depth-2 reorg
/// reaches every node; transactions flow all the time.
fn scenario(formats: [LogFormat; 3]) -> String {
    format!(
        r#"
seed = 7
duration_ms = 2600
[blocks]
interval_ms = 250
distribution = "fixed"
max_txs = 6
[txs]
rate_per_s = 30.0
[[nodes]]
name = "node0"
mines = true
log_format = "{}"
[[nodes]]
name = "node1"
log_format = "{}"
[[nodes]]
name = "node2"
extra_delay_ms = 5
log_format = "{}"
[[links]]
a = "node1"
b = "node0"
delay_ms = 15
[[links]]
a = "node2"
b = "node1"
delay_ms = 20
[[events]]
kind = "partition"
node = "node2"
at_ms = 700
[[events]]
kind = "heal"
node = "node2"
at_ms = 1200
[[events]]
kind = "reorg"
at_ms = 1800
depth = 2
"#,
        formats[0].name(),
        formats[1].name(),
        formats[2].name()
    )
}

struct NodeRun {
    name: String,
    format: LogFormat,
    path: PathBuf,
    /// Peer name -> the id this node gave it.
    peer_ids: HashMap<String, u64>,
}

struct Run {
    _dir: tempfile::TempDir,
    truth: Vec<TruthRecord>,
    nodes: Vec<NodeRun>,
    /// How long after its timestamp a follower polling the first node's log saw each line, µs.
    tail_lag_us: Vec<i64>,
}

impl Run {
    fn truth_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a TruthRecord> + 'a {
        self.truth.iter().filter(move |r| r.node == node)
    }
}

fn runs() -> &'static [Run] {
    static RUNS: OnceLock<Vec<Run>> = OnceLock::new();
    RUNS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (a, b, c) = tokio::join!(run(0), run(1), run(2));
            vec![a, b, c]
        })
    })
}

async fn run(rotation: usize) -> Run {
    let formats = [0, 1, 2].map(|i| FORMATS[(i + rotation) % 3]);
    let scenario = Scenario::from_toml(&scenario(formats)).expect("scenario parses");
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = Fleet::start_with(
        scenario,
        TruthSink::memory(),
        FleetOptions {
            debug_log_dir: Some(dir.path().to_owned()),
        },
    )
    .await
    .expect("fleet starts");
    let first_log = fleet.nodes()[0]
        .debug_log
        .clone()
        .expect("debug_log reported");
    let stop = Arc::new(AtomicBool::new(false));
    let tail = {
        let stop = stop.clone();
        std::thread::spawn(move || follow(&first_log, &stop))
    };
    tokio::time::timeout(Duration::from_secs(30), fleet.finished())
        .await
        .expect("scenario ends in time");
    stop.store(true, Ordering::Relaxed);
    let tail_lag_us = tail.join().expect("follower thread");
    let nodes = fleet
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, ep)| NodeRun {
            name: ep.name.clone(),
            format: formats[i],
            path: ep.debug_log.clone().expect("debug_log reported"),
            peer_ids: fleet
                .with_node(i, |s| {
                    s.peers.iter().map(|p| (p.name.clone(), p.id)).collect()
                })
                .expect("node state"),
        })
        .collect();
    let truth = fleet.truth();
    fleet.shutdown().await.expect("clean shutdown");
    Run {
        _dir: dir,
        truth,
        nodes,
        tail_lag_us,
    }
}

/// Polls `path` every millisecond like a log follower and returns, for each complete line,
/// how long after its timestamp it was first readable.
fn follow(path: &Path, stop: &AtomicBool) -> Vec<i64> {
    let mut lags = Vec::new();
    let mut pos = 0u64;
    let mut partial = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut f) = std::fs::File::open(path) {
            if f.seek(SeekFrom::Start(pos)).is_ok() {
                let mut buf = Vec::new();
                if let Ok(n) = f.read_to_end(&mut buf) {
                    let seen = simnet::truth::now_us() as i64;
                    pos += n as u64;
                    partial.extend_from_slice(&buf);
                    while let Some(i) = partial.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = partial.drain(..=i).collect();
                        if let Some(t) = parse(&String::from_utf8_lossy(&line)).map(|l| l.t_us) {
                            lags.push(seen - t as i64);
                        }
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    lags
}

/// A line split by hand (independently of bmon's parser): timestamp, `[..]` prefixes, message.
#[derive(Debug, Clone)]
struct Parsed {
    t_us: u64,
    iso: bool,
    micros: bool,
    thread: Option<String>,
    category: Option<String>,
    message: String,
}

/// Core's categories (and levels) as they appear in `[..]` prefixes; any other bracket is a
/// thread name.
const CATEGORIES: &[&str] = &[
    "net",
    "mempool",
    "mempoolrej",
    "validation",
    "bench",
    "cmpctblock",
    "estimatefee",
    "http",
    "rpc",
    "lock",
    "util",
    "zmq",
    "leveldb",
    "coindb",
    "walletdb",
    "addrman",
    "blockstorage",
    "txreconciliation",
    "warning",
    "error",
    "net:error",
];

fn parse(line: &str) -> Option<Parsed> {
    let line = line.trim_end_matches(['\n', '\r']);
    let (ts, rest, iso) = if line.as_bytes().get(10) == Some(&b'T') {
        let (ts, rest) = line.split_once(' ')?;
        (ts.to_owned(), rest, true)
    } else {
        let mut it = line.splitn(3, ' ');
        let d = it.next()?;
        let t = it.next()?;
        (format!("{d} {t}"), it.next().unwrap_or(""), false)
    };
    let t_us = parse_time(&ts)?;
    let micros = ts.contains('.');
    let mut rest = rest;
    let mut thread = None;
    let mut category = None;
    while let Some(r) = rest.strip_prefix('[') {
        let (name, after) = r.split_once("] ")?;
        if CATEGORIES.contains(&name) {
            category = Some(name.to_owned());
        } else if thread.is_none() && category.is_none() {
            thread = Some(name.to_owned());
        } else {
            break;
        }
        rest = after;
    }
    Some(Parsed {
        t_us,
        iso,
        micros,
        thread,
        category,
        message: rest.to_owned(),
    })
}

/// `2026-11-25T15:52:39.141167Z` / `2019-08-12 04:01:45.090664` / without micros, to µs.
fn parse_time(ts: &str) -> Option<u64> {
    let b = ts.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let micros = match ts.get(19..20) {
        Some(".") => {
            let frac: String = ts[20..].chars().take_while(char::is_ascii_digit).collect();
            format!("{frac:0<6}").get(..6)?.parse::<i64>().ok()?
        }
        _ => 0,
    };
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs * 1_000_000 + micros).ok()
}

fn read_lines(path: &Path) -> Vec<Parsed> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(parse)
        .collect()
}

/// The message with hashes, hex numbers and numbers replaced by placeholders, so lines of the
/// same kind from different runs compare equal.
fn template(message: &str) -> String {
    let b = message.as_bytes();
    let hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < b.len() {
        let prev_alnum = i > 0 && b[i - 1].is_ascii_alphanumeric();
        if !prev_alnum
            && b.len() >= i + 64
            && b[i..i + 64].iter().all(|c| hex(*c))
            && b.get(i + 64).is_none_or(|c| !c.is_ascii_alphanumeric())
        {
            out.push_str("{h}");
            i += 64;
            continue;
        }
        if b[i..].starts_with(b"-g") && b.get(i + 2).is_some_and(|c| hex(*c)) {
            // A git commit suffix of a version string (`v30.99.0-g12d5...`).
            i += 2;
            while i < b.len() && hex(b[i]) {
                i += 1;
            }
            continue;
        }
        if b[i..].starts_with(b"0x") {
            out.push_str("0x{x}");
            i += 2;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            continue;
        }
        if b[i].is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            out.push_str("{n}");
            continue;
        }
        let ch = message[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// What kind of line this is: the first three words of its template.
fn line_type(template: &str) -> String {
    template
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What identifies a reorg: old tip, new tip, depth, disconnected, connected.
type ReorgKey = (BlockHash, BlockHash, u32, Vec<BlockHash>, Vec<BlockHash>);

/// Shape of a line's prefix: ISO timestamp, a thread bracket, which category bracket.
type Shape = (bool, bool, Option<String>);

/// The reference lines of each format: files whose prefix shape is that version's, and files
/// that only lend their wording (an older node of the same line family).
fn references(format: LogFormat) -> (Vec<&'static str>, Vec<&'static str>) {
    match format {
        LogFormat::V30 => (
            vec![
                "bitcoin-core-v30/logs/node0.debug.log",
                "bitcoin-core-v30/logs/node1.debug.log",
                "bitcoin-core-v30/logs/node2.debug.log",
            ],
            vec![],
        ),
        LogFormat::V25 => (
            vec!["bmon-testdata/new-header.log"],
            vec!["bmon-testdata/mempool-accepts-log.txt"],
        ),
        LogFormat::V018 => (
            vec![
                "bmon-testdata/logs_gotblock_018.txt",
                "bmon-testdata/logs_badblock_cb_overspent_018.txt",
            ],
            vec!["bmon-testdata/logs_connectblock_basic.txt"],
        ),
    }
}

/// Templates and shapes of the reference lines of `format`, by line type.
struct Reference {
    templates: HashMap<String, BTreeSet<String>>,
    shapes: HashMap<String, BTreeSet<Shape>>,
    all_thread: bool,
    any_category: bool,
}

fn reference(format: LogFormat) -> Reference {
    let (shaped, worded) = references(format);
    let mut r = Reference {
        templates: HashMap::new(),
        shapes: HashMap::new(),
        all_thread: true,
        any_category: false,
    };
    for (rel, with_shape) in shaped
        .iter()
        .map(|p| (p, true))
        .chain(worded.iter().map(|p| (p, false)))
    {
        for l in read_lines(&fixture(rel)) {
            let t = template(&l.message);
            r.templates
                .entry(line_type(&t))
                .or_default()
                .insert(t.clone());
            if with_shape {
                r.all_thread &= l.thread.is_some();
                r.any_category |= l.category.is_some();
                r.shapes.entry(t).or_default().insert((
                    l.iso,
                    l.thread.is_some(),
                    l.category.clone(),
                ));
            }
        }
    }
    r
}

/// Line types every format must write with the reference's exact wording.
fn required_types(format: LogFormat) -> Vec<&'static str> {
    let mut v = vec![
        "Successfully reconstructed block",
        "UpdateTip: new best={h}",
        "- Connect total:",
        "- Load block",
        "- Connect {n}",
    ];
    match format {
        LogFormat::V30 => v.extend([
            "- Connect block:",
            "Saw new header",
            "Saw new cmpctblock",
            "received block {h}",
            "- Disconnect block:",
            "AcceptToMemoryPool: peer={n}: accepted",
            "BlockConnected: block hash={h}",
            "BlockDisconnected: block hash={h}",
            "Enqueuing BlockDisconnected: block",
            "Bitcoin Core version",
            "CreateNewBlock(): block weight:",
        ]),
        LogFormat::V25 => v.extend([
            "Saw new header",
            "Saw new cmpctblock",
            "Initialized PartiallyDownloadedBlock for",
            "AcceptToMemoryPool: peer={n}: accepted",
            "BlockChecked: block hash={h}",
        ]),
        LogFormat::V018 => v.extend([
            "- Connect block:",
            "- Callbacks: {n}ms",
            "Initialized PartiallyDownloadedBlock for",
        ]),
    }
    v
}

#[test]
fn every_format_writes_the_fixture_line_shapes_and_wording() {
    for format in FORMATS {
        let r = reference(format);
        let mut covered = BTreeSet::new();
        let mut problems = Vec::new();
        for run in runs() {
            for node in run.nodes.iter().filter(|n| n.format == format) {
                let datadir = node.path.parent().map(|p| p.display().to_string());
                for l in read_lines(&node.path) {
                    assert!(l.iso && l.micros, "{}: timestamp form {l:?}", format.name());
                    assert_eq!(
                        l.thread.is_some(),
                        r.all_thread,
                        "{}: thread bracket {l:?}",
                        format.name()
                    );
                    if l.category.is_some() {
                        assert!(r.any_category, "{}: category in {l:?}", format.name());
                    }
                    if datadir.as_deref().is_some_and(|d| l.message.contains(d)) {
                        continue;
                    }
                    let t = template(&l.message);
                    let ty = line_type(&t);
                    let Some(known) = r.templates.get(&ty) else {
                        continue;
                    };
                    if !known.contains(&t) {
                        problems.push(format!("wording: {t:?} not among {known:?}"));
                        continue;
                    }
                    covered.insert(ty);
                    if let Some(shapes) = r.shapes.get(&t) {
                        let shape = (l.iso, l.thread.is_some(), l.category.clone());
                        if !shapes.contains(&shape) {
                            problems
                                .push(format!("shape of {t:?}: {shape:?} not among {shapes:?}"));
                        }
                    }
                }
            }
        }
        problems.sort();
        problems.dedup();
        assert!(problems.is_empty(), "{}: {problems:#?}", format.name());
        for ty in required_types(format) {
            assert!(
                covered.contains(ty),
                "{}: no line of type {ty:?} matched the fixtures (covered: {covered:?})",
                format.name()
            );
        }
    }
}

fn update_tips(lines: &[Parsed]) -> Vec<(u64, BlockHash, u32)> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = l.message.strip_prefix("UpdateTip: new best=")?;
            let hash = rest.get(..64)?.parse().ok()?;
            let height = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix("height="))?
                .parse()
                .ok()?;
            Some((l.t_us, hash, height))
        })
        .collect()
}

#[test]
fn connects_disconnects_arrivals_and_accepts_carry_the_truth_times() {
    for run in runs() {
        for node in &run.nodes {
            let lines = read_lines(&node.path);
            let tips = update_tips(&lines);
            let ctx = format!("{} ({})", node.name, node.format.name());
            let mut connects = 0;
            for r in run.truth_of(&node.name) {
                match &r.event {
                    TruthEvent::BlockConnected { hash, height } => {
                        connects += 1;
                        assert!(
                            tips.contains(&(r.t_us, *hash, *height)),
                            "{ctx}: no UpdateTip for {hash} at {}",
                            r.t_us
                        );
                    }
                    TruthEvent::BlockDisconnected { hash, height } => {
                        assert!(
                            tips.iter().any(|t| t.0 == r.t_us && t.2 + 1 == *height),
                            "{ctx}: no UpdateTip down from {hash} at {}",
                            r.t_us
                        );
                    }
                    TruthEvent::BlockReceived {
                        hash,
                        from: Some(_),
                        ..
                    } => {
                        let hex = hash.to_string();
                        let first = lines
                            .iter()
                            .find(|l| l.message.contains(&hex))
                            .unwrap_or_else(|| panic!("{ctx}: block {hex} never logged"));
                        assert!(
                            first.t_us.abs_diff(r.t_us) <= 1000,
                            "{ctx}: first sighting of {hex} logged at {}, truth {}",
                            first.t_us,
                            r.t_us
                        );
                    }
                    TruthEvent::TxAccepted {
                        txid,
                        from: Some(from),
                        ..
                    } => {
                        let peer = node.peer_ids[from];
                        let want = format!("AcceptToMemoryPool: peer={peer}: accepted {txid} ");
                        assert!(
                            lines
                                .iter()
                                .any(|l| l.t_us == r.t_us && l.message.starts_with(&want)),
                            "{ctx}: no accept of {txid} from peer={peer} at {}",
                            r.t_us
                        );
                    }
                    _ => {}
                }
            }
            assert!(connects >= 8, "{ctx}: only {connects} blocks connected");
        }
    }
}

#[test]
fn a_reorg_steps_update_tip_down_to_the_fork_then_up_the_new_branch() {
    let mut reorgs = 0;
    for run in runs() {
        for node in &run.nodes {
            let lines = read_lines(&node.path);
            let tips: Vec<(BlockHash, u32)> = update_tips(&lines)
                .into_iter()
                .map(|(_, h, n)| (h, n))
                .collect();
            for r in run.truth_of(&node.name) {
                let TruthEvent::Reorg {
                    old_tip,
                    old_height,
                    fork_point,
                    fork_height,
                    depth,
                    disconnected,
                    connected,
                    ..
                } = &r.event
                else {
                    continue;
                };
                reorgs += 1;
                assert_eq!(disconnected.len(), *depth as usize);
                // old tip, then each step down (the parent of what was disconnected), then up.
                let mut want = vec![(*old_tip, *old_height)];
                for (k, h) in disconnected.iter().enumerate().skip(1) {
                    want.push((*h, old_height - k as u32));
                }
                want.push((*fork_point, *fork_height));
                for (k, h) in connected.iter().enumerate() {
                    want.push((*h, fork_height + 1 + k as u32));
                }
                assert!(
                    tips.windows(want.len()).any(|w| w == want.as_slice()),
                    "{} ({}): UpdateTip sequence {want:?} not in the log",
                    node.name,
                    node.format.name()
                );
                if node.format != LogFormat::V018 {
                    for h in disconnected {
                        let m = format!("BlockDisconnected: block hash={h} block height=");
                        assert!(lines.iter().any(|l| l.message.starts_with(&m)));
                        assert!(lines
                            .iter()
                            .any(|l| l.message.starts_with(&format!("Enqueuing {m}"))));
                    }
                }
            }
        }
    }
    assert!(
        reorgs >= 9,
        "every node of every run reorgs once, saw {reorgs}"
    );
}

#[test]
fn a_follower_sees_each_line_within_milliseconds_and_files_end_cleanly() {
    for run in runs() {
        let mut lags = run.tail_lag_us.clone();
        assert!(lags.len() > 100, "follower saw {} lines", lags.len());
        lags.sort_unstable();
        let median = lags[lags.len() / 2];
        assert!(median < 5_000, "median lag {median} µs");
        assert!(
            lags[lags.len() * 9 / 10] < 50_000,
            "90th percentile lag {} µs",
            lags[lags.len() * 9 / 10]
        );
        for node in &run.nodes {
            let text = std::fs::read_to_string(&node.path).expect("log readable");
            assert!(text.ends_with('\n'), "{}: partial last line", node.name);
            let last = text.lines().last().unwrap_or("");
            assert!(
                last.ends_with("Shutdown done") || last.ends_with("Shutdown: done"),
                "{}: last line {last:?}",
                node.name
            );
        }
    }
}

#[test]
fn bmon_debuglog_parser_finds_the_truth_in_every_format() {
    for run in runs() {
        for node in &run.nodes {
            let ctx = format!("{} ({})", node.name, node.format.name());
            let bytes = std::fs::read(&node.path).expect("log readable");
            let mut x = Extractor::new();
            let mut events = Vec::new();
            let mut accepts = Vec::new();
            for raw in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let line = parse_line(raw).unwrap_or_else(|e| {
                    panic!(
                        "{ctx}: unparseable {:?}: {e:?}",
                        String::from_utf8_lossy(raw)
                    )
                });
                if let Some(rest) = line.message.strip_prefix(b"AcceptToMemoryPool: peer=") {
                    let text = String::from_utf8_lossy(rest);
                    if let Some(txid) = text.split(" accepted ").nth(1).and_then(|s| s.get(..64)) {
                        accepts.push(txid.to_owned());
                    }
                }
                events.extend(x.feed(&line));
            }
            events.extend(x.finish());

            let truth: Vec<&TruthRecord> = run.truth_of(&node.name).collect();
            let want_tips: Vec<(BlockHash, i64)> = truth
                .iter()
                .filter_map(|r| match r.event {
                    TruthEvent::BlockConnected { hash, .. } => Some((hash, r.t_us as i64)),
                    _ => None,
                })
                .collect();
            let tips: Vec<(BlockHash, i64)> = events
                .iter()
                .filter_map(|e| match &e.event {
                    Event::BlockSeen(s) if s.stage == BlockStage::Tip => {
                        Some((s.hash, e.observed_at.0))
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(tips, want_tips, "{ctx}: connected blocks");

            let want_disc: Vec<BlockHash> = truth
                .iter()
                .filter_map(|r| match r.event {
                    TruthEvent::BlockDisconnected { hash, .. } => Some(hash),
                    _ => None,
                })
                .collect();
            let disc: Vec<BlockHash> = events
                .iter()
                .filter_map(|e| match &e.event {
                    Event::BlockDisconnected(d) => Some(d.hash),
                    _ => None,
                })
                .collect();
            assert_eq!(disc, want_disc, "{ctx}: disconnected blocks");

            let want_reorgs: Vec<ReorgKey> = truth
                .iter()
                .filter_map(|r| match &r.event {
                    TruthEvent::Reorg {
                        old_tip,
                        new_tip,
                        depth,
                        disconnected,
                        connected,
                        ..
                    } => Some((
                        *old_tip,
                        *new_tip,
                        *depth,
                        disconnected.clone(),
                        connected.clone(),
                    )),
                    _ => None,
                })
                .collect();
            let reorgs: Vec<_> = events
                .iter()
                .filter_map(|e| match &e.event {
                    Event::Reorg(r) => Some((
                        r.old_tip,
                        r.new_tip,
                        r.depth,
                        r.disconnected.clone(),
                        r.connected.clone(),
                    )),
                    _ => None,
                })
                .collect();
            assert_eq!(reorgs, want_reorgs, "{ctx}: reorgs");

            // First sighting of each block received from a peer: the truth's receive time.
            let mut first: HashMap<BlockHash, i64> = HashMap::new();
            for e in &events {
                if let Event::BlockSeen(s) = &e.event {
                    if s.stage != BlockStage::Tip {
                        first.entry(s.hash).or_insert(e.observed_at.0);
                    }
                }
            }
            for r in &truth {
                if let TruthEvent::BlockReceived {
                    hash,
                    from: Some(_),
                    ..
                } = r.event
                {
                    let seen = first
                        .get(&hash)
                        .unwrap_or_else(|| panic!("{ctx}: {hash} never seen"));
                    assert!(
                        seen.abs_diff(r.t_us as i64) <= 1000,
                        "{ctx}: {hash} first seen {seen}, received {}",
                        r.t_us
                    );
                }
            }

            // Every connect has its bench timing.
            let timed = events
                .iter()
                .filter(|e| {
                    matches!(&e.event, Event::BlockTiming(t) if t.hash.is_some() && t.connect_total_ms.is_some())
                })
                .count();
            assert_eq!(timed, want_tips.len(), "{ctx}: block timings");

            let want_accepts: Vec<String> = truth
                .iter()
                .filter_map(|r| match &r.event {
                    TruthEvent::TxAccepted {
                        txid,
                        from: Some(_),
                        ..
                    } => Some(txid.to_string()),
                    _ => None,
                })
                .collect();
            assert_eq!(accepts, want_accepts, "{ctx}: accepted transactions");
        }
    }
}
