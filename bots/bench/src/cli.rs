//! The `rallypoint-bench` command: flags, pinning, the runtime, Ctrl-C, and the order in
//! which measurements run and print.
//!
//! This is the binary edge: errors become `anyhow` reports and exit codes here. Exit
//! codes: 0 = every requested measurement ran (whatever the figures say), 2 = it could
//! not run (no server binary, a child that would not start, ...), 130 = interrupted.
//! `soak` has a verdict: 0 = passed, 1 = a gate failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

use crate::{Bench, cluster, floor, handshakes, memory, procfs, rooms, soak, sys};
use rallypoint_bots::config::parse_duration;

/// Measure the Rallypoint server over loopback: handshakes per second, memory per idle
/// connection, and CPU per player-tick against a bare broadcast floor.
#[derive(Debug, Parser)]
#[command(name = "rallypoint-bench", version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    what: Option<What>,
    /// The release server binary [default: `rallypoint` next to this binary].
    #[arg(long, global = true)]
    server: Option<PathBuf>,
    /// Repository root, for `assets/` and `tests/fixtures/` [default: the one this
    /// binary was built from].
    #[arg(long, global = true)]
    repo: Option<PathBuf>,
    /// Shorter runs (fewer handshakes, shorter settles and windows): about a minute.
    #[arg(long, global = true)]
    quick: bool,
    /// CPU the server (and the floor) is pinned to.
    #[arg(long, global = true, default_value_t = 0)]
    server_cpu: usize,
    /// CPU this process (the load) is pinned to.
    #[arg(long, global = true, default_value_t = 1)]
    load_cpu: usize,
    /// Do not pin anything (figures then mix server and load on every CPU).
    #[arg(long, global = true)]
    no_pin: bool,
    /// Measurement window of each rooms configuration [default: 10s, quick 4s].
    #[arg(long, global = true, value_parser = parse_duration)]
    window: Option<Duration>,
    /// Repeat the selected measurements N times and summarise each figure as its median
    /// and range.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    runs: u32,
    /// Record a `perf` profile (cpu-clock, DWARF call graphs) of the server and of the
    /// floor during each rooms window into this directory. Sampling costs CPU on the
    /// server CPU: the figures of a profiled run are inflated.
    #[arg(long, global = true)]
    profile: Option<PathBuf>,
    /// Rooms configurations as ROOMSxPLAYERS, comma-separated [default: 10x10,10x50,20x100].
    #[arg(long, global = true, value_delimiter = ',', value_parser = rooms::parse_shape)]
    configs: Vec<rooms::Shape>,
}

#[derive(Debug, Clone, Subcommand)]
enum What {
    /// Every measurement (the default).
    All,
    /// Complete handshakes per second: HS256 and ES256, 1 and 64 at once.
    Handshakes,
    /// Server memory per idle authenticated connection at 1,000 and 5,000.
    Memory,
    /// CPU per player-tick and p99 tick at 10x10, 10x50, 20x100, against the floor.
    Rooms,
    /// A private redis-server and three nodes: /match per second, kill -9 to resumed,
    /// the drain hand-off's gap, the directory's CPU per room (not part of `all`: it
    /// needs `redis-server` on PATH).
    Cluster,
    /// Soak: fighting, churning and returning abusive bots for a long run; the server's
    /// memory sampled; exit 1 if it panicked, grew, or anyone well-behaved noticed.
    Soak(soak::SoakArgs),
    /// The floor server (started by `rooms`; not for direct use).
    #[command(hide = true)]
    Floor(floor::FloorArgs),
    /// Hold idle connections open against a server started by hand (heap profiling).
    #[command(hide = true)]
    Idle(memory::IdleArgs),
}

