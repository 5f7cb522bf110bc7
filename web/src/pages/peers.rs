//! `/peers`: each node's peers at its latest poll — address, type, version, ping, traffic,
//! who joined and left since the poll before — and how many recent blocks each peer delivered
//! to it first.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;

use crate::error::PageError;
use crate::html::{self, esc, num};
use crate::server::App;
use crate::sql::peers::{self, FirstDeliveryRow, PeerSnapshotRow, FIRST_PEER_WINDOW_SECS};
use crate::time;

/// The page body.
pub fn render(snaps: &[PeerSnapshotRow], first: &[FirstDeliveryRow], now_us: i64) -> String {
    if snaps.is_empty() {
        return html::empty("No peer_snapshot yet: the agents poll getpeerinfo.");
    }
    let firsts: HashMap<(&str, u64), u64> = first
        .iter()
        .map(|f| ((f.node.as_str(), f.first_peer), f.blocks))
        .collect();
    let mut out = String::new();
    out.push_str("<p>");
    for s in snaps {
        let _ = write!(
            out,
            "<a href=\"#{}\">{}</a> ({}) ",
            html::url_component(&s.node),
            esc(&s.node),
            s.peers
        );
    }
    out.push_str("</p>");
    let now_secs = now_us.div_euclid(time::SEC);
    for s in snaps {
        let _ = write!(
            out,
            "<h2 id=\"{}\">{} — {} peer(s) at {} UTC</h2>",
            html::url_component(&s.node),
            html::node_link(&s.node, s.observed_at_us),
            s.peers,
            esc(&time::fmt_us(s.observed_at_us))
        );
        if !s.joined.is_empty() || !s.left.is_empty() {
            let ids = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
            let _ = write!(
                out,
                "<p>joined since the poll before: {}; left: {}</p>",
                esc(&ids(&s.joined)),
                esc(&ids(&s.left))
            );
        }
        let rows: Vec<Vec<String>> = (0..s.peer_id.len())
            .map(|i| {
                let id = s.peer_id[i];
                let get = |v: &[String]| v.get(i).map(|x| esc(x)).unwrap_or_default();
                vec![
                    num(id),
                    format!("<code>{}</code>", get(&s.peer_addr)),
                    get(&s.peer_network),
                    get(&s.peer_connection_type),
                    if s.peer_inbound.get(i) == Some(&1) {
                        "in".into()
                    } else {
                        "out".into()
                    },
                    get(&s.peer_subversion),
                    num(s.peer_version.get(i).copied().unwrap_or(0)),
                    num(s
                        .peer_ping_ms
                        .get(i)
                        .map(|p| format!("{p:.1} ms"))
                        .unwrap_or_default()),
                    num(format!(
                        "{} / {}",
                        html::group(s.peer_bytes_sent.get(i).copied().unwrap_or(0) / 1000),
                        html::group(s.peer_bytes_recv.get(i).copied().unwrap_or(0) / 1000)
                    )),
                    num(s
                        .peer_conn_time
                        .get(i)
                        .map(|t| time::fmt_age(now_secs - t))
                        .unwrap_or_default()),
                    num(firsts
                        .get(&(s.node.as_str(), id))
                        .map(|b| b.to_string())
                        .unwrap_or_else(|| "0".into())),
                ]
            })
            .collect();
        out.push_str(&html::table(
            &[
                "id",
                "address",
                "network",
                "type",
                "dir",
                "user agent",
                "protocol",
                "ping",
                "kB sent / received",
                "connected for",
                "blocks first (7 days)",
            ],
            &rows,
        ));
    }
    out
}

/// `GET /peers`.
pub async fn handler(State(app): State<App>) -> Result<Html<String>, PageError> {
    let now = time::now_us();
    let since = now.div_euclid(time::SEC) - FIRST_PEER_WINDOW_SECS;
    let (snaps, first) = tokio::try_join!(
        app.db
            .rows::<PeerSnapshotRow>("peer snapshots", peers::snapshots()),
        app.db
            .rows::<FirstDeliveryRow>("first deliveries", peers::first_deliveries(since)),
    )?;
    Ok(Html(html::page(
        "Peers",
        "/peers",
        None,
        &render(&snaps, &first, now),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_is_a_row_with_its_first_deliveries() {
        let s = PeerSnapshotRow {
            node: "n0".into(),
            observed_at_us: 0,
            peers: 1,
            peer_id: vec![7],
            peer_addr: vec!["127.0.0.1:18444".into()],
            peer_network: vec!["not_publicly_routable".into()],
            peer_connection_type: vec!["manual".into()],
            peer_inbound: vec![0],
            peer_version: vec![70016],
            peer_subversion: vec!["/Satoshi:30.99.0/<x>".into()],
            peer_ping_ms: vec![0.094],
            peer_bytes_sent: vec![2357],
            peer_bytes_recv: vec![37417],
            peer_conn_time: vec![1000],
            joined: vec![7],
            left: vec![3],
        };
        let first = vec![FirstDeliveryRow {
            node: "n0".into(),
            first_peer: 7,
            blocks: 12,
        }];
        let page = render(&[s], &first, 2000 * time::SEC);
        assert!(page.contains("<code>127.0.0.1:18444</code>"), "{page}");
        assert!(page.contains("/Satoshi:30.99.0/&lt;x&gt;"), "{page}");
        assert!(page.contains("<td class=\"n\">12</td>"), "{page}");
        assert!(
            page.contains("joined since the poll before: 7; left: 3"),
            "{page}"
        );
        assert!(page.contains("16m40s"), "{page}");
    }
}
