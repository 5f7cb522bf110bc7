//! How long each bmon-web page takes on a database of about a million events: a fleet of 10
//! nodes, two weeks of blocks (2,000 heights, stale blocks and reorgs among them), a day of
//! statuses, transactions, log lines, mempool comparisons and alerts — written with
//! `INSERT ... SELECT` from `numbers()` into a fresh database with bmon's migrations.
//!
//! Run with `cargo bench -p bmon-web --bench pages` (a real ClickHouse: `BMON_TEST_CLICKHOUSE_URL`
//! or a private clickhouse-server, as the tests find it). Each page is requested over HTTP
//! from bmon-web in-process, once to warm up and then `BMON_BENCH_ROUNDS` times (default 10);
//! one line per page: p50 and max, the target, PASS or MISS. `BMON_BENCH_KEEP=1` keeps the
//! database afterwards (to try queries on it).
//!
//! Target: 200 ms per page. Where it comes from: an operator clicking from the fork tree to a
//! block to a transaction to a log line expects each page at once; 200 ms keeps a click
//! feeling immediate, and the fleet page reloading every 5 s stays far below 5 % of a core.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::Site;

/// The most a page may take, ms (p50; max is printed beside it).
const TARGET_MS: f64 = 200.0;

const NODES: u64 = 10;
const BLOCKS: u64 = 2_000;
const H0: u64 = 800_000;
const TXS: u64 = 40_000;
const LOG_LINES: u64 = 200_000;
const S: i64 = 1_000_000;

