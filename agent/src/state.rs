//! The locks that keep an agent's state to that agent.
//!
//! An agent keeps two things across restarts: its spool and its debug.log position. By default
//! both live in the node's own directory, `<state_dir>/<node>/` (see [`crate::config`]), so
//! agents of different nodes on one host never share a file. [`StateLock::acquire`] makes sure
//! no other agent uses them at the same time, whatever the configuration says: it takes an
//! exclusive `flock` on `agent.lock` in the spool directory and on `<state_file>.lock` beside
//! the position file, and holds both until it is dropped (when [`crate::run`] returns; the
//! kernel releases them if the process dies). A second agent given the same spool or position
//! file refuses to start and names the agent that holds it, which each lock file records.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;
use schema::NodeId;

use crate::config::Config;
use crate::Error;

/// The lock file in the spool directory.
pub const SPOOL_LOCK: &str = "agent.lock";

/// The lock file of a debug.log position file: `<state_file>.lock`.
pub fn position_lock(state_file: &Path) -> PathBuf {
    let mut name = state_file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Exclusive locks on an agent's spool and debug.log position, held while it lives.
#[derive(Debug)]
pub struct StateLock {
    held: Vec<(PathBuf, File)>,
}

impl StateLock {
    /// Locks what `config` keeps: the spool directory and, with `[debug_log]`, the position
    /// file. Creates their directories. Fails with [`Error::StateInUse`] if another agent
    /// (in this process or another) holds either.
    pub fn acquire(config: &Config) -> Result<StateLock, Error> {
        let mut paths = vec![("spool directory", config.spool.dir.join(SPOOL_LOCK))];
        if let Some(dl) = &config.debug_log {
            paths.push(("debug.log position", position_lock(&dl.state_file)));
        }
        let mut held: Vec<(PathBuf, File)> = Vec::with_capacity(paths.len());
        for (what, path) in paths {
            if held.iter().any(|(p, _)| *p == path) {
                continue;
            }
            let file = lock(&path, what, &config.node)?;
            held.push((path, file));
        }
        Ok(StateLock { held })
    }

    /// The lock files held.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.held.iter().map(|(p, _)| p.as_path())
    }
}

/// Opens (creating it and its directory) and locks `path`, then records who holds it.
fn lock(path: &Path, what: &'static str, node: &NodeId) -> Result<File, Error> {
    let failed = |reason: String| Error::StateLock {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| failed(e.to_string()))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::StateInUse {
                what,
                path: path.to_path_buf(),
                holder: if holder.is_empty() {
                    "another bmon-agent".into()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(e) => return Err(failed(std::io::Error::from(e).to_string())),
    }
    let record = format!("bmon-agent for node {node}, pid {}\n", std::process::id());
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(record.as_bytes()));
    if let Err(e) = written {
        // The lock holds regardless; only the name of the holder is missing.
        tracing::debug!(path = %path.display(), error = %e, "cannot record the lock's holder");
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::{Format, Toml};
    use figment::Figment;

    /// `node`'s configuration with `top` keys and `sections` appended.
    fn config(node: &str, top: &str, sections: &str) -> Config {
        let toml = format!(
            r#"
            node = "{node}"
            network = "regtest"
            {top}
            [rpc]
            url = "http://127.0.0.1:18443/"
            user = "u"
            password = "p"
            [zmq]
            sequence = "tcp://127.0.0.1:28332"
            rawblock = "tcp://127.0.0.1:28333"
            rawtx = "tcp://127.0.0.1:28334"
            {sections}
            "#
        );
        Config::from_figment(Figment::from(Toml::string(&toml))).unwrap()
    }

    /// `node`'s config with `state_dir = dir` and a `[debug_log]` section.
    fn in_state_dir(dir: &Path, node: &str) -> Config {
        config(
            node,
            &format!("state_dir = \"{}\"", dir.display()),
            "[debug_log]\npath = \"/nonexistent/debug.log\"",
        )
    }

    #[test]
    fn a_second_lock_on_the_same_state_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = in_state_dir(dir.path(), "node0");
        let held = StateLock::acquire(&cfg).unwrap();
        let mut paths: Vec<_> = held.paths().map(Path::to_path_buf).collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                dir.path().join("node0/debuglog.pos.lock"),
                dir.path().join("node0/spool/agent.lock"),
            ]
        );
        let err = StateLock::acquire(&cfg).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, Error::StateInUse { what: "spool directory", path, .. }
                if *path == dir.path().join("node0/spool/agent.lock")),
            "{err:?}"
        );
        assert!(
            text.contains(&format!(
                "bmon-agent for node node0, pid {}",
                std::process::id()
            )),
            "{text}"
        );
        // Released on drop.
        drop(held);
        StateLock::acquire(&cfg).unwrap();
    }

    #[test]
    fn a_shared_position_file_alone_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared.pos");
        let own_spool_shared_position = |node: &str| {
            config(
                node,
                "",
                &format!(
                    "[spool]\ndir = \"{0}/{node}\"\n[debug_log]\npath = \"/l\"\nstate_file = \"{1}\"",
                    dir.path().display(),
                    shared.display()
                ),
            )
        };
        let (a, b) = (
            own_spool_shared_position("node0"),
            own_spool_shared_position("node1"),
        );
        let _held = StateLock::acquire(&a).unwrap();
        match StateLock::acquire(&b) {
            Err(Error::StateInUse { what, path, .. }) => {
                assert_eq!(what, "debug.log position");
                assert_eq!(path, position_lock(&shared));
            }
            other => panic!("expected StateInUse, got {other:?}"),
        }
    }

    #[test]
    fn agents_of_different_nodes_under_one_state_dir_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = ["node0", "node1", "node2", "node3"];
        let held: Vec<_> = nodes
            .iter()
            .map(|n| StateLock::acquire(&in_state_dir(dir.path(), n)).unwrap())
            .collect();
        assert_eq!(held.len(), 4);
        for n in nodes {
            assert!(dir.path().join(n).join("spool/agent.lock").is_file());
        }
    }
}
