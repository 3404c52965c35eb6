//! Clients we did not write. Python's `websockets` plays both subprotocols with every
//! token carriage and checks the rejections (see `tests/interop/python_client.py`).
//!
//! Needs `python3` with `websockets` and `msgpack` ([`Need::Python`]); without them the
//! trial is reported as ignored, unless `RALLYPOINT_REQUIRE_PYTHON=1` (set by CI), where
//! it fails.

use libtest_mimic::Trial;
use rallypoint_tests::external::{Need, Needs, Tool};
use rallypoint_tests::external_trials;

use crate::server;

/// This module's trials.
pub fn trials(needs: &Needs) -> Vec<Trial> {
    external_trials!(needs, Need::Python => [python_websockets_client])
}

async fn python_websockets_client(python: Tool) {
    let s = server().start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/python_client.py");
    let url = s.play_url();
    let tokens = [s.token("py-a"), s.token("py-b"), s.token("py-c")];
    let out = tokio::task::spawn_blocking(move || {
        python.command().arg(script).arg(url).args(tokens).output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
