//! The publisher: takes envelopes from the agent's bounded channel and publishes them to
//! JetStream, or to the disk spool when NATS is unreachable.
//!
//! - Each envelope goes to [`schema::Envelope::subject`] with all four
//!   [`schema::Envelope::headers`]; `Nats-Msg-Id` makes re-sends harmless.
//! - Throughput: a batch of up to [`MAX_BATCH`] envelopes is sent without waiting, then all
//!   PubAck futures are awaited together.
//! - When NATS is down, or a PubAck fails or times out, the events go to the [`Spool`]. While
//!   the spool holds anything, new events are appended behind it so order is kept; when NATS is
//!   back the spool is re-published oldest first. Events dropped because the spool was full are
//!   reported by one `gap` event once the spool has drained.
//! - Its channel carries [`Item`]s: events, and [`Item::Commit`] tokens. A commit token is
//!   answered only once every event sent before it is acknowledged by JetStream or written to
//!   the spool (or counted as dropped for the `gap` event), so a source can save its read
//!   position only when what it read is durable (the debug.log source does).
//! - The publisher ends when every sender of its channel is gone, after publishing (or
//!   spooling) what it holds; it tries to empty the spool for two more seconds.
//! - Order: after any failure, and after spooling because NATS was unreachable, the spool is
//!   re-published one event at a time until one is acknowledged, then in batches again. A drain
//!   round consumes the spool only up to its earliest unacknowledged event (failures are
//!   ordered by batch position, whether the send or the PubAck failed). Only a batch that straddles the moment NATS goes away
//!   can be stored partly out of order (its later events acknowledged, earlier ones spooled);
//!   consumers order by `observed_at` where it matters.
//!
//! The stream itself (`BMON_EVENTS`) is created by `bmon setup`, never here.

use std::time::Duration;

use async_nats::jetstream;
use futures::future::join_all;
use schema::event::Gap;
use schema::{Envelope, NodeId};
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::spool::Spool;

/// Most envelopes in flight at once (sent before their PubAcks are awaited).
pub const MAX_BATCH: usize = 256;

/// Connects to NATS without waiting for the server: the client keeps retrying in the
/// background (moving between the servers of a cluster), and the publisher spools meanwhile.
/// Replies (PubAcks) come to the node's own inbox, the only one its user may read.
pub async fn connect(
    nats: &crate::config::NatsConfig,
    node: &NodeId,
) -> Result<async_nats::Client, crate::Error> {
    let c = process::nats::Connect {
        urls: nats.url.clone(),
        name: format!("bmon-agent-{node}"),
        credentials_file: nats.credentials_file.clone(),
        nkey_seed_file: nats.nkey_seed_file.clone(),
        tls: nats.tls.clone(),
        inbox_user: node.as_str().to_string(),
        keep_trying: true,
        ..process::nats::Connect::default()
    };
    process::nats::connect(&c)
        .await
        .map_err(|e| crate::Error::NatsConnect {
            url: nats.url.clone(),
            reason: e.to_string(),
        })
}

/// What the publisher's channel carries.
// Nearly every item is an event: boxing it to shrink the rare commit token is not worth an
// allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Item {
    /// An event to publish.
    Event(Envelope),
    /// Answered once every event sent before it is acknowledged or spooled (never earlier).
    /// A sender that sees its receiver fail knows the publisher is gone.
    Commit(oneshot::Sender<()>),
}

impl From<Envelope> for Item {
    fn from(env: Envelope) -> Self {
        Item::Event(env)
    }
}

/// Publishes envelopes, spooling what NATS does not acknowledge.
pub struct Publisher {
    client: async_nats::Client,
    js: jetstream::Context,
    spool: Spool,
    metrics: Metrics,
    node: NodeId,
    clock: Clock,
    retry: Duration,
    /// Whether the last publish round was fully acknowledged. After a failure the spool is
    /// re-published one event at a time until one is acknowledged (a restarted server answers
    /// "no responders" until its streams are loaded; pipelining then would store later events
    /// before earlier ones).
    healthy: bool,
    exit_grace: Duration,
}

