//! v2 tests: round trips, the property test over random worlds with lossy newest-wins
//! delivery, baseline and hash mismatches, hostile frames.

use bytes::Bytes;

use crate::entity::arena_schema;
use crate::rng::SplitMix64;
use crate::rows::{FieldDef, FieldType, KindDef, RowHead, RowSchema, Rows};

use crate::tests::{hex, protocol_md_dump};

use super::encode::HEADER_MAX;
use super::quant::{Layout, dequantize, quantize};
use super::state::POSITION_TOLERANCE;
use super::*;

mod vectors;
mod world;

use world::{World, WorldConfig};

/// The arena's schema plus a kind with its velocity fields apart and at another scale,
/// and nothing declared for kind 9.
pub(super) fn test_schema() -> RowSchema {
    let mut s = arena_schema();
    s.kinds.push(KindDef {
        kind: 5,
        name: "drone".into(),
        fields: vec![
            FieldDef::new("vx", FieldType::Real { scale: 32.0 }),
            FieldDef::new("heading", FieldType::Angle { bits: 6 }),
            FieldDef::new("vy", FieldType::Real { scale: 32.0 }),
            FieldDef::new("charge", FieldType::Int),
            FieldDef::new("target", FieldType::Ref),
        ],
        velocity: Some([0, 2]),
    });
    s
}

const TICK_RATE: u16 = 30;

/// Checks a client's rows at `tick` against the true rows: the same ids, positions within
/// the position tolerance, velocities within the velocity tolerance, every other field
/// exactly its quantized value.
pub(super) fn assert_matches_truth(
    layout: &Layout,
    client: &ClientState,
    truth: &Rows,
    tick: u32,
    ids: &[u32],
) {
    let mut got = Rows::new();
    client.rows_at(tick, &mut got);
    let got_ids: Vec<u32> = got.iter().map(|r| r.head.id).collect();
    assert_eq!(got_ids, ids, "ids at tick {tick}");
    let ps = layout.position_scale;
    for row in got.iter() {
        let t = truth
            .iter()
            .find(|t| t.head.id == row.head.id)
            .expect("a held entity is live");
        assert_eq!(row.head.kind, t.head.kind);
        for (c, w) in [(row.head.x, t.head.x), (row.head.y, t.head.y)] {
            let off = (f64::from(c) - f64::from(w)).abs() * ps;
            assert!(
                off <= POSITION_TOLERANCE + 1e-2,
                "entity {} at tick {tick}: {c} vs {w} ({off} steps)",
                row.head.id
            );
        }
        let k = layout.kind(t.head.kind);
        for (i, &ty) in k.types.iter().enumerate() {
            let want = t.fields.get(i).copied().unwrap_or(0.0);
            let got = row.fields[i];
            if k.velocity.is_some_and(|v| v.contains(&i)) {
                let FieldType::Real { scale } = ty else {
                    unreachable!()
                };
                let axis = usize::from(k.velocity.unwrap()[1] == i);
                let tol = (k.velocity_tolerance[axis] as f64 + 0.5) / f64::from(scale);
                assert!(
                    (got - want).abs() <= tol + 1e-9,
                    "{} velocity {got} vs {want}",
                    t.head.id
                );
            } else {
                assert_eq!(
                    got,
                    dequantize(ty, quantize(ty, want)),
                    "{} field {i}",
                    t.head.id
                );
            }
        }
    }
}

fn frame_bytes(f: &Frame) -> Bytes {
    let b = f.to_bytes();
    assert!(f.header().len() <= HEADER_MAX);
    assert_eq!(b.len(), f.len());
    assert_eq!(f.bytes.total(), b.len() as u64, "byte accounting");
    b
}

#[test]
fn a_keyframe_round_trips_every_kind() {
    let schema = test_schema();
    let world = World::new(WorldConfig::default(), 1);
    let mut enc = Encoder::new(&schema, EncoderConfig::new(TICK_RATE)).unwrap();
    let rows = world.rows();
    enc.begin_tick(1, &rows).unwrap();
    let mut member = Member::new();
    let frame = enc.encode_for(&mut member, None, View::Everything, 9);
    assert_eq!(frame.kind, FrameKind::Keyframe);
    assert!(frame.hash.is_some(), "a keyframe carries the hash");
    let mut client = ClientState::new(&schema, TICK_RATE).unwrap();
    let applied = client.apply(&frame_bytes(&frame)).unwrap();
    assert_eq!((applied.tick, applied.baseline, applied.ack), (1, None, 9));
    assert!(applied.hash_checked);
    assert_eq!(applied.full, rows.len());
    let layout = Layout::new(&schema, TICK_RATE).unwrap();
    let ids: Vec<u32> = world.ids();
    assert_eq!(ids.len(), rows.len());
    assert_matches_truth(&layout, &client, &rows, 1, &ids);
}

