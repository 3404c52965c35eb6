//! A random world for the property test, and the test's driver: entities appear (ids
//! reused at once or later, kinds changing under a reused id), move with velocities that
//! change a little or a lot, get stuck, teleport, vanish, and now and then everything
//! changes at once; clients with moving views take frames with newest-wins losses, get
//! foreign frames, and resync.

use crate::rng::SplitMix64;
use crate::rows::{RowHead, Rows};
use crate::v2::quant::Layout;
use crate::v2::*;

use super::{TICK_RATE, assert_matches_truth, test_schema};

#[derive(Debug, Clone, Copy)]
pub(crate) struct WorldConfig {
    pub(crate) w: f64,
    pub(crate) h: f64,
    pub(crate) entities: usize,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            w: 60.0,
            h: 40.0,
            entities: 30,
        }
    }
}

#[derive(Debug, Clone)]
struct Ent {
    id: u32,
    kind: u8,
    x: f64,
    y: f64,
    vx: f64,
    vy: f64,
    /// Plain values by kind: player aim, hp, score, flags; projectile owner; pickup
    /// flags; drone heading, charge, target.
    plain: [f64; 4],
}

#[derive(Debug, Clone)]
pub(crate) struct World {
    rng: SplitMix64,
    config: WorldConfig,
    ents: Vec<Ent>,
}

const KINDS: [u8; 5] = [0, 1, 2, 5, 9];

impl World {
    pub(crate) fn new(config: WorldConfig, seed: u64) -> World {
        let mut w = World {
            rng: SplitMix64::new(seed),
            config,
            ents: Vec::new(),
        };
        for _ in 0..config.entities {
            w.spawn();
        }
        w
    }

    pub(crate) fn ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.ents.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids
    }

    fn free_id(&mut self) -> u32 {
        let ids = self.ids();
        if self.rng.below(4) == 0 {
            // Anywhere, sometimes far above the others.
            loop {
                let id = self.rng.below(400) as u32;
                if !ids.contains(&id) {
                    return id;
                }
            }
        }
        (0..).find(|id| !ids.contains(id)).expect("a free id")
    }

    fn spawn(&mut self) {
        let id = self.free_id();
        let kind = KINDS[self.rng.below(KINDS.len())];
        let mut e = Ent {
            id,
            kind,
            x: 0.0,
            y: 0.0,
            vx: 0.0,
            vy: 0.0,
            plain: [0.0; 4],
        };
        self.scramble(&mut e);
        self.ents.push(e);
    }

    /// New everything.
    fn scramble(&mut self, e: &mut Ent) {
        let r = &mut self.rng;
        e.x = r.range(-2.0, self.config.w + 2.0);
        e.y = r.range(-2.0, self.config.h + 2.0);
        if matches!(e.kind, 0 | 1 | 5) {
            e.vx = r.range(-12.0, 12.0);
            e.vy = r.range(-12.0, 12.0);
        }
        for v in &mut e.plain {
            *v = r.range(-8.0, 300.0).round();
        }
        e.plain[0] = r.range(-7.0, 7.0);
    }

    pub(crate) fn rows(&self) -> Rows {
        let mut rows = Rows::new();
        for e in &self.ents {
            let head = RowHead {
                id: e.id,
                kind: e.kind,
                x: e.x as f32,
                y: e.y as f32,
            };
            let p = e.plain;
            match e.kind {
                0 => rows.push(head, &[p[0], p[1], p[2], p[3], e.vx, e.vy]),
                1 => rows.push(head, &[e.vx, e.vy, p[1]]),
                2 => rows.push(head, &[p[3]]),
                5 => rows.push(head, &[e.vx, p[0], e.vy, p[2] - 100.0, p[1]]),
                _ => rows.push(head, &[]),
            }
        }
        rows
    }

    /// Advances by `dt` seconds.
    pub(crate) fn step(&mut self, dt: f64) {
        if self.rng.below(50) == 0 {
            let mut ents = std::mem::take(&mut self.ents);
            ents.iter_mut().for_each(|e| self.scramble(e));
            self.ents = ents;
            return;
        }
        let mut ents = std::mem::take(&mut self.ents);
        for e in &mut ents {
            self.move_one(e, dt);
            for v in &mut e.plain {
                if self.rng.below(30) == 0 {
                    *v = (*v + self.rng.range(-20.0, 20.0)).round().max(0.0);
                }
            }
            if self.rng.below(40) == 0 {
                e.plain[0] = self.rng.range(-7.0, 7.0);
            }
        }
        ents.retain(|_| self.rng.below(80) != 0);
        self.ents = ents;
        while self.rng.below(3) == 0 && self.ents.len() < 3 * self.config.entities {
            self.spawn();
        }
    }

    fn move_one(&mut self, e: &mut Ent, dt: f64) {
        let r = &mut self.rng;
        if !matches!(e.kind, 0 | 1 | 5) {
            match r.below(30) {
                0 => e.x += r.range(-0.5, 0.5),
                1 => e.y = r.range(0.0, self.config.h),
                _ => {}
            }
            return;
        }
        match r.below(40) {
            0..=2 => (e.vx, e.vy) = (r.range(-12.0, 12.0), r.range(-12.0, 12.0)),
            3..=4 => e.vx += r.range(-0.03, 0.03),
            5 => (e.x, e.y) = (r.range(0.0, self.config.w), r.range(0.0, self.config.h)),
            // Stuck against something: the velocity says it moves, it does not.
            6..=7 => return,
            8 => e.x += r.range(-0.02, 0.02),
            _ => {}
        }
        e.x += e.vx * dt;
        e.y += e.vy * dt;
    }

    /// Some live entity, for a client to follow.
    fn any_id(&mut self) -> Option<u32> {
        let n = self.ents.len();
        (n > 0).then(|| self.ents[self.rng.below(n)].id)
    }
}

