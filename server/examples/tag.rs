//! Tag: a second game on the Rallypoint engine, written only against the library's public
//! seam ([`Game`] and [`GameAssets`]) and served by the unmodified engine with all of its
//! edge (tokens, both v1 subprotocols, rate limits, resume, spectators, hot reload,
//! metrics). `server/GAME.md` walks through it.
//!
//! The rules: players run around a walled yard. When there are two or more, one is "it";
//! touching another player passes it on, and the player who just passed it cannot be
//! tagged straight back for a moment. Everyone scores the seconds they spend not being it
//! while a game is on. When the it leaves or drops, whoever has scored least becomes it.
//!
//! Run it: `cargo run --release -p rallypoint --example tag` (dev mode on the default
//! ports); check its assets: `cargo run -p rallypoint --example tag -- check`.
//!
//! Must not do IO or read a clock (the engine calls it from a room's tick), and must stay
//! deterministic for a seed and a call sequence: integer ticks, ordered maps, the seeded
//! generator.

use std::collections::{BTreeMap, BTreeSet};

use rallypoint::assets::{Check, Files, Loaded};
use rallypoint::game::{Game, GameAssets, InputContext, PlayerId, RestoreError};
use rallypoint_protocol::inbound::InputFields;
use rallypoint_protocol::message::InvalidMessage;
use rallypoint_protocol::rng::SplitMix64;
use rallypoint_protocol::rows::{FieldDef, FieldType, KindDef, RowHead, RowSchema, Rows};
use serde::{Deserialize, Serialize};

/// Tag's assets, beside this file; absolute, so it runs from any directory.
pub const ASSETS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tag/assets");

fn main() -> std::process::ExitCode {
    rallypoint::cli::run::<Tag>(Some(ASSETS))
}

/// The one map tag plays on: the yard its settings describe.
const YARD: &str = "yard";

/// The `kind` of a player row, `[id, 0, x, y, flags, score]` (v2 adds `vx, vy`).
pub const PLAYER: u8 = 0;
/// Player flag: this player is it.
pub const IT: u8 = 1;
/// Player flag: the connection dropped; the player waits for its owner to resume.
pub const AWAY: u8 = 2;

rallypoint::settings! {
    /// `[tag]` in `game.toml`: each key with its default, range and unit.
    pub struct Rules {
        /// Yard width.
        width: f32 = 30.0, 4.0..=500.0 "units";
        /// Yard height.
        height: f32 = 20.0, 4.0..=500.0 "units";
        /// Player radius: two players touch when their centres are closer than twice this.
        radius: f32 = 0.5, 0.1..=2.0 "units";
        /// Running speed.
        speed: f32 = 6.0, 0.5..=50.0 "units/s";
        /// The it's running speed: at least `speed`, or nobody is ever caught.
        it_speed: f32 = 6.6, 0.5..=50.0 "units/s";
        /// Seconds during which a new it cannot tag the player who just tagged it.
        no_tag_back_s: f32 = 1.5, 0.0..=30.0 "seconds";
    }
}

/// Tag's tables of `game.toml`: just `[tag]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TagSettings {
    /// `[tag]`
    pub tag: Rules,
}

impl GameAssets for Rules {
    type Settings = TagSettings;
    const DEFAULT_MAP: &'static str = YARD;

    fn check_settings(settings: &TagSettings, check: &mut Check<'_>) {
        let (rules, mut tag) = (&settings.tag, check.table("tag"));
        rules.check(&mut tag);
        let (runs, chases) = (tag.ok("speed"), tag.ok("it_speed"));
        if runs && chases && rules.it_speed < rules.speed {
            let message = format!(
                "`tag.it_speed` = {} is slower than `tag.speed` = {}: the it could never catch anyone",
                rules.it_speed, rules.speed
            );
            let help = format!("make `it_speed` at least {}", rules.speed);
            tag.report(tag.span("it_speed"), message, Some(help));
        }
    }

    fn load(settings: TagSettings, _files: &mut Files<'_>) -> Loaded<Rules> {
        Loaded {
            game: Some(settings.tag),
            maps: BTreeSet::from([YARD.to_string()]),
            no_maps: None,
        }
    }

