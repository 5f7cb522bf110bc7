//! `bmon validation`: block validation time by Core version, each block credited to the
//! version its node ran when it connected it. Reads the views `validation_by_version` and
//! `validation_stage_by_version` (migration 0004), which cover each version's last 1000 block
//! connections; the views, not this module, decide that window.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::services::Services;
use crate::table::{clock, header, render_with};

/// Options of `bmon validation`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also show each version's median and p90 per validation stage (`Connect block`,
    /// `Verify txins`, ...).
    #[arg(long)]
    stages: bool,
    /// One JSON object per version instead of tables (with `--stages`, each carries its
    /// stages).
    #[arg(long)]
    json: bool,
}

/// Per version, slowest first.
pub const VERSIONS_SQL: &str = "\
SELECT version, blocks, nodes, median_connect_ms AS median_ms, p90_connect_ms AS p90_ms, \
toInt64(last_block) * 1000000 AS last_block_us \
FROM validation_by_version \
ORDER BY median_ms DESC, version";

/// Per stage and version: stages by name, within a stage the slowest version first.
pub const STAGES_SQL: &str = "\
SELECT version, stage_name AS stage, blocks, median_ms, p90_ms \
FROM validation_stage_by_version \
ORDER BY stage, median_ms DESC, version";

/// One version's figures over its last 1000 connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct VersionLine {
    version: String,
    blocks: u64,
    nodes: u64,
    median_ms: f64,
    p90_ms: f64,
    last_block_us: i64,
}

/// One version's figures for one validation stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct StageLine {
    version: String,
    stage: String,
    blocks: u64,
    median_ms: f64,
    p90_ms: f64,
}

/// The text of `--json`: a version with its stages when asked for.
#[derive(Debug, Serialize)]
struct VersionJson<'a> {
    #[serde(flatten)]
    line: &'a VersionLine,
    #[serde(skip_serializing_if = "Option::is_none")]
    stages: Option<Vec<StageJson<'a>>>,
}

#[derive(Debug, Serialize)]
struct StageJson<'a> {
    stage: &'a str,
    blocks: u64,
    median_ms: f64,
    p90_ms: f64,
}

const HINT: &str = "(--clickhouse-url, BMON_CLICKHOUSE_URL; has `bmon setup` applied \
                    0004_validation_last_blocks?)";

/// Runs `bmon validation`.
pub async fn run(services: &Services, args: Args) -> anyhow::Result<()> {
    let db = services.clickhouse();
    let versions: Vec<VersionLine> = db
        .query(VERSIONS_SQL)
        .fetch_all()
        .await
        .with_context(|| format!("cannot read validation_by_version {HINT}"))?;
    let stages: Vec<StageLine> = if args.stages {
        db.query(STAGES_SQL)
            .fetch_all()
            .await
            .with_context(|| format!("cannot read validation_stage_by_version {HINT}"))?
    } else {
        Vec::new()
    };
    if args.json {
        for line in json_lines(&versions, &stages, args.stages)? {
            println!("{line}");
        }
        return Ok(());
    }
    print!("{}", render(&versions));
    if args.stages && !versions.is_empty() {
        println!();
        print!("{}", render_stages(&stages));
    }
    Ok(())
}

/// One JSON object per version, in the table's order; with `stages`, each with its stages.
fn json_lines(
    versions: &[VersionLine],
    stages: &[StageLine],
    with_stages: bool,
) -> serde_json::Result<Vec<String>> {
    let mut by_version: BTreeMap<&str, Vec<StageJson>> = BTreeMap::new();
    for s in stages {
        by_version
            .entry(s.version.as_str())
            .or_default()
            .push(StageJson {
                stage: &s.stage,
                blocks: s.blocks,
                median_ms: s.median_ms,
                p90_ms: s.p90_ms,
            });
    }
    versions
        .iter()
        .map(|line| {
            let stages =
                with_stages.then(|| by_version.remove(line.version.as_str()).unwrap_or_default());
            serde_json::to_string(&VersionJson { line, stages })
        })
        .collect()
}

/// The version table: slowest first, as the query orders it.
fn render(lines: &[VersionLine]) -> String {
    if lines.is_empty() {
        return "(no block timings yet: do the nodes log with -debug=bench, and is \
                `bmon-consumer det-compare` running?)\n"
            .into();
    }
    let mut rows = vec![header(&[
        "VERSION",
        "BLOCKS",
        "NODES",
        "MEDIAN MS",
        "P90 MS",
        "LAST BLOCK (UTC)",
    ])];
    for l in lines {
        rows.push(vec![
            l.version.trim_matches('/').to_string(),
            l.blocks.to_string(),
            l.nodes.to_string(),
            format!("{:.1}", l.median_ms),
            format!("{:.1}", l.p90_ms),
            // Whole seconds: the view keeps `observed_at`.
            {
                let at = clock(l.last_block_us);
                at.get(..19).unwrap_or(&at).to_string()
            },
        ]);
    }
    render_with(&rows, &[1, 2, 3, 4])
}

