//! CPU per player-tick and tick duration of the real server under bots, beside a floor
//! that gives the same bots the same bytes with no game.
//!
//! For each configuration (rooms × players per room, at the default 30 Hz): a fresh
//! server with `room_capacity = 100` (the only change to `game.toml`), then
//! `rooms × players` wandering bots from this process (one thread, pinned to the load
//! CPU; inputs at the tick rate, a ping a second; bot *i* asks for room `bots-{i mod
//! rooms + 1}`). Once all are connected and a settle time has passed, two samples a
//! window apart give:
//!
//! - the server CPU ([`crate::cpu`]): the server process plus the kernel work it causes
//!   on its CPU, which on loopback includes the receiving side's TCP processing of every
//!   snapshot it sends; beside it the CPU's `/proc/stat` busy time and what other
//!   programs used of that CPU (the noise);
//! - from `/metrics`: the tick-duration histogram (all rooms) → p50/p99 interpolated in
//!   its buckets, ticks run, overruns, snapshot body bytes per tick, bytes sent;
//! - from the bots: snapshots received per bot per second (is the server keeping up?),
//!   bytes received, messages sent, and the whole run's latencies.
//!
//! CPU per player-tick = server CPU / (players × 30 × window). Then the floor
//! ([`crate::floor`]) runs with the same bots and the measured average snapshot body
//! size, and is measured the same way. The ratio game / floor is the figure.
//!
//! Must not assert anything about the figures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::cpu::{self, CpuUse, Probe};
use crate::floor::FloorArgs;
use crate::procfs;
use crate::prom::{self, Scrape};
use crate::{Bench, Spread, sys};
use rallypoint_bots::config::{Auth, Behavior, Config, MintOptions, Rooms};
use rallypoint_bots::progress::Progress;
use rallypoint_bots::report::Report;

/// Rooms × players per room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Rooms.
    pub rooms: u32,
    /// Players per room.
    pub players: u32,
}

impl Shape {
    /// Every player.
    pub fn total(&self) -> usize {
        (self.rooms * self.players) as usize
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} × {}", self.rooms, self.players)
    }
}

/// The configurations.
pub const DEFAULT_SHAPES: [Shape; 3] = [
    Shape {
        rooms: 10,
        players: 10,
    },
    Shape {
        rooms: 10,
        players: 50,
    },
    Shape {
        rooms: 20,
        players: 100,
    },
];

/// Parses `ROOMSxPLAYERS`.
pub fn parse_shape(s: &str) -> Result<Shape, String> {
    let (r, p) = s
        .split_once(['x', 'X', '×'])
        .ok_or_else(|| format!("`{s}` is not ROOMSxPLAYERS"))?;
    let rooms: u32 = r
        .trim()
        .parse()
        .map_err(|_| format!("`{r}` is not a number of rooms"))?;
    let players: u32 = p
        .trim()
        .parse()
        .map_err(|_| format!("`{p}` is not a number of players"))?;
    if rooms == 0 || !(1..=256).contains(&players) || rooms * players > 5000 {
        return Err(format!(
            "`{s}`: 1-256 players per room, at most 5000 players in all"
        ));
    }
    Ok(Shape { rooms, players })
}

/// The ratio the issue sets as a target at 20 × 100.
pub const TARGET_RATIO: f64 = 2.0;
/// Tick rate of the shipped `game.toml`, used by both the server and the floor.
const TICK_RATE: u16 = 30;
/// Bots started per second.
const RAMP_PER_S: f64 = 500.0;

/// What one side (game or floor) measured over the window.
#[derive(Debug, Clone)]
pub struct Side {
    /// Bots connected at the start of the window.
    pub players: u64,
    /// CPU over the window.
    pub cpu: CpuUse,
    /// Snapshots received per bot per second.
    pub snaps_per_bot_s: f64,
    /// Payload bytes received by all bots per second.
    pub bytes_in_per_s: f64,
    /// Messages sent per bot per second (inputs and pings).
    pub msgs_out_per_bot_s: f64,
    /// Server-side figures (the game only).
    pub game: Option<GameFigures>,
    /// The bots' whole-run report.
    pub report: Report,
}

