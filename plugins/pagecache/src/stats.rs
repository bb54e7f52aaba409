//! Per-process and per-file page cache figures and the machine's totals,
//! from the kernel's maps, with hits and misses derived as cachestat does:
//! misses = pages added − pages dirtied (a page a write makes is added and
//! dirtied at once; clamped at 0), hits = pages asked for by reads − misses.
//! Counts only grow (see the kit's `carried`); `r` moves the panels' zero,
//! never the metrics'.

use crate::types::*;
use std::collections::HashMap;
use tracer_plugin_api::{FieldKind, FieldValue, MapSnapshot, MetricKind, MetricSample, MetricSpec, Panel, PanelKind, Table, Value};
use tracer_plugin_kit::carried::Carried;
use tracer_plugin_kit::comm_totals::CommTotals;
use tracer_plugin_kit::metrics;
use tracer_plugin_kit::panels::{counters, def, PanelDef};
use tracer_plugin_kit::table::{column, extra, flex, key, sum, table};
use tracer_plugin_kit::{c_str, dentry_path, key_u32, per_cpu_values, read, sat_sum};

pub const FIGS: usize = PAGECACHE_FIGURES as usize;
const TOP_ROWS: usize = 100;
const ACCESSED: usize = PAGECACHE_ACCESSED as usize;
const ADDED: usize = PAGECACHE_ADDED as usize;
const DIRTIED: usize = PAGECACHE_DIRTIED as usize;
const EVICTED: usize = PAGECACHE_EVICTED as usize;
const WRITTEN: usize = PAGECACHE_WRITTEN as usize;

/// The figures' names, in enum pagecache_figure order (metric labels).
pub const FIG_NAMES: [&str; FIGS] = ["accessed", "added", "dirtied", "evicted", "written"];

pub type Figures = [u64; FIGS];

fn zip(a: &Figures, b: &Figures, f: fn(u64, u64) -> u64) -> Figures {
    std::array::from_fn(|i| f(a[i], b[i]))
}

fn plus(a: &Figures, b: &Figures) -> Figures {
    zip(a, b, u64::saturating_add)
}

fn went_down(n: &Figures, o: &Figures) -> bool {
    (0..FIGS).any(|i| n[i] < o[i])
}

/// (hits, misses) of figures, as cachestat derives them.
pub fn hits_misses(f: &Figures) -> (u64, u64) {
    let misses = f[ADDED].saturating_sub(f[DIRTIED]);
    (f[ACCESSED].saturating_sub(misses), misses)
}

/// Hits as a share of the pages reads asked for; missing without reads.
fn hit_pct(f: &Figures) -> FieldValue {
    if f[ACCESSED] == 0 {
        return Value::missing();
    }
    Value::f64(100.0 * hits_misses(f).0 as f64 / f[ACCESSED] as f64)
}

fn hits_cell(f: &Figures) -> FieldValue {
    if f[ACCESSED] == 0 {
        Value::missing()
    } else {
        Value::u64(hits_misses(f).0)
    }
}

/// (dev, ino).
pub type FileKey = (u32, u64);

#[derive(Default)]
pub struct CacheStats {
    procs: Carried<u32, Figures>,
    procs_now: HashMap<u32, Figures>,
    procs_base: HashMap<u32, Figures>,
    comms: HashMap<u32, String>,
    by_comm: CommTotals<2>,
    files: Carried<FileKey, Figures>,
    files_now: HashMap<FileKey, Figures>,
    files_base: HashMap<FileKey, Figures>,
    names: HashMap<FileKey, String>,
    totals: Carried<u32, Figures>,
    totals_base: Figures,
    counters: [u64; PAGECACHE_STAT_MAX as usize],
}

