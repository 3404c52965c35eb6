//! The browser client in a real headless Chromium, driven over the DevTools protocol.
//!
//! The page the game port serves must load under its own CSP, connect, show the arena,
//! move with the keyboard, aim and fire with the mouse, over `ws://` (dev-mode token,
//! `rallypoint.v2.msgpack` as it offers by default) and `wss://` (token in the URL
//! fragment, `rallypoint.v1.msgpack` with `?proto=v1`), resume after a dropped connection
//! (v2: from a keyframe), explain the closes it must not retry, and, with its traffic
//! delayed by a relay, move its own player before any snapshot
//! confirms it (prediction). State is read from `window.rallypoint`.
//!
//! Without Chromium these trials are reported as ignored, unless
//! `RALLYPOINT_REQUIRE_CHROMIUM=1` (CI sets it), which makes them fail. Screenshots land
//! in `$CARGO_TARGET_TMPDIR` on every run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use libtest_mimic::Trial;
use rallypoint_client::Received;
use rallypoint_protocol::Subprotocol;
use rallypoint_tests::cdp::{Browser, Key, LaunchOptions, Page};
use rallypoint_tests::external::{Need, Needs, Tool};
use rallypoint_tests::external_trials;
use rallypoint_tests::{Client, Connect, TestCert, TestServer, claims, http};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::server;

/// This module's trials.
pub fn trials(needs: &Needs) -> Vec<Trial> {
    let mut trials = external_trials!(needs, Need::None => [
        static_client_is_served_with_types_and_security_headers,
    ]);
    trials.extend(external_trials!(needs, Need::Chromium => [
        browser_plays_over_ws_with_a_dev_token,
        browser_plays_over_wss_with_a_token_in_the_fragment,
        browser_reconnects_and_resumes_after_a_dropped_connection,
        browser_explains_kick_and_replacement_and_does_not_retry,
        browser_moves_its_own_player_before_the_server_confirms_it,
    ]));
    trials
}

/// Longest wait for anything the page should do.
const WAIT: Duration = Duration::from_secs(10);

pub(crate) async fn launch(
    exe: &std::path::Path,
    ignore_certificate_errors: bool,
) -> (Browser, Page) {
    let browser = Browser::launch(
        exe,
        LaunchOptions {
            ignore_certificate_errors,
            ..LaunchOptions::default()
        },
    )
    .await
    .expect("launch Chromium");
    let page = browser.new_page().await.expect("open a page");
    (browser, page)
}

/// `window.rallypoint`, without its functions.
pub(crate) async fn state(page: &Page) -> Value {
    page.eval("JSON.parse(JSON.stringify(window.rallypoint))")
        .await
        .expect("read window.rallypoint")
}

/// Waits until the page is welcomed and its own player is in a snapshot.
pub(crate) async fn wait_playing(page: &Page) -> Value {
    page.wait_for(
        "rallypoint.connected && rallypoint.players[rallypoint.you] !== undefined",
        WAIT,
    )
    .await
    .expect("the page connects and sees itself");
    state(page).await
}

async fn own_x(page: &Page) -> f64 {
    page.eval("rallypoint.players[rallypoint.you].x")
        .await
        .expect("own x")
        .as_f64()
        .expect("x is a number")
}

/// Holds D for a second and checks the player moved right. At 8 units/s even a spawn
/// one unit from a wall moves more than the margin.
async fn walk_right(page: &Page) {
    let x0 = own_x(page).await;
    page.hold_key(Key::D, Duration::from_secs(1))
        .await
        .expect("hold D");
    page.wait_for(
        &format!("rallypoint.players[rallypoint.you].x > {x0} + 0.5"),
        Duration::from_secs(3),
    )
    .await
    .unwrap_or_else(|e| panic!("holding D moved the player right (from x = {x0}): {e}"));
}

/// The page reported no uncaught error and no CSP violation.
pub(crate) async fn assert_clean(page: &Page) {
    let s = state(page).await;
    assert_eq!(s["errors"], serde_json::json!([]), "page errors");
    assert_eq!(s["decodeErrors"], 0);
    let refused: Vec<String> = page
        .console()
        .into_iter()
        .filter(|l| l.contains("Refused") || l.starts_with("uncaught"))
        .collect();
    assert!(refused.is_empty(), "console: {refused:?}");
}

/// Saves a screenshot under `$CARGO_TARGET_TMPDIR` and returns its path.
pub(crate) async fn screenshot(page: &Page, name: &str) -> PathBuf {
    let png = page.screenshot_png().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, png).expect("write screenshot");
    println!("screenshot: {}", path.display());
    path
}