#[test]
fn one_row_reads_as_the_whole_state_reads_it_and_headers_read_alone() {
    let schema = test_schema();
    let mut world = World::new(WorldConfig::default(), 5);
    let mut enc = Encoder::new(&schema, EncoderConfig::new(TICK_RATE)).unwrap();
    let mut member = Member::new();
    let mut client = ClientState::new(&schema, TICK_RATE).unwrap();
    let mut rows = Rows::new();
    for tick in 1..=40 {
        enc.begin_tick(tick, &world.rows()).unwrap();
        let taken = (tick > 1).then(|| tick - 1);
        let frame = enc.encode_for(&mut member, taken, View::Everything, tick * 2);
        let bytes = frame.to_bytes();
        let head = decode::header(&bytes).unwrap();
        assert_eq!(
            (head.tick, head.ack, head.kind()),
            (tick, tick * 2, frame.kind)
        );
        assert_eq!((head.baseline, head.hash), (frame.baseline, frame.hash));
        assert_eq!(head.body, &frame.body[..]);
        client.apply(&bytes).unwrap();
        // Rows a tick ahead are dead-reckoned the same way one at a time.
        client.rows_at(tick + 1, &mut rows);
        assert_eq!(rows.len(), client.len());
        let mut visited = 0;
        client.for_each_row_at(tick + 1, |row| {
            assert_eq!(Some(row), rows.get(visited));
            visited += 1;
        });
        assert_eq!(visited, rows.len());
        for row in rows.iter() {
            let one = client.with_row_at(row.head.id, tick + 1, |r| (r.head, r.fields.to_vec()));
            assert_eq!(one, Some((row.head, row.fields.to_vec())));
        }
        let absent = (0..).find(|id| !client.contains(*id)).unwrap();
        assert_eq!(client.with_row_at(absent, tick, |_| ()), None);
        world.step(1.0 / 30.0);
    }
    client.reset();
    assert!(client.is_empty());
    client.rows_at(1, &mut rows);
    assert!(rows.is_empty());
}

#[test]
fn steady_motion_costs_nothing_and_a_turn_costs_one_delta() {
    let schema = arena_schema();
    let mut enc = Encoder::new(&schema, EncoderConfig::new(20)).unwrap();
    let mut client = ClientState::new(&schema, 20).unwrap();
    let mut member = Member::new();
    let mut taken = None;
    let row = |x: f32, vx: f32| {
        let mut rows = Rows::new();
        let head = RowHead {
            id: 3,
            kind: 0,
            x,
            y: 5.0,
        };
        rows.push(head, &[0.0, 100.0, 0.0, 0.0, f64::from(vx), 0.0]);
        rows
    };
    let mut sizes = Vec::new();
    for tick in 1..=40u32 {
        // 8 units/s for 20 ticks, then 4 units/s.
        let (x, vx) = if tick <= 20 {
            (tick as f32 * 0.4, 8.0)
        } else {
            (8.0 + (tick - 20) as f32 * 0.2, 4.0)
        };
        enc.begin_tick(tick, &row(x, vx)).unwrap();
        let frame = enc.encode_for(&mut member, taken, View::Everything, tick);
        client.apply(&frame_bytes(&frame)).unwrap();
        taken = Some(tick);
        sizes.push(frame.body.len());
    }
    // After the keyframe every body is "no removals, no pieces" except the turn's.
    assert!(
        sizes[1..].iter().filter(|&&n| n > 2).count() == 1,
        "{sizes:?}"
    );
    assert_eq!(enc.stats().keyframes, 1);
    let stats = enc.stats();
    assert_eq!(stats.deltas, 39);
    let sent: usize = sizes.iter().sum();
    assert_eq!(
        stats.keyframe_bytes + stats.delta_bytes,
        stats.bytes.total()
    );
    assert_eq!(stats.bytes.total() - stats.bytes.header, sent as u64);
}

