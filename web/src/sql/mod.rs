//! The SQL behind each page: one module per page with its query builders (pure: SQL text and
//! the values to bind) and row types, and [`Db`], which runs them with a deadline and turns
//! ClickHouse's failures into [`PageError`]s that say what to do.
//!
//! Every user value reaches ClickHouse as a `?` bind (the client quotes and escapes it);
//! nothing a request carries is pasted into SQL text. Tables are read with `FINAL`
//! (`clickhouse/README.md`), and each query filters on its table's sort key or partition
//! where it can, with a `LIMIT`, so pages stay fast on large tables (`benches/pages.rs`).
//!
//! The "latest row per node" queries select that row in `PREWHERE`: every copy of a row has
//! the same key, so filtering before the `FINAL` merge gives `FINAL`'s answer while merging
//! only the rows wanted, not the whole table. Their inner `max` reads no `FINAL` (a copy cannot
//! change a maximum), nor do the existence lookups of [`known`] (`DISTINCT`).

pub mod alerts;
pub mod block;
pub mod events;
pub mod fleet;
pub mod known;
pub mod logs;
pub mod mempools;
pub mod peers;
pub mod tips;
pub mod tx;
pub mod validation;

use std::time::Duration;

use clickhouse::query::Query;
use clickhouse::{Client, RowOwned, RowRead};
use consumers::config::ClickHouseConfig;

use crate::error::PageError;

/// A bound value of a query built by a page's SQL module.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A string (quoted and escaped by the client).
    Str(String),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
}

/// SQL text with `?` placeholders and the values for them, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    /// The statement; its only `?` characters are placeholders.
    pub text: String,
    /// One value per placeholder.
    pub args: Vec<Arg>,
}

impl Sql {
    /// A statement without placeholders.
    pub fn new(text: impl Into<String>) -> Sql {
        Sql {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// Appends SQL text (written by bmon-web, never from a request).
    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Appends a `?` and its string value.
    pub fn str(&mut self, v: impl Into<String>) -> &mut Sql {
        self.text.push('?');
        self.args.push(Arg::Str(v.into()));
        self
    }

    /// Appends a `?` and its signed value.
    pub fn int(&mut self, v: i64) -> &mut Sql {
        self.text.push('?');
        self.args.push(Arg::Int(v));
        self
    }

    /// Appends a `?` and its unsigned value.
    pub fn uint(&mut self, v: u64) -> &mut Sql {
        self.text.push('?');
        self.args.push(Arg::UInt(v));
        self
    }

    /// Appends `(?, ?, ...)` with one string placeholder per value (`x IN (...)`); `('')`
    /// when there are none, which matches nothing real.
    pub fn str_list<S: AsRef<str>>(&mut self, values: &[S]) -> &mut Sql {
        self.text.push('(');
        if values.is_empty() {
            self.text.push_str("''");
        }
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.str(v.as_ref());
        }
        self.text.push(')');
        self
    }

    /// Number of placeholders in the text (what the client will substitute).
    pub fn placeholders(&self) -> usize {
        self.text.matches('?').count()
    }
}

/// ClickHouse, as the pages use it.
#[derive(Clone)]
pub struct Db {
    client: Client,
    url: String,
    database: String,
    user: String,
    timeout: Duration,
}

impl Db {
    /// A client for `cfg`'s database; each query gets `timeout`.
    pub fn new(cfg: &ClickHouseConfig, timeout: Duration) -> Db {
        Db {
            client: consumers::clickhouse_client(cfg),
            url: cfg.url.clone(),
            database: cfg.database.clone(),
            user: cfg.user.clone(),
            timeout,
        }
    }

    /// The configured URL (for messages).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn bound(&self, sql: &Sql) -> Query {
        debug_assert_eq!(sql.placeholders(), sql.args.len(), "{}", sql.text);
        let mut q = self.client.query(&sql.text);
        for a in &sql.args {
            q = match a {
                Arg::Str(s) => q.bind(s.as_str()),
                Arg::Int(i) => q.bind(*i),
                Arg::UInt(u) => q.bind(*u),
            };
        }
        q
    }

