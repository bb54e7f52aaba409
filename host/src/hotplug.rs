//! Plugins added to or removed from the plugins directory while the TUI runs:
//! checked like any plugin, loaded and started; a file that fails the checks is
//! reported in the status line and ignored; a removed file switches its plugin
//! off.

use std::path::PathBuf;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tracer_core::plugin_watch::{self, PluginFileEvent, PluginWatch};
use tracer_core::session::Session;

pub struct HotPlug {
    dir: PathBuf,
    pub events: UnboundedReceiver<PluginFileEvent>,
    settings: Box<dyn Fn(&str) -> String>,
    _watch: PluginWatch,
}

impl HotPlug {
    pub fn start(dir: PathBuf, settings: Box<dyn Fn(&str) -> String>) -> Result<HotPlug, String> {
        let (tx, events) = unbounded_channel();
        let watch = plugin_watch::watch(&dir, move |e| {
            let _ = tx.send(e);
        })?;
        Ok(HotPlug { dir, events, settings, _watch: watch })
    }

    /// Apply one event to the session. Returns whether the set of plugins changed.
    pub fn apply(&self, ev: PluginFileEvent, session: &mut Session) -> bool {
        match ev {
            PluginFileEvent::Added(path) => match session.add_plugin_file(&self.dir, &path) {
                Ok(idx) => {
                    let name = session.slots[idx].name().to_string();
                    if let Err(e) = session.start(idx, &(self.settings)(&name)) {
                        tracing::error!("plugin {name} (added): {e}");
                    } else {
                        tracing::warn!("plugin {name} added from {}", path.display());
                    }
                    true
                }
                Err(f) => {
                    tracing::error!("{f}");
                    session.load_failures.retain(|x| x.path != f.path);
                    session.load_failures.push(f);
                    true
                }
            },
            PluginFileEvent::Removed(path) => {
                session.load_failures.retain(|x| x.path != path);
                session.remove_plugin_file(&path).is_some()
            }
        }
    }
}
