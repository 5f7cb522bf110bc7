#!/usr/bin/env bash
# The bmon demo, end to end on one machine:
#   bmon-simnet (4 emulated Core nodes: 0.18, 25, 28.1, 30.99; blocks every ~5 s, transactions,
#   one reorg, a partition, an RPC outage; each writes a debug.log in its version's format)
#   -> 4 bmon-agents (ZMQ, RPC, debug.log) -> NATS JetStream -> ch-writer -> ClickHouse, and the
#   detectors (det-chain, det-inflation, det-health, det-propagation, det-compare) -> alerts -> Alertmanager;
#   after about a minute it prints `bmon status`, per block when each node connected it and the
#   spread, the reorgs and the alerts (the reorg at 40 s raises one), read back from ClickHouse,
#   and the address of bmon-web (the web view) with the status of each of its pages.
#   It keeps refreshing until Ctrl-C, which stops everything it started.
#
# BMON_DEMO_SECONDS: seconds before the first report (default 60).
# BMON_DEMO_EXIT_AFTER_REPORT=1: stop after the first report (for scripted runs).
# BMON_DEMO_DIR: where its data and logs go (default .demo).
set -euo pipefail
cd "$(dirname "$0")/.."

first_report=${BMON_DEMO_SECONDS:-60}
dir="${BMON_DEMO_DIR:-$PWD/.demo}"
bin="$PWD/target/debug"

