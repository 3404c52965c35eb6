//! Clients we did not write. Python's `websockets` plays both subprotocols with every
//! token carriage and checks the rejections (see `tests/interop/python_client.py`).
//!
//! Needs `python3` with `websockets` and `msgpack`; without them the test says so and
//! passes, unless `RALLYPOINT_REQUIRE_INTEROP=1` (set by CI), where it fails.

use std::process::Command;

use crate::server;

fn python_ready() -> bool {
    Command::new("python3")
        .args(["-c", "import websockets.asyncio.client, msgpack"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn python_websockets_client() {
    if !python_ready() {
        assert!(
            std::env::var("RALLYPOINT_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "python3 with websockets and msgpack is required: pip install websockets msgpack"
        );
        eprintln!("NOTICE: skipping the Python interop test (pip install websockets msgpack)");
        return;
    }
    let s = server().start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/python_client.py");
    let url = s.play_url();
    let tokens = [s.token("py-a"), s.token("py-b"), s.token("py-c")];
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(url)
            .args(tokens)
            .output()
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
