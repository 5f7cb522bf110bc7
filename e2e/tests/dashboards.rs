//! Grafana's dashboards, checked on data without a Grafana server.
//!
//! One simnet run ([`fixture`]: three Core versions, transactions, an invalid block, a
//! rejection burst and a withheld branch) goes through the agents, NATS, `ch-writer`, every
//! detector and the Alertmanager router into ClickHouse 18.16, while a real Prometheus scrapes
//! the run's bmon processes and a node_exporter. Then every panel's query is expanded the way
//! Grafana and its datasource plugins expand it ([`grafana`]) and run:
//!
//! - ClickHouse panels on 18.16: each must run, return rows the plugin can draw (a time series
//!   needs an ascending `time` column, labels and numbers), and pass its check against simnet's
//!   truth ([`expect`]), or be one the run legitimately leaves empty, with the reason;
//! - the same queries on the current engine (chdb), over a copy of the run's rows: they must run
//!   and return as many rows, with the same columns, as on 18.16;
//! - Prometheus panels on the real Prometheus (instant or range queries as Grafana sends them):
//!   each target must return series, and pass its check.
//!
//! Faster checks: every panel and variable names a provisioned datasource, and every query runs
//! on the current engine against the migrations' empty tables.

#[path = "dashboards/expect.rs"]
mod expect;
#[path = "dashboards/fixture.rs"]
mod fixture;
#[path = "dashboards/grafana.rs"]
mod grafana;
#[path = "dashboards/prometheus.rs"]
mod prometheus;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use expect::{Expect, PromExpect, Rows, Scraped};
use grafana::{Context, Dashboard, VarValue};
use prometheus::{Job, NodeExporter, Prometheus};
use test_support::workspace_root;

/// The migrations' statements, in order.
fn migrations() -> Vec<String> {
    let dir = workspace_root().join("clickhouse");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let without_comments: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            without_comments
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Datasource uid -> type, from `grafana/provisioning/datasources/*.yml`.
fn provisioned_datasources() -> BTreeMap<String, String> {
    let dir = workspace_root().join("grafana/provisioning/datasources");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
    {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        // Each datasource is a list item; its `uid:` and `type:` keys are at the same depth.
        for item in text.split("\n  - ").skip(1) {
            let key = |k: &str| {
                item.lines()
                    .map(str::trim)
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.trim().to_string())
            };
            if let (Some(uid), Some(ty)) = (key("uid:"), key("type:")) {
                out.insert(uid, ty);
            }
        }
    }
    out
}

#[test]
fn every_panel_uses_the_provisioned_datasource() {
    let provisioned = provisioned_datasources();
    assert_eq!(
        provisioned.get(grafana::CLICKHOUSE_UID).map(String::as_str),
        Some(grafana::CLICKHOUSE_TYPE),
        "{provisioned:?}"
    );
    assert_eq!(
        provisioned.get(grafana::PROMETHEUS_UID).map(String::as_str),
        Some(grafana::PROMETHEUS_TYPE),
        "{provisioned:?}"
    );
    let dashboards = grafana::dashboards();
    let uids: BTreeSet<String> = dashboards.iter().map(Dashboard::uid).collect();
    for want in [
        "bmon-fleet",
        "bmon-propagation",
        "bmon-chain",
        "bmon-mempool",
        "bmon-validation",
        "bmon-peers",
        "bmon-alerts",
        "bmon-logs",
        "bmon-hosts",
    ] {
        assert!(uids.contains(want), "no {want} dashboard in {uids:?}");
    }
    assert_eq!(uids.len(), dashboards.len(), "dashboard uids are unique");
    for d in &dashboards {
        let mut titles = BTreeSet::new();
        for p in d.panels() {
            let at = format!("{} / {}", d.file, p.title);
            assert!(titles.insert(p.title.clone()), "{at}: title used twice");
            assert_eq!(
                provisioned.get(&p.datasource_uid),
                Some(&p.datasource_type),
                "{at}: datasource {} ({}) is not provisioned",
                p.datasource_uid,
                p.datasource_type
            );
            assert!(!p.targets.is_empty(), "{at}: no query");
            for t in &p.targets {
                assert_eq!(
                    t.datasource_uid, p.datasource_uid,
                    "{at}: target datasource"
                );
                assert_eq!(t.datasource_type, p.datasource_type, "{at}: target type");
                if p.datasource_uid == grafana::CLICKHOUSE_UID {
                    assert!(t.sql.is_some(), "{at}: a ClickHouse target has rawSql");
                    // The plugin turns long rows into series only in its time-series format.
                    let want = if p.kind == "timeseries" {
                        grafana::FORMAT_TIME_SERIES
                    } else {
                        grafana::FORMAT_TABLE
                    };
                    assert_eq!(t.format, Some(want), "{at}: format for a {} panel", p.kind);
                } else {
                    assert!(t.expr.is_some(), "{at}: a Prometheus target has expr");
                }
            }
        }
        for v in d.variables() {
            if let Some(uid) = &v.datasource_uid {
                assert!(
                    provisioned.contains_key(uid),
                    "{} / variable {}: datasource {uid}",
                    d.file,
                    v.name
                );
            }
        }
    }
}

