//! The v2 decoder against the protocol crate's encoder: random arena worlds delivered with
//! newest-wins losses, deltas against a tick the client never got, hash mismatches,
//! mangled frames. Checks what the session relies on: the outcome, when to send
//! `resync`, the counters, and the typed rows.

use rallypoint_protocol::Subprotocol;
use rallypoint_protocol::entity::{Entity, PICKUP_ACTIVE, PLAYER_DEAD, arena_schema};
use rallypoint_protocol::message::Welcome;
use rallypoint_protocol::rng::SplitMix64;
use rallypoint_protocol::rows::Rows;
use rallypoint_protocol::v2::{Encoder, EncoderConfig, FrameKind, Member, V2Error, View};

use super::{FrameOutcome, RESYNC_RETRY_FRAMES, V2Stats};
use crate::decode::{Decoder, Kind, Peek};

const HZ: u16 = 20;

fn welcome(schema: bool) -> Welcome {
    Welcome {
        you: 1,
        room: "r".into(),
        tick: 0,
        tick_rate: HZ,
        map: "courtyard".into(),
        protocol: Subprotocol::V2MsgPack.name().into(),
        snap_rate: HZ,
        role: "player".into(),
        resumed: false,
        game: "arena".into(),
        schema: schema.then(arena_schema),
        info: Default::default(),
    }
}

fn decoder() -> Decoder {
    let mut d = Decoder::new(Subprotocol::V2MsgPack);
    d.start(&welcome(true));
    d
}

fn stats(d: &Decoder) -> V2Stats {
    d.v2().expect("a v2 decoder").stats()
}

/// An arena room: players that run and turn, die and respawn; projectiles that fly and
/// vanish (ids reused); pickups that are taken and come back.
struct World {
    rng: SplitMix64,
    /// Each entity with its velocity (players' is v2 only).
    ents: Vec<(Entity, (f32, f32))>,
}

impl World {
    fn new(seed: u64, players: u32) -> World {
        let mut w = World {
            rng: SplitMix64::new(seed),
            ents: Vec::new(),
        };
        for id in 1..=players {
            let (x, y) = (w.rng.range(0.0, 60.0) as f32, w.rng.range(0.0, 40.0) as f32);
            let p = Entity::Player {
                id,
                x,
                y,
                aim: 0.0,
                hp: 100,
                score: 0,
                flags: 0,
            };
            w.ents.push((p, (0.0, 0.0)));
        }
        for i in 0..3 {
            let id = players + 1 + i;
            let pickup = Entity::Pickup {
                id,
                x: 10.0 * i as f32,
                y: 5.0,
                flags: PICKUP_ACTIVE,
            };
            w.ents.push((pickup, (0.0, 0.0)));
        }
        w
    }

    fn rows(&self) -> Rows {
        let mut rows = Rows::new();
        for (e, v) in &self.ents {
            e.push_row(&mut rows, *v);
        }
        rows
    }

    fn free_id(&self) -> u32 {
        (1..)
            .find(|id| self.ents.iter().all(|(e, _)| e.id() != *id))
            .expect("a free id")
    }

    fn step(&mut self, dt: f32) {
        let mut shots = Vec::new();
        for (e, v) in &mut self.ents {
            let r = &mut self.rng;
            match e {
                Entity::Player {
                    id,
                    x,
                    y,
                    aim,
                    hp,
                    score,
                    flags,
                } => {
                    if r.below(15) == 0 {
                        let a = r.range(0.0, std::f64::consts::TAU) as f32;
                        let speed = [0.0, 8.0][r.below(2)];
                        *v = (a.cos() * speed, a.sin() * speed);
                        *aim = a;
                    }
                    *x += v.0 * dt;
                    *y += v.1 * dt;
                    if r.below(60) == 0 {
                        *flags ^= PLAYER_DEAD;
                        *hp = if *flags & PLAYER_DEAD == 0 { 100 } else { 0 };
                        *score += 1;
                    }
                    if r.below(8) == 0 {
                        shots.push((*id, *x, *y, *aim));
                    }
                }
                Entity::Projectile { x, y, vx, vy, .. } => {
                    *x += *vx * dt;
                    *y += *vy * dt;
                }
                Entity::Pickup { flags, .. } => {
                    if r.below(40) == 0 {
                        *flags ^= PICKUP_ACTIVE;
                    }
                }
                Entity::Other { .. } => {}
            }
        }
        let rng = &mut self.rng;
        self.ents
            .retain(|(e, _)| !matches!(e, Entity::Projectile { .. }) || rng.below(12) != 0);
        for (owner, x, y, aim) in shots {
            let shot = Entity::Projectile {
                id: self.free_id(),
                x,
                y,
                vx: aim.cos() * 30.0,
                vy: aim.sin() * 30.0,
                owner,
            };
            self.ents.push((shot, (0.0, 0.0)));
        }
    }

