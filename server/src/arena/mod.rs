//! The arena: Rallypoint's reference game, a top-down shooter, served by the engine
//! through [`Game`].
//!
//! [`sim`] is its pure simulation (`World::step(controls, dt)`) and [`assets`] its tuning
//! and maps as designers write them. This module adapts the simulation to the seam: it
//! keeps each player's latest controls between inputs (a `fire` seen in any input since
//! the last step still fires, so a tap between ticks is not lost, judged against what
//! that input's `view` claims), holds a claimed `view` to the newest snapshot the player
//! had been sent (the simulation bounds it by its lag-compensation window), writes the
//! world as rows of [`arena_schema`], and saves and restores the whole state. What clients
//! need of the tuning ([`TuningInfo`]: radius, health, the movement rules' speed and
//! acceleration, for prediction) goes into `welcome`, and again as a `tuning` event when a
//! hot reload changes it.
//!
//! Must not do IO or read a clock: the engine calls it from a room's tick.

pub mod assets;
pub mod sim;
#[cfg(test)]
mod vectors;

use std::collections::BTreeMap;

use rallypoint_protocol::entity::arena_schema;
use rallypoint_protocol::message::{Event, Input, TuningInfo};
use rallypoint_protocol::rows::{RowSchema, Rows};
use serde::{Deserialize, Serialize};

use crate::game::{Game, InputContext, PlayerId, RestoreError};
use assets::{ArenaAssets, Tuning};
use sim::{Control, World};

/// The arena's state as the engine holds it.
#[derive(Debug)]
pub struct Arena {
    world: World,
    pads: BTreeMap<PlayerId, Pad>,
    /// Reused every step.
    controls: Vec<(PlayerId, Control)>,
    /// Events of the arena's own (not the world's), sent before the next step's.
    announce: Vec<Event>,
}

/// One player's controls between steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Pad {
    control: Control,
    /// A `fire` seen in any input since the last step.
    fire_latch: bool,
    /// The `view` of the last input that fired since the last step.
    #[serde(default)]
    fire_view: Option<u32>,
    /// Connection dropped: no controls until it is back.
    away: bool,
}

/// What [`Arena::checkpoint`] writes: the world's own checkpoint and the pads.
#[derive(Serialize, Deserialize)]
struct Saved {
    world: serde_bytes::ByteBuf,
    pads: Vec<(PlayerId, Pad)>,
    #[serde(default)]
    announce: Vec<Event>,
}

impl Game for Arena {
    const NAME: &'static str = "arena";
    type Assets = ArenaAssets;
    type Input = Input;
    type Event = Event;

    fn schema() -> RowSchema {
        arena_schema()
    }

    fn new(assets: &ArenaAssets, map: &str, seed: u64, dt: f32) -> Arena {
        let map = assets
            .maps
            .get(map)
            .or_else(|| assets.maps.values().next())
            .cloned()
            .expect("validated assets hold at least one map");
        let mut world = World::new(map, assets.tuning.clone(), seed);
        // Round 1 starts on the first step; take it now, before anyone is welcomed, so
        // `welcome` and `round_start` describe a running round. Nobody is listening yet.
        world.step(&[], dt);
        world.drain_events().for_each(drop);
        Arena {
            world,
            pads: BTreeMap::new(),
            controls: Vec::new(),
            announce: Vec::new(),
        }
    }

    fn reload(&mut self, assets: &ArenaAssets) {
        let before = tuning_info(self.world.tuning());
        self.world.set_tuning(assets.tuning.clone());
        let after = tuning_info(&assets.tuning);
        if after != before {
            self.announce.push(Event::Tuning(after));
        }
    }

    fn queue_map(&mut self, assets: &ArenaAssets, map: &str) {
        if let Some(map) = assets.maps.get(map) {
            self.world.set_next_map(std::sync::Arc::clone(map));
        }
    }

    fn map_name(&self) -> &str {
        &self.world.map().name
    }

    fn tick(&self) -> u32 {
        self.world.tick()
    }

    fn add_player(&mut self) -> PlayerId {
        let id = self.world.add_player();
        self.pads.insert(id, Pad::default());
        id
    }

    fn remove_player(&mut self, id: PlayerId) {
        self.world.remove_player(id);
        self.pads.remove(&id);
    }

    fn set_away(&mut self, id: PlayerId, away: bool) {
        self.world.set_away(id, away);
        if let Some(pad) = self.pads.get_mut(&id) {
            *pad = Pad {
                away,
                ..Pad::default()
            };
        }
    }

    fn apply_input(&mut self, id: PlayerId, input: &Input, context: InputContext) {
        let Some(pad) = self.pads.get_mut(&id) else {
            return;
        };
        let (mx, my) = input.clamped_move();
        let view = seen(input.view, context.latest_sent);
        pad.control = Control {
            mx,
            my,
            aim: input.aim,
            fire: input.fire,
            view,
        };
        if input.fire {
            pad.fire_latch = true;
            pad.fire_view = view;
        }
    }

