#!/usr/bin/env bash
# Starts or stops a local ClickHouse and NATS (JetStream) for the test run or the demo.
#   scripts/services.sh start DIR CH_HTTP_PORT NATS_PORT
#   scripts/services.sh stop DIR
# Everything listens on 127.0.0.1 only and keeps its data under DIR.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?directory}
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)

ch_config() { # DIR HTTP TCP
  cat <<XML
<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>$1/ch/log/server.log</log><errorlog>$1/ch/log/server.err.log</errorlog><size>10M</size><count>2</count></logger>
    <http_port>$2</http_port>
    <tcp_port>$3</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>$1/ch/data/</path>
    <tmp_path>$1/ch/tmp/</tmp_path>
    <user_files_path>$1/ch/user_files/</user_files_path>
    <format_schema_path>$1/ch/format_schemas/</format_schema_path>
    <users_config>/etc/clickhouse-server/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>200</max_concurrent_queries>
</yandex>
XML
}

wait_for() { # what seconds command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$what did not come up within ${secs}s" >&2; return 1
}

case "$cmd" in
  start)
    ch_http=${3:?clickhouse http port}; nats_port=${4:?nats port}
    mkdir -p "$dir/ch" "$dir/nats"
    ch_config "$dir" "$ch_http" $((ch_http + 1)) > "$dir/ch/config.xml"
    ch_bin=$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)
    (cd "$dir/ch" && exec "$ch_bin" --config-file="$dir/ch/config.xml" >/dev/null 2>&1) &
    echo $! > "$dir/ch.pid"
    nats-server -js -a 127.0.0.1 -p "$nats_port" -sd "$dir/nats" -l "$dir/nats/nats.log" >/dev/null 2>&1 &
    echo $! > "$dir/nats.pid"
    wait_for "ClickHouse on :$ch_http" 60 curl -sf "http://127.0.0.1:$ch_http/ping"
    wait_for "NATS on :$nats_port" 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$nats_port"
    ;;
  stop)
    for svc in nats ch; do
      if [ -f "$dir/$svc.pid" ]; then
        pid=$(cat "$dir/$svc.pid"); kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$dir/$svc.pid"
      fi
    done
    ;;
  *) echo "usage: $0 start DIR CH_HTTP_PORT NATS_PORT | stop DIR" >&2; exit 2 ;;
esac
