//! The load-test bots against a real server: they connect, play, reconcile every input,
//! survive churn, get abusers cut off without anyone else noticing, and gate CI with
//! `--assert` exit codes. Runs are in-process (`rallypoint_bots::run`) except where the
//! exit code itself is under test.

use std::process::Command;
use std::time::Duration;

use rallypoint_bots::{
    AbuseMode, AbuseSpec, Auth, Behavior, Config, MintOptions, Report, Rooms, TlsOptions,
};
use rallypoint_tests::{TempDir, TestCert, TestServer};

use crate::server;

/// Per-IP limits apply on 127.0.0.1 outside dev mode; the bots all come from there.
pub(crate) const LOAD_LIMITS: [&str; 6] = [
    "--max-connections-per-ip",
    "1000",
    "--handshake-rate",
    "1000/1000",
    "--max-pending-handshakes-per-ip",
    "1000",
];

fn load_server() -> TestServer {
    server().args(LOAD_LIMITS).start()
}

/// A short run against `s` with minted tokens.
fn config(s: &TestServer, bots: usize, secs: f64) -> Config {
    Config {
        url: s.play_url(),
        bots,
        ramp_per_s: 200.0,
        duration: Duration::from_secs_f64(secs),
        auth: Auth::Mint(MintOptions::new(s.secret.clone())),
        seed: Some(42),
        ..Config::default()
    }
}

async fn run(config: Config) -> Report {
    tokio::time::timeout(Duration::from_secs(20), rallypoint_bots::run(config))
        .await
        .expect("the run ends on its own")
        .expect("the run starts")
}

/// What every healthy run shows for its well-behaved bots.
fn assert_healthy(r: &Report, bots: u64) {
    let wb = &r.well_behaved;
    assert_eq!(wb.ever_connected, bots, "{}", r.render_text());
    assert_eq!(wb.handshake_failures, 0, "{}", r.render_text());
    assert_eq!(wb.unexpected_closes, 0, "{}", r.render_text());
    assert_eq!(r.bots.unfinished, 0);
    assert_eq!(r.decode_errors, 0);
    assert_eq!(r.ack_regressions, 0);
    let i = &wb.inputs;
    assert!(i.sent > 0, "{}", r.render_text());
    assert_eq!(i.unexplained, 0, "{}", r.render_text());
    assert_eq!(i.lost_at_close, 0, "{}", r.render_text());
    assert_eq!(
        i.sent,
        i.acked + i.lost_at_churn,
        "every input is acked or was in flight at a deliberate drop"
    );
}

#[tokio::test]
async fn fifty_bots_play_and_every_input_is_acknowledged() {
    let s = load_server();
    let r = run(Config {
        behavior: Behavior::Fight,
        rooms: Rooms::Spread(4),
        ..config(&s, 50, 3.0)
    })
    .await;
    assert_healthy(&r, 50);
    assert_eq!(r.bots.connected_peak, 50);
    assert_eq!(r.handshake.failures, 0);
    assert_eq!(
        r.closes_by_code.get("1000"),
        Some(&50),
        "{:?}",
        r.closes_by_code
    );
    assert_eq!(r.well_behaved.inputs.sent, r.well_behaved.inputs.acked);
    assert!(r.ack.samples > 1000, "acks advance: {:?}", r.ack);
    assert!(r.rtt.samples >= 50, "{:?}", r.rtt);
    // The server snapshots at 30 Hz (assets/game.toml); a starved machine makes a debug
    // server late (fewer snapshots), never faster; short runs round up a little.
    let rate = r.received.snapshots_per_bot_per_s;
    assert!(
        (15.0..=32.0).contains(&rate),
        "{rate} snapshots per bot per second"
    );
    assert!(r.cpu.per_bot_second_ms > 0.0);

    let json: serde_json::Value = serde_json::from_str(&r.to_json()).expect("report JSON");
    assert_eq!(json["bots"]["ever_connected"], 50);
    assert_eq!(
        json["well_behaved"]["inputs"]["sent"],
        json["well_behaved"]["inputs"]["acked"]
    );
    assert!(json["rtt"]["p99_ms"].as_f64().is_some());
    let back: Report = serde_json::from_value(json).expect("the JSON is a Report");
    assert_eq!(back, r);
}

/// Runs the `rallypoint-bots` binary and returns (exit code, stdout, stderr).
fn bots_command(args: Vec<String>) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rallypoint-bots-test"))
        .args(args)
        .output()
        .expect("run rallypoint-bots");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn assert_gates_set_the_exit_code() {
    let s = load_server();
    let dir = TempDir::new("bots-assert");
    let secret = dir.join("secret");
    std::fs::write(&secret, &s.secret).unwrap();
    let report = dir.join("report.json");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "--url",
            &s.play_url(),
            "--bots",
            "3",
            "--duration",
            "1500ms",
            "--quiet",
            "--secret-file",
            secret.to_str().unwrap(),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let impossible = base(&["--assert", "bots_ever_connected>1000"]);
    let satisfied = base(&[
        "--assert",
        "well_behaved_unexpected_closes==0",
        "--assert",
        "rtt.p99_ms<1000",
        "--assert",
        "closes_by_code_1011==0",
        "--report",
        report.to_str().unwrap(),
    ]);
    let (failing, passing) = tokio::join!(
        tokio::task::spawn_blocking(move || bots_command(impossible)),
        tokio::task::spawn_blocking(move || bots_command(satisfied)),
    );
    let (code, _, stderr) = failing.unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("assertion failed: bots_ever_connected > 1000"),
        "{stderr}"
    );
    let (code, stdout, stderr) = passing.unwrap();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("ok     rtt.p99_ms < 1000"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["bots"]["ever_connected"], 3);

    // An unknown metric is a usage error, reported before anything connects.
    let (code, _, stderr) = bots_command(base(&["--assert", "rtt_p98_ms<5"]));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("unknown metric `rtt_p98_ms`"), "{stderr}");
}

