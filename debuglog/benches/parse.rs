//! debug.log parsing throughput on one core, on the shared 1M-line benchmark file.
//!
//! `cargo bench -p bmon-debuglog --bench parse` generates the file with
//! `python3 shared/bench/gen_debug_log.py OUT 1000000 1` in a temp dir, or reuses the file
//! named by `BMON_BENCH_LOG`. The file is read into memory first: the figures are the parser's
//! and extractor's, not the disk's. One line per figure, next to the figures of
//! shared/bench/README.md measured on the same file and machine kind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use debuglog::{parse_line, split_lines, Extractor};
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

    let mut counts = Vec::new();
    let full = best_of(3, || {
        let mut x = Extractor::new();
        let mut out = Vec::new();
        let mut bad = 0usize;
        for (_, l) in split_lines(&data, 0) {
            match parse_line(l) {
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
    report("parse + extract (every event kind)", lines, mb, full, true);

    let ship = best_of(3, || {
        let mut x = Extractor::new();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for (off, l) in split_lines(&data, 0) {
            if let Ok(line) = parse_line(l) {
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
