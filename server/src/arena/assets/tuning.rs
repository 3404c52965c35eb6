//! The arena's tables of `game.toml` — `[player]`, `[weapon]`, `[pickup]`, `[round]` —
//! read by serde into the [`Tuning`] the simulation reads, each key declared once with
//! its default, range and unit.
//!
//! Plain values: `assets/README.md` is the designer-facing copy of the ranges; code that
//! consumes a loaded [`Tuning`] may rely on them.

use serde::{Deserialize, Serialize};

use crate::assets::Check;
use crate::settings;

/// The gameplay numbers the simulation reads. Swapped atomically at a tick boundary on
/// hot reload.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
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

settings! {
    /// `[player]` in `game.toml`.
    pub struct PlayerTuning {
        /// Collision radius.
        radius: f32 = 0.5, 0.1..=5.0 "units";
        /// Top speed.
        max_speed: f32 = 8.0, 0.1..=100.0 "units/s";
        /// Acceleration towards the input direction (and braking without input).
        acceleration: f32 = 60.0, 0.1..=1000.0 "units/s²";
        /// Health at spawn.
        max_health: u16 = 100, 1..=10000 "health points";
        /// Seconds between death and respawn.
        respawn_delay_s: f32 = 3.0, 0.0..=60.0 "seconds";
    }
}

settings! {
    /// `[weapon]` in `game.toml`.
    pub struct WeaponTuning {
        /// Seconds between shots.
        cooldown_s: f32 = 0.25, 0.02..=10.0 "seconds";
        /// Projectile speed.
        projectile_speed: f32 = 30.0, 1.0..=500.0 "units/s";
        /// Projectile radius.
        projectile_radius: f32 = 0.15, 0.01..=2.0 "units";
        /// Seconds a projectile flies before vanishing.
        projectile_lifetime_s: f32 = 1.5, 0.05..=10.0 "seconds";
        /// Health removed per hit.
        damage: u16 = 25, 1..=10000 "health points";
        /// How far back a shot may be judged against the world as its shooter saw it (lag
        /// compensation), seconds; 0 judges every shot against the present.
        lag_compensation_s: f32 = 0.3, 0.0..=MAX_LAG_COMPENSATION_S "seconds";
    }
}

/// The longest lag-compensation window a designer may set: half a second of the past is
/// as far as being shot behind cover stays believable.
pub const MAX_LAG_COMPENSATION_S: f32 = 0.5;

settings! {
    /// `[pickup]` in `game.toml`.
    pub struct PickupTuning {
        /// Pickup radius.
        radius: f32 = 0.6, 0.1..=5.0 "units";
        /// Health restored (capped at `max_health`).
        heal: u16 = 50, 1..=10000 "health points";
        /// Seconds before a taken pickup is available again.
        respawn_s: f32 = 10.0, 0.0..=600.0 "seconds";
    }
}

settings! {
    /// `[round]` in `game.toml`.
    pub struct RoundTuning {
        /// Kills that end the round.
        score_limit: u32 = 10, 1..=1000 "kills";
        /// Round length.
        time_limit_s: f32 = 180.0, 10.0..=7200.0 "seconds";
        /// Seconds between a round's end and the next round's start.
        intermission_s: f32 = 5.0, 0.0..=60.0 "seconds";
    }
}

/// The validation pass: every key's range and unit.
pub(super) fn check(t: &Tuning, c: &mut Check<'_>) {
    t.player.check(&mut c.table("player"));
    t.weapon.check(&mut c.table("weapon"));
    t.pickup.check(&mut c.table("pickup"));
    t.round.check(&mut c.table("round"));
}
