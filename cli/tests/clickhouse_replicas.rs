//! ClickHouse on two servers: `bmon setup --replicated` against each of two replicas
//! coordinated by a real ZooKeeper creates ReplicatedReplacingMergeTree tables, and the rows
//! ch-writer inserts on one replica are read on the other.

#[path = "../../consumers/tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Duration;

use consumers::config::ClickHouseConfig;
use consumers::metrics::Metrics;
use consumers::writer::Rows;

const BIN: &str = env!("CARGO_BIN_EXE_bmon");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_on_one_replica_are_read_on_the_other() {
    let Some(zk) = test_support::ZooKeeper::start() else {
        return;
    };
    let r1 = test_support::ClickHouse::start_replica(zk.port(), "01", "r1");
    let r2 = test_support::ClickHouse::start_replica(zk.port(), "01", "r2");
    let nats = test_support::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (_, defs_text) = common::test_definitions(30);
    let defs = dir.path().join("streams.toml");
    std::fs::write(&defs, defs_text).unwrap();
    for ch in [&r1, &r2] {
        let out = Command::new(BIN)
            .args(["--nats-url", &nats.url(), "--clickhouse-url", &ch.url()])
            .args(["setup", "--replicated", "--definitions"])
            .arg(&defs)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "setup --replicated on {}: {}{}",
            ch.url(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let engines = r2
        .query(
            "SELECT name, engine FROM system.tables WHERE database = 'bmon' \
             AND engine LIKE '%MergeTree' AND name != 'schema_migrations'",
        )
        .unwrap();
    assert!(!engines.trim().is_empty());
    for line in engines.lines() {
        assert!(
            line.ends_with("ReplicatedReplacingMergeTree"),
            "every table is replicated: {line}"
        );
    }

    let client = |url: String| {
        consumers::clickhouse_client(&ClickHouseConfig {
            url,
            database: "bmon".into(),
            ..Default::default()
        })
    };
    let envelopes = common::samples::mixed(500, 4);
    let expected = common::expected_rows(&envelopes).counts();
    Rows::from_batch(&envelopes)
        .insert(&client(r1.url()), &Metrics::new())
        .await
        .expect("ch-writer's insert on replica r1");
    // Replication is asynchronous: the parts reach r2 within seconds.
    let on_r2 = || async {
        Rows::select_all(&client(r2.url()))
            .await
            .map(|r| r.normalized().counts())
            .ok()
    };
    test_support::wait_until(Duration::from_secs(60), "rows on replica r2", || async {
        on_r2().await.as_ref() == Some(&expected)
    })
    .await;
    let r1_rows = Rows::select_all(&client(r1.url()))
        .await
        .unwrap()
        .normalized();
    let r2_rows = Rows::select_all(&client(r2.url()))
        .await
        .unwrap()
        .normalized();
    assert!(r1_rows == r2_rows, "both replicas hold the same rows");

    // Views are per server: setup made 0004's on each replica, over its replicated table.
    r1.query(
        "INSERT INTO bmon.block_validation (event_id, node, observed_at_us, observed_at, \
         block_node, version, hash, height, connect_ms, stage, stage_ms) VALUES \
         ('v1', 'det-compare', 1768478400000000, 1768478400, 'n1', '/Satoshi:30.0.0/', 'h1', \
         1, 42.5, ['Connect block'], [40.0])",
    )
    .unwrap();
    for ch in [&r1, &r2] {
        let view = ch
            .query("SHOW CREATE TABLE bmon.validation_stage_by_version")
            .unwrap();
        assert!(view.contains("LIMIT 1000 BY version"), "{view}");
    }
    test_support::wait_until(
        Duration::from_secs(60),
        "r1's block_validation row in r2's views",
        || async {
            r2.query(
                "SELECT version, blocks, median_connect_ms FROM bmon.validation_by_version \
                 UNION ALL SELECT stage_name, blocks, median_ms \
                 FROM bmon.validation_stage_by_version",
            )
            .is_ok_and(|t| {
                let mut lines: Vec<&str> = t.lines().collect();
                lines.sort();
                lines == ["/Satoshi:30.0.0/\t1\t42.5", "Connect block\t1\t40"]
            })
        },
    )
    .await;
}
