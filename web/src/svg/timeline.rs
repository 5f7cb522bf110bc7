//! When each node saw something (a block's header, compact block, block and tip; a
//! transaction's arrival, rejection, removal), one row per node on a shared time axis starting
//! at the fleet's first sighting.
//!
//! The axis is logarithmic in milliseconds after the first sighting: propagation spans from
//! a few milliseconds to minutes, and a linear axis would pile every healthy node onto zero.

use std::fmt::Write;

use super::{frame, text, title};
use crate::html::esc;
use crate::time;

/// One thing a node saw at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// What (`header`, `cmpctblock`, `block`, `tip`, `connected`, `seen`, `rejected`,
    /// `removed`, `replaced`, `invalid`, ...).
    pub kind: String,
    /// When, µs.
    pub at_us: i64,
}

/// One node's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The node.
    pub node: String,
    /// Its marks, any order.
    pub marks: Vec<Mark>,
}

const LEFT: f64 = 110.0;
const PLOT_W: f64 = 640.0;
const RIGHT: f64 = 90.0;
const ROW_H: f64 = 22.0;
const TOP: f64 = 30.0;

/// Colour of a mark kind.
fn color(kind: &str) -> &'static str {
    match kind {
        "header" => "#8d6e63",
        "cmpctblock" => "#1e88e5",
        "block" => "#6a1b9a",
        "tip" | "connected" => "#2e7d32",
        "seen" => "#1e88e5",
        "rejected" | "invalid" => "#b00020",
        "removed" => "#757575",
        "replaced" => "#ef6c00",
        _ => "#9e9e9e",
    }
}

/// x of a time `us` after `t0`, on a log axis reaching `max_ms`.
fn x_of(us: i64, t0: i64, max_ms: f64) -> f64 {
    let ms = ((us - t0) as f64 / 1000.0).max(0.0);
    LEFT + PLOT_W * (1.0 + ms).ln() / (1.0 + max_ms).ln()
}

/// A page's "Timeline" section around [`render`]: nothing when no row has a mark.
pub fn section(rows: &[Row], label: &str) -> String {
    let svg = render(rows, label);
    if svg.is_empty() {
        svg
    } else {
        format!("<h2>Timeline</h2>{svg}")
    }
}

