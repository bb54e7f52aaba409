//! Per-disk and per-process block I/O figures from the kernel's per-CPU maps.
//!
//! Figures only grow: what a key had counted when it left the map (evicted,
//! or the maps made anew when the plugin was detached and attached again)
//! is carried. `r` (reset) moves the panels' zero, never the metrics'.

use crate::settings::dev_name;
use crate::types::*;
use std::collections::HashMap;
use tracer_plugin_api::{FieldKind, FieldValue, Log2Histogram, MapSnapshot, MetricKind, MetricSample, MetricSpec, Panel, PanelKind, Table, Value};
use tracer_plugin_kit::carried::Carried;
use tracer_plugin_kit::comm_totals::CommTotals;
use tracer_plugin_kit::metrics;
use tracer_plugin_kit::panels::{self, counters, def, PanelDef};
use tracer_plugin_kit::table::{column, extra, key, sum, table};
use tracer_plugin_kit::{c_str, key_u32, per_cpu_values, read, sat_sum};

pub const SLOTS: usize = BLOCK_HIST_SLOTS as usize;
const TOP_ROWS: usize = 100;

/// A log2 histogram and the sum of what it counts, as the kernel keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hist {
    pub slots: [u64; SLOTS],
    pub sum: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist { slots: [0; SLOTS], sum: 0 }
    }
}

impl Hist {
    fn add(&mut self, h: &block_hist) {
        for (a, b) in self.slots.iter_mut().zip(h.slots.iter()) {
            *a = a.saturating_add(*b);
        }
        self.sum = self.sum.saturating_add(h.sum);
    }
    fn zip(&self, o: &Hist, f: fn(u64, u64) -> u64) -> Hist {
        let mut r = self.clone();
        for (a, b) in r.slots.iter_mut().zip(o.slots.iter()) {
            *a = f(*a, *b);
        }
        r.sum = f(self.sum, o.sum);
        r
    }
    fn count(&self) -> u64 {
        sat_sum(self.slots.iter().copied())
    }
}

/// One disk, operation and sync class: the per-CPU values summed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disk {
    pub issued: u64,
    pub requeued: u64,
    pub done: u64,
    pub bytes: u64,
    pub errors: u64,
    pub queued: u64,
    pub queue: Hist,
    pub device: Hist,
    pub total: Hist,
    pub size: Hist,
}

impl Disk {
    fn zip(&self, o: &Disk, f: fn(u64, u64) -> u64) -> Disk {
        Disk {
            issued: f(self.issued, o.issued),
            requeued: f(self.requeued, o.requeued),
            done: f(self.done, o.done),
            bytes: f(self.bytes, o.bytes),
            errors: f(self.errors, o.errors),
            queued: f(self.queued, o.queued),
            queue: self.queue.zip(&o.queue, f),
            device: self.device.zip(&o.device, f),
            total: self.total.zip(&o.total, f),
            size: self.size.zip(&o.size, f),
        }
    }
    fn plus(&self, o: &Disk) -> Disk {
        self.zip(o, u64::saturating_add)
    }
    fn minus(&self, o: &Disk) -> Disk {
        self.zip(o, u64::saturating_sub)
    }
}

/// (dev, op, sync)
pub type DiskKey = (u32, u8, u8);

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Proc {
    pub ops: u64,
    pub bytes: u64,
    pub total_ns: u64,
    pub device_ns: u64,
}

impl Proc {
    fn zip(&self, o: &Proc, f: fn(u64, u64) -> u64) -> Proc {
        Proc { ops: f(self.ops, o.ops), bytes: f(self.bytes, o.bytes), total_ns: f(self.total_ns, o.total_ns), device_ns: f(self.device_ns, o.device_ns) }
    }
}

/// (tgid, dev, op)
pub type ProcKey = (u32, u32, u8);

pub fn op_name(op: u8) -> &'static str {
    match op as u32 {
        BLOCK_OP_READ => "read",
        BLOCK_OP_WRITE => "write",
        BLOCK_OP_FLUSH => "flush",
        BLOCK_OP_DISCARD => "discard",
        _ => "other",
    }
}

