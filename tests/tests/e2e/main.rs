//! End-to-end tests: every test starts its own real server process on 127.0.0.1:0 and
//! talks to it over real sockets, asserting what a client would see.

mod abuse;
mod accounts;
mod admin;
mod assets;
mod bots;
mod cli;
mod client;
mod game;
mod handshake;
mod matching;
mod session;
mod soak;
mod tag;
mod tls;
mod v2;

use rallypoint_tests::ServerBuilder;

/// A builder for the server binary under test.
pub fn server() -> ServerBuilder {
    ServerBuilder::new(env!("CARGO_BIN_EXE_rallypoint-test-server"))
}

/// Runs `rallypoint token ARGS` and returns the token it prints.
pub fn token_command<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rallypoint-test-server"))
        .arg("token")
        .args(args)
        .output()
        .expect("run the token command");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
