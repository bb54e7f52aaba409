//! The `block` tracer (biolatency + biotop): block I/O per disk and operation
//! (read, write, flush, discard; sync or not) with queue, device and total
//! latency and request sizes as log2 histograms, errors and requests in
//! flight; per process, requests, bytes and time. Aggregated in the kernel,
//! per CPU; nothing is streamed per event.

pub mod settings;
pub mod stats;
/// Rust twins of bpf/block.h, generated from the object's BTF.
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/block_types.rs"));
}

use abi_stable::std_types::{ROption, RVec};
use settings::Settings;
use stats::BlockStats;
use tracer_plugin_api::{
    export_tracer, AttachAlternative, CounterSpec, FieldValue, MapSnapshot, NativeTracer, Panel, PluginDescriptor, PluginInfo, ProbeSpec, ProgramRef,
    PLUGIN_API_VERSION,
};

pub static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/block.bpf.o"));

#[derive(Default)]
pub struct Block {
    stats: BlockStats,
}

/// Issue and completion are needed; the rest is optional: block_io_start
/// (kernels from 6.5) and block_rq_insert name the submitting process when
/// the issue happens elsewhere (kblockd), requeue and merge keep the state of
/// requests handed back or merged away right.
fn alt(suffix: &str) -> AttachAlternative {
    let p = |n: &str| ProgramRef::new(&format!("block_{n}_{suffix}"));
    let o = |n: &str| ProgramRef::optional(&format!("block_{n}_{suffix}"));
    AttachAlternative { programs: vec![p("rq_issue"), p("rq_complete"), o("io_start"), o("rq_insert"), o("rq_requeue"), o("rq_merge"), o("io_done")].into() }
}

pub fn descriptor() -> PluginDescriptor {
    use types::*;
    let c = |index: u32, name: &str, is_drop: bool| CounterSpec { map: "block_counters".into(), index, name: name.into(), is_drop };
    PluginDescriptor {
        info: PluginInfo {
            name: "block".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Block I/O latency (queue, device, total), sizes and errors per disk and operation; I/O per process".into(),
            api_version: PLUGIN_API_VERSION,
        },
        bpf_object: RVec::from(BPF_OBJECT),
        probes: vec![ProbeSpec { name: "requests".into(), alternatives: vec![alt("btf"), alt("raw")].into() }].into(),
        rings: RVec::new(),
        counters: vec![
            c(BLOCK_STAT_RQ_FAILED, "request state not stored", true),
            c(BLOCK_STAT_DISK_FAILED, "disk figures not stored", true),
            c(BLOCK_STAT_PROC_FAILED, "process figures not stored", true),
            c(BLOCK_STAT_UNSEEN, "begun before attach", false),
            c(BLOCK_STAT_UNOWNED, "begun before attach, not counted under a process filter", false),
            c(BLOCK_STAT_REQUEUED, "requeued", false),
            c(BLOCK_STAT_PROC_INSERTED, "processes inserted", false),
            c(BLOCK_STAT_STALE, "stale request state replaced", false),
            c(BLOCK_STAT_STALE_DONE, "completed, block_io_done never came", true),
        ]
        .into(),
        // block_procs before block_comms: names are matched to the
        // processes just read.
        polled_maps: vec!["block_disks".into(), "block_procs".into(), "block_comms".into(), "block_rqs".into(), "block_counters".into()].into(),
        config_map: ROption::RSome("block_filter".into()),
        panels: tracer_plugin_kit::panels::specs(stats::PANELS).into(),
        settings: settings::specs().into(),
        metrics: stats::metric_specs().into(),
    }
}

impl NativeTracer for Block {
    fn describe(&self) -> PluginDescriptor {
        descriptor()
    }

    fn configure(&mut self, settings_json: &str) -> Result<Vec<u8>, String> {
        let s = Settings::parse(settings_json)?;
        Ok(s.filter_bytes(tracer_plugin_kit::host_pid(), tracer_plugin_kit::next_filter_gen()))
    }

    fn on_record(&mut self, _ring: u32, _data: &[u8], _out: Option<&mut RVec<FieldValue>>) -> Result<(), String> {
        Err("block streams no records".into())
    }

    fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        self.stats.on_map(snap)
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        tracer_plugin_kit::panels::build("block", stats::PANELS, &self.stats, id)
    }

    fn reset(&mut self) {
        self.stats.reset();
    }

    fn metrics(&self) -> Vec<tracer_plugin_api::MetricSample> {
        self.stats.metrics()
    }
}

export_tracer!(Block::default);

#[cfg(test)]
mod layout_tests {
    #[test]
    fn shared_structs_match_the_btf_of_the_embedded_object() {
        tracer_plugin_kit::test_support::assert_layouts_match(super::BPF_OBJECT, &super::types::layouts());
    }
}
