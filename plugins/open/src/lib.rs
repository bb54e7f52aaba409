//! The `open` tracer: every open(2)-family call with path, flags and result, like
//! opensnoop, with kernel-side filters by pid, uid, comm and failed-only.

pub mod aggregate;
pub mod record;
pub mod settings;
/// Rust twins of bpf/opensnoop.h, generated from the object's BTF.
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/opensnoop_types.rs"));
}

use abi_stable::std_types::{ROption, RVec};
use aggregate::OpenStats;
use record::{flags_text, OpenRecord};
use settings::OpenSettings;
use std::collections::BTreeMap;
use tracer_plugin_api::{
    export_tracer, AttachAlternative, CounterSpec, FieldKind, FieldSpec, FieldValue, MapSnapshot, MetricKind,
    MetricSample, MetricSpec, NativeTracer, Panel, PanelKind, PluginDescriptor, PluginInfo, ProbeSpec, ProgramRef,
    RingSpec, Value, PLUGIN_API_VERSION,
};
use tracer_plugin_kit::panels::{self, def, PanelDef};
use tracer_plugin_kit::table::{column, extra, fields, flex, key, push_row, Column};

/// The compiled `bpf/opensnoop.bpf.c`.
pub static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/opensnoop.bpf.o"));

#[derive(Default)]
pub struct OpenTracer {
    stats: OpenStats,
    /// Since the plugin started, for the metrics (a reset clears `stats`).
    calls: BTreeMap<(&'static str, &'static str), u64>,
    errnos: BTreeMap<i64, u64>,
}

fn programs(names: &[(&str, bool)]) -> AttachAlternative {
    AttachAlternative {
        programs: names
            .iter()
            .map(|&(n, optional)| if optional { ProgramRef::optional(n) } else { ProgramRef::new(n) })
            .collect(),
    }
}

/// The fields of one record, in stream order; the path last, as opensnoop
/// prints it, with its marks before it.
fn record_columns() -> [Column<OpenRecord>; 14] {
    [
        extra(column("ts", FieldKind::MONO_TIME_NS, "ns", |r| Value::u64(r.ts_ns))),
        key(column("pid", FieldKind::U64, "", |r| Value::u64(r.pid as u64))),
        extra(column("tid", FieldKind::U64, "", |r| Value::u64(r.tid as u64))),
        column("uid", FieldKind::U64, "", |r| Value::u64(r.uid as u64)),
        extra(column("euid", FieldKind::U64, "", |r| Value::u64(r.euid as u64))),
        key(column("comm", FieldKind::STR, "", |r| Value::str(&r.comm.as_str()))),
        key(column("syscall", FieldKind::STR, "", |r| Value::str(r.syscall.name()))),
        column("ret", FieldKind::ERRNO_RESULT, "", |r| Value::i64(r.ret)),
        extra(column("flags", FieldKind::STR, "", |r| Value::str(&flags_text(r.flags)))),
        // mode only means something when a file may be created (O_CREAT, O_TMPFILE).
        column("mode", FieldKind::STR, "", |r| {
            if r.flags & (0o100 | 0o20000000) != 0 { Value::str(&format!("{:04o}", r.mode)) } else { Value::missing() }
        }),
        extra(column("dirfd", FieldKind::I64, "", |r| r.dirfd_shown().map(|fd| Value::i64(fd as i64)).unwrap_or_else(Value::missing))),
        extra(column("path_truncated", FieldKind::U64, "", |r| Value::u64(r.truncated() as u64))),
        extra(column("path_hex", FieldKind::STR, "", |r| r.path_hex.as_deref().map(Value::str).unwrap_or_else(Value::missing))),
        flex(12, column("path", FieldKind::STR, "", |r| if r.unread() { Value::missing() } else { Value::str(&r.path) })),
    ]
}

/// The fields of one record, in the order `on_record` pushes them.
pub fn record_fields() -> Vec<FieldSpec> {
    fields(&record_columns())
}

