//! Readings from `/proc`: per-CPU busy time, a process's CPU time and memory, kernel TCP
//! socket memory, and the machine's description.
//!
//! Every figure is a counter or a level read at one instant; the measurements take two
//! samples and subtract. Must not keep state or write anything.

use std::io;

/// One `cpuN` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuLine {
    /// Normal and niced user time.
    pub user: u64,
    /// Kernel time on behalf of processes (and kernel threads such as `ksoftirqd`).
    pub system: u64,
    /// Idle and waiting for IO.
    pub idle: u64,
    /// Hard interrupts.
    pub irq: u64,
    /// Soft interrupts run outside `ksoftirqd`: on loopback, the receiving side's TCP
    /// work runs here, on the sender's CPU.
    pub softirq: u64,
    /// Time the hypervisor gave to someone else while this vCPU wanted to run.
    pub steal: u64,
}

impl CpuLine {
    /// `user+nice+system+irq+softirq+steal`.
    pub fn busy(&self) -> u64 {
        self.user + self.system + self.irq + self.softirq + self.steal
    }

    /// Field-wise difference `self - earlier` (saturating: counters never go back).
    pub fn since(&self, earlier: &CpuLine) -> CpuLine {
        CpuLine {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            idle: self.idle.saturating_sub(earlier.idle),
            irq: self.irq.saturating_sub(earlier.irq),
            softirq: self.softirq.saturating_sub(earlier.softirq),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }
}

/// Parses the `cpu{n}` line out of the text of `/proc/stat`.
pub fn parse_cpu_line(stat: &str, cpu: usize) -> Option<CpuLine> {
    let prefix = format!("cpu{cpu} ");
    let line = stat.lines().find(|l| l.starts_with(&prefix))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(CpuLine {
        user: at(0) + at(1),
        system: at(2),
        idle: at(3) + at(4),
        irq: at(5),
        softirq: at(6),
        steal: at(7),
    })
}

/// The `cpu{n}` line now.
pub fn cpu_line(cpu: usize) -> io::Result<CpuLine> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    parse_cpu_line(&stat, cpu).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no cpu{cpu} in /proc/stat"),
        )
    })
}

/// `utime + stime` of a process (all its threads), in clock ticks.
pub fn process_ticks(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_process_ticks(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/PID/stat"))
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name may contain
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_process_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Run time of every thread of a process, nanoseconds by thread id, from
/// `/proc/PID/task/TID/schedstat` (the scheduler's own clock, not tick samples). A thread
/// that exits takes its time with it, so windows compare threads present in both.
pub fn thread_runtimes(pid: u32) -> std::collections::HashMap<u32, u64> {
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        if let Some(ns) = std::fs::read_to_string(e.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
        {
            out.insert(tid, ns);
        }
    }
    out
}

/// Whether the running kernel accounts interrupt time on its own
/// (`CONFIG_IRQ_TIME_ACCOUNTING`), from `/proc/config.gz` or `/boot/config-RELEASE`.
/// Without it, softirq work is charged to whichever task it interrupted: on loopback the
/// sender, whose own CPU time then includes the receiving side's TCP work. `None`: the
/// configuration is not readable.
pub fn irq_time_accounting() -> Option<bool> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let text = std::fs::read_to_string(format!("/boot/config-{}", release.trim()))
        .ok()
        .or_else(|| {
            let out = std::process::Command::new("gzip")
                .args(["-dc", "/proc/config.gz"])
                .stderr(std::process::Stdio::null())
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        })?;
    if text
        .lines()
        .any(|l| l.trim() == "CONFIG_IRQ_TIME_ACCOUNTING=y")
    {
        Some(true)
    } else if text.contains("CONFIG_IRQ_TIME_ACCOUNTING") || text.contains("CONFIG_HZ=") {
        Some(false)
    } else {
        None
    }
}

/// A process's memory, KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS` from `/proc/PID/status`: resident pages, shared ones counted in full.
    pub rss_kib: u64,
    /// `Pss` from `/proc/PID/smaps_rollup`: shared pages divided among their users
    /// (0 when the file is unavailable).
    pub pss_kib: u64,
}

/// The memory of a process now.
pub fn memory(pid: u32) -> io::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = kib_field(&status, "VmRSS:")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS"))?;
    let pss_kib = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| kib_field(&s, "Pss:"))
        .unwrap_or(0);
    Ok(Memory { rss_kib, pss_kib })
}

fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Pages of memory held by every TCP socket of the machine (`/proc/net/sockstat`,
/// `TCP: ... mem N`): kernel buffers, which `VmRSS` does not include.
pub fn tcp_mem_pages() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = s.lines().find(|l| l.starts_with("TCP:"))?;
    let mut it = line.split_whitespace();
    while let Some(w) = it.next() {
        if w == "mem" {
            return it.next()?.parse().ok();
        }
    }
    None
}

/// The pid of the kernel thread named `comm` (e.g. `ksoftirqd/0`), if any.
pub fn kernel_thread(comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let name = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (name.trim() == comm).then_some(pid)
    })
}

/// Number of threads of a process.
pub fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// `model name` of the first CPU, kernel release and total memory, for the header.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| kib_field(&s, "MemTotal:"))
        .map_or(0.0, |k| k as f64 / (1024.0 * 1024.0));
    format!(
        "{model}, {} CPUs online, {mem_gib:.1} GiB, Linux {kernel}",
        crate::sys::online_cpus()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_and_pid_stat() {
        let stat =
            "cpu  10 0 0 0 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\ncpu1 9 9 9 9 9 9 9 9 0 0\n";
        let c = parse_cpu_line(stat, 0).unwrap();
        assert_eq!(c.busy(), 1 + 2 + 3 + 6 + 7 + 8);
        assert_eq!(c.idle, 4 + 5);
        assert!(parse_cpu_line(stat, 2).is_none());
        let pid = "42 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 111 222 0 0 20 0 1 0";
        assert_eq!(parse_process_ticks(pid), Some(333));
        assert!(process_ticks(std::process::id()).is_ok());
        assert!(memory(std::process::id()).unwrap().rss_kib > 0);
        assert!(cpu_line(0).is_ok());
        let threads = thread_runtimes(std::process::id());
        assert!(!threads.is_empty());
    }
}
