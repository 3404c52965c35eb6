//! `rallypoint-bench cluster`: the cluster's figures over loopback. It starts its own
//! `redis-server` (no persistence) and `rallypoint` nodes on free ports, plays them with
//! client sessions, and prints:
//!
//! - `/match` answers per second through one node, and spread over three;
//! - the time from a node's kill -9 to each of its players resumed on another node, the
//!   players asking `/match` at once and again every 50 ms until they are back (p50/p99);
//! - the time a player gets no snapshot while its room is handed over by a draining node
//!   (SIGTERM): last snapshot on the old node to first on the new (p50/p99);
//! - the CPU a node spends on the directory per room per second: the same rooms (one
//!   player each) on a node in cluster mode and on a single node, the difference; and
//!   Redis' own CPU for them.
//!
//! The nodes are not pinned (three of them share the machine). Nothing here asserts.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rallypoint_client::{Endpoint, Kind, Received, Request, Session, TokenIn, Trust};
use rallypoint_protocol::Subprotocol;
use rallypoint_protocol::message::ServerMessage;
use tokio::sync::watch;

use crate::child::Scratch;
use crate::tokens::Signer;
use crate::{Bench, GameServer, Spread, procfs, summary_head};

/// Rooms of the directory-cost window (one player each).
const ROOMS: usize = 100;
/// Players of each kill and drain measurement.
const PLAYERS: usize = 20;
/// Concurrent `/match` askers.
const ASKERS: usize = 32;

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// `/match` answers per second through one node.
    pub match_one_per_s: f64,
    /// `/match` answers per second spread over three nodes.
    pub match_three_per_s: f64,
    /// Kill -9 to resumed, ms: p50, p99.
    pub kill_ms: (f64, f64),
    /// Snapshots missed during a drain hand-off, ms: p50, p99.
    pub drain_gap_ms: (f64, f64),
    /// Joins at the `moved` URL refused (and retried) during the drain.
    pub drain_refusals: u64,
    /// A cluster node's extra CPU per room per second, µs.
    pub directory_us_per_room_s: f64,
    /// Redis' CPU per room per second, µs.
    pub redis_us_per_room_s: f64,
}

/// A private `redis-server`; killed on drop.
#[derive(Debug)]
struct Redis {
    child: Child,
    port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    /// `redis-server` from `PATH` on a free loopback port, without persistence.
    async fn start(dir: &Path) -> anyhow::Result<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (Debian: apt-get install redis-server)")?;
        let redis = Redis { child, port };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(redis);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("redis-server did not listen on port {port}")
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Every figure, from one cluster (and one single node for the directory's cost).
pub async fn run(bench: &Bench) -> anyhow::Result<Figures> {
    let scratch = Scratch::new("cluster-redis")?;
    let redis = Redis::start(&scratch.join(".")).await?;
    let secret = bench_secret();
    let signer = Signer::hs256(&secret);
    let window = if bench.quick {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(10)
    };
    let (directory_us, redis_us) = directory_cost(bench, &redis, &secret, window).await?;
    let mut nodes = Vec::new();
    for i in 1..=3 {
        nodes.push(node(bench, &secret, Some(&redis.url()), &format!("b{i}"))?);
    }
    wait_registered(&nodes[0], 3).await?;
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.proc.game).collect();
    let askers = signer.mint_many("asker", ASKERS)?;
    let match_one = match_rate(&addrs[..1], &askers, window).await;
    let match_three = match_rate(&addrs, &askers, window).await;
    let kill = kill_to_resume(&mut nodes, &signer).await?;
    let (drain, refusals) = drain_gap(&nodes, &signer).await?;
    println!(
        "  /match per second: {match_one:.0} through one node, {match_three:.0} over three; \
         kill -9 to resumed p50 {:.0} ms, p99 {:.0} ms; drain hand-off without snapshots \
         p50 {:.0} ms, p99 {:.0} ms ({refusals} joins there refused first); directory {directory_us:.1} µs CPU per room per second \
         on the node, {redis_us:.1} µs in Redis",
        kill.0, kill.1, drain.0, drain.1
    );
    Ok(Figures {
        match_one_per_s: match_one,
        match_three_per_s: match_three,
        kill_ms: kill,
        drain_gap_ms: drain,
        drain_refusals: refusals,
        directory_us_per_room_s: directory_us,
        redis_us_per_room_s: redis_us,
    })
}

/// One secret for every node of the run (tokens are good on any node).
fn bench_secret() -> Vec<u8> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("cluster-bench-{nanos:032x}-{}", std::process::id()).into_bytes()
}

