//! The one error type of the schema crate.

/// Everything that can go wrong turning bytes into an [`crate::Envelope`] or back.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a bmon envelope at all (truncated, not MessagePack, a field of the
    /// wrong type). Consumers treat this as poison: terminate the message and count it.
    #[error("malformed envelope: {reason}")]
    Malformed {
        /// What the decoder found wrong.
        reason: String,
    },
    /// The envelope names a kind this build does not know (a newer agent). Poison for this
    /// consumer; upgrade the consumer to process it.
    #[error("unknown event kind {kind:?} (event {event_id}); upgrade this bmon consumer")]
    UnknownKind {
        /// The kind string found in the envelope.
        kind: String,
        /// The event id, as hex, when it could be read.
        event_id: String,
    },
    /// The envelope was written with a newer schema version than this build reads.
    #[error("event {event_id} has schema version {found}, this build reads up to {supported}; upgrade this bmon consumer")]
    NewerSchema {
        /// Version in the envelope.
        found: u16,
        /// Highest version this build reads.
        supported: u16,
        /// The event id, as hex, when it could be read.
        event_id: String,
    },
    /// Encoding failed; only possible for a payload that cannot be represented (a bug).
    #[error("cannot encode event: {reason}")]
    Encode {
        /// What the encoder reported.
        reason: String,
    },
    /// A node name is not usable as the last token of a NATS subject.
    #[error("invalid node name {name:?}: use 1-64 characters from a-z, A-Z, 0-9, '-' and '_'")]
    InvalidNodeName {
        /// The rejected name.
        name: String,
    },
    /// An event id string is not 64 hex digits.
    #[error("invalid event id {id:?}: expected 64 hex digits")]
    InvalidEventId {
        /// The rejected text.
        id: String,
    },
}
