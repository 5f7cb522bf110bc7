//! A real Prometheus (Debian's `prometheus`) and node_exporter (`prometheus-node-exporter`) for
//! the dashboard checks: Prometheus scrapes this test process's bmon `/metrics` endpoints (the
//! agents' and the consumers') and node_exporter every second, and answers the panels' PromQL
//! over its HTTP API.
//!
//! The e2e `Pipeline` picks each process's metrics port itself and does not hand it out, so
//! [`bmon_endpoints`] finds them among this process's listening sockets and asks each for
//! `/metrics`.

use std::collections::{BTreeSet, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::free_port;

const PROMETHEUS_HINT: &str = "apt-get install prometheus";
const EXPORTER_HINT: &str = "apt-get install prometheus-node-exporter";

/// Scrape (and rule evaluation) interval of the test's Prometheus, seconds.
pub const SCRAPE_INTERVAL_S: u64 = 1;

/// A plain HTTP GET on the loopback; the body when the answer is 200.
pub fn http_get(port: u16, path: &str) -> Result<String, String> {
    http_get_within(port, path, Duration::from_secs(10))
}

/// [`http_get`], waiting at most `timeout` for each read.
fn http_get_within(port: u16, path: &str, timeout: Duration) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("bad HTTP answer: {text}"))?;
    if head.lines().next().is_some_and(|l| l.contains(" 200 ")) {
        Ok(body.to_string())
    } else {
        Err(format!(
            "{}: {}",
            head.lines().next().unwrap_or(""),
            body.trim()
        ))
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn spawn(names: &[&str], args: &[String], hint: &str) -> Child {
    let mut last = String::new();
    for name in names {
        match Command::new(name)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => return c,
            Err(e) => last = format!("{name}: {e}"),
        }
    }
    panic!("{last} ({hint})");
}

fn wait_until(what: &str, child: &mut Child, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} not ready after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// node_exporter on a free loopback port, stopped on drop.
pub struct NodeExporter {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl NodeExporter {
    /// Starts it and waits until `/metrics` answers.
    pub fn start() -> NodeExporter {
        let port = free_port();
        let mut child = spawn(
            &["prometheus-node-exporter", "node_exporter"],
            &[format!("--web.listen-address=127.0.0.1:{port}")],
            EXPORTER_HINT,
        );
        wait_until("node_exporter", &mut child, Duration::from_secs(20), || {
            http_get(port, "/metrics").is_ok()
        });
        NodeExporter {
            child,
            addr: format!("127.0.0.1:{port}"),
        }
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Which bmon process a `/metrics` endpoint belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Job {
    /// `bmon-agent` (`bmon_agent_*`).
    Agent,
    /// `bmon-consumer` (`bmon_consumer_*`, `bmon_writer_*`, `bmon_detector_*`, ...).
    Consumer,
}

impl Job {
    /// The job name `deploy/prometheus.yml` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Job::Agent => "bmon-agent",
            Job::Consumer => "bmon-consumer",
        }
    }
}

/// TCP ports this process listens on (from `/proc/self/net/tcp{,6}` and its own socket fds).
fn own_listening_ports() -> BTreeSet<u16> {
    let inodes: HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    l.to_str()?
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ports = BTreeSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let inode: u64 = f[9].parse().unwrap_or(0);
            if !inodes.contains(&inode) {
                continue;
            }
            if let Some(port) = f[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.insert(port);
            }
        }
    }
    ports
}

/// The bmon `/metrics` endpoints this process serves, skipping `exclude` (the fleet's RPC and
/// ZMQ ports, which are not HTTP metrics servers). It blocks: call it off the async runtime
/// whose tasks serve those endpoints (`block_in_place`), or they cannot answer.
pub fn bmon_endpoints(exclude: &BTreeSet<u16>) -> Vec<(Job, String)> {
    let mut out = Vec::new();
    for port in own_listening_ports().difference(exclude) {
        // Short: a socket that is no HTTP server never answers.
        let Ok(body) = http_get_within(*port, "/metrics", Duration::from_secs(2)) else {
            continue;
        };
        let job = if body.contains("bmon_agent_") {
            Job::Agent
        } else if body.contains("bmon_consumer_") {
            Job::Consumer
        } else {
            continue;
        };
        out.push((job, format!("127.0.0.1:{port}")));
    }
    out.sort();
    out
}

/// A Prometheus server on a free loopback port with its data in a temporary directory,
/// scraping the given targets every second; stopped on drop.
pub struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts it with one job per (job name, targets), as `deploy/prometheus.yml` names them.
    pub fn start(jobs: &[(&str, Vec<String>)]) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir for prometheus");
        let mut config = format!(
            "global:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n  scrape_timeout: {SCRAPE_INTERVAL_S}s\n  \
             evaluation_interval: {SCRAPE_INTERVAL_S}s\nscrape_configs:\n"
        );
        for (job, targets) in jobs {
            let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
                list.join(", ")
            ));
        }
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).expect("write prometheus.yml");
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut child = spawn(
                &["prometheus"],
                &[
                    format!("--config.file={}", file.display()),
                    format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                    format!("--web.listen-address=127.0.0.1:{port}"),
                ],
                PROMETHEUS_HINT,
            );
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if http_get(port, "/-/ready").is_ok() {
                    return Prometheus {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("prometheus exited with {status}");
                    break;
                }
                if Instant::now() >= deadline {
                    stop(&mut child);
                    last = "prometheus not ready after 30 s".into();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("could not start prometheus: {last} ({PROMETHEUS_HINT})");
    }

    fn api(&self, path: &str) -> Result<Value, String> {
        let body = http_get(self.port, path)?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        Ok(v["data"].clone())
    }

    /// An instant query at `at_s`: the result list (vector samples, or one scalar).
    pub fn query(&self, expr: &str, at_s: i64) -> Result<Vec<Value>, String> {
        let data = self.api(&format!(
            "/api/v1/query?query={}&time={at_s}",
            url_encode(expr)
        ))?;
        Ok(match &data["result"] {
            Value::Array(a) if data["resultType"] != "scalar" => a.clone(),
            other => vec![other.clone()],
        })
    }

    /// A range query from `start_s` to `end_s` with `step_s`: the series.
    pub fn query_range(
        &self,
        expr: &str,
        start_s: i64,
        end_s: i64,
        step_s: u64,
    ) -> Result<Vec<Value>, String> {
        let data = self.api(&format!(
            "/api/v1/query_range?query={}&start={start_s}&end={end_s}&step={step_s}",
            url_encode(expr)
        ))?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Grafana's `label_values(metric, label)`: the label's values on the metric's series.
    pub fn label_values(&self, metric: &str, label: &str) -> Result<Vec<String>, String> {
        let data = self.api(&format!(
            "/api/v1/series?match%5B%5D={}",
            url_encode(metric)
        ))?;
        let set: BTreeSet<String> = data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s[label].as_str().map(String::from))
            .collect();
        Ok(set.into_iter().collect())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
