//! Following a live debug.log: rotation, copy-truncate, recreation, partial writes, restarts.
//!
//! Two layers:
//! - [`Tail`] is the synchronous core. Each [`Tail::poll`] reads what is new (up to
//!   `max_batch_bytes`) and returns a [`Batch`] of whole lines, or `None`. It never sleeps,
//!   so tests drive it step by step.
//! - [`spawn`] runs a `Tail` on its own **std thread** (file reads are blocking; a thread
//!   keeps them off the async runtime) and sends batches into a bounded
//!   `tokio::sync::mpsc` channel with `blocking_send`, so a slow consumer slows the reader
//!   down (backpressure) instead of growing memory. It polls every `poll_interval` when the
//!   file has nothing new. [`Follower::stop`] ends it between batches.
//!
//! Position and identity: a file is identified by device and inode ([`FileId`]); the
//! position is that identity plus the byte offset after the last whole line handed out
//! ([`Position`]). It is stored in a small JSON state file ([`StateFile`]), written
//! atomically (temp file + rename). With [`Commit::OnSend`] the follower saves it after each
//! batch is in the channel; with [`Commit::ByConsumer`] the consumer saves `batch.position()`
//! once the batch is durable on its side (the agent: after its spool has it), which is what
//! makes a crash lose nothing and repeat nothing.
//!
//! What happens when:
//! - **rename + new file** (logrotate `create`, bitcoind reopening on SIGHUP): the old file
//!   is read to its end through the open descriptor, then the new file from offset 0. The
//!   old file counts as finished once the new one has data (bitcoind writes to only one).
//! - **copy-truncate**: the file shrinks below our offset, or the byte before our offset is
//!   no longer a newline; reading restarts at 0 (what was written between our last read and
//!   the copy is only in the copy and is counted in [`TailStats::truncations`]).
//! - **deleted, recreated**: like a rename; the new file is read from 0 when it appears.
//! - **partial last line**: bytes after the last `\n` are held back and handed out once the
//!   line is complete, as one line; a restart re-reads them (the saved offset is the line's
//!   start). A "line" longer than `max_line_bytes` is handed out in pieces.
//! - **restart**: resumes at the saved offset if the file is the same; if it was rotated
//!   while we were down, the rotated file is found in the same directory by its identity and
//!   its rest is read first. If it is gone, reading starts at 0 of the current file and the
//!   loss is counted in [`TailStats::lost_files`].
//! - **fresh install** (no state file): starts at the end of the file (after its last whole
//!   line), or at the beginning with [`StartAt::Beginning`] (backfill).
//! - **invalid UTF-8**: lines are bytes; nothing here decodes them.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::line::{split_lines, SplitLines};
use crate::Error;

/// Where a fresh install (no state file) starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// After the last whole line already in the file: only new lines.
    #[default]
    End,
    /// At offset 0: backfill the whole file.
    Beginning,
}

/// Who saves the position to the state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Commit {
    /// The follower, after each batch is in the channel.
    #[default]
    OnSend,
    /// The consumer, with [`StateFile::save`]`(batch.position())`, once the batch is durable.
    ByConsumer,
}

/// What to follow and how.
#[derive(Debug, Clone)]
pub struct FollowConfig {
    /// The debug.log path.
    pub path: PathBuf,
    /// Where the position is kept; `None` keeps it in memory only.
    pub state_path: Option<PathBuf>,
    /// Where a fresh install starts.
    pub start: StartAt,
    /// Who saves the position.
    pub commit: Commit,
    /// How long to wait when the file has nothing new.
    pub poll_interval: Duration,
    /// Most bytes read into one batch.
    pub max_batch_bytes: usize,
    /// A partial line longer than this is handed out as is.
    pub max_line_bytes: usize,
}

impl FollowConfig {
    /// Defaults: start at the end, follower commits, 200 ms polls, 1 MiB batches and lines.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FollowConfig {
            path: path.into(),
            state_path: None,
            start: StartAt::End,
            commit: Commit::OnSend,
            poll_interval: Duration::from_millis(200),
            max_batch_bytes: 1 << 20,
            max_line_bytes: 1 << 20,
        }
    }
}

