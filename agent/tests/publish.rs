//! The publisher against a real nats-server: de-duplication, spooling while NATS is down, and
//! draining a spool left by a previous run, also when NATS goes away in the middle of the drain.

use std::time::Duration;

use agent::publish::{self, Publisher};
use agent::spool::Spool;
use agent::Metrics;
use async_nats::jetstream::{self, stream};
use schema::event::{Source, TxSeen};
use schema::{Envelope, Event, Kind, NodeId, UnixMicros};
use test_support::{wait_until, NatsServer};
use tokio::sync::mpsc;

fn node() -> NodeId {
    NodeId::new("node0").unwrap()
}

/// A distinct `tx_seen` per `i` (the mempool sequence is part of its id).
fn event(i: u64) -> Envelope {
    let txid = "20b5033ea59d99d9b8afae4bf6eac07b82b676a846ebc1358d2a4470c9d1e6f4"
        .parse()
        .unwrap();
    Envelope::new(
        node(),
        UnixMicros(1_795_621_972_000_000 + i as i64),
        Event::TxSeen(TxSeen {
            txid,
            wtxid: None,
            mempool_sequence: Some(i),
            vsize: Some(141),
            fee: None,
            source: Source::Zmq,
            parents: Vec::new(),
            spends: Vec::new(),
        }),
    )
}

