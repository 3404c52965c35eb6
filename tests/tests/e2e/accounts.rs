//! One account, one place: seats and directory entries never outlive the session that
//! took them, one live session per account whatever the roles, and nothing reaches a
//! client before its `welcome` — each as a client (or an attacker) sees it.

use std::time::Duration;

use rallypoint_protocol::codec::{decode_server, encode_client};
use rallypoint_protocol::message::{ClientMessage, Ping, ServerMessage};
use rallypoint_protocol::{Encoding, Subprotocol};
use rallypoint_tests::raw::{RawWs, close_frame, frame, op, upgrade_request};
use rallypoint_tests::{Closed, Connect, TempDir, TestServer, claims, copy_dir, repo_assets};
use serde_json::json;
use tokio::net::TcpStream;

use crate::server;

const MSGPACK: Subprotocol = Subprotocol::V1MsgPack;

/// A server whose rooms seat two players.
fn two_seat_server() -> (TestServer, TempDir) {
    let dir = TempDir::new("assets");
    copy_dir(&repo_assets(), &dir.0);
    let game = std::fs::read_to_string(dir.join("game.toml")).unwrap();
    assert!(game.contains("room_capacity = 16"));
    std::fs::write(
        dir.join("game.toml"),
        game.replace("room_capacity = 16", "room_capacity = 2"),
    )
    .unwrap();
    (server().assets(&dir.0).start(), dir)
}

fn spectator_token(s: &TestServer, sub: &str) -> String {
    let mut c = claims(sub);
    c["role"] = json!("spectator");
    s.token_with(&c)
}

async fn join_room(s: &TestServer, token: &str, room: &str) -> rallypoint_tests::Client {
    let mut c = Connect::new(s)
        .protocol(MSGPACK.name())
        .header_token(token)
        .query(&format!("room={room}"))
        .connect()
        .await
        .expect("connect");
    c.expect_welcome().await;
    c
}

async fn players_in(s: &TestServer, room: &str) -> usize {
    let rooms = s.admin_get("/admin/rooms").await.json();
    rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == room)
        .map_or(0, |r| r["players"].as_array().unwrap().len())
}

/// Connects `sub` to `room` and ends the session in the same write as the request head
/// (`close`: a close frame; otherwise the socket is reset), so the session ends before
/// its room can process the join.
async fn hit_and_run(s: &TestServer, sub: &str, room: &str, close: bool) {
    let tcp = TcpStream::connect(s.game).await.unwrap();
    let head = upgrade_request(
        s.game,
        &format!("/play?room={room}"),
        MSGPACK.name(),
        &s.token(sub),
    );
    if close {
        let _ = RawWs::upgrade_with(tcp, &head, &close_frame(1000, b"")).await;
    } else {
        let mut tcp = tcp;
        tcp.set_zero_linger().unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut tcp, head.as_bytes())
            .await
            .unwrap();
        drop(tcp);
    }
}

