//! Alerts page SQL: each alert (kind + fingerprint) in its latest state, with the evidence of
//! its latest row, newest first.

use serde::Deserialize;

use super::Sql;

/// Alerts shown per state.
pub const LIMIT: u64 = 200;

/// What to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// `firing` or `resolved`; `None`: both.
    pub state: Option<&'static str>,
    /// Only alerts about this node.
    pub node: Option<String>,
    /// Only alerts of this kind.
    pub kind: Option<String>,
}

/// The alerts matching `f`, in their latest state, most recent change first.
pub fn list(f: &Filter) -> Sql {
    let mut q = Sql::new(
        "SELECT alert_kind, fingerprint, \
         argMax(state, observed_at_us) AS last_state, \
         argMax(severity, observed_at_us) AS last_severity, \
         argMax(node, observed_at_us) AS detector, \
         argMax(alert_node, observed_at_us) AS about, \
         argMax(subject, observed_at_us) AS last_subject, \
         argMax(summary, observed_at_us) AS last_summary, \
         argMax(evidence_name, observed_at_us) AS ev_names, \
         argMax(evidence_value, observed_at_us) AS ev_values, \
         argMax(starts_at_us, observed_at_us) AS started_us, \
         argMax(ends_at_us, observed_at_us) AS ended_us, \
         max(observed_at_us) AS last_us \
         FROM alerts FINAL WHERE 1",
    );
    if let Some(n) = &f.node {
        q.push(" AND alert_node = ").str(n.as_str());
    }
    if let Some(k) = &f.kind {
        q.push(" AND alert_kind = ").str(k.as_str());
    }
    q.push(" GROUP BY alert_kind, fingerprint");
    if let Some(s) = f.state {
        q.push(" HAVING last_state = ").str(s);
    }
    q.push(" ORDER BY last_us DESC LIMIT ").uint(LIMIT);
    q
}

/// One alert in its latest state.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct AlertRow {
    /// `reorg`, `stale_tip`, ...
    pub alert_kind: String,
    /// Identity of the alert across its rows.
    pub fingerprint: String,
    /// `firing` or `resolved`.
    pub state: String,
    /// `critical`, `warning`, `info`.
    pub severity: String,
    /// The detector that raised it.
    pub detector: String,
    /// The node it is about.
    pub alert_node: Option<String>,
    /// The block or transaction it is about.
    pub subject: Option<String>,
    /// One line.
    pub summary: String,
    /// Evidence names; `evidence_value[i]` is `evidence_name[i]`'s.
    pub evidence_name: Vec<String>,
    /// Evidence values.
    pub evidence_value: Vec<String>,
    /// When it started, µs.
    pub starts_at_us: i64,
    /// When it ended, µs.
    pub ends_at_us: Option<i64>,
    /// Its latest row's time, µs.
    pub last_us: i64,
}
