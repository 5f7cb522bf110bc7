//! The agent's mempool mirror: `A`/`R` notifications applied per second (digest kept up to
//! date), and one resync from a 300,000-transaction `getrawmempool`.
//! Prints `name, figure, target, PASS/MISS`.

use std::time::Instant;

use agent::mempool::MempoolTracker;
use bitcoin::hashes::Hash;
use bitcoin::Txid;

/// Notifications per second the mirror must apply. Peak mainnet bursts reach about 100
/// mempool acceptances a second; the agent shares its loop with RPC and log work, so the
/// mirror itself must be three orders of magnitude faster.
const TARGET_PER_SEC: f64 = 100_000.0;
const TXS: u32 = 300_000;

fn txid(i: u32) -> Txid {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_le_bytes());
    b[31] = 3;
    Txid::from_byte_array(b)
}

fn main() {
    let mut m = MempoolTracker::default();
    let t0 = Instant::now();
    let mut seq = 0u64;
    for i in 0..TXS {
        seq += 1;
        std::hint::black_box(m.added(txid(i), seq));
    }
    for i in 0..TXS / 2 {
        seq += 1;
        std::hint::black_box(m.removed(txid(i * 2), seq));
    }
    let n = f64::from(TXS) * 1.5;
    let rate = n / t0.elapsed().as_secs_f64();
    println!(
        "mirror A/R, {rate:.0} notifications/s, target {TARGET_PER_SEC:.0}, {}",
        if rate >= TARGET_PER_SEC {
            "PASS"
        } else {
            "MISS"
        }
    );
    let list: Vec<Txid> = (0..TXS).map(txid).collect();
    let t0 = Instant::now();
    let diff = m.reset(&list, Some(seq + 1));
    let took = t0.elapsed();
    println!(
        "mirror resync from {TXS} txids, {:.1} ms ({} changes)",
        took.as_secs_f64() * 1e3,
        diff.len()
    );
}
