//! The abuse matrix, row by row: each test starts a server, puts a well-behaved player (a
//! [`Bystander`]) in a room, abuses the same room (or, for handshake-level abuse, the same
//! server), asserts the exact HTTP status or close code (and the `{"t":"error"}` code when
//! the server sends one), and then asserts that the bystander kept receiving snapshots
//! steadily the whole time.
//!
//! Frames are written by hand ([`rallypoint_tests::raw`]) so that every rule of RFC 6455
//! can be broken. Where tungstenite itself answers a violation (an invalid close code),
//! the test pins what actually reaches the wire; `SECURITY.md` lists every row.
//!
//! Timing assertions are deliberately lenient (half the expected snapshots, no gap over
//! 800 ms): CI machines are noisy and several servers run at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rallypoint_protocol::codec::encode_client;
use rallypoint_protocol::message::{ClientMessage, Input, Ping};
use rallypoint_protocol::{Encoding, Subprotocol};
use rallypoint_tests::raw::{
    Frame, RSV1, RSV2, RSV3, RawClosed, RawWs, close_frame, frame, op, upgrade_request,
};
use rallypoint_tests::{
    Cadence, Client, Connect, HttpResponse, TempDir, TestServer, claims, copy_dir, now, parse_http,
    repo_assets, tcp_small_rcvbuf,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::server;

const MSGPACK: Subprotocol = Subprotocol::V1MsgPack;
const JSON: Subprotocol = Subprotocol::V1Json;
/// The room every test abuses.
const ROOM: &str = "abused";
/// The longest silence between two snapshots the bystander tolerates.
const MAX_GAP: Duration = Duration::from_millis(800);
/// The shortest time the bystander watches.
const MIN_WATCH: Duration = Duration::from_secs(1);

/// A well-behaved player: sends one input per 100 ms and records every snapshot until
/// [`Bystander::finish`].
struct Bystander {
    joined: Instant,
    stop: Arc<AtomicBool>,
    task: JoinHandle<Seen>,
}

/// What the bystander saw.
#[derive(Debug)]
struct Seen {
    cadence: Cadence,
    started: Instant,
    ended: Instant,
    snap_rate: u16,
    /// False if the connection ended under it.
    connected: bool,
    /// Last input `seq` sent, and the last `ack` received.
    sent: u32,
    acked: u32,
}

impl Bystander {
    async fn join(s: &TestServer) -> Bystander {
        let mut c = Connect::new(s)
            .protocol(MSGPACK.name())
            .header_token(&s.token("bystander"))
            .query(&format!("room={ROOM}"))
            .connect()
            .await
            .expect("the bystander is admitted");
        let welcome = c.expect_welcome().await;
        assert_eq!(welcome.room, ROOM);
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(Self::play(c, welcome.snap_rate, Arc::clone(&stop)));
        Bystander {
            joined: Instant::now(),
            stop,
            task,
        }
    }

    async fn play(mut c: Client, snap_rate: u16, stop: Arc<AtomicBool>) -> Seen {
        let started = Instant::now();
        let mut seen = Seen {
            cadence: Cadence::default(),
            started,
            ended: started,
            snap_rate,
            connected: true,
            sent: 0,
            acked: 0,
        };
        while !stop.load(Ordering::Relaxed) {
            // Walk in a slow circle so the simulation has something to do.
            let t = started.elapsed().as_secs_f32();
            seen.sent = c.input(t.cos(), t.sin(), t, false).await;
            match c.listen(Duration::from_millis(100)).await {
                Some(part) => {
                    seen.cadence.arrivals.extend(part.arrivals);
                    seen.cadence.headers.extend(part.headers);
                }
                None => {
                    seen.connected = false;
                    break;
                }
            }
        }
        seen.ended = Instant::now();
        seen.acked = seen.cadence.headers.last().map_or(0, |h| h.1);
        seen
    }

    /// Stops the bystander and asserts it was served steadily throughout. It watches for
    /// at least [`MIN_WATCH`], so that what follows a quick abuse (the close linger, the
    /// room noticing the departure) is watched too.
    async fn finish(self) -> Seen {
        tokio::time::sleep_until((self.joined + MIN_WATCH).into()).await;
        self.stop.store(true, Ordering::Relaxed);
        let seen = self.task.await.expect("bystander task");
        assert!(seen.connected, "the bystander was disconnected: {seen:?}");
        let span = seen.ended - seen.started;
        let expected = span.as_secs_f64() * f64::from(seen.snap_rate);
        let got = seen.cadence.arrivals.len();
        assert!(
            got as f64 >= 0.5 * expected,
            "the bystander got {got} snapshots in {span:?}, expected about {expected:.0}"
        );
        // Gaps between snapshots, and at both ends of the watch.
        let mut points = vec![seen.started];
        points.extend(seen.cadence.arrivals.iter().copied());
        points.push(seen.ended);
        let gap = points
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        assert!(gap < MAX_GAP, "the bystander saw a {gap:?} gap");
        // Its inputs kept being applied, not just its snapshots sent.
        assert!(
            seen.acked + 5 >= seen.sent,
            "acks fell behind: sent {} acked {}",
            seen.sent,
            seen.acked
        );
        seen
    }
}

/// An attacker with a valid token in the abused room, speaking WebSocket by hand.
///
/// Tests that connect many attackers one after another reuse one account: a new account
/// takes a seat until the room's next tick processes its join, so a burst of distinct
/// accounts within one tick would fill the room (503 `room_full`), while the same account
/// reattaches to its own seat.
async fn attacker(s: &TestServer, sub: &str, protocol: Subprotocol) -> RawWs {
    RawWs::connect(
        s.game,
        &format!("/play?room={ROOM}"),
        protocol,
        &s.token(sub),
    )
    .await
    .unwrap_or_else(|r| panic!("attacker {sub} rejected: {} {}", r.status, r.text()))
}

/// Sends each case's bytes from a fresh attacker; each must end in 1002
/// `protocol_violation`.
async fn each_is_a_protocol_violation(s: &TestServer, cases: Vec<(&str, Vec<u8>)>) {
    for (what, bytes) in cases {
        let mut m = attacker(s, "mallory", MSGPACK).await;
        let _ = m.send(&bytes).await;
        assert_eq!(
            m.closed().await,
            closed(1002, "protocol_violation"),
            "{what}"
        );
    }
}

fn closed(code: u16, error: &str) -> RawClosed {
    RawClosed {
        code,
        error: Some(error.to_owned()),
    }
}

fn input_frame(seq: u32) -> Vec<u8> {
    let msg = ClientMessage::Input(Input {
        seq,
        mx: 0.5,
        my: 0.5,
        aim: 0.0,
        fire: true,
        view: None,
    });
    frame(op::BINARY, &encode_client(Encoding::MsgPack, &msg))
}

/// A TCP connection from another loopback address, i.e. another client IP.
async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source address");
    socket.connect(to).await.expect("connect")
}