/// A frame waiting in a client's outbox, with what the client must hold once it applies
/// it.
struct Pending {
    bytes: bytes::Bytes,
    kind: FrameKind,
    tick: u32,
    ids: Vec<u32>,
    hash: u32,
    truth: Rows,
    center: Option<[i64; 2]>,
}

struct Client {
    member: Member,
    state: ClientState,
    view: View,
    pending: Option<Pending>,
    taken: Option<u32>,
    /// Chance in 100 to take the pending frame at each opportunity.
    take: usize,
    /// The client lost its state on purpose and awaits a keyframe.
    lost: bool,
}

/// The property: for `steps` snapshot ticks of a random world (seeded), with interest
/// `radius` (0 = everything), every frame a client applies leaves it holding exactly the
/// ids the encoder meant, with the encoder's records (equal hashes), rows within the
/// documented tolerance of the truth, and (for radius views) every entity within the
/// radius and none beyond radius + margin.
pub(crate) fn run(seed: u64, radius: f32, steps: usize) -> Seen {
    let mut seen = Seen::default();
    let schema = test_schema();
    let layout = Layout::new(&schema, TICK_RATE).unwrap();
    let interest = Interest {
        radius,
        margin: 3.0,
    };
    let config = EncoderConfig {
        interest,
        hash_interval: 10,
        ..EncoderConfig::new(TICK_RATE)
    };
    let mut enc = Encoder::new(&schema, config).unwrap();
    let mut world = World::new(WorldConfig::default(), seed);
    let mut rng = SplitMix64::new(seed ^ 0x5eed);
    let mut clients: Vec<Client> = [100, 100, 90, 60, 35, 15]
        .into_iter()
        .enumerate()
        .map(|(i, take)| Client {
            member: Member::new(),
            state: ClientState::new(&schema, TICK_RATE).unwrap(),
            view: match (i, world.any_id()) {
                (0, _) | (_, None) => View::Everything,
                (_, Some(id)) => View::Around(id),
            },
            pending: None,
            taken: None,
            take,
            lost: false,
        })
        .collect();
    let mut tick = 0u32;
    for _ in 0..steps {
        let ticks = 1 + rng.below(3) as u32;
        tick += ticks;
        world.step(f64::from(ticks) / f64::from(TICK_RATE));
        let rows = world.rows();
        enc.begin_tick(tick, &rows).unwrap();
        for c in &mut clients {
            if rng.below(100) < c.take / 3 {
                take(&layout, c, interest, &mut seen);
            }
            let frame = enc.encode_for(&mut c.member, c.taken, c.view, tick);
            let (ids, hash) = enc.expected(&c.member);
            let center = match c.view {
                View::Around(id) => enc.position(id),
                View::Everything => None,
            };
            c.pending = Some(Pending {
                bytes: frame.to_bytes(),
                kind: frame.kind,
                tick,
                ids,
                hash,
                truth: rows.clone(),
                center,
            });
            if rng.below(100) < c.take {
                take(&layout, c, interest, &mut seen);
            }
        }
        seen.refused += misbehave(&mut rng, &mut clients);
    }
    let keyframes = enc.stats().keyframes;
    assert!(
        enc.stats().deltas > keyframes,
        "mostly deltas ({keyframes} keyframes)"
    );
    seen
}

