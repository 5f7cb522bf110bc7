//! The inflation detector: no block may create more coins than the schedule allows.
//!
//! Inputs: `block_connected` and `utxo_stats`. Three checks:
//! - **Coinbase**: a block a node *connected* must pay at most subsidy(height) + fees in its
//!   coinbase. The subsidy is recomputed from the schedule of the configured `network` (never
//!   taken from the agent); the agent's own figure goes into the evidence. Amounts use checked
//!   `Amount` arithmetic only.
//!
//!   When the fees are unknown (`fees: None`, the agent could not ask `getblockstats`), fees
//!   cannot be checked. We then alert only when the coinbase exceeds subsidy +
//!   `max_fees_when_unknown_sat` (default 100 BTC, far above the total fees any mainnet block
//!   has paid), as a warning whose evidence says `fees = unknown`; below that bound nothing
//!   fires, so a missing `getblockstats` never pages anyone.
//! - **Supply**: at every height a node reports, `total_amount + total_unspendable_amount` of its
//!   UTXO set must not exceed the sum of all subsidies through that height.
//! - **Agreement**: every node that reports `utxo_stats` for the same block hash must report the
//!   same total, unspendable total, output count and (when both computed it) MuHash. A
//!   difference is a critical consensus divergence.
//!
//! A block that every node rejects (`invalid_block`, never connected) raises nothing here: only
//! what a node accepted can inflate its UTXO set. (The chain detector reports invalid blocks.)
//!
//! All alerts are one-shot incidents per block hash (see [`crate::incident::OneShots`]).
//! State reaches back `keep_heights` blocks below the highest `utxo_stats` height for the
//! cross-node comparison, and `remember_secs` of event time for fired fingerprints.

use std::collections::{BTreeMap, HashMap};

use bitcoin::{Amount, BlockHash, Network};
use schema::event::{BlockConnected, Event, Severity, UtxoStats};
use schema::subsidy::{subsidy, total_supply_through};
use schema::{Envelope, Height, NodeId, UnixMicros};
use serde::{Deserialize, Serialize};

use crate::guard::{Analysis, Guarded};
use crate::incident::{evidence, firing, join, set_evidence, OneShots};
use crate::{Input, Output};

/// Thresholds of the inflation detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InflationConfig {
    /// Event ids remembered to drop duplicates.
    pub seen_capacity: usize,
    /// The chain whose subsidy schedule applies (`bitcoin`, `testnet4`, `signet`, `regtest`).
    pub network: Network,
    /// With unknown fees, a coinbase above subsidy + this many satoshis still alerts.
    pub max_fees_when_unknown_sat: u64,
    /// How long a one-shot alert stays firing, seconds.
    pub incident_hold_secs: u64,
    /// How long fired incidents are remembered, seconds of event time.
    pub remember_secs: u64,
    /// UTXO figures are compared across nodes for this many heights below the highest seen.
    pub keep_heights: u32,
}

impl Default for InflationConfig {
    fn default() -> Self {
        InflationConfig {
            seen_capacity: 100_000,
            network: Network::Bitcoin,
            max_fees_when_unknown_sat: 100 * 100_000_000,
            incident_hold_secs: 3600,
            remember_secs: 2 * 86_400,
            keep_heights: 1000,
        }
    }
}

/// One node's UTXO figures at one block.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UtxoView {
    total: Amount,
    unspendable: Amount,
    txouts: u64,
    muhash: Option<String>,
}

impl UtxoView {
    fn of(u: &UtxoStats) -> Self {
        UtxoView {
            total: u.total_amount,
            unspendable: u.total_unspendable_amount,
            txouts: u.txouts,
            muhash: u.muhash.clone(),
        }
    }

    fn disagrees(&self, other: &UtxoView) -> bool {
        let muhash_differs = match (&self.muhash, &other.muhash) {
            (Some(a), Some(b)) => !a.eq_ignore_ascii_case(b),
            _ => false,
        };
        self.total != other.total
            || self.unspendable != other.unspendable
            || self.txouts != other.txouts
            || muhash_differs
    }

    fn describe(&self) -> String {
        format!(
            "total={} unspendable={} txouts={} muhash={}",
            self.total.to_sat(),
            self.unspendable.to_sat(),
            self.txouts,
            self.muhash.as_deref().unwrap_or("none")
        )
    }
}

/// Coinbase, supply and UTXO-agreement checks: the inflation analysis with its duplicate filter
/// and event clock.
pub type InflationDetector = Guarded<InflationAnalysis>;

/// The inflation analysis (see the module docs).
#[derive(Debug, Clone)]
pub struct InflationAnalysis {
    config: InflationConfig,
    incidents: OneShots,
    utxo: BTreeMap<Height, HashMap<BlockHash, BTreeMap<NodeId, UtxoView>>>,
}

