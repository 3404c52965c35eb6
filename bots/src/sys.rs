//! The two operating-system calls the bots need and the standard library lacks: this
//! process's CPU time (`getrusage`) and raising its open-file limit (`setrlimit`).
//!
//! This is the crate's only `unsafe` code, kept to plain libc calls on stack values.
//! Must not do anything else.

use std::time::Duration;

/// CPU time and peak memory of this process so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// User CPU time, all threads.
    pub user: Duration,
    /// System CPU time, all threads.
    pub sys: Duration,
    /// Peak resident set size, KiB.
    pub max_rss_kib: u64,
}

fn duration(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64)
}

/// This process's resource usage; zeros if the call fails (it cannot for `RUSAGE_SELF`).
#[allow(unsafe_code)]
pub fn usage() -> Usage {
    // SAFETY: `rusage` is a plain C struct of integers, for which all-zero bytes are a
    // valid value; `getrusage` only writes into the struct we pass, which lives for the
    // whole call.
    let (rc, ru) = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        let rc = libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        (rc, ru)
    };
    if rc != 0 {
        return Usage::default();
    }
    Usage {
        user: duration(ru.ru_utime),
        sys: duration(ru.ru_stime),
        max_rss_kib: ru.ru_maxrss.max(0) as u64,
    }
}

/// Raises the soft open-file limit to at least `want` (up to the hard limit). Returns
/// the soft limit in force afterwards, or `None` if it could not be read.
#[allow(unsafe_code)]
// `rlim_t` is `u64` on Linux but not on every Unix; the casts are for the others.
#[allow(clippy::unnecessary_cast)]
pub fn raise_fd_limit(want: u64) -> Option<u64> {
    // SAFETY: `rlimit` is two integers; `getrlimit`/`setrlimit` read and write only the
    // struct we pass, which outlives the calls.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        let current = lim.rlim_cur as u64;
        if current >= want {
            return Some(current);
        }
        let target = (want as libc::rlim_t).min(lim.rlim_max);
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            Some(target as u64)
        } else {
            Some(current)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_grows_with_work() {
        let before = usage();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = usage();
        assert!(after.user + after.sys >= before.user + before.sys);
        assert!(after.max_rss_kib > 0);
        assert!(raise_fd_limit(16).is_some_and(|n| n >= 16));
    }
}
