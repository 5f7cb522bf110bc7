//! Block and transaction construction: coinbases with a BIP34 height, a printable miner tag and
//! a witness commitment, regtest proof of work, and anyone-can-spend P2WSH(OP_TRUE) spends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version};
use bitcoin::blockdata::constants::genesis_block;
use bitcoin::hashes::Hash;
use bitcoin::opcodes::all::OP_PUSHNUM_1;
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{
    Amount, Block, CompactTarget, Network, OutPoint, ScriptBuf, Sequence, Target, Transaction,
    TxIn, TxMerkleNode, TxOut, Txid, Witness,
};
use schema::subsidy::subsidy;
use schema::Height;

use crate::chain::{BlockRef, Chain, MinedBlock};
use crate::mempool::Mempool;

/// Regtest's compact target.
pub const REGTEST_BITS: u32 = 0x207f_ffff;

/// The script every simulated output pays to: OP_TRUE.
pub fn witness_script() -> ScriptBuf {
    Builder::new().push_opcode(OP_PUSHNUM_1).into_script()
}

/// P2WSH(OP_TRUE): anyone can spend it with the witness `[OP_TRUE]`.
pub fn anyone_can_spend() -> ScriptBuf {
    ScriptBuf::new_p2wsh(&witness_script().wscript_hash())
}

/// The regtest genesis block as a shared block.
pub fn genesis() -> BlockRef {
    let block = genesis_block(Network::Regtest);
    let n = block.txdata.len();
    Arc::new(MinedBlock {
        hash: block.block_hash(),
        height: 0,
        fees: vec![Amount::ZERO; n],
        spent: vec![Vec::new(); n],
        miner: String::new(),
        overpay_accepted_by: Vec::new(),
        block,
    })
}

/// Grinds the nonce until the header meets regtest's target.
pub fn grind(header: &mut Header) {
    let target = Target::from_compact(CompactTarget::from_consensus(REGTEST_BITS));
    while !target.is_met_by(header.block_hash()) {
        header.nonce = header.nonce.wrapping_add(1);
    }
}

/// Miner tag written into the coinbase script, e.g. `/simnet:node0/`.
pub fn miner_tag(miner: &str) -> String {
    format!("/simnet:{miner}/")
}

fn coinbase(height: u32, tag: &str, value: Amount) -> Transaction {
    let mut tag_bytes = PushBytesBuf::new();
    for b in tag.bytes().take(60) {
        let _ = tag_bytes.push(b);
    }
    let script_sig = Builder::new()
        .push_int(i64::from(height))
        .push_slice(tag_bytes)
        .into_script();
    let mut witness = Witness::new();
    witness.push([0u8; 32]);
    Transaction {
        version: TxVersion::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig,
            sequence: Sequence::MAX,
            witness,
        }],
        output: vec![TxOut {
            value,
            script_pubkey: anyone_can_spend(),
        }],
    }
}

/// `OP_RETURN aa21a9ed <commitment>` for `block` (whose coinbase is first).
pub fn witness_commitment_script(block: &Block) -> ScriptBuf {
    let root = block
        .witness_root()
        .unwrap_or_else(|| bitcoin::WitnessMerkleNode::from_byte_array([0; 32]));
    let commitment = Block::compute_witness_commitment(&root, &[0u8; 32]);
    let mut data = PushBytesBuf::new();
    for b in [0xaa, 0x21, 0xa9, 0xed]
        .into_iter()
        .chain(commitment.to_byte_array())
    {
        let _ = data.push(b);
    }
    ScriptBuf::new_op_return(data)
}

/// A transaction chosen for a block, with what the miner knows of it.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The transaction.
    pub tx: Arc<Transaction>,
    /// Its fee.
    pub fee: Amount,
    /// The outputs it spends.
    pub spent: Vec<TxOut>,
}

