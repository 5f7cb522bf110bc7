//! The scenario's scripted incidents, played on the relay engine of [`super`]: private
//! branches released as reorgs, selfish mining, bursts of rejected transactions, a block paying
//! its miner too much, mempool wipes. Each records its incident in the truth.

use super::*;

impl Sim {
    pub(super) fn scripted(&mut self, ev: ScenarioEvent) {
        match ev {
            ScenarioEvent::Reorg { depth, miner, .. } => {
                let idx = miner
                    .and_then(|m| self.scenario.node_index(&m))
                    .or_else(|| self.nodes.iter().position(|n| n.mines));
                if let Some(i) = idx {
                    self.private_branch(i, depth);
                }
            }
            ScenarioEvent::Partition { node, .. } => {
                if let Some(i) = self.scenario.node_index(&node) {
                    self.with_node(i, |n| n.partitioned = true);
                    tracing::info!(node = %node, "partitioned");
                }
            }
            ScenarioEvent::Heal { node, .. } => {
                if let Some(i) = self.scenario.node_index(&node) {
                    self.with_node(i, |n| n.partitioned = false);
                    tracing::info!(node = %node, "healed");
                    self.resync(i);
                }
            }
            ScenarioEvent::MalformedZmq { node, .. } => {
                if let Some(i) = self.scenario.node_index(&node) {
                    self.nodes[i].zmq.publish_malformed();
                }
            }
            ScenarioEvent::RpcFault { .. } => {}
            ScenarioEvent::SelfishMining {
                miner,
                withhold,
                honest,
                release_after_ms,
                ..
            } => self.selfish_mining(&miner, withhold, honest.as_deref(), release_after_ms),
            ScenarioEvent::InflatedCoinbase {
                miner,
                excess_sat,
                accepted_by,
                ..
            } => self.overpaying_block(&miner, excess_sat, accepted_by),
            ScenarioEvent::InvalidBlock {
                miner, excess_sat, ..
            } => self.overpaying_block(&miner, excess_sat, Vec::new()),
            ScenarioEvent::Stuck { node, .. } => {
                if let Some(i) = self.scenario.node_index(&node) {
                    if let Some((tip, height)) = self.with_node(i, |n| {
                        n.stuck = true;
                        (n.chain.tip(), n.chain.height())
                    }) {
                        self.record(i, Incident::Stuck { tip, height });
                        tracing::info!(node = %node, height, "stuck");
                    }
                }
            }
            ScenarioEvent::Unstuck { node, .. } => {
                if let Some(i) = self.scenario.node_index(&node) {
                    let Some((tip, height, headers)) = self.with_node(i, |n| {
                        (
                            n.chain.tip(),
                            n.chain.height(),
                            n.chain.best_header_height(),
                        )
                    }) else {
                        return;
                    };
                    self.record(
                        i,
                        Incident::Unstuck {
                            tip,
                            height,
                            headers,
                        },
                    );
                    let mut out = Outbox::default();
                    self.with_node(i, |n| n.unstick(&mut out));
                    self.emit(i, out);
                    tracing::info!(node = %node, "unstuck");
                }
            }
            ScenarioEvent::MempoolWipe { node, .. } => {
                if let Some(i) = self.scenario.node_index(&node) {
                    self.mempool_wipe(i);
                }
            }
            ScenarioEvent::RejectBurst {
                node,
                count,
                reason,
                from,
                interval_ms,
                ..
            } => self.reject_burst(&node, count, &reason, from, interval_ms),
        }
    }

    /// Starts a rejection burst: the incident record and the first rejection now, the others
    /// every `interval_ms`.
    pub(super) fn reject_burst(
        &mut self,
        node: &str,
        count: u32,
        reason: &str,
        from: Option<String>,
        interval_ms: u64,
    ) {
        let Some(i) = self.scenario.node_index(node) else {
            return;
        };
        let from_name = match from {
            Some(f) => Some(f),
            None => self
                .with_node(i, |n| n.peers.first().map(|p| p.name.clone()))
                .flatten(),
        };
        let Some(from_name) = from_name else {
            return;
        };
        let Some(f) = self.scenario.node_index(&from_name) else {
            return;
        };
        let Some(peer) = self.with_node(i, |n| n.peer_id(&from_name)).flatten() else {
            return;
        };
        let example = rejected_tx(self.scenario.seed, node, 0);
        self.record(
            i,
            Incident::RejectBurst {
                count,
                reason: reason.to_owned(),
                reason_text: reject_text(reason, &example),
                from: from_name,
                peer,
                interval_ms,
            },
        );
        self.reject_tx(i, f, reason, 0);
        for index in 1..count {
            self.schedule(
                self.now_ms + u64::from(index) * interval_ms,
                SimEvent::RejectTx {
                    node: i,
                    from: f,
                    reason: reason.to_owned(),
                    index,
                },
            );
        }
    }

