//! The migrations and the writer's read-back queries also run on a current ClickHouse (the
//! `chdb` Python package embeds ClickHouse 26.x), not only on the 18.16 server of the tests.

use std::process::Command;

use consumers::migrations::MIGRATIONS;
use consumers::writer::Rows;

const HINT: &str = "pip install chdb==4.4.0";

#[test]
fn migrations_apply_on_a_current_clickhouse_and_final_collapses_copies() {
    let have_chdb = Command::new("python3")
        .args(["-c", "import chdb"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        have_chdb,
        "python3 with the chdb package is required: {HINT}"
    );
    let mut statements = Vec::new();
    for m in MIGRATIONS {
        statements.extend(m.statements());
    }
    for table in Rows::TABLES {
        statements.push(format!("SELECT count() FROM {table} FINAL"));
    }
    statements.push(
        "INSERT INTO warning (event_id, node, observed_at_us, observed_at, message) VALUES ('a', 'n', 1, 1, 'm')".into(),
    );
    statements.push(
        "INSERT INTO warning (event_id, node, observed_at_us, observed_at, message) VALUES ('a', 'n', 1, 1, 'm')".into(),
    );
    let script = r#"
import json, sys
from chdb import session
s = session.Session()
s.query("CREATE DATABASE IF NOT EXISTS bmon")
for st in json.load(sys.stdin):
    s.query("USE bmon")
    s.query(st)
print(s.query("SELECT version()", "CSV").bytes().decode().strip())
print(s.query("SELECT count() FROM bmon.warning FINAL", "CSV").bytes().decode().strip())
"#;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new("python3")
        .args(["-c", script])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&statements).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chdb run failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].trim_matches('"').starts_with("2"),
        "version {}",
        lines[0]
    );
    assert_eq!(lines[1], "1", "FINAL must collapse the two copies");
}
