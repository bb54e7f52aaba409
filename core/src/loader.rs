//! Finding and loading plugin `.so` files.
//!
//! Each file is checked (see [`crate::safety`]) and loaded on its own; a failure
//! becomes a one-line [`LoadFailure`] and never stops the others.

use crate::safety;
use abi_stable::library::{lib_header_from_path, LibraryError};
use std::path::{Path, PathBuf};
use tracer_plugin_api::{PluginDescriptor, TracerBox, TracerModuleRef};

/// A plugin whose library loaded and whose constructor and `describe` succeeded.
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub tracer: TracerBox,
    pub desc: PluginDescriptor,
}

impl LoadedPlugin {
    pub fn name(&self) -> &str {
        self.desc.info.name.as_str()
    }
}

#[derive(Debug, Clone)]
pub struct LoadFailure {
    pub path: PathBuf,
    /// One line: what is wrong and, where known, what to do.
    pub reason: String,
}

impl std::fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// Every `*.so` in `dir`, sorted by name so load order is stable.
pub fn find_plugin_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("plugins directory {}: {e}", dir.display()))?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "so"))
        .collect();
    v.sort();
    Ok(v)
}

/// The first meaningful line of abi_stable's (often very long) report.
fn short_library_error(e: &LibraryError) -> String {
    match e {
        LibraryError::OpenError { err, .. } => {
            // libloading's text repeats the path; keep dlerror's reason.
            let s = err.to_string();
            let reason = s.rsplit(": ").next().unwrap_or(&s).trim().to_string();
            format!("not a loadable shared library ({reason})")
        }
        LibraryError::GetSymbolError { .. } => {
            "not a tracer plugin (no abi_stable root module symbol)".to_string()
        }
        LibraryError::AbiInstability(report) => {
            format!("built against an incompatible plugin API: {}", summarize_abi_report(&report.to_string()))
        }
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => format!(
            "built against plugin API {actual_version}, this host needs a version compatible with {expected_version}"
        ),
        LibraryError::InvalidAbiHeader(_) | LibraryError::InvalidCAbi { .. } => {
            "built with an incompatible abi_stable version".to_string()
        }
        other => other.to_string().lines().next().unwrap_or("").to_string(),
    }
}

/// abi_stable's layout report runs to hundreds of lines. Keep what a person
/// needs: each distinct `Error:` with its expected/found values, and the
/// innermost type on the path to the mismatch.
fn summarize_abi_report(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut errors: Vec<String> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(e) = l.strip_prefix("Error:") {
            let mut e = e.trim().to_string();
            if lines.get(i + 1) == Some(&"Expected:") && lines.get(i + 3) == Some(&"Found:") {
                e = format!("{e} (expected {}, found {})", lines[i + 2], lines.get(i + 4).unwrap_or(&"?"));
            }
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
    let innermost = lines
        .iter()
        .rposition(|l| l.contains("error(s)inside:"))
        .and_then(|s| {
            lines[s..]
                .iter()
                .take_while(|l| !l.starts_with("Layout of expected type"))
                .filter_map(|l| l.strip_prefix("type:"))
                .last()
        });
    match (errors.is_empty(), innermost) {
        (true, _) => lines.iter().find(|l| !l.is_empty()).unwrap_or(&"layout mismatch").to_string(),
        // The last error is the innermost one; the others are its enclosing types.
        (false, Some(t)) => format!("type {t}: {}", errors.last().unwrap()),
        (false, None) => errors.last().unwrap().clone(),
    }
}

/// Load one plugin file that passed the safety checks.
pub fn load_library(path: &Path) -> Result<LoadedPlugin, String> {
    let header = lib_header_from_path(path).map_err(|e| short_library_error(&e))?;
    let module = header
        .init_root_module::<TracerModuleRef>()
        .map_err(|e| short_library_error(&e))?;
    let tracer = module.new()().into_result().map_err(|e| format!("plugin constructor failed: {e}"))?;
    let desc = tracer.describe().into_result().map_err(|e| format!("describe failed: {e}"))?;
    if desc.info.name.is_empty() {
        return Err("plugin has an empty name".into());
    }
    Ok(LoadedPlugin { path: path.to_path_buf(), tracer, desc })
}

/// Check and load every plugin in `dir`. Plugins with a name seen before are
/// refused: the first (by file name) wins.
pub fn load_dir(dir: &Path) -> Result<(Vec<LoadedPlugin>, Vec<LoadFailure>), String> {
    let dir = safety::check_dir(dir)?;
    let mut ok: Vec<LoadedPlugin> = Vec::new();
    let mut failed = Vec::new();
    for path in find_plugin_files(&dir)? {
        let loaded = safety::check_file(&dir, &path).and_then(|real| load_library(&real));
        match loaded {
            Ok(p) => {
                if let Some(first) = ok.iter().find(|q| q.name() == p.name()) {
                    failed.push(LoadFailure {
                        reason: format!(
                            "a plugin named {:?} is already loaded from {}",
                            p.name(),
                            first.path.display()
                        ),
                        path,
                    });
                } else {
                    ok.push(p);
                }
            }
            Err(reason) => failed.push(LoadFailure { path, reason }),
        }
    }
    Ok((ok, failed))
}