    /// The `index`-th transaction of a rejection burst: peer `from` sends it, node `i` rejects it.
    pub(super) fn reject_tx(&mut self, i: usize, from: usize, reason: &str, index: u32) {
        if self.cut(i, from) {
            return;
        }
        let tx = rejected_tx(self.scenario.seed, &self.nodes[i].name, index);
        let text = reject_text(reason, &tx);
        let from_name = self.nodes[from].name.clone();
        let mut out = Outbox::default();
        self.with_node(i, |n| n.reject_tx(&tx, &from_name, reason, &text, &mut out));
        self.emit(i, out);
    }

    /// Mines a block whose coinbase pays `excess_sat` too much on the miner's tip; the nodes in
    /// `accepted_by` connect it, the others reject it. With nobody accepting it is the
    /// `invalid_block` incident (a coinbase-only block like the fixtures' block 121).
    pub(super) fn overpaying_block(
        &mut self,
        miner: &str,
        excess_sat: u64,
        accepted_by: Vec<String>,
    ) {
        let Some(m) = self.scenario.node_index(miner) else {
            return;
        };
        let max_txs = self.scenario.blocks.max_txs;
        let with_txs = !accepted_by.is_empty();
        let Some(block) = self.with_node(m, |n| {
            let tip = n.chain.tip_entry().block.clone();
            let txs = if with_txs {
                select_txs(&n.chain, &n.mempool, max_txs)
            } else {
                Vec::new()
            };
            let time = Self::block_time(n, &tip.hash);
            let mut block = build_block_overpaying(
                miner,
                tip.hash,
                tip.height,
                time,
                txs,
                Amount::from_sat(excess_sat),
            );
            block.overpay_accepted_by = accepted_by.clone();
            Arc::new(block)
        }) else {
            return;
        };
        let coinbase_sat = block.coinbase_sat();
        let limit_sat = block.coinbase_limit_sat();
        let incident = if accepted_by.is_empty() {
            Incident::InvalidBlock {
                miner: miner.to_owned(),
                hash: block.hash,
                height: block.height,
                reason: "bad-cb-amount".to_owned(),
                detail: format!(
                    "coinbase pays too much (actual={coinbase_sat} vs limit={limit_sat})"
                ),
            }
        } else {
            Incident::InflatedCoinbase {
                miner: miner.to_owned(),
                hash: block.hash,
                height: block.height,
                coinbase_sat,
                limit_sat,
                excess_sat: coinbase_sat.saturating_sub(limit_sat),
                rejected_by: self
                    .nodes
                    .iter()
                    .filter(|n| !accepted_by.contains(&n.name))
                    .map(|n| n.name.clone())
                    .collect(),
                accepted_by,
            }
        };
        self.record(m, incident);
        tracing::info!(miner, block = %block.hash, excess_sat, "overpaying block");
        let mut out = Outbox::default();
        record_mined(&mut out, &block, false);
        self.with_node(m, |n| n.receive_block(block, None, &mut out));
        self.emit(m, out);
    }

    /// Mines the withheld branch and the honest losing block, and schedules the release.
    pub(super) fn selfish_mining(
        &mut self,
        miner: &str,
        withhold: u32,
        honest: Option<&str>,
        release_after_ms: u64,
    ) {
        let Some(m) = self.scenario.node_index(miner) else {
            return;
        };
        let h = honest
            .and_then(|h| self.scenario.node_index(h))
            .or_else(|| (0..self.nodes.len()).find(|&j| j != m && self.nodes[j].mines))
            .or_else(|| (0..self.nodes.len()).find(|&j| j != m));
        let Some(h) = h else {
            return;
        };
        // The withheld branch forks off the honest miner's tip, so the honest block and the
        // first withheld block compete at the same height.
        let Some(blocks) = self.with_node(h, |n| {
            let parent = n.chain.tip_entry().block.clone();
            let time = Self::block_time(n, &parent.hash);
            let mut blocks: Vec<BlockRef> = Vec::new();
            let mut prev = parent;
            for k in 0..withhold {
                let b = Arc::new(build_block(
                    miner,
                    prev.hash,
                    prev.height,
                    time + k,
                    Vec::new(),
                ));
                blocks.push(b.clone());
                prev = b;
            }
            blocks
        }) else {
            return;
        };
        let Some(first) = blocks.first() else {
            return;
        };
        let fork_point = first.prev();
        let fork_height = first.height - 1;
        let mut out = Outbox::default();
        for b in &blocks {
            record_mined(&mut out, b, true);
        }
        let mined_at_us = self
            .emit(m, out)
            .first()
            .map(|(t, _)| *t)
            .unwrap_or_else(|| self.clock.now_us());
        let losing = self
            .mine_on_tip(h)
            .map(|(b, seen)| (b, self.nodes[h].name.clone(), seen));
        self.hold_blocks_until = Some(self.now_ms + release_after_ms);
        tracing::info!(miner, withhold, "withholding blocks");
        self.schedule(
            self.now_ms + release_after_ms,
            SimEvent::Release(Box::new(Withheld {
                miner: m,
                blocks,
                fork_point,
                fork_height,
                mined_at_us,
                losing,
            })),
        );
    }

