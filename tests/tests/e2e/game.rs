//! The game over real sockets: rooms, movement and acks, rate limits, slow consumers,
//! resume, replacement, spectators and token expiry.

use std::time::Duration;

use rallypoint_protocol::Subprotocol;
use rallypoint_protocol::entity::PLAYER_AWAY;
use rallypoint_protocol::message::ServerMessage;
use rallypoint_tests::{
    Closed, Connect, TempDir, claims, copy_dir, now, repo_assets, rss_bytes, tcp_small_rcvbuf,
};
use serde_json::json;

use crate::server;

const MSGPACK: &str = "rallypoint.v1.msgpack";
const JSON: &str = "rallypoint.v1.json";

async fn join_room(
    s: &rallypoint_tests::TestServer,
    sub: &str,
    protocol: &str,
    room: &str,
) -> (rallypoint_tests::Client, u32) {
    let mut c = Connect::new(s)
        .protocol(protocol)
        .header_token(&s.token(sub))
        .query(&format!("room={room}"))
        .connect()
        .await
        .unwrap();
    let w = c.expect_welcome().await;
    assert_eq!(w.room, room);
    assert_eq!(w.game, "arena", "welcome names the game");
    (c, w.you)
}

#[tokio::test]
async fn two_clients_in_one_room_see_each_other_move_and_acks_advance() {
    let s = server().start();
    let (mut a, a_id) = join_room(&s, "ana", MSGPACK, "duel").await;
    let (mut b, b_id) = join_room(&s, "bob", JSON, "duel").await;
    let a_start = b
        .position_of(a_id, Duration::from_millis(300))
        .await
        .expect("b sees a");
    let b_start = a
        .position_of(b_id, Duration::from_millis(300))
        .await
        .expect("a sees b");
    let mut last_seq = 0;
    for _ in 0..15 {
        // a moves along x, b along y (towards the middle of the map, away from the border).
        last_seq = a
            .input(if a_start.0 < 20.0 { 1.0 } else { -1.0 }, 0.0, 0.0, false)
            .await;
        b.input(0.0, if b_start.1 < 15.0 { 1.0 } else { -1.0 }, 0.0, false)
            .await;
        tokio::time::sleep(Duration::from_millis(33)).await;
    }
    let a_now = b
        .position_of(a_id, Duration::from_millis(400))
        .await
        .unwrap();
    let seen_by_a = a.listen(Duration::from_millis(400)).await.unwrap();
    let b_now = seen_by_a
        .last
        .as_ref()
        .unwrap()
        .ents
        .iter()
        .find(|e| e.id() == b_id)
        .unwrap()
        .pos();
    assert!(
        (a_now.0 - a_start.0).abs() > 0.5,
        "b saw a move: {a_start:?} -> {a_now:?}"
    );
    assert!(
        (b_now.1 - b_start.1).abs() > 0.5,
        "a saw b move: {b_start:?} -> {b_now:?}"
    );
    let acks: Vec<u32> = seen_by_a.headers.iter().map(|h| h.1).collect();
    assert_eq!(
        acks.last().copied(),
        Some(last_seq),
        "a's inputs are all acknowledged"
    );
    assert!(
        acks.windows(2).all(|w| w[0] <= w[1]),
        "acks never go backwards"
    );
}

#[tokio::test]
async fn rooms_by_query_claim_and_automatic_placement() {
    let s = server().start();
    let (_a, _) = join_room(&s, "a", MSGPACK, "alpha").await;
    let (_b, _) = join_room(&s, "b", MSGPACK, "alpha").await;
    let (_c, _) = join_room(&s, "c", MSGPACK, "beta").await;
    // The token's room claim wins over the query.
    let mut pinned = claims("d");
    pinned["room"] = json!("beta");
    let mut d = Connect::new(&s)
        .protocol(MSGPACK)
        .header_token(&s.token_with(&pinned))
        .query("room=alpha")
        .connect()
        .await
        .unwrap();
    assert_eq!(d.expect_welcome().await.room, "beta");
    // Automatic placement fills the fullest room with space (alpha and beta have two).
    let mut e = s.join("e", Subprotocol::V1MsgPack).await;
    let _ = &mut e;
    let rooms = s.admin_get("/admin/rooms").await.json();
    let names: Vec<&str> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta"], "no new room was opened");
    let total: usize = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["players"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 5);
}

