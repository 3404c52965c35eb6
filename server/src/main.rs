//! `rallypoint`: see `rallypoint --help`.

fn main() -> std::process::ExitCode {
    rallypoint::cli::main()
}
