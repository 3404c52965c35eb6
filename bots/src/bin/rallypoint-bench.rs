//! The `rallypoint-bench` binary: everything lives in [`rallypoint_bots::bench`].

fn main() -> std::process::ExitCode {
    rallypoint_bots::bench::main()
}
