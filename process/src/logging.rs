//! Structured logs for every bmon process: `RUST_LOG` (else `default`) filters, one JSON
//! object per line when asked (for a log shipper), human-readable text otherwise, on stderr.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// Text for people.
    Text,
}

impl Format {
    /// JSON when `json`, else text.
    pub fn json(json: bool) -> Format {
        if json {
            Format::Json
        } else {
            Format::Text
        }
    }
}

/// Installs the process's log output; `default` (`info`, `warn`) applies when `RUST_LOG` is
/// unset or invalid. Calling it twice leaves the first in place.
pub fn init(format: Format, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        Format::Json => builder.json().try_init(),
        Format::Text => builder.try_init(),
    };
}
