//! tracer-host: loads tracer plugins, owns every BPF object and link, and shows
//! what the plugins see headless or in a terminal UI.

/// A line of diagnostics on stderr. Unlike `eprintln!`, a stderr that cannot be
/// written (closed pipe, full disk) is no reason to stop: the line is dropped.
macro_rules! diag {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cli;
mod config_file;
mod event_loop;
mod exposition;
mod headless;
mod hotplug;
mod list;
mod logging;
mod metrics_http;
mod otlp;
mod overrides;
mod plugin_settings;
mod privileges;
mod reload;
mod report;
mod procstat;
mod stdout_queue;
mod tui;

use anyhow::{bail, Context};
use clap::Parser;
use cli::{Cli, OutputFormat};
use event_loop::StopReason;
use std::process::ExitCode;
use std::time::Duration;
use config_file::Config;
use tracer_core::output::Format;
use tracer_core::session::{Session, SlotState, StartError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line first, then the detail (verifier log, causes).
            diag!("tracer-host: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Names to run: --plugin, else the config's `enabled`, each once. The second
/// value is how many named plugins are not loaded.
pub(crate) fn selection(cli: &Cli, cfg: &Config, session: &Session) -> (Vec<usize>, usize) {
    let names = if cli.plugins.is_empty() { &cfg.enabled } else { &cli.plugins };
    let mut v = Vec::new();
    let mut missing = 0;
    for n in names {
        match session.slot_index(n) {
            Some(i) if v.contains(&i) => {}
            Some(i) => v.push(i),
            None => {
                let failed = session.load_failures.iter().find(|f| {
                    f.path.file_stem().and_then(|s| s.to_str()).is_some_and(|s| s.contains(n.as_str()))
                });
                let found: Vec<&str> = session.slots.iter().map(|s| s.name()).collect();
                missing += 1;
                match failed {
                    Some(f) => tracing::error!("plugin {n:?} is not available: {f}"),
                    None => tracing::error!(
                        "no plugin named {n:?} in the plugins directory (found: {})",
                        if found.is_empty() { "none".to_string() } else { found.join(", ") }
                    ),
                }
            }
        }
    }
    (v, missing)
}

/// `[plugins.NAME]` tables for no loaded plugin: a typo there would leave the
/// filter the user asked for unapplied. A name close to a loaded plugin's is an
/// error naming that plugin (unless `enabled` names it too); another is said
/// once (the plugin may be dropped in later).
fn check_plugin_tables(cfg: &Config, file: &str, session: &Session) -> anyhow::Result<()> {
    let loaded: Vec<&str> = session.slots.iter().map(|s| s.name()).collect();
    for (name, table) in &cfg.plugins {
        if let Some(slot) = session.slots.iter().find(|s| s.name() == name) {
            if let Some(t) = table.as_object() {
                plugin_settings::check_config_keys(name, &slot.desc.settings, t)
                    .map_err(|(key, why)| anyhow::anyhow!("{file}: key `plugins.{name}.{key}`: {why}"))?;
            }
            continue;
        }
        // A name the config's own `enabled` list gives is meant (the
        // built-in file names `http`, two edits from `tcp`).
        let meant = cfg.enabled.iter().any(|e| e == name);
        match tracer_core::text::closest(name, loaded.iter().copied(), 2).filter(|_| !meant) {
            Some(l) => bail!("{file}: key `plugins.{name}`: no plugin named {name:?} is loaded; did you mean `plugins.{l}`?"),
            None => tracing::warn!("{file}: key `plugins.{name}`: no plugin named {name:?} is loaded (loaded: {}); its settings wait for it", loaded.join(", ")),
        }
    }
    Ok(())
}

/// `-p`, `-c`, `-u` and `--set` over the config's plugin tables; a common
/// filter that some running plugin does not take is said.
pub(crate) fn apply_command_line(cli: &Cli, cfg: &mut Config, session: &Session) -> anyhow::Result<()> {
    let mut filters = Vec::new();
    let mut add = |flag, key, v: Option<String>| {
        if let Some(value) = v {
            filters.push(overrides::CommonFilter { flag, key, value });
        }
    };
    use tracer_plugin_api::common_names::{COMM, PID, UID};
    add("-p/--pid", PID, cli.pid.map(|p| p.to_string()));
    add("-c/--comm", COMM, cli.comm.clone());
    add("-u/--uid", UID, cli.uid.map(|u| u.to_string()));
    let not_applied = overrides::apply(&mut cfg.plugins, &declared_settings(session), &filters, &cli.set).map_err(anyhow::Error::msg)?;
    for n in not_applied {
        tracing::warn!("{n}");
    }
    Ok(())
}

/// Each loaded plugin's name and declared settings.
fn declared_settings(session: &Session) -> Vec<(&str, &[tracer_plugin_api::SettingSpec])> {
    session.slots.iter().map(|s| (s.name(), s.desc.settings.as_slice())).collect()
}

/// Why the run ended, as the report says it.
fn stop_text(r: &StopReason) -> String {
    match r {
        StopReason::DurationOver => "duration over".into(),
        StopReason::Signal(s) => format!("stopped by {s}"),
        StopReason::Quit => "quit".into(),
        StopReason::OutputClosed => "stdout closed".into(),
        StopReason::Error(e) => format!("error: {e}"),
    }
}

/// Is there a terminal to draw on (the UI reads keys from stdin and draws to stdout)?
fn have_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut cfg = Config::load(cli.config.as_deref())?;
    let cfg_name = cli.config.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| config_file::EMBEDDED_NAME.into());
    let one_shot = cli.list_plugins || cli.list_metrics || cli.check_config || cli.print_config;
    let tui = !cli.headless && !one_shot;
    if tui && !have_terminal() {
        bail!("no terminal to draw the UI on (stdin or stdout is not a terminal): use --headless (--format text or json) to stream records instead");
    }
    let captured = logging::init(cli.log.as_deref(), tui)?;
    if !cli.check_config && !cli.print_config && !cli.list_metrics {
        // Root, or a user holding the capabilities tracing needs.
        let caps = privileges::effective().map_err(anyhow::Error::msg)?;
        // The kernel's BPF statistics are switched on for the UI and the exported cost.
        let exports = cli.metrics_addr.is_some() || cfg.metrics.addr.is_some() || cli.otlp_endpoint.is_some() || cfg.otlp.endpoint.is_some();
        let wants_stats = !cli.headless || exports && cfg.metrics.bpf_cost;
        for note in privileges::check(caps, privileges::tracefs_readable(), wants_stats).map_err(anyhow::Error::msg)? {
            tracing::warn!("{note}");
        }
    }
    // Every BPF map, program and link is a file descriptor: a low soft limit
    // would show up as misleading load errors.
    if let Err(e) = tracer_core::kernel_features::raise_fd_limit() {
        tracing::warn!("{e}");
    }
    // Plugins leave the host out of what they trace by its pid as BPF sees it
    // (the initial PID namespace's), which getpid() does not give inside a
    // PID namespace. Set before any plugin is loaded or any thread started.
    match tracer_core::kernel_features::kernel_tgid() {
        Ok(tgid) => std::env::set_var(tracer_plugin_api::HOST_KERNEL_TGID_ENV, tgid.to_string()),
        Err(e) => tracing::warn!("{e}; the host's own activity may show up when it runs in a PID namespace"),
    }
    let dir = cli.plugins_dir.clone().unwrap_or_else(|| cfg.plugins_dir.clone());
    let mut session = Session::load(&dir).map_err(anyhow::Error::msg)?;
    apply_command_line(&cli, &mut cfg, &session)?;
    if cli.print_config {
        let mut effective = cfg.clone();
        effective.plugins_dir = dir.clone();
        effective.plugins = overrides::with_defaults(&cfg.plugins, &declared_settings(&session));
        let text = toml::to_string(&effective).context("writing the configuration as TOML")?;
        println!("# tracer-host configuration in effect: {cfg_name}, then TRACER_* variables, then the command line\n{text}");
        return Ok(ExitCode::SUCCESS);
    }
    if cli.list_plugins || cli.list_metrics {
        use std::io::Write as _;
        let text = if cli.list_metrics { list::metrics_table(&session) } else { list::list(&mut session, |n| cfg.plugin_settings(n)) };
        return match std::io::stdout().write_all(text.as_bytes()) {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
            Err(e) => Err(anyhow::anyhow!("writing the list to stdout: {e}")),
        };
    }

    for f in &session.load_failures {
        tracing::error!("{f}");
    }
    cfg.check_panels(|p| {
        session.slot_index(p).map(|i| session.slots[i].desc.panels.iter().map(|x| x.id.to_string()).collect())
    })
    .map_err(|e| anyhow::anyhow!("{cfg_name}: {e}"))?;
    check_plugin_tables(&cfg, &cfg_name, &session)?;
    if cli.plugins.is_empty() && cfg.enabled.is_empty() {
        bail!("{cfg_name}: no plugin selected: list plugins under the key `enabled`, or pass --plugin NAME");
    }
    let (selected, mut not_started) = selection(&cli, &cfg, &session);
    if cli.check_config {
        // Each selected plugin's settings as it would start with them.
        let mut bad = 0;
        for &i in &selected {
            let s = &mut session.slots[i];
            let name = s.name().to_string();
            if let Err(e) = s.check_settings(&cfg.plugin_settings(&name)) {
                bad += 1;
                diag!("{cfg_name}: key `plugins.{name}`: {e}");
            }
        }
        if bad + not_started > 0 {
            bail!("{cfg_name}: {} problem(s) found (see above)", bad + not_started);
        }
        println!("{cfg_name}: fine ({} plugins found, {} selected, {} tabs)", session.slots.len(), selected.len(), cfg.ui.tabs.len());
        return Ok(ExitCode::SUCCESS);
    }
    for &i in &selected {
        let name = session.slots[i].name().to_string();
        match session.start(i, &cfg.plugin_settings(&name)) {
            Ok(()) => {}
            Err(StartError::Settings(e)) => {
                not_started += 1;
                tracing::error!("{cfg_name}: key `plugins.{name}`: {e}")
            }
            Err(StartError::Bpf(e)) => {
                not_started += 1;
                tracing::error!("plugin {name}: {e}")
            }
        }
    }
    let running = session.slots.iter().filter(|s| s.state == SlotState::Running).count();
    if running == 0 {
        bail!("no plugin is running (see the errors above; --list-plugins shows what each needs)");
    }

    if cli.headless {
        // Diagnostics (stderr): what runs and how it attached. Tests wait for it.
        for s in session.slots.iter().filter(|s| s.state == SlotState::Running) {
            let Some(rt) = s.runtime() else { continue };
            let modes: Vec<String> = rt.choices.iter().map(|c| c.mode.clone()).collect();
            let off: Vec<String> = rt.optional_off().map(|(p, why)| format!("{p} ({why})")).collect();
            if off.is_empty() {
                diag!("tracer-host: {} running ({})", s.name(), modes.join(", "));
            } else {
                diag!("tracer-host: {} running ({}); optional parts off here: {}", s.name(), modes.join(", "), off.join("; "));
            }
        }
    }
    let refresh = Duration::from_secs_f64(1.0 / cfg.ui.refresh_hz);
    let duration = cli.duration.map(Duration::from_secs_f64);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;

    // Exported metrics: the Prometheus endpoint and the OTLP push, each from
    // the command line, else the config file.
    let metrics_addr = cli.metrics_addr.as_ref().or(cfg.metrics.addr.as_ref());
    let otlp_endpoint = cli.otlp_endpoint.as_ref().or(cfg.otlp.endpoint.as_ref());
    let push = match otlp_endpoint {
        Some(url) => Some(
            otlp::Push::start(otlp::Settings {
                endpoint: url.clone(),
                interval: Duration::from_secs_f64(cfg.otlp.interval_secs),
                queue: cfg.otlp.queue,
                timeout: Duration::from_secs_f64(cfg.otlp.timeout_secs),
                service_name: cfg.otlp.service_name.clone(),
            })
            .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let exposition = std::sync::Arc::new(exposition::Exposition {
        identity: exposition::Identity::new(cli.node_name.as_deref().or(cfg.node_name.as_deref())),
        options: exposition::Options { bpf_cost: cfg.metrics.bpf_cost, top_n: cfg.metrics.top_n, max_series: cfg.metrics.max_series },
        otlp: push.as_ref().map(|p| p.status.clone()),
    });
    let endpoint = match metrics_addr {
        Some(addr) => Some(metrics_http::start(addr, exposition.clone()).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let started = std::time::SystemTime::now();
    let push_batch = |session: &Session| {
        if let Some(p) = &push {
            p.offer(otlp::encode(&exposition::families(session, &exposition), &exposition, &p.settings.service_name, started));
        }
    };
    let every = || push.as_ref().map(|p| (p.settings.interval, Box::new(push_batch) as Box<dyn FnMut(&Session)>));

    // BPF run-time statistics while the UI shows them or the metrics export
    // them; off again when this drops.
    let exported = endpoint.is_some() || push.is_some();
    let _stats = if !cli.headless || (exported && cfg.metrics.bpf_cost) {
        tracer_core::bpf_stats::enable().map_err(|e| tracing::warn!("{e}")).ok()
    } else {
        None
    };
    let report = cli.report.as_ref().map(|p| report::Report::new(p, exposition.identity.clone()));
    let write_report = |session: &Session, stop: Option<&str>| {
        if let Some(r) = &report {
            match r.write(session, stop.is_some(), stop) {
                Ok(()) => diag!("tracer-host: report written to {}", cli.report.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
                Err(e) => tracing::error!("{e}"),
            }
        }
    };
    let reason = if cli.headless {
        let format = match cli.format {
            OutputFormat::Text => Some(Format::Text),
            OutputFormat::Tsv => Some(Format::Tsv),
            OutputFormat::Json => Some(Format::Json),
            OutputFormat::None => None,
        };
        let mut fe = headless::Headless::new(format, refresh);
        fe.set_record_types(headless::record_types(&session));
        let services = event_loop::Services {
            metrics: endpoint,
            // The daemon (`--format none`) reloads on SIGHUP; a run that
            // streams records stops, as when its terminal hangs up.
            reload: (format.is_none()).then(|| {
                Box::new(|session: &mut Session| match reload::reload(&cli, session) {
                    Ok(changes) if changes.is_empty() => diag!("tracer-host: SIGHUP: configuration read again, nothing changed"),
                    Ok(changes) => diag!("tracer-host: SIGHUP: configuration read again: {}", changes.join("; ")),
                    Err(e) => tracing::error!("SIGHUP: {e}; nothing changed"),
                }) as Box<dyn FnMut(&mut Session)>
            }),
            report: Some(Box::new(|session: &Session| write_report(session, None))),
            every: every(),
            ..Default::default()
        };
        let reason = rt.block_on(event_loop::run(&mut session, &mut fe, duration, false, services));
        session.refresh();
        write_report(&session, Some(&stop_text(&reason)));
        push_batch(&session);
        if reason != StopReason::OutputClosed {
            // Queued, not written: this never waits on stdout.
            if let Err(e) = fe.finish(&session) {
                tracing::warn!("writing the final panels: {e}");
            }
        }
        // Detach before anything that may wait on stdout.
        let report = headless::report(&session);
        session.shutdown();
        for line in report.into_iter().chain(fe.close()) {
            diag!("{line}");
        }
        reason
    } else {
        let settings = session
            .slots
            .iter()
            .map(|s| (s.name().to_string(), serde_json::from_str(&cfg.plugin_settings(s.name())).unwrap_or_default()))
            .collect();
        let mut layout = tui::layout::Layout::from_config(&cfg.ui.tabs);
        // Panels of loaded plugins were checked at start (check_panels); a slot
        // for a plugin not loaded is reported once here and waits for it.
        for r in layout.placed() {
            if session.slot_index(&r.plugin).is_none() {
                tracing::warn!("{cfg_name}: the layout names panel {}, which no loaded plugin offers", r.id());
            }
        }
        layout.place_unplaced(&session);
        let cfg_for_new = cfg.clone();
        let hotplug = hotplug::HotPlug::start(dir.clone(), Box::new(move |n| cfg_for_new.plugin_settings(n)))
            .map_err(|e| tracing::warn!("{e}; plugins added later will not be seen"))
            .ok();
        let reason = {
            let mut screen = tui::Screen::new(layout, refresh, settings);
            screen.otlp = push.as_ref().map(|p| p.status.clone());
            let mut fe = tui::Tui::new(screen, captured.clone(), cfg.ui.mouse).context("opening the terminal")?;
            let services = event_loop::Services {
                hotplug,
                metrics: endpoint,
                report: Some(Box::new(|session: &Session| write_report(session, None))),
                every: every(),
                ..Default::default()
            };
            rt.block_on(event_loop::run(&mut session, &mut fe, duration, true, services))
            // fe drops here: the terminal is restored before anything is printed.
        };
        write_report(&session, Some(&stop_text(&reason)));
        push_batch(&session);
        if let Some(c) = &captured {
            for line in c.take() {
                diag!("{line}");
            }
        }
        reason
    };
    // Detach everything before printing anything more, whatever the reason
    // (headless did so already, before waiting for stdout).
    if !cli.headless {
        let report = headless::report(&session);
        session.shutdown();
        for line in report {
            diag!("{line}");
        }
    }
    // Everything is detached: what the push still holds may take its time.
    if let Some(p) = push {
        diag!("tracer-host: {}", p.finish());
    }
    match reason {
        StopReason::Error(e) => bail!("{e}"),
        StopReason::Signal(s) => {
            diag!("tracer-host: stopped by {s}; all programs detached");
            Ok(if cli.headless && not_started > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        // Headless runs serve scripts: a plugin they asked for that did not
        // run is a failure they must be able to see.
        _ if cli.headless && not_started > 0 => {
            diag!("tracer-host: {not_started} of the plugins asked for did not start (see above)");
            Ok(ExitCode::from(1))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
