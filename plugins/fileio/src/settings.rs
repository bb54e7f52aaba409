//! `[plugins.fileio]` settings and the bytes of `struct fileio_filter`.

use crate::types::fileio_filter;
use serde::Deserialize;
use tracer_plugin_api::{SettingKind, SettingSpec};

/// fileslower's default threshold.
pub const DEFAULT_MIN_LATENCY_US: u64 = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub uid: Option<u32>,
    #[serde(default)]
    pub include_self: bool,
    /// Stream calls at least this long; 0: none.
    #[serde(default = "default_min_latency_us")]
    pub min_latency_us: u64,
    /// Also sockets, pipes and terminals.
    #[serde(default)]
    pub all_files: bool,
}

fn default_min_latency_us() -> u64 {
    DEFAULT_MIN_LATENCY_US
}

/// The keys above, for the host.
pub fn specs() -> Vec<SettingSpec> {
    let mut v = tracer_plugin_kit::settings::proc_filter_specs();
    v.push(tracer_plugin_kit::settings::uid_spec());
    v.push(
        SettingSpec::new("min_latency_us", SettingKind::UINT, "list each call at least this long, in µs, in the slow calls panel and the record stream (0: none)")
            .default_value(&DEFAULT_MIN_LATENCY_US.to_string()),
    );
    v.push(SettingSpec::new("all_files", SettingKind::BOOL, "also count sockets, pipes and terminals (default: regular files and block devices)").default_value("false"));
    v
}

impl Settings {
    pub fn parse(json: &str) -> Result<Settings, String> {
        let s: Settings = tracer_plugin_kit::parse_settings(json)?;
        tracer_plugin_kit::check_comm_and_pid(s.comm.as_deref(), s.pid)?;
        Ok(s)
    }

    pub fn filter_bytes(&self, self_pid: u32, gen: u32) -> Vec<u8> {
        let f = fileio_filter {
            proc: tracer_plugin_kit::proc_filter(self.pid, self.comm.as_deref(), self.include_self, self_pid, gen),
            uid: tracer_plugin_kit::uid_filter(self.uid),
            min_ns: self.min_latency_us.saturating_mul(1000),
            all_files: self.all_files as u32,
            ..Default::default()
        };
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
    fn settings_to_filter() {
        let f: fileio_filter = tracer_plugin_kit::read(&Settings::parse(r#"{"comm": "pg", "min_latency_us": 250, "all_files": true}"#).unwrap().filter_bytes(5, 2)).unwrap();
        assert_eq!((f.proc.has_comm, f.proc.exclude_pid, f.proc.gen, f.min_ns, f.all_files), (1, 5, 2, 250_000, 1));
        let f: fileio_filter = tracer_plugin_kit::read(&Settings::parse("{}").unwrap().filter_bytes(5, 2)).unwrap();
        assert_eq!((f.min_ns, f.all_files), (10_000_000, 0), "10 ms and files only by default");
        assert!(Settings::parse(r#"{"min_latency_ms": 5}"#).unwrap_err().contains("min_latency_ms"));
    }
}
