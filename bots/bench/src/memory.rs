//! Server memory per idle authenticated connection: open 1,000 connections that
//! authenticate, join a room and then send nothing, measure the server's resident memory,
//! open 4,000 more, measure again.
//!
//! An idle client must still read, or the server's writes back up until it drops the
//! client as a slow consumer. To keep 5,000 readers cheap for both sides, the server runs
//! with `snapshot_rate = 1` (rooms still tick at 30 Hz, 16 players each, auto placement):
//! every buffer still grows to the size of a real snapshot, only less often, so the
//! resident set is the same as at 30 snapshots per second, without a saturated CPU
//! blurring the reading. Each client answers the server's heartbeat pings (the client
//! library does so while reading).
//!
//! Resident memory is `VmRSS` (and `Pss`) of the server process, after a settle period.
//! Kernel socket buffers are not in it; the TCP memory of the whole machine
//! (`/proc/net/sockstat`, both ends of every loopback connection) is shown beside it.
//!
//! Must not assert anything about the figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rallypoint_client::{Endpoint, Received, Request, TokenIn, Trust};
use rallypoint_protocol::Subprotocol;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::procfs::{self, Memory};
use crate::tokens::Signer;
use crate::{Bench, Spread, sys};

/// Connections opened at once.
const CONNECT_CONCURRENCY: usize = 64;
/// The target the issue sets, KiB per connection.
pub const TARGET_KIB: f64 = 16.0;

/// One reading.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// Idle connections open (welcomed and still connected).
    pub connections: usize,
    /// Server memory.
    pub memory: Memory,
    /// Kernel TCP memory of the machine, KiB.
    pub tcp_kib: Option<u64>,
}

/// The measurement.
#[derive(Debug, Clone)]
pub struct MemoryResult {
    /// Before any connection.
    pub base: Point,
    /// At 1,000 and 5,000.
    pub points: Vec<Point>,
    /// Connections that failed to open or were lost while idle.
    pub failed: usize,
    /// Settle time before each reading.
    pub settle: Duration,
}

impl MemoryResult {
    /// (RSS, PSS) KiB per connection at `p`, relative to the baseline.
    pub fn per_connection(&self, p: &Point) -> (f64, f64) {
        let n = p.connections.max(1) as f64;
        (
            p.memory.rss_kib.saturating_sub(self.base.memory.rss_kib) as f64 / n,
            p.memory.pss_kib.saturating_sub(self.base.memory.pss_kib) as f64 / n,
        )
    }
}

/// Runs the measurement.
pub async fn run(bench: &Bench) -> anyhow::Result<MemoryResult> {
    println!();
    println!("== memory per idle connection ==");
    let settle = if bench.quick {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(6)
    };
    let steps = [1000usize, 5000];
    let server = bench.start_server("memory", &[("snapshot_rate", "1".into())])?;
    let pid = server.proc.pid;
    println!(
        "server pid {pid} on CPU {}, game.toml with snapshot_rate = 1 (rooms of 16 at 30 Hz); \
         idle clients authenticate (HS256), join, then only read; settle {} s before each reading",
        sys::cpus_allowed(pid),
        settle.as_secs()
    );
    let url = format!("ws://{}/play", server.proc.game);
    let tokens = Signer::hs256(&server.secret).mint_many("idle", steps[steps.len() - 1])?;
    let mut crowd = IdleCrowd::new(&url, tokens).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = reading(pid, 0)?;
    print_point(&base, None);
    let mut points = Vec::new();
    for &n in &steps {
        crowd.grow_to(n).await;
        tokio::time::sleep(settle).await;
        let p = reading(pid, crowd.open())?;
        let result = MemoryResult {
            base,
            points: Vec::new(),
            failed: 0,
            settle,
        };
        print_point(&p, Some(result.per_connection(&p)));
        points.push(p);
    }
    let failed = crowd.failed();
    drop(crowd);
    if failed > 0 {
        println!("  {failed} connections failed to open or were lost");
    }
    let result = MemoryResult {
        base,
        points,
        failed,
        settle,
    };
    if let [a, b] = &result.points[..] {
        let marginal = b.memory.rss_kib.saturating_sub(a.memory.rss_kib) as f64
            / (b.connections.saturating_sub(a.connections).max(1)) as f64;
        println!(
            "  marginal {} → {}: {marginal:.1} KiB/connection (RSS)",
            a.connections, b.connections
        );
    }
    Ok(result)
}

fn reading(pid: u32, connections: usize) -> anyhow::Result<Point> {
    Ok(Point {
        connections,
        memory: procfs::memory(pid)?,
        tcp_kib: procfs::tcp_mem_pages().map(|p| p * 4),
    })
}

fn print_point(p: &Point, per: Option<(f64, f64)>) {
    let per = per.map_or_else(String::new, |(rss, pss)| {
        format!(
            " → {rss:.1} KiB/connection RSS, {pss:.1} KiB PSS (target ≤ {TARGET_KIB} KiB: {})",
            if rss <= TARGET_KIB { "met" } else { "NOT met" }
        )
    });
    println!(
        "  {:>5} idle connections: server VmRSS {:>7} KiB, Pss {:>7} KiB; kernel TCP buffers (whole machine) {} KiB{per}",
        p.connections,
        p.memory.rss_kib,
        p.memory.pss_kib,
        p.tcp_kib.map_or("?".into(), |k| k.to_string()),
    );
}

