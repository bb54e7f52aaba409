//! The configuration file (`configs/default.toml` documents every key): the
//! plugins directory, which plugins run, their settings, and the screen layout.
//!
//! Read with the `config` crate into serde structs, in layers: the shipped
//! `configs/default.toml` (compiled in), or the file `--config` names instead;
//! then `TRACER_*` environment variables; the command line goes last (main).
//! Unknown keys and wrong types are errors that name the file (or variable)
//! and the key. Relative paths are relative to the directory of the config
//! file, so a config works from any working directory.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The shipped configuration, used when no `--config` is given.
pub const EMBEDDED: &str = include_str!("../../configs/default.toml");
/// What errors about the embedded configuration name instead of a file.
pub const EMBEDDED_NAME: &str = "(built-in configs/default.toml)";
/// Environment variables `TRACER_<KEY>` set config keys; `__` separates levels.
pub const ENV_PREFIX: &str = "TRACER";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where plugin `.so` files are loaded from; default: `plugins` beside the
    /// tracer-host executable (where `cargo xtask build` stages them).
    #[serde(default = "default_plugins_dir")]
    pub plugins_dir: PathBuf,
    /// Plugins that run when `--plugin` is not given.
    #[serde(default)]
    pub enabled: Vec<String>,
    #[serde(default)]
    pub ui: UiConfig,
    /// The `node` label of every metric; `--node-name` wins, default
    /// `$NODE_NAME`, else the hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub otlp: OtlpConfig,
    /// Per-plugin settings, handed to the plugin as JSON; the plugin validates them.
    #[serde(default)]
    pub plugins: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    /// Screen refreshes (and map reads) per second.
    #[serde(default = "default_refresh_hz")]
    pub refresh_hz: f64,
    /// Clicks focus panels, select rows and switch tabs; the wheel scrolls.
    /// Off: the terminal keeps the mouse (its own text selection).
    #[serde(default = "default_mouse")]
    pub mouse: bool,
    /// The screen: tabs of rows of panels. Empty: one tab per plugin.
    #[serde(default)]
    pub tabs: Vec<TabConfig>,
}

/// Exported metrics (Prometheus endpoint, series limits).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve Prometheus metrics here (`127.0.0.1:9464`); `--metrics-addr` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// Per-process (`comm`) series: the names with the largest values in
    /// each metric; the rest are summed as `comm="other"`.
    #[serde(default = "default_top_n")]
    pub top_n: usize,
    /// At most this many series per metric; the smallest past it are summed
    /// into one whose labels are all `other`.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// Export each plugin's BPF run time and runs. Switches the kernel's BPF
    /// statistics on while the host runs, which costs every BPF program on
    /// the machine two clock reads per run.
    #[serde(default = "default_true")]
    pub bpf_cost: bool,
}

/// The OTLP push (`--otlp-endpoint`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// `http://HOST:PORT` of an OTLP/HTTP receiver; `--otlp-endpoint` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Seconds between two pushes.
    #[serde(default = "default_otlp_interval")]
    pub interval_secs: f64,
    /// Batches kept while the receiver is away; past it the oldest go.
    #[serde(default = "default_otlp_queue")]
    pub queue: usize,
    /// Seconds one attempt may take (connect, send, answer).
    #[serde(default = "default_otlp_timeout")]
    pub timeout_secs: f64,
    /// The resource's `service.name`.
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

fn default_otlp_interval() -> f64 {
    10.0
}

fn default_otlp_queue() -> usize {
    60
}

fn default_otlp_timeout() -> f64 {
    5.0
}

