//! The Prometheus configuration and rule files in `deploy/` are valid, and the rules fire (and
//! stay quiet) as their unit tests in `deploy/rules-tests/` say.

use std::process::Command;

use test_support::workspace_root;

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(workspace_root().join("deploy"))
        .output()
        .unwrap_or_else(|e| panic!("promtool not runnable ({e}); apt-get install prometheus"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn rule_files_pass_promtool_check() {
    let (ok, text) = promtool(&["check", "rules", "rules/bmon.yml"]);
    assert!(ok, "{text}");
}

#[test]
fn rule_unit_tests_pass() {
    let (ok, text) = promtool(&["test", "rules", "rules-tests/bmon_test.yml"]);
    assert!(ok, "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

#[test]
fn prometheus_config_is_valid() {
    let (ok, text) = promtool(&["check", "config", "prometheus.yml"]);
    assert!(ok, "{text}");
}
