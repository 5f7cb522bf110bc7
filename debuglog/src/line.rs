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
//! 2026-12-05T03:30:18.611681Z [msghand] [validation.cpp:2890] [void UpdateTipLog(const
//!     ChainstateManager&, const CCoinsViewCache&, const CBlockIndex*, ...)] UpdateTip: ...
//!                                                               (v30 GCC build, one line)
//! 2026-12-05T03:42:53Z [all:info] Saw new cmpctblock header ... (v30, -loglevelalways)
//! 2026-12-05T03:43:33.138209Z (mocktime: 2026-12-05T03:44:33Z) [httpworker.11] ...
//! ```
//!
//! Core writes, in this order (`BCLog::Logger::FormatLogStrInPlace`): the timestamp (`T`/`Z`
//! since 0.18, `.ffffff` with `-logtimemicros`, then ` (mocktime: ..)` while a mock time is
//! set), `[thread]` (`-logthreadnames`, `unknown` when unnamed), `[file:line] [function]`
//! (`-logsourcelocations`), then `[category]`, `[category:level]` or `[level]` (the level is
//! left out for `debug` with a category and for `info` without one, unless
//! `-loglevelalways`, which prints `[all:info]` for uncategorised lines). `-logips` only adds
//! `peeraddr=` to messages.
//!
//! How a line is placed:
//! - `[file:line]` is content ending in `:digits` with a `.` before the colon. Right after it
//!   comes the function, which GCC builds print as the whole signature from
//!   `std::source_location`: spaces, parentheses, templates, `{anonymous}::`, lambdas, and
//!   nested brackets (`[with T = ..]`, `operator[]`, array types). The function bracket ends
//!   where the bracket nesting returns to zero and a space (or the end of the line) follows.
//!   If it never does (unbalanced brackets), the location is kept and everything after it is
//!   the message.
//! - A first bracket followed by a location is the thread, whatever its content (Core's
//!   `[basic block filter index]` thread has spaces).
//! - Otherwise a single bracket that names a known category or level is a category or level,
//!   else a thread. `[net]` and `[http]` (both a thread and a category) are a thread only when
//!   a category bracket follows: `[net] [net] Flushed ..` is thread and category, a lone
//!   `[net] msg` is read as the category (a line alone cannot tell which it was).
//! - Otherwise thread, category and level brackets hold no space and no `[` and at most 96
//!   bytes; a bracket that does not fit (`[Chainstate [ibd] @ height -1 (null)]`,
//!   `[default wallet]`) starts the message, and so does any bracket after the category or
//!   after a thread that no category follows (a wallet's `[w] CommitTransaction`). Whatever
//!   cannot be placed stays in the message: the line is never lost.
//! - Without `-logthreadnames` a wallet's own `[w]` opening the message is read as a thread
//!   (`[w] CommitTransaction:`), and with it a spaced thread name without a location stays in
//!   the message (`[basic block filter index] ..`): a line alone cannot tell. A file can:
//!   Core writes thread names on every line or on none, so [`LineReader`] learns which from the
//!   file's first line that shows it ([`ThreadNames::shown_by`]: a location, a thread before a
//!   category, a category first) and parses the lines after it without guessing. The agent
//!   and `bmon parse-log` read files through it; only lines before the first telling one
//!   (rare: any `-debug` category line tells) keep the guess.
//!
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

/// Parses one line (without its `\n`; a trailing `\r` is ignored), not knowing whether the
/// file has thread names: the first bracket is placed by its content (see the module docs).
///
/// Only a missing timestamp is an error. A line whose brackets cannot be placed is still a
/// line: whatever could not be placed stays at the start of `message`.
pub fn parse_line(bytes: &[u8]) -> Result<Line<'_>, LineError> {
    parse_line_as(bytes, ThreadNames::Unknown)
}

