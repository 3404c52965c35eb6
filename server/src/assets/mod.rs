//! Designer-owned game data: loading and validating `assets/`.
//!
//! Must not touch sockets or rooms; callers get either a complete validated [`Assets`]
//! or every problem found.

pub mod model;

pub use model::*;
