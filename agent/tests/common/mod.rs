//! Helpers shared by the agent's integration tests: the streams `bmon setup` creates, reading a
//! stream back, and an agent config for one simnet node.

#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use figment::providers::{Format, Toml};
use figment::Figment;
use schema::Envelope;

/// What `bmon setup` creates for the agent: BMON_EVENTS and BMON_LOGS.
pub async fn create_streams(url: &str) {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    for (name, subjects) in [
        (
            schema::subject::EVENTS_STREAM,
            schema::subject::EVENTS_SUBJECTS,
        ),
        (schema::subject::LOGS_STREAM, schema::subject::LOGS_SUBJECTS),
    ] {
        js.create_stream(stream::Config {
            name: name.into(),
            subjects: vec![subjects.into()],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .unwrap();
    }
}

/// Every envelope of a stream, in stream order.
pub async fn envelopes(url: &str, stream: &str) -> Vec<Envelope> {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let s = js.get_stream(stream).await.unwrap();
    let info = s.get_info().await.unwrap();
    let mut out = Vec::new();
    if info.state.messages == 0 {
        return out;
    }
    for seq in info.state.first_sequence..=info.state.last_sequence {
        let m = s.get_raw_message(seq).await.unwrap();
        out.push(Envelope::decode(&m.payload).unwrap());
    }
    out
}

/// Every envelope of BMON_EVENTS.
pub async fn events(url: &str) -> Vec<Envelope> {
    envelopes(url, schema::subject::EVENTS_STREAM).await
}

/// An agent config for one simnet node (RPC, ZMQ, NATS, its state in `<state_dir>/<node>/`
/// as an agent's by default: one `state_dir` serves a whole fleet), with `extra` TOML
/// sections (`[poll]`, `[debug_log]`, `[clock]`) appended.
pub fn simnet_agent_config(
    ep: &simnet::NodeEndpoints,
    nats_url: &str,
    state_dir: &Path,
    extra: &str,
) -> agent::Config {
    let toml = format!(
        r#"
        node = "{name}"
        network = "regtest"
        state_dir = "{state_dir}"
        [rpc]
        url = "{rpc}/"
        user = "{user}"
        password = "{password}"
        timeout_secs = 5
        [zmq]
        sequence = "{seq}"
        rawblock = "{rawblock}"
        rawtx = "{rawtx}"
        [nats]
        url = "{nats_url}"
        [metrics]
        listen = "127.0.0.1:0"
        {extra}
        "#,
        name = ep.name,
        rpc = ep.rpc_url.trim_end_matches('/'),
        user = ep.rpc_user,
        password = ep.rpc_password,
        seq = ep.zmq.sequence,
        rawblock = ep.zmq.rawblock,
        rawtx = ep.zmq.rawtx,
        state_dir = state_dir.display(),
    );
    agent::Config::from_figment(Figment::from(Toml::string(&toml))).unwrap()
}

/// The `[debug_log]` section following a simnet node's log from its start.
pub fn follow_log(ep: &simnet::NodeEndpoints) -> String {
    let log = ep.debug_log.as_ref().expect("simnet writes a debug.log");
    format!(
        "[debug_log]\npath = \"{}\"\nbackfill = true\npoll_ms = 20\n",
        log.display()
    )
}