/// Picks mempool transactions (arrival order, parents before children) whose inputs are in the
/// chain's UTXO set or made by an earlier pick.
pub fn select_txs(chain: &Chain, mempool: &Mempool, max_txs: usize) -> Vec<Selected> {
    let mut picked: Vec<Selected> = Vec::new();
    let mut picked_ids = HashSet::new();
    let mut remaining: Vec<_> = mempool.entries().collect();
    loop {
        let mut progress = false;
        let mut rest = Vec::new();
        for e in remaining {
            if picked.len() >= max_txs {
                break;
            }
            let mut spent = Vec::new();
            let mut ok = true;
            for input in &e.tx.input {
                let op = input.previous_output;
                if let Some(c) = chain.utxo(&op) {
                    spent.push(c.txout.clone());
                } else if picked_ids.contains(&op.txid) {
                    match mempool.output(&op) {
                        Some(o) => spent.push(o.clone()),
                        None => ok = false,
                    }
                } else {
                    ok = false;
                }
            }
            if ok {
                picked_ids.insert(e.txid);
                picked.push(Selected {
                    tx: e.tx.clone(),
                    fee: e.fee,
                    spent,
                });
                progress = true;
            } else {
                rest.push(e);
            }
        }
        remaining = rest;
        if !progress || remaining.is_empty() || picked.len() >= max_txs {
            break;
        }
    }
    picked
}

/// Picks mempool transactions for a block template the way Core's block assembler does:
/// highest ancestor-package fee rate first (a transaction with the ancestors not yet picked,
/// parents before children), skipping packages that no longer fit in `max_weight`. Only
/// transactions whose inputs are in the chain's UTXO set or made by an earlier pick qualify.
/// (Core v30's cluster mempool ranks chunks rather than ancestor packages; for simnet's
/// chains of single-input spends the order is the same.)
pub fn select_template_txs(chain: &Chain, mempool: &Mempool, max_weight: u64) -> Vec<Selected> {
    // Arrival order is a topological order: a parent enters before its children.
    let order: Vec<_> = mempool.entries().collect();
    let position: HashMap<Txid, usize> =
        order.iter().enumerate().map(|(i, e)| (e.txid, i)).collect();
    let ancestors: Vec<Vec<usize>> = order
        .iter()
        .map(|e| {
            let mut a: Vec<usize> = mempool
                .closure(&e.txid, true)
                .iter()
                .filter_map(|t| position.get(t).copied())
                .collect();
            a.sort_unstable();
            a
        })
        .collect();
    let mut picked_at = vec![false; order.len()];
    let mut failed = vec![false; order.len()];
    let mut weight = 0u64;
    let mut picked: Vec<Selected> = Vec::new();
    let mut picked_ids: HashSet<Txid> = HashSet::new();
    loop {
        // The best package: fee and vsize of the transaction with its unpicked ancestors.
        let mut best: Option<(usize, Amount, u64, u64)> = None;
        for i in 0..order.len() {
            if picked_at[i] || failed[i] {
                continue;
            }
            let (fee, vsize, w) = ancestors[i]
                .iter()
                .filter(|&&a| !picked_at[a])
                .fold((Amount::ZERO, 0u64, 0u64), |(f, v, w), &a| {
                    (f + order[a].fee, v + order[a].vsize, w + order[a].weight)
                });
            if weight + w > max_weight {
                failed[i] = true;
                continue;
            }
            let better = match best {
                None => true,
                Some((_, bf, bv, _)) => {
                    u128::from(fee.to_sat()) * u128::from(bv)
                        > u128::from(bf.to_sat()) * u128::from(vsize)
                }
            };
            if better {
                best = Some((i, fee, vsize, w));
            }
        }
        let Some((i, _, _, w)) = best else {
            break;
        };
        let package: Vec<usize> = ancestors[i]
            .iter()
            .copied()
            .filter(|&a| !picked_at[a])
            .collect();
        let mut staged = Vec::new();
        for &a in &package {
            let e = order[a];
            let mut spent = Vec::new();
            for input in &e.tx.input {
                let op = input.previous_output;
                if let Some(c) = chain.utxo(&op) {
                    spent.push(c.txout.clone());
                } else if picked_ids.contains(&op.txid)
                    || staged
                        .iter()
                        .any(|s: &Selected| s.tx.compute_txid() == op.txid)
                {
                    if let Some(o) = mempool.output(&op) {
                        spent.push(o.clone());
                    }
                }
            }
            if spent.len() != e.tx.input.len() {
                staged.clear();
                break;
            }
            staged.push(Selected {
                tx: e.tx.clone(),
                fee: e.fee,
                spent,
            });
        }
        if staged.is_empty() {
            failed[i] = true;
            continue;
        }
        for &a in &package {
            picked_at[a] = true;
            picked_ids.insert(order[a].txid);
        }
        weight += w;
        picked.extend(staged);
    }
    picked
}

