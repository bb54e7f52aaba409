//! Exchanges summed per route (method and path template), per process, and
//! kept as the most recent and the slowest; panels and metrics from them.

use crate::conn::Exchange;
use crate::FastMap;
use tracer_plugin_api::{FieldKind, FieldValue, Log2Histogram, MetricSample, Table, Value};
use tracer_plugin_kit::metrics;
use tracer_plugin_kit::table::{column, extra, flex, key, sum, table, Column, Recent};

/// Latency histograms: log2 µs slots.
pub const SLOTS: usize = 32;
const SLOWEST: usize = 50;
const TOP_ROWS: usize = 200;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub count: u64,
    /// Per status class: 1xx .. 5xx (index 1..=5; 0: other).
    pub classes: [u64; 6],
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub latency_ns: u64,
    pub hist: Vec<u64>,
}

impl Totals {
    fn add(&mut self, x: &Exchange) {
        if self.hist.is_empty() {
            self.hist = vec![0; SLOTS];
        }
        self.count += 1;
        self.classes[class(x.status)] += 1;
        self.request_bytes += x.request_bytes;
        self.response_bytes += x.response_bytes;
        self.latency_ns += x.latency_ns;
        self.hist[slot(x.latency_ns / 1000)] += 1;
    }

    pub fn errors(&self) -> u64 {
        self.classes[4] + self.classes[5]
    }

    fn quantile(&self, q: f64) -> FieldValue {
        Log2Histogram::quantile_upper(&self.hist, q).map(|us| Value::u64(us.saturating_mul(1000))).unwrap_or_else(Value::missing)
    }
}

fn slot(us: u64) -> usize {
    ((u64::BITS - us.leading_zeros()) as usize).min(SLOTS - 1)
}

fn class(status: u16) -> usize {
    match status / 100 {
        c @ 1..=5 => c as usize,
        _ => 0,
    }
}

