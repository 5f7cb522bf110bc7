//! Rows of `logs`: one per debug.log line of a `log_batch` event. A line is identified by its
//! file and byte offset (the table's sort key), so lines re-sent in a differently cut batch
//! still collapse.

use schema::event::{LogBatch, LogLine};

use super::{secs, Head};

/// One `logs` row.
#[derive(
    Debug, Clone, PartialEq, PartialOrd, clickhouse::Row, serde::Serialize, serde::Deserialize,
)]
pub struct LogRow {
    /// The batch's event id.
    pub event_id: String,
    /// Node name.
    pub node: String,
    /// The batch's observation time, µs.
    pub observed_at_us: i64,
    /// The batch's observation time, seconds.
    pub observed_at: u32,
    /// Identity of the log file.
    pub file_id: String,
    /// Byte offset of the line in the file.
    pub offset: u64,
    /// The line's own timestamp, µs.
    pub time_us: i64,
    /// The line's own timestamp, seconds.
    pub time: u32,
    /// `[thread]`, or ''.
    pub thread: String,
    /// `[category]`, or ''.
    pub category: String,
    /// `[level]`, or ''.
    pub level: String,
    /// `[file.cpp:line]`, or ''.
    pub location: String,
    /// `[function]`, or ''.
    pub function: String,
    /// The message.
    pub message: String,
}

impl LogRow {
    pub(crate) fn new(h: &Head, batch: &LogBatch, line: &LogLine) -> Self {
        let Head {
            event_id,
            node,
            observed_at_us,
            observed_at,
        } = h.clone();
        LogRow {
            event_id,
            node,
            observed_at_us,
            observed_at,
            file_id: batch.file_id.clone(),
            offset: line.offset,
            time_us: line.time.0,
            time: secs(line.time.0),
            thread: line.thread.clone().unwrap_or_default(),
            category: line.category.clone().unwrap_or_default(),
            level: line.level.clone().unwrap_or_default(),
            location: line.location.clone().unwrap_or_default(),
            function: line.function.clone().unwrap_or_default(),
            message: line.message.clone(),
        }
    }
}
