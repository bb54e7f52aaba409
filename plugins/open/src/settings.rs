//! The plugin's settings (`[plugins.open]` in the config) and the bytes of
//! `struct open_filter` (bpf/opensnoop.h) they become.

use crate::types::open_filter;
use tracer_plugin_api::{SettingKind, SettingSpec};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpenSettings {
    /// Only this process (tgid).
    pub pid: Option<u32>,
    pub uid: Option<u32>,
    /// Only tasks with exactly this comm (at most 15 bytes).
    pub comm: Option<String>,
    /// Only failed opens.
    #[serde(default)]
    pub failed_only: bool,
    /// Also trace the host's own opens (off by default: the host reading /proc
    /// for its UI would otherwise feed the stream it shows).
    #[serde(default)]
    pub include_self: bool,
}

/// The keys above, for the host.
pub fn specs() -> Vec<SettingSpec> {
    let mut v = tracer_plugin_kit::settings::proc_filter_specs();
    v.push(SettingSpec::new(tracer_plugin_api::common_names::UID, SettingKind::UINT, "only opens by this real uid").range(0, u32::MAX as u64));
    v.push(SettingSpec::new("failed_only", SettingKind::BOOL, "only opens that failed").default_value("false"));
    v
}

impl OpenSettings {
    pub fn parse(json: &str) -> Result<Self, String> {
        let s: OpenSettings = tracer_plugin_kit::parse_settings(json)?;
        tracer_plugin_kit::check_comm_and_pid(s.comm.as_deref(), s.pid)?;
        Ok(s)
    }

    /// `struct open_filter` as bytes; `self_pid` is the host's own pid, `gen`
    /// the filter generation.
    pub fn filter_bytes(&self, self_pid: u32, gen: u32) -> Vec<u8> {
        let f = open_filter {
            proc: tracer_plugin_kit::proc_filter(self.pid, self.comm.as_deref(), self.include_self, self_pid, gen),
            uid: self.uid.unwrap_or(0),
            has_uid: self.uid.is_some() as u8,
            failed_only: self.failed_only as u8,
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
        tracer_plugin_kit::test_support::assert_settings_declared(&specs(), |j| OpenSettings::parse(j).map(|_| ()));
    }

    #[test]
    fn empty_settings_filter_nothing_but_self() {
        let b = OpenSettings::parse("{}").unwrap().filter_bytes(77, 3);
        let f: open_filter = tracer_plugin_kit::read(&b).unwrap();
        assert_eq!((f.proc.exclude_pid, f.proc.gen), (77, 3));
        let mut expect = open_filter::default();
        expect.proc.exclude_pid = 77;
        expect.proc.gen = 3;
        assert_eq!(b, tracer_plugin_kit::bytes_of(&expect), "nothing else set");
    }

    #[test]
    fn every_setting_lands_in_its_field() {
        let s = OpenSettings::parse(
            r#"{"pid": 5, "uid": 0, "comm": "bash", "failed_only": true, "include_self": true}"#,
        )
        .unwrap();
        let f: open_filter = tracer_plugin_kit::read(&s.filter_bytes(77, 1)).unwrap();
        assert_eq!((f.proc.pid, f.proc.exclude_pid, f.proc.has_comm), (5, 0, 1));
        assert_eq!(&f.proc.comm[..5], b"bash\0");
        assert_eq!((f.uid, f.has_uid, f.failed_only), (0, 1, 1));
    }

    #[test]
    fn bad_settings_name_the_key() {
        let e = OpenSettings::parse(r#"{"pidd": 5}"#).unwrap_err();
        assert!(e.contains("unknown field `pidd`"), "{e}");
        let e = OpenSettings::parse(r#"{"pid": "x"}"#).unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        let e = OpenSettings::parse(r#"{"comm": "a-very-long-command-name"}"#).unwrap_err();
        assert!(e.starts_with("comm:"), "{e}");
    }
}
