//! Rallypoint: an authoritative multiplayer game server.
//!
//! Game clients connect over `wss://` to `/play`; the handshake negotiates a versioned
//! subprotocol and checks a JWT; then a fixed-tick room consumes inputs and broadcasts
//! snapshots. The map of the crate, edge to core:
//!
//! - [`cli`]: the binary's commands and flags; [`config`]: every setting and limit.
//! - [`server`]: shared state, accept loop, shutdown; [`connection`]: one connection's
//!   phases (accept-time cap, TLS, head, admission, token, placement, upgrade, session) and
//!   the one mapping of their errors to HTTP responses; [`stream`]: TCP or TLS;
//!   [`socket`]: the upgraded socket, shared with the room's direct snapshot writes;
//!   [`tls`]: rustls configuration; [`http`]: one request head, one response.
//! - [`admission`]: connection caps, per-IP handshake rate, pending-handshake pool.
//! - [`handshake`]: the pure `/play` phases (upgrade, Origin, subprotocol, token, room).
//! - [`auth`]: JWT verification and minting.
//! - [`session`]: one WebSocket session: decode, rate-limit, forward; write what the room
//!   sends; [`fragments`]: the cap on frames per client message.
//! - [`game`]: the seam: the [`game::Game`] trait every game implements, and its assets.
//! - [`room`]: room directory, the room core (a clock-free state machine over any game),
//!   its async driver, outboxes.
//! - [`arena`]: the reference game, with its pure simulation core [`arena::sim`] and its
//!   assets (tuning, maps) [`arena::assets`].
//! - [`assets`]: loading and validating designer data for any game (files, TOML with
//!   positions, serde, the validation pass, reports) and the engine's own settings;
//!   [`reload`]: hot reload.
//! - [`cluster`]: the shared directory in Redis (`--redis-url`): nodes, room claims,
//!   seats, checkpoints, matchmaking; [`node`]: this process as a node of the cluster
//!   (its agent, placement under claims, 421, the drain); [`matching`]: `GET /match`.
//! - [`admin`]: health, readiness, metrics, admin JSON, and who may use them;
//!   [`metrics`]: the registry.
//! - [`web`]: the browser client's static files; [`logging`]: tracing setup; [`text`]:
//!   the rules for display names and chat text.

pub mod admin;
pub mod admission;
pub mod arena;
pub mod assets;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod fragments;
pub mod game;
pub mod handshake;
pub mod http;
pub mod logging;
pub mod matching;
pub mod metrics;
pub mod node;
pub mod reload;
pub mod room;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod socket;
pub mod stream;
pub mod text;
pub mod tls;
pub mod web;
