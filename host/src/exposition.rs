//! The metrics of every running plugin, as the OpenMetrics text Prometheus
//! scrapes. Read when a scrape comes: each plugin's `metrics()` gives its
//! samples as of the last map read (at most one refresh old); the host adds
//! nothing up itself. Encoded by `prometheus-client`.
//!
//! Names: `tracer_<plugin>_<metric>` as the plugin declares it (snake_case,
//! ending in its unit). Every series carries `node`. log2 histograms become
//! Prometheus histograms in the base unit (seconds, bytes) with cumulative
//! `le` buckets at each log2 bucket's upper edge.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tracer_core::session::{Session, SlotState};
use tracer_plugin_api::{MetricKind, MetricSample, MetricSpec};

pub(crate) type Labels = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Counter(f64),
    Gauge(f64),
    /// sum (base unit), count, per-bucket (upper edge in the base unit, count).
    Histogram(f64, u64, Vec<(f64, u64)>),
    Info,
}

#[derive(Debug, Clone)]
pub(crate) struct Family {
    /// Without `_total` for counters and `_info` for info metrics: the
    /// encoder adds those.
    pub name: String,
    pub help: String,
    pub kind: MetricType,
    pub samples: Vec<(Labels, Value)>,
}

/// The host's own series: (name as exported, type, labels, help). One table
/// for the exposition and for `--list-metrics`.
pub const HOST_METRICS: &[(&str, &str, &str, &str)] = &[
    ("tracer_build_info", "info", "version, kernel", "tracer-host's version and the kernel it runs on"),
    ("tracer_plugin_up", "gauge", "plugin", "1 while the plugin runs"),
    ("tracer_plugin_records_total", "counter", "plugin", "records the plugin's ring buffers delivered"),
    ("tracer_plugin_events_lost_total", "counter", "plugin", "events the plugin's kernel side dropped (full ring buffer or map)"),
    ("tracer_plugin_metrics_failed", "gauge", "plugin", "1 when the plugin could not give its metrics (only then)"),
    ("tracer_plugin_bpf_seconds_total", "counter", "plugin", "time the plugin's BPF programs ran (with metrics.bpf_cost)"),
    ("tracer_plugin_bpf_runs_total", "counter", "plugin", "runs of the plugin's BPF programs (with metrics.bpf_cost): seconds / runs is its cost per event"),
    ("tracer_otlp_batches_sent_total", "counter", "", "metric batches the OTLP receiver accepted (with --otlp-endpoint)"),
    ("tracer_otlp_batches_dropped_total", "counter", "", "metric batches given up: the queue was full while the receiver was away, or it refused them"),
    ("tracer_otlp_send_failures_total", "counter", "", "attempts to send a batch that failed (each is retried with backoff)"),
    ("tracer_otlp_queued_batches", "gauge", "", "batches waiting to be sent"),
    ("tracer_metric_series_folded", "gauge", "metric", "series summed into `other` at this scrape (past metrics.top_n process names or metrics.max_series)"),
];

/// A host family named as in HOST_METRICS (without the `_total`/`_info` the
/// encoder adds), with its help from there.
fn host_family(exported: &str, kind: MetricType, samples: Vec<(Labels, Value)>) -> Family {
    let help = HOST_METRICS.iter().find(|m| m.0 == exported).map(|m| m.3).unwrap_or_default();
    let name = exported.strip_suffix("_total").or_else(|| exported.strip_suffix("_info")).unwrap_or(exported);
    Family { name: name.into(), help: help.into(), kind, samples }
}

/// Everything an encoding of the metrics needs besides the session: who
/// this host is, the series limits, and the OTLP push's own figures.
pub struct Exposition {
    pub identity: Identity,
    pub options: Options,
    pub otlp: Option<std::sync::Arc<std::sync::Mutex<crate::otlp::Status>>>,
}

/// What the exposition holds (config `[metrics]`).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// BPF run-time statistics are on: each plugin's BPF cost is exported.
    pub bpf_cost: bool,
    /// Process names kept per metric with a `comm` label; the rest are `other`.
    pub top_n: usize,
    /// Series per metric; the smallest past it are folded into one.
    pub max_series: usize,
}

/// The label value series are folded into.
const OTHER: &str = "other";

