//! The agent's view of its node's active chain, and the block events derived from it.
//!
//! [`ChainTracker`] is a pure state machine: the node driver ([`crate::node`]) feeds it blocks
//! connected and disconnected (from ZMQ `sequence` `C`/`D`, enriched with the block itself and
//! RPC figures) and it returns `block_connected`, `block_disconnected` and `reorg` events.
//!
//! A reorg arrives as a run of `D`s followed by a run of `C`s; bitcoind does not say where the
//! run of `C`s ends, so the reorg is emitted at [`ChainTracker::flush`], which the driver calls
//! whenever its inbox is idle, and before a new run of `D`s starts.

use std::collections::{BTreeMap, HashMap};

use bitcoin::{Amount, Block, BlockHash, Network, Txid};
use schema::event::{BlockConnected, BlockDisconnected, Reorg, Source};
use schema::{Event, Height};

/// Everything `block_connected` needs about one block.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockFacts {
    /// The block hash.
    pub hash: BlockHash,
    /// Its parent.
    pub prev: BlockHash,
    /// Its height.
    pub height: Height,
    /// Header time.
    pub header_time: u32,
    /// Serialized size.
    pub size: u64,
    /// Weight.
    pub weight: u64,
    /// Transactions, coinbase included.
    pub tx_count: u64,
    /// Sum of the coinbase outputs (saturating at the 21M cap, which a valid block never hits).
    pub coinbase_value: Amount,
    /// Total fees (`getblockstats.totalfee`), when the node told.
    pub fees: Option<Amount>,
    /// Printable text in the coinbase script.
    pub miner_tag: Option<String>,
    /// The block's txids, coinbase first.
    pub txids: Vec<Txid>,
}

/// Extracts the facts of `block` at `height`; `fees` come from RPC.
pub fn block_facts(block: &Block, height: Height, fees: Option<Amount>) -> BlockFacts {
    let coinbase = block.txdata.first();
    let coinbase_value = coinbase
        .map(|cb| {
            cb.output
                .iter()
                .try_fold(Amount::ZERO, |acc, o| acc.checked_add(o.value))
                .unwrap_or(Amount::MAX_MONEY)
        })
        .unwrap_or(Amount::ZERO);
    let miner_tag = coinbase
        .and_then(|cb| cb.input.first())
        .and_then(|i| miner_tag(i.script_sig.as_bytes()));
    BlockFacts {
        hash: block.block_hash(),
        prev: block.header.prev_blockhash,
        height,
        header_time: block.header.time,
        size: block.total_size() as u64,
        weight: block.weight().to_wu(),
        tx_count: block.txdata.len() as u64,
        coinbase_value,
        fees,
        miner_tag,
        txids: block.txdata.iter().map(|t| t.compute_txid()).collect(),
    }
}

/// The height a block states in its coinbase (BIP34), when it does.
pub fn bip34_height(block: &Block) -> Option<Height> {
    block
        .bip34_block_height()
        .ok()
        .and_then(|h| u32::try_from(h).ok())
        .map(Height)
}

/// Shortest run of printable ASCII that counts as text in a coinbase script.
const MIN_TAG_RUN: usize = 4;
/// Longest tag kept.
const MAX_TAG_LEN: usize = 100;

/// Printable text in a coinbase script (pool tags such as `/Foundry USA Pool/`): the runs of at
/// least four printable ASCII characters, joined by a space.
pub fn miner_tag(script: &[u8]) -> Option<String> {
    let mut runs: Vec<String> = Vec::new();
    let mut cur = String::new();
    for &b in script {
        if (0x20..0x7f).contains(&b) {
            cur.push(char::from(b));
        } else {
            if cur.trim().len() >= MIN_TAG_RUN {
                runs.push(cur.trim().to_string());
            }
            cur.clear();
        }
    }
    if cur.trim().len() >= MIN_TAG_RUN {
        runs.push(cur.trim().to_string());
    }
    let tag: String = runs.join(" ").chars().take(MAX_TAG_LEN).collect();
    (!tag.is_empty()).then_some(tag)
}

