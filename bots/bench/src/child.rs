//! The processes the benchmark measures: the real `rallypoint` server and the floor,
//! each spawned pinned to the server CPU, with its ports learnt from its `listening` log
//! line, and killed when its handle is dropped (normal end, error or Ctrl-C alike).
//!
//! Also the scratch directory each server gets: its HS256 secret, the ES256 public key
//! and a copy of `assets/` with the overrides a measurement needs. Must not measure.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// How long a child may take to print its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Output lines kept for the error message of a child that fails to start.
const TAIL_LINES: usize = 30;

/// A running child process; SIGKILLed and reaped on drop.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Its pid.
    pub pid: u32,
    /// The game (or floor) address.
    pub game: SocketAddr,
    /// The admin address (none for the floor).
    pub admin: Option<SocketAddr>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Running {
    /// Spawns `cmd` pinned to `cpu` and waits for its `listening` line: a JSON log line
    /// `{"fields":{"message":"listening","game":"ADDR","admin":"ADDR"}}` (the server with
    /// `--log-format json`, and the floor). Every later line is read and discarded, so
    /// the child never blocks on a full pipe.
    pub fn start(mut cmd: Command, cpu: Option<usize>, what: &str) -> anyhow::Result<Running> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = crate::sys::spawn_pinned(&mut cmd, cpu)
            .with_context(|| format!("starting {what} ({:?})", cmd.get_program()))?;
        let pid = child.id();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            let tail = Arc::clone(&tail);
            std::thread::spawn(move || drain(out, &tail, Some(tx)));
        }
        if let Some(err) = child.stderr.take() {
            let tail = Arc::clone(&tail);
            std::thread::spawn(move || drain(err, &tail, None));
        }
        let mut running = Running {
            child,
            pid,
            game: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: None,
            tail,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok((game, admin)) => {
                running.game = game;
                running.admin = admin;
                Ok(running)
            }
            Err(_) => {
                let status = running.child.try_wait().ok().flatten();
                bail!(
                    "{what} did not start (exit status {status:?}); its last output:\n{}",
                    running.tail()
                )
            }
        }
    }

    /// The last lines the child printed.
    pub fn tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Listening = (SocketAddr, Option<SocketAddr>);

fn drain(
    stream: impl std::io::Read,
    tail: &Mutex<VecDeque<String>>,
    mut found: Option<mpsc::Sender<Listening>>,
) {
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        if let Some(tx) = &found
            && let Some(addrs) = parse_listening(&line)
        {
            let _ = tx.send(addrs);
            found = None;
        }
        let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() >= TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line);
    }
}

/// The addresses of a `listening` JSON log line.
pub fn parse_listening(line: &str) -> Option<Listening> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = &v["fields"];
    if fields["message"] != "listening" {
        return None;
    }
    let game = fields["game"].as_str()?.parse().ok()?;
    let admin = fields["admin"].as_str().and_then(|a| a.parse().ok());
    Some((game, admin))
}

/// A scratch directory, removed on drop.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Creates `$TMPDIR/rallypoint-bench-<pid>-<label>`.
    pub fn new(label: &str) -> anyhow::Result<Scratch> {
        let path =
            std::env::temp_dir().join(format!("rallypoint-bench-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch { path })
    }

    /// A path inside.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Copies `from` (an assets directory: files and one level of subdirectories) to `to`.
pub fn copy_assets(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_assets(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Sets top-level keys of a `game.toml` text: replaces `key = ...` lines before the first
/// table header, and adds the keys not found at the top of the file.
pub fn set_top_level_keys(text: &str, keys: &[(&str, String)]) -> String {
    let mut done = vec![false; keys.len()];
    let mut in_table = false;
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        in_table |= t.starts_with('[');
        let hit = (!in_table)
            .then(|| {
                keys.iter().position(|(k, _)| {
                    t.strip_prefix(k)
                        .is_some_and(|r| r.trim_start().starts_with('='))
                })
            })
            .flatten();
        match hit {
            Some(i) => {
                out.push(format!(
                    "{} = {}  # set by rallypoint-bench",
                    keys[i].0, keys[i].1
                ));
                done[i] = true;
            }
            None => out.push(line.to_owned()),
        }
    }
    let mut head: Vec<String> = keys
        .iter()
        .zip(&done)
        .filter(|(_, d)| !**d)
        .map(|((k, v), _)| format!("{k} = {v}  # set by rallypoint-bench"))
        .collect();
    head.extend(out);
    head.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines() {
        let l = r#"{"timestamp":"x","level":"INFO","fields":{"message":"listening","game":"127.0.0.1:4000","admin":"127.0.0.1:4001","tls":false}}"#;
        let (g, a) = parse_listening(l).unwrap();
        assert_eq!(g.port(), 4000);
        assert_eq!(a.unwrap().port(), 4001);
        assert!(parse_listening(r#"{"fields":{"message":"room opened"}}"#).is_none());
        assert!(parse_listening("listening on 127.0.0.1:1").is_none());
    }

    #[test]
    fn game_toml_overrides() {
        let text = "tick_rate = 30\nroom_capacity = 16  # players\n\n[player]\nroom_capacity = 3\n";
        let out = set_top_level_keys(
            text,
            &[
                ("room_capacity", "100".into()),
                ("snapshot_rate", "1".into()),
            ],
        );
        assert!(out.starts_with("snapshot_rate = 1"), "{out}");
        assert!(out.contains("\nroom_capacity = 100"), "{out}");
        assert!(out.contains("[player]\nroom_capacity = 3\n"), "{out}");
        assert!(out.contains("tick_rate = 30\n"));
    }
}
