//! CPU time used by this process, read from `/proc/self/stat` (no unsafe
//! getrusage call). Off Linux the figures are zero.

use serde::{Deserialize, Serialize};

/// Clock ticks per second of `/proc/self/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU and wall time of one process over its run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessUsage {
    pub pid: u32,
    pub user_s: f64,
    pub system_s: f64,
    pub wall_s: f64,
    /// Peak resident memory (VmHWM), KiB; 0 where /proc does not say.
    #[serde(default)]
    pub peak_rss_kib: u64,
}

impl ProcessUsage {
    /// Share of one core used over the wall time.
    pub fn cpu_share(&self) -> f64 {
        if self.wall_s > 0.0 { (self.user_s + self.system_s) / self.wall_s } else { 0.0 }
    }
}

/// User and system CPU seconds used so far by this process.
pub fn cpu_seconds() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // Fields after the `(comm)` field, which may itself hold spaces.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return (0.0, 0.0);
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) / TICKS_PER_SECOND, ticks(12) / TICKS_PER_SECOND)
}

/// This process's peak resident memory in KiB (`VmHWM` in /proc/self/status).
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Usage since `started`.
pub fn usage_since(started: std::time::Instant) -> ProcessUsage {
    let (user_s, system_s) = cpu_seconds();
    let wall_s = started.elapsed().as_secs_f64();
    ProcessUsage { pid: std::process::id(), user_s, system_s, wall_s, peak_rss_kib: peak_rss_kib() }
}

#[cfg(test)]
mod tests {
    #[test]
    fn busy_loop_shows_up_as_user_time() {
        let (before, _) = super::cpu_seconds();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 300 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let (after, _) = super::cpu_seconds();
        if cfg!(target_os = "linux") {
            assert!(after - before >= 0.05, "user time moved only {before} → {after}");
        }
    }

    #[test]
    fn peak_memory_grows_with_what_was_touched() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let before = super::peak_rss_kib();
        let block = std::hint::black_box(vec![1u8; 64 << 20]);
        let after = super::peak_rss_kib();
        assert!(after >= before + 60_000, "peak RSS {before} → {after} KiB after touching 64 MiB");
        drop(block);
    }
}
