//! `bmon status`: the fleet at a glance, from the latest `node_status` of each node in
//! ClickHouse (read with FINAL, like every query bmon ships).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::services::Services;
use crate::table::{self, header};

/// Options of `bmon status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object per node instead of a table.
    #[arg(long)]
    json: bool,
}

/// The query behind `bmon status`: the latest status of every node. ClickHouse 18.16 and
/// current releases both run it.
pub const STATUS_SQL: &str = include_str!("status.sql");

/// One node's latest status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct NodeLine {
    node: String,
    subversion: String,
    version: u32,
    height: u32,
    tip_time: Option<i64>,
    mempool_count: u64,
    peers_in: u32,
    peers_out: u32,
    initial_block_download: u8,
    last_heard_us: i64,
}

/// Runs `bmon status`.
pub async fn run(services: &Services, args: Args) -> anyhow::Result<()> {
    let lines: Vec<NodeLine> = services
        .clickhouse()
        .query(STATUS_SQL)
        .fetch_all()
        .await
        .context(
        "cannot read node_status (--clickhouse-url, BMON_CLICKHOUSE_URL; has `bmon setup` run?)",
    )?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if args.json {
        for l in &lines {
            println!("{}", serde_json::to_string(l)?);
        }
        return Ok(());
    }
    print!("{}", render(&lines, now));
    Ok(())
}

/// The table for `lines`, ages computed at `now` (seconds since the epoch).
fn render(lines: &[NodeLine], now: i64) -> String {
    let mut rows = vec![header(&[
        "NODE",
        "VERSION",
        "HEIGHT",
        "TIP AGE",
        "MEMPOOL",
        "PEERS IN/OUT",
        "LAST HEARD",
    ])];
    for l in lines {
        let version = l.subversion.trim_matches('/').to_string();
        let height = if l.initial_block_download != 0 {
            format!("{} (IBD)", l.height)
        } else {
            l.height.to_string()
        };
        let tip_age = l
            .tip_time
            .map(|t| age(now - t))
            .unwrap_or_else(|| "-".into());
        let heard = format!("{} ago", age(now - l.last_heard_us.div_euclid(1_000_000)));
        rows.push(vec![
            l.node.clone(),
            version,
            height,
            tip_age,
            l.mempool_count.to_string(),
            format!("{}/{}", l.peers_in, l.peers_out),
            heard,
        ]);
    }
    let mut out = table::render(&rows);
    if lines.is_empty() {
        out.push_str(
            "(no node_status yet: are the agents and `bmon-consumer ch-writer` running?)\n",
        );
    }
    out
}

/// A duration in seconds as `45s`, `12m`, `3h05m`, `2d04h`.
fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_short_and_readable() {
        assert_eq!(age(-3), "0s");
        assert_eq!(age(45), "45s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(3600 + 5 * 60), "1h05m");
        assert_eq!(age(2 * 86_400 + 4 * 3600), "2d04h");
    }

    #[test]
    fn the_table_has_one_aligned_line_per_node() {
        let line = NodeLine {
            node: "node0".into(),
            subversion: "/Satoshi:30.0.0/".into(),
            version: 300000,
            height: 111,
            tip_time: Some(1000),
            mempool_count: 42,
            peers_in: 3,
            peers_out: 8,
            initial_block_download: 0,
            last_heard_us: 1_990_000_000,
        };
        let text = render(&[line], 2000);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("NODE   VERSION"), "{text}");
        assert!(lines[1].contains("Satoshi:30.0.0"), "{text}");
        assert!(lines[1].contains("16m"), "{text}");
        assert!(lines[1].contains("3/8"), "{text}");
        assert!(lines[1].ends_with("10s ago"), "{text}");
    }
}
