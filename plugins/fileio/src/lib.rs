//! The `fileio` tracer (filetop + fileslower): reads, writes, fsyncs and
//! fdatasyncs per process and per file, bytes as /proc/PID/io counts them,
//! latency per operation as log2 histograms (aggregated in the kernel), and
//! each call slower than a threshold streamed as a record.

pub mod settings;
pub mod stats;
/// Rust twins of bpf/fileio.h, generated from the object's BTF.
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/fileio_types.rs"));
}

use abi_stable::std_types::{ROption, RVec};
use stats::{kind_name, path_of, FileStats, OP_NAMES};
use tracer_plugin_api::{
    export_tracer, AttachAlternative, CounterSpec, FieldKind, FieldValue, MapSnapshot, NativeTracer, Panel, PanelKind, PluginDescriptor, PluginInfo, ProbeSpec,
    ProgramRef, RingSpec, Value, PLUGIN_API_VERSION,
};
use tracer_plugin_kit::panels::{def, PanelDef};
use tracer_plugin_kit::table::{column, extra, fields, flex, key, push_row, table, Column, Recent};
use tracer_plugin_kit::{c_str, read};
use types::*;

pub static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fileio.bpf.o"));

/// The system calls traced, as their tracepoints name them.
const CALLS: [&str; 12] = ["read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2", "fsync", "fdatasync"];

/// One list of columns: the slow-call records' fields and their panel.
fn slow_columns() -> Vec<Column<fileio_slow>> {
    vec![
        column("ts", FieldKind::MONO_TIME_NS, "ns", |e| Value::u64(e.ts_ns)),
        key(column("pid", FieldKind::U64, "", |e| Value::u64(e.tgid as u64))),
        extra(column("tid", FieldKind::U64, "", |e| Value::u64(e.tid as u64))),
        key(column("comm", FieldKind::STR, "", |e| Value::str(&c_str(&e.comm)))),
        column("op", FieldKind::STR, "", |e| Value::str(OP_NAMES.get(e.op as usize).copied().unwrap_or("?"))),
        column("bytes", FieldKind::BYTES, "bytes", |e| if e.ret < 0 { Value::missing() } else { Value::u64(e.ret as u64) }),
        column("latency", FieldKind::DURATION_NS, "ns", |e| Value::u64(e.ns)),
        extra(column("error", FieldKind::I64, "", |e| if e.ret < 0 { Value::i64(-e.ret) } else { Value::missing() })),
        extra(column("type", FieldKind::STR, "", |e| Value::str(kind_name(e.kind)))),
        flex(24, column("file", FieldKind::STR, "", |e| Value::str(&path_of(&e.dir, &e.name, e.name_truncated, e.kind, 0)))),
    ]
}


#[derive(Default)]
pub struct FileIo {
    stats: FileStats,
    slow: Recent<fileio_slow>,
}

const PANELS: &[PanelDef<FileIo>] = &[def("slow", "Slow file calls", PanelKind::TABLE, |s| Panel::Table(table(&slow_columns(), s.slow.newest())))];

pub fn descriptor() -> PluginDescriptor {
    let c = |index: u32, name: &str, is_drop: bool| CounterSpec { map: "fileio_counters".into(), index, name: name.into(), is_drop };
    let per_call: Vec<ProgramRef> = CALLS.iter().flat_map(|call| [ProgramRef::new(&format!("fileio_enter_{call}")), ProgramRef::new(&format!("fileio_exit_{call}"))]).collect();
    let mut panels = tracer_plugin_kit::panels::specs(stats::PANELS);
    panels.extend(tracer_plugin_kit::panels::specs(PANELS));
    PluginDescriptor {
        info: PluginInfo {
            name: "fileio".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "File I/O per process and per file: reads, writes, syncs, bytes, latency, slow calls".into(),
            api_version: PLUGIN_API_VERSION,
        },
        bpf_object: RVec::from(BPF_OBJECT),
        probes: vec![ProbeSpec {
            name: "calls".into(),
            alternatives: vec![
                AttachAlternative { programs: per_call.into() },
                AttachAlternative::of(&["fileio_enter_raw", "fileio_exit_raw"]),
            ]
            .into(),
        }]
        .into(),
        rings: vec![RingSpec { map: "fileio_slow_calls".into(), fields: fields(&slow_columns()).into() }].into(),
        counters: vec![
            c(FILEIO_STAT_FILE_INSERTED, "file entries inserted", false),
            c(FILEIO_STAT_FILE_FAILED, "file figures not stored", true),
            c(FILEIO_STAT_RING_FULL, "slow calls not streamed (ring full)", true),
            c(FILEIO_STAT_UNTRACKED, "calls not timed (no task storage)", true),
        ]
        .into(),
        polled_maps: vec!["fileio_files".into(), "fileio_hist".into(), "fileio_counters".into()].into(),
        config_map: ROption::RSome("fileio_filter".into()),
        panels: panels.into(),
        settings: settings::specs().into(),
        metrics: stats::metric_specs().into(),
    }
}

impl NativeTracer for FileIo {
    fn describe(&self) -> PluginDescriptor {
        descriptor()
    }

    fn configure(&mut self, json: &str) -> Result<Vec<u8>, String> {
        let s = settings::Settings::parse(json)?;
        Ok(s.filter_bytes(tracer_plugin_kit::host_pid(), tracer_plugin_kit::next_filter_gen()))
    }

    fn on_record(&mut self, _ring: u32, data: &[u8], out: Option<&mut RVec<FieldValue>>) -> Result<(), String> {
        let e: fileio_slow = read(data).ok_or("fileio: slow-call record too short")?;
        if let Some(out) = out {
            push_row(&slow_columns(), &e, out);
        }
        self.slow.push(e);
        Ok(())
    }

    fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        self.stats.on_map(snap)
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        if let Some(d) = PANELS.iter().find(|d| d.id == id) {
            return Ok((d.build)(self));
        }
        tracer_plugin_kit::panels::build("fileio", stats::PANELS, &self.stats, id)
    }

    fn reset(&mut self) {
        self.stats.reset();
        self.slow.clear();
    }

    fn metrics(&self) -> Vec<tracer_plugin_api::MetricSample> {
        self.stats.metrics()
    }
}

export_tracer!(FileIo::default);

#[cfg(test)]
mod tests;
