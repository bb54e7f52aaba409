//! Plugin settings as each plugin declares them (`SettingSpec`): reading what
//! the user types in the filter prompt, checking config keys, showing what is
//! set. The host knows no setting of any tracer: names, types, ranges, aliases
//! and help all come from the plugin.

use serde_json::Value;
use tracer_plugin_api::{SettingKind, SettingSpec};

/// The spec `key` names (its name or an alias), or an error that lists the
/// plugin's keys and the closest one.
pub fn resolve<'a>(plugin: &str, specs: &'a [SettingSpec], key: &str) -> Result<&'a SettingSpec, String> {
    if let Some(s) = specs.iter().find(|s| s.name.as_str() == key || s.aliases.iter().any(|a| a.as_str() == key)) {
        return Ok(s);
    }
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let hint = tracer_core::text::closest(key, names.iter().copied(), 2).map(|n| format!("did you mean {n}? ")).unwrap_or_default();
    Err(format!("{plugin} has no setting {key:?}; {hint}its settings: {}", if names.is_empty() { "none".into() } else { names.join(", ") }))
}

/// What `raw` (as typed after `key=`) means for `spec`: `-` unsets; lists are
/// comma-separated; numbers, choices and lengths are checked against the spec.
pub fn value(spec: &SettingSpec, raw: &str) -> Result<Value, String> {
    let name = spec.name.as_str();
    if raw == "-" {
        return Ok(Value::Null);
    }
    let uint = |s: &str| -> Result<Value, String> {
        let n: u64 = s.parse().map_err(|_| format!("{name}: {s:?} is not a whole number"))?;
        if n < spec.min || n > spec.max {
            return Err(format!("{name}: {n} is outside {}..={}", spec.min, spec.max));
        }
        Ok(n.into())
    };
    match spec.kind {
        SettingKind::BOOL => raw.parse::<bool>().map(Value::from).map_err(|_| format!("{name}: {raw:?} is not true or false")),
        SettingKind::UINT => uint(raw),
        SettingKind::STRING => {
            let n = raw.len() as u64;
            if n < spec.min || n > spec.max {
                return Err(format!("{name}: {raw:?} must be {} to {} bytes", spec.min, spec.max));
            }
            Ok(raw.into())
        }
        SettingKind::CHOICE => {
            if spec.choices.iter().any(|c| c.as_str() == raw) {
                Ok(raw.into())
            } else {
                let c: Vec<&str> = spec.choices.iter().map(|c| c.as_str()).collect();
                Err(format!("{name}: {raw:?} is not one of {}", c.join(", ")))
            }
        }
        SettingKind::UINT_LIST => raw.split(',').map(uint).collect::<Result<Vec<_>, _>>().map(Value::from),
        SettingKind::STRING_LIST => Ok(raw.split(',').map(|s| Value::from(s.to_string())).collect::<Vec<_>>().into()),
        // A kind this host does not know: hand the text over, the plugin decides.
        _ => Ok(raw.into()),
    }
}

/// `key=value ...` as typed in the filter prompt, each key resolved (aliases
/// renamed) and each value read by its spec.
pub fn parse_assignments(plugin: &str, specs: &[SettingSpec], text: &str) -> Result<Vec<(String, Value)>, String> {
    text.split_whitespace()
        .map(|item| {
            let (k, v) = item.split_once('=').ok_or_else(|| format!("{item:?}: expected key=value"))?;
            let spec = resolve(plugin, specs, k)?;
            Ok((spec.name.to_string(), value(spec, v)?))
        })
        .collect()
}

/// The first key of `[plugins.NAME]` that the plugin does not declare, and why.
pub fn check_config_keys(plugin: &str, specs: &[SettingSpec], table: &serde_json::Map<String, Value>) -> Result<(), (String, String)> {
    // The host's own key (`attach`) is in every table.
    for key in table.keys().filter(|k| k.as_str() != tracer_core::session::ATTACH_KEY) {
        let spec = resolve(plugin, specs, key).map_err(|e| (key.clone(), e))?;
        if spec.name.as_str() != key {
            return Err((key.clone(), format!("write {} instead: it is the name the config takes", spec.name)));
        }
    }
    Ok(())
}

