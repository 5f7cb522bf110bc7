//! Events page SQL: everything one node recorded within a time window, from every event table
//! plus its log lines and the alerts about it, as one time-ordered list.
//!
//! One `UNION ALL` of one branch per table, each reduced to the same four columns (kind, time,
//! the block or transaction it names, a one-line summary built in SQL). Each branch filters
//! on the node and the window in `PREWHERE` (the sort key of the node-first tables, the
//! partition of the others) and is capped, so a busy node cannot flood the page.

use serde::Deserialize;

use super::Sql;

/// Most rows one table contributes.
pub const PER_TABLE: u64 = 500;
/// Most rows the page shows.
pub const TOTAL: u64 = 3000;

/// What a branch's reference column names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// A block hash.
    Block,
    /// A txid.
    Tx,
    /// A block hash or a txid (an alert's subject): linked through `/search`, which knows.
    Either,
    /// Nothing to link.
    None,
}

/// One table's contribution: its kind label, table, node column, time column (µs) and
/// seconds column (partition), reference column and summary expression.
#[derive(Debug, Clone, Copy)]
pub struct Branch {
    /// The label on the page.
    pub kind: &'static str,
    /// The table.
    pub table: &'static str,
    /// The column holding the node.
    pub node_col: &'static str,
    /// Time in µs.
    pub us_col: &'static str,
    /// Time in seconds (`DateTime`).
    pub secs_col: &'static str,
    /// What the reference names.
    pub ref_kind: RefKind,
    /// The reference (a String expression).
    pub reference: &'static str,
    /// The summary (a String expression; never NULL).
    pub summary: &'static str,
}

/// Every branch, in the order a block or transaction usually flows.
pub const BRANCHES: &[Branch] = &[
    Branch {
        kind: "log",
        table: "logs",
        node_col: "node",
        us_col: "time_us",
        secs_col: "time",
        ref_kind: RefKind::None,
        reference: "''",
        summary: "concat(if(category = '', '', concat('[', category, '] ')), if(level = '', '', concat(level, ': ')), message)",
    },
    Branch {
        kind: "node_status",
        table: "node_status",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Block,
        reference: "best_block_hash",
        summary: "concat('height ', toString(blocks), ', headers ', toString(headers), ', peers ', toString(peers_in), '/', toString(peers_out), ', mempool ', toString(mempool_count), if(initial_block_download = 1, ', in IBD', ''))",
    },
    Branch {
        kind: "block_seen",
        table: "block_seen",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Block,
        reference: "hash",
        summary: "concat(stage, ' at height ', ifNull(toString(height), '-'), ifNull(concat(' from peer=', toString(peer)), ''), ' (', source, ')')",
    },
    Branch {
        kind: "block_connected",
        table: "block_connected",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Block,
        reference: "hash",
        summary: "concat('height ', toString(height), ', ', toString(tx_count), ' txs, ', toString(size), ' bytes', ifNull(concat(', miner ', miner_tag), ''))",
    },
    Branch {
        kind: "block_disconnected",
        table: "block_disconnected",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Block,
        reference: "hash",
        summary: "concat('height ', toString(height))",
    },
    Branch {
        kind: "reorg",
        table: "reorg",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Block,
        reference: "new_tip",
        summary: "concat('depth ', toString(depth), ', fork at ', toString(fork_height), ', ', toString(old_height), ' → ', toString(new_height))",
    },
    Branch {
        kind: "chain_tips",
        table: "chain_tips",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::None,
        reference: "''",
        summary: "concat(toString(length(tip_hash)), ' tips: ', arrayStringConcat(tip_status, ', '))",
    },
    Branch {
        kind: "block_timing",
        table: "block_timing",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Block,
        reference: "ifNull(hash, '')",
        summary: "concat('connect total ', ifNull(toString(connect_total_ms), '-'), ' ms, header to tip ', ifNull(toString(header_to_tip_ms), '-'), ' ms')",
    },
    Branch {
        kind: "invalid_block",
        table: "invalid_block",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Block,
        reference: "hash",
        summary: "concat(reason, ifNull(concat(' ', detail), ''), ifNull(concat(' from peer=', toString(peer)), ''))",
    },
    Branch {
        kind: "block_download_timeout",
        table: "block_download_timeout",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Block,
        reference: "ifNull(hash, '')",
        summary: "concat('peer=', ifNull(toString(peer), '-'))",
    },
    Branch {
        kind: "tx_seen",
        table: "tx_seen",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Tx,
        reference: "txid",
        summary: "concat(ifNull(concat(toString(vsize), ' vB'), 'size unknown'), ifNull(concat(', fee ', toString(fee_sat), ' sat'), ''), ' (', source, ')')",
    },
    Branch {
        kind: "tx_rejected",
        table: "tx_rejected",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Tx,
        reference: "txid",
        summary: "concat(reason, ifNull(concat(' from peer=', toString(peer)), ''), ': ', reason_text)",
    },
    Branch {
        kind: "tx_replaced",
        table: "tx_replaced",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Tx,
        reference: "replaced_txid",
        summary: "concat('replaced by ', new_txid)",
    },
    Branch {
        kind: "tx_removed",
        table: "tx_removed",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Tx,
        reference: "txid",
        summary: "reason",
    },
    Branch {
        kind: "mempool_snapshot",
        table: "mempool_snapshot",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::None,
        reference: "''",
        summary: "concat(toString(count), ' txs, ', toString(vsize), ' vB, min fee ', toString(min_fee_sat_per_kvb), ' sat/kvB')",
    },
    Branch {
        kind: "template_snapshot",
        table: "template_snapshot",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Block,
        reference: "prev",
        summary: "concat('height ', toString(height), ', ', toString(tx_count), ' txs, fees ', toString(fees_sat), ' sat')",
    },
    Branch {
        kind: "peer_snapshot",
        table: "peer_snapshot",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::None,
        reference: "''",
        summary: "concat(toString(peers), ' peers, joined ', arrayStringConcat(arrayMap(x -> toString(x), joined), ','), ' left ', arrayStringConcat(arrayMap(x -> toString(x), left), ','))",
    },
    Branch {
        kind: "utxo_stats",
        table: "utxo_stats",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Block,
        reference: "hash",
        summary: "concat('height ', toString(height), ', ', toString(txouts), ' txouts, ', toString(total_amount_sat), ' sat')",
    },
    Branch {
        kind: "warning",
        table: "warning",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::None,
        reference: "''",
        summary: "message",
    },
    Branch {
        kind: "gap",
        table: "gap",
        node_col: "node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::None,
        reference: "''",
        summary: "concat(toString(lost_events), ' events lost: ', reason)",
    },
    Branch {
        kind: "alert",
        table: "alerts",
        node_col: "alert_node",
        us_col: "observed_at_us",
        secs_col: "observed_at",
        ref_kind: RefKind::Either,
        reference: "ifNull(subject, '')",
        summary: "concat(state, ' ', alert_kind, ': ', summary)",
    },
];