    fn missing_map(name: &str) -> String {
        format!("map `{name}` not found: tag plays in one yard, `{YARD}`")
    }

    fn has_map(&self, name: &str) -> bool {
        name == YARD
    }

    fn summary(&self) -> String {
        format!("a {} × {} yard", self.width, self.height)
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({ "yard": [self.width, self.height] })
    }
}

/// Tag's `input` fields: `{"t":"input","seq":u32,"mx":f32,"my":f32}`, where the player
/// wants to run (clamped to length 1).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Run {
    /// x component; right is positive.
    pub mx: f32,
    /// y component; down is positive.
    pub my: f32,
}

impl InputFields for Run {
    fn validate(&self) -> Result<(), InvalidMessage> {
        match (self.mx.is_finite(), self.my.is_finite()) {
            (false, _) => Err(InvalidMessage::NotFinite("mx")),
            (_, false) => Err(InvalidMessage::NotFinite("my")),
            _ => Ok(()),
        }
    }
}

/// Tag's events, `{"t":"event","e":...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub enum TagEvent {
    /// `{"e":"it","it":id}`: the game picked an it (the first one, or after the it left
    /// or dropped); also sent to newcomers.
    It {
        /// The new it.
        it: u32,
    },
    /// `{"e":"tagged","it":id,"by":id}`: `by` touched `it`, who is it now.
    Tagged {
        /// The new it.
        it: u32,
        /// The previous it.
        by: u32,
    },
}

/// One player.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Runner {
    x: f32,
    y: f32,
    /// Velocity over the last step, units/s.
    vx: f32,
    vy: f32,
    /// The latest input, clamped.
    mx: f32,
    my: f32,
    /// Steps spent not being it while a game was on.
    free_steps: u32,
    away: bool,
}

/// A game of tag: the whole state, as [`Game::checkpoint`] saves it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tag {
    #[serde(skip)]
    rules: Rules,
    dt: f32,
    tick: u32,
    rng: SplitMix64,
    next_id: u32,
    players: BTreeMap<PlayerId, Runner>,
    it: Option<PlayerId>,
    /// The previous it, safe from the current one until the tick given.
    shield: Option<(PlayerId, u32)>,
    #[serde(skip)]
    events: Vec<TagEvent>,
}

impl Game for Tag {
    const NAME: &'static str = "tag";
    type Assets = Rules;
    type Input = Run;
    type Event = TagEvent;

    fn schema() -> RowSchema {
        let velocity = FieldType::Real { scale: 256.0 };
        RowSchema {
            position_scale: 64.0,
            kinds: vec![KindDef {
                kind: PLAYER,
                name: "player".into(),
                fields: vec![
                    FieldDef::new("flags", FieldType::Flags),
                    FieldDef::new("score", FieldType::Real { scale: 10.0 }),
                    FieldDef::v2_only("vx", velocity),
                    FieldDef::v2_only("vy", velocity),
                ],
                velocity: Some([2, 3]),
            }],
        }
    }

    fn new(rules: &Rules, _map: &str, seed: u64, dt: f32) -> Tag {
        Tag {
            rules: rules.clone(),
            dt,
            tick: 0,
            rng: SplitMix64::new(seed),
            next_id: 1,
            players: BTreeMap::new(),
            it: None,
            shield: None,
            events: Vec::new(),
        }
    }

    fn reload(&mut self, rules: &Rules) {
        // A smaller yard takes effect as everyone is kept inside it at the next step.
        self.rules = rules.clone();
    }

    fn queue_map(&mut self, _rules: &Rules, _map: &str) {}

    fn map_name(&self) -> &str {
        YARD
    }

    fn tick(&self) -> u32 {
        self.tick
    }

    fn add_player(&mut self) -> PlayerId {
        let id = PlayerId(self.next_id);
        self.next_id += 1;
        let r = f64::from(self.rules.radius);
        let x = self.rng.range(r, f64::from(self.rules.width) - r) as f32;
        let y = self.rng.range(r, f64::from(self.rules.height) - r) as f32;
        self.players.insert(
            id,
            Runner {
                x,
                y,
                ..Runner::default()
            },
        );
        id
    }