/// What the tracker knows about one block.
#[derive(Debug, Clone, Copy)]
struct Known {
    height: Height,
    prev: Option<BlockHash>,
    times_connected: u32,
    times_disconnected: u32,
}

/// A run of disconnects, and the connects that followed.
#[derive(Debug, Clone)]
struct PendingReorg {
    old_tip: BlockHash,
    old_height: Height,
    /// Disconnected blocks, old tip first.
    disconnected: Vec<BlockHash>,
    /// Connected blocks, lowest first.
    connected: Vec<(BlockHash, Height)>,
    fork_point: Option<BlockHash>,
    fork_height: Height,
}

/// How many blocks below the tip the tracker remembers (reorgs deeper than this still produce
/// events; their old blocks' heights then come from RPC).
pub const KEEP_BLOCKS: u32 = 2_016;

/// The agent's view of its node's active chain.
#[derive(Debug)]
pub struct ChainTracker {
    network: Network,
    known: HashMap<BlockHash, Known>,
    by_height: BTreeMap<Height, Vec<BlockHash>>,
    tip: Option<(BlockHash, Height)>,
    pending: Option<PendingReorg>,
}

impl ChainTracker {
    /// An empty view for a node on `network` (the subsidy schedule depends on it).
    pub fn new(network: Network) -> Self {
        ChainTracker {
            network,
            known: HashMap::new(),
            by_height: BTreeMap::new(),
            tip: None,
            pending: None,
        }
    }

    /// The active tip as far as the tracker knows.
    pub fn tip(&self) -> Option<(BlockHash, Height)> {
        self.tip
    }

    /// Height of a known block.
    pub fn height_of(&self, hash: &BlockHash) -> Option<Height> {
        self.known.get(hash).map(|k| k.height)
    }

    /// Parent of a known block, when known.
    pub fn prev_of(&self, hash: &BlockHash) -> Option<BlockHash> {
        self.known.get(hash).and_then(|k| k.prev)
    }

    /// Height a block with parent `prev` has, if the parent is known.
    pub fn height_after(&self, prev: &BlockHash) -> Option<Height> {
        self.height_of(prev).map(Height::next)
    }

    /// Records a block learned from RPC (header or chain info) without emitting anything.
    pub fn remember(&mut self, hash: BlockHash, height: Height, prev: Option<BlockHash>) {
        let entry = self.known.entry(hash).or_insert_with(|| Known {
            height,
            prev,
            times_connected: 0,
            times_disconnected: 0,
        });
        entry.height = height;
        if prev.is_some() {
            entry.prev = prev;
        }
        let at = self.by_height.entry(height).or_default();
        if !at.contains(&hash) {
            at.push(hash);
        }
    }

    /// Sets the tip from RPC (`getblockchaininfo` at startup or after a resync).
    pub fn set_tip(&mut self, hash: BlockHash, height: Height) {
        self.remember(hash, height, None);
        self.tip = Some((hash, height));
        self.prune();
    }

    /// A block was connected: returns its `block_connected` event.
    pub fn connected(&mut self, facts: &BlockFacts, source: Source) -> Vec<Event> {
        self.remember(facts.hash, facts.height, Some(facts.prev));
        let occurrence = match self.known.get_mut(&facts.hash) {
            Some(k) => {
                let n = k.times_connected;
                k.times_connected = k.times_connected.saturating_add(1);
                n
            }
            None => 0,
        };
        if let Some(p) = self.pending.as_mut() {
            p.connected.push((facts.hash, facts.height));
        }
        self.tip = Some((facts.hash, facts.height));
        self.prune();
        vec![Event::BlockConnected(BlockConnected {
            hash: facts.hash,
            height: facts.height,
            prev: facts.prev,
            header_time: facts.header_time,
            size: facts.size,
            weight: facts.weight,
            tx_count: facts.tx_count,
            coinbase_value: facts.coinbase_value,
            subsidy: schema::subsidy::subsidy(facts.height, self.network),
            fees: facts.fees,
            miner_tag: facts.miner_tag.clone(),
            occurrence,
            source,
        })]
    }

