# bmon everyday commands. `scripts/just RECIPE` installs `just` itself when missing.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Install what tests, demo and benchmarks need (Debian packages, nats-server, just, nextest).
deps:
    bash scripts/install-deps.sh

# Build every crate, tests and benches included (one build for the whole run).
build: deps
    cargo build --workspace --all-targets

# Run the whole test suite against one shared ClickHouse started for the run.
test: build
    #!/usr/bin/env bash
    set -euo pipefail
    dir=$(mktemp -d /tmp/bmon-test.XXXXXX)
    ch_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    nats_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    trap 'scripts/services.sh stop "$dir"; rm -rf "$dir"' EXIT
    scripts/services.sh start "$dir" "$ch_port" "$nats_port"
    export BMON_TEST_CLICKHOUSE_URL="http://127.0.0.1:$ch_port"
    cargo nextest run --workspace --no-fail-fast --test-threads 2

# Run the benchmarks; each prints its figure beside its target.
bench: deps
    bash scripts/bench.sh

# Run the demo: a simulated 4-node fleet -> agents -> NATS -> ch-writer -> ClickHouse.
demo: deps
    bash scripts/demo.sh

# Format and lint.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