    fn remove_player(&mut self, id: PlayerId) {
        self.players.remove(&id);
        self.lose_it(id);
    }

    fn set_away(&mut self, id: PlayerId, away: bool) {
        if let Some(p) = self.players.get_mut(&id) {
            *p = Runner {
                away,
                mx: 0.0,
                my: 0.0,
                vx: 0.0,
                vy: 0.0,
                ..*p
            };
        }
        if away {
            self.lose_it(id);
        }
    }

    fn apply_input(&mut self, id: PlayerId, input: &Run, _: InputContext) {
        if let Some(p) = self.players.get_mut(&id) {
            let len = input.mx.hypot(input.my).max(1.0);
            (p.mx, p.my) = (input.mx / len, input.my / len);
        }
    }

    fn step(&mut self, dt: f32) {
        self.tick = self.tick.wrapping_add(1);
        if self.it.is_none() {
            self.pick_it();
        }
        self.run(dt);
        self.tag();
        if let Some(it) = self.it {
            for (_, p) in self
                .players
                .iter_mut()
                .filter(|(id, p)| **id != it && !p.away)
            {
                p.free_steps += 1;
            }
        }
    }

    fn drain_events(&mut self, out: &mut Vec<TagEvent>) {
        out.append(&mut self.events);
    }

    fn ends_round(_event: &TagEvent) -> bool {
        false
    }

    fn intro(&self, out: &mut Vec<TagEvent>) {
        out.extend(self.it.map(|it| TagEvent::It { it: it.0 }));
    }

    fn welcome_info(&self) -> serde_json::Map<String, serde_json::Value> {
        let r = &self.rules;
        let mut info = serde_json::Map::new();
        info.insert("width".into(), r.width.into());
        info.insert("height".into(), r.height.into());
        info.insert("player_radius".into(), r.radius.into());
        info
    }

    fn write_rows(&self, rows: &mut Rows) {
        for (id, p) in &self.players {
            let head = RowHead {
                id: id.0,
                kind: PLAYER,
                x: p.x,
                y: p.y,
            };
            let flags = if self.it == Some(*id) { IT } else { 0 } | if p.away { AWAY } else { 0 };
            let fields = [flags.into(), self.score(p).into(), p.vx.into(), p.vy.into()];
            rows.push(head, &fields);
        }
    }

    fn describe_player(&self, id: PlayerId) -> serde_json::Value {
        let score = self.players.get(&id).map_or(0.0, |p| self.score(p));
        serde_json::json!({ "score": score, "it": self.it == Some(id) })
    }

    fn state_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |word: u64| h = (h ^ word).wrapping_mul(0x0000_0100_0000_01b3);
        mix(u64::from(self.tick));
        mix(self.rng.state());
        mix(u64::from(self.next_id));
        mix(self.it.map_or(0, |it| u64::from(it.0)));
        let (shielded, until) = self.shield.unwrap_or((PlayerId(0), 0));
        mix(u64::from(shielded.0) << 32 | u64::from(until));
        for (id, p) in &self.players {
            mix(u64::from(id.0));
            for v in [p.x, p.y, p.vx, p.vy, p.mx, p.my] {
                mix(u64::from(v.to_bits()));
            }
            mix(u64::from(p.free_steps) << 1 | u64::from(p.away));
        }
        h
    }

    fn checkpoint(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a game of tag always serializes")
    }

    fn restore(rules: &Rules, bytes: &[u8]) -> Result<Tag, RestoreError> {
        let mut tag: Tag =
            rmp_serde::from_slice(bytes).map_err(|e| RestoreError::Corrupt(e.to_string()))?;
        // The rules in force here win: a checkpoint moves a game, not a rule change.
        tag.rules = rules.clone();
        Ok(tag)
    }
}

impl Tag {
    fn score(&self, p: &Runner) -> f32 {
        p.free_steps as f32 * self.dt
    }