impl CacheStats {
    pub fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        match snap.name.as_str() {
            "pagecache_procs" => {
                let mut fresh: HashMap<u32, Figures> = HashMap::new();
                for e in snap.entries.iter() {
                    let Some(pid) = key_u32(&e.key, 0) else { continue };
                    let f = fresh.entry(pid).or_default();
                    for c in per_cpu_values::<pagecache_proc>(snap, &e.value) {
                        *f = plus(f, &c.pages);
                    }
                }
                self.procs.update(fresh, went_down, plus, false);
                self.procs_now = self.procs.now(plus);
                self.procs_base.retain(|k, _| self.procs_now.contains_key(k));
            }
            "pagecache_comms" => {
                let fresh: HashMap<u32, String> = snap.entries.iter().filter_map(|e| Some((key_u32(&e.key, 0)?, c_str(&e.value)))).collect();
                let procs = &self.procs_now;
                self.comms.retain(|pid, _| procs.contains_key(pid));
                self.comms.extend(fresh);
                let named: Vec<_> = self
                    .procs
                    .raw
                    .iter()
                    .map(|(pid, f)| {
                        let (h, m) = hits_misses(f);
                        (*pid, self.comm(*pid), [h, m])
                    })
                    .collect();
                self.by_comm.update(named);
            }
            "pagecache_files" => {
                let mut fresh: HashMap<FileKey, Figures> = HashMap::new();
                let mut names = HashMap::new();
                for e in snap.entries.iter() {
                    let (Some(k), Some(v)) = (read::<pagecache_file_key>(&e.key), read::<pagecache_file>(&e.value)) else { continue };
                    let key = (k.dev, k.ino);
                    fresh.insert(key, v.pages);
                    let mut path = dentry_path(&v.dir, &v.name, v.name_truncated);
                    if path.is_empty() {
                        // No dentry (a block device's inode): the device and inode.
                        path = format!("dev {}:{} ino {}", k.dev >> 20, k.dev & 0xfffff, k.ino);
                    }
                    names.insert(key, path);
                }
                self.files.update(fresh, went_down, plus, false);
                self.files_now = self.files.now(plus);
                self.files_base.retain(|k, _| self.files_now.contains_key(k));
                self.names = names;
            }
            "pagecache_totals" => {
                let mut t: Figures = [0; FIGS];
                for e in snap.entries.iter() {
                    for c in per_cpu_values::<pagecache_totals>(snap, &e.value) {
                        t = plus(&t, &c.pages);
                    }
                }
                self.totals.update(HashMap::from([(0, t)]), went_down, plus, true);
            }
            "pagecache_counters" => {
                for e in snap.entries.iter() {
                    let Some(i) = key_u32(&e.key, 0) else { continue };
                    if let Some(c) = self.counters.get_mut(i as usize) {
                        *c = sat_sum(per_cpu_values::<u64>(snap, &e.value));
                    }
                }
            }
            other => return Err(format!("pagecache: unexpected map {other}")),
        }
        Ok(())
    }

    pub fn reset(&mut self) {
        self.procs_base = self.procs_now.clone();
        self.files_base = self.files_now.clone();
        self.totals_base = self.totals_now();
    }

    fn comm(&self, tgid: u32) -> String {
        self.comms.get(&tgid).cloned().unwrap_or_else(|| "?".into())
    }

    fn totals_now(&self) -> Figures {
        self.totals.now(plus).remove(&0).unwrap_or_default()
    }

    fn shown<K: std::hash::Hash + Eq + Copy>(now: &HashMap<K, Figures>, base: &HashMap<K, Figures>) -> Vec<(K, Figures)> {
        now.iter()
            .map(|(k, f)| (*k, base.get(k).map(|b| zip(f, b, u64::saturating_sub)).unwrap_or(*f)))
            .filter(|(_, f)| f.iter().any(|&n| n > 0))
            .collect()
    }

    pub fn processes(&self) -> Table {
        struct Row {
            pid: u32,
            comm: String,
            f: Figures,
        }
        let mut v = Self::shown(&self.procs_now, &self.procs_base);
        let weight = |f: &Figures| f[ACCESSED].saturating_add(f[ADDED]);
        v.sort_by(|a, b| weight(&b.1).cmp(&weight(&a.1)).then(a.0.cmp(&b.0)));
        let rows: Vec<Row> = v.into_iter().take(TOP_ROWS).map(|(pid, f)| Row { pid, comm: self.comm(pid), f }).collect();
        let cols = [
            key(column::<Row>("pid", FieldKind::U64, "", |r| Value::u64(r.pid as u64))),
            key(column("comm", FieldKind::STR, "", |r| Value::str(&r.comm))),
            sum(column("read pages", FieldKind::U64, "", |r| Value::u64(r.f[ACCESSED]))),
            sum(column("hits", FieldKind::U64, "", |r| hits_cell(&r.f))),
            sum(column("misses", FieldKind::U64, "", |r| Value::u64(hits_misses(&r.f).1))),
            column("hit", FieldKind::F64, "%", |r| hit_pct(&r.f)),
            extra(sum(column("added", FieldKind::U64, "", |r| Value::u64(r.f[ADDED])))),
            sum(column("dirtied", FieldKind::U64, "", |r| Value::u64(r.f[DIRTIED]))),
        ];
        table(&cols, &rows)
    }

    pub fn files(&self) -> Table {
        struct Row {
            name: String,
            f: Figures,
        }
        let mut v = Self::shown(&self.files_now, &self.files_base);
        let weight = |f: &Figures| f[ACCESSED].saturating_add(f[ADDED]).saturating_add(f[DIRTIED]);
        v.sort_by(|a, b| weight(&b.1).cmp(&weight(&a.1)).then(a.0.cmp(&b.0)));
        let rows: Vec<Row> = v.into_iter().take(TOP_ROWS).map(|(k, f)| Row { name: self.names.get(&k).cloned().unwrap_or_default(), f }).collect();
        let cols = [
            sum(column::<Row>("read pages", FieldKind::U64, "", |r| Value::u64(r.f[ACCESSED]))),
            sum(column("hits", FieldKind::U64, "", |r| hits_cell(&r.f))),
            sum(column("misses", FieldKind::U64, "", |r| Value::u64(hits_misses(&r.f).1))),
            column("hit", FieldKind::F64, "%", |r| hit_pct(&r.f)),
            extra(sum(column("added", FieldKind::U64, "", |r| Value::u64(r.f[ADDED])))),
            sum(column("dirtied", FieldKind::U64, "", |r| Value::u64(r.f[DIRTIED]))),
            sum(column("evicted", FieldKind::U64, "", |r| Value::u64(r.f[EVICTED]))),
            sum(column("written", FieldKind::U64, "", |r| Value::u64(r.f[WRITTEN]))),
            flex(24, key(column("file", FieldKind::STR, "", |r| Value::str(&r.name)))),
        ];
        table(&cols, &rows)
    }

    pub fn summary(&self) -> Panel {
        let t = zip(&self.totals_now(), &self.totals_base, u64::saturating_sub);
        let (h, m) = hits_misses(&t);
        let pct = if t[ACCESSED] == 0 { 0 } else { (100.0 * h as f64 / t[ACCESSED] as f64) as u64 };
        counters(&[
            ("pages asked for by reads", t[ACCESSED], ""),
            ("hits", h, ""),
            ("misses", m, ""),
            ("hit ratio", pct, "%"),
            ("added", t[ADDED], ""),
            ("dirtied", t[DIRTIED], ""),
            ("evicted", t[EVICTED], ""),
            ("written back", t[WRITTEN], ""),
            ("process entries evicted", self.counters[PAGECACHE_STAT_PROC_INSERTED as usize].saturating_sub(self.procs.raw.len() as u64), ""),
            ("file entries evicted", self.counters[PAGECACHE_STAT_FILE_INSERTED as usize].saturating_sub(self.files.raw.len() as u64), ""),
        ])
    }

    /// Since the plugin started.
    pub fn metrics(&self) -> Vec<MetricSample> {
        let t = self.totals_now();
        let (h, m) = hits_misses(&t);
        let mut out: Vec<MetricSample> = FIG_NAMES.iter().enumerate().map(|(i, n)| metrics::counter("pages_total", &[n], t[i])).collect();
        out.push(metrics::counter("hits_total", &[], h));
        out.push(metrics::counter("misses_total", &[], m));
        for (comm, v) in self.by_comm.totals() {
            out.push(metrics::counter("process_hits_total", &[comm.as_str()], v[0]));
            out.push(metrics::counter("process_misses_total", &[comm.as_str()], v[1]));
        }
        out
    }
}

pub fn metric_specs() -> Vec<MetricSpec> {
    vec![
        MetricSpec::new("pages_total", MetricKind::COUNTER, "1", "page cache pages: asked for by reads (accessed), added, dirtied, evicted, written back", &["kind"]),
        MetricSpec::new("hits_total", MetricKind::COUNTER, "1", "pages reads found in the cache (accessed - misses)", &[]),
        MetricSpec::new("misses_total", MetricKind::COUNTER, "1", "pages added to the cache other than by writes (added - dirtied)", &[]),
        MetricSpec::new("process_hits_total", MetricKind::COUNTER, "1", "page cache hits by process name (top N names, the rest as other)", &["comm"]),
        MetricSpec::new("process_misses_total", MetricKind::COUNTER, "1", "page cache misses by process name (top N names, the rest as other)", &["comm"]),
    ]
}

pub const PANELS: &[PanelDef<CacheStats>] = &[
    def("processes", "Page cache by process", PanelKind::TABLE, |s| Panel::Table(s.processes())),
    def("files", "Page cache by file", PanelKind::TABLE, |s| Panel::Table(s.files())),
    def("summary", "Page cache totals", PanelKind::COUNTERS, |s| s.summary()),
];
