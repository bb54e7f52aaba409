//! The settings every process-filtering tracer shares, declared once: the
//! host validates, prompts and documents them from these specs.

use tracer_plugin_api::{common_names, SettingKind, SettingSpec};

/// `pid`, `comm`, `include_self`: what `proc_filter` (tracer.h) filters on.
pub fn proc_filter_specs() -> Vec<SettingSpec> {
    vec![
        SettingSpec::new(common_names::PID, SettingKind::UINT, "only this process (tgid)").range(1, u32::MAX as u64),
        SettingSpec::new(common_names::COMM, SettingKind::STRING, "only tasks with exactly this name (1-15 bytes)").range(1, 15),
        SettingSpec::new("include_self", SettingKind::BOOL, "also trace tracer-host itself").default_value("false"),
    ]
}

/// `uid`: for tracers whose filter has a `struct uid_filter`.
pub fn uid_spec() -> SettingSpec {
    SettingSpec::new(common_names::UID, SettingKind::UINT, "only tasks of this real uid").range(0, u32::MAX as u64)
}

/// `ports`: connections with one of these ports, local or remote, at most
/// `max` (the room in the plugin's filter).
pub fn ports_spec(max: usize) -> SettingSpec {
    SettingSpec::new("ports", SettingKind::UINT_LIST, &format!("only connections with one of these ports, local or remote (at most {max})")).range(1, 65535).alias("port")
}

/// The `ports` given fit the filter's `max`.
pub fn check_ports(ports: &[u16], max: usize) -> Result<(), String> {
    if ports.len() > max {
        return Err(format!("ports: at most {max} ports, got {}", ports.len()));
    }
    Ok(())
}

/// What the `mode` setting picks: figures since start (or the last reset),
/// or over the last refresh interval only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Cumulative,
    Interval,
}

/// `mode`: figures since start, or per refresh.
pub fn mode_spec() -> SettingSpec {
    SettingSpec::new("mode", SettingKind::CHOICE, "figures since start (cumulative) or per refresh (interval)")
        .choices(&["cumulative", "interval"])
        .default_value("cumulative")
}

/// The settings of a tracer that filters by process only: exactly the keys of
/// [`proc_filter_specs`].
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcSettings {
    pub pid: Option<u32>,
    pub comm: Option<String>,
    #[serde(default)]
    pub include_self: bool,
}

impl ProcSettings {
    pub fn parse(json: &str) -> Result<Self, String> {
        let s: ProcSettings = crate::parse_settings(json)?;
        crate::check_comm_and_pid(s.comm.as_deref(), s.pid)?;
        Ok(s)
    }

    /// The kernel filter for these settings, with the host left out unless
    /// asked and a new filter generation.
    pub fn filter(&self) -> crate::types::proc_filter {
        crate::proc_filter(self.pid, self.comm.as_deref(), self.include_self, crate::host_pid(), crate::next_filter_gen())
    }
}
