//! The `syscall_latency` tracer: per-syscall latency histograms, counts, totals,
//! maxima and errors, per process too, aggregated in the kernel (like
//! syscount and funclatency). Nothing is streamed per event.

pub mod settings;
pub mod stats;
pub mod syscall_names;
/// Rust twins of bpf/syscall_latency.h, generated from the object's BTF.
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/syscall_latency_types.rs"));
}

use abi_stable::std_types::{ROption, RVec};
use settings::{syscall_nr, Settings};
use stats::SyscallStats;
use tracer_plugin_api::{
    export_tracer, AttachAlternative, CounterSpec, FieldValue, MapSnapshot, NativeTracer, Panel,
    PluginDescriptor, PluginInfo, ProbeSpec, ProgramRef, PLUGIN_API_VERSION,
};

pub static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/syscall_latency.bpf.o"));

#[derive(Default)]
pub struct SyscallLatency {
    stats: SyscallStats,
}

fn alt(names: &[&str]) -> AttachAlternative {
    let mut programs: Vec<ProgramRef> = names.iter().map(|n| ProgramRef::new(n)).collect();
    // Process renames (exec, prctl) keep comms current (optional: needs tracefs).
    programs.push(ProgramRef::optional("sc_rename_tp"));
    AttachAlternative { programs: programs.into() }
}

fn counter(index: u32, name: &str, is_drop: bool) -> CounterSpec {
    CounterSpec { map: "sc_counters".into(), index, name: name.into(), is_drop }
}

pub fn descriptor() -> PluginDescriptor {
    PluginDescriptor {
        info: PluginInfo {
            name: "syscall_latency".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Syscall latency histograms, counts, totals and errors, per syscall and per process".into(),
            api_version: PLUGIN_API_VERSION,
        },
        bpf_object: RVec::from(BPF_OBJECT),
        probes: vec![ProbeSpec {
            name: "syscalls".into(),
            alternatives: vec![
                alt(&["sc_enter_btf", "sc_exit_btf"]),
                alt(&["sc_enter_raw", "sc_exit_raw"]),
                alt(&["sc_enter_tp", "sc_exit_tp"]),
            ]
            .into(),
        }]
        .into(),
        rings: RVec::new(),
        counters: vec![
            counter(types::SC_STAT_PROC_INSERTED, "process-syscall pairs inserted", false),
            counter(types::SC_STAT_NO_ENTRY, "exits without a seen entry", false),
            counter(types::SC_STAT_PROC_FAILED, "process-syscall updates failed", true),
        ]
        .into(),
        polled_maps: vec!["sc_stats".into(), "sc_procs".into(), "sc_comms".into(), "sc_counters".into()].into(),
        config_map: ROption::RSome("sc_filter".into()),
        panels: tracer_plugin_kit::panels::specs(stats::PANELS).into(),
        settings: settings::specs().into(),
        metrics: stats::metric_specs().into(),
    }
}

impl NativeTracer for SyscallLatency {
    fn describe(&self) -> PluginDescriptor {
        descriptor()
    }

    fn configure(&mut self, settings_json: &str) -> Result<Vec<u8>, String> {
        let s = Settings::parse(settings_json)?;
        self.stats.mode = s.mode;
        self.stats.per_process = s.per_process;
        self.stats.histograms_of = s.histogram_syscall.iter().filter_map(|n| syscall_nr(n)).collect();
        self.stats.gen = tracer_plugin_kit::next_filter_gen();
        Ok(s.filter_bytes(tracer_plugin_kit::host_pid(), self.stats.gen))
    }

    fn on_record(&mut self, _ring: u32, _data: &[u8], _out: Option<&mut RVec<FieldValue>>) -> Result<(), String> {
        Err("syscall_latency streams no records".into())
    }

    fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        self.stats.on_map(snap)
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        tracer_plugin_kit::panels::build("syscall_latency", stats::PANELS, &self.stats, id)
    }

    fn reset(&mut self) {
        self.stats.reset();
    }

    fn metrics(&self) -> Vec<tracer_plugin_api::MetricSample> {
        self.stats.metrics()
    }
}

export_tracer!(SyscallLatency::default);

#[cfg(test)]
mod layout_tests {
    #[test]
    fn shared_structs_match_the_btf_of_the_embedded_object() {
        tracer_plugin_kit::test_support::assert_layouts_match(super::BPF_OBJECT, &super::types::layouts());
    }
}
