//! Per (process, file) figures, the latency histograms per operation and the
//! totals, from the kernel's maps. Totals come from the histogram map (never
//! evicted); the file table is bounded (LRU) and says how many it evicted.
//! Counts only grow (see the kit's `carried`); `r` moves the panels' zero,
//! never the metrics'.

use crate::types::*;
use std::collections::HashMap;
use tracer_plugin_api::{FieldKind, MapSnapshot, MetricKind, MetricSample, MetricSpec, Panel, PanelKind, Table, Value};
use tracer_plugin_kit::carried::Carried;
use tracer_plugin_kit::comm_totals::CommTotals;
use tracer_plugin_kit::metrics;
use tracer_plugin_kit::panels::{self, counters, def, PanelDef};
use tracer_plugin_kit::table::{column, extra, flex, key, sum, table};
use tracer_plugin_kit::{c_str, key_u32, per_cpu_values, read, sat_sum};

pub const SLOTS: usize = FILEIO_HIST_SLOTS as usize;
pub const OPS: usize = FILEIO_OPS as usize;
const TOP_ROWS: usize = 100;

/// The operations, in enum fileio_op order, as labels.
pub const OP_NAMES: [&str; OPS] = ["read", "write", "fsync", "fdatasync"];

/// ops[4], ns[4], read bytes, written bytes, errors.
pub type Figures = [u64; 11];
const NS: usize = 4;
const RBYTES: usize = 8;
const WBYTES: usize = 9;
const ERRORS: usize = 10;

fn zip<const N: usize>(a: &[u64; N], b: &[u64; N], f: fn(u64, u64) -> u64) -> [u64; N] {
    std::array::from_fn(|i| f(a[i], b[i]))
}

fn plus<const N: usize>(a: &[u64; N], b: &[u64; N]) -> [u64; N] {
    zip(a, b, u64::saturating_add)
}

/// (tgid, dev, ino).
pub type FileKey = (u32, u32, u64);

/// What the kernel says about a file besides its figures.
#[derive(Debug, Clone, Default)]
pub struct FileInfo {
    pub comm: String,
    pub path: String,
    pub kind: u32,
}

pub fn kind_name(kind: u32) -> &'static str {
    match kind {
        FILEIO_KIND_REGULAR => "file",
        FILEIO_KIND_SOCKET => "socket",
        FILEIO_KIND_PIPE => "pipe",
        FILEIO_KIND_CHAR => "char",
        FILEIO_KIND_BLOCK => "block",
        _ => "other",
    }
}

/// `dir/name` as the kernel gave them (see the kit's `dentry_path`); a
/// socket or pipe (no name in its file system) as `socket:[ino]`.
pub fn path_of(dir: &[u8], name: &[u8], truncated: u8, kind: u32, ino: u64) -> String {
    let p = tracer_plugin_kit::dentry_path(dir, name, truncated);
    if p.is_empty() || (matches!(kind, FILEIO_KIND_SOCKET | FILEIO_KIND_PIPE) && !p.contains(':')) {
        return format!("{}:[{ino}]", kind_name(kind));
    }
    p
}

fn figures(f: &fileio_file) -> Figures {
    [f.ops[0], f.ops[1], f.ops[2], f.ops[3], f.ns[0], f.ns[1], f.ns[2], f.ns[3], f.bytes[0], f.bytes[1], f.errors]
}

/// The histograms: OPS x SLOTS, then sum_ns[OPS], bytes[2], errors.
type Hist = Vec<u64>;
const HIST_LEN: usize = OPS * SLOTS + OPS + 3;

fn hist_values(h: &fileio_hist) -> Hist {
    let mut v: Hist = h.slots.iter().flat_map(|s| s.iter().copied()).collect();
    v.extend_from_slice(&h.sum_ns);
    v.extend_from_slice(&h.bytes);
    v.push(h.errors);
    v
}

