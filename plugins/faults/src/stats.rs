//! Per-process page fault figures and the major fault latency histogram
//! from the kernel's per-CPU maps. Counts only grow (see the kit's
//! `carried`); `r` moves the panels' zero, never the metrics'.

use crate::types::*;
use std::collections::HashMap;
use tracer_plugin_api::{FieldKind, MapSnapshot, MetricKind, MetricSample, MetricSpec, Panel, PanelKind, Table, Value};
use tracer_plugin_kit::carried::Carried;
use tracer_plugin_kit::comm_totals::CommTotals;
use tracer_plugin_kit::metrics;
use tracer_plugin_kit::panels::{self, counters, def, PanelDef};
use tracer_plugin_kit::table::{column, extra, key, sum, table};
use tracer_plugin_kit::{c_str, key_u32, per_cpu_values, sat_sum};

pub const SLOTS: usize = FAULTS_HIST_SLOTS as usize;
const TOP_ROWS: usize = 100;

/// minor, major, minor_file, major_file, minor_anon, major_anon, major_ns, major_timed
pub type Figures = [u64; 8];
const MINOR: usize = 0;
const MAJOR: usize = 1;
const MINOR_FILE: usize = 2;
const MAJOR_FILE: usize = 3;
const MINOR_ANON: usize = 4;
const MAJOR_ANON: usize = 5;
const MAJOR_NS: usize = 6;
const MAJOR_TIMED: usize = 7;

fn zip<const N: usize>(a: &[u64; N], b: &[u64; N], f: fn(u64, u64) -> u64) -> [u64; N] {
    std::array::from_fn(|i| f(a[i], b[i]))
}

fn plus<const N: usize>(a: &[u64; N], b: &[u64; N]) -> [u64; N] {
    zip(a, b, u64::saturating_add)
}

fn figures(p: &faults_proc) -> Figures {
    [p.minor, p.major, p.minor_file, p.major_file, p.minor_anon, p.major_anon, p.major_ns, p.major_timed]
}

/// The histogram's slots, then its sum in ns.
type Hist = Vec<u64>;

fn plus_vec(a: &Hist, b: &Hist) -> Hist {
    (0..a.len().max(b.len())).map(|i| a.get(i).unwrap_or(&0).saturating_add(*b.get(i).unwrap_or(&0))).collect()
}

#[derive(Default)]
pub struct FaultStats {
    procs: Carried<u32, Figures>,
    procs_now: HashMap<u32, Figures>,
    procs_base: HashMap<u32, Figures>,
    comms: HashMap<u32, String>,
    by_comm: CommTotals<6>,
    hist: Carried<u32, Hist>,
    hist_base: Hist,
    counters: [u64; FAULTS_STAT_MAX as usize],
}

