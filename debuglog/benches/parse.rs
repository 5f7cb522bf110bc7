//! debug.log parsing throughput on one core, on the shared 1M-line benchmark file.
//!
//! `cargo bench -p bmon-debuglog --bench parse` generates the file with
//! `python3 shared/bench/gen_debug_log.py OUT 1000000 1` in a temp dir, or reuses the file
//! named by `BMON_BENCH_LOG`. The file is read into memory first: the figures are the parser's
//! and extractor's, not the disk's. One line per figure, next to the figures of
//! shared/bench/README.md measured on the same file and machine kind.
//!
//! The generator writes one prefix shape (`-logtimemicros -logthreadnames`, categories). The
//! same lines are then rewritten in memory into every prefix shape Core v30 writes (with and
//! without micros, `[thread]`, `[file:line] [function]` with GCC's whole signatures as a real
//! v30 build prints them, `[category:level]` of `-loglevelalways`), and parse + extract is
//! measured on each, beside the same target. Every shape must give the same events.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use debuglog::{parse_line, split_lines, Extractor, LineReader};
use schema::Kind;

/// Target for the full parse + extract pass: 5M lines/s on one core. A busy mainnet node
/// with `-debug=net,mempool,mempoolrej,cmpctblock,validation,bench` writes a few hundred
/// lines/s; 5M lines/s lets one agent core backfill a day of such a log in well under a
/// second and sits at 1/7 of `wc -l` on this machine, 12x the regex-per-line Rust matcher.
const TARGET_LINES_PER_SEC: f64 = 5_000_000.0;

/// Reference figures from shared/bench/README.md (same file, same machine kind).
const REFERENCES: &[(&str, f64, f64)] = &[
    ("python/django monitor (reference)", 83_000.0, 10.0),
    ("regex-per-line rust (reference)", 416_000.0, 50.0),
    ("wc -l (reference)", 36_000_000.0, 4_400.0),
];

/// Blocks in the seed-1 1M-line file (shared/bench/README.md).
const BLOCKS_IN_SEED_1: usize = 124;