impl Publisher {
    /// A publisher over `client`, spooling into `spool`.
    pub fn new(client: async_nats::Client, spool: Spool, metrics: Metrics, node: NodeId) -> Self {
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(5));
        let p = Publisher {
            client,
            js,
            spool,
            metrics,
            node,
            clock: Clock::wall(),
            retry: Duration::from_millis(500),
            healthy: true,
            exit_grace: Duration::from_secs(2),
        };
        p.report_spool();
        p
    }

    /// Sets the clock the `gap` event is stamped with (the agent's [`Clock`]; default: the
    /// wall clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets how often a non-empty spool is retried while no new events arrive.
    pub fn with_retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn report_spool(&self) {
        self.metrics
            .spool_size(self.spool.bytes(), self.spool.events());
    }

    /// Runs until every sender of `rx` is dropped, then publishes or spools what is left.
    /// Returns the number of events still in the spool. [`Item::Commit`] tokens are answered
    /// after the batch holding every event before them is acknowledged or spooled.
    pub async fn run<T: Into<Item>>(mut self, mut rx: mpsc::Receiver<T>) -> u64 {
        loop {
            if !self.spool.is_empty() || self.spool.drops().count > 0 {
                self.drain_spool().await;
            }
            let first = if self.spool.is_empty() && self.spool.drops().count == 0 {
                rx.recv().await
            } else {
                tokio::select! {
                    m = rx.recv() => m,
                    _ = tokio::time::sleep(self.retry) => continue,
                }
            };
            let Some(first) = first else { break };
            let mut batch = Vec::new();
            let mut commits = Vec::new();
            let mut next = Some(first.into());
            while let Some(item) = next.take() {
                match item {
                    Item::Event(env) => batch.push(env),
                    Item::Commit(done) => commits.push(done),
                }
                if batch.len() < MAX_BATCH {
                    next = rx.try_recv().ok().map(Into::into);
                }
            }
            if !batch.is_empty() {
                self.publish_or_spool(batch).await;
            }
            // Every event before these tokens is now acknowledged or spooled.
            for done in commits {
                // A sender that stopped waiting needs no answer.
                let _ = done.send(());
            }
        }
        // Shutting down: try to empty the spool for a short while (NATS may be reconnecting).
        let deadline = tokio::time::Instant::now() + self.exit_grace;
        loop {
            self.drain_spool().await;
            if self.spool.is_empty() || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Bounded: a client that never reached the server would wait for it forever.
        match tokio::time::timeout(self.exit_grace, self.client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "NATS flush at shutdown failed"),
            Err(_) => tracing::debug!("NATS flush at shutdown timed out"),
        }
        self.spool.events()
    }

    async fn publish_or_spool(&mut self, batch: Vec<Envelope>) {
        if !self.spool.is_empty() || !self.connected() {
            // The spool now holds events: the first drain after the outage goes one event at a
            // time (see `healthy`).
            self.healthy = false;
            self.spool_all(&batch);
            return;
        }
        let failed = self.publish_batch(batch).await;
        self.healthy = failed.is_empty();
        if !failed.is_empty() {
            let failed: Vec<Envelope> = failed.into_iter().map(|(_, env)| env).collect();
            self.spool_all(&failed);
        }
    }

    /// Publishes a batch; returns the envelopes that were not acknowledged with their
    /// positions in `batch`, in batch order (whether they failed to send or got no PubAck).
    async fn publish_batch(&self, batch: Vec<Envelope>) -> Vec<(usize, Envelope)> {
        let mut failed = Vec::new();
        let mut pending = Vec::with_capacity(batch.len());
        for (i, env) in batch.into_iter().enumerate() {
            // Once the client has noticed the server is gone, stop sending: what it buffers now
            // would be replayed on reconnect ahead of what the spool holds.
            if !self.connected() {
                failed.push((i, env));
                continue;
            }
            match self.send(&env).await {
                Ok(ack) => pending.push((i, env, ack)),
                Err(reason) => {
                    self.metrics.publish_error();
                    tracing::warn!(event_id = %env.id, kind = %env.kind(), %reason, "publish failed; spooling");
                    failed.push((i, env));
                }
            }
        }
        let results = join_all(
            pending
                .into_iter()
                .map(|(i, env, ack)| async move { (i, env, ack.await) }),
        )
        .await;
        for (i, env, res) in results {
            match res {
                Ok(_) => self.metrics.published(env.kind()),
                Err(e) => {
                    self.metrics.publish_error();
                    tracing::warn!(event_id = %env.id, kind = %env.kind(), error = %e, "no PubAck; spooling");
                    failed.push((i, env));
                }
            }
        }
        in_batch_order(failed)
    }

    async fn send(&self, env: &Envelope) -> Result<jetstream::context::PublishAckFuture, String> {
        let (subject, headers, payload) = process::nats::message(env).map_err(|e| e.to_string())?;
        self.js
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| e.to_string())
    }

    fn spool_all(&mut self, envs: &[Envelope]) {
        let mut written = 0;
        let mut dropped = 0;
        for env in envs {
            let bytes = match env.encode() {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(event_id = %env.id, error = %e, "cannot encode event; dropped");
                    continue;
                }
            };
            match self.spool.append(&bytes, env.observed_at) {
                Ok(true) => written += 1,
                Ok(false) => dropped += 1,
                Err(e) => {
                    // The spool cut the torn record and counted the drop for the `gap` event.
                    dropped += 1;
                    self.metrics.spool_error();
                    tracing::error!(event_id = %env.id, error = %e, "cannot write the spool; event dropped");
                }
            }
        }
        self.metrics.spooled(written);
        if dropped > 0 {
            self.metrics.spool_dropped(dropped);
            tracing::warn!(dropped, "spool full or unwritable; events dropped");
        }
        self.report_spool();
    }

    /// Re-publishes the spool oldest first while NATS acknowledges; then the `gap` event for
    /// any drops.
    async fn drain_spool(&mut self) {
        while !self.spool.is_empty() && self.connected() {
            let size = if self.healthy { MAX_BATCH } else { 1 };
            let records = match self.spool.peek(size) {
                Ok(r) => r,
                Err(e) => {
                    self.metrics.spool_error();
                    tracing::error!(error = %e, "cannot read the spool");
                    return;
                }
            };
            let n = records.len();
            let mut envs = Vec::with_capacity(n);
            let mut positions = Vec::with_capacity(n);
            for (i, r) in records.iter().enumerate() {
                match Envelope::decode(r) {
                    Ok(env) => {
                        envs.push(env);
                        positions.push(i);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "undecodable spool record; skipped");
                    }
                }
            }
            let failed = self.publish_batch(envs).await;
            // Consume the prefix up to the earliest failure; the rest is retried later
            // (re-publishing an acknowledged one is de-duplicated by its id).
            let failed_at: Vec<usize> = failed.iter().map(|(i, _)| *i).collect();
            let first_failed = acknowledged_prefix(&positions, &failed_at, n);
            if let Err(e) = self.spool.consume(first_failed) {
                self.metrics.spool_error();
                tracing::error!(error = %e, "cannot advance the spool cursor");
                return;
            }
            self.report_spool();
            self.healthy = first_failed == n;
            if first_failed < n {
                return;
            }
        }
        if self.spool.is_empty() && self.spool.drops().count > 0 && self.connected() {
            let d = self.spool.drops();
            let gap = Envelope::new(
                self.node.clone(),
                self.clock.now(),
                Gap {
                    lost_events: d.count,
                    from: d.from,
                    to: d.to,
                    reason: "spool full or unwritable".into(),
                },
            );
            if self.publish_batch(vec![gap]).await.is_empty() {
                if let Err(e) = self.spool.take_drops() {
                    tracing::error!(error = %e, "cannot clear the spool's drop count");
                }
                tracing::warn!(
                    lost_events = d.count,
                    "published gap event for dropped events"
                );
            }
        }
    }
}

