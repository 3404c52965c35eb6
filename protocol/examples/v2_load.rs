//! v1 against v2 without a server: a deterministic simulation of the load issue 13 is
//! measured at (one room of wandering players, a snapshot every tick), printing bytes per
//! player per second and encoder CPU per player-tick for both protocols.
//!
//! ```text
//! cargo run --release -p rallypoint-protocol --example v2_load \
//!     [-- --hz 20 --seconds 30 --players 100 --map courtyard|field|field-radius]
//! ```
//!
//! Players move like the bots' `wander` (a new heading every 0.7–1.3 s, aim = heading)
//! under the arena's locomotion (max speed 8, acceleration 60, sliding along walls), on
//! the courtyard (40 × 30, its walls and pickups as in `assets/maps/courtyard.toml`) and
//! on a 200 × 150 field with scattered cover, there once with everything in view and once
//! with a 32-unit view radius. Every v2 frame is decoded by a client that checks every
//! state hash; a desync fails the run. Bytes are whole messages (header and body, no
//! WebSocket framing); CPU is the room's side only: v1 encodes the rows once and writes
//! each player's frame, v2 runs `begin_tick` and writes each player's frame from
//! `encode_for`; each is the fastest of five runs.

use std::f64::consts::TAU;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rallypoint_protocol::Encoding;
use rallypoint_protocol::codec::{encode_rows, write_snap};
use rallypoint_protocol::entity::{Entity, PICKUP_ACTIVE, arena_schema};
use rallypoint_protocol::rng::SplitMix64;
use rallypoint_protocol::rows::Rows;
use rallypoint_protocol::v2::{
    ClientState, Encoder, EncoderConfig, FrameBytes, FrameKind, Interest, Member, View,
};

const RADIUS: f64 = 0.5;
const MAX_SPEED: f64 = 8.0;
const ACCELERATION: f64 = 60.0;

/// An axis-aligned wall: `[x, y, w, h]`.
type Wall = [f64; 4];

struct Map {
    name: &'static str,
    w: f64,
    h: f64,
    walls: Vec<Wall>,
    pickups: Vec<(f64, f64)>,
    interest: Interest,
}

fn courtyard() -> Map {
    let walls = [
        [0, 0, 40, 1],
        [0, 29, 40, 1],
        [0, 1, 1, 28],
        [39, 1, 1, 28],
        [18, 13, 4, 4],
        [8, 6, 6, 1],
        [8, 7, 1, 3],
        [26, 6, 6, 1],
        [31, 7, 1, 3],
        [8, 23, 6, 1],
        [8, 20, 1, 3],
        [26, 23, 6, 1],
        [31, 20, 1, 3],
        [18, 5, 4, 1],
        [18, 24, 4, 1],
        [12, 13, 1, 4],
        [27, 13, 1, 4],
        [4, 14, 2, 2],
        [34, 14, 2, 2],
    ];
    Map {
        name: "courtyard 40x30",
        w: 40.0,
        h: 30.0,
        walls: walls.iter().map(|w| w.map(f64::from)).collect(),
        pickups: vec![(20.0, 10.0), (20.0, 20.0), (9.0, 15.0), (31.0, 15.0)],
        interest: Interest::default(),
    }
}

fn field(radius: f32) -> Map {
    let mut walls: Vec<Wall> = vec![
        [0.0, 0.0, 200.0, 1.0],
        [0.0, 149.0, 200.0, 1.0],
        [0.0, 1.0, 1.0, 148.0],
        [199.0, 1.0, 1.0, 148.0],
    ];
    let mut rng = SplitMix64::new(150);
    for _ in 0..40 {
        let (x, y) = (rng.range(5.0, 190.0), rng.range(5.0, 140.0));
        walls.push([
            x.round(),
            y.round(),
            rng.range(1.0, 6.0).round(),
            rng.range(1.0, 6.0).round(),
        ]);
    }
    Map {
        name: if radius > 0.0 {
            "field 200x150, radius 32"
        } else {
            "field 200x150, everything"
        },
        w: 200.0,
        h: 150.0,
        walls,
        pickups: vec![(50.0, 40.0), (150.0, 40.0), (50.0, 110.0), (150.0, 110.0)],
        interest: Interest {
            radius,
            margin: 4.0,
        },
    }
}