    /// The decoded entities match the world: same ids, positions within one step (1/64
    /// unit), everything else exactly (aim to its 10-bit resolution).
    fn assert_matches(&self, got: &[Entity], tick: u32) {
        let mut want: Vec<&Entity> = self.ents.iter().map(|(e, _)| e).collect();
        want.sort_by_key(|e| e.id());
        let ids = |v: &mut dyn Iterator<Item = u32>| v.collect::<Vec<_>>();
        assert_eq!(
            ids(&mut got.iter().map(Entity::id)),
            ids(&mut want.iter().map(|e| e.id())),
            "ids at tick {tick}"
        );
        for (g, w) in got.iter().zip(want) {
            let (gp, wp) = (g.pos(), w.pos());
            let off = (gp.0 - wp.0).abs().max((gp.1 - wp.1).abs()) * 64.0;
            assert!(off <= 1.01, "{g:?} vs {w:?} at tick {tick}: {off} steps");
            match (g, w) {
                (
                    Entity::Player {
                        aim: ga,
                        hp: gh,
                        score: gs,
                        flags: gf,
                        ..
                    },
                    Entity::Player {
                        aim: wa,
                        hp: wh,
                        score: ws,
                        flags: wf,
                        ..
                    },
                ) => {
                    let turn = std::f32::consts::TAU;
                    let d = (ga - wa).rem_euclid(turn);
                    assert!(d.min(turn - d) <= turn / 2048.0 + 1e-5, "aim {ga} vs {wa}");
                    assert_eq!((gh, gs, gf), (wh, ws, wf));
                }
                (Entity::Projectile { owner: a, .. }, Entity::Projectile { owner: b, .. }) => {
                    assert_eq!(a, b)
                }
                (Entity::Pickup { flags: a, .. }, Entity::Pickup { flags: b, .. }) => {
                    assert_eq!(a, b)
                }
                _ => panic!("{g:?} vs {w:?}: another kind"),
            }
        }
    }
}

/// The server's side of one recipient: its encoder and its member.
struct Server {
    world: World,
    enc: Encoder,
    member: Member,
    tick: u32,
}

impl Server {
    fn new(seed: u64, players: u32) -> Server {
        let mut config = EncoderConfig::new(HZ);
        config.hash_interval = 5;
        Server {
            world: World::new(seed, players),
            enc: Encoder::new(&arena_schema(), config).expect("arena schema"),
            member: Member::new(),
            tick: 0,
        }
    }

    /// The next tick's frame for a client whose session last took `taken`.
    fn frame(&mut self, taken: Option<u32>) -> Vec<u8> {
        self.tick += 1;
        if self.tick > 1 {
            self.world.step(1.0 / f32::from(HZ));
        }
        self.enc
            .begin_tick(self.tick, &self.world.rows())
            .expect("rows encode");
        let ack = self.tick / 2;
        let f = self
            .enc
            .encode_for(&mut self.member, taken, View::Everything, ack);
        f.to_bytes().to_vec()
    }
}

fn applied(p: &Peek) -> bool {
    matches!(p.frame, Some(FrameOutcome::Applied(_)))
}

