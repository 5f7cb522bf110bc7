//! `/tips?n=30`: the fork tree of the last N heights — the active chain, every stale, invalid
//! or headers-only branch, who holds each tip, the reorgs with their depth — as a picture and
//! as tables.

use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;

use crate::error::PageError;
use crate::forktree::{BlockState, ForkTree, Observations};
use crate::html::{self, esc, num};
use crate::params::Params;
use crate::server::App;
use crate::sql::fleet::{self, NodeRow};
use crate::sql::tips::{
    self, ChainTipsRow, ConnectedRow, DisconnectedRow, InvalidRow, ReorgRow, Top,
};
use crate::svg;
use crate::time;

/// Heights shown unless `n` says otherwise.
pub const DEFAULT_N: u32 = 30;
/// The most heights one page draws.
pub const MAX_N: u32 = 500;

/// The page body for `tree` (`n` heights asked for).
pub fn render(tree: &ForkTree, n: u32) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<form class=\"q\" method=\"get\" action=\"/tips\"><label>heights \
         <input name=\"n\" type=\"number\" min=\"1\" max=\"{MAX_N}\" value=\"{n}\"></label>\
         <button>show</button></form>"
    );
    let side: Vec<_> = tree.side_blocks().collect();
    let _ = write!(
        out,
        "<p>Heights {}–{}: {} blocks on the active chain, {} off it, {} reorg(s).</p>",
        tree.low,
        tree.high,
        tree.blocks.len() - side.len(),
        side.len(),
        tree.reorgs.len()
    );
    out.push_str(&svg::tree::render(tree));

    out.push_str("<h2>Branches off the active chain</h2>");
    if side.is_empty() {
        out.push_str(&html::empty(
            "None: every node that reported a block in this window agrees.",
        ));
    } else {
        let rows: Vec<Vec<String>> = side
            .iter()
            .map(|b| {
                let fork = tree
                    .blocks
                    .iter()
                    .position(|x| x.hash == b.hash)
                    .and_then(|i| tree.parent(i))
                    .map(|p| {
                        let inferred = if b.parent_inferred { " (inferred)" } else { "" };
                        format!("{}{inferred}", html::block_link(&p.hash))
                    })
                    .unwrap_or_else(|| "<span class=\"dim\">unknown</span>".into());
                let class = match b.state {
                    BlockState::Invalid => "bad",
                    BlockState::Stale => "warn",
                    _ => "dim",
                };
                let mut why = Vec::new();
                for r in &b.invalid {
                    why.push(format!(
                        "{}: <b>{}</b> {}{}",
                        esc(&r.node),
                        esc(&r.reason),
                        esc(r.detail.as_deref().unwrap_or("")),
                        r.peer.map(|p| format!(" (peer {p})")).unwrap_or_default()
                    ));
                }
                for (node, status) in &b.tip_status {
                    why.push(format!("{}: {} tip", esc(node), esc(status)));
                }
                vec![
                    html::block_link(&b.hash),
                    num(b.height),
                    format!("<span class=\"{class}\">{}</span>", b.state.as_str()),
                    fork,
                    tip_of(b),
                    names(&b.connected_by),
                    names(&b.disconnected_by),
                    why.join("<br>"),
                ]
            })
            .collect();
        out.push_str(&html::table(
            &[
                "block",
                "height",
                "state",
                "parent",
                "tip of",
                "connected by",
                "disconnected by",
                "why",
            ],
            &rows,
        ));
    }

    out.push_str("<h2>Reorgs</h2>");
    if tree.reorgs.is_empty() {
        out.push_str(&html::empty("No node reorganised in this window."));
    } else {
        let rows: Vec<Vec<String>> = tree
            .reorgs
            .iter()
            .map(|r| {
                let nodes: Vec<String> = r
                    .nodes
                    .iter()
                    .map(|(n, at)| {
                        format!(
                            "{} <span class=\"dim\">{}</span>",
                            html::node_link(n, *at),
                            esc(&time::fmt_us(*at))
                        )
                    })
                    .collect();
                vec![
                    num(format!("<b>{}</b>", r.depth)),
                    format!("{} ({})", html::block_link(&r.fork_point), r.fork_height),
                    format!("{} ({})", html::block_link(&r.old_tip), r.old_height),
                    format!("{} ({})", html::block_link(&r.new_tip), r.new_height),
                    nodes.join("<br>"),
                ]
            })
            .collect();
        out.push_str(&html::table(
            &["depth", "fork point", "old tip", "new tip", "nodes"],
            &rows,
        ));
    }
    out
}

