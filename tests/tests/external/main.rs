//! End-to-end tests that drive programs from outside Rust: a headless browser, Python's
//! `websockets`, `redis-server` (the directory alone, and clusters of nodes), Node (the JavaScript SDK's own tests). Each trial declares
//! the program it needs; one whose program is missing is reported as ignored with the
//! reason (or fails, when CI requires the program with `RALLYPOINT_REQUIRE_<NEED>=1`). See
//! `rallypoint_tests::external`.
//!
//! To add a module: write `async fn name(tool: Tool)` tests, list them in the module's
//! `trials` with `external_trials!`, and add the module's `trials` below.

mod browser;
mod cluster;
mod interop;
mod nodes;
mod sdk;

use rallypoint_tests::ServerBuilder;
use rallypoint_tests::external::Needs;

/// A builder for the server binary under test.
pub fn server() -> ServerBuilder {
    ServerBuilder::new(env!("CARGO_BIN_EXE_rallypoint-test-server"))
}

fn main() -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let needs = Needs::probe(args.list);
    let trials = [
        browser::trials,
        cluster::trials,
        interop::trials,
        nodes::trials,
        sdk::trials,
    ]
    .iter()
    .flat_map(|module| module(&needs))
    .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
