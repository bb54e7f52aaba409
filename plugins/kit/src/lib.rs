//! Helpers shared by the tracer plugins (not part of the ABI contract): the
//! generated twins of the BPF structs and reading them from records and map
//! values (`pod`), per-CPU values, filters, settings checks, table columns.

#[cfg(any(feature = "build", test))]
pub mod btf_types;
#[cfg(feature = "build")]
pub mod build;
pub mod carried;
#[cfg(feature = "usym")]
pub mod usym;
pub mod comm_totals;
pub mod ksym;
pub mod metrics;
pub mod panels;
pub mod pod;
pub mod settings;
pub mod table;
#[cfg(feature = "test-support")]
pub mod test_support;

pub use pod::{bytes_of, per_cpu_values, read, read_head_into, read_prefix, sum_slots, zeroed, Layout, Pod};
use tracer_plugin_api::MapSnapshot;

/// Rust twins of bpf/include/tracer.h's structs, generated from its BTF.
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/kit_types_types.rs"));
}

/// A sum that stops at u64::MAX: counters come from a map, and a corrupt or
/// hostile value must not panic the plugin (debug) or wrap (release).
pub fn sat_sum(it: impl IntoIterator<Item = u64>) -> u64 {
    it.into_iter().fold(0u64, |a, b| a.saturating_add(b))
}

/// The `u32` at `off` of a map key, if the key is long enough: snapshot keys
/// are only as trustworthy as the map they came from.
pub fn key_u32(k: &[u8], off: usize) -> Option<u32> {
    k.get(off..off + 4).map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
}

/// Text up to the first NUL; invalid UTF-8 is replaced, never rejected.
pub fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns(), for the age of
/// what the kernel timestamped.
pub fn mono_now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The kernel's page size in bytes.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).max(4096) as u64
}

/// `dir/name` from the two names bpf/include/dentry_name.h reads, with `…`
/// where it cut one short (`truncated`: 1 name, 2 dir); "" when the kernel
/// had no name.
pub fn dentry_path(dir: &[u8], name: &[u8], truncated: u8) -> String {
    let mut n = c_str(name);
    let mut d = c_str(dir);
    if n.is_empty() {
        return n;
    }
    if truncated & 1 != 0 {
        n.push('…');
    }
    if truncated & 2 != 0 {
        d.push('…');
    }
    // "/" is the root's own name: no "//name".
    match d.as_str() {
        "" => n,
        "/" => format!("/{n}"),
        _ => format!("{d}/{n}"),
    }
}

/// `comm` as the kernel's 16-byte, NUL-padded buffer.
pub fn comm_bytes(comm: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    let n = comm.len().min(15);
    b[..n].copy_from_slice(&comm.as_bytes()[..n]);
    b
}

/// Each entry's per-CPU values as one slice per CPU, for summing.
pub fn per_cpu<'a>(snap: &MapSnapshot, value: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    let n = snap.values_per_key.max(1) as usize;
    let size = value.len() / n;
    value.chunks_exact(size.max(1))
}

/// The host's process id as BPF programs see it (see
/// [`tracer_plugin_api::HOST_KERNEL_TGID_ENV`]), else `getpid()`.
pub fn host_pid() -> u32 {
    std::env::var(tracer_plugin_api::HOST_KERNEL_TGID_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or_else(std::process::id)
}

/// A new filter generation, different from the last one this plugin handed out
/// (see `proc_filter.gen` in bpf/include/tracer.h). Never 0, so state stored
/// before any filter was written does not match.
pub fn next_filter_gen() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static GEN: AtomicU32 = AtomicU32::new(0);
    loop {
        let g = GEN.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if g != 0 {
            return g;
        }
    }
}

/// `struct proc_filter` (bpf/include/tracer.h), which every tracer's filter
/// starts with: only `pid`, only `comm`, and the host's own pid left out
/// unless `include_self`; `gen` tags the state the programs store under it.
pub fn proc_filter(pid: Option<u32>, comm: Option<&str>, include_self: bool, self_pid: u32, gen: u32) -> types::proc_filter {
    let mut f = types::proc_filter { pid: pid.unwrap_or(0), exclude_pid: if include_self { 0 } else { self_pid }, gen, ..Default::default() };
    if let Some(c) = comm {
        f.has_comm = 1;
        f.comm = comm_bytes(c);
    }
    f
}

/// `struct uid_filter` (bpf/include/tracer.h) for the `uid` setting.
pub fn uid_filter(uid: Option<u32>) -> types::uid_filter {
    types::uid_filter { uid: uid.unwrap_or(0), has_uid: uid.is_some() as u32 }
}

/// The checks every tracer's `comm` and `pid` settings need, with the key named.
pub fn check_comm_and_pid(comm: Option<&str>, pid: Option<u32>) -> Result<(), String> {
    if let Some(c) = comm {
        if c.is_empty() || c.len() > 15 {
            return Err(format!("comm: {c:?} must be 1 to 15 bytes (the kernel's TASK_COMM_LEN - 1)"));
        }
    }
    if pid == Some(0) {
        return Err("pid: 0 is the idle task; leave pid out to trace every process".into());
    }
    Ok(())
}

/// Parse settings JSON, dropping serde_json's "at line 1 column N": the user
/// wrote TOML, the host made the JSON.
pub fn parse_settings<T: for<'de> serde::Deserialize<'de>>(json: &str) -> Result<T, String> {
    serde_json::from_str(json).map_err(|e| {
        let m = e.to_string();
        m.split(" at line ").next().unwrap_or(&m).to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::RVec;
    use tracer_plugin_api::MapEntry;

    #[test]
    fn per_cpu_values_split_by_cpu() {
        let mut v = Vec::new();
        for cpu in 0..3u64 {
            v.extend_from_slice(&(cpu + 1).to_ne_bytes());
            v.extend_from_slice(&(10 * (cpu + 1)).to_ne_bytes());
        }
        let snap = MapSnapshot {
            name: "m".into(),
            values_per_key: 3,
            entries: RVec::from(vec![MapEntry { key: RVec::new(), value: v.clone().into() }]),
        };
        let cpus: Vec<[u64; 2]> = per_cpu_values(&snap, &v).collect();
        assert_eq!(cpus, vec![[1, 10], [2, 20], [3, 30]]);
        // A value one byte short per CPU is no value.
        assert_eq!(per_cpu_values::<[u64; 3]>(&snap, &v).count(), 0);
    }

    #[test]
    fn c_strings_and_comms() {
        assert_eq!(c_str(b"cat\0\0junk"), "cat");
        assert_eq!(&comm_bytes("a-very-long-command-name")[..], b"a-very-long-com\0");
    }
}
