//! Times as the pages show and accept them: UTC, `2026-01-15 12:00:00.123`, parsed back from
//! what an HTML form sends (`2026-01-15T12:00`, with or without seconds) or from the
//! microseconds in links (`at=1768478400000000`).
//!
//! Durations are shown short (`45s`, `12m`, `3h05m`) or in milliseconds for propagation lags.

use schema::ids::civil_from_days;

/// Microseconds in a second.
pub const SEC: i64 = 1_000_000;

/// `2026-01-15 12:00:00.123` (UTC, milliseconds).
pub fn fmt_us(us: i64) -> String {
    let (date, sod) = split(us);
    let ms = us.rem_euclid(SEC) / 1000;
    format!("{date} {}.{ms:03}", hms(sod))
}

/// `2026-01-15 12:00:00` (UTC, whole seconds).
pub fn fmt_secs(secs: i64) -> String {
    let (date, sod) = split(secs.saturating_mul(SEC));
    format!("{date} {}", hms(sod))
}

/// `2026-01-15T12:00:00`: the value of an HTML `datetime-local` input (UTC).
pub fn fmt_input(us: i64) -> String {
    let (date, sod) = split(us);
    format!("{date}T{}", hms(sod))
}

fn split(us: i64) -> (String, i64) {
    let secs = us.div_euclid(SEC);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    (format!("{y:04}-{m:02}-{d:02}"), secs.rem_euclid(86_400))
}

fn hms(sod: i64) -> String {
    format!("{:02}:{:02}:{:02}", sod / 3600, (sod % 3600) / 60, sod % 60)
}

/// An age in seconds as `45s`, `12m`, `3h05m`, `2d04h` (negative ages read `0s`).
pub fn fmt_age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A lag in microseconds as `+1.234 s`, `+56 ms`, `0 ms`, `-3 ms`.
pub fn fmt_lag(us: i64) -> String {
    let sign = if us > 0 {
        "+"
    } else if us < 0 {
        "-"
    } else {
        ""
    };
    let a = us.unsigned_abs();
    if a >= 10 * SEC as u64 {
        format!("{sign}{:.1} s", a as f64 / 1e6)
    } else if a >= SEC as u64 {
        format!("{sign}{:.3} s", a as f64 / 1e6)
    } else {
        format!("{sign}{} ms", a / 1000)
    }
}

/// Reads a time a user or a link gave: microseconds or seconds since the epoch (by size), or
/// a UTC date `YYYY-MM-DD`, `YYYY-MM-DD HH:MM`, `YYYY-MM-DDTHH:MM[:SS[.fff]]` (an optional
/// trailing `Z` is accepted). Returns microseconds.
pub fn parse(text: &str) -> Option<i64> {
    let t = text.trim().trim_end_matches('Z');
    if t.is_empty() {
        return None;
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = t.parse().ok()?;
        // Seconds until the year 5138; anything larger is microseconds.
        return Some(if n < 100_000_000_000 {
            n.checked_mul(SEC)?
        } else {
            n
        });
    }
    let (date, clock) = match t.split_once(['T', ' ']) {
        Some((d, c)) => (d, Some(c)),
        None => (t, None),
    };
    let mut ymd = date.splitn(3, '-');
    let y: i64 = ymd.next()?.parse().ok()?;
    let m: u32 = ymd.next()?.parse().ok()?;
    let d: u32 = ymd.next()?.parse().ok()?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut us = days_from_civil(y, m, d) * 86_400 * SEC;
    if let Some(c) = clock {
        let (hms, frac) = match c.split_once('.') {
            Some((a, f)) => (a, Some(f)),
            None => (c, None),
        };
        let mut parts = hms.split(':');
        let h: i64 = parts.next()?.parse().ok()?;
        let mi: i64 = parts.next()?.parse().ok()?;
        let s: i64 = match parts.next() {
            Some(s) => s.parse().ok()?,
            None => 0,
        };
        if parts.next().is_some() || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        us += (h * 3600 + mi * 60 + s) * SEC;
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let digits: i64 = f.parse().ok()?;
            us += digits * 10_i64.pow(6 - f.len() as u32);
        }
    }
    Some(us)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The wall clock, µs since the epoch (for ages on pages; 0 if the clock is before 1970).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: i64 = 1_768_478_400 * SEC; // 2026-01-15 12:00:00 UTC

    #[test]
    fn times_show_as_utc_with_milliseconds() {
        assert_eq!(fmt_us(NOON + 123_456), "2026-01-15 12:00:00.123");
        assert_eq!(fmt_secs(1_768_478_400), "2026-01-15 12:00:00");
        assert_eq!(fmt_input(NOON), "2026-01-15T12:00:00");
        assert_eq!(fmt_us(0), "1970-01-01 00:00:00.000");
    }

    #[test]
    fn what_a_form_or_a_link_sends_parses_back() {
        assert_eq!(parse("2026-01-15T12:00"), Some(NOON));
        assert_eq!(parse("2026-01-15 12:00:00"), Some(NOON));
        assert_eq!(parse("2026-01-15T12:00:00.5Z"), Some(NOON + 500_000));
        assert_eq!(parse("2026-01-15"), Some(NOON - 12 * 3600 * SEC));
        assert_eq!(parse("1768478400"), Some(NOON));
        assert_eq!(parse(&NOON.to_string()), Some(NOON));
        assert_eq!(parse(&fmt_input(NOON + 7 * SEC)), Some(NOON + 7 * SEC));
    }

    #[test]
    fn nonsense_times_are_refused() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-01-15T25:00",
            "2026-01-15T12:00:00.1234567",
            "2026-01-15T12:00:00:00",
            "'; DROP TABLE logs",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ages_and_lags_read_short() {
        assert_eq!(fmt_age(-3), "0s");
        assert_eq!(fmt_age(45), "45s");
        assert_eq!(fmt_age(605), "10m05s");
        assert_eq!(fmt_age(3600 + 5 * 60), "1h05m");
        assert_eq!(fmt_age(2 * 86_400 + 4 * 3600), "2d04h");
        assert_eq!(fmt_lag(0), "0 ms");
        assert_eq!(fmt_lag(56_700), "+56 ms");
        assert_eq!(fmt_lag(-3_000), "-3 ms");
        assert_eq!(fmt_lag(1_234_000), "+1.234 s");
        assert_eq!(fmt_lag(75_000_000), "+75.0 s");
    }
}