/// What the chdb runner said: its output, and the `RESULT` lines by label.
struct ChdbOutcome {
    text: String,
    passed_all: bool,
    results: BTreeMap<String, (u64, Vec<String>)>,
}

/// Runs `statements` (label, SQL, wants a result line) in one chdb session.
fn run_on_chdb(database: &str, statements: &[(String, String, bool)]) -> ChdbOutcome {
    let job = serde_json::json!({
        "database": database,
        "statements": statements
            .iter()
            .map(|(label, sql, result)| serde_json::json!({"label": label, "sql": sql, "result": result}))
            .collect::<Vec<_>>(),
    });
    let script = workspace_root().join("scripts/run_sql_chdb.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 {}: {e}", script.display()));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(job.to_string().as_bytes())
        .expect("write job");
    let out = child.wait_with_output().expect("wait for chdb runner");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(3),
        "{text} (scripts/install-deps.sh installs it)"
    );
    let mut results = BTreeMap::new();
    for line in text.lines() {
        if let Some(json) = line.strip_prefix("RESULT ") {
            let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
            let columns = v["columns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(String::from))
                .collect();
            results.insert(
                v["label"].as_str().unwrap_or_default().to_string(),
                (v["rows"].as_u64().unwrap_or_default(), columns),
            );
        }
    }
    let passed_all =
        out.status.success() && text.contains(&format!("{} passed, 0 failed", statements.len()));
    ChdbOutcome {
        text,
        passed_all,
        results,
    }
}

/// Every ClickHouse query of every dashboard (panels and variables), labelled, expanded in
/// `ctx` (every variable takes `values`).
fn clickhouse_queries(ctx: &Context) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in grafana::dashboards() {
        for p in d.panels() {
            for t in &p.targets {
                if let Some(sql) = &t.sql {
                    let sql = ctx
                        .expand_sql(sql)
                        .unwrap_or_else(|e| panic!("{} / {}: {e}", d.file, p.title));
                    out.push((format!("{} / {}", d.file, p.title), sql));
                }
            }
        }
        for v in d.variables() {
            if v.kind == "query" && v.datasource_uid.as_deref() == Some(grafana::CLICKHOUSE_UID) {
                let sql = ctx
                    .expand_sql(&v.query)
                    .unwrap_or_else(|e| panic!("{} / variable {}: {e}", d.file, v.name));
                out.push((format!("{} / variable {}", d.file, v.name), sql));
            }
        }
    }
    out
}

