//! Plugins added to or removed from the plugins directory while the TUI runs:
//! checked like any plugin, loaded and started; a file that fails the checks is
//! reported in the status line and ignored; a removed file switches its plugin
//! off. The directory is watched under its canonical path (a config may name it
//! with `..` or through a symlink); lost events lead to a rescan; a directory
//! removed and made again is watched again.

use std::path::{Path, PathBuf};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tracer_core::plugin_watch::{self, PluginFileEvent, PluginWatch};
use tracer_core::session::Session;

pub struct HotPlug {
    dir: PathBuf,
    pub events: UnboundedReceiver<PluginFileEvent>,
    tx: UnboundedSender<PluginFileEvent>,
    settings: Box<dyn Fn(&str) -> String>,
    /// None while the directory is gone.
    watch: Option<PluginWatch>,
}

fn watch(dir: &Path, tx: &UnboundedSender<PluginFileEvent>) -> Result<PluginWatch, String> {
    let tx = tx.clone();
    plugin_watch::watch(dir, move |e| {
        let _ = tx.send(e);
    })
}

impl HotPlug {
    pub fn start(dir: PathBuf, settings: Box<dyn Fn(&str) -> String>) -> Result<HotPlug, String> {
        let dir = std::fs::canonicalize(&dir).map_err(|e| format!("plugins directory {}: {e}", dir.display()))?;
        let (tx, events) = unbounded_channel();
        let w = watch(&dir, &tx)?;
        Ok(HotPlug { dir, events, tx, settings, watch: Some(w) })
    }

    /// At every refresh: a directory that went away and is back is watched
    /// again, and compared with what is loaded.
    pub fn tick(&mut self, session: &mut Session) -> bool {
        if self.watch.is_some() || !self.dir.is_dir() {
            return false;
        }
        match watch(&self.dir, &self.tx) {
            Ok(w) => {
                self.watch = Some(w);
                tracing::warn!("plugins directory {} is back: watching it again", self.dir.display());
                self.apply(PluginFileEvent::Rescan, session)
            }
            Err(_) => false,
        }
    }

    /// Apply one event to the session. Returns whether the set of plugins changed.
    pub fn apply(&mut self, ev: PluginFileEvent, session: &mut Session) -> bool {
        match ev {
            PluginFileEvent::Added(path) => match session.add_plugin_file(&self.dir, &path) {
                Ok(idx) => {
                    if session.slots[idx].runtime().is_some() {
                        return false; // the same file seen again
                    }
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
            PluginFileEvent::DirGone => {
                self.watch = None;
                tracing::warn!("plugins directory {} was removed; watching for it to come back", self.dir.display());
                self.apply(PluginFileEvent::Rescan, session)
            }
            PluginFileEvent::Rescan => {
                let present = tracer_core::loader::find_plugin_files(&self.dir).unwrap_or_default();
                let mut changed = false;
                let gone: Vec<PathBuf> = session
                    .slots
                    .iter()
                    .filter(|s| s.path.parent() == Some(self.dir.as_path()) && !present.contains(&s.path))
                    .map(|s| s.path.clone())
                    .collect();
                for p in gone {
                    changed |= self.apply(PluginFileEvent::Removed(p), session);
                }
                for p in present {
                    // Known files keep their state (a plugin switched off stays off).
                    let known = session.slots.iter().any(|s| s.path == p);
                    let hidden = p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
                    if !known && !hidden {
                        changed |= self.apply(PluginFileEvent::Added(p), session);
                    }
                }
                changed
            }
        }
    }
}
