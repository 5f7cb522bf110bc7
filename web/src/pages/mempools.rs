//! `/mempools`: each node's mempool now (with the digest of its txid set, so equal sets show
//! equal), its latest comparison with the fleet's mempool — what it misses and why — and its
//! latest block template against the fleet's.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;

use crate::error::PageError;
use crate::html::{self, esc, num, opt};
use crate::server::App;
use crate::sql::mempools::{self, DivergenceRow, SnapshotRow, TemplateRow};
use crate::time;

/// Listed transactions shown per node before the rest fold away.
const SHOWN: usize = 10;

/// The page body.
pub fn render(snaps: &[SnapshotRow], div: &[DivergenceRow], tpl: &[TemplateRow]) -> String {
    let mut out = String::new();

    out.push_str("<h2>Mempools now</h2>");
    if snaps.is_empty() {
        out.push_str(&html::empty(
            "No mempool_snapshot yet: the agents poll every 30 s.",
        ));
    } else {
        // Equal txid sets get the same letter.
        let mut letters: BTreeMap<&str, char> = BTreeMap::new();
        for s in snaps {
            let next = (b'A' + (letters.len() % 26) as u8) as char;
            letters.entry(s.txid_digest.as_str()).or_insert(next);
        }
        let rows: Vec<Vec<String>> = snaps
            .iter()
            .map(|s| {
                let mirror = match (&s.mirror_digest, s.mirror_count) {
                    (Some(d), Some(c)) if *d == s.txid_digest && c == s.count => {
                        "<span class=\"ok\">agrees</span>".to_string()
                    }
                    (Some(_), Some(c)) => format!(
                        "<span class=\"warn\">differs ({} txs)</span>",
                        html::group(c)
                    ),
                    _ => "<span class=\"dim\">-</span>".into(),
                };
                vec![
                    html::node_link(&s.node, s.observed_at_us),
                    esc(&time::fmt_us(s.observed_at_us)),
                    num(html::group(s.count)),
                    num(format!("{} vB", html::group(s.vsize))),
                    num(opt(s.total_fee_sat, html::sats)),
                    num(format!("{} sat/kvB", html::group(s.min_fee_sat_per_kvb))),
                    format!(
                        "<b>{}</b> <code title=\"{}\">{}</code>",
                        letters.get(s.txid_digest.as_str()).copied().unwrap_or('?'),
                        esc(&s.txid_digest),
                        esc(&html::short(&s.txid_digest))
                    ),
                    mirror,
                ]
            })
            .collect();
        out.push_str(&html::table(
            &[
                "node",
                "at (UTC)",
                "transactions",
                "size",
                "fees",
                "min fee",
                "txid set",
                "agent's mirror",
            ],
            &rows,
        ));
        out.push_str(
            "<p class=\"dim\">Nodes with the same letter hold exactly the same transactions.</p>",
        );
    }

    out.push_str("<h2>Against the fleet's mempool</h2>");
    if div.is_empty() {
        out.push_str(&html::empty(
            "No comparison yet: is `bmon-consumer det-compare` running?",
        ));
    } else {
        let rows: Vec<Vec<String>> = div
            .iter()
            .map(|d| {
                let reasons: Vec<String> = d
                    .reason
                    .iter()
                    .zip(&d.reason_count)
                    .map(|(r, c)| format!("{}: {c}", esc(r)))
                    .collect();
                let listed: Vec<String> = d
                    .missing_txid
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let reason = d.missing_reason.get(i).map(String::as_str).unwrap_or("");
                        let detail = d.missing_detail.get(i).map(String::as_str).unwrap_or("");
                        let class = if reason == "unexplained" { "bad" } else { "" };
                        format!(
                            "{} <span class=\"{class}\">{}</span> {}",
                            html::tx_link(t),
                            esc(reason),
                            esc(detail)
                        )
                    })
                    .collect();
                let only: Vec<String> = d.only_here_txid.iter().map(|t| html::tx_link(t)).collect();
                let unexplained = if d.unexplained > 0 {
                    format!("<span class=\"bad\">{}</span>", d.unexplained)
                } else {
                    "0".into()
                };
                vec![
                    html::node_link(&d.mempool_node, d.observed_at_us),
                    esc(&time::fmt_us(d.observed_at_us)),
                    num(format!("{} / {}", d.fleet_nodes, html::group(d.fleet_txs))),
                    num(html::group(d.held)),
                    num(html::group(d.young)),
                    num(html::group(d.missing)),
                    num(unexplained),
                    num(html::group(d.only_here)),
                    reasons.join("<br>"),
                    folded(&listed),
                    folded(&only),
                ]
            })
            .collect();
        out.push_str(&html::table(
            &[
                "node",
                "at (UTC)",
                "fleet nodes / txs",
                "held",
                "young",
                "missing",
                "unexplained",
                "only here",
                "missing by reason",
                "missing (listed)",
                "only here (listed)",
            ],
            &rows,
        ));
    }

    out.push_str("<h2>Block templates</h2>");
    if tpl.is_empty() {
        out.push_str(&html::empty(
            "No template comparison yet: is `bmon-consumer det-compare` running, and do the \
             agents poll getblocktemplate?",
        ));
    } else {
        let rows: Vec<Vec<String>> = tpl
            .iter()
            .map(|t| {
                let left: Vec<String> = t
                    .left_out_txid
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        format!(
                            "{} {} {}",
                            html::tx_link(x),
                            opt(t.left_out_fee_sat.get(i).copied(), html::sats),
                            esc(t.left_out_reason.get(i).map(String::as_str).unwrap_or(""))
                        )
                    })
                    .collect();
                let fee_delta = t.fees_sat as i128 - t.fleet_median_fees_sat as i128;
                vec![
                    html::node_link(&t.template_node, t.observed_at_us),
                    esc(&time::fmt_us(t.observed_at_us)),
                    num(t.height),
                    html::block_link(&t.prev),
                    num(t.fleet_templates),
                    num(format!("{:.3}", t.jaccard)),
                    num(format!(
                        "{} ({}{} vs median)",
                        html::sats(t.fees_sat),
                        if fee_delta >= 0 { "+" } else { "-" },
                        html::group(fee_delta.unsigned_abs() as u64)
                    )),
                    num(format!(
                        "{} / {}",
                        html::group(t.weight),
                        html::group(t.fleet_median_weight)
                    )),
                    num(html::group(t.left_out)),
                    num(html::sats(t.explained_fees_sat)),
                    folded(&left),
                ]
            })
            .collect();
        out.push_str(&html::table(
            &[
                "node",
                "at (UTC)",
                "height",
                "parent",
                "templates",
                "jaccard",
                "fees",
                "weight / median",
                "left out",
                "explained fees",
                "left out (highest fees)",
            ],
            &rows,
        ));
    }
    out
}

