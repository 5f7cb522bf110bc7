//! Where the agent's facts come from: bitcoind's ZMQ notifications ([`zmq`]) and its JSON-RPC
//! interface ([`rpc`], answers typed in [`answers`]).

pub mod answers;
pub mod rpc;
pub mod zmq;