impl InflationAnalysis {
    fn on_connected(&mut self, b: &BlockConnected, env: &Envelope, out: &mut Vec<Output>) {
        let schedule = subsidy(b.height, self.config.network);
        let (allowed, severity) = match b.fees {
            Some(fees) => (schedule.checked_add(fees), Severity::Critical),
            None => (
                schedule.checked_add(Amount::from_sat(self.config.max_fees_when_unknown_sat)),
                Severity::Warning,
            ),
        };
        // An allowance that overflows cannot be exceeded.
        let Some(allowed) = allowed else { return };
        if b.coinbase_value <= allowed {
            return;
        }
        let excess = b
            .coinbase_value
            .checked_sub(allowed)
            .unwrap_or(Amount::ZERO);
        let fp = format!("coinbase_overpay:{}", b.hash);
        let mut a = firing("coinbase_overpay", severity, fp, env.observed_at, env.id);
        a.node = Some(env.node.clone());
        a.subject = Some(b.hash.to_string());
        a.summary = match b.fees {
            Some(_) => format!(
                "block {} at height {} pays {} sat in its coinbase, {} sat more than subsidy plus fees",
                b.hash,
                b.height,
                b.coinbase_value.to_sat(),
                excess.to_sat()
            ),
            None => format!(
                "block {} at height {} pays {} sat in its coinbase, {} sat more than subsidy plus the largest plausible fees (fees unknown)",
                b.hash,
                b.height,
                b.coinbase_value.to_sat(),
                excess.to_sat()
            ),
        };
        a.evidence = vec![
            evidence("hash", b.hash),
            evidence("height", b.height),
            evidence("coinbase_value_sat", b.coinbase_value.to_sat()),
            evidence("subsidy_schedule_sat", schedule.to_sat()),
            evidence("subsidy_reported_sat", b.subsidy.to_sat()),
            evidence(
                "fees_sat",
                b.fees
                    .map(|f| f.to_sat().to_string())
                    .unwrap_or_else(|| "unknown".into()),
            ),
            evidence("allowed_sat", allowed.to_sat()),
            evidence("excess_sat", excess.to_sat()),
            evidence("network", self.config.network),
            evidence("miner_tag", b.miner_tag.as_deref().unwrap_or("")),
        ];
        if b.fees.is_none() {
            a.evidence.push(evidence(
                "fee_bound_sat",
                self.config.max_fees_when_unknown_sat,
            ));
        }
        if let Some(a) = self.incidents.fire(a, Some(&env.node)) {
            out.push(Output::Alert(a));
        }
    }

    fn on_utxo(&mut self, u: &UtxoStats, env: &Envelope, out: &mut Vec<Output>) {
        self.check_supply(u, env, out);
        let view = UtxoView::of(u);
        let at_hash = self
            .utxo
            .entry(u.height)
            .or_default()
            .entry(u.hash)
            .or_default();
        let disagree = at_hash
            .iter()
            .any(|(n, v)| *n != env.node && v.disagrees(&view));
        at_hash.insert(env.node.clone(), view);
        let views: Vec<(NodeId, String)> = at_hash
            .iter()
            .map(|(n, v)| (n.clone(), v.describe()))
            .collect();
        let fp = format!("utxo_divergence:{}", u.hash);
        if self.incidents.is_open(&fp) {
            self.incidents.update(&fp, |a| {
                for (n, d) in &views {
                    set_evidence(a, &format!("node_{n}"), d);
                }
            });
            self.incidents.add_node(&fp, &env.node);
        } else if disagree {
            let mut a = firing(
                "utxo_divergence",
                Severity::Critical,
                fp.clone(),
                env.observed_at,
                env.id,
            );
            a.subject = Some(u.hash.to_string());
            a.summary = format!(
                "nodes disagree on the UTXO set at block {} (height {}): {}",
                u.hash,
                u.height,
                join(views.iter().map(|(n, _)| n))
            );
            a.evidence = vec![evidence("hash", u.hash), evidence("height", u.height)];
            for (n, d) in &views {
                a.evidence.push(evidence(format!("node_{n}"), d));
            }
            if let Some(a) = self.incidents.fire(a, Some(&env.node)) {
                out.push(Output::Alert(a));
            }
            for (n, _) in &views {
                self.incidents.add_node(&fp, n);
            }
            if let Some(a) = self.incidents.get(&fp) {
                // Publish the full node list right away.
                if let Some(Output::Alert(last)) = out.last_mut() {
                    if last.fingerprint == fp {
                        *last = a.clone();
                    }
                }
            }
        }
        self.prune();
    }

