//! The command line's plugin settings: `-p/--pid`, `-c/--comm`, `-u/--uid` for
//! every tracer that declares that setting (as the libbpf-tools take them), and
//! `--set plugin.key=value` for anything else. They go over the config file and
//! the environment. Values are read by each plugin's own declaration, so a
//! range or a choice is checked here, before anything attaches.

use crate::plugin_settings;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use tracer_plugin_api::SettingSpec;

/// A process filter given for all tracers: the flag as typed and the setting
/// it sets.
pub struct CommonFilter {
    pub flag: &'static str,
    pub key: &'static str,
    pub value: String,
}

/// Apply `filters` to every plugin that declares the key and `sets` to the
/// plugin each names. `plugins` lists each loaded plugin's name and settings.
/// Returns a line for each plugin a common filter does not reach, to be said.
/// A common filter that no plugin takes, a `--set` for a plugin not loaded or
/// a key it does not have, and a value its declaration refuses are errors.
pub fn apply(
    tables: &mut BTreeMap<String, Value>,
    plugins: &[(&str, &[SettingSpec])],
    filters: &[CommonFilter],
    sets: &[String],
) -> Result<Vec<String>, String> {
    let mut not_applied = Vec::new();
    for f in filters {
        let mut takers = 0;
        for (name, specs) in plugins {
            match specs.iter().find(|s| s.name.as_str() == f.key) {
                Some(spec) => {
                    let v = plugin_settings::value(spec, &f.value).map_err(|e| format!("{}: {name}: {e}", f.flag))?;
                    table(tables, name).insert(f.key.into(), v);
                    takers += 1;
                }
                None => not_applied.push(format!("{name} has no {} setting: {} does not filter it", f.key, f.flag)),
            }
        }
        if takers == 0 {
            return Err(format!("{}: no loaded plugin takes a {} setting", f.flag, f.key));
        }
    }
    for s in sets {
        let (target, raw) = s.split_once('=').ok_or_else(|| format!("--set {s:?}: expected PLUGIN.KEY=VALUE"))?;
        let (name, key) = target.split_once('.').ok_or_else(|| format!("--set {s:?}: expected PLUGIN.KEY=VALUE"))?;
        let Some((_, specs)) = plugins.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = plugins.iter().map(|(n, _)| *n).collect();
            return Err(format!("--set {s:?}: no plugin named {name:?} is loaded (loaded: {})", names.join(", ")));
        };
        let spec = plugin_settings::resolve(name, specs, key).map_err(|e| format!("--set {s:?}: {e}"))?;
        let v = plugin_settings::value(spec, raw).map_err(|e| format!("--set {s:?}: {e}"))?;
        let t = table(tables, name);
        if v.is_null() {
            t.remove(spec.name.as_str());
        } else {
            t.insert(spec.name.to_string(), v);
        }
    }
    Ok(not_applied)
}

fn table<'a>(tables: &'a mut BTreeMap<String, Value>, name: &str) -> &'a mut Map<String, Value> {
    let t = tables.entry(name.to_string()).or_insert_with(|| Value::Object(Map::new()));
    if !t.is_object() {
        *t = Value::Object(Map::new());
    }
    t.as_object_mut().expect("made an object above")
}

/// Each loaded plugin's table with its declared defaults filled in for keys
/// not set (for `--print-config`).
pub fn with_defaults(tables: &BTreeMap<String, Value>, plugins: &[(&str, &[SettingSpec])]) -> BTreeMap<String, Value> {
    let mut out = tables.clone();
    for (name, specs) in plugins {
        let t = table(&mut out, name);
        for s in specs.iter().filter(|s| !s.default.is_empty()) {
            if !t.contains_key(s.name.as_str()) {
                if let Ok(v) = plugin_settings::value(s, &s.default) {
                    t.insert(s.name.to_string(), v);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_plugin_api::SettingKind;

    fn specs() -> (Vec<SettingSpec>, Vec<SettingSpec>) {
        let a = vec![
            SettingSpec::new("pid", SettingKind::UINT, "pid").range(1, u32::MAX as u64),
            SettingSpec::new("uid", SettingKind::UINT, "uid"),
            SettingSpec::new("failed_only", SettingKind::BOOL, "f").default_value("false"),
        ];
        let b = vec![
            SettingSpec::new("pid", SettingKind::UINT, "pid").range(1, u32::MAX as u64),
            SettingSpec::new("ports", SettingKind::UINT_LIST, "ports").range(1, 65535).alias("port"),
        ];
        (a, b)
    }

    fn f(flag: &'static str, key: &'static str, value: &str) -> CommonFilter {
        CommonFilter { flag, key, value: value.into() }
    }

    #[test]
    fn common_filters_reach_every_plugin_that_takes_them_and_say_which_not() {
        let (a, b) = specs();
        let plugins = [("open", a.as_slice()), ("tcp", b.as_slice())];
        let mut t = BTreeMap::new();
        t.insert("open".to_string(), serde_json::json!({"failed_only": true}));
        let r = apply(&mut t, &plugins, &[f("-p", "pid", "42"), f("-u", "uid", "1000")], &["tcp.port=80".into()]).unwrap();
        assert_eq!(t["open"], serde_json::json!({"failed_only": true, "pid": 42, "uid": 1000}));
        assert_eq!(t["tcp"], serde_json::json!({"pid": 42, "ports": [80]}));
        assert_eq!(r, ["tcp has no uid setting: -u does not filter it"]);
        apply(&mut t, &plugins, &[], &["open.failed_only=-".into()]).unwrap();
        assert!(t["open"].get("failed_only").is_none(), "- unsets");
    }

    #[test]
    fn what_cannot_apply_is_an_error_naming_the_flag() {
        let (a, b) = specs();
        let plugins = [("open", a.as_slice()), ("tcp", b.as_slice())];
        let mut t = BTreeMap::new();
        let e = apply(&mut t, &plugins[1..], &[f("-u", "uid", "5")], &[]).unwrap_err();
        assert_eq!(e, "-u: no loaded plugin takes a uid setting");
        assert!(apply(&mut t, &plugins, &[f("-p", "pid", "0")], &[]).unwrap_err().starts_with("-p: open: pid: 0 is outside"));
        assert!(apply(&mut t, &plugins, &[], &["udp.port=1".into()]).unwrap_err().contains("no plugin named \"udp\""));
        assert!(apply(&mut t, &plugins, &[], &["tcp.portz=1".into()]).unwrap_err().contains("did you mean ports"));
        assert!(apply(&mut t, &plugins, &[], &["tcp=1".into()]).unwrap_err().contains("PLUGIN.KEY=VALUE"));
    }

    #[test]
    fn defaults_fill_only_unset_keys() {
        let (a, _) = specs();
        let mut t = BTreeMap::new();
        t.insert("open".to_string(), serde_json::json!({"pid": 7}));
        let d = with_defaults(&t, &[("open", a.as_slice())]);
        assert_eq!(d["open"], serde_json::json!({"pid": 7, "failed_only": false}));
    }
}
