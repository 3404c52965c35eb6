//! Writes the committed seed corpora, `corpus/<target>/seed-*`, from real messages made by
//! the project's own encoders, tokens signed with the fuzz keys, and hand-built frames.
//! Rerun it after a protocol change:
//!
//! ```text
//! cargo run --manifest-path tests/fuzz/Cargo.toml --example seeds
//! ```
//!
//! Seeds are small on purpose: they show the fuzzer the shape of valid input, and the
//! fuzzer finds the rest. Tokens expire in 2100, so the accepting paths stay reachable.

use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rallypoint_fuzz::{EC_KID, HS256_SECRET};
use rallypoint_protocol::codec::{encode_client, encode_server, snap_message};
use rallypoint_protocol::message::{
    ChatRelay, ChatSend, ClientMessage, ErrorMessage, Event, MapInfo, Ping, Pong, ServerMessage,
    Welcome,
};
use rallypoint_protocol::{Encoding, Subprotocol};
use serde_json::json;

/// 2100-01-01, far enough that seeds do not rot.
const FAR_FUTURE: u64 = 4_102_444_800;

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    dir
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    std::fs::write(corpus(target).join(format!("seed-{name}")), bytes).expect("write seed");
}

fn client_messages() -> Vec<(&'static str, ClientMessage)> {
    vec![
        (
            "input",
            ClientMessage::Input(rallypoint_protocol::examples::input()),
        ),
        ("ping", ClientMessage::Ping(Ping { id: 7 })),
        (
            "chat",
            ClientMessage::Chat(ChatSend {
                text: "gg — wp ✓".into(),
            }),
        ),
    ]
}

fn server_messages() -> Vec<(&'static str, ServerMessage)> {
    let ents = rallypoint_protocol::examples::entities();
    vec![
        (
            "welcome",
            ServerMessage::Welcome(Welcome {
                you: 1,
                room: "duel".into(),
                tick: 100,
                tick_rate: 30,
                map: "courtyard".into(),
                protocol: Subprotocol::V1MsgPack.name().into(),
                snap_rate: 30,
                role: "player".into(),
                resumed: false,
                game: "arena".into(),
                schema: None,
                info: serde_json::json!({"player_radius": 0.5, "max_hp": 100})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            }),
        ),
        ("snap", snap_message(100, 42, ents)),
        ("pong", ServerMessage::Pong(Pong { id: 7, tick: 100 })),
        (
            "chat-relay",
            ServerMessage::Chat(ChatRelay {
                from: 1,
                name: "ana".into(),
                text: "hi".into(),
            }),
        ),
        (
            "event-map",
            ServerMessage::Event(Event::Map(MapInfo {
                name: "courtyard".into(),
                w: 40.0,
                h: 30.0,
                walls: vec![[0.0, 0.0, 40.0, 1.0], [10.0, 10.0, 2.0, 8.0]],
            })),
        ),
        (
            "event-round-end",
            ServerMessage::Event(Event::RoundEnd {
                round: 1,
                winner: Some(1),
                scores: vec![(1, 10), (2, -1)],
                next_tick: 5400,
            }),
        ),
        (
            "event-kill",
            ServerMessage::Event(Event::Kill {
                killer: 1,
                victim: 2,
            }),
        ),
        (
            "error",
            ServerMessage::Error(ErrorMessage {
                code: "rate_limited".into(),
                message: "sustained rate-limit abuse".into(),
            }),
        ),
    ]
}

fn decoders() {
    for (target, enc) in [
        ("decode_msgpack", Encoding::MsgPack),
        ("decode_json", Encoding::Json),
    ] {
        for (name, m) in client_messages() {
            write(target, name, &encode_client(enc, &m));
        }
        for (name, m) in server_messages() {
            write(target, name, &encode_server(enc, &m));
        }
    }
    // What other encoders write: JavaScript's whole numbers as integers, float64, extra
    // keys, keys in another order.
    let js_input = json!({"fire": false, "aim": 0, "my": 1, "mx": 0.25, "seq": 3, "t": "input", "extra": [1, {"a": null}]});
    write("decode_json", "input-js", js_input.to_string().as_bytes());
    let mut msgpack = Vec::new();
    rmp_serde_write(&mut msgpack, &js_input);
    write("decode_msgpack", "input-js", &msgpack);
    // The nesting limit, just over.
    let deep = format!("{}{}", "[".repeat(17), "]".repeat(17));
    write("decode_json", "deep", deep.as_bytes());
    let mut deep = vec![0x81, 0xa1, b't'];
    deep.extend(std::iter::repeat_n(0x91, 17));
    deep.push(0xc0);
    write("decode_msgpack", "deep", &deep);
}

