//! Detector consumers on a real nats-server: `det-chain` turns a reorg event into an alert on
//! `bmon.alert.reorg` with its deterministic id; a replay through a fresh durable republishes
//! the same ids and JetStream stores nothing new; a restart rebuilds state from acknowledged
//! events; ticks resolve a one-shot incident during a quiet stream; an undecodable message is
//! dead-lettered while the detector goes on.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{samples, Services};
use consumers::definitions::{delete_consumer, ensure_consumer};
use consumers::detector::alert_to_envelope;
use consumers::metrics::Metrics;
use detectors::{ChainDetector, Detector, Input, Output};
use futures::StreamExt;
use schema::event::{AlertState, Reorg, Source};
use schema::{Envelope, Event, Height, NodeId};

const TIMEOUT: Duration = Duration::from_secs(30);

/// `node` reports the reorg from block 11 (old tip) to 12, 13 over fork point 10.
fn reorg(node: &str, at_us: i64) -> Envelope {
    Envelope::new(
        NodeId::new(node).unwrap(),
        samples::at(at_us),
        Reorg {
            old_tip: samples::block_hash(11),
            old_height: Height(101),
            new_tip: samples::block_hash(13),
            new_height: Height(102),
            fork_point: samples::block_hash(10),
            fork_height: Height(100),
            depth: 1,
            disconnected: vec![samples::block_hash(11)],
            connected: vec![samples::block_hash(12), samples::block_hash(13)],
            source: Source::Zmq,
        },
    )
}

/// The alert envelopes a fresh chain detector makes of `events` (no ticks).
fn expected_alerts(events: &[Envelope], config: &detectors::ChainConfig) -> Vec<Envelope> {
    let mut det = ChainDetector::new(config.clone());
    events
        .iter()
        .flat_map(|e| det.apply(Input::Event(e)))
        .filter_map(|o| match o {
            Output::Alert(a) => Some(alert_to_envelope(detectors::DetectorName::Chain, a)),
            Output::Propagation(_)
            | Output::Divergence(_)
            | Output::Validation(_)
            | Output::Template(_) => None,
        })
        .collect()
}

async fn alert_ids(s: &Services) -> Vec<String> {
    common::stream_messages(&s.js, "BMON_ALERTS")
        .await
        .iter()
        .map(common::msg_id)
        .collect()
}

