//! `perf_event` programs: a plugin names the event as its program's target
//! (`software:page-faults-maj`, `software:cpu-clock:freq=99`); the host opens
//! that event on every online CPU for every task and attaches the program to
//! each. A link per CPU; dropping it detaches and closes the event.
//!
//! Software events only, for now: they exist on every kernel and machine
//! (this one has no hardware PMU), and they fire exactly where the kernel
//! counts them (a page fault event where the task's min_flt/maj_flt grow).

use libbpf_rs::{Link, ProgramMut};

/// The perf_event_attr fields up to config2 (PERF_ATTR_SIZE_VER1): all a
/// software event needs; the kernel takes any published size.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period_or_freq: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
}

const PERF_TYPE_SOFTWARE: u32 = 1;
/// flags: bit 10 `freq` (sample_period_or_freq is a frequency).
const FLAG_FREQ: u64 = 1 << 10;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// Software events by the names `perf list` gives them.
const SOFTWARE: &[(&str, u64)] = &[
    ("cpu-clock", 0),
    ("task-clock", 1),
    ("page-faults", 2),
    ("context-switches", 3),
    ("cpu-migrations", 4),
    ("page-faults-min", 5),
    ("page-faults-maj", 6),
];

/// A parsed target: event, and a sample period or frequency.
#[derive(Debug, PartialEq)]
pub struct Target {
    pub config: u64,
    pub period: u64,
    pub freq: bool,
}

/// `software:EVENT[:period=N|:freq=N]`; the default is every event (period 1).
pub fn parse(target: &str) -> Result<Target, String> {
    let mut parts = target.split(':');
    let bad = |why: String| format!("perf event target {target:?}: {why}");
    match parts.next() {
        Some("software") => {}
        _ => return Err(bad("give software:EVENT (only software events are supported)".into())),
    }
    let name = parts.next().unwrap_or("");
    let config = SOFTWARE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
        .ok_or_else(|| bad(format!("no software event {name:?} (known: {})", SOFTWARE.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))))?;
    let mut t = Target { config, period: 1, freq: false };
    for opt in parts {
        let (k, v) = opt.split_once('=').ok_or_else(|| bad(format!("{opt:?} is not period=N or freq=N")))?;
        let n: u64 = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad(format!("{k}: {v:?} is not a number above 0")))?;
        match k {
            "period" => t.period = n,
            "freq" => (t.period, t.freq) = (n, true),
            _ => return Err(bad(format!("unknown option {k:?} (period, freq)"))),
        }
    }
    Ok(t)
}

/// The online CPUs (`/sys/devices/system/cpu/online`, e.g. `0-3,6`).
fn online_cpus() -> Result<Vec<i32>, String> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").map_err(|e| format!("reading the online CPUs: {e}"))?;
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (i32, i32) = (a.parse().map_err(|_| format!("online CPUs: {text:?}"))?, b.parse().map_err(|_| format!("online CPUs: {text:?}"))?);
        cpus.extend(a..=b);
    }
    Ok(cpus)
}

/// Open the event on every online CPU and attach `prog` to each.
pub fn attach(prog: &ProgramMut<'_>, target: &str) -> Result<Vec<Link>, String> {
    let t = parse(target)?;
    let attr = PerfEventAttr {
        kind: PERF_TYPE_SOFTWARE,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config: t.config,
        sample_period_or_freq: t.period,
        flags: if t.freq { FLAG_FREQ } else { 0 },
        ..Default::default()
    };
    let mut links = Vec::new();
    for cpu in online_cpus()? {
        // SAFETY: attr is a valid perf_event_attr of the size it states.
        let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, &attr as *const PerfEventAttr, -1i32, cpu, -1i32, PERF_FLAG_FD_CLOEXEC) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            // A CPU that went offline meanwhile has no events.
            if e.raw_os_error() == Some(libc::ENODEV) {
                continue;
            }
            return Err(format!("perf_event_open({target}) on CPU {cpu}: {e}"));
        }
        // The link owns the event: dropping it closes the fd.
        match prog.attach_perf_event(fd as i32) {
            Ok(l) => links.push(l),
            Err(e) => {
                // SAFETY: fd is ours and not owned by any link.
                unsafe { libc::close(fd as i32) };
                return Err(format!("attaching to {target} on CPU {cpu}: {e}"));
            }
        }
    }
    if links.is_empty() {
        return Err(format!("{target}: no online CPU took the event"));
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_read_or_named_with_what_to_give() {
        assert_eq!(parse("software:page-faults-maj").unwrap(), Target { config: 6, period: 1, freq: false });
        assert_eq!(parse("software:cpu-clock:freq=99").unwrap(), Target { config: 0, period: 99, freq: true });
        assert_eq!(parse("software:page-faults:period=10").unwrap().period, 10);
        assert!(parse("hardware:cycles").unwrap_err().contains("only software events"));
        assert!(parse("software:nope").unwrap_err().contains("known: cpu-clock"));
        assert!(parse("software:cpu-clock:freq=0").unwrap_err().contains("above 0"));
        assert!(parse("software:cpu-clock:hz=9").unwrap_err().contains("unknown option"));
    }

    #[test]
    fn the_attr_has_a_published_size() {
        // PERF_ATTR_SIZE_VER1
        assert_eq!(std::mem::size_of::<PerfEventAttr>(), 72);
    }
}