    fn check_supply(&mut self, u: &UtxoStats, env: &Envelope, out: &mut Vec<Output>) {
        let bound = total_supply_through(u.height, self.config.network);
        let supply = u.total_amount.checked_add(u.total_unspendable_amount);
        if supply.is_some_and(|s| s <= bound) {
            return;
        }
        let fp = format!("utxo_supply_exceeded:{}", u.hash);
        let mut a = firing(
            "utxo_supply_exceeded",
            Severity::Critical,
            fp,
            env.observed_at,
            env.id,
        );
        a.node = Some(env.node.clone());
        a.subject = Some(u.hash.to_string());
        let supply_text = supply
            .map(|s| s.to_sat().to_string())
            .unwrap_or_else(|| "overflow".into());
        let excess = supply
            .and_then(|s| s.checked_sub(bound))
            .map(|e| e.to_sat().to_string())
            .unwrap_or_else(|| "overflow".into());
        a.summary = format!(
            "UTXO set at height {} holds {supply_text} sat, {excess} sat more than the schedule allows",
            u.height
        );
        a.evidence = vec![
            evidence("hash", u.hash),
            evidence("height", u.height),
            evidence("total_amount_sat", u.total_amount.to_sat()),
            evidence("total_unspendable_sat", u.total_unspendable_amount.to_sat()),
            evidence("supply_sat", supply_text),
            evidence("schedule_bound_sat", bound.to_sat()),
            evidence("excess_sat", excess),
            evidence("txouts", u.txouts),
            evidence("muhash", u.muhash.as_deref().unwrap_or("none")),
            evidence("network", self.config.network),
        ];
        if let Some(a) = self.incidents.fire(a, Some(&env.node)) {
            out.push(Output::Alert(a));
        }
    }

    fn prune(&mut self) {
        let Some((&top, _)) = self.utxo.iter().next_back() else {
            return;
        };
        let floor = Height(top.0.saturating_sub(self.config.keep_heights));
        self.utxo = self.utxo.split_off(&floor);
    }
}

impl Analysis for InflationAnalysis {
    type Config = InflationConfig;

    fn new(config: InflationConfig) -> Self {
        InflationAnalysis {
            incidents: OneShots::new(config.incident_hold_secs, config.remember_secs),
            config,
            utxo: BTreeMap::new(),
        }
    }

    fn seen_capacity(&self) -> usize {
        self.config.seen_capacity
    }

    fn name(&self) -> crate::DetectorName {
        crate::DetectorName::Inflation
    }