fn plus_vec(a: &Hist, b: &Hist) -> Hist {
    (0..a.len().max(b.len())).map(|i| a.get(i).unwrap_or(&0).saturating_add(*b.get(i).unwrap_or(&0))).collect()
}

#[derive(Default)]
pub struct FileStats {
    files: Carried<FileKey, Figures>,
    files_now: HashMap<FileKey, Figures>,
    files_base: HashMap<FileKey, Figures>,
    info: HashMap<FileKey, FileInfo>,
    by_comm: CommTotals<2, FileKey>,
    hist: Carried<u32, Hist>,
    hist_base: Hist,
    counters: [u64; FILEIO_STAT_MAX as usize],
}

impl FileStats {
    pub fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        match snap.name.as_str() {
            "fileio_files" => {
                let mut fresh: HashMap<FileKey, Figures> = HashMap::new();
                let mut info = HashMap::new();
                for e in snap.entries.iter() {
                    let (Some(k), Some(v)) = (read::<fileio_key>(&e.key), read::<fileio_file>(&e.value)) else { continue };
                    let key = (k.tgid, k.dev, k.ino);
                    fresh.insert(key, figures(&v));
                    info.insert(key, FileInfo { comm: c_str(&v.comm), path: path_of(&v.dir, &v.name, v.name_truncated, v.kind, k.ino), kind: v.kind });
                }
                let ops = |f: &Figures| sat_sum(f[..OPS].iter().copied());
                self.files.update(fresh, |n, o| ops(n) < ops(o), plus, false);
                self.files_now = self.files.now(plus);
                self.files_base.retain(|k, _| self.files_now.contains_key(k));
                self.info = info;
                let named: Vec<_> = self.files.raw.iter().map(|(k, f)| (*k, self.info.get(k).map(|i| i.comm.clone()).unwrap_or_default(), [f[RBYTES], f[WBYTES]])).collect();
                self.by_comm.update(named);
            }
            "fileio_hist" => {
                let mut h: Hist = vec![0; HIST_LEN];
                for e in snap.entries.iter() {
                    for c in per_cpu_values::<fileio_hist>(snap, &e.value) {
                        h = plus_vec(&h, &hist_values(&c));
                    }
                }
                let calls = |h: &Hist| sat_sum(h.iter().take(OPS * SLOTS).copied());
                self.hist.update(HashMap::from([(0, h)]), |n, o| calls(n) < calls(o), plus_vec, true);
            }
            "fileio_counters" => {
                for e in snap.entries.iter() {
                    let Some(i) = key_u32(&e.key, 0) else { continue };
                    if let Some(c) = self.counters.get_mut(i as usize) {
                        *c = sat_sum(per_cpu_values::<u64>(snap, &e.value));
                    }
                }
            }
            other => return Err(format!("fileio: unexpected map {other}")),
        }
        Ok(())
    }

    pub fn reset(&mut self) {
        self.files_base = self.files_now.clone();
        self.hist_base = self.hist_now();
    }

    fn hist_now(&self) -> Hist {
        let mut h = self.hist.now(plus_vec).remove(&0).unwrap_or_default();
        h.resize(HIST_LEN, 0);
        h
    }

    /// The histograms and totals since start or the last reset.
    fn hist_shown(&self) -> Hist {
        let base = &self.hist_base;
        self.hist_now().iter().enumerate().map(|(i, v)| v.saturating_sub(*base.get(i).unwrap_or(&0))).collect()
    }

    /// Since start or the last reset.
    fn files_shown(&self) -> Vec<(FileKey, Figures)> {
        self.files_now
            .iter()
            .map(|(k, f)| (*k, self.files_base.get(k).map(|b| zip(f, b, u64::saturating_sub)).unwrap_or(*f)))
            .filter(|(_, f)| f[..OPS].iter().any(|&n| n > 0))
            .collect()
    }

    pub fn files(&self) -> Table {
        struct Row {
            pid: u32,
            info: FileInfo,
            f: Figures,
        }
        let mut v = self.files_shown();
        let bytes = |f: &Figures| f[RBYTES].saturating_add(f[WBYTES]);
        v.sort_by(|a, b| bytes(&b.1).cmp(&bytes(&a.1)).then(sat_sum(b.1[..OPS].iter().copied()).cmp(&sat_sum(a.1[..OPS].iter().copied()))).then(a.0.cmp(&b.0)));
        let rows: Vec<Row> = v.into_iter().take(TOP_ROWS).map(|(k, f)| Row { pid: k.0, info: self.info.get(&k).cloned().unwrap_or_default(), f }).collect();
        let cols = [
            key(column::<Row>("pid", FieldKind::U64, "", |r| Value::u64(r.pid as u64))),
            key(column("comm", FieldKind::STR, "", |r| Value::str(&r.info.comm))),
            sum(column("reads", FieldKind::U64, "", |r| Value::u64(r.f[0]))),
            sum(column("read", FieldKind::BYTES, "bytes", |r| Value::u64(r.f[RBYTES]))),
            sum(column("writes", FieldKind::U64, "", |r| Value::u64(r.f[1]))),
            sum(column("written", FieldKind::BYTES, "bytes", |r| Value::u64(r.f[WBYTES]))),
            sum(column("syncs", FieldKind::U64, "", |r| Value::u64(r.f[2].saturating_add(r.f[3])))),
            extra(sum(column("errors", FieldKind::U64, "", |r| Value::u64(r.f[ERRORS])))),
            sum(column("time", FieldKind::DURATION_NS, "ns", |r| Value::u64(sat_sum(r.f[NS..NS + OPS].iter().copied())))),
            extra(column("type", FieldKind::STR, "", |r| Value::str(kind_name(r.info.kind)))),
            flex(24, column("file", FieldKind::STR, "", |r| Value::str(&r.info.path))),
        ];
        table(&cols, &rows)
    }

    pub fn processes(&self) -> Table {
        struct Row {
            pid: u32,
            comm: String,
            files: u64,
            f: Figures,
        }
        let mut by: HashMap<u32, Row> = HashMap::new();
        for (k, f) in self.files_shown() {
            let r = by.entry(k.0).or_insert_with(|| Row { pid: k.0, comm: self.info.get(&k).map(|i| i.comm.clone()).unwrap_or_default(), files: 0, f: [0; 11] });
            r.files += 1;
            r.f = plus(&r.f, &f);
        }
        let mut rows: Vec<Row> = by.into_values().collect();
        rows.sort_by(|a, b| b.f[RBYTES].saturating_add(b.f[WBYTES]).cmp(&a.f[RBYTES].saturating_add(a.f[WBYTES])).then(a.pid.cmp(&b.pid)));
        rows.truncate(TOP_ROWS);
        let cols = [
            key(column::<Row>("pid", FieldKind::U64, "", |r| Value::u64(r.pid as u64))),
            key(column("comm", FieldKind::STR, "", |r| Value::str(&r.comm))),
            sum(column("reads", FieldKind::U64, "", |r| Value::u64(r.f[0]))),
            sum(column("read", FieldKind::BYTES, "bytes", |r| Value::u64(r.f[RBYTES]))),
            sum(column("writes", FieldKind::U64, "", |r| Value::u64(r.f[1]))),
            sum(column("written", FieldKind::BYTES, "bytes", |r| Value::u64(r.f[WBYTES]))),
            sum(column("fsyncs", FieldKind::U64, "", |r| Value::u64(r.f[2]))),
            sum(column("fdatasyncs", FieldKind::U64, "", |r| Value::u64(r.f[3]))),
            extra(sum(column("errors", FieldKind::U64, "", |r| Value::u64(r.f[ERRORS])))),
            sum(column("files", FieldKind::U64, "", |r| Value::u64(r.files))),
            sum(column("time", FieldKind::DURATION_NS, "ns", |r| Value::u64(sat_sum(r.f[NS..NS + OPS].iter().copied())))),
        ];
        table(&cols, &rows)
    }

    fn latency(&self, ops: &[usize]) -> Panel {
        let h = self.hist_shown();
        let buckets = (0..SLOTS).map(|s| sat_sum(ops.iter().map(|op| h[op * SLOTS + s]))).collect();
        panels::histogram("usecs", buckets)
    }

    pub fn summary(&self) -> Panel {
        let h = self.hist_shown();
        let calls = |op: usize| sat_sum(h[op * SLOTS..(op + 1) * SLOTS].iter().copied());
        let tail = OPS * SLOTS + OPS;
        counters(&[
            ("reads", calls(0), ""),
            ("writes", calls(1), ""),
            ("fsyncs", calls(2), ""),
            ("fdatasyncs", calls(3), ""),
            ("read", h[tail], "bytes"),
            ("written", h[tail + 1], "bytes"),
            ("errors", h[tail + 2], ""),
            ("files", self.files_shown().len() as u64, ""),
            ("file entries evicted", self.counters[FILEIO_STAT_FILE_INSERTED as usize].saturating_sub(self.files.raw.len() as u64), ""),
        ])
    }

    /// Since the plugin started.
    pub fn metrics(&self) -> Vec<MetricSample> {
        let h = self.hist_now();
        let tail = OPS * SLOTS + OPS;
        let mut out = Vec::new();
        for (op, name) in OP_NAMES.iter().enumerate() {
            let slots = &h[op * SLOTS..(op + 1) * SLOTS];
            out.push(metrics::counter("calls_total", &[name], sat_sum(slots.iter().copied())));
            out.push(metrics::log2_histogram("call_seconds", &[name], slots, "usecs", Some(h[OPS * SLOTS + op] as f64 / 1e9)));
        }
        out.push(metrics::counter("io_bytes_total", &["read"], h[tail]));
        out.push(metrics::counter("io_bytes_total", &["write"], h[tail + 1]));
        out.push(metrics::counter("errors_total", &[], h[tail + 2]));
        for (comm, v) in self.by_comm.totals() {
            out.push(metrics::counter("process_bytes_total", &[comm.as_str(), "read"], v[0]));
            out.push(metrics::counter("process_bytes_total", &[comm.as_str(), "write"], v[1]));
        }
        out
    }
}

