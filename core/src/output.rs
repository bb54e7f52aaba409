//! Headless output: one line per record (aligned text like opensnoop, or JSON
//! lines), and each panel's final contents when the run ends. Writes go through a
//! large buffer; nothing but data is written here (diagnostics go to stderr).

use crate::format::{self, Clock};
use std::io::{self, BufWriter, Write};
use tracer_plugin_api::{FieldKind, FieldSpec, FieldValue, Panel, PanelContent, Table, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns, like one libbpf-tools tool per record type.
    Text,
    /// Tab-separated, the same columns and headers as `Text`.
    Tsv,
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
    /// Text and TSV: a record-type column first (several types in one
    /// stream), or none (one type: the columns of one tool).
    typed: bool,
    /// The first record type written while untyped; a second one turns the
    /// type column on.
    first_type: Option<(String, u32)>,
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
            fields: fields.iter().map(|f| key(&format::json_key(f))).collect(),
            errnos: fields.iter().map(|f| [key(&format!("{}_errno", format::json_key(f))), b"\"".to_vec()].concat()).collect(),
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
        FieldKind::F64 => "f64",
        FieldKind::PHASES => "phases",
        _ => "unknown",
    }
}

impl<W: Write> RecordWriter<W> {
    pub fn new(out: W, format: Format, clock: Clock) -> Self {
        RecordWriter {
            out: BufWriter::with_capacity(BUFFER, out),
            format,
            clock,
            widths: Vec::new(),
            typed: false,
            first_type: None,
            time: format::TimeWriter::default(),
            json_keys: Vec::new(),
        }
    }

    /// Text and TSV: start each line with the record's type. Set when the
    /// stream will carry several types; turned on by itself when a second
    /// type turns up (headers are printed again then).
    pub fn set_typed(&mut self, typed: bool) {
        self.typed = typed;
    }