impl Map {
    fn blocked(&self, x: f64, y: f64) -> bool {
        self.walls.iter().any(|&[wx, wy, ww, wh]| {
            let (cx, cy) = (x.clamp(wx, wx + ww), y.clamp(wy, wy + wh));
            (x - cx).powi(2) + (y - cy).powi(2) < RADIUS * RADIUS
        })
    }
}

struct Player {
    x: f64,
    y: f64,
    vx: f64,
    vy: f64,
    heading: f64,
    next_turn: f64,
}

struct Sim {
    map: Map,
    players: Vec<Player>,
    rng: SplitMix64,
    time: f64,
}

impl Sim {
    fn new(map: Map, players: usize, seed: u64) -> Sim {
        let mut rng = SplitMix64::new(seed);
        let players = (0..players)
            .map(|_| {
                loop {
                    let (x, y) = (rng.range(1.0, map.w - 1.0), rng.range(1.0, map.h - 1.0));
                    if !map.blocked(x, y) {
                        break Player {
                            x,
                            y,
                            vx: 0.0,
                            vy: 0.0,
                            heading: 0.0,
                            next_turn: 0.0,
                        };
                    }
                }
            })
            .collect();
        Sim {
            map,
            players,
            rng,
            time: 0.0,
        }
    }

    /// One tick: wander decisions, steering, sliding along walls in sub-steps.
    fn step(&mut self, dt: f64) {
        self.time += dt;
        for p in &mut self.players {
            if self.time >= p.next_turn {
                p.heading = self.rng.range(0.0, TAU);
                p.next_turn = self.time + self.rng.range(0.7, 1.3);
            }
            let desired = (p.heading.cos() * MAX_SPEED, p.heading.sin() * MAX_SPEED);
            let (dx, dy) = (desired.0 - p.vx, desired.1 - p.vy);
            let gap = dx.hypot(dy);
            let k = (ACCELERATION * dt / gap).min(1.0);
            let (vx, vy) = (p.vx + dx * k, p.vy + dy * k);
            let steps = ((vx.hypot(vy) * dt) / (RADIUS * 0.5)).ceil().max(1.0);
            let (mut bx, mut by) = (false, false);
            for _ in 0..steps as u32 {
                if !bx && !self.map.blocked(p.x + vx * dt / steps, p.y) {
                    p.x += vx * dt / steps;
                } else {
                    bx = true;
                }
                if !by && !self.map.blocked(p.x, p.y + vy * dt / steps) {
                    p.y += vy * dt / steps;
                } else {
                    by = true;
                }
            }
            p.vx = if bx { 0.0 } else { vx };
            p.vy = if by { 0.0 } else { vy };
        }
    }

    fn rows(&self, rows: &mut Rows) {
        rows.clear();
        for (i, p) in self.players.iter().enumerate() {
            let e = Entity::Player {
                id: i as u32 + 1,
                x: p.x as f32,
                y: p.y as f32,
                aim: p.heading as f32,
                hp: 100,
                score: 0,
                flags: 0,
            };
            e.push_row(rows, (p.vx as f32, p.vy as f32));
        }
        for (i, &(x, y)) in self.map.pickups.iter().enumerate() {
            let id = (self.players.len() + 1 + i) as u32;
            let e = Entity::Pickup {
                id,
                x: x as f32,
                y: y as f32,
                flags: PICKUP_ACTIVE,
            };
            e.push_row(rows, (0.0, 0.0));
        }
    }
}

#[derive(Default)]
struct Run {
    v1_bytes: u64,
    v2: FrameBytes,
    keyframes: u64,
    hashes: u64,
    v1_time: Duration,
    v2_time: Duration,
    seen: u64,
}

