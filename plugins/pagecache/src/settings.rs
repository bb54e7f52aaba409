//! `[plugins.pagecache]` settings and the bytes of `struct pagecache_filter`.

use crate::types::pagecache_filter;
use serde::Deserialize;
use tracer_plugin_api::SettingSpec;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub uid: Option<u32>,
    #[serde(default)]
    pub include_self: bool,
}

/// The keys above, for the host.
pub fn specs() -> Vec<SettingSpec> {
    let mut v = tracer_plugin_kit::settings::proc_filter_specs();
    v.push(tracer_plugin_kit::settings::uid_spec());
    v
}

impl Settings {
    pub fn parse(json: &str) -> Result<Settings, String> {
        let s: Settings = tracer_plugin_kit::parse_settings(json)?;
        tracer_plugin_kit::check_comm_and_pid(s.comm.as_deref(), s.pid)?;
        Ok(s)
    }

    pub fn filter_bytes(&self, self_pid: u32, gen: u32) -> Vec<u8> {
        let f = pagecache_filter {
            proc: tracer_plugin_kit::proc_filter(self.pid, self.comm.as_deref(), self.include_self, self_pid, gen),
            uid: tracer_plugin_kit::uid_filter(self.uid),
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
        let f: pagecache_filter = tracer_plugin_kit::read(&Settings::parse(r#"{"uid": 0, "comm": "pg"}"#).unwrap().filter_bytes(5, 2)).unwrap();
        assert_eq!((f.uid.uid, f.uid.has_uid, f.proc.has_comm, f.proc.exclude_pid), (0, 1, 1, 5));
        let f: pagecache_filter = tracer_plugin_kit::read(&Settings::parse("{}").unwrap().filter_bytes(5, 2)).unwrap();
        assert_eq!(f.uid.has_uid, 0, "no uid filter by default");
    }
}
