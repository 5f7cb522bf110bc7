//! A node's transaction relay policy as Core applies it: `-minrelaytxfee`, `-maxmempool` with
//! the rolling minimum fee a full mempool raises, and `-blocksonly`. Pure values and
//! arithmetic, no clock of its own (callers pass the time): the mempool keeps the rolling fee
//! ([`crate::mempool`]), the node decides with the policy ([`crate::node`]).
//!
//! What is modelled, and how it differs from Core:
//! - Fee rates are satoshis per 1000 virtual bytes ([`SatPerKvb`]), rounded like Core's
//!   `CFeeRate`: a rate from a fee rounds down, the fee a rate asks rounds up.
//! - `-maxmempool` is counted in virtual bytes (the sum of `vsize`, what `getmempoolinfo`
//!   calls `bytes`), not in Core's estimate of memory use (`usage`).
//! - The rolling minimum fee follows Core's `CTxMemPool::GetMinFee`: raised to the evicted
//!   package's fee rate plus the incremental relay fee, halved every 12 h (6 h when the
//!   mempool is under half full, 3 h under a quarter) once a block has been connected since
//!   the last raise, and dropped to zero below half the incremental relay fee.
//! - Defaults are Core's for the node's version: from v30 the minimum relay and incremental
//!   fees are 100 sat/kvB (what the v30 fixtures report), before v30 1000 sat/kvB.

use std::fmt;

use bitcoin::Amount;
use serde::{Deserialize, Serialize};

/// Core's default `-maxmempool` (300 MB); simnet counts it in virtual bytes.
pub const DEFAULT_MAX_MEMPOOL_VBYTES: u64 = 300_000_000;

/// Half-life of the rolling minimum fee (Core's `ROLLING_FEE_HALFLIFE`), seconds.
const ROLLING_FEE_HALFLIFE_SECS: f64 = 12.0 * 60.0 * 60.0;

/// A fee rate in satoshis per 1000 virtual bytes (Core's `CFeeRate`; RPC shows it in BTC/kvB).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SatPerKvb(u64);

impl SatPerKvb {
    /// No fee.
    pub const ZERO: SatPerKvb = SatPerKvb(0);

    /// A rate of `sat` satoshis per 1000 vbytes.
    pub const fn from_sat_per_kvb(sat: u64) -> SatPerKvb {
        SatPerKvb(sat)
    }

    /// Satoshis per 1000 vbytes.
    pub const fn to_sat_per_kvb(self) -> u64 {
        self.0
    }

    /// The rate `fee` pays for `vsize` vbytes, rounded down (Core's `CFeeRate(fee, size)`).
    pub fn of(fee: Amount, vsize: u64) -> SatPerKvb {
        if vsize == 0 {
            return SatPerKvb::ZERO;
        }
        let rate = u128::from(fee.to_sat()) * 1000 / u128::from(vsize);
        SatPerKvb(u64::try_from(rate).unwrap_or(u64::MAX))
    }

    /// The fee this rate asks of `vsize` vbytes, rounded up (Core's `CFeeRate::GetFee`).
    pub fn fee_for(self, vsize: u64) -> Amount {
        let fee = (u128::from(self.0) * u128::from(vsize)).div_ceil(1000);
        Amount::from_sat(u64::try_from(fee).unwrap_or(u64::MAX))
    }

    /// Whether `fee` for `vsize` vbytes pays at least this rate.
    pub fn is_met_by(self, fee: Amount, vsize: u64) -> bool {
        fee >= self.fee_for(vsize)
    }

    /// The rate as an amount per 1000 vbytes (what RPC prints in BTC/kvB).
    pub fn per_kvb(self) -> Amount {
        Amount::from_sat(self.0)
    }

    /// This rate plus `other`, saturating.
    pub fn saturating_add(self, other: SatPerKvb) -> SatPerKvb {
        SatPerKvb(self.0.saturating_add(other.0))
    }
}

/// Core's `CFeeRate::ToString`: `0.00002100 BTC/kvB`.
impl fmt::Display for SatPerKvb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:08} BTC/kvB",
            self.0 / 100_000_000,
            self.0 % 100_000_000
        )
    }
}

