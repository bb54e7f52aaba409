//! Headless output: one line per record (aligned text like opensnoop, or JSON
//! lines), and each panel's final contents when the run ends. Writes go through a
//! large buffer; nothing but data is written here (diagnostics go to stderr).

use crate::format::{self, Clock};
use std::io::{self, BufWriter, Write};
use tracer_plugin_api::{FieldKind, FieldSpec, FieldValue, Panel, PanelContent, Table, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// The output buffer's size.
const BUFFER: usize = 256 * 1024;
/// Flush at a record's end once this much is buffered: the rest of the buffer
/// holds any one record, so the buffer never cuts a record by itself.
pub const FLUSH_AT: usize = 192 * 1024;

pub struct RecordWriter<W: Write> {
    out: BufWriter<W>,
    format: Format,
    clock: Clock,
    /// Column widths per (plugin, ring) whose text header was printed. Widths
    /// only grow, so a long value shifts later lines once, not every line.
    widths: Vec<((String, u32), Vec<usize>)>,
    line: String,
    time: format::TimeWriter,
    /// Per (plugin, ring), the JSON text that never changes between records,
    /// escaped once: the line's head and each field's `,"name":`.
    json_keys: Vec<((String, u32), JsonKeys)>,
}

struct JsonKeys {
    head: Vec<u8>,
    fields: Vec<Vec<u8>>,
    errnos: Vec<Vec<u8>>,
}

impl JsonKeys {
    fn new(plugin: &str, type_name: &str, fields: &[FieldSpec]) -> JsonKeys {
        let quoted = |s: &str| serde_json::to_vec(s).unwrap_or_else(|_| b"\"?\"".to_vec());
        let mut head = b"{\"type\":".to_vec();
        head.extend(quoted(type_name));
        head.extend(b",\"plugin\":");
        head.extend(quoted(plugin));
        head.extend(b",\"time\":\"");
        let key = |s: &str| [&b","[..], &quoted(s), b":"].concat();
        JsonKeys {
            head,
            fields: fields.iter().map(|f| key(f.name.as_str())).collect(),
            errnos: fields.iter().map(|f| [key(&format!("{}_errno", f.name)), b"\"".to_vec()].concat()).collect(),
        }
    }
}

fn kind_name(k: FieldKind) -> &'static str {
    match k {
        FieldKind::U64 => "u64",
        FieldKind::I64 => "i64",
        FieldKind::STR => "str",
        FieldKind::MONO_TIME_NS => "mono_time_ns",
        FieldKind::DURATION_NS => "duration_ns",
        FieldKind::ERRNO_RESULT => "errno_result",
        FieldKind::HEX => "hex",
        FieldKind::BYTES => "bytes",
        _ => "unknown",
    }
}

/// Initial column width for aligned text: typical values of the kind.
fn width(spec: &FieldSpec) -> usize {
    let w = match spec.kind {
        FieldKind::MONO_TIME_NS => 15,
        FieldKind::STR => 8,
        FieldKind::HEX => 10,
        _ => 7,
    };
    w.max(spec.name.len())
}

impl<W: Write> RecordWriter<W> {
    pub fn new(out: W, format: Format, clock: Clock) -> Self {
        RecordWriter {
            out: BufWriter::with_capacity(BUFFER, out),
            format,
            clock,
            widths: Vec::new(),
            line: String::with_capacity(512),
            time: format::TimeWriter::default(),
            json_keys: Vec::new(),
        }
    }

    /// One record of `plugin`'s ring `ring`, whose map is `type_name` (the
    /// record's `type` in JSON: one layout per type).
    pub fn record(&mut self, plugin: &str, ring: u32, type_name: &str, fields: &[FieldSpec], values: &[FieldValue]) -> io::Result<()> {
        match self.format {
            Format::Json => self.record_json(plugin, ring, type_name, fields, values),
            Format::Text => self.record_text(plugin, ring, fields, values),
        }
    }

