//! `/block/{hash_or_height}`: one block as the fleet saw it — per node the header,
//! compact-block, block and tip times and the lag behind the fleet's first sighting, the peer
//! that delivered it, the validation stages and totals, the compact-block reconstruction —
//! with the block's own figures (miner, fees, size) and a timeline of the sightings.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{Path, State};
use axum::response::Html;

use crate::error::PageError;
use crate::html::{self, esc, num, opt};
use crate::params::{self, BlockRef};
use crate::server::App;
use crate::sql::block::{
    self, AtHeight, ConnectedRow, DisconnectedRow, InvalidRow, PropagationRow, SeenRow, TimingRow,
    VersionRow, TIMING_WINDOW_US,
};
use crate::svg::timeline::{self, Mark};
use crate::time;

/// The sighting stages, in the order a block arrives.
pub const STAGES: [&str; 4] = ["header", "cmpctblock", "block", "tip"];

/// Everything the page shows about one block.
#[derive(Debug, Clone, Default)]
pub struct BlockData {
    /// The block hash.
    pub hash: String,
    /// Other blocks at the same height (a fork), when known.
    pub others_at_height: Vec<AtHeight>,
    /// Sightings.
    pub seen: Vec<SeenRow>,
    /// Connections.
    pub connected: Vec<ConnectedRow>,
    /// Blocks built on it.
    pub children: Vec<AtHeight>,
    /// Disconnections.
    pub disconnected: Vec<DisconnectedRow>,
    /// Rejections.
    pub invalid: Vec<InvalidRow>,
    /// Validation timings.
    pub timing: Vec<TimingRow>,
    /// Each node's version when it validated the block.
    pub versions: Vec<VersionRow>,
    /// The propagation detector's summary.
    pub propagation: Option<PropagationRow>,
}

impl BlockData {
    /// Whether any table knows the block.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty() && self.connected.is_empty() && self.invalid.is_empty()
    }

    /// The height, from whichever table said it.
    pub fn height(&self) -> Option<u32> {
        self.connected
            .first()
            .map(|c| c.height)
            .or_else(|| self.seen.iter().find_map(|s| s.height))
            .or_else(|| self.invalid.iter().find_map(|i| i.height))
    }

    /// The fleet's first sighting of any kind, µs.
    pub fn first_us(&self) -> Option<i64> {
        let seen = self.seen.iter().map(|s| s.observed_at_us);
        let conn = self.connected.iter().map(|c| c.observed_at_us);
        let inv = self.invalid.iter().map(|i| i.observed_at_us);
        seen.chain(conn).chain(inv).min()
    }
}

/// One node's view of the block.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLine<'a> {
    /// The node.
    pub node: String,
    /// Its first sighting of any kind, µs.
    pub first_us: i64,
    /// First time per stage, µs.
    pub stages: BTreeMap<String, i64>,
    /// The peer that sent it the block (its first `cmpctblock` or `block` sighting naming
    /// one; for a rejected block, the peer of the rejection).
    pub peer: Option<u64>,
    /// The peer that announced the header first.
    pub header_peer: Option<u64>,
    /// When it connected the block.
    pub connected_us: Option<i64>,
    /// When it disconnected the block.
    pub disconnected_us: Option<i64>,
    /// Its rejection.
    pub invalid: Option<&'a InvalidRow>,
    /// Its validation timing.
    pub timing: Option<&'a TimingRow>,
    /// Its version then.
    pub version: Option<&'a str>,
}

