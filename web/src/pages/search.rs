//! `/search?q=..`: the navigation bar's box. A height goes to its block, a 64-hex id to the
//! block or transaction page ClickHouse knows it as.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::PageError;
use crate::params::{self, BlockRef, Params};
use crate::server::App;
use crate::sql::known::{self, KnownRow};

/// `GET /search?q=..`.
pub async fn handler(State(app): State<App>, params: Params) -> Result<Response, PageError> {
    let q = params.get("q").unwrap_or("").to_string();
    let target = match params::block_ref(&q) {
        Ok(BlockRef::Height(h)) => format!("/block/{}", h.0),
        Ok(BlockRef::Hash(h)) => {
            let id = h.to_string();
            let known = app
                .db
                .rows::<KnownRow>("known ids", known::lookup(std::slice::from_ref(&id)))
                .await?;
            let is = |kind: &str| known.iter().any(|k| k.kind == kind);
            if is("block") {
                format!("/block/{id}")
            } else if is("tx") {
                format!("/tx/{id}")
            } else {
                return Err(PageError::NotFound(format!(
                    "No node reported a block or a transaction {id}."
                )));
            }
        }
        Err(_) => {
            return Err(PageError::BadRequest(
                "search for a block height, a block hash or a txid (64 hex digits)".into(),
            ))
        }
    };
    Ok(Redirect::to(&target).into_response())
}
