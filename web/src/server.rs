//! The HTTP service: the router (one GET route per page, `/metrics`), the middleware that
//! counts, times and traces every request and sets the security headers, and [`run`]/[`serve`]
//! with graceful shutdown.
//!
//! Handlers live with their pages (`crate::pages`); they only read parameters, call the
//! page's queries through [`App::db`] and return the rendered page.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{Config, WebConfig};
use crate::error::{Error, PageError};
use crate::metrics::{page_of, Metrics};
use crate::pages;
use crate::sql::Db;

/// What every handler gets.
#[derive(Clone)]
pub struct App {
    /// ClickHouse.
    pub db: Db,
    /// The `[web]` settings.
    pub web: Arc<WebConfig>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// NATS, for the live log tail (when `[nats]` is configured).
    pub nats: Option<async_nats::Client>,
    /// Cancelled at shutdown: ends the live streams so the server can stop.
    pub shutdown: CancellationToken,
}

impl App {
    /// The state for `config`, counting into `metrics`.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> App {
        App {
            db: Db::new(&config.clickhouse, config.web.query_timeout()),
            web: Arc::new(config.web.clone()),
            metrics,
            nats: None,
            shutdown: CancellationToken::new(),
        }
    }

    /// The fleet page's reload interval (`None`: off).
    pub fn refresh(&self) -> Option<u32> {
        (self.web.refresh_secs > 0).then_some(self.web.refresh_secs)
    }
}

/// Every route. Only GET (and HEAD) are routed: anything else is a 405.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(pages::fleet::handler))
        .route("/tips", get(pages::tips::handler))
        .route("/block/{id}", get(pages::block::handler))
        .route("/tx/{txid}", get(pages::tx::handler))
        .route("/alerts", get(pages::alerts::handler))
        .route("/logs", get(pages::logs::handler))
        .route("/events", get(pages::events::handler))
        .route("/mempools", get(pages::mempools::handler))
        .route("/validation", get(pages::validation::handler))
        .route("/peers", get(pages::peers::handler))
        .route("/search", get(pages::search::handler))
        .route("/live", get(pages::live::handler))
        .route("/live/stream", get(pages::live::stream))
        .route("/static/live.js", get(pages::live::script))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
}

async fn not_found() -> PageError {
    PageError::NotFound(
        "There is no such page. The pages are /, /tips, /block/HASH_OR_HEIGHT, /tx/TXID, \
         /alerts, /logs, /events, /mempools, /validation and /peers."
            .into(),
    )
}

/// Counts, times and traces each request; adds headers that keep data in the page inert.
async fn observe(State(app): State<App>, req: Request, next: Next) -> Response {
    let page = page_of(req.uri().path());
    let span = tracing::info_span!(
        "request",
        page,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    app.metrics
        .observe(page, status.as_u16(), elapsed.as_secs_f64());
    let ms = elapsed.as_secs_f64() * 1000.0;
    if status == StatusCode::OK {
        tracing::debug!(parent: &span, status = status.as_u16(), ms, "answered");
    } else {
        tracing::info!(parent: &span, status = status.as_u16(), ms, "answered");
    }
    let headers = response.headers_mut();
    // No script, no outside resource: a value that slipped past escaping could not run.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
             form-action 'self'; script-src 'self'; connect-src 'self'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Binds `config.web.listen` and serves until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let addr = config.web.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    serve(listener, &config, Arc::new(Metrics::new()), shutdown).await
}

/// Serves the pages on `listener` until `shutdown`, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    config: &Config,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(
        addr = ?addr,
        clickhouse = %config.clickhouse.url,
        database = %config.clickhouse.database,
        "serving bmon-web"
    );
    let mut app = App::new(config, metrics);
    app.shutdown = shutdown.clone();
    if let Some(nats) = &config.nats {
        // In the background: the pages work while NATS is away; the live tail says so.
        let c = process::nats::Connect {
            urls: nats.url.clone(),
            name: "bmon-web".into(),
            user: nats.user.clone(),
            password: nats.password.clone(),
            credentials_file: nats.creds.clone(),
            nkey_seed_file: nats.nkey_seed_file.clone(),
            tls: nats.tls.clone(),
            inbox_user: nats
                .user
                .clone()
                .unwrap_or_else(|| consumers::app::DEFAULT_NATS_USER.to_string()),
            keep_trying: true,
        };
        match process::nats::connect(&c).await {
            Ok(client) => app.nats = Some(client),
            Err(e) => tracing::warn!(error = %e, "no live log tail"),
        }
    }
    let app = router(app);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(Error::Serve)
}
