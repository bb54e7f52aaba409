//! Turning typed values into text: errno names, wall-clock times, durations and
//! byte counts. Shared by the headless writers and the TUI.

use tracer_plugin_api::{FieldKind, FieldSpec, FieldValue, Value};

/// Converts `CLOCK_MONOTONIC` ns (what `bpf_ktime_get_ns` returns) to wall time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// realtime - monotonic, in ns; None: the process-wide offset, sampled
    /// again at every refresh ([`Clock::resample`]) so a step of the wall
    /// clock (NTP, an admin) during a long run moves later times with it.
    fixed_offset_ns: Option<i128>,
}

/// The last sampled realtime - monotonic offset (ns); i64 holds ±292 years.
static OFFSET_NS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(i64::MIN);

fn sampled_offset() -> i128 {
    match OFFSET_NS.load(std::sync::atomic::Ordering::Relaxed) {
        i64::MIN => Clock::resample(),
        v => v as i128,
    }
}

fn clock_ns(id: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

impl Clock {
    /// The wall clock as it is now and as it will be after later resamples.
    pub fn now() -> Clock {
        sampled_offset();
        Clock { fixed_offset_ns: None }
    }

    /// Measure realtime - monotonic again (the host does at every refresh);
    /// returns the new offset.
    pub fn resample() -> i128 {
        Self::set_offset(clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC))
    }

    fn set_offset(offset_ns: i128) -> i128 {
        let v = offset_ns.clamp(i64::MIN as i128 + 1, i64::MAX as i128) as i64;
        OFFSET_NS.store(v, std::sync::atomic::Ordering::Relaxed);
        v as i128
    }

    /// A clock whose monotonic zero is the Unix epoch: for reproducible output
    /// in tests.
    pub fn epoch() -> Clock {
        Clock { fixed_offset_ns: Some(0) }
    }

    pub fn monotonic_now_ns() -> u64 {
        clock_ns(libc::CLOCK_MONOTONIC) as u64
    }

    /// Unix time in ns of a monotonic timestamp.
    pub fn to_unix_ns(&self, mono_ns: u64) -> i128 {
        mono_ns as i128 + self.fixed_offset_ns.unwrap_or_else(sampled_offset)
    }

    /// `22:41:19.123456` (UTC), the compact form for columns.
    pub fn hms_micros(&self, mono_ns: u64) -> String {
        let unix = self.to_unix_ns(mono_ns);
        let secs = unix.div_euclid(1_000_000_000) as i64;
        let micros = unix.rem_euclid(1_000_000_000) / 1000;
        let (_, _, _, h, mi, s) = civil_from_unix(secs);
        format!("{h:02}:{mi:02}:{s:02}.{micros:06}")
    }
}

/// `2026-11-22T22:41:19.123456789Z`: Unix seconds and nanoseconds as RFC 3339 in UTC.
pub fn rfc3339_utc(secs: i64, nanos: u32) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{nanos:09}Z")
}

/// Writes wall-clock times as RFC 3339 in UTC with nanoseconds
/// (`2026-11-22T22:41:19.123456789Z`) straight into a writer, remembering the
/// date-and-seconds part: it changes once a second while records come by the
/// thousand, so most records only need their nine nanosecond digits.
pub struct TimeWriter {
    secs: i64,
    prefix: Vec<u8>,
}

impl Default for TimeWriter {
    fn default() -> Self {
        TimeWriter { secs: i64::MIN, prefix: Vec::with_capacity(24) }
    }
}

impl TimeWriter {
    pub fn write<W: std::io::Write>(&mut self, clock: &Clock, mono_ns: u64, out: &mut W) -> std::io::Result<()> {
        let unix = clock.to_unix_ns(mono_ns);
        let secs = unix.div_euclid(1_000_000_000) as i64;
        let mut nanos = unix.rem_euclid(1_000_000_000) as u32;
        if secs != self.secs {
            let (y, mo, d, h, mi, s) = civil_from_unix(secs);
            self.prefix.clear();
            std::io::Write::write_fmt(&mut self.prefix, format_args!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}."))?;
            self.secs = secs;
        }
        let mut digits = [b'0'; 10];
        for i in (0..9).rev() {
            digits[i] = b'0' + (nanos % 10) as u8;
            nanos /= 10;
        }
        digits[9] = b'Z';
        out.write_all(&self.prefix)?;
        out.write_all(&digits)
    }
}

