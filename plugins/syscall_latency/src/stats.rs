//! Per-syscall and per-process figures, from snapshots of the kernel's maps.
//! The kernel keeps cumulative per-CPU sums; here they are summed over CPUs and
//! turned into "since start/reset" (cumulative) or "last interval" views.

use crate::settings::{syscall_name, Mode};
use std::collections::HashMap;
use tracer_plugin_api::{FieldKind, Log2Histogram, MapSnapshot, MetricKind, MetricSample, MetricSpec, Panel, PanelKind, Table, Value};
use tracer_plugin_kit::comm_totals::CommTotals;
use tracer_plugin_kit::metrics;
use tracer_plugin_kit::panels::{counters, def, PanelDef};
use tracer_plugin_kit::table::{column, key, max, sum, table};
use crate::types::{sc_proc_key, sc_proc_val, sc_stat, SC_HIST_SLOTS, SC_STAT_PROC_INSERTED};
use tracer_plugin_kit::{c_str, key_u32, per_cpu_values, read, sat_sum};

pub const HIST_SLOTS: usize = SC_HIST_SLOTS as usize;
const TOP_ROWS: usize = 100;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub count: u64,
    pub total_ns: u64,
    /// Since the last reset or filter change (the kernel keeps one maximum
    /// per filter generation): a maximum cannot be taken apart into intervals.
    pub max_ns: u64,
    pub errors: u64,
    pub hist: Vec<u64>,
}