/// A context where every variable the dashboards use holds a couple of plain values.
fn placeholder_context(database: &str) -> Context {
    let mut vars = BTreeMap::new();
    for d in grafana::dashboards() {
        for v in d.variables() {
            let values = if v.kind == "textbox" {
                vec![v.current.clone()]
            } else {
                vec!["a".to_string(), "b".to_string()]
            };
            vars.insert(v.name.clone(), VarValue { values, all: None });
        }
    }
    Context {
        from_s: 1_500_000_000,
        to_s: 4_000_000_000,
        interval_s: 60,
        scrape_interval_s: 15,
        database: database.to_string(),
        vars,
    }
}

/// The same migrations and panel queries on the current ClickHouse engine (chdb 26.x), where
/// operators run bmon, on empty tables: a quick check that the SQL stays in the subset both
/// versions accept (the run below also replays its rows there).
#[test]
fn migrations_and_panel_queries_run_on_current_clickhouse() {
    let db = "bmon_check";
    let mut statements: Vec<(String, String, bool)> = migrations()
        .into_iter()
        .enumerate()
        .map(|(i, sql)| (format!("migration statement {i}"), sql, false))
        .collect();
    let queries = clickhouse_queries(&placeholder_context(db));
    assert!(queries.len() >= 60, "only {} queries found", queries.len());
    statements.extend(queries.into_iter().map(|(l, s)| (l, s, false)));
    let outcome = run_on_chdb(db, &statements);
    assert!(outcome.passed_all, "{}", outcome.text);
}

/// Runs one ClickHouse panel query on 18.16.
fn run_on_clickhouse(run: &fixture::Run, sql: &str) -> Result<Rows, String> {
    let p = &run.pipeline;
    let body = p
        .clickhouse
        .query_in(&p.database, &format!("{sql}\nFORMAT JSONCompact"))?;
    Rows::parse(&body)
}

/// The dashboard's variables as Grafana starts them ("All" selected): query variables take
/// every value their query returns on the run's data (ClickHouse), or from Prometheus' series
/// when `prom` is given (else Prometheus variables are left out).
fn resolve_variables(
    d: &Dashboard,
    run: &fixture::Run,
    prom: Option<&Prometheus>,
    base: &Context,
    failures: &mut Vec<String>,
) -> BTreeMap<String, VarValue> {
    let mut vars = BTreeMap::new();
    for v in d.variables() {
        if prom.is_none() && v.datasource_uid.as_deref() == Some(grafana::PROMETHEUS_UID) {
            continue;
        }
        let at = format!("{} / variable {}", d.file, v.name);
        let values: Vec<String> = match (v.kind.as_str(), v.datasource_uid.as_deref()) {
            ("query", Some(grafana::CLICKHOUSE_UID)) => {
                match base
                    .expand_sql(&v.query)
                    .and_then(|sql| run_on_clickhouse(run, &sql))
                    .and_then(|rows| {
                        let first = rows.columns.first().map(|c| c.0.clone());
                        rows.strings(&first.unwrap_or_default())
                    }) {
                    Ok(values) => values,
                    Err(e) => {
                        failures.push(format!("{at}: {e}"));
                        Vec::new()
                    }
                }
            }
            ("query", Some(grafana::PROMETHEUS_UID)) => {
                // label_values(metric, label)
                let args = v
                    .query
                    .strip_prefix("label_values(")
                    .and_then(|s| s.strip_suffix(')'))
                    .and_then(|s| s.split_once(','));
                match (args, prom) {
                    (Some((metric, label)), Some(prom)) => {
                        match prom.label_values(metric.trim(), label.trim()) {
                            Ok(values) => values,
                            Err(e) => {
                                failures.push(format!("{at}: {e}"));
                                Vec::new()
                            }
                        }
                    }
                    _ => {
                        failures.push(format!(
                            "{at}: only label_values(metric, label) is emulated"
                        ));
                        Vec::new()
                    }
                }
            }
            _ => vec![v.current.clone()],
        };
        if v.kind == "query" && values.is_empty() {
            failures.push(format!("{at}: no values"));
        }
        let all = (v.current == "$__all")
            .then(|| v.all_value.clone())
            .flatten();
        vars.insert(v.name.clone(), VarValue { values, all });
    }
    vars
}