/// Whether a file's lines carry `[thread]` (`-logthreadnames`). Core writes it on every line
/// or on none, so one line that shows it settles it for the whole file, and the lines after
/// it need no guess (a wallet's `[w] CommitTransaction` is then a message, never a thread).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ThreadNames {
    /// Not known yet: the first bracket is placed by its content.
    #[default]
    Unknown,
    /// Every line has a thread name first.
    On,
    /// No line has a thread name.
    Off,
}

impl ThreadNames {
    /// What `line` (parsed with `Unknown`) tells of its file, if anything:
    /// - a source location with a bracket before it: thread names on; with none: off;
    /// - a thread followed by a category: on;
    /// - a category or level first that is no thread name too (`[net]`, `[http]` are both):
    ///   off.
    pub fn shown_by(line: &Line<'_>) -> ThreadNames {
        if line.location.is_some() {
            return if line.thread.is_some() {
                ThreadNames::On
            } else {
                ThreadNames::Off
            };
        }
        match (line.thread, line.category, line.level) {
            (Some(_), Some(_), _) => ThreadNames::On,
            (None, Some(c), _) if !is_thread_name_too(c) => ThreadNames::Off,
            (None, None, Some(_)) => ThreadNames::Off,
            _ => ThreadNames::Unknown,
        }
    }
}

/// Parses lines of one file, learning from them whether it has thread names
/// ([`ThreadNames`]). Start a new one for a new file (rotation, truncation).
#[derive(Debug, Clone, Copy, Default)]
pub struct LineReader {
    threads: ThreadNames,
}

impl LineReader {
    /// A reader that knows nothing of the file yet.
    pub fn new() -> LineReader {
        LineReader::default()
    }

    /// What the reader has learnt so far.
    pub fn threads(&self) -> ThreadNames {
        self.threads
    }

    /// Parses one line as [`parse_line_as`] with what is known of the file, and learns from it.
    ///
    /// A restarted bitcoind may log with other options into the same file. Core opens its log
    /// with blank lines, so a blank line forgets what was learnt; so does a line without any
    /// bracket in a file thought to have thread names.
    #[inline]
    pub fn parse<'a>(&mut self, bytes: &'a [u8]) -> Result<Line<'a>, LineError> {
        let mut line = match parse_line_as(bytes, self.threads) {
            Ok(line) => line,
            Err(LineError::Empty) => {
                self.threads = ThreadNames::Unknown;
                return Err(LineError::Empty);
            }
            Err(e) => return Err(e),
        };
        if self.threads == ThreadNames::On && line.thread.is_none() {
            self.threads = ThreadNames::Unknown;
            line = parse_line_as(bytes, ThreadNames::Unknown)?;
        }
        if self.threads == ThreadNames::Unknown {
            self.threads = ThreadNames::shown_by(&line);
        }
        Ok(line)
    }
}

/// Parses one line of a file whose thread names are `threads`: `On`, the first bracket is the
/// thread whatever it holds; `Off`, it never is (a bracket that is no location, category or
/// level stays in the message).
pub fn parse_line_as(bytes: &[u8], threads: ThreadNames) -> Result<Line<'_>, LineError> {
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
        Some(b' ') => skip_mocktime(&bytes[used + 1..]),
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
    match threads {
        ThreadNames::Unknown => prefixes(&mut line, rest),
        ThreadNames::On => threaded(&mut line, rest),
        ThreadNames::Off => unthreaded(&mut line, rest),
    }
    Ok(line)
}

/// `[net]`, `[http]`, `[qt]`, `[ipc]` name a thread as well as a category.
#[inline]
fn is_thread_name_too(b: &[u8]) -> bool {
    matches!(b, b"net" | b"http" | b"qt" | b"ipc")
}

/// Prefixes of a line from a file with thread names: the thread first (any content, spaces
/// included), then the rest as without.
#[inline]
fn threaded<'a>(line: &mut Line<'a>, s: &'a [u8]) {
    let Some((thread, rest)) = take_bracket(s).or_else(|| take_spaced(s)) else {
        return;
    };
    line.thread = (!thread.is_empty()).then_some(thread);
    line.message = rest;
    unthreaded(line, rest);
}