/// Builds and grinds a block on `prev` (at `prev_height`) with the given transactions.
pub fn build_block(
    miner: &str,
    prev: bitcoin::BlockHash,
    prev_height: u32,
    time: u32,
    txs: Vec<Selected>,
) -> MinedBlock {
    build_block_overpaying(miner, prev, prev_height, time, txs, Amount::ZERO)
}

/// [`build_block`] with a coinbase paying `excess` more than subsidy + fees (a block that
/// breaks consensus with `bad-cb-amount` unless `excess` is zero).
pub fn build_block_overpaying(
    miner: &str,
    prev: bitcoin::BlockHash,
    prev_height: u32,
    time: u32,
    txs: Vec<Selected>,
    excess: Amount,
) -> MinedBlock {
    let mut mined = assemble(miner, prev, prev_height, time, txs, excess);
    grind(&mut mined.block.header);
    mined.hash = mined.block.block_hash();
    mined
}

/// The block `build_block` would make, without proof of work (for `getblocktemplate`).
pub fn build_block_unground(
    miner: &str,
    prev: bitcoin::BlockHash,
    prev_height: u32,
    txs: Vec<Selected>,
) -> Block {
    assemble(miner, prev, prev_height, 0, txs, Amount::ZERO).block
}

fn assemble(
    miner: &str,
    prev: bitcoin::BlockHash,
    prev_height: u32,
    time: u32,
    txs: Vec<Selected>,
    excess: Amount,
) -> MinedBlock {
    let height = prev_height + 1;
    let fees: Amount = txs.iter().map(|s| s.fee).sum();
    let value = subsidy(Height(height), Network::Regtest) + fees + excess;
    let cb = coinbase(height, &miner_tag(miner), value);
    let mut all_fees = vec![Amount::ZERO];
    let mut all_spent = vec![Vec::new()];
    let mut txdata = vec![cb];
    for s in txs {
        all_fees.push(s.fee);
        all_spent.push(s.spent);
        txdata.push((*s.tx).clone());
    }
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time,
            bits: CompactTarget::from_consensus(REGTEST_BITS),
            nonce: 0,
        },
        txdata,
    };
    let commitment = witness_commitment_script(&block);
    block.txdata[0].output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: commitment,
    });
    if let Some(root) = block.compute_merkle_root() {
        block.header.merkle_root = root;
    }
    MinedBlock {
        hash: block.block_hash(),
        height,
        fees: all_fees,
        spent: all_spent,
        miner: miner.to_owned(),
        overpay_accepted_by: Vec::new(),
        block,
    }
}

