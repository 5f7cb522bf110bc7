//! `bmon validation`: block validation time by Core version, each block credited to the
//! version its node ran when it connected it (`block_validation`, written by `det-compare`).

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::services::Services;
use crate::table::{header, render_with};

/// Options of `bmon validation`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Blocks connected in the last this many hours.
    #[arg(long, default_value_t = 24)]
    hours: u32,
    /// One JSON object per version instead of a table.
    #[arg(long)]
    json: bool,
}

/// Median and p90 `Connect total` per version over the window (ClickHouse 18.16 and current
/// releases both run it).
pub const VALIDATION_SQL: &str = "\
SELECT version, count() AS blocks, uniqExact(block_node) AS nodes, \
quantile(0.5)(connect_ms) AS median_ms, quantile(0.9)(connect_ms) AS p90_ms \
FROM block_validation FINAL \
WHERE observed_at >= now() - ? \
GROUP BY version ORDER BY median_ms DESC, version";

/// One version's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct VersionLine {
    version: String,
    blocks: u64,
    nodes: u64,
    median_ms: f64,
    p90_ms: f64,
}

/// Runs `bmon validation`.
pub async fn run(services: &Services, args: Args) -> anyhow::Result<()> {
    let lines: Vec<VersionLine> = services
        .clickhouse()
        .query(VALIDATION_SQL)
        .bind(u64::from(args.hours) * 3600)
        .fetch_all()
        .await
        .context(
            "cannot read block_validation (--clickhouse-url, BMON_CLICKHOUSE_URL; has `bmon \
             setup` run, and is `bmon-consumer det-compare` running?)",
        )?;
    if args.json {
        for l in &lines {
            println!("{}", serde_json::to_string(l)?);
        }
        return Ok(());
    }
    print!("{}", render(&lines, args.hours));
    Ok(())
}

/// The table: slowest version first.
fn render(lines: &[VersionLine], hours: u32) -> String {
    let mut rows = vec![header(&[
        "VERSION",
        "BLOCKS",
        "NODES",
        "MEDIAN MS",
        "P90 MS",
    ])];
    for l in lines {
        rows.push(vec![
            l.version.trim_matches('/').to_string(),
            l.blocks.to_string(),
            l.nodes.to_string(),
            format!("{:.1}", l.median_ms),
            format!("{:.1}", l.p90_ms),
        ]);
    }
    let mut out = render_with(&rows, &[1, 2, 3, 4]);
    if lines.is_empty() {
        out.push_str(&format!(
            "(no block timings in the last {hours} h: do the nodes log -debug=bench, and is \
             `bmon-consumer det-compare` running?)\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_version_comes_first_with_aligned_figures() {
        let lines = [
            VersionLine {
                version: "/Satoshi:29.0.0/".into(),
                blocks: 144,
                nodes: 2,
                median_ms: 210.25,
                p90_ms: 480.0,
            },
            VersionLine {
                version: "/Satoshi:30.0.0/".into(),
                blocks: 12,
                nodes: 1,
                median_ms: 95.0,
                p90_ms: 130.5,
            },
        ];
        let text = render(&lines, 24);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 3, "{text}");
        assert!(rows[0].starts_with("VERSION"), "{text}");
        let cells = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            cells(rows[1]),
            ["Satoshi:29.0.0", "144", "2", "210.2", "480.0"]
        );
        assert_eq!(
            cells(rows[2]),
            ["Satoshi:30.0.0", "12", "1", "95.0", "130.5"]
        );
        // Figures are right-aligned under their headings.
        assert_eq!(rows[1].len(), rows[0].len(), "{text}");
        assert!(render(&[], 6).contains("last 6 h"));
    }
}
