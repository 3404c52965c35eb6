//! What a measurement window cost in CPU, and how trustworthy the reading is.
//!
//! The figure that counts is the **server CPU**: everything the measured process made its
//! CPU do, kernel work on its behalf included. On loopback that includes the receiving
//! side's TCP processing of everything it sends, which runs in softirq on the sender's
//! CPU. It is read from the scheduler's per-thread run times (nanoseconds, immune to
//! other programs on the same CPU) of the process and of that CPU's `ksoftirqd`, plus,
//! on kernels that account interrupt time separately (`CONFIG_IRQ_TIME_ACCOUNTING`), the
//! CPU's irq and softirq time from `/proc/stat`, since those kernels leave it out of the
//! task's run time. When the kernel configuration cannot be read, the CPU's busy time
//! from `/proc/stat` stands in (tick-sampled, and other programs on that CPU count too).
//!
//! The CPU's busy time (`user+nice+system+irq+softirq+steal` of its `/proc/stat` line) is
//! shown beside it; what exceeds the server CPU is attributed to other programs that ran
//! there: the noise of a shared machine, printed with every figure.
//!
//! Must not decide anything.

use std::collections::HashMap;
use std::time::Instant;

use crate::procfs::{self, CpuLine};
use crate::{Bench, sys};

/// Share of the server CPU used by other programs above which a reading is flagged.
pub const NOISY_PCT: f64 = 5.0;

/// Takes samples for one measured process.
#[derive(Debug, Clone)]
pub struct Probe {
    server_cpu: Option<usize>,
    load_cpu: Option<usize>,
    pid: u32,
    ksoftirqd: Option<u32>,
    irq_accounting: Option<bool>,
    hz: f64,
}

/// One sample.
#[derive(Debug, Clone)]
pub struct Sample {
    at: Instant,
    server: CpuLine,
    load: CpuLine,
    process: HashMap<u32, u64>,
    ksoftirqd: HashMap<u32, u64>,
    own: HashMap<u32, u64>,
}

/// The difference of two samples.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    /// Wall time between the samples, seconds.
    pub wall_s: f64,
    /// The server CPU's `/proc/stat` line.
    pub server: CpuLine,
    /// The load CPU's `/proc/stat` line.
    pub load: CpuLine,
    /// Run time of the measured process, seconds.
    pub process_s: f64,
    /// Run time of the server CPU's `ksoftirqd`, seconds.
    pub ksoftirqd_s: f64,
    /// Run time of this process (the load), seconds.
    pub own_s: f64,
    /// See [`procfs::irq_time_accounting`].
    pub irq_accounting: Option<bool>,
    /// Whether the server CPU was pinned (else only the process time means anything).
    pub pinned: bool,
    hz: f64,
}

impl Probe {
    /// A probe for process `pid` on the bench's CPUs.
    pub fn new(bench: &Bench, pid: u32) -> Probe {
        Probe {
            server_cpu: bench.server_cpu,
            load_cpu: bench.load_cpu,
            pid,
            ksoftirqd: bench
                .server_cpu
                .and_then(|c| procfs::kernel_thread(&format!("ksoftirqd/{c}"))),
            irq_accounting: bench.irq_accounting,
            hz: sys::clock_ticks_per_second(),
        }
    }

    /// Samples everything now.
    pub fn sample(&self) -> Sample {
        let line = |cpu: Option<usize>| {
            cpu.and_then(|c| procfs::cpu_line(c).ok())
                .unwrap_or_default()
        };
        Sample {
            at: Instant::now(),
            server: line(self.server_cpu),
            load: line(self.load_cpu),
            process: procfs::thread_runtimes(self.pid),
            ksoftirqd: self
                .ksoftirqd
                .map(procfs::thread_runtimes)
                .unwrap_or_default(),
            own: procfs::thread_runtimes(std::process::id()),
        }
    }

