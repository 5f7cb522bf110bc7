//! simnet's error type.

/// Everything that can go wrong while loading a scenario or starting and running a fleet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario is not valid TOML or has unknown or mistyped fields: fix the file.
    #[error("scenario is not valid: {0}")]
    ScenarioSyntax(String),
    /// The scenario file cannot be read: check the path.
    #[error("cannot read scenario {path}")]
    ScenarioRead {
        /// The path given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The scenario parsed but breaks cross-field rules; every problem is listed.
    #[error("scenario has problems: {}", .0.join("; "))]
    ScenarioInvalid(Vec<String>),
    /// The truth file cannot be created.
    #[error("cannot create truth file {path}")]
    TruthFile {
        /// The path given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A ZMQ socket cannot be created or bound.
    #[error("cannot set up zmq {topic} socket of node {node}")]
    ZmqBind {
        /// Node name.
        node: String,
        /// ZMQ topic.
        topic: String,
        /// Why.
        #[source]
        source: zmq::Error,
    },
    /// The RPC listener cannot be bound (a fixed port may be taken).
    #[error("cannot bind the rpc listener of node {node}")]
    RpcBind {
        /// Node name.
        node: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A node's debug.log cannot be created or opened: check the directory.
    #[error("cannot open debug.log {path}")]
    DebugLog {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A background task of the fleet panicked or was aborted.
    #[error("fleet task {task} failed: {reason}")]
    Task {
        /// Which task.
        task: String,
        /// What the runtime reported.
        reason: String,
    },
}
