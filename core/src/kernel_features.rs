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

    /// Every kind a program can attach as (all but `Other`).
    pub const ALL: [AttachKind; 7] = [
        AttachKind::Fentry,
        AttachKind::Kprobe,
        AttachKind::Tracepoint,
        AttachKind::RawTracepoint,
        AttachKind::TpBtf,
        AttachKind::Uprobe,
        AttachKind::PerfEvent,
    ];

    /// The kind labelled `label` (as `attach = "..."` names it).
    pub fn from_label(label: &str) -> Option<AttachKind> {
        Self::ALL.into_iter().find(|k| k.label() == label)
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
    // Mounted but closed to us (tracefs is root-only, mode 0700).
    if let Err(e) = std::fs::read_dir(Path::new(TRACEFS).join("events")) {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            return Err(format!("tracefs at {TRACEFS} is not readable by this user ({e}): run as root or with CAP_DAC_READ_SEARCH"));
        }
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

/// Raise the soft limit on open files to the hard limit: every BPF map,
/// program and link is a descriptor, and running out shows up as misleading
/// load errors.
pub fn raise_fd_limit() -> Result<(), String> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid pointer to an rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("reading the open-files limit: {}", std::io::Error::last_os_error()));
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: valid pointer to an rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(format!("raising the open-files limit to {}: {}", lim.rlim_max, std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// When an error came from running out of file descriptors, say so and what to
/// do; otherwise None. libbpf and dlopen report EMFILE in their own words.
pub fn fd_exhaustion_hint(text: &str) -> Option<String> {
    let t = text.to_ascii_lowercase();
    (t.contains("too many open files") || t.contains("emfile") || t.contains("os error 24")).then(|| {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: valid pointer to an rlimit.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        format!(
            "out of file descriptors (EMFILE; the limit is {}): raise it, e.g. `ulimit -n 65536`, and start again",
            lim.rlim_cur
        )
    })
}

/// This process's id as the kernel's initial PID namespace numbers it, which is
/// what BPF programs see (`bpf_get_current_pid_tgid`). Inside a PID namespace
/// `getpid()` gives another number. Asked of the kernel itself: a three-
/// instruction raw_tp program run once with BPF_PROG_TEST_RUN on this thread
/// returns `bpf_get_current_pid_tgid() >> 32`.
pub fn kernel_tgid() -> Result<u32, String> {
    // call bpf_get_current_pid_tgid (helper 14); r0 >>= 32; exit
    let insns: [u64; 3] = [
        u64::from_le_bytes([0x85, 0, 0, 0, 14, 0, 0, 0]),
        u64::from_le_bytes([0x77, 0, 0, 0, 32, 0, 0, 0]),
        u64::from_le_bytes([0x95, 0, 0, 0, 0, 0, 0, 0]),
    ];
    let license = c"GPL";
    let name = c"tracer_whoami";
    // SAFETY: the instructions are 8-byte `struct bpf_insn`s laid out as the
    // kernel reads them (x86-64, little-endian); pointers outlive the calls.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_RAW_TRACEPOINT,
            name.as_ptr(),
            license.as_ptr(),
            insns.as_ptr() as *const libbpf_sys::bpf_insn,
            insns.len() as _,
            std::ptr::null_mut(),
        )
    };
    if fd < 0 {
        return Err(format!("asking the kernel for the host's pid: loading a probe program failed ({})", std::io::Error::from_raw_os_error(-fd)));
    }
    // SAFETY: zeroed options with their size set, as libbpf expects.
    let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _;
    // SAFETY: fd is the program just loaded; opts is valid.
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(fd, &mut opts) };
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    if rc != 0 {
        return Err(format!("asking the kernel for the host's pid: running a probe program failed ({})", std::io::Error::from_raw_os_error(-rc)));
    }
    Ok(opts.retval)
}

#[cfg(test)]
mod pid_tests {
    #[test]
    fn the_kernel_numbers_this_process_as_getpid_does_outside_a_pid_namespace() {
        assert_eq!(unsafe { libc::geteuid() }, 0, "loads BPF: must run as root");
        // The test runner is not in a PID namespace of its own.
        assert_eq!(super::kernel_tgid().unwrap(), std::process::id());
    }

    #[test]
    fn emfile_is_named() {
        assert!(super::fd_exhaustion_hint("failed to open object: Too many open files (os error 24)").unwrap().contains("ulimit -n"));
        assert!(super::fd_exhaustion_hint("permission denied").is_none());
    }
}
