//! The node's debug.log: raw lines shipped as `log_batch` messages (stream `BMON_LOGS`) and
//! the typed events Core writes only there (`block_seen`, `block_timing`, `tx_rejected`,
//! `tx_replaced`, `invalid_block`, `block_download_timeout`, `reorg`/`block_disconnected` with
//! source `log`, `warning`), each with the line's own time as `observed_at`.
//!
//! Two layers:
//! - [`LogShipper`] is pure: one follower [`Batch`] in, envelopes out. Lines become
//!   `log_batch` envelopes of at most `batch_lines` lines and about `batch_bytes` encoded
//!   bytes, keyed by file identity and the offset of their first line (a re-send de-duplicates);
//!   every parsed line also goes through one [`Extractor`]. A line without a timestamp (the
//!   blank lines at the top of a debug.log, the continuation of a multi-line message) is
//!   counted and still shipped, with the time of the line before it, so the log in
//!   ClickHouse is complete.
//! - [`run`] follows the file with [`debuglog::follow::Tail`] (each poll on the blocking pool,
//!   so the follower's counters feed the metrics as they change), hands the envelopes to the
//!   publisher's bounded channel followed by an [`Item::Commit`] token, and saves the position
//!   in the state file only once the publisher answers the token, that is once every envelope
//!   of the batch is acknowledged by JetStream or written to the spool. A kill at any moment
//!   (SIGKILL, OOM, panic) therefore leaves a saved position whose lines are durable, and a
//!   restart resumes there: no gap; lines published but not yet recorded are re-sent and
//!   de-duplicated by their `log_batch` key.
//!
//! A missing file is waited for; read errors are counted and retried; a corrupt state file is
//! moved aside (`.corrupt`) and the follower starts as a fresh install. What is lost on
//! purpose: joins of the extractor that span an agent restart (a block's bench lines split by
//! the restart give no `block_timing`), and lines written just before a copy-truncate (the
//! follower counts those in `bmon_agent_log_truncations_total`). The `log_batch` key is the
//! file's device and inode plus the offset: a file truncated and re-filled within the stream's
//! duplicate window could repeat an offset, which is why rename rotation is the recommended
//! logrotate mode.

use std::path::{Path, PathBuf};

use debuglog::follow::FileId;
use debuglog::follow::{Batch, FollowConfig, StartAt, StateFile, Tail, TailStats};
use debuglog::{Extractor, LineError, LineReader};
use schema::event::{LogBatch, LogLine};
use schema::{Envelope, Event, NodeId, UnixMicros};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::DebugLogConfig;
use crate::metrics::{Metrics, TailCounts};
use crate::node::PublisherGone;
use crate::publish::Item;

/// Estimated encoded bytes of one `log_line` beyond its strings (field names, markers, the
/// time and offset integers).
pub const LINE_OVERHEAD: usize = 96;
/// Estimated encoded bytes of a `log_batch` envelope beyond its lines.
pub const BATCH_OVERHEAD: usize = 512;
/// Most bytes read from the file in one poll (split into several `log_batch` messages).
pub const READ_BYTES: usize = 1 << 20;
/// How long to wait before opening the log again after an error that is not "missing".
const REOPEN_DELAY: std::time::Duration = std::time::Duration::from_secs(5);

/// Size limits of one `log_batch` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most lines.
    pub lines: usize,
    /// Most estimated encoded bytes.
    pub bytes: usize,
}

impl Limits {
    /// The longest line the follower hands out whole: a line's text may triple when invalid
    /// UTF-8 becomes U+FFFD, and one line must still fit a message.
    pub fn max_line_bytes(&self) -> usize {
        (self.bytes.saturating_sub(BATCH_OVERHEAD + LINE_OVERHEAD) / 3).max(256)
    }
}

/// Turns follower batches into envelopes (pure but for the metrics it counts).
pub struct LogShipper {
    node: NodeId,
    limits: Limits,
    extractor: Extractor,
    /// Parses the current file's lines, knowing once a line has shown it whether the file has
    /// thread names; a new file starts a new reader.
    reader: (Option<FileId>, LineReader),
    last_time: Option<UnixMicros>,
    metrics: Metrics,
    clock: Clock,
}

