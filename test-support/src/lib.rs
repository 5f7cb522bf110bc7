//! Test helpers for bmon: start the real services a test needs on free loopback ports (NATS,
//! ClickHouse, Alertmanager, a regtest fleet of real Bitcoin Core nodes), find the shared
//! fixtures, and wait for conditions with a deadline.
//!
//! Every service started here binds 127.0.0.1 only, keeps its data in a temporary directory and
//! is killed when its handle is dropped. A missing binary fails the test with the install hint:
//! `.ci/run` and `just test` install them.
//!
//! This crate is a dev-dependency only; nothing in it is fit for production.

mod alertmanager;
pub mod bitcoind;
mod browser;
mod clickhouse;
mod nats;
mod process;
pub mod zmq_tap;
mod zookeeper;

use std::path::PathBuf;
use std::time::Duration;

pub use alertmanager::Alertmanager;
pub use bitcoind::{core_binaries, CoreBinaries, CoreFleet, CoreNode, LogFormat, NodeOptions};
pub use browser::{artifacts_dir, Browser};
pub use clickhouse::ClickHouse;
pub use nats::{shipped_server_conf, ConfiguredNats, NatsServer};
pub use process::free_port;
pub use zmq_tap::{Loss, ZmqTap};
pub use zookeeper::ZooKeeper;

/// Path of a file under the shared fixtures directory (`../shared/fixtures` beside the
/// workspace, or `$BMON_FIXTURES`).
///
/// Panics with a hint when the file is missing: a test that needs a fixture cannot run without it.
pub fn fixture(rel: &str) -> PathBuf {
    let root = fixtures_root();
    let path = root.join(rel);
    assert!(
        path.exists(),
        "fixture {} not found (fixtures root {}); set BMON_FIXTURES to the shared fixtures directory",
        path.display(),
        root.display()
    );
    path
}

/// The fixtures directory.
pub fn fixtures_root() -> PathBuf {
    match std::env::var_os("BMON_FIXTURES") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("../shared/fixtures"),
    }
}

/// The workspace root (the directory holding the top-level Cargo.toml).
///
/// Taken from the running test's `CARGO_MANIFEST_DIR` (every workspace member sits one level
/// below the root), falling back to where this crate was compiled.
pub fn workspace_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Polls `cond` every 20 ms until it returns true; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Blocking variant of [`wait_until`] for tests without a runtime.
pub fn wait_until_blocking(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if std::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
