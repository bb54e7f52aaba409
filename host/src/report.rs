//! `--report FILE`: one JSON document with what the run found, written when
//! the host stops and whenever it gets SIGUSR1: the machine and kernel, when
//! and how long, and per plugin its state, attach modes, records, losses by
//! cause, BPF cost, exported metrics and every panel. Its schema is
//! `configs/report.schema.json`; tests validate reports against it.
//!
//! Written to `FILE.tmp` and renamed over FILE, so a reader never sees half
//! a report.

use crate::exposition::Identity;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tracer_core::session::{PluginSlot, Session, SlotState};
use tracer_plugin_api::{MetricKind, MetricSample};

/// The `schema` field: bumped when a field changes meaning or goes.
pub const SCHEMA: &str = "tracer-report/1";

pub struct Report {
    path: PathBuf,
    identity: Identity,
    started: SystemTime,
}

fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    tracer_core::format::rfc3339_utc(d.as_secs() as i64, d.subsec_nanos())
}

fn state(s: &SlotState) -> (&'static str, Option<String>) {
    match s {
        SlotState::Running => ("running", None),
        SlotState::Off => ("off", None),
        SlotState::Removed => ("removed", None),
        SlotState::Failed(why) => ("failed", Some(why.lines().next().unwrap_or("").to_string())),
    }
}

fn metric_json(kind: MetricKind, labels: &[&str], s: &MetricSample) -> Value {
    let labels: serde_json::Map<String, Value> = labels.iter().zip(s.labels.iter()).map(|(k, v)| (k.to_string(), Value::from(v.as_str()))).collect();
    let finite = |v: f64| if v.is_finite() { Value::from(v) } else { Value::Null };
    match kind {
        MetricKind::LOG2_HISTOGRAM => json!({
            "name": s.name.as_str(),
            "labels": labels,
            "count": s.buckets.iter().fold(0u64, |a, c| a.saturating_add(*c)),
            "sum": finite(s.value),
            "bucket_unit": s.bucket_unit.as_str(),
            "buckets": s.buckets.as_slice(),
        }),
        _ => json!({"name": s.name.as_str(), "labels": labels, "value": finite(s.value)}),
    }
}

fn plugin_json(slot: &PluginSlot) -> Value {
    let (st, error) = state(&slot.state);
    let st_json = &slot.stats;
    let attach: Vec<Value> = slot
        .runtime()
        .map(|rt| rt.choices.iter().map(|c| json!({"probe": c.probe, "hook": c.mode.to_string()})).collect())
        .unwrap_or_default();
    let mut metrics = Vec::new();
    let mut panels = Vec::new();
    if slot.state == SlotState::Running {
        match slot.metrics() {
            Ok(samples) => {
                for spec in slot.desc.metrics.iter() {
                    let labels: Vec<&str> = spec.labels.iter().map(|l| l.as_str()).collect();
                    metrics.extend(samples.iter().filter(|s| s.name == spec.name).map(|s| metric_json(spec.kind, &labels, s)));
                }
            }
            Err(e) => tracing::warn!("{}: metrics for the report: {e}", slot.name()),
        }
        for p in slot.desc.panels.iter() {
            match slot.panel(p.id.as_str()) {
                Ok(content) => panels.push(tracer_core::output::panel_json(slot.name(), &p.id, &p.title, &content)),
                Err(e) => tracing::warn!("{}.{}: {e}", slot.name(), p.id),
            }
        }
    }
    json!({
        "name": slot.name(),
        "version": slot.desc.info.version.as_str(),
        "state": st,
        "error": error,
        "attach": attach,
        "records": st_json.records,
        "record_errors": st_json.record_errors,
        "lost": st_json.drops,
        // A counter that could not be read is no zero: null, with the reason.
        "lost_unknown": st_json.counter_error,
        "counters": st_json.counters.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
        "bpf": {"seconds": st_json.bpf_run_ns_total as f64 / 1e9, "runs": st_json.bpf_runs_total},
        "metrics": metrics,
        "panels": panels,
    })
}

impl Report {
    pub fn new(path: &Path, identity: Identity) -> Report {
        Report { path: path.to_path_buf(), identity, started: SystemTime::now() }
    }

    /// The document as of now; `final_` when the run has ended.
    pub fn document(&self, session: &Session, final_: bool, stop_reason: Option<&str>) -> Value {
        let now = SystemTime::now();
        json!({
            "schema": SCHEMA,
            "final": final_,
            "stop_reason": stop_reason,
            "machine": {
                "node": self.identity.node,
                "kernel": self.identity.kernel,
                "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            },
            "tracer_version": self.identity.version,
            "started": rfc3339(self.started),
            "written": rfc3339(now),
            "duration_seconds": now.duration_since(self.started).unwrap_or_default().as_secs_f64(),
            "plugins": session.slots.iter().filter(|s| s.state != SlotState::Off).map(plugin_json).collect::<Vec<_>>(),
        })
    }

    /// Write the document to the file (through FILE.tmp and a rename).
    pub fn write(&self, session: &Session, final_: bool, stop_reason: Option<&str>) -> Result<(), String> {
        let text = serde_json::to_string_pretty(&self.document(session, final_, stop_reason)).map_err(|e| e.to_string())?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, text + "\n").and_then(|_| std::fs::rename(&tmp, &self.path)).map_err(|e| format!("--report {}: {e}", self.path.display()))
    }
}
