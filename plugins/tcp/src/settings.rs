//! `[plugins.tcp]` settings and the bytes of `struct tcp_filter`.

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

pub const FILTER_SIZE: usize = 24;

impl Settings {
    pub fn parse(json: &str) -> Result<Settings, String> {
        let s: Settings = tracer_plugin_kit::parse_settings(json)?;
        if s.ports.len() > 8 {
            return Err(format!("ports: at most 8 ports, got {}", s.ports.len()));
        }
        if let Some(f) = &s.family {
            if f != "ipv4" && f != "ipv6" {
                return Err(format!("family: {f:?} is not \"ipv4\" or \"ipv6\""));
            }
        }
        Ok(s)
    }

    pub fn filter_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; FILTER_SIZE];
        b[0..4].copy_from_slice(&self.pid.unwrap_or(0).to_ne_bytes());
        let family: u16 = match self.family.as_deref() {
            Some("ipv4") => 2,
            Some("ipv6") => 10,
            _ => 0,
        };
        b[4..6].copy_from_slice(&family.to_ne_bytes());
        b[6] = self.ports.len() as u8;
        b[7] = self.transitions as u8;
        for (i, p) in self.ports.iter().enumerate() {
            b[8 + 2 * i..10 + 2 * i].copy_from_slice(&p.to_ne_bytes());
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_to_filter() {
        let b = Settings::parse(r#"{"ports": [80, 443], "family": "ipv6"}"#).unwrap().filter_bytes();
        assert_eq!(&b[4..6], &10u16.to_ne_bytes());
        assert_eq!((b[6], b[7]), (2, 1));
        assert_eq!(&b[10..12], &443u16.to_ne_bytes());
        assert!(Settings::parse(r#"{"family": "ipx"}"#).unwrap_err().starts_with("family:"));
        assert!(Settings::parse(r#"{"ports": [1,2,3,4,5,6,7,8,9]}"#).unwrap_err().starts_with("ports:"));
        assert_eq!(Settings::parse(r#"{"transitions": false}"#).unwrap().filter_bytes()[7], 0);
    }
}