    fn step(&mut self, dt: f32) {
        self.controls.clear();
        for (&id, pad) in &mut self.pads {
            if !pad.away {
                let mut c = pad.control;
                if pad.fire_latch && !c.fire {
                    c.fire = true;
                    c.view = pad.fire_view;
                }
                pad.fire_latch = false;
                pad.fire_view = None;
                self.controls.push((id, c));
            }
        }
        self.world.step(&self.controls, dt);
    }

    fn drain_events(&mut self, out: &mut Vec<Event>) {
        out.append(&mut self.announce);
        out.extend(self.world.drain_events());
    }

    fn ends_round(event: &Event) -> bool {
        matches!(event, Event::RoundEnd { .. })
    }

    fn intro(&self, out: &mut Vec<Event>) {
        out.push(Event::Map(self.world.map_info()));
        out.push(self.world.round_start_event());
    }

    fn welcome_info(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(tuning_info(self.world.tuning())) {
            Ok(serde_json::Value::Object(info)) => info,
            _ => unreachable!("a struct of numbers serializes as a map"),
        }
    }

    fn write_rows(&self, rows: &mut Rows) {
        self.world.write_rows(rows);
    }

    fn describe_player(&self, id: PlayerId) -> serde_json::Value {
        let view = self.world.player(id);
        serde_json::json!({
            "score": view.map_or(0, |v| v.score),
            "hp": view.map_or(0, |v| v.hp),
        })
    }

    fn state_hash(&self) -> u64 {
        let mut h = self.world.state_hash();
        for (id, pad) in &self.pads {
            for word in [
                u64::from(id.0),
                u64::from(pad.control.mx.to_bits()),
                u64::from(pad.control.my.to_bits()),
                u64::from(pad.control.aim.to_bits()),
                u64::from(pad.control.fire)
                    | u64::from(pad.fire_latch) << 1
                    | u64::from(pad.away) << 2,
                pad.control.view.map_or(0, |v| 1 << 32 | u64::from(v)),
                pad.fire_view.map_or(0, |v| 1 << 32 | u64::from(v)),
            ] {
                h = (h ^ word).wrapping_mul(0x0000_0100_0000_01B3);
            }
        }
        h
    }

    fn checkpoint(&self) -> Vec<u8> {
        let saved = Saved {
            world: serde_bytes::ByteBuf::from(self.world.checkpoint()),
            pads: self.pads.iter().map(|(&id, &pad)| (id, pad)).collect(),
            announce: self.announce.clone(),
        };
        rmp_serde::to_vec_named(&saved).expect("a checkpoint always serializes")
    }

    fn restore(assets: &ArenaAssets, bytes: &[u8]) -> Result<Arena, RestoreError> {
        let saved: Saved =
            rmp_serde::from_slice(bytes).map_err(|e| RestoreError::Corrupt(e.to_string()))?;
        let mut world = World::restore(&saved.world).map_err(RestoreError::Corrupt)?;
        // The tuning in force here wins: a checkpoint moves a room, not a rule change.
        world.set_tuning(assets.tuning.clone());
        Ok(Arena {
            world,
            pads: saved.pads.into_iter().collect(),
            controls: Vec::new(),
            announce: saved.announce,
        })
    }
}

/// The tick a player claims to have been drawing, no newer than the newest snapshot it had
/// been sent (nothing sent yet: no claim). Tick counts wrap, so "newer" is within half
/// their range.
fn seen(view: Option<u32>, latest_sent: Option<u32>) -> Option<u32> {
    let (view, latest) = (view?, latest_sent?);
    let ahead = view.wrapping_sub(latest);
    Some(if ahead != 0 && ahead <= u32::MAX / 2 {
        latest
    } else {
        view
    })
}

/// What clients see of `tuning`.
fn tuning_info(tuning: &Tuning) -> TuningInfo {
    let p = &tuning.player;
    TuningInfo {
        player_radius: p.radius,
        max_hp: p.max_health,
        max_speed: p.max_speed,
        acceleration: p.acceleration,
    }
}

