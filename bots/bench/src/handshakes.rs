//! Complete handshakes per second over loopback `ws://`: TCP connect, the upgrade with an
//! `Authorization: Bearer` token (HS256 or ES256, minted beforehand, one account each),
//! the `101`, the `welcome` (the server only sends it once the player has joined a room,
//! at that room's next tick), then a normal close (1000, both close frames, TCP gone).
//!
//! Four cells: {HS256, ES256} × {1, 64 handshakes in flight}, each on the same fresh
//! server after a short warm-up. Per cell: throughput, latency to the `101` and to the
//! `welcome`, and the server CPU each handshake cost (busy time of the server CPU, which
//! includes the kernel's TCP work for both ends of loopback traffic sent from it).
//!
//! Because the `welcome` waits for the room's next tick, complete handshakes are bounded
//! by the tick, not by the CPU: one in flight completes one per tick (each new attempt
//! starts right after the previous `welcome`, so they lock onto the tick's phase), 64 in
//! flight complete about 64 per tick period. So four more cells close right after the
//! `101` ("upgrade only"): TCP, HTTP, token check and session start, which is what the
//! CPU bounds.
//!
//! Must not assert anything about the figures.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use rallypoint_client::{Endpoint, Request, TokenIn, Trust};
use rallypoint_protocol::Subprotocol;
use tokio::time::Instant;

use crate::cpu::{CpuUse, Probe};
use crate::procfs;
use crate::tokens::{ES_KID, Signer};
use crate::{Bench, Spread, ms, sys};
use rallypoint_bots::net::ConnectFailure;

/// Limit on one whole handshake, close included.
const ONE_TIMEOUT: Duration = Duration::from_secs(10);

/// One cell's figures.
#[derive(Debug)]
pub struct Cell {
    /// `HS256` or `ES256`.
    pub alg: &'static str,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// Waited for the `welcome` (a complete handshake), or closed after the `101`.
    pub complete: bool,
    /// Completed handshakes.
    pub ok: u64,
    /// Failed ones, by kind.
    pub failures: BTreeMap<String, u64>,
    /// Wall time of the cell.
    pub elapsed: Duration,
    /// TCP connect → `101`, µs.
    pub to_101: Histogram<u64>,
    /// TCP connect → `welcome`, µs.
    pub to_welcome: Histogram<u64>,
    /// CPU over the cell.
    pub cpu: Option<CpuUse>,
}

