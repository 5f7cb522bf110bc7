//! What each panel must show after the run of [`crate::fixture`]: for every ClickHouse panel
//! either a check of its rows against simnet's truth, or the reason the run legitimately
//! leaves it empty (its query must still run); the same for every Prometheus panel's series.
//!
//! A panel without an entry here fails the test: a new panel comes with its expectation.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::fixture::{Run, NODES};

/// A panel's answer from ClickHouse (`FORMAT JSONCompact`).
pub struct Rows {
    /// (name, ClickHouse type) of each column.
    pub columns: Vec<(String, String)>,
    /// The rows.
    pub data: Vec<Vec<Value>>,
}

impl Rows {
    /// Parses a `JSONCompact` answer.
    pub fn parse(body: &str) -> Result<Rows, String> {
        let v: Value = serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
        let columns = v["meta"]
            .as_array()
            .ok_or("no meta in the answer")?
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap_or_default().to_string(),
                    m["type"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let data = v["data"]
            .as_array()
            .ok_or("no data in the answer")?
            .iter()
            .map(|r| r.as_array().cloned().unwrap_or_default())
            .collect();
        Ok(Rows { columns, data })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    fn index(&self, column: &str) -> Result<usize, String> {
        self.columns
            .iter()
            .position(|(n, _)| n == column)
            .ok_or_else(|| format!("no column {column} in {:?}", self.columns))
    }

    /// A column as text ('' for NULL; numbers as written).
    pub fn strings(&self, column: &str) -> Result<Vec<String>, String> {
        let i = self.index(column)?;
        Ok(self
            .data
            .iter()
            .map(|r| match &r[i] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .collect())
    }

    /// A column as numbers (ClickHouse quotes 64-bit integers); NULL is NaN.
    pub fn numbers(&self, column: &str) -> Result<Vec<f64>, String> {
        let i = self.index(column)?;
        self.data
            .iter()
            .map(|r| match &r[i] {
                Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n}")),
                Value::String(s) => s.parse().map_err(|e| format!("{column} {s}: {e}")),
                Value::Null => Ok(f64::NAN),
                other => Err(format!("{column} is not a number: {other}")),
            })
            .collect()
    }

    /// The distinct values of a column.
    pub fn set(&self, column: &str) -> Result<BTreeSet<String>, String> {
        Ok(self.strings(column)?.into_iter().collect())
    }

    /// Two columns side by side.
    pub fn pairs(&self, a: &str, b: &str) -> Result<Vec<(String, String)>, String> {
        Ok(self.strings(a)?.into_iter().zip(self.strings(b)?).collect())
    }

    /// The largest number of `value` per distinct `key`.
    pub fn max_by(&self, key: &str, value: &str) -> Result<BTreeMap<String, f64>, String> {
        let mut out: BTreeMap<String, f64> = BTreeMap::new();
        for (k, v) in self.strings(key)?.into_iter().zip(self.numbers(value)?) {
            let e = out.entry(k).or_insert(f64::MIN);
            *e = e.max(v);
        }
        Ok(out)
    }
}

/// What the Grafana ClickHouse plugin does with a time-series answer: it needs a column named
/// `time`; a "long" answer (with text columns) goes through the SDK's `LongToWide`, which needs
/// the time column sorted ascending and without NULLs, every text column becomes a label and
/// every other column must be a number.
pub fn check_time_series(rows: &Rows) -> Result<(), String> {
    let t = rows.index("time")?;
    let time_type = &rows.columns[t].1;
    if !time_type.starts_with("DateTime") {
        return Err(format!("time is {time_type}, not a DateTime"));
    }
    for (name, ty) in &rows.columns {
        let ty = ty
            .strip_prefix("Nullable(")
            .and_then(|x| x.strip_suffix(')'))
            .unwrap_or(ty);
        let number = ["Int", "UInt", "Float", "Decimal"]
            .iter()
            .any(|p| ty.starts_with(p));
        let label = ty == "String";
        if name != "time" && ty.starts_with("DateTime") {
            return Err(format!(
                "{name} is a second time column: the plugin takes the first"
            ));
        }
        if name != "time" && !number && !label {
            return Err(format!("{name} ({ty}) is neither a label nor a number"));
        }
    }
    let times = rows.strings("time")?;
    if times.iter().any(|s| s.is_empty()) {
        return Err("NULL in time".into());
    }
    if times.windows(2).any(|w| w[0] > w[1]) {
        return Err("time is not sorted ascending (LongToWide refuses it)".into());
    }
    Ok(())
}

/// What a ClickHouse panel must return.
pub enum Expect {
    /// At least one row, and this check of them holds.
    Rows(fn(&Rows, &Run) -> Result<(), String>),
    /// The run leaves it empty, for the reason given; the query must still run.
    MayBeEmpty(&'static str),
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn nodes() -> BTreeSet<String> {
    NODES.iter().map(|(n, _)| n.to_string()).collect()
}

fn subversion(node: &str) -> &'static str {
    NODES
        .iter()
        .find(|(n, _)| *n == node)
        .map(|(_, s)| *s)
        .unwrap_or("?")
}

/// The node of the fleet that runs `version` (each runs its own).
fn version_node(version: &str) -> &'static str {
    NODES
        .iter()
        .find(|(_, s)| *s == version)
        .map(|(n, _)| *n)
        .unwrap_or_default()
}

/// Every node of the fleet has a row (series) in `column`.
fn every_node(r: &Rows, column: &str) -> Result<(), String> {
    let got = r.set(column)?;
    ensure!(got == nodes(), "{column}: {got:?}, want every node");
    Ok(())
}

fn any_rows(_: &Rows, _: &Run) -> Result<(), String> {
    Ok(())
}

/// The expectation of the ClickHouse panel `title` of dashboard `uid`.
pub fn clickhouse(uid: &str, title: &str) -> Option<Expect> {
    use Expect::{MayBeEmpty, Rows as R};
    Some(match (uid, title) {
        // -- fleet
        ("bmon-fleet", "Nodes now") => R(|r, run| {
            ensure!(r.len() == 3, "one row per node, got {}", r.len());
            let tips = run.tips();
            for ((node, sub), height) in r
                .strings("node")?
                .iter()
                .zip(r.strings("subversion")?)
                .zip(r.numbers("height")?)
            {
                ensure!(sub == subversion(node), "{node} runs {sub}");
                let want = tips.get(node).map(|t| t.0).unwrap_or_default();
                ensure!(
                    height as u32 == want,
                    "{node} at {height}, its tip is {want}"
                );
            }
            every_node(r, "node")
        }),
        ("bmon-fleet", "Tip height by node") => R(|r, run| {
            let top = r.max_by("node", "height")?;
            for (node, (height, _)) in run.tips() {
                ensure!(
                    top.get(&node) == Some(&f64::from(height)),
                    "{node} tops at {:?}, its tip is {height}",
                    top.get(&node)
                );
            }
            every_node(r, "node")
        }),
        ("bmon-fleet", "Reorgs") => R(|r, run| {
            // One row per reorg and source (ZMQ and debug.log both report it).
            let got: BTreeSet<(String, u32)> = r
                .strings("node")?
                .into_iter()
                .zip(r.numbers("depth")?.into_iter().map(|d| d as u32))
                .collect();
            ensure!(
                got == run.reorgs(),
                "reorgs {got:?}, truth {:?}",
                run.reorgs()
            );
            Ok(())
        }),
        ("bmon-fleet", "Mempool transactions by node") => R(|r, _| every_node(r, "node")),
        ("bmon-fleet", "Alerts") => R(|r, _| {
            let kinds = r.set("alert_kind")?;
            for k in ["reorg", "selfish_mining", "invalid_block", "tx_rejections"] {
                ensure!(kinds.contains(k), "no {k} alert in {kinds:?}");
            }
            Ok(())
        }),
        ("bmon-fleet", "Mempool divergence: fleet transactions each node misses") => {
            R(|r, _| every_node(r, "mempool_node"))
        }
        ("bmon-fleet", "Block template fees against the fleet median (sat)") => {
            R(|r, _| every_node(r, "template_node"))
        }
        ("bmon-fleet", "Peers by node") => R(|r, _| {
            ensure!(
                r.numbers("peers")?.iter().all(|p| *p == 2.0),
                "every node has its two links"
            );
            every_node(r, "node")
        }),
        ("bmon-fleet", "Which peer delivered each node its blocks first")
        | ("bmon-peers", "Which peer delivered each node its blocks first") => R(|r, _| {
            // Peer ids are each node's connection numbers: 0 and 1 (two links each).
            ensure!(
                r.numbers("peer")?.iter().all(|p| *p <= 1.0),
                "peer ids {:?}",
                r.strings("peer")
            );
            if r.columns.iter().any(|(n, _)| n == "addr") {
                ensure!(
                    r.strings("addr")?.iter().all(|a| !a.is_empty()),
                    "every first peer has its address from getpeerinfo"
                );
            }
            Ok(())
        }),
        // -- chain and forks
        ("bmon-chain", "Reorgs") => R(|r, run| {
            let got: Vec<(String, u32)> = r
                .strings("node")?
                .into_iter()
                .zip(r.numbers("depth")?.into_iter().map(|d| d as u32))
                .collect();
            let want: Vec<(String, u32)> = run.reorgs().into_iter().collect();
            let mut sorted = got.clone();
            sorted.sort();
            ensure!(sorted == want, "one row per reorg: {got:?}, truth {want:?}");
            let fork = f64::from(run.selfish().0);
            ensure!(
                r.numbers("fork_height")?.iter().all(|h| *h == fork),
                "fork height {fork}"
            );
            ensure!(
                r.strings("seen_by")?.iter().all(|s| s.contains("zmq")),
                "every reorg seen on ZMQ"
            );
            Ok(())
        }),
        ("bmon-chain", "Reorgs by node and depth") => R(|r, run| {
            let got: BTreeSet<(String, u32)> = r
                .strings("node")?
                .into_iter()
                .zip(r.numbers("depth")?.into_iter().map(|d| d as u32))
                .collect();
            ensure!(got == run.reorgs(), "{got:?}");
            ensure!(
                r.numbers("reorgs")?.iter().all(|n| *n == 1.0),
                "one reorg each"
            );
            Ok(())
        }),
        ("bmon-chain", "Stale blocks (connected, then disconnected)") => R(|r, run| {
            let got: BTreeMap<String, String> =
                r.pairs("hash", "disconnected_by")?.into_iter().collect();
            let want: BTreeMap<String, String> = run
                .disconnected_blocks()
                .into_iter()
                .map(|(h, n)| (h, n.into_iter().collect::<Vec<_>>().join(",")))
                .collect();
            ensure!(got == want, "stale blocks {got:?}, truth {want:?}");
            ensure!(
                got.contains_key(&run.selfish().1),
                "the losing block is stale"
            );
            Ok(())
        }),
        ("bmon-chain", "Chain tips besides the active one (latest getchaintips)") => R(|r, run| {
            let rows: BTreeSet<(String, String, String)> = r
                .strings("node")?
                .into_iter()
                .zip(r.strings("hash")?)
                .zip(r.strings("status")?)
                .map(|((n, h), s)| (n, h, s))
                .collect();
            let losing = run.selfish().1;
            let invalid = run.invalid_block().0;
            for node in nodes() {
                for (hash, status) in [(&losing, "valid-fork"), (&invalid, "invalid")] {
                    ensure!(
                        rows.contains(&(node.clone(), hash.clone(), status.to_string())),
                        "{node} lacks its {status} tip {hash}: {rows:?}"
                    );
                }
            }
            Ok(())
        }),
        ("bmon-chain", "Fork tips by node") => R(|r, _| {
            let top = r.max_by("node", "fork_tips")?;
            ensure!(
                top.values().all(|n| *n >= 2.0),
                "a stale and an invalid tip on every node: {top:?}"
            );
            every_node(r, "node")
        }),
        ("bmon-chain", "Invalid blocks") => R(|r, run| {
            let (hash, height, reason) = run.invalid_block();
            ensure!(r.len() == 1, "one invalid block, got {}", r.len());
            ensure!(r.strings("hash")?[0] == hash, "hash");
            ensure!(r.numbers("height")?[0] == f64::from(height), "height");
            ensure!(r.strings("reason")?[0] == reason, "reason");
            ensure!(
                r.strings("rejected_by")?[0] == "node0,node1,node2",
                "rejected by every node: {:?}",
                r.strings("rejected_by")
            );
            Ok(())
        }),
        ("bmon-chain", "Block download timeouts") => MayBeEmpty(
            "simnet's debug.logs never write Core's block download timeout line; the parser is \
             held to Core's own lines in the debuglog fixtures",
        ),
        ("bmon-chain", "Blocks: coinbase against subsidy and fees (sat)") => R(|r, run| {
            let got: BTreeMap<String, f64> = r
                .strings("hash")?
                .into_iter()
                .zip(r.numbers("height")?)
                .collect();
            let want: BTreeMap<String, f64> = run
                .connected_blocks()
                .into_iter()
                .map(|(h, n)| (h, f64::from(n)))
                .collect();
            ensure!(got == want, "one row per connected block");
            ensure!(
                r.numbers("excess")?.iter().all(|x| *x == 0.0),
                "no coinbase pays more than subsidy + fees: {:?}",
                r.strings("excess")
            );
            Ok(())
        }),
        ("bmon-chain", "UTXO set total by node (BTC)") => R(|r, _| every_node(r, "node")),
        // -- mempools and templates
        ("bmon-mempool", "Mempools now") => R(|r, _| {
            ensure!(r.len() == 3, "one row per node");
            let min_fee: BTreeMap<String, String> = r
                .pairs("node", "min_fee_sat_per_kvb")?
                .into_iter()
                .collect();
            ensure!(
                min_fee.get("node2").map(String::as_str) == Some("20000"),
                "node2's minimum fee is its -minrelaytxfee: {min_fee:?}"
            );
            every_node(r, "node")
        }),
        ("bmon-mempool", "Mempool transactions by node")
        | ("bmon-mempool", "Mempool size by node (vbytes)")
        | ("bmon-mempool", "Mempool minimum fee by node (sat/kvB)") => {
            R(|r, _| every_node(r, "node"))
        }
        ("bmon-mempool", "Fleet transactions each node misses, by reason") => R(|r, _| {
            let pairs: BTreeSet<(String, String)> =
                r.pairs("mempool_node", "why")?.into_iter().collect();
            ensure!(
                pairs.contains(&("node2".into(), "min_fee".into())),
                "node2 misses the cheap transactions for its minimum fee: {pairs:?}"
            );
            Ok(())
        }),
        ("bmon-mempool", "Mempool divergence now") => R(|r, _| {
            ensure!(r.len() == 3, "one row per node");
            let reasons: BTreeMap<String, String> =
                r.pairs("mempool_node", "reasons")?.into_iter().collect();
            ensure!(
                reasons.get("node2").is_some_and(|s| s.contains("min_fee")),
                "node2's reasons: {reasons:?}"
            );
            every_node(r, "mempool_node")
        }),
        ("bmon-mempool", "Missing transactions, latest round") => R(|r, run| {
            let filtered = run.filtered_for_fee("node2");
            let rows = r
                .strings("mempool_node")?
                .into_iter()
                .zip(r.strings("txid")?)
                .zip(r.strings("why")?);
            let mut fee = 0;
            for ((node, txid), why) in rows {
                if node == "node2" && why == "min_fee" {
                    ensure!(
                        filtered.contains(&txid),
                        "{txid} listed as below node2's minimum fee, not in the truth"
                    );
                    fee += 1;
                }
            }
            ensure!(fee > 0, "node2's cheap transactions are listed");
            Ok(())
        }),
        ("bmon-mempool", "Transactions removed from mempools, by reason") => R(|r, _| {
            ensure!(r.set("reason")?.contains("block"), "confirmed transactions");
            Ok(())
        }),
        ("bmon-mempool", "Replaced transactions (RBF)") => MayBeEmpty(
            "simnet's transactions never replace one another; the real-Core run (real_fleet.rs) \
             covers replacements",
        ),
        ("bmon-mempool", "Block templates now") => R(|r, run| {
            ensure!(r.len() == 3, "one row per node");
            let tips = run.tips();
            for ((node, height), prev) in r
                .strings("node")?
                .iter()
                .zip(r.numbers("height")?)
                .zip(r.strings("prev")?)
            {
                let (tip_height, tip) = tips.get(node).cloned().unwrap_or_default();
                ensure!(
                    height == f64::from(tip_height + 1) && prev == tip,
                    "{node}'s template builds on {prev} at {height}, its tip is {tip} at {tip_height}"
                );
            }
            Ok(())
        }),
        ("bmon-mempool", "Template overlap with the fleet (Jaccard)") => R(|r, _| {
            ensure!(
                r.numbers("jaccard")?
                    .iter()
                    .all(|j| (0.0..=1.0).contains(j)),
                "Jaccard index in [0, 1]"
            );
            every_node(r, "template_node")
        }),
        ("bmon-mempool", "Template fees against the fleet median (sat)") => {
            R(|r, _| every_node(r, "template_node"))
        }
        ("bmon-mempool", "Fleet transactions a template leaves out, latest round") => {
            R(|r, run| {
                // node2 refuses what pays under 20 sat/vB, which the others' templates take.
                let filtered = run.filtered_for_fee("node2");
                let mut cheap = 0;
                for ((node, txid), why) in r
                    .strings("template_node")?
                    .into_iter()
                    .zip(r.strings("txid")?)
                    .zip(r.strings("why")?)
                {
                    if why == "min_fee" {
                        ensure!(
                            node == "node2" && filtered.contains(&txid),
                            "{node} leaves out {txid} for its minimum fee, not in the truth"
                        );
                        cheap += 1;
                    }
                }
                ensure!(
                    cheap > 0,
                    "node2's template leaves out the cheap transactions"
                );
                Ok(())
            })
        }
        // -- peers
        ("bmon-peers", "Peers by node") => R(|r, _| {
            ensure!(
                r.numbers("peers")?.iter().all(|p| *p == 2.0),
                "two links each"
            );
            every_node(r, "node")
        }),
        ("bmon-peers", "Peers joining and leaving") | ("bmon-peers", "Ping by node (ms)") => {
            R(|r, _| every_node(r, "node"))
        }
        ("bmon-peers", "Peers now") => R(|r, _| {
            // Every node is linked to the other two.
            let got: BTreeSet<(String, String)> =
                r.pairs("node", "subversion")?.into_iter().collect();
            let mut want = BTreeSet::new();
            for (a, _) in NODES {
                for (b, sub) in NODES {
                    if a != b {
                        want.insert((a.to_string(), sub.to_string()));
                    }
                }
            }
            ensure!(r.len() == 6 && got == want, "peers {got:?}");
            Ok(())
        }),
        ("bmon-peers", "Peer software across the fleet (latest poll)") => R(|r, _| {
            let got: BTreeSet<String> = r.set("subversion")?;
            let want: BTreeSet<String> = NODES.iter().map(|(_, s)| s.to_string()).collect();
            ensure!(got == want, "{got:?}");
            ensure!(
                r.numbers("connections")?.iter().all(|c| *c == 2.0),
                "each version is a peer of the two other nodes"
            );
            Ok(())
        }),
        // -- alerts
        ("bmon-alerts", "Firing now") => R(|r, _| {
            let kinds = r.set("alert_kind")?;
            for k in ["reorg", "selfish_mining", "invalid_block"] {
                ensure!(kinds.contains(k), "{k} is firing: {kinds:?}");
            }
            ensure!(
                !kinds.contains("tx_rejections"),
                "the rejection burst resolved"
            );
            Ok(())
        }),
        ("bmon-alerts", "Alerts by kind") => R(|r, _| {
            let kinds = r.strings("alert_kind")?;
            let fired = r.numbers("fired")?;
            let resolved = r.numbers("resolved")?;
            let row = |k: &str| kinds.iter().position(|x| x == k);
            let Some(t) = row("tx_rejections") else {
                return Err(format!("no tx_rejections in {kinds:?}"));
            };
            ensure!(fired[t] >= 1.0 && resolved[t] >= 1.0, "fired and resolved");
            for k in ["reorg", "selfish_mining", "invalid_block"] {
                ensure!(row(k).is_some_and(|i| fired[i] >= 1.0), "{k} fired");
            }
            Ok(())
        }),
        ("bmon-alerts", "Alerts fired, by kind") => R(|r, _| {
            let kinds = r.set("alert_kind")?;
            for k in ["reorg", "selfish_mining", "invalid_block", "tx_rejections"] {
                ensure!(kinds.contains(k), "no {k}: {kinds:?}");
            }
            Ok(())
        }),
        ("bmon-alerts", "Alert history") => R(|r, run| {
            let states = r.set("state")?;
            ensure!(
                states.contains("firing") && states.contains("resolved"),
                "{states:?}"
            );
            let depth = run.reorgs().iter().map(|(_, d)| *d).max().unwrap_or(0);
            let reorg = r
                .pairs("alert_kind", "summary")?
                .into_iter()
                .find(|(k, _)| k == "reorg")
                .map(|(_, s)| s)
                .unwrap_or_default();
            ensure!(
                reorg.contains(&format!("depth {depth}")),
                "the reorg alert says its depth {depth}: {reorg}"
            );
            Ok(())
        }),
        ("bmon-alerts", "Resolved: how long each incident lasted") => R(|r, _| {
            let rows = r.pairs("alert_kind", "lasted_s")?;
            ensure!(
                rows.iter()
                    .any(|(k, s)| k == "tx_rejections" && s.parse::<f64>().is_ok_and(|s| s > 0.0)),
                "{rows:?}"
            );
            Ok(())
        }),
        ("bmon-alerts", "Evidence of the latest alerts") => R(|r, _| {
            ensure!(
                r.set("alert_kind")?.contains("reorg"),
                "the reorg's evidence"
            );
            Ok(())
        }),
        // -- propagation
        ("bmon-propagation", "Blocks: when each node connected them")
        | ("bmon-propagation", "Block spread (ms)") => R(|r, run| {
            ensure!(
                r.len() == run.connected_blocks().len(),
                "one row per connected block: {} rows, {} blocks",
                r.len(),
                run.connected_blocks().len()
            );
            Ok(())
        }),
        ("bmon-propagation", "Lag behind the first node, per node (ms)")
        | ("bmon-propagation", "Each node's lag behind the fleet median, per block (ms)")
        | ("bmon-propagation", "Header to tip per node (ms after the fleet's first sighting)") => {
            R(|r, _| every_node(r, "node"))
        }
        ("bmon-propagation", "Transactions: spread across nodes (ms), p50 and p99 per minute")
        | ("bmon-propagation", "Transactions settled by the propagation detector: spread (ms)") => {
            R(any_rows)
        }
        ("bmon-propagation", "Blocks settled by the propagation detector") => R(|r, run| {
            let got = r.set("hash")?;
            for hash in run.connected_blocks().keys() {
                ensure!(got.contains(hash), "{hash} settled");
            }
            Ok(())
        }),
        ("bmon-propagation", "Block stages per node (ms after the fleet's first sighting)") => {
            R(|r, run| {
                let got = r.set("hash")?;
                for hash in run.connected_blocks().keys() {
                    ensure!(got.contains(hash), "{hash} has its stages");
                }
                for stage in ["header_ms", "cmpctblock_ms", "tip_ms"] {
                    ensure!(
                        r.numbers(stage)?.iter().any(|x| !x.is_nan()),
                        "some block shows its {stage}"
                    );
                }
                every_node(r, "node")
            })
        }
        ("bmon-propagation", "Blocks some nodes never saw") => MayBeEmpty(
            "every block of this run reaches every node (a partition or a stuck node would leave \
             one out; incidents.rs and outage.rs play those)",
        ),
        // -- validation
        ("bmon-validation", "Connect total (ms) by node") => R(|r, _| every_node(r, "node")),
        (
            "bmon-validation",
            "Connect time by Core version, each version's last 1000 blocks (ms)",
        ) => R(|r, run| {
            let want: BTreeSet<String> = NODES.iter().map(|(_, s)| s.to_string()).collect();
            ensure!(r.set("version")? == want, "{:?}", r.set("version"));
            // One row per block a node connected, credited to the node's version: every
            // block of the run, since no version reaches the view's 1000.
            let connects = run.connects();
            for (((version, blocks), nodes), (median, p90)) in r
                .strings("version")?
                .iter()
                .zip(r.numbers("blocks")?)
                .zip(r.numbers("nodes")?)
                .zip(
                    r.numbers("median_ms")?
                        .into_iter()
                        .zip(r.numbers("p90_ms")?),
                )
            {
                let node = version_node(version);
                let want = connects.get(node).copied().unwrap_or_default();
                ensure!(
                    want < 1000,
                    "{node} connected {want}: past the view's window"
                );
                ensure!(
                    blocks == want as f64,
                    "{version}: {blocks} blocks, {node} connected {want}"
                );
                ensure!(nodes == 1.0, "{version} runs on {node} only: {nodes} nodes");
                ensure!(
                    median > 0.0 && median <= p90,
                    "{version}: median {median}, p90 {p90}"
                );
            }
            ensure!(
                r.strings("last_block")?.iter().all(|t| !t.is_empty()),
                "every version has its latest block"
            );
            Ok(())
        }),
        ("bmon-validation", "Connect time by version (ms)") => R(|r, _| {
            let want: BTreeSet<String> = NODES.iter().map(|(_, s)| s.to_string()).collect();
            ensure!(r.set("version")? == want, "{:?}", r.set("version"));
            Ok(())
        }),
        (
            "bmon-validation",
            "Validation stages by version, each version's last 1000 blocks (ms)",
        ) => R(|r, run| {
            let want: BTreeSet<String> = NODES.iter().map(|(_, s)| s.to_string()).collect();
            ensure!(r.set("version")? == want, "{:?}", r.set("version"));
            // A stage is counted once per block that logged it: at most every block the
            // version's node connected.
            let connects = run.connects();
            for ((version, stage), blocks) in r
                .strings("version")?
                .iter()
                .zip(r.strings("stage_name")?)
                .zip(r.numbers("blocks")?)
            {
                let node = version_node(version);
                let most = connects.get(node).copied().unwrap_or_default();
                ensure!(
                    blocks >= 1.0 && blocks <= most as f64,
                    "{version} {stage}: {blocks} blocks, {node} connected {most}"
                );
            }
            Ok(())
        }),
        ("bmon-validation", "Compact block reconstruction") => R(any_rows),
        ("bmon-validation", "Rejected transactions by reason") => R(|r, run| {
            let n: f64 = r.numbers("rejections")?.iter().sum();
            let want: usize = run.rejected().values().sum();
            ensure!(n == want as f64, "{n} rejections, truth {want}");
            Ok(())
        }),
        ("bmon-validation", "Invalid blocks") => R(|r, run| {
            let hash = run.invalid_block().0;
            ensure!(
                r.strings("hash")?.iter().all(|h| *h == hash),
                "only the invalid block"
            );
            every_node(r, "node")
        }),
        // -- debug.log explorer
        ("bmon-logs", "Lines by level") => R(|r, _| {
            let levels = r.set("level")?;
            ensure!(
                levels.contains("info") && levels.contains("error"),
                "{levels:?}"
            );
            Ok(())
        }),
        ("bmon-logs", "Lines") => R(any_rows),
        ("bmon-logs", "Lines by category") => R(|r, run| {
            let rows = r.pairs("node", "cat")?;
            let lines = r.numbers("lines")?;
            let rejections = rows
                .iter()
                .zip(&lines)
                .find(|((n, c), _)| n == "node1" && c == "mempoolrej")
                .map(|(_, l)| *l);
            let want = run.rejected().get("node1").copied().unwrap_or_default() as f64;
            ensure!(
                rejections == Some(want),
                "node1's mempoolrej lines {rejections:?}, truth {want}"
            );
            every_node(r, "node")
        }),
        ("bmon-logs", "Errors and warnings") => R(|r, run| {
            let hash = run.invalid_block().0;
            ensure!(
                r.strings("message")?.iter().any(|m| m.contains(&hash)),
                "the invalid block's ConnectBlock failure"
            );
            Ok(())
        }),
        _ => return None,
    })
}

/// What the test's Prometheus scraped.
pub struct Scraped {
    /// Agents' `/metrics` endpoints.
    pub agents: usize,
    /// Consumers' `/metrics` endpoints.
    pub consumers: usize,
    /// node_exporter's `host:port` (its `instance`).
    pub exporter: String,
}

/// What a Prometheus panel must return.
pub enum PromExpect {
    /// Every target returns at least one series, and this check of them (one list of series
    /// per target) holds.
    Series(fn(&[Vec<Value>], &Scraped) -> Result<(), String>),
    /// The same, but only on a host where `expr` has series; elsewhere the panel may be empty
    /// for the reason given.
    SeriesWhere(
        fn(&[Vec<Value>], &Scraped) -> Result<(), String>,
        &'static str,
        &'static str,
    ),
}

fn labels(series: &[Value], label: &str) -> BTreeSet<String> {
    series
        .iter()
        .filter_map(|s| s["metric"][label].as_str().map(String::from))
        .collect()
}

/// Every series is the test host's node_exporter.
fn one_host(t: &[Vec<Value>], s: &Scraped) -> Result<(), String> {
    for series in t {
        ensure!(
            labels(series, "instance") == BTreeSet::from([s.exporter.clone()]),
            "the host's node_exporter: {:?}",
            labels(series, "instance")
        );
    }
    Ok(())
}

/// The expectation of the Prometheus panel `title`.
pub fn prometheus(title: &str) -> Option<PromExpect> {
    use PromExpect::Series as S;
    Some(match title {
        "bmon processes up" => S(|t, s| {
            let up = &t[0];
            ensure!(
                up.len() == s.agents + s.consumers,
                "{} processes, {} scraped",
                up.len(),
                s.agents + s.consumers
            );
            ensure!(
                up.iter().all(|x| x["value"][1] == "1"),
                "every process up: {up:?}"
            );
            Ok(())
        }),
        "Events published per second, by node"
        | "debug.log lines read per second, by node"
        | "Agent spool (bytes)" => S(|t, _| {
            ensure!(
                labels(&t[0], "node") == nodes(),
                "{:?}",
                labels(&t[0], "node")
            );
            Ok(())
        }),
        "ZMQ messages per second, by node and topic" => S(|t, _| {
            let topics = labels(&t[0], "topic");
            ensure!(topics.contains("sequence"), "{topics:?}");
            ensure!(labels(&t[0], "node") == nodes(), "every node");
            Ok(())
        }),
        "Agent failures per second" => S(|t, _| {
            for (i, what) in ["publish", "rpc", "spool dropped"].iter().enumerate() {
                ensure!(
                    labels(&t[i], "node") == nodes(),
                    "a {what} line per node (0 when healthy)"
                );
            }
            Ok(())
        }),
        "Consumer lag (messages not yet delivered)"
        | "Messages handled per second, by consumer"
        | "Batch handling time p90, by consumer (s)" => S(|t, _| {
            let consumers = labels(&t[0], "consumer");
            for c in ["ch-writer", "det-chain", "det-compare"] {
                ensure!(consumers.contains(c), "{c} in {consumers:?}");
            }
            Ok(())
        }),
        "ClickHouse rows inserted per second, by table"
        | "ClickHouse insert failures per second, by table" => S(|t, _| {
            let tables = labels(&t[0], "table");
            for table in ["block_connected", "logs", "alerts"] {
                ensure!(tables.contains(table), "{table} in {tables:?}");
            }
            Ok(())
        }),
        "Alerts published, by kind and state" => S(|t, _| {
            let kinds = labels(&t[0], "alert_kind");
            for k in ["reorg", "selfish_mining", "invalid_block", "tx_rejections"] {
                ensure!(kinds.contains(k), "{k} in {kinds:?}");
            }
            Ok(())
        }),
        "Alertmanager deliveries per second, by outcome" => S(|t, _| {
            ensure!(
                labels(&t[0], "outcome").contains("ok"),
                "posts went through"
            );
            Ok(())
        }),
        "CPU busy by host"
        | "Memory available by host"
        | "Load average (1 min) by host"
        | "Network traffic by host (bytes/s)" => S(one_host),
        "Filesystem space available" => PromExpect::SeriesWhere(
            one_host,
            r#"node_filesystem_size_bytes{fstype!~"tmpfs|overlay"}"#,
            "a container whose only filesystems are tmpfs and overlay has no disk to show",
        ),
        _ => return None,
    })
}
