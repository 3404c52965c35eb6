//! `GET /match` on a single node (no `--redis-url`): a client can always ask where to
//! play, with the same token carriage and refusals as `/play`; the node answers with
//! itself and the room its directory would use. (Clusters: `tests/external/nodes.rs`.)

use rallypoint_client::{Endpoint, Request, TokenIn};
use rallypoint_protocol::Subprotocol;
use rallypoint_tests::{HttpResponse, TestServer, http};

use crate::server;

async fn ask(s: &TestServer, query: &str) -> HttpResponse {
    s.game_get(&format!("/match{query}")).await
}

async fn join(url: &str, token: &str) -> rallypoint_client::Session {
    let endpoint = Endpoint::resolve(url, &rallypoint_client::Trust::WebPkiRoots)
        .await
        .expect("a ws:// URL");
    let request = Request::new([Subprotocol::V1MsgPack]).token(token, TokenIn::Header);
    endpoint
        .join(&request)
        .await
        .expect("join where /match said")
}

#[tokio::test]
async fn a_single_node_answers_with_itself_and_the_room_it_would_use() {
    let s = server().start();
    let token = s.token("mia");
    let r = ask(&s, &format!("?access_token={token}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    let room = body["room"].as_str().expect("room").to_owned();
    assert_eq!(body["node"], "local");
    assert_eq!(body["resume"], false);
    assert_eq!(
        body["url"],
        format!("ws://{}/play?room={room}", s.game),
        "the node as the client addressed it"
    );
    let session = join(body["url"].as_str().unwrap(), &token).await;
    assert_eq!(session.welcome().unwrap().room, room);
    let you = session.welcome().unwrap().you;
    // Another player is sent to the same room (it has seats), by header this time.
    let raw = format!(
        "GET /match HTTP/1.1\r\nHost: play.example:7777\r\nAuthorization: Bearer {}\r\n\r\n",
        s.token("noa")
    );
    let other = http(s.game, &raw).await.json();
    assert_eq!(other["room"], room.as_str());
    assert_eq!(
        other["url"],
        format!("ws://play.example:7777/play?room={room}")
    );
    // A dropped player is sent back to its room to resume, whatever it asks for.
    session.abort();
    let back = ask(&s, &format!("?access_token={token}&room=elsewhere"))
        .await
        .json();
    assert_eq!(
        (back["room"].as_str(), back["resume"].as_bool()),
        (Some(room.as_str()), Some(true))
    );
    let again = join(back["url"].as_str().unwrap(), &token).await;
    assert!(again.resumed_from(you));
    let named = ask(&s, &format!("?access_token={}&room=lobby", s.token("ola")))
        .await
        .json();
    assert_eq!(
        (named["room"].as_str(), named["resume"].as_bool()),
        (Some("lobby"), Some(false))
    );
    assert_eq!(
        s.metric("rallypoint_matches_total", "outcome=\"assigned\"")
            .await,
        3.0
    );
    assert_eq!(
        s.metric("rallypoint_matches_total", "outcome=\"resumed\"")
            .await,
        1.0
    );
}

#[tokio::test]
async fn match_refuses_like_play() {
    let s = server().start();
    let none = ask(&s, "").await;
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error"], "missing_token");
    assert!(none.header("www-authenticate").is_some());
    let bad = ask(&s, "?access_token=not.a.jwt").await;
    assert_eq!(
        (bad.status, bad.json()["error"].as_str()),
        (401, Some("invalid_token"))
    );
    let token = s.token("ivy");
    let name = ask(&s, &format!("?access_token={token}&room=no%20spaces")).await;
    assert_eq!(name.status, 400);
    let post = Endpoint::plain(s.game)
        .request("POST", &format!("/match?access_token={token}"))
        .await
        .unwrap();
    assert_eq!((post.status, post.header("allow")), (405, Some("GET")));
    assert_eq!(
        s.metric("rallypoint_matches_total", "outcome=\"missing_token\"")
            .await,
        1.0
    );
    // The cluster's admin endpoints say there is no cluster.
    assert_eq!(s.admin_get("/admin/cluster").await.status, 409);
    assert_eq!(s.admin_post("/admin/drain").await.status, 409);
    assert_eq!(s.admin_get("/readyz").await.status, 200);
}