#[derive(Default)]
pub struct BlockStats {
    disks: Carried<DiskKey, Disk>,
    disks_now: HashMap<DiskKey, Disk>,
    disks_base: HashMap<DiskKey, Disk>,
    names: HashMap<u32, String>,
    procs: Carried<ProcKey, Proc>,
    procs_now: HashMap<ProcKey, Proc>,
    procs_base: HashMap<ProcKey, Proc>,
    comms: HashMap<u32, String>,
    by_comm: CommTotals<2>,
    /// Requests in flight now (issued, not completed), by dev.
    in_flight: HashMap<u32, u64>,
    /// Requests followed now (in flight or waiting to be issued).
    live_rqs: u64,
    counters: [u64; BLOCK_STAT_MAX as usize],
}

impl BlockStats {
    pub fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        match snap.name.as_str() {
            "block_disks" => {
                let mut fresh: HashMap<DiskKey, Disk> = HashMap::new();
                for e in snap.entries.iter() {
                    let Some(k) = read::<block_disk_key>(&e.key) else { continue };
                    let d = fresh.entry((k.dev, k.op, k.sync)).or_default();
                    for c in per_cpu_values::<block_disk>(snap, &e.value) {
                        let a = |x: &mut u64, y: u64| *x = x.saturating_add(y);
                        a(&mut d.issued, c.issued);
                        a(&mut d.requeued, c.requeued);
                        a(&mut d.done, c.done);
                        a(&mut d.bytes, c.bytes);
                        a(&mut d.errors, c.errors);
                        a(&mut d.queued, c.queued);
                        d.queue.add(&c.queue);
                        d.device.add(&c.device);
                        d.total.add(&c.total);
                        d.size.add(&c.size);
                        let name = c_str(&c.disk_name);
                        if !name.is_empty() {
                            self.names.insert(k.dev, name);
                        }
                    }
                }
                self.disks.update(fresh, |new, old| new.issued < old.issued || new.done < old.done, Disk::plus, true);
                self.disks_now = self.disks.now(Disk::plus);
            }
            "block_procs" => {
                let mut fresh: HashMap<ProcKey, Proc> = HashMap::new();
                for e in snap.entries.iter() {
                    let Some(k) = read::<block_proc_key>(&e.key) else { continue };
                    let p = fresh.entry((k.tgid, k.dev, k.op)).or_default();
                    for c in per_cpu_values::<block_proc>(snap, &e.value) {
                        *p = p.zip(&Proc { ops: c.ops, bytes: c.bytes, total_ns: c.total_ns, device_ns: c.device_ns }, u64::saturating_add);
                    }
                }
                let plus = |a: &Proc, b: &Proc| a.zip(b, u64::saturating_add);
                self.procs.update(fresh, |new, old| new.ops < old.ops, plus, false);
                self.procs_now = self.procs.now(plus);
                self.procs_base.retain(|k, _| self.procs_now.contains_key(k));
            }
            "block_comms" => {
                // Names stay while their process is shown: the kernel's name
                // map is an LRU that short-lived processes churn.
                let fresh: HashMap<u32, String> = snap.entries.iter().filter_map(|e| Some((key_u32(&e.key, 0)?, c_str(&e.value)))).collect();
                let procs = &self.procs_now;
                self.comms.retain(|pid, _| procs.keys().any(|k| k.0 == *pid));
                self.comms.extend(fresh);
                let mut per_pid: HashMap<u32, [u64; 2]> = HashMap::new();
                for (k, p) in &self.procs.raw {
                    let e = per_pid.entry(k.0).or_default();
                    e[0] = e[0].saturating_add(p.ops);
                    e[1] = e[1].saturating_add(p.bytes);
                }
                let named: Vec<_> = per_pid.into_iter().map(|(pid, v)| (pid, self.comm(pid), v)).collect();
                self.by_comm.update(named);
            }
            "block_rqs" => {
                self.in_flight.clear();
                self.live_rqs = 0;
                for e in snap.entries.iter() {
                    let Some(r) = read::<block_rq>(&e.value) else { continue };
                    self.live_rqs += 1;
                    if r.skip == 0 && r.issue_ns != 0 && r.done_ns == 0 {
                        *self.in_flight.entry(r.dev).or_default() += 1;
                    }
                }
            }
            "block_counters" => {
                for e in snap.entries.iter() {
                    let Some(i) = key_u32(&e.key, 0) else { continue };
                    if let Some(c) = self.counters.get_mut(i as usize) {
                        *c = sat_sum(per_cpu_values::<u64>(snap, &e.value));
                    }
                }
            }
            other => return Err(format!("block: unexpected map {other}")),
        }
        Ok(())
    }

    pub fn reset(&mut self) {
        self.disks_base = self.disks_now.clone();
        self.procs_base = self.procs_now.clone();
    }

    fn comm(&self, tgid: u32) -> String {
        self.comms.get(&tgid).cloned().unwrap_or_else(|| "?".into())
    }

    pub fn disk_name(&self, dev: u32) -> String {
        self.names.get(&dev).cloned().unwrap_or_else(|| dev_name(dev))
    }

    /// Since start or the last reset.
    fn disks_shown(&self) -> Vec<(DiskKey, Disk)> {
        let mut v: Vec<(DiskKey, Disk)> = self
            .disks_now
            .iter()
            .map(|(k, d)| (*k, self.disks_base.get(k).map(|b| d.minus(b)).unwrap_or_else(|| d.clone())))
            .filter(|(_, d)| d.done > 0 || d.issued > 0)
            .collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    fn procs_shown(&self) -> Vec<(ProcKey, Proc)> {
        self.procs_now
            .iter()
            .map(|(k, p)| (*k, self.procs_base.get(k).map(|b| p.zip(b, u64::saturating_sub)).unwrap_or(*p)))
            .filter(|(_, p)| p.ops > 0)
            .collect()
    }

    /// All disks' histogram `f`, since start or the last reset.
    fn hist(&self, f: fn(&Disk) -> &Hist) -> Vec<u64> {
        let mut h = Hist::default();
        for (_, d) in self.disks_shown() {
            h = h.zip(f(&d), u64::saturating_add);
        }
        h.slots.to_vec()
    }

    pub fn disks(&self) -> Table {
        struct Row {
            disk: String,
            dev: String,
            op: &'static str,
            sync: &'static str,
            d: Disk,
            in_flight: u64,
        }
        // In flight is per disk: on the disk's first row only, so a column sum is right.
        let mut shown = std::collections::HashSet::new();
        let rows: Vec<Row> = self
            .disks_shown()
            .into_iter()
            .map(|((dev, op, sync), d)| Row {
                disk: self.disk_name(dev),
                dev: dev_name(dev),
                op: op_name(op),
                sync: if sync != 0 { "sync" } else { "async" },
                in_flight: if shown.insert(dev) { self.in_flight.get(&dev).copied().unwrap_or(0) } else { 0 },
                d,
            })
            .collect();
        fn avg(h: &Hist) -> FieldValue {
            if h.count() == 0 {
                Value::missing()
            } else {
                Value::u64(h.sum / h.count())
            }
        }
        fn p99(h: &Hist) -> FieldValue {
            Log2Histogram::quantile_upper(&h.slots, 0.99).map(|us| Value::u64(us.saturating_mul(1000))).unwrap_or_else(Value::missing)
        }
        let cols = [
            key(column::<Row>("disk", FieldKind::STR, "", |r| Value::str(&r.disk))),
            extra(column("dev", FieldKind::STR, "", |r| Value::str(&r.dev))),
            key(column("op", FieldKind::STR, "", |r| Value::str(r.op))),
            column("sync", FieldKind::STR, "", |r| Value::str(r.sync)),
            sum(column("requests", FieldKind::U64, "", |r| Value::u64(r.d.done))),
            sum(column("bytes", FieldKind::BYTES, "bytes", |r| Value::u64(r.d.bytes))),
            sum(column("errors", FieldKind::U64, "", |r| Value::u64(r.d.errors))),
            sum(column("in flight", FieldKind::U64, "", |r| Value::u64(r.in_flight))),
            extra(sum(column("time", FieldKind::DURATION_NS, "ns", |r| Value::u64(r.d.total.sum)))),
            column("avg queue", FieldKind::DURATION_NS, "ns", |r| avg(&r.d.queue)),
            column("avg device", FieldKind::DURATION_NS, "ns", |r| avg(&r.d.device)),
            column("avg total", FieldKind::DURATION_NS, "ns", |r| avg(&r.d.total)),
            extra(column("p99 total", FieldKind::DURATION_NS, "ns", |r| p99(&r.d.total))),
            extra(sum(column("requeued", FieldKind::U64, "", |r| Value::u64(r.d.requeued)))),
        ];
        table(&cols, &rows)
    }

    pub fn processes(&self) -> Table {
        struct Row {
            pid: u32,
            comm: String,
            disk: String,
            op: &'static str,
            p: Proc,
        }
        let mut v = self.procs_shown();
        v.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(b.1.ops.cmp(&a.1.ops)).then(a.0.cmp(&b.0)));
        let rows: Vec<Row> = v
            .into_iter()
            .take(TOP_ROWS)
            .map(|((pid, dev, op), p)| Row { pid, comm: self.comm(pid), disk: self.disk_name(dev), op: op_name(op), p })
            .collect();
        let cols = [
            key(column::<Row>("pid", FieldKind::U64, "", |r| Value::u64(r.pid as u64))),
            key(column("comm", FieldKind::STR, "", |r| Value::str(&r.comm))),
            column("disk", FieldKind::STR, "", |r| Value::str(&r.disk)),
            column("op", FieldKind::STR, "", |r| Value::str(r.op)),
            sum(column("requests", FieldKind::U64, "", |r| Value::u64(r.p.ops))),
            sum(column("bytes", FieldKind::BYTES, "bytes", |r| Value::u64(r.p.bytes))),
            column("avg total", FieldKind::DURATION_NS, "ns", |r| if r.p.ops == 0 { Value::missing() } else { Value::u64(r.p.total_ns / r.p.ops) }),
            extra(column("avg device", FieldKind::DURATION_NS, "ns", |r| if r.p.ops == 0 { Value::missing() } else { Value::u64(r.p.device_ns / r.p.ops) })),
        ];
        table(&cols, &rows)
    }

    pub fn summary(&self) -> Panel {
        let v = self.disks_shown();
        let s = |f: fn(&Disk) -> u64| sat_sum(v.iter().map(|(_, d)| f(d)));
        let c = |i: u32| self.counters[i as usize];
        let rq_evicted = c(BLOCK_STAT_RQ_INSERTED).saturating_sub(c(BLOCK_STAT_RQ_DELETED)).saturating_sub(self.live_rqs);
        let procs_live = self.procs.raw.len() as u64;
        counters(&[
            ("requests", s(|d| d.done), ""),
            ("bytes", s(|d| d.bytes), "bytes"),
            ("errors", s(|d| d.errors), ""),
            ("in flight", sat_sum(self.in_flight.values().copied()), ""),
            ("requeued", s(|d| d.requeued), ""),
            ("begun before attach (no owner)", c(BLOCK_STAT_UNSEEN), ""),
            ("of those, left out by the process filter", c(BLOCK_STAT_UNOWNED), ""),
            ("requests evicted", rq_evicted, ""),
            ("request state not stored", c(BLOCK_STAT_RQ_FAILED), ""),
            ("stale request state replaced", c(BLOCK_STAT_STALE), ""),
            ("completed, not counted (no block_io_done)", c(BLOCK_STAT_STALE_DONE), ""),
            ("process entries evicted", c(BLOCK_STAT_PROC_INSERTED).saturating_sub(procs_live), ""),
        ])
    }

    /// Since the plugin started (metrics never reset).
    pub fn metrics(&self) -> Vec<MetricSample> {
        let mut out = Vec::new();
        // Metrics by disk and operation: sync and async summed.
        let mut by: HashMap<(u32, u8), Disk> = HashMap::new();
        for ((dev, op, _), d) in &self.disks_now {
            let e = by.entry((*dev, *op)).or_default();
            *e = e.plus(d);
        }
        let mut keys: Vec<_> = by.keys().copied().collect();
        keys.sort();
        for k in keys {
            let d = &by[&k];
            let (disk, op) = (self.disk_name(k.0), op_name(k.1));
            let l = [disk.as_str(), op];
            out.push(metrics::counter("requests_total", &l, d.done));
            out.push(metrics::counter("io_bytes_total", &l, d.bytes));
            out.push(metrics::counter("errors_total", &l, d.errors));
            out.push(metrics::log2_histogram("request_queue_seconds", &l, &d.queue.slots, "usecs", Some(d.queue.sum as f64 / 1e9)));
            out.push(metrics::log2_histogram("request_device_seconds", &l, &d.device.slots, "usecs", Some(d.device.sum as f64 / 1e9)));
            out.push(metrics::log2_histogram("request_seconds", &l, &d.total.slots, "usecs", Some(d.total.sum as f64 / 1e9)));
            out.push(metrics::log2_histogram("request_size_bytes", &l, &d.size.slots, "bytes", Some(d.size.sum as f64)));
        }
        let mut devs: Vec<u32> = self.disks_now.keys().map(|k| k.0).collect();
        devs.sort();
        devs.dedup();
        for dev in devs {
            out.push(metrics::gauge("in_flight_requests", &[self.disk_name(dev).as_str()], self.in_flight.get(&dev).copied().unwrap_or(0) as f64));
        }
        for (comm, [ops, bytes]) in self.by_comm.totals() {
            out.push(metrics::counter("process_requests_total", &[comm.as_str()], ops));
            out.push(metrics::counter("process_bytes_total", &[comm.as_str()], bytes));
        }
        out
    }
}

