//! The host's own CPU time and memory, from /proc/self, for the status line.

use std::time::Instant;

pub struct SelfUsage {
    last_cpu_ticks: u64,
    last_at: Instant,
    ticks_per_sec: f64,
    pub cpu_percent: f64,
    pub rss_bytes: u64,
}

fn cpu_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the ")" that ends comm: utime is the 12th, stime the 13th.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn rss_bytes() -> u64 {
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|p| p * page)
        .unwrap_or(0)
}

impl SelfUsage {
    pub fn new() -> Self {
        SelfUsage {
            last_cpu_ticks: cpu_ticks().unwrap_or(0),
            last_at: Instant::now(),
            ticks_per_sec: unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64,
            cpu_percent: 0.0,
            rss_bytes: rss_bytes(),
        }
    }

    /// Update at most once a second (CPU ticks are 10 ms coarse).
    pub fn sample(&mut self) {
        let dt = self.last_at.elapsed().as_secs_f64();
        if dt < 1.0 {
            return;
        }
        let ticks = cpu_ticks().unwrap_or(self.last_cpu_ticks);
        self.cpu_percent = (ticks - self.last_cpu_ticks) as f64 / self.ticks_per_sec / dt * 100.0;
        self.last_cpu_ticks = ticks;
        self.last_at = Instant::now();
        self.rss_bytes = rss_bytes();
    }
}
