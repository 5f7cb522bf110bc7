//! deploy/clickhouse/users.xml on a real ClickHouse: `bmon_writer` sets bmon up and writes
//! rows, `bmon_reader` reads them with the CLI's read commands but can neither insert nor
//! change the schema, and each refusal says why.

#[path = "../../consumers/tests/common/mod.rs"]
mod common;

use std::process::{Command, Output};

use bitcoin::hashes::{sha256, Hash};
use consumers::config::{ClickHouseConfig, Secret};
use consumers::metrics::Metrics;
use consumers::writer::Rows;

const BIN: &str = env!("CARGO_BIN_EXE_bmon");

fn sha256_hex(s: &str) -> String {
    sha256::Hash::hash(s.as_bytes()).to_string()
}

fn bmon(nats: &str, ch: &str, user: &str, password: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--nats-url", nats])
        .args(["--clickhouse-url", ch])
        .args(["--clickhouse-database", "bmon"])
        .args(["--clickhouse-user", user])
        .args(["--clickhouse-password", password])
        .args(args)
        .output()
        .expect("run bmon")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_sets_up_and_writes_the_reader_only_reads() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/clickhouse/users.xml"),
    )
    .expect("deploy/clickhouse/users.xml");
    let users = dir.path().join("users.xml");
    std::fs::write(
        &users,
        shipped
            .replace(
                "REPLACE_WITH_SHA256_OF_THE_WRITER_PASSWORD",
                &sha256_hex("writer-secret"),
            )
            .replace(
                "REPLACE_WITH_SHA256_OF_THE_READER_PASSWORD",
                &sha256_hex("reader-secret"),
            ),
    )
    .unwrap();
    let ch = test_support::ClickHouse::start_with_users(&users);
    let nats = test_support::NatsServer::start();
    let (_, defs_text) = common::test_definitions(30);
    let defs = dir.path().join("streams.toml");
    std::fs::write(&defs, defs_text).unwrap();
    let defs = defs.display().to_string();

    // The writer: `bmon setup` creates the database and applies the migrations.
    let out = bmon(
        &nats.url(),
        &ch.url(),
        "bmon_writer",
        "writer-secret",
        &["setup", "--definitions", &defs],
    );
    assert!(out.status.success(), "setup as bmon_writer: {}", text(&out));
    assert!(
        text(&out).contains("migration 0001_events: applied"),
        "{}",
        text(&out)
    );

    let client = |user: &str, password: &str| {
        consumers::clickhouse_client(&ClickHouseConfig {
            url: ch.url(),
            database: "bmon".into(),
            user: user.into(),
            password: Secret::new(password),
            compression: Default::default(),
        })
    };
    let rows = Rows::from_batch(&common::samples::every_kind());
    rows.insert(&client("bmon_writer", "writer-secret"), &Metrics::new())
        .await
        .expect("ch-writer's inserts as bmon_writer");

    // The reader: the CLI's read commands work.
    let out = bmon(
        &nats.url(),
        &ch.url(),
        "bmon_reader",
        "reader-secret",
        &["status"],
    );
    assert!(
        out.status.success(),
        "status as bmon_reader: {}",
        text(&out)
    );
    assert!(text(&out).contains("node0"), "{}", text(&out));
    let out = bmon(
        &nats.url(),
        &ch.url(),
        "bmon_reader",
        "reader-secret",
        &["tips"],
    );
    assert!(out.status.success(), "tips as bmon_reader: {}", text(&out));

    // ... and nothing else: no insert, no schema change, each refused as read-only.
    let err = rows
        .insert(&client("bmon_reader", "reader-secret"), &Metrics::new())
        .await
        .expect_err("bmon_reader cannot insert");
    assert!(
        format!("{err:?}").to_lowercase().contains("readonly"),
        "the refusal says read-only: {err:?}"
    );
    for sql in [
        "CREATE TABLE bmon.x (a UInt8) ENGINE = Memory",
        "DROP TABLE bmon.node_status",
        "ALTER TABLE bmon.node_status DELETE WHERE 1",
    ] {
        let err = client("bmon_reader", "reader-secret")
            .query(sql)
            .execute()
            .await
            .expect_err(sql);
        assert!(
            err.to_string().to_lowercase().contains("readonly"),
            "{sql}: {err}"
        );
    }
    let out = bmon(
        &nats.url(),
        &ch.url(),
        "bmon_reader",
        "reader-secret",
        &["setup", "--definitions", &defs],
    );
    assert!(!out.status.success(), "setup as bmon_reader must fail");
    // A wrong password is refused by name.
    let out = bmon(&nats.url(), &ch.url(), "bmon_reader", "wrong", &["status"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("bmon_reader") || text(&out).to_lowercase().contains("password"),
        "{}",
        text(&out)
    );
}
