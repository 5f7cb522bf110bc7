//! bitcoind's ZMQ notifications: frame decoding (pure), per-topic sequence checks (pure) and the
//! subscriber thread that feeds decoded messages into a bounded tokio channel.
//!
//! bitcoind publishes each notification as a three-frame multipart message:
//! `[topic, body, sequence]`, where `sequence` is a little-endian `u32` counted per topic from
//! 0 at node start. Bodies (see Core's `doc/zmq.md`):
//!
//! - `rawblock`: the serialized block (only for the new tip after each chain update, not for
//!   every block connected during a reorg);
//! - `rawtx`: the serialized transaction (on mempool acceptance and for every transaction of a
//!   connected or disconnected block);
//! - `sequence`: a 32-byte hash in display order, one label byte (`C` block connected, `D`
//!   block disconnected, `A` tx added to the mempool, `R` tx removed for a reason other than
//!   block inclusion), and for `A`/`R` the node's mempool sequence as a little-endian `u64`.
//!
//! What the messages mean for the chain and the mempool is decided by [`crate::chain`] and
//! [`crate::mempool`]; this module only turns bytes into typed messages.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, Transaction, Txid};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::metrics::Metrics;

/// A ZMQ topic the agent subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// `sequence`: block connects/disconnects and mempool additions/removals.
    Sequence,
    /// `rawblock`: serialized tip blocks.
    RawBlock,
    /// `rawtx`: serialized transactions.
    RawTx,
}

impl Topic {
    /// Every topic, in subscription order.
    pub const ALL: [Topic; 3] = [Topic::Sequence, Topic::RawBlock, Topic::RawTx];

    /// The topic name as bitcoind sends it in the first frame.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Sequence => "sequence",
            Topic::RawBlock => "rawblock",
            Topic::RawTx => "rawtx",
        }
    }

    /// Parses the first frame of a message.
    pub fn from_frame(frame: &[u8]) -> Option<Topic> {
        match frame {
            b"sequence" => Some(Topic::Sequence),
            b"rawblock" => Some(Topic::RawBlock),
            b"rawtx" => Some(Topic::RawTx),
            _ => None,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one `sequence` notification says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceEvent {
    /// `C`: a block was connected to the active chain.
    BlockConnected(BlockHash),
    /// `D`: a block was disconnected from the active chain.
    BlockDisconnected(BlockHash),
    /// `A`: a transaction entered the mempool.
    TxAdded {
        /// The transaction.
        txid: Txid,
        /// The node's mempool sequence of this addition.
        mempool_sequence: u64,
    },
    /// `R`: a transaction left the mempool (not for block inclusion).
    TxRemoved {
        /// The transaction.
        txid: Txid,
        /// The node's mempool sequence of this removal.
        mempool_sequence: u64,
    },
}

/// One decoded ZMQ notification.
#[derive(Debug, Clone, PartialEq)]
pub enum ZmqMessage {
    /// A `sequence` notification.
    Sequence {
        /// Per-topic message counter.
        seq: u32,
        /// What happened.
        event: SequenceEvent,
    },
    /// A `rawblock` notification.
    RawBlock {
        /// Per-topic message counter.
        seq: u32,
        /// The block.
        block: Box<Block>,
    },
    /// A `rawtx` notification.
    RawTx {
        /// Per-topic message counter.
        seq: u32,
        /// The transaction.
        tx: Box<Transaction>,
    },
}

impl ZmqMessage {
    /// The topic the message came on.
    pub fn topic(&self) -> Topic {
        match self {
            ZmqMessage::Sequence { .. } => Topic::Sequence,
            ZmqMessage::RawBlock { .. } => Topic::RawBlock,
            ZmqMessage::RawTx { .. } => Topic::RawTx,
        }
    }

    /// The per-topic message counter.
    pub fn seq(&self) -> u32 {
        match self {
            ZmqMessage::Sequence { seq, .. }
            | ZmqMessage::RawBlock { seq, .. }
            | ZmqMessage::RawTx { seq, .. } => *seq,
        }
    }
}

/// Why a multipart message could not be decoded. The message is counted, logged and skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The message did not have exactly three frames.
    #[error("expected 3 frames (topic, body, sequence), got {found}")]
    FrameCount {
        /// Number of frames received.
        found: usize,
    },
    /// The first frame names a topic the agent does not handle.
    #[error("unknown topic {topic:?}")]
    UnknownTopic {
        /// The topic frame, lossily as text.
        topic: String,
    },
    /// The sequence frame is not 4 bytes.
    #[error("{topic}: sequence frame has {len} bytes, expected 4")]
    BadSequenceLength {
        /// The topic.
        topic: Topic,
        /// Its length.
        len: usize,
    },
    /// A `sequence` body has the wrong length for its label.
    #[error("sequence body has {len} bytes, expected {expected} for label {label:?}")]
    ShortBody {
        /// Length received.
        len: usize,
        /// Length the label requires.
        expected: usize,
        /// The label byte as a character (`?` when the body is too short to have one).
        label: char,
    },
    /// A `sequence` body carries a label other than `C`, `D`, `A`, `R`.
    #[error("sequence body has unknown label {label:#04x}")]
    UnknownLabel {
        /// The label byte.
        label: u8,
    },
    /// A `rawblock` body does not deserialize as a block.
    #[error("rawblock body ({len} bytes) is not a block: {reason}")]
    BadBlock {
        /// Body length.
        len: usize,
        /// Decoder message.
        reason: String,
    },
    /// A `rawtx` body does not deserialize as a transaction.
    #[error("rawtx body ({len} bytes) is not a transaction: {reason}")]
    BadTx {
        /// Body length.
        len: usize,
        /// Decoder message.
        reason: String,
    },
}

impl FrameError {
    /// A short, low-cardinality name for metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::FrameCount { .. } => "frame_count",
            FrameError::UnknownTopic { .. } => "unknown_topic",
            FrameError::BadSequenceLength { .. } => "sequence_length",
            FrameError::ShortBody { .. } => "short_body",
            FrameError::UnknownLabel { .. } => "unknown_label",
            FrameError::BadBlock { .. } => "bad_block",
            FrameError::BadTx { .. } => "bad_tx",
        }
    }
}