/// A transaction spending one anyone-can-spend coin into one or two new ones, paying
/// `feerate` sat/vB.
pub fn spend(
    outpoint: OutPoint,
    value: Amount,
    feerate: u64,
    split: bool,
) -> Option<(Transaction, Amount)> {
    let mut witness = Witness::new();
    witness.push(witness_script().as_bytes());
    let mut tx = Transaction {
        version: TxVersion::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness,
        }],
        output: vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: anyone_can_spend(),
        }],
    };
    if split {
        tx.output.push(tx.output[0].clone());
    }
    let fee = Amount::from_sat(feerate.checked_mul(tx.vsize() as u64)?);
    let rest = value.checked_sub(fee)?;
    // Keep every output well above dust.
    let n = tx.output.len() as u64;
    if rest.to_sat() < 1000 * n {
        return None;
    }
    let first = rest.to_sat() / n;
    tx.output[0].value = Amount::from_sat(rest.to_sat() - first * (n - 1));
    for o in tx.output.iter_mut().skip(1) {
        o.value = Amount::from_sat(first);
    }
    Some((tx, fee))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chain;

    #[test]
    fn built_block_is_structurally_valid_for_regtest() {
        let g = genesis();
        // Heights up to 16 are OP_1..OP_16 (as Core writes them); check a multi-byte one.
        let b = build_block("m", g.hash, 110, g.block.header.time + 1, Vec::new());
        assert!(b.block.check_merkle_root());
        assert!(b.block.check_witness_commitment());
        assert_eq!(b.block.bip34_block_height().unwrap(), 111);
        let target = Target::from_compact(CompactTarget::from_consensus(REGTEST_BITS));
        assert!(b.block.header.validate_pow(target).is_ok());
        assert_eq!(
            b.block.txdata[0].output[0].value,
            Amount::from_sat(5_000_000_000)
        );
        let script = b.block.txdata[0].input[0].script_sig.as_bytes();
        assert!(String::from_utf8_lossy(script).contains("/simnet:m/"));
    }

    #[test]
    fn spending_a_coin_pays_the_fee_and_block_carries_it() {
        let g = genesis();
        let mut chain = Chain::new(g.clone());
        let b1 = Arc::new(build_block(
            "m",
            g.hash,
            0,
            g.block.header.time + 1,
            Vec::new(),
        ));
        assert!(chain.insert(b1.clone()));
        chain.connect(&b1.hash).unwrap();
        let op = OutPoint {
            txid: b1.block.txdata[0].compute_txid(),
            vout: 0,
        };
        let (tx, fee) = spend(op, Amount::from_sat(5_000_000_000), 10, true).unwrap();
        assert_eq!(fee.to_sat(), 10 * tx.vsize() as u64);
        let out: Amount = tx.output.iter().map(|o| o.value).sum();
        assert_eq!(out + fee, Amount::from_sat(5_000_000_000));
        let sel = Selected {
            tx: Arc::new(tx),
            fee,
            spent: vec![b1.block.txdata[0].output[0].clone()],
        };
        let b2 = build_block("m", b1.hash, 1, b1.block.header.time + 1, vec![sel]);
        assert!(b2.block.check_witness_commitment());
        assert_eq!(
            b2.block.txdata[0].output[0].value,
            Amount::from_sat(5_000_000_000) + fee
        );
    }

    #[test]
    fn templates_take_the_highest_package_fee_rate_first_within_the_weight() {
        let g = genesis();
        let mut chain = Chain::new(g.clone());
        let mut prev = g;
        let mut coins = Vec::new();
        for _ in 0..3 {
            let b = Arc::new(build_block(
                "m",
                prev.hash,
                prev.height,
                prev.block.header.time + 1,
                Vec::new(),
            ));
            chain.insert(b.clone());
            chain.connect(&b.hash).unwrap();
            coins.push((
                OutPoint {
                    txid: b.block.txdata[0].compute_txid(),
                    vout: 0,
                },
                b.block.txdata[0].output[0].value,
            ));
            prev = b;
        }
        let (low, fl) = spend(coins[0].0, coins[0].1, 2, false).unwrap();
        let (mid, fm) = spend(coins[1].0, coins[1].1, 10, false).unwrap();
        // A 1 sat/vB parent with a 40 sat/vB child: a package of ~20.5 sat/vB.
        let (parent, fp) = spend(coins[2].0, coins[2].1, 1, false).unwrap();
        let kid_in = OutPoint {
            txid: parent.compute_txid(),
            vout: 0,
        };
        let (kid, fk) = spend(kid_in, parent.output[0].value, 40, false).unwrap();
        let mut mempool = Mempool::new();
        for (t, f) in [(&low, fl), (&mid, fm), (&parent, fp), (&kid, fk)] {
            mempool.add(Arc::new(t.clone()), f, 0, 0);
        }
        let ids = |v: Vec<Selected>| -> Vec<bitcoin::Txid> {
            v.iter().map(|s| s.tx.compute_txid()).collect()
        };
        let all = ids(select_template_txs(&chain, &mempool, 4_000_000));
        assert_eq!(
            all,
            vec![
                parent.compute_txid(),
                kid.compute_txid(),
                mid.compute_txid(),
                low.compute_txid()
            ]
        );
        // Room for one transaction's weight: the best single one that fits.
        let one = mid.weight().to_wu();
        assert_eq!(
            ids(select_template_txs(&chain, &mempool, one)),
            vec![mid.compute_txid()]
        );
        assert!(select_template_txs(&chain, &Mempool::new(), 4_000_000).is_empty());
    }
}