#[test]
fn random_worlds_with_lost_frames_reconstruct_exactly() {
    for seed in 0..6 {
        let mut server = Server::new(seed, 12);
        let mut d = decoder();
        let mut rng = SplitMix64::new(seed + 100);
        let (mut taken, mut delivered, mut bytes) = (None, 0u64, 0u64);
        let mut ents = Vec::new();
        for _ in 0..300 {
            let frame = server.frame(taken);
            // Newest wins: a frame replaced before the session took it never arrives.
            if rng.below(4) == 0 {
                continue;
            }
            let peek = d.inspect(&frame);
            assert_eq!(peek.kind, Kind::Snap);
            assert!(applied(&peek) && !peek.resync, "{peek:?}");
            let head = peek.snap.expect("a header");
            assert_eq!((head.tick, head.ack), (server.tick, server.tick / 2));
            taken = Some(server.tick);
            delivered += 1;
            bytes += frame.len() as u64;
            assert_eq!(d.snapshot_into(&frame, &mut ents).unwrap(), head);
            server.world.assert_matches(&ents, server.tick);
        }
        let s = stats(&d);
        assert_eq!(
            (s.keyframes + s.deltas, s.desyncs, s.resyncs),
            (delivered, 0, 0)
        );
        assert!(s.keyframes >= 1 && s.deltas > 150, "{s:?}");
        assert!(s.hashes_checked > 40, "{s:?}");
        assert_eq!(s.keyframe_bytes + s.delta_bytes, bytes);
    }
}

#[test]
fn a_delta_against_a_tick_the_client_lacks_asks_for_one_keyframe() {
    let mut server = Server::new(7, 6);
    let mut d = decoder();
    assert!(applied(&d.inspect(&server.frame(None))));
    // The server believes the session took tick 2; this client never saw it.
    server.frame(Some(1));
    let foreign = server.frame(Some(2));
    let peek = d.inspect(&foreign);
    assert_eq!(
        (peek.frame, peek.resync),
        (Some(FrameOutcome::Refused), true)
    );
    assert_eq!(peek.snap.map(|h| h.tick), Some(3), "the ack still reads");
    assert_eq!(
        d.v2().unwrap().last_error(),
        Some(&V2Error::BaselineMismatch {
            baseline: 2,
            held: 1
        })
    );
    assert!(d.snapshot_into(&foreign, &mut Vec::new()).is_err());
    // Deltas that follow are ignored without asking again, until the wait is overdue.
    for i in 1..=RESYNC_RETRY_FRAMES {
        let tick = server.tick;
        let peek = d.inspect(&server.frame(Some(tick)));
        assert_eq!(peek.frame, Some(FrameOutcome::Ignored));
        assert_eq!(peek.resync, i == RESYNC_RETRY_FRAMES, "frame {i}");
    }
    // The keyframe heals it.
    server.member.request_keyframe();
    let tick = server.tick;
    let key = server.frame(Some(tick));
    let peek = d.inspect(&key);
    assert!(applied(&peek) && !peek.resync);
    let mut ents = Vec::new();
    d.snapshot_into(&key, &mut ents).unwrap();
    server.world.assert_matches(&ents, server.tick);
    let s = stats(&d);
    assert_eq!(
        (s.desyncs, s.baseline_mismatches, s.resyncs, s.keyframes),
        (1, 1, 2, 2)
    );
    assert_eq!(s.ignored, u64::from(RESYNC_RETRY_FRAMES));
}

#[test]
fn a_hash_mismatch_drops_the_state_and_a_refused_keyframe_asks_again() {
    let mut server = Server::new(3, 4);
    let mut d = decoder();
    let mut key = server.frame(None);
    let at = key.windows(2).position(|w| w == [0xa1, b'h']).unwrap() + 2;
    assert_eq!(key[at], 0xce, "a 32-bit hash follows");
    key[at + 4] ^= 1;
    let peek = d.inspect(&key);
    assert_eq!(
        (peek.frame, peek.resync),
        (Some(FrameOutcome::Refused), true)
    );
    // The keyframe asked for is broken too: it is asked for again at once.
    let peek = d.inspect(&key);
    assert_eq!(
        (peek.frame, peek.resync),
        (Some(FrameOutcome::Refused), true)
    );
    let s = stats(&d);
    assert_eq!((s.desyncs, s.hash_mismatches, s.resyncs), (2, 2, 2));
    assert_eq!(s.keyframe_bytes, 2 * key.len() as u64);
    assert_eq!(d.v2().unwrap().state().unwrap().tick(), None);
}

