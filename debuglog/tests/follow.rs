//! The follower on real temp files: split lines, rotation, copy-truncate, recreation,
//! restarts, fresh installs, and the threaded follower with its bounded channel.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use debuglog::follow::{spawn, Batch, Commit, FollowConfig, StartAt, StateFile, Tail};

const DEADLINE: Duration = Duration::from_secs(10);

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(bytes).expect("append");
}

fn config(dir: &Path, start: StartAt) -> FollowConfig {
    let mut c = FollowConfig::new(dir.join("debug.log"));
    c.state_path = Some(dir.join("debuglog.state"));
    c.start = start;
    c.poll_interval = Duration::from_millis(10);
    c
}

/// Polls `tail` until it has handed out `n` lines or the deadline passes.
fn read_lines(tail: &mut Tail, n: usize) -> Vec<(u64, Vec<u8>)> {
    let deadline = Instant::now() + DEADLINE;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < deadline, "timed out with {out:?}");
        match tail.poll().expect("poll") {
            Some(b) => out.extend(b.lines().map(|(o, l)| (o, l.to_vec()))),
            None => std::thread::yield_now(),
        }
    }
    out
}

/// Everything the tail has now (it never blocks, so `None` means nothing is there).
fn drain(tail: &mut Tail) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(b) = tail.poll().expect("poll") {
        out.extend(b.lines().map(|(_, l)| l.to_vec()));
    }
    out
}

fn texts(lines: &[(u64, Vec<u8>)]) -> Vec<String> {
    lines
        .iter()
        .map(|(_, l)| String::from_utf8_lossy(l).into_owned())
        .collect()
}

fn commit(dir: &Path, tail: &Tail) {
    let pos = tail.position().expect("a position");
    StateFile::new(dir.join("debuglog.state"))
        .save(&pos)
        .expect("save");
}

#[test]
fn a_line_split_across_two_writes_is_emitted_once_whole() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), StartAt::Beginning);
    append(&c.path, b"line one\nline t");
    let mut tail = Tail::open(&c).unwrap();
    assert_eq!(texts(&read_lines(&mut tail, 1)), ["line one"]);
    assert!(drain(&mut tail).is_empty());
    append(&c.path, b"wo\nline three\n");
    let got = read_lines(&mut tail, 2);
    assert_eq!(texts(&got), ["line two", "line three"]);
    assert_eq!(got[0].0, 9, "offset of the split line is its start");
}

#[test]
fn rotation_by_rename_reads_the_old_file_to_its_end_then_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), StartAt::Beginning);
    let rotated = dir.path().join("debug.log.1");
    append(&c.path, b"a1\na2\n");
    let mut tail = Tail::open(&c).unwrap();
    assert_eq!(texts(&read_lines(&mut tail, 2)), ["a1", "a2"]);
    fs::rename(&c.path, &rotated).unwrap();
    append(&c.path, b""); // logrotate `create`: a new empty file
    append(&rotated, b"a3 written before bitcoind reopened\na4 par"); // still the old fd
    assert_eq!(
        drain(&mut tail),
        [b"a3 written before bitcoind reopened".to_vec()]
    );
    append(&rotated, b"tial\n");
    append(&c.path, b"b1\n");
    let got = read_lines(&mut tail, 2);
    assert_eq!(texts(&got), ["a4 partial", "b1"]);
    assert_eq!(got[1].0, 0);
    assert!(drain(&mut tail).is_empty());
    assert_eq!(tail.stats().rotations, 1);
}

#[test]
fn copy_truncate_restarts_at_the_beginning_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), StartAt::Beginning);
    append(&c.path, b"old 1\nold 2\nold 3\n");
    let mut tail = Tail::open(&c).unwrap();
    assert_eq!(read_lines(&mut tail, 3).len(), 3);
    fs::copy(&c.path, dir.path().join("debug.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&c.path)
        .unwrap();
    append(&c.path, b"new 1\n");
    assert_eq!(texts(&read_lines(&mut tail, 1)), ["new 1"]);
    assert_eq!(tail.stats().truncations, 1);
    // Truncated and refilled past our offset before we looked: still noticed.
    append(&c.path, b"new 2\n");
    assert_eq!(drain(&mut tail), [b"new 2".to_vec()]);
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&c.path)
        .unwrap();
    append(&c.path, b"again 1 which is a long line\n");
    assert_eq!(drain(&mut tail), [b"again 1 which is a long line".to_vec()]);
    assert_eq!(tail.stats().truncations, 2);
}

#[test]
fn a_deleted_and_recreated_log_is_followed_into_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), StartAt::Beginning);
    append(&c.path, b"x1\n");
    let mut tail = Tail::open(&c).unwrap();
    assert_eq!(read_lines(&mut tail, 1).len(), 1);
    fs::remove_file(&c.path).unwrap();
    assert!(drain(&mut tail).is_empty());
    append(&c.path, b"y1\ny2\n");
    assert_eq!(texts(&read_lines(&mut tail, 2)), ["y1", "y2"]);
}

