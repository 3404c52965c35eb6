//! Codec tests: round trips, golden bytes, and hostile input that must produce typed
//! errors rather than panics or allocations.

use crate::codec::*;
use crate::entity::Entity;
use crate::message::*;
use crate::{ClientMessage, DecodeError, DecodeLimits, Encoding, ServerMessage};

const BOTH: [Encoding; 2] = [Encoding::MsgPack, Encoding::Json];

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn unhex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect()
}

pub(crate) fn sample_input() -> ClientMessage {
    ClientMessage::Input(crate::examples::input())
}

fn sample_ents() -> Vec<Entity> {
    crate::examples::entities()
}

fn client_samples() -> Vec<ClientMessage> {
    vec![
        sample_input(),
        ClientMessage::Ping(Ping { id: u32::MAX }),
        ClientMessage::Chat(ChatSend {
            text: "gg — wp ✓".into(),
        }),
    ]
}

fn server_samples() -> Vec<ServerMessage> {
    vec![
        ServerMessage::Welcome(Welcome {
            you: 7,
            room: "arena-1".into(),
            tick: 1234,
            tick_rate: 30,
            map: "courtyard".into(),
            protocol: "rallypoint.v1.msgpack".into(),
            snap_rate: 30,
            role: "player".into(),
            resumed: false,
            game: "arena".into(),
            schema: None,
            info: serde_json::json!({"player_radius": 0.5, "max_hp": 100})
                .as_object()
                .unwrap()
                .clone(),
        }),
        snap_message(100, 42, sample_ents()),
        snap_message(0, 0, vec![]),
        ServerMessage::Pong(Pong { id: 3, tick: 99 }),
        ServerMessage::Chat(ChatRelay {
            from: 1,
            name: "ana".into(),
            text: "hi".into(),
        }),
        ServerMessage::Error(ErrorMessage {
            code: "rate_limited".into(),
            message: "slow down".into(),
        }),
        ServerMessage::Moved(Moved {
            url: "wss://eu2.example:443/play?room=arena-1".into(),
        }),
        ServerMessage::Event(Event::Player {
            id: 1,
            name: "ana".into(),
        }),
        ServerMessage::Event(Event::Leave { id: 1 }),
        ServerMessage::Event(Event::Kill {
            killer: 1,
            victim: 2,
        }),
        ServerMessage::Event(Event::Respawn {
            id: 2,
            x: 3.0,
            y: 4.0,
        }),
        ServerMessage::Event(Event::Pickup { id: 5, by: 1 }),
        ServerMessage::Event(Event::Map(MapInfo {
            name: "courtyard".into(),
            w: 40.0,
            h: 30.0,
            walls: vec![[0.0, 0.0, 40.0, 1.0], [10.0, 10.0, 2.0, 8.0]],
        })),
        ServerMessage::Event(Event::RoundStart {
            round: 2,
            map: "courtyard".into(),
            end_tick: 9000,
            score_limit: 10,
        }),
        ServerMessage::Event(Event::RoundEnd {
            round: 2,
            winner: Some(1),
            scores: vec![(1, 10), (2, -1)],
            next_tick: 9150,
        }),
        ServerMessage::Event(Event::RoundEnd {
            round: 3,
            winner: None,
            scores: vec![],
            next_tick: 1,
        }),
    ]
}

#[test]
fn every_client_message_round_trips_in_both_encodings() {
    for enc in BOTH {
        for msg in client_samples() {
            let bytes = encode_client(enc, &msg);
            let back = decode_client(enc, &bytes, &DecodeLimits::default()).unwrap();
            assert_eq!(back, msg, "{enc}");
        }
    }
}

#[test]
fn every_server_message_round_trips_in_both_encodings() {
    for enc in BOTH {
        for msg in server_samples() {
            let bytes = encode_server(enc, &msg);
            assert_eq!(decode_server(enc, &bytes).unwrap(), msg, "{enc}: {msg:?}");
        }
    }
}

