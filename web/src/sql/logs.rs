//! Log search SQL: debug.log lines (`logs`) by node, time range, category, level and text.
//!
//! Every value is a bind. The time range prunes partitions (`time`, by month) and, with a
//! node, uses the sort key (`node, time_us, ...`); the text is matched with
//! `positionCaseInsensitiveUTF8` (no pattern characters: `%`, `_` and quotes are just text).

use serde::Deserialize;

use super::Sql;

/// A search.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// One node, or all.
    pub node: Option<String>,
    /// From, µs (inclusive).
    pub from_us: i64,
    /// To, µs (exclusive).
    pub to_us: i64,
    /// Log category (`net`, `validation`, ...), exact.
    pub category: Option<String>,
    /// Level (`debug`, `info`, `warning`, `error`), exact.
    pub level: Option<String>,
    /// Text the message contains, any case.
    pub text: Option<String>,
    /// Most lines returned.
    pub limit: u32,
}

/// The lines matching `s`, newest first.
pub fn search(s: &Search) -> Sql {
    let mut q = Sql::new(
        "SELECT node, time_us, thread, category, level, message, file_id, offset \
         FROM logs FINAL PREWHERE time >= toDateTime(",
    );
    q.int(s.from_us.div_euclid(1_000_000))
        .push(") AND time <= toDateTime(")
        .int(s.to_us.div_euclid(1_000_000) + 1)
        .push(")");
    if let Some(n) = &s.node {
        q.push(" AND node = ").str(n.as_str());
    }
    q.push(" WHERE time_us >= ")
        .int(s.from_us)
        .push(" AND time_us < ")
        .int(s.to_us);
    if let Some(c) = &s.category {
        q.push(" AND category = ").str(c.as_str());
    }
    if let Some(l) = &s.level {
        q.push(" AND level = ").str(l.as_str());
    }
    if let Some(t) = &s.text {
        q.push(" AND positionCaseInsensitiveUTF8(message, ")
            .str(t.as_str())
            .push(") > 0");
    }
    q.push(" ORDER BY time_us DESC, node, file_id, offset LIMIT ")
        .uint(s.limit.into());
    q
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct LogRow {
    /// The node.
    pub node: String,
    /// The line's own time, µs.
    pub time_us: i64,
    /// Thread name ('' when not logged).
    pub thread: String,
    /// Category ('' when none).
    pub category: String,
    /// Level ('' when none).
    pub level: String,
    /// The message.
    pub message: String,
    /// The file it came from.
    pub file_id: String,
    /// Its byte offset there.
    pub offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_search_value_is_a_bind() {
        let s = Search {
            node: Some("n0".into()),
            from_us: 1_000_000,
            to_us: 2_000_000,
            category: Some("net".into()),
            level: Some("debug".into()),
            text: Some("it's \"x\" ?".into()),
            limit: 10,
        };
        let q = search(&s);
        assert_eq!(q.placeholders(), q.args.len());
        assert_eq!(q.args.len(), 9);
        assert!(!q.text.contains("it's"), "{}", q.text);
        assert!(!q.text.contains("net"), "{}", q.text);
    }
}