impl FaultStats {
    pub fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        match snap.name.as_str() {
            "faults_procs" => {
                let mut fresh: HashMap<u32, Figures> = HashMap::new();
                for e in snap.entries.iter() {
                    let Some(pid) = key_u32(&e.key, 0) else { continue };
                    let f = fresh.entry(pid).or_default();
                    for c in per_cpu_values::<faults_proc>(snap, &e.value) {
                        *f = plus(f, &figures(&c));
                    }
                }
                self.procs.update(fresh, |n, o| n[MINOR] < o[MINOR] || n[MAJOR] < o[MAJOR], plus, false);
                self.procs_now = self.procs.now(plus);
                self.procs_base.retain(|k, _| self.procs_now.contains_key(k));
            }
            "faults_comms" => {
                let fresh: HashMap<u32, String> = snap.entries.iter().filter_map(|e| Some((key_u32(&e.key, 0)?, c_str(&e.value)))).collect();
                let procs = &self.procs_now;
                self.comms.retain(|pid, _| procs.contains_key(pid));
                self.comms.extend(fresh);
                let named: Vec<_> = self.procs.raw.iter().map(|(pid, f)| (*pid, self.comm(*pid), [f[0], f[1], f[2], f[3], f[4], f[5]])).collect();
                self.by_comm.update(named);
            }
            "faults_hist" => {
                let mut h: Hist = vec![0; SLOTS + 1];
                for e in snap.entries.iter() {
                    for c in per_cpu_values::<faults_hist>(snap, &e.value) {
                        for (a, b) in h.iter_mut().zip(c.slots.iter().chain(std::iter::once(&c.sum_ns))) {
                            *a = a.saturating_add(*b);
                        }
                    }
                }
                let count = |h: &Hist| sat_sum(h.iter().take(SLOTS).copied());
                let ns = |h: &Hist| h.get(SLOTS).copied().unwrap_or(0);
                self.hist.update(HashMap::from([(0, h)]), |n, o| count(n) < count(o) || ns(n) < ns(o), plus_vec, true);
            }
            "faults_counters" => {
                for e in snap.entries.iter() {
                    let Some(i) = key_u32(&e.key, 0) else { continue };
                    if let Some(c) = self.counters.get_mut(i as usize) {
                        *c = sat_sum(per_cpu_values::<u64>(snap, &e.value));
                    }
                }
            }
            other => return Err(format!("faults: unexpected map {other}")),
        }
        Ok(())
    }

    pub fn reset(&mut self) {
        self.procs_base = self.procs_now.clone();
        self.hist_base = self.hist_now();
    }

    fn comm(&self, tgid: u32) -> String {
        self.comms.get(&tgid).cloned().unwrap_or_else(|| "?".into())
    }

    fn hist_now(&self) -> Hist {
        let mut h = self.hist.now(plus_vec).remove(&0).unwrap_or_default();
        h.resize(SLOTS + 1, 0);
        h
    }

    /// Since start or the last reset.
    fn procs_shown(&self) -> Vec<(u32, Figures)> {
        self.procs_now
            .iter()
            .map(|(k, f)| (*k, self.procs_base.get(k).map(|b| zip(f, b, u64::saturating_sub)).unwrap_or(*f)))
            .filter(|(_, f)| f[MINOR] > 0 || f[MAJOR] > 0)
            .collect()
    }

    pub fn processes(&self) -> Table {
        struct Row {
            pid: u32,
            comm: String,
            f: Figures,
        }
        let mut v = self.procs_shown();
        v.sort_by(|a, b| b.1[MAJOR].cmp(&a.1[MAJOR]).then(b.1[MINOR].cmp(&a.1[MINOR])).then(a.0.cmp(&b.0)));
        let rows: Vec<Row> = v.into_iter().take(TOP_ROWS).map(|(pid, f)| Row { pid, comm: self.comm(pid), f }).collect();
        let cols = [
            key(column::<Row>("pid", FieldKind::U64, "", |r| Value::u64(r.pid as u64))),
            key(column("comm", FieldKind::STR, "", |r| Value::str(&r.comm))),
            sum(column("minor", FieldKind::U64, "", |r| Value::u64(r.f[MINOR]))),
            sum(column("major", FieldKind::U64, "", |r| Value::u64(r.f[MAJOR]))),
            extra(sum(column("file", FieldKind::U64, "", |r| Value::u64(r.f[MINOR_FILE].saturating_add(r.f[MAJOR_FILE]))))),
            extra(sum(column("anon", FieldKind::U64, "", |r| Value::u64(r.f[MINOR_ANON].saturating_add(r.f[MAJOR_ANON]))))),
            column("avg major", FieldKind::DURATION_NS, "ns", |r| if r.f[MAJOR_TIMED] == 0 { Value::missing() } else { Value::u64(r.f[MAJOR_NS] / r.f[MAJOR_TIMED]) }),
        ];
        table(&cols, &rows)
    }

    pub fn latency(&self) -> Panel {
        let base = &self.hist_base;
        let h: Vec<u64> = self.hist_now().iter().take(SLOTS).enumerate().map(|(i, v)| v.saturating_sub(*base.get(i).unwrap_or(&0))).collect();
        panels::histogram("usecs", h)
    }

    pub fn summary(&self) -> Panel {
        let v = self.procs_shown();
        let s = |i: usize| sat_sum(v.iter().map(|(_, f)| f[i]));
        counters(&[
            ("minor", s(MINOR), ""),
            ("major", s(MAJOR), ""),
            ("in file mappings", s(MINOR_FILE).saturating_add(s(MAJOR_FILE)), ""),
            ("in anonymous mappings", s(MINOR_ANON).saturating_add(s(MAJOR_ANON)), ""),
            ("processes", v.len() as u64, ""),
            ("process entries evicted", self.counters[FAULTS_STAT_PROC_INSERTED as usize].saturating_sub(self.procs.raw.len() as u64), ""),
        ])
    }

    /// Since the plugin started.
    pub fn metrics(&self) -> Vec<MetricSample> {
        let totals = self.by_comm.totals();
        let all: [u64; 6] = totals.iter().fold([0; 6], |a, (_, v)| plus(&a, v));
        let mut out = Vec::new();
        for (kind, total, file, anon) in [("minor", all[0], all[2], all[4]), ("major", all[1], all[3], all[5])] {
            out.push(metrics::counter("faults_total", &[kind, "file"], file));
            out.push(metrics::counter("faults_total", &[kind, "anon"], anon));
            // Where bpf_find_vma could not say (or the kernel lacks it).
            out.push(metrics::counter("faults_total", &[kind, "unknown"], total.saturating_sub(file).saturating_sub(anon)));
        }
        let h = self.hist_now();
        out.push(metrics::log2_histogram("major_fault_seconds", &[], &h[..SLOTS], "usecs", Some(h[SLOTS] as f64 / 1e9)));
        for (comm, v) in &totals {
            out.push(metrics::counter("process_minor_faults_total", &[comm.as_str()], v[0]));
            out.push(metrics::counter("process_major_faults_total", &[comm.as_str()], v[1]));
        }
        out
    }
}

