//! Metric samples as the descriptor's `MetricSpec`s declare them. Names follow
//! Prometheus/OpenTelemetry conventions (`_total` on counters, the base unit
//! as a suffix: `_seconds`, `_bytes`), and label values come from small fixed
//! sets (syscall, errno, state), never pids or paths, so exporters need no
//! per-tracer code and series stay bounded. The one open-ended label is
//! `comm` (per-process series, summed by name with `comm_totals`): the host
//! keeps its top N names and folds the rest into `other`.

use abi_stable::std_types::RVec;
use tracer_plugin_api::MetricSample;

fn sample(name: &str, labels: &[&str], value: f64, buckets: &[u64], bucket_unit: &str) -> MetricSample {
    MetricSample {
        name: name.into(),
        labels: labels.iter().map(|l| (*l).into()).collect(),
        value,
        buckets: RVec::from(buckets),
        bucket_unit: bucket_unit.into(),
    }
}

/// A counter's value since the plugin started (never since a reset: `r`
/// clears panels, not exported counters).
pub fn counter(name: &str, labels: &[&str], value: u64) -> MetricSample {
    sample(name, labels, value as f64, &[], "")
}

/// A counter in a unit that is not a count (seconds).
pub fn counter_f(name: &str, labels: &[&str], value: f64) -> MetricSample {
    sample(name, labels, value, &[], "")
}

pub fn gauge(name: &str, labels: &[&str], value: f64) -> MetricSample {
    sample(name, labels, value, &[], "")
}

/// A log2 histogram: buckets in `bucket_unit` (`usecs`), `sum` in the
/// metric's unit when the kernel keeps it, else NaN (unknown).
pub fn log2_histogram(name: &str, labels: &[&str], buckets: &[u64], bucket_unit: &str, sum: Option<f64>) -> MetricSample {
    sample(name, labels, sum.unwrap_or(f64::NAN), buckets, bucket_unit)
}
