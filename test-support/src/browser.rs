//! A real browser for the web view's tests: Debian's headless Chromium driven over WebDriver
//! by its `chromedriver`, on a free loopback port, killed on drop.
//!
//! Screenshots go to `$BMON_ARTIFACTS/screenshots/` (default `target/test-artifacts/` in the
//! workspace), where CI keeps them as the run's artifacts.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::process::{free_port, kill, port_open, wait_ready};

const HINT: &str = "apt-get install chromium chromium-driver (scripts/install-deps.sh does)";

/// A headless Chromium session and its driver.
pub struct Browser {
    driver: Child,
    /// The WebDriver session.
    pub client: Client,
}

/// Where the browser and its driver are, or why a test cannot have them.
fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let find = |env: &str, names: &[&str]| -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(env) {
            return Some(PathBuf::from(p));
        }
        ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"]
            .iter()
            .flat_map(|d| names.iter().map(move |n| PathBuf::from(d).join(n)))
            .find(|p| p.is_file())
    };
    let chromium = find("CHROMIUM_EXE", &["chromium", "chromium-browser"]);
    let driver = find("CHROMEDRIVER_EXE", &["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Ok((c, d)),
        _ => Err(format!("chromium or chromedriver not found ({HINT})")),
    }
}

impl Browser {
    /// Starts chromedriver and opens a headless session, or `None` (with the reason printed)
    /// when Chromium is absent outside CI. In CI (`CI` set) a missing browser fails the test.
    pub async fn start() -> Option<Browser> {
        let (chromium, driver_bin) = match binaries() {
            Ok(b) => b,
            Err(why) => {
                if std::env::var_os("CI").is_some() {
                    panic!("a browser is required in CI: {why}");
                }
                eprintln!("SKIPPED: this test needs a browser: {why}");
                return None;
            }
        };
        let port = free_port();
        let mut driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", driver_bin.display()));
        if let Err(e) = wait_ready(&mut driver, "chromedriver", Duration::from_secs(15), || {
            port_open(port)
        }) {
            kill(&mut driver);
            panic!("{e}");
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium.display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1366,1000"],
            }),
        );
        // chromedriver listens on loopback: plain HTTP, no TLS stack.
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps);
        let client = match builder.connect(&format!("http://127.0.0.1:{port}")).await {
            Ok(c) => c,
            Err(e) => {
                kill(&mut driver);
                panic!("cannot open a Chromium session through chromedriver: {e}");
            }
        };
        Some(Browser { driver, client })
    }

    /// Opens `url` and waits until its `<body>` is there.
    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("body"))
            .await
            .unwrap_or_else(|e| panic!("{url} has no body: {e}"));
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the page's text contains `needle`, re-reading it (the page may refresh
    /// itself); the text at the deadline on failure.
    pub async fn wait_for_text(&self, needle: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text().await;
            if text.contains(needle) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(text);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the window as `<artifacts>/screenshots/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let dir = artifacts_dir().join("screenshots");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// Ends the session and stops the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        kill(&mut self.driver);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill(&mut self.driver);
    }
}

/// `$BMON_ARTIFACTS`, else `target/test-artifacts` in the workspace.
pub fn artifacts_dir() -> PathBuf {
    std::env::var_os("BMON_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target/test-artifacts"))
}
