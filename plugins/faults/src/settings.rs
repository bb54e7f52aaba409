//! `[plugins.faults]` settings and the bytes of `struct faults_filter`.

use crate::types::faults_filter;
use serde::Deserialize;
use tracer_plugin_api::{SettingKind, SettingSpec};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub uid: Option<u32>,
    #[serde(default)]
    pub include_self: bool,
    /// Find the kind of mapping each fault hit (file-backed or anonymous).
    #[serde(default)]
    pub mappings: bool,
}

/// The keys above, for the host.
pub fn specs() -> Vec<SettingSpec> {
    let mut v = tracer_plugin_kit::settings::proc_filter_specs();
    v.push(tracer_plugin_kit::settings::uid_spec());
    v.push(
        SettingSpec::new("mappings", SettingKind::BOOL, "also find whether each fault hit a file-backed or an anonymous mapping (bpf_find_vma; costs ~6 us a fault)")
            .default_value("false"),
    );
    v
}

impl Settings {
    pub fn parse(json: &str) -> Result<Settings, String> {
        let s: Settings = tracer_plugin_kit::parse_settings(json)?;
        tracer_plugin_kit::check_comm_and_pid(s.comm.as_deref(), s.pid)?;
        Ok(s)
    }

    pub fn filter_bytes(&self, self_pid: u32, gen: u32) -> Vec<u8> {
        let f = faults_filter {
            proc: tracer_plugin_kit::proc_filter(self.pid, self.comm.as_deref(), self.include_self, self_pid, gen),
            uid: tracer_plugin_kit::uid_filter(self.uid),
            mappings: self.mappings as u32,
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
        let f: faults_filter = tracer_plugin_kit::read(&Settings::parse(r#"{"comm": "java", "mappings": true}"#).unwrap().filter_bytes(5, 2)).unwrap();
        assert_eq!((f.proc.has_comm, f.proc.exclude_pid, f.proc.gen, f.mappings), (1, 5, 2, 1));
        let f: faults_filter = tracer_plugin_kit::read(&Settings::parse("{}").unwrap().filter_bytes(5, 2)).unwrap();
        assert_eq!(f.mappings, 0, "off by default");
    }
}
