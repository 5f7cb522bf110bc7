//! ClickHouse migrations: the numbered files of `clickhouse/` (embedded at build time), applied
//! in order and recorded in the database's `schema_migrations` table.
//!
//! Applying is idempotent: a recorded migration is skipped (after checking its file did not
//! change), so running `bmon setup` twice changes nothing. Migrations name no database; they
//! run in the configured one (`bmon` by default), which is created first.

use clickhouse::Client;
use serde::Deserialize;

use crate::config::is_identifier;
use crate::Error;

/// One migration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The number the file name starts with.
    pub version: u32,
    /// The file name without `.sql`.
    pub name: &'static str,
    /// The file's text.
    pub sql: &'static str,
}

/// Every migration in `clickhouse/`, in version order.
pub const MIGRATIONS: &[Migration] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The table recording applied migrations.
pub const MIGRATIONS_TABLE: &str = "schema_migrations";

impl Migration {
    /// The statements of the file, comments removed, split at `;` outside string literals.
    pub fn statements(&self) -> Vec<String> {
        split_statements(self.sql)
    }

    /// A checksum of the file's text (FNV-1a, 64 bits, hex): detects an edited migration.
    pub fn checksum(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.sql.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

/// Splits SQL text into statements: drops `--` comments, splits at `;` outside quotes.
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' | '`' => {
                    quote = Some(c);
                    cur.push(c);
                }
                '-' if chars.peek() == Some(&'-') => {
                    for n in chars.by_ref() {
                        if n == '\n' {
                            cur.push('\n');
                            break;
                        }
                    }
                }
                ';' => {
                    let st = cur.trim();
                    if !st.is_empty() {
                        out.push(st.to_string());
                    }
                    cur.clear();
                }
                _ => cur.push(c),
            },
        }
    }
    let st = cur.trim();
    if !st.is_empty() {
        out.push(st.to_string());
    }
    out
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Whether the database had to be created.
    pub created_database: bool,
    /// Migrations applied now.
    pub applied: Vec<String>,
    /// Migrations found already applied.
    pub already_applied: Vec<String>,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct Applied {
    version: u32,
    name: String,
    checksum: String,
}

/// Which table engines the migrations create.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engines {
    /// `ReplacingMergeTree`, on one server.
    #[default]
    Local,
    /// `ReplicatedReplacingMergeTree`, one replica per server: each server needs ZooKeeper
    /// and the `{shard}` and `{replica}` macros in its config, and `bmon setup --replicated`
    /// runs once against each of them.
    Replicated,
}

/// `statement` with its `ReplacingMergeTree()` table made a `ReplicatedReplacingMergeTree`
/// at `/clickhouse/tables/{shard}/<database>/<table>` (pure; other statements unchanged).
pub fn replicated(statement: &str, database: &str) -> String {
    const LOCAL: &str = "ENGINE = ReplacingMergeTree()";
    let Some(at) = statement.find(LOCAL) else {
        return statement.to_string();
    };
    let table = statement
        .split_whitespace()
        .skip_while(|w| !w.eq_ignore_ascii_case("TABLE"))
        .nth(1)
        .map(|w| {
            if w.eq_ignore_ascii_case("IF") {
                // CREATE TABLE IF NOT EXISTS name
                statement
                    .split_whitespace()
                    .skip_while(|w| !w.eq_ignore_ascii_case("EXISTS"))
                    .nth(1)
                    .unwrap_or(w)
            } else {
                w
            }
        })
        .unwrap_or("t")
        .trim_end_matches('(');
    format!(
        "{}ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{database}/{table}', \
         '{{replica}}'){}",
        &statement[..at],
        &statement[at + LOCAL.len()..]
    )
}

/// A replicated statement as a replica that joins after the others must run it: a table
/// another replica already created (its ZooKeeper node exists) is created with the columns it
/// has now, since the later migrations' `ALTER`s already reached it through ZooKeeper; an
/// `ADD COLUMN` for a column the table already has is skipped (`None`).
async fn joining_replica(
    db: &Client,
    database: &str,
    statement: &str,
) -> Result<Option<String>, clickhouse::error::Error> {
    #[derive(Debug, clickhouse::Row, Deserialize)]
    struct Value {
        value: String,
    }
    #[derive(Debug, clickhouse::Row, Deserialize)]
    struct Count {
        n: u64,
    }
    let words: Vec<&str> = statement.split_whitespace().collect();
    let upper: Vec<String> = words
        .iter()
        .take(7)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    if upper.len() >= 6 && upper[0] == "ALTER" && upper[1] == "TABLE" && upper[3] == "ADD" {
        let column = words[5].trim_matches('`');
        let n = db
            .query("SELECT count() AS n FROM system.columns WHERE database = ? AND table = ? AND name = ?")
            .bind(database)
            .bind(words[2])
            .bind(column)
            .fetch_one::<Count>()
            .await?
            .n;
        return Ok((n == 0).then(|| statement.to_string()));
    }
    let Some(start) = statement.find("ReplicatedReplacingMergeTree('") else {
        return Ok(Some(statement.to_string()));
    };
    let path_start = start + "ReplicatedReplacingMergeTree('".len();
    let Some(path_len) = statement[path_start..].find('\'') else {
        return Ok(Some(statement.to_string()));
    };
    let shard: Vec<Value> = db
        .query("SELECT substitution AS value FROM system.macros WHERE macro = 'shard'")
        .fetch_all()
        .await?;
    let Some(shard) = shard.first() else {
        return Ok(Some(statement.to_string()));
    };
    let path = statement[path_start..path_start + path_len].replace("{shard}", &shard.value);
    let columns: Vec<Value> = db
        .query("SELECT value FROM system.zookeeper WHERE path = ? AND name = 'columns'")
        .bind(&path)
        .fetch_all()
        .await
        .unwrap_or_default();
    let Some(columns) = columns.first() else {
        return Ok(Some(statement.to_string()));
    };
    // `columns format version: 1`, `N columns:`, then one `` `name` Type `` per line.
    let list: Vec<String> = columns
        .value
        .lines()
        .skip(2)
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("    {}", l.replace('\t', " ")))
        .collect();
    let (Some(open), Some(engine)) = (statement.find('('), statement.find("ENGINE =")) else {
        return Ok(Some(statement.to_string()));
    };
    let Some(close) = statement[..engine].rfind(')') else {
        return Ok(Some(statement.to_string()));
    };
    Ok(Some(format!(
        "{}(\n{}\n){}",
        &statement[..open],
        list.join(",\n"),
        &statement[close + 1..]
    )))
}

