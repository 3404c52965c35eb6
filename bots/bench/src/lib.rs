//! `rallypoint-bench`: measures the real server over loopback and prints the figures
//! `BENCHMARKS.md` records. Nothing here asserts: a benchmark reports, people judge.
//!
//! The server (release build of `rallypoint`) runs pinned to one CPU and everything the
//! benchmark does (load, sampling) runs pinned to another, so `/proc/stat` tells their
//! costs apart. Every child process is killed when its handle drops: at the end, on an
//! error and on Ctrl-C.
//!
//! It is its own crate, apart from the bots it drives (`rallypoint-bots`) and the client
//! library they use (`rallypoint-client`): a measurement rig is not part of the tool it
//! measures with. The map of the crate:
//!
//! - [`cli`]: flags, pinning, the runtime, Ctrl-C and the order of the measurements.
//! - [`handshakes`]: complete handshakes per second, HS256 and ES256, 1 and 64 at once.
//! - [`memory`]: server memory per idle authenticated connection at 1,000 and 5,000;
//!   also the hidden `idle` command, which holds idle connections open against a server
//!   started by hand (for heap profiles).
//! - [`rooms`]: CPU per player-tick and tick duration under bots, game against floor.
//! - [`cluster`]: a private Redis and three nodes: `/match` per second, kill -9 to
//!   resumed, the drain hand-off's gap in snapshots, the directory's CPU per room.
//! - [`soak`]: the server under fighting, churning and abusive bots for minutes, its
//!   memory sampled, judged by the [`rallypoint_bots::soak`] gates (this one has a
//!   verdict).
//! - [`floor`]: the floor, a bare broadcast server with no game (a hidden subcommand).
//! - [`child`]: spawning, pinning and killing the measured processes; scratch dirs.
//! - [`cpu`]: the CPU a window cost: server CPU, process, load, other programs.
//! - [`procfs`]: CPU and memory readings from `/proc`.
//! - [`prom`]: the server's `/metrics` (the bots' reader): counters and the tick
//!   histogram.
//! - [`tokens`]: tokens minted ahead of the measurements.
//! - [`sys`]: CPU affinity and child-process hygiene: the crate's only `unsafe` code, the
//!   one module where the workspace's `unsafe_code = "deny"` is lifted.

pub mod child;
pub mod cli;
pub mod cluster;
pub mod cpu;
pub mod floor;
pub mod handshakes;
pub mod memory;
pub mod procfs;
pub use rallypoint_bots::prom;
pub mod rooms;
pub mod soak;
pub mod sys;
pub mod tokens;

pub use cli::main;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;

use child::{Running, Scratch};

/// What every measurement needs to know about the machine and the build.
#[derive(Debug, Clone)]
pub struct Bench {
    /// The release `rallypoint` binary.
    pub server_bin: PathBuf,
    /// This binary (re-executed as the floor).
    pub bench_bin: PathBuf,
    /// Repository root: `assets/` and `tests/fixtures/` are read from it.
    pub repo: PathBuf,
    /// CPU of the server and the floor (`None`: not pinned).
    pub server_cpu: Option<usize>,
    /// CPU of the load (this process) (`None`: not pinned).
    pub load_cpu: Option<usize>,
    /// Shorter runs.
    pub quick: bool,
    /// Measurement window of each rooms configuration.
    pub window: Duration,
    /// Rooms configurations to measure.
    pub shapes: Vec<rooms::Shape>,
    /// See [`procfs::irq_time_accounting`].
    pub irq_accounting: Option<bool>,
    /// Where to write `perf` profiles of the rooms windows, if anywhere.
    pub profile: Option<PathBuf>,
}

/// A running `rallypoint serve` with what it trusts.
#[derive(Debug)]
pub struct GameServer {
    /// The process.
    pub proc: Running,
    /// Its HS256 secret.
    pub secret: Vec<u8>,
    _scratch: Scratch,
}

impl Bench {
    /// `tests/fixtures/<name>` of the repository.
    pub fn fixture(&self, name: &str) -> PathBuf {
        self.repo.join("tests/fixtures").join(name)
    }

    /// Starts the real server pinned to the server CPU, with production defaults except:
    /// per-IP limits lifted (every bot comes from 127.0.0.1), no asset hot reload (a
    /// watcher thread is noise), JSON logs at `info` (read and discarded), an HS256 secret
    /// plus the fixture ES256 public key as `kid` `es`, and `game.toml` `overrides`.
    pub fn start_server(
        &self,
        label: &str,
        overrides: &[(&str, String)],
    ) -> anyhow::Result<GameServer> {
        self.spawn_server(label, overrides, random_secret(), &[], self.server_cpu)
    }

