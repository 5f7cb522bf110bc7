//! Bitcoin Core's debug.log, turned into bmon events.
//!
//! Half of what an operator wants to know about a node (when a header or compact block
//! arrived, how long validation took, which transactions were rejected and why, invalid
//! blocks, reorgs as the node lived them) is written only to debug.log. This crate reads it;
//! it publishes nothing and knows nothing about NATS: the agent and `bmon parse-log` call it.
//!
//! - [`line`]: the line parser. Pure, byte-level, no allocation: timestamp (with or without
//!   `T`, `Z`, microseconds and a `(mocktime: ..)`), the optional `[thread]`,
//!   `[file.cpp:line]`, `[function]` (short, or a GCC build's whole signature) and
//!   `[category]`/`[category:level]`/`[level]` prefixes, and the message. Works on any Core
//!   from 0.10 to 30 with any combination of log options.
//! - [`extract`]: the [`Extractor`], a pure state machine (no I/O, no clock: time is the
//!   line's own timestamp) that turns parsed lines into [`schema::Event`]s.
//! - [`follow`]: tails a live debug.log through rotation, copy-truncate, recreation and
//!   partial writes, persisting its position so a restart has no gap and no duplicate.
//! - [`jsonl`]: one JSON object per event, for `bmon parse-log FILE --format jsonl`.
//!
//! Bad input is never a panic: an unparseable line is a [`line::LineError`] value that the
//! caller counts and skips; a line the extractor does not understand simply carries no event.

pub mod error;
pub mod extract;
pub mod follow;
pub mod jsonl;
pub mod line;
mod scan;

pub use error::Error;
pub use extract::{Extractor, LogEvent};
pub use line::{parse_line, parse_line_as, split_lines, Line, LineError, LineReader, ThreadNames};
