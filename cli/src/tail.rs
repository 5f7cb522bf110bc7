//! `bmon tail`: subscribe to bmon's subjects and print every envelope as one JSON line
//! (`{"id", "node", "observed_at", "kind", "subject", "payload"}`). Undecodable messages are
//! reported on stderr and skipped.

use anyhow::{bail, Context};
use futures::StreamExt;
use schema::{subject, Envelope, Kind};
use serde_json::{json, Value};
use std::io::Write;

use crate::services::Services;

/// Options of `bmon tail`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this event kind (`block_connected`, `log_batch`, `alert`, ...).
    #[arg(long)]
    kind: Option<String>,
    /// Only this node's events (for alerts: the detector that raised them).
    #[arg(long)]
    node: Option<String>,
    /// Exit after printing this many events.
    #[arg(long)]
    count: Option<u64>,
}

/// The subjects to subscribe to for a kind and node filter.
fn subjects(kind: Option<Kind>, node: Option<&str>) -> Vec<String> {
    let n = node.unwrap_or("*");
    match kind {
        Some(Kind::LogBatch) => vec![format!("bmon.log.{n}")],
        Some(Kind::Alert) => vec![subject::ALERTS_SUBJECTS.to_string()],
        Some(k) => vec![format!("bmon.ev.{}.{n}", k.as_str())],
        None => vec![
            format!("bmon.ev.*.{n}"),
            format!("bmon.log.{n}"),
            subject::ALERTS_SUBJECTS.to_string(),
        ],
    }
}

/// One envelope as a JSON value.
pub fn to_json(env: &Envelope, subject: &str) -> Value {
    let payload = env
        .event
        .serialize_fields(serde_json::value::Serializer)
        .unwrap_or_else(|e| json!({ "error": e.to_string() }));
    json!({
        "id": env.id.to_hex(),
        "node": env.node.as_str(),
        "observed_at": env.observed_at.0,
        "kind": env.kind().as_str(),
        "subject": subject,
        "payload": payload,
    })
}

/// Runs `bmon tail`.
pub async fn run(services: &Services, args: Args) -> anyhow::Result<()> {
    let kind = match &args.kind {
        Some(k) => match k.parse::<Kind>() {
            Ok(k) => Some(k),
            Err(_) => bail!(
                "unknown kind {k:?}; kinds: {}",
                Kind::ALL
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        None => None,
    };
    let client = services.nats().await?;
    let mut subs = Vec::new();
    for s in subjects(kind, args.node.as_deref()) {
        subs.push(
            client
                .subscribe(s.clone())
                .await
                .with_context(|| format!("cannot subscribe to {s}"))?,
        );
    }
    // Make sure the server has the subscriptions before saying we listen.
    tokio::time::timeout(std::time::Duration::from_secs(10), client.flush())
        .await
        .context("NATS did not confirm the subscription within 10 s")?
        .context("cannot reach NATS")?;
    eprintln!(
        "listening on {}",
        subjects(kind, args.node.as_deref()).join(", ")
    );
    let mut messages = futures::stream::select_all(subs);
    let mut printed = 0u64;
    let mut undecodable = 0u64;
    loop {
        let msg = tokio::select! {
            m = messages.next() => match m {
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
        if kind.is_some_and(|k| k != env.kind()) {
            continue;
        }
        if args.node.as_deref().is_some_and(|n| env.node.as_str() != n) {
            continue;
        }
        // A closed pipe (`bmon tail | head`) ends the command quietly instead of panicking.
        let line = to_json(&env, msg.subject.as_str());
        if writeln!(std::io::stdout().lock(), "{line}").is_err() {
            break;
        }
        printed += 1;
        if args.count.is_some_and(|c| printed >= c) {
            break;
        }
    }
    if undecodable > 0 {
        eprintln!("{undecodable} undecodable messages skipped");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_subjects() {
        assert_eq!(
            subjects(Some(Kind::TxSeen), Some("node1")),
            ["bmon.ev.tx_seen.node1"]
        );
        assert_eq!(subjects(Some(Kind::LogBatch), None), ["bmon.log.*"]);
        assert_eq!(subjects(Some(Kind::Alert), Some("x")), ["bmon.alert.>"]);
        assert_eq!(
            subjects(None, Some("n")),
            ["bmon.ev.*.n", "bmon.log.n", "bmon.alert.>"]
        );
    }
}
