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
//!   may not be the server's (v1 rows carry no velocity): after a slip or a collision,
//!   until a step's steering reaches the input's velocity, which no longer depends on
//!   the past;
//! - *compared*: none of these. The prediction runs the server's own code from the
//!   server's state with the server's inputs, so anything but 0 here is a bug.
//!
//! Deaths, respawns and round starts restart the prediction and are not compared; nothing
//! is predicted during the intermission between a round's end and the next start.
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
}

/// The snapshot the prediction was last reset to.
#[derive(Debug, Clone, Copy)]
struct Base {
    tick: u32,
    ack: u32,
    /// The velocity the prediction gave the server's position (v1 rows carry none).
    velocity: (f32, f32),
    /// That velocity is known to be the server's.
    trusted: bool,
}

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
    }

    /// The round ended: nobody moves until the next round starts.
    pub fn round_over(&mut self) {
        self.frozen = true;
        self.restart();
    }

    /// A round started (everyone respawned): predict afresh from the next snapshot.
    pub fn round_started(&mut self) {
        self.frozen = false;
        self.restart();
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
        });
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
        let was_trusted = previous.is_some_and(|b| b.trusted);
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
        let trusted =
            acked.is_some_and(|p| one_to_one && !p.step.blocked && (was_trusted || p.step.settled));
        // The server's position; its velocity is not in v1 rows, so the predicted one
        // (the previous base's when the server stepped the same input again).
        let velocity = match (acked, previous) {
            (Some(p), _) => (p.body.vx, p.body.vy),
            (None, Some(b)) => b.velocity,
            (None, None) => (0.0, 0.0),
        };
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
            trusted,
        });
        self.replay();
        sample
    }

    fn replay(&mut self) {
        let Some(mover) = &self.mover else { return };
        for p in &mut self.pending {
            p.step = mover.step(&mut self.body, &p.input, self.dt);
            p.body = self.body;
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
        let mut server_body = Body {
            x: 10.0,
            y: 15.0,
            ..Body::default()
        };
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
        // The velocity at the first snapshot is unknown until the steering reaches
        // 8 units/s: 4 steps at 60 units/s² from a standstill.
        assert_eq!(unsettled, 4);
        let (x, _) = p.position().unwrap();
        assert!(x < 30.0 - 0.5, "stopped by the wall: {x}");
    }

    #[test]
    fn a_late_input_is_a_slip_and_death_restarts() {
        let mut p = Prediction::new(&welcome());
        p.map(&map());
        let mover = Mover::new(&map(), 0.5, 8.0, 60.0);
        let mut body = Body {
            x: 5.0,
            y: 5.0,
            ..Body::default()
        };
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
        let mut body = Body {
            x: 5.0,
            y: 5.0,
            ..Body::default()
        };
        p.snapshot(10, 0, Some((5.0, 5.0)));
        p.input(right(1));
        server(&mover, &mut body, 1);
        assert!(p.snapshot(11, 1, Some((body.x, body.y))).is_some());
        assert_eq!(p.position(), Some((body.x, body.y)), "the new speed");
    }
}
