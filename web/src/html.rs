//! The HTML every page shares: escaping, the layout (navigation, style, optional refresh),
//! links to blocks, transactions and a node's events, and small formatters.
//!
//! Everything that comes from ClickHouse or from the request goes through [`esc`] (text and
//! attribute values) or [`url_component`] (inside a link's query string) before it reaches the
//! page. Pages are plain HTML and inline SVG; no script runs in them.

use std::fmt::Write;

/// Escapes text for HTML (and XML/SVG) element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a value for a URL's query string or path segment (everything but
/// unreserved characters).
pub fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The pages in the navigation bar: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/", "Fleet"),
    ("/tips", "Fork tree"),
    ("/alerts", "Alerts"),
    ("/logs", "Logs"),
    ("/live", "Live logs"),
    ("/mempools", "Mempools"),
    ("/validation", "Validation"),
    ("/peers", "Peers"),
];

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}\
nav{background:#1d2733;padding:.5em 1em;display:flex;gap:1em;align-items:center;flex-wrap:wrap}\
nav a{color:#cfd8e3;text-decoration:none}nav a.on{color:#fff;font-weight:600}\
nav b{color:#f7931a}nav form{margin-left:auto}\
main{padding:1em 1.5em}h1{font-size:1.4em;margin:.2em 0 .6em}h2{font-size:1.15em;margin:1.2em 0 .4em}\
table{border-collapse:collapse;background:#fff;margin:.3em 0 1em}\
th,td{border:1px solid #dde;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#eef1f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
code,.h{font-family:ui-monospace,monospace;font-size:.92em}.h{white-space:nowrap}\
.bad{color:#b00020;font-weight:600}.warn{color:#a15c00}.ok{color:#1b7a2f}.dim{color:#777}\
.firing{color:#b00020;font-weight:600}.resolved{color:#1b7a2f}\
tr.here td{background:#fff6d5}\
.err{background:#fff;border:2px solid #b00020;padding:1em;max-width:60em}\
form.q{display:flex;gap:.6em;flex-wrap:wrap;align-items:end;margin-bottom:1em}\
form.q label{display:flex;flex-direction:column;font-size:.85em;color:#555}\
svg{background:#fff;border:1px solid #dde;max-width:100%;height:auto}\
svg text{font:11px ui-monospace,monospace}\
details{margin:.2em 0}";

/// A whole page: layout, navigation (with `active` highlighted), `body`. With `refresh`, the
/// browser reloads it every so many seconds (a meta refresh: no script needed).
pub fn page(title: &str, active: &str, refresh: Option<u32>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 4096);
    out.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
    if let Some(secs) = refresh {
        let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{secs}\">");
    }
    let _ = write!(
        out,
        "<title>{} · bmon</title><style>{STYLE}</style></head><body><nav><b>bmon</b>",
        esc(title)
    );
    for (path, label) in NAV {
        let class = if *path == active { " class=\"on\"" } else { "" };
        let _ = write!(out, "<a href=\"{path}\"{class}>{label}</a>");
    }
    out.push_str(
        "<form action=\"/search\" method=\"get\"><input name=\"q\" size=\"40\" \
         placeholder=\"block hash, height or txid\"></form></nav><main>",
    );
    let _ = write!(out, "<h1>{}</h1>", esc(title));
    out.push_str(body);
    out.push_str("</main></body></html>");
    out
}

/// A hash shortened for tables and drawings: the last 12 hex digits after an ellipsis
/// (mainnet hashes all start with zeros).
pub fn short(hash: &str) -> String {
    let chars: Vec<char> = hash.chars().collect();
    if chars.len() <= 16 {
        return hash.to_string();
    }
    let tail: String = chars[chars.len() - 12..].iter().collect();
    format!("…{tail}")
}

/// A link to a block's page, labelled with the short hash (full hash in the tooltip).
pub fn block_link(hash: &str) -> String {
    if hash.is_empty() {
        return "-".into();
    }
    format!(
        "<a class=\"h\" href=\"/block/{}\" title=\"{}\">{}</a>",
        url_component(hash),
        esc(hash),
        esc(&short(hash))
    )
}

/// A link to a transaction's page, labelled with the short txid.
pub fn tx_link(txid: &str) -> String {
    if txid.is_empty() {
        return "-".into();
    }
    format!(
        "<a class=\"h\" href=\"/tx/{}\" title=\"{}\">{}</a>",
        url_component(txid),
        esc(txid),
        esc(&short(txid))
    )
}

/// The URL of what `node` logged and recorded around `at_us`.
pub fn events_url(node: &str, at_us: i64) -> String {
    format!("/events?node={}&amp;at={at_us}", url_component(node))
}

/// A node's name linking to its events around `at_us`.
pub fn node_link(node: &str, at_us: i64) -> String {
    format!(
        "<a href=\"{}\" title=\"events on {} around this time\">{}</a>",
        events_url(node, at_us),
        esc(node),
        esc(node)
    )
}

/// Satoshis with thousands separators: `5 000 020 585 sat`.
pub fn sats(v: u64) -> String {
    format!("{} sat", group(v))
}

/// An integer with thin thousands separators.
pub fn group(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// Milliseconds with one decimal.
pub fn ms(v: f64) -> String {
    format!("{v:.1} ms")
}

/// An optional value, or a dim dash.
pub fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    match v {
        Some(v) => f(v),
        None => "<span class=\"dim\">-</span>".into(),
    }
}

/// A `<table>` with a header row; `rows` are already-escaped cells. A cell starting with
/// `\u{1}` is right-aligned (numbers): use [`num`].
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for cell in r {
            match cell.strip_prefix('\u{1}') {
                Some(n) => {
                    let _ = write!(out, "<td class=\"n\">{n}</td>");
                }
                None => {
                    let _ = write!(out, "<td>{cell}</td>");
                }
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// A two-column table of labelled values (`values` already escaped).
pub fn facts(rows: &[(&str, String)]) -> String {
    let mut out = String::from("<table><tbody>");
    for (label, value) in rows {
        let _ = write!(out, "<tr><th>{}</th><td>{value}</td></tr>", esc(label));
    }
    out.push_str("</tbody></table>");
    out
}

/// A right-aligned table cell (see [`table`]).
pub fn num(text: impl std::fmt::Display) -> String {
    format!("\u{1}{text}")
}

/// A paragraph in dim text: what an empty section means and what to check.
pub fn empty(text: &str) -> String {
    format!("<p class=\"dim\">{}</p>", esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_data_is_shown_not_run() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let p = page("<b>t</b>", "/", None, "");
        assert!(p.contains("<h1>&lt;b&gt;t&lt;/b&gt;</h1>"), "{p}");
        assert!(!p.contains("<b>t</b>"), "{p}");
    }

    #[test]
    fn links_escape_what_they_carry() {
        let l = block_link("\"><img src=x>");
        assert!(!l.contains("<img"), "{l}");
        assert!(l.contains("/block/%22%3E%3Cimg%20src%3Dx%3E"), "{l}");
        assert_eq!(
            node_link("n0", 5),
            "<a href=\"/events?node=n0&amp;at=5\" title=\"events on n0 around this time\">n0</a>"
        );
        assert_eq!(url_component("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn the_refresh_is_a_meta_tag_only_when_asked() {
        assert!(page("Fleet", "/", Some(5), "").contains("http-equiv=\"refresh\" content=\"5\""));
        assert!(!page("Fleet", "/", None, "").contains("refresh"));
        assert!(page("Fleet", "/", None, "").contains("<a href=\"/\" class=\"on\">Fleet</a>"));
    }

    #[test]
    fn numbers_read_easily() {
        assert_eq!(group(5_000_020_585), "5\u{202f}000\u{202f}020\u{202f}585");
        assert_eq!(group(999), "999");
        let hash = format!("{}abcdef123456", "0".repeat(52));
        assert_eq!(short(&hash), "…abcdef123456");
        assert_eq!(short("abc"), "abc");
        let t = table(&["a", "b"], &[vec!["x".into(), num(3)]]);
        assert!(t.contains("<td>x</td><td class=\"n\">3</td>"), "{t}");
    }
}