/// Figures only the real server reports.
#[derive(Debug, Clone, Copy)]
pub struct GameFigures {
    /// Median tick duration, seconds.
    pub tick_p50: Option<f64>,
    /// 99th percentile tick duration, seconds.
    pub tick_p99: Option<f64>,
    /// Ticks run per room per second.
    pub ticks_per_room_s: f64,
    /// Ticks skipped.
    pub overruns: f64,
    /// Average snapshot body (entity list) bytes per tick and room.
    pub ents_bytes: f64,
    /// Payload bytes sent per second, all messages.
    pub bytes_out_per_s: f64,
    /// Snapshots replaced unread in an outbox (client or session behind).
    pub slow_drops: f64,
}

impl Side {
    /// Player-ticks in the window (players × tick rate × seconds).
    pub fn player_ticks(&self) -> f64 {
        self.players as f64 * f64::from(TICK_RATE) * self.cpu.wall_s
    }

    /// Server CPU busy time per player-tick, µs.
    pub fn cpu_us(&self) -> f64 {
        self.cpu.server_s() * 1e6 / self.player_ticks().max(1.0)
    }

    /// Server process CPU per player-tick, µs.
    pub fn process_us(&self) -> f64 {
        self.cpu.process_s * 1e6 / self.player_ticks().max(1.0)
    }

    /// `/proc/stat` busy time of the server CPU per player-tick, µs (tick-sampled; other
    /// programs on that CPU count too).
    pub fn stat_us(&self) -> f64 {
        self.cpu.stat_busy_s() * 1e6 / self.player_ticks().max(1.0)
    }

    /// Share of a core the server CPU figure amounts to, %.
    pub fn cpu_pct(&self) -> f64 {
        self.cpu.pct(self.cpu.server_s())
    }

    /// Whether every bot got (nearly) every snapshot: below that, the server did less
    /// work than the player-ticks assume.
    pub fn kept_up(&self) -> bool {
        self.snaps_per_bot_s >= f64::from(TICK_RATE) * 0.98
    }
}

/// One configuration's result.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The configuration.
    pub shape: Shape,
    /// The real server.
    pub game: Side,
    /// The floor.
    pub floor: Side,
    /// Body size the floor sent.
    pub floor_ents_bytes: usize,
}

impl Pair {
    /// Game / floor, server CPU busy per player-tick.
    pub fn ratio(&self) -> f64 {
        self.game.cpu_us() / self.floor.cpu_us().max(1e-9)
    }

    /// Game / floor, `/proc/stat` busy time per player-tick.
    pub fn stat_ratio(&self) -> f64 {
        self.game.stat_us() / self.floor.stat_us().max(1e-9)
    }
}

/// Runs every configuration.
pub async fn run(bench: &Bench) -> anyhow::Result<Vec<Pair>> {
    println!();
    println!("== rooms: CPU per player-tick, game against floor ==");
    let settle = if bench.quick {
        Duration::from_millis(1500)
    } else {
        Duration::from_secs(3)
    };
    println!(
        "{} Hz; wander bots, one input per tick and a ping a second each; window {:.1} s after all are connected + {:.1} s settle; \
         server game.toml: room_capacity = 100",
        TICK_RATE,
        bench.window.as_secs_f64(),
        settle.as_secs_f64()
    );
    let mut pairs = Vec::new();
    for &shape in &bench.shapes {
        println!("-- {shape} ({} players) --", shape.total());
        let server = bench.start_server("rooms", &[("room_capacity", "100".into())])?;
        println!(
            "  game : pid {} on CPU {} ({} threads); load 1 min {:.2}",
            server.proc.pid,
            sys::cpus_allowed(server.proc.pid),
            procfs::threads(server.proc.pid),
            procfs::load_average()
        );
        let url = format!("ws://{}/play", server.proc.game);
        let measured = Measured {
            label: "game",
            url,
            secret: server.secret.clone(),
            pid: server.proc.pid,
            admin: server.proc.admin,
        };
        let game = drive(bench, &measured, shape, settle).await?;
        drop(server);
        print_side("game ", &game);
        let ents = game.game.map_or(0.0, |g| g.ents_bytes).round() as usize;
        let args = FloorArgs {
            ents_bytes: ents,
            tick_rate: TICK_RATE,
            send_buffer: 65_536,
        };
        let floor_proc = bench.start_floor(&args)?;
        println!(
            "  floor: pid {} on CPU {} ({} threads), snapshot body {ents} B; load 1 min {:.2}",
            floor_proc.pid,
            sys::cpus_allowed(floor_proc.pid),
            procfs::threads(floor_proc.pid),
            procfs::load_average()
        );
        let url = format!("ws://{}/play", floor_proc.game);
        let measured = Measured {
            label: "floor",
            url,
            // The floor does not check tokens; the bots still mint theirs.
            secret: b"the-floor-does-not-check-tokens-0123456789".to_vec(),
            pid: floor_proc.pid,
            admin: None,
        };
        let floor = drive(bench, &measured, shape, settle).await?;
        drop(floor_proc);
        print_side("floor", &floor);
        let pair = Pair {
            shape,
            game,
            floor,
            floor_ents_bytes: ents,
        };
        println!(
            "  => game/floor: {:.2}× server CPU per player-tick ({:.2} vs {:.2} µs); {:.2}× by /proc/stat busy ({:.2} vs {:.2} µs)",
            pair.ratio(),
            pair.game.cpu_us(),
            pair.floor.cpu_us(),
            pair.stat_ratio(),
            pair.game.stat_us(),
            pair.floor.stat_us()
        );
        pairs.push(pair);
    }
    Ok(pairs)
}