async fn wait_for_alerts(s: &Services, n: usize, what: &str) {
    test_support::wait_until(TIMEOUT, what, || async {
        common::stream_messages(&s.js, "BMON_ALERTS").await.len() >= n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn det_chain_publishes_the_reorg_alert_and_a_replay_republishes_the_same_ids_only() {
    let s = Services::start(None).await;
    let config = s.config();
    let events = vec![reorg("node0", 1_000_000)];
    let expected = expected_alerts(&events, &config.detectors.chain);
    assert_eq!(expected.len(), 1, "the detector fires once for one reorg");
    common::publish(&s.js, &events, true).await;

    let metrics = Arc::new(Metrics::new());
    let running = common::spawn_consumer("det-chain", config.clone(), metrics.clone());
    wait_for_alerts(&s, 1, "the reorg alert on BMON_ALERTS").await;
    let stored = common::stream_messages(&s.js, "BMON_ALERTS").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].subject.as_str(), "bmon.alert.reorg");
    assert_eq!(common::msg_id(&stored[0]), expected[0].id.to_hex());
    let env = Envelope::decode(&stored[0].payload).expect("alert envelope");
    assert_eq!(env.node.as_str(), "det-chain");
    match &env.event {
        Event::Alert(a) => {
            assert_eq!(a.alert_kind, "reorg");
            assert_eq!(a.state, AlertState::Firing);
            assert_eq!(a.caused_by, events[0].id);
        }
        other => panic!("expected an alert, got {other:?}"),
    }
    test_support::wait_until(TIMEOUT, "det-chain acks its input", || async {
        s.backlog("det-chain").await == 0
    })
    .await;
    common::stop_consumer(running).await;

    // `bmon replay det-chain`: a fresh durable, a fresh process, the whole stream again.
    let def = s.defs.consumer("det-chain").unwrap().clone();
    delete_consumer(&s.js, "BMON_EVENTS", "det-chain")
        .await
        .unwrap();
    ensure_consumer(&s.js, "BMON_EVENTS", &def).await.unwrap();
    let client = async_nats::connect(s.nats.url()).await.unwrap();
    let mut live = client.subscribe("bmon.alert.>").await.unwrap();
    client.flush().await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let running = common::spawn_consumer("det-chain", config, metrics.clone());
    let republished = tokio::time::timeout(TIMEOUT, live.next())
        .await
        .expect("the replay republishes the alert")
        .expect("subscription open");
    let id = republished
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Msg-Id"))
        .map(|v| v.to_string());
    assert_eq!(id, Some(expected[0].id.to_hex()), "same id on replay");
    test_support::wait_until(TIMEOUT, "the replay is acked", || async {
        s.backlog("det-chain").await == 0
    })
    .await;
    common::stop_consumer(running).await;
    assert_eq!(
        alert_ids(&s).await,
        [expected[0].id.to_hex()],
        "JetStream dropped the republished alert"
    );
    let text = metrics.encode();
    assert!(
        text.contains("bmon_detector_duplicate_alerts_total{detector=\"chain\"} 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_detector_rebuilds_its_state_from_acknowledged_events() {
    let s = Services::start(None).await;
    let config = s.config();
    common::publish(&s.js, &[reorg("node0", 1_000_000)], true).await;
    let running = common::spawn_consumer("det-chain", config.clone(), Arc::new(Metrics::new()));
    wait_for_alerts(&s, 1, "the first report's alert").await;
    test_support::wait_until(TIMEOUT, "det-chain acks", || async {
        s.backlog("det-chain").await == 0
    })
    .await;
    common::stop_consumer(running).await;

    // Restarted with the default warm-up: a later report of the same reorg by another node
    // joins the open incident instead of firing a second alert.
    let metrics = Arc::new(Metrics::new());
    let running = common::spawn_consumer("det-chain", config.clone(), metrics.clone());
    common::publish(&s.js, &[reorg("node1", 2_000_000)], true).await;
    test_support::wait_until(TIMEOUT, "det-chain acks the second report", || async {
        s.backlog("det-chain").await == 0
    })
    .await;
    common::stop_consumer(running).await;
    assert_eq!(
        alert_ids(&s).await.len(),
        1,
        "no second alert after warm-up"
    );
    assert!(metrics
        .encode()
        .contains("bmon_detector_warmup_events_total{detector=\"chain\"} 1"));

    // Without warm-up the detector has forgotten the incident: a third report fires anew.
    let mut cold = config;
    cold.consumer.warmup_secs = Some(0);
    let running = common::spawn_consumer("det-chain", cold, Arc::new(Metrics::new()));
    common::publish(&s.js, &[reorg("node2", 3_000_000)], true).await;
    wait_for_alerts(&s, 2, "a new alert from a detector without state").await;
    common::stop_consumer(running).await;
}

/// A consumer restarted right after a stop gets what was published in between at once, not
/// after `ack_wait`: the stopped one's waiting pull request is ended on the server, so the
/// server never hands a message to a process that is gone. (On a loaded machine that message
/// sat unacknowledged for the whole `ack_wait`, 30 s, and a restart test timed out.) The
/// window is small on an idle machine, so the stop-publish-restart cycle runs 100 times:
/// without the fix, a round waits out `ack_wait` within the first 50 or so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_restarted_at_once_gets_new_events_without_waiting_for_ack_wait() {
    const ACK_WAIT: Duration = Duration::from_secs(30);
    let s = Services::start(Some(ACK_WAIT.as_secs())).await;
    let config = s.config();
    for round in 0..100u8 {
        let running = common::spawn_consumer("det-chain", config.clone(), Arc::new(Metrics::new()));
        // Idle, with a pull request waiting on the server.
        test_support::wait_until(TIMEOUT, "det-chain waits for messages", || async {
            let Ok(stream) = s.js.get_stream("BMON_EVENTS").await else {
                return false;
            };
            stream
                .consumer_info("det-chain")
                .await
                .is_ok_and(|i| i.num_waiting > 0)
        })
        .await;
        common::stop_consumer(running).await;
        let at = 1_000_000 * (i64::from(round) + 1);
        common::publish(&s.js, &[reorg(&format!("node{round}"), at)], true).await;
        let started = std::time::Instant::now();
        let running = common::spawn_consumer("det-chain", config.clone(), Arc::new(Metrics::new()));
        test_support::wait_until(
            ACK_WAIT / 3,
            &format!("round {round}: the restarted det-chain takes the new event"),
            || async { s.backlog("det-chain").await == 0 },
        )
        .await;
        if started.elapsed() > Duration::from_secs(1) {
            println!("round {round}: taken after {:?}", started.elapsed());
        }
        common::stop_consumer(running).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_resolve_a_one_shot_incident_while_the_stream_is_quiet() {
    let s = Services::start(None).await;
    let mut config = s.config();
    config.detectors.chain.incident_hold_secs = 1;
    config.consumer.tick_after_ms = 200;
    let events = vec![reorg("node0", 1_000_000)];
    common::publish(&s.js, &events, true).await;
    let metrics = Arc::new(Metrics::new());
    let running = common::spawn_consumer("det-chain", config.clone(), metrics.clone());
    wait_for_alerts(&s, 2, "the firing and then the resolved reorg alert").await;
    common::stop_consumer(running).await;

    let stored = common::stream_messages(&s.js, "BMON_ALERTS").await;
    let alerts: Vec<_> = stored
        .iter()
        .map(|m| match Envelope::decode(&m.payload).unwrap().event {
            Event::Alert(a) => a,
            other => panic!("not an alert: {other:?}"),
        })
        .collect();
    assert_eq!(alerts[0].state, AlertState::Firing);
    assert_eq!(alerts[1].state, AlertState::Resolved);
    assert_eq!(alerts[1].fingerprint, alerts[0].fingerprint);
    // The resolution's time comes from the incident, not from when the tick happened.
    assert_eq!(
        alerts[1].ends_at,
        Some(alerts[0].starts_at.plus_micros(1_000_000))
    );
    assert!(metrics
        .encode()
        .contains("bmon_detector_ticks_total{detector=\"chain\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_event_is_dead_lettered_and_the_detector_goes_on() {
    let s = Services::start(None).await;
    common::publish_raw(
        &s.js,
        "bmon.ev.reorg.node0",
        b"\x92not an envelope".to_vec(),
    )
    .await;
    let events = vec![reorg("node0", 1_000_000)];
    let expected = expected_alerts(&events, &s.config().detectors.chain);
    common::publish(&s.js, &events, true).await;
    let metrics = Arc::new(Metrics::new());
    let running = common::spawn_consumer("det-chain", s.config(), metrics.clone());
    wait_for_alerts(&s, 1, "the alert of the event after the bad one").await;
    test_support::wait_until(TIMEOUT, "both messages settled", || async {
        s.backlog("det-chain").await == 0
    })
    .await;
    common::stop_consumer(running).await;
    assert_eq!(alert_ids(&s).await, [expected[0].id.to_hex()]);
    let dead = common::stream_messages(&s.js, "BMON_DEAD").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].subject.as_str(), "bmon.dead.det-chain");
    let text = metrics.encode();
    assert!(
        text.contains("consumer=\"det-chain\",stream=\"BMON_EVENTS\",reason=\"malformed\"} 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn det_propagation_writes_each_settled_block_to_clickhouse() {
    use schema::event::{BlockSeen, BlockStage};
    let s = Services::start(None).await;
    let mut config = s.config();
    config.detectors.propagation.block_settle_secs = 1;
    config.consumer.tick_after_ms = 200;
    let hash = samples::block_hash(77);
    let events: Vec<Envelope> = [("node0", 0), ("node1", 300_000), ("node2", 900_000)]
        .iter()
        .map(|(node, us)| {
            Envelope::new(
                NodeId::new(*node).unwrap(),
                samples::at(*us),
                BlockSeen {
                    hash,
                    height: Some(Height(77)),
                    stage: BlockStage::Header,
                    peer: Some(1),
                    source: Source::Log,
                },
            )
        })
        .collect();
    common::publish(&s.js, &events, true).await;
    let running = common::spawn_consumer("det-propagation", config, Arc::new(Metrics::new()));
    let query = "SELECT object_kind, object_hash, nodes, spread_us, first_node, node_name FROM {db}.propagation FINAL";
    test_support::wait_until(TIMEOUT, "the block's summary in propagation", || async {
        !s.sql(query).trim().is_empty()
    })
    .await;
    common::stop_consumer(running).await;
    assert_eq!(
        s.sql(query).trim(),
        format!("block\t{hash}\t3\t900000\tnode0\t['node0','node1','node2']")
    );
}