/// The statements that fill the database, `{now}` (µs) and friends substituted.
fn fill(now: i64) -> Vec<(&'static str, String)> {
    let top = H0 + BLOCKS - 1;
    let node = "concat('n', toString(number % 10))";
    let a = |h: &str| format!("lower(hex(SHA256(concat('a', toString({h})))))");
    let block_time = |h: &str| format!("({now} - toInt64({top} - {h}) * 600000000)");
    let secs = |us: &str| format!("toDateTime(intDiv({us}, 1000000))");
    let id = |tag: &str| format!("lower(hex(SHA256(concat('{tag}', toString(number)))))");
    let txid = |i: &str| format!("lower(hex(SHA256(concat('t', toString({i})))))");
    vec![
        (
            "block_connected",
            format!(
                "INSERT INTO block_connected SELECT {}, {node}, t, {}, {}, toUInt32(h), {}, \
                 toUInt32(intDiv(t, 1000000) - 30), 1500000, 3990000, 3000, 321500000, 312500000, \
                 9000000, 'Foundry USA', 0, 'zmq' FROM (SELECT number, {H0} + intDiv(number, {NODES}) AS h, \
                 {} + (number % 10) * 37000 AS t FROM numbers({}))",
                id("bc"),
                secs("t"),
                a("h"),
                a("h - 1"),
                block_time("h"),
                BLOCKS * NODES
            ),
        ),
        (
            "block_connected (stale)",
            format!(
                "INSERT INTO block_connected SELECT {}, 'n3', t, {}, lower(hex(SHA256(concat('s', toString(h))))), \
                 toUInt32(h), {}, toUInt32(intDiv(t, 1000000)), 1000, 4000, 1, 312500000, 312500000, 0, \
                 'n3-solo', 0, 'zmq' FROM (SELECT number, {H0} + number * 100 + 50 AS h, {} - 5000000 AS t \
                 FROM numbers({}))",
                id("sc"),
                secs("t"),
                a("h - 1"),
                block_time("h"),
                BLOCKS / 100
            ),
        ),
        (
            "block_disconnected",
            format!(
                "INSERT INTO block_disconnected SELECT {}, 'n3', t, {}, lower(hex(SHA256(concat('s', toString(h))))), \
                 toUInt32(h), 0, 'zmq' FROM (SELECT number, {H0} + number * 100 + 50 AS h, {} + 700000000 AS t \
                 FROM numbers({}))",
                id("sd"),
                secs("t"),
                block_time("h"),
                BLOCKS / 100
            ),
        ),
        (
            "reorg",
            format!(
                "INSERT INTO reorg SELECT {}, 'n3', t, {}, lower(hex(SHA256(concat('s', toString(h))))), toUInt32(h), \
                 {}, toUInt32(h + 1), {}, toUInt32(h - 1), 1, [lower(hex(SHA256(concat('s', toString(h)))))], \
                 [{}, {}], 'zmq' FROM (SELECT number, {H0} + number * 100 + 50 AS h, {} + 700000000 AS t \
                 FROM numbers({}))",
                id("ro"),
                secs("t"),
                a("h + 1"),
                a("h - 1"),
                a("h"),
                a("h + 1"),
                block_time("h"),
                BLOCKS / 100
            ),
        ),
        (
            "block_seen",
            format!(
                "INSERT INTO block_seen SELECT {}, concat('n', toString(n)), t, {}, {}, toUInt32(h), \
                 ['header', 'cmpctblock', 'tip'][s + 1], if(s = 2, NULL, toUInt64(n * 3 + s)), 'log' \
                 FROM (SELECT number, intDiv(number, 3) % 10 AS n, number % 3 AS s, \
                 {H0} + intDiv(number, 30) AS h, {} + n * 37000 + s * 5000 AS t FROM numbers({}))",
                id("bs"),
                secs("t"),
                a("h"),
                block_time("h"),
                BLOCKS * NODES * 3
            ),
        ),
        (
            "block_timing",
            format!(
                "INSERT INTO block_timing SELECT {}, {node}, t, {}, {}, toUInt32(h), \
                 ['Connect block', 'Verify txins', 'Flush'], [c * 0.8, c * 0.15, c * 0.05], c, c + 40, \
                 toUInt32(1), toUInt32(2900), toUInt32(3), toUInt32(number % 7) \
                 FROM (SELECT number, {H0} + intDiv(number, 10) AS h, {} + (number % 10) * 37000 + 20000 AS t, \
                 50 + (number % 10) * 12 + (h % 13) AS c FROM numbers({}))",
                id("bt"),
                secs("t"),
                a("h"),
                block_time("h"),
                BLOCKS * NODES
            ),
        ),
        (
            "block_validation",
            format!(
                "INSERT INTO block_validation SELECT {}, 'det-compare', t, {}, {node}, \
                 concat('/Satoshi:', toString(21 + number % 10), '.0.0/'), {}, toUInt32(h), c, \
                 ['Connect block', 'Verify txins'], [c * 0.8, c * 0.15] \
                 FROM (SELECT number, {H0} + intDiv(number, 10) AS h, {} + (number % 10) * 37000 + 20000 AS t, \
                 toFloat64(50 + (number % 10) * 12 + (h % 13)) AS c FROM numbers({}))",
                id("bv"),
                secs("t"),
                a("h"),
                block_time("h"),
                BLOCKS * NODES
            ),
        ),
        (
            "invalid_block",
            format!(
                "INSERT INTO invalid_block SELECT {}, 'n1', t, {}, lower(hex(SHA256(concat('x', toString(h))))), \
                 toUInt32(h), 'bad-cb-amount', 'coinbase pays too much', toUInt64(3), 'log' \
                 FROM (SELECT number, {H0} + number * 100 + 70 AS h, {} AS t FROM numbers({}))",
                id("ib"),
                secs("t"),
                block_time("h"),
                BLOCKS / 100
            ),
        ),
        (
            "chain_tips",
            format!(
                "INSERT INTO chain_tips SELECT {}, {node}, t, {}, [toUInt32(h), toUInt32(h - 3), toUInt32(h - 9)], \
                 [{}, lower(hex(SHA256(concat('s', toString(h - 3))))), lower(hex(SHA256(concat('x', toString(h - 9)))))], \
                 [toUInt32(0), toUInt32(1), toUInt32(1)], ['active', 'valid-fork', 'invalid'] \
                 FROM (SELECT number, {top} - intDiv(number, 10) AS h, {} + (number % 10) * 40000 AS t \
                 FROM numbers({}))",
                id("ct"),
                secs("t"),
                a("h"),
                block_time("h"),
                200 * NODES
            ),
        ),
        (
            "node_status",
            format!(
                "INSERT INTO node_status (event_id, node, observed_at_us, observed_at, version, subversion, \
                 chain, blocks, headers, best_block_hash, tip_time, initial_block_download, \
                 verification_progress, peers_in, peers_out, mempool_count, mempool_bytes, mempool_usage, \
                 mempool_min_fee_sat_per_kvb, uptime_secs, clock_offset_secs, warnings) \
                 SELECT {}, {node}, t, {}, toUInt32(210000 + (number % 10) * 10000), \
                 concat('/Satoshi:', toString(21 + number % 10), '.0.0/'), 'main', toUInt32({top}), \
                 toUInt32({top}), {}, intDiv(t, 1000000) - 300, 0, 1.0, toUInt32(10), toUInt32(8), \
                 toUInt64(50000 + number % 1000), toUInt64(30000000), toUInt64(90000000), toUInt64(1000), \
                 toUInt64(86400), 0, [] FROM (SELECT number, {now} - toInt64(intDiv(number, 10)) * 10000000 - \
                 (number % 10) * 100000 AS t FROM numbers({}))",
                id("ns"),
                secs("t"),
                a(&top.to_string()),
                8640 * NODES
            ),
        ),
        (
            "tx_seen",
            format!(
                "INSERT INTO tx_seen SELECT {}, {node}, t, {}, {}, NULL, toUInt64(number), toUInt64(141 + i % 300), \
                 toUInt64(300 + i % 5000), 'zmq' FROM (SELECT number, intDiv(number, 10) AS i, \
                 {now} - toInt64({TXS} - i) * 2000000 + (number % 10) * 50000 AS t FROM numbers({}))",
                id("ts"),
                secs("t"),
                txid("i"),
                TXS * NODES
            ),
        ),
        (
            "tx_removed",
            format!(
                "INSERT INTO tx_removed SELECT {}, {node}, t, {}, {}, toUInt64(number), 'block', 'zmq' \
                 FROM (SELECT number, intDiv(number, 10) AS i, \
                 {now} - toInt64({TXS} - i) * 2000000 + 600000000 AS t FROM numbers({}))",
                id("tr"),
                secs("t"),
                txid("i"),
                TXS / 2 * NODES
            ),
        ),
        (
            "tx_rejected",
            format!(
                "INSERT INTO tx_rejected SELECT {}, 'n7', t, {}, {}, NULL, toUInt64(4), 'mempool min fee not met', \
                 'mempool min fee not met, 282 < 500' FROM (SELECT number, number * 4 AS i, \
                 {now} - toInt64({TXS} - i) * 2000000 + 90000 AS t FROM numbers({}))",
                id("tj"),
                secs("t"),
                txid("i"),
                TXS / 4
            ),
        ),
        (
            "tx_replaced",
            format!(
                "INSERT INTO tx_replaced SELECT {}, {node}, t, {}, {}, NULL, \
                 lower(hex(SHA256(concat('r', toString(i))))), NULL, toUInt64(282), toUInt64(1410), \
                 toUInt64(141), toUInt64(141) FROM (SELECT number, number * 8 AS i, \
                 {now} - toInt64({TXS} - i) * 2000000 + 100000000 AS t FROM numbers({}))",
                id("tp"),
                secs("t"),
                txid("i"),
                TXS / 8
            ),
        ),
        (
            "logs",
            format!(
                "INSERT INTO logs SELECT {}, {node}, t, {}, 'file-1', number * 120, t, {}, 'msghand', \
                 ['net', 'validation', 'mempool', 'bench'][number % 4 + 1], \
                 ['debug', 'info', 'info', 'warning'][number % 4 + 1], '', '', \
                 concat(['received: inv (37 bytes) peer=', 'UpdateTip: new best=', 'AcceptToMemoryPool: peer=', \
                 '  - Connect block: '][number % 4 + 1], toString(number), ' height=', toString({top} - number % 500)) \
                 FROM (SELECT number, {now} - toInt64({LOG_LINES} - number) * 400000 AS t FROM numbers({}))",
                id("lg"),
                secs("t"),
                secs("t"),
                LOG_LINES
            ),
        ),
        (
            "mempool_snapshot",
            format!(
                "INSERT INTO mempool_snapshot (event_id, node, observed_at_us, observed_at, count, vsize, \
                 total_fee_sat, min_fee_sat_per_kvb, txid_digest, mempool_sequence, mirror_count, \
                 mirror_digest, mirror_sequence) SELECT {}, {node}, t, {}, toUInt64(50000), toUInt64(30000000), \
                 toUInt64(90000000), toUInt64(1000), d, toUInt64(number), toUInt64(50000), d, toUInt64(number) \
                 FROM (SELECT number, {now} - toInt64(intDiv(number, 10)) * 30000000 AS t, \
                 lower(hex(SHA256(toString(intDiv(number, 10))))) AS d FROM numbers({}))",
                id("ms"),
                secs("t"),
                2880 * NODES
            ),
        ),
        (
            "mempool_divergence",
            format!(
                "INSERT INTO mempool_divergence SELECT {}, 'det-compare', t, {}, {node}, toUInt32(10), \
                 toUInt64(50000), toUInt64(49990), toUInt64(20), toUInt64(10), toUInt64(number % 3), toUInt64(2), \
                 ['rejected', 'min_fee', 'unexplained'], [toUInt64(5), toUInt64(5), toUInt64(number % 3)], \
                 arrayMap(k -> lower(hex(SHA256(concat('t', toString(k))))), range(10)), \
                 arrayMap(k -> if(k < 5, 'rejected', 'min_fee'), range(10)), \
                 arrayMap(k -> if(k < 5, 'mempool min fee not met', ''), range(10)), \
                 [lower(hex(SHA256('only')))] FROM (SELECT number, {now} - toInt64(intDiv(number, 10)) * 30000000 AS t \
                 FROM numbers({}))",
                id("md"),
                secs("t"),
                2880 * NODES
            ),
        ),
        (
            "template_comparison",
            format!(
                "INSERT INTO template_comparison SELECT {}, 'det-compare', t, {}, {node}, {}, toUInt32({top} + 1), \
                 toUInt32(10), 0.97, toUInt64(9000000), toUInt64(9100000), toUInt64(3990000), toUInt64(3990000), \
                 toUInt64(12), toUInt64(40000), arrayMap(k -> lower(hex(SHA256(concat('t', toString(k))))), range(10)), \
                 arrayMap(k -> toUInt64(10000 - k), range(10)), arrayMap(k -> 'not_selected', range(10)) \
                 FROM (SELECT number, {now} - toInt64(intDiv(number, 10)) * 30000000 AS t FROM numbers({}))",
                id("tc"),
                secs("t"),
                a(&top.to_string()),
                2880 * NODES
            ),
        ),
        (
            "peer_snapshot",
            format!(
                "INSERT INTO peer_snapshot SELECT {}, {node}, t, {}, toUInt32(10), \
                 arrayMap(k -> toUInt64(k), range(10)), arrayMap(k -> concat('203.0.113.', toString(k), ':8333'), range(10)), \
                 arrayMap(k -> 'ipv4', range(10)), arrayMap(k -> 'outbound-full-relay', range(10)), \
                 arrayMap(k -> toUInt8(0), range(10)), arrayMap(k -> toUInt32(70016), range(10)), \
                 arrayMap(k -> '/Satoshi:27.0.0/', range(10)), arrayMap(k -> 20.5 + k, range(10)), \
                 arrayMap(k -> toUInt64(100000), range(10)), arrayMap(k -> toUInt64(9000000), range(10)), \
                 arrayMap(k -> intDiv(t, 1000000) - 3600, range(10)), [toUInt64(9)], [toUInt64(4)] \
                 FROM (SELECT number, {now} - toInt64(intDiv(number, 10)) * 300000000 AS t FROM numbers({}))",
                id("ps"),
                secs("t"),
                288 * NODES
            ),
        ),
        (
            "alerts",
            format!(
                "INSERT INTO alerts SELECT {}, 'det-health', t, {}, 'tx_rejections', 'warning', \
                 if(number % 4 = 1, 'resolved', 'firing'), {node}, NULL, 'n7 rejects transactions', \
                 ['reason', 'example_txid'], ['mempool min fee not met', {}], concat('fp-', toString(intDiv(number, 2))), \
                 s, {}, if(number % 4 = 1, t, NULL), 'caused' FROM (SELECT number, \
                 {now} - toInt64(5000 - number) * 15000000 AS t, {now} - toInt64(5000 - intDiv(number, 2) * 2) * 15000000 AS s \
                 FROM numbers({}))",
                id("al"),
                secs("t"),
                txid("number * 4"),
                secs("s"),
                5_000
            ),
        ),
        (
            "propagation",
            format!(
                "INSERT INTO propagation SELECT {}, 'det-propagation', t + 30000000, {}, 'block', {}, toUInt32(h), \
                 t, {}, 'n0', t + 120000, 333000, toUInt32(10), \
                 arrayMap(k -> concat('n', toString(k)), range(10)), arrayMap(k -> t + k * 37000, range(10)), \
                 arrayMap(k -> k * 37000 - 166000, range(10)), arrayMap(k -> 'header', range(10)), [] \
                 FROM (SELECT number, {H0} + number AS h, {} AS t FROM numbers({}))",
                id("pb"),
                secs("t + 30000000"),
                a("h"),
                secs("t"),
                block_time("h"),
                BLOCKS
            ),
        ),
        (
            "propagation (tx)",
            format!(
                "INSERT INTO propagation SELECT {}, 'det-propagation', t + 30000000, {}, 'tx', {}, NULL, \
                 t, {}, 'n0', t + 120000, 450000, toUInt32(10), \
                 arrayMap(k -> concat('n', toString(k)), range(10)), arrayMap(k -> t + k * 50000, range(10)), \
                 arrayMap(k -> k * 50000 - 225000, range(10)), arrayMap(k -> 'seen', range(10)), [] \
                 FROM (SELECT number, {now} - toInt64({TXS} - number) * 2000000 AS t FROM numbers({}))",
                id("pt"),
                secs("t + 30000000"),
                txid("number"),
                secs("t"),
                TXS
            ),
        ),
    ]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(site) = Site::start().await else {
        return;
    };
    let now = web::time::now_us();
    let started = Instant::now();
    let mut rows = 0u64;
    for (table, sql) in fill(now) {
        let t = Instant::now();
        site.sql(&sql);
        println!("  fill {table:<24} {:>8.0} ms", ms(t.elapsed()));
    }
    for table in [
        "node_status",
        "block_seen",
        "block_connected",
        "block_disconnected",
        "reorg",
        "chain_tips",
        "block_timing",
        "invalid_block",
        "tx_seen",
        "tx_removed",
        "tx_rejected",
        "tx_replaced",
        "mempool_snapshot",
        "logs",
        "alerts",
        "peer_snapshot",
        "mempool_divergence",
        "block_validation",
        "template_comparison",
        "propagation",
    ] {
        rows += site
            .sql(&format!("SELECT count() FROM {table}"))
            .trim()
            .parse::<u64>()
            .unwrap_or(0);
    }
    println!(
        "filled {} ({rows} rows over 20 tables) in {:.1} s",
        site.db,
        started.elapsed().as_secs_f64()
    );

    let top = H0 + BLOCKS - 1;
    let sha = |tag: &str, n: u64| {
        site.sql(&format!(
            "SELECT lower(hex(SHA256(concat('{tag}', toString({n})))))"
        ))
        .trim()
        .to_string()
    };
    let block = sha("a", top - 5);
    let stale = sha("s", H0 + 1950);
    let tx = sha("t", TXS / 2 + 8);
    let hour_ago = now - 3600 * S;
    let day = format!(
        "from={}&to={}",
        web::time::fmt_input(now - 86_400 * S),
        web::time::fmt_input(now)
    );
    let pages: Vec<(&str, String)> = vec![
        ("fleet", "/".into()),
        ("fork tree (30)", "/tips".into()),
        ("fork tree (200)", "/tips?n=200".into()),
        ("block by hash", format!("/block/{block}")),
        ("block by height", format!("/block/{}", top - 5)),
        ("stale block", format!("/block/{stale}")),
        ("tx", format!("/tx/{tx}")),
        ("alerts", "/alerts".into()),
        ("alerts, one node", "/alerts?node=n3&state=firing".into()),
        ("logs, last hour", "/logs".into()),
        (
            "logs, day, text",
            format!("/logs?q=height%3D{}&{day}", top - 7),
        ),
        (
            "logs, day, node+level",
            format!("/logs?node=n3&level=warning&{day}"),
        ),
        ("events ±30 s", format!("/events?node=n3&at={hour_ago}")),
        (
            "events ±300 s",
            format!("/events?node=n3&at={hour_ago}&s=300"),
        ),
        ("mempools", "/mempools".into()),
        ("validation", "/validation".into()),
        ("peers", "/peers".into()),
        ("search", format!("/search?q={tx}")),
    ];
    let rounds: usize = std::env::var("BMON_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    println!(
        "{:<24} {:>9} {:>9}   {:>9}",
        "page", "p50 ms", "max ms", "target ms"
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "(load average before: {}; other work on the machine shows in max and p50)",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut missed = 0;
    for (name, path) in &pages {
        let (status, body) = site.get(path).await;
        assert!(
            status == 200 || status == 303,
            "{name} {path}: {status}\n{body}"
        );
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            let (status, _) = site.get(path).await;
            times.push(ms(t.elapsed()));
            assert!(status == 200 || status == 303, "{name}: {status}");
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let p50 = times[times.len() / 2];
        let max = times[times.len() - 1];
        let verdict = if p50 <= TARGET_MS { "PASS" } else { "MISS" };
        if p50 > TARGET_MS {
            missed += 1;
        }
        println!("{name:<24} {p50:>9.1} {max:>9.1}   {TARGET_MS:>9.0}   {verdict}");
    }
    println!(
        "{} of {} pages within {TARGET_MS:.0} ms (p50)",
        pages.len() - missed,
        pages.len()
    );
    if std::env::var_os("BMON_BENCH_KEEP").is_some() {
        println!("kept database {} (BMON_BENCH_KEEP)", site.db);
    } else {
        site.sql(&format!("DROP DATABASE {}", site.db));
    }
    site.stop().await;
}
