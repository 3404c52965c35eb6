//! Admission control at the edge: how many connections may be open (globally and per
//! IP), how fast one IP may open them, and how many may be handshaking at once (globally
//! and per IP, counted at accept time, before a byte is read).
//!
//! Checks are O(1) and hold a lock only for a map update. Every admitted connection holds
//! a [`ConnectionSlot`] for its whole life and every handshake a [`PendingHandshake`];
//! dropping either gives it back, so counts cannot leak whatever path a connection ends
//! by.
//!
//! Time comes from a governor [`Clock`]: the system's in the server, a fake one that the
//! tests advance by hand, so a test of the handshake rate and its recovery never sleeps.
//!
//! Must not do IO; callers turn a [`Refusal`] into an HTTP response.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota as GovernorQuota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Limits, Quota};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The global connection cap is reached: 503 `server_full`.
    ServerFull,
    /// This IP has too many open connections: 429 `too_many_connections`.
    TooManyConnections,
    /// This IP opens connections too fast: 429 `too_many_handshakes`, retry after this.
    TooManyHandshakes(Duration),
}

/// Why a socket was refused at accept time, unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    /// Every pending-handshake slot is taken: 503 `server_busy`.
    #[error("too many handshakes in progress")]
    Server,
    /// This address holds its share of the pool: 429 `too_many_pending`.
    #[error("too many handshakes in progress from this address")]
    Address,
}

type KeyedLimiter<C> =
    RateLimiter<IpAddr, HashMapStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Connection accounting shared by every accept loop.
