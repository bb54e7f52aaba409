//! The `sched` tracer: run-queue latency (runqlat) and on-CPU time (cpudist) as
//! log2 histograms, overall and per process; per process run and wait time,
//! CPU %, voluntary and involuntary switches and migrations. Aggregated in the
//! kernel, per CPU; nothing is streamed per event.

pub mod settings;
pub mod stats;
/// Rust twins of bpf/sched.h, generated from the object's BTF.
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/sched_types.rs"));
}

use abi_stable::std_types::{ROption, RVec};
use settings::Settings;
use stats::SchedStats;
use tracer_plugin_api::{
    export_tracer, AttachAlternative, CounterSpec, FieldValue, MapSnapshot, NativeTracer, Panel,
    PluginDescriptor, PluginInfo, ProbeSpec, ProgramRef, PLUGIN_API_VERSION,
};

pub static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sched.bpf.o"));

#[derive(Default)]
pub struct Sched {
    stats: SchedStats,
}

fn alt(suffix: &str) -> AttachAlternative {
    let names = ["sched_wakeup", "sched_wakeup_new", "sched_switch", "sched_migrate"];
    let mut programs: Vec<ProgramRef> =
        names.iter().map(|n| ProgramRef::new(&format!("{n}_{suffix}"))).collect();
    // Process renames (exec, prctl) keep comms current; without tracefs they
    // are the comm at first sight.
    programs.push(ProgramRef::optional("sched_rename_tp"));
    // Sets each CPU's running task right at timer ticks where a switch went
    // unseen; without it a running slice can count in the next interval.
    // Not on classic tracepoints (see sched.bpf.c).
    if suffix != "tp" {
        programs.push(ProgramRef::optional(&format!("sched_tick_{suffix}")));
    }
    AttachAlternative { programs: programs.into() }
}

pub fn descriptor() -> PluginDescriptor {
    PluginDescriptor {
        info: PluginInfo {
            name: "sched".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Run-queue latency, on-CPU time, context switches and migrations, per process".into(),
            api_version: PLUGIN_API_VERSION,
        },
        bpf_object: RVec::from(BPF_OBJECT),
        probes: vec![ProbeSpec { name: "scheduler".into(), alternatives: vec![alt("btf"), alt("raw"), alt("tp")].into() }]
            .into(),
        rings: RVec::new(),
        counters: vec![
            CounterSpec { map: "sched_counters".into(), index: types::SCHED_STAT_PROC_INSERTED, name: "processes inserted".into(), is_drop: false },
            CounterSpec { map: "sched_counters".into(), index: types::SCHED_STAT_TASK_FAILED, name: "thread state not stored".into(), is_drop: true },
            CounterSpec { map: "sched_counters".into(), index: types::SCHED_STAT_PROC_FAILED, name: "process figures not stored".into(), is_drop: true },
            CounterSpec { map: "sched_counters".into(), index: types::SCHED_STAT_ONCPU_REPAIRED, name: "unseen switches set right".into(), is_drop: false },
        ]
        .into(),
        // sched_oncpu before sched_procs: the running slices are added to the
        // process figures as they are read.
        polled_maps: vec![
            "sched_oncpu".into(),
            "sched_procs".into(),
            "sched_hists".into(),
            "sched_comms".into(),
            "sched_counters".into(),
        ]
        .into(),
        config_map: ROption::RSome("sched_filter".into()),
        panels: tracer_plugin_kit::panels::specs(stats::PANELS).into(),
        settings: settings::specs().into(),
        metrics: stats::metric_specs().into(),
    }
}

impl NativeTracer for Sched {
    fn describe(&self) -> PluginDescriptor {
        descriptor()
    }

    fn configure(&mut self, settings_json: &str) -> Result<Vec<u8>, String> {
        let s = Settings::parse(settings_json)?;
        self.stats.mode = s.mode;
        self.stats.histogram_pid = s.histogram_pid;
        Ok(s.filter_bytes(tracer_plugin_kit::host_pid(), tracer_plugin_kit::next_filter_gen()))
    }

    fn on_record(&mut self, _ring: u32, _data: &[u8], _out: Option<&mut RVec<FieldValue>>) -> Result<(), String> {
        Err("sched streams no records".into())
    }

    fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        self.stats.on_map(snap)
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        tracer_plugin_kit::panels::build("sched", stats::PANELS, &self.stats, id)
    }

    fn reset(&mut self) {
        self.stats.reset();
    }

    fn metrics(&self) -> Vec<tracer_plugin_api::MetricSample> {
        self.stats.metrics()
    }
}

export_tracer!(Sched::default);

#[cfg(test)]
mod layout_tests {
    #[test]
    fn shared_structs_match_the_btf_of_the_embedded_object() {
        tracer_plugin_kit::test_support::assert_layouts_match(super::BPF_OBJECT, &super::types::layouts());
    }
}