#[test]
fn a_delta_against_a_baseline_the_client_lacks_is_refused_then_healed() {
    let schema = test_schema();
    let mut world = World::new(WorldConfig::default(), 7);
    let mut enc = Encoder::new(&schema, EncoderConfig::new(TICK_RATE)).unwrap();
    let (mut a, mut b) = (Member::new(), Member::new());
    let mut client = ClientState::new(&schema, TICK_RATE).unwrap();
    enc.begin_tick(1, &world.rows()).unwrap();
    let key = enc.encode_for(&mut a, None, View::Everything, 0);
    client.apply(&key.to_bytes()).unwrap();
    enc.encode_for(&mut b, None, View::Everything, 0);
    world.step(1.0 / 30.0);
    enc.begin_tick(2, &world.rows()).unwrap();
    // b took its tick-1 keyframe; a "lost" it. A delta built for b (baseline 1) reaches
    // a client that holds tick 1 fine, but one built against tick 2 must be refused.
    let delta1 = enc.encode_for(&mut b, Some(1), View::Everything, 0);
    assert_eq!((delta1.kind, delta1.baseline), (FrameKind::Delta, Some(1)));
    world.step(1.0 / 30.0);
    enc.begin_tick(3, &world.rows()).unwrap();
    let delta2 = enc.encode_for(&mut b, Some(2), View::Everything, 0);
    assert_eq!(delta2.baseline, Some(2));
    let err = client.apply(&delta2.to_bytes()).unwrap_err();
    assert_eq!(
        err,
        V2Error::BaselineMismatch {
            baseline: 2,
            held: 1
        }
    );
    assert!(err.needs_resync());
    // The state is dropped: the next delta is refused without asking again.
    let err = client.apply(&delta1.to_bytes()).unwrap_err();
    assert_eq!(err, V2Error::AwaitingKeyframe);
    assert!(!err.needs_resync());
    // resync: the member's next frame is a keyframe even though it names a known tick.
    a.request_keyframe();
    let key = enc.encode_for(&mut a, Some(1), View::Everything, 0);
    assert_eq!(key.kind, FrameKind::Keyframe);
    assert!(client.apply(&key.to_bytes()).unwrap().hash_checked);
}

/// Runs the random world through one encoder and several lossy clients; see
/// [`world::run`] for what is asserted at every step.
#[test]
fn property_clients_always_reconstruct_the_quantized_server_state() {
    let mut seen = world::Seen::default();
    for seed in 0..24 {
        let radius = if seed % 2 == 0 { 0.0 } else { 12.0 };
        seen.add(world::run(seed, radius, 160));
    }
    // Every path was taken, many times.
    let s = seen;
    for (what, n) in [
        ("keyframes", s.keyframes),
        ("deltas", s.deltas),
        ("removals", s.removals),
        ("full rows in deltas", s.full_in_deltas),
        ("delta pieces", s.piece_deltas),
        ("hash checks", s.hashes),
        ("refused foreign frames", s.refused),
    ] {
        assert!(n >= 20, "{what}: {n} ({s:?})");
    }
}

#[test]
fn a_hash_mismatch_is_detected() {
    let schema = test_schema();
    let world = World::new(WorldConfig::default(), 3);
    let mut enc = Encoder::new(&schema, EncoderConfig::new(TICK_RATE)).unwrap();
    enc.begin_tick(1, &world.rows()).unwrap();
    let frame = enc.encode_for(&mut Member::new(), None, View::Everything, 0);
    let mut bytes = frame.to_bytes().to_vec();
    // The hash is a 32-bit value (0xce) right after the "h" key.
    let at = bytes.windows(2).position(|w| w == [0xa1, b'h']).unwrap() + 2;
    assert_eq!(bytes[at], 0xce);
    bytes[at + 4] ^= 1;
    let mut client = ClientState::new(&schema, TICK_RATE).unwrap();
    assert!(matches!(
        client.apply(&bytes),
        Err(V2Error::HashMismatch { .. })
    ));
    assert_eq!(client.tick(), None);
}

/// A frame with tick `n`, `b` (ticks back to the baseline, 0 for a keyframe) and `body`,
/// written by hand.
fn hand_frame(n: u8, b: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0x85, 0xa1, b't', 0xa1, b's', 0xa1, b'n', n, 0xa1, b'b', b];
    f.extend([0xa1, b'a', 0, 0xa1, b'd', 0xc4, body.len() as u8]);
    f.extend_from_slice(body);
    f
}

