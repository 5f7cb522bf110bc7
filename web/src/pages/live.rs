//! `/live`: a live tail of the nodes' debug.log lines, one node or all, as the agents publish
//! them on `bmon.log.<node>` (NATS core subscription: what arrives from now on, nothing
//! stored). The page's script (`/static/live.js`, the only script bmon-web serves) reads
//! `/live/stream`, a server-sent event stream with one event per line, and appends each line
//! as text.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use futures::{Stream, StreamExt};
use schema::{Envelope, Event as BmonEvent};

use crate::error::PageError;
use crate::html::{self, esc};
use crate::params::Params;
use crate::server::App;
use crate::time;

/// The subject of `node`'s lines, or every node's.
pub fn subject(node: Option<&str>) -> String {
    format!("bmon.log.{}", node.unwrap_or("*"))
}

/// `2026-12-05 09:41:02.123456 node0 [net] message` (pure).
pub fn line_text(node: &str, line: &schema::event::LogLine) -> String {
    let tag = match (line.category.as_deref(), line.level.as_deref()) {
        (Some(c), Some(l)) => format!("[{c}:{l}] "),
        (Some(c), None) => format!("[{c}] "),
        (None, Some(l)) => format!("[{l}] "),
        (None, None) => String::new(),
    };
    format!("{} {node} {tag}{}", time::fmt_us(line.time.0), line.message)
}

/// The lines of one NATS message (none for anything but a log batch).
pub fn lines_of(payload: &[u8]) -> Vec<String> {
    match Envelope::decode(payload) {
        Ok(env) => match &env.event {
            BmonEvent::LogBatch(b) => b
                .lines
                .iter()
                .map(|l| line_text(env.node.as_str(), l))
                .collect(),
            _ => Vec::new(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "undecodable log batch skipped");
            Vec::new()
        }
    }
}

/// The page (pure).
pub fn render(node: Option<&str>, live: bool) -> String {
    let node_value = node.map(esc).unwrap_or_default();
    let mut body = format!(
        "<form class=\"q\" method=\"get\"><label>node<input name=\"node\" value=\"{node_value}\" \
         placeholder=\"all nodes\"></label><button>follow</button></form>"
    );
    if live {
        body.push_str(&format!(
            "<p class=\"dim\" id=\"state\">following {} …</p>\
             <pre id=\"lines\" data-node=\"{node_value}\" \
             style=\"background:#fff;border:1px solid #dde;padding:.5em;min-height:20em;\
             white-space:pre-wrap\"></pre><script src=\"/static/live.js\"></script>",
            esc(&subject(node))
        ));
    } else {
        body.push_str(&html::empty(
            "The live tail needs NATS: set [nats] url (and a user allowed to subscribe to \
             bmon.log.>) in bmon-web's config, or BMON_NATS__URL.",
        ));
    }
    html::page("Live logs", "/live", None, &body)
}

/// `/live?node=`.
pub async fn handler(State(app): State<App>, p: Params) -> Result<Html<String>, PageError> {
    let node = p.node("node")?;
    Ok(Html(render(
        node.as_ref().map(|n| n.as_str()),
        app.nats.is_some(),
    )))
}

/// `/live/stream?node=`: one server-sent event per new line, until the client goes or the
/// server stops.
pub async fn stream(
    State(app): State<App>,
    p: Params,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    let node = p.node("node")?;
    let Some(client) = app.nats.clone() else {
        return Err(PageError::NotFound(
            "the live tail is off: bmon-web has no [nats] url".into(),
        ));
    };
    let subject = subject(node.as_ref().map(|n| n.as_str()));
    let sub = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| PageError::BadRequest(format!("cannot subscribe to {subject}: {e}")))?;
    let events = sub
        .flat_map(|msg| futures::stream::iter(lines_of(&msg.payload)))
        .map(|line| Ok(Event::default().data(line)))
        .take_until(app.shutdown.clone().cancelled_owned());
    // A comment first, so the browser knows the stream is open before any line arrives.
    let opened = futures::stream::once(async { Ok(Event::default().comment("following")) });
    Ok(Sse::new(opened.chain(events)).keep_alive(KeepAlive::default()))
}

/// The page's script: appends each streamed line as text (never as markup).
pub const SCRIPT: &str = r#"(function () {
  var pre = document.getElementById('lines');
  var state = document.getElementById('state');
  if (!pre) { return; }
  var node = pre.getAttribute('data-node');
  var url = '/live/stream' + (node ? '?node=' + encodeURIComponent(node) : '');
  var source = new EventSource(url);
  source.onopen = function () { state.textContent = 'following, new lines appear below'; state.setAttribute('data-open', '1'); };
  source.onerror = function () { state.textContent = 'disconnected, retrying'; };
  source.onmessage = function (e) {
    pre.appendChild(document.createTextNode(e.data + '\n'));
    while (pre.childNodes.length > 2000) { pre.removeChild(pre.firstChild); }
  };
})();
"#;

/// `/static/live.js`.
pub async fn script() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        )],
        SCRIPT,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::event::{LogBatch, LogLine};
    use schema::{NodeId, UnixMicros};

    #[test]
    fn a_batch_becomes_one_text_line_per_log_line_and_markup_stays_text() {
        let batch = LogBatch {
            file_id: "f".into(),
            start_offset: 0,
            lines: vec![LogLine {
                time: UnixMicros(1_764_927_662_123_456),
                offset: 0,
                thread: None,
                category: Some("net".into()),
                level: None,
                location: None,
                function: None,
                message: "<script>x</script>".into(),
            }],
        };
        let env = Envelope::new(NodeId::new("n1").unwrap(), UnixMicros(1), batch);
        let lines = lines_of(&env.encode().unwrap());
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].ends_with("n1 [net] <script>x</script>"),
            "{lines:?}"
        );
        assert!(lines_of(b"garbage").is_empty());
        assert_eq!(subject(None), "bmon.log.*");
        assert_eq!(subject(Some("n1")), "bmon.log.n1");
    }

    #[test]
    fn the_page_escapes_the_node_and_says_how_to_turn_the_tail_on() {
        let page = render(Some("n\"1"), true);
        assert!(page.contains("data-node=\"n&quot;1\""), "{page}");
        assert!(page.contains("/static/live.js"));
        let off = render(None, false);
        assert!(
            off.contains("[nats] url") && !off.contains("live.js"),
            "{off}"
        );
    }
}
