//! CPU pinning and child-process hygiene: the few Linux calls the benchmark needs and the
//! standard library lacks (`sched_setaffinity`, `prctl(PR_SET_PDEATHSIG)`, `sysconf`).
//!
//! The server and the floor run on one CPU and the load on another, so their costs can be
//! told apart from `/proc/stat`. Children are pinned by inheritance: the spawning thread
//! pins itself to the child's CPU just for the `spawn` call, so the child is pinned
//! before it runs a single instruction (every thread it starts inherits the mask), and
//! no external `taskset` is needed.
//!
//! This is the benchmark's only `unsafe` code: plain libc calls on stack values, each
//! with its `// SAFETY:` reasoning. Must not do anything else.

// The one module of the crate allowed to use `unsafe` (the workspace denies it).
#![allow(unsafe_code)]

use std::io;
use std::process::{Child, Command};

/// CPUs this machine has online (the `cpuN` lines of `/proc/stat`), whatever this
/// thread's affinity.
pub fn online_cpus() -> usize {
    std::fs::read_to_string("/proc/stat").map_or(1, |s| {
        s.lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count()
            .max(1)
    })
}

/// Pins the calling thread to exactly `cpu`. Threads it creates afterwards inherit it.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    set_affinity(&[cpu])
}

fn set_affinity(cpus: &[usize]) -> io::Result<()> {
    let mut set = empty_set();
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "CPU out of range",
            ));
        }
        // SAFETY: `cpu` is below `CPU_SETSIZE` (checked above), so the bit is inside `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid, initialised `cpu_set_t` on our stack and we pass its exact
    // size; pid 0 means the calling thread. The call only reads the set.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn current_affinity() -> io::Result<Vec<usize>> {
    let mut set = empty_set();
    // SAFETY: as above; the kernel writes at most `size_of::<cpu_set_t>()` bytes into our
    // stack value.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: every `c` is below `CPU_SETSIZE`, so the bit read is inside `set`.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

fn empty_set() -> libc::cpu_set_t {
    // SAFETY: `cpu_set_t` is a plain bit array; all-zero bytes is the empty set (what
    // `CPU_ZERO` would write).
    unsafe { std::mem::zeroed() }
}

/// Spawns `cmd` pinned to `cpu` (when given), and asks the kernel to SIGKILL it if this
/// process dies without cleaning up (a `kill -9` of the benchmark must not leave a server
/// running). The calling thread's own affinity is restored before returning.
pub fn spawn_pinned(cmd: &mut Command, cpu: Option<usize>) -> io::Result<Child> {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: `prctl` and `getppid` are system calls that
    // allocate nothing and take no locks.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() == 1 {
                return Err(io::Error::other("parent gone"));
            }
            Ok(())
        });
    }
    let Some(cpu) = cpu else {
        return cmd.spawn();
    };
    let before = current_affinity()?;
    set_affinity(&[cpu])?;
    let child = cmd.spawn();
    set_affinity(&before)?;
    child
}

/// Clock ticks per second of `/proc` CPU times (`USER_HZ`, 100 on Linux).
pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: `sysconf` reads a constant; no memory is passed.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// The `Cpus_allowed_list` of a process, as the kernel prints it (`0`, `1`, `0-1`).
pub fn cpus_allowed(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_round_trips() {
        let before = current_affinity().unwrap();
        assert!(!before.is_empty());
        set_affinity(&before[..1]).unwrap();
        assert_eq!(current_affinity().unwrap(), &before[..1]);
        set_affinity(&before).unwrap();
        assert!(clock_ticks_per_second() > 0.0);
        assert!(!cpus_allowed(std::process::id()).is_empty());
    }
}