    /// With two players or more present, whoever has scored least (the lowest id on a
    /// tie) becomes it.
    fn pick_it(&mut self) {
        let present = self.players.iter().filter(|(_, p)| !p.away);
        if present.clone().count() < 2 {
            return;
        }
        if let Some((&id, _)) = present.min_by_key(|(id, p)| (p.free_steps, **id)) {
            self.it = Some(id);
            self.events.push(TagEvent::It { it: id.0 });
        }
    }

    /// The it left or dropped: a new one is picked at the next step.
    fn lose_it(&mut self, id: PlayerId) {
        if self.it == Some(id) {
            self.it = None;
        }
        if self.shield.is_some_and(|(shielded, _)| shielded == id) {
            self.shield = None;
        }
    }

    /// Everyone present runs where their input points, kept inside the yard.
    fn run(&mut self, dt: f32) {
        let r = &self.rules;
        for (id, p) in self.players.iter_mut().filter(|(_, p)| !p.away) {
            let speed = if self.it == Some(*id) {
                r.it_speed
            } else {
                r.speed
            };
            let x = (p.x + p.mx * speed * dt).clamp(r.radius, (r.width - r.radius).max(r.radius));
            let y = (p.y + p.my * speed * dt).clamp(r.radius, (r.height - r.radius).max(r.radius));
            (p.vx, p.vy) = ((x - p.x) / dt, (y - p.y) / dt);
            (p.x, p.y) = (x, y);
        }
    }

