//! The `memory` tracer: OOM kills (oomkill), one record each with the
//! victim, its sizes as the kernel reports them, the task whose allocation
//! caused the kill and the memory cgroup limit it hit; reclaim stalls
//! (direct and memory cgroup reclaim) as histograms and per process; and,
//! for one chosen process, what it holds (memleak -p): its malloc, calloc,
//! realloc and free followed by uprobes, outstanding blocks by stack; and
//! kernel allocations (kmalloc, kmem_cache, pages) held, by call site.

pub mod ksites;
pub mod leaks;
pub mod pages;
pub mod reclaim;
pub mod settings;

/// Rust twins of bpf/memory.h, generated from the object's BTF.
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/memory_types.rs"));
}

use abi_stable::std_types::{ROption, RVec};
use tracer_plugin_api::*;
use tracer_plugin_kit::metrics;
use tracer_plugin_kit::panels::counters;
use tracer_plugin_kit::table::{column, extra, fields, key, push_row, table, Column, Recent};
use tracer_plugin_kit::{c_str, key_u32, per_cpu_values, read, sat_sum};
use types::*;

pub static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/memory.bpf.o"));

/// KiB as bytes, or missing where this kernel's tracepoint does not say.
fn kib(e: &memory_oom, v: u64) -> FieldValue {
    if e.has_details == 0 {
        Value::missing()
    } else {
        Value::u64(v.saturating_mul(1024))
    }
}

/// One list of columns: the ring's record fields and the panel's table.
fn columns() -> Vec<Column<memory_oom>> {
    vec![
        column("ts", FieldKind::MONO_TIME_NS, "ns", |e| Value::u64(e.ts_ns)),
        key(column("pid", FieldKind::U64, "", |e| Value::u64(e.pid as u64))),
        // 6.1's tracepoint names no comm: missing, not empty.
        key(column("comm", FieldKind::STR, "", |e| if e.comm[0] == 0 { Value::missing() } else { Value::str(&c_str(&e.comm)) })),
        column("anon_rss", FieldKind::BYTES, "bytes", |e| kib(e, e.anon_rss_kb)),
        extra(column("file_rss", FieldKind::BYTES, "bytes", |e| kib(e, e.file_rss_kb))),
        extra(column("shmem_rss", FieldKind::BYTES, "bytes", |e| kib(e, e.shmem_rss_kb))),
        extra(column("total_vm", FieldKind::BYTES, "bytes", |e| kib(e, e.total_vm_kb))),
        extra(column("pgtables", FieldKind::BYTES, "bytes", |e| kib(e, e.pgtables_kb))),
        column("cgroup_limit", FieldKind::BYTES, "bytes", |e| if e.memcg_limit_kb == 0 { Value::missing() } else { Value::u64(e.memcg_limit_kb.saturating_mul(1024)) }),
        extra(column("uid", FieldKind::U64, "", |e| if e.has_details == 0 { Value::missing() } else { Value::u64(e.uid as u64) })),
        extra(column("oom_score_adj", FieldKind::I64, "", |e| if e.has_details == 0 { Value::missing() } else { Value::i64(e.oom_score_adj as i64) })),
        column("killer_pid", FieldKind::U64, "", |e| Value::u64(e.killer_pid as u64)),
        column("killer_comm", FieldKind::STR, "", |e| Value::str(&c_str(&e.killer_comm))),
    ]
}

#[derive(Default)]
pub struct Memory {
    recent: Recent<memory_oom>,
    /// Records since start, and at the last reset.
    records: u64,
    records_base: u64,
    /// The kernel-side counters (OOM kills also of those filtered out of the records).
    counters: [u64; MEMORY_STAT_MAX as usize],
    reclaim: reclaim::Reclaim,
    leaks: leaks::Leaks,
    ksites: ksites::KernelSites,
    /// Probes the settings add: the uprobes of leaks_pid, the kmem hooks of
    /// kernel_allocations.
    extra_probes: Vec<ProbeSpec>,
    kernel_allocs: bool,
}

/// The kmem tracepoints (classic: their fields are named the same on
/// every kernel this supports).
fn kmem_probe() -> ProbeSpec {
    ProbeSpec {
        name: "kernel_allocations".into(),
        alternatives: vec![AttachAlternative::of(&["memory_kmalloc_tp", "memory_cache_alloc_tp", "memory_kfree_tp", "memory_cache_free_tp"])].into(),
    }
}

