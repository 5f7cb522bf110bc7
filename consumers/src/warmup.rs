//! Rebuilding a consumer's in-memory state on start from what it already acknowledged.
//!
//! A durable consumer resumes where it was acked, but a detector's state (and the Alertmanager
//! consumer's set of active alerts) lived in the process that stopped. Before the durable
//! consumer is pulled, [`replay_acked`] reads the messages it already acknowledged — the
//! stream's messages matching its filter, from `since` ago (or the start of the stream) up to
//! the durable's ack floor — through a second, ephemeral ordered consumer, and hands each
//! decoded envelope to the caller, which folds it into its state without publishing anything
//! (those outputs were published by the previous process). The durable then delivers
//! everything after the ack floor as usual, so no message is applied twice and none is
//! skipped.
//!
//! What this cannot bring back, by design:
//! - messages older than `since` (each detector documents how far back its state reaches;
//!   `consumer.warmup_secs` sets the horizon);
//! - messages above the ack floor that were acknowledged out of order: a poison message
//!   terminated while an earlier one was still pending, or — because the runtime fetches the
//!   next batch while the previous one is handled — a batch acked while the batch before it was
//!   nak'd for a transient failure and not yet redelivered. If the process stops in that window,
//!   the acked messages above the floor are neither replayed here nor redelivered: up to one
//!   batch (`consumer.batch_size`) of detector input. Their outputs were already published; what
//!   is lost is their contribution to the rebuilt state.
//!
//! A new durable (first start, or after `bmon replay`) has an ack floor of 0: nothing is
//! replayed here and the durable itself delivers the whole stream.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use schema::Envelope;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::definitions::{ensure_consumer, ConsumerDef};
use crate::Error;

/// Longest wait for the next replayed message before the warm-up gives up (and the consumer
/// starts with what it has).
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a warm-up replayed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Warmup {
    /// Stream sequence of the durable's ack floor (0: nothing acknowledged yet).
    pub ack_floor: u64,
    /// Envelopes handed to the caller.
    pub envelopes: u64,
    /// Messages that did not decode (skipped; the durable dead-lettered them when it saw them).
    pub undecodable: u64,
    /// When JetStream stored the last replayed message (its `published` time).
    pub last_stored: Option<SystemTime>,
}

/// Replays the messages `def`'s durable on `stream` already acknowledged, from `since` ago
/// (None: the start of the stream) up to its ack floor, calling `apply` on each decoded
/// envelope in stream order with the time JetStream stored it. Creates the durable if it
/// does not exist yet.
pub async fn replay_acked<F>(
    js: &jetstream::Context,
    stream: &str,
    def: &ConsumerDef,
    since: Option<Duration>,
    shutdown: &CancellationToken,
    mut apply: F,
) -> Result<Warmup, Error>
where
    F: FnMut(&Envelope, Option<SystemTime>),
{
    let js_err = |what: &str, e: String| Error::JetStream {
        what: format!("{what} for the warm-up of {} on {stream}", def.name),
        reason: e,
    };
    let (mut durable, _) = ensure_consumer(js, stream, def).await?;
    let ack_floor = durable
        .info()
        .await
        .map_err(|e| js_err("consumer info", e.to_string()))?
        .ack_floor
        .stream_sequence;
    let mut report = Warmup {
        ack_floor,
        ..Warmup::default()
    };
    if ack_floor == 0 {
        debug!("nothing acknowledged yet: no warm-up");
        return Ok(report);
    }
    let deliver_policy = match since {
        None => consumer::DeliverPolicy::All,
        Some(d) => {
            let start = SystemTime::now()
                .checked_sub(d)
                .unwrap_or(UNIX_EPOCH)
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as i128)
                .unwrap_or(0);
            match async_nats::datetime::from_nanos(start) {
                Ok(start_time) => consumer::DeliverPolicy::ByStartTime { start_time },
                Err(_) => consumer::DeliverPolicy::All,
            }
        }
    };
    let (filter_subject, filter_subjects) = match def.filter_subjects.as_slice() {
        [] => (String::new(), Vec::new()),
        [one] => (one.clone(), Vec::new()),
        many => (String::new(), many.to_vec()),
    };
    let st = js
        .get_stream_no_info(stream)
        .await
        .map_err(|e| js_err("stream lookup", e.to_string()))?;
    let ordered = st
        .create_consumer(consumer::pull::OrderedConfig {
            description: Some(format!("warm-up of {}", def.name)),
            filter_subject,
            filter_subjects,
            deliver_policy,
            replay_policy: consumer::ReplayPolicy::Instant,
            ..Default::default()
        })
        .await
        .map_err(|e| js_err("ordered consumer", e.to_string()))?;
    if ordered.cached_info().num_pending == 0 {
        return Ok(report);
    }
    let mut messages = ordered
        .messages()
        .await
        .map_err(|e| js_err("ordered pull", e.to_string()))?;
    loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            n = tokio::time::timeout(MESSAGE_TIMEOUT, messages.next()) => n,
        };
        let msg = match next {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => {
                warn!(error = %e, replayed = report.envelopes, "warm-up read failed; starting with the state rebuilt so far");
                break;
            }
            Ok(None) => break,
            Err(_) => {
                warn!(
                    replayed = report.envelopes,
                    "warm-up stalled; starting with the state rebuilt so far"
                );
                break;
            }
        };
        let Ok(info) = msg.info() else {
            continue;
        };
        let (seq, pending) = (info.stream_sequence, info.pending);
        if seq > ack_floor {
            break;
        }
        let stored = nanos_to_system_time(info.published.unix_timestamp_nanos());
        match Envelope::decode(&msg.payload) {
            Ok(env) => {
                apply(&env, stored);
                report.envelopes += 1;
            }
            Err(_) => report.undecodable += 1,
        }
        report.last_stored = stored;
        if seq == ack_floor || pending == 0 {
            break;
        }
    }
    info!(
        ack_floor,
        envelopes = report.envelopes,
        undecodable = report.undecodable,
        "state rebuilt from acknowledged messages"
    );
    Ok(report)
}

fn nanos_to_system_time(nanos: i128) -> Option<SystemTime> {
    let nanos = u64::try_from(nanos).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_nanos(nanos))
}
