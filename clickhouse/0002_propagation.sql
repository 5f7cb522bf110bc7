-- How each block and transaction spread through the fleet: one row per settled object,
-- written by the propagation detector (`bmon-consumer det-propagation`) from its summaries.
--
-- The envelope columns follow the other tables: `event_id` is the summary's deterministic id
-- (detector + object), `node` is the detector (`det-propagation`), `observed_at_us` is when the
-- object settled (first sighting + settle time, event time). Per-node columns are parallel
-- arrays in node-name order: node_name[i] first saw the object at node_first_seen_us[i]
-- (stage node_stage[i]), node_lag_us[i] after the fleet median (negative: ahead of it).
-- A replay writes the same rows again; they collapse with FINAL.

CREATE TABLE IF NOT EXISTS propagation
(
    event_id String,
    node String,
    observed_at_us Int64,
    observed_at DateTime,
    object_kind String,
    object_hash String,
    height Nullable(UInt32),
    first_seen_us Int64,
    first_seen DateTime,
    first_node String,
    median_seen_us Int64,
    spread_us Int64,
    nodes UInt32,
    node_name Array(String),
    node_first_seen_us Array(Int64),
    node_lag_us Array(Int64),
    node_stage Array(String),
    missing Array(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(first_seen)
ORDER BY (object_kind, object_hash, event_id);
