//! `bmon alerts`: the alerts the detectors raised, one line per incident (its fingerprint),
//! newest first, with its latest state, severity, node and summary; `--json` adds the
//! evidence.

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::services::Services;
use crate::since::Since;
use crate::table::{clock, header, render};

/// Options of `bmon alerts`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the alerts still firing.
    #[arg(long)]
    firing: bool,
    /// Only this alert kind (`reorg`, `stale_tip`, `mempool_divergence`, ...).
    #[arg(long)]
    kind: Option<String>,
    /// Alerts that started within this long (`30m`, `12h`, `7d`).
    #[arg(long, default_value = "7d")]
    since: Since,
    /// At most this many alerts.
    #[arg(long, default_value_t = 100)]
    limit: u64,
    /// One JSON object per alert (with its evidence) instead of a table.
    #[arg(long)]
    json: bool,
}

/// One incident's latest state. ClickHouse 18.16 and current releases both run it.
pub const ALERTS_SQL: &str = "\
SELECT fingerprint, any(alert_kind) AS kind, argMax(state, observed_at_us) AS last_state, \
argMax(severity, observed_at_us) AS severity, argMax(alert_node, observed_at_us) AS node, \
argMax(subject, observed_at_us) AS subject, argMax(summary, observed_at_us) AS summary, \
min(starts_at_us) AS started_us, max(observed_at_us) AS updated_us, \
argMax(evidence_name, observed_at_us) AS evidence_name, \
argMax(evidence_value, observed_at_us) AS evidence_value \
FROM alerts FINAL WHERE starts_at_us >= ? \
GROUP BY fingerprint \
HAVING (? = 0 OR last_state = 'firing') AND (? = '' OR kind = ?) \
ORDER BY started_us DESC, fingerprint LIMIT ?";

/// One incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct AlertLine {
    pub fingerprint: String,
    pub kind: String,
    pub last_state: String,
    pub severity: String,
    pub node: Option<String>,
    pub subject: Option<String>,
    pub summary: String,
    pub started_us: i64,
    pub updated_us: i64,
    pub evidence_name: Vec<String>,
    pub evidence_value: Vec<String>,
}

/// Runs `bmon alerts`.
pub async fn run(services: &Services, args: Args) -> anyhow::Result<()> {
    let kind = args.kind.clone().unwrap_or_default();
    let lines: Vec<AlertLine> = services
        .clickhouse()
        .query(ALERTS_SQL)
        .bind(args.since.start_us())
        .bind(u8::from(args.firing))
        .bind(&kind)
        .bind(&kind)
        .bind(args.limit)
        .fetch_all()
        .await
        .context(
            "cannot read alerts (--clickhouse-url, BMON_CLICKHOUSE_URL; has `bmon setup` run, \
             and is `bmon-consumer ch-writer` running?)",
        )?;
    if args.json {
        for l in &lines {
            let evidence: serde_json::Map<String, serde_json::Value> = l
                .evidence_name
                .iter()
                .cloned()
                .zip(l.evidence_value.iter().cloned().map(Into::into))
                .collect();
            let v = serde_json::json!({
                "fingerprint": l.fingerprint,
                "kind": l.kind,
                "state": l.last_state,
                "severity": l.severity,
                "node": l.node,
                "subject": l.subject,
                "summary": l.summary,
                "started_us": l.started_us,
                "updated_us": l.updated_us,
                "evidence": evidence,
            });
            println!("{v}");
        }
        return Ok(());
    }
    print!("{}", render_lines(&lines, args.firing));
    Ok(())
}

/// The table (pure).
fn render_lines(lines: &[AlertLine], firing_only: bool) -> String {
    if lines.is_empty() {
        return if firing_only {
            "(no alert firing)\n".into()
        } else {
            "(no alert in this window)\n".into()
        };
    }
    let mut rows = vec![header(&[
        "STARTED", "STATE", "SEVERITY", "KIND", "NODE", "SUMMARY",
    ])];
    for l in lines {
        rows.push(vec![
            clock(l.started_us),
            l.last_state.clone(),
            l.severity.clone(),
            l.kind.clone(),
            l.node.clone().unwrap_or_else(|| "-".into()),
            l.summary.clone(),
        ]);
    }
    render(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_incident_and_a_clear_empty_answer() {
        let line = AlertLine {
            fingerprint: "reorg:a:b".into(),
            kind: "reorg".into(),
            last_state: "firing".into(),
            severity: "critical".into(),
            node: None,
            subject: Some("b".into()),
            summary: "reorg of depth 3".into(),
            started_us: 1_764_927_662_000_000,
            updated_us: 1_764_927_662_000_000,
            evidence_name: vec![],
            evidence_value: vec![],
        };
        let text = render_lines(&[line], false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("STARTED"), "{text}");
        assert!(
            lines[1].contains("firing  critical  reorg  -     reorg of depth 3"),
            "{text}"
        );
        assert_eq!(render_lines(&[], true), "(no alert firing)\n");
    }
}
