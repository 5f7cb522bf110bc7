//! simnet/README.md shows the binary's current `--help` output.

use std::process::Command;

#[test]
fn the_readme_shows_the_current_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_bmon-simnet"))
        .arg("--help")
        .output()
        .expect("run bmon-simnet --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read simnet/README.md");
    assert!(
        readme.contains(help.trim_end()),
        "simnet/README.md lacks the current `bmon-simnet --help`:\n{help}"
    );
}
