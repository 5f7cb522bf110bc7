//! The one error type of the debuglog crate (I/O-facing parts: the follower and the JSONL
//! writer). A single unparseable line is not an error of this type but a
//! [`crate::line::LineError`] value, counted by the caller and skipped.

use std::path::PathBuf;

/// What can go wrong reading a debug.log file or the follower's state file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The debug.log (or a rotated copy of it) could not be opened, read or examined.
    /// The follower retries on its next poll; `parse-log` reports it and exits non-zero.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The follower's state file could not be written. The follower keeps going (the
    /// position is re-saved after the next batch); a restart before then re-reads from the
    /// last saved position.
    #[error("cannot save follower state to {path}")]
    SaveState {
        /// The state file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The follower's state file exists but is not a state this build wrote. The caller
    /// should move it away (the follower then starts as a fresh install) and tell the operator.
    #[error("follower state file {path} is corrupt: {reason}")]
    CorruptState {
        /// The state file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// Writing the JSONL output failed (closed pipe, full disk).
    #[error("cannot write JSONL output")]
    Write(#[source] std::io::Error),
    /// The follower's receiver was dropped: the consumer is gone, so the follower stops.
    #[error("the follower's receiver was dropped")]
    ReceiverGone,
}
