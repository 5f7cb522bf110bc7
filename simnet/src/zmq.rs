//! ZMQ publishing exactly as Core's `CZMQPublish*Notifier`s: one PUB socket per topic, three
//! frames `[topic, body, 4-byte little-endian per-topic sequence]`, hashes in display order.
//!
//! Sockets live in one blocking thread per node, fed by a bounded channel; PUB sockets never
//! block (messages beyond the high-water mark are dropped, as with Core).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use bitcoin::consensus::serialize;
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, Transaction, Txid};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The five notification topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Block hash of a new tip.
    HashBlock,
    /// Txid of a transaction added to the mempool or in a connected/disconnected block.
    HashTx,
    /// Serialized new tip.
    RawBlock,
    /// Serialized transaction.
    RawTx,
    /// Block connects/disconnects and mempool adds/removes.
    Sequence,
}

impl Topic {
    /// All topics, in Core's `getzmqnotifications` order.
    pub const ALL: [Topic; 5] = [
        Topic::HashBlock,
        Topic::HashTx,
        Topic::RawBlock,
        Topic::RawTx,
        Topic::Sequence,
    ];

    /// The topic frame.
    pub fn name(self) -> &'static str {
        match self {
            Topic::HashBlock => "hashblock",
            Topic::HashTx => "hashtx",
            Topic::RawBlock => "rawblock",
            Topic::RawTx => "rawtx",
            Topic::Sequence => "sequence",
        }
    }

    fn index(self) -> usize {
        match self {
            Topic::HashBlock => 0,
            Topic::HashTx => 1,
            Topic::RawBlock => 2,
            Topic::RawTx => 3,
            Topic::Sequence => 4,
        }
    }
}

/// One notification before it gets its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZmqMessage {
    /// Topic.
    pub topic: Topic,
    /// Body frame.
    pub body: Vec<u8>,
}

fn display_bytes<H: Hash<Bytes = [u8; 32]>>(h: H) -> [u8; 32] {
    let mut b = h.to_byte_array();
    b.reverse();
    b
}

impl ZmqMessage {
    /// `hashblock`: the 32-byte hash in display order.
    pub fn hashblock(hash: BlockHash) -> ZmqMessage {
        ZmqMessage {
            topic: Topic::HashBlock,
            body: display_bytes(hash).to_vec(),
        }
    }
    /// `rawblock`: the serialized block.
    pub fn rawblock(block: &Block) -> ZmqMessage {
        ZmqMessage {
            topic: Topic::RawBlock,
            body: serialize(block),
        }
    }
    /// `hashtx`: the txid in display order.
    pub fn hashtx(txid: Txid) -> ZmqMessage {
        ZmqMessage {
            topic: Topic::HashTx,
            body: display_bytes(txid).to_vec(),
        }
    }
    /// `rawtx`: the serialized transaction (with witnesses).
    pub fn rawtx(tx: &Transaction) -> ZmqMessage {
        ZmqMessage {
            topic: Topic::RawTx,
            body: serialize(tx),
        }
    }
    fn sequence(hash: [u8; 32], label: u8, mempool_seq: Option<u64>) -> ZmqMessage {
        let mut body = hash.to_vec();
        body.push(label);
        if let Some(s) = mempool_seq {
            body.extend_from_slice(&s.to_le_bytes());
        }
        ZmqMessage {
            topic: Topic::Sequence,
            body,
        }
    }
    /// `sequence` `C`: block connected.
    pub fn connected(hash: BlockHash) -> ZmqMessage {
        Self::sequence(display_bytes(hash), b'C', None)
    }
    /// `sequence` `D`: block disconnected.
    pub fn disconnected(hash: BlockHash) -> ZmqMessage {
        Self::sequence(display_bytes(hash), b'D', None)
    }
    /// `sequence` `A`: transaction added to the mempool, with the mempool sequence.
    pub fn added(txid: Txid, mempool_seq: u64) -> ZmqMessage {
        Self::sequence(display_bytes(txid), b'A', Some(mempool_seq))
    }
    /// `sequence` `R`: transaction removed from the mempool (not for a block), with the mempool sequence.
    pub fn removed(txid: Txid, mempool_seq: u64) -> ZmqMessage {
        Self::sequence(display_bytes(txid), b'R', Some(mempool_seq))
    }
}

/// The endpoint of each topic of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZmqEndpoints {
    /// `zmqpubhashblock` address.
    pub hashblock: String,
    /// `zmqpubhashtx` address.
    pub hashtx: String,
    /// `zmqpubrawblock` address.
    pub rawblock: String,
    /// `zmqpubrawtx` address.
    pub rawtx: String,
    /// `zmqpubsequence` address.
    pub sequence: String,
}

