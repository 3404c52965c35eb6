//! Designer-owned game data: loading and validating `assets/`.
//!
//! Must not touch sockets or rooms; callers get either a complete validated [`Assets`]
//! or every problem found.

pub mod model;

mod fields;
mod game;
mod geometry;
mod hash;
mod loader;
mod map;
mod parse;
mod reach;
mod report;
mod source;
mod suggest;
mod svg;

#[cfg(test)]
mod tests;

pub use loader::{MAX_FILE_BYTES, load_dir, load_map_file, read_map_file};
pub use model::*;
pub use report::{Problem, Report};
pub use svg::{render_svg, render_svg_with_problems};
