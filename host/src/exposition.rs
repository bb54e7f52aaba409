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

type Labels = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Counter(f64),
    Gauge(f64),
    /// sum (base unit), count, per-bucket (upper edge in the base unit, count).
    Histogram(f64, u64, Vec<(f64, u64)>),
    Info,
}

#[derive(Debug, Clone)]
struct Family {
    /// Without `_total` for counters and `_info` for info metrics: the
    /// encoder adds those.
    name: String,
    help: String,
    kind: MetricType,
    samples: Vec<(Labels, Value)>,
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
fn families(session: &Session, id: &Identity) -> Vec<Family> {
    let node = || ("node".to_string(), id.node.clone());
    let mut out = vec![Family {
        name: "tracer_build".into(),
        help: "tracer-host's version and the kernel it runs on".into(),
        kind: MetricType::Info,
        samples: vec![(vec![("version".into(), id.version.clone()), ("kernel".into(), id.kernel.clone()), node()], Value::Info)],
    }];
    let mut up = Vec::new();
    let mut records = Vec::new();
    let mut lost = Vec::new();
    let mut errors = Vec::new();
    for slot in &session.slots {
        let plugin = || ("plugin".to_string(), slot.name().to_string());
        let running = slot.state == SlotState::Running;
        up.push((vec![plugin(), node()], Value::Gauge(running as u8 as f64)));
        records.push((vec![plugin(), node()], Value::Counter(slot.stats.records as f64)));
        lost.push((vec![plugin(), node()], Value::Counter(slot.stats.drops as f64)));
        if !running {
            continue;
        }
        match slot.metrics() {
            Ok(samples) => out.extend(slot.desc.metrics.iter().map(|spec| family_of(slot.name(), spec, &samples, &id.node))),
            Err(e) => {
                tracing::warn!("{}: metrics: {e}", slot.name());
                errors.push((vec![plugin(), node()], Value::Gauge(1.0)));
            }
        }
    }
    out.push(Family { name: "tracer_plugin_up".into(), help: "1 while the plugin runs".into(), kind: MetricType::Gauge, samples: up });
    out.push(Family { name: "tracer_plugin_records".into(), help: "records the plugin's ring buffers delivered".into(), kind: MetricType::Counter, samples: records });
    out.push(Family {
        name: "tracer_plugin_events_lost".into(),
        help: "events the plugin's kernel side dropped (full ring buffer or map)".into(),
        kind: MetricType::Counter,
        samples: lost,
    });
    if !errors.is_empty() {
        out.push(Family { name: "tracer_plugin_metrics_failed".into(), help: "1 when the plugin could not give its metrics".into(), kind: MetricType::Gauge, samples: errors });
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
pub fn encode(session: &Session, id: &Identity) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(families(session, id))));
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
