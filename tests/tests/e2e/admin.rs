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

/// One raw request to the admin port.
async fn admin(s: &rallypoint_tests::TestServer, head: &str) -> rallypoint_tests::HttpResponse {
    rallypoint_tests::http(s.admin, &format!("{head}\r\n")).await
}

#[tokio::test]
async fn the_admin_token_guards_everything_but_the_probes() {
    let dir = rallypoint_tests::TempDir::new("admin-token");
    let token = "0123456789abcdef0123456789abcdef";
    std::fs::write(dir.join("admin-token"), format!("{token}\n")).unwrap();
    let s = server()
        .args([
            "--admin-token-file",
            dir.join("admin-token").to_str().unwrap(),
        ])
        .start();
    let host = format!("Host: {}\r\n", s.admin);
    for path in ["/admin/rooms", "/admin/assets", "/admin/maps/courtyard.svg"] {
        let r = admin(&s, &format!("GET {path} HTTP/1.1\r\n{host}")).await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (401, Some("unauthorized")),
            "{path}"
        );
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
        let wrong = admin(
            &s,
            &format!(
                "GET {path} HTTP/1.1\r\n{host}Authorization: Bearer {}x\r\n",
                &token[1..]
            ),
        )
        .await;
        assert_eq!(wrong.status, 401, "{path}");
        let ok = admin(
            &s,
            &format!("GET {path} HTTP/1.1\r\n{host}Authorization: Bearer {token}\r\n"),
        )
        .await;
        assert_eq!(ok.status, 200, "{path}: {}", ok.text());
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            s.admin_get(path).await.status,
            200,
            "{path} is open to probes"
        );
    }
    let kick = admin(
        &s,
        &format!("POST /admin/kick?sub=nobody HTTP/1.1\r\n{host}Authorization: Bearer {token}\r\nContent-Length: 0\r\n"),
    )
    .await;
    assert_eq!(kick.status, 404, "authorised, and nobody to kick");
}

#[tokio::test]
async fn a_web_page_can_neither_drive_nor_read_the_admin_port() {
    let s = server().start();
    let mut player = s.join("ana", Subprotocol::V1Json).await;
    let host = format!("Host: {}\r\n", s.admin);
    // CSRF: a cross-site form post with a text/plain body.
    for site in [
        "Origin: https://attacker.example\r\n",
        "Sec-Fetch-Site: cross-site\r\n",
        "Sec-Fetch-Site: same-site\r\n",
    ] {
        let r = admin(
            &s,
            &format!(
                "POST /admin/kick?sub=ana HTTP/1.1\r\n{host}{site}Content-Type: text/plain\r\nContent-Length: 0\r\n"
            ),
        )
        .await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (403, Some("forbidden")),
            "{site}"
        );
    }
    // DNS rebinding: the attacker's name, resolving to loopback.
    let r = admin(
        &s,
        &format!(
            "GET /admin/rooms HTTP/1.1\r\nHost: attacker.example:{}\r\n",
            s.admin.port()
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (421, Some("misdirected_request"))
    );
    let r = admin(&s, "GET /admin/rooms HTTP/1.1\r\nHost: localhost\r\n").await;
    assert_eq!(r.status, 200);
    // The player was never kicked.
    assert!(
        player
            .listen(std::time::Duration::from_millis(300))
            .await
            .is_some()
    );
    // An operator's own tool (no Origin, no Sec-Fetch-Site) still works.
    assert_eq!(s.admin_post("/admin/kick?sub=ana").await.status, 200);
}

#[tokio::test]
async fn admin_hosts_name_the_port() {
    let s = server().args(["--admin-host", "ops.internal"]).start();
    let r = admin(
        &s,
        "GET /admin/rooms HTTP/1.1\r\nHost: ops.internal:7778\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    let r = admin(&s, "GET /admin/rooms HTTP/1.1\r\nHost: other.internal\r\n").await;
    assert_eq!(r.status, 421);
}
