//! Client-side prediction of the bot's own player, and how far off it was.
//!
//! What a game client does so its own player moves at once: apply each input locally with
//! the arena's movement rules (`rallypoint::arena::sim::Mover`, the very code the server
//! steps players with, built from the `map` event and the movement keys of `welcome`),
//! keep the inputs the server has not acknowledged, and on every snapshot rewind to the
//! server's position for the acknowledged `seq` and replay the rest.
//!
//! The reconciliation error is the distance between where the prediction had the player
//! after the acknowledged input and where the snapshot shows it. Each is classified:
//!
//! - *collided*: a wall or the map's edge was in the predicted move;
//! - *slip*: the server did not apply exactly this one input since the previous snapshot
//!   (consecutive ticks, consecutive acks): an input reached it late, or with another in
//!   the same step, so it stepped an input twice or skipped one. A timing effect, not a
//!   rule the prediction got wrong;
//! - *unsettled*: the step was one-to-one, but the velocity the prediction started from
//!   may not be the server's (v1 rows carry no velocity);
//! - *compared*: none of these. The prediction runs the server's own code from the
//!   server's state with the server's inputs, so anything but 0 here is a bug.
//!
//! Whether the velocity is the server's is tracked as a bound on how far off it can be
//! (`slack`, units/s). A respawn or a round start puts the player at rest and the server
//! moves it one step in the same tick, so the velocity of the first snapshot after it is
//! known exactly. After a join, a death, a slip or a collision the bound grows (by what
//! the missed steps or the wall could have changed); it shrinks only as far as the
//! steering provably takes any velocity within it to the input's: steering towards one
//! target never pulls two velocities apart, and a step whose predicted velocity reaches
//! the target with `m` units/s to spare brings every velocity within `m` of the guess to
//! the target too. Only a bound of 0 makes the next step *compared*.
//!
//! Nothing is predicted during the intermission between a round's end and the next
//! start.
//!
//! Time is not read here; must not do IO. The pending inputs are bounded.

use std::collections::VecDeque;

use rallypoint::arena::sim::{Body, Mover, Step};
use rallypoint_protocol::message::{Input, MapInfo, TuningInfo, Welcome};

/// Inputs kept awaiting their ack: eight seconds at 30 Hz.
const PENDING_CAP: usize = 256;

/// One reconciliation, classified.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// The prediction could be exact; the error, in units.
    Compared(f32),
    /// The server did not apply one input per step; the error, in units.
    Slip(f32),
    /// One input per step, from a velocity that may not be the server's; the error.
    Unsettled(f32),
    /// A wall or the edge was in the predicted move; the error, in units.
    Collided(f32),
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: u32,
    input: Input,
    /// Where the prediction has the player after this input.
    body: Body,
    /// What this input's predicted step met.
    step: Step,
    /// How much closer than one step's steering the velocity was to this input's target
    /// before the step (units/s; negative: the step did not reach it).
    margin: f32,
}

/// The snapshot the prediction was last reset to.
#[derive(Debug, Clone, Copy)]
struct Base {
    tick: u32,
    ack: u32,
    /// The velocity the prediction gave the server's position (v1 rows carry none).
    velocity: (f32, f32),
    /// How far (units/s) that velocity may be from the server's.
    slack: f32,
}

impl Base {
    /// The velocity is the server's.
    fn trusted(&self) -> bool {
        self.slack <= VELOCITY_EXACT
    }
}

/// A velocity bound this small counts as exact (f32 rounding of the steering).
const VELOCITY_EXACT: f32 = 1e-4;

/// See the module docs.
#[derive(Debug)]
pub struct Prediction {
    /// `None` until the map and the movement keys are known (older servers do not send
    /// them: no prediction then).
    mover: Option<Mover>,
    /// From `welcome` (and `tuning` events): radius, top speed, acceleration.
    movement: Option<(f32, f32, f32)>,
    /// The map in play, to rebuild the mover when the tuning changes.
    map: Option<MapInfo>,
    dt: f32,
    base: Option<Base>,
    /// The player as predicted after the newest input.
    body: Body,
    pending: VecDeque<Pending>,
    /// Between a `round_end` and the next `round_start` (the intermission) the server
    /// moves nobody: nothing is predicted or compared.
    frozen: bool,
    /// Where the player was put at rest (a respawn): the next snapshot shows it one step
    /// later, when that step from there is where it shows it.
    spawn: Option<(f32, f32)>,
}

