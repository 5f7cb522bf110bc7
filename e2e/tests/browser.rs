//! bmon-web in a real browser (Debian's headless Chromium over WebDriver) on the data of a
//! simnet run with a deep reorg: every page renders what the run produced, the log search finds
//! a line, the live tail shows a line published while it is open within a second, and each
//! page is saved as a screenshot (`target/test-artifacts/screenshots/web-*.png`, or under
//! `$BMON_ARTIFACTS`).

use std::time::{Duration, Instant};

use bmon_e2e::{Options, Pipeline};
use test_support::Browser;
use tokio_util::sync::CancellationToken;

/// Opens `path`, waits for `needles` in its text, saves `web-<shot>.png`.
async fn look(b: &Browser, base: &str, path: &str, shot: &str, needles: &[&str]) -> String {
    b.open(&format!("{base}{path}")).await;
    for n in needles {
        b.wait_for_text(n, Duration::from_secs(10))
            .await
            .unwrap_or_else(|text| panic!("{path} lacks {n:?}:\n{text}"));
    }
    b.screenshot(&format!("web-{shot}")).await;
    b.text().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_page_shows_a_simnet_run_in_a_real_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let scenario = std::fs::read_to_string(
        test_support::workspace_root().join("simnet/scenarios/incidents/deep-reorg.toml"),
    )
    .unwrap();
    let p = Pipeline::start_opts(
        &scenario,
        Options {
            debug_logs: true,
            detectors: true,
            consumer_toml: bmon_e2e::SHORT_RUN_DETECTORS.to_string(),
            mempool_secs: Some(2),
            ..Options::default()
        },
    )
    .await;
    p.wait_for_fleet(Duration::from_secs(90)).await;
    p.wait_count(
        "SELECT count() FROM alerts FINAL WHERE alert_kind = 'reorg'",
        1,
        Duration::from_secs(30),
    )
    .await;
    let shutdown = CancellationToken::new();
    let base = p.start_web(shutdown.clone()).await;
    let first = |sql: &str, col: &str| -> String {
        p.rows(sql)
            .first()
            .and_then(|r| r[col].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("no row for {sql}"))
    };
    let new_tip = first(
        "SELECT new_tip FROM reorg FINAL ORDER BY observed_at_us LIMIT 1",
        "new_tip",
    );
    let stale = first(
        "SELECT hash FROM block_disconnected FINAL ORDER BY height LIMIT 1",
        "hash",
    );
    let txid = first(
        "SELECT txid FROM tx_seen FINAL GROUP BY txid HAVING uniqExact(node) = 3 LIMIT 1",
        "txid",
    );

    look(&browser, &base, "/", "fleet", &["node0", "node1", "node2"]).await;
    let tips = look(
        &browser,
        &base,
        "/tips?n=20",
        "tips",
        &["reorg(s)", "off it"],
    )
    .await;
    assert!(
        tips.contains("1 reorg(s)") || tips.contains("2 reorg(s)"),
        "the fork tree shows the reorg:\n{tips}"
    );
    let block = look(
        &browser,
        &base,
        &format!("/block/{new_tip}"),
        "block",
        &["Per node", "cmpctblock", "connect total"],
    )
    .await;
    for node in ["node0", "node1", "node2"] {
        assert!(
            block.contains(node),
            "the block page lists {node}:\n{block}"
        );
    }
    look(
        &browser,
        &base,
        &format!("/block/{stale}"),
        "block-stale",
        &["disconnected"],
    )
    .await;
    let tx = look(
        &browser,
        &base,
        &format!("/tx/{txid}"),
        "tx",
        &["first seen"],
    )
    .await;
    for node in ["node0", "node1", "node2"] {
        assert!(tx.contains(node), "the tx page lists {node}:\n{tx}");
    }
    look(&browser, &base, "/alerts", "alerts", &["reorg"]).await;
    let logs = look(&browser, &base, "/logs?q=UpdateTip", "logs", &["UpdateTip"]).await;
    assert!(logs.contains("node"), "{logs}");
    // The events around a log line, reached from the line's link.
    let at = first(
        "SELECT toString(max(time_us)) AS at FROM logs FINAL WHERE node = 'node0'",
        "at",
    );
    look(
        &browser,
        &base,
        &format!("/events?node=node0&at={at}"),
        "events",
        &["node0"],
    )
    .await;
    look(
        &browser,
        &base,
        &format!("/search?q={new_tip}"),
        "search",
        &["Per node"],
    )
    .await;
    look(&browser, &base, "/mempools", "mempools", &["Mempools"]).await;
    look(
        &browser,
        &base,
        "/validation",
        "validation",
        &["Validation"],
    )
    .await;
    look(&browser, &base, "/peers", "peers", &["Peers"]).await;

    // The live tail: open it, then publish a line as node1's agent would.
    look(
        &browser,
        &base,
        "/live?node=node1",
        "live-open",
        &["following"],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while browser
        .client
        .execute(
            "return document.getElementById('state').getAttribute('data-open')",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .as_deref()
        != Some("1")
    {
        assert!(Instant::now() < deadline, "the live stream never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now = schema::UnixMicros(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64,
    );
    let batch = schema::event::LogBatch {
        file_id: "browser-test".into(),
        start_offset: 1,
        lines: vec![schema::event::LogLine {
            time: now,
            offset: 1,
            thread: None,
            category: Some("net".into()),
            level: None,
            location: None,
            function: None,
            message: "a line published while the tail is open".into(),
        }],
    };
    let env = schema::Envelope::new(schema::NodeId::new("node1").unwrap(), now, batch);
    let client = async_nats::connect(p.nats.url()).await.unwrap();
    let published = Instant::now();
    client
        .publish("bmon.log.node1", env.encode().unwrap().into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    browser
        .wait_for_text(
            "a line published while the tail is open",
            Duration::from_secs(1),
        )
        .await
        .unwrap_or_else(|text| panic!("the live tail did not show the line within 1 s:\n{text}"));
    let took = published.elapsed();
    browser.screenshot("web-live").await;
    eprintln!("the live tail showed the line {took:?} after it was published");

    browser.close().await;
    shutdown.cancel();
    p.stop().await;
}
