//! A node's block index, active chain, UTXO set and coin statistics (what coinstatsindex
//! keeps), plus the block data shared by every node ([`MinedBlock`]).

use std::collections::HashMap;
use std::sync::Arc;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::{Amount, Block, BlockHash, OutPoint, TxOut, Txid};

/// A block as the miner made it, with what validation would compute (fees, spent outputs).
/// Shared between nodes: consensus makes these facts the same everywhere.
#[derive(Debug)]
pub struct MinedBlock {
    /// The block.
    pub block: Block,
    /// Its hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// Fee of each transaction (zero for the coinbase).
    pub fees: Vec<Amount>,
    /// For each transaction, the outputs its inputs spent (empty for the coinbase).
    pub spent: Vec<Vec<TxOut>>,
    /// Name of the node that mined it.
    pub miner: String,
    /// Nodes that connect this block even though its coinbase pays more than subsidy + fees
    /// (emulating a version with an inflation bug); every other node rejects such a block as
    /// `bad-cb-amount`.
    pub overpay_accepted_by: Vec<String>,
}

impl MinedBlock {
    /// Sum of the fees.
    pub fn total_fees(&self) -> Amount {
        self.fees.iter().copied().sum()
    }

    /// Previous block hash.
    pub fn prev(&self) -> BlockHash {
        self.block.header.prev_blockhash
    }

    /// What the coinbase pays, sat.
    pub fn coinbase_sat(&self) -> u64 {
        self.block
            .txdata
            .first()
            .map(|cb| cb.output.iter().map(|o| o.value.to_sat()).sum())
            .unwrap_or(0)
    }

    /// What the coinbase may pay: the regtest subsidy at this height plus the fees, sat.
    pub fn coinbase_limit_sat(&self) -> u64 {
        let subsidy =
            schema::subsidy::subsidy(schema::Height(self.height), bitcoin::Network::Regtest);
        (subsidy + self.total_fees()).to_sat()
    }
}

/// Shared handle to a mined block.
pub type BlockRef = Arc<MinedBlock>;

/// An unspent output.
#[derive(Debug, Clone)]
pub struct Coin {
    /// The output.
    pub txout: TxOut,
    /// Height of the block that created it.
    pub height: u32,
    /// Whether a coinbase created it.
    pub coinbase: bool,
}

/// Chain work of a regtest block at `height`: every block has work 2.
pub fn chainwork_hex(height: u32) -> String {
    format!("{:064x}", (u64::from(height) + 1) * 2)
}

/// Coin statistics after a block, as coinstatsindex keeps them.
#[derive(Debug, Clone, Default)]
pub struct CoinStats {
    /// Unspent outputs.
    pub txouts: u64,
    /// Core's bogosize (50 + script length per output).
    pub bogosize: u64,
    /// Sum of unspent outputs.
    pub total_amount: Amount,
    /// Sum of everything made unspendable (the genesis output, OP_RETURN outputs).
    pub total_unspendable: Amount,
    /// Order-independent digest of the UTXO set (XOR of a SHA-256 per coin).
    pub digest: [u8; 32],
    /// Outputs spent by this block's transactions.
    pub prevout_spent: Amount,
    /// Coinbase outputs of this block.
    pub coinbase: Amount,
    /// Non-coinbase outputs of this block.
    pub new_outputs_ex_coinbase: Amount,
    /// Made unspendable by this block.
    pub unspendable: Amount,
    /// Whether this is the genesis block's entry.
    pub genesis: bool,
}

fn coin_digest(outpoint: &OutPoint, txout: &TxOut) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(&bitcoin::consensus::serialize(outpoint));
    engine.input(&bitcoin::consensus::serialize(txout));
    sha256::Hash::from_engine(engine).to_byte_array()
}

fn xor_into(acc: &mut [u8; 32], d: [u8; 32]) {
    for (a, b) in acc.iter_mut().zip(d) {
        *a ^= b;
    }
}

/// A block the node knows, with its place in the tree.
#[derive(Debug, Clone)]
pub struct BlockEntry {
    /// The block.
    pub block: BlockRef,
    /// Median time past of this block (median of its own and 10 previous times).
    pub median_time: u32,
    /// Whether the node has connected it at least once (so it is fully validated).
    pub validated: bool,
    /// Coin statistics after it, when it was connected.
    pub stats: Option<CoinStats>,
    /// Whether the node found it (or an ancestor) invalid: it is never connected.
    pub invalid: bool,
    /// Insertion order (first seen wins among equal work).
    pub seq: u64,
}