/// The process a window measures and how to reach it.
struct Measured {
    /// `game` or `floor`.
    label: &'static str,
    /// Its `/play` URL.
    url: String,
    /// The HS256 secret the bots mint with.
    secret: Vec<u8>,
    /// Its pid.
    pid: u32,
    /// Its admin port (the real server only).
    admin: Option<std::net::SocketAddr>,
}

fn print_side(label: &str, s: &Side) {
    let game = s.game.map_or_else(String::new, |g| {
        format!(
            "\n         tick p50 {} p99 {}, {:.2} ticks/room/s, {} overruns, snapshot body {:.0} B/tick/room, \
             server sent {:.2} MB/s, {} snapshots replaced unread",
            fmt_secs(g.tick_p50),
            fmt_secs(g.tick_p99),
            g.ticks_per_room_s,
            g.overruns,
            g.ents_bytes,
            g.bytes_out_per_s / 1e6,
            g.slow_drops
        )
    });
    let r = &s.report;
    println!(
        "  {label}: {:.2} µs server CPU per player-tick ({:.2} µs by /proc/stat busy) over {:.1} s{}\n         {}\n         \
         bots: {} connected, {:.2} snapshots/bot/s, {:.2} MB/s received, {:.2} msgs/bot/s sent\n         \
         whole run: handshake failures {}, unexpected closes {}, input→ack p99 {:.1} ms, snapshot jitter p99 {:.1} ms, rtt p99 {:.2} ms{game}",
        s.cpu_us(),
        s.stat_us(),
        s.cpu.wall_s,
        if s.kept_up() {
            ""
        } else {
            " — NOT KEEPING UP: bots got fewer snapshots than the tick rate"
        },
        s.cpu.describe(),
        s.players,
        s.snaps_per_bot_s,
        s.bytes_in_per_s / 1e6,
        s.msgs_out_per_bot_s,
        r.handshake.failures,
        r.unexpected_closes,
        r.ack.p99_ms,
        r.jitter.p99_ms,
        r.rtt.p99_ms,
    );
}

fn fmt_secs(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.is_infinite() => "> 74 ms".into(),
        Some(v) => format!("{:.3} ms", v * 1e3),
    }
}

