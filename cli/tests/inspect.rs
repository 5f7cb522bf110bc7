//! `bmon block`, `tx`, `alerts`, `logs` and `tips` against a real ClickHouse holding a small
//! fleet's story: n0 mined a branch alone and was reorged onto n1's longer one (depth 2), an
//! invalid block was rejected by two nodes, a payment was rejected by n2 and replaced on n0,
//! the detectors raised a reorg alert (firing) and a resolved one. `logs --follow` reads a
//! batch published on a real NATS server while it runs.

#[path = "../../consumers/tests/common/mod.rs"]
mod common;
mod run;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Services;
use run::{bmon, stdout, BIN};
use schema::event::{LogBatch, LogLine};
use schema::{Envelope, NodeId, UnixMicros};

fn h(c: char) -> String {
    c.to_string().repeat(64)
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// Blocks a(100) ← b(101) ← c(102) ← d(103) active on every node; e(101) ← f(102) mined by n0
/// alone and reorged out at depth 2; x at 104 invalid (bad-cb-amount) on n0 and n1.
fn fill(s: &Services, t0: i64) {
    let mut connected = Vec::new();
    let mut at = t0;
    for (hash, height, prev, nodes) in [
        ('a', 100, '9', &["n0", "n1", "n2"][..]),
        ('e', 101, 'a', &["n0"][..]),
        ('f', 102, 'e', &["n0"][..]),
        ('b', 101, 'a', &["n1", "n2", "n0"][..]),
        ('c', 102, 'b', &["n1", "n2", "n0"][..]),
        ('d', 103, 'c', &["n1", "n2", "n0"][..]),
    ] {
        for (k, node) in nodes.iter().enumerate() {
            let t = at + k as i64 * 250_000;
            connected.push(format!(
                "('c{hash}{node}', '{node}', {t}, {secs}, '{h}', {height}, '{p}', 0, 1200, 4800, \
                 2, 5000000000, 5000000000, 0, 'bmon-miner', 1, 'zmq')",
                secs = t / 1_000_000,
                h = h(hash),
                p = h(prev),
            ));
        }
        at += 10_000_000;
    }
    s.sql(&format!(
        "INSERT INTO {{db}}.block_connected (event_id, node, observed_at_us, observed_at, hash, \
         height, prev, header_time, size, weight, tx_count, coinbase_value_sat, subsidy_sat, \
         fees_sat, miner_tag, occurrence, source) VALUES {}",
        connected.join(", ")
    ));
    s.sql(&format!(
        "INSERT INTO {{db}}.block_disconnected (event_id, node, observed_at_us, observed_at, hash, \
         height, occurrence, source) VALUES ('df', 'n0', {t}, {s}, '{f}', 102, 1, 'zmq'), \
         ('de', 'n0', {t}, {s}, '{e}', 101, 1, 'zmq')",
        t = t0 + 35_000_000,
        s = (t0 + 35_000_000) / 1_000_000,
        f = h('f'),
        e = h('e'),
    ));
    s.sql(&format!(
        "INSERT INTO {{db}}.reorg (event_id, node, observed_at_us, observed_at, old_tip, \
         old_height, new_tip, new_height, fork_point, fork_height, depth, disconnected, \
         connected, source) VALUES ('r', 'n0', {t}, {s}, '{f}', 102, '{d}', 103, '{a}', 100, 2, \
         ['{f}', '{e}'], ['{b}', '{c}', '{d}'], 'zmq')",
        t = t0 + 35_000_000,
        s = (t0 + 35_000_000) / 1_000_000,
        f = h('f'),
        e = h('e'),
        d = h('d'),
        a = h('a'),
        b = h('b'),
        c = h('c'),
    ));
    // Block d: n1 first (header then compact block then tip), n2 300 ms later via a compact
    // block from peer 7, reconstructed with one transaction requested.
    let d = t0 + 50_000_000;
    let mut seen = Vec::new();
    for (node, stage, dt, peer) in [
        ("n1", "header", 0, "NULL"),
        ("n1", "tip", 40_000, "NULL"),
        ("n2", "header", 300_000, "7"),
        ("n2", "cmpctblock", 310_000, "7"),
        ("n2", "tip", 420_000, "NULL"),
    ] {
        seen.push(format!(
            "('s{node}{stage}', '{node}', {t}, {s}, '{d}', 103, '{stage}', {peer}, 'log')",
            t = d + dt,
            s = (d + dt) / 1_000_000,
            d = h('d'),
        ));
    }
    s.sql(&format!(
        "INSERT INTO {{db}}.block_seen (event_id, node, observed_at_us, observed_at, hash, height, \
         stage, peer, source) VALUES {}",
        seen.join(", ")
    ));
    s.sql(&format!(
        "INSERT INTO {{db}}.block_timing (event_id, node, observed_at_us, observed_at, hash, \
         height, stage_name, stage_ms, connect_total_ms, header_to_tip_ms, compact_prefilled, \
         compact_from_mempool, compact_from_extra_pool, compact_requested) VALUES \
         ('tn2', 'n2', {t}, {s}, '{d}', 103, ['Connect block', 'Connect total'], [3.5, 17.25], \
         17.25, 120.0, 1, 2, 0, 1)",
        t = d + 420_000,
        s = (d + 420_000) / 1_000_000,
        d = h('d'),
    ));
    s.sql(&format!(
        "INSERT INTO {{db}}.invalid_block (event_id, node, observed_at_us, observed_at, hash, \
         height, reason, detail, peer, source) VALUES \
         ('i0', 'n0', {t}, {s}, '{x}', 104, 'bad-cb-amount', NULL, NULL, 'log'), \
         ('i1', 'n1', {t}, {s}, '{x}', 104, 'bad-cb-amount', NULL, 3, 'log')",
        t = d + 60_000_000,
        s = (d + 60_000_000) / 1_000_000,
        x = h('6'),
    ));
    let mut status = Vec::new();
    for (node, tip, height) in [("n0", 'd', 103), ("n1", 'd', 103), ("n2", 'c', 102)] {
        status.push(format!(
            "('ns{node}', '{node}', {t}, {s}, 300000, '/Satoshi:30.0.0/', 'regtest', {height}, \
             {height}, '{tip}', NULL, 0, 1.0, 1, 2, 3, 1000, 2000, 1000, 60, NULL, [])",
            t = d + 70_000_000,
            s = (d + 70_000_000) / 1_000_000,
            tip = h(tip),
        ));
    }
    s.sql(&format!(
        "INSERT INTO {{db}}.node_status (event_id, node, observed_at_us, observed_at, version, \
         subversion, chain, blocks, headers, best_block_hash, tip_time, initial_block_download, \
         verification_progress, peers_in, peers_out, mempool_count, mempool_bytes, \
         mempool_usage, mempool_min_fee_sat_per_kvb, uptime_secs, clock_offset_secs, warnings) \
         VALUES {}",
        status.join(", ")
    ));
    // Payment p: n0 first, n1 800 ms later; n2 rejects it from peer 5; on n0 q replaces it.
    let p = t0 + 20_000_000;
    s.sql(&format!(
        "INSERT INTO {{db}}.tx_seen (event_id, node, observed_at_us, observed_at, txid, wtxid, \
         mempool_sequence, vsize, fee_sat, source) VALUES \
         ('p0', 'n0', {p}, {ps}, '{t}', NULL, 5, 141, 2820, 'zmq'), \
         ('p1', 'n1', {p1}, {ps}, '{t}', NULL, 9, 141, NULL, 'zmq')",
        p1 = p + 800_000,
        ps = p / 1_000_000,
        t = h('7'),
    ));
    s.sql(&format!(
        "INSERT INTO {{db}}.tx_rejected (event_id, node, observed_at_us, observed_at, txid, \
         wtxid, peer, reason, reason_text) VALUES \
         ('pr', 'n2', {t}, {s}, '{x}', NULL, 5, 'min relay fee not met', '')",
        t = p + 900_000,
        s = p / 1_000_000,
        x = h('7'),
    ));
    s.sql(&format!(
        "INSERT INTO {{db}}.tx_removed (event_id, node, observed_at_us, observed_at, txid, \
         mempool_sequence, reason, source) VALUES \
         ('pq', 'n0', {t}, {s}, '{x}', 6, 'replaced', 'zmq')",
        t = p + 5_000_000,
        s = p / 1_000_000,
        x = h('7'),
    ));
    s.sql(&format!(
        "INSERT INTO {{db}}.tx_replaced (event_id, node, observed_at_us, observed_at, \
         replaced_txid, replaced_wtxid, new_txid, new_wtxid, replaced_fee_sat, new_fee_sat, \
         replaced_vsize, new_vsize) VALUES \
         ('rq', 'n0', {t}, {s}, '{x}', NULL, '{q}', NULL, 2820, 7050, 141, 141)",
        t = p + 5_000_000,
        s = p / 1_000_000,
        x = h('7'),
        q = h('8'),
    ));
    // A reorg alert still firing, and a stale-tip alert that fired then resolved.
    let a = t0 + 36_000_000;
    s.sql(&format!(
        "INSERT INTO {{db}}.alerts (event_id, node, observed_at_us, observed_at, alert_kind, \
         severity, state, alert_node, subject, summary, evidence_name, evidence_value, \
         fingerprint, starts_at_us, starts_at, ends_at_us, caused_by) VALUES \
         ('a1', 'det-chain', {a}, {s}, 'reorg', 'critical', 'firing', 'n0', '{d}', \
         'reorg of depth 2 after height 100', ['depth', 'old_tip'], ['2', '{f}'], 'reorg:x', \
         {a}, {s}, NULL, 'r'), \
         ('a2', 'det-health', {a}, {s}, 'stale_tip', 'warning', 'firing', 'n2', NULL, \
         'n2 tip is stale', [], [], 'stale_tip:n2', {a}, {s}, NULL, 'x'), \
         ('a3', 'det-health', {a2}, {s}, 'stale_tip', 'warning', 'resolved', 'n2', NULL, \
         'n2 tip is stale', [], [], 'stale_tip:n2', {a}, {s}, {a2}, 'y')",
        s = a / 1_000_000,
        a2 = a + 5_000_000,
        d = h('d'),
        f = h('f'),
    ));
    let mut logs = Vec::new();
    for (k, (node, category, message)) in [
        ("n0", "net", "received: block (1200 bytes) peer=3"),
        ("n1", "validation", "UpdateTip: new best=dddd height=103"),
        ("n2", "mempool", "it's a quote ' and a backslash \\\\ here"),
    ]
    .iter()
    .enumerate()
    {
        let t = t0 + 40_000_000 + k as i64 * 1_000_000;
        logs.push(format!(
            "('l{k}', '{node}', {t}, {s}, 'file-{node}', {off}, {t}, {s}, 'msghand', \
             '{category}', 'debug', '', '', '{m}')",
            s = t / 1_000_000,
            off = 100 * k,
            m = message.replace('\'', "\\'"),
        ));
    }
    s.sql(&format!(
        "INSERT INTO {{db}}.logs (event_id, node, observed_at_us, observed_at, file_id, offset, \
         time_us, time, thread, category, level, location, function, message) VALUES {}",
        logs.join(", ")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_tx_alerts_logs_and_tips_tell_the_fleet_story() {
    let s = Services::start(None).await;
    let t0 = now_us() - 600_000_000;
    fill(&s, t0);

    // The block by hash: n1 first, n2's lags, its compact block from peer 7, validation.
    let text = stdout(&bmon(&s, &["block", &h('d')]));
    assert!(
        text.contains(&format!("block {} at height 103", h('d'))),
        "{text}"
    );
    assert!(
        text.contains("first seen") && text.contains("by n1"),
        "{text}"
    );
    let n2 = text
        .lines()
        .find(|l| l.starts_with("n2"))
        .unwrap_or_else(|| panic!("n2 line: {text}"));
    assert!(
        n2.contains("+300 ms") && n2.contains("+310 ms") && n2.contains("+420 ms"),
        "{text}"
    );
    assert!(
        n2.contains("17.2") && n2.contains(" 7 ") && n2.contains("1/2/0/1"),
        "{text}"
    );
    // By height: both blocks at 101 (the active one and the stale one).
    let text = stdout(&bmon(&s, &["block", "101"]));
    assert!(
        text.contains(&format!("block {}", h('e'))) && text.contains(&format!("block {}", h('b'))),
        "{text}"
    );
    assert!(text.contains("disconnected"), "n0 disconnected e: {text}");
    let json = stdout(&bmon(&s, &["block", &h('6'), "--json"]));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["height"], 104);
    assert_eq!(v["invalid"].as_array().map(Vec::len), Some(2), "{json}");
    assert_eq!(v["invalid"][0]["reason"], "bad-cb-amount");
    let missing = bmon(&s, &["block", &h('0')]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no record of block"),
        "{missing:?}"
    );

    // The transaction: seen, rejected with reason and peer, replaced.
    let text = stdout(&bmon(&s, &["tx", &h('7')]));
    assert!(text.contains("fee 2820 sat, 141 vB"), "{text}");
    let line = |n: &str| {
        text.lines()
            .find(|l| l.starts_with(n))
            .unwrap_or_else(|| panic!("{n}: {text}"))
            .to_string()
    };
    assert!(line("n0").contains("replaced"), "{text}");
    assert!(line("n1").contains("+800 ms"), "{text}");
    assert!(
        line("n2").contains("min relay fee not met") && line("n2").contains(" 5"),
        "{text}"
    );
    assert!(text.contains(&format!("replaced by {}", h('8'))), "{text}");
    assert!(!bmon(&s, &["tx", "nothex"]).status.success());

    // Alerts: both incidents; --firing only the reorg; --json carries the evidence.
    let text = stdout(&bmon(&s, &["alerts"]));
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("firing    critical  reorg"), "{text}");
    assert!(text.contains("resolved  warning   stale_tip"), "{text}");
    let text = stdout(&bmon(&s, &["alerts", "--firing"]));
    assert_eq!(text.lines().count(), 2, "{text}");
    let json = stdout(&bmon(&s, &["alerts", "--kind", "reorg", "--json"]));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["evidence"]["depth"], "2");
    assert_eq!(v["evidence"]["old_tip"], h('f'));

    // Tips: the active chain with n2 behind, the stale branch under a, the invalid block.
    let text = stdout(&bmon(&s, &["tips"]));
    let at = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {text}"))
    };
    assert!(
        text.lines()
            .nth(at(&h('6')))
            .unwrap()
            .contains("INVALID: bad-cb-amount"),
        "{text}"
    );
    assert_eq!(
        at(&h('f')),
        at(&h('a')) + 1,
        "the branch under its fork point: {text}"
    );
    assert!(
        text.contains("stale branch of 2, held by n0; reorged out on n0 (depth 2)"),
        "{text}"
    );
    assert!(
        text.contains("n2 at 102") && text.contains("behind 1"),
        "{text}"
    );
    let json = stdout(&bmon(&s, &["tips", "--json"]));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["active"][0]["hash"], h('d'));
    assert_eq!(v["branches"][0]["reorg_depth"], 2);

    // Logs: search by text (a quote in it is a bound value, not SQL), by node and category.
    let text = stdout(&bmon(&s, &["logs", "--since", "1h", "--grep", "UPDATETIP"]));
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("n1 [validation:debug] UpdateTip"), "{text}");
    let text = stdout(&bmon(
        &s,
        &["logs", "--since", "1h", "--grep", "quote ' and"],
    ));
    assert!(text.contains("a backslash \\ here"), "{text}");
    let text = stdout(&bmon(
        &s,
        &["logs", "--since", "1h", "--node", "n0", "--category", "net"],
    ));
    assert_eq!(text.lines().count(), 1, "{text}");
    let out = bmon(&s, &["logs", "--since", "1h", "--grep", "') OR 1=1 --"]);
    assert_eq!(stdout(&out).lines().count(), 0);

    // --follow: the history, then a batch published while it runs.
    let mut child = Command::new(BIN)
        .args(["--nats-url", &s.nats.url()])
        .args(["--clickhouse-url", &s.ch.url()])
        .args(["--clickhouse-database", &s.db])
        .args(["logs", "--since", "1h", "--node", "n1", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both pipes are read on threads, so a silent child fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel::<(bool, String)>();
    for (is_out, pipe) in [
        (
            false,
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
        ),
        (true, Box::new(child.stdout.take().unwrap())),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send((is_out, l)).is_err() {
                    break;
                }
            }
        });
    }
    let mut seen = Vec::new();
    let mut wait_for = |pred: &dyn Fn(bool, &str) -> bool, what: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok((is_out, l)) => {
                    let hit = pred(is_out, &l);
                    seen.push((is_out, l));
                    if hit {
                        return;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("bmon logs --follow: no {what} within 20 s; it printed {seen:?}");
                }
            }
        }
    };
    // "following new lines" on stderr means the subscription is in place.
    wait_for(
        &|is_out, l| !is_out && l.contains("following"),
        "`following`",
    );
    let batch = LogBatch {
        file_id: "file-n1".into(),
        start_offset: 5000,
        lines: vec![LogLine {
            time: UnixMicros(now_us()),
            offset: 5000,
            thread: None,
            category: Some("net".into()),
            level: None,
            location: None,
            function: None,
            message: "a new line while following".into(),
        }],
    };
    let env = Envelope::new(NodeId::new("n1").unwrap(), UnixMicros(now_us()), batch);
    common::publish(&s.js, &[env], true).await;
    wait_for(
        &|is_out, l| is_out && l.contains("a new line while following"),
        "live line",
    );
    let _ = child.kill();
    let _ = child.wait();
    let lines: Vec<&String> = seen
        .iter()
        .filter(|(is_out, _)| *is_out)
        .map(|(_, l)| l)
        .collect();
    assert_eq!(lines.len(), 2, "history then the live line: {lines:?}");
    assert!(lines[0].contains("UpdateTip"), "{lines:?}");
    assert!(
        lines[1].contains("n1 [net] a new line while following"),
        "{lines:?}"
    );
}