/// Why a block cannot be connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// An input spends an output that is not in the UTXO set.
    MissingInput(OutPoint),
    /// The block is not known or does not extend the tip.
    NotNext,
}

/// One node's view of the block tree.
#[derive(Debug)]
pub struct Chain {
    index: HashMap<BlockHash, BlockEntry>,
    children: HashMap<BlockHash, Vec<BlockHash>>,
    active: Vec<BlockHash>,
    best_header: BlockHash,
    utxos: HashMap<OutPoint, Coin>,
    undo: HashMap<BlockHash, Vec<(OutPoint, Coin)>>,
    txindex: HashMap<Txid, BlockHash>,
    size_on_disk: u64,
    next_seq: u64,
}

impl Chain {
    /// A chain holding only `genesis` (whose output is unspendable, as in Core).
    pub fn new(genesis: BlockRef) -> Chain {
        let hash = genesis.hash;
        let time = genesis.block.header.time;
        let size = genesis.block.total_size() as u64;
        let mut stats = CoinStats {
            genesis: true,
            ..CoinStats::default()
        };
        let genesis_value: Amount = genesis
            .block
            .txdata
            .iter()
            .flat_map(|t| &t.output)
            .map(|o| o.value)
            .sum();
        stats.total_unspendable = genesis_value;
        stats.unspendable = genesis_value;
        let mut index = HashMap::new();
        index.insert(
            hash,
            BlockEntry {
                block: genesis,
                median_time: time,
                validated: true,
                stats: Some(stats),
                invalid: false,
                seq: 0,
            },
        );
        Chain {
            index,
            children: HashMap::new(),
            active: vec![hash],
            best_header: hash,
            utxos: HashMap::new(),
            undo: HashMap::new(),
            txindex: HashMap::new(),
            size_on_disk: size,
            next_seq: 1,
        }
    }

    /// Tip hash.
    pub fn tip(&self) -> BlockHash {
        *self.active.last().unwrap_or(&self.best_header)
    }

    /// Tip height.
    pub fn height(&self) -> u32 {
        (self.active.len() as u32).saturating_sub(1)
    }

    /// Tip entry.
    pub fn tip_entry(&self) -> &BlockEntry {
        // The active chain always holds genesis, whose entry is never removed.
        &self.index[&self.tip()]
    }

    /// The block with the most work this node knows (first seen wins a tie).
    pub fn best_header(&self) -> BlockHash {
        self.best_header
    }

    /// Height of the best known block.
    pub fn best_header_height(&self) -> u32 {
        self.index
            .get(&self.best_header)
            .map(|e| e.block.height)
            .unwrap_or(0)
    }

    /// The entry of `hash`.
    pub fn get(&self, hash: &BlockHash) -> Option<&BlockEntry> {
        self.index.get(hash)
    }