    fn inputs(&self) -> &'static [schema::Kind] {
        use schema::Kind;
        &[Kind::BlockConnected, Kind::UtxoStats]
    }

    fn analyse(&mut self, input: Input<'_>, now: UnixMicros) -> Vec<Output> {
        let mut out = Vec::new();
        if let Input::Event(env) = input {
            match &env.event {
                Event::BlockConnected(b) => self.on_connected(b, env, &mut out),
                Event::UtxoStats(u) => self.on_utxo(u, env, &mut out),
                _ => {}
            }
        }
        out.extend(
            self.incidents
                .expire(now, input.cause())
                .into_iter()
                .map(Output::Alert),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, *};
    use schema::event::AlertState::*;

    fn given(events: &[Envelope]) -> Given<InflationDetector> {
        testkit::given(InflationDetector::new(InflationConfig::default()), events)
    }

    fn utxo(node: &str, at: f64, i: u32, total_btc: u64, muhash: &str) -> Envelope {
        env(
            node,
            t(at),
            UtxoStats {
                height: Height(i),
                hash: bh(i),
                total_amount: Amount::from_sat(total_btc * 100_000_000),
                total_unspendable_amount: Amount::from_sat(50 * 100_000_000),
                txouts: 1000,
                muhash: Some(muhash.into()),
                block_info: None,
            },
        )
    }

    #[test]
    fn a_clean_run_of_normal_blocks_and_utxo_stats_fires_nothing() {
        let mut evs = Vec::new();
        for i in 1..=300u32 {
            for node in ["n0", "n1", "n2"] {
                evs.push(connected(node, t(f64::from(i) * 600.0), i));
                // i blocks of 50 BTC plus genesis' 50 unspendable: exactly the schedule.
                evs.push(utxo(
                    node,
                    f64::from(i) * 600.0 + 1.0,
                    i,
                    u64::from(i) * 50,
                    "ab",
                ));
            }
        }
        let outs = run(
            &mut InflationDetector::new(InflationConfig::default()),
            &evs,
        );
        assert!(outs.is_empty(), "{outs:#?}");
    }

    #[test]
    fn a_coinbase_above_subsidy_plus_fees_is_critical() {
        let mut b = block(bh(121), 121, bh(120));
        b.coinbase_value = b.coinbase_value.checked_add(Amount::from_sat(1)).unwrap();
        let then = given(&[])
            .when(&env("n0", t(0.0), b))
            .then_alerts(&[("coinbase_overpay", Firing)]);
        let a = then.alert("coinbase_overpay");
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(ev_value(a, "excess_sat"), "1");
        assert_eq!(ev_value(a, "fees_sat"), "10000000");
        assert_eq!(a.node.as_ref().unwrap().as_str(), "n0");
    }

    #[test]
    fn the_fixture_bad_cb_amount_block_alerts_when_a_node_connects_it() {
        // Regtest block 121 of the v30 fixture: 51 BTC coinbase, limit 50 BTC, no fees.
        let mut b = block(bh(121), 121, bh(120));
        b.subsidy = Amount::from_sat(5_000_000_000);
        b.coinbase_value = Amount::from_sat(5_100_000_000);
        b.fees = Some(Amount::ZERO);
        let mut det = InflationDetector::new(InflationConfig {
            network: Network::Regtest,
            ..InflationConfig::default()
        });
        let outs = run(&mut det, &[env("n0", t(0.0), b)]);
        let a = outs[0].as_alert().unwrap();
        assert_eq!(ev_value(a, "excess_sat"), "100000000");
    }

    #[test]
    fn a_block_every_node_rejected_raises_no_inflation_alert() {
        given(&[])
            .when_all(&[
                invalid("n0", t(0.0), 121, 121, "bad-cb-amount"),
                invalid("n1", t(0.1), 121, 121, "bad-cb-amount"),
            ])
            .then_no_alert();
    }

    #[test]
    fn unknown_fees_alert_only_above_the_fee_bound_and_as_a_warning() {
        let mut b = block(bh(5), 5, bh(4));
        b.fees = None;
        b.coinbase_value = b
            .subsidy
            .checked_add(Amount::from_btc(99.0).unwrap())
            .unwrap();
        given(&[])
            .when(&env("n0", t(0.0), b.clone()))
            .then_no_alert();
        b.hash = bh(6);
        b.coinbase_value = b
            .subsidy
            .checked_add(Amount::from_btc(101.0).unwrap())
            .unwrap();
        let then = given(&[])
            .when(&env("n0", t(0.0), b))
            .then_alerts(&[("coinbase_overpay", Firing)]);
        let a = then.alert("coinbase_overpay");
        assert_eq!(a.severity, Severity::Warning);
        assert_eq!(ev_value(a, "fees_sat"), "unknown");
    }

    #[test]
    fn a_utxo_set_above_the_schedule_is_critical() {
        // Height 10 allows 11 blocks of 50 BTC = 550 BTC; 501 + 50 unspendable is one too many.
        let then = given(&[])
            .when(&utxo("n1", 0.0, 10, 501, "ab"))
            .then_alerts(&[("utxo_supply_exceeded", Firing)]);
        assert_eq!(
            ev_value(then.alert("utxo_supply_exceeded"), "excess_sat"),
            "100000000"
        );
    }

    #[test]
    fn nodes_disagreeing_on_one_block_s_utxo_set_is_one_critical_divergence() {
        let then = given(&[utxo("n0", 0.0, 10, 400, "aa")])
            .when(&utxo("n1", 1.0, 10, 400, "bb"))
            .then_alerts(&[("utxo_divergence", Firing)]);
        let a = then.alert("utxo_divergence");
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(ev_value(a, "nodes"), "n0,n1");
        assert!(ev_value(a, "node_n1").contains("muhash=bb"));
        then.and()
            .when(&utxo("n2", 2.0, 10, 400, "aa"))
            .then_no_alert()
            .and()
            .when_tick(t(3601.0))
            .then_alerts(&[("utxo_divergence", Resolved)]);
    }

    #[test]
    fn a_missing_muhash_is_not_a_divergence() {
        let mut no_muhash = utxo("n1", 1.0, 10, 400, "x");
        if let Event::UtxoStats(u) = &mut no_muhash.event {
            u.muhash = None;
        }
        let no_muhash = env(
            "n1",
            t(1.0),
            match no_muhash.event {
                Event::UtxoStats(u) => u,
                _ => unreachable!(),
            },
        );
        given(&[utxo("n0", 0.0, 10, 400, "aa")])
            .when(&no_muhash)
            .then_no_alert();
    }

    #[test]
    fn duplicates_do_not_double_alert_and_replay_gives_the_same_ids() {
        let mut b = block(bh(7), 7, bh(6));
        b.coinbase_value = b.coinbase_value.checked_add(Amount::ONE_BTC).unwrap();
        let evs = vec![
            env("n0", t(0.0), b.clone()),
            env("n1", t(0.5), b),
            utxo("n0", 1.0, 7, 300, "aa"),
            utxo("n1", 1.5, 7, 301, "aa"),
        ];
        let outs = assert_replay_and_duplicates_agree(
            || InflationDetector::new(InflationConfig::default()),
            &evs,
        );
        assert_eq!(outs.len(), 2);
    }
}