    /// `later - earlier`.
    pub fn between(&self, earlier: &Sample, later: &Sample) -> CpuUse {
        CpuUse {
            wall_s: later.at.duration_since(earlier.at).as_secs_f64(),
            server: later.server.since(&earlier.server),
            load: later.load.since(&earlier.load),
            process_s: runtime_delta(&earlier.process, &later.process),
            ksoftirqd_s: runtime_delta(&earlier.ksoftirqd, &later.ksoftirqd),
            own_s: runtime_delta(&earlier.own, &later.own),
            irq_accounting: self.irq_accounting,
            pinned: self.server_cpu.is_some(),
            hz: self.hz,
        }
    }
}

/// Seconds run between two samples by the threads of the later one (a thread born in
/// between counts from zero; one that exited is gone from both sides of the sum).
fn runtime_delta(earlier: &HashMap<u32, u64>, later: &HashMap<u32, u64>) -> f64 {
    later
        .iter()
        .map(|(tid, ns)| ns.saturating_sub(earlier.get(tid).copied().unwrap_or(0)))
        .sum::<u64>() as f64
        / 1e9
}

impl CpuUse {
    /// Clock ticks to seconds.
    pub fn secs(&self, ticks: u64) -> f64 {
        ticks as f64 / self.hz
    }

    /// Seconds as a share of the window, %.
    pub fn pct(&self, secs: f64) -> f64 {
        secs * 100.0 / self.wall_s.max(1e-9)
    }

    /// Busy time of the server CPU from `/proc/stat` (tick-sampled), seconds.
    pub fn stat_busy_s(&self) -> f64 {
        self.secs(self.server.busy())
    }

    /// The server CPU, seconds: see the module documentation.
    pub fn server_s(&self) -> f64 {
        if !self.pinned {
            return self.process_s;
        }
        match self.irq_accounting {
            Some(false) => self.process_s + self.ksoftirqd_s,
            Some(true) => {
                self.process_s + self.ksoftirqd_s + self.secs(self.server.irq + self.server.softirq)
            }
            None => self.stat_busy_s(),
        }
    }

    /// Busy time of the server CPU beyond the server CPU figure: other programs, seconds.
    pub fn foreign_s(&self) -> f64 {
        if !self.pinned || self.irq_accounting.is_none() {
            return 0.0;
        }
        (self.stat_busy_s() - self.server_s()).max(0.0)
    }

    /// Whether other programs used enough of the server CPU to distrust the reading.
    pub fn noisy(&self) -> bool {
        self.pct(self.foreign_s()) > NOISY_PCT
    }

    /// How [`CpuUse::server_s`] is made up.
    pub fn method(irq_accounting: Option<bool>) -> &'static str {
        match irq_accounting {
            Some(false) => {
                "server process + ksoftirqd run time (this kernel charges softirq to the interrupted task: \
                 no CONFIG_IRQ_TIME_ACCOUNTING)"
            }
            Some(true) => "server process + ksoftirqd run time + the CPU's irq and softirq time",
            None => "busy time of the server CPU from /proc/stat (kernel configuration unreadable)",
        }
    }

    /// One line: the server CPU, the CPU's busy time and its parts, the load.
    pub fn describe(&self) -> String {
        let s = &self.server;
        format!(
            "server CPU {:.1} % (process {:.1}, ksoftirqd {:.1}); CPU busy {:.1} % in /proc/stat (user {:.1}, system {:.1}, \
             softirq {:.1}, irq {:.1}, steal {:.1}) → other programs ≈ {:.1} %{}; load CPU {:.0} % busy (this process {:.0})",
            self.pct(self.server_s()),
            self.pct(self.process_s),
            self.pct(self.ksoftirqd_s),
            self.pct(self.stat_busy_s()),
            self.pct(self.secs(s.user)),
            self.pct(self.secs(s.system)),
            self.pct(self.secs(s.softirq)),
            self.pct(self.secs(s.irq)),
            self.pct(self.secs(s.steal)),
            self.pct(self.foreign_s()),
            if self.noisy() {
                " NOISY: re-run on a quiet machine"
            } else {
                ""
            },
            self.pct(self.secs(self.load.busy())),
            self.pct(self.own_s),
        )
    }
}
