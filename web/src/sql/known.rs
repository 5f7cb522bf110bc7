//! Which 64-hex strings are blocks and which are transactions: alert evidence and the search
//! box carry bare hashes, and a link must go to the right page.
//!
//! Reads the tables keyed by hash or txid (`block_seen`, `invalid_block`, `tx_seen`,
//! `tx_rejected`, `tx_replaced`) plus `block_connected` (small). Existence only: `DISTINCT`
//! without `FINAL`, as duplicates cannot change it.

use serde::Deserialize;

use super::Sql;

/// The lookup for `ids` (64-hex strings, checked by the caller).
pub fn lookup(ids: &[String]) -> Sql {
    let mut q = Sql::new("");
    let parts: [(&str, &str, &str); 6] = [
        ("block", "hash", "block_seen"),
        ("block", "hash", "block_connected"),
        ("block", "hash", "invalid_block"),
        ("tx", "txid", "tx_seen"),
        ("tx", "txid", "tx_rejected"),
        ("tx", "replaced_txid", "tx_replaced"),
    ];
    for (i, (kind, column, table)) in parts.iter().enumerate() {
        if i > 0 {
            q.push(" UNION ALL ");
        }
        q.push(&format!(
            "SELECT DISTINCT {column} AS id, '{kind}' AS kind FROM {table} WHERE {column} IN "
        ))
        .str_list(ids);
    }
    q
}

/// One known id.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct KnownRow {
    /// The hash or txid.
    pub id: String,
    /// `block` or `tx`.
    pub kind: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_is_a_bind_in_every_table() {
        let ids = vec!["a".repeat(64), "b".repeat(64)];
        let q = lookup(&ids);
        assert_eq!(q.args.len(), 12);
        assert_eq!(q.placeholders(), 12);
        assert!(!q.text.contains(&"a".repeat(64)));
    }
}
