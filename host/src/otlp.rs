//! `--otlp-endpoint`: the metrics of a scrape pushed to an OpenTelemetry
//! receiver every interval, as OTLP/HTTP with the JSON encoding
//! (`POST <endpoint>/v1/metrics`, `application/json`), which every OTLP
//! receiver accepts.
//!
//! The event loop only encodes a batch and hands it over (never waiting): a
//! thread of its own sends the batches in the order they were made. When the
//! receiver is away or slow, batches wait in a bounded queue and are retried
//! with exponential backoff; when the queue is full the oldest is given up.
//! Every batch is counted as sent or dropped, and attempts that failed are
//! counted too: in `tracer_otlp_*` metrics, on stderr when sending stops and
//! starts again, and in the final report. Values are cumulative since the
//! host started, so a dropped batch loses no count, only a point in time.
//!
//! The HTTP client is a few lines over std: one POST per connection, the
//! status line read with httparse. Only `http://` is spoken: TLS and
//! authentication belong to a local collector (rotel, otelcol) that forwards.

use crate::exposition::{Exposition, Family, Value};
use prometheus_client::metrics::MetricType;
use serde_json::{json, Value as Json};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// What the push has done so far (shared with the exposition and the report).
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Batches made by the event loop.
    pub made: u64,
    pub sent: u64,
    /// Given up: pushed out of a full queue, or refused by the receiver.
    pub dropped: u64,
    /// Attempts that failed (and were retried).
    pub failures: u64,
    pub queued: usize,
    pub last_error: Option<String>,
    /// The last attempt failed and the thread is backing off.
    pub failing: bool,
}

impl Status {
    /// For the UI's status line: what was sent and lost, and whether the
    /// receiver is away now (then true: shown as a problem).
    pub fn summary(&self) -> (String, bool) {
        let mut s = format!("otlp sent {}", self.sent);
        if self.dropped > 0 {
            s.push_str(&format!(" dropped {}", self.dropped));
        }
        if self.failing {
            s.push_str(&format!(" retrying, {} queued", self.queued));
            if let Some(e) = &self.last_error {
                s.push_str(&format!(" ({e})"));
            }
        }
        (s, self.failing || self.dropped > 0)
    }
}

/// Where and how often (config `[otlp]`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoint: String,
    pub interval: Duration,
    pub queue: usize,
    pub timeout: Duration,
    pub service_name: String,
}

/// The receiver's address, split once.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    host: String,
    port: u16,
    path: String,
}

/// `http://HOST:PORT[/PREFIX]`: the metrics go to PREFIX/v1/metrics (or to
/// the path as given when it already ends so).
fn parse_endpoint(url: &str) -> Result<Target, String> {
    let bad = |why: &str| format!("--otlp-endpoint {url}: {why}");
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some(("https", _)) => return Err(bad("https is not spoken here: send to a local collector over http:// and let it forward with TLS")),
        _ => return Err(bad("give http://HOST:PORT (the OTLP/HTTP port is usually 4318)")),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => (h, p.parse::<u16>().map_err(|_| bad("the port is not a number from 1 to 65535"))?),
        _ => return Err(bad("no port: give http://HOST:PORT")),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let path = path.trim_end_matches('/');
    let path = if path.ends_with("/v1/metrics") { path.to_string() } else { format!("{path}/v1/metrics") };
    Ok(Target { host, port, path })
}

fn unix_ns(t: SystemTime) -> String {
    // OTLP/JSON writes 64-bit integers as strings.
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos().to_string()
}

fn attr(k: &str, v: &str) -> Json {
    json!({"key": k, "value": {"stringValue": v}})
}

/// The labels as attributes, without `node`: that is the resource's host.name.
fn attrs(labels: &[(String, String)]) -> Vec<Json> {
    labels.iter().filter(|(k, _)| k != "node").map(|(k, v)| attr(k, v)).collect()
}

/// OTLP's kinds of metric data, each written as the field of its name
/// (`{"sum": {...}}`).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
enum Data {
    Sum(Json),
    Gauge(Json),
    Histogram(Json),
}

