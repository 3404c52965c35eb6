//! The pure simulation core: one room's game, advanced one fixed step at a time.
//!
//! Must stay pure: no IO, no async, no wall clock (time is the `dt` handed to
//! [`World::step`]), no threads, no global state, no iteration whose order depends on
//! hashing. The same seed and the same sequence of calls give bit-identical state, which
//! [`World::state_hash`] lets callers check.
//!
//! Layout: [`world`] holds the state and the room-facing API, [`snapshot`] what it
//! shows outward, [`step`] the per-step pipeline, [`combat`] weapons and projectiles,
//! [`lag`] lag compensation (the recent past shots are judged against), [`round`] the
//! round cycle, [`spawn`] the choice of spawn points; [`motion`] and
//! [`geom`] are the collision math, [`control`] makes client numbers safe, and [`ids`]
//! and [`hash`] (with the protocol crate's seeded generator) keep the state deterministic.

mod combat;
mod control;
mod geom;
mod hash;
mod ids;
mod lag;
mod motion;
mod round;
mod saved;
mod snapshot;
mod spawn;
mod step;
mod world;

#[cfg(test)]
mod tests;

pub use control::Control;
pub use motion::{Body, Mover, Step};
pub use world::{PlayerId, PlayerView, World};