#[derive(Debug)]
pub struct Admission<C: Clock = DefaultClock> {
    max_connections: usize,
    max_per_ip: usize,
    /// Loopback peers skip the per-IP checks (dev mode: bots and browsers on one machine).
    exempt_loopback: bool,
    counts: Mutex<Counts>,
    handshakes: KeyedLimiter<C>,
    pending: Arc<Semaphore>,
    max_pending_per_ip: usize,
    /// Handshakes in progress per peer address (entries removed at zero).
    pending_per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Peers exempt from the per-IP pending cap: trusted proxies, whose clients all share
    /// the proxy's address until their request head names them.
    proxies: Vec<IpAddr>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A held connection slot; dropping it releases the slot.
#[derive(Debug)]
pub struct ConnectionSlot<C: Clock = DefaultClock> {
    admission: Arc<Admission<C>>,
    ip: IpAddr,
}

impl<C: Clock> Drop for ConnectionSlot<C> {
    fn drop(&mut self) {
        let mut c = self
            .admission
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A handshake in progress; dropping it frees its place in the pool and its address's
/// share.
#[derive(Debug)]
pub struct PendingHandshake<C: Clock = DefaultClock> {
    _permit: OwnedSemaphorePermit,
    /// The address charged, `None` when exempt.
    charged: Option<(Arc<Admission<C>>, IpAddr)>,
}

impl<C: Clock> Drop for PendingHandshake<C> {
    fn drop(&mut self) {
        if let Some((admission, ip)) = self.charged.take() {
            let mut map = admission
                .pending_per_ip
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

fn governor_quota(q: Quota) -> GovernorQuota {
    let rate = NonZeroU32::new(q.per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(q.burst).unwrap_or(NonZeroU32::MIN);
    GovernorQuota::per_second(rate).allow_burst(burst)
}

impl Admission {
    /// Accounting for the given limits on the system clock. `exempt_loopback` (dev mode)
    /// lifts the per-IP limits for loopback peers; `proxies` are exempt from the per-IP
    /// pending cap.
    pub fn new(limits: &Limits, exempt_loopback: bool, proxies: &[IpAddr]) -> Arc<Admission> {
        Admission::with_clock(limits, exempt_loopback, proxies, DefaultClock::default())
    }
}

impl<C: Clock> Admission<C> {
    /// [`Admission::new`] on `clock`.
    pub fn with_clock(
        limits: &Limits,
        exempt_loopback: bool,
        proxies: &[IpAddr],
        clock: C,
    ) -> Arc<Admission<C>> {
        Arc::new(Admission {
            max_connections: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            exempt_loopback,
            counts: Mutex::new(Counts::default()),
            handshakes: RateLimiter::new(
                governor_quota(limits.handshakes_per_ip),
                HashMapStateStore::default(),
                clock,
            ),
            pending: Arc::new(Semaphore::new(limits.max_pending_handshakes)),
            max_pending_per_ip: limits.max_pending_handshakes_per_ip,
            pending_per_ip: Mutex::new(HashMap::new()),
            proxies: proxies.to_vec(),
        })
    }

    /// A place in the handshake pool for a socket from `peer`, if the pool and the
    /// address's share of it have room. Taken at accept time, before anything is read, so
    /// idle sockets from one address cannot hold more than their share.
    pub fn begin_handshake(self: &Arc<Self>, peer: IpAddr) -> Result<PendingHandshake<C>, Busy> {
        let permit = Arc::clone(&self.pending)
            .try_acquire_owned()
            .map_err(|_| Busy::Server)?;
        let exempt = (self.exempt_loopback && peer.is_loopback()) || self.proxies.contains(&peer);
        if !exempt {
            let mut map = self
                .pending_per_ip
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let n = map.entry(peer).or_insert(0);
            if *n >= self.max_pending_per_ip {
                return Err(Busy::Address);
            }
            *n += 1;
        }
        Ok(PendingHandshake {
            _permit: permit,
            charged: (!exempt).then(|| (Arc::clone(self), peer)),
        })
    }

    /// Admits a connection from `ip`, or says why not. `handshake` charges the per-IP
    /// handshake rate: true for game sessions and tokens, false for the browser client's
    /// static files (a page load is a dozen requests; they still count towards the
    /// connection caps).
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        handshake: bool,
    ) -> Result<ConnectionSlot<C>, Refusal> {
        let exempt = self.exempt_loopback && ip.is_loopback();
        if handshake
            && !exempt
            && let Err(not_until) = self.handshakes.check_key(&ip)
        {
            return Err(Refusal::TooManyHandshakes(
                not_until.wait_time_from(self.handshakes.clock().now()),
            ));
        }
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if c.total >= self.max_connections {
            return Err(Refusal::ServerFull);
        }
        let per_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
        if !exempt && per_ip >= self.max_per_ip {
            return Err(Refusal::TooManyConnections);
        }
        c.total += 1;
        *c.per_ip.entry(ip).or_insert(0) += 1;
        Ok(ConnectionSlot {
            admission: Arc::clone(self),
            ip,
        })
    }

    /// [`Admission::admit`] for a game session.
    #[cfg(test)]
    fn admit_session(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot<C>, Refusal> {
        self.admit(ip, true)
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// Forgets rate-limit state of IPs that have been quiet long enough to be back at full
    /// burst, so the map does not grow with every address ever seen. Call periodically.
    pub fn forget_quiet_ips(&self) {
        self.handshakes.retain_recent();
        self.handshakes.shrink_to_fit();
    }

    /// IPs with rate-limit state (for tests and metrics).
    pub fn tracked_ips(&self) -> usize {
        self.handshakes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 3,
            max_connections_per_ip: 2,
            handshakes_per_ip: Quota {
                per_second: 1,
                burst: 5,
            },
            max_pending_handshakes: 2,
            max_pending_handshakes_per_ip: 1,
            ..Limits::default()
        }
    }

    #[test]
    fn caps_are_enforced_and_released() {
        let a = Admission::new(&limits(), false, &[]);
        let ip1: IpAddr = "10.0.0.1".parse().unwrap();
        let ip2: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = a.admit_session(ip1).unwrap();
        let _s2 = a.admit_session(ip1).unwrap();
        assert_eq!(
            a.admit_session(ip1).unwrap_err(),
            Refusal::TooManyConnections
        );
        let _s3 = a.admit_session(ip2).unwrap();
        assert_eq!(a.admit_session(ip2).unwrap_err(), Refusal::ServerFull);
        drop(s1);
        assert_eq!(a.open(), 2);
        let _s4 = a.admit_session(ip2).unwrap();
    }

    #[test]
    fn handshake_rate_is_per_ip() {
        let a = Admission::new(
            &Limits {
                max_connections_per_ip: 100,
                max_connections: 100,
                ..limits()
            },
            false,
            &[],
        );
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let slots: Vec<_> = (0..5).map(|_| a.admit_session(ip).unwrap()).collect();
        match a.admit_session(ip) {
            Err(Refusal::TooManyHandshakes(wait)) => assert!(wait <= Duration::from_secs(1)),
            other => panic!("{other:?}"),
        }
        assert!(a.admit_session("10.0.0.10".parse().unwrap()).is_ok());
        // Static files are not handshakes.
        assert!(a.admit(ip, false).is_ok());
        drop(slots);
    }

    /// The rate refills at its quota (1 a second here) on the admission's own clock, and
    /// an address quiet for long enough is forgotten: virtual time, no sleeping.
    #[test]
    fn the_handshake_rate_refills_with_time_and_quiet_addresses_are_forgotten() {
        let clock = governor::clock::FakeRelativeClock::default();
        let roomy = Limits {
            max_connections_per_ip: 100,
            max_connections: 100,
            ..limits()
        };
        let a = Admission::with_clock(&roomy, false, &[], clock.clone());
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let burst: Vec<_> = (0..5).map(|_| a.admit_session(ip).unwrap()).collect();
        match a.admit_session(ip) {
            Err(Refusal::TooManyHandshakes(wait)) => assert_eq!(wait, Duration::from_secs(1)),
            other => panic!("{other:?}"),
        }
        clock.advance(Duration::from_millis(400));
        match a.admit_session(ip) {
            Err(Refusal::TooManyHandshakes(wait)) => {
                assert_eq!(wait, Duration::from_millis(600), "told how long is left")
            }
            other => panic!("{other:?}"),
        }
        clock.advance(Duration::from_millis(600));
        let one = a.admit_session(ip).expect("one more after a second");
        assert!(a.admit_session(ip).is_err(), "and only one");
        assert_eq!(a.tracked_ips(), 1);
        a.forget_quiet_ips();
        assert_eq!(a.tracked_ips(), 1, "not quiet yet");
        // The burst of 5 is whole again 5 s after the last handshake; governor forgets an
        // address one period (1 s) after that.
        clock.advance(Duration::from_secs(5));
        a.forget_quiet_ips();
        assert_eq!(a.tracked_ips(), 1, "only just whole again");
        clock.advance(Duration::from_secs(1));
        a.forget_quiet_ips();
        assert_eq!(a.tracked_ips(), 0, "quiet for long enough: forgotten");
        let again: Vec<_> = (0..5).map(|_| a.admit_session(ip).unwrap()).collect();
        drop((burst, one, again));
    }

    #[test]
    fn loopback_exemption_is_opt_in() {
        let a = Admission::new(&limits(), true, &[]);
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let _held: Vec<_> = (0..3).map(|_| a.admit_session(lo).unwrap()).collect();
        // The global cap still applies.
        assert_eq!(a.admit_session(lo).unwrap_err(), Refusal::ServerFull);
    }

    #[test]
    fn pending_handshakes_are_capped_globally_and_per_address() {
        let a = Admission::new(
            &Limits {
                max_pending_handshakes_per_ip: 2,
                ..limits()
            },
            false,
            &[],
        );
        let ip1: IpAddr = "10.0.0.1".parse().unwrap();
        let ip2: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = a.begin_handshake(ip1).unwrap();
        let _p2 = a.begin_handshake(ip2).unwrap();
        assert_eq!(a.begin_handshake(ip2).unwrap_err(), Busy::Server);
        drop(p1);
        assert!(a.begin_handshake(ip1).is_ok());
    }

    #[test]
    fn one_address_holds_only_its_share_of_the_pending_pool() {
        let a = Admission::new(
            &Limits {
                max_pending_handshakes: 10,
                ..limits()
            },
            false,
            &[],
        );
        let (ip1, ip2): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let held = a.begin_handshake(ip1).unwrap();
        assert_eq!(a.begin_handshake(ip1).unwrap_err(), Busy::Address);
        let other = a.begin_handshake(ip2).unwrap();
        drop(held);
        let again = a.begin_handshake(ip1).unwrap();
        drop((again, other));
        assert!(
            a.pending_per_ip.lock().unwrap().is_empty(),
            "no entry left behind"
        );
    }

    #[test]
    fn proxies_and_dev_mode_loopback_are_exempt_from_the_pending_share() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let a = Admission::new(
            &Limits {
                max_pending_handshakes: 10,
                ..limits()
            },
            true,
            &[proxy],
        );
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..3)
            .flat_map(|_| [a.begin_handshake(proxy), a.begin_handshake(lo)])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(held.len(), 6);
    }
}
