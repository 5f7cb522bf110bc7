//! Shared helpers of the consumers' integration tests: real NATS and ClickHouse (through
//! test-support), `bmon setup` in-process, publishing envelopes, reading tables back.

#![allow(dead_code)]

pub mod samples;

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use consumers::config::Config;
use consumers::definitions::Definitions;
use consumers::writer::Rows;
use schema::Envelope;
use test_support::{ClickHouse, NatsServer};

/// A NATS server, a ClickHouse database and bmon set up in both.
pub struct Services {
    pub nats: NatsServer,
    pub ch: ClickHouse,
    pub db: String,
    pub js: jetstream::Context,
    pub defs: Definitions,
    /// The definitions as a file, for consumers (in-process or the binary) to use.
    pub defs_file: tempfile::NamedTempFile,
}

impl Services {
    /// Starts NATS, takes a fresh database, runs `bmon setup` with [`test_definitions`] and
    /// the given ack wait (30 s when None).
    pub async fn start(ack_wait_secs: Option<u64>) -> Services {
        let (defs, text) = test_definitions(ack_wait_secs.unwrap_or(30));
        let defs_file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(defs_file.path(), text).expect("write definitions");
        let nats = NatsServer::start();
        let ch = ClickHouse::shared();
        let db = ch.fresh_database();
        let client = async_nats::connect(nats.url())
            .await
            .expect("connect to NATS");
        let js = jetstream::new(client);
        let config = config(&nats.url(), &ch.url(), &db);
        consumers::setup::setup(
            &js,
            &defs,
            &consumers::clickhouse_server_client(&config.clickhouse),
            &db,
        )
        .await
        .expect("bmon setup");
        Services {
            nats,
            ch,
            db,
            js,
            defs,
            defs_file,
        }
    }

    /// A consumer config pointing at these services.
    pub fn config(&self) -> Config {
        let mut c = config(&self.nats.url(), &self.ch.url(), &self.db);
        c.nats.definitions = Some(self.defs_file.path().to_path_buf());
        c
    }

    /// A client on the test database.
    pub fn clickhouse(&self) -> clickhouse::Client {
        consumers::clickhouse_client(&self.config().clickhouse)
    }

    /// Every table read back with FINAL.
    pub async fn rows(&self) -> Rows {
        Rows::select_all(&self.clickhouse())
            .await
            .expect("read tables back")
    }

    /// Rows over all tables, FINAL.
    pub async fn row_count(&self) -> usize {
        match Rows::select_all(&self.clickhouse()).await {
            Ok(r) => r.len(),
            Err(_) => 0,
        }
    }

