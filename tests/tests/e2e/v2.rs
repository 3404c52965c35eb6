//! `rallypoint.v2.msgpack` end to end: a v1 and a v2 client in one room see the same
//! entities at the same tick within the quantization; a v2 client that drops its
//! connection and resumes starts again from a keyframe and reconstructs the room
//! exactly; bots speak v2 through churn; a hundred v2 bots in one room pass an
//! `--assert` on zero desyncs.

use std::collections::BTreeMap;
use std::time::Duration;

use rallypoint_bots::{Auth, Behavior, Config, MintOptions, Rooms};
use rallypoint_client::{
    Endpoint, FrameOutcome, Kind, Received, RecvError, Request, Session, TokenIn, Trust,
};
use rallypoint_protocol::Subprotocol;
use rallypoint_protocol::entity::Entity;
use rallypoint_protocol::message::Input;
use rallypoint_protocol::v2::FrameKind;
use rallypoint_tests::{STEP_TIMEOUT, TempDir, TestServer, copy_dir, repo_assets};

use crate::server;

/// Entities by snapshot tick.
type Seen = BTreeMap<u32, Vec<Entity>>;

async fn join(s: &TestServer, sub: &str, protocol: Subprotocol, room: &str) -> Session {
    let endpoint = Endpoint::resolve(&s.play_url(), &Trust::default())
        .await
        .expect("resolve")
        .with_timeout(STEP_TIMEOUT);
    let request = Request::new([protocol])
        .token(&s.token(sub), TokenIn::Header)
        .room(room);
    endpoint.join(&request).await.expect("join")
}

/// This tick's input for the player with index `i`: it runs in a direction that turns
/// every 20 ticks and fires every 4th tick.
fn input(i: u32, tick: u32) -> Input {
    let heading = (tick / 20 + 3 * i) as f32 * 1.1;
    Input {
        seq: 0,
        mx: heading.cos(),
        my: heading.sin(),
        aim: heading,
        fire: tick % 4 == i % 4,
        view: None,
    }
}

/// Keeps what a snapshot showed; v2 frames must all apply.
fn record(seen: &mut Seen, received: Result<Received<'_>, RecvError>) {
    match received.expect("session open") {
        Received::Message(m) if m.kind() == Kind::Snap => {
            if let Some(outcome) = m.frame() {
                assert!(matches!(outcome, FrameOutcome::Applied(_)), "{outcome:?}");
            }
            let mut ents = Vec::new();
            let head = m.snapshot_into(&mut ents).expect("snapshot decodes");
            seen.insert(head.tick, ents);
        }
        Received::Message(_) => {}
        Received::Closed(c) => panic!("closed: {c:?}"),
    }
}