fn main() {
    let (path, _dir) = input();
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let lines = split_lines(&data, 0).count();
    let mb = data.len() as f64 / 1e6;
    println!(
        "debug.log benchmark: {} lines, {:.1} MB, one core ({})",
        lines,
        mb,
        path.display()
    );

    let split = best_of(3, || split_lines(&data, 0).count());
    report("split lines (memchr)", lines, mb, split, false);

    let parse = best_of(3, || {
        split_lines(&data, 0)
            .filter(|(_, l)| parse_line(l).is_ok())
            .count()
    });
    report("parse lines", lines, mb, parse, false);

    let (full, counts) = parse_extract(&data);
    report("parse + extract (every event kind)", lines, mb, full, true);

    let ship = best_of(3, || {
        let mut x = Extractor::new();
        let mut reader = LineReader::new();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for (off, l) in split_lines(&data, 0) {
            if let Ok(line) = reader.parse(l) {
                bytes += line.to_log_line(off).message.len();
                x.feed_into(&line, &mut out);
            }
            out.clear();
        }
        bytes
    });
    report(
        "parse + extract + LogLine copy (agent)",
        lines,
        mb,
        ship,
        false,
    );

    println!("parse + extract per prefix shape (same lines, same events):");
    for f in FORMATS {
        let text = render(&data, f);
        let (took, shape_counts) = parse_extract(&text);
        report(
            &format!("  {}", f.name),
            lines,
            text.len() as f64 / 1e6,
            took,
            true,
        );
        if shape_counts != counts {
            println!("MISS: {} gives other events: {shape_counts:?}", f.name);
        }
    }

    for (name, lps, mbps) in REFERENCES {
        println!("{name:<40} {lps:>14.0} lines/s {mbps:>8.0} MB/s");
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{k}={n}")).collect();
    println!("events: {}", summary.join(" "));
    let timings = counts
        .iter()
        .find(|(k, _)| *k == Kind::BlockTiming)
        .map_or(0, |(_, n)| *n);
    if lines == 1_000_000 && timings != BLOCKS_IN_SEED_1 {
        println!("MISS: expected {BLOCKS_IN_SEED_1} block_timing events, got {timings}");
    }
}

/// Parse (through a `LineReader`, as the agent does) + extract of every line, best of 3; the
/// events found, counted by kind.
fn parse_extract(data: &[u8]) -> (Duration, Vec<(Kind, usize)>) {
    let mut counts = Vec::new();
    let took = best_of(3, || {
        let mut x = Extractor::new();
        let mut reader = LineReader::new();
        let mut out = Vec::new();
        let mut bad = 0usize;
        for (_, l) in split_lines(data, 0) {
            match reader.parse(l) {
                Ok(line) => x.feed_into(&line, &mut out),
                Err(_) => bad += 1,
            }
        }
        out.extend(x.finish());
        counts = Kind::ALL
            .iter()
            .map(|k| (*k, out.iter().filter(|e| e.event.kind() == *k).count()))
            .filter(|(_, n)| *n > 0)
            .collect();
        out.len() + bad
    });
    (took, counts)
}

/// One combination of Core's log prefix options.
struct Format {
    name: &'static str,
    /// `-logtimemicros`
    micros: bool,
    /// `-logthreadnames`
    threads: bool,
    /// `-logsourcelocations`
    locations: bool,
    /// `-loglevelalways`
    level_always: bool,
}

const FORMATS: &[Format] = &[
    shape("plain", false, false, false, false),
    shape("plain, micros", true, false, false, false),
    shape("threads", false, true, false, false),
    shape("threads, micros", true, true, false, false),
    shape("locations", false, false, true, false),
    shape("locations, micros", true, false, true, false),
    shape("threads, locations", false, true, true, false),
    shape("threads, locations, micros", true, true, true, false),
    shape("all + loglevelalways", true, true, true, true),
];

const fn shape(
    name: &'static str,
    micros: bool,
    threads: bool,
    locations: bool,
    level_always: bool,
) -> Format {
    Format {
        name,
        micros,
        threads,
        locations,
        level_always,
    }
}

/// Where v30 logs a message from: `[file:line] [function]` as a GCC build prints them
/// (taken from bmon's own v30.99 captures), by message start, then by category.
fn site(message: &[u8], category: Option<&[u8]>) -> &'static str {
    const PROCESS_MESSAGE: &str = "[net_processing.cpp:3426] [virtual void {anonymous}::PeerManagerImpl::ProcessMessage(CNode&, const std::string&, DataStream&, std::chrono::microseconds, const std::atomic<bool>&)]";
    const CONNECT_TIP: &str = "[validation.cpp:3086] [bool Chainstate::ConnectTip(BlockValidationState&, CBlockIndex*, std::shared_ptr<const CBlock>, ConnectTrace&, DisconnectedBlockTransactions&)]";
    const CONNECT_BLOCK: &str = "[validation.cpp:2402] [bool Chainstate::ConnectBlock(const CBlock&, BlockValidationState&, CBlockIndex*, CCoinsViewCache&, bool)]";
    const BY_START: &[(&[u8], &str)] = &[
        (b"got inv:", "[net_processing.cpp:3989] [virtual void {anonymous}::PeerManagerImpl::ProcessMessage(CNode&, const std::string&, DataStream&, std::chrono::microseconds, const std::atomic<bool>&)]"),
        (b"Requesting ", "[node/txdownloadman_impl.cpp:275] [std::vector<GenTxid> node::TxDownloadManagerImpl::GetRequestsToSend(NodeId, std::chrono::microseconds)]"),
        (b"sending ", "[net.cpp:3899] [void CConnman::PushMessage(CNode*, CSerializedNetMsg&&)]"),
        (b"Flushed ", "[banman.cpp:68] [void BanMan::DumpBanlist()]"),
        (b"AcceptToMemoryPool:", "[net_processing.cpp:3020] [void {anonymous}::PeerManagerImpl::ProcessValidTx(NodeId, const CTransactionRef&, const std::__cxx11::list<std::shared_ptr<const CTransaction> >&)]"),
        (b"Saw new ", "[net_processing.cpp:3416] [void {anonymous}::PeerManagerImpl::LogBlockHeader(const CBlockIndex&, const CNode&, bool)]"),
        (b"UpdateTip:", "[validation.cpp:2890] [void UpdateTipLog(const ChainstateManager&, const CCoinsViewCache&, const CBlockIndex*, const std::string&, const std::string&, const std::string&)]"),
        (b"Initializ", "[blockencodings.cpp:174] [ReadStatus PartiallyDownloadedBlock::InitData(const CBlockHeaderAndShortTxIDs&, const std::vector<std::pair<transaction_identifier<true>, std::shared_ptr<const CTransaction> > >&)]"),
        (b"Successfully reconstructed", "[blockencodings.cpp:221] [ReadStatus PartiallyDownloadedBlock::FillBlock(CBlock&, const std::vector<std::shared_ptr<const CTransaction> >&, bool)]"),
        (b"BlockConnected", "[validationinterface.cpp:216] [ValidationSignals::BlockConnected(ChainstateRole, const std::shared_ptr<const CBlock>&, const CBlockIndex*)::<lambda()>]"),
        // Not in the captures: the site of a captured `SendMessages` line.
        (b"Timeout downloading", "[net_processing.cpp:5635] [virtual bool {anonymous}::PeerManagerImpl::SendMessages(CNode*)]"),
        (b"  - ", CONNECT_TIP),
        (b"- ", CONNECT_TIP),
    ];
    for (start, site) in BY_START {
        if message.starts_with(start) {
            return site;
        }
    }
    match category {
        Some(b"bench") => CONNECT_BLOCK,
        Some(b"mempoolrej") => "[net_processing.cpp:2994] [std::optional<node::PackageToValidate> {anonymous}::PeerManagerImpl::ProcessInvalidTx(NodeId, const CTransactionRef&, const TxValidationState&, bool)]",
        Some(b"mempool") => "[validation.cpp:1240] [void {anonymous}::MemPoolAccept::FinalizeSubpackage(const ATMPArgs&)]",
        Some(b"validation") => "[validationinterface.cpp:251] [void ValidationSignals::BlockChecked(const std::shared_ptr<const CBlock>&, const BlockValidationState&)]",
        _ => PROCESS_MESSAGE,
    }
}