/// Decodes a multipart message as received from the socket.
pub fn decode_multipart(frames: &[Vec<u8>]) -> Result<ZmqMessage, FrameError> {
    match frames {
        [topic, body, seq] => decode(topic, body, seq),
        _ => Err(FrameError::FrameCount {
            found: frames.len(),
        }),
    }
}

/// Decodes one notification from its three frames.
pub fn decode(topic: &[u8], body: &[u8], seq_bytes: &[u8]) -> Result<ZmqMessage, FrameError> {
    let topic = Topic::from_frame(topic).ok_or_else(|| FrameError::UnknownTopic {
        topic: String::from_utf8_lossy(topic).chars().take(64).collect(),
    })?;
    let seq = <[u8; 4]>::try_from(seq_bytes)
        .map(u32::from_le_bytes)
        .map_err(|_| FrameError::BadSequenceLength {
            topic,
            len: seq_bytes.len(),
        })?;
    match topic {
        Topic::Sequence => Ok(ZmqMessage::Sequence {
            seq,
            event: decode_sequence_body(body)?,
        }),
        Topic::RawBlock => bitcoin::consensus::deserialize::<Block>(body)
            .map(|b| ZmqMessage::RawBlock {
                seq,
                block: Box::new(b),
            })
            .map_err(|e| FrameError::BadBlock {
                len: body.len(),
                reason: e.to_string(),
            }),
        Topic::RawTx => bitcoin::consensus::deserialize::<Transaction>(body)
            .map(|t| ZmqMessage::RawTx {
                seq,
                tx: Box::new(t),
            })
            .map_err(|e| FrameError::BadTx {
                len: body.len(),
                reason: e.to_string(),
            }),
    }
}

/// Reads a 32-byte hash sent in display (reversed) byte order.
fn display_order_hash(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(bytes.iter().rev()) {
        *o = *b;
    }
    out
}

fn decode_sequence_body(body: &[u8]) -> Result<SequenceEvent, FrameError> {
    let Some(&label) = body.get(32) else {
        return Err(FrameError::ShortBody {
            len: body.len(),
            expected: 33,
            label: '?',
        });
    };
    let expected = match label {
        b'C' | b'D' => 33,
        b'A' | b'R' => 41,
        other => return Err(FrameError::UnknownLabel { label: other }),
    };
    if body.len() != expected {
        return Err(FrameError::ShortBody {
            len: body.len(),
            expected,
            label: char::from(label),
        });
    }
    let hash = display_order_hash(&body[..32]);
    let mempool_sequence = || {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[33..41]);
        u64::from_le_bytes(b)
    };
    Ok(match label {
        b'C' => SequenceEvent::BlockConnected(BlockHash::from_byte_array(hash)),
        b'D' => SequenceEvent::BlockDisconnected(BlockHash::from_byte_array(hash)),
        b'A' => SequenceEvent::TxAdded {
            txid: Txid::from_byte_array(hash),
            mempool_sequence: mempool_sequence(),
        },
        _ => SequenceEvent::TxRemoved {
            txid: Txid::from_byte_array(hash),
            mempool_sequence: mempool_sequence(),
        },
    })
}

