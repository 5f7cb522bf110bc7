//! `bmon setup` against real servers: migrations apply on the installed ClickHouse and a
//! second run changes nothing, in NATS or in ClickHouse.

mod common;

use common::Services;
use consumers::definitions::Change;
use consumers::migrations::{self, MIGRATIONS};
use consumers::writer::Rows;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_twice_changes_nothing_the_second_time() {
    // Services::start ran setup once.
    let s = Services::start(None).await;
    let tables_before =
        s.sql("SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name");
    let recorded_before = s.sql(
        "SELECT version, name, checksum, applied_at FROM {db}.schema_migrations ORDER BY version",
    );

    let report = consumers::setup::setup(
        &s.js,
        &s.defs,
        &consumers::clickhouse_server_client(&s.config().clickhouse),
        &s.db,
    )
    .await
    .unwrap();
    assert!(report.unchanged(), "{report:?}");
    assert_eq!(report.streams.len(), 4);
    assert!(report.streams.iter().all(|(_, c)| *c == Change::Unchanged));
    assert_eq!(report.migrations.already_applied.len(), MIGRATIONS.len());
    assert_eq!(
        s.sql("SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name"),
        tables_before
    );
    // No second record of the same migration, not even one FINAL would hide.
    assert_eq!(
        s.sql("SELECT version, name, checksum, applied_at FROM {db}.schema_migrations ORDER BY version"),
        recorded_before
    );
    assert_eq!(
        s.sql("SELECT count() FROM {db}.schema_migrations").trim(),
        MIGRATIONS.len().to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_create_every_writer_table_in_a_new_database() {
    let ch = test_support::ClickHouse::shared();
    // A database that does not exist yet: setup creates it.
    let db = format!("{}_new", ch.fresh_database());
    let mut config = consumers::Config::default();
    config.clickhouse.url = ch.url();
    config.clickhouse.database = db.clone();
    // The non-default compression works against this server too.
    config.clickhouse.compression = consumers::config::Compression::Lz4;
    let server = consumers::clickhouse_server_client(&config.clickhouse);
    let report = migrations::apply(&server, &db).await.unwrap();
    assert!(report.created_database);
    assert_eq!(report.applied.len(), MIGRATIONS.len());
    let tables = ch
        .query(&format!(
            "SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name"
        ))
        .unwrap();
    for table in Rows::TABLES {
        assert!(
            tables.lines().any(|l| l == *table),
            "no table {table}: {tables}"
        );
    }
    // Empty tables read back through the writer's row types: columns and types match.
    let rows = Rows::select_all(&consumers::clickhouse_client(&config.clickhouse))
        .await
        .unwrap();
    assert!(rows.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_migration_that_changed_is_refused() {
    let ch = test_support::ClickHouse::shared();
    let db = ch.fresh_database();
    let mut config = consumers::Config::default();
    config.clickhouse.url = ch.url();
    let server = consumers::clickhouse_server_client(&config.clickhouse);
    let v1 = [migrations::Migration {
        version: 1,
        name: "0001_t",
        sql: "CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = MergeTree() ORDER BY a",
    }];
    migrations::apply_list(&server, &db, &v1, migrations::Engines::Local)
        .await
        .unwrap();
    let edited = [migrations::Migration {
        sql: "CREATE TABLE IF NOT EXISTS t (a UInt16) ENGINE = MergeTree() ORDER BY a",
        ..v1[0]
    }];
    let err = migrations::apply_list(&server, &db, &edited, migrations::Engines::Local)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("0001_t") && err.contains("changed"), "{err}");
}

/// An install set up before 0004 has the all-history validation views of 0003: the next
/// setup applies 0004 alone and the views then cover each version's last 1000 blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_from_before_0004_gets_the_last_1000_blocks_views() {
    let ch = test_support::ClickHouse::shared();
    let db = ch.fresh_database();
    let mut config = consumers::Config::default();
    config.clickhouse.url = ch.url();
    let server = consumers::clickhouse_server_client(&config.clickhouse);
    let before: Vec<_> = MIGRATIONS
        .iter()
        .copied()
        .filter(|m| m.version <= 3)
        .collect();
    migrations::apply_list(&server, &db, &before, migrations::Engines::Local)
        .await
        .unwrap();
    let view = |name: &str| ch.query(&format!("SHOW CREATE TABLE {db}.{name}")).unwrap();
    assert!(!view("validation_by_version").contains("LIMIT"));
    let report = migrations::apply(&server, &db).await.unwrap();
    assert_eq!(
        report.applied,
        ["0004_validation_last_blocks"],
        "{report:?}"
    );
    for name in ["validation_by_version", "validation_stage_by_version"] {
        let text = view(name);
        assert!(text.contains("LIMIT 1000 BY version"), "{text}");
    }
    assert_eq!(
        ch.query(&format!("SELECT count() FROM {db}.validation_by_version"))
            .unwrap()
            .trim(),
        "0"
    );
}
