//! The errors of `bmon-web`: [`Error`] stops the service (bad configuration, address in use);
//! [`PageError`] is one request's failure, answered with a status and an HTML page that says
//! what happened and what to do about it.

use std::net::SocketAddr;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::config::ConfigError;
use crate::html;

/// What stops `bmon-web`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable. Fix the file or the `BMON_` variables and restart.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address is taken or not ours. Pick another `web.listen`.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server stopped on an I/O error. The supervisor restarts the service.
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// Why one page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The request names something malformed (a hash that is not hex, a bad time). The user
    /// fixes the link or the form.
    #[error("{0}")]
    BadRequest(String),
    /// The request is well-formed but names nothing ClickHouse knows.
    #[error("{0}")]
    NotFound(String),
    /// ClickHouse does not answer. The operator starts it or fixes `clickhouse.url`.
    #[error("ClickHouse at {url} is unreachable: {detail}")]
    Unreachable {
        /// The configured URL.
        url: String,
        /// What the client reported.
        detail: String,
    },
    /// The database or a table is missing. The operator runs `bmon setup`.
    #[error("ClickHouse database {database} lacks bmon's tables: {detail}")]
    NotSetUp {
        /// The configured database.
        database: String,
        /// The server's message.
        detail: String,
    },
    /// ClickHouse refused the user. The operator fixes `clickhouse.user`/`password`.
    #[error("ClickHouse refused user {user}: {detail}")]
    Denied {
        /// The configured user.
        user: String,
        /// The server's message.
        detail: String,
    },
    /// The page's queries took longer than `web.query_timeout_ms`.
    #[error("ClickHouse did not answer the {what} query within {ms} ms")]
    Timeout {
        /// Which query.
        what: &'static str,
        /// The deadline.
        ms: u64,
    },
    /// Any other query failure: a bug in bmon-web or a schema older than this build.
    #[error("the {what} query failed: {detail}")]
    Query {
        /// Which query.
        what: &'static str,
        /// The client's or server's message.
        detail: String,
    },
}

impl PageError {
    /// The HTTP status of this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Unreachable { .. }
            | PageError::NotSetUp { .. }
            | PageError::Denied { .. } => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            PageError::Query { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the reader can do about it.
    fn advice(&self) -> String {
        match self {
            PageError::BadRequest(_) => "Check the address or the form and try again.".into(),
            PageError::NotFound(_) => {
                "No node reported it (yet). Events reach ClickHouse through the agents and \
                 `bmon-consumer ch-writer`: check that both run (`bmon status`)."
                    .into()
            }
            PageError::Unreachable { url, .. } => format!(
                "Start ClickHouse, or point bmon-web at it: `clickhouse.url` in the config \
                 file or BMON_CLICKHOUSE__URL (now {url}). On a new installation run \
                 `bmon setup` once ClickHouse is up."
            ),
            PageError::NotSetUp { database, .. } => format!(
                "Run `bmon setup` (it creates database {database} and applies the \
                 migrations), or set `clickhouse.database` / BMON_CLICKHOUSE__DATABASE to \
                 the database it created."
            ),
            PageError::Denied { user, .. } => format!(
                "Check `clickhouse.user` and `clickhouse.password` (BMON_CLICKHOUSE__USER, \
                 BMON_CLICKHOUSE__PASSWORD; now user {user}); the user needs SELECT on \
                 bmon's database."
            ),
            PageError::Timeout { .. } => {
                "Try a narrower search (a node, a shorter time range), or raise \
                 `web.query_timeout_ms`."
                    .into()
            }
            PageError::Query { .. } => {
                "If `bmon setup` has not run since bmon was upgraded, run it (it applies new \
                 migrations); otherwise this is a bug in bmon-web: please report it with \
                 this message."
                    .into()
            }
        }
    }

    /// The error page.
    pub fn render(&self) -> String {
        let title = match self.status() {
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::SERVICE_UNAVAILABLE => "ClickHouse unavailable",
            StatusCode::GATEWAY_TIMEOUT => "ClickHouse too slow",
            _ => "Query failed",
        };
        let body = format!(
            "<div class=\"err\"><p><b>{}</b></p><p>{}</p></div>",
            html::esc(&self.to_string()),
            html::esc(&self.advice())
        );
        html::page(title, "", None, &body)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "page failed");
        }
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            self.render(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_clickhouse_is_a_503_naming_the_url_and_setup() {
        let e = PageError::Unreachable {
            url: "http://10.0.0.9:8123".into(),
            detail: "connection refused".into(),
        };
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let page = e.render();
        assert!(page.contains("http://10.0.0.9:8123"), "{page}");
        assert!(page.contains("bmon setup"), "{page}");
    }

    #[test]
    fn a_bad_request_shows_its_message_escaped() {
        let e = PageError::BadRequest("not a block hash: <x>".into());
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.render().contains("not a block hash: &lt;x&gt;"));
    }
}
