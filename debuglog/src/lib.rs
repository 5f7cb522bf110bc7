//! bmon-debuglog (being built).