const PANELS: &[PanelDef<OpenTracer>] = &[
    def("recent", "Recent opens", PanelKind::TABLE, |t| Panel::Table(t.stats.recent())),
    def("top_files", "Top files", PanelKind::TABLE, |t| Panel::Table(t.stats.top_files())),
    def("top_procs", "Top processes", PanelKind::TABLE, |t| Panel::Table(t.stats.top_procs())),
    def("failures", "Failed opens", PanelKind::TABLE, |t| Panel::Table(t.stats.failures())),
    def("errors", "Failures by error", PanelKind::TABLE, |t| Panel::Table(t.stats.errors())),
    def("summary", "Open totals", PanelKind::COUNTERS, |t| t.stats.summary()),
];

pub fn metric_specs() -> Vec<MetricSpec> {
    vec![
        MetricSpec::new("opens_total", MetricKind::COUNTER, "1", "open-family calls by syscall and result (ok, failed)", &["syscall", "result"]),
        MetricSpec::new("open_errors_total", MetricKind::COUNTER, "1", "failed opens by errno (number)", &["errno"]),
    ]
}

pub fn descriptor() -> PluginDescriptor {
    let counter = |index, name: &str| CounterSpec { map: "open_stats".into(), index, name: name.into(), is_drop: true };
    PluginDescriptor {
        info: PluginInfo {
            name: "open".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "File opens (openat, openat2, open, creat): path, flags, fd or error".into(),
            api_version: PLUGIN_API_VERSION,
        },
        bpf_object: RVec::from(BPF_OBJECT),
        probes: vec![ProbeSpec {
            name: "opens".into(),
            alternatives: vec![
                programs(&[("open_fentry", false), ("open_fexit", false)]),
                programs(&[("open_kprobe", false), ("open_kretprobe", false)]),
                programs(&[
                    ("open_tp_enter_openat", false),
                    ("open_tp_exit_openat", false),
                    ("open_tp_enter_openat2", false),
                    ("open_tp_exit_openat2", false),
                    // open(2) and creat(2) exist only on some architectures.
                    ("open_tp_enter_open", true),
                    ("open_tp_exit_open", true),
                    ("open_tp_enter_creat", true),
                    ("open_tp_exit_creat", true),
                ]),
            ]
            .into(),
        }]
        .into(),
        rings: vec![RingSpec { map: "open_events".into(), fields: record_fields().into() }].into(),
        counters: vec![counter(types::OPEN_STAT_RINGBUF_FULL, "ring buffer full"), counter(types::OPEN_STAT_INFLIGHT_FULL, "entry not stored")].into(),
        polled_maps: RVec::new(),
        config_map: ROption::RSome("open_filter".into()),
        panels: panels::specs(PANELS).into(),
        settings: settings::specs().into(),
        metrics: metric_specs().into(),
    }
}

impl NativeTracer for OpenTracer {
    fn describe(&self) -> PluginDescriptor {
        descriptor()
    }

    fn configure(&mut self, settings_json: &str) -> Result<Vec<u8>, String> {
        Ok(OpenSettings::parse(settings_json)?.filter_bytes(tracer_plugin_kit::host_pid(), tracer_plugin_kit::next_filter_gen()))
    }

    fn on_record(
        &mut self,
        _ring: u32,
        data: &[u8],
        out: Option<&mut RVec<FieldValue>>,
    ) -> Result<(), String> {
        let r = OpenRecord::decode(data)?;
        if let Some(out) = out {
            push_row(&record_columns(), &r, out);
        }
        *self.calls.entry((r.syscall.name(), if r.failed() { "failed" } else { "ok" })).or_default() += 1;
        if r.failed() {
            *self.errnos.entry(-r.ret).or_default() += 1;
        }
        self.stats.add(r);
        Ok(())
    }

