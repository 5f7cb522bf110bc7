//! Real Bitcoin Core regtest nodes for one test: free loopback ports, a datadir under the test's
//! temporary directory, ZMQ `sequence`/`rawblock`/`rawtx`, RPC with a user and password, and the
//! debug.log options the test asks for.
//!
//! The binaries are found at `$BITCOIND_EXE` / `$BITCOIN_CLI_EXE`, else at
//! `../shared/bitcoin-core/bin/` beside the workspace. A test calls [`core_binaries`] first: when
//! they are absent it prints why and skips outside CI, and fails in CI (`CI` set), so a missing
//! Core never passes silently.
//!
//! RPC goes through the real `bitcoin-cli`, so what a test sends is what an operator would type.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{free_port, kill};

/// Where the real Core binaries are.
#[derive(Debug, Clone)]
pub struct CoreBinaries {
    /// `bitcoind`.
    pub bitcoind: PathBuf,
    /// `bitcoin-cli`.
    pub cli: PathBuf,
}

/// The Core binaries, or `None` (with the reason printed) when they are absent outside CI.
///
/// Panics in CI (`CI` set): there, real Core must be present, and a test that cannot run must
/// fail rather than pass.
pub fn core_binaries() -> Option<CoreBinaries> {
    let dir = crate::workspace_root().join("../shared/bitcoin-core/bin");
    let bitcoind = std::env::var_os("BITCOIND_EXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("bitcoind"));
    let cli = std::env::var_os("BITCOIN_CLI_EXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("bitcoin-cli"));
    let missing: Vec<String> = [&bitcoind, &cli]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    // Its own empty datadir: Core reads and rewrites `settings.json` in the default one even
    // for `-version`, and concurrent tests racing on ~/.bitcoin fail at random.
    let scratch = tempfile::tempdir().ok();
    let datadir = scratch
        .as_ref()
        .map(|d| format!("-datadir={}", d.path().display()))
        .unwrap_or_else(|| "-version".into());
    let unrunnable = missing.is_empty()
        && !Command::new(&bitcoind)
            .arg(&datadir)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if missing.is_empty() && !unrunnable {
        return Some(CoreBinaries { bitcoind, cli });
    }
    let why = if unrunnable {
        format!(
            "{} does not run (missing libraries? scripts/install-deps.sh installs them)",
            bitcoind.display()
        )
    } else {
        format!(
            "not found: {} (set BITCOIND_EXE and BITCOIN_CLI_EXE)",
            missing.join(", ")
        )
    };
    if std::env::var_os("CI").is_some() {
        panic!("real Bitcoin Core is required in CI: {why}");
    }
    eprintln!("SKIPPED: this test needs real Bitcoin Core: {why}");
    None
}

/// Which debug.log prefix options a node runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogFormat {
    /// `-logtimemicros`.
    pub micros: bool,
    /// `-logthreadnames`.
    pub thread_names: bool,
    /// `-logsourcelocations` (v30 built with GCC: file, line and the whole function signature).
    pub source_locations: bool,
}

impl LogFormat {
    /// Every combination of the three options.
    pub fn all() -> Vec<LogFormat> {
        (0..8)
            .map(|bits| LogFormat {
                micros: bits & 1 != 0,
                thread_names: bits & 2 != 0,
                source_locations: bits & 4 != 0,
            })
            .collect()
    }

    /// A short name for reports: `plain`, `micros+threads+source`, ...
    pub fn name(&self) -> String {
        let mut parts = Vec::new();
        if self.micros {
            parts.push("micros");
        }
        if self.thread_names {
            parts.push("threads");
        }
        if self.source_locations {
            parts.push("source");
        }
        if parts.is_empty() {
            "plain".to_string()
        } else {
            parts.join("+")
        }
    }

    fn args(&self) -> Vec<String> {
        let flag = |on: bool, name: &str| format!("-{name}={}", u8::from(on));
        vec![
            flag(self.micros, "logtimemicros"),
            flag(self.thread_names, "logthreadnames"),
            flag(self.source_locations, "logsourcelocations"),
        ]
    }
}

/// How to start one node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Node name (also the agent's node name in tests).
    pub name: String,
    /// debug.log prefix options.
    pub log: LogFormat,
    /// Further `-option=value` arguments (policy, limits).
    pub extra_args: Vec<String>,
}

impl NodeOptions {
    /// A node with the given name and log format and no further options.
    pub fn new(name: &str, log: LogFormat) -> NodeOptions {
        NodeOptions {
            name: name.to_string(),
            log,
            extra_args: Vec::new(),
        }
    }
}

/// The debug categories every test node logs: what bmon's log source extracts events from.
pub const DEBUG_CATEGORIES: &[&str] = &[
    "mempool",
    "mempoolrej",
    "validation",
    "bench",
    "cmpctblock",
    "net",
];

/// An error from `bitcoin-cli`: its exit status and what it printed.
#[derive(Debug, Clone)]
pub struct RpcError {
    /// The method called.
    pub method: String,
    /// What bitcoin-cli wrote on stderr (Core's error message and code).
    pub message: String,
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.method, self.message.trim())
    }
}

