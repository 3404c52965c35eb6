//! The `rallypoint-bench` binary: everything lives in the library ([`rallypoint_bench`]).

fn main() -> std::process::ExitCode {
    rallypoint_bench::main()
}