fn assert_refused(r: &HttpResponse, status: u16, error: &str) {
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (status, Some(error)),
        "{}",
        r.text()
    );
}

fn retry_after(r: &HttpResponse) -> u64 {
    r.header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After missing: {:?}", r.headers))
}

#[tokio::test]
async fn handshake_flood_gets_429_per_ip() {
    // The rate is under test here; the pending share (40 sockets at once) has its own.
    let s = server()
        .args(["--handshake-rate", "5/5"])
        .args(["--max-pending-handshakes-per-ip", "64"])
        .start();
    let bystander = Bystander::join(&s).await;
    // 40 upgrades at once from the bystander's own address. Tokens are not even valid:
    // admission runs before the token check, so the flood costs the server no signature.
    let flood: Vec<_> = (0..40)
        .map(|_| {
            let addr = s.game;
            tokio::spawn(async move {
                let tcp = TcpStream::connect(addr).await.expect("connect");
                let req = upgrade_request(addr, "/play", MSGPACK.name(), "x.y.z");
                RawWs::upgrade(tcp, &req)
                    .await
                    .expect_err("no flood upgrade succeeds")
            })
        })
        .collect();
    let started = Instant::now();
    let mut limited = 0;
    let mut passed = 0;
    for f in flood {
        let r = f.await.unwrap();
        match r.status {
            429 => {
                assert_refused(&r, 429, "too_many_handshakes");
                assert!((1..=5).contains(&retry_after(&r)));
                limited += 1;
            }
            401 => passed += 1,
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    // The bucket held 4 handshakes (5 minus the bystander's) and refills at 5/s.
    let refill = (started.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert!(passed <= 4 + refill, "{passed} handshakes got through");
    assert!(limited >= 30, "only {limited} were rate limited");
    // Another address is not affected.
    let tcp = connect_from([127, 0, 0, 2], s.game).await;
    let req = upgrade_request(
        s.game,
        "/play?room=other",
        MSGPACK.name(),
        &s.token("elsewhere"),
    );
    RawWs::upgrade(tcp, &req)
        .await
        .expect("another IP is admitted");
    bystander.finish().await;
}

/// Dribbles a request head one byte per 100 ms and returns the server's answer and when it
/// came.
async fn dribble(addr: SocketAddr) -> (HttpResponse, Duration) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    tcp.write_all(b"GET /play HTTP/1.1\r\nX-Slow: ")
        .await
        .expect("write");
    let mut answer = Vec::new();
    loop {
        let mut buf = [0u8; 1024];
        tokio::select! {
            n = tcp.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                // The server may already have answered and stopped reading.
                let _ = tcp.write_all(b"a").await;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no answer");
    }
    (parse_http(&answer), started.elapsed())
}

#[tokio::test]
async fn slowloris_is_cut_at_the_handshake_timeout_and_capped() {
    let s = server()
        .args(["--handshake-timeout", "1s", "--max-pending-handshakes", "6"])
        .start();
    let bystander = Bystander::join(&s).await;
    let slow: Vec<_> = (0..6).map(|_| tokio::spawn(dribble(s.game))).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every pending slot is taken: the next socket is refused at once, unread.
    let mut extra = TcpStream::connect(s.game).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut buf))
        .await
        .expect("refused at once")
        .unwrap();
    let busy = parse_http(&buf);
    assert_refused(&busy, 503, "server_busy");
    assert_eq!(retry_after(&busy), 1);
    for s in slow {
        let (r, waited) = s.await.unwrap();
        // The deadline is absolute: dribbling does not extend it.
        assert_refused(&r, 408, "handshake_timeout");
        assert!(
            (Duration::from_millis(900)..Duration::from_secs(3)).contains(&waited),
            "answered after {waited:?}"
        );
    }
    // The slots come back once each refused socket is closed (the server reads what is
    // left for up to half a second after answering, so its answer is not reset away).
    let started = Instant::now();
    let mut late = loop {
        match Connect::new(&s)
            .protocol(MSGPACK.name())
            .header_token(&s.token("late"))
            .connect()
            .await
        {
            Ok(c) => break c,
            Err(r) if r.status == 503 && started.elapsed() < Duration::from_secs(3) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(r) => panic!("not admitted after the slowloris: {r:?}"),
        }
    };
    late.expect_welcome().await;
    bystander.finish().await;
}

#[tokio::test]
async fn fragmentation_bomb_of_tiny_frames_is_1009() {
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    let mut m = attacker(&s, "mallory", MSGPACK).await;
    // A binary message started and then continued one byte at a time, 5000 times: the
    // total crosses the 4 KiB message limit long before the end.
    let mut bomb = Frame::new(op::BINARY).fin(false).encode(&[0x80]);
    let piece = Frame::new(op::CONTINUATION).fin(false).encode(&[0]);
    for _ in 0..5000 {
        bomb.extend_from_slice(&piece);
    }
    let _ = m.send(&bomb).await;
    assert_eq!(m.closed().await, closed(1009, "message_too_large"));
    bystander.finish().await;
}

#[tokio::test]
async fn endless_empty_continuation_frames_are_1009_at_the_fragment_cap() {
    // The heartbeat is left at its 30 s default: the cap alone must end this.
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    let mut m = attacker(&s, "mallory", MSGPACK).await;
    // A message that never grows and never ends: no size limit is ever crossed and no
    // message is ever complete; it is cut when its frame count passes the cap.
    m.send(&Frame::new(op::BINARY).fin(false).encode(&[0x80]))
        .await
        .unwrap();
    let empty = Frame::new(op::CONTINUATION).fin(false).encode(&[]);
    let started = Instant::now();
    let flood = m.flood(empty.repeat(4096), Duration::from_secs(8));
    assert_eq!(m.closed().await, closed(1009, "message_too_large"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    flood.abort();
    bystander.finish().await;
}

#[tokio::test]
async fn a_message_in_a_few_fragments_is_accepted() {
    let s = server().start();
    let mut c = attacker(&s, "fragmented", JSON).await;
    // `{"t":"ping","id":7}` in four frames, a ping between two of them: within the cap.
    let text = br#"{"t":"ping","id":7}"#;
    let mut bytes = Frame::new(op::TEXT).fin(false).encode(&text[..5]);
    bytes.extend(frame(op::PING, b"between"));
    bytes.extend(Frame::new(op::CONTINUATION).fin(false).encode(&text[5..10]));
    bytes.extend(
        Frame::new(op::CONTINUATION)
            .fin(false)
            .encode(&text[10..15]),
    );
    bytes.extend(Frame::new(op::CONTINUATION).encode(&text[15..]));
    c.send(&bytes).await.unwrap();
    let pong = loop {
        let f = c.read_frame().await.expect("the session stays open");
        if f.opcode == op::TEXT && f.payload.starts_with(br#"{"t":"pong""#) {
            break f.payload;
        }
    };
    assert!(
        String::from_utf8_lossy(&pong).contains(r#""id":7"#),
        "{}",
        String::from_utf8_lossy(&pong)
    );
}

/// Opens `n` sockets from `source` that send nothing, and returns those the server kept
/// open (still pending) and the answers of those it refused at once.
async fn idle_sockets(
    source: [u8; 4],
    to: SocketAddr,
    n: usize,
) -> (Vec<TcpStream>, Vec<HttpResponse>) {
    let mut sockets = Vec::new();
    for _ in 0..n {
        sockets.push(connect_from(source, to).await);
    }
    // A refused socket is answered and closed at once; a pending one says nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut kept, mut refused) = (Vec::new(), Vec::new());
    for mut tcp in sockets {
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(Duration::from_millis(20), tcp.read(&mut buf)).await {
            Err(_) => kept.push(tcp),
            Ok(Ok(n)) if n > 0 => refused.push(parse_http(&buf[..n])),
            Ok(other) => panic!("closed without an answer: {other:?}"),
        }
    }
    (kept, refused)
}

#[tokio::test]
async fn one_address_cannot_hold_the_pending_pool_and_another_still_gets_in() {
    // A pool of 20 with a share of 16 per address: the flood from 127.0.0.1 keeps 16
    // sockets idle, the rest are refused at once, and 127.0.0.2 still plays.
    let s = server()
        .args(["--max-pending-handshakes", "20"])
        .args(["--max-pending-handshakes-per-ip", "16"])
        .start();
    let (held, refused) = idle_sockets([127, 0, 0, 1], s.game, 40).await;
    assert_eq!(held.len(), 16, "the flooding address keeps its share only");
    assert_eq!(refused.len(), 24);
    for r in &refused {
        assert_refused(r, 429, "too_many_pending_handshakes");
        assert_eq!(retry_after(r), 1);
    }
    let tcp = connect_from([127, 0, 0, 2], s.game).await;
    let req = upgrade_request(s.game, "/play", MSGPACK.name(), &s.token("neighbour"));
    let mut ws = RawWs::upgrade(tcp, &req)
        .await
        .expect("another address is admitted while the first floods");
    assert!(ws.read_frame().await.is_some(), "and welcomed");
    drop(held);
}

#[tokio::test]
async fn ping_flood_is_1008() {
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    let mut m = attacker(&s, "mallory", MSGPACK).await;
    let _ = m.send(&frame(op::PING, b"flood!!!").repeat(2000)).await;
    assert_eq!(m.closed().await, closed(1008, "rate_limited"));
    bystander.finish().await;
}

#[tokio::test]
async fn unsolicited_pong_flood_is_1008() {
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    let mut m = attacker(&s, "mallory", MSGPACK).await;
    // Unsolicited pongs are legal (a one-way heartbeat) but cost as much as pings, so they
    // are charged to the same quota. Flood for longer than the abuse budget lasts.
    let flood = m.flood(
        frame(op::PONG, b"flood!!!").repeat(1000),
        Duration::from_secs(6),
    );
    assert_eq!(m.closed().await, closed(1008, "rate_limited"));
    flood.abort();
    bystander.finish().await;
}

#[tokio::test]
async fn input_flood_is_1008() {
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    let mut m = attacker(&s, "mallory", MSGPACK).await;
    let flood: Vec<u8> = (1..=3000).flat_map(input_frame).collect();
    let _ = m.send(&flood).await;
    assert_eq!(m.closed().await, closed(1008, "rate_limited"));
    bystander.finish().await;
}

#[tokio::test]
async fn chat_flood_is_1008() {
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    let mut m = attacker(&s, "mallory", JSON).await;
    let line = frame(op::TEXT, br#"{"t":"chat","text":"buy gold"}"#);
    let _ = m.send(&line.repeat(500)).await;
    assert_eq!(m.closed().await, closed(1008, "rate_limited"));
    // Past the chat burst, lines were dropped and counted until the abuse budget (two
    // seconds of ticks: 60) ran out.
    let dropped = s
        .metric("rallypoint_rate_limited_messages_total", "kind=\"chat\"")
        .await;
    assert!(dropped >= 60.0, "{dropped} chat lines dropped");
    bystander.finish().await;
}

#[tokio::test]
async fn oversized_frames_are_1009() {
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    // A 64-bit length of 1 TiB, nothing behind it: refused from the header alone.
    let mut m = attacker(&s, "huge", MSGPACK).await;
    let _ = m
        .send(&Frame::new(op::BINARY).declared_len(1 << 40).encode(&[]))
        .await;
    assert_eq!(m.closed().await, closed(1009, "message_too_large"));
    // A 16-bit length just over the limit, payload and all.
    let mut m = attacker(&s, "big", JSON).await;
    let _ = m.send(&frame(op::TEXT, &[b' '; 4097])).await;
    assert_eq!(m.closed().await, closed(1009, "message_too_large"));
    // Far over the limit with the whole payload sent: the server stops reading frames at
    // the header, yet the close frame must not be lost to a reset over the unread rest.
    let mut m = attacker(&s, "bulky", MSGPACK).await;
    let _ = m.send(&frame(op::BINARY, &[0x90; 200_000])).await;
    assert_eq!(m.closed().await, closed(1009, "message_too_large"));
    // The refused payload keeps coming after the server's close: the server reads it
    // away for the linger rather than resetting the connection under a client that is
    // still sending (a reset can destroy the close frame before it is read).
    let mut m = attacker(&s, "trickle", MSGPACK).await;
    let _ = m
        .send(
            &Frame::new(op::BINARY)
                .declared_len(100_000)
                .encode(&[0x90; 2_000]),
        )
        .await;
    assert_eq!(m.closed().await, closed(1009, "message_too_large"));
    for i in 0..8 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sent = m.send(&[0x90; 2_000]).await;
        assert!(sent.is_ok(), "write {i} after the close: {sent:?}");
    }
    bystander.finish().await;
}

/// Deterministic noise.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 56) as u8
        })
        .collect()
}

#[tokio::test]
async fn garbage_is_1002_outside_frames_and_1007_inside() {
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    // Bytes that are not frames at all (here: another HTTP request, then noise). The first
    // byte, 'G', has RSV1 set.
    let mut m = attacker(&s, "noisy", MSGPACK).await;
    let mut junk = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    junk.extend(noise(2048, 7));
    let _ = m.send(&junk).await;
    assert_eq!(m.closed().await, closed(1002, "protocol_violation"));
    // Well-formed frames carrying noise, in both encodings.
    let mut m = attacker(&s, "noisy-msgpack", MSGPACK).await;
    let mut payload = vec![0xc1];
    payload.extend(noise(200, 8));
    let _ = m.send(&frame(op::BINARY, &payload)).await;
    assert_eq!(m.closed().await, closed(1007, "invalid_message"));
    let mut m = attacker(&s, "noisy-json", JSON).await;
    let _ = m.send(&frame(op::TEXT, b"}{\"t\":[[[[1,2")).await;
    assert_eq!(m.closed().await, closed(1007, "invalid_message"));
    bystander.finish().await;
}

/// After closing, the server reads for at most the close linger (2 s), so its close frame
/// is not destroyed by a reset; a peer that never answers the close and keeps sending is
/// then dropped, not read forever.
#[tokio::test]
async fn a_peer_that_never_answers_the_close_is_dropped_after_the_linger() {
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    let mut m = attacker(&s, "deaf", MSGPACK).await;
    m.send(&frame(op::BINARY, &[0xc1])).await.unwrap();
    assert_eq!(m.closed().await, closed(1007, "invalid_message"));
    // Well-formed frames, never a close: only the linger can end this.
    let started = Instant::now();
    let flood = m.flood(input_frame(1).repeat(64), Duration::from_secs(30));
    assert!(
        m.read_frame().await.is_none(),
        "nothing after the close frame but the end of the connection"
    );
    let dropped_after = started.elapsed();
    assert!(
        dropped_after < Duration::from_secs(8),
        "dropped {dropped_after:?} after its close frame, while the peer kept sending"
    );
    flood.abort();
    bystander.finish().await;
}

/// A client that closes gets the server's close frame and then, straight away, the end
/// of the TCP connection: the server shuts its side first (RFC 6455 §7.1.1 has the server
/// close TCP; a client waits for it), even while the client still has bytes on the way,
/// rather than reading until its 2 s linger runs out.
#[tokio::test]
async fn after_a_client_close_the_server_ends_tcp_at_once() {
    let s = server().start();
    let mut c = attacker(&s, "leaver", MSGPACK).await;
    c.send(&close_frame(1000, b"bye")).await.unwrap();
    assert_eq!(c.closed().await.code, 1000, "the close is answered");
    let started = Instant::now();
    // Bytes still arriving keep the server's drain from ever going quiet.
    let flood = c.flood(vec![0], Duration::from_secs(10));
    assert!(
        c.read_frame().await.is_none(),
        "nothing after the close frame"
    );
    let ended_after = started.elapsed();
    flood.abort();
    assert!(
        ended_after < Duration::from_millis(1500),
        "the server ended TCP {ended_after:?} after its close frame (the linger is 2 s)"
    );
}

#[tokio::test]
async fn invalid_utf8_on_json_is_1007() {
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    let mut m = attacker(&s, "whole", JSON).await;
    let _ = m
        .send(&frame(op::TEXT, b"{\"t\":\"chat\",\"text\":\"\xc3\x28\"}"))
        .await;
    assert_eq!(m.closed().await, closed(1007, "invalid_message"));
    // Split across fragments, the bad sequence straddling the boundary.
    let mut m = attacker(&s, "split", JSON).await;
    let mut bytes = Frame::new(op::TEXT)
        .fin(false)
        .encode(b"{\"t\":\"chat\",\"text\":\"\xe2\x82");
    bytes.extend(Frame::new(op::CONTINUATION).encode(b"\x28\"}"));
    let _ = m.send(&bytes).await;
    assert_eq!(m.closed().await, closed(1007, "invalid_message"));
    bystander.finish().await;
}

#[tokio::test]
async fn unmasked_client_frame_is_1002() {
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    let mut m = attacker(&s, "bare", MSGPACK).await;
    let ping = encode_client(Encoding::MsgPack, &ClientMessage::Ping(Ping { id: 1 }));
    let _ = m
        .send(&Frame::new(op::BINARY).unmasked().encode(&ping))
        .await;
    assert_eq!(m.closed().await, closed(1002, "protocol_violation"));
    bystander.finish().await;
}

#[tokio::test]
async fn reserved_bits_and_opcodes_are_1002() {
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    let ping = encode_client(Encoding::MsgPack, &ClientMessage::Ping(Ping { id: 1 }));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("RSV1", Frame::new(op::BINARY).rsv(RSV1).encode(&ping)),
        ("RSV2", Frame::new(op::BINARY).rsv(RSV2).encode(&ping)),
        ("RSV3", Frame::new(op::BINARY).rsv(RSV3).encode(&ping)),
        ("data opcode 0x3", Frame::new(0x3).encode(&ping)),
        ("data opcode 0x7", Frame::new(0x7).encode(&ping)),
        ("control opcode 0xB", Frame::new(0xB).encode(b"")),
        ("control opcode 0xF", Frame::new(0xF).encode(b"")),
        (
            "continuation with nothing to continue",
            Frame::new(op::CONTINUATION).encode(&ping),
        ),
        (
            "a new message inside a fragmented one",
            [
                Frame::new(op::BINARY).fin(false).encode(&ping[..2]),
                frame(op::BINARY, &ping),
            ]
            .concat(),
        ),
    ];
    each_is_a_protocol_violation(&s, cases).await;
    bystander.finish().await;
}