/// One metric family as an OTLP metric: counters as monotonic cumulative
/// sums, gauges as gauges, histograms with explicit bounds (the log2 edges in
/// the base unit) and per-bucket counts, info as a gauge of 1.
fn metric_json(f: &Family, start: &str, now: &str) -> Json {
    let point = |labels: &[(String, String)], v: f64| json!({"attributes": attrs(labels), "startTimeUnixNano": start, "timeUnixNano": now, "asDouble": v});
    let body = match f.kind {
        MetricType::Counter => {
            let points: Vec<Json> = f.samples.iter().filter_map(|(l, v)| if let Value::Counter(x) = v { Some(point(l, *x)) } else { None }).collect();
            Data::Sum(json!({"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": points}))
        }
        MetricType::Histogram => {
            let points: Vec<Json> = f
                .samples
                .iter()
                .filter_map(|(l, v)| {
                    let Value::Histogram(sum, count, buckets) = v else { return None };
                    // The last bucket is +Inf: its edge is implicit in OTLP.
                    let finite = &buckets[..buckets.len().saturating_sub(1)];
                    // Counts as JSON numbers: proto3's JSON mapping lets
                    // parsers take numbers or strings for 64-bit fields, and
                    // some (rotel's) take only numbers. Exact below 2^53.
                    let mut counts: Vec<u64> = finite.iter().map(|b| b.1).collect();
                    counts.push(buckets.last().map(|b| b.1).unwrap_or(0));
                    let mut p = json!({
                        "attributes": attrs(l),
                        "startTimeUnixNano": start,
                        "timeUnixNano": now,
                        "count": count,
                        "explicitBounds": finite.iter().map(|b| b.0).collect::<Vec<f64>>(),
                        "bucketCounts": counts,
                    });
                    if sum.is_finite() {
                        p["sum"] = json!(sum);
                    }
                    Some(p)
                })
                .collect();
            Data::Histogram(json!({"aggregationTemporality": 2, "dataPoints": points}))
        }
        _ => {
            let points: Vec<Json> = f
                .samples
                .iter()
                .map(|(l, v)| match v {
                    Value::Gauge(x) | Value::Counter(x) => point(l, *x),
                    _ => point(l, 1.0),
                })
                .collect();
            Data::Gauge(json!({"dataPoints": points}))
        }
    };
    // The exposition's names lack the suffixes its encoder adds; an info
    // metric keeps its `_info` here (counters stay without `_total`, as OTLP
    // names them).
    let name = if matches!(f.kind, MetricType::Info) { format!("{}_info", f.name) } else { f.name.clone() };
    let mut m = json!({"name": name, "description": f.help});
    if let (Json::Object(m), Ok(Json::Object(b))) = (&mut m, serde_json::to_value(body)) {
        m.extend(b);
    }
    m
}

/// A batch: every family as one OTLP ExportMetricsServiceRequest.
pub fn encode(families: &[Family], x: &Exposition, service_name: &str, started: SystemTime) -> Vec<u8> {
    let (start, now) = (unix_ns(started), unix_ns(SystemTime::now()));
    let id = &x.identity;
    let mut resource = vec![
        attr("service.name", service_name),
        attr("service.version", &id.version),
        attr("host.name", &id.node),
        attr("os.type", "linux"),
        attr("os.version", &id.kernel),
    ];
    // Set from the downward API in a DaemonSet (deploy/daemonset.yaml).
    if let Ok(n) = std::env::var("NODE_NAME") {
        if !n.is_empty() {
            resource.push(attr("k8s.node.name", &n));
        }
    }
    let metrics: Vec<Json> = families.iter().filter(|f| !f.samples.is_empty()).map(|f| metric_json(f, &start, &now)).collect();
    let doc = json!({"resourceMetrics": [{
        "resource": {"attributes": resource},
        "scopeMetrics": [{"scope": {"name": "tracer-host", "version": id.version}, "metrics": metrics}],
    }]});
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// What one attempt came to.
enum Sent {
    Ok,
    /// Worth trying again later (no connection, timeout, 429, 502-504).
    Retry(String),
    /// The receiver refused the batch for good (other 4xx/5xx).
    Refused(String),
}

fn post(t: &Target, body: &[u8], timeout: Duration) -> Sent {
    let addr = match (t.host.as_str(), t.port).to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) => return Sent::Retry(format!("{} has no address", t.host)),
        Err(e) => return Sent::Retry(format!("resolving {}: {e}", t.host)),
    };
    let mut s = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) => return Sent::Retry(format!("connecting to {addr}: {e}")),
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: tracer-host/{}\r\n\r\n",
        t.path,
        t.host,
        t.port,
        body.len(),
        env!("CARGO_PKG_VERSION")
    );
    if let Err(e) = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)) {
        return Sent::Retry(format!("sending to {addr}: {e}"));
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e) => return Sent::Retry(format!("reading the answer of {addr}: {e}")),
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut headers);
        match r.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let code = r.code.unwrap_or(0);
                return match code {
                    200..=299 => Sent::Ok,
                    429 | 502 | 503 | 504 => Sent::Retry(format!("{addr} answered {code}")),
                    _ => Sent::Refused(format!("{addr} answered {code} {}", r.reason.unwrap_or(""))),
                };
            }
            Ok(httparse::Status::Partial) if n == 0 || buf.len() > 64 * 1024 => return Sent::Retry(format!("{addr} closed without an HTTP answer")),
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Sent::Retry(format!("{addr} answered no HTTP: {e}")),
        }
    }
}

