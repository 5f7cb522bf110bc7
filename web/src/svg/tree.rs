//! The fork tree as SVG: one column per height, the active chain on the top row, each side
//! branch on a row of its own; boxes link to the block pages. Tips carry the nodes holding
//! them, stale blocks the nodes that reorged them out, invalid blocks Core's reason; reorgs are
//! marked at their fork point with their depth.

use std::fmt::Write;

use super::{frame, text, title};
use crate::forktree::{BlockState, ForkTree, TreeBlock};
use crate::html::{esc, url_component};

const COL: f64 = 104.0;
const BOX_W: f64 = 86.0;
const BOX_H: f64 = 36.0;
const ROW: f64 = 74.0;
const LEFT: f64 = 12.0;
const AXIS: f64 = 18.0;
const LABEL_ROW: f64 = 14.0;
/// Characters of a note under a box that fit its column.
const NOTE_CHARS: usize = 16;
/// Approximate width of one character of the 11 px monospace labels.
const CHAR_W: f64 = 6.7;

/// The picture of `tree` (an explanatory line when it has no block).
pub fn render(tree: &ForkTree) -> String {
    if tree.blocks.is_empty() {
        return "<p class=\"dim\">No block in this window: no node connected, rejected or \
                reported one yet.</p>"
            .into();
    }
    let x = |height: u32| LEFT + f64::from(height.saturating_sub(tree.low)) * COL;

    // Reorg labels above their fork column, stacked so they never overlap.
    let mut label_rows: Vec<f64> = Vec::new(); // right end of the last label in each row
    let mut labels = Vec::new();
    for r in &tree.reorgs {
        // A node reports a reorg once per source (ZMQ, debug.log): name it once.
        let mut nodes: Vec<&str> = r.nodes.iter().map(|(n, _)| n.as_str()).collect();
        nodes.sort_unstable();
        nodes.dedup();
        let label = format!("↶ reorg depth {}: {}", r.depth, nodes.join(", "));
        let lx = x(r.fork_height) + BOX_W / 2.0;
        let width = label.chars().count() as f64 * CHAR_W;
        let row = match label_rows.iter().position(|end| *end + 8.0 < lx) {
            Some(i) => i,
            None => {
                label_rows.push(0.0);
                label_rows.len() - 1
            }
        };
        label_rows[row] = lx + width;
        labels.push((lx, row, label, r));
    }
    let top = AXIS + LABEL_ROW * label_rows.len() as f64 + 10.0;
    let y = |lane: u32| top + f64::from(lane) * ROW;

    let mut body = String::new();
    // Height axis.
    for h in tree.low..=tree.high {
        body.push_str(&text(
            x(h) + BOX_W / 2.0,
            12.0,
            "text-anchor=\"middle\" fill=\"#777\"",
            &h.to_string(),
        ));
    }
    for (lx, row, label, r) in &labels {
        let ly = AXIS + LABEL_ROW * (*row as f64) + 10.0;
        let _ = write!(
            body,
            "<g>{}{}<line x1=\"{lx:.1}\" y1=\"{:.1}\" x2=\"{lx:.1}\" y2=\"{:.1}\" \
             stroke=\"#b00020\" stroke-dasharray=\"3 2\"/></g>",
            title(&format!(
                "fork at {} ({}); {} → {}",
                r.fork_height, r.fork_point, r.old_tip, r.new_tip
            )),
            text(*lx, ly, "fill=\"#b00020\"", label),
            ly + 3.0,
            y(0)
        );
    }
    // Edges first, boxes over them.
    for (i, b) in tree.blocks.iter().enumerate() {
        let Some(p) = tree.parent(i) else { continue };
        let (px, py) = (x(p.height) + BOX_W, y(p.lane) + BOX_H / 2.0);
        let (cx, cy) = (x(b.height), y(b.lane) + BOX_H / 2.0);
        let dash = if b.parent_inferred {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        };
        let stroke = match b.state {
            BlockState::Active => "#2e7d32",
            BlockState::Invalid => "#b00020",
            _ => "#888",
        };
        let mid = px + (cx - px) / 2.0;
        let _ = write!(
            body,
            "<path d=\"M{px:.1},{py:.1} C{mid:.1},{py:.1} {mid:.1},{cy:.1} {cx:.1},{cy:.1}\" \
             fill=\"none\" stroke=\"{stroke}\" stroke-width=\"1.5\"{dash}/>"
        );
        if b.gap > 0 {
            body.push_str(&text(
                cx - 14.0,
                cy - 4.0,
                "text-anchor=\"end\" fill=\"#777\"",
                &format!("+{} unseen", b.gap),
            ));
        }
    }
    for b in &tree.blocks {
        body.push_str(&block(b, x(b.height), y(b.lane)));
    }
    let width = x(tree.high) + BOX_W + LEFT + 60.0;
    let height = y(tree.lanes.saturating_sub(1)) + ROW;
    frame(
        width.ceil() as u32,
        height.ceil() as u32,
        true,
        "fork tree",
        &body,
    )
}

