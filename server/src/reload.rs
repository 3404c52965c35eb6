//! The assets in force and how they change: load, validate, publish, watch.
//!
//! [`AssetStore`] owns the current version and publishes each valid new one through a
//! `watch` channel that every room reads at its tick boundary, so a change lands whole
//! (never half a file) and never mid-step. An invalid version is refused: the last good
//! one stays in force and the problems are kept for `/admin/assets` and logged.
//!
//! The watcher debounces filesystem events and reloads the whole directory, which also
//! makes it safe against editors that save through a temporary file and a rename.
//!
//! The edge (admin port, sessions, the watcher) sees a store only as an
//! [`AssetControl`], so it need not know the game's asset type.
//!
//! Must not touch rooms directly.

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
}

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
        Arc::new(AssetStore {
            dir,
            tx,
            status: Mutex::new(Status {
                loaded_at: now,
                last_attempt: now,
                last_report: None,
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
                info!(%version, "assets reloaded");
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
            "rotation": current.engine.maps,
            "game": current.game.describe(),
        })
    }
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
