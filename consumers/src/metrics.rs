//! Prometheus metrics of the consumer runtime and the ClickHouse writer, and the `/metrics`
//! endpoint serving them.
//!
//! Names follow `bmon_<component>_<thing>_<unit>[_total]`. Labels are the consumer name, the
//! stream and (writer) the table: all low-cardinality.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::Error;

/// Labels of the runtime's metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    /// Durable consumer name.
    pub consumer: String,
    /// Stream name.
    pub stream: String,
}

/// Labels of dead-letter counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLabels {
    /// Durable consumer name.
    pub consumer: String,
    /// Stream name.
    pub stream: String,
    /// Why: `malformed`, `unknown_kind`, `newer_schema`, `rejected`.
    pub reason: String,
}

/// Labels of the writer's metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    /// ClickHouse table.
    pub table: String,
}

/// Labels of the writer's insert failures.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InsertErrorLabels {
    /// ClickHouse table.
    pub table: String,
    /// `transient`, `poison` or `fatal`.
    pub class: String,
}

/// Labels of a detector's metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DetectorLabels {
    /// Detector name (`chain`, `health`, ...).
    pub detector: String,
}

/// Labels of published alerts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    /// Detector name.
    pub detector: String,
    /// Alert kind (a fixed set per detector).
    pub alert_kind: String,
    /// `firing` or `resolved`.
    pub state: String,
}

