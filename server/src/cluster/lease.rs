//! The node's side of a lease (its registration, or its claim on one room): held,
//! renewing, lapsed or lost, with time as a parameter.
//!
//! A lease runs for [`LeaseRules::lease`] on the Redis clock from when Redis applies a
//! renewal. The node cannot see that clock, so it counts from when it *sent* the renewal
//! (never later than Redis applied it) and subtracts a margin for clock-rate differences:
//! its local end of the lease is never after the real one.
//!
//! - **Held**: the last renewal was confirmed and the lease runs. Serve, accept players,
//!   write checkpoints.
//! - **Renewing**: renewals go unanswered but the lease still runs. Same as held.
//! - **Lapsed**: the lease ended locally without a confirmed renewal. Another node may
//!   take the room over from now on, or nobody can (Redis is down for everyone): the node
//!   cannot tell. It keeps the players it has, takes no new ones, and keeps renewing;
//!   a renewal confirmed with the same epoch makes it held again (nobody took over).
//! - **Lost**: the directory answered with a higher epoch (someone else owns the room),
//!   or the lapse outlasted [`LeaseRules::lapse_grace`], or the lease was released. For
//!   good: the node stops serving the room and sends its players elsewhere.
//!
//! Must not do IO or read a clock: the driver ([`super::agent`]) passes `now` and the
//! send time of each renewal.

use std::time::{Duration, Instant};

/// Timing of a lease; see `config::ClusterTiming` for the defaults and their reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRules {
    /// Lease length on the Redis clock.
    pub lease: Duration,
    /// Taken off the lease on the node's clock.
    pub margin: Duration,
    /// How long a lapsed lease is kept before it is given up.
    pub lapse_grace: Duration,
}

/// Why a lease is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// The directory holds a newer claim (this epoch) or the room was released under us.
    Superseded {
        /// The room's epoch now.
        epoch: u64,
    },
    /// Lapsed for longer than the grace.
    Expired,
    /// Released by this node (hand-off or close).
    Released,
}

impl LossReason {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            LossReason::Superseded { .. } => "superseded",
            LossReason::Expired => "expired",
            LossReason::Released => "released",
        }
    }
}

/// A lease's state at one instant; see the module docs for what each allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Confirmed and running.
    Held,
    /// Running, but the latest renewals went unanswered.
    Renewing,
    /// Ended locally without confirmation; not yet given up.
    Lapsed,
    /// Given up for good.
    Lost(LossReason),
}

