#!/usr/bin/env bash
# Captures the v30-prefixes test data from a real bitcoind (see README.md).
#
#   capture.sh [SHAPE...]      default: every shape below
#
# Env: BITCOIN_BIN (dir with bitcoind, bitcoin-cli; default ../shared/bitcoin-core/bin from the
# repo root), WORK (scratch dir, default a new temp dir), PORT_BASE (default 29400; P2P
# PORT_BASE+N, RPC PORT_BASE+100+N). Needs jq, python3 and cargo (for the bad block).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../../.." && pwd)
BIN=${BITCOIN_BIN:-$ROOT/../shared/bitcoin-core/bin}
WORK=${WORK:-$(mktemp -d)}
PORT_BASE=${PORT_BASE:-29400}
declare -A SHAPES=(
  [plain]=""
  [plain-micros]="-logtimemicros"
  [threads]="-logthreadnames"
  [threads-micros]="-logthreadnames -logtimemicros"
  [locations]="-logsourcelocations"
  [locations-micros]="-logsourcelocations -logtimemicros"
  [threads-locations]="-logthreadnames -logsourcelocations"
  [threads-locations-micros]="-logthreadnames -logsourcelocations -logtimemicros"
  [levelalways-ips]="-loglevelalways -logips"
  [all-options]="-logthreadnames -logsourcelocations -logtimemicros -loglevelalways -logips"
)
cargo build -q --release -p bmon-debuglog --example bad_block --manifest-path "$ROOT/Cargo.toml"
BAD_BLOCK="$ROOT/target/release/examples/bad_block"