/// MessagePack of a JSON value, maps with string keys, integers where JSON has them.
fn rmp_serde_write(out: &mut Vec<u8>, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Null => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => match n.as_u64() {
            Some(u) if u < 128 => out.push(u as u8),
            _ => {
                out.push(0xcb);
                out.extend_from_slice(&n.as_f64().unwrap_or_default().to_be_bytes());
            }
        },
        Value::String(s) => {
            out.push(0xa0 | s.len() as u8);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(a) => {
            out.push(0x90 | a.len() as u8);
            a.iter().for_each(|x| rmp_serde_write(out, x));
        }
        Value::Object(o) => {
            out.push(0x80 | o.len() as u8);
            for (k, x) in o {
                rmp_serde_write(out, &Value::String(k.clone()));
                rmp_serde_write(out, x);
            }
        }
    }
}

fn token(alg: Algorithm, kid: Option<&str>, claims: &serde_json::Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(HS256_SECRET),
        _ => EncodingKey::from_ec_pem(include_bytes!("../keys/ec-p256-private.pem"))
            .expect("the fuzz EC key"),
    };
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

fn head(target: &str, headers: &[(&str, &str)]) -> String {
    let mut s = format!("GET {target} HTTP/1.1\r\nHost: game.example\r\n");
    for (n, v) in headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s
}

type Headers = Vec<(String, String)>;

fn handshakes() {
    let claims = json!({"sub": "ana", "aud": "rallypoint", "exp": FAR_FUTURE, "name": "Ana", "room": "duel"});
    let hs = token(Algorithm::HS256, None, &claims);
    let es = token(Algorithm::ES256, Some(EC_KID), &claims);
    let expired = token(
        Algorithm::HS256,
        None,
        &json!({"sub": "old", "aud": "rallypoint", "exp": 1_000_000_000}),
    );
    let spectator = token(
        Algorithm::HS256,
        None,
        &json!({"sub": "fan", "aud": "rallypoint", "exp": FAR_FUTURE, "role": "spectator"}),
    );
    let upgrade = [
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    let with = |extra: &[(&str, &str)]| -> Headers {
        upgrade
            .iter()
            .chain(extra)
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    };
    let bearer_hs = format!("Bearer {hs}");
    let bearer_es = format!("Bearer {es}");
    let bearer_expired = format!("Bearer {expired}");
    let bearer_spectator = format!("Bearer {spectator}");
    let browser_offer = format!("rallypoint.v1.msgpack, bearer.{hs}");
    // (seed name, request target, headers)
    let cases: Vec<(&str, String, Headers)> = vec![
        (
            "header-hs256",
            "/play?room=duel".into(),
            with(&[
                ("Sec-WebSocket-Protocol", "rallypoint.v1.msgpack"),
                ("Authorization", &bearer_hs),
            ]),
        ),
        (
            "header-es256-kid",
            "/play".into(),
            with(&[
                (
                    "Sec-WebSocket-Protocol",
                    "rallypoint.v1.json, rallypoint.v1.msgpack",
                ),
                ("Authorization", &bearer_es),
            ]),
        ),
        (
            "bearer-subprotocol",
            "/play".into(),
            with(&[
                ("Sec-WebSocket-Protocol", &browser_offer),
                ("Origin", "https://play.example"),
            ]),
        ),
        (
            "query-token",
            format!("/play?room=a.b-c_d&access_token={hs}"),
            with(&[("Sec-WebSocket-Protocol", "rallypoint.v1.json")]),
        ),
        (
            "expired",
            "/play".into(),
            with(&[
                ("Sec-WebSocket-Protocol", "rallypoint.v1.msgpack"),
                ("Authorization", &bearer_expired),
            ]),
        ),
        (
            "spectator-proxied",
            "/play?room=show".into(),
            with(&[
                ("Sec-WebSocket-Protocol", "rallypoint.v1.msgpack"),
                ("Sec-WebSocket-Protocol", "rallypoint.v9.cbor"),
                ("Authorization", &bearer_spectator),
                ("X-Forwarded-For", "203.0.113.9, 10.0.0.2"),
                ("X-Forwarded-For", "198.51.100.7"),
            ]),
        ),
        (
            "foreign-origin",
            "/play".into(),
            with(&[
                ("Sec-WebSocket-Protocol", "rallypoint.v1.msgpack"),
                ("Authorization", &bearer_hs),
                ("Origin", "https://evil.example"),
            ]),
        ),
        (
            "no-token-unsupported",
            "/play?room=no%20spaces".into(),
            with(&[("Sec-WebSocket-Protocol", "chat, superchat")]),
        ),
        ("not-an-upgrade", "/play".into(), Vec::new()),
    ];
    for (name, target, headers) in cases {
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        write("handshake", name, head(&target, &refs).as_bytes());
    }
}

/// A masked client frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![u8::from(fin) << 7 | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&KEY);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    out
}

