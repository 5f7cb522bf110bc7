//! The JetStream streams and durable consumers bmon needs, as written in
//! `nats/streams.toml`, and the calls that make a server match them.
//!
//! The file is embedded at build time ([`Definitions::builtin`]); an operator may point
//! `nats.definitions` (consumers) or `--definitions` (`bmon setup`) at a copy to change limits.
//! Every durable consumer is a pull consumer with explicit acks that starts at the beginning of
//! its stream, so a deleted and recreated consumer replays everything.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use serde::Deserialize;

use crate::Error;

/// The built-in copy of `nats/streams.toml`.
pub const BUILTIN: &str = include_str!("../../nats/streams.toml");

/// Everything `nats/streams.toml` defines.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definitions {
    /// The streams.
    #[serde(default)]
    pub streams: Vec<StreamDef>,
    /// The durable consumers.
    #[serde(default)]
    pub consumers: Vec<ConsumerDef>,
}

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// On disk (survives restarts).
    File,
    /// In memory.
    Memory,
}

/// What a full stream does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Discard {
    /// Drop the oldest messages.
    Old,
    /// Refuse new messages.
    New,
}

/// One stream.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamDef {
    /// Stream name (`BMON_EVENTS`).
    pub name: String,
    /// Free text shown by `nats stream info`.
    #[serde(default)]
    pub description: Option<String>,
    /// Subjects it captures.
    pub subjects: Vec<String>,
    /// Storage type.
    #[serde(default = "default_storage")]
    pub storage: Storage,
    /// Oldest message kept, seconds (0: no limit).
    #[serde(default)]
    pub max_age_secs: u64,
    /// Most bytes kept (-1: no limit).
    #[serde(default = "unlimited")]
    pub max_bytes: i64,
    /// Most messages kept (-1: no limit).
    #[serde(default = "unlimited")]
    pub max_msgs: i64,
    /// Largest message accepted, bytes (-1: the server's max_payload).
    #[serde(default = "unlimited_i32")]
    pub max_msg_size: i32,
    /// Window in which a repeated `Nats-Msg-Id` is dropped, seconds.
    #[serde(default = "default_duplicate_window")]
    pub duplicate_window_secs: u64,
    /// What to do when a limit is reached.
    #[serde(default = "default_discard")]
    pub discard: Discard,
    /// Replicas (1 on a single server, 3 in a cluster).
    #[serde(default = "one")]
    pub replicas: usize,
}

/// One durable pull consumer, created on each of its streams under the same name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerDef {
    /// Durable name (`ch-writer`, `det-<name>`).
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Streams it reads (one durable on each).
    pub streams: Vec<String>,
    /// Only these subjects (empty: all of the stream's subjects).
    #[serde(default)]
    pub filter_subjects: Vec<String>,
    /// Redelivery after this many seconds without an ack.
    #[serde(default = "default_ack_wait")]
    pub ack_wait_secs: u64,
    /// Most unacknowledged messages at once (caps work in flight).
    #[serde(default = "default_max_ack_pending")]
    pub max_ack_pending: i64,
    /// Most deliveries of one message (-1: no limit).
    #[serde(default = "unlimited")]
    pub max_deliver: i64,
}

fn default_storage() -> Storage {
    Storage::File
}
fn unlimited() -> i64 {
    -1
}
fn unlimited_i32() -> i32 {
    -1
}
fn default_duplicate_window() -> u64 {
    120
}
fn default_discard() -> Discard {
    Discard::Old
}
fn one() -> usize {
    1
}
fn default_ack_wait() -> u64 {
    30
}
fn default_max_ack_pending() -> i64 {
    40_000
}

impl Definitions {
    /// The built-in definitions (`nats/streams.toml` at build time).
    pub fn builtin() -> Result<Definitions, Error> {
        Definitions::from_toml(BUILTIN, "built-in nats/streams.toml")
    }

