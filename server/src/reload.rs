//! The assets in force and how they change: load, validate, publish, watch.
//!
//! [`AssetStore`] owns the current version and publishes each valid new one through a
//! `watch` channel that every room reads at its tick boundary, so a change lands whole
//! (never half a file) and never mid-step. An invalid version is refused: the last good
//! one stays in force and the problems are kept for `/admin/assets` and logged.
//!
//! Each applied version is compared with the one it replaces, setting by setting (the
//! TOML of `game.toml` and `maps/*.toml`, flattened to dotted keys): every change is
//! logged with its old and new value and kept for `/admin/assets`.
//!
//! The watcher debounces filesystem events and reloads the whole directory, which also
//! makes it safe against editors that save through a temporary file and a rename.
//!
//! The edge (admin port, sessions, the watcher) sees a store only as an
//! [`AssetControl`], so it need not know the game's asset type.
//!
//! Must not touch rooms directly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::assets::{Assets, EngineSettings, Report};
use crate::game::GameAssets;
use crate::metrics::{Metrics, OutcomeLabels, VersionLabels};

/// Quiet time after the last filesystem event before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// The current assets of game data `A` and the outcome of the last reload.
#[derive(Debug)]
pub struct AssetStore<A> {
    dir: PathBuf,
    tx: watch::Sender<Arc<Assets<A>>>,
    status: Mutex<Status>,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Clone)]
struct Status {
    loaded_at: SystemTime,
    last_attempt: SystemTime,
    last_report: Option<Report>,
    /// The settings of the version in force, by file then dotted key.
    settings: Settings,
    /// What the last applied reload changed.
    last_changes: Vec<Change>,
}

/// Every setting of an assets directory: file → dotted key → value as TOML text.
type Settings = BTreeMap<String, BTreeMap<String, String>>;

/// One setting that differs between two versions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// File, relative to the assets directory.
    pub file: String,
    /// Dotted key (`tuning.player.max_speed`, `pickup[2].x`).
    pub key: String,
    /// Value before, absent for a new setting.
    pub old: Option<String>,
    /// Value after, absent for a removed setting.
    pub new: Option<String>,
}

/// Longest value shown in a change; longer ones (a list of walls) are cut.
const MAX_VALUE_CHARS: usize = 80;

/// What a reload did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// A new version is in force.
    Applied(String),
    /// Nothing changed.
    Unchanged(String),
    /// The files are invalid; the previous version stays.
    Rejected(Report),
}

/// What the edge needs of the assets in force, whatever the game.
pub trait AssetControl: Send + Sync + std::fmt::Debug {
    /// The engine's settings in force.
    fn engine(&self) -> EngineSettings;
    /// The version in force.
    fn version(&self) -> String;
    /// The directory being served.
    fn dir(&self) -> &Path;
    /// Loads and validates the directory, publishing the result if valid and new.
    fn reload(&self) -> ReloadOutcome;
    /// `/admin/assets`: the version in force, when it loaded, and the last problems.
    fn describe(&self) -> serde_json::Value;
    /// A map drawn as SVG, if the game has one by that name.
    fn render_map(&self, name: &str) -> Option<String>;
}

impl<A: GameAssets> AssetStore<A> {
    /// A store holding `initial`, which was loaded from `dir`.
    pub fn new(dir: PathBuf, initial: Assets<A>, metrics: Arc<Metrics>) -> Arc<AssetStore<A>> {
        metrics
            .assets_version
            .get_or_create(&VersionLabels {
                version: initial.version.clone(),
            })
            .set(1);
        let now = SystemTime::now();
        let (tx, _) = watch::channel(Arc::new(initial));
        let settings = read_settings(&dir);
        Arc::new(AssetStore {
            dir,
            tx,
            status: Mutex::new(Status {
                loaded_at: now,
                last_attempt: now,
                last_report: None,
                settings,
                last_changes: Vec::new(),
            }),
            metrics,
        })
    }

