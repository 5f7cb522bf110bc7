//! A fleet at scale: simnet with 50 nodes at mainnet's transaction rate (7 tx/s seen by every
//! node, a block every 10 simulated minutes on a clock 60 times faster, every node writing a
//! debug.log), one `bmon-agent` process per node, NATS, `ch-writer` and ClickHouse, for
//! `BMON_FLEET_BENCH_SECS` (default 180). Then one agent alone at the same load for a minute.
//!
//! Prints, beside their targets: events/s into `BMON_EVENTS`; `ch-writer`'s lag (the age of the
//! oldest event it has not acknowledged, sampled every second; p50, p99, max; target p99 < 1 s);
//! per agent CPU (share of one core) and peak RSS (median and worst of the 50, and the lone
//! agent's; target < 1 % of a core and < 30 MB).
//!
//! Needs release binaries: `cargo build --release -p bmon-agent` (scripts/bench.sh builds them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bmon_e2e::{Options, Pipeline};
use simnet::{Fleet, Scenario, TruthSink};

const CPU_TARGET_PCT: f64 = 1.0;
const RSS_TARGET_MB: f64 = 30.0;
const LAG_TARGET_P99_S: f64 = 1.0;
const TIME_SCALE: f64 = 60.0;
/// Mainnet's rate, wall clock, per node.
const TX_PER_S: f64 = 7.0;

fn scenario(nodes: usize, duration_s: u64) -> String {
    let mut s = format!(
        "seed = 50\nduration_ms = {}\ntime_scale = {TIME_SCALE}\n\n[blocks]\ninterval_ms = 600000\n\
         distribution = \"exponential\"\nmax_txs = 4000\n\n[txs]\nrate_per_s = {}\n\n",
        (duration_s as f64 * TIME_SCALE * 1000.0) as u64,
        TX_PER_S / TIME_SCALE
    );
    for i in 0..nodes {
        s.push_str(&format!("[[nodes]]\nname = \"node{i}\"\n"));
        if i < 3 {
            s.push_str("mines = true\nhashrate = 0.33\n");
        }
        s.push('\n');
    }
    // A ring, plus a chord to the first node: every node has two or three peers.
    for i in 0..nodes {
        let j = (i + 1) % nodes;
        s.push_str(&format!(
            "[[links]]\na = \"node{i}\"\nb = \"node{j}\"\ndelay_ms = {}\n\n",
            600 + (i % 7) * 100
        ));
        if i % 5 == 0 && i != 0 {
            s.push_str(&format!(
                "[[links]]\na = \"node{i}\"\nb = \"node0\"\ndelay_ms = 800\n\n"
            ));
        }
    }
    s
}

fn agent_config(dir: &Path, n: &simnet::NodeEndpoints, nats: &str) -> PathBuf {
    let path = dir.join(format!("agent-{}.toml", n.name));
    let debug_log = n
        .debug_log
        .as_ref()
        .map(|p| format!("[debug_log]\npath = \"{}\"\nbackfill = true\n", p.display()))
        .unwrap_or_default();
    let clock = n
        .clock
        .as_ref()
        .map(|c| {
            format!(
                "[clock]\norigin_us = {}\nscale = {}\n",
                c.start_us, c.time_scale
            )
        })
        .unwrap_or_default();
    std::fs::write(
        &path,
        format!(
            "node = \"{name}\"\nnetwork = \"regtest\"\n[rpc]\nurl = \"{rpc}\"\nuser = \"{u}\"\n\
             password = \"{p}\"\n[zmq]\nsequence = \"{seq}\"\nrawblock = \"{rb}\"\nrawtx = \"{rt}\"\n\
             [nats]\nurl = \"{nats}\"\n[spool]\ndir = \"{spool}\"\n[metrics]\n\
             listen = \"127.0.0.1:0\"\n{debug_log}{clock}",
            name = n.name,
            rpc = n.rpc_url,
            u = n.rpc_user,
            p = n.rpc_password,
            seq = n.zmq.sequence,
            rb = n.zmq.rawblock,
            rt = n.zmq.rawtx,
            spool = dir.join(format!("spool-{}", n.name)).display(),
        ),
    )
    .expect("write agent config");
    path
}