/// What `bmon setup` creates, for tests.
async fn create_stream(url: &str) -> jetstream::stream::Stream {
    let client = async_nats::connect(url).await.unwrap();
    let js = jetstream::new(client);
    js.create_stream(stream::Config {
        name: schema::subject::EVENTS_STREAM.into(),
        subjects: vec![schema::subject::EVENTS_SUBJECTS.into()],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn message_count(url: &str) -> u64 {
    let Ok(client) = async_nats::connect(url).await else {
        return 0;
    };
    let js = jetstream::new(client);
    match js.get_stream(schema::subject::EVENTS_STREAM).await {
        Ok(s) => s.get_info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Every envelope in the stream, in stream order.
async fn stream_envelopes(url: &str) -> Vec<(Envelope, async_nats::HeaderMap)> {
    let client = async_nats::connect(url).await.unwrap();
    let js = jetstream::new(client);
    let s = js.get_stream(schema::subject::EVENTS_STREAM).await.unwrap();
    let info = s.get_info().await.unwrap();
    let mut out = Vec::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        if info.state.messages == 0 {
            break;
        }
        let m = s.get_raw_message(seq).await.unwrap();
        out.push((Envelope::decode(&m.payload).unwrap(), m.headers));
    }
    out
}

/// `bmon_agent_spool_events` as the metrics endpoint shows it.
fn spool_events(m: &Metrics) -> u64 {
    m.render()
        .lines()
        .find(|l| l.starts_with("bmon_agent_spool_events{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn start_publisher(
    url: &str,
    spool_dir: &std::path::Path,
    max_bytes: u64,
) -> (
    mpsc::Sender<Envelope>,
    tokio::task::JoinHandle<u64>,
    Metrics,
) {
    let metrics = Metrics::new(&node());
    let client = publish::connect(&nats_config(url), &node()).await.unwrap();
    let spool = Spool::open(spool_dir, max_bytes).unwrap();
    let publisher = Publisher::new(client, spool, metrics.clone(), node())
        .with_retry(Duration::from_millis(100));
    let (tx, rx) = mpsc::channel(1024);
    (tx, tokio::spawn(publisher.run(rx)), metrics)
}

#[tokio::test]
async fn the_same_event_twice_is_one_stream_message_with_all_headers() {
    let nats = NatsServer::start();
    create_stream(&nats.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let (tx, task, metrics) = start_publisher(&nats.url(), dir.path(), 1 << 20).await;
    // The publisher connects in the background; events sent before that are spooled and
    // drained in order, so no wait is needed here.
    tx.send(event(1)).await.unwrap();
    tx.send(event(1)).await.unwrap();
    tx.send(event(2)).await.unwrap();
    drop(tx);
    let left = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left, 0);
    let msgs = stream_envelopes(&nats.url()).await;
    assert_eq!(msgs.len(), 2, "duplicate not removed");
    let (env, headers) = &msgs[0];
    assert_eq!(env, &event(1));
    assert_eq!(
        headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some(env.id.to_hex().as_str())
    );
    assert_eq!(
        headers.get("Bmon-Kind").map(|v| v.as_str()),
        Some("tx_seen")
    );
    assert_eq!(headers.get("Bmon-Node").map(|v| v.as_str()), Some("node0"));
    assert_eq!(
        headers.get("Content-Type").map(|v| v.as_str()),
        Some("application/msgpack")
    );
    assert!(metrics.published_count(Kind::TxSeen) >= 2);
}

#[tokio::test]
async fn events_produced_while_nats_is_down_arrive_once_and_in_order() {
    let mut nats = NatsServer::start();
    let url = nats.url();
    create_stream(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let (tx, task, metrics) = start_publisher(&url, dir.path(), 1 << 20).await;

    for i in 0..50 {
        tx.send(event(i)).await.unwrap();
    }
    wait_until(Duration::from_secs(20), "first 50 events stored", || {
        let url = url.clone();
        async move { message_count(&url).await == 50 }
    })
    .await;

    nats.stop();
    // The first event after the outage finds out about it (its PubAck times out) and is
    // spooled. A pipelined batch that straddles the very moment of the outage may be stored
    // partly out of order (see `publish` docs); a batch of one cannot.
    tx.send(event(50)).await.unwrap();
    wait_until(Duration::from_secs(20), "the outage noticed", || {
        let m = metrics.clone();
        async move { spool_events(&m) >= 1 }
    })
    .await;
    for i in 51..300 {
        tx.send(event(i)).await.unwrap();
    }
    wait_until(
        Duration::from_secs(20),
        "events spooled while NATS is down",
        || {
            let m = metrics.clone();
            async move { spool_events(&m) == 250 }
        },
    )
    .await;
    nats.restart();
    for i in 300..350 {
        tx.send(event(i)).await.unwrap();
    }
    wait_until(Duration::from_secs(60), "all 350 events stored", || {
        let url = url.clone();
        async move { message_count(&url).await >= 350 }
    })
    .await;
    drop(tx);
    let left = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left, 0);

    let msgs = stream_envelopes(&url).await;
    let order: Vec<u64> = msgs
        .iter()
        .map(|(e, _)| match &e.event {
            Event::TxSeen(t) => t.mempool_sequence.unwrap(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(order, (0..350).collect::<Vec<u64>>());
}

#[tokio::test]
async fn a_restarted_agent_drains_the_spool_it_left() {
    let nats = NatsServer::start();
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    // A previous run spooled 20 events (NATS was unreachable) and stopped.
    {
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for i in 0..20 {
            let env = event(i);
            assert!(spool
                .append(&env.encode().unwrap(), env.observed_at)
                .unwrap());
        }
    }
    create_stream(&url).await;
    let (tx, task, metrics) = start_publisher(&url, dir.path(), 1 << 20).await;
    // New events queue behind the spooled ones.
    for i in 20..30 {
        tx.send(event(i)).await.unwrap();
    }
    wait_until(Duration::from_secs(30), "spool drained", || {
        let url = url.clone();
        async move { message_count(&url).await == 30 }
    })
    .await;
    drop(tx);
    assert_eq!(task.await.unwrap(), 0);
    let order: Vec<u64> = stream_envelopes(&url)
        .await
        .iter()
        .map(|(e, _)| match &e.event {
            Event::TxSeen(t) => t.mempool_sequence.unwrap(),
            _ => u64::MAX,
        })
        .collect();
    assert_eq!(order, (0..30).collect::<Vec<u64>>());
    assert!(Spool::open(dir.path(), 1 << 20).unwrap().is_empty());
    assert!(metrics
        .render()
        .contains("bmon_agent_spool_events{node=\"node0\"} 0"));
}

#[tokio::test]
async fn events_past_the_spool_bound_become_one_gap_event() {
    let mut nats = NatsServer::start();
    let url = nats.url();
    create_stream(&url).await;
    nats.stop();
    let dir = tempfile::tempdir().unwrap();
    let per_event = 4 + event(0).encode().unwrap().len() as u64;
    // Room for 10 events (the spool's minimum segment size does not bound the total).
    let (tx, task, metrics) = start_publisher(&url, dir.path(), per_event * 10).await;
    for i in 0..25 {
        tx.send(event(i)).await.unwrap();
    }
    wait_until(Duration::from_secs(10), "drops counted", || {
        let m = metrics.clone();
        async move {
            m.render()
                .contains("bmon_agent_spool_dropped_events_total{node=\"node0\"} 15")
        }
    })
    .await;
    nats.restart();
    wait_until(
        Duration::from_secs(30),
        "spool drained and gap published",
        || {
            let url = url.clone();
            async move { message_count(&url).await == 11 }
        },
    )
    .await;
    drop(tx);
    assert_eq!(task.await.unwrap(), 0);
    let msgs = stream_envelopes(&url).await;
    let gap = msgs
        .iter()
        .find_map(|(e, _)| match &e.event {
            Event::Gap(g) => Some(g.clone()),
            _ => None,
        })
        .expect("a gap event");
    assert_eq!(gap.lost_events, 15);
    assert_eq!(gap.from, event(10).observed_at);
    assert_eq!(gap.to, event(24).observed_at);
}

#[tokio::test]
async fn an_outage_in_the_middle_of_a_spool_drain_loses_nothing() {
    const N: u64 = 20_000;
    let mut nats = NatsServer::start();
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    // A previous run left a large spool.
    {
        let mut spool = Spool::open(dir.path(), 64 << 20).unwrap();
        for i in 0..N {
            let env = event(i);
            assert!(spool
                .append(&env.encode().unwrap(), env.observed_at)
                .unwrap());
        }
    }
    create_stream(&url).await;
    let (tx, task, _metrics) = start_publisher(&url, dir.path(), 64 << 20).await;
    // NATS goes away while the drain is under way: batches in flight then have PubAcks that
    // fail early in the batch and sends that fail later in it.
    wait_until(Duration::from_secs(30), "the drain under way", || {
        let url = url.clone();
        async move { message_count(&url).await >= 500 }
    })
    .await;
    nats.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.restart();
    // Every spooled event ends up in the stream (re-sends are de-duplicated by id, so the
    // count reaches N only if none was removed from the spool unacknowledged).
    wait_until(
        Duration::from_secs(90),
        "every spooled event stored",
        || {
            let url = url.clone();
            async move { message_count(&url).await == N }
        },
    )
    .await;
    drop(tx);
    let left = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_commit_token_is_answered_only_once_the_events_before_it_are_spooled() {
    // No server behind the URL: everything is spooled.
    let url = format!("nats://127.0.0.1:{}", test_support::free_port());
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new(&node());
    let client = publish::connect(&nats_config(&url), &node()).await.unwrap();
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    let publisher = Publisher::new(client, spool, metrics.clone(), node())
        .with_retry(Duration::from_millis(100));
    let (tx, rx) = mpsc::channel::<publish::Item>(1024);
    let task = tokio::spawn(publisher.run(rx));
    for i in 0..3 {
        tx.send(event(i).into()).await.unwrap();
    }
    let (done, durable) = tokio::sync::oneshot::channel();
    tx.send(publish::Item::Commit(done)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), durable)
        .await
        .expect("the token is answered")
        .expect("the publisher answers rather than dropping the token");
    assert_eq!(
        spool_events(&metrics),
        3,
        "every event before the token is in the spool when it is answered"
    );
    drop(tx);
    let left = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left, 3);
}

#[tokio::test]
async fn a_commit_token_is_answered_once_the_events_before_it_are_acknowledged() {
    let nats = NatsServer::start();
    create_stream(&nats.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new(&node());
    let client = publish::connect(&nats_config(&nats.url()), &node())
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "connected to NATS", || async {
        client.connection_state() == async_nats::connection::State::Connected
    })
    .await;
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    let publisher = Publisher::new(client, spool, metrics.clone(), node());
    let (tx, rx) = mpsc::channel::<publish::Item>(1024);
    let task = tokio::spawn(publisher.run(rx));
    for i in 0..300 {
        tx.send(event(i).into()).await.unwrap();
    }
    let (done, durable) = tokio::sync::oneshot::channel();
    tx.send(publish::Item::Commit(done)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), durable)
        .await
        .expect("the token is answered")
        .expect("the publisher answers rather than dropping the token");
    // Acknowledged means stored: the stream holds all of them before the publisher stops.
    assert_eq!(stream_envelopes(&nats.url()).await.len(), 300);
    assert_eq!(spool_events(&metrics), 0);
    drop(tx);
    let left = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left, 0);
}

/// The agent's NATS settings for a server at `url`, without credentials.
fn nats_config(url: &str) -> agent::config::NatsConfig {
    agent::config::NatsConfig {
        url: url.to_string(),
        credentials_file: None,
        nkey_seed_file: None,
        tls: None,
    }
}
