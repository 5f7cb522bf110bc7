//! The disk spool: encoded envelopes the publisher could not get acknowledged, kept in order
//! until NATS takes them again.
//!
//! Layout under the spool directory:
//! - `<20-digit index>.seg`: append-only segments of records `u32 little-endian length` +
//!   encoded envelope;
//! - `cursor`: `<segment index> <byte offset>` of the first record not yet acknowledged;
//! - `drops`: `<count> <first µs> <last µs>` of events dropped because the spool was full.
//!
//! The spool survives restarts: opening it rescans the segments, cuts a record torn by a crash
//! and resumes at the cursor. Its size is bounded by `max_bytes` (unacknowledged bytes); past
//! the bound, [`Spool::append`] drops the event and counts it, and the publisher emits one `gap`
//! event once the spool has drained. A failed write (disk full) cuts the partly written record
//! back off and counts the event as a drop too. A record length over [`MAX_RECORD`] or past its
//! segment's end is a [`SpoolError::Corrupt`], never an allocation.
//!
//! File I/O is synchronous: records are small, appends go to the page cache, and the publisher
//! is the spool's only user.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use schema::UnixMicros;

/// Largest record accepted (an envelope is far smaller; a bigger length means corruption).
const MAX_RECORD: u32 = 16 * 1024 * 1024;

/// Why the spool failed. The publisher logs it and keeps events in memory meanwhile.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A file of the spool could not be read or written.
    #[error("spool {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A record's length prefix is beyond [`MAX_RECORD`] or past the end of its segment: the
    /// segment is corrupt from `offset` on.
    #[error("spool {path}: corrupt record at offset {offset} (length {len})")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// The length it claims.
        len: u64,
    },
}

