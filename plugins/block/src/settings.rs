//! `[plugins.block]` settings and the bytes of `struct block_filter`.

use crate::types::block_filter;
use serde::Deserialize;
use tracer_plugin_api::{SettingKind, SettingSpec};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Only I/O submitted by this process (tgid).
    pub pid: Option<u32>,
    /// Only I/O submitted by tasks with exactly this name.
    pub comm: Option<String>,
    pub uid: Option<u32>,
    #[serde(default)]
    pub include_self: bool,
    /// Only this disk, as `MAJOR:MINOR` (what `lsblk` and /proc/diskstats show).
    pub disk: Option<String>,
}

/// The keys above, for the host.
pub fn specs() -> Vec<SettingSpec> {
    let mut v = tracer_plugin_kit::settings::proc_filter_specs();
    v.push(tracer_plugin_kit::settings::uid_spec());
    v.push(SettingSpec::new("disk", SettingKind::STRING, "only this disk, as MAJOR:MINOR (lsblk's MAJ:MIN, e.g. 7:0)").range(3, 21));
    v
}

/// `MAJOR:MINOR` as the kernel's dev_t (major << 20 | minor).
pub fn parse_dev(s: &str) -> Result<u32, String> {
    let bad = || format!("disk: {s:?} is not MAJOR:MINOR (as lsblk's MAJ:MIN column shows, e.g. 7:0)");
    let (ma, mi) = s.split_once(':').ok_or_else(bad)?;
    let ma: u32 = ma.trim().parse().map_err(|_| bad())?;
    let mi: u32 = mi.trim().parse().map_err(|_| bad())?;
    // The kernel's dev_t: 12 bits of major, 20 of minor.
    if ma == 0 || ma >= 1 << 12 || mi >= 1 << 20 {
        return Err(format!("disk: {s:?}: the major must be 1 to 4095 and the minor below 1048576"));
    }
    Ok(ma << 20 | mi)
}

/// dev_t as `MAJOR:MINOR`.
pub fn dev_name(dev: u32) -> String {
    format!("{}:{}", dev >> 20, dev & 0xfffff)
}

impl Settings {
    pub fn parse(json: &str) -> Result<Settings, String> {
        let s: Settings = tracer_plugin_kit::parse_settings(json)?;
        tracer_plugin_kit::check_comm_and_pid(s.comm.as_deref(), s.pid)?;
        if let Some(d) = &s.disk {
            parse_dev(d)?;
        }
        Ok(s)
    }

    pub fn filter_bytes(&self, self_pid: u32, gen: u32) -> Vec<u8> {
        let f = block_filter {
            proc: tracer_plugin_kit::proc_filter(self.pid, self.comm.as_deref(), self.include_self, self_pid, gen),
            uid: tracer_plugin_kit::uid_filter(self.uid),
            dev: self.disk.as_deref().map(|d| parse_dev(d).unwrap_or(0)).unwrap_or(0),
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
        let b = Settings::parse(r#"{"pid": 9, "disk": "7:3"}"#).unwrap().filter_bytes(5, 1);
        let f: block_filter = tracer_plugin_kit::read(&b).unwrap();
        assert_eq!((f.proc.pid, f.proc.exclude_pid, f.dev), (9, 5, 7 << 20 | 3));
        assert_eq!(dev_name(f.dev), "7:3");
        assert!(Settings::parse(r#"{"disk": "loop3"}"#).unwrap_err().starts_with("disk: \"loop3\" is not MAJOR:MINOR"));
        assert!(Settings::parse(r#"{"disk": "0:1"}"#).unwrap_err().contains("major"));
        assert!(Settings::parse(r#"{"disk": "5000:1"}"#).is_err());
        assert!(Settings::parse(r#"{"disks": "7:0"}"#).is_err());
    }
}
