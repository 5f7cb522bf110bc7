//! `bmon logs`: search the nodes' debug.log lines kept in ClickHouse (by node, time, category,
//! level and text; every value is a bound parameter, never pasted into the SQL), and with
//! `--follow` keep printing new lines as the agents publish them on `bmon.log.<node>`.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Context;
use futures::StreamExt;
use schema::{Envelope, Event};
use serde::{Deserialize, Serialize};

use crate::services::Services;
use crate::since::Since;
use crate::table::clock;

/// Options of `bmon logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this node's lines.
    #[arg(long)]
    node: Option<String>,
    /// Only lines whose message contains this text (case-insensitive).
    #[arg(long)]
    grep: Option<String>,
    /// Only this category (`net`, `validation`, `mempool`, ...).
    #[arg(long)]
    category: Option<String>,
    /// Only this level (`info`, `debug`, `warning`, `error`).
    #[arg(long)]
    level: Option<String>,
    /// Lines logged within this long (`30m`, `12h`, `7d`).
    #[arg(long, default_value = "1h")]
    since: Since,
    /// At most this many lines from ClickHouse (the newest).
    #[arg(long, default_value_t = 200)]
    limit: u64,
    /// Then keep printing new lines as the agents publish them (Ctrl-C ends).
    #[arg(long)]
    follow: bool,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// The newest matching lines. ClickHouse 18.16 and current releases both run it.
pub const LOGS_SQL: &str = "\
SELECT node, time_us, file_id, offset, thread, category, level, message \
FROM logs FINAL \
WHERE time_us >= ? AND (? = '' OR node = ?) AND (? = '' OR category = ?) \
AND (? = '' OR level = ?) AND (? = '' OR positionCaseInsensitiveUTF8(message, ?) > 0) \
ORDER BY time_us DESC, node, file_id, offset DESC LIMIT ?";

/// One debug.log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct LogRow {
    pub node: String,
    pub time_us: i64,
    pub file_id: String,
    pub offset: u64,
    pub thread: String,
    pub category: String,
    pub level: String,
    pub message: String,
}

/// The filters, applied alike to ClickHouse's lines and the live ones.
#[derive(Debug, Clone, Default)]
struct Filter {
    node: String,
    category: String,
    level: String,
    grep: String,
}

impl Filter {
    fn of(args: &Args) -> Filter {
        Filter {
            node: args.node.clone().unwrap_or_default(),
            category: args.category.clone().unwrap_or_default(),
            level: args.level.clone().unwrap_or_default(),
            grep: args.grep.clone().unwrap_or_default(),
        }
    }

    fn keeps(&self, l: &LogRow) -> bool {
        (self.node.is_empty() || l.node == self.node)
            && (self.category.is_empty() || l.category == self.category)
            && (self.level.is_empty() || l.level == self.level)
            && (self.grep.is_empty()
                || l.message.to_lowercase().contains(&self.grep.to_lowercase()))
    }
}

