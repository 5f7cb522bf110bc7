//! The `bmon` binary against real services: setup is idempotent, replay rebuilds the tables
//! row for row, status shows each node's latest state, tail prints published envelopes.

#[path = "../../consumers/tests/common/mod.rs"]
mod common;
mod run;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{samples, Services, PIPELINE_TIMEOUT};
use consumers::metrics::Metrics;
use consumers::writer::Rows;
use run::{bmon, stdout, BIN};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_everything_once_and_a_second_run_changes_nothing() {
    let nats = test_support::NatsServer::start();
    let ch = test_support::ClickHouse::shared();
    let db = format!("{}_bmon", ch.fresh_database());
    let (_, defs_text) = common::test_definitions(30);
    let defs = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(defs.path(), defs_text).unwrap();
    let run = || {
        Command::new(BIN)
            .env("BMON_NATS_URL", nats.url())
            .env("BMON_CLICKHOUSE_URL", ch.url())
            .env("BMON_CLICKHOUSE_DATABASE", &db)
            .args(["setup", "--definitions"])
            .arg(defs.path())
            .output()
            .unwrap()
    };
    let first = stdout(&run());
    assert!(first.contains("stream BMON_EVENTS: created"), "{first}");
    assert!(
        first.contains("consumer ch-writer on BMON_LOGS: created"),
        "{first}"
    );
    assert!(
        first.contains(&format!("clickhouse database {db}: created")),
        "{first}"
    );
    assert!(first.contains("migration 0001_events: applied"), "{first}");
    let second = stdout(&run());
    assert!(second.contains("stream BMON_EVENTS: unchanged"), "{second}");
    assert!(
        second.contains("migration 0001_events: already applied"),
        "{second}"
    );
    assert!(second.trim_end().ends_with("nothing to change"), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_after_emptying_the_tables_gives_them_back_row_for_row() {
    let s = Services::start(None).await;
    let token = CancellationToken::new();
    let writer = tokio::spawn(consumers::run_with_metrics(
        "ch-writer",
        s.config(),
        Arc::new(Metrics::new()),
        token.clone(),
    ));
    let mut envelopes = samples::every_kind();
    envelopes.extend(samples::mixed(3000, 10));
    common::publish(&s.js, &envelopes, true).await;
    // The same events again, stored as new messages (no Nats-Msg-Id): duplicates in the stream.
    common::publish(&s.js, &envelopes, false).await;
    let expected = common::expected_rows(&envelopes);
    test_support::wait_until(PIPELINE_TIMEOUT, "first pass drained", || async {
        s.backlog("ch-writer").await == 0
    })
    .await;
    let before = s.rows().await.normalized();
    assert_eq!(before.counts(), expected.counts());
    assert!(before == expected);

    for table in Rows::TABLES {
        s.sql(&format!("TRUNCATE TABLE {{db}}.{table}"));
    }
    assert!(s.rows().await.is_empty());

    let defs = s.defs_file.path().display().to_string();
    let out = tokio::task::spawn_blocking({
        let args = [
            "--nats-url".to_string(),
            s.nats.url(),
            "replay".into(),
            "ch-writer".into(),
            "--definitions".into(),
            defs,
            "--timeout-secs".into(),
            "120".into(),
        ];
        move || Command::new(BIN).args(args).output().unwrap()
    })
    .await
    .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("ch-writer: reset to the start of BMON_EVENTS, BMON_LOGS, BMON_ALERTS"),
        "{text}"
    );
    assert!(text.contains("ch-writer: caught up"), "{text}");

    // Caught up means acked, and acked means inserted.
    let after = s.rows().await.normalized();
    assert_eq!(after.counts(), expected.counts());
    assert!(
        after == before,
        "replayed tables differ from the first pass"
    );

    token.cancel();
    writer.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_latest_node_status_of_each_node() {
    let s = Services::start(None).await;
    let mut envelopes = samples::every_kind();
    // An older status of node0 that must not show.
    let mut old = envelopes
        .iter()
        .find(|e| e.kind() == schema::Kind::NodeStatus && e.node.as_str() == "node0")
        .unwrap()
        .clone();
    if let schema::Event::NodeStatus(p) = &mut old.event {
        p.blocks = schema::Height(7);
    }
    let old = schema::Envelope::new(old.node.clone(), samples::at(-1_000_000), old.event);
    envelopes.push(old);
    Rows::from_batch(&envelopes)
        .insert(&s.clickhouse(), &Metrics::new())
        .await
        .unwrap();
    let text = stdout(&bmon(&s, &["status"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("NODE"), "{text}");
    assert!(lines[1].starts_with("node0"), "{text}");
    assert!(
        lines[1].contains("Satoshi:30.0.0") && lines[1].contains(" 111 "),
        "{text}"
    );
    assert!(
        lines[1].contains("3/8") && lines[1].contains(" 42 "),
        "{text}"
    );
    assert!(
        lines[2].starts_with("node1") && lines[2].contains("110 (IBD)"),
        "{text}"
    );
    assert!(lines[2].contains("0/2"), "{text}");

    let json = stdout(&bmon(&s, &["status", "--json"]));
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["height"], 111);
    assert_eq!(first["mempool_count"], 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_the_published_envelopes_as_json_lines() {
    let s = Services::start(None).await;
    let mut child = Command::new(BIN)
        .args(["--nats-url", &s.nats.url()])
        .args([
            "tail",
            "--kind",
            "block_connected",
            "--node",
            "node1",
            "--count",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for "listening on ..." so the subscription exists before publishing.
    let stderr = child.stderr.take().unwrap();
    let listening = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stderr).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(20), listening)
        .await
        .expect("tail starts listening")
        .unwrap()
        .unwrap();
    assert!(
        line.starts_with("listening on bmon.ev.block_connected.node1"),
        "{line}"
    );

    let envelopes = samples::every_kind();
    common::publish(&s.js, &envelopes, true).await;
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("tail exits after --count events")
    .unwrap()
    .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let want = envelopes
        .iter()
        .find(|e| e.kind() == schema::Kind::BlockConnected && e.node.as_str() == "node1")
        .unwrap();
    assert_eq!(v["kind"], "block_connected");
    assert_eq!(v["node"], "node1");
    assert_eq!(v["id"], want.id.to_hex());
    assert_eq!(v["subject"], "bmon.ev.block_connected.node1");
    assert_eq!(v["payload"]["hash"], samples::block_hash(112).to_string());
    assert_eq!(v["payload"]["coinbase_value"], 5_000_020_585u64);
}

#[test]
fn an_unknown_kind_is_refused_with_the_list_of_kinds() {
    let out = Command::new(BIN)
        .args([
            "--nats-url",
            "nats://127.0.0.1:1",
            "tail",
            "--kind",
            "blocks",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown kind") && err.contains("block_connected"),
        "{err}"
    );
}

#[test]
fn the_status_query_runs_on_a_current_clickhouse() {
    let mut statements: Vec<String> = Vec::new();
    for m in consumers::migrations::MIGRATIONS {
        statements.extend(m.statements());
    }
    statements.push(include_str!("../src/status.sql").to_string());
    let script = r#"
import json, sys
from chdb import session
s = session.Session()
s.query("CREATE DATABASE IF NOT EXISTS bmon")
for st in json.load(sys.stdin):
    s.query("USE bmon")
    s.query(st)
print("ok")
"#;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new("python3")
        .args(["-c", script])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with chdb (pip install chdb==4.4.0)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&statements).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "status SQL on chdb (pip install chdb==4.4.0): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_readme_shows_the_current_help_of_every_command() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("cli/README.md");
    for args in [
        &["--help"][..],
        &["setup", "--help"],
        &["replay", "--help"],
        &["status", "--help"],
        &["tail", "--help"],
        &["parse-log", "--help"],
        &["validation", "--help"],
        &["block", "--help"],
        &["tx", "--help"],
        &["alerts", "--help"],
        &["logs", "--help"],
        &["tips", "--help"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            readme.contains(help.trim_end()),
            "cli/README.md lacks the output of `bmon {}`:\n{help}",
            args.join(" ")
        );
    }
}

/// `bmon parse-log` finds the fixtures' invalid block 121 and tx B's rejection in node0's v30
/// debug.log, printed as JSON lines with schema field names.
#[test]
fn parse_log_prints_the_events_of_a_debug_log_as_json_lines() {
    let log = test_support::fixture("bitcoin-core-v30/logs/node0.debug.log");
    let out = Command::new(env!("CARGO_BIN_EXE_bmon"))
        .args(["parse-log", "--format", "jsonl"])
        .arg(&log)
        .output()
        .expect("run bmon parse-log");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let invalid = events
        .iter()
        .find(|e| e["kind"] == "invalid_block")
        .expect("an invalid_block event");
    assert_eq!(
        invalid["hash"],
        "4b48a6f085ccd4bde4eeb753fc24144ff8fdb45f466d58b6d59c82da9ef0486b"
    );
    assert_eq!(invalid["reason"], "bad-cb-amount");
    assert_eq!(invalid["height"], 121);
    assert!(invalid["observed_at"]
        .as_i64()
        .is_some_and(|t| t > 1_700_000_000_000_000));
    let rejected = events
        .iter()
        .find(|e| e["kind"] == "tx_rejected")
        .expect("a tx_rejected event");
    assert_eq!(
        rejected["txid"],
        "9fbed1276dd9060ab1f5d90eacd8e34d7957f8c6583349b38185d558ac936d76"
    );
    assert_eq!(rejected["peer"], 2);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("events"), "{summary}");
}

/// A missing file is a clear error, not a panic.
#[test]
fn parse_log_of_a_missing_file_fails_with_the_path() {
    let out = Command::new(env!("CARGO_BIN_EXE_bmon"))
        .args(["parse-log", "/nonexistent/debug.log"])
        .output()
        .expect("run bmon parse-log");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/debug.log"), "{err}");
}

/// Microseconds since the epoch, a minute ago: recent rows for the validation tests.
fn a_minute_ago_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
        - 60_000_000
}

/// `bmon validation` credits each block to the version in its row and puts the slowest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_shows_connect_time_by_version_slowest_first() {
    let s = Services::start(None).await;
    // Two nodes on 29.0 (one block each), one on 30.0 (three recent blocks and one of two
    // days ago, which counts: the window is each version's last 1000 blocks, not hours).
    let now_us = a_minute_ago_us();
    let rows = [
        ("a", "/Satoshi:29.0.0/", 1, 200.0, 0i64),
        ("b", "/Satoshi:29.0.0/", 2, 300.0, 0),
        ("c", "/Satoshi:30.0.0/", 3, 50.0, 0),
        ("c", "/Satoshi:30.0.0/", 4, 70.0, 0),
        ("c", "/Satoshi:30.0.0/", 5, 60.0, 0),
        ("c", "/Satoshi:30.0.0/", 6, 9000.0, 48 * 3600),
    ];
    for (node, version, n, ms, ago_secs) in rows {
        let at = now_us - ago_secs * 1_000_000 - n * 1_000_000;
        s.sql(&format!(
            "INSERT INTO {{db}}.block_validation (event_id, node, observed_at_us, observed_at, \
             block_node, version, hash, height, connect_ms, stage, stage_ms) VALUES \
             ('e{n}', 'det-compare', {at}, {secs}, '{node}', '{version}', 'h{n}', {n}, {ms}, \
             ['Connect total'], [{ms}])",
            secs = at / 1_000_000
        ));
    }
    let text = stdout(&bmon(&s, &["validation"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("VERSION"), "{text}");
    let cells = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        cells(lines[1])[..5],
        ["Satoshi:29.0.0", "2", "2", "250.0", "290.0"],
        "29.0: 2 blocks on 2 nodes, median 250, p90 290: {text}"
    );
    assert_eq!(
        cells(lines[2])[..5],
        ["Satoshi:30.0.0", "4", "1", "65.0", "6321.0"],
        "30.0: the old block among its 4: {text}"
    );
    let json = stdout(&bmon(&s, &["validation", "--json"]));
    let versions: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(versions.len(), 2, "{json}");
    let v30 = &versions[1];
    assert_eq!(v30["version"], "/Satoshi:30.0.0/", "{json}");
    assert_eq!(v30["blocks"], 4, "{json}");
    assert_eq!(v30["nodes"], 1);
    assert_eq!(
        v30["last_block_us"],
        (now_us - 3_000_000) / 1_000_000 * 1_000_000,
        "its newest block, in whole seconds: {json}"
    );
    assert!(v30.get("stages").is_none(), "{json}");
    // The table shows the same time, UTC.
    let last = lines[2]
        .split_whitespace()
        .skip(5)
        .collect::<Vec<_>>()
        .join(" ");
    let want = s.sql(&format!(
        "SELECT toString(toDateTime({}), 'UTC')",
        (now_us - 3_000_000) / 1_000_000
    ));
    assert_eq!(last, want.trim(), "{text}");
}

/// The views, and so `bmon validation`, cover each version's last 1000 block connections:
/// 29.0's 1100 oldest (slow, on a node since gone; over all 2100 the median would be slow)
/// fall out, while 30.0, whose few blocks are older than all of 29.0's, keeps them (the limit
/// is per version, not overall).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_counts_only_the_last_1000_blocks_of_each_version() {
    let s = Services::start(None).await;
    let now_us = a_minute_ago_us();
    // Row i of 2100 for 29.0 is i minutes older than now: rows 0..1000 are the newest, fast
    // (10..14 ms, median 12) on nodes a and b; rows 1000..2100 are slow (5000 ms) on node old.
    s.sql(&format!(
        "INSERT INTO {{db}}.block_validation (event_id, node, observed_at_us, observed_at, \
         block_node, version, hash, height, connect_ms, stage, stage_ms) \
         SELECT concat('v29-', toString(number)), 'det-compare', \
         toInt64({now_us} - number * 60000000) AS at, toDateTime(intDiv(at, 1000000)), \
         if(number >= 1000, 'old', if(number % 2 = 0, 'a', 'b')), '/Satoshi:29.0.0/', \
         concat('h', toString(number)), toUInt32(9000 - number), \
         if(number >= 1000, 5000., 10. + number % 5), \
         ['Connect block', 'Verify txins'], \
         [if(number >= 1000, 4000., 8.), if(number >= 1000, 900., 1.5)] \
         FROM system.numbers LIMIT 2100"
    ));
    // 30.0: three blocks older than any of 29.0's.
    for (n, ms) in [(1, 30.0), (2, 40.0), (3, 50.0)] {
        let at = now_us - (3000 + n) * 60_000_000;
        s.sql(&format!(
            "INSERT INTO {{db}}.block_validation (event_id, node, observed_at_us, observed_at, \
             block_node, version, hash, height, connect_ms, stage, stage_ms) VALUES \
             ('v30-{n}', 'det-compare', {at}, {secs}, 'c', '/Satoshi:30.0.0/', 'x{n}', {n}, \
             {ms}, ['Connect block'], [{ms}])",
            secs = at / 1_000_000
        ));
    }
    // The view itself: all 2100 rows of 29.0 are in the table, 1000 in the figures.
    assert_eq!(
        s.sql("SELECT count() FROM {db}.block_validation FINAL WHERE version = '/Satoshi:29.0.0/'")
            .trim(),
        "2100"
    );
    assert_eq!(
        s.sql(
            "SELECT blocks, nodes, median_connect_ms FROM {db}.validation_by_version \
             WHERE version = '/Satoshi:29.0.0/'"
        )
        .trim(),
        "1000\t2\t12"
    );
    let json = stdout(&bmon(&s, &["validation", "--json", "--stages"]));
    let versions: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(versions.len(), 2, "{json}");
    let (v30, v29) = (&versions[0], &versions[1]);
    assert_eq!(v29["version"], "/Satoshi:29.0.0/", "slowest first: {json}");
    assert_eq!(v29["blocks"], 1000, "{json}");
    assert_eq!(v29["nodes"], 2, "node old's blocks fell out: {json}");
    assert_eq!(v29["median_ms"], 12.0, "{json}");
    assert!(
        v29["p90_ms"].as_f64().is_some_and(|p| p <= 14.0),
        "no slow block in the p90: {json}"
    );
    assert_eq!(
        v29["last_block_us"],
        now_us / 1_000_000 * 1_000_000,
        "{json}"
    );
    let stage = |v: &serde_json::Value, name: &str| {
        v["stages"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["stage"] == name).cloned())
            .unwrap_or_else(|| panic!("no {name} in {v}"))
    };
    let connect = stage(v29, "Connect block");
    assert_eq!(connect["blocks"], 1000, "{json}");
    assert_eq!(connect["median_ms"], 8.0, "{json}");
    assert_eq!(connect["p90_ms"], 8.0, "{json}");
    assert_eq!(stage(v29, "Verify txins")["median_ms"], 1.5, "{json}");
    assert_eq!(v30["version"], "/Satoshi:30.0.0/", "{json}");
    assert_eq!(v30["blocks"], 3, "30.0's old blocks are its last 3: {json}");
    assert_eq!(v30["median_ms"], 40.0, "{json}");
    assert_eq!(stage(v30, "Connect block")["blocks"], 3, "{json}");
}

/// `bmon validation --stages` prints the version table, then one line per stage and version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_stages_lists_each_stage_by_version() {
    let s = Services::start(None).await;
    let now_us = a_minute_ago_us();
    let rows = [
        ("a", "/Satoshi:29.0.0/", 1, 120.0, [100.0, 6.0]),
        ("a", "/Satoshi:29.0.0/", 2, 140.0, [120.0, 8.0]),
        ("b", "/Satoshi:30.0.0/", 3, 60.0, [40.0, 10.0]),
    ];
    for (node, version, n, ms, [connect, verify]) in rows {
        let at = now_us - n * 1_000_000;
        s.sql(&format!(
            "INSERT INTO {{db}}.block_validation (event_id, node, observed_at_us, observed_at, \
             block_node, version, hash, height, connect_ms, stage, stage_ms) VALUES \
             ('e{n}', 'det-compare', {at}, {secs}, '{node}', '{version}', 'h{n}', {n}, {ms}, \
             ['Connect block', 'Verify 2 txins'], [{connect}, {verify}])",
            secs = at / 1_000_000
        ));
    }
    let text = stdout(&bmon(&s, &["validation", "--stages"]));
    let (versions, stages) = text.split_once("\n\n").expect("two tables");
    assert_eq!(versions.lines().count(), 3, "{text}");
    assert!(versions
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("Satoshi:29.0.0"));
    let rows: Vec<Vec<&str>> = stages
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        rows,
        [
            vec!["STAGE", "VERSION", "BLOCKS", "MEDIAN MS", "P90 MS"],
            vec!["Connect block", "Satoshi:29.0.0", "2", "110.00", "118.00"],
            vec!["Connect block", "Satoshi:30.0.0", "1", "40.00", "40.00"],
            vec!["Verify 2 txins", "Satoshi:30.0.0", "1", "10.00", "10.00"],
            vec!["Verify 2 txins", "Satoshi:29.0.0", "2", "7.00", "7.80"],
        ],
        "by stage, slowest version first within each: {text}"
    );
    // Without --stages, only the version table.
    let plain = stdout(&bmon(&s, &["validation"]));
    assert_eq!(plain, format!("{versions}\n"), "{plain}");
}
