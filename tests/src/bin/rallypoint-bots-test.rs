//! The `rallypoint-bots` command, built inside this crate so that cargo hands its path to
//! the end-to-end tests (`CARGO_BIN_EXE_rallypoint-bots-test`): used where the exit code
//! itself is under test.

fn main() -> std::process::ExitCode {
    rallypoint_bots::cli::main()
}