pub fn metric_specs() -> Vec<MetricSpec> {
    let dop: &[&str] = &["disk", "op"];
    vec![
        MetricSpec::new("requests_total", MetricKind::COUNTER, "1", "block requests completed, by disk and operation (read, write, flush, discard, other)", dop),
        MetricSpec::new("io_bytes_total", MetricKind::COUNTER, "bytes", "bytes of the completed requests, by disk and operation", dop),
        MetricSpec::new("errors_total", MetricKind::COUNTER, "1", "requests completed with an error status", dop),
        MetricSpec::new("request_queue_seconds", MetricKind::LOG2_HISTOGRAM, "seconds", "time from a request's start to its issue to the driver (queue time)", dop),
        MetricSpec::new("request_device_seconds", MetricKind::LOG2_HISTOGRAM, "seconds", "time from issue to completion (device time, biolatency)", dop),
        MetricSpec::new("request_seconds", MetricKind::LOG2_HISTOGRAM, "seconds", "time from a request's start to its completion (what /proc/diskstats sums)", dop),
        MetricSpec::new("request_size_bytes", MetricKind::LOG2_HISTOGRAM, "bytes", "bytes per request", dop),
        MetricSpec::new("in_flight_requests", MetricKind::GAUGE, "1", "requests issued to the driver and not completed", &["disk"]),
        MetricSpec::new("process_requests_total", MetricKind::COUNTER, "1", "requests completed by the process name that submitted them (top N names, the rest as other)", &["comm"]),
        MetricSpec::new("process_bytes_total", MetricKind::COUNTER, "bytes", "bytes of those requests by process name (top N names, the rest as other)", &["comm"]),
    ]
}