    /// One SQL statement against the test database (TabSeparated text).
    pub fn sql(&self, sql: &str) -> String {
        let sql = sql.replace("{db}", &self.db);
        self.ch.query(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Total of undelivered and unacknowledged messages of `consumer` over its streams.
    ///
    /// The server counts a stored message as pending for a durable a moment after it
    /// acknowledged the publish: right after a publish, on a loaded machine, `num_pending` can
    /// still read 0 while the consumer has not even seen the message. So a message matching
    /// the consumer's filters stored after the last one delivered always counts as at least
    /// one, and `backlog() == 0` means that everything stored so far was handled.
    pub async fn backlog(&self, consumer: &str) -> u64 {
        let def = self.defs.consumer(consumer).expect("defined consumer");
        let mut total = 0;
        for stream in &def.streams {
            let Some(last) = self.last_matching(stream, &def.filter_subjects).await else {
                return u64::MAX;
            };
            match consumers::definitions::consumer_backlog(&self.js, stream, consumer).await {
                Ok(b) => {
                    let undelivered = if last > b.delivered_stream_seq {
                        b.pending.max(1)
                    } else {
                        b.pending
                    };
                    total += undelivered + b.ack_pending;
                }
                Err(_) => return u64::MAX,
            }
        }
        total
    }

    /// Stream sequence of the last message in `stream` matching any of `filters` (every
    /// message when there are none); 0 when there is none.
    async fn last_matching(&self, stream: &str, filters: &[String]) -> Option<u64> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let mut st = self.js.get_stream(stream).await.ok()?;
        if filters.is_empty() {
            return Some(st.info().await.ok()?.state.last_sequence);
        }
        let mut last = 0;
        for filter in filters {
            match st.get_last_raw_message_by_subject(filter).await {
                Ok(m) => last = last.max(m.sequence),
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {}
                Err(_) => return None,
            }
        }
        Some(last)
    }
}

/// A consumer config for the given services: metrics on a free port, small linger.
pub fn config(nats_url: &str, ch_url: &str, db: &str) -> Config {
    let mut c = Config::default();
    c.nats.url = nats_url.to_string();
    c.clickhouse.url = ch_url.to_string();
    c.clickhouse.database = db.to_string();
    c.metrics.listen = "127.0.0.1:0".parse().expect("address");
    c.consumer.linger_ms = 20;
    c.consumer.nak_delay_ms = 200;
    c
}

/// The config as a TOML file for the binary.
pub fn write_config(config: &Config, path: &Path) {
    let text = format!(
        "[nats]\nurl = {:?}\n{}\n[clickhouse]\nurl = {:?}\ndatabase = {:?}\n\n[metrics]\nlisten = {:?}\n\n[consumer]\nbatch_size = {}\nlinger_ms = {}\nnak_delay_ms = {}\n",
        config.nats.url,
        config
            .nats
            .definitions
            .as_ref()
            .map(|p| format!("definitions = {:?}", p.display().to_string()))
            .unwrap_or_default(),
        config.clickhouse.url,
        config.clickhouse.database,
        config.metrics.listen.to_string(),
        config.consumer.batch_size,
        config.consumer.linger_ms,
        config.consumer.nak_delay_ms,
    );
    std::fs::write(path, text).expect("write config");
}

/// Publishes every envelope as an agent does (headers, `Nats-Msg-Id`) and waits for all
/// PubAcks. With `with_msg_id == false` the id header is left out, so JetStream stores a
/// repeat as a new message (what an agent restart after the duplicate window looks like).
pub async fn publish(js: &jetstream::Context, envelopes: &[Envelope], with_msg_id: bool) {
    for chunk in envelopes.chunks(2000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for env in chunk {
            let mut headers = HeaderMap::new();
            for (name, value) in env.headers() {
                if with_msg_id || name != schema::subject::HEADER_MSG_ID {
                    headers.insert(name, value.as_str());
                }
            }
            let payload = env.encode().expect("encode");
            acks.push(
                js.publish_with_headers(env.subject(), headers, payload.into())
                    .await
                    .expect("publish"),
            );
        }
        for ack in acks {
            ack.await.expect("PubAck");
        }
    }
}

/// Publishes raw bytes on a subject and waits for the PubAck.
pub async fn publish_raw(js: &jetstream::Context, subject: &str, payload: Vec<u8>) {
    js.publish(subject.to_string(), payload.into())
        .await
        .expect("publish")
        .await
        .expect("PubAck");
}

/// The repository's definitions with limits a test machine can hold (every stream capped at
/// 1 GiB) and the given ack wait, as TOML text and parsed.
pub fn test_definitions(ack_wait_secs: u64) -> (Definitions, String) {
    let text: String = consumers::definitions::BUILTIN
        .lines()
        .map(|line| {
            if line.starts_with("max_bytes = ") {
                "max_bytes = 1073741824".to_string()
            } else if line.starts_with("ack_wait_secs = ") {
                format!("ack_wait_secs = {ack_wait_secs}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    (
        Definitions::from_toml(&text, "test").expect("definitions"),
        text,
    )
}

/// The rows `envelopes` must give (duplicates by id removed), normalized.
pub fn expected_rows(envelopes: &[Envelope]) -> Rows {
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<Envelope> = envelopes
        .iter()
        .filter(|e| seen.insert(e.id))
        .cloned()
        .collect();
    Rows::from_batch(&unique).normalized()
}

/// Standard wait for pipelines in tests.
pub const PIPELINE_TIMEOUT: Duration = Duration::from_secs(60);

/// Every message stored in `stream` now, in order (read through an ordered consumer).
pub async fn stream_messages(js: &jetstream::Context, stream: &str) -> Vec<jetstream::Message> {
    use futures::StreamExt;
    let st = js.get_stream(stream).await.expect("stream");
    let n = st.cached_info().state.messages as usize;
    if n == 0 {
        return Vec::new();
    }
    let ordered = st
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("ordered consumer");
    let mut messages = ordered.messages().await.expect("ordered pull");
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), messages.next()).await {
            Ok(Some(Ok(m))) => out.push(m),
            other => panic!("reading {stream}: {other:?}"),
        }
    }
    out
}

/// The `Nats-Msg-Id` of a message.
pub fn msg_id(m: &jetstream::Message) -> String {
    m.headers
        .as_ref()
        .and_then(|h| h.get(schema::subject::HEADER_MSG_ID))
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// Runs consumer `name` in-process until the returned token is cancelled.
pub fn spawn_consumer(
    name: &str,
    config: Config,
    metrics: std::sync::Arc<consumers::metrics::Metrics>,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<Result<(), consumers::Error>>,
) {
    let token = tokio_util::sync::CancellationToken::new();
    let t = token.clone();
    let name = name.to_string();
    let task =
        tokio::spawn(async move { consumers::run_with_metrics(&name, config, metrics, t).await });
    (token, task)
}

/// Stops a consumer started with [`spawn_consumer`] and checks it ended cleanly.
pub async fn stop_consumer(
    (token, task): (
        tokio_util::sync::CancellationToken,
        tokio::task::JoinHandle<Result<(), consumers::Error>>,
    ),
) {
    token.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("consumer stops within 30 s")
        .expect("consumer task")
        .expect("consumer ends without error");
}
