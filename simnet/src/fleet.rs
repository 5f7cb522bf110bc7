//! Starting, observing and stopping a fleet: builds every node with the shared initial chain,
//! binds its ZMQ sockets and RPC listener, opens its debug.log, runs the simulation task, and
//! reports endpoints.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bitcoin::{Amount, OutPoint};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::chain::{BlockRef, Chain};
use crate::clock::SimClock;
use crate::debug_log::{Banner, NodeLog};
use crate::holdings;
use crate::miner::{build_block, genesis};
use crate::network::{Sim, SimNode};
use crate::node::{NodeState, Peer};
use crate::policy::SatPerKvb;
use crate::rpc::{router, FaultWindow, RpcCtx};
use crate::scenario::{Scenario, ScenarioEvent};
use crate::truth::{MempoolAtEnd, TruthRecord, TruthSink};
use crate::zmq::{ZmqEndpoints, ZmqPublisher};
use crate::Error;

/// What a client needs to talk to one emulated node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEndpoints {
    /// Node name.
    pub name: String,
    /// `http://127.0.0.1:PORT`
    pub rpc_url: String,
    /// RPC user.
    pub rpc_user: String,
    /// RPC password.
    pub rpc_password: String,
    /// ZMQ endpoint per topic.
    pub zmq: ZmqEndpoints,
    /// Core version number the node reports.
    pub version: u32,
    /// Core user agent the node reports.
    pub subversion: String,
    /// The node's debug.log, when the fleet writes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_log: Option<PathBuf>,
    /// The simulated clock, only in an accelerated run (`time_scale` > 1): simulated time =
    /// `start_us + (wall - start_us) * time_scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<SimClock>,
}

/// How to start a fleet, beyond the scenario.
#[derive(Debug, Clone, Default)]
pub struct FleetOptions {
    /// Write each node's debug.log to `<dir>/<node>/debug.log` (overrides the scenario's
    /// `debug_log_dir`).
    pub debug_log_dir: Option<PathBuf>,
}

/// A running fleet of emulated nodes.
pub struct Fleet {
    endpoints: Vec<NodeEndpoints>,
    states: Vec<Arc<Mutex<NodeState>>>,
    cancel: CancellationToken,
    sim: Option<JoinHandle<()>>,
    servers: Vec<JoinHandle<()>>,
    publishers: Vec<Arc<ZmqPublisher>>,
    logs: Vec<Arc<Mutex<NodeLog>>>,
    truth: TruthSink,
    finished: tokio::sync::watch::Receiver<bool>,
    clock: SimClock,
}

/// Blocks every node starts with, shared (no notifications, no truth records).
fn initial_chain(n: u32, clock: &SimClock) -> (Vec<BlockRef>, Vec<(OutPoint, Amount)>) {
    let g = genesis();
    let now = clock.now_secs() as u32;
    let base = now.saturating_sub(n + 60);
    let mut blocks = vec![g.clone()];
    let mut prev = g;
    for h in 1..=n {
        let b = Arc::new(build_block(
            "premine",
            prev.hash,
            prev.height,
            base + h,
            Vec::new(),
        ));
        blocks.push(b.clone());
        prev = b;
    }
    // Coinbases the wallet may spend right away (mature at the next height).
    let wallet = blocks
        .iter()
        .skip(1)
        .filter(|b| n + 1 - b.height >= crate::node::COINBASE_MATURITY)
        .map(|b| {
            (
                OutPoint {
                    txid: b.block.txdata[0].compute_txid(),
                    vout: 0,
                },
                b.block.txdata[0].output[0].value,
            )
        })
        .collect();
    (blocks, wallet)
}

impl Fleet {
    /// Starts every node and the simulation. Must run inside a tokio runtime. All sockets
    /// listen when this returns.
    pub async fn start(scenario: Scenario, truth: TruthSink) -> Result<Fleet, Error> {
        Fleet::start_with(scenario, truth, FleetOptions::default()).await
    }