    fn on_map(&mut self, snapshot: &MapSnapshot) -> Result<(), String> {
        Err(format!("open: polls no map, got {}", snapshot.name))
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        panels::build("open", PANELS, self, id)
    }

    fn reset(&mut self) {
        self.stats.reset();
    }

    fn metrics(&self) -> Vec<MetricSample> {
        use tracer_plugin_kit::metrics::counter;
        let mut v: Vec<MetricSample> = self.calls.iter().map(|((call, result), n)| counter("opens_total", &[call, result], *n)).collect();
        v.extend(self.errnos.iter().map(|(e, n)| counter("open_errors_total", &[&e.to_string()], *n)));
        v
    }
}

export_tracer!(OpenTracer::default);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Syscall;

    #[test]
    fn decoded_fields_match_the_declared_fields() {
        let mut t = OpenTracer::default();
        let r = OpenRecord {
            ts_ns: 5,
            flags: 0o101,
            ret: 3,
            pid: 1,
            tid: 2,
            uid: 3,
            mode: 0o600,
            syscall: Syscall::Creat,
            comm: "sh".into(),
            path: "/tmp/x".into(),
            ..Default::default()
        };
        let mut out = RVec::new();
        t.on_record(0, &r.encode(), Some(&mut out)).unwrap();
        assert_eq!(out.len(), record_fields().len());
        let field = |n: &str| out[record_fields().iter().position(|f| f.name.as_str() == n).unwrap()].clone();
        assert_eq!(field("syscall"), Value::str("creat"));
        assert_eq!(field("mode"), Value::str("0600"));
        assert_eq!(field("path"), Value::str("/tmp/x"));
        assert_eq!(field("path_truncated"), Value::u64(0));
        assert_eq!((field("dirfd"), field("path_hex")), (Value::missing(), Value::missing()));
    }

    #[test]
    fn metrics_count_since_start_across_resets_as_declared() {
        let mut t = OpenTracer::default();
        let rec = |ret, syscall| OpenRecord { ret, syscall, comm: "sh".into(), path: "/x".into(), ..Default::default() };
        for r in [rec(3, Syscall::Openat), rec(-2, Syscall::Openat), rec(-13, Syscall::Creat)] {
            t.on_record(0, &r.encode(), None).unwrap();
        }
        t.reset();
        t.on_record(0, &rec(-2, Syscall::Openat).encode(), None).unwrap();
        let m = t.metrics();
        tracer_plugin_kit::test_support::assert_metrics_declared(&metric_specs(), &m);
        let get = |name: &str, labels: &[&str]| m.iter().find(|s| s.name == name && s.labels.iter().map(|l| l.as_str()).eq(labels.iter().copied())).map(|s| s.value);
        assert_eq!(get("opens_total", &["openat", "ok"]), Some(1.0));
        assert_eq!(get("opens_total", &["openat", "failed"]), Some(2.0));
        assert_eq!(get("opens_total", &["creat", "failed"]), Some(1.0));
        assert_eq!(get("open_errors_total", &["2"]), Some(2.0));
        assert_eq!(get("open_errors_total", &["13"]), Some(1.0));
        let Panel::Counters(c) = t.panel("summary").unwrap() else { panic!() };
        assert_eq!(c[0].value, 1, "the panel counts since the reset");
        assert!(t.panel("nope").unwrap_err().contains("it has recent, top_files"));
    }

    #[test]
    fn the_embedded_object_is_an_elf_bpf_object() {
        assert_eq!(&BPF_OBJECT[..4], b"\x7fELF");
        // EM_BPF = 247 at offset 18 (little endian)
        assert_eq!(u16::from_le_bytes([BPF_OBJECT[18], BPF_OBJECT[19]]), 247);
    }

    #[test]
    fn shared_structs_match_the_btf_of_the_embedded_object() {
        tracer_plugin_kit::test_support::assert_layouts_match(BPF_OBJECT, &crate::types::layouts());
    }
}
