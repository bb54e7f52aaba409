//! What watching costs: the kernel's BPF run-time statistics (run time and run
//! count per program), switched on only while the host runs, as bpftop does.
//! Collecting them costs about two clock reads per program run, so they are on
//! for the UI only, and off again when the returned guard drops.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// While this lives, the kernel counts run time of every BPF program.
pub struct StatsEnabled(#[allow(dead_code)] OwnedFd);

pub fn enable() -> Result<StatsEnabled, String> {
    // SAFETY: plain syscall wrapper; a non-negative result is a new fd we own.
    let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
    if fd < 0 {
        let e = std::io::Error::from_raw_os_error(-fd);
        let hint = if -fd == libc::EPERM { " (switching them on needs CAP_SYS_ADMIN)" } else { "" };
        return Err(format!("BPF run-time statistics unavailable: {e}{hint}"));
    }
    Ok(StatsEnabled(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// (run time ns, run count) of one program, from its fd.
pub fn prog_run_stats(fd: &impl AsRawFd) -> Option<(u64, u64)> {
    // SAFETY: a zeroed bpf_prog_info is valid input; len says how much to fill.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    let rc = unsafe {
        libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info as *mut _ as *mut _, &mut len)
    };
    (rc == 0).then_some((info.run_time_ns, info.run_cnt))
}

/// Turns successive (run time, run count) totals into per-event cost and CPU %.
#[derive(Debug, Default, Clone)]
pub struct CostMeter {
    last: Option<(u64, u64, std::time::Instant)>,
}

impl CostMeter {
    /// Returns (ns per event over the interval, % of one CPU).
    pub fn update(&mut self, run_ns: u64, runs: u64) -> Option<(f64, f64)> {
        let now = std::time::Instant::now();
        let out = self.last.and_then(|(ns0, n0, t0)| {
            let dt = now.duration_since(t0).as_secs_f64();
            let (dns, dn) = (run_ns.saturating_sub(ns0), runs.saturating_sub(n0));
            (dt > 0.0).then(|| (if dn > 0 { dns as f64 / dn as f64 } else { 0.0 }, dns as f64 / (dt * 1e9) * 100.0))
        });
        self.last = Some((run_ns, runs, now));
        out
    }
}
