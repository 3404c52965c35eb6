//! After the upgrade: message handling, close codes, heartbeat and shutdown, as a client
//! sees them.

use std::time::Duration;

use rallypoint_protocol::Subprotocol;
use rallypoint_protocol::message::{ClientMessage, Ping, ServerMessage};
use rallypoint_tests::{Closed, Connect};
use tokio_tungstenite::tungstenite::Message;

use crate::server;

#[tokio::test]
async fn ping_is_answered_with_pong_in_both_encodings() {
    let s = server().start();
    for p in [Subprotocol::V1MsgPack, Subprotocol::V1Json] {
        let mut c = s.join("ana", p).await;
        c.send(&ClientMessage::Ping(Ping { id: 77 })).await;
        let pong = c
            .recv_until(Duration::from_secs(5), |m| match m {
                ServerMessage::Pong(p) => Some(*p),
                _ => None,
            })
            .await;
        assert_eq!(pong.id, 77);
    }
}

#[tokio::test]
async fn wrong_frame_type_is_1003() {
    let s = server().start();
    let mut c = s.join("ana", Subprotocol::V1MsgPack).await;
    c.send_raw(Message::Text(r#"{"t":"ping","id":1}"#.into()))
        .await;
    assert_eq!(
        c.closed().await,
        Closed {
            code: 1003,
            error: Some("wrong_frame_type".into())
        }
    );
    let mut c = s.join("bob", Subprotocol::V1Json).await;
    c.send_raw(Message::Binary(vec![0x81, 0xa1, b't'].into()))
        .await;
    assert_eq!(
        c.closed().await,
        Closed {
            code: 1003,
            error: Some("wrong_frame_type".into())
        }
    );
}

#[tokio::test]
async fn undecodable_or_invalid_messages_are_1007_and_say_what_was_wrong() {
    let s = server().start();
    // Each with the words its `error` message must use to say what was wrong.
    let cases: Vec<(Subprotocol, Message, &str)> = vec![
        (
            Subprotocol::V1MsgPack,
            Message::Binary(vec![0xc1, 0x00, 0xff].into()),
            "malformed msgpack",
        ),
        (
            Subprotocol::V1MsgPack,
            Message::Binary(vec![0x81, 0xa1, b't', 0xa5, b'f', b'l', b'y', b'!', b'!'].into()),
            r#"unknown message type "fly!!""#,
        ),
        (
            Subprotocol::V1Json,
            Message::Text("{not json".into()),
            "malformed json",
        ),
        (
            Subprotocol::V1Json,
            Message::Text(r#"{"t":"input","seq":1,"mx":0,"my":0}"#.into()),
            "input: missing field `aim`",
        ),
        (
            Subprotocol::V1Json,
            Message::Text(r#"{"t":"chat","text":5}"#.into()),
            "chat.text: invalid type",
        ),
    ];
    for (i, (p, m, says)) in cases.into_iter().enumerate() {
        let mut c = s.join(&format!("p{i}"), p).await;
        c.send_raw(m).await;
        let close = c.close().await;
        let error = close.error.expect("an error message before the close");
        assert_eq!(
            (close.code, error.code.as_str()),
            (1007, "invalid_message"),
            "case {i}"
        );
        assert!(
            error.message.contains(says),
            "case {i}: {:?}",
            error.message
        );
    }
}

#[tokio::test]
async fn oversized_messages_are_1009() {
    let s = server().start();
    let mut c = s.join("ana", Subprotocol::V1MsgPack).await;
    c.send_raw(Message::Binary(vec![0u8; 5000].into())).await;
    assert_eq!(
        c.closed().await,
        Closed {
            code: 1009,
            error: Some("message_too_large".into())
        }
    );
    let mut c = s.join("bob", Subprotocol::V1Json).await;
    let text = format!(r#"{{"t":"chat","text":"{}"}}"#, "x".repeat(8000));
    c.send_raw(Message::Text(text.into())).await;
    assert_eq!(
        c.closed().await,
        Closed {
            code: 1009,
            error: Some("message_too_large".into())
        }
    );
}

#[tokio::test]
async fn a_silent_peer_is_dropped_after_the_heartbeat_timeout() {
    let s = server()
        .args([
            "--heartbeat-interval",
            "200ms",
            "--heartbeat-timeout",
            "700ms",
        ])
        .start();
    let mut silent = s.join("silent", Subprotocol::V1MsgPack).await;
    let mut lively = s.join("lively", Subprotocol::V1MsgPack).await;
    // `lively` reads (and so answers pings); `silent` does not read at all for a while.
    let reader = tokio::spawn(async move {
        let until = tokio::time::Instant::now() + Duration::from_millis(2000);
        while tokio::time::Instant::now() < until {
            if tokio::time::timeout(Duration::from_millis(100), lively.recv())
                .await
                .is_ok_and(|m| m.is_none())
            {
                return false;
            }
        }
        true
    });
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let closed = silent.closed().await;
    assert!(closed.code == 1008 || closed.code == 1006, "{closed:?}");
    if closed.code == 1008 {
        assert_eq!(closed.error.as_deref(), Some("heartbeat_timeout"));
    }
    assert!(
        reader.await.unwrap(),
        "a client that answers pings stays connected"
    );
}

#[tokio::test]
async fn sigterm_closes_everyone_with_1001_and_exits_0() {
    // A drain deadline far away: the process must exit as soon as its clients are gone.
    let mut s = server().args(["--drain-timeout", "60s"]).start();
    let mut clients = Vec::new();
    for (i, p) in [
        Subprotocol::V1MsgPack,
        Subprotocol::V1Json,
        Subprotocol::V1MsgPack,
    ]
    .into_iter()
    .enumerate()
    {
        clients.push(s.join(&format!("c{i}"), p).await);
    }
    assert_eq!(s.admin_get("/readyz").await.status, 200);
    s.signal("TERM");
    for c in &mut clients {
        assert_eq!(
            c.closed().await,
            Closed {
                code: 1001,
                error: Some("shutting_down".into())
            }
        );
    }
    assert_eq!(s.wait_exit(Duration::from_secs(8)), Some(0), "exit code");
}

#[tokio::test]
async fn draining_refuses_new_players_with_503() {
    let mut s = server().args(["--drain-timeout", "3s"]).start();
    // A raw socket that never completes its handshake keeps the drain going.
    let _holdout = tokio::net::TcpStream::connect(s.game).await.unwrap();
    let mut c = s.join("ana", Subprotocol::V1MsgPack).await;
    s.signal("TERM");
    assert_eq!(c.closed().await.code, 1001);
    let readyz = s.admin_get("/readyz").await;
    assert_eq!(readyz.status, 503);
    let r = Connect::new(&s)
        .protocol("rallypoint.v1.msgpack")
        .header_token(&s.token("late"))
        .connect()
        .await;
    match r {
        Err(r) => {
            assert_eq!(r.status, 503);
            assert_eq!(r.body["error"], "draining");
        }
        Ok(_) => panic!("accepted while draining"),
    }
    assert_eq!(s.wait_exit(Duration::from_secs(8)), Some(0));
}