/// A dev-mode token from the server, as the page gets it.
async fn dev_token(s: &TestServer, query: &str) -> String {
    let r = s.game_get(&format!("/dev/token?{query}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["token"].as_str().expect("token").to_owned()
}

async fn get(s: &TestServer, path: &str) -> rallypoint_tests::HttpResponse {
    s.game_get(path).await
}

/// Keeps a second player walking in a circle (reading everything it is sent, so it
/// never becomes a slow consumer) until aborted.
fn walk_in_circles(mut c: Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(33));
        let mut t = 0.0f32;
        loop {
            let send = tokio::select! {
                _ = tick.tick() => true,
                m = c.session.recv() => match m {
                    Ok(Received::Message(_)) => false,
                    _ => return,
                },
            };
            if send {
                t += 0.05;
                c.input(t.cos(), t.sin(), t + 1.5, false).await;
            }
        }
    })
}

async fn static_client_is_served_with_types_and_security_headers(_: Tool) {
    let s = server().dev_mode().start();
    let page = get(&s, "/").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").expect("CSP");
    for directive in [
        "default-src 'self'",
        "connect-src 'self' ws: wss:",
        "img-src 'self' data:",
        "style-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page.text().contains("<canvas"));

    let js = get(&s, "/app.js").await;
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        get(&s, "/style.css")
            .await
            .header("content-type")
            .map(|t| t.starts_with("text/css")),
        Some(true)
    );
    let vendor = get(&s, "/vendor/msgpack-3.1.3.min.js").await;
    let on_disk = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../protocol/js/vendor/msgpack-3.1.3.min.js"),
    )
    .expect("vendored file");
    assert_eq!(vendor.body, on_disk, "the binary serves the vendored bytes");

    let head = http(s.game, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(head.header("content-security-policy").is_some());
    assert!(head.body.is_empty());

    let missing = get(&s, "/nope.js").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "not_found");
    let post = http(
        s.game,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(post.status, 405);
}

