//! What the tcp panels show: live connections (from the kernel's map), recent
//! closes and transitions (from the rings), the connect-latency histogram.

use crate::record::{end_name, state_name, Close, Conn, Transition};
use std::collections::{BTreeMap, VecDeque};
use abi_stable::std_types::RVec;
use tracer_plugin_api::{Counter, FieldKind, FieldSpec, FieldValue, Log2Histogram, MapSnapshot, Panel, Table, Value};
use crate::types::{TCP_HIST_SLOTS, TCP_STAT_CONN_INSERTED};
use tracer_plugin_kit::{col, key_u32, per_cpu_values, sat_sum};

pub const RECENT: usize = 512;
const TOP_ROWS: usize = 200;

#[derive(Default)]
pub struct TcpStats {
    pub live: Vec<Conn>,
    closed: VecDeque<Close>,
    transitions: VecDeque<Transition>,
    connect_hist: Vec<u64>,
    connect_hist_base: Vec<u64>,
    pub closed_total: u64,
    by_end: BTreeMap<&'static str, u64>,
    pub inserted: u64,
}

fn push<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() == RECENT {
        q.pop_front();
    }
    q.push_back(v);
}

fn endpoint(a: &str, port: u16) -> String {
    if a.contains(':') {
        format!("[{a}]:{port}")
    } else {
        format!("{a}:{port}")
    }
}

fn pid_value(pid: u32) -> tracer_plugin_api::FieldValue {
    if pid == 0 {
        Value::missing()
    } else {
        Value::u64(pid as u64)
    }
}

/// The columns closes and transitions both start with: when, who, the two ends.
fn with_lead_columns<const N: usize>(rest: [FieldSpec; N]) -> RVec<FieldSpec> {
    let mut v = vec![
        col("time", FieldKind::MONO_TIME_NS),
        col("pid", FieldKind::U64),
        col("comm", FieldKind::STR),
        col("local", FieldKind::STR),
        col("remote", FieldKind::STR),
    ];
    v.extend(rest);
    v.into()
}

/// The cells of [`with_lead_columns`]' leading columns.
fn lead(ts: u64, pid: u32, comm: &str, local: (&str, u16), remote: (&str, u16)) -> Vec<FieldValue> {
    vec![
        Value::u64(ts),
        pid_value(pid),
        Value::str(comm),
        Value::str(&endpoint(local.0, local.1)),
        Value::str(&endpoint(remote.0, remote.1)),
    ]
}

impl TcpStats {
    pub fn add_close(&mut self, c: Close) {
        self.closed_total += 1;
        *self.by_end.entry(end_name(c.end)).or_default() += 1;
        push(&mut self.closed, c);
    }

    pub fn add_transition(&mut self, t: Transition) {
        push(&mut self.transitions, t);
    }