/// One line per node that reported anything, earliest first sighting first.
pub fn node_lines(d: &BlockData) -> Vec<NodeLine<'_>> {
    let mut lines: BTreeMap<&str, NodeLine<'_>> = BTreeMap::new();
    fn line<'a, 'b>(
        lines: &'b mut BTreeMap<&'a str, NodeLine<'a>>,
        node: &'a str,
        at: i64,
    ) -> &'b mut NodeLine<'a> {
        let l = lines.entry(node).or_insert_with(|| NodeLine {
            node: node.to_string(),
            first_us: at,
            stages: BTreeMap::new(),
            peer: None,
            header_peer: None,
            connected_us: None,
            disconnected_us: None,
            invalid: None,
            timing: None,
            version: None,
        });
        l.first_us = l.first_us.min(at);
        l
    }
    let mut seen: Vec<&SeenRow> = d.seen.iter().collect();
    seen.sort_by_key(|s| s.observed_at_us);
    for s in seen {
        let l = line(&mut lines, &s.node, s.observed_at_us);
        l.stages.entry(s.stage.clone()).or_insert(s.observed_at_us);
        match s.stage.as_str() {
            "cmpctblock" | "block" if l.peer.is_none() => l.peer = s.peer,
            "header" if l.header_peer.is_none() => l.header_peer = s.peer,
            _ => {}
        }
    }
    for c in &d.connected {
        let l = line(&mut lines, &c.node, c.observed_at_us);
        l.connected_us = Some(
            l.connected_us
                .map_or(c.observed_at_us, |t| t.min(c.observed_at_us)),
        );
    }
    for x in &d.disconnected {
        let l = line(&mut lines, &x.node, x.at_us);
        l.disconnected_us = Some(x.at_us);
    }
    for i in &d.invalid {
        let l = line(&mut lines, &i.node, i.observed_at_us);
        if l.invalid.is_none() {
            l.invalid = Some(i);
        }
        if l.peer.is_none() {
            l.peer = i.peer;
        }
    }
    for t in &d.timing {
        if let Some(l) = lines.get_mut(t.node.as_str()) {
            l.timing.get_or_insert(t);
        }
    }
    for v in &d.versions {
        if let Some(l) = lines.get_mut(v.block_node.as_str()) {
            l.version = Some(&v.version);
        }
    }
    let mut out: Vec<NodeLine<'_>> = lines.into_values().collect();
    out.sort_by(|a, b| (a.first_us, &a.node).cmp(&(b.first_us, &b.node)));
    out
}

