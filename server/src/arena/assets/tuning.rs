//! The arena's tables of `game.toml` — `[player]`, `[weapon]`, `[pickup]`, `[round]` —
//! read by serde into the [`Tuning`] the simulation reads, and their validation pass.
//!
//! Plain values: every range is declared once, in [`check`], and `assets/README.md` is
//! its designer-facing copy; code that consumes a loaded [`Tuning`] may rely on them.

use serde::{Deserialize, Serialize};

use crate::assets::{Check, Limits};

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

/// `[player]` in `game.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlayerTuning {
    /// Collision radius, units.
    pub radius: f32,
    /// Top speed, units/s.
    pub max_speed: f32,
    /// Acceleration towards the input direction (and braking without input), units/s².
    pub acceleration: f32,
    /// Health at spawn.
    pub max_health: u16,
    /// Seconds between death and respawn.
    pub respawn_delay_s: f32,
}

/// `[weapon]` in `game.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeaponTuning {
    /// Seconds between shots.
    pub cooldown_s: f32,
    /// Projectile speed, units/s.
    pub projectile_speed: f32,
    /// Projectile radius, units.
    pub projectile_radius: f32,
    /// Seconds a projectile flies before vanishing.
    pub projectile_lifetime_s: f32,
    /// Health removed per hit.
    pub damage: u16,
    /// How far back a shot may be judged against the world as its shooter saw it (lag
    /// compensation), seconds; 0 judges every shot against the present. At most
    /// [`MAX_LAG_COMPENSATION_S`].
    pub lag_compensation_s: f32,
}

/// The longest lag-compensation window a designer may set: half a second of the past is
/// as far as being shot behind cover stays believable.
pub const MAX_LAG_COMPENSATION_S: f32 = 0.5;

/// `[pickup]` in `game.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PickupTuning {
    /// Pickup radius, units.
    pub radius: f32,
    /// Health restored (capped at `max_health`).
    pub heal: u16,
    /// Seconds before a taken pickup is available again.
    pub respawn_s: f32,
}

/// `[round]` in `game.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoundTuning {
    /// Kills that end the round.
    pub score_limit: u32,
    /// Round length in seconds.
    pub time_limit_s: f32,
    /// Seconds between a round's end and the next round's start.
    pub intermission_s: f32,
}

/// The validation pass: every key's range and unit.
pub(super) fn check(t: &Tuning, c: &mut Check<'_>) {
    const UNITS: &str = "units";
    const SECONDS: &str = "seconds";
    const HEALTH: Limits = Limits::new(1.0, 10000.0, "health points");
    let (p, mut s) = (&t.player, c.table("player"));
    s.real("radius", p.radius, Limits::new(0.1, 5.0, UNITS));
    s.real("max_speed", p.max_speed, Limits::new(0.1, 100.0, "units/s"));
    s.real(
        "acceleration",
        p.acceleration,
        Limits::new(0.1, 1000.0, "units/s²"),
    );
    s.whole("max_health", p.max_health, HEALTH);
    s.real(
        "respawn_delay_s",
        p.respawn_delay_s,
        Limits::new(0.0, 60.0, SECONDS),
    );
    let (w, mut s) = (&t.weapon, c.table("weapon"));
    s.real("cooldown_s", w.cooldown_s, Limits::new(0.02, 10.0, SECONDS));
    s.real(
        "projectile_speed",
        w.projectile_speed,
        Limits::new(1.0, 500.0, "units/s"),
    );
    s.real(
        "projectile_radius",
        w.projectile_radius,
        Limits::new(0.01, 2.0, UNITS),
    );
    s.real(
        "projectile_lifetime_s",
        w.projectile_lifetime_s,
        Limits::new(0.05, 10.0, SECONDS),
    );
    s.whole("damage", w.damage, HEALTH);
    s.real(
        "lag_compensation_s",
        w.lag_compensation_s,
        Limits::new(0.0, f64::from(MAX_LAG_COMPENSATION_S), SECONDS),
    );
    let (k, mut s) = (&t.pickup, c.table("pickup"));
    s.real("radius", k.radius, Limits::new(0.1, 5.0, UNITS));
    s.whole("heal", k.heal, HEALTH);
    s.real("respawn_s", k.respawn_s, Limits::new(0.0, 600.0, SECONDS));
    let (r, mut s) = (&t.round, c.table("round"));
    s.whole(
        "score_limit",
        r.score_limit,
        Limits::new(1.0, 1000.0, "kills"),
    );
    s.real(
        "time_limit_s",
        r.time_limit_s,
        Limits::new(10.0, 7200.0, SECONDS),
    );
    s.real(
        "intermission_s",
        r.intermission_s,
        Limits::new(0.0, 60.0, SECONDS),
    );
}

impl Default for PlayerTuning {
    fn default() -> Self {
        PlayerTuning {
            radius: 0.5,
            max_speed: 8.0,
            acceleration: 60.0,
            max_health: 100,
            respawn_delay_s: 3.0,
        }
    }
}

impl Default for WeaponTuning {
    fn default() -> Self {
        WeaponTuning {
            cooldown_s: 0.25,
            projectile_speed: 30.0,
            projectile_radius: 0.15,
            projectile_lifetime_s: 1.5,
            damage: 25,
            lag_compensation_s: 0.3,
        }
    }
}

impl Default for PickupTuning {
    fn default() -> Self {
        PickupTuning {
            radius: 0.6,
            heal: 50,
            respawn_s: 10.0,
        }
    }
}

impl Default for RoundTuning {
    fn default() -> Self {
        RoundTuning {
            score_limit: 10,
            time_limit_s: 180.0,
            intermission_s: 5.0,
        }
    }
}