/// Prefixes of a line without a thread name: `[file:line] [function]`, then
/// `[category:level]`, each optional.
#[inline]
fn unthreaded<'a>(line: &mut Line<'a>, s: &'a [u8]) {
    match take_bracket(s) {
        Some((loc, after)) if is_location(loc) => located(line, loc, after),
        _ => category(line, s),
    }
}

/// Places the bracketed prefixes of `s` (Core's order: `[thread] [file:line] [function]
/// [category:level]`, each optional) into `line`, leaving the rest as the message.
#[inline]
fn prefixes<'a>(line: &mut Line<'a>, s: &'a [u8]) {
    let Some((first, after_first)) = take_bracket(s) else {
        // A thread name with spaces (the `basic block filter index` thread) is placed only
        // when a location follows: alone it reads like a message's bracket
        // (`[default wallet] ...`).
        if let Some((thread, rest)) = take_spaced(s) {
            if let Some((loc, after_loc)) = take_bracket(rest).filter(|(b, _)| is_location(b)) {
                line.thread = Some(thread);
                located(line, loc, after_loc);
            }
        }
        return;
    };
    if is_location(first) {
        located(line, first, after_first);
        return;
    }
    let second = take_bracket(after_first);
    if let Some((loc, after_loc)) = second.filter(|(b, _)| is_location(b)) {
        line.thread = (!first.is_empty()).then_some(first);
        located(line, loc, after_loc);
        return;
    }
    if let Some((cat, lvl)) = category_level(first) {
        // `[net]` and `[http]` are thread names too: a thread only when a category follows.
        let thread_too = is_thread_name_too(first);
        if !(thread_too && second.is_some_and(|(n, _)| category_level(n).is_some())) {
            line.category = cat;
            line.level = lvl;
            line.message = after_first;
            return;
        }
    }
    line.thread = (!first.is_empty()).then_some(first);
    line.message = after_first;
    if let Some((cat, lvl, rest)) = second.and_then(|(b, rest)| {
        let (cat, lvl) = category_level(b)?;
        Some((cat, lvl, rest))
    }) {
        line.category = cat;
        line.level = lvl;
        line.message = rest;
    }
}

/// After `[file:line]`: the `[function]` (any text with balanced brackets), then an optional
/// `[category:level]`. Without a placeable function the rest is the message.
#[inline]
fn located<'a>(line: &mut Line<'a>, loc: &'a [u8], s: &'a [u8]) {
    line.location = Some(loc);
    line.message = s;
    let Some((func, rest)) = take_function(s) else {
        return;
    };
    line.function = Some(func);
    line.message = rest;
    category(line, rest);
}

/// An optional `[category]`, `[category:level]` or `[level]` at the start of `s`.
#[inline]
fn category<'a>(line: &mut Line<'a>, s: &'a [u8]) {
    if let Some((b, rest)) = take_bracket(s) {
        if let Some((cat, lvl)) = category_level(b) {
            line.category = cat;
            line.level = lvl;
            line.message = rest;
        }
    }
}

/// Skips the ` (mocktime: 2026-12-05T03:22:38Z)` Core writes after the timestamp while a
/// mock time is set (regtest `setmocktime`); the line keeps its real timestamp.
#[inline]
fn skip_mocktime(s: &[u8]) -> &[u8] {
    let Some(r) = s.strip_prefix(b"(mocktime: ") else {
        return s;
    };
    match memchr(b')', &r[..r.len().min(40)]) {
        Some(i) => match r.get(i + 1) {
            None => &r[i + 1..],
            Some(b' ') => &r[i + 2..],
            Some(_) => s,
        },
        None => s,
    }
}

