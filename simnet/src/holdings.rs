//! Which transactions each node holds, and why it lacks each one another node holds: the
//! fleet-wide comparison behind the truth's `mempool_at_end` records ([`MempoolAtEnd`]). It
//! only reads node states; the simulation writes the records when a scenario has played out,
//! and [`crate::Fleet::mempools`] answers the same question at any moment.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bitcoin::Txid;

use crate::node::NodeState;
use crate::truth::{MempoolAtEnd, MissingTx};

/// Fee (sat) and virtual size (vB) of a held transaction.
type Held = BTreeMap<Txid, (u64, u64)>;

/// What one node holds.
fn held(node: &NodeState) -> Held {
    node.mempool
        .entries()
        .map(|e| (e.txid, (e.fee.to_sat(), e.vsize)))
        .collect()
}

/// `node`'s mempool against `fleet` (every transaction some node holds).
pub fn compare(node: &NodeState, fleet: &Held) -> MempoolAtEnd {
    let mut own: Vec<Txid> = node.mempool.entries().map(|e| e.txid).collect();
    own.sort();
    let missing = fleet
        .iter()
        .filter(|(txid, _)| !node.mempool.contains(txid))
        .map(|(txid, (fee_sat, vsize))| MissingTx {
            txid: *txid,
            reason: node.why_not_held(txid),
            fee_sat: *fee_sat,
            vsize: *vsize,
        })
        .collect();
    MempoolAtEnd {
        held: own,
        missing,
        min_fee_sat_per_kvb: node.min_fee().to_sat_per_kvb(),
        min_relay_fee_sat_per_kvb: node.policy.min_relay_fee.to_sat_per_kvb(),
        max_mempool_vbytes: node.policy.max_mempool_vbytes,
        blocks_only: node.policy.blocks_only,
    }
}

/// Every node's mempool against the fleet's, by node name in the given order. Nodes are locked
/// one at a time (twice each); a node whose lock is poisoned is left out.
pub(crate) fn mempools(nodes: &[(String, &Mutex<NodeState>)]) -> Vec<(String, MempoolAtEnd)> {
    let mut fleet = Held::new();
    for (_, state) in nodes {
        if let Ok(n) = state.lock() {
            fleet.extend(held(&n));
        }
    }
    nodes
        .iter()
        .filter_map(|(name, state)| {
            let n = state.lock().ok()?;
            Some((name.clone(), compare(&n, &fleet)))
        })
        .collect()
}