impl Totals {
    fn minus(&self, o: &Totals) -> Totals {
        Totals {
            count: self.count.saturating_sub(o.count),
            total_ns: self.total_ns.saturating_sub(o.total_ns),
            max_ns: self.max_ns,
            errors: self.errors.saturating_sub(o.errors),
            hist: self.hist.iter().enumerate().map(|(i, v)| v.saturating_sub(*o.hist.get(i).unwrap_or(&0))).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcTotals {
    pub count: u64,
    pub total_ns: u64,
    pub errors: u64,
}

impl ProcTotals {
    fn minus(&self, o: &ProcTotals) -> ProcTotals {
        ProcTotals {
            count: self.count.saturating_sub(o.count),
            total_ns: self.total_ns.saturating_sub(o.total_ns),
            errors: self.errors.saturating_sub(o.errors),
        }
    }
}

/// One generation of readings, plus what they are measured from.
#[derive(Default)]
struct Readings<K, V> {
    now: HashMap<K, V>,
    previous: HashMap<K, V>,
    base: HashMap<K, V>,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Readings<K, V> {
    fn replace(&mut self, fresh: HashMap<K, V>) {
        self.previous = std::mem::replace(&mut self.now, fresh);
    }
    fn reset(&mut self) {
        self.base = self.now.clone();
    }
    /// The view for `mode`: `f(now, reference)` per key.
    fn view<R>(&self, mode: Mode, f: impl Fn(&V, Option<&V>) -> R) -> Vec<(K, R)> {
        let reference = match mode {
            Mode::Cumulative => &self.base,
            Mode::Interval => &self.previous,
        };
        self.now.iter().map(|(k, v)| (k.clone(), f(v, reference.get(k)))).collect()
    }
}

#[derive(Default)]
pub struct SyscallStats {
    pub mode: Mode,
    pub per_process: bool,
    /// The syscalls the histogram panels show, in order (the first one in
    /// `histogram`); panels past the list show the next by total time.
    pub histograms_of: Vec<u32>,
    /// The filter generation last handed to the kernel: per-CPU maxima of an
    /// older one are from before a reset.
    pub gen: u32,
    syscalls: Readings<u32, Totals>,
    procs: Readings<(u32, u32), ProcTotals>,
    comms: HashMap<u32, String>,
    /// Syscalls and ns in them by process name since the plugin started.
    by_comm: CommTotals<2>,
    /// Live entries of the per-process map at the last read.
    pub proc_entries: u64,
    /// Insertions into the per-process map (from the counters), for evictions.
    pub inserted: u64,
}

impl SyscallStats {
    pub fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        match snap.name.as_str() {
            "sc_stats" => {
                let mut fresh = HashMap::new();
                for e in snap.entries.iter() {
                    let Some(nr) = key_u32(&e.key, 0) else { continue };
                    let cpus: Vec<sc_stat> = per_cpu_values(snap, &e.value).collect();
                    let sum = |f: fn(&sc_stat) -> u64| sat_sum(cpus.iter().map(f));
                    let count = sum(|c| c.count);
                    if count == 0 {
                        continue;
                    }
                    let (total_ns, errors) = (sum(|c| c.total_ns), sum(|c| c.errors));
                    let max_ns = max_over_cpus(&cpus, self.gen);
                    let hist = tracer_plugin_kit::sum_slots(cpus.iter().map(|c| &c.hist));
                    fresh.insert(nr, Totals { count, total_ns, max_ns, errors, hist });
                }
                self.syscalls.replace(fresh);
            }
            "sc_procs" => {
                let mut fresh = HashMap::new();
                for e in snap.entries.iter() {
                    let Some(k) = read::<sc_proc_key>(&e.key) else { continue };
                    let cpus: Vec<sc_proc_val> = per_cpu_values(snap, &e.value).collect();
                    let sum = |f: fn(&sc_proc_val) -> u64| sat_sum(cpus.iter().map(f));
                    fresh.insert((k.tgid, k.nr), ProcTotals { count: sum(|c| c.count), total_ns: sum(|c| c.total_ns), errors: sum(|c| c.errors) });
                }
                self.proc_entries = fresh.len() as u64;
                self.procs.replace(fresh);
            }
            "sc_counters" => {
                if let Some(e) = snap.entries.iter().find(|e| key_u32(&e.key, 0) == Some(SC_STAT_PROC_INSERTED)) {
                    self.inserted = sat_sum(per_cpu_values::<u64>(snap, &e.value));
                }
            }
            "sc_comms" => {
                self.comms = snap.entries.iter().filter_map(|e| Some((key_u32(&e.key, 0)?, c_str(&e.value)))).collect();
                // After the per-process map (read before the names).
                let mut per: HashMap<u32, [u64; 2]> = HashMap::new();
                for ((tgid, _), t) in &self.procs.now {
                    let e = per.entry(*tgid).or_default();
                    e[0] = e[0].saturating_add(t.count);
                    e[1] = e[1].saturating_add(t.total_ns);
                }
                let named: Vec<_> = per.into_iter().map(|(tgid, v)| (tgid, self.comm(tgid), v)).collect();
                self.by_comm.update(named);
            }
            other => return Err(format!("syscall_latency: unexpected map {other}")),
        }
        Ok(())
    }

    pub fn reset(&mut self) {
        self.syscalls.reset();
        self.procs.reset();
    }

    /// Per-syscall figures for the current mode.
    pub fn syscalls(&self) -> Vec<(u32, Totals)> {
        self.syscalls
            .view(self.mode, |now, r| r.map(|r| now.minus(r)).unwrap_or_else(|| now.clone()))
            .into_iter()
            .filter(|(_, t)| t.count > 0)
            .collect()
    }

    pub fn processes(&self) -> Vec<((u32, u32), ProcTotals)> {
        self.procs
            .view(self.mode, |now, r| r.map(|r| now.minus(r)).unwrap_or(*now))
            .into_iter()
            .filter(|(_, t)| t.count > 0)
            .collect()
    }

    fn comm(&self, tgid: u32) -> String {
        self.comms.get(&tgid).cloned().unwrap_or_else(|| "?".into())
    }

    fn syscall_table(&self, by_time: bool) -> Table {
        let mut v = self.syscalls();
        v.sort_by(|a, b| {
            let key = |t: &Totals| if by_time { t.total_ns } else { t.count };
            key(&b.1).cmp(&key(&a.1)).then(a.0.cmp(&b.0))
        });
        let cols = [
            key(column::<(u32, Totals)>("syscall", FieldKind::STR, "", |r| Value::str(&syscall_name(r.0)))),
            sum(column("count", FieldKind::U64, "", |r| Value::u64(r.1.count))),
            sum(column("errors", FieldKind::U64, "", |r| Value::u64(r.1.errors))),
            sum(column("total", FieldKind::DURATION_NS, "ns", |r| Value::u64(r.1.total_ns))),
            column("avg", FieldKind::DURATION_NS, "ns", |r| Value::u64(r.1.total_ns / r.1.count.max(1))),
            max(column("max", FieldKind::DURATION_NS, "ns", |r| Value::u64(r.1.max_ns))),
        ];
        table(&cols, v.iter().take(TOP_ROWS))
    }

    /// The syscall histogram panel `n` (0: `histogram`, 1: `histogram_2`...)
    /// shows: the n-th configured one; past the list, the syscalls with the
    /// most time that are not in it, in that order.
    pub fn histogram_syscall(&self, n: usize) -> Option<u32> {
        if let Some(nr) = self.histograms_of.get(n) {
            return Some(*nr);
        }
        let mut by_time: Vec<_> = self.syscalls().into_iter().filter(|(nr, _)| !self.histograms_of.contains(nr)).collect();
        by_time.sort_by(|a, b| b.1.total_ns.cmp(&a.1.total_ns).then(a.0.cmp(&b.0)));
        by_time.get(n - self.histograms_of.len()).map(|(nr, _)| *nr)
    }

    pub fn histogram(&self, n: usize) -> Log2Histogram {
        let nr = self.histogram_syscall(n);
        let buckets = nr
            .and_then(|nr| self.syscalls().into_iter().find(|(n, _)| *n == nr))
            .map(|(_, t)| t.hist)
            .unwrap_or_default();
        let unit = match nr {
            Some(nr) => format!("usecs ({})", syscall_name(nr)),
            None => "usecs".to_string(),
        };
        Log2Histogram { unit: unit.into(), buckets: buckets.into() }
    }

    /// Per process: totals over its syscalls and its busiest syscall.
    pub fn by_process(&self) -> Table {
        let mut per: HashMap<u32, (ProcTotals, u32, u64)> = HashMap::new();
        for ((tgid, nr), t) in self.processes() {
            let e = per.entry(tgid).or_insert((ProcTotals::default(), nr, 0));
            e.0.count = e.0.count.saturating_add(t.count);
            e.0.total_ns = e.0.total_ns.saturating_add(t.total_ns);
            e.0.errors = e.0.errors.saturating_add(t.errors);
            if t.count > e.2 {
                e.1 = nr;
                e.2 = t.count;
            }
        }
        let mut v: Vec<_> = per.into_iter().map(|(tgid, (t, nr, _))| (tgid, self.comm(tgid), t, nr)).collect();
        v.sort_by(|a, b| b.2.count.cmp(&a.2.count).then(a.0.cmp(&b.0)));
        let cols = [
            key(column::<(u32, String, ProcTotals, u32)>("pid", FieldKind::U64, "", |r| Value::u64(r.0 as u64))),
            key(column("comm", FieldKind::STR, "", |r| Value::str(&r.1))),
            sum(column("count", FieldKind::U64, "", |r| Value::u64(r.2.count))),
            sum(column("errors", FieldKind::U64, "", |r| Value::u64(r.2.errors))),
            sum(column("total", FieldKind::DURATION_NS, "ns", |r| Value::u64(r.2.total_ns))),
            column("top syscall", FieldKind::STR, "", |r| Value::str(&syscall_name(r.3))),
        ];
        table(&cols, v.iter().take(TOP_ROWS))
    }

    /// (process, syscall) pairs, busiest first: top syscalls per process and top
    /// processes per syscall are this table sorted by either column.
    pub fn process_syscalls(&self) -> Table {
        let mut v: Vec<_> = self.processes().into_iter().map(|((tgid, nr), t)| (tgid, self.comm(tgid), nr, t)).collect();
        v.sort_by(|a, b| b.3.count.cmp(&a.3.count).then((a.0, a.2).cmp(&(b.0, b.2))));
        let cols = [
            key(column::<(u32, String, u32, ProcTotals)>("pid", FieldKind::U64, "", |r| Value::u64(r.0 as u64))),
            key(column("comm", FieldKind::STR, "", |r| Value::str(&r.1))),
            key(column("syscall", FieldKind::STR, "", |r| Value::str(&syscall_name(r.2)))),
            sum(column("count", FieldKind::U64, "", |r| Value::u64(r.3.count))),
            sum(column("errors", FieldKind::U64, "", |r| Value::u64(r.3.errors))),
            sum(column("total", FieldKind::DURATION_NS, "ns", |r| Value::u64(r.3.total_ns))),
        ];
        table(&cols, v.iter().take(TOP_ROWS))
    }

    /// Per syscall that failed: errors, and (with `per_process`) the process
    /// that failed it most, so Enter on the row pivots onto that process.
    pub fn errors(&self) -> Table {
        let mut v: Vec<_> = self.syscalls().into_iter().filter(|(_, t)| t.errors > 0).collect();
        v.sort_by(|a, b| b.1.errors.cmp(&a.1.errors).then(a.0.cmp(&b.0)));
        let mut worst: HashMap<u32, (u32, u64)> = HashMap::new();
        for ((tgid, nr), t) in self.processes() {
            let e = worst.entry(nr).or_insert((tgid, 0));
            if t.errors > e.1 || (t.errors == e.1 && tgid < e.0) {
                *e = (tgid, t.errors);
            }
        }
        let rows: Vec<(u32, Totals, Option<(u32, String)>)> = v
            .into_iter()
            .take(TOP_ROWS)
            .map(|(nr, t)| {
                let who = worst.get(&nr).filter(|w| w.1 > 0).map(|w| (w.0, self.comm(w.0)));
                (nr, t, who)
            })
            .collect();
        let cols = [
            key(column::<(u32, Totals, Option<(u32, String)>)>("syscall", FieldKind::STR, "", |r| Value::str(&syscall_name(r.0)))),
            sum(column("errors", FieldKind::U64, "", |r| Value::u64(r.1.errors))),
            sum(column("count", FieldKind::U64, "", |r| Value::u64(r.1.count))),
            column("error rate", FieldKind::F64, "%", |r| Value::f64(100.0 * r.1.errors as f64 / r.1.count.max(1) as f64)),
            column("pid", FieldKind::U64, "", |r| r.2.as_ref().map(|w| Value::u64(w.0 as u64)).unwrap_or_else(Value::missing)),
            column("comm", FieldKind::STR, "", |r| r.2.as_ref().map(|w| Value::str(&w.1)).unwrap_or_else(Value::missing)),
        ];
        table(&cols, rows.iter())
    }

    pub fn summary(&self) -> Panel {
        let s = self.syscalls();
        counters(&[
            ("syscalls", sat_sum(s.iter().map(|x| x.1.count)), "calls"),
            ("errors", sat_sum(s.iter().map(|x| x.1.errors)), "calls"),
            ("distinct", s.len() as u64, "syscalls"),
            ("processes", self.processes().iter().map(|x| x.0 .0).collect::<std::collections::HashSet<_>>().len() as u64, ""),
            ("evicted", self.inserted.saturating_sub(self.proc_entries), "process-syscall pairs"),
        ])
    }

    /// The per-process panels, or why they are empty.
    fn per_process(&self, t: fn(&Self) -> Table) -> Panel {
        if !self.per_process {
            return Panel::Text(
                "per-process counting is off (it costs more per syscall than the rest):\n\
                 per_process = true under [plugins.syscall_latency], or f per_process=true"
                    .into(),
            );
        }
        Panel::Table(t(self))
    }

    /// Since the plugin started (the kernel's sums, not since a reset).
    pub fn metrics(&self) -> Vec<MetricSample> {
        let mut v = Vec::new();
        for (nr, t) in &self.syscalls.now {
            let name = syscall_name(*nr);
            v.push(metrics::counter("syscalls_total", &[&name], t.count));
            v.push(metrics::counter("syscall_errors_total", &[&name], t.errors));
            v.push(metrics::log2_histogram("syscall_duration_seconds", &[&name], &t.hist, "usecs", Some(t.total_ns as f64 / 1e9)));
        }
        if self.per_process {
            for (comm, [count, ns]) in self.by_comm.totals() {
                v.push(metrics::counter("process_syscalls_total", &[&comm], count));
                v.push(metrics::counter_f("process_syscall_seconds_total", &[&comm], ns as f64 / 1e9));
            }
        }
        v
    }
}

pub fn metric_specs() -> Vec<MetricSpec> {
    vec![
        MetricSpec::new("syscalls_total", MetricKind::COUNTER, "1", "completed syscalls", &["syscall"]),
        MetricSpec::new("syscall_errors_total", MetricKind::COUNTER, "1", "syscalls that returned an error", &["syscall"]),
        MetricSpec::new("syscall_duration_seconds", MetricKind::LOG2_HISTOGRAM, "seconds", "time from syscall entry to exit", &["syscall"]),
        MetricSpec::new("process_syscalls_total", MetricKind::COUNTER, "1", "completed syscalls by process name, with per_process on (top N names, the rest as other)", &["comm"]),
        MetricSpec::new("process_syscall_seconds_total", MetricKind::COUNTER, "seconds", "time in syscalls by process name, with per_process on (top N names, the rest as other)", &["comm"]),
    ]
}

pub const PANELS: &[PanelDef<SyscallStats>] = &[
    def("top_count", "Syscalls by count", PanelKind::TABLE, |s| Panel::Table(s.syscall_table(false))),
    def("top_time", "Syscalls by total time", PanelKind::TABLE, |s| Panel::Table(s.syscall_table(true))),
    def("histogram", "Syscall latency", PanelKind::LOG2_HISTOGRAM, |s| Panel::Log2Histogram(s.histogram(0))),
    // Side by side with the first: the second and third syscall of
    // `histogram_syscall`, or by total time.
    def("histogram_2", "Syscall latency (2nd)", PanelKind::LOG2_HISTOGRAM, |s| Panel::Log2Histogram(s.histogram(1))),
    def("histogram_3", "Syscall latency (3rd)", PanelKind::LOG2_HISTOGRAM, |s| Panel::Log2Histogram(s.histogram(2))),
    def("by_process", "Processes", PanelKind::TABLE, |s| s.per_process(SyscallStats::by_process)),
    def("process_syscalls", "Syscalls per process", PanelKind::TABLE, |s| s.per_process(SyscallStats::process_syscalls)),
    def("errors", "Syscall errors", PanelKind::TABLE, |s| Panel::Table(s.errors())),
    def("summary", "Syscall totals", PanelKind::COUNTERS, |s| s.summary()),
];

/// The largest `max_ns` over the CPUs whose maximum belongs to filter generation `gen`.
pub fn max_over_cpus(cpus: &[sc_stat], gen: u32) -> u64 {
    cpus.iter().filter(|c| c.max_gen == gen as u64).map(|c| c.max_ns).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::RVec;
    use tracer_plugin_api::MapEntry;

    /// A sc_stats snapshot over 2 CPUs: per syscall (count, total, max, errors, bucket).
    fn stats_snap(rows: &[(u32, [(u64, u64, u64, u64, usize); 2])]) -> MapSnapshot {
        let entries = rows
            .iter()
            .map(|(nr, cpus)| {
                let mut v = Vec::new();
                for &(count, total_ns, max_ns, errors, bucket) in cpus {
                    let mut s = sc_stat { count, total_ns, max_ns, errors, ..Default::default() };
                    s.hist[bucket] = count;
                    v.extend_from_slice(tracer_plugin_kit::bytes_of(&s));
                }
                MapEntry { key: nr.to_ne_bytes().to_vec().into(), value: v.into() }
            })
            .collect::<Vec<_>>();
        MapSnapshot { name: "sc_stats".into(), values_per_key: 2, entries: RVec::from(entries) }
    }

    fn proc_snap(rows: &[((u32, u32), u64, u64)]) -> MapSnapshot {
        let entries = rows
            .iter()
            .map(|&((tgid, nr), count, total)| {
                let k = tracer_plugin_kit::bytes_of(&sc_proc_key { tgid, nr }).to_vec();
                let v = tracer_plugin_kit::bytes_of(&sc_proc_val { count, total_ns: total, errors: 0 }).to_vec();
                MapEntry { key: k.into(), value: v.into() }
            })
            .collect::<Vec<_>>();
        MapSnapshot { name: "sc_procs".into(), values_per_key: 1, entries: RVec::from(entries) }
    }

    fn cell(t: &Table, r: usize, c: usize) -> Value {
        t.rows[r][c].as_enum().cloned().unwrap()
    }

    #[test]
    fn per_cpu_values_are_summed_and_max_taken() {
        let mut s = SyscallStats::default();
        // getppid (110): 3+2 calls; read (0): 1 call but the longest.
        s.on_map(&stats_snap(&[(110, [(3, 3000, 1500, 0, 0), (2, 2000, 1200, 1, 0)]), (0, [(1, 9000, 9000, 0, 3), (0, 0, 0, 0, 0)])])).unwrap();
        let t = s.syscall_table(false);
        assert_eq!(cell(&t, 0, 0), Value::Str("getppid".into()));
        assert_eq!(cell(&t, 0, 1), Value::U64(5));
        assert_eq!(cell(&t, 0, 2), Value::U64(1));
        assert_eq!(cell(&t, 0, 3), Value::U64(5000));
        assert_eq!(cell(&t, 0, 4), Value::U64(1000));
        assert_eq!(cell(&t, 0, 5), Value::U64(1500));
        let by_time = s.syscall_table(true);
        assert_eq!(cell(&by_time, 0, 0), Value::Str("read".into()));
        // The histograms default to the syscalls by time: read, then getppid.
        let h = s.histogram(0);
        assert_eq!(h.unit.as_str(), "usecs (read)");
        assert_eq!(h.buckets[3], 1);
        assert_eq!(s.histogram(1).unit.as_str(), "usecs (getppid)");
        assert_eq!(s.histogram(2).unit.as_str(), "usecs", "no third syscall: an empty histogram");
        // A list picks them in order; the panels past it go on by time.
        s.histograms_of = vec![110];
        assert_eq!((s.histogram(0).unit.as_str(), s.histogram(1).unit.as_str()), ("usecs (getppid)", "usecs (read)"));
        s.histograms_of = Vec::new();
        let e = s.errors();
        assert_eq!(e.rows.len(), 1);
        assert_eq!(cell(&e, 0, 3), Value::F64(20.0), "1 error in 5 calls, a number");
        s.reset();
        let m = s.metrics();
        tracer_plugin_kit::test_support::assert_metrics_declared(&metric_specs(), &m);
        let get = |n: &str| m.iter().find(|x| x.name == n && x.labels[0] == "getppid").unwrap().clone();
        assert_eq!(get("syscalls_total").value, 5.0, "metrics count since start, not since a reset");
        assert_eq!(get("syscall_errors_total").value, 1.0);
        let h = get("syscall_duration_seconds");
        assert_eq!((h.value, h.buckets[0], h.bucket_unit.as_str()), (5000e-9, 5, "usecs"));
    }

    #[test]
    fn interval_mode_shows_the_last_refresh_only_and_reset_rebases() {
        let mut s = SyscallStats::default();
        s.on_map(&stats_snap(&[(110, [(10, 100, 10, 0, 0), (0, 0, 0, 0, 0)])])).unwrap();
        s.on_map(&stats_snap(&[(110, [(15, 150, 10, 0, 0), (5, 50, 10, 0, 0)])])).unwrap();
        assert_eq!(s.syscalls()[0].1.count, 20);
        s.mode = Mode::Interval;
        assert_eq!(s.syscalls()[0].1.count, 10);
        s.mode = Mode::Cumulative;
        s.reset();
        assert!(s.syscalls().is_empty(), "nothing since the reset");
        s.on_map(&stats_snap(&[(110, [(16, 160, 10, 0, 0), (5, 50, 10, 0, 0)])])).unwrap();
        assert_eq!(s.syscalls()[0].1.count, 1);
    }

    #[test]
    fn processes_group_with_their_comm_and_evictions_are_counted() {
        let mut s = SyscallStats::default();
        s.on_map(&proc_snap(&[((7, 110), 50, 500), ((7, 0), 5, 50), ((8, 0), 9, 90)])).unwrap();
        let comms = MapSnapshot {
            name: "sc_comms".into(),
            values_per_key: 1,
            entries: RVec::from(vec![MapEntry { key: 7u32.to_ne_bytes().to_vec().into(), value: b"burst\0\0\0\0\0\0\0\0\0\0\0".to_vec().into() }]),
        };
        s.on_map(&comms).unwrap();
        let t = s.by_process();
        assert_eq!(cell(&t, 0, 0), Value::U64(7));
        assert_eq!(cell(&t, 0, 1), Value::Str("burst".into()));
        assert_eq!(cell(&t, 0, 2), Value::U64(55));
        assert_eq!(cell(&t, 0, 5), Value::Str("getppid".into()));
        assert_eq!(cell(&t, 1, 1), Value::Str("?".into()));
        let p = s.process_syscalls();
        assert_eq!(cell(&p, 0, 2), Value::Str("getppid".into()));
        s.inserted = 5;
        let Panel::Counters(summary) = s.summary() else { panic!() };
        assert_eq!(summary[4].value, 2, "5 inserted, 3 live: 2 evicted");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use tracer_plugin_kit::test_support::snapshot;

    proptest! {
        /// Whatever a map holds: figures or an error, never a panic, and the
        /// panels still build.
        #[test]
        fn arbitrary_snapshots_never_panic(snaps in proptest::collection::vec(snapshot(&["sc_stats", "sc_procs", "sc_comms", "other"]), 1..5)) {
            let mut s = SyscallStats::default();
            for snap in &snaps {
                let _ = s.on_map(snap);
            }
            s.per_process = true;
            for p in PANELS {
                let _ = (p.build)(&s);
            }
            tracer_plugin_kit::test_support::assert_metrics_declared(&metric_specs(), &s.metrics());
        }
    }
}
