//! The alert router on a real nats-server and a real Alertmanager: an alert envelope on
//! `bmon.alert.<kind>` becomes an Alertmanager alert with bmon's labels and annotations, its
//! resolution clears it, a refused alert is dead-lettered while the others go through, and a
//! restarted router posts its active alerts again (to a fresh Alertmanager here).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{samples, Services};
use consumers::alertmanager::wall_now;
use consumers::detector::alert_to_envelope;
use consumers::metrics::Metrics;
use schema::event::{Alert, AlertState, Evidence, Severity};
use schema::{EventId, NodeId, UnixMicros};
use test_support::Alertmanager;

const TIMEOUT: Duration = Duration::from_secs(30);

fn alert(
    fingerprint: &str,
    state: AlertState,
    starts: UnixMicros,
    ends: Option<UnixMicros>,
) -> Alert {
    Alert {
        alert_kind: "reorg".into(),
        severity: Severity::Critical,
        state,
        node: Some(NodeId::new("node3").unwrap()),
        subject: Some(samples::block_hash(13).to_string()),
        summary: "node3 reorged 2 blocks".into(),
        evidence: vec![
            Evidence {
                name: "depth".into(),
                value: "2".into(),
            },
            Evidence {
                name: "fork_point".into(),
                value: samples::block_hash(10).to_string(),
            },
        ],
        fingerprint: fingerprint.into(),
        starts_at: starts,
        ends_at: ends,
        caused_by: EventId([1; 32]),
    }
}

/// The alerts Alertmanager holds whose `fingerprint` label is `fp`.
fn held(am: &Alertmanager, fp: &str) -> Vec<serde_json::Value> {
    let Some(text) = am.alerts_json() else {
        return Vec::new();
    };
    let all: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
    all.into_iter()
        .filter(|a| a["labels"]["fingerprint"] == fp)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_reaches_alertmanager_with_its_labels_and_its_resolution_clears_it() {
    let s = Services::start(None).await;
    let am = Alertmanager::start();
    let mut config = s.config();
    config.alertmanager.url = am.url();
    let metrics = Arc::new(Metrics::new());
    let running = common::spawn_consumer("alertmanager", config, metrics.clone());

    let starts = wall_now().plus_micros(-60_000_000);
    let fp = "reorg:aa:bb";
    let firing = alert_to_envelope(
        detectors::DetectorName::Chain,
        alert(fp, AlertState::Firing, starts, None),
    );
    common::publish(&s.js, &[firing], true).await;
    test_support::wait_until(TIMEOUT, "Alertmanager holds the alert", || async {
        !held(&am, fp).is_empty()
    })
    .await;
    let a = held(&am, fp).remove(0);
    let labels = &a["labels"];
    assert_eq!(labels["alertname"], "reorg");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["node"], "node3");
    assert_eq!(labels["detector"], "chain");
    assert_eq!(labels["subject"], samples::block_hash(13).to_string());
    let ann = &a["annotations"];
    assert_eq!(ann["summary"], "node3 reorged 2 blocks");
    assert_eq!(
        ann["evidence"],
        format!("depth=2\nfork_point={}", samples::block_hash(10))
    );
    assert_eq!(ann["depth"], "2");
    assert_eq!(ann["fork_point"], samples::block_hash(10).to_string());
    assert_eq!(a["status"]["state"], "active");

    let resolved = alert_to_envelope(
        detectors::DetectorName::Chain,
        alert(
            fp,
            AlertState::Resolved,
            starts,
            Some(starts.plus_micros(30_000_000)),
        ),
    );
    common::publish(&s.js, &[resolved], true).await;
    test_support::wait_until(TIMEOUT, "the resolution clears the alert", || async {
        held(&am, fp).is_empty()
    })
    .await;
    common::stop_consumer(running).await;
    let text = metrics.encode();
    assert!(
        text.contains("bmon_alertmanager_alerts_sent_total"),
        "{text}"
    );
    assert!(text.contains("bmon_alertmanager_active_alerts 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_alertmanager_refuses_is_dead_lettered_and_the_rest_are_delivered() {
    let s = Services::start(None).await;
    let am = Alertmanager::start();
    let mut config = s.config();
    config.alertmanager.url = am.url();
    let metrics = Arc::new(Metrics::new());

    let starts = wall_now().plus_micros(-60_000_000);
    // Ends before it starts: Alertmanager answers 400 for this alert.
    let bad = alert_to_envelope(
        detectors::DetectorName::Chain,
        alert(
            "reorg:bad",
            AlertState::Resolved,
            starts,
            Some(starts.plus_micros(-5_000_000)),
        ),
    );
    let good = alert_to_envelope(
        detectors::DetectorName::Chain,
        alert("reorg:good", AlertState::Firing, starts, None),
    );
    common::publish(&s.js, &[bad, good], true).await;
    let running = common::spawn_consumer("alertmanager", config, metrics.clone());
    test_support::wait_until(TIMEOUT, "the good alert is delivered", || async {
        !held(&am, "reorg:good").is_empty()
    })
    .await;
    test_support::wait_until(TIMEOUT, "both alerts settled", || async {
        s.backlog("alertmanager").await == 0
    })
    .await;
    common::stop_consumer(running).await;
    let dead = common::stream_messages(&s.js, "BMON_DEAD").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].subject.as_str(), "bmon.dead.alertmanager");
    let reason = dead[0]
        .headers
        .as_ref()
        .and_then(|h| h.get(consumers::runtime::HEADER_DEAD_REASON))
        .map(|v| v.to_string());
    assert_eq!(reason.as_deref(), Some("rejected"));
    let text = metrics.encode();
    assert!(
        text.contains("bmon_alertmanager_rejected_alerts_total 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_router_posts_its_active_alerts_again() {
    let s = Services::start(None).await;
    let first = Alertmanager::start();
    let mut config = s.config();
    config.alertmanager.url = first.url();
    let starts = wall_now().plus_micros(-60_000_000);
    let envelopes = [
        alert_to_envelope(
            detectors::DetectorName::Chain,
            alert("reorg:still", AlertState::Firing, starts, None),
        ),
        alert_to_envelope(
            detectors::DetectorName::Chain,
            alert("reorg:over", AlertState::Firing, starts, None),
        ),
        alert_to_envelope(
            detectors::DetectorName::Chain,
            alert(
                "reorg:over",
                AlertState::Resolved,
                starts,
                Some(starts.plus_micros(1_000_000)),
            ),
        ),
    ];
    common::publish(&s.js, &envelopes, true).await;
    let running = common::spawn_consumer("alertmanager", config.clone(), Arc::new(Metrics::new()));
    test_support::wait_until(TIMEOUT, "delivered to the first Alertmanager", || async {
        !held(&first, "reorg:still").is_empty() && s.backlog("alertmanager").await == 0
    })
    .await;
    common::stop_consumer(running).await;

    // Everything is acked; a fresh Alertmanager learns the active alert from the warm-up.
    let second = Alertmanager::start();
    config.alertmanager.url = second.url();
    let running = common::spawn_consumer("alertmanager", config, Arc::new(Metrics::new()));
    test_support::wait_until(
        TIMEOUT,
        "the active alert re-posted after restart",
        || async { !held(&second, "reorg:still").is_empty() },
    )
    .await;
    common::stop_consumer(running).await;
    assert!(
        held(&second, "reorg:over").is_empty(),
        "a resolved alert is not re-posted"
    );
}