async fn browser_plays_over_ws_with_a_dev_token(chromium: Tool) {
    let exe = chromium.path;
    let s = server().dev_mode().start();
    let (_browser, page) = launch(&exe, false).await;
    page.navigate(&format!("http://{}/?name=alice", s.game))
        .await
        .expect("load the page");
    let st = wait_playing(&page).await;
    assert_eq!(
        st["protocol"], "rallypoint.v2.msgpack",
        "v2 first in the offer"
    );
    assert_eq!(st["scheme"], "ws");
    assert_eq!(st["welcomes"], 1);
    assert_eq!(st["resumed"], false);
    assert_eq!(st["role"], "player");
    assert_eq!(st["map"], "courtyard");
    assert!(st["tokenSource"].as_str().unwrap().contains("dev"));
    let you = st["you"].to_string();
    assert_eq!(st["players"][&you]["name"], "alice");

    // A second player, from Rust: the page learns its name and draws it.
    let token = dev_token(&s, "name=bob").await;
    let mut bob = Connect::new(&s)
        .protocol(Subprotocol::V1MsgPack.name())
        .header_token(&token)
        .connect()
        .await
        .expect("bob connects");
    bob.expect_welcome().await;
    let bob = walk_in_circles(bob);
    page.wait_for(
        "Object.values(rallypoint.players).some(p => p.name === 'bob') \
         && document.querySelectorAll('#scores li').length === 2",
        WAIT,
    )
    .await
    .expect("bob on the page and the scoreboard");

    // Walk while sampling every frame: the picture runs about 100 ms (3 ticks at 30 Hz)
    // behind the newest snapshot and glides between snapshots instead of jumping.
    let (_, frames) = tokio::join!(
        walk_right(&page),
        page.eval(
            "new Promise(done => { const out = [], t0 = performance.now(); \
             (function f() { const r = rallypoint; out.push([r.tick, r.drawn.tick, r.drawn.x]); \
             if (performance.now() - t0 < 900) requestAnimationFrame(f); else done(out); })(); })"
        )
    );
    let frames: Vec<(f64, f64, f64)> = frames
        .expect("frame samples")
        .as_array()
        .expect("samples")
        .iter()
        .filter_map(|f| Some((f[0].as_f64()?, f[1].as_f64()?, f[2].as_f64()?)))
        .collect();
    assert!(frames.len() > 20, "{} frames in 0.9 s", frames.len());
    let lag = frames
        .iter()
        .map(|(newest, drawn, _)| newest - drawn)
        .sum::<f64>()
        / frames.len() as f64;
    assert!(
        (1.5..=6.0).contains(&lag),
        "drawn {lag} ticks behind the newest snapshot"
    );
    let fractional = frames
        .iter()
        .filter(|(_, drawn, _)| drawn.fract().abs() > 0.01)
        .count();
    assert!(
        fractional > frames.len() / 2,
        "frames between snapshots: {fractional} of {}",
        frames.len()
    );
    page.wait_for("rallypoint.seq > 0 && rallypoint.ack > 0", WAIT)
        .await
        .expect("inputs are sent and applied");
    let rtt = page
        .wait_for("rallypoint.rtt", WAIT)
        .await
        .expect("a pong measured the RTT");
    assert!(rtt.as_f64().unwrap() < 1000.0, "rtt {rtt}");
    page.wait_for(
        "document.getElementById('net').textContent.includes('rallypoint.v2.msgpack')",
        WAIT,
    )
    .await
    .expect("the subprotocol is on screen");
    // v2 state: one keyframe, then deltas, hashes checked, never out of sync.
    let stats = page
        .wait_for(
            "rallypoint.stats.hashChecks >= 1 && rallypoint.stats.deltas > 10 && rallypoint.stats",
            WAIT,
        )
        .await
        .expect("v2 frames with checked hashes");
    assert_eq!(stats["keyframes"], 1, "{stats}");
    assert_eq!(stats["desyncs"], 0, "{stats}");

    // Aim where the longest clear line of fire is, with room for the projectile's width
    // (a spawn may face a wall or a corner, and a shot into it never shows) and hold the trigger: the page's own projectiles appear in
    // snapshots. The screenshot is taken with them in flight.
    let aim = page
        .eval(
            "(() => { const r = rallypoint, me = r.players[r.you], walls = r.arena.walls; \
             const m = 0.4, blocked = (x, y) => walls.some(([wx, wy, ww, wh]) => \
               x > wx - m && x < wx + ww + m && y > wy - m && y < wy + wh + m); \
             let best = [0, 0]; \
             for (let i = 0; i < 32; i++) { \
               const a = i * Math.PI / 16; let d = 0; \
               while (d < 30 && !blocked(me.x + Math.cos(a) * d, me.y + Math.sin(a) * d)) d += 0.25; \
               if (d > best[1]) best = [a, d]; } \
             return r.screenOf(me.x + Math.cos(best[0]) * 6, me.y + Math.sin(best[0]) * 6); })()",
        )
        .await
        .expect("an aim point on screen");
    let (x, y) = (aim["x"].as_f64().unwrap(), aim["y"].as_f64().unwrap());
    page.mouse_move(x, y).await.expect("aim");
    page.mouse_down(x, y).await.expect("fire");
    if let Err(e) = page
        .wait_for(
            "rallypoint.projectiles.some(p => p.owner === rallypoint.you)",
            Duration::from_secs(3),
        )
        .await
    {
        panic!(
            "no projectile of ours after aiming at ({x}, {y}) and pressing: {e}\nstate: {}",
            state(&page).await
        );
    }
    // Past the render delay, and a few shots in, so the picture has them too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    screenshot(&page, "browser-ws.png").await;
    page.mouse_up(x, y).await.expect("release");
    assert_clean(&page).await;
    bob.abort();
}

async fn browser_plays_over_wss_with_a_token_in_the_fragment(chromium: Tool) {
    let exe = chromium.path;
    let cert = TestCert::generate();
    let s = server().tls(&cert).start();
    let mut c = claims("carol-account");
    c["name"] = "carol".into();
    let token = s.token_with(&c);
    let (_browser, page) = launch(&exe, true).await;
    page.navigate(&format!(
        "https://127.0.0.1:{}/?proto=v1#token={token}",
        s.game.port()
    ))
    .await
    .expect("load the page over https");
    let st = wait_playing(&page).await;
    assert_eq!(st["scheme"], "wss");
    assert_eq!(st["protocol"], "rallypoint.v1.msgpack", "?proto=v1");
    assert_eq!(st["stats"]["keyframes"], 0, "no v2 frames on v1");
    assert_eq!(st["tokenSource"], "URL fragment");
    assert_eq!(st["players"][&st["you"].to_string()]["name"], "carol");
    assert_eq!(
        page.eval("location.hash").await.unwrap(),
        "",
        "the token left the address bar"
    );
    walk_right(&page).await;
    screenshot(&page, "browser-wss.png").await;
    assert_clean(&page).await;
}

