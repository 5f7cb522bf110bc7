//! The envelope every bmon message travels in, and its MessagePack encoding.
//!
//! On the wire an envelope is a MessagePack map with named fields, in this order:
//! `v` (schema version), `id`, `node`, `observed_at`, `kind`, `payload`. Field names (not
//! positions) let old readers skip fields added later. `kind` precedes `payload` so a reader
//! knows the payload's type when it reaches it.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::{Event, Kind};
use crate::{subject, Error, EventId, NodeId, UnixMicros};

/// Highest schema version this build writes and reads.
pub const SCHEMA_VERSION: u16 = 1;

/// One event from one node (or one detector), with its identity and time.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Schema version the envelope was written with.
    pub schema_version: u16,
    /// Deterministic id of the occurrence (also the `Nats-Msg-Id`).
    pub id: EventId,
    /// The node that saw it; for detector output, the detector's consumer name.
    pub node: NodeId,
    /// When it was seen: the agent's clock, or the log line's own timestamp for log-derived
    /// events; for detector output, the event time of the input that caused it.
    pub observed_at: UnixMicros,
    /// The payload, tagged by kind.
    pub event: Event,
}

impl Envelope {
    /// Wraps an event, deriving its id from node, kind and the payload's natural key.
    pub fn new(node: NodeId, observed_at: UnixMicros, event: impl Into<Event>) -> Envelope {
        let event = event.into();
        let parts = event.key_parts(observed_at);
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let id = EventId::derive(&node, event.kind().as_str(), &refs);
        Envelope {
            schema_version: SCHEMA_VERSION,
            id,
            node,
            observed_at,
            event,
        }
    }

    /// The event's kind.
    pub fn kind(&self) -> Kind {
        self.event.kind()
    }

    /// The subject this envelope is published on.
    pub fn subject(&self) -> String {
        subject::for_event(self.kind(), &self.node, &self.event)
    }

    /// NATS headers to publish with: `Nats-Msg-Id`, `Bmon-Kind`, `Bmon-Node`, `Content-Type`.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (subject::HEADER_MSG_ID, self.id.to_hex()),
            (subject::HEADER_KIND, self.kind().as_str().to_string()),
            (subject::HEADER_NODE, self.node.to_string()),
            (
                subject::HEADER_CONTENT_TYPE,
                subject::CONTENT_TYPE.to_string(),
            ),
        ]
    }

    /// Encodes to MessagePack with named fields.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        rmp_serde::to_vec_named(self).map_err(|e| Error::Encode {
            reason: e.to_string(),
        })
    }

    /// Decodes MessagePack; an unknown kind or a newer schema gives its own error variant.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, Error> {
        match rmp_serde::from_slice::<Envelope>(bytes) {
            Ok(env) => Ok(env),
            Err(e) => Err(classify(bytes, e)),
        }
    }
}