impl Prediction {
    /// A prediction for the session `welcome` opened.
    pub fn new(welcome: &Welcome) -> Prediction {
        let key = |k: &str| welcome.info_f64(k).map(|v| v as f32);
        let movement = match (key("player_radius"), key("max_speed"), key("acceleration")) {
            (Some(r), Some(s), Some(a)) => Some((r, s, a)),
            _ => None,
        };
        Prediction {
            mover: None,
            movement,
            map: None,
            dt: 1.0 / f32::from(welcome.tick_rate.max(1)),
            base: None,
            body: Body::default(),
            pending: VecDeque::with_capacity(PENDING_CAP),
            frozen: false,
            spawn: None,
        }
    }

    /// The map in play (the join intro, and every map change).
    pub fn map(&mut self, map: &MapInfo) {
        self.map = Some(map.clone());
        self.rebuild();
    }

    /// A hot reload changed the tuning: predict with it from now on.
    pub fn tuning(&mut self, t: &TuningInfo) {
        self.movement = Some((t.player_radius, t.max_speed, t.acceleration));
        self.rebuild();
    }

    fn rebuild(&mut self) {
        self.mover = self
            .movement
            .zip(self.map.as_ref())
            .map(|((radius, speed, accel), map)| Mover::new(map, radius, speed, accel));
        self.restart();
    }

    /// The player was moved by something other than its inputs (a respawn, a round
    /// start) or died: predict afresh from the next snapshot.
    pub fn restart(&mut self) {
        self.base = None;
        self.spawn = None;
    }

    /// The player respawned at `at`: at rest there, then moved one step by its latest
    /// input in the same tick. Predict afresh from the next snapshot, whose velocity is
    /// known when that one step explains where it shows the player.
    pub fn respawned(&mut self, at: (f32, f32)) {
        self.restart();
        self.spawn = Some(at);
    }

    /// The round ended: nobody moves until the next round starts.
    pub fn round_over(&mut self) {
        self.frozen = true;
        self.restart();
    }

    /// A round started (everyone respawned): predict afresh from the next snapshot (the
    /// player's own `respawn` event says where).
    pub fn round_started(&mut self) {
        self.frozen = false;
        self.base = None;
    }

    /// Where the prediction has the player now, once it has a base.
    pub fn position(&self) -> Option<(f32, f32)> {
        self.base.map(|_| (self.body.x, self.body.y))
    }

    /// Where the player will be once `input`'s move is made, without making it, and what
    /// the move meets.
    pub fn after(&self, input: &Input) -> Option<((f32, f32), Step)> {
        let (mover, _) = (self.mover.as_ref()?, self.base?);
        let mut body = self.body;
        let step = mover.step(&mut body, input, self.dt);
        Some(((body.x, body.y), step))
    }

    /// Whether a circle of `radius` flies from `from` to `to` without touching a wall
    /// (true before the map is known).
    pub fn clear_line(&self, from: (f32, f32), to: (f32, f32), radius: f32) -> bool {
        self.mover
            .as_ref()
            .is_none_or(|m| m.clear_line(from, to, radius))
    }

    /// An input was sent: the player moves at once.
    pub fn input(&mut self, input: Input) {
        let margin = self.margin(&self.body, &input);
        let step = match (&self.mover, self.base) {
            (Some(mover), Some(_)) => mover.step(&mut self.body, &input, self.dt),
            _ => Step::default(),
        };
        if self.pending.len() >= PENDING_CAP {
            self.pending.pop_front();
        }
        self.pending.push_back(Pending {
            seq: input.seq,
            input,
            body: self.body,
            step,
            margin,
        });
    }

    /// One step's steering (units/s) less the distance from `body`'s velocity to
    /// `input`'s target velocity.
    fn margin(&self, body: &Body, input: &Input) -> f32 {
        let Some((_, speed, _)) = self.movement else {
            return f32::NEG_INFINITY;
        };
        let (mx, my) = input.clamped_move();
        let (tx, ty) = (mx * speed, my * speed);
        self.steering() - (tx - body.vx).hypot(ty - body.vy)
    }

    /// How much one step's steering can change the velocity (units/s).
    fn steering(&self) -> f32 {
        self.movement
            .map_or(0.0, |(_, _, acceleration)| acceleration * self.dt)
    }

