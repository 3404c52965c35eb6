//! Network latency added inside the bots (`--latency`, `--jitter`): a TCP relay on the
//! loopback that every bot connection goes through, holding each chunk for half the round
//! trip ± half the jitter in each direction before passing it on.
//!
//! [`Schedule`] is the pure core (time is a parameter): when a chunk read at `now` is
//! released. Releases are monotonic, so a chunk never overtakes the one before it, as on a
//! TCP link. [`Relay`] does the I/O. Its buffering is bounded: at most [`QUEUED_CHUNKS`]
//! chunks of up to [`CHUNK`] bytes wait per direction; when that bound is hit the relay
//! stops reading that side, and TCP flow control pushes back on the sender, as a full
//! link would (nothing is dropped).
//!
//! [`Relays`] keeps one relay per server address, so bots sent to other nodes (`--match`,
//! 421, `moved`) are delayed too.
//!
//! Must not reorder, drop or alter bytes; must not outlive the run (dropping the [`Relay`]
//! ends every connection it carries).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rallypoint_client::Endpoint;
use rallypoint_protocol::rng::SplitMix64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

/// Largest chunk read at once, bytes.
pub const CHUNK: usize = 16 * 1024;
/// Chunks held per direction and connection (at most 1 MiB at [`CHUNK`] bytes each).
pub const QUEUED_CHUNKS: usize = 64;

/// Added latency: the round trip and its jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Round trip added: half of it each way.
    pub rtt: Duration,
    /// Full width of the jitter: each way is delayed `rtt/2 ± jitter/2`.
    pub jitter: Duration,
}

impl Latency {
    /// Why this latency cannot be applied, if it cannot (a one-way delay below zero).
    pub fn invalid(&self) -> Option<String> {
        (self.jitter > self.rtt).then(|| {
            format!(
                "--jitter ({:?}) must not exceed --latency ({:?}): a one-way delay cannot be negative",
                self.jitter, self.rtt
            )
        })
    }
}

/// When each chunk of one direction of one connection is released.
#[derive(Debug, Clone)]
pub struct Schedule {
    one_way: Duration,
    jitter: Duration,
    rng: SplitMix64,
    last: Option<Instant>,
}

impl Schedule {
    /// A schedule for one direction, its jitter drawn from `seed`.
    pub fn new(latency: Latency, seed: u64) -> Schedule {
        Schedule {
            one_way: latency.rtt / 2,
            jitter: latency.jitter,
            rng: SplitMix64::new(seed),
            last: None,
        }
    }

    /// The release time of a chunk read at `now`: `now + rtt/2 ± jitter/2`, but never
    /// before the previous chunk's release.
    pub fn release(&mut self, now: Instant) -> Instant {
        let half_jitter = self.jitter.as_secs_f64() / 2.0;
        let delay = self.one_way.as_secs_f64() + self.rng.range(-half_jitter, half_jitter);
        let at = now + Duration::from_secs_f64(delay.max(0.0));
        let at = self.last.map_or(at, |last| at.max(last));
        self.last = Some(at);
        at
    }
}

/// The relay: listens on the loopback, connects each accepted connection to the server.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Relay {
    /// Starts a relay to `upstream`; jitter is drawn from `seed` (one stream per
    /// connection and direction).
    pub async fn start(
        upstream: SocketAddr,
        latency: Latency,
        seed: u64,
    ) -> std::io::Result<Relay> {
        let bind: SocketAddr = if upstream.is_ipv6() {
            "[::1]:0".parse().expect("literal address")
        } else {
            "127.0.0.1:0".parse().expect("literal address")
        };
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(accept_loop(listener, upstream, latency, seed));
        Ok(Relay { addr, task })
    }

    /// Where the bots connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// One [`Relay`] per server address a run reaches (the target, and with `--match` every
/// node `/match`, a 421 or `moved` names), started on first use and kept to the end of
/// the run. As many relays as nodes: bounded by the cluster's size.
#[derive(Debug)]
pub struct Relays {
    latency: Latency,
    seed: u64,
    by_upstream: tokio::sync::Mutex<HashMap<SocketAddr, Relay>>,
}

