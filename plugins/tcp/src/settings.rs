//! `[plugins.tcp]` settings and the bytes of `struct tcp_filter`.

use crate::types::{tcp_filter, TCP_MAX_PORTS};
use tracer_plugin_api::{SettingKind, SettingSpec};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Only connections owned by this process (tgid).
    pub pid: Option<u32>,
    /// Only connections with one of these ports, local or remote (at most 8).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Only `ipv4` or `ipv6` (as the socket's family: v4-mapped IPv6 is ipv6 here).
    pub family: Option<String>,
    /// Stream every state transition (tcpstates); closes are always streamed.
    #[serde(default = "yes")]
    pub transitions: bool,
}

fn yes() -> bool {
    true
}

/// The keys above, for the host.
pub fn specs() -> Vec<SettingSpec> {
    vec![
        SettingSpec::new("pid", SettingKind::UINT, "only connections owned by this process (tgid)").range(1, u32::MAX as u64),
        SettingSpec::new("ports", SettingKind::UINT_LIST, "only connections with one of these ports, local or remote (at most 8)").range(1, 65535).alias("port"),
        SettingSpec::new("family", SettingKind::CHOICE, "only this address family (v4-mapped IPv6 counts as ipv6)").choices(&["ipv4", "ipv6"]),
        SettingSpec::new("transitions", SettingKind::BOOL, "stream every state transition (closes are always streamed)").default_value("true"),
    ]
}

impl Settings {
    pub fn parse(json: &str) -> Result<Settings, String> {
        let s: Settings = tracer_plugin_kit::parse_settings(json)?;
        if s.ports.len() > TCP_MAX_PORTS as usize {
            return Err(format!("ports: at most {TCP_MAX_PORTS} ports, got {}", s.ports.len()));
        }
        if let Some(f) = &s.family {
            if f != "ipv4" && f != "ipv6" {
                return Err(format!("family: {f:?} is not \"ipv4\" or \"ipv6\""));
            }
        }
        Ok(s)
    }

    pub fn filter_bytes(&self) -> Vec<u8> {
        let family = match self.family.as_deref() {
            Some("ipv4") => crate::record::AF_INET,
            Some("ipv6") => crate::record::AF_INET6,
            _ => 0,
        };
        let mut f = tcp_filter { pid: self.pid.unwrap_or(0), family, nports: self.ports.len() as u8, transitions: self.transitions as u8, ..Default::default() };
        f.ports[..self.ports.len()].copy_from_slice(&self.ports);
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
        let f: tcp_filter = tracer_plugin_kit::read(&Settings::parse(r#"{"ports": [80, 443], "family": "ipv6"}"#).unwrap().filter_bytes()).unwrap();
        assert_eq!((f.family, f.nports, f.transitions), (10, 2, 1));
        assert_eq!(f.ports[..3], [80, 443, 0]);
        assert!(Settings::parse(r#"{"family": "ipx"}"#).unwrap_err().starts_with("family:"));
        assert!(Settings::parse(r#"{"ports": [1,2,3,4,5,6,7,8,9]}"#).unwrap_err().starts_with("ports:"));
        let f: tcp_filter = tracer_plugin_kit::read(&Settings::parse(r#"{"transitions": false}"#).unwrap().filter_bytes()).unwrap();
        assert_eq!(f.transitions, 0);
    }
}