#[tokio::test]
async fn control_frames_over_125_bytes_or_fragmented_are_1002() {
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("ping of 126 bytes", frame(op::PING, &[b'p'; 126])),
        ("pong of 1000 bytes", frame(op::PONG, &[b'p'; 1000])),
        ("close of 126 bytes", close_frame(1000, &[b'r'; 124])),
        (
            "fragmented ping",
            Frame::new(op::PING).fin(false).encode(b"p"),
        ),
    ];
    each_is_a_protocol_violation(&s, cases).await;
    bystander.finish().await;
}

#[tokio::test]
async fn close_frames_with_invalid_codes() {
    let s = server().start();
    let bystander = Bystander::join(&s).await;
    // Codes a peer may not send (as tungstenite reads RFC 6455: below 1000, 1004-1006,
    // 1014-2999, 5000 and up). tungstenite answers these itself, with 1002 and no `error`
    // message: the close handshake is already under way, so the session cannot send one.
    for code in [0u16, 999, 1004, 1005, 1006, 1014, 1015, 2999, 5000, 65535] {
        let mut m = attacker(&s, "mallory", MSGPACK).await;
        let _ = m.send(&close_frame(code, b"")).await;
        assert_eq!(
            m.closed().await,
            RawClosed {
                code: 1002,
                error: None
            },
            "close code {code}"
        );
    }
    // A one-byte close payload cannot hold a code: the session's own 1002.
    let mut m = attacker(&s, "mallory", MSGPACK).await;
    let _ = m.send(&frame(op::CLOSE, &[0x03])).await;
    assert_eq!(m.closed().await, closed(1002, "protocol_violation"));
    // A reason that is not UTF-8: 1007, like any invalid text.
    let mut m = attacker(&s, "mallory", MSGPACK).await;
    let _ = m.send(&close_frame(1000, b"\xff\xfe")).await;
    assert_eq!(m.closed().await, closed(1007, "invalid_message"));
    // Valid codes are echoed (normal, registered, and the library and private ranges).
    for code in [1000, 1011, 3000, 4321] {
        let mut m = attacker(&s, "mallory", MSGPACK).await;
        m.send(&close_frame(code, b"bye")).await.unwrap();
        assert_eq!(m.closed().await, RawClosed { code, error: None });
    }
    bystander.finish().await;
}

