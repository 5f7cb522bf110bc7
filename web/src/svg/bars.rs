//! Horizontal bars: one row per label, a thick bar for the median and a thin one reaching
//! the 90th percentile, on a shared linear axis (validation time per version).

use std::fmt::Write;

use super::{frame, text, title};

/// One row.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The label (a version).
    pub label: String,
    /// The median.
    pub median: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// How many values (blocks) it summarises.
    pub count: u64,
}

const LEFT: f64 = 160.0;
const PLOT_W: f64 = 520.0;
const ROW_H: f64 = 24.0;

/// The picture, values in `unit`; empty when there is nothing to draw.
pub fn render(bars: &[Bar], unit: &str, label: &str) -> String {
    if bars.is_empty() {
        return String::new();
    }
    let max = bars
        .iter()
        .map(|b| b.p90.max(b.median))
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let scale = |v: f64| PLOT_W * (v.max(0.0) / max);
    let mut body = String::new();
    for (i, b) in bars.iter().enumerate() {
        let y = 8.0 + ROW_H * i as f64;
        body.push_str(&text(LEFT - 8.0, y + 12.0, "text-anchor=\"end\"", &b.label));
        let _ = write!(
            body,
            "<g>{}<rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{:.1}\" height=\"2\" fill=\"#90a4ae\"/>\
             <rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" fill=\"#1e88e5\" data-median=\"{:.3}\"/></g>",
            title(&format!(
                "{}: median {:.1} {unit}, p90 {:.1} {unit}, {} blocks",
                b.label, b.median, b.p90, b.count
            )),
            y + 8.0,
            scale(b.p90),
            y + 3.0,
            scale(b.median),
            b.median
        );
        body.push_str(&text(
            LEFT + scale(b.p90.max(b.median)) + 6.0,
            y + 12.0,
            "fill=\"#555\"",
            &format!("{:.1} / {:.1} {unit}", b.median, b.p90),
        ));
    }
    frame(
        (LEFT + PLOT_W + 150.0) as u32,
        (16.0 + ROW_H * bars.len() as f64) as u32,
        false,
        label,
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_bar_is_the_slowest_and_labels_are_escaped() {
        let bars = vec![
            Bar {
                label: "/Satoshi:29.0.0/".into(),
                median: 200.0,
                p90: 400.0,
                count: 10,
            },
            Bar {
                label: "<v30>".into(),
                median: 100.0,
                p90: 150.0,
                count: 3,
            },
        ];
        let svg = render(&bars, "ms", "validation");
        assert!(svg.contains("&lt;v30&gt;"), "{svg}");
        let width = |median: &str| -> f64 {
            let at = svg.find(&format!("data-median=\"{median}\"")).unwrap();
            let before = &svg[..at];
            let w = before.rfind("width=\"").unwrap();
            before[w + 7..].split('"').next().unwrap().parse().unwrap()
        };
        assert!(width("200.000") > width("100.000"));
        assert_eq!(width("200.000"), PLOT_W / 2.0);
        assert_eq!(render(&[], "ms", "x"), "");
    }
}
