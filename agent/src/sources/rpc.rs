//! bitcoind's JSON-RPC over HTTP: a small client with basic auth (cookie file or user and
//! password), timeouts, typed errors and one typed method per call the agent makes.
//!
//! Answer types live in [`super::answers`]. Turning answers into events is the node driver's
//! job ([`crate::node`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bitcoin::{Block, BlockHash, Txid};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::answers::*;
use crate::config::Secret;
use crate::metrics::Metrics;

/// bitcoind's "still warming up" error code (`RPC_IN_WARMUP`).
pub const RPC_IN_WARMUP: i64 = -28;

/// How the client authenticates.
#[derive(Debug, Clone)]
pub enum RpcAuth {
    /// The node's `.cookie` file (`__cookie__:<password>`), re-read when the node restarts.
    Cookie(PathBuf),
    /// `-rpcuser`/`-rpcpassword` or an `-rpcauth` entry.
    UserPass {
        /// User name.
        user: String,
        /// Password.
        password: Secret,
    },
}

/// Why an RPC call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The node answered with a JSON-RPC error. Code -28 means it is still starting
    /// ([`RpcError::is_warming_up`]): wait and retry; other codes are the call's own problem.
    #[error("{method}: node error {code}: {message}")]
    Node {
        /// The method called.
        method: String,
        /// JSON-RPC error code.
        code: i64,
        /// The node's message.
        message: String,
    },
    /// HTTP 401: wrong user/password or a stale cookie. Fix the config (or the cookie path).
    #[error("{method}: unauthorized (HTTP 401): check the RPC user/password or cookie file")]
    Unauthorized {
        /// The method called.
        method: String,
    },
    /// No answer within the timeout. Transient: retry later.
    #[error("{method}: no answer within {timeout:?}")]
    Timeout {
        /// The method called.
        method: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The node could not be reached (connection refused, reset). Transient.
    #[error("{method}: cannot reach the node at {url}: {reason}")]
    Unreachable {
        /// The method called.
        method: String,
        /// The RPC URL.
        url: String,
        /// What the HTTP client reported.
        reason: String,
    },
    /// An HTTP error without a JSON-RPC body.
    #[error("{method}: HTTP {status}: {body}")]
    Http {
        /// The method called.
        method: String,
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// The answer is not what the method returns (a bug, or an unsupported Core version).
    #[error("{method}: unexpected answer: {reason}")]
    BadAnswer {
        /// The method called.
        method: String,
        /// What did not match.
        reason: String,
    },
    /// The cookie file cannot be read.
    #[error("cannot read RPC cookie {path}: {reason}")]
    Cookie {
        /// Cookie path.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
}

impl RpcError {
    /// Whether the node said it is still starting (-28).
    pub fn is_warming_up(&self) -> bool {
        matches!(self, RpcError::Node { code, .. } if *code == RPC_IN_WARMUP)
    }

    /// Whether retrying later may help (warm-up, timeout, node unreachable).
    pub fn is_transient(&self) -> bool {
        self.is_warming_up()
            || matches!(
                self,
                RpcError::Timeout { .. } | RpcError::Unreachable { .. }
            )
    }
}

#[derive(Deserialize)]
struct ErrorObject {
    code: i64,
    message: String,
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error: Option<ErrorObject>,
}

/// Interprets one HTTP answer to a single JSON-RPC call (pure: the client and the tests use it).
///
/// Core answers JSON-RPC 1.0 errors with HTTP 500 or 404 and a JSON body, JSON-RPC 2.0 errors
/// with HTTP 200, and 401 with an empty body.
pub fn parse_response(method: &str, status: u16, body: &[u8]) -> Result<Value, RpcError> {
    if status == 401 {
        return Err(RpcError::Unauthorized {
            method: method.to_string(),
        });
    }
    match serde_json::from_slice::<Response>(body) {
        Ok(Response {
            error: Some(err), ..
        }) => Err(RpcError::Node {
            method: method.to_string(),
            code: err.code,
            message: err.message,
        }),
        Ok(Response { result, .. }) if status == 200 => Ok(result),
        Ok(_) | Err(_) if status != 200 => Err(RpcError::Http {
            method: method.to_string(),
            status,
            body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        }),
        Ok(_) => Err(RpcError::BadAnswer {
            method: method.to_string(),
            reason: "no result".into(),
        }),
        Err(e) => Err(RpcError::BadAnswer {
            method: method.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Decodes a consensus-encoded object from hex (`getblock <hash> 0`).
pub fn decode_hex<T: bitcoin::consensus::Decodable>(
    hex: &str,
) -> Result<T, bitcoin::consensus::encode::FromHexError> {
    bitcoin::consensus::encode::deserialize_hex(hex)
}

/// A JSON-RPC client for one node.
#[derive(Debug)]
pub struct RpcClient {
    http: reqwest::Client,
    url: String,
    auth: RpcAuth,
    timeout: Duration,
    metrics: Metrics,
    next_id: AtomicU64,
}

impl RpcClient {
    /// A client for `url` (e.g. `http://127.0.0.1:8332/`); no connection is made yet.
    pub fn new(
        url: &str,
        auth: RpcAuth,
        timeout: Duration,
        metrics: Metrics,
    ) -> Result<Self, RpcError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| RpcError::Unreachable {
                method: "-".into(),
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(RpcClient {
            http,
            url: url.to_string(),
            auth,
            timeout,
            metrics,
            next_id: AtomicU64::new(1),
        })
    }

    fn credentials(&self) -> Result<(String, String), RpcError> {
        match &self.auth {
            RpcAuth::UserPass { user, password } => {
                Ok((user.clone(), password.expose().to_string()))
            }
            RpcAuth::Cookie(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| RpcError::Cookie {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let (u, p) = text
                    .trim()
                    .split_once(':')
                    .ok_or_else(|| RpcError::Cookie {
                        path: path.clone(),
                        reason: "expected user:password".into(),
                    })?;
                Ok((u.to_string(), p.to_string()))
            }
        }
    }

    /// Calls `method` with positional `params` and decodes the result as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, RpcError> {
        self.metrics.rpc_call(method);
        let res = self.call_inner(method, params).await;
        if res.is_err() {
            self.metrics.rpc_error(method);
        }
        res
    }

    async fn call_inner<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, RpcError> {
        let (user, password) = self.credentials()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "1.0", "id": id, "method": method, "params": params});
        let resp = self
            .http
            .post(&self.url)
            .basic_auth(user, Some(password))
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport_error(method, e))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(method, e))?;
        let value = parse_response(method, status, &bytes)?;
        serde_json::from_value(value).map_err(|e| RpcError::BadAnswer {
            method: method.to_string(),
            reason: e.to_string(),
        })
    }

    fn transport_error(&self, method: &str, e: reqwest::Error) -> RpcError {
        if e.is_timeout() {
            RpcError::Timeout {
                method: method.to_string(),
                timeout: self.timeout,
            }
        } else {
            RpcError::Unreachable {
                method: method.to_string(),
                url: self.url.clone(),
                reason: error_chain(&e),
            }
        }
    }

    /// Waits until the node answers `getblockchaininfo` (it may be unreachable or warming up,
    /// -28), retrying with backoff. Returns `None` if `shutdown` fires first; fatal errors
    /// (401, bad answers) are returned at once.
    pub async fn wait_ready(
        &self,
        shutdown: &CancellationToken,
    ) -> Option<Result<BlockchainInfo, RpcError>> {
        let mut delay = Duration::from_millis(250);
        loop {
            match self.get_blockchain_info().await {
                Ok(info) => return Some(Ok(info)),
                Err(e) if e.is_transient() => {
                    tracing::info!(error = %e, retry_in = ?delay, "waiting for the node's RPC");
                }
                Err(e) => return Some(Err(e)),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// `getblockchaininfo`.
    pub async fn get_blockchain_info(&self) -> Result<BlockchainInfo, RpcError> {
        self.call("getblockchaininfo", json!([])).await
    }

    /// `getnetworkinfo`.
    pub async fn get_network_info(&self) -> Result<NetworkInfo, RpcError> {
        self.call("getnetworkinfo", json!([])).await
    }

    /// `getchaintips`.
    pub async fn get_chain_tips(&self) -> Result<Vec<ChainTipAnswer>, RpcError> {
        self.call("getchaintips", json!([])).await
    }

    /// `getmempoolinfo`.
    pub async fn get_mempool_info(&self) -> Result<MempoolInfo, RpcError> {
        self.call("getmempoolinfo", json!([])).await
    }

    /// `getrawmempool false`.
    pub async fn get_raw_mempool(&self) -> Result<Vec<Txid>, RpcError> {
        self.call("getrawmempool", json!([false])).await
    }

    /// `getrawmempool false true`: txids with the mempool sequence.
    pub async fn get_raw_mempool_sequence(&self) -> Result<RawMempoolWithSequence, RpcError> {
        self.call("getrawmempool", json!([false, true])).await
    }

    /// `getpeerinfo`.
    pub async fn get_peer_info(&self) -> Result<Vec<PeerInfoAnswer>, RpcError> {
        self.call("getpeerinfo", json!([])).await
    }

    /// `getblocktemplate {"rules": ["segwit"]}`.
    pub async fn get_block_template(&self) -> Result<BlockTemplateAnswer, RpcError> {
        self.call("getblocktemplate", json!([{"rules": ["segwit"]}]))
            .await
    }

    /// `getmempoolentry <txid>`.
    pub async fn get_mempool_entry(&self, txid: &Txid) -> Result<MempoolEntry, RpcError> {
        self.call("getmempoolentry", json!([txid.to_string()]))
            .await
    }

    /// `getblockstats <hash>`.
    pub async fn get_block_stats(&self, hash: &BlockHash) -> Result<BlockStats, RpcError> {
        self.call("getblockstats", json!([hash.to_string()])).await
    }

    /// `getblockheader <hash> true`.
    pub async fn get_block_header(&self, hash: &BlockHash) -> Result<BlockHeaderAnswer, RpcError> {
        self.call("getblockheader", json!([hash.to_string(), true]))
            .await
    }

    /// `getblock <hash> 0`, decoded.
    pub async fn get_block(&self, hash: &BlockHash) -> Result<Block, RpcError> {
        let hex: String = self.call("getblock", json!([hash.to_string(), 0])).await?;
        decode_hex(&hex).map_err(|e| RpcError::BadAnswer {
            method: "getblock".into(),
            reason: e.to_string(),
        })
    }

    /// `getblock <hash> 1`.
    pub async fn get_block_verbose(&self, hash: &BlockHash) -> Result<BlockVerbose, RpcError> {
        self.call("getblock", json!([hash.to_string(), 1])).await
    }

    /// `getblockhash <height>`.
    pub async fn get_block_hash(&self, height: u32) -> Result<BlockHash, RpcError> {
        self.call("getblockhash", json!([height])).await
    }

    /// `uptime`, seconds.
    pub async fn uptime(&self) -> Result<u64, RpcError> {
        self.call("uptime", json!([])).await
    }

    /// `gettxoutsetinfo <hash_type> <hash>` (`hash_type` `none` or `muhash`; with
    /// coinstatsindex any block can be asked).
    pub async fn get_tx_out_set_info(
        &self,
        hash_type: &str,
        block: Option<&BlockHash>,
    ) -> Result<TxOutSetInfo, RpcError> {
        let params = match block {
            Some(b) => json!([hash_type, b.to_string()]),
            None => json!([hash_type]),
        };
        self.call("gettxoutsetinfo", params).await
    }
}

impl RpcClient {
    /// `getindexinfo`: the node's optional indexes (Core 0.21+).
    pub async fn get_index_info(&self) -> Result<IndexInfos, RpcError> {
        self.call("getindexinfo", json!([])).await
    }

    /// `gettxoutsetinfo muhash <hash> true`: the UTXO set statistics at one block, from the
    /// node's coinstatsindex (`hash_type`, `hash_or_height`, `use_index`).
    pub async fn get_utxo_stats(&self, block: &BlockHash) -> Result<TxOutSetInfo, RpcError> {
        self.call(
            "gettxoutsetinfo",
            json!(["muhash", block.to_string(), true]),
        )
        .await
    }
}

/// JSON-RPC "method not found".
pub const RPC_METHOD_NOT_FOUND: i64 = -32601;

impl RpcError {
    /// Whether the node does not know the method (an older Core).
    pub fn is_method_not_found(&self) -> bool {
        matches!(self, RpcError::Node { code, .. } if *code == RPC_METHOD_NOT_FOUND)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::read;

    /// Splits a recorded HTTP answer into status and body.
    fn http(name: &str) -> (u16, Vec<u8>) {
        let text = read(&format!("bitcoin-core-v30/rpc/raw-http/{name}"));
        let status = text
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .or_else(|| text.split_once("\n\n"))
            .map(|(_, b)| b.trim().as_bytes().to_vec())
            .unwrap_or_default();
        (status, body)
    }

    fn node_error(name: &str) -> (i64, String) {
        let (status, body) = http(name);
        match parse_response("m", status, &body) {
            Err(RpcError::Node { code, message, .. }) => (code, message),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn successful_answers_in_every_dialect_give_the_result() {
        for name in ["getblockcount-jsonrpc1.http", "getblockcount-jsonrpc2.http"] {
            let (status, body) = http(name);
            assert_eq!(
                parse_response("getblockcount", status, &body).unwrap(),
                json!(122)
            );
        }
        let (status, body) = http("getbestblockhash-no-jsonrpc-field.http");
        let v = parse_response("getbestblockhash", status, &body).unwrap();
        let _: BlockHash = serde_json::from_value(v).unwrap();
        let (status, body) = http("getblockheader-named-params-jsonrpc2.http");
        let v = parse_response("getblockheader", status, &body).unwrap();
        let h: BlockHeaderAnswer = serde_json::from_value(v).unwrap();
        assert_eq!(h.height, 121);
        let (status, body) = http("getrawmempool-empty-jsonrpc2.http");
        assert_eq!(
            parse_response("getrawmempool", status, &body).unwrap(),
            json!({})
        );
    }

    #[test]
    fn node_errors_keep_code_and_message_in_both_dialects() {
        assert_eq!(
            node_error("getblock-unknown-hash-jsonrpc1.http"),
            (-5, "Block not found".into())
        );
        assert_eq!(
            node_error("getblock-unknown-hash-jsonrpc2.http"),
            (-5, "Block not found".into())
        );
        assert_eq!(node_error("method-not-found-jsonrpc1.http").0, -32601);
        assert_eq!(node_error("method-not-found-jsonrpc2.http").0, -32601);
        assert_eq!(node_error("parse-error.http").0, -32700);
        let (code, msg) = node_error("sendrawtransaction-zero-fee-error-jsonrpc1.http");
        assert_eq!((code, msg.as_str()), (-26, "min relay fee not met, 0 < 11"));
        assert_eq!(
            node_error("sendrawtransaction-zero-fee-error-jsonrpc2.http").0,
            -26
        );
        assert!(
            node_error("sendrawtransaction-rbf-insufficient-fee-error-jsonrpc1.http")
                .1
                .starts_with("insufficient fee")
        );
    }

    #[test]
    fn http_401_is_unauthorized() {
        let (status, body) = http("unauthorized-wrong-password.http");
        assert!(matches!(
            parse_response("getblockcount", status, &body),
            Err(RpcError::Unauthorized { .. })
        ));
    }

    #[test]
    fn warm_up_is_recognised_and_transient() {
        let body =
            br#"{"result":null,"error":{"code":-28,"message":"Loading block index..."},"id":1}"#;
        let err = parse_response("getblockchaininfo", 500, body).unwrap_err();
        assert!(err.is_warming_up());
        assert!(err.is_transient());
        let other = parse_response("x", 500, b"<html>oops</html>").unwrap_err();
        assert!(matches!(other, RpcError::Http { status: 500, .. }));
        assert!(!other.is_transient());
        assert!(matches!(
            parse_response("x", 200, b"[1,2]"),
            Err(RpcError::BadAnswer { .. })
        ));
    }

    #[tokio::test]
    async fn an_unreachable_node_is_a_clear_transient_error() {
        // Bind and drop a listener to get a port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = RpcClient::new(
            &format!("http://127.0.0.1:{port}/"),
            RpcAuth::UserPass {
                user: "u".into(),
                password: Secret::new("p"),
            },
            Duration::from_secs(2),
            Metrics::new(&schema::NodeId::new("n").unwrap()),
        )
        .unwrap();
        let err = client.uptime().await.unwrap_err();
        assert!(matches!(err, RpcError::Unreachable { .. }), "{err}");
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn a_silent_node_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accept and never answer.
        let _hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let client = RpcClient::new(
            &format!("http://{addr}/"),
            RpcAuth::UserPass {
                user: "u".into(),
                password: Secret::new("p"),
            },
            Duration::from_millis(300),
            Metrics::new(&schema::NodeId::new("n").unwrap()),
        )
        .unwrap();
        let err = client.uptime().await.unwrap_err();
        assert!(matches!(err, RpcError::Timeout { .. }), "{err}");
    }
}
