//! Whether this process may trace: the capabilities it holds, checked at
//! start so a missing one is named instead of surfacing as a BPF error.
//!
//! Loading and attaching tracing programs needs CAP_BPF and CAP_PERFMON
//! (kernels since 5.8; CAP_SYS_ADMIN covers both, and is what older kernels
//! ask for). Root has every capability; a service can run as any user that
//! holds these two (systemd `AmbientCapabilities=`, a container's
//! `capabilities.add`). Some parts need more, and are said at start when
//! they are off:
//! - tracefs (classic tracepoints; root-only, mode 0700): CAP_DAC_READ_SEARCH
//!   or CAP_DAC_OVERRIDE;
//! - the kernel's BPF run-time statistics (the UI's cost column, the
//!   exported BPF cost): CAP_SYS_ADMIN;
//! - mounting tracefs where it is not mounted: CAP_SYS_ADMIN.

const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The effective capability set (CapEff of /proc/self/status).
pub fn effective() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("reading /proc/self/status: {e}"))?;
    parse_cap_eff(&status).ok_or_else(|| "no CapEff line in /proc/self/status".into())
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    u64::from_str_radix(hex, 16).ok()
}

fn has(caps: u64, cap: u32) -> bool {
    caps & (1u64 << cap) != 0
}

/// Ok with notes on what is off for want of an optional capability, or the
/// one-line error naming what is missing.
pub fn check(caps: u64, tracefs_readable: bool, wants_bpf_stats: bool) -> Result<Vec<String>, String> {
    let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .iter()
        .filter(|(c, _)| !has(caps, *c) && !has(caps, CAP_SYS_ADMIN))
        .map(|(_, n)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "tracer-host needs CAP_BPF and CAP_PERFMON to load and attach BPF programs; missing: {} \
             (run it as root, or grant them: systemd AmbientCapabilities=, setcap, a container's capabilities.add)",
            missing.join(", ")
        ));
    }
    let mut notes = Vec::new();
    if !tracefs_readable && !has(caps, CAP_DAC_READ_SEARCH) && !has(caps, CAP_DAC_OVERRIDE) {
        notes.push("tracefs is not readable without CAP_DAC_READ_SEARCH: probes that need classic tracepoints use other hooks or do not start".to_string());
    }
    if wants_bpf_stats && !has(caps, CAP_SYS_ADMIN) {
        notes.push("no CAP_SYS_ADMIN: the kernel's BPF run-time statistics stay off (no BPF cost in the UI or the metrics)".to_string());
    }
    Ok(notes)
}

/// Can tracefs's event directory be read (it is root-only by default)?
pub fn tracefs_readable() -> bool {
    let p = std::ffi::CString::new("/sys/kernel/tracing/events").expect("no NUL");
    // SAFETY: a valid C string.
    unsafe { libc::access(p.as_ptr(), libc::R_OK | libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_eff_is_read_from_the_status_text() {
        assert_eq!(parse_cap_eff("Name:\tx\nCapEff:\t000001ffffffffff\n"), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
    }

    #[test]
    fn the_missing_capability_is_named() {
        let e = check(1 << CAP_BPF, true, true).unwrap_err();
        assert!(e.contains("missing: CAP_PERFMON") && !e.contains("missing: CAP_BPF"), "{e}");
        let e = check(0, true, true).unwrap_err();
        assert!(e.contains("missing: CAP_BPF, CAP_PERFMON"), "{e}");
        let notes = check((1 << CAP_BPF) | (1 << CAP_PERFMON), false, true).unwrap();
        assert!(notes.iter().any(|n| n.contains("CAP_DAC_READ_SEARCH")) && notes.iter().any(|n| n.contains("CAP_SYS_ADMIN")), "{notes:?}");
        assert_eq!(check((1 << CAP_BPF) | (1 << CAP_PERFMON), true, false).unwrap(), Vec::<String>::new(), "no statistics wanted");
        assert_eq!(check(1 << CAP_SYS_ADMIN, true, true).unwrap(), Vec::<String>::new(), "CAP_SYS_ADMIN covers both");
        assert_eq!(check(u64::MAX, false, true).unwrap(), Vec::<String>::new(), "root");
    }
}