/// A file's identity: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// A position in a debug.log: the file and the offset after the last whole line read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The file.
    pub file: FileId,
    /// Byte offset.
    pub offset: u64,
}

/// Whole lines read from one file, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The file they came from.
    pub file: FileId,
    /// Offset of the first line.
    pub start_offset: u64,
    /// The lines, each ending with `\n` (a line cut at `max_line_bytes` or the unterminated
    /// tail of a finished rotated file gets one added).
    pub data: Vec<u8>,
}

impl Batch {
    /// The lines as `(offset, bytes without the newline)`.
    pub fn lines(&self) -> SplitLines<'_> {
        split_lines(&self.data, self.start_offset)
    }

    /// The position after this batch (what to save once it is handled).
    pub fn position(&self) -> Position {
        Position {
            file: self.file,
            offset: self.start_offset + self.data.len() as u64,
        }
    }
}

/// The follower's state file (JSON, written atomically).
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// A state file at `path` (not read or created yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateFile { path: path.into() }
    }

    /// The saved position, or `None` if there is no state file yet.
    pub fn load(&self) -> Result<Option<Position>, Error> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| Error::CorruptState {
                        path: self.path.clone(),
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Saves a position: writes a temp file beside the state file, then renames it over.
    pub fn save(&self, pos: &Position) -> Result<(), Error> {
        let err = |source| Error::SaveState {
            path: self.path.clone(),
            source,
        };
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let json = serde_json::to_vec(pos).map_err(|e| err(std::io::Error::other(e)))?;
        std::fs::write(&tmp, json).map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

/// Counters of what the tail went through (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Rotations (rename, delete and recreate) followed.
    pub rotations: u64,
    /// Copy-truncations detected.
    pub truncations: u64,
    /// Rotated files that were gone before their rest could be read (after a restart).
    pub lost_files: u64,
    /// Lines handed out in pieces because they exceeded `max_line_bytes`.
    pub split_long_lines: u64,
}

/// One open file being read.
#[derive(Debug)]
struct OpenFile {
    file: File,
    path: PathBuf,
    id: FileId,
    /// Next byte to read.
    offset: u64,
    /// Bytes after the last newline, held back.
    pending: Vec<u8>,
}

impl OpenFile {
    fn open(path: &Path, offset: Option<u64>) -> Result<Option<OpenFile>, Error> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let meta = file.metadata().map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Some(OpenFile {
            file,
            path: path.to_path_buf(),
            id: FileId::of(&meta),
            offset: offset.unwrap_or(0).min(meta.len()),
            pending: Vec::new(),
        }))
    }

    fn committed(&self) -> u64 {
        self.offset - self.pending.len() as u64
    }

    /// Reads up to `max` new bytes; returns the whole lines among pending + new bytes.
    fn read(
        &mut self,
        max: usize,
        max_line: usize,
        stats: &mut TailStats,
    ) -> Result<Option<Batch>, Error> {
        let start = self.committed();
        let mut buf = std::mem::take(&mut self.pending);
        let before = buf.len();
        buf.resize(before + max, 0);
        let mut got = 0;
        while got < max {
            match self
                .file
                .read_at(&mut buf[before + got..], self.offset + got as u64)
            {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    buf.truncate(before);
                    self.pending = buf;
                    return Err(Error::Read {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
        }
        buf.truncate(before + got);
        self.offset += got as u64;
        let whole = match memchr::memrchr(b'\n', &buf) {
            Some(i) => i + 1,
            None if buf.len() > max_line => {
                stats.split_long_lines += 1;
                buf.len()
            }
            None => 0,
        };
        self.pending = buf.split_off(whole);
        if buf.is_empty() {
            return Ok(None);
        }
        if buf.last() != Some(&b'\n') {
            buf.push(b'\n');
        }
        Ok(Some(Batch {
            file: self.id,
            start_offset: start,
            data: buf,
        }))
    }

    /// The held-back tail of a finished file, as a last line.
    fn finish(mut self) -> Option<Batch> {
        if self.pending.is_empty() {
            return None;
        }
        let start = self.committed();
        let mut data = std::mem::take(&mut self.pending);
        data.push(b'\n');
        Some(Batch {
            file: self.id,
            start_offset: start,
            data,
        })
    }

    /// True if the file was truncated under us (copy-truncate).
    fn truncated(&self, len: u64) -> bool {
        if len < self.offset {
            return true;
        }
        let at = self.committed();
        if at == 0 {
            return false;
        }
        let mut b = [0u8; 1];
        matches!(self.file.read_at(&mut b, at - 1), Ok(1) if b[0] != b'\n')
    }
}

/// The synchronous core of the follower (see the module docs).
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    cur: Option<OpenFile>,
    old: Option<OpenFile>,
    max_batch: usize,
    max_line: usize,
    stats: TailStats,
}

impl Tail {
    /// Opens the log where the state file (if any) or `config.start` says.
    pub fn open(config: &FollowConfig) -> Result<Tail, Error> {
        let saved = match &config.state_path {
            Some(p) => StateFile::new(p).load()?,
            None => None,
        };
        let mut tail = Tail {
            path: config.path.clone(),
            cur: None,
            old: None,
            max_batch: config.max_batch_bytes.max(1),
            max_line: config.max_line_bytes.max(1),
            stats: TailStats::default(),
        };
        match saved {
            Some(pos) => tail.resume(pos)?,
            None => {
                tail.cur = OpenFile::open(&tail.path, Some(0))?;
                if let (Some(cur), StartAt::End) = (tail.cur.as_mut(), config.start) {
                    cur.offset = end_of_last_line(cur)?;
                }
            }
        }
        Ok(tail)
    }

    fn resume(&mut self, pos: Position) -> Result<(), Error> {
        self.cur = OpenFile::open(&self.path, Some(0))?;
        if let Some(cur) = self.cur.as_mut() {
            if cur.id == pos.file {
                let len = file_len(cur)?;
                if pos.offset <= len {
                    cur.offset = pos.offset;
                    if cur.truncated(len) {
                        self.stats.truncations += 1;
                        cur.offset = 0;
                    }
                } else {
                    self.stats.truncations += 1;
                }
                return Ok(());
            }
        }
        // Rotated while we were down: finish the old file first, if it is still there.
        match find_by_id(&self.path, pos.file) {
            Some(old_path) => {
                self.old = OpenFile::open(&old_path, Some(pos.offset))?;
                self.stats.rotations += 1;
            }
            None => {
                tracing::warn!(path = %self.path.display(), file = %pos.file,
                    "the debug.log read before the restart is gone; its unread rest is lost");
                self.stats.lost_files += 1;
            }
        }
        Ok(())
    }

    /// The position after the last line handed out (of the file being read now).
    pub fn position(&self) -> Option<Position> {
        let f = self.old.as_ref().or(self.cur.as_ref())?;
        Some(Position {
            file: f.id,
            offset: f.committed(),
        })
    }

    /// What the tail went through so far.
    pub fn stats(&self) -> TailStats {
        self.stats
    }

    /// Reads what is new: a batch of whole lines, or `None` if there is nothing yet.
    pub fn poll(&mut self) -> Result<Option<Batch>, Error> {
        if let Some(old) = self.old.as_mut() {
            if let Some(b) = old.read(self.max_batch, self.max_line, &mut self.stats)? {
                return Ok(Some(b));
            }
            let new_has_data = match self.cur.as_ref() {
                Some(cur) => file_len(cur)? > 0,
                None => {
                    self.cur = OpenFile::open(&self.path, Some(0))?;
                    false
                }
            };
            if !new_has_data {
                return Ok(None);
            }
            if let Some(b) = self.old.take().and_then(OpenFile::finish) {
                return Ok(Some(b));
            }
        }
        self.check_identity()?;
        if self.old.is_some() {
            return self.poll();
        }
        match self.cur.as_mut() {
            Some(cur) => cur.read(self.max_batch, self.max_line, &mut self.stats),
            None => Ok(None),
        }
    }

    /// Notices rotation, deletion and truncation of the file at `path`.
    fn check_identity(&mut self) -> Result<(), Error> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(source) => {
                return Err(Error::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        match (self.cur.as_mut(), meta) {
            (None, Some(_)) => self.cur = OpenFile::open(&self.path, Some(0))?,
            (None, None) => {}
            (Some(_), None) => {
                // Deleted: drain it through the open descriptor, then wait for a new one.
                self.old = self.cur.take();
                self.stats.rotations += 1;
            }
            (Some(cur), Some(m)) if FileId::of(&m) != cur.id => {
                self.old = self.cur.take();
                self.cur = OpenFile::open(&self.path, Some(0))?;
                self.stats.rotations += 1;
            }
            (Some(cur), Some(m)) => {
                if cur.truncated(m.len()) {
                    tracing::warn!(path = %self.path.display(), "debug.log was truncated; reading it again from the start");
                    self.stats.truncations += 1;
                    cur.offset = 0;
                    cur.pending.clear();
                }
            }
        }
        Ok(())
    }
}

fn file_len(f: &OpenFile) -> Result<u64, Error> {
    f.file
        .metadata()
        .map(|m| m.len())
        .map_err(|source| Error::Read {
            path: f.path.clone(),
            source,
        })
}

/// The offset after the last newline of the file (its end if the last 64 KiB has none).
fn end_of_last_line(f: &OpenFile) -> Result<u64, Error> {
    let len = file_len(f)?;
    let from = len.saturating_sub(64 * 1024);
    let mut buf = vec![0u8; (len - from) as usize];
    let mut got = 0;
    while got < buf.len() {
        match f.file.read_at(&mut buf[got..], from + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Read {
                    path: f.path.clone(),
                    source,
                })
            }
        }
    }
    Ok(match memchr::memrchr(b'\n', &buf[..got]) {
        Some(i) => from + i as u64 + 1,
        None => len,
    })
}

