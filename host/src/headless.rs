//! `--headless`: records to stdout as they come, each panel's final contents when
//! the run ends, per-plugin figures to stderr.

use crate::event_loop::{Frontend, StopReason};
use std::collections::HashMap;
use crate::stdout_queue::StdoutQueue;
use std::time::Duration;
use tracer_core::format::Clock;
use tracer_core::output::{Format, RecordWriter};
use tracer_core::session::{PluginSlot, PluginStats, Session, SlotState};
use tracer_plugin_api::FieldValue;

pub struct Headless {
    writer: RecordWriter<StdoutQueue>,
    /// `--format none`: nothing goes to stdout.
    quiet: bool,
    refresh: Duration,
    /// Records lost to the output backlog already reported.
    reported_backlog: u64,
    /// Drops already reported, per plugin name.
    reported_drops: HashMap<String, u64>,
}

impl Headless {
    /// `format` None: nothing on stdout (`--format none`).
    pub fn new(format: Option<Format>, refresh: Duration) -> Self {
        Headless {
            writer: RecordWriter::new(StdoutQueue::new(), format.unwrap_or(Format::Json), Clock::now()),
            quiet: format.is_none(),
            refresh,
            reported_backlog: 0,
            reported_drops: HashMap::new(),
        }
    }

    /// How many record types the run starts with: with more than one, text
    /// and TSV lines start with the type.
    pub fn set_record_types(&mut self, n: usize) {
        self.writer.set_typed(n > 1);
    }

    /// Final panels of every running plugin, then flush.
    pub fn finish(&mut self, session: &Session) -> std::io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        for slot in &session.slots {
            if slot.state != SlotState::Running {
                continue;
            }
            for p in slot.desc.panels.iter() {
                match slot.panel(p.id.as_str()) {
                    Ok(content) => self.writer.panel(slot.name(), &p.id, &p.title, &content)?,
                    Err(e) => tracing::error!("{}.{}: {e}", slot.name(), p.id),
                }
            }
        }
        self.writer.flush()
    }

    /// Wait for stdout to take what is queued, as long as it keeps taking (a
    /// reader that takes nothing for 2 s is given up on). Returns a line for
    /// the final report when records were lost or could not be written.
    pub fn close(&mut self) -> Option<String> {
        let written = self.writer.get_mut().close(Duration::from_secs(2));
        let lost = self.writer.get_mut().lost_records;
        match (written, lost) {
            (true, 0) => None,
            (true, n) => Some(format!("tracer-host: {n} records not written: stdout was not read fast enough (output backlog)")),
            (false, n) => Some(format!(
                "tracer-host: {n} records not written (output backlog), and the last ones queued may not have been: stdout is not being read"
            )),
        }
    }
}

fn closed(e: std::io::Error) -> StopReason {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        StopReason::OutputClosed
    } else {
        StopReason::Error(format!("writing to stdout: {e}"))
    }
}

impl Frontend for Headless {
    fn wants_records(&self) -> bool {
        // Quiet: records still reach their plugins, undecoded.
        !self.quiet
    }

    fn record(&mut self, slot: &PluginSlot, ring: u32, values: &[FieldValue]) -> Result<(), StopReason> {
        let type_name = slot.desc.rings.get(ring as usize).map(|r| r.map.as_str()).unwrap_or("record");
        self.writer.record(slot.name(), ring, type_name, slot.fields(ring), values).map_err(closed)?;
        self.writer.get_mut().record_done();
        // At a record's end: whole records go to the stdout thread as a chunk.
        if self.writer.buffered() >= tracer_core::output::FLUSH_AT {
            self.writer.flush().map_err(closed)?;
        }
        Ok(())
    }

    fn tick(&mut self, session: &mut Session) -> Result<(), StopReason> {
        // Losses are said when they happen, not only in the final report: on
        // stderr, and in the JSON stream where the gap is.
        for slot in session.slots.iter().filter(|s| s.state == SlotState::Running) {
            let total = slot.stats.drops;
            let seen = self.reported_drops.entry(slot.name().to_string()).or_insert(0);
            if total > *seen {
                let lost = total - *seen;
                *seen = total;
                tracing::warn!("{}: {lost} events lost in the kernel ({total} in all): a ring buffer or map was full", slot.name());
                if !self.quiet {
                    self.writer.lost(slot.name(), lost, total).map_err(closed)?;
                }
            }
        }
        // Records reach a pipe at least once per refresh, not only when 256 KiB filled.
        self.writer.flush().map_err(closed)?;
        let q = self.writer.get_mut();
        if q.is_closed() {
            return Err(StopReason::OutputClosed);
        }
        if q.lost_records > self.reported_backlog {
            tracing::warn!(
                "{} records not written: stdout is not read fast enough (output backlog, {} in all)",
                q.lost_records - self.reported_backlog,
                q.lost_records
            );
            self.reported_backlog = q.lost_records;
        }
        Ok(())
    }

    fn refresh(&self) -> Duration {
        self.refresh
    }
}

/// Record types (ring buffers) of the running plugins.
pub fn record_types(session: &Session) -> usize {
    session.slots.iter().filter(|s| s.state == SlotState::Running).map(|s| s.desc.rings.len()).sum()
}

/// Records, drops with their causes, record errors. A counter that could not
/// be read is no zero: the line says what is unknown.
fn report_line(name: &str, s: &PluginStats) -> String {
    let counters: Vec<String> = s.counters.iter().map(|(n, v)| format!("{n} {v}")).collect();
    let dropped = match &s.counter_error {
        None => format!("{} dropped ({})", s.drops, counters.join(", ")),
        Some(e) => format!("drops unknown (at least {}): the loss counters could not be read: {e}", s.drops),
    };
    format!("{name}: {} records, {dropped}, {} record errors", s.records, s.record_errors)
}

/// One line per plugin that ran: records, drops with their causes, errors; and
/// why a plugin was stopped. Taken before shutdown, printed after it.
pub fn report(session: &Session) -> Vec<String> {
    let mut lines = Vec::new();
    for slot in session.slots.iter().filter(|s| s.state != SlotState::Off) {
        lines.push(report_line(slot.name(), &slot.stats));
        for (prog, why) in slot.runtime().into_iter().flat_map(|rt| rt.optional_off()) {
            lines.push(format!("{}: optional {prog} was off on this kernel: {why}", slot.name()));
        }
        if let SlotState::Failed(why) = &slot.state {
            lines.push(format!("{}: stopped: {}", slot.name(), why.lines().next().unwrap_or("")));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_loss_counter_is_reported_as_unknown_not_zero() {
        let mut s = PluginStats::default();
        s.records = 12;
        s.counters = vec![("ring buffer full".into(), 0)];
        assert_eq!(report_line("open", &s), "open: 12 records, 0 dropped (ring buffer full 0), 0 record errors");
        s.counter_error = Some("reading open_stats[0]: Too many open files (os error 24)".into());
        let line = report_line("open", &s);
        assert!(line.contains("drops unknown (at least 0)") && line.contains("Too many open files") && !line.contains("0 dropped"), "{line}");
    }
}