/// Every ClickHouse panel on 18.16 against the run's tables. Returns the failures and, for
/// the replay on the current engine, each query with its row count and columns.
#[allow(clippy::type_complexity)]
fn check_clickhouse_panels(
    run: &fixture::Run,
    base: &Context,
) -> (Vec<String>, Vec<(String, String, usize, Vec<String>)>) {
    let mut failures = Vec::new();
    let mut answered = Vec::new();
    let mut ran = 0;
    for d in grafana::dashboards() {
        let mut ctx = base.clone();
        ctx.vars = resolve_variables(&d, run, None, base, &mut failures);
        if d.uid() != "bmon-hosts" {
            let node = ctx.vars.get("node").map(|v| v.values.clone());
            if let Some(node) = node {
                let want: Vec<String> = fixture::NODES.iter().map(|(n, _)| n.to_string()).collect();
                if node != want {
                    failures.push(format!("{} / variable node: {node:?}", d.file));
                }
            }
        }
        for p in d.panels() {
            if p.datasource_uid != grafana::CLICKHOUSE_UID {
                continue;
            }
            let at = format!("{} / {}", d.file, p.title);
            let Some(expectation) = expect::clickhouse(&d.uid(), &p.title) else {
                failures.push(format!(
                    "{at}: no expectation (add one in dashboards/expect.rs)"
                ));
                continue;
            };
            for t in &p.targets {
                let Some(sql) = &t.sql else { continue };
                ran += 1;
                let sql = match ctx.expand_sql(sql) {
                    Ok(sql) => sql,
                    Err(e) => {
                        failures.push(format!("{at}: {e}"));
                        continue;
                    }
                };
                let rows = match run_on_clickhouse(run, &sql) {
                    Ok(rows) => rows,
                    Err(e) => {
                        failures.push(format!("{at}: {e}\n{sql}"));
                        continue;
                    }
                };
                eprintln!("{at}: {} rows", rows.len());
                answered.push((
                    at.clone(),
                    sql.clone(),
                    rows.len(),
                    rows.columns.iter().map(|c| c.0.clone()).collect(),
                ));
                if t.format == Some(grafana::FORMAT_TIME_SERIES) && rows.len() > 0 {
                    if let Err(e) = expect::check_time_series(&rows) {
                        failures.push(format!("{at}: not a time series the plugin can draw: {e}"));
                    }
                }
                match &expectation {
                    Expect::MayBeEmpty(why) => {
                        if rows.len() == 0 {
                            eprintln!("{at}: empty, as this run leaves it: {why}");
                        }
                    }
                    Expect::Rows(_) if rows.len() == 0 => {
                        failures.push(format!("{at}: no rows\n{sql}"));
                    }
                    Expect::Rows(check) => {
                        if let Err(e) = check(&rows, run) {
                            failures.push(format!("{at}: {e}"));
                        }
                    }
                }
            }
        }
    }
    if ran < 60 {
        failures.push(format!("only {ran} ClickHouse panel queries found"));
    }
    (failures, answered)
}

