//! The validated game data: what `assets/game.toml` and `assets/maps/*.toml` become once
//! loaded. Plain values with no parsing and no IO: the engine's settings
//! ([`EngineSettings`], read by rooms) and the arena's ([`Tuning`] and [`MapDef`], read by
//! its simulation), held together in an [`Assets`].
//!
//! Every value here has passed validation; code that consumes it may rely on the ranges
//! documented on each field (`assets/README.md` is the designer-facing copy).

use std::collections::BTreeMap;
use std::sync::Arc;

/// `assets/game.toml` as the arena's loader reads it: the engine's keys and the arena's
/// tuning.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GameConfig {
    /// The top-level keys: the engine's.
    pub engine: EngineSettings,
    /// The arena's tables.
    pub tuning: Tuning,
}

/// The engine's settings: the top-level keys of `game.toml`, whatever the game.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
    /// Map rotation, by map name (file stem in `maps/`). At least one; each must exist.
    pub maps: Vec<String>,
}

/// The gameplay numbers the simulation reads. Swapped atomically at a tick boundary on
/// hot reload.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tuning {
    /// `[player]`
    pub player: PlayerTuning,
    /// `[weapon]`
    pub weapon: WeaponTuning,
    /// `[pickup]`
    pub pickup: PickupTuning,
    /// `[round]`
    pub round: RoundTuning,
}

/// `[player]` in `game.toml`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlayerTuning {
    /// Collision radius, units. 0.1..=5, default 0.5.
    pub radius: f32,
    /// Top speed, units/s. 0.1..=100, default 8.
    pub max_speed: f32,
    /// Acceleration towards the input direction (and braking without input), units/s².
    /// 0.1..=1000, default 60.
    pub acceleration: f32,
    /// Health at spawn. 1..=10000, default 100.
    pub max_health: u16,
    /// Seconds between death and respawn. 0..=60, default 3.
    pub respawn_delay_s: f32,
}

/// `[weapon]` in `game.toml`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WeaponTuning {
    /// Seconds between shots. 0.02..=10, default 0.25.
    pub cooldown_s: f32,
    /// Projectile speed, units/s. 1..=500, default 30.
    pub projectile_speed: f32,
    /// Projectile radius, units. 0.01..=2, default 0.15.
    pub projectile_radius: f32,
    /// Seconds a projectile flies before vanishing. 0.05..=10, default 1.5.
    pub projectile_lifetime_s: f32,
    /// Health removed per hit. 1..=10000, default 25.
    pub damage: u16,
}

/// `[pickup]` in `game.toml`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PickupTuning {
    /// Pickup radius, units. 0.1..=5, default 0.6.
    pub radius: f32,
    /// Health restored (capped at `max_health`). 1..=10000, default 50.
    pub heal: u16,
    /// Seconds before a taken pickup is available again. 0..=600, default 10.
    pub respawn_s: f32,
}

/// `[round]` in `game.toml`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoundTuning {
    /// Kills that end the round. 1..=1000, default 10.
    pub score_limit: u32,
    /// Round length in seconds. 10..=7200, default 180.
    pub time_limit_s: f32,
    /// Seconds between a round's end and the next round's start. 0..=60, default 5.
    pub intermission_s: f32,
}

/// An axis-aligned rectangle: top-left corner and size, units (y grows downwards).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rect {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width, > 0.
    pub w: f32,
    /// Height, > 0.
    pub h: f32,
}

/// A point, units.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// x
    pub x: f32,
    /// y
    pub y: f32,
}

/// `assets/maps/<name>.toml`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MapDef {
    /// File stem; how `game.toml` and clients refer to the map.
    pub name: String,
    /// Width, units. 10..=1000.
    pub width: f32,
    /// Height, units. 10..=1000.
    pub height: f32,
    /// Solid walls, each inside the map.
    pub walls: Vec<Rect>,
    /// Spawn points: at least one; each inside the map and clear of walls by the player
    /// radius.
    pub spawns: Vec<Point>,
    /// Health pickup locations: inside the map, clear of walls, reachable from a spawn.
    pub pickups: Vec<Point>,
}

/// A complete, validated set of assets: the engine's settings and game `A`'s data.
#[derive(Debug, Clone, PartialEq)]
pub struct Assets<A> {
    /// The engine's settings.
    pub engine: EngineSettings,
    /// The game's data.
    pub game: A,
    /// Content hash of every file that was loaded (hex), to tell versions apart.
    pub version: String,
}

/// The arena's data: its tuning and its maps.
#[derive(Debug, Clone, PartialEq)]
pub struct ArenaAssets {
    /// `[player]`, `[weapon]`, `[pickup]`, `[round]` in `game.toml`.
    pub tuning: Tuning,
    /// Every map in `maps/`, by name.
    pub maps: BTreeMap<String, Arc<MapDef>>,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            player: PlayerTuning {
                radius: 0.5,
                max_speed: 8.0,
                acceleration: 60.0,
                max_health: 100,
                respawn_delay_s: 3.0,
            },
            weapon: WeaponTuning {
                cooldown_s: 0.25,
                projectile_speed: 30.0,
                projectile_radius: 0.15,
                projectile_lifetime_s: 1.5,
                damage: 25,
            },
            pickup: PickupTuning {
                radius: 0.6,
                heal: 50,
                respawn_s: 10.0,
            },
            round: RoundTuning {
                score_limit: 10,
                time_limit_s: 180.0,
                intermission_s: 5.0,
            },
        }
    }
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
            maps: vec!["courtyard".into()],
        }
    }
}
