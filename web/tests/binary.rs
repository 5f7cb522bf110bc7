//! The `bmon-web` binary: it reads its configuration from a file and `BMON_` variables,
//! serves on the configured loopback address, and stops cleanly on SIGTERM and SIGINT.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bmon-web");

fn start(port: u16, config: &std::path::Path) -> Child {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .env("BMON_WEB__LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bmon-web")
}

/// Waits until `GET /metrics` answers (the binary needs no ClickHouse for it).
fn wait_serving(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Write;
            let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("bmon-web exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "bmon-web did not serve within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop_with(signal: &str, mut child: Child) -> String {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "bmon-web did not stop on {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .ok();
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .ok();
    assert!(status.success(), "exit {status} on {signal}:\n{out}\n{err}");
    out + &err
}

#[test]
fn it_serves_on_the_configured_address_and_stops_on_sigterm_and_sigint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("web.toml");
    std::fs::write(
        &config,
        "[clickhouse]\nurl = \"http://127.0.0.1:9\"\npassword = \"s3cret\"\n",
    )
    .expect("write config");
    for signal in ["TERM", "INT"] {
        let port = test_support::free_port();
        let mut child = start(port, &config);
        wait_serving(port, &mut child);
        let logs = stop_with(signal, child);
        assert!(logs.contains("serving bmon-web"), "{logs}");
        assert!(logs.contains("shutting down"), "{logs}");
        assert!(
            !logs.contains("s3cret"),
            "the password leaked into the log:\n{logs}"
        );
    }
}

#[test]
fn a_bad_configuration_is_refused_with_every_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("web.toml");
    std::fs::write(
        &config,
        "[web]\nrefresh_secs = 99999\n[clickhouse]\nurl = \"tcp://x\"\n",
    )
    .expect("write config");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run bmon-web");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("web.refresh_secs") && err.contains("clickhouse.url"),
        "{err}"
    );
}
