//! The ClickHouse writer end to end: envelopes published on JetStream become rows in their
//! kind's table, with the right values, once, whatever is redelivered or published twice.

mod common;

use std::sync::Arc;

use common::{samples, Services, PIPELINE_TIMEOUT};
use consumers::metrics::Metrics;
use schema::{Envelope, Kind};
use tokio_util::sync::CancellationToken;

struct Running {
    token: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), consumers::Error>>,
    metrics: Arc<Metrics>,
}

fn start_writer(s: &Services) -> Running {
    let token = CancellationToken::new();
    let metrics = Arc::new(Metrics::new());
    let task = tokio::spawn(consumers::run_with_metrics(
        "ch-writer",
        s.config(),
        metrics.clone(),
        token.clone(),
    ));
    Running {
        token,
        task,
        metrics,
    }
}

impl Running {
    async fn stop(self) {
        self.token.cancel();
        let r = tokio::time::timeout(std::time::Duration::from_secs(30), self.task)
            .await
            .expect("writer stops within 30 s")
            .expect("writer task joins");
        r.expect("writer stops cleanly");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_lands_in_its_table_with_its_values() {
    let s = Services::start(None).await;
    let writer = start_writer(&s);
    let envelopes = samples::every_kind();
    common::publish(&s.js, &envelopes, true).await;
    let expected = common::expected_rows(&envelopes);
    test_support::wait_until(PIPELINE_TIMEOUT, "every row written", || async {
        s.row_count().await >= expected.len()
    })
    .await;
    let rows = s.rows().await.normalized();
    assert_eq!(rows, expected);
    for (table, n) in rows.counts() {
        assert!(n > 0, "table {table} is empty");
    }
    // Spot checks in SQL, independent of the writer's own row types.
    assert_eq!(
        s.sql("SELECT coinbase_value_sat, subsidy_sat, fees_sat, miner_tag, source FROM {db}.block_connected FINAL WHERE node = 'node0'"),
        "5000020585\t5000000000\t20585\t/bmon-pool/\tzmq\n"
    );
    assert_eq!(
        s.sql("SELECT blocks, headers, initial_block_download, warnings, tip_time FROM {db}.node_status FINAL ORDER BY node"),
        "111\t112\t0\t['unknown new rules activated','second']\t1768478000\n110\t110\t1\t[]\t\\N\n"
    );
    assert_eq!(
        s.sql("SELECT offset, thread, category, message FROM {db}.logs FINAL ORDER BY offset"),
        "0\tmsghand\tnet\treceived: cmpctblock (1234 bytes) peer=7\n120\t\t\tUpdateTip: new best=... height=112\n"
    );
    assert_eq!(
        s.sql("SELECT node, alert_node, evidence_name, state FROM {db}.alerts FINAL"),
        "det-chain\tnode0\t['fork_point','depth']\tfiring\n"
    );
    assert_eq!(
        s.sql("SELECT tip_status, tip_branch_len FROM {db}.chain_tips FINAL"),
        "['active','valid-fork']\t[0,2]\n"
    );
    let text = writer.metrics.encode();
    assert!(
        text.contains(
            "bmon_consumer_acked_messages_total{consumer=\"ch-writer\",stream=\"BMON_EVENTS\"}"
        ),
        "{text}"
    );
    test_support::wait_until(PIPELINE_TIMEOUT, "backlog drained", || async {
        s.backlog("ch-writer").await == 0
    })
    .await;
    writer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_events_stored_twice_give_each_row_once() {
    let s = Services::start(None).await;
    let envelopes = samples::every_kind();
    // Once with ids, once without (JetStream keeps both copies: the stream holds duplicates).
    common::publish(&s.js, &envelopes, true).await;
    common::publish(&s.js, &envelopes, false).await;
    let writer = start_writer(&s);
    test_support::wait_until(PIPELINE_TIMEOUT, "both copies consumed", || async {
        s.backlog("ch-writer").await == 0
    })
    .await;
    let raw_logs: usize = s
        .sql("SELECT count() FROM {db}.logs")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        raw_logs, 4,
        "both copies were inserted (the test must exercise FINAL)"
    );
    assert_eq!(
        s.rows().await.normalized(),
        common::expected_rows(&envelopes)
    );
    writer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_message_is_dead_lettered_and_counted_and_the_stream_keeps_flowing() {
    let s = Services::start(None).await;
    let writer = start_writer(&s);
    let envelopes = samples::every_kind();
    let (before, after) = envelopes.split_at(envelopes.len() / 2);
    common::publish(&s.js, before, true).await;
    common::publish_raw(
        &s.js,
        "bmon.ev.node_status.node0",
        b"\xc1 not msgpack".to_vec(),
    )
    .await;
    // A well-formed envelope of a kind this build does not know.
    #[derive(serde::Serialize)]
    struct Foreign<'a> {
        v: u16,
        id: schema::EventId,
        node: &'a str,
        observed_at: i64,
        kind: &'a str,
        payload: u8,
    }
    let foreign = rmp_serde::to_vec_named(&Foreign {
        v: schema::SCHEMA_VERSION,
        id: schema::EventId([9; 32]),
        node: "node0",
        observed_at: 1,
        kind: "kind_from_the_future",
        payload: 1,
    })
    .unwrap();
    common::publish_raw(&s.js, "bmon.ev.kind_from_the_future.node0", foreign).await;
    common::publish(&s.js, after, true).await;

    let expected = common::expected_rows(&envelopes);
    test_support::wait_until(
        PIPELINE_TIMEOUT,
        "valid events after the bad ones written",
        || async { s.row_count().await >= expected.len() },
    )
    .await;
    assert_eq!(s.rows().await.normalized(), expected);
    test_support::wait_until(PIPELINE_TIMEOUT, "backlog drained", || async {
        s.backlog("ch-writer").await == 0
    })
    .await;

    // Both are in the dead-letter stream with their reasons.
    let dead = s.js.get_stream(schema::subject::DEAD_STREAM).await.unwrap();
    let first = dead.get_raw_message(1).await.expect("first dead letter");
    let second = dead.get_raw_message(2).await.expect("second dead letter");
    let reason = |m: &async_nats::jetstream::message::StreamMessage| {
        m.headers
            .get(consumers::runtime::HEADER_DEAD_REASON)
            .map(|v| v.as_str().to_string())
    };
    assert_eq!(first.subject.as_str(), "bmon.dead.ch-writer");
    assert_eq!(reason(&first).as_deref(), Some("malformed"));
    assert_eq!(reason(&second).as_deref(), Some("unknown_kind"));
    assert_eq!(&first.payload[..], b"\xc1 not msgpack");
    assert_eq!(
        first
            .headers
            .get(consumers::runtime::HEADER_DEAD_SUBJECT)
            .map(|v| v.as_str()),
        Some("bmon.ev.node_status.node0")
    );
    let text = writer.metrics.encode();
    assert!(text.contains("reason=\"malformed\"} 1"), "{text}");
    assert!(text.contains("reason=\"unknown_kind\"} 1"), "{text}");
    assert!(
        text.contains(
            "bmon_consumer_termed_messages_total{consumer=\"ch-writer\",stream=\"BMON_EVENTS\"} 2"
        ),
        "{text}"
    );
    writer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_that_does_not_belong_on_its_subject_is_dead_lettered_not_stored() {
    let s = Services::start(None).await;
    let writer = start_writer(&s);
    let envelopes = samples::every_kind();
    let publish_on = |subject: &'static str, env: Envelope| {
        let js = s.js.clone();
        async move {
            let payload = env.encode().expect("encode");
            common::publish_raw(&js, subject, payload).await;
        }
    };
    // node0's credentials may publish on bmon.ev.*.node0 only: an event that claims node1...
    let block = envelopes
        .iter()
        .find(|e| e.kind() == Kind::BlockConnected)
        .expect("a block_connected sample");
    let node1 = schema::NodeId::new("node1").expect("node name");
    let claims_node1 = Envelope::new(node1, block.observed_at, block.event.clone());
    publish_on("bmon.ev.block_connected.node0", claims_node1).await;
    // ...or an alert, on its own events subject instead of bmon.alert.*.
    let alert = envelopes
        .iter()
        .find(|e| e.kind() == Kind::Alert)
        .cloned()
        .expect("an alert sample");
    publish_on("bmon.ev.alert.node0", alert).await;
    common::publish(&s.js, &envelopes, true).await;

    // The genuine events are stored once; the forgeries add no row.
    let expected = common::expected_rows(&envelopes);
    test_support::wait_until(PIPELINE_TIMEOUT, "genuine events written", || async {
        s.row_count().await >= expected.len()
    })
    .await;
    test_support::wait_until(PIPELINE_TIMEOUT, "backlog drained", || async {
        s.backlog("ch-writer").await == 0
    })
    .await;
    assert_eq!(s.rows().await.normalized(), expected);

    let dead = s.js.get_stream(schema::subject::DEAD_STREAM).await.unwrap();
    for (seq, subject) in [
        (1, "bmon.ev.block_connected.node0"),
        (2, "bmon.ev.alert.node0"),
    ] {
        let m = dead.get_raw_message(seq).await.expect("a dead letter");
        let header = |h: &str| m.headers.get(h).map(|v| v.as_str().to_string());
        assert_eq!(
            header(consumers::runtime::HEADER_DEAD_REASON).as_deref(),
            Some("subject_mismatch")
        );
        assert_eq!(
            header(consumers::runtime::HEADER_DEAD_SUBJECT).as_deref(),
            Some(subject)
        );
    }
    let text = writer.metrics.encode();
    assert!(text.contains("reason=\"subject_mismatch\"} 2"), "{text}");
    writer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_stops_the_writer_with_a_fatal_error_and_keeps_the_messages() {
    let s = Services::start(None).await;
    s.sql("DROP TABLE {db}.warning");
    let writer = start_writer(&s);
    let warning: Vec<_> = samples::every_kind()
        .into_iter()
        .filter(|e| e.kind() == Kind::Warning)
        .collect();
    common::publish(&s.js, &warning, true).await;
    let result = tokio::time::timeout(PIPELINE_TIMEOUT, writer.task)
        .await
        .expect("writer stops on its own")
        .expect("task joins");
    let err = result.expect_err("a missing table is fatal").to_string();
    assert!(err.contains("warning"), "{err}");
    // Nothing was acked: the message is still there for the next run.
    assert_eq!(s.backlog("ch-writer").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_that_delivered_each_block_first_is_counted_per_node() {
    use schema::event::{BlockSeen, BlockStage, Source};
    let s = Services::start(None).await;
    let writer = start_writer(&s);
    let seen = |node: u32, us: i64, block: u64, stage: BlockStage, peer: Option<u64>| {
        Envelope::new(
            samples::node(node),
            samples::at(us),
            BlockSeen {
                hash: samples::block_hash(block),
                height: None,
                stage,
                peer,
                source: Source::Log,
            },
        )
    };
    let envelopes = vec![
        // node0: block 1 from peer 5 first (its header), then peer 3's compact block.
        seen(0, 10, 1, BlockStage::Header, Some(5)),
        seen(0, 20, 1, BlockStage::Cmpctblock, Some(3)),
        // node0: block 2 from peer 3; a sighting without a peer does not count.
        seen(0, 30, 2, BlockStage::Header, None),
        seen(0, 40, 2, BlockStage::Cmpctblock, Some(3)),
        // node1: block 1 from peer 9.
        seen(1, 15, 1, BlockStage::Header, Some(9)),
    ];
    common::publish(&s.js, &envelopes, true).await;
    test_support::wait_until(PIPELINE_TIMEOUT, "every sighting written", || async {
        s.sql("SELECT count() FROM {db}.block_seen").trim() == "5"
    })
    .await;
    assert_eq!(
        s.sql("SELECT node, peer, blocks_first FROM {db}.block_first_peer ORDER BY node, peer"),
        "node0\t3\t1\nnode0\t5\t1\nnode1\t9\t1\n"
    );
    writer.stop().await;
}
