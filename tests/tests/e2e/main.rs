//! End-to-end tests: every test starts its own real server process on 127.0.0.1:0 and
//! talks to it over real sockets, asserting what a client would see.

mod abuse;
mod admin;
mod assets;
mod bots;
mod client;
mod game;
mod handshake;
mod session;
mod soak;
mod tls;

use rallypoint_tests::ServerBuilder;

/// A builder for the server binary under test.
pub fn server() -> ServerBuilder {
    ServerBuilder::new(env!("CARGO_BIN_EXE_rallypoint-test-server"))
}
