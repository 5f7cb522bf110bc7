//! The agent's Prometheus metrics (`bmon_agent_*`, every series labelled with the node) and the
//! small HTTP server that exposes them on `/metrics`.
//!
//! Labels stay low-cardinality: event kind, ZMQ topic, RPC method and fixed reason names;
//! never a hash, txid or address.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// Label set with one `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// Label set with one `topic` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: String,
}

/// Label set with one `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

/// Label set with one `method` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: String,
}

struct Inner {
    registry: Registry,
    events_published: Family<KindLabel, Counter>,
    publish_errors: Counter,
    spool_bytes: Gauge,
    spool_events: Gauge,
    spooled: Counter,
    spool_dropped: Counter,
    spool_errors: Counter,
    zmq_messages: Family<TopicLabel, Counter>,
    zmq_malformed: Family<ReasonLabel, Counter>,
    rpc_calls: Family<MethodLabel, Counter>,
    rpc_errors: Family<MethodLabel, Counter>,
    resyncs: Family<ReasonLabel, Counter>,
    mirror_checks: Family<ReasonLabel, Counter>,
    log: LogMetrics,
}

/// The debug.log source's series (`bmon_agent_log_*`).
#[derive(Default)]
struct LogMetrics {
    lines: Counter,
    unparseable: Family<ReasonLabel, Counter>,
    batches: Counter,
    events: Family<KindLabel, Counter>,
    rotations: Counter,
    truncations: Counter,
    lost_files: Counter,
    split_lines: Counter,
    read_errors: Counter,
    state_errors: Counter,
    offset: Gauge,
}

impl LogMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register("log_lines", "debug.log lines read", self.lines.clone());
        registry.register(
            "log_unparseable_lines",
            "debug.log lines without a timestamp (shipped as they are, no events), by reason",
            self.unparseable.clone(),
        );
        registry.register(
            "log_batches",
            "log_batch messages handed to the publisher",
            self.batches.clone(),
        );
        registry.register(
            "log_events",
            "Events extracted from debug.log, by kind",
            self.events.clone(),
        );
        registry.register(
            "log_rotations",
            "debug.log rotations (rename or delete and recreate) followed",
            self.rotations.clone(),
        );
        registry.register(
            "log_truncations",
            "debug.log copy-truncations detected (lines written just before one may be lost)",
            self.truncations.clone(),
        );
        registry.register(
            "log_lost_files",
            "Rotated debug.logs gone before their rest could be read (after an agent restart)",
            self.lost_files.clone(),
        );
        registry.register(
            "log_split_lines",
            "debug.log lines longer than the line limit, shipped in pieces",
            self.split_lines.clone(),
        );
        registry.register(
            "log_read_errors",
            "Failed reads of debug.log (retried on the next poll)",
            self.read_errors.clone(),
        );
        registry.register(
            "log_state_errors",
            "Failed saves of the debug.log position (a restart may re-send lines, de-duplicated)",
            self.state_errors.clone(),
        );
        registry.register(
            "log_offset",
            "Byte offset in the debug.log being read, after the last line handed to the publisher",
            self.offset.clone(),
        );
    }
}

/// What the debug.log follower went through, as counts since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailCounts {
    /// Rotations followed.
    pub rotations: u64,
    /// Copy-truncations detected.
    pub truncations: u64,
    /// Rotated files lost.
    pub lost_files: u64,
    /// Over-long lines split.
    pub split_lines: u64,
}