#[test]
fn a_restart_mid_file_resumes_with_no_gap_and_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), StartAt::Beginning);
    append(&c.path, b"1\n2\n3\npartial");
    let mut tail = Tail::open(&c).unwrap();
    assert_eq!(texts(&read_lines(&mut tail, 3)), ["1", "2", "3"]);
    commit(dir.path(), &tail);
    drop(tail);
    append(&c.path, b" four\n5\n");
    let mut tail = Tail::open(&c).unwrap();
    let got = read_lines(&mut tail, 2);
    assert_eq!(texts(&got), ["partial four", "5"]);
    assert_eq!(got[0].0, 6);
    assert!(drain(&mut tail).is_empty());
}

#[test]
fn a_restart_after_a_rotation_while_down_finishes_the_rotated_file_first() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), StartAt::Beginning);
    append(&c.path, b"1\n2\n");
    let mut tail = Tail::open(&c).unwrap();
    assert_eq!(read_lines(&mut tail, 2).len(), 2);
    commit(dir.path(), &tail);
    drop(tail);
    append(&c.path, b"3 unread when rotated\n");
    fs::rename(&c.path, dir.path().join("debug.log.1")).unwrap();
    append(&c.path, b"new 1\n");
    let mut tail = Tail::open(&c).unwrap();
    assert_eq!(
        texts(&read_lines(&mut tail, 2)),
        ["3 unread when rotated", "new 1"]
    );
    assert!(drain(&mut tail).is_empty());
}

#[test]
fn a_fresh_install_starts_at_the_end_unless_told_to_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), StartAt::End);
    append(&c.path, b"history 1\nhistory 2\nbeing writ");
    let mut tail = Tail::open(&c).unwrap();
    assert!(drain(&mut tail).is_empty());
    append(&c.path, b"ten\nnew\n");
    assert_eq!(texts(&read_lines(&mut tail, 2)), ["being written", "new"]);

    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), StartAt::Beginning);
    append(&c.path, b"history 1\nhistory 2\n");
    let mut tail = Tail::open(&c).unwrap();
    assert_eq!(texts(&read_lines(&mut tail, 2)), ["history 1", "history 2"]);
}

#[test]
fn invalid_utf8_is_passed_through_as_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), StartAt::Beginning);
    append(&c.path, b"ok\n\xff\xfe bad \xc3\n");
    let mut tail = Tail::open(&c).unwrap();
    let got = read_lines(&mut tail, 2);
    assert_eq!(got[1].1, b"\xff\xfe bad \xc3");
}

fn recv(rx: &mut tokio::sync::mpsc::Receiver<Batch>, n: usize) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out with {out:?}");
        match rx.try_recv() {
            Ok(b) => out.extend(
                b.lines()
                    .map(|(_, l)| String::from_utf8_lossy(l).into_owned()),
            ),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                std::thread::sleep(Duration::from_millis(5).min(left))
            }
            Err(e) => panic!("channel: {e}"),
        }
    }
    out
}

#[test]
fn the_follower_thread_sends_batches_and_saves_its_position_for_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), StartAt::Beginning);
    append(&c.path, b"1\n2\n");
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let follower = spawn(c.clone(), tx).unwrap();
    assert_eq!(recv(&mut rx, 2), ["1", "2"]);
    append(&c.path, b"3\n");
    assert_eq!(recv(&mut rx, 1), ["3"]);
    follower.stop().unwrap();
    append(&c.path, b"4\n");

    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let follower = spawn(c.clone(), tx).unwrap();
    assert_eq!(recv(&mut rx, 1), ["4"]);
    follower.stop().unwrap();
    assert!(rx.try_recv().is_err(), "no duplicate after the restart");
}

#[test]
fn with_consumer_commits_an_unacknowledged_batch_is_read_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), StartAt::Beginning);
    c.commit = Commit::ByConsumer;
    append(&c.path, b"1\n");
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let follower = spawn(c.clone(), tx).unwrap();
    let deadline = Instant::now() + DEADLINE;
    let first = loop {
        if let Ok(b) = rx.try_recv() {
            break b;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(5));
    };
    StateFile::new(c.state_path.clone().unwrap())
        .save(&first.position())
        .unwrap();
    append(&c.path, b"2\n");
    assert_eq!(recv(&mut rx, 1), ["2"]); // received, never acknowledged
    follower.stop().unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let follower = spawn(c, tx).unwrap();
    assert_eq!(recv(&mut rx, 1), ["2"]);
    follower.stop().unwrap();
}