    /// Reads a definitions file.
    pub fn load(path: &Path) -> Result<Definitions, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        Definitions::from_toml(&text, &path.display().to_string())
    }

    /// The built-in definitions, or those of `path` when given.
    pub fn load_or_builtin(path: Option<&Path>) -> Result<Definitions, Error> {
        match path {
            Some(p) => Definitions::load(p),
            None => Definitions::builtin(),
        }
    }

    /// Parses and checks a definitions text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Definitions, Error> {
        let defs: Definitions = toml::from_str(text).map_err(|e| Error::Definitions {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
        defs.validate().map_err(|reason| Error::Definitions {
            origin: origin.to_string(),
            reason,
        })?;
        Ok(defs)
    }

    /// The consumer named `name`.
    pub fn consumer(&self, name: &str) -> Result<&ConsumerDef, Error> {
        self.consumers
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| Error::UnknownConsumer {
                name: name.to_string(),
                known: self
                    .consumers
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The stream named `name`.
    pub fn stream(&self, name: &str) -> Option<&StreamDef> {
        self.streams.iter().find(|s| s.name == name)
    }

    fn validate(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        for s in &self.streams {
            if !is_name(&s.name) {
                return Err(format!(
                    "stream name {:?} must be letters, digits, '-' or '_'",
                    s.name
                ));
            }
            if !names.insert(s.name.as_str()) {
                return Err(format!("stream {} is defined twice", s.name));
            }
            if s.subjects.is_empty() {
                return Err(format!("stream {} captures no subjects", s.name));
            }
            if s.max_age_secs != 0 && s.duplicate_window_secs > s.max_age_secs {
                return Err(format!(
                    "stream {}: duplicate_window_secs exceeds max_age_secs",
                    s.name
                ));
            }
        }
        let mut consumers = HashSet::new();
        for c in &self.consumers {
            if !is_name(&c.name) {
                return Err(format!(
                    "consumer name {:?} must be letters, digits, '-' or '_'",
                    c.name
                ));
            }
            if !consumers.insert(c.name.as_str()) {
                return Err(format!("consumer {} is defined twice", c.name));
            }
            if c.streams.is_empty() {
                return Err(format!("consumer {} reads no stream", c.name));
            }
            for s in &c.streams {
                if !names.contains(s.as_str()) {
                    return Err(format!("consumer {} reads undefined stream {s}", c.name));
                }
            }
            if c.ack_wait_secs == 0 {
                return Err(format!(
                    "consumer {}: ack_wait_secs must be at least 1",
                    c.name
                ));
            }
        }
        Ok(())
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl StreamDef {
    /// The JetStream configuration this definition asks for.
    pub fn to_config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            description: self.description.clone(),
            subjects: self.subjects.clone(),
            storage: match self.storage {
                Storage::File => stream::StorageType::File,
                Storage::Memory => stream::StorageType::Memory,
            },
            max_age: Duration::from_secs(self.max_age_secs),
            max_bytes: self.max_bytes,
            max_messages: self.max_msgs,
            max_message_size: self.max_msg_size,
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            discard: match self.discard {
                Discard::Old => stream::DiscardPolicy::Old,
                Discard::New => stream::DiscardPolicy::New,
            },
            num_replicas: self.replicas,
            retention: stream::RetentionPolicy::Limits,
            ..Default::default()
        }
    }

    /// Whether a server's stream configuration already matches this definition.
    pub fn matches(&self, have: &stream::Config) -> bool {
        let want = self.to_config();
        let mut want_subjects = want.subjects.clone();
        let mut have_subjects = have.subjects.clone();
        want_subjects.sort();
        have_subjects.sort();
        want.description == have.description
            && want_subjects == have_subjects
            && want.storage == have.storage
            && want.max_age == have.max_age
            && want.max_bytes == have.max_bytes
            && want.max_messages == have.max_messages
            && want.max_message_size == have.max_message_size
            && want.duplicate_window == have.duplicate_window
            && want.discard == have.discard
            && want.num_replicas == have.num_replicas.max(1)
            && want.retention == have.retention
    }
}

impl ConsumerDef {
    /// The pull consumer configuration this definition asks for (the same on every stream).
    pub fn to_config(&self) -> consumer::pull::Config {
        let (filter_subject, filter_subjects) = match self.filter_subjects.as_slice() {
            [] => (String::new(), Vec::new()),
            [one] => (one.clone(), Vec::new()),
            many => (String::new(), many.to_vec()),
        };
        consumer::pull::Config {
            durable_name: Some(self.name.clone()),
            description: self.description.clone(),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(self.ack_wait_secs),
            max_deliver: self.max_deliver,
            filter_subject,
            filter_subjects,
            replay_policy: consumer::ReplayPolicy::Instant,
            max_ack_pending: self.max_ack_pending,
            ..Default::default()
        }
    }

    /// Whether a server's consumer configuration already matches this definition.
    pub fn matches(&self, have: &consumer::Config) -> bool {
        let want = self.to_config();
        let mut want_filters = self.filter_subjects.clone();
        let mut have_filters = have.filter_subjects.clone();
        if !have.filter_subject.is_empty() {
            have_filters.push(have.filter_subject.clone());
        }
        want_filters.sort();
        have_filters.sort();
        have.durable_name == want.durable_name
            && have.description == want.description
            && have.deliver_policy == want.deliver_policy
            && have.ack_policy == want.ack_policy
            && have.ack_wait == want.ack_wait
            && have.max_deliver == want.max_deliver
            && have.max_ack_pending == want.max_ack_pending
            && have_filters == want_filters
    }
}

/// What a create-or-update call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It did not exist and was created.
    Created,
    /// It existed with another configuration and was updated.
    Updated,
    /// It already matched; nothing was sent.
    Unchanged,
}

impl Change {
    /// Lowercase word for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        }
    }
}

