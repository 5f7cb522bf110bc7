//! bmon on a three-server NATS cluster, every stream with three replicas (the shipped
//! `nats/streams.toml` with `replicas = 3`): the server leading `BMON_EVENTS` is killed in the
//! middle of a simnet run with a deep reorg. Agents and consumers move to the other servers
//! (their `url` lists all three), and afterwards ClickHouse holds every event of the truth
//! once, the stream holds no event twice, and the reorg alert reached ClickHouse and
//! Alertmanager.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bmon_e2e::{Expected, Options, Pipeline};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_stream_leader_mid_run_loses_and_duplicates_nothing() {
    let scenario = std::fs::read_to_string(
        test_support::workspace_root().join("simnet/scenarios/incidents/deep-reorg.toml"),
    )
    .expect("read deep-reorg.toml");
    let mut p = Pipeline::start_opts(
        &scenario,
        Options {
            detectors: true,
            consumer_toml: bmon_e2e::SHORT_RUN_DETECTORS.to_string(),
            mempool_secs: Some(2),
            nats_cluster: 3,
            ..Options::default()
        },
    )
    .await;
    let client = process::nats::connect(&process::nats::Connect {
        urls: p.nats_url(),
        name: "cluster test".into(),
        inbox_user: "bmon".into(),
        keep_trying: true,
        ..Default::default()
    })
    .await
    .expect("connect to the cluster");
    let js = async_nats::jetstream::new(client);
    let info = js
        .get_stream("BMON_EVENTS")
        .await
        .expect("BMON_EVENTS")
        .info()
        .await
        .expect("stream info")
        .clone();
    assert_eq!(info.config.num_replicas, 3, "the stream has three replicas");

    // Mid-run, before the reorg at 15 s: kill the server leading BMON_EVENTS.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let before = p.count("SELECT count() FROM tx_seen FINAL");
    let leader = current_leader(&js).await;
    let killed = if p.nats.name() == leader {
        p.nats.stop();
        leader.clone()
    } else {
        let server = p
            .nats_peers
            .iter_mut()
            .find(|s| s.name() == leader)
            .unwrap_or_else(|| panic!("no server named {leader}"));
        server.stop();
        leader.clone()
    };
    eprintln!("killed {killed}, the leader of BMON_EVENTS, with {before} tx_seen rows stored");
    let new_leader = {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let l = current_leader(&js).await;
            if l != killed && !l.is_empty() {
                break l;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no new leader for BMON_EVENTS within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    eprintln!("BMON_EVENTS now led by {new_leader}");

    let truth = p.wait_for_fleet(Duration::from_secs(90)).await;
    let exp = Expected::from_truth(&truth);
    assert!(
        exp.tx_seen.len() as u64 > before + 20,
        "transactions went on after the kill ({before} before, {} in all)",
        exp.tx_seen.len()
    );
    p.assert_truth_stored_once(
        &exp,
        &["block_connected", "tx_seen", "node_status", "reorg"],
    )
    .await;
    assert_eq!(
        p.count("SELECT count() FROM block_disconnected FINAL"),
        exp.disconnected_rows(),
        "every disconnected block once"
    );

    // The stream itself: no event stored twice across the change of leader.
    let (stored, ids) = stream_ids(&js, "BMON_EVENTS").await;
    assert_eq!(
        stored,
        ids.len(),
        "BMON_EVENTS holds {stored} messages for {} distinct event ids",
        ids.len()
    );

    // The reorg's alert reached ClickHouse and Alertmanager.
    p.wait_count(
        "SELECT count() FROM alerts FINAL WHERE alert_kind = 'reorg' AND state = 'firing'",
        1,
        Duration::from_secs(30),
    )
    .await;
    let held: HashSet<String> = p
        .alertmanager_alerts()
        .iter()
        .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
        .collect();
    assert!(
        held.contains("reorg"),
        "Alertmanager holds the reorg: {held:?}"
    );
    p.stop().await;
}

/// The name of the server leading BMON_EVENTS (empty while there is none).
async fn current_leader(js: &async_nats::jetstream::Context) -> String {
    let Ok(mut stream) = js.get_stream("BMON_EVENTS").await else {
        return String::new();
    };
    match stream.info().await {
        Ok(info) => info
            .cluster
            .as_ref()
            .and_then(|c| c.leader.clone())
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// How many messages `stream` holds, and their distinct `Nats-Msg-Id`s.
async fn stream_ids(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> (usize, HashMap<String, u32>) {
    let s = js.get_stream(stream).await.expect("stream");
    let total = s.cached_info().state.messages as usize;
    let consumer = s
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut read = 0;
    while read < total {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the stream's messages within 10 s")
            .expect("a message")
            .expect("no error");
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get(schema::subject::HEADER_MSG_ID))
            .map(|v| v.to_string())
            .unwrap_or_else(|| format!("no id at {read}"));
        *ids.entry(id).or_insert(0) += 1;
        read += 1;
    }
    (total, ids)
}
