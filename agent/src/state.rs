//! What the agent keeps on disk, and the locks that keep it to one agent.
//!
//! An agent keeps two things across restarts: its spool and its debug.log position. By default
//! both live in the node's own directory, `<state_dir>/<node>/` (see [`crate::config`]), so
//! agents of different nodes on one host never share a file. [`StateLock::acquire`] makes sure
//! no other agent uses them at the same time, whatever the configuration says: it takes an
//! exclusive `flock` on `agent.lock` in the spool directory and on `<state_file>.lock` beside
//! the position file, and holds both until it is dropped (when [`crate::run`] returns; the
//! kernel releases them if the process dies). A second agent given the same spool or position
//! file refuses to start and names the agent that holds it, which each lock file records.
//!
//! Older agents kept the position by default beside the spool directory, a place agents with
//! sibling spool directories shared. [`adopt_legacy_position`] takes such a position over
//! only when it names this node's debug.log itself; [`report_leftovers`] warns about what is
//! left there, which is never read, since it may be another node's.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use debuglog::follow::StateFile;
use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;
use schema::NodeId;

use crate::config::{Config, DebugLogConfig};
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

/// Takes over the position an older agent saved at the old default place
/// (`legacy_state_file`) when this agent has none yet and the position is this node's:
/// - it sits in a directory named after the node (the shipped systemd unit's
///   `%S/bmon-agent/<node>/debuglog.pos`): no other agent wrote it, whatever file it names
///   (after a rotation the follower finds its way from there);
/// - or the file it names has the device and inode of `path` now.
///
/// A position shared by sibling spool directories that names another file may be another
/// node's and stays where it is. Returns whether it was taken over.
pub fn adopt_legacy_position(dl: &DebugLogConfig, node: &NodeId) -> bool {
    let Some(legacy) = &dl.legacy_state_file else {
        return false;
    };
    if dl.state_file.exists() {
        return false;
    }
    let Ok(Some(pos)) = StateFile::new(legacy).load() else {
        return false;
    };
    let own_dir = legacy
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == node.as_str());
    let same_log = std::fs::metadata(&dl.path)
        .is_ok_and(|log| (log.dev(), log.ino()) == (pos.file.dev, pos.file.ino));
    if !own_dir && !same_log {
        return false;
    }
    if let Some(dir) = dl.state_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    match StateFile::new(&dl.state_file).save(&pos) {
        Ok(()) => {
            let _ = std::fs::remove_file(legacy);
            tracing::info!(from = %legacy.display(), to = %dl.state_file.display(),
                offset = pos.offset, "took over the debug.log position an older agent saved");
            true
        }
        Err(e) => {
            tracing::warn!(from = %legacy.display(), error = %e,
                "cannot take over the debug.log position an older agent saved");
            false
        }
    }
}

/// State an older agent kept by default where every agent of the host shared it, found on
/// disk: the spool directory if it holds segments, the position file if it exists; each with
/// where this agent keeps its own.
pub fn leftovers(config: &Config) -> Vec<(PathBuf, PathBuf)> {
    let mut found = Vec::new();
    if let Some(dir) = &config.spool.legacy_dir {
        let has_segments = std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        });
        if has_segments {
            found.push((dir.clone(), config.spool.dir.clone()));
        }
    }
    if let Some(dl) = &config.debug_log {
        if let Some(file) = dl.legacy_state_file.as_ref().filter(|f| f.is_file()) {
            found.push((file.clone(), dl.state_file.clone()));
        }
    }
    found
}

