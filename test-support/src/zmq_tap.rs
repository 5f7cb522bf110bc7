//! A ZMQ tap between a real bitcoind's PUB socket and the agent: forwards every message, and
//! on request loses some, either visibly (a gap in the topic's sequence numbers, as when a
//! high-water mark drops messages) or silently (later sequence numbers renumbered, so nothing
//! but the content shows the loss). Lets tests force what real Core does only under load.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::free_port;

/// How the next dropped messages are lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// The following messages keep their numbers: the receiver sees a gap.
    Visible,
    /// The following messages are renumbered: the receiver sees none.
    Silent,
}

/// A running tap. Dropped on drop.
pub struct ZmqTap {
    /// `tcp://127.0.0.1:PORT` the agent connects to.
    pub endpoint: String,
    drop_next: Arc<AtomicU32>,
    silent: Arc<AtomicBool>,
    dropped: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ZmqTap {
    /// Subscribes to `upstream` (a bitcoind `-zmqpub*` address) and republishes on a free port.
    /// Only messages whose topic is `topic` are ever dropped.
    pub fn start(upstream: &str, topic: &'static str) -> ZmqTap {
        let ctx = zmq::Context::new();
        let sub = ctx.socket(zmq::SUB).expect("zmq SUB socket");
        sub.connect(upstream).expect("connect the tap to bitcoind");
        sub.set_subscribe(b"").expect("subscribe");
        sub.set_rcvtimeo(100).expect("receive timeout");
        let publ = ctx.socket(zmq::PUB).expect("zmq PUB socket");
        let endpoint = format!("tcp://127.0.0.1:{}", free_port());
        publ.bind(&endpoint).expect("bind the tap");
        let drop_next = Arc::new(AtomicU32::new(0));
        let silent = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s, n, st) = (
            drop_next.clone(),
            silent.clone(),
            dropped.clone(),
            stop.clone(),
        );
        let thread = std::thread::spawn(move || {
            // Messages of `topic` silently lost so far: later numbers are lowered by this.
            let mut shift: u32 = 0;
            while !st.load(Ordering::Relaxed) {
                let Ok(mut parts) = sub.recv_multipart(0) else {
                    continue;
                };
                let ours = parts
                    .first()
                    .is_some_and(|t| t.as_slice() == topic.as_bytes());
                if ours
                    && d.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1))
                        .is_ok()
                {
                    n.fetch_add(1, Ordering::SeqCst);
                    if s.load(Ordering::SeqCst) {
                        shift += 1;
                    }
                    continue;
                }
                if ours && shift > 0 {
                    if let Some(seq) = parts.get_mut(2).filter(|p| p.len() == 4) {
                        let n = u32::from_le_bytes([seq[0], seq[1], seq[2], seq[3]]);
                        seq.copy_from_slice(&n.wrapping_sub(shift).to_le_bytes());
                    }
                }
                let _ = publ.send_multipart(parts, 0);
            }
        });
        // Let the subscription reach bitcoind before the test publishes anything.
        std::thread::sleep(Duration::from_millis(300));
        ZmqTap {
            endpoint,
            drop_next,
            silent,
            dropped,
            stop,
            thread: Some(thread),
        }
    }

    /// Loses the next `n` messages of the tap's topic, `loss`-ly.
    pub fn drop_next(&self, n: u32, loss: Loss) {
        self.silent.store(loss == Loss::Silent, Ordering::SeqCst);
        self.drop_next.store(n, Ordering::SeqCst);
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u32 {
        self.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for ZmqTap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