impl LogShipper {
    /// A shipper for `node`'s log.
    pub fn new(node: NodeId, limits: Limits, metrics: Metrics) -> Self {
        LogShipper {
            node,
            limits,
            extractor: Extractor::new(),
            reader: (None, LineReader::new()),
            last_time: None,
            metrics,
            clock: Clock::wall(),
        }
    }

    /// Sets the agent's [`Clock`], which stamps the lines that come before the first line with a
    /// time of their own (default: the wall clock). Lines with a time keep it.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The envelopes for one batch: its lines as `log_batch` messages (in order, together
    /// covering every line once), then the events the lines completed.
    pub fn handle(&mut self, batch: &Batch) -> Vec<Envelope> {
        let file_id = batch.file.to_string();
        let mut out = Vec::new();
        let mut events = Vec::new();
        let mut chunk: Vec<LogLine> = Vec::new();
        let mut chunk_bytes = BATCH_OVERHEAD + file_id.len();
        let mut lines = 0u64;
        if self.reader.0 != Some(batch.file) {
            self.reader = (Some(batch.file), LineReader::new());
        }
        for (offset, bytes) in batch.lines() {
            lines += 1;
            let line = match self.reader.1.parse(bytes) {
                Ok(line) => {
                    self.last_time = Some(line.time);
                    self.extractor.feed_into(&line, &mut events);
                    line.to_log_line(offset)
                }
                Err(e) => {
                    self.metrics.log_unparseable(reason(e));
                    raw_line(
                        bytes,
                        offset,
                        *self.last_time.get_or_insert_with(|| self.clock.now()),
                    )
                }
            };
            let size = line_size(&line);
            if !chunk.is_empty()
                && (chunk.len() >= self.limits.lines || chunk_bytes + size > self.limits.bytes)
            {
                out.push(self.log_batch(&file_id, std::mem::take(&mut chunk)));
                chunk_bytes = BATCH_OVERHEAD + file_id.len();
            }
            chunk_bytes += size;
            chunk.push(line);
        }
        if !chunk.is_empty() {
            out.push(self.log_batch(&file_id, chunk));
        }
        self.metrics.log_lines(lines);
        for ev in events {
            out.push(self.event(ev.observed_at, ev.event));
        }
        out
    }

    /// Events of joins still open (end of input: the agent is stopping).
    pub fn finish(&mut self) -> Vec<Envelope> {
        self.extractor
            .finish()
            .into_iter()
            .map(|ev| self.event(ev.observed_at, ev.event))
            .collect()
    }

    fn event(&self, observed_at: UnixMicros, event: Event) -> Envelope {
        self.metrics.log_event(event.kind());
        Envelope::new(self.node.clone(), observed_at, event)
    }

    fn log_batch(&self, file_id: &str, lines: Vec<LogLine>) -> Envelope {
        let (start_offset, time) = lines
            .first()
            .map(|l| (l.offset, l.time))
            .unwrap_or((0, UnixMicros(0)));
        self.metrics.log_batch();
        Envelope::new(
            self.node.clone(),
            time,
            LogBatch {
                file_id: file_id.to_string(),
                start_offset,
                lines,
            },
        )
    }
}

fn reason(e: LineError) -> &'static str {
    match e {
        LineError::Empty => "empty",
        LineError::NoTimestamp => "no_timestamp",
    }
}