fn ws_frames() {
    let input = encode_client(Encoding::MsgPack, &client_messages()[0].1);
    let chat = encode_client(Encoding::Json, &client_messages()[2].1);
    // Byte 0: largest read; byte 1: receive window (see the target's docs).
    let session = [
        frame(true, 2, &input),
        frame(true, 9, b"ping"),
        frame(false, 1, &chat[..5]),
        frame(true, 10, b""),
        frame(true, 0, &chat[5..]),
        frame(true, 2, &[0x90; 300]),
        frame(true, 8, &[0x03, 0xe8, b'o', b'k']),
    ]
    .concat();
    let mut seeds: Vec<(&str, Vec<u8>)> = vec![
        ("session", [&[255, 255][..], &session].concat()),
        ("session-byte-by-byte", [&[0, 4][..], &session].concat()),
    ];
    let mut unmasked = frame(true, 2, &input);
    unmasked[1] &= 0x7f;
    unmasked.drain(2..6);
    seeds.push(("unmasked", [&[255, 255][..], &unmasked].concat()));
    let mut huge = vec![0x82, 0x80 | 127];
    huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
    huge.extend_from_slice(&[0; 4]);
    seeds.push(("huge-length", [&[255, 255][..], &huge].concat()));
    seeds.push((
        "bad-close-code",
        [&[255, 255][..], &frame(true, 8, &[0x03, 0xe7])].concat(),
    ));
    seeds.push((
        "rsv-and-reserved-opcode",
        [
            &[255, 255][..],
            &frame(true, 0x40 | 2, &input),
            &frame(true, 0xb, b""),
        ]
        .concat(),
    ));
    let mut fragments = frame(false, 2, &[0x81]);
    for _ in 0..40 {
        fragments.extend(frame(false, 0, b"x"));
    }
    fragments.extend(frame(true, 0, b""));
    seeds.push(("fragments", [&[7, 255][..], &fragments].concat()));
    for (name, bytes) in seeds {
        write("ws_frames", name, &bytes);
    }
}