impl ZmqEndpoints {
    /// The address of `topic`.
    pub fn get(&self, topic: Topic) -> &str {
        match topic {
            Topic::HashBlock => &self.hashblock,
            Topic::HashTx => &self.hashtx,
            Topic::RawBlock => &self.rawblock,
            Topic::RawTx => &self.rawtx,
            Topic::Sequence => &self.sequence,
        }
    }
}

enum Command {
    Publish(ZmqMessage),
    Malformed,
    ResetSequences,
    Stop,
}

/// Handle to a node's publisher thread.
pub struct ZmqPublisher {
    tx: SyncSender<Command>,
    thread: Option<JoinHandle<()>>,
    endpoints: ZmqEndpoints,
    node: String,
}

const QUEUE: usize = 8192;

impl ZmqPublisher {
    /// Binds one PUB socket per topic on 127.0.0.1 (ephemeral ports) and starts the thread.
    pub fn start(ctx: &zmq::Context, node: &str) -> Result<ZmqPublisher, Error> {
        let mut sockets = Vec::new();
        let mut addrs = Vec::new();
        for topic in Topic::ALL {
            let err = |source| Error::ZmqBind {
                node: node.to_owned(),
                topic: topic.name().to_owned(),
                source,
            };
            let s = ctx.socket(zmq::PUB).map_err(err)?;
            s.set_sndhwm(1000).map_err(err)?;
            s.set_linger(0).map_err(err)?;
            s.bind("tcp://127.0.0.1:0").map_err(err)?;
            let addr = s
                .get_last_endpoint()
                .map_err(err)?
                .map_err(|_| err(zmq::Error::EINVAL))?;
            sockets.push(s);
            addrs.push(addr);
        }
        let endpoints = ZmqEndpoints {
            hashblock: addrs[0].clone(),
            hashtx: addrs[1].clone(),
            rawblock: addrs[2].clone(),
            rawtx: addrs[3].clone(),
            sequence: addrs[4].clone(),
        };
        let (tx, rx) = sync_channel(QUEUE);
        let name = node.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("zmq-{node}"))
            .spawn(move || run(rx, sockets, name))
            .map_err(|e| Error::Task {
                task: format!("zmq-{node}"),
                reason: e.to_string(),
            })?;
        Ok(ZmqPublisher {
            tx,
            thread: Some(thread),
            endpoints,
            node: node.to_owned(),
        })
    }

    /// Where each topic is published.
    pub fn endpoints(&self) -> &ZmqEndpoints {
        &self.endpoints
    }

    /// Queues a message; if the queue is full the message is dropped and logged (like a PUB
    /// socket at its high-water mark).
    pub fn publish(&self, msg: ZmqMessage) {
        self.send(Command::Publish(msg));
    }

    /// Queues a burst of malformed messages on every topic.
    pub fn publish_malformed(&self) {
        self.send(Command::Malformed);
    }

    /// Restarts every topic's sequence number at 0, as a restarted bitcoind's new publishers
    /// do (subscribers see the sequence jump back).
    pub fn reset_sequences(&self) {
        self.send(Command::ResetSequences);
    }

    fn send(&self, cmd: Command) {
        match self.tx.try_send(cmd) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!(node = %self.node, "zmq queue full, message dropped")
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::debug!(node = %self.node, "zmq publisher stopped")
            }
        }
    }

    /// Stops the thread and closes the sockets.
    pub fn stop(&mut self) {
        let _ = self.tx.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ZmqPublisher {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(rx: Receiver<Command>, sockets: Vec<zmq::Socket>, node: String) {
    let mut seqs = [0u32; 5];
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Command::Publish(msg) => {
                let i = msg.topic.index();
                let seq = seqs[i];
                seqs[i] = seqs[i].wrapping_add(1);
                let frames: [&[u8]; 3] =
                    [msg.topic.name().as_bytes(), &msg.body, &seq.to_le_bytes()];
                if let Err(e) = sockets[i].send_multipart(frames, 0) {
                    tracing::warn!(node = %node, topic = msg.topic.name(), error = %e, "zmq send failed");
                }
            }
            Command::Malformed => {
                for (i, topic) in Topic::ALL.iter().enumerate() {
                    let name = topic.name().as_bytes();
                    // Wrong frame count, a body too short for the topic, a sequence frame of
                    // the wrong length. None of them consume a sequence number.
                    let zero_seq = 0u32.to_le_bytes();
                    let bad: [Vec<&[u8]>; 3] = [
                        vec![name, b"\x01\x02"],
                        vec![name, b"short", &zero_seq],
                        vec![name, &[0u8; 32], &[7u8, 0]],
                    ];
                    for frames in bad {
                        if let Err(e) = sockets[i].send_multipart(frames, 0) {
                            tracing::warn!(node = %node, error = %e, "zmq send failed");
                        }
                    }
                }
            }
            Command::ResetSequences => seqs = [0u32; 5],
            Command::Stop => break,
        }
    }
}
