//! `/events?node=..&at=..&s=..`: what one node recorded within ±s seconds of a moment — every
//! event table, its log lines and the alerts about it — in time order, the row nearest the
//! moment marked. Log lines, alerts and the fleet page link here.

use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;

use crate::error::PageError;
use crate::html::{self, esc};
use crate::params::Params;
use crate::server::App;
use crate::sql::events::{self, EventRow, RefKind, TOTAL};
use crate::time;

/// What the page is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Around {
    /// The node.
    pub node: String,
    /// The moment, µs.
    pub at_us: i64,
    /// Seconds either side.
    pub window_secs: u32,
}

/// The page body.
pub fn render(a: &Around, rows: &[EventRow]) -> String {
    let mut out = String::new();
    let w = i64::from(a.window_secs) * time::SEC;
    let node = html::url_component(&a.node);
    let _ = write!(
        out,
        "<p>Everything <b>{}</b> recorded from {} to {} UTC (±{} s around {}). \
         <a href=\"/events?node={node}&amp;at={}&amp;s={}\">wider (±{} s)</a> · \
         <a href=\"/logs?node={node}&amp;from={}&amp;to={}\">its log lines only</a></p>",
        esc(&a.node),
        esc(&time::fmt_us(a.at_us - w)),
        esc(&time::fmt_us(a.at_us + w)),
        a.window_secs,
        esc(&time::fmt_us(a.at_us)),
        a.at_us,
        (a.window_secs * 10).min(3600),
        (a.window_secs * 10).min(3600),
        esc(&time::fmt_input(a.at_us - w)),
        esc(&time::fmt_input(a.at_us + w + time::SEC)),
    );
    if rows.is_empty() {
        out.push_str(&html::empty(
            "Nothing recorded in this window. Is the node name right, and was its agent \
             running then?",
        ));
        return out;
    }
    if rows.len() as u64 >= TOTAL {
        let _ = write!(
            out,
            "<p class=\"warn\">Only the first {TOTAL} rows: narrow the window.</p>"
        );
    }
    let here = rows
        .iter()
        .enumerate()
        .min_by_key(|(_, r)| (r.at_us - a.at_us).abs())
        .map(|(i, _)| i);
    out.push_str(
        "<table><thead><tr><th>time (UTC)</th><th>Δ</th><th>what</th><th>block / tx</th>\
         <th>detail</th></tr></thead><tbody>",
    );
    for (i, r) in rows.iter().enumerate() {
        let reference = match events::branch(&r.kind).map(|b| b.ref_kind) {
            _ if r.reference.is_empty() => String::new(),
            Some(RefKind::Block) => html::block_link(&r.reference),
            Some(RefKind::Tx) => html::tx_link(&r.reference),
            Some(RefKind::Either) => format!(
                "<a class=\"h\" href=\"/search?q={}\" title=\"{}\">{}</a>",
                html::url_component(&r.reference),
                esc(&r.reference),
                esc(&html::short(&r.reference))
            ),
            _ => format!("<code>{}</code>", esc(&html::short(&r.reference))),
        };
        let class = if Some(i) == here {
            " class=\"here\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr{class}><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{reference}</td>\
             <td><code>{}</code></td></tr>",
            esc(&time::fmt_us(r.at_us)),
            time::fmt_lag(r.at_us - a.at_us),
            esc(&r.kind),
            esc(&r.summary)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// `GET /events?node=..&at=..[&s=..]`.
pub async fn handler(State(app): State<App>, params: Params) -> Result<Html<String>, PageError> {
    let node = params
        .node("node")?
        .ok_or_else(|| PageError::BadRequest("name a node: /events?node=NAME&at=TIME".into()))?;
    let at_us = params.time("at")?.unwrap_or_else(time::now_us);
    let window_secs = params.number("s", app.web.events_window_secs, 1, 3600)?;
    let w = i64::from(window_secs) * time::SEC;
    let rows = app
        .db
        .rows::<EventRow>(
            "events around",
            events::around(node.as_str(), at_us - w, at_us + w),
        )
        .await?;
    let a = Around {
        node: node.as_str().to_string(),
        at_us,
        window_secs,
    };
    let title = format!("{} around {}", a.node, time::fmt_us(at_us));
    Ok(Html(html::page(&title, "", None, &render(&a, &rows))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, at_us: i64, reference: &str, summary: &str) -> EventRow {
        EventRow {
            kind: kind.into(),
            at_us,
            reference: reference.into(),
            summary: summary.into(),
        }
    }

    #[test]
    fn the_row_nearest_the_moment_is_marked_and_references_link() {
        let a = Around {
            node: "n0".into(),
            at_us: 10_000_000,
            window_secs: 30,
        };
        let rows = vec![
            row(
                "block_seen",
                9_000_000,
                &"a".repeat(64),
                "header at height 5",
            ),
            row("log", 10_000_100, "", "UpdateTip: <new best>"),
            row(
                "tx_rejected",
                12_000_000,
                &"b".repeat(64),
                "min relay fee not met",
            ),
        ];
        let page = render(&a, &rows);
        assert!(
            page.contains(&format!("href=\"/block/{}\"", "a".repeat(64))),
            "{page}"
        );
        assert!(
            page.contains(&format!("href=\"/tx/{}\"", "b".repeat(64))),
            "{page}"
        );
        let marked = page.split("<tr class=\"here\">").nth(1).unwrap();
        assert!(
            marked.starts_with("<td>1970-01-01 00:00:10.000</td>"),
            "{marked}"
        );
        assert!(page.contains("UpdateTip: &lt;new best&gt;"), "{page}");
        assert!(page.contains(">-1.000 s<"), "{page}");
    }
}
