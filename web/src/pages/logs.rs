//! `/logs`: search the nodes' debug.log lines by node, time range, category, level and text.
//! Each line links to `/events` on its node at its time: what else the node recorded then.

use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;

use crate::error::PageError;
use crate::html::{self, esc};
use crate::params::Params;
use crate::server::App;
use crate::sql::logs::{self, LogRow, Search};
use crate::time;

/// Lines shown unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 200;
/// The most lines one page shows.
pub const MAX_LIMIT: u32 = 5000;
/// The default range ends now and starts this long before, µs.
pub const DEFAULT_RANGE_US: i64 = 3600 * time::SEC;
/// The longest range one search may cover, µs.
pub const MAX_RANGE_US: i64 = 31 * 86_400 * time::SEC;

/// Reads the search form; `now_us` ends the default range.
pub fn search_from(p: &Params, now_us: i64) -> Result<Search, PageError> {
    let to = p.time("to")?.unwrap_or(now_us);
    let from = p.time("from")?.unwrap_or(to - DEFAULT_RANGE_US);
    if from >= to {
        return Err(PageError::BadRequest("`from` must be before `to`".into()));
    }
    if to - from > MAX_RANGE_US {
        return Err(PageError::BadRequest(
            "the time range is longer than 31 days: narrow it".into(),
        ));
    }
    Ok(Search {
        node: p.node("node")?.map(|n| n.as_str().to_string()),
        from_us: from,
        to_us: to,
        category: p.text("category", 64)?,
        level: p.text("level", 32)?,
        text: p.text("q", 500)?,
        limit: p.number("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?,
    })
}

/// `text` escaped, with the (ASCII case-insensitive) occurrences of `needle` marked.
pub fn highlight(text: &str, needle: Option<&str>) -> String {
    let Some(needle) = needle.filter(|n| !n.is_empty()) else {
        return esc(text);
    };
    let hay = text.to_ascii_lowercase();
    let pat = needle.to_ascii_lowercase();
    let mut out = String::new();
    let mut last = 0;
    for (at, m) in hay.match_indices(&pat) {
        if at < last {
            continue;
        }
        out.push_str(&esc(&text[last..at]));
        let _ = write!(out, "<mark>{}</mark>", esc(&text[at..at + m.len()]));
        last = at + m.len();
    }
    out.push_str(&esc(&text[last..]));
    out
}

/// The page body: the form (filled with `s`) and the lines.
pub fn render(s: &Search, lines: &[LogRow]) -> String {
    let mut out = String::new();
    let v = |o: &Option<String>| esc(o.as_deref().unwrap_or(""));
    let _ = write!(
        out,
        "<form class=\"q\" method=\"get\" action=\"/logs\">\
         <label>node <input name=\"node\" value=\"{}\" size=\"10\"></label>\
         <label>from (UTC) <input name=\"from\" type=\"datetime-local\" step=\"1\" value=\"{}\"></label>\
         <label>to (UTC) <input name=\"to\" type=\"datetime-local\" step=\"1\" value=\"{}\"></label>\
         <label>category <input name=\"category\" value=\"{}\" size=\"10\" list=\"categories\"></label>\
         <label>level <input name=\"level\" value=\"{}\" size=\"8\" list=\"levels\"></label>\
         <label>text <input name=\"q\" value=\"{}\" size=\"30\"></label>\
         <label>lines <input name=\"limit\" type=\"number\" min=\"1\" max=\"{MAX_LIMIT}\" value=\"{}\"></label>\
         <button>search</button></form>\
         <datalist id=\"categories\"><option value=\"net\"><option value=\"validation\">\
         <option value=\"mempool\"><option value=\"mempoolrej\"><option value=\"bench\">\
         <option value=\"cmpctblock\"><option value=\"rpc\"><option value=\"zmq\"></datalist>\
         <datalist id=\"levels\"><option value=\"debug\"><option value=\"info\">\
         <option value=\"warning\"><option value=\"error\"></datalist>",
        v(&s.node),
        time::fmt_input(s.from_us),
        time::fmt_input(s.to_us),
        v(&s.category),
        v(&s.level),
        v(&s.text),
        s.limit
    );
    if lines.is_empty() {
        out.push_str(&html::empty(
            "No line matches. Widen the time range or drop a filter; lines reach ClickHouse \
             through the agents' log source and `bmon-consumer ch-writer`.",
        ));
        return out;
    }
    let more = if lines.len() as u32 >= s.limit {
        " (the newest; raise `lines` or narrow the search for more)"
    } else {
        ""
    };
    let _ = write!(out, "<p>{} line(s){more}.</p>", lines.len());
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            let level_class = match l.level.as_str() {
                "error" => "bad",
                "warning" => "warn",
                _ => "",
            };
            vec![
                format!(
                    "<a href=\"{}\" title=\"what {} recorded around this line\">{}</a>",
                    html::events_url(&l.node, l.time_us),
                    esc(&l.node),
                    esc(&time::fmt_us(l.time_us))
                ),
                esc(&l.node),
                format!("<span class=\"{level_class}\">{}</span>", esc(&l.level)),
                esc(&l.category),
                esc(&l.thread),
                format!("<code>{}</code>", highlight(&l.message, s.text.as_deref())),
            ]
        })
        .collect();
    out.push_str(&html::table(
        &[
            "time (UTC)",
            "node",
            "level",
            "category",
            "thread",
            "message",
        ],
        &rows,
    ));
    out
}