/// Labels of Alertmanager posts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PostLabels {
    /// `ok`, `transient` (retried) or `rejected` (4xx).
    pub outcome: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn handle_histogram() -> Histogram {
    // 1 ms .. ~33 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric of one consumer process.
pub struct Metrics {
    registry: Registry,
    received: Family<StreamLabels, Counter>,
    acked: Family<StreamLabels, Counter>,
    naked: Family<StreamLabels, Counter>,
    termed: Family<StreamLabels, Counter>,
    dead_lettered: Family<DeadLabels, Counter>,
    pending: Family<StreamLabels, Gauge>,
    handle_seconds: HistogramFamily<StreamLabels>,
    rows: Family<TableLabels, Counter>,
    insert_errors: Family<InsertErrorLabels, Counter>,
    insert_seconds: HistogramFamily<TableLabels>,
    detector_alerts: Family<AlertLabels, Counter>,
    detector_duplicates: Family<DetectorLabels, Counter>,
    detector_ticks: Family<DetectorLabels, Counter>,
    detector_warmup: Family<DetectorLabels, Counter>,
    am_posts: Family<PostLabels, Counter>,
    am_sent: Counter,
    am_rejected: Counter,
    am_active: Gauge,
    am_post_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let received = Family::<StreamLabels, Counter>::default();
        let acked = Family::<StreamLabels, Counter>::default();
        let naked = Family::<StreamLabels, Counter>::default();
        let termed = Family::<StreamLabels, Counter>::default();
        let dead_lettered = Family::<DeadLabels, Counter>::default();
        let pending = Family::<StreamLabels, Gauge>::default();
        let handle_seconds: HistogramFamily<StreamLabels> =
            Family::new_with_constructor(handle_histogram);
        let rows = Family::<TableLabels, Counter>::default();
        let insert_errors = Family::<InsertErrorLabels, Counter>::default();
        let insert_seconds: HistogramFamily<TableLabels> =
            Family::new_with_constructor(handle_histogram);
        registry.register(
            "bmon_consumer_received_messages",
            "Messages fetched from JetStream",
            received.clone(),
        );
        registry.register(
            "bmon_consumer_acked_messages",
            "Messages acknowledged after their effect was durable",
            acked.clone(),
        );
        registry.register(
            "bmon_consumer_naked_messages",
            "Messages negatively acknowledged for redelivery (transient failures)",
            naked.clone(),
        );
        registry.register(
            "bmon_consumer_termed_messages",
            "Messages terminated (never redelivered): poison or undecodable",
            termed.clone(),
        );
        registry.register(
            "bmon_consumer_dead_lettered_messages",
            "Messages copied to bmon.dead.<consumer>, by reason",
            dead_lettered.clone(),
        );
        registry.register(
            "bmon_consumer_pending_messages",
            "Messages in the stream not yet delivered to this consumer (lag)",
            pending.clone(),
        );
        registry.register(
            "bmon_consumer_handle_seconds",
            "Time the handler took for one batch",
            handle_seconds.clone(),
        );
        registry.register(
            "bmon_writer_rows",
            "Rows inserted into ClickHouse, by table",
            rows.clone(),
        );
        registry.register(
            "bmon_writer_insert_errors",
            "Failed ClickHouse inserts, by table and failure class",
            insert_errors.clone(),
        );
        registry.register(
            "bmon_writer_insert_seconds",
            "Time one ClickHouse insert took, by table",
            insert_seconds.clone(),
        );
        let detector_alerts = Family::<AlertLabels, Counter>::default();
        let detector_duplicates = Family::<DetectorLabels, Counter>::default();
        let detector_ticks = Family::<DetectorLabels, Counter>::default();
        let detector_warmup = Family::<DetectorLabels, Counter>::default();
        let am_posts = Family::<PostLabels, Counter>::default();
        let am_sent = Counter::default();
        let am_rejected = Counter::default();
        let am_active = Gauge::default();
        let am_post_seconds = handle_histogram();
        registry.register(
            "bmon_detector_alerts",
            "Alerts a detector published (stored or already stored), by kind and state",
            detector_alerts.clone(),
        );
        registry.register(
            "bmon_detector_duplicate_alerts",
            "Alerts JetStream dropped as already stored (redelivery, replay)",
            detector_duplicates.clone(),
        );
        registry.register(
            "bmon_detector_ticks",
            "Ticks injected during quiet periods",
            detector_ticks.clone(),
        );
        registry.register(
            "bmon_detector_warmup_events",
            "Acknowledged events replayed on start to rebuild state",
            detector_warmup.clone(),
        );
        registry.register(
            "bmon_alertmanager_posts",
            "POSTs to Alertmanager's /api/v2/alerts, by outcome",
            am_posts.clone(),
        );
        registry.register(
            "bmon_alertmanager_alerts_sent",
            "Alerts Alertmanager accepted (new, resolved and re-posted)",
            am_sent.clone(),
        );
        registry.register(
            "bmon_alertmanager_rejected_alerts",
            "Alerts Alertmanager refused with a 4xx (dead-lettered)",
            am_rejected.clone(),
        );
        registry.register(
            "bmon_alertmanager_active_alerts",
            "Firing alerts kept and re-posted",
            am_active.clone(),
        );
        registry.register(
            "bmon_alertmanager_post_seconds",
            "Time one POST to Alertmanager took",
            am_post_seconds.clone(),
        );
        Metrics {
            registry,
            detector_alerts,
            detector_duplicates,
            detector_ticks,
            detector_warmup,
            am_posts,
            am_sent,
            am_rejected,
            am_active,
            am_post_seconds,
            received,
            acked,
            naked,
            termed,
            dead_lettered,
            pending,
            handle_seconds,
            rows,
            insert_errors,
            insert_seconds,
        }
    }

    /// The handles one consumer's loop on one stream updates.
    pub fn stream(&self, consumer: &str, stream: &str) -> StreamMetrics {
        let l = StreamLabels {
            consumer: consumer.to_string(),
            stream: stream.to_string(),
        };
        StreamMetrics {
            received: self.received.get_or_create(&l).clone(),
            acked: self.acked.get_or_create(&l).clone(),
            naked: self.naked.get_or_create(&l).clone(),
            termed: self.termed.get_or_create(&l).clone(),
            pending: self.pending.get_or_create(&l).clone(),
            handle_seconds: self.handle_seconds.get_or_create(&l).clone(),
            dead_lettered: self.dead_lettered.clone(),
            labels: l,
        }
    }

    /// Counts rows inserted into `table` and the insert's duration.
    pub fn inserted(&self, table: &str, rows: u64, seconds: f64) {
        let l = TableLabels {
            table: table.to_string(),
        };
        self.rows.get_or_create(&l).inc_by(rows);
        self.insert_seconds.get_or_create(&l).observe(seconds);
    }

    /// Counts one failed insert into `table`.
    pub fn insert_failed(&self, table: &str, class: &str) {
        self.insert_errors
            .get_or_create(&InsertErrorLabels {
                table: table.to_string(),
                class: class.to_string(),
            })
            .inc();
    }

    /// Counts one alert published by `detector`.
    pub fn alert_published(&self, detector: &str, alert_kind: &str, state: &str) {
        self.detector_alerts
            .get_or_create(&AlertLabels {
                detector: detector.to_string(),
                alert_kind: alert_kind.to_string(),
                state: state.to_string(),
            })
            .inc();
    }

    fn detector(&self, family: &Family<DetectorLabels, Counter>, detector: &str, n: u64) {
        family
            .get_or_create(&DetectorLabels {
                detector: detector.to_string(),
            })
            .inc_by(n);
    }

    /// Counts alerts JetStream dropped as duplicates.
    pub fn duplicate_alerts(&self, detector: &str, n: u64) {
        self.detector(&self.detector_duplicates, detector, n);
    }

    /// Counts one injected tick.
    pub fn tick(&self, detector: &str) {
        self.detector(&self.detector_ticks, detector, 1);
    }

    /// Counts events replayed by the warm-up.
    pub fn warmup_events(&self, detector: &str, n: u64) {
        self.detector(&self.detector_warmup, detector, n);
    }

    /// Counts one POST to Alertmanager (`ok`, `transient`, `rejected`) and its duration.
    pub fn am_post(&self, outcome: &str, seconds: f64) {
        self.am_posts
            .get_or_create(&PostLabels {
                outcome: outcome.to_string(),
            })
            .inc();
        self.am_post_seconds.observe(seconds);
    }

    /// Counts alerts Alertmanager accepted.
    pub fn am_sent(&self, n: u64) {
        self.am_sent.inc_by(n);
    }

    /// Counts alerts Alertmanager refused.
    pub fn am_rejected(&self, n: u64) {
        self.am_rejected.inc_by(n);
    }

    /// Sets the number of active alerts.
    pub fn am_active(&self, n: usize) {
        self.am_active.set(n as i64);
    }

    /// The text exposition (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Metric handles of one consumer on one stream.
#[derive(Clone)]
pub struct StreamMetrics {
    /// Messages fetched.
    pub received: Counter,
    /// Messages acked.
    pub acked: Counter,
    /// Messages nak'd.
    pub naked: Counter,
    /// Messages term'd.
    pub termed: Counter,
    /// Lag.
    pub pending: Gauge,
    /// Handler time per batch.
    pub handle_seconds: Histogram,
    dead_lettered: Family<DeadLabels, Counter>,
    labels: StreamLabels,
}

impl StreamMetrics {
    /// Counts one dead letter for `reason`.
    pub fn dead_lettered(&self, reason: &str) {
        self.dead_lettered
            .get_or_create(&DeadLabels {
                consumer: self.labels.consumer.clone(),
                stream: self.labels.stream.clone(),
                reason: reason.to_string(),
            })
            .inc();
    }
}

/// Binds `addr` and serves `/metrics` until `shutdown`; returns the bound address (useful
/// with port 0) once listening.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<SocketAddr, Error> {
    let (bound, _task) = process::metrics::serve(addr, move || metrics.encode(), shutdown)
        .await
        .map_err(|e| Error::MetricsListen {
            addr,
            source: e.source,
        })?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_carry_the_consumer_and_stream() {
        let m = Metrics::new();
        let s = m.stream("ch-writer", "BMON_EVENTS");
        s.received.inc_by(3);
        s.dead_lettered("malformed");
        m.inserted("node_status", 2, 0.01);
        let text = m.encode();
        assert!(text.contains(
            "bmon_consumer_received_messages_total{consumer=\"ch-writer\",stream=\"BMON_EVENTS\"} 3"
        ), "{text}");
        assert!(text.contains("reason=\"malformed\"} 1"), "{text}");
        assert!(
            text.contains("bmon_writer_rows_total{table=\"node_status\"} 2"),
            "{text}"
        );
    }
}