/// What a per-topic sequence number says about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// First message seen on this topic.
    First,
    /// The expected next number.
    InOrder,
    /// Numbers were skipped: messages were lost (high-water mark, reconnect).
    Gap {
        /// The number expected.
        expected: u32,
        /// The number received.
        found: u32,
    },
    /// The number went backwards: the node restarted.
    Restart {
        /// The number expected.
        expected: u32,
        /// The number received.
        found: u32,
    },
}

impl SeqCheck {
    /// Whether the agent must re-read the node's state over RPC.
    pub fn needs_resync(self) -> bool {
        matches!(self, SeqCheck::Gap { .. } | SeqCheck::Restart { .. })
    }
}

/// Tracks the per-topic counters bitcoind puts in the third frame.
#[derive(Debug, Default, Clone)]
pub struct SequenceTracker {
    last: HashMap<Topic, u32>,
}

impl SequenceTracker {
    /// Records `seq` for `topic` and says whether anything was missed.
    pub fn check(&mut self, topic: Topic, seq: u32) -> SeqCheck {
        let result = match self.last.get(&topic) {
            None => SeqCheck::First,
            Some(&last) => {
                let expected = last.wrapping_add(1);
                if seq == expected {
                    SeqCheck::InOrder
                } else if seq < expected && expected != 0 {
                    SeqCheck::Restart {
                        expected,
                        found: seq,
                    }
                } else {
                    SeqCheck::Gap {
                        expected,
                        found: seq,
                    }
                }
            }
        };
        self.last.insert(topic, seq);
        result
    }

    /// Forgets every counter (after a reconnect).
    pub fn reset(&mut self) {
        self.last.clear();
    }
}

/// Where to subscribe: one endpoint per topic (several topics may share an endpoint).
#[derive(Debug, Clone)]
pub struct ZmqEndpoints {
    /// Endpoint of each topic.
    pub endpoints: Vec<(Topic, String)>,
}

/// A received notification, or a frame that could not be decoded, with its receipt time.
#[derive(Debug)]
pub struct Received {
    /// The agent's [`Clock`] at receipt, µs since the epoch.
    pub observed_at: schema::UnixMicros,
    /// The endpoint it came from.
    pub endpoint: String,
    /// The decoded message or why it could not be decoded.
    pub message: Result<ZmqMessage, FrameError>,
}

/// Receive high-water mark per socket: bitcoind's docs recommend raising it so bursts (a block's
/// worth of rawtx) are not dropped; the bounded channel behind it applies backpressure.
const RCV_HWM: i32 = 100_000;

/// One SUB socket and whether it carries a raw-data topic (`rawtx`, `rawblock`).
struct Sub {
    endpoint: String,
    sock: zmq::Socket,
    raw: bool,
}

impl Sub {
    /// Takes one queued message without blocking, decoded, counted and stamped with `clock` at
    /// receipt; `None` when nothing is queued.
    fn try_recv(&self, metrics: &Metrics, clock: &Clock) -> Option<Received> {
        match self.sock.recv_multipart(zmq::DONTWAIT) {
            Ok(frames) => {
                let message = decode_multipart(&frames);
                let topic = frames
                    .first()
                    .and_then(|f| Topic::from_frame(f))
                    .map(Topic::as_str)
                    .unwrap_or("unknown");
                metrics.zmq_message(topic);
                Some(Received {
                    observed_at: clock.now(),
                    endpoint: self.endpoint.clone(),
                    message,
                })
            }
            Err(zmq::Error::EAGAIN) => None,
            Err(e) => {
                tracing::warn!(endpoint = %self.endpoint, error = %e, "zmq receive failed");
                None
            }
        }
    }
}

