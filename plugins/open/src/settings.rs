//! The plugin's settings (`[plugins.open]` in the config) and the bytes of
//! `struct open_filter` (bpf/opensnoop.h) they become.

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

pub const FILTER_SIZE: usize = 40;

impl OpenSettings {
    pub fn parse(json: &str) -> Result<Self, String> {
        let s: OpenSettings = tracer_plugin_kit::parse_settings(json)?;
        tracer_plugin_kit::check_comm_and_pid(s.comm.as_deref(), s.pid)?;
        Ok(s)
    }

    /// `struct open_filter` as bytes; `self_pid` is the host's own pid, `gen`
    /// the filter generation.
    pub fn filter_bytes(&self, self_pid: u32, gen: u32) -> Vec<u8> {
        let mut b = vec![0u8; FILTER_SIZE];
        b[..32].copy_from_slice(&tracer_plugin_kit::proc_filter_bytes(self.pid, self.comm.as_deref(), self.include_self, self_pid, gen));
        b[32..36].copy_from_slice(&self.uid.unwrap_or(0).to_ne_bytes());
        b[36] = self.uid.is_some() as u8;
        b[37] = self.failed_only as u8;
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_settings_filter_nothing_but_self() {
        let b = OpenSettings::parse("{}").unwrap().filter_bytes(77, 3);
        assert_eq!(&b[4..8], &77u32.to_ne_bytes());
        assert_eq!(&b[12..16], &3u32.to_ne_bytes());
        assert!(b.iter().enumerate().all(|(i, &x)| (4..8).contains(&i) || (12..16).contains(&i) || x == 0));
    }

    #[test]
    fn every_setting_lands_in_its_field() {
        let s = OpenSettings::parse(
            r#"{"pid": 5, "uid": 0, "comm": "bash", "failed_only": true, "include_self": true}"#,
        )
        .unwrap();
        let b = s.filter_bytes(77, 1);
        assert_eq!(&b[0..4], &5u32.to_ne_bytes());
        assert_eq!(&b[4..8], &0u32.to_ne_bytes());
        assert_eq!(b[8], 1);
        assert_eq!(&b[16..21], b"bash\0");
        assert_eq!(&b[32..36], &0u32.to_ne_bytes());
        assert_eq!((b[36], b[37]), (1, 1));
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