pub fn metric_specs() -> Vec<MetricSpec> {
    vec![
        MetricSpec::new("calls_total", MetricKind::COUNTER, "1", "read, write, fsync and fdatasync calls on files (all fds with all_files)", &["op"]),
        MetricSpec::new("call_seconds", MetricKind::LOG2_HISTOGRAM, "seconds", "time in each call, entry to exit", &["op"]),
        MetricSpec::new("io_bytes_total", MetricKind::COUNTER, "bytes", "bytes the calls returned (what /proc/PID/io counts as rchar, wchar)", &["op"]),
        MetricSpec::new("errors_total", MetricKind::COUNTER, "1", "calls that returned an error", &[]),
        MetricSpec::new("process_bytes_total", MetricKind::COUNTER, "bytes", "bytes read and written by process name (top N names, the rest as other)", &["comm", "op"]),
    ]
}

pub const PANELS: &[PanelDef<FileStats>] = &[
    def("files", "File I/O by file", PanelKind::TABLE, |s| Panel::Table(s.files())),
    def("processes", "File I/O by process", PanelKind::TABLE, |s| Panel::Table(s.processes())),
    def("read_latency", "Read latency", PanelKind::LOG2_HISTOGRAM, |s| s.latency(&[0])),
    def("write_latency", "Write latency", PanelKind::LOG2_HISTOGRAM, |s| s.latency(&[1])),
    def("sync_latency", "fsync/fdatasync latency", PanelKind::LOG2_HISTOGRAM, |s| s.latency(&[2, 3])),
    def("summary", "File I/O totals", PanelKind::COUNTERS, |s| s.summary()),
];