impl Arena {
    /// The simulation, read-only (tests, tools).
    pub fn world(&self) -> &World {
        &self.world
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rallypoint_protocol::rng::SplitMix64;

    fn assets() -> ArenaAssets {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets");
        crate::assets::load_dir(std::path::Path::new(dir))
            .expect("shipped assets load")
            .game
    }

    /// Random inputs for every player, from a generator of its own, each claiming to see
    /// the world a few ticks back (lag compensation at work).
    fn play(arena: &mut Arena, script: &mut SplitMix64, steps: usize) -> Vec<u64> {
        let ids: Vec<PlayerId> = arena.pads.keys().copied().collect();
        let mut hashes = Vec::new();
        for step in 0..steps {
            let context = InputContext {
                latest_sent: Some(arena.tick()),
            };
            for (i, &id) in ids.iter().enumerate() {
                let input = Input {
                    seq: step as u32,
                    mx: script.range(-1.0, 1.0) as f32,
                    my: script.range(-1.0, 1.0) as f32,
                    aim: script.range(-3.0, 3.0) as f32,
                    fire: (step + i) % 7 == 0,
                    view: Some(arena.tick().saturating_sub(script.below(12) as u32)),
                };
                arena.apply_input(id, &input, context);
            }
            arena.step(1.0 / 30.0);
            let mut events = Vec::new();
            arena.drain_events(&mut events);
            hashes.push(arena.state_hash());
        }
        hashes
    }

    #[test]
    fn a_restored_checkpoint_continues_exactly_as_the_original() {
        let assets = assets();
        let mut arena = Arena::new(&assets, "courtyard", 11, 1.0 / 30.0);
        for _ in 0..4 {
            arena.add_player();
        }
        let mut script = SplitMix64::new(5);
        play(&mut arena, &mut script, 200);
        let away = *arena.pads.keys().next().unwrap();
        arena.set_away(away, true);
        let bytes = arena.checkpoint();
        let mut copy = Arena::restore(&assets, &bytes).expect("restores");
        assert_eq!(copy.state_hash(), arena.state_hash());
        let mut script_copy = script.clone();
        let original = play(&mut arena, &mut script, 300);
        let restored = play(&mut copy, &mut script_copy, 300);
        assert_eq!(original, restored);
        // The whole state, not just a part: 4 players with pads, projectiles, pickups.
        assert!(bytes.len() > 200, "{} bytes", bytes.len());
    }

    #[test]
    fn garbage_is_not_a_checkpoint() {
        let assets = assets();
        for bytes in [&b""[..], b"\x80", b"\x82\xa5world\xc4\x01x\xa4pads\x90"] {
            assert!(matches!(
                Arena::restore(&assets, bytes),
                Err(RestoreError::Corrupt(_))
            ));
        }
    }

    #[test]
    fn rows_follow_the_declared_schema() {
        let assets = assets();
        let mut arena = Arena::new(&assets, "courtyard", 3, 1.0 / 30.0);
        let id = arena.add_player();
        let schema = Arena::schema();
        schema.check().unwrap();
        let mut rows = Rows::new();
        arena.write_rows(&mut rows);
        for row in rows.iter() {
            assert_eq!(row.fields.len(), schema.fields(row.head.kind).len());
        }
        assert!(rows.iter().any(|r| r.head.id == id.0 && r.head.kind == 0));
    }

    #[test]
    fn a_claimed_view_is_held_to_what_the_player_was_sent() {
        assert_eq!(seen(Some(90), Some(100)), Some(90));
        assert_eq!(seen(Some(100), Some(100)), Some(100));
        assert_eq!(seen(Some(120), Some(100)), Some(100), "not newer than sent");
        assert_eq!(seen(Some(5), None), None, "nothing sent yet: no claim");
        assert_eq!(seen(None, Some(100)), None);
        assert_eq!(seen(Some(3), Some(u32::MAX - 2)), Some(u32::MAX - 2));
        assert_eq!(seen(Some(u32::MAX - 9), Some(4)), Some(u32::MAX - 9));
    }

    #[test]
    fn a_tap_between_steps_fires_with_the_view_it_was_made_at() {
        let assets = assets();
        let mut arena = Arena::new(&assets, "courtyard", 3, 1.0 / 30.0);
        let id = arena.add_player();
        let context = InputContext {
            latest_sent: Some(arena.tick()),
        };
        let tap = |fire, view| Input {
            seq: 1,
            mx: 0.0,
            my: 0.0,
            aim: 0.0,
            fire,
            view: Some(view),
        };
        arena.apply_input(id, &tap(true, 0), context);
        arena.apply_input(id, &tap(false, 1), context);
        let pad = arena.pads[&id];
        assert_eq!((pad.fire_latch, pad.fire_view), (true, Some(0)));
        assert_eq!(pad.control.view, Some(1));
    }

    #[test]
    fn welcome_carries_the_tuning_and_a_reload_that_changes_it_announces_it() {
        let mut assets = assets();
        let mut arena = Arena::new(&assets, "courtyard", 3, 1.0 / 30.0);
        let info = arena.welcome_info();
        let player = &assets.tuning.player;
        assert_eq!(info["player_radius"], f64::from(player.radius));
        assert_eq!(info["max_speed"], f64::from(player.max_speed));
        assert_eq!(info["acceleration"], f64::from(player.acceleration));
        assert_eq!(info["max_hp"], player.max_health);

        // A reload that changes nothing clients use says nothing.
        assets.tuning.weapon.damage += 1;
        arena.reload(&assets);
        let mut events = Vec::new();
        arena.step(1.0 / 30.0);
        arena.drain_events(&mut events);
        assert!(!events.iter().any(|e| matches!(e, Event::Tuning(_))));

        assets.tuning.player.max_speed *= 2.0;
        arena.reload(&assets);
        arena.step(1.0 / 30.0);
        arena.drain_events(&mut events);
        let announced: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Tuning(t) => Some(*t),
                _ => None,
            })
            .collect();
        assert_eq!(announced, [tuning_info(&assets.tuning)]);
        assert_eq!(
            serde_json::to_value(announced[0]).unwrap(),
            serde_json::Value::Object(arena.welcome_info()),
            "the event has the welcome's keys and values"
        );
        events.clear();
        arena.step(1.0 / 30.0);
        arena.drain_events(&mut events);
        assert!(events.is_empty(), "announced once: {events:?}");
    }
}
