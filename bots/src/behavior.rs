//! What a bot does with its controls: pure decisions from what it has seen.
//!
//! `idle` sends zero-move inputs, `wander` walks in a random direction that changes about
//! every second, `fight` ([`Fighter`]) chases, leads and shoots the nearest living enemy
//! where it is drawn, and `strafe` ([`Strafe`]) runs sideways to the nearest enemy,
//! turning back at random: a target for fighters. Time comes in as a parameter and
//! randomness from a seeded [`Rng`], so every decision is reproducible in a unit test.
//! Must not do IO.

use std::f32::consts::TAU;
use std::time::{Duration, Instant};

use rallypoint_protocol::rng::SplitMix64 as Rng;

use crate::sight::Drawn;

/// One sample of a bot's controls: exactly the fields of an `input` message.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Control {
    /// Move direction, x.
    pub mx: f32,
    /// Move direction, y (grows downwards).
    pub my: f32,
    /// Aim angle, radians.
    pub aim: f32,
    /// Trigger held.
    pub fire: bool,
    /// The tick the bot was drawing the others at (lag compensation), when it draws them.
    pub view: Option<u32>,
}

/// Random walk: a new heading every 0.7–1.3 s (randomised so bots do not turn in step).
#[derive(Debug, Clone)]
pub struct Wander {
    heading: f32,
    next_turn: Option<Instant>,
}

impl Default for Wander {
    fn default() -> Self {
        Wander::new()
    }
}

impl Wander {
    /// A walker that picks its first heading on the first call.
    pub fn new() -> Wander {
        Wander {
            heading: 0.0,
            next_turn: None,
        }
    }

    /// The controls at `now`.
    pub fn control(&mut self, now: Instant, rng: &mut Rng) -> Control {
        if self.next_turn.is_none_or(|t| now >= t) {
            self.heading = rng.range(0.0, f64::from(TAU)) as f32;
            self.next_turn = Some(now + Duration::from_secs_f64(rng.range(0.7, 1.3)));
        }
        Control {
            mx: self.heading.cos(),
            my: self.heading.sin(),
            aim: self.heading,
            fire: false,
            view: None,
        }
    }
}

/// Closer than this, a fighter circles its target instead of running into it.
const KEEP_DISTANCE: f32 = 6.0;
/// A fighter only pulls the trigger within this range: farther, a strafing target is
/// anywhere by the time the shot arrives (12 units are 0.4 s of flight at the default
/// 30 units/s).
const FIRE_RANGE: f32 = 12.0;
/// A fighter taps the trigger, one shot per tap, at most this often: a little over the
/// default weapon's cooldown (0.25 s), so every tap is a shot and shots can be counted.
pub const SHOT_PERIOD: Duration = Duration::from_millis(350);
/// A health drop of a player the fighter shot at within this long is its hit: the
/// longest flight (1.5 s by default) plus the round trip.
const HIT_WINDOW: Duration = Duration::from_secs(2);

/// Turns a fighter considers when running straight at (or around) its target would
/// push into a wall: 60° and 120° either side.
const DETOURS: [f32; 4] = [1.047, -1.047, 2.094, -2.094];
/// Radius a fighter keeps its line of fire clear by (the default projectile's 0.15,
/// with a margin).
pub const LINE_OF_FIRE_RADIUS: f32 = 0.2;

/// What a fighter needs to know about the ground it stands on: its client's copy of the
/// map and movement rules (the bots' prediction).
pub trait Ground {
    /// Where the player will stand once a move of `(mx, my)` is made, and whether a wall
    /// or the map's edge will stop it.
    fn after(&self, mx: f32, my: f32) -> ((f32, f32), bool);
    /// Whether a shot from `from` to `to` meets no wall.
    fn clear(&self, from: (f32, f32), to: (f32, f32)) -> bool;
}

/// A fight decision: the controls, and whether they fire a shot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fight {
    /// The controls to send.
    pub control: Control,
    /// This input taps the trigger.
    pub shot: bool,
}

/// Fights the nearest living enemy as a player at a screen does: it sees the others
/// where its client draws them (interpolated, in the past: see [`crate::sight`]), stands
/// where its own prediction puts it, moves towards (or, once close, around) the target,
/// turning aside from walls, leads it by its drawn velocity and taps the trigger when
/// the line of fire is clear, telling the server which tick it was looking at (`view`)
/// so a lag-compensating server judges the shot against that.
#[derive(Debug, Default)]
pub struct Fighter {
    next_shot: Option<Instant>,
    /// The weapon's projectile speed, learnt from the projectiles seen (no lead before).
    projectile_speed: Option<f32>,
    /// The player last shot at, and when.
    shot_at: Option<(u32, Instant)>,
    /// The detour in use (an index into [`DETOURS`]), kept while the wall is in the way
    /// so the fighter follows it instead of dithering.
    detour: Option<usize>,
}