    /// A receiver for rooms.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Assets<A>>> {
        self.tx.subscribe()
    }

    /// The assets in force.
    pub fn current(&self) -> Arc<Assets<A>> {
        Arc::clone(&self.tx.borrow())
    }
}

impl<A: GameAssets> AssetControl for AssetStore<A> {
    fn engine(&self) -> EngineSettings {
        self.current().engine.clone()
    }

    fn version(&self) -> String {
        self.current().version.clone()
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn render_map(&self, name: &str) -> Option<String> {
        self.current().game.render_map(name)
    }

    fn reload(&self) -> ReloadOutcome {
        let result = A::load_dir(&self.dir);
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.last_attempt = SystemTime::now();
        match result {
            Ok(new) => {
                status.last_report = None;
                let old = self.current().version.clone();
                if new.version == old {
                    return ReloadOutcome::Unchanged(old);
                }
                let version = new.version.clone();
                self.metrics
                    .assets_version
                    .remove(&VersionLabels { version: old });
                self.metrics
                    .assets_version
                    .get_or_create(&VersionLabels {
                        version: version.clone(),
                    })
                    .set(1);
                self.metrics
                    .assets_reloads
                    .get_or_create(&OutcomeLabels {
                        outcome: "applied".into(),
                    })
                    .inc();
                status.loaded_at = SystemTime::now();
                self.tx.send_replace(Arc::new(new));
                let settings = read_settings(&self.dir);
                status.last_changes = diff(&status.settings, &settings);
                status.settings = settings;
                info!(%version, changes = status.last_changes.len(), "assets reloaded");
                for c in &status.last_changes {
                    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
                    info!(file = %c.file, key = %c.key, old = %show(&c.old), new = %show(&c.new), "asset changed");
                }
                ReloadOutcome::Applied(version)
            }
            Err(report) => {
                self.metrics
                    .assets_reloads
                    .get_or_create(&OutcomeLabels {
                        outcome: "rejected".into(),
                    })
                    .inc();
                warn!(
                    problems = report.problems.len(),
                    "asset change rejected; keeping the previous version"
                );
                for line in report.render_text().lines() {
                    warn!("{line}");
                }
                status.last_report = Some(report.clone());
                ReloadOutcome::Rejected(report)
            }
        }
    }

    fn describe(&self) -> serde_json::Value {
        let status = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        };
        let current = self.current();
        let problems = status
            .last_report
            .as_ref()
            .map_or(serde_json::Value::Array(vec![]), |r| {
                serde_json::from_str::<serde_json::Value>(&r.render_json())
                    .ok()
                    .and_then(|v| v.get("problems").cloned())
                    .unwrap_or_default()
            });
        serde_json::json!({
            "dir": self.dir.display().to_string(),
            "version": current.version,
            "loaded_at": secs(status.loaded_at),
            "last_attempt": secs(status.last_attempt),
            "last_reload_ok": status.last_report.is_none(),
            "errors": problems,
            "changes": status.last_changes,
            "rotation": current.engine.maps,
            "game": current.game.describe(),
        })
    }
}

/// Reads the settings of `game.toml` and `maps/*.toml` under `dir`. Only called on a
/// directory that just loaded, so files that do not parse are simply left out.
fn read_settings(dir: &Path) -> Settings {
    let mut files = vec![("game.toml".to_owned(), dir.join("game.toml"))];
    if let Ok(entries) = std::fs::read_dir(dir.join("maps")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".toml") {
                files.push((format!("maps/{name}"), e.path()));
            }
        }
    }
    files
        .into_iter()
        .filter_map(|(rel, path)| {
            let table: toml::Table = std::fs::read_to_string(path).ok()?.parse().ok()?;
            let mut flat = BTreeMap::new();
            flatten("", &toml::Value::Table(table), &mut flat);
            Some((rel, flat))
        })
        .collect()
}

