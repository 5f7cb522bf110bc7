//! The JetStream shell every bmon consumer runs in.
//!
//! For each stream a consumer reads, one task owns a durable pull consumer (created or updated
//! from its [`ConsumerDef`]) and loops: fetch a batch (up to `batch_size` messages, waiting at
//! most `linger` for it to fill once the first message is there), decode each message with
//! [`Envelope::decode`], hand the decoded envelopes to a [`Handler`], and settle every message:
//!
//! - handler `Ok`: ack every message (its effect is durable);
//! - [`HandleError::Transient`]: nak every message with a delay, pause, go on;
//! - [`HandleError::Poison`]: dead-letter and term the named envelopes, ack the rest;
//! - [`HandleError::Fatal`]: nak everything and stop the consumer with an error.
//!
//! A message that does not decode (malformed, unknown kind, newer schema), or whose envelope
//! does not belong on the subject it came on (`subject_mismatch`: another node's name, or an
//! alert outside `bmon.alert.*`), is copied to
//! `bmon.dead.<consumer>` with headers saying why, then terminated and counted: it never
//! blocks the stream and never stops the process.
//!
//! Acks are plain publishes on the client's connection (no round trip each), so a batch of
//! thousands is settled in about a millisecond; the handler's effect is durable before the
//! first ack is sent. Shutdown ([`CancellationToken`]) is checked between batches: the batch in
//! flight is finished and settled, messages already prefetched are nak'd for immediate
//! redelivery elsewhere, the pull request is ended on the server (`StreamLoop::stop_pulling`)
//! and the connection is flushed. Once [`run`] has returned the server hands this process
//! nothing more, so a consumer started right after it (a restart, a second instance) gets every
//! new message at once. A message the server hands out during the shutdown itself, after the
//! prefetched ones were released, comes back after `ack_wait`.
//!
//! With [`Options::idle`] set, a wait that long without a message calls [`Handler::idle`]
//! (detectors inject ticks, the alert router re-posts active alerts).
//!
//! What the runtime leaves to handlers: the meaning of an envelope, idempotency of its effect
//! (every message may arrive more than once) and publishing outputs, for which
//! [`Publisher`] waits for JetStream's acknowledgements before the input is acked.

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use async_nats::HeaderMap;
use futures::{FutureExt, StreamExt};
use schema::{subject, Envelope};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn, Instrument};

use crate::definitions::{ensure_consumer, ConsumerDef};
use crate::metrics::{Metrics, StreamMetrics};
use crate::Error;

/// Header naming why a message was dead-lettered (`malformed`, `unknown_kind`,
/// `newer_schema`, `subject_mismatch`, `rejected`).
pub const HEADER_DEAD_REASON: &str = "Bmon-Dead-Reason";
/// Header with the error text.
pub const HEADER_DEAD_ERROR: &str = "Bmon-Dead-Error";
/// Header naming the consumer that gave up.
pub const HEADER_DEAD_CONSUMER: &str = "Bmon-Dead-Consumer";
/// Header naming the original stream.
pub const HEADER_DEAD_STREAM: &str = "Bmon-Dead-Stream";
/// Header with the original subject.
pub const HEADER_DEAD_SUBJECT: &str = "Bmon-Dead-Subject";
/// Header with the original stream sequence.
pub const HEADER_DEAD_SEQ: &str = "Bmon-Dead-Seq";
/// Header with the original `Nats-Msg-Id`, when there was one.
pub const HEADER_DEAD_MSG_ID: &str = "Bmon-Dead-Msg-Id";

/// Why a handler could not complete a batch; decides what happens to its messages.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Retry later (ClickHouse or NATS unreachable, timeout): every message of the batch is
    /// nak'd with a delay and redelivered. Nothing of the batch may be assumed done.
    #[error("transient failure: {reason}")]
    Transient {
        /// What failed.
        reason: String,
    },
    /// The envelopes at `indices` (positions in the batch) can never be handled; every
    /// other envelope of the batch was handled durably. The poison ones are dead-lettered and
    /// terminated, the rest acked.
    #[error("{} poison event(s): {reason}", indices.len())]
    Poison {
        /// Positions in the batch.
        indices: Vec<usize>,
        /// Why they were refused.
        reason: String,
    },
    /// The consumer cannot go on (a missing table, refused credentials): the batch is nak'd,
    /// the consumer stops and the process exits non-zero for its supervisor to restart.
    #[error("fatal failure: {reason}")]
    Fatal {
        /// What failed.
        reason: String,
    },
}

