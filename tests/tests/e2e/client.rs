//! The native client library (`rallypoint-client`) against the real server: every way to
//! carry a token, subprotocol preference, refusals as typed errors, inputs acknowledged,
//! pings timed, chat, a normal close, resume after a dropped connection, `wss://` with
//! each kind of trust, and the HTTP client on both ports.

use std::time::Duration;

use rallypoint_client::{
    ConnectError, Endpoint, HttpError, Kind, Received, Request, Session, TokenIn, Trust,
};
use rallypoint_protocol::Subprotocol;
use rallypoint_protocol::message::{Input, ServerMessage};
use rallypoint_tests::{STEP_TIMEOUT, TestCert, TestServer};

use crate::server;

async fn endpoint(s: &TestServer) -> Endpoint {
    Endpoint::resolve(&s.play_url(), &Trust::default())
        .await
        .expect("resolve")
        .with_timeout(STEP_TIMEOUT)
}

fn forward() -> Input {
    Input {
        seq: 0,
        mx: 1.0,
        my: 0.0,
        aim: 0.0,
        fire: false,
        view: None,
    }
}

/// Reads until `pick` says yes, within the step timeout.
async fn until(session: &mut Session, mut pick: impl FnMut(&rallypoint_client::Incoming) -> bool) {
    tokio::time::timeout(STEP_TIMEOUT, async {
        loop {
            match session.recv().await.expect("session open") {
                Received::Message(m) if pick(&m) => return,
                Received::Message(_) => {}
                Received::Closed(c) => panic!("closed: {c:?}"),
            }
        }
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn every_token_carriage_and_the_preferred_subprotocol() {
    let s = server().start();
    let e = endpoint(&s).await;
    for (i, at) in [TokenIn::Header, TokenIn::Subprotocol, TokenIn::Query]
        .into_iter()
        .enumerate()
    {
        let token = s.token(&format!("carrier-{i}"));
        let request = Request::new([Subprotocol::V1Json, Subprotocol::V1MsgPack])
            .token(&token, at)
            .room("carriers");
        let session = e
            .join(&request)
            .await
            .unwrap_or_else(|err| panic!("{at:?}: {err}"));
        assert_eq!(
            session.protocol(),
            Subprotocol::V1Json,
            "{at:?}: the first offer wins"
        );
        let w = session.welcome().expect("welcome");
        assert_eq!(
            (w.room.as_str(), w.protocol.as_str()),
            ("carriers", "rallypoint.v1.json")
        );
    }
    let request = Request::new([Subprotocol::V1MsgPack]).token(&s.token("mp"), TokenIn::Header);
    assert_eq!(
        e.join(&request).await.unwrap().protocol(),
        Subprotocol::V1MsgPack
    );
}

#[tokio::test]
async fn refusals_are_typed_with_status_code_and_message() {
    let s = server().start();
    let e = endpoint(&s).await;
    let bad = Request::new([Subprotocol::V1MsgPack]).token("x.y.z", TokenIn::Header);
    match e.connect(&bad).await {
        Err(ConnectError::Rejected(r)) => {
            assert_eq!((r.status, r.error.as_str()), (401, "invalid_token"));
            assert!(!r.message.is_empty());
            assert!(!r.is_retryable());
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    let none = Request::new([]).token(&s.token("a"), TokenIn::Header);
    match e.connect(&none).await {
        Err(ConnectError::Rejected(r)) => {
            assert_eq!(
                (r.status, r.error.as_str()),
                (400, "unsupported_subprotocol")
            );
            assert_eq!(r.response.json()["supported"][0], "rallypoint.v1.msgpack");
        }
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[tokio::test]
async fn inputs_are_acknowledged_pings_timed_chat_heard_and_close_is_normal() {
    let s = server().start();
    let e = endpoint(&s).await;
    let request = Request::new([Subprotocol::V1MsgPack])
        .token(&s.token("pilot"), TokenIn::Header)
        .room("lib");
    let mut session = e.join(&request).await.expect("join");
    for _ in 0..5 {
        session.queue_input(forward()).unwrap();
    }
    let id = session.queue_ping().unwrap();
    session.flush().await.unwrap();
    assert_eq!(session.last_seq(), 5);
    let mut rtt = None;
    until(&mut session, |m| {
        if m.pong().is_some_and(|p| p.id == id) {
            rtt = m.rtt();
        }
        rtt.is_some()
    })
    .await;
    assert!(rtt.unwrap() < STEP_TIMEOUT);
    until(&mut session, |m| {
        m.snap_header().is_some_and(|h| h.ack == 5)
    })
    .await;
    assert_eq!(session.acked(), 5);
    session.chat("hello from rust").await.unwrap();
    until(&mut session, |m| {
        m.kind() == Kind::Chat
            && matches!(m.decode(), Ok(ServerMessage::Chat(c)) if c.text == "hello from rust")
    })
    .await;
    let traffic = session.traffic();
    assert_eq!(
        traffic.messages_out, 7,
        "five inputs, a ping and a chat line"
    );
    let close = tokio::time::timeout(STEP_TIMEOUT, session.close(1000, "done"))
        .await
        .expect("close in time")
        .expect("clean close");
    assert_eq!((close.code, close.error), (1000, None));
    assert!(
        session.send_input(forward()).await.is_err(),
        "nothing is sent after a close"
    );
}

#[tokio::test]
async fn a_dropped_connection_resumes_the_same_player() {
    let s = server().start();
    let e = endpoint(&s).await;
    let request = Request::new([Subprotocol::V1MsgPack])
        .token(&s.token("phoenix"), TokenIn::Header)
        .room("resume");
    let first = e.join(&request).await.expect("join");
    let you = first.welcome().unwrap().you;
    assert!(!first.welcome().unwrap().resumed);
    first.abort();
    let again = e.join(&request).await.expect("rejoin");
    assert!(again.resumed_from(you), "{:?}", again.welcome());
}

#[tokio::test]
async fn server_errors_come_with_the_close() {
    let s = server().start();
    let e = endpoint(&s).await;
    let request =
        Request::new([Subprotocol::V1MsgPack]).token(&s.token("garbler"), TokenIn::Header);
    let mut session = e.join(&request).await.expect("join");
    session
        .send_raw(rallypoint_client::frame::Opcode::Binary, &[0xc1])
        .await
        .unwrap();
    let close = tokio::time::timeout(STEP_TIMEOUT, async {
        loop {
            if let Ok(Received::Closed(c)) = session.recv().await {
                return c;
            }
        }
    })
    .await
    .expect("closed in time");
    assert_eq!(close.code, 1007);
    assert_eq!(
        close.error.map(|e| e.code).as_deref(),
        Some("invalid_message")
    );
}

#[tokio::test]
async fn wss_with_a_ca_file_insecure_mode_and_public_roots() {
    let cert = TestCert::generate();
    let s = server().tls(&cert).start();
    let url = format!("wss://localhost:{}/play", s.game.port());
    let request = Request::new([Subprotocol::V1MsgPack]).token(&s.token("secure"), TokenIn::Header);
    for trust in [Trust::CaFile(cert.cert.clone()), Trust::Insecure] {
        let e = Endpoint::resolve(&url, &trust).await.expect("resolve");
        let session = e
            .join(&request)
            .await
            .unwrap_or_else(|err| panic!("{trust:?}: {err}"));
        assert_eq!(session.welcome().unwrap().protocol, "rallypoint.v1.msgpack");
    }
    let public = Endpoint::resolve(&url, &Trust::WebPkiRoots)
        .await
        .expect("resolve");
    match public.join(&request).await {
        Err(err @ ConnectError::Tls(_)) => assert!(!err.is_retryable(), "{err}"),
        other => panic!("a self-signed certificate is not publicly trusted: {other:?}"),
    }
}

#[tokio::test]
async fn http_on_both_ports() {
    let s = server().dev_mode().start();
    let game = endpoint(&s).await;
    let token = game.dev_token("http-user", "Ana").await.expect("dev token");
    let request = Request::new([Subprotocol::V1MsgPack]).token(&token, TokenIn::Header);
    let session = game.join(&request).await.expect("join");
    assert!(session.welcome().unwrap().you > 0);
    let admin = Endpoint::plain(s.admin).with_timeout(STEP_TIMEOUT);
    let rooms: serde_json::Value = admin.get_json("/admin/rooms").await.expect("rooms");
    assert!(rooms.to_string().contains("\"Ana\""), "{rooms}");
    let metrics = admin.get("/metrics").await.expect("metrics").text();
    assert!(metrics.contains("rallypoint_connections_open"));
    match admin.get("/nope").await {
        Err(HttpError::Status { status: 404, .. }) => {}
        other => panic!("expected a 404, got {other:?}"),
    }
    drop(session);
    // A port that accepts but never answers runs into the time limit.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let limit = Duration::from_millis(200);
    let silent = Endpoint::plain(mute.local_addr().unwrap()).with_timeout(limit);
    assert!(matches!(silent.get("/metrics").await, Err(HttpError::Timeout(t)) if t == limit));
}
