//! The browser helper drives a real headless Chromium: a page served on loopback is rendered,
//! its script runs, and a screenshot is saved as a PNG.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use test_support::Browser;

const PAGE: &str = "<!doctype html><html><body><h1>bmon</h1><p id=later>waiting</p>\
<script>setTimeout(() => { document.getElementById('later').textContent = 'updated by script'; }, 200);</script>\
</body></html>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_page_renders_runs_its_script_and_is_photographed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
                PAGE.len()
            );
        }
    });
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.open(&format!("http://127.0.0.1:{port}/")).await;
    browser
        .wait_for_text("updated by script", Duration::from_secs(10))
        .await
        .unwrap_or_else(|text| panic!("the script did not run; the page says: {text}"));
    assert!(browser.text().await.contains("bmon"));
    let shot = browser.screenshot("browser-selftest").await;
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", shot.display());
    assert!(png.len() > 1000, "a rendered window, not an empty image");
    browser.close().await;
}
