//! `[plugins.syscall_latency]` settings and the bytes of `struct sc_filter`.

use crate::syscall_names::NAMES;
use serde::Deserialize;

pub use tracer_plugin_kit::settings::Mode;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub pid: Option<u32>,
    pub comm: Option<String>,
    /// Only these syscalls, by name.
    #[serde(default)]
    pub syscalls: Vec<String>,
    #[serde(default)]
    pub mode: Mode,
    /// Also count per (process, syscall), like syscount -P. Off by default: it
    /// is the most expensive part of the per-syscall path.
    #[serde(default)]
    pub per_process: bool,
    /// Also trace tracer-host's own syscalls (its map reads would otherwise
    /// show up as `bpf` calls).
    #[serde(default)]
    pub include_self: bool,
    /// The syscall whose histogram the `histogram` panel shows (default: the one
    /// with the most total time). Named `histogram_<column>` so the UI's Enter
    /// on a row of a syscall column sets it (`common_names::HISTOGRAM_PREFIX`).
    /// A list, or one name (the form Enter and older configs write).
    #[serde(default, deserialize_with = "one_or_many")]
    pub histogram_syscall: Vec<String>,
    /// Count only calls that took at least this long (µs): the tables and
    /// the histogram then show slow calls alone (0: every call).
    #[serde(default)]
    pub min_latency_us: u64,
}

use crate::types::sc_filter;
use tracer_plugin_api::{SettingKind, SettingSpec};

/// A string or a list of strings, as a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

pub fn syscall_nr(name: &str) -> Option<u32> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

pub fn syscall_name(nr: u32) -> String {
    match NAMES.get(nr as usize) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => format!("syscall_{nr}"),
    }
}

/// The keys above, for the host.
pub fn specs() -> Vec<SettingSpec> {
    let mut v = tracer_plugin_kit::settings::proc_filter_specs();
    v.push(SettingSpec::new("syscalls", SettingKind::STRING_LIST, "only these syscalls, by name").alias("syscall"));
    v.push(tracer_plugin_kit::settings::mode_spec());
    v.push(SettingSpec::new("per_process", SettingKind::BOOL, "also count per process and syscall (syscount -P; costs more per call)").default_value("false"));
    v.push(
        SettingSpec::new(
            "histogram_syscall",
            SettingKind::STRING_LIST,
            "the syscalls the histogram panels show, in order: histogram, histogram_2, histogram_3 (default: most total time first; Enter on a syscall row sets the first)",
        )
            .alias("histogram"),
    );
    v.push(
        SettingSpec::new("min_latency_us", SettingKind::UINT, "count only calls at least this long, in µs (slow calls only; 0: all)")
            .range(0, 3_600_000_000)
            .default_value("0")
            .alias("min_us"),
    );
    v
}

impl Settings {
    pub fn parse(json: &str) -> Result<Settings, String> {
        let s: Settings = tracer_plugin_kit::parse_settings(json)?;
        tracer_plugin_kit::check_comm_and_pid(s.comm.as_deref(), s.pid)?;
        for n in s.syscalls.iter().chain(s.histogram_syscall.iter()) {
            if syscall_nr(n).is_none() {
                return Err(format!("syscalls: unknown syscall {n:?} on this architecture"));
            }
        }
        Ok(s)
    }

    /// `struct sc_filter`; `self_pid` is the host's own pid, `gen` the filter
    /// generation (syscalls in flight under another one are not counted, and
    /// the per-syscall maximum starts again).
    pub fn filter_bytes(&self, self_pid: u32, gen: u32) -> Vec<u8> {
        let mut f = sc_filter {
            proc: tracer_plugin_kit::proc_filter(self.pid, self.comm.as_deref(), self.include_self, self_pid, gen),
            per_process: self.per_process as u8,
            has_syscalls: !self.syscalls.is_empty() as u8,
            min_ns: self.min_latency_us.saturating_mul(1000),
            ..Default::default()
        };
        for n in &self.syscalls {
            let nr = syscall_nr(n).unwrap() as usize;
            f.syscalls[nr / 64] |= 1 << (nr % 64);
        }
        tracer_plugin_kit::bytes_of(&f).to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_settings_are_the_parsed_ones() {
        tracer_plugin_kit::test_support::assert_settings_declared(&specs(), |j| Settings::parse(j).map(|_| ()));
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(syscall_nr("read"), Some(0));
        assert_eq!(syscall_nr("getppid"), Some(110));
        assert_eq!(syscall_name(110), "getppid");
        assert_eq!(syscall_name(4000), "syscall_4000");
    }

    #[test]
    fn syscall_list_becomes_a_bitmap() {
        let s = Settings::parse(r#"{"syscalls": ["read", "getppid"], "comm": "x"}"#).unwrap();
        let f: sc_filter = tracer_plugin_kit::read(&s.filter_bytes(77, 1)).unwrap();
        assert_eq!((f.proc.exclude_pid, f.proc.has_comm, f.has_syscalls), (77, 1, 1));
        // read = 0, getppid = 110: word 1, bit 46 (the BPF side tests
        // syscalls[nr / 64] & (1 << (nr % 64)))
        assert_eq!(f.syscalls[0], 1);
        assert_eq!(f.syscalls[1], 1 << 46);
        assert_eq!(&f.proc.comm[..2], b"x\0");
    }

    #[test]
    fn the_histogram_syscalls_are_one_name_or_a_list() {
        assert_eq!(Settings::parse(r#"{"histogram_syscall": "read"}"#).unwrap().histogram_syscall, ["read"]);
        assert_eq!(Settings::parse(r#"{"histogram_syscall": ["read", "write"]}"#).unwrap().histogram_syscall, ["read", "write"]);
        assert!(Settings::parse(r#"{"histogram_syscall": ["reed"]}"#).unwrap_err().contains("unknown syscall \"reed\""));
    }

    #[test]
    fn bad_settings_name_the_key() {
        assert!(Settings::parse(r#"{"syscalls": ["reed"]}"#).unwrap_err().contains("unknown syscall \"reed\""));
        assert!(Settings::parse(r#"{"mode": "sometimes"}"#).unwrap_err().contains("unknown variant"));
        assert!(Settings::parse(r#"{"pidd": 1}"#).unwrap_err().contains("unknown field `pidd`"));
    }
}