/// Tables become dotted keys and arrays of tables indexed keys; other values stay whole.
fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        toml::Value::Table(t) => t.iter().for_each(|(k, v)| flatten(&key(k), v, out)),
        toml::Value::Array(items)
            if !items.is_empty() && items.iter().all(toml::Value::is_table) =>
        {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        other => {
            let text = other.to_string();
            let shown = if text.chars().count() > MAX_VALUE_CHARS {
                let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
                format!("{cut}…")
            } else {
                text
            };
            out.insert(prefix.to_owned(), shown);
        }
    }
}

/// Every setting that differs between `old` and `new`, in file then key order.
fn diff(old: &Settings, new: &Settings) -> Vec<Change> {
    let empty = BTreeMap::new();
    let files: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut changes = Vec::new();
    for file in files {
        let (o, n) = (
            old.get(file).unwrap_or(&empty),
            new.get(file).unwrap_or(&empty),
        );
        let keys: std::collections::BTreeSet<&String> = o.keys().chain(n.keys()).collect();
        for key in keys {
            let (before, after) = (o.get(key), n.get(key));
            if before != after {
                changes.push(Change {
                    file: file.clone(),
                    key: key.clone(),
                    old: before.cloned(),
                    new: after.cloned(),
                });
            }
        }
    }
    changes
}

/// Watches the assets directory and reloads on change until `shutdown`. The returned
/// watcher must be kept alive.
pub fn watch_dir(
    store: Arc<dyn AssetControl>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<notify::RecommendedWatcher, notify::Error> {
    use notify::Watcher as _;
    // Capacity 1: one pending "something changed" is all the debouncer needs.
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(store.dir(), notify::RecursiveMode::Recursive)?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = crate::shutdown::signalled(&mut shutdown) => break,
                got = rx.recv() => if got.is_none() { break },
            }
            // Debounce: wait for a quiet moment so a burst of writes becomes one reload.
            loop {
                match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let store = Arc::clone(&store);
            if let Err(e) = tokio::task::spawn_blocking(move || store.reload()).await {
                error!(error = %e, "asset reload task failed");
            }
        }
    });
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(files: &[(&str, &str)]) -> Settings {
        files
            .iter()
            .map(|(f, text)| {
                let mut flat = BTreeMap::new();
                flatten("", &toml::Value::Table(text.parse().unwrap()), &mut flat);
                ((*f).to_owned(), flat)
            })
            .collect()
    }

    #[test]
    fn changes_are_listed_key_by_key_with_old_and_new_values() {
        let old = settings(&[
            (
                "game.toml",
                "tick_rate = 30\n[tuning.player]\nmax_speed = 8.0\nradius = 0.5",
            ),
            ("maps/a.toml", "[[pickup]]\nx = 1\n[[pickup]]\nx = 2"),
        ]);
        let new = settings(&[
            (
                "game.toml",
                "tick_rate = 30\n[tuning.player]\nmax_speed = 2.0\nhp = 100",
            ),
            ("maps/a.toml", "[[pickup]]\nx = 1\n[[pickup]]\nx = 3"),
            ("maps/b.toml", "name = \"b\""),
        ]);
        let change = |file: &str, key: &str, old: Option<&str>, new: Option<&str>| Change {
            file: file.into(),
            key: key.into(),
            old: old.map(Into::into),
            new: new.map(Into::into),
        };
        assert_eq!(
            diff(&old, &new),
            [
                change("game.toml", "tuning.player.hp", None, Some("100")),
                change(
                    "game.toml",
                    "tuning.player.max_speed",
                    Some("8.0"),
                    Some("2.0")
                ),
                change("game.toml", "tuning.player.radius", Some("0.5"), None),
                change("maps/a.toml", "pickup[1].x", Some("2"), Some("3")),
                change("maps/b.toml", "name", None, Some("\"b\"")),
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn long_values_are_cut() {
        let walls = format!("walls = [{}]", vec!["[1, 2, 3, 4]"; 50].join(", "));
        let s = settings(&[("maps/a.toml", &walls)]);
        let shown = &s["maps/a.toml"]["walls"];
        assert_eq!(shown.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(shown.ends_with('…'));
    }
}
