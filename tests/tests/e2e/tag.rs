//! The second game, tag (`server/examples/tag.rs`), served by the unmodified engine as a
//! real process and played over both v1 subprotocols: `welcome` names the game, inputs
//! move players, the tag passes when players touch (and not straight back), and a dropped
//! player resumes with the same id and score.
//!
//! Tag's rows and events are its own, so this client reads messages as plain values
//! rather than as the arena's typed ones.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rallypoint_protocol::Subprotocol;
use rallypoint_tests::{STEP_TIMEOUT, ServerBuilder, TestServer};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Row flags of `server/examples/tag.rs`.
const IT: u64 = 1;
const AWAY: u64 = 2;

fn tag_server() -> TestServer {
    let assets = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/examples/tag/assets");
    ServerBuilder::new(env!("CARGO_BIN_EXE_rallypoint-tag-test-server"))
        .assets(assets)
        .start()
}

/// A player row: `[id, kind, x, y, flags, score]`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    id: u32,
    x: f32,
    y: f32,
    flags: u64,
    score: f32,
}

/// One tag player's connection.
struct Player {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    sub: String,
    protocol: Subprotocol,
    seq: u32,
    welcome: Value,
    /// The newest snapshot's rows.
    rows: Vec<Row>,
}

impl Player {
    async fn join(s: &TestServer, sub: &str, protocol: Subprotocol) -> Player {
        let mut req = format!("ws://{}/play", s.game)
            .into_client_request()
            .unwrap();
        let headers = req.headers_mut();
        let offer = HeaderValue::from_static(protocol.name());
        headers.insert("Sec-WebSocket-Protocol", offer);
        let bearer = HeaderValue::from_str(&format!("Bearer {}", s.token(sub))).unwrap();
        headers.insert("Authorization", bearer);
        let connect = tokio_tungstenite::connect_async(req);
        let (ws, _) = tokio::time::timeout(STEP_TIMEOUT, connect)
            .await
            .expect("handshake in time")
            .expect("handshake accepted");
        let mut player = Player {
            ws,
            sub: sub.to_owned(),
            protocol,
            seq: 0,
            welcome: Value::Null,
            rows: Vec::new(),
        };
        player.welcome = player.next().await;
        assert_eq!(player.welcome["t"], "welcome", "{}", player.welcome);
        player
    }

    fn you(&self) -> u32 {
        self.welcome["you"].as_u64().unwrap() as u32
    }

    /// The next message; snapshots also update `rows`.
    async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(STEP_TIMEOUT, self.ws.next())
                .await
                .expect("a message in time")
                .expect("the connection is open")
                .expect("a frame");
            let value: Value = match frame {
                Message::Binary(b) => rmp_serde::from_slice(&b).expect("MessagePack"),
                Message::Text(t) => serde_json::from_str(&t).expect("JSON"),
                Message::Close(c) => panic!("closed: {c:?}"),
                _ => continue,
            };
            if value["t"] == "snap" {
                self.rows = value["ents"].as_array().unwrap().iter().map(row).collect();
            }
            return value;
        }
    }

    /// Reads until `pick` says yes, within `timeout`.
    async fn until<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&Value) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            assert!(Instant::now() < deadline, "nothing picked in {timeout:?}");
            if let Some(found) = pick(&self.next().await) {
                return found;
            }
        }
    }

    /// Reads for `duration` and returns the newest rows.
    async fn rows_after(&mut self, duration: Duration) -> Vec<Row> {
        let deadline = Instant::now() + duration;
        while Instant::now() < deadline {
            let _ = tokio::time::timeout(deadline - Instant::now(), self.next()).await;
        }
        self.rows.clone()
    }

    fn row(&self, id: u32) -> Option<Row> {
        self.rows.iter().find(|r| r.id == id).copied()
    }

    async fn run(&mut self, mx: f32, my: f32) {
        self.seq += 1;
        let input = json!({"t": "input", "seq": self.seq, "mx": mx, "my": my});
        let frame = match self.protocol {
            Subprotocol::V1Json => Message::Text(input.to_string().into()),
            _ => Message::Binary(rmp_serde::to_vec_named(&input).unwrap().into()),
        };
        self.ws.send(frame).await.expect("send");
    }

    /// Runs towards `target` until within `near`, reading the room meanwhile; the events
    /// seen on the way.
    async fn chase(&mut self, target: u32, near: f32) -> Vec<Value> {
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            assert!(Instant::now() < deadline, "never caught {target}");
            let message = self.next().await;
            if message["t"] == "event" {
                events.push(message);
                continue;
            }
            if message["t"] != "snap" {
                continue;
            }
            // Snapshots from before the target joined do not have it yet.
            let (Some(me), Some(them)) = (self.row(self.you()), self.row(target)) else {
                continue;
            };
            let (dx, dy) = (them.x - me.x, them.y - me.y);
            if dx.hypot(dy) < near {
                return events;
            }
            self.run(dx, dy).await;
        }
    }
}

fn row(v: &Value) -> Row {
    let f = |i: usize| v[i].as_f64().unwrap_or(f64::NAN);
    Row {
        id: v[0].as_u64().unwrap() as u32,
        x: f(2) as f32,
        y: f(3) as f32,
        flags: v[4].as_u64().unwrap(),
        score: f(5) as f32,
    }
}