/// Longest bracket content accepted as a thread, category or location.
const MAX_BRACKET: usize = 96;

/// `[content] rest` → (content, rest) when `content` has no space and no `[`.
#[inline]
fn take_bracket(s: &[u8]) -> Option<(&[u8], &[u8])> {
    bracket_if(s, |c| !c.iter().any(|&b| b == b' ' || b == b'['))
}

/// `[content] rest` → (content, rest) when `content` is not empty and has no `[` (spaces
/// allowed).
#[cold]
fn take_spaced(s: &[u8]) -> Option<(&[u8], &[u8])> {
    bracket_if(s, |c| !c.is_empty() && !c.contains(&b'['))
}

/// `[content] rest` → (content, rest) when the bracket closes within [`MAX_BRACKET`] bytes
/// and `accept(content)`.
#[inline]
fn bracket_if(s: &[u8], accept: impl Fn(&[u8]) -> bool) -> Option<(&[u8], &[u8])> {
    if s.first() != Some(&b'[') {
        return None;
    }
    let window = &s[1..s.len().min(MAX_BRACKET + 2)];
    let end = memchr(b']', window)?;
    let content = &window[..end];
    if !accept(content) {
        return None;
    }
    after_bracket(content, &s[end + 2..])
}

/// `[function] rest` → (function, rest), where the function may hold spaces and balanced
/// brackets: GCC's `std::source_location` gives whole signatures such as
/// `[void BCLog::Timer<T>::Log(const std::string&) [with T = std::chrono::duration<long int>]]`
/// or `[T& std::vector<T>::operator[](size_type)]`. The bracket ends where the nesting depth
/// returns to zero; if that is not followed by a space (or the end), there is no function.
#[inline]
fn take_function(s: &[u8]) -> Option<(&[u8], &[u8])> {
    if s.first() != Some(&b'[') {
        return None;
    }
    let mut depth = 1usize;
    let mut i = 1;
    while let Some(j) = memchr::memchr2(b'[', b']', &s[i..]) {
        let at = i + j;
        if s[at] == b'[' {
            depth += 1;
        } else {
            depth -= 1;
            if depth == 0 {
                return after_bracket(&s[1..at], &s[at + 1..]);
            }
        }
        i = at + 1;
    }
    None
}