/// The run's rows copied to the current engine (chdb), where every panel query must run and
/// return as many rows, with the same columns, as on 18.16.
fn replay_on_current_engine(
    run: &fixture::Run,
    base: &Context,
    answered: &[(String, String, usize, Vec<String>)],
) -> Vec<String> {
    let db = "bmon_replay";
    let p = &run.pipeline;
    let mut statements: Vec<(String, String, bool)> = migrations()
        .into_iter()
        .enumerate()
        .map(|(i, sql)| (format!("migration statement {i}"), sql, false))
        .collect();
    let tables = p.rows(&format!(
        "SELECT name FROM system.tables WHERE database = '{}' AND engine LIKE '%MergeTree' \
         AND name != 'schema_migrations' ORDER BY name",
        p.database
    ));
    for t in tables {
        let table = t["name"].as_str().unwrap_or_default().to_string();
        // Raw rows, copies included: FINAL has the same work to do on both engines.
        let body = p
            .clickhouse
            .query_in(
                &p.database,
                &format!("SELECT * FROM {table} FORMAT JSONEachRow"),
            )
            .unwrap_or_else(|e| panic!("export {table}: {e}"));
        if body.trim().is_empty() {
            continue;
        }
        statements.push((
            format!("copy of {table}"),
            format!("INSERT INTO {table} FORMAT JSONEachRow\n{body}"),
            false,
        ));
    }
    for (label, sql, _, _) in answered {
        let sql = sql.replace(&format!("{}.", base.database), &format!("{db}."));
        statements.push((label.clone(), sql, true));
    }
    let outcome = run_on_chdb(db, &statements);
    let mut failures = Vec::new();
    if !outcome.passed_all {
        failures.push(format!("current engine: {}", outcome.text));
    }
    for (label, _, rows, columns) in answered {
        match outcome.results.get(label) {
            Some((n, cols)) if *n == *rows as u64 && cols == columns => {}
            Some((n, cols)) => failures.push(format!(
                "{label}: {n} rows {cols:?} on the current engine, {rows} rows {columns:?} on 18.16"
            )),
            None => failures.push(format!("{label}: no answer on the current engine")),
        }
    }
    failures
}

