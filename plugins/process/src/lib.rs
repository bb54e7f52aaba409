//! The `process` tracer (execsnoop + exitsnoop): every exec with its path, argv
//! and result, every process exit with its status, lifetime, CPU time, peak RSS
//! and scheduling at exit. Written on the kit: generated types, declared
//! columns and settings, no offsets.

use abi_stable::std_types::{ROption, RVec};
use std::collections::BTreeMap;
use tracer_plugin_api::*;
use tracer_plugin_kit::metrics::counter;
use tracer_plugin_kit::panels::{self, counters, def, PanelDef};
use tracer_plugin_kit::table::{column, extra, fields, flex, key, push_row, table, Column, Recent};
use tracer_plugin_kit::{c_str, read, read_prefix, settings::ProcSettings};

/// Rust twins of bpf/process.h, generated from the object's BTF.
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/process_types.rs"));
}
use types::*;

pub static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/process.bpf.o"));
/// Processes that lived less than this are "short-lived".
const SHORT_NS: u64 = 1_000_000_000;
const SIGNALS: [&str; 16] = ["0", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM"];

/// `exit 7`, `SIGKILL`, `SIGSEGV (core dumped)` from the kernel's exit status.
pub fn status_text(s: u32) -> String {
    match s & 0x7f {
        0 => format!("exit {}", (s >> 8) & 0xff),
        sig => {
            let name = SIGNALS.get(sig as usize).map(|n| format!("SIG{n}")).unwrap_or_else(|| format!("signal {sig}"));
            if s & 0x80 != 0 { format!("{name} (core dumped)") } else { name }
        }
    }
}

/// The arguments kept, space-separated, `…` where some were cut.
pub fn args_text(e: &exec_event) -> String {
    let used = &e.args[..(e.args_len as usize).min(e.args.len())];
    let mut s = used.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>().join(" ");
    if e.flags as u32 & PROC_ARGS_TRUNCATED != 0 {
        s.push('…');
    }
    s
}

fn exec_columns() -> [Column<exec_event>; 8] {
    [
        extra(column("ts", FieldKind::MONO_TIME_NS, "ns", |e| Value::u64(e.ts_ns))),
        key(column("pid", FieldKind::U64, "", |e| Value::u64(e.pid as u64))),
        extra(column("ppid", FieldKind::U64, "", |e| Value::u64(e.ppid as u64))),
        column("uid", FieldKind::U64, "", |e| Value::u64(e.uid as u64)),
        key(column("comm", FieldKind::STR, "", |e| Value::str(&c_str(&e.comm)))),
        column("ret", FieldKind::ERRNO_RESULT, "", |e| Value::i64(e.ret)),
        flex(12, column("filename", FieldKind::STR, "", |e| Value::str(&(c_str(&e.filename) + if e.flags as u32 & PROC_FILENAME_TRUNCATED != 0 { "…" } else { "" })))),
        flex(16, column("args", FieldKind::STR, "", |e| Value::str(&args_text(e)))),
    ]
}

fn exit_columns() -> [Column<exit_event>; 11] {
    [
        extra(column("ts", FieldKind::MONO_TIME_NS, "ns", |e| Value::u64(e.ts_ns))),
        key(column("pid", FieldKind::U64, "", |e| Value::u64(e.pid as u64))),
        extra(column("ppid", FieldKind::U64, "", |e| Value::u64(e.ppid as u64))),
        key(column("comm", FieldKind::STR, "", |e| Value::str(&c_str(&e.comm)))),
        key(column("status", FieldKind::STR, "", |e| Value::str(&status_text(e.exit_status)))),
        column("lifetime", FieldKind::DURATION_NS, "ns", |e| Value::u64(e.lifetime_ns)),
        column("cpu", FieldKind::DURATION_NS, "ns", |e| Value::u64(e.cpu_ns)),
        // SAFETY: sysconf has no preconditions.
        column("maxrss", FieldKind::BYTES, "bytes", |e| Value::u64(e.maxrss_pages.saturating_mul(tracer_plugin_kit::page_size()))),
        extra(column("policy", FieldKind::U64, "", |e| Value::u64(e.policy as u64))),
        extra(column("nice", FieldKind::I64, "", |e| Value::i64(e.nice as i64))),
        extra(column("prio", FieldKind::I64, "", |e| Value::i64(e.prio as i64))),
    ]
}

#[derive(Default)]
pub struct Process {
    execs: Recent<exec_event>,
    exits: Recent<exit_event>,
    short: Recent<exit_event>,
    by_status: BTreeMap<String, u64>,
    counts: [u64; 4], // execs, failed execs, exits, short-lived
}

const PANELS: &[PanelDef<Process>] = &[
    def("execs", "Recent execs", PanelKind::TABLE, |p| Panel::Table(table(&exec_columns(), p.execs.newest()))),
    def("exits", "Recent exits", PanelKind::TABLE, |p| Panel::Table(table(&exit_columns(), p.exits.newest()))),
    def("short_lived", "Short-lived processes (< 1 s)", PanelKind::TABLE, |p| Panel::Table(table(&exit_columns(), p.short.newest()))),
    def("by_status", "Exits by status", PanelKind::TABLE, |p| Panel::Table(table(&[key(column::<(&String, &u64)>("status", FieldKind::STR, "", |r| Value::str(r.0))), column("exits", FieldKind::U64, "", |r| Value::u64(*r.1))], p.by_status.iter().collect::<Vec<_>>().iter()))),
    def("summary", "Processes", PanelKind::COUNTERS, |p| counters(&[("execs", p.counts[0], ""), ("failed execs", p.counts[1], ""), ("exits", p.counts[2], ""), ("short-lived", p.counts[3], "")])),
];

pub fn descriptor() -> PluginDescriptor {
    let probe = |name: &str, alts: &[&[&str]]| ProbeSpec { name: name.into(), alternatives: alts.iter().map(|a| AttachAlternative::of(a)).collect() };
    let counter = |index, name: &str, is_drop| CounterSpec { map: "process_stats".into(), index, name: name.into(), is_drop };
    PluginDescriptor {
        info: PluginInfo { name: "process".into(), version: env!("CARGO_PKG_VERSION").into(), description: "Execs (path, argv, result) and process exits (status, lifetime, CPU, peak RSS)".into(), api_version: PLUGIN_API_VERSION },
        bpf_object: RVec::from(BPF_OBJECT),
        probes: vec![
            probe("execs", &[&["exec_enter_tp", "execat_enter_tp", "exec_exit_tp", "execat_exit_tp"], &["exec_enter_btf", "exec_exit_btf"]]),
            probe("exits", &[&["exit_btf"], &["exit_tp"]]),
        ]
        .into(),
        rings: vec![RingSpec { map: "process_execs".into(), fields: fields(&exec_columns()).into() }, RingSpec { map: "process_exits".into(), fields: fields(&exit_columns()).into() }].into(),
        counters: vec![counter(PROC_STAT_RINGBUF_FULL, "ring buffer full", true), counter(PROC_STAT_EXEC_UNSTORED, "exec entry not stored", true)].into(),
        polled_maps: RVec::new(),
        config_map: ROption::RSome("process_filter".into()),
        panels: panels::specs(PANELS).into(),
        settings: tracer_plugin_kit::settings::proc_filter_specs().into(),
        metrics: vec![
            MetricSpec::new("execs_total", MetricKind::COUNTER, "1", "exec calls by result", &["result"]),
            MetricSpec::new("exits_total", MetricKind::COUNTER, "1", "process exits by status (exit code or signal)", &["status"]),
        ]
        .into(),
    }
}

impl NativeTracer for Process {
    fn describe(&self) -> PluginDescriptor {
        descriptor()
    }

    fn configure(&mut self, json: &str) -> Result<Vec<u8>, String> {
        let f = process_filter { proc: ProcSettings::parse(json)?.filter() };
        Ok(tracer_plugin_kit::bytes_of(&f).to_vec())
    }

    fn on_record(&mut self, ring: u32, data: &[u8], out: Option<&mut RVec<FieldValue>>) -> Result<(), String> {
        let short = |n| format!("process record too short: {} bytes, expected {n}", data.len());
        if ring == 0 {
            let e: exec_event = read_prefix(data, std::mem::offset_of!(exec_event, args)).ok_or_else(|| short(std::mem::offset_of!(exec_event, args)))?;
            self.counts[0] += 1;
            self.counts[1] += (e.ret < 0) as u64;
            out.map(|o| push_row(&exec_columns(), &e, o));
            self.execs.push(e);
        } else {
            let e: exit_event = read(data).ok_or_else(|| short(std::mem::size_of::<exit_event>()))?;
            self.counts[2] += 1;
            *self.by_status.entry(status_text(e.exit_status)).or_default() += 1;
            out.map(|o| push_row(&exit_columns(), &e, o));
            if e.lifetime_ns < SHORT_NS {
                self.counts[3] += 1;
                self.short.push(e);
            }
            self.exits.push(e);
        }
        Ok(())
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        panels::build("process", PANELS, self, id)
    }

    fn reset(&mut self) {
        *self = Process::default();
    }

    fn metrics(&self) -> Vec<MetricSample> {
        let mut v = vec![counter("execs_total", &["ok"], self.counts[0].saturating_sub(self.counts[1])), counter("execs_total", &["failed"], self.counts[1])];
        v.extend(self.by_status.iter().map(|(s, n)| counter("exits_total", &[s], *n)));
        v
    }
}

export_tracer!(Process::default);

#[cfg(test)]
mod tests;
