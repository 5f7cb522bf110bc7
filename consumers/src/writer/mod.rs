//! The ClickHouse writer (`ch-writer`): one row per envelope in its kind's table (one row per
//! line for `log_batch`, in `logs`), inserted per table for each fetched batch.
//!
//! Row types live in one module per table group ([`node`], [`block`], [`tx`], [`mempool`],
//! [`logged`], [`logs`], [`alert`]); this module maps envelopes to them ([`Rows`]), inserts
//! them and sorts failures for the runtime:
//!
//! - network errors, timeouts, overloaded server: transient (the batch is retried);
//! - a missing table or database, refused credentials, or every row of a table refused:
//!   fatal (the schema does not match this build; run `bmon setup`);
//! - ClickHouse refusing the data of some rows: those envelopes are poison. The failed table
//!   insert is retried one envelope at a time to find them; the others are stored.
//!
//! Tables are `ReplacingMergeTree`s keyed by the event id (see `clickhouse/README.md`), so a
//! redelivered batch collapses in `FINAL` queries: inserting twice is harmless.

pub mod alert;
pub mod block;
pub mod logged;
pub mod logs;
pub mod mempool;
pub mod node;
pub mod tx;

use std::sync::Arc;
use std::time::Instant;

use clickhouse::{Client, RowOwned, RowRead, RowWrite};
use futures::future::{join_all, BoxFuture};
use futures::FutureExt;
use schema::{Envelope, Event, Kind};

use crate::metrics::Metrics;
use crate::runtime::{HandleError, Handler};

/// The table holding a kind's rows.
pub fn table_for(kind: Kind) -> &'static str {
    match kind {
        Kind::LogBatch => "logs",
        Kind::Alert => "alerts",
        other => other.as_str(),
    }
}

/// The envelope columns every table starts with.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub event_id: String,
    pub node: String,
    pub observed_at_us: i64,
    pub observed_at: u32,
}

impl Head {
    pub(crate) fn of(env: &Envelope) -> Head {
        Head {
            event_id: env.id.to_hex(),
            node: env.node.to_string(),
            observed_at_us: env.observed_at.0,
            observed_at: secs(env.observed_at.0),
        }
    }
}

/// Microseconds to a `DateTime` (seconds, clamped to its range).
pub(crate) fn secs(us: i64) -> u32 {
    us.div_euclid(1_000_000).clamp(0, i64::from(u32::MAX)) as u32
}

/// Declares a row struct with the four envelope columns first.
macro_rules! event_row {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, PartialOrd, clickhouse::Row, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            /// Event id, hex.
            pub event_id: String,
            /// Node name.
            pub node: String,
            /// Observation time, µs since the epoch.
            pub observed_at_us: i64,
            /// Observation time, seconds (`DateTime`).
            pub observed_at: u32,
            $($(#[$fm])* pub $field: $ty,)*
        }
    };
}
pub(crate) use event_row;

/// Rows of one table with, for each, the batch position of the envelope it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRows<T> {
    /// The rows.
    pub rows: Vec<T>,
    /// `source[i]` is the batch index of the envelope `rows[i]` came from.
    pub source: Vec<usize>,
}

impl<T> Default for TableRows<T> {
    fn default() -> Self {
        TableRows {
            rows: Vec::new(),
            source: Vec::new(),
        }
    }
}

impl<T: PartialOrd> TableRows<T> {
    fn push(&mut self, index: usize, row: T) {
        self.rows.push(row);
        self.source.push(index);
    }

    fn normalize(&mut self) {
        self.source.clear();
        self.rows
            .sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    }
}

/// The outcome of one table's insert.
enum TableFailure {
    Transient(String),
    Poison(Vec<usize>, String),
    Fatal(String),
}

