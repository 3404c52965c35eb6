//! What a bot sees of the other players, drawn as a game client draws them: the recent
//! snapshots' player rows, and the world between two of them at a render time ~100 ms
//! behind the snapshot stream (the JavaScript SDK's default interpolation delay), so
//! that 30 Hz updates move smoothly and a shot can be aimed where the target is drawn.
//!
//! The stream clock follows the SDK's (`protocol/js/src/clock.js`): the tick of the
//! snapshots as they arrive, anchored on the earliest arrivals and drifting slowly
//! otherwise. Time is a parameter; must not do IO. Buffers are reused from snapshot to
//! snapshot: nothing is allocated once the ring is full.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rallypoint_protocol::entity::{Entity, PLAYER_AWAY, PLAYER_DEAD};

/// How far behind the snapshot stream the world is drawn.
pub const INTERPOLATION_DELAY: Duration = Duration::from_millis(100);
/// Snapshots kept: a second at 30 Hz, far more than interpolation needs.
const KEPT: usize = 32;
/// A move longer than this between two snapshots is a respawn, not a run: not glided.
const TELEPORT_DISTANCE: f32 = 3.0;
/// How much of its error the stream clock corrects per snapshot (the SDK's value).
const STREAM_DRIFT: f64 = 0.02;

/// One player in one snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    /// Wire id.
    pub id: u32,
    /// Position.
    pub x: f32,
    /// Position.
    pub y: f32,
    /// Health.
    pub hp: u16,
    /// Alive and connected.
    pub alive: bool,
}

/// A player as drawn at a render time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drawn {
    /// Wire id.
    pub id: u32,
    /// Interpolated position.
    pub x: f32,
    /// Interpolated position.
    pub y: f32,
    /// Velocity between the two snapshots drawn from, units per second.
    pub vx: f32,
    /// Velocity, units per second.
    pub vy: f32,
    /// Alive and connected (as of the older snapshot).
    pub alive: bool,
}

#[derive(Debug, Default)]
struct Frame {
    tick: u32,
    players: Vec<Seen>,
}

/// See the module docs.
#[derive(Debug)]
pub struct Sight {
    tick_rate: f64,
    frames: VecDeque<Frame>,
    /// The stream clock: tick `.0` arrived at `.1`.
    stream: Option<(f64, Instant)>,
}

impl Sight {
    /// Nothing seen yet, in a room of `tick_rate` ticks per second.
    pub fn new(tick_rate: u32) -> Sight {
        Sight {
            tick_rate: f64::from(tick_rate.max(1)),
            frames: VecDeque::with_capacity(KEPT),
            stream: None,
        }
    }

    /// A snapshot of `tick` arrived at `now` with these entities. Returns the players whose
    /// health dropped since the previous snapshot (a hit, or the kill), in `drops`.
    pub fn push(&mut self, tick: u32, ents: &[Entity], now: Instant, drops: &mut Vec<u32>) {
        drops.clear();
        self.clock(tick, now);
        if self.frames.back().is_some_and(|f| f.tick >= tick) {
            return;
        }
        let mut frame = if self.frames.len() >= KEPT {
            self.frames.pop_front().unwrap_or_default()
        } else {
            Frame::default()
        };
        frame.tick = tick;
        frame.players.clear();
        frame.players.extend(ents.iter().filter_map(|e| match *e {
            Entity::Player {
                id,
                x,
                y,
                hp,
                flags,
                ..
            } => Some(Seen {
                id,
                x,
                y,
                hp,
                alive: flags & (PLAYER_DEAD | PLAYER_AWAY) == 0,
            }),
            _ => None,
        }));
        if let Some(prev) = self.frames.back() {
            for p in &frame.players {
                if prev
                    .players
                    .iter()
                    .any(|q| q.id == p.id && q.alive && p.hp < q.hp)
                {
                    drops.push(p.id);
                }
            }
        }
        self.frames.push_back(frame);
    }

    fn clock(&mut self, tick: u32, now: Instant) {
        let tick = f64::from(tick);
        match self.stream_tick(now) {
            Some(predicted) if tick <= predicted && tick >= predicted - self.tick_rate => {
                if let Some((base, _)) = &mut self.stream {
                    *base += (tick - predicted) * STREAM_DRIFT;
                }
            }
            _ => self.stream = Some((tick, now)),
        }
    }

    /// The tick of the snapshot stream at `now` (fractional), once a snapshot arrived.
    pub fn stream_tick(&self, now: Instant) -> Option<f64> {
        let (base, at) = self.stream?;
        let since = now.saturating_duration_since(at).as_secs_f64();
        Some(base + since * self.tick_rate)
    }

    /// The render time at `now`: the stream tick less the interpolation delay.
    pub fn render_tick(&self, now: Instant) -> Option<f64> {
        let delay = INTERPOLATION_DELAY.as_secs_f64() * self.tick_rate;
        Some(self.stream_tick(now)? - delay)
    }

    /// The newest snapshot's view of player `id`.
    pub fn latest(&self, id: u32) -> Option<Seen> {
        self.frames
            .back()?
            .players
            .iter()
            .find(|p| p.id == id)
            .copied()
    }