/// Summary lines over one or more runs (median and range).
pub fn summary(runs: &[Vec<Pair>]) {
    let Some(first) = runs.first() else { return };
    crate::summary_head(
        &format!(
            "rooms at {TICK_RATE} Hz, server CPU per player-tick (process + its softirq work), game vs floor"
        ),
        runs.len(),
        &[
            "rooms × players",
            "game µs/player-tick",
            "floor µs/player-tick",
            "game/floor",
            "game/floor by /proc/stat busy (tick-sampled)",
            "p99 tick ms",
            "snapshots/bot/s game, floor (lowest)",
            "server CPU game %",
            "noisy runs",
        ],
    );
    for shape in first.iter().map(|p| p.shape) {
        let pairs: Vec<&Pair> = runs.iter().flatten().filter(|p| p.shape == shape).collect();
        let of = |f: &dyn Fn(&Pair) -> f64| Spread::of(pairs.iter().map(|p| f(p)));
        let lowest =
            |f: &dyn Fn(&Pair) -> f64| pairs.iter().map(|p| f(p)).fold(f64::INFINITY, f64::min);
        let noisy = pairs
            .iter()
            .filter(|p| p.game.cpu.noisy() || p.floor.cpu.noisy())
            .count();
        println!(
            "  | {shape} | {} | {} | {}× | {}× | {} | {:.2}, {:.2} | {} | {noisy} of {} |",
            of(&|p| p.game.cpu_us()).show(2),
            of(&|p| p.floor.cpu_us()).show(2),
            of(&|p| p.ratio()).show(2),
            of(&|p| p.stat_ratio()).show(2),
            of(&|p| p
                .game
                .game
                .and_then(|g| g.tick_p99)
                .map_or(f64::NAN, |t| t * 1e3))
            .show(3),
            lowest(&|p| p.game.snaps_per_bot_s),
            lowest(&|p| p.floor.snaps_per_bot_s),
            of(&|p| p.game.cpu_pct()).show(0),
            pairs.len(),
        );
    }
    let target: Vec<&Pair> = runs
        .iter()
        .flatten()
        .filter(|p| p.shape == DEFAULT_SHAPES[2])
        .collect();
    if !target.is_empty() {
        let r = Spread::of(target.iter().map(|p| p.ratio()));
        let kept_up = target.iter().all(|p| p.game.kept_up());
        println!(
            "  target game ≤ {TARGET_RATIO}× floor at 20 × 100: {}× → {}{}",
            r.show(2),
            if r.median <= TARGET_RATIO {
                "met"
            } else {
                "NOT met"
            },
            if kept_up {
                ""
            } else {
                " (but the server did not keep up in every run: see snapshots/bot/s)"
            }
        );
    }
}

/// One sample of everything, taken as close together as possible.
struct Sample {
    cpu: cpu::Sample,
    progress: Option<Progress>,
    metrics: Option<Scrape>,
}

async fn sample(
    probe: &Probe,
    admin: Option<std::net::SocketAddr>,
    latest: &Mutex<Option<Progress>>,
) -> anyhow::Result<Sample> {
    let metrics = match admin {
        Some(a) => Some(prom::scrape(a).await?),
        None => None,
    };
    Ok(Sample {
        cpu: probe.sample(),
        progress: latest.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        metrics,
    })
}

