//! Noticing plugin files added to or removed from the plugins directory while
//! the host runs (inotify through the notify crate).
//!
//! A file being copied is seen before it is complete, so a plugin counts as
//! added only when its writer closes it, or when it is renamed into place (the
//! way to install one: copy next to it, then `mv`).

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginFileEvent {
    Added(PathBuf),
    Removed(PathBuf),
}

/// Keeps the watch alive; dropping it stops watching.
pub struct PluginWatch {
    _watcher: RecommendedWatcher,
}

fn is_plugin(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "so") && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// What a notify event means for plugins, if anything.
pub fn classify(kind: &EventKind, paths: &[PathBuf]) -> Vec<PluginFileEvent> {
    let added = matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To))
    );
    let removed = matches!(kind, EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From)));
    // A rename within the directory reports both paths: from, then to.
    if let EventKind::Modify(ModifyKind::Name(RenameMode::Both)) = kind {
        let mut v = Vec::new();
        if let Some(from) = paths.first().filter(|p| is_plugin(p)) {
            v.push(PluginFileEvent::Removed(from.clone()));
        }
        if let Some(to) = paths.get(1).filter(|p| is_plugin(p)) {
            v.push(PluginFileEvent::Added(to.clone()));
        }
        return v;
    }
    paths
        .iter()
        .filter(|p| is_plugin(p))
        .filter_map(|p| {
            if added {
                Some(PluginFileEvent::Added(p.clone()))
            } else if removed {
                Some(PluginFileEvent::Removed(p.clone()))
            } else {
                None
            }
        })
        .collect()
}

/// Watch `dir`; `on_event` runs on notify's thread.
pub fn watch(dir: &Path, on_event: impl Fn(PluginFileEvent) + Send + 'static) -> Result<PluginWatch, String> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            for e in classify(&ev.kind, &ev.paths) {
                on_event(e);
            }
        }
    })
    .map_err(|e| format!("watching the plugins directory: {e}"))?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(|e| format!("watching {}: {e}", dir.display()))?;
    Ok(PluginWatch { _watcher: watcher })
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, RemoveKind};

    #[test]
    fn only_complete_plugin_files_count_as_added() {
        let p = vec![PathBuf::from("/d/libx.so")];
        assert_eq!(classify(&EventKind::Create(CreateKind::File), &p), vec![]);
        assert_eq!(
            classify(&EventKind::Access(AccessKind::Close(AccessMode::Write)), &p),
            vec![PluginFileEvent::Added(p[0].clone())]
        );
        assert_eq!(classify(&EventKind::Modify(ModifyKind::Name(RenameMode::To)), &p), vec![PluginFileEvent::Added(p[0].clone())]);
        assert_eq!(classify(&EventKind::Remove(RemoveKind::File), &p), vec![PluginFileEvent::Removed(p[0].clone())]);
        let tmp = vec![PathBuf::from("/d/.libx.so.tmp"), PathBuf::from("/d/libx.so")];
        assert_eq!(
            classify(&EventKind::Modify(ModifyKind::Name(RenameMode::Both)), &tmp),
            vec![PluginFileEvent::Added(tmp[1].clone())]
        );
        assert_eq!(classify(&EventKind::Access(AccessKind::Close(AccessMode::Write)), &[PathBuf::from("/d/notes.txt")]), vec![]);
    }
}
