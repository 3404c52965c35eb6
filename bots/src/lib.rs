//! Rallypoint bots: headless players that load-test a real server and report like a
//! benchmark.
//!
//! [`run()`] (or [`run_with`] for progress and early stop) takes a [`Config`], connects the
//! bots over `ws://` or `wss://`, plays, and returns a [`Report`]. The map of the crate,
//! from the edge in:
//!
//! - [`cli`]: the `rallypoint-bots` command: flags → [`Config`], the runtime, Ctrl-C,
//!   the live progress line, the report, `--assert` gates and exit codes.
//! - [`config`]: every knob of a run with its default.
//! - [`run`](mod@run): one run: placement, ramp, progress, the bounded end, the report.
//! - `bot`: one bot task: token, connect, one session after another, churn, abuse.
//! - [`handoff`]: what a churning bot checks across a resume (pure).
//! - [`net`]: target URL, TCP/TLS streams, the WebSocket upgrade, `/dev/token`.
//! - [`token`]: HS256 tokens minted per bot.
//! - [`wire`]: outgoing frames and incoming messages decoded only as far as needed.
//! - [`behavior`]: idle / wander / fight decisions (pure).
//! - `stats`: per-bot buffers and the run-wide HDR histograms and counters.
//! - [`report`]: the report's JSON shape, text rendering and metric names.
//! - [`assert`](mod@assert): `METRIC OP VALUE` gates over a report.
//! - [`progress`]: the live progress snapshot and its one-line rendering.
//! - [`server_stats`]: the server's memory, sessions and panics sampled from its admin
//!   port during a run (`--admin`), and the memory-growth summary a soak is judged by.
//! - [`prom`]: the admin port's `/metrics`, scraped and summed.
//! - [`soak`]: the gates a soak is judged by.
//! - [`sys`]: CPU usage and the open-file limit (with [`bench::sys`](mod@bench::sys),
//!   the only `unsafe` code).
//! - [`bench`](mod@bench): the `rallypoint-bench` command: the server measured over
//!   loopback against a bare broadcast floor (handshakes, memory per connection, CPU per
//!   player-tick).

pub mod assert;
pub mod behavior;
pub mod bench;
mod bot;
pub mod cli;
pub mod config;
pub mod handoff;
pub mod net;
pub mod progress;
pub mod prom;
pub mod report;
pub mod run;
pub mod server_stats;
pub mod soak;
mod stats;
pub mod sys;
pub mod token;
pub mod wire;

pub use assert::{Assertion, Outcome};
pub use config::{AbuseMode, AbuseSpec, Auth, Behavior, Config, MintOptions, Rooms, TlsOptions};
pub use progress::Progress;
pub use report::Report;
pub use run::{RunError, run, run_with};
