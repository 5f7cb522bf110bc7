//! bmon-agent (being built).
