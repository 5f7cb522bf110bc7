//! What a request may carry, checked before any query runs: block hashes or heights, txids,
//! node names, times and small numbers. Each parser answers a clear 400 for a bad value, never
//! a panic; the checked value is what reaches ClickHouse (as a bind).

use std::collections::HashMap;
use std::str::FromStr;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use bitcoin::{BlockHash, Txid};
use schema::{Height, NodeId};

use crate::error::PageError;
use crate::time;

/// A block named by hash or by height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockRef {
    /// A hash (64 hex digits, bitcoind's display order).
    Hash(BlockHash),
    /// A height: every block nodes connected there.
    Height(Height),
}

/// Reads `/block/{hash_or_height}`.
pub fn block_ref(raw: &str) -> Result<BlockRef, PageError> {
    let t = raw.trim();
    if !t.is_empty() && t.len() <= 10 && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u32>()
            .map(|h| BlockRef::Height(Height(h)))
            .map_err(|_| {
                PageError::BadRequest(format!("height {t} is out of range (at most 4294967295)"))
            });
    }
    hash64(t)
        .and_then(|h| BlockHash::from_str(&h).ok())
        .map(BlockRef::Hash)
        .ok_or_else(|| {
            PageError::BadRequest(format!(
                "{} is neither a block height nor a block hash (64 hex digits)",
                quoted(t)
            ))
        })
}

/// Reads `/tx/{txid}`.
pub fn txid(raw: &str) -> Result<Txid, PageError> {
    let t = raw.trim();
    hash64(t)
        .and_then(|h| Txid::from_str(&h).ok())
        .ok_or_else(|| {
            PageError::BadRequest(format!(
                "{} is not a txid: a txid is 64 hex digits",
                quoted(t)
            ))
        })
}

/// 64 hex digits, lowercased; `None` otherwise.
fn hash64(t: &str) -> Option<String> {
    (t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())).then(|| t.to_ascii_lowercase())
}

/// A value quoted for an error message, cut to 80 characters.
fn quoted(t: &str) -> String {
    let cut: String = t.chars().take(80).collect();
    if t.chars().count() > 80 {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

/// A request's query string as key → value (the last value of a repeated key wins). A
/// malformed query string is a 400.
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<HashMap<String, String>>::from_request_parts(parts, state).await {
            Ok(Query(map)) => Ok(Params(map)),
            Err(e) => Err(PageError::BadRequest(format!(
                "the query string cannot be read: {e}"
            ))),
        }
    }
}

impl Params {
    /// Parameters from pairs (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// A non-empty value (whitespace trimmed).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A node name (letters, digits, `-`, `_`), when given.
    pub fn node(&self, key: &str) -> Result<Option<NodeId>, PageError> {
        self.get(key)
            .map(|v| {
                NodeId::new(v).map_err(|_| {
                    PageError::BadRequest(format!(
                        "{key}={} is not a node name (letters, digits, '-' and '_', at most 64)",
                        quoted(v)
                    ))
                })
            })
            .transpose()
    }

    /// A time (see [`time::parse`]) in µs, when given.
    pub fn time(&self, key: &str) -> Result<Option<i64>, PageError> {
        self.get(key)
            .map(|v| {
                time::parse(v).ok_or_else(|| {
                    PageError::BadRequest(format!(
                        "{key}={} is not a time: use 2026-01-15T12:00:00 (UTC) or \
                         microseconds since 1970",
                        quoted(v)
                    ))
                })
            })
            .transpose()
    }

    /// A whole number within `min..=max`, or `default` when absent.
    pub fn number(&self, key: &str, default: u32, min: u32, max: u32) -> Result<u32, PageError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(PageError::BadRequest(format!(
                    "{key}={} must be a whole number from {min} to {max}",
                    quoted(v)
                ))),
            },
        }
    }

    /// One of `allowed` (case-insensitive), or `default` when absent.
    pub fn choice(
        &self,
        key: &str,
        allowed: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, PageError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => allowed
                .iter()
                .find(|a| a.eq_ignore_ascii_case(v))
                .copied()
                .ok_or_else(|| {
                    PageError::BadRequest(format!(
                        "{key}={} must be one of: {}",
                        quoted(v),
                        allowed.join(", ")
                    ))
                }),
        }
    }

    /// Free text (a search), at most `max` characters.
    pub fn text(&self, key: &str, max: usize) -> Result<Option<String>, PageError> {
        match self.0.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) if v.chars().count() > max => Err(PageError::BadRequest(format!(
                "{key} is longer than {max} characters"
            ))),
            Some(v) => Ok(Some(v.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0000000000000000000320283a032748cef8227873ff4872689bf23f1cda83a5";

    #[test]
    fn a_block_is_named_by_hash_or_height() {
        assert_eq!(
            block_ref(HASH).unwrap(),
            BlockRef::Hash(BlockHash::from_str(HASH).unwrap())
        );
        assert_eq!(
            block_ref(&HASH.to_uppercase()).unwrap(),
            BlockRef::Hash(BlockHash::from_str(HASH).unwrap())
        );
        assert_eq!(
            block_ref("840000").unwrap(),
            BlockRef::Height(Height(840_000))
        );
    }

    #[test]
    fn a_bad_block_or_txid_is_a_clear_400() {
        for bad in [
            "xyz",
            &HASH[..63],
            &format!("{HASH}0"),
            &HASH.replace('a', "g"),
            "99999999999",
            "-1",
            "",
            "<script>",
        ] {
            let e = block_ref(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}: {e}");
            let e = txid(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}: {e}");
            assert!(e.to_string().contains("64 hex digits"), "{e}");
        }
        assert!(block_ref("4294967296")
            .unwrap_err()
            .to_string()
            .contains("out of range"));
    }

    #[test]
    fn query_values_are_checked() {
        let p = Params::from_pairs(&[
            ("node", "n0"),
            ("bad", "n 0"),
            ("n", "30"),
            ("big", "100000"),
            ("at", "2026-01-15T12:00"),
            ("state", "Firing"),
            ("empty", "  "),
        ]);
        assert_eq!(p.node("node").unwrap().unwrap().as_str(), "n0");
        assert_eq!(p.node("bad").unwrap_err().status(), 400);
        assert_eq!(p.node("missing").unwrap(), None);
        assert_eq!(p.number("n", 10, 1, 500).unwrap(), 30);
        assert_eq!(p.number("missing", 10, 1, 500).unwrap(), 10);
        assert_eq!(p.number("big", 10, 1, 500).unwrap_err().status(), 400);
        assert_eq!(p.time("at").unwrap(), Some(1_768_478_400_000_000));
        assert_eq!(
            p.choice("state", &["firing", "resolved"], "firing")
                .unwrap(),
            "firing"
        );
        assert_eq!(p.get("empty"), None);
    }
}
