//! The JavaScript SDK (`protocol/js`, `@rallypoint/client`): its Node test suite against
//! the server binary cargo just built, and `tsc --noEmit` over its sources and
//! hand-written types.
//!
//! Needs `node` 20 or later with the SDK's development packages (`npm ci` in
//! `protocol/js`) ([`Need::Node`]); without them the trials are reported as ignored,
//! unless `RALLYPOINT_REQUIRE_NODE=1` (set by CI), where they fail.

use std::path::PathBuf;
use std::process::Output;
use std::time::Instant;

use libtest_mimic::Trial;
use rallypoint_tests::external::{Need, Needs, Tool, node_major};
use rallypoint_tests::external_trials;

/// This module's trials.
pub fn trials(needs: &Needs) -> Vec<Trial> {
    external_trials!(needs, Need::Node => [node_test_suite, typescript_check])
}

/// `protocol/js`.
fn package() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../protocol/js")
}

/// Runs `node args…` in `protocol/js` and fails the trial with its output unless it
/// exits 0.
async fn node(tool: Tool, args: Vec<String>, what: &'static str) {
    let started = Instant::now();
    let out: Output = tokio::task::spawn_blocking(move || {
        tool.command()
            .args(&args)
            .current_dir(package())
            .env(
                "RALLYPOINT_BIN",
                env!("CARGO_BIN_EXE_rallypoint-test-server"),
            )
            .output()
    })
    .await
    .expect("join")
    .expect("start node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    println!("{what}: {:.1} s", started.elapsed().as_secs_f64());
}

/// `node --test test/`: unit tests, the scripted-socket tests and the tests against a
/// real server (both subprotocols, every token carriage, resume, 4002, 4004, inputs).
async fn node_test_suite(tool: Tool) {
    let mut args = Vec::new();
    // Node 20 and 21 keep their own WebSocket behind a flag; the suite tests it too.
    if node_major(tool.path()).is_some_and(|major| major < 22) {
        args.push("--experimental-websocket".to_owned());
    }
    args.extend(["--test".to_owned(), "test/".to_owned()]);
    node(tool, args, "node --test").await;
}

/// `tsc --noEmit`: the JSDoc-typed sources check, and match `index.d.ts`.
async fn typescript_check(tool: Tool) {
    let tsc = "node_modules/typescript/bin/tsc".to_owned();
    node(tool, vec![tsc, "--noEmit".to_owned()], "tsc --noEmit").await;
}