/// What a consumer does with decoded envelopes.
///
/// `handle` is called with one fetched batch at a time, in stream order. It returns `Ok` only
/// once its effect is durable (rows inserted, outputs acknowledged by JetStream): then the
/// runtime acks the batch. Messages can arrive more than once, so the effect must be
/// idempotent.
pub trait Handler: Send + 'static {
    /// Handles one batch.
    fn handle(
        &mut self,
        batch: &[Envelope],
    ) -> impl Future<Output = Result<(), HandleError>> + Send;

    /// Called when no message arrived for [`Options::idle`] (and again after each further
    /// such wait): detectors inject a tick, the Alertmanager consumer re-posts its active
    /// alerts. `Transient` and `Poison` are logged and the loop goes on (the next idle call
    /// retries); `Fatal` stops the consumer. The default does nothing.
    fn idle(&mut self) -> impl Future<Output = Result<(), HandleError>> + Send {
        async { Ok(()) }
    }
}

/// Publishes a handler's outputs (alerts, derived events) to JetStream and waits for every
/// acknowledgement, so the handler can return `Ok` knowing they are stored.
#[derive(Clone)]
pub struct Publisher {
    js: jetstream::Context,
}

impl Publisher {
    /// Wraps a JetStream context.
    pub fn new(js: jetstream::Context) -> Publisher {
        Publisher { js }
    }

    /// Publishes every envelope on its subject with its headers (`Nats-Msg-Id` = event id, so
    /// a retry after a failure is de-duplicated), then waits for all acknowledgements; says
    /// how many JetStream stored and how many it dropped as duplicates of a stored id.
    pub async fn publish_all(&self, envelopes: &[Envelope]) -> Result<Published, HandleError> {
        let mut acks = Vec::with_capacity(envelopes.len());
        for env in envelopes {
            let (subject, headers, payload) =
                process::nats::message(env).map_err(|e| HandleError::Fatal {
                    reason: format!("cannot encode output {}: {e}", env.id),
                })?;
            let ack = self
                .js
                .publish_with_headers(subject, headers, payload)
                .await
                .map_err(|e| HandleError::Transient {
                    reason: format!("publish of output {}: {e}", env.id),
                })?;
            acks.push((env.id, ack));
        }
        let mut published = Published::default();
        for (id, ack) in acks {
            let ack = ack.await.map_err(|e| HandleError::Transient {
                reason: format!("acknowledgement of output {id}: {e}"),
            })?;
            if ack.duplicate {
                published.duplicates += 1;
            } else {
                published.stored += 1;
            }
        }
        Ok(published)
    }
}

/// What [`Publisher::publish_all`] got stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    /// Messages JetStream stored.
    pub stored: usize,
    /// Messages JetStream dropped: their `Nats-Msg-Id` was already stored within the
    /// stream's duplicate window (a redelivery or a replay).
    pub duplicates: usize,
}

/// What a handler factory learns about the loop it serves.
#[derive(Clone)]
pub struct HandlerContext {
    /// The durable consumer name.
    pub consumer: String,
    /// The stream this handler instance reads.
    pub stream: String,
    /// For outputs.
    pub publisher: Publisher,
}

/// Batching and retry knobs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most messages per batch.
    pub batch_size: usize,
    /// How long a batch may wait to fill after its first message.
    pub linger: Duration,
    /// Redelivery delay after a transient failure (also the pause before the next batch).
    pub nak_delay: Duration,
    /// Idle heartbeat asked from the server; a missed one recreates the pull.
    pub heartbeat: Duration,
    /// Longest pause between retries of a failing consumer creation.
    pub max_backoff: Duration,
    /// After this long without a message, [`Handler::idle`] is called (None: never).
    pub idle: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: 10_000,
            linger: Duration::from_millis(50),
            nak_delay: Duration::from_secs(2),
            heartbeat: Duration::from_secs(5),
            max_backoff: Duration::from_secs(10),
            idle: None,
        }
    }
}