/// Warns once about each of [`leftovers`]: it is not used, and may belong to another node.
pub fn report_leftovers(config: &Config) {
    for (old, now) in leftovers(config) {
        tracing::warn!(old = %old.display(), now = %now.display(),
            "state left by an older bmon-agent at a default shared by every agent of this host; \
             it is not read, as it may be another node's. If it is this node's alone, stop the \
             agent and move it to the new place; otherwise delete it");
    }
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

    #[test]
    fn state_at_the_old_shared_defaults_is_found_but_never_used() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = in_state_dir(dir.path(), "node0");
        // Explicit sibling spools under one parent: the old default position was shared.
        let mut old_layout = config(
            "node0",
            "",
            &format!(
                "[spool]\ndir = \"{}/spool-node0\"\n[debug_log]\npath = \"/l\"",
                dir.path().display()
            ),
        );
        assert_eq!(
            old_layout.debug_log.as_ref().unwrap().legacy_state_file,
            Some(dir.path().join("debuglog.pos"))
        );
        assert!(leftovers(&old_layout).is_empty());
        std::fs::write(dir.path().join("debuglog.pos"), "{}").unwrap();
        assert_eq!(
            leftovers(&old_layout),
            [(
                dir.path().join("debuglog.pos"),
                dir.path().join("spool-node0/debuglog.pos")
            )]
        );

        // A spool at the old default directory is reported only when it holds segments.
        let legacy_spool = dir.path().join("old-spool");
        old_layout.spool.legacy_dir = Some(legacy_spool.clone());
        std::fs::create_dir_all(&legacy_spool).unwrap();
        assert_eq!(leftovers(&old_layout).len(), 1);
        std::fs::write(legacy_spool.join("00000000000000000001.seg"), b"").unwrap();
        assert_eq!(leftovers(&old_layout).len(), 2);

        // The new layout keeps its own files: nothing at the old places is its state.
        assert_ne!(
            cfg.debug_log.unwrap().state_file,
            dir.path().join("debuglog.pos")
        );
    }

    #[test]
    fn a_shared_legacy_position_is_taken_over_only_by_the_node_whose_log_it_names() {
        use debuglog::follow::{FileId, Position};
        let dir = tempfile::tempdir().unwrap();
        let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        std::fs::write(&log_a, "a line\n").unwrap();
        std::fs::write(&log_b, "b line\n").unwrap();
        let meta = std::fs::metadata(&log_a).unwrap();
        let a_pos = Position {
            file: FileId {
                dev: meta.dev(),
                ino: meta.ino(),
            },
            offset: 7,
        };
        // Sibling spools: the old default position `<parent>/debuglog.pos` was shared, and
        // holds node-a's position.
        let shared = dir.path().join("debuglog.pos");
        StateFile::new(&shared).save(&a_pos).unwrap();
        let agent = |node: &str, log: &Path| {
            config(
                node,
                "",
                &format!(
                    "[spool]\ndir = \"{}/spool-{node}\"\n[debug_log]\npath = \"{}\"",
                    dir.path().display(),
                    log.display()
                ),
            )
        };
        let (a, b) = (agent("node-a", &log_a), agent("node-b", &log_b));
        let (a_log, b_log) = (a.debug_log.clone().unwrap(), b.debug_log.clone().unwrap());

        let (node_a, node_b) = (
            NodeId::new("node-a").unwrap(),
            NodeId::new("node-b").unwrap(),
        );
        assert!(
            !adopt_legacy_position(&b_log, &node_b),
            "node-b must not take node-a's position"
        );
        assert!(!b_log.state_file.exists());
        assert_eq!(leftovers(&b), [(shared.clone(), b_log.state_file.clone())]);

        assert!(adopt_legacy_position(&a_log, &node_a));
        assert_eq!(
            StateFile::new(&a_log.state_file).load().unwrap(),
            Some(a_pos)
        );
        assert!(!shared.exists());
        assert!(leftovers(&a).is_empty());
        // Taken over once: an agent that has a position of its own keeps it.
        StateFile::new(&shared).save(&a_pos).unwrap();
        assert!(!adopt_legacy_position(&a_log, &node_a));
    }

    #[test]
    fn the_unit_s_old_position_in_the_node_s_own_directory_is_taken_over_after_a_rotation() {
        use debuglog::follow::{FileId, Position};
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("debug.log");
        std::fs::write(&log, "a line\n").unwrap();
        // Saved before a rotation: it names a file that is gone.
        let pos = Position {
            file: FileId { dev: 1, ino: 1 },
            offset: 7,
        };
        // The shipped unit: spool in %S/bmon-agent/<node>/spool, old position beside it.
        let node_dir = dir.path().join("node-a");
        let old = node_dir.join("debuglog.pos");
        std::fs::create_dir_all(&node_dir).unwrap();
        StateFile::new(&old).save(&pos).unwrap();
        let a = config(
            "node-a",
            "",
            &format!(
                "[spool]\ndir = \"{}/spool\"\n[debug_log]\npath = \"{}\"",
                node_dir.display(),
                log.display()
            ),
        );
        let dl = a.debug_log.clone().unwrap();
        assert_eq!(dl.legacy_state_file.as_deref(), Some(old.as_path()));
        assert!(adopt_legacy_position(&dl, &NodeId::new("node-a").unwrap()));
        assert_eq!(StateFile::new(&dl.state_file).load().unwrap(), Some(pos));
        assert!(!old.exists());
    }
}