    /// One record of `plugin`'s ring `ring`, whose map is `type_name` (the
    /// record's `type` in JSON: one layout per type).
    pub fn record(&mut self, plugin: &str, ring: u32, type_name: &str, fields: &[FieldSpec], values: &[FieldValue]) -> io::Result<()> {
        match self.format {
            Format::Json => self.record_json(plugin, ring, type_name, fields, values),
            Format::Text | Format::Tsv => self.record_text(plugin, ring, type_name, fields, values),
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
                Ok(Value::Phases(_)) => {
                    let text = serde_json::to_string(&format::value_json(v))?;
                    out.write_all(crate::text::json_escape_controls(&text).as_bytes())?
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

    /// One line of plain values (see [`format::plain_text`]). Each record
    /// type gets its own header, printed before its first record; with a
    /// type column its first cell is `#type`, so `grep '^#\?tcp_closed'`
    /// keeps one type's header and lines. Numbers are right-aligned.
    fn record_text(&mut self, plugin: &str, ring: u32, type_name: &str, fields: &[FieldSpec], values: &[FieldValue]) -> io::Result<()> {
        let key = (plugin.to_string(), ring);
        if !self.typed {
            match &self.first_type {
                None => self.first_type = Some(key.clone()),
                Some(first) if *first != key => {
                    self.typed = true;
                    self.widths.clear();
                }
                Some(_) => {}
            }
        }
        let tsv = self.format == Format::Tsv;
        let cells: Vec<String> = fields.iter().zip(values).map(|(f, v)| format::plain_text(v, f.kind, &self.clock)).collect();
        let pos = match self.widths.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                let headers: Vec<String> = fields.iter().map(format::plain_header).collect();
                // Wide enough for the header, the first record and a typical
                // value, so the first lines already line up.
                let widths = headers
                    .iter()
                    .zip(&cells)
                    .zip(fields)
                    .map(|((h, c), f)| {
                        // A task name is up to 15 bytes (TASK_COMM_LEN): room for it from the start.
                        let typical = if f.name.as_str() == tracer_plugin_api::common_names::COMM { 15 } else { min_width(f.kind) };
                        h.chars().count().max(c.chars().count()).max(typical)
                    })
                    .collect();
                self.widths.push((key, widths));
                let type_cell = self.typed.then(|| format!("#{}", crate::text::escape_untrusted(type_name)));
                let pos = self.widths.len() - 1;
                let line = layout(&mut self.widths[pos].1, type_cell, &headers, fields, tsv);
                writeln!(self.out, "{line}")?;
                pos
            }
        };
        let type_cell = self.typed.then(|| crate::text::escape_untrusted(type_name).into_owned());
        let line = layout(&mut self.widths[pos].1, type_cell, &cells, fields, tsv);
        writeln!(self.out, "{line}")
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
            Format::Text | Format::Tsv => {
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

/// One text or TSV line: the type cell (wide enough for the longest type
/// name), then the cells; text pads each to its column's width (which grows
/// to fit), numbers to the right; the last column is not padded.
fn layout(widths: &mut [usize], type_cell: Option<String>, cells: &[String], fields: &[FieldSpec], tsv: bool) -> String {
    use std::fmt::Write as _;
    let mut line = String::with_capacity(256);
    let typed = type_cell.is_some();
    if let Some(t) = type_cell {
        if tsv {
            line.push_str(&t);
        } else {
            let _ = write!(line, "{t:<18}");
        }
    }
    let last = cells.len().saturating_sub(1);
    for (i, (c, f)) in cells.iter().zip(fields).enumerate() {
        if i > 0 || typed {
            line.push(if tsv { '\t' } else { ' ' });
        }
        if tsv || i == last {
            line.push_str(c);
            continue;
        }
        let n = c.chars().count();
        let w = &mut widths[i];
        *w = (*w).max(n);
        if right_aligned(f.kind) {
            let _ = write!(line, "{c:>w$}", w = *w);
        } else {
            let _ = write!(line, "{c:<w$}", w = *w);
        }
    }
    if tsv {
        line
    } else {
        line.trim_end().to_string()
    }
}

/// A typical value's width, so a column seldom has to grow.
fn min_width(k: FieldKind) -> usize {
    match k {
        FieldKind::MONO_TIME_NS => 15,
        FieldKind::HEX => 10,
        FieldKind::STR | FieldKind::DURATION_NS | FieldKind::BYTES => 8,
        _ => 6,
    }
}

/// Columns of numbers, right-aligned in text so digits line up.
fn right_aligned(k: FieldKind) -> bool {
    matches!(k, FieldKind::U64 | FieldKind::I64 | FieldKind::DURATION_NS | FieldKind::BYTES | FieldKind::F64 | FieldKind::ERRNO_RESULT)
}

fn columns_json(cols: &[FieldSpec]) -> serde_json::Value {
    cols.iter()
        .map(|c| {
            let mut o = serde_json::json!({"name": c.name.as_str(), "key": format::json_key(c), "kind": kind_name(c.kind)});
            if let Some(u) = format::json_unit(c) {
                o["unit"] = u.into();
            }
            o
        })
        .collect()
}

/// A table row as an object keyed by each column's JSON key.
fn row_json(cols: &[FieldSpec], row: &[FieldValue]) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    for (c, v) in cols.iter().zip(row) {
        o.insert(format::json_key(c), format::value_json(v));
    }
    serde_json::Value::Object(o)
}

pub fn panel_json(plugin: &str, id: &str, title: &str, content: &PanelContent) -> serde_json::Value {
    use serde_json::json;
    let body = match content.as_enum() {
        Ok(Panel::Table(t)) => json!({
            "kind": "table",
            "columns": columns_json(&t.columns),
            "rows": t.rows.iter().map(|r| row_json(&t.columns, r)).collect::<Vec<_>>(),
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
        // One record type: the columns of one tool, no type column.
        assert!(lines[0].starts_with("   PID    RET PATH"), "{out}");
        assert!(lines[1].contains("ENOENT") && lines[1].ends_with("/nope"), "{out}");
        // Numbers right-aligned under their header.
        assert_eq!(lines[0].find(" RET").map(|i| i + 4), lines[2].find("3 /").map(|i| i + 1), "{out}");
    }

    fn close_fields() -> Vec<FieldSpec> {
        vec![
            FieldSpec::new("comm", FieldKind::STR, ""),
            FieldSpec::new("tx_bytes", FieldKind::BYTES, "bytes"),
            FieldSpec::new("lifetime", FieldKind::DURATION_NS, "ns"),
            FieldSpec::new("in old", FieldKind::DURATION_NS, "ns"),
            FieldSpec::new("states", FieldKind::PHASES, "ns"),
        ]
    }

    fn close_values() -> Vec<FieldValue> {
        vec![Value::str("tmux: server"), Value::u64(200_192), Value::u64(4_731_200), Value::u64(200), Value::phases([("SYN_SENT", 12_000), ("ESTABLISHED", 4_731_000)])]
    }

    #[test]
    fn text_numbers_are_plain_with_the_unit_in_the_header() {
        let mut w = RecordWriter::new(Vec::new(), Format::Text, Clock::now());
        w.record("tcp", 1, "tcp_closed", &close_fields(), &close_values()).unwrap();
        w.flush().unwrap();
        let out = String::from_utf8(w.out.into_inner().unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        // COMM as wide as a task name can be (15).
        assert_eq!(lines[0], "COMM            TX_BYTES LIFETIME(ms) IN_OLD(ms) STATES(ms)", "{out}");
        assert_eq!(lines[1], "tmux: server      200192       4.7312     0.0002 SYN_SENT:0.012,ESTABLISHED:4.731", "{out}");
    }

    #[test]
    fn several_record_types_get_a_type_column_and_a_header_each() {
        let mut w = RecordWriter::new(Vec::new(), Format::Tsv, Clock::now());
        w.record("open", 0, "open_events", &fields(), &[Value::u64(42), Value::i64(-2), Value::str("/a\tb")]).unwrap();
        // A second type turns the type column on, headers again.
        w.record("tcp", 1, "tcp_closed", &close_fields(), &close_values()).unwrap();
        w.record("open", 0, "open_events", &fields(), &[Value::u64(43), Value::i64(3), Value::str("/c")]).unwrap();
        w.flush().unwrap();
        let out = String::from_utf8(w.out.into_inner().unwrap()).unwrap();
        let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(lines[0], ["PID", "RET", "PATH"], "{out}");
        assert_eq!(lines[1], ["42", "ENOENT", "/a\\x09b"], "a tab in a value is escaped: {out}");
        assert_eq!(lines[2], ["#tcp_closed", "COMM", "TX_BYTES", "LIFETIME(ms)", "IN_OLD(ms)", "STATES(ms)"], "{out}");
        assert_eq!(lines[3][..3], ["tcp_closed", "tmux: server", "200192"], "{out}");
        assert_eq!(lines[4], ["#open_events", "PID", "RET", "PATH"], "{out}");
        assert_eq!(lines[5], ["open_events", "43", "3", "/c"], "{out}");
        let mut typed = RecordWriter::new(Vec::new(), Format::Text, Clock::now());
        typed.set_typed(true);
        typed.record("open", 0, "open_events", &fields(), &[Value::u64(1), Value::i64(0), Value::str("/x")]).unwrap();
        typed.flush().unwrap();
        let out = String::from_utf8(typed.out.into_inner().unwrap()).unwrap();
        assert!(out.starts_with("#open_events          PID    RET PATH\nopen_events             1      0 /x"), "{out}");
    }

    #[test]
    fn json_keys_carry_units_and_phases_are_objects() {
        let mut w = RecordWriter::new(Vec::new(), Format::Json, Clock::now());
        w.record("tcp", 1, "tcp_closed", &close_fields(), &close_values()).unwrap();
        w.flush().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&w.out.into_inner().unwrap()).unwrap();
        assert_eq!((v["type"].as_str(), v["tx_bytes"].as_u64(), v["lifetime_ns"].as_u64(), v["in_old_ns"].as_u64()), (Some("tcp_closed"), Some(200_192), Some(4_731_200), Some(200)), "{v}");
        assert_eq!(v["states"], serde_json::json!([{"name": "SYN_SENT", "ns": 12000}, {"name": "ESTABLISHED", "ns": 4731000}]));
    }

    #[test]
    fn panel_rows_are_objects_keyed_by_column_with_units() {
        let t = Table { columns: close_fields().into_iter().chain([FieldSpec::new("cpu", FieldKind::F64, "%"), FieldSpec::new("pid", FieldKind::U64, "")]).collect(), rows: vec![close_values().into_iter().chain([Value::f64(12.5), Value::u64(7)]).collect::<Vec<_>>().into()].into() };
        let v = panel_json("tcp", "closed", "Closed", &Panel::Table(t).boxed());
        let row = &v["rows"][0];
        assert_eq!((row["comm"].as_str(), row["lifetime_ns"].as_u64(), row["cpu_pct"].as_f64(), row["pid"].as_u64()), (Some("tmux: server"), Some(4_731_200), Some(12.5), Some(7)), "{v}");
        let cols = v["columns"].as_array().unwrap();
        let unit = |k: &str| cols.iter().find(|c| c["key"] == k).unwrap().get("unit").cloned();
        assert_eq!((unit("lifetime_ns"), unit("tx_bytes"), unit("cpu_pct"), unit("pid")), (Some("ns".into()), Some("bytes".into()), Some("%".into()), None));
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
