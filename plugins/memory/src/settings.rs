//! `[plugins.memory]` settings, the bytes of `struct memory_filter`, and the
//! uprobe targets of the process whose allocations are followed.

use crate::types::memory_filter;
use serde::Deserialize;
use tracer_plugin_api::{SettingKind, SettingSpec};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub uid: Option<u32>,
    #[serde(default)]
    pub include_self: bool,
    /// Follow this process's malloc, calloc, realloc and free.
    pub leaks_pid: Option<u32>,
    /// Follow kernel allocations (kmalloc, kmem_cache) to their frees.
    #[serde(default)]
    pub kernel_allocations: bool,
    /// Follow page allocations (mm_page_alloc) to their frees.
    #[serde(default)]
    pub page_allocations: bool,
}

/// The keys above, for the host.
pub fn specs() -> Vec<SettingSpec> {
    let mut v = tracer_plugin_kit::settings::proc_filter_specs();
    v.push(tracer_plugin_kit::settings::uid_spec());
    v.push(
        SettingSpec::new("leaks_pid", SettingKind::UINT, "follow this process's malloc, calloc, realloc and free (uprobes on its libc): what it holds, by stack")
            .range(1, u32::MAX as u64),
    );
    v.push(
        SettingSpec::new("kernel_allocations", SettingKind::BOOL, "follow kmalloc and kmem_cache allocations (of the processes pid/comm pick) to their frees: held by call site; every kernel allocation pays for it")
            .default_value("false"),
    );
    v.push(
        SettingSpec::new("page_allocations", SettingKind::BOOL, "follow page allocations (of the processes pid/comm pick) to their frees: held by call site, the caller found in each one's kernel stack; every page allocation pays for it (about a microsecond)")
            .default_value("false"),
    );
    v
}

impl Settings {
    pub fn parse(json: &str) -> Result<Settings, String> {
        let s: Settings = tracer_plugin_kit::parse_settings(json)?;
        tracer_plugin_kit::check_comm_and_pid(s.comm.as_deref(), s.pid)?;
        if s.leaks_pid == Some(0) {
            return Err("leaks_pid: 0 is no process".into());
        }
        Ok(s)
    }

    /// `page_skip`: the page allocator's address ranges (crate::pages).
    pub fn filter_bytes(&self, self_pid: u32, gen: u32, page_skip: &[(u64, u64)]) -> Vec<u8> {
        let mut f = memory_filter {
            proc: tracer_plugin_kit::proc_filter(self.pid, self.comm.as_deref(), self.include_self, self_pid, gen),
            uid: tracer_plugin_kit::uid_filter(self.uid),
            leaks_pid: self.leaks_pid.unwrap_or(0),
            kernel_allocs: self.kernel_allocations as u32,
            page_allocs: self.page_allocations as u32,
            page_size: tracer_plugin_kit::page_size() as u32,
            page_skip_n: page_skip.len().min(f_skip_max()) as u32,
            ..Default::default()
        };
        for (slot, (a, b)) in f.page_skip.iter_mut().zip(page_skip) {
            *slot = [*a, *b];
        }
        tracer_plugin_kit::bytes_of(&f).to_vec()
    }
}

fn f_skip_max() -> usize {
    crate::types::MEMORY_PAGE_SKIP_MAX as usize
}

/// The C library process `pid` maps, as a path that reaches it from here
/// (through /proc/PID/root: the process's own mount namespace).
pub fn libc_of(pid: u32, maps: &str) -> Result<String, String> {
    let path = tracer_plugin_kit::usym::parse_maps(maps)
        .into_iter()
        .map(|m| m.path)
        .find(|p| {
            let base = p.rsplit('/').next().unwrap_or(p);
            base.starts_with("libc.so") || (base.starts_with("libc-") && base.ends_with(".so"))
        })
        .ok_or_else(|| format!("leaks_pid: process {pid} maps no C library (a static binary?): its allocations cannot be followed"))?;
    Ok(format!("/proc/{pid}/root{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_settings_are_the_parsed_ones() {
        tracer_plugin_kit::test_support::assert_settings_declared(&specs(), |j| Settings::parse(j).map(|_| ()));
    }

    #[test]
    fn settings_to_filter_and_the_library_to_probe() {
        let f: memory_filter = tracer_plugin_kit::read(&Settings::parse(r#"{"leaks_pid": 42}"#).unwrap().filter_bytes(5, 2, &[])).unwrap();
        assert_eq!((f.leaks_pid, f.proc.exclude_pid, f.proc.gen), (42, 5, 2));
        assert!(Settings::parse(r#"{"leaks_pid": 0}"#).unwrap_err().contains("leaks_pid"));
        let f: memory_filter = tracer_plugin_kit::read(&Settings::parse(r#"{"page_allocations": true}"#).unwrap().filter_bytes(5, 2, &[(10, 20), (30, 40)])).unwrap();
        assert_eq!((f.page_allocs, f.page_skip_n, f.page_skip[1], f.page_size % 4096), (1, 2, [30, 40], 0));
        let maps = "7f00-7f10 r-xp 00028000 fe:00 456 /usr/lib/x86_64-linux-gnu/libc.so.6\n";
        assert_eq!(libc_of(42, maps).unwrap(), "/proc/42/root/usr/lib/x86_64-linux-gnu/libc.so.6");
        assert!(libc_of(42, "7f00-7f10 r-xp 0 fe:00 1 /usr/bin/static-thing\n").unwrap_err().contains("static binary"));
    }
}