    /// The players as drawn at render tick `at`, into `out` (cleared first): between the
    /// two snapshots around it, or the nearest one when `at` is outside what is kept.
    pub fn draw(&self, at: f64, out: &mut Vec<Drawn>) {
        out.clear();
        let Some(newest) = self.frames.back() else {
            return;
        };
        let after = self
            .frames
            .iter()
            .position(|f| f64::from(f.tick) > at)
            .unwrap_or(self.frames.len() - 1);
        let (a, b) = match after {
            0 => (&self.frames[0], &self.frames[0]),
            i if f64::from(self.frames[i].tick) > at => (&self.frames[i - 1], &self.frames[i]),
            _ => (newest, newest),
        };
        let span = f64::from(b.tick.wrapping_sub(a.tick));
        let t = if span > 0.0 {
            ((at - f64::from(a.tick)) / span).clamp(0.0, 1.0) as f32
        } else {
            0.0
        };
        let per_s = if span > 0.0 {
            (self.tick_rate / span) as f32
        } else {
            0.0
        };
        for p in &a.players {
            let drawn = match b.players.iter().find(|q| q.id == p.id) {
                Some(q) if (q.x - p.x).hypot(q.y - p.y) <= TELEPORT_DISTANCE => Drawn {
                    id: p.id,
                    x: p.x + (q.x - p.x) * t,
                    y: p.y + (q.y - p.y) * t,
                    vx: (q.x - p.x) * per_s,
                    vy: (q.y - p.y) * per_s,
                    alive: p.alive,
                },
                _ => Drawn {
                    id: p.id,
                    x: p.x,
                    y: p.y,
                    vx: 0.0,
                    vy: 0.0,
                    alive: p.alive,
                },
            };
            out.push(drawn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn player(id: u32, x: f32, hp: u16) -> Entity {
        Entity::Player {
            id,
            x,
            y: 10.0,
            aim: 0.0,
            hp,
            score: 0,
            flags: if hp == 0 { PLAYER_DEAD } else { 0 },
        }
    }

    #[test]
    fn players_are_drawn_between_snapshots_a_delay_behind_the_stream() {
        let t0 = Instant::now();
        let tick = Duration::from_secs_f64(1.0 / 30.0);
        let mut sight = Sight::new(30);
        let mut drops = Vec::new();
        for i in 0..10u32 {
            // Player 2 runs 8 units/s to the right; player 3 respawns far away at tick 5.
            let ents = [
                player(2, 8.0 * i as f32 / 30.0, 100),
                player(3, if i < 5 { 0.0 } else { 20.0 }, 100),
            ];
            sight.push(100 + i, &ents, t0 + tick * i, &mut drops);
        }
        let now = t0 + tick * 9 + tick / 2;
        let stream = sight.stream_tick(now).unwrap();
        assert!((stream - 109.5).abs() < 1e-6, "{stream}");
        let render = sight.render_tick(now).unwrap();
        assert!(
            (render - 106.5).abs() < 1e-6,
            "three ticks behind: {render}"
        );
        let mut drawn = Vec::new();
        sight.draw(render, &mut drawn);
        let runner = drawn.iter().find(|d| d.id == 2).unwrap();
        assert!((runner.x - 8.0 * 6.5 / 30.0).abs() < 1e-5, "{runner:?}");
        assert!((runner.vx - 8.0).abs() < 1e-3 && runner.vy == 0.0);
        sight.draw(104.5, &mut drawn);
        let jumper = drawn.iter().find(|d| d.id == 3).unwrap();
        assert_eq!((jumper.x, jumper.vx), (0.0, 0.0), "a respawn is not glided");
        sight.draw(500.0, &mut drawn);
        assert!(
            (drawn[0].x - 8.0 * 9.0 / 30.0).abs() < 1e-5,
            "past the newest"
        );
    }

    #[test]
    fn health_drops_are_reported_once_and_late_arrivals_do_not_move_the_clock() {
        let t0 = Instant::now();
        let mut sight = Sight::new(30);
        let mut drops = Vec::new();
        sight.push(1, &[player(2, 0.0, 100)], t0, &mut drops);
        sight.push(
            2,
            &[player(2, 0.0, 75)],
            t0 + Duration::from_millis(33),
            &mut drops,
        );
        assert_eq!(drops, [2]);
        sight.push(
            3,
            &[player(2, 0.0, 75)],
            t0 + Duration::from_millis(66),
            &mut drops,
        );
        assert!(drops.is_empty());
        sight.push(
            4,
            &[player(2, 0.0, 0)],
            t0 + Duration::from_millis(100),
            &mut drops,
        );
        assert_eq!(drops, [2], "the killing hit counts");
        sight.push(
            5,
            &[player(2, 5.0, 100)],
            t0 + Duration::from_millis(133),
            &mut drops,
        );
        assert!(drops.is_empty(), "healed by a respawn");
        // A snapshot arriving 40 ms late (tick 6 at +240 ms instead of +200) only
        // nudges the stream clock.
        let before = sight.stream_tick(t0 + Duration::from_millis(240)).unwrap();
        sight.push(6, &[], t0 + Duration::from_millis(240), &mut drops);
        let after = sight.stream_tick(t0 + Duration::from_millis(240)).unwrap();
        assert!(after < before && before - after < 0.1, "{before} → {after}");
    }
}