#[tokio::test]
async fn tokens_from_a_file() {
    let s = load_server();
    let dir = TempDir::new("bots-tokens");
    let file = dir.join("tokens.txt");
    let tokens: Vec<String> = (0..6).map(|i| s.token(&format!("filed-{i}"))).collect();
    std::fs::write(&file, format!("# one per bot\n{}\n", tokens.join("\n"))).unwrap();
    let config = rallypoint_bots::cli::config_from_args([
        "rallypoint-bots",
        "--url",
        &s.play_url(),
        "--bots",
        "5",
        "--duration",
        "1500ms",
        "--behavior",
        "idle",
        "--protocol",
        "json",
        "--tokens-file",
        file.to_str().unwrap(),
    ])
    .expect("flags parse");
    assert!(matches!(&config.auth, Auth::Tokens(t) if t.len() == 6));
    let r = run(config).await;
    assert_healthy(&r, 5);
    assert_eq!(r.config.auth, "tokens");
    assert_eq!(r.config.protocol, "rallypoint.v1.json");
    assert!(s.logged(|l| l.contains("filed-4")).await);
}

#[tokio::test]
async fn dev_tokens_without_any_flag() {
    let s = server().dev_mode().start();
    let r = run(Config {
        auth: Auth::DevToken,
        behavior: Behavior::Idle,
        ..config(&s, 5, 1.5)
    })
    .await;
    assert_healthy(&r, 5);
    assert_eq!(r.config.auth, "dev");

    // Without dev mode there is no /dev/token: one clear error before any bot starts.
    let plain = load_server();
    let err = rallypoint_bots::run(Config {
        auth: Auth::DevToken,
        ..config(&plain, 5, 1.0)
    })
    .await
    .expect_err("no dev tokens outside dev mode");
    assert!(err.to_string().contains("/dev/token"), "{err}");
}

#[tokio::test]
async fn churned_bots_resume_their_players() {
    let s = load_server();
    let r = run(Config {
        churn_pct_per_s: 30.0,
        rooms: Rooms::Named("churn".into()),
        ..config(&s, 16, 5.0)
    })
    .await;
    let text = r.render_text();
    assert_healthy(&r, 16);
    let c = &r.churn;
    assert!(c.drops >= 3, "{text}");
    assert_eq!(c.resumes, c.drops, "{text}");
    assert_eq!(c.resume_failures, 0, "resumed with the same `you`");
    assert_eq!(r.handshake.ok, 16 + c.drops);
    // Each bot came to rest before dropping, so nothing was in flight, and found its
    // player where it left it with the same score.
    assert_eq!(r.well_behaved.inputs.lost_at_churn, 0, "{text}");
    assert_eq!(c.state_lost, 0, "{text}");
    assert!(c.state_kept >= 1, "{text}");
    assert_eq!(
        c.state_kept + c.new_round + c.unchecked,
        c.resumes - c.unsettled,
        "{text}"
    );
}

#[tokio::test]
async fn abusers_are_cut_off_and_nobody_else_notices() {
    let s = load_server();
    let fraction = 2.0 / 24.0;
    let r = run(Config {
        abuse: AbuseMode::ALL
            .into_iter()
            .map(|mode| AbuseSpec { mode, fraction })
            .collect(),
        abuse_after: Duration::from_millis(500),
        rooms: Rooms::Spread(2),
        ..config(&s, 24, 4.0)
    })
    .await;
    let text = r.render_text();
    assert_healthy(&r, 16);
    assert_eq!(
        r.well_behaved.closes_by_code.keys().collect::<Vec<_>>(),
        ["1000"],
        "{text}"
    );
    let ab = &r.abusive;
    assert_eq!(ab.group.bots, 8);
    assert_eq!(ab.group.unexpected_closes, 0, "{text}");
    for (mode, code) in [("flood", "1008"), ("oversize", "1009"), ("garbage", "1007")] {
        let m = &ab.by_mode[mode];
        assert_eq!(m.bots, 2, "{mode}");
        assert_eq!(m.cut_off, 2, "{mode}: {text}");
        assert_eq!(m.expected_code, 2, "{mode}: {text}");
        assert_eq!(m.closes_by_code.get(code), Some(&2), "{mode}: {text}");
    }
    // A reader that keeps sending input is only noticed once the server's socket
    // buffers fill, which on loopback takes minutes: within a short run it must either
    // be cut off with the right code or still be connected, and never hurt anyone else.
    let slow = &ab.by_mode["slow_reader"];
    assert_eq!(slow.bots, 2);
    assert_eq!(slow.cut_off + slow.survived, 2, "{text}");
    assert_eq!(slow.cut_off, slow.expected_code, "{text}");
    assert_eq!(r.errors_by_code.get("rate_limited"), Some(&2), "{text}");
}

#[tokio::test]
async fn wss_with_a_trusted_ca() {
    let cert = TestCert::generate();
    let s = server().args(LOAD_LIMITS).tls(&cert).start();
    let r = run(Config {
        url: format!("wss://localhost:{}/play", s.game.port()),
        tls: TlsOptions {
            insecure: false,
            ca: Some(cert.cert.clone()),
        },
        ..config(&s, 4, 1.5)
    })
    .await;
    assert_healthy(&r, 4);
}
