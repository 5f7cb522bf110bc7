//! `/alerts?state=firing|resolved|all&node=..&kind=..`: what the detectors raised, in each
//! alert's latest state, with its evidence. Block hashes and txids in the subject and evidence
//! link to their pages (to `/block` or `/tx` as ClickHouse knows them), node names to the
//! node's events at the time the alert started.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;

use crate::error::PageError;
use crate::html::{self, esc, url_component};
use crate::params::Params;
use crate::server::App;
use crate::sql::alerts::{self, AlertRow, Filter};
use crate::sql::fleet::{self, NodeRow};
use crate::sql::known::{self, KnownRow};
use crate::time;

/// What the ids and names in alert text point at.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// Known 64-hex ids: `block` or `tx`.
    pub kinds: HashMap<String, String>,
    /// Node names.
    pub nodes: BTreeSet<String>,
}

/// Every 64-hex token of `text`, lowercased.
pub fn hex64_tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The page a 64-hex id links to: what ClickHouse knows it as, else what the evidence's name
/// suggests (`txid`, `example_txid` → tx; `hash`, `tip_hash`, `fork_point` → block).
fn target(id: &str, hint: Option<&str>, links: &Links) -> Option<&'static str> {
    match links.kinds.get(id).map(String::as_str) {
        Some("block") => return Some("block"),
        Some("tx") => return Some("tx"),
        _ => {}
    }
    let h = hint?.to_ascii_lowercase();
    if h.contains("txid") || h.starts_with("tx") {
        Some("tx")
    } else if ["hash", "tip", "block", "fork"]
        .iter()
        .any(|w| h.contains(w))
    {
        Some("block")
    } else {
        None
    }
}

/// `text` escaped, with 64-hex ids linked to their page and node names to their events
/// around `at_us`.
pub fn linkify(text: &str, hint: Option<&str>, links: &Links, at_us: i64) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        let lower = word.to_ascii_lowercase();
        if word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit()) {
            match target(&lower, hint, links) {
                Some(page) => {
                    let _ = write!(
                        out,
                        "<a class=\"h\" href=\"/{page}/{}\" title=\"{}\">{}</a>",
                        url_component(&lower),
                        esc(word),
                        esc(&html::short(word))
                    );
                }
                None => {
                    let _ = write!(
                        out,
                        "<code title=\"{}\">{}</code>",
                        esc(word),
                        esc(&html::short(word))
                    );
                }
            }
        } else if links.nodes.contains(word.as_str()) {
            out.push_str(&html::node_link(word, at_us));
        } else {
            out.push_str(&esc(word));
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push_str(&esc(c.encode_utf8(&mut [0; 4])));
        }
    }
    flush(&mut word, &mut out);
    out
}

fn alert_table(rows: &[AlertRow], links: &Links) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|a| {
            let at = a.starts_at_us;
            let evidence: Vec<String> = a
                .evidence_name
                .iter()
                .zip(&a.evidence_value)
                .map(|(n, v)| format!("<b>{}</b>: {}", esc(n), linkify(v, Some(n), links, at)))
                .collect();
            let sev_class = match a.severity.as_str() {
                "critical" => "bad",
                "warning" => "warn",
                _ => "dim",
            };
            let when = match a.ends_at_us {
                Some(end) => format!(
                    "{} → {}",
                    esc(&time::fmt_us(a.starts_at_us)),
                    esc(&time::fmt_us(end))
                ),
                None => format!("since {}", esc(&time::fmt_us(a.starts_at_us))),
            };
            vec![
                format!(
                    "<span class=\"{}\">{}</span>",
                    if a.state == "firing" {
                        "firing"
                    } else {
                        "resolved"
                    },
                    esc(&a.state)
                ),
                format!("<span class=\"{sev_class}\">{}</span>", esc(&a.severity)),
                esc(&a.alert_kind),
                html::opt(a.alert_node.as_deref(), |n| html::node_link(n, at)),
                html::opt(a.subject.as_deref(), |s| {
                    linkify(s, Some(&a.alert_kind), links, at)
                }),
                linkify(&a.summary, None, links, at),
                evidence.join("<br>"),
                when,
                format!(
                    "{}<br><span class=\"dim\">{}</span>",
                    esc(&a.detector),
                    esc(&a.fingerprint)
                ),
            ]
        })
        .collect();
    html::table(
        &[
            "state",
            "severity",
            "kind",
            "node",
            "subject",
            "summary",
            "evidence",
            "time (UTC)",
            "detector / fingerprint",
        ],
        &cells,
    )
}

/// The page body: the firing alerts, then the resolved ones (as `state` asks).
pub fn render(
    firing: Option<&[AlertRow]>,
    resolved: Option<&[AlertRow]>,
    f: &Filter,
    links: &Links,
) -> String {
    let mut out = String::new();
    let sel = |v: &str| {
        if f.state.unwrap_or("all") == v {
            " selected"
        } else {
            ""
        }
    };
    let _ = write!(
        out,
        "<form class=\"q\" method=\"get\" action=\"/alerts\">\
         <label>state <select name=\"state\"><option value=\"all\"{}>all</option>\
         <option value=\"firing\"{}>firing</option><option value=\"resolved\"{}>resolved</option>\
         </select></label>\
         <label>node <input name=\"node\" value=\"{}\"></label>\
         <label>kind <input name=\"kind\" value=\"{}\"></label><button>show</button></form>",
        sel("all"),
        sel("firing"),
        sel("resolved"),
        esc(f.node.as_deref().unwrap_or("")),
        esc(f.kind.as_deref().unwrap_or(""))
    );
    for (title, rows, none) in [
        ("Firing", firing, "No alert is firing."),
        ("Resolved", resolved, "No resolved alert."),
    ] {
        let Some(rows) = rows else { continue };
        let _ = write!(out, "<h2>{title} ({})</h2>", rows.len());
        if rows.is_empty() {
            out.push_str(&html::empty(none));
        } else {
            out.push_str(&alert_table(rows, links));
            if rows.len() as u64 >= alerts::LIMIT {
                let _ = write!(
                    out,
                    "<p class=\"dim\">The {} most recent; narrow by node or kind for older ones.</p>",
                    alerts::LIMIT
                );
            }
        }
    }
    out
}

