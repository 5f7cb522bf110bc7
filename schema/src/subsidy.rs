//! The block subsidy schedule: what a coinbase may claim before fees, and how much can exist.

use bitcoin::{Amount, Network};

use crate::Height;

/// Initial subsidy: 50 BTC.
const INITIAL_SUBSIDY_SAT: u64 = 50 * 100_000_000;

/// Blocks between halvings on `network` (regtest halves every 150 blocks).
pub fn halving_interval(network: Network) -> u32 {
    match network {
        Network::Regtest => 150,
        _ => 210_000,
    }
}

/// The subsidy of the block at `height`.
///
/// Mirrors Core's `GetBlockSubsidy`: the shift by 64 or more halvings is zero.
pub fn subsidy(height: Height, network: Network) -> Amount {
    let halvings = height.0 / halving_interval(network);
    if halvings >= 64 {
        return Amount::ZERO;
    }
    Amount::from_sat(INITIAL_SUBSIDY_SAT >> halvings)
}

/// Sum of the subsidies of blocks 0 through `height`: an upper bound on the coins that can exist
/// at that height (the genesis output, which is unspendable, is included).
pub fn total_supply_through(height: Height, network: Network) -> Amount {
    let interval = u64::from(halving_interval(network));
    let mut remaining = u64::from(height.0) + 1;
    let mut total: u64 = 0;
    let mut reward = INITIAL_SUBSIDY_SAT;
    while remaining > 0 && reward > 0 {
        let blocks = remaining.min(interval);
        total = total.saturating_add(blocks.saturating_mul(reward));
        remaining -= blocks;
        reward >>= 1;
    }
    Amount::from_sat(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_halvings() {
        assert_eq!(
            subsidy(Height(0), Network::Bitcoin),
            Amount::from_btc(50.0).unwrap()
        );
        assert_eq!(
            subsidy(Height(209_999), Network::Bitcoin).to_sat(),
            5_000_000_000
        );
        assert_eq!(
            subsidy(Height(210_000), Network::Bitcoin).to_sat(),
            2_500_000_000
        );
        assert_eq!(
            subsidy(Height(840_000), Network::Bitcoin).to_sat(),
            312_500_000
        );
        assert_eq!(
            subsidy(Height(64 * 210_000), Network::Bitcoin),
            Amount::ZERO
        );
    }

    #[test]
    fn regtest_halves_every_150_blocks() {
        assert_eq!(
            subsidy(Height(149), Network::Regtest).to_sat(),
            5_000_000_000
        );
        assert_eq!(
            subsidy(Height(150), Network::Regtest).to_sat(),
            2_500_000_000
        );
    }

    #[test]
    fn total_supply_matches_the_fixture_utxo_set() {
        // Fixture gettxoutsetinfo at height 122: total_amount 6100 BTC + 50 unspendable (genesis)
        // = 123 blocks of 50 BTC.
        assert_eq!(
            total_supply_through(Height(122), Network::Regtest).to_sat(),
            6150 * 100_000_000
        );
        // The schedule converges below 21M.
        let all = total_supply_through(Height(7_000_000), Network::Bitcoin);
        assert!(all.to_sat() < 21_000_000 * 100_000_000);
        assert!(all.to_sat() > 20_999_999 * 100_000_000);
    }
}
