//! `game.toml`: its keys, their ranges and defaults, read into a [`GameConfig`].
//!
//! Must not look at maps beyond recording which names the rotation asks for (and where),
//! so the loader can check them against the `maps/` directory.

use toml::de::DeTable;

use super::fields::{Limits, Scope, TableReader, Unknowns, limits, report_unknowns};
use super::model::{
    EngineSettings, GameConfig, PickupTuning, PlayerTuning, RoundTuning, Tuning, WeaponTuning,
};
use super::parse::parse;
use super::report::Problem;
use super::source::Source;

// Ranges are the contract in `model.rs`; the README repeats them for designers.
const TICK_RATE: Limits = limits(10.0, 120.0, "ticks per second");
const SNAPSHOT_RATE: Limits = limits(1.0, 120.0, "snapshots per second");
const ROOM_CAPACITY: Limits = limits(1.0, 256.0, "players");
const SPECTATOR_CAPACITY: Limits = limits(0.0, 1024.0, "spectators");
const RESUME_GRACE_S: Limits = limits(0.0, 600.0, "seconds");
const EMPTY_ROOM_CLOSE_S: Limits = limits(1.0, 3600.0, "seconds");

const PLAYER_RADIUS: Limits = limits(0.1, 5.0, "units");
const PLAYER_MAX_SPEED: Limits = limits(0.1, 100.0, "units/s");
const PLAYER_ACCELERATION: Limits = limits(0.1, 1000.0, "units/s²");
const PLAYER_MAX_HEALTH: Limits = limits(1.0, 10000.0, "health points");
const PLAYER_RESPAWN_DELAY_S: Limits = limits(0.0, 60.0, "seconds");

const WEAPON_COOLDOWN_S: Limits = limits(0.02, 10.0, "seconds");
const WEAPON_PROJECTILE_SPEED: Limits = limits(1.0, 500.0, "units/s");
const WEAPON_PROJECTILE_RADIUS: Limits = limits(0.01, 2.0, "units");
const WEAPON_PROJECTILE_LIFETIME_S: Limits = limits(0.05, 10.0, "seconds");
const WEAPON_DAMAGE: Limits = limits(1.0, 10000.0, "health points");

const PICKUP_RADIUS: Limits = limits(0.1, 5.0, "units");
const PICKUP_HEAL: Limits = limits(1.0, 10000.0, "health points");
const PICKUP_RESPAWN_S: Limits = limits(0.0, 600.0, "seconds");

const ROUND_SCORE_LIMIT: Limits = limits(1.0, 1000.0, "kills");
const ROUND_TIME_LIMIT_S: Limits = limits(10.0, 7200.0, "seconds");
const ROUND_INTERMISSION_S: Limits = limits(0.0, 60.0, "seconds");

/// What `game.toml` yields: the config (defaults standing in for anything invalid, so
/// maps can still be checked against the intended player radius) and the rotation's
/// map names with their line and column (`None` when `maps` was left at its default).
#[derive(Debug, Clone)]
pub(crate) struct GameFile {
    pub config: GameConfig,
    pub map_refs: Vec<(String, Option<(u32, u32)>)>,
}

/// Reads and validates `game.toml`, appending every problem to `out`.
pub(crate) fn read_game(src: &Source, out: &mut Vec<Problem>) -> GameFile {
    let (doc, syntax) = parse(src);
    match syntax {
        None => read_doc(src, doc.get_ref(), out),
        Some(problem) => {
            out.push(problem);
            // Still mine the recovered document for the tuning (maps are checked against
            // it), discarding what it reports; its rotation is not trustworthy enough to
            // check against `maps/`.
            let mut game = read_doc(src, doc.get_ref(), &mut Vec::new());
            game.map_refs.clear();
            game
        }
    }
}