/// What a series weighs when the largest are kept: a counter's or gauge's
/// size, a histogram's count.
fn weight(v: &Value) -> f64 {
    let w = match v {
        Value::Counter(x) | Value::Gauge(x) => x.abs(),
        Value::Histogram(_, count, _) => *count as f64,
        Value::Info => 0.0,
    };
    if w.is_nan() { 0.0 } else { w }
}

/// `b` added into `a`. Histograms of one metric share their bucket edges
/// (one bucket unit per metric); their lists differ only in length.
fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Counter(x), Value::Counter(y)) | (Value::Gauge(x), Value::Gauge(y)) => *x += y,
        (Value::Histogram(sa, ca, ba), Value::Histogram(sb, cb, bb)) => {
            *sa += sb;
            *ca = ca.saturating_add(*cb);
            // Both end in the +Inf bucket: add the finite ones by position.
            let inf = ba.pop();
            let finite_b = &bb[..bb.len().saturating_sub(1)];
            for (i, (edge, count)) in finite_b.iter().enumerate() {
                match ba.get_mut(i) {
                    Some(slot) => slot.1 = slot.1.saturating_add(*count),
                    None => ba.push((*edge, *count)),
                }
            }
            ba.extend(inf);
        }
        _ => {}
    }
}

/// Keeps a family's series within the options. With a `comm` label: the
/// `top_n` names of largest weight (summed over the name's series) stay,
/// the others become `comm="other"`. Then, past `max_series`, the lightest
/// series are summed into one whose labels (but `node`) are all `other`.
/// Sums stay right: whatever is folded is added into `other`. Returns how
/// many series were folded.
fn fold(f: &mut Family, options: Options) -> usize {
    let mut folded = 0;
    let samples = std::mem::take(&mut f.samples);
    let comm_of = |labels: &Labels| labels.iter().position(|(k, _)| k == tracer_plugin_api::common_names::COMM);
    let mut samples = if samples.first().and_then(|(l, _)| comm_of(l)).is_some() {
        let mut by_name: std::collections::HashMap<String, f64> = Default::default();
        for (labels, v) in &samples {
            if let Some(i) = comm_of(labels) {
                *by_name.entry(labels[i].1.clone()).or_default() += weight(v);
            }
        }
        let mut names: Vec<(String, f64)> = by_name.into_iter().filter(|(n, _)| n != OTHER).collect();
        names.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let keep: std::collections::HashSet<String> = names.into_iter().take(options.top_n).map(|(n, _)| n).collect();
        let mut out: Vec<(Labels, Value)> = Vec::new();
        for (mut labels, v) in samples {
            if let Some(i) = comm_of(&labels) {
                if !keep.contains(&labels[i].1) {
                    if labels[i].1 != OTHER {
                        folded += 1;
                    }
                    labels[i].1 = OTHER.into();
                }
            }
            match out.iter_mut().find(|(l, _)| *l == labels) {
                Some((_, into)) => merge(into, &v),
                None => out.push((labels, v)),
            }
        }
        out
    } else {
        samples
    };
    if samples.len() > options.max_series {
        let mut order: Vec<usize> = (0..samples.len()).collect();
        order.sort_by(|&a, &b| weight(&samples[b].1).total_cmp(&weight(&samples[a].1)));
        let light: std::collections::HashSet<usize> = order[options.max_series - 1..].iter().copied().collect();
        let mut rest: Option<(Labels, Value)> = None;
        let mut kept = Vec::new();
        for (i, (labels, v)) in samples.into_iter().enumerate() {
            if !light.contains(&i) {
                kept.push((labels, v));
                continue;
            }
            folded += 1;
            match &mut rest {
                Some((_, into)) => merge(into, &v),
                None => {
                    let labels = labels.into_iter().map(|(k, val)| if k == "node" { (k, val) } else { (k, OTHER.to_string()) }).collect();
                    rest = Some((labels, v));
                }
            }
        }
        kept.extend(rest);
        samples = kept;
    }
    f.samples = samples;
    folded
}

/// What identifies this host in every series and in `tracer_build_info`.
#[derive(Debug, Clone)]
pub struct Identity {
    pub node: String,
    pub version: String,
    pub kernel: String,
}