impl Fighter {
    /// A fighter that has not fired yet.
    pub fn new() -> Fighter {
        Fighter::default()
    }

    /// A projectile row was seen: its speed is the weapon's.
    pub fn saw_projectile(&mut self, vx: f32, vy: f32) {
        let speed = vx.hypot(vy);
        if speed.is_finite() && speed > 0.0 {
            self.projectile_speed = Some(speed);
        }
    }

    /// The decision at `now` for player `me` standing at `own` on `ground`, with the
    /// others as drawn at tick `view` (the shot leaves from where this input's move takes
    /// it). `None` when there is nobody alive to fight: the caller decides what to do
    /// meanwhile (wander).
    pub fn decide(
        &mut self,
        now: Instant,
        me: u32,
        own: (f32, f32),
        drawn: &[Drawn],
        view: u32,
        ground: &impl Ground,
    ) -> Option<Fight> {
        let target = drawn
            .iter()
            .filter(|d| d.id != me && d.alive)
            .min_by(|a, b| {
                let da = (a.x - own.0).hypot(a.y - own.1);
                let db = (b.x - own.0).hypot(b.y - own.1);
                da.total_cmp(&db)
            })?;
        let (dx, dy) = (target.x - own.0, target.y - own.1);
        let dist = dx.hypot(dy);
        if !dist.is_finite() || dist < 1e-3 {
            return None;
        }
        let (ux, uy) = (dx / dist, dy / dist);
        let (wx, wy) = if dist > KEEP_DISTANCE {
            (ux, uy)
        } else {
            (-uy, ux)
        };
        let ((mx, my), from) = self.route(own, (wx, wy), ground);
        let (ax, ay) = self.lead(from, target);
        let shot = dist <= FIRE_RANGE
            && self.next_shot.is_none_or(|t| now >= t)
            && ground.clear(from, (target.x, target.y));
        if shot {
            self.next_shot = Some(now + SHOT_PERIOD);
            self.shot_at = Some((target.id, now));
        }
        Some(Fight {
            control: Control {
                mx,
                my,
                aim: (ay - from.1).atan2(ax - from.0),
                fire: shot,
                view: Some(view),
            },
            shot,
        })
    }

    /// The move towards `want` (a unit vector) and where it leads: straight on while that
    /// makes headway (sliding along a wall is headway), else the detour in use while it
    /// does, else the detour that gets farthest.
    fn route(
        &mut self,
        own: (f32, f32),
        want: (f32, f32),
        ground: &impl Ground,
    ) -> ((f32, f32), (f32, f32)) {
        let go = |m: (f32, f32)| {
            let (at, _) = ground.after(m.0, m.1);
            (m, at, (at.0 - own.0).hypot(at.1 - own.1))
        };
        let turned = |i: usize| {
            let (sin, cos) = DETOURS[i].sin_cos();
            (want.0 * cos - want.1 * sin, want.0 * sin + want.1 * cos)
        };
        let straight = go(want);
        let detours: [_; DETOURS.len()] = std::array::from_fn(|i| go(turned(i)));
        // The farthest, the smallest turn on a tie.
        let best =
            (1..DETOURS.len()).fold(0, |b, i| if detours[i].2 > detours[b].2 { i } else { b });
        let farthest = detours[best].2.max(straight.2);
        let makes_headway = |d: f32| d >= farthest * 0.5;
        if makes_headway(straight.2) {
            self.detour = None;
            return (straight.0, straight.1);
        }
        let i = self
            .detour
            .filter(|&i| makes_headway(detours[i].2))
            .unwrap_or(best);
        self.detour = Some(i);
        (detours[i].0, detours[i].1)
    }

    /// Where to aim so a projectile meets `target` if it keeps its drawn velocity.
    fn lead(&self, own: (f32, f32), target: &Drawn) -> (f32, f32) {
        let Some(speed) = self.projectile_speed else {
            return (target.x, target.y);
        };
        let mut at = (target.x, target.y);
        for _ in 0..4 {
            let t = (at.0 - own.0).hypot(at.1 - own.1) / speed;
            at = (target.x + target.vx * t, target.y + target.vy * t);
        }
        at
    }

    /// Whether a health drop of player `id` seen at `now` is this fighter's hit: it shot
    /// at `id` within the hit window. Exact when nobody else shoots at `id` (one fighter
    /// per strafer in a room); in a brawl another's hit on the same target counts too.
    pub fn claims_hit(&self, id: u32, now: Instant) -> bool {
        self.shot_at
            .is_some_and(|(target, at)| target == id && now.duration_since(at) <= HIT_WINDOW)
    }
}