/// A file in `path`'s directory with identity `id` (a rotated debug.log).
fn find_by_id(path: &Path, id: FileId) -> Option<PathBuf> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty())?;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| std::fs::metadata(p).is_ok_and(|m| FileId::of(&m) == id))
}

/// A running follower thread.
#[derive(Debug)]
pub struct Follower {
    stop: std_mpsc::Sender<()>,
    thread: JoinHandle<Result<TailStats, Error>>,
}

impl Follower {
    /// Stops the follower between batches and waits for it; returns its final counters, or
    /// the error that ended it.
    pub fn stop(self) -> Result<TailStats, Error> {
        let _ = self.stop.send(());
        match self.thread.join() {
            Ok(r) => r,
            Err(_) => Err(Error::ReceiverGone),
        }
    }
}

/// Starts following `config.path` on a std thread named `debuglog-follow`, sending batches
/// into `tx` (bounded: a full channel blocks the reader). The thread ends when stopped or
/// when the receiver is dropped.
pub fn spawn(config: FollowConfig, tx: mpsc::Sender<Batch>) -> Result<Follower, Error> {
    let mut tail = Tail::open(&config)?;
    let state = config.state_path.clone().map(StateFile::new);
    let (stop, stopped) = std_mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("debuglog-follow".into())
        .spawn(move || run(&mut tail, &config, state.as_ref(), &tx, &stopped))
        .map_err(|source| Error::Read {
            path: PathBuf::from("<thread>"),
            source,
        })?;
    Ok(Follower { stop, thread })
}

fn run(
    tail: &mut Tail,
    config: &FollowConfig,
    state: Option<&StateFile>,
    tx: &mpsc::Sender<Batch>,
    stopped: &std_mpsc::Receiver<()>,
) -> Result<TailStats, Error> {
    loop {
        match stopped.try_recv() {
            Ok(()) | Err(std_mpsc::TryRecvError::Disconnected) => return Ok(tail.stats()),
            Err(std_mpsc::TryRecvError::Empty) => {}
        }
        let wait = match tail.poll() {
            Ok(Some(batch)) => {
                let pos = batch.position();
                tx.blocking_send(batch).map_err(|_| Error::ReceiverGone)?;
                if let (Some(state), Commit::OnSend) = (state, config.commit) {
                    if let Err(e) = state.save(&pos) {
                        tracing::warn!(error = %e, "cannot save the debug.log position");
                    }
                }
                false
            }
            Ok(None) => true,
            Err(e) => {
                tracing::warn!(error = %e, "reading debug.log failed; retrying");
                true
            }
        };
        if wait {
            match stopped.recv_timeout(config.poll_interval) {
                Ok(()) | Err(std_mpsc::RecvTimeoutError::Disconnected) => return Ok(tail.stats()),
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }
}