#[test]
fn hostile_frames_are_typed_errors() {
    let schema = test_schema();
    let mut client = ClientState::new(&schema, TICK_RATE).unwrap();
    let key = |body: &[u8]| hand_frame(10, 0, body);
    let cases: Vec<(Vec<u8>, V2Error)> = vec![
        (vec![0x90], V2Error::Malformed("not a map")),
        (
            key(&[0, 0])[..10].to_vec(),
            V2Error::Malformed("b is not a u32"),
        ),
        (
            key(&[0, 0])
                .iter()
                .map(|&b| if b == b's' { b'x' } else { b })
                .collect(),
            V2Error::Malformed("t is not \"s\""),
        ),
        (
            [key(&[0, 0]), vec![0xc0]].concat(),
            V2Error::Malformed("bytes after the map"),
        ),
        (key(&[0]), V2Error::Truncated),
        (key(&[0, 0, 0]), V2Error::TrailingBytes(1)),
        (key(&[1, 3]), V2Error::RemovalInKeyframe),
        (
            key(&[0, 9, 1]),
            V2Error::CountTooLarge {
                what: "pieces",
                count: 9,
                bytes: 1,
            },
        ),
        (
            key(&[0, 1, 0x80, 0x80, 0x04, 1]),
            V2Error::IdOutOfRange(65536),
        ),
        // Two full pickups (kind 2: mask 5) with the same id.
        (
            key(&[0, 2, 4, 5, 0, 0, 1, 4, 5, 0, 0, 1]),
            V2Error::Unordered(4),
        ),
        // A pickup whose flags are 256.
        (
            key(&[0, 1, 4, 5, 0, 0, 0x80, 0x02]),
            V2Error::OutOfRange {
                id: 4,
                field: "flags".into(),
            },
        ),
        // A player whose reference tick would be before tick 0 (age 11 at tick 10).
        (
            key(&[0, 1, 4, 1, 11]),
            V2Error::BadAge {
                id: 4,
                age: 11,
                tick: 10,
            },
        ),
        (hand_frame(11, 1, &[0, 0]), V2Error::AwaitingKeyframe),
    ];
    for (bytes, want) in cases {
        assert_eq!(client.apply(&bytes), Err(want), "{bytes:02x?}");
    }
    let hold = |client: &mut ClientState| {
        // A pickup (id 4) and a player (id 6, still, reference tick 10).
        let body = [0, 2, 4, 5, 0, 0, 1, 6, 1, 0, 2, 2, 0, 100, 0, 0, 0, 0];
        client.apply(&key(&body)).unwrap();
    };
    let held: Vec<(Vec<u8>, V2Error)> = vec![
        (
            hand_frame(12, 3, &[0, 0]),
            V2Error::BaselineMismatch {
                baseline: 9,
                held: 10,
            },
        ),
        (
            hand_frame(10, 11, &[0, 0]),
            V2Error::Malformed("b is larger than n"),
        ),
        (hand_frame(11, 1, &[1, 5, 0]), V2Error::UnknownEntity(5)),
        (
            hand_frame(11, 1, &[0, 1, 5, 2, 0, 0]),
            V2Error::UnknownEntity(5),
        ),
        // The pickup has no velocity (no age bit) and one plain field (bit 3 only).
        (
            hand_frame(11, 1, &[0, 1, 4, 6, 1, 0, 0]),
            V2Error::BadMask {
                id: 4,
                kind: 2,
                mask: 6,
            },
        ),
        (
            hand_frame(11, 1, &[0, 1, 4, 16, 0]),
            V2Error::BadMask {
                id: 4,
                kind: 2,
                mask: 16,
            },
        ),
        (
            hand_frame(11, 1, &[0, 1, 4, 0]),
            V2Error::BadMask {
                id: 4,
                kind: 2,
                mask: 0,
            },
        ),
        // An age bit without the motion bit.
        (
            hand_frame(11, 1, &[0, 1, 6, 4, 0]),
            V2Error::BadMask {
                id: 6,
                kind: 0,
                mask: 4,
            },
        ),
        // A new motion record as old as the held one (age 1 at tick 11: tick 10).
        (
            hand_frame(11, 1, &[0, 1, 6, 6, 1, 0, 0, 0, 0]),
            V2Error::BadAge {
                id: 6,
                age: 1,
                tick: 11,
            },
        ),
        // hp is a UInt: a 5-byte varint above u32::MAX is out of its range.
        (
            hand_frame(11, 1, &[0, 1, 6, 16, 0xff, 0xff, 0xff, 0xff, 0x1f]),
            V2Error::OutOfRange {
                id: 6,
                field: "hp".into(),
            },
        ),
    ];
    for (bytes, want) in held {
        hold(&mut client);
        assert_eq!(client.apply(&bytes), Err(want), "{bytes:02x?}");
        assert_eq!(client.tick(), None, "an error drops the state");
    }
    hold(&mut client);
    // The player turns: position +1 step in x, velocity +256 in x; and its hp drops.
    let ok = client
        .apply(&hand_frame(11, 1, &[0, 1, 6, 18, 2, 0, 0x80, 0x04, 0, 50]))
        .unwrap();
    assert_eq!((ok.deltas, ok.kind), (1, FrameKind::Delta));
    let mut rows = Rows::new();
    client.rows_at(12, &mut rows);
    let player = rows.get(1).unwrap();
    // 2 steps at tick 11, then 1 unit/s for one tick at 30 Hz: 64/30 steps, rounded.
    assert_eq!(player.head.x, 4.0 / 64.0);
    assert_eq!(player.fields[1], 50.0);
    assert_eq!(player.fields[4], 1.0);
}