fn js_err(what: String) -> impl FnOnce(String) -> Error {
    move |reason| Error::JetStream { what, reason }
}

/// Creates the stream, or updates it when its configuration differs.
pub async fn ensure_stream(js: &jetstream::Context, def: &StreamDef) -> Result<Change, Error> {
    match js.get_stream(&def.name).await {
        Ok(mut existing) => {
            let info = existing
                .info()
                .await
                .map_err(|e| js_err(format!("info of stream {}", def.name))(e.to_string()))?;
            if def.matches(&info.config) {
                return Ok(Change::Unchanged);
            }
            js.update_stream(def.to_config())
                .await
                .map_err(|e| js_err(format!("update of stream {}", def.name))(e.to_string()))?;
            Ok(Change::Updated)
        }
        Err(e)
            if matches!(
                e.kind(),
                jetstream::context::GetStreamErrorKind::JetStream(ref js_error)
                    if js_error.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
            ) =>
        {
            js.create_stream(def.to_config())
                .await
                .map_err(|e| js_err(format!("creation of stream {}", def.name))(e.to_string()))?;
            Ok(Change::Created)
        }
        Err(e) => Err(js_err(format!("lookup of stream {}", def.name))(
            e.to_string(),
        )),
    }
}

/// Creates the durable consumer on `stream`, or updates it when its configuration differs;
/// returns it with what was done.
pub async fn ensure_consumer(
    js: &jetstream::Context,
    stream: &str,
    def: &ConsumerDef,
) -> Result<(consumer::PullConsumer, Change), Error> {
    let what = |verb: &str| format!("{verb} of consumer {} on {stream}", def.name);
    let st = js
        .get_stream_no_info(stream)
        .await
        .map_err(|e| js_err(what("lookup of the stream for the creation"))(e.to_string()))?;
    let existing = st.consumer_info(&def.name).await;
    let change = match existing {
        Ok(info) if def.matches(&info.config) => Change::Unchanged,
        Ok(_) => Change::Updated,
        Err(_) => Change::Created,
    };
    let consumer = if change == Change::Unchanged {
        st.get_consumer::<consumer::pull::Config>(&def.name)
            .await
            .map_err(|e| js_err(what("lookup"))(e.to_string()))?
    } else {
        st.create_consumer(def.to_config())
            .await
            .map_err(|e| js_err(what("create-or-update"))(e.to_string()))?
    };
    Ok((consumer, change))
}

