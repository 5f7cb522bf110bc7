//! The `bmon-consumer` binary: refuses a bad config clearly, and survives `kill -9` mid-stream
//! without losing or duplicating a row.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{samples, Services};

const BIN: &str = env!("CARGO_BIN_EXE_bmon-consumer");

fn spawn(config: &std::path::Path, log: &std::path::Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    Command::new(BIN)
        .args(["ch-writer", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn bmon-consumer")
}

#[test]
fn a_bad_config_file_fails_with_a_clear_message_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consumer.toml");
    std::fs::write(&path, "[clickhouse]\ndatabse = \"bmon\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["ch-writer", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("databse"), "{err}");

    std::fs::write(
        &path,
        "[consumer]\nbatch_size = 0\n[nats]\nurl = \"localhost\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["ch-writer", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("batch_size") && err.contains("nats.url"),
        "{err}"
    );

    let out = Command::new(BIN)
        .args(["ch-writer", "--config", "/nonexistent/consumer.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn an_unknown_consumer_name_fails_naming_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consumer.toml");
    std::fs::write(&path, "").unwrap();
    let out = Command::new(BIN)
        .args(["det-nothing", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("det-nothing") && err.contains("ch-writer"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_three_times_mid_stream_then_a_clean_run_gives_exact_tables() {
    // Unacked messages come back 3 s after a crash.
    let s = Services::start(Some(3)).await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("consumer.toml");
    let mut config = s.config();
    config.consumer.batch_size = 1000;
    common::write_config(&config, &config_path);

    let mut envelopes = samples::every_kind();
    envelopes.extend(samples::mixed(40_000, 1_000));
    common::publish(&s.js, &envelopes, true).await;
    let expected = common::expected_rows(&envelopes);
    let total = envelopes.len() as u64;

    let raw_rows = || {
        s.sql("SELECT count() FROM {db}.tx_seen")
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    for round in 1..=3u64 {
        let mut child = spawn(&config_path, &dir.path().join(format!("run{round}.log")));
        let target = total * round / 4;
        test_support::wait_until(
            Duration::from_secs(120),
            &format!("round {round}: {target} rows inserted"),
            || async { raw_rows() >= target },
        )
        .await;
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        assert!(
            s.backlog("ch-writer").await > 0,
            "round {round}: killed after the end of the stream, not mid-stream"
        );
    }

    let mut child = spawn(&config_path, &dir.path().join("clean.log"));
    test_support::wait_until(
        Duration::from_secs(180),
        "clean run drains the stream",
        || async { s.backlog("ch-writer").await == 0 },
    )
    .await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "a SIGTERM'd consumer exits 0, got {exit}");

    let rows = s.rows().await.normalized();
    assert_eq!(rows.counts(), expected.counts());
    assert!(rows == expected, "tables differ from the published events");
}

#[test]
fn the_readme_shows_the_current_help() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("consumers/README.md");
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        readme.contains(help.trim_end()),
        "consumers/README.md lacks the current `bmon-consumer --help`:\n{help}"
    );
}
