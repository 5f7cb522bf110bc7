//! Identifier newtypes: node names, event ids, block heights and timestamps.

use std::fmt;
use std::str::FromStr;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::hex::{DisplayHex, FromHex};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The name of a monitored node, as configured for its agent (`node0`, `v27-eu`, ...).
///
/// It is the last token of every subject the node publishes on, so it is restricted to
/// characters that are safe there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

impl NodeId {
    /// Checks and wraps a node name.
    pub fn new(name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(NodeId(name))
        } else {
            Err(Error::InvalidNodeName { name })
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NodeId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        NodeId::new(s)
    }
}

impl From<NodeId> for String {
    fn from(n: NodeId) -> String {
        n.0
    }
}

impl FromStr for NodeId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        NodeId::new(s)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Deterministic id of one occurrence: SHA-256 over node, kind and the occurrence's natural key.
///
/// Publishing the same occurrence twice gives the same id (JetStream's `Nats-Msg-Id`
/// de-duplicates it, ClickHouse collapses it); two real occurrences have different keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub [u8; 32]);

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        bytes32::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        bytes32::deserialize(d).map(EventId)
    }
}

impl EventId {
    /// Derives the id of an occurrence from its node, kind and natural key parts.
    ///
    /// Each part is length-prefixed so that `["ab", "c"]` and `["a", "bc"]` differ.
    pub fn derive(node: &NodeId, kind: &str, key_parts: &[&[u8]]) -> EventId {
        let mut engine = sha256::Hash::engine();
        for part in [node.as_str().as_bytes(), kind.as_bytes()]
            .into_iter()
            .chain(key_parts.iter().copied())
        {
            engine.input(&(part.len() as u64).to_le_bytes());
            engine.input(part);
        }
        EventId(sha256::Hash::from_engine(engine).to_byte_array())
    }

    /// Lowercase hex, as used in `Nats-Msg-Id` and in ClickHouse.
    pub fn to_hex(&self) -> String {
        self.0.to_lower_hex_string()
    }
}

impl FromStr for EventId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        <[u8; 32]>::from_hex(s)
            .map(EventId)
            .map_err(|_| Error::InvalidEventId { id: s.to_string() })
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.to_hex())
    }
}

/// A block height (not a locktime height).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Height(pub u32);

impl Height {
    /// The height below this one, or `None` at genesis.
    pub fn prev(self) -> Option<Height> {
        self.0.checked_sub(1).map(Height)
    }

    /// The height above this one.
    pub fn next(self) -> Height {
        Height(self.0.saturating_add(1))
    }

    /// Number of blocks from `other` up to `self` (0 if `other` is higher).
    pub fn blocks_since(self, other: Height) -> u32 {
        self.0.saturating_sub(other.0)
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Microseconds since the Unix epoch (UTC).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixMicros(pub i64);

impl UnixMicros {
    /// Whole seconds since the epoch (floor).
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// From whole seconds since the epoch.
    pub fn from_secs(secs: i64) -> Self {
        UnixMicros(secs.saturating_mul(1_000_000))
    }

    /// The difference `self - earlier` in microseconds (negative if `earlier` is later).
    pub fn micros_since(self, earlier: UnixMicros) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This instant plus `micros` (saturating).
    pub fn plus_micros(self, micros: i64) -> Self {
        UnixMicros(self.0.saturating_add(micros))
    }

    /// RFC 3339 in UTC with microseconds (`2026-11-25T15:53:31.155520Z`), as Alertmanager and
    /// operators read times.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            (sod % 3600) / 60,
            sod % 60
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day): Howard Hinnant's
/// `civil_from_days`, exact for every representable day.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for UnixMicros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Serde for 32-byte values: MessagePack `bin` on the wire, hex in human-readable formats.
pub mod bytes32 {
    use std::fmt;

    use bitcoin::hex::{DisplayHex, FromHex};
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Serializes 32 bytes.
    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&v.to_lower_hex_string())
        } else {
            s.serialize_bytes(v)
        }
    }

    /// Deserializes 32 bytes from `bin`, a sequence of numbers, or hex text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = [u8; 32];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("32 bytes or 64 hex digits")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<[u8; 32], E> {
                v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<[u8; 32], E> {
                <[u8; 32]>::from_hex(v).map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; 32], A::Error> {
                let mut out = [0u8; 32];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(out)
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_must_be_subject_safe() {
        assert!(NodeId::new("node-0_a").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", &"x".repeat(65)] {
            assert!(NodeId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn times_print_as_rfc3339_utc_with_microseconds() {
        assert_eq!(UnixMicros(0).to_rfc3339(), "1970-01-01T00:00:00.000000Z");
        // The fixtures' InvalidChainFound for block 121 on node0.
        assert_eq!(
            UnixMicros(1_795_622_011_155_520).to_rfc3339(),
            "2026-11-25T15:53:31.155520Z"
        );
        assert_eq!(
            UnixMicros(951_868_799_999_999).to_rfc3339(),
            "2000-02-29T23:59:59.999999Z"
        );
        assert_eq!(
            UnixMicros(-500_000).to_rfc3339(),
            "1969-12-31T23:59:59.500000Z"
        );
    }

    #[test]
    fn event_id_depends_on_every_part_and_on_boundaries() {
        let n = NodeId::new("n").unwrap();
        let a = EventId::derive(&n, "k", &[b"ab", b"c"]);
        let b = EventId::derive(&n, "k", &[b"a", b"bc"]);
        let c = EventId::derive(&n, "k", &[b"ab", b"c"]);
        assert_ne!(a, b);
        assert_eq!(a, c);
        let other_node = EventId::derive(&NodeId::new("m").unwrap(), "k", &[b"ab", b"c"]);
        assert_ne!(a, other_node);
        assert_eq!(a.to_hex().parse::<EventId>().unwrap(), a);
        assert!("zz".parse::<EventId>().is_err());
    }
}