# One run of the scenario with log options "$2": logs and truth.json into $WORK/$1.
scenario() (
  NAME=$1
  read -r -a FLAGS <<< "$2"
  BASE=$WORK/$NAME
  rm -rf "$BASE"; mkdir -p "$BASE"
  PIDS=()
  start() { # N
    local N=$1 D=$BASE/n$1; mkdir -p $D
    $BIN/bitcoind -regtest -datadir=$D -port=$((PORT_BASE+N)) -rpcport=$((PORT_BASE+100+N)) -rpcuser=u -rpcpassword=p \
      -bind=127.0.0.1 -rpcbind=127.0.0.1 -rpcallowip=127.0.0.1 -listen=1 -discover=0 -dnsseed=0 \
      -fixedseeds=0 -listenonion=0 -natpmp=0 -printtoconsole=0 -fallbackfee=0.0002 \
      -debug=mempool -debug=mempoolrej -debug=validation -debug=bench -debug=cmpctblock -debug=net \
      "${FLAGS[@]}" &
    PIDS+=($!)
  }
  cli() { local N=$1; shift; $BIN/bitcoin-cli -regtest -rpcport=$((PORT_BASE+100+N)) -rpcuser=u -rpcpassword=p "$@"; }
  waitfor() { # desc, cmd...
    local d=$1; shift
    for i in $(seq 1 300); do if "$@" >/dev/null 2>&1; then return 0; fi; sleep 0.2; done
    echo "timeout waiting for $d" >&2; return 1
  }
  cleanup() {
    cli 0 stop >/dev/null 2>&1 || true; cli 1 stop >/dev/null 2>&1 || true
    for p in "${PIDS[@]}"; do
      for i in $(seq 1 100); do kill -0 $p 2>/dev/null || break; sleep 0.1; done
      kill $p 2>/dev/null || true
    done
    cp $BASE/n0/regtest/debug.log $BASE/node0.log || true
    cp $BASE/n1/regtest/debug.log $BASE/node1.log || true
  }
  trap cleanup EXIT
  start 0; start 1
  waitfor "rpc0" cli 0 getblockchaininfo; waitfor "rpc1" cli 1 getblockchaininfo
  isolated() { test "$(cli 0 getconnectioncount)" -eq 0; }
  connected() { test "$(cli 1 getconnectioncount)" -ge 1; }
  connect() { cli 1 addnode 127.0.0.1:$PORT_BASE onetry; waitfor "peer" connected; }
  connect
  same_tip() { test "$(cli 0 getbestblockhash)" = "$(cli 1 getbestblockhash)"; }
  in_mempool() { cli "$1" getmempoolentry "$2"; }
  cli 0 createwallet w >/dev/null
  ADDR=$(cli 0 getnewaddress)
  SPK=$(cli 0 getaddressinfo $ADDR | jq -r .scriptPubKey)
  ADDR_B=$(cli 0 getnewaddress)   # B mines to another address, so its blocks differ from A's
  cli 0 generatetoaddress 101 $ADDR >/dev/null
  waitfor "sync 101" same_tip
  sleep 1
  cli 0 generatetoaddress 2 $ADDR >/dev/null   # B now on compact blocks
  waitfor "sync 103" same_tip
  # txs relayed, then a block reconstructed from the mempool
  T1=$(cli 0 sendtoaddress $ADDR 1); T2=$(cli 0 sendtoaddress $ADDR 2)
  waitfor "T1 on B" in_mempool 1 $T1; waitfor "T2 on B" in_mempool 1 $T2
  CB=$(cli 0 generatetoaddress 1 $ADDR | jq -r '.[0]')
  waitfor "sync 104" same_tip
  CB_HEIGHT=$(cli 0 getblockcount); B_PEER_CB=$(cli 1 getpeerinfo | jq '.[0].id')
  # RBF: X (fee 10000 sat) on A, Y (fee 1000 sat) on isolated B
  cli 1 setnetworkactive false >/dev/null
  waitfor "B isolated" isolated
  U=$(cli 0 listunspent 1 9999 | jq -c '[.[] | select(.amount == 50)][0]')
  TXID=$(echo $U | jq -r .txid); VOUT=$(echo $U | jq -r .vout)
  X=$(cli 0 signrawtransactionwithwallet $(cli 0 createrawtransaction "[{\"txid\":\"$TXID\",\"vout\":$VOUT}]" "[{\"$ADDR\":49.9999}]") | jq -r .hex)
  Y=$(cli 0 signrawtransactionwithwallet $(cli 0 createrawtransaction "[{\"txid\":\"$TXID\",\"vout\":$VOUT}]" "[{\"$ADDR\":49.99999}]") | jq -r .hex)
  XID=$(cli 0 sendrawtransaction $X); YID=$(cli 1 sendrawtransaction $Y)
  XDEC=$(cli 0 decoderawtransaction $X | jq -c '{txid, wtxid: .hash, vsize}')
  YDEC=$(cli 0 decoderawtransaction $Y | jq -c '{txid, wtxid: .hash, vsize}')
  cli 1 setnetworkactive true >/dev/null; sleep 0.5; connect
  sleep 1
  cli 1 sendrawtransaction $Y >/dev/null          # A rejects: insufficient fee
  rejected() { grep -q "$YID.*was not accepted" $BASE/n0/regtest/debug.log; }
  waitfor "A rejects Y" rejected
  A_PEER_RBF=$(cli 0 getpeerinfo | jq '.[0].id')
  cli 0 sendrawtransaction $X >/dev/null          # B replaces Y with X
  waitfor "X on B" in_mempool 1 $XID
  cli 0 generatetoaddress 1 $ADDR >/dev/null
  waitfor "sync 105" same_tip
  # reorg: A mines 1, isolated B mines 2, heal -> A reorgs one block deep
  cli 1 setnetworkactive false >/dev/null
  waitfor "B isolated" isolated
  FORK=$(cli 0 getbestblockhash); FORK_HEIGHT=$(cli 0 getblockcount)
  A_BLOCK=$(cli 0 generatetoaddress 1 $ADDR | jq -r '.[0]')
  B_BLOCKS=$(cli 1 generatetoaddress 2 $ADDR_B | jq -c .)
  cli 1 setnetworkactive true >/dev/null; sleep 0.5; connect
  waitfor "reorg sync" same_tip
  sleep 1
  cli 0 generatetoaddress 1 $ADDR >/dev/null    # B takes A as high-bandwidth compact block peer again
  waitfor "sync after reorg" same_tip
  sleep 1
  # invalid block: txs in both mempools, then A submits a block whose coinbase pays 1 sat too much
  T3=$(cli 0 sendtoaddress $ADDR 1); T4=$(cli 0 sendtoaddress $ADDR 3)
  waitfor "T3 on B" in_mempool 1 $T3; waitfor "T4 on B" in_mempool 1 $T4
  TEMPLATE=$(cli 0 getblocktemplate '{"rules":["segwit"]}')
  LIMIT=$(echo "$TEMPLATE" | jq .coinbasevalue)
  B_PEER_BAD=$(cli 1 getpeerinfo | jq '.[0].id')
  BAD=$(echo "$TEMPLATE" | "$BAD_BLOCK" $SPK 1)
  test "$(cli 0 submitblock $BAD)" = bad-cb-amount
  sleep 1
  cli 0 generatetoaddress 1 $ADDR >/dev/null
  waitfor "sync end" same_tip
  INVALID=$(cli 0 getchaintips | jq -c '[.[] | select(.status == "invalid")][0] | {hash, height}')
  cli 0 setmocktime $(( $(date +%s) + 60 )) >/dev/null   # lines now carry "(mocktime: ..)"
  MOCK_BLOCK=$(cli 0 generatetoaddress 1 $ADDR | jq -r '.[0]')
  cli 0 setmocktime 0 >/dev/null
  waitfor "sync mocktime" same_tip
  sleep 0.5
  jq -n --arg cb "$CB" --argjson cbh $CB_HEIGHT --argjson bpcb $B_PEER_CB --argjson x "$XDEC" --argjson y "$YDEC" \
    --argjson aprbf $A_PEER_RBF --arg fork "$FORK" --argjson forkh $FORK_HEIGHT --arg ablock "$A_BLOCK" --argjson bblocks "$B_BLOCKS" \
    --argjson invalid "$INVALID" --argjson limit $LIMIT --argjson bpbad $B_PEER_BAD --arg mock "$MOCK_BLOCK" \
    '{compact_block: {hash: $cb, height: $cbh, node1_peer: $bpcb},
      replacement: {new: ($x + {fee: 10000}), replaced: ($y + {fee: 1000}), node0_rejected_peer: $aprbf},
      reorg: {fork: $fork, fork_height: $forkh, node0_stale: $ablock, node1_blocks: $bblocks},
      invalid: ($invalid + {limit: $limit, actual: ($limit + 1), node1_peer: $bpbad}),
      mocktime_block: $mock}' > $BASE/truth.json
)

for shape in ${@:-${!SHAPES[@]}}; do
  echo "capturing $shape: ${SHAPES[$shape]}"
  scenario "$shape" "${SHAPES[$shape]}"
  mkdir -p "$HERE/$shape"
  python3 "$HERE/excerpt.py" "$WORK/$shape" "$HERE/$shape"
done
