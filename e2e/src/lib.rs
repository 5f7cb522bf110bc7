//! End-to-end tests across bmon's parts live in `tests/`; this library is empty.