/// Handle to the agent's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A fresh registry whose series carry `node="<node>"`.
    pub fn new(node: &schema::NodeId) -> Metrics {
        let mut registry = Registry::with_prefix_and_labels(
            "bmon_agent",
            [(Cow::Borrowed("node"), Cow::Owned(node.to_string()))].into_iter(),
        );
        let events_published = Family::<KindLabel, Counter>::default();
        let publish_errors = Counter::default();
        let spool_bytes = Gauge::default();
        let spool_events = Gauge::default();
        let spooled = Counter::default();
        let spool_dropped = Counter::default();
        let spool_errors = Counter::default();
        let zmq_messages = Family::<TopicLabel, Counter>::default();
        let zmq_malformed = Family::<ReasonLabel, Counter>::default();
        let rpc_calls = Family::<MethodLabel, Counter>::default();
        let rpc_errors = Family::<MethodLabel, Counter>::default();
        let resyncs = Family::<ReasonLabel, Counter>::default();
        let mirror_checks = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "events_published",
            "Events acknowledged by JetStream, by kind",
            events_published.clone(),
        );
        registry.register(
            "publish_errors",
            "Publishes that failed or were not acknowledged (the events went to the spool)",
            publish_errors.clone(),
        );
        registry.register(
            "spool_bytes",
            "Bytes held in the disk spool",
            spool_bytes.clone(),
        );
        registry.register(
            "spool_events",
            "Events held in the disk spool",
            spool_events.clone(),
        );
        registry.register(
            "spooled_events",
            "Events written to the disk spool",
            spooled.clone(),
        );
        registry.register(
            "spool_dropped_events",
            "Events dropped because the spool was full or could not be written",
            spool_dropped.clone(),
        );
        registry.register(
            "spool_errors",
            "Spool reads or writes that failed (a corrupt record, a full disk)",
            spool_errors.clone(),
        );
        registry.register(
            "zmq_messages",
            "ZMQ messages received, by topic",
            zmq_messages.clone(),
        );
        registry.register(
            "zmq_malformed_frames",
            "ZMQ messages that could not be decoded, by reason",
            zmq_malformed.clone(),
        );
        registry.register("rpc_calls", "RPC calls, by method", rpc_calls.clone());
        registry.register(
            "rpc_errors",
            "RPC calls that failed, by method",
            rpc_errors.clone(),
        );
        registry.register(
            "resyncs",
            "RPC resyncs of chain and mempool, by reason",
            resyncs.clone(),
        );
        registry.register(
            "mempool_mirror_checks",
            "Mempool mirror compared with getrawmempool, by result (equal, differs, in_flight)",
            mirror_checks.clone(),
        );
        let log = LogMetrics::default();
        log.register(&mut registry);
        Metrics {
            inner: Arc::new(Inner {
                registry,
                events_published,
                publish_errors,
                spool_bytes,
                spool_events,
                spooled,
                spool_dropped,
                spool_errors,
                zmq_messages,
                zmq_malformed,
                rpc_calls,
                rpc_errors,
                resyncs,
                mirror_checks,
                log,
            }),
        }
    }

    /// One event acknowledged by JetStream.
    pub fn published(&self, kind: schema::Kind) {
        self.inner
            .events_published
            .get_or_create(&KindLabel {
                kind: kind.as_str().to_string(),
            })
            .inc();
    }

    /// A publish failed.
    pub fn publish_error(&self) {
        self.inner.publish_errors.inc();
    }

    /// Current spool size.
    pub fn spool_size(&self, bytes: u64, events: u64) {
        self.inner
            .spool_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.inner
            .spool_events
            .set(i64::try_from(events).unwrap_or(i64::MAX));
    }

    /// Events written to the spool.
    pub fn spooled(&self, n: u64) {
        self.inner.spooled.inc_by(n);
    }

    /// Events dropped because the spool was full or could not be written.
    pub fn spool_dropped(&self, n: u64) {
        self.inner.spool_dropped.inc_by(n);
    }

    /// A spool read or write failed.
    pub fn spool_error(&self) {
        self.inner.spool_errors.inc();
    }

    /// Spool reads or writes that failed so far.
    pub fn spool_error_count(&self) -> u64 {
        self.inner.spool_errors.get()
    }

    /// A ZMQ message arrived on `topic`.
    pub fn zmq_message(&self, topic: &str) {
        self.inner
            .zmq_messages
            .get_or_create(&TopicLabel {
                topic: topic.to_string(),
            })
            .inc();
    }

    /// A ZMQ message could not be decoded.
    pub fn zmq_malformed(&self, reason: &str) {
        self.inner
            .zmq_malformed
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// An RPC call was made.
    pub fn rpc_call(&self, method: &str) {
        self.inner
            .rpc_calls
            .get_or_create(&MethodLabel {
                method: method.to_string(),
            })
            .inc();
    }

    /// An RPC call failed.
    pub fn rpc_error(&self, method: &str) {
        self.inner
            .rpc_errors
            .get_or_create(&MethodLabel {
                method: method.to_string(),
            })
            .inc();
    }

    /// A resync ran.
    pub fn resync(&self, reason: &str) {
        self.inner
            .resyncs
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The mempool mirror was compared with the node's list (`equal`, `differs`, `in_flight`).
    pub fn mirror_check(&self, result: &str) {
        self.inner
            .mirror_checks
            .get_or_create(&ReasonLabel {
                reason: result.to_string(),
            })
            .inc();
    }

    /// Mirror checks so far with `result` (tests, status).
    pub fn mirror_check_count(&self, result: &str) -> u64 {
        self.inner
            .mirror_checks
            .get_or_create(&ReasonLabel {
                reason: result.to_string(),
            })
            .get()
    }

    /// Resyncs so far for `reason` (tests, status).
    pub fn resync_count(&self, reason: &str) -> u64 {
        self.inner
            .resyncs
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .get()
    }

    /// debug.log lines read.
    pub fn log_lines(&self, n: u64) {
        self.inner.log.lines.inc_by(n);
    }

    /// A debug.log line could not be parsed.
    pub fn log_unparseable(&self, reason: &str) {
        self.inner
            .log
            .unparseable
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// A `log_batch` was handed to the publisher.
    pub fn log_batch(&self) {
        self.inner.log.batches.inc();
    }

    /// An event was extracted from debug.log.
    pub fn log_event(&self, kind: schema::Kind) {
        self.inner
            .log
            .events
            .get_or_create(&KindLabel {
                kind: kind.as_str().to_string(),
            })
            .inc();
    }

    /// The follower's counters grew from `before` to `now`.
    pub fn log_tail(&self, before: TailCounts, now: TailCounts) {
        let l = &self.inner.log;
        l.rotations
            .inc_by(now.rotations.saturating_sub(before.rotations));
        l.truncations
            .inc_by(now.truncations.saturating_sub(before.truncations));
        l.lost_files
            .inc_by(now.lost_files.saturating_sub(before.lost_files));
        l.split_lines
            .inc_by(now.split_lines.saturating_sub(before.split_lines));
    }

    /// Reading debug.log failed.
    pub fn log_read_error(&self) {
        self.inner.log.read_errors.inc();
    }

    /// Saving the debug.log position failed.
    pub fn log_state_error(&self) {
        self.inner.log.state_errors.inc();
    }

    /// The position after the last line handed to the publisher.
    pub fn log_offset(&self, offset: u64) {
        self.inner
            .log
            .offset
            .set(i64::try_from(offset).unwrap_or(i64::MAX));
    }

    /// debug.log lines read so far (tests, status).
    pub fn log_lines_count(&self) -> u64 {
        self.inner.log.lines.get()
    }

    /// Unparseable debug.log lines so far for `reason`.
    pub fn log_unparseable_count(&self, reason: &str) -> u64 {
        self.inner
            .log
            .unparseable
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .get()
    }

    /// Events of `kind` extracted from debug.log so far.
    pub fn log_event_count(&self, kind: schema::Kind) -> u64 {
        self.inner
            .log
            .events
            .get_or_create(&KindLabel {
                kind: kind.as_str().to_string(),
            })
            .get()
    }

    /// Rotations followed so far.
    pub fn log_rotation_count(&self) -> u64 {
        self.inner.log.rotations.get()
    }

    /// Number of malformed frames counted so far for `reason` (tests, status).
    pub fn malformed_count(&self, reason: &str) -> u64 {
        self.inner
            .zmq_malformed
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .get()
    }

    /// Events published so far of `kind`.
    pub fn published_count(&self, kind: schema::Kind) -> u64 {
        self.inner
            .events_published
            .get_or_create(&KindLabel {
                kind: kind.as_str().to_string(),
            })
            .get()
    }

    /// The registry in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Serves `/metrics` on `addr` until `shutdown` fires. Returns the bound address (port 0 picks
/// a free port) and the server task.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), crate::Error> {
    process::metrics::serve(addr, move || metrics.render(), shutdown)
        .await
        .map_err(|e| crate::Error::MetricsListen {
            addr,
            reason: e.source.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_prefixed_and_labelled_with_the_node() {
        let m = Metrics::new(&schema::NodeId::new("node7").unwrap());
        m.published(schema::Kind::TxSeen);
        m.zmq_malformed("short_body");
        m.rpc_call("getblockchaininfo");
        let text = m.render();
        assert!(
            text.contains("bmon_agent_events_published_total{node=\"node7\",kind=\"tx_seen\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "bmon_agent_zmq_malformed_frames_total{node=\"node7\",reason=\"short_body\"} 1"
        ));
        assert!(text.contains("bmon_agent_rpc_calls_total"));
        assert_eq!(m.malformed_count("short_body"), 1);
    }
}