/// An unparseable line as it is, at `time`.
fn raw_line(bytes: &[u8], offset: u64, time: UnixMicros) -> LogLine {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    LogLine {
        time,
        offset,
        thread: None,
        category: None,
        level: None,
        location: None,
        function: None,
        message: String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Estimated encoded size of a line.
fn line_size(l: &LogLine) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    LINE_OVERHEAD
        + l.message.len()
        + opt(&l.thread)
        + opt(&l.category)
        + opt(&l.level)
        + opt(&l.location)
        + opt(&l.function)
}

/// The follower settings for `config`.
pub fn follow_config(config: &DebugLogConfig) -> FollowConfig {
    let limits = limits(config);
    let mut f = FollowConfig::new(&config.path);
    f.state_path = Some(config.state_file.clone());
    f.start = if config.backfill {
        StartAt::Beginning
    } else {
        StartAt::End
    };
    f.poll_interval = config.poll_interval;
    f.max_batch_bytes = READ_BYTES;
    f.max_line_bytes = limits.max_line_bytes();
    f
}

fn limits(config: &DebugLogConfig) -> Limits {
    Limits {
        lines: config.batch_lines,
        bytes: config.batch_bytes,
    }
}

fn counts(s: TailStats) -> TailCounts {
    TailCounts {
        rotations: s.rotations,
        truncations: s.truncations,
        lost_files: s.lost_files,
        split_lines: s.split_long_lines,
    }
}

/// Follows `config.path` until `shutdown` fires, sending envelopes into `out`; each batch's
/// position is saved once the publisher has answered the [`Item::Commit`] sent after its
/// envelopes. Returns `Err(PublisherGone)` only if the publisher's channel closed first.
pub async fn run(
    config: DebugLogConfig,
    node: NodeId,
    metrics: Metrics,
    clock: Clock,
    out: mpsc::Sender<Item>,
    shutdown: CancellationToken,
) -> Result<(), PublisherGone> {
    let follow = follow_config(&config);
    let state = StateFile::new(&config.state_file);
    let mut shipper = LogShipper::new(node, limits(&config), metrics.clone()).with_clock(clock);
    tracing::info!(path = %config.path.display(), state = %config.state_file.display(),
        backfill = config.backfill, "following debug.log");
    let mut tail = None;
    let mut seen = TailCounts::default();
    let mut error_logged = false;
    let mut state_error_logged = false;
    while !shutdown.is_cancelled() {
        let t = match tail.take() {
            Some(t) => t,
            None => match open(&follow, &shutdown).await {
                Some(t) => {
                    seen = TailCounts::default();
                    t
                }
                None => break,
            },
        };
        let polled = tokio::task::spawn_blocking(move || {
            let mut t = t;
            let res = t.poll();
            (t, res)
        })
        .await;
        let (t, res) = match polled {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "debug.log follower failed; reopening from the saved position");
                metrics.log_read_error();
                continue;
            }
        };
        let now = counts(t.stats());
        metrics.log_tail(seen, now);
        seen = now;
        tail = Some(t);
        let idle = match res {
            Ok(Some(batch)) => {
                error_logged = false;
                for env in shipper.handle(&batch) {
                    out.send(Item::Event(env))
                        .await
                        .map_err(|_| PublisherGone)?;
                }
                // The position is saved only once the batch is durable (acknowledged or
                // spooled); the publisher drops the token only when it is gone.
                let (done, durable) = oneshot::channel();
                out.send(Item::Commit(done))
                    .await
                    .map_err(|_| PublisherGone)?;
                durable.await.map_err(|_| PublisherGone)?;
                let pos = batch.position();
                metrics.log_offset(pos.offset);
                if let Err(e) = save(&state, pos).await {
                    metrics.log_state_error();
                    if !state_error_logged {
                        tracing::warn!(error = %e, "cannot save the debug.log position; a restart may re-send lines (de-duplicated)");
                        state_error_logged = true;
                    }
                } else {
                    state_error_logged = false;
                }
                false
            }
            Ok(None) => true,
            Err(e) => {
                metrics.log_read_error();
                if !error_logged {
                    tracing::warn!(error = %e, "reading debug.log failed; retrying");
                    error_logged = true;
                }
                true
            }
        };
        if idle {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(config.poll_interval) => {}
            }
        }
    }
    for env in shipper.finish() {
        out.send(Item::Event(env))
            .await
            .map_err(|_| PublisherGone)?;
    }
    tracing::info!("debug.log source stopped");
    Ok(())
}