#[tokio::test]
async fn welcome_names_the_game_and_inputs_move_players_over_both_subprotocols() {
    let s = tag_server();
    for (sub, protocol) in [("ann", Subprotocol::V1MsgPack), ("bo", Subprotocol::V1Json)] {
        let mut p = Player::join(&s, sub, protocol).await;
        assert_eq!(p.welcome["game"], "tag");
        assert_eq!(p.welcome["map"], "yard");
        assert_eq!(p.welcome["protocol"], protocol.name());
        assert_eq!(p.welcome["width"], 30.0);
        let you = p.you();
        let start = p.rows_after(Duration::from_millis(200)).await;
        let before = start.iter().find(|r| r.id == you).expect("own row");
        // Away from the nearer wall, so the yard does not stop the run.
        let dir = if before.x < 15.0 { 1.0 } else { -1.0 };
        p.run(dir, 0.0).await;
        let after = p.rows_after(Duration::from_millis(600)).await;
        let moved = (after.iter().find(|r| r.id == you).unwrap().x - before.x) * dir;
        assert!((2.0..5.0).contains(&moved), "ran {moved} units in 0.6 s");
    }
}

#[tokio::test]
async fn the_tag_passes_when_players_touch_and_not_straight_back() {
    let s = tag_server();
    let mut ann = Player::join(&s, "ann", Subprotocol::V1MsgPack).await;
    let mut bo = Player::join(&s, "bo", Subprotocol::V1Json).await;
    // Two players: the game picks an it and tells everyone (`bo` learns it on joining).
    let it = bo
        .until(STEP_TIMEOUT, |m| {
            (m["e"] == "it").then(|| m["it"].as_u64().unwrap() as u32)
        })
        .await;
    let (chaser, runner) = if it == ann.you() {
        (&mut ann, &mut bo)
    } else {
        (&mut bo, &mut ann)
    };
    let runner_id = runner.you();
    let chaser_id = chaser.you();
    // The it runs at the other, who stands still; touching passes it on.
    let seen = chaser.chase(runner_id, 0.95).await;
    chaser.run(0.0, 0.0).await;
    let first = match seen.into_iter().find(|e| e["e"] == "tagged") {
        Some(event) => event,
        None => chaser.until(STEP_TIMEOUT, tagged).await,
    };
    let tagged_at = Instant::now();
    assert_eq!(
        (&first["it"], &first["by"]),
        (&json!(runner_id), &json!(chaser_id))
    );
    assert_eq!(
        runner.until(STEP_TIMEOUT, tagged).await,
        first,
        "both are told"
    );
    let rows = runner.rows_after(Duration::from_millis(100)).await;
    let flags = |id: u32| rows.iter().find(|r| r.id == id).unwrap().flags;
    assert_eq!((flags(runner_id) & IT, flags(chaser_id) & IT), (IT, 0));
    // The new it runs straight back, but cannot tag its tagger before the cooldown ends.
    let seen = runner.chase(chaser_id, 0.5).await;
    runner.run(0.0, 0.0).await;
    let back = match seen.into_iter().find(|e| e["e"] == "tagged") {
        Some(event) => event,
        None => runner.until(STEP_TIMEOUT, tagged).await,
    };
    assert_eq!(
        (&back["it"], &back["by"]),
        (&json!(chaser_id), &json!(runner_id))
    );
    let waited = tagged_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1300),
        "tagged back after {waited:?}"
    );
}

fn tagged(m: &Value) -> Option<Value> {
    (m["e"] == "tagged").then(|| m.clone())
}

#[tokio::test]
async fn a_dropped_player_resumes_with_the_same_id_and_score() {
    let s = tag_server();
    let ann = Player::join(&s, "ann", Subprotocol::V1Json).await;
    let mut bo = Player::join(&s, "bo", Subprotocol::V1MsgPack).await;
    // Whoever is not it scores; let them score a while.
    let rows = bo.rows_after(Duration::from_millis(800)).await;
    let runner = *rows.iter().find(|r| r.flags & IT == 0).expect("a runner");
    assert!(runner.score > 0.3, "{runner:?}");
    let (dropper, mut stayer) = if runner.id == ann.you() {
        (ann, bo)
    } else {
        (bo, ann)
    };
    // Back later on the other subprotocol: resuming does not depend on it.
    let sub = dropper.sub.clone();
    let protocol = match dropper.protocol {
        Subprotocol::V1Json => Subprotocol::V1MsgPack,
        _ => Subprotocol::V1Json,
    };
    // The socket goes without a close: the player waits, away, its score frozen.
    drop(dropper);
    let away = stayer
        .until(STEP_TIMEOUT, |m| {
            let found = m["ents"]
                .as_array()?
                .iter()
                .map(row)
                .find(|r| r.id == runner.id)?;
            (found.flags & AWAY != 0).then_some(found)
        })
        .await;
    let later = stayer.rows_after(Duration::from_millis(300)).await;
    let frozen = later
        .iter()
        .find(|r| r.id == runner.id)
        .copied()
        .expect("kept while away");
    assert_eq!(frozen.score, away.score, "no score while away");
    assert!(frozen.score >= runner.score);
    let mut back = Player::join(&s, &sub, protocol).await;
    assert_eq!(back.you(), runner.id);
    assert_eq!(back.welcome["resumed"], true);
    let rows = back.rows_after(Duration::from_millis(100)).await;
    let resumed = rows.iter().find(|r| r.id == runner.id).copied().unwrap();
    assert_eq!(resumed.flags & AWAY, 0);
    assert!(
        (frozen.score..frozen.score + 0.3).contains(&resumed.score),
        "score {} after resuming, {} before",
        resumed.score,
        frozen.score
    );
}