impl Identity {
    /// `node` from `--node-name`, else `$NODE_NAME` (what a Kubernetes
    /// DaemonSet sets from the downward API), else the hostname.
    pub fn new(node_name: Option<&str>) -> Identity {
        let uname = |f: fn(&libc::utsname) -> &[libc::c_char]| {
            // SAFETY: uname fills the struct; its fields are NUL-terminated.
            let mut u: libc::utsname = unsafe { std::mem::zeroed() };
            if unsafe { libc::uname(&mut u) } != 0 {
                return String::from("unknown");
            }
            let bytes: Vec<u8> = f(&u).iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let node = node_name
            .map(str::to_string)
            .or_else(|| std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty()))
            .unwrap_or_else(|| uname(|u| &u.nodename));
        Identity { node, version: env!("CARGO_PKG_VERSION").to_string(), kernel: uname(|u| &u.release) }
    }
}

/// How many of a log2 bucket unit make one base unit. A division, not a
/// multiplication by 1e-6: `15 / 1e6` prints `0.000015`, `15 * 1e-6` does not.
fn bucket_divisor(unit: &str) -> f64 {
    match unit {
        "nsecs" | "ns" => 1e9,
        "usecs" | "us" | "µs" => 1e6,
        "msecs" | "ms" => 1e3,
        _ => 1.0,
    }
}

/// A log2 histogram sample as Prometheus buckets: bucket i holds the whole
/// values 2^i..2^(i+1)-1 of the bucket unit (bucket 0 also 0), so its upper
/// edge is 2^(i+1)-1; then +Inf.
fn histogram(s: &MetricSample) -> Value {
    let d = bucket_divisor(s.bucket_unit.as_str());
    let last = s.buckets.iter().rposition(|c| *c > 0).map(|i| i + 1).unwrap_or(0);
    let mut buckets: Vec<(f64, u64)> = s.buckets[..last].iter().enumerate().map(|(i, c)| ((((1u128 << (i + 1)) - 1) as f64) / d, *c)).collect();
    buckets.push((f64::MAX, 0));
    let count = s.buckets.iter().fold(0u64, |a, c| a.saturating_add(*c));
    Value::Histogram(s.value, count, buckets)
}

fn family_of(plugin: &str, spec: &MetricSpec, samples: &[MetricSample], node: &str) -> Family {
    let full = format!("tracer_{plugin}_{}", spec.name);
    let (name, kind) = match spec.kind {
        MetricKind::COUNTER => (full.strip_suffix("_total").unwrap_or(&full).to_string(), MetricType::Counter),
        MetricKind::LOG2_HISTOGRAM => (full, MetricType::Histogram),
        _ => (full, MetricType::Gauge),
    };
    let samples = samples
        .iter()
        .filter(|s| s.name.as_str() == spec.name.as_str())
        .map(|s| {
            let mut labels: Labels = spec.labels.iter().zip(s.labels.iter()).map(|(k, v)| (k.to_string(), v.to_string())).collect();
            labels.push(("node".into(), node.into()));
            let value = match spec.kind {
                MetricKind::COUNTER => Value::Counter(s.value),
                MetricKind::LOG2_HISTOGRAM => histogram(s),
                _ => Value::Gauge(s.value),
            };
            (labels, value)
        })
        .collect();
    Family { name, help: spec.help.to_string(), kind, samples }
}

