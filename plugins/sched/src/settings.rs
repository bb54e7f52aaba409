//! `[plugins.sched]` settings and the bytes of `struct sched_filter`.

use crate::types::sched_filter;
use serde::Deserialize;
use tracer_plugin_api::{SettingKind, SettingSpec};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Only this process (tgid).
    pub pid: Option<u32>,
    /// Only tasks with exactly this comm.
    pub comm: Option<String>,
    /// Also account tracer-host itself.
    #[serde(default)]
    pub include_self: bool,
    /// Histograms since start (`cumulative`, default) or per refresh (`interval`).
    #[serde(default)]
    pub mode: Mode,
    /// Whose run-queue latency the `runq_process` panel shows (default: the
    /// process that waited longest in total).
    pub histogram_pid: Option<u32>,
}

pub use tracer_plugin_kit::settings::Mode;

/// The keys above, for the host.
pub fn specs() -> Vec<SettingSpec> {
    let mut v = tracer_plugin_kit::settings::proc_filter_specs();
    v.push(tracer_plugin_kit::settings::mode_spec());
    v.push(SettingSpec::new("histogram_pid", SettingKind::UINT, "whose run-queue latency runq_process shows (default: the longest waiter)").range(1, u32::MAX as u64));
    v
}

impl Settings {
    pub fn parse(json: &str) -> Result<Settings, String> {
        let s: Settings = tracer_plugin_kit::parse_settings(json)?;
        tracer_plugin_kit::check_comm_and_pid(s.comm.as_deref(), s.pid)?;
        Ok(s)
    }

    pub fn filter_bytes(&self, self_pid: u32, gen: u32) -> Vec<u8> {
        let f = sched_filter { proc: tracer_plugin_kit::proc_filter(self.pid, self.comm.as_deref(), self.include_self, self_pid, gen) };
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
        let b = Settings::parse(r#"{"pid": 9, "comm": "pp"}"#).unwrap().filter_bytes(5, 1);
        let f: sched_filter = tracer_plugin_kit::read(&b).unwrap();
        assert_eq!((f.proc.pid, f.proc.exclude_pid, f.proc.has_comm, f.proc.gen), (9, 5, 1, 1));
        assert_eq!(&f.proc.comm[..3], b"pp\0");
        assert!(Settings::parse(r#"{"comm": ""}"#).is_err());
        assert!(Settings::parse(r#"{"pid": 0}"#).unwrap_err().starts_with("pid:"));
    }
}
