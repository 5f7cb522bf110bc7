//! Pictures drawn in Rust as inline SVG: the fork tree ([`tree`]), a block's sightings per
//! node ([`timeline`]) and validation times per version ([`bars`]). Pure functions from data
//! to markup; every text from data is escaped.

pub mod bars;
pub mod timeline;
pub mod tree;

use std::fmt::Write;

use crate::html::esc;

/// An `<svg>` element of `width`×`height` around `body`. `wide` pictures keep their size and
/// scroll sideways instead of shrinking their text.
pub fn frame(width: u32, height: u32, wide: bool, label: &str, body: &str) -> String {
    let style = if wide {
        " style=\"max-width:none\""
    } else {
        ""
    };
    let mut out = String::new();
    if wide {
        out.push_str("<div style=\"overflow-x:auto\">");
    }
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\"{style}>{body}</svg>",
        esc(label)
    );
    if wide {
        out.push_str("</div>");
    }
    out
}

/// A `<text>` at (`x`, `y`) with escaped content and optional extra attributes (bmon's own,
/// never from data).
pub fn text(x: f64, y: f64, attrs: &str, content: &str) -> String {
    format!(
        "<text x=\"{x:.1}\" y=\"{y:.1}\" {attrs}>{}</text>",
        esc(content)
    )
}

/// A tooltip (`<title>`) with escaped content.
pub fn title(content: &str) -> String {
    format!("<title>{}</title>", esc(content))
}