pub fn metric_specs() -> Vec<MetricSpec> {
    vec![
        MetricSpec::new("faults_total", MetricKind::COUNTER, "1", "page faults as the kernel counts them (minor, major) by mapping (file, anon, unknown)", &["kind", "mapping"]),
        MetricSpec::new("major_fault_seconds", MetricKind::LOG2_HISTOGRAM, "seconds", "time from a major fault's exception to its accounting", &[]),
        MetricSpec::new("process_minor_faults_total", MetricKind::COUNTER, "1", "minor faults by process name (top N names, the rest as other)", &["comm"]),
        MetricSpec::new("process_major_faults_total", MetricKind::COUNTER, "1", "major faults by process name (top N names, the rest as other)", &["comm"]),
    ]
}

pub const PANELS: &[PanelDef<FaultStats>] = &[
    def("processes", "Page faults by process", PanelKind::TABLE, |s| Panel::Table(s.processes())),
    def("latency", "Major fault latency", PanelKind::LOG2_HISTOGRAM, |s| s.latency()),
    def("summary", "Page fault totals", PanelKind::COUNTERS, |s| s.summary()),
];

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::RVec;
    use proptest::prelude::*;
    use tracer_plugin_api::{FieldValue, MapEntry};
    use tracer_plugin_kit::test_support::snapshot;

    fn snap(name: &str, per_cpu: u32, entries: Vec<(Vec<u8>, Vec<u8>)>) -> MapSnapshot {
        MapSnapshot { name: name.into(), values_per_key: per_cpu, entries: RVec::from(entries.into_iter().map(|(k, v)| MapEntry { key: k.into(), value: v.into() }).collect::<Vec<_>>()) }
    }

    /// faults_procs over two CPUs: per pid, (minor, major) per CPU, all anonymous.
    fn procs(rows: &[(u32, [(u64, u64); 2])]) -> MapSnapshot {
        let entries = rows
            .iter()
            .map(|(pid, cpus)| {
                let mut v = Vec::new();
                for &(minor, major) in cpus {
                    let p = faults_proc { minor, major, minor_anon: minor, major_anon: major, major_ns: major * 50_000, major_timed: major, ..Default::default() };
                    v.extend_from_slice(tracer_plugin_kit::bytes_of(&p));
                }
                (pid.to_ne_bytes().to_vec(), v)
            })
            .collect();
        snap("faults_procs", 2, entries)
    }

    fn comms(rows: &[(u32, &str)]) -> MapSnapshot {
        snap("faults_comms", 1, rows.iter().map(|(pid, c)| (pid.to_ne_bytes().to_vec(), tracer_plugin_kit::comm_bytes(c).to_vec())).collect())
    }

    fn cell<'a>(t: &'a Table, row: usize, col: &str) -> &'a FieldValue {
        let i = t.columns.iter().position(|c| c.name.as_str() == col).unwrap_or_else(|| panic!("no column {col}"));
        &t.rows[row][i]
    }

    #[test]
    fn per_cpu_counts_are_summed_per_process_and_kept_by_name_after_exit() {
        let mut s = FaultStats::default();
        s.on_map(&procs(&[(10, [(5, 1), (7, 2)]), (11, [(100, 0), (0, 0)])])).unwrap();
        s.on_map(&comms(&[(10, "reader"), (11, "toucher")])).unwrap();
        let t = s.processes();
        assert_eq!(cell(&t, 0, "comm"), &Value::str("reader"), "most major faults first");
        assert_eq!((cell(&t, 0, "minor"), cell(&t, 0, "major")), (&Value::u64(12), &Value::u64(3)));
        assert_eq!(cell(&t, 0, "avg major"), &Value::u64(50_000));
        assert_eq!(cell(&t, 0, "anon"), &Value::u64(15));
        // Both exit: their names keep their counts in the metrics.
        s.on_map(&procs(&[])).unwrap();
        s.on_map(&comms(&[])).unwrap();
        let m = s.metrics();
        tracer_plugin_kit::test_support::assert_metrics_declared(&metric_specs(), &m);
        let get = |name: &str, labels: &[&str]| m.iter().find(|x| x.name.as_str() == name && x.labels.iter().map(|l| l.as_str()).eq(labels.iter().copied())).map(|x| x.value);
        assert_eq!(get("faults_total", &["minor", "anon"]), Some(112.0));
        assert_eq!(get("faults_total", &["major", "anon"]), Some(3.0));
        assert_eq!(get("faults_total", &["minor", "unknown"]), Some(0.0));
        assert_eq!(get("process_minor_faults_total", &["toucher"]), Some(100.0));
        assert!(s.processes().rows.is_empty());
    }

    #[test]
    fn a_reset_moves_the_panels_and_the_histogram_carries_across_a_new_map() {
        let mut s = FaultStats::default();
        let hist = |n: u64| {
            let mut h = faults_hist::default();
            h.slots[6] = n;
            h.sum_ns = n * 100_000;
            snap("faults_hist", 1, vec![(0u32.to_ne_bytes().to_vec(), tracer_plugin_kit::bytes_of(&h).to_vec())])
        };
        s.on_map(&hist(40)).unwrap();
        s.reset();
        s.on_map(&hist(10)).unwrap(); // a new map (re-attached): 10 more
        let Panel::Log2Histogram(h) = s.latency() else { panic!() };
        assert_eq!(h.buckets[6], 10, "since the reset");
        let m = s.metrics();
        let lat = m.iter().find(|x| x.name.as_str() == "major_fault_seconds").unwrap();
        assert_eq!(lat.buckets[6], 50, "since start, across the new map");
        assert_eq!(lat.value, 50.0 * 100_000.0 / 1e9);
    }

    proptest! {
        #[test]
        fn arbitrary_snapshots_never_panic(snaps in proptest::collection::vec(snapshot(&["faults_procs", "faults_comms", "faults_hist", "faults_counters", "other"]), 1..5)) {
            let mut s = FaultStats::default();
            for snap in &snaps {
                let _ = s.on_map(snap);
            }
            for p in PANELS {
                let _ = (p.build)(&s);
            }
            tracer_plugin_kit::test_support::assert_metrics_declared(&metric_specs(), &s.metrics());
        }
    }
}