/// Days-to-civil from Howard Hinnant's date algorithms (UTC).
fn civil_from_unix(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + (m <= 2) as i64;
    (y, m, d, (rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32)
}

/// The symbolic name of a Linux errno (`ENOENT`), or `E<n>`.
pub fn errno_name(errno: i64) -> String {
    const NAMES: &[&str] = &[
        "", "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO", "ENXIO", "E2BIG", "ENOEXEC", "EBADF",
        "ECHILD", "EAGAIN", "ENOMEM", "EACCES", "EFAULT", "ENOTBLK", "EBUSY", "EEXIST", "EXDEV",
        "ENODEV", "ENOTDIR", "EISDIR", "EINVAL", "ENFILE", "EMFILE", "ENOTTY", "ETXTBSY", "EFBIG",
        "ENOSPC", "ESPIPE", "EROFS", "EMLINK", "EPIPE", "EDOM", "ERANGE", "EDEADLK",
        "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY", "ELOOP",
    ];
    const MORE: &[(i64, &str)] = &[
        (61, "ENODATA"),
        (62, "ETIME"),
        (75, "EOVERFLOW"),
        (95, "EOPNOTSUPP"),
        (98, "EADDRINUSE"),
        (99, "EADDRNOTAVAIL"),
        (100, "ENETDOWN"),
        (101, "ENETUNREACH"),
        (103, "ECONNABORTED"),
        (104, "ECONNRESET"),
        (105, "ENOBUFS"),
        (110, "ETIMEDOUT"),
        (111, "ECONNREFUSED"),
        (113, "EHOSTUNREACH"),
        (114, "EALREADY"),
        (115, "EINPROGRESS"),
        (122, "EDQUOT"),
        (125, "ECANCELED"),
    ];
    if errno > 0 && (errno as usize) < NAMES.len() {
        return NAMES[errno as usize].to_string();
    }
    MORE.iter()
        .find(|(n, _)| *n == errno)
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| format!("E{errno}"))
}

/// The unit a duration of `ns` reads best in, and its size in ns.
/// Duration units and their sizes in ns, smallest first.
const DURATION_UNITS: &[(&str, f64)] = &[("ns", 1.0), ("µs", 1e3), ("ms", 1e6), ("s", 1e9)];

/// Byte units and their sizes, smallest first.
const BYTE_UNITS: &[(&str, f64)] = &[("B", 1.0), ("KiB", 1024.0), ("MiB", 1048576.0), ("GiB", 1073741824.0), ("TiB", 1099511627776.0)];

/// The largest of `units` that `n` is at least one of (the smallest for 0).
fn unit_for(units: &'static [(&'static str, f64)], n: u64) -> (&'static str, f64) {
    *units.iter().rev().find(|(_, d)| n as f64 >= *d).unwrap_or(&units[0])
}

fn duration_unit(ns: u64) -> (&'static str, f64) {
    unit_for(DURATION_UNITS, ns)
}

fn byte_unit(n: u64) -> (&'static str, f64) {
    unit_for(BYTE_UNITS, n)
}

/// `812ns`, `3.2µs`, `41.0ms`, `2.50s`.
pub fn duration_ns(ns: u64) -> String {
    match duration_unit(ns) {
        (u, d) if d == 1.0 => format!("{ns}{u}"),
        (u, d) if d == 1e9 => format!("{:.2}{u}", ns as f64 / d),
        (u, d) => format!("{:.1}{u}", ns as f64 / d),
    }
}

/// `512B`, `1.5KiB`, `3.0MiB`, `2.0GiB`.
pub fn bytes(n: u64) -> String {
    match byte_unit(n) {
        (u, d) if d == 1.0 => format!("{n}{u}"),
        (u, d) => format!("{:.1}{u}", n as f64 / d),
    }
}

/// One unit for a whole column of durations or sizes, so every cell of the
/// column reads in the same unit (`0.02` and `50.37` under `ms`) instead of
/// each cell choosing its own. The unit and the decimals are picked for the
/// column's typical (median non-zero) value, which then has three
/// significant digits; bigger values just have more digits, never less.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub unit: &'static str,
    pub divisor: f64,
    pub decimals: usize,
}

