//! Where the agent's facts come from: bitcoind's ZMQ notifications ([`zmq`]), its JSON-RPC
//! interface ([`rpc`], answers typed in [`answers`]) and its debug.log ([`debuglog`]).

pub mod answers;
pub mod debuglog;
pub mod rpc;
pub mod zmq;
