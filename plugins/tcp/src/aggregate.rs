//! What the tcp panels show: live connections (from the kernel's map), recent
//! closes and transitions (from the rings), the connect-latency histogram;
//! and the columns of the records themselves, declared once.

use crate::record::{end_name, state_name, Close, Conn, Transition};
use crate::types::{TCP_HIST_SLOTS, TCP_STAT_CONN_INSERTED};
use std::collections::{BTreeMap, VecDeque};
use tracer_plugin_api::{FieldKind, FieldValue, MapSnapshot, MetricKind, MetricSample, MetricSpec, Panel, PanelKind, Table, Value};
use tracer_plugin_kit::panels::{self, counters, def, PanelDef};
use tracer_plugin_kit::table::{coloured, column, extra, flex, key, table, Column};
use tracer_plugin_kit::{key_u32, metrics, per_cpu_values, sat_sum};

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
    /// Newest timestamp seen (monotonic ns), for connection ages.
    pub now_ns: u64,
    /// Since the plugin started, for the metrics (a reset clears the rest):
    /// closes by how they ended, and their bytes (sent, received).
    ended_since_start: BTreeMap<&'static str, u64>,
    bytes_since_start: [u64; 2],
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

/// A pid the kernel knew: 0 means no process was at hand (softirq context).
fn pid_value(pid: u32) -> FieldValue {
    if pid == 0 {
        Value::missing()
    } else {
        Value::u64(pid as u64)
    }
}

/// The two ends of a connection and who owns it.
pub struct EndsRef<'a> {
    pub pid: u32,
    pub comm: &'a str,
    pub family: u8,
    pub local: (&'a str, u16),
    pub remote: (&'a str, u16),
}

/// What transitions, closes and live connections all have: when, who, and
/// the two ends; the columns built on it are written once for all three.
pub trait Ends {
    fn ts(&self) -> u64;
    fn ends(&self) -> EndsRef<'_>;
}

impl Ends for Transition {
    fn ts(&self) -> u64 {
        self.ts_ns
    }
    fn ends(&self) -> EndsRef<'_> {
        EndsRef { pid: self.pid, comm: &self.comm, family: self.family, local: (&self.saddr, self.sport), remote: (&self.daddr, self.dport) }
    }
}

impl Ends for Conn {
    fn ts(&self) -> u64 {
        self.first_ns
    }
    fn ends(&self) -> EndsRef<'_> {
        EndsRef { pid: self.pid, comm: &self.comm, family: self.family, local: (&self.saddr, self.sport), remote: (&self.daddr, self.dport) }
    }
}

impl Ends for Close {
    fn ts(&self) -> u64 {
        self.ts_ns
    }
    fn ends(&self) -> EndsRef<'_> {
        self.conn.ends()
    }
}

/// A live connection and the newest time seen, for its age.
pub struct Live<'a>(&'a Conn, u64);

impl Ends for Live<'_> {
    fn ts(&self) -> u64 {
        self.0.first_ns
    }
    fn ends(&self) -> EndsRef<'_> {
        self.0.ends()
    }
}

/// The record fields both rings start with: each address and port apart.
fn record_lead<T: Ends>() -> Vec<Column<T>> {
    vec![
        extra(column("ts", FieldKind::MONO_TIME_NS, "ns", |r: &T| Value::u64(r.ts()))),
        key(column("pid", FieldKind::U64, "", |r: &T| pid_value(r.ends().pid))),
        key(column("comm", FieldKind::STR, "", |r: &T| Value::str(r.ends().comm))),
        extra(column("family", FieldKind::U64, "", |r: &T| Value::u64(r.ends().family as u64))),
        extra(column("laddr", FieldKind::STR, "", |r: &T| Value::str(r.ends().local.0))),
        extra(column("lport", FieldKind::U64, "", |r: &T| Value::u64(r.ends().local.1 as u64))),
        column("raddr", FieldKind::STR, "", |r: &T| Value::str(r.ends().remote.0)),
        column("rport", FieldKind::U64, "", |r: &T| Value::u64(r.ends().remote.1 as u64)),
    ]
}