/// The generated lines rewritten with `f`'s prefixes (lines that do not parse are kept as
/// they are).
fn render(data: &[u8], f: &Format) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 2);
    for (_, l) in split_lines(data, 0) {
        let Ok(line) = parse_line(l) else {
            out.extend_from_slice(l);
            out.push(b'\n');
            continue;
        };
        let ts = &l[..l.iter().position(|&b| b == b' ').unwrap_or(l.len())];
        if f.micros || ts.len() < 19 {
            out.extend_from_slice(ts);
        } else {
            out.extend_from_slice(&ts[..19]);
            out.push(b'Z');
        }
        out.push(b' ');
        if f.threads {
            out.push(b'[');
            out.extend_from_slice(line.thread.unwrap_or(b"unknown"));
            out.extend_from_slice(b"] ");
        }
        if f.locations {
            out.extend_from_slice(site(line.message, line.category).as_bytes());
            out.push(b' ');
        }
        match (line.category, line.level, f.level_always) {
            (Some(c), l, true) => bracket(&mut out, c, Some(l.unwrap_or(b"debug"))),
            (None, l, true) => bracket(&mut out, b"all", Some(l.unwrap_or(b"info"))),
            (Some(c), l, false) => bracket(&mut out, c, l),
            (None, Some(l), false) => bracket(&mut out, l, None),
            (None, None, false) => {}
        }
        out.extend_from_slice(line.message);
        out.push(b'\n');
    }
    out
}

fn bracket(out: &mut Vec<u8>, a: &[u8], b: Option<&[u8]>) {
    out.push(b'[');
    out.extend_from_slice(a);
    if let Some(b) = b {
        out.push(b':');
        out.extend_from_slice(b);
    }
    out.extend_from_slice(b"] ");
}

fn report(name: &str, lines: usize, mb: f64, took: Duration, targeted: bool) {
    let secs = took.as_secs_f64().max(1e-9);
    let lps = lines as f64 / secs;
    let verdict = if targeted {
        format!(
            "target >= {:.0} lines/s {}",
            TARGET_LINES_PER_SEC,
            if lps >= TARGET_LINES_PER_SEC {
                "PASS"
            } else {
                "MISS"
            }
        )
    } else {
        String::new()
    };
    println!(
        "{name:<40} {lps:>14.0} lines/s {:>8.0} MB/s  {verdict}",
        mb / secs
    );
}

/// Runs `f` `n` times and keeps the fastest run.
fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..n)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// The benchmark file: `BMON_BENCH_LOG`, or a freshly generated one in a temp dir (kept
/// alive by the returned guard).
fn input() -> (PathBuf, Option<tempfile::TempDir>) {
    if let Some(p) = std::env::var_os("BMON_BENCH_LOG") {
        let p = PathBuf::from(p);
        if p.exists() {
            return (p, None);
        }
        generate(&p);
        return (p, None);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join("debug.log");
    generate(&p);
    (p, Some(dir))
}

fn generate(out: &Path) {
    let script = match std::env::var_os("BMON_SHARED") {
        Some(s) => PathBuf::from(s).join("bench/gen_debug_log.py"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/gen_debug_log.py"),
    };
    println!("generating {} with {}", out.display(), script.display());
    let status = Command::new("python3")
        .arg(&script)
        .arg(out)
        .arg("1000000")
        .arg("1")
        .status()
        .expect("run python3 gen_debug_log.py");
    assert!(status.success(), "gen_debug_log.py failed: {status}");
}
