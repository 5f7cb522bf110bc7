-- The fleet comparison (`bmon-consumer det-compare`) and the figures it needs.
--
-- node_status gains each node's relay policy (getmempoolinfo / getnetworkinfo): the reasons
-- a node may rightly hold fewer transactions than the fleet. mempool_snapshot gains the
-- agent's own mirror of the mempool beside the node's figures (equal unless a ZMQ
-- notification was lost; the agent then resyncs).
ALTER TABLE node_status ADD COLUMN min_relay_fee_sat_per_kvb Nullable(UInt64);
ALTER TABLE node_status ADD COLUMN relays_transactions Nullable(UInt8);
ALTER TABLE node_status ADD COLUMN max_mempool_bytes Nullable(UInt64);
ALTER TABLE mempool_snapshot ADD COLUMN mirror_count Nullable(UInt64);
ALTER TABLE mempool_snapshot ADD COLUMN mirror_digest Nullable(String);
ALTER TABLE mempool_snapshot ADD COLUMN mirror_sequence Nullable(UInt64);
-- template_snapshot gains its transactions (txid[i] pays tx_fee_sat[i], weighs tx_weight[i]).
ALTER TABLE template_snapshot ADD COLUMN txid Array(String);
ALTER TABLE template_snapshot ADD COLUMN tx_fee_sat Array(UInt64);
ALTER TABLE template_snapshot ADD COLUMN tx_weight Array(UInt64);

-- Each node's peers at each poll (getpeerinfo): parallel arrays, peer_id[i] at peer_addr[i],
-- ...; joined/left are the peer ids that came and went since the previous poll.
CREATE TABLE IF NOT EXISTS peer_snapshot
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    peers UInt32,
    peer_id Array(UInt64),
    peer_addr Array(String),
    peer_network Array(String),
    peer_connection_type Array(String),
    peer_inbound Array(UInt8),
    peer_version Array(UInt32),
    peer_subversion Array(String),
    peer_ping_ms Array(Float64),
    peer_bytes_sent Array(UInt64),
    peer_bytes_recv Array(UInt64),
    peer_conn_time Array(Int64),
    joined Array(UInt64),
    left Array(UInt64)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (node, observed_at_us, event_id);

-- Which peer delivered each block first to each node (the first block_seen naming a peer),
-- counted per node and peer id. Peer ids are the node's own connection numbers: join
-- peer_snapshot (ARRAY JOIN peer_id, peer_addr) for the address.
CREATE VIEW IF NOT EXISTS block_first_peer AS
SELECT node, first_peer AS peer, count() AS blocks_first
FROM
(
    SELECT node, hash, argMin(assumeNotNull(peer), observed_at_us) AS first_peer
    FROM block_seen FINAL
    WHERE isNotNull(peer)
    GROUP BY node, hash
)
GROUP BY node, first_peer;

-- One row per node and comparison round: the node's settled mempool against the fleet's
-- (transactions a majority holds). `node` is the detector (`det-compare`), `mempool_node` the
-- node compared. Missing transactions by reason are parallel arrays (reason[i] has
-- reason_count[i]); up to `max_listed` of them are listed with their reason and Core's reject
-- reason (missing_txid[i], missing_reason[i], missing_detail[i]). Reasons: rejected,
-- blocks_only, min_fee, removed, fee_unknown, unexplained (detectors/README.md).
CREATE TABLE IF NOT EXISTS mempool_divergence
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    mempool_node String,
    fleet_nodes UInt32,
    fleet_txs UInt64,
    held UInt64,
    young UInt64,
    missing UInt64,
    unexplained UInt64,
    only_here UInt64,
    reason Array(String),
    reason_count Array(UInt64),
    missing_txid Array(String),
    missing_reason Array(String),
    missing_detail Array(String),
    only_here_txid Array(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (mempool_node, observed_at_us, event_id);

-- One row per block timing: the node's `Connect total` and stages, credited to the version
-- the node ran when it connected the block (its latest node_status before), so an upgrade
-- never moves a node's earlier blocks to its new version. `node` is `det-compare`,
-- `block_node` the node that connected the block.
CREATE TABLE IF NOT EXISTS block_validation
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    block_node String,
    version String,
    hash String,
    height Nullable(UInt32),
    connect_ms Float64,
    stage Array(String),
    stage_ms Array(Float64)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (version, observed_at_us, event_id);

-- One row per node and comparison round: the node's latest block template against the
-- fleet's templates on the same parent. `template_node` is the node compared; the fleet's set
-- is what a majority of the templates include; left_out_* list the highest-fee transactions of
-- that set this template leaves out, with why (not_selected when the node holds it, else the
-- mempool comparison's reason, or not_in_mempool).
CREATE TABLE IF NOT EXISTS template_comparison
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    template_node String,
    prev String,
    height UInt32,
    fleet_templates UInt32,
    jaccard Float64,
    fees_sat UInt64,
    fleet_median_fees_sat UInt64,
    weight UInt64,
    fleet_median_weight UInt64,
    left_out UInt64,
    explained_fees_sat UInt64,
    left_out_txid Array(String),
    left_out_fee_sat Array(UInt64),
    left_out_reason Array(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (template_node, observed_at_us, event_id);

-- Median and p90 connect time per version, for Grafana and the CLI (which add a time filter
-- for "the last N blocks" as they need).
CREATE VIEW IF NOT EXISTS validation_by_version AS
SELECT
    version,
    count() AS blocks,
    quantile(0.5)(connect_ms) AS median_connect_ms,
    quantile(0.9)(connect_ms) AS p90_connect_ms,
    max(observed_at) AS last_block
FROM block_validation FINAL
GROUP BY version;

-- The same per validation stage (`Connect block`, `Verify 6 txins`, ...).
CREATE VIEW IF NOT EXISTS validation_stage_by_version AS
SELECT
    version,
    stage_name,
    count() AS blocks,
    quantile(0.5)(stage_time_ms) AS median_ms,
    quantile(0.9)(stage_time_ms) AS p90_ms
FROM
(
    SELECT version, stage_name, stage_time_ms
    FROM block_validation FINAL
    ARRAY JOIN stage AS stage_name, stage_ms AS stage_time_ms
)
GROUP BY version, stage_name;
