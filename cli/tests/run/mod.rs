//! Running the `bmon` binary in the CLI's integration tests, against one test's services.

#![allow(dead_code)]

use std::process::{Command, Output};

use crate::common::Services;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_bmon");

/// `bmon ARGS` against `s`'s NATS and ClickHouse database.
pub fn bmon(s: &Services, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--nats-url", &s.nats.url()])
        .args(["--clickhouse-url", &s.ch.url()])
        .args(["--clickhouse-database", &s.db])
        .args(args)
        .output()
        .expect("run bmon")
}

/// The command's standard output; fails the test with both outputs when it did not succeed.
pub fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "bmon failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
