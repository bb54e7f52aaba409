//! The `faults` tracer: page faults per process, minor and major, exactly as
//! the kernel counts them (its own software perf events), with the kind of
//! mapping they hit and how long major faults took. Aggregated in the kernel.

pub mod settings;
pub mod stats;
/// Rust twins of bpf/faults.h, generated from the object's BTF.
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/faults_types.rs"));
}

use abi_stable::std_types::{ROption, RVec};
use stats::FaultStats;
use tracer_plugin_api::{
    export_tracer, AttachAlternative, CounterSpec, FieldValue, MapSnapshot, NativeTracer, Panel, PluginDescriptor, PluginInfo, ProbeSpec, ProgramRef,
    PLUGIN_API_VERSION,
};

pub static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/faults.bpf.o"));

#[derive(Default)]
pub struct Faults {
    stats: FaultStats,
}

pub fn descriptor() -> PluginDescriptor {
    use types::*;
    let programs = vec![
        ProgramRef::new("faults_minor").with_target("software:page-faults-min"),
        ProgramRef::new("faults_major").with_target("software:page-faults-maj"),
        // Major fault latency: the fault's entry (x86's exception tracepoints).
        ProgramRef::optional("faults_entry_user"),
        ProgramRef::optional("faults_entry_kernel"),
        // Names follow renames (exec, prctl); without tracefs they are the
        // name at the first fault.
        ProgramRef::optional("faults_rename_tp"),
    ];
    PluginDescriptor {
        info: PluginInfo {
            name: "faults".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Page faults per process, minor and major, file-backed or anonymous, and major fault latency".into(),
            api_version: PLUGIN_API_VERSION,
        },
        bpf_object: RVec::from(BPF_OBJECT),
        probes: vec![ProbeSpec { name: "faults".into(), alternatives: vec![AttachAlternative { programs: programs.into() }].into() }].into(),
        rings: RVec::new(),
        counters: vec![
            CounterSpec { map: "faults_counters".into(), index: FAULTS_STAT_PROC_INSERTED, name: "processes inserted".into(), is_drop: false },
            CounterSpec { map: "faults_counters".into(), index: FAULTS_STAT_PROC_FAILED, name: "process figures not stored".into(), is_drop: true },
        ]
        .into(),
        // faults_procs before faults_comms: names are matched to the
        // processes just read.
        polled_maps: vec!["faults_procs".into(), "faults_comms".into(), "faults_hist".into(), "faults_counters".into()].into(),
        config_map: ROption::RSome("faults_filter".into()),
        panels: tracer_plugin_kit::panels::specs(stats::PANELS).into(),
        settings: settings::specs().into(),
        metrics: stats::metric_specs().into(),
    }
}

impl NativeTracer for Faults {
    fn describe(&self) -> PluginDescriptor {
        descriptor()
    }

    fn configure(&mut self, json: &str) -> Result<Vec<u8>, String> {
        let s = settings::Settings::parse(json)?;
        Ok(s.filter_bytes(tracer_plugin_kit::host_pid(), tracer_plugin_kit::next_filter_gen()))
    }

    fn on_record(&mut self, _ring: u32, _data: &[u8], _out: Option<&mut RVec<FieldValue>>) -> Result<(), String> {
        Err("faults streams no records".into())
    }

    fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        self.stats.on_map(snap)
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        tracer_plugin_kit::panels::build("faults", stats::PANELS, &self.stats, id)
    }

    fn reset(&mut self) {
        self.stats.reset();
    }

    fn metrics(&self) -> Vec<tracer_plugin_api::MetricSample> {
        self.stats.metrics()
    }
}

export_tracer!(Faults::default);

#[cfg(test)]
mod layout_tests {
    #[test]
    fn shared_structs_match_the_btf_of_the_embedded_object() {
        tracer_plugin_kit::test_support::assert_layouts_match(super::BPF_OBJECT, &super::types::layouts());
    }
}
