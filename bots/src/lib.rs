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
//! - [`net`]: the target resolved once, and what a failed connection attempt means.
//! - [`delay`]: `--latency`/`--jitter`, a delaying relay every bot connection goes
//!   through.
//! - [`token`]: HS256 tokens minted per bot.
//! - [`wire`]: inputs from controls, and the abusers' messages.
//! - [`behavior`]: idle / wander / fight / strafe decisions (pure).
//! - [`sight`]: the other players as a client draws them, interpolated in the past.
//! - [`predict`]: client-side prediction of the bot's own player, and its error.
//! - `stats`: per-bot buffers and the run-wide HDR histograms and counters.
//! - [`report`]: the report's JSON shape, text rendering and metric names.
//! - [`assert`](mod@assert): `METRIC OP VALUE` gates over a report.
//! - [`progress`]: the live progress snapshot and its one-line rendering.
//! - [`server_stats`]: the server's memory, sessions and panics sampled from its admin
//!   port during a run (`--admin`), and the memory-growth summary a soak is judged by.
//! - [`prom`]: the admin port's `/metrics`, scraped and summed.
//! - [`soak`]: the gates a soak is judged by.
//! - [`sys`]: CPU usage and the open-file limit (the only `unsafe` code).
//!
//! Connections, framing, TLS and HTTP are the client library's (`rallypoint-client`);
//! the benchmark that drives these bots against the server is its own crate
//! (`rallypoint-bench`, in `bots/bench/`).

pub mod assert;
pub mod behavior;
mod bot;
pub mod cli;
pub mod config;
pub mod delay;
pub mod handoff;
pub mod net;
pub mod predict;
pub mod progress;
pub mod prom;
pub mod report;
pub mod run;
pub mod server_stats;
pub mod sight;
pub mod soak;
mod stats;
pub mod sys;
pub mod token;
pub mod wire;

pub use assert::{Assertion, Outcome};
pub use config::{
    AbuseMode, AbuseSpec, Auth, Behavior, Config, Latency, MintOptions, Rooms, TlsOptions,
};
pub use progress::Progress;
pub use report::Report;
pub use run::{RunError, run, run_with};
