//! The `pagecache` tracer (cachestat per process and per file): pages asked
//! for by reads, hits and misses, pages added, dirtied, evicted and written
//! back. Aggregated in the kernel; nothing is streamed.

pub mod settings;
pub mod stats;
/// Rust twins of bpf/pagecache.h, generated from the object's BTF.
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/pagecache_types.rs"));
}

use abi_stable::std_types::{ROption, RVec};
use stats::CacheStats;
use tracer_plugin_api::{
    export_tracer, AttachAlternative, CounterSpec, FieldValue, MapSnapshot, NativeTracer, Panel, PluginDescriptor, PluginInfo, ProbeSpec, ProgramRef,
    PLUGIN_API_VERSION,
};
use types::*;

pub static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pagecache.bpf.o"));

#[derive(Default)]
pub struct PageCache {
    stats: CacheStats,
}

/// Additions, evictions and dirtying are needed; writeback and reads are
/// optional: mm_filemap_get_pages exists from 6.10 (without it no page
/// asked for by a read is seen, so hits are not known); names follow
/// renames where tracefs is there.
fn alt(suffix: &str) -> AttachAlternative {
    let p = |n: &str| ProgramRef::new(&format!("pagecache_{n}_{suffix}"));
    let o = |n: &str| ProgramRef::optional(&format!("pagecache_{n}_{suffix}"));
    AttachAlternative { programs: vec![p("add"), p("delete"), p("dirty"), o("written"), o("reads"), ProgramRef::optional("pagecache_rename_tp")].into() }
}

pub fn descriptor() -> PluginDescriptor {
    let c = |index: u32, name: &str, is_drop: bool| CounterSpec { map: "pagecache_counters".into(), index, name: name.into(), is_drop };
    PluginDescriptor {
        info: PluginInfo {
            name: "pagecache".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "The page cache per process and per file: hits, misses, dirtied, evicted and written-back pages".into(),
            api_version: PLUGIN_API_VERSION,
        },
        bpf_object: RVec::from(BPF_OBJECT),
        probes: vec![ProbeSpec { name: "cache".into(), alternatives: vec![alt("btf"), alt("raw")].into() }].into(),
        rings: RVec::new(),
        counters: vec![
            c(PAGECACHE_STAT_PROC_INSERTED, "processes inserted", false),
            c(PAGECACHE_STAT_PROC_FAILED, "process figures not stored", true),
            c(PAGECACHE_STAT_FILE_INSERTED, "files inserted", false),
            c(PAGECACHE_STAT_FILE_FAILED, "file figures not stored", true),
        ]
        .into(),
        // pagecache_procs before pagecache_comms: names are matched to the
        // processes just read.
        polled_maps: vec!["pagecache_procs".into(), "pagecache_comms".into(), "pagecache_files".into(), "pagecache_totals".into(), "pagecache_counters".into()].into(),
        config_map: ROption::RSome("pagecache_filter".into()),
        panels: tracer_plugin_kit::panels::specs(stats::PANELS).into(),
        settings: settings::specs().into(),
        metrics: stats::metric_specs().into(),
    }
}

impl NativeTracer for PageCache {
    fn describe(&self) -> PluginDescriptor {
        descriptor()
    }

    fn configure(&mut self, json: &str) -> Result<Vec<u8>, String> {
        let s = settings::Settings::parse(json)?;
        Ok(s.filter_bytes(tracer_plugin_kit::host_pid(), tracer_plugin_kit::next_filter_gen()))
    }

    fn on_record(&mut self, _ring: u32, _data: &[u8], _out: Option<&mut RVec<FieldValue>>) -> Result<(), String> {
        Err("pagecache streams no records".into())
    }

    fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        self.stats.on_map(snap)
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        tracer_plugin_kit::panels::build("pagecache", stats::PANELS, &self.stats, id)
    }

    fn reset(&mut self) {
        self.stats.reset();
    }

    fn metrics(&self) -> Vec<tracer_plugin_api::MetricSample> {
        self.stats.metrics()
    }
}

export_tracer!(PageCache::default);

#[cfg(test)]
mod tests;
