//! bmon's wire contract: the event [`Envelope`], one payload type per event [`Kind`], the
//! deterministic [`EventId`], NATS subject and header names, and the MessagePack codec.
//!
//! No I/O and no async here: the agent builds envelopes, consumers decode them, and both agree
//! only through this crate.
//!
//! - [`ids`]: newtypes for node names, event ids, heights and timestamps.
//! - [`event`]: one module per event kind, each with its payload struct.
//! - [`envelope`]: the envelope and its MessagePack encoding (named fields).
//! - [`subject`]: stream names, subject names and NATS header names.
//! - [`subsidy`]: the block subsidy schedule (mainnet, testnets, regtest).

pub mod envelope;
pub mod error;
pub mod event;
pub mod ids;
pub mod subject;
pub mod subsidy;

pub use envelope::{Envelope, SCHEMA_VERSION};
pub use error::Error;
pub use event::{Event, Kind};
pub use ids::{EventId, Height, NodeId, UnixMicros};