/// A TCP relay that can cut every connection through it at once, the way a network drop
/// does: no WebSocket close frame, so the browser sees 1006 and the server a lost peer.
/// It can also hold every chunk of bytes for a fixed time each way, as a long network
/// path does (DevTools' network emulation delays HTTP requests but not WebSocket frames).
#[derive(Debug)]
struct Relay {
    addr: SocketAddr,
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        Relay::delayed(upstream, Duration::ZERO).await
    }

    /// A relay that delivers what it reads `delay` later, in order, in both directions.
    async fn delayed(upstream: SocketAddr, delay: Duration) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(0u64);
        let cuts = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let mut cut = cuts.subscribe();
                cut.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    if delay.is_zero() {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                            _ = cut.changed() => {}
                        }
                        return;
                    }
                    let (down_r, down_w) = down.into_split();
                    let (up_r, up_w) = up.into_split();
                    tokio::select! {
                        () = delayed_pump(down_r, up_w, delay) => {}
                        () = delayed_pump(up_r, down_w, delay) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Relay { addr, cut, task }
    }

    /// Drops every connection open now; later ones pass.
    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read. Chunks in flight
/// wait in a bounded queue; when it is full the reader waits (TCP backpressure).
async fn delayed_pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(1024);
    let writer = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            let due = tokio::time::Instant::now() + delay;
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                return;
            }
        }
    };
    // The writer ends after the reader has, once what is in flight is delivered.
    tokio::join!(reader, writer);
}

async fn browser_reconnects_and_resumes_after_a_dropped_connection(chromium: Tool) {
    let exe = chromium.path;
    let s = server().dev_mode().start();
    let relay = Relay::start(s.game).await;
    let (_browser, page) = launch(&exe, false).await;
    page.navigate(&format!("http://{}/?name=dora", relay.addr))
        .await
        .expect("load the page");
    let before = wait_playing(&page).await;
    relay.cut();
    page.wait_for(
        "rallypoint.welcomes >= 2 && rallypoint.connected && rallypoint.ack > 0",
        WAIT,
    )
    .await
    .expect("the page reconnects by itself and plays on");
    let after = page
        .wait_for(
            "rallypoint.stats.keyframes >= 2 && JSON.parse(JSON.stringify(rallypoint))",
            WAIT,
        )
        .await
        .expect("the resumed v2 session starts from a keyframe");
    assert_eq!(after["stats"]["desyncs"], 0);
    assert_eq!(after["lastClose"]["code"], 1006);
    assert_eq!(after["lastClose"]["reconnect"], true);
    assert_eq!(after["resumed"], true, "welcome.resumed");
    assert_eq!(after["you"], before["you"], "the same player");
    assert!(
        after["status"].as_str().unwrap().contains("kept"),
        "{}",
        after["status"]
    );
    page.wait_for(
        "!document.getElementById('banner').hidden \
         && document.getElementById('banner-text').textContent.includes('kept')",
        Duration::from_secs(2),
    )
    .await
    .expect("the player is told the character was kept");
    assert_clean(&page).await;
}

async fn browser_explains_kick_and_replacement_and_does_not_retry(chromium: Tool) {
    let exe = chromium.path;
    let s = server().dev_mode().start();
    let (_browser, page) = launch(&exe, false).await;
    page.navigate(&format!("http://{}/?name=erin", s.game))
        .await
        .expect("load the page");
    let st = wait_playing(&page).await;
    let sub = st["sub"].as_str().expect("dev-mode account id").to_owned();

    let kicked = s.admin_post(&format!("/admin/kick?sub={sub}")).await;
    assert_eq!(kicked.status, 200, "{}", kicked.text());
    page.wait_for(
        "rallypoint.lastClose && rallypoint.lastClose.code === 4002",
        WAIT,
    )
    .await
    .expect("closed with 4002");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let st = state(&page).await;
    assert_eq!(st["lastClose"]["errorCode"], "kicked");
    assert_eq!(st["lastClose"]["reconnect"], false);
    assert_eq!(st["statusKind"], "stopped");
    assert!(st["status"].as_str().unwrap().contains("kicked"));
    assert_eq!(st["welcomes"], 1, "no automatic reconnect after a kick");
    assert_eq!(
        page.eval("document.getElementById('reconnect').hidden")
            .await
            .unwrap(),
        false,
        "a Reconnect button"
    );
    screenshot(&page, "browser-kicked.png").await;

    // The player may come back by hand.
    page.eval("rallypoint.reconnect()")
        .await
        .expect("reconnect");
    page.wait_for("rallypoint.welcomes === 2 && rallypoint.connected", WAIT)
        .await
        .expect("manual reconnect");

    // The same account connects elsewhere: this page is replaced and stays closed.
    let token = dev_token(&s, &format!("sub={sub}&name=erin")).await;
    let mut elsewhere = Connect::new(&s)
        .protocol(Subprotocol::V1Json.name())
        .header_token(&token)
        .connect()
        .await
        .expect("the other device connects");
    elsewhere.expect_welcome().await;
    page.wait_for("rallypoint.lastClose.code === 4004", WAIT)
        .await
        .expect("closed with 4004");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let st = state(&page).await;
    assert_eq!(st["lastClose"]["errorCode"], "replaced");
    assert_eq!(
        st["welcomes"], 2,
        "no automatic reconnect after a replacement"
    );
    assert!(st["status"].as_str().unwrap().contains("another tab"));
    assert_clean(&page).await;
}

