//! `/`: the fleet at a glance, one line per node from its latest `node_status`, with its lag
//! behind the best tip and its open alerts. The page reloads itself (`web.refresh_secs`).

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;

use crate::error::PageError;
use crate::html::{self, esc, num};
use crate::server::App;
use crate::sql::fleet::{self, NodeRow, OpenAlerts};
use crate::time;

/// What the fleet page shows.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Latest status per node.
    pub nodes: Vec<NodeRow>,
    /// Open alerts per node.
    pub open: Vec<OpenAlerts>,
    /// The time ages are computed at, µs.
    pub now_us: i64,
}

/// A status older than this reads as a warning, seconds (statuses come every 10 s).
const LATE_SECS: i64 = 60;
/// A status older than this reads as an outage, seconds.
const SILENT_SECS: i64 = 300;

/// The page body.
pub fn render(f: &Fleet) -> String {
    if f.nodes.is_empty() {
        return html::empty(
            "No node_status rows yet: are the agents and `bmon-consumer ch-writer` running, \
             and has `bmon setup` run?",
        );
    }
    // The best tip: the highest chain of a node out of initial block download (any node's
    // when all are syncing).
    let synced: Vec<&NodeRow> = f
        .nodes
        .iter()
        .filter(|n| n.initial_block_download == 0)
        .collect();
    let pool: Vec<&NodeRow> = if synced.is_empty() {
        f.nodes.iter().collect()
    } else {
        synced
    };
    let best = pool.iter().map(|n| n.height).max().unwrap_or(0);
    let mut tips_at_best: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in f.nodes.iter().filter(|n| n.height == best) {
        tips_at_best
            .entry(n.best_block_hash.as_str())
            .or_default()
            .push(n.node.as_str());
    }
    let open: BTreeMap<&str, u64> = f.open.iter().map(|o| (o.node.as_str(), o.open)).collect();

    let mut out = String::new();
    let _ = write!(
        out,
        "<p>{} nodes. Best tip: height <b>{best}</b>",
        f.nodes.len()
    );
    for (hash, holders) in &tips_at_best {
        let _ = write!(
            out,
            " {} ({})",
            html::block_link(hash),
            esc(&holders.join(", "))
        );
    }
    if tips_at_best.len() > 1 {
        out.push_str(
            " — <span class=\"bad\">the fleet disagrees at the best height</span>: see the \
             <a href=\"/tips\">fork tree</a>",
        );
    }
    out.push('.');
    if let Some(n) = open.get("").filter(|n| **n > 0) {
        let _ = write!(
            out,
            " <a class=\"firing\" href=\"/alerts?state=firing\">{n} fleet-wide alert(s) firing</a>."
        );
    }
    out.push_str("</p>");

    let rows: Vec<Vec<String>> = f
        .nodes
        .iter()
        .map(|n| {
            let lag = best.saturating_sub(n.height);
            let lag_cell = match lag {
                0 => "<span class=\"ok\">0</span>".to_string(),
                1 => "<span class=\"warn\">1</span>".to_string(),
                l => format!("<span class=\"bad\">{l}</span>"),
            };
            let age = (f.now_us - n.last_heard_us).div_euclid(time::SEC);
            let class = if age >= SILENT_SECS {
                "bad"
            } else if age >= LATE_SECS {
                "warn"
            } else {
                "ok"
            };
            let ibd = if n.initial_block_download != 0 {
                format!(
                    "<span class=\"warn\">yes ({:.1}%)</span>",
                    n.verification_progress * 100.0
                )
            } else {
                "no".into()
            };
            let alerts = match open.get(n.node.as_str()) {
                Some(k) if *k > 0 => format!(
                    "<a class=\"firing\" href=\"/alerts?state=firing&amp;node={}\">{k}</a>",
                    html::url_component(&n.node)
                ),
                _ => "<span class=\"ok\">0</span>".into(),
            };
            let tip_age = html::opt(n.tip_time, |t| {
                time::fmt_age(f.now_us.div_euclid(time::SEC) - t)
            });
            vec![
                html::node_link(&n.node, n.last_heard_us),
                esc(n.subversion.trim_matches('/')),
                html::block_link(&n.best_block_hash),
                num(n.height),
                num(lag_cell),
                num(n.headers),
                tip_age,
                num(format!("{}/{}", n.peers_in, n.peers_out)),
                num(format!(
                    "{} tx, {} kB",
                    html::group(n.mempool_count),
                    html::group(n.mempool_bytes / 1000)
                )),
                ibd,
                format!(
                    "<span class=\"{class}\" title=\"{}\">{} ago</span>",
                    esc(&time::fmt_us(n.last_heard_us)),
                    time::fmt_age(age)
                ),
                num(alerts),
            ]
        })
        .collect();
    out.push_str(&html::table(
        &[
            "node",
            "version",
            "tip",
            "height",
            "lag",
            "headers",
            "tip age",
            "peers in/out",
            "mempool",
            "IBD",
            "last status",
            "open alerts",
        ],
        &rows,
    ));
    out
}

