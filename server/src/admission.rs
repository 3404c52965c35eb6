//! Admission control at the edge: how many connections may be open (globally and per
//! IP), how fast one IP may open them, and how many may be handshaking at once.
//!
//! Checks are O(1) and hold a lock only for a map update. Every admitted connection holds
//! a [`ConnectionSlot`] for its whole life; dropping it gives the slot back, so counts
//! cannot leak whatever path a connection ends by.
//!
//! Must not do IO; callers turn a [`Refusal`] into an HTTP response.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
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

type KeyedLimiter = RateLimiter<IpAddr, HashMapStateStore<IpAddr>, DefaultClock>;

/// Connection accounting shared by every accept loop.
#[derive(Debug)]
pub struct Admission {
    max_connections: usize,
    max_per_ip: usize,
    /// Loopback peers skip the per-IP checks (dev mode: bots and browsers on one machine).
    exempt_loopback: bool,
    counts: Mutex<Counts>,
    handshakes: KeyedLimiter,
    pending: Arc<Semaphore>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A held connection slot; dropping it releases the slot.
#[derive(Debug)]
pub struct ConnectionSlot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
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

fn governor_quota(q: Quota) -> GovernorQuota {
    let rate = NonZeroU32::new(q.per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(q.burst).unwrap_or(NonZeroU32::MIN);
    GovernorQuota::per_second(rate).allow_burst(burst)
}

impl Admission {
    /// Accounting for the given limits.
    pub fn new(limits: &Limits, exempt_loopback: bool) -> Arc<Admission> {
        Arc::new(Admission {
            max_connections: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            exempt_loopback,
            counts: Mutex::new(Counts::default()),
            handshakes: RateLimiter::new(
                governor_quota(limits.handshakes_per_ip),
                HashMapStateStore::default(),
                DefaultClock::default(),
            ),
            pending: Arc::new(Semaphore::new(limits.max_pending_handshakes)),
        })
    }

    /// A handshake permit, if fewer than the cap are in progress. Taken at accept time,
    /// before anything is read.
    pub fn try_begin_handshake(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.pending).try_acquire_owned().ok()
    }

    /// Admits a connection from `ip`, or says why not. `handshake` charges the per-IP
    /// handshake rate: true for game sessions and tokens, false for the browser client's
    /// static files (a page load is a dozen requests; they still count towards the
    /// connection caps).
    pub fn admit(self: &Arc<Self>, ip: IpAddr, handshake: bool) -> Result<ConnectionSlot, Refusal> {
        let exempt = self.exempt_loopback && ip.is_loopback();
        if handshake
            && !exempt
            && let Err(not_until) = self.handshakes.check_key(&ip)
        {
            return Err(Refusal::TooManyHandshakes(
                not_until.wait_time_from(DefaultClock::default().now()),
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
    fn admit_session(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Refusal> {
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
            ..Limits::default()
        }
    }

    #[test]
    fn caps_are_enforced_and_released() {
        let a = Admission::new(&limits(), false);
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

    #[test]
    fn loopback_exemption_is_opt_in() {
        let a = Admission::new(&limits(), true);
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let _held: Vec<_> = (0..3).map(|_| a.admit_session(lo).unwrap()).collect();
        // The global cap still applies.
        assert_eq!(a.admit_session(lo).unwrap_err(), Refusal::ServerFull);
    }

    #[test]
    fn pending_handshakes_are_capped() {
        let a = Admission::new(&limits(), false);
        let p1 = a.try_begin_handshake().unwrap();
        let _p2 = a.try_begin_handshake().unwrap();
        assert!(a.try_begin_handshake().is_none());
        drop(p1);
        assert!(a.try_begin_handshake().is_some());
    }
}