/// The picture; `rows` in the order to draw them. Empty rows are skipped.
pub fn render(rows: &[Row], label: &str) -> String {
    let rows: Vec<&Row> = rows.iter().filter(|r| !r.marks.is_empty()).collect();
    let Some(t0) = rows
        .iter()
        .flat_map(|r| r.marks.iter().map(|m| m.at_us))
        .min()
    else {
        return String::new();
    };
    let t_max = rows
        .iter()
        .flat_map(|r| r.marks.iter().map(|m| m.at_us))
        .max()
        .unwrap_or(t0);
    let max_ms = ((t_max - t0) as f64 / 1000.0).max(10.0);
    let plot_bottom = TOP + ROW_H * rows.len() as f64;
    let height = plot_bottom + 40.0;
    let mut body = String::new();

    // Axis: 0 and powers of ten in milliseconds.
    let mut ticks = vec![0.0];
    let mut t = 1.0;
    while t <= max_ms {
        ticks.push(t);
        t *= 10.0;
    }
    for ms in ticks {
        let x = x_of(t0 + (ms * 1000.0) as i64, t0, max_ms);
        let _ = write!(
            body,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#e0e0e0\"/>",
            TOP - 6.0,
            plot_bottom + 2.0
        );
        body.push_str(&text(
            x,
            plot_bottom + 14.0,
            "text-anchor=\"middle\" fill=\"#777\"",
            &tick_label(ms),
        ));
    }
    body.push_str(&text(
        LEFT,
        14.0,
        "fill=\"#555\"",
        &format!("after the first sighting at {} UTC", time::fmt_us(t0)),
    ));

    for (i, r) in rows.iter().enumerate() {
        let y = TOP + ROW_H * i as f64 + ROW_H / 2.0;
        body.push_str(&text(LEFT - 8.0, y + 4.0, "text-anchor=\"end\"", &r.node));
        let _ = write!(
            body,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#f0f0f0\"/>",
            LEFT + PLOT_W
        );
        let mut marks: Vec<&Mark> = r.marks.iter().collect();
        marks.sort_by_key(|m| m.at_us);
        for m in &marks {
            let x = x_of(m.at_us, t0, max_ms);
            let _ = write!(
                body,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{}\" data-kind=\"{}\">{}</circle>",
                color(&m.kind),
                esc(&m.kind),
                title(&format!(
                    "{} {} at {} ({})",
                    r.node,
                    m.kind,
                    time::fmt_us(m.at_us),
                    time::fmt_lag(m.at_us - t0)
                ))
            );
        }
        if let Some(first) = marks.first() {
            body.push_str(&text(
                LEFT + PLOT_W + 8.0,
                y + 4.0,
                "fill=\"#555\"",
                &time::fmt_lag(first.at_us - t0),
            ));
        }
    }
    // Legend of the kinds present.
    let mut kinds: Vec<&str> = Vec::new();
    for r in &rows {
        for m in &r.marks {
            if !kinds.contains(&m.kind.as_str()) {
                kinds.push(&m.kind);
            }
        }
    }
    let mut lx = LEFT;
    let ly = plot_bottom + 32.0;
    for k in kinds {
        let _ = write!(
            body,
            "<circle cx=\"{lx:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{}\"/>",
            ly - 4.0,
            color(k)
        );
        body.push_str(&text(lx + 7.0, ly, "fill=\"#555\"", k));
        lx += 16.0 + 6.7 * k.chars().count() as f64;
    }
    frame(
        (LEFT + PLOT_W + RIGHT) as u32,
        height.ceil() as u32,
        false,
        label,
        &body,
    )
}

fn tick_label(ms: f64) -> String {
    if ms == 0.0 {
        "0".into()
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.0} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(kind: &str, at_us: i64) -> Mark {
        Mark {
            kind: kind.into(),
            at_us,
        }
    }

    #[test]
    fn each_node_is_a_row_with_its_lag_behind_the_first_sighting() {
        let rows = vec![
            Row {
                node: "n0".into(),
                marks: vec![mark("header", 1_000_000), mark("tip", 1_050_000)],
            },
            Row {
                node: "n1".into(),
                marks: vec![mark("header", 1_250_000)],
            },
            Row {
                node: "silent".into(),
                marks: vec![],
            },
        ];
        let svg = render(&rows, "sightings");
        assert!(svg.contains(">n0</text>"), "{svg}");
        assert!(svg.contains(">n1</text>"), "{svg}");
        assert!(!svg.contains("silent"), "{svg}");
        assert_eq!(
            svg.matches("<circle cx").count(),
            3 + 2,
            "marks and legend: {svg}"
        );
        assert!(svg.contains(">+250 ms</text>"), "{svg}");
        assert!(svg.contains(">0 ms</text>"), "{svg}");
        // Later marks sit further right.
        let cx = |kind: &str, node: &str| -> f64 {
            let needle = format!("{node} {kind} at");
            let at = svg.find(&needle).unwrap();
            let before = &svg[..at];
            let c = before.rfind("cx=\"").unwrap();
            before[c + 4..].split('"').next().unwrap().parse().unwrap()
        };
        assert!(cx("header", "n0") < cx("tip", "n0"));
        assert!(cx("tip", "n0") < cx("header", "n1"));
        assert_eq!(cx("header", "n0"), LEFT);
    }

    #[test]
    fn nothing_to_draw_draws_nothing() {
        assert_eq!(render(&[], "x"), "");
    }

    #[test]
    fn node_names_are_escaped() {
        let rows = vec![Row {
            node: "<b>n</b>".into(),
            marks: vec![mark("seen", 5)],
        }];
        let svg = render(&rows, "x");
        assert!(!svg.contains("<b>"), "{svg}");
    }
}
