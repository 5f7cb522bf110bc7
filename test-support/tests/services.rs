//! The helpers start real services and stop them.

use std::time::Duration;

use test_support::{fixture, wait_until_blocking, Alertmanager, ClickHouse, NatsServer};

#[test]
fn nats_starts_stops_and_restarts_on_the_same_port() {
    let mut nats = NatsServer::start();
    let port = nats.port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    nats.stop();
    wait_until_blocking(Duration::from_secs(5), "port closed", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    nats.restart();
    assert_eq!(nats.port(), port);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
}

#[test]
fn clickhouse_answers_queries_in_a_fresh_database() {
    let ch = ClickHouse::shared();
    let db = ch.fresh_database();
    ch.query(&format!(
        "CREATE TABLE {db}.t (x UInt32) ENGINE = MergeTree ORDER BY x"
    ))
    .unwrap();
    ch.query(&format!("INSERT INTO {db}.t VALUES (1), (2)"))
        .unwrap();
    assert_eq!(
        ch.query(&format!("SELECT sum(x) FROM {db}.t"))
            .unwrap()
            .trim(),
        "3"
    );
    assert!(ch.query("SELECT nonsense(").is_err());
}

#[test]
fn alertmanager_is_ready_and_empty() {
    let am = Alertmanager::start();
    assert_eq!(am.alerts_json().unwrap().trim(), "[]");
}

#[test]
fn fixtures_are_found() {
    assert!(fixture("bitcoin-core-v30/README.md").is_file());
}
