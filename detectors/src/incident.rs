//! Alert construction and the two incident lifecycles every detector uses.
//!
//! - [`Incidents`]: conditions that hold for a while (a silent node, a lagging node). One
//!   `Firing` alert when the condition starts, one `Resolved` alert (same fingerprint and
//!   `starts_at`, `ends_at` set) when it clears.
//! - [`OneShots`]: events that happen once (a reorg, an invalid block). One `Firing` alert that
//!   already carries `ends_at = starts_at + hold` (so Alertmanager expires it by itself), the
//!   nodes that report the same incident later are collected, and when the hold has passed
//!   (by event time) a `Resolved` alert carries the final list of nodes. A fingerprint that has
//!   fired is remembered for `remember` after it expired, so late reports do not fire it again.
//!
//! An alert's envelope id is derived from its fingerprint, state and `starts_at`, so every field
//! that feeds those three must come from events, never from when a tick happened to arrive.

use std::collections::{BTreeMap, BTreeSet};

use schema::event::{Alert, AlertState, Evidence, Severity};
use schema::{EventId, NodeId, UnixMicros};

/// A `Firing` alert with no node, subject, summary or evidence yet.
pub fn firing(
    kind: &str,
    severity: Severity,
    fingerprint: String,
    starts_at: UnixMicros,
    caused_by: EventId,
) -> Alert {
    Alert {
        alert_kind: kind.to_string(),
        severity,
        state: AlertState::Firing,
        node: None,
        subject: None,
        summary: String::new(),
        evidence: Vec::new(),
        fingerprint,
        starts_at,
        ends_at: None,
        caused_by,
    }
}

/// One piece of evidence.
pub fn evidence(name: impl Into<String>, value: impl ToString) -> Evidence {
    Evidence {
        name: name.into(),
        value: value.to_string(),
    }
}

/// Sets evidence `name` to `value`, replacing an earlier value.
pub fn set_evidence(alert: &mut Alert, name: &str, value: impl ToString) {
    let value = value.to_string();
    match alert.evidence.iter_mut().find(|e| e.name == name) {
        Some(e) => e.value = value,
        None => alert.evidence.push(evidence(name, value)),
    }
}

/// The `Resolved` copy of a firing alert, ended at `at`.
pub fn resolved(alert: &Alert, at: UnixMicros, caused_by: EventId) -> Alert {
    let mut r = alert.clone();
    r.state = AlertState::Resolved;
    r.ends_at = Some(at);
    r.caused_by = caused_by;
    r
}

/// Comma-separated names.
pub fn join<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Incidents that stay open while their condition holds, by fingerprint.
#[derive(Debug, Clone, Default)]
pub struct Incidents {
    open: BTreeMap<String, Alert>,
}

impl Incidents {
    /// No open incident.
    pub fn new() -> Self {
        Incidents::default()
    }

    /// Whether `fingerprint` is firing.
    pub fn is_open(&self, fingerprint: &str) -> bool {
        self.open.contains_key(fingerprint)
    }

    /// The firing alert of `fingerprint`.
    pub fn get(&self, fingerprint: &str) -> Option<&Alert> {
        self.open.get(fingerprint)
    }

    /// Opens the incident; returns the alert to publish, or `None` if it was already open.
    pub fn fire(&mut self, alert: Alert) -> Option<Alert> {
        if self.open.contains_key(&alert.fingerprint) {
            return None;
        }
        self.open.insert(alert.fingerprint.clone(), alert.clone());
        Some(alert)
    }

    /// Closes the incident; returns the `Resolved` alert, or `None` if it was not open.
    pub fn resolve(&mut self, fingerprint: &str, at: UnixMicros, cause: EventId) -> Option<Alert> {
        self.open
            .remove(fingerprint)
            .map(|alert| resolved(&alert, at, cause))
    }

    /// Closes the incident after updating its evidence with `f`.
    pub fn resolve_with(
        &mut self,
        fingerprint: &str,
        at: UnixMicros,
        cause: EventId,
        f: impl FnOnce(&mut Alert),
    ) -> Option<Alert> {
        let mut alert = self.open.remove(fingerprint)?;
        f(&mut alert);
        Some(resolved(&alert, at, cause))
    }

    /// Number of open incidents.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no incident is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[derive(Debug, Clone)]
struct OneShot {
    alert: Alert,
    nodes: BTreeSet<NodeId>,
}

/// One-shot incidents: fire once, expire after `hold`, never fire again within `remember`.
#[derive(Debug, Clone)]
pub struct OneShots {
    hold: i64,
    remember: i64,
    open: BTreeMap<String, OneShot>,
    done: BTreeMap<String, UnixMicros>,
    next_prune: UnixMicros,
}

impl OneShots {
    /// Incidents held open for `hold_secs` and remembered `remember_secs` after that.
    pub fn new(hold_secs: u64, remember_secs: u64) -> Self {
        OneShots {
            hold: crate::secs(hold_secs),
            remember: crate::secs(remember_secs),
            open: BTreeMap::new(),
            done: BTreeMap::new(),
            next_prune: UnixMicros(i64::MIN),
        }
    }

    /// Whether `fingerprint` is open or fired recently.
    pub fn known(&self, fingerprint: &str) -> bool {
        self.open.contains_key(fingerprint) || self.done.contains_key(fingerprint)
    }

    /// Whether `fingerprint` is open.
    pub fn is_open(&self, fingerprint: &str) -> bool {
        self.open.contains_key(fingerprint)
    }

