//! bmon-cli (being built).
