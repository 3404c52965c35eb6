//! The pure simulation core. No IO, no async, no wall clock, no global state.