/// One running regtest bitcoind; killed (by its own pid) when dropped.
pub struct CoreNode {
    /// Node name.
    pub name: String,
    child: Option<Child>,
    cli: PathBuf,
    datadir: PathBuf,
    /// P2P port on 127.0.0.1.
    pub p2p_port: u16,
    /// RPC port on 127.0.0.1.
    pub rpc_port: u16,
    /// `tcp://127.0.0.1:PORT` of `-zmqpubsequence`.
    pub zmq_sequence: String,
    /// `tcp://127.0.0.1:PORT` of `-zmqpubrawblock`.
    pub zmq_rawblock: String,
    /// `tcp://127.0.0.1:PORT` of `-zmqpubrawtx`.
    pub zmq_rawtx: String,
    /// The options it was started with.
    pub options: NodeOptions,
}

/// RPC user of every test node.
pub const RPC_USER: &str = "bmon";
/// RPC password of every test node.
pub const RPC_PASSWORD: &str = "bmon-test";

impl CoreNode {
    /// Starts a node with its datadir at `<root>/<name>` and waits until RPC answers
    /// (retrying on a port taken meanwhile).
    pub fn start(bins: &CoreBinaries, root: &Path, options: NodeOptions) -> CoreNode {
        let datadir = root.join(&options.name);
        std::fs::create_dir_all(&datadir)
            .unwrap_or_else(|e| panic!("create datadir {}: {e}", datadir.display()));
        let mut last_err = String::new();
        for _ in 0..3 {
            let mut node = CoreNode {
                name: options.name.clone(),
                child: None,
                cli: bins.cli.clone(),
                datadir: datadir.clone(),
                p2p_port: free_port(),
                rpc_port: free_port(),
                zmq_sequence: format!("tcp://127.0.0.1:{}", free_port()),
                zmq_rawblock: format!("tcp://127.0.0.1:{}", free_port()),
                zmq_rawtx: format!("tcp://127.0.0.1:{}", free_port()),
                options: options.clone(),
            };
            match node.spawn(&bins.bitcoind) {
                Ok(()) => return node,
                Err(e) => last_err = e,
            }
        }
        panic!("could not start bitcoind {}: {last_err}", options.name);
    }