/// The bracket's content and what follows its `] ` (or its `]` at the end of the line).
#[inline]
fn after_bracket<'a>(content: &'a [u8], after: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
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

    // Real lines of bmon's v30.99 captures (GCC build, -logsourcelocations), verbatim.
    const TIMER: &[u8] = b"2026-12-05T03:50:53.003128Z [shutoff] [logging/timer.h:58] [void BCLog::Timer<TimeType>::Log(const std::string&) [with TimeType = std::chrono::duration<long int, std::ratio<1, 1000> >; std::string = std::__cxx11::basic_string<char>]] [bench] FlushStateToDisk: write block and undo data to disk started";
    const LAMBDA: &[u8] = b"2026-12-05T03:50:12.246833Z [httpworker.8] [net_processing.cpp:2027] [{anonymous}::PeerManagerImpl::NewPoWValidBlock(const CBlockIndex*, const std::shared_ptr<const CBlock>&)::<lambda(CNode*)>] [net] PeerManager::NewPoWValidBlock sending header-and-ids 520ead3fceedc19730d7919beb8a17156eef334d79cb3140fcf9d4b7a8ed957f to peer=0";
    const WALLET: &[u8] = b"2026-12-05T03:50:52.900342Z [shutoff] [wallet/wallet.h:939] [void wallet::CWallet::WalletLogPrintf(util::ConstevalFormatString<sizeof... (Args)>, const Params& ...) const [with Params = {std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >}]] [w] Releasing wallet w..";
    const MOCKTIME: &[u8] = b"2026-12-05T03:51:49.579742Z (mocktime: 2026-12-05T03:52:49Z) [httpworker.15] [node/miner.cpp:173] [std::unique_ptr<node::CBlockTemplate> node::BlockAssembler::CreateNewBlock()] [all:info] CreateNewBlock(): block weight: 888 txs: 0 fees: 0 sigops 400";
    const NET_THREAD: &[u8] = b"2026-12-05T03:50:20.899799Z [net] [net.cpp:1926] [void CConnman::DisconnectNodes()] [net] Network not active, disconnecting peer=0";
    const SPACED_THREAD: &[u8] = b"2026-12-05T03:53:50.411922Z [basic block filter index] [util/thread.cpp:20] [void util::TraceThread(std::string_view, std::function<void()>)] basic block filter index thread start";

    #[test]
    fn whole_gcc_signatures_with_nested_brackets_are_one_function() {
        let l = parse_line(TIMER).unwrap();
        assert_eq!(l.thread, Some(&b"shutoff"[..]));
        assert_eq!(l.location, Some(&b"logging/timer.h:58"[..]));
        assert_eq!(
            l.function,
            Some(&b"void BCLog::Timer<TimeType>::Log(const std::string&) [with TimeType = std::chrono::duration<long int, std::ratio<1, 1000> >; std::string = std::__cxx11::basic_string<char>]"[..])
        );
        assert_eq!((l.category, l.level), (Some(&b"bench"[..]), None));
        assert_eq!(
            l.message,
            b"FlushStateToDisk: write block and undo data to disk started"
        );
        let l = parse_line(LAMBDA).unwrap();
        assert_eq!(
            l.function,
            Some(&b"{anonymous}::PeerManagerImpl::NewPoWValidBlock(const CBlockIndex*, const std::shared_ptr<const CBlock>&)::<lambda(CNode*)>"[..])
        );
        assert_eq!(l.category, Some(&b"net"[..]));
        assert!(l
            .message
            .starts_with(b"PeerManager::NewPoWValidBlock sending"));
        // The wallet's name is part of the message, not a category.
        let l = parse_line(WALLET).unwrap();
        assert!(l
            .function
            .is_some_and(|f| f.ends_with(b"std::allocator<char> >}]")));
        assert_eq!(
            (l.category, l.message),
            (None, &b"[w] Releasing wallet w.."[..])
        );
    }

    #[test]
    fn operator_brackets_and_array_types_stay_inside_the_function() {
        let l = parse_line(b"2026-12-05T03:30:03Z [t] [a.cpp:1] [T& std::vector<T>::operator[](size_type) [with T = int (*)[3]]] [net:debug] m").unwrap();
        assert_eq!(
            l.function,
            Some(&b"T& std::vector<T>::operator[](size_type) [with T = int (*)[3]]"[..])
        );
        assert_eq!(
            (l.category, l.level, l.message),
            (Some(&b"net"[..]), Some(&b"debug"[..]), &b"m"[..])
        );
        let l = parse_line(b"2026-12-05T03:30:03Z [a.cpp:1] [F] [Chainstate [ibd] @ height 1] m")
            .unwrap();
        assert_eq!((l.thread, l.function), (None, Some(&b"F"[..])));
        assert_eq!(l.message, b"[Chainstate [ibd] @ height 1] m");
    }

    #[test]
    fn an_unbalanced_function_leaves_the_rest_as_the_message() {
        let l = parse_line(b"2026-12-05T03:30:03Z [t] [a.cpp:1] [void f(int[) [net] UpdateTip: x")
            .unwrap();
        assert_eq!(
            (l.thread, l.location),
            (Some(&b"t"[..]), Some(&b"a.cpp:1"[..]))
        );
        assert_eq!((l.function, l.category), (None, None));
        assert_eq!(l.message, b"[void f(int[) [net] UpdateTip: x");
        let l = parse_line(b"2026-12-05T03:30:03Z [a.cpp:1] [f]x UpdateTip: x").unwrap();
        assert_eq!((l.function, l.message), (None, &b"[f]x UpdateTip: x"[..]));
    }

    #[test]
    fn mocktime_is_skipped_and_the_real_time_kept() {
        let l = parse_line(MOCKTIME).unwrap();
        assert_eq!(l.time.0, t("2026-12-05T03:51:49.579742Z x"));
        assert_eq!(l.thread, Some(&b"httpworker.15"[..]));
        assert_eq!(
            (l.category, l.level),
            (Some(&b"all"[..]), Some(&b"info"[..]))
        );
        assert!(l.message.starts_with(b"CreateNewBlock(): block weight"));
        let l = parse_line(b"2026-12-05T03:38:14Z (mocktime: 2026-12-05T03:39:13Z) UpdateTip: new")
            .unwrap();
        assert_eq!(l.message, b"UpdateTip: new");
        let l = parse_line(b"2026-12-05T03:38:14Z (mocktime: never UpdateTip").unwrap();
        assert_eq!(l.message, b"(mocktime: never UpdateTip");
    }

    #[test]
    fn a_thread_before_a_location_is_a_thread_whatever_its_name() {
        let l = parse_line(SPACED_THREAD).unwrap();
        assert_eq!(l.thread, Some(&b"basic block filter index"[..]));
        assert_eq!(l.location, Some(&b"util/thread.cpp:20"[..]));
        assert_eq!(l.message, b"basic block filter index thread start");
        // Without a location it cannot be told from a message's bracket.
        let l = parse_line(b"2026-12-05T03:53:50Z [basic block filter index] is enabled").unwrap();
        assert_eq!(
            (l.thread, l.message),
            (None, &b"[basic block filter index] is enabled"[..])
        );
        let l = parse_line(NET_THREAD).unwrap();
        assert_eq!(
            (l.thread, l.location, l.category),
            (
                Some(&b"net"[..]),
                Some(&b"net.cpp:1926"[..]),
                Some(&b"net"[..])
            )
        );
        assert_eq!(l.function, Some(&b"void CConnman::DisconnectNodes()"[..]));
        assert_eq!(l.message, b"Network not active, disconnecting peer=0");
    }

    #[test]
    fn split_lines_reports_offsets_and_the_unterminated_tail() {
        let v: Vec<_> = split_lines(b"ab\n\ncd", 10).collect();
        assert_eq!(v, vec![(10, &b"ab"[..]), (13, &b""[..]), (14, &b"cd"[..])]);
    }

    #[test]
    fn a_file_shows_its_thread_names_once_and_a_wallet_bracket_then_stays_in_the_message() {
        // Plain format (real v30 lines): the wallet's `[bmon]` alone reads like a thread.
        let wallet = b"2026-12-05T03:47:11Z [bmon] Setting spkMan to active: id = 3d5b, type = legacy, internal = false";
        assert_eq!(parse_line(wallet).unwrap().thread, Some(&b"bmon"[..]));
        let mut r = LineReader::new();
        r.parse(b"2026-12-05T03:47:10Z Bitcoin Core version v30.99.0")
            .unwrap();
        assert_eq!(r.threads(), ThreadNames::Unknown);
        r.parse(b"2026-12-05T03:47:10Z [validation] Enqueuing BlockConnected")
            .unwrap();
        assert_eq!(r.threads(), ThreadNames::Off);
        let l = r.parse(wallet).unwrap();
        assert_eq!(l.thread, None);
        assert_eq!(&l.message[..7], b"[bmon] ");

        // With -logthreadnames, every first bracket is the thread, spaced ones too.
        let mut r = LineReader::new();
        r.parse(b"2026-12-05T03:47:10Z [msghand] [validation] Enqueuing BlockConnected")
            .unwrap();
        assert_eq!(r.threads(), ThreadNames::On);
        let l = r
            .parse(b"2026-12-05T03:47:11Z [httpworker.1] [bmon] Setting spkMan to active")
            .unwrap();
        assert_eq!(l.thread, Some(&b"httpworker.1"[..]));
        assert_eq!(l.category, None);
        assert_eq!(l.message, b"[bmon] Setting spkMan to active");
        let l = r
            .parse(b"2026-12-05T03:47:11Z [basic block filter index] thread start")
            .unwrap();
        assert_eq!(l.thread, Some(&b"basic block filter index"[..]));
        assert_eq!(l.message, b"thread start");
        let l = r
            .parse(b"2026-12-05T03:47:11Z [net] New manual v2 peer connected")
            .unwrap();
        assert_eq!((l.thread, l.category), (Some(&b"net"[..]), None));
    }

    #[test]
    fn a_restart_with_other_log_options_is_learnt_again() {
        let mut r = LineReader::new();
        r.parse(b"2026-12-05T03:47:10Z [msghand] [validation] Enqueuing BlockConnected")
            .unwrap();
        assert_eq!(r.threads(), ThreadNames::On);
        // Core opens its log with blank lines.
        assert_eq!(r.parse(b""), Err(LineError::Empty));
        assert_eq!(r.threads(), ThreadNames::Unknown);
        r.parse(b"2026-12-05T03:48:10Z [validation] Enqueuing BlockConnected")
            .unwrap();
        assert_eq!(r.threads(), ThreadNames::Off);

        // No blank line, but a line without a thread in a file thought to have them.
        let mut r = LineReader::new();
        r.parse(b"2026-12-05T03:47:10Z [msghand] [validation] Enqueuing BlockConnected")
            .unwrap();
        let l = r
            .parse(b"2026-12-05T03:48:10Z UpdateTip: new best=00ff")
            .unwrap();
        assert_eq!(
            (l.thread, l.message),
            (None, &b"UpdateTip: new best=00ff"[..])
        );
        assert_eq!(r.threads(), ThreadNames::Unknown);
    }

    #[test]
    fn a_lone_net_bracket_settles_nothing_but_a_location_does() {
        let mut r = LineReader::new();
        r.parse(b"2026-12-05T03:47:10Z [net] Added connection peer=1")
            .unwrap();
        assert_eq!(r.threads(), ThreadNames::Unknown);
        r.parse(b"2026-12-05T03:47:10Z [init] Bitcoin Core version")
            .unwrap();
        assert_eq!(r.threads(), ThreadNames::Unknown);
        r.parse(b"2026-12-05T03:47:10Z [init.cpp:120] [AppInit] Bitcoin Core version")
            .unwrap();
        assert_eq!(r.threads(), ThreadNames::Off);
        let mut r = LineReader::new();
        r.parse(b"2026-12-05T03:47:10Z [init] [init.cpp:120] [AppInit] Bitcoin Core version")
            .unwrap();
        assert_eq!(r.threads(), ThreadNames::On);
        let mut r = LineReader::new();
        r.parse(b"2026-12-05T03:47:10Z [warning] disk space is low")
            .unwrap();
        assert_eq!(r.threads(), ThreadNames::Off);
    }

    #[test]
    fn a_known_shape_reads_location_function_and_category_the_same_as_a_guess() {
        let line = b"2026-12-05T03:47:10.123456Z [msghand] [validation.cpp:2890] [void UpdateTipLog(const ChainstateManager&, const CBlockIndex*, const std::string&, const std::string&)] [validation] UpdateTip: new best=00ff";
        let guessed = parse_line(line).unwrap();
        let known = parse_line_as(line, ThreadNames::On).unwrap();
        assert_eq!(guessed, known);
        let plain = b"2026-12-05T03:47:10Z [validation.cpp:2890] [void F()] [bench:debug]   - Connect: 0.1ms";
        assert_eq!(
            parse_line(plain).unwrap(),
            parse_line_as(plain, ThreadNames::Off).unwrap()
        );
    }
}
