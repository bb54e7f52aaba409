//! The host's configuration file (`configs/default.toml` documents every key).
//!
//! Read with the `config` crate into serde structs. Unknown keys and wrong types are
//! errors that name the file and the key. Relative paths are relative to the
//! directory of the config file, so a config works from any working directory.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where plugin `.so` files are loaded from.
    pub plugins_dir: PathBuf,
    /// Plugins that run when `--plugin` is not given.
    #[serde(default)]
    pub enabled: Vec<String>,
    #[serde(default)]
    pub ui: UiConfig,
    /// Per-plugin settings, handed to the plugin as JSON; the plugin validates them.
    #[serde(default)]
    pub plugins: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    /// Screen refreshes (and map reads) per second.
    #[serde(default = "default_refresh_hz")]
    pub refresh_hz: f64,
    /// Panels of the first screen, as `plugin.panel`, top to bottom.
    #[serde(default)]
    pub panels: Vec<String>,
}

fn default_refresh_hz() -> f64 {
    4.0
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig { refresh_hz: default_refresh_hz(), panels: Vec::new() }
    }
}

/// `FILE: KEY: problem` errors.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let err = |message: String| ConfigError { file: file.clone(), message };
        if !path.is_file() {
            return Err(err("cannot read the config file (no such file)".into()));
        }
        let raw = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .build()
            .map_err(|e| err(strip_origin(&e.to_string())))?;
        let mut cfg: Config = raw
            .try_deserialize()
            .map_err(|e| err(strip_origin(&e.to_string())))?;
        cfg.validate().map_err(err)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if cfg.plugins_dir.is_relative() {
            cfg.plugins_dir = base.join(&cfg.plugins_dir);
        }
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        if !(self.ui.refresh_hz.is_finite() && self.ui.refresh_hz > 0.0 && self.ui.refresh_hz <= 100.0) {
            return Err(format!(
                "key `ui.refresh_hz`: {} is out of range (0 < refresh_hz <= 100)",
                self.ui.refresh_hz
            ));
        }
        for p in &self.ui.panels {
            let ok = p.split_once('.').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty());
            if !ok {
                return Err(format!("key `ui.panels`: {p:?} is not of the form \"plugin.panel\""));
            }
        }
        for (name, v) in &self.plugins {
            if !v.is_object() {
                return Err(format!("key `plugins.{name}`: must be a table of settings"));
            }
        }
        Ok(())
    }

    /// The settings of plugin `name` as JSON text (`{}` when there are none).
    pub fn plugin_settings(&self, name: &str) -> String {
        self.plugins.get(name).map(|v| v.to_string()).unwrap_or_else(|| "{}".into())
    }
}

/// The config crate appends " in FILE" (a path relative to the working
/// directory) after the key; we put the file first instead.
fn strip_origin(msg: &str) -> String {
    match msg.rfind("` in ") {
        Some(i) => msg[..=i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn the_shipped_default_config_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/default.toml");
        let c = Config::load(&p).unwrap();
        assert!(c.enabled.contains(&"open".to_string()));
        assert!(c.plugins_dir.ends_with("target/release/plugins"));
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let f = write("plugins_dir = \"x\"\nrefresh = 3\n");
        let e = Config::load(f.path()).unwrap_err().to_string();
        assert!(e.starts_with(&f.path().display().to_string()), "{e}");
        assert!(e.contains("unknown field `refresh`"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let f = write("plugins_dir = \"x\"\n[ui]\nrefresh_hz = \"fast\"\n");
        let e = Config::load(f.path()).unwrap_err().to_string();
        assert!(e.ends_with("for key `ui.refresh_hz`"), "{e}");
    }

    #[test]
    fn impossible_values_are_refused() {
        let f = write("plugins_dir = \"x\"\n[ui]\nrefresh_hz = -1\n");
        let e = Config::load(f.path()).unwrap_err().to_string();
        assert!(e.contains("`ui.refresh_hz`") && e.contains("out of range"), "{e}");
        let f = write("plugins_dir = \"x\"\n[ui]\npanels = [\"recent\"]\n");
        let e = Config::load(f.path()).unwrap_err().to_string();
        assert!(e.contains("plugin.panel"), "{e}");
    }

    #[test]
    fn syntax_error_and_missing_file_name_the_file() {
        let f = write("plugins_dir = \n");
        let e = Config::load(f.path()).unwrap_err().to_string();
        assert!(e.starts_with(&f.path().display().to_string()), "{e}");
        let e = Config::load(Path::new("/nonexistent/x.toml")).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/x.toml: "), "{e}");
    }

    #[test]
    fn plugin_settings_become_json_and_paths_resolve() {
        let f = write("plugins_dir = \"plugins\"\n[plugins.open]\npid = 5\nfailed_only = true\n");
        let c = Config::load(f.path()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&c.plugin_settings("open")).unwrap();
        assert_eq!(v["pid"], 5);
        assert_eq!(v["failed_only"], true);
        assert_eq!(c.plugin_settings("tcp"), "{}");
        assert_eq!(c.plugins_dir, f.path().parent().unwrap().join("plugins"));
    }
}
