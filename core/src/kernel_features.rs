//! What the running kernel offers, probed without loading anything. Cached for the
//! life of the process: the answers do not change while the host runs.

use std::path::Path;
use std::sync::Mutex;

/// How a BPF program attaches, from its ELF section name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttachKind {
    Fentry,
    Kprobe,
    Tracepoint,
    RawTracepoint,
    TpBtf,
    Uprobe,
    PerfEvent,
    Other,
}

impl AttachKind {
    pub fn from_section(section: &str) -> AttachKind {
        let prefix = section.split('/').next().unwrap_or("");
        match prefix {
            "fentry" | "fexit" | "fmod_ret" | "fentry.s" | "fexit.s" => AttachKind::Fentry,
            "kprobe" | "kretprobe" | "kprobe.multi" | "kretprobe.multi" | "ksyscall"
            | "kretsyscall" => AttachKind::Kprobe,
            "tracepoint" | "tp" => AttachKind::Tracepoint,
            "raw_tp" | "raw_tracepoint" | "raw_tp.w" | "raw_tracepoint.w" => AttachKind::RawTracepoint,
            "tp_btf" => AttachKind::TpBtf,
            "uprobe" | "uretprobe" | "uprobe.s" | "uretprobe.s" | "usdt" => AttachKind::Uprobe,
            "perf_event" => AttachKind::PerfEvent,
            _ => AttachKind::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AttachKind::Fentry => "fentry",
            AttachKind::Kprobe => "kprobe",
            AttachKind::Tracepoint => "tracepoint",
            AttachKind::RawTracepoint => "raw_tp",
            AttachKind::TpBtf => "tp_btf",
            AttachKind::Uprobe => "uprobe",
            AttachKind::PerfEvent => "perf_event",
            AttachKind::Other => "other",
        }
    }
}

/// Kinds found unusable on this kernel, with the reason, so later plugins skip
/// them without another trial load.
static UNUSABLE: Mutex<Vec<(AttachKind, String)>> = Mutex::new(Vec::new());

pub fn known_unusable(kind: AttachKind) -> Option<String> {
    let v = UNUSABLE.lock().unwrap_or_else(|e| e.into_inner());
    v.iter().find(|(k, _)| *k == kind).map(|(_, r)| r.clone())
}

pub fn mark_unusable(kind: AttachKind, reason: &str) {
    let mut v = UNUSABLE.lock().unwrap_or_else(|e| e.into_inner());
    if !v.iter().any(|(k, _)| *k == kind) {
        v.push((kind, reason.to_string()));
    }
}

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

fn tracefs_ready() -> bool {
    Path::new(TRACEFS).join("events").is_dir() || Path::new(DEBUGFS_TRACING).join("events").is_dir()
}

/// Classic tracepoints need tracefs for their event ids. Mount it if it is missing
/// (we are root); otherwise say exactly what to run.
pub fn ensure_tracefs() -> Result<(), String> {
    if tracefs_ready() {
        return Ok(());
    }
    let target = std::ffi::CString::new(TRACEFS).unwrap();
    let fstype = std::ffi::CString::new("tracefs").unwrap();
    let src = std::ffi::CString::new("nodev").unwrap();
    // SAFETY: plain mount(2) with valid NUL-terminated strings.
    let rc = unsafe {
        libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null())
    };
    if rc == 0 && tracefs_ready() {
        tracing::info!("mounted tracefs at {TRACEFS}");
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    Err(format!(
        "tracefs is not mounted and mounting it failed ({err}): run `mount -t tracefs nodev {TRACEFS}` as root"
    ))
}

/// A reason this kind cannot work here, found without a trial load.
pub fn precheck(kind: AttachKind) -> Result<(), String> {
    if let Some(r) = known_unusable(kind) {
        return Err(r);
    }
    let r = match kind {
        AttachKind::Kprobe => {
            let pmu = Path::new("/sys/bus/event_source/devices/kprobe/type").exists();
            let legacy = Path::new(TRACEFS).join("kprobe_events").exists()
                || Path::new(DEBUGFS_TRACING).join("kprobe_events").exists();
            if pmu || legacy {
                Ok(())
            } else {
                Err("kprobes are not available on this kernel (CONFIG_KPROBES is off)".to_string())
            }
        }
        AttachKind::Tracepoint => ensure_tracefs(),
        _ => Ok(()),
    };
    if let Err(e) = &r {
        mark_unusable(kind, e);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_map_to_kinds() {
        assert_eq!(AttachKind::from_section("fexit/do_sys_openat2"), AttachKind::Fentry);
        assert_eq!(AttachKind::from_section("kretprobe/do_sys_openat2"), AttachKind::Kprobe);
        assert_eq!(AttachKind::from_section("tracepoint/syscalls/sys_enter_openat"), AttachKind::Tracepoint);
        assert_eq!(AttachKind::from_section("tp_btf/sched_switch"), AttachKind::TpBtf);
        assert_eq!(AttachKind::from_section("raw_tp/sys_enter"), AttachKind::RawTracepoint);
        assert_eq!(AttachKind::from_section("xdp"), AttachKind::Other);
    }
}