/// The sending thread and its queue.
pub struct Push {
    tx: Option<SyncSender<Vec<u8>>>,
    pub status: Arc<Mutex<Status>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub settings: Settings,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Push {
    pub fn start(settings: Settings) -> Result<Push, String> {
        let target = parse_endpoint(&settings.endpoint)?;
        let status = Arc::new(Mutex::new(Status::default()));
        // Room for a few batches while the thread is in one attempt; the
        // queue proper is the thread's.
        let (tx, rx) = sync_channel::<Vec<u8>>(4);
        let st = status.clone();
        let (queue, timeout, url) = (settings.queue.max(1), settings.timeout, settings.endpoint.clone());
        let thread = std::thread::Builder::new()
            .name("otlp-push".into())
            .spawn(move || send_loop(rx, st, target, queue, timeout, url))
            .map_err(|e| format!("starting the OTLP thread: {e}"))?;
        Ok(Push { tx: Some(tx), status, thread: Some(thread), settings })
    }

    /// Hand a batch over; never waits. A batch the thread cannot take now
    /// (it is inside an attempt and its hand-over slots are full) is dropped
    /// and counted.
    pub fn offer(&self, batch: Vec<u8>) {
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        st.made += 1;
        if let Some(tx) = &self.tx {
            if let Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) = tx.try_send(batch) {
                st.dropped += 1;
            }
        }
    }

    /// At exit (after everything is detached): what is queued is sent while
    /// the receiver takes it, one attempt each; the rest is counted dropped.
    /// Returns the line for the final report.
    pub fn finish(mut self) -> String {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let st = self.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut line = format!("OTLP: {} batches made, {} sent, {} dropped, {} failed attempts", st.made, st.sent, st.dropped, st.failures);
        if let (Some(e), true) = (&st.last_error, st.dropped > 0 || st.failures > 0) {
            line.push_str(&format!(" (last error: {e})"));
        }
        line
    }
}

