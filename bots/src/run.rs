//! A whole run: resolve the target, place the bots, ramp them up, report progress, stop
//! them at the end (or on request), wait for their final acks and closes, and build the
//! [`Report`].
//!
//! Bots are tasks on whatever tokio runtime calls [`run_with`] (the CLI builds a
//! single-threaded one by default). The run is bounded: after the duration (or the stop
//! signal), bots get `final_ack_wait` plus a few seconds to close; any still running then
//! are aborted and counted as `unfinished`. With an admin address, a sampler task reads
//! the server's `/metrics` through the run and once more after the bots have closed.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::bot::{self, Plan, Role, Shared};
use crate::config::{AbuseMode, Auth, Config, ConfigError, Rooms};
use crate::delay::Relays;
use crate::net;
use crate::progress::Progress;
use crate::report::{self, AbuseConfig, Report, RunConfig, RunFacts};
use crate::server_stats::{self, Sampler};
use crate::stats::{Aggregate, Group};
use rallypoint_client::{EndpointError, HttpError};
use rallypoint_protocol::rng::SplitMix64 as Rng;

/// Mixed into the run's seed for the relay's jitter, so `--latency` leaves every other
/// random choice of a seeded run as it was.
const RELAY_SEED: u64 = 0x6a69_7474_6572_0001;

/// Time after the final-ack wait for closing handshakes and slow-reader drains.
const END_SLACK: Duration = Duration::from_secs(4);
/// Wait between the bots' end and the last admin sample, so the server has processed
/// their closes.
const FINAL_SAMPLE_DELAY: Duration = Duration::from_millis(500);

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The target URL, its address or TLS setup is unusable.
    #[error(transparent)]
    Target(#[from] EndpointError),
    /// No flag chose a token source and the server does not hand out dev tokens.
    #[error(
        "no --secret-file or --tokens-file, and the server's /dev/token is not usable ({0}); \
         dev tokens only exist on a dev-mode server reached over loopback"
    )]
    DevToken(HttpError),
    /// The admin address does not resolve.
    #[error("--admin {0}: {1}")]
    Admin(String, String),
    /// The server could not be reached at all before the run (only checked when dev
    /// tokens are needed).
    #[error("cannot reach the server: {0}")]
    Unreachable(HttpError),
    /// The delaying relay of `--latency` could not listen on the loopback.
    #[error("--latency relay: {0}")]
    Relay(#[source] std::io::Error),
}

/// Runs a load test to the end of its duration and returns the report.
pub async fn run(config: Config) -> Result<Report, RunError> {
    run_with(config, std::future::pending(), |_| {}).await
}