/// `pid=42,comm="cat"`: the settings a user can change at run time that are
/// set to something other than their default, for the status line.
pub fn shown(specs: &[SettingSpec], settings: &Value) -> String {
    let Some(o) = settings.as_object() else { return String::new() };
    specs
        .iter()
        .filter(|s| s.runtime)
        .filter_map(|s| {
            let v = o.get(s.name.as_str())?;
            let text = match v {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            (!v.is_null() && text != s.default.as_str() && !(s.default.is_empty() && *v == Value::Bool(false))).then(|| format!("{}={v}", s.name))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// One line per setting: `name (kind, default x; also: alias): help`.
pub fn describe(specs: &[SettingSpec]) -> Vec<String> {
    specs
        .iter()
        .map(|s| {
            let mut what = vec![s.kind.label().to_string()];
            if s.kind == SettingKind::CHOICE {
                what[0] = s.choices.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("|");
            }
            if !s.default.is_empty() {
                what.push(format!("default {}", s.default));
            }
            if !s.aliases.is_empty() {
                what.push(format!("also: {}", s.aliases.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")));
            }
            if !s.runtime {
                what.push("at start only".into());
            }
            format!("{} ({}): {}", s.name, what.join("; "), s.help)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<SettingSpec> {
        vec![
            SettingSpec::new("ports", SettingKind::UINT_LIST, "ports").range(1, 65535).alias("port"),
            SettingSpec::new("who", SettingKind::STRING, "a name").range(1, 15),
            SettingSpec::new("only_bad", SettingKind::BOOL, "only failures").default_value("false"),
            SettingSpec::new("shape", SettingKind::CHOICE, "shape").choices(&["round", "square"]).default_value("round"),
        ]
    }

    #[test]
    fn aliases_lists_and_ranges_come_from_the_spec() {
        let v = parse_assignments("x", &specs(), "port=80 who=cat only_bad=true").unwrap();
        assert_eq!(v[0], ("ports".to_string(), serde_json::json!([80])));
        assert_eq!(v[1], ("who".to_string(), serde_json::json!("cat")));
        assert_eq!(v[2], ("only_bad".to_string(), serde_json::json!(true)));
        assert_eq!(parse_assignments("x", &specs(), "ports=80,443").unwrap()[0].1, serde_json::json!([80, 443]));
        assert_eq!(parse_assignments("x", &specs(), "who=-").unwrap()[0].1, Value::Null);
        assert!(parse_assignments("x", &specs(), "ports=70000").unwrap_err().contains("outside 1..=65535"));
        assert!(parse_assignments("x", &specs(), "who=a-very-long-command-name").unwrap_err().starts_with("who:"));
        assert!(parse_assignments("x", &specs(), "shape=oval").unwrap_err().contains("round, square"));
        let e = parse_assignments("x", &specs(), "wo=cat").unwrap_err();
        assert!(e.contains("did you mean who?") && e.contains("ports, who, only_bad, shape"), "{e}");
        assert!(parse_assignments("x", &specs(), "ports").is_err());
    }

    #[test]
    fn shown_settings_leave_defaults_out() {
        let s = serde_json::json!({"ports": [80], "only_bad": false, "shape": "round", "who": null});
        assert_eq!(shown(&specs(), &s), "ports=[80]");
        let s = serde_json::json!({"shape": "square", "only_bad": true});
        assert_eq!(shown(&specs(), &s), "only_bad=true,shape=\"square\"");
    }

    #[test]
    fn config_keys_are_checked_with_a_suggestion() {
        let t = serde_json::json!({"ports": [1], "attach": "tracepoint"});
        assert!(check_config_keys("x", &specs(), t.as_object().unwrap()).is_ok());
        let t = serde_json::json!({"portz": [1]});
        let (key, why) = check_config_keys("x", &specs(), t.as_object().unwrap()).unwrap_err();
        assert!(key == "portz" && why.contains("did you mean ports?"), "{why}");
        let t = serde_json::json!({"port": [1]});
        assert!(check_config_keys("x", &specs(), t.as_object().unwrap()).unwrap_err().1.contains("write ports"));
    }
}
