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

#[test]
fn alertmanager_config_is_valid() {
    let out = Command::new("amtool")
        .args(["check-config", "alertmanager.yml"])
        .current_dir(workspace_root().join("deploy"))
        .output()
        .unwrap_or_else(|e| {
            panic!("amtool not runnable ({e}); apt-get install prometheus-alertmanager")
        });
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("SUCCESS"), "{text}");
}

/// The systemd units start the binaries the workspace builds, with the flags they take.
#[test]
fn systemd_units_start_bmon_binaries_with_their_config() {
    let dir = workspace_root().join("deploy/systemd");
    let agent = std::fs::read_to_string(dir.join("bmon-agent@.service")).expect("agent unit");
    assert!(agent.contains("bmon-agent --config /etc/bmon/agent-%i.toml"));
    let consumer =
        std::fs::read_to_string(dir.join("bmon-consumer@.service")).expect("consumer unit");
    assert!(consumer.contains("bmon-consumer %i --config /etc/bmon/consumer.toml"));
    let web = std::fs::read_to_string(dir.join("bmon-web.service")).expect("web unit");
    assert!(web.contains("bmon-web --config /etc/bmon/web.toml"));
}