#[tokio::test]
async fn connection_caps_are_429_per_ip_and_503_globally() {
    let s = server()
        .args(["--max-connections-per-ip", "3", "--max-connections", "5"])
        .start();
    let bystander = Bystander::join(&s).await;
    let path = format!("/play?room={ROOM}");
    // The bystander holds one of 127.0.0.1's three.
    let _a = attacker(&s, "a1", MSGPACK).await;
    let _b = attacker(&s, "a2", MSGPACK).await;
    let r = RawWs::connect(s.game, &path, MSGPACK, &s.token("a3"))
        .await
        .expect_err("a fourth connection from one IP");
    assert_refused(&r, 429, "too_many_connections");
    assert!(retry_after(&r) >= 1);
    // From another address: two more fit under the global cap of five, then 503.
    let mut held = Vec::new();
    for i in 0..3 {
        let tcp = connect_from([127, 0, 0, 2], s.game).await;
        let req = upgrade_request(s.game, &path, MSGPACK.name(), &s.token(&format!("b{i}")));
        match RawWs::upgrade(tcp, &req).await {
            Ok(ws) if i < 2 => held.push(ws),
            Ok(_) => panic!("connection {} admitted over the global cap", 6),
            Err(r) if i == 2 => {
                assert_refused(&r, 503, "server_full");
                assert!(retry_after(&r) >= 1);
            }
            Err(r) => panic!("refused under the cap: {} {}", r.status, r.text()),
        }
    }
    bystander.finish().await;
}

