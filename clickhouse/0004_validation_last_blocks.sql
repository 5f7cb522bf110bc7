-- Validation time by version over each version's last 1000 block connections, not over all
-- history: an old slow stretch (a cold cache after a restart, a bad week of disks) would
-- otherwise weigh on a version forever. 1000 is about a week of mainnet blocks for a version
-- one node runs; a version that several nodes run reaches 1000 sooner (one row per node and
-- block). A version no node runs any more keeps its last 1000 (`last_block` tells how old).
-- bmon-web, Grafana and `bmon validation` read these views (clickhouse/README.md says why
-- `LIMIT 1000 BY version`).
--
-- ClickHouse has no CREATE OR REPLACE VIEW on 18.16, and DROP VIEW came later: DROP TABLE
-- drops a view on every release.
DROP TABLE IF EXISTS validation_by_version;
DROP TABLE IF EXISTS validation_stage_by_version;

-- Per version: connections counted (up to 1000), on how many nodes, median and p90
-- `Connect total` in ms, and when the newest of them was connected.
CREATE VIEW IF NOT EXISTS validation_by_version AS
SELECT
    version,
    count() AS blocks,
    uniqExact(block_node) AS nodes,
    quantile(0.5)(connect_ms) AS median_connect_ms,
    quantile(0.9)(connect_ms) AS p90_connect_ms,
    max(observed_at) AS last_block
FROM
(
    SELECT version, block_node, connect_ms, observed_at
    FROM block_validation FINAL
    ORDER BY observed_at_us DESC, event_id
    LIMIT 1000 BY version
)
GROUP BY version;

-- The same per validation stage (`Connect block`, `Verify 6 txins`, ...), over the same
-- 1000 connections of each version: the limit applies to blocks before their stages are
-- unrolled.
CREATE VIEW IF NOT EXISTS validation_stage_by_version AS
SELECT
    version,
    stage_name,
    count() AS blocks,
    uniqExact(block_node) AS nodes,
    quantile(0.5)(stage_time_ms) AS median_ms,
    quantile(0.9)(stage_time_ms) AS p90_ms,
    max(observed_at) AS last_block
FROM
(
    SELECT version, block_node, observed_at, stage, stage_ms
    FROM block_validation FINAL
    ORDER BY observed_at_us DESC, event_id
    LIMIT 1000 BY version
)
ARRAY JOIN stage AS stage_name, stage_ms AS stage_time_ms
GROUP BY version, stage_name;