/// Entry point of the `rallypoint-bench` binary.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let what = args.what.clone().unwrap_or(What::All);
    match &what {
        What::Floor(f) => return floor::main(f),
        What::Idle(i) => return idle(i),
        _ => {}
    }
    match prepare(&args) {
        Ok(bench) => match &what {
            What::Soak(s) => run_soak(&bench, s),
            _ => run_all(&bench, &what, args.runs),
        },
        Err(e) => {
            eprintln!("rallypoint-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn idle(args: &memory::IdleArgs) -> ExitCode {
    let _ = rallypoint_bots::sys::raise_fd_limit(args.connections as u64 + 256);
    match until_ctrl_c(memory::hold(args)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rallypoint-bench idle: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs `work` on a single-threaded runtime until it ends (`Some`) or Ctrl-C (`None`).
/// Dropping an interrupted `work` kills every child process it started.
fn until_ctrl_c<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        tokio::select! {
            r = work => r.map(Some),
            _ = tokio::signal::ctrl_c() => Ok(None),
        }
    })
}

/// The exit code of a run that ended with `result`; `Ok(None)` = interrupted.
fn exit_code(result: anyhow::Result<Option<ExitCode>>) -> ExitCode {
    match result {
        Ok(Some(code)) => code,
        Ok(None) => {
            eprintln!("rallypoint-bench: interrupted; every child process was killed");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("rallypoint-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn prepare(args: &Args) -> anyhow::Result<Bench> {
    let bench_bin = std::env::current_exe().context("locating this binary")?;
    let server_bin = match &args.server {
        Some(p) => p.clone(),
        None => bench_bin.with_file_name("rallypoint"),
    };
    if !server_bin.is_file() {
        bail!(
            "no server binary at {}; build it with `cargo build --release -p rallypoint -p rallypoint-bench` \
             or pass --server PATH",
            server_bin.display()
        );
    }
    let repo = match &args.repo {
        Some(p) => p.clone(),
        None => {
            let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
            if built.join("assets/game.toml").is_file() {
                built
            } else {
                PathBuf::from(".")
            }
        }
    };
    let repo = repo.canonicalize().unwrap_or(repo);
    for needed in [
        "assets/game.toml",
        "tests/fixtures/ec-private.pem",
        "tests/fixtures/ec-public.pem",
    ] {
        if !repo.join(needed).is_file() {
            bail!(
                "{} not found; pass --repo with the repository root",
                repo.join(needed).display()
            );
        }
    }
    let cpus = sys::online_cpus();
    let (server_cpu, load_cpu) = if args.no_pin {
        (None, None)
    } else if cpus < 2 || args.server_cpu == args.load_cpu {
        eprintln!(
            "rallypoint-bench: warning: {cpus} CPU(s) available and --server-cpu {} --load-cpu {}: \
             not pinning, so server and load share CPUs and CPU figures mix them",
            args.server_cpu, args.load_cpu
        );
        (None, None)
    } else {
        (Some(args.server_cpu), Some(args.load_cpu))
    };
    if let Some(cpu) = load_cpu {
        // Before any thread exists, so every thread of this process inherits it.
        sys::pin_current_thread(cpu)
            .with_context(|| format!("pinning this process to CPU {cpu}"))?;
    }
    // 5,000 idle connections here, 5,000 sockets in the server (which inherits this).
    let fds = rallypoint_bots::sys::raise_fd_limit(16_384);
    if fds.is_some_and(|n| n < 11_000) {
        eprintln!(
            "rallypoint-bench: warning: open-file limit {fds:?}; the memory measurement needs about 11,000"
        );
    }
    let quick = args.quick;
    Ok(Bench {
        server_bin: server_bin.canonicalize().unwrap_or(server_bin),
        bench_bin,
        repo,
        server_cpu,
        load_cpu,
        quick,
        window: args.window.unwrap_or(if quick {
            Duration::from_secs(4)
        } else {
            Duration::from_secs(10)
        }),
        shapes: if args.configs.is_empty() {
            rooms::DEFAULT_SHAPES.to_vec()
        } else {
            args.configs.clone()
        },
        irq_accounting: procfs::irq_time_accounting(),
        profile: match &args.profile {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                Some(dir.canonicalize().unwrap_or_else(|_| dir.clone()))
            }
            None => None,
        },
    })
}

fn run_soak(bench: &Bench, args: &soak::SoakArgs) -> ExitCode {
    let _ = rallypoint_bots::sys::raise_fd_limit(args.bots as u64 * 2 + 256);
    exit_code(until_ctrl_c(soak::run(bench, args)))
}

fn run_all(bench: &Bench, what: &What, runs: u32) -> ExitCode {
    let measured = until_ctrl_c(async {
        measure(bench, what, runs).await?;
        Ok(ExitCode::SUCCESS)
    });
    exit_code(measured)
}

async fn measure(bench: &Bench, what: &What, runs: u32) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    header(bench);
    let all = matches!(what, What::All);
    let (mut hs, mut mem, mut rm, mut cl) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        if runs > 1 {
            println!();
            println!("######## run {run} of {runs} ########");
        }
        if all || matches!(what, What::Handshakes) {
            hs.push(handshakes::run(bench).await?);
        }
        if all || matches!(what, What::Memory) {
            mem.push(memory::run(bench).await?);
        }
        if all || matches!(what, What::Rooms) {
            rm.push(rooms::run(bench).await?);
        }
        if matches!(what, What::Cluster) {
            cl.push(cluster::run(bench).await?);
        }
    }
    println!();
    println!(
        "== summary ({} mode, {runs} run{}, {:.0} s; 1-minute load average now {:.2}) ==",
        if bench.quick { "quick" } else { "full" },
        if runs > 1 { "s" } else { "" },
        started.elapsed().as_secs_f64(),
        procfs::load_average()
    );
    if !hs.is_empty() {
        handshakes::summary(&hs);
    }
    if !mem.is_empty() {
        memory::summary(&mem);
    }
    if !rm.is_empty() {
        rooms::summary(&rm);
    }
    if !cl.is_empty() {
        cluster::summary(&cl);
    }
    Ok(())
}

fn header(bench: &Bench) {
    println!(
        "rallypoint-bench {} — {}",
        env!("CARGO_PKG_VERSION"),
        crate::utc_now()
    );
    println!("machine   {}", procfs::machine());
    println!(
        "load      1-minute load average {:.2} at start",
        procfs::load_average()
    );
    let me = sys::cpus_allowed(std::process::id());
    match (bench.server_cpu, bench.load_cpu) {
        (Some(s), Some(l)) => println!(
            "pinning   server and floor on CPU {s} (affinity set at spawn); load (this process, bots on one thread) on CPU {l} (Cpus_allowed_list {me})"
        ),
        _ => println!("pinning   none (Cpus_allowed_list {me})"),
    }
    println!("server    {}", bench.server_bin.display());
    println!(
        "CPU       {}",
        crate::cpu::CpuUse::method(bench.irq_accounting)
    );
    println!("mode      {}", if bench.quick { "quick" } else { "full" });
}