/// Every Prometheus panel on the test's Prometheus, as Grafana queries it (instant queries for
/// tables, range queries over the dashboard's time range otherwise).
fn check_prometheus_panels(
    prom: &Prometheus,
    run: &fixture::Run,
    base: &Context,
    scraped: &Scraped,
) -> Vec<String> {
    let mut failures = Vec::new();
    let now_s = base.to_s;
    let mut ran = 0;
    for d in grafana::dashboards() {
        let mut ctx = base.clone();
        ctx.vars = resolve_variables(&d, run, Some(prom), base, &mut failures);
        for p in d.panels() {
            if p.datasource_uid != grafana::PROMETHEUS_UID {
                continue;
            }
            let at = format!("{} / {}", d.file, p.title);
            let Some(expectation) = expect::prometheus(&p.title) else {
                failures.push(format!(
                    "{at}: no expectation (add one in dashboards/expect.rs)"
                ));
                continue;
            };
            let mut results = Vec::new();
            for t in &p.targets {
                let Some(expr) = &t.expr else { continue };
                ran += 1;
                let answer = ctx.expand_promql(expr).and_then(|q| {
                    if t.instant {
                        prom.query(&q, now_s)
                    } else {
                        prom.query_range(&q, base.from_s, now_s, base.interval_s)
                    }
                });
                match answer {
                    Ok(series) => results.push(series),
                    Err(e) => {
                        failures.push(format!("{at}: {e}\n{expr}"));
                        results.push(Vec::new());
                    }
                }
            }
            let (check, unless) = match &expectation {
                PromExpect::Series(check) => (check, None),
                PromExpect::SeriesWhere(check, expr, reason) => (check, Some((*expr, *reason))),
            };
            if let Some(i) = results.iter().position(Vec::is_empty) {
                let excused = unless.is_some_and(|(expr, _)| {
                    prom.query(expr, now_s)
                        .map(|s| s.is_empty())
                        .unwrap_or(false)
                });
                if !excused {
                    failures.push(format!("{at}: target {i} returned no series"));
                }
                continue;
            }
            eprintln!(
                "{at}: {:?} series",
                results.iter().map(Vec::len).collect::<Vec<_>>()
            );
            if let Err(e) = check(&results, scraped) {
                failures.push(format!("{at}: {e}"));
            }
        }
    }
    if ran < 15 {
        failures.push(format!("only {ran} Prometheus panel queries found"));
    }
    failures
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The fleet's own RPC and ZMQ ports: not metrics endpoints (a ZMQ socket would wait for a
/// greeting, not answer HTTP).
fn fleet_ports(run: &fixture::Run) -> BTreeSet<u16> {
    let port = |url: &str| url.rsplit(':').next().and_then(|p| p.parse().ok());
    let fleet = run.pipeline.fleet.as_ref().expect("fleet");
    fleet
        .nodes()
        .iter()
        .flat_map(|n| {
            [
                port(&n.rpc_url),
                port(&n.zmq.sequence),
                port(&n.zmq.rawblock),
                port(&n.zmq.rawtx),
                port(&n.zmq.hashblock),
                port(&n.zmq.hashtx),
            ]
        })
        .flatten()
        .collect()
}

/// Finds the run's bmon `/metrics` endpoints: one per agent (node) and one per consumer
/// (`ch-writer`, five detectors, the Alertmanager router).
async fn bmon_endpoints(run: &fixture::Run) -> Vec<(Job, String)> {
    let exclude = fleet_ports(run);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = tokio::task::block_in_place(|| prometheus::bmon_endpoints(&exclude));
        let count = |j: Job| found.iter().filter(|(x, _)| *x == j).count();
        if count(Job::Agent) == fixture::NODES.len() && count(Job::Consumer) == 7 {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bmon /metrics endpoints: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_shows_what_a_simnet_run_put_in_its_tables() {
    let started = std::time::Instant::now();
    let exporter = NodeExporter::start();
    let mut run = fixture::start().await;
    let endpoints = bmon_endpoints(&run).await;
    let targets = |job: Job| -> Vec<String> {
        endpoints
            .iter()
            .filter(|(j, _)| *j == job)
            .map(|(_, a)| a.clone())
            .collect()
    };
    // Blocking calls run with block_in_place from here on: the runtime's tasks serve the
    // /metrics endpoints Prometheus scrapes meanwhile.
    let prom = tokio::task::block_in_place(|| {
        Prometheus::start(&[
            (Job::Agent.name(), targets(Job::Agent)),
            (Job::Consumer.name(), targets(Job::Consumer)),
            ("node", vec![exporter.addr.clone()]),
        ])
    });
    let scraped = Scraped {
        agents: targets(Job::Agent).len(),
        consumers: targets(Job::Consumer).len(),
        exporter: exporter.addr.clone(),
    };
    run.settle().await;

    // Prometheus, while the bmon processes still run: every target scraped several times.
    let (from_s, database) = (run.from_s, run.pipeline.database.clone());
    let base = |to_s: i64| Context {
        from_s,
        to_s,
        // What Grafana picks for a panel a few hundred pixels wide over this range.
        interval_s: 5,
        scrape_interval_s: prometheus::SCRAPE_INTERVAL_S,
        database: database.clone(),
        vars: BTreeMap::new(),
    };
    let all_targets = scraped.agents + scraped.consumers + 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let up = tokio::task::block_in_place(|| {
            prom.query("count(count_over_time(up[1m]) >= 8 and up == 1)", now_s())
        })
        .unwrap_or_default();
        if up.first().map(|s| s["value"][1].clone()) == Some(all_targets.to_string().into()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Prometheus has not scraped all {all_targets} targets: {up:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut failures = tokio::task::block_in_place(|| {
        check_prometheus_panels(&prom, &run, &base(now_s()), &scraped)
    });
    drop(prom);
    drop(exporter);

    // ClickHouse 18.16, once the pipeline has written everything and stopped.
    run.stop().await;
    let ctx = base(now_s() + 60);
    let (ch_failures, answered) = check_clickhouse_panels(&run, &ctx);
    failures.extend(ch_failures);
    failures.extend(replay_on_current_engine(&run, &ctx, &answered));
    eprintln!("dashboards checked in {:?}", started.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