/// `GET /`.
pub async fn handler(State(app): State<App>) -> Result<Html<String>, PageError> {
    let (nodes, open) = tokio::try_join!(
        app.db
            .rows::<NodeRow>("node status", fleet::latest_status()),
        app.db
            .rows::<OpenAlerts>("open alerts", fleet::open_alerts()),
    )?;
    let fleet = Fleet {
        nodes,
        open,
        now_us: time::now_us(),
    };
    Ok(Html(html::page(
        "Fleet",
        "/",
        app.refresh(),
        &render(&fleet),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, height: u32, hash: &str, heard_us: i64) -> NodeRow {
        NodeRow {
            node: name.into(),
            subversion: "/Satoshi:30.0.0/".into(),
            version: 300000,
            height,
            headers: height,
            best_block_hash: hash.into(),
            tip_time: Some(1000),
            initial_block_download: 0,
            verification_progress: 1.0,
            peers_in: 2,
            peers_out: 8,
            mempool_count: 1234,
            mempool_bytes: 456_000,
            last_heard_us: heard_us,
        }
    }

    #[test]
    fn each_node_shows_its_lag_behind_the_best_tip_and_its_open_alerts() {
        let now = 2_000 * time::SEC;
        let f = Fleet {
            nodes: vec![
                node("n0", 112, &"a".repeat(64), now - 3 * time::SEC),
                node("n1", 110, &"b".repeat(64), now - 400 * time::SEC),
            ],
            open: vec![
                OpenAlerts {
                    node: "n1".into(),
                    open: 2,
                },
                OpenAlerts {
                    node: "".into(),
                    open: 1,
                },
            ],
            now_us: now,
        };
        let page = render(&f);
        let rows: Vec<&str> = page.split("<tr>").skip(2).collect();
        assert_eq!(rows.len(), 2, "{page}");
        assert!(
            rows[0].contains("<span class=\"ok\">0</span>"),
            "{}",
            rows[0]
        );
        assert!(
            rows[1].contains("<span class=\"bad\">2</span>"),
            "{}",
            rows[1]
        );
        assert!(rows[1].contains("node=n1\">2</a>"), "{}", rows[1]);
        assert!(
            rows[1].contains("class=\"bad\""),
            "silent node: {}",
            rows[1]
        );
        assert!(page.contains("1 fleet-wide alert(s) firing"), "{page}");
        assert!(page.contains("height <b>112</b>"), "{page}");
    }

    #[test]
    fn two_tips_at_the_best_height_are_called_out() {
        let f = Fleet {
            nodes: vec![
                node("n0", 112, &"a".repeat(64), 0),
                node("n1", 112, &"b".repeat(64), 0),
            ],
            open: vec![],
            now_us: 0,
        };
        assert!(render(&f).contains("the fleet disagrees at the best height"));
    }

    #[test]
    fn names_from_the_data_are_escaped() {
        let mut n = node("n0", 1, "<i>", 0);
        n.subversion = "/Evil:<script>/".into();
        let page = render(&Fleet {
            nodes: vec![n],
            open: vec![],
            now_us: 0,
        });
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<i>"), "{page}");
        assert!(page.contains("Evil:&lt;script&gt;"), "{page}");
    }
}
