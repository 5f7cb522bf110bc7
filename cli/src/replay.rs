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
    let mut last_left = None;
    let mut last_change = Instant::now();
    let mut hinted = false;
    loop {
        let mut left = 0u64;
        for stream in &def.streams {
            let b = consumer_backlog(&js, stream, &def.name)
                .await
                .with_context(|| format!("cannot read {} on {stream}", def.name))?;
            left += b.pending + b.ack_pending;
        }
        if last_left != Some(left) {
            println!("{}: {left} messages left", def.name);
            last_left = Some(left);
            last_change = Instant::now();
        }
        if left == 0 {
            println!(
                "{}: caught up in {:.1} s",
                def.name,
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if !hinted && last_change.elapsed() > Duration::from_secs(15) {
            eprintln!(
                "{}: no progress for 15 s; is `bmon-consumer {}` running?",
                def.name, def.name
            );
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