/// Starts the subscriber thread. It polls every socket, decodes what arrives and sends it into
/// `tx` (blocking when the channel is full), stamped with `clock` at receipt, until `shutdown`
/// fires or the receiver is dropped.
///
/// Raw data is handed on before the `sequence` notifications that refer to it: bitcoind
/// publishes a transaction's `rawtx` just before its `A`, but on separate endpoints the two
/// arrive on separate sockets, so in each wake-up the sockets carrying `rawtx`/`rawblock` are
/// drained first and again before each `sequence` message is handed on. Each socket's own
/// order is kept (an endpoint shared by several topics keeps bitcoind's publishing order).
pub fn spawn_subscriber(
    endpoints: &ZmqEndpoints,
    tx: mpsc::Sender<Received>,
    metrics: Metrics,
    clock: Clock,
    shutdown: CancellationToken,
) -> Result<std::thread::JoinHandle<()>, crate::Error> {
    let ctx = zmq::Context::new();
    // Group topics by endpoint: one SUB socket per endpoint.
    let mut by_endpoint: Vec<(String, Vec<Topic>)> = Vec::new();
    for (topic, ep) in &endpoints.endpoints {
        match by_endpoint.iter_mut().find(|(e, _)| e == ep) {
            Some((_, topics)) => topics.push(*topic),
            None => by_endpoint.push((ep.clone(), vec![*topic])),
        }
    }
    let mut sockets = Vec::new();
    for (ep, topics) in by_endpoint {
        let zerr = |e: zmq::Error| crate::Error::Zmq {
            endpoint: ep.clone(),
            reason: e.to_string(),
        };
        let sock = ctx.socket(zmq::SUB).map_err(zerr)?;
        sock.set_rcvhwm(RCV_HWM).map_err(zerr)?;
        sock.set_tcp_keepalive(1).map_err(zerr)?;
        for t in &topics {
            sock.set_subscribe(t.as_str().as_bytes()).map_err(zerr)?;
        }
        sock.connect(&ep).map_err(zerr)?;
        let raw = topics.iter().any(|t| *t != Topic::Sequence);
        sockets.push(Sub {
            endpoint: ep,
            sock,
            raw,
        });
    }
    std::thread::Builder::new()
        .name("zmq-sub".into())
        .spawn(move || subscriber_loop(ctx, sockets, tx, metrics, clock, shutdown))
        .map_err(|e| crate::Error::Zmq {
            endpoint: "thread".into(),
            reason: e.to_string(),
        })
}

/// Hands on everything queued on the raw-data sockets; `false` when the receiver is gone.
fn forward_raw(
    sockets: &[Sub],
    tx: &mpsc::Sender<Received>,
    metrics: &Metrics,
    clock: &Clock,
) -> bool {
    for sub in sockets.iter().filter(|s| s.raw) {
        while let Some(rec) = sub.try_recv(metrics, clock) {
            if tx.blocking_send(rec).is_err() {
                return false;
            }
        }
    }
    true
}

