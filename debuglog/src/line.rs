//! The debug.log line parser: timestamp, optional bracketed prefixes, message.
//!
//! Pure and allocation-free: [`parse_line`] borrows from the input bytes, which may be
//! invalid UTF-8. The shapes it accepts, all seen in real Core logs (0.10 to 30):
//!
//! ```text
//! 2017-01-17 11:31:45 message                                   (0.10, no micros)
//! 2019-08-12 04:01:45.275508 message                            (0.13, -logtimemicros)
//! 2019-07-10T14:35:27Z [msghand] message                        (0.18, -logthreadnames)
//! 2023-05-16T05:49:52.203009Z [msghand] [net] message           (v25, categories shown)
//! 2022-10-22T14:22:49.157136Z [init] [init/common.cpp:149] [LogPackageVersion] message
//! 2022-10-22T14:22:49.319966Z [httpworker.0] [net.cpp:455] [ConnectNode] [net:debug] message
//! 2026-11-25T15:52:39.252448Z [warning] message                 (v30, level without thread)
//! ```
//!
//! Order of the prefixes: `[thread]`, then `[file:line] [function]`, then `[category]`,
//! `[category:level]` or `[level]`. A single bracket that names a known category or level is
//! a category or level, otherwise a thread; `[net]` and `[http]` (both a thread and a
//! category) are a thread only when a location or category bracket follows. A bracket with a
//! space or a `[` inside (`[Chainstate [ibd] @ height -1 (null)]`) starts the message.
//! Core also writes a few messages that span lines; the continuation lines have no
//! timestamp and are reported as [`LineError::NoTimestamp`].

use memchr::memchr;
use schema::event::LogLine;
use schema::UnixMicros;

/// Why a line could not be parsed. Counted by the caller; never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum LineError {
    /// The line is empty (blank lines at the top of a debug.log are normal).
    #[error("empty line")]
    Empty,
    /// The line does not start with a timestamp (a continuation of a multi-line message,
    /// or garbage).
    #[error("line does not start with a timestamp")]
    NoTimestamp,
}

/// One parsed line, borrowing from the input. Fields are raw bytes (possibly invalid UTF-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line's own timestamp (UTC), microseconds since the epoch.
    pub time: UnixMicros,
    /// `[thread]` (`-logthreadnames`), when present and non-empty.
    pub thread: Option<&'a [u8]>,
    /// `[file.cpp:line]` (`-logsourcelocations`), when present.
    pub location: Option<&'a [u8]>,
    /// `[function]` (`-logsourcelocations`), when present.
    pub function: Option<&'a [u8]>,
    /// `[category]` (`-debug=...`), when present.
    pub category: Option<&'a [u8]>,
    /// `[level]` or the level of `[category:level]`, when present.
    pub level: Option<&'a [u8]>,
    /// Everything after the prefixes (leading spaces kept: bench lines indent with them).
    pub message: &'a [u8],
}

impl Line<'_> {
    /// Copies the line into the wire type for shipping (`log_batch`); invalid UTF-8 is
    /// replaced with U+FFFD.
    pub fn to_log_line(&self, offset: u64) -> LogLine {
        let s = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        LogLine {
            time: self.time,
            offset,
            thread: s(self.thread),
            category: s(self.category),
            level: s(self.level),
            location: s(self.location),
            function: s(self.function),
            message: String::from_utf8_lossy(self.message).into_owned(),
        }
    }
}

/// Parses one line (without its `\n`; a trailing `\r` is ignored).
pub fn parse_line(bytes: &[u8]) -> Result<Line<'_>, LineError> {
    let bytes = match bytes.last() {
        Some(b'\r') => &bytes[..bytes.len() - 1],
        _ => bytes,
    };
    if bytes.is_empty() {
        return Err(LineError::Empty);
    }
    let (time, used) = parse_time(bytes).ok_or(LineError::NoTimestamp)?;
    let rest = match bytes.get(used) {
        None => &bytes[used..],
        Some(b' ') => &bytes[used + 1..],
        Some(_) => return Err(LineError::NoTimestamp),
    };
    let mut line = Line {
        time: UnixMicros(time),
        thread: None,
        location: None,
        function: None,
        category: None,
        level: None,
        message: rest,
    };
    let mut s = rest;
    let Some((first, after_first)) = take_bracket(s) else {
        return Ok(line);
    };
    let mut expect_thread = true;
    if is_location(first) {
        expect_thread = false;
    } else if let Some((cat, lvl)) = category_level(first) {
        let thread_too = matches!(first, b"net" | b"http" | b"qt" | b"ipc");
        let next_is_prefix = take_bracket(after_first)
            .is_some_and(|(n, _)| is_location(n) || category_level(n).is_some());
        if !(thread_too && next_is_prefix) {
            line.category = cat;
            line.level = lvl;
            line.message = after_first;
            return Ok(line);
        }
    }
    if expect_thread {
        line.thread = (!first.is_empty()).then_some(first);
        s = after_first;
        line.message = s;
    }
    if let Some((loc, after_loc)) = take_bracket(s).filter(|(b, _)| is_location(b)) {
        line.location = Some(loc);
        s = after_loc;
        if let Some((func, after_func)) = take_bracket(s) {
            line.function = Some(func);
            s = after_func;
        }
        line.message = s;
    }
    if let Some((b, after_cat)) = take_bracket(s) {
        if let Some((cat, lvl)) = category_level(b) {
            line.category = cat;
            line.level = lvl;
            line.message = after_cat;
        }
    }
    Ok(line)
}