/// `GET /alerts`.
pub async fn handler(State(app): State<App>, params: Params) -> Result<Html<String>, PageError> {
    let state = params.choice("state", &["all", "firing", "resolved"], "all")?;
    let node = params.node("node")?.map(|n| n.as_str().to_string());
    let kind = params.text("kind", 100)?;
    let base = Filter {
        state: None,
        node,
        kind,
    };
    let want = |s: &'static str| (state == "all" || state == s).then_some(s);
    let query = |s: Option<&'static str>| {
        let f = Filter {
            state: s,
            ..base.clone()
        };
        let db = app.db.clone();
        async move {
            match f.state {
                Some(_) => db
                    .rows::<AlertRow>("alerts", alerts::list(&f))
                    .await
                    .map(Some),
                None => Ok(None),
            }
        }
    };
    let (firing, resolved, statuses) = tokio::try_join!(
        query(want("firing")),
        query(want("resolved")),
        app.db
            .rows::<NodeRow>("node status", fleet::latest_status()),
    )?;
    let mut links = Links::default();
    let mut ids = BTreeSet::new();
    for a in firing.iter().chain(resolved.iter()).flatten() {
        if let Some(n) = &a.alert_node {
            links.nodes.insert(n.clone());
        }
        for text in a
            .subject
            .iter()
            .chain(a.evidence_value.iter())
            .chain([&a.summary])
        {
            ids.extend(hex64_tokens(text));
        }
    }
    links.nodes.extend(statuses.into_iter().map(|s| s.node));
    if !ids.is_empty() {
        let ids: Vec<String> = ids.into_iter().collect();
        let known = app
            .db
            .rows::<KnownRow>("known ids", known::lookup(&ids))
            .await?;
        links.kinds = known.into_iter().map(|k| (k.id, k.kind)).collect();
    }
    let f = Filter {
        state: (state != "all").then_some(state),
        ..base
    };
    Ok(Html(html::page(
        "Alerts",
        "/alerts",
        None,
        &render(firing.as_deref(), resolved.as_deref(), &f, &links),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links {
        let mut l = Links::default();
        l.kinds.insert("a".repeat(64), "block".into());
        l.kinds.insert("b".repeat(64), "tx".into());
        l.nodes.insert("n1".into());
        l
    }

    #[test]
    fn known_ids_link_to_their_page_and_nodes_to_their_events() {
        let l = links();
        let text = format!(
            "{} spends {} on n1, n10 <x>",
            "A".repeat(64),
            "b".repeat(64)
        );
        let html = linkify(&text, None, &l, 42);
        assert!(
            html.contains(&format!(
                "href=\"/block/{}\" title=\"{}\">…{}</a>",
                "a".repeat(64),
                "A".repeat(64),
                "A".repeat(12)
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!("href=\"/tx/{}\"", "b".repeat(64))),
            "{html}"
        );
        assert!(html.contains("/events?node=n1&amp;at=42"), "{html}");
        assert!(!html.contains("node=n10"), "{html}");
        assert!(html.ends_with("n10 &lt;x&gt;"), "{html}");
    }

    #[test]
    fn unknown_ids_follow_the_evidence_name_or_stay_plain() {
        let l = Links::default();
        let id = "c".repeat(64);
        assert!(linkify(&id, Some("example_txid"), &l, 0).contains("href=\"/tx/"));
        assert!(linkify(&id, Some("fork_point"), &l, 0).contains("href=\"/block/"));
        assert_eq!(
            linkify(&id, Some("digest"), &l, 0),
            format!("<code title=\"{id}\">…{}</code>", "c".repeat(12))
        );
        assert_eq!(hex64_tokens(&format!("x={id},y")), vec![id]);
    }

    #[test]
    fn an_alert_shows_its_state_evidence_and_links() {
        let a = AlertRow {
            alert_kind: "reorg".into(),
            fingerprint: "reorg-n1-111".into(),
            state: "firing".into(),
            severity: "warning".into(),
            detector: "det-chain".into(),
            alert_node: Some("n1".into()),
            subject: Some("a".repeat(64)),
            summary: "n1 reorged 2 blocks".into(),
            evidence_name: vec!["fork_point".into(), "depth".into()],
            evidence_value: vec!["a".repeat(64), "2".into()],
            starts_at_us: 7,
            ends_at_us: None,
            last_us: 7,
        };
        let page = render(Some(&[a]), Some(&[]), &Filter::default(), &links());
        assert!(page.contains("<h2>Firing (1)</h2>"), "{page}");
        assert!(
            page.contains("<b>fork_point</b>: <a class=\"h\" href=\"/block/"),
            "{page}"
        );
        assert!(page.contains("<b>depth</b>: 2"), "{page}");
        assert!(page.contains("No resolved alert."), "{page}");
        assert!(
            page.contains("<span class=\"firing\">firing</span>"),
            "{page}"
        );
    }
}
