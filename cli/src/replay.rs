//! `bmon replay NAME`: delete and recreate a durable consumer on each of its streams, so it
//! starts again from the first message, then follow its backlog down to zero.
//!
//! The consumer process keeps running: its pull ends with "consumer deleted", it recreates
//! the consumer (from the start of the stream, like this command does) and consumes
//! everything again. Consumers are idempotent (the writer's tables collapse copies with FINAL,
//! detectors keep seen-sets), so a replay reaches the same result.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use consumers::definitions::{consumer_backlog, delete_consumer, ensure_consumer};

use crate::services::{definitions, Services};

/// Options of `bmon replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The durable consumer (`ch-writer`, `det-<name>`).
    name: String,
    /// Stream and consumer definitions instead of the built-in nats/streams.toml.
    #[arg(long)]
    definitions: Option<PathBuf>,
    /// Reset and return without waiting for the consumer to catch up.
    #[arg(long)]
    no_wait: bool,
    /// Give up (exit 1) if the consumer has not caught up after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout_secs: u64,
}

/// Runs `bmon replay`.
pub async fn run(services: &Services, args: Args) -> anyhow::Result<()> {
    let defs = definitions(args.definitions.as_deref())?;
    let def = defs.consumer(&args.name)?.clone();
    let js = services.jetstream().await?;
    for stream in &def.streams {
        delete_consumer(&js, stream, &def.name)
            .await
            .with_context(|| format!("cannot delete {} on {stream}", def.name))?;
        ensure_consumer(&js, stream, &def)
            .await
            .with_context(|| format!("cannot recreate {} on {stream}", def.name))?;
    }
    println!(
        "{}: reset to the start of {}",
        def.name,
        def.streams.join(", ")
    );
    if args.no_wait {
        return Ok(());
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let mut last_change = Instant::now();
    let mut last_line: Option<Instant> = None;
    let mut hinted = false;
    // A bar for a person at a terminal; plain lines every few seconds for a log or a script.
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix}: [{bar:40}] {pos}/{len} messages, {per_sec}, ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(def.name.clone());
    let mut progress = Progress::default();
    loop {
        let mut left = 0u64;
        for stream in &def.streams {
            let b = consumer_backlog(&js, stream, &def.name)
                .await
                .with_context(|| format!("cannot read {} on {stream}", def.name))?;
            left += b.pending + b.ack_pending;
        }
        if progress.update(left) {
            last_change = Instant::now();
        }
        bar.set_length(progress.total);
        bar.set_position(progress.done());
        let due = last_line.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
        if left == 0 || due {
            bar.suspend(|| println!("{}", progress.line(&def.name, started.elapsed())));
            last_line = Some(Instant::now());
        }
        if left == 0 {
            bar.finish_and_clear();
            println!(
                "{}: caught up in {:.1} s",
                def.name,
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if !hinted && last_change.elapsed() > Duration::from_secs(15) {
            bar.suspend(|| {
                eprintln!(
                    "{}: no progress for 15 s; is `bmon-consumer {}` running?",
                    def.name, def.name
                )
            });
            hinted = true;
        }
        if Instant::now() > deadline {
            bail!(
                "{} still has {left} messages left after {} s",
                def.name,
                args.timeout_secs
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How far a replay has come: messages done out of the most the backlog has held (the stream
/// may grow while the replay runs).
#[derive(Debug, Default, Clone, PartialEq)]
struct Progress {
    total: u64,
    left: Option<u64>,
}

impl Progress {
    /// Takes a new backlog; whether it changed.
    fn update(&mut self, left: u64) -> bool {
        let done = self.done();
        self.total = self.total.max(done + left);
        let changed = self.left != Some(left);
        self.left = Some(left);
        changed
    }

    fn done(&self) -> u64 {
        self.total.saturating_sub(self.left.unwrap_or(self.total))
    }

    /// `ch-writer: 1200 of 3000 messages (40%), 850/s, about 2 s left`.
    fn line(&self, name: &str, elapsed: Duration) -> String {
        let done = self.done();
        let left = self.left.unwrap_or(0);
        let pct = (done * 100).checked_div(self.total).unwrap_or(100);
        let secs = elapsed.as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let eta = if left == 0 {
            "done".to_string()
        } else if rate > 0.0 {
            format!("about {:.0} s left", left as f64 / rate)
        } else {
            "no progress yet".to_string()
        };
        format!(
            "{name}: {done} of {} messages ({pct}%), {rate:.0}/s, {eta}",
            self.total
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_done_out_of_the_largest_backlog_with_rate_and_eta() {
        let mut p = Progress::default();
        assert!(p.update(3000));
        assert_eq!(
            p.line("ch-writer", Duration::from_secs(1)),
            "ch-writer: 0 of 3000 messages (0%), 0/s, no progress yet"
        );
        assert!(p.update(1800));
        assert_eq!(p.done(), 1200);
        assert_eq!(
            p.line("ch-writer", Duration::from_secs(2)),
            "ch-writer: 1200 of 3000 messages (40%), 600/s, about 3 s left"
        );
        // New messages arrived meanwhile: the total grows, what is done stays.
        assert!(p.update(2000));
        assert_eq!((p.done(), p.total), (1200, 3200));
        assert!(!p.update(2000));
        p.update(0);
        assert!(p
            .line("x", Duration::from_secs(4))
            .ends_with("(100%), 800/s, done"));
    }
}