impl LeaseStatus {
    /// The room may take new players and write checkpoints.
    pub fn serving(self) -> bool {
        matches!(self, LeaseStatus::Held | LeaseStatus::Renewing)
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Lease {
    rules: LeaseRules,
    epoch: u64,
    /// Local end of the lease.
    valid_until: Instant,
    /// First unanswered renewal since the last confirmation.
    failing_since: Option<Instant>,
    lost: Option<LossReason>,
}

impl Lease {
    /// A lease granted by a call (claim, first heartbeat) sent at `sent`.
    pub fn granted(epoch: u64, sent: Instant, rules: LeaseRules) -> Lease {
        Lease {
            rules,
            epoch,
            valid_until: Lease::end(sent, rules),
            failing_since: None,
            lost: None,
        }
    }

    fn end(sent: Instant, rules: LeaseRules) -> Instant {
        sent + rules.lease.saturating_sub(rules.margin)
    }

    /// The claim's fencing epoch (0 for a node registration).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A renewal sent at `sent` was confirmed (renewed, or re-taken with the same epoch
    /// after a lapse). No effect once lost.
    pub fn confirmed(&mut self, sent: Instant) {
        if self.lost.is_some() {
            return;
        }
        self.valid_until = self.valid_until.max(Lease::end(sent, self.rules));
        self.failing_since = None;
    }

    /// A renewal attempt at `now` got no answer (the directory is unavailable).
    pub fn unanswered(&mut self, now: Instant) {
        self.failing_since.get_or_insert(now);
    }

    /// The directory answered that the room's claim is now `epoch`, not ours.
    pub fn superseded(&mut self, epoch: u64) {
        self.lost.get_or_insert(LossReason::Superseded { epoch });
    }

    /// This node released the claim.
    pub fn released(&mut self) {
        self.lost.get_or_insert(LossReason::Released);
    }

    /// The status at `now`. A lapse longer than the grace becomes a loss, which stays.
    pub fn poll(&mut self, now: Instant) -> LeaseStatus {
        if let Some(reason) = self.lost {
            return LeaseStatus::Lost(reason);
        }
        if now < self.valid_until {
            return if self.failing_since.is_some() {
                LeaseStatus::Renewing
            } else {
                LeaseStatus::Held
            };
        }
        if now < self.valid_until + self.rules.lapse_grace {
            return LeaseStatus::Lapsed;
        }
        self.lost = Some(LossReason::Expired);
        LeaseStatus::Lost(LossReason::Expired)
    }

    /// When the status next changes if nothing is confirmed: the local end of the lease,
    /// then the end of the grace. `None` once lost.
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        if self.lost.is_some() {
            return None;
        }
        if now < self.valid_until {
            Some(self.valid_until)
        } else {
            Some(self.valid_until + self.rules.lapse_grace)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: LeaseRules = LeaseRules {
        lease: Duration::from_secs(3),
        margin: Duration::from_millis(250),
        lapse_grace: Duration::from_secs(30),
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn held_while_renewals_are_confirmed() {
        let t0 = Instant::now();
        let mut lease = Lease::granted(4, t0, RULES);
        assert_eq!(lease.epoch(), 4);
        for beat in 1..100u64 {
            let sent = t0 + ms(1000 * beat);
            assert_eq!(lease.poll(sent), LeaseStatus::Held);
            lease.confirmed(sent);
        }
    }

    #[test]
    fn the_local_lease_counts_from_the_send_time_minus_the_margin() {
        let t0 = Instant::now();
        let mut lease = Lease::granted(1, t0, RULES);
        assert_eq!(lease.next_change(t0), Some(t0 + ms(2750)));
        assert_eq!(lease.poll(t0 + ms(2749)), LeaseStatus::Held);
        assert_eq!(lease.poll(t0 + ms(2750)), LeaseStatus::Lapsed);
        // A confirmation of an old renewal never shortens the lease.
        lease.confirmed(t0 + ms(2000));
        lease.confirmed(t0 + ms(1000));
        assert_eq!(lease.poll(t0 + ms(4749)), LeaseStatus::Held);
        assert_eq!(lease.poll(t0 + ms(4750)), LeaseStatus::Lapsed);
    }

    #[test]
    fn unanswered_renewals_are_renewing_then_lapsed_then_lost() {
        let t0 = Instant::now();
        let mut lease = Lease::granted(1, t0, RULES);
        lease.unanswered(t0 + ms(1000));
        assert_eq!(lease.poll(t0 + ms(1000)), LeaseStatus::Renewing);
        assert!(lease.poll(t0 + ms(2000)).serving());
        lease.unanswered(t0 + ms(2000));
        assert_eq!(lease.poll(t0 + ms(3000)), LeaseStatus::Lapsed);
        assert!(!LeaseStatus::Lapsed.serving());
        assert_eq!(lease.next_change(t0 + ms(3000)), Some(t0 + ms(32_750)));
        assert_eq!(lease.poll(t0 + ms(32_749)), LeaseStatus::Lapsed);
        assert_eq!(
            lease.poll(t0 + ms(32_750)),
            LeaseStatus::Lost(LossReason::Expired)
        );
        // Given up for good: a late confirmation does not bring it back.
        lease.confirmed(t0 + ms(33_000));
        assert_eq!(
            lease.poll(t0 + ms(33_000)),
            LeaseStatus::Lost(LossReason::Expired)
        );
        assert_eq!(lease.next_change(t0 + ms(33_000)), None);
    }

    #[test]
    fn a_redis_outage_shorter_than_the_grace_is_invisible_once_renewed() {
        let t0 = Instant::now();
        let mut lease = Lease::granted(7, t0, RULES);
        for s in 1..=10u64 {
            lease.unanswered(t0 + ms(1000 * s));
        }
        assert_eq!(lease.poll(t0 + ms(10_000)), LeaseStatus::Lapsed);
        // Redis is back and nobody took the room: the same epoch is re-taken.
        lease.confirmed(t0 + ms(11_000));
        assert_eq!(lease.poll(t0 + ms(11_001)), LeaseStatus::Held);
        assert_eq!(lease.epoch(), 7);
    }

    #[test]
    fn a_higher_epoch_loses_the_lease_at_once_whatever_the_time() {
        let t0 = Instant::now();
        let mut lease = Lease::granted(2, t0, RULES);
        lease.superseded(3);
        assert_eq!(
            lease.poll(t0),
            LeaseStatus::Lost(LossReason::Superseded { epoch: 3 })
        );
        lease.confirmed(t0 + ms(10));
        lease.released();
        assert_eq!(
            lease.poll(t0 + ms(10)),
            LeaseStatus::Lost(LossReason::Superseded { epoch: 3 }),
            "the first reason stays"
        );
        assert_eq!(LossReason::Superseded { epoch: 3 }.label(), "superseded");
    }

    #[test]
    fn released_is_lost() {
        let t0 = Instant::now();
        let mut lease = Lease::granted(2, t0, RULES);
        lease.released();
        assert_eq!(lease.poll(t0), LeaseStatus::Lost(LossReason::Released));
    }
}