/// The page allocator's tracepoints (classic, as kmem's).
fn page_probe() -> ProbeSpec {
    ProbeSpec { name: "page_allocations".into(), alternatives: vec![AttachAlternative::of(&["memory_page_alloc_tp", "memory_page_free_tp"])].into() }
}

/// The user allocator's functions, each an entry and a return program.
const ALLOCATORS: [&str; 3] = ["malloc", "calloc", "realloc"];

/// uprobes on `libc` in process `pid` (its own mapping of the library).
fn leaks_probe(libc: &str, pid: u32) -> ProbeSpec {
    let mut programs = Vec::new();
    for f in ALLOCATORS {
        programs.push(ProgramRef::new(&format!("memory_{f}")).with_target(&format!("{libc}:{f}:{pid}")));
        programs.push(ProgramRef::new(&format!("memory_{f}_ret")).with_target(&format!("{libc}:{f}:{pid}")));
    }
    programs.push(ProgramRef::new("memory_free").with_target(&format!("{libc}:free:{pid}")));
    ProbeSpec { name: "leaks".into(), alternatives: vec![AttachAlternative { programs: programs.into() }].into() }
}

/// The probes every configuration has: OOM kills, reclaim stalls (each
/// reclaim hook optional: a kernel without BTF or memory cgroups still
/// gets its OOM kills).
fn base_probes() -> Vec<ProbeSpec> {
    let o = ProgramRef::optional;
    vec![
        ProbeSpec { name: "oom".into(), alternatives: vec![AttachAlternative::of(&["memory_oom_tp"])].into() },
        ProbeSpec {
            name: "reclaim".into(),
            alternatives: vec![AttachAlternative { programs: vec![o("memory_direct_begin"), o("memory_direct_end"), o("memory_memcg_begin"), o("memory_memcg_end")].into() }].into(),
        },
    ]
}

pub fn descriptor() -> PluginDescriptor {
    let c = |index: u32, name: &str, is_drop: bool| CounterSpec { map: "memory_counters".into(), index, name: name.into(), is_drop };
    PluginDescriptor {
        info: PluginInfo {
            name: "memory".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Memory: OOM kills, reclaim stalls, and what one process holds by allocation stack".into(),
            api_version: PLUGIN_API_VERSION,
        },
        bpf_object: RVec::from(BPF_OBJECT),
        probes: base_probes().into(),
        rings: vec![RingSpec { map: "memory_events".into(), fields: fields(&columns()).into() }].into(),
        counters: vec![
            c(MEMORY_STAT_RING_FULL, "ring buffer full", true),
            c(MEMORY_STAT_ALLOC_LOST, "allocations not followed (table full)", true),
            c(MEMORY_STAT_STACK_LOST, "allocation stacks not kept", true),
            c(MEMORY_STAT_RECLAIM_LOST, "reclaim stalls not timed", true),
            c(MEMORY_STAT_PROC_FAILED, "process reclaim figures not stored", true),
            c(MEMORY_STAT_KALLOC_LOST, "kernel allocations not followed (table full)", true),
            c(MEMORY_STAT_PAGE_NO_SITE, "page allocations with no caller in their stack", false),
        ]
        .into(),
        // memory_reclaim_procs before memory_comms (names of the processes
        // just read); memory_allocs before memory_stacks (the stacks named
        // are those still holding something); memory_kallocs before
        // memory_ksites (each site's oldest block).
        polled_maps: vec!["memory_counters".into(), "memory_reclaim_hist".into(), "memory_reclaim_procs".into(), "memory_comms".into(), "memory_allocs".into(), "memory_stacks".into(), "memory_kallocs".into(), "memory_ksites".into()]
            .into(),
        config_map: ROption::RSome("memory_filter".into()),
        panels: vec![
            PanelSpec::new("oom_kills", "OOM kills", PanelKind::TABLE),
            PanelSpec::new("leaks", "Held by the followed process, by stack", PanelKind::TABLE),
            PanelSpec::new("kernel_leaks", "Kernel allocations held, by call site", PanelKind::TABLE),
            PanelSpec::new("reclaim", "Reclaim stalls", PanelKind::LOG2_HISTOGRAM),
            PanelSpec::new("reclaim_processes", "Reclaim stalls by process", PanelKind::TABLE),
            PanelSpec::new("summary", "Memory totals", PanelKind::COUNTERS),
        ]
        .into(),
        settings: settings::specs().into(),
        metrics: vec![
            MetricSpec::new("oom_kills_total", MetricKind::COUNTER, "1", "processes killed by the OOM killer (oom:mark_victim), whatever the filter", &[]),
            MetricSpec::new("reclaim_stall_seconds", MetricKind::LOG2_HISTOGRAM, "seconds", "time allocating tasks spent reclaiming memory themselves (direct, memcg)", &["kind"]),
            MetricSpec::new("reclaimed_pages_total", MetricKind::COUNTER, "1", "pages those stalls reclaimed", &["kind"]),
            MetricSpec::new("process_reclaim_stalls_total", MetricKind::COUNTER, "1", "reclaim stalls by process name (top N names, the rest as other)", &["comm"]),
            MetricSpec::new("held_bytes", MetricKind::GAUGE, "bytes", "bytes the followed process (leaks_pid) allocated and has not freed since the tracer started", &[]),
            MetricSpec::new("held_blocks", MetricKind::GAUGE, "1", "blocks the followed process (leaks_pid) allocated and has not freed since the tracer started", &[]),
            MetricSpec::new("kernel_held_bytes", MetricKind::GAUGE, "bytes", "kmalloc and kmem_cache (kernel_allocations) and page (page_allocations) bytes allocated since the tracer started and not freed", &[]),
        ]
        .into(),
    }
}