/// The first items, the rest behind a `<details>`.
fn folded(items: &[String]) -> String {
    if items.is_empty() {
        return "<span class=\"dim\">-</span>".into();
    }
    let mut out = items[..items.len().min(SHOWN)].join("<br>");
    if items.len() > SHOWN {
        let _ = write!(
            out,
            "<details><summary>{} more</summary>{}</details>",
            items.len() - SHOWN,
            items[SHOWN..].join("<br>")
        );
    }
    out
}

/// `GET /mempools`.
pub async fn handler(State(app): State<App>) -> Result<Html<String>, PageError> {
    let (snaps, div, tpl) = tokio::try_join!(
        app.db
            .rows::<SnapshotRow>("mempool snapshots", mempools::snapshots()),
        app.db
            .rows::<DivergenceRow>("mempool divergence", mempools::divergence()),
        app.db
            .rows::<TemplateRow>("template comparison", mempools::templates()),
    )?;
    Ok(Html(html::page(
        "Mempools",
        "/mempools",
        None,
        &render(&snaps, &div, &tpl),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(node: &str, digest: &str) -> SnapshotRow {
        SnapshotRow {
            node: node.into(),
            observed_at_us: 0,
            count: 2,
            vsize: 300,
            total_fee_sat: Some(7000),
            min_fee_sat_per_kvb: 1000,
            txid_digest: digest.into(),
            mirror_count: Some(2),
            mirror_digest: Some(digest.into()),
        }
    }

    #[test]
    fn equal_sets_share_a_letter_and_missing_transactions_show_why() {
        let div = DivergenceRow {
            mempool_node: "n1".into(),
            observed_at_us: 0,
            fleet_nodes: 3,
            fleet_txs: 100,
            held: 97,
            young: 1,
            missing: 3,
            unexplained: 1,
            only_here: 0,
            reason: vec!["rejected".into(), "unexplained".into()],
            reason_count: vec![2, 1],
            missing_txid: vec!["a".repeat(64), "b".repeat(64)],
            missing_reason: vec!["rejected".into(), "unexplained".into()],
            missing_detail: vec!["min relay fee not met".into(), "".into()],
            only_here_txid: vec![],
        };
        let page = render(
            &[snap("n0", "d1"), snap("n1", "d2"), snap("n2", "d1")],
            &[div],
            &[],
        );
        assert_eq!(page.matches("<b>A</b>").count(), 2, "{page}");
        assert_eq!(page.matches("<b>B</b>").count(), 1, "{page}");
        assert!(page.contains("rejected: 2<br>unexplained: 1"), "{page}");
        assert!(
            page.contains("rejected</span> min relay fee not met"),
            "{page}"
        );
        assert!(
            page.contains("<span class=\"bad\">unexplained</span>"),
            "{page}"
        );
        assert!(page.contains("No template comparison yet"), "{page}");
    }

    #[test]
    fn long_lists_fold_away() {
        let items: Vec<String> = (0..15).map(|i| i.to_string()).collect();
        let f = folded(&items);
        assert!(f.contains("<summary>5 more</summary>"), "{f}");
    }
}