#[test]
fn random_and_mutated_frames_never_panic() {
    let schema = test_schema();
    let mut world = World::new(WorldConfig::default(), 11);
    let mut enc = Encoder::new(&schema, EncoderConfig::new(TICK_RATE)).unwrap();
    let mut member = Member::new();
    let mut frames = Vec::new();
    for tick in 1..30 {
        enc.begin_tick(tick, &world.rows()).unwrap();
        let taken = (tick > 1).then_some(tick - 1);
        frames.push(
            enc.encode_for(&mut member, taken, View::Everything, tick)
                .to_bytes(),
        );
        world.step(1.0 / 30.0);
    }
    let mut rng = SplitMix64::new(5);
    let mut client = ClientState::new(&schema, TICK_RATE).unwrap();
    for _ in 0..20_000 {
        let base = &frames[rng.below(frames.len())];
        let mut bytes = base.to_vec();
        for _ in 0..=rng.below(4) {
            match rng.below(3) {
                0 if !bytes.is_empty() => {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next_u64() as u8;
                }
                1 => bytes.truncate(rng.below(bytes.len() + 1)),
                _ => bytes.insert(rng.below(bytes.len() + 1), rng.next_u64() as u8),
            }
        }
        if rng.below(2) == 0 {
            client.apply(&frames[0]).unwrap();
        }
        let _ = client.apply(&bytes);
    }
}

/// The v2 dumps in PROTOCOL.md are the encoder's output, and decode to the example rows.
#[test]
fn golden_bytes_match_protocol_md() {
    let [key, delta] = crate::examples::v2_frames();
    assert_eq!(
        hex(&protocol_md_dump("v2-keyframe")),
        hex(&key),
        "v2 keyframe dump in PROTOCOL.md is stale"
    );
    assert_eq!(
        hex(&protocol_md_dump("v2-delta")),
        hex(&delta),
        "v2 delta dump in PROTOCOL.md is stale"
    );
    let schema = arena_schema();
    let layout = Layout::new(&schema, 20).unwrap();
    let mut client = ClientState::new(&schema, 20).unwrap();
    let [before, after] = crate::examples::v2_rows();
    let applied = client.apply(&key).unwrap();
    assert!(applied.hash_checked);
    assert_matches_truth(&layout, &client, &before, 100, &[1, 2, 5, 7, 9]);
    let applied = client.apply(&delta).unwrap();
    assert_eq!((applied.removed, applied.full, applied.deltas), (1, 1, 3));
    assert_matches_truth(&layout, &client, &after, 101, &[1, 2, 5, 9, 10]);
}

/// The state hash example of PROTOCOL.md: one pickup, its bytes and its hash.
#[test]
fn the_documented_hash_example_holds() {
    let doc = include_str!("../../PROTOCOL.md");
    let bytes = "05 00 00 00 02 00 05 00 00 c0 03 00 00 01 00 00 00";
    assert!(doc.contains(bytes) && doc.contains("0x3ffd98bd"));
    let mut client = ClientState::new(&arena_schema(), 20).unwrap();
    // A keyframe with the pickup (id 5, kind 2) at (20, 15), flags 1.
    client
        .apply(&hand_frame(10, 0, &[0, 1, 5, 5, 0x80, 0x14, 0x80, 0x0f, 1]))
        .unwrap();
    assert_eq!(client.hash(), 0x3ffd_98bd);
    let mut h = super::quant::Fnv1a::new();
    for b in crate::tests::unhex(bytes) {
        h.byte(b);
    }
    assert_eq!(h.finish(), 0x3ffd_98bd);
}