/// Runs a load test; `stop` ends it early (the report says `interrupted`), and
/// `on_progress` is called every `progress_interval` with the run's state.
pub async fn run_with(
    config: Config,
    stop: impl Future<Output = ()>,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Report, RunError> {
    config.validate()?;
    let seed = config.seed.unwrap_or_else(clock_seed);
    let mut rng = Rng::new(seed);
    let run_id = rng.next_u64() as u32;
    let target = net::target(&config.url, &config.tls, config.connect_timeout).await?;
    // Kept to the end of the run (in `Shared`): dropping them ends the connections they
    // carry.
    let relays = config
        .latency
        .map(|latency| Relays::new(latency, seed ^ RELAY_SEED));
    let target = match &relays {
        Some(relays) => relays.via(target).await.map_err(RunError::Relay)?,
        None => target,
    };
    if let Auth::DevToken = config.auth {
        // Fail fast with one clear error instead of one per bot.
        let probe = format!("{}-{run_id:08x}-probe", config.sub_prefix);
        target
            .dev_token(&probe, "probe")
            .await
            .map_err(|e| match e {
                HttpError::Io(_) | HttpError::Timeout(_) => RunError::Unreachable(e),
                other => RunError::DevToken(other),
            })?;
    }
    let admin = match &config.admin {
        Some(a) => Some(resolve_admin(a).await?),
        None => None,
    };
    let roles = assign_roles(config.bots, &config, &mut rng);
    let mut mode_bots: BTreeMap<AbuseMode, u64> = BTreeMap::new();
    for role in &roles {
        if let Role::Abuser(m) = role {
            *mode_bots.entry(*m).or_default() += 1;
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let cpu_start = crate::sys::usage();
    let started = Instant::now();
    let end_at = started + config.duration;
    let mut aggregate = Aggregate::default();
    for role in &roles {
        aggregate.group(role.group()).bots += 1;
    }
    for (mode, n) in &mode_bots {
        aggregate
            .group(Group::Abusive)
            .modes
            .entry(*mode)
            .or_default()
            .bots = *n;
    }
    let shared = Arc::new(Shared {
        target,
        relays,
        protocol: config.protocol,
        auth: config.auth.clone(),
        // Valid through the run, the end phase and some slack for clock skew.
        token_ttl: config.duration + Duration::from_secs(600),
        behavior: config.behavior,
        churn_per_s: config.churn_pct_per_s / 100.0,
        matchmaking: config.matchmaking,
        // Room for the last hand-off (coming to rest, the pause, the resumed snapshot) or
        // the last abuser's cut-off: 30 % of the run, at most 5 s.
        churn_until: end_at
            .checked_sub((config.duration.mul_f64(0.3)).min(Duration::from_secs(5)))
            .unwrap_or(started),
        // Slow readers take the send timeout plus buffer filling to be caught.
        slow_reading_until: end_at
            .checked_sub((config.duration / 2).min(Duration::from_secs(25)))
            .unwrap_or(started),
        abusers_return: config.abusers_return,
        abuse_after: config.abuse_after,
        oversize_bytes: config.oversize_bytes,
        connect_timeout: config.connect_timeout,
        final_ack_wait: config.final_ack_wait,
        stop: false.into(),
        stop_rx,
        stats: std::sync::Mutex::new(aggregate),
    });
    let sampler = admin.map(|addr| {
        let sampler = Sampler::new(addr, started);
        let task = tokio::spawn(sampler.clone().run(config.sample_every));
        (sampler, task)
    });
    let mut tasks = JoinSet::new();
    for (index, role) in roles.into_iter().enumerate() {
        let plan = Plan {
            index,
            sub: format!("{}-{run_id:08x}-{index}", config.sub_prefix),
            name: format!("bot-{index}"),
            room: config.rooms.for_bot(index),
            role,
            start_at: started + Duration::from_secs_f64(index as f64 / config.ramp_per_s),
            seed: rng.fork(),
        };
        tasks.spawn(bot::run(plan, Arc::clone(&shared)));
    }

    let mut meter = Meter::new(started, config.bots);
    let mut ticker = tokio::time::interval(config.progress_interval);
    ticker.tick().await;
    tokio::pin!(stop);
    let interrupted = loop {
        tokio::select! {
            () = &mut stop => break true,
            () = tokio::time::sleep_until(end_at) => break false,
            _ = ticker.tick() => on_progress(&meter.sample(&shared, false)),
        }
    };
    let connected_at_end = shared.with_stats(|s| [s.groups[0].connected, s.groups[1].connected]);
    shared.stop.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + config.final_ack_wait + END_SLACK;
    loop {
        tokio::select! {
            joined = tasks.join_next() => if joined.is_none() { break },
            () = tokio::time::sleep_until(deadline) => break,
            _ = ticker.tick() => on_progress(&meter.sample(&shared, true)),
        }
    }
    let unfinished = tasks.len() as u64;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let server = match sampler {
        Some((sampler, task)) => {
            task.abort();
            // The last sample after the server has seen the bots' closes.
            tokio::time::sleep(FINAL_SAMPLE_DELAY).await;
            sampler.sample().await;
            let (samples, failures) = sampler.take();
            Some(server_stats::summarize(
                config.admin.clone().unwrap_or_default(),
                config.sample_every,
                config.warmup(),
                samples,
                failures,
            ))
        }
        None => None,
    };
    let cpu_end = crate::sys::usage();
    let cpu = crate::sys::Usage {
        user: cpu_end.user.saturating_sub(cpu_start.user),
        sys: cpu_end.sys.saturating_sub(cpu_start.sys),
        max_rss_kib: cpu_end.max_rss_kib,
    };
    let facts = RunFacts {
        config: run_config(&config, seed, &mode_bots),
        interrupted,
        duration_s: config.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        connected_at_end,
        unfinished,
        cpu,
        mode_bots,
        server,
    };
    Ok(shared.with_stats(|s| report::build(&s.groups, facts)))
}

/// Resolves `--admin` (`HOST:PORT`) to its first address.
async fn resolve_admin(admin: &str) -> Result<SocketAddr, RunError> {
    let fail = |why: String| RunError::Admin(admin.to_owned(), why);
    let mut addrs = tokio::net::lookup_host(admin)
        .await
        .map_err(|e| fail(format!("{e} (expected HOST:PORT)")))?;
    addrs
        .next()
        .ok_or_else(|| fail("resolves to no address".into()))
}

/// Which bots abuse and how: `round(fraction × bots)` per mode (at least one for a
/// positive fraction), at random positions so abusers share rooms with everyone else.
fn assign_roles(bots: usize, config: &Config, rng: &mut Rng) -> Vec<Role> {
    let mut roles = vec![Role::WellBehaved; bots];
    let mut order: Vec<usize> = (0..bots).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut next = 0;
    for spec in &config.abuse {
        let n = ((spec.fraction * bots as f64).round() as usize)
            .max(1)
            .min(bots - next);
        for &slot in &order[next..next + n] {
            roles[slot] = Role::Abuser(spec.mode);
        }
        next += n;
    }
    roles
}

fn run_config(c: &Config, seed: u64, mode_bots: &BTreeMap<AbuseMode, u64>) -> RunConfig {
    RunConfig {
        url: c.url.clone(),
        bots: c.bots as u64,
        ramp_per_s: c.ramp_per_s,
        behavior: c.behavior.as_str().into(),
        protocol: c.protocol.name().into(),
        rooms: match &c.rooms {
            Rooms::Auto => "auto".into(),
            Rooms::Named(n) => format!("room:{n}"),
            Rooms::Spread(n) => format!("spread:{n}"),
        },
        auth: match c.auth {
            Auth::Mint(_) => "secret".into(),
            Auth::Tokens(_) => "tokens".into(),
            Auth::DevToken => "dev".into(),
        },
        churn_pct_per_s: c.churn_pct_per_s,
        matchmaking: c.matchmaking,
        abuse: c
            .abuse
            .iter()
            .map(|a| AbuseConfig {
                mode: a.mode.as_str().into(),
                fraction: a.fraction,
                bots: mode_bots.get(&a.mode).copied().unwrap_or(0),
            })
            .collect(),
        threads: c.threads as u64,
        seed,
    }
}

fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Turns aggregate totals into per-interval progress.
struct Meter {
    started: Instant,
    target: usize,
    last_at: Instant,
    last: (u64, u64, u64),
}

impl Meter {
    fn new(started: Instant, target: usize) -> Meter {
        Meter {
            started,
            target,
            last_at: started,
            last: (0, 0, 0),
        }
    }

    fn sample(&mut self, shared: &Shared, finishing: bool) -> Progress {
        let now = Instant::now();
        let secs = now.duration_since(self.last_at).as_secs_f64().max(1e-3);
        self.last_at = now;
        let p99 = |h: &mut hdrhistogram::Histogram<u64>| {
            let v = (!h.is_empty()).then(|| h.value_at_quantile(0.99) as f64 / 1000.0);
            h.reset();
            v
        };
        shared.with_stats(|s| {
            let [wb, ab] = &s.groups;
            let totals = (
                wb.c.snapshots + ab.c.snapshots,
                wb.c.bytes_in + ab.c.bytes_in,
                wb.c.messages_out + ab.c.messages_out,
            );
            let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 / secs;
            let progress = Progress {
                elapsed: now.duration_since(self.started),
                target: self.target,
                connected: wb.connected + ab.connected,
                failures: wb.failures.values().sum::<u64>() + ab.failures.values().sum::<u64>(),
                unexpected_closes: wb.unexpected_closes + ab.unexpected_closes,
                resumes: wb.resumes,
                cut_off: ab.modes.values().map(|m| m.cut_off).sum(),
                snapshots_per_s: rate(totals.0, self.last.0),
                bytes_in_per_s: rate(totals.1, self.last.1),
                messages_out_per_s: rate(totals.2, self.last.2),
                snapshots_total: totals.0,
                bytes_in_total: totals.1,
                messages_out_total: totals.2,
                rtt_p99_ms: p99(&mut s.window.rtt),
                ack_p99_ms: p99(&mut s.window.ack),
                jitter_p99_ms: p99(&mut s.window.jitter),
                finishing,
            };
            self.last = totals;
            progress
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AbuseSpec;

    #[test]
    fn abusers_are_placed_by_fraction() {
        let config = Config {
            bots: 20,
            abuse: vec![
                AbuseSpec {
                    mode: AbuseMode::Flood,
                    fraction: 0.1,
                },
                AbuseSpec {
                    mode: AbuseMode::Garbage,
                    fraction: 0.01,
                },
            ],
            ..Config::default()
        };
        let roles = assign_roles(20, &config, &mut Rng::new(1));
        let count = |r: Role| roles.iter().filter(|&&x| x == r).count();
        assert_eq!(count(Role::Abuser(AbuseMode::Flood)), 2);
        assert_eq!(count(Role::Abuser(AbuseMode::Garbage)), 1, "at least one");
        assert_eq!(count(Role::WellBehaved), 17);
    }
}