    /// Whether `hash` is in the block index.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.index.contains_key(hash)
    }

    /// Hash of the active block at `height`.
    pub fn at_height(&self, height: u32) -> Option<BlockHash> {
        self.active.get(height as usize).copied()
    }

    /// Whether `hash` is on the active chain.
    pub fn is_active(&self, hash: &BlockHash) -> bool {
        self.index
            .get(hash)
            .map(|e| self.at_height(e.block.height) == Some(*hash))
            .unwrap_or(false)
    }

    /// Sum of the sizes of every stored block.
    pub fn size_on_disk(&self) -> u64 {
        self.size_on_disk
    }

    /// The block containing `txid` on the active chain.
    pub fn tx_block(&self, txid: &Txid) -> Option<BlockHash> {
        self.txindex.get(txid).copied()
    }

    /// An unspent output of the active chain.
    pub fn utxo(&self, outpoint: &OutPoint) -> Option<&Coin> {
        self.utxos.get(outpoint)
    }

    /// Every unspent output.
    pub fn utxos(&self) -> impl Iterator<Item = (&OutPoint, &Coin)> {
        self.utxos.iter()
    }

    /// Median time past of a block whose parent is `prev`, over `prev` and its ancestors.
    pub fn median_time_after(&self, prev: &BlockHash) -> u32 {
        let mut times = Vec::with_capacity(11);
        let mut cur = Some(*prev);
        while let Some(h) = cur {
            let Some(e) = self.index.get(&h) else { break };
            times.push(e.block.block.header.time);
            if times.len() == 11 || e.block.height == 0 {
                break;
            }
            cur = Some(e.block.prev());
        }
        times.sort_unstable();
        times.get(times.len() / 2).copied().unwrap_or(0)
    }

    /// Adds a block whose parent is known. Returns false when the parent is unknown.
    pub fn insert(&mut self, block: BlockRef) -> bool {
        let hash = block.hash;
        if self.index.contains_key(&hash) {
            return true;
        }
        let prev = block.prev();
        if !self.index.contains_key(&prev) {
            return false;
        }
        // Median of this block's own time and its 10 predecessors' times.
        let mut times = vec![block.block.header.time];
        let mut cur = Some(prev);
        while let Some(h) = cur {
            let Some(e) = self.index.get(&h) else { break };
            times.push(e.block.block.header.time);
            if times.len() == 11 || e.block.height == 0 {
                break;
            }
            cur = Some(e.block.prev());
        }
        times.sort_unstable();
        let median_time = times[times.len() / 2];
        let height = block.height;
        // A descendant of an invalid block is invalid too (Core's BLOCK_FAILED_CHILD).
        let invalid = self.is_invalid(&prev);
        self.size_on_disk += block.block.total_size() as u64;
        self.children.entry(prev).or_default().push(hash);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.index.insert(
            hash,
            BlockEntry {
                block,
                median_time,
                validated: false,
                stats: None,
                invalid,
                seq,
            },
        );
        if !invalid && height > self.best_header_height() {
            self.best_header = hash;
        }
        true
    }

    /// Whether `hash` is known and marked invalid.
    pub fn is_invalid(&self, hash: &BlockHash) -> bool {
        self.index.get(hash).map(|e| e.invalid).unwrap_or(false)
    }

    /// Marks `hash` and every known descendant invalid and picks the best valid block again
    /// (most work, first seen on a tie).
    pub fn mark_invalid(&mut self, hash: &BlockHash) {
        let mut stack = vec![*hash];
        while let Some(h) = stack.pop() {
            if let Some(e) = self.index.get_mut(&h) {
                e.invalid = true;
            }
            if let Some(c) = self.children.get(&h) {
                stack.extend(c.iter().copied());
            }
        }
        let best = self
            .index
            .iter()
            .filter(|(_, e)| !e.invalid)
            .max_by(|(_, a), (_, b)| a.block.height.cmp(&b.block.height).then(b.seq.cmp(&a.seq)))
            .map(|(h, _)| *h);
        self.best_header = best.unwrap_or_else(|| self.tip());
    }

    /// The last block shared by the active chain and the branch ending in `hash`.
    pub fn fork_point(&self, hash: &BlockHash) -> BlockHash {
        let mut cur = *hash;
        loop {
            if self.is_active(&cur) {
                return cur;
            }
            match self.index.get(&cur) {
                Some(e) if e.block.height > 0 => cur = e.block.prev(),
                _ => return self.active[0],
            }
        }
    }

    /// The blocks from just above `fork` up to `hash`, lowest first.
    pub fn branch(&self, fork: &BlockHash, hash: &BlockHash) -> Vec<BlockRef> {
        let mut out = Vec::new();
        let mut cur = *hash;
        while cur != *fork {
            let Some(e) = self.index.get(&cur) else { break };
            out.push(e.block.clone());
            if e.block.height == 0 {
                break;
            }
            cur = e.block.prev();
        }
        out.reverse();
        out
    }

    /// Connects `hash`, which must extend the tip.
    pub fn connect(&mut self, hash: &BlockHash) -> Result<BlockRef, ConnectError> {
        let block = self
            .index
            .get(hash)
            .ok_or(ConnectError::NotNext)?
            .block
            .clone();
        if block.prev() != self.tip() {
            return Err(ConnectError::NotNext);
        }
        // Check every input first so a failure leaves the UTXO set untouched.
        let mut created: HashMap<OutPoint, ()> = HashMap::new();
        for tx in block.block.txdata.iter() {
            if !tx.is_coinbase() {
                for input in &tx.input {
                    let op = input.previous_output;
                    if !self.utxos.contains_key(&op) && !created.contains_key(&op) {
                        return Err(ConnectError::MissingInput(op));
                    }
                }
            }
            let txid = tx.compute_txid();
            for vout in 0..tx.output.len() as u32 {
                created.insert(OutPoint { txid, vout }, ());
            }
        }
        let parent_stats = self
            .index
            .get(&block.prev())
            .and_then(|e| e.stats.clone())
            .unwrap_or_default();
        let mut stats = CoinStats {
            txouts: parent_stats.txouts,
            bogosize: parent_stats.bogosize,
            total_amount: parent_stats.total_amount,
            total_unspendable: parent_stats.total_unspendable,
            digest: parent_stats.digest,
            ..CoinStats::default()
        };
        let mut undo = Vec::new();
        for tx in block.block.txdata.iter() {
            let txid = tx.compute_txid();
            let coinbase = tx.is_coinbase();
            if !coinbase {
                for input in &tx.input {
                    if let Some(coin) = self.utxos.remove(&input.previous_output) {
                        stats.txouts -= 1;
                        stats.bogosize -= 50 + coin.txout.script_pubkey.len() as u64;
                        stats.total_amount -= coin.txout.value;
                        stats.prevout_spent += coin.txout.value;
                        xor_into(
                            &mut stats.digest,
                            coin_digest(&input.previous_output, &coin.txout),
                        );
                        undo.push((input.previous_output, coin));
                    }
                }
            }
            for (vout, txout) in tx.output.iter().enumerate() {
                if coinbase {
                    stats.coinbase += txout.value;
                } else {
                    stats.new_outputs_ex_coinbase += txout.value;
                }
                if txout.script_pubkey.is_op_return() {
                    stats.unspendable += txout.value;
                    stats.total_unspendable += txout.value;
                    continue;
                }
                let op = OutPoint {
                    txid,
                    vout: vout as u32,
                };
                stats.txouts += 1;
                stats.bogosize += 50 + txout.script_pubkey.len() as u64;
                stats.total_amount += txout.value;
                xor_into(&mut stats.digest, coin_digest(&op, txout));
                self.utxos.insert(
                    op,
                    Coin {
                        txout: txout.clone(),
                        height: block.height,
                        coinbase,
                    },
                );
            }
            self.txindex.insert(txid, block.hash);
        }
        self.undo.insert(block.hash, undo);
        self.active.push(block.hash);
        if let Some(e) = self.index.get_mut(hash) {
            e.validated = true;
            e.stats = Some(stats);
        }
        Ok(block)
    }

    /// Disconnects the tip (never genesis), restoring the outputs it spent.
    pub fn disconnect_tip(&mut self) -> Option<BlockRef> {
        if self.active.len() <= 1 {
            return None;
        }
        let hash = self.active.pop()?;
        let block = self.index.get(&hash)?.block.clone();
        for tx in block.block.txdata.iter().rev() {
            let txid = tx.compute_txid();
            for vout in 0..tx.output.len() as u32 {
                self.utxos.remove(&OutPoint { txid, vout });
            }
            if self.txindex.get(&txid) == Some(&hash) {
                self.txindex.remove(&txid);
            }
        }
        for (op, coin) in self.undo.remove(&hash).unwrap_or_default() {
            self.utxos.insert(op, coin);
        }
        Some(block)
    }

    /// Chain tips: every known block without children, with Core's status words.
    pub fn tips(&self) -> Vec<ChainTip> {
        let mut out = Vec::new();
        for (hash, entry) in &self.index {
            if self
                .children
                .get(hash)
                .map(|c| !c.is_empty())
                .unwrap_or(false)
            {
                continue;
            }
            let fork = self.fork_point(hash);
            let fork_height = self.index.get(&fork).map(|e| e.block.height).unwrap_or(0);
            let status = if self.is_active(hash) {
                "active"
            } else if entry.invalid {
                "invalid"
            } else if self.branch(&fork, hash).iter().all(|b| {
                self.index
                    .get(&b.hash)
                    .map(|e| e.validated)
                    .unwrap_or(false)
            }) {
                "valid-fork"
            } else {
                "valid-headers"
            };
            out.push(ChainTip {
                height: entry.block.height,
                hash: *hash,
                branchlen: entry.block.height - fork_height,
                status,
            });
        }
        // Core sorts by height, highest first.
        out.sort_by(|a, b| b.height.cmp(&a.height).then(a.hash.cmp(&b.hash)));
        out
    }
}

/// One entry of `getchaintips`.
#[derive(Debug, Clone)]
pub struct ChainTip {
    /// Tip height.
    pub height: u32,
    /// Tip hash.
    pub hash: BlockHash,
    /// Blocks from the fork point with the active chain.
    pub branchlen: u32,
    /// `active`, `valid-fork`, `valid-headers` or `invalid`.
    pub status: &'static str,
}
