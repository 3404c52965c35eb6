//! The engine's settings: the top-level keys of `game.toml`, whatever the game, with their
//! ranges and the rule between the two rates.
//!
//! Must not know any game's tables; the rotation's names are checked against the game's
//! maps by the loader.

use super::check::Check;
use crate::settings;

settings! {
    /// The engine's settings: the top-level keys of `game.toml` (`assets/README.md`
    /// repeats the ranges for designers). Every value has passed its range.
    pub struct EngineSettings {
        /// Simulation steps per second.
        tick_rate: u16 = 30, 10..=120 "ticks per second";
        /// Snapshots sent per second; divides `tick_rate`.
        snapshot_rate: u16 = 30, 1..=120 "snapshots per second";
        /// Players per room.
        room_capacity: u16 = 16, 1..=256 "players";
        /// Spectators per room, on top of players.
        spectator_capacity: u16 = 32, 0..=1024 "spectators";
        /// Seconds a dropped player's entity is kept for resume.
        resume_grace_s: f32 = 15.0, 0.0..=600.0 "seconds";
        /// Seconds an empty room stays open before closing.
        empty_room_close_s: f32 = 30.0, 1.0..=3600.0 "seconds";
        /// How far around its player a client sees other entities, for the v2 wire
        /// protocol's interest management; 0 means the whole room.
        view_radius: f32 = 0.0, 0.0..=100_000.0 "units";
        /// Map rotation, by map name: at least one, each a map the game has. When
        /// `game.toml` does not set it, the game's [`crate::game::GameAssets::DEFAULT_MAP`]
        /// (so the default value here, empty, is never in force).
        maps: Vec<String> = Vec::new();
    }
}

/// A map the rotation names, and where (`None`: the game's default, not written).
pub(crate) type MapRef = (String, Option<(u32, u32)>);

impl EngineSettings {
    /// The validation pass over the engine's keys. Returns the rotation as written, or
    /// `None` when `maps` is not set (or not a list).
    pub(crate) fn validate(&self, c: &mut Check<'_>) -> Option<Vec<MapRef>> {
        self.check(c);
        // A rate that was itself invalid has been reported; checking the pair with a
        // stand-in default would only add a confusing second error.
        let rates_ok = c.ok("tick_rate") && c.ok("snapshot_rate");
        if rates_ok && !self.tick_rate.is_multiple_of(self.snapshot_rate) {
            self.rates_problem(c);
        }
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
