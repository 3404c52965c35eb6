//! The cluster end to end: a private `redis-server` and several `rallypoint` processes
//! (started exactly as the other end-to-end tests start one), played by Rust clients
//! (`rallypoint-client`) through `/match`, `/play`, 421s and `moved`. Each trial asserts
//! what a player would notice; those that measure print what they saw (`eprintln!`).
//!
//! Needs `redis-server` ([`Need::Redis`]); without it the trials are reported as ignored,
//! unless `RALLYPOINT_REQUIRE_REDIS=1` (set by CI), where they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use libtest_mimic::Trial;
use rallypoint_bots::{Auth, Behavior, Config, MintOptions, Report};
use rallypoint_client::{ConnectError, Endpoint, Kind, Received, Request, Session, TokenIn};
use rallypoint_protocol::Subprotocol;
use rallypoint_protocol::entity::{Entity, PLAYER_AWAY, PLAYER_DEAD};
use rallypoint_protocol::message::{Input, ServerMessage};
use rallypoint_tests::external::{Need, Needs, Tool};
use rallypoint_tests::redis::{Link, RedisServer};
use rallypoint_tests::{TempDir, TestServer, copy_dir, external_trials, http, repo_assets};
use serde_json::Value;
use tokio::sync::watch;

use crate::server;

/// This module's trials.
pub fn trials(needs: &Needs) -> Vec<Trial> {
    let mut trials = external_trials!(needs, Need::Redis => [
        match_from_any_node_fills_rooms_across_the_cluster,
        racing_play_and_match_for_one_room_end_in_one_instance,
        a_killed_nodes_players_come_back_elsewhere_with_their_ids_and_scores,
        a_drained_node_moves_every_player_to_another_node,
        a_rolling_restart_under_match_bots_keeps_every_score_and_explains_every_lost_input,
        an_admin_drain_stops_readiness_and_matching_and_hands_rooms_over,
        a_redis_outage_goes_unnoticed_by_players_and_match_waits_for_it,
        a_node_cut_off_from_redis_loses_its_room_to_the_node_that_reopened_it,
        a_node_cut_off_past_the_grace_gives_its_rooms_up,
    ]);
    trials.push(needs.trial2(
        "nodes::the_js_sdk_finds_its_room_through_match_after_a_kill_and_follows_moved_on_a_drain",
        [Need::Redis, Need::Node],
        the_js_sdk_finds_its_room_through_match_after_a_kill_and_follows_moved_on_a_drain,
    ));
    trials.push(needs.trial2(
        "nodes::the_browser_follows_moved_to_another_node_and_says_so",
        [Need::Redis, Need::Chromium],
        the_browser_follows_moved_to_another_node_and_says_so,
    ));
    trials
}

