//! bmon-simnet (being built).
