//! A real Alertmanager (Debian's `prometheus-alertmanager`) for one test.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{find_binary, free_port, http_get, kill, wait_ready};

const HINT: &str = "apt-get install prometheus-alertmanager";

/// Alertmanager on a free loopback port with a do-nothing receiver; killed on drop.
pub struct Alertmanager {
    child: Option<Child>,
    port: u16,
    _dir: TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager and waits for `/-/ready`.
    pub fn start() -> Alertmanager {
        let bin = find_binary(
            "ALERTMANAGER_EXE",
            &["prometheus-alertmanager", "alertmanager"],
            HINT,
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let config = dir.path().join("alertmanager.yml");
        let yml = "route:\n  receiver: 'null'\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: 'null'\n";
        std::fs::write(&config, yml).unwrap_or_else(|e| panic!("write config: {e}"));
        let mut last_err = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e} ({HINT})", bin.display()));
            match wait_ready(&mut child, "alertmanager", Duration::from_secs(20), || {
                http_get(port, "/-/ready").is_some()
            }) {
                Ok(()) => {
                    return Alertmanager {
                        child: Some(child),
                        port,
                        _dir: dir,
                    }
                }
                Err(e) => {
                    kill(&mut child);
                    last_err = e;
                }
            }
        }
        panic!("could not start alertmanager: {last_err}");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The alerts Alertmanager holds now (`GET /api/v2/alerts`, raw JSON).
    pub fn alerts_json(&self) -> Option<String> {
        http_get(self.port, "/api/v2/alerts")
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(&mut c);
        }
    }
}