/// Everything a scrape returns, taken from the session now.
pub(crate) fn families(session: &Session, x: &Exposition) -> Vec<Family> {
    let (id, options) = (&x.identity, x.options);
    let node = || ("node".to_string(), id.node.clone());
    let info = vec![(vec![("version".into(), id.version.clone()), ("kernel".into(), id.kernel.clone()), node()], Value::Info)];
    let mut out = vec![host_family("tracer_build_info", MetricType::Info, info)];
    let mut up = Vec::new();
    let mut records = Vec::new();
    let mut lost = Vec::new();
    let mut errors = Vec::new();
    let mut folded = Vec::new();
    let (mut bpf_s, mut bpf_runs) = (Vec::new(), Vec::new());
    for slot in &session.slots {
        let plugin = || ("plugin".to_string(), slot.name().to_string());
        let running = slot.state == SlotState::Running;
        up.push((vec![plugin(), node()], Value::Gauge(running as u8 as f64)));
        records.push((vec![plugin(), node()], Value::Counter(slot.stats.records as f64)));
        lost.push((vec![plugin(), node()], Value::Counter(slot.stats.drops as f64)));
        bpf_s.push((vec![plugin(), node()], Value::Counter(slot.stats.bpf_run_ns_total as f64 / 1e9)));
        bpf_runs.push((vec![plugin(), node()], Value::Counter(slot.stats.bpf_runs_total as f64)));
        if !running {
            continue;
        }
        match slot.metrics() {
            Ok(samples) => {
                for spec in slot.desc.metrics.iter() {
                    let mut f = family_of(slot.name(), spec, &samples, &id.node);
                    let n = fold(&mut f, options);
                    if n > 0 {
                        folded.push((vec![("metric".to_string(), f.name.clone() + if matches!(f.kind, MetricType::Counter) { "_total" } else { "" }), node()], Value::Gauge(n as f64)));
                    }
                    out.push(f);
                }
            }
            Err(e) => {
                tracing::warn!("{}: metrics: {e}", slot.name());
                errors.push((vec![plugin(), node()], Value::Gauge(1.0)));
            }
        }
    }
    out.push(host_family("tracer_plugin_up", MetricType::Gauge, up));
    out.push(host_family("tracer_plugin_records_total", MetricType::Counter, records));
    out.push(host_family("tracer_plugin_events_lost_total", MetricType::Counter, lost));
    if options.bpf_cost {
        out.push(host_family("tracer_plugin_bpf_seconds_total", MetricType::Counter, bpf_s));
        out.push(host_family("tracer_plugin_bpf_runs_total", MetricType::Counter, bpf_runs));
    }
    if !folded.is_empty() {
        out.push(host_family("tracer_metric_series_folded", MetricType::Gauge, folded));
    }
    if !errors.is_empty() {
        out.push(host_family("tracer_plugin_metrics_failed", MetricType::Gauge, errors));
    }
    if let Some(st) = &x.otlp {
        let st = st.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let c = |v: u64| vec![(vec![node()], Value::Counter(v as f64))];
        out.push(host_family("tracer_otlp_batches_sent_total", MetricType::Counter, c(st.sent)));
        out.push(host_family("tracer_otlp_batches_dropped_total", MetricType::Counter, c(st.dropped)));
        out.push(host_family("tracer_otlp_send_failures_total", MetricType::Counter, c(st.failures)));
        out.push(host_family("tracer_otlp_queued_batches", MetricType::Gauge, vec![(vec![node()], Value::Gauge(st.queued as f64))]));
    }
    out
}

#[derive(Debug)]
struct Snapshot(Vec<Family>);

