//! Rows of `propagation` (migration `0002_propagation.sql`): the propagation detector's
//! summaries, one per settled block or transaction, written by `det-propagation` itself.
//!
//! A summary is a derived record, not an event: it is not published on NATS, so replaying
//! `det-propagation` rewrites the same rows (same ids and values), which collapse with FINAL.

use clickhouse::Client;
use detectors::propagation::PropagatedObject;
use detectors::{consumer_name, PropagationSummary};

use crate::runtime::HandleError;
use crate::writer::{classify, event_row, secs, FailureClass};

/// The table.
pub const TABLE: &str = "propagation";

event_row! {
    /// One `propagation` row.
    PropagationRow {
        /// `block` or `tx`.
        object_kind: String,
        /// Block hash or txid, hex in bitcoind's order.
        object_hash: String,
        /// Block height, when a sighting said it.
        height: Option<u32>,
        /// Earliest sighting in the fleet, µs.
        first_seen_us: i64,
        /// The same in seconds.
        first_seen: u32,
        /// The node that saw it first.
        first_node: String,
        /// Median of the nodes' first sightings, µs.
        median_seen_us: i64,
        /// Last first-sighting minus first, µs.
        spread_us: i64,
        /// Nodes that saw it.
        nodes: u32,
        /// Each node, in name order.
        node_name: Vec<String>,
        /// Its first sighting, µs.
        node_first_seen_us: Vec<i64>,
        /// Its lag behind the fleet median, µs.
        node_lag_us: Vec<i64>,
        /// The stage of its first sighting.
        node_stage: Vec<String>,
        /// Active nodes that never saw the block.
        missing: Vec<String>,
    }
}

impl PropagationRow {
    /// The row of one summary.
    pub fn new(s: &PropagationSummary) -> PropagationRow {
        let (object_kind, object_hash) = match s.object {
            PropagatedObject::Block(h) => ("block", h.to_string()),
            PropagatedObject::Tx(t) => ("tx", t.to_string()),
        };
        PropagationRow {
            event_id: s.id().to_hex(),
            node: consumer_name(detectors::DetectorName::Propagation).to_string(),
            observed_at_us: s.settled_at.0,
            observed_at: secs(s.settled_at.0),
            object_kind: object_kind.to_string(),
            object_hash,
            height: s.height.map(|h| h.0),
            first_seen_us: s.first_seen.0,
            first_seen: secs(s.first_seen.0),
            first_node: s.first_node.to_string(),
            median_seen_us: s.median_seen.0,
            spread_us: s.spread_micros,
            nodes: u32::try_from(s.nodes.len()).unwrap_or(u32::MAX),
            node_name: s.nodes.iter().map(|n| n.node.to_string()).collect(),
            node_first_seen_us: s.nodes.iter().map(|n| n.first_seen.0).collect(),
            node_lag_us: s.nodes.iter().map(|n| n.lag_micros).collect(),
            node_stage: s.nodes.iter().map(|n| n.stage.clone()).collect(),
            missing: s.missing.iter().map(|n| n.to_string()).collect(),
        }
    }
}

/// Inserts a detector's derived rows into `table` (created by migration `migration`) in one
/// statement and sorts a failure for the runtime. Rows built from a detector's outputs always
/// fit their table, so a refusal means the table does not match this build (fatal), not a
/// bad row.
pub async fn insert_rows<R>(
    client: &Client,
    table: &str,
    migration: &str,
    rows: &[R],
) -> Result<(), HandleError>
where
    R: clickhouse::RowOwned + clickhouse::RowWrite,
{
    if rows.is_empty() {
        return Ok(());
    }
    let result = async {
        let mut insert = client.insert::<R>(table).await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    }
    .await;
    match result {
        Ok(()) => Ok(()),
        Err(e) => match classify(&e) {
            FailureClass::Transient => Err(HandleError::Transient {
                reason: format!("insert into {table}: {e}"),
            }),
            FailureClass::Poison | FailureClass::Fatal => Err(HandleError::Fatal {
                reason: format!(
                    "insert into {table}: {e} (run `bmon setup`: migration {migration} creates it)"
                ),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;
    use bitcoin::BlockHash;
    use detectors::propagation::NodeSighting;
    use schema::{Height, NodeId, UnixMicros};

    #[test]
    fn a_block_summary_becomes_one_row_with_parallel_node_arrays() {
        let n = |s: &str| NodeId::new(s).unwrap();
        let summary = PropagationSummary {
            object: PropagatedObject::Block(BlockHash::from_byte_array([7; 32])),
            height: Some(Height(840_000)),
            first_seen: UnixMicros(1_800_000_000_000_000),
            first_node: n("a"),
            median_seen: UnixMicros(1_800_000_000_500_000),
            spread_micros: 900_000,
            nodes: vec![
                NodeSighting {
                    node: n("a"),
                    first_seen: UnixMicros(1_800_000_000_000_000),
                    lag_micros: -500_000,
                    stage: "header".into(),
                },
                NodeSighting {
                    node: n("b"),
                    first_seen: UnixMicros(1_800_000_000_900_000),
                    lag_micros: 400_000,
                    stage: "cmpctblock".into(),
                },
            ],
            missing: vec![n("c")],
            settled_at: UnixMicros(1_800_000_120_000_000),
        };
        let row = PropagationRow::new(&summary);
        assert_eq!(row.event_id, summary.id().to_hex());
        assert_eq!(row.node, "det-propagation");
        assert_eq!(row.object_kind, "block");
        assert_eq!(row.object_hash, "07".repeat(32));
        assert_eq!(row.height, Some(840_000));
        assert_eq!(row.first_seen, 1_800_000_000);
        assert_eq!(row.nodes, 2);
        assert_eq!(row.node_name, ["a", "b"]);
        assert_eq!(row.node_lag_us, [-500_000, 400_000]);
        assert_eq!(row.node_stage, ["header", "cmpctblock"]);
        assert_eq!(row.missing, ["c"]);
        assert_eq!(row.observed_at_us, 1_800_000_120_000_000);
    }
}
