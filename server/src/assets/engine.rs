//! The engine's settings: the top-level keys of `game.toml`, whatever the game, with their
//! ranges and the rule between the two rates.
//!
//! Must not know any game's tables; the rotation's names are checked against the game's
//! maps by the loader.

use serde::{Deserialize, Serialize};

use super::check::{Check, Limits};

// `assets/README.md` repeats these ranges for designers.
const TICK_RATE: Limits = Limits::new(10.0, 120.0, "ticks per second");
const SNAPSHOT_RATE: Limits = Limits::new(1.0, 120.0, "snapshots per second");
const ROOM_CAPACITY: Limits = Limits::new(1.0, 256.0, "players");
const SPECTATOR_CAPACITY: Limits = Limits::new(0.0, 1024.0, "spectators");
const RESUME_GRACE_S: Limits = Limits::new(0.0, 600.0, "seconds");
const EMPTY_ROOM_CLOSE_S: Limits = Limits::new(1.0, 3600.0, "seconds");
const VIEW_RADIUS: Limits = Limits::new(0.0, 100_000.0, "units");

/// The engine's settings: the top-level keys of `game.toml`. Every value has passed the
/// ranges documented on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineSettings {
    /// Simulation steps per second. 10..=120, default 30.
    pub tick_rate: u16,
    /// Snapshots sent per second; divides `tick_rate`. Default 30.
    pub snapshot_rate: u16,
    /// Players per room. 1..=256, default 16.
    pub room_capacity: u16,
    /// Spectators per room, on top of players. 0..=1024, default 32.
    pub spectator_capacity: u16,
    /// Seconds a dropped player's entity is kept for resume. 0..=600, default 15.
    pub resume_grace_s: f32,
    /// Seconds an empty room stays open before closing. 1..=3600, default 30.
    pub empty_room_close_s: f32,
    /// How far around its player a client sees other entities, units, for the v2 wire
    /// protocol's interest management; 0 means the whole room. 0..=100000, default 0.
    pub view_radius: f32,
    /// Map rotation, by map name: at least one, each a map the game has. When
    /// `game.toml` does not set it, the game's [`crate::game::GameAssets::DEFAULT_MAP`]
    /// (so the default value here, empty, is never in force).
    pub maps: Vec<String>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            tick_rate: 30,
            snapshot_rate: 30,
            room_capacity: 16,
            spectator_capacity: 32,
            resume_grace_s: 15.0,
            empty_room_close_s: 30.0,
            view_radius: 0.0,
            maps: Vec::new(),
        }
    }
}

/// A map the rotation names, and where (`None`: the game's default, not written).
pub(crate) type MapRef = (String, Option<(u32, u32)>);

impl EngineSettings {
    /// The validation pass over the engine's keys. Returns the rotation as written, or
    /// `None` when `maps` is not set (or not a list).
    pub(crate) fn check(&self, c: &mut Check<'_>) -> Option<Vec<MapRef>> {
        let tick = c.whole("tick_rate", self.tick_rate, TICK_RATE);
        let snap = c.whole("snapshot_rate", self.snapshot_rate, SNAPSHOT_RATE);
        // A rate that was itself invalid has been reported; checking the pair with a
        // stand-in default would only add a confusing second error.
        if tick && snap && !self.tick_rate.is_multiple_of(self.snapshot_rate) {
            self.rates_problem(c);
        }
        c.whole("room_capacity", self.room_capacity, ROOM_CAPACITY);
        c.whole(
            "spectator_capacity",
            self.spectator_capacity,
            SPECTATOR_CAPACITY,
        );
        c.real("resume_grace_s", self.resume_grace_s, RESUME_GRACE_S);
        c.real(
            "empty_room_close_s",
            self.empty_room_close_s,
            EMPTY_ROOM_CLOSE_S,
        );
        c.real("view_radius", self.view_radius, VIEW_RADIUS);
        let names = c.names("maps")?;
        if names.is_empty() && c.count("maps") == Some(0) {
            c.report(
                c.span("maps"),
                "`maps` is empty: the rotation needs at least one map",
                Some("list map names, e.g. `maps = [\"first\", \"second\"]`".to_string()),
            );
        }
        Some(
            names
                .into_iter()
                .map(|(name, span)| (name, Some(c.position(span))))
                .collect(),
        )
    }

    fn rates_problem(&self, c: &mut Check<'_>) {
        let (tick_rate, snapshot_rate) = (self.tick_rate, self.snapshot_rate);
        let divisors: Vec<String> = (1..=tick_rate)
            .filter(|&d| tick_rate.is_multiple_of(d))
            .map(|d| d.to_string())
            .collect();
        let (key, message) = if c.has("snapshot_rate") {
            let message = format!(
                "`snapshot_rate` = {snapshot_rate} does not divide `tick_rate` = {tick_rate}"
            );
            ("snapshot_rate", message)
        } else {
            let message = format!(
                "`tick_rate` = {tick_rate} is not a multiple of the default `snapshot_rate` ({snapshot_rate})"
            );
            ("tick_rate", message)
        };
        let help = format!(
            "snapshots are sent every n-th tick, so `snapshot_rate` must divide `tick_rate`; with `tick_rate = {tick_rate}` use one of: {}",
            divisors.join(", ")
        );
        c.report(c.span(key), message, Some(help));
    }
}
