//! Reclaim stalls: the time allocating tasks spent reclaiming memory
//! themselves (direct reclaim, memory cgroup limit reclaim), as log2
//! histograms per kind and per process. Counts only grow (see the kit's
//! `carried`); `r` moves the panels' zero, never the metrics'.

use crate::types::*;
use std::collections::HashMap;
use tracer_plugin_api::{FieldKind, MapSnapshot, MetricSample, Panel, Table, Value};
use tracer_plugin_kit::carried::Carried;
use tracer_plugin_kit::comm_totals::CommTotals;
use tracer_plugin_kit::metrics;
use tracer_plugin_kit::panels;
use tracer_plugin_kit::table::{column, key, sum, table};
use tracer_plugin_kit::{c_str, key_u32, per_cpu_values};

pub const SLOTS: usize = MEMORY_HIST_SLOTS as usize;
const KINDS: usize = MEMORY_RECLAIM_KINDS as usize;
/// The kinds, in enum memory_reclaim_kind order, as labels.
pub const KIND_NAMES: [&str; KINDS] = ["direct", "memcg"];
const TOP_ROWS: usize = 100;

/// Slots of each kind, then sum_ns of each, then reclaimed pages of each.
type Hist = Vec<u64>;
const HIST_LEN: usize = KINDS * SLOTS + 2 * KINDS;

fn plus_vec(a: &Hist, b: &Hist) -> Hist {
    (0..a.len().max(b.len())).map(|i| a.get(i).unwrap_or(&0).saturating_add(*b.get(i).unwrap_or(&0))).collect()
}

fn plus2(a: &[u64; 2], b: &[u64; 2]) -> [u64; 2] {
    [a[0].saturating_add(b[0]), a[1].saturating_add(b[1])]
}

#[derive(Default)]
pub struct Reclaim {
    hist: Carried<u32, Hist>,
    hist_base: Hist,
    /// Per process: stalls, ns.
    procs: Carried<u32, [u64; 2]>,
    procs_now: HashMap<u32, [u64; 2]>,
    procs_base: HashMap<u32, [u64; 2]>,
    comms: HashMap<u32, String>,
    by_comm: CommTotals<2>,
}

impl Reclaim {
    pub fn on_map(&mut self, snap: &MapSnapshot) {
        match snap.name.as_str() {
            "memory_reclaim_hist" => {
                let mut h: Hist = vec![0; HIST_LEN];
                for e in snap.entries.iter() {
                    for c in per_cpu_values::<memory_reclaim_hist>(snap, &e.value) {
                        let v: Hist = c.slots.iter().flat_map(|s| s.iter().copied()).chain(c.sum_ns).chain(c.reclaimed).collect();
                        h = plus_vec(&h, &v);
                    }
                }
                let stalls = |h: &Hist| tracer_plugin_kit::sat_sum(h.iter().take(KINDS * SLOTS).copied());
                self.hist.update(HashMap::from([(0, h)]), |n, o| stalls(n) < stalls(o), plus_vec, true);
            }
            "memory_reclaim_procs" => {
                let mut fresh: HashMap<u32, [u64; 2]> = HashMap::new();
                for e in snap.entries.iter() {
                    let Some(pid) = key_u32(&e.key, 0) else { continue };
                    let f = fresh.entry(pid).or_default();
                    for c in per_cpu_values::<memory_reclaim_proc>(snap, &e.value) {
                        *f = plus2(f, &[c.stalls, c.ns]);
                    }
                }
                self.procs.update(fresh, |n, o| n[0] < o[0], plus2, false);
                self.procs_now = self.procs.now(plus2);
                self.procs_base.retain(|k, _| self.procs_now.contains_key(k));
            }
            "memory_comms" => {
                let fresh: HashMap<u32, String> = snap.entries.iter().filter_map(|e| Some((key_u32(&e.key, 0)?, c_str(&e.value)))).collect();
                let procs = &self.procs_now;
                self.comms.retain(|pid, _| procs.contains_key(pid));
                self.comms.extend(fresh);
                let named: Vec<_> = self.procs.raw.iter().map(|(pid, f)| (*pid, self.comm(*pid), *f)).collect();
                self.by_comm.update(named);
            }
            _ => {}
        }
    }

    pub fn reset(&mut self) {
        self.hist_base = self.hist_now();
        self.procs_base = self.procs_now.clone();
    }

    fn comm(&self, pid: u32) -> String {
        self.comms.get(&pid).cloned().unwrap_or_else(|| "?".into())
    }

    fn hist_now(&self) -> Hist {
        let mut h = self.hist.now(plus_vec).remove(&0).unwrap_or_default();
        h.resize(HIST_LEN, 0);
        h
    }

    /// Both kinds' stalls since start or the last reset, log2 µs.
    pub fn latency(&self) -> Panel {
        let h = self.hist_now();
        let b = &self.hist_base;
        let at = |i: usize| h[i].saturating_sub(*b.get(i).unwrap_or(&0));
        panels::histogram("usecs", (0..SLOTS).map(|s| (0..KINDS).map(|k| at(k * SLOTS + s)).sum()).collect())
    }

    pub fn processes(&self) -> Table {
        struct Row {
            pid: u32,
            comm: String,
            f: [u64; 2],
        }
        let mut v: Vec<(u32, [u64; 2])> = self
            .procs_now
            .iter()
            .map(|(k, f)| (*k, self.procs_base.get(k).map(|b| [f[0].saturating_sub(b[0]), f[1].saturating_sub(b[1])]).unwrap_or(*f)))
            .filter(|(_, f)| f[0] > 0)
            .collect();
        v.sort_by(|a, b| b.1[1].cmp(&a.1[1]).then(a.0.cmp(&b.0)));
        let rows: Vec<Row> = v.into_iter().take(TOP_ROWS).map(|(pid, f)| Row { pid, comm: self.comm(pid), f }).collect();
        let cols = [
            key(column::<Row>("pid", FieldKind::U64, "", |r| Value::u64(r.pid as u64))),
            key(column("comm", FieldKind::STR, "", |r| Value::str(&r.comm))),
            sum(column("stalls", FieldKind::U64, "", |r| Value::u64(r.f[0]))),
            sum(column("time", FieldKind::DURATION_NS, "ns", |r| Value::u64(r.f[1]))),
            column("avg", FieldKind::DURATION_NS, "ns", |r| Value::u64(r.f[1] / r.f[0].max(1))),
        ];
        table(&cols, &rows)
    }

    /// (stalls, reclaimed pages) of each kind since start or the last reset.
    pub fn totals(&self) -> [(u64, u64); KINDS] {
        let h = self.hist_now();
        let b = &self.hist_base;
        let at = |i: usize| h[i].saturating_sub(*b.get(i).unwrap_or(&0));
        std::array::from_fn(|k| ((0..SLOTS).map(|s| at(k * SLOTS + s)).sum(), at(KINDS * SLOTS + KINDS + k)))
    }

    /// Since the plugin started.
    pub fn metrics(&self, out: &mut Vec<MetricSample>) {
        let h = self.hist_now();
        for (k, name) in KIND_NAMES.iter().enumerate() {
            out.push(metrics::log2_histogram("reclaim_stall_seconds", &[name], &h[k * SLOTS..(k + 1) * SLOTS], "usecs", Some(h[KINDS * SLOTS + k] as f64 / 1e9)));
            out.push(metrics::counter("reclaimed_pages_total", &[name], h[KINDS * SLOTS + KINDS + k]));
        }
        for (comm, v) in self.by_comm.totals() {
            out.push(metrics::counter("process_reclaim_stalls_total", &[comm.as_str()], v[0]));
        }
    }
}