    pub fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        match snap.name.as_str() {
            "tcp_conns" => {
                self.live = snap.entries.iter().filter_map(|e| Conn::decode(&e.value).ok()).collect();
            }
            "tcp_connect_hist" => {
                if let Some(e) = snap.entries.first() {
                    let cpus: Vec<[u64; TCP_HIST_SLOTS as usize]> = per_cpu_values(snap, &e.value).collect();
                    self.connect_hist = tracer_plugin_kit::sum_slots(&cpus);
                }
            }
            "tcp_counters" => {
                if let Some(e) = snap.entries.iter().find(|e| key_u32(&e.key, 0) == Some(TCP_STAT_CONN_INSERTED)) {
                    self.inserted = sat_sum(per_cpu_values::<u64>(snap, &e.value));
                }
            }
            other => return Err(format!("tcp: unexpected map {other}")),
        }
        Ok(())
    }

    pub fn reset(&mut self) {
        self.closed.clear();
        self.transitions.clear();
        self.closed_total = 0;
        self.by_end.clear();
        self.connect_hist_base = self.connect_hist.clone();
    }

    pub fn live_table(&self, now_ns: u64) -> Table {
        let mut v: Vec<&Conn> = self.live.iter().collect();
        v.sort_by_key(|c| c.first_ns);
        Table {
            columns: vec![
                col("pid", FieldKind::U64),
                col("comm", FieldKind::STR),
                col("local", FieldKind::STR),
                col("remote", FieldKind::STR),
                col("state", FieldKind::STR),
                col("age", FieldKind::DURATION_NS),
                col("dir", FieldKind::STR),
            ]
            .into(),
            rows: v
                .into_iter()
                .take(TOP_ROWS)
                .map(|c| {
                    vec![
                        pid_value(c.pid),
                        Value::str(&c.comm),
                        Value::str(&endpoint(&c.saddr, c.sport)),
                        Value::str(&endpoint(&c.daddr, c.dport)),
                        Value::str(state_name(c.state)),
                        Value::u64(now_ns.saturating_sub(c.first_ns)),
                        Value::str(if c.active() { "active" } else { "passive" }),
                    ]
                    .into()
                })
                .collect(),
        }
    }

    pub fn closed_table(&self) -> Table {
        Table {
            columns: with_lead_columns([
                col("tx", FieldKind::BYTES),
                col("rx", FieldKind::BYTES),
                col("lifetime", FieldKind::DURATION_NS),
                col("connect", FieldKind::DURATION_NS),
                col("end", FieldKind::STR),
            ]),
            rows: self
                .closed
                .iter()
                .rev()
                .map(|c| {
                    let k = &c.conn;
                    let mut row = lead(c.ts_ns, k.pid, &k.comm, (&k.saddr, k.sport), (&k.daddr, k.dport));
                    row.extend([
                        Value::u64(c.bytes_acked),
                        Value::u64(c.bytes_received),
                        c.lifetime_value(),
                        c.conn.connect_value(),
                        Value::str(end_name(c.end)),
                    ]);
                    row.into()
                })
                .collect(),
        }
    }

    pub fn transitions_table(&self) -> Table {
        Table {
            columns: with_lead_columns([
                col("old", FieldKind::STR),
                col("new", FieldKind::STR),
                col("in old", FieldKind::DURATION_NS),
            ]),
            rows: self
                .transitions
                .iter()
                .rev()
                .map(|t| {
                    let mut row = lead(t.ts_ns, t.pid, &t.comm, (&t.saddr, t.sport), (&t.daddr, t.dport));
                    row.extend([
                        Value::str(state_name(t.oldstate)),
                        Value::str(state_name(t.newstate)),
                        Value::u64(t.in_old_ns),
                    ]);
                    row.into()
                })
                .collect(),
        }
    }

    pub fn connect_latency(&self) -> Log2Histogram {
        let b: Vec<u64> = self
            .connect_hist
            .iter()
            .enumerate()
            .map(|(i, v)| v.saturating_sub(*self.connect_hist_base.get(i).unwrap_or(&0)))
            .collect();
        Log2Histogram { unit: "usecs".into(), buckets: b.into() }
    }

    pub fn summary(&self) -> Vec<Counter> {
        let c = |name: &str, value: u64| Counter { name: name.into(), value, unit: "".into() };
        let mut v = vec![
            c("live", self.live.len() as u64),
            c("closed", self.closed_total),
            c("evicted", self.inserted.saturating_sub(self.live.len() as u64 + self.closed_total)),
        ];
        v.extend(self.by_end.iter().map(|(k, n)| c(&format!("ended {k}"), *n)));
        v
    }

    pub fn panel(&self, id: &str, now_ns: u64) -> Result<Panel, String> {
        Ok(match id {
            "live" => Panel::Table(self.live_table(now_ns)),
            "closed" => Panel::Table(self.closed_table()),
            "transitions" => Panel::Table(self.transitions_table()),
            "connect_latency" => Panel::Log2Histogram(self.connect_latency()),
            "summary" => Panel::Counters(self.summary().into()),
            other => return Err(format!("tcp: no panel named {other:?}")),
        })
    }
}
