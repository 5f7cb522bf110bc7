//! The debug.log source against a real nats-server: an agent follows a debug.log that the test
//! writes (in pieces, one line split across two writes, a restart of the agent, a rename
//! rotation) and every line arrives in `BMON_LOGS` exactly once and in order, while the events
//! extracted from it arrive in `BMON_EVENTS`. The node's RPC and ZMQ are unreachable throughout:
//! the log does not depend on them.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::Figment;
use schema::event::{LogLine, Source};
use schema::{Event, UnixMicros};
use test_support::{free_port, wait_until, NatsServer};
use tokio_util::sync::CancellationToken;

mod common;

fn config(nats_url: &str, dir: &Path) -> agent::Config {
    let toml = format!(
        r#"
        node = "node1"
        network = "regtest"
        state_dir = "{dir}/state"
        [rpc]
        url = "http://127.0.0.1:{rpc}/"
        user = "u"
        password = "p"
        timeout_secs = 2
        [zmq]
        sequence = "tcp://127.0.0.1:{zmq}"
        rawblock = "tcp://127.0.0.1:{zmq}"
        rawtx = "tcp://127.0.0.1:{zmq}"
        [nats]
        url = "{nats_url}"
        [metrics]
        listen = "127.0.0.1:0"
        [debug_log]
        path = "{dir}/debug.log"
        backfill = true
        batch_lines = 50
        batch_bytes = 8192
        poll_ms = 20
        "#,
        rpc = free_port(),
        zmq = free_port(),
        dir = dir.display(),
    );
    agent::Config::from_figment(Figment::from(Toml::string(&toml))).unwrap()
}

/// A running agent.
struct Agent {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), agent::Error>>,
    metrics: agent::Metrics,
}

impl Agent {
    fn start(nats_url: &str, dir: &Path) -> Agent {
        let cfg = config(nats_url, dir);
        let metrics = agent::Metrics::new(&cfg.node);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(agent::run_with_metrics(
            cfg,
            metrics.clone(),
            shutdown.clone(),
        ));
        Agent {
            shutdown,
            task,
            metrics,
        }
    }

    async fn wait_lines(&self, n: u64) {
        let m = self.metrics.clone();
        wait_until(Duration::from_secs(20), &format!("{n} lines read"), || {
            let m = m.clone();
            async move { m.log_lines_count() >= n }
        })
        .await;
        assert_eq!(
            self.metrics.log_lines_count(),
            n,
            "no more lines than written"
        );
    }

