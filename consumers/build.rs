//! Embeds the ClickHouse migrations (`../clickhouse/NNNN_name.sql`) into the crate, in order,
//! so `bmon setup` and the tests apply exactly the files in the repository.

use std::fmt::Write;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clickhouse");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<(u32, String, PathBuf)> = Vec::new();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read migrations in {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".sql") else {
            continue;
        };
        let Some((num, _)) = stem.split_once('_') else {
            panic!("migration {name} must be named NNNN_description.sql");
        };
        let version: u32 = num
            .parse()
            .unwrap_or_else(|_| panic!("migration {name} must start with a number"));
        println!("cargo:rerun-if-changed={}", path.display());
        files.push((
            version,
            stem.to_string(),
            path.canonicalize().unwrap_or(path),
        ));
    }
    files.sort();
    for pair in files.windows(2) {
        assert!(
            pair[0].0 != pair[1].0,
            "two migrations share version {}",
            pair[0].0
        );
    }
    let mut out = String::from("&[\n");
    for (version, name, path) in &files {
        let _ = writeln!(
            out,
            "    Migration {{ version: {version}, name: {name:?}, sql: include_str!({:?}) }},",
            path.display().to_string()
        );
    }
    out.push_str("]\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()))
        .join("migrations.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("write {}: {e}", dest.display()));
}