#[test]
fn json_shapes_are_the_documented_ones() {
    let j =
        |m: &ServerMessage| String::from_utf8(encode_server(Encoding::Json, m).to_vec()).unwrap();
    assert_eq!(
        String::from_utf8(encode_client(Encoding::Json, &sample_input()).to_vec()).unwrap(),
        r#"{"t":"input","seq":42,"mx":1.0,"my":-0.5,"aim":1.5,"fire":true}"#
    );
    assert_eq!(
        j(&ServerMessage::Pong(Pong { id: 3, tick: 99 })),
        r#"{"t":"pong","id":3,"tick":99}"#
    );
    assert_eq!(
        j(&ServerMessage::Event(Event::Kill {
            killer: 1,
            victim: 2
        })),
        r#"{"t":"event","e":"kill","killer":1,"victim":2}"#
    );
    assert_eq!(
        j(&snap_message(7, 3, vec![sample_ents()[3]])),
        r#"{"t":"snap","tick":7,"ack":3,"ents":[[5,2,20.0,15.0,1]]}"#
    );
}

/// The bytes of the hex dump `<!-- hex:NAME -->` in PROTOCOL.md (each line's bytes up to
/// the two spaces before its annotation).
pub(crate) fn protocol_md_dump(name: &str) -> Vec<u8> {
    let doc = include_str!("../PROTOCOL.md");
    let start = doc
        .find(&format!("<!-- hex:{name} -->"))
        .unwrap_or_else(|| panic!("no dump {name}"));
    let body = &doc[start..];
    let body = &body[body.find("```\n").unwrap() + 4..];
    let body = &body[..body.find("```").unwrap()];
    unhex(
        &body
            .lines()
            .map(|l| l.split("  ").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The hex dumps in PROTOCOL.md are the encoder's real output: this test keeps them so.
#[test]
fn golden_bytes_match_protocol_md() {
    let doc = include_str!("../PROTOCOL.md");
    let dump = protocol_md_dump;
    let input = encode_client(Encoding::MsgPack, &sample_input());
    let snap = encode_server(Encoding::MsgPack, &snap_message(100, 42, sample_ents()));
    assert_eq!(
        hex(&dump("input")),
        hex(&input),
        "input dump in PROTOCOL.md is stale"
    );
    assert_eq!(
        hex(&dump("snap")),
        hex(&snap),
        "snap dump in PROTOCOL.md is stale"
    );
    let json = encode_server(Encoding::Json, &snap_message(100, 42, sample_ents()));
    assert!(
        doc.contains(std::str::from_utf8(&json).unwrap()),
        "snap JSON in PROTOCOL.md is stale"
    );
}

#[test]
fn shared_snapshot_body_equals_a_full_encoding() {
    for enc in BOTH {
        let ents = sample_ents();
        let body = encode_ents(enc, &ents);
        for (tick, ack) in [(0, 0), (100, 42), (u32::MAX, 70_000), (255, 65_536)] {
            let framed = snap_frame(enc, tick, ack, &body);
            let whole = encode_server(enc, &snap_message(tick, ack, ents.clone()));
            assert_eq!(framed, whole, "{enc} tick={tick} ack={ack}");
        }
    }
}

#[test]
fn snapshot_header_is_readable_without_the_entities() {
    let body = encode_ents(Encoding::MsgPack, &sample_ents());
    let frame = snap_frame(Encoding::MsgPack, 1_000_000, 77, &body);
    assert_eq!(peek_type(&frame), Some("snap"));
    assert_eq!(
        peek_snap_header(&frame),
        Some(SnapHeader {
            tick: 1_000_000,
            ack: 77
        })
    );
    let pong = encode_server(
        Encoding::MsgPack,
        &ServerMessage::Pong(Pong { id: 1, tick: 2 }),
    );
    assert_eq!(peek_type(&pong), Some("pong"));
    assert_eq!(peek_snap_header(&pong), None);
    assert_eq!(peek_snap_header(&frame[..5]), None);
}

#[test]
fn unknown_extra_keys_are_ignored() {
    let json = br#"{"t":"ping","id":5,"extra":{"deep":[1,2,3]},"v":2}"#;
    assert_eq!(
        decode_client(Encoding::Json, json, &DecodeLimits::default()).unwrap(),
        ClientMessage::Ping(Ping { id: 5 })
    );
    // The same in MessagePack, with the type key last.
    let mut mp = Vec::new();
    rmp::encode::write_map_len(&mut mp, 3).unwrap();
    rmp::encode::write_str(&mut mp, "id").unwrap();
    rmp::encode::write_uint(&mut mp, 5).unwrap();
    rmp::encode::write_str(&mut mp, "future").unwrap();
    rmp::encode::write_array_len(&mut mp, 1).unwrap();
    rmp::encode::write_nil(&mut mp).unwrap();
    rmp::encode::write_str(&mut mp, "t").unwrap();
    rmp::encode::write_str(&mut mp, "ping").unwrap();
    assert_eq!(
        decode_client(Encoding::MsgPack, &mp, &DecodeLimits::default()).unwrap(),
        ClientMessage::Ping(Ping { id: 5 })
    );
}

#[test]
fn javascript_style_numbers_are_accepted() {
    // JS MessagePack encoders write whole numbers as integers and others as float64.
    let mut mp = Vec::new();
    rmp::encode::write_map_len(&mut mp, 6).unwrap();
    for (k, v) in [
        ("t", None),
        ("seq", Some(1.0)),
        ("mx", Some(0.0)),
        ("my", Some(-1.0)),
        ("aim", Some(0.25)),
    ] {
        rmp::encode::write_str(&mut mp, k).unwrap();
        match (k, v) {
            ("t", _) => rmp::encode::write_str(&mut mp, "input").unwrap(),
            (_, Some(v)) if v == (v as i64) as f64 => {
                rmp::encode::write_sint(&mut mp, v as i64).unwrap();
            }
            (_, Some(v)) => rmp::encode::write_f64(&mut mp, v).unwrap(),
            _ => unreachable!(),
        }
    }
    rmp::encode::write_str(&mut mp, "fire").unwrap();
    rmp::encode::write_bool(&mut mp, false).unwrap();
    let msg = decode_client(Encoding::MsgPack, &mp, &DecodeLimits::default()).unwrap();
    assert_eq!(
        msg,
        ClientMessage::Input(Input {
            seq: 1,
            mx: 0.0,
            my: -1.0,
            aim: 0.25,
            fire: false,
            view: None,
        })
    );
}

fn err(enc: Encoding, bytes: &[u8]) -> DecodeError {
    decode_client(enc, bytes, &DecodeLimits::default()).unwrap_err()
}

#[test]
fn truncated_messages_are_malformed() {
    for enc in BOTH {
        let full = encode_client(enc, &sample_input());
        for cut in 0..full.len() {
            let e = err(enc, &full[..cut]);
            assert!(
                matches!(e, DecodeError::Malformed { .. } | DecodeError::MissingType),
                "{enc} cut at {cut}: {e:?}"
            );
            assert_eq!(e.close_reason().code(), 1007);
        }
    }
}

#[test]
fn trailing_bytes_are_malformed() {
    let mut mp = encode_client(Encoding::MsgPack, &sample_input()).to_vec();
    mp.push(0xc0);
    assert!(matches!(
        err(Encoding::MsgPack, &mp),
        DecodeError::Malformed { .. }
    ));
    let mut js = encode_client(Encoding::Json, &sample_input()).to_vec();
    js.extend_from_slice(b"{}");
    assert!(matches!(
        err(Encoding::Json, &js),
        DecodeError::Malformed { .. }
    ));
}

#[test]
fn wrong_types_and_missing_keys_are_schema_errors() {
    let cases: [&[u8]; 5] = [
        br#"{"t":"input","seq":"1","mx":0,"my":0,"aim":0,"fire":false}"#,
        br#"{"t":"input","seq":1,"mx":0,"my":0,"aim":0}"#,
        br#"{"t":"ping","id":-1}"#,
        br#"{"t":"ping","id":4294967296}"#,
        br#"{"t":"chat","text":5}"#,
    ];
    for case in cases {
        let e = err(Encoding::Json, case);
        assert!(
            matches!(e, DecodeError::Schema(_)),
            "{}: {e:?}",
            String::from_utf8_lossy(case)
        );
        // The same shapes in MessagePack.
        let value: serde_json::Value = serde_json::from_slice(case).unwrap();
        let mp = rmp_serde::to_vec_named(&value).unwrap();
        let e = err(Encoding::MsgPack, &mp);
        assert!(
            matches!(e, DecodeError::Schema(_)),
            "msgpack {}: {e:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn unknown_and_missing_type_are_typed() {
    for enc in BOTH {
        let unknown = match enc {
            Encoding::Json => br#"{"t":"teleport","x":1}"#.to_vec(),
            Encoding::MsgPack => {
                rmp_serde::to_vec_named(&serde_json::json!({"t":"teleport","x":1})).unwrap()
            }
        };
        assert_eq!(
            err(enc, &unknown),
            DecodeError::UnknownType("teleport".into())
        );
        let missing = match enc {
            Encoding::Json => br#"{"id":1}"#.to_vec(),
            Encoding::MsgPack => rmp_serde::to_vec_named(&serde_json::json!({"id":1})).unwrap(),
        };
        assert_eq!(err(enc, &missing), DecodeError::MissingType);
        let not_a_map = match enc {
            Encoding::Json => b"[1,2]".to_vec(),
            Encoding::MsgPack => vec![0x92, 0x01, 0x02],
        };
        assert_eq!(err(enc, &not_a_map), DecodeError::MissingType);
    }
}

#[test]
fn non_finite_floats_are_invalid() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let msg = ClientMessage::Input(Input {
            seq: 1,
            mx: 0.0,
            my: 0.0,
            aim: bad,
            fire: false,
            view: None,
        });
        let bytes = encode_client(Encoding::MsgPack, &msg);
        assert_eq!(
            err(Encoding::MsgPack, &bytes),
            DecodeError::Invalid(InvalidMessage::NotFinite("aim"))
        );
    }
    // A float64 too big for f32 becomes infinite and is rejected the same way.
    let mp = rmp_serde::to_vec_named(
        &serde_json::json!({"t":"input","seq":1,"mx":1e300,"my":0,"aim":0,"fire":false}),
    )
    .unwrap();
    assert_eq!(
        err(Encoding::MsgPack, &mp),
        DecodeError::Invalid(InvalidMessage::NotFinite("mx"))
    );
    // JSON cannot spell NaN; out-of-range literals are schema errors, never panics.
    let e = err(
        Encoding::Json,
        br#"{"t":"input","seq":1,"mx":NaN,"my":0,"aim":0,"fire":false}"#,
    );
    assert!(matches!(e, DecodeError::Malformed { .. }), "{e:?}");
    let e = err(
        Encoding::Json,
        br#"{"t":"input","seq":1,"mx":1e999,"my":0,"aim":0,"fire":false}"#,
    );
    assert_eq!(e.close_reason().code(), 1007);
}

#[test]
fn deep_nesting_is_rejected_without_recursion() {
    let limits = DecodeLimits {
        max_message_bytes: 1 << 20,
        ..DecodeLimits::default()
    };
    // 100k nested arrays inside a ping.
    let mut mp = Vec::new();
    rmp::encode::write_map_len(&mut mp, 2).unwrap();
    rmp::encode::write_str(&mut mp, "t").unwrap();
    rmp::encode::write_str(&mut mp, "ping").unwrap();
    rmp::encode::write_str(&mut mp, "id").unwrap();
    mp.extend(std::iter::repeat_n(0x91u8, 100_000));
    mp.push(0x01);
    assert_eq!(
        decode_client(Encoding::MsgPack, &mp, &limits).unwrap_err(),
        DecodeError::TooDeep { limit: 16 }
    );
    // Bare nesting, no map at all.
    let bare = vec![0x91u8; 100_000];
    assert!(decode_client(Encoding::MsgPack, &bare, &limits).is_err());
    let json = format!(
        r#"{{"t":"ping","id":1,"x":{}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        decode_client(Encoding::Json, json.as_bytes(), &limits).unwrap_err(),
        DecodeError::TooDeep { limit: 16 }
    );
    let bare = "[".repeat(100_000);
    assert_eq!(
        decode_client(Encoding::Json, bare.as_bytes(), &limits).unwrap_err(),
        DecodeError::TooDeep { limit: 16 }
    );
}

#[test]
fn declared_huge_lengths_do_not_allocate() {
    // array32 / map32 / str32 / bin32 declaring ~4 GiB, inside an otherwise valid message.
    for marker in [0xdd, 0xdf, 0xdb, 0xc6] {
        let mut mp = Vec::new();
        rmp::encode::write_map_len(&mut mp, 2).unwrap();
        rmp::encode::write_str(&mut mp, "t").unwrap();
        rmp::encode::write_str(&mut mp, "chat").unwrap();
        rmp::encode::write_str(&mut mp, "text").unwrap();
        mp.push(marker);
        mp.extend_from_slice(&u32::MAX.to_be_bytes());
        mp.extend_from_slice(b"abc");
        let e = err(Encoding::MsgPack, &mp);
        // A bin32 is refused as soon as its marker is seen: client messages have none.
        assert!(
            matches!(e, DecodeError::Malformed { .. } | DecodeError::Binary),
            "marker {marker:#x}: {e:?}"
        );
    }
    // As the whole message.
    let e = err(Encoding::MsgPack, &[0xdd, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(e, DecodeError::Malformed { .. }), "{e:?}");
}

#[test]
fn oversized_messages_are_too_large() {
    let text = "x".repeat(5000);
    for enc in BOTH {
        let bytes = encode_client(enc, &ClientMessage::Chat(ChatSend { text: text.clone() }));
        let e = err(enc, &bytes);
        assert!(
            matches!(e, DecodeError::TooLarge { limit: 4096, .. }),
            "{e:?}"
        );
        assert_eq!(e.close_reason().code(), 1009);
    }
}

#[test]
fn long_chat_is_invalid() {
    let text = "é".repeat(201);
    for enc in BOTH {
        let bytes = encode_client(enc, &ClientMessage::Chat(ChatSend { text: text.clone() }));
        assert_eq!(
            err(enc, &bytes),
            DecodeError::Invalid(InvalidMessage::ChatTooLong {
                chars: 201,
                limit: 200
            })
        );
    }
}

#[test]
fn garbage_never_panics() {
    // A cheap deterministic sweep; the fuzz targets do this properly.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds: Vec<Vec<u8>> = BOTH
        .iter()
        .flat_map(|&e| {
            client_samples()
                .into_iter()
                .map(move |m| encode_client(e, &m).to_vec())
        })
        .collect();
    for i in 0..20_000 {
        let mut bytes = seeds[i % seeds.len()].clone();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % bytes.len().max(1);
            match next() % 3 {
                0 if !bytes.is_empty() => bytes[at] = next() as u8,
                1 => bytes.insert(at.min(bytes.len()), next() as u8),
                _ => bytes.truncate(at),
            }
        }
        for enc in BOTH {
            let _ = decode_client(enc, &bytes, &DecodeLimits::default());
            let _ = decode_server(enc, &bytes);
            let _ = peek_snap_header(&bytes);
        }
    }
}

#[test]
fn move_vector_is_clamped() {
    let i = Input {
        seq: 1,
        mx: 3.0,
        my: 4.0,
        aim: 0.0,
        fire: false,
        view: None,
    };
    let (x, y) = i.clamped_move();
    assert!((x - 0.6).abs() < 1e-6 && (y - 0.8).abs() < 1e-6);
    let i = Input {
        seq: 1,
        mx: 0.3,
        my: 0.4,
        aim: 0.0,
        fire: false,
        view: None,
    };
    assert_eq!(i.clamped_move(), (0.3, 0.4));
}

#[test]
fn the_view_of_an_input_is_optional_and_only_written_when_present() {
    let limits = DecodeLimits::default();
    let with_view = Input {
        view: Some(4_000_000_000),
        ..crate::examples::input()
    };
    for enc in BOTH {
        let bytes = encode_client(enc, &ClientMessage::Input(with_view));
        assert_eq!(
            decode_client(enc, &bytes, &limits),
            Ok(ClientMessage::Input(with_view))
        );
    }
    assert_eq!(
        String::from_utf8(encode_client(Encoding::Json, &ClientMessage::Input(with_view)).to_vec())
            .unwrap(),
        r#"{"t":"input","seq":42,"mx":1.0,"my":-0.5,"aim":1.5,"fire":true,"view":4000000000}"#
    );
    // Older clients send none (and JSON tools may send null): judged against the present.
    for json in [
        &br#"{"t":"input","seq":1,"mx":0,"my":0,"aim":0,"fire":false}"#[..],
        br#"{"t":"input","seq":1,"mx":0,"my":0,"aim":0,"fire":false,"view":null}"#,
    ] {
        let Ok(ClientMessage::Input(i)) = decode_client(Encoding::Json, json, &limits) else {
            panic!("decodes")
        };
        assert_eq!(i.view, None);
    }
    let bad = br#"{"t":"input","seq":1,"mx":0,"my":0,"aim":0,"fire":false,"view":-1}"#;
    assert!(decode_client(Encoding::Json, bad, &limits).is_err());
}

#[test]
fn unknown_entity_kinds_and_extra_columns_survive() {
    let json = br#"{"t":"snap","tick":1,"ack":0,"ents":[[1,0,1.0,2.0,0.0,100,0,0,"future"],[2,9,3.0,4.0,1,2,3]]}"#;
    let ServerMessage::Snap(snap) = decode_server(Encoding::Json, json).unwrap() else {
        panic!()
    };
    assert_eq!(snap.ents[0].id(), 1);
    assert_eq!(
        snap.ents[1],
        Entity::Other {
            id: 2,
            kind: 9,
            x: 3.0,
            y: 4.0
        }
    );
}

/// Prints the dumps pasted into PROTOCOL.md: `cargo test -p rallypoint-protocol -- --nocapture print_dumps`.
#[test]
fn print_dumps() {
    let [v2_keyframe, v2_delta] = crate::examples::v2_frames();
    for (name, bytes) in [
        (
            "input",
            encode_client(Encoding::MsgPack, &sample_input()).to_vec(),
        ),
        (
            "snap",
            encode_server(Encoding::MsgPack, &snap_message(100, 42, sample_ents())).to_vec(),
        ),
        ("v2-keyframe", v2_keyframe),
        ("v2-delta", v2_delta),
    ] {
        println!("{name} ({} bytes):", bytes.len());
        for chunk in bytes.chunks(16) {
            println!("{}", hex(chunk));
        }
    }
}

fn mp(value: serde_json::Value) -> Vec<u8> {
    rmp_serde::to_vec_named(&value).unwrap()
}

fn both(value: serde_json::Value) -> [(Encoding, Vec<u8>); 2] {
    [
        (Encoding::MsgPack, mp(value.clone())),
        (Encoding::Json, serde_json::to_vec(&value).unwrap()),
    ]
}

#[test]
fn the_type_key_must_be_a_string() {
    // serde would read an integer tag as a variant index: 1 would be a `ping`.
    for (enc, bytes) in both(serde_json::json!({"t": 1, "id": 1})) {
        let e = err(enc, &bytes);
        assert!(
            matches!(&e, DecodeError::Schema(m) if m.starts_with("t: ")),
            "{enc}: {e:?}"
        );
        assert_eq!(e.close_reason().code(), 1007);
    }
    for (enc, bytes) in both(serde_json::json!({"t": ["ping"], "id": 1})) {
        assert!(matches!(err(enc, &bytes), DecodeError::Schema(_)), "{enc}");
    }
}

#[test]
fn strings_sent_as_bytes_are_refused() {
    // `t` as bin8.
    let mut m = Vec::new();
    rmp::encode::write_map_len(&mut m, 2).unwrap();
    rmp::encode::write_str(&mut m, "t").unwrap();
    rmp::encode::write_bin(&mut m, b"ping").unwrap();
    rmp::encode::write_str(&mut m, "id").unwrap();
    rmp::encode::write_uint(&mut m, 1).unwrap();
    assert_eq!(err(Encoding::MsgPack, &m), DecodeError::Binary);
    // Chat text as bin8, and an ext value in an unknown extra key.
    let mut m = Vec::new();
    rmp::encode::write_map_len(&mut m, 2).unwrap();
    rmp::encode::write_str(&mut m, "t").unwrap();
    rmp::encode::write_str(&mut m, "chat").unwrap();
    rmp::encode::write_str(&mut m, "text").unwrap();
    rmp::encode::write_bin(&mut m, b"hello").unwrap();
    assert_eq!(err(Encoding::MsgPack, &m), DecodeError::Binary);
    let mut m = Vec::new();
    rmp::encode::write_map_len(&mut m, 3).unwrap();
    rmp::encode::write_str(&mut m, "t").unwrap();
    rmp::encode::write_str(&mut m, "ping").unwrap();
    rmp::encode::write_str(&mut m, "id").unwrap();
    rmp::encode::write_uint(&mut m, 1).unwrap();
    rmp::encode::write_str(&mut m, "x").unwrap();
    m.extend_from_slice(&[0xd4, 0x01, 0x00]);
    assert_eq!(err(Encoding::MsgPack, &m), DecodeError::Binary);
    assert_eq!(DecodeError::Binary.close_reason().code(), 1007);
}

/// A ping whose extra key holds arrays nested so that the whole message is `depth` deep.
fn nested_ping(depth: usize) -> serde_json::Value {
    let mut v = serde_json::json!(1);
    for _ in 1..depth {
        v = serde_json::json!([v]);
    }
    serde_json::json!({"t": "ping", "id": 1, "x": v})
}

#[test]
fn the_nesting_limit_means_the_same_in_both_encodings() {
    let limits = DecodeLimits::default();
    for (enc, bytes) in both(nested_ping(limits.max_depth)) {
        assert_eq!(
            decode_client(enc, &bytes, &limits),
            Ok(ClientMessage::Ping(Ping { id: 1 })),
            "{enc}: {} deep is within the limit",
            limits.max_depth
        );
    }
    for (enc, bytes) in both(nested_ping(limits.max_depth + 1)) {
        assert_eq!(
            decode_client(enc, &bytes, &limits),
            Err(DecodeError::TooDeep {
                limit: limits.max_depth
            }),
            "{enc}: one level more is refused"
        );
    }
}

#[test]
fn errors_name_what_was_wrong() {
    let cases = [
        (
            serde_json::json!({"t":"input","seq":1,"mx":"fast","my":0,"aim":0,"fire":false}),
            "input.mx: invalid type: string \"fast\", expected f32",
        ),
        (
            serde_json::json!({"t":"input","seq":-3,"mx":0,"my":0,"aim":0,"fire":false}),
            "input.seq: invalid value",
        ),
        (
            serde_json::json!({"t":"input","seq":1,"mx":0,"my":0,"fire":false}),
            "input: missing field `aim`",
        ),
        (
            serde_json::json!({"t":"pnig","id":1}),
            "unknown message type \"pnig\"",
        ),
        (
            serde_json::json!({"t":"chat","text":"x".repeat(201)}),
            "chat.text: 201 characters, limit 200",
        ),
        (serde_json::json!({"t":"ping"}), "ping: missing field `id`"),
    ];
    for (value, want) in cases {
        for (enc, bytes) in both(value.clone()) {
            let got = err(enc, &bytes).to_string();
            // The two decoders word a wrong type differently; the key path is the same.
            let prefix = want.split(':').next().unwrap();
            assert!(got.starts_with(prefix), "{enc} {value}: {got}");
            if enc == Encoding::Json {
                assert!(got.starts_with(want), "{value}: {got}");
            }
        }
    }
    let bad = ClientMessage::Input(Input {
        seq: 1,
        mx: f32::NAN,
        my: 0.0,
        aim: 0.0,
        fire: false,
        view: None,
    });
    let e = err(Encoding::MsgPack, &encode_client(Encoding::MsgPack, &bad));
    assert_eq!(e.to_string(), "input.mx: not a finite number");
}

#[test]
fn client_data_in_errors_is_short_and_visible() {
    let name = format!("\u{202e}\u{1b}[31m{}", "z".repeat(5000));
    for (enc, bytes) in both(serde_json::json!({"t": name, "id": 1})) {
        let limits = DecodeLimits {
            max_message_bytes: 1 << 16,
            ..DecodeLimits::default()
        };
        let msg = decode_client(enc, &bytes, &limits).unwrap_err().to_string();
        assert!(msg.chars().count() < 64, "{enc}: {msg}");
        assert!(
            !msg.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{msg:?}"
        );
    }
    let long = "q".repeat(3000);
    for (enc, bytes) in both(serde_json::json!({"t":"ping","id":long})) {
        let limits = DecodeLimits {
            max_message_bytes: 1 << 16,
            ..DecodeLimits::default()
        };
        let msg = decode_client(enc, &bytes, &limits).unwrap_err().to_string();
        assert!(msg.starts_with("ping.id: "), "{msg}");
        assert!(msg.chars().count() < 120, "{enc}: {msg}");
    }
}

#[test]
fn resync_is_a_message_of_its_own() {
    for (enc, bytes) in both(serde_json::json!({"t":"resync"})) {
        assert_eq!(
            decode_client(enc, &bytes, &DecodeLimits::default()),
            Ok(ClientMessage::Resync)
        );
    }
    let bytes = encode_client(Encoding::Json, &ClientMessage::Resync);
    assert_eq!(&bytes[..], br#"{"t":"resync"}"#);
}

#[test]
fn arena_rows_encode_exactly_as_the_typed_entities() {
    use crate::entity::arena_schema;
    use crate::rows::{Rows, V1Rows};
    let schema = arena_schema();
    schema.check().unwrap();
    let ents = sample_ents();
    let mut rows = Rows::new();
    for e in &ents {
        e.push_row(&mut rows, (1.5, -2.0));
    }
    for enc in BOTH {
        let typed = encode_ents(enc, &ents);
        let generic = match enc {
            Encoding::MsgPack => rmp_serde::to_vec(&V1Rows {
                schema: &schema,
                rows: &rows,
            })
            .unwrap(),
            Encoding::Json => serde_json::to_vec(&V1Rows {
                schema: &schema,
                rows: &rows,
            })
            .unwrap(),
        };
        assert_eq!(hex(&generic), hex(&typed), "{enc}");
    }
    let back: Vec<Entity> = rows.iter().map(Entity::from_row).collect();
    assert_eq!(back, ents);
    // The schema travels to v2 clients; it must survive the trip.
    let json = serde_json::to_string(&schema).unwrap();
    assert_eq!(
        serde_json::from_str::<crate::rows::RowSchema>(&json).unwrap(),
        schema
    );
}

#[test]
fn game_events_get_the_engine_envelope() {
    let events = [
        Event::Kill {
            killer: 1,
            victim: 2,
        },
        Event::RoundEnd {
            round: 3,
            winner: None,
            scores: vec![(1, 4), (2, -1)],
            next_tick: 900,
        },
        Event::Tuning(crate::message::TuningInfo {
            player_radius: 0.5,
            max_hp: 100,
            max_speed: 8.0,
            acceleration: 60.0,
        }),
    ];
    for enc in BOTH {
        for e in &events {
            assert_eq!(
                encode_event(enc, e),
                encode_server(enc, &ServerMessage::Event(e.clone())),
                "{enc} {e:?}"
            );
        }
    }
    let tuning = br#"{"t":"event","e":"tuning","player_radius":0.5,"max_hp":100,"max_speed":8.0,"acceleration":60.0}"#;
    assert_eq!(
        decode_server(Encoding::Json, tuning).unwrap(),
        ServerMessage::Event(events[2].clone())
    );
    // A client meets another game's event as `Unknown`, not as an error.
    let other = br#"{"t":"event","e":"tagged","it":3}"#;
    assert_eq!(
        decode_server(Encoding::Json, other).unwrap(),
        ServerMessage::Event(Event::Unknown)
    );
}