/// The page body.
pub fn render(d: &BlockData) -> String {
    let mut out = String::new();
    let height = d.height();
    let _ = write!(out, "<p><code>{}</code></p>", esc(&d.hash));
    if !d.others_at_height.is_empty() {
        out.push_str("<p class=\"warn\">Other blocks at this height: ");
        let links: Vec<String> = d
            .others_at_height
            .iter()
            .map(|o| format!("{} ({} node(s))", html::block_link(&o.hash), o.nodes))
            .collect();
        out.push_str(&links.join(", "));
        out.push_str(" — see the <a href=\"/tips\">fork tree</a>.</p>");
    }

    // The block's own figures.
    let first = d.connected.first();
    let fees = d.connected.iter().find_map(|c| c.fees_sat);
    let miner = d.connected.iter().find_map(|c| c.miner_tag.clone());
    let mut facts: Vec<(&str, String)> = Vec::new();
    let mut fact = |k: &'static str, v: String| facts.push((k, v));
    fact("height", opt(height, |h| h.to_string()));
    if let Some(c) = first {
        fact("parent", html::block_link(&c.prev));
    }
    let children: Vec<String> = d
        .children
        .iter()
        .map(|c| format!("{} ({} node(s))", html::block_link(&c.hash), c.nodes))
        .collect();
    if !children.is_empty() {
        fact("next", children.join(", "));
    }
    if let Some(c) = first {
        fact(
            "header time",
            format!("{} UTC", time::fmt_secs(i64::from(c.header_time))),
        );
        fact("miner", opt(miner.as_deref(), esc));
        fact("transactions", html::group(c.tx_count));
        fact(
            "size / weight",
            format!(
                "{} bytes / {} WU",
                html::group(c.size),
                html::group(c.weight)
            ),
        );
        fact("coinbase pays", html::sats(c.coinbase_value_sat));
        fact("subsidy", html::sats(c.subsidy_sat));
        let mut fee_cell = opt(fees, html::sats);
        if let Some(f) = fees {
            if c.coinbase_value_sat > c.subsidy_sat.saturating_add(f) {
                fee_cell.push_str(
                    " <span class=\"bad\">the coinbase pays more than subsidy + fees</span>",
                );
            }
        }
        fact("fees", fee_cell);
    }
    let connected: Vec<&str> = d.connected.iter().map(|c| c.node.as_str()).collect();
    let mut connected_nodes = connected.clone();
    connected_nodes.sort();
    connected_nodes.dedup();
    fact(
        "connected by",
        if connected_nodes.is_empty() {
            "<span class=\"dim\">no node</span>".into()
        } else {
            esc(&connected_nodes.join(", "))
        },
    );
    if !d.disconnected.is_empty() {
        let names: Vec<&str> = d.disconnected.iter().map(|x| x.node.as_str()).collect();
        fact(
            "disconnected by",
            format!(
                "<span class=\"warn\">{}</span> (reorged out: see the <a href=\"/tips\">fork tree</a>)",
                esc(&names.join(", "))
            ),
        );
    }
    if !d.invalid.is_empty() {
        let why: Vec<String> = d
            .invalid
            .iter()
            .map(|i| {
                format!(
                    "{}: <b>{}</b> {}",
                    esc(&i.node),
                    esc(&i.reason),
                    esc(i.detail.as_deref().unwrap_or(""))
                )
            })
            .collect();
        fact(
            "invalid",
            format!("<span class=\"bad\">{}</span>", why.join("<br>")),
        );
    }
    if let Some(p) = &d.propagation {
        let mut cell = format!(
            "first {} at {}, spread {} over {} node(s)",
            esc(&p.first_node),
            esc(&time::fmt_us(p.first_seen_us)),
            time::fmt_lag(p.spread_us),
            p.nodes
        );
        if !p.missing.is_empty() {
            let _ = write!(
                cell,
                "; <span class=\"bad\">never seen by {}</span>",
                esc(&p.missing.join(", "))
            );
        }
        fact("propagation", cell);
    }
    out.push_str(&html::facts(&facts));

    // Per node.
    let lines = node_lines(d);
    let t0 = d.first_us().unwrap_or(0);
    out.push_str("<h2>Per node</h2>");
    if lines.is_empty() {
        out.push_str(&html::empty("No node reported this block."));
    }
    let at = |us: Option<i64>| {
        opt(us, |us| {
            format!(
                "<span title=\"{} UTC\">{}</span>",
                esc(&time::fmt_us(us)),
                time::fmt_lag(us - t0)
            )
        })
    };
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            let mut row = vec![
                html::node_link(&l.node, l.first_us),
                opt(l.version, |v| esc(v.trim_matches('/'))),
                num(at(Some(l.first_us))),
            ];
            for stage in STAGES {
                row.push(num(at(l.stages.get(stage).copied())));
            }
            row.push(num(at(l.connected_us)));
            let mut delivered = opt(l.peer, |p| format!("peer={p}"));
            if let Some(h) = l.header_peer.filter(|h| Some(*h) != l.peer) {
                let _ = write!(delivered, "<br><span class=\"dim\">header: peer={h}</span>");
            }
            row.push(num(delivered));
            let t = l.timing;
            row.push(num(opt(t.and_then(|t| t.connect_total_ms), html::ms)));
            row.push(num(opt(t.and_then(|t| t.header_to_tip_ms), html::ms)));
            row.push(opt(t.and_then(|t| t.compact_prefilled.map(|_| t)), |t| {
                format!(
                    "prefilled {}, mempool {}, extra {}, requested {}",
                    t.compact_prefilled.unwrap_or(0),
                    t.compact_from_mempool.unwrap_or(0),
                    t.compact_from_extra_pool.unwrap_or(0),
                    t.compact_requested.unwrap_or(0)
                )
            }));
            row.push(opt(t.filter(|t| !t.stage_name.is_empty()), |t| {
                t.stage_name
                    .iter()
                    .zip(&t.stage_ms)
                    .map(|(n, ms)| format!("{}: {}", esc(n), html::ms(*ms)))
                    .collect::<Vec<_>>()
                    .join("<br>")
            }));
            let mut state = Vec::new();
            if let Some(i) = l.invalid {
                state.push(format!(
                    "<span class=\"bad\">invalid: {}</span>",
                    esc(&i.reason)
                ));
            }
            if l.disconnected_us.is_some() {
                state.push("<span class=\"warn\">disconnected</span>".into());
            }
            row.push(state.join("<br>"));
            row
        })
        .collect();
    if !rows.is_empty() {
        out.push_str(&html::table(
            &[
                "node",
                "version",
                "first seen",
                "header",
                "cmpctblock",
                "block",
                "tip",
                "connected",
                "delivered by",
                "connect total",
                "header → tip",
                "compact block",
                "validation stages",
                "",
            ],
            &rows,
        ));
        let _ = write!(
            out,
            "<p class=\"dim\">Times are after the fleet's first sighting at {} UTC; hover for \
             the time itself.</p>",
            esc(&time::fmt_us(t0))
        );
    }

    let timeline_rows: Vec<timeline::Row> = lines
        .iter()
        .map(|l| {
            let mut marks: Vec<Mark> = l
                .stages
                .iter()
                .map(|(k, at)| Mark {
                    kind: k.clone(),
                    at_us: *at,
                })
                .collect();
            if let Some(c) = l.connected_us {
                if !l.stages.contains_key("tip") {
                    marks.push(Mark {
                        kind: "connected".into(),
                        at_us: c,
                    });
                }
            }
            if let Some(i) = l.invalid {
                marks.push(Mark {
                    kind: "invalid".into(),
                    at_us: i.observed_at_us,
                });
            }
            timeline::Row {
                node: l.node.clone(),
                marks,
            }
        })
        .collect();
    out.push_str(&timeline::section(&timeline_rows, "sightings per node"));
    out
}