/// One pass over the scenario: both encoders on the same rows, every v2 frame decoded.
fn run(map: MakeMap, hz: u16, seconds: u32, players: usize, decode: bool) -> Run {
    let schema = arena_schema();
    let mut sim = Sim::new(map(), players, 42);
    let config = EncoderConfig {
        interest: sim.map.interest,
        ..EncoderConfig::new(hz)
    };
    let mut enc = Encoder::new(&schema, config).expect("the arena schema encodes");
    let mut members: Vec<Member> = (0..players).map(|_| Member::new()).collect();
    let mut clients: Vec<ClientState> = (0..players)
        .map(|_| ClientState::new(&schema, hz).expect("schema"))
        .collect();
    let (mut rows, mut out) = (Rows::new(), BytesMut::new());
    let mut r = Run::default();
    for tick in 1..=u32::from(hz) * seconds {
        sim.step(1.0 / f64::from(hz));
        sim.rows(&mut rows);
        let start = Instant::now();
        let body = encode_rows(Encoding::MsgPack, &schema, &rows);
        for _ in 0..players {
            write_snap(Encoding::MsgPack, tick, tick, &body, &mut out);
            r.v1_bytes += out.split().freeze().len() as u64;
        }
        r.v1_time += start.elapsed();
        let start = Instant::now();
        enc.begin_tick(tick, &rows).expect("valid rows");
        let mut frames = Vec::with_capacity(players);
        for (i, m) in members.iter_mut().enumerate() {
            let frame = enc.encode_for(
                m,
                (tick > 1).then(|| tick - 1),
                View::Around(i as u32 + 1),
                tick,
            );
            frame.write_to(&mut out);
            frames.push((out.split().freeze(), frame.bytes, frame.kind));
        }
        r.v2_time += start.elapsed();
        for ((bytes, fb, kind), client) in frames.iter().zip(&mut clients) {
            r.v2.add(fb);
            r.keyframes += u64::from(*kind == FrameKind::Keyframe);
            if decode {
                let applied = client
                    .apply(bytes)
                    .unwrap_or_else(|e| panic!("tick {tick}: {e}"));
                r.hashes += u64::from(applied.hash_checked);
                r.seen += client.len() as u64;
            }
        }
    }
    r
}

/// Builds a scenario's map.
type MakeMap = fn() -> Map;

/// The scenarios by their `--map` name.
const SCENARIOS: [(&str, MakeMap); 3] = [
    ("courtyard", courtyard),
    ("field", || field(0.0)),
    ("field-radius", || field(32.0)),
];

fn arg(name: &str, default: u32) -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn main() {
    let hz = arg("--hz", 20) as u16;
    let seconds = arg("--seconds", 30);
    let players = arg("--players", 100) as usize;
    println!("{players} wandering players, {hz} Hz snapshots, {seconds} s simulated\n");
    let only = std::env::args().skip_while(|a| a != "--map").nth(1);
    for (name, map) in SCENARIOS {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let checked = run(map, hz, seconds, players, true);
        let timed: Vec<Run> = (0..5)
            .map(|_| run(map, hz, seconds, players, false))
            .collect();
        let v1_time = timed.iter().map(|r| r.v1_time).min().unwrap_or_default();
        let v2_time = timed.iter().map(|r| r.v2_time).min().unwrap_or_default();
        let per_second = |b: u64| b as f64 / players as f64 / f64::from(seconds) / 1000.0;
        let player_ticks = (players as u64 * u64::from(hz) * u64::from(seconds)) as f64;
        let ns = |d: Duration| d.as_nanos() as f64 / player_ticks;
        let v2 = checked.v2;
        println!("{}", map().name);
        println!(
            "  v1: {:6.2} KB/player/s   {:6.0} ns/player-tick",
            per_second(checked.v1_bytes),
            ns(v1_time)
        );
        println!(
            "  v2: {:6.2} KB/player/s   {:6.0} ns/player-tick   ({:.1}x fewer bytes)",
            per_second(v2.total()),
            ns(v2_time),
            checked.v1_bytes as f64 / v2.total() as f64
        );
        println!(
            "      header {:.2}, deltas {:.2}, full rows {:.2}, removals {:.2} KB/player/s; {} keyframes; {} hash checks, 0 desyncs; {:.1} entities in view",
            per_second(v2.header),
            per_second(v2.delta),
            per_second(v2.full),
            per_second(v2.removals),
            checked.keyframes,
            checked.hashes,
            checked.seen as f64 / player_ticks,
        );
    }
}
