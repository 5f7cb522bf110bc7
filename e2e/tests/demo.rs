//! The README's demo, scripted: `scripts/demo.sh` with its first report after 70 s, then
//! stop. The report, read back from ClickHouse, shows every node, the blocks each connected,
//! the reorgs and the detectors' reorg, selfish-mining and stale-branch alerts; the demo
//! stops everything it started.

use std::process::Command;

#[test]
fn the_demo_reports_the_fleet_the_reorg_and_its_alerts() {
    let root = test_support::workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(root.join("scripts/demo.sh"))
        .current_dir(&root)
        .env("BMON_DEMO_SECONDS", "70")
        .env("BMON_DEMO_EXIT_AFTER_REPORT", "1")
        .env("BMON_DEMO_DIR", dir.path().join("demo"))
        .output()
        .expect("run scripts/demo.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the demo failed:\n{text}\n{err}");
    for node in ["alpha", "bravo", "charlie", "delta"] {
        assert!(text.contains(node), "the status lists {node}:\n{text}");
    }
    let alerts = text
        .split("==> alerts raised by the detectors")
        .nth(1)
        .unwrap_or_else(|| panic!("no alerts section:\n{text}"));
    for kind in ["reorg", "selfish_mining", "stale_tip"] {
        assert!(
            alerts.contains(kind),
            "the report shows a {kind} alert:\n{alerts}"
        );
    }
    // The blocks table: each of the last blocks connected by the four nodes.
    assert!(
        text.contains("alpha +0ms") || text.contains("bravo +0ms") || text.contains("charlie +0ms"),
        "per block, when each node connected it:\n{text}"
    );
    let reorgs = text
        .split("==> reorgs seen by the agents")
        .nth(1)
        .and_then(|s| s.split("==> alerts").next())
        .unwrap_or_default();
    assert!(reorgs.lines().count() > 3, "the agents' reorgs:\n{reorgs}");
    // The web view answers every page.
    let web = text
        .split("==> the web view: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no web view section:\n{text}"));
    let status_line = web.lines().nth(1).unwrap_or_default();
    for page in [
        "/ 200",
        "/tips 200",
        "/alerts 200",
        "/logs 200",
        "/live 200",
        "/block/",
    ] {
        assert!(
            status_line.contains(page),
            "bmon-web answers {page}: {status_line}"
        );
    }
    assert!(
        !status_line.contains(" 5") && !status_line.contains(" 4") && !status_line.contains(" 000"),
        "every page answers 200: {status_line}"
    );
    assert!(text.contains("==> stopping the demo") || err.contains("stopping the demo"));
    // Everything it started is stopped: no process of this demo is left.
    let demo_dir = dir.path().join("demo").display().to_string();
    let left = Command::new("pgrep")
        .args(["-f", &demo_dir])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(left.trim().is_empty(), "processes left running: {left}");
}