/// `GET /block/{hash_or_height}`.
pub async fn handler(
    State(app): State<App>,
    Path(raw): Path<String>,
) -> Result<Html<String>, PageError> {
    let db = &app.db;
    let (hash, mut others, asked_height) = match params::block_ref(&raw)? {
        BlockRef::Height(h) => {
            let mut at = db
                .rows::<AtHeight>("blocks at height", block::at_height(h.0))
                .await?;
            if at.is_empty() {
                return Err(PageError::NotFound(format!(
                    "No node connected a block at height {}.",
                    h.0
                )));
            }
            let first = at.remove(0);
            (first.hash, at, Some(h.0))
        }
        BlockRef::Hash(h) => (h.to_string(), Vec::new(), None),
    };
    let (seen, invalid, propagation) = tokio::try_join!(
        db.rows::<SeenRow>("block sightings", block::seen(&hash)),
        db.rows::<InvalidRow>("invalid block", block::invalid(&hash)),
        db.rows::<PropagationRow>("propagation", block::propagation("block", &hash)),
    )?;
    let mut d = BlockData {
        hash: hash.clone(),
        seen,
        invalid,
        propagation: propagation.into_iter().next(),
        ..BlockData::default()
    };
    let known_height = asked_height.or_else(|| d.height());
    d.connected = db
        .rows("block connections", block::connected(&hash, known_height))
        .await?;
    if d.is_empty() {
        return Err(PageError::NotFound(format!(
            "No node reported block {hash}."
        )));
    }
    let height = d.height();
    let t0 = d.first_us().unwrap_or(0);
    let (from, to) = (t0 - TIMING_WINDOW_US, t0 + TIMING_WINDOW_US);
    let (timing, versions) = tokio::try_join!(
        db.rows::<TimingRow>("block timing", block::timing(&hash, from, to)),
        db.rows::<VersionRow>("validation versions", block::versions(&hash, from, to)),
    )?;
    d.timing = timing;
    d.versions = versions;
    if let Some(h) = height {
        let (disconnected, children, at) = tokio::try_join!(
            db.rows::<DisconnectedRow>("block disconnections", block::disconnected(&hash, h)),
            db.rows::<AtHeight>("next blocks", block::children(&hash, h)),
            async {
                if asked_height.is_some() {
                    Ok(Vec::new())
                } else {
                    db.rows::<AtHeight>("blocks at height", block::at_height(h))
                        .await
                }
            },
        )?;
        d.disconnected = disconnected;
        d.children = children;
        if asked_height.is_none() {
            others = at.into_iter().filter(|o| o.hash != hash).collect();
        }
    }
    d.others_at_height = others;
    let title = match height {
        Some(h) => format!("Block {h}"),
        None => "Block".to_string(),
    };
    Ok(Html(html::page(&title, "", None, &render(&d))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(node: &str, stage: &str, at: i64, peer: Option<u64>) -> SeenRow {
        SeenRow {
            node: node.into(),
            stage: stage.into(),
            observed_at_us: at,
            peer,
            height: Some(112),
            source: "log".into(),
        }
    }

    fn sample() -> BlockData {
        let t0 = 1_768_478_400_000_000;
        BlockData {
            hash: format!("{:064x}", 112),
            seen: vec![
                seen("n0", "header", t0, Some(7)),
                seen("n0", "cmpctblock", t0 + 2_000, Some(7)),
                seen("n0", "tip", t0 + 15_000, None),
                seen("n1", "header", t0 + 120_000, None),
                seen("n1", "block", t0 + 180_000, Some(2)),
                seen("n1", "tip", t0 + 250_000, None),
            ],
            connected: vec![ConnectedRow {
                node: "n0".into(),
                observed_at_us: t0 + 15_500,
                height: 112,
                prev: format!("{:064x}", 111),
                header_time: 1_768_478_390,
                size: 1474,
                weight: 3934,
                tx_count: 7,
                coinbase_value_sat: 5_000_020_585,
                subsidy_sat: 5_000_000_000,
                fees_sat: Some(20_585),
                miner_tag: Some("/bmon-pool/".into()),
                source: "zmq".into(),
            }],
            timing: vec![TimingRow {
                node: "n0".into(),
                observed_at_us: t0 + 15_000,
                stage_name: vec!["Connect block".into(), "Verify 6 txins".into()],
                stage_ms: vec![12.5, 0.25],
                connect_total_ms: Some(13.0),
                header_to_tip_ms: Some(250.5),
                compact_prefilled: Some(1),
                compact_from_mempool: Some(5),
                compact_from_extra_pool: Some(0),
                compact_requested: Some(1),
            }],
            versions: vec![VersionRow {
                block_node: "n0".into(),
                version: "/Satoshi:30.0.0/".into(),
            }],
            ..BlockData::default()
        }
    }

    #[test]
    fn each_node_gets_its_stages_peer_and_lag() {
        let d = sample();
        let lines = node_lines(&d);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].node, "n0");
        assert_eq!(lines[0].peer, Some(7));
        assert_eq!(lines[0].header_peer, Some(7));
        assert_eq!(lines[0].stages.len(), 3);
        assert_eq!(lines[0].version, Some("/Satoshi:30.0.0/"));
        assert_eq!(lines[1].node, "n1");
        assert_eq!(lines[1].peer, Some(2));
        assert_eq!(lines[1].header_peer, None);
        assert_eq!(lines[1].first_us - lines[0].first_us, 120_000);
    }

    #[test]
    fn the_page_lists_stages_reconstruction_and_the_blocks_figures() {
        let page = render(&sample());
        assert!(
            page.contains("Connect block: 12.5 ms<br>Verify 6 txins: 0.2 ms"),
            "{page}"
        );
        assert!(
            page.contains("prefilled 1, mempool 5, extra 0, requested 1"),
            "{page}"
        );
        assert!(page.contains("/bmon-pool/"), "{page}");
        assert!(page.contains("peer=7"), "{page}");
        assert!(page.contains(">+120 ms</span>"), "{page}");
        assert!(page.contains("Satoshi:30.0.0"), "{page}");
        assert!(page.contains("20\u{202f}585 sat"), "{page}");
        assert!(!page.contains("more than subsidy"), "{page}");
        assert!(page.contains("<svg"), "timeline: {page}");
    }

    #[test]
    fn a_coinbase_paying_too_much_is_flagged() {
        let mut d = sample();
        d.connected[0].coinbase_value_sat = 5_000_020_586;
        assert!(render(&d).contains("the coinbase pays more than subsidy + fees"));
    }

    #[test]
    fn a_rejection_shows_its_reason() {
        let mut d = sample();
        d.invalid.push(InvalidRow {
            node: "n2".into(),
            observed_at_us: 5,
            height: Some(112),
            reason: "bad-cb-amount".into(),
            detail: Some("coinbase pays too much".into()),
            peer: Some(3),
            source: "log".into(),
        });
        let page = render(&d);
        assert!(
            page.contains("n2: <b>bad-cb-amount</b> coinbase pays too much"),
            "{page}"
        );
        assert!(page.contains("invalid: bad-cb-amount"), "{page}");
    }
}