/// The stage table: by stage name, within a stage the slowest version first.
fn render_stages(lines: &[StageLine]) -> String {
    if lines.is_empty() {
        return "(no validation stages: the nodes' debug.log carries `Connect total` but no \
                stage lines)\n"
            .into();
    }
    let mut rows = vec![header(&[
        "STAGE",
        "VERSION",
        "BLOCKS",
        "MEDIAN MS",
        "P90 MS",
    ])];
    for l in lines {
        rows.push(vec![
            l.stage.clone(),
            l.version.trim_matches('/').to_string(),
            l.blocks.to_string(),
            format!("{:.2}", l.median_ms),
            format!("{:.2}", l.p90_ms),
        ]);
    }
    render_with(&rows, &[2, 3, 4])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions() -> [VersionLine; 2] {
        [
            VersionLine {
                version: "/Satoshi:29.0.0/".into(),
                blocks: 144,
                nodes: 2,
                median_ms: 210.25,
                p90_ms: 480.0,
                last_block_us: 1_768_478_400_000_000,
            },
            VersionLine {
                version: "/Satoshi:30.0.0/".into(),
                blocks: 12,
                nodes: 1,
                median_ms: 95.0,
                p90_ms: 130.5,
                last_block_us: 1_768_482_000_000_000,
            },
        ]
    }

    fn stage(version: &str, stage: &str, median_ms: f64) -> StageLine {
        StageLine {
            version: version.into(),
            stage: stage.into(),
            blocks: 12,
            median_ms,
            p90_ms: median_ms * 2.0,
        }
    }

    #[test]
    fn the_slowest_version_comes_first_with_aligned_figures() {
        let text = render(&versions());
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 3, "{text}");
        assert!(rows[0].starts_with("VERSION"), "{text}");
        let cells = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            cells(rows[1]),
            [
                "Satoshi:29.0.0",
                "144",
                "2",
                "210.2",
                "480.0",
                "2026-01-15",
                "12:00:00"
            ]
        );
        assert_eq!(
            cells(rows[2]),
            [
                "Satoshi:30.0.0",
                "12",
                "1",
                "95.0",
                "130.5",
                "2026-01-15",
                "13:00:00"
            ]
        );
        // Figures are right-aligned under their headings.
        let end = |l: &str, word: &str| l.find(word).map(|i| i + word.len());
        assert_eq!(end(rows[0], "P90 MS"), end(rows[1], "480.0"), "{text}");
        assert!(render(&[]).contains("-debug=bench"));
    }

    #[test]
    fn stages_are_listed_by_name_with_their_versions_figures() {
        let text = render_stages(&[
            stage("/Satoshi:29.0.0/", "Connect block", 12.5),
            stage("/Satoshi:30.0.0/", "Connect block", 8.0),
            stage("/Satoshi:29.0.0/", "Verify 3 txins", 1.25),
        ]);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .collect();
        assert_eq!(
            rows,
            [
                vec!["STAGE", "VERSION", "BLOCKS", "MEDIAN MS", "P90 MS"],
                vec!["Connect block", "Satoshi:29.0.0", "12", "12.50", "25.00"],
                vec!["Connect block", "Satoshi:30.0.0", "12", "8.00", "16.00"],
                vec!["Verify 3 txins", "Satoshi:29.0.0", "12", "1.25", "2.50"],
            ],
            "{text}"
        );
    }

    #[test]
    fn json_gives_each_version_its_stages_only_when_asked() {
        let versions = versions();
        let stages = [
            stage("/Satoshi:30.0.0/", "Connect block", 8.0),
            stage("/Satoshi:29.0.0/", "Connect block", 12.5),
        ];
        let plain = json_lines(&versions, &[], false).unwrap();
        let v: serde_json::Value = serde_json::from_str(&plain[0]).unwrap();
        assert_eq!(v["version"], "/Satoshi:29.0.0/");
        assert_eq!(v["last_block_us"], 1_768_478_400_000_000_i64);
        assert!(v.get("stages").is_none(), "{v}");
        let with = json_lines(&versions, &stages, true).unwrap();
        let v: serde_json::Value = serde_json::from_str(&with[1]).unwrap();
        assert_eq!(v["version"], "/Satoshi:30.0.0/");
        assert_eq!(v["stages"][0]["stage"], "Connect block");
        assert_eq!(v["stages"][0]["median_ms"], 8.0);
    }
}