/// A node (cluster mode with `redis`, else a single node) named `id`, not pinned,
/// trusting `secret`.
fn node(bench: &Bench, secret: &[u8], redis: Option<&str>, id: &str) -> anyhow::Result<GameServer> {
    let extra = match redis {
        Some(url) => vec![
            "--node-id".to_owned(),
            id.to_owned(),
            "--redis-url".to_owned(),
            url.to_owned(),
        ],
        None => Vec::new(),
    };
    bench.start_node(id, secret, &extra)
}

/// Waits until `observer`'s `/admin/cluster` lists `n` nodes.
async fn wait_registered(observer: &GameServer, n: usize) -> anyhow::Result<()> {
    let admin = Endpoint::plain(observer.proc.admin.context("a node has an admin port")?);
    for _ in 0..200 {
        if let Ok(view) = admin.get_json::<serde_json::Value>("/admin/cluster").await
            && view["directory"]["nodes"]
                .as_array()
                .is_some_and(|a| a.len() >= n)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the nodes did not register within 10 s")
}

fn request(token: &str) -> Request {
    Request::new([Subprotocol::V1MsgPack]).token(token, TokenIn::Header)
}

/// `/match` answers per second from [`ASKERS`] accounts asking in a loop, spread over
/// `nodes`.
async fn match_rate(nodes: &[SocketAddr], tokens: &[String], window: Duration) -> f64 {
    let until = Instant::now() + window;
    let tasks: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let endpoint = Endpoint::plain(nodes[i % nodes.len()]);
            let request = request(token);
            tokio::spawn(async move {
                let mut ok = 0u64;
                while Instant::now() < until {
                    ok += u64::from(endpoint.find_match(&request).await.is_ok());
                }
                ok
            })
        })
        .collect();
    let mut answers = 0;
    for t in tasks {
        answers += t.await.unwrap_or(0);
    }
    answers as f64 / window.as_secs_f64()
}

/// Joins at `at` (a node's `/play?room=`) as account `token`.
async fn join(at: &Endpoint, token: &str) -> anyhow::Result<Session> {
    Ok(at.join(&request(token)).await?)
}

/// Reads `session` until it ends or `stop` is set; returns it for an orderly close.
async fn hold(mut session: Session, mut stop: watch::Receiver<bool>) -> Session {
    loop {
        tokio::select! {
            r = session.recv() => if !matches!(r, Ok(Received::Message(_))) { return session },
            _ = stop.wait_for(|s| *s) => return session,
        }
    }
}

/// Process CPU over `window` in µs, for each pid.
async fn cpu_us(pids: &[u32], window: Duration) -> anyhow::Result<Vec<f64>> {
    let per_tick = 1e6 / crate::sys::clock_ticks_per_second();
    let before: Vec<u64> = pids
        .iter()
        .map(|p| procfs::process_ticks(*p))
        .collect::<Result<_, _>>()?;
    tokio::time::sleep(window).await;
    pids.iter()
        .zip(before)
        .map(|(p, b)| Ok((procfs::process_ticks(*p)? - b) as f64 * per_tick))
        .collect()
}

