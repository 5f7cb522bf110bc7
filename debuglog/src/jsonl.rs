//! One JSON object per event, for `bmon parse-log FILE --format jsonl`.
//!
//! Each object is `{"kind": .., "observed_at": <µs since the epoch>, <payload fields by their
//! schema names>}`, in that order, one per line. Unparseable lines are counted in [`Stats`],
//! not written.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use crate::extract::{Extractor, LogEvent};
use crate::line::{split_lines, LineReader};
use crate::Error;

/// What a conversion went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lines read.
    pub lines: u64,
    /// Lines that could not be parsed (blank lines, continuation lines, garbage).
    pub unparseable: u64,
    /// Events written.
    pub events: u64,
}

/// Reads a debug.log file and writes its events as JSON lines to `out`.
pub fn convert_file(path: &Path, out: impl Write) -> Result<Stats, Error> {
    let file = File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    convert(file, out).map_err(|e| match e {
        Error::Read { source, .. } => Error::Read {
            path: path.to_path_buf(),
            source,
        },
        other => other,
    })
}

/// Reads debug.log bytes from `input` (in 1 MiB chunks) and writes its events as JSON lines.
pub fn convert(mut input: impl Read, mut out: impl Write) -> Result<Stats, Error> {
    let mut stats = Stats::default();
    let mut extractor = Extractor::new();
    let mut reader = LineReader::new();
    let mut events = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut base: u64 = 0;
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Error::Read {
                    path: "<input>".into(),
                    source,
                })
            }
        };
        let eof = n == 0;
        buf.extend_from_slice(&chunk[..n]);
        let complete = if eof {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf) {
                Some(i) => i + 1,
                None => continue,
            }
        };
        for (_, bytes) in split_lines(&buf[..complete], base) {
            stats.lines += 1;
            match reader.parse(bytes) {
                Ok(line) => extractor.feed_into(&line, &mut events),
                Err(_) => stats.unparseable += 1,
            }
            for ev in events.drain(..) {
                write_event(&mut out, &ev).map_err(Error::Write)?;
                stats.events += 1;
            }
        }
        buf.drain(..complete);
        base += complete as u64;
        if eof {
            break;
        }
    }
    for ev in extractor.finish() {
        write_event(&mut out, &ev).map_err(Error::Write)?;
        stats.events += 1;
    }
    out.flush().map_err(Error::Write)?;
    Ok(stats)
}

/// Writes one event as a JSON object followed by `\n`.
pub fn write_event(out: &mut impl Write, ev: &LogEvent) -> std::io::Result<()> {
    let mut payload = Vec::with_capacity(256);
    ev.event
        .serialize_fields(&mut serde_json::Serializer::new(&mut payload))
        .map_err(std::io::Error::other)?;
    write!(
        out,
        "{{\"kind\":\"{}\",\"observed_at\":{}",
        ev.event.kind().as_str(),
        ev.observed_at.0
    )?;
    if payload.len() > 2 && payload[0] == b'{' {
        out.write_all(b",")?;
        out.write_all(&payload[1..])?;
    } else {
        out.write_all(b"}")?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_one_json_object_per_line_with_kind_and_time_first() {
        let log = b"2019-08-12T04:01:44Z [msghand] received: cmpctblock (12405 bytes) peer=4349\n\
2019-08-12T04:01:45Z [msghand] Timeout downloading block 0000000000000000000573b6110e9e77864ee0832f2ade5f9317b439c3ce5294 from peer=4, disconnecting\n\
(continuation)\n";
        let mut out = Vec::new();
        let stats = convert(&log[..], &mut out).unwrap();
        assert_eq!(
            stats,
            Stats {
                lines: 3,
                unparseable: 1,
                events: 1
            }
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"kind\":\"block_download_timeout\",\"observed_at\":1565582505000000,\"hash\":\"0000000000000000000573b6110e9e77864ee0832f2ade5f9317b439c3ce5294\",\"peer\":4}\n"
        );
    }
}