/// Longest bracket content accepted as a prefix.
const MAX_BRACKET: usize = 96;

/// `[content] rest` → (content, rest) when `content` has no space and no `[`.
#[inline]
fn take_bracket(s: &[u8]) -> Option<(&[u8], &[u8])> {
    if s.first() != Some(&b'[') {
        return None;
    }
    let window = &s[1..s.len().min(MAX_BRACKET + 2)];
    let end = memchr(b']', window)?;
    let content = &window[..end];
    if content.iter().any(|&b| b == b' ' || b == b'[') {
        return None;
    }
    let after = &s[end + 2..];
    match after.first() {
        None => Some((content, after)),
        Some(b' ') => Some((content, &after[1..])),
        Some(_) => None,
    }
}

/// `file.cpp:123`: a dot before the last colon and only digits after it.
#[inline]
fn is_location(b: &[u8]) -> bool {
    let Some(colon) = memchr::memrchr(b':', b) else {
        return false;
    };
    let digits = &b[colon + 1..];
    !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && memchr(b'.', &b[..colon]).is_some()
}

/// A known category, a level, or `category:level` → (category, level).
#[inline]
#[allow(clippy::type_complexity)]
fn category_level(b: &[u8]) -> Option<(Option<&[u8]>, Option<&[u8]>)> {
    if is_level(b) {
        return Some((None, Some(b)));
    }
    if is_category(b) {
        return Some((Some(b), None));
    }
    let colon = memchr(b':', b)?;
    let (cat, lvl) = (&b[..colon], &b[colon + 1..]);
    (is_category(cat) && is_level(lvl)).then_some((Some(cat), Some(lvl)))
}

#[inline]
fn is_level(b: &[u8]) -> bool {
    matches!(b, b"trace" | b"debug" | b"info" | b"warning" | b"error")
}

