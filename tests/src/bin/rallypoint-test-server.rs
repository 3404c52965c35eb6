//! The `rallypoint` binary, built inside this crate so that cargo hands its path to the
//! end-to-end tests (`CARGO_BIN_EXE_rallypoint-test-server`) and rebuilds it with them.

fn main() -> std::process::ExitCode {
    rallypoint::cli::main()
}
