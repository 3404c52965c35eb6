//! The `rallypoint-bench` command, built inside this crate so that cargo hands its path to
//! the end-to-end tests (`CARGO_BIN_EXE_rallypoint-bench-test`): the README test parses
//! its documented command lines.

fn main() -> std::process::ExitCode {
    rallypoint_bench::main()
}
