//! Rallypoint server library.

pub mod assets;
pub mod sim;
