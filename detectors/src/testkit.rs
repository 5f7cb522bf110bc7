//! Test helpers: envelope builders and a given/when/then harness, so detector tests read like
//! specs: `given(&[...]).when(&ev).then_alerts(&[("reorg", Firing)])`.

// Builders are shared by every detector module; not each uses all of them.
#![allow(dead_code)]
use std::str::FromStr;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, Network, Txid};
use schema::event::*;
use schema::{Envelope, Height, NodeId, UnixMicros};

use crate::{alert_envelope, Detector, Input, Output};

/// Event time base: 2027-01-15, whole seconds.
pub const BASE_SECS: i64 = 1_800_000_000;

/// A node name.
pub fn n(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

/// `secs` seconds after the base time.
pub fn t(secs: f64) -> UnixMicros {
    UnixMicros(BASE_SECS * 1_000_000 + (secs * 1e6) as i64)
}

/// A block hash made from a number (distinct numbers, distinct hashes).
pub fn bh(i: u32) -> BlockHash {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_le_bytes());
    b[31] = 0xbb;
    BlockHash::from_byte_array(b)
}

/// A txid made from a number.
pub fn txid(i: u32) -> Txid {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_le_bytes());
    b[31] = 0x77;
    Txid::from_byte_array(b)
}

/// An envelope from `node` at `at`.
pub fn env(node: &str, at: UnixMicros, event: impl Into<Event>) -> Envelope {
    Envelope::new(n(node), at, event)
}

/// A normal mainnet block at `height`: coinbase = subsidy + fees (0.1 BTC).
pub fn block(hash: BlockHash, height: u32, prev: BlockHash) -> BlockConnected {
    let subsidy = schema::subsidy::subsidy(Height(height), Network::Bitcoin);
    let fees = Amount::from_sat(10_000_000);
    BlockConnected {
        hash,
        height: Height(height),
        prev,
        header_time: 0,
        size: 1_000_000,
        weight: 3_990_000,
        tx_count: 3000,
        coinbase_value: subsidy + fees,
        subsidy,
        fees: Some(fees),
        miner_tag: None,
        occurrence: 0,
        source: Source::Zmq,
    }
}

/// `node` connected block `i` (parent `i - 1`) at height `i` at time `at`.
pub fn connected(node: &str, at: UnixMicros, i: u32) -> Envelope {
    env(node, at, block(bh(i), i, bh(i.wrapping_sub(1))))
}

/// `node` saw block `i` at `stage`.
pub fn seen(node: &str, at: UnixMicros, i: u32, stage: BlockStage) -> Envelope {
    env(
        node,
        at,
        BlockSeen {
            hash: bh(i),
            height: Some(Height(i)),
            stage,
            peer: Some(1),
            source: Source::Log,
        },
    )
}

/// `node` reorged from the branch `disconnected` (block numbers, old tip first) to `connected`
/// (lowest first), forking after block `fork` at height `fork_height`.
pub fn reorg(
    node: &str,
    at: UnixMicros,
    fork: u32,
    fork_height: u32,
    disconnected: &[u32],
    connected: &[u32],
    source: Source,
) -> Envelope {
    let depth = disconnected.len() as u32;
    env(
        node,
        at,
        Reorg {
            old_tip: bh(disconnected[0]),
            old_height: Height(fork_height + depth),
            new_tip: bh(*connected.last().unwrap()),
            new_height: Height(fork_height + connected.len() as u32),
            fork_point: bh(fork),
            fork_height: Height(fork_height),
            depth,
            disconnected: disconnected.iter().map(|i| bh(*i)).collect(),
            connected: connected.iter().map(|i| bh(*i)).collect(),
            source,
        },
    )
}

/// `node`'s chain tips: `(height, block number, branch_len, status)`.
pub fn tips(node: &str, at: UnixMicros, tips: &[(u32, u32, u32, TipStatus)]) -> Envelope {
    env(
        node,
        at,
        ChainTips {
            tips: tips
                .iter()
                .map(|(h, i, len, status)| ChainTip {
                    height: Height(*h),
                    hash: bh(*i),
                    branch_len: *len,
                    status: *status,
                })
                .collect(),
        },
    )
}

/// `node` found block `i` at `height` invalid for `reason`.
pub fn invalid(node: &str, at: UnixMicros, i: u32, height: u32, reason: &str) -> Envelope {
    env(
        node,
        at,
        InvalidBlock {
            hash: bh(i),
            height: Some(Height(height)),
            reason: reason.into(),
            detail: None,
            peer: Some(0),
            source: Source::Log,
        },
    )
}

/// A healthy node status at `height`.
pub fn status(height: u32, tip_time: UnixMicros) -> NodeStatus {
    NodeStatus {
        version: 300000,
        subversion: "/Satoshi:30.0.0/".into(),
        chain: "main".into(),
        blocks: Height(height),
        headers: Height(height),
        best_block_hash: bh(height),
        tip_time: Some(tip_time.as_secs()),
        initial_block_download: false,
        verification_progress: 1.0,
        peers_in: 30,
        peers_out: 10,
        mempool_count: 5000,
        mempool_bytes: 3_000_000,
        mempool_usage: 9_000_000,
        mempool_min_fee_sat_per_kvb: 1000,
        uptime_secs: 864_000,
        clock_offset_secs: Some(0),
        warnings: vec![],
        policy: Default::default(),
    }
}