/// What the frames a run applied did, so the test can tell every path was taken.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seen {
    pub(crate) keyframes: usize,
    pub(crate) deltas: usize,
    pub(crate) removals: usize,
    /// Full rows inside deltas (new or reborn entities, entities entering a view).
    pub(crate) full_in_deltas: usize,
    pub(crate) piece_deltas: usize,
    pub(crate) hashes: usize,
    /// Foreign frames refused.
    pub(crate) refused: usize,
}

impl Seen {
    pub(crate) fn add(&mut self, o: Seen) {
        self.keyframes += o.keyframes;
        self.deltas += o.deltas;
        self.removals += o.removals;
        self.full_in_deltas += o.full_in_deltas;
        self.piece_deltas += o.piece_deltas;
        self.hashes += o.hashes;
        self.refused += o.refused;
    }
}

/// The session takes the pending frame and the client applies it.
fn take(layout: &Layout, c: &mut Client, interest: Interest, seen: &mut Seen) {
    let Some(p) = c.pending.take() else { return };
    c.taken = Some(p.tick);
    let result = c.state.apply(&p.bytes);
    if c.lost && p.kind == FrameKind::Delta {
        assert_eq!(result, Err(V2Error::AwaitingKeyframe));
        return;
    }
    let applied = result.unwrap_or_else(|e| panic!("tick {}: {e}", p.tick));
    c.lost = false;
    assert_eq!(applied.kind, p.kind);
    match p.kind {
        FrameKind::Keyframe => seen.keyframes += 1,
        FrameKind::Delta => {
            seen.deltas += 1;
            seen.removals += applied.removed;
            seen.full_in_deltas += applied.full;
        }
    }
    seen.piece_deltas += applied.deltas;
    seen.hashes += usize::from(applied.hash_checked);
    assert_eq!(c.state.tick(), Some(p.tick));
    assert_eq!(c.state.hash(), p.hash, "records differ at tick {}", p.tick);
    assert_matches_truth(layout, &c.state, &p.truth, p.tick, &p.ids);
    if c.view == View::Everything || interest.is_everything() {
        assert_eq!(
            p.ids,
            ids(&p.truth),
            "an everything view holds every entity"
        );
    } else if let Some(center) = p.center {
        check_interest(layout, &p, center, interest);
    }
}

fn ids(rows: &Rows) -> Vec<u32> {
    let mut ids: Vec<u32> = rows.iter().map(|r| r.head.id).collect();
    ids.sort_unstable();
    ids
}

/// Everything within the radius is held; nothing beyond radius + margin is.
fn check_interest(layout: &Layout, p: &Pending, center: [i64; 2], interest: Interest) {
    let ps = layout.position_scale;
    for row in p.truth.iter() {
        let q = [row.head.x, row.head.y].map(|c| layout.quantize_position(c));
        let d = (((q[0] - center[0]).pow(2) + (q[1] - center[1]).pow(2)) as f64).sqrt() / ps;
        let held = p.ids.contains(&row.head.id);
        if d <= f64::from(interest.radius) - 0.1 {
            assert!(held, "entity {} at {d} not in view", row.head.id);
        }
        if d > f64::from(interest.radius + interest.margin) + 0.1 {
            assert!(!held, "entity {} at {d} still in view", row.head.id);
        }
    }
}

/// Now and then a client gets another client's frame (an out-of-sync delta must be
/// refused, and the client resyncs), or asks for a keyframe, or changes whom it follows.
fn misbehave(rng: &mut SplitMix64, clients: &mut [Client]) -> usize {
    let i = rng.below(clients.len());
    let mut refused = 0;
    match rng.below(20) {
        0 => {
            let j = rng.below(clients.len());
            let Some(p) = clients[j].pending.as_ref() else {
                return 0;
            };
            let (bytes, kind) = (p.bytes.clone(), p.kind);
            let c = &mut clients[i];
            let held = c.state.tick();
            match c.state.apply(&bytes) {
                Ok(_) => assert!(kind == FrameKind::Keyframe || held.is_some()),
                Err(e) => {
                    refused += 1;
                    assert!(matches!(
                        e,
                        V2Error::BaselineMismatch { .. }
                            | V2Error::AwaitingKeyframe
                            | V2Error::UnknownEntity(_)
                            | V2Error::HashMismatch { .. }
                    ));
                }
            }
            // Either way the client no longer holds what the server thinks: resync.
            c.state.reset();
            c.member.request_keyframe();
            c.lost = true;
        }
        1 => clients[i].member.request_keyframe(),
        2 if i > 0 => {
            if let View::Around(id) = clients[i].view {
                clients[i].view = View::Around(id.wrapping_add(1) % 40);
            }
        }
        _ => {}
    }
    refused
}