    /// Fires a new incident reported by `node`; returns the alert to publish (with `ends_at` and
    /// a `nodes` evidence entry), or `None` if the fingerprint is already known, in which case
    /// `node` joins the open incident.
    pub fn fire(&mut self, mut alert: Alert, node: Option<&NodeId>) -> Option<Alert> {
        if self.known(&alert.fingerprint) {
            if let Some(n) = node {
                self.add_node(&alert.fingerprint, n);
            }
            return None;
        }
        alert.ends_at = Some(alert.starts_at.plus_micros(self.hold));
        let nodes: BTreeSet<NodeId> = node.into_iter().cloned().collect();
        set_evidence(&mut alert, "nodes", join(&nodes));
        self.open.insert(
            alert.fingerprint.clone(),
            OneShot {
                alert: alert.clone(),
                nodes,
            },
        );
        Some(alert)
    }

    /// Adds a reporting node to an open incident; returns whether it was new.
    pub fn add_node(&mut self, fingerprint: &str, node: &NodeId) -> bool {
        match self.open.get_mut(fingerprint) {
            Some(o) => {
                let new = o.nodes.insert(node.clone());
                if new {
                    let nodes = join(&o.nodes);
                    set_evidence(&mut o.alert, "nodes", nodes);
                }
                new
            }
            None => false,
        }
    }

    /// Changes an open incident's alert (its evidence, for the `Resolved` alert to carry).
    pub fn update(&mut self, fingerprint: &str, f: impl FnOnce(&mut Alert)) {
        if let Some(o) = self.open.get_mut(fingerprint) {
            f(&mut o.alert);
        }
    }

    /// The open incident's alert.
    pub fn get(&self, fingerprint: &str) -> Option<&Alert> {
        self.open.get(fingerprint).map(|o| &o.alert)
    }

    /// Ends every incident whose hold passed by `now`; returns their `Resolved` alerts.
    pub fn expire(&mut self, now: UnixMicros, cause: EventId) -> Vec<Alert> {
        let mut out = Vec::new();
        if !self.open.is_empty() {
            let due: Vec<String> = self
                .open
                .iter()
                .filter(|(_, o)| o.alert.ends_at.is_some_and(|end| end <= now))
                .map(|(fp, _)| fp.clone())
                .collect();
            for fp in due {
                if let Some(o) = self.open.remove(&fp) {
                    let end = o.alert.ends_at.unwrap_or(now);
                    out.push(resolved(&o.alert, end, cause));
                    self.done.insert(fp, end.plus_micros(self.remember));
                }
            }
        }
        if now >= self.next_prune {
            self.done.retain(|_, until| *until > now);
            self.next_prune = now.plus_micros(60_000_000);
        }
        out
    }

    /// Number of open incidents.
    pub fn open_len(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(fp: &str, at: i64) -> Alert {
        firing(
            "x",
            Severity::Info,
            fp.into(),
            UnixMicros(at),
            EventId([0; 32]),
        )
    }

    fn node(n: &str) -> NodeId {
        NodeId::new(n).unwrap()
    }

    #[test]
    fn an_open_incident_fires_once_and_resolves_once() {
        let mut i = Incidents::new();
        assert!(i.fire(alert("a", 1)).is_some());
        assert!(i.fire(alert("a", 2)).is_none());
        let r = i.resolve("a", UnixMicros(3), EventId([1; 32])).unwrap();
        assert_eq!(r.state, AlertState::Resolved);
        assert_eq!(r.starts_at, UnixMicros(1));
        assert_eq!(r.ends_at, Some(UnixMicros(3)));
        assert!(i.resolve("a", UnixMicros(4), EventId([1; 32])).is_none());
    }

    #[test]
    fn a_one_shot_collects_nodes_and_resolves_after_its_hold() {
        let mut o = OneShots::new(10, 100);
        let f = o.fire(alert("r", 0), Some(&node("n1"))).unwrap();
        assert_eq!(f.ends_at, Some(UnixMicros(10_000_000)));
        assert!(o.fire(alert("r", 5), Some(&node("n2"))).is_none());
        assert!(o.expire(UnixMicros(9_999_999), EventId([0; 32])).is_empty());
        let r = o.expire(UnixMicros(10_000_000), EventId([0; 32]));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].state, AlertState::Resolved);
        assert!(r[0]
            .evidence
            .iter()
            .any(|e| e.name == "nodes" && e.value == "n1,n2"));
        // Remembered: a late report does not fire again.
        assert!(o.fire(alert("r", 20_000_000), None).is_none());
        // Forgotten after `remember`.
        o.expire(UnixMicros(200_000_000), EventId([0; 32]));
        assert!(o.fire(alert("r", 200_000_000), None).is_some());
    }
}

/// An event time as RFC 3339 UTC with microseconds (`2027-01-15T08:00:00.000000Z`), for
/// evidence an operator reads.
pub fn fmt_time(t: UnixMicros) -> String {
    t.to_rfc3339()
}

/// A duration in microseconds as seconds with millisecond precision (`12.345s`).
pub fn fmt_secs(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}{}.{:03}s", m / 1_000_000, (m % 1_000_000) / 1000)
}

#[cfg(test)]
mod fmt_tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(fmt_time(UnixMicros(0)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            fmt_time(UnixMicros(1_795_621_980_000_123)),
            "2026-11-25T15:53:00.000123Z"
        );
        assert_eq!(
            fmt_time(UnixMicros(951_782_400_000_000)),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(fmt_secs(12_345_678), "12.345s");
        assert_eq!(fmt_secs(-1_500_000), "-1.500s");
    }
}
