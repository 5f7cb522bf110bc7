//! `/tx/{txid}`: one transaction as the fleet saw it — when each node first saw it, who
//! rejected it and why (and which peer sent it), what replaced it or what it replaced, when it
//! left each mempool and in which block it was confirmed.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{Path, State};
use axum::response::Html;

use crate::error::PageError;
use crate::html::{self, esc, num, opt};
use crate::params;
use crate::server::App;
use crate::sql::block::{self as block_sql, PropagationRow};
use crate::sql::tx::{
    self, BlockAt, RejectedRow, RemovedRow, ReplacedRow, SeenRow, CONFIRM_WINDOW_US,
};
use crate::svg::timeline::{self, Mark};
use crate::time;

/// Everything the page shows about one transaction.
#[derive(Debug, Clone, Default)]
pub struct TxData {
    /// The txid.
    pub txid: String,
    /// Arrivals.
    pub seen: Vec<SeenRow>,
    /// Rejections.
    pub rejected: Vec<RejectedRow>,
    /// Replacements of this transaction.
    pub replaced: Vec<ReplacedRow>,
    /// Replacements by this transaction.
    pub replacing: Vec<ReplacedRow>,
    /// Removals.
    pub removed: Vec<RemovedRow>,
    /// Blocks the removing nodes connected around their removals.
    pub blocks: Vec<BlockAt>,
    /// The propagation detector's summary.
    pub propagation: Option<PropagationRow>,
}

impl TxData {
    /// Whether any table knows the transaction.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
            && self.rejected.is_empty()
            && self.replaced.is_empty()
            && self.replacing.is_empty()
            && self.removed.is_empty()
    }

    /// The blocks `r`'s node connected within the window around a removal by block.
    fn candidates(&self, r: &RemovedRow) -> Vec<&BlockAt> {
        if r.reason != "block" {
            return Vec::new();
        }
        self.blocks
            .iter()
            .filter(|b| b.node == r.node)
            .filter(|b| (b.observed_at_us - r.observed_at_us).abs() <= CONFIRM_WINDOW_US)
            .collect()
    }

    /// The block that confirmed the transaction on `r`'s node: of the blocks the node connected
    /// around the removal, the one the other removals point at when it is among them (a node
    /// that reorged connects several blocks at once), else the closest in time.
    pub fn confirmed_in(&self, r: &RemovedRow) -> Option<&BlockAt> {
        // Each removal with a single block in its window votes for it.
        let mut votes: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for other in &self.removed {
            if let [b] = self.candidates(other)[..] {
                *votes.entry(b.hash.as_str()).or_default() += 1;
            }
        }
        let candidates = self.candidates(r);
        candidates
            .iter()
            .filter(|b| votes.contains_key(b.hash.as_str()))
            .max_by_key(|b| votes[b.hash.as_str()])
            .or_else(|| {
                candidates
                    .iter()
                    .min_by_key(|b| (b.observed_at_us - r.observed_at_us).abs())
            })
            .copied()
    }
}