/// [`ROOMS`] rooms of one player on a single node, then on a cluster node: the node's
/// extra CPU and Redis' CPU, per room per second (µs).
async fn directory_cost(
    bench: &Bench,
    redis: &Redis,
    secret: &[u8],
    window: Duration,
) -> anyhow::Result<(f64, f64)> {
    let tokens = Signer::hs256(secret).mint_many("room", ROOMS)?;
    let mut costs = Vec::new();
    for cluster in [false, true] {
        let url = redis.url();
        let server = node(bench, secret, cluster.then_some(url.as_str()), "c1")?;
        if cluster {
            wait_registered(&server, 1).await?;
        }
        let (stop_tx, stop) = watch::channel(false);
        let mut held = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            let play = format!("ws://{}/play?room=c{i}", server.proc.game);
            let at = Endpoint::resolve(&play, &Trust::WebPkiRoots).await?;
            let session = join(&at, token)
                .await
                .with_context(|| format!("a player of room c{i} (cluster: {cluster})"))?;
            held.push(tokio::spawn(hold(session, stop.clone())));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let cpu = cpu_us(&[server.proc.pid, redis.child.id()], window).await?;
        costs.push(cpu);
        let _ = stop_tx.send(true);
        for h in held {
            if let Ok(mut s) = h.await {
                let _ = tokio::time::timeout(Duration::from_secs(1), s.close(1000, "done")).await;
            }
        }
    }
    let per = |us: f64| us / ROOMS as f64 / window.as_secs_f64();
    Ok((per(costs[1][0] - costs[0][0]), per(costs[1][1])))
}

/// [`PLAYERS`] players in two rooms of `nodes[0]`, which is then killed (-9): each asks
/// `/match` on the other nodes at once until it is back, resumed. p50 and p99, ms.
async fn kill_to_resume(
    nodes: &mut Vec<GameServer>,
    signer: &Signer,
) -> anyhow::Result<(f64, f64)> {
    let tokens = signer.mint_many("killed", PLAYERS)?;
    let survivors: Vec<SocketAddr> = nodes[1..].iter().map(|n| n.proc.game).collect();
    let mut tasks = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let play = format!("ws://{}/play?room=k{}", nodes[0].proc.game, i % 2);
        let at = Endpoint::resolve(&play, &Trust::WebPkiRoots).await?;
        let session = join(&at, &token)
            .await
            .with_context(|| format!("player {i} of the node to kill"))?;
        let ask = Endpoint::plain(survivors[i % survivors.len()]);
        tasks.push(tokio::spawn(async move {
            let (_never, stop) = watch::channel(false);
            drop(hold(session, stop).await);
            back_through_match(&ask, &token).await
        }));
    }
    // Every room has written a checkpoint (at least one a second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = Instant::now();
    drop(nodes.remove(0));
    let mut times = Vec::new();
    for t in tasks {
        let back = t.await.context("a player task")??;
        times.push(back.duration_since(killed));
    }
    Ok(percentiles(times))
}

