//! `/validation`: how long each Core version takes to connect a block (`Connect total`,
//! median and p90, each block credited to the version its node ran then), overall and per
//! validation stage, over each version's last 1000 block connections (the views decide).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Html;

use crate::error::PageError;
use crate::html::{self, esc, num};
use crate::server::App;
use crate::sql::validation::{self, StageRow, VersionRow};
use crate::svg::bars::{self, Bar};
use crate::time;

/// The page body.
pub fn render(versions: &[VersionRow], stages: &[StageRow]) -> String {
    if versions.is_empty() {
        return html::empty(
            "No block validation yet: the nodes must log with -debug=bench and \
             `bmon-consumer det-compare` must run.",
        );
    }
    let mut out = String::new();
    let picture: Vec<Bar> = versions
        .iter()
        .map(|v| Bar {
            label: v.version.trim_matches('/').to_string(),
            median: v.median_connect_ms,
            p90: v.p90_connect_ms,
            count: v.blocks,
        })
        .collect();
    out.push_str(&bars::render(&picture, "ms", "connect time by version"));
    out.push_str(
        "<p class=\"dim\">Each version's last 1000 block connections (one per node and block), \
         whenever they were.</p>",
    );
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                esc(v.version.trim_matches('/')),
                num(html::group(v.blocks)),
                num(v.nodes),
                num(html::ms(v.median_connect_ms)),
                num(html::ms(v.p90_connect_ms)),
                esc(&time::fmt_secs(i64::from(v.last_block))),
            ]
        })
        .collect();
    out.push_str(&html::table(
        &[
            "version",
            "blocks",
            "nodes",
            "median",
            "p90",
            "latest block (UTC)",
        ],
        &rows,
    ));

    out.push_str("<h2>By stage (median / p90)</h2>");
    let versions_order: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    let mut by_stage: BTreeMap<&str, BTreeMap<&str, &StageRow>> = BTreeMap::new();
    for s in stages {
        by_stage
            .entry(s.stage_name.as_str())
            .or_default()
            .insert(s.version.as_str(), s);
    }
    let mut head: Vec<String> = vec!["stage".into()];
    head.extend(
        versions_order
            .iter()
            .map(|v| v.trim_matches('/').to_string()),
    );
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = by_stage
        .iter()
        .map(|(stage, per)| {
            let mut row = vec![esc(stage)];
            for v in &versions_order {
                row.push(num(match per.get(v) {
                    Some(s) => format!("{:.2} / {:.2}", s.median_ms, s.p90_ms),
                    None => "-".into(),
                }));
            }
            row
        })
        .collect();
    out.push_str(&html::table(&head_refs, &rows));
    out
}

/// `GET /validation`.
pub async fn handler(State(app): State<App>) -> Result<Html<String>, PageError> {
    let (versions, stages) = tokio::try_join!(
        app.db
            .rows::<VersionRow>("validation by version", validation::by_version()),
        app.db
            .rows::<StageRow>("validation by stage", validation::by_stage()),
    )?;
    Ok(Html(html::page(
        "Validation time by version",
        "/validation",
        None,
        &render(&versions, &stages),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_their_stages_are_tabled_and_drawn() {
        let versions = vec![VersionRow {
            version: "/Satoshi:29.0.0/".into(),
            blocks: 144,
            nodes: 2,
            median_connect_ms: 210.25,
            p90_connect_ms: 480.0,
            last_block: 1_768_478_400,
        }];
        let stages = vec![StageRow {
            version: "/Satoshi:29.0.0/".into(),
            stage_name: "Connect block".into(),
            blocks: 144,
            median_ms: 12.5,
            p90_ms: 20.0,
        }];
        let page = render(&versions, &stages);
        assert!(page.contains("<svg"), "{page}");
        assert!(page.contains("<td>Satoshi:29.0.0</td>"), "{page}");
        assert!(page.contains("210.2 ms"), "{page}");
        assert!(page.contains("last 1000 block connections"), "{page}");
        assert!(
            page.contains("<td>Connect block</td><td class=\"n\">12.50 / 20.00</td>"),
            "{page}"
        );
    }
}