/// A `tx_seen` of tx `i`.
pub fn tx_seen(node: &str, at: UnixMicros, i: u32) -> Envelope {
    env(
        node,
        at,
        TxSeen {
            txid: txid(i),
            wtxid: None,
            mempool_sequence: Some(u64::from(i)),
            vsize: Some(200),
            fee: None,
            source: Source::Zmq,
            parents: Vec::new(),
            spends: Vec::new(),
        },
    )
}

/// Applies every event and returns all outputs.
pub fn run<D: Detector>(det: &mut D, events: &[Envelope]) -> Vec<Output> {
    events
        .iter()
        .flat_map(|e| det.apply(Input::Event(e)))
        .collect()
}

/// A detector after the `given` events.
pub struct Given<D: Detector> {
    det: D,
}

/// Applies `events` to `det`, ignoring what they output.
pub fn given<D: Detector>(mut det: D, events: &[Envelope]) -> Given<D> {
    run(&mut det, events);
    Given { det }
}

impl<D: Detector> Given<D> {
    /// Applies one more event.
    pub fn when(mut self, ev: &Envelope) -> Then<D> {
        let outputs = self.det.apply(Input::Event(ev));
        Then {
            det: self.det,
            outputs,
        }
    }

    /// Applies several events, collecting their outputs.
    pub fn when_all(mut self, evs: &[Envelope]) -> Then<D> {
        let outputs = run(&mut self.det, evs);
        Then {
            det: self.det,
            outputs,
        }
    }

    /// Applies a tick.
    pub fn when_tick(mut self, at: UnixMicros) -> Then<D> {
        let outputs = self.det.apply(Input::Tick(at));
        Then {
            det: self.det,
            outputs,
        }
    }
}

/// What the `when` step output.
pub struct Then<D: Detector> {
    det: D,
    /// Everything output.
    pub outputs: Vec<Output>,
}

impl<D: Detector> Then<D> {
    /// The alerts output.
    pub fn alerts(&self) -> Vec<&Alert> {
        self.outputs.iter().filter_map(Output::as_alert).collect()
    }

    /// Asserts the alerts output are exactly these (kind, state), in order.
    #[track_caller]
    pub fn then_alerts(self, expected: &[(&str, AlertState)]) -> Self {
        let got: Vec<(&str, AlertState)> = self
            .alerts()
            .iter()
            .map(|a| (a.alert_kind.as_str(), a.state))
            .collect();
        assert_eq!(got, expected, "alerts: {:#?}", self.alerts());
        self
    }

    /// Asserts no alert was output.
    #[track_caller]
    pub fn then_no_alert(self) -> Self {
        self.then_alerts(&[])
    }

    /// The only alert of `kind`.
    #[track_caller]
    pub fn alert(&self, kind: &str) -> &Alert {
        let all: Vec<&Alert> = self
            .alerts()
            .into_iter()
            .filter(|a| a.alert_kind == kind)
            .collect();
        assert_eq!(all.len(), 1, "alerts of kind {kind}: {all:#?}");
        all[0]
    }

    /// Continues with more `when` steps.
    pub fn and(self) -> Given<D> {
        Given { det: self.det }
    }
}

/// The value of evidence `name`.
#[track_caller]
pub fn ev_value<'a>(alert: &'a Alert, name: &str) -> &'a str {
    alert
        .evidence
        .iter()
        .find(|e| e.name == name)
        .map(|e| e.value.as_str())
        .unwrap_or_else(|| panic!("no evidence {name:?} in {alert:#?}"))
}

/// Asserts that `events` give the same outputs and alert ids twice over, and that feeding every
/// event twice (at-least-once delivery) gives the same outputs as feeding it once.
#[track_caller]
pub fn assert_replay_and_duplicates_agree<D: Detector>(
    make: impl Fn() -> D,
    events: &[Envelope],
) -> Vec<Output> {
    let first = run(&mut make(), events);
    let second = run(&mut make(), events);
    assert_eq!(first, second, "replay differs");
    let ids = |outs: &[Output]| -> Vec<String> {
        outs.iter()
            .filter_map(Output::as_alert)
            .map(|a| {
                alert_envelope(crate::DetectorName::Chain, a.clone())
                    .id
                    .to_hex()
            })
            .collect()
    };
    assert_eq!(ids(&first), ids(&second));
    let doubled: Vec<Envelope> = events.iter().flat_map(|e| [e.clone(), e.clone()]).collect();
    let dup = run(&mut make(), &doubled);
    assert_eq!(first, dup, "duplicates changed the outputs");
    first
}

/// Parses a txid (for readable fixtures).
#[allow(dead_code)]
pub fn txid_hex(s: &str) -> Txid {
    Txid::from_str(s).unwrap()
}