#[tokio::test]
async fn the_room_cap_is_503() {
    let s = server().args(["--max-rooms", "1"]).start();
    let bystander = Bystander::join(&s).await;
    // The bystander's room is the only one allowed: a new name finds no room.
    let r = RawWs::connect(s.game, "/play?room=another", MSGPACK, &s.token("roomless"))
        .await
        .expect_err("no second room");
    assert_refused(&r, 503, "server_full");
    assert!(retry_after(&r) >= 1);
    // Automatic placement still finds the open room.
    let mut placed = s.join("placed", MSGPACK).await;
    let _ = &mut placed;
    bystander.finish().await;
}

#[tokio::test]
async fn spectator_seats_are_capped_with_503() {
    let dir = TempDir::new("assets");
    copy_dir(&repo_assets(), &dir.0);
    let game = std::fs::read_to_string(dir.join("game.toml")).unwrap();
    assert!(game.contains("spectator_capacity = 32"));
    let game = game.replace("spectator_capacity = 32", "spectator_capacity = 1");
    std::fs::write(dir.join("game.toml"), game).unwrap();
    let s = server().assets(&dir.0).start();
    let bystander = Bystander::join(&s).await;
    let spectator = |sub: &str| {
        let mut c = claims(sub);
        c["role"] = json!("spectator");
        s.token_with(&c)
    };
    let path = format!("/play?room={ROOM}");
    let _fan = RawWs::connect(s.game, &path, MSGPACK, &spectator("fan-1"))
        .await
        .expect("the one spectator seat");
    let r = RawWs::connect(s.game, &path, MSGPACK, &spectator("fan-2"))
        .await
        .expect_err("no second spectator");
    assert_refused(&r, 503, "room_full");
    assert!(retry_after(&r) >= 1);
    bystander.finish().await;
}