/// Seconds a strafer keeps one direction, drawn per leg.
const STRAFE_LEG_S: (f64, f64) = (0.5, 1.5);

/// A strafing target: runs sideways to the nearest enemy at full speed, turning back
/// every 0.5–1.5 s (randomised so a shooter cannot learn the rhythm), facing the enemy,
/// never firing.
#[derive(Debug, Clone, Default)]
pub struct Strafe {
    /// +1 or −1 along the sideways axis; 0 before the first leg.
    side: f32,
    next_turn: Option<Instant>,
}

impl Strafe {
    /// A strafer that picks its first leg on the first call.
    pub fn new() -> Strafe {
        Strafe::default()
    }

    /// The controls at `now` for a player at `own` (if known) facing `enemy` (if any).
    pub fn control(
        &mut self,
        now: Instant,
        rng: &mut Rng,
        own: Option<(f32, f32)>,
        enemy: Option<(f32, f32)>,
    ) -> Control {
        if self.next_turn.is_none_or(|t| now >= t) {
            self.side = if self.side == 0.0 {
                if rng.below(2) == 0 { 1.0 } else { -1.0 }
            } else {
                -self.side
            };
            let leg = rng.range(STRAFE_LEG_S.0, STRAFE_LEG_S.1);
            self.next_turn = Some(now + Duration::from_secs_f64(leg));
        }
        let facing = match (own, enemy) {
            (Some(o), Some(e)) if (e.0 - o.0).hypot(e.1 - o.1) > 1e-3 => {
                (e.1 - o.1).atan2(e.0 - o.0)
            }
            _ => 0.0,
        };
        let sideways = facing + std::f32::consts::FRAC_PI_2;
        Control {
            mx: self.side * sideways.cos(),
            my: self.side * sideways.sin(),
            aim: facing,
            fire: false,
            view: None,
        }
    }
}