impl Scale {
    /// The scale for a column of `kind` holding `values`; None for kinds
    /// shown as they are.
    pub fn for_column(kind: FieldKind, values: &[u64]) -> Option<Scale> {
        let mut nz: Vec<u64> = values.iter().copied().filter(|v| *v > 0).collect();
        nz.sort_unstable();
        let typical = nz.get(nz.len() / 2).copied().unwrap_or(0);
        let units = match kind {
            FieldKind::DURATION_NS => DURATION_UNITS,
            FieldKind::BYTES => BYTE_UNITS,
            _ => return None,
        };
        let (mut unit, mut divisor) = unit_for(units, typical);
        // The largest value stays within 5 digits: a column of µs whose top
        // rows are seconds reads in ms (`5571.20`, not `5571202`).
        let max = nz.last().copied().unwrap_or(0) as f64;
        while max / divisor >= 100_000.0 {
            match units.iter().find(|(_, d)| *d > divisor) {
                Some(&(u, d)) => (unit, divisor) = (u, d),
                None => break,
            }
        }
        let top = typical as f64 / divisor;
        let decimals = if divisor == 1.0 { 0 } else if top < 10.0 { 2 } else if top < 100.0 { 1 } else { 0 };
        Some(Scale { unit, divisor, decimals })
    }

    pub fn text(&self, n: u64) -> String {
        format!("{:.*}", self.decimals, n as f64 / self.divisor)
    }
}

/// A column's header: its name, and its unit when the cells do not carry it
/// (`cpu %`, `error rate %`; durations and sizes print their own unit).
pub fn column_label(c: &FieldSpec) -> String {
    let own_unit = matches!(c.kind, FieldKind::DURATION_NS | FieldKind::BYTES | FieldKind::MONO_TIME_NS);
    match c.unit.as_str() {
        "" | "1" => c.name.to_string(),
        _ if own_unit => c.name.to_string(),
        u => format!("{} {}", c.name, crate::text::escape_untrusted(u)),
    }
}

/// A value as text for a column of kind `kind`. Unknown kinds and variants fall
/// back to the raw value, never fail.
pub fn value_text(v: &FieldValue, kind: FieldKind, clock: &Clock) -> String {
    let Ok(v) = v.as_enum() else { return "?".into() };
    match (v, kind) {
        (Value::Missing, _) => "-".into(),
        (Value::U64(n), FieldKind::MONO_TIME_NS) => clock.hms_micros(*n),
        (Value::U64(n), FieldKind::DURATION_NS) => duration_ns(*n),
        (Value::U64(n), FieldKind::BYTES) => bytes(*n),
        (Value::U64(n), FieldKind::HEX) => format!("0x{n:x}"),
        (Value::I64(n), FieldKind::ERRNO_RESULT) if *n < 0 => errno_name(-n),
        (Value::U64(n), _) => n.to_string(),
        (Value::I64(n), _) => n.to_string(),
        (Value::F64(x), _) => format!("{x:.1}"),
        (Value::Str(s), _) => crate::text::escape_untrusted(s).into_owned(),
        (Value::Phases(ps), _) => {
            ps.iter().map(|p| format!("{} {}", crate::text::escape_untrusted(&p.name), duration_ns(p.ns))).collect::<Vec<_>>().join(", ")
        }
        _ => "?".into(),
    }
}

/// Nanoseconds as milliseconds, exactly (`0.0002`, `4.731`, `5000`): the plain
/// number of headless text, whose header says `(ms)`.
pub fn ns_as_ms(ns: u64) -> String {
    let mut s = format!("{}.{:06}", ns / 1_000_000, ns % 1_000_000);
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s
}

/// A value for headless text and TSV: plain numbers whose unit is in the
/// header ([`plain_header`]), so `awk` and `sort -n` can use them. Text
/// from the traced system is escaped (tabs too, so TSV stays TSV).
pub fn plain_text(value: &FieldValue, kind: FieldKind, clock: &Clock) -> String {
    let Ok(v) = value.as_enum() else { return "?".into() };
    match (v, kind) {
        (Value::U64(n), FieldKind::DURATION_NS) => ns_as_ms(*n),
        (Value::U64(n), FieldKind::BYTES) => n.to_string(),
        (Value::Phases(ps), _) => {
            ps.iter().map(|p| format!("{}:{}", crate::text::escape_untrusted(&p.name), ns_as_ms(p.ns))).collect::<Vec<_>>().join(",")
        }
        (Value::Str(s), _) if s.is_empty() => "-".into(),
        _ => value_text(value, kind, clock),
    }
}