/// Runs `def` on each of its streams until `shutdown` or a fatal error.
///
/// `make_handler` is called once per stream. Returns `Ok` after a graceful shutdown; on a
/// fatal error every loop is stopped (each finishing its batch) and the error returned.
pub async fn run<H, F>(
    js: jetstream::Context,
    def: &ConsumerDef,
    options: Options,
    metrics: &Metrics,
    mut make_handler: F,
    shutdown: CancellationToken,
) -> Result<(), Error>
where
    H: Handler,
    F: FnMut(HandlerContext) -> H,
{
    let handlers = def
        .streams
        .iter()
        .map(|stream| {
            let handler = make_handler(HandlerContext {
                consumer: def.name.clone(),
                stream: stream.clone(),
                publisher: Publisher::new(js.clone()),
            });
            (stream.clone(), handler)
        })
        .collect();
    run_handlers(js, def, options, metrics, handlers, shutdown).await
}

/// [`run`] with handlers the caller already built (and, for detectors, warmed up): one
/// `(stream, handler)` pair per stream to read.
pub async fn run_handlers<H: Handler>(
    js: jetstream::Context,
    def: &ConsumerDef,
    options: Options,
    metrics: &Metrics,
    handlers: Vec<(String, H)>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let stop = shutdown.child_token();
    let mut tasks = JoinSet::new();
    for (stream, handler) in handlers {
        let lp = StreamLoop {
            js: js.clone(),
            stream: stream.clone(),
            def: def.clone(),
            options: options.clone(),
            metrics: metrics.stream(&def.name, &stream),
            dead_subject: subject::dead_letter(&def.name),
        };
        let span = tracing::info_span!("consumer", consumer = %def.name, stream = %stream);
        let token = stop.clone();
        let name = stream.clone();
        tasks.spawn(async move { (name, lp.run(handler, token).await) }.instrument(span));
    }
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let failure = match joined {
            Ok((_, Ok(()))) => None,
            Ok((_, Err(e))) => Some(e),
            Err(e) => Some(Error::TaskPanicked {
                stream: "unknown".into(),
                reason: e.to_string(),
            }),
        };
        if let Some(e) = failure {
            stop.cancel();
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    js.client().flush().await.ok();
    result
}

struct StreamLoop {
    js: jetstream::Context,
    stream: String,
    def: ConsumerDef,
    options: Options,
    metrics: StreamMetrics,
    dead_subject: String,
}

/// What waiting for the next batch gave.
enum Next {
    /// A decoded batch, and why the message stream broke if it did.
    Batch(Decoded, Option<String>),
    /// No message for [`Options::idle`].
    Idle,
    /// Shutdown was requested.
    Shutdown,
}

/// A fetched batch, and how the message stream ended if it did.
struct Fetched {
    messages: Vec<jetstream::Message>,
    broken: Option<String>,
}

/// A fetched batch, decoded: envelopes with their messages, and the messages that did not
/// decode with the reason.
struct Decoded {
    envelopes: Vec<Envelope>,
    messages: Vec<jetstream::Message>,
    undecodable: Vec<(jetstream::Message, &'static str, String)>,
}

impl Decoded {
    fn of(batch: Vec<jetstream::Message>) -> Decoded {
        let mut out = Decoded {
            envelopes: Vec::with_capacity(batch.len()),
            messages: Vec::with_capacity(batch.len()),
            undecodable: Vec::new(),
        };
        for msg in batch {
            match Envelope::decode(&msg.payload) {
                // A node's credentials may publish only on its own subjects, so the subject is
                // what vouches for the sender: an envelope that names another node or another
                // kind than its subject (an alert outside `bmon.alert.*`) is a forgery or a
                // bug, never data.
                Ok(env) if env.subject() != msg.subject.as_str() => {
                    let detail = format!(
                        "subject {} does not match the envelope (node {}, kind {}), which belongs on {}",
                        msg.subject,
                        env.node,
                        env.kind().as_str(),
                        env.subject()
                    );
                    out.undecodable.push((msg, "subject_mismatch", detail));
                }
                Ok(env) => {
                    out.envelopes.push(env);
                    out.messages.push(msg);
                }
                Err(e) => {
                    let reason = match &e {
                        schema::Error::UnknownKind { .. } => "unknown_kind",
                        schema::Error::NewerSchema { .. } => "newer_schema",
                        _ => "malformed",
                    };
                    out.undecodable.push((msg, reason, e.to_string()));
                }
            }
        }
        out
    }

    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.undecodable.is_empty()
    }
}

type MessageStream = async_nats::jetstream::consumer::pull::Stream;
type PullConsumer = async_nats::jetstream::consumer::PullConsumer;
type MessagesError = async_nats::jetstream::consumer::pull::MessagesError;

impl StreamLoop {
    async fn run<H: Handler>(
        self,
        mut handler: H,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        let mut backoff = Duration::from_millis(100);
        'connect: while !shutdown.is_cancelled() {
            let consumer = match ensure_consumer(&self.js, &self.stream, &self.def).await {
                Ok((c, change)) => {
                    debug!(change = change.as_str(), "durable consumer ready");
                    c
                }
                Err(e) => {
                    warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot set up the durable consumer (has `bmon setup` run?)");
                    if pause(backoff, &shutdown).await {
                        break;
                    }
                    backoff = (backoff * 2).min(self.options.max_backoff);
                    continue;
                }
            };
            let messages = consumer
                .stream()
                .max_messages_per_batch(self.options.batch_size)
                .heartbeat(self.options.heartbeat)
                .expires(self.options.heartbeat * 6)
                .messages()
                .await;
            let mut messages = match messages {
                Ok(m) => m,
                Err(e) => {
                    warn!(error = %e, "cannot start pulling; retrying");
                    if pause(backoff, &shutdown).await {
                        break;
                    }
                    backoff = (backoff * 2).min(self.options.max_backoff);
                    continue;
                }
            };
            info!("consuming");
            // Double buffering: while one batch is handled (its ClickHouse insert mostly waits
            // on the server), the next one is fetched and decoded.
            let mut current: Option<Next> = None;
            loop {
                let next = match current.take() {
                    Some(n) => n,
                    None => self.next_batch(&mut messages, &shutdown).await,
                };
                let (batch, broken) = match next {
                    Next::Batch(batch, broken) => (batch, broken),
                    Next::Idle => {
                        self.idle(&mut handler).await?;
                        continue;
                    }
                    Next::Shutdown => {
                        self.release_prefetched(&mut messages).await;
                        self.stop_pulling(messages, &consumer).await;
                        break 'connect;
                    }
                };
                if !batch.is_empty() {
                    backoff = Duration::from_millis(100);
                }
                if let Some(reason) = broken {
                    if !batch.is_empty() {
                        self.process(&mut handler, batch, &shutdown).await?;
                    }
                    warn!(%reason, "message stream broke; recreating the pull consumer");
                    if pause(backoff, &shutdown).await {
                        break 'connect;
                    }
                    backoff = (backoff * 2).min(self.options.max_backoff);
                    continue 'connect;
                }
                let (handled, next) = tokio::join!(
                    self.process(&mut handler, batch, &shutdown),
                    self.next_batch(&mut messages, &shutdown)
                );
                handled?;
                current = Some(next);
            }
        }
        info!("stopped");
        Ok(())
    }

    /// Waits for the first message of the next batch (or shutdown, or [`Options::idle`]
    /// without a message), fills the batch and decodes it; also returns why the message
    /// stream broke, if it did.
    async fn next_batch(&self, messages: &mut MessageStream, shutdown: &CancellationToken) -> Next {
        let first = match self.options.idle {
            Some(idle) => tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Next::Shutdown,
                first = tokio::time::timeout(idle, messages.next()) => match first {
                    Ok(first) => first,
                    Err(_) => return Next::Idle,
                },
            },
            None => tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Next::Shutdown,
                first = messages.next() => first,
            },
        };
        let fetched = self.fill(first, messages).await;
        Next::Batch(Decoded::of(fetched.messages), fetched.broken)
    }

    /// Lets the handler act on a quiet period; only a fatal failure stops the loop.
    async fn idle<H: Handler>(&self, handler: &mut H) -> Result<(), Error> {
        match handler.idle().await {
            Ok(()) => Ok(()),
            Err(HandleError::Fatal { reason }) => Err(Error::Fatal {
                consumer: self.def.name.clone(),
                stream: self.stream.clone(),
                reason,
            }),
            Err(e) => {
                warn!(error = %e, "idle work failed; retrying at the next quiet period");
                Ok(())
            }
        }
    }

    /// Completes a batch from its first item: takes what is ready, then waits up to `linger`.
    async fn fill(
        &self,
        first: Option<Result<jetstream::Message, MessagesError>>,
        messages: &mut MessageStream,
    ) -> Fetched {
        let mut out = Fetched {
            messages: Vec::new(),
            broken: None,
        };
        match first {
            Some(Ok(m)) => out.messages.push(m),
            Some(Err(e)) => {
                out.broken = Some(e.to_string());
                return out;
            }
            None => {
                out.broken = Some("message stream ended".into());
                return out;
            }
        }
        let deadline = tokio::time::Instant::now() + self.options.linger;
        while out.messages.len() < self.options.batch_size {
            let next = match messages.next().now_or_never() {
                Some(n) => n,
                None => match tokio::time::timeout_at(deadline, messages.next()).await {
                    Ok(n) => n,
                    Err(_) => break,
                },
            };
            match next {
                Some(Ok(m)) => out.messages.push(m),
                Some(Err(e)) => {
                    out.broken = Some(e.to_string());
                    break;
                }
                None => {
                    out.broken = Some("message stream ended".into());
                    break;
                }
            }
        }
        out
    }

    /// Dead-letters what did not decode, hands the rest to the handler, settles every message.
    async fn process<H: Handler>(
        &self,
        handler: &mut H,
        batch: Decoded,
        shutdown: &CancellationToken,
    ) -> Result<(), Error> {
        let Decoded {
            envelopes,
            messages: decoded,
            undecodable,
        } = batch;
        let total = decoded.len() + undecodable.len();
        self.metrics.received.inc_by(total as u64);
        let last_info = decoded
            .last()
            .or(undecodable.last().map(|(m, _, _)| m))
            .and_then(|m| m.info().ok().map(|i| i.pending));
        if let Some(pending) = last_info {
            self.metrics.pending.set(pending as i64);
        }
        for (msg, reason, error) in &undecodable {
            self.dead_letter(msg, reason, error).await;
        }
        if envelopes.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let result = handler.handle(&envelopes).await;
        self.metrics
            .handle_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                self.settle(&decoded, AckKind::Ack).await;
                Ok(())
            }
            Err(HandleError::Transient { reason }) => {
                warn!(%reason, messages = decoded.len(), nak_delay_ms = self.options.nak_delay.as_millis() as u64, "transient failure; the batch will be redelivered");
                self.settle(&decoded, AckKind::Nak(Some(self.options.nak_delay)))
                    .await;
                pause(self.options.nak_delay, shutdown).await;
                Ok(())
            }
            Err(HandleError::Poison { indices, reason }) => {
                for (i, (msg, env)) in decoded.iter().zip(&envelopes).enumerate() {
                    if indices.contains(&i) {
                        warn!(event_id = %env.id, kind = %env.kind(), node = %env.node, %reason, "poison event");
                        self.dead_letter(msg, "rejected", &reason).await;
                    } else {
                        self.settle(std::slice::from_ref(msg), AckKind::Ack).await;
                    }
                }
                Ok(())
            }
            Err(HandleError::Fatal { reason }) => {
                self.settle(&decoded, AckKind::Nak(None)).await;
                Err(Error::Fatal {
                    consumer: self.def.name.clone(),
                    stream: self.stream.clone(),
                    reason,
                })
            }
        }
    }

    /// Sends the same acknowledgement for every message and counts it.
    async fn settle(&self, messages: &[jetstream::Message], kind: AckKind) {
        let counter = match kind {
            AckKind::Ack => &self.metrics.acked,
            AckKind::Term => &self.metrics.termed,
            _ => &self.metrics.naked,
        };
        let mut sent = 0u64;
        for msg in messages {
            match msg.ack_with(kind).await {
                Ok(()) => sent += 1,
                // The connection is gone: JetStream redelivers after ack_wait.
                Err(e) => debug!(error = %e, "acknowledgement not sent"),
            }
        }
        counter.inc_by(sent);
    }

    /// Copies `msg` to the dead-letter subject with headers saying why, then terms it. If the
    /// copy cannot be stored, the message is nak'd instead (it must not be lost).
    async fn dead_letter(&self, msg: &jetstream::Message, reason: &str, detail: &str) {
        let info = msg.info().ok();
        let seq = info.as_ref().map(|i| i.stream_sequence).unwrap_or(0);
        let mut headers = HeaderMap::new();
        if let Some(orig) = &msg.headers {
            for (name, values) in orig.iter() {
                let name: &str = name.as_ref();
                if name == subject::HEADER_MSG_ID {
                    if let Some(v) = values.first() {
                        headers.insert(HEADER_DEAD_MSG_ID, v.as_str());
                    }
                } else if !name.starts_with("Nats-") {
                    for v in values {
                        headers.append(name, v.as_str());
                    }
                }
            }
        }
        headers.insert(
            subject::HEADER_MSG_ID,
            format!("{}:{}:{}", self.def.name, self.stream, seq).as_str(),
        );
        headers.insert(HEADER_DEAD_REASON, reason);
        headers.insert(HEADER_DEAD_ERROR, header_safe(detail).as_str());
        headers.insert(HEADER_DEAD_CONSUMER, self.def.name.as_str());
        headers.insert(HEADER_DEAD_STREAM, self.stream.as_str());
        headers.insert(HEADER_DEAD_SUBJECT, msg.subject.as_str());
        headers.insert(HEADER_DEAD_SEQ, seq.to_string().as_str());
        let stored = match self
            .js
            .publish_with_headers(self.dead_subject.clone(), headers, msg.payload.clone())
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match stored {
            Ok(()) => {
                warn!(subject = %msg.subject, stream_seq = seq, reason, error = detail, "message dead-lettered");
                self.metrics.dead_lettered(reason);
                self.settle(std::slice::from_ref(msg), AckKind::Term).await;
            }
            Err(e) => {
                error!(subject = %msg.subject, stream_seq = seq, reason, error = %e, "cannot store a dead letter; the message will be redelivered");
                self.settle(
                    std::slice::from_ref(msg),
                    AckKind::Nak(Some(self.options.nak_delay)),
                )
                .await;
            }
        }
    }

    /// Ends the server's side of the pull before the loop returns. Dropping the message stream
    /// unsubscribes its inbox, but the server learns of it in its own time: until it has, its
    /// pull request still counts as waiting and the server may hand it the next message,
    /// which then sits unacknowledged until `ack_wait` while a restarted consumer is already
    /// pulling (on a loaded machine, a message published right after a restart came one
    /// `ack_wait` late). The server reads a connection's protocol in order, so once a request
    /// sent after the unsubscribe is answered, it has dropped the pull request's interest and
    /// delivers nothing more to it.
    ///
    /// Bounded: with NATS gone at shutdown there is nothing to confirm, and stopping must not
    /// wait out a request timeout.
    async fn stop_pulling(&self, messages: MessageStream, consumer: &PullConsumer) {
        drop(messages);
        match tokio::time::timeout(STOP_CONFIRM_TIMEOUT, consumer.get_info()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                debug!(error = %e, "cannot confirm that the server ended the pull request")
            }
            Err(_) => debug!(
                timeout = ?STOP_CONFIRM_TIMEOUT,
                "no answer confirming that the server ended the pull request"
            ),
        }
    }

    /// After shutdown: messages the client already prefetched are nak'd so another
    /// process gets them now rather than after `ack_wait`.
    async fn release_prefetched(&self, messages: &mut MessageStream) {
        let mut released = Vec::new();
        while let Some(Some(Ok(m))) = messages.next().now_or_never() {
            released.push(m);
        }
        if !released.is_empty() {
            debug!(messages = released.len(), "releasing prefetched messages");
            self.settle(&released, AckKind::Nak(None)).await;
        }
    }
}

/// How long a stopping consumer waits for the server to confirm its pull request is gone.
const STOP_CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// Sleeps `d` unless `shutdown` fires first; true if it fired.
async fn pause(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// A header value: one line, at most 1,000 bytes.
fn header_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > 1000 {
        let mut cut = 1000;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_one_bounded_line() {
        assert_eq!(header_safe("a\r\nb"), "a  b");
        let long = "é".repeat(2000);
        let s = header_safe(&long);
        assert!(s.len() <= 1000);
        assert!(s.chars().all(|c| c == 'é'));
    }
}