    /// A snapshot of `tick` acknowledging `ack` shows the player at `at` (`None`: dead,
    /// away or absent). Rewinds to it, replays what is not acknowledged, and says how far
    /// off the prediction of `ack` was.
    pub fn snapshot(&mut self, tick: u32, ack: u32, at: Option<(f32, f32)>) -> Option<Sample> {
        while self.pending.front().is_some_and(|p| p.seq < ack) {
            self.pending.pop_front();
        }
        let acked = self.pending.front().filter(|p| p.seq == ack).copied();
        if acked.is_some() {
            self.pending.pop_front();
        }
        let Some((x, y)) = at.filter(|_| self.mover.is_some() && !self.frozen) else {
            self.base = None;
            return None;
        };
        let previous = self.base;
        let one_to_one = previous
            .is_some_and(|b| tick == b.tick.wrapping_add(1) && ack == b.ack.wrapping_add(1));
        let was_trusted = previous.is_some_and(|b| b.trusted());
        let sample = match (previous, acked) {
            (Some(_), Some(p)) => {
                let error = (p.body.x - x).hypot(p.body.y - y);
                Some(if p.step.blocked {
                    Sample::Collided(error)
                } else if !one_to_one {
                    Sample::Slip(error)
                } else if !was_trusted {
                    Sample::Unsettled(error)
                } else {
                    Sample::Compared(error)
                })
            }
            _ => None,
        };
        let (velocity, slack) = self.server_velocity(previous, acked, tick, ack, (x, y));
        self.spawn = None;
        self.body = Body {
            x,
            y,
            vx: velocity.0,
            vy: velocity.1,
        };
        self.base = Some(Base {
            tick,
            ack,
            velocity,
            slack,
        });
        self.replay();
        sample
    }

    /// The server's velocity at this snapshot as well as the prediction can tell (v1 rows
    /// carry none), and how far off it may be. See the module docs.
    fn server_velocity(
        &self,
        previous: Option<Base>,
        acked: Option<Pending>,
        tick: u32,
        ack: u32,
        at: (f32, f32),
    ) -> ((f32, f32), f32) {
        let unknown = self
            .movement
            .map_or(f32::INFINITY, |(_, speed, _)| 2.0 * speed);
        match (acked, previous) {
            (Some(p), None) if self.spawn.is_some() => {
                let (Some(mover), Some((x, y))) = (&self.mover, self.spawn) else {
                    return ((p.body.vx, p.body.vy), unknown);
                };
                let mut body = Body {
                    x,
                    y,
                    vx: 0.0,
                    vy: 0.0,
                };
                let _ = mover.step(&mut body, &p.input, self.dt);
                // Anything but exactly one step of this input from the spawn (a snapshot
                // skipped, another input): the velocity is not known.
                let exact = (body.x, body.y) == at;
                ((body.vx, body.vy), if exact { 0.0 } else { unknown })
            }
            (Some(p), Some(b)) => {
                // Steps the server made that the prediction did not, or the other way
                // round: each changed the velocity by at most one step's steering.
                let missed = tick.wrapping_sub(b.tick).abs_diff(ack.wrapping_sub(b.ack))
                    + u32::from(tick.wrapping_sub(b.tick) != 1);
                let mut slack = b.slack + self.steering() * missed as f32;
                if p.step.blocked {
                    slack = unknown;
                } else if p.step.settled {
                    slack = (slack - p.margin.max(0.0)).max(0.0);
                }
                ((p.body.vx, p.body.vy), slack.min(unknown))
            }
            (Some(p), None) => ((p.body.vx, p.body.vy), unknown),
            // The server stepped the same input again: the previous guess, one step's
            // steering less sure.
            (None, Some(b)) => (b.velocity, (b.slack + self.steering()).min(unknown)),
            (None, None) => ((0.0, 0.0), unknown),
        }
    }