pub const CLASS_NAMES: [&str; 6] = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// A path as a route: the query left out, segments that are ids (numbers,
/// UUIDs, long hex or mixed tokens) as `{id}`, at most 8 segments.
pub fn template(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    // An absolute-form target (a proxy's): its path.
    let path = match path.find("://") {
        Some(i) => path[i + 3..].find('/').map(|j| &path[i + 3 + j..]).unwrap_or("/"),
        None => path,
    };
    let mut out = String::new();
    for (i, seg) in path.split('/').skip(1).enumerate() {
        if i == 8 {
            out.push_str("/…");
            break;
        }
        out.push('/');
        out.push_str(if is_id(seg) { "{id}" } else { seg });
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn is_id(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let hex = b.iter().all(|c| c.is_ascii_hexdigit());
    let uuid = b.len() == 36 && b.iter().enumerate().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() });
    digits == b.len() || uuid || (hex && b.len() >= 16) || (b.len() >= 20 && digits > 0 && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_'))
}

#[derive(Debug, Clone, Default)]
pub struct HttpStats {
    pub max_routes: usize,
    /// 100 / sample_percent: counts shown and exported are multiplied by
    /// it (latencies are not: a sample's quantiles estimate the whole's).
    pub scale: f64,
    routes: FastMap<(String, String), Totals>,
    /// Exchanges of routes past max_routes.
    other: Totals,
    procs: FastMap<(u32, String), Totals>,
    recent: Recent<Exchange>,
    slowest: Vec<Exchange>,
    pub total: Totals,
    /// Since start, for metrics (a reset clears panels only).
    lifetime: FastMap<(String, String, usize), u64>,
    lifetime_hist: Vec<u64>,
    lifetime_sum_ns: u64,
}

impl HttpStats {
    pub fn new(max_routes: usize) -> HttpStats {
        HttpStats { max_routes, scale: 1.0, recent: Recent::new(200), ..Default::default() }
    }

    pub fn add(&mut self, x: &Exchange) {
        let route = (x.method.clone(), template(&x.path));
        let routed = if let Some(t) = self.routes.get_mut(&route) {
            t.add(x);
            route
        } else if self.routes.len() < self.max_routes {
            self.routes.entry(route.clone()).or_default().add(x);
            route
        } else {
            self.other.add(x);
            ("other".to_string(), "other".to_string())
        };
        self.procs.entry((x.tgid, x.comm.clone())).or_default().add(x);
        self.total.add(x);
        self.recent.push(x.clone());
        if self.slowest.len() < SLOWEST || self.slowest.last().is_some_and(|s| s.latency_ns < x.latency_ns) {
            let at = self.slowest.partition_point(|s| s.latency_ns >= x.latency_ns);
            self.slowest.insert(at, x.clone());
            self.slowest.truncate(SLOWEST);
        }
        // Metrics: routes under the same cap (their label values are the
        // templates, bounded by it), methods outside the standard ones as
        // OTHER (a method is any token a client sends).
        let method = if crate::stream::METHODS.contains(&routed.0.as_str()) || routed.0 == "other" { routed.0 } else { "OTHER".to_string() };
        *self.lifetime.entry((method, routed.1, class(x.status))).or_default() += 1;
        if self.lifetime_hist.is_empty() {
            self.lifetime_hist = vec![0; SLOTS];
        }
        self.lifetime_hist[slot(x.latency_ns / 1000)] += 1;
        self.lifetime_sum_ns += x.latency_ns;
    }

    /// A count as it stands for every connection (sampling scaled back).
    pub fn scaled(&self, n: u64) -> u64 {
        (n as f64 * self.scale).round() as u64
    }

    pub fn reset(&mut self) {
        self.routes.clear();
        self.other = Totals::default();
        self.procs.clear();
        self.recent.clear();
        self.slowest.clear();
        self.total = Totals::default();
    }

    pub fn recent(&self) -> Table {
        table(&exchange_columns(), self.recent.newest())
    }

    pub fn slowest(&self) -> Table {
        table(&exchange_columns(), self.slowest.iter())
    }

    pub fn routes(&self) -> Table {
        // Counts scaled back up where sampled (the columns are plain fns:
        // the rows carry scaled copies).
        let scaled: Vec<((String, String), Totals)> = self
            .routes
            .iter()
            .map(|(k, t)| (k.clone(), t))
            .chain((self.other.count > 0).then(|| (("other".to_string(), "other".to_string()), &self.other)))
            .map(|(k, t)| (k, self.scaled_totals(t)))
            .collect();
        let mut rows: Vec<(String, String, &Totals)> = scaled.iter().map(|((m, r), t)| (m.clone(), r.clone(), t)).collect();
        rows.sort_by(|a, b| b.2.count.cmp(&a.2.count).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
        rows.truncate(TOP_ROWS);
        let cols: Vec<Column<(String, String, &Totals)>> = vec![
            key(column("method", FieldKind::STR, "", |r| Value::str(&r.0))),
            flex(20, key(column("route", FieldKind::STR, "", |r| Value::str(&r.1)))),
            sum(column("requests", FieldKind::U64, "", |r| Value::u64(r.2.count))),
            sum(column("errors", FieldKind::U64, "", |r| Value::u64(r.2.errors()))),
            extra(sum(column("2xx", FieldKind::U64, "", |r| Value::u64(r.2.classes[2])))),
            extra(sum(column("3xx", FieldKind::U64, "", |r| Value::u64(r.2.classes[3])))),
            extra(sum(column("4xx", FieldKind::U64, "", |r| Value::u64(r.2.classes[4])))),
            extra(sum(column("5xx", FieldKind::U64, "", |r| Value::u64(r.2.classes[5])))),
            column("p50", FieldKind::DURATION_NS, "ns", |r| r.2.quantile(0.5)),
            column("p90", FieldKind::DURATION_NS, "ns", |r| r.2.quantile(0.9)),
            column("p99", FieldKind::DURATION_NS, "ns", |r| r.2.quantile(0.99)),
            extra(sum(column("response bytes", FieldKind::BYTES, "bytes", |r| Value::u64(r.2.response_bytes)))),
        ];
        table(&cols, rows.iter())
    }

    fn scaled_totals(&self, t: &Totals) -> Totals {
        if self.scale == 1.0 {
            return t.clone();
        }
        let mut t = t.clone();
        t.count = self.scaled(t.count);
        t.classes = t.classes.map(|c| self.scaled(c));
        t.request_bytes = self.scaled(t.request_bytes);
        t.response_bytes = self.scaled(t.response_bytes);
        // The sum too, so an average stays an average.
        t.latency_ns = self.scaled(t.latency_ns);
        t
    }

    pub fn processes(&self) -> Table {
        let scaled: Vec<((u32, String), Totals)> = self.procs.iter().map(|(k, t)| (k.clone(), self.scaled_totals(t))).collect();
        let mut rows: Vec<(&(u32, String), &Totals)> = scaled.iter().map(|(k, t)| (k, t)).collect();
        rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        rows.truncate(TOP_ROWS);
        let cols: Vec<Column<(&(u32, String), &Totals)>> = vec![
            key(column("pid", FieldKind::U64, "", |r| Value::u64(r.0 .0 as u64))),
            key(column("comm", FieldKind::STR, "", |r| Value::str(&r.0 .1))),
            sum(column("requests", FieldKind::U64, "", |r| Value::u64(r.1.count))),
            sum(column("errors", FieldKind::U64, "", |r| Value::u64(r.1.errors()))),
            column("avg", FieldKind::DURATION_NS, "ns", |r| if r.1.count == 0 { Value::missing() } else { Value::u64(r.1.latency_ns / r.1.count) }),
            column("p99", FieldKind::DURATION_NS, "ns", |r| r.1.quantile(0.99)),
            extra(sum(column("request bytes", FieldKind::BYTES, "bytes", |r| Value::u64(r.1.request_bytes)))),
            extra(sum(column("response bytes", FieldKind::BYTES, "bytes", |r| Value::u64(r.1.response_bytes)))),
        ];
        table(&cols, rows.iter())
    }

    pub fn metrics(&self, out: &mut Vec<MetricSample>) {
        for ((method, route, c), n) in &self.lifetime {
            out.push(metrics::counter_f("requests_total", &[method, route, CLASS_NAMES[*c]], *n as f64 * self.scale));
        }
        if !self.lifetime_hist.is_empty() {
            out.push(metrics::log2_histogram("request_seconds", &[], &self.lifetime_hist, "usecs", Some(self.lifetime_sum_ns as f64 / 1e9)));
        }
    }
}

/// The columns of an exchange: the records streamed and the request tables.
pub fn exchange_columns() -> Vec<Column<Exchange>> {
    vec![
        column("ts", FieldKind::MONO_TIME_NS, "ns", |x| Value::u64(x.start_ns)),
        key(column("pid", FieldKind::U64, "", |x| Value::u64(x.tgid as u64))),
        key(column("comm", FieldKind::STR, "", |x| Value::str(&x.comm))),
        extra(column("side", FieldKind::STR, "", |x| Value::str(if x.server { "server" } else { "client" }))),
        column("method", FieldKind::STR, "", |x| Value::str(&x.method)),
        flex(24, column("path", FieldKind::STR, "", |x| Value::str(&x.path))),
        extra(column("host", FieldKind::STR, "", |x| if x.host.is_empty() { Value::missing() } else { Value::str(&x.host) })),
        column("status", FieldKind::U64, "", |x| Value::u64(x.status as u64)),
        column("latency", FieldKind::DURATION_NS, "ns", |x| Value::u64(x.latency_ns)),
        extra(column("request_bytes", FieldKind::BYTES, "bytes", |x| Value::u64(x.request_bytes))),
        column("response_bytes", FieldKind::BYTES, "bytes", |x| Value::u64(x.response_bytes)),
        extra(column("protocol", FieldKind::STR, "", |x| Value::str(x.protocol))),
        extra(column("tls", FieldKind::STR, "", |x| Value::str(if x.tls { "yes" } else { "no" }))),
        extra(column("local", FieldKind::STR, "", |x| x.local.map(|a| Value::str(&addr_text(&a))).unwrap_or_else(Value::missing))),
        extra(column("remote", FieldKind::STR, "", |x| x.remote.map(|a| Value::str(&addr_text(&a))).unwrap_or_else(Value::missing))),
    ]
}

/// `ip:port` exactly as SocketAddr's Display writes it (the tcp tracer's
/// text, which the two tracers' link rests on), without the formatting
/// machinery for IPv4: two per exchange took 6 % of the host's CPU under
/// wrk (perf). IPv6 goes through Display.
pub fn addr_text(a: &std::net::SocketAddr) -> String {
    let std::net::SocketAddr::V4(v4) = a else { return a.to_string() };
    let mut s = String::with_capacity(21);
    let mut digits = itoa::Buffer::new();
    for (i, o) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(digits.format(o));
    }
    s.push(':');
    s.push_str(digits.format(v4.port()));
    s
}
