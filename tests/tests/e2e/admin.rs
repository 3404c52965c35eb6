//! The admin port: health, readiness and metrics.

use rallypoint_protocol::Subprotocol;
use rallypoint_tests::Connect;

use crate::server;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let s = server().start();
    let h = s.admin_get("/healthz").await;
    assert_eq!((h.status, h.json()["status"].as_str()), (200, Some("ok")));
    assert_eq!(s.admin_get("/readyz").await.status, 200);
    let mut c = s.join("ana", Subprotocol::V1Json).await;
    c.input(1.0, 0.0, 0.0, false).await;
    let _ = Connect::new(&s)
        .protocol("nope")
        .header_token(&s.token("b"))
        .connect()
        .await;
    let _ = Connect::new(&s)
        .protocol("rallypoint.v1.msgpack")
        .connect()
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let m = s.admin_get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().contains("text"));
    assert_eq!(s.metric("rallypoint_connections_open", "").await, 1.0);
    assert_eq!(
        s.metric("rallypoint_handshakes_total", "outcome=\"accepted\"")
            .await,
        1.0
    );
    assert_eq!(
        s.metric(
            "rallypoint_handshakes_total",
            "outcome=\"unsupported_subprotocol\""
        )
        .await,
        1.0
    );
    assert_eq!(
        s.metric("rallypoint_handshakes_total", "outcome=\"missing_token\"")
            .await,
        1.0
    );
    assert!(
        s.metric("rallypoint_messages_in_total", "subprotocol=\"json\"")
            .await
            >= 1.0
    );
    assert!(
        s.metric("rallypoint_messages_out_total", "subprotocol=\"json\"")
            .await
            >= 1.0
    );
    assert!(
        s.metric("rallypoint_bytes_out_total", "subprotocol=\"json\"")
            .await
            > 0.0
    );
    let missing = s.admin_get("/nope").await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn an_operator_kick_closes_with_4002_and_the_player_leaves() {
    let s = server().start();
    let mut ana = s.join("ana", Subprotocol::V1MsgPack).await;
    let mut bob = s.join("bob", Subprotocol::V1Json).await;
    let kicked = s.admin_post("/admin/kick?sub=ana").await;
    assert_eq!(kicked.status, 200);
    assert_eq!(kicked.json()["kicked"], "ana");
    assert_eq!(
        ana.closed().await,
        rallypoint_tests::Closed {
            code: 4002,
            error: Some("kicked".into())
        }
    );
    // The others are told the player left, and stay connected.
    bob.recv_until(std::time::Duration::from_secs(3), |m| match m {
        rallypoint_protocol::message::ServerMessage::Event(
            rallypoint_protocol::message::Event::Leave { .. },
        ) => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(s.admin_post("/admin/kick?sub=nobody").await.status, 404);
    assert_eq!(s.admin_post("/admin/kick").await.status, 400);
    assert_eq!(s.admin_get("/admin/kick?sub=bob").await.status, 405);
}