    /// Written field by field into the buffer: no map, no per-field allocation
    /// (this runs once per record at full event rates).
    fn record_json(&mut self, plugin: &str, ring: u32, type_name: &str, fields: &[FieldSpec], values: &[FieldValue]) -> io::Result<()> {
        let time = fields
            .iter()
            .zip(values)
            .find(|(f, _)| f.kind == FieldKind::MONO_TIME_NS)
            .and_then(|(_, v)| match v.as_enum() {
                Ok(Value::U64(n)) => Some(*n),
                _ => None,
            })
            .unwrap_or_else(Clock::monotonic_now_ns);
        let i = match self.json_keys.iter().position(|((p, r), k)| *r == ring && p == plugin && k.fields.len() == fields.len()) {
            Some(i) => i,
            None => {
                self.json_keys.retain(|((p, r), _)| !(*r == ring && p == plugin));
                self.json_keys.push(((plugin.to_string(), ring), JsonKeys::new(plugin, type_name, fields)));
                self.json_keys.len() - 1
            }
        };
        let keys = &self.json_keys[i].1;
        let out = &mut self.out;
        let mut num = itoa::Buffer::new();
        out.write_all(&keys.head)?;
        self.time.write(&self.clock, time, out)?;
        out.write_all(b"\"")?;
        for (j, (f, v)) in fields.iter().zip(values).enumerate() {
            out.write_all(&keys.fields[j])?;
            match v.as_enum() {
                Ok(Value::U64(n)) => out.write_all(num.format(*n).as_bytes())?,
                Ok(Value::I64(n)) => out.write_all(num.format(*n).as_bytes())?,
                Ok(Value::F64(x)) if x.is_finite() => write!(out, "{x}")?,
                // Written straight through unless it holds a terminal control
                // that JSON leaves raw (then escaped: the same JSON value).
                Ok(Value::Str(s)) if !crate::text::has_terminal_controls(s) => serde_json::to_writer(&mut *out, s.as_str())?,
                Ok(Value::Str(s)) => {
                    let quoted = serde_json::to_string(s.as_str())?;
                    out.write_all(crate::text::json_escape_controls(&quoted).as_bytes())?
                }
                _ => out.write_all(b"null")?,
            }
            if f.kind == FieldKind::ERRNO_RESULT {
                if let Ok(Value::I64(n)) = v.as_enum() {
                    if *n < 0 {
                        out.write_all(&keys.errnos[j])?;
                        out.write_all(format::errno_name(-n).as_bytes())?;
                        out.write_all(b"\"")?;
                    }
                }
            }
        }
        out.write_all(b"}\n")
    }

    /// JSON only: a line saying `lost` more of `plugin`'s events were dropped in
    /// the kernel since the last such line (`lost_total` since the start), so a
    /// consumer of the stream knows where it has gaps. Text output says it on
    /// stderr instead, out of the aligned columns.
    pub fn lost(&mut self, plugin: &str, lost: u64, lost_total: u64) -> io::Result<()> {
        if self.format != Format::Json {
            return Ok(());
        }
        self.out.write_all(b"{\"type\":\"lost\",\"plugin\":")?;
        serde_json::to_writer(&mut self.out, plugin)?;
        self.out.write_all(b",\"time\":\"")?;
        self.time.write(&self.clock, Clock::monotonic_now_ns(), &mut self.out)?;
        writeln!(self.out, "\",\"lost\":{lost},\"lost_total\":{lost_total}}}")
    }

