//! bmon-web against a real ClickHouse: each page shows what the scenario of
//! `common::fleet` put there (a reorg, a stale branch, an invalid block, a rejected and
//! replaced transaction, log lines, alerts), bad requests are answered 400, an unreachable
//! ClickHouse 503, and user text never reaches SQL as text.

mod common;

use common::fleet::{self, a, b, txid, x, Times, MS};
use common::Site;

/// A site with the scenario written, or `None` (skipped: no ClickHouse).
async fn site() -> Option<(Site, Times)> {
    let site = Site::start().await?;
    let t = fleet::recent();
    fleet::write(&site, t).await;
    Some((site, t))
}

/// The `<tr>` of a table row containing `needle` (panics when there is none).
fn row_with<'a>(page: &'a str, needle: &str) -> &'a str {
    page.split("<tr")
        .find(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("no row with {needle}:\n{page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_page_lists_every_node_with_its_tip_lag_and_open_alerts() {
    let Some((site, _)) = site().await else {
        return;
    };
    let page = site.page("/").await;
    assert!(
        page.contains("http-equiv=\"refresh\" content=\"5\""),
        "{page}"
    );
    assert!(
        page.contains("3 nodes. Best tip: height <b>104</b>"),
        "{page}"
    );
    for (n, sub, _, _) in fleet::NODES {
        let row = row_with(&page, &format!(">{n}</a>"));
        assert!(row.contains(sub.trim_matches('/')), "{row}");
        assert!(row.contains(&format!("/block/{}", a(104))), "{row}");
        assert!(row.contains("<span class=\"ok\">0</span>"), "lag 0: {row}");
    }
    // n1 and n2 each have one open alert (invalid block, reorg); n2's rejection alert was
    // resolved.
    assert!(
        row_with(&page, ">n1</a>").contains("node=n1\">1</a>"),
        "{page}"
    );
    assert!(
        row_with(&page, ">n2</a>").contains("node=n2\">1</a>"),
        "{page}"
    );
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fork_tree_shows_the_reorg_the_stale_branch_and_the_invalid_block() {
    let Some((site, _)) = site().await else {
        return;
    };
    let page = site.page("/tips?n=5").await;
    assert!(
        page.contains("Heights 100–104: 5 blocks on the active chain, 3 off it, 1 reorg(s)."),
        "{page}"
    );
    let svg = &page[page.find("<svg").expect("a picture")..page.find("</svg>").unwrap()];
    // The stale branch, with the node that reorged it out, and the reorg's depth.
    for hash in [b(102), b(103)] {
        let at = svg
            .find(&format!("/block/{hash}"))
            .expect("stale block drawn");
        assert!(svg[at..].contains("data-state=\"stale\""), "{svg}");
    }
    assert!(svg.contains("↶ reorg depth 2: n2"), "{svg}");
    assert!(svg.contains("reorged out: n2"), "{svg}");
    assert!(svg.contains("tip: n0 n1 n2"), "{svg}");
    // The invalid block and its reason.
    let at = svg
        .find(&format!("/block/{}", x(103)))
        .expect("invalid block drawn");
    assert!(svg[at..].contains("data-state=\"invalid\""), "{svg}");
    assert!(svg.contains("✗ bad-cb-amount"), "{svg}");
    // The tables say the same.
    let stale = row_with(&page, &format!("title=\"{}\"", b(103)));
    assert!(
        stale.contains("<span class=\"warn\">stale</span>"),
        "{stale}"
    );
    assert!(stale.contains("n2: valid-fork tip"), "{stale}");
    assert!(
        stale.contains("until a reorg:</span> n2"),
        "n2 held it: {stale}"
    );
    let invalid = row_with(&page, &format!("title=\"{}\"", x(103)));
    assert!(invalid.contains("n1: <b>bad-cb-amount</b>"), "{invalid}");
    let reorgs = page.split("<h2>Reorgs</h2>").nth(1).expect("reorg table");
    assert!(reorgs.contains("<td class=\"n\"><b>2</b></td>"), "{reorgs}");
    assert!(
        reorgs.contains(&format!("/block/{}", a(101))),
        "fork point: {reorgs}"
    );
    // A narrower window leaves the old heights out.
    let narrow = site.page("/tips?n=2").await;
    assert!(narrow.contains("Heights 103–104"), "{narrow}");
    assert!(!narrow.contains(&format!("/block/{}", b(102))), "{narrow}");
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_block_page_lists_each_nodes_stages_lag_and_delivering_peer() {
    let Some((site, _)) = site().await else {
        return;
    };
    let page = site.page(&format!("/block/{}", a(104))).await;
    assert!(page.contains("<title>Block 104 · bmon</title>"), "{page}");
    assert!(page.contains("/Foundry USA/"), "miner: {page}");
    assert!(
        page.contains(&format!("/block/{}", a(103))),
        "parent: {page}"
    );
    let n0 = row_with(&page, ">n0</a>");
    assert!(
        n0.contains("Connect block: 12.5 ms<br>Verify 6 txins: 0.2 ms"),
        "{n0}"
    );
    assert!(n0.contains("13.0 ms"), "connect total: {n0}");
    assert!(
        n0.contains("prefilled 1, mempool 2500, extra 3, requested 7"),
        "{n0}"
    );
    assert!(n0.contains("peer=7"), "{n0}");
    assert!(n0.contains("Satoshi:30.0.0"), "{n0}");
    let n1 = row_with(&page, ">n1</a>");
    assert!(n1.contains("Connect block: 40.0 ms"), "{n1}");
    assert!(n1.contains("peer=2<br>"), "{n1}");
    assert!(
        n1.contains(">+120 ms</span>"),
        "lag behind the first sighting: {n1}"
    );
    let n2 = row_with(&page, ">n2</a>");
    assert!(n2.contains("95.5 ms"), "{n2}");
    assert!(
        n2.contains("peer=5<br>"),
        "the peer that sent the block: {n2}"
    );
    assert!(
        n2.contains("header: peer=7"),
        "the peer that announced it: {n2}"
    );
    assert!(page.contains("first n0 at"), "propagation: {page}");
    let timeline = &page[page.find("<h2>Timeline</h2>").expect("timeline")..];
    assert_eq!(
        timeline.matches("data-kind=\"tip\"").count(),
        3,
        "{timeline}"
    );
    // By height: the same block.
    let by_height = site.page("/block/104").await;
    assert!(
        by_height.contains(&format!("<code>{}</code>", a(104))),
        "{by_height}"
    );
    // The stale block says who disconnected it, and that another block won its height.
    let stale = site.page(&format!("/block/{}", b(103))).await;
    assert!(stale.contains("disconnected by"), "{stale}");
    assert!(stale.contains("Other blocks at this height"), "{stale}");
    // The invalid block shows its reason.
    let invalid = site.page(&format!("/block/{}", x(103))).await;
    assert!(invalid.contains("n1: <b>bad-cb-amount</b>"), "{invalid}");
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tx_page_shows_the_rejection_reason_and_the_replacement() {
    let Some((site, _)) = site().await else {
        return;
    };
    let page = site.page(&format!("/tx/{}", txid(1))).await;
    let rejected = row_with(&page, "<b>mempool min fee not met</b>");
    assert!(rejected.contains(">n2</a>"), "{rejected}");
    assert!(rejected.contains("peer=4"), "{rejected}");
    assert!(
        rejected.contains("mempool min fee not met, 282 &lt; 500"),
        "{rejected}"
    );
    let replaced = row_with(&page, "replaced by");
    assert!(replaced.contains(&format!("/tx/{}", txid(2))), "{replaced}");
    assert!(
        replaced.contains("282 sat → 1\u{202f}410 sat"),
        "{replaced}"
    );
    assert!(page.contains("2.00 sat/vB"), "{page}");
    // The replacement says what it replaced, and where it was confirmed.
    let page2 = site.page(&format!("/tx/{}", txid(2))).await;
    assert!(
        page2.contains(&format!("replaced <a class=\"h\" href=\"/tx/{}\"", txid(1))),
        "{page2}"
    );
    // n2 connected 102, 103 and 104 at once when it reorged: still 104, as the others saw.
    for n in ["n0", "n1", "n2"] {
        let row = row_with(&page2, &format!(">{n}</a>"));
        assert!(
            row.contains(&format!(
                "confirmed in <a class=\"h\" href=\"/block/{}\"",
                a(104)
            )),
            "{row}"
        );
    }
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_search_finds_a_line_and_quotes_in_the_search_are_harmless() {
    let Some((site, t)) = site().await else {
        return;
    };
    let range = format!(
        "from={}&to={}",
        web::time::fmt_input(t.t0 - 60 * fleet::S),
        web::time::fmt_input(t.block(104) + 60 * fleet::S)
    );
    // Every line of n0.
    let all = site.page(&format!("/logs?node=n0&{range}")).await;
    assert!(all.contains("3 line(s)."), "{all}");
    assert!(all.contains("UpdateTip: new best="), "{all}");
    // Text with quotes, an apostrophe, a backslash and a question mark: a bind, found as text.
    let q = "\"quoted\" peer text: it's <odd> \\ and asks ?";
    let page = site
        .page(&format!("/logs?q={}&{range}", web::html::url_component(q)))
        .await;
    assert!(page.contains("1 line(s)."), "{page}");
    assert!(
        page.contains(
            "<mark>&quot;quoted&quot; peer text: it&#39;s &lt;odd&gt; \\ and asks ?</mark>"
        ),
        "{page}"
    );
    let row = row_with(&page, "<mark>");
    assert!(
        row.contains(&format!("/events?node=n0&amp;at={}", t.quote_line())),
        "the line links to its events: {row}"
    );
    // An injection attempt is just text that matches nothing, and the tables are intact.
    for evil in ["' OR 1=1 --", "x'); DROP TABLE logs; --", "\\' OR ''='"] {
        let page = site
            .page(&format!(
                "/logs?q={}&{range}",
                web::html::url_component(evil)
            ))
            .await;
        assert!(page.contains("No line matches."), "{evil}: {page}");
    }
    assert_eq!(site.sql("SELECT count() FROM logs FINAL").trim(), "4");
    // Filters by level and category.
    let errors = site.page(&format!("/logs?level=error&{range}")).await;
    assert!(errors.contains("1 line(s)."), "{errors}");
    assert!(errors.contains("bad-cb-amount"), "{errors}");
    let net = site
        .page(&format!("/logs?category=net&node=n0&{range}"))
        .await;
    assert!(net.contains("2 line(s)."), "{net}");
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_page_shows_what_the_node_recorded_around_a_log_line() {
    let Some((site, t)) = site().await else {
        return;
    };
    let page = site
        .page(&format!("/events?node=n0&at={}", t.quote_line()))
        .await;
    let here = row_with(&page, " class=\"here\"");
    assert!(here.contains("Saw &quot;quoted&quot; peer text"), "{here}");
    for kind in [
        "block_seen",
        "block_connected",
        "block_timing",
        "tx_removed",
        "log",
        "chain_tips",
        "node_status",
        "peer_snapshot",
        "mempool_snapshot",
    ] {
        assert!(page.contains(&format!("<td>{kind}</td>")), "{kind}: {page}");
    }
    assert!(
        page.contains("cmpctblock at height 104 from peer=7"),
        "{page}"
    );
    // Only n0's.
    assert!(!page.contains("mempool min fee not met"), "{page}");
    // n2's window around its reorg has the reorg, the disconnections and the alert about it.
    let n2 = site
        .page(&format!("/events?node=n2&at={}&s=5", t.reorg()))
        .await;
    assert!(n2.contains("<td>reorg</td>"), "{n2}");
    assert!(n2.contains("depth 2, fork at 101, 103 → 104"), "{n2}");
    assert_eq!(n2.matches("<td>block_disconnected</td>").count(), 2, "{n2}");
    assert!(n2.contains("firing reorg: n2 reorged 2 blocks"), "{n2}");
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_page_shows_evidence_and_links_by_state() {
    let Some((site, _)) = site().await else {
        return;
    };
    let page = site.page("/alerts").await;
    assert!(page.contains("<h2>Firing (2)</h2>"), "{page}");
    assert!(page.contains("<h2>Resolved (1)</h2>"), "{page}");
    let reorg = row_with(&page, "reorg-n2-101");
    assert!(
        reorg.contains(&format!(
            "<b>fork_point</b>: <a class=\"h\" href=\"/block/{}\"",
            a(101)
        )),
        "{reorg}"
    );
    assert!(
        reorg.contains(&format!(
            "<b>old_tip</b>: <a class=\"h\" href=\"/block/{}\"",
            b(103)
        )),
        "{reorg}"
    );
    assert!(reorg.contains("<b>depth</b>: 2"), "{reorg}");
    assert!(
        reorg.contains("/events?node=n2&amp;at="),
        "node link: {reorg}"
    );
    // The txid in the resolved alert's evidence is known as a transaction.
    let resolved = row_with(&page, "rejections-n2");
    assert!(
        resolved.contains("<span class=\"resolved\">resolved</span>"),
        "{resolved}"
    );
    assert!(
        resolved.contains(&format!(
            "<b>example_txid</b>: <a class=\"h\" href=\"/tx/{}\"",
            txid(1)
        )),
        "{resolved}"
    );
    assert!(resolved.contains("282 &lt; 500"), "{resolved}");
    // The state and node filters.
    let firing = site.page("/alerts?state=firing").await;
    assert!(
        firing.contains("<h2>Firing (2)</h2>") && !firing.contains("<h2>Resolved"),
        "{firing}"
    );
    let resolved_only = site.page("/alerts?state=resolved").await;
    assert!(
        resolved_only.contains("<h2>Resolved (1)</h2>") && !resolved_only.contains("<h2>Firing"),
        "{resolved_only}"
    );
    let n1 = site.page("/alerts?node=n1").await;
    assert!(
        n1.contains("<h2>Firing (1)</h2>") && n1.contains("invalid_block"),
        "{n1}"
    );
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mempools_validation_and_peers_pages_show_the_latest_rows() {
    let Some((site, _)) = site().await else {
        return;
    };
    let mempools = site.page("/mempools").await;
    assert_eq!(
        mempools.matches("<b>A</b>").count(),
        2,
        "n0 and n1 hold the same set: {mempools}"
    );
    assert_eq!(mempools.matches("<b>B</b>").count(), 1, "{mempools}");
    let n2 = row_with(&mempools, "min_fee: 1");
    assert!(n2.contains(&format!("/tx/{}", txid(3))), "{n2}");
    assert!(n2.contains("below 5000 sat/kvB"), "{n2}");
    let tpl = row_with(&mempools, "not_selected");
    assert!(tpl.contains(">n1</a>") && tpl.contains("0.500"), "{tpl}");

    let validation = site.page("/validation").await;
    let rows: Vec<&str> = validation.split("<tr><td>Satoshi:").skip(1).collect();
    assert_eq!(rows.len(), 3, "{validation}");
    assert!(
        rows[0].starts_with("28.1.0") && rows[0].contains("95.5 ms"),
        "slowest first: {validation}"
    );
    assert!(validation.contains("<svg"), "{validation}");
    assert!(
        validation.contains("<td>Connect block</td>"),
        "{validation}"
    );

    let peers = site.page("/peers").await;
    let p7 = row_with(&peers, "203.0.113.7:8333");
    assert!(
        p7.contains("outbound-full-relay") && p7.contains("31.5 ms"),
        "{p7}"
    );
    assert!(
        p7.contains("<td class=\"n\">5</td></tr>"),
        "blocks 100..104 first delivered by peer 7: {p7}"
    );
    assert!(
        peers.contains("joined since the poll before: 9; left: 4"),
        "{peers}"
    );
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_a_400_and_unknown_objects_a_404_never_a_panic() {
    let Some((site, _)) = site().await else {
        return;
    };
    for path in [
        "/block/xyz",
        "/block/00ff",
        &format!("/block/{}0", a(104)),
        "/block/99999999999",
        &format!("/tx/{}", "g".repeat(64)),
        "/tx/123",
        "/tips?n=0",
        "/tips?n=abc",
        "/tips?n=100000",
        "/logs?node=n0'--",
        "/logs?from=yesterday",
        "/logs?from=2026-01-02T00:00&to=2026-01-01T00:00",
        "/events",
        "/events?node=n0&at=soon",
        "/alerts?state=burning",
        "/search?q=hello",
    ] {
        let (status, body) = site.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("class=\"err\""), "{path}: {body}");
    }
    let (status, body) = site.get("/block/xyz%3Cscript%3E").await;
    assert_eq!(status, 400);
    assert!(!body.contains("<script>"), "{body}");
    for path in [
        format!("/block/{}", "0".repeat(64)),
        format!("/tx/{}", "0".repeat(64)),
        "/block/5000".to_string(),
        "/no/such/page".to_string(),
        format!("/search?q={}", "0".repeat(64)),
    ] {
        let (status, body) = site.get(&path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    // The search box sends heights and known ids to their page.
    for (q, to) in [
        ("104".to_string(), "/block/104".to_string()),
        (a(104).to_string(), format!("/block/{}", a(104))),
        (txid(2).to_string(), format!("/tx/{}", txid(2))),
    ] {
        let r = site
            .http
            .get(format!("http://{}/search?q={q}", site.addr))
            .send()
            .await
            .expect("search");
        assert_eq!(r.status().as_u16(), 303, "{q}");
        assert_eq!(r.headers()["location"], to.as_str(), "{q}");
    }
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_get_is_served_and_pages_carry_a_no_script_policy() {
    let Some((site, _)) = site().await else {
        return;
    };
    let r = site
        .http
        .post(format!("http://{}/logs", site.addr))
        .body("q=x")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 405);
    let r = site
        .http
        .get(format!("http://{}/", site.addr))
        .send()
        .await
        .expect("GET");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(!r.text().await.unwrap().contains("<script"));
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_page_and_status() {
    let Some((site, _)) = site().await else {
        return;
    };
    site.page("/").await;
    site.page("/").await;
    site.get("/block/nothex").await;
    let (status, text) = site.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("bmon_web_requests_total{page=\"fleet\",status=\"200\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("bmon_web_requests_total{page=\"block\",status=\"400\"} 1"),
        "{text}"
    );
    assert!(text.contains("bmon_web_page_seconds_bucket{le="), "{text}");
    assert!(
        text.contains("bmon_web_page_seconds_count{page=\"fleet\"} 2"),
        "{text}"
    );
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_database_gives_pages_that_say_what_to_check() {
    let Some(site) = Site::start().await else {
        return;
    };
    let fleet = site.page("/").await;
    assert!(fleet.contains("No node_status rows yet"), "{fleet}");
    for path in [
        "/tips",
        "/alerts",
        "/logs",
        "/mempools",
        "/validation",
        "/peers",
    ] {
        site.page(path).await;
    }
    let (status, _) = site.get("/block/100").await;
    assert_eq!(status, 404);
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_bmons_tables_is_a_503_naming_bmon_setup() {
    let Some(ch) = common::clickhouse() else {
        return;
    };
    let db = ch.fresh_database();
    let mut config = web::Config::default();
    config.clickhouse.url = ch.url();
    config.clickhouse.database = db.clone();
    let site = Site::serve(std::sync::Arc::new(ch), db.clone(), config).await;
    let (status, body) = site.get("/").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("bmon setup"), "{body}");
    assert!(body.contains(&db), "{body}");
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_user_is_enough_and_a_refused_one_is_named() {
    let Some((site, _)) = site().await else {
        return;
    };
    // The `readonly` user (profile readonly = 1) of the stock users.xml, when the server has it.
    let probe = site
        .http
        .post(format!("{}/?user=readonly", site.config.clickhouse.url))
        .body("SELECT 1")
        .send()
        .await
        .expect("ClickHouse answers");
    let has_readonly = probe.status().is_success();
    let mut config = site.config.clone();
    config.clickhouse.user = "bmon_web_no_such_user".into();
    let refused = site.another(config.clone()).await;
    let (status, body) = refused.get("/").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("bmon_web_no_such_user"), "{body}");
    refused.stop().await;
    if !has_readonly {
        eprintln!("SKIPPED (part): the server has no `readonly` user to read as");
        site.stop().await;
        return;
    }
    config.clickhouse.user = "readonly".into();
    let reader = site.another(config).await;
    for path in [
        "/".to_string(),
        "/tips".into(),
        format!("/block/{}", a(104)),
        format!("/tx/{}", txid(1)),
        "/alerts".into(),
        "/logs?q=x".into(),
        "/mempools".into(),
        "/validation".into(),
        "/peers".into(),
    ] {
        reader.page(&path).await;
    }
    reader.stop().await;
    site.stop().await;
}

/// No ClickHouse is needed to check this one: nothing listens on the configured port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_clickhouse_is_a_503_naming_the_url_and_bmon_setup() {
    let port = test_support::free_port();
    let mut config = web::Config::default();
    config.clickhouse.url = format!("http://127.0.0.1:{port}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let metrics = std::sync::Arc::new(web::metrics::Metrics::new());
    let server = tokio::spawn({
        let (config, token) = (config.clone(), token.clone());
        async move { web::serve(listener, &config, metrics, token).await }
    });
    for path in ["/", "/tips", &format!("/tx/{}", txid(1)), "/logs?q=x"] {
        let r = reqwest::get(format!("http://{addr}{path}"))
            .await
            .expect("GET");
        assert_eq!(r.status().as_u16(), 503, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains(&format!("http://127.0.0.1:{port}")), "{body}");
        assert!(body.contains("bmon setup"), "{body}");
    }
    token.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("stops")
        .expect("joins")
        .expect("clean");
}

#[test]
fn times_in_the_scenario_are_ordered_as_the_story_says() {
    let t = Times { t0: 0 };
    assert!(t.invalid() < t.tx1() && t.tx1() < t.tx2() && t.tx2() < t.block(104));
    assert!(t.reorg() > t.block(104) && t.quote_line() - t.block(104) == 20 * MS);
}
