//! The real-Core harness itself: nodes start on free ports, connect, relay blocks, partition and
//! heal, and write the debug.log prefix each test asked for.

use std::time::Duration;

use test_support::{core_binaries, CoreFleet, LogFormat, NodeOptions};

#[test]
fn a_two_node_fleet_relays_blocks_partitions_and_heals() {
    let Some(bins) = core_binaries() else { return };
    let mut fleet = CoreFleet::start(
        &bins,
        vec![
            NodeOptions::new("n0", LogFormat::default()),
            NodeOptions::new("n1", LogFormat::default()),
        ],
    );
    let (n0, n1) = (fleet.node(0), fleet.node(1));
    assert!(n0.is_connected_to(n1), "nodes connected at start");
    let addr = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    let mined = n0.mine_to(3, addr);
    assert_eq!(mined.len(), 3);
    fleet.wait_for_tip(&[1], &mined[2], Duration::from_secs(20));

    n0.disconnect(n1);
    assert!(!n0.is_connected_to(n1));
    let a = n0.mine_to(1, addr);
    let b = n1.mine_to(2, addr);
    assert_eq!(n1.tip(), b[1]);
    assert_eq!(n0.tip(), a[0]);
    n0.connect(n1);
    fleet.wait_for_tip(&[0, 1], &b[1], Duration::from_secs(20));
    assert_eq!(fleet.node(0).height(), 5);
    fleet.stop();
}

#[test]
fn each_node_writes_the_log_prefix_it_was_started_with() {
    let Some(bins) = core_binaries() else { return };
    let formats = [
        LogFormat::default(),
        LogFormat {
            micros: true,
            thread_names: true,
            source_locations: true,
        },
    ];
    let mut fleet = CoreFleet::start(
        &bins,
        vec![
            NodeOptions::new("plain", formats[0]),
            NodeOptions::new("full", formats[1]),
        ],
    );
    let addr = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    fleet.node(0).mine_to(1, addr);
    fleet.wait_for_tip(&[1], &fleet.node(0).tip(), Duration::from_secs(20));
    let plain = std::fs::read_to_string(fleet.node(0).debug_log()).expect("plain debug.log");
    let full = std::fs::read_to_string(fleet.node(1).debug_log()).expect("full debug.log");
    let update_tip = |log: &str| {
        log.lines()
            .find(|l| l.contains("UpdateTip: new best="))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no UpdateTip line in\n{log}"))
    };
    let p = update_tip(&plain);
    let f = update_tip(&full);
    // Plain: `2026-12-05T03:22:38Z UpdateTip: ...`; seconds only, nothing in brackets.
    assert_eq!(p.as_bytes()[19], b'Z', "{p}");
    assert!(p[21..].starts_with("UpdateTip:"), "{p}");
    // Full: micros, a thread name, the source file and line, the function signature.
    assert_eq!(f.as_bytes()[19], b'.', "{f}");
    assert!(f.contains("] [validation.cpp:"), "{f}");
    assert!(f.contains("UpdateTipLog("), "{f}");
    fleet.stop();
}