async fn save(state: &StateFile, pos: debuglog::follow::Position) -> Result<(), debuglog::Error> {
    let state = state.clone();
    match tokio::task::spawn_blocking(move || state.save(&pos)).await {
        Ok(r) => r,
        Err(e) => Err(debuglog::Error::SaveState {
            path: PathBuf::from("<state>"),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// Opens the follower, retrying until it works or `shutdown` fires. A corrupt state file is
/// moved aside.
async fn open(follow: &FollowConfig, shutdown: &CancellationToken) -> Option<Tail> {
    loop {
        let cfg = follow.clone();
        let res = tokio::task::spawn_blocking(move || {
            if let Some(dir) = cfg.state_path.as_deref().and_then(Path::parent) {
                if !dir.as_os_str().is_empty() {
                    if let Err(e) = std::fs::create_dir_all(dir) {
                        tracing::warn!(dir = %dir.display(), error = %e, "cannot create the debug.log state directory");
                    }
                }
            }
            Tail::open(&cfg)
        })
        .await;
        match res {
            Ok(Ok(t)) => return Some(t),
            Ok(Err(debuglog::Error::CorruptState { path, reason })) => {
                let mut aside = path.clone().into_os_string();
                aside.push(".corrupt");
                tracing::error!(state = %path.display(), %reason, moved_to = ?aside,
                    "the debug.log state file is corrupt; moved aside, starting as a fresh install");
                if let Err(e) = std::fs::rename(&path, &aside) {
                    tracing::error!(error = %e, "cannot move the corrupt state file; retrying later");
                } else {
                    continue;
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, path = %follow.path.display(), "cannot open debug.log; retrying");
            }
            Err(e) => tracing::error!(error = %e, "opening debug.log failed; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(REOPEN_DELAY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::Kind;

    fn node() -> NodeId {
        NodeId::new("node1").unwrap()
    }

    fn shipper(limits: Limits) -> (LogShipper, Metrics) {
        let m = Metrics::new(&node());
        (LogShipper::new(node(), limits, m.clone()), m)
    }

    const FILE: FileId = FileId { dev: 2049, ino: 77 };

    /// Cuts `data` into follower batches of whole lines, about `size` bytes each.
    fn batches(data: &[u8], size: usize) -> Vec<Batch> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < data.len() {
            let want = (start + size).min(data.len());
            let end = match data[want - 1..].iter().position(|b| *b == b'\n') {
                Some(i) => want + i,
                None => data.len(),
            };
            out.push(Batch {
                file: FILE,
                start_offset: start as u64,
                data: data[start..end].to_vec(),
            });
            start = end;
        }
        out
    }

    fn log_batches(envs: &[Envelope]) -> Vec<&LogBatch> {
        envs.iter()
            .filter_map(|e| match &e.event {
                Event::LogBatch(b) => Some(b),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_v30_log_ships_every_line_once_and_finds_the_invalid_block() {
        let data = std::fs::read(test_support::fixture(
            "bitcoin-core-v30/logs/node1.debug.log",
        ))
        .unwrap();
        let limits = Limits {
            lines: 100,
            bytes: 16 * 1024,
        };
        let (mut s, metrics) = shipper(limits);
        let mut envs = Vec::new();
        for b in batches(&data, 50_000) {
            envs.extend(s.handle(&b));
        }
        envs.extend(s.finish());

        let expected: Vec<(u64, &[u8])> = debuglog::split_lines(&data, 0).collect();
        let shipped: Vec<&LogLine> = log_batches(&envs)
            .iter()
            .flat_map(|b| b.lines.iter())
            .collect();
        assert_eq!(shipped.len(), expected.len(), "every line, once");
        for (l, (offset, bytes)) in shipped.iter().zip(&expected) {
            assert_eq!(l.offset, *offset);
            assert!(
                String::from_utf8_lossy(bytes).ends_with(&l.message),
                "line at {offset}: {:?}",
                l.message
            );
        }
        for b in log_batches(&envs) {
            assert_eq!(b.file_id, "2049:77");
            assert_eq!(b.start_offset, b.lines[0].offset);
            assert!(b.lines.len() <= limits.lines);
        }
        for env in envs.iter().filter(|e| e.kind() == Kind::LogBatch) {
            let size = env.encode().unwrap().len();
            assert!(size <= limits.bytes, "log_batch of {size} bytes");
            assert_eq!(env.subject(), "bmon.log.node1");
        }
        assert_eq!(metrics.log_lines_count(), expected.len() as u64);
        assert_eq!(metrics.log_unparseable_count("empty"), 5);

        let invalid: Vec<_> = envs
            .iter()
            .filter_map(|e| match &e.event {
                Event::InvalidBlock(b) => Some((e, b)),
                _ => None,
            })
            .collect();
        let hash = "4b48a6f085ccd4bde4eeb753fc24144ff8fdb45f466d58b6d59c82da9ef0486b";
        let (env, b) = invalid
            .iter()
            .find(|(_, b)| b.hash.to_string() == hash)
            .expect("block 121's invalid_block");
        assert_eq!(b.height, Some(schema::Height(121)));
        assert_eq!(b.reason, "bad-cb-amount");
        assert_eq!(b.source, schema::event::Source::Log);
        assert_eq!(env.subject(), "bmon.ev.invalid_block.node1");
        // 15:53:31.156020, node1's InvalidChainFound line.
        assert_eq!(env.observed_at, UnixMicros(1_795_622_011_156_020));
        for kind in [Kind::BlockSeen, Kind::BlockTiming, Kind::TxRejected] {
            assert!(metrics.log_event_count(kind) > 0, "{kind:?}");
        }
        assert_eq!(
            metrics.log_event_count(Kind::InvalidBlock),
            invalid.len() as u64
        );
    }

    #[test]
    fn how_a_log_is_cut_into_batches_does_not_change_its_ids() {
        let data = std::fs::read(test_support::fixture(
            "bitcoin-core-v30/logs/node2.debug.log",
        ))
        .unwrap();
        let limits = Limits {
            lines: 1_000,
            bytes: 256 * 1024,
        };
        let ids = |size: usize| {
            let (mut s, _) = shipper(limits);
            let mut ids: Vec<_> = batches(&data, size)
                .iter()
                .flat_map(|b| s.handle(b))
                .filter(|e| e.kind() != Kind::LogBatch)
                .map(|e| e.id)
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(1 << 20), ids(3_000), "typed events are the same");
    }

    #[test]
    fn garbage_is_shipped_counted_and_never_an_event() {
        let (mut s, metrics) = shipper(Limits {
            lines: 10,
            bytes: 8 * 1024,
        });
        let data = b"\xff\xfe not a line\n\n2026-11-25T15:53:31.155520Z ok\ncontinued\r\n".to_vec();
        let envs = s.handle(&Batch {
            file: FILE,
            start_offset: 100,
            data,
        });
        let lines: Vec<&LogLine> = log_batches(&envs)
            .iter()
            .flat_map(|b| b.lines.iter())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1].message, "");
        assert_eq!(lines[3].message, "continued");
        assert_eq!(
            lines[3].time, lines[2].time,
            "a continuation takes its line's time"
        );
        assert_eq!(metrics.log_unparseable_count("no_timestamp"), 2);
        assert_eq!(metrics.log_unparseable_count("empty"), 1);
        assert!(envs.iter().all(|e| e.kind() == Kind::LogBatch));
    }

    #[test]
    fn a_wallet_bracket_is_no_thread_once_the_file_showed_it_has_none() {
        let data = b"2026-12-05T03:47:10Z [validation] Enqueuing BlockConnected: block hash=00ff\n\
2026-12-05T03:47:11Z [bmon] Setting spkMan to active\n";
        let (mut s, _) = shipper(Limits {
            lines: 100,
            bytes: 16 * 1024,
        });
        let envs = s.handle(&batches(data, 1 << 20)[0]);
        let lines = &log_batches(&envs)[0].lines;
        assert_eq!(lines[1].thread, None);
        assert_eq!(lines[1].message, "[bmon] Setting spkMan to active");
        // Another file (rotation) is learnt afresh: here it has thread names.
        let rotated = Batch {
            file: FileId { dev: 2049, ino: 78 },
            start_offset: 0,
            data: b"2026-12-05T03:48:00Z [msghand] [validation] Enqueuing\n\
2026-12-05T03:48:01Z [httpworker.0] [bmon] Setting spkMan to active\n"
                .to_vec(),
        };
        let envs = s.handle(&rotated);
        let lines = &log_batches(&envs)[0].lines;
        assert_eq!(lines[1].thread.as_deref(), Some("httpworker.0"));
        assert_eq!(lines[1].message, "[bmon] Setting spkMan to active");
    }

    #[test]
    fn a_long_line_fits_one_message() {
        let limits = Limits {
            lines: 1_000,
            bytes: 8 * 1024,
        };
        let (mut s, _) = shipper(limits);
        // The follower cuts lines at max_line_bytes; the worst case is invalid UTF-8.
        let mut data = b"2026-11-25T15:53:31.155520Z ".to_vec();
        data.resize(limits.max_line_bytes(), 0xff);
        data.push(b'\n');
        let envs = s.handle(&Batch {
            file: FILE,
            start_offset: 0,
            data,
        });
        assert_eq!(envs.len(), 1);
        assert!(envs[0].encode().unwrap().len() <= limits.bytes);
    }

    #[tokio::test]
    async fn the_position_is_saved_only_after_the_publisher_settled_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("debug.log");
        let data = b"2026-11-25T15:53:31.155520Z first\n2026-11-25T15:53:31.155521Z second\n";
        std::fs::write(&log, data).unwrap();
        let config = DebugLogConfig {
            path: log,
            state_file: dir.path().join("debuglog.pos"),
            legacy_state_file: None,
            backfill: true,
            batch_lines: 100,
            batch_bytes: 64 * 1024,
            poll_interval: std::time::Duration::from_millis(10),
        };
        let state = StateFile::new(&config.state_file);
        let (tx, mut rx) = mpsc::channel(100);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            config,
            node(),
            Metrics::new(&node()),
            Clock::wall(),
            tx,
            shutdown.clone(),
        ));
        // This "publisher" has received the batch but not settled it yet.
        let mut events = 0;
        let done = loop {
            match tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
                .await
                .expect("the batch arrives")
                .expect("the source is running")
            {
                Item::Event(_) => events += 1,
                Item::Commit(done) => break done,
            }
        };
        assert_eq!(events, 1, "one log_batch before the commit token");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(
            state.load().unwrap(),
            None,
            "no position saved while the batch is unsettled"
        );
        // The batch is acknowledged or spooled: now the position is saved.
        done.send(()).unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let saved = loop {
            if let Some(pos) = state.load().unwrap() {
                break pos;
            }
            assert!(tokio::time::Instant::now() < deadline, "position saved");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        assert_eq!(saved.offset, data.len() as u64);
        shutdown.cancel();
        let res = tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("the source stops")
            .unwrap();
        assert!(res.is_ok());
    }

    #[tokio::test]
    async fn a_publisher_that_drops_the_token_leaves_the_position_unsaved() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("debug.log");
        std::fs::write(&log, b"2026-11-25T15:53:31.155520Z first\n").unwrap();
        let config = DebugLogConfig {
            path: log,
            state_file: dir.path().join("debuglog.pos"),
            legacy_state_file: None,
            backfill: true,
            batch_lines: 100,
            batch_bytes: 64 * 1024,
            poll_interval: std::time::Duration::from_millis(10),
        };
        let state = StateFile::new(&config.state_file);
        let (tx, mut rx) = mpsc::channel(100);
        let task = tokio::spawn(run(
            config,
            node(),
            Metrics::new(&node()),
            Clock::wall(),
            tx,
            CancellationToken::new(),
        ));
        // The publisher dies with the batch in hand.
        while let Some(item) = rx.recv().await {
            if let Item::Commit(_) = item {
                break;
            }
        }
        drop(rx);
        let res = tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("the source stops")
            .unwrap();
        assert!(matches!(res, Err(PublisherGone)));
        assert_eq!(state.load().unwrap(), None);
    }
}
