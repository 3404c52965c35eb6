//! The tag example (`server/examples/tag.rs`), built inside this crate so that cargo hands
//! its path to the end-to-end tests (`CARGO_BIN_EXE_rallypoint-tag-test-server`) and
//! rebuilds it with them. The same source file, so what is tested is what the example is.

#[allow(dead_code)] // The example's own `main` and constants.
#[path = "../../../server/examples/tag.rs"]
mod tag;

fn main() -> std::process::ExitCode {
    let assets = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/examples/tag/assets");
    rallypoint::cli::run::<tag::Tag>(Some(assets))
}