    /// The it touches the nearest present player it may tag, if any: that one is it now.
    fn tag(&mut self) {
        let Some(it) = self.it else { return };
        let Some(&chaser) = self.players.get(&it) else {
            return;
        };
        let reach = 2.0 * self.rules.radius;
        let shielded = self
            .shield
            .filter(|&(_, until)| self.tick < until)
            .map(|(id, _)| id);
        let caught = self
            .players
            .iter()
            .filter(|(id, p)| **id != it && !p.away && Some(**id) != shielded)
            .map(|(id, p)| ((p.x - chaser.x).hypot(p.y - chaser.y), *id))
            .filter(|(d, _)| *d < reach)
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        if let Some((_, caught)) = caught {
            let steps = (self.rules.no_tag_back_s / self.dt).round() as u32;
            self.shield = Some((it, self.tick.wrapping_add(steps)));
            self.it = Some(caught);
            self.events.push(TagEvent::Tagged {
                it: caught.0,
                by: it.0,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DT: f32 = 1.0 / 30.0;

    fn game(players: u32) -> (Tag, Vec<PlayerId>) {
        let mut tag = Tag::new(&Rules::default(), YARD, 7, DT);
        let ids = (0..players).map(|_| tag.add_player()).collect();
        (tag, ids)
    }

    fn place(tag: &mut Tag, id: PlayerId, x: f32, y: f32) {
        let p = tag.players.get_mut(&id).unwrap();
        (p.x, p.y) = (x, y);
    }

    fn events(tag: &mut Tag) -> Vec<TagEvent> {
        let mut out = Vec::new();
        tag.drain_events(&mut out);
        out
    }

    #[test]
    fn the_schema_is_usable_and_rows_follow_it() {
        Tag::schema().check().unwrap();
        let (mut tag, _) = game(3);
        tag.step(DT);
        let mut rows = Rows::new();
        tag.write_rows(&mut rows);
        assert_eq!(rows.len(), 3);
        for row in rows.iter() {
            assert_eq!(row.fields.len(), Tag::schema().fields(row.head.kind).len());
        }
    }

    #[test]
    fn touching_passes_it_on_and_the_tagger_is_safe_for_a_moment() {
        let (mut tag, ids) = game(2);
        let (a, b) = (ids[0], ids[1]);
        place(&mut tag, a, 5.0, 5.0);
        place(&mut tag, b, 15.0, 5.0);
        tag.step(DT);
        assert_eq!(events(&mut tag), [TagEvent::It { it: a.0 }]);
        place(&mut tag, b, 5.9, 5.0);
        tag.step(DT);
        assert_eq!(events(&mut tag), [TagEvent::Tagged { it: b.0, by: a.0 }]);
        // Still touching: no tag back until the shield runs out, then at once.
        let shield = (Rules::default().no_tag_back_s / DT).round() as usize;
        for _ in 1..shield {
            tag.step(DT);
            assert_eq!(events(&mut tag), []);
        }
        tag.step(DT);
        assert_eq!(events(&mut tag), [TagEvent::Tagged { it: a.0, by: b.0 }]);
    }

    #[test]
    fn the_it_runs_faster_scores_only_go_to_the_others_and_the_yard_holds() {
        let (mut tag, ids) = game(2);
        place(&mut tag, ids[0], 5.0, 5.0);
        place(&mut tag, ids[1], 15.0, 15.0);
        for &id in &ids {
            tag.apply_input(id, &Run { mx: -3.0, my: 0.0 }, InputContext::default());
        }
        tag.step(DT);
        let (it, runner) = (tag.players[&ids[0]], tag.players[&ids[1]]);
        assert!((it.vx + 6.6).abs() < 1e-3 && (runner.vx + 6.0).abs() < 1e-3);
        assert_eq!((it.free_steps, runner.free_steps), (0, 1));
        for _ in 0..300 {
            tag.step(DT);
        }
        assert_eq!(tag.players[&ids[0]].x, 0.5);
        // Away players neither move nor score; the it dropping passes it on.
        tag.set_away(ids[0], true);
        tag.step(DT);
        assert_eq!(tag.it, None);
        assert_eq!(tag.players[&ids[0]].free_steps, 0);
    }

    #[test]
    fn a_checkpoint_restores_the_same_game_and_both_play_on_identically() {
        let (mut tag, mut ids) = game(4);
        let mut script = SplitMix64::new(11);
        let play = |tag: &mut Tag, ids: &[PlayerId], script: &mut SplitMix64| {
            for &id in ids {
                let (mx, my) = (script.range(-1.0, 1.0), script.range(-1.0, 1.0));
                tag.apply_input(
                    id,
                    &Run {
                        mx: mx as f32,
                        my: my as f32,
                    },
                    InputContext::default(),
                );
            }
            tag.step(DT);
            tag.events.clear();
            tag.state_hash()
        };
        for _ in 0..200 {
            play(&mut tag, &ids, &mut script);
        }
        tag.set_away(ids[1], true);
        ids.push(tag.add_player());
        let mut copy = Tag::restore(&Rules::default(), &tag.checkpoint()).unwrap();
        assert_eq!(copy.state_hash(), tag.state_hash());
        let mut twin = script.clone();
        for _ in 0..300 {
            assert_eq!(
                play(&mut tag, &ids, &mut script),
                play(&mut copy, &ids, &mut twin)
            );
        }
        assert!(matches!(
            Tag::restore(&Rules::default(), b"not a game"),
            Err(RestoreError::Corrupt(_))
        ));
    }

    #[test]
    fn the_shipped_assets_load_and_bad_ones_are_reported_with_positions() {
        let assets = rallypoint::assets::load_dir::<Rules>(std::path::Path::new(ASSETS))
            .unwrap_or_else(|r| panic!("{}", r.render_text()));
        assert_eq!(assets.engine.maps, [YARD]);
        let dir = std::env::temp_dir().join(format!("rallypoint-tag-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let game =
            "maps = [\"yard\", \"park\"]\n[tag]\nspeed = 8\nit_speed = 7\nradius = 9\nsped = 1\n";
        std::fs::write(dir.join("game.toml"), game).unwrap();
        let report = rallypoint::assets::load_dir::<Rules>(&dir).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        let found: Vec<(u32, u32, &str)> = report
            .problems
            .iter()
            .map(|p| (p.line, p.column, p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (1, 17, "map `park` not found: tag plays in one yard, `yard`"),
                (
                    4,
                    12,
                    "`tag.it_speed` = 7 is slower than `tag.speed` = 8: the it could never catch anyone"
                ),
                (
                    5,
                    10,
                    "`tag.radius` is out of range: `9` is not between 0.1 and 2 units"
                ),
                (6, 1, "unknown key `sped` in `[tag]`"),
            ],
            "{}",
            report.render_text()
        );
    }
}
