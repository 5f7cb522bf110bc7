//! A real ZooKeeper (Debian's `zookeeper` package, standalone) for replicated ClickHouse
//! tables, on a free loopback port with a temporary data directory; killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{free_port, kill, wait_ready};

const JAR: &str = "/usr/share/java/zookeeper.jar";
const HINT: &str = "apt-get install zookeeper (scripts/install-deps.sh does)";

/// A standalone ZooKeeper server.
pub struct ZooKeeper {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl ZooKeeper {
    /// Starts one, or `None` (with the reason printed) when ZooKeeper or Java is absent
    /// outside CI; in CI (`CI` set) a missing one fails the test.
    pub fn start() -> Option<ZooKeeper> {
        let jar = std::env::var_os("ZOOKEEPER_JAR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(JAR));
        let java = ["/usr/bin/java", "/usr/local/bin/java"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file());
        let (Some(java), true) = (java, jar.is_file()) else {
            let why = format!("{} or java not found ({HINT})", jar.display());
            if std::env::var_os("CI").is_some() {
                panic!("ZooKeeper is required in CI: {why}");
            }
            eprintln!("SKIPPED: this test needs ZooKeeper: {why}");
            return None;
        };
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir for zookeeper: {e}"));
        let port = free_port();
        let classpath = format!("/etc/zookeeper/conf:{}", jar.display());
        let mut child = Command::new(&java)
            .args(["-Xmx256m", "-cp", &classpath])
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(port.to_string())
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", java.display()));
        if let Err(e) = wait_ready(&mut child, "zookeeper", Duration::from_secs(60), || {
            ruok(port)
        }) {
            kill(&mut child);
            panic!("{e}");
        }
        Some(ZooKeeper {
            child,
            port,
            _dir: dir,
        })
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Whether the server answers its `srvr` command as a serving server.
fn ruok(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"srvr").is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.contains("Mode: standalone")
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
