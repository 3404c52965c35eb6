//! Rallypoint: an authoritative multiplayer game server.
//!
//! Game clients connect over `wss://` to `/play`; the handshake negotiates a versioned
//! subprotocol and checks a JWT; then a fixed-tick room consumes inputs and broadcasts
//! snapshots. The map of the crate, edge to core:
//!
//! - [`cli`]: the binary's commands and flags; [`config`]: every setting and limit.
//! - [`server`]: accept loop, handshake driver, routing, shutdown; [`stream`]: TCP or TLS;
//!   [`tls`]: rustls configuration; [`http`]: one request head, one response.
//! - [`admission`]: connection caps and per-IP handshake rate.
//! - [`handshake`]: the `/play` checks (upgrade, Origin, subprotocol, token, room, seat).
//! - [`auth`]: JWT verification and minting.
//! - [`session`]: one WebSocket session: decode, rate-limit, forward; write what the room
//!   sends.
//! - [`game`]: the seam: the [`game::Game`] trait every game implements, and its assets.
//! - [`room`]: room directory, the room core (a clock-free state machine over any game),
//!   its async driver, outboxes.
//! - [`arena`]: the reference game, with its pure simulation core [`arena::sim`].
//! - [`assets`]: loading and validating designer data (the engine's settings and the
//!   arena's); [`reload`]: hot reload.
//! - [`admin`]: health, readiness, metrics, admin JSON; [`metrics`]: the registry.
//! - [`web`]: the browser client's static files; [`logging`]: tracing setup.

pub mod admin;
pub mod admission;
pub mod arena;
pub mod assets;
pub mod auth;
pub mod cli;
pub mod config;
pub mod game;
pub mod handshake;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod reload;
pub mod room;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod stream;
pub mod tls;
pub mod web;