/// The table columns after the time: who, and each end as `addr:port`.
fn table_lead<T: Ends>() -> Vec<Column<T>> {
    vec![
        key(column("pid", FieldKind::U64, "", |r: &T| pid_value(r.ends().pid))),
        key(column("comm", FieldKind::STR, "", |r: &T| Value::str(r.ends().comm))),
        column("local", FieldKind::STR, "", |r: &T| Value::str(&endpoint(r.ends().local.0, r.ends().local.1))),
        column("remote", FieldKind::STR, "", |r: &T| Value::str(&endpoint(r.ends().remote.0, r.ends().remote.1))),
    ]
}

/// `time` then [`table_lead`], then `rest`.
fn timed_table<T: Ends>(rest: impl IntoIterator<Item = Column<T>>) -> Vec<Column<T>> {
    let mut v = vec![column("time", FieldKind::MONO_TIME_NS, "ns", |r: &T| Value::u64(r.ts()))];
    v.extend(table_lead());
    v.extend(rest);
    v
}

fn dir(c: &Conn) -> FieldValue {
    Value::str(if c.active() { "active" } else { "passive" })
}

pub fn transition_columns() -> Vec<Column<Transition>> {
    let mut v = record_lead();
    v.extend([
        coloured(column("old", FieldKind::STR, "", |t: &Transition| Value::str(state_name(t.oldstate)))),
        coloured(column("new", FieldKind::STR, "", |t: &Transition| Value::str(state_name(t.newstate)))),
        extra(column("in_old", FieldKind::DURATION_NS, "ns", |t: &Transition| Value::u64(t.in_old_ns))),
    ]);
    v
}

pub fn close_columns() -> Vec<Column<Close>> {
    let mut v = record_lead();
    v.extend([
        column("dir", FieldKind::STR, "", |c: &Close| dir(&c.conn)),
        column("tx_bytes", FieldKind::BYTES, "bytes", |c: &Close| Value::u64(c.bytes_acked)),
        column("rx_bytes", FieldKind::BYTES, "bytes", |c: &Close| Value::u64(c.bytes_received)),
        column("lifetime", FieldKind::DURATION_NS, "ns", |c: &Close| c.lifetime_value()),
        column("connect", FieldKind::DURATION_NS, "ns", |c: &Close| c.conn.connect_value()),
        coloured(column("end", FieldKind::STR, "", |c: &Close| Value::str(end_name(c.end)))),
        flex(12, column("states", FieldKind::PHASES, "ns", |c: &Close| Value::phases(c.conn.state_times()))),
    ]);
    v
}

impl TcpStats {
    pub fn add_close(&mut self, c: Close) {
        self.now_ns = self.now_ns.max(c.ts_ns);
        self.closed_total += 1;
        *self.by_end.entry(end_name(c.end)).or_default() += 1;
        *self.ended_since_start.entry(end_name(c.end)).or_default() += 1;
        self.bytes_since_start[0] = self.bytes_since_start[0].saturating_add(c.bytes_acked);
        self.bytes_since_start[1] = self.bytes_since_start[1].saturating_add(c.bytes_received);
        push(&mut self.closed, c);
    }

    pub fn add_transition(&mut self, t: Transition) {
        self.now_ns = self.now_ns.max(t.ts_ns);
        push(&mut self.transitions, t);
    }