/// Works out why decoding failed, by reading just the header fields.
fn classify(bytes: &[u8], err: rmp_serde::decode::Error) -> Error {
    #[derive(Deserialize)]
    struct Header {
        v: Option<u16>,
        id: Option<EventId>,
        kind: Option<String>,
    }
    let Ok(h) = rmp_serde::from_slice::<Header>(bytes) else {
        return Error::Malformed {
            reason: err.to_string(),
        };
    };
    let event_id = h.id.map(|i| i.to_hex()).unwrap_or_default();
    if let Some(v) = h.v.filter(|v| *v > SCHEMA_VERSION) {
        return Error::NewerSchema {
            found: v,
            supported: SCHEMA_VERSION,
            event_id,
        };
    }
    if let Some(kind) = h.kind.filter(|k| k.parse::<Kind>().is_err()) {
        return Error::UnknownKind { kind, event_id };
    }
    Error::Malformed {
        reason: err.to_string(),
    }
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Envelope", 6)?;
        st.serialize_field("v", &self.schema_version)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("node", &self.node)?;
        st.serialize_field("observed_at", &self.observed_at)?;
        st.serialize_field("kind", &self.kind())?;
        self.event.serialize_payload(&mut st)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const FIELDS: &[&str] = &["v", "id", "node", "observed_at", "kind", "payload"];
        d.deserialize_struct("Envelope", FIELDS, EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a bmon envelope map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut v = None;
        let mut id = None;
        let mut node = None;
        let mut observed_at = None;
        let mut kind: Option<Kind> = None;
        let mut event = None;
        while let Some(key) = map.next_key::<&str>()? {
            match key {
                "v" => {
                    let version: u16 = map.next_value()?;
                    if version > SCHEMA_VERSION {
                        return Err(de::Error::custom(format!(
                            "schema version {version} is newer than {SCHEMA_VERSION}"
                        )));
                    }
                    v = Some(version);
                }
                "id" => id = Some(map.next_value()?),
                "node" => node = Some(map.next_value()?),
                "observed_at" => observed_at = Some(map.next_value()?),
                "kind" => kind = Some(map.next_value()?),
                "payload" => {
                    let k = kind.ok_or_else(|| de::Error::custom("payload before kind"))?;
                    event = Some(Event::deserialize_payload(k, &mut map)?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            schema_version: v.ok_or_else(|| de::Error::missing_field("v"))?,
            id: id.ok_or_else(|| de::Error::missing_field("id"))?,
            node: node.ok_or_else(|| de::Error::missing_field("node"))?,
            observed_at: observed_at.ok_or_else(|| de::Error::missing_field("observed_at"))?,
            event: event.ok_or_else(|| de::Error::missing_field("payload"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::*;
    use crate::Height;
    use bitcoin::{Amount, BlockHash};
    use std::str::FromStr;

    fn hash(s: &str) -> BlockHash {
        BlockHash::from_str(s).unwrap()
    }

    fn sample() -> Envelope {
        let ev = BlockConnected {
            hash: hash("4a3a4a0eadc2f5140e0bc5552973d1b380248cf5be2b9a0fe42f4ea1507201c0"),
            height: Height(111),
            prev: hash("6acf02d48596ac5800b53fd050316e2d15016b7987abaf20f17788959e8443bd"),
            header_time: 1795621980,
            size: 1474,
            weight: 3934,
            tx_count: 7,
            coinbase_value: Amount::from_sat(5_000_020_585),
            subsidy: Amount::from_sat(5_000_000_000),
            fees: Some(Amount::from_sat(20_585)),
            miner_tag: None,
            occurrence: 0,
            source: Source::Zmq,
        };
        Envelope::new(
            NodeId::new("node1").unwrap(),
            UnixMicros(1_795_621_980_000_000),
            ev,
        )
    }

    #[test]
    fn round_trips_with_named_fields() {
        let env = sample();
        let bytes = env.encode().unwrap();
        assert_eq!(Envelope::decode(&bytes).unwrap(), env);
        // Field names are on the wire.
        let needle = b"coinbase_value";
        assert!(bytes.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn same_occurrence_same_id_and_different_occurrence_different_id() {
        let a = sample();
        let b = sample();
        assert_eq!(a.id, b.id);
        let mut c = sample();
        if let Event::BlockConnected(p) = &mut c.event {
            p.occurrence = 1;
        }
        let c = Envelope::new(c.node.clone(), c.observed_at, c.event.clone());
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn headers_and_subject_name_the_event() {
        let env = sample();
        assert_eq!(env.subject(), "bmon.ev.block_connected.node1");
        let h = env.headers();
        assert_eq!(h[0], ("Nats-Msg-Id", env.id.to_hex()));
        assert_eq!(h[1].1, "block_connected");
        assert_eq!(h[2].1, "node1");
        assert_eq!(h[3].1, "application/msgpack");
    }

    /// An envelope-shaped map written by hand, as a newer or foreign writer would.
    #[derive(serde::Serialize)]
    struct Foreign<'a> {
        v: u16,
        id: EventId,
        node: &'a str,
        observed_at: i64,
        kind: &'a str,
        payload: Warning,
    }

    fn foreign(v: u16, kind: &str) -> Vec<u8> {
        let f = Foreign {
            v,
            id: sample().id,
            node: "node1",
            observed_at: 1,
            kind,
            payload: Warning {
                message: "x".into(),
            },
        };
        rmp_serde::to_vec_named(&f).unwrap()
    }

    #[test]
    fn a_hand_written_envelope_decodes() {
        let env = Envelope::decode(&foreign(SCHEMA_VERSION, "warning")).unwrap();
        assert_eq!(env.kind(), Kind::Warning);
    }

    #[test]
    fn unknown_kind_is_a_clear_error() {
        let bytes = foreign(SCHEMA_VERSION, "future_kind");
        match Envelope::decode(&bytes) {
            Err(Error::UnknownKind { kind, event_id }) => {
                assert_eq!(kind, "future_kind");
                assert_eq!(event_id, sample().id.to_hex());
            }
            other => panic!("expected UnknownKind, got {other:?}"),
        }
    }

    #[test]
    fn newer_schema_is_a_clear_error() {
        let bytes = foreign(SCHEMA_VERSION + 1, "warning");
        assert!(matches!(
            Envelope::decode(&bytes),
            Err(Error::NewerSchema { found, .. }) if found == SCHEMA_VERSION + 1
        ));
    }

    #[test]
    fn garbage_and_truncation_are_malformed_not_panics() {
        let good = sample().encode().unwrap();
        for bytes in [&b""[..], b"\xc1", b"hello", &good[..good.len() / 2]] {
            assert!(matches!(
                Envelope::decode(bytes),
                Err(Error::Malformed { .. })
            ));
        }
    }

    #[test]
    fn every_kind_name_parses_back() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>().unwrap(), *k);
        }
    }
}