impl Memory {
    /// Followed allocations an LRU table forgot when full: those followed,
    /// less those freed or replaced, past the table's size. At most, since a
    /// forgotten block freed later is not seen freed.
    fn forgotten(&self, made: &[u32], freed: &[u32], stale: u32, max: u32) -> u64 {
        let c = |i: &[u32]| sat_sum(i.iter().map(|i| self.counters[*i as usize]));
        c(made).saturating_sub(c(freed)).saturating_sub(c(&[stale])).saturating_sub(max as u64)
    }
}

impl NativeTracer for Memory {
    fn describe(&self) -> PluginDescriptor {
        descriptor()
    }

    fn configure(&mut self, json: &str) -> Result<Vec<u8>, String> {
        let s = settings::Settings::parse(json)?;
        self.extra_probes.clear();
        if let Some(pid) = s.leaks_pid {
            let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| format!("leaks_pid: process {pid}: {e}"))?;
            self.extra_probes.push(leaks_probe(&settings::libc_of(pid, &maps)?, pid));
        }
        if s.kernel_allocations {
            self.extra_probes.push(kmem_probe());
        }
        let mut page_skip = Vec::new();
        if s.page_allocations {
            page_skip = pages::skip_ranges(&tracer_plugin_kit::ksym::Kallsyms::load())?;
            self.extra_probes.push(page_probe());
        }
        self.leaks.pid = s.leaks_pid;
        self.kernel_allocs = s.kernel_allocations || s.page_allocations;
        Ok(s.filter_bytes(tracer_plugin_kit::host_pid(), tracer_plugin_kit::next_filter_gen(), &page_skip))
    }

    fn probes(&self) -> Option<Vec<ProbeSpec>> {
        if self.extra_probes.is_empty() {
            return None;
        }
        let mut v = base_probes();
        v.extend(self.extra_probes.iter().cloned());
        Some(v)
    }

    fn on_record(&mut self, _ring: u32, data: &[u8], out: Option<&mut RVec<FieldValue>>) -> Result<(), String> {
        let e: memory_oom = read(data).ok_or("OOM record too short")?;
        if let Some(out) = out {
            push_row(&columns(), &e, out);
        }
        self.recent.push(e);
        self.records += 1;
        Ok(())
    }

    fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        match snap.name.as_str() {
            "memory_counters" => {
                for e in snap.entries.iter() {
                    let Some(i) = key_u32(&e.key, 0) else { continue };
                    if let Some(c) = self.counters.get_mut(i as usize) {
                        // Never down: a re-attached map starts from 0.
                        *c = (*c).max(sat_sum(per_cpu_values::<u64>(snap, &e.value)));
                    }
                }
                Ok(())
            }
            "memory_reclaim_hist" | "memory_reclaim_procs" | "memory_comms" => {
                self.reclaim.on_map(snap);
                Ok(())
            }
            "memory_allocs" | "memory_stacks" => {
                self.leaks.on_map(snap, tracer_plugin_kit::mono_now_ns());
                Ok(())
            }
            "memory_kallocs" | "memory_ksites" => {
                self.ksites.on_map(snap, tracer_plugin_kit::mono_now_ns());
                Ok(())
            }
            other => Err(format!("memory: unexpected map {other}")),
        }
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        match id {
            "oom_kills" => Ok(Panel::Table(table(&columns(), self.recent.newest()))),
            "leaks" => Ok(Panel::Table(self.leaks.table())),
            "kernel_leaks" => Ok(Panel::Table(self.ksites.table())),
            "reclaim" => Ok(self.reclaim.latency()),
            "reclaim_processes" => Ok(Panel::Table(self.reclaim.processes())),
            "summary" => {
                let (blocks, bytes) = self.leaks.totals();
                let [direct, memcg] = self.reclaim.totals();
                Ok(counters(&[
                    ("OOM kills", self.records - self.records_base, ""),
                    ("OOM kills, any process", self.counters[MEMORY_STAT_OOM_KILLS as usize], ""),
                    ("direct reclaim stalls", direct.0, ""),
                    ("memcg reclaim stalls", memcg.0, ""),
                    ("pages reclaimed in stalls", direct.1.saturating_add(memcg.1), ""),
                    ("blocks held (leaks_pid)", blocks, ""),
                    ("bytes held (leaks_pid)", bytes, "bytes"),
                    ("allocations forgotten (table full), at most", self.forgotten(&[MEMORY_STAT_ALLOCS], &[MEMORY_STAT_FREES], MEMORY_STAT_STALE, MEMORY_ALLOCS_MAX), ""),
                    ("kernel blocks held", self.ksites.totals().0, ""),
                    ("kernel bytes held", self.ksites.totals().1, "bytes"),
                    ("kernel allocations forgotten (table full), at most", self.forgotten(&[MEMORY_STAT_KALLOCS, MEMORY_STAT_PAGE_ALLOCS], &[MEMORY_STAT_KFREES, MEMORY_STAT_PAGE_FREES], MEMORY_STAT_KSTALE, MEMORY_KALLOCS_MAX), ""),
                ]))
            }
            other => Err(format!("memory: no panel {other:?} (it has oom_kills, leaks, kernel_leaks, reclaim, reclaim_processes, summary)")),
        }
    }

    fn reset(&mut self) {
        self.recent.clear();
        self.records_base = self.records;
        self.reclaim.reset();
    }

    fn metrics(&self) -> Vec<MetricSample> {
        let mut out = vec![metrics::counter("oom_kills_total", &[], self.counters[MEMORY_STAT_OOM_KILLS as usize])];
        self.reclaim.metrics(&mut out);
        if self.leaks.pid.is_some() {
            let (blocks, bytes) = self.leaks.totals();
            out.push(metrics::gauge("held_bytes", &[], bytes as f64));
            out.push(metrics::gauge("held_blocks", &[], blocks as f64));
        }
        if self.kernel_allocs {
            out.push(metrics::gauge("kernel_held_bytes", &[], self.ksites.totals().1 as f64));
        }
        out
    }
}

