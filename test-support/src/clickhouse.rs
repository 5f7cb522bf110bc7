//! A real clickhouse-server for tests: one shared per test run when `BMON_TEST_CLICKHOUSE_URL`
//! points at it (what `just test` and `.ci/run` do), else a private one per test process.
//! Each test takes its own database with [`ClickHouse::fresh_database`].

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{find_binary, free_port, http_get, kill, wait_ready};

const HINT: &str = "apt-get install clickhouse-server";

/// Handle to a ClickHouse server; a private server is killed on drop.
pub struct ClickHouse {
    port: u16,
    child: Option<Child>,
    _dir: Option<TempDir>,
}

impl ClickHouse {
    /// The run's shared server when `BMON_TEST_CLICKHOUSE_URL` is set, else a private one.
    pub fn shared() -> ClickHouse {
        if let Ok(url) = std::env::var("BMON_TEST_CLICKHOUSE_URL") {
            let port = url
                .rsplit(':')
                .next()
                .and_then(|p| p.trim_end_matches('/').parse().ok())
                .unwrap_or_else(|| panic!("BMON_TEST_CLICKHOUSE_URL={url} has no port"));
            let ch = ClickHouse {
                port,
                child: None,
                _dir: None,
            };
            assert!(
                http_get(port, "/ping").is_some(),
                "BMON_TEST_CLICKHOUSE_URL={url} does not answer /ping"
            );
            return ch;
        }
        ClickHouse::start()
    }

    /// Starts a private server with its data in a temporary directory.
    pub fn start() -> ClickHouse {
        ClickHouse::start_with_users(std::path::Path::new("/etc/clickhouse-server/users.xml"))
    }

    /// Starts a private server whose users, profiles and quotas are those of `users_xml` (a
    /// `users_config` file, such as bmon's deploy/clickhouse/users.xml).
    pub fn start_with_users(users_xml: &std::path::Path) -> ClickHouse {
        ClickHouse::start_with(users_xml, |_| String::new())
    }

    /// Starts a private server that is `replica` of `shard` in a replicated setup coordinated
    /// by the ZooKeeper on `zookeeper_port` (macros `{shard}` and `{replica}`, a loopback
    /// interserver port for fetching parts).
    pub fn start_replica(zookeeper_port: u16, shard: &str, replica: &str) -> ClickHouse {
        let (shard, replica) = (shard.to_string(), replica.to_string());
        ClickHouse::start_with(
            std::path::Path::new("/etc/clickhouse-server/users.xml"),
            move |_| {
                format!(
                    "<zookeeper><node><host>127.0.0.1</host><port>{zookeeper_port}</port></node>\
                     </zookeeper><macros><shard>{shard}</shard><replica>{replica}</replica>\
                     </macros><interserver_http_port>{}</interserver_http_port>\
                     <interserver_http_host>127.0.0.1</interserver_http_host>",
                    free_port()
                )
            },
        )
    }

    fn start_with(
        users_xml: &std::path::Path,
        extra: impl Fn(&std::path::Path) -> String,
    ) -> ClickHouse {
        let bin = find_binary("CLICKHOUSE_SERVER_EXE", &["clickhouse-server"], HINT);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir for clickhouse: {e}"));
        let mut last_err = String::new();
        for _ in 0..3 {
            let http = free_port();
            let tcp = free_port();
            let config = dir.path().join("config.xml");
            let xml = config_xml(dir.path(), http, tcp)
                .replace(
                    "<users_config>/etc/clickhouse-server/users.xml</users_config>",
                    &format!("<users_config>{}</users_config>", users_xml.display()),
                )
                .replace("</yandex>", &format!("{}</yandex>", extra(dir.path())));
            if let Err(e) = std::fs::write(&config, xml) {
                panic!("write {}: {e}", config.display());
            }
            let mut child = match Command::new(&bin)
                .arg(format!("--config-file={}", config.display()))
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(c) => c,
                Err(e) => panic!("spawn {}: {e} ({HINT})", bin.display()),
            };
            match wait_ready(
                &mut child,
                "clickhouse-server",
                Duration::from_secs(60),
                || http_get(http, "/ping").is_some(),
            ) {
                Ok(()) => {
                    return ClickHouse {
                        port: http,
                        child: Some(child),
                        _dir: Some(dir),
                    }
                }
                Err(e) => {
                    kill(&mut child);
                    let log = std::fs::read_to_string(dir.path().join("log/server.err.log"))
                        .unwrap_or_default();
                    last_err = format!(
                        "{e}; {}",
                        log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                    );
                }
            }
        }
        panic!("could not start clickhouse-server: {last_err}");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The HTTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a new, empty database for one test and returns its name.
    pub fn fresh_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "t_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        self.query(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        name
    }

    /// Runs one SQL statement over HTTP; returns the body (TabSeparated unless the SQL says
    /// otherwise) or the server's error text.
    pub fn query(&self, sql: &str) -> Result<String, String> {
        self.query_in("default", sql)
    }

    /// Runs one SQL statement with `database` as the current database.
    pub fn query_in(&self, database: &str, sql: &str) -> Result<String, String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let req = format!(
            "POST /?database={database} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{}",
            sql.len(),
            sql,
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("bad HTTP answer: {text}"))?;
        if head.contains(" 200 ") {
            Ok(body.to_string())
        } else {
            Err(body.trim().to_string())
        }
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(&mut c);
        }
    }
}

/// A minimal server config: loopback only, everything under `dir`.
pub fn config_xml(dir: &std::path::Path, http_port: u16, tcp_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{d}/log/server.log</log>
        <errorlog>{d}/log/server.err.log</errorlog>
        <size>10M</size>
        <count>2</count>
    </logger>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>{d}/data/</path>
    <tmp_path>{d}/tmp/</tmp_path>
    <user_files_path>{d}/user_files/</user_files_path>
    <format_schema_path>{d}/format_schemas/</format_schema_path>
    <users_config>/etc/clickhouse-server/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
"#
    )
}
