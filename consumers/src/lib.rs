//! bmon-consumers (being built).
