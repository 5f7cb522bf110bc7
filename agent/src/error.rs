//! The agent's error type.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ConfigError;
use crate::sources::rpc::RpcError;
use crate::spool::SpoolError;

/// Everything that stops the agent. Per-message problems (a malformed frame, a failed poll) are
/// counted and logged where they happen and never become an `Error`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable. Fix the file or environment.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An RPC call failed in a way waiting does not fix (401, an unsupported answer).
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The node runs a different chain than configured. Fix `network` or the RPC URL.
    #[error("the node at {url} runs chain {node_chain:?}, the config says {configured}")]
    WrongChain {
        /// RPC URL.
        url: String,
        /// What `getblockchaininfo.chain` says.
        node_chain: String,
        /// The configured network.
        configured: String,
    },
    /// A ZMQ socket could not be set up.
    #[error("zmq {endpoint}: {reason}")]
    Zmq {
        /// Endpoint.
        endpoint: String,
        /// What libzmq reported.
        reason: String,
    },
    /// The NATS client could not be created.
    #[error("nats {url}: {reason}")]
    NatsConnect {
        /// Server URL.
        url: String,
        /// What the client reported.
        reason: String,
    },
    /// Another agent holds this agent's spool directory or debug.log position.
    #[error(
        "the {what} {path} is locked by {holder}: run one agent per node, each with its own \
         state (node name, state_dir, spool.dir, debug_log.state_file)"
    )]
    StateInUse {
        /// `spool directory` or `debug.log position`.
        what: &'static str,
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as its lock file says (`bmon-agent for node node0, pid 1234`).
        holder: String,
    },
    /// The state lock cannot be taken (an unwritable directory, a filesystem without locks).
    #[error("cannot lock {path}: {reason}")]
    StateLock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The spool directory cannot be used.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The publisher stopped while sources still had events for it (it panicked or its
    /// channel closed): the agent stops so its supervisor restarts it.
    #[error("the publisher stopped before the sources")]
    PublisherGone,
    /// A task of the agent panicked or ended abnormally; the agent stops so its supervisor
    /// restarts it.
    #[error("{task} failed: {reason}")]
    TaskFailed {
        /// Which task (`publisher`, `debug.log source`, `zmq thread`).
        task: &'static str,
        /// The panic message or what went wrong.
        reason: String,
    },
    /// `/metrics` cannot listen.
    #[error("cannot listen for /metrics on {addr}: {reason}")]
    MetricsListen {
        /// Address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}