/// Core's `-debug` categories, 0.10 to 30.
#[inline]
fn is_category(b: &[u8]) -> bool {
    matches!(
        b,
        b"net"
            | b"tor"
            | b"mempool"
            | b"http"
            | b"bench"
            | b"zmq"
            | b"walletdb"
            | b"db"
            | b"rpc"
            | b"estimatefee"
            | b"addrman"
            | b"selectcoins"
            | b"reindex"
            | b"cmpctblock"
            | b"rand"
            | b"prune"
            | b"proxy"
            | b"mempoolrej"
            | b"libevent"
            | b"coindb"
            | b"qt"
            | b"leveldb"
            | b"validation"
            | b"i2p"
            | b"ipc"
            | b"lock"
            | b"util"
            | b"blockstorage"
            | b"txreconciliation"
            | b"scan"
            | b"txpackages"
            | b"kernel"
            | b"privatebroadcast"
            | b"alert"
            | b"coinage"
            | b"all"
    )
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.ffffff][Z]` → (µs since the epoch, bytes used).
#[inline]
fn parse_time(b: &[u8]) -> Option<(i64, usize)> {
    if b.len() < 19 {
        return None;
    }
    if b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    #[inline]
    fn d2(b: &[u8], i: usize) -> Option<u32> {
        let (x, y) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
        (x < 10 && y < 10).then_some(u32::from(x) * 10 + u32::from(y))
    }
    let year = d2(b, 0)? * 100 + d2(b, 2)?;
    let (month, day) = (d2(b, 5)?, d2(b, 8)?);
    let (hour, min, sec) = (d2(b, 11)?, d2(b, 14)?, d2(b, 17)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut used = 19;
    let mut micros: i64 = 0;
    if b.get(19) == Some(&b'.') {
        let mut digits = 0;
        let mut i = 20;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() || digits == 9 {
                break;
            }
            if digits < 6 {
                micros = micros * 10 + i64::from(c - b'0');
            }
            digits += 1;
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        for _ in digits..6 {
            micros *= 10;
        }
        used = i;
    }
    if b.get(used) == Some(&b'Z') {
        used += 1;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec);
    Some((secs * 1_000_000 + micros, used))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
#[inline]
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Splits a buffer into lines: yields `(offset, line)` with `offset` counted from
/// `base_offset`, without the `\n`. A last line without `\n` is yielded too.
pub fn split_lines(buf: &[u8], base_offset: u64) -> SplitLines<'_> {
    SplitLines {
        buf,
        pos: 0,
        base: base_offset,
    }
}

/// Iterator returned by [`split_lines`].
#[derive(Debug, Clone)]
pub struct SplitLines<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Iterator for SplitLines<'a> {
    type Item = (u64, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<(u64, &'a [u8])> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.buf[start..];
        let (line, next) = match memchr(b'\n', rest) {
            Some(i) => (&rest[..i], start + i + 1),
            None => (rest, self.buf.len()),
        };
        self.pos = next;
        Some((self.base + start as u64, line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> i64 {
        parse_line(s.as_bytes()).unwrap().time.0
    }

    #[test]
    fn timestamps_in_every_shape_give_the_same_instant() {
        let base = 1_484_652_705_000_000; // 2017-01-17T11:31:45Z
        assert_eq!(t("2017-01-17 11:31:45 x"), base);
        assert_eq!(t("2017-01-17T11:31:45Z x"), base);
        assert_eq!(t("2017-01-17T11:31:45.141167Z x"), base + 141_167);
        assert_eq!(t("2017-01-17 11:31:45.141167 x"), base + 141_167);
        assert_eq!(t("2017-01-17T11:31:45.5Z x"), base + 500_000);
        assert_eq!(t("2026-11-25T15:52:39.141167Z"), 1_795_621_959_141_167);
    }

    #[test]
    fn lines_without_a_timestamp_are_errors() {
        assert_eq!(parse_line(b""), Err(LineError::Empty));
        assert_eq!(parse_line(b"\r"), Err(LineError::Empty));
        assert_eq!(parse_line(b"(code 64)"), Err(LineError::NoTimestamp));
        assert_eq!(
            parse_line(b"2019-13-12 04:01:45 x"),
            Err(LineError::NoTimestamp)
        );
        assert_eq!(
            parse_line(b"2019-08-12 04:01:45.x y"),
            Err(LineError::NoTimestamp)
        );
        assert_eq!(
            parse_line(b"2019-08-12 04:01:45junk"),
            Err(LineError::NoTimestamp)
        );
    }

    #[test]
    fn thread_location_function_category_level_are_split_off() {
        let l = parse_line(b"2022-10-22T14:22:49.319966Z [httpworker.0] [net.cpp:455] [ConnectNode] [net:debug] trying connection").unwrap();
        assert_eq!(l.thread, Some(&b"httpworker.0"[..]));
        assert_eq!(l.location, Some(&b"net.cpp:455"[..]));
        assert_eq!(l.function, Some(&b"ConnectNode"[..]));
        assert_eq!(l.category, Some(&b"net"[..]));
        assert_eq!(l.level, Some(&b"debug"[..]));
        assert_eq!(l.message, b"trying connection");
    }

    #[test]
    fn a_single_known_category_is_a_category_and_anything_else_a_thread() {
        let l = parse_line(b"2026-11-25T15:52:53.047287Z [bench]   - Load block from disk: 0.01ms")
            .unwrap();
        assert_eq!((l.thread, l.category), (None, Some(&b"bench"[..])));
        assert_eq!(l.message, b"  - Load block from disk: 0.01ms");
        let l = parse_line(b"2019-07-10T14:35:27Z [msghand] received: cmpctblock").unwrap();
        assert_eq!((l.thread, l.category), (Some(&b"msghand"[..]), None));
        let l = parse_line(b"2026-11-25T15:52:39.252448Z [warning] The use of rpcuser").unwrap();
        assert_eq!(
            (l.level, l.message),
            (Some(&b"warning"[..]), &b"The use of rpcuser"[..])
        );
        let l = parse_line(b"2023-10-11T13:00:00.000100Z [net] [net] Flushed 62000").unwrap();
        assert_eq!(
            (l.thread, l.category),
            (Some(&b"net"[..]), Some(&b"net"[..]))
        );
        let l = parse_line(b"2022-09-30T17:26:52Z [] Timeout downloading block").unwrap();
        assert_eq!(
            (l.thread, l.message),
            (None, &b"Timeout downloading block"[..])
        );
    }

    #[test]
    fn brackets_that_belong_to_the_message_stay_in_it() {
        let l = parse_line(b"2022-10-22T14:22:49.301613Z [init] [validation.cpp:4791] [ResizeCoinsCaches] [Chainstate [ibd] @ height -1 (null)] resized").unwrap();
        assert_eq!(l.function, Some(&b"ResizeCoinsCaches"[..]));
        assert_eq!(l.message, b"[Chainstate [ibd] @ height -1 (null)] resized");
        let l = parse_line(b"2022-10-22T14:22:49.270580Z [init] [validation.cpp:5406] [MaybeRebalanceCaches] [snapshot] allocating").unwrap();
        assert_eq!(
            (l.category, l.message),
            (None, &b"[snapshot] allocating"[..])
        );
    }

    #[test]
    fn split_lines_reports_offsets_and_the_unterminated_tail() {
        let v: Vec<_> = split_lines(b"ab\n\ncd", 10).collect();
        assert_eq!(v, vec![(10, &b"ab"[..]), (13, &b""[..]), (14, &b"cd"[..])]);
    }
}