/// What a node lets into its mempool (Core's `-minrelaytxfee`, `-incrementalrelayfee`,
/// `-maxmempool`, `-blocksonly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolPolicy {
    /// Transactions paying less are neither accepted nor announced to this node.
    pub min_relay_fee: SatPerKvb,
    /// Added to an evicted package's fee rate to give the new rolling minimum fee.
    pub incremental_relay_fee: SatPerKvb,
    /// Mempool size limit, vbytes; past it the lowest fee rates are evicted.
    pub max_mempool_vbytes: u64,
    /// The node asks its peers for no transactions (`-blocksonly`, `localrelay` false).
    pub blocks_only: bool,
}

impl MempoolPolicy {
    /// Core's defaults for a node of `version` (as `getnetworkinfo` reports it): v30 lowered
    /// the minimum relay and incremental fees from 1000 to 100 sat/kvB.
    pub fn defaults_for(version: u32) -> MempoolPolicy {
        let fee = SatPerKvb::from_sat_per_kvb(default_min_relay_fee_sat_per_kvb(version));
        MempoolPolicy {
            min_relay_fee: fee,
            incremental_relay_fee: fee,
            max_mempool_vbytes: DEFAULT_MAX_MEMPOOL_VBYTES,
            blocks_only: false,
        }
    }
}

/// Core's default `-minrelaytxfee` (and `-incrementalrelayfee`) for a node of `version`,
/// sat/kvB: 100 from v30 on, 1000 before.
pub fn default_min_relay_fee_sat_per_kvb(version: u32) -> u64 {
    if version >= 300_000 {
        100
    } else {
        1000
    }
}

/// The rolling minimum fee a full mempool raises (Core's `rollingMinimumFeeRate` with
/// `lastRollingFeeUpdate` and `blockSinceLastRollingFeeBump`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollingMinFee {
    rate: u64,
    last_update: u64,
    block_since_bump: bool,
}

impl RollingMinFee {
    /// The rate after decaying to `now` (Unix seconds) and the time of that decay; `usage`
    /// and `limit` (vbytes) choose the half-life as Core does.
    fn decayed(&self, now: u64, usage: u64, limit: u64, incremental: SatPerKvb) -> (u64, u64) {
        if !self.block_since_bump || self.rate == 0 || now <= self.last_update + 10 {
            return (self.rate, self.last_update);
        }
        let mut halflife = ROLLING_FEE_HALFLIFE_SECS;
        if usage < limit / 4 {
            halflife /= 4.0;
        } else if usage < limit / 2 {
            halflife /= 2.0;
        }
        // An exponential decay: Core keeps this rate as a double and rounds it to whole
        // sat/kvB when it reads it (`llround`), which is what is stored here.
        let elapsed = (now - self.last_update) as f64;
        let rate = self.rate as f64 / 2f64.powf(elapsed / halflife);
        if rate < incremental.to_sat_per_kvb() as f64 / 2.0 {
            return (0, now);
        }
        (rate.round() as u64, now)
    }

    /// Core's `GetMinFee` at `now` for a mempool of `usage` vbytes out of `limit`: zero when
    /// nothing was evicted (or the raise has decayed away), else at least `incremental`.
    pub fn at(&self, now: u64, usage: u64, limit: u64, incremental: SatPerKvb) -> SatPerKvb {
        if !self.block_since_bump || self.rate == 0 {
            return SatPerKvb(self.rate);
        }
        match self.decayed(now, usage, limit, incremental) {
            (0, _) => SatPerKvb::ZERO,
            (rate, _) => SatPerKvb(rate).max(incremental),
        }
    }

    /// Stores the decay up to `now`, as Core does whenever it reads the rate.
    pub fn settle(&mut self, now: u64, usage: u64, limit: u64, incremental: SatPerKvb) {
        let (rate, last_update) = self.decayed(now, usage, limit, incremental);
        self.rate = rate;
        self.last_update = last_update;
    }

    /// An eviction removed a package paying `removed` (already plus the incremental fee):
    /// the rate rises to it, and decays only after the next block.
    pub fn bump(&mut self, removed: SatPerKvb) {
        if removed.0 > self.rate {
            self.rate = removed.0;
            self.block_since_bump = false;
        }
    }