/// The nearest living player other than `me` in `drawn`.
pub fn nearest_enemy(me: u32, own: (f32, f32), drawn: &[Drawn]) -> Option<(f32, f32)> {
    drawn
        .iter()
        .filter(|d| d.id != me && d.alive)
        .map(|d| (d.x, d.y))
        .min_by(|a, b| {
            let da = (a.0 - own.0).hypot(a.1 - own.1);
            let db = (b.0 - own.0).hypot(b.1 - own.1);
            da.total_cmp(&db)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Floor where a move goes `stride` its way (from `at`), or nowhere where `wall`
    /// says; `cover` blocks every line of fire.
    struct Floor {
        at: (f32, f32),
        stride: f32,
        wall: fn(f32, f32) -> bool,
        cover: bool,
    }

    impl Ground for Floor {
        fn after(&self, mx: f32, my: f32) -> ((f32, f32), bool) {
            if (self.wall)(mx, my) {
                (self.at, true)
            } else {
                let s = self.stride;
                ((self.at.0 + mx * s, self.at.1 + my * s), false)
            }
        }
        fn clear(&self, _: (f32, f32), _: (f32, f32)) -> bool {
            !self.cover
        }
    }

    /// Standing on open floor (the moves' effect left out, for exact aims).
    const OPEN: Floor = Floor {
        at: (0.0, 0.0),
        stride: 0.0,
        wall: |_, _| false,
        cover: false,
    };

    fn drawn(id: u32, x: f32, y: f32, alive: bool) -> Drawn {
        Drawn {
            id,
            x,
            y,
            vx: 0.0,
            vy: 0.0,
            alive,
        }
    }

    #[test]
    fn fighter_chases_leads_and_taps_at_the_nearest_living_enemy() {
        let t0 = Instant::now();
        let mut f = Fighter::new();
        let others = [
            drawn(1, 0.0, 0.0, true),
            drawn(2, 11.0, 0.0, true),
            drawn(3, 0.0, 10.0, false),
            drawn(4, 0.0, -30.0, true),
        ];
        let d = f.decide(t0, 1, (0.0, 0.0), &others, 77, &OPEN).unwrap();
        let c = d.control;
        assert!((c.mx - 1.0).abs() < 1e-6 && c.my.abs() < 1e-6);
        assert!(c.aim.abs() < 1e-6);
        assert!(c.fire && d.shot);
        assert_eq!(c.view, Some(77), "says what it was looking at");
        assert!(f.claims_hit(2, t0 + Duration::from_secs(1)));
        assert!(!f.claims_hit(4, t0 + Duration::from_secs(1)));
        assert!(!f.claims_hit(2, t0 + Duration::from_secs(3)));
        // One tap per period: the next decisions move and aim but do not fire.
        let d = f.decide(t0 + SHOT_PERIOD / 2, 1, (0.0, 0.0), &others, 78, &OPEN);
        assert!(!d.unwrap().shot);
        let d = f.decide(t0 + SHOT_PERIOD, 1, (0.0, 0.0), &others, 79, &OPEN);
        assert!(d.unwrap().shot);
        // Out of range: chases without firing.
        let far = [drawn(2, 30.0, 0.0, true)];
        let d = f.decide(t0 + SHOT_PERIOD * 3, 1, (0.0, 0.0), &far, 80, &OPEN);
        assert!(!d.unwrap().shot);
        // Close: circle instead of ramming; aim follows +y as a positive angle.
        let near = [drawn(2, 0.0, 3.0, true)];
        let c = f
            .decide(t0, 1, (0.0, 0.0), &near, 80, &OPEN)
            .unwrap()
            .control;
        assert!((c.aim - std::f32::consts::FRAC_PI_2).abs() < 1e-6);
        assert!((c.mx + 1.0).abs() < 1e-6 && c.my.abs() < 1e-6);
        // A moving target is led once the projectile speed is known: 3 units away
        // across, running 8 units/s down, with 30 units/s shots.
        f.saw_projectile(30.0, 0.0);
        let runner = [Drawn {
            vy: 8.0,
            ..drawn(2, 3.0, 0.0, true)
        }];
        let c = f
            .decide(t0, 1, (0.0, 0.0), &runner, 81, &OPEN)
            .unwrap()
            .control;
        let (x, y) = (c.aim.cos(), c.aim.sin());
        let t = 3.0 / (30.0f32 * 30.0 - 8.0 * 8.0).sqrt();
        assert!(
            (y / x - 8.0 * t / 3.0).abs() < 1e-3,
            "aims ahead: {}",
            c.aim
        );
        // From where its move takes it: one unit up, it aims down-right.
        let up = Floor {
            at: (0.0, -1.0),
            ..OPEN
        };
        let c = f.decide(t0, 1, (0.0, 0.0), &[drawn(2, 3.0, 0.0, true)], 82, &up);
        assert!(c.unwrap().control.aim > 0.3);
        // A wall straight ahead: it turns 60° aside, and keeps to that side. Cover in
        // the line of fire: no shot.
        let ahead = Floor {
            stride: 0.25,
            wall: |mx, _| mx > 0.99,
            cover: true,
            ..OPEN
        };
        for i in 0..3 {
            let d = f.decide(
                t0 + SHOT_PERIOD * (9 + i),
                1,
                (0.0, 0.0),
                &others,
                83,
                &ahead,
            );
            let d = d.unwrap();
            assert!((d.control.mx - 0.5).abs() < 1e-3 && d.control.my.abs() > 0.86);
            assert!(!d.shot);
        }
    }

    #[test]
    fn nobody_to_fight() {
        let t0 = Instant::now();
        let mut f = Fighter::new();
        let alone = [drawn(1, 0.0, 0.0, true)];
        assert_eq!(f.decide(t0, 1, (0.0, 0.0), &alone, 0, &OPEN), None);
        let away = [drawn(1, 0.0, 0.0, true), drawn(2, 1.0, 0.0, false)];
        assert_eq!(f.decide(t0, 1, (0.0, 0.0), &away, 0, &OPEN), None);
        assert_eq!(nearest_enemy(1, (0.0, 0.0), &away), None);
    }

    #[test]
    fn a_strafer_runs_sideways_to_its_enemy_and_turns_back() {
        let t0 = Instant::now();
        let mut rng = Rng::new(4);
        let mut s = Strafe::new();
        let enemy = Some((10.0, 0.0));
        let a = s.control(t0, &mut rng, Some((0.0, 0.0)), enemy);
        assert!(
            a.mx.abs() < 1e-6 && (a.my.abs() - 1.0).abs() < 1e-6,
            "{a:?}"
        );
        assert!(a.aim.abs() < 1e-6 && !a.fire);
        assert_eq!(
            s.control(
                t0 + Duration::from_millis(450),
                &mut rng,
                Some((0.0, 0.0)),
                enemy
            ),
            a
        );
        let b = s.control(
            t0 + Duration::from_millis(1550),
            &mut rng,
            Some((0.0, 0.0)),
            enemy,
        );
        assert!((b.my + a.my).abs() < 1e-6, "turned back: {a:?} {b:?}");
    }

    #[test]
    fn wander_turns_about_every_second() {
        let mut rng = Rng::new(3);
        let mut w = Wander::new();
        let t0 = Instant::now();
        let a = w.control(t0, &mut rng);
        assert!(((a.mx * a.mx + a.my * a.my) - 1.0).abs() < 1e-5);
        assert_eq!(w.control(t0 + Duration::from_millis(500), &mut rng), a);
        assert_ne!(w.control(t0 + Duration::from_millis(1400), &mut rng), a);
    }
}
