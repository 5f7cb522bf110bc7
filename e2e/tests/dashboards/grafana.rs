//! The Grafana side of the dashboard checks, with no Grafana server: the dashboards and their
//! panels as the JSON files say, and each query expanded the way Grafana and its datasource
//! plugins expand it before it reaches ClickHouse or Prometheus:
//!
//! - dashboard variables (Grafana's template service): `${var:singlequote}`, `${var:csv}`,
//!   `${var:regex}`, `${var}` and `$var`, with "All" as every option or the custom all value;
//! - Grafana's interval variables (`$__interval`, `$__rate_interval`, `$__range`, ...);
//! - the ClickHouse plugin's macros (grafana-clickhouse-datasource v4, `pkg/macros`):
//!   `$__timeFilter(col)` is `col >= toDateTime(FROM) AND col <= toDateTime(TO)` (no
//!   parentheses, as the plugin writes it), `$__fromTime`, `$__toTime`, `$__interval_s`,
//!   `$__timeInterval(col)`, `$__dateFilter(col)`, `$__dateTimeFilter(d, t)` and the `_ms` forms.
//!
//! Anything still starting with `$` after expansion is a variable or macro the test does not
//! know, and fails the check rather than reaching the server as text.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use test_support::workspace_root;

/// The provisioned ClickHouse datasource.
pub const CLICKHOUSE_UID: &str = "bmon-clickhouse";
/// Its plugin.
pub const CLICKHOUSE_TYPE: &str = "grafana-clickhouse-datasource";
/// The provisioned Prometheus datasource.
pub const PROMETHEUS_UID: &str = "bmon-prometheus";
/// Its plugin.
pub const PROMETHEUS_TYPE: &str = "prometheus";

/// The ClickHouse plugin's query formats (`format` of a target).
pub const FORMAT_TIME_SERIES: u64 = 0;
/// Rows as they come.
pub const FORMAT_TABLE: u64 = 1;

/// One dashboard file.
pub struct Dashboard {
    /// File name (`fleet.json`).
    pub file: String,
    /// The JSON.
    pub json: Value,
}

/// One query of one panel.
pub struct Target {
    /// The target's datasource uid.
    pub datasource_uid: String,
    /// The target's datasource type.
    pub datasource_type: String,
    /// ClickHouse: the SQL.
    pub sql: Option<String>,
    /// ClickHouse: the plugin's format.
    pub format: Option<u64>,
    /// Prometheus: the PromQL.
    pub expr: Option<String>,
    /// Prometheus: an instant query (tables, stats), else a range query.
    pub instant: bool,
}

/// One panel.
pub struct Panel {
    /// Title (unique within a dashboard).
    pub title: String,
    /// Visualization (`table`, `timeseries`, ...).
    pub kind: String,
    /// The panel's datasource uid.
    pub datasource_uid: String,
    /// The panel's datasource type.
    pub datasource_type: String,
    /// Its queries.
    pub targets: Vec<Target>,
}

/// One dashboard variable.
pub struct Variable {
    /// Name, as `$name` in queries.
    pub name: String,
    /// `query`, `textbox`, `custom`, ...
    pub kind: String,
    /// The query's datasource uid (query variables).
    pub datasource_uid: Option<String>,
    /// The query (query variables) or the default text.
    pub query: String,
    /// The value it starts with (`$__all` for "All").
    pub current: String,
    /// The custom "All" value, if any.
    pub all_value: Option<String>,
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

impl Dashboard {
    /// The dashboard's uid.
    pub fn uid(&self) -> String {
        text(&self.json["uid"])
    }

    /// Its panels.
    pub fn panels(&self) -> Vec<Panel> {
        let mut out = Vec::new();
        for p in self.json["panels"].as_array().into_iter().flatten() {
            let targets = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| Target {
                    datasource_uid: text(&t["datasource"]["uid"]),
                    datasource_type: text(&t["datasource"]["type"]),
                    sql: t["rawSql"].as_str().map(String::from),
                    format: t["format"].as_u64(),
                    expr: t["expr"].as_str().map(String::from),
                    instant: t["instant"].as_bool().unwrap_or(false),
                })
                .collect();
            out.push(Panel {
                title: text(&p["title"]),
                kind: text(&p["type"]),
                datasource_uid: text(&p["datasource"]["uid"]),
                datasource_type: text(&p["datasource"]["type"]),
                targets,
            });
        }
        out
    }

    /// Its variables.
    pub fn variables(&self) -> Vec<Variable> {
        self.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| Variable {
                name: text(&v["name"]),
                kind: text(&v["type"]),
                datasource_uid: v["datasource"]["uid"].as_str().map(String::from),
                query: match &v["query"] {
                    Value::String(s) => s.clone(),
                    // Newer Grafana writes {"query": "...", "refId": ...} for query variables.
                    q => text(&q["query"]),
                },
                current: text(&v["current"]["value"]),
                all_value: v["allValue"].as_str().map(String::from),
            })
            .collect()
    }
}