fn room_inputs() {
    fn input(client: u8, seq: u32, mx: f32, my: f32, aim: f32, fire: bool) -> Vec<u8> {
        let mut v = vec![3, client];
        v.extend_from_slice(&seq.to_le_bytes());
        for f in [mx, my, aim] {
            v.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        v.push(u8::from(fire));
        v
    }
    let chat = |client: u8, text: &str| -> Vec<u8> {
        [&[4, client, text.len() as u8][..], text.as_bytes()].concat()
    };
    let tick = |n: u8| vec![5, n];
    // Two players (MessagePack, JSON) and a spectator; inputs, chat, ticks.
    let mut play = vec![0, 0, 0, 0, 1, 2, 0, 2, 1];
    for seq in 1..=12 {
        play.extend(input(0, seq, 1.0, 0.5, 0.3, seq % 3 == 0));
        play.extend(input(1, seq, -1.0, 0.0, 3.0, true));
        play.extend(tick(0));
    }
    play.extend(chat(0, "gg"));
    play.extend(chat(2, "spectating ✓"));
    play.extend(tick(3));
    write("room_inputs", "play", &play);
    // A player drops and comes back, another is replaced, a third leaves for good.
    let mut churn = vec![0, 0, 0, 0, 1, 0, 5, 0];
    churn.extend(input(0, 5, 0.0, 1.0, 0.0, false));
    churn.extend([2, 0, 5, 1, 0, 0, 0, 5, 1]);
    churn.extend(input(2, 1, 1.0, 1.0, 1.0, true));
    churn.extend([0, 1, 2, 5, 1, 1, 3, 5, 2, 7, 5, 0]);
    write("room_inputs", "churn", &churn);
    // A client that stops reading while chat piles up, stale and extreme inputs.
    let mut stall = vec![0, 0, 0, 0, 1, 0, 5, 0, 6, 1];
    // Past the 256 queued messages a client may leave unread: it is closed as slow.
    for _ in 0..130 {
        stall.extend(chat(0, "spam"));
        stall.extend(chat(0, "more spam"));
        stall.extend(tick(0));
    }
    stall.extend(input(
        0,
        u32::MAX,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        true,
    ));
    stall.extend(input(0, 1, f32::NAN, 0.0, 0.0, false));
    stall.extend([6, 1, 5, 3]);
    write("room_inputs", "stall", &stall);
}

/// v2 frame sequences, each frame behind its `u16` length: the golden keyframe, the golden
/// pair, and a few seconds of a moving world for one player with a view radius (deltas
/// with motion, removals, entities entering the view).
fn decode_v2() {
    let framed = |frames: &[Vec<u8>]| {
        let mut out = Vec::new();
        for f in frames {
            out.extend_from_slice(&(f.len() as u16).to_le_bytes());
            out.extend_from_slice(f);
        }
        out
    };
    let [key, delta] = rallypoint_protocol::examples::v2_frames();
    write("decode_v2", "keyframe", &framed(&[key.clone()]));
    write("decode_v2", "keyframe-delta", &framed(&[key, delta]));
    write("decode_v2", "world", &framed(&v2_world()));
}

/// Frames for player 1 in a small world: players circling, shots fired and expiring.
fn v2_world() -> Vec<Vec<u8>> {
    use rallypoint_protocol::entity::{Entity, arena_schema};
    use rallypoint_protocol::rows::Rows;
    use rallypoint_protocol::v2::{Encoder, EncoderConfig, Interest, Member, View};
    let config = EncoderConfig {
        interest: Interest {
            radius: 10.0,
            margin: 2.0,
        },
        ..EncoderConfig::new(20)
    };
    let mut enc = Encoder::new(&arena_schema(), config).expect("the arena schema");
    let mut member = Member::new();
    let mut frames = Vec::new();
    for tick in 1..=40u32 {
        let mut rows = Rows::new();
        let t = f64::from(tick) / 20.0;
        for id in 1..=4u32 {
            let a = t * f64::from(id) * 0.7;
            let (x, y) = (10.0 + 6.0 * f64::from(id) * a.cos(), 10.0 + 6.0 * a.sin());
            let (vx, vy) = (-4.2 * f64::from(id) * a.sin(), 4.2 * a.cos());
            let p = Entity::Player {
                id,
                x: x as f32,
                y: y as f32,
                aim: a as f32,
                hp: 100,
                score: 0,
                flags: 0,
            };
            p.push_row(&mut rows, (vx as f32, vy as f32));
        }
        if tick % 10 < 6 {
            let x = 5.0 + 30.0 * f64::from(tick % 10) / 20.0;
            let shot = Entity::Projectile {
                id: 20 + tick / 10,
                x: x as f32,
                y: 9.0,
                vx: 30.0,
                vy: 0.0,
                owner: 2,
            };
            shot.push_row(&mut rows, (0.0, 0.0));
        }
        enc.begin_tick(tick, &rows).expect("valid rows");
        let taken = (tick > 1).then(|| tick - 1);
        frames.push(
            enc.encode_for(&mut member, taken, View::Around(1), tick)
                .to_bytes()
                .to_vec(),
        );
    }
    frames
}

fn main() {
    decoders();
    decode_v2();
    handshakes();
    ws_frames();
    room_inputs();
    println!("seeds written under {}/corpus", env!("CARGO_MANIFEST_DIR"));
}