export_tracer!(Memory::default);

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_plugin_kit::bytes_of;

    #[test]
    fn shared_structs_match_the_btf_of_the_embedded_object() {
        tracer_plugin_kit::test_support::assert_layouts_match(BPF_OBJECT, &types::layouts());
    }

    #[test]
    fn a_record_becomes_a_row_with_bytes_and_missing_where_the_kernel_says_nothing() {
        let mut m = Memory::default();
        let mut e = memory_oom { pid: 42, anon_rss_kb: 40_000, memcg_limit_kb: 40_960, has_details: 1, killer_pid: 42, ..Default::default() };
        e.comm = tracer_plugin_kit::comm_bytes("hog");
        let mut out = RVec::new();
        m.on_record(0, bytes_of(&e), Some(&mut out)).unwrap();
        let names: Vec<&str> = columns().iter().map(|c| c.name).collect();
        let at = |n: &str| out[names.iter().position(|x| *x == n).unwrap()].clone();
        assert_eq!(at("comm"), Value::str("hog"));
        assert_eq!(at("anon_rss"), Value::u64(40_000 * 1024));
        assert_eq!(at("cgroup_limit"), Value::u64(40 << 20));
        // 6.1: pid only.
        let old = memory_oom { pid: 7, ..Default::default() };
        let mut out = RVec::new();
        m.on_record(0, bytes_of(&old), Some(&mut out)).unwrap();
        assert_eq!(out[names.iter().position(|x| *x == "anon_rss").unwrap()], Value::missing());
        assert_eq!(out[names.iter().position(|x| *x == "comm").unwrap()], Value::missing());
        let Panel::Counters(c) = m.panel("summary").unwrap() else { panic!() };
        assert_eq!(c[0].value, 2);
        tracer_plugin_kit::test_support::assert_metrics_declared(&descriptor().metrics, &m.metrics());
        assert!(m.on_record(0, &[1, 2, 3], None).is_err(), "a short record is an error, not a panic");
    }
}