/// Runs the bots against `url`, measures one window once they are all connected and
/// settled, then stops them.
async fn drive(
    bench: &Bench,
    m: &Measured,
    shape: Shape,
    settle: Duration,
) -> anyhow::Result<Side> {
    let (pid, admin, label) = (m.pid, m.admin, m.label);
    let probe = Probe::new(bench, pid);
    let bots = shape.total();
    let config = Config {
        url: m.url.clone(),
        bots,
        ramp_per_s: RAMP_PER_S,
        // An upper bound: the run is stopped as soon as the window is measured.
        duration: Duration::from_secs(600),
        behavior: Behavior::Wander,
        rooms: Rooms::Spread(shape.rooms),
        auth: Auth::Mint(MintOptions::new(m.secret.clone())),
        seed: Some(0x5eed_0000 + bots as u64),
        progress_interval: Duration::from_millis(100),
        ..Config::default()
    };
    let latest: Arc<Mutex<Option<Progress>>> = Arc::new(Mutex::new(None));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sink = Arc::clone(&latest);
    let run = rallypoint_bots::run_with(
        config,
        async move {
            let _ = stop_rx.await;
        },
        move |p| *sink.lock().unwrap_or_else(|p| p.into_inner()) = Some(p.clone()),
    );
    let window = bench.window;
    let measure = async {
        let connect_by = Instant::now()
            + Duration::from_secs_f64(bots as f64 / RAMP_PER_S)
            + Duration::from_secs(20);
        loop {
            let connected = latest
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map_or(0, |p| p.connected);
            if connected as usize >= bots || Instant::now() >= connect_by {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(settle).await;
        let a = sample(&probe, admin, &latest).await;
        let profiler = bench.profile.as_ref().map(|dir| {
            let out = dir.join(format!(
                "{label}-{}x{}.perf.data",
                shape.rooms, shape.players
            ));
            Profiler::start(pid, window, &out)
        });
        tokio::time::sleep(window).await;
        let b = sample(&probe, admin, &latest).await;
        if let Some(p) = profiler {
            p.finish();
        }
        let _ = stop_tx.send(());
        (a, b)
    };
    let (report, (a, b)) = tokio::join!(run, measure);
    let (report, a, b) = (report?, a?, b?);
    let cpu = probe.between(&a.cpu, &b.cpu);
    let window_s = cpu.wall_s;
    let (players, snaps, bytes_in, msgs_out) = match (&a.progress, &b.progress) {
        (Some(pa), Some(pb)) => {
            let dt = pb
                .elapsed
                .saturating_sub(pa.elapsed)
                .as_secs_f64()
                .max(1e-3);
            let n = pa.connected.max(1) as f64;
            (
                pa.connected,
                pb.snapshots_total.saturating_sub(pa.snapshots_total) as f64 / dt / n,
                pb.bytes_in_total.saturating_sub(pa.bytes_in_total) as f64 / dt,
                pb.messages_out_total.saturating_sub(pa.messages_out_total) as f64 / dt / n,
            )
        }
        _ => (0, 0.0, 0.0, 0.0),
    };
    let game = match (&a.metrics, &b.metrics) {
        (Some(ma), Some(mb)) => {
            let d = |name: &str| mb.sum(name) - ma.sum(name);
            let hist = "rallypoint_room_tick_seconds";
            let buckets = prom::bucket_delta(&ma.buckets(hist), &mb.buckets(hist));
            let ticks = d("rallypoint_room_tick_seconds_count");
            Some(GameFigures {
                tick_p50: prom::quantile(&buckets, 0.50),
                tick_p99: prom::quantile(&buckets, 0.99),
                ticks_per_room_s: ticks / f64::from(shape.rooms) / window_s,
                overruns: d("rallypoint_room_tick_overruns_total"),
                ents_bytes: d("rallypoint_room_snapshot_bytes_total") / ticks.max(1.0),
                bytes_out_per_s: d("rallypoint_bytes_out_total") / window_s,
                slow_drops: d("rallypoint_room_slow_consumer_drops_total"),
            })
        }
        _ => None,
    };
    Ok(Side {
        players,
        cpu,
        snaps_per_bot_s: snaps,
        bytes_in_per_s: bytes_in,
        msgs_out_per_bot_s: msgs_out,
        game,
        report,
    })
}

/// `perf record` of one process for one window; killed if still running when dropped.
struct Profiler {
    child: Option<std::process::Child>,
    out: std::path::PathBuf,
}

impl Profiler {
    fn start(pid: u32, window: Duration, out: &std::path::Path) -> Profiler {
        // perf inherits this process's CPU: its own work stays off the server CPU (the
        // sampling itself does not).
        let child = std::process::Command::new("perf")
            .args([
                "record",
                "-q",
                "-e",
                "cpu-clock",
                "-F",
                "499",
                "--call-graph",
                "dwarf,16384",
            ])
            .arg("-p")
            .arg(pid.to_string())
            .arg("-o")
            .arg(out)
            .args(["--", "sleep"])
            .arg(format!("{:.3}", window.as_secs_f64()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(c) => Profiler {
                child: Some(c),
                out: out.to_owned(),
            },
            Err(e) => {
                println!("  profile: cannot run perf: {e}");
                Profiler {
                    child: None,
                    out: out.to_owned(),
                }
            }
        }
    }

    /// Waits (bounded) for perf to write its file.
    fn finish(mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                println!(
                    "  profile: {} (sampling inflates this window's CPU figures)",
                    self.out.display()
                );
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Profiler {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_parse() {
        assert_eq!(
            parse_shape("20x100"),
            Ok(Shape {
                rooms: 20,
                players: 100
            })
        );
        assert_eq!(parse_shape("10×50").unwrap().total(), 500);
        assert!(parse_shape("0x10").is_err());
        assert!(parse_shape("10x300").is_err());
        assert!(parse_shape("ten").is_err());
    }
}
