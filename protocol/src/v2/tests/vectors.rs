//! Test vectors for other implementations of the v2 client (the JavaScript SDK's
//! `protocol/js/src/v2.js`): frames from the random world of [`super::world`], through
//! the encoder, with what [`ClientState`] made of each — the applied summary or the typed
//! error, the state hash and the rows at the frame's tick and a few ticks later (dead
//! reckoning). Three streams: a client that sees everything and loses frames
//! (newest-wins), a client with a view radius, and a client fed hostile frames (mutated
//! bodies, cut bodies, broken headers, foreign baselines) between keyframes.
//!
//! The file is checked in (`protocol/js/test/vectors/v2.json`) and this test compares it
//! with what the code makes now, so the two implementations cannot drift apart:
//! `RALLYPOINT_WRITE_VECTORS=1 cargo test -p rallypoint-protocol vectors` rewrites it
//! after an intended change. Deterministic: seeded generators, ordered maps only.

use serde_json::{Value, json};

use crate::rng::SplitMix64;
use crate::rows::Rows;
use crate::v2::*;

use super::world::{World, WorldConfig};
use super::{TICK_RATE, test_schema};

/// The checked-in file, relative to this crate.
const PATH: &str = "js/test/vectors/v2.json";

/// Ticks a client's rows are also given for, past the frame's tick.
const AHEAD: u32 = 7;

/// One client of a stream: its encoder-side member, its view and its state.
struct Recipient {
    member: Member,
    view: View,
    state: ClientState,
    taken: Option<u32>,
    steps: Vec<Value>,
}

impl Recipient {
    fn new(view: View) -> Recipient {
        Recipient {
            member: Member::new(),
            view,
            state: ClientState::new(&test_schema(), TICK_RATE).unwrap(),
            taken: None,
            steps: Vec::new(),
        }
    }