macro_rules! tables {
    ($($field:ident : $row:ty => $table:literal),+ $(,)?) => {
        /// Rows for every table, built from a batch of envelopes.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Rows {
            $(
                #[doc = concat!("Rows of `", $table, "`.")]
                pub $field: TableRows<$row>,
            )+
        }

        impl Rows {
            /// Every table the writer fills.
            pub const TABLES: &'static [&'static str] = &[$($table),+];

            /// Number of rows over all tables.
            pub fn len(&self) -> usize {
                0 $(+ self.$field.rows.len())+
            }

            /// True when there is no row at all.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Row counts per table (tables without rows included).
            pub fn counts(&self) -> Vec<(&'static str, usize)> {
                vec![$(($table, self.$field.rows.len())),+]
            }

            /// Drops the batch positions and sorts every table's rows, so two `Rows` with
            /// the same content compare equal whatever the order they were read in.
            pub fn normalized(mut self) -> Rows {
                $(self.$field.normalize();)+
                self
            }

            fn inserts<'a>(
                &'a self,
                client: &'a Client,
                metrics: &'a Metrics,
            ) -> Vec<BoxFuture<'a, Result<(), TableFailure>>> {
                let mut out = Vec::new();
                $(
                    if !self.$field.rows.is_empty() {
                        out.push(insert_table(client, metrics, $table, &self.$field).boxed());
                    }
                )+
                out
            }

            /// Reads every table back with `FINAL` (verification: tests, benchmarks,
            /// operators comparing a rebuild).
            pub async fn select_all(client: &Client) -> Result<Rows, clickhouse::error::Error> {
                let mut rows = Rows::default();
                $(
                    rows.$field.rows = select_table::<$row>(client, $table).await?;
                )+
                Ok(rows)
            }
        }
    };
}

tables! {
    node_status: node::NodeStatusRow => "node_status",
    block_seen: logged::BlockSeenRow => "block_seen",
    block_connected: block::BlockConnectedRow => "block_connected",
    block_disconnected: block::BlockDisconnectedRow => "block_disconnected",
    reorg: block::ReorgRow => "reorg",
    chain_tips: block::ChainTipsRow => "chain_tips",
    block_timing: logged::BlockTimingRow => "block_timing",
    invalid_block: logged::InvalidBlockRow => "invalid_block",
    block_download_timeout: logged::BlockDownloadTimeoutRow => "block_download_timeout",
    tx_seen: tx::TxSeenRow => "tx_seen",
    tx_removed: tx::TxRemovedRow => "tx_removed",
    tx_rejected: logged::TxRejectedRow => "tx_rejected",
    tx_replaced: logged::TxReplacedRow => "tx_replaced",
    mempool_snapshot: mempool::MempoolSnapshotRow => "mempool_snapshot",
    template_snapshot: mempool::TemplateSnapshotRow => "template_snapshot",
    peer_snapshot: node::PeerSnapshotRow => "peer_snapshot",
    utxo_stats: block::UtxoStatsRow => "utxo_stats",
    warning: logged::WarningRow => "warning",
    logs: logs::LogRow => "logs",
    alerts: alert::AlertRow => "alerts",
    gap: node::GapRow => "gap",
}

impl Rows {
    /// Maps a batch: envelope `i` gives rows whose source is `i`.
    pub fn from_batch(batch: &[Envelope]) -> Rows {
        let mut rows = Rows::default();
        for (i, env) in batch.iter().enumerate() {
            rows.push(i, env);
        }
        rows
    }

    /// Adds the rows of one envelope.
    pub fn push(&mut self, i: usize, env: &Envelope) {
        let h = Head::of(env);
        match &env.event {
            Event::NodeStatus(p) => self.node_status.push(i, node::NodeStatusRow::new(&h, p)),
            Event::BlockSeen(p) => self.block_seen.push(i, logged::BlockSeenRow::new(&h, p)),
            Event::BlockConnected(p) => self
                .block_connected
                .push(i, block::BlockConnectedRow::new(&h, p)),
            Event::BlockDisconnected(p) => self
                .block_disconnected
                .push(i, block::BlockDisconnectedRow::new(&h, p)),
            Event::Reorg(p) => self.reorg.push(i, block::ReorgRow::new(&h, p)),
            Event::ChainTips(p) => self.chain_tips.push(i, block::ChainTipsRow::new(&h, p)),
            Event::BlockTiming(p) => self
                .block_timing
                .push(i, logged::BlockTimingRow::new(&h, p)),
            Event::InvalidBlock(p) => self
                .invalid_block
                .push(i, logged::InvalidBlockRow::new(&h, p)),
            Event::BlockDownloadTimeout(p) => self
                .block_download_timeout
                .push(i, logged::BlockDownloadTimeoutRow::new(&h, p)),
            Event::TxSeen(p) => self.tx_seen.push(i, tx::TxSeenRow::new(&h, p)),
            Event::TxRemoved(p) => self.tx_removed.push(i, tx::TxRemovedRow::new(&h, p)),
            Event::TxRejected(p) => self.tx_rejected.push(i, logged::TxRejectedRow::new(&h, p)),
            Event::TxReplaced(p) => self.tx_replaced.push(i, logged::TxReplacedRow::new(&h, p)),
            Event::MempoolSnapshot(p) => self
                .mempool_snapshot
                .push(i, mempool::MempoolSnapshotRow::new(&h, p)),
            Event::TemplateSnapshot(p) => self
                .template_snapshot
                .push(i, mempool::TemplateSnapshotRow::new(&h, p)),
            Event::PeerSnapshot(p) => self
                .peer_snapshot
                .push(i, node::PeerSnapshotRow::new(&h, p)),
            Event::UtxoStats(p) => self.utxo_stats.push(i, block::UtxoStatsRow::new(&h, p)),
            Event::Warning(p) => self.warning.push(i, logged::WarningRow::new(&h, p)),
            Event::LogBatch(p) => {
                for line in &p.lines {
                    self.logs.push(i, logs::LogRow::new(&h, p, line));
                }
            }
            Event::Alert(p) => self.alerts.push(i, alert::AlertRow::new(&h, p)),
            Event::Gap(p) => self.gap.push(i, node::GapRow::new(&h, p)),
        }
    }

