//! The agent as a whole: start-up while the node is not there yet, clean shutdown, and the
//! binary's documented `--help`.

use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::Figment;
use test_support::{free_port, wait_until, NatsServer};
use tokio_util::sync::CancellationToken;

fn config(nats_url: &str, spool: &std::path::Path) -> agent::Config {
    let toml = format!(
        r#"
        node = "node0"
        network = "regtest"
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
        [spool]
        dir = "{spool}"
        [metrics]
        listen = "127.0.0.1:0"
        "#,
        rpc = free_port(),
        zmq = free_port(),
        spool = spool.display(),
    );
    agent::Config::from_figment(Figment::from(Toml::string(&toml))).unwrap()
}

#[tokio::test]
async fn shutdown_while_waiting_for_the_node_returns_cleanly() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&nats.url(), dir.path());
    let metrics = agent::Metrics::new(&cfg.node);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(agent::run_with_metrics(
        cfg,
        metrics.clone(),
        shutdown.clone(),
    ));
    // The node is not there: the agent keeps asking, counting each failed call.
    wait_until(Duration::from_secs(20), "RPC errors counted", || {
        let m = metrics.clone();
        async move {
            m.render().lines().any(|l| {
                l.starts_with("bmon_agent_rpc_errors_total")
                    && l.contains("getblockchaininfo")
                    && !l.ends_with(" 0")
            })
        }
    })
    .await;
    shutdown.cancel();
    let res = tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("agent stops within 15 s")
        .unwrap();
    assert!(res.is_ok(), "{res:?}");
}

#[test]
fn the_readme_shows_the_current_help() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bmon-agent"))
        .arg("--help")
        .env_remove("BMON_AGENT_CONFIG")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(help.trim()),
        "agent/README.md does not contain the current --help output:\n{help}"
    );
}
