//! Helpers shared by the integration tests: fixture paths and whole-file extraction.
#![allow(dead_code)]

use std::path::PathBuf;
use std::str::FromStr;

use debuglog::{parse_line, split_lines, Extractor, LogEvent};
use schema::UnixMicros;

/// A file under the shared fixtures (`BMON_FIXTURES` overrides the location).
pub fn fixture(rel: &str) -> PathBuf {
    test_support::fixture(rel)
}

/// Every event of a fixture log, in order, including those [`Extractor::finish`] flushes.
pub fn events_of(rel: &str) -> Vec<LogEvent> {
    let path = fixture(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut x = Extractor::new();
    let mut out = Vec::new();
    for (_, line) in split_lines(&bytes, 0) {
        if let Ok(l) = parse_line(line) {
            x.feed_into(&l, &mut out);
        }
    }
    out.extend(x.finish());
    out
}

/// `2026-11-25T15:53:03.085787Z` → µs.
pub fn at(ts: &str) -> UnixMicros {
    let line = format!("{ts} x");
    parse_line(line.as_bytes()).expect("test timestamp").time
}

/// Parses a hash or txid from display hex.
pub fn h<T: FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("test hash")
}
