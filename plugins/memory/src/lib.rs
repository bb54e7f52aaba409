//! The `memory` tracer, first part: OOM kills (oomkill), one record each
//! with the victim, its sizes as the kernel reports them, the task whose
//! allocation caused the kill and the memory cgroup limit it hit. Kernel
//! allocations, user-space leaks, reclaim stalls and swap are to come.

/// Rust twins of bpf/memory.h, generated from the object's BTF.
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/memory_types.rs"));
}

use abi_stable::std_types::{ROption, RVec};
use tracer_plugin_api::*;
use tracer_plugin_kit::metrics;
use tracer_plugin_kit::panels::counters;
use tracer_plugin_kit::table::{column, extra, fields, key, push_row, table, Column, Recent};
use tracer_plugin_kit::{bytes_of, c_str, key_u32, per_cpu_values, read, sat_sum, settings::ProcSettings};
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
    /// The kernel-side count of OOM kills (filtered out of the records too).
    oom_kills: u64,
}

pub fn descriptor() -> PluginDescriptor {
    PluginDescriptor {
        info: PluginInfo {
            name: "memory".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Memory pressure: OOM kills (victim, sizes, the cgroup limit hit)".into(),
            api_version: PLUGIN_API_VERSION,
        },
        bpf_object: RVec::from(BPF_OBJECT),
        probes: vec![ProbeSpec { name: "oom".into(), alternatives: vec![AttachAlternative::of(&["memory_oom_tp"])].into() }].into(),
        rings: vec![RingSpec { map: "memory_events".into(), fields: fields(&columns()).into() }].into(),
        counters: vec![CounterSpec { map: "memory_counters".into(), index: MEMORY_STAT_RING_FULL, name: "ring buffer full".into(), is_drop: true }].into(),
        polled_maps: vec!["memory_counters".into()].into(),
        config_map: ROption::RSome("memory_filter".into()),
        panels: vec![PanelSpec::new("oom_kills", "OOM kills", PanelKind::TABLE), PanelSpec::new("summary", "Memory totals", PanelKind::COUNTERS)].into(),
        settings: tracer_plugin_kit::settings::proc_filter_specs().into(),
        metrics: vec![MetricSpec::new("oom_kills_total", MetricKind::COUNTER, "1", "processes killed by the OOM killer (oom:mark_victim), whatever the filter", &[])].into(),
    }
}

impl NativeTracer for Memory {
    fn describe(&self) -> PluginDescriptor {
        descriptor()
    }

    fn configure(&mut self, json: &str) -> Result<Vec<u8>, String> {
        Ok(bytes_of(&memory_filter { proc: ProcSettings::parse(json)?.filter() }).to_vec())
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
                    if key_u32(&e.key, 0) == Some(MEMORY_STAT_OOM_KILLS) {
                        // Never down: a re-attached map starts from 0.
                        self.oom_kills = self.oom_kills.max(sat_sum(per_cpu_values::<u64>(snap, &e.value)));
                    }
                }
                Ok(())
            }
            other => Err(format!("memory: unexpected map {other}")),
        }
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        match id {
            "oom_kills" => Ok(Panel::Table(table(&columns(), self.recent.newest()))),
            "summary" => Ok(counters(&[("OOM kills", self.records - self.records_base, ""), ("OOM kills, any process", self.oom_kills, "")])),
            other => Err(format!("memory: no panel {other:?} (it has oom_kills, summary)")),
        }
    }

    fn reset(&mut self) {
        self.recent.clear();
        self.records_base = self.records;
    }

    fn metrics(&self) -> Vec<MetricSample> {
        vec![metrics::counter("oom_kills_total", &[], self.oom_kills)]
    }
}

export_tracer!(Memory::default);

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(m.on_record(0, &[1, 2, 3], None).is_err(), "a short record is an error, not a panic");
    }
}