    /// A block was disconnected. `header` gives its height and parent when the tracker does
    /// not know the block (the driver asks RPC). Returns `block_disconnected`, preceded by the
    /// previous reorg if this disconnect starts a new one.
    pub fn disconnected(
        &mut self,
        hash: BlockHash,
        header: Option<(Height, BlockHash)>,
        source: Source,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        if self
            .pending
            .as_ref()
            .is_some_and(|p| !p.connected.is_empty())
        {
            out.extend(self.flush());
        }
        if let Some((height, prev)) = header {
            self.remember(hash, height, Some(prev));
        }
        let (height, prev, occurrence) = match self.known.get_mut(&hash) {
            Some(k) => {
                let n = k.times_disconnected;
                k.times_disconnected = k.times_disconnected.saturating_add(1);
                (k.height, k.prev, n)
            }
            // Neither known nor told: the tip height is the best guess.
            None => (self.tip.map(|t| t.1).unwrap_or_default(), None, 0),
        };
        let fork_height = height.prev().unwrap_or_default();
        match self.pending.as_mut() {
            Some(p) => {
                p.disconnected.push(hash);
                p.fork_point = prev;
                p.fork_height = fork_height;
            }
            None => {
                self.pending = Some(PendingReorg {
                    old_tip: hash,
                    old_height: height,
                    disconnected: vec![hash],
                    connected: Vec::new(),
                    fork_point: prev,
                    fork_height,
                })
            }
        }
        self.tip = prev.map(|p| (p, fork_height));
        out.push(Event::BlockDisconnected(BlockDisconnected {
            hash,
            height,
            occurrence,
            source,
        }));
        out
    }

    /// Ends a run of disconnects and connects: returns the `reorg` if blocks were both
    /// disconnected and connected. A run of disconnects with no connect yet stays pending.
    pub fn flush(&mut self) -> Option<Event> {
        let p = self.pending.take()?;
        let Some(&(new_tip, new_height)) = p.connected.last() else {
            self.pending = Some(p);
            return None;
        };
        // Re-connecting exactly what was disconnected (invalidate + reconsider) is no branch
        // change.
        let mut back: Vec<BlockHash> = p.connected.iter().map(|c| c.0).collect();
        back.reverse();
        if back == p.disconnected {
            return None;
        }
        let fork_point = p
            .fork_point
            .or_else(|| p.connected.first().and_then(|(h, _)| self.prev_of(h)))
            .unwrap_or(new_tip);
        Some(Event::Reorg(Reorg {
            old_tip: p.old_tip,
            old_height: p.old_height,
            new_tip,
            new_height,
            fork_point,
            fork_height: p.fork_height,
            depth: u32::try_from(p.disconnected.len()).unwrap_or(u32::MAX),
            disconnected: p.disconnected,
            connected: p.connected.into_iter().map(|c| c.0).collect(),
            source: Source::Zmq,
        }))
    }