fn default_service_name() -> String {
    "tracer".into()
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            endpoint: None,
            interval_secs: default_otlp_interval(),
            queue: default_otlp_queue(),
            timeout_secs: default_otlp_timeout(),
            service_name: default_service_name(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_top_n() -> usize {
    10
}

fn default_max_series() -> usize {
    500
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { addr: None, top_n: default_top_n(), max_series: default_max_series(), bpf_cost: true }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TabConfig {
    pub name: String,
    pub rows: Vec<RowConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RowConfig {
    /// `"40%"`, `"12"` (lines), `"min:8"` or `"fill"` (the default).
    #[serde(default = "fill")]
    pub height: String,
    /// Panels side by side, as `plugin.panel`.
    pub panels: Vec<String>,
    /// One size per panel, same forms as `height`; default: equal widths.
    #[serde(default)]
    pub widths: Vec<String>,
}

fn fill() -> String {
    "fill".into()
}

/// A row height or panel width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Percent(u16),
    Fixed(u16),
    Min(u16),
    Fill,
}

impl Size {
    pub fn parse(s: &str) -> Result<Size, String> {
        let t = s.trim();
        let num = |x: &str| x.trim().parse::<u16>().map_err(|_| format!("{s:?} is not a size (\"40%\", \"12\", \"min:8\" or \"fill\")"));
        if t == "fill" {
            Ok(Size::Fill)
        } else if let Some(p) = t.strip_suffix('%') {
            match num(p)? {
                n @ 1..=100 => Ok(Size::Percent(n)),
                _ => Err(format!("{s:?}: a percentage is 1% to 100%")),
            }
        } else if let Some(m) = t.strip_prefix("min:") {
            Ok(Size::Min(num(m)?))
        } else {
            match num(t)? {
                0 => Err(format!("{s:?}: a fixed size is at least 1")),
                n => Ok(Size::Fixed(n)),
            }
        }
    }
}

/// Refreshes per second: at least one every 10 s (the maps are read, losses
/// said and output flushed at each), at most 100.
pub const MIN_REFRESH_HZ: f64 = 0.1;
pub const MAX_REFRESH_HZ: f64 = 100.0;

fn default_plugins_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent().unwrap_or(Path::new(".")).join("plugins")
}

fn default_refresh_hz() -> f64 {
    4.0
}

fn default_mouse() -> bool {
    true
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig { refresh_hz: default_refresh_hz(), mouse: default_mouse(), tabs: Vec::new() }
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
    /// `file`, or the embedded default when None, with the process's
    /// `TRACER_*` environment over it.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_env(file, std::env::vars())
    }

    /// As [`Config::load`], with the environment given (tests).
    pub fn load_with_env(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let name = file.map(|p| p.display().to_string()).unwrap_or_else(|| EMBEDDED_NAME.into());
        let err = |message: String| ConfigError { file: name.clone(), message };
        let builder = ::config::Config::builder();
        let builder = match file {
            Some(path) if !path.is_file() => return Err(err("cannot read the config file (no such file)".into())),
            Some(path) => builder.add_source(::config::File::from(path).format(::config::FileFormat::Toml)),
            None => builder.add_source(::config::File::from_str(EMBEDDED, ::config::FileFormat::Toml)),
        };
        let vars = config_env(env);
        let env_names: Vec<String> = vars.keys().cloned().collect();
        let raw = builder
            .add_source(
                ::config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("enabled")
                    .source(Some(vars.into_iter().collect())),
            )
            .build()
            .map_err(|e| err(strip_origin(&e.to_string())))?;
        let from = |e: String| if env_names.is_empty() { e } else { format!("{e} (environment: {})", env_names.join(" ")) };
        let mut cfg: Config = raw.try_deserialize().map_err(|e| err(from(strip_origin(&e.to_string()))))?;
        cfg.validate().map_err(|e| err(from(e)))?;
        if cfg.plugins_dir.is_relative() {
            let base = file.and_then(|p| p.parent()).map(Path::to_path_buf).unwrap_or_else(|| std::env::current_dir().unwrap_or_default());
            cfg.plugins_dir = base.join(&cfg.plugins_dir);
        }
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        if !(self.ui.refresh_hz.is_finite() && (MIN_REFRESH_HZ..=MAX_REFRESH_HZ).contains(&self.ui.refresh_hz)) {
            return Err(format!(
                "key `ui.refresh_hz`: {} is out of range ({MIN_REFRESH_HZ} to {MAX_REFRESH_HZ} refreshes per second)",
                self.ui.refresh_hz
            ));
        }
        if self.metrics.top_n == 0 {
            return Err("key `metrics.top_n`: 0 would fold every process into `other`; give 1 or more".into());
        }
        if !(self.otlp.interval_secs.is_finite() && (0.1..=3600.0).contains(&self.otlp.interval_secs)) {
            return Err(format!("key `otlp.interval_secs`: {} is out of range (0.1 to 3600 seconds)", self.otlp.interval_secs));
        }
        if !(self.otlp.timeout_secs.is_finite() && (0.1..=60.0).contains(&self.otlp.timeout_secs)) {
            return Err(format!("key `otlp.timeout_secs`: {} is out of range (0.1 to 60 seconds)", self.otlp.timeout_secs));
        }
        if self.otlp.queue == 0 {
            return Err("key `otlp.queue`: 0 leaves no room for a batch; give 1 or more".into());
        }
        if self.metrics.max_series < 2 {
            return Err(format!("key `metrics.max_series`: {} leaves no room for a series and `other`; give 2 or more", self.metrics.max_series));
        }
        for (t, tab) in self.ui.tabs.iter().enumerate() {
            if tab.rows.is_empty() {
                return Err(format!("key `ui.tabs[{t}].rows`: tab {:?} has no rows", tab.name));
            }
            for (r, row) in tab.rows.iter().enumerate() {
                let key = format!("ui.tabs[{t}].rows[{r}]");
                Size::parse(&row.height).map_err(|e| format!("key `{key}.height`: {e}"))?;
                if row.panels.is_empty() {
                    return Err(format!("key `{key}.panels`: a row needs at least one panel"));
                }
                for p in &row.panels {
                    let ok = p.split_once('.').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty());
                    if !ok {
                        return Err(format!("key `{key}.panels`: {p:?} is not of the form \"plugin.panel\""));
                    }
                }
                if !row.widths.is_empty() && row.widths.len() != row.panels.len() {
                    return Err(format!(
                        "key `{key}.widths`: {} widths for {} panels",
                        row.widths.len(),
                        row.panels.len()
                    ));
                }
                for w in &row.widths {
                    Size::parse(w).map_err(|e| format!("key `{key}.widths`: {e}"))?;
                }
            }
        }
        for (name, v) in &self.plugins {
            if !v.is_object() {
                return Err(format!("key `plugins.{name}`: must be a table of settings"));
            }
        }
        Ok(())
    }

    /// The layout against the plugins found: a panel named for a loaded plugin
    /// that does not offer it is a typo, refused before anything attaches.
    /// (A plugin not loaded yet may still be dropped in: its panels wait.)
    /// `offered(plugin)` lists a loaded plugin's panel ids, None if not loaded.
    pub fn check_panels(&self, offered: impl Fn(&str) -> Option<Vec<String>>) -> Result<(), String> {
        for (t, tab) in self.ui.tabs.iter().enumerate() {
            for (r, row) in tab.rows.iter().enumerate() {
                for p in &row.panels {
                    let Some((plugin, panel)) = p.split_once('.') else { continue };
                    if let Some(ids) = offered(plugin) {
                        if !ids.iter().any(|i| i == panel) {
                            return Err(format!(
                                "key `ui.tabs[{t}].rows[{r}].panels`: plugin {plugin} has no panel {panel:?} (it has: {})",
                                ids.join(", ")
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The settings of plugin `name` as JSON text (`{}` when there are none).
    pub fn plugin_settings(&self, name: &str) -> String {
        self.plugins.get(name).map(|v| v.to_string()).unwrap_or_else(|| "{}".into())
    }
}

/// The `TRACER_*` variables that are config keys: those naming a top-level
/// key (`plugins_dir`, `enabled`, `node_name`) or a table (`ui__`,
/// `plugins__`, `metrics__`, `otlp__`). Other
/// `TRACER_*` variables belong to tests and tools.
fn config_env(env: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    env.into_iter()
        .filter(|(k, _)| {
            let Some(rest) = k.strip_prefix(ENV_PREFIX).and_then(|r| r.strip_prefix('_')) else { return false };
            let rest = rest.to_lowercase();
            rest == "plugins_dir" || rest == "enabled" || rest == "node_name" || ["ui__", "plugins__", "metrics__", "otlp__"].iter().any(|t| rest.starts_with(t))
        })
        .collect()
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

    fn load(p: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(Some(p), Vec::new())
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn the_shipped_default_config_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/default.toml");
        let c = load(&p).unwrap();
        assert!(c.enabled.contains(&"open".to_string()));
        // Not set in the file: beside the executable (here the test binary).
        assert_eq!(c.plugins_dir, std::env::current_exe().unwrap().parent().unwrap().join("plugins"));
        let embedded = Config::load_with_env(None, Vec::new()).unwrap();
        assert_eq!(embedded.enabled, c.enabled, "the built-in config is the shipped file");
        assert_eq!(embedded.ui.tabs.len(), c.ui.tabs.len());
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_environment_overrides_the_file_and_names_itself_in_errors() {
        let f = write("plugins_dir = \"x\"\nenabled = [\"open\"]\n[ui]\nrefresh_hz = 4\n[plugins.open]\nfailed_only = false\n");
        let vars = env(&[
            ("TRACER_UI__REFRESH_HZ", "2"),
            ("TRACER_ENABLED", "tcp,sched"),
            ("TRACER_PLUGINS__OPEN__FAILED_ONLY", "true"),
            ("TRACER_PLUGINS__TCP__PORTS", "80"),
            // Not config keys: the host's and tests' own variables.
            ("TRACER_HOST_FAULT", "x"),
            ("TRACER_FIXTURE_MODE", "y"),
            ("TRACE", "z"),
        ]);
        let c = Config::load_with_env(Some(f.path()), vars).unwrap();
        assert_eq!(c.ui.refresh_hz, 2.0);
        assert_eq!(c.enabled, ["tcp", "sched"]);
        assert_eq!(c.plugins["open"]["failed_only"], true);
        assert_eq!(c.plugins["tcp"]["ports"], 80);
        let e = Config::load_with_env(Some(f.path()), env(&[("TRACER_UI__REFRESH_HZ", "500")])).unwrap_err().to_string();
        assert!(e.contains("`ui.refresh_hz`") && e.contains("(environment: TRACER_UI__REFRESH_HZ)"), "{e}");
        let e = Config::load_with_env(None, env(&[("TRACER_UI__REFRESH", "5")])).unwrap_err().to_string();
        assert!(e.starts_with(EMBEDDED_NAME) && e.contains("unknown field `refresh`") && e.contains("TRACER_UI__REFRESH"), "{e}");
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let f = write("plugins_dir = \"x\"\nrefresh = 3\n");
        let e = load(f.path()).unwrap_err().to_string();
        assert!(e.starts_with(&f.path().display().to_string()), "{e}");
        assert!(e.contains("unknown field `refresh`"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let f = write("plugins_dir = \"x\"\n[ui]\nrefresh_hz = \"fast\"\n");
        let e = load(f.path()).unwrap_err().to_string();
        assert!(e.ends_with("for key `ui.refresh_hz`"), "{e}");
    }

    #[test]
    fn impossible_values_are_refused() {
        for hz in ["-1", "1e-308", "1e-12", "0.05", "1e300", "nan", "inf"] {
            let f = write(&format!("plugins_dir = \"x\"\n[ui]\nrefresh_hz = {hz}\n"));
            let e = load(f.path()).unwrap_err().to_string();
            assert!(e.contains("`ui.refresh_hz`") && e.contains("out of range"), "{hz}: {e}");
        }
        let f = write("plugins_dir = \"x\"\n[[ui.tabs]]\nname = \"a\"\n[[ui.tabs.rows]]\npanels = [\"recent\"]\n");
        let e = load(f.path()).unwrap_err().to_string();
        assert!(e.contains("key `ui.tabs[0].rows[0].panels`") && e.contains("plugin.panel"), "{e}");
        let f = write("plugins_dir = \"x\"\n[[ui.tabs]]\nname = \"a\"\n[[ui.tabs.rows]]\nheight = \"140%\"\npanels = [\"a.b\"]\n");
        let e = load(f.path()).unwrap_err().to_string();
        assert!(e.contains("key `ui.tabs[0].rows[0].height`") && e.contains("1% to 100%"), "{e}");
        let f = write("plugins_dir = \"x\"\n[[ui.tabs]]\nname = \"a\"\n[[ui.tabs.rows]]\npanels = [\"a.b\"]\nwidths = [\"1\", \"2\"]\n");
        let e = load(f.path()).unwrap_err().to_string();
        assert!(e.contains("2 widths for 1 panels"), "{e}");
    }

    #[test]
    fn a_panel_a_loaded_plugin_does_not_offer_is_refused() {
        let f = write("plugins_dir = \"x\"\n[[ui.tabs]]\nname = \"a\"\n[[ui.tabs.rows]]\npanels = [\"open.recent\", \"later.x\"]\n[[ui.tabs.rows]]\npanels = [\"open.recnt\"]\n");
        let cfg = load(f.path()).unwrap();
        let offered = |p: &str| (p == "open").then(|| vec!["recent".to_string(), "summary".to_string()]);
        let e = cfg.check_panels(offered).unwrap_err();
        assert_eq!(e, "key `ui.tabs[0].rows[1].panels`: plugin open has no panel \"recnt\" (it has: recent, summary)");
        let fine = |p: &str| (p == "open").then(|| vec!["recent".to_string(), "recnt".to_string()]);
        assert_eq!(cfg.check_panels(fine), Ok(()), "a plugin not loaded (later) is no error");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(Size::parse("40%"), Ok(Size::Percent(40)));
        assert_eq!(Size::parse("12"), Ok(Size::Fixed(12)));
        assert_eq!(Size::parse("min:8"), Ok(Size::Min(8)));
        assert_eq!(Size::parse("fill"), Ok(Size::Fill));
        assert!(Size::parse("big").is_err() && Size::parse("0").is_err() && Size::parse("0%").is_err());
    }

    #[test]
    fn syntax_error_and_missing_file_name_the_file() {
        let f = write("plugins_dir = \n");
        let e = load(f.path()).unwrap_err().to_string();
        assert!(e.starts_with(&f.path().display().to_string()), "{e}");
        let e = load(Path::new("/nonexistent/x.toml")).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/x.toml: "), "{e}");
    }

    #[test]
    fn plugin_settings_become_json_and_paths_resolve() {
        let f = write("plugins_dir = \"plugins\"\n[plugins.open]\npid = 5\nfailed_only = true\n");
        let c = load(f.path()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&c.plugin_settings("open")).unwrap();
        assert_eq!(v["pid"], 5);
        assert_eq!(v["failed_only"], true);
        assert_eq!(c.plugin_settings("tcp"), "{}");
        assert_eq!(c.plugins_dir, f.path().parent().unwrap().join("plugins"));
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;
    fn load(p: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(Some(p), Vec::new())
    }
    use std::io::Write;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any file content: a config or an error naming the file, never a panic.
        #[test]
        fn arbitrary_config_text_never_panics(text in "(\\PC|\n){0,300}", layout in "[\\[\\]a-z_.=\" 0-9%:\n]{0,200}") {
            for body in [text, format!("plugins_dir = \"x\"\n[[ui.tabs]]\n{layout}")] {
                let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
                f.write_all(body.as_bytes()).unwrap();
                if let Err(e) = load(f.path()) {
                    prop_assert!(e.to_string().starts_with(&f.path().display().to_string()));
                }
            }
        }
    }
}
