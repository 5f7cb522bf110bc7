//! Prometheus metrics of `bmon-web`: requests by page and status, and page latency. Served at
//! `/metrics` by the same listener as the pages.
//!
//! Labels are the page (a fixed set, see [`page_of`]) and the status code: never a hash, a
//! txid or a node name from the path.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of the request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The page (`fleet`, `block`, ...).
    pub page: String,
    /// The HTTP status code.
    pub status: u16,
}

/// Labels of the latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PageLabels {
    /// The page.
    pub page: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Every metric of the web service.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    seconds: HistogramFamily<PageLabels>,
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
        let requests = Family::<RequestLabels, Counter>::default();
        let seconds: HistogramFamily<PageLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "bmon_web_requests",
            "HTTP requests answered, by page and status",
            requests.clone(),
        );
        registry.register(
            "bmon_web_page_seconds",
            "Time to answer a request, queries included, by page",
            seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            seconds,
        }
    }

    /// Counts one answered request and its duration.
    pub fn observe(&self, page: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                page: page.to_string(),
                status,
            })
            .inc();
        self.seconds
            .get_or_create(&PageLabels {
                page: page.to_string(),
            })
            .observe(seconds);
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

/// The page a request path belongs to, from a fixed set (`other` for anything unknown).
pub fn page_of(path: &str) -> &'static str {
    match path.trim_start_matches('/').split('/').next().unwrap_or("") {
        "" => "fleet",
        "tips" => "tips",
        "block" => "block",
        "tx" => "tx",
        "alerts" => "alerts",
        "logs" => "logs",
        "events" => "events",
        "mempools" => "mempools",
        "validation" => "validation",
        "peers" => "peers",
        "search" => "search",
        "metrics" => "metrics",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_page_and_status() {
        let m = Metrics::new();
        m.observe("block", 200, 0.01);
        m.observe("block", 200, 0.02);
        m.observe("block", 400, 0.001);
        let text = m.encode();
        assert!(
            text.contains("bmon_web_requests_total{page=\"block\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("bmon_web_requests_total{page=\"block\",status=\"400\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("bmon_web_page_seconds_count{page=\"block\"} 3"),
            "{text}"
        );
    }

    #[test]
    fn the_page_label_never_carries_the_path() {
        assert_eq!(page_of("/"), "fleet");
        assert_eq!(page_of("/block/000000abc"), "block");
        assert_eq!(page_of("/tx/ff"), "tx");
        assert_eq!(page_of("/wp-admin/x.php"), "other");
    }
}