/// Runs `bmon logs`.
pub async fn run(services: &Services, args: Args) -> anyhow::Result<()> {
    let filter = Filter::of(&args);
    // Subscribe before reading history, so no line falls between the two.
    let live = if args.follow {
        let client = services.nats().await?;
        let subject = format!(
            "bmon.log.{}",
            if filter.node.is_empty() {
                "*"
            } else {
                &filter.node
            }
        );
        let sub = client
            .subscribe(subject.clone())
            .await
            .with_context(|| format!("cannot subscribe to {subject}"))?;
        tokio::time::timeout(std::time::Duration::from_secs(10), client.flush())
            .await
            .context("NATS did not confirm the subscription within 10 s")?
            .context("cannot reach NATS")?;
        Some((client, sub))
    } else {
        None
    };
    let mut lines: Vec<LogRow> = services
        .clickhouse()
        .query(LOGS_SQL)
        .bind(args.since.start_us())
        .bind(&filter.node)
        .bind(&filter.node)
        .bind(&filter.category)
        .bind(&filter.category)
        .bind(&filter.level)
        .bind(&filter.level)
        .bind(&filter.grep)
        .bind(&filter.grep)
        .bind(args.limit)
        .fetch_all()
        .await
        .context(
            "cannot read logs (--clickhouse-url, BMON_CLICKHOUSE_URL; has `bmon setup` run, \
             and do the agents follow the nodes' debug.log?)",
        )?;
    lines.reverse();
    // The last line printed of each file: live lines up to it were in the history already.
    let mut printed: HashMap<String, u64> = HashMap::new();
    let mut out = std::io::stdout().lock();
    for l in &lines {
        printed
            .entry(l.file_id.clone())
            .and_modify(|o| *o = (*o).max(l.offset))
            .or_insert(l.offset);
        if writeln!(out, "{}", format_line(l, args.json)).is_err() {
            return Ok(());
        }
    }
    if lines.is_empty() && !args.follow {
        eprintln!("(no matching line in the window)");
    }
    let Some((_client, mut sub)) = live else {
        return Ok(());
    };
    drop(out);
    eprintln!("following new lines (Ctrl-C ends)");
    let mut undecodable = 0u64;
    loop {
        let msg = tokio::select! {
            m = sub.next() => match m {
                Some(m) => m,
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        };
        let env = match Envelope::decode(&msg.payload) {
            Ok(env) => env,
            Err(e) => {
                undecodable += 1;
                eprintln!("undecodable message on {}: {e}", msg.subject);
                continue;
            }
        };
        let Event::LogBatch(batch) = env.event else {
            continue;
        };
        let mut out = std::io::stdout().lock();
        for line in batch.lines {
            let row = LogRow {
                node: env.node.as_str().to_string(),
                time_us: line.time.0,
                file_id: batch.file_id.clone(),
                offset: line.offset,
                thread: line.thread.unwrap_or_default(),
                category: line.category.unwrap_or_default(),
                level: line.level.unwrap_or_default(),
                message: line.message,
            };
            if printed
                .get(&row.file_id)
                .is_some_and(|last| row.offset <= *last)
                || !filter.keeps(&row)
            {
                continue;
            }
            if writeln!(out, "{}", format_line(&row, args.json)).is_err() {
                return Ok(());
            }
        }
        let _ = out.flush();
    }
    if undecodable > 0 {
        eprintln!("{undecodable} undecodable messages skipped");
    }
    Ok(())
}

/// `2026-12-05 09:41:02.123 node0 [net:debug] message`, or one JSON object.
fn format_line(l: &LogRow, json: bool) -> String {
    if json {
        return serde_json::json!({
            "node": l.node,
            "time_us": l.time_us,
            "thread": l.thread,
            "category": l.category,
            "level": l.level,
            "message": l.message,
        })
        .to_string();
    }
    let tag = match (l.category.as_str(), l.level.as_str()) {
        ("", "") => String::new(),
        (c, "") => format!("[{c}] "),
        ("", v) => format!("[{v}] "),
        (c, v) => format!("[{c}:{v}] "),
    };
    format!("{} {} {tag}{}", clock(l.time_us), l.node, l.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(node: &str, category: &str, message: &str) -> LogRow {
        LogRow {
            node: node.into(),
            time_us: 1_764_927_662_123_000,
            file_id: "f".into(),
            offset: 10,
            thread: "msghand".into(),
            category: category.into(),
            level: "debug".into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_line_reads_like_the_log() {
        assert_eq!(
            format_line(&row("n0", "net", "received: block"), false),
            "2025-12-05 09:41:02.123 n0 [net:debug] received: block"
        );
        let v: serde_json::Value =
            serde_json::from_str(&format_line(&row("n0", "", "x"), true)).unwrap();
        assert_eq!(v["node"], "n0");
        assert_eq!(v["thread"], "msghand");
    }

    #[test]
    fn live_lines_pass_the_same_filters() {
        let f = Filter {
            node: "n1".into(),
            category: "net".into(),
            level: String::new(),
            grep: "BLOCK".into(),
        };
        assert!(f.keeps(&row("n1", "net", "received: block")));
        assert!(!f.keeps(&row("n0", "net", "received: block")));
        assert!(!f.keeps(&row("n1", "mempool", "received: block")));
        assert!(!f.keeps(&row("n1", "net", "received: tx")));
    }
}
