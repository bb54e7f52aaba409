//! `[plugins.http]` settings and the bytes of `struct http_filter`.

use crate::types::{http_filter, HTTP_CAPTURE_MAX, HTTP_PORTS_MAX};
use serde::Deserialize;
use tracer_plugin_api::{SettingKind, SettingSpec};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub uid: Option<u32>,
    #[serde(default)]
    pub include_self: bool,
    /// Only connections with one of these ports, local or remote.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Head bytes captured per transfer.
    #[serde(default = "default_capture")]
    pub capture_bytes: u32,
    /// Routes kept apart; the rest are counted as `other`.
    #[serde(default = "default_routes")]
    pub max_routes: u32,
    /// Connections followed in user space at once.
    #[serde(default = "default_conns")]
    pub max_connections: u32,
    /// Plaintext of OpenSSL's connections (uprobes on libssl).
    #[serde(default = "yes")]
    pub tls: bool,
    /// Connections followed, in per cent (picked in the kernel by a hash).
    #[serde(default = "hundred")]
    pub sample_percent: u32,
    /// Only requests with one of these methods.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Only requests whose path starts with one of these.
    #[serde(default)]
    pub path_prefixes: Vec<String>,
    /// Only responses with one of these statuses: codes (`404`) or classes (`5xx`).
    #[serde(default)]
    pub status: Vec<String>,
    /// Only requests at least this slow.
    #[serde(default)]
    pub min_latency_ms: u64,
}

fn hundred() -> u32 {
    100
}

/// The user-space filters of the settings, on whole exchanges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    pub methods: Vec<String>,
    pub path_prefixes: Vec<String>,
    /// (code, or class × 100 with `class` set)
    pub status: Vec<(u16, bool)>,
    pub min_latency_ns: u64,
}

impl Filters {
    pub fn keeps(&self, x: &crate::conn::Exchange) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(&x.method)))
            && (self.path_prefixes.is_empty() || self.path_prefixes.iter().any(|p| x.path.starts_with(p.as_str())))
            && (self.status.is_empty() || self.status.iter().any(|&(s, class)| if class { x.status / 100 == s / 100 } else { x.status == s }))
            && x.latency_ns >= self.min_latency_ns
    }

    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }
}

fn yes() -> bool {
    true
}

fn default_capture() -> u32 {
    1024
}

fn default_routes() -> u32 {
    200
}

fn default_conns() -> u32 {
    4096
}