/// Assets for these trials: rooms of `capacity` seats playing an open field where four
/// players spawn a few units apart, so fights (and scores) happen within seconds.
fn field_assets(capacity: u16) -> TempDir {
    let dir = TempDir::new("cluster-assets");
    copy_dir(&repo_assets(), &dir.0);
    let game = std::fs::read_to_string(dir.join("game.toml")).expect("game.toml");
    let game: String = game
        .lines()
        .map(|l| {
            if l.starts_with("maps = ") {
                "maps = [\"field\"]".to_owned()
            } else if l.starts_with("room_capacity = ") {
                format!("room_capacity = {capacity}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("game.toml"), game).expect("write game.toml");
    let wall = |x, y, w, h| format!("[[wall]]\nx = {x}\ny = {y}\nw = {w}\nh = {h}\n\n");
    let spawn = |x, y| format!("[[spawn]]\nx = {x}\ny = {y}\n\n");
    let map = [
        "width = 30\nheight = 20\n\n".to_owned(),
        wall(0, 0, 30, 1),
        wall(0, 19, 30, 1),
        wall(0, 1, 1, 18),
        wall(29, 1, 1, 18),
        spawn(12, 10),
        spawn(18, 10),
        spawn(15, 7),
        spawn(15, 13),
    ]
    .concat();
    std::fs::write(dir.join("maps/field.toml"), map).expect("write the field map");
    dir
}

/// A node of the cluster at `redis`, named `id`.
fn node(redis: &str, id: &str, assets: &TempDir, extra: &[&str]) -> TestServer {
    node_on(None, redis, id, assets, extra)
}

/// [`node`], listening for players at `listen` when given (a node restarted in place).
fn node_on(
    listen: Option<SocketAddr>,
    redis: &str,
    id: &str,
    assets: &TempDir,
    extra: &[&str],
) -> TestServer {
    let args = [
        "--redis-url",
        redis,
        "--node-id",
        id,
        "--max-connections-per-ip",
        "10000",
        "--handshake-rate",
        "10000/10000",
        "--max-pending-handshakes-per-ip",
        "1000",
    ];
    let builder = server()
        .assets(&assets.0)
        .args(args.iter().chain(extra).copied());
    match listen {
        Some(addr) => builder.listen(addr),
        None => builder,
    }
    .start()
}

/// `n` nodes `n0`.. on `redis`, each registered before this returns.
async fn nodes(redis: &str, n: usize, assets: &TempDir) -> Vec<TestServer> {
    let nodes: Vec<_> = (0..n)
        .map(|i| node(redis, &format!("n{i}"), assets, &[]))
        .collect();
    let ids: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
    registered(
        &nodes[0],
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    nodes
}

/// Waits until the directory, as `observer` sees it, lists every node of `ids` live.
async fn registered(observer: &TestServer, ids: &[&str]) {
    eventually(
        Duration::from_secs(10),
        "every node registers",
        async || {
            let view = cluster_view(observer).await;
            ids.iter().all(|id| live_node(&view, id))
        },
    )
    .await;
}

/// `/admin/cluster` of `node` (`Null` while the directory does not answer).
async fn cluster_view(node: &TestServer) -> Value {
    let r = node.admin_get("/admin/cluster").await;
    if r.status == 200 {
        r.json()
    } else {
        Value::Null
    }
}

fn live_node(view: &Value, id: &str) -> bool {
    view["directory"]["nodes"]
        .as_array()
        .is_some_and(|nodes| nodes.iter().any(|n| n["id"] == id))
}

/// The rooms the directory lists, per a `/admin/cluster` view.
fn listed_rooms(view: &Value) -> Vec<Value> {
    view["directory"]["rooms"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The node that owns `room` under a live lease, per a `/admin/cluster` view.
fn owner_of(view: &Value, room: &str) -> Option<String> {
    let now = view["directory"]["now_ms"].as_u64()?;
    let rooms = listed_rooms(view);
    let r = rooms.iter().find(|r| r["name"] == room)?;
    let live = r["lease_until_ms"]
        .as_u64()
        .is_some_and(|until| until > now);
    r["owner"].as_str().filter(|_| live).map(str::to_owned)
}

/// Rooms open on `node`, by name (`/admin/rooms`).
async fn rooms_on(node: &TestServer) -> BTreeSet<String> {
    let r = node.admin_get("/admin/rooms").await.json();
    r["rooms"]
        .as_array()
        .map(|rooms| {
            rooms
                .iter()
                .filter_map(|r| r["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (up to `within`) until `check` holds, polling every 100 ms.
async fn eventually(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /match` on `node` for `token` (and `room`): the status and the JSON body.
async fn match_on(node: SocketAddr, token: &str, room: Option<&str>) -> (u16, Value) {
    let mut path = format!("/match?access_token={token}");
    if let Some(room) = room {
        path.push_str(&format!("&room={room}"));
    }
    match Endpoint::plain(node).request("GET", &path).await {
        Ok(r) => (r.status, r.json()),
        Err(e) => (0, Value::String(e.to_string())),
    }
}

/// A player of these trials: its account, and its session on some node.
#[derive(Debug)]
struct Player {
    sub: String,
    token: String,
    session: Session,
    /// The node the session is on.
    node: SocketAddr,
    you: u32,
    room: String,
    resumed: bool,
}

impl Player {
    /// Joins at `url` (a `/play` URL), following 421s to the room's node.
    async fn join(url: &str, sub: &str, token: &str) -> Result<Player, ConnectError> {
        let mut url = url.to_owned();
        for _ in 0..4 {
            let endpoint = Endpoint::resolve(&url, &rallypoint_client::Trust::WebPkiRoots)
                .await
                .expect("a ws:// URL");
            let request = Request::new([Subprotocol::V1MsgPack]).token(token, TokenIn::Header);
            match endpoint.join(&request).await {
                Ok(session) => {
                    let w = session.welcome().expect("welcome").clone();
                    return Ok(Player {
                        sub: sub.to_owned(),
                        token: token.to_owned(),
                        session,
                        node: endpoint.addr(),
                        you: w.you,
                        room: w.room,
                        resumed: w.resumed,
                    });
                }
                Err(ConnectError::Rejected(r)) if r.status == 421 => {
                    url = r.response.json()["url"]
                        .as_str()
                        .expect("a 421 names the owner's url")
                        .to_owned();
                }
                Err(e) => return Err(e),
            }
        }
        panic!("{sub}: more than three 421s in a row");
    }

    /// Asks `node`'s `/match` where to play and joins there, again and again until it
    /// works or `within` passes (a 503, a refused or dead node: all retried at once).
    async fn through_match(
        node: SocketAddr,
        sub: &str,
        token: &str,
        room: Option<&str>,
        within: Duration,
    ) -> Player {
        let deadline = Instant::now() + within;
        let mut last = String::new();
        while Instant::now() < deadline {
            let (status, body) = match_on(node, token, room).await;
            if status == 200 {
                let url = body["url"].as_str().expect("url");
                match Player::join(url, sub, token).await {
                    Ok(p) => return p,
                    Err(e) => last = e.to_string(),
                }
            } else {
                last = format!("/match {status}: {body}");
            }
            tokio::time::sleep(Duration::from_millis(50 + fastrand(100))).await;
        }
        panic!("{sub}: no room within {within:?}; last: {last}");
    }

    /// Reads until the next snapshot that has this player's row; `Err` with the close
    /// when the session ends first.
    async fn own_row(&mut self) -> Result<Entity, rallypoint_client::Close> {
        let mut ents = Vec::new();
        loop {
            match self.session.recv().await {
                Ok(Received::Message(m)) if m.kind() == Kind::Snap => {
                    m.snapshot_into(&mut ents).expect("snapshot decodes");
                    if let Some(row) = ents.iter().find(|e| row_id(e) == Some(self.you)) {
                        return Ok(*row);
                    }
                }
                Ok(Received::Message(_)) => {}
                Ok(Received::Closed(c)) => return Err(c),
                Err(e) => {
                    return Err(rallypoint_client::Close {
                        code: e.close_code(),
                        reason: e.to_string(),
                        error: None,
                    });
                }
            }
        }
    }

    /// Shoots at the nearest living player for `time`, then stands still and holds fire
    /// for `rest` (long enough for every shot in flight to land or vanish), reading all
    /// along. Returns its score at the end.
    async fn fight_then_rest(&mut self, time: Duration, rest: Duration) -> i32 {
        let start = Instant::now();
        let mut ents = Vec::new();
        let mut score = 0;
        while start.elapsed() < time + rest {
            let fighting = start.elapsed() < time;
            let got = tokio::time::timeout(Duration::from_secs(2), self.session.recv()).await;
            let m = match got.expect("snapshots keep coming") {
                Ok(Received::Message(m)) => m,
                other => panic!("{}: session ended while fighting: {other:?}", self.sub),
            };
            if m.kind() != Kind::Snap {
                continue;
            }
            m.snapshot_into(&mut ents).expect("snapshot decodes");
            let Some((x, y, s)) = ents.iter().find_map(|e| match *e {
                Entity::Player {
                    id, x, y, score, ..
                } if id == self.you => Some((x, y, score)),
                _ => None,
            }) else {
                continue;
            };
            score = s;
            let target = ents
                .iter()
                .filter_map(|e| match *e {
                    Entity::Player {
                        id, x, y, flags, ..
                    } if id != self.you && flags & (PLAYER_DEAD | PLAYER_AWAY) == 0 => Some((x, y)),
                    _ => None,
                })
                .min_by(|a, b| {
                    let d = |p: &(f32, f32)| (p.0 - x).powi(2) + (p.1 - y).powi(2);
                    d(a).total_cmp(&d(b))
                });
            let aim = target.map_or(0.0, |(tx, ty)| (ty - y).atan2(tx - x));
            let input = Input {
                seq: 0,
                mx: 0.0,
                my: 0.0,
                aim,
                fire: fighting && target.is_some(),
                view: None,
            };
            self.session.send_input(input).await.expect("input sent");
        }
        score
    }

    /// Reads until the session ends; the `moved` URL if one came first, the time of the
    /// last snapshot before it, and the close.
    async fn until_closed(&mut self) -> (Option<String>, Instant, rallypoint_client::Close) {
        let mut moved = None;
        let mut last_snap = Instant::now();
        loop {
            let got = tokio::time::timeout(Duration::from_secs(20), self.session.recv()).await;
            match got.expect("the session ends in time") {
                Ok(Received::Message(m)) => match m.kind() {
                    Kind::Snap => last_snap = Instant::now(),
                    Kind::Moved => {
                        if let Ok(ServerMessage::Moved(to)) = m.decode() {
                            moved = Some(to.url);
                        }
                    }
                    _ => {}
                },
                Ok(Received::Closed(c)) => return (moved, last_snap, c),
                Err(e) => {
                    let close = rallypoint_client::Close {
                        code: e.close_code(),
                        reason: e.to_string(),
                        error: None,
                    };
                    return (moved, last_snap, close);
                }
            }
        }
    }

    /// Reads for `time`; the longest wait between two snapshots (panics if it ends).
    async fn watch(&mut self, time: Duration) -> Duration {
        let start = Instant::now();
        let mut last = Instant::now();
        let mut longest = Duration::ZERO;
        while start.elapsed() < time {
            let left = time.saturating_sub(start.elapsed());
            let Ok(got) = tokio::time::timeout(left, self.session.recv()).await else {
                break;
            };
            match got {
                Ok(Received::Message(m)) if m.kind() == Kind::Snap => {
                    longest = longest.max(last.elapsed());
                    last = Instant::now();
                }
                Ok(Received::Message(_)) => {}
                other => panic!("{}: the session ended: {other:?}", self.sub),
            }
        }
        longest.max(last.elapsed().min(time))
    }
}

fn row_id(e: &Entity) -> Option<u32> {
    match *e {
        Entity::Player { id, .. } => Some(id),
        _ => None,
    }
}

fn score_of(row: &Entity) -> i32 {
    match *row {
        Entity::Player { score, .. } => score,
        _ => panic!("not a player row: {row:?}"),
    }
}

/// A small random number below `n`, for retry jitter.
fn fastrand(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    nanos % n.max(1)
}

/// Players `prefix-0`.. in room `room` on `node` (by `/play?room=`), fought until the
/// room has scored, then at rest: each with its score.
async fn scored_room(node: &TestServer, prefix: &str, room: &str, n: usize) -> Vec<(Player, i32)> {
    let url = format!("ws://{}/play?room={room}", node.game);
    let mut players = Vec::new();
    for i in 0..n {
        let sub = format!("{prefix}-{i}");
        let token = node.token(&sub);
        players.push(Player::join(&url, &sub, &token).await.expect("join"));
    }
    for round in 0..5 {
        let scores = join_all(
            players
                .iter_mut()
                .map(|p| p.fight_then_rest(Duration::from_secs(2), Duration::from_secs(2))),
        )
        .await;
        if scores.iter().sum::<i32>() > 0 {
            return players.into_iter().zip(scores).collect();
        }
        eprintln!("{room}: nobody scored in fight {round}; again");
    }
    panic!("{room}: no kill in five fights");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn match_from_any_node_fills_rooms_across_the_cluster(redis: Tool) {
    let redis = RedisServer::start(redis.path());
    let assets = field_assets(10);
    let nodes = nodes(&redis.url(), 3, &assets).await;
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.game).collect();
    let (stop, stopped) = watch::channel(false);
    // 100 players at once, each asking a node in turn; each keeps reading once in.
    let tasks: Vec<_> = (0..100usize)
        .map(|i| {
            let (node, token) = (addrs[i % 3], nodes[0].token(&format!("m-{i}")));
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let sub = format!("m-{i}");
                let mut p =
                    Player::through_match(node, &sub, &token, None, Duration::from_secs(60)).await;
                let placed = (p.room.clone(), p.node);
                let (tx, rx) = tokio::sync::oneshot::channel();
                tokio::spawn(async move {
                    let _ = tx.send(());
                    tokio::select! {
                        _ = stopped.wait_for(|&s| s) => {}
                        _ = async { while let Ok(Received::Message(_)) = p.session.recv().await {} } => {}
                    }
                });
                let _ = rx.await;
                placed
            })
        })
        .collect();
    let placed: Vec<(String, SocketAddr)> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("player task"))
        .collect();
    let mut rooms: BTreeMap<&str, (usize, BTreeSet<SocketAddr>)> = BTreeMap::new();
    for (room, node) in &placed {
        let e = rooms.entry(room).or_default();
        e.0 += 1;
        e.1.insert(*node);
    }
    eprintln!(
        "rooms: {:?}",
        rooms.iter().map(|(r, (n, _))| (r, n)).collect::<Vec<_>>()
    );
    for (room, (players, hosts)) in &rooms {
        assert!(*players <= 10, "{room} holds {players} players");
        assert_eq!(hosts.len(), 1, "{room} on several nodes: {hosts:?}");
    }
    assert_eq!(rooms.len(), 10, "100 players fill ten rooms of ten");
    let hosting: BTreeSet<_> = rooms.values().flat_map(|(_, h)| h.iter()).collect();
    assert_eq!(hosting.len(), 3, "new rooms go to the least-loaded node");
    // The directory agrees: ten rooms, each within capacity, once members are written.
    eventually(
        Duration::from_secs(5),
        "the directory lists 100 members",
        async || {
            let rooms = listed_rooms(&cluster_view(&nodes[1]).await);
            let members: u64 = rooms.iter().filter_map(|r| r["members"].as_u64()).sum();
            rooms
                .iter()
                .all(|r| r["members"].as_u64() <= r["capacity"].as_u64())
                && members == 100
        },
    )
    .await;
    stop.send_replace(true);
}

async fn racing_play_and_match_for_one_room_end_in_one_instance(redis: Tool) {
    let redis = RedisServer::start(redis.path());
    let assets = field_assets(64);
    let nodes = nodes(&redis.url(), 3, &assets).await;
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.game).collect();
    let joins = (0..50usize).map(|i| {
        let node = addrs[i % 3];
        let sub = format!("race-{i}");
        let token = nodes[0].token(&sub);
        async move {
            if i % 2 == 0 {
                let url = format!("ws://{node}/play?room=race");
                Player::join(&url, &sub, &token).await.expect("join")
            } else {
                Player::through_match(node, &sub, &token, Some("race"), Duration::from_secs(20))
                    .await
            }
        }
    });
    let players = join_all(joins).await;
    let hosts: BTreeSet<SocketAddr> = players.iter().map(|p| p.node).collect();
    assert!(players.iter().all(|p| p.room == "race"));
    assert_eq!(hosts.len(), 1, "one instance of the room: {hosts:?}");
    let mut open_on = Vec::new();
    for n in &nodes {
        if rooms_on(n).await.contains("race") {
            open_on.push(n.game);
        }
    }
    assert_eq!(open_on, hosts.into_iter().collect::<Vec<_>>());
    let owner = owner_of(&cluster_view(&nodes[0]).await, "race").expect("owned");
    let owner_addr = nodes.iter().position(|n| n.game == open_on[0]).unwrap();
    assert_eq!(owner, format!("n{owner_addr}"));
    let ids: BTreeSet<u32> = players.iter().map(|p| p.you).collect();
    assert_eq!(ids.len(), 50, "everyone is in, each with an id");
}

async fn a_killed_nodes_players_come_back_elsewhere_with_their_ids_and_scores(redis: Tool) {
    let redis = RedisServer::start(redis.path());
    let assets = field_assets(10);
    let nodes = nodes(&redis.url(), 3, &assets).await;
    let (victim, others) = (&nodes[0], [nodes[1].game, nodes[2].game]);
    let mut players = scored_room(victim, "k1", "k1", 3).await;
    players.extend(scored_room(victim, "k2", "k2", 3).await);
    // Let the latest checkpoint see everyone at rest.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before: Vec<(String, String, u32, i32)> = players
        .iter()
        .map(|(p, s)| (p.sub.clone(), p.token.clone(), p.you, *s))
        .collect();
    victim.signal("KILL");
    let killed = Instant::now();
    let comebacks = before
        .iter()
        .enumerate()
        .map(|(i, (sub, token, you, score))| {
            let node = others[i % 2];
            async move {
                let mut p =
                    Player::through_match(node, sub, token, None, Duration::from_secs(30)).await;
                let back = killed.elapsed();
                assert!(
                    p.resumed && p.you == *you,
                    "{sub}: resumed {} as {} (was {you})",
                    p.resumed,
                    p.you
                );
                let row = p.own_row().await.expect("a snapshot after the resume");
                assert_eq!(score_of(&row), *score, "{sub} keeps its score");
                (back, p)
            }
        });
    let back = join_all(comebacks).await;
    let mut times: Vec<Duration> = back.iter().map(|(t, _)| *t).collect();
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    eprintln!(
        "kill -9 to resumed, {} players: p50 {p50:?}, p99 {p99:?}, all {times:?}",
        times.len()
    );
    assert!(
        p99 < Duration::from_secs(5),
        "kill to resume p99 {p99:?} (target 5 s)"
    );
    assert!(back.iter().all(|(_, p)| others.contains(&p.node)));
    let view = cluster_view(&nodes[1]).await;
    assert!(!live_node(&view, "n0"), "the dead node is gone: {view}");
    for room in ["k1", "k2"] {
        let owner = owner_of(&view, room).expect("reopened");
        assert_ne!(owner, "n0", "{room}");
    }
}

async fn a_drained_node_moves_every_player_to_another_node(redis: Tool) {
    let redis = RedisServer::start(redis.path());
    let assets = field_assets(10);
    let mut nodes = nodes(&redis.url(), 3, &assets).await;
    let others = [nodes[1].game, nodes[2].game];
    let mut players = scored_room(&nodes[0], "d", "d1", 4).await;
    nodes[0].signal("TERM");
    let moves = players.iter_mut().map(|(p, score)| async move {
        let (moved, last_snap, close) = p.until_closed().await;
        let url = moved.unwrap_or_else(|| panic!("{}: no moved before {close:?}", p.sub));
        assert_eq!(close.code, 1012, "{}", p.sub);
        assert_eq!(
            close.error.as_ref().map(|e| e.code.as_str()),
            Some("room_moved")
        );
        let mut q = Player::join(&url, &p.sub, &p.token)
            .await
            .expect("join where moved");
        assert!(
            q.resumed && q.you == p.you,
            "{}: resumed as the same player",
            p.sub
        );
        let row = q.own_row().await.expect("a snapshot after the move");
        let gap = last_snap.elapsed();
        assert_eq!(score_of(&row), *score, "{} keeps its score", p.sub);
        assert!(others.contains(&q.node));
        (gap, q.node)
    });
    let moved = join_all(moves).await;
    let mut gaps: Vec<Duration> = moved.iter().map(|(g, _)| *g).collect();
    gaps.sort();
    eprintln!(
        "drain hand-off, snapshots missed per player: p50 {:?}, p99 {:?}, all {gaps:?}",
        percentile(&gaps, 0.5),
        percentile(&gaps, 0.99)
    );
    let hosts: BTreeSet<_> = moved.iter().map(|(_, n)| *n).collect();
    assert_eq!(hosts.len(), 1, "the room reopened once");
    assert_eq!(nodes[0].wait_exit(Duration::from_secs(15)), Some(0));
    let view = cluster_view(&nodes[1]).await;
    assert!(!live_node(&view, "n0"));
    assert_ne!(owner_of(&view, "d1").as_deref(), Some("n0"));
    let _ = nodes.remove(0);
}

/// A deploy: every node in turn is sent SIGTERM (its rooms are handed over, its players
/// told where with `moved`), restarted at the same address and waited for in the
/// directory, while 60 bots that found their rooms through `/match` fight. Every moved
/// player comes back as the last snapshot before `moved` showed it, and every input is
/// acknowledged or was in flight at a move.
async fn a_rolling_restart_under_match_bots_keeps_every_score_and_explains_every_lost_input(
    redis: Tool,
) {
    const BOTS: usize = 60;
    let redis = RedisServer::start(redis.path());
    let assets = field_assets(10);
    let mut nodes = nodes(&redis.url(), 3, &assets).await;
    let config = Config {
        url: nodes[0].play_url(),
        bots: BOTS,
        ramp_per_s: 60.0,
        duration: Duration::from_secs(24),
        behavior: Behavior::Fight,
        matchmaking: true,
        auth: Auth::Mint(MintOptions::new(nodes[0].secret.clone())),
        seed: Some(15),
        ..Config::default()
    };
    // The bots get a runtime of their own: the trial's waits for a node's exit block.
    let bots = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the bots");
        runtime.block_on(rallypoint_bots::run(config))
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ids = ["n0", "n1", "n2"];
    for i in 0..nodes.len() {
        let started = Instant::now();
        nodes[i].signal("TERM");
        assert_eq!(nodes[i].wait_exit(Duration::from_secs(15)), Some(0));
        let addr = nodes[i].game;
        nodes[i] = node_on(Some(addr), &redis.url(), ids[i], &assets, &[]);
        registered(&nodes[(i + 1) % 3], &ids).await;
        eprintln!(
            "{}: drained, restarted and registered in {:?}",
            ids[i],
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let report: Report = bots
        .join()
        .expect("the bots' thread")
        .expect("the bots run");
    let text = report.render_text();
    eprintln!("{text}");
    let (wb, cl) = (&report.well_behaved, &report.cluster);
    assert_eq!(wb.ever_connected, BOTS as u64, "{text}");
    assert_eq!(wb.unexpected_closes, 0, "{text}");
    assert!(cl.matches >= BOTS as u64, "{text}");
    assert!(
        cl.moves >= BOTS as u64,
        "every bot moved at least once: {text}"
    );
    assert_eq!(cl.moves_unguided, 0, "{text}");
    assert_eq!(
        (cl.resumes, cl.resume_failures),
        (cl.moves, 0),
        "every move resumed the player: {text}"
    );
    assert_eq!(cl.state_lost, 0, "no position or score lost: {text}");
    assert!(cl.state_kept + cl.shots_landed > 0, "{text}");
    assert_eq!(report.decode_errors, 0, "{text}");
    let i = &wb.inputs;
    assert_eq!(i.unexplained, 0, "{text}");
    assert_eq!(i.lost_at_close + i.lost_at_churn, 0, "{text}");
    assert_eq!(i.sent, i.acked + i.lost_at_move, "{text}");
    let view = cluster_view(&nodes[0]).await;
    assert!(ids.iter().all(|id| live_node(&view, id)), "{view}");
}

async fn a_redis_outage_goes_unnoticed_by_players_and_match_waits_for_it(redis: Tool) {
    let mut redis = RedisServer::start(redis.path());
    let assets = field_assets(10);
    let nodes = nodes(&redis.url(), 2, &assets).await;
    let url = format!("ws://{}/play?room=o1", nodes[0].game);
    let mut players = Vec::new();
    for sub in ["o-a", "o-b"] {
        let token = nodes[0].token(sub);
        players.push(Player::join(&url, sub, &token).await.expect("join"));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    redis.stop();
    let outage = Instant::now();
    let probe_token = nodes[1].token("o-probe");
    let probes = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (status, body) = match_on(nodes[1].game, &probe_token, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("directory_unavailable"))
        );
        let fresh = format!("ws://{}/play?room=o-new", nodes[1].game);
        match Player::join(&fresh, "o-probe", &probe_token).await {
            Err(ConnectError::Rejected(r)) => {
                assert_eq!((r.status, r.error.as_str()), (503, "directory_unavailable"));
                assert!(r.retry_after.is_some());
            }
            other => panic!("a new room opened without the directory: {other:?}"),
        }
        // Once the room's claim has lapsed (3 s) it keeps its players but takes no new
        // one: another node could be reopening it.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let late = nodes[0].token("o-late");
        match Player::join(&url, "o-late", &late).await {
            Err(ConnectError::Rejected(r)) => {
                assert_eq!((r.status, r.error.as_str()), (503, "directory_unavailable"));
            }
            other => panic!("a lapsed room took a new player: {other:?}"),
        }
    };
    let watching = join_all(players.iter_mut().map(|p| p.watch(Duration::from_secs(10))));
    let (gaps, ()) = tokio::join!(watching, probes);
    eprintln!(
        "Redis down {:?}; longest snapshot gaps {gaps:?}",
        outage.elapsed()
    );
    assert!(gaps.iter().all(|g| *g < Duration::from_secs(1)), "{gaps:?}");
    redis.restart();
    let back = Instant::now();
    eventually(
        Duration::from_secs(5),
        "the cluster is healthy again",
        async || {
            let view = cluster_view(&nodes[1]).await;
            let (ok0, _) = match_on(nodes[0].game, &probe_token, None).await;
            live_node(&view, "n0")
                && live_node(&view, "n1")
                && owner_of(&view, "o1").as_deref() == Some("n0")
                && ok0 == 200
        },
    )
    .await;
    eprintln!("healthy {:?} after Redis returned", back.elapsed());
    assert!(!rooms_on(&nodes[1]).await.contains("o1"), "one owner");
    eventually(
        Duration::from_secs(3),
        "the room's members are written again",
        async || {
            let rooms = listed_rooms(&cluster_view(&nodes[0]).await);
            rooms.iter().any(|r| r["name"] == "o1" && r["members"] == 2)
        },
    )
    .await;
    for p in &mut players {
        assert!(p.watch(Duration::from_millis(500)).await < Duration::from_secs(1));
    }
}

async fn a_node_cut_off_from_redis_loses_its_room_to_the_node_that_reopened_it(redis: Tool) {
    let redis = RedisServer::start(redis.path());
    let link = Link::to(redis.addr()).await;
    let assets = field_assets(10);
    // n0 reaches Redis only through the link; its players reach it directly.
    let cut_off = node(&link.url(), "n0", &assets, &[]);
    let rest = [
        node(&redis.url(), "n1", &assets, &[]),
        node(&redis.url(), "n2", &assets, &[]),
    ];
    registered(&rest[0], &["n0", "n1", "n2"]).await;
    let url = format!("ws://{}/play?room=p1", cut_off.game);
    let mut players = Vec::new();
    for sub in ["p-a", "p-b"] {
        let token = cut_off.token(sub);
        players.push(Player::join(&url, sub, &token).await.expect("join"));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    link.cut();
    // Its players play on while its claim lapses in Redis (3 s).
    for p in &mut players {
        assert!(p.watch(Duration::from_millis(1800)).await < Duration::from_secs(1));
    }
    eventually(
        Duration::from_secs(5),
        "the room is orphaned in Redis",
        async || owner_of(&cluster_view(&rest[0]).await, "p1").is_none(),
    )
    .await;
    // Someone asks for the room elsewhere: it reopens there from its last checkpoint.
    let token = rest[0].token("p-c");
    let newcomer = Player::through_match(
        rest[0].game,
        "p-c",
        &token,
        Some("p1"),
        Duration::from_secs(10),
    )
    .await;
    assert_ne!(newcomer.node, cut_off.game);
    let new_owner = owner_of(&cluster_view(&rest[0]).await, "p1").expect("owned again");
    assert_ne!(new_owner, "n0");
    for p in &mut players {
        assert!(p.watch(Duration::from_millis(300)).await < Duration::from_secs(1));
    }
    // The link heals: n0 finds a higher epoch, and sends its players to the new owner.
    link.heal();
    let healed = Instant::now();
    let moves = players.iter_mut().map(|p| async move {
        let (moved, _, close) = p.until_closed().await;
        assert_eq!(close.code, 1012, "{}", p.sub);
        let url = moved.expect("told where the room lives now");
        let q = Player::join(&url, &p.sub, &p.token)
            .await
            .expect("join the new owner");
        assert!(
            q.resumed && q.you == p.you && q.node == newcomer.node,
            "{}",
            p.sub
        );
        q
    });
    let moved = join_all(moves).await;
    eprintln!(
        "players of the cut-off node moved {:?} after the link healed",
        healed.elapsed()
    );
    assert_eq!(moved.len(), 2);
    assert!(
        !rooms_on(&cut_off).await.contains("p1"),
        "n0 closed its copy"
    );
    assert_eq!(
        owner_of(&cluster_view(&rest[1]).await, "p1"),
        Some(new_owner)
    );
}

async fn a_node_cut_off_past_the_grace_gives_its_rooms_up(redis: Tool) {
    let redis = RedisServer::start(redis.path());
    let link = Link::to(redis.addr()).await;
    let assets = field_assets(10);
    let cut_off = node(&link.url(), "n0", &assets, &["--cluster-lapse-grace", "2s"]);
    let other = node(&redis.url(), "n1", &assets, &[]);
    registered(&other, &["n0", "n1"]).await;
    let url = format!("ws://{}/play?room=g1", cut_off.game);
    let token = cut_off.token("g-a");
    let mut p = Player::join(&url, "g-a", &token).await.expect("join");
    tokio::time::sleep(Duration::from_millis(700)).await;
    link.cut();
    let cut = Instant::now();
    // Nobody takes the room over; past lease (3 s) and grace (2 s) n0 gives it up. It
    // cannot learn where the room is, so the close comes without a `moved`.
    let (moved, _, close) = p.until_closed().await;
    eprintln!("room given up {:?} after the cut", cut.elapsed());
    assert!(
        cut.elapsed() > Duration::from_secs(4),
        "not before lease and grace"
    );
    assert_eq!((moved, close.code), (None, 1012));
    link.heal();
    // Back through /match: the room reopens from its checkpoint and the player resumes.
    let q = Player::through_match(other.game, "g-a", &token, None, Duration::from_secs(15)).await;
    assert!(q.resumed && q.you == p.you);
    assert_eq!(q.room, "g1");
}

async fn an_admin_drain_stops_readiness_and_matching_and_hands_rooms_over(redis: Tool) {
    let redis = RedisServer::start(redis.path());
    let assets = field_assets(10);
    let admin_token = "cluster-admin-token-0123456789abcdef";
    std::fs::write(assets.join("admin-token"), admin_token).expect("write the admin token");
    let token_file = assets.join("admin-token").display().to_string();
    let drained = node(
        &redis.url(),
        "n0",
        &assets,
        &["--admin-token-file", &token_file],
    );
    let other = node(&redis.url(), "n1", &assets, &[]);
    registered(&other, &["n0", "n1"]).await;
    let url = format!("ws://{}/play?room=a1", drained.game);
    let token = drained.token("a-a");
    let mut p = Player::join(&url, "a-a", &token).await.expect("join");
    let post = |auth: &str| {
        format!(
            "POST /admin/drain HTTP/1.1\r\nHost: {}\r\n{auth}Content-Length: 0\r\n\r\n",
            drained.admin
        )
    };
    assert_eq!(
        http(drained.admin, &post("")).await.status,
        401,
        "behind the admin token"
    );
    let answer = http(
        drained.admin,
        &post(&format!("Authorization: Bearer {admin_token}\r\n")),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(
        (body["draining"].as_bool(), body["rooms"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(body["remaining"], 0);
    let (moved, _, close) = p.until_closed().await;
    assert_eq!(close.code, 1012);
    let q = Player::join(&moved.expect("moved"), "a-a", &token)
        .await
        .expect("join");
    assert!(q.resumed && q.node == other.game);
    // Drained: not ready, no new players, and no /match sends anyone here any more.
    assert_eq!(drained.admin_get("/readyz").await.status, 503);
    let fresh = format!("ws://{}/play?room=a2", drained.game);
    match Player::join(&fresh, "a-b", &drained.token("a-b")).await {
        Err(ConnectError::Rejected(r)) => {
            assert_eq!((r.status, r.error.as_str()), (503, "draining"))
        }
        other => panic!("a drained node took a player: {other:?}"),
    }
    for i in 0..6 {
        let at = if i % 2 == 0 { drained.game } else { other.game };
        let (status, body) = match_on(at, &drained.token(&format!("a-m{i}")), None).await;
        assert_eq!((status, body["node"].as_str()), (200, Some("n1")), "{body}");
    }
    let metric = async |s: &TestServer, name: &str, labels: &str| s.metric(name, labels).await;
    let handed = metric(
        &drained,
        "rallypoint_rooms_moved_out_total",
        "how=\"handoff\",outcome=\"moved\"",
    );
    assert_eq!(handed.await, 1.0);
    let restored = metric(
        &other,
        "rallypoint_rooms_reopened_total",
        "outcome=\"restored\"",
    );
    assert_eq!(restored.await, 1.0);
    let assigned = drained
        .metric("rallypoint_matches_total", "outcome=\"assigned\"")
        .await
        + other
            .metric("rallypoint_matches_total", "outcome=\"assigned\"")
            .await;
    assert_eq!(assigned, 6.0);
}

/// What the SDK's cluster player (`protocol/js/test-support/cluster-player.js`) prints,
/// one JSON object per line, read as it comes.
struct SdkPlayer {
    child: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<Value>,
}

impl SdkPlayer {
    /// Starts the SDK player for `token` in `room`, asking `/match` of every node.
    fn start(node: &Tool, nodes: &[TestServer], token: &str, room: &str) -> SdkPlayer {
        use std::io::BufRead;
        use std::process::Stdio;
        let package = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/js");
        let urls: Vec<String> = nodes.iter().map(|n| format!("http://{}", n.game)).collect();
        let mut child = node
            .command()
            .arg("test-support/cluster-player.js")
            .current_dir(package)
            .env("RALLYPOINT_MATCH", urls.join(","))
            .env("RALLYPOINT_TOKEN", token)
            .env("RALLYPOINT_ROOM", room)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("sdk: {line}");
                let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::String(line)));
            }
        });
        SdkPlayer { child, lines }
    }

    /// The next line whose `t` is `kind`, skipping others; panics after 30 s.
    async fn next(&mut self, kind: &str) -> Value {
        let within = Duration::from_secs(30);
        let found = tokio::time::timeout(within, async {
            loop {
                match self.lines.recv().await {
                    Some(v) if v["t"] == kind => return v,
                    Some(_) => {}
                    None => panic!("the SDK player exited before {kind}"),
                }
            }
        });
        found
            .await
            .unwrap_or_else(|_| panic!("no {kind} within {within:?}"))
    }
}

impl Drop for SdkPlayer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The node whose game port is `host` (`127.0.0.1:port`).
fn node_at(nodes: &[TestServer], host: &Value) -> usize {
    nodes
        .iter()
        .position(|n| host.as_str() == Some(n.game.to_string().as_str()))
        .unwrap_or_else(|| panic!("no node at {host}"))
}

/// A player on the JavaScript SDK with `match` set to every node: its node is killed
/// (the SDK's reconnect asks `/match`, passing over the dead node's endpoint, and resumes
/// where the room reopened), then the new node drains (the SDK follows `moved`). Each
/// time: the same entity, `resumed`, on a live node.
async fn the_js_sdk_finds_its_room_through_match_after_a_kill_and_follows_moved_on_a_drain(
    redis: Tool,
    node: Tool,
) {
    let redis = RedisServer::start(redis.path());
    let assets = field_assets(10);
    let nodes = nodes(&redis.url(), 3, &assets).await;
    let token = nodes[0].token("sdk-player");
    let mut player = SdkPlayer::start(&node, &nodes, &token, "js1");
    let first = player.next("welcome").await;
    assert_eq!(first["resumed"], false, "{first}");
    let you = first["you"].clone();
    let owner = node_at(&nodes, &first["host"]);
    // A checkpoint after the join, so the reopened room knows the player.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    nodes[owner].signal("KILL");
    let killed = Instant::now();
    let back = player.next("welcome").await;
    eprintln!("kill -9 to the SDK's resume: {:?}", killed.elapsed());
    assert_eq!(
        (&back["resumed"], &back["you"]),
        (&Value::Bool(true), &you),
        "{back}"
    );
    let second = node_at(&nodes, &back["host"]);
    assert_ne!(second, owner, "resumed on a live node");

    nodes[second].signal("TERM");
    let moved = player.next("moved").await;
    let close = player.next("close").await;
    assert_eq!(close["code"], 1012, "{close}");
    let after = player.next("welcome").await;
    assert_eq!(
        (&after["resumed"], &after["you"]),
        (&Value::Bool(true), &you),
        "{after}"
    );
    let third = node_at(&nodes, &after["host"]);
    assert!(third != owner && third != second, "{moved} → {after}");
    drop(player.child.stdin.take()); // the player leaves
}

/// The browser client on a cluster of two: the page, served by the node that holds its
/// room, plays; that node drains (SIGTERM). The page tells the player it is moving to
/// another server, follows `moved` to the other node and plays on as the same player.
async fn the_browser_follows_moved_to_another_node_and_says_so(redis: Tool, chromium: Tool) {
    let redis = RedisServer::start(redis.path());
    let assets = field_assets(10);
    let nodes = nodes(&redis.url(), 2, &assets).await;
    let mut claims = rallypoint_tests::claims("browser-mover");
    claims["name"] = "mo".into();
    let token = nodes[0].token_with(&claims);
    let (_browser, page) = crate::browser::launch(&chromium.path, false).await;
    // The room is opened through `/match` on the page's node, the least loaded: one of
    // the two. Whichever it is drains.
    page.navigate(&format!("http://{}/?room=mv1#token={token}", nodes[0].game))
        .await
        .expect("load the page");
    let before = crate::browser::wait_playing(&page).await;
    let view = cluster_view(&nodes[0]).await;
    let owner = owner_of(&view, "mv1").expect("the room has an owner");
    let (draining, other) = match owner.as_str() {
        "n0" => (&nodes[0], nodes[1].game),
        _ => (&nodes[1], nodes[0].game),
    };
    page.eval(
        "window.banners = []; new MutationObserver(() => banners.push(\
         document.getElementById('banner-text').textContent)).observe(\
         document.getElementById('banner-text'), {childList: true, characterData: true, subtree: true}); true",
    )
    .await
    .expect("watch the banner");
    draining.signal("TERM");
    page.wait_for(
        "rallypoint.welcomes >= 2 && rallypoint.connected && rallypoint.ack > 0",
        Duration::from_secs(20),
    )
    .await
    .expect("the page reconnects on the other node and plays on");
    let after = crate::browser::state(&page).await;
    assert_eq!(after["lastClose"]["code"], 1012, "{}", after["lastClose"]);
    assert_eq!(after["resumed"], true);
    assert_eq!(after["you"], before["you"], "the same player");
    let banners = page.eval("banners").await.expect("banners");
    assert!(
        banners.as_array().is_some_and(|b| b.iter().any(|t| t
            .as_str()
            .is_some_and(|t| t.contains("Moving to another server")))),
        "the player was told: {banners}"
    );
    let moved_to = page
        .eval("rallypoint.server")
        .await
        .expect("the page's server");
    assert_eq!(moved_to, other.to_string(), "playing on the other node");
    crate::browser::assert_clean(&page).await;
}