    /// A block was connected at `now`: the rate may decay from now on.
    pub fn block_connected(&mut self, now: u64) {
        self.last_update = now;
        self.block_since_bump = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_round_like_core_fee_rates() {
        // 141 vB paying 141 sat is exactly 1000 sat/kvB; asking 1000 sat/kvB of 141 vB is 141.
        assert_eq!(
            SatPerKvb::of(Amount::from_sat(141), 141).to_sat_per_kvb(),
            1000
        );
        assert_eq!(
            SatPerKvb::of(Amount::from_sat(140), 141).to_sat_per_kvb(),
            992
        );
        assert_eq!(SatPerKvb::from_sat_per_kvb(100).fee_for(141).to_sat(), 15);
        assert!(SatPerKvb::from_sat_per_kvb(1000).is_met_by(Amount::from_sat(141), 141));
        assert!(!SatPerKvb::from_sat_per_kvb(1001).is_met_by(Amount::from_sat(141), 141));
        assert_eq!(SatPerKvb::of(Amount::from_sat(5), 0), SatPerKvb::ZERO);
    }

    #[test]
    fn display_is_core_btc_per_kvb() {
        assert_eq!(
            SatPerKvb::from_sat_per_kvb(2100).to_string(),
            "0.00002100 BTC/kvB"
        );
        assert_eq!(
            SatPerKvb::from_sat_per_kvb(123_456_789).to_string(),
            "1.23456789 BTC/kvB"
        );
    }

    #[test]
    fn defaults_follow_the_version() {
        assert_eq!(
            MempoolPolicy::defaults_for(309900).min_relay_fee,
            SatPerKvb::from_sat_per_kvb(100)
        );
        let old = MempoolPolicy::defaults_for(250000);
        assert_eq!(old.min_relay_fee, SatPerKvb::from_sat_per_kvb(1000));
        assert_eq!(old.incremental_relay_fee, SatPerKvb::from_sat_per_kvb(1000));
        assert_eq!(old.max_mempool_vbytes, DEFAULT_MAX_MEMPOOL_VBYTES);
        assert!(!old.blocks_only);
    }

    #[test]
    fn rolling_fee_holds_until_a_block_then_halves_per_halflife() {
        let incr = SatPerKvb::from_sat_per_kvb(100);
        let mut r = RollingMinFee::default();
        assert_eq!(r.at(1000, 0, 1000, incr), SatPerKvb::ZERO);
        r.bump(SatPerKvb::from_sat_per_kvb(5000));
        assert_eq!(r.at(1_000_000, 900, 1000, incr).to_sat_per_kvb(), 5000);
        r.block_connected(1000);
        // A full mempool: 12 h half-life.
        let half = 1000 + 12 * 3600;
        assert_eq!(r.at(half, 900, 1000, incr).to_sat_per_kvb(), 2500);
        // Under a quarter full: 3 h half-life.
        assert_eq!(
            r.at(1000 + 3 * 3600, 100, 1000, incr).to_sat_per_kvb(),
            2500
        );
        // Within 10 s nothing decays.
        assert_eq!(r.at(1005, 100, 1000, incr).to_sat_per_kvb(), 5000);
        // Far later it falls below half the incremental fee and is gone.
        assert_eq!(
            r.at(1000 + 30 * 24 * 3600, 900, 1000, incr),
            SatPerKvb::ZERO
        );
        r.settle(half, 900, 1000, incr);
        assert_eq!(r.at(half, 900, 1000, incr).to_sat_per_kvb(), 2500);
    }

    #[test]
    fn a_lower_eviction_does_not_lower_the_rolling_fee() {
        let incr = SatPerKvb::from_sat_per_kvb(100);
        let mut r = RollingMinFee::default();
        r.bump(SatPerKvb::from_sat_per_kvb(3000));
        r.bump(SatPerKvb::from_sat_per_kvb(2000));
        assert_eq!(r.at(0, 0, 1, incr).to_sat_per_kvb(), 3000);
    }
}