/// Deletes the durable consumer on `stream`; `Ok(false)` when it did not exist.
pub async fn delete_consumer(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> Result<bool, Error> {
    let st = js
        .get_stream_no_info(stream)
        .await
        .map_err(|e| js_err(format!("lookup of stream {stream}"))(e.to_string()))?;
    if st.consumer_info(name).await.is_err() {
        return Ok(false);
    }
    st.delete_consumer(name)
        .await
        .map_err(|e| js_err(format!("deletion of consumer {name} on {stream}"))(e.to_string()))?;
    Ok(true)
}

/// Messages not yet delivered plus messages delivered but not acknowledged, for the
/// consumer on `stream`.
pub async fn consumer_backlog(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> Result<Backlog, Error> {
    let st = js
        .get_stream_no_info(stream)
        .await
        .map_err(|e| js_err(format!("lookup of stream {stream}"))(e.to_string()))?;
    let info = st
        .consumer_info(name)
        .await
        .map_err(|e| js_err(format!("info of consumer {name} on {stream}"))(e.to_string()))?;
    Ok(Backlog {
        pending: info.num_pending,
        ack_pending: info.num_ack_pending as u64,
        delivered_stream_seq: info.delivered.stream_sequence,
    })
}

/// How far a consumer is behind its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Messages not yet delivered.
    pub pending: u64,
    /// Messages delivered but not acknowledged.
    pub ack_pending: u64,
    /// Stream sequence of the last delivered message.
    pub delivered_stream_seq: u64,
}

impl Backlog {
    /// Nothing left to do.
    pub fn is_done(&self) -> bool {
        self.pending == 0 && self.ack_pending == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::subject;

    #[test]
    fn the_repository_definitions_parse_and_name_every_bmon_stream() {
        let defs = Definitions::builtin().unwrap();
        for (name, subjects) in [
            (subject::EVENTS_STREAM, subject::EVENTS_SUBJECTS),
            (subject::LOGS_STREAM, subject::LOGS_SUBJECTS),
            (subject::ALERTS_STREAM, subject::ALERTS_SUBJECTS),
            (subject::DEAD_STREAM, subject::DEAD_SUBJECTS),
        ] {
            let s = defs
                .stream(name)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(s.subjects, vec![subjects.to_string()]);
            assert_eq!(s.storage, Storage::File);
        }
        let events = defs.stream(subject::EVENTS_STREAM).unwrap();
        assert!(events.duplicate_window_secs >= 120);
        assert!(events.max_age_secs > 0 && events.max_bytes > 0);
        assert!(defs.stream(subject::LOGS_STREAM).unwrap().max_bytes > 0);
    }

    #[test]
    fn the_writer_reads_the_three_event_streams() {
        let defs = Definitions::builtin().unwrap();
        let w = defs.consumer("ch-writer").unwrap();
        assert_eq!(
            w.streams,
            [
                subject::EVENTS_STREAM,
                subject::LOGS_STREAM,
                subject::ALERTS_STREAM
            ]
        );
        let c = w.to_config();
        assert_eq!(c.durable_name.as_deref(), Some("ch-writer"));
        assert_eq!(c.ack_policy, consumer::AckPolicy::Explicit);
        assert_eq!(c.deliver_policy, consumer::DeliverPolicy::All);
    }

    #[test]
    fn every_detector_has_a_filtered_durable_on_the_events_and_the_router_reads_alerts() {
        let defs = Definitions::builtin().unwrap();
        for name in detectors::DetectorName::ALL {
            let c = defs.consumer(name.consumer()).unwrap();
            assert_eq!(c.streams, [subject::EVENTS_STREAM], "det-{name}");
            assert!(!c.filter_subjects.is_empty(), "det-{name} reads everything");
            assert!(
                c.filter_subjects
                    .iter()
                    .all(|f| f.starts_with("bmon.ev.") && f.ends_with(".*")),
                "det-{name}: {:?}",
                c.filter_subjects
            );
            // Exactly the kinds the detector reads: a missing one never reaches it.
            let det = detectors::build(name, &detectors::Config::default());
            let mut want: Vec<String> = det
                .inputs()
                .iter()
                .map(|k| subject::event_kind_filter(*k))
                .collect();
            let mut have = c.filter_subjects.clone();
            want.sort();
            have.sort();
            assert_eq!(
                have, want,
                "det-{name} filters vs the kinds its detector reads"
            );
        }
        let chain = defs.consumer("det-chain").unwrap();
        assert!(chain
            .filter_subjects
            .contains(&subject::event_kind_filter(schema::Kind::Reorg)));
        let router = defs.consumer("alertmanager").unwrap();
        assert_eq!(router.streams, [subject::ALERTS_STREAM]);
        for name in crate::app::ConsumerName::ALL {
            assert!(
                defs.consumer(name.as_str()).is_ok(),
                "{name} has no definition"
            );
        }
    }

    #[test]
    fn an_unknown_consumer_lists_the_known_ones() {
        let defs = Definitions::builtin().unwrap();
        let err = defs.consumer("det-nope").unwrap_err().to_string();
        assert!(err.contains("ch-writer"), "{err}");
    }

    #[test]
    fn a_consumer_on_an_undefined_stream_is_refused() {
        let text = "[[streams]]\nname = \"A\"\nsubjects = [\"a.>\"]\n[[consumers]]\nname = \"c\"\nstreams = [\"B\"]\n";
        let err = Definitions::from_toml(text, "t").unwrap_err().to_string();
        assert!(err.contains("undefined stream B"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let text = "[[streams]]\nname = \"A\"\nsubjects = [\"a.>\"]\nmax_agee = 3\n";
        assert!(Definitions::from_toml(text, "t").is_err());
    }

    #[test]
    fn one_filter_subject_uses_the_single_filter_field() {
        let text = "[[streams]]\nname = \"A\"\nsubjects = [\"a.>\"]\n[[consumers]]\nname = \"c\"\nstreams = [\"A\"]\nfilter_subjects = [\"a.b\"]\n";
        let defs = Definitions::from_toml(text, "t").unwrap();
        let c = defs.consumer("c").unwrap().to_config();
        assert_eq!(c.filter_subject, "a.b");
        assert!(c.filter_subjects.is_empty());
    }
}