    /// A node of a cluster (or a single node to compare with): [`Bench::start_server`]'s
    /// settings with the game as shipped, trusting `secret` (shared by the nodes), with
    /// `extra` arguments (`--redis-url`, `--node-id`), not pinned.
    pub fn start_node(
        &self,
        label: &str,
        secret: &[u8],
        extra: &[String],
    ) -> anyhow::Result<GameServer> {
        self.spawn_server(label, &[], secret.to_vec(), extra, None)
    }

    fn spawn_server(
        &self,
        label: &str,
        overrides: &[(&str, String)],
        secret: Vec<u8>,
        extra: &[String],
        cpu: Option<usize>,
    ) -> anyhow::Result<GameServer> {
        let scratch = Scratch::new(label)?;
        let secret_path = scratch.join("secret");
        std::fs::write(&secret_path, &secret)?;
        let assets = scratch.join("assets");
        child::copy_assets(&self.repo.join("assets"), &assets)?;
        if !overrides.is_empty() {
            let game = assets.join("game.toml");
            let text = std::fs::read_to_string(&game)
                .with_context(|| format!("reading {}", game.display()))?;
            std::fs::write(&game, child::set_top_level_keys(&text, overrides))?;
        }
        let public = self.fixture("ec-public.pem");
        let mut cmd = Command::new(&self.server_bin);
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--log-format", "json", "--no-hot-reload"])
            .arg("--assets")
            .arg(&assets)
            .arg("--jwt-secret-file")
            .arg(&secret_path)
            .arg("--jwt-public-key")
            .arg(format!("{}={}", tokens::ES_KID, public.display()))
            .args(["--max-connections", "100000"])
            .args(["--max-connections-per-ip", "100000"])
            .args(["--handshake-rate", "1000000/1000000"])
            .args(["--max-pending-handshakes-per-ip", "100000"])
            .args(extra)
            .env("RUST_LOG", "info");
        let proc = Running::start(cmd, cpu, "the rallypoint server")?;
        Ok(GameServer {
            proc,
            secret,
            _scratch: scratch,
        })
    }

    /// Starts the floor (this binary's hidden `floor` subcommand) pinned to the server CPU.
    pub fn start_floor(&self, args: &floor::FloorArgs) -> anyhow::Result<Running> {
        let mut cmd = Command::new(&self.bench_bin);
        cmd.arg("floor").args(args.to_args());
        Running::start(cmd, self.server_cpu, "the floor")
    }
}

/// 64 hex characters from the clock, the pid and the address of a stack value: unique per
/// run, which is all a loopback benchmark's secret needs.
fn random_secret() -> Vec<u8> {
    let probe = 0u8;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32)
        ^ (std::ptr::addr_of!(probe) as u64);
    let mut rng = rallypoint_protocol::rng::SplitMix64::new(seed);
    (0..4)
        .map(|_| format!("{:016x}", rng.next_u64()))
        .collect::<String>()
        .into_bytes()
}

/// Median and range of one figure over several runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Values (NaNs left out).
    pub n: usize,
}

impl Spread {
    /// The spread of `values`, NaNs left out.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            return Spread {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
                n,
            };
        }
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        }
    }

    /// `median` with `decimals`, followed by ` (min–max)` when there are several values.
    pub fn show(&self, decimals: usize) -> String {
        if self.n > 1 {
            format!(
                "{:.d$} ({:.d$}–{:.d$})",
                self.median,
                self.min,
                self.max,
                d = decimals
            )
        } else {
            format!("{:.d$}", self.median, d = decimals)
        }
    }
}

/// Prints a summary's title (with how many runs it covers) and its table's head.
pub fn summary_head(title: &str, runs: usize, columns: &[&str]) {
    let over = if runs > 1 {
        format!("median (min–max) of {runs} runs")
    } else {
        "one run".into()
    };
    println!("{title}; {over}");
    println!("  | {} |", columns.join(" | "));
    println!("  |{}", "---|".repeat(columns.len()));
}

/// A percentile of an HDR histogram of microseconds, in milliseconds.
pub fn ms(h: &hdrhistogram::Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return f64::NAN;
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Now as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads() {
        let s = Spread::of([3.0, 1.0, f64::NAN, 2.0]);
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(s.show(1), "2.0 (1.0–3.0)");
        assert_eq!(Spread::of([4.0, 1.0]).median, 2.5);
        assert_eq!(Spread::of([7.0]).show(0), "7");
        assert!(Spread::of([]).median.is_nan());
    }

    #[test]
    fn secrets_are_long_enough_and_dates_look_like_dates() {
        let s = random_secret();
        assert_eq!(s.len(), 64);
        assert!(s.iter().all(u8::is_ascii_hexdigit));
        let d = utc_now();
        assert_eq!(d.len(), "2025-01-01 00:00 UTC".len(), "{d}");
        assert!(d.starts_with("20"), "{d}");
    }
}