/// CPU seconds (user + system) and RSS in MB of a process, from /proc.
fn usage(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    // USER_HZ is 100 on Linux.
    Some((ticks / 100.0, rss_kb / 1024.0))
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

/// The age of the oldest event ch-writer has not acknowledged, seconds (0 when caught up).
/// The last sequence number in `BMON_EVENTS`.
async fn events_last_sequence(js: &async_nats::jetstream::Context) -> u64 {
    js.get_stream("BMON_EVENTS")
        .await
        .expect("BMON_EVENTS")
        .info()
        .await
        .expect("BMON_EVENTS info")
        .state
        .last_sequence
}

async fn writer_lag(js: &async_nats::jetstream::Context) -> Option<f64> {
    let mut stream = js.get_stream("BMON_EVENTS").await.ok()?;
    let last = stream.info().await.ok()?.state.last_sequence;
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer("ch-writer").await.ok()?;
    let info = consumer.info().await.ok()?;
    let floor = info.ack_floor.stream_sequence;
    if floor >= last {
        return Some(0.0);
    }
    let msg = stream.get_raw_message(floor + 1).await.ok()?;
    let age = time::OffsetDateTime::now_utc() - msg.time;
    Some(age.as_seconds_f64().max(0.0))
}

struct Agents {
    children: Vec<Child>,
}

impl Drop for Agents {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn run(nodes: usize, secs: u64, agent_bin: &Path, label: &str) {
    let p = Pipeline::start_services(Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::from_toml(&scenario(nodes, secs + 30)).expect("scenario");
    let options = simnet::fleet::FleetOptions {
        debug_log_dir: Some(dir.path().join("nodes")),
    };
    let fleet = Fleet::start_with(scenario, TruthSink::memory(), options)
        .await
        .expect("simnet fleet");
    let mut agents = Agents {
        children: Vec::new(),
    };
    for n in fleet.nodes() {
        let cfg = agent_config(dir.path(), n, &p.nats_url());
        let child = Command::new(agent_bin)
            .arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn bmon-agent");
        agents.children.push(child);
    }
    let client = async_nats::connect(p.nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    // Warm-up: agents connect and backfill their logs.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let pids: Vec<u32> = agents.children.iter().map(Child::id).collect();
    let cpu0: Vec<f64> = pids
        .iter()
        .map(|p| usage(*p).map_or(0.0, |u| u.0))
        .collect();
    let seq0 = events_last_sequence(&js).await;
    let started = Instant::now();
    let mut lags = Vec::new();
    let mut peak_rss = vec![0.0f64; pids.len()];
    while started.elapsed() < Duration::from_secs(secs) {
        if let Some(l) = writer_lag(&js).await {
            lags.push(l);
        }
        for (i, pid) in pids.iter().enumerate() {
            if let Some((_, rss)) = usage(*pid) {
                peak_rss[i] = peak_rss[i].max(rss);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let seq1 = events_last_sequence(&js).await;
    let mut cpu_pct: Vec<f64> = pids
        .iter()
        .zip(&cpu0)
        .map(|(p, c0)| usage(*p).map_or(0.0, |u| (u.0 - c0) / wall * 100.0))
        .collect();
    cpu_pct.sort_by(f64::total_cmp);
    peak_rss.sort_by(f64::total_cmp);
    lags.sort_by(f64::total_cmp);
    let events = (seq1 - seq0) as f64 / wall;
    println!("{label}: {nodes} node(s), {wall:.0} s measured");
    println!("  events/s into BMON_EVENTS        {events:>10.0}");
    let p99 = quantile(&lags, 0.99);
    println!(
        "  ch-writer lag p50/p99/max (s)    {:>5.2} / {:.2} / {:.2}   target p99 < {LAG_TARGET_P99_S} s  {}",
        quantile(&lags, 0.5),
        p99,
        lags.last().copied().unwrap_or(0.0),
        verdict(p99 < LAG_TARGET_P99_S)
    );
    let cpu_med = quantile(&cpu_pct, 0.5);
    let cpu_max = cpu_pct.last().copied().unwrap_or(0.0);
    println!(
        "  agent CPU, % of a core med/max   {cpu_med:>5.2} / {cpu_max:.2}   target < {CPU_TARGET_PCT} %  {}",
        verdict(cpu_max < CPU_TARGET_PCT)
    );
    let rss_med = quantile(&peak_rss, 0.5);
    let rss_max = peak_rss.last().copied().unwrap_or(0.0);
    println!(
        "  agent peak RSS MB med/max        {rss_med:>5.1} / {rss_max:.1}   target < {RSS_TARGET_MB} MB  {}",
        verdict(rss_max < RSS_TARGET_MB)
    );
    drop(agents);
    fleet.shutdown().await.ok();
    p.stop().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let agent_bin = test_support::workspace_root().join("target/release/bmon-agent");
    if !agent_bin.is_file() {
        eprintln!(
            "{} not found: run `cargo build --release -p bmon-agent` first (scripts/bench.sh does)",
            agent_bin.display()
        );
        std::process::exit(1);
    }
    let secs: u64 = std::env::var("BMON_FLEET_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let nodes: usize = std::env::var("BMON_FLEET_BENCH_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    run(nodes, secs, &agent_bin, "fleet").await;
    run(
        2,
        60.min(secs),
        &agent_bin,
        "one agent at mainnet load (and its relay peer)",
    )
    .await;
}