/// Plays both sessions for `ticks` ticks of the room's rate and records what each saw
/// at each tick.
async fn play(a: &mut Session, b: &mut Session, ticks: u32) -> [Seen; 2] {
    let mut seen = [Seen::new(), Seen::new()];
    let mut ticker = tokio::time::interval(Duration::from_millis(33));
    let mut sent = 0;
    let play = async {
        while sent < ticks {
            tokio::select! {
                r = a.recv() => record(&mut seen[0], r),
                r = b.recv() => record(&mut seen[1], r),
                _ = ticker.tick() => {
                    sent += 1;
                    for (i, s) in [&mut *a, &mut *b].into_iter().enumerate() {
                        s.queue_input(input(i as u32, sent)).expect("open");
                        s.flush().await.expect("written");
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), play)
        .await
        .expect("played in time");
    seen
}

/// What v1 shows (the server's values as float32) against what a v2 client reconstructs:
/// the same entities, positions within one step (1/64 unit), aims within half of a
/// 1/1024 turn, projectile velocities within 1/64 unit/s plus half a 1/256 step, every
/// other field exactly.
fn assert_same(tick: u32, v1: &[Entity], v2: &[Entity]) {
    let mut v1 = v1.to_vec();
    v1.sort_by_key(Entity::id);
    let ids = |e: &[Entity]| e.iter().map(Entity::id).collect::<Vec<_>>();
    assert_eq!(ids(&v1), ids(v2), "ids at tick {tick}");
    let close = |a: f32, b: f32, tol: f32| (a - b).abs() <= tol;
    for (a, b) in v1.iter().zip(v2) {
        let ((ax, ay), (bx, by)) = (a.pos(), b.pos());
        let step = 1.0 / 64.0 + 1e-4;
        assert!(
            close(ax, bx, step) && close(ay, by, step),
            "tick {tick}: {a:?} vs {b:?}"
        );
        match (*a, *b) {
            (
                Entity::Player {
                    aim: a1,
                    hp: h1,
                    score: s1,
                    flags: f1,
                    ..
                },
                Entity::Player {
                    aim: a2,
                    hp: h2,
                    score: s2,
                    flags: f2,
                    ..
                },
            ) => {
                let turn = std::f32::consts::TAU;
                let d = (a1 - a2).rem_euclid(turn);
                assert!(
                    d.min(turn - d) <= turn / 2048.0 + 1e-4,
                    "tick {tick}: {a:?} vs {b:?}"
                );
                assert_eq!((h1, s1, f1), (h2, s2, f2), "tick {tick}");
            }
            (
                Entity::Projectile {
                    vx: x1,
                    vy: y1,
                    owner: o1,
                    ..
                },
                Entity::Projectile {
                    vx: x2,
                    vy: y2,
                    owner: o2,
                    ..
                },
            ) => {
                let tol = 1.0 / 64.0 + 1.0 / 512.0 + 1e-4;
                assert!(
                    close(x1, x2, tol) && close(y1, y2, tol),
                    "tick {tick}: {a:?} vs {b:?}"
                );
                assert_eq!(o1, o2);
            }
            (Entity::Pickup { flags: f1, .. }, Entity::Pickup { flags: f2, .. }) => {
                assert_eq!(f1, f2, "tick {tick}")
            }
            _ => panic!("tick {tick}: {a:?} vs {b:?}"),
        }
    }
}

/// Compares every tick both saw; returns how many that was.
fn compare(v1: &Seen, v2: &Seen) -> usize {
    let mut common = 0;
    for (tick, ents) in v2 {
        if let Some(other) = v1.get(tick) {
            assert_same(*tick, other, ents);
            common += 1;
        }
    }
    common
}

#[tokio::test]
async fn a_v1_and_a_v2_client_in_one_room_see_the_same_entities() {
    let s = server().start();
    let mut old = join(&s, "old", Subprotocol::V1MsgPack, "mixed").await;
    let mut new = join(&s, "new", Subprotocol::V2MsgPack, "mixed").await;
    assert_eq!(new.protocol(), Subprotocol::V2MsgPack);
    let welcome = new.welcome().expect("welcome");
    assert_eq!(welcome.protocol, "rallypoint.v2.msgpack");
    assert!(welcome.schema.is_some(), "v2's welcome carries the schema");
    let seen = play(&mut old, &mut new, 90).await;
    let common = compare(&seen[0], &seen[1]);
    assert!(common >= 45, "{common} ticks seen by both");
    let moved = seen[1]
        .values()
        .flatten()
        .any(|e| matches!(e, Entity::Projectile { .. }));
    assert!(moved, "shots were fired and reconstructed");
    let stats = new.v2().expect("v2").stats();
    assert_eq!(
        (stats.desyncs, stats.resyncs, stats.keyframes),
        (0, 0, 1),
        "{stats:?}"
    );
    assert!(stats.deltas >= 45 && stats.hashes_checked >= 2, "{stats:?}");
    assert!(old.v2().is_none());
}

#[tokio::test]
async fn a_v2_client_resumes_from_a_keyframe_and_reconstructs_the_room() {
    let s = server().start();
    let mut watcher = join(&s, "watcher", Subprotocol::V1MsgPack, "resume2").await;
    let mut mover = join(&s, "mover", Subprotocol::V2MsgPack, "resume2").await;
    let you = mover.welcome().expect("welcome").you;
    play(&mut watcher, &mut mover, 30).await;
    assert_eq!(mover.v2().expect("v2").stats().desyncs, 0);
    mover.abort();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut mover = join(&s, "mover", Subprotocol::V2MsgPack, "resume2").await;
    assert!(mover.resumed_from(you), "the same player came back");
    // The first frame after the resume is a keyframe.
    let first = tokio::time::timeout(STEP_TIMEOUT, async {
        loop {
            if let Received::Message(m) = mover.recv().await.expect("open")
                && let Some(outcome) = m.frame()
            {
                return outcome;
            }
        }
    })
    .await
    .expect("a frame");
    assert!(
        matches!(first, FrameOutcome::Applied(a) if a.kind == FrameKind::Keyframe),
        "{first:?}"
    );
    let seen = play(&mut watcher, &mut mover, 60).await;
    let common = compare(&seen[0], &seen[1]);
    assert!(common >= 30, "{common} ticks seen by both");
    assert!(
        seen[1]
            .values()
            .all(|ents| ents.iter().any(|e| e.id() == you)),
        "the resumed player is in every reconstructed state"
    );
    let stats = mover.v2().expect("v2").stats();
    assert_eq!((stats.desyncs, stats.keyframes), (0, 1), "{stats:?}");
}

#[tokio::test]
async fn v2_bots_fight_churn_and_resume_without_a_desync() {
    let s = server()
        .args([
            "--max-connections-per-ip",
            "1000",
            "--handshake-rate",
            "1000/1000",
        ])
        .start();
    let config = Config {
        url: s.play_url(),
        bots: 16,
        ramp_per_s: 200.0,
        duration: Duration::from_secs(5),
        behavior: Behavior::Fight,
        protocol: Subprotocol::V2MsgPack,
        rooms: Rooms::Named("churn2".into()),
        auth: Auth::Mint(MintOptions::new(s.secret.clone())),
        churn_pct_per_s: 30.0,
        seed: Some(9),
        ..Config::default()
    };
    let r = tokio::time::timeout(Duration::from_secs(20), rallypoint_bots::run(config))
        .await
        .expect("the run ends on its own")
        .expect("the run starts");
    let text = r.render_text();
    let (wb, c) = (&r.well_behaved, &r.churn);
    assert_eq!(r.config.protocol, "rallypoint.v2.msgpack");
    assert_eq!((wb.ever_connected, wb.unexpected_closes), (16, 0), "{text}");
    assert_eq!((r.decode_errors, wb.inputs.unexplained), (0, 0), "{text}");
    assert_eq!((wb.desyncs, r.v2.counts.resyncs), (0, 0), "{text}");
    // A bot that dropped just before the end may not have come back before it.
    assert!(c.resumes >= 3 && c.resume_failures == 0, "{text}");
    // Every session starts with a keyframe: the first ones and every resume.
    assert_eq!(wb.keyframes, 16 + c.resumes, "{text}");
    assert!(wb.deltas > 16 * 60 && wb.hashes_checked > 16 * 3, "{text}");
    assert_eq!(c.state_lost, 0, "{text}");
    assert!(c.state_kept >= 1, "{text}");
    let k = &wb.bytes_per_bot_s;
    assert!(k.delta > 0.0 && k.keyframe > 0.0 && k.other > 0.0, "{text}");
}

#[tokio::test]
async fn a_hundred_v2_bots_in_one_room_assert_zero_desyncs() {
    let dir = TempDir::new("v2-hundred");
    copy_dir(&repo_assets(), &dir.0);
    let game = dir.join("game.toml");
    let text = std::fs::read_to_string(&game).unwrap();
    assert!(text.contains("room_capacity = 16"));
    let text = text
        .replace("room_capacity = 16", "room_capacity = 100")
        .replace("tick_rate = 30", "tick_rate = 20")
        .replace("snapshot_rate = 30", "snapshot_rate = 20");
    std::fs::write(&game, text).unwrap();
    let s = server()
        .assets(&dir.0)
        .args(crate::bots::LOAD_LIMITS)
        .start();
    let secret = dir.join("secret");
    std::fs::write(&secret, &s.secret).unwrap();
    let url = s.play_url();
    let args: Vec<String> = [
        "--url",
        url.as_str(),
        "--bots",
        "100",
        "--duration",
        "6s",
        "--protocol",
        "v2",
        "--room",
        "hundred",
        "--quiet",
        "--secret-file",
        secret.to_str().unwrap(),
        "--assert",
        "bots.ever_connected==100",
        "--assert",
        "well_behaved.desyncs==0",
        "--assert",
        "v2.resyncs==0",
        "--assert",
        "well_behaved.keyframes>=100",
        "--assert",
        "well_behaved.hashes_checked>=400",
        "--assert",
        "well_behaved.unexpected_closes==0",
    ]
    .map(String::from)
    .to_vec();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_rallypoint-bots-test"))
            .args(args)
            .output()
            .expect("run rallypoint-bots")
    })
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("ok     well_behaved.desyncs == 0"),
        "{stdout}"
    );
    assert!(stdout.contains("v2 frames"), "{stdout}");
}
