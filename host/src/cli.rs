//! Command-line interface.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns, one header per record type, plain numbers (units in the headers).
    Text,
    /// Tab-separated: the columns and headers of `text`, no padding.
    Tsv,
    /// One JSON object per line, each with a `type`.
    Json,
    /// Nothing on stdout: no records, no final panels (a daemon that exports
    /// metrics or writes --report; diagnostics still go to stderr).
    None,
}

/// The longest --duration: a year (anything longer is a typo, and
/// Duration::from_secs_f64 panics on what does not fit).
pub const MAX_DURATION_S: f64 = 365.0 * 86400.0;

/// `--duration`: a finite number of seconds, more than 0 and at most a year.
fn parse_duration(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !v.is_finite() || v <= 0.0 || v > MAX_DURATION_S {
        return Err(format!("{s}: must be more than 0 and at most {MAX_DURATION_S} seconds (a year)"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_that_cannot_be_waited_for_are_refused() {
        for bad in ["-1", "0", "nan", "inf", "-inf", "1e300", "x"] {
            assert!(super::parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(super::parse_duration("0.5"), Ok(0.5));
    }
}

/// tracer-host: load tracer plugins, run their BPF programs, show what they see.
#[derive(Debug, Parser)]
#[command(name = "tracer-host", version, about)]
pub struct Cli {
    /// Configuration file (see configs/default.toml; default: that file, built in).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only this process (tgid), in every tracer that takes a `pid` setting.
    #[arg(short = 'p', long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Only tasks with exactly this name, in every tracer that takes `comm`.
    #[arg(short = 'c', long, value_name = "NAME")]
    pub comm: Option<String>,
    /// Only this user, in every tracer that takes `uid`.
    #[arg(short = 'u', long, value_name = "UID")]
    pub uid: Option<u32>,
    /// Set a plugin setting, over the config file and the environment
    /// (repeatable): `--set tcp.ports=80,443`, `--set open.failed_only=true`.
    #[arg(long = "set", value_name = "PLUGIN.KEY=VALUE")]
    pub set: Vec<String>,
    /// Check the configuration (file, environment, command line) against the
    /// plugins found, say what is wrong or that it is fine, and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Print the configuration in effect (defaults, file, environment and
    /// command line merged, plugin defaults filled in) as TOML, and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Load plugins from DIR instead of the config's plugins_dir.
    #[arg(long, value_name = "DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Run only this plugin (repeatable). Default: the config's `enabled` list.
    #[arg(long = "plugin", value_name = "NAME")]
    pub plugins: Vec<String>,
    /// No terminal UI: stream records to stdout, then each panel's final contents.
    #[arg(long)]
    pub headless: bool,
    /// Output format of --headless.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// Stop after SECS seconds (default: run until q, Ctrl-C or SIGTERM).
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub duration: Option<f64>,
    /// List the plugins found, their programs and the attach mode each would use
    /// on this kernel, or why a plugin cannot load; then exit.
    #[arg(long)]
    pub list_plugins: bool,
    /// Print every exported metric (the plugins' and the host's) as a
    /// Markdown table, and exit. Needs no root.
    #[arg(long)]
    pub list_metrics: bool,
    /// Serve Prometheus metrics on ADDR (`127.0.0.1:9464`): `/metrics` and
    /// `/healthz`. Also the config key `metrics.addr`. Off by default.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Push the metrics to an OpenTelemetry receiver (OTLP/HTTP, JSON) at
    /// URL (`http://127.0.0.1:4318`) every `otlp.interval_secs`. Also the
    /// config key `otlp.endpoint`. Off by default.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// The `node` label of every metric (config `node_name`; default: $NODE_NAME,
    /// else the hostname).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Write a JSON report (configs/report.schema.json) to FILE when the host
    /// stops, and whenever it gets SIGUSR1.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write diagnostics to FILE instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}