impl prometheus_client::collector::Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            let mut family = encoder.encode_descriptor(&f.name, &f.help, None, f.kind)?;
            for (labels, value) in &f.samples {
                match value {
                    Value::Info => family.encode_info(labels)?,
                    _ => {
                        let m = family.encode_family(labels)?;
                        match value {
                            Value::Counter(v) => ConstCounter::new(*v).encode(m)?,
                            Value::Gauge(v) => ConstGauge::new(*v).encode(m)?,
                            Value::Histogram(sum, count, buckets) => {
                                let mut m = m;
                                m.encode_histogram::<()>(*sum, *count, buckets, None)?
                            }
                            Value::Info => {}
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The OpenMetrics text of every running plugin's metrics and the host's own.
pub fn encode(session: &Session, x: &Exposition) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(families(session, x))));
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        tracing::warn!("encoding metrics: {e}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s_of() -> MetricSample {
        MetricSample { name: "d".into(), labels: vec![].into(), value: 0.0, buckets: vec![].into(), bucket_unit: "usecs".into() }
    }

    #[test]
    fn log2_buckets_become_cumulative_le_buckets_in_seconds() {
        let s = MetricSample {
            name: "syscall_duration_seconds".into(),
            labels: vec!["read".into()].into(),
            value: 0.5,
            buckets: vec![2, 0, 3, 0].into(),
            bucket_unit: "usecs".into(),
        };
        let spec = MetricSpec::new("syscall_duration_seconds", MetricKind::LOG2_HISTOGRAM, "seconds", "time", &["syscall"]);
        let f = family_of("syscall_latency", &spec, &[s], "n1");
        assert_eq!(f.name, "tracer_syscall_latency_syscall_duration_seconds");
        let (labels, Value::Histogram(sum, count, buckets)) = &f.samples[0] else { panic!("{f:?}") };
        assert_eq!(labels, &vec![("syscall".to_string(), "read".to_string()), ("node".into(), "n1".into())]);
        assert_eq!((*sum, *count), (0.5, 5));
        // 0-1 µs: 2; 2-3 µs: 0; 4-7 µs: 3; then +Inf.
        assert_eq!(buckets, &vec![(1e-6, 2), (3e-6, 0), (7e-6, 3), (f64::MAX, 0)]);
        let long = MetricSample { buckets: vec![0, 0, 0, 1].into(), ..s_of() };
        let Value::Histogram(_, _, b) = histogram(&long) else { panic!() };
        assert_eq!(b[3].0.to_string(), "0.000015", "printed as the decimal it is");
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Snapshot(vec![f])));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("tracer_syscall_latency_syscall_duration_seconds_bucket{le=\"0.000007\",syscall=\"read\",node=\"n1\"} 5"), "{text}");
        assert!(text.contains("{le=\"+Inf\",syscall=\"read\",node=\"n1\"} 5"), "{text}");
        assert!(text.contains("_count{syscall=\"read\",node=\"n1\"} 5"), "{text}");
    }

    fn fam(samples: Vec<(Labels, Value)>) -> Family {
        Family { name: "m".into(), help: String::new(), kind: MetricType::Counter, samples }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_top_process_names_stay_and_the_rest_sum_into_other() {
        let mut f = fam(
            [("a", 5.0), ("b", 50.0), ("c", 1.0), ("d", 20.0), ("other", 2.0)]
                .iter()
                .map(|(c, v)| (labels(&[("comm", c), ("node", "n")]), Value::Counter(*v)))
                .collect(),
        );
        let n = fold(&mut f, Options { bpf_cost: false, top_n: 2, max_series: 100 });
        assert_eq!(n, 2, "a and c folded");
        let got: Vec<(String, f64)> = f.samples.iter().map(|(l, v)| (l[0].1.clone(), weight(v))).collect();
        assert_eq!(got, vec![("other".into(), 8.0), ("b".into(), 50.0), ("d".into(), 20.0)], "the plugin's own other gains a and c");
    }

    #[test]
    fn past_max_series_the_lightest_fold_into_one_all_other_series() {
        let mut f = fam((0..10).map(|i| (labels(&[("syscall", &format!("s{i}")), ("node", "n")]), Value::Counter(i as f64))).collect());
        let n = fold(&mut f, Options { bpf_cost: false, top_n: 10, max_series: 4 });
        assert_eq!(n, 7);
        assert_eq!(f.samples.len(), 4);
        let total: f64 = f.samples.iter().map(|(_, v)| weight(v)).sum();
        assert_eq!(total, 45.0, "nothing lost");
        assert_eq!(f.samples[3], (labels(&[("syscall", "other"), ("node", "n")]), Value::Counter(21.0)), "0+1+..+6");
    }

    #[test]
    fn histograms_fold_by_bucket() {
        let h = |b: Vec<(f64, u64)>| {
            let count = b.iter().map(|x| x.1).sum();
            let mut b = b;
            b.push((f64::MAX, 0));
            Value::Histogram(1.0, count, b)
        };
        let mut a = h(vec![(1e-6, 1)]);
        merge(&mut a, &h(vec![(1e-6, 2), (3e-6, 4)]));
        assert_eq!(a, Value::Histogram(2.0, 7, vec![(1e-6, 3), (3e-6, 4), (f64::MAX, 0)]));
    }

    #[test]
    fn counters_keep_one_total_suffix() {
        let spec = MetricSpec::new("opens_total", MetricKind::COUNTER, "1", "opens", &[]);
        let s = MetricSample { name: "opens_total".into(), labels: vec![].into(), value: 7.0, buckets: vec![].into(), bucket_unit: "".into() };
        let f = family_of("open", &spec, &[s], "n1");
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Snapshot(vec![f])));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("# TYPE tracer_open_opens counter") && text.contains("tracer_open_opens_total{node=\"n1\"} 7"), "{text}");
        assert!(!text.contains("_total_total"), "{text}");
    }
}