fn hist(s: &BlockStats, unit: &str, f: fn(&Disk) -> &Hist) -> Panel {
    panels::histogram(unit, s.hist(f))
}

pub const PANELS: &[PanelDef<BlockStats>] = &[
    def("disks", "Block I/O by disk", PanelKind::TABLE, |s| Panel::Table(s.disks())),
    def("processes", "Block I/O by process", PanelKind::TABLE, |s| Panel::Table(s.processes())),
    def("device", "Block device latency (issue to completion)", PanelKind::LOG2_HISTOGRAM, |s| hist(s, "usecs", |d| &d.device)),
    def("queue", "Block queue latency (start to issue)", PanelKind::LOG2_HISTOGRAM, |s| hist(s, "usecs", |d| &d.queue)),
    def("sizes", "Block request sizes", PanelKind::LOG2_HISTOGRAM, |s| hist(s, "bytes", |d| &d.size)),
    def("summary", "Block I/O totals", PanelKind::COUNTERS, |s| s.summary()),
];

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::RVec;
    use proptest::prelude::*;
    use tracer_plugin_api::MapEntry;
    use tracer_plugin_kit::test_support::snapshot;

    fn snap(name: &str, per_cpu: u32, entries: Vec<(Vec<u8>, Vec<u8>)>) -> MapSnapshot {
        MapSnapshot { name: name.into(), values_per_key: per_cpu, entries: RVec::from(entries.into_iter().map(|(k, v)| MapEntry { key: k.into(), value: v.into() }).collect::<Vec<_>>()) }
    }

    /// block_disks with one key (dev 7:0, op, sync) over two CPUs: (done, bytes, device µs slot) per CPU.
    fn disks(op: u32, cpus: [(u64, u64, usize); 2]) -> MapSnapshot {
        let key = block_disk_key { dev: 7 << 20, op: op as u8, sync: 1, ..Default::default() };
        let mut v = Vec::new();
        for (i, (done, bytes, slot)) in cpus.into_iter().enumerate() {
            let mut d: block_disk = tracer_plugin_kit::zeroed();
            d.issued = done;
            d.done = done;
            d.bytes = bytes;
            d.device.slots[slot] = done;
            d.device.sum = done * 1000 * (1 << slot);
            d.total.slots[slot] = done;
            d.total.sum = done * 2000 * (1 << slot);
            if i == 1 {
                d.disk_name[..5].copy_from_slice(b"loop0");
            }
            v.extend_from_slice(tracer_plugin_kit::bytes_of(&d));
        }
        snap("block_disks", 2, vec![(tracer_plugin_kit::bytes_of(&key).to_vec(), v)])
    }

    fn procs(rows: &[(u32, u32, u64, u64)]) -> MapSnapshot {
        let entries = rows
            .iter()
            .map(|&(tgid, op, ops, bytes)| {
                let k = block_proc_key { tgid, dev: 7 << 20, op: op as u8, ..Default::default() };
                let p = block_proc { ops, bytes, total_ns: ops * 10_000, device_ns: ops * 8_000 };
                (tracer_plugin_kit::bytes_of(&k).to_vec(), tracer_plugin_kit::bytes_of(&p).to_vec())
            })
            .collect();
        snap("block_procs", 1, entries)
    }

    fn comms(rows: &[(u32, &str)]) -> MapSnapshot {
        snap("block_comms", 1, rows.iter().map(|(pid, c)| (pid.to_ne_bytes().to_vec(), tracer_plugin_kit::comm_bytes(c).to_vec())).collect())
    }

    fn cell<'a>(t: &'a Table, row: usize, col: &str) -> &'a FieldValue {
        let i = t.columns.iter().position(|c| c.name.as_str() == col).unwrap_or_else(|| panic!("no column {col}"));
        &t.rows[row][i]
    }

    #[test]
    fn per_cpu_values_are_summed_and_the_disk_is_named_by_the_kernel() {
        let mut s = BlockStats::default();
        s.on_map(&disks(BLOCK_OP_READ, [(3, 3 * 4096, 4), (2, 2 * 4096, 5)])).unwrap();
        let t = s.disks();
        assert_eq!(t.rows.len(), 1);
        assert_eq!(cell(&t, 0, "disk"), &Value::str("loop0"));
        assert_eq!(cell(&t, 0, "dev"), &Value::str("7:0"));
        assert_eq!(cell(&t, 0, "op"), &Value::str("read"));
        assert_eq!(cell(&t, 0, "requests"), &Value::u64(5));
        assert_eq!(cell(&t, 0, "bytes"), &Value::u64(5 * 4096));
        // (3 × 16 µs + 2 × 32 µs) / 5, in ns.
        assert_eq!(cell(&t, 0, "avg device"), &Value::u64((3 * 16_000 + 2 * 32_000) / 5));
        let m = s.metrics();
        tracer_plugin_kit::test_support::assert_metrics_declared(&metric_specs(), &m);
        let req = m.iter().find(|x| x.name.as_str() == "requests_total").unwrap();
        assert_eq!((req.labels[0].as_str(), req.labels[1].as_str(), req.value), ("loop0", "read", 5.0));
        let dev = m.iter().find(|x| x.name.as_str() == "request_device_seconds").unwrap();
        assert_eq!(dev.buckets[4] + dev.buckets[5], 5);
        assert_eq!(dev.value, (3 * 16_000 + 2 * 32_000) as f64 / 1e9, "the kernel's sum, in seconds");
    }

    #[test]
    fn figures_carry_on_across_a_new_map_and_a_reset_moves_only_the_panels() {
        let mut s = BlockStats::default();
        s.on_map(&disks(BLOCK_OP_WRITE, [(10, 10, 3), (0, 0, 3)])).unwrap();
        s.reset();
        // Re-attached: the map starts again from 4.
        s.on_map(&disks(BLOCK_OP_WRITE, [(4, 4, 3), (0, 0, 3)])).unwrap();
        let t = s.disks();
        assert_eq!(cell(&t, 0, "requests"), &Value::u64(4), "since the reset");
        let req = s.metrics().into_iter().find(|x| x.name.as_str() == "requests_total").unwrap();
        assert_eq!(req.value, 14.0, "since start, across the new map");
        // Gone from the map (evicted): still counted.
        s.on_map(&snap("block_disks", 2, vec![])).unwrap();
        let req = s.metrics().into_iter().find(|x| x.name.as_str() == "requests_total").unwrap();
        assert_eq!(req.value, 14.0);
    }

    #[test]
    fn processes_are_named_sorted_by_bytes_and_summed_by_name_for_metrics() {
        let mut s = BlockStats::default();
        s.on_map(&procs(&[(10, BLOCK_OP_READ, 3, 300), (11, BLOCK_OP_WRITE, 1, 9000), (10, BLOCK_OP_WRITE, 2, 20)])).unwrap();
        s.on_map(&comms(&[(10, "reader"), (11, "writer")])).unwrap();
        let t = s.processes();
        assert_eq!(cell(&t, 0, "comm"), &Value::str("writer"));
        assert_eq!(cell(&t, 1, "requests"), &Value::u64(3));
        assert_eq!(cell(&t, 1, "avg total"), &Value::u64(10_000));
        let m = s.metrics();
        let by = |name: &str, comm: &str| m.iter().find(|x| x.name.as_str() == name && x.labels[0].as_str() == comm).map(|x| x.value);
        assert_eq!(by("process_requests_total", "reader"), Some(5.0), "both of its entries");
        assert_eq!(by("process_bytes_total", "writer"), Some(9000.0));
        // The process exits and its entries go: its name keeps its figures.
        s.on_map(&procs(&[])).unwrap();
        s.on_map(&comms(&[])).unwrap();
        assert!(s.processes().rows.is_empty());
        let m = s.metrics();
        assert_eq!(m.iter().find(|x| x.name.as_str() == "process_requests_total" && x.labels[0].as_str() == "reader").map(|x| x.value), Some(5.0));
    }

    #[test]
    fn in_flight_counts_issued_requests_not_yet_done() {
        let mut s = BlockStats::default();
        s.on_map(&disks(BLOCK_OP_READ, [(1, 1, 0), (0, 0, 0)])).unwrap();
        let rq = |issue: u64, done: u64, skip: u8| {
            let r = block_rq { issue_ns: issue, done_ns: done, skip, dev: 7 << 20, ..Default::default() };
            (8u64.to_ne_bytes().to_vec(), tracer_plugin_kit::bytes_of(&r).to_vec())
        };
        s.on_map(&snap("block_rqs", 1, vec![rq(5, 0, 0), rq(5, 9, 0), rq(0, 0, 0), rq(5, 0, 1)])).unwrap();
        assert_eq!(cell(&s.disks(), 0, "in flight"), &Value::u64(1), "issued, not completed, wanted");
        let g = s.metrics().into_iter().find(|x| x.name.as_str() == "in_flight_requests").unwrap();
        assert_eq!(g.value, 1.0);
    }

    proptest! {
        /// Whatever a map holds: figures or an error, never a panic, and the
        /// panels still build.
        #[test]
        fn arbitrary_snapshots_never_panic(snaps in proptest::collection::vec(snapshot(&["block_disks", "block_procs", "block_comms", "block_rqs", "block_counters", "other"]), 1..5)) {
            let mut s = BlockStats::default();
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