/// One-way delay the relay adds to the page's traffic: a round trip of at least 300 ms.
const ONE_WAY_DELAY_MS: u64 = 150;

async fn browser_moves_its_own_player_before_the_server_confirms_it(chromium: Tool) {
    let exe = chromium.path;
    let s = server().dev_mode().start();
    let relay = Relay::delayed(s.game, Duration::from_millis(ONE_WAY_DELAY_MS)).await;
    let (_browser, page) = launch(&exe, false).await;
    page.navigate(&format!("http://{}/?name=pia", relay.addr))
        .await
        .expect("load the page");
    wait_playing(&page).await;
    let rtt = page
        .wait_for("rallypoint.rtt !== null && rallypoint.rtt", WAIT)
        .await
        .expect("a pong")
        .as_f64()
        .unwrap();
    assert!(
        rtt >= 2.0 * ONE_WAY_DELAY_MS as f64,
        "the page's traffic is delayed: rtt {rtt} ms"
    );
    page.wait_for("rallypoint.predicted.on", WAIT)
        .await
        .expect("the own player is predicted");
    // Hold D and watch every frame: the drawn position moves right while the newest
    // snapshot still has the player where it stood.
    let watch = page.eval(
        "new Promise(done => { const r = rallypoint, you = r.you, x0 = r.players[you].x, out = []; \
         const t0 = performance.now(); \
         (function f() { const t = performance.now() - t0; \
           out.push({t, drawn: r.drawn.x, confirmed: r.players[you].x, x0}); \
           if (t < 1500) requestAnimationFrame(f); else done(out); })(); })",
    );
    let hold = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        page.hold_key(Key::D, Duration::from_millis(1000)).await
    };
    let (frames, held) = tokio::join!(watch, hold);
    held.expect("hold D");
    let frames = frames.expect("frame samples");
    let frames = frames.as_array().expect("samples");
    let x0 = frames[0]["x0"].as_f64().unwrap();
    let first = |pred: &dyn Fn(&Value) -> bool| {
        frames
            .iter()
            .find(|f| pred(f))
            .and_then(|f| f["t"].as_f64())
    };
    let drawn_moved = first(&|f| f["drawn"].as_f64().is_some_and(|x| x > x0 + 0.05))
        .expect("the drawn player moved right");
    let confirmed = first(&|f| f["confirmed"].as_f64().is_some_and(|x| x > x0 + 0.05))
        .expect("a snapshot confirmed the move");
    assert!(
        confirmed - drawn_moved >= ONE_WAY_DELAY_MS as f64,
        "drawn moving at {drawn_moved:.0} ms, confirmed at {confirmed:.0} ms"
    );
    println!("rtt {rtt} ms: drawn moving at {drawn_moved:.0} ms, confirmed at {confirmed:.0} ms");
    // At rest again, prediction and the server agree within a quantization step.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let settled = page
        .eval("(() => { const r = rallypoint; return [r.drawn.x, r.players[r.you].x, r.predicted.correction]; })()")
        .await
        .expect("settled");
    let (drawn, server) = (settled[0].as_f64().unwrap(), settled[1].as_f64().unwrap());
    assert!(
        (drawn - server).abs() <= 1.0 / 64.0,
        "drawn at {drawn}, the server has {server} ({settled})"
    );
    screenshot(&page, "browser-predicted.png").await;
    assert_clean(&page).await;
}