    /// Stops the agent; returns how many lines it read.
    async fn stop(self) -> u64 {
        self.shutdown.cancel();
        let res = tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("agent stops within 20 s")
            .unwrap();
        assert!(res.is_ok(), "{res:?}");
        self.metrics.log_lines_count()
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
}

/// The fixture's lines, each with its newline.
fn fixture_lines() -> Vec<Vec<u8>> {
    let data = std::fs::read(test_support::fixture(
        "bitcoin-core-v30/logs/node1.debug.log",
    ))
    .unwrap();
    data.split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn concat(lines: &[Vec<u8>]) -> Vec<u8> {
    lines.concat()
}

/// The message a shipped line must carry.
fn message_of(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    match debuglog::parse_line(line) {
        Ok(l) => l.to_log_line(0).message,
        Err(_) => String::from_utf8_lossy(line).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_arrives_once_in_order_across_a_restart_and_a_rotation() {
    let nats = NatsServer::start();
    common::create_streams(&nats.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("debug.log");
    let rotated = dir.path().join("debug.log.1");
    let lines = fixture_lines();
    let total = lines.len();
    assert!(total > 4_000);

    // The file does not exist yet: the agent waits for it.
    let first = Agent::start(&nats.url(), dir.path());
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Three writes; the third ends in the middle of line 1500.
    append(&log, &concat(&lines[..700]));
    append(&log, &concat(&lines[700..1_400]));
    let split = &lines[1_499];
    let mut third = concat(&lines[1_400..1_499]);
    third.extend_from_slice(&split[..split.len() / 2]);
    append(&log, &third);
    first.wait_lines(1_499).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(first.metrics.log_lines_count(), 1_499, "half a line waits");
    append(&log, &split[split.len() / 2..]);
    first.wait_lines(1_500).await;

    // More lines, and the agent stops while it may still be reading them.
    append(&log, &concat(&lines[1_500..2_500]));
    tokio::time::sleep(Duration::from_millis(30)).await;
    let read_first = first.stop().await;
    assert!(read_first >= 1_500);

    // Written while the agent is down; then it restarts where it stopped.
    append(&log, &concat(&lines[2_500..3_000]));
    let second = Agent::start(&nats.url(), dir.path());
    second.wait_lines(3_000 - read_first).await;

    // Rename rotation: bitcoind writes a little more to the renamed file (its open
    // descriptor), then reopens debug.log.
    append(&log, &concat(&lines[3_000..3_200]));
    std::fs::rename(&log, &rotated).unwrap();
    append(&rotated, &concat(&lines[3_200..3_300]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    append(&log, &concat(&lines[3_300..]));
    second.wait_lines(total as u64 - read_first).await;
    assert_eq!(second.metrics.log_rotation_count(), 1);
    second.stop().await;

    // BMON_LOGS: every line once, in order; two files.
    let batches: Vec<_> = common::envelopes(&nats.url(), schema::subject::LOGS_STREAM)
        .await
        .into_iter()
        .map(|e| {
            assert_eq!(e.node.as_str(), "node1");
            match e.event {
                Event::LogBatch(b) => b,
                other => panic!("not a log_batch in BMON_LOGS: {other:?}"),
            }
        })
        .collect();
    let shipped: Vec<(&str, &LogLine)> = batches
        .iter()
        .flat_map(|b| b.lines.iter().map(move |l| (b.file_id.as_str(), l)))
        .collect();
    assert_eq!(shipped.len(), total, "every line exactly once");
    let mut offset = 0u64;
    for (i, ((file, line), expected)) in shipped.iter().zip(&lines).enumerate() {
        if i == 3_300 {
            assert_ne!(*file, shipped[0].0, "the new file has its own identity");
            offset = 0;
        } else {
            assert_eq!(*file, shipped[if i < 3_300 { 0 } else { 3_300 }].0);
        }
        assert_eq!(line.offset, offset, "line {i}");
        assert_eq!(line.message, message_of(expected), "line {i}");
        offset += expected.len() as u64;
    }

    // BMON_EVENTS: the typed events, with the log's own times.
    let events = common::envelopes(&nats.url(), schema::subject::EVENTS_STREAM).await;
    let first_t = UnixMicros(1_795_621_959_000_000); // 2026-11-25T15:52:39Z
    let last_t = UnixMicros(1_795_622_015_000_000); // 2026-11-25T15:53:35Z
    for e in &events {
        assert!(
            e.observed_at >= first_t && e.observed_at <= last_t,
            "{:?} at {:?} is not a log time",
            e.kind(),
            e.observed_at
        );
    }
    let invalid = events
        .iter()
        .find_map(|e| match &e.event {
            Event::InvalidBlock(b) => Some((e.observed_at, b)),
            _ => None,
        })
        .expect("block 121's invalid_block");
    assert_eq!(
        invalid.1.hash.to_string(),
        "4b48a6f085ccd4bde4eeb753fc24144ff8fdb45f466d58b6d59c82da9ef0486b"
    );
    assert_eq!(invalid.1.source, Source::Log);
    assert_eq!(invalid.0, UnixMicros(1_795_622_011_156_020));
    let headers = events
        .iter()
        .filter(|e| {
            matches!(&e.event, Event::BlockSeen(b)
                if b.stage == schema::event::BlockStage::Header && b.source == Source::Log)
        })
        .count();
    assert!(headers >= 100, "{headers} block_seen header events");
    assert!(events
        .iter()
        .any(|e| matches!(&e.event, Event::TxRejected(_))));
}
