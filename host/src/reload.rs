//! SIGHUP in headless runs: the configuration is read again (file, then
//! environment, then the same command line on top) and what changed is
//! applied without a restart. Plugins newly selected start, plugins no longer
//! selected stop, running plugins whose settings changed get them: kernel
//! filters change at once, and aggregates and exported counters carry on.
//! A configuration with an error changes nothing and says why.

use crate::cli::Cli;
use crate::config_file::Config;
use tracer_core::session::{Session, SlotState};

/// Apply the configuration as it is now; returns what changed, one line each,
/// or the error that left everything as it was.
pub fn reload(cli: &Cli, session: &mut Session) -> Result<Vec<String>, String> {
    let mut cfg = Config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    crate::apply_command_line(cli, &mut cfg, session).map_err(|e| e.to_string())?;
    let (selected, _) = crate::selection(cli, &cfg, session);
    // Every selected plugin's settings are checked before anything changes.
    for &i in &selected {
        let name = session.slots[i].name().to_string();
        session.slots[i].check_settings(&cfg.plugin_settings(&name)).map_err(|e| format!("key `plugins.{name}`: {e}"))?;
    }
    let mut changes = Vec::new();
    for i in 0..session.slots.len() {
        let name = session.slots[i].name().to_string();
        let json = cfg.plugin_settings(&name);
        let running = session.slots[i].state == SlotState::Running;
        match (selected.contains(&i), running) {
            (true, false) => match session.start(i, &json) {
                Ok(()) => changes.push(format!("{name} started")),
                Err(e) => changes.push(format!("{name} could not start: {}", e.to_string().lines().next().unwrap_or(""))),
            },
            (false, true) => {
                session.stop(i, None);
                changes.push(format!("{name} stopped"));
            }
            (true, true) if session.slots[i].settings() != json => match session.set_settings(i, &json) {
                Ok(()) => changes.push(format!("{name} settings {json}")),
                Err(e) => changes.push(format!("{name} settings not applied: {e}")),
            },
            _ => {}
        }
    }
    Ok(changes)
}