impl Relays {
    /// No relay yet; each one draws its jitter from `seed` and its place in the order.
    pub fn new(latency: Latency, seed: u64) -> Relays {
        Relays {
            latency,
            seed,
            by_upstream: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// `endpoint`, reached through the relay to its address.
    pub async fn via(&self, endpoint: Endpoint) -> std::io::Result<Endpoint> {
        let upstream = endpoint.addr();
        let mut relays = self.by_upstream.lock().await;
        let relay = match relays.get(&upstream) {
            Some(relay) => relay,
            None => {
                let seed = self.seed.wrapping_add(relays.len() as u64);
                let relay = Relay::start(upstream, self.latency, seed).await?;
                relays.entry(upstream).or_insert(relay)
            }
        };
        Ok(endpoint.via(relay.addr()))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // The accept loop owns every connection's tasks: aborting it ends them all.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, latency: Latency, seed: u64) {
    let mut connections = JoinSet::new();
    let mut seeds = SplitMix64::new(seed);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((down, _)) = accepted else {
                    // Out of file descriptors, most likely: the bot's attempt times out.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let seeds = (seeds.next_u64(), seeds.next_u64());
                connections.spawn(carry(down, upstream, latency, seeds));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One connection, both directions; a failed upstream connect closes the bot's side
/// (the bot sees a reset or EOF, as with an unreachable server).
async fn carry(down: TcpStream, upstream: SocketAddr, latency: Latency, seeds: (u64, u64)) {
    let Ok(up) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = up.set_nodelay(true);
    let _ = down.set_nodelay(true);
    let (down_r, down_w) = down.into_split();
    let (up_r, up_w) = up.into_split();
    let to_server = pump(down_r, up_w, Schedule::new(latency, seeds.0));
    let to_bot = pump(up_r, down_w, Schedule::new(latency, seeds.1));
    tokio::join!(to_server, to_bot);
}

/// Reads chunks, stamps their release time and writes each once it is due. The writer
/// half-closes its side when the reader reached EOF and everything was delivered.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut schedule: Schedule) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUED_CHUNKS);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let at = schedule.release(Instant::now());
                    // A full queue waits here: nothing more is read from this side.
                    if tx.send((at, buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at.into()).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATENCY: Latency = Latency {
        rtt: Duration::from_millis(150),
        jitter: Duration::from_millis(10),
    };

    #[test]
    fn releases_keep_the_order_of_reads() {
        let start = Instant::now();
        let mut s = Schedule::new(LATENCY, 7);
        let mut last = start;
        // Chunks read 1 ms apart: the jitter (10 ms) would reorder them if not clamped.
        for i in 0..10_000u64 {
            let at = s.release(start + Duration::from_millis(i));
            assert!(at >= last, "chunk {i} released before the one before it");
            last = at;
        }
    }

    #[test]
    fn jitter_stays_within_half_its_width_each_way() {
        let start = Instant::now();
        let mut s = Schedule::new(LATENCY, 11);
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        // Reads 20 ms apart: no clamping, every delay is the drawn one.
        for i in 0..10_000u64 {
            let now = start + Duration::from_millis(20 * i);
            let d = s.release(now) - now;
            lo = lo.min(d);
            hi = hi.max(d);
        }
        assert!(lo >= Duration::from_millis(70), "{lo:?}");
        assert!(hi <= Duration::from_millis(80), "{hi:?}");
        // And the jitter is really there: both ends of the band are reached.
        assert!(lo < Duration::from_micros(70_500), "{lo:?}");
        assert!(hi > Duration::from_micros(79_500), "{hi:?}");
    }

    #[test]
    fn mean_delay_is_half_the_round_trip() {
        let start = Instant::now();
        let mut s = Schedule::new(LATENCY, 3);
        let n = 10_000u32;
        let total: Duration = (0..n)
            .map(|i| {
                let now = start + Duration::from_millis(20 * u64::from(i));
                s.release(now) - now
            })
            .sum();
        let mean = (total / n).as_secs_f64() * 1000.0;
        assert!((mean - 75.0).abs() < 0.2, "mean one-way delay {mean} ms");
    }

    #[test]
    fn no_jitter_is_a_fixed_delay_and_too_much_is_refused() {
        let start = Instant::now();
        let fixed = Latency {
            rtt: Duration::from_millis(40),
            jitter: Duration::ZERO,
        };
        let mut s = Schedule::new(fixed, 1);
        assert_eq!(s.release(start), start + Duration::from_millis(20));
        assert!(fixed.invalid().is_none());
        let wild = Latency {
            rtt: Duration::from_millis(10),
            jitter: Duration::from_millis(20),
        };
        assert!(wild.invalid().is_some());
    }

    #[test]
    fn the_flags_ask_for_a_latency_and_nothing_without_them() {
        let parse = |extra: &[&str]| {
            crate::cli::config_from_args(["rallypoint-bots"].iter().chain(extra).copied())
        };
        let c = parse(&["--latency", "150ms", "--jitter", "10ms"]).unwrap();
        assert_eq!(c.latency, Some(LATENCY));
        assert_eq!(parse(&[]).unwrap().latency, None);
        assert!(
            parse(&["--jitter", "10ms"]).is_err(),
            "jitter needs a latency"
        );
        assert!(parse(&["--latency", "10ms", "--jitter", "30ms"]).is_err());
    }

    #[tokio::test]
    async fn each_server_address_gets_one_relay() {
        let relays = Relays::new(LATENCY, 9);
        let a: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:7002".parse().unwrap();
        let via_a = relays.via(Endpoint::plain(a)).await.unwrap();
        let again = relays.via(Endpoint::plain(a)).await.unwrap();
        let via_b = relays.via(Endpoint::plain(b)).await.unwrap();
        assert_eq!(via_a.addr(), again.addr());
        assert_ne!(via_a.addr(), via_b.addr());
        assert!(via_a.addr().ip().is_loopback() && via_a.addr() != a);
        assert_eq!(via_a.url().port, 7001, "the URL stays the server's");
    }

    /// A server that stops reading stops the relay reading from the bot: what the relay
    /// and the kernel buffers hold stays bounded (its own queue is 64 × 16 KiB), and
    /// the bot's writes block, as on a full link. An unbounded queue would take all of
    /// the 256 MiB offered here.
    #[tokio::test]
    async fn a_server_that_stops_reading_pushes_back_on_the_bot() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = server.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let (s, _) = server.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        });
        let latency = Latency {
            rtt: Duration::from_millis(2),
            jitter: Duration::ZERO,
        };
        let relay = Relay::start(upstream, latency, 9).await.unwrap();
        let mut c = TcpStream::connect(relay.addr()).await.unwrap();
        let piece = vec![7u8; 64 * 1024];
        let mut accepted = 0usize;
        let blocked = loop {
            if accepted >= 256 << 20 {
                break false;
            }
            match tokio::time::timeout(Duration::from_millis(500), c.write_all(&piece)).await {
                Ok(Ok(())) => accepted += piece.len(),
                Ok(Err(e)) => panic!("write failed: {e}"),
                Err(_) => break true,
            }
        };
        assert!(
            blocked,
            "the bot wrote {accepted} bytes without being held back"
        );
        // The relay's queue (1 MiB) plus the socket buffers on the way: a few tens of MiB
        // at most with Linux's default autotuning limits.
        assert!(
            accepted < 64 << 20,
            "{accepted} bytes taken before the push-back"
        );
        held.abort();
    }

    #[tokio::test]
    async fn the_relay_delays_both_ways_and_keeps_bytes_in_order() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = server.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = server.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => s.write_all(&buf[..n]).await.unwrap(),
                }
            }
        });
        let latency = Latency {
            rtt: Duration::from_millis(60),
            jitter: Duration::from_millis(10),
        };
        let relay = Relay::start(upstream, latency, 5).await.unwrap();
        let mut c = TcpStream::connect(relay.addr()).await.unwrap();
        let sent: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let started = Instant::now();
        for piece in sent.chunks(1000) {
            c.write_all(piece).await.unwrap();
        }
        let mut got = vec![0u8; sent.len()];
        c.read_exact(&mut got).await.unwrap();
        let elapsed = started.elapsed();
        assert_eq!(got, sent);
        assert!(
            elapsed >= Duration::from_millis(50),
            "echo came back in {elapsed:?}"
        );
    }
}
