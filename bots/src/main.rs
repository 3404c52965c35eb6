//! The `rallypoint-bots` binary: everything lives in [`rallypoint_bots::cli`], so tests
//! can build the same command.

fn main() -> std::process::ExitCode {
    rallypoint_bots::cli::main()
}