    /// Applies `bytes` and records the outcome; rows only when `rows` (they are most of
    /// the file's size).
    fn apply(&mut self, bytes: &[u8], rows: bool) -> Result<Applied, V2Error> {
        let result = self.state.apply(bytes);
        let mut step = json!({ "frame": hex(bytes) });
        match &result {
            Ok(a) => step["ok"] = applied_json(a),
            Err(e) => step["error"] = error_json(e),
        }
        step["tick"] = json!(self.state.tick());
        step["hash"] = json!(self.state.hash());
        if let (true, Some(tick)) = (rows, self.state.tick()) {
            step["rows"] = rows_json(&self.state, tick);
            step["ahead"] =
                json!({ "tick": tick + AHEAD, "rows": rows_json(&self.state, tick + AHEAD) });
        }
        self.steps.push(step);
        result
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn applied_json(a: &Applied) -> Value {
    json!({
        "tick": a.tick,
        "baseline": a.baseline,
        "ack": a.ack,
        "kind": a.kind.as_str(),
        "hash_checked": a.hash_checked,
        "removed": a.removed,
        "full": a.full,
        "deltas": a.deltas,
    })
}

/// The error as the JavaScript decoder reports it: `kind` in snake case and the
/// variant's fields (a malformed frame's reason is the Rust decoder's own wording).
fn error_json(e: &V2Error) -> Value {
    match e {
        V2Error::Malformed(reason) => json!({ "kind": "malformed", "reason": reason }),
        V2Error::Truncated => json!({ "kind": "truncated" }),
        V2Error::VarintTooLong => json!({ "kind": "varint_too_long" }),
        V2Error::TrailingBytes(n) => json!({ "kind": "trailing_bytes", "bytes": n }),
        V2Error::CountTooLarge { what, count, bytes } => {
            json!({ "kind": "count_too_large", "what": what, "count": count, "bytes": bytes })
        }
        V2Error::IdOutOfRange(id) => json!({ "kind": "id_out_of_range", "id": id }),
        V2Error::Unordered(id) => json!({ "kind": "unordered", "id": id }),
        V2Error::BaselineMismatch { baseline, held } => {
            json!({ "kind": "baseline_mismatch", "baseline": baseline, "held": held })
        }
        V2Error::AwaitingKeyframe => json!({ "kind": "awaiting_keyframe" }),
        V2Error::UnknownEntity(id) => json!({ "kind": "unknown_entity", "id": id }),
        V2Error::RemovalInKeyframe => json!({ "kind": "removal_in_keyframe" }),
        V2Error::BadMask { id, kind, mask } => {
            json!({ "kind": "bad_mask", "id": id, "entity_kind": kind, "mask": mask })
        }
        V2Error::BadAge { id, age, tick } => {
            json!({ "kind": "bad_age", "id": id, "age": age, "tick": tick })
        }
        V2Error::OutOfRange { id, field } => {
            json!({ "kind": "out_of_range", "id": id, "field": field })
        }
        V2Error::HashMismatch { expected, computed } => {
            json!({ "kind": "hash_mismatch", "expected": expected, "computed": computed })
        }
        V2Error::Schema(reason) => json!({ "kind": "schema", "reason": reason }),
    }
}

/// `[[id, kind, x, y, field...], ...]` at `tick`, ascending by id.
fn rows_json(state: &ClientState, tick: u32) -> Value {
    let mut rows = Rows::new();
    state.rows_at(tick, &mut rows);
    rows.iter()
        .map(|r| {
            let mut row = vec![
                json!(r.head.id),
                json!(r.head.kind),
                json!(f64::from(r.head.x)),
                json!(f64::from(r.head.y)),
            ];
            row.extend(r.fields.iter().map(|&v| json!(v)));
            Value::Array(row)
        })
        .collect()
}

/// A frame message written field by field (keys in this order, any of them left out).
fn frame_message(fields: &[(&str, FieldValue<'_>)]) -> Vec<u8> {
    let mut out = Vec::new();
    rmp::encode::write_map_len(&mut out, fields.len() as u32).unwrap();
    for (key, value) in fields {
        rmp::encode::write_str(&mut out, key).unwrap();
        match value {
            FieldValue::Uint(v) => {
                rmp::encode::write_uint(&mut out, *v).unwrap();
            }
            FieldValue::Str(s) => rmp::encode::write_str(&mut out, s).unwrap(),
            FieldValue::Bin(b) => rmp::encode::write_bin(&mut out, b).unwrap(),
        }
    }
    out
}

enum FieldValue<'a> {
    Uint(u64),
    Str(&'a str),
    Bin(&'a [u8]),
}

/// `frame` again with another body (and the same header values).
fn with_body(frame: &Frame, ack: u32, body: &[u8]) -> Vec<u8> {
    use FieldValue::*;
    let b = frame.baseline.map_or(0, |base| frame.tick - base);
    let mut fields = vec![
        ("t", Str("s")),
        ("n", Uint(u64::from(frame.tick))),
        ("b", Uint(u64::from(b))),
        ("a", Uint(u64::from(ack))),
    ];
    if let Some(h) = frame.hash {
        fields.push(("h", Uint(u64::from(h))));
    }
    fields.push(("d", Bin(body)));
    frame_message(&fields)
}

/// A hostile variant of `frame`, chosen by `rng`: a byte of the body replaced, the body
/// cut short or extended, the baseline or the hash changed, a key missing or of the wrong
/// type, keys in another order with an unknown one.
fn mutate(rng: &mut SplitMix64, frame: &Frame, ack: u32) -> Vec<u8> {
    use FieldValue::*;
    let body = frame.body.to_vec();
    let n = u64::from(frame.tick);
    let b = frame
        .baseline
        .map_or(0, |base| u64::from(frame.tick - base));
    match rng.below(9) {
        0 | 1 if !body.is_empty() => {
            let mut body = body;
            let i = rng.below(body.len());
            body[i] = rng.next_u64() as u8;
            with_body(frame, ack, &body)
        }
        2 => with_body(frame, ack, &body[..rng.below(body.len() + 1)]),
        3 => {
            let mut body = body;
            body.insert(rng.below(body.len() + 1), rng.next_u64() as u8);
            with_body(frame, ack, &body)
        }
        4 => {
            let h = frame.hash.map_or(1, |h| h ^ (1 << rng.below(32)));
            frame_message(&[
                ("t", Str("s")),
                ("n", Uint(n)),
                ("b", Uint(b)),
                ("a", Uint(0)),
                ("h", Uint(u64::from(h))),
                ("d", Bin(&body)),
            ])
        }
        5 => frame_message(&[
            ("t", Str("s")),
            ("n", Uint(n)),
            ("b", Uint(b + 1 + rng.below(3) as u64)),
            ("a", Uint(0)),
            ("d", Bin(&body)),
        ]),
        6 => {
            let all = [
                ("t", Str("s")),
                ("n", Uint(n)),
                ("b", Uint(b)),
                ("a", Uint(0)),
                ("d", Bin(&body)),
            ];
            let skip = 1 + rng.below(all.len() - 1);
            let kept: Vec<_> = all
                .into_iter()
                .enumerate()
                .filter(|&(i, _)| i != skip)
                .map(|(_, f)| f)
                .collect();
            frame_message(&kept)
        }
        7 => {
            let wrong: [(&str, FieldValue<'_>); 5] = match rng.below(4) {
                0 => [
                    ("t", Str("s")),
                    ("n", Str("7")),
                    ("b", Uint(b)),
                    ("a", Uint(0)),
                    ("d", Bin(&body)),
                ],
                1 => [
                    ("t", Str("s")),
                    ("n", Uint(n)),
                    ("b", Uint(b)),
                    ("a", Uint(1 << 33)),
                    ("d", Bin(&body)),
                ],
                2 => [
                    ("t", Str("s")),
                    ("n", Uint(n)),
                    ("b", Uint(n + 1)),
                    ("a", Uint(0)),
                    ("d", Bin(&body)),
                ],
                _ => [
                    ("t", Str("s")),
                    ("n", Uint(n)),
                    ("b", Uint(b)),
                    ("a", Uint(0)),
                    ("d", Str("body")),
                ],
            };
            frame_message(&wrong)
        }
        _ => frame_message(&[
            ("d", Bin(&body)),
            ("x", Str("unknown keys are ignored")),
            ("a", Uint(u64::from(ack))),
            ("b", Uint(b)),
            ("n", Uint(n)),
            ("t", Str("s")),
        ]),
    }
}

/// Everything the file holds, made from scratch.
fn generate() -> Value {
    let schema = test_schema();
    let interest = Interest {
        radius: 10.0,
        margin: 3.0,
    };
    let config = EncoderConfig {
        interest,
        hash_interval: 5,
        ..EncoderConfig::new(TICK_RATE)
    };
    let mut enc = Encoder::new(&schema, config).unwrap();
    let world_config = WorldConfig {
        w: 40.0,
        h: 30.0,
        entities: 12,
    };
    let mut world = World::new(world_config, 2024);
    let mut rng = SplitMix64::new(0x7e57);
    let follow = world.ids()[0];
    let mut everything = Recipient::new(View::Everything);
    let mut around = Recipient::new(View::Around(follow));
    let mut hostile = Recipient::new(View::Everything);
    // Takes every frame, so its frames are deltas: what was in flight when the hostile
    // client lost its state.
    let mut shadow = Member::new();
    let mut tick = 0;
    for step in 0..90u32 {
        let ticks = 1 + rng.below(2) as u32;
        tick += ticks;
        world.step(f64::from(ticks) / f64::from(TICK_RATE));
        enc.begin_tick(tick, &world.rows()).unwrap();
        for r in [&mut everything, &mut around] {
            let frame = enc.encode_for(&mut r.member, r.taken, r.view, step);
            // Newest wins: a frame not taken now is replaced by the next tick's.
            if rng.below(10) < 7 {
                r.taken = Some(tick);
                let rows = step % 3 == 0 || frame.kind == FrameKind::Keyframe;
                r.apply(&frame.to_bytes(), rows)
                    .expect("an honest frame applies");
            }
        }
        let in_flight = enc.encode_for(&mut shadow, tick.checked_sub(ticks), View::Everything, 0);
        let frame = enc.encode_for(&mut hostile.member, hostile.taken, View::Everything, step);
        hostile.taken = Some(tick);
        let bytes = if step % 2 == 1 {
            mutate(&mut rng, &frame, step)
        } else {
            frame.to_bytes().to_vec()
        };
        if hostile.apply(&bytes, false).is_err() {
            // The client asks for a keyframe, which comes with the next tick; a delta
            // already on its way is ignored.
            hostile.member.request_keyframe();
            if in_flight.kind == FrameKind::Delta {
                let _ = hostile.apply(&in_flight.to_bytes(), false);
            }
        }
    }
    let streams: Vec<Value> = [
        ("everything, newest-wins", everything),
        ("radius 10, newest-wins", around),
        ("hostile frames between keyframes", hostile),
    ]
    .into_iter()
    .map(|(name, r)| json!({ "name": name, "steps": r.steps }))
    .collect();
    json!({
        "about": "v2 test vectors for client implementations; made by the rallypoint-protocol \
                  test v2::tests::vectors, do not edit (RALLYPOINT_WRITE_VECTORS=1 rewrites)",
        "schema": schema,
        "tick_rate": TICK_RATE,
        "streams": streams,
    })
}

#[test]
fn vectors_for_other_clients_are_current() {
    let text = serde_json::to_string(&generate()).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PATH);
    if std::env::var_os("RALLYPOINT_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "{} is stale: run `RALLYPOINT_WRITE_VECTORS=1 cargo test -p rallypoint-protocol \
         vectors` and commit it",
        path.display()
    );
    // The streams took every path a client has.
    let file: Value = serde_json::from_str(&on_disk).unwrap();
    let steps: Vec<&Value> = file["streams"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["steps"].as_array().unwrap())
        .collect();
    let ok = |kind: &str, field: &str| {
        steps
            .iter()
            .any(|s| s["ok"]["kind"] == kind && s["ok"][field].as_u64() > Some(0))
    };
    assert!(ok("keyframe", "full") && ok("delta", "removed"));
    assert!(ok("delta", "full") && ok("delta", "deltas"));
    assert!(steps.iter().any(|s| s["ok"]["hash_checked"] == true));
    for kind in [
        "malformed",
        "truncated",
        "baseline_mismatch",
        "awaiting_keyframe",
        "hash_mismatch",
    ] {
        assert!(steps.iter().any(|s| s["error"]["kind"] == kind), "{kind}");
    }
}