/// Creates `database` when missing, then applies every migration of [`MIGRATIONS`] not yet
/// recorded there.
///
/// `server` is a client without a database (it must be able to create one); the migrations run
/// through `server.with_database(database)`.
pub async fn apply(server: &Client, database: &str) -> Result<Report, Error> {
    apply_list(server, database, MIGRATIONS, Engines::Local).await
}

/// [`apply`] creating `engines` tables (the bookkeeping table stays local to each server).
pub async fn apply_with(
    server: &Client,
    database: &str,
    engines: Engines,
) -> Result<Report, Error> {
    apply_list(server, database, MIGRATIONS, engines).await
}

/// [`apply`] with an explicit list (tests use it to check the bookkeeping).
pub async fn apply_list(
    server: &Client,
    database: &str,
    migrations: &[Migration],
    engines: Engines,
) -> Result<Report, Error> {
    if !is_identifier(database) {
        return Err(Error::ClickHouse {
            what: format!("use of database {database:?}"),
            source: clickhouse::error::Error::Custom(
                "database names are letters, digits and '_'".into(),
            ),
        });
    }
    let ch_err = |what: String| move |source| Error::ClickHouse { what, source };
    #[derive(Debug, clickhouse::Row, Deserialize)]
    struct Count {
        n: u64,
    }
    let exists = server
        .query("SELECT count() AS n FROM system.databases WHERE name = ?")
        .bind(database)
        .fetch_one::<Count>()
        .await
        .map_err(ch_err(format!("lookup of database {database}")))?
        .n
        > 0;
    let mut report = Report::default();
    if !exists {
        server
            .query(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
            .execute()
            .await
            .map_err(ch_err(format!("creation of database {database}")))?;
        report.created_database = true;
    }
    let db = server.clone().with_database(database);
    db.query(&format!(
        "CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} \
         (version UInt32, name String, checksum String, applied_at DateTime) \
         ENGINE = ReplacingMergeTree() ORDER BY version"
    ))
    .execute()
    .await
    .map_err(ch_err(format!("creation of {database}.{MIGRATIONS_TABLE}")))?;
    let applied: Vec<Applied> = db
        .query(&format!(
            "SELECT version, name, checksum FROM {MIGRATIONS_TABLE} FINAL ORDER BY version"
        ))
        .fetch_all()
        .await
        .map_err(ch_err(format!("read of {database}.{MIGRATIONS_TABLE}")))?;
    for m in migrations {
        if let Some(done) = applied.iter().find(|a| a.version == m.version) {
            if done.checksum != m.checksum() {
                return Err(Error::MigrationChanged {
                    name: done.name.clone(),
                    recorded: done.checksum.clone(),
                    actual: m.checksum(),
                });
            }
            report.already_applied.push(m.name.to_string());
            continue;
        }
        for (i, st) in m.statements().iter().enumerate() {
            let st = match engines {
                Engines::Local => st.clone(),
                Engines::Replicated => {
                    match joining_replica(&db, database, &replicated(st, database)).await {
                        Ok(Some(st)) => st,
                        Ok(None) => continue,
                        Err(source) => {
                            return Err(Error::ClickHouse {
                                what: format!("migration {} statement {}", m.name, i + 1),
                                source,
                            })
                        }
                    }
                }
            };
            db.query(&escape_binds(&st))
                .execute()
                .await
                .map_err(ch_err(format!("migration {} statement {}", m.name, i + 1)))?;
        }
        db.query(&format!(
            "INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum, applied_at) \
             VALUES (?, ?, ?, now())"
        ))
        .bind(m.version)
        .bind(m.name)
        .bind(m.checksum())
        .execute()
        .await
        .map_err(ch_err(format!("recording of migration {}", m.name)))?;
        report.applied.push(m.name.to_string());
    }
    Ok(report)
}

/// The client treats `?` as a bind placeholder; a literal `?` in a migration is doubled.
fn escape_binds(sql: &str) -> String {
    sql.replace('?', "??")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicated_tables_get_a_zookeeper_path_per_database_and_table() {
        let st = "CREATE TABLE IF NOT EXISTS node_status\n(\n    a UInt8\n)\n\
                  ENGINE = ReplacingMergeTree()\nORDER BY a";
        let r = replicated(st, "bmon");
        assert!(
            r.contains(
                "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/bmon/node_status', '{replica}')\nORDER BY a"
            ),
            "{r}"
        );
        let view = "CREATE VIEW IF NOT EXISTS v AS SELECT 1";
        assert_eq!(replicated(view, "bmon"), view);
        // Every table of every migration becomes replicated.
        for m in MIGRATIONS {
            for st in m.statements() {
                let r = replicated(&st, "bmon");
                assert!(
                    !r.contains("ENGINE = ReplacingMergeTree"),
                    "{}: {r}",
                    m.name
                );
            }
        }
    }
    use schema::Kind;

    #[test]
    fn statements_split_at_semicolons_outside_quotes_and_comments() {
        let sql = "-- a comment; not a statement\nCREATE TABLE a (x String DEFAULT 'a;b');\n\n-- tail\nSELECT 1 -- trailing; comment\n;\n";
        assert_eq!(
            split_statements(sql),
            vec!["CREATE TABLE a (x String DEFAULT 'a;b')", "SELECT 1"]
        );
    }

    #[test]
    fn migrations_are_numbered_in_order_and_start_at_one() {
        assert!(!MIGRATIONS.is_empty());
        assert_eq!(MIGRATIONS[0].version, 1);
        for w in MIGRATIONS.windows(2) {
            assert!(w[0].version < w[1].version);
        }
    }

    #[test]
    fn the_migrations_create_a_table_for_every_kind() {
        for kind in Kind::ALL {
            let table = crate::writer::table_for(*kind);
            let created = MIGRATIONS
                .iter()
                .filter(|m| {
                    m.sql
                        .contains(&format!("CREATE TABLE IF NOT EXISTS {table}\n"))
                })
                .count();
            assert_eq!(
                created, 1,
                "table {table} for kind {kind}: created {created} times"
            );
        }
    }

    #[test]
    fn migrations_use_only_sql_that_clickhouse_18_16_accepts() {
        for m in MIGRATIONS {
            let upper = m.sql.to_uppercase();
            for banned in [
                "DATETIME64",
                "MAP(",
                "JSON",
                "LOWCARDINALITY",
                " TTL ",
                "OVER (",
                "OVER(",
            ] {
                assert!(!upper.contains(banned), "{} uses {banned}", m.name);
            }
            for st in m.statements() {
                let u = st.to_uppercase();
                if u.starts_with("CREATE TABLE") {
                    assert!(u.contains("MERGETREE"), "{}: {st}", m.name);
                    assert!(u.contains("ORDER BY"), "{}: {st}", m.name);
                }
            }
        }
    }

    #[test]
    fn the_checksum_changes_with_the_text() {
        let a = Migration {
            version: 1,
            name: "a",
            sql: "SELECT 1",
        };
        let b = Migration {
            version: 1,
            name: "a",
            sql: "SELECT 2",
        };
        assert_ne!(a.checksum(), b.checksum());
        assert_eq!(a.checksum(), a.checksum());
    }
}
