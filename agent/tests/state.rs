//! One agent per node, nothing shared: agents of different nodes configured alike but for the
//! node name run side by side, each with its own spool and debug.log position; a second agent
//! given the same state refuses to start and leaves the first running; a node never resumes
//! from another node's position, not even from one an older agent left in the place agents
//! with sibling spool directories used to share. The node's RPC and ZMQ are unreachable
//! throughout.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::Figment;
use schema::Event;
use test_support::{free_port, wait_until, NatsServer};
use tokio_util::sync::CancellationToken;

mod common;

/// Where an agent keeps its state: the default layout under a `state_dir`, or an explicit
/// spool directory.
enum State<'a> {
    Dir(&'a Path),
    Spool(&'a Path),
}

/// An agent config for `node` keeping its state as `state` says, with a `[debug_log]`
/// following `log` from its start.
fn config(node: &str, nats_url: &str, state: State<'_>, log: &Path) -> agent::Config {
    let (top, spool) = match state {
        State::Dir(d) => (format!("state_dir = \"{}\"", d.display()), String::new()),
        State::Spool(d) => (String::new(), format!("[spool]\ndir = \"{}\"", d.display())),
    };
    let toml = format!(
        r#"
        node = "{node}"
        network = "regtest"
        {top}
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
        {spool}
        [debug_log]
        path = "{log}"
        backfill = true
        poll_ms = 20
        "#,
        rpc = free_port(),
        zmq = free_port(),
        log = log.display(),
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
    fn start(cfg: agent::Config) -> Agent {
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

    /// Waits until the agent is past its start-up: it asks the (absent) node over RPC.
    async fn wait_running(&self) {
        let m = self.metrics.clone();
        wait_until(Duration::from_secs(20), "the agent asks its node", || {
            let m = m.clone();
            async move {
                m.render().lines().any(|l| {
                    l.starts_with("bmon_agent_rpc_errors_total")
                        && l.contains("getblockchaininfo")
                        && !l.ends_with(" 0")
                })
            }
        })
        .await;
        assert!(!self.task.is_finished(), "the agent is still running");
    }

    async fn wait_lines(&self, n: u64) {
        let m = self.metrics.clone();
        wait_until(Duration::from_secs(20), &format!("{n} lines read"), || {
            let m = m.clone();
            async move { m.log_lines_count() >= n }
        })
        .await;
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

/// Appends `n` timestamped lines saying `<tag> line <i>`, counting on from `from`.
fn write_lines(path: &Path, tag: &str, from: usize, n: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in from..from + n {
        writeln!(f, "2026-11-25T15:53:31.{i:06}Z {tag} line {i}").unwrap();
    }
}

/// The messages of the lines `node` shipped to BMON_LOGS, in order.
async fn shipped(nats_url: &str, node: &str) -> Vec<String> {
    common::envelopes(nats_url, schema::subject::LOGS_STREAM)
        .await
        .into_iter()
        .filter(|e| e.node.as_str() == node)
        .flat_map(|e| match e.event {
            Event::LogBatch(b) => b.lines.into_iter().map(|l| l.message),
            other => panic!("not a log_batch in BMON_LOGS: {other:?}"),
        })
        .collect()
}

/// The lines `write_lines(_, tag, from, n)` wrote, as shipped.
fn messages(tag: &str, from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("{tag} line {i}"))
        .collect()
}

fn position_of(path: &Path) -> debuglog::follow::Position {
    debuglog::follow::StateFile::new(path)
        .load()
        .unwrap()
        .unwrap_or_else(|| panic!("a position in {}", path.display()))
}

fn file_id(path: &Path) -> debuglog::follow::FileId {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap();
    debuglog::follow::FileId {
        dev: m.dev(),
        ino: m.ino(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_on_the_same_state_refuses_to_start_and_the_first_runs_on() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("debug.log");
    let cfg = config("node0", &nats.url(), State::Dir(dir.path()), &log);
    let first = Agent::start(cfg.clone());
    first.wait_running().await;

    let second = tokio::time::timeout(
        Duration::from_secs(10),
        agent::run(cfg.clone(), CancellationToken::new()),
    )
    .await
    .expect("the second agent stops at once");
    let err = second.expect_err("the second agent refuses to start");
    let lock = dir.path().join("node0/spool/agent.lock");
    assert!(
        matches!(&err, agent::Error::StateInUse { path, .. } if *path == lock),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&lock.display().to_string()), "{text}");
    assert!(
        text.contains(&format!(
            "bmon-agent for node node0, pid {}",
            std::process::id()
        )),
        "{text}"
    );
    assert!(text.contains("one agent per node"), "{text}");

    // The first agent was not disturbed; once it has exited, the state is free again.
    assert!(!first.task.is_finished());
    first.stop().await;
    let again = Agent::start(cfg);
    again.wait_running().await;
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_of_different_nodes_sharing_a_state_dir_keep_apart() {
    let nats = NatsServer::start();
    common::create_streams(&nats.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = ["node0", "node1", "node2", "node3"];
    let mut agents = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let log = dir.path().join(format!("{node}.debug.log"));
        write_lines(&log, node, 0, 10 + i);
        agents.push(Agent::start(config(
            node,
            &nats.url(),
            State::Dir(dir.path()),
            &log,
        )));
    }
    for (i, a) in agents.iter().enumerate() {
        a.wait_running().await;
        a.wait_lines(10 + i as u64).await;
    }
    for a in agents {
        a.stop().await;
    }
    for (i, node) in nodes.iter().enumerate() {
        let own = dir.path().join(node);
        let lock = std::fs::read_to_string(own.join("spool/agent.lock")).unwrap();
        assert!(lock.contains(&format!("node {node},")), "{lock}");
        let pos = position_of(&own.join("debuglog.pos"));
        let log = dir.path().join(format!("{node}.debug.log"));
        assert_eq!(
            pos.file,
            file_id(&log),
            "{node} keeps its own log's position"
        );
        assert_eq!(pos.offset, std::fs::metadata(&log).unwrap().len());
        assert_eq!(shipped(&nats.url(), node).await, messages(node, 0, 10 + i));
    }
    assert!(!dir.path().join("debuglog.pos").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_never_resumes_from_another_nodes_position() {
    let nats = NatsServer::start();
    common::create_streams(&nats.url()).await;
    let dir = tempfile::tempdir().unwrap();
    // The fleet's layout: sibling spool directories, the logs side by side, no state_file.
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let (log_a, log_b) = (logs.join("a.debug.log"), logs.join("b.debug.log"));
    let (own_a, own_b) = (
        dir.path().join("spool-node-a"),
        dir.path().join("spool-node-b"),
    );
    write_lines(&log_a, "a", 0, 40);
    write_lines(&log_b, "b", 0, 25);

    let a = Agent::start(config("node-a", &nats.url(), State::Spool(&own_a), &log_a));
    a.wait_lines(40).await;
    assert_eq!(a.stop().await, 40);
    let a_pos = position_of(&own_a.join("debuglog.pos"));
    assert_eq!(a_pos.file, file_id(&log_a));
    // What an older agent left where agents with sibling spools shared their position: node-a's.
    let shared = dir.path().join("debuglog.pos");
    debuglog::follow::StateFile::new(&shared)
        .save(&a_pos)
        .unwrap();
    // Lines node-a has not read yet: node-b would ship them if it took node-a's position.
    write_lines(&log_a, "a", 40, 15);

    let b = Agent::start(config("node-b", &nats.url(), State::Spool(&own_b), &log_b));
    b.wait_lines(25).await;
    // A moment for anything beyond its own 25 lines to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.stop().await, 25, "node-b reads its own log, and only it");
    assert_eq!(shipped(&nats.url(), "node-b").await, messages("b", 0, 25));
    let b_pos = position_of(&own_b.join("debuglog.pos"));
    assert_eq!(b_pos.file, file_id(&log_b));
    assert_eq!(
        position_of(&shared),
        a_pos,
        "node-b left node-a's position alone"
    );

    // node-a resumes from its own position: the 15 new lines, nothing twice.
    let a = Agent::start(config("node-a", &nats.url(), State::Spool(&own_a), &log_a));
    a.wait_lines(15).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.stop().await, 15);
    assert_eq!(shipped(&nats.url(), "node-a").await, messages("a", 0, 55));
}
