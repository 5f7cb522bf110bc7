//! Event kinds and their payloads.
//!
//! Each kind has a name (its subject token and ClickHouse table name), a payload struct and a
//! natural key from which its [`crate::EventId`] is derived. Payloads are grouped by concern:
//! [`node`] (node status), [`block`] (blocks, reorgs, chain tips, the UTXO set), [`tx`]
//! (mempool entries and removals), [`mempool`] (whole-mempool and template snapshots),
//! [`logged`] (what only debug.log tells), [`alert`] (detector output) and [`gap`] (agent loss).
//!
//! Adding a field with `#[serde(default)]` is compatible; changing what a field means is not and
//! needs [`crate::SCHEMA_VERSION`] bumped.

pub mod alert;
pub mod block;
pub mod gap;
pub mod logged;
pub mod mempool;
pub mod node;
pub mod tx;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use alert::{Alert, AlertState, Evidence, Severity};
pub use block::{
    BlockConnected, BlockDisconnected, ChainTip, ChainTips, Reorg, TipStatus, UtxoBlockInfo,
    UtxoStats,
};
pub use gap::Gap;
pub use logged::{
    BlockDownloadTimeout, BlockSeen, BlockStage, BlockTiming, CompactReconstruction, InvalidBlock,
    LogBatch, LogLine, TimingStage, TxRejected, TxReplaced, Warning,
};
pub use mempool::{MempoolSnapshot, MirrorFigures, TemplateSnapshot, TemplateTx, TxSetDigest};
pub use node::{NodeStatus, Peer, PeerSnapshot, RelayPolicy};
pub use tx::{RemovalReason, TxRemoved, TxSeen};

/// Where a node-side fact was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A ZMQ notification.
    Zmq,
    /// An RPC answer.
    Rpc,
    /// A debug.log line.
    Log,
}

impl Source {
    /// The lowercase name used in ClickHouse and in ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Zmq => "zmq",
            Source::Rpc => "rpc",
            Source::Log => "log",
        }
    }
}

/// What makes one occurrence of a kind unique on its node; the event id is derived from it.
///
/// Repeatable occurrences (a status poll, a rejection) include their time or a node-side
/// sequence; one-off facts (a block connected) use the object's hash.
pub trait NaturalKey {
    /// The key parts; `observed_at` is the envelope's time, for kinds keyed by time.
    fn key_parts(&self, observed_at: crate::UnixMicros) -> Vec<Vec<u8>>;
}

/// Key part helper: a time.
pub(crate) fn time_part(t: crate::UnixMicros) -> Vec<u8> {
    t.0.to_le_bytes().to_vec()
}

macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal => $payload:ty ),+ $(,)?) => {
        /// The kind of an event: its subject token and ClickHouse table name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $( $(#[$doc])* $variant, )+
        }

        impl Kind {
            /// Every kind this build knows, in declaration order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),+];

            /// The kind's name (`block_connected`, ...).
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$variant => $name,)+ }
            }
        }

        impl FromStr for Kind {
            type Err = crate::Error;
            fn from_str(s: &str) -> Result<Self, crate::Error> {
                match s {
                    $($name => Ok(Kind::$variant),)+
                    other => Err(crate::Error::UnknownKind { kind: other.to_string(), event_id: String::new() }),
                }
            }
        }

        /// One event's payload, tagged by its kind.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $( $(#[$doc])* $variant($payload), )+
        }

        impl Event {
            /// The kind of this payload.
            pub fn kind(&self) -> Kind {
                match self { $(Event::$variant(_) => Kind::$variant,)+ }
            }

            pub(crate) fn serialize_payload<S: serde::ser::SerializeStruct>(&self, s: &mut S) -> Result<(), S::Error> {
                match self { $(Event::$variant(p) => s.serialize_field("payload", p),)+ }
            }

            pub(crate) fn deserialize_payload<'de, A: serde::de::MapAccess<'de>>(kind: Kind, map: &mut A) -> Result<Event, A::Error> {
                match kind { $(Kind::$variant => Ok(Event::$variant(map.next_value::<$payload>()?)),)+ }
            }

            /// The parts of this occurrence's natural key (see [`NaturalKey`]).
            pub fn key_parts(&self, observed_at: crate::UnixMicros) -> Vec<Vec<u8>> {
                match self { $(Event::$variant(p) => p.key_parts(observed_at),)+ }
            }

            /// Serializes just the payload with its field names to JSON-like serializers
            /// (used by `bmon parse-log` and `bmon tail`).
            pub fn serialize_fields<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self { $(Event::$variant(p) => p.serialize(s),)+ }
            }
        }

        $(
            impl From<$payload> for Event {
                fn from(p: $payload) -> Event { Event::$variant(p) }
            }
        )+
    };
}

kinds! {
    /// Periodic RPC summary of one node.
    NodeStatus = "node_status" => NodeStatus,
    /// A node first saw a block at some stage (header, compact block, full block, tip).
    BlockSeen = "block_seen" => BlockSeen,
    /// A node connected a block to its active chain.
    BlockConnected = "block_connected" => BlockConnected,
    /// A node disconnected a block from its active chain.
    BlockDisconnected = "block_disconnected" => BlockDisconnected,
    /// A node switched from one branch to another.
    Reorg = "reorg" => Reorg,
    /// The node's set of chain tips changed.
    ChainTips = "chain_tips" => ChainTips,
    /// Validation timings of one block (`-debug=bench`, compact block reconstruction).
    BlockTiming = "block_timing" => BlockTiming,
    /// A node found a block invalid.
    InvalidBlock = "invalid_block" => InvalidBlock,
    /// A block download from a peer timed out.
    BlockDownloadTimeout = "block_download_timeout" => BlockDownloadTimeout,
    /// A transaction entered the node's mempool.
    TxSeen = "tx_seen" => TxSeen,
    /// A transaction left the node's mempool.
    TxRemoved = "tx_removed" => TxRemoved,
    /// The node rejected a transaction relayed by a peer.
    TxRejected = "tx_rejected" => TxRejected,
    /// A transaction replaced another in the mempool (RBF).
    TxReplaced = "tx_replaced" => TxReplaced,
    /// Summary of the whole mempool.
    MempoolSnapshot = "mempool_snapshot" => MempoolSnapshot,
    /// Summary of the node's current block template.
    TemplateSnapshot = "template_snapshot" => TemplateSnapshot,
    /// The node's peers.
    PeerSnapshot = "peer_snapshot" => PeerSnapshot,
    /// UTXO set statistics at one block.
    UtxoStats = "utxo_stats" => UtxoStats,
    /// A warning the node logged.
    Warning = "warning" => Warning,
    /// A batch of raw debug.log lines (stream `BMON_LOGS`).
    LogBatch = "log_batch" => LogBatch,
    /// A detector's alert (stream `BMON_ALERTS`).
    Alert = "alert" => Alert,
    /// The agent lost events (spool full or unwritable) between two instants.
    Gap = "gap" => Gap,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
