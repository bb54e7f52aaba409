//! Command-line interface.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// tracer-host: load tracer plugins, run their BPF programs, show what they see.
#[derive(Debug, Parser)]
#[command(name = "tracer-host", version, about)]
pub struct Cli {
    /// Configuration file (see configs/default.toml).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
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
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// List the plugins found, their programs and the attach mode each would use
    /// on this kernel, or why a plugin cannot load; then exit.
    #[arg(long)]
    pub list_plugins: bool,
    /// Write diagnostics to FILE instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}