#[tokio::test]
async fn a_slow_reader_is_dropped_without_stalling_the_room() {
    let s = server()
        .args(["--send-timeout", "1s", "--tcp-send-buffer", "4096"])
        .start();
    let bystander = Bystander::join(&s).await;
    // A player that never reads, behind a tiny receive window. It holds the trigger, so
    // snapshots carry projectiles and its buffers fill quickly.
    let tcp = tcp_small_rcvbuf(s.game).await;
    let mut slow = Connect::new(&s)
        .protocol(MSGPACK.name())
        .header_token(&s.token("sloth"))
        .query(&format!("room={ROOM}"))
        .connect_over(Box::new(tcp))
        .await
        .expect("admitted");
    let started = Instant::now();
    let mut cut = 0.0;
    let fire = encode_client(
        Encoding::MsgPack,
        &ClientMessage::Input(Input {
            seq: 1,
            mx: 1.0,
            my: 0.0,
            aim: 0.0,
            fire: true,
            view: None,
        }),
    );
    slow.send_raw(Message::Binary(fire)).await;
    while started.elapsed() < Duration::from_secs(15) {
        cut = s
            .metric(
                "rallypoint_session_closes_total",
                "reason=\"slow_consumer\"",
            )
            .await;
        if cut > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cut, 1.0, "the slow reader was never cut");
    // The close frame cannot pass a full buffer: once the client reads again it finds the
    // stale data, then the end of the connection, with no close frame.
    assert_eq!(slow.closed().await.code, 1006);
    bystander.finish().await;
}

#[tokio::test]
async fn a_token_expiring_mid_session_is_4001() {
    let s = server().args(["--jwt-leeway", "0s"]).start();
    let bystander = Bystander::join(&s).await;
    let mut c = claims("brief");
    c["exp"] = json!(now() + 2);
    let mut m = RawWs::connect(
        s.game,
        &format!("/play?room={ROOM}"),
        MSGPACK,
        &s.token_with(&c),
    )
    .await
    .expect("admitted while the token is valid");
    let started = Instant::now();
    assert_eq!(m.closed().await, closed(4001, "token_expired"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    bystander.finish().await;
}