/// OpenSSL's libssl as the dynamic linker finds it on Debian and the like;
/// None: not installed (TLS is then not followed, and `--list-plugins`
/// says the tls probe is not there).
pub fn libssl() -> Option<String> {
    ["/usr/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib64/libssl.so.3", "/usr/lib/libssl.so.3", "/usr/lib/x86_64-linux-gnu/libssl.so.1.1"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
}

/// The keys above, for the host.
pub fn specs() -> Vec<SettingSpec> {
    let mut v = tracer_plugin_kit::settings::proc_filter_specs();
    v.push(tracer_plugin_kit::settings::uid_spec());
    v.extend([
        tracer_plugin_kit::settings::ports_spec(HTTP_PORTS_MAX as usize),
        SettingSpec::new("capture_bytes", SettingKind::UINT, "first bytes of each read or write copied for parsing (a request or response head longer than this is not followed)")
            .range(64, HTTP_CAPTURE_MAX as u64)
            .default_value("1024"),
        SettingSpec::new("max_routes", SettingKind::UINT, "routes (method and path template) kept apart; the rest are counted as `other`").range(1, 10_000).default_value("200"),
        SettingSpec::new("tls", SettingKind::BOOL, "the plaintext of TLS connections of every process that uses OpenSSL (uprobes on libssl's SSL_read, SSL_write, SSL_free: a trap per call)")
            .default_value("true"),
        SettingSpec::new("sample_percent", SettingKind::UINT, "connections followed, in per cent, picked in the kernel by a hash of the connection; counts are scaled back up and said to be sampled")
            .range(1, 100)
            .default_value("100"),
        SettingSpec::new("methods", SettingKind::STRING_LIST, "only requests with one of these methods (GET, POST, ...)"),
        SettingSpec::new("path_prefixes", SettingKind::STRING_LIST, "only requests whose path starts with one of these"),
        SettingSpec::new("status", SettingKind::STRING_LIST, "only responses with one of these statuses: codes (404) or classes (5xx)"),
        SettingSpec::new("min_latency_ms", SettingKind::UINT, "only requests at least this slow").default_value("0"),
        SettingSpec::new("max_connections", SettingKind::UINT, "connections followed at once in user space (the least recently active are forgotten, and counted)")
            .range(16, 1_000_000)
            .default_value("4096"),
    ]);
    v
}

impl Settings {
    pub fn parse(json: &str) -> Result<Settings, String> {
        let s: Settings = tracer_plugin_kit::parse_settings(json)?;
        tracer_plugin_kit::check_comm_and_pid(s.comm.as_deref(), s.pid)?;
        tracer_plugin_kit::settings::check_ports(&s.ports, HTTP_PORTS_MAX as usize)?;
        if !(64..=HTTP_CAPTURE_MAX).contains(&s.capture_bytes) {
            return Err(format!("capture_bytes: {} is not within 64..={HTTP_CAPTURE_MAX}", s.capture_bytes));
        }
        if !(1..=100).contains(&s.sample_percent) {
            return Err(format!("sample_percent: {} is not within 1..=100", s.sample_percent));
        }
        s.filters()?;
        Ok(s)
    }

    pub fn filters(&self) -> Result<Filters, String> {
        let status = self
            .status
            .iter()
            .map(|v| {
                let t = v.trim().to_ascii_lowercase();
                if let Some(c) = t.strip_suffix("xx").and_then(|c| c.parse::<u16>().ok()).filter(|c| (1..=5).contains(c)) {
                    Ok((c * 100, true))
                } else {
                    t.parse::<u16>().ok().filter(|c| (100..=599).contains(c)).map(|c| (c, false)).ok_or_else(|| format!("status: {v:?} is no status code (404) or class (5xx)"))
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Filters { methods: self.methods.clone(), path_prefixes: self.path_prefixes.clone(), status, min_latency_ns: self.min_latency_ms.saturating_mul(1_000_000) })
    }

    /// The kernel's filter; `tls`: OpenSSL's uprobes are asked for.
    pub fn filter_bytes(&self, self_pid: u32, gen: u32, tls: bool) -> Vec<u8> {
        let mut f = http_filter {
            proc: tracer_plugin_kit::proc_filter(self.pid, self.comm.as_deref(), self.include_self, self_pid, gen),
            uid: tracer_plugin_kit::uid_filter(self.uid),
            capture: self.capture_bytes,
            sample_percent: self.sample_percent,
            nports: self.ports.len() as u32,
            tls: tls as u32,
            ..Default::default()
        };
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
    fn settings_become_the_filter() {
        let f: http_filter = tracer_plugin_kit::read(&Settings::parse(r#"{"ports": [8080, 443], "capture_bytes": 256}"#).unwrap().filter_bytes(5, 3, true)).unwrap();
        assert_eq!((f.capture, f.nports, f.ports[0], f.ports[1], f.proc.exclude_pid, f.tls), (256, 2, 8080, 443, 5, 1));
        assert!(Settings::parse(r#"{"capture_bytes": 10000}"#).unwrap_err().contains("capture_bytes"));
        assert!(Settings::parse(r#"{"ports": [1,2,3,4,5,6,7,8,9]}"#).unwrap_err().contains("ports"));
        assert!(Settings::parse(r#"{"status": ["5xx", "teapot"]}"#).unwrap_err().contains("teapot"));
        let f = Settings::parse(r#"{"status": ["5xx", "404"], "methods": ["post"], "path_prefixes": ["/api/"], "min_latency_ms": 2}"#).unwrap().filters().unwrap();
        let x = |method: &str, path: &str, status: u16, ms: u64| crate::conn::Exchange {
            protocol: "HTTP/1.1",
            tgid: 1,
            comm: String::new(),
            server: true,
            local: None,
            remote: None,
            tls: false,
            method: method.into(),
            path: path.into(),
            host: String::new(),
            status,
            request_bytes: 0,
            response_bytes: 0,
            start_ns: 0,
            latency_ns: ms * 1_000_000,
        };
        assert!(f.keeps(&x("POST", "/api/a", 503, 3)) && f.keeps(&x("POST", "/api/b", 404, 2)));
        assert!(!f.keeps(&x("GET", "/api/a", 503, 3)) && !f.keeps(&x("POST", "/web", 503, 3)) && !f.keeps(&x("POST", "/api/a", 403, 3)) && !f.keeps(&x("POST", "/api/a", 500, 1)));
    }
}