fn send_loop(rx: Receiver<Vec<u8>>, st: Arc<Mutex<Status>>, target: Target, cap: usize, timeout: Duration, url: String) {
    let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
    let mut next_try = Instant::now();
    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    let mut closing = false;
    let lock = || st.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        // Take what was handed over; wait for it while there is nothing to do.
        let wait = if closing {
            Duration::ZERO
        } else if queue.is_empty() {
            Duration::from_secs(3600)
        } else {
            next_try.saturating_duration_since(Instant::now())
        };
        match rx.recv_timeout(wait) {
            Ok(b) => queue.push_back(b),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => closing = true,
        }
        while let Ok(b) = rx.try_recv() {
            queue.push_back(b);
        }
        // Full: the oldest goes (the newest carries the same totals, later).
        while queue.len() > cap {
            queue.pop_front();
            lock().dropped += 1;
        }
        lock().queued = queue.len();
        if queue.is_empty() {
            if closing {
                return;
            }
            continue;
        }
        if !closing && Instant::now() < next_try {
            continue;
        }
        match post(&target, &queue[0], timeout) {
            Sent::Ok => {
                queue.pop_front();
                let mut s = lock();
                s.sent += 1;
                s.queued = queue.len();
                backoff = Duration::from_secs(1);
                s.failing = false;
                if failing {
                    failing = false;
                    tracing::warn!("OTLP: {url} takes batches again ({} dropped so far, {} queued)", s.dropped, queue.len());
                }
            }
            Sent::Refused(e) => {
                queue.pop_front();
                let mut s = lock();
                s.dropped += 1;
                s.queued = queue.len();
                tracing::warn!("OTLP: {url} refused a batch: {e}; it is dropped");
                s.last_error = Some(e);
            }
            Sent::Retry(e) => {
                let mut s = lock();
                s.failures += 1;
                s.failing = true;
                if !failing {
                    failing = true;
                    tracing::warn!("OTLP: cannot send to {url}: {e}; retrying with backoff, batches queue up (at most {cap})");
                }
                s.last_error = Some(e);
                if closing {
                    // At exit: no waiting for a receiver that is away.
                    s.dropped += queue.len() as u64;
                    s.queued = 0;
                    return;
                }
                next_try = Instant::now() + backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_read_or_named_with_what_to_give() {
        assert_eq!(parse_endpoint("http://127.0.0.1:4318").unwrap(), Target { host: "127.0.0.1".into(), port: 4318, path: "/v1/metrics".into() });
        assert_eq!(parse_endpoint("http://c:4318/otlp/").unwrap().path, "/otlp/v1/metrics");
        assert_eq!(parse_endpoint("http://c:4318/v1/metrics").unwrap().path, "/v1/metrics");
        assert_eq!(parse_endpoint("http://[::1]:4318").unwrap().host, "::1");
        assert!(parse_endpoint("https://c:4318").unwrap_err().contains("local collector"));
        assert!(parse_endpoint("c:4318").unwrap_err().starts_with("--otlp-endpoint c:4318: give http://"));
        assert!(parse_endpoint("http://c").unwrap_err().contains("no port"));
        assert!(parse_endpoint("http://c:99999").unwrap_err().contains("port"));
    }

    #[test]
    fn the_status_line_says_what_was_lost_and_whether_the_receiver_is_away() {
        let mut st = Status { made: 5, sent: 5, ..Default::default() };
        assert_eq!(st.summary(), ("otlp sent 5".to_string(), false));
        st.dropped = 2;
        st.failing = true;
        st.queued = 3;
        st.last_error = Some("connect 127.0.0.1:4318: refused".into());
        assert_eq!(st.summary(), ("otlp sent 5 dropped 2 retrying, 3 queued (connect 127.0.0.1:4318: refused)".to_string(), true));
    }

    #[test]
    fn families_become_otlp_metrics() {
        let node = ("node".to_string(), "n1".to_string());
        let fams = vec![
            Family { name: "tracer_open_opens".into(), help: "opens".into(), kind: MetricType::Counter, samples: vec![(vec![("result".into(), "ok".into()), node.clone()], Value::Counter(5.0))] },
            Family {
                name: "tracer_x_seconds".into(),
                help: "h".into(),
                kind: MetricType::Histogram,
                samples: vec![(vec![node.clone()], Value::Histogram(f64::NAN, 3, vec![(1e-6, 1), (3e-6, 2), (f64::MAX, 0)]))],
            },
        ];
        let c = metric_json(&fams[0], "1", "2");
        assert_eq!(c["sum"]["isMonotonic"], true);
        assert_eq!(c["sum"]["aggregationTemporality"], 2, "cumulative");
        assert_eq!(c["sum"]["dataPoints"][0]["asDouble"], 5.0);
        assert_eq!(c["sum"]["dataPoints"][0]["attributes"], json!([{"key": "result", "value": {"stringValue": "ok"}}]), "node is the resource's");
        let h = metric_json(&fams[1], "1", "2");
        let p = &h["histogram"]["dataPoints"][0];
        assert_eq!(p["explicitBounds"], json!([1e-6, 3e-6]));
        assert_eq!(p["bucketCounts"], json!([1, 2, 0]), "one more count than bounds: +Inf");
        assert_eq!(p["count"], 3);
        assert!(p.get("sum").is_none(), "an unknown sum is left out, not NaN");
    }
}
