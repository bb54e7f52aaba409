//! `forks`: every new process or thread and who made it. The smallest useful
//! tracer on tracer's kit: a BPF program, a header, and this file.

use tracer_plugin_api::abi_stable::std_types::{ROption, RVec};
use tracer_plugin_api::*;
use tracer_plugin_kit::table::{column, fields, push_row, table, Column, Recent};
use tracer_plugin_kit::{bytes_of, c_str, read, settings::ProcSettings};

/// Rust twins of bpf/forks.h, generated at build time from the object's BTF.
mod types {
    include!(concat!(env!("OUT_DIR"), "/forks_types.rs"));
}
use types::{fork_event, forks_filter};

static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/forks.bpf.o"));

/// One list of columns: the ring's record fields and the panel's table.
fn columns() -> Vec<Column<fork_event>> {
    vec![
        column("ts", FieldKind::MONO_TIME_NS, "ns", |e| Value::u64(e.ts_ns)),
        column("parent", FieldKind::U64, "", |e| Value::u64(e.parent_pid as u64)),
        column("child", FieldKind::U64, "", |e| Value::u64(e.child_pid as u64)),
        column("comm", FieldKind::STR, "", |e| Value::str(&c_str(&e.comm))),
    ]
}

#[derive(Default)]
struct Forks {
    recent: Recent<fork_event>,
}

impl NativeTracer for Forks {
    fn describe(&self) -> PluginDescriptor {
        PluginDescriptor {
            info: PluginInfo { name: "forks".into(), version: "0.1.0".into(), description: "New processes and threads, and their parents".into(), api_version: PLUGIN_API_VERSION },
            bpf_object: RVec::from(BPF_OBJECT),
            // Alternatives in order of preference: the host keeps the first that works.
            probes: vec![ProbeSpec { name: "forks".into(), alternatives: vec![AttachAlternative::of(&["forks_btf"]), AttachAlternative::of(&["forks_tp"])].into() }].into(),
            rings: vec![RingSpec { map: "forks_events".into(), fields: fields(&columns()).into() }].into(),
            counters: vec![CounterSpec { map: "forks_stats".into(), index: 0, name: "ring buffer full".into(), is_drop: true }].into(),
            polled_maps: RVec::new(),
            config_map: ROption::RSome("forks_filter".into()),
            panels: vec![PanelSpec::new("recent", "Recent forks", PanelKind::TABLE)].into(),
            settings: tracer_plugin_kit::settings::proc_filter_specs().into(),
            metrics: RVec::new(),
        }
    }

    fn configure(&mut self, json: &str) -> Result<Vec<u8>, String> {
        Ok(bytes_of(&forks_filter { proc: ProcSettings::parse(json)?.filter() }).to_vec())
    }

    fn on_record(&mut self, _ring: u32, data: &[u8], out: Option<&mut RVec<FieldValue>>) -> Result<(), String> {
        let e: fork_event = read(data).ok_or("fork record too short")?;
        if let Some(out) = out {
            push_row(&columns(), &e, out);
        }
        self.recent.push(e);
        Ok(())
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        match id {
            "recent" => Ok(Panel::Table(table(&columns(), self.recent.newest()))),
            other => Err(format!("forks: no panel {other:?}")),
        }
    }

    fn reset(&mut self) {
        self.recent.clear();
    }
}

export_tracer!(Forks::default);