/// Every dashboard in `grafana/dashboards`, by file name.
pub fn dashboards() -> Vec<Dashboard> {
    let dir = workspace_root().join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let body =
                std::fs::read_to_string(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
            Dashboard {
                file: f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                json: serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("{} is not JSON: {e}", f.display())),
            }
        })
        .collect()
}

/// What a variable stands for when a query is expanded.
#[derive(Debug, Clone)]
pub struct VarValue {
    /// The selected values (every option when "All" is selected).
    pub values: Vec<String>,
    /// "All" is selected and the variable has a custom all value: that value, used as is.
    pub all: Option<String>,
}

/// The dashboard state a query is expanded in: time range, interval and variables.
#[derive(Debug, Clone)]
pub struct Context {
    /// Time range start, Unix seconds.
    pub from_s: i64,
    /// Time range end, Unix seconds.
    pub to_s: i64,
    /// The panel's interval (Grafana's `$__interval`), seconds.
    pub interval_s: u64,
    /// The Prometheus datasource's scrape interval (its `timeInterval`), seconds.
    pub scrape_interval_s: u64,
    /// ClickHouse database the `bmon.` prefix of the dashboards stands for.
    pub database: String,
    /// Variable values by name.
    pub vars: BTreeMap<String, VarValue>,
}

