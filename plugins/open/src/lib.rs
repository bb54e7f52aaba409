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
use tracer_plugin_api::{
    export_tracer, AttachAlternative, CounterSpec, FieldKind, FieldSpec, FieldValue, MapSnapshot,
    NativeTracer, Panel, PanelKind, PanelSpec, PluginDescriptor, PluginInfo, ProbeSpec, ProgramRef,
    RingSpec, Value, PLUGIN_API_VERSION,
};

/// The compiled `bpf/opensnoop.bpf.c`.
pub static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/opensnoop.bpf.o"));

#[derive(Default)]
pub struct OpenTracer {
    stats: OpenStats,
}

fn programs(names: &[(&str, bool)]) -> AttachAlternative {
    AttachAlternative {
        programs: names
            .iter()
            .map(|&(n, optional)| if optional { ProgramRef::optional(n) } else { ProgramRef::new(n) })
            .collect(),
    }
}

/// The fields of one record, in the order `on_record` pushes them.
pub fn record_fields() -> Vec<FieldSpec> {
    vec![
        FieldSpec::new("ts", FieldKind::MONO_TIME_NS, "ns"),
        FieldSpec::new("pid", FieldKind::U64, ""),
        FieldSpec::new("tid", FieldKind::U64, ""),
        FieldSpec::new("uid", FieldKind::U64, ""),
        FieldSpec::new("euid", FieldKind::U64, ""),
        FieldSpec::new("comm", FieldKind::STR, ""),
        FieldSpec::new("syscall", FieldKind::STR, ""),
        FieldSpec::new("ret", FieldKind::ERRNO_RESULT, ""),
        FieldSpec::new("flags", FieldKind::STR, ""),
        FieldSpec::new("mode", FieldKind::STR, ""),
        // Last in text output, as opensnoop prints it; the marks before it.
        FieldSpec::new("dirfd", FieldKind::I64, ""),
        FieldSpec::new("path_truncated", FieldKind::U64, ""),
        FieldSpec::new("path_hex", FieldKind::STR, ""),
        FieldSpec::new("path", FieldKind::STR, ""),
    ]
}

pub fn descriptor() -> PluginDescriptor {
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
        counters: vec![
            CounterSpec {
                map: "open_stats".into(),
                index: types::OPEN_STAT_RINGBUF_FULL,
                name: "ring buffer full".into(),
                is_drop: true,
            },
            CounterSpec {
                map: "open_stats".into(),
                index: types::OPEN_STAT_INFLIGHT_FULL,
                name: "entry not stored".into(),
                is_drop: true,
            },
        ]
        .into(),
        polled_maps: RVec::new(),
        config_map: ROption::RSome("open_filter".into()),
        panels: vec![
            PanelSpec::new("recent", "Recent opens", PanelKind::TABLE),
            PanelSpec::new("top_files", "Top files", PanelKind::TABLE),
            PanelSpec::new("top_procs", "Top processes", PanelKind::TABLE),
            PanelSpec::new("failures", "Failed opens", PanelKind::TABLE),
            PanelSpec::new("errors", "Failures by error", PanelKind::TABLE),
            PanelSpec::new("summary", "Open totals", PanelKind::COUNTERS),
        ]
        .into(),
        settings: settings::specs().into(),
        metrics: RVec::new(),
    }
}

fn push_fields(r: &OpenRecord, out: &mut RVec<FieldValue>) {
    out.push(Value::u64(r.ts_ns));
    out.push(Value::u64(r.pid as u64));
    out.push(Value::u64(r.tid as u64));
    out.push(Value::u64(r.uid as u64));
    out.push(Value::u64(r.euid as u64));
    out.push(Value::str(&r.comm.as_str()));
    out.push(Value::str(r.syscall.name()));
    out.push(Value::i64(r.ret));
    out.push(Value::str(&flags_text(r.flags)));
    // mode only means something when a file may be created.
    if r.flags & 0o100 != 0 || r.flags & 0o20000000 != 0 {
        out.push(Value::str(&format!("{:04o}", r.mode)));
    } else {
        out.push(Value::missing());
    }
    match r.dirfd_shown() {
        Some(fd) => out.push(Value::i64(fd as i64)),
        None => out.push(Value::missing()),
    }
    out.push(Value::u64(r.truncated() as u64));
    match &r.path_hex {
        Some(h) => out.push(Value::str(h)),
        None => out.push(Value::missing()),
    }
    if r.unread() {
        out.push(Value::missing());
    } else {
        out.push(Value::str(&r.path));
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
            push_fields(&r, out);
        }
        self.stats.add(r);
        Ok(())
    }

    fn on_map(&mut self, snapshot: &MapSnapshot) -> Result<(), String> {
        Err(format!("open: polls no map, got {}", snapshot.name))
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        self.stats.panel(id)
    }

    fn reset(&mut self) {
        self.stats.reset();
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
