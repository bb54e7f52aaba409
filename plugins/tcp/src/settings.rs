//! `[plugins.tcp]` settings and the bytes of `struct tcp_filter`.

use crate::types::{tcp_filter, TCP_MAX_PORTS};
use tracer_plugin_api::{SettingKind, SettingSpec};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Only connections owned by this process (tgid).
    pub pid: Option<u32>,
    /// Only connections owned by a process of this name.
    pub comm: Option<String>,
    /// Also the host's own connections (an exporter's, say).
    #[serde(default)]
    pub include_self: bool,
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
    let mut v = tracer_plugin_kit::settings::proc_filter_specs();
    for s in v.iter_mut() {
        // The owner of a connection: the process that connected, accepted or closed it.
        s.help = s.help.replace("only this process", "only connections owned by this process").replace("only tasks with", "only connections owned by a process with").into();
    }
    v.extend([
        tracer_plugin_kit::settings::ports_spec(TCP_MAX_PORTS as usize),
        SettingSpec::new("family", SettingKind::CHOICE, "only this address family (v4-mapped IPv6 counts as ipv6)").choices(&["ipv4", "ipv6"]),
        SettingSpec::new("transitions", SettingKind::BOOL, "stream every state transition (closes are always streamed)").default_value("true"),
    ]);
    v
}

impl Settings {
    pub fn parse(json: &str) -> Result<Settings, String> {
        let s: Settings = tracer_plugin_kit::parse_settings(json)?;
        tracer_plugin_kit::check_comm_and_pid(s.comm.as_deref(), s.pid)?;
        tracer_plugin_kit::settings::check_ports(&s.ports, TCP_MAX_PORTS as usize)?;
        if let Some(f) = &s.family {
            if f != "ipv4" && f != "ipv6" {
                return Err(format!("family: {f:?} is not \"ipv4\" or \"ipv6\""));
            }
        }
        Ok(s)
    }

    /// `struct tcp_filter` as bytes; `self_pid` is the host's own pid.
    pub fn filter_bytes(&self, self_pid: u32) -> Vec<u8> {
        let family = match self.family.as_deref() {
            Some("ipv4") => crate::record::AF_INET,
            Some("ipv6") => crate::record::AF_INET6,
            _ => 0,
        };
        let proc = tracer_plugin_kit::proc_filter(self.pid, self.comm.as_deref(), self.include_self, self_pid, tracer_plugin_kit::next_filter_gen());
        let mut f = tcp_filter { proc, family, nports: self.ports.len() as u8, transitions: self.transitions as u8, ..Default::default() };
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
        let f: tcp_filter = tracer_plugin_kit::read(&Settings::parse(r#"{"ports": [80, 443], "family": "ipv6"}"#).unwrap().filter_bytes(77)).unwrap();
        assert_eq!((f.proc.pid, f.proc.has_comm, f.proc.exclude_pid), (0, 0, 77), "the host left out, nothing else");
        assert_eq!((f.family, f.nports, f.transitions), (10, 2, 1));
        assert_eq!(f.ports[..3], [80, 443, 0]);
        assert!(Settings::parse(r#"{"family": "ipx"}"#).unwrap_err().starts_with("family:"));
        assert!(Settings::parse(r#"{"ports": [1,2,3,4,5,6,7,8,9]}"#).unwrap_err().starts_with("ports:"));
        let f: tcp_filter = tracer_plugin_kit::read(&Settings::parse(r#"{"transitions": false, "comm": "curl", "pid": 9, "include_self": true}"#).unwrap().filter_bytes(77)).unwrap();
        assert_eq!(f.transitions, 0);
        assert_eq!((f.proc.pid, f.proc.has_comm, &f.proc.comm[..5], f.proc.exclude_pid), (9, 1, &b"curl\0"[..], 0));
        assert!(Settings::parse(r#"{"comm": ""}"#).unwrap_err().starts_with("comm:"));
    }
}
