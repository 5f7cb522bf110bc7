//! `bmon parse-log FILE`: run bmon's debug.log parser over a file, offline, and print every event
//! it finds — for debugging a log line shape, checking a new Core version's wording, or
//! measuring the parser on a large file. Needs no NATS and no ClickHouse.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

/// Output formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per event: `kind`, `observed_at` (µs since the epoch), then the payload
    /// fields by their schema names.
    Jsonl,
}

/// Arguments of `bmon parse-log`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The debug.log file to parse.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// Print only the summary (lines, unparseable lines, events, lines/s) on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// Parses the file and writes its events to stdout, a summary to stderr.
pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let stats = match args.format {
        Format::Jsonl if args.quiet => debuglog::jsonl::convert_file(&args.file, std::io::sink()),
        Format::Jsonl => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
            let stats = debuglog::jsonl::convert_file(&args.file, &mut out);
            out.flush().context("write to stdout")?;
            stats
        }
    }
    .with_context(|| format!("parse {}", args.file.display()))?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "{}: {} lines ({} unparseable), {} events, {:.0} lines/s",
        args.file.display(),
        stats.lines,
        stats.unparseable,
        stats.events,
        stats.lines as f64 / secs
    );
    Ok(())
}