fn quote_single(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\^$.|?*+()[]{}/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Context {
    fn format_var(&self, name: &str, format: Option<&str>) -> Result<String, String> {
        let v = self
            .vars
            .get(name)
            .ok_or_else(|| format!("unknown variable ${name}"))?;
        if let Some(all) = &v.all {
            return Ok(all.clone());
        }
        Ok(match format {
            Some("singlequote") => v
                .values
                .iter()
                .map(|s| quote_single(s))
                .collect::<Vec<_>>()
                .join(","),
            Some("doublequote") => v
                .values
                .iter()
                .map(|s| format!("\"{}\"", s.replace('"', "\\\"")))
                .collect::<Vec<_>>()
                .join(","),
            Some("csv") | Some("raw") => v.values.join(","),
            Some("regex") => {
                let parts: Vec<String> = v.values.iter().map(|s| regex_escape(s)).collect();
                if parts.len() == 1 {
                    parts[0].clone()
                } else {
                    format!("({})", parts.join("|"))
                }
            }
            Some(other) => return Err(format!("variable format :{other} not emulated")),
            // A single value goes in as it is; several are a regex (Prometheus' default).
            None if v.values.len() == 1 => v.values[0].clone(),
            None => return self.format_var(name, Some("regex")),
        })
    }

    /// Grafana's own variables and the dashboard's, as the frontend replaces them.
    fn expand_variables(&self, query: &str) -> Result<String, String> {
        let range_s = (self.to_s - self.from_s).max(1);
        let rate_s = (self.interval_s + self.scrape_interval_s).max(4 * self.scrape_interval_s);
        let builtins = [
            ("$__rate_interval", format!("{rate_s}s")),
            ("$__interval_ms", format!("{}", self.interval_s * 1000)),
            ("$__interval", format!("{}s", self.interval_s)),
            ("$__range_s", format!("{range_s}")),
            ("$__range_ms", format!("{}", range_s * 1000)),
            ("$__range", format!("{range_s}s")),
        ];
        let mut out = String::new();
        let mut rest = query;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some((name, value)) = builtins.iter().find(|(n, _)| {
                tail.starts_with(n)
                    && !tail[n.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            }) {
                out.push_str(value);
                rest = &tail[name.len()..];
            } else if let Some(after) = tail.strip_prefix("$__") {
                // A datasource macro: left for the plugin.
                out.push_str("$__");
                rest = after;
            } else if let Some(body) = tail.strip_prefix("${") {
                let end = body
                    .find('}')
                    .ok_or_else(|| format!("unclosed ${{ in {tail}"))?;
                let (name, format) = match body[..end].split_once(':') {
                    Some((n, f)) => (n, Some(f)),
                    None => (&body[..end], None),
                };
                out.push_str(&self.format_var(name, format)?);
                rest = &body[end + 1..];
            } else {
                let name: String = tail[1..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() {
                    return Err(format!("a lone $ in {query}"));
                }
                out.push_str(&self.format_var(&name, None)?);
                rest = &tail[1 + name.len()..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// A dashboard SQL query as ClickHouse receives it from the plugin.
    pub fn expand_sql(&self, sql: &str) -> Result<String, String> {
        let sql = self.expand_variables(sql)?;
        let sql = expand_clickhouse_macros(&sql, self)?;
        if let Some(i) = sql.find('$') {
            return Err(format!("unexpanded {}", &sql[i..(i + 30).min(sql.len())]));
        }
        Ok(sql.replace("bmon.", &format!("{}.", self.database)))
    }

    /// A PromQL expression as Prometheus receives it from Grafana.
    pub fn expand_promql(&self, expr: &str) -> Result<String, String> {
        let expr = self.expand_variables(expr)?;
        if let Some(i) = expr.find('$') {
            return Err(format!("unexpanded {}", &expr[i..(i + 30).min(expr.len())]));
        }
        Ok(expr)
    }
}

/// `YYYY-MM-DD` of a Unix time (UTC).
fn date(unix_s: i64) -> String {
    // Howard Hinnant's days-to-civil.
    let z = unix_s.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The ClickHouse plugin's macros, as `pkg/macros/macros.go` writes them.
fn expand_clickhouse_macros(sql: &str, ctx: &Context) -> Result<String, String> {
    let (from, to) = (ctx.from_s, ctx.to_s);
    let interval = ctx.interval_s.max(1);
    let mut out = String::new();
    let mut rest = sql;
    while let Some(i) = rest.find("$__") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 3..];
        let name: String = tail
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut after = &tail[name.len()..];
        let mut args: Vec<String> = Vec::new();
        if after.starts_with('(') {
            let mut depth = 0;
            let mut end = None;
            for (j, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| format!("unclosed $__{name}("))?;
            args = after[1..end]
                .split(',')
                .map(|a| a.trim().to_string())
                .collect();
            after = &after[end + 1..];
        }
        let arg = |n: usize| -> Result<&str, String> {
            if args.len() != n {
                return Err(format!("$__{name} takes {n} argument(s), got {args:?}"));
            }
            Ok(args[0].as_str())
        };
        let dt = |s: i64| format!("toDateTime({s})");
        let ms = |s: i64| format!("fromUnixTimestamp64Milli({})", s * 1000);
        let day = |s: i64| format!("toDate('{}')", date(s));
        let text = match name.as_str() {
            "fromTime" => dt(from),
            "toTime" => dt(to),
            "fromTime_ms" => ms(from),
            "toTime_ms" => ms(to),
            "timeFilter" => {
                let c = arg(1)?;
                format!("{c} >= {} AND {c} <= {}", dt(from), dt(to))
            }
            "timeFilter_ms" => {
                let c = arg(1)?;
                format!("{c} >= {} AND {c} <= {}", ms(from), ms(to))
            }
            "dateFilter" => {
                let c = arg(1)?;
                format!("{c} >= {} AND {c} <= {}", day(from), day(to))
            }
            "dateTimeFilter" | "dt" => {
                arg(2)?;
                let (d, t) = (&args[0], &args[1]);
                format!(
                    "({d} >= {} AND {d} <= {}) AND ({t} >= {} AND {t} <= {})",
                    day(from),
                    day(to),
                    dt(from),
                    dt(to)
                )
            }
            "timeInterval" => format!(
                "toStartOfInterval(toDateTime({}), INTERVAL {interval} second)",
                arg(1)?
            ),
            "timeInterval_ms" => format!(
                "toStartOfInterval(toDateTime64({}, 3), INTERVAL {} millisecond)",
                arg(1)?,
                interval * 1000
            ),
            "interval_s" => format!("{interval}"),
            other => return Err(format!("macro $__{other} is not one the plugin has")),
        };
        out.push_str(&text);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        let mut vars = BTreeMap::new();
        vars.insert(
            "node".to_string(),
            VarValue {
                values: vec!["n0".into(), "n'1".into()],
                all: None,
            },
        );
        vars.insert(
            "instance".to_string(),
            VarValue {
                values: vec!["a:1".into()],
                all: Some(".*".into()),
            },
        );
        vars.insert(
            "search".to_string(),
            VarValue {
                values: vec![String::new()],
                all: None,
            },
        );
        Context {
            from_s: 1_700_000_000,
            to_s: 1_700_003_600,
            interval_s: 5,
            scrape_interval_s: 1,
            database: "db".into(),
            vars,
        }
    }

    #[test]
    fn macros_expand_as_the_plugin_writes_them() {
        let sql = ctx()
            .expand_sql(
                "SELECT 1 FROM bmon.t WHERE $__timeFilter(observed_at) AND node IN (${node:singlequote}) \
                 AND m = '${search}' GROUP BY intDiv(x, $__interval_s) AND $__dateFilter(d)",
            )
            .unwrap();
        assert_eq!(
            sql,
            "SELECT 1 FROM db.t WHERE observed_at >= toDateTime(1700000000) AND observed_at <= \
             toDateTime(1700003600) AND node IN ('n0','n\\'1') AND m = '' GROUP BY intDiv(x, 5) \
             AND d >= toDate('2023-11-14') AND d <= toDate('2023-11-14')"
        );
        assert!(ctx().expand_sql("SELECT $__nosuch(x)").is_err());
        assert!(ctx().expand_sql("SELECT ${nosuch}").is_err());
    }

    #[test]
    fn promql_gets_the_all_value_and_grafana_intervals() {
        let q = ctx()
            .expand_promql(r#"rate(x{instance=~"$instance"}[$__rate_interval]) [$__range]"#)
            .unwrap();
        assert_eq!(q, r#"rate(x{instance=~".*"}[6s]) [3600s]"#);
    }
}