fn subscriber_loop(
    _ctx: zmq::Context,
    sockets: Vec<Sub>,
    tx: mpsc::Sender<Received>,
    metrics: Metrics,
    clock: Clock,
    shutdown: CancellationToken,
) {
    let poll_every = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        let mut items: Vec<zmq::PollItem<'_>> = sockets
            .iter()
            .map(|s| s.sock.as_poll_item(zmq::POLLIN))
            .collect();
        match zmq::poll(&mut items, poll_every.as_millis() as i64) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "zmq poll failed");
                std::thread::sleep(poll_every);
                continue;
            }
        }
        drop(items);
        // Raw data first, then the `sequence`-only sockets; a rawtx that arrives while those
        // are drained still goes ahead of the notifications after it.
        if !forward_raw(&sockets, &tx, &metrics, &clock) {
            return;
        }
        for sub in sockets.iter().filter(|s| !s.raw) {
            while let Some(rec) = sub.try_recv(&metrics, &clock) {
                if !forward_raw(&sockets, &tx, &metrics, &clock) || tx.blocking_send(rec).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{capture, CapturedMessage};

    #[test]
    fn every_captured_message_of_the_three_topics_decodes() {
        for node in 0..3 {
            let msgs: Vec<CapturedMessage> = capture(node);
            let mut counts = HashMap::new();
            for m in &msgs {
                let decoded = decode(m.topic.as_bytes(), &m.body, &m.seq.to_le_bytes());
                if Topic::from_frame(m.topic.as_bytes()).is_none() {
                    assert!(matches!(decoded, Err(FrameError::UnknownTopic { .. })));
                    continue;
                }
                let decoded = decoded.unwrap_or_else(|e| panic!("node{node} {}: {e}", m.topic));
                assert_eq!(decoded.seq(), m.seq);
                *counts.entry(decoded.topic()).or_insert(0) += 1;
            }
            for t in Topic::ALL {
                assert!(
                    counts.get(&t).copied().unwrap_or(0) > 0,
                    "node{node} has no {t}"
                );
            }
        }
    }

    #[test]
    fn captured_sequence_numbers_have_no_gaps() {
        for node in 0..3 {
            let mut tracker = SequenceTracker::default();
            for m in capture(node) {
                if let Some(t) = Topic::from_frame(m.topic.as_bytes()) {
                    assert!(
                        !tracker.check(t, m.seq).needs_resync(),
                        "node{node} {t} {}",
                        m.seq
                    );
                }
            }
        }
    }

    #[test]
    fn genesis_connect_decodes_in_display_order() {
        let body = bitcoin::hex::FromHex::from_hex(
            "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e220643",
        )
        .map(|v: Vec<u8>| v)
        .unwrap();
        let m = decode(b"sequence", &body, &0u32.to_le_bytes()).unwrap();
        let genesis = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest);
        assert_eq!(
            m,
            ZmqMessage::Sequence {
                seq: 0,
                event: SequenceEvent::BlockConnected(genesis.block_hash())
            }
        );
    }

    #[test]
    fn mempool_addition_carries_its_mempool_sequence() {
        let mut body = vec![0x11u8; 32];
        body.push(b'A');
        body.extend_from_slice(&7u64.to_le_bytes());
        let m = decode(b"sequence", &body, &5u32.to_le_bytes()).unwrap();
        assert!(matches!(
            m,
            ZmqMessage::Sequence {
                seq: 5,
                event: SequenceEvent::TxAdded {
                    mempool_sequence: 7,
                    ..
                }
            }
        ));
    }

    #[test]
    fn corrupted_messages_give_the_matching_error() {
        let c_body = {
            let mut b = vec![0u8; 32];
            b.push(b'C');
            b
        };
        let seq = 1u32.to_le_bytes();
        assert_eq!(
            decode_multipart(&[b"sequence".to_vec(), c_body.clone()]),
            Err(FrameError::FrameCount { found: 2 })
        );
        assert!(matches!(
            decode(b"hashfoo", &c_body, &seq),
            Err(FrameError::UnknownTopic { .. })
        ));
        assert!(matches!(
            decode(b"sequence", &c_body, &[1, 0, 0]),
            Err(FrameError::BadSequenceLength { len: 3, .. })
        ));
        assert!(matches!(
            decode(b"sequence", &c_body[..20], &seq),
            Err(FrameError::ShortBody { len: 20, .. })
        ));
        let mut a_short = c_body.clone();
        a_short[32] = b'A';
        assert!(matches!(
            decode(b"sequence", &a_short, &seq),
            Err(FrameError::ShortBody {
                len: 33,
                expected: 41,
                label: 'A'
            })
        ));
        let mut bad_label = c_body.clone();
        bad_label[32] = b'X';
        assert_eq!(
            decode(b"sequence", &bad_label, &seq),
            Err(FrameError::UnknownLabel { label: b'X' })
        );
        // A real block, truncated.
        let block = capture(0)
            .into_iter()
            .find(|m| m.topic == "rawblock")
            .unwrap();
        assert!(matches!(
            decode(b"rawblock", &block.body[..block.body.len() - 5], &seq),
            Err(FrameError::BadBlock { .. })
        ));
        assert!(matches!(
            decode(b"rawtx", &[1, 2, 3], &seq),
            Err(FrameError::BadTx { len: 3, .. })
        ));
    }

    /// A PUB socket bound to a free loopback port, and its endpoint.
    fn publisher(ctx: &zmq::Context) -> (zmq::Socket, String) {
        let sock = ctx.socket(zmq::PUB).unwrap();
        sock.bind("tcp://127.0.0.1:*").unwrap();
        let ep = sock.get_last_endpoint().unwrap().unwrap();
        (sock, ep)
    }

    fn publish(sock: &zmq::Socket, topic: &str, body: &[u8], seq: u32) {
        sock.send_multipart([topic.as_bytes(), body, &seq.to_le_bytes()[..]], 0)
            .unwrap();
    }

    async fn next(rx: &mut mpsc::Receiver<Received>, wait: Duration) -> Option<ZmqMessage> {
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(r)) => Some(r.message.unwrap()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_rawtx_queued_with_its_sequence_addition_is_handed_on_first() {
        let ctx = zmq::Context::new();
        let (seq_pub, seq_ep) = publisher(&ctx);
        let (tx_pub, tx_ep) = publisher(&ctx);
        let endpoints = ZmqEndpoints {
            endpoints: vec![(Topic::Sequence, seq_ep), (Topic::RawTx, tx_ep)],
        };
        // A one-slot channel lets the test hold the subscriber thread in the middle of a
        // wake-up while more notifications queue up on its sockets.
        let (tx, mut rx) = mpsc::channel(1);
        let shutdown = CancellationToken::new();
        let node = schema::NodeId::new("node0").unwrap();
        let thread = spawn_subscriber(
            &endpoints,
            tx,
            Metrics::new(&node),
            Clock::wall(),
            shutdown.clone(),
        )
        .unwrap();
        let raw = capture(0)
            .into_iter()
            .find(|m| m.topic == "rawtx")
            .unwrap()
            .body;
        let raw_txid = bitcoin::consensus::deserialize::<Transaction>(&raw)
            .unwrap()
            .compute_txid();
        let connect = |n: u8| {
            let mut b = vec![n; 32];
            b.push(b'C');
            b
        };
        // Wait until both subscriptions are live, then let the warm-up traffic settle.
        let (mut seq_live, mut tx_live) = (false, false);
        for _ in 0..100 {
            if !seq_live {
                publish(&seq_pub, "sequence", &connect(0), 0);
            }
            if !tx_live {
                publish(&tx_pub, "rawtx", &raw, 0);
            }
            while let Some(m) = next(&mut rx, Duration::from_millis(50)).await {
                match m.topic() {
                    Topic::Sequence => seq_live = true,
                    _ => tx_live = true,
                }
            }
            if seq_live && tx_live {
                break;
            }
        }
        assert!(seq_live && tx_live, "subscriptions never became live");
        std::thread::sleep(Duration::from_millis(100));
        while next(&mut rx, Duration::from_millis(100)).await.is_some() {}

        // Two block connects: the first fills the channel, the thread blocks on the second.
        publish(&seq_pub, "sequence", &connect(1), 1);
        publish(&seq_pub, "sequence", &connect(2), 2);
        std::thread::sleep(Duration::from_millis(200));
        // bitcoind's order for a mempool acceptance: rawtx, then sequence `A`.
        publish(&tx_pub, "rawtx", &raw, 1);
        let mut added = raw_txid.to_byte_array().to_vec();
        added.reverse();
        added.push(b'A');
        added.extend_from_slice(&9u64.to_le_bytes());
        publish(&seq_pub, "sequence", &added, 3);
        std::thread::sleep(Duration::from_millis(200));

        let mut got = Vec::new();
        while let Some(m) = next(&mut rx, Duration::from_millis(500)).await {
            got.push(m);
            if got.len() == 4 {
                break;
            }
        }
        let order: Vec<(Topic, u32)> = got.iter().map(|m| (m.topic(), m.seq())).collect();
        assert_eq!(
            order,
            vec![
                (Topic::Sequence, 1),
                (Topic::Sequence, 2),
                (Topic::RawTx, 1),
                (Topic::Sequence, 3)
            ]
        );
        shutdown.cancel();
        drop(rx);
        thread.join().unwrap();
    }

    #[test]
    fn gaps_and_restarts_are_told_apart() {
        let mut t = SequenceTracker::default();
        assert_eq!(t.check(Topic::RawTx, 5), SeqCheck::First);
        assert_eq!(t.check(Topic::RawTx, 6), SeqCheck::InOrder);
        assert_eq!(t.check(Topic::Sequence, 0), SeqCheck::First);
        assert_eq!(
            t.check(Topic::RawTx, 9),
            SeqCheck::Gap {
                expected: 7,
                found: 9
            }
        );
        assert_eq!(
            t.check(Topic::RawTx, 0),
            SeqCheck::Restart {
                expected: 10,
                found: 0
            }
        );
        assert_eq!(t.check(Topic::RawTx, 1), SeqCheck::InOrder);
        let mut w = SequenceTracker::default();
        w.check(Topic::RawTx, u32::MAX);
        assert_eq!(w.check(Topic::RawTx, 0), SeqCheck::InOrder);
    }
}
