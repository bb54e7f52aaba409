//! The settings every process-filtering tracer shares, declared once: the
//! host validates, prompts and documents them from these specs.

use tracer_plugin_api::{SettingKind, SettingSpec};

/// `pid`, `comm`, `include_self`: what `proc_filter` (tracer.h) filters on.
pub fn proc_filter_specs() -> Vec<SettingSpec> {
    vec![
        SettingSpec::new("pid", SettingKind::UINT, "only this process (tgid)").range(1, u32::MAX as u64),
        SettingSpec::new("comm", SettingKind::STRING, "only tasks with exactly this name (1-15 bytes)").range(1, 15),
        SettingSpec::new("include_self", SettingKind::BOOL, "also trace tracer-host itself").default_value("false"),
    ]
}

/// `mode`: figures since start, or per refresh.
pub fn mode_spec() -> SettingSpec {
    SettingSpec::new("mode", SettingKind::CHOICE, "figures since start (cumulative) or per refresh (interval)")
        .choices(&["cumulative", "interval"])
        .default_value("cumulative")
}
