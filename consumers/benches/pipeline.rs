//! Throughput of the ClickHouse writer's whole path — JetStream → decode → rows → ClickHouse
//! insert → ack — next to what raw NATS and raw ClickHouse do on the same machine in the same
//! run, so a MISS can be blamed on the right part.
//!
//! Run with `cargo bench -p bmon-consumers --bench pipeline` (real nats-server and
//! clickhouse-server, started like the tests start them). `BMON_BENCH_EVENTS` sets the number
//! of events (default 300,000), `BMON_BENCH_BATCH` and `BMON_BENCH_LINGER_MS` override the
//! consumer's batch size and linger (defaults: the consumer's defaults). The machine is
//! shared by the three processes: every figure is for all of them on the same cores.
//!
//! Target: 100,000 events/s. Where it comes from: a peak of ~50 transactions/s relayed on
//! mainnet, two events each (tx_seen, tx_removed), across a fleet of 100 nodes, is 10,000
//! events/s; ×10 headroom for backfills and replays (`bmon replay ch-writer` must rebuild
//! days of history in minutes). The raw lines share the target: each part alone must at
//! least sustain what the whole must.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream, AckKind};
use consumers::metrics::Metrics;
use consumers::writer::Rows;
use futures::StreamExt;
use schema::Envelope;
use tokio_util::sync::CancellationToken;

/// Events per second the writer must sustain end to end.
const TARGET_EVENTS_PER_SEC: f64 = 100_000.0;

fn line(name: &str, per_sec: f64) {
    let verdict = if per_sec >= TARGET_EVENTS_PER_SEC {
        "PASS"
    } else {
        "MISS"
    };
    println!(
        "{name:<44} {per_sec:>12.0} events/s   target {TARGET_EVENTS_PER_SEC:>9.0}   {verdict}"
    );
}

async fn publish_all(js: &jetstream::Context, subjects_payloads: &[(String, Vec<u8>)]) -> f64 {
    let started = Instant::now();
    for chunk in subjects_payloads.chunks(5000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for (subject, payload) in chunk {
            acks.push(
                js.publish(subject.clone(), payload.clone().into())
                    .await
                    .expect("publish"),
            );
        }
        for a in acks {
            a.await.expect("PubAck");
        }
    }
    subjects_payloads.len() as f64 / started.elapsed().as_secs_f64()
}

async fn raw_consume(
    js: &jetstream::Context,
    stream_name: &str,
    name: &str,
    policy: consumer::AckPolicy,
    n: usize,
    batch: usize,
) -> f64 {
    let st = js.get_stream(stream_name).await.expect("stream");
    let c: consumer::PullConsumer = st
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.to_string()),
            ack_policy: policy,
            max_ack_pending: 4 * batch as i64,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let started = Instant::now();
    let mut messages = c
        .stream()
        .max_messages_per_batch(batch)
        .messages()
        .await
        .expect("pull");
    let mut got = 0usize;
    let mut since_ack = 0usize;
    while got < n {
        let m = messages.next().await.expect("message").expect("message ok");
        got += 1;
        since_ack += 1;
        let last_of_batch = since_ack == batch || got == n;
        if last_of_batch {
            since_ack = 0;
        }
        match policy {
            consumer::AckPolicy::All if !last_of_batch => {}
            _ => m.ack_with(AckKind::Ack).await.expect("ack"),
        }
    }
    js.client().flush().await.expect("flush");
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("BMON_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let batch: usize = std::env::var("BMON_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(consumers::config::ConsumerConfig::default().batch_size);
    let s = common::Services::start(None).await;
    let envelopes: Vec<Envelope> = common::samples::mixed(n as u64, 1);
    println!(
        "bmon-consumers pipeline bench: {n} events (mostly tx_seen), batches of {batch}, nats-server + clickhouse-server on this machine"
    );

    // Raw NATS: publish to a plain stream, then consume it two ways.
    s.js.create_stream(stream::Config {
        name: "BENCH_RAW".into(),
        subjects: vec!["bench.raw.>".into()],
        max_bytes: 1 << 30,
        ..Default::default()
    })
    .await
    .expect("bench stream");
    let raw: Vec<(String, Vec<u8>)> = envelopes
        .iter()
        .map(|e| (format!("bench.raw.{}", e.node), e.encode().expect("encode")))
        .collect();
    let publish_rate = publish_all(&s.js, &raw).await;
    line("raw NATS JetStream publish (PubAck awaited)", publish_rate);
    let explicit = raw_consume(
        &s.js,
        "BENCH_RAW",
        "each",
        consumer::AckPolicy::Explicit,
        n,
        batch,
    )
    .await;
    line("raw NATS pull consume, ack every message", explicit);
    let all = raw_consume(
        &s.js,
        "BENCH_RAW",
        "last",
        consumer::AckPolicy::All,
        n,
        batch,
    )
    .await;
    line("raw NATS pull consume, AckAll per batch", all);

    // CPU only: decoding the messages and mapping them to rows, as the writer does.
    let started = Instant::now();
    let mut rows = 0usize;
    for chunk in raw.chunks(batch) {
        let decoded: Vec<Envelope> = chunk
            .iter()
            .map(|(_, payload)| Envelope::decode(payload).expect("decode"))
            .collect();
        rows += Rows::from_batch(&decoded).len();
    }
    assert_eq!(rows, n);
    line(
        "decode + row mapping (CPU only)",
        n as f64 / started.elapsed().as_secs_f64(),
    );

    // Raw ClickHouse: the writer's rows, inserted in batches of 5,000, no NATS.
    let ch_db = s.ch.fresh_database();
    let mut cfg = s.config();
    cfg.clickhouse.database = ch_db.clone();
    consumers::migrations::apply(
        &consumers::clickhouse_server_client(&cfg.clickhouse),
        &ch_db,
    )
    .await
    .expect("migrations");
    let client = consumers::clickhouse_client(&cfg.clickhouse);
    let metrics = Metrics::new();
    let batches: Vec<Rows> = envelopes.chunks(batch).map(Rows::from_batch).collect();
    let started = Instant::now();
    for rows in &batches {
        rows.insert(&client, &metrics).await.expect("insert");
    }
    line(
        &format!("raw ClickHouse insert (writer rows, {batch}/batch)"),
        n as f64 / started.elapsed().as_secs_f64(),
    );

    // The pipeline: events already in BMON_EVENTS, then ch-writer drains them.
    common::publish(&s.js, &envelopes, true).await;
    let token = CancellationToken::new();
    let writer_metrics = Arc::new(Metrics::new());
    let started = Instant::now();
    let mut config = s.config();
    config.consumer.batch_size = batch;
    config.consumer.linger_ms = std::env::var("BMON_BENCH_LINGER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(consumers::config::ConsumerConfig::default().linger_ms);
    let writer = tokio::spawn(consumers::run_with_metrics(
        "ch-writer",
        config,
        writer_metrics,
        token.clone(),
    ));
    loop {
        if s.backlog("ch-writer").await == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "pipeline did not drain within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pipeline = n as f64 / started.elapsed().as_secs_f64();
    token.cancel();
    writer.await.expect("join").expect("writer");
    line("pipeline JetStream -> ch-writer -> ClickHouse", pipeline);
    let stored: usize = s
        .sql("SELECT count() FROM {db}.tx_seen FINAL")
        .trim()
        .parse()
        .expect("count");
    assert!(stored > 0, "nothing stored");
}