#[tokio::test]
async fn a_full_room_is_503() {
    let dir = TempDir::new("assets");
    copy_dir(&repo_assets(), &dir.0);
    let game = std::fs::read_to_string(dir.join("game.toml")).unwrap();
    std::fs::write(
        dir.join("game.toml"),
        game.replace("room_capacity = 16", "room_capacity = 2"),
    )
    .unwrap();
    let s = server().assets(&dir.0).start();
    let (_a, _) = join_room(&s, "a", MSGPACK, "small").await;
    let (_b, _) = join_room(&s, "b", MSGPACK, "small").await;
    let r = Connect::new(&s)
        .protocol(MSGPACK)
        .header_token(&s.token("c"))
        .query("room=small")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (503, Some("room_full"))
    );
    assert!(r.headers.iter().any(|(n, _)| n == "retry-after"));
    // Placement without a room name opens another room instead.
    let mut c = s.join("c", Subprotocol::V1MsgPack).await;
    let _ = &mut c;
}

#[tokio::test]
async fn an_input_flood_is_dropped_then_closed_while_others_keep_their_cadence() {
    let s = server().start();
    let (mut good, _) = join_room(&s, "good", MSGPACK, "arena").await;
    let (mut bad, _) = join_room(&s, "bad", MSGPACK, "arena").await;
    let watch = tokio::spawn(async move { good.listen(Duration::from_secs(3)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3000 {
        bad.input(0.3, 0.3, 0.0, true).await;
    }
    assert_eq!(
        bad.closed().await,
        Closed {
            code: 1008,
            error: Some("rate_limited".into())
        }
    );
    let cadence = watch
        .await
        .unwrap()
        .expect("the good client stays connected");
    assert!(
        cadence.arrivals.len() >= 45,
        "good client got {} snapshots in 3 s",
        cadence.arrivals.len()
    );
    assert!(
        cadence.max_gap() < Duration::from_millis(800),
        "longest gap {:?}",
        cadence.max_gap()
    );
    assert!(
        s.metric("rallypoint_rate_limited_messages_total", "kind=\"input\"")
            .await
            > 0.0
    );
    assert_eq!(
        s.metric("rallypoint_session_closes_total", "reason=\"rate_limited\"")
            .await,
        1.0
    );
}

#[tokio::test]
async fn clients_that_stop_reading_stay_bounded_and_do_not_slow_the_others() {
    let dir = TempDir::new("assets");
    copy_dir(&repo_assets(), &dir.0);
    let game = std::fs::read_to_string(dir.join("game.toml")).unwrap();
    std::fs::write(
        dir.join("game.toml"),
        game.replace("room_capacity = 16", "room_capacity = 32"),
    )
    .unwrap();
    let s = server()
        .assets(&dir.0)
        .args(["--send-timeout", "2s", "--tcp-send-buffer", "4096"])
        .start();
    let (mut active, _) = join_room(&s, "active", MSGPACK, "busy").await;
    let mut stalled = Vec::new();
    for i in 0..20 {
        let tcp = tcp_small_rcvbuf(s.game).await;
        let c = Connect::new(&s)
            .protocol(MSGPACK)
            .header_token(&s.token(&format!("stalled-{i}")))
            .query("room=busy")
            .connect_over(Box::new(tcp))
            .await
            .unwrap();
        stalled.push(c);
    }
    let rss_before = rss_bytes(s.pid());
    // Keep the active player firing so snapshots are large and frequent.
    let driver = tokio::spawn(async move {
        let mut cadence = rallypoint_tests::Cadence::default();
        for _ in 0..40 {
            active.input(0.0, 0.0, 1.0, true).await;
            let c = active
                .listen(Duration::from_millis(100))
                .await
                .expect("active client stays connected");
            cadence.arrivals.extend(c.arrivals);
        }
        cadence
    });
    let cadence = driver.await.unwrap();
    let rss_after = rss_bytes(s.pid());
    assert!(
        cadence.arrivals.len() >= 60,
        "active client got {} snapshots in 4 s",
        cadence.arrivals.len()
    );
    assert!(
        cadence.max_gap() < Duration::from_millis(800),
        "longest gap {:?}",
        cadence.max_gap()
    );
    let growth = rss_after.saturating_sub(rss_before);
    assert!(
        growth < 16 << 20,
        "server memory grew by {} KiB",
        growth >> 10
    );
    // Stalled clients only ever hold the newest snapshot: older ones were replaced, and
    // those stuck past the send timeout were disconnected.
    let replaced = s
        .metric("rallypoint_room_slow_consumer_drops_total", "")
        .await;
    let cut = s
        .metric(
            "rallypoint_session_closes_total",
            "reason=\"slow_consumer\"",
        )
        .await;
    assert!(replaced > 0.0, "no snapshot was ever replaced");
    assert_eq!(
        cut, 20.0,
        "every stalled client is disconnected after the send timeout"
    );
    drop(stalled);
}

#[tokio::test]
async fn resume_within_grace_keeps_id_and_position() {
    let s = server().start();
    let (mut a, a_id) = join_room(&s, "ana", MSGPACK, "resume").await;
    let (mut w, _) = join_room(&s, "watcher", MSGPACK, "resume").await;
    for _ in 0..10 {
        a.input(1.0, 1.0, 0.0, false).await;
        tokio::time::sleep(Duration::from_millis(33)).await;
    }
    a.input(0.0, 0.0, 0.0, false).await;
    let before = w
        .position_of(a_id, Duration::from_millis(500))
        .await
        .unwrap();
    // Vanish without a close frame.
    drop(a);
    let away = w
        .position_of(a_id, Duration::from_millis(500))
        .await
        .unwrap();
    assert_ne!(
        away.2 & PLAYER_AWAY,
        0,
        "the entity is kept and flagged away"
    );
    let mut again = Connect::new(&s)
        .protocol(JSON)
        .header_token(&s.token("ana"))
        .query("room=resume")
        .connect()
        .await
        .unwrap();
    let welcome = again.expect_welcome().await;
    assert!(welcome.resumed);
    assert_eq!(welcome.you, a_id);
    let after = again
        .position_of(a_id, Duration::from_millis(400))
        .await
        .unwrap();
    assert!(
        (after.0 - before.0).abs() < 0.01 && (after.1 - before.1).abs() < 0.01,
        "{before:?} -> {after:?}"
    );
    assert_eq!(after.2 & PLAYER_AWAY, 0);
}

#[tokio::test]
async fn a_second_connection_replaces_the_first_with_4004() {
    let s = server().start();
    let (mut first, id) = join_room(&s, "ana", MSGPACK, "r").await;
    // Elsewhere (another room requested): the account's entity decides where it lands.
    let mut second = Connect::new(&s)
        .protocol(MSGPACK)
        .header_token(&s.token("ana"))
        .query("room=other")
        .connect()
        .await
        .unwrap();
    let w = second.expect_welcome().await;
    assert_eq!((w.you, w.room.as_str(), w.resumed), (id, "r", true));
    assert_eq!(
        first.closed().await,
        Closed {
            code: 4004,
            error: Some("replaced".into())
        }
    );
}

#[tokio::test]
async fn spectators_receive_snapshots_and_their_input_is_1008() {
    let s = server().start();
    let (_p, pid) = join_room(&s, "player", MSGPACK, "show").await;
    let mut c = claims("fan");
    c["role"] = json!("spectator");
    let mut fan = Connect::new(&s)
        .protocol(JSON)
        .header_token(&s.token_with(&c))
        .query("room=show")
        .connect()
        .await
        .unwrap();
    let w = fan.expect_welcome().await;
    assert_eq!((w.role.as_str(), w.you), ("spectator", 0));
    assert!(
        fan.position_of(pid, Duration::from_millis(400))
            .await
            .is_some()
    );
    fan.input(1.0, 0.0, 0.0, false).await;
    assert_eq!(
        fan.closed().await,
        Closed {
            code: 1008,
            error: Some("spectator_input".into())
        }
    );
}

#[tokio::test]
async fn a_token_expiring_mid_session_closes_with_4001() {
    let s = server().args(["--jwt-leeway", "0s"]).start();
    let mut c = claims("brief");
    c["exp"] = json!(now() + 2);
    let mut client = Connect::new(&s)
        .protocol(MSGPACK)
        .header_token(&s.token_with(&c))
        .connect()
        .await
        .unwrap();
    client.expect_welcome().await;
    let started = std::time::Instant::now();
    assert_eq!(
        client.closed().await,
        Closed {
            code: 4001,
            error: Some("token_expired".into())
        }
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn chat_and_events_reach_everyone_in_order() {
    let s = server().start();
    let (mut a, a_id) = join_room(&s, "ana", MSGPACK, "talk").await;
    let (mut b, _) = join_room(&s, "bob", JSON, "talk").await;
    for text in ["one", "two", "three"] {
        a.send(&rallypoint_protocol::ClientMessage::Chat(
            rallypoint_protocol::message::ChatSend { text: text.into() },
        ))
        .await;
    }
    let mut lines = Vec::new();
    while lines.len() < 3 {
        let line = b
            .recv_until(Duration::from_secs(3), |m| match m {
                ServerMessage::Chat(c) => Some((c.from, c.name.clone(), c.text.clone())),
                _ => None,
            })
            .await;
        lines.push(line);
    }
    assert_eq!(
        lines,
        [
            (a_id, "ana".into(), "one".into()),
            (a_id, "ana".into(), "two".into()),
            (a_id, "ana".into(), "three".into())
        ]
    );
}

#[tokio::test]
async fn the_room_cap_is_503_server_full() {
    let s = server().args(["--max-rooms", "1"]).start();
    let (_a, _) = join_room(&s, "a", MSGPACK, "only").await;
    let r = Connect::new(&s)
        .protocol(MSGPACK)
        .header_token(&s.token("b"))
        .query("room=another")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (503, Some("server_full"))
    );
    // The open room still takes players.
    let (_c, _) = join_room(&s, "c", MSGPACK, "only").await;
}

#[tokio::test]
async fn a_chat_flood_is_dropped_then_closed_and_others_hear_only_the_allowed_lines() {
    let s = server()
        .args(["--chat-rate", "2/3", "--abuse-rate", "5/10"])
        .start();
    let (mut spammer, _) = join_room(&s, "spammer", MSGPACK, "chatty").await;
    let (mut listener, _) = join_room(&s, "listener", JSON, "chatty").await;
    for i in 0..50 {
        spammer
            .send(&rallypoint_protocol::ClientMessage::Chat(
                rallypoint_protocol::message::ChatSend {
                    text: format!("spam {i}"),
                },
            ))
            .await;
    }
    assert_eq!(
        spammer.closed().await,
        Closed {
            code: 1008,
            error: Some("rate_limited".into())
        }
    );
    let mut heard = 0;
    let cadence = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match listener.recv().await {
                Some(ServerMessage::Chat(_)) => heard += 1,
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    assert!(cadence.is_err(), "the listener stays connected");
    // At most the burst gets through; lines still queued when the room removes the
    // spammer are dropped with it.
    assert!((1..=3).contains(&heard), "heard {heard} lines");
    assert!(
        s.metric("rallypoint_rate_limited_messages_total", "kind=\"chat\"")
            .await
            >= 10.0
    );
}

#[tokio::test]
async fn names_and_chat_reach_others_without_invisible_or_control_characters() {
    use rallypoint_protocol::message::Event;
    let s = server().start();
    let (mut a, _) = join_room(&s, "bob", JSON, "clean").await;
    let mut c = claims("mallory-account");
    c["name"] = json!("\u{202E}ev\u{200B}il\u{0}\u{1b}");
    let mut m = Connect::new(&s)
        .protocol(MSGPACK)
        .header_token(&s.token_with(&c))
        .query("room=clean")
        .connect()
        .await
        .unwrap();
    let m_id = m.expect_welcome().await.you;
    let name = a
        .recv_until(Duration::from_secs(3), |msg| match msg {
            ServerMessage::Event(Event::Player { id, name }) if *id == m_id => Some(name.clone()),
            _ => None,
        })
        .await;
    assert_eq!(name, "evil");
    m.send(&rallypoint_protocol::ClientMessage::Chat(
        rallypoint_protocol::message::ChatSend {
            text: "gg\u{0}\u{1b}[2J\r\nwp\u{85}".into(),
        },
    ))
    .await;
    let (from, name, text) = a
        .recv_until(Duration::from_secs(3), |msg| match msg {
            ServerMessage::Chat(c) => Some((c.from, c.name.clone(), c.text.clone())),
            _ => None,
        })
        .await;
    assert_eq!(
        (from, name.as_str(), text.as_str()),
        (m_id, "evil", "gg[2Jwp")
    );
}