/// The branch labelled `kind`.
pub fn branch(kind: &str) -> Option<&'static Branch> {
    BRANCHES.iter().find(|b| b.kind == kind)
}

/// Everything `node` recorded between `from_us` and `to_us`, in time order.
pub fn around(node: &str, from_us: i64, to_us: i64) -> Sql {
    // Aliases no table uses as a column name: an alias equal to a column would be
    // substituted into its own expression (`summary` in `alerts`).
    let mut q = Sql::new("SELECT ev_kind, ev_us, ev_ref, ev_line FROM (");
    for (i, b) in BRANCHES.iter().enumerate() {
        if i > 0 {
            q.push(" UNION ALL ");
        }
        q.push(&format!(
            "SELECT '{}' AS ev_kind, {} AS ev_us, {} AS ev_ref, {} AS ev_line \
             FROM {} FINAL PREWHERE {} = ",
            b.kind, b.us_col, b.reference, b.summary, b.table, b.node_col
        ))
        .str(node)
        .push(&format!(" AND {} >= toDateTime(", b.secs_col))
        .int(from_us.div_euclid(1_000_000))
        .push(&format!(") AND {} <= toDateTime(", b.secs_col))
        .int(to_us.div_euclid(1_000_000) + 1)
        .push(&format!(") WHERE {} >= ", b.us_col))
        .int(from_us)
        .push(&format!(" AND {} <= ", b.us_col))
        .int(to_us)
        .push(&format!(" ORDER BY {} LIMIT {PER_TABLE}", b.us_col));
    }
    q.push(&format!(") ORDER BY ev_us, ev_kind LIMIT {TOTAL}"));
    q
}

/// One thing a node recorded.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct EventRow {
    /// The branch's kind label.
    pub kind: String,
    /// When, µs.
    pub at_us: i64,
    /// The block or transaction it names ('' when none).
    pub reference: String,
    /// One line.
    pub summary: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_asked_with_the_node_and_window_as_binds() {
        let q = around("n0' --", 1_000_000, 2_000_000);
        assert_eq!(q.placeholders(), q.args.len());
        assert_eq!(q.args.len(), BRANCHES.len() * 5);
        assert!(!q.text.contains("n0'"));
        assert_eq!(q.text.matches("UNION ALL").count(), BRANCHES.len() - 1);
        assert!(branch("tx_rejected").is_some());
    }
}
