//! The JSON-RPC server of one emulated node: HTTP on 127.0.0.1 with basic auth, JSON-RPC 1.0,
//! 2.0 and batch bodies answered exactly as Core's `HTTPReq_JSONRPC` does (status codes,
//! envelope keys, error shapes), plus the scenario's injected faults.

pub mod methods;
pub mod txjson;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use base64::Engine;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::node::NodeState;
use crate::scenario::RpcFaultMode;
use crate::zmq::ZmqEndpoints;
use methods::{call, CallCtx, Params, RpcError};

/// A window in which the server misbehaves.
#[derive(Debug, Clone, Copy)]
pub struct FaultWindow {
    /// Start, since the fleet started.
    pub from: Duration,
    /// End, since the fleet started.
    pub to: Duration,
    /// What it does.
    pub mode: RpcFaultMode,
}

/// Everything a request handler needs.
pub struct RpcCtx {
    /// The node.
    pub node: Arc<Mutex<NodeState>>,
    /// Expected `Authorization` header value.
    pub auth: String,
    /// ZMQ endpoints (for `getzmqnotifications`).
    pub zmq: ZmqEndpoints,
    /// When the fleet started.
    pub start: Instant,
    /// Injected faults.
    pub faults: Vec<FaultWindow>,
    /// Fleet shutdown.
    pub cancel: CancellationToken,
}

impl RpcCtx {
    /// The `Authorization` header for `user`/`password`.
    pub fn basic_auth(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }
}

/// The router serving `/` and `/wallet/<name>`.
pub fn router(ctx: Arc<RpcCtx>) -> Router {
    Router::new()
        .route("/", post(handle))
        .route("/wallet/{name}", post(handle))
        .with_state(ctx)
}

fn reply(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn unauthorized() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    let h = r.headers_mut();
    h.insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"jsonrpc\""),
    );
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=ISO-8859-1"),
    );
    r
}

/// Core's legacy (1.0) HTTP status for an error code.
fn legacy_status(code: i64) -> StatusCode {
    match code {
        -32600 => StatusCode::BAD_REQUEST,
        -32601 => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn id_json(id: &Value) -> String {
    serde_json::to_string(id).unwrap_or_else(|_| "null".into())
}

fn error_obj(e: &RpcError) -> String {
    // Core's key order: code, then message.
    format!(
        "{{\"code\":{},\"message\":{}}}",
        e.code,
        serde_json::to_string(&e.message).unwrap_or_default()
    )
}

/// One reply: the body text (Core's key order) and the legacy status.
fn one(ctx: &RpcCtx, req: &Value) -> (String, StatusCode) {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let v2 = req.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
    let result = match req.get("method").and_then(Value::as_str) {
        None => Err(RpcError::new(-32600, "Method must be a string")),
        Some(method) => {
            let params = Params::new(req.get("params"));
            match ctx.node.lock() {
                Ok(node) => {
                    let uptime_s = node.clock.now_secs().saturating_sub(node.started_at);
                    call(
                        &node,
                        &CallCtx {
                            zmq: &ctx.zmq,
                            uptime_s,
                        },
                        method,
                        &params,
                    )
                }
                Err(_) => Err(RpcError::new(-32603, "Internal error")),
            }
        }
    };
    match (result, v2) {
        (Ok(r), false) => (
            format!(
                "{{\"result\":{},\"error\":null,\"id\":{}}}",
                r,
                id_json(&id)
            ),
            StatusCode::OK,
        ),
        (Ok(r), true) => (
            format!(
                "{{\"jsonrpc\":\"2.0\",\"result\":{},\"id\":{}}}",
                r,
                id_json(&id)
            ),
            StatusCode::OK,
        ),
        (Err(e), false) => (
            format!(
                "{{\"result\":null,\"error\":{},\"id\":{}}}",
                error_obj(&e),
                id_json(&id)
            ),
            legacy_status(e.code),
        ),
        (Err(e), true) => (
            format!(
                "{{\"jsonrpc\":\"2.0\",\"error\":{},\"id\":{}}}",
                error_obj(&e),
                id_json(&id)
            ),
            StatusCode::OK,
        ),
    }
}

async fn handle(State(ctx): State<Arc<RpcCtx>>, headers: HeaderMap, body: Bytes) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v == ctx.auth)
        .unwrap_or(false);
    if !authorized {
        // Core waits 250 ms before answering a wrong password.
        tokio::time::sleep(Duration::from_millis(250)).await;
        return unauthorized();
    }
    let elapsed = ctx.start.elapsed();
    if let Some(f) = ctx
        .faults
        .iter()
        .find(|f| f.from <= elapsed && elapsed < f.to)
    {
        match f.mode {
            RpcFaultMode::Error => {
                let e = RpcError::new(-28, "Loading block index…");
                let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let id = req.get("id").cloned().unwrap_or(Value::Null);
                let v2 = req.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
                return if v2 {
                    reply(
                        StatusCode::OK,
                        format!(
                            "{{\"jsonrpc\":\"2.0\",\"error\":{},\"id\":{}}}\n",
                            error_obj(&e),
                            id_json(&id)
                        ),
                    )
                } else {
                    reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!(
                            "{{\"result\":null,\"error\":{},\"id\":{}}}\n",
                            error_obj(&e),
                            id_json(&id)
                        ),
                    )
                };
            }
            RpcFaultMode::Timeout => {
                let until = ctx.start + f.to;
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = ctx.cancel.cancelled() => {}
                }
                return reply(StatusCode::SERVICE_UNAVAILABLE, String::new());
            }
        }
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "{\"result\":null,\"error\":{\"code\":-32700,\"message\":\"Parse error\"},\"id\":null}\n".into(),
            )
        }
    };
    match &req {
        Value::Array(batch) => {
            let parts: Vec<String> = batch.iter().map(|r| one(&ctx, r).0).collect();
            reply(StatusCode::OK, format!("[{}]\n", parts.join(",")))
        }
        Value::Object(_) => {
            let (text, status) = one(&ctx, &req);
            reply(status, format!("{text}\n"))
        }
        _ => reply(
            StatusCode::BAD_REQUEST,
            "{\"result\":null,\"error\":{\"code\":-32600,\"message\":\"Top-level object parse error\"},\"id\":null}\n".into(),
        ),
    }
}