fn io_err(path: &Path, e: std::io::Error) -> SpoolError {
    SpoolError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Events dropped while the spool was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drops {
    /// How many.
    pub count: u64,
    /// Time of the first.
    pub from: UnixMicros,
    /// Time of the last.
    pub to: UnixMicros,
}

#[derive(Debug, Clone)]
struct Segment {
    index: u64,
    len: u64,
    /// Records in the segment at or after the read offset (for the first segment) or in total.
    records: u64,
}

/// The on-disk spool.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    /// Offset of the first unacknowledged record in the first segment.
    read_offset: u64,
    writer: Option<File>,
    drops: Drops,
    /// Test hook: the next append writes this many bytes of its record, then fails.
    #[cfg(test)]
    fail_next_write: Option<usize>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, bounded by `max_bytes` of pending records.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let mut indices: Vec<u64> = fs::read_dir(dir)
            .map_err(|e| io_err(dir, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".seg").and_then(|n| n.parse().ok())
            })
            .collect();
        indices.sort_unstable();
        let (cursor_index, cursor_offset) = read_pair(&dir.join("cursor")).unwrap_or((0, 0));
        let mut segments = VecDeque::new();
        let mut read_offset = 0;
        for index in indices {
            let path = segment_path(dir, index);
            if index < cursor_index {
                // Fully acknowledged before a crash; remove it now.
                let _ = fs::remove_file(&path);
                continue;
            }
            let start = if index == cursor_index {
                cursor_offset
            } else {
                0
            };
            let (valid_len, records) = scan(&path, start)?;
            let len = fs::metadata(&path).map_err(|e| io_err(&path, e))?.len();
            if valid_len < len {
                tracing::warn!(path = %path.display(), kept = valid_len, len, "spool segment has a torn record; cutting it");
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io_err(&path, e))?;
                f.set_len(valid_len).map_err(|e| io_err(&path, e))?;
            }
            if segments.is_empty() {
                read_offset = start.min(valid_len);
            }
            segments.push_back(Segment {
                index,
                len: valid_len,
                records,
            });
        }
        let drops = read_drops(&dir.join("drops")).unwrap_or_default();
        let segment_bytes = (max_bytes / 16).clamp(64 * 1024, 64 * 1024 * 1024);
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes,
            segments,
            read_offset,
            writer: None,
            drops,
            #[cfg(test)]
            fail_next_write: None,
        })
    }

    /// Bytes of records not yet acknowledged.
    pub fn bytes(&self) -> u64 {
        let total: u64 = self.segments.iter().map(|s| s.len).sum();
        total.saturating_sub(self.read_offset)
    }

    /// Records not yet acknowledged.
    pub fn events(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.events() == 0
    }

    /// Drops recorded since the last [`Spool::take_drops`].
    pub fn drops(&self) -> Drops {
        self.drops
    }

    fn count_drop(&mut self, observed_at: UnixMicros) -> Result<(), SpoolError> {
        if self.drops.count == 0 {
            self.drops.from = observed_at;
        }
        self.drops.count += 1;
        self.drops.to = observed_at;
        self.save_drops()
    }

    /// Appends one encoded envelope. Returns `false` (and counts a drop at `observed_at`) when
    /// the spool is full. When the record cannot be written (disk full), the segment is cut
    /// back to its last whole record, the event is counted as a drop (reported by the `gap`
    /// event like a full spool) and the error is returned.
    pub fn append(&mut self, record: &[u8], observed_at: UnixMicros) -> Result<bool, SpoolError> {
        let size = 4 + record.len() as u64;
        if self.bytes() + size > self.max_bytes || record.len() as u64 > u64::from(MAX_RECORD) {
            self.count_drop(observed_at)?;
            return Ok(false);
        }
        match self.write_record(record) {
            Ok(written) => Ok(written),
            Err(e) => {
                // The drop is counted in memory even when the drops file cannot be saved.
                if let Err(save) = self.count_drop(observed_at) {
                    tracing::error!(error = %save, "cannot save the spool's drop count");
                }
                Err(e)
            }
        }
    }

    fn write_record(&mut self, record: &[u8]) -> Result<bool, SpoolError> {
        let size = 4 + record.len() as u64;
        let need_new = match self.segments.back() {
            None => true,
            Some(s) => s.len >= self.segment_bytes,
        };
        if need_new {
            let index = self
                .segments
                .back()
                .map(|s| s.index + 1)
                .unwrap_or_else(|| {
                    read_pair(&self.dir.join("cursor"))
                        .map(|c| c.0)
                        .unwrap_or(0)
                });
            let path = segment_path(&self.dir, index);
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            if self.segments.is_empty() {
                self.read_offset = 0;
                self.save_cursor(index, 0)?;
            }
            self.segments.push_back(Segment {
                index,
                len: 0,
                records: 0,
            });
            self.writer = Some(f);
        }
        let Some(seg) = self.segments.back_mut() else {
            return Ok(false);
        };
        let path = segment_path(&self.dir, seg.index);
        if self.writer.is_none() {
            self.writer = Some(
                OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|e| io_err(&path, e))?,
            );
        }
        let mut buf = Vec::with_capacity(size as usize);
        buf.extend_from_slice(&(record.len() as u32).to_le_bytes());
        buf.extend_from_slice(record);
        #[cfg(test)]
        let fail_after = self.fail_next_write.take();
        #[cfg(not(test))]
        let fail_after: Option<usize> = None;
        if let Some(w) = self.writer.as_mut() {
            let res = match fail_after {
                Some(k) => w
                    .write_all(&buf[..k.min(buf.len())])
                    .and_then(|()| Err(std::io::Error::other("injected write failure"))),
                None => w.write_all(&buf),
            };
            if let Err(e) = res {
                // Cut a partly written record so the file matches `seg.len` again.
                if let Err(cut) = w.set_len(seg.len) {
                    tracing::error!(path = %path.display(), error = %cut,
                        "cannot cut a torn spool record; dropping the writer");
                    self.writer = None;
                }
                return Err(io_err(&path, e));
            }
        }
        seg.len += size;
        seg.records += 1;
        Ok(true)
    }

    /// Reads up to `max` pending records, oldest first, without consuming them.
    pub fn peek(&self, max: usize) -> Result<Vec<Vec<u8>>, SpoolError> {
        let mut out = Vec::new();
        for (i, seg) in self.segments.iter().enumerate() {
            if out.len() >= max {
                break;
            }
            let start = if i == 0 { self.read_offset } else { 0 };
            if start >= seg.len {
                continue;
            }
            let path = segment_path(&self.dir, seg.index);
            let mut f = File::open(&path).map_err(|e| io_err(&path, e))?;
            f.seek(SeekFrom::Start(start))
                .map_err(|e| io_err(&path, e))?;
            let mut reader = std::io::BufReader::new(f.take(seg.len - start));
            let mut pos = start;
            while out.len() < max {
                let mut len = [0u8; 4];
                if reader.read_exact(&mut len).is_err() {
                    break;
                }
                let l = u32::from_le_bytes(len);
                if l > MAX_RECORD || pos + 4 + u64::from(l) > seg.len {
                    return Err(SpoolError::Corrupt {
                        path,
                        offset: pos,
                        len: u64::from(l),
                    });
                }
                let mut rec = vec![0u8; l as usize];
                reader.read_exact(&mut rec).map_err(|e| io_err(&path, e))?;
                pos += 4 + u64::from(l);
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Marks the `n` oldest pending records as acknowledged.
    pub fn consume(&mut self, mut n: usize) -> Result<(), SpoolError> {
        while n > 0 {
            let Some(seg) = self.segments.front_mut() else {
                break;
            };
            let path = segment_path(&self.dir, seg.index);
            let mut f = File::open(&path).map_err(|e| io_err(&path, e))?;
            f.seek(SeekFrom::Start(self.read_offset))
                .map_err(|e| io_err(&path, e))?;
            let mut reader = std::io::BufReader::new(f);
            while n > 0 && seg.records > 0 {
                let mut len = [0u8; 4];
                reader.read_exact(&mut len).map_err(|e| io_err(&path, e))?;
                let l = u64::from(u32::from_le_bytes(len));
                if l > u64::from(MAX_RECORD) || self.read_offset + 4 + l > seg.len {
                    return Err(SpoolError::Corrupt {
                        path,
                        offset: self.read_offset,
                        len: l,
                    });
                }
                reader
                    .seek_relative(l as i64)
                    .map_err(|e| io_err(&path, e))?;
                self.read_offset += 4 + l;
                seg.records -= 1;
                n -= 1;
            }
            let done = seg.records == 0;
            let is_last = self.segments.len() == 1;
            if done && !is_last {
                let _ = fs::remove_file(&path);
                self.segments.pop_front();
                self.read_offset = 0;
            } else if done && is_last {
                // Keep appending to it unless it is full; drop it then.
                let full = self
                    .segments
                    .front()
                    .is_some_and(|s| s.len >= self.segment_bytes);
                if full {
                    let _ = fs::remove_file(&path);
                    self.segments.pop_front();
                    self.read_offset = 0;
                    self.writer = None;
                }
                break;
            }
        }
        let (index, offset) = match self.segments.front() {
            Some(s) => (s.index, self.read_offset),
            None => (self.next_index(), 0),
        };
        self.save_cursor(index, offset)
    }

    fn next_index(&self) -> u64 {
        read_pair(&self.dir.join("cursor"))
            .map(|c| c.0 + 1)
            .unwrap_or(0)
    }

    /// Returns and clears the drop count (after the `gap` event was published).
    pub fn take_drops(&mut self) -> Result<Drops, SpoolError> {
        let d = self.drops;
        self.drops = Drops::default();
        self.save_drops()?;
        Ok(d)
    }

    fn save_cursor(&self, index: u64, offset: u64) -> Result<(), SpoolError> {
        write_atomic(&self.dir.join("cursor"), &format!("{index} {offset}\n"))
    }

    fn save_drops(&self) -> Result<(), SpoolError> {
        let d = self.drops;
        write_atomic(
            &self.dir.join("drops"),
            &format!("{} {} {}\n", d.count, d.from.0, d.to.0),
        )
    }
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.seg"))
}

fn write_atomic(path: &Path, text: &str) -> Result<(), SpoolError> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).map_err(|e| io_err(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

fn read_pair(path: &Path) -> Option<(u64, u64)> {
    let text = fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace().map(|t| t.parse::<u64>().ok());
    Some((it.next()??, it.next()??))
}

fn read_drops(path: &Path) -> Option<Drops> {
    let text = fs::read_to_string(path).ok()?;
    let v: Vec<i64> = text
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    match v.as_slice() {
        [c, f, t] => Some(Drops {
            count: u64::try_from(*c).ok()?,
            from: UnixMicros(*f),
            to: UnixMicros(*t),
        }),
        _ => None,
    }
}

/// Walks a segment from `start`: returns the end of the last whole record and the number of
/// whole records.
fn scan(path: &Path, start: u64) -> Result<(u64, u64), SpoolError> {
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let len = f.metadata().map_err(|e| io_err(path, e))?.len();
    if start >= len {
        return Ok((len.min(start), 0));
    }
    f.seek(SeekFrom::Start(start))
        .map_err(|e| io_err(path, e))?;
    let mut reader = std::io::BufReader::new(f);
    let mut pos = start;
    let mut records = 0;
    loop {
        let mut l = [0u8; 4];
        if reader.read_exact(&mut l).is_err() {
            break;
        }
        let n = u32::from_le_bytes(l);
        if n > MAX_RECORD || pos + 4 + u64::from(n) > len {
            break;
        }
        if reader.seek_relative(i64::from(n)).is_err() {
            break;
        }
        pos += 4 + u64::from(n);
        records += 1;
    }
    Ok((pos, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u32) -> Vec<u8> {
        format!("event-{i:05}").into_bytes()
    }

    #[test]
    fn records_come_back_in_order_and_consumed_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        for i in 0..10 {
            assert!(s.append(&rec(i), UnixMicros(i as i64)).unwrap());
        }
        assert_eq!(s.events(), 10);
        assert_eq!(s.peek(3).unwrap(), vec![rec(0), rec(1), rec(2)]);
        s.consume(3).unwrap();
        assert_eq!(s.peek(2).unwrap(), vec![rec(3), rec(4)]);
        assert_eq!(s.events(), 7);
        assert_eq!(s.bytes(), 7 * (4 + rec(0).len() as u64));
    }

    #[test]
    fn a_reopened_spool_resumes_at_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
            for i in 0..5 {
                s.append(&rec(i), UnixMicros(0)).unwrap();
            }
            s.consume(2).unwrap();
        }
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.events(), 3);
        assert_eq!(s.peek(10).unwrap(), vec![rec(2), rec(3), rec(4)]);
        s.append(&rec(5), UnixMicros(0)).unwrap();
        s.consume(4).unwrap();
        assert!(s.is_empty());
        let s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn a_torn_record_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
            s.append(&rec(0), UnixMicros(0)).unwrap();
            s.append(&rec(1), UnixMicros(0)).unwrap();
        }
        let seg = segment_path(dir.path(), 0);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&100u32.to_le_bytes()).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.peek(10).unwrap(), vec![rec(0), rec(1)]);
        s.append(&rec(2), UnixMicros(0)).unwrap();
        assert_eq!(s.peek(10).unwrap(), vec![rec(0), rec(1), rec(2)]);
    }

    #[test]
    fn past_the_bound_events_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let per = 4 + rec(0).len() as u64;
        let mut s = Spool::open(dir.path(), per * 3).unwrap();
        for i in 0..5 {
            s.append(&rec(i), UnixMicros(100 + i as i64)).unwrap();
        }
        assert_eq!(s.events(), 3);
        let d = s.drops();
        assert_eq!(
            (d.count, d.from, d.to),
            (2, UnixMicros(103), UnixMicros(104))
        );
        // Drops survive a restart until taken.
        drop(s);
        let mut s = Spool::open(dir.path(), per * 3).unwrap();
        assert_eq!(s.take_drops().unwrap().count, 2);
        assert_eq!(s.drops().count, 0);
    }

    #[test]
    fn many_segments_roll_and_are_removed_once_consumed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap(); // 64 KiB segments
        let big = vec![7u8; 10_000];
        for _ in 0..30 {
            assert!(s.append(&big, UnixMicros(0)).unwrap());
        }
        let segs = || {
            fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".seg")
                })
                .count()
        };
        assert!(segs() >= 4, "{}", segs());
        let mut n = 0;
        while !s.is_empty() {
            let batch = s.peek(7).unwrap();
            n += batch.len();
            s.consume(batch.len()).unwrap();
        }
        assert_eq!(n, 30);
        assert!(segs() <= 1);
        let s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn an_oversized_length_on_disk_is_a_corrupt_error_not_an_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        s.append(&rec(0), UnixMicros(0)).unwrap();
        s.append(&rec(1), UnixMicros(0)).unwrap();
        // Overwrite the second record's length with 4 GiB - 1 behind the spool's back.
        let seg = segment_path(dir.path(), 0);
        let mut f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.seek(SeekFrom::Start(4 + rec(0).len() as u64)).unwrap();
        f.write_all(&u32::MAX.to_le_bytes()).unwrap();
        drop(f);
        let err = s.peek(10).unwrap_err();
        assert!(
            matches!(err, SpoolError::Corrupt { offset, len, .. }
                if offset == 4 + rec(0).len() as u64 && len == u64::from(u32::MAX)),
            "{err}"
        );
        // The first record is still readable and consumable; consuming the bad one is an error.
        assert_eq!(s.peek(1).unwrap(), vec![rec(0)]);
        s.consume(1).unwrap();
        assert!(matches!(s.consume(1), Err(SpoolError::Corrupt { .. })));
    }

    #[test]
    fn a_length_past_the_segment_end_is_a_corrupt_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        s.append(&rec(0), UnixMicros(0)).unwrap();
        // A length within MAX_RECORD but past what the segment holds (a torn tail).
        let seg = segment_path(dir.path(), 0);
        let mut f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.write_all(&1000u32.to_le_bytes()).unwrap();
        drop(f);
        assert!(matches!(
            s.peek(10),
            Err(SpoolError::Corrupt { len: 1000, .. })
        ));
        assert!(matches!(
            s.consume(1),
            Err(SpoolError::Corrupt { len: 1000, .. })
        ));
    }

    #[test]
    fn a_failed_append_leaves_the_spool_readable_and_counts_a_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        s.append(&rec(0), UnixMicros(10)).unwrap();
        // The disk fills up halfway through the next record.
        s.fail_next_write = Some(7);
        assert!(s.append(&rec(1), UnixMicros(11)).is_err());
        let d = s.drops();
        assert_eq!((d.count, d.from, d.to), (1, UnixMicros(11), UnixMicros(11)));
        assert_eq!(s.events(), 1);
        let seg = segment_path(dir.path(), 0);
        assert_eq!(fs::metadata(&seg).unwrap().len(), 4 + rec(0).len() as u64);
        // Later appends line up with the in-memory length: the spool drains in order.
        s.append(&rec(2), UnixMicros(12)).unwrap();
        assert_eq!(s.peek(10).unwrap(), vec![rec(0), rec(2)]);
        s.consume(2).unwrap();
        assert!(s.is_empty());
        // And a reopened spool agrees.
        s.append(&rec(3), UnixMicros(13)).unwrap();
        drop(s);
        let s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.peek(10).unwrap(), vec![rec(3)]);
        assert_eq!(s.drops().count, 1);
    }
}