    /// Whether a reorg is being assembled.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    fn prune(&mut self) {
        let Some((_, tip_height)) = self.tip else {
            return;
        };
        let floor = Height(tip_height.0.saturating_sub(KEEP_BLOCKS));
        while let Some((&h, _)) = self.by_height.first_key_value() {
            if h >= floor {
                break;
            }
            if let Some(hashes) = self.by_height.remove(&h) {
                for hash in hashes {
                    self.known.remove(&hash);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{block_store, capture, CapturedMessage};
    use crate::sources::zmq::{decode, SequenceEvent, ZmqMessage};
    use std::str::FromStr;

    fn h(s: &str) -> BlockHash {
        BlockHash::from_str(s).unwrap()
    }

    /// Replays a node's captured `sequence` messages through the tracker, the way the driver
    /// does: blocks come from the capture's `rawblock`s (any node), heights from the chain
    /// view, and flush happens when the stream pauses (100 ms).
    fn replay(node: usize) -> Vec<Event> {
        let blocks = block_store();
        let msgs: Vec<CapturedMessage> = capture(node);
        let mut chain = ChainTracker::new(Network::Regtest);
        let mut out = Vec::new();
        let mut last_time = None;
        for m in msgs.iter().filter(|m| m.topic == "sequence") {
            if last_time.is_some_and(|t| m.recv_time_us - t > 100_000) {
                out.extend(chain.flush());
            }
            last_time = Some(m.recv_time_us);
            let Ok(ZmqMessage::Sequence { event, .. }) =
                decode(b"sequence", &m.body, &m.seq.to_le_bytes())
            else {
                panic!("undecodable sequence message");
            };
            match event {
                SequenceEvent::BlockConnected(hash) => {
                    let Some(block) = blocks.get(&hash) else {
                        // Genesis is connected at startup and never sent as rawblock.
                        chain.set_tip(hash, Height(0));
                        continue;
                    };
                    let height = chain
                        .height_after(&block.header.prev_blockhash)
                        .or_else(|| bip34_height(block))
                        .unwrap();
                    out.extend(chain.connected(&block_facts(block, height, None), Source::Zmq));
                }
                SequenceEvent::BlockDisconnected(hash) => {
                    out.extend(chain.disconnected(hash, None, Source::Zmq));
                }
                _ => {}
            }
        }
        out.extend(chain.flush());
        out
    }

    fn reorgs(events: &[Event]) -> Vec<&Reorg> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Reorg(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn node2_capture_gives_the_two_reorgs_of_the_timeline() {
        let events = replay(2);
        let r = reorgs(&events);
        assert_eq!(r.len(), 2, "{r:#?}");

        let r1 = r[0];
        assert_eq!(r1.depth, 1);
        assert_eq!(
            r1.old_tip,
            h("6e0ac1f18985c97115eb3716e846388c12bf4296ecadca9449d89d3186f308eb")
        );
        assert_eq!(r1.old_height, Height(114));
        assert_eq!(
            r1.fork_point,
            h("42f4ef264a5e5e11ee8c8a0067bb953ee0ee9f74fc228e91838ae3781d801ad7")
        );
        assert_eq!(r1.fork_height, Height(113));
        assert_eq!(
            r1.connected,
            vec![
                h("3f682d3639275fcbe85fb6cae7e98c1774d4c366c8e15acb735d6c3fb08f9aa5"),
                h("7f384928e562f91cee93af4ef8e8eb84d43990d2cf016f2a8465133f1d56d64e"),
            ]
        );
        assert_eq!(r1.new_tip, r1.connected[1]);
        assert_eq!(r1.new_height, Height(115));

        let r2 = r[1];
        assert_eq!(r2.depth, 3);
        assert_eq!(
            r2.disconnected,
            vec![
                h("70bc244a928d9cf76f1104039fcaab4a2ede5b304250854b4727c8a5aa070191"),
                h("660d469782c1bc3e815b15c8fa403fa53b34c1b8b0652583d71291f9c39f066c"),
                h("5031e3f53eb1f49a2609a3ff7265dda57cfbc3a94133281631a78513371ea901"),
            ]
        );
        assert_eq!(
            r2.connected,
            vec![
                h("51211873689e4c6ac072f2c6a9f80c17c0287d13220c9eb698c83a26f4ce62d8"),
                h("72cebfc5da5096051e1cdbabb8a33f198148c7bbbd8b3bd13aec16a3131753b3"),
                h("5875830717aa54ebaa7d1af442f30aa9a035b22b08e37f26483958366d5e754d"),
                h("541c7048d8347111448dfe5fc95e05dee369c2bfed4c3f859af7798d94d09774"),
            ]
        );
        assert_eq!(r2.old_height, Height(118));
        assert_eq!(r2.fork_height, Height(115));
        assert_eq!(
            r2.fork_point,
            h("7f384928e562f91cee93af4ef8e8eb84d43990d2cf016f2a8465133f1d56d64e")
        );
        assert_eq!(r2.new_height, Height(119));
    }

    #[test]
    fn node2_capture_connects_and_disconnects_every_block_with_its_height() {
        let events = replay(2);
        let connected: Vec<&BlockConnected> = events
            .iter()
            .filter_map(|e| match e {
                Event::BlockConnected(b) => Some(b),
                _ => None,
            })
            .collect();
        // 122 final-chain blocks plus 4 stale ones (114, 116-118).
        assert_eq!(connected.len(), 126);
        let last = connected.last().unwrap();
        assert_eq!(
            last.hash,
            h("6efd80bd8c53ca3c213f92d00aa94ad0db7a70bdafb3fde2384c5fcf5d0ac661")
        );
        assert_eq!(last.height, Height(122));
        let disconnected: Vec<(BlockHash, Height)> = events
            .iter()
            .filter_map(|e| match e {
                Event::BlockDisconnected(b) => Some((b.hash, b.height)),
                _ => None,
            })
            .collect();
        assert_eq!(
            disconnected,
            vec![
                (
                    h("6e0ac1f18985c97115eb3716e846388c12bf4296ecadca9449d89d3186f308eb"),
                    Height(114)
                ),
                (
                    h("70bc244a928d9cf76f1104039fcaab4a2ede5b304250854b4727c8a5aa070191"),
                    Height(118)
                ),
                (
                    h("660d469782c1bc3e815b15c8fa403fa53b34c1b8b0652583d71291f9c39f066c"),
                    Height(117)
                ),
                (
                    h("5031e3f53eb1f49a2609a3ff7265dda57cfbc3a94133281631a78513371ea901"),
                    Height(116)
                ),
            ]
        );
        // Every connected block follows the schedule, with no reconnection in this run.
        assert!(connected.iter().all(|b| b.occurrence == 0));
        assert!(connected
            .iter()
            .all(|b| b.subsidy == Amount::from_sat(5_000_000_000)));
    }

    #[test]
    fn nodes_without_a_reorg_emit_none() {
        for node in [0, 1] {
            assert!(reorgs(&replay(node)).is_empty(), "node{node}");
        }
    }

    #[test]
    fn block_111_facts_match_rpc_answers() {
        let blocks = block_store();
        let block = &blocks[&h("4a3a4a0eadc2f5140e0bc5552973d1b380248cf5be2b9a0fe42f4ea1507201c0")];
        let fees = Amount::from_sat(20_585); // getblockstats.totalfee
        let f = block_facts(block, Height(111), Some(fees));
        assert_eq!(bip34_height(block), Some(Height(111)));
        assert_eq!(
            f.prev,
            h("6acf02d48596ac5800b53fd050316e2d15016b7987abaf20f17788959e8443bd")
        );
        // getblock verbosity 1 (getblockstats' total_size/weight leave out the coinbase).
        assert_eq!(f.size, 1723);
        assert_eq!(f.weight, 4822);
        assert_eq!(f.tx_count, 7);
        assert_eq!(f.header_time, 1_795_621_980);
        // Coinbase = subsidy + fees for an honest block (gettxoutsetinfo block_info.coinbase).
        assert_eq!(f.coinbase_value, Amount::from_sat(5_000_020_585));
        assert_eq!(f.miner_tag, None);
    }

    #[test]
    fn reconnecting_a_block_counts_a_new_occurrence() {
        let blocks = block_store();
        let block = &blocks[&h("4a3a4a0eadc2f5140e0bc5552973d1b380248cf5be2b9a0fe42f4ea1507201c0")];
        let facts = block_facts(block, Height(111), None);
        let mut chain = ChainTracker::new(Network::Regtest);
        chain.set_tip(facts.prev, Height(110));
        let first = chain.connected(&facts, Source::Zmq);
        chain.disconnected(facts.hash, None, Source::Zmq);
        let again = chain.connected(&facts, Source::Zmq);
        // Disconnect and reconnect of the same block is not a branch change.
        assert_eq!(chain.flush(), None);
        let occ = |e: &[Event]| match &e[0] {
            Event::BlockConnected(b) => b.occurrence,
            _ => panic!(),
        };
        assert_eq!(occ(&first), 0);
        assert_eq!(occ(&again), 1);
    }

    #[test]
    fn miner_tag_is_the_printable_text_of_the_coinbase_script() {
        let mut script = vec![0x03, 0x5a, 0x4e, 0x0d];
        script.extend_from_slice(b"/Foundry USA Pool #dropgold/");
        script.extend_from_slice(&[0x00, 0xfa, 0xbe]);
        assert_eq!(
            miner_tag(&script).as_deref(),
            Some("/Foundry USA Pool #dropgold/")
        );
        assert_eq!(miner_tag(&[0x02, 0x51, 0x00]), None);
    }
}