/// The header of a column of plain values: its name in capitals, spaces as
/// `_`, with the unit the values are in (`LAT(ms)`, `CPU(%)`, `TX_BYTES`).
pub fn plain_header(c: &FieldSpec) -> String {
    let name = key_name(&c.name).to_uppercase();
    let unit = match c.kind {
        FieldKind::DURATION_NS | FieldKind::PHASES => "ms".to_string(),
        FieldKind::BYTES if name.contains("BYTES") => String::new(),
        FieldKind::BYTES => "B".to_string(),
        FieldKind::MONO_TIME_NS => String::new(),
        _ => match c.unit.as_str() {
            "" | "1" => String::new(),
            u => crate::text::escape_untrusted(u).into_owned(),
        },
    };
    if unit.is_empty() {
        name
    } else {
        format!("{name}({unit})")
    }
}

/// A column or field name as a key: lower-case letters, digits and `_`
/// (`in old` → `in_old`).
fn key_name(name: &str) -> String {
    let mut k: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    while k.contains("__") {
        k = k.replace("__", "_");
    }
    k.trim_matches('_').to_string()
}

/// A field's JSON key: its name with the unit of its number as a suffix
/// (`lifetime_ns`, `tx_bytes`, `cpu_pct`, `ts_mono_ns`), so a consumer never
/// guesses the unit. A name that already ends in its unit keeps it.
pub fn json_key(c: &FieldSpec) -> String {
    let name = key_name(&c.name);
    let suffix = match c.kind {
        FieldKind::DURATION_NS => "_ns",
        FieldKind::MONO_TIME_NS => "_mono_ns",
        FieldKind::BYTES => "_bytes",
        _ if c.unit.as_str() == "%" => "_pct",
        _ => "",
    };
    if suffix.is_empty() || name.ends_with(suffix) || (suffix == "_bytes" && name.starts_with("bytes")) {
        name
    } else {
        format!("{name}{suffix}")
    }
}

/// The unit of a column's JSON numbers: declared, or implied by its kind;
/// `None` for a plain count or text.
pub fn json_unit(c: &FieldSpec) -> Option<String> {
    match c.kind {
        FieldKind::DURATION_NS | FieldKind::MONO_TIME_NS | FieldKind::PHASES => Some("ns".into()),
        FieldKind::BYTES => Some("bytes".into()),
        _ => match c.unit.as_str() {
            "" | "1" => None,
            u => Some(u.to_string()),
        },
    }
}