#[test]
fn mangled_frames_are_refused_never_a_panic_and_resyncs_stay_bounded() {
    let mut rng = SplitMix64::new(11);
    let mut server = Server::new(11, 10);
    let mut d = decoder();
    let mut taken = None;
    let mut resyncs_since_keyframe = 0;
    for _ in 0..400 {
        let mut frame = server.frame(taken);
        taken = Some(server.tick);
        match rng.below(16) {
            0 => frame.truncate(rng.below(frame.len())),
            1 => {
                let i = rng.below(frame.len());
                frame[i] = rng.next_u64() as u8;
            }
            2 => frame.push(rng.next_u64() as u8),
            _ => {}
        }
        let peek = d.inspect(&frame);
        // The server answers most requests (a few are lost, as under overload).
        if peek.resync && rng.below(4) != 0 {
            server.member.request_keyframe();
        }
        assert!(matches!(
            peek.kind,
            Kind::Snap | Kind::Unknown | Kind::Unreadable
        ));
        if let Some(FrameOutcome::Applied(a)) = peek.frame
            && a.kind == FrameKind::Keyframe
        {
            resyncs_since_keyframe = 0;
        }
        resyncs_since_keyframe += u32::from(peek.resync);
        // Once per wait, plus a retry each time a keyframe is refused or overdue.
        assert!(resyncs_since_keyframe <= 40, "{:?}", stats(&d));
        let _ = d.snapshot_into(&frame, &mut Vec::new());
    }
    let s = stats(&d);
    assert!(
        s.desyncs > 10 && s.keyframes > 10 && s.deltas > 100,
        "{s:?}"
    );
    assert!(s.resyncs <= s.desyncs + s.ignored / u64::from(RESYNC_RETRY_FRAMES) + 1);
}

#[test]
fn keys_in_another_order_still_apply() {
    let mut server = Server::new(5, 3);
    let frame = server.frame(None);
    // Move "t":"s" (5 bytes after the map marker) behind "n".
    let n_len = frame[5..]
        .windows(2)
        .position(|w| w == [0xa1, b'b'])
        .unwrap();
    let mut reordered = vec![frame[0]];
    reordered.extend_from_slice(&frame[5..5 + n_len]);
    reordered.extend_from_slice(&frame[1..5]);
    reordered.extend_from_slice(&frame[5 + n_len..]);
    assert_eq!(reordered.len(), frame.len());
    let mut d = decoder();
    let peek = d.inspect(&reordered);
    assert!(applied(&peek), "{peek:?}");
    assert_eq!(peek.snap.unwrap().tick, 1);
}

#[test]
fn without_a_schema_frames_are_refused_and_nothing_is_asked() {
    let mut server = Server::new(1, 2);
    let mut d = Decoder::new(Subprotocol::V2MsgPack);
    d.start(&welcome(false));
    let peek = d.inspect(&server.frame(None));
    assert_eq!(
        (peek.frame, peek.resync),
        (Some(FrameOutcome::Refused), false)
    );
    assert_eq!(peek.snap.map(|h| h.tick), Some(1));
    assert!(matches!(
        d.v2().unwrap().last_error(),
        Some(V2Error::Schema(_))
    ));
    assert_eq!(stats(&d).undecodable, 1);
    // v1 does not know `s` at all.
    let mut v1 = Decoder::new(Subprotocol::V1MsgPack);
    let peek = v1.inspect(&server.frame(None));
    assert_eq!((peek.kind, peek.frame), (Kind::Unknown, None));
    assert!(v1.v2().is_none());
}
