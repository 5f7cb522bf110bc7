#!/usr/bin/env bash
# Runs bmon's benchmarks (release builds). Each prints its figure beside its target and PASS/MISS:
#   debuglog/benches/parse.rs      debug.log parsing, lines/s on one core (1M-line generated log),
#                                  then per Core v30 log prefix shape (micros, threads, locations, levels)
#   consumers/benches/pipeline.rs  JetStream -> ch-writer -> ClickHouse events/s, beside raw NATS
#                                  and raw ClickHouse rates measured in the same run
#   detectors/benches/apply.rs     detector apply() throughput, events/s per detector
#   detectors/benches/compare.rs   one mempool comparison round, 10 nodes x 300,000 transactions
#   agent/benches/mirror.rs        the agent's mempool mirror: notifications applied per second
#   consumers/benches/alert_latency.rs  event -> alert latency p50/p99 through NATS and det-chain,
#                                  and events/s through a detector consumer
#   web/benches/pages.rs           every bmon-web page on a ClickHouse holding ~1M events, p50/max
#                                  beside the 200 ms target
#   e2e/benches/fleet.rs           50 simnet nodes at mainnet's transaction rate, one bmon-agent
#                                  process each: events/s, ch-writer lag p99, agent CPU and RSS
# The services the benches need are started by the benches themselves on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
cargo build --release --quiet -p bmon-agent   # the fleet bench runs one agent process per node
for b in "bmon-debuglog parse" "bmon-consumers pipeline" "bmon-detectors apply" "bmon-detectors compare" "bmon-agent mirror" "bmon-consumers alert_latency" "bmon-web pages" "bmon-e2e fleet"; do
  set -- $b
  echo "==> cargo bench -p $1 --bench $2"
  cargo bench --quiet -p "$1" --bench "$2" 2>&1 | grep -v '^\s*\(Compiling\|Finished\|Running\)' || status=1
  echo
done
exit $status