    /// Runs `sql` and reads every row; `what` names the query in errors.
    pub async fn rows<T>(&self, what: &'static str, sql: Sql) -> Result<Vec<T>, PageError>
    where
        T: RowOwned + RowRead,
    {
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(self.timeout, self.bound(&sql).fetch_all::<T>()).await;
        tracing::debug!(
            query = what,
            ms = started.elapsed().as_millis() as u64,
            "clickhouse"
        );
        match result {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(self.page_error(what, e)),
            Err(_) => Err(PageError::Timeout {
                what,
                ms: self.timeout.as_millis() as u64,
            }),
        }
    }

    /// Sorts a client error into what the reader should do.
    fn page_error(&self, what: &'static str, e: clickhouse::error::Error) -> PageError {
        use clickhouse::error::Error as E;
        match e {
            E::Network(_) => PageError::Unreachable {
                url: self.url.clone(),
                detail: e.to_string(),
            },
            E::TimedOut => PageError::Timeout {
                what,
                ms: self.timeout.as_millis() as u64,
            },
            E::BadResponse(text) => match consumers::writer::exception_code(&text) {
                // Unknown table, unknown database.
                Some(60 | 81) => PageError::NotSetUp {
                    database: self.database.clone(),
                    detail: first_line(&text),
                },
                // Unknown user, wrong password, no access.
                Some(192 | 193 | 194 | 195 | 497 | 516) => PageError::Denied {
                    user: self.user.clone(),
                    detail: first_line(&text),
                },
                _ => PageError::Query {
                    what,
                    detail: first_line(&text),
                },
            },
            other => PageError::Query {
                what,
                detail: other.to_string(),
            },
        }
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    let mut out: String = line.chars().take(400).collect();
    if line.chars().count() > 400 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every query the pages send, with values that look like what a request carries.
    fn every_query() -> Vec<Sql> {
        let h = "ab".repeat(32);
        vec![
            fleet::latest_status(),
            fleet::open_alerts(),
            tips::top(),
            tips::connected(100),
            tips::disconnected(100),
            tips::reorgs(100),
            tips::chain_tips(),
            tips::invalid(100),
            block::at_height(104),
            block::seen(&h),
            block::connected(&h, Some(104)),
            block::connected(&h, None),
            block::children(&h, 104),
            block::disconnected(&h, 104),
            block::invalid(&h),
            block::timing(&h, 1, 2),
            block::versions(&h, 1, 2),
            block::propagation("block", &h),
            tx::seen(&h),
            tx::rejected(&h),
            tx::replaced(&h),
            tx::replacing(&h),
            tx::removed(&h),
            tx::blocks_connected(&["n0", "n1"], 1, 2),
            alerts::list(&alerts::Filter {
                state: Some("firing"),
                node: Some("n0".into()),
                kind: Some("reorg".into()),
            }),
            alerts::list(&alerts::Filter::default()),
            known::lookup(std::slice::from_ref(&h)),
            logs::search(&logs::Search {
                node: Some("n0".into()),
                from_us: 1,
                to_us: 2,
                category: Some("net".into()),
                level: Some("info".into()),
                text: Some("?".into()),
                limit: 5,
            }),
            events::around("n0", 1, 2),
            mempools::snapshots(),
            mempools::divergence(),
            mempools::templates(),
            validation::by_version(),
            validation::by_stage(),
            peers::snapshots(),
            peers::first_deliveries(1),
        ]
    }

    #[test]
    fn every_query_has_one_value_per_placeholder_and_reads_with_final() {
        for q in every_query() {
            assert_eq!(q.placeholders(), q.args.len(), "{}", q.text);
            // Views read their table with FINAL themselves; max/DISTINCT lookups need no merge.
            let upper = q.text.to_uppercase();
            assert!(
                upper.contains(" FINAL")
                    || upper.contains("_BY_VERSION")
                    || upper.starts_with("SELECT MAX(")
                    || upper.contains("SELECT DISTINCT"),
                "{}",
                q.text
            );
        }
    }

    #[test]
    fn values_become_placeholders_never_text() {
        let mut q = Sql::new("SELECT 1 FROM logs WHERE node = ");
        q.str("n0' OR 1=1 --")
            .push(" AND x IN ")
            .str_list(&["a", "b?"])
            .push(" AND t > ")
            .int(-5);
        assert_eq!(
            q.text,
            "SELECT 1 FROM logs WHERE node = ? AND x IN (?, ?) AND t > ?"
        );
        assert_eq!(q.placeholders(), q.args.len());
        assert_eq!(q.args[0], Arg::Str("n0' OR 1=1 --".into()));
        let mut none = Sql::new("x IN ");
        none.str_list::<&str>(&[]);
        assert_eq!(none.text, "x IN ('')");
    }
}