/// `GET /logs`.
pub async fn handler(State(app): State<App>, params: Params) -> Result<Html<String>, PageError> {
    let search = search_from(&params, time::now_us())?;
    let lines = app
        .db
        .rows::<LogRow>("log search", logs::search(&search))
        .await?;
    Ok(Html(html::page(
        "Logs",
        "/logs",
        None,
        &render(&search, &lines),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_are_marked_and_markup_escaped() {
        assert_eq!(
            highlight("UpdateTip: <new> best=ab", Some("BEST")),
            "UpdateTip: &lt;new&gt; <mark>best</mark>=ab"
        );
        assert_eq!(highlight("it's", Some("'")), "it<mark>&#39;</mark>s");
        assert_eq!(highlight("é x é", Some("x")), "é <mark>x</mark> é");
        assert_eq!(highlight("a", None), "a");
    }

    #[test]
    fn the_form_is_read_and_checked() {
        let now = 1_768_478_400 * time::SEC;
        let s = search_from(&Params::default(), now).unwrap();
        assert_eq!((s.from_us, s.to_us), (now - DEFAULT_RANGE_US, now));
        assert_eq!(s.limit, DEFAULT_LIMIT);
        let p = Params::from_pairs(&[
            ("node", "n0"),
            ("from", "2026-01-15T11:00"),
            ("to", "2026-01-15T12:00"),
            ("q", "it's \"x\""),
        ]);
        let s = search_from(&p, now).unwrap();
        assert_eq!(s.node.as_deref(), Some("n0"));
        assert_eq!(s.to_us, now);
        assert_eq!(s.text.as_deref(), Some("it's \"x\""));
        let backwards =
            Params::from_pairs(&[("from", "2026-01-15T12:00"), ("to", "2026-01-15T11:00")]);
        assert_eq!(search_from(&backwards, now).unwrap_err().status(), 400);
        let bad_node = Params::from_pairs(&[("node", "n0' OR '1")]);
        assert_eq!(search_from(&bad_node, now).unwrap_err().status(), 400);
    }

    #[test]
    fn each_line_links_to_the_events_around_it() {
        let s = search_from(&Params::default(), 10 * time::SEC).unwrap();
        let line = LogRow {
            node: "n0".into(),
            time_us: 5_000_000,
            thread: "msghand".into(),
            category: "net".into(),
            level: "debug".into(),
            message: "received: cmpctblock <x>".into(),
            file_id: "f".into(),
            offset: 0,
        };
        let page = render(&s, &[line]);
        assert!(
            page.contains("href=\"/events?node=n0&amp;at=5000000\""),
            "{page}"
        );
        assert!(page.contains("received: cmpctblock &lt;x&gt;"), "{page}");
    }
}
