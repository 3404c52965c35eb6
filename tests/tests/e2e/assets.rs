//! The designers' workflow end to end: hot reload into a live room, a rejected edit, the
//! admin views, and the `check`, `render-map` and `token` commands.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rallypoint_protocol::Subprotocol;
use rallypoint_tests::{Connect, TempDir, TestServer, copy_dir, repo_assets};

use crate::server;

const BIN: &str = env!("CARGO_BIN_EXE_rallypoint-test-server");

/// A copy of the shipped assets whose rotation is one open 100×100 map with a single
/// spawn in the middle, so a player can run straight for seconds.
fn open_field_assets() -> TempDir {
    let dir = TempDir::new("assets");
    copy_dir(&repo_assets(), &dir.0);
    std::fs::write(
        dir.join("maps/open.toml"),
        "width = 100\nheight = 100\n\n[[spawn]]\nx = 50\ny = 50\n\n[[pickup]]\nx = 60\ny = 60\n",
    )
    .unwrap();
    let game = std::fs::read_to_string(dir.join("game.toml")).unwrap();
    let game = game.replace(r#"maps = ["courtyard", "warehouse"]"#, r#"maps = ["open"]"#);
    std::fs::write(dir.join("game.toml"), game).unwrap();
    dir
}

/// Saves like an editor does: write a temporary file, then rename it over the original.
fn save_via_rename(path: &Path, contents: &str) {
    let tmp = path.with_extension("toml.tmp~");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Units per second the player covers while running right for `duration`.
async fn run_speed(c: &mut rallypoint_tests::Client, you: u32, duration: Duration) -> f32 {
    let start = c
        .position_of(you, Duration::from_millis(150))
        .await
        .expect("position")
        .0;
    let began = std::time::Instant::now();
    while began.elapsed() < duration {
        c.input(1.0, 0.0, 0.0, false).await;
        let _ = c
            .listen(Duration::from_millis(33))
            .await
            .expect("still connected");
    }
    let end = c
        .position_of(you, Duration::from_millis(100))
        .await
        .expect("position")
        .0;
    (end - start) / began.elapsed().as_secs_f32()
}

async fn join(s: &TestServer, sub: &str, p: Subprotocol) -> (rallypoint_tests::Client, u32) {
    let mut c = Connect::new(s)
        .protocol(p.name())
        .header_token(&s.token(sub))
        .connect()
        .await
        .unwrap();
    let you = c.expect_welcome().await.you;
    (c, you)
}

async fn wait_for_version_change(s: &TestServer, old: &str) -> serde_json::Value {
    for _ in 0..50 {
        let a = s.admin_get("/admin/assets").await.json();
        if a["version"] != old {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("assets were not reloaded");
}

#[tokio::test]
async fn an_edit_reaches_a_live_room_without_disconnecting_anyone() {
    let dir = open_field_assets();
    let s = server().assets(&dir.0).start();
    let (mut c, you) = join(&s, "runner", Subprotocol::V1MsgPack).await;
    let before = run_speed(&mut c, you, Duration::from_millis(800)).await;
    // Stop and turn round, so the second run has room too.
    c.input(-1.0, 0.0, 0.0, false).await;
    let old = s.admin_get("/admin/assets").await.json()["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let game = std::fs::read_to_string(dir.join("game.toml")).unwrap();
    save_via_rename(
        &dir.join("game.toml"),
        &game.replace("max_speed = 8 ", "max_speed = 2 "),
    );
    let status = wait_for_version_change(&s, &old).await;
    assert_eq!(status["last_reload_ok"], true);
    // What changed, old → new, in /admin/assets and the log.
    assert_eq!(
        status["changes"],
        serde_json::json!([{"file": "game.toml", "key": "player.max_speed", "old": "8", "new": "2"}]),
        "{status}"
    );
    assert!(
        s.logged(|l| l.contains("asset changed")
            && l.contains("player.max_speed")
            && l.contains(r#""old":"8""#)
            && l.contains(r#""new":"2""#))
            .await,
        "the change is logged"
    );
    let after = run_speed(&mut c, you, Duration::from_millis(800)).await;
    assert!(before > 5.0, "before the edit: {before} units/s");
    assert!(
        (0.5..3.0).contains(&after),
        "after the edit: {after} units/s"
    );
    assert_eq!(
        s.metric("rallypoint_assets_reloads_total", "outcome=\"applied\"")
            .await,
        1.0
    );
    assert_eq!(
        s.metric("rallypoint_session_closes_total", "").await,
        0.0,
        "nobody was disconnected"
    );
}

#[tokio::test]
async fn an_invalid_edit_keeps_the_old_version_and_shows_the_error() {
    let dir = open_field_assets();
    let s = server().assets(&dir.0).start();
    let (mut c, you) = join(&s, "runner", Subprotocol::V1Json).await;
    let old = s.admin_get("/admin/assets").await.json();
    let game = std::fs::read_to_string(dir.join("game.toml")).unwrap();
    save_via_rename(
        &dir.join("game.toml"),
        &game.replace("max_speed = 8 ", "max_speed = \"fast\" "),
    );
    let mut status = old.clone();
    for _ in 0..50 {
        status = s.admin_get("/admin/assets").await.json();
        if status["last_reload_ok"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["last_reload_ok"], false, "{status}");
    assert_eq!(
        status["version"], old["version"],
        "the last good version stays in force"
    );
    let problem = &status["errors"][0];
    assert_eq!(problem["file"], "game.toml");
    assert!(problem["line"].as_u64().unwrap() > 1);
    assert!(
        problem["message"].as_str().unwrap().contains("max_speed"),
        "{problem}"
    );
    let speed = run_speed(&mut c, you, Duration::from_millis(800)).await;
    assert!(speed > 5.0, "the old tuning still applies: {speed} units/s");
    assert_eq!(
        s.metric("rallypoint_assets_reloads_total", "outcome=\"rejected\"")
            .await,
        1.0
    );
    // A forced reload says why it is refused.
    let forced = s.admin_post("/admin/reload").await;
    assert_eq!(forced.status, 422);
    assert_eq!(forced.json()["outcome"], "rejected");
    // Fixing the file brings reloads back.
    save_via_rename(&dir.join("game.toml"), &game);
    let forced = s.admin_post("/admin/reload").await.json();
    assert!(
        forced["outcome"] == "unchanged" || forced["outcome"] == "applied",
        "{forced}"
    );
    assert_eq!(
        s.admin_get("/admin/assets").await.json()["last_reload_ok"],
        true
    );
}

#[tokio::test]
async fn loaded_maps_are_served_as_svg() {
    let s = server().start();
    let svg = s.admin_get("/admin/maps/courtyard.svg").await;
    assert_eq!(svg.status, 200);
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    let text = svg.text();
    let walls = std::fs::read_to_string(repo_assets().join("maps/courtyard.toml"))
        .unwrap()
        .matches("[[wall]]")
        .count();
    assert!(text.starts_with("<svg") || text.starts_with("<?xml"));
    assert_eq!(text.matches("class=\"wall\"").count(), walls);
    assert_eq!(s.admin_get("/admin/maps/nowhere.svg").await.status, 404);
}

#[test]
fn check_reports_every_problem_with_its_position() {
    let ok = Command::new(BIN)
        .arg("check")
        .arg(repo_assets())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let dir = TempDir::new("broken");
    copy_dir(&repo_assets(), &dir.0);
    let game = std::fs::read_to_string(dir.join("game.toml")).unwrap();
    std::fs::write(
        dir.join("game.toml"),
        game.replace("max_speed = 8", "max_sped = 8"),
    )
    .unwrap();
    let map = std::fs::read_to_string(dir.join("maps/courtyard.toml")).unwrap();
    std::fs::write(
        dir.join("maps/courtyard.toml"),
        map.replacen("width = 40", "width = 4000", 1),
    )
    .unwrap();
    let out = Command::new(BIN).arg("check").arg(&dir.0).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("game.toml:") && l.contains("max_sped")),
        "{text}"
    );
    assert!(text.contains("did you mean `max_speed`?"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("maps/courtyard.toml:") && l.contains("width")),
        "{text}"
    );
    let json = Command::new(BIN)
        .args(["check", "--format", "json"])
        .arg(&dir.0)
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(v["problems"].as_array().unwrap().len() >= 2);
}

#[test]
fn render_map_draws_every_wall_to_scale() {
    let dir = TempDir::new("svg");
    let out = dir.join("courtyard.svg");
    let status = Command::new(BIN)
        .arg("render-map")
        .arg(repo_assets().join("maps/courtyard.toml"))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
    let walls = std::fs::read_to_string(repo_assets().join("maps/courtyard.toml"))
        .unwrap()
        .matches("[[wall]]")
        .count();
    assert_eq!(svg.matches("class=\"wall\"").count(), walls);
    let bad = Command::new(BIN)
        .arg("render-map")
        .arg(dir.join("missing.toml"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[tokio::test]
async fn the_token_command_mints_what_the_server_accepts() {
    let s = server().start();
    let dir = TempDir::new("tok");
    // The same secret the server was started with, written as an operator would (with a newline).
    std::fs::write(dir.join("secret"), [s.secret.as_slice(), b"\n"].concat()).unwrap();
    let token = crate::token_command([
        "--secret-file",
        dir.join("secret").to_str().unwrap(),
        "--sub",
        "cli-user",
        "--name",
        "Cli",
        "--room",
        "cli",
        "--ttl",
        "10m",
    ]);
    let mut c = Connect::new(&s)
        .protocol("rallypoint.v1.msgpack")
        .header_token(&token)
        .connect()
        .await
        .unwrap();
    let w = c.expect_welcome().await;
    assert_eq!(w.room, "cli");
    std::fs::write(dir.join("weak"), "hunter2\n").unwrap();
    let weak = Command::new(BIN)
        .args(["token", "--secret-file"])
        .arg(dir.join("weak"))
        .args(["--sub", "x"])
        .output()
        .unwrap();
    assert!(!weak.status.success(), "a short secret is refused");
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 32"));
}

#[test]
fn render_map_draws_a_broken_map_with_its_problems_marked_and_exits_1() {
    let dir = TempDir::new("svg-broken");
    copy_dir(&repo_assets(), &dir.0);
    let map = dir.join("maps/broken.toml");
    // Spawn #2 sits inside the wall; spawn #1 is fine.
    std::fs::write(
        &map,
        "width = 40\nheight = 30\n\n[[wall]]\nx = 10\ny = 10\nw = 5\nh = 5\n\n\
         [[spawn]]\nx = 3\ny = 3\n\n[[spawn]]\nx = 12\ny = 12\n",
    )
    .unwrap();
    let out = dir.join("broken.svg");
    let run = Command::new(BIN)
        .arg("render-map")
        .arg(&map)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(1),
        "a broken map is still a failure"
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("spawn #2"),
        "the problem is listed: {stderr}"
    );
    let svg = std::fs::read_to_string(&out).expect("the map is drawn anyway");
    assert_eq!(svg.matches("class=\"wall\"").count(), 1);
    assert_eq!(svg.matches("class=\"spawn\"").count(), 2);
    assert!(
        svg.contains(r#"class="problem" data-problem="1""#),
        "marked on the drawing"
    );
    assert!(
        svg.contains("spawn #2 at (12, 12) is inside wall #1"),
        "{svg}"
    );
    assert!(svg.contains("problem: this map does not load"));
}