/// A value as JSON. Monotonic timestamps stay numbers (the writer adds a wall
/// time); errno results stay numbers (the writer adds the errno name).
pub fn value_json(v: &FieldValue) -> serde_json::Value {
    match v.as_enum() {
        Ok(Value::U64(n)) => (*n).into(),
        Ok(Value::I64(n)) => (*n).into(),
        Ok(Value::F64(x)) => serde_json::Number::from_f64(*x).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null),
        Ok(Value::Str(s)) => s.as_str().into(),
        Ok(Value::Phases(ps)) => ps.iter().map(|p| serde_json::json!({"name": p.name.as_str(), "ns": p.ns})).collect(),
        _ => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_units_the_cells_do_not() {
        assert_eq!(column_label(&FieldSpec::new("cpu", FieldKind::F64, "%")), "cpu %");
        let ms = Scale::for_column(FieldKind::DURATION_NS, &[21_200, 6_350_000, 50_370_000]).unwrap();
        assert_eq!((ms.unit, ms.text(50_370_000), ms.text(6_350_000), ms.text(21_200)), ("ms", "50.37".into(), "6.35".into(), "0.02".into()));
        let ms = Scale::for_column(FieldKind::DURATION_NS, &[0, 212_000_000, 2_120_000_000, 21_200_000_000]).unwrap();
        assert_eq!((ms.unit, ms.text(21_200_000_000)), ("s", "21.20".to_string()), "typical 2.12 s");
        let ns = Scale::for_column(FieldKind::DURATION_NS, &[812]).unwrap();
        assert_eq!((ns.unit, ns.text(812)), ("ns", "812".to_string()));
        let kib = Scale::for_column(FieldKind::BYTES, &[200_192, 512, 4096]).unwrap();
        assert_eq!((kib.unit, kib.text(200_192), kib.text(512)), ("KiB", "195.50".to_string(), "0.50".to_string()));
        assert_eq!(Scale::for_column(FieldKind::BYTES, &[9]).unwrap().text(9), "9");
        assert_eq!(Scale::for_column(FieldKind::U64, &[9]), None);
        // Typically µs, but the top rows are seconds: ms, so no value needs
        // more than 5 digits before the point.
        let wide = Scale::for_column(FieldKind::DURATION_NS, &[5_571_202_000, 5_018_643_000, 1_001_000, 302_000, 241_000]).unwrap();
        assert_eq!((wide.unit, wide.text(5_571_202_000), wide.text(241_000)), ("ms", "5571.20".to_string(), "0.24".to_string()));
        assert_eq!(column_label(&FieldSpec::new("wait", FieldKind::DURATION_NS, "ns")), "wait", "cells say 1.2ms");
        assert_eq!(column_label(&FieldSpec::new("pid", FieldKind::U64, "")), "pid");
        assert_eq!(column_label(&FieldSpec::new("n", FieldKind::U64, "\x1b[31m")), "n \\x1b[31m", "escaped");
    }

    #[test]
    fn time_writer_writes_rfc3339_across_seconds_and_days() {
        let c = Clock::epoch();
        let mut w = TimeWriter::default();
        for (t, want) in [
            (0u64, "1970-01-01T00:00:00.000000000Z"),
            (5, "1970-01-01T00:00:00.000000005Z"),
            (999_999_999, "1970-01-01T00:00:00.999999999Z"),
            (1_000_000_000, "1970-01-01T00:00:01.000000000Z"),
            (1_000_000_001, "1970-01-01T00:00:01.000000001Z"),
            (86_399_999_999_999, "1970-01-01T23:59:59.999999999Z"),
            (86_400_000_000_000, "1970-01-02T00:00:00.000000000Z"),
            (1_795_000_000_123_456_789, "2026-11-18T11:06:40.123456789Z"),
            (1_795_000_000_000_000_007, "2026-11-18T11:06:40.000000007Z"),
        ] {
            let mut out = Vec::new();
            w.write(&c, t, &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn errnos_durations_bytes() {
        assert_eq!(errno_name(2), "ENOENT");
        assert_eq!(errno_name(13), "EACCES");
        assert_eq!(errno_name(111), "ECONNREFUSED");
        assert_eq!(errno_name(4000), "E4000");
        assert_eq!(duration_ns(812), "812ns");
        assert_eq!(duration_ns(3_250), "3.2µs");
        assert_eq!(duration_ns(2_500_000_000), "2.50s");
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(1536), "1.5KiB");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil_from_unix(1_795_386_079), (2026, 11, 22, 22, 21, 19));
        assert_eq!(civil_from_unix(951_782_400), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn values_by_kind() {
        let c = Clock::epoch();
        assert_eq!(value_text(&Value::i64(-2), FieldKind::ERRNO_RESULT, &c), "ENOENT");
        assert_eq!(value_text(&Value::i64(3), FieldKind::ERRNO_RESULT, &c), "3");
        assert_eq!(value_text(&Value::u64(1_500_000_000), FieldKind::MONO_TIME_NS, &c), "00:00:01.500000");
        assert_eq!(value_text(&Value::missing(), FieldKind::U64, &c), "-");
        assert_eq!(value_text(&Value::u64(255), FieldKind(200), &c), "255");
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn a_wall_clock_step_moves_later_times_once_resampled() {
        let clock = Clock::now();
        let mono = Clock::monotonic_now_ns();
        let before = clock.to_unix_ns(mono);
        // As if the wall clock had been stepped one hour ahead meanwhile.
        let real = Clock::resample();
        Clock::set_offset(real + 3_600_000_000_000);
        assert_eq!(clock.to_unix_ns(mono) - before, 3_600_000_000_000 + (real - (before - mono as i128)));
        Clock::resample();
        assert!((clock.to_unix_ns(mono) - before).abs() < 1_000_000_000);
        assert_eq!(Clock::epoch().to_unix_ns(5), 5);
    }
}