    /// [`Fleet::start`] with options (e.g. where the debug.log files go).
    pub async fn start_with(
        scenario: Scenario,
        truth: TruthSink,
        options: FleetOptions,
    ) -> Result<Fleet, Error> {
        scenario.validate()?;
        let log_dir = options
            .debug_log_dir
            .or_else(|| scenario.debug_log_dir.clone());
        let mut logs = Vec::new();
        let clock = SimClock::starting_now(scenario.time_scale);
        let (blocks, wallet) = initial_chain(scenario.initial_blocks, &clock);
        let ctx = zmq::Context::new();
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let mut endpoints = Vec::new();
        let mut states = Vec::new();
        let mut servers = Vec::new();
        let mut publishers = Vec::new();
        let mut sim_nodes = Vec::new();
        for (i, spec) in scenario.nodes.iter().enumerate() {
            let mut chain = Chain::new(blocks[0].clone());
            for b in blocks.iter().skip(1) {
                chain.insert(b.clone());
                if let Err(e) = chain.connect(&b.hash) {
                    return Err(Error::Task {
                        task: "initial chain".into(),
                        reason: format!("{e:?}"),
                    });
                }
            }
            let mut state = NodeState::new(&spec.name, spec.version, &spec.subversion, chain)
                .with_clock(clock)
                .with_policy(spec.policy());
            let mut links = Vec::new();
            for link in &scenario.links {
                let (other, outbound) = if link.a == spec.name {
                    (&link.b, true)
                } else if link.b == spec.name {
                    (&link.a, false)
                } else {
                    continue;
                };
                let Some(j) = scenario.node_index(other) else {
                    continue;
                };
                let o = &scenario.nodes[j];
                let peer_policy = o.policy();
                state.peers.push(Peer {
                    id: state.peers.len() as u64,
                    name: o.name.clone(),
                    outbound,
                    delay_ms: link.delay_ms,
                    subver: o.subversion.clone(),
                    version: o.version,
                    relays_txs: !peer_policy.blocks_only,
                    fee_filter: if peer_policy.blocks_only {
                        SatPerKvb::ZERO
                    } else {
                        peer_policy.min_relay_fee
                    },
                });
                links.push((j, link.delay_ms));
            }
            let banner_tip = {
                let tip = state.chain.tip();
                state.tip_info(&tip, &tip)
            };
            let banner_peers: Vec<(u64, bool)> =
                state.peers.iter().map(|p| (p.id, p.outbound)).collect();
            let state = Arc::new(Mutex::new(state));
            let publisher = Arc::new(ZmqPublisher::start(&ctx, &spec.name)?);
            let addr = format!("127.0.0.1:{}", spec.rpc_port.unwrap_or(0));
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|source| Error::RpcBind {
                    node: spec.name.clone(),
                    source,
                })?;
            let port = listener
                .local_addr()
                .map_err(|source| Error::RpcBind {
                    node: spec.name.clone(),
                    source,
                })?
                .port();
            let faults = scenario
                .events
                .iter()
                .filter_map(|e| match e {
                    ScenarioEvent::RpcFault {
                        node,
                        from_ms,
                        to_ms,
                        mode,
                    } if *node == spec.name => Some(FaultWindow {
                        from: clock.wall_duration(*from_ms),
                        to: clock.wall_duration(*to_ms),
                        mode: *mode,
                    }),
                    _ => None,
                })
                .collect();
            let rpc_ctx = Arc::new(RpcCtx {
                node: state.clone(),
                auth: RpcCtx::basic_auth(&scenario.rpc_user, &scenario.rpc_password),
                zmq: publisher.endpoints().clone(),
                start,
                faults,
                cancel: cancel.clone(),
            });
            let app = router(rpc_ctx);
            let shutdown = cancel.clone();
            let name = spec.name.clone();
            servers.push(tokio::spawn(async move {
                let r = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { shutdown.cancelled().await })
                    .await;
                if let Err(e) = r {
                    tracing::error!(node = %name, error = %e, "rpc server stopped");
                }
            }));
            let mut banner = None;
            let log = match &log_dir {
                Some(dir) => {
                    let node_dir = dir.join(&spec.name);
                    let mut log =
                        NodeLog::open(&node_dir.join("debug.log"), spec.log_format(), &spec.name)?;
                    if let Some(tip) = banner_tip {
                        let b = Banner {
                            version: spec.version,
                            datadir: node_dir.display().to_string(),
                            rpc_port: port,
                            tip,
                            peers: banner_peers,
                        };
                        log.banner(clock.now_us(), &b);
                        banner = Some(b);
                    }
                    log.flush();
                    let log = Arc::new(Mutex::new(log));
                    logs.push(log.clone());
                    Some(log)
                }
                None => None,
            };
            endpoints.push(NodeEndpoints {
                name: spec.name.clone(),
                rpc_url: format!("http://127.0.0.1:{port}"),
                rpc_user: scenario.rpc_user.clone(),
                rpc_password: scenario.rpc_password.clone(),
                zmq: publisher.endpoints().clone(),
                version: spec.version,
                subversion: spec.subversion.clone(),
                debug_log: log
                    .as_ref()
                    .and_then(|l| l.lock().ok().map(|l| l.path().to_owned())),
                clock: clock.accelerated().then_some(clock),
            });
            sim_nodes.push(SimNode {
                name: spec.name.clone(),
                state: state.clone(),
                zmq: publisher.clone(),
                extra_delay_ms: spec.extra_delay_ms,
                mines: spec.mines,
                hashrate: spec.hashrate,
                links,
                log,
                banner,
                relays_txs: !spec.blocks_only,
                fee_filter: if spec.blocks_only {
                    SatPerKvb::ZERO
                } else {
                    spec.policy().min_relay_fee
                },
            });
            states.push(state);
            publishers.push(publisher);
            let _ = i;
        }
        let sim = Sim::new(scenario, sim_nodes, wallet, truth.clone(), clock);
        let (done_tx, finished) = tokio::sync::watch::channel(false);
        let sim_cancel = cancel.clone();
        let sim = tokio::spawn(async move {
            sim.run(sim_cancel).await;
            let _ = done_tx.send(true);
        });
        Ok(Fleet {
            endpoints,
            states,
            cancel,
            sim: Some(sim),
            servers,
            publishers,
            logs,
            truth,
            finished,
            clock,
        })
    }

    /// The fleet's clock (the wall clock unless the scenario sets `time_scale`).
    pub fn clock(&self) -> SimClock {
        self.clock
    }

    /// Endpoints of every node, in scenario order.
    pub fn nodes(&self) -> &[NodeEndpoints] {
        &self.endpoints
    }

    /// Waits until the scenario has played out (its duration plus in-flight relays). RPC and
    /// ZMQ keep serving until [`Fleet::shutdown`].
    pub async fn finished(&self) {
        let mut rx = self.finished.clone();
        let _ = rx.wait_for(|done| *done).await;
    }

    /// Truth records so far.
    pub fn truth(&self) -> Vec<TruthRecord> {
        self.truth.records()
    }

    /// Every node's mempool against the fleet's right now, by node name in scenario order:
    /// what it holds and why it lacks each transaction another node holds (the same answer
    /// as the `mempool_at_end` truth records written when the scenario has played out).
    pub fn mempools(&self) -> Vec<(String, MempoolAtEnd)> {
        let nodes: Vec<(String, &Mutex<NodeState>)> = self
            .endpoints
            .iter()
            .zip(&self.states)
            .map(|(e, s)| (e.name.clone(), s.as_ref()))
            .collect();
        holdings::mempools(&nodes)
    }

    /// Runs `f` on the state of node `i` (for tests).
    pub fn with_node<R>(&self, i: usize, f: impl FnOnce(&NodeState) -> R) -> Option<R> {
        self.states.get(i)?.lock().ok().map(|s| f(&s))
    }

    /// A stop signal shared with every task, e.g. to wire to SIGINT/SIGTERM.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stops the simulation, the RPC servers and the ZMQ publishers, writes each debug.log's
    /// shutdown lines, and flushes the truth file.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.cancel.cancel();
        let mut first_err = None;
        if let Some(sim) = self.sim.take() {
            if let Err(e) = sim.await {
                first_err.get_or_insert(Error::Task {
                    task: "simulation".into(),
                    reason: e.to_string(),
                });
            }
        }
        for s in self.servers.drain(..) {
            if let Err(e) = s.await {
                first_err.get_or_insert(Error::Task {
                    task: "rpc server".into(),
                    reason: e.to_string(),
                });
            }
        }
        let publishers = std::mem::take(&mut self.publishers);
        let _ = tokio::task::spawn_blocking(move || drop(publishers)).await;
        for log in self.logs.drain(..) {
            if let Ok(mut log) = log.lock() {
                log.shutdown(self.clock.now_us());
            }
        }
        self.truth.flush();
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