/// Asks `/match` and joins where it says until the player is back, resumed (at most 30
/// s); the instant it was.
async fn back_through_match(ask: &Endpoint, token: &str) -> anyhow::Result<Instant> {
    let request = request(token);
    let give_up = Instant::now() + Duration::from_secs(30);
    while Instant::now() < give_up {
        if let Ok(found) = ask.find_match(&request).await
            && let Ok(at) = ask.elsewhere(&found.url).await
            && let Ok(session) = at.join(&request).await
            && session.welcome().is_some_and(|w| w.resumed)
        {
            return Ok(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("a player of the killed node was not back within 30 s")
}

/// [`PLAYERS`] players in two rooms of `nodes[0]`, which is then drained (SIGTERM): for
/// each, last snapshot before `moved` to first snapshot on the new node. p50, p99 in ms.
async fn drain_gap(nodes: &[GameServer], signer: &Signer) -> anyhow::Result<((f64, f64), u64)> {
    let tokens = signer.mint_many("drained", PLAYERS)?;
    let mut tasks = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let play = format!("ws://{}/play?room=d{}", nodes[0].proc.game, i % 2);
        let at = Endpoint::resolve(&play, &Trust::WebPkiRoots).await?;
        let session = join(&at, &token)
            .await
            .with_context(|| format!("player {i} of the node to drain"))?;
        let at = at.clone();
        tasks.push(tokio::spawn(async move {
            moved_gap(session, &at, &token).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(nodes[0].proc.pid.to_string())
        .status()?;
    if !status.success() {
        bail!("kill -TERM failed");
    }
    let (mut gaps, mut refusals) = (Vec::new(), 0);
    for t in tasks {
        let (gap, refused) = t.await.context("a player task")??;
        gaps.push(gap);
        refusals += refused;
    }
    Ok((percentiles(gaps), refusals))
}

/// Reads until `moved` and the close, joins the `moved` URL and reads its first
/// snapshot: the time between the last snapshot before and that one, and how many
/// joins there were refused first.
async fn moved_gap(
    mut session: Session,
    from: &Endpoint,
    token: &str,
) -> anyhow::Result<(Duration, u64)> {
    let mut last = Instant::now();
    let mut to = None;
    while let Ok(Received::Message(m)) =
        tokio::time::timeout(Duration::from_secs(30), session.recv()).await?
    {
        match m.kind() {
            Kind::Snap => last = Instant::now(),
            Kind::Moved => {
                if let Ok(ServerMessage::Moved(m)) = m.decode() {
                    to = Some(m.url);
                }
            }
            _ => {}
        }
    }
    let url = to.context("the drained node sent no `moved`")?;
    let there = from.elsewhere(&url).await?;
    let give_up = Instant::now() + Duration::from_secs(10);
    // A refusal (the room still opening there) is retried as a client would.
    let mut refused = 0;
    let mut moved = loop {
        match join(&there, token).await {
            Ok(s) => break s,
            Err(e) if Instant::now() > give_up => return Err(e.context("joining where moved")),
            Err(_) => refused += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    loop {
        match tokio::time::timeout(Duration::from_secs(10), moved.recv()).await? {
            Ok(Received::Message(m)) if m.kind() == Kind::Snap => {
                return Ok((last.elapsed(), refused));
            }
            Ok(Received::Message(_)) => {}
            other => bail!("the moved session ended first: {other:?}"),
        }
    }
}

/// p50 and p99 of `times`, in ms.
fn percentiles(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    (at(0.5), at(0.99))
}

/// The summary table of several runs.
pub fn summary(runs: &[Figures]) {
    summary_head(
        "cluster (three nodes and redis-server on one machine, not pinned)",
        runs.len(),
        &["figure", "value"],
    );
    let row = |name: &str, f: &dyn Fn(&Figures) -> f64, decimals: usize| {
        let spread = Spread::of(runs.iter().map(f));
        println!("  | {name} | {} |", spread.show(decimals));
    };
    row("/match per s, one node", &|f| f.match_one_per_s, 0);
    row("/match per s, three nodes", &|f| f.match_three_per_s, 0);
    row("kill -9 to resumed p50, ms", &|f| f.kill_ms.0, 0);
    row("kill -9 to resumed p99, ms", &|f| f.kill_ms.1, 0);
    row("drain: no snapshots p50, ms", &|f| f.drain_gap_ms.0, 0);
    row("drain: no snapshots p99, ms", &|f| f.drain_gap_ms.1, 0);
    row(
        "drain: joins refused first",
        &|f| f.drain_refusals as f64,
        0,
    );
    row(
        "directory CPU per room per s, µs (node)",
        &|f| f.directory_us_per_room_s,
        1,
    );
    row(
        "directory CPU per room per s, µs (Redis)",
        &|f| f.redis_us_per_room_s,
        1,
    );
}
