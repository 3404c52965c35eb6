//! Behaviour tests for the simulation. Each builds a small scene and checks what a player
//! would notice (where people end up, who got hit, which events arrived), not internals.

mod combat;
mod determinism;
mod lagcomp;
mod membership;
mod movement;
mod pickups;
mod prediction;
mod properties;
mod rounds;
mod support;
