-- bmon event tables: one per event kind, named after the kind (`logs` for log_batch lines,
-- `alerts` for alerts). See clickhouse/README.md for the rules every table and query follows.
--
-- Every table starts with the envelope columns:
--   event_id        hex event id (the Nats-Msg-Id)
--   node            node name (for alerts: the detector that raised it)
--   observed_at_us  when the node saw it, microseconds since the epoch (UTC)
--   observed_at     the same, whole seconds, for partitioning and Grafana time filters
-- Hashes and txids are hex in bitcoind's display order; amounts are satoshis (`*_sat`).
-- ReplacingMergeTree + a sort key ending in event_id: replaying the stream never adds rows to
-- `FINAL` results.

CREATE TABLE IF NOT EXISTS node_status
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    version UInt32,
    subversion String,
    chain String,
    blocks UInt32,
    headers UInt32,
    best_block_hash String,
    tip_time Nullable(Int64),
    initial_block_download UInt8,
    verification_progress Float64,
    peers_in UInt32,
    peers_out UInt32,
    mempool_count UInt64,
    mempool_bytes UInt64,
    mempool_usage UInt64,
    mempool_min_fee_sat_per_kvb UInt64,
    uptime_secs UInt64,
    clock_offset_secs Nullable(Int64),
    warnings Array(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (node, observed_at_us, event_id);

CREATE TABLE IF NOT EXISTS block_seen
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    hash String,
    height Nullable(UInt32),
    stage String,
    peer Nullable(UInt64),
    source String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (hash, node, event_id);

CREATE TABLE IF NOT EXISTS block_connected
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    hash String,
    height UInt32,
    prev String,
    header_time UInt32,
    size UInt64,
    weight UInt64,
    tx_count UInt64,
    coinbase_value_sat UInt64,
    subsidy_sat UInt64,
    fees_sat Nullable(UInt64),
    miner_tag Nullable(String),
    occurrence UInt32,
    source String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (height, hash, node, event_id);

CREATE TABLE IF NOT EXISTS block_disconnected
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    hash String,
    height UInt32,
    occurrence UInt32,
    source String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (height, hash, node, event_id);

CREATE TABLE IF NOT EXISTS reorg
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    old_tip String,
    old_height UInt32,
    new_tip String,
    new_height UInt32,
    fork_point String,
    fork_height UInt32,
    depth UInt32,
    disconnected Array(String),
    connected Array(String),
    source String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (node, observed_at_us, event_id);

-- One row per getchaintips answer; the tips are parallel arrays (index i is one tip).
CREATE TABLE IF NOT EXISTS chain_tips
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    tip_height Array(UInt32),
    tip_hash Array(String),
    tip_branch_len Array(UInt32),
    tip_status Array(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (node, observed_at_us, event_id);

-- stage_name[i] took stage_ms[i] milliseconds. compact_* are NULL when the block did not
-- arrive as a compact block.
CREATE TABLE IF NOT EXISTS block_timing
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    hash Nullable(String),
    height Nullable(UInt32),
    stage_name Array(String),
    stage_ms Array(Float64),
    connect_total_ms Nullable(Float64),
    header_to_tip_ms Nullable(Float64),
    compact_prefilled Nullable(UInt32),
    compact_from_mempool Nullable(UInt32),
    compact_from_extra_pool Nullable(UInt32),
    compact_requested Nullable(UInt32)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (node, observed_at_us, event_id);

CREATE TABLE IF NOT EXISTS invalid_block
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    hash String,
    height Nullable(UInt32),
    reason String,
    detail Nullable(String),
    peer Nullable(UInt64),
    source String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (hash, node, event_id);

CREATE TABLE IF NOT EXISTS block_download_timeout
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    hash Nullable(String),
    peer Nullable(UInt64)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (node, observed_at_us, event_id);

CREATE TABLE IF NOT EXISTS tx_seen
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    txid String,
    wtxid Nullable(String),
    mempool_sequence Nullable(UInt64),
    vsize Nullable(UInt64),
    fee_sat Nullable(UInt64),
    source String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (txid, node, event_id);

CREATE TABLE IF NOT EXISTS tx_removed
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    txid String,
    mempool_sequence Nullable(UInt64),
    reason String,
    source String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (txid, node, event_id);

CREATE TABLE IF NOT EXISTS tx_rejected
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    txid String,
    wtxid Nullable(String),
    peer Nullable(UInt64),
    reason String,
    reason_text String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (txid, node, event_id);

CREATE TABLE IF NOT EXISTS tx_replaced
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    replaced_txid String,
    replaced_wtxid Nullable(String),
    new_txid String,
    new_wtxid Nullable(String),
    replaced_fee_sat Nullable(UInt64),
    new_fee_sat Nullable(UInt64),
    replaced_vsize Nullable(UInt64),
    new_vsize Nullable(UInt64)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (replaced_txid, node, event_id);

CREATE TABLE IF NOT EXISTS mempool_snapshot
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    count UInt64,
    vsize UInt64,
    total_fee_sat Nullable(UInt64),
    min_fee_sat_per_kvb UInt64,
    txid_digest String,
    mempool_sequence Nullable(UInt64)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (node, observed_at_us, event_id);

CREATE TABLE IF NOT EXISTS template_snapshot
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    height UInt32,
    prev String,
    tx_count UInt64,
    fees_sat UInt64,
    weight UInt64,
    txid_digest String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (node, observed_at_us, event_id);

-- block_* columns are NULL when the node has no coinstatsindex block_info.
CREATE TABLE IF NOT EXISTS utxo_stats
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    height UInt32,
    hash String,
    total_amount_sat UInt64,
    total_unspendable_amount_sat UInt64,
    txouts UInt64,
    muhash Nullable(String),
    block_prevout_spent_sat Nullable(UInt64),
    block_coinbase_sat Nullable(UInt64),
    block_new_outputs_ex_coinbase_sat Nullable(UInt64),
    block_unspendable_sat Nullable(UInt64)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (height, hash, node, event_id);

CREATE TABLE IF NOT EXISTS warning
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    message String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (node, observed_at_us, event_id);

-- One row per debug.log line of a log_batch event. event_id is the batch's. A line is
-- identified by its file and byte offset, not by the batch: an agent that re-reads a file
-- after a restart may batch the same lines differently, and they still collapse.
-- thread/category/level/location/function are '' when the line has no such prefix.
CREATE TABLE IF NOT EXISTS logs
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    file_id String,
    offset UInt64,
    time_us Int64,
    time DateTime,
    thread String,
    category String,
    level String,
    location String,
    function String,
    message String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (node, time_us, file_id, offset);

-- Detector alerts. `node` is the detector (the envelope's node); `alert_node` the node the
-- alert is about, if any. evidence_name[i] = evidence_value[i].
CREATE TABLE IF NOT EXISTS alerts
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    alert_kind String,
    severity String,
    state String,
    alert_node Nullable(String),
    subject Nullable(String),
    summary String,
    evidence_name Array(String),
    evidence_value Array(String),
    fingerprint String,
    starts_at_us Int64,
    starts_at DateTime,
    ends_at_us Nullable(Int64),
    caused_by String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (alert_kind, fingerprint, observed_at_us, event_id);

-- The agent dropped events (spool full) between from_us and to_us.
CREATE TABLE IF NOT EXISTS gap
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    lost_events UInt64,
    from_us Int64,
    to_us Int64,
    reason String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (node, observed_at_us, event_id);