    /// Inserts every table's rows (tables concurrently) and sorts the failures.
    pub async fn insert(&self, client: &Client, metrics: &Metrics) -> Result<(), HandleError> {
        let outcomes = join_all(self.inserts(client, metrics)).await;
        let mut transient = None;
        let mut poison: Vec<usize> = Vec::new();
        let mut poison_reason = String::new();
        for outcome in outcomes {
            match outcome {
                Ok(()) => {}
                Err(TableFailure::Fatal(reason)) => return Err(HandleError::Fatal { reason }),
                Err(TableFailure::Transient(reason)) => transient = Some(reason),
                Err(TableFailure::Poison(indices, reason)) => {
                    poison.extend(indices);
                    poison_reason = reason;
                }
            }
        }
        if let Some(reason) = transient {
            return Err(HandleError::Transient { reason });
        }
        if !poison.is_empty() {
            poison.sort_unstable();
            poison.dedup();
            return Err(HandleError::Poison {
                indices: poison,
                reason: poison_reason,
            });
        }
        Ok(())
    }
}

/// How a ClickHouse failure is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Retry later.
    Transient,
    /// The data is refused; retrying cannot help.
    Poison,
    /// The schema or credentials are wrong; stop.
    Fatal,
}

impl FailureClass {
    fn as_str(self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::Poison => "poison",
            FailureClass::Fatal => "fatal",
        }
    }
}

/// The ClickHouse exception code in an error text (`Code: 60, e.displayText() = ...` on old
/// servers, `Code: 60. DB::Exception: ...` on current ones).
pub fn exception_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + 6..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Sorts a ClickHouse client error into transient, poison or fatal.
pub fn classify(e: &clickhouse::error::Error) -> FailureClass {
    use clickhouse::error::Error as E;
    match e {
        E::BadResponse(text) => match exception_code(text) {
            // The data itself is refused: parse and conversion failures, values out of range.
            Some(6 | 26 | 27 | 32 | 33 | 38 | 41 | 53 | 69 | 70 | 72 | 117 | 131) => {
                FailureClass::Poison
            }
            // The table, column, database or user does not exist or may not write.
            Some(16 | 47 | 60 | 81 | 164 | 192 | 193 | 194 | 195 | 497 | 516) => {
                FailureClass::Fatal
            }
            _ => FailureClass::Transient,
        },
        // The row could not be serialized on our side: only that row's content can cause it.
        E::Custom(_) | E::SequenceMustHaveLength | E::InvalidUtf8Encoding(_) => {
            FailureClass::Poison
        }
        E::InvalidParams(_) | E::Unsupported(_) => FailureClass::Fatal,
        _ => FailureClass::Transient,
    }
}

async fn insert_rows<T>(client: &Client, table: &str, rows: &[T]) -> clickhouse::error::Result<()>
where
    T: RowOwned + RowWrite,
{
    let mut insert = client.insert::<T>(table).await?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await
}