    /// Releases a selfish miner's withheld blocks at once.
    pub(super) fn release(&mut self, w: Withheld) {
        self.hold_blocks_until = None;
        let Some((losing, losing_miner, losing_first_seen_us)) = w.losing else {
            return;
        };
        let wall = wall_us();
        let released_at_us = self.clock.sim_at(wall);
        self.stamp_at(
            w.miner,
            TruthEvent::Incident(Incident::SelfishMining {
                miner: self.nodes[w.miner].name.clone(),
                fork_point: w.fork_point,
                fork_height: w.fork_height,
                withheld: w.blocks.iter().map(|b| b.hash).collect(),
                mined_at_us: w.mined_at_us,
                released_at_us,
                losing_block: losing.hash,
                losing_height: losing.height,
                losing_miner,
                losing_first_seen_us,
            }),
            wall,
        );
        let mut out = Outbox::default();
        self.with_node(w.miner, |n| {
            for b in w.blocks {
                n.receive_block_via(b, None, Announcement::Headers, &mut out);
            }
        });
        self.emit(w.miner, out);
    }

    /// Empties node `i`'s mempool like a restart without mempool.dat (ZMQ sequences restart,
    /// the debug.log shows a shutdown and a startup).
    pub(super) fn mempool_wipe(&mut self, i: usize) {
        let Some(((dropped, before), tip)) = self.with_node(i, |n| {
            let wiped = n.wipe_mempool();
            let tip = n.chain.tip();
            (wiped, n.tip_info(&tip, &tip))
        }) else {
            return;
        };
        self.nodes[i].zmq.reset_sequences();
        let t_us = self.record(
            i,
            Incident::MempoolWipe {
                dropped,
                mempool_sequence_before: before,
            },
        );
        if let (Some(log), Some(mut banner), Some(tip)) =
            (self.nodes[i].log.clone(), self.nodes[i].banner.clone(), tip)
        {
            banner.tip = tip;
            if let Ok(mut log) = log.lock() {
                log.restart(t_us, &banner);
                log.flush();
            }
        }
        tracing::info!(node = %self.nodes[i].name, dropped, "mempool wiped");
    }

    /// Builds `depth + 1` empty blocks on the block `depth` below the miner's tip and releases
    /// them at once.
    pub(super) fn private_branch(&mut self, miner: usize, depth: u32) {
        let name = self.nodes[miner].name.clone();
        let mut out = Outbox::default();
        let built = self.with_node(miner, |n| {
            let tip_height = n.chain.height();
            let fork = n.chain.at_height(tip_height.saturating_sub(depth))?;
            let mut prev = n.chain.get(&fork).map(|e| e.block.clone())?;
            let fork_height = prev.height;
            let replaced: Vec<bitcoin::BlockHash> = ((fork_height + 1)..=tip_height)
                .rev()
                .filter_map(|h| n.chain.at_height(h))
                .collect();
            let mut released = Vec::new();
            for _ in 0..=depth {
                let time = Self::block_time(n, &prev.hash);
                let block = Arc::new(build_block(&name, prev.hash, prev.height, time, Vec::new()));
                record_mined(&mut out, &block, true);
                n.receive_block(block.clone(), None, &mut out);
                released.push(block.hash);
                prev = block;
            }
            Some((fork, fork_height, replaced, released))
        });
        if let Some(Some((fork_point, fork_height, replaced, released))) = built {
            self.record(
                miner,
                Incident::Reorg {
                    miner: name.clone(),
                    depth,
                    fork_point,
                    fork_height,
                    replaced,
                    released,
                },
            );
        }
        tracing::info!(miner = %name, depth, "released private branch");
        self.emit(miner, out);
    }
}

/// The `index`-th transaction of a rejection burst on `node`: a well-formed spend of an
/// output nobody has (its txid derived from the seed, the node and the index).
fn rejected_tx(seed: u64, node: &str, index: u32) -> Transaction {
    let prev = Txid::from_raw_hash(sha256d::Hash::hash(
        format!("simnet-reject-{seed}-{node}-{index}").as_bytes(),
    ));
    let outpoint = OutPoint {
        txid: prev,
        vout: 0,
    };
    match spend(outpoint, Amount::from_sat(100_000), 1, false) {
        Some((tx, _)) => tx,
        // 100000 sat always covers a 1 sat/vB fee; keep a coinbase-free fallback anyway.
        None => Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: Vec::new(),
            output: Vec::new(),
        },
    }
}

/// The text Core 30 logs after `was not accepted: ` for `reason` (the fixtures' wording where
/// they have one: `insufficient fee` at 15:53:03, `min relay fee not met` and `dust` from
/// `testmempoolaccept`).
pub(crate) fn reject_text(reason: &str, tx: &Transaction) -> String {
    let vsize = tx.vsize();
    match reason {
        "insufficient fee" => format!(
            "insufficient fee, rejecting replacement {}, less fees than conflicting txs; 0.00001 < 0.0001",
            tx.compute_txid()
        ),
        "min relay fee not met" => format!("min relay fee not met, 0 < {vsize}"),
        "mempool min fee not met" => format!("mempool min fee not met, {vsize} < {}", vsize * 2),
        "dust" => "dust, tx with dust output must be 0-fee".to_owned(),
        other => other.to_owned(),
    }
}