    fn spawn(&mut self, bitcoind: &Path) -> Result<(), String> {
        let mut args = vec![
            "-regtest".to_string(),
            format!("-datadir={}", self.datadir.display()),
            format!("-port={}", self.p2p_port),
            format!("-rpcport={}", self.rpc_port),
            format!("-rpcuser={RPC_USER}"),
            format!("-rpcpassword={RPC_PASSWORD}"),
            "-bind=127.0.0.1".into(),
            "-rpcbind=127.0.0.1".into(),
            "-rpcallowip=127.0.0.1".into(),
            "-listen=1".into(),
            "-discover=0".into(),
            "-dnsseed=0".into(),
            "-fixedseeds=0".into(),
            "-listenonion=0".into(),
            "-natpmp=0".into(),
            "-printtoconsole=0".into(),
            "-fallbackfee=0.0002".into(),
            "-txindex".into(),
            "-coinstatsindex".into(),
            format!("-zmqpubsequence={}", self.zmq_sequence),
            format!("-zmqpubrawblock={}", self.zmq_rawblock),
            format!("-zmqpubrawtx={}", self.zmq_rawtx),
        ];
        args.extend(DEBUG_CATEGORIES.iter().map(|c| format!("-debug={c}")));
        args.extend(self.options.log.args());
        args.extend(self.options.extra_args.iter().cloned());
        let stderr = std::fs::File::create(self.datadir.join("stderr.txt"))
            .map_err(|e| format!("stderr file: {e}"))?;
        let mut child = Command::new(bitcoind)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bitcoind.display()))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let err =
                    std::fs::read_to_string(self.datadir.join("stderr.txt")).unwrap_or_default();
                return Err(format!("bitcoind exited with {status}: {}", err.trim()));
            }
            if self.call("getblockchaininfo", &[]).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                kill(&mut child);
                return Err("RPC did not answer within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:RPCPORT`.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    /// The node's debug.log.
    pub fn debug_log(&self) -> PathBuf {
        self.datadir.join("regtest").join("debug.log")
    }

    /// The node's datadir.
    pub fn datadir(&self) -> &Path {
        &self.datadir
    }

    /// `127.0.0.1:P2PPORT`, for `addnode`.
    pub fn p2p_addr(&self) -> String {
        format!("127.0.0.1:{}", self.p2p_port)
    }

    /// Calls `method` through bitcoin-cli; arguments as bitcoin-cli takes them (strings, or
    /// JSON text for objects and arrays). Returns the answer as JSON (a bare string answer
    /// becomes a JSON string; an empty answer `null`).
    pub fn call(&self, method: &str, args: &[&str]) -> Result<Value, RpcError> {
        self.cli_call(false, method, args)
    }

    /// Calls `method` with named arguments (`bitcoin-cli -named method key=value ...`).
    pub fn call_named(&self, method: &str, args: &[(&str, &str)]) -> Result<Value, RpcError> {
        let args: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.cli_call(true, method, &args)
    }

    fn cli_call(&self, named: bool, method: &str, args: &[&str]) -> Result<Value, RpcError> {
        let mut cmd = Command::new(&self.cli);
        if named {
            cmd.arg("-named");
        }
        let out = cmd
            .arg("-regtest")
            .arg(format!("-datadir={}", self.datadir.display()))
            .arg(format!("-rpcport={}", self.rpc_port))
            .arg(format!("-rpcuser={RPC_USER}"))
            .arg(format!("-rpcpassword={RPC_PASSWORD}"))
            .arg("-rpcclienttimeout=60")
            .arg(method)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| RpcError {
                method: method.to_string(),
                message: format!("cannot run {}: {e}", self.cli.display()),
            })?;
        if !out.status.success() {
            return Err(RpcError {
                method: method.to_string(),
                message: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let text = text.trim();
        if text.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())))
    }

    /// Like [`CoreNode::call`], panicking with the node name and Core's message on error.
    pub fn rpc(&self, method: &str, args: &[&str]) -> Value {
        self.call(method, args)
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }

    /// The active tip's hash.
    pub fn tip(&self) -> String {
        self.rpc("getbestblockhash", &[])
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The active chain's height.
    pub fn height(&self) -> u64 {
        self.rpc("getblockcount", &[]).as_u64().unwrap_or(0)
    }

    /// Mines `n` blocks to `address`; the new block hashes in order.
    pub fn mine_to(&self, n: u32, address: &str) -> Vec<String> {
        let v = self.rpc("generatetoaddress", &[&n.to_string(), address]);
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Opens a P2P connection to `other` (`addnode ... onetry`) and waits until both list it.
    pub fn connect(&self, other: &CoreNode) {
        self.rpc("addnode", &[&other.p2p_addr(), "onetry"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.is_connected_to(other) {
            assert!(
                Instant::now() < deadline,
                "{} did not connect to {} within 20 s",
                self.name,
                other.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether a peer of this node is `other` (outbound to its P2P port, or inbound from a
    /// connection `other` made).
    pub fn is_connected_to(&self, other: &CoreNode) -> bool {
        self.peer_ids_of(other).next().is_some() || other.peer_ids_of(self).next().is_some()
    }

    fn peer_ids_of<'a>(&self, other: &'a CoreNode) -> impl Iterator<Item = i64> + 'a {
        let peers = self.call("getpeerinfo", &[]).unwrap_or(Value::Null);
        let addr = other.p2p_addr();
        peers
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(move |p| {
                p.get("addr").and_then(Value::as_str) == Some(addr.as_str())
                    && p.get("version").and_then(Value::as_u64).unwrap_or(0) > 0
            })
            .filter_map(|p| p.get("id").and_then(Value::as_i64))
    }

    /// Closes every P2P connection between this node and `other`, from both ends, and waits
    /// until neither lists the other.
    pub fn disconnect(&self, other: &CoreNode) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.is_connected_to(other) {
            for (a, b) in [(self, other), (other, self)] {
                for id in a.peer_ids_of(b).collect::<Vec<_>>() {
                    let _ = a.call("disconnectnode", &["", &id.to_string()]);
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} and {} still connected after 20 s",
                self.name,
                other.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the node through RPC and waits for the process to exit (killed by its own pid
    /// after 30 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = self.call("stop", &[]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        kill(&mut child);
    }
}

impl Drop for CoreNode {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(&mut c);
        }
    }
}

/// Several nodes under one temporary directory, each connected to every other.
pub struct CoreFleet {
    /// The nodes, in the order given.
    pub nodes: Vec<CoreNode>,
    dir: tempfile::TempDir,
}

impl CoreFleet {
    /// Starts one node per options entry and connects every pair.
    pub fn start(bins: &CoreBinaries, options: Vec<NodeOptions>) -> CoreFleet {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir for bitcoind: {e}"));
        let nodes: Vec<CoreNode> = options
            .into_iter()
            .map(|o| CoreNode::start(bins, dir.path(), o))
            .collect();
        for i in 0..nodes.len() {
            for j in (i + 1)..nodes.len() {
                nodes[i].connect(&nodes[j]);
            }
        }
        CoreFleet { nodes, dir }
    }

    /// The directory holding every datadir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &CoreNode {
        &self.nodes[i]
    }

    /// Waits until every listed node has `hash` as its active tip.
    pub fn wait_for_tip(&self, which: &[usize], hash: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for &i in which {
            while self.nodes[i].tip() != hash {
                assert!(
                    Instant::now() < deadline,
                    "{} did not reach tip {hash} within {timeout:?} (its tip: {})",
                    self.nodes[i].name,
                    self.nodes[i].tip()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Waits until every listed node holds `txid` in its mempool.
    pub fn wait_for_mempool_tx(&self, which: &[usize], txid: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for &i in which {
            while self.nodes[i].call("getmempoolentry", &[txid]).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "{} did not accept {txid} within {timeout:?}",
                    self.nodes[i].name
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Stops every node cleanly.
    pub fn stop(&mut self) {
        for n in &mut self.nodes {
            n.stop();
        }
    }
}
