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
    /// Events were lost (the kernel's inotify queue overflowed): compare the
    /// directory with what is loaded.
    Rescan,
    /// The watched directory itself went away.
    DirGone,
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

/// What one notify event means, given the watched directory `dir`.
pub fn interpret(ev: &notify::Event, dir: &Path) -> Vec<PluginFileEvent> {
    if ev.need_rescan() {
        return vec![PluginFileEvent::Rescan];
    }
    if matches!(ev.kind, EventKind::Remove(_)) && ev.paths.iter().any(|p| p == dir) {
        return vec![PluginFileEvent::DirGone];
    }
    classify(&ev.kind, &ev.paths)
}

/// Watch `dir` (canonical: events then name files as the loader does);
/// `on_event` runs on notify's thread. A failed read of events means some were
/// lost: rescan.
pub fn watch(dir: &Path, on_event: impl Fn(PluginFileEvent) + Send + 'static) -> Result<PluginWatch, String> {
    let watched = dir.to_path_buf();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
        Ok(ev) => {
            for e in interpret(&ev, &watched) {
                on_event(e);
            }
        }
        Err(_) => on_event(PluginFileEvent::Rescan),
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

    #[test]
    fn overflow_means_rescan_and_the_directory_going_is_said() {
        let dir = Path::new("/d");
        let overflow = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(interpret(&overflow, dir), vec![PluginFileEvent::Rescan]);
        let gone = notify::Event::new(EventKind::Remove(RemoveKind::Folder)).add_path(dir.to_path_buf());
        assert_eq!(interpret(&gone, dir), vec![PluginFileEvent::DirGone]);
        let file = notify::Event::new(EventKind::Remove(RemoveKind::File)).add_path(dir.join("libx.so"));
        assert_eq!(interpret(&file, dir), vec![PluginFileEvent::Removed(dir.join("libx.so"))]);
    }
}
