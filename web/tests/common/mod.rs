//! Shared by bmon-web's integration tests and its benchmark: a real ClickHouse database with
//! bmon's migrations applied, rows written through the ClickHouse writer's own code
//! (`consumers::writer::Rows`) and the detectors' row types, and bmon-web serving it on a
//! free loopback port.

#![allow(dead_code)]

pub mod fleet;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use consumers::metrics::Metrics as WriterMetrics;
use consumers::writer::Rows;
use schema::Envelope;
use test_support::ClickHouse;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A ClickHouse server to test against: the run's shared one (`BMON_TEST_CLICKHOUSE_URL`) or
/// a private one when `clickhouse-server` is installed. Without either, outside CI, the test
/// says so and is skipped (`None`); in CI (`CI` set) it fails with the install hint.
pub fn clickhouse() -> Option<ClickHouse> {
    if std::env::var_os("BMON_TEST_CLICKHOUSE_URL").is_some() || server_installed() {
        return Some(ClickHouse::shared());
    }
    let how = "set BMON_TEST_CLICKHOUSE_URL or install clickhouse-server \
               (apt-get install clickhouse-server)";
    if std::env::var_os("CI").is_some() {
        panic!("ClickHouse is required in CI: {how}");
    }
    eprintln!("SKIPPED: this test needs ClickHouse: {how}");
    None
}

fn server_installed() -> bool {
    if let Some(p) = std::env::var_os("CLICKHOUSE_SERVER_EXE") {
        return std::path::Path::new(&p).is_file();
    }
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| d.join("clickhouse-server").is_file())
    })
}

/// A fresh database with bmon's tables, and bmon-web serving it.
pub struct Site {
    pub ch: Arc<ClickHouse>,
    pub db: String,
    pub addr: SocketAddr,
    pub config: web::Config,
    pub metrics: Arc<web::metrics::Metrics>,
    pub http: reqwest::Client,
    token: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), web::Error>>,
}

impl Site {
    /// A database with the migrations applied and bmon-web on a free port; `None` when the
    /// test is skipped for want of ClickHouse.
    pub async fn start() -> Option<Site> {
        let ch = clickhouse()?;
        let db = ch.fresh_database();
        let mut config = web::Config::default();
        config.clickhouse.url = ch.url();
        config.clickhouse.database = db.clone();
        config.web.listen = "127.0.0.1:0".parse().expect("address");
        consumers::migrations::apply(
            &consumers::clickhouse_server_client(&config.clickhouse),
            &db,
        )
        .await
        .expect("apply bmon's migrations");
        Some(Site::serve(Arc::new(ch), db, config).await)
    }

    /// Another bmon-web on the same ClickHouse and database, configured as `config`.
    pub async fn another(&self, config: web::Config) -> Site {
        Site::serve(self.ch.clone(), self.db.clone(), config).await
    }

    /// bmon-web for `config` on a free port.
    pub async fn serve(ch: Arc<ClickHouse>, db: String, config: web::Config) -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let token = CancellationToken::new();
        let metrics = Arc::new(web::metrics::Metrics::new());
        let task = tokio::spawn({
            let (config, metrics, token) = (config.clone(), metrics.clone(), token.clone());
            async move { web::serve(listener, &config, metrics, token).await }
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        Site {
            ch,
            db,
            addr,
            config,
            metrics,
            http,
            token,
            task,
        }
    }

    /// A client on the test database.
    pub fn clickhouse(&self) -> clickhouse::Client {
        consumers::clickhouse_client(&self.config.clickhouse)
    }

    /// Writes `envelopes` as `ch-writer` does.
    pub async fn write(&self, envelopes: &[Envelope]) {
        Rows::from_batch(envelopes)
            .insert(&self.clickhouse(), &WriterMetrics::new())
            .await
            .expect("insert rows as ch-writer does");
    }

    /// Inserts rows of a derived table (`mempool_divergence`, `propagation`, ...) as the
    /// detector consumers do.
    pub async fn insert<T>(&self, table: &str, rows: &[T])
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        let client = self.clickhouse();
        let mut insert = client.insert::<T>(table).await.expect("insert");
        for r in rows {
            insert.write(r).await.expect("write row");
        }
        insert.end().await.expect("end insert");
    }

    /// One SQL statement in the test database (TabSeparated answer).
    pub fn sql(&self, sql: &str) -> String {
        self.ch
            .query_in(&self.db, sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `GET path`: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    /// `GET path`, which must answer 200; the body.
    pub async fn page(&self, path: &str) -> String {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}:\n{body}");
        body
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.token.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("bmon-web stops within 10 s")
            .expect("server task joins")
            .expect("server stops cleanly");
    }
}