/// Summary lines over one or more runs (median and range).
pub fn summary(runs: &[MemoryResult]) {
    crate::summary_head(
        "memory per idle authenticated connection (server VmRSS growth over its baseline / connections)",
        runs.len(),
        &[
            "connections",
            "server RSS KiB",
            "baseline KiB",
            "KiB/connection (RSS)",
            "KiB/connection (PSS)",
            "target ≤ 16 KiB",
        ],
    );
    let Some(first) = runs.first() else { return };
    for (i, p) in first.points.iter().enumerate() {
        let at: Vec<(&MemoryResult, &Point)> = runs
            .iter()
            .filter_map(|r| Some((r, r.points.get(i)?)))
            .collect();
        let rss = Spread::of(at.iter().map(|(r, p)| r.per_connection(p).0));
        println!(
            "  | {} | {} | {} | {} | {} | {} |",
            p.connections,
            Spread::of(at.iter().map(|(_, p)| p.memory.rss_kib as f64)).show(0),
            Spread::of(at.iter().map(|(r, _)| r.base.memory.rss_kib as f64)).show(0),
            rss.show(1),
            Spread::of(at.iter().map(|(r, p)| r.per_connection(p).1)).show(1),
            if rss.max <= TARGET_KIB {
                "met"
            } else {
                "not met"
            }
        );
    }
}

/// Idle connections to one server, opened on demand and closed (dropped) with it.
#[derive(Debug)]
pub struct IdleCrowd {
    target: Arc<Endpoint>,
    tokens: Vec<String>,
    open: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    _stop_tx: watch::Sender<bool>,
    clients: JoinSet<()>,
    started: usize,
}

impl IdleCrowd {
    /// A crowd against `url`, one token (account) per connection.
    pub async fn new(url: &str, tokens: Vec<String>) -> anyhow::Result<IdleCrowd> {
        let (stop_tx, stop) = watch::channel(false);
        Ok(IdleCrowd {
            target: Arc::new(Endpoint::resolve(url, &Trust::default()).await?),
            tokens,
            open: Arc::default(),
            failed: Arc::default(),
            gate: Arc::new(Semaphore::new(CONNECT_CONCURRENCY)),
            stop,
            _stop_tx: stop_tx,
            clients: JoinSet::new(),
            started: 0,
        })
    }

    /// Opens connections until `n` have been attempted (as many as there are tokens),
    /// and waits (at most two minutes) until each is open or has failed.
    pub async fn grow_to(&mut self, n: usize) {
        let n = n.min(self.tokens.len());
        while self.started < n {
            self.clients.spawn(idle_client(
                Arc::clone(&self.target),
                self.tokens[self.started].clone(),
                Arc::clone(&self.open),
                Arc::clone(&self.failed),
                Arc::clone(&self.gate),
                self.stop.clone(),
            ));
            self.started += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.open() + self.failed() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections that failed to open or were lost.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::Relaxed)
    }
}

/// Arguments of the hidden `idle` subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct IdleArgs {
    /// The server's game endpoint.
    #[arg(long)]
    pub url: String,
    /// The server's HS256 secret file.
    #[arg(long)]
    pub secret_file: std::path::PathBuf,
    /// Idle connections to open.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// How long to hold them open.
    #[arg(long, default_value = "60s", value_parser = rallypoint_bots::config::parse_duration)]
    pub hold: Duration,
}

/// `rallypoint-bench idle`: holds idle connections open against any server, e.g. one
/// running under a heap profiler.
pub async fn hold(args: &IdleArgs) -> anyhow::Result<()> {
    let secret = std::fs::read(&args.secret_file)?;
    let secret = String::from_utf8_lossy(&secret).trim().as_bytes().to_vec();
    let tokens = Signer::hs256(&secret).mint_many("idle-hold", args.connections)?;
    let mut crowd = IdleCrowd::new(&args.url, tokens).await?;
    crowd.grow_to(args.connections).await;
    println!(
        "{} idle connections open ({} failed); holding for {:.0} s",
        crowd.open(),
        crowd.failed(),
        args.hold.as_secs_f64()
    );
    tokio::time::sleep(args.hold).await;
    Ok(())
}

/// Connects (at most [`CONNECT_CONCURRENCY`] at once), waits for `welcome`, then reads
/// and discards (answering the server's heartbeat pings) until told to stop.
async fn idle_client(
    target: Arc<Endpoint>,
    token: String,
    open: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let request = Request::new([Subprotocol::V1MsgPack]).token(&token, TokenIn::Header);
    let connected = async {
        let _permit = gate.acquire().await.ok()?;
        target.join(&request).await.ok()
    };
    let Ok(Some(mut session)) = tokio::time::timeout(Duration::from_secs(30), connected).await
    else {
        failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    open.fetch_add(1, Ordering::Relaxed);
    loop {
        tokio::select! {
            received = session.recv() => match received {
                Ok(Received::Message(_)) => {}
                Ok(Received::Closed(_)) | Err(_) => {
                    open.fetch_sub(1, Ordering::Relaxed);
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
            _ = stop.changed() => return,
        }
    }
}