#[tokio::test]
async fn a_session_closed_at_once_leaves_no_seat_and_no_pin() {
    let (s, _dir) = two_seat_server();
    let _holder = join_room(&s, &s.token("holder"), "r").await;
    hit_and_run(&s, "quick", "r", true).await;
    // Its seat is free again: the room fills to its cap, and no further.
    let filler = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let c = Connect::new(&s)
                .protocol(MSGPACK.name())
                .header_token(&s.token("filler"))
                .query("room=r")
                .connect()
                .await;
            match c {
                Ok(c) => break c,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .expect("the quick account's seat comes back");
    let full = Connect::new(&s)
        .protocol(MSGPACK.name())
        .header_token(&s.token("late"))
        .query("room=r")
        .connect()
        .await
        .expect_err("the room is full");
    assert_eq!(full.status, 503, "{full:?}");
    // And the account is not pinned to `r`: it lands where it asks, and can be kicked.
    let mut c = Connect::new(&s)
        .protocol(MSGPACK.name())
        .header_token(&s.token("quick"))
        .query("room=elsewhere")
        .connect()
        .await
        .expect("connect");
    assert_eq!(c.expect_welcome().await.room, "elsewhere");
    let kicked = s.admin_post("/admin/kick?sub=quick").await;
    assert_eq!(kicked.status, 200, "{}", kicked.text());
    assert_eq!(players_in(&s, "r").await, 2, "never over capacity");
    drop(filler);
}

#[tokio::test]
async fn a_session_reset_at_once_leaks_nothing_and_never_overfills() {
    let (s, _dir) = two_seat_server();
    let _holder = join_room(&s, &s.token("holder"), "r").await;
    hit_and_run(&s, "flaky", "r", false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Depending on when the reset lands, the handshake never completed (the account is
    // free) or the player dropped and waits for resume in `r` (and goes back to it).
    let mut c = Connect::new(&s)
        .protocol(MSGPACK.name())
        .header_token(&s.token("flaky"))
        .query("room=elsewhere")
        .connect()
        .await
        .expect("connect");
    let w = c.expect_welcome().await;
    match (w.room.as_str(), w.resumed) {
        ("r", true) => {}
        ("elsewhere", false) => {
            let _filler = join_room(&s, &s.token("filler"), "r").await;
        }
        other => panic!("neither resumed in r nor placed where asked: {other:?}"),
    }
    let full = Connect::new(&s)
        .protocol(MSGPACK.name())
        .header_token(&s.token("late"))
        .query("room=r")
        .connect()
        .await
        .expect_err("the room is full");
    assert_eq!(full.status, 503, "{full:?}");
    assert_eq!(players_in(&s, "r").await, 2, "never over capacity");
}

#[tokio::test]
async fn one_live_session_per_account_whatever_the_roles() {
    let s = server().start();
    // Five spectator sessions of one account: each replaces the one before.
    let mut fans = Vec::new();
    for _ in 0..5 {
        fans.push(join_room(&s, &spectator_token(&s, "fan"), "stands").await);
    }
    let last = fans.pop().unwrap();
    for mut old in fans {
        assert_eq!(
            old.closed().await,
            Closed {
                code: 4004,
                error: Some("replaced".into())
            }
        );
    }
    // A player session of the same account replaces the spectator, in any room.
    let mut last = last;
    let player = join_room(&s, &s.token("fan"), "pitch").await;
    assert_eq!(last.closed().await.code, 4004);
    // And a spectator session again replaces the player.
    let _spectator = join_room(&s, &spectator_token(&s, "fan"), "pitch").await;
    let mut player = player;
    assert_eq!(player.closed().await.code, 4004);
}

#[tokio::test]
async fn operators_can_kick_spectators() {
    let s = server().start();
    let mut fan = join_room(&s, &spectator_token(&s, "watcher"), "stands").await;
    let r = s.admin_post("/admin/kick?sub=watcher").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        fan.closed().await,
        Closed {
            code: 4002,
            error: Some("kicked".into())
        }
    );
}

#[tokio::test]
async fn welcome_is_first_even_when_a_ping_rides_with_the_upgrade() {
    let s = server().start();
    for _ in 0..5 {
        let tcp = TcpStream::connect(s.game).await.unwrap();
        let head = upgrade_request(s.game, "/play", MSGPACK.name(), &s.token("eager"));
        let ping = encode_client(Encoding::MsgPack, &ClientMessage::Ping(Ping { id: 9 }));
        let mut ws = RawWs::upgrade_with(tcp, &head, &frame(op::BINARY, &ping))
            .await
            .expect("upgrade");
        let first = loop {
            let f = ws.read_frame().await.expect("a frame");
            if f.opcode == op::BINARY {
                break decode_server(Encoding::MsgPack, &f.payload).unwrap();
            }
        };
        assert!(matches!(first, ServerMessage::Welcome(_)), "{first:?}");
        // The ping is still answered, after the welcome.
        let pong = loop {
            let f = ws.read_frame().await.expect("a frame");
            if let Ok(ServerMessage::Pong(p)) = decode_server(Encoding::MsgPack, &f.payload) {
                break p;
            }
        };
        assert_eq!(pong.id, 9);
    }
}