    fn replay(&mut self) {
        let Some(mover) = &self.mover else { return };
        for i in 0..self.pending.len() {
            let margin = self.margin(&self.body, &self.pending[i].input);
            let p = &mut self.pending[i];
            p.step = mover.step(&mut self.body, &p.input, self.dt);
            p.body = self.body;
            p.margin = margin;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn welcome() -> Welcome {
        let mut info = serde_json::Map::new();
        for (k, v) in [
            ("player_radius", 0.5),
            ("max_speed", 8.0),
            ("acceleration", 60.0),
        ] {
            info.insert(k.into(), v.into());
        }
        Welcome {
            you: 1,
            room: "r".into(),
            tick: 0,
            tick_rate: 30,
            map: "m".into(),
            protocol: "rallypoint.v1.msgpack".into(),
            snap_rate: 30,
            role: "player".into(),
            resumed: false,
            game: "arena".into(),
            schema: None,
            info,
        }
    }

    fn map() -> MapInfo {
        MapInfo {
            name: "m".into(),
            w: 40.0,
            h: 30.0,
            walls: vec![[30.0, 0.0, 1.0, 30.0]],
        }
    }

    fn right(seq: u32) -> Input {
        Input {
            seq,
            mx: 1.0,
            my: 0.0,
            aim: 0.0,
            fire: false,
            view: None,
        }
    }

    /// The server's side: the same rules, one input per step.
    fn server(mover: &Mover, body: &mut Body, seq: u32) {
        let _ = mover.step(body, &right(seq), 1.0 / 30.0);
    }

    #[test]
    fn one_input_per_step_is_predicted_exactly_and_the_wall_is_collided() {
        let mut p = Prediction::new(&welcome());
        p.map(&map());
        let mover = Mover::new(&map(), 0.5, 8.0, 60.0);
        let mut server_body = at_rest(10.0, 15.0);
        assert_eq!(p.snapshot(100, 0, Some((10.0, 15.0))), None);
        // Two inputs in flight, then one per tick, each acked one tick later.
        p.input(right(1));
        p.input(right(2));
        let (mut compared, mut collided, mut unsettled) = (0, 0, 0);
        for tick in 101..200u32 {
            let seq = tick - 100;
            server(&mover, &mut server_body, seq);
            match p.snapshot(tick, seq, Some((server_body.x, server_body.y))) {
                Some(Sample::Compared(e)) => {
                    assert_eq!(e, 0.0, "tick {tick}");
                    compared += 1;
                }
                Some(Sample::Collided(_)) => collided += 1,
                Some(Sample::Unsettled(_)) => unsettled += 1,
                other => panic!("{tick}: {other:?}"),
            }
            p.input(right(seq + 2));
        }
        assert!(compared > 50 && collided > 0, "{compared} {collided}");
        // The velocity at the first snapshot is unknown: anything up to 8 units/s in any
        // direction, up to 16 units/s from the guess. The steering (2 units/s a step)
        // brings the guess to 8 units/s in 4 steps, and any velocity there within 8 more.
        assert_eq!(unsettled, 12);
        let (x, _) = p.position().unwrap();
        assert!(x < 30.0 - 0.5, "stopped by the wall: {x}");
    }

    #[test]
    fn a_late_input_is_a_slip_and_death_restarts() {
        let mut p = Prediction::new(&welcome());
        p.map(&map());
        let mover = Mover::new(&map(), 0.5, 8.0, 60.0);
        let mut body = at_rest(5.0, 5.0);
        p.snapshot(10, 0, Some((5.0, 5.0)));
        for seq in 1..=3 {
            p.input(right(seq));
        }
        server(&mover, &mut body, 1);
        assert!(matches!(
            p.snapshot(11, 1, Some((body.x, body.y))),
            Some(Sample::Unsettled(_))
        ));
        // Input 2 arrived late: the server stepped input 1 again.
        server(&mover, &mut body, 1);
        let late = p.snapshot(12, 1, Some((body.x, body.y)));
        assert_eq!(late, None, "no new ack, nothing to compare");
        server(&mover, &mut body, 3);
        let Some(Sample::Slip(e)) = p.snapshot(13, 3, Some((body.x, body.y))) else {
            panic!()
        };
        assert!(e > 0.0);
        assert_eq!(p.snapshot(14, 3, None), None);
        assert_eq!(p.position(), None, "dead: no prediction");
    }

    /// Runs `p` against a server body, one input (right) per tick, each acked at once;
    /// returns the samples.
    fn play(p: &mut Prediction, server: &mut Body, ticks: std::ops::Range<u32>) -> Vec<Sample> {
        let mover = Mover::new(&map(), 0.5, 8.0, 60.0);
        let mut out = Vec::new();
        for tick in ticks {
            p.input(right(tick));
            let _ = mover.step(server, &right(tick), 1.0 / 30.0);
            out.extend(p.snapshot(tick, tick, Some((server.x, server.y))));
        }
        out
    }

    /// A player at rest at (`x`, `y`).
    fn at_rest(x: f32, y: f32) -> Body {
        Body {
            x,
            y,
            ..Body::default()
        }
    }

    /// A prediction that has run right at full speed long enough to be compared exactly.
    fn running() -> Prediction {
        let mut p = Prediction::new(&welcome());
        p.map(&map());
        p.snapshot(9, 9, Some((5.0, 5.0)));
        let samples = play(&mut p, &mut at_rest(5.0, 5.0), 10..40);
        assert!(matches!(samples.last(), Some(Sample::Compared(e)) if *e == 0.0));
        p
    }

    /// The server puts a respawned player at rest and moves it one step in the same tick.
    /// With the spawn point from the `respawn` event that first velocity is known, so
    /// the very next step is compared, and exact.
    #[test]
    fn after_a_respawn_the_velocity_is_known_and_the_next_step_is_exact() {
        let mut p = running();
        // Killed at full speed, respawned at (10, 20).
        assert_eq!(p.snapshot(40, 39, None), None);
        p.respawned((10.0, 20.0));
        let after = play(&mut p, &mut at_rest(10.0, 20.0), 41..45);
        assert_eq!(after.first(), Some(&Sample::Compared(0.0)), "{after:?}");
        assert!(
            after.iter().all(|s| *s == Sample::Compared(0.0)),
            "{after:?}"
        );
    }

    /// Without knowing where the player respawned, the velocity it had before dying is
    /// no guide: the steps after the respawn are never compared against it (this is what
    /// made fighters' first steps after a respawn look a quarter of a step off).
    #[test]
    fn a_stale_velocity_is_never_trusted_because_a_step_settles_from_it() {
        let mut p = running();
        p.restart();
        for s in play(&mut p, &mut at_rest(10.0, 20.0), 40..60) {
            assert!(
                !matches!(s, Sample::Compared(e) if e != 0.0),
                "a comparison from a guessed velocity: {s:?}"
            );
        }
    }

    /// A respawn snapshot that is not one step from the spawn (a snapshot in between was
    /// never delivered) gives no velocity.
    #[test]
    fn a_respawn_seen_late_is_not_taken_for_one_step_from_rest() {
        let mut p = Prediction::new(&welcome());
        p.map(&map());
        p.respawned((10.0, 20.0));
        let mover = Mover::new(&map(), 0.5, 8.0, 60.0);
        let mut server = at_rest(10.0, 20.0);
        p.input(right(1));
        p.input(right(2));
        let _ = mover.step(&mut server, &right(1), 1.0 / 30.0);
        let _ = mover.step(&mut server, &right(2), 1.0 / 30.0);
        assert_eq!(p.snapshot(2, 2, Some((server.x, server.y))), None);
        p.input(right(3));
        let _ = mover.step(&mut server, &right(3), 1.0 / 30.0);
        assert!(
            matches!(
                p.snapshot(3, 3, Some((server.x, server.y))),
                Some(Sample::Unsettled(_))
            ),
            "two steps are not one: the velocity is a guess"
        );
    }

    #[test]
    fn nothing_is_predicted_or_compared_between_rounds() {
        let mut p = Prediction::new(&welcome());
        p.map(&map());
        p.snapshot(10, 0, Some((5.0, 5.0)));
        p.round_over();
        // The server holds everyone still in the intermission; inputs are still sent.
        for seq in 1..=3 {
            p.input(right(seq));
            let shown = p.snapshot(10 + seq, seq, Some((5.0, 5.0)));
            assert_eq!(shown, None, "input {seq} compared in the intermission");
            assert_eq!(p.position(), None);
        }
        p.round_started();
        p.snapshot(20, 3, Some((7.0, 7.0)));
        assert_eq!(
            p.position(),
            Some((7.0, 7.0)),
            "predicting again from the new round"
        );
    }

    #[test]
    fn without_the_movement_keys_nothing_is_predicted() {
        let mut w = welcome();
        w.info.remove("acceleration");
        let mut p = Prediction::new(&w);
        p.map(&map());
        p.input(right(1));
        assert_eq!(p.snapshot(1, 1, Some((1.0, 1.0))), None);
        assert_eq!(p.position(), None);
    }

    #[test]
    fn a_tuning_event_predicts_with_the_new_rules() {
        let mut w = welcome();
        w.info.remove("acceleration");
        let mut p = Prediction::new(&w);
        p.map(&map());
        p.tuning(&TuningInfo {
            player_radius: 0.5,
            max_hp: 100,
            max_speed: 16.0,
            acceleration: 600.0,
        });
        let mover = Mover::new(&map(), 0.5, 16.0, 600.0);
        let mut body = at_rest(5.0, 5.0);
        p.snapshot(10, 0, Some((5.0, 5.0)));
        p.input(right(1));
        server(&mover, &mut body, 1);
        assert!(p.snapshot(11, 1, Some((body.x, body.y))).is_some());
        assert_eq!(p.position(), Some((body.x, body.y)), "the new speed");
    }
}