fn block(b: &TreeBlock, bx: f64, by: f64) -> String {
    let (fill, stroke, dash) = match b.state {
        BlockState::Active => ("#e3f3e6", "#2e7d32", ""),
        BlockState::Stale => ("#eeeeee", "#777", ""),
        BlockState::Invalid => ("#fde2e2", "#b00020", ""),
        BlockState::HeadersOnly => ("#ffffff", "#777", " stroke-dasharray=\"4 3\""),
    };
    let tail: String = {
        let c: Vec<char> = b.hash.chars().collect();
        c[c.len().saturating_sub(8)..].iter().collect()
    };
    let mut notes: Vec<(String, &str)> = Vec::new();
    if !b.holders.is_empty() {
        let names: Vec<&str> = b.holders.iter().map(String::as_str).collect();
        notes.push((format!("tip: {}", names.join(" ")), "#1d2733"));
    }
    if let Some(r) = b.invalid.first() {
        notes.push((format!("✗ {}", r.reason), "#b00020"));
    }
    if !b.disconnected_by.is_empty() && b.state != BlockState::Active {
        let names: Vec<&str> = b.disconnected_by.iter().map(String::as_str).collect();
        notes.push((format!("reorged out: {}", names.join(" ")), "#a15c00"));
    }
    if b.state == BlockState::HeadersOnly {
        let names: Vec<&str> = b.tip_status.keys().map(String::as_str).collect();
        notes.push((format!("header: {}", names.join(" ")), "#777"));
    }
    let mut tip = format!("{} at height {} ({})", b.hash, b.height, b.state.as_str());
    if let Some(m) = &b.miner {
        let _ = write!(tip, "\nminer: {m}");
    }
    for (label, set) in [
        ("tip of", &b.holders),
        ("was the tip of", &b.was_tip_of),
        ("connected by", &b.connected_by),
        ("disconnected by", &b.disconnected_by),
    ] {
        if !set.is_empty() {
            let names: Vec<&str> = set.iter().map(String::as_str).collect();
            let _ = write!(tip, "\n{label}: {}", names.join(", "));
        }
    }
    for r in &b.invalid {
        let _ = write!(
            tip,
            "\ninvalid on {}: {} {}",
            r.node,
            r.reason,
            r.detail.as_deref().unwrap_or("")
        );
    }
    for (node, status) in &b.tip_status {
        let _ = write!(tip, "\n{node}: {status} tip");
    }
    let mut out = format!("<a href=\"/block/{}\">", url_component(&b.hash));
    out.push_str(&title(&tip));
    let _ = write!(
        out,
        "<rect x=\"{bx:.1}\" y=\"{by:.1}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"4\" \
         fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"{dash} data-state=\"{}\"/>",
        b.state.as_str()
    );
    out.push_str(&text(
        bx + BOX_W / 2.0,
        by + 15.0,
        "text-anchor=\"middle\" font-weight=\"bold\"",
        &b.height.to_string(),
    ));
    out.push_str(&text(
        bx + BOX_W / 2.0,
        by + 29.0,
        "text-anchor=\"middle\" fill=\"#555\"",
        &format!("…{tail}"),
    ));
    out.push_str("</a>");
    for (k, (note, color)) in notes.iter().take(2).enumerate() {
        let mut shown: String = note.chars().take(NOTE_CHARS).collect();
        if note.chars().count() > NOTE_CHARS {
            shown.push('…');
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\" font-size=\"10\">{}</text>",
            bx,
            by + BOX_H + 12.0 + 12.0 * k as f64,
            esc(&shown)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forktree::tests::{h, scenario_tree};

    #[test]
    fn every_block_is_a_linked_box_with_its_state() {
        let t = scenario_tree();
        let svg = render(&t);
        assert!(
            svg.starts_with("<div style=\"overflow-x:auto\"><svg"),
            "{svg}"
        );
        for b in &t.blocks {
            assert!(
                svg.contains(&format!("href=\"/block/{}\"", b.hash)),
                "{}",
                b.hash
            );
        }
        assert_eq!(svg.matches("data-state=\"active\"").count(), 4);
        assert_eq!(svg.matches("data-state=\"stale\"").count(), 1);
        assert_eq!(svg.matches("data-state=\"invalid\"").count(), 1);
        assert_eq!(svg.matches("data-state=\"headers-only\"").count(), 1);
    }

    #[test]
    fn the_reorg_tips_and_invalid_reason_are_written_on_the_tree() {
        let svg = render(&scenario_tree());
        assert!(svg.contains("↶ reorg depth 1: n2"), "{svg}");
        assert!(svg.contains("tip: n0 n1 n2"), "{svg}");
        assert!(svg.contains("✗ bad-cb-amount"), "{svg}");
        assert!(svg.contains("reorged out: n2"), "{svg}");
        assert!(svg.contains("+1 unseen"), "{svg}");
        // Side branches sit below the active row: the stale block's box is lower than a3's.
        let y_of = |hash: &str| -> f64 {
            let at = svg.find(&format!("/block/{}", h(hash))).unwrap();
            let rect = &svg[at..];
            let y = rect
                .split("y=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            y.parse().unwrap()
        };
        assert!(y_of("b2") > y_of("a3"));
        assert_eq!(y_of("a0"), y_of("a3"));
    }

    #[test]
    fn names_and_reasons_from_the_data_are_escaped() {
        let mut t = scenario_tree();
        for b in &mut t.blocks {
            if let Some(r) = b.invalid.first_mut() {
                r.reason = "<script>x</script>".into();
            }
        }
        let svg = render(&t);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
    }
}
