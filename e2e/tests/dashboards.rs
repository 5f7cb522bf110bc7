//! Every Grafana panel's SQL (and every dashboard variable query) runs on ClickHouse against
//! the tables bmon's migrations create. No Grafana server is needed: the datasource macros are
//! expanded the way the ClickHouse datasource plugin expands them.

use std::path::PathBuf;

use test_support::{workspace_root, ClickHouse};

fn dashboards() -> Vec<PathBuf> {
    let dir = workspace_root().join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

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

/// Expands the datasource macros and dashboard variables to concrete SQL.
fn expand(sql: &str, db: &str) -> String {
    let mut out = sql.replace("bmon.", &format!("{db}."));
    while let Some(start) = out.find("$__timeFilter(") {
        let rest = &out[start + "$__timeFilter(".len()..];
        let end = rest
            .find(')')
            .expect("closing parenthesis of $__timeFilter");
        let column = rest[..end].to_string();
        let replacement =
            format!("({column} >= toDateTime(1500000000) AND {column} <= toDateTime(4000000000))");
        out.replace_range(
            start..start + "$__timeFilter(".len() + end + 1,
            &replacement,
        );
    }
    out.replace("${node:singlequote}", "'node0', 'node1'")
        .replace("${category}", "")
        .replace("${level}", "")
        .replace("${search}", "")
}

fn queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(sql) = t["rawSql"].as_str() {
                out.push((
                    p["title"].as_str().unwrap_or("?").to_string(),
                    sql.to_string(),
                ));
            }
        }
    }
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"] == "query" {
            if let Some(sql) = v["query"].as_str() {
                out.push((format!("variable {}", v["name"]), sql.to_string()));
            }
        }
    }
    out
}

#[test]
fn every_panel_query_runs_on_clickhouse() {
    let ch = ClickHouse::shared();
    let db = ch.fresh_database();
    for stmt in migrations() {
        ch.query_in(&db, &stmt)
            .unwrap_or_else(|e| panic!("migration failed: {e}\n{stmt}"));
    }
    let files = dashboards();
    assert!(
        files.len() >= 4,
        "expected the bmon dashboards, found {files:?}"
    );
    let mut failures = Vec::new();
    let mut ran = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let dash: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", f.display()));
        for (title, sql) in queries(&dash) {
            ran += 1;
            let sql = expand(&sql, &db);
            if let Err(e) = ch.query(&sql) {
                failures.push(format!("{} / {title}: {e}\n{sql}", f.display()));
            }
        }
    }
    assert!(ran >= 15, "only {ran} queries found");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_panel_uses_the_provisioned_datasource() {
    for f in dashboards() {
        let dash: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap_or_default()).unwrap();
        for p in dash["panels"].as_array().into_iter().flatten() {
            assert_eq!(
                p["datasource"]["uid"],
                "bmon-clickhouse",
                "{}: {}",
                f.display(),
                p["title"]
            );
        }
    }
}

/// The same migrations and panel queries on the current ClickHouse engine (chdb 26.x), where
/// operators run bmon: the SQL must stay in the subset both versions accept.
#[test]
fn migrations_and_panel_queries_run_on_current_clickhouse() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let db = "bmon_check";
    let mut statements: Vec<serde_json::Value> = migrations()
        .into_iter()
        .enumerate()
        .map(
            |(i, sql)| serde_json::json!({"label": format!("migration statement {i}"), "sql": sql}),
        )
        .collect();
    for f in dashboards() {
        let dash: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap_or_default()).unwrap();
        for (title, sql) in queries(&dash) {
            statements.push(serde_json::json!({
                "label": format!("{} / {title}", f.display()),
                "sql": expand(&sql, db),
            }));
        }
    }
    let job = serde_json::json!({"database": db, "statements": statements});
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
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("{} passed, 0 failed", statements.len())),
        "{text}"
    );
}