/// Who holds the block as tip now, and who did until a reorg.
fn tip_of(b: &crate::forktree::TreeBlock) -> String {
    match (b.holders.is_empty(), b.was_tip_of.is_empty()) {
        (true, true) => "<span class=\"dim\">-</span>".into(),
        (false, true) => names(&b.holders),
        (true, false) => format!(
            "<span class=\"dim\">until a reorg:</span> {}",
            names(&b.was_tip_of)
        ),
        (false, false) => format!(
            "{}; <span class=\"dim\">until a reorg:</span> {}",
            names(&b.holders),
            names(&b.was_tip_of)
        ),
    }
}

fn names(set: &std::collections::BTreeSet<String>) -> String {
    if set.is_empty() {
        return "<span class=\"dim\">-</span>".into();
    }
    esc(&set.iter().cloned().collect::<Vec<_>>().join(", "))
}

/// `GET /tips?n=30`.
pub async fn handler(State(app): State<App>, params: Params) -> Result<Html<String>, PageError> {
    let n = params.number("n", DEFAULT_N, 1, MAX_N)?;
    let top = app
        .db
        .rows::<Top>("top height", tips::top())
        .await?
        .first()
        .map(|t| t.top)
        .unwrap_or(0);
    let low = top.saturating_sub(n - 1);
    let (connected, disconnected, reorgs, chain_tips, invalid, statuses) = tokio::try_join!(
        app.db
            .rows::<ConnectedRow>("connected blocks", tips::connected(low)),
        app.db
            .rows::<DisconnectedRow>("disconnected blocks", tips::disconnected(low)),
        app.db.rows::<ReorgRow>("reorgs", tips::reorgs(low)),
        app.db
            .rows::<ChainTipsRow>("chain tips", tips::chain_tips()),
        app.db
            .rows::<InvalidRow>("invalid blocks", tips::invalid(low)),
        app.db
            .rows::<NodeRow>("node status", fleet::latest_status()),
    )?;
    let tree = ForkTree::build(&Observations {
        low,
        connected: &connected,
        disconnected: &disconnected,
        reorgs: &reorgs,
        tips: &chain_tips,
        invalid: &invalid,
        statuses: &statuses,
    });
    Ok(Html(html::page(
        "Fork tree",
        "/tips",
        None,
        &render(&tree, n),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forktree::tests::scenario_tree;

    #[test]
    fn the_tables_list_the_stale_and_invalid_branches_and_the_reorg() {
        let page = render(&scenario_tree(), 4);
        assert!(
            page.contains("Heights 100–103: 4 blocks on the active chain, 3 off it, 1 reorg(s)."),
            "{page}"
        );
        assert!(page.contains("<span class=\"warn\">stale</span>"), "{page}");
        assert!(
            page.contains("<span class=\"bad\">invalid</span>"),
            "{page}"
        );
        assert!(
            page.contains("n1: <b>bad-cb-amount</b> coinbase pays too much (peer 3)"),
            "{page}"
        );
        assert!(page.contains("n0: headers-only tip"), "{page}");
        let reorgs = page.split("<h2>Reorgs</h2>").nth(1).unwrap();
        assert!(reorgs.contains("<td class=\"n\"><b>1</b></td>"), "{reorgs}");
        assert!(
            reorgs.contains("/events?node=n2&amp;at=103500000"),
            "{reorgs}"
        );
    }
}