    pub fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        match snap.name.as_str() {
            "tcp_conns" => {
                self.live = snap.entries.iter().filter_map(|e| Conn::decode(&e.value).ok()).collect();
                if let Some(newest) = self.live.iter().map(|c| c.last_ns).max() {
                    self.now_ns = self.now_ns.max(newest);
                }
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

    pub fn live_table(&self) -> Table {
        let mut v: Vec<Live> = self.live.iter().map(|c| Live(c, self.now_ns)).collect();
        v.sort_by_key(|c| c.0.first_ns);
        let mut cols = table_lead();
        cols.extend([
            coloured(column("state", FieldKind::STR, "", |r: &Live| Value::str(state_name(r.0.state)))),
            column("age", FieldKind::DURATION_NS, "ns", |r: &Live| Value::u64(r.1.saturating_sub(r.0.first_ns))),
            column("dir", FieldKind::STR, "", |r: &Live| dir(r.0)),
        ]);
        table(&cols, v.iter().take(TOP_ROWS))
    }

    pub fn closed_table(&self) -> Table {
        let cols = timed_table([
            column("tx", FieldKind::BYTES, "bytes", |c: &Close| Value::u64(c.bytes_acked)),
            column("rx", FieldKind::BYTES, "bytes", |c: &Close| Value::u64(c.bytes_received)),
            column("lifetime", FieldKind::DURATION_NS, "ns", |c: &Close| c.lifetime_value()),
            column("connect", FieldKind::DURATION_NS, "ns", |c: &Close| c.conn.connect_value()),
            coloured(column("end", FieldKind::STR, "", |c: &Close| Value::str(end_name(c.end)))),
        ]);
        table(&cols, self.closed.iter().rev())
    }

    pub fn transitions_table(&self) -> Table {
        let cols = timed_table([
            coloured(column("old", FieldKind::STR, "", |t: &Transition| Value::str(state_name(t.oldstate)))),
            coloured(column("new", FieldKind::STR, "", |t: &Transition| Value::str(state_name(t.newstate)))),
            extra(column("in old", FieldKind::DURATION_NS, "ns", |t: &Transition| Value::u64(t.in_old_ns))),
        ]);
        table(&cols, self.transitions.iter().rev())
    }

    pub fn connect_latency(&self) -> Vec<u64> {
        self.connect_hist.iter().enumerate().map(|(i, v)| v.saturating_sub(*self.connect_hist_base.get(i).unwrap_or(&0))).collect()
    }

    pub fn summary(&self) -> Panel {
        let mut v = vec![
            ("live".to_string(), self.live.len() as u64),
            ("closed".to_string(), self.closed_total),
            ("evicted".to_string(), self.inserted.saturating_sub(self.live.len() as u64 + self.closed_total)),
        ];
        v.extend(self.by_end.iter().map(|(k, n)| (format!("ended {k}"), *n)));
        counters(&v.iter().map(|(k, n)| (k.as_str(), *n, "")).collect::<Vec<_>>())
    }

    /// Since the plugin started: closes by end and their bytes, the
    /// kernel's connect histogram, live connections by state.
    pub fn metrics(&self) -> Vec<MetricSample> {
        let mut v: Vec<MetricSample> = self.ended_since_start.iter().map(|(end, n)| metrics::counter("connections_closed_total", &[end], *n)).collect();
        v.push(metrics::counter("closed_connection_bytes_total", &["sent"], self.bytes_since_start[0]));
        v.push(metrics::counter("closed_connection_bytes_total", &["received"], self.bytes_since_start[1]));
        v.push(metrics::log2_histogram("connect_latency_seconds", &[], &self.connect_hist, "usecs", None));
        let mut by_state: BTreeMap<&str, u64> = BTreeMap::new();
        for c in &self.live {
            *by_state.entry(state_name(c.state)).or_default() += 1;
        }
        v.extend(by_state.iter().map(|(s, n)| metrics::gauge("live_connections", &[s], *n as f64)));
        v
    }
}

pub fn metric_specs() -> Vec<MetricSpec> {
    vec![
        MetricSpec::new("connections_closed_total", MetricKind::COUNTER, "1", "closed connections by how they ended (fin, rst_received, rst_sent, refused, timeout, abort)", &["end"]),
        MetricSpec::new("closed_connection_bytes_total", MetricKind::COUNTER, "bytes", "bytes acknowledged (sent) and received by connections, counted when they close", &["direction"]),
        MetricSpec::new("connect_latency_seconds", MetricKind::LOG2_HISTOGRAM, "seconds", "time from SYN sent to ESTABLISHED (tcpconnlat)", &[]),
        MetricSpec::new("live_connections", MetricKind::GAUGE, "1", "connections in the kernel's connection map, by state", &["state"]),
    ]
}

pub const PANELS: &[PanelDef<TcpStats>] = &[
    def("live", "Live connections", PanelKind::TABLE, |s| Panel::Table(s.live_table())),
    def("closed", "Closed connections", PanelKind::TABLE, |s| Panel::Table(s.closed_table())),
    def("transitions", "State transitions", PanelKind::TABLE, |s| Panel::Table(s.transitions_table())),
    def("connect_latency", "Connect latency", PanelKind::LOG2_HISTOGRAM, |s| panels::histogram("usecs", s.connect_latency())),
    def("summary", "TCP totals", PanelKind::COUNTERS, |s| s.summary()),
];