    fn record_text(&mut self, plugin: &str, ring: u32, fields: &[FieldSpec], values: &[FieldValue]) -> io::Result<()> {
        use std::fmt::Write as _;
        let last = fields.len().saturating_sub(1);
        let key = (plugin.to_string(), ring);
        let pos = match self.widths.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                self.widths.push((key, fields.iter().map(width).collect()));
                self.line.clear();
                let _ = write!(self.line, "{:<8}", "PLUGIN");
                let widths = &self.widths.last().unwrap().1;
                for (i, f) in fields.iter().enumerate() {
                    let name = f.name.to_uppercase();
                    if i == last {
                        let _ = write!(self.line, " {name}");
                    } else {
                        let _ = write!(self.line, " {name:<w$}", w = widths[i]);
                    }
                }
                writeln!(self.out, "{}", self.line.trim_end())?;
                self.widths.len() - 1
            }
        };
        let widths = &mut self.widths[pos].1;
        self.line.clear();
        let _ = write!(self.line, "{plugin:<8}");
        for (i, (f, v)) in fields.iter().zip(values).enumerate() {
            let text = format::value_text(v, f.kind, &self.clock);
            if i == last {
                let _ = write!(self.line, " {text}");
            } else {
                let n = text.chars().count();
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(n);
                }
                let _ = write!(self.line, " {text:<w$}", w = widths.get(i).copied().unwrap_or(n));
            }
        }
        writeln!(self.out, "{}", self.line.trim_end())
    }

    /// The final contents of one panel.
    pub fn panel(&mut self, plugin: &str, id: &str, title: &str, content: &PanelContent) -> io::Result<()> {
        match self.format {
            Format::Json => {
                let v = panel_json(plugin, id, title, content);
                let text = serde_json::to_string(&v)?;
                self.out.write_all(crate::text::json_escape_controls(&text).as_bytes())?;
                self.out.write_all(b"\n")
            }
            Format::Text => {
                let text = panel_text(title, content, &self.clock);
                writeln!(self.out, "\n== {plugin}.{id}: {title} ==\n{text}")
            }
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The writer the records go to.
    pub fn get_mut(&mut self) -> &mut W {
        self.out.get_mut()
    }

    /// Bytes written but not yet handed to the writer. Below [`FLUSH_AT`],
    /// the buffer never hands anything on by itself (no record is that long),
    /// so a caller that flushes at record ends hands on whole records only.
    pub fn buffered(&self) -> usize {
        self.out.buffer().len()
    }
}

fn columns_json(cols: &[FieldSpec]) -> serde_json::Value {
    cols.iter()
        .map(|c| serde_json::json!({"name": c.name.as_str(), "kind": kind_name(c.kind), "unit": c.unit.as_str()}))
        .collect()
}

pub fn panel_json(plugin: &str, id: &str, title: &str, content: &PanelContent) -> serde_json::Value {
    use serde_json::json;
    let body = match content.as_enum() {
        Ok(Panel::Table(t)) => json!({
            "kind": "table",
            "columns": columns_json(&t.columns),
            "rows": t.rows.iter().map(|r| r.iter().map(format::value_json).collect::<Vec<_>>()).collect::<Vec<_>>(),
        }),
        Ok(Panel::Log2Histogram(h)) => json!({
            "kind": "log2_histogram",
            "unit": h.unit.as_str(),
            "p50": tracer_plugin_api::Log2Histogram::quantile_upper(&h.buckets, 0.5),
            "p90": tracer_plugin_api::Log2Histogram::quantile_upper(&h.buckets, 0.9),
            "p99": tracer_plugin_api::Log2Histogram::quantile_upper(&h.buckets, 0.99),
            "buckets": h.buckets.iter().take(64).enumerate().map(|(i, c)| {
                let (lo, hi) = log2_bounds(i);
                json!({"low": lo, "high": hi, "count": c})
            }).collect::<Vec<_>>(),
        }),
        Ok(Panel::Counters(cs)) => json!({
            "kind": "counters",
            "counters": cs.iter().map(|c| json!({"name": c.name.as_str(), "value": c.value, "unit": c.unit.as_str()})).collect::<Vec<_>>(),
        }),
        Ok(Panel::TimeSeries(ss)) => json!({
            "kind": "time_series",
            "series": ss.iter().map(|s| json!({"name": s.name.as_str(), "unit": s.unit.as_str(), "interval_ms": s.interval_ms, "points": s.points.as_slice()})).collect::<Vec<_>>(),
        }),
        Ok(Panel::Text(t)) => json!({"kind": "text", "text": t.as_str()}),
        _ => json!({"kind": "unknown"}),
    };
    let mut obj = serde_json::Map::new();
    obj.insert("type".into(), "panel".into());
    obj.insert("plugin".into(), plugin.into());
    obj.insert("panel".into(), id.into());
    obj.insert("title".into(), title.into());
    if let serde_json::Value::Object(b) = body {
        obj.extend(b);
    }
    serde_json::Value::Object(obj)
}

/// `[low, high]` of bucket `i`, as runqlat prints them (bucket 0 is 0..1).
pub fn log2_bounds(i: usize) -> (u64, u64) {
    match i {
        0 => (0, 1),
        1..=62 => (1u64 << i, (1u64 << (i + 1)) - 1),
        // The last bucket of a u64; anything past it is a plugin's mistake.
        _ => (1u64 << 63, u64::MAX),
    }
}

/// A table as aligned text (every column as wide as its widest cell).
pub fn table_text(t: &Table, clock: &Clock) -> String {
    let cells: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| r.iter().zip(t.columns.iter()).map(|(v, c)| format::value_text(v, c.kind, clock)).collect())
        .collect();
    let upper: Vec<String> = t.columns.iter().map(|c| format::column_label(c).to_uppercase()).collect();
    let mut widths: Vec<usize> = upper.iter().map(|c| c.chars().count()).collect();
    for r in &cells {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut s = String::new();
    let line = |s: &mut String, items: Vec<&str>| {
        let mut l = String::new();
        for (i, it) in items.iter().enumerate() {
            l.push_str(&format!("{:<w$}  ", it, w = widths[i]));
        }
        s.push_str(l.trim_end());
        s.push('\n');
    };
    line(&mut s, upper.iter().map(String::as_str).collect());
    for r in &cells {
        line(&mut s, r.iter().map(String::as_str).collect());
    }
    s
}

/// `     usecs     : count    distribution` as runqlat prints it.
pub fn histogram_text(unit: &str, buckets: &[u64]) -> String {
    let buckets = &buckets[..buckets.len().min(64)];
    let last = buckets.iter().rposition(|&c| c > 0).map(|i| i + 1).unwrap_or(0);
    let max = buckets.iter().copied().max().unwrap_or(0).max(1);
    let mut s = format!("{:>24} : {:<8} distribution\n", unit, "count");
    for (i, &c) in buckets[..last].iter().enumerate() {
        let (lo, hi) = log2_bounds(i);
        let stars = (c * 40).div_ceil(max) as usize;
        s.push_str(&format!("{lo:>10} -> {hi:<10} : {c:<8} |{:<40}|\n", "*".repeat(stars.min(40))));
    }
    if let Some(m) = quantile_marks(buckets) {
        s.push_str(&format!("{:>24}   {m}\n", ""));
    }
    s
}

/// The quantiles a log2 histogram can tell: which bucket p50, p90 and p99
/// fall in, as its upper bound (`p50 <= 7   p90 <= 15   p99 <= 1023`).
pub fn quantile_marks(buckets: &[u64]) -> Option<String> {
    let q = |x| tracer_plugin_api::Log2Histogram::quantile_upper(buckets, x);
    Some(format!("p50 <= {}   p90 <= {}   p99 <= {}", q(0.5)?, q(0.9)?, q(0.99)?))
}

pub fn panel_text(_title: &str, content: &PanelContent, clock: &Clock) -> String {
    match content.as_enum() {
        Ok(Panel::Table(t)) => table_text(t, clock),
        Ok(Panel::Log2Histogram(h)) => histogram_text(&crate::text::escape_untrusted(&h.unit), &h.buckets),
        Ok(Panel::Counters(cs)) => cs
            .iter()
            .map(|c| format!("{}: {} {}\n", c.name, c.value, c.unit))
            .collect(),
        Ok(Panel::TimeSeries(ss)) => ss
            .iter()
            .map(|s| format!("{} ({} per {} ms): {:?}\n", s.name, s.unit, s.interval_ms, s.points.as_slice()))
            .collect(),
        Ok(Panel::Text(t)) => format!("{}\n", crate::text::escape_untrusted_lines(t)),
        _ => "(a panel kind this host does not know)\n".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<FieldSpec> {
        vec![
            FieldSpec::new("pid", FieldKind::U64, ""),
            FieldSpec::new("ret", FieldKind::ERRNO_RESULT, ""),
            FieldSpec::new("path", FieldKind::STR, ""),
        ]
    }

    fn written(format: Format) -> String {
        let mut buf = Vec::new();
        {
            let mut w = RecordWriter::new(&mut buf, format, Clock::now());
            w.record("open", 0, "open_events", &fields(), &[Value::u64(42), Value::i64(-2), Value::str("/nope")]).unwrap();
            w.record("open", 0, "open_events", &fields(), &[Value::u64(43), Value::i64(3), Value::str("/etc/hosts")]).unwrap();
            w.flush().unwrap();
        }
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn json_lines_carry_plugin_time_fields_and_errno_names() {
        let out = written(Format::Json);
        let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["plugin"], "open");
        assert_eq!(lines[0]["pid"], 42);
        assert_eq!(lines[0]["ret"], -2);
        assert_eq!(lines[0]["ret_errno"], "ENOENT");
        assert!(lines[1].get("ret_errno").is_none());
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn lost_events_are_a_json_line_and_nothing_in_text() {
        let mut w = RecordWriter::new(Vec::new(), Format::Json, Clock::now());
        w.lost("open", 12, 30).unwrap();
        w.flush().unwrap();
        let out = String::from_utf8(w.out.into_inner().unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!((v["plugin"].as_str(), v["lost"].as_u64(), v["lost_total"].as_u64()), (Some("open"), Some(12), Some(30)));
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        let mut t = RecordWriter::new(Vec::new(), Format::Text, Clock::now());
        t.lost("open", 12, 30).unwrap();
        assert!(t.out.into_inner().unwrap().is_empty());
    }

    #[test]
    fn json_escapes_what_a_path_may_hold() {
        let mut buf = Vec::new();
        {
            let mut w = RecordWriter::new(&mut buf, Format::Json, Clock::now());
            w.record("open", 0, "open_events", &fields(), &[Value::u64(1), Value::i64(0), Value::str("/tmp/a\"b\nc\\d")]).unwrap();
            w.flush().unwrap();
        }
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["path"], "/tmp/a\"b\nc\\d");
        assert_eq!(v["ret"], 0);
    }

    #[test]
    fn text_has_one_header_and_aligned_columns() {
        let out = written(Format::Text);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("PLUGIN   PID     RET     PATH"), "{out}");
        assert!(lines[1].contains("ENOENT") && lines[1].ends_with("/nope"), "{out}");
        assert_eq!(lines[1].find("ENOENT"), lines[2].find(" 3 ").map(|i| i + 1));
    }

    #[test]
    fn histogram_prints_like_runqlat() {
        let s = histogram_text("usecs", &[0, 2, 4, 0]);
        let lines: Vec<&str> = s.lines().collect();
        // header, then buckets from 0 up to the last non-empty one, then quantiles
        assert_eq!(lines.len(), 5, "{s}");
        assert!(lines[4].ends_with("p50 <= 7   p90 <= 7   p99 <= 7"), "{s}");
        assert_eq!(histogram_text("usecs", &[0, 0]).lines().count(), 1, "no quantiles of nothing");
        assert!(lines[1].contains("0 -> 1") && lines[1].contains(": 0 "), "{s}");
        assert!(lines[2].contains("2 -> 3") && lines[2].contains(&format!("|{}{}|", "*".repeat(20), " ".repeat(20))), "{s}");
        assert!(lines[3].contains(&"*".repeat(40)), "{s}");
    }
}