/// The page body.
pub fn render(d: &TxData) -> String {
    let mut out = String::new();
    let _ = write!(out, "<p><code>{}</code></p>", esc(&d.txid));
    let first_with = |f: &dyn Fn(&SeenRow) -> Option<u64>| d.seen.iter().find_map(f);
    let vsize = first_with(&|s| s.vsize);
    let fee = first_with(&|s| s.fee_sat);
    let mut facts: Vec<(&str, String)> = Vec::new();
    if let Some(w) = d.seen.iter().find_map(|s| s.wtxid.clone()) {
        facts.push(("wtxid", format!("<code>{}</code>", esc(&w))));
    }
    facts.push(("vsize", opt(vsize, |v| format!("{} vB", html::group(v)))));
    facts.push(("fee", opt(fee, html::sats)));
    if let (Some(f), Some(v)) = (fee, vsize.filter(|v| *v > 0)) {
        facts.push(("fee rate", format!("{:.2} sat/vB", f as f64 / v as f64)));
    }
    let t0 = [
        d.seen.iter().map(|s| s.observed_at_us).min(),
        d.rejected.iter().map(|r| r.observed_at_us).min(),
        d.removed.iter().map(|r| r.observed_at_us).min(),
        d.replaced.iter().map(|r| r.observed_at_us).min(),
        d.replacing.iter().map(|r| r.observed_at_us).min(),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(0);
    if let Some(p) = &d.propagation {
        let mut cell = format!(
            "first {} at {}, spread {} over {} node(s)",
            esc(&p.first_node),
            esc(&time::fmt_us(p.first_seen_us)),
            time::fmt_lag(p.spread_us),
            p.nodes
        );
        if !p.missing.is_empty() {
            let _ = write!(cell, "; never seen by {}", esc(&p.missing.join(", ")));
        }
        facts.push(("propagation", cell));
    }
    out.push_str(&html::facts(&facts));

    // Per node.
    let mut nodes: BTreeMap<&str, i64> = BTreeMap::new();
    for (node, at) in d
        .seen
        .iter()
        .map(|s| (s.node.as_str(), s.observed_at_us))
        .chain(
            d.rejected
                .iter()
                .map(|r| (r.node.as_str(), r.observed_at_us)),
        )
        .chain(
            d.removed
                .iter()
                .map(|r| (r.node.as_str(), r.observed_at_us)),
        )
        .chain(
            d.replaced
                .iter()
                .map(|r| (r.node.as_str(), r.observed_at_us)),
        )
    {
        let e = nodes.entry(node).or_insert(at);
        *e = (*e).min(at);
    }
    let mut order: Vec<(&str, i64)> = nodes.into_iter().collect();
    order.sort_by_key(|(n, at)| (*at, *n));
    let lag = |us: i64| {
        format!(
            "<span title=\"{} UTC\">{}</span>",
            esc(&time::fmt_us(us)),
            time::fmt_lag(us - t0)
        )
    };
    out.push_str("<h2>Per node</h2>");
    let rows: Vec<Vec<String>> = order
        .iter()
        .map(|(node, first)| {
            let seen = d.seen.iter().find(|s| s.node == *node);
            let rejections: Vec<String> = d
                .rejected
                .iter()
                .filter(|r| r.node == *node)
                .map(|r| {
                    format!(
                        "<span class=\"bad\">{}</span>{}",
                        esc(&r.reason),
                        r.peer
                            .map(|p| format!(" from peer={p}"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            let removals: Vec<String> = d
                .removed
                .iter()
                .filter(|r| r.node == *node)
                .map(|r| {
                    let mut cell = format!("{} {}", esc(&r.reason), lag(r.observed_at_us));
                    if r.reason == "replaced" {
                        if let Some(by) = d.replaced.iter().find(|x| x.node == r.node) {
                            let _ = write!(cell, " by {}", html::tx_link(&by.new_txid));
                        }
                    }
                    if let Some(b) = d.confirmed_in(r) {
                        let _ = write!(
                            cell,
                            " — confirmed in {} (height {})",
                            html::block_link(&b.hash),
                            b.height
                        );
                    }
                    cell
                })
                .collect();
            vec![
                html::node_link(node, *first),
                num(opt(seen.map(|s| s.observed_at_us), lag)),
                opt(seen.map(|s| s.source.as_str()), esc),
                if rejections.is_empty() {
                    "<span class=\"dim\">-</span>".into()
                } else {
                    rejections.join("<br>")
                },
                if removals.is_empty() {
                    "<span class=\"dim\">in mempool or unknown</span>".into()
                } else {
                    removals.join("<br>")
                },
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str(&html::empty("No node reported this transaction."));
    } else {
        out.push_str(&html::table(
            &["node", "first seen", "via", "rejected", "left the mempool"],
            &rows,
        ));
    }

    out.push_str("<h2>Rejections</h2>");
    if d.rejected.is_empty() {
        out.push_str(&html::empty("No node rejected it."));
    } else {
        let rows: Vec<Vec<String>> = d
            .rejected
            .iter()
            .map(|r| {
                vec![
                    html::node_link(&r.node, r.observed_at_us),
                    esc(&time::fmt_us(r.observed_at_us)),
                    num(opt(r.peer, |p| format!("peer={p}"))),
                    format!("<b>{}</b>", esc(&r.reason)),
                    esc(&r.reason_text),
                    opt(r.wtxid.as_deref(), |w| {
                        format!("<code>{}</code>", esc(&html::short(w)))
                    }),
                ]
            })
            .collect();
        out.push_str(&html::table(
            &[
                "node",
                "time (UTC)",
                "peer",
                "reason",
                "Core's text",
                "wtxid",
            ],
            &rows,
        ));
    }

    out.push_str("<h2>Replacements</h2>");
    if d.replaced.is_empty() && d.replacing.is_empty() {
        out.push_str(&html::empty(
            "It neither replaced nor was replaced by another transaction.",
        ));
    } else {
        let rows: Vec<Vec<String>> = d
            .replaced
            .iter()
            .map(|r| ("replaced by", r, &r.new_txid))
            .chain(
                d.replacing
                    .iter()
                    .map(|r| ("replaced", r, &r.replaced_txid)),
            )
            .map(|(what, r, other)| {
                vec![
                    html::node_link(&r.node, r.observed_at_us),
                    esc(&time::fmt_us(r.observed_at_us)),
                    format!("{what} {}", html::tx_link(other)),
                    num(format!(
                        "{} → {}",
                        opt(r.replaced_fee_sat, html::sats),
                        opt(r.new_fee_sat, html::sats)
                    )),
                    num(format!(
                        "{} → {}",
                        opt(r.replaced_vsize, |v| format!("{v} vB")),
                        opt(r.new_vsize, |v| format!("{v} vB"))
                    )),
                ]
            })
            .collect();
        out.push_str(&html::table(
            &[
                "node",
                "time (UTC)",
                "",
                "fee (old → new)",
                "vsize (old → new)",
            ],
            &rows,
        ));
    }

    let timeline_rows: Vec<timeline::Row> = order
        .iter()
        .map(|(node, _)| {
            let mut marks = Vec::new();
            let mut add = |kind: &str, at: i64| {
                marks.push(Mark {
                    kind: kind.into(),
                    at_us: at,
                })
            };
            for s in d.seen.iter().filter(|s| s.node == *node) {
                add("seen", s.observed_at_us);
            }
            for r in d.rejected.iter().filter(|r| r.node == *node) {
                add("rejected", r.observed_at_us);
            }
            for r in d.replaced.iter().filter(|r| r.node == *node) {
                add("replaced", r.observed_at_us);
            }
            for r in d.removed.iter().filter(|r| r.node == *node) {
                add("removed", r.observed_at_us);
            }
            timeline::Row {
                node: node.to_string(),
                marks,
            }
        })
        .collect();
    out.push_str(&timeline::section(
        &timeline_rows,
        "the transaction per node",
    ));
    out
}

/// `GET /tx/{txid}`.
pub async fn handler(
    State(app): State<App>,
    Path(raw): Path<String>,
) -> Result<Html<String>, PageError> {
    let txid = params::txid(&raw)?.to_string();
    let db = &app.db;
    let (seen, rejected, replaced, replacing, removed, propagation) = tokio::try_join!(
        db.rows::<SeenRow>("transaction arrivals", tx::seen(&txid)),
        db.rows::<RejectedRow>("transaction rejections", tx::rejected(&txid)),
        db.rows::<ReplacedRow>("replacements of it", tx::replaced(&txid)),
        db.rows::<ReplacedRow>("replacements by it", tx::replacing(&txid)),
        db.rows::<RemovedRow>("transaction removals", tx::removed(&txid)),
        db.rows::<PropagationRow>("propagation", block_sql::propagation("tx", &txid)),
    )?;
    let mut d = TxData {
        txid: txid.clone(),
        seen,
        rejected,
        replaced,
        replacing,
        removed,
        blocks: Vec::new(),
        propagation: propagation.into_iter().next(),
    };
    if d.is_empty() {
        return Err(PageError::NotFound(format!(
            "No node reported transaction {txid}."
        )));
    }
    let by_block: Vec<&RemovedRow> = d.removed.iter().filter(|r| r.reason == "block").collect();
    if let (Some(from), Some(to)) = (
        by_block.iter().map(|r| r.observed_at_us).min(),
        by_block.iter().map(|r| r.observed_at_us).max(),
    ) {
        let mut nodes: Vec<&str> = by_block.iter().map(|r| r.node.as_str()).collect();
        nodes.sort();
        nodes.dedup();
        d.blocks = db
            .rows(
                "confirming blocks",
                tx::blocks_connected(&nodes, from - CONFIRM_WINDOW_US, to + CONFIRM_WINDOW_US),
            )
            .await?;
    }
    Ok(Html(html::page("Transaction", "", None, &render(&d))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_768_478_400_000_000;

    fn sample() -> TxData {
        TxData {
            txid: format!("{:064x}", 3),
            seen: vec![SeenRow {
                node: "n0".into(),
                observed_at_us: T0,
                wtxid: Some(format!("{:064x}", 33)),
                mempool_sequence: Some(5),
                vsize: Some(110),
                fee_sat: Some(1000),
                source: "zmq".into(),
            }],
            rejected: vec![RejectedRow {
                node: "n1".into(),
                observed_at_us: T0 + 40_000,
                wtxid: None,
                peer: Some(4),
                reason: "min relay fee not met".into(),
                reason_text: "min relay fee not met, 100 < 141".into(),
            }],
            replaced: vec![ReplacedRow {
                node: "n0".into(),
                observed_at_us: T0 + 9_000_000,
                replaced_txid: format!("{:064x}", 3),
                new_txid: format!("{:064x}", 4),
                replaced_fee_sat: Some(1000),
                new_fee_sat: Some(5000),
                replaced_vsize: Some(110),
                new_vsize: None,
            }],
            removed: vec![RemovedRow {
                node: "n0".into(),
                observed_at_us: T0 + 9_000_000,
                mempool_sequence: Some(6),
                reason: "replaced".into(),
                source: "zmq".into(),
            }],
            ..TxData::default()
        }
    }

    #[test]
    fn the_rejection_reason_peer_and_the_replacement_are_shown() {
        let page = render(&sample());
        assert!(page.contains("<b>min relay fee not met</b>"), "{page}");
        assert!(
            page.contains("min relay fee not met, 100 &lt; 141"),
            "{page}"
        );
        assert!(page.contains("from peer=4"), "{page}");
        assert!(
            page.contains(&format!(
                "replaced by <a class=\"h\" href=\"/tx/{:064x}\"",
                4
            )),
            "{page}"
        );
        assert!(
            page.contains("1\u{202f}000 sat → 5\u{202f}000 sat"),
            "{page}"
        );
        assert!(page.contains("9.09 sat/vB"), "{page}");
        assert!(page.contains("<svg"), "{page}");
    }

    #[test]
    fn a_removal_by_block_names_the_block_connected_then() {
        let mut d = sample();
        d.removed = vec![RemovedRow {
            node: "n0".into(),
            observed_at_us: T0 + 600_000_000,
            mempool_sequence: None,
            reason: "block".into(),
            source: "zmq".into(),
        }];
        d.blocks = vec![
            BlockAt {
                node: "n0".into(),
                hash: format!("{:064x}", 0xb1),
                height: 120,
                observed_at_us: T0 + 600_000_100,
            },
            BlockAt {
                node: "n1".into(),
                hash: format!("{:064x}", 0xb2),
                height: 120,
                observed_at_us: T0 + 600_000_000,
            },
        ];
        let page = render(&d);
        assert!(
            page.contains(&format!(
                "confirmed in <a class=\"h\" href=\"/block/{:064x}\"",
                0xb1
            )),
            "{page}"
        );
        assert!(page.contains("(height 120)"), "{page}");
    }

    #[test]
    fn a_node_that_connected_several_blocks_at_once_gets_the_one_the_others_saw() {
        let block = |node: &str, tag: u64, height: u32, at: i64| BlockAt {
            node: node.into(),
            hash: format!("{tag:064x}"),
            height,
            observed_at_us: at,
        };
        let removed = |node: &str, at: i64| RemovedRow {
            node: node.into(),
            observed_at_us: at,
            mempool_sequence: None,
            reason: "block".into(),
            source: "zmq".into(),
        };
        let reorg = T0 + 5_000_000;
        let d = TxData {
            removed: vec![removed("n0", T0 + 1_000), removed("n2", reorg + 1_000)],
            blocks: vec![
                block("n0", 0xa4, 104, T0),
                // n2 reorged onto 102..104 in one go: all three within a millisecond.
                block("n2", 0xa2, 102, reorg),
                block("n2", 0xa3, 103, reorg),
                block("n2", 0xa4, 104, reorg),
            ],
            ..sample()
        };
        for r in &d.removed {
            assert_eq!(d.confirmed_in(r).map(|b| b.height), Some(104), "{}", r.node);
        }
    }
}
