//! What every bmon process shares, written once: the NATS connection ([`nats`]: a list of
//! servers for a cluster, user and password, a credentials file or an nkey seed, TLS with
//! the operator's CA and client certificate, and the user's own inbox prefix), secrets that
//! never print ([`Secret`]), waiting for SIGTERM or SIGINT ([`shutdown`]), and structured logs
//! ([`logging`]), the `/metrics` endpoint ([`metrics`]), and reading a configuration from
//! defaults, a file and the environment ([`config`]).

pub mod config;
pub mod logging;
pub mod metrics;
pub mod nats;
pub mod secret;
pub mod shutdown;

pub use secret::Secret;
