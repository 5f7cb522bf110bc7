//! The shape of a debug.log line in each Core version simnet can imitate: timestamp, optional
//! `[thread]` and `[category]` prefixes, and the number formats the messages use. Pure
//! functions, no I/O.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Which Core version's debug.log lines a node writes.
///
/// Every format writes microsecond timestamps (`-logtimemicros`), so log-derived times can be
/// compared with the truth file to the microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogFormat {
    /// Core 0.18 (`-logthreadnames -logtimemicros`): `2019-08-12T04:01:45.123456Z [msghand] msg`.
    /// No categories, 0.18's wording (no `Saw new header` lines, `log2_work` with 8
    /// significant digits, `Callbacks` bench stage).
    #[serde(rename = "v0.18")]
    V018,
    /// Core 24/25 (`-logthreadnames -logtimemicros`):
    /// `2023-05-16T05:49:52.202998Z [msghand] [validation] msg`.
    #[serde(rename = "v25")]
    V25,
    /// Core 30 (`-logtimemicros -logthreadnames=0`): `2026-11-25T15:52:39.141167Z [net] msg`.
    #[serde(rename = "v30")]
    V30,
}

impl LogFormat {
    /// The format a node of Core version `version` (as `getnetworkinfo` reports it) writes:
    /// before 24 the 0.18 shape, 24 to 26 the v25 shape, from 27 on the v30 shape.
    pub fn for_version(version: u32) -> LogFormat {
        if version < 240_000 {
            LogFormat::V018
        } else if version < 270_000 {
            LogFormat::V25
        } else {
            LogFormat::V30
        }
    }

    /// The name used in scenario files (`"v0.18"`, `"v25"`, `"v30"`).
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::V018 => "v0.18",
            LogFormat::V25 => "v25",
            LogFormat::V30 => "v30",
        }
    }

    /// Whether lines carry a `[thread]` prefix.
    pub fn thread_names(self) -> bool {
        !matches!(self, LogFormat::V30)
    }

    /// Whether debug lines carry a `[category]` prefix.
    pub fn categories(self) -> bool {
        !matches!(self, LogFormat::V018)
    }

    /// How much slower than v30 this version validates, for plausible `-debug=bench` numbers.
    pub(crate) fn bench_factor(self) -> f64 {
        match self {
            LogFormat::V018 => 2.2,
            LogFormat::V25 => 1.4,
            LogFormat::V30 => 1.0,
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` for microseconds since the Unix epoch (UTC).
pub fn iso_micros(t_us: u64) -> String {
    let secs = t_us / 1_000_000;
    let micros = t_us % 1_000_000;
    let mut s = iso_seconds(secs);
    s.pop();
    let _ = write!(s, ".{micros:06}Z");
    s
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (UTC), Core's
/// `FormatISO8601DateTime`.
pub fn iso_seconds(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    schema::ids::civil_from_days(days)
}

/// One full line (without the newline) in `format`.
pub fn render(
    format: LogFormat,
    t_us: u64,
    thread: &str,
    category: Option<&str>,
    message: &str,
) -> String {
    let mut s = iso_micros(t_us);
    s.reserve(message.len() + 32);
    s.push(' ');
    if format.thread_names() {
        s.push('[');
        s.push_str(thread);
        s.push_str("] ");
    }
    if let (true, Some(c)) = (format.categories(), category) {
        s.push('[');
        s.push_str(c);
        s.push_str("] ");
    }
    s.push_str(message);
    s
}

/// C's `%.8g`: 8 significant digits, trailing zeros removed (0.18's `log2_work`).
pub fn g8(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let int_digits = (v.abs().log10().floor() as i32 + 1).max(1);
    let decimals = (8 - int_digits).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// Core's version string for a `getnetworkinfo` version number: `v0.18.1` before 22,
/// `v25.0.0`, `v30.99.0` after.
pub fn version_string(version: u32) -> String {
    let major = version / 10_000;
    let minor = (version / 100) % 100;
    let patch = version % 100;
    if major < 22 {
        format!("v0.{major}.{minor}")
    } else {
        format!("v{major}.{minor}.{patch}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_iso_with_microseconds() {
        // 2026-11-25T15:52:39.141167Z, a line of the v30 fixture.
        assert_eq!(
            iso_micros(1_795_621_959_141_167),
            "2026-11-25T15:52:39.141167Z"
        );
        assert_eq!(iso_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_seconds(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_seconds(1_296_688_602), "2011-02-02T23:16:42Z");
    }

    #[test]
    fn prefixes_follow_each_version() {
        let t = 1_795_621_959_141_167;
        assert_eq!(
            render(LogFormat::V30, t, "msghand", Some("net"), "x"),
            "2026-11-25T15:52:39.141167Z [net] x"
        );
        assert_eq!(
            render(LogFormat::V30, t, "msghand", None, "x"),
            "2026-11-25T15:52:39.141167Z x"
        );
        assert_eq!(
            render(LogFormat::V25, t, "msghand", Some("net"), "x"),
            "2026-11-25T15:52:39.141167Z [msghand] [net] x"
        );
        assert_eq!(
            render(LogFormat::V018, t, "msghand", Some("net"), "x"),
            "2026-11-25T15:52:39.141167Z [msghand] x"
        );
    }

    #[test]
    fn eight_significant_digits_like_printf_g() {
        assert_eq!(g8(90.954_156_28), "90.954156");
        assert_eq!(g8(7.807_354_922_057_604), "7.8073549");
        assert_eq!(g8(1.0), "1");
        assert_eq!(g8(2.0), "2");
    }

    #[test]
    fn version_strings_match_core() {
        assert_eq!(version_string(180_100), "v0.18.1");
        assert_eq!(version_string(250_000), "v25.0.0");
        assert_eq!(version_string(309_900), "v30.99.0");
    }

    #[test]
    fn default_format_follows_the_version() {
        assert_eq!(LogFormat::for_version(180_100), LogFormat::V018);
        assert_eq!(LogFormat::for_version(250_000), LogFormat::V25);
        assert_eq!(LogFormat::for_version(280_000), LogFormat::V30);
        assert_eq!(LogFormat::for_version(309_900), LogFormat::V30);
    }
}