echo "==> building bmon"
cargo build --workspace --bins --quiet

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pids=()
cleanup() {
  trap - EXIT INT TERM
  echo; echo "==> stopping the demo"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  scripts/services.sh stop "$dir"
  echo "demo stopped; logs and data are in $dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A previous demo's leftovers.
[ -d "$dir" ] && scripts/services.sh stop "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"; mkdir -p "$dir/logs"

ch_port=$(free_port); nats_port=$(free_port)
echo "==> starting ClickHouse (127.0.0.1:$ch_port) and NATS JetStream (127.0.0.1:$nats_port)"
scripts/services.sh start "$dir" "$ch_port" "$nats_port"
ch_url="http://127.0.0.1:$ch_port"
nats_url="nats://127.0.0.1:$nats_port"

echo "==> bmon setup (streams, consumers, migrations)"
"$bin/bmon" --nats-url "$nats_url" --clickhouse-url "$ch_url" setup

echo "==> starting bmon-simnet (simnet/scenarios/demo.toml)"
"$bin/bmon-simnet" --scenario simnet/scenarios/demo.toml --truth "$dir/truth.jsonl" \
  --endpoints "$dir/endpoints.json" --debug-log-dir "$dir/nodes" --linger > "$dir/logs/simnet.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do [ -s "$dir/endpoints.json" ] && break; sleep 0.1; done
[ -s "$dir/endpoints.json" ] || { echo "simnet did not start; see $dir/logs/simnet.log" >&2; exit 1; }

echo "==> starting one bmon-agent per node"
python3 - "$dir" "$nats_url" <<'PY'
import json, sys
d, nats = sys.argv[1], sys.argv[2]
for n in json.load(open(f"{d}/endpoints.json")):
    z = n["zmq"]
    open(f"{d}/agent-{n['name']}.toml", "w").write(f'''node = "{n['name']}"
network = "regtest"

[rpc]
url = "{n['rpc_url']}"
user = "{n['rpc_user']}"
password = "{n['rpc_password']}"

[zmq]
sequence = "{z['sequence']}"
rawblock = "{z['rawblock']}"
rawtx = "{z['rawtx']}"

[nats]
url = "{nats}"

[spool]
dir = "{d}/spool-{n['name']}"

[debug_log]
path = "{n.get('debug_log', '')}"
backfill = true

[metrics]
listen = "127.0.0.1:0"
''')
    print(n["name"])
PY
for cfg in "$dir"/agent-*.toml; do
  name=$(basename "$cfg" .toml); name=${name#agent-}
  "$bin/bmon-agent" --config "$cfg" > "$dir/logs/agent-$name.log" 2>&1 &
  pids+=($!)
done

am_port=$(free_port)
echo "==> starting Alertmanager (127.0.0.1:$am_port)"
mkdir -p "$dir/alertmanager"
cat > "$dir/alertmanager/alertmanager.yml" <<YML
route:
  receiver: 'null'
  group_wait: 0s
receivers:
  - name: 'null'
YML
am_bin=$(command -v prometheus-alertmanager || command -v alertmanager)
"$am_bin" --config.file="$dir/alertmanager/alertmanager.yml" --storage.path="$dir/alertmanager/data" \
  --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= > "$dir/logs/alertmanager.log" 2>&1 &
pids+=($!)

# Thresholds for a regtest fleet with a block every ~5 s (the defaults are sized for mainnet).
for name in ch-writer det-chain det-inflation det-health det-propagation det-compare alertmanager; do
  cat > "$dir/consumer-$name.toml" <<TOML
[nats]
url = "$nats_url"

[clickhouse]
url = "$ch_url"
database = "bmon"

[metrics]
listen = "127.0.0.1:0"

[alertmanager]
url = "http://127.0.0.1:$am_port"

[detectors.chain]
rapid_run_blocks = 1000
selfish_check_secs = 10

[detectors.inflation]
network = "regtest"

[detectors.health]
tip_max_age_secs = 120
alert_on_ibd = false
peers_min_baseline = 1000

[detectors.propagation]
block_settle_secs = 20
tx_settle_secs = 20
tx_alerts = false
TOML
done
echo "==> starting bmon-consumer ch-writer, det-chain, det-inflation, det-health, det-propagation, det-compare, alertmanager"
for name in ch-writer det-chain det-inflation det-health det-propagation det-compare alertmanager; do
  "$bin/bmon-consumer" "$name" --config "$dir/consumer-$name.toml" > "$dir/logs/consumer-$name.log" 2>&1 &
  pids+=($!)
done

web_port=$(free_port)
cat > "$dir/web.toml" <<TOML
[web]
listen = "127.0.0.1:$web_port"

[clickhouse]
url = "$ch_url"
database = "bmon"

[nats]
url = "$nats_url"
TOML
echo "==> starting bmon-web: http://127.0.0.1:$web_port/"
"$bin/bmon-web" --config "$dir/web.toml" > "$dir/logs/web.log" 2>&1 &
pids+=($!)
web_url="http://127.0.0.1:$web_port"

report() {
  echo
  echo "==> bmon status"
  "$bin/bmon" --nats-url "$nats_url" --clickhouse-url "$ch_url" status
  echo
  echo "==> blocks: when each node connected them (ms after the first node), read from ClickHouse"
  curl -sS "$ch_url/?database=bmon" --data-binary @- <<'SQL'
SELECT
    height,
    substring(hash, 1, 16) AS block,
    count() AS nodes,
    toDateTime(intDiv(min(first_us), 1000000)) AS first_seen,
    arrayStringConcat(arrayMap(x -> x.2, arraySort(groupArray(
        (lag_us, concat(node, ' +', toString(intDiv(lag_us, 1000)), 'ms'))))), '  ') AS seen_by,
    round(max(lag_us) / 1000, 1) AS spread_ms
FROM
(
    SELECT height, hash, node, first_us, observed_at_us - first_us AS lag_us
    FROM block_connected FINAL
    ANY INNER JOIN
    (
        SELECT hash, min(observed_at_us) AS first_us FROM block_connected FINAL GROUP BY hash
    ) USING hash
)
GROUP BY height, hash
ORDER BY height DESC, first_seen DESC
LIMIT 15
FORMAT PrettyCompactMonoBlock
SQL
  echo
  echo "==> reorgs seen by the agents (ZMQ and debug.log)"
  curl -sS "$ch_url/?database=bmon" --data-binary @- <<'SQL'
SELECT node, source, depth, fork_height, substring(old_tip, 1, 16) AS old_tip, substring(new_tip, 1, 16) AS new_tip,
    toDateTime(intDiv(observed_at_us, 1000000)) AS at
FROM reorg FINAL
ORDER BY observed_at_us, node, source
FORMAT PrettyCompactMonoBlock
SQL
  echo
  echo "==> alerts raised by the detectors (bmon.alerts; also in Alertmanager at http://127.0.0.1:$am_port)"
  curl -sS "$ch_url/?database=bmon" --data-binary @- <<'SQL'
SELECT toDateTime(intDiv(starts_at_us, 1000000)) AS started, alert_kind, severity, state,
    ifNull(alert_node, '') AS node, substring(ifNull(subject, ''), 1, 16) AS object, summary
FROM alerts FINAL
ORDER BY observed_at_us
LIMIT 20
FORMAT PrettyCompactMonoBlock
SQL
  echo "(tables: bmon.block_connected, bmon.tx_seen, bmon.reorg, bmon.node_status, ... — try: curl '$ch_url/?database=bmon' --data 'SELECT * FROM reorg FINAL FORMAT Vertical')"
  echo
  echo "==> the web view: $web_url/ (fleet, fork tree, blocks, transactions, alerts, logs, live logs)"
  tip=$(curl -sS "$ch_url/?database=bmon" --data 'SELECT new_tip FROM reorg FINAL ORDER BY observed_at_us DESC LIMIT 1' || true)
  pages="/ /tips /alerts /logs /live /mempools /validation /peers"
  [ -n "$tip" ] && pages="$pages /block/$tip"
  line="   "
  for page in $pages; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$web_url$page" || echo 000)
    line="$line ${page:0:24} $code"
  done
  echo "$line"
}

echo "==> the fleet is running; first report in ${first_report}s (Ctrl-C stops everything)"
for i in $(seq "$first_report" -1 1); do
  if (( i % 10 == 0 )); then echo "    ${i}s ..."; fi
  sleep 1
done
report
if [ "${BMON_DEMO_EXIT_AFTER_REPORT:-0}" = "1" ]; then exit 0; fi
while true; do
  sleep 30
  report
done
