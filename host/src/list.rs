//! `--list-plugins`: what is in the plugins directory and what each plugin would
//! do on this kernel. Starting a plugin is the only honest probe (the verifier
//! and the attach points decide), so each one is started and stopped again.

use std::fmt::Write;
use tracer_core::session::Session;

pub fn list(session: &mut Session, settings: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    for f in &session.load_failures {
        let _ = writeln!(out, "{}: cannot load: {}", f.path.display(), f.reason);
    }
    for idx in 0..session.slots.len() {
        let name = session.slots[idx].name().to_string();
        let json = settings(&name);
        let result = session.start(idx, &json);
        let slot = &session.slots[idx];
        let info = &slot.desc.info;
        let _ = writeln!(out, "{} {} ({})", info.name, info.version, slot.path.display());
        let _ = writeln!(out, "    {}", info.description);
        match &result {
            Ok(()) => {
                for c in slot.runtime().map(|rt| rt.choices.as_slice()).unwrap_or(&[]) {
                    let _ = writeln!(out, "    probe {}: {} [{}]", c.probe, c.mode, c.programs.join(", "));
                    for (mode, why) in &c.rejected {
                        let first = why.lines().next().unwrap_or("");
                        let _ = writeln!(out, "        not {mode}: {first}");
                    }
                    if !c.optional_on.is_empty() {
                        let _ = writeln!(out, "        optional, on: {}", c.optional_on.join(", "));
                    }
                    for (prog, why) in &c.skipped {
                        let _ = writeln!(out, "        optional, off: {prog}: {why}");
                    }
                }
            }
            Err(e) => {
                let e = e.to_string();
                let mut lines = e.lines();
                let _ = writeln!(out, "    cannot run here: {}", lines.next().unwrap_or(""));
                for l in lines {
                    let _ = writeln!(out, "    {l}");
                }
            }
        }
        let panels: Vec<String> = slot.desc.panels.iter().map(|p| format!("{}.{}", info.name, p.id)).collect();
        let _ = writeln!(out, "    panels: {}", panels.join(", "));
        for line in crate::plugin_settings::describe(&slot.desc.settings) {
            let _ = writeln!(out, "    setting {line}");
        }
        for m in slot.desc.metrics.iter() {
            let labels: Vec<&str> = m.labels.iter().map(|l| l.as_str()).collect();
            // A plugin's strings are not ours: escaped like anything shown.
            let line = format!("metric {}_{} ({}, {}) {{{}}}: {}", info.name, m.name, m.kind.label(), m.unit, labels.join(","), m.help);
            let _ = writeln!(out, "    {}", tracer_core::text::escape_untrusted(&line));
        }
        session.stop(idx, None);
    }
    if session.slots.is_empty() && session.load_failures.is_empty() {
        out.push_str("no plugins found\n");
    }
    out
}

/// `--list-metrics`: every metric the plugins found declare and the host's
/// own, as the Markdown table the README carries (a test keeps the two equal).
/// Only the descriptors are read: nothing is started, no root needed.
pub fn metrics_table(session: &Session) -> String {
    let mut out = String::from("| metric | type | labels | meaning |\n| --- | --- | --- | --- |\n");
    let mut row = |name: &str, kind: &str, labels: &str, help: &str| {
        // A plugin's strings are not ours, and `|` would end a cell.
        let cell = |t: &str| tracer_core::text::escape_untrusted(t).replace('|', "\\|");
        let _ = writeln!(out, "| `{}` | {} | {} | {} |", cell(name), cell(kind), cell(labels), cell(help));
    };
    let mut slots: Vec<_> = session.slots.iter().collect();
    slots.sort_by(|a, b| a.name().cmp(b.name()));
    for slot in slots {
        for m in slot.desc.metrics.iter() {
            let mut labels: Vec<&str> = m.labels.iter().map(|l| l.as_str()).collect();
            labels.push("node");
            row(&format!("tracer_{}_{}", slot.name(), m.name), m.kind.label(), &labels.join(", "), &m.help);
        }
    }
    for (name, kind, labels, help) in crate::exposition::HOST_METRICS {
        row(name, kind, &if labels.is_empty() { "node".to_string() } else { format!("{labels}, node") }, help);
    }
    out
}
