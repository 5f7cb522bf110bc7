//! simnet: a fleet of emulated Bitcoin Core nodes for bmon's tests and demo.
//!
//! Each node answers JSON-RPC over HTTP and publishes ZMQ notifications the way Bitcoin Core
//! v30 does (the fixtures in `bitcoin-core-v30/` are the reference), while one simulation task
//! mines real regtest blocks, makes transactions, relays both along delayed links and injects
//! reorgs, partitions and faults from a [`Scenario`]. Everything each node did is written to a
//! truth file ([`TruthRecord`]) to compare bmon's observations with.
//!
//! - [`scenario`]: the TOML scenario and its validation.
//! - [`clock`]: the simulated clock (`time_scale`) and how it relates to the wall clock.
//! - [`chain`], [`mempool`]: one node's block tree, UTXO set, coin statistics and mempool.
//! - [`policy`]: a node's relay policy (`-minrelaytxfee`, `-maxmempool`, `-blocksonly`) and
//!   Core's fee-rate arithmetic; [`holdings`]: which transactions each node holds and why it
//!   lacks the others.
//! - [`debug_log`]: each node's debug.log, in the line format of Core 0.18, 25 or 30.
//! - [`miner`]: blocks (BIP34, witness commitment, regtest PoW) and anyone-can-spend txs.
//! - [`node`]: how a node reacts to blocks and transactions, and what it publishes.
//! - `network` (private): the simulation loop (timeline, relay, injected events).
//! - [`rpc`]: the JSON-RPC server; [`zmq`]: the ZMQ publishers; [`truth`]: the truth file.
//! - [`fleet`]: start, observe and stop a fleet.

#![recursion_limit = "256"]

pub mod chain;
pub mod clock;
pub mod debug_log;
pub mod error;
pub mod fleet;
pub mod holdings;
pub mod mempool;
pub mod miner;
mod network;
pub mod node;
pub mod policy;
pub mod rpc;
pub mod scenario;
pub mod truth;
pub mod zmq;

pub use clock::SimClock;
pub use debug_log::LogFormat;
pub use error::Error;
pub use fleet::{Fleet, FleetOptions, NodeEndpoints};
pub use scenario::Scenario;
pub use truth::{
    mempools_at_end, Incident, MempoolAtEnd, MissingTx, NotHeldReason, TruthEvent, TruthRecord,
    TruthSink,
};