fn read_doc(src: &Source, doc: &DeTable<'_>, out: &mut Vec<Problem>) -> GameFile {
    let defaults = EngineSettings::default();
    let tuning_defaults = Tuning::default();
    let empty = DeTable::new();
    let mut top = TableReader::new(src, doc, Scope::Top, 0..0);

    let tick_present = top.get("tick_rate").is_some();
    let tick = top.int_spanned(out, "tick_rate", TICK_RATE, i64::from(defaults.tick_rate));
    let snap_present = top.get("snapshot_rate").is_some();
    let snap = top.int_spanned(
        out,
        "snapshot_rate",
        SNAPSHOT_RATE,
        i64::from(defaults.snapshot_rate),
    );
    let tick_rate = tick
        .as_ref()
        .map_or(i64::from(defaults.tick_rate), |(v, _)| *v);
    let snapshot_rate = snap
        .as_ref()
        .map_or(i64::from(defaults.snapshot_rate), |(v, _)| *v);
    // A rate that was itself invalid has already been reported; checking the pair with a
    // stand-in default would only add a confusing second error.
    if tick_present == tick.is_some()
        && snap_present == snap.is_some()
        && tick_rate % snapshot_rate != 0
    {
        let span = snap
            .as_ref()
            .or(tick.as_ref())
            .map_or(0..0, |(_, s)| s.clone());
        let divisors: Vec<String> = (1..=tick_rate)
            .filter(|d| tick_rate % d == 0)
            .map(|d| d.to_string())
            .collect();
        let message = if snap.is_some() {
            format!("`snapshot_rate` = {snapshot_rate} does not divide `tick_rate` = {tick_rate}")
        } else {
            format!(
                "`tick_rate` = {tick_rate} is not a multiple of the default `snapshot_rate` ({snapshot_rate})"
            )
        };
        out.push(src.problem(
            span,
            message,
            Some(format!(
                "snapshots are sent every n-th tick, so `snapshot_rate` must divide `tick_rate`; with `tick_rate = {tick_rate}` use one of: {}",
                divisors.join(", ")
            )),
        ));
    }

    let room_capacity = top.int(
        out,
        "room_capacity",
        ROOM_CAPACITY,
        i64::from(defaults.room_capacity),
    );
    let spectator_capacity = top.int(
        out,
        "spectator_capacity",
        SPECTATOR_CAPACITY,
        i64::from(defaults.spectator_capacity),
    );
    let resume_grace_s = top.float(
        out,
        "resume_grace_s",
        RESUME_GRACE_S,
        defaults.resume_grace_s,
    );
    let empty_room_close_s = top.float(
        out,
        "empty_room_close_s",
        EMPTY_ROOM_CLOSE_S,
        defaults.empty_room_close_s,
    );

    let map_refs: Vec<(String, Option<(u32, u32)>)> = match top.strings(out, "maps") {
        Some(list) => {
            if list.len == 0 {
                out.push(src.problem(
                    list.span,
                    "`maps` is empty: the rotation needs at least one map",
                    Some("list map names (file names in `maps/` without `.toml`), e.g. `maps = [\"courtyard\", \"warehouse\"]`".to_string()),
                ));
            }
            list.items
                .into_iter()
                .map(|(n, s)| (n, Some(src.position(s.start))))
                .collect()
        }
        None => defaults.maps.iter().map(|n| (n.clone(), None)).collect(),
    };

    let d = &tuning_defaults;
    // Absent tables are read as empty ones so every section's keys are known when an
    // unknown key needs a "belongs in `[weapon]`" hint.
    let mut section = |key: &'static str, out: &mut Vec<Problem>| {
        top.table(out, key)
            .unwrap_or_else(|| TableReader::new(src, &empty, Scope::Table(key), 0..0))
    };

    let mut p = section("player", out);
    let player = PlayerTuning {
        radius: p.float(out, "radius", PLAYER_RADIUS, d.player.radius),
        max_speed: p.float(out, "max_speed", PLAYER_MAX_SPEED, d.player.max_speed),
        acceleration: p.float(
            out,
            "acceleration",
            PLAYER_ACCELERATION,
            d.player.acceleration,
        ),
        max_health: u16_or(
            p.int(
                out,
                "max_health",
                PLAYER_MAX_HEALTH,
                i64::from(d.player.max_health),
            ),
            d.player.max_health,
        ),
        respawn_delay_s: p.float(
            out,
            "respawn_delay_s",
            PLAYER_RESPAWN_DELAY_S,
            d.player.respawn_delay_s,
        ),
    };
    let mut w = section("weapon", out);
    let weapon = WeaponTuning {
        cooldown_s: w.float(out, "cooldown_s", WEAPON_COOLDOWN_S, d.weapon.cooldown_s),
        projectile_speed: w.float(
            out,
            "projectile_speed",
            WEAPON_PROJECTILE_SPEED,
            d.weapon.projectile_speed,
        ),
        projectile_radius: w.float(
            out,
            "projectile_radius",
            WEAPON_PROJECTILE_RADIUS,
            d.weapon.projectile_radius,
        ),
        projectile_lifetime_s: w.float(
            out,
            "projectile_lifetime_s",
            WEAPON_PROJECTILE_LIFETIME_S,
            d.weapon.projectile_lifetime_s,
        ),
        damage: u16_or(
            w.int(out, "damage", WEAPON_DAMAGE, i64::from(d.weapon.damage)),
            d.weapon.damage,
        ),
    };
    let mut k = section("pickup", out);
    let pickup = PickupTuning {
        radius: k.float(out, "radius", PICKUP_RADIUS, d.pickup.radius),
        heal: u16_or(
            k.int(out, "heal", PICKUP_HEAL, i64::from(d.pickup.heal)),
            d.pickup.heal,
        ),
        respawn_s: k.float(out, "respawn_s", PICKUP_RESPAWN_S, d.pickup.respawn_s),
    };
    let mut r = section("round", out);
    let round = RoundTuning {
        score_limit: u32::try_from(r.int(
            out,
            "score_limit",
            ROUND_SCORE_LIMIT,
            i64::from(d.round.score_limit),
        ))
        .unwrap_or(d.round.score_limit),
        time_limit_s: r.float(
            out,
            "time_limit_s",
            ROUND_TIME_LIMIT_S,
            d.round.time_limit_s,
        ),
        intermission_s: r.float(
            out,
            "intermission_s",
            ROUND_INTERMISSION_S,
            d.round.intermission_s,
        ),
    };

    let all: Vec<Unknowns> = vec![top.finish(), p.finish(), w.finish(), k.finish(), r.finish()];
    for unknowns in &all {
        let elsewhere = |key: &str| belongs_elsewhere(key, unknowns, &all);
        report_unknowns(src, unknowns, &elsewhere, out);
    }

    GameFile {
        config: GameConfig {
            engine: EngineSettings {
                tick_rate: u16_or(tick_rate, defaults.tick_rate),
                snapshot_rate: u16_or(snapshot_rate, defaults.snapshot_rate),
                room_capacity: u16_or(room_capacity, defaults.room_capacity),
                spectator_capacity: u16_or(spectator_capacity, defaults.spectator_capacity),
                resume_grace_s,
                empty_room_close_s,
                maps: map_refs.iter().map(|(n, _)| n.clone()).collect(),
            },
            tuning: Tuning {
                player,
                weapon,
                pickup,
                round,
            },
        },
        map_refs,
    }
}

/// "`damage` belongs in `[weapon]`" when a key sits in the wrong table. `all[0]` is the
/// top level.
fn belongs_elsewhere(key: &str, here: &Unknowns, all: &[Unknowns]) -> Option<String> {
    let others = || all.iter().filter(|u| !std::ptr::eq(*u, here));
    if let Some(top) = all.first()
        && !std::ptr::eq(top, here)
        && top.known.contains(&key)
    {
        return Some(format!(
            "`{key}` is a top-level key: move it above the first `[table]` line"
        ));
    }
    let homes: Vec<String> = others()
        .filter(|u| u.known.contains(&key))
        .map(|u| u.scope.header())
        .collect();
    match homes.as_slice() {
        [] => None,
        [one] => Some(format!("`{key}` belongs in {one}")),
        many => Some(format!("`{key}` is a key of {}", many.join(" and "))),
    }
}

/// Values were range-checked to fit; the fallback only guards against a range typo.
fn u16_or(v: i64, default: u16) -> u16 {
    u16::try_from(v).unwrap_or(default)
}