/// Sorts failures by their position in the batch (sends fail before PubAcks are awaited, so
/// they are collected out of order).
fn in_batch_order(mut failed: Vec<(usize, Envelope)>) -> Vec<(usize, Envelope)> {
    failed.sort_by_key(|(i, _)| *i);
    failed
}

/// How many spool records can be consumed after a drain round: every record before the
/// earliest failed envelope. `positions[i]` is the spool record of the `i`-th published
/// envelope (undecodable records have none), `failed` the batch positions that were not
/// acknowledged in any order, `n` the number of records read.
fn acknowledged_prefix(positions: &[usize], failed: &[usize], n: usize) -> usize {
    failed
        .iter()
        .filter_map(|&i| positions.get(i).copied())
        .min()
        .unwrap_or(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_consumes_only_up_to_the_earliest_failure_whatever_the_failure_order() {
        // Records 0..6, all decodable. Record 5 failed to send (collected first), record 2 got
        // no PubAck (collected last): only records 0 and 1 are acknowledged.
        let positions = [0, 1, 2, 3, 4, 5];
        assert_eq!(acknowledged_prefix(&positions, &[5, 2], 6), 2);
        assert_eq!(acknowledged_prefix(&positions, &[2, 5], 6), 2);
        assert_eq!(acknowledged_prefix(&positions, &[], 6), 6);
    }

    #[test]
    fn a_drain_maps_batch_positions_past_undecodable_records() {
        // Record 1 was undecodable (skipped): envelope 1 is record 2, envelope 3 is record 4.
        let positions = [0, 2, 3, 4];
        assert_eq!(acknowledged_prefix(&positions, &[3, 1], 5), 2);
    }

    #[test]
    fn failures_are_returned_in_batch_order() {
        let node = NodeId::new("n1").unwrap();
        let env = |i: i64| {
            Envelope::new(
                node.clone(),
                schema::UnixMicros(i),
                Gap {
                    lost_events: 1,
                    from: schema::UnixMicros(i),
                    to: schema::UnixMicros(i),
                    reason: "test".into(),
                },
            )
        };
        // A send failure at 5 is collected before a PubAck failure at 2.
        let sorted = in_batch_order(vec![(5, env(5)), (2, env(2))]);
        let order: Vec<usize> = sorted.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, vec![2, 5]);
        assert_eq!(sorted[0].1.observed_at, schema::UnixMicros(2));
    }
}