async fn insert_table<T>(
    client: &Client,
    metrics: &Metrics,
    table: &'static str,
    rows: &TableRows<T>,
) -> Result<(), TableFailure>
where
    T: RowOwned + RowWrite + Send + Sync,
{
    let started = Instant::now();
    let err = match insert_rows(client, table, &rows.rows).await {
        Ok(()) => {
            metrics.inserted(
                table,
                rows.rows.len() as u64,
                started.elapsed().as_secs_f64(),
            );
            return Ok(());
        }
        Err(e) => e,
    };
    let class = classify(&err);
    metrics.insert_failed(table, class.as_str());
    match class {
        FailureClass::Transient => {
            return Err(TableFailure::Transient(format!(
                "insert into {table}: {err}"
            )))
        }
        FailureClass::Fatal => {
            return Err(TableFailure::Fatal(format!(
                "insert into {table}: {err} (does the table match this build? run `bmon setup`)"
            )))
        }
        FailureClass::Poison => {}
    }
    // Find the refused envelopes: insert each envelope's rows on their own.
    let mut groups: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
    for (i, &src) in rows.source.iter().enumerate() {
        match groups.last_mut() {
            Some((s, range)) if *s == src => range.end = i + 1,
            _ => groups.push((src, i..i + 1)),
        }
    }
    let mut refused = Vec::new();
    let mut last_reason = err.to_string();
    for (src, range) in &groups {
        let part = &rows.rows[range.clone()];
        let started = Instant::now();
        match insert_rows(client, table, part).await {
            Ok(()) => metrics.inserted(table, part.len() as u64, started.elapsed().as_secs_f64()),
            Err(e) => match classify(&e) {
                FailureClass::Poison => {
                    metrics.insert_failed(table, "poison");
                    last_reason = format!("insert into {table}: {e}");
                    refused.push(*src);
                }
                FailureClass::Transient => {
                    return Err(TableFailure::Transient(format!("insert into {table}: {e}")))
                }
                FailureClass::Fatal => {
                    return Err(TableFailure::Fatal(format!("insert into {table}: {e}")))
                }
            },
        }
    }
    if refused.len() == groups.len() && groups.len() > 1 {
        return Err(TableFailure::Fatal(format!(
            "every row of {table} was refused ({last_reason}); the table does not match this build: run `bmon setup`"
        )));
    }
    Err(TableFailure::Poison(refused, last_reason))
}

async fn select_table<T>(client: &Client, table: &str) -> clickhouse::error::Result<Vec<T>>
where
    T: RowOwned + RowRead,
{
    client
        .query(&format!("SELECT ?fields FROM {table} FINAL"))
        .fetch_all::<T>()
        .await
}

/// The `ch-writer` handler.
pub struct ChWriter {
    client: Client,
    metrics: Arc<Metrics>,
}

impl ChWriter {
    /// A writer inserting through `client` (which carries the database).
    pub fn new(client: Client, metrics: Arc<Metrics>) -> ChWriter {
        ChWriter { client, metrics }
    }
}

impl Handler for ChWriter {
    async fn handle(&mut self, batch: &[Envelope]) -> Result<(), HandleError> {
        let rows = Rows::from_batch(batch);
        rows.insert(&self.client, &self.metrics).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_table_the_writer_fills() {
        for kind in Kind::ALL {
            assert!(
                Rows::TABLES.contains(&table_for(*kind)),
                "no writer table for {kind}"
            );
        }
        assert_eq!(Rows::TABLES.len(), Kind::ALL.len());
    }

    #[test]
    fn exception_codes_are_read_from_old_and_new_servers() {
        assert_eq!(
            exception_code("Code: 60, e.displayText() = DB::Exception: Table x doesn't exist"),
            Some(60)
        );
        assert_eq!(
            exception_code("Code: 27. DB::Exception: Cannot parse"),
            Some(27)
        );
        assert_eq!(exception_code("connection reset"), None);
    }

    #[test]
    fn failures_are_sorted_into_classes() {
        use clickhouse::error::Error as E;
        let bad = |t: &str| E::BadResponse(t.to_string());
        assert_eq!(
            classify(&bad("Code: 60, e.displayText() = DB::Exception: no table")),
            FailureClass::Fatal
        );
        assert_eq!(
            classify(&bad("Code: 27. DB::Exception: Cannot parse input")),
            FailureClass::Poison
        );
        assert_eq!(
            classify(&bad("Code: 252. Too many parts")),
            FailureClass::Transient
        );
        assert_eq!(classify(&E::TimedOut), FailureClass::Transient);
    }

    #[test]
    fn datetime_seconds_are_clamped_to_the_type() {
        assert_eq!(secs(1_500_000_999_999), 1_500_000);
        assert_eq!(secs(-5), 0);
        assert_eq!(secs(i64::MAX), u32::MAX);
    }
}