impl Cell {
    /// Completed handshakes per second of wall time.
    pub fn per_s(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Server CPU busy time per completed handshake, µs.
    pub fn cpu_us(&self) -> f64 {
        self.cpu
            .map_or(f64::NAN, |c| c.server_s() * 1e6 / (self.ok.max(1) as f64))
    }

    /// Server process CPU time per completed handshake, µs.
    pub fn process_us(&self) -> f64 {
        self.cpu
            .map_or(f64::NAN, |c| c.process_s * 1e6 / (self.ok.max(1) as f64))
    }
}

/// Runs the four cells.
pub async fn run(bench: &Bench) -> anyhow::Result<Vec<Cell>> {
    println!();
    println!("== handshakes ==");
    // Complete handshakes at 1 in flight go at the tick rate (30/s); the others are sized
    // for a second or more each.
    let (n1, n64, u1, u64) = if bench.quick {
        (60, 2500, 2000, 5000)
    } else {
        (150, 5000, 4000, 10000)
    };
    let server = bench.start_server("handshakes", &[])?;
    let pid = server.proc.pid;
    let url = format!("ws://{}/play", server.proc.game);
    let target = Arc::new(
        Endpoint::resolve(&url, &Trust::default())
            .await?
            .with_timeout(ONE_TIMEOUT),
    );
    let hs = Signer::hs256(&server.secret);
    let es = Signer::es256(&std::fs::read(bench.fixture("ec-private.pem"))?, ES_KID)?;
    println!(
        "server pid {pid} on CPU {} ({} threads), default game.toml (rooms of 16 at 30 Hz, auto placement)",
        sys::cpus_allowed(pid),
        procfs::threads(pid)
    );
    println!(
        "complete: TCP connect, upgrade with a Bearer token (minted beforehand, one account each), 101, \
         welcome (sent at the joined room's next tick), close 1000; upgrade only: the same, closing right after the 101"
    );
    // Warm-up: page in code, grow the allocator, open the first rooms.
    let warm = hs.mint_many("warm", 200)?;
    let probe = Probe::new(bench, pid);
    let _ = cell(&target, warm, 16, true, &probe, "HS256").await;
    let mut cells = Vec::new();
    for signer in [&hs, &es] {
        for (complete, concurrency, n) in [
            (true, 1, n1),
            (true, 64, n64),
            (false, 1, u1),
            (false, 64, u64),
        ] {
            let prefix = format!(
                "{}-{}-c{concurrency}",
                signer.alg.to_lowercase(),
                if complete { "full" } else { "upgrade" }
            );
            let tokens = signer.mint_many(&prefix, n)?;
            let c = cell(&target, tokens, concurrency, complete, &probe, signer.alg).await;
            print_cell(&c);
            cells.push(c);
        }
    }
    Ok(cells)
}

fn print_cell(c: &Cell) {
    let failures = if c.failures.is_empty() {
        "0 failed".to_owned()
    } else {
        format!("FAILED {:?}", c.failures)
    };
    let waited = if c.complete {
        format!(
            "; to welcome p50 {:.3} ms p99 {:.3} ms",
            ms(&c.to_welcome, 0.5),
            ms(&c.to_welcome, 0.99)
        )
    } else {
        String::new()
    };
    println!(
        "  {} {:<8} × {:>2} in flight: {:>7.1} handshakes/s ({} in {:.2} s, {failures}); to 101 p50 {:.3} ms p99 {:.3} ms{waited}\n    \
         {:.0} µs server CPU per handshake ({:.0} µs in the server process); {}",
        c.alg,
        if c.complete { "complete" } else { "upgrade" },
        c.concurrency,
        c.per_s(),
        c.ok,
        c.elapsed.as_secs_f64(),
        ms(&c.to_101, 0.5),
        ms(&c.to_101, 0.99),
        c.cpu_us(),
        c.process_us(),
        c.cpu.map_or_else(String::new, |u| u.describe()),
    );
}

/// Summary lines over one or more runs (median and range).
pub fn summary(runs: &[Vec<Cell>]) {
    crate::summary_head(
        "handshakes over loopback ws:// (complete = 101 + welcome + close 1000; upgrade only = 101 + close 1000)",
        runs.len(),
        &[
            "token",
            "in flight",
            "complete /s",
            "to welcome p50 / p99 ms",
            "µs server CPU each",
            "upgrade only /s",
            "to 101 p50 / p99 ms",
            "µs server CPU each",
        ],
    );
    for alg in ["HS256", "ES256"] {
        for concurrency in [1, 64] {
            let find = |complete: bool| -> Vec<&Cell> {
                runs.iter()
                    .flatten()
                    .filter(|c| {
                        c.alg == alg && c.concurrency == concurrency && c.complete == complete
                    })
                    .collect()
            };
            let (f, u) = (find(true), find(false));
            if f.is_empty() || u.is_empty() {
                continue;
            }
            let of =
                |cells: &[&Cell], g: &dyn Fn(&Cell) -> f64| Spread::of(cells.iter().map(|c| g(c)));
            println!(
                "  | {alg} | {concurrency} | {} | {} / {} | {} | {} | {} / {} | {} |",
                of(&f, &|c| c.per_s()).show(0),
                of(&f, &|c| ms(&c.to_welcome, 0.5)).show(2),
                of(&f, &|c| ms(&c.to_welcome, 0.99)).show(2),
                of(&f, &|c| c.cpu_us()).show(0),
                of(&u, &|c| c.per_s()).show(0),
                of(&u, &|c| ms(&c.to_101, 0.5)).show(3),
                of(&u, &|c| ms(&c.to_101, 0.99)).show(3),
                of(&u, &|c| c.cpu_us()).show(0),
            );
        }
    }
}

async fn cell(
    target: &Arc<Endpoint>,
    tokens: Vec<String>,
    concurrency: usize,
    complete: bool,
    probe: &Probe,
    alg: &'static str,
) -> Cell {
    let tokens = Arc::new(tokens);
    let next = Arc::new(AtomicUsize::new(0));
    let before = probe.sample();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (target, tokens, next) = (Arc::clone(target), Arc::clone(&tokens), Arc::clone(&next));
        workers.spawn(async move {
            let mut out = Worker::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(token) = tokens.get(i) else { break };
                match tokio::time::timeout(ONE_TIMEOUT, one(&target, token, complete)).await {
                    Ok(Ok((t101, tw))) => {
                        out.ok += 1;
                        out.to_101.push(t101);
                        out.to_welcome.push(tw);
                    }
                    Ok(Err(kind)) => *out.failures.entry(kind).or_default() += 1,
                    Err(_) => *out.failures.entry("timeout".into()).or_default() += 1,
                }
            }
            out
        });
    }
    let mut cell = Cell {
        alg,
        concurrency,
        complete,
        ok: 0,
        failures: BTreeMap::new(),
        elapsed: Duration::ZERO,
        to_101: histogram(),
        to_welcome: histogram(),
        cpu: None,
    };
    while let Some(done) = workers.join_next().await {
        let Ok(w) = done else { continue };
        cell.ok += w.ok;
        for (k, v) in w.failures {
            *cell.failures.entry(k).or_default() += v;
        }
        for d in w.to_101 {
            let _ = cell.to_101.record(d.as_micros() as u64);
        }
        for d in w.to_welcome {
            let _ = cell.to_welcome.record(d.as_micros() as u64);
        }
    }
    cell.elapsed = started.elapsed();
    cell.cpu = Some(probe.between(&before, &probe.sample()));
    cell
}

#[derive(Default)]
struct Worker {
    ok: u64,
    failures: BTreeMap<String, u64>,
    to_101: Vec<Duration>,
    to_welcome: Vec<Duration>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// One handshake: (time to the 101, time to the welcome), or the failure kind. Without
/// `complete`, it closes right after the 101 and both times are the 101's.
async fn one(
    target: &Endpoint,
    token: &str,
    complete: bool,
) -> Result<(Duration, Duration), String> {
    let t0 = Instant::now();
    let request = Request::new([Subprotocol::V1MsgPack]).token(token, TokenIn::Header);
    let mut session = target
        .connect(&request)
        .await
        .map_err(|e| ConnectFailure::from(e).key())?;
    let t101 = t0.elapsed();
    if complete && session.read_welcome().await.is_err() {
        return Err("no_welcome".into());
    }
    let tw = if complete { t0.elapsed() } else { t101 };
    // Reads what is still coming (intro events, a snapshot) until the server's close
    // frame, then waits for the server to close TCP first, as RFC 6455 asks of clients:
    // the TIME_WAIT stays on the server side and tens of thousands of handshakes do not
    // run this side out of ephemeral ports.
    session
        .close(1000, "")
        .await
        .map_err(|_| "close_failed".to_owned())?;
    Ok((t101, tw))
}
