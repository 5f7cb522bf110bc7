//! How fast a detector consumer turns events into alerts: events published to JetStream →
//! `det-chain` (in-process, production batching: `linger_ms` 50) → `bmon.alert.reorg`.
//!
//! Run with `cargo bench -p bmon-consumers --bench alert_latency` (a real nats-server, started
//! like the tests start it). Two figures, each with its target and PASS or MISS:
//!
//! - **latency**: from just before an event's publish to the arrival of the alert it caused on
//!   a core subscription to `bmon.alert.>`, for `BMON_BENCH_ALERTS` (default 300) reorg
//!   events published one every 10 ms. p50 and p99; goal p99 < 1 s (an operator's page should
//!   not wait on bmon; Alertmanager's own group_wait dwarfs this).
//! - **throughput**: `BMON_BENCH_EVENTS` (default 100,000) `block_seen` events (10 nodes, one
//!   block every 600 s of event time, no alert) already in the stream, consumed by a started
//!   `det-chain` until its backlog is zero: events/s through the whole shell (fetch, decode,
//!   apply, ack). Target 50,000 events/s: the busiest detector input (`tx_seen`, ~50 tx/s
//!   relayed at mainnet peaks × a fleet of 100 nodes = 5,000 events/s) × 10 headroom for
//!   catching up after a restart or a replay.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consumers::definitions::consumer_backlog;
use consumers::metrics::Metrics;
use futures::StreamExt;
use schema::event::{BlockSeen, BlockStage, Reorg, Source};
use schema::{Envelope, Event, EventId, Height, NodeId};
use test_support::NatsServer;

/// p99 of event publish → alert arrival must stay below this.
const TARGET_P99: Duration = Duration::from_secs(1);
/// Events per second a detector consumer must sustain (see the module docs).
const TARGET_EVENTS_PER_SEC: f64 = 50_000.0;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn reorg(i: u64) -> Envelope {
    let b = |n: u64| common::samples::block_hash(1_000_000 + i * 10 + n);
    Envelope::new(
        NodeId::new("node0").expect("node name"),
        common::samples::at(i as i64 * 1_000_000),
        Reorg {
            old_tip: b(1),
            old_height: Height(101),
            new_tip: b(3),
            new_height: Height(102),
            fork_point: b(0),
            fork_height: Height(100),
            depth: 1,
            disconnected: vec![b(1)],
            connected: vec![b(2), b(3)],
            source: Source::Zmq,
        },
    )
}

fn block_seen(i: usize) -> Envelope {
    let block = (i / 10) as u64;
    let node = i % 10;
    Envelope::new(
        NodeId::new(format!("node{node}")).expect("node name"),
        common::samples::at(block as i64 * 600_000_000 + node as i64 * 1000),
        BlockSeen {
            hash: common::samples::block_hash(block),
            height: Some(Height(block as u32)),
            stage: BlockStage::Header,
            peer: Some(1),
            source: Source::Log,
        },
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let n_alerts = env_usize("BMON_BENCH_ALERTS", 300);
    let n_events = env_usize("BMON_BENCH_EVENTS", 100_000);

    let nats = NatsServer::start();
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client.clone());
    let (defs, text) = common::test_definitions(30);
    let defs_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(defs_file.path(), text).expect("write definitions");
    consumers::setup::setup_nats(&js, &defs)
        .await
        .expect("streams and consumers");
    let mut config = common::config(&nats.url(), "http://127.0.0.1:1", "unused");
    config.nats.definitions = Some(defs_file.path().to_path_buf());
    config.consumer.linger_ms = consumers::config::ConsumerConfig::default().linger_ms;

    // Latency: one reorg event every 10 ms, each raising one alert.
    let sent: Arc<Mutex<HashMap<EventId, Instant>>> = Arc::default();
    let mut alerts = client.subscribe("bmon.alert.>").await.expect("subscribe");
    client.flush().await.expect("flush");
    let running = common::spawn_consumer("det-chain", config.clone(), Arc::new(Metrics::new()));
    let collector = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(n_alerts);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while latencies.len() < n_alerts {
                let msg = match tokio::time::timeout_at(deadline, alerts.next()).await {
                    Ok(Some(m)) => m,
                    _ => break,
                };
                let arrived = Instant::now();
                let Ok(env) = Envelope::decode(&msg.payload) else {
                    continue;
                };
                if let Event::Alert(a) = env.event {
                    let published = sent.lock().ok().and_then(|s| s.get(&a.caused_by).copied());
                    if let Some(at) = published {
                        latencies.push(arrived - at);
                    }
                }
            }
            latencies
        })
    };
    for i in 0..n_alerts {
        let ev = reorg(i as u64);
        if let Ok(mut s) = sent.lock() {
            s.insert(ev.id, Instant::now());
        }
        common::publish(&js, std::slice::from_ref(&ev), true).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut latencies = collector.await.expect("collector");
    latencies.sort();
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    let verdict = if latencies.len() == n_alerts && p99 < TARGET_P99 {
        "PASS"
    } else {
        "MISS"
    };
    println!(
        "{:<44} p50 {:>7.1} ms   p99 {:>7.1} ms   ({} of {} alerts)   target p99 < {} ms   {verdict}",
        "det-chain event -> alert latency",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        latencies.len(),
        n_alerts,
        TARGET_P99.as_millis(),
    );
    common::stop_consumer(running).await;

    // Throughput: a backlog of events, consumed from a standing start.
    let events: Vec<Envelope> = (0..n_events).map(block_seen).collect();
    common::publish(&js, &events, true).await;
    let started = Instant::now();
    let running = common::spawn_consumer("det-chain", config, Arc::new(Metrics::new()));
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match consumer_backlog(&js, "BMON_EVENTS", "det-chain").await {
            Ok(b) if b.is_done() => break,
            _ if Instant::now() > deadline => break,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    common::stop_consumer(running).await;
    let per_sec = n_events as f64 / elapsed;
    let verdict = if per_sec >= TARGET_EVENTS_PER_SEC {
        "PASS"
    } else {
        "MISS"
    };
    println!(
        "{:<44} {per_sec:>12.0} events/s   target {TARGET_EVENTS_PER_SEC:>9.0}   {verdict}",
        "det-chain consumer throughput (shell)"
    );
}
